//! Site metrics without forking the exporter: a directory of `.prom` files (like
//! node_exporter's textfile collector) and configured commands, each given an owner scope
//! in config so tenancy applies to them as to every other series.
//!
//! - Files: only regular files named `*.prom` are read (writers write `x.prom.tmp` and
//!   rename it, so a reader never sees half a file); symlinks, dotfiles and other names are
//!   ignored. A file that does not parse is a warning naming it and the line; the other
//!   files are still served.
//! - Commands run through [`CliConfig::run_text`] (no shell, fixed arguments, a timeout
//!   that kills them); their stdout is read like a file.
//! - Scope: `cluster`, `partition:NAME`, `account:NAME`, `user:ACCOUNT/USER`. A file
//!   without a scope is not served (deny by default). A series whose `partition`,
//!   `account` or `user` label names someone other than its scope is dropped with a
//!   warning: a tenant must not be shown another tenant's name under its own scope.
//! - Names must start with the configured prefix (default `slurm_custom_`), so custom
//!   metrics never shadow built-in ones; a family that does not is dropped with a warning.
//!   A family name already given by an earlier file (files in name order, then commands)
//!   is dropped too: one exposition cannot hold a family twice.
//!
//! Per file or command, `slurm_textfile_ok{source}` (owned by the exporter) is 1 when it
//! was served.

use super::cli::CliConfig;
use super::{now_epoch, Parts, PollFuture, Source, SourceError};
use crate::model::Name;
use crate::parse::prom_text::{self, Limits};
use crate::parse::ParseError;
use crate::store::{Family, Owner, Sink};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Who owns a file's or command's series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    Partition(String),
    Account(String),
    User { account: String, user: String },
}

