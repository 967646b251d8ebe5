//! Feeding the chargeback store (crate `chargeback`): finished runs from slurmdbd and running
//! jobs from the controller become allocations, added once per poll in one transaction.
//!
//! A run is identified by `(cluster, job_id, start)`, so the running view of a run and its
//! finished record must name the same cluster: running jobs (the controller does not say
//! which cluster) take the name the finished records carry, learned from the first one, else
//! the source's cluster name; until one is known they wait (they are charged in full when
//! they end).

use crate::model::{FinishedJob, Job, JobState};
use chargeback::record::normalize_gpus;
use chargeback::{Allocation, Calendar, Counters, RateCard, Settings, Store, Tres};
use std::sync::{Arc, Mutex};

const MIB: u64 = 1 << 20;

/// The allocation of a finished run; `None` for a job that never started.
pub fn finished_allocation(j: &FinishedJob, cluster: &str) -> Option<Allocation> {
    let start = j.start_epoch?;
    let mut tres = Tres::new();
    for (k, v) in &j.tres {
        let v = if &**k == "mem" {
            v.saturating_mul(MIB)
        } else {
            *v
        };
        tres.insert(k.to_string(), v);
    }
    // Records without a TRES list (older captures) still carry the summed figures.
    if tres.is_empty() {
        for (k, v) in [
            ("cpu", j.cpus),
            ("mem", j.memory_bytes),
            ("node", j.nodes),
            ("gres/gpu", j.gpus),
        ] {
            tres.insert(k.to_owned(), v);
        }
    }
    normalize_gpus(&mut tres);
    Some(
        Allocation {
            cluster: if j.cluster.is_empty() {
                cluster.to_owned()
            } else {
                j.cluster.to_string()
            },
            job_id: j.job_id,
            array_job_id: j.array_job_id,
            array_task_id: j.array_task_id,
            het_job_id: j.het_job_id,
            het_offset: j.het_offset,
            account: j.account.to_string(),
            user: j.user.to_string(),
            partition: j.partition.to_string(),
            qos: j.qos.to_string(),
            start,
            end: Some(j.end_epoch),
            until: start.saturating_add(j.elapsed_seconds),
            tres,
        }
        .sanitized(),
    )
}

/// The allocation of a running job, accrued up to `now`.
pub fn running_allocation(j: &Job, cluster: &str, now: u64) -> Option<Allocation> {
    if j.state != JobState::Running {
        return None;
    }
    let start = j.start_epoch.filter(|&s| s > 0 && s <= now)?;
    let gpu = if j.gpu_type.is_empty() {
        "gres/gpu".to_owned()
    } else {
        format!("gres/gpu:{}", j.gpu_type)
    };
    let tres: Tres = [
        ("cpu".to_owned(), j.cpus),
        ("mem".to_owned(), j.memory_bytes),
        ("node".to_owned(), j.nodes),
        (gpu, j.gpus),
    ]
    .into();
    Some(
        Allocation {
            cluster: cluster.to_owned(),
            job_id: j.job_id,
            array_job_id: j.array_job_id,
            array_task_id: j.array_task_id,
            het_job_id: 0,
            het_offset: None,
            account: j.account.to_string(),
            user: j.user.to_string(),
            partition: j.partition.to_string(),
            qos: j.qos.to_string(),
            start,
            end: None,
            until: now,
            tres,
        }
        .sanitized(),
    )
}

/// The `[chargeback]` store opened once for every cluster of the process.
pub struct Feed {
    store: Arc<Mutex<Store>>,
    calendar: Calendar,
    card: RateCard,
}

impl Feed {
    /// Loads the calendar and rate card and opens (or creates) the store.
    pub fn open(s: &Settings) -> Result<Feed, String> {
        let (calendar, card) = s.load()?;
        if let Some(dir) = s.store.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("chargeback.store {}: {e}", dir.display()))?;
        }
        let store = Store::open(&s.store).map_err(|e| e.to_string())?;
        Ok(Feed {
            store: Arc::new(Mutex::new(store)),
            calendar,
            card,
        })
    }

    /// One cluster's feeder (the first source's runner takes it).
    pub fn for_cluster(&self) -> Chargeback {
        Chargeback::new(self.store.clone(), self.calendar.clone(), self.card.clone())
    }

    /// Adds records directly (imports, tests).
    pub fn apply(&self, batch: &[Allocation]) -> Result<chargeback::Applied, String> {
        self.store
            .lock()
            .map_err(|_| "usage store: a writer panicked".to_owned())?
            .apply(batch, &self.calendar, &self.card)
            .map_err(|e| e.to_string())
    }
}

/// The store (shared by every cluster's runner: one file, one writer) with its calendar
/// and rate card.
pub struct Chargeback {
    store: Arc<Mutex<Store>>,
    calendar: Calendar,
    card: RateCard,
    cluster: Option<String>,
}

impl std::fmt::Debug for Chargeback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chargeback")
            .field("store", &self.store)
            .finish()
    }
}

impl Chargeback {
    pub fn new(store: Arc<Mutex<Store>>, calendar: Calendar, card: RateCard) -> Chargeback {
        Chargeback {
            store,
            calendar,
            card,
            cluster: None,
        }
    }

