//! Which series a caller sees: the one decision `/metrics` and `/federate` share, so the two
//! can never disagree on scope, pseudonyms or quota. Policy (casbin) picks the view:
//! `metrics:all` the whole store; `metrics` the tenant's scope, with user names in clear for
//! `metrics:clear-names` and as per-tenant pseudonyms otherwise (refused without a pseudonym
//! key rather than shown in clear); anything else 403. The tenant's series quota is planned
//! over the whole view, once per generation, whichever route asks.

use crate::layer::audit::Served;
use crate::layer::authz::{action, object};
use crate::layer::quota::TRUNCATED_HEADER;
use crate::layer::quota::{refusal, Quota, QuotaOutcome, QuotaPlan};
use crate::policy::pii::Pseudonymizer;
use crate::policy::tenancy::{Principal, TenantScope};
use crate::policy::view_key::{Names, ViewKey};
use crate::state::Tenancy;
use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use collector::store::{Format, Generation, Owner, Rewrite};
use std::sync::Arc;

/// The answer when a view is refused (boxed: responses are large).
pub type Refused = Box<Response<Body>>;

/// A tenant view's label rewrite (per-tenant pseudonyms).
type BoxedRewrite<'t> = Box<dyn Fn(&str, &str) -> Option<String> + Send + Sync + 't>;

/// What a caller sees.
pub enum View<'t> {
    /// No `[auth]`: the whole store (loopback or mTLS-only setups).
    Open,
    /// `metrics:all`: the whole store, names in clear, the exporter's own health included.
    All { policy: String },
    /// One tenant's scope.
    Tenant(TenantView<'t>),
}

/// One tenant's view: its scope, how hidden labels are shown, its quota.
pub struct TenantView<'t> {
    pub principal: &'t Principal,
    pub scope: &'t TenantScope,
    /// The policy rule that granted the view, for the audit record.
    pub policy: String,
    /// `clear` or `pseudonyms`.
    pub kind: &'static str,
    /// The body-cache and quota-plan key.
    pub key: ViewKey,
    pii: Option<&'t Pseudonymizer>,
    rewrite: Option<BoxedRewrite<'t>>,
    quota: &'t Quota,
}

/// The quota plan of a view that may be served.
pub struct Quoted {
    pub plan: Arc<QuotaPlan>,
    /// Some families are withheld: serve only [`QuotaPlan::keeps`] and say so.
    pub truncated: bool,
}

impl Quoted {
    /// The `X-Slurm-Exporter-Truncated` value, when truncated.
    pub fn header(&self) -> Option<HeaderValue> {
        self.truncated.then(|| self.plan.header_value())
    }
}

impl<'t> TenantView<'t> {
    pub fn visible(&self, o: &Owner) -> bool {
        self.scope.allows(o)
    }

    /// The label rewrite of the view (`None`: names in clear).
    pub fn rewrite(&self) -> Option<Rewrite<'_>> {
        self.rewrite
            .as_ref()
            .map(|r| r.as_ref() as &dyn Fn(&str, &str) -> Option<String>)
    }

    /// Whether the caller sees this label's values rewritten.
    pub fn hides(&self, label: &str) -> bool {
        self.rewrite.is_some() && self.pii.is_some_and(|p| p.hides(label))
    }

    /// The value the caller sees for a label value.
    pub fn seen(&self, label: &str, value: &str) -> String {
        self.rewrite
            .as_ref()
            .and_then(|r| r(label, value))
            .unwrap_or_else(|| value.to_owned())
    }

    /// The view's quota plan in `g` (made once per generation and view), or the 413 answer
    /// when the quota refuses the view.
    pub fn quota(&self, g: &Generation) -> Result<Quoted, Refused> {
        let visible = |o: &Owner| self.visible(o);
        match self
            .quota
            .apply(g, &self.key, &self.principal.tenant, &visible)
        {
            QuotaOutcome::Within(plan) => Ok(Quoted {
                plan,
                truncated: false,
            }),
            QuotaOutcome::Truncated(plan) => Ok(Quoted {
                plan,
                truncated: true,
            }),
            QuotaOutcome::Refused(plan) => {
                let mut r = refusal(&plan);
                r.extensions_mut()
                    .insert(served(&self.policy, 0, self.kind, None));
                Err(Box::new(r))
            }
        }
    }
}

