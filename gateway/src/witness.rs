//! `slurm-exporter audit witness`: a small service, run by auditors on a host the gateway's
//! operators do not control, that holds the audit log's signed checkpoints.
//!
//! It accepts a checkpoint only when it is signed by the log's key (`--public-key`) and
//! extends the last one it holds: same log, a later record, naming that checkpoint as its
//! predecessor (every checkpoint commits to the one before it), its start not moved back. A
//! rollback (an older or equal record that differs), a fork (a checkpoint that does not name
//! the last one held) or another log's checkpoint is refused with 409 and recorded in
//! `DIR/refused.jsonl`. Accepted checkpoints are appended (fsynced) to
//! `DIR/checkpoints.jsonl`; the file is re-checked at start-up and the service refuses to
//! run on a broken one.
//!
//! HTTP API (TLS with `--tls-cert`/`--tls-key`):
//! - `POST /v1/checkpoints`: one or more checkpoint JSON lines, oldest first; bearer token
//!   (`--token-file`) required when configured. 200 when all are held, 409 naming the first
//!   refused one (those before it are kept), 403 on a bad signature, 400 on a malformed one.
//! - `GET /v1/checkpoints`: every held checkpoint (JSON lines).
//! - `GET /v1/checkpoints/latest`: the newest (404 when none).
//! - `GET /v1/refused`: the refused attempts (JSON lines).

use audit::{Checkpoint, VerifyingKey};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the witness keeps what it accepted.
pub const HELD_FILE: &str = "checkpoints.jsonl";
/// Where it records what it refused.
pub const REFUSED_FILE: &str = "refused.jsonl";
const MAX_BODY: usize = 4 << 20;

/// `audit witness` arguments.
#[derive(Debug, Clone)]
pub struct WitnessArgs {
    pub listen: SocketAddr,
    pub dir: PathBuf,
    pub public_key: PathBuf,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
}

struct Held {
    last: Option<Checkpoint>,
    /// (log id, sequence number) -> record hash of every held checkpoint.
    by_seq: HashMap<(audit::LogId, u64), [u8; 32]>,
}

struct Witness {
    dir: PathBuf,
    key: VerifyingKey,
    token: Option<String>,
    held: Mutex<Held>,
}

/// Runs the witness until SIGINT/SIGTERM.
pub async fn run(args: WitnessArgs) -> Result<(), String> {
    let key = audit::load_public_key(&args.public_key).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let held = load(&args.dir.join(HELD_FILE), &key)?;
    let token = args
        .token_file
        .as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|t| t.trim().to_owned())
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .transpose()?;
    let count = held.by_seq.len();
    let w = Arc::new(Witness {
        dir: args.dir.clone(),
        key,
        token,
        held: Mutex::new(held),
    });
    let app = Router::new()
        .route("/v1/checkpoints", get(list).post(accept))
        .route("/v1/checkpoints/latest", get(latest))
        .route("/v1/refused", get(refused))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(w);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%bound, dir = %args.dir.display(), held = count, fingerprint = %audit::fingerprint(&key), "audit witness listening");
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = crate::tls::ReloadableTls::load(crate::tls::TlsConfig {
                cert_file: cert.clone(),
                key_file: key.clone(),
                client_auth_type: None,
                client_ca_file: None,
                client_allowed_sans: None,
                min_version: Default::default(),
            })
            .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
            crate::tls::serve_tls(listener, tls, app, stop_signal())
                .await
                .map_err(|e| format!("witness failed: {e}"))
        }
        (None, None) => axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop_signal())
        .await
        .map_err(|e| format!("witness failed: {e}")),
        _ => Err("--tls-cert and --tls-key go together".to_owned()),
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Reads and re-checks the held checkpoints: each signed, each extending the one before.
fn load(path: &Path, key: &VerifyingKey) -> Result<Held, String> {
    let mut held = Held {
        last: None,
        by_seq: HashMap::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(held),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = || format!("{} line {}", path.display(), i + 1);
        let cp = Checkpoint::from_json_line(line).map_err(|e| format!("{}: {e}", at()))?;
        if !cp.verify_signature(key) {
            return Err(format!("{}: signature does not verify", at()));
        }
        if let Some(last) = &held.last {
            if !cp.extends(last) {
                return Err(format!(
                    "{}: does not extend the checkpoint before it; the store was altered",
                    at()
                ));
            }
        }
        held.by_seq.insert((cp.log_id, cp.seq), cp.record_hash());
        held.last = Some(cp);
    }
    Ok(held)
}

