//! `accounting`: chargeback counters from slurmdbd's finished jobs, kept by the ledger
//! (`crate::ledger`): CPU-, GPU-, memory-byte-, node- and wait-seconds and finished jobs
//! per account, user, partition and QOS, finished jobs by final state and by exit code.
//! Every run counts: an earlier run of a requeued job (state `requeued`, with an end time)
//! is a run of its own, as `sacct -D` lists it.
//!
//! Every series is a counter: monotonic, persisted across restarts when the ledger has a
//! file, and never counting a job twice. A job's resource-seconds are its allocated amount
//! times its elapsed time (suspended time excluded), added once when it ends; a running
//! job adds nothing until then, so `rate()` of these counters lags running work by design.

use super::shared::Options;
use crate::model::accounting::Usage;
use crate::model::{AccountingTotals, Name};
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::BTreeMap;

type Pick = fn(&Usage) -> f64;

/// (suffix, what, pick): one counter per grouping for each.
const RESOURCES: [(&str, &str, Pick); 5] = [
    (
        "cpu_seconds",
        "CPU-seconds (allocated CPUs x elapsed time)",
        |u| u.cpu_seconds as f64,
    ),
    (
        "gpu_seconds",
        "GPU-seconds (allocated GPUs x elapsed time)",
        |u| u.gpu_seconds as f64,
    ),
    (
        "memory_byte_seconds",
        "Memory byte-seconds (allocated memory x elapsed time)",
        |u| u.memory_byte_seconds as f64,
    ),
    (
        "node_seconds",
        "Node-seconds (allocated nodes x elapsed time)",
        |u| u.node_seconds as f64,
    ),
    (
        "wait_seconds",
        "Seconds finished jobs waited in the queue (submission to start, or to the end for jobs that never started)",
        |u| u.wait_seconds as f64,
    ),
];

