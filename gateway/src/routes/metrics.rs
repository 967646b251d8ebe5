//! `/metrics`: the last published generation, encoded as Prometheus text 0.0.4 or, when the
//! scraper's `Accept` asks for it, OpenMetrics 1.0; gzipped when `Accept-Encoding` allows.
//! Bodies are encoded once per generation and view and shared by every scrape
//! ([`crate::serve::BodyCache`]). Which view a caller gets is decided in [`super::view`],
//! shared with `/federate`.

use super::view::{self, respond, served, View};
use crate::policy::tenancy::Principal;
use crate::policy::view_key::ViewKey;
use crate::serve::{negotiate, Recipe};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Response};

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
    let all = || s.bodies.body(&g, &ViewKey::All, format, gzip, Recipe::ALL);
    let (body, truncated, record) = match view {
        View::Open => (all(), None, None),
        View::All { policy } => (
            all(),
            None,
            Some(served(&policy, g.series_count(), "all", None)),
        ),
        View::Tenant(v) => {
            let quoted = match v.quota(&g) {
                Ok(q) => q,
                Err(refused) => return *refused,
            };
            let keep = |i: usize| quoted.plan.keeps(i);
            let visible = |o: &collector::store::Owner| v.visible(o);
            let recipe = Recipe {
                keep: quoted.truncated.then_some(&keep as &dyn Fn(usize) -> bool),
                visible: &visible,
                rewrite: v.rewrite(),
            };
            let body = s.bodies.body(&g, &v.key, format, gzip, recipe);
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
