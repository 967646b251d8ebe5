//! TLS and mTLS over real sockets on 127.0.0.1: the gateway's accept loop on one side, a
//! rustls client on the other, certificates from `devcerts`.

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use gateway::devcerts::{self, tenant_uri, DevCerts};
use gateway::tls::{
    fingerprint_sha256, serve_tls_with, ClientAuth, PeerIdentity, ReloadableTls, ServeOptions,
    TlsConfig, TlsVersion,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
const ONLY_12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

async fn who(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Option<Extension<PeerIdentity>>,
) -> String {
    match id {
        Some(Extension(id)) => format!(
            "peer={} sans={} cn={} fp={}",
            peer.ip(),
            id.sans.join(","),
            id.cn.unwrap_or_default(),
            id.fingerprint_sha256
        ),
        None => format!("peer={} anonymous", peer.ip()),
    }
}

fn app() -> Router {
    Router::new().route("/", get(who)).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "slow done"
        }),
    )
}

struct Server {
    addr: SocketAddr,
    tls: ReloadableTls,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

async fn start(cfg: TlsConfig) -> Server {
    start_with(cfg, ServeOptions::default()).await
}

async fn start_with(cfg: TlsConfig, opts: ServeOptions) -> Server {
    let tls = ReloadableTls::load(cfg).expect("TLS config loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (stop, rx) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = rx.await;
    };
    let task = tokio::spawn(serve_tls_with(listener, tls.clone(), app(), shutdown, opts));
    Server {
        addr,
        tls,
        stop,
        task,
    }
}

fn certs(dir: &Path) -> DevCerts {
    devcerts::generate(dir, &["alpha", "beta"]).expect("dev certs")
}

fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("read PEM")
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

fn file_fingerprint(path: &Path) -> String {
    fingerprint_sha256(&pem_certs(path)[0])
}

fn client(
    roots: &[&Path],
    cert: Option<(&Path, &Path)>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for r in roots {
        for c in pem_certs(r) {
            store.add(c).expect("root");
        }
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(store);
    Arc::new(match cert {
        Some((c, k)) => builder
            .with_client_auth_cert(
                pem_certs(c),
                PrivateKeyDer::from_pem_file(k).expect("client key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    })
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
    version: Option<ProtocolVersion>,
    server_fp: String,
}

async fn get_path(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
    path: &str,
    from: Option<IpAddr>,
) -> Result<Reply, String> {
    let exchange = async {
        let tcp = match from {
            Some(ip) => {
                let s = TcpSocket::new_v4().map_err(|e| e.to_string())?;
                s.bind(SocketAddr::new(ip, 0)).map_err(|e| e.to_string())?;
                s.connect(addr).await.map_err(|e| e.to_string())?
            }
            None => TcpStream::connect(addr).await.map_err(|e| e.to_string())?,
        };
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (version, server_fp) = {
            let conn = tls.get_ref().1;
            let fp = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| fingerprint_sha256(c))
                .unwrap_or_default();
            (conn.protocol_version(), fp)
        };
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let read = tls.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        // A server that closes without close_notify after a full response is still an
        // answer; no bytes at all is a refusal.
        if let Err(e) = read {
            if !text.contains("\r\n\r\n") {
                return Err(format!("read: {e}"));
            }
        }
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line: {head:?}"))?;
        Ok(Reply {
            status,
            body: body.to_owned(),
            version,
            server_fp,
        })
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

async fn fetch(addr: SocketAddr, cfg: Arc<ClientConfig>) -> Result<Reply, String> {
    get_path(addr, cfg, "/", None).await
}

fn mtls(c: &DevCerts, auth: ClientAuth) -> TlsConfig {
    c.tls_config(auth)
}

#[tokio::test]
async fn tls13_is_negotiated_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let s = start(mtls(&c, ClientAuth::NoClientCert)).await;
    let r = fetch(s.addr, client(&[&c.ca_cert], None, BOTH))
        .await
        .expect("served");
    assert_eq!(r.status, 200);
    assert_eq!(r.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(r.body, "peer=127.0.0.1 anonymous");
    assert_eq!(r.server_fp, file_fingerprint(&c.server_cert));
}

#[tokio::test]
async fn tls12_is_refused_unless_min_version_is_tls12() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let s = start(mtls(&c, ClientAuth::NoClientCert)).await;
    let e = fetch(s.addr, client(&[&c.ca_cert], None, ONLY_12))
        .await
        .expect_err("TLS 1.2 refused by default");
    assert_eq!(e, "handshake: received fatal alert: ProtocolVersion");

    let mut cfg = mtls(&c, ClientAuth::NoClientCert);
    cfg.min_version = TlsVersion::Tls12;
    let s = start(cfg).await;
    let r = fetch(s.addr, client(&[&c.ca_cert], None, ONLY_12))
        .await
        .expect("TLS 1.2 allowed");
    assert_eq!(r.version, Some(ProtocolVersion::TLSv1_2));
    let r = fetch(s.addr, client(&[&c.ca_cert], None, BOTH))
        .await
        .expect("TLS 1.3 still preferred");
    assert_eq!(r.version, Some(ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn dev_ca_client_cert_is_accepted_and_its_identity_reaches_the_handler() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let s = start(mtls(&c, ClientAuth::RequireAndVerifyClientCert)).await;
    let alpha = c.client("alpha").expect("alpha");
    let r = fetch(
        s.addr,
        client(&[&c.ca_cert], Some((&alpha.cert, &alpha.key)), BOTH),
    )
    .await
    .expect("served");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        format!(
            "peer=127.0.0.1 sans={} cn=alpha fp={}",
            tenant_uri("alpha"),
            file_fingerprint(&alpha.cert)
        )
    );
}

#[tokio::test]
async fn tls12_client_cert_identity_reaches_the_handler_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let mut cfg = mtls(&c, ClientAuth::RequireAndVerifyClientCert);
    cfg.min_version = TlsVersion::Tls12;
    let s = start(cfg).await;
    let beta = c.client("beta").expect("beta");
    let r = fetch(
        s.addr,
        client(&[&c.ca_cert], Some((&beta.cert, &beta.key)), ONLY_12),
    )
    .await
    .expect("served");
    assert_eq!(r.version, Some(ProtocolVersion::TLSv1_2));
    assert!(r.body.contains("cn=beta"), "{}", r.body);
}

/// A self-signed certificate that claims tenant alpha's identity.
fn self_signed_alpha(dir: &Path) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "alpha");
    p.subject_alt_names = vec![rcgen::SanType::URI(
        tenant_uri("alpha").try_into().expect("uri"),
    )];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.self_signed(&key).expect("self-signed");
    let (cp, kp) = (dir.join("evil.pem"), dir.join("evil-key.pem"));
    std::fs::write(&cp, cert.pem()).expect("write");
    std::fs::write(&kp, key.serialize_pem()).expect("write");
    (cp, kp)
}

#[tokio::test]
async fn self_signed_client_cert_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(&dir.path().join("dev"));
    let (cert, key) = self_signed_alpha(dir.path());
    for auth in [
        ClientAuth::RequireAndVerifyClientCert,
        ClientAuth::VerifyClientCertIfGiven,
    ] {
        let s = start(mtls(&c, auth)).await;
        let e = fetch(s.addr, client(&[&c.ca_cert], Some((&cert, &key)), BOTH))
            .await
            .expect_err("self-signed refused");
        assert!(e.ends_with("fatal alert: UnknownCA"), "{auth:?}: {e}");
    }
}

#[tokio::test]
async fn valid_cert_with_a_san_not_allowed_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let mut cfg = mtls(&c, ClientAuth::RequireAndVerifyClientCert);
    cfg.client_allowed_sans = Some(vec![tenant_uri("alpha")]);
    let s = start(cfg).await;
    let (alpha, beta) = (
        c.client("alpha").expect("alpha"),
        c.client("beta").expect("beta"),
    );
    let r = fetch(
        s.addr,
        client(&[&c.ca_cert], Some((&alpha.cert, &alpha.key)), BOTH),
    )
    .await
    .expect("alpha is allowed");
    assert!(r.body.contains("cn=alpha"), "{}", r.body);
    let e = fetch(
        s.addr,
        client(&[&c.ca_cert], Some((&beta.cert, &beta.key)), BOTH),
    )
    .await
    .expect_err("beta's SAN is not allowed");
    assert!(e.ends_with("fatal alert: AccessDenied"), "{e}");
}

#[tokio::test]
async fn no_client_cert_is_refused_when_required_and_anonymous_when_optional() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let s = start(mtls(&c, ClientAuth::RequireAndVerifyClientCert)).await;
    let e = fetch(s.addr, client(&[&c.ca_cert], None, BOTH))
        .await
        .expect_err("a certificate is required");
    assert!(e.ends_with("fatal alert: CertificateRequired"), "{e}");

    let s = start(mtls(&c, ClientAuth::VerifyClientCertIfGiven)).await;
    let r = fetch(s.addr, client(&[&c.ca_cert], None, BOTH))
        .await
        .expect("optional");
    assert_eq!(r.body, "peer=127.0.0.1 anonymous");
}

#[tokio::test]
async fn an_unverified_client_cert_gives_no_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(&dir.path().join("dev"));
    let (cert, key) = self_signed_alpha(dir.path());
    let s = start(mtls(&c, ClientAuth::RequireAnyClientCert)).await;
    let r = fetch(s.addr, client(&[&c.ca_cert], Some((&cert, &key)), BOTH))
        .await
        .expect("any certificate is taken");
    assert_eq!(r.body, "peer=127.0.0.1 anonymous");
    let e = fetch(s.addr, client(&[&c.ca_cert], None, BOTH))
        .await
        .expect_err("but one is required");
    assert!(e.ends_with("fatal alert: CertificateRequired"), "{e}");
}

