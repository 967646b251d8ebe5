//! Helpers for the end-to-end tests of the `slurm-exporter` binary (`tests/tests/*.rs`).
//!
//! - [`exporter_bin`] finds the built binary; [`run`] runs any command with a deadline;
//!   [`Server`] runs `slurm-exporter serve` and stops it with SIGTERM.
//! - [`Exposition::parse`] reads Prometheus text 0.0.4 (and OpenMetrics 1.0) into a map of
//!   (name, sorted labels) -> value, and rejects a series that appears twice.
//! - [`promtool_check`] runs `promtool check metrics` on an exposition.
//! - [`http_get`] is a minimal HTTP/1.1 client on a `TcpStream`. It returns the body as
//!   sent (a gzip body stays gzip) and decodes chunked transfer encoding.
//! - [`slurm::GroundTruth`] is what plain `sinfo` and `squeue` print, reduced to what the
//!   exporter's metrics must say.
#![allow(clippy::disallowed_methods)] // this crate spawns the exporter, promtool, kill and the Slurm clients

pub mod catalog;
pub mod prometheus;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

// ------------------------------------------------------------------ paths and the binary

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// A path relative to the workspace root.
pub fn workspace_path(rel: &str) -> PathBuf {
    workspace_root().join(rel)
}

/// The cargo target directory: `CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The built `slurm-exporter` binary. `SLURM_EXPORTER_BIN` wins; else the binary of this
/// test's own profile (`<target>/<profile>/`, the parent of the test's `deps/`), else
/// `<target>/debug`, else `<target>/release`. Panics, saying how to build it, when there is none.
pub fn exporter_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(find_exporter_bin).clone()
}

fn find_exporter_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLURM_EXPORTER_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "SLURM_EXPORTER_BIN={} is not a file",
            p.display()
        );
        return p;
    }
    let name = format!("slurm-exporter{}", std::env::consts::EXE_SUFFIX);
    let mut tried = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            tried.push(profile_dir.join(&name));
        }
    }
    let target = target_dir();
    tried.push(target.join("debug").join(&name));
    tried.push(target.join("release").join(&name));
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => {
            warn_if_stale(p);
            p.clone()
        }
        None => panic!(
            "the slurm-exporter binary is not built (looked at {}): run `cargo build -p slurm-exporter` \
             first, or set SLURM_EXPORTER_BIN",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Says so on stderr when a source file of the exporter is newer than the binary: the
/// tests would be testing old code. Not an error: the tree may be edited while tests run.
fn warn_if_stale(bin: &Path) {
    let Some(built) = mtime(bin) else { return };
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for dir in ["collector/src", "gateway/src", "audit/src"] {
        newest_file(&workspace_path(dir), &mut newest);
    }
    if let Some((t, p)) = newest {
        if t > built {
            eprintln!(
                "warning: {} is older than {}: run `cargo build -p slurm-exporter`",
                bin.display(),
                p.display()
            );
        }
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn newest_file(dir: &Path, newest: &mut Option<(SystemTime, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            newest_file(&p, newest);
        } else if let Some(t) = mtime(&p) {
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                *newest = Some((t, p));
            }
        }
    }
}

// ------------------------------------------------------------------ processes

/// How long one `slurm-exporter collect --once` may take.
pub const EXPORTER_TIMEOUT: Duration = Duration::from_secs(120);

/// A finished process.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` to completion, feeding it `stdin`, and kills it after `timeout`. A non-zero
/// exit is not an error here (the caller decides); not starting or a timeout is.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Run, String> {
    let what = format!("{cmd:?}");
    let start = Instant::now();
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            // A child that exits without reading everything gives EPIPE: not our error.
            Some(thread::spawn(move || drop(pipe.write_all(&data))))
        }
        _ => None,
    };
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = start + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.join().unwrap_or_default();
                return Err(format!(
                    "{what} did not finish within {timeout:?}; stderr: {}",
                    String::from_utf8_lossy(&stderr).trim()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Run {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: start.elapsed(),
    })
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// `slurm-exporter ARGS` from the workspace root (relative paths in the tests are relative
/// to it), with `RUST_LOG` removed so that stderr holds only what the exporter means to say.
/// Slurm clients the exporter runs get the lab's `SLURM_CONF`.
pub fn exporter_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(exporter_bin());
    cmd.args(args)
        .current_dir(workspace_root())
        .env_remove("RUST_LOG")
        .env("SLURM_CONF", slurm::LAB_CONF);
    cmd
}

/// Runs `slurm-exporter ARGS` (with [`EXPORTER_TIMEOUT`]); panics only when it cannot run.
pub fn run_exporter(args: &[&str]) -> Run {
    run(&mut exporter_command(args), None, EXPORTER_TIMEOUT)
        .unwrap_or_else(|e| panic!("slurm-exporter {}: {e}", args.join(" ")))
}

/// Runs `slurm-exporter ARGS`, asserts it exits 0, and returns stdout.
pub fn collect_ok(args: &[&str]) -> String {
    let r = run_exporter(args);
    assert!(
        r.status.success(),
        "slurm-exporter {} failed ({}): {}",
        args.join(" "),
        r.status,
        r.stderr.trim()
    );
    String::from_utf8(r.stdout).unwrap_or_else(|e| {
        panic!(
            "slurm-exporter {}: stdout is not UTF-8: {e}",
            args.join(" ")
        )
    })
}

