//! `slurm_partition_*`: per-partition nodes, resources, jobs and wait times. A node in two
//! partitions counts in both here (and once at cluster level); so does a job submitted to
//! several (`cpu,debug`): it is a candidate in each, and `squeue -p P` lists it in each.

use super::cluster::{configured_name, NodeTotals, SPLITS};
use super::shared::{JobTotals, Options, ALWAYS_SHOWN_JOB_STATES, WAIT_BUCKETS};
use crate::model::{JobState, Name, Node, NodeBaseState, NodeFlags, Split};
use crate::snapshot::Snapshot;
use crate::store::{Histogram, Owner, Sink};
use std::collections::{BTreeMap, HashMap};

struct Part<'a> {
    nodes: NodeTotals,
    info: Option<&'a crate::model::Partition>,
    jobs: BTreeMap<JobState, JobTotals>,
    wait: Histogram,
    pending_age: Histogram,
    oldest_pending: f64,
}

impl Part<'_> {
    fn new() -> Self {
        Part {
            nodes: NodeTotals::default(),
            info: None,
            jobs: BTreeMap::new(),
            wait: Histogram::new(WAIT_BUCKETS),
            pending_age: Histogram::new(WAIT_BUCKETS),
            oldest_pending: 0.0,
        }
    }
}

/// The first partition a job names (`cpu` of `cpu,gpu`).
pub fn primary_partition(p: &Name) -> &str {
    p.split(',').next().unwrap_or("")
}

