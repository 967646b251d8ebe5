//! Building the model: nodes and the account tree.

use crate::catalogue::{
    Kind, CLUSTER, DOWN_REASONS, DRAIN_REASONS, FAIL_REASON, F_DRAIN, F_FAIL, F_MAINT,
    F_NOT_RESPONDING, F_PLANNED, F_POWERED_DOWN, F_RESERVED, GPU_DRAIN_REASONS, GPU_MODELS, P_CPU,
    P_DEBUG, P_GPU, P_HIMEM, P_PREEMPT, RESV_COURSE, RESV_MAINT, SUB_ACCOUNTS, SURNAMES,
    TOP_ACCOUNTS, USERS,
};
use crate::model::{
    pick, Account, Assoc, Base, SimCluster, SimNode, SimSpec, Special, User, SPECIALS,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

impl SimCluster {
    /// Builds the whole cluster model: nodes, accounts, jobs, their placement and times.
    pub fn new(spec: SimSpec) -> SimCluster {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let mut c = SimCluster {
            seed: spec.seed,
            nodes: Vec::with_capacity(spec.nodes),
            jobs: Vec::with_capacity(spec.jobs),
            allocs: Vec::new(),
            arrays: Vec::new(),
            accounts: Vec::new(),
            users: Vec::new(),
            assocs: Vec::new(),
            user_assocs: Vec::new(),
            gpu_models_present: [false; 3],
            part_kinds: [[false; 3]; 5],
        };
        c.build_nodes(spec.nodes, &mut rng);
        c.build_accounts(&mut rng);
        c.build_jobs(spec.jobs, &mut rng);
        c.place_running(&mut rng);
        c.place_history(&mut rng);
        c.finish_nodes();
        c.finalize_jobs(&mut rng);
        c
    }

    /// Cluster name used in every record.
    pub fn cluster_name(&self) -> &str {
        CLUSTER
    }

    pub(crate) fn build_nodes(&mut self, n: usize, rng: &mut StdRng) {
        let share = |f: f64| ((n as f64) * f).round().max(1.0) as usize;
        let (n_gpu, n_him) = if n >= 3 {
            (share(0.15), share(0.10))
        } else {
            (0, 0)
        };
        let n_cpu = n - n_gpu - n_him;
        // Hardware comes in racks of identical nodes.
        let mut cfg = (16u16, 128u64, "cpu,icelake");
        for i in 0..n_cpu {
            if i % 40 == 0 {
                cfg = match rng.random_range(0..20) {
                    0 | 1 => (16, pick(rng, &[128, 192]), "cpu,icelake"),
                    2..=5 => (24, pick(rng, &[192, 256]), "cpu,icelake"),
                    6..=11 => (32, pick(rng, &[256, 384]), "cpu,milan"),
                    12..=16 => (48, pick(rng, &[384, 512]), "cpu,sapphirerapids"),
                    _ => (64, 512, "cpu,genoa"),
                };
            }
            self.nodes.push(SimNode::new(
                Kind::Cpu,
                i as u32 + 1,
                cfg.0,
                cfg.1,
                None,
                cfg.2,
            ));
        }
        let mut model = 0u8;
        for i in 0..n_gpu {
            if i % 16 == 0 {
                let x: f64 = rng.random();
                model = if x < GPU_MODELS[0].weight {
                    0
                } else if x < GPU_MODELS[0].weight + GPU_MODELS[1].weight {
                    1
                } else {
                    2
                };
            }
            let m = &GPU_MODELS[usize::from(model)];
            self.gpu_models_present[usize::from(model)] = true;
            self.nodes.push(SimNode::new(
                Kind::Gpu,
                i as u32 + 1,
                m.cores / 2,
                m.mem_gb,
                Some(model),
                m.features,
            ));
        }
        let mut hcfg = (32u16, 1024u64);
        for i in 0..n_him {
            if i % 8 == 0 {
                hcfg = if rng.random_bool(0.5) {
                    (32, 1024)
                } else {
                    (48, 2048)
                };
            }
            self.nodes.push(SimNode::new(
                Kind::Himem,
                i as u32 + 1,
                hcfg.0,
                hcfg.1,
                None,
                "himem,icelake",
            ));
        }

        let n_debug = n_cpu.div_ceil(25) as u32;
        let preempt_from = (n_cpu / 2) as u32;
        for node in &mut self.nodes {
            node.parts = match node.kind {
                Kind::Cpu => {
                    let mut p = 1 << P_CPU;
                    if node.num <= n_debug {
                        p |= 1 << P_DEBUG;
                    }
                    if node.num > preempt_from {
                        p |= 1 << P_PREEMPT;
                    }
                    p
                }
                Kind::Gpu => (1 << P_GPU) | (1 << P_PREEMPT),
                Kind::Himem => 1 << P_HIMEM,
            };
        }

        for node in &self.nodes {
            for (p, kinds) in self.part_kinds.iter_mut().enumerate() {
                if node.parts & (1 << p) != 0 {
                    kinds[node.kind as usize] = true;
                }
            }
        }

        // An active maintenance reservation on the last cpu rack, a course reservation on the
        // first gpu nodes, then the other special states scattered at random.
        let mut taken = vec![false; n];
        if n_cpu >= 10 {
            let rack = (n_cpu - n_cpu.div_ceil(100))..n_cpu;
            for (node, t) in self.nodes[rack.clone()].iter_mut().zip(&mut taken[rack]) {
                node.flags |= F_MAINT | F_RESERVED;
                node.resv = RESV_MAINT;
                node.schedulable = false;
                node.derive_base = false;
                *t = true;
            }
        }
        if n_gpu >= 2 {
            let course = n_cpu..n_cpu + n_gpu.div_ceil(30);
            for (node, t) in self.nodes[course.clone()]
                .iter_mut()
                .zip(&mut taken[course])
            {
                node.flags |= F_RESERVED;
                node.resv = RESV_COURSE;
                *t = true;
            }
        }
        let mut order: Vec<usize> = (0..n).filter(|&i| !taken[i]).collect();
        order.shuffle(rng);
        let mut it = order.into_iter();
        for (sp, frac) in SPECIALS {
            let mut k = ((n as f64) * frac).round() as usize;
            if n >= 40 {
                k = k.max(1);
            }
            for i in it.by_ref().take(k) {
                let node = &mut self.nodes[i];
                let drain_reason = if node.gpu.is_some() && rng.random_bool(0.5) {
                    pick(rng, &GPU_DRAIN_REASONS)
                } else {
                    pick(rng, &DRAIN_REASONS)
                };
                let (base, flags, sched, reason, by) = match sp {
                    Special::Future => (Some(Base::Future), 0, false, "", ""),
                    Special::Unknown => (Some(Base::Unknown), 0, false, "", ""),
                    Special::DownNotResponding => (
                        Some(Base::Down),
                        F_NOT_RESPONDING,
                        false,
                        "Not responding",
                        "slurm",
                    ),
                    Special::DownAdmin => {
                        (Some(Base::Down), 0, false, pick(rng, &DOWN_REASONS), "root")
                    }
                    Special::Drained => (Some(Base::Idle), F_DRAIN, false, drain_reason, "root"),
                    Special::Draining => (None, F_DRAIN, true, drain_reason, "root"),
                    Special::PoweredDown => (Some(Base::Idle), F_POWERED_DOWN, false, "", ""),
                    Special::Planned => (Some(Base::Idle), F_PLANNED, false, "", ""),
                    Special::Fail => (None, F_FAIL, true, FAIL_REASON, "root"),
                    Special::IdlePool => (None, 0, false, "", ""),
                };
                if let Some(b) = base {
                    node.base = b;
                    node.derive_base = false;
                }
                node.flags |= flags;
                node.schedulable = sched;
                node.reason = reason;
                node.reason_by = by;
            }
        }
    }

    pub(crate) fn build_accounts(&mut self, rng: &mut StdRng) {
        self.accounts.push(Account {
            name: "root",
            parent: None,
            grp_cpus: None,
        });
        let mut leaves = Vec::new();
        for (t, top) in TOP_ACCOUNTS.iter().enumerate() {
            let top_idx = self.accounts.len() as u16;
            self.accounts.push(Account {
                name: top,
                parent: Some(0),
                grp_cpus: None,
            });
            for sub in SUB_ACCOUNTS[t] {
                leaves.push(self.accounts.len() as u16);
                self.accounts.push(Account {
                    name: sub,
                    parent: Some(top_idx),
                    grp_cpus: None,
                });
            }
        }
        let mut combos: Vec<(u8, u8)> = (0..26u8)
            .flat_map(|a| (0..SURNAMES.len() as u8).map(move |s| (a, s)))
            .collect();
        combos.shuffle(rng);
        combos.truncate(USERS);
        combos.sort_unstable();
        for (i, (a, s)) in combos.iter().enumerate() {
            self.users.push(User {
                name: format!("{}{}", char::from(b'a' + a), SURNAMES[usize::from(*s)]),
                uid: 20_001 + i as u32,
            });
        }
        // (account, user, is_default) memberships; each user in one to three accounts.
        let mut member: Vec<(u16, u16, bool)> = Vec::new();
        for u in 0..self.users.len() as u16 {
            let n = match rng.random_range(0..10) {
                0..=5 => 1,
                6..=8 => 2,
                _ => 3,
            };
            let mut mine: Vec<u16> = Vec::new();
            while mine.len() < n {
                let a = if mine.is_empty() || rng.random_bool(0.8) {
                    pick(rng, &leaves)
                } else {
                    rng.random_range(1..self.accounts.len() as u16)
                };
                if !mine.contains(&a) {
                    mine.push(a);
                }
            }
            for (k, a) in mine.into_iter().enumerate() {
                member.push((a, u, k == 0));
            }
        }
        member.sort_unstable();
        // slurmdbd's order: root, then each account followed by its users, root's user last.
        self.assocs.push(Assoc {
            account: 0,
            user: None,
            is_default: false,
            max_jobs: None,
        });
        let mut m = member.into_iter().peekable();
        for a in 1..self.accounts.len() as u16 {
            self.assocs.push(Assoc {
                account: a,
                user: None,
                is_default: false,
                max_jobs: None,
            });
            while let Some(&(acct, u, def)) = m.peek() {
                if acct != a {
                    break;
                }
                m.next();
                self.user_assocs.push(self.assocs.len() as u32);
                self.assocs.push(Assoc {
                    account: a,
                    user: Some(u),
                    is_default: def,
                    max_jobs: None,
                });
            }
        }
        self.assocs.push(Assoc {
            account: 0,
            user: None,
            is_default: true,
            max_jobs: None,
        });
    }
}
