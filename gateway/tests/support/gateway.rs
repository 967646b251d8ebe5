//! The whole gateway in-process for tests: `stack::build` with real API tokens, the shipped
//! casbin model, tenant scopes, a pseudonym key, a quota and rate limits, over a fixed
//! generation holding series of two tenants, the cluster and the exporter; served by axum on
//! 127.0.0.1 with the peer address attached, as the accept loop does. Plus a raw HTTP/1.1
//! client on plain TCP sockets, so requests can be exactly as malformed as a test needs.
//!
//! Tenants: `alpha` (account `alpha-acct`, partition `alpha-part`, cluster-wide series),
//! `beta` (account `beta-acct`, partition `beta-part`), `ops` (operators). Every label value
//! of beta's series contains `beta` or `bob`, so a leak shows as one of [`BETA_MARKERS`] in an
//! alpha body.

#![allow(dead_code)]

use collector::store::{Family, Histogram, Owner, Sink, Store};
use gateway::layer::authn::token::new_token;
use gateway::layer::authn::{Authenticator, AuthnConfig};
use gateway::layer::authz::Authorizer;
use gateway::layer::quota::{OnExceed, Quota, QuotaConfig};
use gateway::layer::rate_limit::RateLimitConfig;
use gateway::pii::Pseudonymizer;
use gateway::stack::{self, AppState, Limits, Tenancy, TenancyHandle};
use gateway::tenancy::{Role, TenantId, TenantScope};
use std::io::Read as _;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// Text that only beta's series carry (its account, partition and user).
pub const BETA_MARKERS: [&str; 3] = ["beta-acct", "beta-part", "bob"];
/// Text that only alpha's series carry.
pub const ALPHA_MARKERS: [&str; 3] = ["alpha-acct", "alpha-part", "alice"];
/// The pseudonym key's bytes (32 of them, as the config requires).
pub const PII_SECRET: [u8; 32] = [7; 32];

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("tenant id")
}

/// The fixed generation: every owner kind, both tenants, a counter and a histogram.
pub fn families() -> Vec<Family> {
    let acct = |a: &str| Owner::Account(a.into());
    let user = |a: &str, u: &str| Owner::User {
        account: a.into(),
        user: u.into(),
    };
    let mut sink = Sink::default();
    let f = sink.gauge(
        "slurm_account_jobs",
        "Jobs per account.",
        &["account", "state"],
    );
    f.push(
        acct("alpha-acct"),
        ["alpha-acct".into(), "running".into()],
        3.0,
    );
    f.push(
        acct("alpha-acct"),
        ["alpha-acct".into(), "pending".into()],
        1.0,
    );
    f.push(
        acct("beta-acct"),
        ["beta-acct".into(), "running".into()],
        5.0,
    );
    f.push(
        acct("beta-acct"),
        ["beta-acct".into(), "pending".into()],
        2.0,
    );
    let f = sink.gauge(
        "slurm_user_jobs",
        "Jobs per user.",
        &["user", "account", "state"],
    );
    f.push(
        user("alpha-acct", "alice"),
        ["alice".into(), "alpha-acct".into(), "running".into()],
        2.0,
    );
    f.push(
        user("beta-acct", "bob"),
        ["bob".into(), "beta-acct".into(), "running".into()],
        4.0,
    );
    // Folded at the label budget: owned by the cluster scope, it mixes tenants.
    f.push(
        Owner::Cluster,
        [
            "__overflow__".into(),
            "__overflow__".into(),
            "running".into(),
        ],
        9.0,
    );
    let f = sink.gauge("slurm_cluster_cpus", "CPUs by state.", &["state"]);
    f.push(Owner::Cluster, ["idle".into()], 100.0);
    f.push(Owner::Cluster, ["allocated".into()], 28.0);
    let f = sink.gauge(
        "slurm_partition_jobs",
        "Jobs per partition.",
        &["partition", "state"],
    );
    f.push(
        Owner::Partition("alpha-part".into()),
        ["alpha-part".into(), "running".into()],
        3.0,
    );
    f.push(
        Owner::Partition("beta-part".into()),
        ["beta-part".into(), "running".into()],
        5.0,
    );
    let h = sink.histogram(
        "slurm_partition_job_wait_seconds",
        "Submit to start.",
        &["partition"],
    );
    let mut hist = Histogram::new(&[1.0, 60.0]);
    hist.observe_n(0.5, 2);
    hist.observe_n(30.0, 1);
    h.push_histogram(
        Owner::Partition("alpha-part".into()),
        ["alpha-part".into()],
        &hist,
    );
    h.push_histogram(
        Owner::Partition("beta-part".into()),
        ["beta-part".into()],
        &hist,
    );
    let c = sink.counter("slurm_exporter_polls", "Polls.", &["source"]);
    c.push(Owner::Exporter, ["sim".into()], 42.0);
    sink.into_families()
}

