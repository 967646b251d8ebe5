//! Node records: `/slurm/vX/nodes` and `sinfo --json`, every version from v0.0.36 on.
//!
//! v0.0.36–38 give `state: "idle"` plus `state_flags: ["DRAIN"]`; v0.0.39+ give
//! `state: ["IDLE","DRAIN"]`. Both fold into one base state and a flag set. Memory is MiB in
//! Slurm and bytes here; `cpu_load` is load x 100.
//!
//! `sinfo --json` wrote a `nodes` array up to 22.05. From 23.02 on (data_parser v0.0.39+) it
//! writes `sinfo`: one record per group of nodes that share a partition, a state and their
//! GRES in use (`src/sinfo/opts.c` adds `MATCH_FLAG_GRES_USED` for `--json`), with the
//! group's host names in `nodes.nodes`, per-node bounds (`cpus.maximum`, `memory.maximum`)
//! and group totals (`cpus.allocated`, `memory.allocated`). A group expands into one node
//! per host; totals are shared evenly among its hosts, so cluster and partition sums are
//! exact while one node of a multi-node group may be off (`sinfo --Node --json` gives
//! one-node groups). A node listed in several partitions is one node with all of them.

use super::doc::{stream_arrays, Envelope};
use super::flex::{Flex, FlexStr, Lenient, StrList};
use super::hostlist::{expand, parse_gres, Gres};
use super::stream::{parse_one, Parsed};
use super::ParseError;
use crate::model::{GpuTypeCount, Interner, Job, Node, NodeBaseState, NodeFlags};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;

const MIB: u64 = 1 << 20;

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodeRecord<'a> {
    #[serde(borrow)]
    name: FlexStr<'a>,
    #[serde(borrow)]
    state: StrList<'a>,
    #[serde(borrow)]
    state_flags: StrList<'a>,
    cpus: Flex,
    alloc_cpus: Flex,
    real_memory: Flex,
    alloc_memory: Flex,
    #[serde(alias = "free_mem")]
    free_memory: Flex,
    cpu_load: Flex,
    #[serde(borrow)]
    gres: FlexStr<'a>,
    #[serde(borrow)]
    gres_used: FlexStr<'a>,
    #[serde(borrow)]
    partitions: StrList<'a>,
    #[serde(borrow)]
    reason: FlexStr<'a>,
    #[serde(borrow)]
    features: FlexStr<'a>,
    #[serde(borrow)]
    architecture: FlexStr<'a>,
    #[serde(borrow, alias = "version")]
    slurmd_version: FlexStr<'a>,
    weight: Flex,
    boot_time: Flex,
    last_busy: Flex,
}

/// A node's GPUs by type from its `gres` (totals) and `gres_used` (allocations), and the
/// node totals they sum to. Allocations Slurm writes without a type, or with a type the
/// totals lack, fill the node's types in order; no type is allocated beyond its total.
pub fn gpu_types(gres: &Gres, used: &Gres, names: &mut Interner) -> (Vec<GpuTypeCount>, u64, u64) {
    let mut out: Vec<GpuTypeCount> = gres
        .by_type
        .iter()
        .map(|(ty, total)| GpuTypeCount {
            gpu_type: names.intern(ty),
            total: *total,
            alloc: used.of(ty).min(*total),
        })
        .collect();
    let mut pool: u64 = used
        .by_type
        .iter()
        .filter(|(ty, _)| gres.by_type.iter().all(|(t, _)| t != ty))
        .map(|(_, n)| *n)
        .sum();
    for t in &mut out {
        let take = pool.min(t.total - t.alloc);
        t.alloc += take;
        pool -= take;
    }
    let total = out.iter().map(|t| t.total).sum();
    let alloc = out.iter().map(|t| t.alloc).sum();
    (out, total, alloc)
}