/// Picks the caller's view, or the refusal to answer. `route` is for the log only.
pub fn choose<'t>(
    tenancy: Option<&'t Tenancy>,
    principal: Option<&'t Principal>,
    route: &str,
) -> Result<View<'t>, Refused> {
    let Some(t) = tenancy else {
        return Ok(View::Open);
    };
    // The authentication layer guarantees a principal; its absence is a wiring bug.
    let Some(p) = principal else {
        return Err(Box::new(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized\n",
            "no principal",
        )));
    };
    let can = |object| t.authz.decide(p, object, action::READ);
    let all = can(object::METRICS_ALL);
    if all.allowed {
        tracing::debug!(principal = %p.id, policy = %all.policy, route, "full view");
        return Ok(View::All { policy: all.policy });
    }
    let own = can(object::METRICS);
    let Some(scope) = t.scopes.get(&p.tenant).filter(|_| own.allowed) else {
        tracing::info!(tenant = %p.tenant, role = %p.role, principal = %p.id, route, "no view (policy: default deny)");
        return Err(Box::new(refuse(
            StatusCode::FORBIDDEN,
            "forbidden\n",
            &own.policy,
        )));
    };
    // Admins see their users in clear; everyone else gets per-tenant pseudonyms, and without
    // a pseudonym key is refused rather than shown names in clear.
    let clear = can(object::METRICS_CLEAR_NAMES).allowed;
    let rewrite: Option<BoxedRewrite<'t>> = if clear {
        None
    } else {
        match t
            .pii
            .as_ref()
            .and_then(|pii| pii.rewrite_for(&p.tenant).ok())
        {
            Some(r) => Some(Box::new(r)),
            None => {
                tracing::warn!(tenant = %p.tenant, "no [pii] key: pseudonymized views refused");
                return Err(Box::new(refuse(
                    StatusCode::FORBIDDEN,
                    "forbidden\n",
                    "no [pii] key",
                )));
            }
        }
    };
    let names = if clear {
        Names::Clear
    } else {
        Names::Pseudonyms
    };
    Ok(View::Tenant(TenantView {
        principal: p,
        scope,
        policy: own.policy,
        kind: names.as_str(),
        key: t.quota.view_key(&p.tenant, names),
        pii: t.pii.as_ref(),
        rewrite,
        quota: &t.quota,
    }))
}

/// A short refusal; details go to the log and the audit record, never to the client.
pub fn refuse(status: StatusCode, why: &str, policy: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(why.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.extensions_mut().insert(Served {
        allowed: false,
        policy: policy.to_owned(),
        series: None,
        kind: None,
        detail: None,
    });
    r
}

/// What was served, for the audit record.
pub fn served(policy: &str, series: usize, view: &str, extra: Option<serde_json::Value>) -> Served {
    let mut detail = serde_json::json!({ "view": view });
    if let (Some(serde_json::Value::Object(extra)), Some(d)) = (extra, detail.as_object_mut()) {
        d.extend(extra);
    }
    Served {
        allowed: true,
        policy: policy.to_owned(),
        series: Some(series as u64),
        kind: None,
        detail: Some(detail),
    }
}

/// A 200 exposition: content type by format, gzip marked, the quota's header when truncated,
/// the audit record attached.
pub fn respond(
    body: bytes::Bytes,
    format: Format,
    gzip: bool,
    truncated: Option<HeaderValue>,
    record: Option<Served>,
) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::serve::content_type(format)),
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
    if let Some(r) = record {
        resp.extensions_mut().insert(r);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_records_merge_extra_detail() {
        let s = served("p", 3, "clear", Some(serde_json::json!({ "selectors": 2 })));
        assert_eq!(
            s.detail,
            Some(serde_json::json!({ "view": "clear", "selectors": 2 }))
        );
        assert_eq!(s.series, Some(3));
    }
}
