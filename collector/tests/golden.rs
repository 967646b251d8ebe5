//! Golden expositions: every captured Slurm release under `testdata/<source>/<release>/`
//! is replayed with a fixed "now" and must encode exactly to its `golden.prom`. Review the
//! diff, then refresh with `UPDATE_GOLDEN=1 cargo test -p slurm-exporter-collector --test golden`.

use collector::families::{collect_all, Options};
use collector::poller::snapshot_from;
use collector::source::replay::read_dir;
use collector::store::{encode, Format};
use std::path::Path;

const NOW: u64 = 1_795_860_300;

fn exposition(dir: &Path) -> String {
    let parts = read_dir(dir, Some(NOW)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
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

#[test]
fn every_captured_release_matches_its_golden_exposition() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    for source in ["rest", "cli"] {
        let Ok(entries) = std::fs::read_dir(root.join(source)) else {
            continue;
        };
        for e in entries {
            let dir = e.expect("dir entry").path();
            if !dir.is_dir() {
                continue;
            }
            let got = exposition(&dir);
            let golden = dir.join("golden.prom");
            if update {
                std::fs::write(&golden, &got).expect("write golden");
            }
            let want = std::fs::read_to_string(&golden)
                .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
            assert!(
                got == want,
                "{} differs from {}; review and refresh with UPDATE_GOLDEN=1",
                dir.display(),
                golden.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected REST and CLI captures, checked {checked}"
    );
}

#[test]
fn rest_and_cli_captures_of_one_cluster_agree_on_nodes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let pick = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("slurm_cluster_nodes") || l.starts_with("slurm_cluster_cpus"))
            .map(str::to_owned)
            .collect()
    };
    let rest = exposition(&root.join("rest/22.05.8"));
    let cli = exposition(&root.join("cli/22.05.8"));
    assert!(!pick(&rest).is_empty());
    assert_eq!(pick(&rest), pick(&cli));
}
