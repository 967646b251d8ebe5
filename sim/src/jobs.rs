//! Building the model: jobs, arrays, their placement on nodes, history and times.

use crate::catalogue::{
    Kind, FIRST_JOB_ID, F_COMPLETING, GPU_MODELS, LICENSES, MIN_JOB_AGE, NAME_BASH, NOW, PARTS,
    P_CPU, P_DEBUG, P_GPU, P_HIMEM, P_PREEMPT, Q_GPU, Q_HIGH, Q_LOW, Q_NORMAL,
};
use crate::model::{
    pick, try_place, Alloc, ArraySpec, Base, JState, Mem, Req, SimCluster, SimJob, SimNode,
};
use rand::rngs::StdRng;
use rand::Rng;
use std::cmp::Reverse;
use std::collections::BTreeMap;

impl SimCluster {
    pub(crate) fn pick_state(rng: &mut StdRng) -> JState {
        const W: [(JState, f64); 11] = [
            (JState::Running, 0.46),
            (JState::Pending, 0.38),
            (JState::Completed, 0.075),
            (JState::Cancelled, 0.03),
            (JState::Failed, 0.02),
            (JState::Timeout, 0.01),
            (JState::Completing, 0.008),
            (JState::OutOfMemory, 0.005),
            (JState::Suspended, 0.005),
            (JState::Preempted, 0.004),
            (JState::NodeFail, 0.003),
        ];
        let mut x: f64 = rng.random();
        for (s, w) in W {
            if x < w {
                return s;
            }
            x -= w;
        }
        JState::Running
    }