#[tokio::test]
async fn reload_with_a_broken_key_keeps_the_old_cert_and_a_new_cert_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = certs(&dir.path().join("old"));
    let new = certs(&dir.path().join("new"));
    let live = dir.path().join("live");
    std::fs::create_dir(&live).expect("mkdir");
    let (cert, key) = (live.join("server.pem"), live.join("server-key.pem"));
    std::fs::copy(&old.server_cert, &cert).expect("copy");
    std::fs::copy(&old.server_key, &key).expect("copy");
    let cfg = TlsConfig {
        cert_file: cert.clone(),
        key_file: key.clone(),
        ..mtls(&old, ClientAuth::NoClientCert)
    };
    let s = start(cfg).await;
    let trust = || client(&[&old.ca_cert, &new.ca_cert], None, BOTH);
    let old_fp = file_fingerprint(&old.server_cert);
    let new_fp = file_fingerprint(&new.server_cert);

    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    )
    .expect("break key");
    let e = s.tls.reload().expect_err("broken key refused").to_string();
    assert!(e.starts_with(&format!("key_file {}", key.display())), "{e}");
    let r = fetch(s.addr, trust()).await.expect("still serving");
    assert_eq!(r.server_fp, old_fp);

    // A good key that is not the certificate's.
    std::fs::copy(&new.server_key, &key).expect("copy");
    let e = s.tls.reload().expect_err("mismatch refused").to_string();
    assert!(e.contains("does not match the certificate"), "{e}");
    assert_eq!(s.tls.server_cert_fingerprint(), old_fp);

    std::fs::copy(&new.server_cert, &cert).expect("copy");
    s.tls.reload().expect("new pair loads");
    assert_eq!(s.tls.server_cert_fingerprint(), new_fp);
    let r = fetch(s.addr, trust()).await.expect("serving the new cert");
    assert_eq!(r.server_fp, new_fp);
}

