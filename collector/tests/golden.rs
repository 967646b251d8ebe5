//! Golden expositions: every captured Slurm release under `testdata/<source>/<release>/`
//! is replayed with a fixed "now" and must encode exactly to its `golden.prom`. Review the
//! diff, then refresh with `UPDATE_GOLDEN=1 cargo test -p slurm-exporter-collector --test golden`.
//!
//! The releases 23.02 to 26.05 model the same lab cluster as the 22.05.8 capture (16 nodes,
//! partitions cpu/gpu/himem/debug, a pending array `9-40%8`), each in the shape that
//! release's data_parser writes, so their goldens are comparable line by line. The counts
//! every release must give are in [`EXPECTED`].

use collector::families::{collect_all, Options};
use collector::model::JobState;
use collector::parse::versions::SUPPORTED;
use collector::poller::snapshot_from;
use collector::source::replay::{find_files, read_dir};
use collector::source::Parts;
use collector::store::{encode, Format};
use std::path::{Path, PathBuf};

const NOW: u64 = 1_795_860_300;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Every `testdata/<source>/<release>/` directory, sorted, as (source, release, path).
fn release_dirs() -> Vec<(&'static str, String, PathBuf)> {
    let mut out = Vec::new();
    for source in ["rest", "cli"] {
        let Ok(entries) = std::fs::read_dir(testdata().join(source)) else {
            continue;
        };
        for e in entries {
            let dir = e.expect("dir entry").path();
            if dir.is_dir() {
                let release = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((source, release, dir));
            }
        }
    }
    out.sort();
    out
}

fn parts_of(dir: &Path) -> Parts {
    read_dir(dir, Some(NOW)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn exposition(dir: &Path) -> String {
    let parts = parts_of(dir);
    let snap = snapshot_from(Some(&parts), Vec::new(), Some("lab"));
    let opts = Options {
        per_job: true,
        ..Options::default()
    };
    let fams = collect_all(&snap, &opts);
    let mut out = Vec::new();
    // The exporter's own health holds timings: leave it out of goldens.
    encode(
        &fams,
        Format::Text,
        &|o| *o != collector::store::Owner::Exporter,
        &mut out,
    );
    String::from_utf8(out).expect("expositions are UTF-8")
}

/// The value of the one series `name{labels}` (labels as written, `""` for none).
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let head = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn every_captured_release_matches_its_golden_exposition() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    let mut differ = Vec::new();
    for (_, _, dir) in release_dirs() {
        let got = exposition(&dir);
        let golden = dir.join("golden.prom");
        if update && std::fs::read_to_string(&golden).ok().as_deref() != Some(got.as_str()) {
            std::fs::write(&golden, &got).expect("write golden");
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
        if got != want {
            differ.push(dir.display().to_string());
        }
        checked += 1;
    }
    assert!(
        differ.is_empty(),
        "{differ:?} differ from their golden.prom; review and refresh with UPDATE_GOLDEN=1"
    );
    assert!(
        checked >= 2,
        "expected REST and CLI captures, checked {checked}"
    );
}

#[test]
fn rest_and_cli_captures_of_one_cluster_agree_on_nodes() {
    let pick = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("slurm_cluster_nodes") || l.starts_with("slurm_cluster_cpus"))
            .map(str::to_owned)
            .collect()
    };
    let mut pairs = 0;
    for (source, release, dir) in release_dirs() {
        let cli = testdata().join("cli").join(&release);
        if source != "rest" || !cli.is_dir() {
            continue;
        }
        let rest = exposition(&dir);
        assert!(!pick(&rest).is_empty(), "{release}");
        assert_eq!(pick(&rest), pick(&exposition(&cli)), "release {release}");
        pairs += 1;
    }
    assert!(pairs >= 2, "REST and CLI pairs compared: {pairs}");
}

/// What one release's fixtures must count, whatever their shape.
struct Expected {
    /// Nodes by base state: allocated, mixed, idle, down.
    nodes: [u64; 4],
    /// Jobs by state, array tasks counted: pending, running, completed, cancelled, failed, timeout.
    jobs: [u64; 6],
    /// CPUs allocated on all nodes.
    cpus_allocated: u64,
    /// The pending array meta-record (`9-40%8`) and the tasks it stands for.
    array_meta: (u64, u64),
}

