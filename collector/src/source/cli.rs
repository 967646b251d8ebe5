//! The Slurm command-line source, and the ONE place in the product that spawns processes
//! (clippy's `disallowed-methods` enforces it everywhere else).
//!
//! Commands run without a shell, with a fixed argument list, a timeout that kills them, and
//! their stdout parsed as it streams (`squeue --json` for 100,000 jobs is ~350 MB). Three
//! commands per poll: `squeue --json`, `sinfo --json`, `scontrol show partitions`.
#![allow(clippy::disallowed_methods)]

use super::{
    now_epoch, slurm_notes, Counted, Extras, Parts, PollFuture, PollRequest, Source, SourceError,
};
use crate::model::Interner;
use crate::parse::associations::parse_sshare_text;
use crate::parse::diag::parse_sdiag_text;
use crate::parse::jobs::parse_jobs;
use crate::parse::licenses::parse_scontrol_licenses_text;
use crate::parse::nodes::{fill_alloc_from_jobs, parse_nodes};
use crate::parse::partitions::parse_partitions_text;
use crate::parse::ping::parse_scontrol_ping_text;
use crate::parse::qos::{parse_sacctmgr_qos_text, SACCTMGR_QOS_FORMAT};
use crate::parse::reservations::parse_scontrol_reservations_text;
use crate::parse::sacct::parse_sacct_json;
use crate::parse::sprio::{parse_sprio, SPRIO_ARGS};
use crate::parse::ParseError;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most stderr kept for an error message.
const STDERR_KEEP: usize = 64 << 10;

/// How to run Slurm's commands.
#[derive(Debug, Clone, Default)]
pub struct CliConfig {
    /// Directory of the Slurm binaries; empty means search `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// `SLURM_CONF` for the commands; unset means the commands' default.
    pub slurm_conf: Option<PathBuf>,
    /// Per-command timeout.
    pub timeout: Duration,
}

impl CliConfig {
    fn command(&self, program: &str) -> Command {
        let path = match &self.bin_dir {
            Some(d) => d.join(program),
            None => PathBuf::from(program),
        };
        let mut c = Command::new(path);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(conf) = &self.slurm_conf {
            c.env("SLURM_CONF", conf);
        }
        // Slurm prints times in local time without a zone; UTC makes them exact to read back.
        c.env("TZ", "UTC");
        c
    }

