//! The real binary over TLS, as a scraper sees it: `dev-certs`, then `serve` with mutual TLS
//! and the simulator, scraped with curl (a client outside our code). No Slurm needed.
#![allow(clippy::disallowed_methods)] // curl is the independent client under test

use e2e::{assert_promtool_ok, free_loopback_port, run, run_exporter, Exposition, Server};
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

struct Curl {
    ok: bool,
    body: String,
    stderr: String,
}

fn curl(url: &str, args: &[&str]) -> Curl {
    let r = run(
        Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .arg(url),
        None,
        Duration::from_secs(20),
    )
    .expect("curl runs");
    Curl {
        ok: r.status.success(),
        body: String::from_utf8_lossy(&r.stdout).into_owned(),
        stderr: r.stderr,
    }
}

fn config(dir: &Path, port: u16, client_auth: &str, allowed: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[server.tls]
cert_file = "{d}/server.pem"
key_file = "{d}/server-key.pem"
client_auth_type = "{client_auth}"
client_ca_file = "{d}/ca.pem"
{allowed}

[source]
kind = "sim"
interval_seconds = 60

[source.sim]
nodes = 50
jobs = 500
"#,
        d = dir.display()
    );
    let p = dir.join(format!("config-{port}.toml"));
    std::fs::write(&p, text).expect("write config");
    p
}

fn wait_ready(url: &str, certs: &[&str]) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        let r = curl(&format!("{url}/readyz"), certs);
        if r.ok && r.body.starts_with("ready") {
            return;
        }
        sleep(Duration::from_millis(200));
    }
    panic!("the TLS server did not become ready within 30 s");
}

#[test]
fn mutual_tls_scrape_with_dev_certs_and_the_refusals_around_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let made = run_exporter(&["dev-certs", "--out", d.to_str().expect("utf-8")]);
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
    let ca = d.join("ca.pem");
    let (alpha, alpha_key) = (d.join("client-alpha.pem"), d.join("client-alpha-key.pem"));
    let (beta, beta_key) = (d.join("client-beta.pem"), d.join("client-beta-key.pem"));
    let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let port = free_loopback_port();
    let cfg = config(
        d,
        port,
        "RequireAndVerifyClientCert",
        r#"client_allowed_sans = ["spiffe://slurm-exporter/tenant/alpha"]"#,
    );
    let server = Server::start(&cfg, &d.join("server.log"));
    let url = format!("https://127.0.0.1:{port}");
    let (ca, alpha, alpha_key) = (s(&ca), s(&alpha), s(&alpha_key));
    let with_alpha = ["--cacert", &ca, "--cert", &alpha, "--key", &alpha_key];
    wait_ready(&url, &with_alpha);

    // The allowed client gets a valid exposition over TLS 1.3.
    let r = curl(&format!("{url}/metrics"), &with_alpha);
    assert!(r.ok, "alpha's scrape failed: {}", r.stderr);
    assert_promtool_ok("metrics over mTLS", r.body.as_bytes());
    let e = Exposition::parse(&r.body).expect("exposition parses");
    assert_eq!(e.get("slurm_cluster_nodes_configured", &[]), Some(50.0));
    let v = curl(
        &format!("{url}/healthz"),
        &[&with_alpha[..], &["-v", "-o", "/dev/null"]].concat(),
    );
    assert!(v.stderr.contains("TLSv1.3"), "negotiated: {}", v.stderr);

    // No client certificate: refused in the handshake.
    let r = curl(&format!("{url}/metrics"), &["--cacert", &ca]);
    assert!(!r.ok, "a scrape without a client certificate must fail");
    // A certificate from the right CA whose SAN is not allowed: refused too.
    let r = curl(
        &format!("{url}/metrics"),
        &["--cacert", &ca, "--cert", &s(&beta), "--key", &s(&beta_key)],
    );
    assert!(!r.ok, "beta is not in client_allowed_sans");
    // TLS 1.2 only: refused (1.3 is the default minimum).
    let r = curl(
        &format!("{url}/metrics"),
        &[&with_alpha[..], &["--tls-max", "1.2"]].concat(),
    );
    assert!(!r.ok, "TLS 1.2 must be refused by default");
    // Plain HTTP on the TLS port: no answer.
    let r = curl(&format!("http://127.0.0.1:{port}/metrics"), &[]);
    assert!(
        !r.ok || r.body.is_empty(),
        "plain HTTP must not get metrics"
    );

    let status = server
        .terminate(Duration::from_secs(15))
        .expect("server stops");
    assert!(status.success(), "serve exits 0 on SIGTERM, got {status}");
}

#[test]
fn off_loopback_listening_without_mutual_tls_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "[server]\nlisten = \"0.0.0.0:9341\"\n[source]\nkind = \"sim\"\n",
    )
    .expect("write");
    let r = run_exporter(&["check-config", "--config", p.to_str().expect("utf-8")]);
    assert!(!r.status.success());
    assert!(
        r.stderr.contains("RequireAndVerifyClientCert"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
}
