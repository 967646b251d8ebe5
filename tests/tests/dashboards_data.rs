//! Every panel of the operator dashboards shows data from the real Slurm lab.
//!
//! Debian's `prometheus` scrapes the gateway (TLS, an operator token) in front of the lab
//! every 2 s, with `deploy/prometheus/alerts.yml` loaded (the Overview's incident panels read
//! `ALERTS`). Once it has about 30 s of samples, every query of every panel of
//! [`DASHBOARDS`] runs through the HTTP API as an instant query: the template variables
//! expanded to the values their own queries return in the lab (an alternation of them, or
//! `.*` when a variable has none, as Grafana's All does), `$__rate_interval` to 30 s and
//! `$__range` to the time Prometheus has been scraping. An error fails the test; so does a
//! panel whose queries all return nothing, unless [`LAB_EMPTY`] lists it with the reason,
//! and a listed panel that does return data (the list must not rot).
//!
//! Ignored by default, like the other lab tests: run it after `bash deploy/slurm-lab/lab.sh
//! start && bash deploy/slurm-lab/lab.sh submit-mix` (as root) and `cargo build -p
//! slurm-exporter`, with `cargo nextest run -p slurm-exporter-e2e --run-ignored all --test
//! dashboards_data`. `PROMETHEUS` and `PROMTOOL` name the binaries.
#![allow(clippy::disallowed_methods)] // Prometheus is the program under test

use e2e::prometheus::Prometheus;
use e2e::slurm::require_lab;
use e2e::{free_loopback_port, new_token, run_exporter, toml, workspace_path, Server};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The dashboards for the operator view, in `deploy/grafana/`: the five generated ones and
/// the admins' `slurm-cluster.json`.
const DASHBOARDS: &[&str] = &[
    "slurm-overview.json",
    "slurm-jobs.json",
    "slurm-quotas.json",
    "slurm-capacity.json",
    "slurm-cost.json",
    "slurm-cluster.json",
];
const SCRAPE_INTERVAL_SECONDS: u64 = 2;
/// How long Prometheus scrapes before the queries run: enough samples for every rate.
const HISTORY: Duration = Duration::from_secs(32);
/// `$__rate_interval` in the lab: several scrapes.
const RATE_INTERVAL: &str = "30s";
const UP_WITHIN: Duration = Duration::from_secs(45);

/// Panels that are empty in the lab for a reason that is not a dashboard mistake:
/// (dashboard file, panel title, reason).
const LAB_EMPTY: &[(&str, &str, &str)] = &[
    (
        "slurm-quotas.json",
        "Level fairshare per account",
        FAIRSHARE,
    ),
    (
        "slurm-quotas.json",
        "Lowest user fairshare factor",
        FAIRSHARE,
    ),
    (
        "slurm-quotas.json",
        "Lowest user fairshare factors",
        FAIRSHARE,
    ),
    ("slurm-quotas.json", "Usage against shares", FAIRSHARE),
    ("slurm-cluster.json", "Lowest level fairshare (most over-served accounts)", FAIRSHARE),
    (
        "slurm-cluster.json",
        "Fairshare: normalized usage and shares of the 10 heaviest accounts",
        FAIRSHARE,
    ),
    (
        "slurm-cluster.json",
        "Accounts over 90% of a GrpTRES limit",
        "a threshold panel: the lab's only GrpTRES limit (biology, cpu=64) is used below 90%",
    ),
    (
        "slurm-cluster.json",
        "Remote license deficit",
        "the lab's licenses (matlab, ansys) are local, from slurm.conf; only remote ones have a deficit",
    ),
    (
        "slurm-cluster.json",
        "Series folded into __overflow__",
        "a threshold panel (> 0): no family of the lab goes over its label budget",
    ),
    (
        "slurm-quotas.json",
        "QOS: usage over limits",
        "the lab's QOS set no group limits (GrpTRES, GrpJobs, GrpSubmitJobs): only \
         MaxJobsPerUser on low and MaxWall on high, which the Users table shows",
    ),
];
/// Panels that show data only while something goes wrong: in the lab they may or may not
/// have any, depending on whether a poll failed in the window. Their queries still run and
/// must not error; only emptiness is allowed.
const LAB_MAYBE_EMPTY: &[(&str, &str, &str)] = &[(
    "slurm-cluster.json",
    "Poll errors by kind",
    "slurm_exporter_source_errors_total{kind} exists once a poll has failed; a healthy lab \
     has none, a transient slurmrestd or slurmdbd hiccup makes one",
)];
/// Why the lab serves no fairshare series: its cluster has a REST and a CLI source; both
/// report the `associations` part (fairshare and limits), REST wins it, and Slurm 22.05's
/// REST API carries no fairshare (sshare) data, so the CLI source's is not served. A
/// collector matter, not a dashboard one: a CLI-only exporter serves these panels.
const FAIRSHARE: &str = "fairshare: the REST source wins the associations part and has no \
                         fairshare in Slurm 22.05";

