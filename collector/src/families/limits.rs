//! Limits next to what is in use, so a dashboard shows headroom:
//! - `slurm_account_limit_*{account}` / `slurm_user_limit_*{user,account}`: association limits
//!   as set in slurmdbd, with `slurm_account_usage_*` / `slurm_user_usage_*` counted from the
//!   queue the same way Slurm counts them against those limits;
//! - `slurm_qos_*{qos}`: QOS settings and limits, with `slurm_qos_usage_*` and the per-user
//!   and per-account use of each QOS (`slurm_user_qos_usage_*`, `slurm_account_qos_usage_*`).
//!
//! Unset and unlimited limits are absent, never a sentinel. Memory is in bytes, times in
//! seconds, TRES-minute limits in TRES-seconds. Limits are the ones set on the association
//! itself: inherited ones are not resolved. Account usage includes the account's
//! sub-accounts (Grp limits count the subtree); user usage is the user's jobs in the account.
//! Per-user QOS limits count a user's jobs across all accounts; the usage series split that
//! by account, so sum them by user to compare. Partition-specific associations are left out.

use super::shared::Options;
use crate::model::accounts::AssocLimits;
use crate::model::{Association, Job, Name, Qos};
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::{BTreeMap, HashMap};

type AssocPick = fn(&AssocLimits) -> Option<u64>;
type QosPick = fn(&Qos) -> Option<u64>;

/// Association limits: (suffix, help). The same set exists per account and per user.
const ASSOC_LIMITS: &[(&str, &str, AssocPick)] = &[
    ("grp_cpus", "GrpTRES cpu: CPUs all running jobs of the association (and its children) may hold.", |l| l.grp_tres.cpus),
    ("grp_memory_bytes", "GrpTRES mem: memory all running jobs of the association (and its children) may hold.", |l| l.grp_tres.memory_bytes),
    ("grp_gpus", "GrpTRES gres/gpu: GPUs all running jobs of the association (and its children) may hold.", |l| l.grp_tres.gpus),
    ("grp_nodes", "GrpTRES node: nodes all running jobs of the association (and its children) may hold.", |l| l.grp_tres.nodes),
    ("grp_billing", "GrpTRES billing: billing units all running jobs of the association may hold.", |l| l.grp_tres.billing),
    ("grp_jobs", "GrpJobs: running jobs of the association and its children.", |l| l.grp_jobs),
    ("grp_jobs_accrue", "GrpJobsAccrue: pending jobs of the association and its children accruing age priority.", |l| l.grp_jobs_accrue),
    ("grp_submit_jobs", "GrpSubmitJobs: pending plus running jobs of the association and its children.", |l| l.grp_submit_jobs),
    ("grp_wall_seconds", "GrpWall: wall time running jobs of the association may use.", |l| l.grp_wall_seconds),
    ("grp_cpu_seconds", "GrpTRESMins cpu, in CPU-seconds: past, present and future use of the association.", |l| l.grp_tres_seconds.cpus),
    ("grp_gpu_seconds", "GrpTRESMins gres/gpu, in GPU-seconds: past, present and future use of the association.", |l| l.grp_tres_seconds.gpus),
    ("grp_cpu_run_seconds", "GrpTRESRunMins cpu, in CPU-seconds: what running jobs may still use (cores x remaining time limit).", |l| l.grp_tres_run_seconds.cpus),
    ("grp_gpu_run_seconds", "GrpTRESRunMins gres/gpu, in GPU-seconds: what running jobs may still use.", |l| l.grp_tres_run_seconds.gpus),
    ("max_jobs", "MaxJobs: running jobs per user.", |l| l.max_jobs),
    ("max_jobs_accrue", "MaxJobsAccrue: pending jobs per user accruing age priority.", |l| l.max_jobs_accrue),
    ("max_submit_jobs", "MaxSubmitJobs: pending plus running jobs per user.", |l| l.max_submit_jobs),
    ("max_cpus_per_job", "MaxTRESPerJob cpu.", |l| l.max_tres_per_job.cpus),
    ("max_memory_bytes_per_job", "MaxTRESPerJob mem.", |l| l.max_tres_per_job.memory_bytes),
    ("max_gpus_per_job", "MaxTRESPerJob gres/gpu.", |l| l.max_tres_per_job.gpus),
    ("max_nodes_per_job", "MaxTRESPerJob node.", |l| l.max_tres_per_job.nodes),
    ("max_cpus_per_node", "MaxTRESPerNode cpu.", |l| l.max_tres_per_node.cpus),
    ("max_memory_bytes_per_node", "MaxTRESPerNode mem.", |l| l.max_tres_per_node.memory_bytes),
    ("max_gpus_per_node", "MaxTRESPerNode gres/gpu.", |l| l.max_tres_per_node.gpus),
    ("max_cpu_seconds_per_job", "MaxTRESMinsPerJob cpu, in CPU-seconds.", |l| l.max_tres_seconds_per_job.cpus),
    ("max_wall_seconds_per_job", "MaxWallDurationPerJob.", |l| l.max_wall_seconds_per_job),
];

