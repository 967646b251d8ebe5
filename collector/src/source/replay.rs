//! Replays a directory of captured Slurm output, for tests, demos and bug reports.
//!
//! Layout (the same names the lab's captures and `testdata/` use):
//! - REST: the endpoint path with `/` turned into `_`: `slurm_v0.0.38_jobs.json`,
//!   `slurm_v0.0.38_nodes.json`, `slurm_v0.0.38_partitions.json`. When several versions are
//!   present, the newest is used.
//! - CLI: the command: `squeue.json` (`squeue --json`), `sinfo.json` (`sinfo --json`),
//!   `scontrol.show-partitions.txt` (`scontrol -o show partitions`).
//!
//! Optional parts, REST name or else CLI name: `..._diag.json` / `sdiag.txt`,
//! `..._ping.json` / `scontrol.ping.txt`, `..._licenses.json` / `scontrol.show-licenses.txt`,
//! `..._reservations.json` / `scontrol.show-reservations.txt` (printed with `TZ=UTC`),
//! `slurmdb_vX_qos.json` / `sacctmgr.qos-format.txt` (`sacctmgr -P show qos format=...`, see
//! `parse::qos::SACCTMGR_QOS_FORMAT`), `slurmdb_vX_associations.json`, and
//! `..._shares.json` / `sshare.txt` (`sshare -a -l -P`), and `sprio.txt`
//! (`sprio -h -o '%i|%u|%r|%Y|%A|%F|%J|%P|%Q|%T'`, CLI only).
//!
//! Finished jobs (accounting): `slurmdb_vX_jobs.json` / `sacct.json`
//! (`sacct --json -a -X -S ... -E ... -s ...`).
//!
//! REST files win over CLI files. Jobs and nodes are required; everything else is optional.

use super::{Counted, Parts, PollFuture, Source, SourceError};
use crate::model::Interner;
use crate::parse::associations::{
    merge, parse_associations_json, parse_shares_json, parse_sshare_text,
};
use crate::parse::diag::{parse_diag_json, parse_sdiag_text};
use crate::parse::jobs::parse_jobs;
use crate::parse::licenses::{parse_licenses_json, parse_scontrol_licenses_text};
use crate::parse::nodes::parse_nodes;
use crate::parse::partitions::{parse_partitions, parse_partitions_text};
use crate::parse::ping::{parse_ping_json, parse_scontrol_ping_text};
use crate::parse::qos::{parse_qos_json, parse_sacctmgr_qos_text};
use crate::parse::reservations::{parse_reservations_json, parse_scontrol_reservations_text};
use crate::parse::sacct::parse_sacct_json;
use crate::parse::versions::SUPPORTED;
use std::path::{Path, PathBuf};

pub struct ReplaySource {
    pub dir: PathBuf,
    /// "Now" for ages and wait times; `None` is the wall clock. Fixed in golden tests.
    pub now_epoch: Option<u64>,
}

/// The files a replay directory provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayFiles {
    pub jobs: PathBuf,
    pub nodes: PathBuf,
    pub partitions: Option<(PathBuf, bool)>,
}

/// Finds the files to replay in `dir`, naming what is missing.
pub fn find_files(dir: &Path) -> Result<ReplayFiles, SourceError> {
    let has = |name: &str| {
        let p = dir.join(name);
        p.is_file().then_some(p)
    };
    for v in SUPPORTED {
        let prefix = v.slurm.trim_start_matches('/').replace('/', "_");
        if let (Some(jobs), Some(nodes)) = (
            has(&format!("{prefix}_jobs.json")),
            has(&format!("{prefix}_nodes.json")),
        ) {
            let partitions = has(&format!("{prefix}_partitions.json")).map(|p| (p, true));
            return Ok(ReplayFiles {
                jobs,
                nodes,
                partitions,
            });
        }
    }
    match (has("squeue.json"), has("sinfo.json")) {
        (Some(jobs), Some(nodes)) => Ok(ReplayFiles {
            jobs,
            nodes,
            partitions: has("scontrol.show-partitions.txt").map(|p| (p, false)),
        }),
        _ => Err(SourceError::Config(format!(
            "replay directory {}: no slurm_vX_jobs.json + slurm_vX_nodes.json pair and no squeue.json + sinfo.json pair",
            dir.display()
        ))),
    }
}

