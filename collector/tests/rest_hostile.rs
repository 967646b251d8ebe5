//! A hostile slurmrestd: a tiny fake server on 127.0.0.1 (or a unix socket) that answers raw
//! HTTP/1.1 by hand, with a `RestSource` pointed at it. The happy answers are the real Slurm
//! 22.05.8 captures; the rest is what slurmrestd, a proxy in front of it, or the network
//! does on a bad day. Every test asserts the exact outcome: the parts, or the error's kind
//! and message, and what a `Runner` keeps serving.

use collector::model::{JobState, NodeBaseState};
use collector::parse::ParseError;
use collector::poller::{fuse, PollConfig, Runner};
use collector::source::cli::CliConfig;
use collector::source::rest::{Endpoint, RestConfig, RestSource, Secret, TokenSource};
use collector::source::{Extras, Parts, Source, SourceError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const PING: &[u8] = include_bytes!("../testdata/rest/22.05.8/slurm_v0.0.38_ping.json");
const SLURMDB_JOBS: &[u8] = include_bytes!("../testdata/rest/22.05.8/slurmdb_v0.0.38_jobs.json");
const JOBS: &[u8] = include_bytes!("../testdata/rest/22.05.8/slurm_v0.0.38_jobs.json");
const NODES: &[u8] = include_bytes!("../testdata/rest/22.05.8/slurm_v0.0.38_nodes.json");
const PARTITIONS: &[u8] = include_bytes!("../testdata/rest/22.05.8/slurm_v0.0.38_partitions.json");
const UNIX_NODES: &[u8] = include_bytes!("../testdata/rest/22.05.8/unix_slurm_v0.0.38_nodes.json");

const CAPTURED_JOBS: usize = 69;
const MIB: u64 = 1 << 20;

/// What 22.05 answers for a bad or expired token (see deploy/slurm-lab/README.md).
const EXPIRED_TOKEN: &str = r#"{"meta":{"plugin":{"type":"openapi/v0.0.38","name":"Slurm OpenAPI v0.0.38"},"Slurm":{"version":{"major":22,"micro":8,"minor":5},"release":"22.05.8"}},"errors":[{"error":"Unspecified error","error_number":-1,"description":"slurmctld config is unable to load"}]}"#;
const CONTROLLER_DOWN: &str = r#"{"errors":[{"error":"Unspecified error","error_number":1007,"description":"Unable to contact slurm controller (connect failure)"}]}"#;
const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n";

// ---------------------------------------------------------------------------------------
// The fake slurmrestd
// ---------------------------------------------------------------------------------------

/// One request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// Path and query, as sent.
    target: String,
    /// Names lowercased.
    headers: Vec<(String, String)>,
}

impl Seen {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
    fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Reply {
    Answer {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// Read the request, then never answer (and never close).
    Hang,
    /// Read the request, then close the connection without a word.
    Close,
}

fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
    Reply::Answer {
        status,
        content_type: "application/json",
        body: body.into(),
    }
}

fn html(status: u16, body: impl Into<Vec<u8>>) -> Reply {
    Reply::Answer {
        status,
        content_type: "text/html",
        body: body.into(),
    }
}

fn not_modified() -> Reply {
    json(304, Vec::new())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Whatever",
    }
}

/// Slurm 22.05.8: only v0.0.38 answers; every other version is 404.
fn slurm_22_05(req: &Seen) -> Reply {
    match req.path() {
        "/slurm/v0.0.38/ping" => json(200, PING),
        "/slurm/v0.0.38/jobs" => json(200, JOBS),
        "/slurm/v0.0.38/nodes" => json(200, NODES),
        "/slurm/v0.0.38/partitions" => json(200, PARTITIONS),
        "/slurmdb/v0.0.38/jobs" => json(200, SLURMDB_JOBS),
        _ => html(404, "Not Found"),
    }
}

/// The v0.0.38 endpoints, with `body` for the data endpoints and the captures elsewhere.
fn with_data(
    jobs: &'static str,
    nodes: &'static str,
    partitions: &'static str,
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |req: &Seen| match req.path() {
        "/slurm/v0.0.38/jobs" => json(200, jobs),
        "/slurm/v0.0.38/nodes" => json(200, nodes),
        "/slurm/v0.0.38/partitions" => json(200, partitions),
        _ => slurm_22_05(req),
    }
}

type Route = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;
type Log = Arc<Mutex<Vec<Seen>>>;

struct Fake {
    endpoint: Endpoint,
    seen: Log,
    /// Holds the unix socket's directory for the fake's life.
    _dir: Option<tempfile::TempDir>,
}

impl Fake {
    async fn tcp(route: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let port = listener.local_addr().expect("bound address").port();
        let seen = Log::default();
        let route: Route = Arc::new(route);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve(s, route.clone(), log.clone()));
            }
        });
        Fake {
            endpoint: Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            seen,
            _dir: None,
        }
    }

    async fn unix(route: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("slurmrestd.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind a unix socket");
        let seen = Log::default();
        let route: Route = Arc::new(route);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve(s, route.clone(), log.clone()));
            }
        });
        Fake {
            endpoint: Endpoint::Unix(path),
            seen,
            _dir: Some(dir),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("request log").clone()
    }

    fn targets(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.target).collect()
    }

    fn config(&self, api_version: Option<&str>) -> RestConfig {
        RestConfig {
            endpoint: self.endpoint.clone(),
            user: "root".into(),
            token: TokenSource::Static(Secret::new("t")),
            api_version: api_version.map(str::to_owned),
            timeout: Duration::from_secs(5),
            cli: CliConfig::default(),
            // The core parts only: the request lists below are exact.
            extras: Extras::none(),
        }
    }

    fn source(&self, api_version: Option<&str>) -> RestSource {
        RestSource::new(self.config(api_version)).expect("valid config")
    }

    fn runner(&self, api_version: Option<&str>) -> Runner {
        Runner::new(Box::new(self.source(api_version)), poll_config())
    }
}

