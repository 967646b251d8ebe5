//! `slurm_account_*` and `slurm_user_*`: the queue seen per Slurm account and per user in an
//! account. These are the series tenants own: account series belong to the account, user
//! series to the (account, user) pair.

use super::partitions::primary_partition;
use super::shared::{JobTotals, Options};
use crate::model::{JobState, Name};
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::{BTreeMap, BTreeSet};

type Pick = fn(&JobTotals) -> u64;

const RESOURCES: [(&str, &str, &str, &str, Pick); 4] = [
    (
        "slurm_account_cpus",
        "CPUs held (running, suspended, completing) or requested (pending) by the account's jobs, by job state.",
        "slurm_user_cpus",
        "CPUs held or requested by the user's jobs in the account, by job state.",
        |t| t.cpus,
    ),
    (
        "slurm_account_memory_bytes",
        "Memory held or requested by the account's jobs, by job state.",
        "slurm_user_memory_bytes",
        "Memory held or requested by the user's jobs in the account, by job state.",
        |t| t.memory_bytes,
    ),
    (
        "slurm_account_gpus",
        "GPUs held or requested by the account's jobs, by job state.",
        "slurm_user_gpus",
        "GPUs held or requested by the user's jobs in the account, by job state.",
        |t| t.gpus,
    ),
    (
        "slurm_account_nodes",
        "Nodes held or requested by the account's jobs, by job state.",
        "slurm_user_nodes",
        "Nodes held or requested by the user's jobs in the account, by job state.",
        |t| t.nodes,
    ),
];

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let mut acct: BTreeMap<(&Name, JobState), JobTotals> = BTreeMap::new();
    let mut user: BTreeMap<(&Name, &Name, JobState), JobTotals> = BTreeMap::new();
    let mut reasons: BTreeMap<(&Name, &Name), u64> = BTreeMap::new();
    let mut acct_parts: BTreeMap<(&Name, &str, JobState), u64> = BTreeMap::new();
    let mut active_users: BTreeMap<&Name, BTreeSet<&Name>> = BTreeMap::new();
    for j in s.jobs.iter() {
        acct.entry((&j.account, j.state)).or_default().add(j);
        user.entry((&j.account, &j.user, j.state))
            .or_default()
            .add(j);
        if j.state.is_active() {
            active_users.entry(&j.account).or_default().insert(&j.user);
            *acct_parts
                .entry((&j.account, primary_partition(&j.partition), j.state))
                .or_default() += j.task_count;
        }
        if j.state == JobState::Pending && !j.reason.is_empty() {
            *reasons.entry((&j.account, &j.reason)).or_default() += j.task_count;
        }
    }
    let a_own = |a: &Name| Owner::Account(a.clone());
    let u_own = |a: &Name, u: &Name| Owner::User {
        account: a.clone(),
        user: u.clone(),
    };

    let f = out.gauge(
        "slurm_account_jobs",
        "Jobs of the account by state (array tasks counted).",
        &["account", "state"],
    );
    for ((a, st), t) in &acct {
        f.push(a_own(a), [(*a).into(), st.as_str().into()], t.jobs as f64);
    }
    let f = out.gauge(
        "slurm_user_jobs",
        "Jobs of the user in the account by state (array tasks counted).",
        &["user", "account", "state"],
    );
    for ((a, u, st), t) in &user {
        f.push(
            u_own(a, u),
            [(*u).into(), (*a).into(), st.as_str().into()],
            t.jobs as f64,
        );
    }
    for (aname, ahelp, uname, uhelp, pick) in RESOURCES {
        let f = out.gauge(aname, ahelp, &["account", "state"]);
        for ((a, st), t) in acct.iter().filter(|((_, st), _)| st.is_active()) {
            f.push(a_own(a), [(*a).into(), st.as_str().into()], pick(t) as f64);
        }
        let f = out.gauge(uname, uhelp, &["user", "account", "state"]);
        for ((a, u, st), t) in user.iter().filter(|((_, _, st), _)| st.is_active()) {
            f.push(
                u_own(a, u),
                [(*u).into(), (*a).into(), st.as_str().into()],
                pick(t) as f64,
            );
        }
    }
    let f = out.gauge(
        "slurm_account_partition_jobs",
        "Active jobs of the account per partition and state.",
        &["account", "partition", "state"],
    );
    for ((a, p, st), n) in &acct_parts {
        f.push(
            a_own(a),
            [(*a).into(), Name::from(*p).into(), st.as_str().into()],
            *n as f64,
        );
    }
    let f = out.gauge(
        "slurm_account_jobs_pending_reason",
        "Pending jobs of the account by the reason Slurm gives.",
        &["account", "reason"],
    );
    for ((a, r), n) in &reasons {
        f.push(a_own(a), [(*a).into(), (*r).into()], *n as f64);
    }
    let f = out.gauge(
        "slurm_account_users_active",
        "Distinct users with active (pending or running) jobs in the account.",
        &["account"],
    );
    for (a, users) in &active_users {
        f.push(a_own(a), [(*a).into()], users.len() as f64);
    }
}
