//! METRICS.md lists every metric the exporter makes: name, type, labels, help, family and
//! the sources that feed it. This test regenerates the table from the code over the
//! simulator (every family fed) and the 22.05 captures, and fails when the file drifts.
//! Refresh with `UPDATE_METRICS=1 cargo test -p slurm-exporter-collector --test metrics_doc`.

use collector::families::{exporter, Options, FAMILIES};
use collector::poller::{snapshot_from, PollConfig, Runner};
use collector::source::replay::read_dir;
use collector::store::{Kind, Sink};
use sim::{SimSource, SimSpec};
use std::collections::BTreeMap;
use std::path::Path;

struct Row {
    kind: &'static str,
    labels: String,
    help: String,
    family: &'static str,
}

/// An in-memory chargeback store pricing CPU-hours, so the `chargeback` family is fed.
fn chargeback_store() -> collector::charge::Chargeback {
    let cal = chargeback::Calendar::new(chargeback::Period::Month, "UTC").expect("zone");
    let card =
        chargeback::RateCard::parse("currency = \"EUR\"\n[[prices]]\ncpu = 0.05\n", "t", &cal)
            .expect("card");
    let store = chargeback::Store::in_memory().expect("store");
    collector::charge::Chargeback::new(std::sync::Arc::new(std::sync::Mutex::new(store)), cal, card)
}

fn rows() -> BTreeMap<String, Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = Runner::new(
        Box::new(SimSource::new(SimSpec {
            nodes: 200,
            jobs: 2000,
            seed: 1,
        })),
        PollConfig::default(),
    )
    .with_chargeback(chargeback_store());
    rt.block_on(runner.poll_once()).expect("sim poll");
    let sim = collector::poller::fuse(&[&runner], None);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rest/22.05.8");
    let parts = read_dir(&root, Some(1_795_860_300)).expect("capture replays");
    let lab = snapshot_from(Some(&parts), Vec::new(), Some("lab"));
    // The CLI capture adds what only the CLI reads (sprio).
    let cli_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cli/22.05.8");
    let cli_parts = read_dir(&cli_dir, Some(1_795_860_300)).expect("capture replays");
    let cli = snapshot_from(Some(&cli_parts), Vec::new(), Some("lab"));
    let opts = Options {
        per_job: true,
        ..Options::default()
    };
    let mut out = BTreeMap::new();
    for snap in [&sim, &lab, &cli] {
        let mut each: Vec<(&'static str, Sink)> = Vec::new();
        for (family, collect) in FAMILIES {
            let mut sink = Sink::default();
            collect(snap, &opts, &mut sink);
            each.push((family, sink));
        }
        let mut sink = Sink::default();
        exporter::collect(snap, &[], &mut sink);
        each.push(("exporter", sink));
        for (family, sink) in each {
            for f in sink.into_families() {
                let name = match f.kind {
                    Kind::Counter => format!("{}_total", f.name),
                    _ => f.name.to_string(),
                };
                out.entry(name).or_insert_with(|| Row {
                    kind: match f.kind {
                        Kind::Gauge => "gauge",
                        Kind::Counter => "counter",
                        Kind::Histogram => "histogram",
                    },
                    labels: f.label_names.join(", "),
                    help: f.help.replace('|', "\\|"),
                    family,
                });
            }
        }
    }
    out
}

/// Which sources feed a family: the REST and CLI sources and the simulator feed them all.
fn sources(family: &str) -> &'static str {
    match family {
        "exporter" => "the exporter itself",
        "chargeback" => "rest, cli, sim, replay (with `[chargeback]`)",
        _ => "rest, cli, sim, replay",
    }
}

