//! `GET /slurm/v0.0.38/jobs`: job records with their resources per node, socket and core.

use crate::catalogue::{
    Kind, CLUSTER, GPU_MODELS, JOB_NAMES, LICENSES, NAME_BASH, NODES_DOWN, PARTS, QOS, RESV_NAMES,
};
use crate::json::{write_list_doc, Api};
use crate::model::{
    gpu_mask, hostlist, idx_str, mem_str, Alloc, ArraySpec, JState, Mem, SimCluster, SimJob,
};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use std::io::{self, Write};

#[derive(Serialize)]
pub(crate) struct JobOut<'a> {
    pub(crate) account: &'a str,
    pub(crate) accrue_time: u64,
    pub(crate) admin_comment: &'a str,
    pub(crate) array_job_id: u64,
    pub(crate) array_task_id: Option<u64>,
    pub(crate) array_max_tasks: u64,
    pub(crate) array_task_string: String,
    pub(crate) association_id: u64,
    pub(crate) batch_features: &'a str,
    pub(crate) batch_flag: bool,
    pub(crate) batch_host: String,
    pub(crate) flags: Vec<&'a str>,
    pub(crate) burst_buffer: &'a str,
    pub(crate) burst_buffer_state: &'a str,
    pub(crate) cluster: &'a str,
    pub(crate) cluster_features: &'a str,
    pub(crate) command: &'a str,
    pub(crate) comment: &'a str,
    pub(crate) container: &'a str,
    pub(crate) contiguous: bool,
    pub(crate) core_spec: (),
    pub(crate) thread_spec: (),
    pub(crate) cores_per_socket: (),
    pub(crate) billable_tres: Option<f64>,
    pub(crate) cpus_per_task: (),
    pub(crate) cpu_frequency_minimum: (),
    pub(crate) cpu_frequency_maximum: (),
    pub(crate) cpu_frequency_governor: (),
    pub(crate) cpus_per_tres: &'a str,
    pub(crate) deadline: u64,
    pub(crate) delay_boot: u64,
    pub(crate) dependency: String,
    pub(crate) derived_exit_code: u64,
    pub(crate) eligible_time: u64,
    pub(crate) end_time: u64,
    pub(crate) excluded_nodes: &'a str,
    pub(crate) exit_code: u64,
    pub(crate) features: &'a str,
    pub(crate) federation_origin: &'a str,
    pub(crate) federation_siblings_active: &'a str,
    pub(crate) federation_siblings_viable: &'a str,
    pub(crate) gres_detail: Vec<String>,
    pub(crate) group_id: u64,
    pub(crate) group_name: &'a str,
    pub(crate) job_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) job_resources: Option<JobResOut<'a>>,
    pub(crate) job_state: &'a str,
    pub(crate) last_sched_evaluation: u64,
    pub(crate) licenses: String,
    pub(crate) max_cpus: u64,
    pub(crate) max_nodes: u64,
    pub(crate) mcs_label: &'a str,
    pub(crate) memory_per_tres: &'a str,
    pub(crate) name: &'a str,
    pub(crate) nodes: String,
    pub(crate) nice: (),
    pub(crate) tasks_per_core: (),
    pub(crate) tasks_per_node: u64,
    pub(crate) tasks_per_socket: (),
    pub(crate) tasks_per_board: u64,
    pub(crate) cpus: u64,
    pub(crate) node_count: u64,
    pub(crate) tasks: u64,
    pub(crate) het_job_id: u64,
    pub(crate) het_job_id_set: &'a str,
    pub(crate) het_job_offset: u64,
    pub(crate) partition: &'a str,
    pub(crate) prefer: &'a str,
    pub(crate) memory_per_node: Option<u64>,
    pub(crate) memory_per_cpu: Option<u64>,
    pub(crate) minimum_cpus_per_node: u64,
    pub(crate) minimum_tmp_disk_per_node: u64,
    pub(crate) preempt_time: u64,
    pub(crate) pre_sus_time: u64,
    pub(crate) priority: u64,
    pub(crate) profile: (),
    pub(crate) qos: &'a str,
    pub(crate) reboot: bool,
    pub(crate) required_nodes: String,
    pub(crate) requeue: bool,
    pub(crate) resize_time: u64,
    pub(crate) restart_cnt: u64,
    pub(crate) resv_name: &'a str,
    pub(crate) shared: Option<&'a str>,
    pub(crate) show_flags: [&'a str; 3],
    pub(crate) sockets_per_board: u64,
    pub(crate) sockets_per_node: (),
    pub(crate) start_time: u64,
    pub(crate) state_description: String,
    pub(crate) state_reason: &'a str,
    pub(crate) standard_error: &'a str,
    pub(crate) standard_input: &'a str,
    pub(crate) standard_output: &'a str,
    pub(crate) submit_time: u64,
    pub(crate) suspend_time: u64,
    pub(crate) system_comment: &'a str,
    pub(crate) time_limit: u64,
    pub(crate) time_minimum: u64,
    pub(crate) threads_per_core: (),
    pub(crate) tres_bind: &'a str,
    pub(crate) tres_freq: &'a str,
    pub(crate) tres_per_job: &'a str,
    pub(crate) tres_per_node: String,
    pub(crate) tres_per_socket: &'a str,
    pub(crate) tres_per_task: &'a str,
    pub(crate) tres_req_str: String,
    pub(crate) tres_alloc_str: String,
    pub(crate) user_id: u64,
    pub(crate) user_name: &'a str,
    pub(crate) wckey: &'a str,
    pub(crate) current_working_directory: String,
}