    /// Runs `program args`, streaming stdout through `parse`. Blocking: call it from a
    /// blocking thread. Returns the parsed value and the bytes read.
    pub fn run<T>(
        &self,
        program: &str,
        args: &[&str],
        parse: impl FnOnce(&mut dyn Read) -> Result<T, ParseError>,
    ) -> Result<(T, u64), SourceError> {
        let what = format!("{program} {}", args.join(" "));
        let mut child =
            self.command(program)
                .args(args)
                .spawn()
                .map_err(|e| SourceError::Spawn {
                    what: what.clone(),
                    msg: e.to_string(),
                })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let child = Arc::new(Mutex::new(child));
        let deadline = Instant::now() + self.timeout;
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watchdog = {
            let child = child.clone();
            let timed_out = timed_out.clone();
            let timeout = self.timeout;
            std::thread::spawn(move || {
                if done_rx.recv_timeout(timeout).is_err() {
                    timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                    if let Ok(mut c) = child.lock() {
                        let _ = c.kill();
                    }
                }
            })
        };
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut e) = stderr {
                let _ = (&mut e).take(STDERR_KEEP as u64).read_to_end(&mut buf);
                // Drain the rest so the child never blocks on a full pipe.
                let _ = std::io::copy(&mut e, &mut std::io::sink());
            }
            String::from_utf8_lossy(&buf).trim().to_owned()
        });

        let mut counted = Counted {
            inner: stdout.ok_or_else(|| SourceError::Spawn {
                what: what.clone(),
                msg: "no stdout pipe".into(),
            })?,
            count: 0,
        };
        let parsed = parse(&mut counted);
        if parsed.is_err() {
            kill(&child);
        }
        // Let the child finish; the watchdog still kills it at the deadline.
        let status = loop {
            let st = child
                .lock()
                .ok()
                .and_then(|mut c| c.try_wait().ok().flatten());
            if let Some(st) = st {
                break Some(st);
            }
            if Instant::now() > deadline + Duration::from_secs(1) {
                kill(&child);
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let _ = done_tx.send(());
        let _ = watchdog.join();
        let stderr = err_reader.join().unwrap_or_default();
        if timed_out.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SourceError::Timeout {
                what,
                seconds: self.timeout.as_secs_f64(),
            });
        }
        match status {
            Some(st) if st.success() => {}
            // We killed it because its output was garbage: the parse error is the news. A
            // command that exited non-zero by itself (an exit code, not our signal) is.
            Some(st) if parsed.is_err() && st.code().is_none() => {}
            Some(st) => {
                return Err(SourceError::Exit {
                    what,
                    status: st.to_string(),
                    stderr: first_line(&stderr),
                })
            }
            None => {
                return Err(SourceError::Timeout {
                    what,
                    seconds: self.timeout.as_secs_f64(),
                })
            }
        }
        let value = parsed.map_err(|err| SourceError::Parse {
            what: what.clone(),
            err,
        })?;
        Ok((value, counted.count))
    }

    /// Runs a command with small output and returns it as text.
    pub fn run_text(&self, program: &str, args: &[&str]) -> Result<String, SourceError> {
        self.run(program, args, |r| {
            let mut s = String::new();
            r.take(16 << 20)
                .read_to_string(&mut s)
                .map_err(|e| ParseError::Io(e.to_string()))?;
            Ok(s)
        })
        .map(|(s, _)| s)
    }

    /// `scontrol token username=USER lifespan=SECS`, for slurmrestd's JWT auth.
    pub fn scontrol_token(&self, user: &str, lifespan_seconds: u64) -> Result<String, SourceError> {
        let user_arg = format!("username={user}");
        let life_arg = format!("lifespan={lifespan_seconds}");
        let out = self.run_text("scontrol", &["token", &user_arg, &life_arg])?;
        out.lines()
            .find_map(|l| l.trim().strip_prefix("SLURM_JWT="))
            .map(str::to_owned)
            .ok_or_else(|| SourceError::Exit {
                what: "scontrol token".into(),
                status: "0".into(),
                stderr: "no SLURM_JWT= line in the output".into(),
            })
    }
}

fn kill(child: &Mutex<Child>) {
    if let Ok(mut c) = child.lock() {
        let _ = c.kill();
    }
}

fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no stderr)");
    line.chars().take(300).collect()
}

/// Polls Slurm through its commands.
pub struct CliSource {
    pub config: CliConfig,
    /// Optional parts to read.
    pub extras: Extras,
}

impl CliSource {
    fn poll_blocking(
        config: &CliConfig,
        want: Extras,
        req: PollRequest,
    ) -> Result<Parts, SourceError> {
        let fetched_epoch = now_epoch();
        let mut names = Interner::default();
        let ((env, jobs), jb) = config.run("squeue", &["--all", "--json"], |r| {
            parse_jobs(r, &mut names)
        })?;
        let ((nenv, nodes), nb) = config.run("sinfo", &["--all", "--json"], |r| {
            parse_nodes(r, &mut names)
        })?;
        let text = config.run_text("scontrol", &["--all", "--oneliner", "show", "partitions"])?;
        let partitions =
            parse_partitions_text(&text, &mut names).map_err(|err| SourceError::Parse {
                what: "scontrol show partitions".into(),
                err,
            })?;
        let mut nodes = nodes;
        fill_alloc_from_jobs(&mut nodes, &jobs);
        let mut warnings = slurm_notes("squeue --json", &env);
        warnings.extend(slurm_notes("sinfo --json", &nenv));
        let mut meta = if env.meta.release.is_empty() {
            nenv.meta
        } else {
            env.meta
        };
        meta.source = "cli".into();
        let mut parts = Parts {
            warnings,
            meta,
            cluster: None,
            nodes: Some(nodes),
            jobs: Some(jobs),
            partitions: Some(partitions),
            fetched_epoch,
            bytes: jb + nb + text.len() as u64,
            not_modified: false,
            ..Default::default()
        };
        Self::optional_parts(config, want, &mut parts);
        if want.accounting {
            Self::finished_jobs(config, req, &mut parts);
        }
        Ok(parts)
    }

