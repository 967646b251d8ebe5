//! One file per route family. Unknown paths are 404: deny by default.

pub mod health;
pub mod metrics;

use crate::layer::authn::AuthnLayer;
use crate::stack::AppState;
use axum::routing::get;
use axum::Router;

/// `/metrics` is behind authentication when `[auth]` is configured; health stays open
/// (it says nothing about the cluster).
pub fn router(state: AppState, authn: Option<AuthnLayer>) -> Router {
    let metrics = get(metrics::metrics);
    let metrics = match authn {
        Some(layer) => metrics.layer(layer),
        None => metrics,
    };
    Router::new()
        .route("/metrics", metrics)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}