/// What the queue uses, counted as Slurm counts it against limits.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Usage {
    /// Jobs holding resources (running, suspended, completing, configuring).
    running: u64,
    /// Pending plus running (every active job), for submit limits.
    submitted: u64,
    cpus: u64,
    memory_bytes: u64,
    gpus: u64,
    nodes: u64,
    /// Cores x remaining time limit of running jobs (Slurm's grp_used_tres_run_secs).
    cpu_run_seconds: u64,
    gpu_run_seconds: u64,
}

impl Usage {
    fn add(&mut self, j: &Job, now: u64) {
        let n = j.task_count;
        if j.state.is_active() {
            self.submitted += n;
        }
        if j.state.holds_resources() {
            self.running += n;
            self.cpus += j.cpus * n;
            self.memory_bytes += j.memory_bytes * n;
            self.gpus += j.gpus * n;
            self.nodes += j.nodes * n;
            if let (Some(limit), Some(start)) = (j.time_limit_seconds, j.start_epoch) {
                let left = (start.saturating_add(limit)).saturating_sub(now.max(start));
                self.cpu_run_seconds += j.cpus * n * left;
                self.gpu_run_seconds += j.gpus * n * left;
            }
        }
    }
}

type UsagePick = fn(&Usage) -> u64;

const USAGE: &[(&str, &str, UsagePick)] = &[
    (
        "jobs",
        "Running jobs (running, suspended, completing), as counted against GrpJobs/MaxJobs.",
        |u| u.running,
    ),
    (
        "submitted_jobs",
        "Pending plus running jobs, as counted against GrpSubmitJobs/MaxSubmitJobs.",
        |u| u.submitted,
    ),
    (
        "cpus",
        "CPUs held by running jobs, as counted against GrpTRES cpu.",
        |u| u.cpus,
    ),
    (
        "memory_bytes",
        "Memory held by running jobs, as counted against GrpTRES mem.",
        |u| u.memory_bytes,
    ),
    (
        "gpus",
        "GPUs held by running jobs, as counted against GrpTRES gres/gpu.",
        |u| u.gpus,
    ),
    (
        "nodes",
        "Nodes held by running jobs, as counted against GrpTRES node.",
        |u| u.nodes,
    ),
    (
        "cpu_run_seconds",
        "CPUs x remaining time limit of running jobs, as counted against GrpTRESRunMins cpu.",
        |u| u.cpu_run_seconds,
    ),
    (
        "gpu_run_seconds",
        "GPUs x remaining time limit of running jobs, as counted against GrpTRESRunMins gres/gpu.",
        |u| u.gpu_run_seconds,
    ),
];

