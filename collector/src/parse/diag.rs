//! Scheduler and RPC statistics: REST `/slurm/vX/diag` (v0.0.36 .. v0.0.44, and the same
//! document from `sdiag --json`) and plain `sdiag` text for the CLI source.
//!
//! Shapes by version (from SchedMD's `src/plugins/openapi/v0.0.3x/diag.c` and
//! `src/plugins/data_parser/v0.0.4x/parsers.c`):
//! - v0.0.36–38: flat integers; v0.0.38 adds `rpcs_by_message_type` / `rpcs_by_user`.
//!   v0.0.36 writes the backfill *table size* mean under `bf_queue_len_mean` (fixed in
//!   v0.0.37), so that value is moved where it belongs.
//! - v0.0.39+: adds `*_sum` fields; timestamps (v0.0.40+) and RPC `average_time` (v0.0.41+)
//!   become `{set,infinite,number}`; `schedule_exit`/`bf_exit` objects (v0.0.40+); RPC
//!   queue fields and `pending_rpcs` (v0.0.41+). Every data_parser version writes the
//!   *queue length* mean again under `bf_table_size_mean`, so the table size mean is
//!   recomputed from `bf_table_size_sum` when given and left unknown otherwise.
//!
//! Times are microseconds in every encoding; the model holds seconds.

use super::doc::small_document;
use super::flex::{BoolLike, Flex};
use super::ParseError;
use crate::model::scheduler::{PendingRpc, RpcTypeStat, RpcUserStat};
use crate::model::Diag;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Slurm has six exit reasons per scheduler; anything past this is hostile input.
const MAX_EXIT_REASONS: usize = 32;

fn flex(v: Option<&Value>) -> Flex {
    v.and_then(|x| Flex::deserialize(x).ok())
        .unwrap_or_default()
}

/// Dividing (not multiplying by 1e-6) gives the double nearest the decimal value, so
/// 23661 µs prints as 0.023661.
fn micros(u: u64) -> f64 {
    u as f64 / 1e6
}

