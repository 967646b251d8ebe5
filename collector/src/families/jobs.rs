//! `slurm_jobs_*`, `slurm_qos_*` and the opt-in per-job `slurm_job_*` series.

use super::partitions::job_partitions;
use super::shared::{JobTotals, Options};
use crate::model::{Job, JobState, Name};
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::BTreeMap;

pub fn collect(s: &Snapshot, o: &Options, out: &mut Sink) {
    let mut reasons: BTreeMap<(&str, &Name), u64> = BTreeMap::new();
    let mut qos: BTreeMap<(&Name, JobState), JobTotals> = BTreeMap::new();
    let mut arrays: BTreeMap<&str, u64> = BTreeMap::new();
    for j in s.jobs.iter() {
        if j.state == JobState::Pending {
            let r = if j.reason.is_empty() {
                None
            } else {
                Some(&j.reason)
            };
            if let Some(r) = r {
                for p in job_partitions(&j.partition) {
                    *reasons.entry((p, r)).or_default() += j.task_count;
                }
            }
        }
        if j.state.is_active() {
            qos.entry((&j.qos, j.state)).or_default().add(j);
            if j.array_job_id != 0 {
                for p in job_partitions(&j.partition) {
                    *arrays.entry(p).or_default() += j.task_count;
                }
            }
        }
    }
    let f = out.gauge(
        "slurm_jobs_pending_reason",
        "Pending jobs (array tasks counted) by partition and the reason Slurm gives.",
        &["partition", "reason"],
    );
    for ((p, r), n) in &reasons {
        let p: Name = Name::from(*p);
        f.push(
            Owner::Partition(p.clone()),
            [p.into(), (*r).into()],
            *n as f64,
        );
    }
    let f = out.gauge(
        "slurm_jobs_array_tasks",
        "Array tasks not yet finished, by partition.",
        &["partition"],
    );
    for (p, n) in &arrays {
        let p: Name = Name::from(*p);
        f.push(Owner::Partition(p.clone()), [p.into()], *n as f64);
    }
    let f = out.gauge(
        "slurm_qos_jobs",
        "Jobs by QOS and state (active states).",
        &["qos", "state"],
    );
    for ((q, st), t) in &qos {
        f.push(
            Owner::Cluster,
            [(*q).into(), st.as_str().into()],
            t.jobs as f64,
        );
    }
    let f = out.gauge(
        "slurm_qos_job_cpus",
        "CPUs held or requested by jobs, by QOS and state.",
        &["qos", "state"],
    );
    for ((q, st), t) in &qos {
        f.push(
            Owner::Cluster,
            [(*q).into(), st.as_str().into()],
            t.cpus as f64,
        );
    }
    if o.per_job {
        per_job(s, o, out);
    }
}

/// Newest active jobs first, at most `per_job_limit` of them.
fn per_job(s: &Snapshot, o: &Options, out: &mut Sink) {
    let mut active: Vec<&Job> = s.jobs.iter().filter(|j| j.state.is_active()).collect();
    active.sort_by_key(|j| std::cmp::Reverse(j.job_id));
    active.truncate(o.per_job_limit);
    const LABELS: &[&str] = &["job_id", "partition", "account", "user"];
    let own = |j: &Job| Owner::User {
        account: j.account.clone(),
        user: j.user.clone(),
    };
    let labels = |j: &Job| {
        [
            j.job_id.to_string().into(),
            (&j.partition).into(),
            (&j.account).into(),
            (&j.user).into(),
        ]
    };
    let f = out.gauge(
        "slurm_job_state_info",
        "Per-job state and QOS (value 1; opt-in).",
        &["job_id", "partition", "account", "user", "state", "qos"],
    );
    for j in &active {
        let [a, b, c, d] = labels(j);
        f.push(
            own(j),
            [a, b, c, d, j.state.as_str().into(), (&j.qos).into()],
            1.0,
        );
    }
    type Pick = fn(&Job) -> Option<f64>;
    let specs: [(&'static str, &'static str, Pick); 7] = [
        ("slurm_job_cpus", "CPUs of the job (opt-in).", |j| {
            Some(j.cpus as f64)
        }),
        (
            "slurm_job_memory_bytes",
            "Memory of the job, whole job (opt-in).",
            |j| Some(j.memory_bytes as f64),
        ),
        ("slurm_job_gpus", "GPUs of the job (opt-in).", |j| {
            Some(j.gpus as f64)
        }),
        ("slurm_job_nodes", "Nodes of the job (opt-in).", |j| {
            Some(j.nodes as f64)
        }),
        (
            "slurm_job_submit_time_seconds",
            "Submission time, seconds since the epoch (opt-in).",
            |j| j.submit_epoch.map(|t| t as f64),
        ),
        (
            "slurm_job_start_time_seconds",
            "Start time, seconds since the epoch (opt-in).",
            |j| j.start_epoch.map(|t| t as f64),
        ),
        (
            "slurm_job_time_limit_seconds",
            "Time limit (opt-in; absent when unlimited).",
            |j| j.time_limit_seconds.map(|t| t as f64),
        ),
    ];
    for (name, help, pick) in specs {
        let f = out.gauge(name, help, LABELS);
        for j in &active {
            if let Some(v) = pick(j) {
                f.push(own(j), labels(j), v);
            }
        }
    }
}
