//! Finished jobs from slurmdbd (`sacct --json`, `/slurmdb/vX/jobs`) and the running totals
//! built from them for chargeback.
//!
//! The arithmetic of chargeback lives here, once: what a finished job adds to each counter
//! ([`FinishedJob::usage`]) and which exit code label it gets ([`exit_code_label`]). The
//! accounting ledger (a layer above) persists the sums; the `accounting` family only reads them.

use super::cluster::JobState;
use super::name::Name;
use std::collections::BTreeMap;

/// One finished job as accounting reports it (one allocation: steps are not read). Filled by
/// `parse::sacct`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinishedJob {
    pub cluster: Name,
    pub job_id: u64,
    /// Array parent id, 0 when not an array task.
    pub array_job_id: u64,
    pub array_task_id: Option<u64>,
    /// Heterogeneous job leader id, 0 when not a het job component.
    pub het_job_id: u64,
    pub het_offset: Option<u64>,
    /// 0 when slurmdbd does not say (never seen in practice).
    pub submit_epoch: u64,
    pub start_epoch: Option<u64>,
    pub end_epoch: u64,
    /// A final state (see [`FinishedJob::is_final`]), or `Requeued` for an earlier run of a
    /// requeued job that ended.
    pub state: JobState,
    /// The job's exit code as a shell reports it: the return code, or 128 + signal number
    /// when the job was killed by a signal. `None` when slurmdbd gives neither.
    pub exit_code: Option<i64>,
    pub account: Name,
    pub user: Name,
    /// The partition the job ran in (the first one listed when it was submitted to several).
    pub partition: Name,
    pub qos: Name,
    /// Allocated resources (TRES `allocated`): zero for a job that never started.
    pub cpus: u64,
    pub gpus: u64,
    pub memory_bytes: u64,
    pub nodes: u64,
    /// Run time excluding suspended time, as slurmdbd computes it.
    pub elapsed_seconds: u64,
    /// Every allocated TRES as slurmdbd lists it, `type` or `type/name` -> count, in Slurm's
    /// units (`mem` in MiB, `energy` in joules): `cpu`, `mem`, `node`, `billing`,
    /// `gres/gpu`, `gres/gpu:a100`, ... Chargeback prices each of them.
    pub tres: Vec<(Name, u64)>,
}

/// What one finished job adds to its `(account, user, partition, qos)` counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub jobs: u64,
    pub cpu_seconds: u128,
    pub gpu_seconds: u128,
    pub memory_byte_seconds: u128,
    pub node_seconds: u128,
    /// Seconds from submission to start (or to the end, for a job that never started).
    pub wait_seconds: u128,
}

impl Usage {
    pub fn add(&mut self, o: &Usage) {
        self.jobs = self.jobs.saturating_add(o.jobs);
        self.cpu_seconds = self.cpu_seconds.saturating_add(o.cpu_seconds);
        self.gpu_seconds = self.gpu_seconds.saturating_add(o.gpu_seconds);
        self.memory_byte_seconds = self
            .memory_byte_seconds
            .saturating_add(o.memory_byte_seconds);
        self.node_seconds = self.node_seconds.saturating_add(o.node_seconds);
        self.wait_seconds = self.wait_seconds.saturating_add(o.wait_seconds);
    }

    /// The fixed-width form the ledger stores.
    pub fn to_array(self) -> [u128; 6] {
        [
            u128::from(self.jobs),
            self.cpu_seconds,
            self.gpu_seconds,
            self.memory_byte_seconds,
            self.node_seconds,
            self.wait_seconds,
        ]
    }

    pub fn from_array(a: [u128; 6]) -> Usage {
        Usage {
            jobs: u64::try_from(a[0]).unwrap_or(u64::MAX),
            cpu_seconds: a[1],
            gpu_seconds: a[2],
            memory_byte_seconds: a[3],
            node_seconds: a[4],
            wait_seconds: a[5],
        }
    }
}

impl FinishedJob {
    /// The states a job ends in. REQUEUED is not one: the job runs again under the same id.
    pub fn is_final(state: JobState) -> bool {
        matches!(
            state,
            JobState::Completed
                | JobState::Cancelled
                | JobState::Failed
                | JobState::Timeout
                | JobState::NodeFail
                | JobState::Preempted
                | JobState::BootFail
                | JobState::Deadline
                | JobState::OutOfMemory
        )
    }

    /// Seconds in the queue: submission to start, or to the end when the job never started
    /// (cancelled while pending), so abandoned waits count too.
    pub fn wait_seconds(&self) -> u64 {
        let until = self.start_epoch.unwrap_or(self.end_epoch);
        until.saturating_sub(self.submit_epoch)
    }