impl Scope {
    /// `cluster`, `partition:NAME`, `account:NAME`, `user:ACCOUNT/USER`.
    pub fn parse(s: &str) -> Result<Scope, String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 128
                && !n
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        };
        let bad = || {
            format!("bad scope {s:?}: expected cluster, partition:NAME, account:NAME or user:ACCOUNT/USER")
        };
        if s == "cluster" {
            return Ok(Scope::Cluster);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "partition" if name_ok(rest) => Ok(Scope::Partition(rest.to_owned())),
            "account" if name_ok(rest) => Ok(Scope::Account(rest.to_owned())),
            "user" => match rest.split_once('/') {
                Some((a, u)) if name_ok(a) && name_ok(u) => Ok(Scope::User {
                    account: a.to_owned(),
                    user: u.to_owned(),
                }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    fn owner(&self) -> Owner {
        match self {
            Scope::Cluster => Owner::Cluster,
            Scope::Partition(p) => Owner::Partition(Name::from(p.as_str())),
            Scope::Account(a) => Owner::Account(Name::from(a.as_str())),
            Scope::User { account, user } => Owner::User {
                account: Name::from(account.as_str()),
                user: Name::from(user.as_str()),
            },
        }
    }

    /// Whether a series' labels agree with the scope: a label naming a partition, account
    /// or user must name the scope's own.
    fn admits(&self, labels: &[(Box<str>, Box<str>)]) -> bool {
        labels.iter().all(|(n, v)| match (self, &**n) {
            (Scope::Cluster, _) => true,
            (Scope::Partition(p), "partition") => **v == **p,
            (Scope::Partition(_), "account" | "user") => false,
            (Scope::Account(a), "account") => **v == **a,
            (Scope::Account(_), "partition") => false,
            (Scope::User { account, .. }, "account") => **v == **account,
            (Scope::User { user, .. }, "user") => **v == **user,
            (Scope::User { .. }, "partition") => false,
            _ => true,
        })
    }
}

/// A command whose stdout is Prometheus text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandConfig {
    /// For messages and the `source` label.
    pub name: String,
    /// Absolute path is best; otherwise looked up in `PATH`.
    pub program: String,
    pub args: Vec<String>,
    pub scope: Option<Scope>,
    pub timeout: Duration,
}

/// Textfiles and commands.
#[derive(Debug, Clone)]
pub struct TextfileConfig {
    pub directory: Option<PathBuf>,
    /// Scope of each file by file name (`jobs.prom`); files not listed take
    /// `default_scope`, and with none are not served.
    pub file_scopes: BTreeMap<String, Scope>,
    pub default_scope: Option<Scope>,
    pub commands: Vec<CommandConfig>,
    /// Every family name must start with this.
    pub prefix: String,
    pub max_file_bytes: u64,
    pub max_files: usize,
    pub limits: Limits,
}

impl Default for TextfileConfig {
    fn default() -> Self {
        TextfileConfig {
            directory: None,
            file_scopes: BTreeMap::new(),
            default_scope: None,
            commands: Vec::new(),
            prefix: "slurm_custom_".to_owned(),
            max_file_bytes: 4 << 20,
            max_files: 512,
            limits: Limits {
                max_series: 50_000,
                ..Limits::default()
            },
        }
    }
}

/// Reads textfiles and runs commands.
#[derive(Debug)]
pub struct TextfileSource {
    cfg: TextfileConfig,
}

impl TextfileSource {
    pub fn new(cfg: TextfileConfig) -> Result<TextfileSource, SourceError> {
        if !prom_text::is_metric_name(&cfg.prefix) || cfg.prefix.len() < 3 {
            return Err(SourceError::Config(format!(
                "textfile: prefix {:?} must be a metric name of at least 3 characters",
                cfg.prefix
            )));
        }
        if cfg.prefix.starts_with("slurm_") && !cfg.prefix.starts_with("slurm_custom_") {
            return Err(SourceError::Config(format!(
                "textfile: prefix {:?} could shadow built-in slurm_* names; use slurm_custom_ or your own",
                cfg.prefix
            )));
        }
        for c in &cfg.commands {
            if c.program.is_empty() {
                return Err(SourceError::Config(format!(
                    "textfile: command {:?} has no program",
                    c.name
                )));
            }
        }
        Ok(TextfileSource { cfg })
    }

    fn poll_blocking(cfg: &TextfileConfig) -> Result<Parts, SourceError> {
        let fetched_epoch = now_epoch();
        // (what, its scope, its bytes)
        type Input = (String, Option<Scope>, Result<Vec<u8>, SourceError>);
        let mut inputs: Vec<Input> = Vec::new();
        if let Some(dir) = &cfg.directory {
            let entries = std::fs::read_dir(dir).map_err(|e| SourceError::Io {
                what: format!("textfile directory {}", dir.display()),
                msg: e.to_string(),
            })?;
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".prom") && !n.starts_with('.') && n.len() > 5)
                .collect();
            names.sort();
            for name in names.into_iter().take(cfg.max_files) {
                let path = dir.join(&name);
                let scope = cfg
                    .file_scopes
                    .get(&name)
                    .cloned()
                    .or_else(|| cfg.default_scope.clone());
                let read = read_file(&path, cfg.max_file_bytes);
                // Not a regular file (symlink, directory, fifo): ignored, like other names.
                if let Err(SourceError::Config(_)) = read {
                    continue;
                }
                inputs.push((name, scope, read));
            }
        }
        for c in &cfg.commands {
            let cli = CliConfig {
                bin_dir: None,
                slurm_conf: None,
                timeout: c.timeout,
            };
            let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
            let out = cli.run_text(&c.program, &args).map(String::into_bytes);
            inputs.push((format!("command {}", c.name), c.scope.clone(), out));
        }

        let mut warnings = Vec::new();
        let mut bytes = 0u64;
        let mut all: Vec<Family> = Vec::new();
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        let mut ok: Vec<(String, bool)> = Vec::new();
        for (what, scope, read) in inputs {
            let body = match read {
                Ok(b) => b,
                Err(e) => {
                    warnings.push(e);
                    ok.push((what, false));
                    continue;
                }
            };
            bytes += body.len() as u64;
            let Some(scope) = scope else {
                warnings.push(SourceError::Config(format!(
                    "textfile {what}: no owner scope configured; not served"
                )));
                ok.push((what, false));
                continue;
            };
            let parsed = match prom_text::parse_text(&body, &cfg.limits) {
                Ok(p) => p,
                Err(err) => {
                    warnings.push(SourceError::Parse {
                        what: format!("textfile {what}"),
                        err,
                    });
                    ok.push((what, false));
                    continue;
                }
            };
            let mut keep = Vec::with_capacity(parsed.len());
            for f in parsed {
                if !f.name.starts_with(&cfg.prefix) {
                    warnings.push(SourceError::Parse {
                        what: format!("textfile {what}"),
                        err: ParseError::Line {
                            line: f.line,
                            msg: format!(
                                "metric {:?} does not start with {:?}; dropped",
                                f.name, cfg.prefix
                            ),
                        },
                    });
                    continue;
                }
                let base = f.base_name().to_owned();
                if let Some(first) = taken.get(&base) {
                    warnings.push(SourceError::Parse {
                        what: format!("textfile {what}"),
                        err: ParseError::Line {
                            line: f.line,
                            msg: format!("metric {base:?} is already given by {first}; dropped"),
                        },
                    });
                    continue;
                }
                taken.insert(base, what.clone());
                keep.push(f);
            }
            let owner = scope.owner();
            let mut refused = 0usize;
            let (fams, _) = prom_text::to_families(keep, &mut |_, labels| {
                if scope.admits(labels) {
                    Some(owner.clone())
                } else {
                    refused += 1;
                    None
                }
            });
            if refused > 0 {
                warnings.push(SourceError::Config(format!(
                    "textfile {what}: {refused} series name a partition, account or user outside the file's scope; dropped"
                )));
            }
            all.extend(fams);
            ok.push((what, true));
        }
        let mut sink = Sink::default();
        let f = sink.gauge(
            "slurm_textfile_ok",
            "1 when the textfile or command was read, parsed and served in the last poll, else 0.",
            &["source"],
        );
        for (what, good) in ok {
            f.push(Owner::Exporter, [what.into()], if good { 1.0 } else { 0.0 });
        }
        all.extend(
            sink.into_families()
                .into_iter()
                .filter(|f| !f.series.is_empty()),
        );
        Ok(Parts {
            external: Some(all),
            fetched_epoch,
            bytes,
            warnings,
            ..Parts::default()
        })
    }
}

