//! THE layer order of the HTTP stack, outermost first. Every layer is here, once, with the
//! reason it sits where it does. (TLS, authentication, authorization, tenancy, quotas and
//! auditing arrive with the gateway and audit issues, in the places marked below.)

use crate::routes;
use axum::Router;
use collector::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// State every route can read.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
}

/// Limits of the stack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub max_concurrent: usize,
}

pub fn build(state: AppState, limits: Limits) -> Router {
    routes::router(state)
        // Innermost: scrapes carry no body; anything bigger is refused before a handler runs.
        .layer(RequestBodyLimitLayer::new(16 << 10))
        // A slow client or handler cannot hold a worker forever.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        // Bounded work in flight: excess requests wait instead of exhausting memory.
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            limits.max_concurrent,
        ))
}