    pub fn usage(&self) -> Usage {
        let t = u128::from(self.elapsed_seconds);
        Usage {
            jobs: 1,
            cpu_seconds: u128::from(self.cpus) * t,
            gpu_seconds: u128::from(self.gpus) * t,
            memory_byte_seconds: u128::from(self.memory_bytes) * t,
            node_seconds: u128::from(self.nodes) * t,
            wait_seconds: u128::from(self.wait_seconds()),
        }
    }

    pub fn usage_key(&self) -> UsageKey {
        UsageKey {
            account: self.account.clone(),
            user: self.user.clone(),
            partition: self.partition.clone(),
            qos: self.qos.clone(),
        }
    }

    pub fn outcome_key(&self) -> OutcomeKey {
        OutcomeKey {
            account: self.account.clone(),
            partition: self.partition.clone(),
            state: self.state,
            exit_code: Name::from(exit_code_label(self.exit_code)),
        }
    }
}

/// The `exit_code` label: `0`..`255` as is; anything else (negative, above 255, NO_VAL
/// leftovers) is `other`, and an unknown code is `unknown`, so the label has at most 258
/// values whatever slurmdbd sends.
pub fn exit_code_label(code: Option<i64>) -> String {
    match code {
        Some(c @ 0..=255) => c.to_string(),
        Some(_) => "other".to_owned(),
        None => "unknown".to_owned(),
    }
}

/// Who the usage counters are kept for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageKey {
    pub account: Name,
    pub user: Name,
    pub partition: Name,
    pub qos: Name,
}

/// What finished-job counts are kept by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutcomeKey {
    pub account: Name,
    pub partition: Name,
    pub state: JobState,
    /// [`exit_code_label`].
    pub exit_code: Name,
}

/// Monotonic totals per account/user/partition/QOS, kept by the accounting ledger (and
/// summed once from a batch by [`AccountingTotals::from_jobs`] for one-shot collections).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountingTotals {
    pub usage: BTreeMap<UsageKey, Usage>,
    /// Finished jobs by account, partition, final state and exit code.
    pub outcomes: BTreeMap<OutcomeKey, u64>,
    /// Jobs counted since the ledger was created.
    pub jobs_counted: u64,
    /// Records skipped because they had been counted already (window overlap).
    pub jobs_duplicate: u64,
    /// Records skipped because they ended before the ledger's horizon (arrived too late to
    /// be checked against the seen set, so never counted rather than maybe counted twice).
    pub jobs_late: u64,
    /// Newest end time counted (seconds since the epoch).
    pub cursor_epoch: Option<u64>,
    /// The chargeback store's counters when `[chargeback]` is configured.
    pub chargeback: Option<std::sync::Arc<chargeback::Counters>>,
}

impl AccountingTotals {
    /// Adds one job (no duplicate check: that is the ledger's job).
    pub fn add(&mut self, j: &FinishedJob) {
        self.usage.entry(j.usage_key()).or_default().add(&j.usage());
        *self.outcomes.entry(j.outcome_key()).or_default() += 1;
        self.jobs_counted += 1;
        self.cursor_epoch = Some(self.cursor_epoch.unwrap_or(0).max(j.end_epoch));
    }

    /// Totals of one batch, each distinct job once (`(cluster, job_id, submit, end)`).
    pub fn from_jobs(jobs: &[FinishedJob]) -> AccountingTotals {
        let mut t = AccountingTotals::default();
        let mut seen = std::collections::HashSet::new();
        for j in jobs {
            if seen.insert((j.cluster.clone(), j.job_id, j.submit_epoch, j.end_epoch)) {
                t.add(j);
            } else {
                t.jobs_duplicate += 1;
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_labels_are_bounded() {
        assert_eq!(exit_code_label(Some(0)), "0");
        assert_eq!(exit_code_label(Some(255)), "255");
        assert_eq!(exit_code_label(Some(256)), "other");
        assert_eq!(exit_code_label(Some(-1)), "other");
        assert_eq!(exit_code_label(None), "unknown");
    }

    #[test]
    fn usage_is_resources_times_elapsed() {
        let j = FinishedJob {
            cpus: 4,
            gpus: 2,
            nodes: 1,
            memory_bytes: 1 << 30,
            elapsed_seconds: 100,
            submit_epoch: 1000,
            start_epoch: Some(1030),
            end_epoch: 1130,
            state: JobState::Completed,
            ..FinishedJob::default()
        };
        let u = j.usage();
        assert_eq!(u.cpu_seconds, 400);
        assert_eq!(u.gpu_seconds, 200);
        assert_eq!(u.node_seconds, 100);
        assert_eq!(u.memory_byte_seconds, 100 << 30);
        assert_eq!(u.wait_seconds, 30);
        let never_started = FinishedJob {
            start_epoch: None,
            state: JobState::Cancelled,
            ..j
        };
        assert_eq!(never_started.wait_seconds(), 130);
        assert_eq!(Usage::from_array(u.to_array()), u);
    }
}
