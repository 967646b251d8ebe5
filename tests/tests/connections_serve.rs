//! The real binary's descriptor limit: `serve` raises its soft `RLIMIT_NOFILE` to the hard
//! limit at start, and says so when the hard limit is too low for `server.connections.max`
//! (then serving fewer connections, so `accept` never runs out of descriptors). The limits
//! are set for the child only, by the shell that `exec`s it.
#![allow(clippy::disallowed_methods)] // the shell sets the child's limits

use e2e::{exporter_bin, free_loopback_port, run_exporter, workspace_root};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `slurm-exporter serve` over TLS with the simulator, after `ulimit ULIMIT` in its shell;
/// returns once it logged that it serves.
fn serve_with_ulimit(dir: &Path, ulimit: &str) -> Running {
    let port = free_loopback_port();
    let cfg = dir.join(format!("config-{port}.toml"));
    let text = format!(
        "{}\n[source]\nkind = \"sim\"\ninterval_seconds = 60\n[source.sim]\nnodes = 10\njobs = 20\n",
        e2e::toml::tls_server(port, dir)
    );
    std::fs::write(&cfg, text).expect("write config");
    let log = dir.join(format!("server-{port}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
        .arg(exporter_bin())
        .args(["serve", "--config", cfg.to_str().expect("utf-8")])
        .current_dir(workspace_root())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn sh");
    let r = Running { child, log };
    let t = Instant::now();
    while !r.log().contains("serving /metrics") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "not serving within 30 s:\n{}",
            r.log()
        );
        sleep(Duration::from_millis(100));
    }
    r
}

/// (soft, hard) `Max open files` of a process, from /proc.
fn nofile(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (v[0], v[1])
}

fn dev_certs(dir: &Path) {
    let made = run_exporter(&["dev-certs", "--out", dir.to_str().expect("utf-8")]);
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
}

#[test]
fn serve_raises_its_soft_descriptor_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    dev_certs(dir.path());
    let s = serve_with_ulimit(dir.path(), "-S -n 1024");
    let (soft, hard) = nofile(s.child.id());
    assert!(
        hard > 1024,
        "this test needs a hard RLIMIT_NOFILE over 1024, the machine gives {hard}"
    );
    assert_eq!(soft, hard, "soft RLIMIT_NOFILE after start");
    assert!(
        !s.log().contains("RLIMIT_NOFILE is low"),
        "no warning when the limit is high:\n{}",
        s.log()
    );
}

#[test]
fn a_hard_descriptor_limit_too_low_is_a_warning_and_a_lower_connection_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    dev_certs(dir.path());
    let s = serve_with_ulimit(dir.path(), "-n 512");
    assert_eq!(nofile(s.child.id()), (512, 512));
    let log = s.log();
    let warning = log
        .lines()
        .find(|l| l.contains("RLIMIT_NOFILE is low"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    // 512 descriptors, 256 kept for files and outbound connections.
    assert!(
        warning.contains("serving at most 256 connections"),
        "{warning}"
    );
    assert!(warning.contains("WARN"), "{warning}");
}
