//! Background polling: per source an interval with jitter, a timeout, exponential backoff
//! on failure, and single flight (a source's next poll starts only after the last one ended).
//! Scrapes never call Slurm: they read the last published generation, so Slurm's load is
//! bounded by the poll interval whatever the number of scrapers.
//!
//! A failing source keeps serving its last good data until it is older than
//! `max_staleness`; then its data is dropped and `slurm_exporter_source_stale` says so.

use crate::charge::Chargeback;
use crate::families::{self, Options};
use crate::ledger::{AccountingWindow, Ledger};
use crate::model::{AccountingTotals, Name, SourceStatus};
use crate::snapshot::Snapshot;
use crate::source::{Parts, PollRequest, Source, SourceError};
use crate::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct PollConfig {
    pub interval: Duration,
    pub timeout: Duration,
    pub max_staleness: Duration,
    /// Longest wait between polls while a source keeps failing.
    pub backoff_max: Duration,
    /// The `cluster` label; `None` uses what Slurm reports, else `slurm`.
    pub cluster: Option<String>,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(20),
            max_staleness: Duration::from_secs(300),
            backoff_max: Duration::from_secs(300),
            cluster: None,
        }
    }
}

/// One source with its last good data and health.
pub struct Runner {
    source: Box<dyn Source>,
    cfg: PollConfig,
    /// Shared with the views handed to the fuse step; copied only when both change it.
    data: Option<Arc<Parts>>,
    last_good: Option<Instant>,
    status: SourceStatus,
    failures: u32,
    logged_meta: Option<(String, String)>,
    /// Chargeback counters fed by the finished jobs each poll brings.
    ledger: Option<Ledger>,
    window: AccountingWindow,
    /// The chargeback store fed with each poll's finished and running jobs.
    chargeback: Option<Chargeback>,
}

impl Runner {
    pub fn new(source: Box<dyn Source>, cfg: PollConfig) -> Self {
        let name = source.name().to_owned();
        Runner::named(source, name, cfg)
    }

    /// A runner whose `source` label is `name` (distinct sources of one kind in a cluster).
    pub fn named(source: Box<dyn Source>, name: String, cfg: PollConfig) -> Self {
        let status = SourceStatus {
            source: name,
            ..SourceStatus::default()
        };
        Runner {
            source,
            cfg,
            data: None,
            last_good: None,
            status,
            failures: 0,
            logged_meta: None,
            ledger: None,
            window: AccountingWindow::default(),
            chargeback: None,
        }
    }

    /// Keeps accounting counters in `ledger` ([`Ledger::open`] for a file that survives
    /// restarts, [`Ledger::in_memory`] otherwise), reading finished jobs in `window`.
    /// Without it, a source that brings finished jobs gets an in-memory ledger on its
    /// first batch (counters restart with the process).
    pub fn with_ledger(mut self, ledger: Ledger, window: AccountingWindow) -> Self {
        self.ledger = Some(ledger);
        self.window = window;
        self
    }

    /// Feeds `chargeback` with every poll that brings finished jobs: those runs and the
    /// poll's running jobs. Its counters ride along with the accounting totals.
    pub fn with_chargeback(mut self, chargeback: Chargeback) -> Self {
        self.chargeback = Some(chargeback);
        self
    }

    /// Adds a poll's runs to the chargeback store; a failed batch keeps the counters as they
    /// were (the next poll brings the same runs again: adding them is idempotent).
    fn charge(
        &mut self,
        finished: &[crate::model::FinishedJob],
        running: &[crate::model::Job],
        cluster: Option<&str>,
        now_epoch: u64,
    ) -> Option<Arc<chargeback::Counters>> {
        let c = self.chargeback.as_mut()?;
        let counters = match c.feed(finished, running, cluster, now_epoch) {
            Ok((done, counters)) => {
                tracing::debug!(
                    source = self.status.source.as_str(),
                    added = done.added,
                    replaced = done.replaced,
                    kept = done.kept,
                    "chargeback batch"
                );
                Some(counters)
            }
            Err(e) => {
                *self.status.errors.entry("chargeback").or_default() += 1;
                tracing::warn!(
                    source = self.status.source.as_str(),
                    "chargeback batch not recorded: {e}"
                );
                c.counters()
            }
        };
        counters.map(Arc::new)
    }