/// Status code and body of one curl request (`curl` is the independent client).
#[allow(clippy::disallowed_methods)]
pub fn curl(url: &str, args: &[&str]) -> (u16, String) {
    let r = run(
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
            .args(args)
            .arg(url),
        None,
        Duration::from_secs(20),
    )
    .expect("curl runs");
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// `token new`: the token (stdout) and its config entry (stderr), which holds only the hash.
pub fn new_token(tenant: &str, role: &str) -> (String, String) {
    let r = run_exporter(&["token", "new", "--tenant", tenant, "--role", role]);
    assert!(r.status.success(), "token new: {}", r.stderr);
    let token = String::from_utf8_lossy(&r.stdout).trim().to_owned();
    let entry = r
        .stderr
        .split_once("[[auth.api_tokens]]")
        .map(|(_, e)| format!("[[auth.api_tokens]]{e}"))
        .expect("the config entry");
    assert!(token.starts_with("sxp_"), "{token}");
    assert!(
        !entry.contains(&token),
        "the config entry must not hold the token"
    );
    (token, entry)
}

/// Config fragments the end-to-end tests share.
pub mod toml {
    use super::workspace_path;
    use std::path::Path;

    /// `[server]` on 127.0.0.1:`port` with `[server.tls]` from `dev-certs` output in `certs`
    /// (client certificates verified when given).
    pub fn tls_server(port: u16, certs: &Path) -> String {
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"

[server.tls]
cert_file = "{c}/server.pem"
key_file = "{c}/server-key.pem"
client_auth_type = "VerifyClientCertIfGiven"
client_ca_file = "{c}/ca.pem"
"#,
            c = certs.display()
        )
    }

    /// `[source]`: the captured 22.05.8 REST replies, at a fixed "now".
    pub fn replay_source() -> String {
        format!(
            r#"[source]
kind = "replay"
interval_seconds = 60
[source.replay]
dir = "{}"
now_epoch = 1795860300
"#,
            workspace_path("collector/testdata/rest/22.05.8").display()
        )
    }

    /// `[policies]` from `dir` (the shipped `policies/` when `None`).
    pub fn policies(dir: Option<&Path>) -> String {
        let d = dir.map_or_else(|| workspace_path("policies"), Path::to_path_buf);
        format!(
            "[policies]\nmodel = \"{}\"\npolicy = \"{}\"\n",
            d.join("model.conf").display(),
            d.join("policy.csv").display()
        )
    }
}

/// A loopback port nobody listens on right now.
pub fn free_loopback_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr()
        .expect("local address of a bound socket")
        .port()
}

/// A running `slurm-exporter serve`; killed (SIGKILL) on drop if still running.
pub struct Server {
    child: Child,
    log: PathBuf,
    audit: Option<AuditFiles>,
}

/// Where a test server's audit log and keys are.
#[derive(Debug, Clone)]
pub struct AuditFiles {
    pub dir: PathBuf,
    pub key_file: PathBuf,
    pub public_key: PathBuf,
}

impl AuditFiles {
    /// Every record, decrypted (`audit export`), as JSON values.
    pub fn export(&self) -> Vec<serde_json::Value> {
        let dir = self.dir.to_str().expect("UTF-8 path");
        let key = self.key_file.to_str().expect("UTF-8 path");
        let out = collect_ok(&["audit", "export", "--dir", dir, "--key-file", key]);
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("export line {l:?}: {e}")))
            .collect()
    }

    /// `audit verify` with the public key: Ok(summary) when intact.
    pub fn verify(&self) -> Result<String, String> {
        let dir = self.dir.to_str().expect("UTF-8 path");
        let public = self.public_key.to_str().expect("UTF-8 path");
        let r = run_exporter(&["audit", "verify", "--dir", dir, "--public-key", public]);
        if r.status.success() {
            Ok(r.stdout_text())
        } else {
            Err(format!("{}{}", r.stdout_text(), r.stderr))
        }
    }
}

impl Server {
    /// Starts `slurm-exporter serve --config CONFIG`; stdout and stderr go to `log`.
    ///
    /// Every test server audits: a config without `[audit]` gets one appended (log and keys
    /// beside the config), and [`Server::terminate`] fails unless `audit verify` passes on
    /// the log afterwards.
    pub fn start(config: &Path, log: &Path) -> Server {
        let audit = ensure_audit_section(config);
        let file = std::fs::File::create(log).expect("create the server log file");
        let file2 = file.try_clone().expect("clone the server log file handle");
        let config = config.to_str().expect("the config path is UTF-8");
        let child = exporter_command(&["serve", "--config", config])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .expect("spawn slurm-exporter serve");
        Server {
            child,
            log: log.to_path_buf(),
            audit,
        }
    }

