//! Partition records: `/slurm/vX/partitions` (flat in v0.0.36–39, nested objects from
//! v0.0.40 on) and `scontrol show partitions -o` text for the CLI source. There are tens of
//! partitions, not thousands, so these are read whole and looked up by path.

use super::doc::{small_document, Envelope};
use super::hostlist::expand;
use super::text::kv_lines;
use super::ParseError;
use crate::model::{Interner, Partition};
use serde_json::Value;

/// The first path that holds a value; paths are `/`-separated keys.
fn at<'v>(v: &'v Value, paths: &[&str]) -> Option<&'v Value> {
    paths.iter().find_map(|p| {
        p.split('/')
            .try_fold(v, |cur, k| cur.get(k))
            .filter(|x| !x.is_null())
    })
}

fn num(v: &Value, paths: &[&str]) -> Option<u64> {
    let x = at(v, paths)?;
    let f: super::flex::Flex = serde_json::from_value(x.clone()).ok()?;
    f.u64()
}

fn text(v: &Value, paths: &[&str]) -> String {
    match at(v, paths) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

fn flags(v: &Value, paths: &[&str]) -> Vec<String> {
    match at(v, paths) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect(),
        _ => Vec::new(),
    }
}

fn from_value(p: &Value, names: &mut Interner) -> Result<Partition, String> {
    let name = text(p, &["name"]);
    let node_list = text(p, &["nodes/configured", "nodes"]);
    let nodes = expand(&node_list).map_err(|e| format!("partition {name:?}: {e}"))?;
    let state = text(p, &["partition/state", "state"]).to_ascii_lowercase();
    let is_default = flags(p, &["flags", "partition/flags"])
        .iter()
        .any(|f| f == "default");
    let minutes = |paths: &[&str]| num(p, paths).map(|m| m.saturating_mul(60));
    Ok(Partition {
        name: names.intern(&name),
        state: names.intern(if state.is_empty() { "unknown" } else { &state }),
        is_default,
        total_cpus: num(p, &["cpus/total", "total_cpus"]).unwrap_or(0),
        total_nodes: num(p, &["nodes/total", "total_nodes"]).unwrap_or(nodes.len() as u64),
        nodes: nodes.iter().map(|n| names.intern(n)).collect(),
        max_time_seconds: minutes(&["maximums/time", "max_time_limit", "max_time"]),
        default_time_seconds: minutes(&["defaults/time", "default_time_limit"]),
        priority_tier: num(p, &["priority/tier", "priority_tier"]),
        max_nodes_per_job: num(p, &["maximums/nodes", "maximum_nodes_per_job"]),
    })
}

/// Parses a partitions document.
pub fn parse_partitions(
    bytes: &[u8],
    names: &mut Interner,
) -> Result<(Envelope, Vec<Partition>), ParseError> {
    let (env, v) = small_document(bytes)?;
    let Some(list) = v.get("partitions") else {
        return Err(if env.errors.is_empty() {
            ParseError::Missing("partitions")
        } else {
            ParseError::Slurm(env.errors.join("; "))
        });
    };
    let mut out = Vec::new();
    for p in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        let part = from_value(p, names).map_err(|msg| ParseError::Syntax { offset: 0, msg })?;
        if !part.name.is_empty() {
            out.push(part);
        }
    }
    Ok((env, out))
}

/// Parses `scontrol show partitions -o` (one `Key=Value ...` line per partition).
pub fn parse_partitions_text(
    text_in: &str,
    names: &mut Interner,
) -> Result<Vec<Partition>, ParseError> {
    let mut out = Vec::new();
    for (line, kv) in kv_lines(text_in) {
        let get = |k: &str| {
            kv.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| *v)
                .unwrap_or("")
        };
        let name = get("PartitionName");
        if name.is_empty() {
            return Err(ParseError::Line {
                line,
                msg: "no PartitionName= in a partition line".into(),
            });
        }
        let node_list = get("Nodes");
        let nodes = expand(if node_list == "(null)" { "" } else { node_list })
            .map_err(|msg| ParseError::Line { line, msg })?;
        let n = |k: &str| get(k).parse::<u64>().ok();
        out.push(Partition {
            name: names.intern(name),
            state: names.intern(&get("State").to_ascii_lowercase()),
            is_default: get("Default") == "YES",
            total_cpus: n("TotalCPUs").unwrap_or(0),
            total_nodes: n("TotalNodes").unwrap_or(nodes.len() as u64),
            nodes: nodes.iter().map(|x| names.intern(x)).collect(),
            max_time_seconds: super::text::duration_seconds(get("MaxTime")),
            default_time_seconds: super::text::duration_seconds(get("DefaultTime")),
            priority_tier: n("PriorityTier"),
            max_nodes_per_job: n("MaxNodes"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_capture() {
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_partitions.json");
        let (_, parts) = parse_partitions(bytes, &mut Interner::default()).expect("parses");
        let cpu = parts
            .iter()
            .find(|p| &*p.name == "cpu")
            .expect("cpu partition");
        assert!(cpu.is_default);
        assert_eq!(cpu.nodes.len(), 10);
        assert_eq!(cpu.total_cpus, 320);
        assert_eq!(&*cpu.state, "up");
        assert_eq!(cpu.max_time_seconds, Some(3 * 24 * 3600));
    }

    #[test]
    fn scontrol_text_matches_json() {
        let text_in = include_str!("../../testdata/cli/22.05.8/scontrol.show-partitions.txt");
        let parts = parse_partitions_text(text_in, &mut Interner::default()).expect("parses");
        let names: Vec<&str> = parts.iter().map(|p| &*p.name).collect();
        assert_eq!(names, ["cpu", "gpu", "himem", "debug"]);
        assert_eq!(parts[0].nodes.len(), 10);
        assert!(parts[0].is_default);
        assert_eq!(parts[3].max_time_seconds, Some(1800));
    }

    #[test]
    fn v0_0_41_nested_shape() {
        let doc = br#"{"partitions":[{"name":"p","nodes":{"configured":"n[1-4]","total":4},
            "cpus":{"total":16},"partition":{"state":["UP"]},"flags":["DEFAULT"],
            "maximums":{"time":{"set":true,"infinite":false,"number":60}}}]}"#;
        let (_, parts) = parse_partitions(doc, &mut Interner::default()).expect("parses");
        assert_eq!(parts[0].nodes.len(), 4);
        assert_eq!(parts[0].total_cpus, 16);
        assert_eq!(&*parts[0].state, "up");
        assert!(parts[0].is_default);
        assert_eq!(parts[0].max_time_seconds, Some(3600));
    }

    #[test]
    fn hostile_host_list_is_an_error_naming_the_partition() {
        let doc = br#"{"partitions":[{"name":"evil","nodes":"n[0-99999999999]"}]}"#;
        let err = parse_partitions(doc, &mut Interner::default()).expect_err("refused");
        assert!(err.to_string().contains("evil"), "{err}");
    }
}
