//! The shipped systemd unit (`deploy/systemd/slurm-exporter.service`): `systemd-analyze verify`
//! accepts it, and `systemd-analyze security --offline=true` rates its exposure at most 2.0
//! ("OK"), the figure deploy/systemd/README.md quotes.
#![allow(clippy::disallowed_methods)] // runs dpkg, rpm, systemd-analyze, python3 and the exporter

use e2e::{exporter_bin, run, workspace_path};
use std::process::Command;
use std::time::Duration;

const UNIT: &str = "deploy/systemd/slurm-exporter.service";
const INSTALLED_BIN: &str = "/usr/bin/slurm-exporter";

/// The unit as shipped, with `ExecStart` pointing at the binary under test (verify checks
/// that the program exists), in a temporary directory named like the unit.
fn unit_under_test() -> (tempfile::TempDir, std::path::PathBuf) {
    let text = std::fs::read_to_string(workspace_path(UNIT)).expect("the unit file");
    assert!(
        text.contains(INSTALLED_BIN),
        "ExecStart names {INSTALLED_BIN}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("slurm-exporter.service");
    let bin = exporter_bin();
    std::fs::write(&path, text.replace(INSTALLED_BIN, &bin.to_string_lossy())).expect("write");
    (dir, path)
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let (_dir, unit) = unit_under_test();
    let out = run(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit),
        None,
        Duration::from_secs(60),
    )
    .expect("systemd-analyze runs");
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "systemd-analyze verify: {}{}",
        out.stdout_text(),
        out.stderr
    );
}

#[test]
fn the_unit_is_hardened() {
    let (_dir, unit) = unit_under_test();
    let out = run(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&unit),
        None,
        Duration::from_secs(60),
    )
    .expect("systemd-analyze runs");
    let text = format!("{}{}", out.stdout_text(), out.stderr);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            let rest = l.split("Overall exposure level for").nth(1)?;
            rest.split(':')
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    // The settings the README and SECURITY.md name, each present (a unit that dropped one
    // could still score under 2.0).
    let shipped = std::fs::read_to_string(workspace_path(UNIT)).expect("unit");
    for directive in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "ReadWritePaths=/var/lib/slurm-exporter",
        "LimitNOFILE=",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(shipped.contains(directive), "the unit lacks {directive:?}");
    }
}
