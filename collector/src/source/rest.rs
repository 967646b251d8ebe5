//! slurmrestd over TCP or a unix socket.
//!
//! - Auth: `X-SLURM-USER-NAME` + `X-SLURM-USER-TOKEN` (a JWT from config, a file re-read on
//!   every poll so rotation needs no restart, or `scontrol token`, cached for half its life).
//!   Over a unix socket with `rest_auth/local`, no token at all.
//! - Version: the newest OpenAPI version the server answers `ping` on, unless configured.
//! - Cheap polls: `?update_time=` makes slurmrestd answer 304 when nothing changed; the
//!   previous part is reused.
//! - Bodies stream into the parsers; nothing is held whole.

use super::cli::CliConfig;
use super::{
    now_epoch, slurm_notes, ChunkReader, Extras, Parts, PollFuture, PollRequest, Source,
    SourceError,
};
use crate::model::Interner;
use crate::parse::associations::{merge, parse_associations_json, parse_shares_json};
use crate::parse::diag::parse_diag_json;
use crate::parse::jobs::parse_jobs;
use crate::parse::licenses::parse_licenses_json;
use crate::parse::nodes::{fill_alloc_from_jobs, parse_nodes};
use crate::parse::partitions::parse_partitions;
use crate::parse::ping::parse_ping_json;
use crate::parse::qos::parse_qos_json;
use crate::parse::reservations::parse_reservations_json;
use crate::parse::sacct::parse_sacct_json;
use crate::parse::versions::{self, ApiVersion};
use crate::parse::ParseError;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// An HTTP/1.1 connection over any stream, driven by its own task.
async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// A secret that never prints.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where slurmrestd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl Endpoint {
    /// Parses `http://host:port` (plain HTTP: slurmrestd speaks no TLS itself) or
    /// `unix:/path/to/socket`.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        if let Some(path) = url.strip_prefix("unix:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                return Err(format!("{url:?}: unix socket path is empty"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?}: expected http://HOST:PORT or unix:/PATH (put a TLS proxy's plain side here)")
        })?;
        let hostport = rest.trim_end_matches('/');
        if hostport.contains('/') || hostport.contains('@') {
            return Err(format!("{url:?}: give only scheme, host and port"));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                p.parse::<u16>()
                    .map_err(|_| format!("{url:?}: bad port {p:?}"))?,
            ),
            _ => (hostport.to_owned(), 80),
        };
        if host.is_empty() {
            return Err(format!("{url:?}: host is empty"));
        }
        Ok(Endpoint::Tcp { host, port })
    }

    fn describe(&self) -> String {
        match self {
            Endpoint::Tcp { host, port } => format!("http://{host}:{port}"),
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
        }
    }
}

/// Where the JWT comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// No token: unix socket with `rest_auth/local`.
    None,
    Static(Secret),
    /// Re-read on every poll.
    File(PathBuf),
    /// `scontrol token lifespan=N`, renewed at half life.
    Scontrol {
        lifespan_seconds: u64,
    },
}

#[derive(Debug, Clone)]
pub struct RestConfig {
    pub endpoint: Endpoint,
    pub user: String,
    pub token: TokenSource,
    /// `v0.0.38`; `None` discovers the newest the server offers.
    pub api_version: Option<String>,
    pub timeout: Duration,
    /// For `scontrol token`.
    pub cli: CliConfig,
    /// Optional parts to read.
    pub extras: Extras,
}

#[derive(Default)]
struct RestState {
    version: Option<ApiVersion>,
    token: Option<(Secret, Instant)>,
    /// Fetch time of the last good answer per endpoint, for `update_time`.
    last: [Option<u64>; 3],
}

pub struct RestSource {
    cfg: RestConfig,
    state: Mutex<RestState>,
}

const JOBS: usize = 0;
const NODES: usize = 1;
const PARTITIONS: usize = 2;

enum Fetched<T> {
    Data(T, u64),
    NotModified,
}

