//! Against the real Slurm 22.05 lab (`deploy/slurm-lab/lab.sh`): what the exporter reports
//! must be what plain `sinfo` and `squeue` say at the same moment.
//!
//! Ignored by default. Run them after `bash deploy/slurm-lab/lab.sh start && bash
//! deploy/slurm-lab/lab.sh submit-mix` (as root) and `cargo build -p slurm-exporter`:
//! `cargo nextest run -p slurm-exporter-e2e --run-ignored all` or
//! `cargo test -p slurm-exporter-e2e -- --include-ignored`.

use e2e::slurm::{require_lab, GroundTruth};
use e2e::{
    assert_promtool_ok, cluster_sum_errors, cluster_total, free_loopback_port, gunzip, http_get,
    run_exporter, workspace_path, Exposition, HttpResponse, Server,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Collects tried before giving up when Slurm keeps changing under the comparison.
const ATTEMPTS: usize = 3;
/// Node flags compared with sinfo.
const COMPARED_FLAGS: &[&str] = &["drain", "not_responding", "planned", "maintenance"];

type Counts = BTreeMap<Vec<String>, u64>;

fn series(metric: &str, keys: &[&str], values: &[String]) -> String {
    let labels: Vec<String> = keys
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{metric}{{{}}}", labels.join(","))
}

/// Everything in which the exporter disagrees with Slurm.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    fn value(&mut self, what: String, exporter: Option<f64>, slurm: u64) {
        match exporter {
            Some(v) if v == slurm as f64 => {}
            Some(v) => self.0.push(format!("{what}: exporter {v}, Slurm {slurm}")),
            None => self.0.push(format!("{what}: missing, Slurm {slurm}")),
        }
    }

    /// Every series of `metric` against `slurm`; absent on either side counts as 0.
    fn counts(&mut self, e: &Exposition, metric: &str, keys: &[&str], slurm: &Counts) {
        let got = match e.by_labels(metric, keys) {
            Ok(m) if m.is_empty() => return self.0.push(format!("{metric}: no series")),
            Ok(m) => m,
            Err(err) => return self.0.push(err),
        };
        let all: BTreeSet<&Vec<String>> = got.keys().chain(slurm.keys()).collect();
        for k in all {
            let g = got.get(k).copied().unwrap_or(0.0);
            let s = slurm.get(k).copied().unwrap_or(0);
            if g != s as f64 {
                self.0.push(format!(
                    "{}: exporter {g}, Slurm {s}",
                    series(metric, keys, k)
                ));
            }
        }
    }

    /// `slurm_jobs_pending_reason{partition,reason}`. The exporter labels Slurm's reason
    /// code; squeue prints slurmctld's description instead when there is one (e.g. "Nodes
    /// required for job are DOWN, DRAINED or reserved for jobs in higher priority
    /// partitions", whose code is `Resources`). So: every code squeue shows must be counted
    /// at least that often, and per partition what the exporter counts beyond those must
    /// be exactly the number of jobs squeue shows with a description.
    fn pending_reasons(&mut self, e: &Exposition, gt: &GroundTruth, notes: &mut Vec<String>) {
        const METRIC: &str = "slurm_jobs_pending_reason";
        const KEYS: &[&str] = &["partition", "reason"];
        let got = match e.by_labels(METRIC, KEYS) {
            Ok(m) => m,
            Err(err) => return self.0.push(err),
        };
        let (codes, descriptions) = gt.pending_reasons();
        let partitions: BTreeSet<&str> = got
            .keys()
            .chain(codes.keys())
            .map(|k| k[0].as_str())
            .chain(descriptions.keys().map(String::as_str))
            .collect();
        for p in partitions {
            let desc = descriptions.get(p).map_or(&[][..], Vec::as_slice);
            let keys: BTreeSet<&Vec<String>> = got
                .keys()
                .chain(codes.keys())
                .filter(|k| k[0] == p)
                .collect();
            let (mut extra, mut extra_at) = (0.0, Vec::new());
            for k in keys {
                let g = got.get(k).copied().unwrap_or(0.0);
                let s = codes.get(k).copied().unwrap_or(0) as f64;
                if g < s {
                    self.0.push(format!(
                        "{}: exporter {g}, squeue {s}",
                        series(METRIC, KEYS, k)
                    ));
                } else if g > s {
                    extra += g - s;
                    extra_at.push(format!("{}={}", k[1], g - s));
                }
            }
            if extra != desc.len() as f64 {
                self.0.push(format!(
                    "{METRIC}{{partition={p:?}}}: exporter counts {extra} pending job(s) beyond the reason codes squeue \
                     shows ({}), squeue shows {} with a description instead of a code ({})",
                    extra_at.join(", "),
                    desc.len(),
                    desc.join("; ")
                ));
            } else if !desc.is_empty() {
                notes.push(format!(
                    "partition {p}: {} pending job(s) with a description in squeue ({}) are counted by the exporter \
                     under {}",
                    desc.len(),
                    desc.join("; "),
                    extra_at.join(", ")
                ));
            }
        }
    }
}

