//! What every family file shares: the options, label budgets and their folding into
//! `__overflow__`, the family names that were renamed, job totals and histogram buckets.

use crate::model::{Job, JobState};
use crate::store::{Family, Kind, LabelValue, Owner, Sample, Series};
use std::collections::{BTreeMap, BTreeSet};

/// What to collect. Per-job series are opt-in: they grow with the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Families switched off (`collectors.disabled`), by name; a deprecated name (see
    /// [`DEPRECATED_NAMES`]) counts as the family's current one.
    pub disabled: BTreeSet<String>,
    pub per_job: bool,
    /// At most this many per-job series sets (newest jobs first) when `per_job` is on.
    pub per_job_limit: usize,
    /// Most series one metric of a family may have, by family name (deprecated names
    /// count); past it the smallest series fold into `__overflow__` (see [`apply_budget`]).
    pub label_budgets: BTreeMap<String, usize>,
    /// The budget of families not named in `label_budgets`.
    pub default_label_budget: usize,
}

/// Default budget: far above a 10,000-node cluster's largest metric (3 series per node),
/// low enough that a runaway label cannot take a Prometheus server down.
pub const DEFAULT_LABEL_BUDGET: usize = 200_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            disabled: BTreeSet::new(),
            per_job: false,
            per_job_limit: 10_000,
            label_budgets: BTreeMap::new(),
            default_label_budget: DEFAULT_LABEL_BUDGET,
        }
    }
}

impl Options {
    /// Whether `family` (a current name) is switched off, under its name or an old one.
    pub fn is_disabled(&self, family: &str) -> bool {
        spellings(family).any(|w| self.disabled.contains(w))
    }

    /// The label budget of `family` (a current name): its own, under its name or an old one,
    /// else the default.
    pub fn label_budget(&self, family: &str) -> usize {
        spellings(family)
            .find_map(|w| self.label_budgets.get(w).copied())
            .unwrap_or(self.default_label_budget)
    }
}

/// Old family names still accepted in the config, with the name that replaced them. A
/// site's config keeps working; loading it warns (see `families::check_names`).
pub const DEPRECATED_NAMES: &[(&str, &str)] = &[
    // `users` emitted `slurm_account_*` as much as `slurm_user_*`.
    ("users", "accounts"),
    // `usage` emitted `slurm_job_cgroup_*`: measured cgroup use (agent mode).
    ("usage", "cgroup"),
];

/// `family` and the deprecated names that mean it.
fn spellings(family: &str) -> impl Iterator<Item = &str> {
    std::iter::once(family).chain(
        DEPRECATED_NAMES
            .iter()
            .filter(move |(_, new)| *new == family)
            .map(|(old, _)| *old),
    )
}

/// Series made and folded by one family in one collection, for `slurm_exporter_series*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyStats {
    pub family: &'static str,
    pub series: usize,
    pub folded: usize,
}

/// The value every folded label takes.
pub const OVERFLOW: &str = "__overflow__";

/// Labels kept when folding: they have few values and keep per-state sums right.
const KEPT_WHEN_FOLDING: &[&str] = &["state"];

/// Keeps at most `budget` series of each gauge or counter in `fams` (the largest values,
/// in their original order) and sums the rest into `__overflow__` series, one per kept
/// label (`state`) value. Folded series are owned by the cluster: they mix tenants.
/// Histograms are left alone (their series are few and fixed by buckets). Returns how many
/// series were folded.
pub fn apply_budget(fams: &mut [Family], budget: usize) -> usize {
    let mut folded = 0;
    for f in fams.iter_mut() {
        if f.kind == Kind::Histogram || f.series.len() <= budget {
            continue;
        }
        let keep_n = budget.saturating_sub(1);
        let mut order: Vec<usize> = (0..f.series.len()).collect();
        order.sort_by(|&a, &b| {
            f.series[b]
                .value
                .total_cmp(&f.series[a].value)
                .then(a.cmp(&b))
        });
        let mut is_kept = vec![false; f.series.len()];
        for &i in &order[..keep_n.min(order.len())] {
            is_kept[i] = true;
        }
        let mut buckets: BTreeMap<Vec<LabelValue>, f64> = BTreeMap::new();
        let mut series: Vec<Series> = Vec::with_capacity(budget + 4);
        for (s, kept) in std::mem::take(&mut f.series).into_iter().zip(is_kept) {
            if kept {
                series.push(s);
                continue;
            }
            let labels = f
                .label_names
                .iter()
                .zip(s.labels.iter())
                .map(|(n, v)| {
                    if KEPT_WHEN_FOLDING.contains(n) {
                        v.clone()
                    } else {
                        LabelValue::Static(OVERFLOW)
                    }
                })
                .collect();
            *buckets.entry(labels).or_default() += s.value;
            folded += 1;
        }
        for (labels, value) in buckets {
            series.push(Series {
                owner: Owner::Cluster,
                labels: labels.into_boxed_slice(),
                sample: Sample::Value,
                value,
            });
        }
        f.series = series;
    }
    folded
}

/// Buckets for job wait and pending-age histograms: 10 s to 1 week.
pub const WAIT_BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0,
    604800.0,
];

/// Job states shown for every partition even when zero, so alerts see 0, not absence.
pub const ALWAYS_SHOWN_JOB_STATES: &[JobState] = &[
    JobState::Pending,
    JobState::Running,
    JobState::Suspended,
    JobState::Completing,
];

/// Resource totals of a group of jobs in one state.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct JobTotals {
    pub jobs: u64,
    pub cpus: u64,
    pub memory_bytes: u64,
    pub gpus: u64,
    pub nodes: u64,
}

impl JobTotals {
    pub fn add(&mut self, j: &Job) {
        let n = j.task_count;
        self.jobs += n;
        self.cpus += j.cpus * n;
        self.memory_bytes += j.memory_bytes * n;
        self.gpus += j.gpus * n;
        self.nodes += j.nodes * n;
    }
}
