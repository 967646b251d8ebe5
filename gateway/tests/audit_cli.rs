//! The auditor's commands on a real log: `audit verify` passes on an intact log, fails with
//! the record's sequence number when one byte is flipped; `export` decrypts; `checkpoints`
//! lists signed checkpoints; `rotate-key` keeps old records readable.
#![allow(clippy::disallowed_methods)] // runs the real binary, as an auditor would

use std::path::Path;
use std::process::Command;

fn bin(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slurm-exporter"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn verify_export_checkpoints_and_rotation_on_a_real_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    let ring_path = tmp.path().join("keyring.json");
    let pub_path = tmp.path().join("audit.pub.pem");
    let ring = audit::Keyring::generate().expect("keyring");
    ring.save(&ring_path).expect("save keyring");
    let signing = audit::generate_signing_key().expect("signing key");
    audit::save_public_key(&signing.verifying_key(), &pub_path).expect("save public key");
    {
        let log =
            audit::AuditLog::open(&dir, audit::Config::default(), ring, signing).expect("open log");
        for i in 0..20 {
            log.append(&serde_json::json!({"kind": "request", "tenant": "alpha", "i": i}))
                .expect("append");
        }
        log.checkpoint().expect("checkpoint");
        log.close().expect("close");
    }
    let (ok, out, err) = bin(&[
        "audit",
        "verify",
        "--dir",
        s(&dir),
        "--public-key",
        s(&pub_path),
    ]);
    assert!(ok, "intact log must verify: {err}");
    assert!(out.contains("intact"), "{out}");

    let (ok, out, err) = bin(&[
        "audit",
        "export",
        "--dir",
        s(&dir),
        "--key-file",
        s(&ring_path),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("\"tenant\":\"alpha\""))
            .count(),
        20
    );

    let (ok, out, err) = bin(&["audit", "checkpoints", "--dir", s(&dir)]);
    assert!(ok, "{err}");
    assert!(out.lines().count() >= 1, "at least the explicit checkpoint");

    let (ok, out, err) = bin(&["audit", "rotate-key", "--key-file", s(&ring_path)]);
    assert!(ok && out.contains("new active key"), "{out}{err}");
    let (ok, out, _) = bin(&[
        "audit",
        "export",
        "--dir",
        s(&dir),
        "--key-file",
        s(&ring_path),
    ]);
    assert!(
        ok && out.lines().count() >= 20,
        "old records stay readable after rotation"
    );

    // One flipped byte in the middle of the first segment: named, non-zero exit.
    let seg = std::fs::read_dir(&dir)
        .expect("log dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&seg).expect("read segment");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&seg, bytes).expect("write segment");
    let (ok, _, err) = bin(&[
        "audit",
        "verify",
        "--dir",
        s(&dir),
        "--public-key",
        s(&pub_path),
    ]);
    assert!(!ok, "a flipped byte must fail verification");
    assert!(err.contains("NOT intact"), "{err}");
    assert!(
        err.contains("seq") || err.contains("record"),
        "names the record: {err}"
    );
}