    /// The accounting counters as of the last good batch.
    pub fn accounting(&self) -> Option<AccountingTotals> {
        self.ledger.as_ref().map(Ledger::totals)
    }

    /// The window start to ask the source for: from the ledger's cursor, or the lookback.
    fn poll_request(&self) -> PollRequest {
        let now = crate::source::now_epoch();
        let since = match &self.ledger {
            Some(l) => l.since(now, self.window),
            None => now.saturating_sub(self.window.lookback_seconds),
        };
        PollRequest {
            accounting_since_epoch: Some(since),
        }
    }

    /// Adds a poll's finished jobs to the ledger and returns its totals. A ledger that
    /// cannot be written costs this batch only: its cursor stays, so the next poll asks
    /// for the same jobs again.
    fn account(
        &mut self,
        jobs: Vec<crate::model::FinishedJob>,
        now_epoch: u64,
    ) -> Option<Arc<AccountingTotals>> {
        let source = self.status.source.clone();
        if self.ledger.is_none() {
            match Ledger::in_memory() {
                Ok(l) => {
                    tracing::info!(
                        source = source.as_str(),
                        "accounting counters kept in memory (no ledger path configured): they restart with the process"
                    );
                    self.ledger = Some(l);
                }
                Err(e) => {
                    tracing::warn!(source = source.as_str(), "accounting off: {e}");
                    return None;
                }
            }
        }
        let ledger = self.ledger.as_mut()?;
        match ledger.apply(&jobs, now_epoch, self.window.overlap_seconds) {
            Ok(done) => {
                tracing::debug!(
                    source = source.as_str(),
                    counted = done.counted,
                    duplicate = done.duplicate,
                    late = done.late,
                    "accounting batch"
                );
            }
            Err(e) => {
                *self.status.errors.entry("ledger").or_default() += 1;
                tracing::warn!(
                    source = source.as_str(),
                    "accounting batch not recorded: {e}"
                );
            }
        }
        Some(Arc::new(ledger.totals()))
    }