fn poll_config() -> PollConfig {
    PollConfig {
        timeout: Duration::from_millis(300),
        ..PollConfig::default()
    }
}

/// One HTTP/1.1 exchange, then close.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, route: Route, log: Log) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let req = Seen { target, headers };
    log.lock().expect("request log").push(req.clone());
    match route(&req) {
        Reply::Hang => {
            std::future::pending::<()>().await;
            drop(s);
        }
        Reply::Close => drop(s),
        Reply::Answer {
            status,
            content_type,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nServer: fake-slurmrestd\r\nConnection: close\r\n",
                reason(status)
            );
            if status != 304 {
                head.push_str(&format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                    body.len()
                ));
            }
            head.push_str("\r\n");
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
            let _ = s.shutdown().await;
        }
    }
}

async fn poll(src: &RestSource) -> Result<Parts, SourceError> {
    src.poll().await
}

fn lens(p: &Parts) -> (Option<usize>, Option<usize>, Option<usize>) {
    (
        p.nodes.as_ref().map(Vec::len),
        p.jobs.as_ref().map(Vec::len),
        p.partitions.as_ref().map(Vec::len),
    )
}

/// Serves the captures until the first data request, then answers every data request with
/// `reply` (ping stays fine, so discovery is not what fails).
async fn failing_jobs(reply: fn() -> Reply) -> SourceError {
    let fake = Fake::tcp(move |req: &Seen| match req.path() {
        "/slurm/v0.0.38/jobs" => reply(),
        _ => slurm_22_05(req),
    })
    .await;
    poll(&fake.source(None)).await.expect_err("the poll fails")
}

// ---------------------------------------------------------------------------------------
// 1. Happy path
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_settles_on_v0_0_38_and_reads_the_22_05_captures() {
    let fake = Fake::tcp(slurm_22_05).await;
    let parts = poll(&fake.source(None)).await.expect("healthy 22.05");

    assert_eq!(lens(&parts), (Some(16), Some(CAPTURED_JOBS), Some(4)));
    assert_eq!(parts.meta.release, "22.05.8");
    assert_eq!(parts.meta.plugin, "openapi/v0.0.38");
    assert!(!parts.not_modified);
    assert_eq!(
        parts.bytes,
        (JOBS.len() + NODES.len() + PARTITIONS.len()) as u64
    );
    let nodes = parts.nodes.as_deref().unwrap_or_default();
    let gpu01 = nodes
        .iter()
        .find(|n| &*n.name == "gpu-01")
        .expect("gpu-01 in the capture");
    assert_eq!((gpu01.gpus_total, gpu01.gpus_alloc), (4, 2));

    // Newest first: every newer version is tried and answers 404, then v0.0.38 answers.
    let mut want: Vec<String> = ["44", "43", "42", "41", "40", "39", "38"]
        .iter()
        .map(|v| format!("/slurm/v0.0.{v}/ping"))
        .collect();
    want.extend(
        ["jobs", "nodes", "partitions"]
            .iter()
            .map(|e| format!("/slurm/v0.0.38/{e}")),
    );
    assert_eq!(fake.targets(), want);
    for req in fake.seen() {
        assert_eq!(req.header("x-slurm-user-name"), Some("root"), "{req:?}");
        assert_eq!(req.header("x-slurm-user-token"), Some("t"), "{req:?}");
        assert_eq!(req.header("accept"), Some("application/json"), "{req:?}");
        assert!(
            req.header("authorization").is_none(),
            "22.05 answers 401 to Bearer"
        );
    }
}