/// The OpenAPI minor version (`36` for `openapi/v0.0.36`, `41` for `data_parser/v0.0.41`).
fn api_version(doc: &Value) -> Option<u32> {
    let plugin = doc.get("meta")?.get("plugin")?;
    ["data_parser", "type"]
        .iter()
        .filter_map(|k| plugin.get(*k).and_then(Value::as_str))
        .find_map(|s| {
            let tail = &s[s.find("v0.0.")? + 5..];
            let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
}

/// Parses a REST `diag` document (any version) or `sdiag --json` output.
pub fn parse_diag_json(bytes: &[u8]) -> Result<Diag, ParseError> {
    let (env, doc) = small_document(bytes)?;
    let Some(st) = doc.get("statistics").and_then(Value::as_object) else {
        return Err(if env.errors.is_empty() {
            ParseError::Missing("statistics")
        } else {
            ParseError::Slurm(env.errors.join("; "))
        });
    };
    let api = api_version(&doc);
    let num = |k: &str| flex(st.get(k)).u64();
    let us = |k: &str| num(k).map(micros);
    // 0 is how Slurm says "never".
    let epoch = |k: &str| num(k).filter(|t| *t > 0);

    let mut d = Diag {
        report_epoch: epoch("req_time"),
        stats_reset_epoch: epoch("req_time_start"),
        server_thread_count: num("server_thread_count"),
        rpc_queue_enabled: None,
        agent_queue_size: num("agent_queue_size"),
        agent_count: num("agent_count"),
        agent_thread_count: num("agent_thread_count"),
        dbd_agent_queue_size: num("dbd_agent_queue_size"),
        gettimeofday_latency_seconds: us("gettimeofday_latency"),
        jobs_submitted: num("jobs_submitted"),
        jobs_started: num("jobs_started"),
        jobs_completed: num("jobs_completed"),
        jobs_canceled: num("jobs_canceled"),
        jobs_failed: num("jobs_failed"),
        jobs_pending: num("jobs_pending"),
        jobs_running: num("jobs_running"),
        job_states_epoch: epoch("job_states_ts"),
        rpcs_by_type: rpc_types(st.get("rpcs_by_message_type")),
        rpcs_by_user: rpc_users(st.get("rpcs_by_user")),
        pending_rpcs: pending(st.get("pending_rpcs")),
        ..Diag::default()
    };

    let m = &mut d.main;
    m.last_cycle_seconds = us("schedule_cycle_last");
    m.max_cycle_seconds = us("schedule_cycle_max");
    m.mean_cycle_seconds = us("schedule_cycle_mean");
    // A 32-bit count of microseconds in v0.0.41/42: it wraps after ~71 minutes of scheduling,
    // which Prometheus reads as a counter reset.
    m.cycle_sum_seconds = us("schedule_cycle_sum");
    m.cycles = num("schedule_cycle_total");
    m.mean_depth = num("schedule_cycle_mean_depth");
    m.depth_sum = num("schedule_cycle_depth");
    m.cycles_per_minute = num("schedule_cycle_per_minute");
    m.last_queue_length = num("schedule_queue_length");
    m.exits = exits(st.get("schedule_exit"));

    let b = &mut d.backfill;
    b.active = st
        .get("bf_active")
        .and_then(|x| BoolLike::deserialize(x).ok())
        .map(|x| x.0);
    b.backfilled_jobs = num("bf_backfilled_jobs");
    b.backfilled_jobs_since_reset = num("bf_last_backfilled_jobs");
    b.backfilled_het_jobs = num("bf_backfilled_het_jobs");
    b.cycles = num("bf_cycle_counter");
    b.last_cycle_epoch = epoch("bf_when_last_cycle");
    b.last_cycle_seconds = us("bf_cycle_last");
    b.max_cycle_seconds = us("bf_cycle_max");
    b.mean_cycle_seconds = us("bf_cycle_mean");
    b.cycle_sum_seconds = us("bf_cycle_sum");
    b.last_depth = num("bf_last_depth");
    b.last_depth_try = num("bf_last_depth_try");
    b.mean_depth = num("bf_depth_mean");
    b.mean_depth_try = num("bf_depth_mean_try");
    b.depth_sum = num("bf_depth_sum");
    b.depth_try_sum = num("bf_depth_try_sum");
    b.last_queue_length = num("bf_queue_len");
    b.last_table_size = num("bf_table_size");
    b.exits = exits(st.get("bf_exit"));
    let data_parser_era = api.is_some_and(|v| v >= 39)
        || st.contains_key("bf_depth_sum")
        || st.contains_key("bf_queue_len_sum");
    if api == Some(36) {
        b.mean_table_size = num("bf_queue_len_mean");
    } else if data_parser_era {
        b.mean_queue_length = num("bf_queue_len_mean");
        // Integer division, as sdiag and slurmrestd compute every other mean.
        b.mean_table_size = num("bf_table_size_sum")
            .zip(b.cycles)
            .map(|(sum, n)| sum.checked_div(n).unwrap_or(0));
    } else {
        b.mean_queue_length = num("bf_queue_len_mean");
        b.mean_table_size = num("bf_table_size_mean");
    }
    Ok(d)
}

/// A record's name: the string Slurm gave, or the numeric id when it gave none.
fn name_or_id(name: Option<&Value>, id: Option<u64>) -> Option<String> {
    match name.and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Some(s.to_owned()),
        _ => id.map(|i| i.to_string()),
    }
}

fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn rpc_types(v: Option<&Value>) -> Vec<RpcTypeStat> {
    items(v)
        .iter()
        .filter_map(|it| {
            let n = |k: &str| flex(it.get(k)).u64();
            let type_id = n("type_id");
            Some(RpcTypeStat {
                message_type: name_or_id(it.get("message_type"), type_id)?,
                type_id,
                count: n("count").unwrap_or(0),
                total_time_seconds: micros(n("total_time").unwrap_or(0)),
                average_time_seconds: n("average_time").map(micros),
                queued: n("queued"),
                dropped: n("dropped"),
                cycle_last: n("cycle_last"),
                cycle_max: n("cycle_max"),
            })
        })
        .collect()
}

fn rpc_users(v: Option<&Value>) -> Vec<RpcUserStat> {
    items(v)
        .iter()
        .filter_map(|it| {
            let n = |k: &str| flex(it.get(k)).u64();
            let user_id = n("user_id");
            Some(RpcUserStat {
                user: name_or_id(it.get("user"), user_id)?,
                user_id,
                count: n("count").unwrap_or(0),
                total_time_seconds: micros(n("total_time").unwrap_or(0)),
                average_time_seconds: n("average_time").map(micros),
            })
        })
        .collect()
}

fn pending(v: Option<&Value>) -> Vec<PendingRpc> {
    items(v)
        .iter()
        .filter_map(|it| {
            let type_id = flex(it.get("type_id")).u64();
            Some(PendingRpc {
                message_type: name_or_id(it.get("message_type"), type_id)?,
                type_id,
                count: flex(it.get("count")).u64().unwrap_or(0),
            })
        })
        .collect()
}

/// `{"end_job_queue": 5, "max_sched_time": {"set":true,"number":1}, ...}`: every numeric
/// entry whose key could be a label value, in a fixed (sorted) order.
fn exits(v: Option<&Value>) -> Vec<(String, u64)> {
    let Some(obj) = v.and_then(Value::as_object) else {
        return Vec::new();
    };
    exit_entries(obj)
}

fn exit_entries(obj: &Map<String, Value>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = obj
        .iter()
        .filter(|(k, _)| is_reason(k))
        .filter_map(|(k, x)| Some((k.clone(), flex(Some(x)).u64()?)))
        .take(MAX_EXIT_REASONS)
        .collect();
    out.sort();
    out
}

fn is_reason(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Which block of `sdiag` output a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Top,
    Main,
    MainExit,
    Backfill,
    BackfillExit,
    RpcType,
    RpcUser,
    Pending,
    PendingDump,
}

/// `sdiag` prints exit reasons as prose; the REST API's keys are the label values.
const MAIN_EXITS: &[(&str, &str)] = &[
    ("End of job queue", "end_job_queue"),
    ("Hit default_queue_depth", "default_queue_depth"),
    ("Hit sched_max_job_start", "max_job_start"),
    ("Blocked on licenses", "licenses"),
    ("Hit max_rpc_cnt", "max_rpc_cnt"),
    ("Timeout (max_sched_time)", "max_sched_time"),
];
const BACKFILL_EXITS: &[(&str, &str)] = &[
    ("End of job queue", "end_job_queue"),
    ("Hit bf_max_job_start", "bf_max_job_start"),
    ("Hit bf_max_job_test", "bf_max_job_test"),
    ("System state changed", "state_changed"),
    (
        "Hit table size limit (bf_node_space_size)",
        "bf_node_space_size",
    ),
    ("Timeout (bf_max_time)", "bf_max_time"),
];

/// A reason `sdiag` knows and we do not: `Hit foo (bar)` -> `hit_foo_bar`.
fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out.truncate(64);
    out
}

