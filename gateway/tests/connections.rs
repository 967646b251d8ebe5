//! Connection limits of the TLS accept loop over real sockets on 127.x addresses (all of
//! 127.0.0.0/8 is loopback on Linux, so each address is a distinct client): caps per client
//! and in all, idle and write timeouts, refused handshakes counted by reason in the
//! gateway's self-metrics, and a scrape that still answers under a flood of idle and
//! silent connections.

use axum::routing::get;
use axum::Router;
use gateway::conn::{raise_nofile_limit, Refusal};
use gateway::devcerts::{self, DevCerts};
use gateway::metrics::GatewayMetrics;
use gateway::tls::{serve_tls_with, ClientAuth, ReloadableTls, ServeOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The answer of `/big`: far more than the socket buffers of both ends hold.
const BIG: usize = 32 << 20;

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![b'x'; BIG] }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "slow done"
            }),
        )
}

/// Every refusal the accept loop reported, with when, also counted in `metrics`.
#[derive(Clone, Default)]
struct Seen {
    events: Arc<Mutex<Vec<(Refusal, SocketAddr, Instant)>>>,
    metrics: Arc<GatewayMetrics>,
}

impl Seen {
    fn count(&self, r: Refusal) -> usize {
        let ev = self.events.lock().expect("lock");
        ev.iter().filter(|(x, _, _)| *x == r).count()
    }

    /// Waits up to `within` until `r` was reported `n` times.
    async fn wait_for(&self, r: Refusal, n: usize, within: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < within {
            if self.count(r) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The self-metric's value for `reason`, read from the exposition.
    fn metric(&self, reason: &str) -> Option<f64> {
        let want =
            format!("slurm_exporter_gateway_connections_refused_total{{reason=\"{reason}\"}} ");
        self.metrics
            .encode()
            .lines()
            .find_map(|l| l.strip_prefix(&want).and_then(|v| v.trim().parse().ok()))
    }
}

struct Server {
    addr: SocketAddr,
    certs: DevCerts,
    seen: Seen,
    _dir: tempfile::TempDir,
}

async fn start(auth: ClientAuth, mut opts: ServeOptions) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = devcerts::generate(dir.path(), &["alpha"]).expect("dev certs");
    let tls = ReloadableTls::load(certs.tls_config(auth)).expect("TLS config loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Seen::default();
    let hook = seen.clone();
    opts.on_refusal = Some(Arc::new(move |r: Refusal, peer: SocketAddr| {
        hook.metrics.connection_refused(r.as_str());
        hook.events
            .lock()
            .expect("lock")
            .push((r, peer, Instant::now()));
    }));
    tokio::spawn(serve_tls_with(
        listener,
        tls,
        app(),
        std::future::pending(),
        opts,
    ));
    Server {
        addr,
        certs,
        seen,
        _dir: dir,
    }
}

fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("read PEM")
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

fn client_config(
    ca: &Path,
    cert: Option<(&Path, &Path)>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in pem_certs(ca) {
        roots.add(c).expect("root");
    }
    let b = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots);
    Arc::new(match cert {
        Some((c, k)) => b
            .with_client_auth_cert(pem_certs(c), PrivateKeyDer::from_pem_file(k).expect("key"))
            .expect("client cert"),
        None => b.with_no_client_auth(),
    })
}

fn tls13(s: &Server) -> Arc<ClientConfig> {
    client_config(&s.certs.ca_cert, None, &[&rustls::version::TLS13])
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn tcp_from(addr: SocketAddr, from: IpAddr) -> io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(addr).await
}

async fn tls_from(
    addr: SocketAddr,
    from: IpAddr,
    cfg: Arc<ClientConfig>,
) -> Result<TlsStream<TcpStream>, String> {
    let tcp = tcp_from(addr, from).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(cfg).connect(name, tcp),
    )
    .await
    .map_err(|_| "handshake timed out".to_owned())?
    .map_err(|e| format!("handshake: {e}"))
}