#[tokio::test]
async fn a_configured_version_skips_discovery() {
    let fake = Fake::tcp(slurm_22_05).await;
    let parts = poll(&fake.source(Some("v0.0.38")))
        .await
        .expect("healthy 22.05");
    assert_eq!(lens(&parts), (Some(16), Some(CAPTURED_JOBS), Some(4)));
    assert_eq!(
        fake.targets(),
        [
            "/slurm/v0.0.38/jobs",
            "/slurm/v0.0.38/nodes",
            "/slurm/v0.0.38/partitions"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 2. update_time and 304
// ---------------------------------------------------------------------------------------

/// Answers 304 to any `update_time` request, like a cluster where nothing changes.
fn quiet_cluster(req: &Seen) -> Reply {
    if req.query().is_some_and(|q| q.starts_with("update_time=")) {
        return not_modified();
    }
    slurm_22_05(req)
}

#[tokio::test]
async fn second_poll_sends_update_time_and_304_is_not_modified() {
    let fake = Fake::tcp(quiet_cluster).await;
    let src = fake.source(Some("v0.0.38"));
    let first = poll(&src).await.expect("first poll");
    assert_eq!(lens(&first), (Some(16), Some(CAPTURED_JOBS), Some(4)));

    let second = poll(&src).await.expect("304 is a success");
    assert!(second.not_modified);
    assert_eq!(lens(&second), (None, None, None));
    assert_eq!(second.bytes, 0);
    assert_eq!(second.meta.plugin, "openapi/v0.0.38");

    let since = first.fetched_epoch - 1;
    assert_eq!(
        fake.targets()[3..],
        [
            format!("/slurm/v0.0.38/jobs?update_time={since}"),
            format!("/slurm/v0.0.38/nodes?update_time={since}"),
            format!("/slurm/v0.0.38/partitions?update_time={since}"),
        ]
    );
}

/// slurmrestd 22.05 as seen on the lab: a conditional `/nodes` (or `/jobs`) request with
/// nothing changed answers 500 "Unspecified error".
fn nodes_500_on_update_time(req: &Seen) -> Reply {
    let conditional = req.query().is_some_and(|q| q.starts_with("update_time="));
    match req.path() {
        "/slurm/v0.0.38/nodes" | "/slurm/v0.0.38/jobs" if conditional => json(
            500,
            r#"{"errors":[{"error":"Unspecified error","error_number":-1}]}"#,
        ),
        _ => slurm_22_05(req),
    }
}

#[tokio::test]
async fn a_server_error_to_update_time_is_asked_again_without_it() {
    let fake = Fake::tcp(nodes_500_on_update_time).await;
    let src = fake.source(Some("v0.0.38"));
    let first = poll(&src).await.expect("first poll");
    assert_eq!(lens(&first), (Some(16), Some(CAPTURED_JOBS), Some(4)));
    // Every later poll still succeeds with the whole data, never an error.
    for _ in 0..3 {
        let next = poll(&src).await.expect("the unconditional retry succeeds");
        assert_eq!(lens(&next).0, Some(16), "nodes");
        assert_eq!(lens(&next).1, Some(CAPTURED_JOBS), "jobs");
    }
    let targets = fake.targets();
    assert!(
        targets
            .iter()
            .any(|t| t.starts_with("/slurm/v0.0.38/nodes?update_time=")),
        "the condition was tried: {targets:?}"
    );
    assert!(
        targets
            .iter()
            .filter(|t| *t == "/slurm/v0.0.38/nodes")
            .count()
            >= 4,
        "and the plain GET followed: {targets:?}"
    );
}

#[tokio::test]
async fn runner_keeps_the_previous_data_on_304() {
    let fake = Fake::tcp(quiet_cluster).await;
    let mut runner = fake.runner(None);
    runner.poll_once().await.expect("first poll");
    runner.poll_once().await.expect("304 poll");

    let st = runner.status();
    assert!(st.up);
    assert_eq!(st.polls, 2);
    assert_eq!(st.not_modified, 1);
    assert!(st.errors.is_empty(), "{:?}", st.errors);
    assert_eq!(st.last_bytes, 0);
    let snap = fuse(&[&runner], None);
    assert_eq!(snap.nodes.len(), 16);
    assert_eq!(snap.jobs.len(), CAPTURED_JOBS);
    assert_eq!(snap.partitions.len(), 4);
    assert_eq!(
        snap.meta.release, "22.05.8",
        "a 304 keeps the known release"
    );
}

// ---------------------------------------------------------------------------------------
// 3. HTTP errors
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_token_401_is_an_auth_error() {
    let err = failing_jobs(|| html(401, "Authentication failure")).await;
    assert_eq!(err.kind(), "auth", "{err}");
    assert!(
        matches!(&err, SourceError::Auth { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Authentication failure"), "{err}");
}

#[tokio::test]
async fn expired_token_500_is_an_auth_error() {
    let err = failing_jobs(|| json(500, EXPIRED_TOKEN)).await;
    assert_eq!(err.kind(), "auth", "{err}");
    match &err {
        SourceError::Auth { what, status, msg } => {
            assert_eq!(*status, 500);
            assert_eq!(msg, "slurmctld config is unable to load");
            assert_eq!(what, "GET /slurm/v0.0.38/jobs");
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert!(!err.to_string().contains("\"t\""), "no token in messages");
}

#[tokio::test]
async fn expired_token_during_discovery_is_an_auth_error() {
    // 22.05 with a bad token: newer versions are 404, every version it serves is 500.
    let fake = Fake::tcp(|req: &Seen| match req.path() {
        "/slurm/v0.0.38/ping" | "/slurm/v0.0.37/ping" | "/slurm/v0.0.36/ping" => {
            json(500, EXPIRED_TOKEN)
        }
        _ => html(404, "Not Found"),
    })
    .await;
    let err = poll(&fake.source(None)).await.expect_err("bad token fails");
    assert_eq!(err.kind(), "auth", "{err}");
    assert!(
        err.to_string()
            .contains("slurmctld config is unable to load"),
        "{err}"
    );
}

#[tokio::test]
async fn other_500_is_an_http_error_with_slurms_description() {
    let err = failing_jobs(|| json(500, CONTROLLER_DOWN)).await;
    assert_eq!(err.kind(), "http", "{err}");
    assert!(
        matches!(&err, SourceError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("Unable to contact slurm controller (connect failure)"),
        "{err}"
    );
}

#[tokio::test]
async fn proxy_502_html_is_an_http_error_with_a_snippet() {
    let err = failing_jobs(|| html(502, NGINX_502)).await;
    assert_eq!(err.kind(), "http", "{err}");
    match &err {
        SourceError::Http { status, msg, .. } => {
            assert_eq!(*status, 502);
            assert!(msg.contains("<title>502 Bad Gateway</title>"), "{msg}");
            assert!(msg.contains("nginx/1.18.0"), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg:?}");
        }
        other => panic!("expected an http error, got {other:?}"),
    }
}

#[tokio::test]
async fn huge_error_page_is_cut_to_a_snippet() {
    let err = failing_jobs(|| {
        let mut page = String::from("<html><body><h1>Service Unavailable</h1>");
        page.push_str(&"<p>padding</p>".repeat(20_000));
        page.push_str("</body></html>");
        html(502, page)
    })
    .await;
    assert_eq!(err.kind(), "http", "{err}");
    let SourceError::Http { msg, .. } = &err else {
        panic!("expected an http error, got {err:?}");
    };
    assert!(
        msg.starts_with("<html><body><h1>Service Unavailable"),
        "{msg}"
    );
    assert!(msg.chars().count() <= 200, "{} chars", msg.chars().count());
}

#[tokio::test]
async fn no_supported_version_is_an_http_error_listing_what_was_tried() {
    let fake = Fake::tcp(|_: &Seen| html(404, "Not Found")).await;
    let err = poll(&fake.source(None)).await.expect_err("nothing answers");
    assert_eq!(err.kind(), "http", "{err}");
    let text = err.to_string();
    assert!(text.contains("v0.0.44: HTTP 404"), "{text}");
    assert!(text.contains("v0.0.36: HTTP 404"), "{text}");
    assert_eq!(fake.seen().len(), 9, "one ping per supported version");
}

#[tokio::test]
async fn vanished_endpoint_rediscovers_on_the_next_poll() {
    // The server is upgraded between polls: v0.0.38 is gone, v0.0.40 answers.
    let upgraded = Arc::new(AtomicU32::new(0));
    let flag = upgraded.clone();
    let fake = Fake::tcp(move |req: &Seen| {
        if flag.load(Ordering::SeqCst) == 0 {
            return slurm_22_05(req);
        }
        match req.path() {
            "/slurm/v0.0.40/ping" => json(200, PING),
            "/slurm/v0.0.40/jobs" => json(200, JOBS),
            "/slurm/v0.0.40/nodes" => json(200, NODES),
            "/slurm/v0.0.40/partitions" => json(200, PARTITIONS),
            _ => html(404, "Not Found"),
        }
    })
    .await;
    let src = fake.source(None);
    poll(&src).await.expect("before the upgrade");
    upgraded.store(1, Ordering::SeqCst);
    let err = poll(&src).await.expect_err("v0.0.38 vanished");
    assert_eq!(err.kind(), "http", "{err}");
    assert!(err.to_string().contains("re-discovering"), "{err}");
    let parts = poll(&src).await.expect("after re-discovery");
    assert_eq!(lens(&parts), (Some(16), Some(CAPTURED_JOBS), Some(4)));
    let targets = fake.targets();
    assert_eq!(
        targets.last().map(String::as_str),
        Some("/slurm/v0.0.40/partitions"),
        "{targets:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Bodies that are not what they should be
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn truncated_jobs_body_is_a_parse_error_naming_truncated() {
    let fake = Fake::tcp(|req: &Seen| match req.path() {
        "/slurm/v0.0.38/jobs" => json(200, &JOBS[..JOBS.len() / 2]),
        _ => slurm_22_05(req),
    })
    .await;
    let err = poll(&fake.source(Some("v0.0.38")))
        .await
        .expect_err("half a document");
    assert_eq!(err.kind(), "parse", "{err}");
    assert!(
        matches!(
            &err,
            SourceError::Parse {
                err: ParseError::Truncated { .. },
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("truncated"), "{text}");
    assert!(text.contains("/slurm/v0.0.38/jobs"), "{text}");
}

#[tokio::test]
async fn html_with_status_200_is_a_parse_error() {
    let fake = Fake::tcp(|req: &Seen| match req.path() {
        "/slurm/v0.0.38/nodes" => html(200, "<html><body>Login required</body></html>"),
        _ => slurm_22_05(req),
    })
    .await;
    let err = poll(&fake.source(Some("v0.0.38")))
        .await
        .expect_err("not JSON");
    assert_eq!(err.kind(), "parse", "{err}");
    assert!(err.to_string().contains("/slurm/v0.0.38/nodes"), "{err}");
}

#[tokio::test]
async fn json_without_the_data_array_is_a_parse_error_naming_it() {
    let fake = Fake::tcp(with_data(
        r#"{"meta":{},"errors":[]}"#,
        r#"{"nodes":[]}"#,
        r#"{"partitions":[]}"#,
    ))
    .await;
    let err = poll(&fake.source(Some("v0.0.38")))
        .await
        .expect_err("no jobs array");
    assert_eq!(err.kind(), "parse", "{err}");
    assert!(
        matches!(
            &err,
            SourceError::Parse {
                err: ParseError::Missing("jobs"),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn numbers_as_strings_and_strings_as_numbers_are_read() {
    let fake = Fake::tcp(with_data(
        r#"{"meta":{"plugin":{"type":"openapi\/v0.0.38"},"Slurm":{"release":"22.05.8"}},"errors":[],
            "jobs":[{"job_id":"101","job_state":"RUNNING","cpus":"4","node_count":"1",
                     "account":7,"user_name":1000,"partition":"debug","time_limit":"60",
                     "memory_per_node":"2048"},
                    {"job_id":102.0,"job_state":["PENDING"],"state_reason":"Priority",
                     "priority":"4294967294"}]}"#,
        r#"{"nodes":[{"name":"n1","state":"mixed","cpus":"32","alloc_cpus":"8",
                      "real_memory":"1024","cpu_load":"150","weight":"1","partitions":"debug,gpu"},
                     {"name":42,"state":"IDLE","cpus":16.0,"real_memory":2048.0}]}"#,
        r#"{"partitions":[{"name":"debug","nodes":"n[1-2]","total_cpus":"48","total_nodes":"2",
                           "state":"UP","flags":["default"],"max_time_limit":"60"}]}"#,
    ))
    .await;
    let parts = poll(&fake.source(Some("v0.0.38")))
        .await
        .expect("odd encodings are tolerated");
    assert_eq!(lens(&parts), (Some(2), Some(2), Some(1)));
    assert_eq!(parts.meta.release, "22.05.8");

    let jobs = parts.jobs.as_deref().unwrap_or_default();
    let j = &jobs[0];
    assert_eq!(
        (j.job_id, j.state, j.cpus, j.nodes),
        (101, JobState::Running, 4, 1)
    );
    assert_eq!(
        (&*j.account, &*j.user, &*j.partition),
        ("7", "1000", "debug")
    );
    assert_eq!(j.time_limit_seconds, Some(3600));
    assert_eq!(j.memory_bytes, 2048 * MIB);
    let p = &jobs[1];
    assert_eq!((p.job_id, p.state), (102, JobState::Pending));
    assert_eq!(&*p.reason, "Priority");
    assert_eq!(p.priority, None, "NO_VAL as a string is still no value");

    let nodes = parts.nodes.as_deref().unwrap_or_default();
    let n1 = &nodes[0];
    assert_eq!(
        (&*n1.name, n1.base, n1.cpus, n1.alloc_cpus),
        ("n1", NodeBaseState::Mixed, 32, 8)
    );
    assert_eq!(n1.real_memory_bytes, 1024 * MIB);
    assert_eq!(n1.cpu_load, Some(1.5));
    assert_eq!(n1.partitions.len(), 2);
    let n42 = &nodes[1];
    assert_eq!(
        (&*n42.name, n42.base, n42.cpus),
        ("42", NodeBaseState::Idle, 16)
    );
    assert_eq!(n42.real_memory_bytes, 2048 * MIB);

    let partitions = parts.partitions.as_deref().unwrap_or_default();
    let d = &partitions[0];
    assert_eq!((&*d.name, &*d.state, d.is_default), ("debug", "up", true));
    assert_eq!((d.total_cpus, d.total_nodes, d.nodes.len()), (48, 2, 2));
    assert_eq!(d.max_time_seconds, Some(3600));
}

#[tokio::test]
async fn nulls_unknown_and_missing_fields_take_neutral_values() {
    let fake = Fake::tcp(with_data(
        r#"{"warnings":null,"errors":null,"brand_new_top_level":{"a":[1,{"b":null}]},
            "jobs":[{"job_id":1,"job_state":null,"cpus":null,"account":null,"start_time":null,
                     "tres_alloc_str":null,"future":{"nested":[true,false]}},
                    {"job_id":2}]}"#,
        r#"{"nodes":[{"name":"n1","state":null,"cpus":null,"free_memory":null,"cpu_load":null,
                      "gres":null,"partitions":null,"future":[{"x":1}]},
                     {"name":"n2"},
                     {"state":"idle","cpus":4}]}"#,
        r#"{"partitions":[{"name":"p","nodes":null,"total_cpus":null,"state":null,
                           "brand_new":{"a":1}},
                          {"total_cpus":8}]}"#,
    ))
    .await;
    let parts = poll(&fake.source(Some("v0.0.38")))
        .await
        .expect("nulls and unknowns are tolerated");
    assert_eq!(
        lens(&parts),
        (Some(2), Some(2), Some(1)),
        "records without a name are dropped"
    );
    assert_eq!(parts.meta.release, "", "no meta, no release");
    assert_eq!(
        parts.meta.plugin, "openapi/v0.0.38",
        "filled from the API in use"
    );

    let jobs = parts.jobs.as_deref().unwrap_or_default();
    for (j, id) in jobs.iter().zip([1, 2]) {
        assert_eq!(j.job_id, id);
        assert_eq!(j.state, JobState::Other);
        assert_eq!((j.cpus, j.nodes, j.memory_bytes, j.gpus), (0, 0, 0, 0));
        assert_eq!(&*j.account, "");
        assert_eq!(j.start_epoch, None);
        assert_eq!(j.task_count, 1);
    }

    let nodes = parts.nodes.as_deref().unwrap_or_default();
    for (n, name) in nodes.iter().zip(["n1", "n2"]) {
        assert_eq!(&*n.name, name);
        assert_eq!(n.base, NodeBaseState::Unknown);
        assert_eq!((n.cpus, n.gpus_total), (0, 0));
        assert_eq!((n.free_memory_bytes, n.cpu_load), (None, None));
        assert!(n.partitions.is_empty());
    }

    let p = &parts.partitions.as_deref().unwrap_or_default()[0];
    assert_eq!((&*p.name, &*p.state), ("p", "unknown"));
    assert_eq!((p.total_cpus, p.total_nodes, p.nodes.len()), (0, 0, 0));
}

#[tokio::test]
async fn empty_cluster_has_zero_nodes_and_jobs() {
    let fake = Fake::tcp(with_data(
        r#"{"jobs":[]}"#,
        r#"{"nodes":[]}"#,
        r#"{"partitions":[]}"#,
    ))
    .await;
    let src = fake.source(Some("v0.0.38"));
    let parts = poll(&src).await.expect("an empty cluster is fine");
    assert_eq!(lens(&parts), (Some(0), Some(0), Some(0)));
    assert!(!parts.not_modified, "empty is not unchanged");

    let mut runner = Runner::new(Box::new(src), poll_config());
    runner.poll_once().await.expect("empty again");
    assert!(runner.status().up);
    let snap = fuse(&[&runner], None);
    assert_eq!((snap.nodes.len(), snap.jobs.len()), (0, 0));
}

// ---------------------------------------------------------------------------------------
// 5. The network
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        l.local_addr().expect("bound address").port()
    };
    let src = RestSource::new(RestConfig {
        endpoint: Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        user: "root".into(),
        token: TokenSource::Static(Secret::new("t")),
        api_version: None,
        timeout: Duration::from_secs(5),
        cli: CliConfig::default(),
        extras: Extras::none(),
    })
    .expect("valid config");
    let err = poll(&src).await.expect_err("connection refused");
    assert_eq!(err.kind(), "connect", "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    assert!(text.contains("could not connect"), "{text}");
}

#[tokio::test]
async fn server_that_closes_without_answering_is_a_connect_error() {
    let fake = Fake::tcp(|_: &Seen| Reply::Close).await;
    let err = poll(&fake.source(None)).await.expect_err("no answer");
    assert_eq!(err.kind(), "connect", "{err}");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn server_that_never_answers_times_out_in_the_runner() {
    let fake = Fake::tcp(|_: &Seen| Reply::Hang).await;
    let mut runner = fake.runner(None);
    let started = Instant::now();
    let err = runner.poll_once().await.expect_err("hangs");
    let took = started.elapsed();
    assert_eq!(err.kind(), "timeout", "{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let st = runner.status();
    assert!(!st.up);
    assert_eq!(st.errors.get("timeout"), Some(&1));
    assert_eq!(fake.seen().len(), 1, "the request reached the server");
}

// ---------------------------------------------------------------------------------------
// 6. The Runner over a failing server
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn runner_keeps_the_last_good_data_through_failures() {
    let mode = Arc::new(AtomicU32::new(0));
    let m = mode.clone();
    let fake = Fake::tcp(move |req: &Seen| {
        if req.path().ends_with("/ping") {
            return slurm_22_05(req);
        }
        match m.load(Ordering::SeqCst) {
            1 => json(500, EXPIRED_TOKEN),
            2 => html(502, NGINX_502),
            3 => json(200, &JOBS[..1000]),
            _ => slurm_22_05(req),
        }
    })
    .await;
    let mut runner = fake.runner(None);
    runner.poll_once().await.expect("good poll");
    assert!(runner.status().up);

    for (m, kind) in [(1, "auth"), (2, "http"), (3, "parse")] {
        mode.store(m, Ordering::SeqCst);
        let err = runner.poll_once().await.expect_err("failing poll");
        assert_eq!(err.kind(), kind, "{err}");
        let st = runner.status();
        assert!(!st.up);
        assert!(!st.stale);
        assert_eq!(st.errors.get(kind), Some(&1), "{:?}", st.errors);
        let snap = fuse(&[&runner], None);
        assert_eq!(snap.nodes.len(), 16, "last good data still served");
        assert_eq!(snap.jobs.len(), CAPTURED_JOBS);
        assert_eq!(snap.meta.release, "22.05.8");
    }
    assert_eq!(runner.status().errors.values().sum::<u64>(), 3);

    mode.store(0, Ordering::SeqCst);
    runner.poll_once().await.expect("recovered");
    assert!(runner.status().up);
    assert_eq!(runner.status().polls, 5);
}

/// Jobs changed while nodes failed; afterwards nothing changes, so slurmrestd answers 304
/// to any `update_time` at or after that change.
#[tokio::test]
async fn failed_poll_does_not_hide_changes_behind_update_time() {
    const ONE_JOB: &str = r#"{"jobs":[{"job_id":9999,"job_state":"RUNNING","cpus":1}]}"#;
    let phase = Arc::new(AtomicU32::new(0));
    let p = phase.clone();
    let fake = Fake::tcp(move |req: &Seen| {
        let since = req.query().is_some_and(|q| q.starts_with("update_time="));
        match (p.load(Ordering::SeqCst), req.path()) {
            (0, _) => slurm_22_05(req),
            (1, "/slurm/v0.0.38/jobs") => json(200, ONE_JOB),
            (1, "/slurm/v0.0.38/nodes") => json(500, CONTROLLER_DOWN),
            (_, _) if since => not_modified(),
            (_, "/slurm/v0.0.38/jobs") => json(200, ONE_JOB),
            (_, _) => slurm_22_05(req),
        }
    })
    .await;
    let mut runner = fake.runner(Some("v0.0.38"));
    runner.poll_once().await.expect("first poll");
    phase.store(1, Ordering::SeqCst);
    let err = runner.poll_once().await.expect_err("nodes fail");
    assert_eq!(err.kind(), "http", "{err}");
    phase.store(2, Ordering::SeqCst);
    runner.poll_once().await.expect("healthy again");

    let snap = fuse(&[&runner], None);
    let ids: Vec<u64> = snap.jobs.iter().map(|j| j.job_id).collect();
    assert_eq!(ids, [9999], "the jobs of now, not of the first poll");
    assert_eq!(snap.nodes.len(), 16);
    let targets = fake.targets();
    assert!(
        targets[5..].iter().all(|t| !t.contains('?')),
        "after a failure everything is fetched whole: {targets:?}"
    );

    // Once a poll succeeds, update_time is used again.
    runner.poll_once().await.expect("quiet poll");
    assert_eq!(runner.status().not_modified, 1);
    // 3 + 3 (the failed poll: jobs, nodes with update_time, nodes again without it, as
    // any server error to a conditional request is asked again) + 3 + 3.
    assert_eq!(fake.targets().len(), 12);
    assert!(fake.targets()[9..]
        .iter()
        .all(|t| t.contains("?update_time=")));
    let snap = fuse(&[&runner], None);
    assert_eq!(snap.jobs.len(), 1);
    assert_eq!(snap.nodes.len(), 16);
}

#[tokio::test]
async fn timed_out_poll_does_not_hide_changes_behind_update_time() {
    const ONE_JOB: &str = r#"{"jobs":[{"job_id":9999,"job_state":"RUNNING","cpus":1}]}"#;
    let phase = Arc::new(AtomicU32::new(0));
    let p = phase.clone();
    let fake = Fake::tcp(move |req: &Seen| {
        let since = req.query().is_some_and(|q| q.starts_with("update_time="));
        match (p.load(Ordering::SeqCst), req.path()) {
            (0, _) => slurm_22_05(req),
            (1, "/slurm/v0.0.38/jobs") => json(200, ONE_JOB),
            (1, _) => Reply::Hang,
            (_, _) if since => not_modified(),
            (_, "/slurm/v0.0.38/jobs") => json(200, ONE_JOB),
            (_, _) => slurm_22_05(req),
        }
    })
    .await;
    let mut runner = fake.runner(Some("v0.0.38"));
    runner.poll_once().await.expect("first poll");
    phase.store(1, Ordering::SeqCst);
    let err = runner.poll_once().await.expect_err("nodes hang");
    assert_eq!(err.kind(), "timeout", "{err}");
    phase.store(2, Ordering::SeqCst);
    runner.poll_once().await.expect("healthy again");

    let snap = fuse(&[&runner], None);
    let ids: Vec<u64> = snap.jobs.iter().map(|j| j.job_id).collect();
    assert_eq!(ids, [9999], "the jobs of now, not of the first poll");
}

// ---------------------------------------------------------------------------------------
// 7. Unix socket, rest_auth/local
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn unix_socket_with_local_auth_sends_no_token() {
    let fake = Fake::unix(|req: &Seen| match req.path() {
        "/slurm/v0.0.38/nodes" => json(200, UNIX_NODES),
        _ => slurm_22_05(req),
    })
    .await;
    let src = RestSource::new(RestConfig {
        token: TokenSource::None,
        ..fake.config(None)
    })
    .expect("valid config");
    let parts = poll(&src).await.expect("unix socket works");
    assert_eq!(lens(&parts), (Some(16), Some(CAPTURED_JOBS), Some(4)));
    assert_eq!(parts.meta.release, "22.05.8");

    let seen = fake.seen();
    assert_eq!(seen.len(), 10, "7 pings, then jobs, nodes, partitions");
    for req in &seen {
        assert!(req.header("x-slurm-user-token").is_none(), "{req:?}");
        assert!(req.header("x-slurm-user-name").is_none(), "{req:?}");
        assert_eq!(req.header("host"), Some("localhost"), "{req:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Optional parts
// ---------------------------------------------------------------------------------------

const DIAG: &str = include_str!("../testdata/rest/22.05.8/slurm_v0.0.38_diag.json");
const LICENSES: &str = include_str!("../testdata/rest/22.05.8/slurm_v0.0.38_licenses.json");
const RESERVATIONS: &str = include_str!("../testdata/rest/22.05.8/slurm_v0.0.38_reservations.json");
const QOS: &str = include_str!("../testdata/rest/22.05.8/slurmdb_v0.0.38_qos.json");

#[tokio::test]
async fn optional_parts_are_read_and_a_failing_one_is_only_a_warning() {
    // slurmdbd is down: its endpoints answer 500, the rest of 22.05 is healthy.
    let fake = Fake::tcp(|req: &Seen| match req.path() {
        "/slurm/v0.0.38/diag" => json(200, DIAG),
        "/slurm/v0.0.38/licenses" => json(200, LICENSES),
        "/slurm/v0.0.38/reservations" => json(200, RESERVATIONS),
        "/slurmdb/v0.0.38/qos" => json(200, QOS),
        "/slurmdb/v0.0.38/associations" => json(
            500,
            r#"{"errors":[{"error":"x","description":"Unable to connect to database"}]}"#,
        ),
        _ => slurm_22_05(req),
    })
    .await;
    let src = RestSource::new(RestConfig {
        extras: Extras::all(),
        ..fake.config(Some("v0.0.38"))
    })
    .expect("valid config");
    let parts = poll(&src).await.expect("the core parts are fine");
    assert!(parts.diag.is_some(), "diag read");
    assert_eq!(parts.controllers.as_ref().map(Vec::len), Some(1));
    assert!(parts.licenses.as_ref().is_some_and(|l| !l.is_empty()));
    assert!(parts.reservations.is_some());
    assert!(parts.qos.as_ref().is_some_and(|q| !q.is_empty()));
    assert!(
        parts.associations.is_none(),
        "slurmdbd down: no associations"
    );
    assert_eq!(
        parts.finished_jobs.as_ref().map(Vec::len),
        Some(14),
        "finished jobs from /slurmdb/v0.0.38/jobs"
    );
    assert_eq!(parts.warnings.len(), 1, "{:?}", parts.warnings);
    assert!(parts.warnings[0]
        .to_string()
        .contains("Unable to connect to database"));

    // Through the runner: the source is up, the failed part is counted.
    let mut runner = Runner::new(Box::new(src), PollConfig::default());
    runner.poll_once().await.expect("poll ok");
    assert!(runner.status().up);
    assert_eq!(runner.status().errors.get("http"), Some(&1));
}

#[tokio::test]
async fn disabled_families_spare_slurm_their_queries() {
    let fake = Fake::tcp(slurm_22_05).await;
    let opts = collector::families::Options {
        disabled: ["fairshare", "limits", "scheduler", "rpc", "accounting"]
            .map(str::to_owned)
            .into(),
        ..Default::default()
    };
    let src = RestSource::new(RestConfig {
        extras: Extras::for_families(&opts),
        ..fake.config(Some("v0.0.38"))
    })
    .expect("valid config");
    poll(&src).await.expect("healthy");
    let paths: Vec<String> = fake.seen().into_iter().map(|r| r.target).collect();
    assert!(
        !paths.iter().any(|p| p.starts_with("/slurmdb/")),
        "{paths:?}"
    );
    assert!(!paths.iter().any(|p| p.ends_with("/diag")), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("/licenses")), "{paths:?}");
}

// ---------------------------------------------------------------------------------------
// Slurm's own error replies (issue 12): HTTP 200 with `errors` is not an empty cluster
// ---------------------------------------------------------------------------------------

/// What slurmrestd answers (HTTP 200) when slurmctld refuses the query: no jobs, an error.
const AUTH_ERROR_200: &str = r#"{"meta":{"plugin":{"type":"openapi\/v0.0.38"},"Slurm":{"release":"22.05.8"}},"errors":[{"error_number":1007,"error":"Protocol authentication error"}],"jobs":[]}"#;
/// Data with an error beside it: one job, and Slurm saying it could not resolve a user.
const PARTIAL_200: &str = r#"{"meta":{"plugin":{"type":"openapi\/v0.0.38"},"Slurm":{"release":"22.05.8"}},"errors":[{"error":"Unable to resolve user 4242"}],"warnings":[{"description":"job 9 skipped"}],"jobs":[{"job_id":1,"job_state":"RUNNING","partition":"cpu","cpus":2}]}"#;
/// slurmrestd 23.02+ answers an unchanged `update_time` with 200, a warning and no data.
const NO_CHANGES_200: &str = r#"{"meta":{},"errors":[],"warnings":[{"description":"No job changes since update_time[1800000000]=Fri Jan 15 08:00:00 2027","source":"_op_handler_jobs"}],"jobs":[]}"#;

/// The captures on the first poll, then `jobs` for every later jobs request.
fn then_jobs(jobs: &'static str) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let polls = AtomicU32::new(0);
    move |req: &Seen| match req.path() {
        "/slurm/v0.0.38/jobs" if polls.fetch_add(1, Ordering::SeqCst) > 0 => json(200, jobs),
        _ => slurm_22_05(req),
    }
}

#[tokio::test]
async fn an_error_reply_fails_the_poll_and_the_last_good_data_is_kept() {
    let fake = Fake::tcp(then_jobs(AUTH_ERROR_200)).await;
    let mut runner = fake.runner(Some("v0.0.38"));
    runner.poll_once().await.expect("first poll");
    let err = runner
        .poll_once()
        .await
        .expect_err("an error reply is an error");
    assert_eq!(err.kind(), "slurm");
    assert!(
        err.to_string().contains("Protocol authentication error"),
        "the message quotes Slurm: {err}"
    );
    let st = runner.status();
    assert!(!st.up, "an error reply is not a healthy source");
    assert_eq!(st.errors.get("slurm"), Some(&1));
    let snap = fuse(&[&runner], None);
    assert_eq!(snap.jobs.len(), CAPTURED_JOBS, "never an empty cluster");
    assert_eq!(snap.nodes.len(), 16);
}

#[tokio::test]
async fn errors_and_warnings_beside_data_are_counted_and_the_data_used() {
    let fake = Fake::tcp(then_jobs(PARTIAL_200)).await;
    let mut runner = fake.runner(Some("v0.0.38"));
    runner.poll_once().await.expect("first poll");
    runner
        .poll_once()
        .await
        .expect("data beside errors is data");
    let st = runner.status();
    assert!(st.up);
    assert_eq!(st.errors.get("slurm_partial"), Some(&1), "{:?}", st.errors);
    assert_eq!(st.errors.get("slurm_warning"), Some(&1), "{:?}", st.errors);
    assert_eq!(fuse(&[&runner], None).jobs.len(), 1);
}

#[tokio::test]
async fn no_changes_since_update_time_keeps_the_data_like_a_304() {
    let fake = Fake::tcp(then_jobs(NO_CHANGES_200)).await;
    let mut runner = fake.runner(Some("v0.0.38"));
    runner.poll_once().await.expect("first poll");
    runner.poll_once().await.expect("unchanged is a success");
    let st = runner.status();
    assert!(st.up);
    assert!(st.errors.is_empty(), "{:?}", st.errors);
    let snap = fuse(&[&runner], None);
    assert_eq!(snap.jobs.len(), CAPTURED_JOBS, "unchanged, not empty");
}
