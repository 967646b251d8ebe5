//! The admin listener: the gateway's own metrics ([`crate::metrics::GatewayMetrics`]) and
//! health on a separate plain-HTTP listener, never on the scrape port:
//!
//! ```toml
//! [server.admin]
//! listen = "127.0.0.1:9342"   # default; loopback only unless allow_remote = true
//! ```
//!
//! `/metrics` answers OpenMetrics 1.0 (what Prometheus asks for), or the text format 0.0.4
//! when the `Accept` header asks for `text/plain` only (`promtool check metrics` reads
//! that); `/healthz` and `/readyz` are the scrape port's own ([`super::health`]).

use super::health;
use crate::serve::OPENMETRICS_CONTENT_TYPE;
pub use crate::settings::sections::{AdminConfig, DEFAULT_ADMIN_LISTEN};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Response};
use axum::routing::get;
use axum::Router;

/// `Content-Type` of the text format 0.0.4 answer.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `/metrics`, `/healthz` and `/readyz` of the admin listener. Unknown paths are 404.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}

/// OpenMetrics unless the client accepts `text/plain` and not OpenMetrics.
pub fn wants_text(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("text/plain") && !a.contains("application/openmetrics-text"))
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response<Body> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (body, content_type) = if wants_text(accept) {
        (s.metrics.encode_text(), TEXT_CONTENT_TYPE)
    } else {
        (s.metrics.encode(), OPENMETRICS_CONTENT_TYPE)
    };
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Binds the admin listener; a taken or refused address stops start-up with its name.
pub async fn bind(config: &AdminConfig) -> Result<tokio::net::TcpListener, String> {
    let addr = config.addr()?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("server.admin: cannot listen on {addr}: {e}"))
}

/// Serves the admin routes on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) {
    let bound = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    tracing::info!(%bound, "admin listener: /metrics (gateway), /healthz, /readyz");
    if let Err(e) = axum::serve(listener, router(state)).await {
        tracing::error!("admin listener failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_only_when_openmetrics_is_not_accepted() {
        assert!(!wants_text(None));
        assert!(!wants_text(Some("*/*")));
        assert!(wants_text(Some("text/plain")));
        assert!(!wants_text(Some(
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4"
        )));
    }
}