/// QOS limits: (suffix, help).
const QOS_LIMITS: &[(&str, &str, QosPick)] = &[
    (
        "grp_cpus",
        "GrpTRES cpu: CPUs all running jobs in the QOS may hold.",
        |q| q.grp_tres.cpus,
    ),
    (
        "grp_memory_bytes",
        "GrpTRES mem: memory all running jobs in the QOS may hold.",
        |q| q.grp_tres.memory_bytes,
    ),
    (
        "grp_gpus",
        "GrpTRES gres/gpu: GPUs all running jobs in the QOS may hold.",
        |q| q.grp_tres.gpus,
    ),
    (
        "grp_nodes",
        "GrpTRES node: nodes all running jobs in the QOS may hold.",
        |q| q.grp_tres.nodes,
    ),
    ("grp_jobs", "GrpJobs: running jobs in the QOS.", |q| {
        q.grp_jobs
    }),
    (
        "grp_jobs_accrue",
        "GrpJobsAccrue: pending jobs in the QOS accruing age priority.",
        |q| q.grp_jobs_accrue,
    ),
    (
        "grp_submit_jobs",
        "GrpSubmitJobs: pending plus running jobs in the QOS.",
        |q| q.grp_submit_jobs,
    ),
    (
        "grp_wall_seconds",
        "GrpWall: wall time running jobs in the QOS may use.",
        |q| q.grp_wall_seconds,
    ),
    ("grp_cpu_seconds", "GrpTRESMins cpu, in CPU-seconds.", |q| {
        q.grp_tres_seconds.cpus
    }),
    (
        "grp_cpu_run_seconds",
        "GrpTRESRunMins cpu, in CPU-seconds: what running jobs in the QOS may still use.",
        |q| q.grp_tres_run_seconds.cpus,
    ),
    (
        "max_jobs_per_user",
        "MaxJobsPerUser: running jobs per user in the QOS.",
        |q| q.max_jobs_per_user,
    ),
    (
        "max_jobs_per_account",
        "MaxJobsPerAccount: running jobs per account in the QOS.",
        |q| q.max_jobs_per_account,
    ),
    (
        "max_submit_jobs_per_user",
        "MaxSubmitJobsPerUser: pending plus running jobs per user in the QOS.",
        |q| q.max_submit_jobs_per_user,
    ),
    (
        "max_submit_jobs_per_account",
        "MaxSubmitJobsPerAccount: pending plus running jobs per account in the QOS.",
        |q| q.max_submit_jobs_per_account,
    ),
    (
        "max_jobs_accrue_per_user",
        "MaxJobsAccruePerUser: pending jobs per user accruing age priority.",
        |q| q.max_jobs_accrue_per_user,
    ),
    (
        "max_jobs_accrue_per_account",
        "MaxJobsAccruePerAccount: pending jobs per account accruing age priority.",
        |q| q.max_jobs_accrue_per_account,
    ),
    ("max_cpus_per_user", "MaxTRESPerUser cpu.", |q| {
        q.max_tres_per_user.cpus
    }),
    ("max_memory_bytes_per_user", "MaxTRESPerUser mem.", |q| {
        q.max_tres_per_user.memory_bytes
    }),
    ("max_gpus_per_user", "MaxTRESPerUser gres/gpu.", |q| {
        q.max_tres_per_user.gpus
    }),
    ("max_nodes_per_user", "MaxTRESPerUser node.", |q| {
        q.max_tres_per_user.nodes
    }),
    ("max_cpus_per_account", "MaxTRESPerAccount cpu.", |q| {
        q.max_tres_per_account.cpus
    }),
    ("max_gpus_per_account", "MaxTRESPerAccount gres/gpu.", |q| {
        q.max_tres_per_account.gpus
    }),
    ("max_cpus_per_job", "MaxTRESPerJob cpu.", |q| {
        q.max_tres_per_job.cpus
    }),
    ("max_memory_bytes_per_job", "MaxTRESPerJob mem.", |q| {
        q.max_tres_per_job.memory_bytes
    }),
    ("max_gpus_per_job", "MaxTRESPerJob gres/gpu.", |q| {
        q.max_tres_per_job.gpus
    }),
    ("max_nodes_per_job", "MaxTRESPerJob node.", |q| {
        q.max_tres_per_job.nodes
    }),
    ("max_cpus_per_node", "MaxTRESPerNode cpu.", |q| {
        q.max_tres_per_node.cpus
    }),
    ("max_gpus_per_node", "MaxTRESPerNode gres/gpu.", |q| {
        q.max_tres_per_node.gpus
    }),
    (
        "min_cpus_per_job",
        "MinTRESPerJob cpu: the least a job in the QOS must ask for.",
        |q| q.min_tres_per_job.cpus,
    ),
    (
        "max_cpu_seconds_per_job",
        "MaxTRESMinsPerJob cpu, in CPU-seconds.",
        |q| q.max_tres_seconds_per_job.cpus,
    ),
    ("max_wall_seconds_per_job", "MaxWallDurationPerJob.", |q| {
        q.max_wall_seconds_per_job
    }),
];

