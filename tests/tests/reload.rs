//! SIGHUP and file changes reload tokens, tenants and policies without a restart; a broken
//! new config is refused whole and the previous one keeps serving; the admin listener's
//! metrics show the config digest and the reload outcomes.

use e2e::{
    assert_promtool_ok, curl, free_loopback_port, http_get, new_token, toml, workspace_path,
    Exposition, Server,
};
use std::net::SocketAddr;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

fn status(url: &str, token: &str) -> u16 {
    curl(url, &["-H", &format!("Authorization: Bearer {token}")]).0
}

fn write_config(path: &Path, port: u16, tokens: &[&str]) {
    let policies = workspace_path("policies");
    write_config_with(path, port, tokens, &policies, "");
}

/// The test config: `policies` holds model.conf and policy.csv; `server_extra` goes into
/// `[server]`.
fn write_config_with(path: &Path, port: u16, tokens: &[&str], policies: &Path, server_extra: &str) {
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
{server_extra}

{source}
{policies}
[[tenants]]
name = "alpha"
accounts = ["physics"]

[[tenants]]
name = "beta"
accounts = ["chemistry"]

{tokens}
"#,
        source = toml::replay_source(),
        policies = toml::policies(Some(policies)),
        tokens = tokens.join("\n"),
    );
    std::fs::write(path, text).expect("write config");
}

#[test]
fn sighup_adds_a_token_and_a_broken_config_keeps_the_old_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("config.toml");
    let port = free_loopback_port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let (alpha, alpha_entry) = new_token("alpha", "admin");
    let (beta, beta_entry) = new_token("beta", "admin");
    write_config(&cfg, port, &[&alpha_entry]);
    let server = Server::start(&cfg, &dir.path().join("server.log"));
    server.wait_until("alpha accepted", Duration::from_secs(30), || {
        status(&url, &alpha) == 200
    });
    assert_eq!(status(&url, &beta), 401, "beta is not configured yet");

    write_config(&cfg, port, &[&alpha_entry, &beta_entry]);
    server.hup();
    server.wait_until("beta accepted", Duration::from_secs(15), || {
        status(&url, &beta) == 200
    });
    assert_eq!(status(&url, &alpha), 200);

    // A broken config (a tenant that does not exist) is refused; both tokens still work.
    std::fs::write(&cfg, "[auth]\n[[auth.api_tokens]]\nid = \"x\"\n").expect("write");
    server.hup();
    server.wait_until("the refusal logged", Duration::from_secs(15), || {
        server.log().contains("config reload refused")
    });
    assert_eq!(status(&url, &alpha), 200);
    assert_eq!(status(&url, &beta), 200);

    // Rate limits reload too: one request a minute per principal from now on.
    let limits = "[rate_limit]\nper_principal_per_minute = 1\nburst = 1\n";
    write_config(&cfg, port, &[&alpha_entry, &beta_entry, limits]);
    server.hup();
    server.wait_until("the new limits", Duration::from_secs(15), || {
        server.log().contains("rate limits changed")
    });
    assert_eq!(status(&url, &alpha), 200, "new limits start afresh");
    assert_eq!(status(&url, &alpha), 429, "and apply");

    let st = server.terminate(Duration::from_secs(15)).expect("stops");
    assert!(st.success(), "{st}");
}

/// The admin listener's exposition: text 0.0.4 (what promtool reads).
fn admin_metrics(admin: SocketAddr) -> Exposition {
    let r = http_get(
        admin,
        "/metrics",
        &[("Accept", "text/plain")],
        Duration::from_secs(10),
    )
    .expect("admin /metrics");
    assert_eq!(r.status, 200);
    let body = String::from_utf8(r.body).expect("UTF-8");
    Exposition::parse(&body).unwrap_or_else(|e| panic!("admin /metrics: {e}\n{body}"))
}

/// The digest of `slurm_exporter_gateway_config_info`, which must be exactly one series.
fn config_digest(e: &Exposition) -> String {
    let infos: Vec<_> = e.family("slurm_exporter_gateway_config_info").collect();
    assert_eq!(infos.len(), 1, "one config in force: {infos:?}");
    let (labels, value) = infos[0];
    assert_eq!(value, 1.0);
    labels
        .iter()
        .find(|(k, _)| k == "digest")
        .map(|(_, v)| v.clone())
        .expect("a digest label")
}

fn reloads(e: &Exposition, trigger: &str, result: &str) -> f64 {
    e.get(
        "slurm_exporter_gateway_config_reloads_total",
        &[("trigger", trigger), ("result", result)],
    )
    .unwrap_or(0.0)
}

