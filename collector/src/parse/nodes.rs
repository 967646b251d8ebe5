//! Node records: `/slurm/vX/nodes` and `sinfo --json`, every version from v0.0.36 on.
//!
//! v0.0.36–38 give `state: "idle"` plus `state_flags: ["DRAIN"]`; v0.0.39+ give
//! `state: ["IDLE","DRAIN"]`. Both fold into one base state and a flag set. Memory is MiB in
//! Slurm and bytes here; `cpu_load` is load x 100.

use super::doc::{stream_array, Envelope};
use super::flex::{Flex, FlexStr, StrList};
use super::hostlist::parse_gres;
use super::stream::{parse_one, Parsed};
use super::ParseError;
use crate::model::{Interner, Node, NodeBaseState, NodeFlags};
use serde::Deserialize;
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
    let epoch = |f: Flex| f.u64().filter(|&t| t > 0);
    Node {
        name: names.intern(r.name.as_str()),
        base: base.unwrap_or(NodeBaseState::Unknown),
        flags,
        cpus: r.cpus.u64().unwrap_or(0),
        alloc_cpus: r.alloc_cpus.u64().unwrap_or(0),
        real_memory_bytes: r.real_memory.u64().unwrap_or(0).saturating_mul(MIB),
        alloc_memory_bytes: r.alloc_memory.u64().unwrap_or(0).saturating_mul(MIB),
        free_memory_bytes: r.free_memory.u64().map(|m| m.saturating_mul(MIB)),
        cpu_load: r.cpu_load.u64().map(|l| l as f64 / 100.0),
        gpus_total: gres.gpus,
        gpus_alloc: used.gpus.min(gres.gpus.max(used.gpus)),
        gpu_type: names.intern(&gres.gpu_type),
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

/// Streams a nodes document. Records without a name are dropped (they cannot be labelled).
pub fn parse_nodes<R: Read>(
    src: R,
    names: &mut Interner,
) -> Result<(Envelope, Vec<Node>), ParseError> {
    let mut out = Vec::new();
    let env = stream_array(
        src,
        "nodes",
        |b| parse_node(b, names),
        |n: Node| {
            if !n.name.is_empty() {
                out.push(n)
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
}