/// Every number the exporter reports that sinfo/squeue can confirm.
fn compare(e: &Exposition, gt: &GroundTruth, source: &str, notes: &mut Vec<String>) -> Vec<String> {
    let mut m = Mismatches::default();
    m.value(
        format!("slurm_exporter_source_up{{source={source:?}}}"),
        e.get("slurm_exporter_source_up", &[("source", source)]),
        1,
    );
    m.0.extend(cluster_sum_errors(e));

    m.counts(e, "slurm_cluster_nodes", &["state"], &gt.nodes_by_state());
    m.value(
        "the node total".into(),
        cluster_total(e, "nodes").ok(),
        gt.nodes.len() as u64,
    );
    for flag in COMPARED_FLAGS {
        m.value(
            format!("slurm_cluster_node_flags{{flag={flag:?}}}"),
            e.get("slurm_cluster_node_flags", &[("flag", flag)]),
            gt.flag_count(flag),
        );
    }
    let cpus = gt.cpus();
    for (state, v) in cpus.by_state() {
        m.value(
            format!("slurm_cluster_cpus{{state={state:?}}}"),
            e.get("slurm_cluster_cpus", &[("state", state)]),
            v,
        );
    }
    m.value(
        "the CPU total".into(),
        cluster_total(e, "cpus").ok(),
        cpus.total,
    );
    let (gpus_alloc, gpus_total) = gt.gpus();
    m.value(
        "slurm_cluster_gpus{state=\"allocated\"}".into(),
        e.get("slurm_cluster_gpus", &[("state", "allocated")]),
        gpus_alloc,
    );
    m.value(
        "the GPU total".into(),
        cluster_total(e, "gpus").ok(),
        gpus_total,
    );
    m.counts(e, "slurm_node_cpus", &["node", "state"], &gt.node_cpus());
    m.counts(
        e,
        "slurm_partition_nodes",
        &["partition", "state"],
        &gt.partition_nodes(),
    );
    m.counts(
        e,
        "slurm_partition_cpus",
        &["partition", "state"],
        &gt.partition_cpus(),
    );

    m.counts(
        e,
        "slurm_cluster_jobs",
        &["state"],
        &gt.count_jobs(|j| vec![j.state.clone()]),
    );
    m.counts(
        e,
        "slurm_partition_jobs",
        &["partition", "state"],
        &gt.partition_jobs(),
    );
    m.counts(
        e,
        "slurm_account_jobs",
        &["account", "state"],
        &gt.count_jobs(|j| vec![j.account.clone(), j.state.clone()]),
    );
    m.counts(
        e,
        "slurm_user_jobs",
        &["user", "account", "state"],
        &gt.count_jobs(|j| vec![j.user.clone(), j.account.clone(), j.state.clone()]),
    );
    m.pending_reasons(e, gt, notes);
    m.0
}

