//! What the exporter must report, computed from the model rather than the JSON.

use crate::catalogue::FLAG_NAMES;
use crate::model::SimCluster;
use std::collections::BTreeMap;

/// What the exporter must report for a [`SimCluster`]; computed from the model, not the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimTruth {
    /// Base state (`idle`, `mixed`, `allocated`, `down`, `future`, `unknown`) -> nodes.
    pub nodes_by_state: BTreeMap<String, u64>,
    /// Lowercase flag (`drain`, `not_responding`, ...) -> nodes having it.
    pub node_flags: BTreeMap<String, u64>,
    pub cpus_total: u64,
    pub cpus_allocated: u64,
    /// Lowercase job state -> jobs; a pending array meta-record counts as its remaining tasks.
    pub jobs_by_state: BTreeMap<String, u64>,
    pub gpus_total: u64,
    pub gpus_allocated: u64,
}

impl SimCluster {
    /// Ground truth the tests compare the exporter against.
    pub fn truth(&self) -> SimTruth {
        let mut t = SimTruth::default();
        for n in &self.nodes {
            *t.nodes_by_state
                .entry(n.base.as_str().to_string())
                .or_default() += 1;
            for (bit, _, label) in FLAG_NAMES {
                if n.flags & bit != 0 {
                    *t.node_flags.entry(label.to_string()).or_default() += 1;
                }
            }
            t.cpus_total += u64::from(n.cpus());
            t.cpus_allocated += u64::from(n.alloc_cpus);
            t.gpus_total += u64::from(n.gpus());
            t.gpus_allocated += u64::from(n.gpu_used.count_ones());
        }
        for j in &self.jobs {
            let tasks = j.array_spec.map_or(1, |a| self.arrays[a as usize].tasks());
            *t.jobs_by_state.entry(j.state.lower()).or_default() += tasks;
        }
        t
    }
}