    pub(crate) fn pick_pending_reason(rng: &mut StdRng) -> &'static str {
        const W: [(&str, u32); 12] = [
            ("Priority", 30),
            ("Resources", 22),
            ("Dependency", 8),
            ("AssocMaxJobsLimit", 6),
            ("AssocGrpCpuLimit", 5),
            ("QOSMaxJobsPerUserLimit", 5),
            ("JobHeldUser", 4),
            ("JobHeldAdmin", 2),
            ("ReqNodeNotAvail", 3),
            ("BeginTime", 3),
            ("PartitionTimeLimit", 2),
            ("DependencyNeverSatisfied", 2),
        ];
        let mut x = rng.random_range(0..92u32);
        for (r, w) in W {
            if x < w {
                return r;
            }
            x -= w;
        }
        "Priority"
    }

    pub(crate) fn part_has(&self, p: usize, kind: Kind) -> bool {
        self.part_kinds[p][kind as usize]
    }

    pub(crate) fn new_job(&mut self, id: u32, state: JState, rng: &mut StdRng) -> SimJob {
        let x: f64 = rng.random();
        let mut part = if x < 0.73 {
            P_CPU
        } else if x < 0.81 {
            P_GPU
        } else if x < 0.85 {
            P_HIMEM
        } else if x < 0.87 {
            P_DEBUG
        } else {
            P_PREEMPT
        };
        let mut kind = match part {
            P_GPU => Kind::Gpu,
            P_HIMEM => Kind::Himem,
            P_PREEMPT if rng.random_bool(0.2) => Kind::Gpu,
            _ => Kind::Cpu,
        };
        if !self.part_has(part, kind) {
            part = P_CPU;
            kind = Kind::Cpu;
        }
        let ua = &self.user_assocs;
        let assoc = ua[((rng.random::<f64>().powi(2)) * ua.len() as f64) as usize % ua.len()];
        let mut job = SimJob {
            id,
            state,
            ran: true,
            reason: "None",
            part: part as u8,
            kind,
            assoc,
            qos: Q_NORMAL,
            name: rng.random_range(0..NAME_BASH),
            nodes: 1,
            cpn: 1,
            mem: Mem::PerCpu(1000),
            gpn: 0,
            gtype: 0,
            time_limit: pick(rng, PARTS[part].time_limits),
            submit: 0,
            eligible: 0,
            accrue: 0,
            start: 0,
            end: 0,
            last_eval: 0,
            suspend: 0,
            pre_sus: 0,
            preempt: 0,
            priority: 0,
            exit_code: 0,
            array_job_id: 0,
            array_task: None,
            array_spec: None,
            alloc_start: 0,
            alloc_len: 0,
            dep: None,
            license: 0,
            resv: 0,
            partial_alloc: false,
            req_node: None,
            desc_nodes_down: false,
        };
        self.shape(&mut job, rng);
        job.qos = match (part, rng.random_range(0..100)) {
            (P_GPU, 0..=69) => Q_GPU,
            (P_PREEMPT, 0..=79) => Q_LOW,
            (_, 0..=9) => Q_HIGH,
            (_, 10..=24) => Q_LOW,
            _ => Q_NORMAL,
        };
        if rng.random_bool(0.03) {
            job.name = NAME_BASH;
        }
        if rng.random_bool(0.02) {
            job.license = rng.random_range(1..=LICENSES.len() as u8);
        }
        if state == JState::Cancelled {
            job.ran = rng.random_bool(0.6);
        }
        if state == JState::Pending || (state == JState::Cancelled && !job.ran) {
            self.set_pending_reason(&mut job, Self::pick_pending_reason(rng), rng);
        }
        job
    }

    /// Node count, cores, memory and GPUs of a job, by the kind of nodes it runs on.
    pub(crate) fn shape(&self, job: &mut SimJob, rng: &mut StdRng) {
        match job.kind {
            Kind::Cpu => {
                let x: f64 = rng.random();
                let (nodes, cpn) = if x < 0.40 {
                    (1, 1)
                } else if x < 0.75 {
                    (1, pick(rng, &[2, 4, 8]))
                } else if x < 0.90 {
                    (1, pick(rng, &[16, 32]))
                } else if x < 0.95 {
                    (1, pick(rng, &[48, 64]))
                } else {
                    (rng.random_range(2..=4), pick(rng, &[8, 16, 32]))
                };
                job.nodes = nodes;
                job.cpn = cpn;
                if usize::from(job.part) == P_DEBUG {
                    job.nodes = job.nodes.min(2);
                    job.cpn = job.cpn.min(16);
                }
                job.mem = if rng.random_bool(0.8) {
                    Mem::PerCpu(pick(rng, &[1000, 2000, 4000]))
                } else {
                    Mem::PerNode(pick(rng, &[4096, 8192, 16384, 32768, 65536]))
                };
            }
            Kind::Gpu => {
                let present: Vec<u8> = (0..3u8)
                    .filter(|&g| self.gpu_models_present[usize::from(g)])
                    .collect();
                if !present.is_empty() && rng.random_bool(0.5) {
                    job.gtype = pick(rng, &present) + 1;
                }
                let max_g = match job.gtype {
                    0 => 8,
                    g => GPU_MODELS[usize::from(g - 1)].count,
                };
                job.gpn = pick(rng, &[1, 1, 1, 2, 2, 4, 8]).min(max_g);
                if rng.random_bool(0.1) {
                    job.nodes = rng.random_range(2..=4);
                    job.gpn = max_g.min(4);
                }
                job.cpn = u16::from(job.gpn) * pick(rng, &[4, 8, 12]);
                job.mem = if rng.random_bool(0.6) {
                    Mem::PerNode(u32::from(job.gpn) * pick(rng, &[32768, 65536]))
                } else {
                    Mem::PerCpu(4000)
                };
            }
            Kind::Himem => {
                job.cpn = pick(rng, &[4, 8, 16, 32, 48]);
                job.mem = Mem::PerNode(pick(rng, &[131_072, 262_144, 524_288, 1_024_000]));
            }
        }
    }

    /// Sets a pending reason and the limits or records that make it plausible.
    pub(crate) fn set_pending_reason(
        &mut self,
        job: &mut SimJob,
        reason: &'static str,
        rng: &mut StdRng,
    ) {
        job.reason = reason;
        let assoc = &mut self.assocs[job.assoc as usize];
        match reason {
            "AssocGrpCpuLimit" => {
                let a = &mut self.accounts[usize::from(assoc.account)];
                a.grp_cpus.get_or_insert(pick(rng, &[256, 512, 1024, 2048]));
            }
            "AssocMaxJobsLimit" => {
                assoc.max_jobs.get_or_insert(pick(rng, &[10, 20, 50]));
            }
            "QOSMaxJobsPerUserLimit" => job.qos = Q_LOW,
            "PartitionTimeLimit" => job.time_limit = PARTS[usize::from(job.part)].max_time * 2,
            "ReqNodeNotAvail" => {
                let bad: Vec<u32> = (0..self.nodes.len() as u32)
                    .filter(|&i| {
                        let n = &self.nodes[i as usize];
                        n.kind == job.kind && !n.schedulable && n.parts & (1 << job.part) != 0
                    })
                    .collect();
                if bad.is_empty() {
                    job.reason = "Resources";
                } else {
                    job.req_node = Some(pick(rng, &bad));
                    job.nodes = 1;
                }
            }
            "Resources" => job.desc_nodes_down = rng.random_bool(0.05),
            _ => {}
        }
        job.partial_alloc = matches!(job.reason, "Resources" | "Priority") && rng.random_bool(0.3);
    }

    pub(crate) fn build_jobs(&mut self, n: usize, rng: &mut StdRng) {
        let mut next_id = FIRST_JOB_ID;
        while self.jobs.len() < n {
            let left = n - self.jobs.len();
            if left >= 2 && rng.random_bool(0.01) {
                self.new_array(left, &mut next_id, rng);
            } else {
                let state = Self::pick_state(rng);
                let job = self.new_job(next_id, state, rng);
                self.jobs.push(job);
                next_id += 1;
            }
            // Purged and other-cluster ids leave gaps, as in any real queue.
            if rng.random_bool(0.3) {
                next_id += rng.random_range(1..20);
            }
        }
    }

    /// A job array: running tasks followed by the pending meta-record for the rest.
    pub(crate) fn new_array(&mut self, left: usize, next_id: &mut u32, rng: &mut StdRng) {
        let meta_id = *next_id;
        let mut meta = self.new_job(meta_id, JState::Pending, rng);
        meta.part = P_CPU as u8;
        meta.kind = Kind::Cpu;
        meta.nodes = 1;
        meta.cpn = pick(rng, &[1, 2, 4, 8]);
        meta.mem = Mem::PerCpu(pick(rng, &[1000, 2000]));
        meta.gpn = 0;
        meta.gtype = 0;
        if meta.qos == Q_GPU {
            meta.qos = Q_NORMAL;
        }
        meta.time_limit = pick(rng, &[30, 60, 240, 720]);
        meta.reason = "Priority";
        meta.partial_alloc = false;
        meta.req_node = None;
        meta.array_job_id = meta_id;
        let spec = if rng.random_bool(0.2) {
            // `--array=1,3,5-7` style, nothing started yet.
            let mut t = rng.random_range(0..3u32);
            let mut ranges = Vec::new();
            for _ in 0..rng.random_range(2..5) {
                let len = rng.random_range(1..4u32);
                ranges.push((t, t + len - 1));
                t += len + rng.random_range(1..3u32);
            }
            ArraySpec { ranges, max: 0 }
        } else {
            let total = rng.random_range(10..=120u32);
            let max = pick(rng, &[0u32, 4, 8, 8, 10, 20]);
            let want = if max > 0 {
                max
            } else {
                rng.random_range(1..=8)
            };
            let run = want.min((left - 1) as u32).min(total - 1);
            for k in 0..run {
                let mut t = meta.clone();
                t.id = meta_id + 1 + k;
                t.state = JState::Running;
                t.reason = "None";
                t.array_task = Some(k);
                self.jobs.push(t);
            }
            *next_id += run;
            ArraySpec {
                ranges: vec![(run, total - 1)],
                max,
            }
        };
        meta.array_spec = Some(self.arrays.len() as u32);
        self.arrays.push(spec);
        self.jobs.push(meta);
        *next_id += 1;
    }

    /// Partition `p`'s nodes of `kind`, indexed `p * 3 + kind`.
    pub(crate) fn pools(&self, only_schedulable: bool) -> Vec<Vec<u32>> {
        let mut pools = vec![Vec::new(); PARTS.len() * 3];
        for (i, n) in self.nodes.iter().enumerate() {
            if only_schedulable && !n.schedulable {
                continue;
            }
            for (p, pool) in pools.chunks_mut(3).enumerate() {
                if n.parts & (1 << p) != 0 {
                    pool[n.kind as usize].push(i as u32);
                }
            }
        }
        pools
    }

    /// Places running and suspended jobs, biggest first; what does not fit waits.
    pub(crate) fn place_running(&mut self, rng: &mut StdRng) {
        let pools = self.pools(true);
        let mut cursors = vec![0usize; pools.len()];
        let mut order: Vec<usize> = (0..self.jobs.len())
            .filter(|&j| matches!(self.jobs[j].state, JState::Running | JState::Suspended))
            .collect();
        order.sort_by_key(|&j| (Reverse(self.jobs[j].nodes), Reverse(self.jobs[j].cpus())));
        for j in order {
            let job = &self.jobs[j];
            let r = Req {
                nodes: job.nodes,
                cpn: job.cpn,
                mem: job.mem_per_node(),
                gpn: job.gpn,
                gtype: job.gtype,
                counts_cpus: job.state == JState::Running,
            };
            let pi = usize::from(job.part) * 3 + job.kind as usize;
            match try_place(
                &mut self.nodes,
                &mut self.allocs,
                &r,
                &pools[pi],
                &mut cursors[pi],
                rng,
            ) {
                Some((start, len)) => {
                    let job = &mut self.jobs[j];
                    job.alloc_start = start;
                    job.alloc_len = len;
                    if len == 1 {
                        job.resv = self.nodes[self.allocs[start as usize].node as usize].resv;
                    }
                }
                None if self.jobs[j].array_task.is_some() => {
                    // A task that cannot run now is one that already ran.
                    self.jobs[j].state = JState::Completed;
                }
                None => {
                    let mut job = self.jobs[j].clone();
                    job.state = JState::Pending;
                    let reason = if rng.random_bool(0.7) {
                        "Resources"
                    } else {
                        "Priority"
                    };
                    self.set_pending_reason(&mut job, reason, rng);
                    self.jobs[j] = job;
                }
            }
        }
        // Array meta-records: held back by their task limit when it is reached.
        let mut running: BTreeMap<u32, u32> = BTreeMap::new();
        for j in &self.jobs {
            if j.array_task.is_some() && j.state == JState::Running {
                *running.entry(j.array_job_id).or_default() += 1;
            }
        }
        for i in 0..self.jobs.len() {
            if let Some(a) = self.jobs[i].array_spec {
                let spec = &self.arrays[a as usize];
                let run = running.get(&self.jobs[i].id).copied().unwrap_or(0);
                self.jobs[i].reason = if spec.max > 0 && run >= spec.max {
                    "JobArrayTaskLimit"
                } else if rng.random_bool(0.5) {
                    "Resources"
                } else {
                    "Priority"
                };
            }
        }
    }

    /// Gives completing and recently finished jobs the nodes and cores they ran on. They
    /// no longer hold resources, so node counters are untouched (COMPLETING only flags).
    pub(crate) fn place_history(&mut self, rng: &mut StdRng) {
        let pools = self.pools(false);
        for j in 0..self.jobs.len() {
            let job = &self.jobs[j];
            let needs = match job.state {
                JState::Completing
                | JState::Completed
                | JState::Failed
                | JState::Timeout
                | JState::OutOfMemory
                | JState::NodeFail
                | JState::Preempted => true,
                JState::Cancelled => job.ran,
                _ => false,
            };
            if !needs {
                continue;
            }
            let pool = &pools[usize::from(job.part) * 3 + job.kind as usize];
            let up = |n: &SimNode| !matches!(n.base, Base::Future | Base::Unknown | Base::Down);
            let mut cand: Vec<u32> = match job.state {
                JState::NodeFail => {
                    let down: Vec<u32> = pool
                        .iter()
                        .copied()
                        .filter(|&i| self.nodes[i as usize].base == Base::Down)
                        .collect();
                    if down.is_empty() {
                        pool.clone()
                    } else {
                        down
                    }
                }
                JState::Completing => pool
                    .iter()
                    .copied()
                    .filter(|&i| up(&self.nodes[i as usize]))
                    .collect(),
                _ => pool
                    .iter()
                    .copied()
                    .filter(|&i| {
                        !matches!(self.nodes[i as usize].base, Base::Future | Base::Unknown)
                    })
                    .collect(),
            };
            if cand.is_empty() {
                let job = &mut self.jobs[j];
                job.state = JState::Cancelled;
                job.ran = false;
                if job.reason == "None" {
                    job.reason = "Resources";
                }
                continue;
            }
            let k = usize::from(job.nodes).min(cand.len());
            let start = rng.random_range(0..cand.len());
            cand.rotate_left(start);
            cand.truncate(k);
            cand.sort_unstable();
            let min_cpus = cand
                .iter()
                .map(|&i| self.nodes[i as usize].cpus())
                .min()
                .unwrap_or(1);
            let min_gpus = cand
                .iter()
                .map(|&i| self.nodes[i as usize].gpus())
                .min()
                .unwrap_or(0);
            let min_mem = cand
                .iter()
                .map(|&i| self.nodes[i as usize].real_memory)
                .min()
                .unwrap_or(0);
            let job = &mut self.jobs[j];
            job.nodes = k as u16;
            job.cpn = job
                .cpn
                .min(u16::try_from(min_cpus).unwrap_or(u16::MAX))
                .max(1);
            job.gpn = job.gpn.min(min_gpus);
            if job.gtype > 0 {
                let g = self.nodes[cand[0] as usize].gpu.map_or(0, |g| g + 1);
                job.gtype = g;
            }
            if let Mem::PerNode(m) = job.mem {
                job.mem = Mem::PerNode(m.min(u32::try_from(min_mem).unwrap_or(u32::MAX)));
            }
            let mem = job.mem_per_node();
            job.alloc_start = self.allocs.len() as u32;
            job.alloc_len = k as u16;
            let completing = job.state == JState::Completing;
            let (cpn, gpn) = (job.cpn, job.gpn);
            for &i in &cand {
                let node = &mut self.nodes[i as usize];
                let a = cpn.div_ceil(2).min(node.cps);
                let b = cpn - a;
                let gcount = node.gpus();
                self.allocs.push(Alloc {
                    node: i,
                    mem: u32::try_from(mem).unwrap_or(u32::MAX),
                    sock: [
                        (rng.random_range(0..=node.cps - a), a),
                        (rng.random_range(0..=node.cps - b), b),
                    ],
                    gpu_start: rng.random_range(0..=gcount - gpn),
                    ngpu: gpn,
                });
                if completing {
                    node.flags |= F_COMPLETING;
                }
            }
        }
    }

    /// Base states follow from what is allocated, as slurmctld derives them.
    pub(crate) fn finish_nodes(&mut self) {
        for n in &mut self.nodes {
            if n.derive_base {
                n.base = if n.alloc_cpus == 0 {
                    Base::Idle
                } else if n.alloc_cpus >= n.cpus() {
                    Base::Allocated
                } else {
                    Base::Mixed
                };
            }
        }
    }

    /// Times, priorities, exit codes and dependencies, once every job's final state is known.
    pub(crate) fn finalize_jobs(&mut self, rng: &mut StdRng) {
        let mut failed: Vec<u32> = self
            .jobs
            .iter()
            .filter(|j| j.state == JState::Failed)
            .map(|j| j.id)
            .collect();
        failed.sort_unstable();
        let day = 86_400u32;
        for i in 0..self.jobs.len() {
            let earlier = if i > 0 {
                Some(self.jobs[rng.random_range(0..i)].id)
            } else {
                None
            };
            let job = &mut self.jobs[i];
            let tl = job.time_limit.saturating_mul(60);
            let wait = |rng: &mut StdRng| -> u32 {
                let x: f64 = rng.random();
                (x * x * 6.0 * 3600.0) as u32
            };
            match job.state {
                JState::Running | JState::Suspended => {
                    let run = rng.random_range(30..(tl * 19 / 20).clamp(31, 7 * day));
                    job.start = NOW - run;
                    job.submit = job.start - wait(rng);
                    job.end = job.start + tl;
                    if job.state == JState::Suspended {
                        job.suspend = NOW - rng.random_range(10..run.clamp(11, 3600));
                        job.pre_sus = job.suspend - job.start;
                    }
                }
                JState::Pending => {}
                JState::Cancelled if !job.ran => {}
                _ => {
                    job.end = if job.state == JState::Completing {
                        NOW - rng.random_range(1..120)
                    } else {
                        NOW - rng.random_range(0..MIN_JOB_AGE)
                    };
                    let run = match job.state {
                        JState::Timeout => tl + rng.random_range(0..60),
                        JState::Failed => rng.random_range(1..tl.clamp(2, 600)),
                        _ => rng.random_range(1..tl.max(2)),
                    };
                    job.start = job.end - run;
                    job.submit = job.start - wait(rng);
                    if job.state == JState::Preempted {
                        job.preempt = job.end - rng.random_range(0..30);
                    }
                }
            }
            let started = job.start != 0;
            if started {
                job.eligible = job.submit;
                job.accrue = job.submit;
                job.last_eval = job.start;
            } else {
                // Pending, or cancelled while pending.
                job.submit = NOW - rng.random_range(60..3 * day);
                job.eligible = job.submit;
                job.accrue = job.submit;
                job.last_eval = NOW - rng.random_range(0..120);
                match job.reason {
                    "JobHeldUser" | "JobHeldAdmin" | "Dependency" | "DependencyNeverSatisfied" => {
                        job.eligible = 0;
                        job.accrue = 0;
                        job.last_eval = job.submit;
                    }
                    "BeginTime" => {
                        job.eligible = NOW + rng.random_range(3600..2 * day);
                        job.accrue = 0;
                    }
                    "Resources" | "Priority" if rng.random_bool(0.5) => {
                        job.start = NOW + rng.random_range(60..day);
                        job.end = job.start + tl;
                    }
                    _ => {}
                }
                if job.array_spec.is_some() {
                    job.eligible = 0;
                }
                if job.state == JState::Cancelled {
                    job.end = NOW - rng.random_range(0..MIN_JOB_AGE);
                    job.start = job.end;
                    job.last_eval = job.end;
                }
                match job.reason {
                    "Dependency" => job.dep = earlier.map(|id| (id, false)),
                    "DependencyNeverSatisfied" => {
                        // A job can only depend on one submitted before it.
                        let before = failed.partition_point(|&id| id < job.id);
                        let on = if before == 0 {
                            earlier
                        } else {
                            Some(failed[rng.random_range(0..before)])
                        };
                        job.dep = on.map(|id| (id, true));
                    }
                    _ => {}
                }
            }
            let qos_boost = match job.qos {
                Q_HIGH => 10_000,
                Q_GPU => 2_000,
                Q_NORMAL => 1_000,
                _ => 0,
            };
            let age = ((NOW.saturating_sub(job.submit)) / 60).min(7_000);
            job.priority = if matches!(job.reason, "JobHeldUser" | "JobHeldAdmin") {
                0
            } else {
                qos_boost + age + rng.random_range(0..5_000)
            };
            let (exit, reason) = match job.state {
                JState::Completed | JState::Completing => (0, "None"),
                JState::Failed => {
                    if rng.random_bool(0.2) {
                        (pick(rng, &[6, 11]), "RaisedSignal")
                    } else {
                        (pick(rng, &[256, 256, 512, 768, 32512]), "NonZeroExitCode")
                    }
                }
                JState::Timeout => (15, "TimeLimit"),
                JState::OutOfMemory => (125, "OutOfMemory"),
                JState::NodeFail => (0, "NodeDown"),
                JState::Preempted => (15, "None"),
                JState::Cancelled if job.ran => (15, "None"),
                _ => (0, job.reason),
            };
            job.exit_code = exit;
            job.reason = reason;
        }
    }
}
