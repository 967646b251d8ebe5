//! `slurm_cluster_*` and `slurm_info`: whole-cluster totals. Each node counts once, whatever
//! the number of partitions it is in; CPUs, memory and GPUs split into allocated, idle and
//! other (on nodes that cannot run jobs), summing to the total.

use super::{JobTotals, Options};
use crate::model::{JobState, NodeBaseState, NodeFlags, Snapshot};
use crate::store::{Owner, Sink};
use std::collections::{BTreeMap, HashSet};

/// Resources of a set of nodes split by usability.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct NodeTotals {
    pub nodes: u64,
    pub cpus_alloc: u64,
    pub cpus_idle: u64,
    pub cpus_other: u64,
    pub mem_total: u64,
    pub mem_alloc: u64,
    pub mem_idle: u64,
    pub mem_other: u64,
    pub mem_free: u64,
    pub gpus_total: u64,
    pub gpus_alloc: u64,
    pub gpus_idle: u64,
    pub gpus_other: u64,
    pub load: f64,
    pub by_state: [u64; 7],
    pub flags: [u64; 16],
}

impl NodeTotals {
    pub fn add(&mut self, n: &crate::model::Node) {
        self.nodes += 1;
        self.cpus_alloc += n.alloc_cpus.min(n.cpus);
        self.cpus_idle += n.idle_cpus();
        self.cpus_other += n.other_cpus();
        let mem_alloc = n.alloc_memory_bytes.min(n.real_memory_bytes);
        let mem_rest = n.real_memory_bytes - mem_alloc;
        self.mem_total += n.real_memory_bytes;
        self.mem_alloc += mem_alloc;
        // GPUs in use on a draining node are allocated all the same.
        let gpus_alloc = n.gpus_alloc.min(n.gpus_total);
        let gpus_rest = n.gpus_total - gpus_alloc;
        self.gpus_total += n.gpus_total;
        self.gpus_alloc += gpus_alloc;
        if n.is_schedulable() {
            self.mem_idle += mem_rest;
            self.gpus_idle += gpus_rest;
        } else {
            self.mem_other += mem_rest;
            self.gpus_other += gpus_rest;
        }
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

    pub fn cpus_total(&self) -> u64 {
        self.cpus_alloc + self.cpus_idle + self.cpus_other
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

    out.gauge(
        "slurm_info",
        "Slurm release, cluster name and the API the exporter reads (value 1).",
        &["cluster", "version", "plugin"],
    )
    .push(
        o(),
        [
            (&s.cluster).into(),
            s.meta.release.clone().into(),
            s.meta.plugin.clone().into(),
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

    let f = out.gauge(
        "slurm_cluster_cpus",
        "CPUs by state: allocated, idle (usable now) and other (on nodes that cannot run jobs); sums to the total.",
        &["state"],
    );
    f.push(o(), ["allocated".into()], t.cpus_alloc as f64);
    f.push(o(), ["idle".into()], t.cpus_idle as f64);
    f.push(o(), ["other".into()], t.cpus_other as f64);
    out.gauge(
        "slurm_cluster_cpus_configured",
        "CPUs configured on all nodes.",
        &[],
    )
    .push(o(), [], t.cpus_total() as f64);

    let f = out.gauge(
        "slurm_cluster_memory_bytes",
        "Real memory by state: allocated to jobs, idle on usable nodes, other; sums to the total.",
        &["state"],
    );
    f.push(o(), ["allocated".into()], t.mem_alloc as f64);
    f.push(o(), ["idle".into()], t.mem_idle as f64);
    f.push(o(), ["other".into()], t.mem_other as f64);
    out.gauge(
        "slurm_cluster_memory_configured_bytes",
        "Real memory configured on all nodes.",
        &[],
    )
    .push(o(), [], t.mem_total as f64);
    out.gauge(
        "slurm_cluster_memory_free_bytes",
        "Free memory the nodes' operating systems report (responding nodes only).",
        &[],
    )
    .push(o(), [], t.mem_free as f64);

    let f = out.gauge(
        "slurm_cluster_gpus",
        "GPUs by state: allocated (draining nodes included), idle on usable nodes, other; sums to the total.",
        &["state"],
    );
    f.push(o(), ["allocated".into()], t.gpus_alloc as f64);
    f.push(o(), ["idle".into()], t.gpus_idle as f64);
    f.push(o(), ["other".into()], t.gpus_other as f64);
    out.gauge(
        "slurm_cluster_gpus_configured",
        "GPUs configured on all nodes.",
        &[],
    )
    .push(o(), [], t.gpus_total as f64);
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
