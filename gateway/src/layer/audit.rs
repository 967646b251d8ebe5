//! The audit layer: one encrypted, hash-chained record (the `audit` crate) for every request
//! through the gateway, written before the response leaves; the same place counts the
//! request in the gateway's self-metrics ([`crate::metrics::GatewayMetrics`]).
//!
//! It sits outermost in [`crate::stack`], so it sees every answer: served scrapes, 401s,
//! 403s, 429s, quota refusals, 404s and timeouts. It reads what the inner layers decided
//! from the response's extensions ([`Principal`], [`AuthnFailure`], [`RateLimited`],
//! [`QuotaRefused`] and the handlers' [`Served`]), never from request headers, so a client
//! cannot write its own audit trail. Records never hold a credential: the principal is the
//! verified identity, and the path is recorded without its query string (selectors are
//! summarized as a count and a digest).
//!
//! Fail closed by default (`on_failure = "refuse"`): when the record cannot be made durable
//! the client gets `503` instead of the data. `durability = "fsync"` (the default) holds the
//! response until the record is on disk (group commit shares one fsync among concurrent
//! requests); `"queued"` answers as soon as the record is queued and refuses once the writer
//! has failed. Both choices are written into the log's start-up record.
//!
//! Queued mode never fails open: from the moment a record is known to have failed, every
//! later request is refused (503) until restart, `..._audit_writer_failed` is 1 and the log
//! says so. At most [`QUEUED_MAX_UNWRITTEN`] answers can be out before their records are
//! durable (past that, a request waits for its record as in `fsync` mode), so a crash or a
//! full disk leaves at most that many answered requests unrecorded.

use crate::audit_health::AuditHealth;
use crate::audit_publish::Publisher;
use crate::metrics::GatewayMetrics;
use crate::policy::outcome::{AuthnFailure, QuotaRefused, RateLimited};
use crate::policy::tenancy::Principal;
pub use crate::settings::sections::{AuditConfig, Durability, OnFailure, PublishConfig};
use audit::{AuditLog, Decision, Event, EventKind};
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::{HeaderValue, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// In `durability = "queued"`, the most answers that may be out before their records are
/// durable: the bound on answered-but-unrecorded requests after a crash or a failed disk.
pub const QUEUED_MAX_UNWRITTEN: u64 = 256;

/// What a handler served, for the record: the authorization decision and its policy rule,
/// the view and how many series it held. Handlers add it to their response's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub allowed: bool,
    /// The policy rule that decided (or `default deny`).
    pub policy: String,
    /// Series in the body, when known.
    pub series: Option<u64>,
    /// The record's kind when it is not a plain request (a PII lookup, an admin action).
    pub kind: Option<EventKind>,
    /// Extra facts (view name, selector count and digest, pseudonym looked up...). No secrets.
    pub detail: Option<serde_json::Value>,
}