/// Which policy the gateway decides with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `policies/policy.csv` as shipped (viewers and admins may federate their scope).
    Shipped,
    /// The shipped policy without `federate` for viewers and admins.
    WithoutFederate,
}

/// How to build a test gateway.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub policy: Policy,
    pub quota: QuotaConfig,
    pub rate_limit: RateLimitConfig,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: Policy::Shipped,
            quota: QuotaConfig {
                metrics_per_tenant: 1000,
                on_exceed: OnExceed::Truncate,
            },
            rate_limit: roomy_limits(),
        }
    }
}

/// Rate limits no test table reaches.
pub fn roomy_limits() -> RateLimitConfig {
    limits(100_000, 1000)
}

/// Rate limits of `per_minute` (per IP, tenant and principal) with `burst`.
pub fn limits(per_minute: u32, burst: u32) -> RateLimitConfig {
    let nz = |v: u32| NonZeroU32::new(v).expect("non-zero");
    RateLimitConfig {
        per_ip_per_minute: nz(per_minute),
        per_tenant_per_minute: nz(per_minute),
        per_principal_per_minute: nz(per_minute),
        burst: nz(burst),
        max_tracked_keys: NonZeroUsize::new(1000).expect("non-zero"),
    }
}

/// The API tokens of the test principals.
pub struct Tokens {
    pub alpha_viewer: String,
    pub alpha_admin: String,
    pub alpha_billing: String,
    pub beta_viewer: String,
    pub ops_operator: String,
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub tokens: Tokens,
    pub store: Arc<Store>,
    pub pii: Pseudonymizer,
    _policies: tempfile::TempDir,
}

impl Gateway {
    /// alpha's pseudonym of a user name.
    pub fn alpha_pseudonym(&self, user: &str) -> String {
        self.pii
            .pseudonym(&tenant("alpha"), user)
            .expect("pseudonym")
    }
}

fn scope(t: &str, accounts: &[&str], partitions: &[&str], cluster: bool) -> TenantScope {
    TenantScope {
        tenant: tenant(t),
        accounts: accounts.iter().map(|s| s.to_string()).collect(),
        partitions: partitions.iter().map(|s| s.to_string()).collect(),
        cluster,
    }
}

pub async fn start(opts: Options) -> Gateway {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("policies");
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("model.conf");
    let policy = dir.path().join("policy.csv");
    std::fs::copy(shipped.join("model.conf"), &model).expect("copy model");
    let mut text = std::fs::read_to_string(shipped.join("policy.csv")).expect("policy");
    if opts.policy == Policy::WithoutFederate {
        let granted = [
            "p, viewer, *, federate, read\n",
            "p, admin, *, federate, read\n",
        ];
        for line in granted {
            assert!(text.contains(line), "the shipped policy grants {line}");
            text = text.replace(line, "");
        }
    }
    std::fs::write(&policy, text).expect("write policy");
    let authz = Authorizer::load(&model, &policy)
        .await
        .expect("policy loads");

    let mut auth = AuthnConfig::default();
    let mut token = |t: &str, role: Role| {
        let (token, entry) = new_token(tenant(t), role).expect("token");
        auth.api_tokens.push(entry);
        token
    };
    let tokens = Tokens {
        alpha_viewer: token("alpha", Role::Viewer),
        alpha_admin: token("alpha", Role::Admin),
        alpha_billing: token("alpha", Role::Billing),
        beta_viewer: token("beta", Role::Viewer),
        ops_operator: token("ops", Role::Operator),
    };
    let scopes = [
        scope("alpha", &["alpha-acct"], &["alpha-part"], true),
        scope("beta", &["beta-acct"], &["beta-part"], false),
        scope("ops", &[], &[], true),
    ]
    .into_iter()
    .map(|s| (s.tenant.clone(), s))
    .collect();
    let pii = Pseudonymizer::new(PII_SECRET.to_vec(), []).expect("pii");
    let tenancy = Tenancy {
        authn: Arc::new(Authenticator::new(&auth).expect("authn")),
        scopes,
        pii: Some(pii.clone()),
        authz: Arc::new(authz),
        quota: Arc::new(Quota::new(opts.quota)),
        rate_limit: opts.rate_limit,
    };
    let store = Arc::new(Store::default());
    store.publish(families(), 1.0);
    let app = stack::build(
        AppState {
            tenancy: Some(TenancyHandle::new(Arc::new(tenancy))),
            ..AppState::new(store.clone())
        },
        Limits {
            request_timeout: Duration::from_secs(10),
            max_concurrent: 64,
        },
    );
    let addr = serve(app).await;
    Gateway {
        addr,
        tokens,
        store,
        pii,
        _policies: dir,
    }
}

