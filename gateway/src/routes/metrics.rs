//! `/metrics`: the last published generation, encoded as Prometheus text 0.0.4 or, when the
//! scraper's `Accept` asks for it, OpenMetrics 1.0; gzipped when `Accept-Encoding` allows.
//! Bodies are encoded once per generation and view and shared by every scrape. Which view a
//! caller gets is decided in [`super::view`], shared with `/federate`.

use super::view::{self, negotiate, respond, served, View};
use crate::stack::AppState;
use crate::tenancy::Principal;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Response};

pub use super::view::accepts_gzip;

pub async fn metrics(
    State(s): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
) -> Response<Body> {
    let (format, gzip) = negotiate(&headers);
    let g = s.store.load();
    let tenancy = s.tenancy.as_ref().map(|h| h.load());
    let principal = principal.map(|Extension(p)| p);
    let view = match view::choose(tenancy.as_deref(), principal.as_ref(), "/metrics") {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let (body, truncated, record) = match view {
        View::Open => (g.full_body(format, gzip), None, None),
        View::All { policy } => (
            g.full_body(format, gzip),
            None,
            Some(served(&policy, g.series_count(), "all", None)),
        ),
        View::Tenant(v) => {
            let quoted = match v.quota(&g) {
                Ok(q) => q,
                Err(refused) => return *refused,
            };
            let keep = |i: usize| quoted.plan.keeps(i);
            let keep_ref = quoted.truncated.then_some(&keep as &dyn Fn(usize) -> bool);
            let visible = |o: &collector::store::Owner| v.visible(o);
            let body = g.view_body_filtered(&v.name, format, gzip, keep_ref, &visible, v.rewrite());
            let record = served(&v.policy, quoted.plan.kept_series, v.kind, None);
            (body, quoted.header(), Some(record))
        }
    };
    respond(
        bytes::Bytes::from_owner(body),
        format,
        gzip,
        truncated,
        record,
    )
}