/// Every partition a job names: a job submitted to several (`cpu,debug`) is a candidate in
/// each and `squeue -p P` lists it under each, so partition families count it in each
/// (their sums may exceed the cluster's, where it counts once). Duplicates and empty names
/// are dropped.
pub fn job_partitions(p: &str) -> impl Iterator<Item = &str> {
    let mut seen: Vec<&str> = Vec::new();
    for name in p.split(',').map(str::trim) {
        if !name.is_empty() && !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen.into_iter()
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let mut parts: BTreeMap<Name, Part> = BTreeMap::new();
    let by_name: HashMap<&str, &Node> = s.nodes.iter().map(|n| (&*n.name, n)).collect();
    for p in s.partitions.iter() {
        let e = parts.entry(p.name.clone()).or_insert_with(Part::new);
        e.info = Some(p);
        for n in &p.nodes {
            if let Some(node) = by_name.get(&**n) {
                e.nodes.add(node);
            }
        }
    }
    // Without a partitions source (CLI without scontrol), membership comes from the nodes.
    if s.partitions.is_empty() {
        for n in s.nodes.iter() {
            for p in &n.partitions {
                parts
                    .entry(p.clone())
                    .or_insert_with(Part::new)
                    .nodes
                    .add(n);
            }
        }
    }
    let now = s.taken_epoch as f64;
    for j in s.jobs.iter() {
        for pname in job_partitions(&j.partition) {
            if !parts.contains_key(pname) {
                parts.insert(Name::from(pname), Part::new());
            }
            let Some(e) = parts.get_mut(pname) else {
                continue;
            };
            e.jobs.entry(j.state).or_default().add(j);
            if let (Some(sub), Some(start)) = (j.submit_epoch, j.start_epoch) {
                if j.state != JobState::Pending && start >= sub && (start as f64) <= now {
                    e.wait.observe_n((start - sub) as f64, j.task_count);
                }
            }
            if j.state == JobState::Pending {
                if let Some(sub) = j.submit_epoch {
                    let age = (now - sub as f64).max(0.0);
                    e.pending_age.observe_n(age, j.task_count);
                    e.oldest_pending = e.oldest_pending.max(age);
                }
            }
        }
    }

    let own = |p: &Name| Owner::Partition(p.clone());
    let f = out.gauge(
        "slurm_partition_info",
        "Partition state and whether it is the default (value 1).",
        &["partition", "state", "default"],
    );
    for (name, p) in &parts {
        let (state, default) = p
            .info
            .map(|i| (i.state.clone(), if i.is_default { "true" } else { "false" }))
            .unwrap_or_else(|| (Name::from("unknown"), "false"));
        f.push(own(name), [name.into(), state.into(), default.into()], 1.0);
    }
    let f = out.gauge(
        "slurm_partition_nodes",
        "Nodes in the partition by base state.",
        &["partition", "state"],
    );
    for (name, p) in &parts {
        for (i, st) in NodeBaseState::ALL.iter().enumerate() {
            f.push(
                own(name),
                [name.into(), st.as_str().into()],
                p.nodes.by_state[i] as f64,
            );
        }
    }
    let f = out.gauge(
        "slurm_partition_node_flags",
        "Nodes in the partition carrying each state flag (only flags present are shown).",
        &["partition", "flag"],
    );
    for (name, p) in &parts {
        for (i, (_, label)) in NodeFlags::ALL.iter().enumerate() {
            if p.nodes.flags[i] > 0 {
                f.push(
                    own(name),
                    [name.into(), (*label).into()],
                    p.nodes.flags[i] as f64,
                );
            }
        }
    }
    let f = out.gauge(
        "slurm_partition_nodes_configured",
        "Nodes in the partition.",
        &["partition"],
    );
    for (name, p) in &parts {
        f.push(own(name), [name.into()], p.nodes.nodes as f64);
    }
    for (metric, what, pick) in SPLITS {
        let f = out.gauge(
            format!("slurm_partition_{metric}"),
            format!("{what} of the partition's nodes: allocated, idle, other, as sinfo -p P %C splits CPUs; sums to the configured total."),
            &["partition", "state"],
        );
        for (name, p) in &parts {
            for (state, v) in Split::STATES.iter().zip(pick(&p.nodes).values()) {
                f.push(own(name), [name.into(), (*state).into()], v as f64);
            }
        }
        let f = out.gauge(
            configured_name("partition", metric),
            format!("{what} configured on the partition's nodes."),
            &["partition"],
        );
        for (name, p) in &parts {
            f.push(own(name), [name.into()], pick(&p.nodes).total() as f64);
        }
    }
    let f = out.gauge(
        "slurm_partition_cpus_not_listed",
        "CPUs Slurm's own partition total (TotalCPUs) counts beyond the partition's listed nodes (nodes the node query did not return); they are in neither slurm_partition_cpus nor slurm_partition_cpus_configured.",
        &["partition"],
    );
    for (name, p) in &parts {
        if let Some(i) = p.info.filter(|i| i.total_cpus > 0) {
            let gap = i.total_cpus.saturating_sub(p.nodes.cpus.total());
            f.push(own(name), [name.into()], gap as f64);
        }
    }
    let f = out.gauge(
        "slurm_partition_cpu_load",
        "Sum of the load average of the partition's responding nodes.",
        &["partition"],
    );
    for (name, p) in &parts {
        f.push(own(name), [name.into()], p.nodes.load);
    }

    let job_states = |p: &Part, st: JobState| p.jobs.get(&st).copied().unwrap_or_default();
    let shown = |p: &Part| -> Vec<JobState> {
        JobState::ALL
            .iter()
            .copied()
            .filter(|st| ALWAYS_SHOWN_JOB_STATES.contains(st) || p.jobs.contains_key(st))
            .collect()
    };
    let f = out.gauge(
        "slurm_partition_jobs",
        "Jobs in the partition by state (array tasks counted); a job submitted to several partitions counts in each, as squeue -p lists it, so sums over partitions may exceed slurm_cluster_jobs.",
        &["partition", "state"],
    );
    for (name, p) in &parts {
        for st in shown(p) {
            f.push(
                own(name),
                [name.into(), st.as_str().into()],
                job_states(p, st).jobs as f64,
            );
        }
    }
    for (metric, help, pick) in [
        (
            "slurm_partition_job_cpus",
            "CPUs held or requested by the partition's jobs, by job state.",
            (|t: JobTotals| t.cpus) as fn(JobTotals) -> u64,
        ),
        (
            "slurm_partition_job_memory_bytes",
            "Memory held or requested by the partition's jobs, by job state.",
            |t: JobTotals| t.memory_bytes,
        ),
        (
            "slurm_partition_job_gpus",
            "GPUs held or requested by the partition's jobs, by job state.",
            |t: JobTotals| t.gpus,
        ),
    ] {
        let f = out.gauge(metric, help, &["partition", "state"]);
        for (name, p) in &parts {
            for st in shown(p).into_iter().filter(|s| s.is_active()) {
                f.push(
                    own(name),
                    [name.into(), st.as_str().into()],
                    pick(job_states(p, st)) as f64,
                );
            }
        }
    }
    let f = out.histogram(
        "slurm_partition_job_wait_seconds",
        "Time from submission to start of the partition's started jobs still known to slurmctld.",
        &["partition"],
    );
    for (name, p) in &parts {
        f.push_histogram(own(name), [name.into()], &p.wait);
    }
    let f = out.histogram(
        "slurm_partition_pending_age_seconds",
        "How long the partition's pending jobs have waited so far.",
        &["partition"],
    );
    for (name, p) in &parts {
        f.push_histogram(own(name), [name.into()], &p.pending_age);
    }
    let f = out.gauge(
        "slurm_partition_pending_max_age_seconds",
        "Age of the partition's oldest pending job (0 when none).",
        &["partition"],
    );
    for (name, p) in &parts {
        f.push(own(name), [name.into()], p.oldest_pending);
    }
    for (metric, help, pick) in [
        (
            "slurm_partition_max_time_seconds",
            "Longest time limit a job may ask for in the partition (absent when unlimited).",
            (|i: &crate::model::Partition| i.max_time_seconds)
                as fn(&crate::model::Partition) -> Option<u64>,
        ),
        (
            "slurm_partition_default_time_seconds",
            "Time limit given to jobs that ask for none.",
            |i: &crate::model::Partition| i.default_time_seconds,
        ),
        (
            "slurm_partition_priority_tier",
            "Partition priority tier (higher is scheduled first).",
            |i: &crate::model::Partition| i.priority_tier,
        ),
        (
            "slurm_partition_max_nodes_per_job",
            "Most nodes one job may use in the partition (absent when unlimited).",
            |i: &crate::model::Partition| i.max_nodes_per_job,
        ),
    ] {
        let f = out.gauge(metric, help, &["partition"]);
        for (name, p) in &parts {
            if let Some(v) = p.info.and_then(pick) {
                f.push(own(name), [name.into()], v as f64);
            }
        }
    }
}
