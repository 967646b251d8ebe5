//! `[audit.publish]`: ships every signed checkpoint of the audit log off the host, to a
//! directory (`DIR/checkpoints.jsonl`, one JSON line each: a different mount, a WORM share)
//! and/or an HTTP(S) witness (`slurm-exporter audit witness`, see [`crate::witness`]).
//!
//! Why: a log on the writer's own disk cannot prove that its newest records were not cut,
//! nor that an older copy was not put back. A checkpoint held elsewhere can; `audit verify
//! --witness` checks the log against the newest one.
//!
//! The writer thread only queues each durable checkpoint (the hook must be quick); a thread
//! of its own sends them every `interval_seconds` and once more at shutdown. A failure is
//! counted (`..._audit_checkpoint_publish_total{result="failure"}`), logged and retried on
//! the next round; it never delays an answer. A target that missed checkpoints (the queue
//! overflowed, or the gateway restarted before it sent them) is caught up from the log's own
//! files, so the witness always receives an unbroken chain.

use crate::audit_health::{AuditHealth, PublishLabels, TargetLabels};
use crate::settings::sections::PublishConfig;
use audit::Checkpoint;
use std::collections::VecDeque;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Checkpoints kept in memory for sending; beyond this the oldest are dropped and the next
/// round reads them back from the log.
const MAX_QUEUED: usize = 100_000;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The file a `dir` target appends to.
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";

