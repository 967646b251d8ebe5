//! The slurmdbd documents: associations, QOS, finished jobs (`sacct --json`).

use crate::catalogue::{QosDef, CLUSTER, PARTS, QOS};
use crate::json::{empty, write_list_doc, Api, J};
use crate::model::{Assoc, JState, Mem, SimCluster, SimJob};
use std::io::{self, Write};

impl SimCluster {
    pub(crate) fn assoc_json(&self, a: &Assoc) -> J {
        let acct = &self.accounts[usize::from(a.account)];
        let (user, parent, qos, shares) = match a.user {
            Some(u) => (
                Some(J::S(self.users[usize::from(u)].name.clone())),
                None,
                vec!["gpu", "high", "low", "normal"],
                1u32,
            ),
            None if a.is_default => (Some(J::Str("root")), None, vec!["normal"], 1),
            None => (
                None,
                acct.parent.map(|p| self.accounts[usize::from(p)].name),
                vec!["normal"],
                if a.account == 0 { 1 } else { 100 },
            ),
        };
        let grp = if a.user.is_none() {
            acct.grp_cpus
        } else {
            None
        };
        let total = match grp {
            Some(c) => vec![obj! { "type": "cpu", "name": (), "id": 1u32, "count": c }],
            None => vec![],
        };
        obj! {
            "account": acct.name,
            "cluster": CLUSTER,
            "default": obj! { "qos": () },
            "flags": if a.is_default && a.user.is_some() { vec!["DEFAULT"] } else { vec![] },
            "max": obj! {
                "jobs": obj! {
                    "per": obj! { "count": (), "accruing": (), "submitted": (), "wall_clock": () },
                    "active": a.max_jobs,
                    "accruing": (),
                    "total": (),
                },
                "tres": obj! {
                    "total": total,
                    "minutes": obj! { "per": obj! { "job": empty() }, "total": empty() },
                    "group": obj! { "minutes": empty(), "active": empty() },
                    "per": obj! { "job": empty(), "node": empty() },
                },
                "per": obj! { "account": obj! { "wall_clock": () } },
            },
            "is_default": u32::from(a.is_default && a.user.is_some()),
            "min": obj! { "priority_threshold": () },
            "parent_account": parent,
            "partition": (),
            "priority": (),
            "qos": qos,
            "shares_raw": shares,
            "usage": (),
            "user": user,
        }
    }

    /// `GET /slurmdb/v0.0.38/associations`.
    pub fn write_associations(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(
            w,
            Api::Slurmdb,
            "associations",
            self.assocs.iter().map(|a| self.assoc_json(a)),
        )
    }

    pub(crate) fn qos_json(q: &QosDef) -> J {
        let user_tres = match q.gpus_per_user {
            Some(n) => vec![obj! { "type": "gres", "name": "gpu", "id": 1001u32, "count": n }],
            None => vec![],
        };
        obj! {
            "description": q.description,
            "flags": q.flags.to_vec(),
            "id": q.id,
            "limits": obj! {
                "grace_time": 0u32,
                "max": obj! {
                    "active_jobs": obj! { "accruing": (), "count": () },
                    "tres": obj! {
                        "total": empty(),
                        "minutes": obj! {
                            "per": obj! {
                                "qos": empty(),
                                "job": empty(),
                                "account": empty(),
                                "user": empty(),
                            },
                        },
                        "per": obj! {
                            "account": empty(),
                            "job": empty(),
                            "node": empty(),
                            "user": user_tres,
                        },
                    },
                    "wall_clock": obj! { "per": obj! { "qos": (), "job": q.max_wall } },
                    "jobs": obj! {
                        "active_jobs": obj! {
                            "per": obj! { "account": (), "user": q.max_jobs_per_user },
                        },
                        "per": obj! { "account": (), "user": () },
                    },
                    "accruing": obj! { "per": obj! { "account": (), "user": () } },
                },
                "factor": (),
                "min": obj! {
                    "priority_threshold": (),
                    "tres": obj! { "per": obj! { "job": empty() } },
                },
            },
            "name": q.name,
            "preempt": obj! {
                "list": q.preempts.to_vec(),
                "mode": Vec::<&'static str>::new(),
                "exempt_time": (),
            },
            "priority": q.priority,
            "usage_factor": q.usage_factor,
            "usage_threshold": (),
        }
    }