    /// Commands that enrich the picture but are not its core: one failing (slurmdbd down
    /// for `sshare`/`sacctmgr`) costs only its part, counted as a warning.
    fn optional_parts(config: &CliConfig, want: Extras, parts: &mut Parts) {
        let qos_format = format!("format={SACCTMGR_QOS_FORMAT}");
        macro_rules! part {
            ($program:expr, $args:expr, $parse:expr) => {{
                let args: &[&str] = $args;
                let what = format!("{} {}", $program, args.join(" "));
                let got = config.run_text($program, args).and_then(|t| {
                    parts.bytes += t.len() as u64;
                    ($parse)(&t).map_err(|err| SourceError::Parse { what, err })
                });
                match got {
                    Ok(x) => Some(x),
                    Err(e) => {
                        parts.warnings.push(e);
                        None
                    }
                }
            }};
        }
        if want.diag {
            parts.diag = part!("sdiag", &[], parse_sdiag_text);
        }
        if want.ping {
            parts.controllers = part!("scontrol", &["ping"], parse_scontrol_ping_text);
        }
        if want.licenses {
            parts.licenses = part!(
                "scontrol",
                &["--oneliner", "show", "licenses"],
                parse_scontrol_licenses_text
            );
        }
        if want.reservations {
            parts.reservations = part!(
                "scontrol",
                &["--oneliner", "show", "reservations"],
                |t: &str| parse_scontrol_reservations_text(t, &mut Interner::default())
            );
        }
        if want.qos {
            parts.qos = part!(
                "sacctmgr",
                &["--parsable", "show", "qos", qos_format.as_str()],
                |t: &str| parse_sacctmgr_qos_text(t, &mut Interner::default())
            );
        }
        if want.priority {
            parts.priorities = part!("sprio", SPRIO_ARGS, |t: &str| {
                parse_sprio(t, &mut Interner::default())
            });
        }
        if want.associations {
            // Fairshare from sshare; association limits need slurmdb's JSON (REST source).
            parts.associations = part!("sshare", &["--all", "--long", "--parsable"], |t: &str| {
                parse_sshare_text(t, &mut Interner::default())
            });
        }
    }
}

impl CliSource {
    /// Jobs that ended since `req.accounting_since_epoch`: `sacct` streamed into the parser.
    /// A failure (slurmdbd down) is a warning; the ledger's cursor stays and the next poll
    /// asks again.
    fn finished_jobs(config: &CliConfig, req: PollRequest, parts: &mut Parts) {
        let args = sacct_args(req.accounting_since_epoch, now_epoch());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match config.run("sacct", &args, |r| {
            parse_sacct_json(r, &mut Interner::default())
        }) {
            Ok((jobs, n)) => {
                parts.bytes += n;
                parts.finished_jobs = Some(jobs);
            }
            Err(e) => parts.warnings.push(e),
        }
    }
}

/// Default accounting window when the poller gives none.
const ACCOUNTING_LOOKBACK_SECONDS: u64 = 3600;

