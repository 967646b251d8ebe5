//! The small slurmctld documents: partitions, reservations, diag, ping, licenses.

use crate::catalogue::{
    LICENSES, NOW, NO_VAL, PARTS, P_DEBUG, RESV_COURSE, RESV_MAINT, RESV_NAMES, SUB_ACCOUNTS,
};
use crate::json::{to_slurm_json, write_head, write_list_doc, Api, J};
use crate::model::{hostlist, mem_str, JState, SimCluster};
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

impl SimCluster {
    pub(crate) fn partition_json(&self, p: usize) -> J {
        let def = &PARTS[p];
        let mut members: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&i| self.nodes[i as usize].parts & (1 << p) != 0)
            .collect();
        let cpus: u64 = members
            .iter()
            .map(|&i| u64::from(self.nodes[i as usize].cpus()))
            .sum();
        let mem: u64 = members
            .iter()
            .map(|&i| self.nodes[i as usize].real_memory)
            .sum();
        let gpus: u64 = members
            .iter()
            .map(|&i| u64::from(self.nodes[i as usize].gpus()))
            .sum();
        let n = members.len() as u64;
        let mut tres = format!("cpu={cpus},mem={},node={n},billing={cpus}", mem_str(mem));
        if gpus > 0 {
            let _ = write!(tres, ",gres/gpu={gpus}");
        }
        obj! {
            "flags": if def.default { vec!["default"] } else { vec![] },
            "preemption_mode": vec![def.preempt_mode],
            "allowed_allocation_nodes": "",
            "allowed_accounts": "",
            "allowed_groups": "",
            "allowed_qos": "",
            "alternative": "",
            "billing_weights": "",
            "default_memory_per_cpu": (),
            "default_memory_per_node": (),
            "default_time_limit": def.default_time,
            "denied_accounts": "",
            "denied_qos": "",
            "preemption_grace_time": 0u32,
            "maximum_cpus_per_node": -1i32,
            "maximum_memory_per_cpu": (),
            "maximum_memory_per_node": (),
            "maximum_nodes_per_job": def.max_nodes,
            "max_time_limit": def.max_time,
            "min nodes per job": 0u32,
            "name": def.name,
            "nodes": hostlist(&self.nodes, &mut members),
            "over_time_limit": (),
            "priority_job_factor": 1u32,
            "priority_tier": def.tier,
            "qos": "",
            "state": "UP",
            "total_cpus": cpus,
            "total_nodes": n,
            "tres": tres,
        }
    }

    /// `GET /slurm/v0.0.38/partitions`.
    pub fn write_partitions(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(
            w,
            Api::Slurm,
            "partitions",
            (0..PARTS.len()).map(|p| self.partition_json(p)),
        )
    }

    pub(crate) fn reservations_json(&self) -> Vec<J> {
        let mut out = Vec::new();
        let mut resv = |name: &'static str,
                        flags: Vec<&'static str>,
                        mut idx: Vec<u32>,
                        start: u32,
                        end: u32,
                        users: &'static str,
                        accounts: String| {
            if idx.is_empty() {
                return;
            }
            let cores: u64 = idx
                .iter()
                .map(|&i| u64::from(self.nodes[i as usize].cpus()))
                .sum();
            let count = idx.len() as u64;
            out.push(obj! {
                "flags": flags,
                "accounts": accounts,
                "burst_buffer": "",
                "core_count": cores,
                "core_spec_cnt": 0u32,
                "end_time": end,
                "features": "",
                "groups": "",
                "licenses": "",
                "max_start_delay": 0u32,
                "name": name,
                "node_count": count,
                "node_list": hostlist(&self.nodes, &mut idx),
                "partition": "",
                "start_time": start,
                "watts": NO_VAL,
                "tres": format!("cpu={cores}"),
                "users": users,
            });
        };
        let with = |r: u8| -> Vec<u32> {
            (0..self.nodes.len() as u32)
                .filter(|&i| self.nodes[i as usize].resv == r)
                .collect()
        };
        resv(
            RESV_NAMES[1],
            vec!["MAINT", "SPEC_NODES"],
            with(RESV_MAINT),
            NOW - 5400,
            NOW + 4 * 3600,
            "root",
            String::new(),
        );
        let course_accounts = format!("{},{}", SUB_ACCOUNTS[4][0], SUB_ACCOUNTS[4][3]);
        resv(
            RESV_NAMES[2],
            vec!["SPEC_NODES"],
            with(RESV_COURSE),
            NOW - 1800,
            NOW + 6 * 3600,
            "",
            course_accounts,
        );
        let debug: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&i| self.nodes[i as usize].parts & (1 << P_DEBUG) != 0)
            .collect();
        resv(
            "maint-next",
            vec!["MAINT", "SPEC_NODES"],
            debug,
            NOW + 2 * 86_400,
            NOW + 2 * 86_400 + 7200,
            "root",
            String::new(),
        );
        out
    }

    /// `GET /slurm/v0.0.38/reservations`: the active maintenance and course reservations the
    /// MAINTENANCE/RESERVED node flags come from, and a future one.
    pub fn write_reservations(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(w, Api::Slurm, "reservations", self.reservations_json())
    }

    pub(crate) fn diag_json(&self) -> J {
        const RPCS: [(&str, u32, u32); 23] = [
            ("REQUEST_PING", 1008, 157),
            ("MESSAGE_NODE_REGISTRATION_STATUS", 1002, 318),
            ("REQUEST_PARTITION_INFO", 2009, 217),
            ("REQUEST_NODE_INFO", 2007, 395),
            ("ACCOUNTING_UPDATE_MSG", 10001, 522),
            ("REQUEST_JOB_INFO", 2003, 511),
            ("REQUEST_UPDATE_NODE", 3002, 303),
            ("REQUEST_SUBMIT_BATCH_JOB", 4003, 985),
            ("REQUEST_COMPLETE_BATCH_SCRIPT", 5018, 842),
            ("REQUEST_KILL_JOB", 5032, 2563),
            ("REQUEST_RESERVATION_INFO", 2024, 186),
            ("REQUEST_STATS_INFO", 2035, 176),
            ("REQUEST_FED_INFO", 2049, 149),
            ("REQUEST_JOB_STEP_INFO", 2005, 207),
            ("REQUEST_BUILD_INFO", 2001, 193),
            ("REQUEST_SHARE_INFO", 2022, 304),
            ("REQUEST_PRIORITY_FACTORS", 2026, 265),
            ("REQUEST_AUTH_TOKEN", 5039, 955),
            ("REQUEST_LICENSE_INFO", 1021, 101),
            ("REQUEST_JOB_USER_INFO", 2039, 246),
            ("REQUEST_JOB_INFO_SINGLE", 2021, 946),
            ("REQUEST_NODE_INFO_SINGLE", 2040, 89),
            ("MESSAGE_EPILOG_COMPLETE", 6012, 130),
        ];
        let scale = (self.jobs.len() as u64).max(1);
        let rpc = |count: u64, avg: u64| (count, avg, count * avg);
        let mut by_type = Vec::new();
        for (i, (name, id, avg)) in RPCS.iter().enumerate() {
            let count = 1 + self.h(20, i as u64) % (scale * 2);
            let avg = u64::from(*avg) + self.h(21, i as u64) % 200;
            let (count, avg, total) = rpc(count, avg);
            by_type.push(obj! {
                "message_type": *name,
                "type_id": *id,
                "count": count,
                "average_time": avg,
                "total_time": total,
            });
        }
        let mut by_user = Vec::new();
        let fixed = [("root", 0u32), ("slurm", 64030), ("slurmrest", 999)];
        for (i, (name, uid)) in fixed.iter().enumerate() {
            let (count, avg, total) = rpc(
                1 + self.h(22, i as u64) % (scale * 3),
                200 + self.h(23, i as u64) % 400,
            );
            by_user.push(obj! {
                "user": *name,
                "user_id": *uid,
                "count": count,
                "average_time": avg,
                "total_time": total,
            });
        }
        for (i, u) in self.users.iter().take(25).enumerate() {
            let k = 100 + i as u64;
            let (count, avg, total) = rpc(
                1 + self.h(22, k) % scale.max(10),
                300 + self.h(23, k) % 1500,
            );
            by_user.push(obj! {
                "user": J::S(u.name.clone()),
                "user_id": u.uid,
                "count": count,
                "average_time": avg,
                "total_time": total,
            });
        }
        let count = |s: JState| self.jobs.iter().filter(|j| j.state == s).count() as u64;
        let pending: u64 = self
            .jobs
            .iter()
            .filter(|j| j.state == JState::Pending)
            .map(|j| j.array_spec.map_or(1, |a| self.arrays[a as usize].tasks()))
            .sum();
        let running = count(JState::Running);
        let completed = count(JState::Completed);
        let h = |k: u64, m: u64| self.h(30, k) % m.max(1);
        obj! {
            "rpcs_by_message_type": by_type,
            "rpcs_by_user": by_user,
            "parts_packed": 1u32,
            "req_time": NOW,
            "req_time_start": NOW - 86_400 + 180,
            "server_thread_count": 3 + h(1, 8),
            "agent_queue_size": h(2, 4),
            "agent_count": h(3, 3),
            "agent_thread_count": h(4, 8),
            "dbd_agent_queue_size": h(5, 20),
            "gettimeofday_latency": 15 + h(6, 20),
            "schedule_cycle_max": 50_000 + h(7, 400_000),
            "schedule_cycle_last": 2_000 + h(8, 80_000),
            "schedule_cycle_total": 1_400 + h(9, 200),
            "schedule_cycle_mean": 5_000 + h(10, 40_000),
            "schedule_cycle_mean_depth": 50 + h(11, 500),
            "schedule_cycle_per_minute": 1 + h(12, 2),
            "schedule_queue_length": pending.min(10_000),
            "jobs_submitted": scale * 3 + h(13, scale),
            "jobs_started": scale * 2 + h(14, scale),
            "jobs_completed": scale * 2 + completed,
            "jobs_canceled": scale / 10 + count(JState::Cancelled),
            "jobs_failed": scale / 50 + count(JState::Failed),
            "jobs_pending": pending,
            "jobs_running": running,
            "job_states_ts": NOW - 2,
            "bf_backfilled_jobs": scale / 2 + h(15, scale),
            "bf_last_backfilled_jobs": h(16, 200),
            "bf_backfilled_het_jobs": 0u32,
            "bf_cycle_counter": 2_000 + h(17, 500),
            "bf_cycle_mean": 200_000 + h(18, 2_000_000),
            "bf_depth_mean": 500 + h(19, 5_000),
            "bf_depth_mean_try": 300 + h(20, 3_000),
            "bf_cycle_last": 100_000 + h(21, 3_000_000),
            "bf_cycle_max": 4_000_000 + h(22, 6_000_000),
            "bf_queue_len": pending.min(50_000),
            "bf_queue_len_mean": pending.min(50_000) * 9 / 10,
            "bf_table_size": 20 + h(23, 200),
            "bf_table_size_mean": 20 + h(24, 150),
            "bf_when_last_cycle": NOW - 7,
            "bf_active": false,
        }
    }

    /// `GET /slurm/v0.0.38/diag`.
    pub fn write_diag(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut out = BufWriter::new(w);
        write_head(&mut out, Api::Slurm, "statistics")?;
        to_slurm_json(&mut out, 1, &self.diag_json())?;
        out.write_all(b"\n}")?;
        out.flush()
    }

    /// `GET /slurm/v0.0.38/ping`: a primary and a backup controller, both up.
    pub fn write_ping(&self, w: &mut dyn Write) -> io::Result<()> {
        let pings = [("sim-ctl1", "primary"), ("sim-ctl2", "backup")].map(|(host, mode)| {
            obj! { "hostname": host, "ping": "UP", "status": 0u32, "mode": mode }
        });
        write_list_doc(w, Api::Slurm, "pings", pings)
    }

    /// `GET /slurm/v0.0.38/licenses`; `Used` is what the running jobs hold.
    pub fn write_licenses(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut used = [0u64; LICENSES.len()];
        for j in &self.jobs {
            if j.license > 0 && j.state == JState::Running {
                used[usize::from(j.license - 1)] += 1;
            }
        }
        let lic = LICENSES.iter().zip(used).map(|(&(name, total), used)| {
            let total = u64::from(total).max(used);
            obj! {
                "LicenseName": name,
                "Total": total,
                "Used": used,
                "Free": total - used,
                "Reserved": 0u32,
                "Remote": false,
            }
        });
        write_list_doc(w, Api::Slurm, "licenses", lic)
    }
}