    /// Polls `ok` every 100 ms until it holds; panics naming `what`, with the server's log,
    /// when it does not within `within`.
    pub fn wait_until(&self, what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
        let t = Instant::now();
        while !ok() {
            assert!(
                t.elapsed() < within,
                "{what}: not within {within:?}; server log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGHUP (`kill -HUP PID`), as an operator reloading the config would.
    pub fn hup(&self) {
        let pid = self.pid().to_string();
        let r = run(
            Command::new("kill").args(["-HUP", &pid]),
            None,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("kill -HUP {pid}: {e}"));
        assert!(r.status.success(), "kill -HUP {pid}: {}", r.stderr);
    }

    /// The server's audit log (None when its config brought its own `[audit]`).
    pub fn audit(&self) -> Option<&AuditFiles> {
        self.audit.as_ref()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status when the server has stopped.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (`kill -TERM PID`) and waits up to `timeout` for the exit.
    pub fn terminate(mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let pid = self.pid().to_string();
        let r = run(Command::new("kill").args(["-TERM", &pid]), None, timeout)?;
        if !r.status.success() {
            return Err(format!("kill -TERM {pid}: {}", r.stderr.trim()));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exited() {
                if let Some(a) = &self.audit {
                    a.verify()
                        .map_err(|e| format!("the server's audit log does not verify: {e}"))?;
                }
                return Ok(st);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "slurm-exporter serve (pid {pid}) did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Appends an `[audit]` section to a config without one; returns where the log will be.
fn ensure_audit_section(config: &Path) -> Option<AuditFiles> {
    let text = std::fs::read_to_string(config).expect("read the server config");
    if text.lines().any(|l| l.trim() == "[audit]") {
        return None;
    }
    let base = config
        .parent()
        .expect("the config has a directory")
        .join("audit-e2e");
    let files = AuditFiles {
        dir: base.join("log"),
        key_file: base.join("keyring.json"),
        public_key: base.join("public-key.pem"),
    };
    let section = format!(
        "\n[audit]\ndir = \"{}\"\nkey_file = \"{}\"\nsigning_key_file = \"{}\"\npublic_key_file = \"{}\"\n",
        files.dir.display(),
        files.key_file.display(),
        base.join("signing.pem").display(),
        files.public_key.display(),
    );
    std::fs::write(config, format!("{text}{section}")).expect("append [audit] to the config");
    Some(files)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------------ promtool

/// Runs `promtool check metrics` with the exposition on stdin (`PROMTOOL` names the binary,
/// default `promtool`; `bash deploy/test-deps.sh` installs it).
///
/// No lint message is accepted: promtool must exit 0 and print nothing but empty lines. It
/// prints its lint findings (a counter without `_total`, abbreviated units, a missing HELP,
/// ...) one per line and exits 3 for them; any such line is a failure.
pub fn promtool_check(exposition: &[u8]) -> Result<(), String> {
    let bin = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let r = run(
        Command::new(&bin).args(["check", "metrics"]),
        Some(exposition),
        Duration::from_secs(60),
    )
    .map_err(|e| format!("{e} (install promtool with `bash deploy/test-deps.sh`)"))?;
    let out = format!("{}\n{}", String::from_utf8_lossy(&r.stdout), r.stderr);
    let problems: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    if r.status.success() && problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics: {} with {} line(s):\n{}",
            r.status,
            problems.len(),
            problems.join("\n")
        ))
    }
}

/// Asserts that `promtool check metrics` passes; `what` names the exposition.
pub fn assert_promtool_ok(what: &str, exposition: &[u8]) {
    if let Err(e) = promtool_check(exposition) {
        panic!("{what}: {e}");
    }
}

// ------------------------------------------------------------------ exposition parser

/// Label pairs of one series, sorted by name.
pub type Labels = Vec<(String, String)>;
/// A series: metric name and sorted labels.
pub type SeriesKey = (String, Labels);

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub series: BTreeMap<SeriesKey, f64>,
    /// `# TYPE` lines: family name -> type.
    pub types: BTreeMap<String, String>,
    /// `# HELP` lines: family name -> text.
    pub helps: BTreeMap<String, String>,
    /// The last line was `# EOF` (OpenMetrics).
    pub eof: bool,
}

const TYPES: &[&str] = &[
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    "unknown",
    "info",
    "stateset",
    "gaugehistogram",
];

impl Exposition {
    /// Parses text format 0.0.4 or OpenMetrics 1.0. Errors name the line: a malformed line,
    /// the same series twice, a second `# HELP`/`# TYPE` for a family, content after `# EOF`.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut e = Exposition::default();
        let mut where_seen: BTreeMap<SeriesKey, usize> = BTreeMap::new();
        for (i, line) in text.split('\n').enumerate() {
            let n = i + 1;
            if line.is_empty() {
                continue;
            }
            if e.eof {
                return Err(format!("line {n}: content after # EOF: {line}"));
            }
            if let Some(comment) = line.strip_prefix('#') {
                let comment = comment.trim_start();
                let mut parts = comment.splitn(3, ' ');
                match parts.next() {
                    Some("EOF") if comment == "EOF" => e.eof = true,
                    Some(kw @ ("HELP" | "TYPE")) => {
                        let name =
                            parts
                                .next()
                                .filter(|s| valid_metric_name(s))
                                .ok_or_else(|| {
                                    format!("line {n}: # {kw} without a valid metric name: {line}")
                                })?;
                        let rest = parts.next().unwrap_or("").to_owned();
                        let map = if kw == "HELP" {
                            &mut e.helps
                        } else {
                            if !TYPES.contains(&rest.as_str()) {
                                return Err(format!("line {n}: unknown type {rest:?}: {line}"));
                            }
                            &mut e.types
                        };
                        if map.insert(name.to_owned(), rest).is_some() {
                            return Err(format!("line {n}: second # {kw} for {name}"));
                        }
                    }
                    _ => {} // # UNIT, or a plain comment
                }
                continue;
            }
            let (key, value) = parse_sample(line).map_err(|m| format!("line {n}: {m}: {line}"))?;
            if let Some(first) = where_seen.insert(key.clone(), n) {
                return Err(format!(
                    "line {n}: duplicate series {} (first on line {first})",
                    format_key(&key)
                ));
            }
            e.series.insert(key, value);
        }
        Ok(e)
    }

    /// The value of one series; `labels` in any order.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut l: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.sort();
        self.series.get(&(name.to_owned(), l)).copied()
    }

    /// Every series of metric `name` (exact sample name, e.g. `x_bucket` for a histogram).
    pub fn family<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a Labels, f64)> + 'a {
        self.series
            .range((name.to_owned(), Vec::new())..)
            .take_while(move |((n, _), _)| n == name)
            .map(|((_, l), v)| (l, *v))
    }

    /// The sum of every series of metric `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.family(name).map(|(_, v)| v).sum()
    }

    /// The series of `name` keyed by their values of `keys`, in that order. Every series
    /// must have exactly these label names.
    pub fn by_labels(
        &self,
        name: &str,
        keys: &[&str],
    ) -> Result<BTreeMap<Vec<String>, f64>, String> {
        let want: BTreeSet<&str> = keys.iter().copied().collect();
        let mut out = BTreeMap::new();
        for (labels, v) in self.family(name) {
            let have: BTreeSet<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            if have != want {
                return Err(format!(
                    "{name}: series with labels {have:?}, expected {want:?}"
                ));
            }
            let key: Vec<String> = keys
                .iter()
                .map(|k| {
                    labels
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                })
                .collect();
            out.insert(key, v);
        }
        Ok(out)
    }

    /// Family names declared by `# TYPE` lines.
    pub fn type_names(&self) -> BTreeSet<&str> {
        self.types.keys().map(String::as_str).collect()
    }
}

/// `name{a="1",b="2"}` with the label values escaped as in the text format.
pub fn format_key((name, labels): &SeriesKey) -> String {
    let mut s = name.clone();
    if !labels.is_empty() {
        s.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(s, "{k}=\"{v}\"");
        }
        s.push('}');
    }
    s
}

fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_sample(line: &str) -> Result<(SeriesKey, f64), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels: Labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut s = after_brace.trim_start();
        loop {
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let lname_end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            let lname = &s[..lname_end];
            if !valid_label_name(lname) {
                return Err("bad label name".into());
            }
            let v = s[lname_end..]
                .trim_start()
                .strip_prefix('=')
                .ok_or("expected = after a label name")?
                .trim_start()
                .strip_prefix('"')
                .ok_or("expected \" to open a label value")?;
            let (value, used) = unescape_label_value(v)?;
            if labels.iter().any(|(n, _)| n == lname) {
                return Err(format!("label {lname} twice"));
            }
            labels.push((lname.to_owned(), value));
            s = v[used..].trim_start();
            if let Some(after) = s.strip_prefix(',') {
                s = after.trim_start();
            } else if !s.starts_with('}') {
                return Err("expected , or } after a label value".into());
            }
        }
    }
    if !rest.starts_with([' ', '\t']) {
        return Err("expected a space before the value".into());
    }
    // Value, an optional timestamp, and (OpenMetrics) an optional exemplar after `#`.
    let body = rest.split(" # ").next().unwrap_or(rest);
    let mut fields = body.split_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<f64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the value"));
    }
    labels.sort();
    Ok(((name.to_owned(), labels), value))
}

/// Reads a label value up to its closing quote; returns it and the bytes used (quote included).
fn unescape_label_value(s: &str) -> Result<(String, usize), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, i + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, other)) => return Err(format!("bad escape \\{other} in a label value")),
                None => break,
            },
            '\n' => return Err("raw newline in a label value".into()),
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("bad value {s:?}")),
    }
}

