//! The packages as an admin meets them: `packaging/build.sh` builds the .deb and the .rpm;
//! this installs the .deb on this machine (`dpkg -i`), checks what it put where, runs the
//! installed binary as the service user with the installed config against the real Slurm lab,
//! then purges it and checks that nothing is left. The .rpm is inspected with `rpm -qlp`.
//!
//! Ignored by default (root, the lab and the built packages are needed); the test command
//! (`tests/all.sh`) builds the packages and runs it.
#![allow(clippy::disallowed_methods)] // runs dpkg, rpm, systemd-analyze, python3 and the exporter

use e2e::slurm::{client, require_lab};
use e2e::{cluster_total, http_get, run, Exposition};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const LISTEN: &str = "127.0.0.1:9341";

/// What the packages must install, both of them.
const FILES: &[&str] = &[
    "/usr/bin/slurm-exporter",
    "/etc/slurm-exporter/slurm-exporter.toml",
    "/usr/share/man/man1/slurm-exporter.1.gz",
    "/usr/share/bash-completion/completions/slurm-exporter",
    "/usr/share/fish/vendor_completions.d/slurm-exporter.fish",
    "/usr/share/doc/slurm-exporter/README.md",
];

fn package(dir: &str, ext: &str) -> PathBuf {
    let dir = e2e::target_dir().join(dir);
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .collect::<Vec<PathBuf>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one .{ext} in {} (build it with: bash packaging/build.sh), found {found:?}",
        dir.display()
    );
    found[0].clone()
}

fn sh(program: &str, args: &[&str]) -> String {
    let r = run(
        Command::new(program).args(args),
        None,
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.status.success(),
        "{program} {args:?}: {}\n{}{}",
        r.status,
        r.stdout_text(),
        r.stderr
    );
    r.stdout_text()
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    run(
        Command::new(program).args(args),
        None,
        Duration::from_secs(60),
    )
    .is_ok_and(|r| r.status.success())
}

#[test]
#[ignore = "needs root, the Slurm lab and packaging/build.sh"]
fn the_rpm_lists_the_binary_config_unit_man_page_and_completions() {
    let rpm = package("rpm", "rpm");
    let listed = sh("rpm", &["-qlp", &rpm.to_string_lossy()]);
    for f in FILES
        .iter()
        .chain(&["/usr/lib/systemd/system/slurm-exporter.service"])
    {
        assert!(
            listed.lines().any(|l| l == *f),
            "{f} not in the .rpm:\n{listed}"
        );
    }
    let config = sh("rpm", &["-qcp", &rpm.to_string_lossy()]);
    assert!(
        config.contains("/etc/slurm-exporter/slurm-exporter.toml"),
        "the config is a %config file: {config}"
    );
    let scripts = sh("rpm", &["-qp", "--scripts", &rpm.to_string_lossy()]);
    assert!(scripts.contains("useradd --system"), "{scripts}");
    assert!(
        !scripts.contains("%systemd"),
        "an unexpanded macro in a scriptlet: {scripts}"
    );
    let state = sh(
        "rpm",
        &[
            "-qp",
            "--queryformat",
            "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\\n]",
            &rpm.to_string_lossy(),
        ],
    );
    assert!(
        state
            .lines()
            .any(|l| l == "drwx------ slurm-exporter slurm-exporter /var/lib/slurm-exporter"),
        "the state directory must be 0700 and the service user's:\n{state}"
    );
}