fn authorized(w: &Witness, headers: &HeaderMap) -> bool {
    let Some(expected) = &w.token else {
        return true;
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into()
}

/// Why a validly signed checkpoint does not extend the last one held.
fn refusal(cp: &Checkpoint, last: &Checkpoint, held: &Held) -> String {
    if cp.log_id != last.log_id {
        return format!(
            "another log: checkpoint of log {} but the witness holds log {}",
            cp.log_id, last.log_id
        );
    }
    if cp.seq <= last.seq {
        let what = match held.by_seq.get(&(cp.log_id, cp.seq)) {
            Some(_) => "a different checkpoint at a record already held (fork)",
            None => "an older record than the last one held",
        };
        return format!(
            "rollback: record {} is not after the last held record {} ({what})",
            cp.seq, last.seq
        );
    }
    format!(
        "fork: record {} names checkpoint {} as its predecessor, the witness holds {} as the last",
        cp.seq, cp.prev_checkpoint_seq, last.seq
    )
}

async fn accept(
    State(w): State<Arc<Witness>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if !authorized(&w, &headers) {
        return (StatusCode::UNAUTHORIZED, "bearer token required\n".into());
    }
    let peer = peer.to_string();
    let Ok(text) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not UTF-8\n".into());
    };
    let mut held = w.held.lock().unwrap_or_else(|e| e.into_inner());
    let mut accepted = 0usize;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let cp = match Checkpoint::from_json_line(line) {
            Ok(c) => c,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("line {}: {e}\n", i + 1)),
        };
        if !cp.verify_signature(&w.key) {
            record_refusal(&w.dir, &peer, "signature does not verify", line);
            return (
                StatusCode::FORBIDDEN,
                format!(
                    "line {}: record {}: signature does not verify with the witness's key\n",
                    i + 1,
                    cp.seq
                ),
            );
        }
        if held.by_seq.get(&(cp.log_id, cp.seq)) == Some(&cp.record_hash()) {
            continue; // Already held (a retry after a lost answer).
        }
        if let Some(last) = &held.last {
            if !cp.extends(last) {
                let why = refusal(&cp, last, &held);
                record_refusal(&w.dir, &peer, &why, line);
                tracing::warn!(%peer, reason = %why, "audit witness refused a checkpoint");
                return (
                    StatusCode::CONFLICT,
                    format!("line {}: refused: {why}\n", i + 1),
                );
            }
        }
        if let Err(e) = append(&w.dir.join(HELD_FILE), line) {
            tracing::error!(error = %e, "audit witness cannot store a checkpoint");
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"));
        }
        held.by_seq.insert((cp.log_id, cp.seq), cp.record_hash());
        held.last = Some(cp);
        accepted += 1;
    }
    (StatusCode::OK, format!("accepted {accepted}\n"))
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(format!("{}\n", line.trim()).as_bytes())?;
    f.sync_data()
}

fn record_refusal(dir: &Path, peer: &str, reason: &str, line: &str) {
    let entry = serde_json::json!({
        "time": audit::format_rfc3339_us(
            u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros()),
            )
            .unwrap_or(u64::MAX),
        ),
        "peer": peer,
        "reason": reason,
        "checkpoint": line.trim().chars().take(4096).collect::<String>(),
    });
    if let Err(e) = append(&dir.join(REFUSED_FILE), &entry.to_string()) {
        tracing::error!(error = %e, "audit witness cannot record a refusal");
    }
}

fn read_lines(path: &Path) -> (StatusCode, String) {
    match std::fs::read_to_string(path) {
        Ok(t) => (StatusCode::OK, t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (StatusCode::OK, String::new()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

async fn list(State(w): State<Arc<Witness>>) -> (StatusCode, String) {
    read_lines(&w.dir.join(HELD_FILE))
}

async fn refused(State(w): State<Arc<Witness>>) -> (StatusCode, String) {
    read_lines(&w.dir.join(REFUSED_FILE))
}

async fn latest(State(w): State<Arc<Witness>>) -> (StatusCode, String) {
    let held = w.held.lock().unwrap_or_else(|e| e.into_inner());
    match &held.last {
        Some(cp) => (StatusCode::OK, format!("{}\n", cp.to_json_line())),
        None => (StatusCode::NOT_FOUND, "no checkpoint held yet\n".into()),
    }
}

/// The newest checkpoint a witness holds: `src` is its URL (`https://host:port`, with or
/// without `/v1/checkpoints`) or a file of checkpoint JSON lines (the witness's
/// `checkpoints.jsonl`, or a publisher's `dir` target).
pub async fn newest(src: &str, ca_file: Option<&Path>) -> Result<Checkpoint, String> {
    let line = if src.starts_with("https://") || src.starts_with("http://") {
        let base = src.trim_end_matches('/');
        let base = base.strip_suffix("/latest").unwrap_or(base);
        let url = if base.ends_with("/v1/checkpoints") {
            format!("{base}/latest")
        } else {
            format!("{base}/v1/checkpoints/latest")
        };
        let client = crate::layer::authn::http_client(std::time::Duration::from_secs(10), ca_file)
            .map_err(|e| e.to_string())?;
        let res = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url}: {status}: {}", text.trim()));
        }
        text
    } else {
        crate::audit_publish::last_line(Path::new(src))
            .map_err(|e| format!("{src}: {e}"))?
            .ok_or_else(|| format!("{src}: no checkpoint in it"))?
    };
    Checkpoint::from_json_line(line.trim()).map_err(|e| format!("{src}: {e}"))
}