/// The gateway in front of the lab: TLS, one operator token, both lab sources (REST first,
/// the CLI for what REST lacks: fairshare and priorities), per-job series on.
fn gateway_config(port: u16, d: &Path, token_entry: &str) -> String {
    format!(
        r#"{server}
[collectors]
per_job = true

[[clusters]]
name = "lab"

[[clusters.sources]]
kind = "rest"
name = "rest"
interval_seconds = 5
timeout_seconds = 20
[clusters.sources.rest]
url = "http://127.0.0.1:6820"
user = "root"
token_scontrol = true

[[clusters.sources]]
kind = "cli"
name = "cli"
interval_seconds = 5
timeout_seconds = 20

[pii]
key_file = "{d}/pii.key"

{policies}
[[tenants]]
name = "ops"
cluster = true

{token_entry}
"#,
        server = toml::tls_server(port, &d.join("certs")),
        policies = toml::policies(None),
        d = d.display(),
    )
}

/// Prometheus scraping the gateway as the operator, with the shipped alert rules.
fn prometheus_config(target: &str, rules: &Path) -> String {
    format!(
        r#"global:
  scrape_interval: {SCRAPE_INTERVAL_SECONDS}s
  scrape_timeout: {SCRAPE_INTERVAL_SECONDS}s
  evaluation_interval: {SCRAPE_INTERVAL_SECONDS}s
rule_files:
  - {rules}
scrape_configs:
  - job_name: slurm-operator
    scheme: https
    authorization:
      type: Bearer
      credentials_file: operator.token
    tls_config:
      ca_file: ca.pem
    static_configs:
      - targets: ["{target}"]
"#,
        rules = rules.display()
    )
}

/// One query of a panel.
struct PanelQuery {
    file: String,
    panel: String,
    ref_id: String,
    expr: String,
}