#[test]
#[ignore = "needs root, the Slurm lab and packaging/build.sh"]
fn the_deb_installs_serves_the_lab_and_purges_cleanly() {
    require_lab();
    let deb = package("debian", "deb");
    // A clean start, whatever an earlier run left.
    let _ = succeeds("dpkg", &["--purge", "slurm-exporter"]);
    sh("dpkg", &["-i", &deb.to_string_lossy()]);
    let guard = Purge;

    let listed = sh("dpkg", &["-L", "slurm-exporter"]);
    for f in FILES {
        assert!(
            listed.lines().any(|l| l == *f),
            "{f} not installed:\n{listed}"
        );
    }
    let unit = [
        "/lib/systemd/system/slurm-exporter.service",
        "/usr/lib/systemd/system/slurm-exporter.service",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).is_file())
    .unwrap_or_else(|| panic!("no systemd unit installed:\n{listed}"));
    sh("systemd-analyze", &["verify", "--man=no", unit]);
    sh("getent", &["passwd", "slurm-exporter"]);
    let mode = sh("stat", &["-c", "%a %U %G", "/var/lib/slurm-exporter"]);
    assert_eq!(mode.trim(), "700 slurm-exporter slurm-exporter");
    let mode = sh(
        "stat",
        &["-c", "%a %U %G", "/etc/slurm-exporter/slurm-exporter.toml"],
    );
    assert_eq!(mode.trim(), "640 root slurm-exporter");
    let man = sh(
        "sh",
        &[
            "-c",
            "zcat /usr/share/man/man1/slurm-exporter.1.gz | head -c 4096",
        ],
    );
    assert!(man.contains(".TH slurm-exporter"), "not a man page: {man}");

    // The installed binary, as the service user, with the installed config, against the lab.
    sh(
        "runuser",
        &[
            "-u",
            "slurm-exporter",
            "--",
            "/usr/bin/slurm-exporter",
            "check-config",
            "--config",
            "/etc/slurm-exporter/slurm-exporter.toml",
        ],
    );
    let mut child = Command::new("runuser")
        .args([
            "-u",
            "slurm-exporter",
            "--",
            "/usr/bin/slurm-exporter",
            "serve",
            "--config",
            "/etc/slurm-exporter/slurm-exporter.toml",
        ])
        .env("SLURM_CONF", "/etc/slurm/slurm.conf")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runuser");
    let addr: SocketAddr = LISTEN.parse().expect("address");
    let deadline = Instant::now() + Duration::from_secs(90);
    let body = loop {
        let ready =
            http_get(addr, "/readyz", &[], Duration::from_secs(5)).is_ok_and(|r| r.status == 200);
        if ready {
            let r = http_get(addr, "/metrics", &[], Duration::from_secs(10)).expect("scrape");
            assert_eq!(r.status, 200);
            break String::from_utf8(r.body).expect("UTF-8 exposition");
        }
        assert!(
            Instant::now() < deadline,
            "the installed exporter never became ready"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    stop_service_user_processes();
    let _ = child.kill();
    let _ = child.wait();
    let e = Exposition::parse(&body).expect("exposition");
    let nodes = client("sinfo", &["-h", "-N", "-o", "%N"]).expect("sinfo");
    let distinct: std::collections::BTreeSet<&str> = nodes.lines().map(str::trim).collect();
    assert_eq!(
        cluster_total(&e, "nodes").expect("node total"),
        distinct.len() as f64,
        "the installed exporter's node count against sinfo"
    );
    assert_eq!(
        e.get("slurm_exporter_source_up", &[("source", "cli")]),
        Some(1.0)
    );

    drop(guard);
    assert!(
        !succeeds("dpkg", &["-s", "slurm-exporter"]),
        "still installed after purge"
    );
    for f in FILES.iter().chain(&["/var/lib/slurm-exporter", unit]) {
        assert!(!std::path::Path::new(f).exists(), "{f} left after purge");
    }
    assert!(
        !succeeds("getent", &["passwd", "slurm-exporter"]),
        "the service user is left"
    );
}

/// SIGTERM to every process of the service user (runuser's child is the exporter), then
/// waits until none is left: a user with processes cannot be removed on purge.
fn stop_service_user_processes() {
    let _ = succeeds("pkill", &["-TERM", "-u", "slurm-exporter"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while succeeds("pgrep", &["-u", "slurm-exporter"]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = succeeds("pkill", &["-KILL", "-u", "slurm-exporter"]);
}

/// Purges the package however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        stop_service_user_processes();
        let _ = succeeds("dpkg", &["--purge", "slurm-exporter"]);
    }
}
