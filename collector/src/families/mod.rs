//! Metric families: one file per subsystem, each a pure function from a [`Snapshot`] to
//! series in a [`Sink`].
//!
//! A family is the unit everything else names: one word is its file (`accounts.rs`), its
//! name in `collectors.disabled` and `[collectors.label_budgets]`, and the `family` label of
//! `slurm_exporter_series`. The word is the subject its metrics are named for
//! (`accounts` -> `slurm_account_*`, `nodes` -> `slurm_node_*`), or, for a family that cuts
//! across subjects, the word every one of its metric names carries (`fairshare` ->
//! `slurm_user_fairshare_*`, `cgroup` -> `slurm_job_cgroup_*`). [`names`] lists them all,
//! [`EXTERNAL`] included; [`DEPRECATED_NAMES`] maps old words still accepted.

pub mod accounting;
pub mod accounts;
pub mod cgroup;
pub mod chargeback;
pub mod cluster;
pub mod controllers;
pub mod exporter;
pub mod fairshare;
pub mod gpus;
pub mod jobs;
pub mod licenses;
pub mod limits;
pub mod nodes;
pub mod partitions;
pub mod priority;
pub mod reservations;
pub mod rpc;
pub mod scheduler;
pub mod shared;

use crate::snapshot::Snapshot;
use crate::store::{Family, Sink};

pub use shared::{
    apply_budget, FamilyStats, JobTotals, Options, ALWAYS_SHOWN_JOB_STATES, DEFAULT_LABEL_BUDGET,
    DEPRECATED_NAMES, OVERFLOW, WAIT_BUCKETS,
};

/// The family ingested ready-made from Prometheus-text sources (slurmctld's `/metrics`,
/// node_exporter, textfiles): switched off and budgeted like the built-in ones.
pub const EXTERNAL: &str = "external";

/// Every family name `collectors.disabled` and `[collectors.label_budgets]` take, in
/// exposition order: the built-in families, then [`EXTERNAL`]. (`exporter`, the exporter's
/// own health, is always on and is not among them.)
pub fn names() -> impl Iterator<Item = &'static str> {
    FAMILIES
        .iter()
        .map(|(n, _)| *n)
        .chain(std::iter::once(EXTERNAL))
}

/// The current name of a config word: a family name, or a deprecated one mapped to its
/// replacement (`Ok((name, true))`). An unknown word is an error listing the known names.
pub fn resolve_name(word: &str) -> Result<(&'static str, bool), String> {
    if let Some(n) = names().find(|n| *n == word) {
        return Ok((n, false));
    }
    if let Some((_, new)) = DEPRECATED_NAMES.iter().find(|(old, _)| *old == word) {
        return Ok((new, true));
    }
    Err(format!(
        "unknown family {word:?} (known: {})",
        names().collect::<Vec<_>>().join(", ")
    ))
}

/// Checks the family names a config gives, as `(config key, word)` pairs
/// (`("collectors.disabled", "users")`): an unknown word is an error naming the key; a
/// deprecated one is logged as a warning and accepted.
pub fn check_names<'a>(named: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), String> {
    for (key, word) in named {
        let (name, deprecated) = resolve_name(word).map_err(|e| format!("{key}: {e}"))?;
        if deprecated {
            tracing::warn!(
                "{key}: family {word:?} is now called {name:?}; the old name still works but is \
                 deprecated"
            );
        }
    }
    Ok(())
}

type Collect = fn(&Snapshot, &Options, &mut Sink);

/// Every family, in exposition order.
pub const FAMILIES: &[(&str, Collect)] = &[
    ("cluster", cluster::collect),
    ("partitions", partitions::collect),
    ("nodes", nodes::collect),
    ("jobs", jobs::collect),
    ("accounts", accounts::collect),
    ("gpus", gpus::collect),
    ("fairshare", fairshare::collect),
    ("limits", limits::collect),
    ("priority", priority::collect),
    ("scheduler", scheduler::collect),
    ("rpc", rpc::collect),
    ("controllers", controllers::collect),
    ("reservations", reservations::collect),
    ("licenses", licenses::collect),
    ("accounting", accounting::collect),
    ("chargeback", chargeback::collect),
    ("cgroup", cgroup::collect),
];