#[derive(Serialize)]
pub(crate) struct JobResOut<'a> {
    pub(crate) nodes: String,
    pub(crate) allocated_cores: u64,
    pub(crate) allocated_hosts: u64,
    pub(crate) allocated_nodes: Vec<AllocNodeOut<'a>>,
}

pub(crate) struct AllocNodeOut<'a> {
    pub(crate) alloc: &'a Alloc,
    pub(crate) name: String,
}

impl Serialize for AllocNodeOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AllocatedNode", 5)?;
        st.serialize_field("sockets", &Sockets(self.alloc))?;
        st.serialize_field("nodename", &self.name)?;
        st.serialize_field("cpus_used", &0u32)?;
        st.serialize_field("memory_used", &0u32)?;
        st.serialize_field("memory_allocated", &self.alloc.mem)?;
        st.end()
    }
}

/// `{"0": {"cores": {"3": "allocated", ...}}, ...}`; sockets without cores are left out.
pub(crate) struct Sockets<'a>(&'a Alloc);

impl Serialize for Sockets<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let used = self.0.sock.iter().filter(|(_, n)| *n > 0).count();
        let mut m = s.serialize_map(Some(used))?;
        for (i, &(start, n)) in self.0.sock.iter().enumerate() {
            if n > 0 {
                m.serialize_entry(&(i as u32), &SocketCores(start, n))?;
            }
        }
        m.end()
    }
}

pub(crate) struct SocketCores(u16, u16);

impl Serialize for SocketCores {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Socket", 1)?;
        st.serialize_field("cores", &CoreMap(self.0, self.1))?;
        st.end()
    }
}

pub(crate) struct CoreMap(u16, u16);

impl Serialize for CoreMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(usize::from(self.1)))?;
        for c in self.0..self.0 + self.1 {
            m.serialize_entry(&u32::from(c), "allocated")?;
        }
        m.end()
    }
}

