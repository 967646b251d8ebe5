//! The per-tenant series quota (`metrics_per_tenant`): how many series one tenant's view of
//! a generation may hold, and what happens at the limit.
//!
//! A "series" is one sample line of the exposition (a histogram bucket, `_sum` and `_count`
//! each count), and only the series the tenant's view shows are counted: a tenant is charged
//! for its own accounts, partitions and grants, never for the rest of the cluster.
//!
//! At the limit, by config ([`OnExceed`]):
//!
//! - `truncate` (default): whole families are kept in a fixed priority order
//!   ([`PRIORITY`]: cluster, partitions, jobs, users, accounts, gpus, fairshare, limits,
//!   then everything else; by name inside a group) until the next family would exceed the
//!   quota; that family and every family after it are left out, even a smaller one that would
//!   still fit, so what is missing is always a tail of the same fixed order. A family is never
//!   cut in half (a histogram or a per-state breakdown without some of its series would
//!   mislead). The answer carries `X-Slurm-Exporter-Truncated: <series kept>/<series visible>`
//!   and the gateway's self-metrics count it
//!   (`slurm_exporter_gateway_quota_exceeded_total{tenant,outcome}`, from the response).
//! - `refuse`: `413 Content Too Large` with a short body, no `Retry-After`, counted too. Not
//!   429: waiting does not help (the view stays as large until the cluster changes), a 429
//!   would invite automatic retries, and the per-tenant request rate limit already answers
//!   429, so Prometheus's scrape error (`server returned HTTP status 413 ...`) tells the
//!   operator which of the two they hit. 413 names the cause, a size limit.
//!
//! The decision is a pure function of the generation's families, the view's visibility
//! predicate and the quota ([`plan`]), so a body built from it is cacheable per generation
//! and view, like any other view body: the view key ([`ViewKey`]) carries the quota.

pub use crate::policy::outcome::{QuotaRefused, TRUNCATED_HEADER};
use crate::policy::tenancy::TenantId;
use crate::policy::view_key::{Names, TenantKey, ViewKey};
pub use crate::settings::sections::{OnExceed, QuotaConfig};
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use collector::store::{Family, Generation, Owner};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Family groups in the order they are kept, each with the name prefixes that belong to it.
/// A name belongs to the group of its longest matching prefix (so
/// `slurm_account_fairshare_factor` is fairshare, not accounts); families matching none come
/// last. Within a group: by name, then by position in the generation.
pub const PRIORITY: &[(&str, &[&str])] = &[
    ("cluster", &["slurm_cluster_", "slurm_info"]),
    ("partitions", &["slurm_partition_"]),
    ("jobs", &["slurm_job_", "slurm_jobs_"]),
    ("users", &["slurm_user_"]),
    ("accounts", &["slurm_account_"]),
    ("gpus", &["slurm_gpu_"]),
    (
        "fairshare",
        &[
            "slurm_account_fairshare_",
            "slurm_user_fairshare_",
            "slurm_fairshare_",
        ],
    ),
    (
        "limits",
        &[
            "slurm_account_limit_",
            "slurm_user_limit_",
            "slurm_qos_limit_",
            "slurm_limit_",
        ],
    ),
];

/// The rank of a family name in [`PRIORITY`] (`PRIORITY.len()` for the rest).
pub fn priority_rank(name: &str) -> usize {
    PRIORITY
        .iter()
        .enumerate()
        .flat_map(|(rank, (_, prefixes))| prefixes.iter().map(move |p| (rank, p)))
        .filter(|(_, p)| name.starts_with(**p))
        .max_by_key(|(rank, p)| (p.len(), std::cmp::Reverse(*rank)))
        .map_or(PRIORITY.len(), |(rank, _)| rank)
}

// ---------------------------------------------------------------------------------------
// The pure decision

/// Which families of a generation a view keeps under a quota, and the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaPlan {
    /// Indices into the generation's families, in priority order. Families with no visible
    /// series are never listed.
    pub kept: Vec<usize>,
    /// Visible series in the kept families.
    pub kept_series: usize,
    /// Visible series in all families.
    pub visible_series: usize,
    /// The quota the plan was made for.
    pub limit: usize,
}

/// Plans `families` seen through `visible` under a quota of `limit` series (see the module
/// documentation). Deterministic: the same families, predicate and limit give the same plan.
pub fn plan(families: &[Family], visible: &dyn Fn(&Owner) -> bool, limit: usize) -> QuotaPlan {
    let mut order: Vec<(usize, &str, usize, usize)> = families
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let n = f.series.iter().filter(|s| visible(&s.owner)).count();
            (n > 0).then(|| (priority_rank(&f.name), &*f.name, i, n))
        })
        .collect();
    order.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let visible_series = order.iter().map(|o| o.3).sum();
    let mut kept = Vec::new();
    let mut kept_series = 0usize;
    for (_, _, i, n) in order {
        if kept_series.saturating_add(n) > limit {
            break;
        }
        kept_series += n;
        kept.push(i);
    }
    QuotaPlan {
        kept,
        kept_series,
        visible_series,
        limit,
    }
}