fn account_owner(account: &Name) -> Owner {
    if &**account == "root" {
        Owner::Cluster
    } else {
        Owner::Account(account.clone())
    }
}

fn user_owner(account: &Name, user: &Name) -> Owner {
    Owner::User {
        account: account.clone(),
        user: user.clone(),
    }
}

/// The account and its ancestors, nearest first, as far as the tree is known.
fn lineage<'a>(account: &'a Name, parents: &HashMap<&'a str, &'a Name>) -> Vec<&'a Name> {
    let mut out = vec![account];
    let mut cur = account;
    // The depth bound guards against a cycle in hostile data.
    while let Some(p) = parents.get(&**cur).filter(|p| !p.is_empty()) {
        if out.len() > 64 || out.contains(p) {
            break;
        }
        out.push(p);
        cur = p;
    }
    out
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let general = || s.associations.iter().filter(|a| a.partition.is_empty());
    let mut accounts: BTreeMap<&Name, &Association> = BTreeMap::new();
    let mut users: BTreeMap<(&Name, &Name), &Association> = BTreeMap::new();
    for a in general() {
        if a.is_account() {
            accounts.entry(&a.account).or_insert(a);
        } else {
            users.entry((&a.account, &a.user)).or_insert(a);
        }
    }
    let parents: HashMap<&str, &Name> = accounts
        .iter()
        .map(|(acct, a)| (&***acct, &a.parent_account))
        .collect();

    // Usage: every known association shows 0 when idle, so headroom is always computable.
    let mut acct_use: BTreeMap<&Name, Usage> =
        accounts.keys().map(|a| (*a, Usage::default())).collect();
    let mut user_use: BTreeMap<(&Name, &Name), Usage> =
        users.keys().map(|k| (*k, Usage::default())).collect();
    let mut qos_use: BTreeMap<&Name, Usage> =
        s.qos.iter().map(|q| (&q.name, Usage::default())).collect();
    let mut qos_user_use: BTreeMap<(&Name, &Name, &Name), Usage> = BTreeMap::new();
    let mut qos_acct_use: BTreeMap<(&Name, &Name), Usage> = BTreeMap::new();
    let now = s.taken_epoch;
    // Without accounting data there are no limits to compare with: the queue per account
    // is already in `slurm_account_*` (users family), so usage is shown only next to limits.
    let with_assocs = !s.associations.is_empty();
    let with_qos = !s.qos.is_empty();
    for j in s.jobs.iter().filter(|j| j.state.is_active()) {
        if with_assocs && !j.account.is_empty() {
            for a in lineage(&j.account, &parents) {
                acct_use.entry(a).or_default().add(j, now);
            }
            if !j.user.is_empty() {
                user_use
                    .entry((&j.account, &j.user))
                    .or_default()
                    .add(j, now);
            }
        }
        if with_qos && !j.qos.is_empty() {
            qos_use.entry(&j.qos).or_default().add(j, now);
            if !j.account.is_empty() {
                qos_acct_use
                    .entry((&j.account, &j.qos))
                    .or_default()
                    .add(j, now);
                if !j.user.is_empty() {
                    qos_user_use
                        .entry((&j.account, &j.user, &j.qos))
                        .or_default()
                        .add(j, now);
                }
            }
        }
    }

    for (suffix, help, pick) in ASSOC_LIMITS {
        let f = out.gauge(
            format!("slurm_account_limit_{suffix}"),
            format!("{help} Set on the account's association; absent when unlimited."),
            &["account"],
        );
        for (acct, a) in &accounts {
            if let Some(v) = pick(&a.limits) {
                f.push(account_owner(acct), [(*acct).into()], v as f64);
            }
        }
        let f = out.gauge(
            format!("slurm_user_limit_{suffix}"),
            format!("{help} Set on the user's association in the account; absent when unlimited or inherited."),
            &["user", "account"],
        );
        for ((acct, user), a) in &users {
            if let Some(v) = pick(&a.limits) {
                f.push(
                    user_owner(acct, user),
                    [(*user).into(), (*acct).into()],
                    v as f64,
                );
            }
        }
    }
    for (suffix, help, pick) in USAGE {
        let f = out.gauge(
            format!("slurm_account_usage_{suffix}"),
            format!("{help} Account and its sub-accounts."),
            &["account"],
        );
        for (acct, u) in &acct_use {
            f.push(account_owner(acct), [(*acct).into()], pick(u) as f64);
        }
        let f = out.gauge(
            format!("slurm_user_usage_{suffix}"),
            format!("{help} The user's jobs in the account."),
            &["user", "account"],
        );
        for ((acct, user), u) in &user_use {
            f.push(
                user_owner(acct, user),
                [(*user).into(), (*acct).into()],
                pick(u) as f64,
            );
        }
    }

    qos_settings(s, out);
    for (suffix, help, pick) in QOS_LIMITS {
        let f = out.gauge(
            format!("slurm_qos_limit_{suffix}"),
            format!("{help} Absent when unlimited."),
            &["qos"],
        );
        for q in s.qos.iter() {
            if let Some(v) = pick(q) {
                f.push(Owner::Cluster, [(&q.name).into()], v as f64);
            }
        }
    }
    for (suffix, help, pick) in &USAGE[..6] {
        let f = out.gauge(
            format!("slurm_qos_usage_{suffix}"),
            format!("{help} All jobs in the QOS."),
            &["qos"],
        );
        for (q, u) in &qos_use {
            f.push(Owner::Cluster, [(*q).into()], pick(u) as f64);
        }
    }
    for (suffix, help, pick) in &USAGE[..3] {
        let f = out.gauge(
            format!("slurm_account_qos_usage_{suffix}"),
            format!("{help} The account's jobs in the QOS (compare with slurm_qos_limit_*_per_account)."),
            &["account", "qos"],
        );
        for ((acct, q), u) in &qos_acct_use {
            f.push(
                account_owner(acct),
                [(*acct).into(), (*q).into()],
                pick(u) as f64,
            );
        }
        let f = out.gauge(
            format!("slurm_user_qos_usage_{suffix}"),
            format!("{help} The user's jobs in the account and QOS (per-user QOS limits count the sum over accounts)."),
            &["user", "account", "qos"],
        );
        for ((acct, user, q), u) in &qos_user_use {
            f.push(
                user_owner(acct, user),
                [(*user).into(), (*acct).into(), (*q).into()],
                pick(u) as f64,
            );
        }
    }
}