/// Per release directory name (REST and CLI share it). 22.05.8 is the lab's real capture;
/// the newer releases are the lab modelled in each release's JSON shape: 16 nodes
/// (cpu-01..03,05 allocated, cpu-06 allocated+drain, cpu-04/gpu-01..03/himem-01 mixed,
/// cpu-07, cpu-08 (drain), gpu-04 (planned), himem-02 idle, cpu-09/10 down), 16 running
/// records (8 of them tasks of array 1134), 8 pending jobs plus the meta-record for tasks
/// 9-40 (32), 3 completed, 2 cancelled, 1 failed, 1 timeout.
fn expected(source: &str, release: &str) -> Expected {
    match (source, release) {
        // The CLI capture was taken moments after the REST one: one more job had timed out.
        (_, "22.05.8") => Expected {
            nodes: [5, 5, 4, 2],
            jobs: [42, 16, 12, 59, 1, if source == "cli" { 2 } else { 1 }],
            cpus_allocated: 307,
            array_meta: (1134, 32),
        },
        _ => Expected {
            nodes: [5, 5, 4, 2],
            jobs: [40, 16, 3, 2, 1, 1],
            cpus_allocated: 307,
            array_meta: (1134, 32),
        },
    }
}

#[test]
fn every_release_counts_nodes_jobs_and_array_tasks_right() {
    let dirs = release_dirs();
    assert!(dirs.len() >= 2);
    for (source, release, dir) in dirs {
        let what = format!("{source}/{release}");
        let want = expected(source, &release);
        let parts = parts_of(&dir);
        let nodes = parts.nodes.as_deref().unwrap_or_default();
        let jobs = parts.jobs.as_deref().unwrap_or_default();
        assert!(!nodes.is_empty(), "{what}: no nodes");
        assert!(!jobs.is_empty(), "{what}: no jobs");
        assert!(!parts.meta.release.is_empty(), "{what}: no release in meta");

        let (id, tasks) = want.array_meta;
        let meta = jobs
            .iter()
            .find(|j| j.job_id == id && j.array_task_id.is_none())
            .unwrap_or_else(|| panic!("{what}: no array meta-record {id}"));
        assert_eq!(meta.state, JobState::Pending, "{what}");
        assert_eq!(meta.task_count, tasks, "{what}: array {id} tasks");

        let text = exposition(&dir);
        let get = |name: &str, labels: &str| {
            sample(&text, name, labels).unwrap_or_else(|| panic!("{what}: no {name}{{{labels}}}"))
                as u64
        };
        let configured = get("slurm_cluster_nodes_configured", "");
        assert_eq!(configured, nodes.len() as u64, "{what}");
        let by_state: u64 = [
            "allocated",
            "mixed",
            "idle",
            "down",
            "error",
            "future",
            "unknown",
        ]
        .iter()
        .map(|s| get("slurm_cluster_nodes", &format!("state=\"{s}\"")))
        .sum();
        assert_eq!(by_state, configured, "{what}: nodes by base state");
        let nodes_got = ["allocated", "mixed", "idle", "down"]
            .map(|s| get("slurm_cluster_nodes", &format!("state=\"{s}\"")));
        assert_eq!(nodes_got, want.nodes, "{what}: nodes by base state");
        let jobs_got = [
            "pending",
            "running",
            "completed",
            "cancelled",
            "failed",
            "timeout",
        ]
        .map(|s| get("slurm_cluster_jobs", &format!("state=\"{s}\"")));
        assert_eq!(jobs_got, want.jobs, "{what}: jobs by state");
        assert_eq!(
            get("slurm_cluster_cpus", "state=\"allocated\""),
            want.cpus_allocated,
            "{what}: allocated CPUs"
        );
    }
}

/// Versions whose jobs and nodes no capture holds: the 22.05.8 lab capture has only
/// `slurm_v0.0.36_diag.json` and `slurm_v0.0.37_nodes.json` for them (22.05 serves .36-.38
/// and the exporter reads .38 there).
const PARTLY_CAPTURED: &[&str] = &["v0.0.36", "v0.0.37"];

#[test]
fn every_supported_api_version_has_a_fixture() {
    let rest: Vec<PathBuf> = release_dirs()
        .into_iter()
        .filter(|(source, _, _)| *source == "rest")
        .map(|(_, _, dir)| dir)
        .collect();
    let files: Vec<String> = rest
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for v in SUPPORTED {
        let prefix = v.slurm.trim_start_matches('/').replace('/', "_");
        assert!(
            files.iter().any(|f| f.starts_with(&format!("{prefix}_"))),
            "{}: no testdata/rest/<release>/{prefix}_*.json",
            v.name
        );
        if PARTLY_CAPTURED.contains(&v.name) {
            continue;
        }
        let jobs = format!("{prefix}_jobs.json");
        let nodes = format!("{prefix}_nodes.json");
        assert!(
            rest.iter()
                .any(|d| d.join(&jobs).is_file() && d.join(&nodes).is_file()),
            "{}: no testdata/rest/<release>/ holds {jobs} and {nodes}",
            v.name
        );
    }
    // ... and every REST directory is replayable.
    for dir in rest {
        find_files(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
}