#[derive(Default)]
struct Queue {
    cps: VecDeque<Checkpoint>,
    overflowed: bool,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// The running publisher. [`Publisher::finish`] sends what is left and stops it.
pub struct Publisher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

enum Sink {
    Dir(PathBuf),
    Url {
        client: reqwest::Client,
        url: reqwest::Url,
        token: Option<String>,
    },
}

struct Target {
    name: &'static str,
    sink: Sink,
    /// The newest checkpoint the target holds; `None` until asked (`known`).
    last: Option<Checkpoint>,
    known: bool,
}

impl Publisher {
    /// Checks the settings (the CA and token files are read now) and starts the thread.
    /// Returns the hook to give the audit writer.
    pub fn start(
        cfg: &PublishConfig,
        log_dir: &Path,
        health: Arc<OnceLock<AuditHealth>>,
    ) -> Result<(Publisher, audit::CheckpointHook), String> {
        let mut targets = Vec::new();
        if let Some(dir) = &cfg.dir {
            if !dir.is_dir() {
                return Err(format!(
                    "audit.publish.dir {}: not a directory",
                    dir.display()
                ));
            }
            targets.push(Target {
                name: "dir",
                sink: Sink::Dir(dir.join(CHECKPOINTS_FILE)),
                last: None,
                known: false,
            });
        }
        if let Some(url) = &cfg.url {
            let parsed =
                reqwest::Url::parse(url).map_err(|e| format!("audit.publish.url {url}: {e}"))?;
            let client = crate::layer::authn::http_client(HTTP_TIMEOUT, cfg.ca_file.as_deref())
                .map_err(|e| format!("audit.publish: {e}"))?;
            let token = cfg
                .token_file
                .as_ref()
                .map(|p| {
                    std::fs::read_to_string(p)
                        .map(|t| t.trim().to_owned())
                        .map_err(|e| format!("audit.publish.token_file {}: {e}", p.display()))
                })
                .transpose()?;
            targets.push(Target {
                name: "url",
                sink: Sink::Url {
                    client,
                    url: parsed,
                    token,
                },
                last: None,
                known: false,
            });
        }
        if targets.is_empty() {
            return Err("audit.publish: set dir, url or both".to_owned());
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let interval = Duration::from_secs(cfg.interval_seconds.max(1));
        let log_dir = log_dir.to_owned();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("audit-publish".to_owned())
            .spawn(move || run(&s, targets, interval, &log_dir, &health))
            .map_err(|e| format!("audit.publish: cannot start its thread: {e}"))?;
        let q = shared.clone();
        let hook: audit::CheckpointHook = Arc::new(move |cp: &Checkpoint| {
            let mut queue = lock(&q.queue);
            if queue.cps.len() >= MAX_QUEUED {
                queue.cps.pop_front();
                queue.overflowed = true;
            }
            queue.cps.push_back(cp.clone());
        });
        Ok((
            Publisher {
                shared,
                thread: Mutex::new(Some(thread)),
            },
            hook,
        ))
    }

    /// Sends everything queued (the final seal included: call after closing the log) and
    /// stops. Bounded by the HTTP timeout.
    pub fn finish(&self) {
        lock(&self.shared.queue).stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(
    shared: &Shared,
    mut targets: Vec<Target>,
    interval: Duration,
    log_dir: &Path,
    health: &OnceLock<AuditHealth>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "audit.publish: cannot start; no checkpoint will be published");
            return;
        }
    };
    loop {
        let (batch, overflowed, stop) = {
            let q = lock(&shared.queue);
            let (mut q, _) = shared
                .wake
                .wait_timeout_while(q, interval, |q| !q.stop)
                .unwrap_or_else(|e| e.into_inner());
            let overflowed = std::mem::take(&mut q.overflowed);
            (
                q.cps.iter().cloned().collect::<Vec<_>>(),
                overflowed,
                q.stop,
            )
        };
        for t in &mut targets {
            let outcome = rt.block_on(publish(t, &batch, overflowed, log_dir));
            if let Some(h) = health.get() {
                let result = if outcome.is_ok() {
                    "success"
                } else {
                    "failure"
                };
                h.declare_target(t.name);
                h.publish
                    .get_or_create(&PublishLabels {
                        target: t.name.into(),
                        result: result.into(),
                    })
                    .inc();
                let label = TargetLabels {
                    target: t.name.into(),
                };
                if outcome.is_ok() {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    h.last_published.get_or_create(&label).set(now);
                }
                let behind = batch
                    .iter()
                    .filter(|c| t.last.as_ref().is_none_or(|l| c.seq > l.seq))
                    .count();
                h.unpublished
                    .get_or_create(&label)
                    .set(i64::try_from(behind).unwrap_or(i64::MAX));
            }
            if let Err(e) = outcome {
                tracing::warn!(target = t.name, error = %e, "audit checkpoints not published; retrying next round");
            }
        }
        // What every target holds can go.
        let floor = targets
            .iter()
            .map(|t| t.last.as_ref().map_or(0, |l| l.seq.saturating_add(1)))
            .min()
            .unwrap_or(0);
        lock(&shared.queue).cps.retain(|c| c.seq >= floor);
        if stop {
            return;
        }
    }
}

/// Sends `target` every checkpoint after the one it holds, as one unbroken chain.
async fn publish(
    target: &mut Target,
    batch: &[Checkpoint],
    overflowed: bool,
    log_dir: &Path,
) -> Result<(), String> {
    if !target.known {
        target.last = last_held(&target.sink).await?;
        target.known = true;
    }
    let newer = |c: &Checkpoint| target.last.as_ref().is_none_or(|l| c.seq > l.seq);
    let mut todo: Vec<Checkpoint> = batch.iter().filter(|c| newer(c)).cloned().collect();
    if todo.is_empty() {
        // Queued checkpoints, none after the target's: this log is behind what the target
        // holds (an older copy was put back). Send the newest so the witness refuses it,
        // records the attempt, and this round counts as a failure.
        return match batch.last() {
            Some(cp) => send(&target.sink, std::slice::from_ref(cp)).await,
            None => Ok(()),
        };
    }
    let Some(first) = todo.first() else {
        return Ok(());
    };
    let linked = target.last.as_ref().is_none_or(|l| first.extends(l));
    if overflowed || !linked {
        // Checkpoints the queue does not hold (overflow, or written before this process
        // started): read them back from the log.
        let from = target.last.as_ref().map_or(0, |l| l.segment);
        todo = audit::checkpoints_from(log_dir, from)
            .map_err(|e| format!("reading checkpoints back from the log: {e}"))?
            .into_iter()
            .filter(|c| newer(c))
            .collect();
    }
    if todo.is_empty() {
        return Ok(());
    }
    send(&target.sink, &todo).await?;
    target.last = todo.last().cloned();
    Ok(())
}

async fn last_held(sink: &Sink) -> Result<Option<Checkpoint>, String> {
    match sink {
        Sink::Dir(path) => last_line(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .map(|l| Checkpoint::from_json_line(&l).map_err(|e| format!("{}: {e}", path.display())))
            .transpose(),
        Sink::Url { client, url, token } => {
            let latest = format!("{}/latest", url.as_str().trim_end_matches('/'));
            let mut req = client.get(&latest);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.map_err(|e| format!("{latest}: {e}"))?;
            let status = res.status();
            let text = res.text().await.map_err(|e| format!("{latest}: {e}"))?;
            match status.as_u16() {
                200 => Checkpoint::from_json_line(text.trim())
                    .map(Some)
                    .map_err(|e| format!("{latest}: {e}")),
                404 => Ok(None),
                _ => Err(format!("{latest}: {status}: {}", text.trim())),
            }
        }
    }
}

/// Checkpoints per HTTP request (about 1 KiB each; the witness takes up to 4 MiB).
const PER_POST: usize = 1000;

async fn send(sink: &Sink, cps: &[Checkpoint]) -> Result<(), String> {
    if matches!(sink, Sink::Url { .. }) && cps.len() > PER_POST {
        for chunk in cps.chunks(PER_POST) {
            Box::pin(send(sink, chunk)).await?;
        }
        return Ok(());
    }
    let mut body = String::new();
    for c in cps {
        body.push_str(&c.to_json_line());
        body.push('\n');
    }
    match sink {
        Sink::Dir(path) => {
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                f.write_all(body.as_bytes())?;
                f.sync_data()
            };
            write().map_err(|e| format!("{}: {e}", path.display()))
        }
        Sink::Url { client, url, token } => {
            let mut req = client
                .post(url.clone())
                .header("content-type", "application/jsonl")
                .body(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = res.status();
            if status.is_success() {
                return Ok(());
            }
            let text = res.text().await.unwrap_or_default();
            Err(format!(
                "{url}: {status}: {}",
                text.trim().chars().take(300).collect::<String>()
            ))
        }
    }
}

/// The last non-empty line of a file (reading at most its last 64 KiB); `None` when the file
/// does not exist or is empty.
pub fn last_line(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(std::io::SeekFrom::Start(len.saturating_sub(64 << 10)))?;
    let mut tail = String::new();
    f.read_to_string(&mut tail)?;
    Ok(tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_owned))
}
