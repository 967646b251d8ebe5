//! `/federate?match[]=...`: the series of the caller's view that any of the selectors picks,
//! as Prometheus text 0.0.4 (OpenMetrics by `Accept`, gzip by `Accept-Encoding`).
//!
//! The view is `/metrics`' own ([`super::view`]): the same scope, pseudonyms and quota, so
//! federation returns a subset of what the caller's `/metrics` shows and never more. On top:
//! - the policy must grant `federate` (read) as well as a `/metrics` view;
//! - every `match[]` is parsed and checked; any bad one is a 400 naming it, any parameter
//!   other than `match[]` is a 400 (see [`crate::policy::selector`] for the syntax and bounds);
//! - in a tenant's view the scope is appended to every selector, never replaced, and a
//!   selector that asks for another tenant's accounts or tenant is a 403
//!   ([`crate::policy::selector::Selector::scoped`]);
//! - the quota is the view's: a truncated view federates only its kept families (with the
//!   same `X-Slurm-Exporter-Truncated` header), a refused one is a 413.
//!
//! Bodies are encoded per request (selectors make each one different), never cached.

use super::view::{self, refuse, respond, served, View};
use crate::layer::authz::{action, object};
use crate::policy::selector::{parse_params, Selection, Selector};
use crate::policy::tenancy::Principal;
use crate::serve::{gzip_fast, negotiate};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use collector::store::{encode_selected, Family, Series};
use std::cell::Cell;

/// Facts about the request for the audit record: how many selectors, and a digest of the
/// query keyed with the audit log's secret (the selectors may name users: the record keeps no
/// text of them, and an unkeyed hash of a short selector is reversed by guessing).
fn selectors_detail(n: usize, query: Option<&str>, s: &AppState) -> serde_json::Value {
    match &s.auditor {
        Some(a) => serde_json::json!({
            "selectors": n,
            "query_hmac": a.digest(query.unwrap_or("").as_bytes()),
        }),
        None => serde_json::json!({ "selectors": n }),
    }
}

pub async fn federate(
    State(s): State<AppState>,
    principal: Option<Extension<Principal>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let (format, gzip) = negotiate(&headers);
    let tenancy = s.tenancy.as_ref().map(|h| h.load());
    let principal = principal.map(|Extension(p)| p);
    // The rule that granted federation, recorded with the one that chose the view.
    let mut granted = None;
    if let (Some(t), Some(p)) = (&tenancy, &principal) {
        let d = t.authz.decide(p, object::FEDERATE, action::READ);
        if !d.allowed {
            tracing::info!(tenant = %p.tenant, role = %p.role, principal = %p.id, "no /federate (policy: default deny)");
            return refuse(StatusCode::FORBIDDEN, "forbidden\n", &d.policy);
        }
        granted = Some(d.policy);
    }
    let view = match view::choose(tenancy.as_deref(), principal.as_ref(), "/federate") {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let view_policy = match &view {
        View::Open => "no [auth]",
        View::All { policy } => policy.as_str(),
        View::Tenant(v) => v.policy.as_str(),
    };
    let policy = match &granted {
        Some(f) => format!("{f}; {view_policy}"),
        None => view_policy.to_owned(),
    };
    let policy = policy.as_str();
    let query = uri.query();
    let selectors = match parse_params(query) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %e, "/federate: bad match[]");
            return refuse(StatusCode::BAD_REQUEST, &format!("{e}\n"), policy);
        }
    };
    let detail = selectors_detail(selectors.len(), query, &s);
    let g = s.store.load();
    let series = Cell::new(0usize);
    let mut out = Vec::with_capacity(64 << 10);
    let (truncated, kind) = match &view {
        View::Open | View::All { .. } => {
            let selection = Selection::new(&selectors, &g.families, &|_| false);
            let keep = |i: usize| selection.names_family(i);
            let pick = |i: usize, _: &Family, s: &Series| {
                let hit = selection.picks(i, s, None);
                series.set(series.get() + usize::from(hit));
                hit
            };
            encode_selected(&g.families, format, Some(&keep), &pick, None, &mut out);
            (None, "all")
        }
        View::Tenant(v) => {
            let scoped: Result<Vec<Selector>, _> = selectors
                .iter()
                .enumerate()
                .map(|(i, sel)| sel.scoped(i + 1, v.scope, &|l, val| v.seen(l, val)))
                .collect();
            let scoped = match scoped {
                Ok(s) => s,
                Err(e) => {
                    tracing::info!(tenant = %v.principal.tenant, principal = %v.principal.id, refusal = %e, "/federate: selector outside the tenant's scope");
                    return refuse(StatusCode::FORBIDDEN, &format!("{e}\n"), &v.policy);
                }
            };
            let quoted = match v.quota(&g) {
                Ok(q) => q,
                Err(refused) => return *refused,
            };
            let selection = Selection::new(&scoped, &g.families, &|l| v.hides(l));
            let keep =
                |i: usize| selection.names_family(i) && (!quoted.truncated || quoted.plan.keeps(i));
            // The scope first: a series outside it is never even matched against.
            let pick = |i: usize, _: &Family, s: &Series| {
                let hit = v.visible(&s.owner) && selection.picks(i, s, v.rewrite());
                series.set(series.get() + usize::from(hit));
                hit
            };
            encode_selected(
                &g.families,
                format,
                Some(&keep),
                &pick,
                v.rewrite(),
                &mut out,
            );
            (quoted.header(), v.kind)
        }
    };
    let body = if gzip { gzip_fast(&out) } else { out };
    respond(
        bytes::Bytes::from(body),
        format,
        gzip,
        truncated,
        Some(served(policy, series.get(), kind, Some(detail))),
    )
}