/// Scheduling settings of each QOS (not limits): priority, usage factors, preemption.
fn qos_settings(s: &Snapshot, out: &mut Sink) {
    let f = out.gauge(
        "slurm_qos_info",
        "QOS preemption mode (`cluster` when it uses the cluster's), the QOS it may preempt, and its flags (value 1).",
        &["qos", "preempt_mode", "preempt", "flags"],
    );
    let join = |v: &[Name]| v.iter().map(|n| &**n).collect::<Vec<_>>().join(",");
    for q in s.qos.iter() {
        f.push(
            Owner::Cluster,
            [
                (&q.name).into(),
                (&q.preempt_mode).into(),
                join(&q.preempt).into(),
                join(&q.flags).into(),
            ],
            1.0,
        );
    }
    type Pick = fn(&Qos) -> Option<f64>;
    let settings: [(&str, &str, Pick); 6] = [
        ("slurm_qos_priority", "QOS priority (weighted by PriorityWeightQOS in job priority).", |q| q.priority.map(|v| v as f64)),
        ("slurm_qos_usage_factor", "UsageFactor: how much a job's usage in the QOS counts for fairshare and TRES-minute limits.", |q| q.usage_factor),
        ("slurm_qos_usage_threshold", "UsageThreshold: the lowest fairshare factor an association may have to run jobs in the QOS.", |q| q.usage_threshold),
        ("slurm_qos_tres_limit_factor", "LimitFactor: scales the TRES limits of associations running jobs in the QOS.", |q| q.limit_factor),
        ("slurm_qos_grace_time_seconds", "GraceTime: how long a preempted job of the QOS may keep running.", |q| q.grace_time_seconds.map(|v| v as f64)),
        ("slurm_qos_preempt_exempt_time_seconds", "PreemptExemptTime: how long a job of the QOS runs before it may be preempted.", |q| q.preempt_exempt_seconds.map(|v| v as f64)),
    ];
    for (name, help, pick) in settings {
        let f = out.gauge(name, help, &["qos"]);
        for q in s.qos.iter() {
            if let Some(v) = pick(q) {
                f.push(Owner::Cluster, [(&q.name).into()], v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Interner, JobState};
    use crate::parse::associations::{lab_associations, parse_associations_json};
    use crate::parse::qos::parse_qos_json;
    use crate::store::{encode, Format, Kind};
    use std::collections::BTreeSet;
    use std::sync::Arc;

    const NOW: u64 = 1_800_000_000;
    const GIB: u64 = 1 << 30;

    #[allow(clippy::too_many_arguments)]
    fn job(
        n: &mut Interner,
        account: &str,
        user: &str,
        qos: &str,
        state: JobState,
        cpus: u64,
        gpus: u64,
        memory_bytes: u64,
    ) -> Job {
        Job {
            job_id: 1,
            array_job_id: 0,
            array_task_id: None,
            task_count: 1,
            state,
            reason: n.intern(""),
            partition: n.intern("cpu"),
            account: n.intern(account),
            user: n.intern(user),
            qos: n.intern(qos),
            cpus,
            nodes: 1,
            memory_bytes,
            gpus,
            gpu_type: n.intern(""),
            submit_epoch: Some(NOW - 1200),
            start_epoch: (state == JobState::Running).then_some(NOW - 600),
            end_epoch: None,
            time_limit_seconds: Some(3600),
            priority: Some(1),
            exit_code: None,
            node_list: n.intern(""),
        }
    }

    /// The lab's accounting (22.05 captures) with a queue shaped like `lab.sh submit-mix`.
    fn lab() -> Snapshot {
        use JobState::{Completed, Pending, Running};
        let mut n = Interner::default();
        let associations = lab_associations(&mut n);
        let qos = parse_qos_json(
            include_bytes!("../../testdata/rest/22.05.8/slurmdb_v0.0.38_qos.json"),
            &mut n,
        )
        .expect("parses");
        let mut array = job(&mut n, "physics", "alice", "normal", Pending, 1, 0, GIB);
        array.task_count = 32;
        let jobs = vec![
            job(
                &mut n,
                "biology",
                "dave",
                "normal",
                Running,
                32,
                0,
                64 * GIB,
            ),
            job(&mut n, "biology", "dave", "normal", Pending, 64, 0, GIB),
            job(&mut n, "chemistry", "carol", "normal", Running, 2, 0, GIB),
            job(&mut n, "chemistry", "carol", "normal", Running, 2, 0, GIB),
            job(&mut n, "chemistry", "carol", "normal", Pending, 2, 0, GIB),
            job(
                &mut n,
                "chemistry",
                "alice",
                "high",
                Running,
                8,
                2,
                16 * GIB,
            ),
            job(&mut n, "physics", "bob", "low", Running, 1, 0, GIB),
            job(&mut n, "physics", "bob", "low", Pending, 1, 0, GIB),
            job(&mut n, "physics", "bob", "low", Completed, 1, 0, GIB),
            array,
        ];
        Snapshot {
            taken_epoch: NOW,
            associations: Arc::new(associations),
            qos: Arc::new(qos),
            jobs: Arc::new(jobs),
            ..Snapshot::default()
        }
    }

    fn families(s: &Snapshot) -> Vec<crate::store::Family> {
        let mut sink = Sink::default();
        collect(s, &Options::default(), &mut sink);
        super::super::fairshare::collect(s, &Options::default(), &mut sink);
        sink.into_families()
    }

    fn text(s: &Snapshot, visible: &dyn Fn(&Owner) -> bool) -> String {
        let mut out = Vec::new();
        encode(&families(s), Format::Text, visible, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn limits_sit_next_to_usage_for_headroom() {
        let t = text(&lab(), &|_| true);
        for line in [
            // biology GrpTRES cpu=64, 32 in use by dave's running job
            "slurm_account_limit_grp_cpus{account=\"biology\"} 64\n",
            "slurm_account_usage_cpus{account=\"biology\"} 32\n",
            "slurm_account_usage_memory_bytes{account=\"biology\"} 68719476736\n",
            "slurm_account_usage_submitted_jobs{account=\"biology\"} 2\n",
            // 32 cores x 3000 s left of a 1 h limit
            "slurm_account_usage_cpu_run_seconds{account=\"biology\"} 96000\n",
            // carol@chemistry MaxJobs=2, two running, one pending
            "slurm_user_limit_max_jobs{user=\"carol\",account=\"chemistry\"} 2\n",
            "slurm_user_usage_jobs{user=\"carol\",account=\"chemistry\"} 2\n",
            "slurm_user_usage_submitted_jobs{user=\"carol\",account=\"chemistry\"} 3\n",
            "slurm_user_usage_gpus{user=\"alice\",account=\"chemistry\"} 2\n",
            // idle associations show 0, not a gap
            "slurm_user_usage_jobs{user=\"root\",account=\"physics\"} 0\n",
            // the root account sums the tree: 32 + 2 + 2 + 8 + 1 CPUs running
            "slurm_account_usage_cpus{account=\"root\"} 45\n",
            "slurm_account_usage_submitted_jobs{account=\"physics\"} 34\n",
            // QOS low MaxJobsPerUser=1: bob has one running and one pending in it
            "slurm_qos_limit_max_jobs_per_user{qos=\"low\"} 1\n",
            "slurm_user_qos_usage_jobs{user=\"bob\",account=\"physics\",qos=\"low\"} 1\n",
            "slurm_user_qos_usage_submitted_jobs{user=\"bob\",account=\"physics\",qos=\"low\"} 2\n",
            "slurm_account_qos_usage_cpus{account=\"chemistry\",qos=\"high\"} 8\n",
            "slurm_qos_usage_jobs{qos=\"normal\"} 3\n",
            "slurm_qos_usage_jobs{qos=\"high\"} 1\n",
            "slurm_qos_limit_max_wall_seconds_per_job{qos=\"high\"} 172800\n",
            "slurm_qos_priority{qos=\"high\"} 100\n",
            "slurm_qos_usage_factor{qos=\"low\"} 1\n",
            "slurm_qos_info{qos=\"low\",preempt_mode=\"cluster\",preempt=\"\",flags=\"\"} 1\n",
            "# HELP slurm_account_limit_grp_cpus GrpTRES cpu:",
            "# TYPE slurm_user_usage_jobs gauge\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(
            !t.contains("slurm_user_limit_max_jobs{user=\"bob\""),
            "unset limits are absent"
        );
        assert!(!t.contains("slurm_qos_limit_max_jobs_per_user{qos=\"normal\"}"));
        assert!(!t.contains("4294967"), "no sentinel reaches the output");
    }

    #[test]
    fn tenants_see_their_accounts_but_not_the_cluster() {
        let t = text(
            &lab(),
            &|o| matches!(o, Owner::Account(a) | Owner::User { account: a, .. } if &**a == "chemistry"),
        );
        assert!(t.contains("slurm_account_usage_jobs{account=\"chemistry\"} 3\n"));
        assert!(t.contains("slurm_user_limit_max_jobs{user=\"carol\",account=\"chemistry\"} 2\n"));
        assert!(!t.contains("account=\"root\""));
        assert!(!t.contains("account=\"biology\""));
        assert!(
            !t.lines().any(|l| l.starts_with("slurm_qos_")),
            "QOS-wide series are the cluster's"
        );
    }

    #[test]
    fn newer_limits_in_every_unit() {
        let mut n = Interner::default();
        let assocs = parse_associations_json(
            include_bytes!("../../testdata/rest/25.11.0/slurmdb_v0.0.44_associations.json"),
            &mut n,
        )
        .expect("parses");
        let qos = parse_qos_json(
            include_bytes!("../../testdata/rest/25.11.0/slurmdb_v0.0.44_qos.json"),
            &mut n,
        )
        .expect("parses");
        let s = Snapshot {
            associations: Arc::new(assocs),
            qos: Arc::new(qos),
            ..Snapshot::default()
        };
        let t = text(&s, &|_| true);
        for line in [
            "slurm_account_limit_grp_memory_bytes{account=\"biology\"} 274877906944\n",
            "slurm_account_limit_grp_gpus{account=\"biology\"} 8\n",
            "slurm_account_limit_grp_jobs{account=\"biology\"} 20\n",
            "slurm_account_limit_grp_cpu_seconds{account=\"biology\"} 60000000\n",
            "slurm_user_limit_max_wall_seconds_per_job{user=\"dave\",account=\"biology\"} 172800\n",
            "slurm_user_limit_max_gpus_per_node{user=\"dave\",account=\"biology\"} 2\n",
            "slurm_user_limit_max_jobs{user=\"dave\",account=\"biology\"} 4\n",
            "slurm_qos_limit_max_memory_bytes_per_user{qos=\"high\"} 137438953472\n",
            "slurm_qos_limit_grp_submit_jobs{qos=\"low\"} 100\n",
            "slurm_qos_grace_time_seconds{qos=\"high\"} 120\n",
            "slurm_qos_info{qos=\"high\",preempt_mode=\"requeue\",preempt=\"\",flags=\"DENY_LIMIT\"} 1\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(
            !t.contains("slurm_account_limit_grp_wall_seconds"),
            "infinite is absent"
        );
        assert!(
            !t.contains("slurm_user_limit_max_jobs{user=\"dave\",account=\"biology\"} 1\n"),
            "the partition association does not replace the general one"
        );
    }

    #[test]
    fn at_least_forty_well_formed_metric_names() {
        let mut s = lab();
        let mut n = Interner::default();
        s.qos = Arc::new(
            parse_qos_json(
                include_bytes!("../../testdata/rest/25.11.0/slurmdb_v0.0.44_qos.json"),
                &mut n,
            )
            .expect("parses"),
        );
        let fams = families(&s);
        let mut names = BTreeSet::new();
        for f in &fams {
            assert_eq!(f.kind, Kind::Gauge, "{}", f.name);
            assert!(!f.name.ends_with("_total"), "{}", f.name);
            assert!(f.help.len() > 10, "{}", f.name);
            assert!(
                f.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                f.name
            );
            assert!(names.insert(f.name.to_string()), "{} twice", f.name);
            if !f.series.is_empty() {
                let labels: BTreeSet<Vec<String>> = f
                    .series
                    .iter()
                    .map(|s| s.labels.iter().map(|l| l.to_string()).collect())
                    .collect();
                assert_eq!(labels.len(), f.series.len(), "{}: duplicate series", f.name);
            }
        }
        let shown = fams.iter().filter(|f| !f.series.is_empty()).count();
        assert!(shown >= 40, "only {shown} metric names with series");
    }

    #[test]
    fn empty_snapshot_and_hostile_tree_do_not_panic() {
        assert!(text(&Snapshot::default(), &|_| true).is_empty());
        // Jobs without accounting data: nothing to put usage next to.
        let mut n = Interner::default();
        let only_jobs = Snapshot {
            jobs: Arc::new(vec![job(
                &mut n,
                "a",
                "u",
                "normal",
                JobState::Running,
                3,
                0,
                0,
            )]),
            ..Snapshot::default()
        };
        assert!(text(&only_jobs, &|_| true).is_empty());
        // A parent cycle (a -> b -> a) must not loop.
        let mut n = Interner::default();
        let acct = |name: &str, parent: &str, n: &mut Interner| Association {
            account: n.intern(name),
            user: n.intern(""),
            parent_account: n.intern(parent),
            partition: n.intern(""),
            ..Association::default()
        };
        let s = Snapshot {
            associations: Arc::new(vec![acct("a", "b", &mut n), acct("b", "a", &mut n)]),
            jobs: Arc::new(vec![job(&mut n, "a", "u", "", JobState::Running, 3, 0, 0)]),
            taken_epoch: NOW,
            ..Snapshot::default()
        };
        let t = text(&s, &|_| true);
        assert!(t.contains("slurm_account_usage_cpus{account=\"a\"} 3\n"));
        assert!(t.contains("slurm_account_usage_cpus{account=\"b\"} 3\n"));
    }
}
