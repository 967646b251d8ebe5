//! The audit trail of real gateway traffic: the binary serves tenants over TLS with `[audit]`
//! on; afterwards `audit export` shows one record per request (who, tenant, role, route,
//! decision and policy, status, series, bytes, latency, client address), authentication
//! failures, the PII lookup, start-up and shutdown, and no credential; `audit verify` passes
//! on the log and fails, naming the record, on a copy with a flipped byte or a cut tail.

use e2e::{curl, free_loopback_port, new_token, run_exporter, toml, Server};
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

fn config(d: &Path, port: u16, tokens: &[&str]) -> String {
    format!(
        r#"{server}
{source}
[pii]
key_file = "{d}/pii.key"

{policies}
[[tenants]]
name = "alpha"
accounts = ["physics"]

[[tenants]]
name = "ops"
cluster = true

{tokens}
"#,
        server = toml::tls_server(port, d),
        source = toml::replay_source(),
        policies = toml::policies(None),
        d = d.display(),
        tokens = tokens.join("\n"),
    )
}

#[test]
fn gateway_traffic_is_audited_and_the_log_verifies_until_tampered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let made = run_exporter(&["dev-certs", "--out", d.to_str().expect("utf-8")]);
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
    let (viewer, viewer_entry) = new_token("alpha", "viewer");
    let (op, op_entry) = new_token("ops", "operator");
    let (billing, billing_entry) = new_token("alpha", "billing");
    std::fs::write(d.join("pii.key"), [42u8; 32]).expect("write the pseudonym key");
    let port = free_loopback_port();
    let cfg = d.join("config.toml");
    std::fs::write(
        &cfg,
        config(d, port, &[&viewer_entry, &op_entry, &billing_entry]),
    )
    .expect("write config");
    let server = Server::start(&cfg, &d.join("server.log"));
    let audit = server.audit().expect("the test server audits").clone();
    let url = format!("https://127.0.0.1:{port}");
    let ca = d.join("ca.pem");
    let ca = ca.to_str().expect("utf-8");
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    server.wait_until("ready", Duration::from_secs(30), || {
        curl(&format!("{url}/readyz"), &["--cacert", ca]).0 == 200
    });

    // The traffic: a served scrape, two refused credentials, a policy refusal, a PII lookup
    // by a viewer (refused) and by the operator (allowed).
    let (code, body) = curl(
        &format!("{url}/metrics"),
        &["--cacert", ca, "-H", &bearer(&viewer), "-D", "/dev/stderr"],
    );
    assert_eq!(code, 200, "{body}");
    let pseudonym = body
        .split("user=\"")
        .nth(1)
        .and_then(|r| r.get(..19))
        .expect("a pseudonymized user in the viewer's scrape")
        .to_owned();
    assert!(pseudonym.starts_with("u1_"), "{pseudonym}");
    let fed = format!("{url}/federate?match[]=slurm_account_jobs");
    assert_eq!(curl(&fed, &["--cacert", ca, "-H", &bearer(&viewer)]).0, 200);
    assert_eq!(curl(&format!("{url}/metrics"), &["--cacert", ca]).0, 401);
    let wrong = "sxp_wrongwrongwrong_0123456789abcdef";
    assert_eq!(
        curl(
            &format!("{url}/metrics"),
            &["--cacert", ca, "-H", &bearer(wrong)]
        )
        .0,
        401
    );
    assert_eq!(
        curl(
            &format!("{url}/metrics"),
            &["--cacert", ca, "-H", &bearer(&billing)]
        )
        .0,
        403
    );
    let lookup = format!("{url}/admin/pii/lookup?tenant=alpha&pseudonym={pseudonym}");
    assert_eq!(
        curl(&lookup, &["--cacert", ca, "-H", &bearer(&viewer)]).0,
        403
    );
    // The operator re-identifies through the CLI, which carries the token to the gateway.
    let token_file = d.join("op.token");
    std::fs::write(&token_file, &op).expect("write the token file");
    let r = run_exporter(&[
        "pii",
        "lookup",
        "--url",
        &url,
        "--cacert",
        ca,
        "--token-file",
        token_file.to_str().expect("utf-8"),
        "--tenant",
        "alpha",
        &pseudonym,
    ]);
    assert!(r.status.success(), "pii lookup: {}", r.stderr);
    let who = r.stdout_text().trim().to_owned();
    assert!(
        ["alice", "bob", "carol", "dave"].contains(&who.as_str()),
        "re-identified as {who:?}"
    );

    // A reload (SIGHUP) is audited too.
    server.hup();
    server.wait_until("the reload", Duration::from_secs(10), || {
        server.log().contains("reloaded")
    });
    sleep(Duration::from_millis(200));

    let status = server
        .terminate(Duration::from_secs(15))
        .expect("server stops and its audit log verifies");
    assert!(status.success(), "{status}");

    let events = audit.export();
    let raw = events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [viewer.as_str(), op.as_str(), billing.as_str(), wrong] {
        assert!(!raw.contains(secret), "a credential in the log");
        // Not even the random part of a token.
        let tail = &secret[secret.len() - 16..];
        assert!(!raw.contains(tail), "part of a credential in the log");
    }
    let ev = |e: &serde_json::Value| e["event"].clone();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| ev(e)["kind"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("startup"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("admin"), "{kinds:?}");
    let startup = ev(&events[0]);
    assert_eq!(startup["detail"]["on_failure"], "refuse");
    assert_eq!(startup["detail"]["durability"], "fsync");

    let scrape = events
        .iter()
        .map(ev)
        .find(|e| e["route"] == "/metrics" && e["status"] == 200)
        .expect("the served scrape");
    assert_eq!(scrape["kind"], "request");
    assert_eq!(scrape["tenant"], "alpha");
    assert_eq!(scrape["role"], "viewer");
    assert_eq!(scrape["decision"], "allow");
    assert!(scrape["principal"]
        .as_str()
        .is_some_and(|p| p.starts_with("alpha/")));
    assert!(
        scrape["policy"]
            .as_str()
            .is_some_and(|p| p.contains("viewer")),
        "{scrape}"
    );
    assert!(scrape["series"].as_u64().is_some_and(|n| n > 0), "{scrape}");
    assert!(scrape["bytes"].as_u64().is_some_and(|n| n > 0), "{scrape}");
    assert!(scrape["latency_us"].as_u64().is_some());
    assert!(scrape["request_id"].as_str().is_some());
    assert!(scrape["client_addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));

    let federated = events
        .iter()
        .map(ev)
        .find(|e| e["route"] == "/federate")
        .expect("the federation");
    assert_eq!(federated["status"], 200);
    assert!(
        federated["policy"]
            .as_str()
            .is_some_and(|p| p.contains("federate") && p.contains("metrics")),
        "both rules that decided: {federated}"
    );
    assert_eq!(federated["detail"]["selectors"], 1);
    assert!(
        !federated.to_string().contains("slurm_account_jobs"),
        "selectors are recorded as a digest"
    );

    let failures: Vec<serde_json::Value> = events
        .iter()
        .map(ev)
        .filter(|e| e["kind"] == "auth_failure")
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures
        .iter()
        .all(|e| e["status"] == 401 && e["decision"] == "deny"));
    let reasons: Vec<&str> = failures
        .iter()
        .filter_map(|e| e["detail"]["reason"].as_str())
        .collect();
    assert_eq!(
        reasons.len(),
        2,
        "each failure names its reason: {failures:?}"
    );

    let refused = events
        .iter()
        .map(ev)
        .find(|e| e["status"] == 403 && e["route"] == "/metrics")
        .expect("the billing refusal");
    assert_eq!(refused["role"], "billing");
    assert_eq!(refused["decision"], "deny");

    let reload = events
        .iter()
        .map(ev)
        .find(|e| e["kind"] == "config_reload")
        .expect("the reload record");
    assert_eq!(reload["detail"]["trigger"], "sighup");
    assert_eq!(reload["detail"]["ok"], true, "{reload}");
    assert!(reload["detail"]["config_digest"]
        .as_str()
        .is_some_and(|d| d.len() == 64));

    let lookups: Vec<serde_json::Value> = events
        .iter()
        .map(ev)
        .filter(|e| e["kind"] == "pii_lookup")
        .collect();
    assert_eq!(lookups.len(), 2, "{lookups:?}");
    assert!(lookups
        .iter()
        .any(|e| e["status"] == 403 && e["tenant"] == "alpha" && e["decision"] == "deny"));
    let allowed = lookups
        .iter()
        .find(|e| e["status"] == 200)
        .expect("the operator's lookup");
    assert_eq!(allowed["tenant"], "ops");
    assert_eq!(allowed["detail"]["pseudonym"], pseudonym.as_str());
    assert_eq!(allowed["detail"]["target_tenant"], "alpha");
    assert_eq!(allowed["detail"]["found"], true);
    assert!(
        !allowed.to_string().contains(&format!("\"{who}\"")),
        "the clear name stays out of the record"
    );

    // Tampering with a copy is found, with the record's sequence number.
    let segment = std::fs::read_dir(&audit.dir)
        .expect("log dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment file");
    let original = std::fs::read(&segment).expect("read segment");
    let mut flipped = original.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(&segment, &flipped).expect("tamper");
    let err = audit.verify().expect_err("a flipped byte is found");
    assert!(err.contains("NOT intact") && err.contains("seq"), "{err}");
    // A cut tail looks like a crash unless the auditor holds a published checkpoint: the
    // shutdown seal is one, so publish it, then cut the log below it.
    std::fs::write(&segment, &original).expect("restore");
    let dir_s = audit.dir.to_str().expect("utf-8");
    let published = d.join("published.json");
    let cps = run_exporter(&["audit", "checkpoints", "--dir", dir_s]);
    assert!(cps.status.success(), "{}", cps.stderr);
    let last = cps
        .stdout_text()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(!last.is_empty(), "a checkpoint to publish");
    std::fs::write(&published, last).expect("publish");
    let verify_published = || {
        run_exporter(&[
            "audit",
            "verify",
            "--dir",
            dir_s,
            "--public-key",
            audit.public_key.to_str().expect("utf-8"),
            "--published",
            published.to_str().expect("utf-8"),
        ])
    };
    assert!(
        verify_published().status.success(),
        "intact against its published checkpoint"
    );
    std::fs::write(&segment, &original[..original.len() - 7]).expect("truncate");
    let cut = verify_published();
    assert!(
        !cut.status.success(),
        "a cut tail is found against the published checkpoint"
    );
    assert!(cut.stderr.contains("NOT intact"), "{}", cut.stderr);
    std::fs::write(&segment, &original).expect("restore");
    audit.verify().expect("the restored log verifies again");
}
