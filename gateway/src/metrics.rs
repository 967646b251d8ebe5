//! The gateway's own metrics, `slurm_exporter_gateway_*`: what the gateway does (requests,
//! refusals, audit records, config reloads), with the `prometheus-client` crate; the Slurm
//! series keep their purpose-built store and encoder. They are served on the admin listener
//! (`crate::routes::admin`), never on the scrape port, so a tenant's view never carries
//! other tenants' names or request rates.
//!
//! Every label value is bounded: tenants are those of the config in force (anything else is
//! `__other__`, no tenant is `__none__`), routes are [`ROUTES`], and the reasons, limits and
//! outcomes are the gateway's own words. Answers are read from the typed outcomes the layers
//! attach (`crate::policy::outcome`), so this module knows no layer.

use crate::policy::outcome::{AuthnFailure, QuotaRefused, RateLimited, TRUNCATED_HEADER};
use crate::policy::tenancy::Principal;
use arc_swap::ArcSwap;
use axum::http::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The routes requests are counted by (axum's matched route, never the raw path, which the
/// client writes); any other value is counted as `__other__`. Add a route here with its handler.
pub const ROUTES: &[&str] = &[
    "/metrics",
    "/federate",
    "/healthz",
    "/readyz",
    "/admin/pii/lookup",
];

/// A label value outside its bounded set.
pub const OTHER: &str = "__other__";
/// The tenant of a request without a principal (refused before authentication, or no `[auth]`).
pub const NO_TENANT: &str = "__none__";

/// Distinct authentication failure reasons kept apart; more become `__other__`.
const MAX_REASONS: usize = 64;

/// Request duration buckets, in seconds: a cached scrape takes milliseconds, a cold
/// encode of a large cluster a second or more, and the default request timeout is 10 s.
const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status_class: String,
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    tenant: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    trigger: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DigestLabels {
    digest: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The gateway's own metrics, `slurm_exporter_gateway_*`. Shared (`Arc`) by the request
/// path, the reloader and the admin listener; every method takes `&self` and never blocks
/// on I/O.
#[derive(Debug)]
pub struct GatewayMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    authn_failures: Family<ReasonLabels, Counter>,
    connections_refused: Family<ReasonLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    quota: Family<QuotaLabels, Counter>,
    audit_records: Family<ResultLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    last_reload_success: Gauge<f64, AtomicU64>,
    last_reload_successful: Gauge,
    config_info: Family<DigestLabels, Gauge>,
    /// The digest `config_info` shows, so a new one replaces it.
    digest: Mutex<Option<String>>,
    tenants: ArcSwap<BTreeSet<String>>,
    reasons: Mutex<BTreeSet<String>>,
    /// The audit log's health (writer failure, checkpoint publishing).
    pub audit: crate::audit_health::AuditHealth,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("slurm_exporter_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        let authn_failures = Family::<ReasonLabels, Counter>::default();
        let connections_refused = Family::<ReasonLabels, Counter>::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let quota = Family::<QuotaLabels, Counter>::default();
        let audit_records = Family::<ResultLabels, Counter>::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        let last_reload_success = Gauge::<f64, AtomicU64>::default();
        let last_reload_successful = Gauge::default();
        let config_info = Family::<DigestLabels, Gauge>::default();
        registry.register(
            "requests",
            "Requests answered on the scrape port, by matched route, status class (2xx, 4xx, ...) and tenant (__none__ before authentication)",
            requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from the request to its answer's headers, by matched route",
            Unit::Seconds,
            request_duration.clone(),
        );
        registry.register(
            "authentication_failures",
            "Requests refused by authentication, by reason",
            authn_failures.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused or cut by the accept loop before or outside any HTTP request (TLS handshake failures, connection caps, stalled writes), by reason",
            connections_refused.clone(),
        );
        for why in crate::conn::Refusal::ALL {
            let _ = connections_refused.get_or_create(&ReasonLabels {
                reason: why.as_str().into(),
            });
        }
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429 Too Many Requests, by the limit reached (ip, tenant, principal)",
            rate_limited.clone(),
        );
        registry.register(
            "quota_exceeded",
            "Tenant views over their series quota, by tenant and outcome (truncated, refused)",
            quota.clone(),
        );
        registry.register(
            "audit_records",
            "Audit records, by result (written, failed)",
            audit_records.clone(),
        );
        registry.register(
            "config_reloads",
            "Config reload attempts, by trigger (sighup, file_change) and result (success, failure)",
            reloads.clone(),
        );
        registry.register_with_unit(
            "config_last_reload_success_timestamp",
            "When the config in force was loaded (start-up or the last successful reload), in seconds since the epoch",
            Unit::Seconds,
            last_reload_success.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 when the last reload attempt succeeded (or none was made since start-up), else 0",
            last_reload_successful.clone(),
        );
        registry.register(
            "config_info",
            "The config in force: SHA-256 over the config file and every file it references that reloads",
            config_info.clone(),
        );
        registry.register(
            "build",
            "The gateway's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        // Known outcomes start at zero, so rate() and alerts see their first increment.
        for trigger in ["sighup", "file_change"] {
            for result in ["success", "failure"] {
                let _ = reloads.get_or_create(&ReloadLabels {
                    trigger: trigger.into(),
                    result: result.into(),
                });
            }
        }
        for limit in ["ip", "tenant", "principal"] {
            let _ = rate_limited.get_or_create(&LimitLabels {
                limit: limit.into(),
            });
        }
        for result in ["written", "failed"] {
            let _ = audit_records.get_or_create(&ResultLabels {
                result: result.into(),
            });
        }
        last_reload_successful.set(1);
        let audit = crate::audit_health::AuditHealth::register(&mut registry);
        GatewayMetrics {
            audit,
            registry,
            requests,
            request_duration,
            authn_failures,
            connections_refused,
            rate_limited,
            quota,
            audit_records,
            reloads,
            last_reload_success,
            last_reload_successful,
            config_info,
            digest: Mutex::new(None),
            tenants: ArcSwap::from_pointee(BTreeSet::new()),
            reasons: Mutex::new(BTreeSet::new()),
        }
    }

    /// One answered request. `route` is the matched route (see [`ROUTES`]); `tenant` the
    /// principal's, if any.
    pub fn observe_request(&self, route: &str, status: u16, tenant: Option<&str>, seconds: f64) {
        let route = route_label(route);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                status_class: status_class(status).to_owned(),
                tenant: self.tenant_label(tenant),
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels { route })
            .observe(seconds.max(0.0));
    }

    /// Every counter one answer stands for, read from the typed extensions the inner layers
    /// attach (the principal, [`AuthnFailure`], [`RateLimited`], [`QuotaRefused`]) and the
    /// truncation header: the request-recording layer calls this once per response.
    pub fn observe_response<B>(&self, route: &str, res: &Response<B>, seconds: f64) {
        let ext = res.extensions();
        let tenant = ext.get::<Principal>().map(|p| p.tenant.as_str());
        if let Some(f) = ext.get::<AuthnFailure>() {
            self.authn_failure(f.reason.as_str());
        }
        if let Some(which) = ext.get::<RateLimited>() {
            self.rate_limited(which.as_str());
        }
        if let Some(t) = tenant {
            if ext.get::<QuotaRefused>().is_some() {
                self.quota(t, "refused");
            } else if res.headers().contains_key(TRUNCATED_HEADER) {
                self.quota(t, "truncated");
            }
        }
        self.observe_request(route, res.status().as_u16(), tenant, seconds);
    }

    /// A request refused by authentication (`FailureReason::as_str`).
    pub fn authn_failure(&self, reason: &str) {
        let reason = {
            let mut seen = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
            let word = !reason.is_empty()
                && reason.len() <= 48
                && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if word && (seen.contains(reason) || seen.len() < MAX_REASONS) {
                seen.insert(reason.to_owned());
                reason.to_owned()
            } else {
                OTHER.to_owned()
            }
        };
        self.authn_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A connection refused by the accept loop (`crate::conn::Refusal::as_str`).
    pub fn connection_refused(&self, reason: &str) {
        let words = crate::conn::Refusal::ALL.map(crate::conn::Refusal::as_str);
        self.connections_refused
            .get_or_create(&ReasonLabels {
                reason: one_of(reason, &words),
            })
            .inc();
    }

    /// A request refused at a rate limit: `ip`, `tenant` or `principal` (`RateLimited::as_str`).
    pub fn rate_limited(&self, limit: &str) {
        let limit = one_of(limit, &["ip", "tenant", "principal"]);
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// A tenant's view over its series quota: `truncated` or `refused`.
    pub fn quota(&self, tenant: &str, outcome: &str) {
        self.quota
            .get_or_create(&QuotaLabels {
                tenant: self.tenant_label(Some(tenant)),
                outcome: one_of(outcome, &["truncated", "refused"]),
            })
            .inc();
    }

    /// One audit record written (`true`) or not (`false`).
    pub fn audit_record(&self, ok: bool) {
        let result = if ok { "written" } else { "failed" };
        self.audit_records
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// A reload attempt (see `crate::reload`): its trigger (`sighup`, `file_change`),
    /// whether the new config is in force now, and that config's digest.
    pub fn reload(&self, trigger: &str, ok: bool, config_digest: &str) {
        let result = if ok { "success" } else { "failure" };
        self.reloads
            .get_or_create(&ReloadLabels {
                trigger: one_of(trigger, &["sighup", "file_change"]),
                result: result.into(),
            })
            .inc();
        self.last_reload_successful.set(i64::from(ok));
        if ok {
            self.config_in_force(config_digest);
        }
    }

    /// The config loaded at start-up or by a successful reload: its digest and the time.
    pub fn config_in_force(&self, digest: &str) {
        let mut current = self.digest.lock().unwrap_or_else(|e| e.into_inner());
        // The new series first, then the old one goes: a scrape never finds none.
        self.config_info
            .get_or_create(&DigestLabels {
                digest: digest.to_owned(),
            })
            .set(1);
        if let Some(old) = current.take().filter(|o| o != digest) {
            self.config_info.remove(&DigestLabels { digest: old });
        }
        *current = Some(digest.to_owned());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_reload_success.set(now);
    }

    /// The tenants of the config in force: the only tenant label values besides `__other__`
    /// and `__none__`. Series of tenants removed from the config stay until restart.
    pub fn set_tenants(&self, tenants: impl IntoIterator<Item = String>) {
        self.tenants.store(Arc::new(tenants.into_iter().collect()));
    }

    /// The exposition, OpenMetrics 1.0 text (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encoding the gateway metrics: {e}");
        }
        out
    }

    /// The exposition, Prometheus text format 0.0.4.
    pub fn encode_text(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!("encoding the gateway metrics: {e}");
        }
        out
    }

    fn tenant_label(&self, tenant: Option<&str>) -> String {
        match tenant {
            None => NO_TENANT.to_owned(),
            Some(t) if self.tenants.load().contains(t) => t.to_owned(),
            Some(_) => OTHER.to_owned(),
        }
    }
}