impl RestSource {
    pub fn new(cfg: RestConfig) -> Result<Self, SourceError> {
        if let Some(v) = &cfg.api_version {
            versions::by_name(v).ok_or_else(|| {
                SourceError::Config(format!(
                    "api_version {v:?} is not one this exporter speaks ({})",
                    versions::SUPPORTED
                        .iter()
                        .map(|v| v.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        }
        Ok(RestSource {
            cfg,
            state: Mutex::new(RestState::default()),
        })
    }

    async fn token(&self, st: &mut RestState) -> Result<Option<Secret>, SourceError> {
        match &self.cfg.token {
            TokenSource::None => Ok(None),
            TokenSource::Static(s) => Ok(Some(s.clone())),
            TokenSource::File(p) => {
                let s = tokio::fs::read_to_string(p)
                    .await
                    .map_err(|e| SourceError::Config(format!("token_file {}: {e}", p.display())))?;
                let s = s.trim().trim_start_matches("SLURM_JWT=").to_owned();
                if s.is_empty() {
                    return Err(SourceError::Config(format!(
                        "token_file {} is empty",
                        p.display()
                    )));
                }
                Ok(Some(Secret(s)))
            }
            TokenSource::Scontrol { lifespan_seconds } => {
                if let Some((t, at)) = &st.token {
                    if at.elapsed() < Duration::from_secs(lifespan_seconds / 2) {
                        return Ok(Some(t.clone()));
                    }
                }
                let cli = self.cfg.cli.clone();
                let user = self.cfg.user.clone();
                let life = *lifespan_seconds;
                let t = tokio::task::spawn_blocking(move || cli.scontrol_token(&user, life))
                    .await
                    .map_err(|e| SourceError::Io {
                        what: "scontrol token".into(),
                        msg: e.to_string(),
                    })??;
                let t = Secret(t);
                st.token = Some((t.clone(), Instant::now()));
                Ok(Some(t))
            }
        }
    }

    async fn send(
        &self,
        path: &str,
        token: Option<&Secret>,
    ) -> Result<Response<Incoming>, SourceError> {
        let what = format!("GET {}{path}", self.cfg.endpoint.describe());
        let connect_err = |e: std::io::Error| SourceError::Connect {
            what: what.clone(),
            msg: e.to_string(),
        };
        let host = match &self.cfg.endpoint {
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
            Endpoint::Unix(_) => "localhost".to_owned(),
        };
        let mut req = Request::get(path)
            .header(hyper::header::HOST, host.as_str())
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(t) = token {
            req = req
                .header("X-SLURM-USER-NAME", self.cfg.user.as_str())
                .header("X-SLURM-USER-TOKEN", t.expose());
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| SourceError::Config(format!("{what}: {e}")))?;
        let answer = async {
            let mut sender = match &self.cfg.endpoint {
                Endpoint::Tcp { host, port } => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(connect_err)?;
                    handshake(s).await
                }
                Endpoint::Unix(p) => {
                    let s = tokio::net::UnixStream::connect(p)
                        .await
                        .map_err(connect_err)?;
                    handshake(s).await
                }
            }
            .map_err(|e| SourceError::Connect {
                what: what.clone(),
                msg: e.to_string(),
            })?;
            sender
                .send_request(req)
                .await
                .map_err(|e| SourceError::Connect {
                    what: what.clone(),
                    msg: e.to_string(),
                })
        };
        // Bounded even when called outside the poller (which has its own poll timeout).
        tokio::time::timeout(self.cfg.timeout, answer)
            .await
            .unwrap_or_else(|_| {
                Err(SourceError::Timeout {
                    what: what.clone(),
                    seconds: self.cfg.timeout.as_secs_f64(),
                })
            })
    }

    /// Reads at most 64 KiB of an error body, for the message.
    async fn error_text(resp: Response<Incoming>) -> String {
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                buf.extend_from_slice(&d);
                if buf.len() > 64 << 10 {
                    break;
                }
            }
        }
        match crate::parse::doc::small_document(&buf) {
            Err(ParseError::Slurm(msg)) => return msg,
            Ok((env, _)) if !env.errors.is_empty() => return env.errors.join("; "),
            _ => {}
        }
        let text = String::from_utf8_lossy(&buf);
        let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        one.chars().take(200).collect()
    }

    /// GETs `path` and streams a 200 body through `parse`.
    async fn fetch<T: Send + 'static>(
        &self,
        path: String,
        token: Option<&Secret>,
        parse: impl FnOnce(&mut ChunkReader) -> Result<T, ParseError> + Send + 'static,
    ) -> Result<Fetched<T>, SourceError> {
        let what = format!("GET {path}");
        let resp = self.send(&path, token).await?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if status != StatusCode::OK {
            let msg = Self::error_text(resp).await;
            return Err(if auth_refused(status, &msg) {
                SourceError::Auth {
                    what,
                    status: status.as_u16(),
                    msg,
                }
            } else {
                SourceError::Http {
                    what,
                    status: status.as_u16(),
                    msg,
                }
            });
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(16);
        let mut body = resp.into_body();
        let pump = tokio::spawn(async move {
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Ok(d) = f.into_data() {
                            if tx.send(Ok(d)).await.is_err() {
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        break;
                    }
                }
            }
        });
        let joined = tokio::task::spawn_blocking(move || {
            let mut r = ChunkReader::new(rx);
            let out = parse(&mut r);
            (out, r.total)
        })
        .await;
        pump.abort();
        let (out, total) = joined.map_err(|e| SourceError::Io {
            what: what.clone(),
            msg: e.to_string(),
        })?;
        out.map(|v| Fetched::Data(v, total))
            .map_err(|err| SourceError::Parse { what, err })
    }

    /// GETs a small document (at most 64 MiB) and parses it whole.
    /// A conditional GET (`base` + `?update_time=`). slurmrestd 22.05 answers
    /// `/nodes?update_time=T` with 500 "Unspecified error" when nothing changed since T
    /// (seen on the lab); a server error to a conditional request is therefore asked again
    /// without the condition, so the poll gets the data instead of failing every time.
    async fn fetch_cond<T: Send + 'static>(
        &self,
        base: String,
        cond: String,
        token: Option<&Secret>,
        parse: impl Fn(&mut ChunkReader) -> Result<T, ParseError> + Clone + Send + 'static,
    ) -> Result<Fetched<T>, SourceError> {
        if cond.is_empty() {
            return self.fetch(base, token, parse).await;
        }
        match self
            .fetch(format!("{base}{cond}"), token, parse.clone())
            .await
        {
            Err(SourceError::Http { status, .. }) if status >= 500 => {
                self.fetch(base, token, parse).await
            }
            other => other,
        }
    }