/// Usage summed by one grouping.
fn group<K: Ord>(
    t: &AccountingTotals,
    key: impl Fn(&crate::model::accounting::UsageKey) -> K,
) -> BTreeMap<K, Usage> {
    let mut out: BTreeMap<K, Usage> = BTreeMap::new();
    for (k, u) in &t.usage {
        out.entry(key(k)).or_default().add(u);
    }
    out
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let Some(t) = s.accounting.as_deref() else {
        return;
    };
    let a_own = |a: &Name| Owner::Account(a.clone());
    let by_account = group(t, |k| k.account.clone());
    let by_user = group(t, |k| (k.account.clone(), k.user.clone()));
    let by_partition = group(t, |k| k.partition.clone());
    let by_qos = group(t, |k| k.qos.clone());
    let by_acct_part = group(t, |k| (k.account.clone(), k.partition.clone()));

    for (suffix, what, pick) in RESOURCES {
        let f = out.counter(
            format!("slurm_account_{suffix}"),
            format!("{what} of the account's finished jobs."),
            &["account"],
        );
        for (a, u) in &by_account {
            f.push(a_own(a), [a.into()], pick(u));
        }
        let f = out.counter(
            format!("slurm_user_{suffix}"),
            format!("{what} of the user's finished jobs in the account."),
            &["user", "account"],
        );
        for ((a, usr), u) in &by_user {
            f.push(
                Owner::User {
                    account: a.clone(),
                    user: usr.clone(),
                },
                [usr.into(), a.into()],
                pick(u),
            );
        }
        let f = out.counter(
            format!("slurm_partition_{suffix}"),
            format!("{what} of the jobs that finished in the partition."),
            &["partition"],
        );
        for (p, u) in &by_partition {
            f.push(Owner::Partition(p.clone()), [p.into()], pick(u));
        }
        let f = out.counter(
            format!("slurm_qos_{suffix}"),
            format!("{what} of the jobs that finished under the QOS."),
            &["qos"],
        );
        for (q, u) in &by_qos {
            f.push(Owner::Cluster, [q.into()], pick(u));
        }
        let f = out.counter(
            format!("slurm_account_partition_{suffix}"),
            format!("{what} of the account's jobs that finished in the partition."),
            &["account", "partition"],
        );
        for ((a, p), u) in &by_acct_part {
            f.push(a_own(a), [a.into(), p.into()], pick(u));
        }
    }

    let f = out.counter(
        "slurm_user_jobs_finished",
        "Jobs of the user in the account that finished (any final state; array tasks counted).",
        &["user", "account"],
    );
    for ((a, usr), u) in &by_user {
        f.push(
            Owner::User {
                account: a.clone(),
                user: usr.clone(),
            },
            [usr.into(), a.into()],
            u.jobs as f64,
        );
    }
    let f = out.counter(
        "slurm_qos_jobs_finished",
        "Jobs that finished under the QOS (any final state).",
        &["qos"],
    );
    for (q, u) in &by_qos {
        f.push(Owner::Cluster, [q.into()], u.jobs as f64);
    }

    let mut acct_state: BTreeMap<(&Name, &'static str), u64> = BTreeMap::new();
    let mut part_state: BTreeMap<(&Name, &'static str), u64> = BTreeMap::new();
    let mut acct_exit: BTreeMap<(&Name, &Name), u64> = BTreeMap::new();
    let mut cluster_state: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (k, n) in &t.outcomes {
        let st = k.state.as_str();
        *acct_state.entry((&k.account, st)).or_default() += n;
        *part_state.entry((&k.partition, st)).or_default() += n;
        *acct_exit.entry((&k.account, &k.exit_code)).or_default() += n;
        *cluster_state.entry(st).or_default() += n;
    }
    let f = out.counter(
        "slurm_account_jobs_finished",
        "Jobs of the account that finished, by final state (completed, failed, timeout, cancelled, out_of_memory, node_fail, preempted, boot_fail, deadline; requeued: a run of a requeued job that ended, one per run as sacct -D lists them).",
        &["account", "state"],
    );
    for ((a, st), n) in &acct_state {
        f.push(a_own(a), [(*a).into(), (*st).into()], *n as f64);
    }
    let f = out.counter(
        "slurm_partition_jobs_finished",
        "Jobs that finished in the partition, by final state.",
        &["partition", "state"],
    );
    for ((p, st), n) in &part_state {
        f.push(
            Owner::Partition((*p).clone()),
            [(*p).into(), (*st).into()],
            *n as f64,
        );
    }
    let f = out.counter(
        "slurm_cluster_jobs_finished",
        "Jobs that finished in the cluster, by final state.",
        &["state"],
    );
    for (st, n) in &cluster_state {
        f.push(Owner::Cluster, [(*st).into()], *n as f64);
    }
    let f = out.counter(
        "slurm_jobs_exit_code",
        "Finished jobs of the account by exit code as a shell reports it (128+N for signal N); codes outside 0-255 are `other`, missing ones `unknown`.",
        &["account", "exit_code"],
    );
    for ((a, e), n) in &acct_exit {
        f.push(a_own(a), [(*a).into(), (*e).into()], *n as f64);
    }

    let f = out.counter(
        "slurm_exporter_accounting_records_skipped",
        "Finished-job records the ledger did not count: `duplicate` (already counted, from the overlap of consecutive windows) or `late` (ended before the ledger's horizon).",
        &["reason"],
    );
    f.push(
        Owner::Exporter,
        ["duplicate".into()],
        t.jobs_duplicate as f64,
    );
    f.push(Owner::Exporter, ["late".into()], t.jobs_late as f64);
    if let Some(c) = t.cursor_epoch {
        let f = out.gauge(
            "slurm_exporter_accounting_cursor_timestamp_seconds",
            "Newest job end time the accounting ledger has counted; polls read from here less the overlap.",
            &[],
        );
        f.push(Owner::Exporter, [], c as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FinishedJob, JobState};
    use crate::store::{encode, Format};
    use std::sync::Arc;

    fn job(id: u64, account: &str, user: &str, state: JobState, exit: Option<i64>) -> FinishedJob {
        FinishedJob {
            cluster: "lab".into(),
            job_id: id,
            submit_epoch: 1_000,
            start_epoch: Some(1_010),
            end_epoch: 1_110,
            state,
            exit_code: exit,
            account: account.into(),
            user: user.into(),
            partition: "gpu".into(),
            qos: "normal".into(),
            cpus: 8,
            gpus: 2,
            memory_bytes: 1 << 30,
            nodes: 1,
            elapsed_seconds: 100,
            ..FinishedJob::default()
        }
    }

    fn exposition(t: AccountingTotals) -> String {
        let snap = Snapshot {
            accounting: Some(Arc::new(t)),
            ..Snapshot::default()
        };
        let mut sink = Sink::default();
        collect(&snap, &Options::default(), &mut sink);
        let mut out = Vec::new();
        encode(&sink.into_families(), Format::Text, &|_| true, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn totals_encode_as_counters_per_owner() {
        let t = AccountingTotals::from_jobs(&[
            job(1, "physics", "alice", JobState::Completed, Some(0)),
            job(2, "physics", "bob", JobState::OutOfMemory, Some(253)),
            job(3, "chemistry", "carol", JobState::Failed, Some(300)),
            job(3, "chemistry", "carol", JobState::Failed, Some(300)),
        ]);
        let text = exposition(t);
        for line in [
            "# TYPE slurm_account_cpu_seconds_total counter",
            "slurm_account_cpu_seconds_total{account=\"physics\"} 1600",
            "slurm_account_gpu_seconds_total{account=\"chemistry\"} 200",
            "slurm_user_cpu_seconds_total{user=\"bob\",account=\"physics\"} 800",
            "slurm_partition_node_seconds_total{partition=\"gpu\"} 300",
            "slurm_qos_wait_seconds_total{qos=\"normal\"} 30",
            "slurm_account_memory_byte_seconds_total{account=\"chemistry\"} 107374182400",
            "slurm_account_jobs_finished_total{account=\"physics\",state=\"out_of_memory\"} 1",
            "slurm_partition_jobs_finished_total{partition=\"gpu\",state=\"failed\"} 1",
            "slurm_jobs_exit_code_total{account=\"chemistry\",exit_code=\"other\"} 1",
            "slurm_jobs_exit_code_total{account=\"physics\",exit_code=\"253\"} 1",
            "slurm_exporter_accounting_records_skipped_total{reason=\"duplicate\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn at_least_fifteen_names_and_nothing_without_accounting() {
        let text = exposition(AccountingTotals::from_jobs(&[job(
            1,
            "a",
            "u",
            JobState::Completed,
            Some(0),
        )]));
        let names = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert!(names >= 15, "{names}");
        let mut sink = Sink::default();
        collect(&Snapshot::default(), &Options::default(), &mut sink);
        assert!(sink.is_empty(), "no ledger, no accounting series");
    }
}
