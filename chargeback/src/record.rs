//! An allocation: one run of one job with the TRES it held, as slurmdbd (finished runs) or
//! the controller (running jobs) reports it. The identity of a run is
//! `(cluster, job_id, start)`: each run of a requeued job starts anew, so its runs are distinct
//! records, while the running view of a run and its finished record are the same one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The latest instant a record may name (end of year 9000): later times are clamped so a
/// hostile epoch cannot push calendar arithmetic out of range.
pub const MAX_EPOCH: u64 = 221_845_392_000;

/// TRES names as Slurm writes them (`cpu`, `mem`, `node`, `billing`, `gres/gpu`,
/// `gres/gpu:a100`, `energy`). `mem` is in bytes here (Slurm's MiB x 2^20); `energy` in joules.
pub type Tres = BTreeMap<String, u64>;

/// One run of one job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Allocation {
    pub cluster: String,
    pub job_id: u64,
    /// Array parent id, 0 when not an array task.
    pub array_job_id: u64,
    pub array_task_id: Option<u64>,
    /// Heterogeneous job leader id, 0 when not a het component.
    pub het_job_id: u64,
    pub het_offset: Option<u64>,
    pub account: String,
    pub user: String,
    pub partition: String,
    pub qos: String,
    /// When the run started (seconds since the epoch).
    pub start: u64,
    /// When it ended; `None` while it runs.
    pub end: Option<u64>,
    /// The end of the charged interval `[start, until)`: `start + elapsed` for a finished run
    /// (elapsed excludes suspended time, so suspension is not charged), the observation time
    /// for a running one.
    pub until: u64,
    /// Allocated TRES (see [`Tres`]).
    pub tres: Tres,
}

/// The identity of a run.
pub type Key = (String, u64, u64);

impl Allocation {
    pub fn key(&self) -> Key {
        (self.cluster.clone(), self.job_id, self.start)
    }

    pub fn is_finished(&self) -> bool {
        self.end.is_some()
    }

    /// Clamps times into `[0, MAX_EPOCH]` and `until` into `[start, ..]`; drops zero counts.
    pub fn sanitized(mut self) -> Allocation {
        self.start = self.start.min(MAX_EPOCH);
        self.until = self.until.clamp(self.start, MAX_EPOCH);
        self.end = self.end.map(|e| e.min(MAX_EPOCH));
        self.tres.retain(|_, v| *v > 0);
        self
    }

    /// Whether `self` replaces `other` (same key). A total order, so the record kept for a
    /// key is the same whatever order and how often the versions arrive: a finished record
    /// beats a running one, then the longer charged interval, then the later end, then the
    /// contents (any fixed tie-break).
    pub fn supersedes(&self, other: &Allocation) -> bool {
        let rank = |a: &Allocation| (a.is_finished(), a.until, a.end);
        (rank(self), self) > (rank(other), other)
    }

    /// Seconds charged.
    pub fn seconds(&self) -> u64 {
        self.until.saturating_sub(self.start)
    }
}

/// GPU TRES as Slurm lists them: the untyped `gres/gpu` total and typed `gres/gpu:TYPE`
/// entries that repeat it. Keeps the typed entries when there are any (so no GPU is counted
/// twice), else the untyped total.
pub fn normalize_gpus(tres: &mut Tres) {
    if tres.keys().any(|k| k.starts_with("gres/gpu:")) {
        tres.remove("gres/gpu");
    }
}

#[cfg(test)]
impl Allocation {
    /// A finished run of job 1 (`c`, account `a`, user `u`, partition `p`, QOS `q`) charged
    /// over `[start, until)`: the base the tests vary with struct update syntax.
    pub(crate) fn sample(start: u64, until: u64, tres: Tres) -> Allocation {
        Allocation {
            cluster: "c".into(),
            job_id: 1,
            array_job_id: 0,
            array_task_id: None,
            het_job_id: 0,
            het_offset: None,
            account: "a".into(),
            user: "u".into(),
            partition: "p".into(),
            qos: "q".into(),
            start,
            end: Some(until),
            until,
            tres,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(until: u64, end: Option<u64>) -> Allocation {
        Allocation {
            end,
            ..Allocation::sample(100, until, Tres::new())
        }
    }

    #[test]
    fn finished_beats_running_whatever_the_accrual() {
        let running = a(1_000, None);
        let done = a(500, Some(500));
        assert!(done.supersedes(&running));
        assert!(!running.supersedes(&done));
        assert!(
            !done.supersedes(&done.clone()),
            "a record does not replace itself"
        );
    }

    #[test]
    fn typed_gpus_replace_the_untyped_total() {
        let mut t: Tres = [("gres/gpu".to_owned(), 4), ("gres/gpu:a100".to_owned(), 4)].into();
        normalize_gpus(&mut t);
        assert_eq!(t.len(), 1);
        let mut u: Tres = [("gres/gpu".to_owned(), 2)].into();
        normalize_gpus(&mut u);
        assert_eq!(u.get("gres/gpu"), Some(&2));
    }

    #[test]
    fn hostile_times_are_clamped() {
        let x = Allocation {
            start: u64::MAX,
            until: 3,
            ..a(0, Some(u64::MAX))
        }
        .sanitized();
        assert_eq!(
            (x.start, x.until, x.end),
            (MAX_EPOCH, MAX_EPOCH, Some(MAX_EPOCH))
        );
    }
}