/// Serves `app` on 127.0.0.1 with the peer address attached, as the accept loop does.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

/// A gateway without `[auth]` (loopback or mTLS-only setups): everyone sees everything.
pub async fn start_open() -> SocketAddr {
    let store = Arc::new(Store::default());
    store.publish(families(), 1.0);
    let app = stack::build(
        AppState::new(store),
        Limits {
            request_timeout: Duration::from_secs(10),
            max_concurrent: 64,
        },
    );
    serve(app).await
}

// ---------------------------------------------------------------------------------------
// A raw HTTP/1.1 client

/// An answer, or what is left of one when the server closed the connection instead.
#[derive(Debug)]
pub struct Resp {
    /// 0 when the server closed the connection without an answer.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Decompressed when `Content-Encoding: gzip`.
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The sample lines of an exposition (no comments).
    pub fn samples(&self) -> Vec<&str> {
        self.body
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    /// Panics when the body shows any of `markers`.
    pub fn assert_free_of(&self, markers: &[&str], what: &str) {
        for m in markers {
            assert!(
                !self.body.contains(m),
                "{what}: the body leaks {m:?}:\n{}",
                self.body
            );
        }
    }
}

/// Sends `request` (bytes exactly as given) on a new connection from `source` and reads one
/// answer: up to its `Content-Length` or last chunk, or until the server closes.
pub async fn send_raw(addr: SocketAddr, source: &str, request: &[u8]) -> Resp {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{source}:0").parse().expect("source"))
        .expect("bind source");
    let mut stream = sock.connect(addr).await.expect("connect");
    // The server may answer and close before reading everything: a failed write is fine.
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = vec![0u8; 64 << 10];
        while !complete(&raw) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    parse_response(&raw)
}

/// Sends several requests in one write on one connection (HTTP/1.1 pipelining; the last
/// one should say `Connection: close`) and reads every answer until the server closes.
pub async fn send_pipelined(addr: SocketAddr, requests: &[Vec<u8>]) -> Vec<Resp> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(&requests.concat()).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "the server did not close");
    let mut out = Vec::new();
    let mut rest = &raw[..];
    while !rest.is_empty() {
        let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let len = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(rest.len() - end - 4);
        let total = (end + 4 + len).min(rest.len());
        out.push(parse_response(&rest[..total]));
        rest = &rest[total..];
    }
    out
}

/// Whether `raw` holds a whole response.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if head.contains("\r\ntransfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    head.split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|len| body.len() >= len)
}

fn parse_response(raw: &[u8]) -> Resp {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Resp {
            status: 0,
            headers: Vec::new(),
            body: String::new(),
        };
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.truncate(len);
    }
    if find("content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip")) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        body = out;
    }
    Resp {
        status,
        headers,
        body: String::from_utf8(body).expect("utf8 body"),
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let Some(chunk) = b.get(start..start + size) else {
            break;
        };
        out.extend_from_slice(chunk);
        b = b.get(start + size + 2..).unwrap_or(&[]);
    }
    out
}

/// A GET with `headers`, from 127.0.0.1.
pub async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Resp {
    send_raw(addr, "127.0.0.1", &request("GET", target, headers, &[])).await
}

/// The bytes of a request: request line, `Host`, `headers`, `body`.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut req = req.into_bytes();
    req.extend_from_slice(body);
    req
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// `/federate` with these selectors, URL-encoded as Prometheus sends them.
pub fn federate_path(selectors: &[&str]) -> String {
    let mut path = String::from("/federate");
    for (i, s) in selectors.iter().enumerate() {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str("match%5B%5D=");
        path.push_str(&url_encode(s));
    }
    path
}

pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