/// Allocated CPUs of MIXED nodes whose record does not say (OpenAPI v0.0.36 has no
/// `alloc_cpus`): each job holding resources shares its CPUs evenly over its nodes. A MIXED
/// node has some CPUs allocated by definition, so `alloc_cpus == 0` marks an unknown count;
/// ALLOCATED nodes without the field are taken as fully allocated when parsed.
pub fn fill_alloc_from_jobs(nodes: &mut [Node], jobs: &[Job]) {
    let unknown: HashMap<crate::model::Name, usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.base == NodeBaseState::Mixed && n.alloc_cpus == 0)
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    if unknown.is_empty() {
        return;
    }
    for j in jobs.iter().filter(|j| j.state.holds_resources()) {
        let hosts = expand(&j.node_list).unwrap_or_default();
        let n = hosts.len() as u64;
        for (i, h) in hosts.iter().enumerate() {
            if let Some(&k) = unknown.get(h.as_str()) {
                let node = &mut nodes[k];
                node.alloc_cpus = node
                    .alloc_cpus
                    .saturating_add(share(j.cpus, n, i as u64))
                    .min(node.cpus);
            }
        }
    }
}

fn convert(r: NodeRecord<'_>, names: &mut Interner) -> Node {
    let mut base = None;
    let mut flags = NodeFlags::default();
    for tok in r.state.iter().chain(r.state_flags.iter()) {
        // Old CLI text spells states with suffixes (`idle~`, `down*`); JSON does not.
        if let Some(b) = NodeBaseState::from_token(tok) {
            base.get_or_insert(b);
        } else if let Some(f) = NodeFlags::from_token(tok) {
            flags.insert(f);
        }
    }
    let gres = parse_gres(r.gres.as_str());
    let used = parse_gres(r.gres_used.as_str());
    let (gpu_types, gpus_total, gpus_alloc) = gpu_types(&gres, &used, names);
    let epoch = |f: Flex| f.u64().filter(|&t| t > 0);
    let base = base.unwrap_or(NodeBaseState::Unknown);
    let cpus = r.cpus.u64().unwrap_or(0);
    // v0.0.36 has no `alloc_cpus`: an ALLOCATED node is full; MIXED ones are filled from
    // the jobs by `fill_alloc_from_jobs`.
    let alloc_cpus = r
        .alloc_cpus
        .u64()
        .unwrap_or(if base == NodeBaseState::Allocated {
            cpus
        } else {
            0
        });
    Node {
        name: names.intern(r.name.as_str()),
        base,
        flags,
        cpus,
        alloc_cpus,
        real_memory_bytes: r.real_memory.u64().unwrap_or(0).saturating_mul(MIB),
        alloc_memory_bytes: r.alloc_memory.u64().unwrap_or(0).saturating_mul(MIB),
        free_memory_bytes: r.free_memory.u64().map(|m| m.saturating_mul(MIB)),
        cpu_load: r.cpu_load.u64().map(|l| l as f64 / 100.0),
        gpus_total,
        gpus_alloc,
        gpu_type: names.intern(&gres.gpu_type),
        gpu_types,
        partitions: r.partitions.iter().map(|p| names.intern(p)).collect(),
        reason: names.intern(r.reason.as_str()),
        features: names.intern(r.features.as_str()),
        arch: names.intern(r.architecture.as_str()),
        slurmd_version: names.intern(r.slurmd_version.as_str()),
        weight: r.weight.u64().unwrap_or(0),
        boot_time_epoch: epoch(r.boot_time),
        last_busy_epoch: epoch(r.last_busy),
    }
}

