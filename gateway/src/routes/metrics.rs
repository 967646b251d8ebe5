//! `/metrics`: the last published generation, encoded as Prometheus text 0.0.4 or, when the
//! scraper's `Accept` asks for it, OpenMetrics 1.0; gzipped when `Accept-Encoding` allows.
//! Bodies are encoded once per generation and shared by every scrape.

use crate::layer::authz::{action, object};
use crate::layer::quota::{quota_view_name, refusal, QuotaOutcome, TRUNCATED_HEADER};
use crate::stack::AppState;
use crate::tenancy::Principal;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use collector::store::Format;
use collector::store::Owner;

/// Whether `Accept-Encoding` lets us send gzip (`q=0` refuses it).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';').map(str::trim);
            let coding = it.next().unwrap_or("");
            let q = it
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
}

/// A short refusal; details go to the log, never to the client.
fn refuse(status: StatusCode, why: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(why));
    *r.status_mut() = status;
    r
}

pub async fn metrics(
    State(s): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
) -> Response<Body> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let gzip = accepts_gzip(&headers);
    let g = s.store.load();
    let mut truncated = None;
    let tenancy = s.tenancy.as_ref().map(|h| h.load());
    let body = match (&tenancy, principal) {
        (None, _) => g.full_body(format, gzip),
        // The authentication layer guarantees a principal; its absence is a wiring bug.
        (Some(_), None) => return refuse(StatusCode::UNAUTHORIZED, "unauthorized\n"),
        (Some(t), Some(Extension(p))) => {
            let can = |object| t.authz.decide(&p, object, action::READ);
            let all = can(object::METRICS_ALL);
            let scope = t.scopes.get(&p.tenant);
            if all.allowed {
                tracing::debug!(principal = %p.id, policy = %all.policy, "full view");
                g.full_body(format, gzip)
            } else if let (true, Some(scope)) = (can(object::METRICS).allowed, scope) {
                let visible = |o: &Owner| scope.allows(o);
                // Admins see their users in clear; everyone else gets per-tenant pseudonyms,
                // and without a pseudonym key is refused rather than shown names in clear.
                let clear = can(object::METRICS_CLEAR_NAMES).allowed;
                let rewrite = if clear {
                    None
                } else {
                    match t
                        .pii
                        .as_ref()
                        .and_then(|pii| pii.rewrite_for(&p.tenant).ok())
                    {
                        Some(r) => Some(r),
                        None => {
                            tracing::warn!(tenant = %p.tenant, "no [pii] key: pseudonymized views refused");
                            return refuse(StatusCode::FORBIDDEN, "forbidden\n");
                        }
                    }
                };
                let kind = if clear { "clear" } else { "pseudonyms" };
                let view = quota_view_name(&format!("{kind}:{}", p.tenant), &t.quota.config());
                let plan = match t.quota.apply(&g, &view, &p.tenant, &visible) {
                    QuotaOutcome::Within(_) => None,
                    QuotaOutcome::Truncated(plan) => Some(plan),
                    QuotaOutcome::Refused(plan) => return refusal(&plan),
                };
                truncated = plan.as_ref().map(|pl| pl.header_value());
                let keep = plan.map(|pl| move |i: usize| pl.keeps(i));
                let keep_ref = keep.as_ref().map(|k| k as &dyn Fn(usize) -> bool);
                let rewrite_ref = rewrite
                    .as_ref()
                    .map(|r| r as &dyn Fn(&str, &str) -> Option<String>);
                g.view_body_filtered(&view, format, gzip, keep_ref, &visible, rewrite_ref)
            } else {
                tracing::info!(tenant = %p.tenant, role = %p.role, principal = %p.id, "no /metrics view (policy: default deny)");
                return refuse(StatusCode::FORBIDDEN, "forbidden\n");
            }
        }
    };
    let mut resp = Response::new(Body::from(bytes::Bytes::from_owner(body)));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Some(v) = truncated {
        h.insert(TRUNCATED_HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(v).expect("valid"),
        );
        m
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&h("gzip")));
        assert!(accepts_gzip(&h("br, gzip;q=0.5")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