/// The writable log and the site's choices.
pub struct Auditor {
    log: AuditLog,
    on_failure: OnFailure,
    durability: Durability,
    request_ids: RequestIds,
    /// The keyring's active key id the writer uses, and its file.
    active_key: AtomicU64,
    key_file: PathBuf,
    /// Queued mode: answers out whose records are not yet durable.
    unwritten: Arc<AtomicU64>,
    /// Queued mode: the first failure; every later request is refused.
    failed: Arc<OnceLock<audit::AppendError>>,
    /// The admin metrics, once the serving stack is built.
    health: Arc<OnceLock<AuditHealth>>,
    publisher: Option<Publisher>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("on_failure", &self.on_failure)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// Opens the log, creating the keyring and signing key at first start, writes the
    /// public key for auditors, and applies retention.
    pub fn open(cfg: &AuditConfig) -> Result<Auditor, String> {
        let has_segments = std::fs::read_dir(&cfg.dir).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg")))
        });
        if has_segments && !cfg.key_file.exists() {
            // A new keyring would reuse key id 1 and could not read the existing records.
            return Err(format!(
                "audit.key_file {}: missing, but the log in {} holds encrypted segments; restore the keyring from its backup",
                cfg.key_file.display(),
                cfg.dir.display()
            ));
        }
        let keyring = if cfg.key_file.exists() {
            audit::Keyring::load(&cfg.key_file).map_err(|e| format!("audit.key_file: {e}"))?
        } else {
            let ring = audit::Keyring::generate().map_err(|e| format!("audit.key_file: {e}"))?;
            create_parent(&cfg.key_file)?;
            ring.save(&cfg.key_file)
                .map_err(|e| format!("audit.key_file: {e}"))?;
            tracing::warn!(file = %cfg.key_file.display(), "audit: generated a new keyring; back it up, records cannot be read without it");
            ring
        };
        let signing = if cfg.signing_key_file.exists() {
            audit::load_signing_key(&cfg.signing_key_file)
                .map_err(|e| format!("audit.signing_key_file: {e}"))?
        } else {
            let k = audit::generate_signing_key()
                .map_err(|e| format!("audit.signing_key_file: {e}"))?;
            create_parent(&cfg.signing_key_file)?;
            audit::save_signing_key(&k, &cfg.signing_key_file)
                .map_err(|e| format!("audit.signing_key_file: {e}"))?;
            tracing::warn!(file = %cfg.signing_key_file.display(), "audit: generated a new signing key");
            k
        };
        let public = signing.verifying_key();
        let active_key = AtomicU64::new(u64::from(keyring.active_id()));
        let health = Arc::new(OnceLock::new());
        let (publisher, on_checkpoint) = match &cfg.publish {
            Some(p) => {
                let (publisher, hook) = Publisher::start(p, &cfg.dir, health.clone())?;
                (Some(publisher), Some(hook))
            }
            None => (None, None),
        };
        let config = audit::Config {
            checkpoint_every_records: cfg.checkpoint_every_records.max(1),
            checkpoint_interval: Duration::from_secs(cfg.checkpoint_interval_seconds.max(1)),
            on_checkpoint,
            ..audit::Config::default()
        };
        let log = AuditLog::open(&cfg.dir, config, keyring, signing)
            .map_err(|e| format!("audit.dir: {e}"))?;
        let pub_path = cfg.public_key_path();
        create_parent(&pub_path)?;
        audit::save_public_key(&public, &pub_path)
            .map_err(|e| format!("audit.public_key_file: {e}"))?;
        if let Some(days) = cfg.retention_days {
            let cutoff = std::time::SystemTime::now()
                .checked_sub(Duration::from_secs(days.saturating_mul(86_400)))
                .unwrap_or(std::time::UNIX_EPOCH);
            let removed = log
                .apply_retention(cutoff)
                .map_err(|e| format!("audit retention: {e}"))?;
            if !removed.is_empty() {
                tracing::info!(segments = ?removed, "audit: removed segments past retention");
            }
        }
        tracing::info!(dir = %cfg.dir.display(), public_key = %pub_path.display(), fingerprint = %audit::fingerprint(&public), on_failure = cfg.on_failure.as_str(), durability = cfg.durability.as_str(), "audit log open");
        Ok(Auditor {
            log,
            on_failure: cfg.on_failure,
            durability: cfg.durability,
            request_ids: RequestIds::new(),
            active_key,
            key_file: cfg.key_file.clone(),
            unwritten: Arc::new(AtomicU64::new(0)),
            failed: Arc::new(OnceLock::new()),
            health,
            publisher,
        })
    }

    /// Connects the admin metrics (called once the serving stack is built).
    pub fn attach(&self, health: &AuditHealth) {
        let _ = self.health.set(health.clone());
        if let Some(e) = self.failed.get() {
            health.writer_failed.set(1);
            tracing::error!(error = %e, "audit writer failed before the metrics were attached");
        }
    }

    /// The log's keyed digest of `data` (see [`audit::AuditLog::keyed_digest`]).
    pub fn digest(&self, data: &[u8]) -> String {
        self.log.keyed_digest(data)
    }

    pub fn on_failure(&self) -> OnFailure {
        self.on_failure
    }

    /// The start-up record: the site's failure and durability choices are themselves audited.
    pub async fn startup(&self, detail: serde_json::Value) -> Result<(), String> {
        let mut d = detail;
        if let Some(m) = d.as_object_mut() {
            m.insert("on_failure".into(), self.on_failure.as_str().into());
            m.insert("durability".into(), self.durability.as_str().into());
            m.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        }
        self.write(Event {
            kind: EventKind::Startup,
            detail: Some(d),
            ..Event::default()
        })
        .await
        .map_err(|e| format!("audit: cannot write the start-up record: {e}"))
    }

    /// Writes one event with the configured durability. Waiting never blocks a runtime
    /// thread: the writer thread hands the outcome over a oneshot channel.
    pub async fn write(&self, ev: Event) -> Result<(), audit::AppendError> {
        let queued = self.durability == Durability::Queued
            && self.unwritten.fetch_add(1, Ordering::AcqRel) < QUEUED_MAX_UNWRITTEN;
        if self.durability == Durability::Queued && !queued {
            self.unwritten.fetch_sub(1, Ordering::AcqRel);
        }
        let r = if let Some(e) = self.failed.get() {
            // Queued mode after a failure: records may be missing; refuse until restart.
            if queued {
                self.unwritten.fetch_sub(1, Ordering::AcqRel);
            }
            Err(e.clone())
        } else if queued {
            // Answer once queued; the outcome arrives on the writer thread. A failure there
            // refuses every later request from that moment.
            let unwritten = self.unwritten.clone();
            let failed = self.failed.clone();
            let health = self.health.clone();
            self.log
                .submit_with(&ev, move |r| {
                    unwritten.fetch_sub(1, Ordering::AcqRel);
                    if let Err(e) = r {
                        let first = failed.set(e.clone()).is_ok();
                        if let Some(h) = health.get() {
                            h.writer_failed.set(1);
                            h.answered_unrecorded.inc();
                        }
                        if first {
                            tracing::error!(error = %e, bound = QUEUED_MAX_UNWRITTEN, "audit writer failed (durability = queued): every request is refused (503) from now on until restart; answers already sent may lack their record (at most the bound)");
                        }
                    }
                })
                .inspect_err(|e| {
                    self.unwritten.fetch_sub(1, Ordering::AcqRel);
                    let _ = self.failed.set(e.clone());
                })
        } else {
            // Fsync mode (or queued mode at its bound): answer once the record is durable.
            let (tx, rx) = tokio::sync::oneshot::channel();
            match self.log.submit_with(&ev, move |r| {
                let _ = tx.send(r);
            }) {
                Err(e) => Err(e),
                Ok(()) => rx
                    .await
                    .unwrap_or(Err(audit::AppendError::Closed))
                    .map(|_| ()),
            }
        };
        if let (Durability::Queued, Err(e)) = (self.durability, &r) {
            let _ = self.failed.set(e.clone());
        }
        if let Some(h) = self.health.get() {
            h.writer_failed
                .set(i64::from(r.is_err() || self.failed.get().is_some()));
        }
        if let Err(e) = &r {
            tracing::error!(error = %e, kind = ?ev.kind, "audit record not written");
        }
        r
    }

    /// Writes an event from a place that cannot refuse anything (reloads, shutdown).
    pub fn write_detached(self: &Arc<Self>, ev: Event) {
        let me = self.clone();
        tokio::spawn(async move {
            let _ = me.write(ev).await;
        });
    }

    /// Seals the current segment with a final checkpoint (clean shutdown).
    /// Then hands the last checkpoints, the seal included, to the publisher.
    pub fn close(&self) {
        if let Err(e) = self.log.close() {
            tracing::error!(error = %e, "audit log close failed");
        }
        if let Some(p) = &self.publisher {
            p.finish();
        }
    }

    /// Hands the writer the keyring file's keys when its active key changed (after
    /// `audit rotate-key`); returns the new active key id, or `None` when unchanged.
    pub fn reload_keyring(&self) -> Result<Option<audit::KeyId>, String> {
        let ring =
            audit::Keyring::load(&self.key_file).map_err(|e| format!("audit.key_file: {e}"))?;
        let id = ring.active_id();
        if self.active_key.load(Ordering::Relaxed) == u64::from(id) {
            return Ok(None);
        }
        let id = self
            .log
            .rotate_key(ring)
            .map_err(|e| format!("audit key rotation: {e}"))?;
        self.active_key.store(u64::from(id), Ordering::Relaxed);
        Ok(Some(id))
    }
}

fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => {
            std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))
        }
        _ => Ok(()),
    }
}

/// Request ids: a random per-process prefix and a counter (unique, cheap, not guessable
/// across restarts).
struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut b = [0u8; 4];
        // A failed random source leaves a zero prefix: ids stay unique within the process.
        let _ = rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut b);
        RequestIds {
            prefix: u32::from_le_bytes(b),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        format!(
            "{:08x}-{:010x}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The path as recorded: bounded, no query string (it may carry selectors; the handler
/// records a digest of them instead), control characters replaced.
fn recorded_path(req: &Request<Body>) -> String {
    req.uri()
        .path()
        .chars()
        .take(256)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The response's facts as one event.
fn event_for(
    res: &Response<Body>,
    id: String,
    route: String,
    client: Option<SocketAddr>,
    latency: Duration,
) -> Event {
    let x = res.extensions();
    let principal = x.get::<Principal>();
    let served = x.get::<Served>();
    let failure = x.get::<AuthnFailure>();
    let mut detail = serde_json::Map::new();
    if let Some(f) = failure {
        detail.insert("reason".into(), f.reason.as_str().into());
    }
    if let Some(r) = x.get::<RateLimited>() {
        detail.insert("rate_limited".into(), r.as_str().into());
    }
    if let Some(q) = x.get::<QuotaRefused>() {
        detail.insert(
            "quota".into(),
            serde_json::json!({"visible_series": q.visible_series, "limit": q.limit}),
        );
    }
    if let Some(serde_json::Value::Object(m)) = served.and_then(|s| s.detail.clone()) {
        detail.extend(m);
    }
    Event {
        kind: match (failure, served.and_then(|s| s.kind)) {
            (Some(_), _) => EventKind::AuthFailure,
            (None, Some(k)) => k,
            (None, None) => EventKind::Request,
        },
        request_id: Some(id),
        principal: principal.map(|p| format!("{}/{}", p.tenant, p.id)),
        tenant: principal.map(|p| p.tenant.to_string()),
        role: principal.map(|p| p.role.as_str().to_owned()),
        route: Some(route),
        decision: served
            .map(|s| {
                if s.allowed {
                    Decision::Allow
                } else {
                    Decision::Deny
                }
            })
            .or_else(|| {
                (failure.is_some() || res.status().is_client_error()).then_some(Decision::Deny)
            }),
        policy: served.map(|s| s.policy.clone()),
        status: Some(res.status().as_u16()),
        series: served.and_then(|s| s.series),
        bytes: res.body().size_hint().exact(),
        latency_us: Some(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)),
        client_addr: client.map(|a| a.to_string()),
        detail: (!detail.is_empty()).then_some(serde_json::Value::Object(detail)),
    }
}

/// Wraps every route (and the fallback): records each answer in the audit log, when one is
/// configured, and in the self-metrics.
#[derive(Clone)]
pub struct AuditLayer {
    auditor: Option<Arc<Auditor>>,
    metrics: Arc<GatewayMetrics>,
}

impl AuditLayer {
    pub fn new(auditor: Option<Arc<Auditor>>, metrics: Arc<GatewayMetrics>) -> Self {
        if let Some(a) = &auditor {
            a.attach(&metrics.audit);
        }
        AuditLayer { auditor, metrics }
    }
}

impl<S> tower::Layer<S> for AuditLayer {
    type Service = AuditService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuditService {
            inner,
            auditor: self.auditor.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    auditor: Option<Arc<Auditor>>,
    metrics: Arc<GatewayMetrics>,
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

impl<S> tower::Service<Request<Body>> for AuditService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let auditor = self.auditor.clone();
        let metrics = self.metrics.clone();
        // The self-metrics label by matched route (bounded); the record keeps the path.
        let matched = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        // What the record needs from the request, taken only when there is a log to write.
        let recording = auditor.as_ref().map(|a| {
            let client = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            (a.request_ids.next(), recorded_path(&req), client)
        });
        // The clone is the one that is ready (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let Ok(mut res) = inner.call(req).await;
            if let (Some(auditor), Some((id, route, client))) = (auditor, recording) {
                let ev = event_for(&res, id.clone(), route, client, started.elapsed());
                let written = auditor.write(ev).await;
                metrics.audit_record(written.is_ok());
                if written.is_err() && auditor.on_failure == OnFailure::Refuse {
                    // Fail closed: nothing leaves without its record.
                    res = Response::new(Body::from("audit log unavailable\n"));
                    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                }
                if let Ok(v) = HeaderValue::from_str(&id) {
                    res.headers_mut().insert(REQUEST_ID_HEADER, v);
                }
            }
            metrics.observe_response(&matched, &res, started.elapsed().as_secs_f64());
            Ok(res)
        })
    }
}
