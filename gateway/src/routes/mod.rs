//! One file per route family. Unknown paths are 404: deny by default. Which layers guard
//! which routes is `crate::stack`'s decision alone: this module only says which routes say
//! something about the cluster ([`guarded`]) and which do not ([`open`]).

pub mod admin;
pub mod federate;
pub mod health;
pub mod metrics;
pub mod pii;
pub mod view;

use crate::state::AppState;
use axum::routing::{get, MethodRouter};

/// Routes that serve cluster data or re-identify users: behind authentication when `[auth]`
/// is configured. `with_auth`: whether `[auth]` is (re-identification exists only behind
/// authentication, and is audited).
pub fn guarded(with_auth: bool) -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut routes = vec![
        ("/metrics", get(metrics::metrics)),
        ("/federate", get(federate::federate)),
    ];
    if with_auth {
        routes.push(("/admin/pii/lookup", get(pii::lookup)));
    }
    routes
}

/// Routes open to anyone: they say nothing about the cluster.
pub fn open() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/healthz", get(health::healthz)),
        ("/readyz", get(health::readyz)),
    ]
}