/// A metric family a site adds when it embeds the collector as a library. It is treated
/// like a built-in one: `collectors.disabled`, label budgets, `slurm_exporter_series`.
///
/// ```
/// use collector::families::{collect_all_with, CustomFamily, Options};
/// use collector::snapshot::Snapshot;
/// use collector::store::{Owner, Sink};
///
/// /// Jobs waiting on the site's license server, from the snapshot.
/// struct LicenseWaits;
/// impl CustomFamily for LicenseWaits {
///     fn name(&self) -> &'static str {
///         "site_license_waits"
///     }
///     fn collect(&self, s: &Snapshot, out: &mut Sink) {
///         let waiting = s.jobs.iter().filter(|j| &*j.reason == "Licenses").count();
///         out.gauge("slurm_site_license_waiting_jobs", "Jobs waiting for licenses.", &[])
///             .push(Owner::Cluster, [], waiting as f64);
///     }
/// }
///
/// let fams = collect_all_with(&Snapshot::default(), &Options::default(), &[&LicenseWaits]);
/// assert!(fams.iter().any(|f| f.name == "slurm_site_license_waiting_jobs"));
/// ```
pub trait CustomFamily: Send + Sync {
    /// The family's name in `collectors.disabled`, budgets and `slurm_exporter_series`.
    fn name(&self) -> &'static str;
    /// Adds series to `out`; every series names its [`Owner`](crate::store::Owner).
    fn collect(&self, snapshot: &Snapshot, out: &mut Sink);
}

/// Runs every enabled family over the snapshot.
pub fn collect_all(snapshot: &Snapshot, options: &Options) -> Vec<Family> {
    collect_all_with(snapshot, options, &[])
}

/// Runs one family into `sink` unless disabled, applies its label budget, records its size.
fn run_family(
    name: &'static str,
    options: &Options,
    sink: &mut Sink,
    stats: &mut Vec<FamilyStats>,
    collect: impl FnOnce(&mut Sink),
) {
    if options.is_disabled(name) {
        return;
    }
    let first = sink.len();
    collect(sink);
    let budget = options.label_budget(name);
    let folded = apply_budget(sink.families_from(first), budget);
    let series = sink
        .families_from(first)
        .iter()
        .map(|f| f.series.len())
        .sum();
    stats.push(FamilyStats {
        family: name,
        series,
        folded,
    });
}

/// [`collect_all`] plus the site's own families, after the built-in ones.
pub fn collect_all_with(
    snapshot: &Snapshot,
    options: &Options,
    custom: &[&dyn CustomFamily],
) -> Vec<Family> {
    let mut sink = Sink::default();
    let mut stats = Vec::with_capacity(FAMILIES.len() + custom.len() + 1);
    for (name, collect) in FAMILIES {
        run_family(name, options, &mut sink, &mut stats, |out| {
            collect(snapshot, options, out)
        });
    }
    for c in custom {
        run_family(c.name(), options, &mut sink, &mut stats, |out| {
            c.collect(snapshot, out)
        });
    }
    // Families ingested ready-made (slurmctld's /metrics, node_exporter, textfiles): the
    // same rules, counted as one family "external", served after everything else.
    let mut external = Sink::default();
    if !snapshot.external.is_empty() {
        run_family(EXTERNAL, options, &mut external, &mut stats, |out| {
            out.extend(snapshot.external.iter().cloned())
        });
    }
    // The exporter's own health is always on: it is how a broken source is noticed.
    exporter::collect(snapshot, &stats, &mut sink);
    let mut families = sink.into_families();
    families.extend(external.into_families());
    families
}

