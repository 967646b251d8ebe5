//! Where Slurm data comes from. One file per source; each turns one poll into [`Parts`].
//!
//! - [`rest`]: slurmrestd over TCP or a unix socket, JWT auth, version discovery.
//! - [`cli`]: `squeue --json`, `sinfo --json`, `scontrol` — the ONLY place that spawns processes.
//! - the simulator (the `sim` crate, `sim::SimSource`): a deterministic synthetic cluster
//!   producing slurmrestd's exact JSON.
//! - [`replay`]: a directory of captured responses.
//!
//! All of them feed the same parsers in [`crate::parse`], streaming: a response is parsed as
//! it arrives and never held whole in memory.

pub mod cgroup;
pub mod cli;
pub mod native;
pub mod node_exporter;
pub mod replay;
pub mod rest;
pub mod textfile;

use crate::model::{
    Association, CgroupJob, Controller, Diag, FinishedJob, Job, License, Node, Partition, Qos,
    Reservation, SlurmMeta,
};
use crate::parse::ParseError;
use std::future::Future;
use std::pin::Pin;

/// What one poll of a source produced. `None` for a part means "unchanged since the last
/// poll" (slurmrestd answered 304 Not Modified): the poller keeps the previous one.
#[derive(Debug, Default, Clone)]
pub struct Parts {
    pub meta: SlurmMeta,
    /// Cluster name when the source knows it.
    pub cluster: Option<String>,
    pub nodes: Option<Vec<Node>>,
    pub jobs: Option<Vec<Job>>,
    pub partitions: Option<Vec<Partition>>,
    pub diag: Option<Diag>,
    pub controllers: Option<Vec<Controller>>,
    pub associations: Option<Vec<Association>>,
    pub qos: Option<Vec<Qos>>,
    pub licenses: Option<Vec<License>>,
    pub reservations: Option<Vec<Reservation>>,
    /// Jobs finished since the last poll (accounting).
    pub finished_jobs: Option<Vec<FinishedJob>>,
    /// The accounting ledger's totals, set by the poller after it took `finished_jobs`
    /// into its ledger; sources leave it `None`.
    pub accounting: Option<std::sync::Arc<crate::model::AccountingTotals>>,
    pub cgroup_jobs: Option<Vec<CgroupJob>>,
    pub priorities: Option<Vec<crate::model::priority::JobPriority>>,
    pub external: Option<Vec<crate::store::Family>>,
    /// When the data was read, seconds since the epoch.
    pub fetched_epoch: u64,
    /// Bytes read in this poll.
    pub bytes: u64,
    pub not_modified: bool,
    /// Optional parts that failed; the poll succeeded without them.
    pub warnings: Vec<SourceError>,
}

/// Which optional parts a source reads besides jobs, nodes and partitions. Derived from
/// the enabled families, so switching a family off also spares Slurm its query (the
/// slurmdbd-backed ones cost 100–400 ms each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extras {
    pub diag: bool,
    pub ping: bool,
    pub licenses: bool,
    pub reservations: bool,
    pub qos: bool,
    pub associations: bool,
    /// Finished jobs from slurmdbd (`sacct --json`, `/slurmdb/vX/jobs`), read incrementally.
    pub accounting: bool,
    /// Pending jobs' priority factors (`sprio`; CLI only: slurmrestd has no equivalent).
    pub priority: bool,
}

impl Extras {
    pub fn all() -> Extras {
        Extras {
            diag: true,
            ping: true,
            licenses: true,
            reservations: true,
            qos: true,
            associations: true,
            accounting: true,
            priority: true,
        }
    }

    pub fn none() -> Extras {
        Extras {
            diag: false,
            ping: false,
            licenses: false,
            reservations: false,
            qos: false,
            associations: false,
            accounting: false,
            priority: false,
        }
    }

    /// What the families enabled in `o` need.
    pub fn for_families(o: &crate::families::Options) -> Extras {
        let on = |f: &str| !o.is_disabled(f);
        Extras {
            diag: on("scheduler") || on("rpc"),
            ping: on("controllers"),
            licenses: on("licenses"),
            reservations: on("reservations"),
            qos: on("limits"),
            associations: on("fairshare") || on("limits"),
            accounting: on("accounting"),
            priority: on("priority"),
        }
    }
}

