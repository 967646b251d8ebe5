//! Auditors check signatures with standard tools: the signing key is PKCS#8 PEM that the real
//! `openssl` binary reads, and audit/README.md's command verifies a checkpoint signature.
#![allow(clippy::disallowed_methods)] // the real openssl, jq and xxd are the auditor's tools under test

mod common;

use std::process::Command;

use common::{config, event, Fixture};

/// The command of audit/README.md ("Checking a signature with OpenSSL"), verbatim.
const README_COMMAND: &str = r#"jq -r .signed_hex checkpoint.json | xxd -r -p > signed.bin
jq -r .signature checkpoint.json | xxd -r -p > signature.bin
openssl pkeyutl -verify -pubin -inkey audit-signing.pub.pem -rawin \
    -in signed.bin -sigfile signature.bin"#;

fn sh(dir: &std::path::Path, script: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("run sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_readme_openssl_command_checks_a_checkpoint_signature() {
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(README_COMMAND),
        "audit/README.md shows the command this test runs"
    );
    let fx = Fixture::new();
    let d = fx.tmp.path();
    audit::save_signing_key(&fx.signing, &d.join("audit-signing.pem")).expect("save key");
    audit::save_public_key(&fx.public, &d.join("audit-signing.pub.pem")).expect("save pub");
    // OpenSSL reads the private key, and derives the same public key from it.
    let (ok, out) = sh(d, "openssl pkey -in audit-signing.pem -pubout");
    assert!(ok, "openssl reads the PKCS#8 signing key: {out}");
    let ours = std::fs::read_to_string(d.join("audit-signing.pub.pem")).expect("pub");
    assert_eq!(out.trim(), ours.trim());

    let log = fx.open(config());
    log.append(&event(1)).expect("append");
    let cp = log.checkpoint().expect("checkpoint");
    log.close().expect("close");
    std::fs::write(d.join("checkpoint.json"), cp.to_json_line()).expect("write");
    let (ok, out) = sh(d, README_COMMAND);
    assert!(
        ok && out.contains("Signature Verified Successfully"),
        "{out}"
    );

    // A changed statement (a later record claimed) fails under OpenSSL too.
    let mut forged: serde_json::Value = serde_json::from_str(&cp.to_json_line()).expect("json");
    let hex = forged["signed_hex"].as_str().expect("hex").to_owned();
    let flipped = format!(
        "{}{}",
        &hex[..60],
        if &hex[60..61] == "0" { "1" } else { "0" }
    ) + &hex[61..];
    forged["signed_hex"] = flipped.into();
    std::fs::write(d.join("checkpoint.json"), forged.to_string()).expect("write");
    let (ok, out) = sh(d, README_COMMAND);
    assert!(!ok, "a forged statement does not verify: {out}");
}