/// The epoch in `Sat Nov 28 10:04:59 2026 (1795860299)`; `None` for `N/A` or 0.
fn paren_epoch(s: &str) -> Option<u64> {
    let open = s.rfind('(')?;
    let close = open + s[open..].find(')')?;
    s[open + 1..close]
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|t| *t > 0)
}

/// `NAME ( 2009) count:34 ave_time:220 total_time:7497 [queued:.. dropped:..]`.
struct RpcLine<'a> {
    name: &'a str,
    id: Option<u64>,
    fields: Vec<(&'a str, u64)>,
}

impl RpcLine<'_> {
    fn get(&self, k: &str) -> Option<u64> {
        self.fields.iter().find(|(f, _)| *f == k).map(|(_, v)| *v)
    }
}

fn rpc_line(t: &str) -> Option<RpcLine<'_>> {
    let (name, rest) = t.split_once('(')?;
    let (id, rest) = rest.split_once(')')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut fields = Vec::new();
    for w in rest.split_whitespace() {
        let (k, v) = w.split_once(':')?;
        fields.push((k, v.parse().ok()?));
    }
    let line = RpcLine {
        name,
        id: id.trim().parse().ok(),
        fields,
    };
    line.get("count").is_some().then_some(line)
}

/// Parses plain `sdiag` output (any release since 20.11; newer blocks such as exit
/// reasons and RPC queue columns are read when present).
///
/// Lines that belong to no known block are ignored; a known key with a value that is not a
/// number, or a malformed RPC record, is an error naming the line: dropping one would make
/// its counter vanish and come back as a fake reset.
pub fn parse_sdiag_text(text: &str) -> Result<Diag, ParseError> {
    let mut d = Diag::default();
    let mut section = Section::Top;
    let mut recognized = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('*') {
            continue;
        }
        let err = |msg: String| ParseError::Line { line, msg };
        let bad = |k: &str, v: &str| err(format!("{k}: expected a number, found {v:?}"));

        // Block headers and the lines that carry their value in prose.
        if let Some(rest) = t.strip_prefix("sdiag output at") {
            d.report_epoch = paren_epoch(rest);
            recognized = true;
            continue;
        }
        if let Some(rest) = t.strip_prefix("Data since") {
            d.stats_reset_epoch = paren_epoch(rest);
            continue;
        }
        if t.starts_with("No data available") {
            return Err(err(format!("sdiag reports no data: {t}")));
        }
        if let Some(rest) = t.strip_prefix("Latency for 1000 calls to gettimeofday():") {
            let v = rest.split_whitespace().next().unwrap_or("");
            let us: u64 = v.parse().map_err(|_| bad("gettimeofday latency", v))?;
            d.gettimeofday_latency_seconds = Some(micros(us));
            section = Section::Top;
            continue;
        }
        let header = [
            ("Main schedule statistics", Section::Main),
            ("Main scheduler exit", Section::MainExit),
            ("Backfilling stats", Section::Backfill),
            ("Backfill exit", Section::BackfillExit),
            (
                "Remote Procedure Call statistics by message type",
                Section::RpcType,
            ),
            ("Remote Procedure Call statistics by user", Section::RpcUser),
            ("Pending RPC statistics", Section::Pending),
            ("Pending RPCs", Section::PendingDump),
        ]
        .into_iter()
        .find(|(h, _)| t.starts_with(h));
        if let Some((_, s)) = header {
            section = s;
            if s == Section::Backfill {
                // sdiag warns in the header when a backfill cycle is running.
                d.backfill.active = Some(t.contains("WARNING"));
            }
            continue;
        }

        match section {
            Section::RpcType | Section::RpcUser | Section::Pending => {
                let Some(r) = rpc_line(t) else {
                    // "No RPCs recorded yet.", "No pending RPCs".
                    if t.starts_with("No ") {
                        continue;
                    }
                    return Err(err(format!("malformed RPC record {t:?}")));
                };
                let count = r.get("count").unwrap_or(0);
                let total = micros(r.get("total_time").unwrap_or(0));
                let avg = r.get("ave_time").map(micros);
                match section {
                    Section::RpcType => d.rpcs_by_type.push(RpcTypeStat {
                        message_type: r.name.to_owned(),
                        type_id: r.id,
                        count,
                        total_time_seconds: total,
                        average_time_seconds: avg,
                        queued: r.get("queued"),
                        dropped: r.get("dropped"),
                        cycle_last: r.get("cycle_last"),
                        cycle_max: r.get("cycle_max"),
                    }),
                    Section::RpcUser => d.rpcs_by_user.push(RpcUserStat {
                        user: r.name.to_owned(),
                        user_id: r.id,
                        count,
                        total_time_seconds: total,
                        average_time_seconds: avg,
                    }),
                    _ => d.pending_rpcs.push(PendingRpc {
                        message_type: r.name.to_owned(),
                        type_id: r.id,
                        count,
                    }),
                }
                continue;
            }
            Section::MainExit | Section::BackfillExit => {
                // `\t%s:%2u`; reasons may contain parentheses but not colons.
                if let Some((k, v)) = t.rsplit_once(':') {
                    let (k, v) = (k.trim(), v.trim());
                    let n: u64 = v.parse().map_err(|_| bad(k, v))?;
                    let (table, exits) = if section == Section::MainExit {
                        (MAIN_EXITS, &mut d.main.exits)
                    } else {
                        (BACKFILL_EXITS, &mut d.backfill.exits)
                    };
                    let reason = table
                        .iter()
                        .find(|(text, _)| text.eq_ignore_ascii_case(k))
                        .map(|(_, key)| (*key).to_owned())
                        .unwrap_or_else(|| slug(k));
                    if !reason.is_empty() && exits.len() < MAX_EXIT_REASONS {
                        exits.push((reason, n));
                        exits.sort();
                    }
                }
                continue;
            }
            Section::PendingDump => continue,
            Section::Top | Section::Main | Section::Backfill => {}
        }

        let Some((k, v)) = t.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        let n = || v.parse::<u64>().map_err(|_| bad(k, v));
        let us = || n().map(micros);
        // Top-level keys are unique across blocks, so they are read in any block: a
        // capture that lost its tabs still parses.
        match k {
            "Server thread count" => {
                d.server_thread_count = Some(n()?);
                recognized = true;
                continue;
            }
            "RPC queue enabled" => {
                d.rpc_queue_enabled = Some(n()? != 0);
                continue;
            }
            "Agent queue size" => {
                d.agent_queue_size = Some(n()?);
                continue;
            }
            "Agent count" => {
                d.agent_count = Some(n()?);
                continue;
            }
            "Agent thread count" => {
                d.agent_thread_count = Some(n()?);
                continue;
            }
            "DBD Agent queue size" => {
                d.dbd_agent_queue_size = Some(n()?);
                continue;
            }
            "Jobs submitted" => {
                d.jobs_submitted = Some(n()?);
                continue;
            }
            "Jobs started" => {
                d.jobs_started = Some(n()?);
                continue;
            }
            "Jobs completed" => {
                d.jobs_completed = Some(n()?);
                continue;
            }
            "Jobs canceled" => {
                d.jobs_canceled = Some(n()?);
                continue;
            }
            "Jobs failed" => {
                d.jobs_failed = Some(n()?);
                continue;
            }
            "Jobs pending" => {
                d.jobs_pending = Some(n()?);
                continue;
            }
            "Jobs running" => {
                d.jobs_running = Some(n()?);
                continue;
            }
            "Job states ts" => {
                d.job_states_epoch = paren_epoch(v);
                continue;
            }
            _ => {}
        }
        if section == Section::Main {
            let m = &mut d.main;
            match k {
                "Last cycle" => m.last_cycle_seconds = Some(us()?),
                "Max cycle" => m.max_cycle_seconds = Some(us()?),
                "Total cycles" => m.cycles = Some(n()?),
                "Mean cycle" => m.mean_cycle_seconds = Some(us()?),
                "Mean depth cycle" => m.mean_depth = Some(n()?),
                "Cycles per minute" => m.cycles_per_minute = Some(n()?),
                "Last queue length" => m.last_queue_length = Some(n()?),
                _ => {}
            }
        } else if section == Section::Backfill {
            let b = &mut d.backfill;
            match k {
                "Total backfilled jobs (since last slurm start)" => b.backfilled_jobs = Some(n()?),
                "Total backfilled jobs (since last stats cycle start)" => {
                    b.backfilled_jobs_since_reset = Some(n()?)
                }
                "Total backfilled heterogeneous job components" => {
                    b.backfilled_het_jobs = Some(n()?)
                }
                "Total cycles" => b.cycles = Some(n()?),
                "Last cycle when" => b.last_cycle_epoch = paren_epoch(v),
                "Last cycle" => b.last_cycle_seconds = Some(us()?),
                "Max cycle" => b.max_cycle_seconds = Some(us()?),
                "Mean cycle" => b.mean_cycle_seconds = Some(us()?),
                "Last depth cycle" => b.last_depth = Some(n()?),
                "Last depth cycle (try sched)" => b.last_depth_try = Some(n()?),
                "Depth Mean" => b.mean_depth = Some(n()?),
                "Depth Mean (try depth)" | "Depth Mean (try sched)" => {
                    b.mean_depth_try = Some(n()?)
                }
                "Last queue length" => b.last_queue_length = Some(n()?),
                "Queue length mean" => b.mean_queue_length = Some(n()?),
                "Last table size" => b.last_table_size = Some(n()?),
                "Mean table size" => b.mean_table_size = Some(n()?),
                _ => {}
            }
        }
    }
    if !recognized {
        return Err(ParseError::Line {
            line: 1,
            msg: "not sdiag output: no \"sdiag output at\" header and no \"Server thread count\""
                .into(),
        });
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDIAG_22_05: &str = include_str!("../../testdata/cli/22.05.8/sdiag.txt");
    const SDIAG_25_05: &str = include_str!("../../testdata/cli/25.05.8/sdiag.txt");
    const V36: &[u8] = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.36_diag.json");
    const V38: &[u8] = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_diag.json");
    const V39: &[u8] = include_bytes!("../../testdata/rest/23.02.7/slurm_v0.0.39_diag.json");
    const V40: &[u8] = include_bytes!("../../testdata/rest/23.11.10/slurm_v0.0.40_diag.json");
    const V41: &[u8] = include_bytes!("../../testdata/rest/24.05.8/slurm_v0.0.41_diag.json");
    const V42: &[u8] = include_bytes!("../../testdata/rest/24.11.5/slurm_v0.0.42_diag.json");
    const V43: &[u8] = include_bytes!("../../testdata/rest/25.05.8/slurm_v0.0.43_diag.json");
    const V44: &[u8] = include_bytes!("../../testdata/rest/25.11.0/slurm_v0.0.44_diag.json");

    fn rpc<'d>(d: &'d Diag, name: &str) -> &'d RpcTypeStat {
        d.rpcs_by_type
            .iter()
            .find(|r| r.message_type == name)
            .unwrap_or_else(|| panic!("no RPC type {name}"))
    }

    fn user<'d>(d: &'d Diag, name: &str) -> &'d RpcUserStat {
        d.rpcs_by_user
            .iter()
            .find(|r| r.user == name)
            .unwrap_or_else(|| panic!("no RPC user {name}"))
    }

    fn exit(exits: &[(String, u64)], reason: &str) -> Option<u64> {
        exits.iter().find(|(r, _)| r == reason).map(|(_, n)| *n)
    }

    #[test]
    fn sdiag_capture_parses_with_exact_values() {
        let d = parse_sdiag_text(SDIAG_22_05).expect("capture parses");
        assert_eq!(d.report_epoch, Some(1_795_860_299));
        assert_eq!(d.stats_reset_epoch, Some(1_795_860_180));
        assert_eq!(d.server_thread_count, Some(3));
        assert_eq!(d.agent_thread_count, Some(4));
        assert_eq!(d.rpc_queue_enabled, None, "22.05 prints no RPC queue line");
        assert_eq!(d.gettimeofday_latency_seconds, Some(0.000021));
        assert_eq!(d.jobs_submitted, Some(72));
        assert_eq!(d.jobs_pending, Some(42));
        assert_eq!(d.job_states_epoch, Some(1_795_860_270));
        assert_eq!(d.main.max_cycle_seconds, Some(0.003077));
        assert_eq!(d.main.cycles, Some(14));
        assert_eq!(d.main.cycles_per_minute, Some(14));
        assert!(d.main.exits.is_empty(), "22.05 prints no exit reasons");
        assert_eq!(d.backfill.active, Some(false));
        assert_eq!(d.backfill.max_cycle_seconds, Some(0.005762));
        assert_eq!(d.backfill.last_cycle_epoch, Some(1_795_860_299));
        assert_eq!(d.backfill.last_depth_try, Some(3));
        assert_eq!(d.backfill.mean_queue_length, Some(8));
        assert_eq!(d.backfill.mean_table_size, Some(3));
        assert_eq!(d.rpcs_by_type.len(), 23);
        let submit = rpc(&d, "REQUEST_SUBMIT_BATCH_JOB");
        assert_eq!(submit.type_id, Some(4003));
        assert_eq!(submit.count, 24);
        assert_eq!(submit.total_time_seconds, 0.023661);
        assert_eq!(submit.average_time_seconds, Some(0.000985));
        assert_eq!(rpc(&d, "ACCOUNTING_UPDATE_MSG").type_id, Some(10001));
        assert_eq!(d.rpcs_by_user.len(), 7);
        let alice = user(&d, "alice");
        assert_eq!((alice.user_id, alice.count), (Some(1001), 8));
        assert_eq!(alice.total_time_seconds, 0.00579);
        assert!(d.pending_rpcs.is_empty());
    }

    #[test]
    fn rest_v0_0_38_capture_parses_with_exact_values() {
        let d = parse_diag_json(V38).expect("capture parses");
        assert_eq!(d.server_thread_count, Some(3));
        assert_eq!(d.report_epoch, Some(1_795_860_302));
        assert_eq!(d.main.max_cycle_seconds, Some(0.003077));
        assert_eq!(d.main.cycles_per_minute, Some(7));
        assert_eq!(d.backfill.active, Some(false));
        assert_eq!(d.backfill.last_table_size, Some(4));
        assert_eq!(d.backfill.mean_table_size, Some(3));
        assert_eq!(d.backfill.mean_queue_length, Some(8));
        assert_eq!(d.backfill.last_depth, None, "v0.0.38 has no bf_last_depth");
        let ping = rpc(&d, "REQUEST_PING");
        assert_eq!((ping.type_id, ping.count), (Some(1008), 11));
        assert_eq!(ping.total_time_seconds, 0.001735);
        assert_eq!(user(&d, "root").count, 166);
        assert_eq!(user(&d, "slurm").user_id, Some(64030));
    }

    #[test]
    fn rest_v0_0_36_table_size_mean_is_moved_where_it_belongs() {
        let d = parse_diag_json(V36).expect("capture parses");
        assert_eq!(d.server_thread_count, Some(2));
        // v0.0.36 writes the table size mean under bf_queue_len_mean (sdiag: 3 vs 8).
        assert_eq!(d.backfill.mean_table_size, Some(3));
        assert_eq!(d.backfill.mean_queue_length, None);
        assert!(d.rpcs_by_type.is_empty() && d.rpcs_by_user.is_empty());
    }

    #[test]
    fn rest_and_sdiag_of_the_same_lab_agree_on_shared_fields() {
        let text = parse_sdiag_text(SDIAG_22_05).expect("sdiag");
        // Taken seconds apart: thread counts, RPC counters, cycles per minute (slurmctld
        // divides by whole minutes since the reset) and timestamps legitimately differ.
        for json in [V36, V38] {
            let j = parse_diag_json(json).expect("json");
            let shared = |d: &Diag| {
                (
                    d.stats_reset_epoch,
                    d.agent_queue_size,
                    d.agent_count,
                    d.agent_thread_count,
                    d.dbd_agent_queue_size,
                    d.gettimeofday_latency_seconds,
                    [
                        d.jobs_submitted,
                        d.jobs_started,
                        d.jobs_completed,
                        d.jobs_canceled,
                        d.jobs_failed,
                        d.jobs_pending,
                        d.jobs_running,
                    ],
                )
            };
            assert_eq!(shared(&j), shared(&text));
            let main = |d: &Diag| {
                let m = &d.main;
                (
                    m.last_cycle_seconds,
                    m.max_cycle_seconds,
                    m.mean_cycle_seconds,
                    m.cycles,
                    m.mean_depth,
                    m.last_queue_length,
                )
            };
            assert_eq!(main(&j), main(&text));
            let bf = |d: &Diag| {
                let b = &d.backfill;
                (
                    b.active,
                    [
                        b.backfilled_jobs,
                        b.backfilled_jobs_since_reset,
                        b.backfilled_het_jobs,
                        b.cycles,
                        b.last_cycle_epoch,
                        b.mean_depth,
                        b.mean_depth_try,
                        b.last_queue_length,
                        b.mean_table_size,
                    ],
                    [
                        b.last_cycle_seconds,
                        b.max_cycle_seconds,
                        b.mean_cycle_seconds,
                    ],
                )
            };
            assert_eq!(bf(&j), bf(&text));
        }
        let j = parse_diag_json(V38).expect("json");
        assert_eq!(
            j.backfill.mean_queue_length,
            text.backfill.mean_queue_length
        );
        assert_eq!(j.backfill.last_table_size, text.backfill.last_table_size);
        // RPC types and users that saw no traffic between the two captures agree exactly.
        assert_eq!(
            rpc(&j, "REQUEST_SUBMIT_BATCH_JOB"),
            rpc(&text, "REQUEST_SUBMIT_BATCH_JOB")
        );
        assert_eq!(user(&j, "alice"), user(&text, "alice"));
    }

    #[test]
    fn rest_v0_0_39_has_sums_but_no_trustworthy_table_size_mean() {
        let d = parse_diag_json(V39).expect("fixture parses");
        assert_eq!(d.report_epoch, Some(1_795_870_000));
        assert_eq!(d.backfill.cycle_sum_seconds, Some(0.036));
        assert_eq!(d.backfill.depth_sum, Some(280));
        assert_eq!(d.backfill.mean_queue_length, Some(10));
        // bf_table_size_mean repeats the queue length mean in every data_parser version.
        assert_eq!(d.backfill.mean_table_size, None);
        assert_eq!(d.backfill.max_cycle_seconds, None);
        assert!(d.main.exits.is_empty());
        assert_eq!(rpc(&d, "REQUEST_SUBMIT_BATCH_JOB").count, 40);
    }

    #[test]
    fn rest_v0_0_40_reads_wrapped_timestamps_and_exit_reasons() {
        let d = parse_diag_json(V40).expect("fixture parses");
        assert_eq!(d.report_epoch, Some(1_795_870_000));
        assert_eq!(d.stats_reset_epoch, Some(1_795_866_400));
        assert_eq!(d.job_states_epoch, Some(1_795_869_990));
        assert_eq!(d.backfill.last_cycle_epoch, Some(1_795_869_995));
        assert_eq!(exit(&d.main.exits, "end_job_queue"), Some(50));
        assert_eq!(exit(&d.main.exits, "max_sched_time"), Some(3));
        assert_eq!(d.main.exits.len(), 6);
        assert_eq!(exit(&d.backfill.exits, "bf_max_time"), Some(3));
        assert_eq!(exit(&d.backfill.exits, "bf_max_job_test"), Some(2));
        assert_eq!(d.backfill.mean_table_size, None);
    }

    #[test]
    fn rest_v0_0_41_and_later_fixtures_parse() {
        for (name, bytes) in [
            ("v0.0.41", V41),
            ("v0.0.42", V42),
            ("v0.0.43", V43),
            ("v0.0.44", V44),
        ] {
            let d = parse_diag_json(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(d.server_thread_count, Some(4), "{name}");
            assert_eq!(d.report_epoch, Some(1_795_870_000), "{name}");
            assert_eq!(d.main.cycle_sum_seconds, Some(0.027), "{name}");
            assert_eq!(d.main.depth_sum, Some(540), "{name}");
            assert_eq!(d.backfill.max_cycle_seconds, Some(0.0041), "{name}");
            assert_eq!(d.backfill.mean_table_size, Some(4), "{name}: 160 / 40");
            assert_eq!(d.backfill.mean_queue_length, Some(10), "{name}");
            assert_eq!(exit(&d.backfill.exits, "end_job_queue"), Some(35), "{name}");
            let submit = rpc(&d, "REQUEST_SUBMIT_BATCH_JOB");
            assert_eq!(submit.count, 40, "{name}");
            assert_eq!(submit.average_time_seconds, Some(0.000985), "{name}");
            assert_eq!(
                user(&d, "alice").average_time_seconds,
                Some(0.000366),
                "{name}"
            );
            assert_eq!(d.pending_rpcs.len(), 1, "{name}");
            assert_eq!(d.pending_rpcs[0].message_type, "REQUEST_TERMINATE_JOB");
            assert_eq!(d.pending_rpcs[0].count, 2);
        }
        let d = parse_diag_json(V44).expect("fixture parses");
        let submit = rpc(&d, "REQUEST_SUBMIT_BATCH_JOB");
        assert_eq!(
            (
                submit.queued,
                submit.dropped,
                submit.cycle_last,
                submit.cycle_max
            ),
            (Some(3), Some(1), Some(4), Some(9))
        );
    }

    #[test]
    fn newer_sdiag_text_matches_the_rest_document_of_the_same_moment() {
        let mut text = parse_sdiag_text(SDIAG_25_05).expect("sdiag parses");
        assert_eq!(text.rpc_queue_enabled, Some(true));
        assert_eq!(exit(&text.main.exits, "licenses"), Some(0));
        assert_eq!(exit(&text.backfill.exits, "bf_node_space_size"), Some(0));
        let mut json = parse_diag_json(V43).expect("json parses");
        // What only one side reports.
        text.rpc_queue_enabled = None;
        json.main.cycle_sum_seconds = None;
        json.main.depth_sum = None;
        json.backfill.cycle_sum_seconds = None;
        json.backfill.depth_sum = None;
        json.backfill.depth_try_sum = None;
        assert_eq!(text, json);
    }

    #[test]
    fn numbers_as_strings_null_and_sentinels_are_tolerated() {
        let doc = br#"{"statistics":{"server_thread_count":"5","jobs_submitted":null,
            "agent_count":4294967294,"bf_active":"true","req_time":{"set":false,"number":9},
            "schedule_exit":{"end_job_queue":"7","Bad Key":1,"licenses":[1]},
            "rpcs_by_message_type":[{"message_type":"X","count":"3","total_time":"9"},
                {"type_id":77,"count":1},{"count":2},"junk"],
            "rpcs_by_user":{"not":"a list"}}}"#;
        let d = parse_diag_json(doc).expect("tolerated");
        assert_eq!(d.server_thread_count, Some(5));
        assert_eq!(d.jobs_submitted, None);
        assert_eq!(d.agent_count, None, "NO_VAL is no value");
        assert_eq!(d.backfill.active, Some(true));
        assert_eq!(d.report_epoch, None);
        assert_eq!(d.main.exits, vec![("end_job_queue".to_owned(), 7)]);
        assert_eq!(
            d.rpcs_by_type.len(),
            2,
            "nameless, idless and non-object items dropped"
        );
        assert_eq!(rpc(&d, "X").count, 3);
        assert_eq!(rpc(&d, "X").total_time_seconds, 0.000009);
        assert_eq!(rpc(&d, "77").count, 1);
        assert!(d.rpcs_by_user.is_empty());
    }

    #[test]
    fn hostile_json_is_an_error_never_a_panic() {
        for bad in [
            &b""[..],
            b"<html><body>502 Bad Gateway</body></html>",
            b"null",
            b"[1,2]",
            b"{}",
            br#"{"statistics":null}"#,
            br#"{"statistics":[1]}"#,
        ] {
            assert!(
                parse_diag_json(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let err = parse_diag_json(
            br#"{"meta":{},"errors":[{"error":"x","description":"Unable to contact slurmctld"}]}"#,
        )
        .expect_err("no statistics");
        assert_eq!(err, ParseError::Slurm("Unable to contact slurmctld".into()));
        // Truncations of a real document fail cleanly (a stride keeps debug runs short: each
        // parse sets up a 1 MiB window).
        for cut in (0..V38.len() - 1)
            .step_by(37)
            .chain(V38.len() - 8..V38.len() - 1)
        {
            assert!(parse_diag_json(&V38[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn exit_reasons_are_capped() {
        let keys: Vec<String> = (0..200).map(|i| format!("\"r{i}\":{i}")).collect();
        let doc = format!("{{\"statistics\":{{\"bf_exit\":{{{}}}}}}}", keys.join(","));
        let d = parse_diag_json(doc.as_bytes()).expect("parses");
        assert_eq!(d.backfill.exits.len(), MAX_EXIT_REASONS);
    }

    #[test]
    fn text_that_is_not_sdiag_is_an_error() {
        for bad in [
            "",
            "\n\n",
            "<html><body>502 Bad Gateway</body></html>",
            std::str::from_utf8(V38).unwrap_or(""),
            "sdiag: error: slurm_get_statistics: Unable to contact slurm controller",
        ] {
            assert!(parse_sdiag_text(bad).is_err(), "{bad:?}");
        }
        let err = parse_sdiag_text("No data available. Probably slurmctld is not working\n")
            .expect_err("no data");
        assert!(matches!(err, ParseError::Line { line: 1, .. }), "{err}");
    }

    #[test]
    fn sdiag_errors_name_the_line() {
        let text = SDIAG_22_05.replace("Agent count:          1", "Agent count:          one");
        let err = parse_sdiag_text(&text).expect_err("bad number");
        assert!(matches!(err, ParseError::Line { line: 7, .. }), "{err}");
        let text = SDIAG_22_05.replace(
            "REQUEST_PING                            ( 1008) count:8",
            "REQUEST_PING                            ( 1008) count:eight",
        );
        let err = parse_sdiag_text(&text).expect_err("bad RPC record");
        assert!(err.to_string().contains("REQUEST_PING"), "{err}");
    }

    #[test]
    fn sdiag_tolerates_harmless_oddities() {
        let expected = parse_sdiag_text(SDIAG_22_05).expect("capture");
        // CRLF line ends, tabs lost, an unknown line in a block, a user named "No".
        let crlf = SDIAG_22_05.replace('\n', "\r\n");
        assert_eq!(parse_sdiag_text(&crlf).expect("crlf"), expected);
        let untabbed = SDIAG_22_05.replace('\t', "");
        assert_eq!(parse_sdiag_text(&untabbed).expect("no tabs"), expected);
        let extra = SDIAG_22_05.replace(
            "\tLast table size: 4\n",
            "\tLast table size: 4\n\tSome future statistic: 9\n",
        );
        assert_eq!(parse_sdiag_text(&extra).expect("extra line"), expected);
        let no_user = SDIAG_22_05.replace("\tdave            (", "\tNo              (");
        let d = parse_sdiag_text(&no_user).expect("user No");
        assert_eq!(user(&d, "No").count, 4);
        // A backfill cycle running while sdiag ran.
        let active = SDIAG_22_05.replace(
            "Backfilling stats\n",
            "Backfilling stats (WARNING: data obtained in the middle of backfilling execution.)\n",
        );
        assert_eq!(
            parse_sdiag_text(&active).expect("active").backfill.active,
            Some(true)
        );
        // Every truncation parses or fails cleanly.
        for (i, _) in SDIAG_22_05.char_indices() {
            let _ = parse_sdiag_text(&SDIAG_22_05[..i]);
        }
    }

    #[test]
    fn unknown_exit_reasons_keep_a_stable_label() {
        let text = SDIAG_25_05.replace("Hit max_rpc_cnt: 1", "Hit some new limit (foo): 4");
        let d = parse_sdiag_text(&text).expect("parses");
        assert_eq!(exit(&d.main.exits, "hit_some_new_limit_foo"), Some(4));
        assert_eq!(exit(&d.main.exits, "max_rpc_cnt"), None);
    }
}
