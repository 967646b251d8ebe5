//! A real Prometheus (Debian's `prometheus`) scrapes the gateway in front of the Slurm lab
//! with the scrape configuration users get, `deploy/prometheus/prometheus.yml`: one job per
//! tenant, one authenticated by an API token, one by a client certificate. Prometheus's query
//! API must then show each tenant's accounts under that tenant's job only, user names only
//! as pseudonyms, no cluster-wide or operator series, and a job with an unknown token down
//! with 401.
//!
//! Ignored by default, like the other lab tests (`tests/tests/lab.rs`): run it after
//! `bash deploy/slurm-lab/lab.sh start && bash deploy/slurm-lab/lab.sh submit-mix` (as root)
//! and `cargo build -p slurm-exporter`, with
//! `cargo nextest run -p slurm-exporter-e2e --run-ignored all prometheus`.
//! `PROMETHEUS` and `PROMTOOL` name the binaries (default `prometheus`, `promtool`; `bash
//! deploy/test-deps.sh` installs both).
#![allow(clippy::disallowed_methods)] // Prometheus and promtool are the programs under test

use e2e::prometheus::{percent_encode, Prometheus};
use e2e::slurm::require_lab;
use e2e::{free_loopback_port, new_token, run, run_exporter, toml, workspace_path, Server};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The scrape configuration under test, as shipped to users.
const DEPLOY_CONFIG: &str = "deploy/prometheus/prometheus.yml";
/// The gateway address in [`DEPLOY_CONFIG`]'s targets, replaced by the test gateway's.
const DEPLOY_TARGET: &str = "slurm-exporter.example.org:9341";
/// The jobs of [`DEPLOY_CONFIG`]: tenant `alpha` by API token, `beta` by client certificate.
const ALPHA_JOB: &str = "slurm-tenant-alpha";
const BETA_JOB: &str = "slurm-tenant-beta";
/// A job the test adds: a well-formed token the gateway does not know.
const STRANGER_JOB: &str = "slurm-unknown-token";
/// The lab's accounts (deploy/slurm-lab/README.md): alpha owns physics, beta chemistry, and
/// nobody biology.
const ALPHA_ACCOUNT: &str = "physics";
const BETA_ACCOUNT: &str = "chemistry";
const UNOWNED_ACCOUNT: &str = "biology";
/// The lab's user names; none may reach a viewer in clear.
const LAB_USERS: &[&str] = &["alice", "bob", "carol", "dave", "root"];
/// How long Prometheus may take to have scraped every job.
const SCRAPED_WITHIN: Duration = Duration::from_secs(45);

/// The gateway in front of the lab: TLS, tokens and client certificates, two viewer tenants
/// owning disjoint lab accounts.
fn gateway_config(port: u16, certs: &Path, state: &Path, alpha_token_entry: &str) -> String {
    format!(
        r#"{server}
[source]
kind = "rest"
interval_seconds = 30
timeout_seconds = 20

[source.rest]
url = "http://127.0.0.1:6820"
user = "root"
token_scontrol = true

[pii]
key_file = "{state}/pii.key"

{policies}
[[tenants]]
name = "alpha"
accounts = ["{ALPHA_ACCOUNT}"]

[[tenants]]
name = "beta"
accounts = ["{BETA_ACCOUNT}"]

[[auth.client_certs]]
identity = "spiffe://slurm-exporter/tenant/beta"
tenant = "beta"
role = "viewer"

{alpha_token_entry}
"#,
        server = toml::tls_server(port, certs),
        policies = toml::policies(None),
        state = state.display(),
    )
}