/// One keep-alive request on `tls`: the status and the body (read to its Content-Length).
async fn exchange(tls: &mut TlsStream<TcpStream>, path: &str) -> Result<(u16, String), String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len: usize = head
                .split("\r\n")
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no content-length: {head}"))?;
            if raw.len() >= end + 4 + len {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or("bad status line")?;
                let body = String::from_utf8_lossy(&raw[end + 4..end + 4 + len]).into_owned();
                return Ok((status, body));
            }
        }
        match tls.read(&mut buf).await {
            Ok(0) => return Err("closed before the answer".into()),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// True when the server has closed `s` (EOF or reset) within `within`.
async fn closed_within<S: AsyncReadExt + Unpin>(s: &mut S, within: Duration) -> bool {
    let mut b = [0u8; 64];
    let t = Instant::now();
    while t.elapsed() < within {
        match tokio::time::timeout(within.saturating_sub(t.elapsed()), s.read(&mut b)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
    false
}

/// One scrape from `from`: a new connection, handshake, `GET /`; its duration.
async fn scrape(s: &Server, from: IpAddr) -> Duration {
    let t = Instant::now();
    let mut tls = tls_from(s.addr, from, tls13(s))
        .await
        .expect("scrape handshake");
    let (status, body) = exchange(&mut tls, "/").await.expect("scrape answered");
    assert_eq!((status, body.as_str()), (200, "ok"));
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_answers_within_a_second_under_1000_idle_and_256_silent_connections() {
    let (soft, hard) = raise_nofile_limit().expect("RLIMIT_NOFILE");
    assert!(
        soft >= 4096,
        "this test needs 4096 descriptors, has {soft} (hard {hard})"
    );
    // The defaults: what `[server.connections]` gives when left out.
    let s = start(ClientAuth::NoClientCert, ServeOptions::default()).await;

    // 1,000 established, idle TLS connections: 50 from each of 20 addresses (under the
    // default 64 per client), one handshake at a time per address.
    let mut opening = tokio::task::JoinSet::new();
    for a in 0..20u8 {
        let (addr, cfg) = (s.addr, tls13(&s));
        opening.spawn(async move {
            let mut held = Vec::new();
            for _ in 0..50 {
                held.push(tls_from(addr, loopback(10 + a), cfg.clone()).await);
            }
            held
        });
    }
    let mut idle = Vec::new();
    while let Some(held) = opening.join_next().await {
        for c in held.expect("join") {
            idle.push(c.expect("an idle connection within the per-client cap is served"));
        }
    }
    assert_eq!(idle.len(), 1000);

    // 256 connections that never send a ClientHello, 32 from each of 8 addresses.
    let mut silent = Vec::new();
    for a in 0..8u8 {
        for _ in 0..32 {
            silent.push(tcp_from(s.addr, loopback(40 + a)).await.expect("connect"));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The scrape from another address: a new connection, handshake and answer.
    let mut took = Vec::new();
    for _ in 0..5 {
        took.push(scrape(&s, loopback(99)).await);
    }
    took.sort();
    eprintln!(
        "scrape under 1,000 idle + 256 silent connections: min {:?}, median {:?}, max {:?}",
        took[0], took[2], took[4]
    );
    assert!(took[4] < Duration::from_secs(1), "{took:?}");

    // Each silent address keeps the default 8 handshakes; the other 24 were closed at once.
    let mut closed = 0;
    for c in &mut silent {
        if closed_within(c, Duration::from_millis(20)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 8 * 24);
    assert_eq!(s.seen.count(Refusal::ClientHandshakeLimit), 8 * 24);
    assert_eq!(s.seen.metric("client_handshake_limit"), Some(192.0));
    // The idle connections are all still served.
    let mut still_open = 0;
    for c in &mut idle {
        if !closed_within(c, Duration::from_millis(1)).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 1000);
    let (status, _) = exchange(&mut idle[0], "/")
        .await
        .expect("an idle connection answers");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn per_client_and_global_connection_caps_refuse_the_extra_connection() {
    let opts = ServeOptions {
        max_connections: 4,
        max_connections_per_ip: 2,
        ..ServeOptions::default()
    };
    let s = start(ClientAuth::NoClientCert, opts).await;
    let cfg = tls13(&s);
    let mut a = vec![
        tls_from(s.addr, loopback(2), cfg.clone())
            .await
            .expect("first"),
        tls_from(s.addr, loopback(2), cfg.clone())
            .await
            .expect("second"),
    ];
    let e = tls_from(s.addr, loopback(2), cfg.clone())
        .await
        .expect_err("a third connection from 127.0.0.2 is refused");
    assert!(e.starts_with("handshake"), "{e}");
    assert_eq!(s.seen.count(Refusal::ClientConnectionLimit), 1);

    let _b = [
        tls_from(s.addr, loopback(3), cfg.clone())
            .await
            .expect("another client"),
        tls_from(s.addr, loopback(3), cfg.clone())
            .await
            .expect("another client"),
    ];
    tls_from(s.addr, loopback(4), cfg.clone())
        .await
        .expect_err("every one of the 4 connections is taken");
    assert_eq!(s.seen.count(Refusal::ConnectionLimit), 1);

    // A closed connection gives its slot back.
    a.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = tls_from(s.addr, loopback(4), cfg.clone())
        .await
        .expect("a slot is free again");
    assert_eq!(exchange(&mut c, "/").await.expect("served").0, 200);
    assert_eq!(s.seen.metric("client_connection_limit"), Some(1.0));
    assert_eq!(s.seen.metric("connection_limit"), Some(1.0));
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout_busy_ones_are_not() {
    let opts = ServeOptions {
        idle_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    let s = start(ClientAuth::NoClientCert, opts).await;
    let cfg = tls13(&s);

    // Idle after one answer: closed about a second later.
    let mut idle = tls_from(s.addr, loopback(2), cfg.clone())
        .await
        .expect("handshake");
    assert_eq!(exchange(&mut idle, "/").await.expect("served").0, 200);
    let t = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "never closed"
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // Never a request: closed too.
    let mut mute = tls_from(s.addr, loopback(3), cfg.clone())
        .await
        .expect("handshake");
    assert!(closed_within(&mut mute, Duration::from_secs(3)).await);

    // A request every 400 ms keeps a connection, and one taking 1.5 s is not idle.
    let mut busy = tls_from(s.addr, loopback(4), cfg.clone())
        .await
        .expect("handshake");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(exchange(&mut busy, "/").await.expect("still served").0, 200);
    }
    let (status, body) = exchange(&mut busy, "/slow").await.expect("the slow answer");
    assert_eq!((status, body.as_str()), (200, "slow done"));
}

#[tokio::test]
async fn a_client_that_never_reads_a_large_answer_is_cut_after_the_write_timeout() {
    let opts = ServeOptions {
        write_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    let s = start(ClientAuth::NoClientCert, opts).await;
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096)
        .expect("small receive buffer");
    sock.bind(SocketAddr::new(loopback(5), 0)).expect("bind");
    let tcp = sock.connect(s.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = TlsConnector::from(tls13(&s))
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let sent = Instant::now();
    // The client reads nothing: the server's writes stall once the buffers are full.
    assert!(
        s.seen
            .wait_for(Refusal::WriteTimeout, 1, Duration::from_secs(10))
            .await,
        "the stalled connection was never cut"
    );
    let cut_after = s.seen.events.lock().expect("lock")[0].2 - sent;
    eprintln!("a client that never reads was cut {cut_after:?} after its request");
    assert!(cut_after < Duration::from_secs(4), "{cut_after:?}");
    // What reached the client before the cut is far less than the answer.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut got)).await;
    assert!(got.len() < BIG / 2, "{} bytes", got.len());
    assert_eq!(s.seen.metric("write_timeout"), Some(1.0));
}

/// A request from 127.0.0.3 with `cfg`: in TLS 1.3 the server refuses a client certificate
/// after the client's side of the handshake is done, so the refusal shows at the first read.
async fn refused(s: &Server, cfg: Arc<ClientConfig>) -> Result<u16, String> {
    let mut tls = tls_from(s.addr, loopback(3), cfg).await?;
    exchange(&mut tls, "/").await.map(|r| r.0)
}

#[tokio::test]
async fn refused_handshakes_are_counted_by_reason() {
    let opts = ServeOptions {
        handshake_timeout: Duration::from_millis(500),
        ..ServeOptions::default()
    };
    let s = start(ClientAuth::RequireAndVerifyClientCert, opts).await;
    let ca = s.certs.ca_cert.clone();
    let alpha = s.certs.client("alpha").expect("alpha").clone();
    let ok = client_config(
        &ca,
        Some((&alpha.cert, &alpha.key)),
        &[&rustls::version::TLS13],
    );
    let mut c = tls_from(s.addr, loopback(2), ok)
        .await
        .expect("alpha's certificate");
    assert_eq!(exchange(&mut c, "/").await.expect("served").0, 200);

    // A certificate of another CA (alpha's, as signed by a second dev CA).
    let other = tempfile::tempdir().expect("tempdir");
    let stranger = devcerts::generate(other.path(), &["alpha"]).expect("other CA");
    let forged = stranger.client("alpha").expect("alpha").clone();
    let bad = client_config(
        &ca,
        Some((&forged.cert, &forged.key)),
        &[&rustls::version::TLS13],
    );
    refused(&s, bad).await.expect_err("unknown CA");
    let none = client_config(&ca, None, &[&rustls::version::TLS13]);
    refused(&s, none).await.expect_err("no certificate");
    let old = client_config(&ca, None, &[&rustls::version::TLS12]);
    refused(&s, old).await.expect_err("TLS 1.2 only");
    let mut plain = tcp_from(s.addr, loopback(3)).await.expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("plain HTTP");
    let _silent = tcp_from(s.addr, loopback(3)).await.expect("connect");
    drop(tcp_from(s.addr, loopback(3)).await.expect("connect"));

    for (r, word) in [
        (Refusal::BadCertificate, "bad_certificate"),
        (Refusal::NoCertificate, "no_certificate"),
        (Refusal::Protocol, "protocol"),
        (Refusal::Malformed, "malformed"),
        (Refusal::HandshakeTimeout, "handshake_timeout"),
        (Refusal::Aborted, "aborted"),
    ] {
        assert!(
            s.seen.wait_for(r, 1, Duration::from_secs(3)).await,
            "{word} never reported"
        );
        assert_eq!(s.seen.metric(word), Some(1.0), "{word}");
    }
    // Reasons that did not happen are there at zero, and the refusals name the client.
    assert_eq!(s.seen.metric("sni"), Some(0.0));
    let events = s.seen.events.lock().expect("lock");
    assert_eq!(
        events.len(),
        6,
        "{:?}",
        events.iter().map(|e| e.0).collect::<Vec<_>>()
    );
    assert!(events.iter().all(|e| e.1.ip() == loopback(3)));
}

#[tokio::test]
async fn plain_http_has_the_same_caps_and_timeouts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Seen::default();
    let hook = seen.clone();
    let opts = ServeOptions {
        max_connections_per_ip: 2,
        idle_timeout: Duration::from_secs(1),
        on_refusal: Some(Arc::new(move |r: Refusal, peer: SocketAddr| {
            hook.events
                .lock()
                .expect("lock")
                .push((r, peer, Instant::now()));
        })),
        ..ServeOptions::default()
    };
    tokio::spawn(gateway::tls::serve_plain_with(
        listener,
        app(),
        std::future::pending(),
        opts,
    ));
    let get = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = tcp_from(addr, loopback(2)).await.expect("connect");
        c.write_all(get).await.expect("request");
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).await.expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        held.push(c);
    }
    let mut third = tcp_from(addr, loopback(2)).await.expect("connect");
    assert!(closed_within(&mut third, Duration::from_millis(500)).await);
    assert_eq!(seen.count(Refusal::ClientConnectionLimit), 1);
    // Idle after their answers: both closed about a second later.
    let t = Instant::now();
    for c in &mut held {
        assert!(
            closed_within(c, Duration::from_secs(3)).await,
            "idle, never closed"
        );
    }
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
