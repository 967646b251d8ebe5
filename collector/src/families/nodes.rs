//! `slurm_node_*`: one set of series per node. Owned by the cluster scope: node series
//! describe shared infrastructure, not a tenant's work.

use super::Options;
use crate::model::{NodeFlags, Snapshot};
use crate::store::{Owner, Sink};
use std::collections::HashSet;

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let mut seen = HashSet::with_capacity(s.nodes.len());
    let nodes: Vec<_> = s
        .nodes
        .iter()
        .filter(|n| seen.insert(n.name.clone()))
        .collect();
    let o = || Owner::Cluster;

    let f = out.gauge(
        "slurm_node_info",
        "Node base state, flags and build facts (value 1).",
        &[
            "node",
            "state",
            "flags",
            "arch",
            "features",
            "slurmd_version",
            "gpu_type",
        ],
    );
    for n in &nodes {
        let flags: Vec<&str> = NodeFlags::ALL
            .iter()
            .filter(|(f, _)| n.flags.contains(*f))
            .map(|(_, l)| *l)
            .collect();
        f.push(
            o(),
            [
                (&n.name).into(),
                n.base.as_str().into(),
                flags.join(",").into(),
                (&n.arch).into(),
                (&n.features).into(),
                (&n.slurmd_version).into(),
                (&n.gpu_type).into(),
            ],
            1.0,
        );
    }
    let f = out.gauge(
        "slurm_node_flag",
        "State flags a node carries (one series per flag present, value 1).",
        &["node", "flag"],
    );
    for n in &nodes {
        for (flag, label) in NodeFlags::ALL {
            if n.flags.contains(*flag) {
                f.push(o(), [(&n.name).into(), (*label).into()], 1.0);
            }
        }
    }
    let f = out.gauge(
        "slurm_node_reason_info",
        "Why a node is down or drained, as the admin wrote it (value 1; only nodes with a reason).",
        &["node", "reason"],
    );
    for n in nodes.iter().filter(|n| !n.reason.is_empty()) {
        f.push(o(), [(&n.name).into(), (&n.reason).into()], 1.0);
    }
    let f = out.gauge(
        "slurm_node_partition_info",
        "Partitions a node belongs to (value 1), for joins.",
        &["node", "partition"],
    );
    for n in &nodes {
        for p in &n.partitions {
            f.push(o(), [(&n.name).into(), p.into()], 1.0);
        }
    }
    let f = out.gauge(
        "slurm_node_cpus",
        "Node CPUs: allocated, idle (usable now), other; sums to the node's CPUs.",
        &["node", "state"],
    );
    for n in &nodes {
        f.push(
            o(),
            [(&n.name).into(), "allocated".into()],
            n.alloc_cpus.min(n.cpus) as f64,
        );
        f.push(o(), [(&n.name).into(), "idle".into()], n.idle_cpus() as f64);
        f.push(
            o(),
            [(&n.name).into(), "other".into()],
            n.other_cpus() as f64,
        );
    }
    let f = out.gauge(
        "slurm_node_cpus_configured",
        "CPUs configured on the node.",
        &["node"],
    );
    for n in &nodes {
        f.push(o(), [(&n.name).into()], n.cpus as f64);
    }
    let f = out.gauge(
        "slurm_node_memory_bytes",
        "Node real memory: allocated to jobs, idle (usable now), other.",
        &["node", "state"],
    );
    for n in &nodes {
        let alloc = n.alloc_memory_bytes.min(n.real_memory_bytes);
        let rest = n.real_memory_bytes - alloc;
        let (idle, other) = if n.is_schedulable() {
            (rest, 0)
        } else {
            (0, rest)
        };
        f.push(o(), [(&n.name).into(), "allocated".into()], alloc as f64);
        f.push(o(), [(&n.name).into(), "idle".into()], idle as f64);
        f.push(o(), [(&n.name).into(), "other".into()], other as f64);
    }
    let f = out.gauge(
        "slurm_node_memory_configured_bytes",
        "Real memory configured on the node.",
        &["node"],
    );
    for n in &nodes {
        f.push(o(), [(&n.name).into()], n.real_memory_bytes as f64);
    }
    let f = out.gauge(
        "slurm_node_memory_free_bytes",
        "Free memory the node's OS reports (absent when the node does not respond).",
        &["node"],
    );
    for n in &nodes {
        if let Some(m) = n.free_memory_bytes {
            f.push(o(), [(&n.name).into()], m as f64);
        }
    }
    let f = out.gauge(
        "slurm_node_cpu_load",
        "1-minute load average (absent when the node does not report one).",
        &["node"],
    );
    for n in &nodes {
        if let Some(l) = n.cpu_load {
            f.push(o(), [(&n.name).into()], l);
        }
    }
    let f = out.gauge(
        "slurm_node_gpus",
        "Node GPUs: allocated, idle, other (only nodes with GPUs).",
        &["node", "state"],
    );
    for n in nodes.iter().filter(|n| n.gpus_total > 0) {
        let alloc = n.gpus_alloc.min(n.gpus_total);
        let rest = n.gpus_total - alloc;
        let (idle, other) = if n.is_schedulable() {
            (rest, 0)
        } else {
            (0, rest)
        };
        f.push(o(), [(&n.name).into(), "allocated".into()], alloc as f64);
        f.push(o(), [(&n.name).into(), "idle".into()], idle as f64);
        f.push(o(), [(&n.name).into(), "other".into()], other as f64);
    }
    let f = out.gauge(
        "slurm_node_gpus_configured",
        "GPUs configured on the node (only nodes with GPUs).",
        &["node"],
    );
    for n in nodes.iter().filter(|n| n.gpus_total > 0) {
        f.push(o(), [(&n.name).into()], n.gpus_total as f64);
    }
    let f = out.gauge(
        "slurm_node_weight",
        "Scheduling weight (lower is used first).",
        &["node"],
    );
    for n in &nodes {
        f.push(o(), [(&n.name).into()], n.weight as f64);
    }
    let f = out.gauge(
        "slurm_node_boot_time_seconds",
        "When the node last booted, seconds since the epoch.",
        &["node"],
    );
    for n in &nodes {
        if let Some(t) = n.boot_time_epoch {
            f.push(o(), [(&n.name).into()], t as f64);
        }
    }
    let f = out.gauge(
        "slurm_node_last_busy_seconds",
        "When the node last ran a job, seconds since the epoch.",
        &["node"],
    );
    for n in &nodes {
        if let Some(t) = n.last_busy_epoch {
            f.push(o(), [(&n.name).into()], t as f64);
        }
    }
}
