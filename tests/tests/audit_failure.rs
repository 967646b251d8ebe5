//! The audit log never fails open. `durability = "queued"`: a full disk makes every later
//! request a 503 (also after space returns, until restart), the admin metrics and the log say
//! so, and answered-but-unrecorded requests stay within `QUEUED_MAX_UNWRITTEN`, measured here
//! with a full disk and with `kill -9` under load. `durability = "fsync"`: nothing answered
//! is ever unrecorded, and the gateway recovers by itself when space returns.
//!
//! The log lives on a small tmpfs this test mounts (the tests run as root).
#![allow(clippy::disallowed_methods)] // mount, umount and kill -9 are the failures under test

use e2e::{curl_many, free_loopback_port, http_get, run_exporter, toml, Server};
use gateway::layer::audit::QUEUED_MAX_UNWRITTEN;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct SmallDisk(PathBuf);
impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).expect("mkdir");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount");
        assert!(
            ok.success(),
            "mount a tmpfs at {} (tests run as root)",
            at.display()
        );
        SmallDisk(at.to_owned())
    }
    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let p = self.0.join("filler");
        let mut f = std::fs::File::create(&p).expect("filler");
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        p
    }
}
impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    keyring: PathBuf,
    public: PathBuf,
    url: String,
    admin: SocketAddr,
    disk: Option<SmallDisk>,
    dir: PathBuf,
}

fn setup(durability: &str, tmpfs: bool) -> Setup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().to_owned();
    let disk = tmpfs.then(|| SmallDisk::mount(&d.join("disk"), "2m"));
    let log = if tmpfs {
        d.join("disk").join("log")
    } else {
        d.join("log")
    };
    let (port, admin_port) = (free_loopback_port(), free_loopback_port());
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
[server.admin]
listen = "127.0.0.1:{admin_port}"
{source}
[audit]
dir = "{log}"
key_file = "{d}/keyring.json"
signing_key_file = "{d}/signing.pem"
public_key_file = "{d}/public-key.pem"
durability = "{durability}"
"#,
            source = toml::replay_source(),
            log = log.display(),
            d = d.display(),
        ),
    )
    .expect("config");
    Setup {
        config,
        log,
        keyring: d.join("keyring.json"),
        public: d.join("public-key.pem"),
        url: format!("http://127.0.0.1:{port}/metrics"),
        admin: format!("127.0.0.1:{admin_port}").parse().expect("addr"),
        disk,
        dir: d,
        _tmp: tmp,
    }
}

impl Setup {
    fn start(&self, name: &str) -> Server {
        let server = Server::start(&self.config, &self.dir.join(name));
        server.wait_until("ready", Duration::from_secs(30), || {
            e2e::curl(&self.url.replace("/metrics", "/readyz"), &[]).0 == 200
        });
        server
    }
    /// The request ids of every request record in the log.
    fn recorded(&self) -> BTreeSet<String> {
        let s = |p: &Path| p.to_str().expect("UTF-8").to_owned();
        let verify = run_exporter(&[
            "audit",
            "verify",
            "--dir",
            &s(&self.log),
            "--public-key",
            &s(&self.public),
        ]);
        assert!(
            verify.status.success(),
            "the log verifies: {}",
            verify.stderr
        );
        let out = run_exporter(&[
            "audit",
            "export",
            "--dir",
            &s(&self.log),
            "--key-file",
            &s(&self.keyring),
        ]);
        assert!(out.status.success(), "export: {}", out.stderr);
        out.stdout_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["event"]["request_id"].as_str().map(str::to_owned))
            .collect()
    }
    fn metric(&self, name: &str) -> f64 {
        let r = http_get(
            self.admin,
            "/metrics",
            &[("Accept", "text/plain")],
            Duration::from_secs(10),
        )
        .expect("admin /metrics");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    }
}

/// Answered (not 503, not a connection failure) request ids.
fn answered(answers: &[(u16, String)]) -> Vec<String> {
    answers
        .iter()
        .filter(|(c, id)| *c != 0 && *c != 503 && !id.is_empty())
        .map(|(_, id)| id.clone())
        .collect()
}