/// Test helper shared by the family files: runs one family over a snapshot and encodes it.
#[cfg(test)]
pub(crate) fn render(collect: Collect, s: &Snapshot) -> (Vec<Family>, String) {
    let mut sink = Sink::default();
    collect(s, &Options::default(), &mut sink);
    let fams = sink.into_families();
    let mut out = Vec::new();
    crate::store::encode(&fams, crate::store::Format::Text, &|_| true, &mut out);
    let text = String::from_utf8(out).unwrap_or_default();
    (fams, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobState;
    use crate::store::Owner;
    use crate::store::{encode, Format};

    #[test]
    fn an_empty_cluster_gives_zeros_not_gaps() {
        let fams = collect_all(&Snapshot::default(), &Options::default());
        let get = |name: &str| {
            fams.iter()
                .find(|f| f.name == name)
                .map(|f| f.series.iter().map(|s| s.value).sum::<f64>())
        };
        assert_eq!(get("slurm_cluster_nodes"), Some(0.0));
        assert_eq!(get("slurm_cluster_cpus"), Some(0.0));
        assert_eq!(get("slurm_cluster_jobs"), Some(0.0));
        let mut out = Vec::new();
        encode(&fams, Format::Text, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("slurm_cluster_nodes{state=\"idle\"} 0\n"));
        assert!(
            !text.contains("slurm_partition_"),
            "no partitions, no partition series"
        );
    }

    #[test]
    fn over_budget_series_fold_into_overflow_keeping_state_sums() {
        let mut sink = Sink::default();
        let f = sink.gauge("slurm_test_user_jobs", "t", &["user", "state"]);
        for (u, st, v) in [
            ("a", "running", 5.0),
            ("b", "running", 1.0),
            ("c", "pending", 2.0),
            ("d", "pending", 3.0),
            ("e", "running", 4.0),
        ] {
            f.push(
                Owner::User {
                    account: "x".into(),
                    user: u.into(),
                },
                [u.to_owned().into(), st.into()],
                v,
            );
        }
        let mut fams = sink.into_families();
        let before: f64 = fams[0].series.iter().map(|s| s.value).sum();
        assert_eq!(apply_budget(&mut fams, 3), 3);
        let got: Vec<(String, String, f64)> = fams[0]
            .series
            .iter()
            .map(|s| (s.labels[0].to_string(), s.labels[1].to_string(), s.value))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_owned(), "running".to_owned(), 5.0),
                ("e".to_owned(), "running".to_owned(), 4.0),
                (OVERFLOW.to_owned(), "pending".to_owned(), 5.0),
                (OVERFLOW.to_owned(), "running".to_owned(), 1.0),
            ]
        );
        assert_eq!(fams[0].series.iter().map(|s| s.value).sum::<f64>(), before);
        assert!(fams[0].series[2..]
            .iter()
            .all(|s| s.owner == Owner::Cluster));
    }

    #[test]
    fn external_families_are_appended_budgeted_and_counted() {
        let mut sink = Sink::default();
        let f = sink.gauge("slurm_native_node_cpus", "t", &["node"]);
        for (n, v) in [("a", 3.0), ("b", 2.0), ("c", 1.0)] {
            f.push(Owner::Cluster, [n.to_owned().into()], v);
        }
        let snap = Snapshot {
            external: std::sync::Arc::new(sink.into_families()),
            ..Snapshot::default()
        };
        let opts = Options {
            default_label_budget: 2,
            ..Options::default()
        };
        let fams = collect_all(&snap, &opts);
        let last = fams.last().expect("families");
        assert_eq!(last.name, "slurm_native_node_cpus");
        assert_eq!(last.series.len(), 2, "folded to the budget");
        assert_eq!(last.series.iter().map(|s| s.value).sum::<f64>(), 6.0);
        assert_eq!(
            snap.external[0].series.len(),
            3,
            "the snapshot is not touched"
        );
        let mut out = Vec::new();
        encode(&fams, Format::Text, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("slurm_exporter_series{family=\"external\"} 2\n"),
            "{text}"
        );
        let off = Options {
            disabled: ["external".to_owned()].into(),
            ..Options::default()
        };
        assert!(collect_all(&snap, &off)
            .iter()
            .all(|f| f.name != "slurm_native_node_cpus"));
    }

    #[test]
    fn every_name_resolves_and_old_names_mean_their_new_families() {
        for n in names() {
            assert_eq!(resolve_name(n), Ok((n, false)));
        }
        assert_eq!(names().last(), Some(EXTERNAL));
        for (old, new) in DEPRECATED_NAMES {
            assert_eq!(resolve_name(old), Ok((*new, true)));
            assert!(names().any(|n| n == *new), "{new} is a family");
            assert!(names().all(|n| n != *old), "{old} is no longer one");
            let o = Options {
                disabled: [old.to_string()].into(),
                label_budgets: [(old.to_string(), 7)].into(),
                ..Options::default()
            };
            assert!(o.is_disabled(new), "{old} switches {new} off");
            assert_eq!(o.label_budget(new), 7, "{old}'s budget is {new}'s");
            assert!(names().filter(|n| n != new).all(|n| !o.is_disabled(n)));
        }
        let e = resolve_name("userz").expect_err("unknown");
        assert!(e.contains("\"userz\"") && e.contains("accounts, "), "{e}");
        assert!(check_names([
            ("collectors.disabled", "users"),
            ("collectors.label_budgets", EXTERNAL)
        ])
        .is_ok());
        let e = check_names([("collectors.label_budgets", "nodez")]).expect_err("typo");
        assert!(
            e.starts_with("collectors.label_budgets: unknown family"),
            "{e}"
        );
    }

    #[test]
    fn a_family_under_its_old_name_is_switched_off_and_budgeted() {
        let snap = Snapshot {
            jobs: std::sync::Arc::new(
                (0..5)
                    .map(|i| crate::model::Job {
                        job_id: i,
                        array_job_id: 0,
                        array_task_id: None,
                        task_count: 1,
                        state: JobState::Running,
                        reason: "None".into(),
                        partition: "cpu".into(),
                        account: format!("acct{i}").into(),
                        user: format!("user{i}").into(),
                        qos: "normal".into(),
                        cpus: 1 + i,
                        nodes: 1,
                        memory_bytes: 1 << 30,
                        gpus: 0,
                        gpu_type: "".into(),
                        submit_epoch: None,
                        start_epoch: None,
                        end_epoch: None,
                        time_limit_seconds: None,
                        priority: None,
                        exit_code: None,
                        node_list: "n1".into(),
                    })
                    .collect(),
            ),
            ..Snapshot::default()
        };
        let count = |o: &Options| {
            collect_all(&snap, o)
                .iter()
                .filter(|f| f.name.starts_with("slurm_account_"))
                .map(|f| f.series.len())
                .max()
                .unwrap_or(0)
        };
        assert!(count(&Options::default()) >= 5);
        let off = Options {
            disabled: ["users".to_owned()].into(),
            ..Options::default()
        };
        assert_eq!(count(&off), 0);
        let budget = Options {
            label_budgets: [("users".to_owned(), 2)].into(),
            ..Options::default()
        };
        assert_eq!(count(&budget), 2);
    }

    #[test]
    fn disabled_families_are_left_out_but_exporter_health_stays() {
        let opts = Options {
            disabled: ["nodes".to_owned(), "cluster".to_owned()].into(),
            ..Options::default()
        };
        let fams = collect_all(&Snapshot::default(), &opts);
        assert!(fams.iter().all(|f| !f.name.starts_with("slurm_node_")));
        assert!(fams.iter().all(|f| !f.name.starts_with("slurm_cluster_")));
        assert!(fams.iter().any(|f| f.name == "slurm_exporter_series"));
    }
}