// ------------------------------------------------------------------ sums the exporter promises

/// A cluster total: `slurm_cluster_{what}_configured` (`what` = `nodes`, `cpus`, `gpus`). The
/// exporter first called these `slurm_cluster_{what}_total`, which promtool's lint rejects
/// for gauges; either name is accepted, both at once is an error.
pub fn cluster_total(e: &Exposition, what: &str) -> Result<f64, String> {
    let configured = format!("slurm_cluster_{what}_configured");
    let total = format!("slurm_cluster_{what}_total");
    match (e.get(&configured, &[]), e.get(&total, &[])) {
        (Some(v), None) | (None, Some(v)) => Ok(v),
        (Some(_), Some(_)) => Err(format!("both {configured} and {total}")),
        (None, None) => Err(format!("{configured} (or {total}) is missing")),
    }
}

/// Checks that nodes, CPUs and GPUs by state (`slurm_cluster_{nodes,cpus,gpus}{state}`) sum
/// to their totals ([`cluster_total`]); returns what does not hold.
pub fn cluster_sum_errors(e: &Exposition) -> Vec<String> {
    let mut errs = Vec::new();
    for what in ["nodes", "cpus", "gpus"] {
        let by_state = format!("slurm_cluster_{what}");
        let parts: Vec<(&Labels, f64)> = e.family(&by_state).collect();
        match cluster_total(e, what) {
            Err(err) => errs.push(err),
            Ok(_) if parts.is_empty() => errs.push(format!("{by_state} is missing")),
            Ok(t) => {
                let sum: f64 = parts.iter().map(|(_, v)| v).sum();
                if sum != t {
                    errs.push(format!("{by_state} sums to {sum}, the {what} total is {t}"));
                }
            }
        }
    }
    errs
}

// ------------------------------------------------------------------ HTTP

