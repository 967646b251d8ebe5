//! `slurm_job_cgroup_*`: jobs' measured use on the node an agent runs on (cgroup v2).
//! A series is owned by the job's user in its account when the snapshot knows the job;
//! otherwise by the cluster (operators only): deny by default.

use super::shared::Options;
use crate::model::{CgroupJob, Name};
use crate::snapshot::Snapshot;
use crate::store::{LabelValue, Owner, Sink};
use std::collections::HashMap;

type Pick = fn(&CgroupJob) -> Option<f64>;

const LABELS: &[&str] = &["job_id", "node", "account", "user"];

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    if s.cgroup_jobs.is_empty() {
        return;
    }
    let owners: HashMap<u64, (&Name, &Name)> = s
        .jobs
        .iter()
        .map(|j| (j.job_id, (&j.account, &j.user)))
        .collect();
    let specs: [(&str, &str, bool, Pick); 6] = [
        ("slurm_job_cgroup_cpu_seconds", "CPU time the job's cgroup used on the node (cpu.stat usage_usec).", true, |j| j.cpu_seconds),
        ("slurm_job_cgroup_memory_bytes", "Memory the job's cgroup uses on the node now (memory.current).", false, |j| j.memory_bytes.map(|v| v as f64)),
        ("slurm_job_cgroup_memory_peak_bytes", "Most memory the job's cgroup used on the node (memory.peak).", false, |j| j.memory_peak_bytes.map(|v| v as f64)),
        ("slurm_job_cgroup_memory_limit_bytes", "The job's cgroup memory limit on the node (memory.max; absent when unlimited).", false, |j| j.memory_limit_bytes.map(|v| v as f64)),
        ("slurm_job_cgroup_oom_kills", "Processes of the job the kernel killed for memory on the node (memory.events oom_kill).", true, |j| j.oom_kills.map(|v| v as f64)),
        ("slurm_job_cgroup_tasks", "Processes and threads in the job's cgroup on the node (pids.current).", false, |j| j.tasks.map(|v| v as f64)),
    ];
    for (name, help, counter, pick) in specs {
        let f = if counter {
            out.counter(name, help, LABELS)
        } else {
            out.gauge(name, help, LABELS)
        };
        for j in s.cgroup_jobs.iter() {
            let Some(v) = pick(j) else { continue };
            let (owner, account, user): (Owner, LabelValue, LabelValue) =
                match owners.get(&j.job_id) {
                    Some((a, u)) => (
                        Owner::User {
                            account: (*a).clone(),
                            user: (*u).clone(),
                        },
                        (*a).into(),
                        (*u).into(),
                    ),
                    None => (Owner::Cluster, "".into(), "".into()),
                };
            f.push(
                owner,
                [
                    j.job_id.to_string().into(),
                    j.node.clone().into(),
                    account,
                    user,
                ],
                v,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{encode, Format};
    use std::sync::Arc;

    #[test]
    fn known_jobs_belong_to_their_user_unknown_ones_to_the_cluster() {
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_jobs.json");
        let (_, jobs) = crate::parse::jobs::parse_jobs(&bytes[..], &mut Default::default())
            .expect("capture parses");
        let snap = Snapshot {
            jobs: Arc::new(jobs),
            cgroup_jobs: Arc::new(vec![
                CgroupJob {
                    job_id: 1126,
                    node: "cpu-03".into(),
                    cpu_seconds: Some(12.5),
                    oom_kills: Some(0),
                    ..Default::default()
                },
                CgroupJob {
                    job_id: 9,
                    node: "cpu-03".into(),
                    memory_bytes: Some(1024),
                    ..Default::default()
                },
            ]),
            ..Snapshot::default()
        };
        let mut sink = Sink::default();
        collect(&snap, &Options::default(), &mut sink);
        let fams = sink.into_families();
        let cpu = fams
            .iter()
            .find(|f| f.name == "slurm_job_cgroup_cpu_seconds")
            .expect("cpu");
        assert_eq!(
            cpu.series[0].owner,
            Owner::User {
                account: "physics".into(),
                user: "alice".into()
            }
        );
        let mem = fams
            .iter()
            .find(|f| f.name == "slurm_job_cgroup_memory_bytes")
            .expect("mem");
        assert_eq!(mem.series[0].owner, Owner::Cluster);
        let mut out = Vec::new();
        encode(&fams, Format::Text, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains(
            "slurm_job_cgroup_cpu_seconds_total{job_id=\"1126\",node=\"cpu-03\",account=\"physics\",user=\"alice\"} 12.5\n"
        ));
    }
}
