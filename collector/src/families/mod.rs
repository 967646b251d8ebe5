//! Metric families: one file per subsystem, each a pure function from a [`Snapshot`] to
//! series in a [`Sink`]. The word is the same everywhere: family `jobs` -> `jobs.rs` ->
//! config key `collectors.jobs` -> golden `testdata/.../jobs.prom`.

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
pub mod reservations;
pub mod rpc;
pub mod scheduler;
pub mod users;

use crate::model::{JobState, Snapshot};
use crate::store::{Family, Sink};
use std::collections::BTreeSet;

/// What to collect. Per-job series are opt-in: they grow with the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub disabled: BTreeSet<String>,
    pub per_job: bool,
    /// At most this many per-job series sets (newest jobs first) when `per_job` is on.
    pub per_job_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            disabled: BTreeSet::new(),
            per_job: false,
            per_job_limit: 10_000,
        }
    }
}

type Collect = fn(&Snapshot, &Options, &mut Sink);

/// Every family, in exposition order.
pub const FAMILIES: &[(&str, Collect)] = &[
    ("cluster", cluster::collect),
    ("partitions", partitions::collect),
    ("nodes", nodes::collect),
    ("jobs", jobs::collect),
    ("users", users::collect),
    ("gpus", gpus::collect),
    ("fairshare", fairshare::collect),
    ("limits", limits::collect),
    ("scheduler", scheduler::collect),
    ("rpc", rpc::collect),
    ("controllers", controllers::collect),
    ("reservations", reservations::collect),
    ("licenses", licenses::collect),
];

/// Runs every enabled family over the snapshot.
pub fn collect_all(snapshot: &Snapshot, options: &Options) -> Vec<Family> {
    let mut sink = Sink::default();
    let mut series_counts = Vec::with_capacity(FAMILIES.len());
    for (name, collect) in FAMILIES {
        if !options.disabled.contains(*name) {
            let before = sink.series_count();
            collect(snapshot, options, &mut sink);
            series_counts.push((*name, sink.series_count() - before));
        }
    }
    // The exporter's own health is always on: it is how a broken source is noticed.
    exporter::collect(snapshot, &series_counts, &mut sink);
    sink.into_families()
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
    pub fn add(&mut self, j: &crate::model::Job) {
        let n = j.task_count;
        self.jobs += n;
        self.cpus += j.cpus * n;
        self.memory_bytes += j.memory_bytes * n;
        self.gpus += j.gpus * n;
        self.nodes += j.nodes * n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