/// An HTTP response, body as sent (not decompressed).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close` and the extra `headers`.
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|_| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("socket timeouts: {e}"))?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send GET {path}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read the answer to GET {path}: {e}"))?;
    parse_http_response(&raw).map_err(|e| format!("GET {path}: {e}"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a whole HTTP/1.x response (status line, headers, body with chunked transfer
/// encoding or Content-Length, or up to the end).
pub fn parse_http_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head =
        std::str::from_utf8(&raw[..head_end]).map_err(|e| format!("headers are not UTF-8: {e}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[head_end + 4..];
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length {len:?}"))?;
        if rest.len() < len {
            return Err(format!(
                "body has {} bytes, Content-Length says {len}",
                rest.len()
            ));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { body, ..resp })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = find(b, b"\r\n").ok_or("chunk size line without CRLF")?;
        let line = std::str::from_utf8(&b[..eol]).map_err(|_| "chunk size line is not UTF-8")?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 || &b[size..size + 2] != b"\r\n" {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Decompresses a gzip body.
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .map_err(|e| format!("gunzip: {e}"))?;
    Ok(out)
}

// ------------------------------------------------------------------ Slurm ground truth

/// Ground truth from plain `sinfo` and `squeue` text, for comparison with the exporter.
pub mod slurm {
    use super::run;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    /// The lab's Slurm configuration. No Slurm client runs unless it exists: without a
    /// config a client tries "configless" mode, a DNS SRV lookup off the machine.
    pub const LAB_CONF: &str = "/etc/slurm/slurm.conf";

    /// Why the lab tests cannot run, or `None` when the lab's config is there.
    pub fn lab_missing() -> Option<String> {
        let ok = std::fs::metadata(LAB_CONF).is_ok_and(|m| m.is_file() && m.len() > 0);
        (!ok).then(|| {
            format!(
                "{LAB_CONF} is missing: start the Slurm lab first \
                 (bash deploy/slurm-lab/lab.sh start && bash deploy/slurm-lab/lab.sh submit-mix)"
            )
        })
    }

    /// Panics unless the lab's config exists.
    pub fn require_lab() {
        if let Some(why) = lab_missing() {
            panic!("{why}");
        }
    }

    /// Runs a Slurm client with `SLURM_CONF` set to the lab's config; stdout on success.
    pub fn client(program: &str, args: &[&str]) -> Result<String, String> {
        if let Some(why) = lab_missing() {
            return Err(why);
        }
        let r = run(
            Command::new(program)
                .args(args)
                .env("SLURM_CONF", LAB_CONF)
                .current_dir(Path::new("/")),
            None,
            Duration::from_secs(60),
        )?;
        if !r.status.success() {
            return Err(format!(
                "{program} {}: {}: {}",
                args.join(" "),
                r.status,
                r.stderr.trim()
            ));
        }
        String::from_utf8(r.stdout).map_err(|e| format!("{program}: output is not UTF-8: {e}"))
    }

    /// `sinfo -N -h -o '%N|%T|%C|%P|%G'` plus `GresUsed` and `StateComplete`, in one call so
    /// that all columns come from the same moment (`-O` names of `%N %T %C %P %G`; a width
    /// of 0 does not truncate, `|` is the separator).
    pub const SINFO_ARGS: &[&str] = &[
        "-N",
        "-h",
        "-O",
        "NodeList:|,StateLong:|,CPUsState:|,Partition:|,Gres:|,GresUsed:|,StateComplete:|",
    ];
    /// One line per job; `-r` expands array tasks, pending array ranges included.
    pub const SQUEUE_ARGS: &[&str] = &["-a", "-r", "-h", "-t", "all", "-o", "%i|%T|%P|%a|%u|%r"];

    /// The base states the exporter reports (`slurm_cluster_nodes{state}`).
    pub const BASE_STATES: &[&str] = &[
        "allocated",
        "mixed",
        "idle",
        "down",
        "error",
        "future",
        "unknown",
    ];

    /// sinfo's `%C`: allocated/idle/other/total.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Cpus {
        pub allocated: u64,
        pub idle: u64,
        pub other: u64,
        pub total: u64,
    }

    impl Cpus {
        pub fn parse(s: &str) -> Result<Cpus, String> {
            let v: Vec<u64> = s
                .trim()
                .split('/')
                .map(|x| x.parse::<u64>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("bad A/I/O/T {s:?}"))?;
            match v[..] {
                [allocated, idle, other, total] => Ok(Cpus {
                    allocated,
                    idle,
                    other,
                    total,
                }),
                _ => Err(format!("bad A/I/O/T {s:?}")),
            }
        }

        pub fn add(&mut self, o: Cpus) {
            self.allocated += o.allocated;
            self.idle += o.idle;
            self.other += o.other;
            self.total += o.total;
        }

        /// `(state label, value)` as the exporter labels them.
        pub fn by_state(&self) -> [(&'static str, u64); 3] {
            [
                ("allocated", self.allocated),
                ("idle", self.idle),
                ("other", self.other),
            ]
        }
    }

    /// A node state from sinfo's `%T`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LongState {
        pub base: &'static str,
        pub flags: BTreeSet<&'static str>,
        /// `%T` hides the base state (drained, draining, fail, maint, reboot, inval,
        /// completing): it was decided from the CPU counts.
        pub base_inferred: bool,
    }

    /// The flag a `%T` suffix stands for.
    pub fn suffix_flag(c: char) -> Option<&'static str> {
        Some(match c {
            '*' => "not_responding",
            '~' => "powered_down",
            '#' => "powering_up",
            '!' => "powering_down", // power down pending
            '%' => "powering_down",
            '$' => "maintenance",
            '@' => "reboot_requested",
            '^' => "reboot_issued",
            '-' => "planned",
            '+' => "completing",
            _ => return None,
        })
    }

    /// Maps sinfo's `%T` (`mixed`, `draining`, `down*`, `idle~`, `planned`, `mixed-`,
    /// `maint`, ...) to a base state and flags. Where `%T` does not show the base, it is
    /// decided by the `A/I/O/T` CPU counts: none allocated -> idle, all -> allocated, else mixed.
    pub fn parse_long_state(t: &str, cpus: Cpus) -> Result<LongState, String> {
        let lower = t.trim().to_ascii_lowercase();
        let word = lower.trim_end_matches(|c| suffix_flag(c).is_some());
        let mut flags: BTreeSet<&'static str> = lower[word.len()..]
            .chars()
            .filter_map(suffix_flag)
            .collect();
        let by_cpus = if cpus.allocated == 0 {
            "idle"
        } else if cpus.allocated >= cpus.total {
            "allocated"
        } else {
            "mixed"
        };
        let mut flag = |f: &'static str| {
            flags.insert(f);
        };
        let (base, base_inferred) = match word {
            "allocated" | "alloc" => ("allocated", false),
            "mixed" | "mix" => ("mixed", false),
            "idle" => ("idle", false),
            "down" => ("down", false),
            "error" => ("error", false),
            "future" | "futr" => ("future", false),
            "unknown" | "unk" => ("unknown", false),
            "planned" | "plnd" => {
                flag("planned");
                ("idle", false)
            }
            "reserved" | "resv" => {
                flag("reserved");
                ("idle", false)
            }
            "perfctrs" | "npc" => ("idle", false),
            "blocked" => {
                flag("blocked");
                ("idle", false)
            }
            "drained" | "drain" | "draining" | "drng" => {
                flag("drain");
                (by_cpus, true)
            }
            "fail" | "failing" | "failg" => {
                flag("fail");
                (by_cpus, true)
            }
            "maint" => {
                flag("maintenance");
                (by_cpus, true)
            }
            "reboot" | "reboot_requested" => {
                flag("reboot_requested");
                (by_cpus, true)
            }
            "reboot_issued" => {
                flag("reboot_issued");
                (by_cpus, true)
            }
            "completing" | "comp" => {
                flag("completing");
                (by_cpus, true)
            }
            "inval" => {
                flag("invalid_reg");
                (by_cpus, true)
            }
            // Printed only for a node whose whole state is this one flag (base unknown).
            "power_down" | "powering_down" => {
                flag("powering_down");
                ("unknown", false)
            }
            "powered_down" => {
                flag("powered_down");
                ("unknown", false)
            }
            "powering_up" | "power_up" => {
                flag("powering_up");
                ("unknown", false)
            }
            _ => return Err(format!("unknown node state {t:?}")),
        };
        Ok(LongState {
            base,
            flags,
            base_inferred,
        })
    }

    /// Parses `StateComplete` (`idle+drain`, `down+not_responding`): base and lowercase flags.
    pub fn parse_state_complete(s: &str) -> Result<(String, BTreeSet<String>), String> {
        let lower = s.trim().to_ascii_lowercase();
        let mut parts = lower.split('+');
        let base = parts.next().unwrap_or("");
        if !BASE_STATES.contains(&base) {
            return Err(format!("unknown base state in {s:?}"));
        }
        let flags = parts
            .filter(|f| !f.is_empty())
            .map(|f| match f {
                "maint" => "maintenance".to_owned(),
                "no_respond" => "not_responding".to_owned(),
                // POWER_DOWN is "power down pending", which %T shows as `!`.
                "power_down" => "powering_down".to_owned(),
                f => f.to_owned(),
            })
            .collect();
        Ok((base.to_owned(), flags))
    }

    /// GPUs in a GRES string (`gpu:a100:4`, `gpu:a100:2(IDX:0-1)`, `gpu:0`, `(null)`,
    /// several comma-separated entries). `gpu` alone or with only a type counts one.
    pub fn gres_gpus(s: &str) -> Result<u64, String> {
        let mut total = 0;
        for item in split_outside_parens(s.trim()) {
            let item = item.trim();
            if item.is_empty() || item == "(null)" {
                continue;
            }
            let spec = item.split('(').next().unwrap_or(item);
            let mut parts = spec.split(':');
            if parts.next() != Some("gpu") {
                continue;
            }
            let rest: Vec<&str> = parts.collect();
            total += match rest.last() {
                None => 1,
                Some(last) => match parse_count(last) {
                    Some(n) => n,
                    None if rest.len() == 1 => 1,
                    None => return Err(format!("bad GRES count in {item:?}")),
                },
            };
        }
        Ok(total)
    }

    fn parse_count(s: &str) -> Option<u64> {
        let (digits, mult) = match s.char_indices().last() {
            Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
            Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
            Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
            Some((i, 'T' | 't')) => (&s[..i], 1 << 40),
            _ => (s, 1),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok().map(|n| n * mult)
    }

    fn split_outside_parens(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0i32, 0);
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out
    }

    /// The exporter's job state label for squeue's `%T`.
    pub fn job_state_label(t: &str) -> &'static str {
        match t.trim().to_ascii_uppercase().as_str() {
            "PENDING" => "pending",
            "RUNNING" => "running",
            "SUSPENDED" => "suspended",
            "COMPLETING" => "completing",
            "CONFIGURING" => "configuring",
            "COMPLETED" => "completed",
            "CANCELLED" => "cancelled",
            "FAILED" => "failed",
            "TIMEOUT" => "timeout",
            "NODE_FAIL" => "node_fail",
            "PREEMPTED" => "preempted",
            "BOOT_FAIL" => "boot_fail",
            "DEADLINE" => "deadline",
            "OUT_OF_MEMORY" => "out_of_memory",
            "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD" => "requeued",
            "RESIZING" => "resizing",
            _ => "other", // SPECIAL_EXIT, STOPPED, SIGNALING, STAGE_OUT, RESV_DEL_HOLD, REVOKED
        }
    }

    /// One node as sinfo shows it (the same in every partition it is in).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NodeTruth {
        /// `%T` as printed.
        pub state_long: String,
        pub base: String,
        pub flags: BTreeSet<String>,
        pub cpus: Cpus,
        pub gpus_total: u64,
        pub gpus_alloc: u64,
    }

    /// One job (or array task) as squeue shows it.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    pub struct JobTruth {
        pub id: String,
        /// The exporter's label (`running`, `pending`, ...).
        pub state: String,
        /// The first partition of `%P`.
        pub partition: String,
        /// Every partition of `%P`: a job submitted to several is listed by `squeue -p P`
        /// under each, and counted in each.
        pub partitions: Vec<String>,
        pub account: String,
        pub user: String,
        pub reason: String,
    }

    impl JobTruth {
        /// squeue prints slurmctld's description instead of the reason code when there is
        /// one ("Nodes required for job are DOWN, DRAINED or ..."); codes have no spaces.
        pub fn reason_is_code(&self) -> bool {
            !self.reason.contains(char::is_whitespace) && !self.reason.contains(',')
        }
    }

    /// What sinfo and squeue say, at one moment.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GroundTruth {
        pub nodes: BTreeMap<String, NodeTruth>,
        /// Partition -> its nodes.
        pub partitions: BTreeMap<String, BTreeSet<String>>,
        pub jobs: Vec<JobTruth>,
        /// Where `%T` hid the base state and `StateComplete` decided it differently from
        /// the CPU counts (informational).
        pub notes: Vec<String>,
    }

    type Counts = BTreeMap<Vec<String>, u64>;

    impl GroundTruth {
        /// Runs sinfo and squeue.
        pub fn take() -> Result<GroundTruth, String> {
            let sinfo = client("sinfo", SINFO_ARGS)?;
            let squeue = client("squeue", SQUEUE_ARGS)?;
            GroundTruth::from_text(&sinfo, &squeue)
        }

        /// Builds the truth from the output of [`SINFO_ARGS`] and [`SQUEUE_ARGS`].
        pub fn from_text(sinfo: &str, squeue: &str) -> Result<GroundTruth, String> {
            let mut gt = GroundTruth::default();
            for line in sinfo.lines().filter(|l| !l.trim().is_empty()) {
                let f: Vec<&str> = line.split('|').map(str::trim).collect();
                let [name, long, cpus, part, gres, gres_used, complete, ..] = f[..] else {
                    return Err(format!("sinfo: expected 7 fields: {line:?}"));
                };
                let cpus = Cpus::parse(cpus).map_err(|e| format!("sinfo {name}: {e}"))?;
                let from_long =
                    parse_long_state(long, cpus).map_err(|e| format!("sinfo {name}: {e}"))?;
                let (base, flags) =
                    parse_state_complete(complete).map_err(|e| format!("sinfo {name}: {e}"))?;
                // Self-check of the %T mapping against StateComplete: every flag %T shows must
                // be set (%T shows at most one suffix, so StateComplete may have more) and,
                // unless %T hides it, the base state must agree.
                let long_flags_set = from_long.flags.iter().all(|f| flags.contains(*f));
                if !long_flags_set || (!from_long.base_inferred && from_long.base != base) {
                    return Err(format!(
                        "sinfo {name}: %T {long:?} -> {} {:?}, but StateComplete {complete:?}",
                        from_long.base, from_long.flags
                    ));
                }
                if from_long.base_inferred && from_long.base != base {
                    gt.notes.push(format!(
                        "{name}: %T {long:?} with CPUs {cpus:?} looks {}, StateComplete says {base}",
                        from_long.base
                    ));
                }
                let node = NodeTruth {
                    state_long: long.to_owned(),
                    base,
                    flags,
                    cpus,
                    gpus_total: gres_gpus(gres).map_err(|e| format!("sinfo {name}: {e}"))?,
                    gpus_alloc: gres_gpus(gres_used).map_err(|e| format!("sinfo {name}: {e}"))?,
                };
                match gt.nodes.get(name) {
                    Some(seen) if *seen != node => {
                        return Err(format!(
                        "sinfo: node {name} differs between its partitions: {seen:?} vs {node:?}"
                    ))
                    }
                    Some(_) => {}
                    None => {
                        gt.nodes.insert(name.to_owned(), node);
                    }
                }
                let part = part.trim_end_matches('*');
                gt.partitions
                    .entry(part.to_owned())
                    .or_default()
                    .insert(name.to_owned());
            }
            for line in squeue.lines().filter(|l| !l.trim().is_empty()) {
                let f: Vec<&str> = line.splitn(6, '|').collect();
                let [id, state, part, account, user, reason] = f[..] else {
                    return Err(format!("squeue: expected 6 fields: {line:?}"));
                };
                gt.jobs.push(JobTruth {
                    id: id.trim().to_owned(),
                    state: job_state_label(state).to_owned(),
                    partition: part.trim().split(',').next().unwrap_or("").to_owned(),
                    partitions: part
                        .trim()
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    account: account.trim().to_owned(),
                    user: user.trim().to_owned(),
                    reason: reason.trim().to_owned(),
                });
            }
            gt.jobs.sort();
            Ok(gt)
        }

        /// Nodes per base state, every base state present (0 when none).
        pub fn nodes_by_state(&self) -> Counts {
            let mut m: Counts = BASE_STATES
                .iter()
                .map(|s| (vec![(*s).to_owned()], 0))
                .collect();
            for n in self.nodes.values() {
                *m.entry(vec![n.base.clone()]).or_default() += 1;
            }
            m
        }

        /// Nodes carrying `flag`.
        pub fn flag_count(&self, flag: &str) -> u64 {
            self.nodes
                .values()
                .filter(|n| n.flags.contains(flag))
                .count() as u64
        }

        /// CPUs of all nodes (each once).
        pub fn cpus(&self) -> Cpus {
            let mut c = Cpus::default();
            for n in self.nodes.values() {
                c.add(n.cpus);
            }
            c
        }

        /// `(allocated, total)` GPUs of all nodes (each once).
        pub fn gpus(&self) -> (u64, u64) {
            self.nodes.values().fold((0, 0), |(a, t), n| {
                (a + n.gpus_alloc.min(n.gpus_total), t + n.gpus_total)
            })
        }

        /// `[partition, base state]` -> nodes, every base state present per partition.
        pub fn partition_nodes(&self) -> Counts {
            let mut m = Counts::new();
            for (p, names) in &self.partitions {
                for s in BASE_STATES {
                    m.insert(vec![p.clone(), (*s).to_owned()], 0);
                }
                for n in names.iter().filter_map(|n| self.nodes.get(n)) {
                    *m.entry(vec![p.clone(), n.base.clone()]).or_default() += 1;
                }
            }
            m
        }

        /// `[partition, allocated|idle|other]` -> CPUs.
        pub fn partition_cpus(&self) -> Counts {
            let mut m = Counts::new();
            for (p, names) in &self.partitions {
                let mut c = Cpus::default();
                for n in names.iter().filter_map(|n| self.nodes.get(n)) {
                    c.add(n.cpus);
                }
                for (s, v) in c.by_state() {
                    m.insert(vec![p.clone(), s.to_owned()], v);
                }
            }
            m
        }

        /// `[node, allocated|idle|other]` -> CPUs.
        pub fn node_cpus(&self) -> Counts {
            let mut m = Counts::new();
            for (name, n) in &self.nodes {
                for (s, v) in n.cpus.by_state() {
                    m.insert(vec![name.clone(), s.to_owned()], v);
                }
            }
            m
        }

        /// Jobs counted by the labels `key` picks.
        pub fn count_jobs(&self, key: impl Fn(&JobTruth) -> Vec<String>) -> Counts {
            let mut m = Counts::new();
            for j in &self.jobs {
                *m.entry(key(j)).or_default() += 1;
            }
            m
        }

        /// `[partition, state]` -> jobs, a job counted in every partition it names.
        pub fn partition_jobs(&self) -> Counts {
            let mut m = Counts::new();
            for j in &self.jobs {
                for p in &j.partitions {
                    *m.entry(vec![p.clone(), j.state.clone()]).or_default() += 1;
                }
            }
            m
        }

        /// Pending jobs by `[partition, reason]` for reasons that are codes, and per
        /// partition the descriptions squeue printed instead of a code. Reason `None` is no
        /// reason.
        pub fn pending_reasons(&self) -> (Counts, BTreeMap<String, Vec<String>>) {
            let mut codes = Counts::new();
            let mut descriptions: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for j in self
                .jobs
                .iter()
                .filter(|j| j.state == "pending" && !j.reason.is_empty() && j.reason != "None")
            {
                for p in &j.partitions {
                    if j.reason_is_code() {
                        *codes.entry(vec![p.clone(), j.reason.clone()]).or_default() += 1;
                    } else {
                        descriptions
                            .entry(p.clone())
                            .or_default()
                            .push(format!("{} {:?}", j.id, j.reason));
                    }
                }
            }
            (codes, descriptions)
        }

        /// A short account of what differs from `other` (for retry messages).
        pub fn diff(&self, other: &GroundTruth) -> String {
            let mut out = Vec::new();
            let names: BTreeSet<&String> = self.nodes.keys().chain(other.nodes.keys()).collect();
            for n in names {
                let (a, b) = (self.nodes.get(n), other.nodes.get(n));
                if a != b {
                    out.push(format!(
                        "node {n}: {} -> {}",
                        a.map_or("-".into(), |x| format!("{} {:?}", x.state_long, x.cpus)),
                        b.map_or("-".into(), |x| format!("{} {:?}", x.state_long, x.cpus))
                    ));
                }
            }
            let ja: BTreeSet<&JobTruth> = self.jobs.iter().collect();
            let jb: BTreeSet<&JobTruth> = other.jobs.iter().collect();
            for j in ja.difference(&jb) {
                out.push(format!("job {} {} gone", j.id, j.state));
            }
            for j in jb.difference(&ja) {
                out.push(format!("job {} {} new", j.id, j.state));
            }
            let n = out.len();
            out.truncate(8);
            if n > out.len() {
                out.push(format!("... {} more", n - out.len()));
            }
            out.join("; ")
        }
    }
}

