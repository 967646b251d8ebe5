//! THE layer order of the HTTP stack, in one function, outermost first, each layer with the
//! reason it sits where it does. TLS and the client certificate happen below the stack, in
//! `tls.rs`'s accept loop.

use crate::layer::audit::AuditLayer;
use crate::layer::authn::{self, AuthnLayer};
use crate::layer::rate_limit;
use crate::routes;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::Router;
use std::convert::Infallible;
use std::time::Duration;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use crate::state::{AppState, Tenancy, TenancyHandle};

/// Limits of the stack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub max_concurrent: usize,
}

/// The whole stack: every route with every layer, outermost first.
pub fn build(state: AppState, limits: Limits) -> Router {
    let around_all = ServiceBuilder::new()
        // 1. The audit record and the self-metrics: outermost, so they see every answer,
        //    refusals and timeouts included; the request is refused (fail closed) when its
        //    record cannot be written.
        .layer(AuditLayer::new(
            state.auditor.clone(),
            state.metrics.clone(),
        ))
        // 2. Bounded work in flight: excess requests wait instead of exhausting memory.
        //    Global: `Router::layer` wraps each route separately, so a per-layer limit would
        //    be per route.
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrent))
        // 3. A slow client or handler cannot hold a worker forever.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        // (The body limit's own body type, back to axum's.)
        .map_response(IntoResponse::into_response)
        // 4. Scrapes carry no body; anything bigger is refused before a handler runs.
        .layer(RequestBodyLimitLayer::new(16 << 10));
    let mut router = Router::new();
    for (path, route) in routes::guarded(state.tenancy.is_some()) {
        let route = match &state.tenancy {
            // Around the cluster's data, when `[auth]` is configured (tokens, issuers,
            // tenants, policies and rate limits reload through the handle):
            Some(h) => route
                // 7. The per-tenant and per-principal limits need the principal.
                .layer::<_, Infallible>(from_fn_with_state(
                    h.per_principal.clone(),
                    rate_limit::per_principal,
                ))
                // 6. Authentication: the principal, or 401.
                .layer::<_, Infallible>(from_fn_with_state(
                    AuthnLayer::reloadable(h.authn.clone()),
                    authn::authenticate_request,
                ))
                // 5. The per-IP limit, keyed by the TCP peer (never a header), before any
                //    token or certificate work.
                .layer::<_, Infallible>(from_fn_with_state(h.per_ip.clone(), rate_limit::per_ip)),
            None => route,
        };
        router = router.route(path, route);
    }
    for (path, route) in routes::open() {
        router = router.route(path, route);
    }
    router.with_state(state).layer(around_all)
}
