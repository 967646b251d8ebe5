//! Finished jobs from slurmdbd: `sacct --json` and `/slurmdb/vX/jobs`, which write the same
//! document (v0.0.38 in 22.05 up to v0.0.44 in 25.11+).
//!
//! The document can be large (a busy day is 100,000 records of 3-8 KB each, more with
//! steps), so it is streamed record by record like `squeue --json`; each record's `steps`
//! are skipped unread. Only finished runs are kept: a time window also returns jobs still
//! pending or running, and those are counted when they end. Every run counts: a job
//! requeued after a node failure or preemption has one record per run (`sacct -D`), the
//! earlier ones REQUEUED with an end time, and each is kept.
//!
//! Shapes by version, all read by the one record type below:
//! - `state.current`: `"COMPLETED"` (v0.0.38/39) or `["COMPLETED"]` (v0.0.40+);
//! - numbers: plain, or `{"set":true,"infinite":false,"number":N}` (v0.0.39+);
//! - `exit_code`: `{"status":"SIGNALED","return_code":null,"signal":{"signal_id":9}}` (v0.0.38),
//!   `{"status":["SIGNALED"],"return_code":{"set":..},"signal":{"id":{"set":..},"name":"KILL"}}`
//!   (v0.0.40+), or a plain number;
//! - `tres.allocated`: `[{"type":"cpu","count":4},{"type":"gres","name":"gpu","count":2},..]`,
//!   memory in MiB.

use super::doc::stream_array;
use super::flex::{Flex, FlexStr, Lenient, StrList};
use super::stream::{parse_one, Parsed};
use super::ParseError;
use crate::model::{FinishedJob, Interner, JobState};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::io::Read;