/// `deploy/prometheus/prometheus.yml` as the README tells users to adapt it: the gateway's
/// address, and here 2 s scrapes instead of 30 s; then one more job, with a token the gateway
/// does not know. Every replaced string must be there exactly as often as expected, so that
/// an edit of the deploy file that would leave the test scraping something else fails here.
fn prometheus_config(template: &str, target: &str) -> String {
    let mut out = template.to_owned();
    let (deploy_targets, targets) = (format!("[\"{DEPLOY_TARGET}\"]"), format!("[\"{target}\"]"));
    for (from, to, times) in [
        (deploy_targets.as_str(), targets.as_str(), 2),
        ("  scrape_interval: 30s\n", "  scrape_interval: 2s\n", 1),
        ("  scrape_timeout: 10s\n", "  scrape_timeout: 2s\n", 1),
    ] {
        assert_eq!(
            out.matches(from).count(),
            times,
            "{DEPLOY_CONFIG}: {from:?} should appear {times} time(s)"
        );
        out = out.replace(from, to);
    }
    for job in [ALPHA_JOB, BETA_JOB] {
        assert!(
            out.contains(&format!("- job_name: {job}\n")),
            "{DEPLOY_CONFIG}: no job {job}"
        );
    }
    // The extra job is appended to the list, so scrape_configs must be the last key.
    let (_, jobs) = out
        .split_once("\nscrape_configs:\n")
        .unwrap_or_else(|| panic!("{DEPLOY_CONFIG}: no top-level scrape_configs"));
    assert!(
        jobs.lines()
            .all(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#')),
        "{DEPLOY_CONFIG}: scrape_configs must be the last top-level key"
    );
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = write!(
        out,
        r#"
  - job_name: {STRANGER_JOB}
    scheme: https
    authorization:
      type: Bearer
      credentials_file: slurm-exporter/unknown.token
    tls_config:
      ca_file: slurm-exporter/ca.pem
    static_configs:
      - targets: ["{target}"]
"#
    );
    out
}

#[test]
fn prometheus_queries_are_percent_encoded_except_unreserved_characters() {
    assert_eq!(
        percent_encode(r#"count by (job) ({account="a b"})"#),
        "count%20by%20%28job%29%20%28%7Baccount%3D%22a%20b%22%7D%29"
    );
    assert_eq!(percent_encode("a-z_0.9~"), "a-z_0.9~");
}

#[test]
fn prometheus_deploy_config_renders_with_the_test_target_and_the_stranger_job_last() {
    let template =
        std::fs::read_to_string(workspace_path(DEPLOY_CONFIG)).expect("read the deploy config");
    let out = prometheus_config(&template, "127.0.0.1:1");
    assert!(!out.contains(&format!("\"{DEPLOY_TARGET}\"")));
    assert_eq!(out.matches("127.0.0.1:1\"").count(), 3);
    assert!(out.contains("scrape_interval: 2s\n"));
    assert!(out.trim_end().ends_with("- targets: [\"127.0.0.1:1\"]"));
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn prometheus_scrapes_each_tenant_through_the_deploy_config_and_sees_only_its_accounts() {
    require_lab();
    let t = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();

    // Credentials: a dev CA, server and client certificates; an API token for alpha; one
    // more token, never configured, for the stranger job.
    let secrets = d.join("prometheus").join("slurm-exporter");
    std::fs::create_dir_all(&secrets).expect("create the secrets directory");
    let certs = d.join("certs");
    let made = run_exporter(&["dev-certs", "--out", certs.to_str().expect("utf-8")]);
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
    let (alpha_token, alpha_entry) = new_token("alpha", "viewer");
    let (unknown_token, _) = new_token("alpha", "viewer");
    std::fs::write(d.join("pii.key"), [7u8; 32]).expect("write the pseudonym key");

    // The gateway.
    let port = free_loopback_port();
    let gw_config = d.join("gateway.toml");
    std::fs::write(&gw_config, gateway_config(port, &certs, d, &alpha_entry))
        .expect("write the gateway config");
    let check = run_exporter(&[
        "check-config",
        "--config",
        gw_config.to_str().expect("utf-8"),
    ]);
    assert!(check.status.success(), "check-config: {}", check.stderr);
    let mut server = Server::start(&gw_config, &d.join("gateway.log"));

    // Prometheus, with the deploy config and its secrets laid out as its README says.
    for f in ["ca.pem", "client-beta.pem", "client-beta-key.pem"] {
        std::fs::copy(certs.join(f), secrets.join(f)).expect("copy a certificate");
    }
    std::fs::write(secrets.join("alpha.token"), format!("{alpha_token}\n"))
        .expect("write alpha's token");
    std::fs::write(secrets.join("unknown.token"), &unknown_token).expect("write the unknown token");
    let template =
        std::fs::read_to_string(workspace_path(DEPLOY_CONFIG)).expect("read the deploy config");
    let prom_config = d.join("prometheus").join("prometheus.yml");
    std::fs::write(
        &prom_config,
        prometheus_config(&template, &format!("127.0.0.1:{port}")),
    )
    .expect("write prometheus.yml");

    let promtool = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let checked = run(
        Command::new(&promtool)
            .arg("check")
            .arg("config")
            .arg(&prom_config),
        None,
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e} (install promtool with `bash deploy/test-deps.sh`)"));
    assert!(
        checked.status.success(),
        "promtool check config {}: {}\n{}{}",
        prom_config.display(),
        checked.status,
        checked.stdout_text(),
        checked.stderr
    );

    let data = d.join("tsdb");
    std::fs::create_dir_all(&data).expect("create the TSDB directory");
    let mut prom = Prometheus::start(&prom_config, &data, &d.join("prometheus.log"));

    // Wait until each job has been scraped: the tenants' successfully (the first scrapes
    // may come before the gateway's first poll of Slurm is published), the stranger's not.
    let deadline = Instant::now() + SCRAPED_WITHIN;
    let up = loop {
        prom.assert_running();
        if let Some(st) = server.exited() {
            panic!("the gateway exited ({st}); log:\n{}", server.log());
        }
        let up: BTreeMap<String, f64> = prom
            .query("up")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(mut l, v)| Some((l.remove("job")?, v)))
            .collect();
        if up.get(ALPHA_JOB) == Some(&1.0)
            && up.get(BETA_JOB) == Some(&1.0)
            && up.contains_key(STRANGER_JOB)
        {
            break up;
        }
        assert!(
            Instant::now() < deadline,
            "not every job scraped within {SCRAPED_WITHIN:?}: up = {up:?}; targets: {:?}\n\
             gateway log:\n{}\nprometheus log:\n{}",
            prom.targets(),
            server.log(),
            prom.log()
        );
        sleep(Duration::from_millis(250));
    };
    let scraped_after = t.elapsed();

    // The stranger is refused by the gateway's authentication (401), not by TLS.
    assert_eq!(up.get(STRANGER_JOB), Some(&0.0), "up: {up:?}");
    let targets = prom
        .targets()
        .unwrap_or_else(|e| panic!("{e}; prometheus log:\n{}", prom.log()));
    let (health, error) = targets
        .get(STRANGER_JOB)
        .unwrap_or_else(|| panic!("no target for {STRANGER_JOB}: {targets:?}"));
    assert_eq!(health, "down", "{STRANGER_JOB}: {targets:?}");
    assert!(
        error.contains("401"),
        "{STRANGER_JOB}: want a 401, got {error:?}"
    );
    assert_eq!(
        up.len(),
        3,
        "exactly the three configured jobs: up = {up:?}"
    );

    // Each tenant's job holds series of its own account, and of no other.
    let mut accounts_by_job: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (mut l, _) in prom.must_query(r#"count by (job, account) ({account!=""})"#) {
        if let (Some(job), Some(account)) = (l.remove("job"), l.remove("account")) {
            accounts_by_job.entry(job).or_default().insert(account);
        }
    }
    let only = |a: &str| BTreeSet::from([a.to_owned()]);
    assert_eq!(
        accounts_by_job,
        BTreeMap::from([
            (ALPHA_JOB.to_owned(), only(ALPHA_ACCOUNT)),
            (BETA_JOB.to_owned(), only(BETA_ACCOUNT)),
        ]),
        "accounts seen by each job"
    );
    // The same, asked account by account across every job.
    for (account, jobs) in [
        (ALPHA_ACCOUNT, vec![ALPHA_JOB]),
        (BETA_ACCOUNT, vec![BETA_JOB]),
        (UNOWNED_ACCOUNT, vec![]),
    ] {
        let seen = prom.label_values(
            &format!(r#"count by (job) ({{account="{account}"}})"#),
            "job",
        );
        let want: BTreeSet<String> = jobs.iter().map(|j| (*j).to_owned()).collect();
        assert_eq!(seen, want, "jobs with series of account {account}");
    }
    for job in [ALPHA_JOB, BETA_JOB] {
        let jobs_series = prom.must_query(&format!(
            r#"count({{job="{job}", __name__=~"slurm_account_jobs|slurm_account_usage_.+"}})"#
        ));
        assert!(
            jobs_series.first().is_some_and(|(_, n)| *n > 0.0),
            "{job}: no account job or usage series"
        );
        // No cluster-wide, partition, node or exporter-health series: those have no owner
        // a tenant holds.
        let foreign = prom.must_query(&format!(
            r#"count by (__name__) ({{job="{job}", __name__=~"slurm_(cluster|partition|node|exporter)_.+"}})"#
        ));
        assert!(
            foreign.is_empty(),
            "{job}: series a tenant must not see: {foreign:?}"
        );
    }

    // Viewers: every user label a per-tenant pseudonym, never a name in clear, and no
    // pseudonym shared between the tenants (alice is in both accounts).
    let mut users_by_job: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (mut l, _) in prom.must_query(r#"count by (job, user) ({user!=""})"#) {
        if let (Some(job), Some(user)) = (l.remove("job"), l.remove("user")) {
            users_by_job.entry(job).or_default().insert(user);
        }
    }
    for job in [ALPHA_JOB, BETA_JOB] {
        let users = users_by_job.get(job).cloned().unwrap_or_default();
        assert!(!users.is_empty(), "{job}: no series with a user label");
        assert!(
            users.iter().all(|u| u.starts_with("u1_") && u.len() == 19),
            "{job}: user labels that are not pseudonyms: {users:?}"
        );
    }
    let alpha_users = users_by_job.get(ALPHA_JOB).cloned().unwrap_or_default();
    let beta_users = users_by_job.get(BETA_JOB).cloned().unwrap_or_default();
    assert!(
        alpha_users.is_disjoint(&beta_users),
        "a pseudonym links users across tenants: {:?}",
        alpha_users.intersection(&beta_users).collect::<Vec<_>>()
    );
    let clear = prom.must_query(&format!(
        r#"count by (job, user) ({{user=~"{}"}})"#,
        LAB_USERS.join("|")
    ));
    assert!(clear.is_empty(), "user names in clear: {clear:?}");

    // Prometheus took every sample it was given: no duplicate or out-of-order series.
    for name in [
        "prometheus_target_scrapes_sample_duplicate_timestamp_total",
        "prometheus_target_scrapes_sample_out_of_order_total",
        "prometheus_target_scrapes_sample_out_of_bounds_total",
    ] {
        let v = prom.own_metric(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, 0.0, "{name}");
    }

    eprintln!(
        "prometheus: both tenants up after {scraped_after:?}; accounts {accounts_by_job:?}; \
         {} + {} pseudonymous users; {:?} in all",
        alpha_users.len(),
        beta_users.len(),
        t.elapsed()
    );
    drop(prom);
    let status = server
        .terminate(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "gateway after SIGTERM: {status}");
}