/// Every panel query of a dashboard (rows and the panels of collapsed rows included), and
/// its query variables as (name, PromQL selector, label) in their order.
fn read_dashboard(file: &str) -> (Vec<PanelQuery>, Vec<(String, String, String)>) {
    let path = workspace_path(&format!("deploy/grafana/{file}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let d: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut vars = Vec::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let q = v["query"]["query"].as_str().unwrap_or_default();
        let (selector, label) = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|s| s.rsplit_once(','))
            .unwrap_or_else(|| panic!("{file}: variable {name}: not label_values(...): {q}"));
        vars.push((name, selector.trim().to_owned(), label.trim().to_owned()));
    }
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = d["panels"].as_array().into_iter().flatten().collect();
    while let Some(p) = stack.pop() {
        if let Some(children) = p["panels"].as_array() {
            stack.extend(children);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(PanelQuery {
                file: file.to_owned(),
                panel: p["title"].as_str().unwrap_or_default().to_owned(),
                ref_id: t["refId"].as_str().unwrap_or_default().to_owned(),
                expr: t["expr"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    out.sort_by(|a, b| (&a.panel, &a.ref_id).cmp(&(&b.panel, &b.ref_id)));
    (out, vars)
}

/// `expr` with `$name`/`${name}` replaced from `values` (longest names first, so `$__range`
/// is not read as a prefix of a longer name).
fn expand(expr: &str, values: &BTreeMap<String, String>) -> String {
    let mut names: Vec<&String> = values.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut out = expr.to_owned();
    for n in names {
        out = out
            .replace(&format!("${{{n}}}"), &values[n])
            .replace(&format!("${n}"), &values[n]);
    }
    out
}

/// A regex alternation of the values, escaped for a PromQL string.
fn alternation(values: &[String]) -> String {
    const SPECIAL: &str = r".+*?()|[]{}^$\";
    values
        .iter()
        .map(|v| {
            v.chars()
                .flat_map(|c| {
                    let esc = SPECIAL.contains(c).then_some(['\\', '\\']);
                    esc.into_iter().flatten().chain(std::iter::once(c))
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("|")
}

#[test]
fn expand_replaces_the_longest_names_first_and_both_spellings() {
    let values: BTreeMap<String, String> = [
        ("__range", "40s"),
        ("__rate_interval", "30s"),
        ("cluster", "lab"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        expand(
            r#"rate(x{c=~"$cluster"}[$__rate_interval]) + increase(y{c=~"${cluster}"}[$__range])"#,
            &values
        ),
        r#"rate(x{c=~"lab"}[30s]) + increase(y{c=~"lab"}[40s])"#
    );
    assert_eq!(
        alternation(&["a.b".into(), "c".into()]),
        r"a\\.b|c",
        "a dot is escaped for the regex, the backslash for the PromQL string"
    );
}

#[test]
fn every_listed_empty_panel_exists() {
    for (file, title, reason) in LAB_EMPTY.iter().chain(LAB_MAYBE_EMPTY) {
        assert!(!reason.is_empty(), "{file}: {title}: no reason");
        let (queries, _) = read_dashboard(file);
        assert!(
            queries.iter().any(|q| q.panel == *title),
            "{file}: no panel {title:?} (listed as empty in the lab)"
        );
    }
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn every_dashboard_panel_returns_data_from_the_lab() {
    require_lab();
    let t = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    let certs = d.join("certs");
    let made = run_exporter(&["dev-certs", "--out", certs.to_str().expect("utf-8")]);
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
    let (token, entry) = new_token("ops", "operator");
    std::fs::write(d.join("pii.key"), [9u8; 32]).expect("write the pseudonym key");

    let port = free_loopback_port();
    let gw_config = d.join("gateway.toml");
    std::fs::write(&gw_config, gateway_config(port, d, &entry)).expect("write the gateway config");
    let check = run_exporter(&[
        "check-config",
        "--config",
        gw_config.to_str().expect("utf-8"),
    ]);
    assert!(check.status.success(), "check-config: {}", check.stderr);
    let mut server = Server::start(&gw_config, &d.join("gateway.log"));

    let prom_dir = d.join("prometheus");
    std::fs::create_dir_all(prom_dir.join("tsdb")).expect("create the Prometheus directory");
    std::fs::copy(certs.join("ca.pem"), prom_dir.join("ca.pem")).expect("copy the CA");
    std::fs::write(prom_dir.join("operator.token"), format!("{token}\n")).expect("write the token");
    let prom_config = prom_dir.join("prometheus.yml");
    std::fs::write(
        &prom_config,
        prometheus_config(
            &format!("127.0.0.1:{port}"),
            &workspace_path("deploy/prometheus/alerts.yml"),
        ),
    )
    .expect("write prometheus.yml");
    let mut prom = Prometheus::start(
        &prom_config,
        &prom_dir.join("tsdb"),
        &d.join("prometheus.log"),
    );

    // Up, with the lab's data (the first scrapes may precede the first poll).
    let deadline = Instant::now() + UP_WITHIN;
    loop {
        prom.assert_running();
        if let Some(st) = server.exited() {
            panic!("the gateway exited ({st}); log:\n{}", server.log());
        }
        let nodes = prom
            .query("slurm_cluster_nodes_configured")
            .unwrap_or_default();
        if nodes.first().is_some_and(|(_, n)| *n > 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no lab data in Prometheus within {UP_WITHIN:?}; targets: {:?}\ngateway log:\n{}\n\
             prometheus log:\n{}",
            prom.targets(),
            server.log(),
            prom.log()
        );
        sleep(Duration::from_millis(500));
    }
    let first_data = Instant::now();
    sleep(HISTORY);
    prom.assert_running();
    let range = format!("{}s", first_data.elapsed().as_secs());

    let mut failures = Vec::new();
    let mut summary = Vec::new();
    let (mut total_panels, mut total_with_data, mut total_queries, mut total_series) = (0, 0, 0, 0);
    for file in DASHBOARDS {
        let (queries, vars) = read_dashboard(file);
        let mut values: BTreeMap<String, String> = [
            ("__rate_interval", RATE_INTERVAL.to_owned()),
            ("__interval", format!("{SCRAPE_INTERVAL_SECONDS}s")),
            ("__range", range.clone()),
            ("datasource", String::new()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut var_report = Vec::new();
        for (name, selector, label) in &vars {
            let promql = format!("count by ({label}) ({})", expand(selector, &values));
            let found: Vec<String> = prom.label_values(&promql, label).into_iter().collect();
            var_report.push(format!("{name}={}", found.len()));
            let value = if found.is_empty() {
                ".*".to_owned() // Grafana's All: this lab has no such label (one cluster)
            } else {
                alternation(&found)
            };
            values.insert(name.clone(), value);
        }
        // Panel title -> (queries, series returned), and its finite values.
        let mut panels: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut finite: BTreeMap<String, usize> = BTreeMap::new();
        for q in &queries {
            let expr = expand(&q.expr, &values);
            let n = match prom.query(&expr) {
                Ok(r) => {
                    *finite.entry(q.panel.clone()).or_default() +=
                        r.iter().filter(|(_, v)| v.is_finite()).count();
                    r.len()
                }
                Err(e) => {
                    failures.push(format!("{}: {:?} {}: {e}", q.file, q.panel, q.ref_id));
                    0
                }
            };
            let e = panels.entry(q.panel.clone()).or_default();
            e.0 += 1;
            e.1 += n;
            total_queries += 1;
            total_series += n;
        }
        let with_data = panels.values().filter(|(_, n)| *n > 0).count();
        let nan_only: Vec<&String> = panels
            .iter()
            .filter(|(t, (_, n))| *n > 0 && finite.get(*t) == Some(&0))
            .map(|(t, _)| t)
            .collect();
        for (title, (_, n)) in &panels {
            let listed = LAB_EMPTY.iter().find(|(f, p, _)| f == file && p == title);
            let maybe = LAB_MAYBE_EMPTY
                .iter()
                .any(|(f, p, _)| f == file && p == title);
            match (n, listed) {
                _ if maybe => {}
                (0, None) => failures.push(format!(
                    "{file}: panel {title:?} has no data in the lab (fix it, or list it in \
                     LAB_EMPTY with the reason)"
                )),
                (n, Some((_, _, why))) if *n > 0 => failures.push(format!(
                    "{file}: panel {title:?} is listed as empty ({why}) but returned {n} series"
                )),
                _ => {}
            }
        }
        total_panels += panels.len();
        total_with_data += with_data;
        summary.push(format!(
            "{file}: {with_data}/{} panels with data, {} queries, {} series; variables {}; \
             no finite value (nothing finished in range, or a flat trend): {nan_only:?}",
            panels.len(),
            panels.values().map(|(q, _)| q).sum::<usize>(),
            panels.values().map(|(_, n)| n).sum::<usize>(),
            var_report.join(", ")
        ));
    }
    eprintln!(
        "{}\nall: {total_with_data}/{total_panels} panels with data, {total_queries} queries, \
         {total_series} series, $__range = {range}, in {:?}",
        summary.join("\n"),
        t.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(prom);
    let status = server
        .terminate(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "gateway after SIGTERM: {status}");
}
