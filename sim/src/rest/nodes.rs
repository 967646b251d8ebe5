//! `GET /slurm/v0.0.38/nodes`.

use crate::catalogue::{
    Kind, FLAG_NAMES, F_COMPLETING, F_POWERED_DOWN, GPU_MODELS, NOW, NO_VAL, OS, PARTS,
};
use crate::json::{write_list_doc, Api};
use crate::model::{idx_str, mem_str, SimCluster};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, Write};

#[derive(Serialize)]
pub(crate) struct NodeOut<'a> {
    pub(crate) architecture: &'a str,
    pub(crate) burstbuffer_network_address: &'a str,
    pub(crate) boards: u32,
    pub(crate) boot_time: u64,
    pub(crate) comment: &'a str,
    pub(crate) cores: u32,
    pub(crate) cpu_binding: u32,
    pub(crate) cpu_load: u64,
    pub(crate) extra: &'a str,
    pub(crate) free_memory: i64,
    pub(crate) cpus: u32,
    pub(crate) last_busy: u64,
    pub(crate) features: &'a str,
    pub(crate) active_features: &'a str,
    pub(crate) gres: String,
    pub(crate) gres_drained: &'a str,
    pub(crate) gres_used: String,
    pub(crate) mcs_label: &'a str,
    pub(crate) name: String,
    pub(crate) next_state_after_reboot: &'a str,
    pub(crate) address: String,
    pub(crate) hostname: String,
    pub(crate) state: &'a str,
    pub(crate) state_flags: Vec<&'a str>,
    pub(crate) next_state_after_reboot_flags: Vec<&'a str>,
    pub(crate) operating_system: &'a str,
    pub(crate) owner: (),
    pub(crate) partitions: Vec<&'a str>,
    pub(crate) port: u32,
    pub(crate) real_memory: u64,
    pub(crate) reason: &'a str,
    pub(crate) reason_changed_at: u64,
    pub(crate) reason_set_by_user: Option<&'a str>,
    pub(crate) slurmd_start_time: u64,
    pub(crate) sockets: u32,
    pub(crate) threads: u32,
    pub(crate) temporary_disk: u64,
    pub(crate) weight: u32,
    pub(crate) tres: String,
    pub(crate) slurmd_version: &'a str,
    pub(crate) alloc_memory: u64,
    pub(crate) alloc_cpus: u32,
    pub(crate) idle_cpus: u32,
    pub(crate) tres_used: Option<String>,
    pub(crate) tres_weighted: f64,
}

impl SimCluster {
    pub(crate) fn node_out(&self, i: usize) -> NodeOut<'_> {
        let n = &self.nodes[i];
        let cpus = n.cpus();
        let name = n.name();
        let id = i as u64;
        let unreg = n.unregistered();
        let boot = u64::from(NOW) - 3600 - self.h(1, id) % (60 * 86_400);
        let gpus = n.gpus();
        let gtype = n.gpu.map(|g| GPU_MODELS[usize::from(g)].gres_type);
        let used_gpus = n.gpu_used.count_ones();
        let mut tres = format!("cpu={cpus},mem={},billing={cpus}", mem_str(n.real_memory));
        if gpus > 0 {
            let _ = write!(tres, ",gres/gpu={gpus}");
        }
        let mut used = Vec::new();
        if n.alloc_cpus > 0 {
            used.push(format!("cpu={}", n.alloc_cpus));
        }
        if n.alloc_mem > 0 {
            used.push(format!("mem={}", mem_str(n.alloc_mem)));
        }
        if used_gpus > 0 {
            used.push(format!("gres/gpu={used_gpus}"));
        }
        let load = if n.flags & F_POWERED_DOWN != 0 {
            0
        } else {
            u64::from(n.alloc_cpus) * (85 + self.h(2, id) % 15) + self.h(3, id) % 60
        };
        let free = n.real_memory as i64
            - (n.alloc_mem as f64 * (0.3 + (self.h(4, id) % 60) as f64 / 100.0)) as i64
            - 2_000
            - (self.h(5, id) % 6_000) as i64;
        let busy = n.alloc_cpus > 0 || n.flags & F_COMPLETING != 0;
        NodeOut {
            architecture: if unreg { "" } else { "x86_64" },
            burstbuffer_network_address: "",
            boards: 1,
            boot_time: if unreg { 0 } else { boot },
            comment: "",
            cores: u32::from(n.cps),
            cpu_binding: 0,
            cpu_load: if unreg { NO_VAL } else { load },
            extra: "",
            free_memory: if unreg { -2 } else { free.max(0) },
            cpus,
            last_busy: if busy {
                u64::from(NOW) - self.h(6, id) % 30
            } else {
                u64::from(NOW) - self.h(6, id) % 86_400
            },
            features: n.features,
            active_features: n.features,
            gres: match gtype {
                Some(t) => format!("gpu:{t}:{gpus}"),
                None => String::new(),
            },
            gres_drained: "N/A",
            gres_used: match gtype {
                Some(t) => format!("gpu:{t}:{used_gpus}(IDX:{})", idx_str(n.gpu_used)),
                None => "gpu:0".to_string(),
            },
            mcs_label: "",
            next_state_after_reboot: "invalid",
            address: format!(
                "127.{}.{}.{}",
                n.kind as u32 + 1,
                n.num / 250,
                n.num % 250 + 1
            ),
            hostname: name.clone(),
            name,
            state: n.base.as_str(),
            state_flags: FLAG_NAMES
                .iter()
                .filter(|f| n.flags & f.0 != 0)
                .map(|f| f.1)
                .collect(),
            next_state_after_reboot_flags: Vec::new(),
            operating_system: if unreg { "" } else { OS },
            owner: (),
            partitions: PARTS
                .iter()
                .enumerate()
                .filter(|(p, _)| n.parts & (1 << p) != 0)
                .map(|(_, d)| d.name)
                .collect(),
            port: 6818,
            real_memory: n.real_memory,
            reason: n.reason,
            reason_changed_at: if n.reason.is_empty() {
                0
            } else {
                u64::from(NOW) - self.h(7, id) % (14 * 86_400)
            },
            reason_set_by_user: if n.reason.is_empty() {
                None
            } else {
                Some(n.reason_by)
            },
            slurmd_start_time: if unreg {
                0
            } else {
                boot + 40 + self.h(8, id) % 300
            },
            sockets: 2,
            threads: 1,
            temporary_disk: 0,
            weight: match n.kind {
                Kind::Cpu => 10,
                Kind::Gpu => 50,
                Kind::Himem => 100,
            },
            tres,
            slurmd_version: if unreg { "" } else { "22.05.8" },
            alloc_memory: n.alloc_mem,
            alloc_cpus: n.alloc_cpus,
            idle_cpus: cpus - n.alloc_cpus,
            tres_used: if used.is_empty() {
                None
            } else {
                Some(used.join(","))
            },
            tres_weighted: f64::from(n.alloc_cpus),
        }
    }

    /// `GET /slurm/v0.0.38/nodes`.
    pub fn write_nodes(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(
            w,
            Api::Slurm,
            "nodes",
            (0..self.nodes.len()).map(|i| self.node_out(i)),
        )
    }
}
