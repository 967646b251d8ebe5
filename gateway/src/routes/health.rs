//! `/healthz` (the process answers) and `/readyz` (a generation with Slurm data is published).

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(s): State<AppState>) -> (StatusCode, &'static str) {
    let g = s.store.load();
    let has_data = g.seq > 0
        && g.families.iter().any(|f| {
            f.name == "slurm_cluster_nodes_configured" && f.series.iter().any(|x| x.value > 0.0)
        });
    if has_data {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no Slurm data published yet\n",
        )
    }
}