/// Reads a regular file (not a symlink) of at most `max` bytes in one go.
fn read_file(path: &std::path::Path, max: u64) -> Result<Vec<u8>, SourceError> {
    let what = format!("textfile {}", path.display());
    let io = |e: std::io::Error| SourceError::Io {
        what: what.clone(),
        msg: e.to_string(),
    };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(SourceError::Config(format!("{what}: not a regular file")));
    }
    if meta.len() > max {
        return Err(SourceError::Io {
            what,
            msg: format!("larger than {max} bytes"),
        });
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .map_err(io)?
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > max {
        return Err(SourceError::Io {
            what,
            msg: format!("larger than {max} bytes"),
        });
    }
    Ok(buf)
}

impl Source for TextfileSource {
    fn name(&self) -> &str {
        "textfile"
    }

    fn poll(&self) -> PollFuture<'_> {
        let cfg = self.cfg.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || TextfileSource::poll_blocking(&cfg))
                .await
                .map_err(|e| SourceError::Io {
                    what: "textfile".into(),
                    msg: e.to_string(),
                })?
        })
    }
}

/// Names of the families a poll served, for tests and logs.
pub fn family_names(fams: &[Family]) -> BTreeSet<String> {
    fams.iter().map(|f| f.name.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{encode, Format};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/textfile");

    fn copy_fixtures(dir: &std::path::Path) {
        for e in std::fs::read_dir(FIXTURES).expect("fixtures") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy");
        }
    }

    fn cfg(dir: &std::path::Path) -> TextfileConfig {
        let mut c = TextfileConfig {
            directory: Some(dir.to_path_buf()),
            ..TextfileConfig::default()
        };
        for (f, s) in [
            ("cluster.prom", "cluster"),
            ("physics.prom", "account:physics"),
            ("broken.prom", "cluster"),
            ("shadow.prom", "cluster"),
            ("alice.prom", "user:physics/alice"),
        ] {
            c.file_scopes
                .insert(f.into(), Scope::parse(s).expect("scope"));
        }
        c
    }

    async fn poll(c: TextfileConfig) -> Parts {
        TextfileSource::new(c)
            .expect("src")
            .poll()
            .await
            .expect("poll")
    }

    fn warnings(p: &Parts) -> Vec<String> {
        p.warnings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn scopes_parse_strictly() {
        assert_eq!(Scope::parse("cluster"), Ok(Scope::Cluster));
        assert_eq!(
            Scope::parse("partition:gpu"),
            Ok(Scope::Partition("gpu".into()))
        );
        assert_eq!(
            Scope::parse("user:physics/alice"),
            Ok(Scope::User {
                account: "physics".into(),
                user: "alice".into()
            })
        );
        for bad in [
            "",
            "Cluster",
            "account:",
            "user:alice",
            "user:/a",
            "account:a b",
            "tenant:x",
            "partition:a/b",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn serves_good_files_with_their_owner_and_warns_about_bad_ones() {
        let dir = tempfile::tempdir().expect("tmp");
        copy_fixtures(dir.path());
        let parts = poll(cfg(dir.path())).await;
        assert_eq!(
            parts
                .warnings
                .iter()
                .filter(|w| w.kind() == "parse")
                .count(),
            2 + 1,
            "{:?}",
            warnings(&parts)
        );
        let w = warnings(&parts).join("\n");
        assert!(w.contains("broken.prom") && w.contains("line 3"), "{w}");
        assert!(
            w.contains("shadow.prom") && w.contains("slurm_node_cpus"),
            "{w}"
        );
        assert!(
            w.contains("unscoped.prom") && w.contains("no owner scope"),
            "{w}"
        );
        assert!(w.contains("outside the file's scope"), "{w}");
        let fams = parts.external.expect("external");
        let names = family_names(&fams);
        assert!(names.contains("slurm_custom_scratch_used_bytes"));
        assert!(names.contains("slurm_custom_physics_licenses_used"));
        assert!(names.contains("slurm_custom_alice_quota_bytes"));
        assert!(
            !names.contains("slurm_node_cpus"),
            "never shadows a built-in name"
        );
        assert!(!names.iter().any(|n| n.contains("ignored")), "{names:?}");
        let owner = |n: &str| {
            fams.iter()
                .find(|f| f.name == n)
                .map(|f| f.series.iter().map(|s| s.owner.clone()).collect::<Vec<_>>())
        };
        assert_eq!(
            owner("slurm_custom_scratch_used_bytes"),
            Some(vec![Owner::Cluster; 2])
        );
        assert_eq!(
            owner("slurm_custom_physics_licenses_used"),
            Some(vec![Owner::Account("physics".into())]),
            "the chemistry series was dropped"
        );
        let mut out = Vec::new();
        encode(&fams, Format::Text, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("slurm_textfile_ok{source=\"broken.prom\"} 0\n"));
        assert!(text.contains("slurm_textfile_ok{source=\"cluster.prom\"} 1\n"));
        assert!(
            text.contains("# TYPE slurm_custom_backups_total counter\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn symlinks_temp_files_and_huge_files_are_not_read() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("real.prom.tmp"), "slurm_custom_a 1\n").expect("w");
        std::fs::write(dir.path().join(".hidden.prom"), "slurm_custom_b 1\n").expect("w");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.prom")).expect("ln");
        std::fs::write(dir.path().join("big.prom"), "x".repeat(2000)).expect("w");
        std::fs::write(dir.path().join("ok.prom"), "slurm_custom_c 1\n").expect("w");
        let mut c = TextfileConfig {
            directory: Some(dir.path().to_path_buf()),
            default_scope: Some(Scope::Cluster),
            max_file_bytes: 1000,
            ..TextfileConfig::default()
        };
        c.limits.max_line_bytes = 100;
        let parts = poll(c).await;
        let fams = parts.external.expect("external");
        let names = family_names(&fams);
        assert!(names.contains("slurm_custom_c"));
        assert!(!names.contains("slurm_custom_a") && !names.contains("slurm_custom_b"));
        let w = parts
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            w.contains("big.prom") && w.contains("larger than 1000"),
            "{w}"
        );
        assert!(!w.contains("passwd") && !w.contains("link.prom"), "{w}");
    }

    #[tokio::test]
    async fn commands_run_without_a_shell_with_a_timeout_and_a_scope() {
        let good = CommandConfig {
            name: "echo".into(),
            program: "/bin/echo".into(),
            args: vec!["slurm_custom_from_command{partition=\"gpu\"} 42".into()],
            scope: Some(Scope::Partition("gpu".into())),
            timeout: Duration::from_secs(5),
        };
        let no_shell = CommandConfig {
            name: "noshell".into(),
            program: "/bin/echo".into(),
            args: vec!["slurm_custom_x 1; rm -rf /".into()],
            scope: Some(Scope::Cluster),
            timeout: Duration::from_secs(5),
        };
        let slow = CommandConfig {
            name: "slow".into(),
            program: "/bin/sleep".into(),
            args: vec!["10".into()],
            scope: Some(Scope::Cluster),
            timeout: Duration::from_millis(200),
        };
        let unscoped = CommandConfig {
            name: "unscoped".into(),
            scope: None,
            ..good.clone()
        };
        let parts = poll(TextfileConfig {
            commands: vec![good, no_shell, slow, unscoped],
            ..TextfileConfig::default()
        })
        .await;
        let kinds: Vec<&str> = parts.warnings.iter().map(|w| w.kind()).collect();
        assert_eq!(
            kinds,
            ["parse", "timeout", "config"],
            "{:?}",
            warnings(&parts)
        );
        let fams = parts.external.expect("external");
        let f = fams
            .iter()
            .find(|f| f.name == "slurm_custom_from_command")
            .expect("served");
        assert_eq!(f.series[0].owner, Owner::Partition("gpu".into()));
        assert_eq!(f.series[0].value, 42.0);
    }

    #[test]
    fn prefixes_that_could_shadow_built_ins_are_refused() {
        for p in ["slurm_", "slurm_node_", "", "9x_"] {
            let c = TextfileConfig {
                prefix: p.into(),
                ..TextfileConfig::default()
            };
            assert!(TextfileSource::new(c).is_err(), "{p}");
        }
        assert!(TextfileSource::new(TextfileConfig {
            prefix: "site_".into(),
            ..TextfileConfig::default()
        })
        .is_ok());
    }
}