fn read_parts(dir: &Path, now: Option<u64>) -> Result<Parts, SourceError> {
    let files = find_files(dir)?;
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(|f| Counted {
                inner: std::io::BufReader::with_capacity(1 << 20, f),
                count: 0,
            })
            .map_err(|e| SourceError::Io {
                what: p.display().to_string(),
                msg: e.to_string(),
            })
    };
    let parse_err = |p: &Path| {
        let what = p.display().to_string();
        move |err| SourceError::Parse { what, err }
    };
    let mut names = Interner::default();
    let mut r = open(&files.jobs)?;
    let (env, jobs) = parse_jobs(&mut r, &mut names).map_err(parse_err(&files.jobs))?;
    let mut bytes = r.count;
    let mut r = open(&files.nodes)?;
    let (nenv, nodes) = parse_nodes(&mut r, &mut names).map_err(parse_err(&files.nodes))?;
    bytes += r.count;
    let partitions = match &files.partitions {
        None => None,
        Some((p, json)) => {
            let data = std::fs::read(p).map_err(|e| SourceError::Io {
                what: p.display().to_string(),
                msg: e.to_string(),
            })?;
            bytes += data.len() as u64;
            Some(if *json {
                parse_partitions(&data, &mut names).map_err(parse_err(p))?.1
            } else {
                parse_partitions_text(&String::from_utf8_lossy(&data), &mut names)
                    .map_err(parse_err(p))?
            })
        }
    };
    let mut meta = if env.meta.release.is_empty() {
        nenv.meta
    } else {
        env.meta
    };
    if meta.plugin.is_empty() {
        meta.plugin = "cli".into();
    }
    let mut parts = Parts {
        meta,
        cluster: None,
        nodes: Some(nodes),
        jobs: Some(jobs),
        partitions: Some(partitions.unwrap_or_default()),
        fetched_epoch: now.unwrap_or_else(super::now_epoch),
        bytes,
        not_modified: false,
        ..Default::default()
    };
    read_optional(dir, &mut parts)?;
    Ok(parts)
}

/// The newest `slurm_vX_<endpoint>.json` (or `slurmdb_vX_...`) in `dir`.
fn newest(dir: &Path, db: bool, endpoint: &str) -> Option<PathBuf> {
    SUPPORTED.iter().find_map(|v| {
        let prefix = if db { v.slurmdb } else { v.slurm };
        let name = format!(
            "{}_{endpoint}.json",
            prefix.trim_start_matches('/').replace('/', "_")
        );
        let p = dir.join(name);
        p.is_file().then_some(p)
    })
}