/// Parses one node object from the front of `bytes`.
pub fn parse_node(bytes: &[u8], names: &mut Interner) -> Parsed<Node> {
    parse_one::<NodeRecord>(bytes).map(|o| o.map(|(r, n)| (convert(r, names), n)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SinfoState<'a> {
    #[serde(borrow)]
    state: StrList<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SinfoHosts<'a> {
    #[serde(borrow)]
    nodes: StrList<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Bounds {
    minimum: Flex,
    maximum: Flex,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SinfoCpus {
    allocated: Flex,
    total: Flex,
    maximum: Flex,
    load: Lenient<Bounds>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SinfoMemory {
    maximum: Flex,
    allocated: Flex,
    free: Lenient<Bounds>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TotalUsed<'a> {
    #[serde(borrow)]
    total: FlexStr<'a>,
    #[serde(borrow)]
    used: FlexStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Described<'a> {
    #[serde(borrow)]
    description: FlexStr<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named<'a> {
    #[serde(borrow)]
    name: FlexStr<'a>,
}

/// One record of `sinfo --json` (data_parser v0.0.39+): a group of nodes.
#[derive(Deserialize, Default)]
#[serde(default)]
struct SinfoRecord<'a> {
    #[serde(borrow)]
    node: Lenient<SinfoState<'a>>,
    #[serde(borrow)]
    nodes: Lenient<SinfoHosts<'a>>,
    cpus: Lenient<SinfoCpus>,
    memory: Lenient<SinfoMemory>,
    #[serde(borrow)]
    gres: Lenient<TotalUsed<'a>>,
    #[serde(borrow)]
    features: Lenient<TotalUsed<'a>>,
    #[serde(borrow)]
    reason: Lenient<Described<'a>>,
    weight: Lenient<Bounds>,
    #[serde(borrow)]
    partition: Lenient<Named<'a>>,
}

/// `total` shared among `n` hosts: host `i` gets its even share, the first hosts the rest.
fn share(total: u64, n: u64, i: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    total / n + u64::from(i < total % n)
}

fn expand_group(r: SinfoRecord<'_>, names: &mut Interner) -> Vec<Node> {
    let hosts: Vec<&str> = r.nodes.0.nodes.iter().collect();
    let n = hosts.len() as u64;
    let cpus = &r.cpus.0;
    let mem = &r.memory.0;
    let per_node_cpus = cpus
        .maximum
        .u64()
        .or_else(|| cpus.total.u64().map(|t| t / n.max(1)))
        .unwrap_or(0);
    let alloc_cpus = cpus.allocated.u64().unwrap_or(0);
    let alloc_mem = mem.allocated.u64().unwrap_or(0);
    // Per-node bounds of a group: the lower one is exact for one-node groups and never
    // overstates what a node has.
    let free = mem.free.0.minimum.u64();
    let load = cpus.load.0.minimum.u64();
    let mut base = None;
    let mut flags = NodeFlags::default();
    for tok in r.node.0.state.iter() {
        if let Some(b) = NodeBaseState::from_token(tok) {
            base.get_or_insert(b);
        } else if let Some(f) = NodeFlags::from_token(tok) {
            flags.insert(f);
        }
    }
    let gres = parse_gres(r.gres.0.total.as_str());
    let used = parse_gres(r.gres.0.used.as_str());
    // A group shares its GRES string: every host has the group's types and use.
    let (gpu_types, gpus_total, gpus_alloc) = gpu_types(&gres, &used, names);
    let partition = r.partition.0.name.as_str();
    let partitions: Vec<_> = if partition.is_empty() {
        Vec::new()
    } else {
        vec![names.intern(partition)]
    };
    let reason = names.intern(r.reason.0.description.as_str());
    let features = names.intern(r.features.0.total.as_str());
    let gpu_type = names.intern(&gres.gpu_type);
    let empty = names.intern("");
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| Node {
            name: names.intern(host),
            base: base.unwrap_or(NodeBaseState::Unknown),
            flags,
            cpus: per_node_cpus,
            alloc_cpus: share(alloc_cpus, n, i as u64),
            real_memory_bytes: mem.maximum.u64().unwrap_or(0).saturating_mul(MIB),
            alloc_memory_bytes: share(alloc_mem, n, i as u64).saturating_mul(MIB),
            free_memory_bytes: free.map(|m| m.saturating_mul(MIB)),
            cpu_load: load.map(|l| l as f64 / 100.0),
            gpus_total,
            gpus_alloc,
            gpu_type: gpu_type.clone(),
            gpu_types: gpu_types.clone(),
            partitions: partitions.clone(),
            reason: reason.clone(),
            features: features.clone(),
            arch: empty.clone(),
            slurmd_version: empty.clone(),
            weight: r.weight.0.minimum.u64().unwrap_or(0),
            boot_time_epoch: None,
            last_busy_epoch: None,
        })
        .collect()
}

/// Parses one `sinfo --json` group record from the front of `bytes` into its nodes.
pub fn parse_sinfo_group(bytes: &[u8], names: &mut Interner) -> Parsed<Vec<Node>> {
    parse_one::<SinfoRecord>(bytes).map(|o| o.map(|(r, n)| (expand_group(r, names), n)))
}

/// Streams a nodes document (`/nodes`, or `sinfo --json` of any release). Records without a
/// name are dropped (they cannot be labelled); a name seen again adds its partitions to the
/// first record of it.
pub fn parse_nodes<R: Read>(
    src: R,
    names: &mut Interner,
) -> Result<(Envelope, Vec<Node>), ParseError> {
    let mut out: Vec<Node> = Vec::new();
    let mut index: HashMap<crate::model::Name, usize> = HashMap::new();
    let env = stream_arrays(
        src,
        &["nodes", "sinfo"],
        |key, b| {
            if key == "sinfo" {
                parse_sinfo_group(b, names)
            } else {
                parse_node(b, names).map(|o| o.map(|(node, used)| (vec![node], used)))
            }
        },
        |group: Vec<Node>| {
            for node in group {
                if node.name.is_empty() {
                    continue;
                }
                match index.get(&node.name) {
                    Some(&i) => {
                        let seen = &mut out[i].partitions;
                        for p in node.partitions {
                            if !seen.contains(&p) {
                                seen.push(p);
                            }
                        }
                    }
                    None => {
                        index.insert(node.name.clone(), out.len());
                        out.push(node);
                    }
                }
            }
        },
    )?;
    Ok((env, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_capture_states_and_units() {
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_nodes.json");
        let (env, nodes) =
            parse_nodes(&bytes[..], &mut Interner::default()).expect("capture parses");
        assert_eq!(env.meta.release, "22.05.8");
        assert_eq!(nodes.len(), 16);
        let by = |n: &str| nodes.iter().find(|x| &*x.name == n).expect("node present");
        let cpu06 = by("cpu-06");
        assert_eq!(cpu06.base, NodeBaseState::Allocated);
        assert!(cpu06.flags.contains(NodeFlags::DRAIN));
        let cpu09 = by("cpu-09");
        assert_eq!(cpu09.base, NodeBaseState::Down);
        assert!(cpu09.flags.contains(NodeFlags::NOT_RESPONDING));
        assert_eq!(cpu09.cpu_load, None, "4294967294 placeholder is not a load");
        assert_eq!(cpu09.free_memory_bytes, None, "-2 is not a memory size");
        let cpus = cpu09.cpu_split();
        assert_eq!((cpus.allocated, cpus.idle, cpus.other), (0, 0, 32));
        let gpu01 = by("gpu-01");
        assert_eq!((gpu01.gpus_total, gpu01.gpus_alloc), (4, 2));
        assert_eq!(&*gpu01.gpu_type, "a100");
        assert_eq!(gpu01.real_memory_bytes, 512_000 * MIB);
        assert!(by("gpu-04").flags.contains(NodeFlags::PLANNED));
        assert_eq!(by("cpu-01").partitions.len(), 2);
    }

    #[test]
    fn v0_0_40_state_arrays_and_number_objects() {
        let doc = br#"{"nodes":[{"name":"n1","state":["IDLE","DRAIN"],"cpus":8,"alloc_cpus":0,
            "real_memory":1024,"free_mem":{"set":true,"infinite":false,"number":512},
            "cpu_load":150,"partitions":["p"],"features":["a","b"],"version":"24.05.4"}]}"#;
        let (_, nodes) = parse_nodes(&doc[..], &mut Interner::default()).expect("parses");
        let n = &nodes[0];
        assert_eq!(n.base, NodeBaseState::Idle);
        assert!(n.flags.contains(NodeFlags::DRAIN));
        assert_eq!(n.free_memory_bytes, Some(512 * MIB));
        assert_eq!(n.cpu_load, Some(1.5));
        assert_eq!(&*n.features, "a,b");
        assert_eq!(&*n.slurmd_version, "24.05.4");
        assert!(!n.is_schedulable());
    }

    #[test]
    fn hostile_fields_do_not_fail_the_document() {
        let doc = br#"{"nodes":[{"name":"n1","state":7,"cpus":"many","real_memory":null,
            "partitions":"p1,p2","gres":{"x":1}},{"state":"idle"}]}"#;
        let (_, nodes) = parse_nodes(&doc[..], &mut Interner::default()).expect("parses");
        assert_eq!(nodes.len(), 1, "a node without a name is dropped");
        assert_eq!(nodes[0].base, NodeBaseState::Unknown);
        assert_eq!(nodes[0].cpus, 0);
        assert_eq!(nodes[0].partitions.len(), 2);
    }

    #[test]
    fn sinfo_groups_expand_to_nodes_with_all_their_partitions() {
        // sinfo --json of 23.02 (data_parser v0.0.39): `sinfo` groups, not `nodes`.
        let bytes = include_bytes!("../../testdata/cli/23.02.7/sinfo.json");
        let (env, nodes) = parse_nodes(&bytes[..], &mut Interner::default()).expect("parses");
        assert_eq!(env.meta.release, "23.02.7");
        assert_eq!(env.meta.plugin, "data_parser/v0.0.39");
        assert_eq!(nodes.len(), 16);
        let by = |n: &str| nodes.iter().find(|x| &*x.name == n).expect("node present");
        let parts: Vec<&str> = by("cpu-01").partitions.iter().map(|p| &**p).collect();
        assert_eq!(parts, ["cpu", "debug"]);
        assert_eq!(by("cpu-06").base, NodeBaseState::Allocated);
        assert!(by("cpu-06").flags.contains(NodeFlags::DRAIN));
        assert_eq!(by("cpu-04").alloc_cpus, 19, "a one-node group is exact");
        assert_eq!((by("gpu-01").gpus_total, by("gpu-01").gpus_alloc), (4, 2));
        assert_eq!(by("cpu-09").free_memory_bytes, None);
        let alloc: u64 = nodes.iter().map(|n| n.alloc_cpus).sum();
        assert_eq!(alloc, 307, "group totals are shared, never lost");
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;

        fn gres() -> impl Strategy<Value = String> {
            let entry = (
                prop_oneof![
                    Just(""),
                    Just("(null)"),
                    Just("a100"),
                    Just("h100"),
                    Just("1g.5gb")
                ],
                0u64..9,
                prop_oneof![
                    Just(""),
                    Just("(S:0-1)"),
                    Just("(IDX:0-3)"),
                    Just("(IDX:N/A)")
                ],
            )
                .prop_map(|(t, n, a)| {
                    if t.is_empty() {
                        format!("gpu:{n}{a}")
                    } else {
                        format!("gpu:{t}:{n}{a}")
                    }
                });
            let other = prop_oneof![Just("shard:8".to_owned()), Just("mps:100".to_owned())];
            proptest::collection::vec(prop_oneof![3 => entry, 1 => other], 0..5)
                .prop_map(|v| v.join(","))
        }

        proptest! {
            /// Whatever `gres` and `gres_used` say, per-type counts sum to the node's, no type
            /// is allocated beyond its total, and the per-type splits sum to the node split.
            #[test]
            fn per_type_gpus_sum_to_the_node(total in gres(), used in gres(), drained in any::<bool>()) {
                let mut names = Interner::default();
                let (types, t, a) = gpu_types(&parse_gres(&total), &parse_gres(&used), &mut names);
                prop_assert_eq!(t, types.iter().map(|x| x.total).sum::<u64>());
                prop_assert_eq!(a, types.iter().map(|x| x.alloc).sum::<u64>());
                prop_assert!(types.iter().all(|x| x.alloc <= x.total));
                prop_assert_eq!(t, parse_gres(&total).gpus);
                let state = if drained { r#"["IDLE","DRAIN"]"# } else { r#"["MIXED"]"# };
                let doc = format!(
                    r#"{{"nodes":[{{"name":"n","state":{state},"gres":{total:?},"gres_used":{used:?}}}]}}"#
                );
                let (_, nodes) = parse_nodes(doc.as_bytes(), &mut names).expect("parses");
                let n = &nodes[0];
                let mut sum = crate::model::Split::default();
                for (_, split) in n.gpu_type_splits() {
                    sum.add(split);
                }
                prop_assert_eq!(sum, n.gpu_split());
                prop_assert_eq!(n.gpu_split().total(), n.gpus_total);
            }
        }
    }

    #[test]
    fn odd_sinfo_groups_are_neutral_not_fatal() {
        let doc =
            br#"{"sinfo":[{"nodes":{"nodes":["a","b","c"]},"cpus":{"allocated":4,"maximum":2},
            "node":{"state":"MIXED"},"memory":7,"partition":"p"},{"nodes":"x"},{}]}"#;
        let (_, nodes) = parse_nodes(&doc[..], &mut Interner::default()).expect("parses");
        let alloc: Vec<u64> = nodes.iter().map(|n| n.alloc_cpus).collect();
        assert_eq!(alloc, [2, 1, 1]);
        assert_eq!(nodes[0].base, NodeBaseState::Mixed);
        assert_eq!(nodes[0].real_memory_bytes, 0);
        assert!(nodes[0].partitions.is_empty());
    }
}