/// Waits up to 20 s (polling every second, a change acted on after one stable poll) for `ok`.
#[test]
fn a_file_change_reloads_without_sighup_a_broken_one_is_refused_and_admin_metrics_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("config.toml");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).expect("mkdir");
    for f in ["model.conf", "policy.csv"] {
        std::fs::copy(workspace_path("policies").join(f), policies.join(f)).expect("copy");
    }
    let good_policy = std::fs::read_to_string(policies.join("policy.csv")).expect("read");
    let port = free_loopback_port();
    let admin_port = free_loopback_port();
    let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let (alpha, alpha_entry) = new_token("alpha", "admin");
    let (beta, beta_entry) = new_token("beta", "admin");
    let server_extra = format!(
        "[server.admin]\nlisten = \"127.0.0.1:{admin_port}\"\n[server.reload]\npoll_seconds = 1\n"
    );
    write_config_with(&cfg, port, &[&alpha_entry], &policies, &server_extra);
    let server = Server::start(&cfg, &dir.path().join("server.log"));
    server.wait_until("alpha accepted", Duration::from_secs(20), || {
        status(&url, &alpha) == 200
    });
    assert_eq!(status(&url, &beta), 401, "beta is not configured yet");

    // The admin listener: OpenMetrics by default, text for promtool, health.
    let r = http_get(admin, "/metrics", &[], Duration::from_secs(10)).expect("admin /metrics");
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = String::from_utf8(r.body).expect("UTF-8");
    assert!(
        Exposition::parse(&om).expect("OpenMetrics parses").eof,
        "{om}"
    );
    let r = http_get(
        admin,
        "/metrics",
        &[("Accept", "text/plain")],
        Duration::from_secs(10),
    )
    .expect("admin /metrics as text");
    assert_promtool_ok("admin /metrics", &r.body);
    for path in ["/healthz", "/readyz"] {
        let r = http_get(admin, path, &[], Duration::from_secs(10)).expect("admin health");
        assert_eq!(r.status, 200, "admin {path}");
    }
    let first = admin_metrics(admin);
    let d1 = config_digest(&first);
    assert_eq!(reloads(&first, "file_change", "success"), 0.0);
    // A token added to the file works without SIGHUP, and the digest in force changes.
    let mut text = std::fs::read_to_string(&cfg).expect("read");
    text.push('\n');
    text.push_str(&beta_entry);
    std::fs::write(&cfg, text).expect("write");
    server.wait_until(
        "beta accepted after the file changed",
        Duration::from_secs(20),
        || status(&url, &beta) == 200,
    );
    assert_eq!(status(&url, &alpha), 200);
    let second = admin_metrics(admin);
    let d2 = config_digest(&second);
    assert_ne!(d1, d2, "the config digest follows the file");
    assert_eq!(reloads(&second, "file_change", "success"), 1.0);
    assert_eq!(reloads(&second, "file_change", "failure"), 0.0);

    // A broken policy file is refused whole: the old policy, tokens and digest stay.
    std::fs::write(policies.join("policy.csv"), "x, viewer, *, metrics\n").expect("write");
    server.wait_until("the broken policy refused", Duration::from_secs(20), || {
        reloads(&admin_metrics(admin), "file_change", "failure") >= 1.0
    });
    assert!(
        server.log().contains("config reload refused"),
        "{}",
        server.log()
    );
    assert_eq!(
        status(&url, &alpha),
        200,
        "the previous policy keeps serving"
    );
    assert_eq!(status(&url, &beta), 200);
    let third = admin_metrics(admin);
    assert_eq!(
        config_digest(&third),
        d2,
        "a refused config is never shown in force"
    );
    assert_eq!(
        third.get("slurm_exporter_gateway_config_last_reload_successful", &[]),
        Some(0.0)
    );
    // Refused once, not again every poll.
    sleep(Duration::from_secs(3));
    assert_eq!(
        reloads(&admin_metrics(admin), "file_change", "failure"),
        1.0
    );

    // Repaired: in force again, with the same digest as before the break.
    std::fs::write(policies.join("policy.csv"), good_policy).expect("write");
    server.wait_until(
        "the repaired policy reloaded",
        Duration::from_secs(20),
        || reloads(&admin_metrics(admin), "file_change", "success") >= 2.0,
    );
    let last = admin_metrics(admin);
    assert_eq!(config_digest(&last), d2);
    assert_eq!(
        last.get("slurm_exporter_gateway_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert_promtool_ok(
        "admin /metrics after reloads",
        &http_get(
            admin,
            "/metrics",
            &[("Accept", "text/plain")],
            Duration::from_secs(10),
        )
        .expect("admin /metrics")
        .body,
    );

    let st = server.terminate(Duration::from_secs(15)).expect("stops");
    assert!(st.success(), "{st}");
}