/// Optional parts: REST files by endpoint, else CLI files by command. A file that is
/// present must parse: a broken fixture fails loudly rather than vanishing.
fn read_optional(dir: &Path, parts: &mut Parts) -> Result<(), SourceError> {
    fn load<T>(
        path: Option<PathBuf>,
        bytes: &mut u64,
        parse: impl FnOnce(&[u8]) -> Result<T, crate::parse::ParseError>,
    ) -> Result<Option<T>, SourceError> {
        let Some(p) = path else { return Ok(None) };
        let data = std::fs::read(&p).map_err(|e| SourceError::Io {
            what: p.display().to_string(),
            msg: e.to_string(),
        })?;
        *bytes += data.len() as u64;
        parse(&data).map(Some).map_err(|err| SourceError::Parse {
            what: p.display().to_string(),
            err,
        })
    }
    let cli = |name: &str| {
        let p = dir.join(name);
        p.is_file().then_some(p)
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let b = &mut parts.bytes;
    parts.diag = match newest(dir, false, "diag") {
        Some(p) => load(Some(p), b, parse_diag_json)?,
        None => load(cli("sdiag.txt"), b, |d| parse_sdiag_text(&text(d)))?,
    };
    parts.controllers = match newest(dir, false, "ping") {
        Some(p) => load(Some(p), b, parse_ping_json)?,
        None => load(cli("scontrol.ping.txt"), b, |d| {
            parse_scontrol_ping_text(&text(d))
        })?,
    };
    parts.licenses = match newest(dir, false, "licenses") {
        Some(p) => load(Some(p), b, parse_licenses_json)?,
        None => load(cli("scontrol.show-licenses.txt"), b, |d| {
            parse_scontrol_licenses_text(&text(d))
        })?,
    };
    parts.reservations = match newest(dir, false, "reservations") {
        Some(p) => load(Some(p), b, |d| {
            parse_reservations_json(d, &mut Interner::default())
        })?,
        None => load(cli("scontrol.show-reservations.txt"), b, |d| {
            parse_scontrol_reservations_text(&text(d), &mut Interner::default())
        })?,
    };
    parts.qos = match newest(dir, true, "qos") {
        Some(p) => load(Some(p), b, |d| parse_qos_json(d, &mut Interner::default()))?,
        None => load(cli("sacctmgr.qos-format.txt"), b, |d| {
            parse_sacctmgr_qos_text(&text(d), &mut Interner::default())
        })?,
    };
    parts.priorities = load(cli("sprio.txt"), b, |d| {
        crate::parse::sprio::parse_sprio(&text(d), &mut Interner::default())
    })?;
    let limits = load(newest(dir, true, "associations"), b, |d| {
        parse_associations_json(d, &mut Interner::default())
    })?;
    let shares = match newest(dir, false, "shares") {
        Some(p) => load(Some(p), b, |d| {
            parse_shares_json(d, &mut Interner::default())
        })?,
        None => load(cli("sshare.txt"), b, |d| {
            parse_sshare_text(&text(d), &mut Interner::default())
        })?,
    };
    if limits.is_some() || shares.is_some() {
        parts.associations = Some(merge(
            limits.unwrap_or_default(),
            shares.unwrap_or_default(),
        ));
    }
    parts.finished_jobs = read_finished_jobs(dir, &mut parts.bytes)?;
    Ok(())
}

/// Finished jobs: `slurmdb_vX_jobs.json` (`/slurmdb/vX/jobs`) or `sacct.json`
/// (`sacct --json`), streamed. The whole file is one batch: replayed every poll, the
/// ledger counts each job once.
fn read_finished_jobs(
    dir: &Path,
    bytes: &mut u64,
) -> Result<Option<Vec<crate::model::FinishedJob>>, SourceError> {
    let path = newest(dir, true, "jobs").or_else(|| {
        let p = dir.join("sacct.json");
        p.is_file().then_some(p)
    });
    let Some(p) = path else { return Ok(None) };
    let what = p.display().to_string();
    let f = std::fs::File::open(&p).map_err(|e| SourceError::Io {
        what: what.clone(),
        msg: e.to_string(),
    })?;
    let mut r = Counted {
        inner: std::io::BufReader::with_capacity(1 << 20, f),
        count: 0,
    };
    let jobs = parse_sacct_json(&mut r, &mut Interner::default())
        .map_err(|err| SourceError::Parse { what, err })?;
    *bytes += r.count;
    Ok(Some(jobs))
}

impl Source for ReplaySource {
    fn name(&self) -> &str {
        "replay"
    }

    fn poll(&self) -> PollFuture<'_> {
        let dir = self.dir.clone();
        let now = self.now_epoch;
        Box::pin(async move {
            tokio::task::spawn_blocking(move || read_parts(&dir, now))
                .await
                .map_err(|e| SourceError::Io {
                    what: "replay".into(),
                    msg: e.to_string(),
                })?
        })
    }
}

/// Reads a replay directory synchronously (for `collect --once` and tests).
pub fn read_dir(dir: &Path, now: Option<u64>) -> Result<Parts, SourceError> {
    read_parts(dir, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(sub: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(sub)
    }

    #[test]
    fn rest_layout_picks_the_newest_version() {
        let f = find_files(&testdata("rest/22.05.8")).expect("files");
        assert!(f.jobs.ends_with("slurm_v0.0.38_jobs.json"));
        assert!(
            f.nodes.ends_with("slurm_v0.0.38_nodes.json"),
            "{:?}",
            f.nodes
        );
    }

    #[test]
    fn cli_layout() {
        let p = read_dir(&testdata("cli/22.05.8"), Some(1)).expect("parses");
        assert_eq!(p.nodes.as_ref().map(Vec::len), Some(16));
        assert_eq!(p.partitions.as_ref().map(Vec::len), Some(4));
    }

    #[test]
    fn empty_dir_names_what_is_missing() {
        let d = tempfile::tempdir().expect("tempdir");
        let err = find_files(d.path()).expect_err("nothing there");
        assert!(err.to_string().contains("squeue.json"), "{err}");
    }
}
