//! `slurm_node_*`: one set of series per node. Owned by the cluster scope: node series
//! describe shared infrastructure, not a tenant's work.

use super::cluster::configured_name;
use super::shared::Options;
use crate::model::{Node, NodeFlags, Split};
use crate::snapshot::Snapshot;
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
    type PickSplit = fn(&Node) -> Split;
    let splits: [(&str, &str, PickSplit); 3] = [
        ("cpus", "CPUs", Node::cpu_split),
        ("memory_bytes", "Real memory (bytes)", Node::memory_split),
        ("gpus", "GPUs", Node::gpu_split),
    ];
    for (metric, what, pick) in splits {
        // GPU series only for nodes that have GPUs: most nodes have none.
        let has = |n: &&&Node| metric != "gpus" || n.gpus_total > 0;
        let f = out.gauge(
            format!("slurm_node_{metric}"),
            format!("{what} of the node: allocated, idle (usable now), other; sums to the configured total."),
            &["node", "state"],
        );
        for n in nodes.iter().filter(has) {
            for (state, v) in Split::STATES.iter().zip(pick(n).values()) {
                f.push(o(), [(&n.name).into(), (*state).into()], v as f64);
            }
        }
        let f = out.gauge(
            configured_name("node", metric),
            format!("{what} configured on the node."),
            &["node"],
        );
        for n in nodes.iter().filter(has) {
            f.push(o(), [(&n.name).into()], pick(n).total() as f64);
        }
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