    async fn fetch_small<T: Send + 'static>(
        &self,
        path: String,
        token: Option<&Secret>,
        parse: impl FnOnce(&[u8]) -> Result<T, ParseError> + Send + 'static,
    ) -> Result<Fetched<T>, SourceError> {
        self.fetch(path, token, |r| {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(r, 64 << 20), &mut buf)
                .map_err(|e| ParseError::Io(e.to_string()))?;
            parse(&buf)
        })
        .await
    }

    /// Parts that enrich the picture but are not its core. One failing (slurmdbd down, an
    /// endpoint this version lacks) costs only that part: it is counted as a warning in
    /// the source's errors, and the poll still succeeds.
    async fn optional_parts(&self, v: ApiVersion, token: Option<&Secret>, parts: &mut Parts) {
        macro_rules! part {
            ($path:expr, $parse:expr) => {
                match self.fetch_small($path, token, $parse).await {
                    Ok(Fetched::Data(x, n)) => {
                        parts.bytes += n;
                        Some(x)
                    }
                    Ok(Fetched::NotModified) => None,
                    Err(e) => {
                        parts.warnings.push(e);
                        None
                    }
                }
            };
        }
        let want = self.cfg.extras;
        if want.diag {
            parts.diag = part!(v.path("diag"), parse_diag_json);
        }
        if want.ping {
            parts.controllers = part!(v.path("ping"), parse_ping_json);
        }
        if want.licenses {
            parts.licenses = part!(v.path("licenses"), parse_licenses_json);
        }
        if want.reservations {
            parts.reservations = part!(v.path("reservations"), |b: &[u8]| {
                parse_reservations_json(b, &mut Interner::default())
            });
        }
        if want.qos {
            parts.qos = part!(format!("{}/qos", v.slurmdb), |b: &[u8]| {
                parse_qos_json(b, &mut Interner::default())
            });
        }
        if !want.associations {
            return;
        }
        let limits = part!(format!("{}/associations", v.slurmdb), |b: &[u8]| {
            parse_associations_json(b, &mut Interner::default())
        });
        // Fairshare is served from v0.0.40 on (`/shares`); older servers need the CLI.
        let shares = if v.name >= "v0.0.40" {
            part!(v.path("shares"), |b: &[u8]| parse_shares_json(
                b,
                &mut Interner::default()
            ))
        } else {
            None
        };
        if limits.is_some() || shares.is_some() {
            parts.associations = Some(merge(
                limits.unwrap_or_default(),
                shares.unwrap_or_default(),
            ));
        }
    }

    /// Jobs that ended since `req.accounting_since_epoch`, from slurmdbd, streamed (a day
    /// of a busy cluster is hundreds of MB). The window is relative (`now-N`): slurmdbd
    /// reads absolute times in its own time zone, epoch seconds get HTTP 500 on 22.05, and a
    /// raw `:` gets 400. A failure is a warning: the ledger's cursor stays and the next
    /// poll asks again.
    async fn finished_jobs(
        &self,
        v: ApiVersion,
        token: Option<&Secret>,
        req: PollRequest,
        parts: &mut Parts,
    ) {
        let path = format!(
            "{}/jobs?{}",
            v.slurmdb,
            accounting_query(req.accounting_since_epoch, now_epoch())
        );
        match self
            .fetch(path, token, |r| {
                parse_sacct_json(r, &mut Interner::default())
            })
            .await
        {
            Ok(Fetched::Data(jobs, n)) => {
                parts.bytes += n;
                parts.finished_jobs = Some(jobs);
            }
            Ok(Fetched::NotModified) => {}
            Err(e) => parts.warnings.push(e),
        }
    }

    async fn version(
        &self,
        st: &mut RestState,
        token: Option<&Secret>,
    ) -> Result<ApiVersion, SourceError> {
        if let Some(v) = st.version {
            return Ok(v);
        }
        if let Some(name) = &self.cfg.api_version {
            let v = versions::by_name(name)
                .ok_or_else(|| SourceError::Config(format!("unknown api_version {name:?}")))?;
            st.version = Some(v);
            return Ok(v);
        }
        let mut tried = Vec::new();
        for v in versions::SUPPORTED {
            let resp = self.send(&v.path("ping"), token).await?;
            let status = resp.status();
            if status == StatusCode::OK {
                tracing::info!(
                    endpoint = %self.cfg.endpoint.describe(),
                    api = v.name,
                    "slurmrestd answers OpenAPI {} (Slurm {})",
                    v.name,
                    v.releases
                );
                st.version = Some(*v);
                return Ok(*v);
            }
            if status == StatusCode::UNAUTHORIZED
                || status == StatusCode::FORBIDDEN
                || status == StatusCode::INTERNAL_SERVER_ERROR
            {
                let msg = Self::error_text(resp).await;
                if auth_refused(status, &msg) {
                    return Err(SourceError::Auth {
                        what: format!("GET {}", v.path("ping")),
                        status: status.as_u16(),
                        msg,
                    });
                }
            }
            tried.push(format!("{}: HTTP {}", v.name, status.as_u16()));
        }
        Err(SourceError::Http {
            what: format!("version discovery at {}", self.cfg.endpoint.describe()),
            status: 404,
            msg: format!(
                "no supported OpenAPI version answered ping ({})",
                tried.join(", ")
            ),
        })
    }

    async fn poll_inner(&self, req: PollRequest) -> Result<Parts, SourceError> {
        let mut st = self.state.lock().await;
        // Taken, not read: a poll that fails, or that the poller's timeout drops half-way,
        // leaves no `update_time` behind, so the next poll fetches everything instead of
        // getting 304 for data that was fetched but never delivered.
        let last = std::mem::take(&mut st.last);
        let mut next = last;
        let token = self.token(&mut st).await?;
        let token = token.as_ref();
        let v = self.version(&mut st, token).await?;
        let fetched_epoch = now_epoch();
        let q = |i: usize| match last[i] {
            Some(t) => format!("?update_time={}", t.saturating_sub(1)),
            None => String::new(),
        };
        let mut parts = Parts {
            fetched_epoch,
            ..Parts::default()
        };
        let jobs = self
            .fetch_cond(v.path("jobs"), q(JOBS), token, |r| {
                parse_jobs(r, &mut Interner::default())
            })
            .await;
        let jobs = match jobs {
            Err(SourceError::Http { status: 404, .. }) => {
                // The server was upgraded under us: discover again next poll.
                st.version = None;
                return Err(SourceError::Http {
                    what: format!("GET {}", v.path("jobs")),
                    status: 404,
                    msg: "endpoint vanished; re-discovering the API version".into(),
                });
            }
            other => other?,
        };
        // "No job changes since update_time" with an empty array is slurmrestd's 304.
        if let Fetched::Data((env, jobs), n) = jobs {
            parts.bytes += n;
            parts.warnings.extend(slurm_notes(&v.path("jobs"), &env));
            parts.meta = env.meta;
            if !env.unchanged {
                parts.jobs = Some(jobs);
                next[JOBS] = Some(fetched_epoch);
            }
        }
        if let Fetched::Data((env, mut nodes), n) = self
            .fetch_cond(v.path("nodes"), q(NODES), token, |r| {
                parse_nodes(r, &mut Interner::default())
            })
            .await?
        {
            parts.bytes += n;
            parts.warnings.extend(slurm_notes(&v.path("nodes"), &env));
            if parts.meta.release.is_empty() {
                parts.meta = env.meta;
            }
            if !env.unchanged {
                if let Some(jobs) = &parts.jobs {
                    fill_alloc_from_jobs(&mut nodes, jobs);
                }
                parts.nodes = Some(nodes);
                next[NODES] = Some(fetched_epoch);
            }
        }
        if let Fetched::Data((env, partitions), n) = self
            .fetch_small(
                format!("{}{}", v.path("partitions"), q(PARTITIONS)),
                token,
                |b| parse_partitions(b, &mut Interner::default()),
            )
            .await?
        {
            parts.bytes += n;
            parts
                .warnings
                .extend(slurm_notes(&v.path("partitions"), &env));
            if !env.unchanged {
                parts.partitions = Some(partitions);
                next[PARTITIONS] = Some(fetched_epoch);
            }
        }
        self.optional_parts(v, token, &mut parts).await;
        if self.cfg.extras.accounting {
            self.finished_jobs(v, token, req, &mut parts).await;
        }
        parts.not_modified =
            parts.jobs.is_none() && parts.nodes.is_none() && parts.partitions.is_none();
        if parts.meta.plugin.is_empty() {
            parts.meta.plugin = format!("openapi/{}", v.name);
        }
        // The URL's version is the one read, whatever the plugin calls itself.
        parts.meta.openapi = v.name.to_owned();
        parts.meta.source = "rest".into();
        st.last = next;
        Ok(parts)
    }
}

