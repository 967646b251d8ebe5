//! The gateway ships its audit checkpoints to a witness (`slurm-exporter audit witness`) over
//! TLS on 127.0.0.1, and `audit verify --witness` then catches what the log alone cannot: a
//! cut tail, a removed newest segment, an older copy of the log put back (and the gateway
//! restarted on it, whose checkpoints the witness refuses and records).

use e2e::{curl, curl_many, exporter_command, free_loopback_port, run_exporter, toml, Server};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Witness(Child);
impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        if e.file_name().to_string_lossy().ends_with(".seg") {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

fn wait_for(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_witness_over_tls_catches_a_cut_tail_a_removed_segment_and_a_restored_older_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let made = run_exporter(&["dev-certs", "--out", s(d)]);
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
    let ca = d.join("ca.pem");
    let (gw_port, w_port) = (free_loopback_port(), free_loopback_port());
    let token = d.join("witness.token");
    std::fs::write(&token, "witness-token-0123456789abcdef\n").expect("token");
    let log = d.join("audit").join("log");
    let public = d.join("audit").join("public-key.pem");
    let witness_url = format!("https://127.0.0.1:{w_port}");
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"{server}
{source}
[audit]
dir = "{log}"
key_file = "{a}/keyring.json"
signing_key_file = "{a}/signing.pem"
public_key_file = "{public}"
checkpoint_every_records = 25
checkpoint_interval_seconds = 1

[audit.publish]
url = "{witness_url}/v1/checkpoints"
ca_file = "{ca}"
token_file = "{token}"
interval_seconds = 1
"#,
            server = toml::tls_server(gw_port, d),
            source = toml::replay_source(),
            log = log.display(),
            a = d.join("audit").display(),
            public = public.display(),
            ca = ca.display(),
            token = token.display(),
        ),
    )
    .expect("config");
    let gw_url = format!("https://127.0.0.1:{gw_port}");
    let server = Server::start(&config, &d.join("gateway.log"));
    server.wait_until("gateway ready", Duration::from_secs(30), || {
        curl(&format!("{gw_url}/readyz"), &["--cacert", s(&ca)]).0 == 200
    });
    // The witness starts after the gateway: the publisher retries until it is there.
    let wdir = d.join("witness");
    let wlog = std::fs::File::create(d.join("witness.log")).expect("witness log");
    let witness = Witness(
        exporter_command(&[
            "audit",
            "witness",
            "--listen",
            &format!("127.0.0.1:{w_port}"),
            "--dir",
            s(&wdir),
            "--public-key",
            s(&public),
            "--tls-cert",
            s(&d.join("server.pem")),
            "--tls-key",
            s(&d.join("server-key.pem")),
            "--token-file",
            s(&token),
        ])
        .stdin(Stdio::null())
        .stdout(wlog.try_clone().expect("clone"))
        .stderr(wlog)
        .spawn()
        .expect("start the witness"),
    );
    let latest = || {
        curl(
            &format!("{witness_url}/v1/checkpoints/latest"),
            &["--cacert", s(&ca)],
        )
    };
    wait_for("a witnessed checkpoint", Duration::from_secs(30), || {
        latest().0 == 200
    });

    let answers = curl_many(&format!("{gw_url}/metrics"), 150, 8, &["--cacert", s(&ca)]);
    assert!(answers.iter().all(|(c, _)| *c == 200), "{answers:?}");
    // A restart: the log continues in a new segment, the witness's chain across it.
    let status = server.terminate(Duration::from_secs(20)).expect("stop");
    assert!(status.success(), "{status}");
    let server = Server::start(&config, &d.join("gateway1.log"));
    server.wait_until("gateway ready", Duration::from_secs(30), || {
        curl(&format!("{gw_url}/readyz"), &["--cacert", s(&ca)]).0 == 200
    });
    let answers = curl_many(&format!("{gw_url}/metrics"), 100, 8, &["--cacert", s(&ca)]);
    assert!(answers.iter().all(|(c, _)| *c == 200), "{answers:?}");
    // An older copy of the log, taken while it runs (a backup to restore later).
    let older = d.join("older");
    copy_dir(&log, &older);
    let answers = curl_many(&format!("{gw_url}/metrics"), 150, 8, &["--cacert", s(&ca)]);
    assert!(answers.iter().all(|(c, _)| *c == 200));
    std::thread::sleep(Duration::from_millis(1500));
    let status = server.terminate(Duration::from_secs(20)).expect("stop");
    assert!(status.success(), "{status}");

    // The shutdown published the final seal: the witness holds the log's last checkpoint.
    let last_cp = || {
        let cps = run_exporter(&["audit", "checkpoints", "--dir", s(&log)]);
        cps.stdout_text()
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    };
    let final_cp = last_cp();
    assert!(final_cp.contains("\"sealed\":true"), "{final_cp}");
    assert_eq!(
        latest().1.trim(),
        final_cp.trim(),
        "the witness holds the final seal"
    );

    let verify = |dir: &Path, with_witness: bool| {
        let mut args = vec![
            "audit",
            "verify",
            "--dir",
            s(dir),
            "--public-key",
            s(&public),
        ];
        if with_witness {
            args.extend(["--witness", &witness_url, "--witness-ca", s(&ca)]);
        }
        run_exporter(&args)
    };
    let ok = verify(&log, true);
    assert!(ok.status.success(), "intact: {}", ok.stderr);
    assert!(ok.stdout_text().contains("witness"), "{}", ok.stdout_text());
    // The witness's file works offline too.
    let offline = run_exporter(&[
        "audit",
        "verify",
        "--dir",
        s(&log),
        "--public-key",
        s(&public),
        "--witness",
        s(&wdir.join("checkpoints.jsonl")),
    ]);
    assert!(offline.status.success(), "{}", offline.stderr);

    // 1. The tail cut: passes alone (looks like a crash), caught by the witness.
    let cut = d.join("cut");
    copy_dir(&log, &cut);
    let newest = segments(&cut).pop().expect("a segment");
    let bytes = std::fs::read(&newest).expect("read");
    std::fs::write(&newest, &bytes[..bytes.len() - 7]).expect("cut");
    assert!(
        verify(&cut, false).status.success(),
        "alone, a cut tail looks like a crash"
    );
    let r = verify(&cut, true);
    assert!(!r.status.success(), "the witness catches a cut tail");
    assert!(r.stderr.contains("Truncated"), "{}", r.stderr);

    // 2. The newest segment removed.
    let removed = d.join("removed");
    copy_dir(&log, &removed);
    std::fs::remove_file(segments(&removed).pop().expect("a segment")).expect("remove");
    assert!(
        verify(&removed, false).status.success(),
        "alone, nothing shows"
    );
    let r = verify(&removed, true);
    assert!(
        !r.status.success(),
        "the witness catches a removed newest segment"
    );
    assert!(r.stderr.contains("Truncated"), "{}", r.stderr);

    // 3. An older copy restored.
    assert!(
        verify(&older, false).status.success(),
        "alone, the older copy looks fine"
    );
    let r = verify(&older, true);
    assert!(!r.status.success(), "the witness catches an older copy");
    assert!(r.stderr.contains("NOT intact"), "{}", r.stderr);

    // 4. The older copy put back and the gateway restarted on it: its new checkpoints do
    // not extend what the witness holds; it refuses them and records the attempt.
    std::fs::remove_dir_all(&log).expect("rm log");
    copy_dir(&older, &log);
    let server = Server::start(&config, &d.join("gateway2.log"));
    server.wait_until("gateway ready again", Duration::from_secs(30), || {
        curl(&format!("{gw_url}/readyz"), &["--cacert", s(&ca)]).0 == 200
    });
    let refused = || curl(&format!("{witness_url}/v1/refused"), &["--cacert", s(&ca)]).1;
    wait_for(
        "the witness refuses the rolled-back log",
        Duration::from_secs(30),
        || refused().contains("rollback") || refused().contains("fork"),
    );
    server.wait_until("the gateway reports it", Duration::from_secs(10), || {
        server.log().contains("not published")
    });
    let status = server.terminate(Duration::from_secs(20)).expect("stop");
    assert!(status.success());
    assert_eq!(
        latest().1.trim(),
        final_cp.trim(),
        "the witness kept its checkpoint"
    );
    let r = verify(&log, true);
    assert!(
        !r.status.success(),
        "the restored log fails against the witness"
    );

    // The witness takes nothing signed by another key, nor anything without the token.
    let other = d.join("other-log");
    let forger = audit::AuditLog::open(
        &other,
        audit::Config::default(),
        audit::Keyring::generate().expect("keyring"),
        audit::generate_signing_key().expect("key"),
    )
    .expect("another log");
    let forged = forger.checkpoint().expect("checkpoint").to_json_line();
    forger.close().expect("close");
    let body = d.join("forged.json");
    std::fs::write(&body, forged).expect("write");
    let post = |extra: &[&str]| {
        let mut args = vec!["--cacert", s(&ca), "-X", "POST", "--data-binary"];
        let at = format!("@{}", s(&body));
        args.push(Box::leak(at.into_boxed_str()));
        args.extend_from_slice(extra);
        curl(&format!("{witness_url}/v1/checkpoints"), &args).0
    };
    assert_eq!(post(&[]), 401, "no token");
    let auth = "Authorization: Bearer witness-token-0123456789abcdef";
    assert_eq!(post(&["-H", auth]), 403, "bad signature");
    assert!(refused().contains("signature does not verify"));
    drop(witness);
}
