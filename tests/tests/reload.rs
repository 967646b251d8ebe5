//! SIGHUP reloads tokens, tenants and policies without a restart; a broken new config is
//! refused whole and the previous one keeps serving.
#![allow(clippy::disallowed_methods)] // curl and kill act as an operator would

use e2e::{free_loopback_port, run, run_exporter, workspace_path, Server};
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

fn status(url: &str, token: &str) -> u16 {
    let r = run(
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .arg(url),
        None,
        Duration::from_secs(20),
    )
    .expect("curl runs");
    String::from_utf8_lossy(&r.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn new_token(tenant: &str, role: &str) -> (String, String) {
    let r = run_exporter(&["token", "new", "--tenant", tenant, "--role", role]);
    assert!(r.status.success(), "{}", r.stderr);
    let entry = r
        .stderr
        .split_once("[[auth.api_tokens]]")
        .map(|(_, e)| format!("[[auth.api_tokens]]{e}"))
        .expect("entry");
    (String::from_utf8_lossy(&r.stdout).trim().to_owned(), entry)
}

fn write_config(path: &Path, port: u16, tokens: &[&str]) {
    let replay = workspace_path("collector/testdata/rest/22.05.8");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[source]
kind = "replay"
interval_seconds = 60
[source.replay]
dir = "{replay}"
now_epoch = 1795860300

[policies]
model = "{model}"
policy = "{policy}"

[[tenants]]
name = "alpha"
accounts = ["physics"]

[[tenants]]
name = "beta"
accounts = ["chemistry"]

{tokens}
"#,
        replay = replay.display(),
        model = workspace_path("policies/model.conf").display(),
        policy = workspace_path("policies/policy.csv").display(),
        tokens = tokens.join("\n"),
    );
    std::fs::write(path, text).expect("write config");
}

fn hup(server: &Server) {
    let ok = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -HUP");
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
    let t = Instant::now();
    while status(&url, &alpha) != 200 {
        assert!(t.elapsed() < Duration::from_secs(30), "{}", server.log());
        sleep(Duration::from_millis(200));
    }
    assert_eq!(status(&url, &beta), 401, "beta is not configured yet");

    write_config(&cfg, port, &[&alpha_entry, &beta_entry]);
    hup(&server);
    let t = Instant::now();
    while status(&url, &beta) != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "beta never accepted: {}",
            server.log()
        );
        sleep(Duration::from_millis(200));
    }
    assert_eq!(status(&url, &alpha), 200);

    // A broken config (a tenant that does not exist) is refused; both tokens still work.
    std::fs::write(&cfg, "[auth]\n[[auth.api_tokens]]\nid = \"x\"\n").expect("write");
    hup(&server);
    let t = Instant::now();
    while !server.log().contains("config reload refused") {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no refusal logged: {}",
            server.log()
        );
        sleep(Duration::from_millis(200));
    }
    assert_eq!(status(&url, &alpha), 200);
    assert_eq!(status(&url, &beta), 200);

    let st = server.terminate(Duration::from_secs(15)).expect("stops");
    assert!(st.success(), "{st}");
}