fn render(rows: &BTreeMap<String, Row>) -> String {
    let mut s = String::from(
        "# Metrics\n\n\
         Every metric SLURM Exporter makes, generated from the code by\n\
         `collector/tests/metrics_doc.rs` (the test fails when this file drifts; refresh with\n\
         `UPDATE_METRICS=1 cargo test -p slurm-exporter-collector --test metrics_doc`).\n\
         Every metric belongs to one family. A family's name is the word `collectors.disabled`\n\
         and `[collectors.label_budgets]` take and the `family` label of `slurm_exporter_series`;\n\
         it is the subject of its metrics' names (`accounts` -> `slurm_account_*`), or the word\n\
         they all carry (`fairshare`, `limits`, `cgroup`). Besides the families below, `external`\n\
         holds the series ingested from Prometheus-text sources (slurmctld's `/metrics`,\n\
         node_exporter, textfiles): it is switched off and budgeted the same way. Renamed\n\
         families keep their old names as deprecated aliases (a warning at load): `users` is\n\
         `accounts`, `usage` is `cgroup`. `slurm_job_*` series are opt-in (`collectors.per_job`).\n\n",
    );
    s.push_str(&format!("{} metric names.\n\n", rows.len()));
    s.push_str("| metric | type | labels | family | sources | help |\n|---|---|---|---|---|---|\n");
    for (name, r) in rows {
        s.push_str(&format!(
            "| `{name}` | {} | {} | {} | {} | {} |\n",
            r.kind,
            r.labels,
            r.family,
            sources(r.family),
            r.help
        ));
    }
    s
}

#[test]
fn metrics_md_matches_the_code() {
    let got = render(&rows());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../METRICS.md");
    if std::env::var_os("UPDATE_METRICS").is_some() {
        std::fs::write(&path, &got).expect("write METRICS.md");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "METRICS.md is out of date: run UPDATE_METRICS=1 cargo test -p slurm-exporter-collector --test metrics_doc"
    );
}

/// The name prefixes of each family's metrics: a family is named for the subject of its
/// metrics (`accounts` -> `slurm_account_*`, users being inside accounts) or for the word they
/// all carry (`fairshare`, `limit`, `priority`, `cgroup`). `accounting` is the counters of
/// finished jobs at every scope; `jobs` keeps its two per-QOS queue gauges.
const PREFIXES: &[(&str, &[&str])] = &[
    ("cluster", &["slurm_cluster_", "slurm_info"]),
    ("partitions", &["slurm_partition_"]),
    ("nodes", &["slurm_node_"]),
    ("jobs", &["slurm_job_", "slurm_jobs_", "slurm_qos_job"]),
    ("accounts", &["slurm_account_", "slurm_user_"]),
    ("gpus", &["slurm_gpu_"]),
    (
        "fairshare",
        &["slurm_account_fairshare_", "slurm_user_fairshare_"],
    ),
    // Limits and, beside them, the use they are measured against.
    (
        "limits",
        &[
            "slurm_account_limit_",
            "slurm_user_limit_",
            "slurm_qos_",
            "slurm_account_usage_",
            "slurm_user_usage_",
            "slurm_account_qos_usage_",
            "slurm_user_qos_usage_",
        ],
    ),
    ("priority", &["slurm_partition_pending_priority_"]),
    ("scheduler", &["slurm_scheduler_"]),
    ("rpc", &["slurm_rpc_"]),
    ("controllers", &["slurm_controller"]),
    ("reservations", &["slurm_reservation_"]),
    ("licenses", &["slurm_license_"]),
    ("accounting", &["slurm_exporter_accounting_", "_total"]),
    ("chargeback", &["slurm_chargeback_"]),
    ("cgroup", &["slurm_job_cgroup_"]),
    ("exporter", &["slurm_exporter_"]),
];

#[test]
fn family_names_are_the_names_their_metrics_carry() {
    let families: Vec<&str> = FAMILIES.iter().map(|(n, _)| *n).collect();
    let listed: Vec<&str> = PREFIXES.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        listed[..listed.len() - 1],
        families[..],
        "every family has its prefixes"
    );
    for (name, r) in rows() {
        let (_, prefixes) = PREFIXES
            .iter()
            .find(|(f, _)| *f == r.family)
            .unwrap_or_else(|| panic!("{name}: family {} unlisted", r.family));
        let matches = |p: &&str| {
            if p.starts_with('_') {
                name.ends_with(*p)
            } else {
                name.starts_with(*p)
            }
        };
        assert!(
            prefixes.iter().any(matches),
            "{name} is in family {}, whose metrics are {prefixes:?}",
            r.family
        );
    }
}

#[test]
fn every_metric_has_help_and_a_prometheus_name() {
    for (name, r) in rows() {
        assert!(!r.help.trim().is_empty(), "{name} has no HELP");
        assert!(name.starts_with("slurm_"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}"
        );
        if r.kind != "counter" {
            assert!(
                !name.ends_with("_total"),
                "{name}: only counters end in _total"
            );
        }
    }
}
