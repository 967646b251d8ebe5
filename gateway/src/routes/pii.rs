//! `GET /admin/pii/lookup?pseudonym=u1_...[&tenant=T]`: re-identifies one pseudonym, for an
//! authorized operator (`slurm-exporter pii lookup` calls it). Every lookup, found or not,
//! allowed or not, is an audit record of kind `pii_lookup`.
//!
//! Who may: a principal granted `pii-lookup` in the pseudonym's tenant, or one holding both
//! `pii-lookup` and `metrics:all` in its own tenant (an operator already sees every name in
//! clear). A pseudonym cannot be inverted: the candidates are the values of the hidden
//! labels in the current store generation that the tenant's scope covers, so only a current
//! user of that tenant can be named.

use crate::layer::audit::Served;
use crate::layer::authz::{action, object};
use crate::policy::tenancy::{Principal, TenantId};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{header, HeaderValue, Response, StatusCode};
use collector::store::Generation;
use std::collections::BTreeSet;

fn answer(status: StatusCode, body: serde_json::Value, served: Served) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.extensions_mut().insert(served);
    r
}

/// The query: exactly `pseudonym` once and `tenant` at most once; nothing else.
fn parse_query(q: Option<&str>) -> Result<(String, Option<String>), &'static str> {
    let mut pseudonym = None;
    let mut tenant = None;
    for (k, v) in form_urlencoded_pairs(q.unwrap_or(""))? {
        let slot = match k.as_str() {
            "pseudonym" => &mut pseudonym,
            "tenant" => &mut tenant,
            _ => return Err("unknown query parameter"),
        };
        if slot.replace(v).is_some() {
            return Err("repeated query parameter");
        }
    }
    let p = pseudonym.ok_or("pseudonym is required")?;
    // The shape `u1_` + 16 hex digits: anything else cannot be one of ours.
    let ok = p.len() == 19
        && p.starts_with("u1_")
        && p[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !ok {
        return Err("pseudonym must look like u1_ and 16 lowercase hex digits");
    }
    Ok((p, tenant))
}

/// `k=v&k=v` with percent-decoding; refuses malformed escapes and over-long queries.
fn form_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, &'static str> {
    const MAX: usize = 1024;
    if q.len() > MAX {
        return Err("query too long");
    }
    let decode = |s| {
        crate::policy::query::url_decode(s, MAX).map_err(|_| "bad URL encoding in the query string")
    };
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Values of hidden labels (and users owning series) among the series `visible` allows.
fn candidates(
    g: &Generation,
    hides: impl Fn(&str) -> bool,
    visible: impl Fn(&collector::store::Owner) -> bool,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in g.families.iter() {
        let hidden: Vec<usize> = f
            .label_names
            .iter()
            .enumerate()
            .filter(|(_, n)| hides(n))
            .map(|(i, _)| i)
            .collect();
        for s in f.series.iter().filter(|s| visible(&s.owner)) {
            if let collector::store::Owner::User { user, .. } = &s.owner {
                out.insert(user.to_string());
            }
            for &i in &hidden {
                if let Some(v) = s.labels.get(i).filter(|v| !v.is_empty()) {
                    out.insert(v.to_string());
                }
            }
        }
    }
    out
}

pub async fn lookup(
    State(s): State<AppState>,
    principal: Option<Extension<Principal>>,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let denied = |policy: &str, detail: serde_json::Value| Served {
        allowed: false,
        policy: policy.to_owned(),
        series: None,
        kind: Some(audit::EventKind::PiiLookup),
        detail: Some(detail),
    };
    let (Some(t), Some(Extension(p))) = (s.tenancy.as_ref().map(|h| h.load()), principal) else {
        return answer(
            StatusCode::FORBIDDEN,
            serde_json::json!({"error": "forbidden"}),
            denied("no authentication configured", serde_json::json!({})),
        );
    };
    let (pseudonym, tenant) = match parse_query(query.as_deref()) {
        Ok(x) => x,
        Err(why) => {
            return answer(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": why}),
                denied("bad request", serde_json::json!({"error": why})),
            )
        }
    };
    let target = match tenant.as_deref().map(TenantId::parse).transpose() {
        Ok(t) => t.unwrap_or_else(|| p.tenant.clone()),
        Err(_) => {
            return answer(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "bad tenant"}),
                denied("bad request", serde_json::json!({"pseudonym": pseudonym})),
            )
        }
    };
    let detail = serde_json::json!({"pseudonym": pseudonym, "target_tenant": target.as_str()});
    let in_target = t
        .authz
        .decide_in(&p, &target, object::PII_LOOKUP, action::READ);
    let decision = if in_target.allowed {
        in_target
    } else {
        let own = t.authz.decide(&p, object::PII_LOOKUP, action::READ);
        let all = t.authz.decide(&p, object::METRICS_ALL, action::READ);
        if own.allowed && all.allowed {
            own
        } else {
            tracing::warn!(principal = %p.id, tenant = %target, "pii lookup refused (policy: default deny)");
            return answer(
                StatusCode::FORBIDDEN,
                serde_json::json!({"error": "forbidden"}),
                denied(&in_target.policy, detail),
            );
        }
    };
    let (Some(pii), Some(scope)) = (t.pii.as_ref(), t.scopes.get(&target)) else {
        return answer(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "no pseudonyms for this tenant"}),
            denied(&decision.policy, detail),
        );
    };
    let g = s.store.load();
    let names = candidates(&g, |l| pii.hides(l), |o| scope.allows(o));
    let found = pii
        .lookup(&target, &pseudonym, names.iter().map(String::as_str))
        .ok()
        .flatten()
        .map(str::to_owned);
    let served = Served {
        allowed: true,
        policy: decision.policy,
        series: None,
        kind: Some(audit::EventKind::PiiLookup),
        detail: Some(serde_json::json!({
            "pseudonym": pseudonym,
            "target_tenant": target.as_str(),
            "found": found.is_some(),
        })),
    };
    match found {
        Some(value) => answer(
            StatusCode::OK,
            serde_json::json!({"tenant": target.as_str(), "pseudonym": pseudonym, "value": value}),
            served,
        ),
        None => answer(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not a current user of this tenant"}),
            served,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_strict() {
        let ok = "pseudonym=u1_0123456789abcdef&tenant=alpha";
        assert_eq!(
            parse_query(Some(ok)),
            Ok(("u1_0123456789abcdef".into(), Some("alpha".into())))
        );
        for bad in [
            "",
            "tenant=alpha",
            "pseudonym=alice",
            "pseudonym=u1_0123456789ABCDEF",
            "pseudonym=u1_0123456789abcdef&pseudonym=u1_0123456789abcdee",
            "pseudonym=u1_0123456789abcdef&x=1",
            "pseudonym=u1_0123456789abcdef&tenant=%zz",
        ] {
            assert!(parse_query(Some(bad)).is_err(), "{bad}");
        }
    }
}