impl QuotaPlan {
    /// Whether some visible series are left out.
    pub fn is_truncated(&self) -> bool {
        self.kept_series < self.visible_series
    }

    /// `<series kept>/<series visible>`, the value of [`TRUNCATED_HEADER`].
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("{}/{}", self.kept_series, self.visible_series))
            .unwrap_or_else(|_| HeaderValue::from_static("0/0"))
    }

    /// Whether the family at `index` of the generation is kept; pass it to
    /// the body cache (`crate::serve::Recipe::keep`) as the family filter.
    pub fn keeps(&self, index: usize) -> bool {
        self.kept.contains(&index)
    }
}

// ---------------------------------------------------------------------------------------
// Per-request use: cached plans, the decision, the counters

/// What a view gets under its quota.
#[derive(Debug, Clone)]
pub enum QuotaOutcome {
    /// Everything visible fits: encode with the plain visibility predicate.
    Within(Arc<QuotaPlan>),
    /// Encode the kept families ([`QuotaPlan::keeps`]) and add [`TRUNCATED_HEADER`].
    Truncated(Arc<QuotaPlan>),
    /// Answer [`refusal`].
    Refused(Arc<QuotaPlan>),
}

/// The quota of a gateway: the config and the plans of the current generation.
#[derive(Debug)]
pub struct Quota {
    config: QuotaConfig,
    /// Plans of one generation (its `seq`) by view (whose key carries the limit).
    plans: Mutex<(u64, HashMap<ViewKey, Arc<QuotaPlan>>)>,
}

impl Quota {
    pub fn new(config: QuotaConfig) -> Self {
        Quota {
            config,
            plans: Mutex::new((0, HashMap::new())),
        }
    }

    pub fn config(&self) -> QuotaConfig {
        self.config
    }

    /// The key of `tenant`'s view with `names`, under this quota.
    pub fn view_key(&self, tenant: &TenantId, names: Names) -> ViewKey {
        ViewKey::Tenant(TenantKey {
            tenant: tenant.clone(),
            names,
            quota: self.config.metrics_per_tenant,
        })
    }

    /// The plan of `view` in `g`, made once per generation and view (`view` must name
    /// `visible` and the limit: [`Quota::view_key`]).
    pub fn plan_for(
        &self,
        g: &Generation,
        view: &ViewKey,
        visible: &dyn Fn(&Owner) -> bool,
    ) -> Arc<QuotaPlan> {
        if let Ok(p) = self.plans.lock() {
            if p.0 == g.seq {
                if let Some(plan) = p.1.get(view) {
                    return plan.clone();
                }
            }
        }
        let made = Arc::new(plan(&g.families, visible, self.config.metrics_per_tenant));
        if let Ok(mut p) = self.plans.lock() {
            // Only the newest generation's plans are kept; an older one asking is not cached.
            if p.0 < g.seq || p.1.is_empty() {
                p.0 = g.seq;
                p.1.clear();
            }
            if p.0 == g.seq {
                p.1.insert(view.clone(), made.clone());
            }
        }
        made
    }

    /// Plans `view` for `tenant` and applies the configured behaviour.
    pub fn apply(
        &self,
        g: &Generation,
        view: &ViewKey,
        tenant: &TenantId,
        visible: &dyn Fn(&Owner) -> bool,
    ) -> QuotaOutcome {
        let plan = self.plan_for(g, view, visible);
        if !plan.is_truncated() {
            return QuotaOutcome::Within(plan);
        }
        tracing::info!(
            tenant = %tenant,
            kept = plan.kept_series,
            visible = plan.visible_series,
            limit = plan.limit,
            on_exceed = ?self.config.on_exceed,
            "series quota reached"
        );
        match self.config.on_exceed {
            OnExceed::Truncate => QuotaOutcome::Truncated(plan),
            OnExceed::Refuse => QuotaOutcome::Refused(plan),
        }
    }
}