    /// `GET /slurmdb/v0.0.38/qos`.
    pub fn write_qos(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(w, Api::Slurmdb, "QOS", QOS.iter().map(Self::qos_json))
    }

    /// `GET /slurmdb/v0.0.38/jobs` (the same document as `sacct --json`): the jobs of this
    /// cluster that have finished, in slurmdbd's job record shape (allocated TRES, times,
    /// exit codes as `status`/`return_code`/`signal`). Running and pending jobs are left
    /// out, as `sacct --state` leaves them out.
    pub fn write_finished_jobs(&self, w: &mut dyn Write) -> io::Result<()> {
        let finished = self.jobs.iter().filter(|j| {
            j.end > 0
                && matches!(
                    j.state,
                    JState::Completed
                        | JState::Cancelled
                        | JState::Failed
                        | JState::Timeout
                        | JState::OutOfMemory
                        | JState::NodeFail
                        | JState::Preempted
                )
        });
        write_list_doc(
            w,
            Api::Slurmdb,
            "jobs",
            finished.map(|j| self.finished_job_out(j)),
        )
    }

    pub(crate) fn finished_job_out(&self, j: &SimJob) -> serde_json::Value {
        use serde_json::json;
        let assoc = &self.assocs[j.assoc as usize];
        let user = &self.users[usize::from(assoc.user.unwrap_or(0))];
        let account = self.accounts[usize::from(assoc.account)].name;
        let ran = j.start > 0 && (j.state != JState::Cancelled || j.ran);
        let cpus = j.cpus();
        let nodes = u64::from(j.nodes);
        let mem = match j.mem {
            Mem::PerCpu(m) => u64::from(m) * cpus,
            Mem::PerNode(m) => u64::from(m) * nodes,
        };
        let tres = |t: &str, id: u32, n: u64, name: Option<&str>| json!({ "type": t, "name": name, "id": id, "count": n });
        let mut allocated = Vec::new();
        if ran {
            allocated.push(tres("cpu", 1, cpus, None));
            allocated.push(tres("mem", 2, mem, None));
            allocated.push(tres("node", 4, nodes, None));
            allocated.push(tres("billing", 5, cpus, None));
            if j.gpn > 0 {
                allocated.push(tres("gres", 1001, u64::from(j.gpn) * nodes, Some("gpu")));
            }
        }
        let (start, elapsed) = if ran {
            (j.start, j.end.saturating_sub(j.start))
        } else {
            (0, 0)
        };
        // The simulator keeps a wait(2) status: signal in the low 7 bits, code above.
        let exit_code = if j.exit_code & 0x7f != 0 {
            json!({ "status": "SIGNALED", "return_code": null,
                    "signal": { "signal_id": j.exit_code & 0x7f, "name": "" } })
        } else {
            json!({ "status": if j.exit_code == 0 { "SUCCESS" } else { "FAILED" },
                    "return_code": j.exit_code >> 8 })
        };
        json!({
            "account": account,
            "array": {
                "job_id": j.array_job_id,
                "task_id": j.array_task,
            },
            "association": { "account": account, "cluster": CLUSTER, "partition": null, "user": user.name },
            "cluster": CLUSTER,
            "derived_exit_code": { "status": "SUCCESS", "return_code": 0 },
            "time": {
                "elapsed": elapsed,
                "eligible": j.eligible,
                "end": j.end,
                "start": start,
                "submission": j.submit,
                "suspended": 0,
                "limit": j.time_limit,
            },
            "exit_code": exit_code,
            "group": user.name,
            "het": { "job_id": 0, "job_offset": null },
            "job_id": j.id,
            "partition": PARTS[usize::from(j.part)].name,
            "qos": QOS[usize::from(j.qos)].name,
            "state": { "current": j.state.upper(), "reason": "None" },
            "steps": [],
            "tres": { "allocated": allocated, "requested": [] },
            "user": user.name,
        })
    }
}