    /// The counters as stored (after a failed batch: those before it).
    pub fn counters(&self) -> Option<Counters> {
        self.store.lock().ok()?.counters().ok()
    }

    /// Adds a poll's finished runs and running jobs in one transaction and returns the
    /// counters. `source_cluster` is the source's cluster name, if it knows one.
    pub fn feed(
        &mut self,
        finished: &[FinishedJob],
        running: &[Job],
        source_cluster: Option<&str>,
        now: u64,
    ) -> Result<(chargeback::Applied, Counters), String> {
        if self.cluster.is_none() {
            self.cluster = finished
                .iter()
                .find(|j| !j.cluster.is_empty())
                .map(|j| j.cluster.to_string())
                .or_else(|| source_cluster.filter(|c| !c.is_empty()).map(str::to_owned));
        }
        let fallback = self.cluster.clone().unwrap_or_default();
        let mut batch: Vec<Allocation> = finished
            .iter()
            .filter_map(|j| finished_allocation(j, &fallback))
            .collect();
        if let Some(c) = &self.cluster {
            batch.extend(running.iter().filter_map(|j| running_allocation(j, c, now)));
        }
        let mut store = self
            .store
            .lock()
            .map_err(|_| "usage store: a writer panicked".to_owned())?;
        let done = store
            .apply(&batch, &self.calendar, &self.card)
            .map_err(|e| e.to_string())?;
        let counters = store.counters().map_err(|e| e.to_string())?;
        Ok((done, counters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chargeback::Period;

    fn finished(id: u64, start: u64, elapsed: u64) -> FinishedJob {
        FinishedJob {
            cluster: "lab".into(),
            job_id: id,
            start_epoch: Some(start),
            end_epoch: start + elapsed,
            state: JobState::Completed,
            account: "physics".into(),
            user: "alice".into(),
            partition: "gpu".into(),
            qos: "normal".into(),
            elapsed_seconds: elapsed,
            tres: vec![
                ("cpu".into(), 8),
                ("mem".into(), 1024),
                ("gres/gpu".into(), 2),
                ("gres/gpu:a100".into(), 2),
                ("billing".into(), 12),
            ],
            ..FinishedJob::default()
        }
    }

    fn running(id: u64, start: u64) -> Job {
        Job {
            job_id: id,
            array_job_id: 0,
            array_task_id: None,
            task_count: 1,
            state: JobState::Running,
            reason: "None".into(),
            partition: "gpu".into(),
            account: "physics".into(),
            user: "alice".into(),
            qos: "normal".into(),
            cpus: 8,
            nodes: 1,
            memory_bytes: 1 << 30,
            gpus: 2,
            gpu_type: "a100".into(),
            submit_epoch: Some(start - 10),
            start_epoch: Some(start),
            end_epoch: None,
            time_limit_seconds: None,
            priority: None,
            exit_code: None,
            node_list: "n1".into(),
        }
    }

    #[test]
    fn a_run_seen_running_then_finished_is_charged_once_to_its_end() {
        let cal = Calendar::new(Period::Month, "UTC").expect("zone");
        let card = RateCard::parse("currency = \"EUR\"\n[[prices]]\ngpu = 3.6\n", "t", &cal)
            .expect("card");
        let mut c = Chargeback::new(
            Arc::new(Mutex::new(Store::in_memory().expect("store"))),
            cal,
            card,
        );
        let t0 = 1_780_000_000;
        // Before any finished record names the cluster, running jobs wait.
        let (d, _) = c.feed(&[], &[running(7, t0)], None, t0 + 60).expect("feed");
        assert_eq!(d.added, 0);
        c.feed(
            &[finished(1, t0 - 500, 100)],
            &[running(7, t0)],
            None,
            t0 + 60,
        )
        .expect("feed");
        c.feed(&[], &[running(7, t0)], None, t0 + 120)
            .expect("feed");
        let gpu = |x: &Counters| {
            x.tres_seconds
                .iter()
                .filter(|(k, _)| k.3 == "gres/gpu:a100")
                .map(|(_, v)| *v)
                .sum::<u128>()
        };
        let (_, mid) = c.feed(&[], &[], None, t0 + 120).expect("feed");
        assert_eq!(gpu(&mid), 2 * 100 + 2 * 120);
        let (d, end) = c
            .feed(&[finished(7, t0, 300)], &[], None, t0 + 400)
            .expect("feed");
        assert_eq!(d.replaced, 1);
        assert_eq!(gpu(&end), 2 * 100 + 2 * 300);
        // 800 GPU-s at 3.6/h = 0.8 EUR
        assert_eq!(end.cost_nano.values().sum::<u128>(), 800_000_000);
        let kept = finished_allocation(&finished(1, 5, 10), "x").expect("alloc");
        assert_eq!(kept.tres.get("mem"), Some(&(1024 * MIB)));
        assert!(
            !kept.tres.contains_key("gres/gpu"),
            "typed GPUs replace the total"
        );
        assert_eq!(kept.cluster, "lab");
    }
}
