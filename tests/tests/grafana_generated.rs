//! The five generated dashboards are what `deploy/grafana/generate.py` makes of its tables:
//! nobody edited the JSON by hand, and nobody forgot to regenerate after editing the script.
#![allow(clippy::disallowed_methods)] // runs python3

use e2e::{run, workspace_path};
use std::process::Command;
use std::time::Duration;

#[test]
fn generated_dashboards_match_their_generator() {
    let script = workspace_path("deploy/grafana/generate.py");
    let r = run(
        Command::new("python3").arg(&script).arg("--check"),
        None,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e} (python3 is needed)"));
    assert!(
        r.status.success(),
        "{} --check: {}\n{}{}",
        script.display(),
        r.status,
        r.stdout_text(),
        r.stderr
    );
    // It names each of its five files, so a script that checks nothing cannot pass.
    let out = r.stdout_text();
    for f in [
        "slurm-overview.json",
        "slurm-jobs.json",
        "slurm-quotas.json",
        "slurm-capacity.json",
        "slurm-cost.json",
    ] {
        assert!(out.contains(&format!("{f}: ")), "{f} not checked: {out}");
    }
}
