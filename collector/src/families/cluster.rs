//! `slurm_cluster_*` and `slurm_info`: whole-cluster totals. Each node counts once, whatever
//! the number of partitions it is in; CPUs, memory and GPUs split into allocated, idle and
//! other as `sinfo %C` splits CPUs ([`crate::model::Node::is_schedulable`]), summing to the
//! total. A job submitted to several partitions counts once here.

use super::shared::{JobTotals, Options};
use crate::model::{JobState, NodeBaseState, NodeFlags, Split};
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::{BTreeMap, HashSet};

/// Resources of a set of nodes: each split as `sinfo %C` splits CPUs.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct NodeTotals {
    pub nodes: u64,
    pub cpus: Split,
    pub memory: Split,
    pub gpus: Split,
    pub mem_free: u64,
    pub load: f64,
    pub by_state: [u64; 7],
    pub flags: [u64; 16],
}

/// The split families: metric suffix after `slurm_<scope>_`, what it measures, and where.
pub type SplitSpec = (&'static str, &'static str, fn(&NodeTotals) -> Split);

/// `slurm_<scope>_cpus_configured`, `slurm_<scope>_memory_configured_bytes`: the unit
/// stays last, and gauges never end in `_total`.
pub fn configured_name(scope: &str, metric: &str) -> String {
    match metric.strip_suffix("_bytes") {
        Some(stem) => format!("slurm_{scope}_{stem}_configured_bytes"),
        None => format!("slurm_{scope}_{metric}_configured"),
    }
}

pub const SPLITS: [SplitSpec; 3] = [
    ("cpus", "CPUs", |t| t.cpus),
    ("memory_bytes", "Real memory (bytes)", |t| t.memory),
    ("gpus", "GPUs", |t| t.gpus),
];

impl NodeTotals {
    pub fn add(&mut self, n: &crate::model::Node) {
        self.nodes += 1;
        self.cpus.add(n.cpu_split());
        self.memory.add(n.memory_split());
        self.gpus.add(n.gpu_split());
        self.mem_free += n.free_memory_bytes.unwrap_or(0);
        self.load += n.cpu_load.unwrap_or(0.0);
        if let Some(i) = NodeBaseState::ALL.iter().position(|s| *s == n.base) {
            self.by_state[i] += 1;
        }
        for (i, (flag, _)) in NodeFlags::ALL.iter().enumerate() {
            if n.flags.contains(*flag) {
                self.flags[i] += 1;
            }
        }
    }
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let mut seen = HashSet::with_capacity(s.nodes.len());
    let mut t = NodeTotals::default();
    for n in s.nodes.iter() {
        if seen.insert(n.name.clone()) {
            t.add(n);
        }
    }
    let o = || Owner::Cluster;

    let meta = &s.meta;
    let or_unknown = |v: &str| {
        if v.is_empty() {
            "unknown".to_owned()
        } else {
            v.to_owned()
        }
    };
    // The REST and CLI sources say which they are; others (replay, sim) go by their name.
    let source = if meta.source.is_empty() {
        or_unknown(s.sources.first().map_or("", |st| st.source.as_str()))
    } else {
        meta.source.clone()
    };
    out.gauge(
        "slurm_info",
        "Slurm release, the OpenAPI/data_parser version read and the kind of source (rest, cli) that read it (value 1); `unknown` where Slurm does not say.",
        &["cluster", "release", "openapi", "source"],
    )
    .push(
        o(),
        [
            (&s.cluster).into(),
            or_unknown(&meta.release).into(),
            or_unknown(&meta.openapi).into(),
            source.into(),
        ],
        1.0,
    );

    let f = out.gauge(
        "slurm_cluster_nodes",
        "Nodes by base state; every node has exactly one, so these sum to the node count.",
        &["state"],
    );
    for (i, st) in NodeBaseState::ALL.iter().enumerate() {
        f.push(o(), [st.as_str().into()], t.by_state[i] as f64);
    }
    out.gauge(
        "slurm_cluster_nodes_configured",
        "Nodes in the cluster.",
        &[],
    )
    .push(o(), [], t.nodes as f64);
    let f = out.gauge(
        "slurm_cluster_node_flags",
        "Nodes carrying each state flag (drain, not_responding, maintenance, ...), counted apart from the base state.",
        &["flag"],
    );
    for (i, (_, label)) in NodeFlags::ALL.iter().enumerate() {
        f.push(o(), [(*label).into()], t.flags[i] as f64);
    }

    for (metric, what, pick) in SPLITS {
        let split = pick(&t);
        let f = out.gauge(
            format!("slurm_cluster_{metric}"),
            format!(
                "{what} of all nodes: allocated, idle and other, as sinfo %C splits CPUs (the unallocated ones are other on drained or down nodes, idle on all others, powered-down and failing ones included); sums to the configured total."
            ),
            &["state"],
        );
        for (state, v) in Split::STATES.iter().zip(split.values()) {
            f.push(o(), [(*state).into()], v as f64);
        }
        out.gauge(
            configured_name("cluster", metric),
            format!("{what} configured on all nodes."),
            &[],
        )
        .push(o(), [], split.total() as f64);
    }
    out.gauge(
        "slurm_cluster_memory_free_bytes",
        "Free memory the nodes' operating systems report (responding nodes only).",
        &[],
    )
    .push(o(), [], t.mem_free as f64);
    out.gauge(
        "slurm_cluster_cpu_load",
        "Sum of the 1-minute load average of responding nodes.",
        &[],
    )
    .push(o(), [], t.load);

    let mut by_state: BTreeMap<JobState, JobTotals> = BTreeMap::new();
    let mut users = HashSet::new();
    for j in s.jobs.iter() {
        by_state.entry(j.state).or_default().add(j);
        if j.state == JobState::Running {
            users.insert(j.user.clone());
        }
    }
    let total = |st: JobState| by_state.get(&st).copied().unwrap_or_default();
    let jobs = out.gauge(
        "slurm_cluster_jobs",
        "Jobs known to slurmctld by state; array tasks count one each, pending arrays by their task count.",
        &["state"],
    );
    for st in JobState::ALL {
        jobs.push(o(), [st.as_str().into()], total(st).jobs as f64);
    }
    let f = out.gauge(
        "slurm_cluster_job_cpus",
        "CPUs held (running, suspended, completing) or requested (pending) by jobs, by job state.",
        &["state"],
    );
    for st in JobState::ALL.iter().filter(|s| s.is_active()) {
        f.push(o(), [st.as_str().into()], total(*st).cpus as f64);
    }
    let f = out.gauge(
        "slurm_cluster_job_memory_bytes",
        "Memory held or requested by jobs, by job state.",
        &["state"],
    );
    for st in JobState::ALL.iter().filter(|s| s.is_active()) {
        f.push(o(), [st.as_str().into()], total(*st).memory_bytes as f64);
    }
    let f = out.gauge(
        "slurm_cluster_job_gpus",
        "GPUs held or requested by jobs, by job state.",
        &["state"],
    );
    for st in JobState::ALL.iter().filter(|s| s.is_active()) {
        f.push(o(), [st.as_str().into()], total(*st).gpus as f64);
    }
    out.gauge(
        "slurm_cluster_users_running",
        "Distinct users with at least one running job.",
        &[],
    )
    .push(o(), [], users.len() as f64);
    out.gauge("slurm_cluster_partitions", "Partitions defined.", &[])
        .push(o(), [], s.partitions.len() as f64);
}