#[test]
fn queued_mode_refuses_everything_after_a_write_failure_and_bounds_the_loss() {
    let s = setup("queued", true);
    let server = s.start("server.log");
    let mut sent = answered(&curl_many(&s.url, 100, 8, &[]));
    assert_eq!(sent.len(), 100);
    let filler = s.disk.as_ref().expect("disk").fill();
    let during = curl_many(&s.url, 1500, 16, &[]);
    let refused = during.iter().filter(|(c, _)| *c == 503).count();
    assert!(refused > 0, "a full disk is refused: {during:?}");
    sent.extend(answered(&during));
    // From the moment it is known, everything is refused, even after space returns.
    std::fs::remove_file(&filler).expect("free space");
    std::thread::sleep(Duration::from_millis(1500));
    let after = curl_many(&s.url, 100, 8, &[]);
    assert!(
        after.iter().all(|(c, _)| *c == 503),
        "sticky until restart: {after:?}"
    );
    assert_eq!(s.metric("slurm_exporter_gateway_audit_writer_failed"), 1.0);
    assert!(
        server.log().contains("audit writer failed"),
        "{}",
        server.log()
    );
    let status = server.terminate(Duration::from_secs(20)).expect("stop");
    assert!(status.success());
    let recorded = s.recorded();
    let missing = sent.iter().filter(|id| !recorded.contains(*id)).count();
    println!(
        "queued, full disk: {} answered, {} refused, {missing} answered without a record (bound {QUEUED_MAX_UNWRITTEN})",
        sent.len(),
        refused
    );
    assert!(
        missing as u64 <= QUEUED_MAX_UNWRITTEN,
        "{missing} unrecorded answers"
    );
}

#[test]
fn queued_mode_loses_at_most_the_bound_to_kill_9_under_load() {
    let s = setup("queued", false);
    let mut worst = 0;
    for round in 0..3 {
        let server = s.start(&format!("server{round}.log"));
        let url = s.url.clone();
        let load = std::thread::spawn(move || curl_many(&url, 3000, 16, &[]));
        std::thread::sleep(Duration::from_millis(700));
        let ok = Command::new("kill")
            .args(["-9", &server.pid().to_string()])
            .status()
            .expect("kill -9");
        assert!(ok.success());
        let answers = load.join().expect("load");
        drop(server);
        let sent = answered(&answers);
        assert!(sent.len() > 50, "load reached the gateway: {}", sent.len());
        let recorded = s.recorded();
        let missing = sent.iter().filter(|id| !recorded.contains(*id)).count();
        println!(
            "queued, kill -9 round {round}: {} answered, {missing} without a record (bound {QUEUED_MAX_UNWRITTEN})",
            sent.len()
        );
        assert!(
            missing as u64 <= QUEUED_MAX_UNWRITTEN,
            "round {round}: {missing}"
        );
        worst = worst.max(missing);
    }
    println!("queued, kill -9: worst {worst}");
}

#[test]
fn fsync_mode_never_answers_unrecorded_and_recovers_when_space_returns() {
    let s = setup("fsync", true);
    let server = s.start("server.log");
    let mut sent = answered(&curl_many(&s.url, 100, 8, &[]));
    let filler = s.disk.as_ref().expect("disk").fill();
    let during = curl_many(&s.url, 600, 16, &[]);
    assert!(
        during.iter().any(|(c, _)| *c == 503),
        "a full disk is refused"
    );
    sent.extend(answered(&during));
    assert_eq!(s.metric("slurm_exporter_gateway_audit_writer_failed"), 1.0);
    std::fs::remove_file(&filler).expect("free space");
    // Without a restart: the writer cuts back to its last durable record and carries on.
    server.wait_until("answers again", Duration::from_secs(15), || {
        curl_many(&s.url, 5, 1, &[]).iter().all(|(c, _)| *c == 200)
    });
    let after = curl_many(&s.url, 100, 8, &[]);
    assert!(after.iter().all(|(c, _)| *c == 200), "{after:?}");
    sent.extend(answered(&after));
    assert_eq!(s.metric("slurm_exporter_gateway_audit_writer_failed"), 0.0);
    let status = server.terminate(Duration::from_secs(20)).expect("stop");
    assert!(status.success());
    let recorded = s.recorded();
    let missing: Vec<&String> = sent.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(missing.is_empty(), "answered without a record: {missing:?}");
}