/// `collect --once --config CONFIG` between two looks at sinfo/squeue; compared when both
/// looks agree (else retried, at most [`ATTEMPTS`] times).
fn source_matches_sinfo_and_squeue(source: &str, config: &str) {
    require_lab();
    let t = Instant::now();
    let config_path = workspace_path(config);
    let config_arg = config_path.to_str().expect("the workspace path is UTF-8");
    let args = ["collect", "--once", "--config", config_arg];
    for attempt in 1..=ATTEMPTS {
        let before =
            GroundTruth::take().unwrap_or_else(|e| panic!("ground truth before the collect: {e}"));
        let run = run_exporter(&args);
        let after =
            GroundTruth::take().unwrap_or_else(|e| panic!("ground truth after the collect: {e}"));
        assert!(
            run.status.success(),
            "slurm-exporter {} failed ({}): {}",
            args.join(" "),
            run.status,
            run.stderr.trim()
        );
        if before != after {
            let changed = before.diff(&after);
            assert!(
                attempt < ATTEMPTS,
                "{source}: Slurm changed during each of {ATTEMPTS} collects; last time: {changed}"
            );
            eprintln!("{source}: attempt {attempt}: Slurm changed during the collect ({changed}); retrying");
            sleep(Duration::from_secs(2));
            continue;
        }
        let what = format!("{source} source ({config})");
        assert_promtool_ok(&what, &run.stdout);
        let e = Exposition::parse(&run.stdout_text()).unwrap_or_else(|err| panic!("{what}: {err}"));
        let mut notes = after.notes.clone();
        let errs = compare(&e, &after, source, &mut notes);
        for n in &notes {
            eprintln!("{source}: note: {n}");
        }
        assert!(
            errs.is_empty(),
            "{what} disagrees with sinfo/squeue in {} place(s):\n  {}",
            errs.len(),
            errs.join("\n  ")
        );
        eprintln!(
            "{what}: matches sinfo/squeue ({} nodes, {} jobs; collect took {:?}; attempt {attempt}; {:?} in all)",
            after.nodes.len(),
            after.jobs.len(),
            run.elapsed,
            t.elapsed()
        );
        return;
    }
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn rest_source_matches_sinfo_and_squeue() {
    source_matches_sinfo_and_squeue("rest", "config/rest.toml");
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn cli_source_matches_sinfo_and_squeue() {
    source_matches_sinfo_and_squeue("cli", "config/cli.toml");
}

const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

fn get_metrics(addr: SocketAddr, headers: &[(&str, &str)]) -> HttpResponse {
    let r = http_get(addr, "/metrics", headers, HTTP_TIMEOUT)
        .unwrap_or_else(|e| panic!("/metrics with {headers:?}: {e}"));
    assert_eq!(r.status, 200, "/metrics with {headers:?}: status");
    r
}

/// Checks a text exposition served by the REST source: promtool, no duplicate series, the
/// source up, the sums, and the node count.
fn check_text_exposition(what: &str, body: &[u8], nodes: usize) -> Exposition {
    assert_promtool_ok(what, body);
    let text = std::str::from_utf8(body).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    let e = Exposition::parse(text).unwrap_or_else(|err| panic!("{what}: {err}"));
    assert_eq!(
        e.get("slurm_exporter_source_up", &[("source", "rest")]),
        Some(1.0),
        "{what}: slurm_exporter_source_up{{source=\"rest\"}}"
    );
    let errs = cluster_sum_errors(&e);
    assert!(errs.is_empty(), "{what}: {}", errs.join("; "));
    assert_eq!(
        cluster_total(&e, "nodes"),
        Ok(nodes as f64),
        "{what}: the node total"
    );
    e
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn serve_with_rest_source_answers_text_openmetrics_and_gzip_then_exits_0_on_sigterm() {
    require_lab();
    let t = Instant::now();
    let nodes = GroundTruth::take()
        .unwrap_or_else(|e| panic!("sinfo/squeue: {e}"))
        .nodes
        .len();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_loopback_port()));

    // config/rest.toml, listening on a free loopback port.
    let rest = workspace_path("config/rest.toml");
    let mut cfg: toml::Table = std::fs::read_to_string(&rest)
        .expect("read config/rest.toml")
        .parse()
        .expect("config/rest.toml is TOML");
    cfg.entry("server")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[server] is a table")
        .insert("listen".into(), toml::Value::String(addr.to_string()));
    let cfg_path = dir.path().join("rest.toml");
    std::fs::write(
        &cfg_path,
        toml::to_string(&cfg).expect("serialize the config"),
    )
    .expect("write the config");

    let mut server = Server::start(&cfg_path, &dir.path().join("serve.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = server.exited() {
            panic!(
                "serve exited before /readyz was 200 ({st}); log:\n{}",
                server.log()
            );
        }
        let last = http_get(addr, "/readyz", &[], Duration::from_secs(2));
        if last.as_ref().is_ok_and(|r| r.status == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 within 30 s (last: {:?}); log:\n{}",
            last.map(|r| (r.status, String::from_utf8_lossy(&r.body).into_owned())),
            server.log()
        );
        sleep(Duration::from_millis(200));
    }
    let ready_after = t.elapsed();
    let health = http_get(addr, "/healthz", &[], HTTP_TIMEOUT).expect("/healthz");
    assert_eq!(health.status, 200, "/healthz");

    // Text format 0.0.4, uncompressed.
    let r = get_metrics(addr, &[]);
    assert_eq!(
        r.header("content-type"),
        Some(TEXT_TYPE),
        "/metrics: Content-Type"
    );
    assert_eq!(
        r.header("content-encoding"),
        None,
        "/metrics: Content-Encoding"
    );
    let text = check_text_exposition("/metrics", &r.body, nodes);

    // OpenMetrics 1.0 when asked for.
    let r = get_metrics(
        addr,
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    assert_eq!(
        r.header("content-type"),
        Some(OPENMETRICS_TYPE),
        "/metrics (OpenMetrics): Content-Type"
    );
    let body = String::from_utf8(r.body).expect("OpenMetrics body is UTF-8");
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics body does not end with \"# EOF\\n\": ...{:?}",
        &body[body.len().saturating_sub(80)..]
    );
    // Not promtool: its text-format lint reads an OpenMetrics counter family `x` with samples
    // `x_total` as two metrics and reports "no help text". The parser checks the syntax.
    let om = Exposition::parse(&body).unwrap_or_else(|e| panic!("/metrics (OpenMetrics): {e}"));
    assert!(om.eof, "OpenMetrics: # EOF is not the last line");
    assert_eq!(
        cluster_total(&om, "nodes"),
        cluster_total(&text, "nodes"),
        "OpenMetrics and text disagree on the node total"
    );

    // gzip when Accept-Encoding allows it.
    let r = get_metrics(addr, &[("Accept-Encoding", "gzip")]);
    assert_eq!(
        r.header("content-encoding"),
        Some("gzip"),
        "/metrics (gzip): Content-Encoding"
    );
    assert_eq!(
        r.header("content-type"),
        Some(TEXT_TYPE),
        "/metrics (gzip): Content-Type"
    );
    assert!(
        r.body.starts_with(&[0x1f, 0x8b]),
        "/metrics (gzip): the body is not gzip"
    );
    let plain = gunzip(&r.body).unwrap_or_else(|e| panic!("/metrics (gzip): {e}"));
    check_text_exposition("/metrics (gunzipped)", &plain, nodes);

    let status = server
        .terminate(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(0), "serve after SIGTERM: {status}");
    eprintln!(
        "serve: ready after {ready_after:?}, text {} series, OpenMetrics {} series, gzip {} -> {} bytes, {:?} in all",
        text.series.len(),
        om.series.len(),
        r.body.len(),
        plain.len(),
        t.elapsed()
    );
}

/// sinfo/squeue text and an exposition that agrees with it, for the offline self-test.
const SINFO: &str = "n1|mixed|16/16/0/32|p1*|gpu:a100:4|gpu:a100:2(IDX:0-1)|mixed|
n2|drained|0/0/32/32|p1*|(null)|gpu:0|idle+drain|
n2|drained|0/0/32/32|p2|(null)|gpu:0|idle+drain|
";
const SQUEUE: &str = "1|RUNNING|p1|acct|alice|None
2_1|PENDING|p1,p2|acct|alice|JobArrayTaskLimit
2_2|PENDING|p1,p2|acct|alice|JobArrayTaskLimit
3|PENDING|p1|acct|bob|Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions
";
const AGREEING: &str = r#"slurm_exporter_source_up{source="rest"} 1
slurm_cluster_nodes{state="allocated"} 0
slurm_cluster_nodes{state="mixed"} 1
slurm_cluster_nodes{state="idle"} 1
slurm_cluster_nodes_configured 2
slurm_cluster_node_flags{flag="drain"} 1
slurm_cluster_node_flags{flag="not_responding"} 0
slurm_cluster_node_flags{flag="planned"} 0
slurm_cluster_node_flags{flag="maintenance"} 0
slurm_cluster_cpus{state="allocated"} 16
slurm_cluster_cpus{state="idle"} 16
slurm_cluster_cpus{state="other"} 32
slurm_cluster_cpus_configured 64
slurm_cluster_gpus{state="allocated"} 2
slurm_cluster_gpus{state="idle"} 2
slurm_cluster_gpus_configured 4
slurm_node_cpus{node="n1",state="allocated"} 16
slurm_node_cpus{node="n1",state="idle"} 16
slurm_node_cpus{node="n1",state="other"} 0
slurm_node_cpus{node="n2",state="allocated"} 0
slurm_node_cpus{node="n2",state="idle"} 0
slurm_node_cpus{node="n2",state="other"} 32
slurm_partition_nodes{partition="p1",state="mixed"} 1
slurm_partition_nodes{partition="p1",state="idle"} 1
slurm_partition_nodes{partition="p2",state="idle"} 1
slurm_partition_cpus{partition="p1",state="allocated"} 16
slurm_partition_cpus{partition="p1",state="idle"} 16
slurm_partition_cpus{partition="p1",state="other"} 32
slurm_partition_cpus{partition="p2",state="other"} 32
slurm_cluster_jobs{state="running"} 1
slurm_cluster_jobs{state="pending"} 3
slurm_partition_jobs{partition="p1",state="running"} 1
slurm_partition_jobs{partition="p1",state="pending"} 3
slurm_partition_jobs{partition="p2",state="pending"} 2
slurm_account_jobs{account="acct",state="running"} 1
slurm_account_jobs{account="acct",state="pending"} 3
slurm_user_jobs{user="alice",account="acct",state="running"} 1
slurm_user_jobs{user="alice",account="acct",state="pending"} 2
slurm_user_jobs{user="bob",account="acct",state="pending"} 1
slurm_jobs_pending_reason{partition="p1",reason="JobArrayTaskLimit"} 2
slurm_jobs_pending_reason{partition="p2",reason="JobArrayTaskLimit"} 2
slurm_jobs_pending_reason{partition="p1",reason="Resources"} 1
"#;

/// The comparison itself, without the lab: silent on an agreeing exposition, and it names
/// each wrong number.
#[test]
fn comparison_with_sinfo_and_squeue_names_every_wrong_number() {
    let gt = GroundTruth::from_text(SINFO, SQUEUE).expect("ground truth from the fixture");
    let check = |text: &str| {
        let e = Exposition::parse(text).expect("the fixture exposition parses");
        compare(&e, &gt, "rest", &mut Vec::new())
    };
    let errs = check(AGREEING);
    assert!(errs.is_empty(), "an agreeing exposition: {errs:#?}");
    for (from, to, expect) in [
        (
            r#"{state="other"} 32"#,
            r#"{state="other"} 31"#,
            r#"slurm_cluster_cpus{state="other"}"#,
        ),
        (
            r#"{flag="drain"} 1"#,
            r#"{flag="drain"} 0"#,
            r#"slurm_cluster_node_flags{flag="drain"}"#,
        ),
        (
            "gpus{state=\"allocated\"} 2",
            "gpus{state=\"allocated\"} 1",
            "slurm_cluster_gpus{state=\"allocated\"}",
        ),
        (
            "\"p2\",state=\"pending\"} 2",
            "\"p2\",state=\"pending\"} 0",
            "slurm_partition_jobs{partition=\"p2\",state=\"pending\"}",
        ),
        (
            "\"bob\",account=\"acct\",state=\"pending\"} 1",
            "\"bob\",account=\"acct\",state=\"running\"} 1",
            "slurm_user_jobs{user=\"bob\"",
        ),
        (
            "reason=\"Resources\"} 1",
            "reason=\"Resources\"} 2",
            "beyond the reason codes",
        ),
        (
            "reason=\"JobArrayTaskLimit\"} 2",
            "reason=\"JobArrayTaskLimit\"} 1",
            "reason=\"JobArrayTaskLimit\"}: exporter 1, squeue 2",
        ),
        (
            "source_up{source=\"rest\"} 1",
            "source_up{source=\"rest\"} 0",
            "slurm_exporter_source_up",
        ),
    ] {
        assert!(AGREEING.contains(from), "fixture has {from}");
        let errs = check(&AGREEING.replacen(from, to, 1));
        assert!(
            errs.iter().any(|e| e.contains(expect)),
            "changing {from} to {to}: want a mismatch naming {expect}, got {errs:#?}"
        );
    }
    let errs = check(&AGREEING.replace("slurm_cluster_nodes_configured 2\n", ""));
    assert!(
        errs.iter().any(|e| e.contains("missing")),
        "without the node total: {errs:#?}"
    );
}