// ------------------------------------------------------------------ load

/// Sends `n` GETs of `url` with one `curl --parallel` process (`parallel` at once; `args`
/// such as `--cacert`); returns each answer's status and `X-Request-Id` (empty when none).
/// Connection failures come back as status 0.
pub fn curl_many(url: &str, n: usize, parallel: usize, args: &[&str]) -> Vec<(u16, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("urls");
    let mut text = String::new();
    for _ in 0..n {
        text.push_str(&format!("url = \"{url}\"\noutput = \"/dev/null\"\n"));
    }
    std::fs::write(&list, text).expect("write the curl config");
    let parallel = parallel.to_string();
    let r = run(
        Command::new("curl")
            .args(["-sS", "--max-time", "20", "--parallel", "--parallel-max"])
            .arg(&parallel)
            .args(["-w", "%{http_code} %header{x-request-id}\n", "--config"])
            .arg(&list)
            .args(args),
        None,
        Duration::from_secs(300),
    )
    .expect("curl --parallel");
    r.stdout_text()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let code = it.next()?.parse().ok()?;
            Some((code, it.next().unwrap_or("").to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::slurm::*;
    use super::*;

    const C0: Cpus = Cpus {
        allocated: 0,
        idle: 0,
        other: 32,
        total: 32,
    };

    fn st(t: &str, cpus: Cpus) -> (&'static str, Vec<&'static str>, bool) {
        let s = parse_long_state(t, cpus).expect("state parses");
        (s.base, s.flags.into_iter().collect(), s.base_inferred)
    }

    #[test]
    fn long_states_map_to_base_and_flags() {
        let alloc = Cpus {
            allocated: 32,
            idle: 0,
            other: 0,
            total: 32,
        };
        let part = Cpus {
            allocated: 8,
            idle: 0,
            other: 24,
            total: 32,
        };
        assert_eq!(st("mixed", part), ("mixed", vec![], false));
        assert_eq!(st("draining", alloc), ("allocated", vec!["drain"], true));
        assert_eq!(st("draining", part), ("mixed", vec!["drain"], true));
        assert_eq!(st("drained", C0), ("idle", vec!["drain"], true));
        assert_eq!(st("down*", C0), ("down", vec!["not_responding"], false));
        assert_eq!(st("idle~", C0), ("idle", vec!["powered_down"], false));
        assert_eq!(st("planned", C0), ("idle", vec!["planned"], false));
        assert_eq!(st("mixed-", part), ("mixed", vec!["planned"], false));
        assert_eq!(st("maint", C0), ("idle", vec!["maintenance"], true));
        assert_eq!(st("IDLE#", C0), ("idle", vec!["powering_up"], false));
        assert_eq!(st("idle!", C0), ("idle", vec!["powering_down"], false));
        assert_eq!(st("idle%", C0), ("idle", vec!["powering_down"], false));
        assert_eq!(
            st("alloc$", alloc),
            ("allocated", vec!["maintenance"], false)
        );
        assert_eq!(st("mix@", part), ("mixed", vec!["reboot_requested"], false));
        assert_eq!(st("down^", C0), ("down", vec!["reboot_issued"], false));
        assert_eq!(
            st("allocated+", alloc),
            ("allocated", vec!["completing"], false)
        );
        assert_eq!(
            st("drained*", C0),
            ("idle", vec!["drain", "not_responding"], true)
        );
        assert_eq!(st("fail", C0), ("idle", vec!["fail"], true));
        assert_eq!(st("failing", alloc), ("allocated", vec!["fail"], true));
        assert!(parse_long_state("bogus", C0).is_err());
    }

    #[test]
    fn state_complete_and_gres() {
        let (b, f) = parse_state_complete("down+not_responding").expect("parses");
        assert_eq!(b, "down");
        assert_eq!(f.into_iter().collect::<Vec<_>>(), ["not_responding"]);
        assert!(parse_state_complete("drained").is_err());
        assert_eq!(gres_gpus("(null)").expect("gres"), 0);
        assert_eq!(gres_gpus("gpu:0").expect("gres"), 0);
        assert_eq!(gres_gpus("gpu:a100:4").expect("gres"), 4);
        assert_eq!(gres_gpus("gpu:a100:2(IDX:0-1)").expect("gres"), 2);
        assert_eq!(gres_gpus("gpu:a100:0(IDX:N/A)").expect("gres"), 0);
        assert_eq!(
            gres_gpus("gpu:a100:2(IDX:0,2),gpu:v100:1(IDX:3),shard:8").expect("gres"),
            3
        );
        assert_eq!(gres_gpus("gpu:a100:4(S:0-1),mps:100").expect("gres"), 4);
        assert_eq!(gres_gpus("gpu").expect("gres"), 1);
        assert_eq!(gres_gpus("gpu:a100").expect("gres"), 1);
    }

    #[test]
    fn ground_truth_dedupes_nodes_and_expands_jobs() {
        let sinfo = "cpu-01|mixed|31/1/0/32|cpu*|(null)|gpu:0|mixed|\n\
                     cpu-01|mixed|31/1/0/32|debug|(null)|gpu:0|mixed|\n\
                     cpu-08|drained|0/0/32/32|cpu*|(null)|gpu:0|idle+drain|\n\
                     gpu-03|mixed|16/48/0/64|gpu|gpu:a100:4|gpu:a100:2(IDX:0-1)|mixed|\n";
        let squeue = "1|RUNNING|cpu|physics|alice|None\n\
                      2_3|PENDING|cpu,gpu|physics|alice|JobArrayTaskLimit\n\
                      3|PENDING|cpu|physics|alice|Nodes required for job are DOWN, DRAINED\n";
        let gt = GroundTruth::from_text(sinfo, squeue).expect("ground truth");
        assert_eq!(gt.nodes.len(), 3);
        assert_eq!(gt.cpus().total, 128);
        assert_eq!(gt.gpus(), (2, 4));
        assert_eq!(gt.flag_count("drain"), 1);
        assert_eq!(gt.nodes_by_state()[&vec!["mixed".to_owned()]], 2);
        assert_eq!(gt.partitions["debug"].len(), 1);
        let (codes, desc) = gt.pending_reasons();
        assert_eq!(
            codes[&vec!["cpu".to_owned(), "JobArrayTaskLimit".to_owned()]],
            1
        );
        assert_eq!(desc["cpu"].len(), 1);
        // a job pending in two partitions counts in both, as `squeue -p` lists it
        assert_eq!(
            codes[&vec!["gpu".to_owned(), "JobArrayTaskLimit".to_owned()]],
            1
        );
        assert_eq!(
            gt.partition_jobs()[&vec!["gpu".to_owned(), "pending".to_owned()]],
            1
        );
        // %T and StateComplete disagreeing is an error in the ground truth itself.
        let bad = "cpu-01|mixed|31/1/0/32|cpu*|(null)|gpu:0|idle+drain|\n";
        assert!(GroundTruth::from_text(bad, "").is_err());
    }

    #[test]
    fn exposition_parses_labels_and_rejects_duplicates() {
        let text = "# HELP a_b Help.\n# TYPE a_b gauge\n\
                    a_b{z=\"1\",a=\"x\\\"y\\\\z\\n\"} 2.5\na_b{a=\"2\"} +Inf\nc 3 1700000000\n";
        let e = Exposition::parse(text).expect("parses");
        assert_eq!(e.get("a_b", &[("z", "1"), ("a", "x\"y\\z\n")]), Some(2.5));
        assert_eq!(e.get("a_b", &[("a", "2")]), Some(f64::INFINITY));
        assert_eq!(e.get("c", &[]), Some(3.0));
        assert_eq!(e.type_names().into_iter().collect::<Vec<_>>(), ["a_b"]);
        let dup = "x{b=\"1\",a=\"2\"} 1\nx{a=\"2\",b=\"1\"} 1\n";
        let err = Exposition::parse(dup).expect_err("a duplicate series is an error");
        assert!(err.contains("duplicate series x{a=\"2\",b=\"1\"}"), "{err}");
        assert!(Exposition::parse("# TYPE x gauge\n# TYPE x gauge\n").is_err());
        assert!(Exposition::parse("x{a=\"1\"} one\n").is_err());
        assert!(Exposition::parse("x{a=\"1} 1\n").is_err());
        assert!(Exposition::parse("x 1\n# EOF\nx 2\n").is_err());
        let om =
            Exposition::parse("# TYPE x counter\nx_total 1 # {id=\"a\"} 1\n# EOF\n").expect("om");
        assert!(om.eof);
    }

    #[test]
    fn http_responses_with_chunks_and_lengths() {
        let raw =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
                    5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        let r = parse_http_response(raw).expect("parses");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.body, b"hello world");
        let raw = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 3\r\n\r\nabc";
        let r = parse_http_response(raw).expect("parses");
        assert_eq!((r.status, &r.body[..]), (503, &b"abc"[..]));
        assert!(parse_http_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc").is_err());
    }
}