/// The `refuse` answer: 413, short and generic; the counts go to the log and the extension.
pub fn refusal(plan: &QuotaPlan) -> Response<Body> {
    let mut r = Response::new(Body::from("series quota exceeded\n"));
    *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.extensions_mut().insert(QuotaRefused {
        visible_series: plan.visible_series,
        limit: plan.limit,
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use collector::store::{Format, Kind};
    use std::borrow::Cow;

    fn fam(name: &'static str, owners: &[Owner]) -> Family {
        let mut f = Family {
            name: Cow::Borrowed(name),
            help: Cow::Borrowed("h"),
            kind: Kind::Gauge,
            label_names: Cow::Borrowed(&["i"]),
            series: Vec::new(),
        };
        for (i, o) in owners.iter().enumerate() {
            f.push(o.clone(), [i.to_string().into()], 1.0);
        }
        f
    }

    fn acct(a: &str) -> Owner {
        Owner::Account(a.into())
    }

    #[test]
    fn priority_groups() {
        assert_eq!(priority_rank("slurm_cluster_cpus"), 0);
        assert_eq!(priority_rank("slurm_partition_jobs"), 1);
        assert_eq!(priority_rank("slurm_jobs_pending_reason"), 2);
        assert_eq!(priority_rank("slurm_account_cpus"), 4);
        assert_eq!(priority_rank("slurm_account_fairshare_factor"), 6);
        assert_eq!(priority_rank("slurm_account_limit_grp_cpus"), 7);
        assert_eq!(priority_rank("slurm_qos_limit_max_jobs_per_user"), 7);
        assert_eq!(priority_rank("slurm_qos_info"), PRIORITY.len());
        assert_eq!(priority_rank("slurm_node_info"), PRIORITY.len());
    }

    #[test]
    fn truncation_keeps_a_prefix_of_whole_families_and_counts_only_visible_series() {
        let a = acct("a");
        let b = acct("b");
        let families = vec![
            fam("slurm_node_info", std::slice::from_ref(&a)),
            fam("slurm_user_jobs", &[a.clone(), a.clone(), b.clone()]),
            fam("slurm_job_cpus", &[a.clone(), a.clone(), a.clone()]),
            fam("slurm_cluster_cpus", &[a.clone(), b.clone()]),
            fam("slurm_account_cpus", std::slice::from_ref(&b)),
        ];
        let vis = |o: &Owner| *o == a;
        let p = plan(&families, &vis, 5);
        // cluster (1), jobs (3) fit; users (2) would make 6: stop, node_info is not taken.
        assert_eq!(p.kept, vec![3, 2]);
        assert_eq!((p.kept_series, p.visible_series), (4, 7));
        assert!(p.is_truncated());
        assert_eq!(p.header_value(), "4/7");
        let all = plan(&families, &vis, 7);
        assert!(!all.is_truncated());
        assert_eq!(all.kept, vec![3, 2, 1, 0]);

        let g = Generation::new(1, 0.0, families);
        let keep = |i: usize| p.keeps(i);
        let mut out = Vec::new();
        collector::store::encode_filtered(
            &g.families,
            Format::Text,
            Some(&keep),
            &vis,
            None,
            &mut out,
        );
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("slurm_cluster_cpus{i=\"0\"} 1"));
        assert!(!text.contains("slurm_cluster_cpus{i=\"1\"}"), "invisible");
        assert_eq!(text.matches("slurm_job_cpus{").count(), 3);
        assert!(!text.contains("slurm_user_jobs"));
        assert!(!text.contains("slurm_node_info"));
    }

    #[test]
    fn config_parses_and_refuses_unknown_fields() {
        let c: QuotaConfig =
            toml::from_str("metrics_per_tenant = 10\non_exceed = \"refuse\"").expect("config");
        assert_eq!(c.metrics_per_tenant, 10);
        assert_eq!(c.on_exceed, OnExceed::Refuse);
        assert_eq!(
            toml::from_str::<QuotaConfig>("").expect("defaults"),
            QuotaConfig::default()
        );
        assert!(toml::from_str::<QuotaConfig>("on_exceed = \"drop\"").is_err());
        assert!(toml::from_str::<QuotaConfig>("metrics = 1").is_err());
    }

    #[test]
    fn plans_are_cached_per_generation_and_view_and_outcomes_counted() {
        let a = acct("a");
        let q = Quota::new(QuotaConfig {
            metrics_per_tenant: 1,
            on_exceed: OnExceed::Truncate,
        });
        let g = Generation::new(7, 0.0, vec![fam("slurm_job_cpus", &[a.clone(), a.clone()])]);
        let tenant = TenantId::parse("t").expect("tenant");
        let view = q.view_key(&tenant, Names::Pseudonyms);
        let p1 = q.plan_for(&g, &view, &|_| true);
        let p2 = q.plan_for(&g, &view, &|_| false);
        assert!(Arc::ptr_eq(&p1, &p2), "cached by view key");
        assert!(matches!(
            q.apply(&g, &view, &tenant, &|_| true),
            QuotaOutcome::Truncated(_)
        ));
    }
}