/// The final states asked of `sacct --state`. With a state list, `-S`/`-E` select jobs
/// that were in one of these states inside the window, i.e. that ENDED in it; without
/// one, sacct (and slurmdbd's REST jobs query) also returns running and pending jobs, and
/// misses jobs cancelled before they ever became eligible (seen on 22.05).
const SACCT_FINAL_STATES: &str = "BF,CA,CD,DL,F,NF,OOM,PR,RQ,TO";

/// `sacct --json --allusers --allocations --duplicates --starttime now-N --endtime now
/// --state ...`; `--duplicates` (`-D`) lists every run of a requeued job, each a record.
/// `--allocations` (`-X`) drops the steps, 2-3x smaller output; times are relative to the
/// local clock, so the child's `TZ` does not matter.
fn sacct_args(since: Option<u64>, now: u64) -> Vec<String> {
    let back = since.map_or(ACCOUNTING_LOOKBACK_SECONDS, |s| now.saturating_sub(s));
    [
        "--json",
        "--allusers",
        "--allocations",
        "--duplicates",
        "--starttime",
        &format!("now-{back}"),
        "--endtime",
        "now",
        "--state",
        SACCT_FINAL_STATES,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

impl Source for CliSource {
    fn name(&self) -> &str {
        "cli"
    }

    fn poll(&self) -> PollFuture<'_> {
        self.poll_with(PollRequest::default())
    }

    fn poll_with(&self, req: PollRequest) -> PollFuture<'_> {
        let config = self.config.clone();
        let want = self.extras;
        Box::pin(async move {
            tokio::task::spawn_blocking(move || CliSource::poll_blocking(&config, want, req))
                .await
                .map_err(|e| SourceError::Io {
                    what: "cli poll".into(),
                    msg: e.to_string(),
                })?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> CliConfig {
        CliConfig {
            bin_dir: None,
            slurm_conf: None,
            timeout: Duration::from_millis(500),
        }
    }

    #[test]
    fn streams_stdout_into_the_parser() {
        let (v, n) = sh()
            .run(
                "printf",
                &[r#"{"jobs":[{"job_id":1,"job_state":"RUNNING"}]}"#],
                |r| parse_jobs(r, &mut Interner::default()),
            )
            .expect("runs");
        assert_eq!(v.1.len(), 1);
        assert!(n > 10);
    }

    #[test]
    fn a_hanging_command_is_killed_at_the_timeout() {
        let started = Instant::now();
        let err = sh()
            .run("sleep", &["30"], |r| {
                parse_jobs(r, &mut Interner::default())
            })
            .expect_err("times out");
        assert_eq!(err.kind(), "timeout", "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn garbage_output_is_a_parse_error() {
        let err = sh()
            .run("echo", &["<html>oops</html>"], |r| {
                parse_jobs(r, &mut Interner::default())
            })
            .expect_err("garbage");
        assert_eq!(err.kind(), "parse", "{err}");
        assert!(err.to_string().contains("'<'"), "{err}");
    }

    #[test]
    fn failing_command_reports_exit_and_stderr() {
        let err = sh()
            .run("ls", &["/nonexistent-path-for-test"], |r| {
                let mut s = String::new();
                r.read_to_string(&mut s)
                    .map_err(|e| ParseError::Io(e.to_string()))?;
                Ok(s)
            })
            .expect_err("fails");
        assert_eq!(err.kind(), "exit", "{err}");
        assert!(err.to_string().contains("nonexistent"), "{err}");
    }

    #[test]
    fn sacct_reads_only_what_ended_since_the_cursor() {
        assert_eq!(
            sacct_args(Some(1_000), 1_600).join(" "),
            "--json --allusers --allocations --duplicates --starttime now-600 --endtime now --state BF,CA,CD,DL,F,NF,OOM,PR,RQ,TO"
        );
        assert!(sacct_args(None, 1_600).contains(&"now-3600".to_owned()));
    }

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let err = sh()
            .run("definitely-not-a-slurm-binary", &[], |_| Ok(()))
            .expect_err("missing");
        assert_eq!(err.kind(), "spawn", "{err}");
    }
}