impl SimCluster {
    pub(crate) fn job_out<'a>(&'a self, j: &'a SimJob) -> JobOut<'a> {
        let assoc = &self.assocs[j.assoc as usize];
        let user = &self.users[usize::from(assoc.user.unwrap_or(0))];
        let allocs =
            &self.allocs[j.alloc_start as usize..j.alloc_start as usize + usize::from(j.alloc_len)];
        let started = !allocs.is_empty();
        let cpus = j.cpus();
        let nodes = u64::from(j.nodes);
        let gpu_kind = j.gpn > 0;
        let mem_total = match j.mem {
            Mem::PerCpu(m) => u64::from(m) * cpus,
            Mem::PerNode(m) => u64::from(m) * nodes,
        };
        let gres_tres = if gpu_kind {
            format!(",gres/gpu={}", u64::from(j.gpn) * nodes)
        } else {
            String::new()
        };
        let mem = mem_str(mem_total);
        let tres_req = format!("cpu={cpus},mem={mem},node={nodes},billing={cpus}{gres_tres}");
        let tres_alloc = if started {
            tres_req.clone()
        } else if j.partial_alloc {
            format!("cpu={cpus},mem={mem},billing={cpus}{gres_tres}")
        } else {
            String::new()
        };
        let mut idx: Vec<u32> = allocs.iter().map(|a| a.node).collect();
        let node_list = hostlist(&self.nodes, &mut idx);
        let mem_set = matches!(j.mem, Mem::PerNode(_));
        let cpus_set = j.kind != Kind::Cpu;
        let mut flags = Vec::new();
        if started {
            if cpus_set {
                flags.push("JOB_CPUS_SET");
            }
            if j.array_task.is_none() || j.state != JState::Cancelled {
                flags.push("JOB_ACCRUE_OVER");
            }
            if matches!(j.state, JState::Running | JState::Suspended) {
                flags.push("JOB_WAS_RUNNING");
            }
            if mem_set {
                flags.push("JOB_MEM_SET");
            }
        } else if j.state == JState::Cancelled && j.accrue != 0 {
            flags.push("JOB_ACCRUE_OVER");
        }
        let holds = matches!(j.state, JState::Running | JState::Suspended);
        let gres_detail = if holds && gpu_kind {
            allocs
                .iter()
                .map(|a| {
                    let t = self.nodes[a.node as usize]
                        .gpu
                        .map_or("gpu", |g| GPU_MODELS[usize::from(g)].gres_type);
                    format!(
                        "gpu:{t}:{}(IDX:{})",
                        a.ngpu,
                        idx_str(gpu_mask(a.gpu_start, a.ngpu))
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let job_resources = started.then(|| JobResOut {
            nodes: node_list.clone(),
            allocated_cores: cpus,
            allocated_hosts: nodes,
            allocated_nodes: allocs
                .iter()
                .map(|a| AllocNodeOut {
                    alloc: a,
                    name: self.nodes[a.node as usize].name(),
                })
                .collect(),
        });
        let interactive = j.name == NAME_BASH;
        let spec = j.array_spec.map(|a| &self.arrays[a as usize]);
        let (tasks, tasks_per_node, min_cpn) = match j.kind {
            Kind::Cpu if j.nodes > 1 => (cpus, u64::from(j.cpn), u64::from(j.cpn)),
            Kind::Cpu => (cpus, 0, 1),
            _ if j.nodes > 1 => (nodes, 1, u64::from(j.cpn)),
            _ => (nodes, 0, u64::from(j.cpn)),
        };
        let required_nodes = j
            .req_node
            .map_or_else(String::new, |i| self.nodes[i as usize].name());
        let state_description = if j.state == JState::Pending {
            match j.req_node {
                Some(_) => format!("ReqNodeNotAvail, UnavailableNodes:{required_nodes}"),
                None if j.desc_nodes_down => NODES_DOWN.to_string(),
                None => String::new(),
            }
        } else {
            String::new()
        };
        let gtype_name = (j.gtype > 0).then(|| GPU_MODELS[usize::from(j.gtype - 1)].gres_type);
        JobOut {
            account: self.accounts[usize::from(assoc.account)].name,
            accrue_time: j.accrue.into(),
            admin_comment: "",
            array_job_id: j.array_job_id.into(),
            array_task_id: j.array_task.map(u64::from),
            array_max_tasks: spec.map_or(0, |s| s.max).into(),
            array_task_string: spec.map_or_else(String::new, ArraySpec::text),
            association_id: u64::from(j.assoc) + 1,
            batch_features: "",
            batch_flag: !interactive,
            batch_host: allocs
                .first()
                .map_or_else(String::new, |a| self.nodes[a.node as usize].name()),
            flags,
            burst_buffer: "",
            burst_buffer_state: "",
            cluster: CLUSTER,
            cluster_features: "",
            command: if interactive { "bash" } else { "" },
            comment: "",
            container: "",
            contiguous: false,
            core_spec: (),
            thread_spec: (),
            cores_per_socket: (),
            billable_tres: if started {
                Some(cpus as f64)
            } else if j.state == JState::Cancelled {
                Some(0.0)
            } else {
                None
            },
            cpus_per_task: (),
            cpu_frequency_minimum: (),
            cpu_frequency_maximum: (),
            cpu_frequency_governor: (),
            cpus_per_tres: "",
            deadline: 0,
            delay_boot: 0,
            dependency: j.dep.map_or_else(String::new, |(id, failed)| {
                format!(
                    "afterok:{id}({})",
                    if failed { "failed" } else { "unfulfilled" }
                )
            }),
            derived_exit_code: 0,
            eligible_time: j.eligible.into(),
            end_time: j.end.into(),
            excluded_nodes: "",
            exit_code: j.exit_code.into(),
            features: "",
            federation_origin: "",
            federation_siblings_active: "",
            federation_siblings_viable: "",
            gres_detail,
            group_id: user.uid.into(),
            group_name: &user.name,
            job_id: j.id.into(),
            job_resources,
            job_state: j.state.upper(),
            last_sched_evaluation: j.last_eval.into(),
            licenses: if j.license > 0 {
                format!("{}:1", LICENSES[usize::from(j.license - 1)].0)
            } else {
                String::new()
            },
            max_cpus: 0,
            max_nodes: 0,
            mcs_label: "",
            memory_per_tres: "",
            name: JOB_NAMES[usize::from(j.name)],
            nodes: node_list,
            nice: (),
            tasks_per_core: (),
            tasks_per_node,
            tasks_per_socket: (),
            tasks_per_board: 0,
            cpus,
            node_count: nodes,
            tasks,
            het_job_id: 0,
            het_job_id_set: "",
            het_job_offset: 0,
            partition: PARTS[usize::from(j.part)].name,
            prefer: "",
            memory_per_node: match j.mem {
                Mem::PerNode(m) => Some(m.into()),
                Mem::PerCpu(_) => None,
            },
            memory_per_cpu: match j.mem {
                Mem::PerCpu(m) => Some(m.into()),
                Mem::PerNode(_) => None,
            },
            minimum_cpus_per_node: min_cpn,
            minimum_tmp_disk_per_node: 0,
            preempt_time: j.preempt.into(),
            pre_sus_time: j.pre_sus.into(),
            priority: j.priority.into(),
            profile: (),
            qos: QOS[usize::from(j.qos)].name,
            reboot: false,
            required_nodes,
            requeue: true,
            resize_time: 0,
            restart_cnt: 0,
            resv_name: RESV_NAMES[usize::from(j.resv)],
            shared: None,
            show_flags: ["SHOW_ALL", "SHOW_DETAIL", "SHOW_LOCAL"],
            sockets_per_board: 0,
            sockets_per_node: (),
            start_time: j.start.into(),
            state_description,
            state_reason: j.reason,
            standard_error: "",
            standard_input: if interactive { "" } else { "/dev/null" },
            standard_output: "",
            submit_time: j.submit.into(),
            suspend_time: j.suspend.into(),
            system_comment: "",
            time_limit: j.time_limit.into(),
            time_minimum: 0,
            threads_per_core: (),
            tres_bind: "",
            tres_freq: "",
            tres_per_job: "",
            tres_per_node: match (gpu_kind, gtype_name) {
                (false, _) => String::new(),
                (true, Some(t)) => format!("gres:gpu:{t}:{}", j.gpn),
                (true, None) => format!("gres:gpu:{}", j.gpn),
            },
            tres_per_socket: "",
            tres_per_task: "",
            tres_req_str: tres_req,
            tres_alloc_str: tres_alloc,
            user_id: user.uid.into(),
            user_name: &user.name,
            wckey: "",
            current_working_directory: format!("/home/{}", user.name),
        }
    }

    /// `GET /slurm/v0.0.38/jobs`.
    pub fn write_jobs(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(
            w,
            Api::Slurm,
            "jobs",
            self.jobs.iter().map(|j| self.job_out(j)),
        )
    }
}