const MIB: u64 = 1 << 20;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Record<'a> {
    #[serde(borrow)]
    cluster: FlexStr<'a>,
    job_id: Flex,
    array: Lenient<ArrayRec>,
    het: Lenient<HetRec>,
    time: Lenient<TimeRec>,
    #[serde(borrow)]
    state: Lenient<StateRec<'a>>,
    exit_code: ExitCode,
    #[serde(borrow)]
    account: FlexStr<'a>,
    #[serde(borrow)]
    user: FlexStr<'a>,
    #[serde(borrow)]
    partition: FlexStr<'a>,
    #[serde(borrow)]
    qos: FlexStr<'a>,
    #[serde(borrow)]
    tres: Lenient<TresRec<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ArrayRec {
    job_id: Flex,
    task_id: Flex,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HetRec {
    job_id: Flex,
    job_offset: Flex,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TimeRec {
    elapsed: Flex,
    submission: Flex,
    start: Flex,
    end: Flex,
    suspended: Flex,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StateRec<'a> {
    #[serde(borrow)]
    current: StrList<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TresRec<'a> {
    #[serde(borrow)]
    allocated: Vec<Lenient<TresItem<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TresItem<'a> {
    #[serde(borrow, rename = "type")]
    kind: FlexStr<'a>,
    #[serde(borrow)]
    name: FlexStr<'a>,
    count: Flex,
}

/// An exit code in any of Slurm's encodings, as a shell would report it: the return code,
/// or 128 + the signal number when a signal ended the job.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ExitCode(Option<i64>);

impl<'de> Deserialize<'de> for ExitCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ExitCode, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExitCode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an exit code")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExitCode, E> {
                Ok(ExitCode(Flex::Int(v).i64()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExitCode, E> {
                Ok(ExitCode(
                    i64::try_from(v).ok().and_then(|v| Flex::Int(v).i64()),
                ))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ExitCode, E> {
                Ok(ExitCode(Flex::Float(v).i64()))
            }
            /// `sacct`'s text form `code:signal`.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExitCode, E> {
                let mut it = v.trim().splitn(2, ':');
                let code = it.next().and_then(|c| c.trim().parse::<i64>().ok());
                let sig = it.next().and_then(|s| s.trim().parse::<i64>().ok());
                Ok(ExitCode(match (code, sig) {
                    (_, Some(s)) if s > 0 => Some(128 + s),
                    (c, _) => c,
                }))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ExitCode, E> {
                Ok(ExitCode(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ExitCode, E> {
                Ok(ExitCode(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<ExitCode, E> {
                Ok(ExitCode(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ExitCode, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExitCode, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ExitCode(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExitCode, A::Error> {
                let mut signaled = false;
                let mut code = None;
                let mut signal = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "status" => {
                            let s: StrList = map.next_value()?;
                            signaled = s.iter().any(|t| t.eq_ignore_ascii_case("SIGNALED"));
                        }
                        "return_code" => code = map.next_value::<Flex>()?.i64(),
                        "signal" => {
                            let s: Lenient<SignalRec> = map.next_value()?;
                            signal = s.0.signal_id.u64().or(s.0.id.u64()).filter(|&n| n > 0);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let by_signal = signal.and_then(|s| i64::try_from(s).ok()).map(|s| 128 + s);
                Ok(ExitCode(match (signaled, code, by_signal) {
                    (true, _, Some(s)) => Some(s),
                    (_, Some(c), _) => Some(c),
                    (_, None, s) => s,
                }))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignalRec {
    signal_id: Flex,
    id: Flex,
}

/// Allocated CPUs, memory (bytes), nodes and GPUs from TRES. A GPU count is the untyped
/// `gres/gpu` entry; typed entries (`gpu:a100`) repeat it, so they are summed only when the
/// untyped one is missing.
fn tres(items: &[Lenient<TresItem<'_>>]) -> (u64, u64, u64, u64) {
    let (mut cpus, mut mem, mut nodes) = (0u64, 0u64, 0u64);
    let (mut gpus, mut typed) = (None::<u64>, 0u64);
    for Lenient(t) in items {
        let n = t.count.u64().unwrap_or(0);
        match (t.kind.as_str(), t.name.as_str()) {
            ("cpu", _) => cpus = n,
            ("mem", _) => mem = n.saturating_mul(MIB),
            ("node", _) => nodes = n,
            ("gres", "gpu") => gpus = Some(gpus.unwrap_or(0).saturating_add(n)),
            ("gres", name) if name.starts_with("gpu:") => typed = typed.saturating_add(n),
            _ => {}
        }
    }
    (cpus, mem, nodes, gpus.unwrap_or(typed))
}

fn convert(r: Record<'_>, names: &mut Interner) -> Option<FinishedJob> {
    let state = r
        .state
        .0
        .current
        .iter()
        .find_map(JobState::from_token)
        .unwrap_or(JobState::Other);
    let time = &r.time.0;
    let end = time.end.u64().filter(|&t| t > 0)?;
    // A REQUEUED record with an end time is a run that ended (a node failed, the job was
    // preempted or requeued): it held its resources, so it counts, as `sacct -D` lists it.
    if !FinishedJob::is_final(state) && state != JobState::Requeued {
        return None;
    }
    let start = time.start.u64().filter(|&t| t > 0);
    let (cpus, memory_bytes, nodes, gpus) = tres(&r.tres.0.allocated);
    let all_tres = r
        .tres
        .0
        .allocated
        .iter()
        .filter_map(|Lenient(t)| {
            let n = t.count.u64().filter(|&n| n > 0)?;
            let kind = t.kind.as_str();
            if kind.is_empty() {
                return None;
            }
            let name = match t.name.as_str() {
                "" => names.intern(kind),
                nm => names.intern(&format!("{kind}/{nm}")),
            };
            Some((name, n))
        })
        .collect();
    let elapsed = time.elapsed.u64().unwrap_or_else(|| {
        start.map_or(0, |s| {
            end.saturating_sub(s)
                .saturating_sub(time.suspended.u64().unwrap_or(0))
        })
    });
    let partition = r.partition.as_str();
    let partition = partition.split(',').next().unwrap_or(partition).trim();
    let array_job_id = r.array.0.job_id.u64().unwrap_or(0);
    let het_job_id = r.het.0.job_id.u64().unwrap_or(0);
    Some(FinishedJob {
        cluster: names.intern(r.cluster.as_str()),
        job_id: r.job_id.u64().unwrap_or(0),
        array_job_id,
        array_task_id: if array_job_id == 0 {
            None
        } else {
            r.array.0.task_id.u64()
        },
        het_job_id,
        het_offset: if het_job_id == 0 {
            None
        } else {
            r.het.0.job_offset.u64()
        },
        submit_epoch: time.submission.u64().unwrap_or(0),
        start_epoch: start,
        end_epoch: end,
        state,
        exit_code: r.exit_code.0,
        account: names.intern(r.account.as_str()),
        user: names.intern(r.user.as_str()),
        partition: names.intern(partition),
        qos: names.intern(r.qos.as_str()),
        cpus,
        gpus,
        memory_bytes,
        nodes,
        elapsed_seconds: if start.is_some() { elapsed } else { 0 },
        tres: all_tres,
    })
}

/// Parses one job record from the front of `bytes`: `Some` for a finished job, `None` for a
/// record that is still pending or running.
pub fn parse_finished_job(bytes: &[u8], names: &mut Interner) -> Parsed<Option<FinishedJob>> {
    parse_one::<Record>(bytes).map(|o| o.map(|(r, n)| (convert(r, names), n)))
}

/// Streams a `sacct --json` / `/slurmdb/vX/jobs` document and returns its finished jobs.
pub fn parse_sacct_json<R: Read>(
    src: R,
    names: &mut Interner,
) -> Result<Vec<FinishedJob>, ParseError> {
    let mut out = Vec::new();
    stream_array(
        src,
        "jobs",
        |b| parse_finished_job(b, names),
        |j| {
            if let Some(j) = j {
                out.push(j);
            }
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<FinishedJob> {
        parse_sacct_json(bytes, &mut Interner::default()).expect("parses")
    }

    #[test]
    fn out_of_memory_job_from_sacct_22_05() {
        let jobs = parse(include_bytes!(
            "../../testdata/cli/22.05.8/sacct.out-of-memory-job.json"
        ));
        assert_eq!(jobs.len(), 1);
        let j = &jobs[0];
        assert_eq!(j.job_id, 1043);
        assert_eq!(j.state, JobState::OutOfMemory);
        assert_eq!(
            (&*j.cluster, &*j.account, &*j.user, &*j.partition, &*j.qos),
            ("lab", "physics", "bob", "cpu", "normal")
        );
        assert_eq!(
            (j.submit_epoch, j.start_epoch, j.end_epoch),
            (1795859411, Some(1795859411), 1795859412)
        );
        assert_eq!(j.elapsed_seconds, 1);
        assert_eq!((j.cpus, j.nodes, j.gpus), (1, 1, 0));
        assert_eq!(j.memory_bytes, 200 * MIB);
        // SIGNALED with signal 125 and no return code: 128 + 125, as a shell says.
        assert_eq!(j.exit_code, Some(253));
        assert_eq!((j.array_job_id, j.array_task_id), (0, None));
    }

    #[test]
    fn lab_capture_keeps_only_finished_jobs() {
        let jobs = parse(include_bytes!("../../testdata/cli/22.05.8/sacct.json"));
        // 38 records: 16 running and 8 pending are skipped.
        assert_eq!(jobs.len(), 14);
        let by = |id| jobs.iter().find(|j| j.job_id == id).expect("job");
        let t = by(1138);
        assert_eq!(t.state, JobState::Timeout);
        assert_eq!(t.elapsed_seconds, 70);
        assert_eq!(t.start_epoch.map(|s| s - t.submit_epoch), Some(14));
        let c = by(1140);
        assert_eq!(c.state, JobState::Cancelled);
        assert_eq!((c.start_epoch, c.cpus, c.elapsed_seconds), (None, 0, 0));
        let a = by(1150);
        assert_eq!((a.array_job_id, a.array_task_id), (1135, Some(0)));
        assert_eq!(a.memory_bytes, 1000 * MIB);
        assert_eq!(by(1136).state, JobState::Failed);
    }

    #[test]
    fn rest_capture_parses_the_same_records() {
        let jobs = parse(include_bytes!(
            "../../testdata/rest/22.05.8/slurmdb_v0.0.38_jobs.json"
        ));
        assert_eq!(jobs.len(), 14);
    }

    #[test]
    fn newer_versions_fixtures() {
        for (file, n) in [
            (
                &include_bytes!("../../testdata/rest/23.02.7/slurmdb_v0.0.39_jobs.json")[..],
                3,
            ),
            (
                &include_bytes!("../../testdata/rest/24.05.8/slurmdb_v0.0.41_jobs.json")[..],
                3,
            ),
            (
                &include_bytes!("../../testdata/rest/25.11.0/slurmdb_v0.0.44_jobs.json")[..],
                3,
            ),
        ] {
            let jobs = parse(file);
            assert_eq!(jobs.len(), n);
            let gpu = jobs.iter().find(|j| j.job_id == 2001).expect("gpu job");
            assert_eq!(gpu.state, JobState::Completed);
            assert_eq!((gpu.cpus, gpu.gpus, gpu.nodes), (16, 4, 2));
            assert_eq!(gpu.memory_bytes, 64_000 * MIB);
            assert_eq!(gpu.elapsed_seconds, 3600);
            let tres: Vec<(&str, u64)> = gpu.tres.iter().map(|(k, v)| (&**k, *v)).collect();
            assert_eq!(
                tres,
                [
                    ("cpu", 16),
                    ("mem", 64_000),
                    ("node", 2),
                    ("billing", 16),
                    ("gres/gpu", 4),
                    ("gres/gpu:a100", 4)
                ]
            );
            assert_eq!(gpu.exit_code, Some(0));
            assert_eq!((gpu.het_job_id, gpu.het_offset), (0, None));
            let killed = jobs.iter().find(|j| j.job_id == 2002).expect("killed job");
            assert_eq!(killed.state, JobState::Failed);
            assert_eq!(killed.exit_code, Some(128 + 9));
            assert_eq!((killed.array_job_id, killed.array_task_id), (2000, Some(3)));
            let oom = jobs.iter().find(|j| j.job_id == 2003).expect("oom job");
            assert_eq!(oom.state, JobState::OutOfMemory);
            assert_eq!(oom.exit_code, Some(1));
            assert_eq!((oom.het_job_id, oom.het_offset), (2003, Some(0)));
            assert_eq!(&*oom.partition, "himem");
        }
    }

    #[test]
    fn exit_codes_in_every_encoding() {
        let ec = |s: &str| serde_json::from_str::<ExitCode>(s).expect("never fails").0;
        assert_eq!(ec("0"), Some(0));
        assert_eq!(ec(r#""1:0""#), Some(1));
        assert_eq!(ec(r#""0:9""#), Some(137));
        assert_eq!(ec(r#"{"status":"EXITED","return_code":2}"#), Some(2));
        assert_eq!(
            ec(
                r#"{"status":["SIGNALED"],"return_code":{"set":false,"number":0},"signal":{"id":{"set":true,"number":15},"name":"TERM"}}"#
            ),
            Some(143)
        );
        assert_eq!(ec("null"), None);
        assert_eq!(ec("[1]"), None);
        assert_eq!(ec(r#"{"status":"PENDING"}"#), None);
    }

    #[test]
    fn hostile_input_is_an_error_or_neutral_never_a_panic() {
        let bytes = include_bytes!("../../testdata/cli/22.05.8/sacct.json");
        for cut in [0, 1, 100, bytes.len() / 2, bytes.len() - 2] {
            let err =
                parse_sacct_json(&bytes[..cut], &mut Interner::default()).expect_err("truncated");
            assert!(matches!(err, ParseError::Truncated { .. }), "{cut}: {err}");
        }
        for garbage in [
            &b"<html>502</html>"[..],
            b"[]",
            b"{\"jobs\":7}",
            b"\xff\xfe",
        ] {
            assert!(parse_sacct_json(garbage, &mut Interner::default()).is_err());
        }
        // Odd types inside a record cost that field, not the document.
        let doc = br#"{"jobs":[
            {"job_id":"9","state":{"current":"COMPLETED"},"time":{"end":"100","start":[],"submission":null,"elapsed":-3},
             "tres":{"allocated":[{"type":"cpu","count":"x"},7,{"type":"mem","count":18446744073709551615}]},
             "exit_code":{"status":7,"signal":"x"},"account":{},"array":[],"het":"?"},
            {"state":"COMPLETED"},{}
        ]}"#;
        let jobs = parse(doc);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].job_id, 9);
        assert_eq!((jobs[0].cpus, jobs[0].memory_bytes), (0, 0));
        assert_eq!(jobs[0].elapsed_seconds, 0);
    }

    #[test]
    fn errors_without_jobs_are_slurm_errors() {
        let doc = br#"{"errors":[{"error":"Unable to parse time format","source":"start_time"}]}"#;
        let err = parse_sacct_json(&doc[..], &mut Interner::default()).expect_err("no jobs");
        assert!(matches!(err, ParseError::Slurm(_)), "{err}");
    }
}