#[test]
fn an_empty_client_ca_file_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(&dir.path().join("dev"));
    for (name, content) in [
        ("empty.pem", ""),
        ("text.pem", "this is not a certificate\n"),
    ] {
        let ca = dir.path().join(name);
        std::fs::write(&ca, content).expect("write");
        let mut cfg = mtls(&c, ClientAuth::RequireAndVerifyClientCert);
        cfg.client_ca_file = Some(ca.clone());
        let e = ReloadableTls::load(cfg).expect_err("refused").to_string();
        assert_eq!(
            e,
            format!(
                "client_ca_file {}: contains no certificate (expected PEM blocks \"-----BEGIN CERTIFICATE-----\")",
                ca.display()
            )
        );
    }
    let mut cfg = mtls(&c, ClientAuth::RequireAndVerifyClientCert);
    cfg.client_ca_file = Some(dir.path().join("missing.pem"));
    let e = ReloadableTls::load(cfg).expect_err("refused").to_string();
    assert!(e.contains("missing.pem: cannot read"), "{e}");
}

#[test]
fn missing_or_wrong_server_files_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let mut cfg = mtls(&c, ClientAuth::NoClientCert);
    cfg.cert_file = c.server_key.clone();
    let e = ReloadableTls::load(cfg)
        .expect_err("a key is no cert")
        .to_string();
    assert!(
        e.starts_with(&format!(
            "cert_file {}: contains no certificate",
            c.server_key.display()
        )),
        "{e}"
    );
    let mut cfg = mtls(&c, ClientAuth::NoClientCert);
    cfg.key_file = c.server_cert.clone();
    let e = ReloadableTls::load(cfg)
        .expect_err("a cert is no key")
        .to_string();
    assert!(
        e.starts_with(&format!(
            "key_file {}: contains no private key",
            c.server_cert.display()
        )),
        "{e}"
    );
}