    /// Polls once with the timeout; updates data and health. Returns the error, if any.
    pub async fn poll_once(&mut self) -> Result<(), SourceError> {
        let started = Instant::now();
        let req = self.poll_request();
        let result = match tokio::time::timeout(self.cfg.timeout, self.source.poll_with(req)).await
        {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout {
                what: format!("{} poll", self.status.source.as_str()),
                seconds: self.cfg.timeout.as_secs_f64(),
            }),
        };
        self.status.polls += 1;
        self.status.last_duration_seconds = started.elapsed().as_secs_f64();
        let outcome = match result {
            Ok(mut parts) => {
                self.failures = 0;
                for w in std::mem::take(&mut parts.warnings) {
                    *self.status.errors.entry(w.kind()).or_default() += 1;
                    tracing::warn!(
                        source = self.status.source.as_str(),
                        kind = w.kind(),
                        "poll warning (data kept): {w}"
                    );
                }
                self.status.last_bytes = parts.bytes;
                if parts.not_modified {
                    self.status.not_modified += 1;
                }
                // Finished jobs are a batch for the ledger, not a part to keep: the part
                // kept is the ledger's totals.
                if let Some(jobs) = parts.finished_jobs.take() {
                    let now = if parts.fetched_epoch > 0 {
                        parts.fetched_epoch
                    } else {
                        crate::source::now_epoch()
                    };
                    let charged = self.charge(
                        &jobs,
                        parts.jobs.as_deref().unwrap_or(&[]),
                        parts.cluster.as_deref(),
                        now,
                    );
                    parts.accounting = self.account(jobs, now).map(|t| match charged {
                        Some(c) => Arc::new(AccountingTotals {
                            chargeback: Some(c),
                            ..Arc::unwrap_or_clone(t)
                        }),
                        None => t,
                    });
                }
                self.merge(parts);
                self.last_good = Some(Instant::now());
                self.status.last_success_epoch = Some(now_f64());
                self.log_meta_once();
                Ok(())
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                *self.status.errors.entry(e.kind()).or_default() += 1;
                tracing::warn!(
                    source = self.status.source.as_str(),
                    kind = e.kind(),
                    "poll failed: {e}"
                );
                Err(e)
            }
        };
        let fresh = self
            .last_good
            .is_some_and(|t| t.elapsed() <= self.cfg.max_staleness);
        // Stale from the moment the last good data is too old until fresh data arrives, not
        // only on the poll that drops it.
        self.status.stale = self.last_good.is_some() && !fresh;
        if self.status.stale && self.data.is_some() {
            tracing::warn!(
                source = self.status.source.as_str(),
                "last good data is older than max_staleness ({} s): dropped",
                self.cfg.max_staleness.as_secs()
            );
            self.data = None;
        }
        self.status.up = outcome.is_ok() && fresh;
        outcome
    }

    /// 304 parts (`None`) keep the previous ones.
    fn merge(&mut self, p: Parts) {
        match &mut self.data {
            None => self.data = Some(Arc::new(p)),
            Some(old) => {
                let old = Arc::make_mut(old);
                old.meta = if p.meta.release.is_empty() {
                    old.meta.clone()
                } else {
                    p.meta
                };
                old.fetched_epoch = p.fetched_epoch;
                old.bytes = p.bytes;
                if p.cluster.is_some() {
                    old.cluster = p.cluster;
                }
                if p.nodes.is_some() {
                    old.nodes = p.nodes;
                }
                if p.jobs.is_some() {
                    old.jobs = p.jobs;
                }
                // Each part replaces its predecessor only when this poll read it.
                macro_rules! keep_or_take {
                    ($($f:ident),*) => {$( if p.$f.is_some() { old.$f = p.$f; } )*};
                }
                keep_or_take!(
                    partitions,
                    diag,
                    controllers,
                    associations,
                    qos,
                    licenses,
                    reservations,
                    cgroup_jobs,
                    priorities,
                    external,
                    accounting
                );
            }
        }
    }

    fn log_meta_once(&mut self) {
        let Some(d) = &self.data else { return };
        let key = (d.meta.release.clone(), d.meta.plugin.clone());
        if self.logged_meta.as_ref() != Some(&key) {
            tracing::info!(
                source = self.status.source.as_str(),
                slurm = %key.0,
                api = %key.1,
                "reading Slurm {} through {} ({})",
                if key.0.is_empty() { "(release not reported)" } else { &key.0 },
                self.status.source.as_str(),
                key.1
            );
            self.logged_meta = Some(key);
        }
    }

    /// Time to wait before the next poll: the interval with ±10% jitter when healthy,
    /// doubling per failure up to `backoff_max`.
    pub fn next_delay(&self) -> Duration {
        let base = if self.failures == 0 {
            self.cfg.interval
        } else {
            let factor = 2u32.saturating_pow(self.failures.min(16));
            self.cfg
                .interval
                .saturating_mul(factor)
                .min(self.cfg.backoff_max.max(self.cfg.interval))
        };
        let jitter = 0.9 + rand::random::<f64>() * 0.2;
        base.mul_f64(jitter)
    }

    pub fn status(&self) -> &SourceStatus {
        &self.status
    }

    /// A cheap copy of the runner's current data and health for the fuse step.
    pub fn view(&self) -> SourceView {
        SourceView {
            name: self.status.source.clone(),
            data: self.data.clone(),
            status: self.status.clone(),
        }
    }
}

fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// How long apart two sources' copies of the same part may be and still count as the
/// same moment (see [`fuse`]).
pub const DEFAULT_CORRELATION_WINDOW: Duration = Duration::from_secs(60);

