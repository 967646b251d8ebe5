//! The README's main command: `slurm-exporter demo` serves a simulated cluster over HTTPS
//! with generated credentials and writes `demo.json`; a script can use it as the README
//! says. Each sample tenant sees only its accounts, pseudonymized; the operator sees all.
#![allow(clippy::disallowed_methods)] // the demo binary and curl run as a user would run them

use e2e::{assert_promtool_ok, curl, exporter_command, free_loopback_port, run, Exposition};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

#[test]
fn the_demo_serves_https_to_its_sample_tenants_as_demo_json_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_loopback_port();
    let listen = format!("127.0.0.1:{port}");
    let state = dir.path().to_str().expect("utf-8");
    let mut child = exporter_command(&[
        "demo",
        "--listen",
        &listen,
        "--nodes",
        "100",
        "--jobs",
        "1000",
        "--state-dir",
        state,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("demo starts");
    let info_path = dir.path().join("demo.json");
    let t = Instant::now();
    let info: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(&info_path) {
            if let Ok(v) = serde_json::from_str(&text) {
                break v;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no demo.json after 60 s"
        );
        sleep(Duration::from_millis(200));
    };
    let s = |v: &serde_json::Value| v.as_str().expect("a string in demo.json").to_owned();
    let url = s(&info["url"]);
    let ca = s(&info["ca_file"]);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(std::path::Path::new(&ca).is_absolute());
    let t = Instant::now();
    while curl(&format!("{url}/readyz"), &["--cacert", &ca]).0 != 200 {
        assert!(t.elapsed() < Duration::from_secs(60), "demo not ready");
        sleep(Duration::from_millis(300));
    }
    let metrics = format!("{url}/metrics");
    assert_eq!(curl(&metrics, &["--cacert", &ca]).0, 401, "no credentials");

    let tenants = info["tenants"].as_array().expect("tenants");
    assert_eq!(tenants.len(), 2);
    for t in tenants {
        assert_eq!(t["role"], "viewer");
        let accounts: Vec<String> = t["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .map(s)
            .collect();
        let bearer = format!("Authorization: Bearer {}", s(&t["token"]));
        let (code, body) = curl(&metrics, &["--cacert", &ca, "-H", &bearer]);
        assert_eq!(code, 200, "{}: {body}", t["name"]);
        assert_promtool_ok("demo tenant view", body.as_bytes());
        let e = Exposition::parse(&body).expect("exposition");
        let seen: Vec<String> = e
            .family("slurm_account_jobs")
            .filter_map(|(l, _)| {
                l.iter()
                    .find(|(k, _)| k == "account")
                    .map(|(_, v)| v.clone())
            })
            .collect();
        assert!(!seen.is_empty(), "{}: no account series", t["name"]);
        assert!(
            seen.iter().all(|a| accounts.contains(a)),
            "{} sees {seen:?}, owns {accounts:?}",
            t["name"]
        );
        assert!(
            e.family("slurm_user_jobs")
                .all(|(l, _)| l.iter().any(|(k, v)| k == "user" && v.starts_with("u1_"))),
            "{}: user names must be pseudonyms",
            t["name"]
        );
        // The same tenant by client certificate.
        let (code, _) = curl(
            &metrics,
            &[
                "--cacert",
                &ca,
                "--cert",
                &s(&t["client_cert"]),
                "--key",
                &s(&t["client_key"]),
            ],
        );
        assert_eq!(code, 200, "{} by certificate", t["name"]);
    }
    let op = format!("Authorization: Bearer {}", s(&info["operator_token"]));
    let (code, body) = curl(&metrics, &["--cacert", &ca, "-H", &op]);
    assert_eq!(code, 200);
    let e = Exposition::parse(&body).expect("exposition");
    assert_eq!(e.get("slurm_cluster_nodes_configured", &[]), Some(100.0));

    // The demo audits: stop it cleanly (the log is sealed), verify with the public key from
    // demo.json, and read the records back with the keyring.
    let pid = child.id().to_string();
    let killed = run(
        Command::new("kill").args(["-TERM", &pid]),
        None,
        Duration::from_secs(5),
    )
    .expect("kill runs");
    assert!(killed.status.success());
    let t = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        assert!(t.elapsed() < Duration::from_secs(15), "demo did not stop");
        sleep(Duration::from_millis(50));
    }
    let (audit_dir, key, public) = (
        s(&info["audit_dir"]),
        s(&info["audit_key_file"]),
        s(&info["audit_public_key"]),
    );
    let verified = run(
        &mut exporter_command(&[
            "audit",
            "verify",
            "--dir",
            &audit_dir,
            "--public-key",
            &public,
        ]),
        None,
        Duration::from_secs(30),
    )
    .expect("verify runs");
    assert!(verified.status.success(), "{}", verified.stderr);
    let export = run(
        &mut exporter_command(&["audit", "export", "--dir", &audit_dir, "--key-file", &key]),
        None,
        Duration::from_secs(30),
    )
    .expect("export runs");
    assert!(export.status.success(), "{}", export.stderr);
    let out = export.stdout_text();
    let scrapes = out
        .lines()
        .filter(|l| l.contains("\"route\":\"/metrics\"") && l.contains("\"status\":200"))
        .count();
    assert_eq!(
        scrapes, 5,
        "two tenants by token and certificate, the operator:\n{out}"
    );
    assert!(
        !out.contains(&s(&info["operator_token"])),
        "no credential in the log"
    );
}
