//! Job records: `/slurm/vX/jobs` and `squeue --json`, every version from v0.0.36 on.
//!
//! Counting rules that existing exporters get wrong live here, once:
//! - a pending array meta-record (`array_task_string: "9-40%8"`) stands for 32 jobs;
//! - memory is the job's total: allocated TRES when running, requested TRES when pending,
//!   and `memory_per_node x nodes` / `memory_per_cpu x cpus` when no TRES string is given;
//! - job states with flags (v0.0.40+: `["RUNNING","COMPLETING"]`) keep the base state;
//! - GPUs come from the first field that names them, in this order of authority (see
//!   [`job_gpus`]): allocated TRES, `gres_detail` (one entry per allocated node), requested
//!   TRES, `tres_per_job`, `tres_per_node` x nodes, `tres_per_task` x tasks. A pending job
//!   reads its request only. Clusters without `gres/gpu` in `AccountingStorageTRES` write
//!   no GPUs in the TRES strings, so the later fields are what names them there.

use super::doc::{stream_array, Envelope};
use super::flex::{Flex, FlexStr, StrList};
use super::hostlist::{array_task_count, parse_gpu_request, parse_tres, Gres, Tres};
use super::stream::{parse_one, Parsed};
use super::ParseError;
use crate::model::{Interner, Job, JobState};
use serde::Deserialize;
use std::io::Read;

const MIB: u64 = 1 << 20;

#[derive(Deserialize, Default)]
#[serde(default)]
struct JobRecord<'a> {
    job_id: Flex,
    array_job_id: Flex,
    array_task_id: Flex,
    #[serde(borrow)]
    array_task_string: FlexStr<'a>,
    #[serde(borrow)]
    job_state: StrList<'a>,
    #[serde(borrow)]
    state_reason: FlexStr<'a>,
    #[serde(borrow)]
    partition: FlexStr<'a>,
    #[serde(borrow)]
    account: FlexStr<'a>,
    #[serde(borrow)]
    user_name: FlexStr<'a>,
    #[serde(borrow)]
    qos: FlexStr<'a>,
    cpus: Flex,
    node_count: Flex,
    #[serde(borrow)]
    tres_alloc_str: FlexStr<'a>,
    #[serde(borrow)]
    tres_req_str: FlexStr<'a>,
    memory_per_node: Flex,
    memory_per_cpu: Flex,
    submit_time: Flex,
    start_time: Flex,
    end_time: Flex,
    time_limit: Flex,
    priority: Flex,
    exit_code: Flex,
    #[serde(borrow)]
    nodes: FlexStr<'a>,
    #[serde(borrow)]
    gres_detail: StrList<'a>,
    #[serde(borrow)]
    tres_per_job: FlexStr<'a>,
    #[serde(borrow)]
    tres_per_node: FlexStr<'a>,
    #[serde(borrow)]
    tres_per_task: FlexStr<'a>,
    #[serde(alias = "num_tasks")]
    tasks: Flex,
}

/// A job's GPUs and their type, from the first field that names GPUs (module docs).
fn job_gpus(r: &JobRecord<'_>, holds: bool, alloc: &Tres, req: &Tres, nodes: u64) -> (u64, String) {
    let tres = |t: &Tres| t.gpus.map(|n| (n, t.gpu_type.clone().unwrap_or_default()));
    let of = |g: Gres, times: u64| (g.gpus.saturating_mul(times), g.gpu_type);
    let detail = || {
        let mut sum = Gres::default();
        let mut any = false;
        for d in r.gres_detail.iter() {
            if let Some(g) = parse_gpu_request(d) {
                any = true;
                sum.gpus = sum.gpus.saturating_add(g.gpus);
                if sum.gpu_type.is_empty() {
                    sum.gpu_type = g.gpu_type;
                }
            }
        }
        any.then(|| of(sum, 1))
    };
    let per = |s: &FlexStr<'_>, times: u64| parse_gpu_request(s.as_str()).map(|g| of(g, times));
    let tasks = r.tasks.u64().unwrap_or(1).max(1);
    let request = || {
        tres(req)
            .or_else(|| per(&r.tres_per_job, 1))
            .or_else(|| per(&r.tres_per_node, nodes.max(1)))
            .or_else(|| per(&r.tres_per_task, tasks))
    };
    if holds {
        tres(alloc).or_else(detail).or_else(request)
    } else {
        request().or_else(|| tres(alloc))
    }
    .unwrap_or_default()
}

