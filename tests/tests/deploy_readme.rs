//! The examples of `deploy/README.md` are valid: the operator's Prometheus config passes
//! `promtool check config` (with the shipped alert rules and real certificate and token
//! files beside it), the Alertmanager config passes `amtool check-config`, and the Grafana
//! provisioning files agree with the paths the page tells users to copy the dashboards to.
//! `PROMTOOL` and `AMTOOL` name the binaries (`bash deploy/test-deps.sh` installs both).
#![allow(clippy::disallowed_methods)] // promtool and amtool are the checkers

use e2e::{run, run_exporter, workspace_path};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const README: &str = "deploy/README.md";
const DASHBOARD_PATH: &str = "/var/lib/grafana/dashboards/slurm";

/// The ```yaml blocks of the page.
fn yaml_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```yaml") => cur = Some(String::new()),
            (Some(b), "```") => {
                out.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// The one block that contains `key` as a top-level key.
fn block_with(blocks: &[String], key: &str) -> String {
    let found: Vec<&String> = blocks
        .iter()
        .filter(|b| b.lines().any(|l| l == key))
        .collect();
    assert_eq!(found.len(), 1, "{README}: want one yaml block with {key:?}");
    found[0].clone()
}

fn check(tool_env: &str, default: &str, args: &[&str], path: &Path) {
    let bin = std::env::var_os(tool_env).unwrap_or_else(|| default.into());
    let r = run(
        Command::new(&bin).args(args).arg(path),
        None,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e} (install it with `bash deploy/test-deps.sh`)"));
    assert!(
        r.status.success(),
        "{default} {} {}: {}\n{}{}",
        args.join(" "),
        path.display(),
        r.status,
        r.stdout_text(),
        r.stderr
    );
}

#[test]
fn the_readme_examples_pass_promtool_and_amtool() {
    let text = std::fs::read_to_string(workspace_path(README)).expect("read the README");
    let blocks = yaml_blocks(&text);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    // Prometheus: the files it names, where the page puts them.
    let secrets = d.join("slurm-exporter");
    let made = run_exporter(&["dev-certs", "--out", secrets.to_str().expect("utf-8")]);
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
    std::fs::write(secrets.join("operator.token"), "sxp_example\n").expect("write the token");
    std::fs::copy(
        workspace_path("deploy/prometheus/alerts.yml"),
        d.join("slurm-alerts.yml"),
    )
    .expect("copy the rules");
    let prom = d.join("prometheus.yml");
    std::fs::write(&prom, block_with(&blocks, "scrape_configs:")).expect("write");
    check("PROMTOOL", "promtool", &["check", "config"], &prom);

    let am = d.join("alertmanager.yml");
    std::fs::write(&am, block_with(&blocks, "route:")).expect("write");
    check("AMTOOL", "amtool", &["check-config"], &am);
}

#[test]
fn the_provisioning_files_match_the_readme() {
    let text = std::fs::read_to_string(workspace_path(README)).expect("read the README");
    let provider = std::fs::read_to_string(workspace_path(
        "deploy/grafana/provisioning/dashboards/slurm.yaml",
    ))
    .expect("read the dashboard provider");
    assert!(
        provider.contains(&format!("path: {DASHBOARD_PATH}\n")),
        "the dashboard provider does not load {DASHBOARD_PATH}"
    );
    assert!(
        text.contains(&format!("`{DASHBOARD_PATH}/`")),
        "{README} does not say to copy the dashboards to {DASHBOARD_PATH}/"
    );
    let datasource = std::fs::read_to_string(workspace_path(
        "deploy/grafana/provisioning/datasources/slurm-prometheus.yaml",
    ))
    .expect("read the data source");
    for want in [
        "type: prometheus\n",
        "isDefault: true\n",
        "timeInterval: 30s\n",
    ] {
        assert!(datasource.contains(want), "data source: no {want:?}");
    }
    // Every file the table names exists.
    for rel in [
        "config/gateway.toml",
        "deploy/prometheus/alerts.yml",
        "deploy/prometheus/prometheus.yml",
        "deploy/grafana/provisioning/datasources/slurm-prometheus.yaml",
        "deploy/grafana/provisioning/dashboards/slurm.yaml",
        "docs/runbooks/README.md",
    ] {
        assert!(workspace_path(rel).is_file(), "{rel} is missing");
    }
}