impl Default for Extras {
    fn default() -> Self {
        Extras::all()
    }
}

/// Why a poll failed. `kind()` is the `kind` label of `slurm_exporter_source_errors_total`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("{what} timed out after {seconds} s")]
    Timeout { what: String, seconds: f64 },
    #[error("{what}: could not connect: {msg}")]
    Connect { what: String, msg: String },
    #[error("{what}: slurmrestd refused the credentials (HTTP {status}): {msg}")]
    Auth {
        what: String,
        status: u16,
        msg: String,
    },
    #[error("{what}: unexpected HTTP {status}: {msg}")]
    Http {
        what: String,
        status: u16,
        msg: String,
    },
    #[error("{what}: {err}")]
    Parse { what: String, err: ParseError },
    #[error("{what}: could not start: {msg}")]
    Spawn { what: String, msg: String },
    #[error("{what}: exited with {status}: {stderr}")]
    Exit {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("{what}: {msg}")]
    Io { what: String, msg: String },
    #[error("{0}")]
    Config(String),
    /// Errors (`warning: false`) or warnings Slurm wrote beside data it still delivered;
    /// the data is used, the note counted and logged.
    #[error("{what}: Slurm {}: {msg}", if *warning { "warns" } else { "reports errors beside its data" })]
    SlurmNote {
        what: String,
        msg: String,
        warning: bool,
    },
}

impl SourceError {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::Timeout { .. } => "timeout",
            SourceError::Connect { .. } => "connect",
            SourceError::Auth { .. } => "auth",
            SourceError::Http { .. } => "http",
            // Slurm answered, and said no: an expired token, an unknown job, ...
            SourceError::Parse {
                err: crate::parse::ParseError::Slurm(_),
                ..
            } => "slurm",
            SourceError::Parse { .. } => "parse",
            SourceError::Spawn { .. } => "spawn",
            SourceError::Exit { .. } => "exit",
            SourceError::Io { .. } => "io",
            SourceError::Config(_) => "config",
            SourceError::SlurmNote { warning: false, .. } => "slurm_partial",
            SourceError::SlurmNote { warning: true, .. } => "slurm_warning",
        }
    }
}

/// Slurm's errors and warnings beside data it delivered (a partial answer), as warnings
/// for the poller to count (`slurm_partial`, `slurm_warning`) and log.
pub fn slurm_notes(what: &str, env: &crate::parse::doc::Envelope) -> Vec<SourceError> {
    let (errors, warnings) = env.notes();
    [(errors, false), (warnings, true)]
        .into_iter()
        .filter_map(|(msg, warning)| {
            Some(SourceError::SlurmNote {
                what: what.to_owned(),
                msg: msg?,
                warning,
            })
        })
        .collect()
}

pub type PollFuture<'a> = Pin<Box<dyn Future<Output = Result<Parts, SourceError>> + Send + 'a>>;

/// What the poller asks of one poll besides "everything the source offers".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollRequest {
    /// Read finished jobs that ended from this time on (seconds since the epoch); `None`
    /// leaves the window to the source (its default lookback). Set by the poller from the
    /// accounting ledger's cursor, so each poll reads only what is new (with overlap).
    pub accounting_since_epoch: Option<u64>,
}

/// A place Slurm data comes from. `poll` reads everything the source offers once.
pub trait Source: Send + Sync {
    /// Stable name for logs and the `source` label (`rest`, `cli`, `sim`, `replay`).
    fn name(&self) -> &str;
    fn poll(&self) -> PollFuture<'_>;
    /// [`Source::poll`] with the poller's request; sources that read accounting override it.
    fn poll_with(&self, req: PollRequest) -> PollFuture<'_> {
        let _ = req;
        self.poll()
    }
}

/// Seconds since the epoch now.
pub fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A `Read` over chunks sent from an async task, so a sync streaming parser can consume a
/// response body or a pipe as it arrives without holding it whole.
pub struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    cur: bytes::Bytes,
    pub total: u64,
}

impl ChunkReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>) -> Self {
        ChunkReader {
            rx,
            cur: bytes::Bytes::new(),
            total: 0,
        }
    }
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        self.total += n as u64;
        Ok(n)
    }
}

/// Counts bytes passing through a reader.
pub struct Counted<R> {
    pub inner: R,
    pub count: u64,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.count += n as u64;
        Ok(n)
    }
}