#[tokio::test]
async fn a_handshake_that_never_completes_is_dropped_after_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let opts = ServeOptions {
        handshake_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    let s = start_with(mtls(&c, ClientAuth::NoClientCert), opts).await;
    let mut silent = TcpStream::connect(s.addr).await.expect("connect");
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("closed before the test's own timeout");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test]
async fn silent_connections_from_one_address_cannot_take_every_handshake_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let opts = ServeOptions {
        handshake_timeout: Duration::from_secs(5),
        max_handshakes: 4,
        max_handshakes_per_ip: 2,
        ..ServeOptions::default()
    };
    let s = start_with(mtls(&c, ClientAuth::NoClientCert), opts).await;
    let attacker: IpAddr = [127, 0, 0, 2].into();
    let mut held = Vec::new();
    for _ in 0..8 {
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::new(attacker, 0))
            .expect("bind 127.0.0.2");
        held.push(sock.connect(s.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    let r = get_path(s.addr, client(&[&c.ca_cert], None, BOTH), "/", None)
        .await
        .expect("another address is served");
    assert_eq!(r.status, 200);
    // Had the attacker taken every slot, this would wait for its 5 s handshake timeout.
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    // The attacker's connections beyond its two slots were closed at once.
    let mut closed = 0;
    for mut h in held {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), h.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 6);
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_and_stops_accepting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = certs(dir.path());
    let s = start(mtls(&c, ClientAuth::NoClientCert)).await;
    let cfg = client(&[&c.ca_cert], None, BOTH);
    let slow = tokio::spawn(get_path(s.addr, cfg.clone(), "/slow", None));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = s.stop.send(());
    let r = slow
        .await
        .expect("join")
        .expect("in-flight request finished");
    assert_eq!(r.body, "slow done");
    let served = tokio::time::timeout(Duration::from_secs(5), s.task)
        .await
        .expect("server stopped")
        .expect("join");
    assert!(served.is_ok(), "{served:?}");
    assert!(fetch(s.addr, cfg).await.is_err());
}
