//! Agent mode: per-job CPU and memory use read from the cgroup v2 tree of the node the
//! exporter runs on.
//!
//! Slurm's `cgroup/v2` plugin puts each job in a directory named `job_<id>` (for example
//! `/sys/fs/cgroup/system.slice/slurmstepd.scope/job_1234/`); its steps are below it. The
//! reader walks the tree from the configured root, takes every `job_<id>` directory (never
//! descending into one: the job's totals already include its steps) and reads the kernel's
//! accounting files. A missing file is an absent value, not an error: controllers can be off.

use super::{now_epoch, Parts, PollFuture, Source, SourceError};
use crate::model::CgroupJob;
use std::path::{Path, PathBuf};

/// How deep below the root job directories are searched for.
const MAX_DEPTH: usize = 6;
/// A tree with more directories than this is refused (a wrong root, a hostile tree).
const MAX_DIRS: usize = 200_000;

pub struct CgroupSource {
    /// Usually `/sys/fs/cgroup`.
    pub root: PathBuf,
    /// The node name to label the series with (the Slurm node this agent runs on).
    pub node: String,
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

/// `key value` lines (`cpu.stat`, `memory.events`).
fn keyed(p: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn number(p: &Path) -> Option<u64> {
    read_trimmed(p)?.parse().ok()
}

/// The job id of a `job_<id>` directory name.
fn job_id(name: &str) -> Option<u64> {
    name.strip_prefix("job_")?.parse().ok()
}

/// Reads every job cgroup under `root`.
pub fn read_jobs(root: &Path, node: &str) -> Result<Vec<CgroupJob>, SourceError> {
    let io = |p: &Path, e: std::io::Error| SourceError::Io {
        what: p.display().to_string(),
        msg: e.to_string(),
    };
    std::fs::metadata(root).map_err(|e| io(root, e))?;
    let mut jobs = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    let mut seen_dirs = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // A cgroup can vanish between listing and reading (a job ended): skip it.
            Err(_) if dir != root => continue,
            Err(e) => return Err(io(&dir, e)),
        };
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else { continue };
            if !ft.is_dir() || ft.is_symlink() {
                continue;
            }
            seen_dirs += 1;
            if seen_dirs > MAX_DIRS {
                return Err(SourceError::Config(format!(
                    "cgroup root {}: more than {MAX_DIRS} directories; is it the right root?",
                    root.display()
                )));
            }
            let path = entry.path();
            let name = entry.file_name();
            match job_id(&name.to_string_lossy()) {
                Some(id) => jobs.push(read_job(&path, id, node)),
                None if depth < MAX_DEPTH => stack.push((path, depth + 1)),
                None => {}
            }
        }
    }
    jobs.sort_by_key(|j| j.job_id);
    jobs.dedup_by_key(|j| j.job_id);
    Ok(jobs)
}

fn read_job(dir: &Path, job_id: u64, node: &str) -> CgroupJob {
    let max = read_trimmed(&dir.join("memory.max"));
    CgroupJob {
        job_id,
        node: node.to_owned(),
        cpu_seconds: keyed(&dir.join("cpu.stat"), "usage_usec").map(|us| us as f64 / 1e6),
        memory_bytes: number(&dir.join("memory.current")),
        memory_peak_bytes: number(&dir.join("memory.peak")),
        memory_limit_bytes: max.and_then(|m| m.parse().ok()),
        oom_kills: keyed(&dir.join("memory.events"), "oom_kill"),
        tasks: number(&dir.join("pids.current")),
    }
}

impl Source for CgroupSource {
    fn name(&self) -> &str {
        "cgroup"
    }

    fn poll(&self) -> PollFuture<'_> {
        let (root, node) = (self.root.clone(), self.node.clone());
        Box::pin(async move {
            let fetched_epoch = now_epoch();
            let jobs = tokio::task::spawn_blocking(move || read_jobs(&root, &node))
                .await
                .map_err(|e| SourceError::Io {
                    what: "cgroup poll".into(),
                    msg: e.to_string(),
                })??;
            Ok(Parts {
                cgroup_jobs: Some(jobs),
                fetched_epoch,
                ..Parts::default()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, name: &str, body: &str) {
        std::fs::create_dir_all(p).expect("mkdir");
        std::fs::write(p.join(name), body).expect("write");
    }

    /// A cgroup v2 tree as Slurm's cgroup/v2 plugin lays it out.
    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        let scope = d.path().join("system.slice/slurmstepd.scope");
        let j1 = scope.join("job_101");
        write(
            &j1,
            "cpu.stat",
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        );
        write(&j1, "memory.current", "1048576\n");
        write(&j1, "memory.peak", "2097152\n");
        write(&j1, "memory.max", "4294967296\n");
        write(
            &j1,
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        write(&j1, "pids.current", "7\n");
        // Steps below the job are not jobs of their own.
        write(&j1.join("step_0"), "cpu.stat", "usage_usec 1\n");
        let j2 = scope.join("job_102");
        write(&j2, "memory.current", "0\n");
        write(&j2, "memory.max", "max\n");
        write(&scope, "cgroup.procs", "1\n");
        write(&d.path().join("user.slice"), "cpu.stat", "usage_usec 5\n");
        d
    }

    #[test]
    fn reads_jobs_from_a_slurm_cgroup_v2_tree() {
        let t = tree();
        let jobs = read_jobs(t.path(), "cpu-01").expect("reads");
        assert_eq!(jobs.len(), 2);
        let j = &jobs[0];
        assert_eq!(j.job_id, 101);
        assert_eq!(j.node, "cpu-01");
        assert_eq!(j.cpu_seconds, Some(2.5));
        assert_eq!(j.memory_bytes, Some(1 << 20));
        assert_eq!(j.memory_peak_bytes, Some(2 << 20));
        assert_eq!(j.memory_limit_bytes, Some(4 << 30));
        assert_eq!(j.oom_kills, Some(1));
        assert_eq!(j.tasks, Some(7));
        let j = &jobs[1];
        assert_eq!(
            (j.job_id, j.memory_limit_bytes, j.cpu_seconds),
            (102, None, None)
        );
    }

    #[test]
    fn garbage_files_are_absent_values_not_errors() {
        let d = tempfile::tempdir().expect("tempdir");
        let j = d.path().join("job_7");
        write(&j, "cpu.stat", "usage_usec lots\n");
        write(&j, "memory.current", "\u{0}\u{1}garbage");
        write(&j, "memory.events", "");
        let jobs = read_jobs(d.path(), "n").expect("reads");
        assert_eq!(jobs[0].cpu_seconds, None);
        assert_eq!(jobs[0].memory_bytes, None);
        assert_eq!(jobs[0].oom_kills, None);
        // Not a job directory name.
        std::fs::create_dir_all(d.path().join("job_x")).expect("mkdir");
        assert_eq!(read_jobs(d.path(), "n").expect("reads").len(), 1);
    }

    #[test]
    fn a_missing_root_is_an_error_naming_it() {
        let err = read_jobs(Path::new("/nonexistent/cgroup"), "n").expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/cgroup"), "{err}");
    }

    #[tokio::test]
    async fn the_source_returns_cgroup_parts() {
        let t = tree();
        let src = CgroupSource {
            root: t.path().to_path_buf(),
            node: "cpu-01".into(),
        };
        let parts = src.poll().await.expect("polls");
        assert_eq!(parts.cgroup_jobs.map(|j| j.len()), Some(2));
    }
}