fn job_state(tokens: &StrList<'_>) -> JobState {
    let mut state = None;
    for t in tokens.iter() {
        match JobState::from_token(t) {
            // COMPLETING/CONFIGURING arrive as flags next to RUNNING in v0.0.40+; they are
            // the more specific state, as squeue shows it.
            Some(s @ (JobState::Completing | JobState::Configuring)) => return s,
            Some(s) => {
                state.get_or_insert(s);
            }
            None => {}
        }
    }
    state.unwrap_or(JobState::Other)
}

fn convert(r: JobRecord<'_>, names: &mut Interner) -> Job {
    let state = job_state(&r.job_state);
    let job_id = r.job_id.u64().unwrap_or(0);
    let array_job_id = r.array_job_id.u64().unwrap_or(0);
    let array_task_id = r.array_task_id.u64();
    let task_count =
        if array_job_id != 0 && array_task_id.is_none() && !r.array_task_string.is_empty() {
            array_task_count(r.array_task_string.as_str())
        } else {
            1
        };
    let alloc = parse_tres(r.tres_alloc_str.as_str());
    let req = parse_tres(r.tres_req_str.as_str());
    let holds = state.holds_resources();
    let pick = |a: Option<u64>, q: Option<u64>| if holds { a.or(q) } else { q.or(a) };
    let cpus = r
        .cpus
        .u64()
        .or_else(|| pick(alloc.cpu, req.cpu))
        .unwrap_or(0);
    let nodes = pick(alloc.node, req.node)
        .or(r.node_count.u64())
        .unwrap_or(0);
    let nodes = if holds {
        r.node_count.u64().unwrap_or(nodes)
    } else {
        nodes
    };
    let memory_bytes = pick(alloc.mem_bytes, req.mem_bytes)
        .or_else(|| {
            r.memory_per_node
                .u64()
                .map(|m| m.saturating_mul(MIB).saturating_mul(nodes.max(1)))
        })
        .or_else(|| {
            r.memory_per_cpu
                .u64()
                .map(|m| m.saturating_mul(MIB).saturating_mul(cpus))
        })
        .unwrap_or(0);
    let (gpus, gpu_type) = job_gpus(&r, holds, &alloc, &req, nodes);
    let epoch = |f: Flex| f.u64().filter(|&t| t > 0);
    let reason = r.state_reason.as_str();
    Job {
        job_id,
        array_job_id,
        array_task_id,
        task_count,
        state,
        reason: names.intern(if reason == "None" { "" } else { reason }),
        partition: names.intern(r.partition.as_str()),
        account: names.intern(r.account.as_str()),
        user: names.intern(r.user_name.as_str()),
        qos: names.intern(r.qos.as_str()),
        cpus,
        nodes,
        memory_bytes,
        gpus,
        gpu_type: names.intern(&gpu_type),
        submit_epoch: epoch(r.submit_time),
        start_epoch: epoch(r.start_time),
        end_epoch: epoch(r.end_time),
        time_limit_seconds: r.time_limit.u64().map(|m| m.saturating_mul(60)),
        priority: r.priority.u64(),
        exit_code: r.exit_code.i64(),
        node_list: names.intern(r.nodes.as_str()),
    }
}

/// Parses one job object from the front of `bytes`.
pub fn parse_job(bytes: &[u8], names: &mut Interner) -> Parsed<Job> {
    parse_one::<JobRecord>(bytes).map(|o| o.map(|(r, n)| (convert(r, names), n)))
}