/// Default accounting window when the poller gives none.
const ACCOUNTING_LOOKBACK_SECONDS: u64 = 3600;

/// `start_time=now-N&end_time=now`: relative to slurmdbd's clock, so neither its time zone
/// nor a skew between the clocks shifts the window (the ledger's overlap covers the rest).
fn accounting_query(since: Option<u64>, now: u64) -> String {
    let back = since.map_or(ACCOUNTING_LOOKBACK_SECONDS, |s| now.saturating_sub(s));
    format!("start_time=now-{back}&end_time=now")
}

/// 22.05 answers a bad or expired token with 500 "slurmctld config is unable to load".
fn auth_refused(status: StatusCode, msg: &str) -> bool {
    status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || (status == StatusCode::INTERNAL_SERVER_ERROR
            && (msg.contains("unable to load") || msg.to_ascii_lowercase().contains("auth")))
}

impl Source for RestSource {
    fn name(&self) -> &str {
        "rest"
    }

    fn poll(&self) -> PollFuture<'_> {
        Box::pin(self.poll_inner(PollRequest::default()))
    }

    fn poll_with(&self, req: PollRequest) -> PollFuture<'_> {
        Box::pin(self.poll_inner(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:6820"),
            Ok(Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 6820
            })
        );
        assert_eq!(
            Endpoint::parse("http://[::1]:6820/"),
            Ok(Endpoint::Tcp {
                host: "::1".into(),
                port: 6820
            })
        );
        assert_eq!(
            Endpoint::parse("unix:/run/slurmrestd/slurmrestd.sock"),
            Ok(Endpoint::Unix("/run/slurmrestd/slurmrestd.sock".into()))
        );
        assert!(Endpoint::parse("https://x:1").is_err());
        assert!(Endpoint::parse("http://x:notaport").is_err());
        assert!(Endpoint::parse("http://x:1/path").is_err());
        assert!(Endpoint::parse("unix:").is_err());
    }

    #[test]
    fn accounting_window_is_relative_to_slurmdbds_clock() {
        assert_eq!(
            accounting_query(Some(1_000), 1_600),
            "start_time=now-600&end_time=now"
        );
        assert_eq!(
            accounting_query(None, 1_600),
            "start_time=now-3600&end_time=now"
        );
        assert_eq!(
            accounting_query(Some(2_000), 1_600),
            "start_time=now-0&end_time=now"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("abc")), "Secret(<redacted>)");
    }
}