/// Builds one snapshot from every runner of a cluster. Runners are in priority order (the
/// configured order). For each part (nodes, jobs, diag, ...), among the runners that have
/// it, copies fetched within `window` of the newest count as the same moment and the
/// highest-priority one wins; otherwise the newest wins. Ingested external families are
/// concatenated. The choice per part is recorded for `slurm_exporter_part_source`.
pub fn fuse_window(views: &[SourceView], cluster: Option<&str>, window: Duration) -> Snapshot {
    let sources: Vec<SourceStatus> = views.iter().map(|v| v.status.clone()).collect();
    let have: Vec<(&str, &Parts)> = views
        .iter()
        .filter_map(|v| v.data.as_deref().map(|d| (v.name.as_str(), d)))
        .collect();
    let mut chosen: Vec<(&'static str, String)> = Vec::new();
    let mut merged = Parts::default();
    macro_rules! pick {
        ($($f:ident),*) => {$(
            let cands: Vec<(usize, u64)> = have
                .iter()
                .enumerate()
                .filter(|(_, (_, d))| d.$f.is_some())
                .map(|(i, (_, d))| (i, d.fetched_epoch))
                .collect();
            if let Some(newest) = cands.iter().map(|c| c.1).max() {
                let w = window.as_secs();
                // Candidates are in priority order: the first close enough to the newest wins.
                if let Some(&(i, _)) = cands.iter().find(|c| c.1.saturating_add(w) >= newest) {
                    merged.$f = have[i].1.$f.clone();
                    chosen.push((stringify!($f), have[i].0.to_owned()));
                }
            }
        )*};
    }
    pick!(
        nodes,
        jobs,
        partitions,
        diag,
        controllers,
        associations,
        qos,
        licenses,
        reservations,
        cgroup_jobs,
        priorities,
        accounting
    );
    // Meta and time come with the jobs (the core part), else the nodes, else the first.
    let source_of = |part: &str| {
        chosen
            .iter()
            .find(|(p, _)| *p == part)
            .and_then(|(_, src)| have.iter().find(|(n, _)| n == src))
    };
    let core = source_of("jobs")
        .or_else(|| source_of("nodes"))
        .or(have.first());
    if let Some((_, d)) = core {
        merged.meta = d.meta.clone();
        merged.cluster = d.cluster.clone();
        merged.fetched_epoch = d.fetched_epoch;
    }
    let external: Vec<crate::store::Family> = have
        .iter()
        .filter_map(|(_, d)| d.external.as_ref())
        .flatten()
        .cloned()
        .collect();
    if !external.is_empty() {
        merged.external = Some(external);
    }
    let mut snap = snapshot_from((!have.is_empty()).then_some(&merged), sources, cluster);
    snap.part_sources = Arc::new(chosen);
    snap
}

/// [`fuse_window`] over runners, with the default correlation window.
pub fn fuse(runners: &[&Runner], cluster: Option<&str>) -> Snapshot {
    let views: Vec<SourceView> = runners.iter().map(|r| r.view()).collect();
    fuse_window(&views, cluster, DEFAULT_CORRELATION_WINDOW)
}

/// What the fuse step sees of a runner: its last good data and its health.
#[derive(Debug, Clone)]
pub struct SourceView {
    pub name: String,
    pub data: Option<Arc<Parts>>,
    pub status: SourceStatus,
}

/// A snapshot of one source's parts (`None`: no data) with the sources' health.
pub fn snapshot_from(
    data: Option<&Parts>,
    sources: Vec<SourceStatus>,
    cluster: Option<&str>,
) -> Snapshot {
    let mut snap = Snapshot {
        sources: Arc::new(sources),
        ..Snapshot::default()
    };
    if let Some(d) = data {
        snap.meta = d.meta.clone();
        snap.taken_epoch = d.fetched_epoch;
        snap.nodes = Arc::new(d.nodes.clone().unwrap_or_default());
        snap.jobs = Arc::new(d.jobs.clone().unwrap_or_default());
        snap.partitions = Arc::new(d.partitions.clone().unwrap_or_default());
        snap.diag = d.diag.clone().map(Arc::new);
        snap.controllers = Arc::new(d.controllers.clone().unwrap_or_default());
        snap.associations = Arc::new(d.associations.clone().unwrap_or_default());
        snap.qos = Arc::new(d.qos.clone().unwrap_or_default());
        snap.licenses = Arc::new(d.licenses.clone().unwrap_or_default());
        snap.reservations = Arc::new(d.reservations.clone().unwrap_or_default());
        snap.cgroup_jobs = Arc::new(d.cgroup_jobs.clone().unwrap_or_default());
        snap.priorities = Arc::new(d.priorities.clone().unwrap_or_default());
        snap.external = Arc::new(d.external.clone().unwrap_or_default());
        // A runner's ledger totals; a one-shot collection (replay, goldens) sums the batch
        // it was given.
        snap.accounting = d.accounting.clone().or_else(|| {
            d.finished_jobs
                .as_deref()
                .map(|jobs| Arc::new(AccountingTotals::from_jobs(jobs)))
        });
    }
    let name = cluster
        .map(str::to_owned)
        .or_else(|| data.and_then(|d| d.cluster.clone()))
        .unwrap_or_else(|| "slurm".to_owned());
    snap.cluster = Name::from(name);
    snap
}

/// Runs the families over a snapshot and publishes the result.
pub fn publish(store: &Store, snap: &Snapshot, options: &Options) {
    let families = families::collect_all(snap, options);
    store.publish(families, now_f64());
}

/// One cluster: its sources in priority order, fused into one snapshot.
pub struct ClusterSpec {
    /// The `cluster` label; `None` uses what Slurm reports.
    pub name: Option<String>,
    pub runners: Vec<Runner>,
    pub window: Duration,
}

/// Latest families per cluster, merged into one generation on every change.
struct Hub {
    store: Arc<Store>,
    options: Options,
    /// With several clusters every series gets a `cluster` label.
    label: bool,
    latest: std::sync::Mutex<Vec<Option<Vec<crate::store::Family>>>>,
}

impl Hub {
    fn update(&self, idx: usize, snap: &Snapshot) {
        let mut fams = families::collect_all(snap, &self.options);
        if self.label {
            crate::store::label_cluster(&mut fams, &snap.cluster);
        }
        let Ok(mut latest) = self.latest.lock() else {
            return;
        };
        if let Some(slot) = latest.get_mut(idx) {
            *slot = Some(fams);
        }
        let merged = if latest.len() == 1 {
            latest[0].clone().unwrap_or_default()
        } else {
            crate::store::merge_families(latest.iter().flatten().flatten().cloned())
        };
        self.store.publish(merged, now_f64());
    }
}

/// Polls every source of every cluster forever, each on its own schedule (single flight per
/// source), and publishes after every poll. Returns when the runtime shuts down.
pub async fn run_clusters(clusters: Vec<ClusterSpec>, store: Arc<Store>, options: Options) {
    let hub = Arc::new(Hub {
        store,
        options,
        label: clusters.len() > 1,
        latest: std::sync::Mutex::new(vec![None; clusters.len()]),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (idx, c) in clusters.into_iter().enumerate() {
        let views: Arc<std::sync::Mutex<Vec<SourceView>>> = Arc::new(std::sync::Mutex::new(
            c.runners.iter().map(Runner::view).collect(),
        ));
        for (slot, mut runner) in c.runners.into_iter().enumerate() {
            let (hub, views, name, window) = (hub.clone(), views.clone(), c.name.clone(), c.window);
            tasks.spawn(async move {
                loop {
                    let _ = runner.poll_once().await;
                    let snap = {
                        let Ok(mut v) = views.lock() else { return };
                        if let Some(s) = v.get_mut(slot) {
                            *s = runner.view();
                        }
                        fuse_window(&v, name.as_deref(), window)
                    };
                    let hub = hub.clone();
                    // Families over 100,000 jobs are CPU work: keep them off the async workers.
                    let _ = tokio::task::spawn_blocking(move || hub.update(idx, &snap)).await;
                    tokio::time::sleep(runner.next_delay()).await;
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::PollFuture;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Succeeds on the polls listed, fails otherwise.
    struct Scripted {
        n: AtomicU32,
        ok: &'static [u32],
        hang: bool,
    }

    impl Source for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn poll(&self) -> PollFuture<'_> {
            let i = self.n.fetch_add(1, Ordering::SeqCst);
            let ok = self.ok.contains(&i);
            let hang = self.hang;
            Box::pin(async move {
                if hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                if ok {
                    let bytes = include_bytes!("../testdata/rest/22.05.8/slurm_v0.0.38_nodes.json");
                    let (_, nodes) =
                        crate::parse::nodes::parse_nodes(&bytes[..], &mut Default::default())
                            .map_err(|err| SourceError::Parse {
                                what: "t".into(),
                                err,
                            })?;
                    Ok(Parts {
                        nodes: Some(nodes),
                        jobs: Some(Vec::new()),
                        fetched_epoch: 100,
                        ..Parts::default()
                    })
                } else {
                    Err(SourceError::Http {
                        what: "GET /x".into(),
                        status: 500,
                        msg: "boom".into(),
                    })
                }
            })
        }
    }

    fn runner(ok: &'static [u32], hang: bool, staleness: Duration) -> Runner {
        Runner::new(
            Box::new(Scripted {
                n: AtomicU32::new(0),
                ok,
                hang,
            }),
            PollConfig {
                interval: Duration::from_secs(10),
                timeout: Duration::from_millis(50),
                max_staleness: staleness,
                backoff_max: Duration::from_secs(60),
                cluster: Some("c".into()),
            },
        )
    }

    #[tokio::test]
    async fn failing_source_keeps_last_good_data_and_says_so() {
        let mut r = runner(&[0], false, Duration::from_secs(3600));
        r.poll_once().await.expect("first poll ok");
        assert!(r.status().up);
        let err = r.poll_once().await.expect_err("second fails");
        assert_eq!(err.kind(), "http");
        assert!(!r.status().up);
        assert!(!r.status().stale);
        assert_eq!(r.status().errors.get("http"), Some(&1));
        let snap = fuse(&[&r], Some("c"));
        assert_eq!(snap.nodes.len(), 16, "last good data still served");
    }

    #[tokio::test]
    async fn data_past_max_staleness_is_dropped() {
        let mut r = runner(&[0], false, Duration::from_millis(0));
        r.poll_once().await.expect("ok");
        tokio::time::sleep(Duration::from_millis(5)).await;
        r.poll_once().await.expect_err("second fails");
        assert!(r.status().stale, "stale on the poll that drops the data");
        assert!(r.data.is_none());
        r.poll_once().await.expect_err("third fails");
        assert!(r.status().stale, "and until fresh data arrives");
        assert!(!r.status().up);
        assert_eq!(fuse(&[&r], None).nodes.len(), 0);
        assert_eq!(&*fuse(&[&r], None).cluster, "slurm");
    }

    #[tokio::test]
    async fn hanging_source_times_out() {
        let mut r = runner(&[], true, Duration::from_secs(1));
        let err = r.poll_once().await.expect_err("times out");
        assert_eq!(err.kind(), "timeout");
    }

    fn view(name: &str, epoch: u64, nodes: usize, diag: bool) -> SourceView {
        let node = crate::model::Node {
            name: "n".into(),
            base: crate::model::NodeBaseState::Idle,
            flags: Default::default(),
            cpus: 1,
            alloc_cpus: 0,
            real_memory_bytes: 0,
            alloc_memory_bytes: 0,
            free_memory_bytes: None,
            cpu_load: None,
            gpus_total: 0,
            gpus_alloc: 0,
            gpu_type: "".into(),
            gpu_types: Vec::new(),
            partitions: Vec::new(),
            reason: "".into(),
            features: "".into(),
            arch: "".into(),
            slurmd_version: "".into(),
            weight: 0,
            boot_time_epoch: None,
            last_busy_epoch: None,
        };
        SourceView {
            name: name.into(),
            data: Some(Arc::new(Parts {
                nodes: Some(vec![node; nodes]),
                diag: diag.then(Default::default),
                fetched_epoch: epoch,
                ..Parts::default()
            })),
            status: SourceStatus::default(),
        }
    }

    #[test]
    fn within_the_window_the_first_source_wins_beyond_it_the_newest() {
        let w = Duration::from_secs(60);
        let snap = fuse_window(
            &[view("rest", 1000, 3, false), view("cli", 1030, 5, true)],
            None,
            w,
        );
        assert_eq!(
            snap.nodes.len(),
            3,
            "rest is first and within 60 s of the newest"
        );
        assert!(snap.diag.is_some(), "only cli has diag: it is used");
        assert_eq!(
            *snap.part_sources,
            vec![("nodes", "rest".to_owned()), ("diag", "cli".to_owned())]
        );
        let snap = fuse_window(
            &[view("rest", 1000, 3, false), view("cli", 1100, 5, true)],
            None,
            w,
        );
        assert_eq!(snap.nodes.len(), 5, "rest is 100 s behind: the newest wins");
        assert_eq!(snap.taken_epoch, 1100);
    }

    #[tokio::test]
    async fn backoff_grows_and_is_capped() {
        let mut r = runner(&[], false, Duration::from_secs(1));
        let healthy = r.next_delay();
        assert!(healthy >= Duration::from_secs(9) && healthy <= Duration::from_secs(11));
        for _ in 0..3 {
            let _ = r.poll_once().await;
        }
        let d = r.next_delay();
        assert!(
            d >= Duration::from_secs(54) && d <= Duration::from_secs(66),
            "{d:?}"
        );
    }
}