/// Streams a jobs document into `sink`, one job at a time.
pub fn stream_jobs<R: Read>(
    src: R,
    names: &mut Interner,
    sink: impl FnMut(Job),
) -> Result<Envelope, ParseError> {
    stream_array(src, "jobs", |b| parse_job(b, names), sink)
}

/// Parses a whole jobs document into a vector.
pub fn parse_jobs<R: Read>(
    src: R,
    names: &mut Interner,
) -> Result<(Envelope, Vec<Job>), ParseError> {
    let mut out = Vec::new();
    let env = stream_jobs(src, names, |j| out.push(j))?;
    Ok((env, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Vec<Job> {
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_jobs.json");
        parse_jobs(&bytes[..], &mut Interner::default())
            .expect("capture parses")
            .1
    }

    #[test]
    fn pending_array_meta_record_counts_its_tasks() {
        let jobs = lab();
        let j = jobs
            .iter()
            .find(|j| j.job_id == 1134)
            .expect("array parent");
        assert_eq!(j.state, JobState::Pending);
        assert_eq!(j.task_count, 32, "9-40%8 is 32 tasks");
        assert_eq!(&*j.reason, "JobArrayTaskLimit");
        let t = jobs.iter().find(|j| j.job_id == 1159).expect("array task");
        assert_eq!(
            (t.array_job_id, t.array_task_id, t.task_count),
            (1134, Some(1), 1)
        );
    }

    #[test]
    fn memory_is_the_jobs_total_in_bytes() {
        let jobs = lab();
        let j = |id| jobs.iter().find(|j| j.job_id == id).expect("job");
        // cpu=64,mem=62.50G over 3 nodes, allocated
        assert_eq!(j(1126).memory_bytes, 64_000 * MIB);
        assert_eq!(j(1126).nodes, 3);
        assert_eq!(j(1129).gpus, 8);
        // pending: requested TRES
        assert_eq!(j(1147).memory_bytes, 4_000 * MIB);
        assert_eq!(j(1147).gpus, 16);
        assert_eq!(
            j(1147).time_limit_seconds,
            Some(j(1147).time_limit_seconds.unwrap_or(0))
        );
        assert_eq!(&*j(1126).reason, "", "state_reason None is no reason");
    }

    #[test]
    fn v0_0_40_state_lists_and_number_objects() {
        let doc = br#"{"jobs":[{"job_id":5,"job_state":["RUNNING","COMPLETING"],"cpus":{"set":true,"number":4},
            "node_count":{"set":true,"number":1},"memory_per_node":{"set":true,"number":100},
            "time_limit":{"set":true,"infinite":false,"number":10},
            "exit_code":{"status":["SUCCESS"],"return_code":{"set":true,"number":0}},
            "array_job_id":{"set":true,"number":0},"array_task_id":{"set":false,"number":0}}]}"#;
        let (_, jobs) = parse_jobs(&doc[..], &mut Interner::default()).expect("parses");
        let j = &jobs[0];
        assert_eq!(j.state, JobState::Completing);
        assert_eq!((j.cpus, j.nodes), (4, 1));
        assert_eq!(j.memory_bytes, 100 * MIB);
        assert_eq!(j.time_limit_seconds, Some(600));
        assert_eq!(j.exit_code, Some(0));
        assert_eq!(j.task_count, 1);
    }

    #[test]
    fn hostile_records_are_neutral_not_fatal() {
        let doc = br#"{"jobs":[{"job_id":"12","job_state":null,"cpus":-5,"account":7},{},{"job_state":"WEIRD"}]}"#;
        let (_, jobs) = parse_jobs(&doc[..], &mut Interner::default()).expect("parses");
        assert_eq!(jobs.len(), 3);
        assert_eq!(jobs[0].job_id, 12);
        assert_eq!(jobs[0].cpus, 0);
        assert_eq!(&*jobs[0].account, "7");
        assert_eq!(jobs[2].state, JobState::Other);
    }
}