fn route_label(route: &str) -> String {
    one_of(route, ROUTES)
}

fn one_of(value: &str, known: &[&str]) -> String {
    if known.contains(&value) {
        value.to_owned()
    } else {
        OTHER.to_owned()
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tenants_routes_and_limits_are_folded() {
        let m = GatewayMetrics::new();
        m.set_tenants(["alpha".to_owned()]);
        m.observe_request("/metrics", 200, Some("alpha"), 0.01);
        m.observe_request("/metrics", 401, None, 0.001);
        m.observe_request("/metrics", 200, Some("mallory"), 0.01);
        m.observe_request("/../../etc/passwd", 404, None, 0.001);
        m.rate_limited("ip");
        m.rate_limited("everything");
        m.quota("alpha", "truncated");
        m.quota("zeta", "refused");
        let text = m.encode();
        assert!(text.contains(r#"slurm_exporter_gateway_requests_total{route="/metrics",status_class="2xx",tenant="alpha"} 1"#), "{text}");
        assert!(
            text.contains(r#"{route="/metrics",status_class="4xx",tenant="__none__"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{route="/metrics",status_class="2xx",tenant="__other__"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{route="__other__",status_class="4xx",tenant="__none__"} 1"#),
            "{text}"
        );
        assert!(!text.contains("mallory") && !text.contains("passwd") && !text.contains("zeta"));
        assert!(
            text.contains(
                r#"slurm_exporter_gateway_rate_limited_requests_total{limit="__other__"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"slurm_exporter_gateway_quota_exceeded_total{tenant="alpha",outcome="truncated"} 1"#), "{text}");
        assert!(text.contains(r#"slurm_exporter_gateway_quota_exceeded_total{tenant="__other__",outcome="refused"} 1"#), "{text}");
        assert!(text.contains("slurm_exporter_gateway_request_duration_seconds_bucket{le=\"0.01\",route=\"/metrics\"}")
            || text.contains("slurm_exporter_gateway_request_duration_seconds_bucket{route=\"/metrics\",le=\"0.01\"}"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn authentication_reasons_are_capped() {
        let m = GatewayMetrics::new();
        for i in 0..(MAX_REASONS + 10) {
            m.authn_failure(&format!("reason_{}", "x".repeat(i % 40 + 1)));
        }
        m.authn_failure("Not A Reason");
        let text = m.encode_text();
        let series = text
            .lines()
            .filter(|l| l.starts_with("slurm_exporter_gateway_authentication_failures_total{"))
            .count();
        assert!(series <= MAX_REASONS + 1, "{series} series");
        assert!(text.contains(r#"reason="__other__""#), "{text}");
    }

    #[test]
    fn a_reload_replaces_the_config_digest_and_counts_failures() {
        let m = GatewayMetrics::new();
        m.config_in_force("aaaa");
        m.reload("file_change", false, "bbbb");
        let text = m.encode();
        assert!(
            text.contains(r#"slurm_exporter_gateway_config_info{digest="aaaa"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains("bbbb"),
            "a refused config is never shown as in force"
        );
        assert!(text.contains(r#"slurm_exporter_gateway_config_reloads_total{trigger="file_change",result="failure"} 1"#), "{text}");
        assert!(
            text.contains("slurm_exporter_gateway_config_last_reload_successful 0"),
            "{text}"
        );
        m.reload("sighup", true, "cccc");
        let text = m.encode();
        assert!(
            text.contains(r#"slurm_exporter_gateway_config_info{digest="cccc"} 1"#),
            "{text}"
        );
        assert!(!text.contains("aaaa"), "{text}");
        assert!(
            text.contains(r#"{trigger="sighup",result="success"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("slurm_exporter_gateway_config_last_reload_successful 1"),
            "{text}"
        );
        assert!(
            text.contains("slurm_exporter_gateway_build_info{version="),
            "{text}"
        );
        assert!(text.contains("# UNIT slurm_exporter_gateway_config_last_reload_success_timestamp_seconds seconds"), "{text}");
    }

    #[test]
    fn responses_are_counted_from_their_extensions() {
        use crate::policy::outcome::FailureReason;
        use crate::policy::tenancy::{AuthMethod, Role, TenantId};
        let m = GatewayMetrics::new();
        m.set_tenants(["alpha".to_owned()]);
        let principal = Principal {
            id: "tok".into(),
            tenant: TenantId::parse("alpha").expect("tenant"),
            role: Role::Viewer,
            method: AuthMethod::ApiToken,
        };
        let mut r = Response::new(());
        *r.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        r.extensions_mut().insert(AuthnFailure {
            reason: FailureReason::ApiTokenUnknown,
        });
        m.observe_response("/metrics", &r, 0.001);
        let mut r = Response::new(());
        *r.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        r.extensions_mut().insert(RateLimited::Tenant);
        r.extensions_mut().insert(principal.clone());
        m.observe_response("/metrics", &r, 0.001);
        let mut r = Response::new(());
        r.headers_mut().insert(
            TRUNCATED_HEADER,
            axum::http::HeaderValue::from_static("1/2"),
        );
        r.extensions_mut().insert(principal);
        m.observe_response("/metrics", &r, 0.2);
        let text = m.encode();
        assert!(
            text.contains(r#"authentication_failures_total{reason="api_token_unknown"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"rate_limited_requests_total{limit="tenant"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"quota_exceeded_total{tenant="alpha",outcome="truncated"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{route="/metrics",status_class="4xx",tenant="alpha"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{route="/metrics",status_class="2xx",tenant="alpha"} 1"#),
            "{text}"
        );
    }
}
