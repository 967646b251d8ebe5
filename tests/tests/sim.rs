//! The exporter binary without Slurm: a simulated cluster, replayed captures, and a clean
//! failure. Needs only `cargo build -p slurm-exporter` and promtool.

use e2e::{
    assert_promtool_ok, cluster_sum_errors, cluster_total, collect_ok, run_exporter,
    workspace_path, Exposition,
};
use std::time::Instant;

fn parse(what: &str, text: &str) -> Exposition {
    // Parsing also rejects a series that appears twice.
    Exposition::parse(text).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn assert_sums(what: &str, e: &Exposition) {
    let errs = cluster_sum_errors(e);
    assert!(errs.is_empty(), "{what}: {}", errs.join("; "));
}

#[test]
fn sim_cluster_of_2000_nodes_and_20000_jobs_is_valid_rich_and_consistent() {
    let t = Instant::now();
    let out = collect_ok(&[
        "collect",
        "--once",
        "--source",
        "sim",
        "--sim-nodes",
        "2000",
        "--sim-jobs",
        "20000",
    ]);
    let what = "collect --once --source sim --sim-nodes 2000 --sim-jobs 20000";
    assert_promtool_ok(what, out.as_bytes());
    let e = parse(what, &out);
    let names = e.type_names();
    assert!(
        names.len() >= 80,
        "{what}: {} metric names in # TYPE lines, want at least 80: {names:?}",
        names.len()
    );
    assert_sums(what, &e);
    assert_eq!(
        cluster_total(&e, "nodes"),
        Ok(2000.0),
        "{what}: the node total"
    );
    assert_eq!(
        e.sum("slurm_cluster_nodes"),
        2000.0,
        "{what}: slurm_cluster_nodes by state"
    );
    eprintln!(
        "{what}: {} families, {} series, {} bytes in {:?}",
        names.len(),
        e.series.len(),
        out.len(),
        t.elapsed()
    );
}

fn replay_reports_16_nodes(dir: &str, now: Option<&str>) {
    let t = Instant::now();
    let dir_path = workspace_path(dir);
    let dir_arg = dir_path.to_str().expect("the workspace path is UTF-8");
    let mut args = vec![
        "collect",
        "--once",
        "--source",
        "replay",
        "--replay-dir",
        dir_arg,
    ];
    if let Some(now) = now {
        args.extend(["--now", now]);
    }
    let what = format!("collect --once --source replay --replay-dir {dir}");
    let out = collect_ok(&args);
    assert_promtool_ok(&what, out.as_bytes());
    let e = parse(&what, &out);
    assert_sums(&what, &e);
    assert_eq!(
        cluster_total(&e, "nodes"),
        Ok(16.0),
        "{what}: the node total"
    );
    assert_eq!(
        e.sum("slurm_cluster_nodes"),
        16.0,
        "{what}: slurm_cluster_nodes by state"
    );
    assert_eq!(
        e.get("slurm_exporter_source_up", &[("source", "replay")]),
        Some(1.0),
        "{what}: slurm_exporter_source_up"
    );
    eprintln!("{what}: {} series in {:?}", e.series.len(), t.elapsed());
}

#[test]
fn rest_replay_of_slurm_22_05_passes_promtool_and_reports_16_nodes() {
    replay_reports_16_nodes("collector/testdata/rest/22.05.8", Some("1795860300"));
}

#[test]
fn cli_replay_of_slurm_22_05_passes_promtool_and_reports_16_nodes() {
    replay_reports_16_nodes("collector/testdata/cli/22.05.8", None);
}

#[test]
fn replay_of_a_missing_directory_fails_with_one_stderr_line_naming_it() {
    let r = run_exporter(&[
        "collect",
        "--once",
        "--source",
        "replay",
        "--replay-dir",
        "/nonexistent",
    ]);
    assert!(
        !r.status.success(),
        "replaying /nonexistent succeeded: {}",
        r.stdout_text()
    );
    assert!(
        r.stdout.is_empty(),
        "a failed collect printed on stdout: {}",
        r.stdout_text()
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "want exactly one stderr line, got: {:?}",
        r.stderr
    );
    assert!(
        lines[0].contains("/nonexistent"),
        "the error does not name the directory: {:?}",
        lines[0]
    );
}

#[test]
fn every_golden_exposition_passes_promtool() {
    let root = workspace_path("collector/testdata");
    let mut checked = 0;
    for source in std::fs::read_dir(&root).expect("testdata") {
        for release in std::fs::read_dir(source.expect("entry").path()).expect("source dir") {
            let golden = release.expect("entry").path().join("golden.prom");
            if let Ok(bytes) = std::fs::read(&golden) {
                assert_promtool_ok(&golden.display().to_string(), &bytes);
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2,
        "expected goldens for REST and CLI, found {checked}"
    );
}

#[test]
fn several_clusters_in_one_process_are_labelled_and_valid() {
    let config = workspace_path("config/multi-cluster.toml");
    let config = config.to_str().expect("utf-8 path");
    let text = collect_ok(&["collect", "--once", "--config", config]);
    assert_promtool_ok("multi-cluster", text.as_bytes());
    let e = parse("multi-cluster", &text);
    assert_eq!(
        e.get("slurm_cluster_nodes_configured", &[("cluster", "east")]),
        Some(16.0)
    );
    assert_eq!(
        e.get("slurm_cluster_nodes_configured", &[("cluster", "west")]),
        Some(100.0)
    );
    for source in ["rest-capture", "cli-capture"] {
        assert_eq!(
            e.get(
                "slurm_exporter_source_up",
                &[("cluster", "east"), ("source", source)]
            ),
            Some(1.0),
            "{source}"
        );
    }
}
