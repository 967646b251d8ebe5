//! The cluster model: nodes, jobs, allocations, accounts, and the placement helpers.

use crate::catalogue::{Kind, F_NOT_RESPONDING, GPU_MODELS};
use rand::rngs::StdRng;
use rand::Rng;
use std::fmt::Write as _;

/// Size and seed of a simulated cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimSpec {
    pub nodes: usize,
    /// Job records (array meta-records and array tasks each count as one record).
    pub jobs: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    Allocated,
    Mixed,
    Idle,
    Down,
    Future,
    Unknown,
}

impl Base {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Base::Allocated => "allocated",
            Base::Mixed => "mixed",
            Base::Idle => "idle",
            Base::Down => "down",
            Base::Future => "future",
            Base::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SimNode {
    pub(crate) kind: Kind,
    pub(crate) num: u32,
    /// Cores per socket; every node has two sockets and one thread per core.
    pub(crate) cps: u16,
    /// MiB.
    pub(crate) real_memory: u64,
    pub(crate) gpu: Option<u8>,
    pub(crate) features: &'static str,
    pub(crate) base: Base,
    /// Base state follows from the allocations (allocated/mixed/idle) once jobs are placed.
    pub(crate) derive_base: bool,
    pub(crate) flags: u16,
    pub(crate) parts: u8,
    /// Whether the placement pass may start jobs here.
    pub(crate) schedulable: bool,
    pub(crate) resv: u8,
    pub(crate) reason: &'static str,
    pub(crate) reason_by: &'static str,
    pub(crate) next_core: [u16; 2],
    pub(crate) next_gpu: u8,
    pub(crate) alloc_cpus: u32,
    pub(crate) alloc_mem: u64,
    pub(crate) gpu_used: u8,
}

impl SimNode {
    pub(crate) fn new(
        kind: Kind,
        num: u32,
        cps: u16,
        mem_gb: u64,
        gpu: Option<u8>,
        features: &'static str,
    ) -> SimNode {
        SimNode {
            kind,
            num,
            cps,
            real_memory: mem_gb * 1000,
            gpu,
            features,
            base: Base::Idle,
            derive_base: true,
            flags: 0,
            parts: 0,
            schedulable: true,
            resv: 0,
            reason: "",
            reason_by: "",
            next_core: [0, 0],
            next_gpu: 0,
            alloc_cpus: 0,
            alloc_mem: 0,
            gpu_used: 0,
        }
    }
    pub(crate) fn cpus(&self) -> u32 {
        2 * u32::from(self.cps)
    }
    pub(crate) fn gpus(&self) -> u8 {
        self.gpu.map_or(0, |g| GPU_MODELS[usize::from(g)].count)
    }
    pub(crate) fn name(&self) -> String {
        node_name(self.kind, self.num)
    }
    /// Never registered or stopped answering: slurmctld has no load or memory figures.
    pub(crate) fn unregistered(&self) -> bool {
        self.flags & F_NOT_RESPONDING != 0 || matches!(self.base, Base::Future | Base::Unknown)
    }
}

pub(crate) fn node_name(kind: Kind, num: u32) -> String {
    format!("{}-{:05}", kind.prefix(), num)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JState {
    Pending,
    Running,
    Suspended,
    Completing,
    Completed,
    Cancelled,
    Failed,
    Timeout,
    OutOfMemory,
    NodeFail,
    Preempted,
}

impl JState {
    pub(crate) fn upper(self) -> &'static str {
        match self {
            JState::Pending => "PENDING",
            JState::Running => "RUNNING",
            JState::Suspended => "SUSPENDED",
            JState::Completing => "COMPLETING",
            JState::Completed => "COMPLETED",
            JState::Cancelled => "CANCELLED",
            JState::Failed => "FAILED",
            JState::Timeout => "TIMEOUT",
            JState::OutOfMemory => "OUT_OF_MEMORY",
            JState::NodeFail => "NODE_FAIL",
            JState::Preempted => "PREEMPTED",
        }
    }
    pub(crate) fn lower(self) -> String {
        self.upper().to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Mem {
    PerCpu(u32),
    PerNode(u32),
}

#[derive(Debug, Clone)]
pub(crate) struct SimJob {
    pub(crate) id: u32,
    pub(crate) state: JState,
    /// Only for CANCELLED: whether it had started (and so has `job_resources`).
    pub(crate) ran: bool,
    pub(crate) reason: &'static str,
    pub(crate) part: u8,
    pub(crate) kind: Kind,
    pub(crate) assoc: u32,
    pub(crate) qos: u8,
    pub(crate) name: u8,
    pub(crate) nodes: u16,
    pub(crate) cpn: u16,
    pub(crate) mem: Mem,
    pub(crate) gpn: u8,
    /// 0 = untyped GPU request, else `GPU_MODELS` index + 1.
    pub(crate) gtype: u8,
    pub(crate) time_limit: u32,
    pub(crate) submit: u32,
    pub(crate) eligible: u32,
    pub(crate) accrue: u32,
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) last_eval: u32,
    pub(crate) suspend: u32,
    pub(crate) pre_sus: u32,
    pub(crate) preempt: u32,
    pub(crate) priority: u32,
    pub(crate) exit_code: u32,
    pub(crate) array_job_id: u32,
    pub(crate) array_task: Option<u32>,
    pub(crate) array_spec: Option<u32>,
    pub(crate) alloc_start: u32,
    pub(crate) alloc_len: u16,
    pub(crate) dep: Option<(u32, bool)>,
    pub(crate) license: u8,
    pub(crate) resv: u8,
    pub(crate) partial_alloc: bool,
    /// `ReqNodeNotAvail`: the unavailable node it asked for.
    pub(crate) req_node: Option<u32>,
    pub(crate) desc_nodes_down: bool,
}

impl SimJob {
    pub(crate) fn cpus(&self) -> u64 {
        u64::from(self.cpn) * u64::from(self.nodes)
    }
    pub(crate) fn mem_per_node(&self) -> u64 {
        match self.mem {
            Mem::PerCpu(m) => u64::from(m) * u64::from(self.cpn),
            Mem::PerNode(m) => u64::from(m),
        }
    }
}

/// One node's share of a job: cores per socket as `(first, count)`, GPUs as a contiguous range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Alloc {
    pub(crate) node: u32,
    pub(crate) mem: u32,
    pub(crate) sock: [(u16, u16); 2],
    pub(crate) gpu_start: u8,
    pub(crate) ngpu: u8,
}

#[derive(Debug, Clone)]
pub(crate) struct ArraySpec {
    pub(crate) ranges: Vec<(u32, u32)>,
    pub(crate) max: u32,
}

impl ArraySpec {
    pub(crate) fn tasks(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| u64::from(b - a + 1)).sum()
    }
    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        for (i, (a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            if a == b {
                let _ = write!(s, "{a}");
            } else {
                let _ = write!(s, "{a}-{b}");
            }
        }
        if self.max > 0 {
            let _ = write!(s, "%{}", self.max);
        }
        s
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) name: &'static str,
    pub(crate) parent: Option<u16>,
    pub(crate) grp_cpus: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) uid: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Assoc {
    pub(crate) account: u16,
    pub(crate) user: Option<u16>,
    pub(crate) is_default: bool,
    pub(crate) max_jobs: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Special {
    Future,
    Unknown,
    DownNotResponding,
    DownAdmin,
    Drained,
    Draining,
    PoweredDown,
    Planned,
    Fail,
    IdlePool,
}

/// Share of nodes in each special state; with 40+ nodes each gets at least one node.
pub(crate) const SPECIALS: [(Special, f64); 10] = [
    (Special::Future, 0.005),
    (Special::Unknown, 0.003),
    (Special::DownNotResponding, 0.015),
    (Special::DownAdmin, 0.005),
    (Special::Drained, 0.015),
    (Special::Draining, 0.015),
    (Special::PoweredDown, 0.015),
    (Special::Planned, 0.005),
    (Special::Fail, 0.003),
    (Special::IdlePool, 0.04),
];

/// A deterministic synthetic cluster; see the module docs.
#[derive(Debug)]
pub struct SimCluster {
    pub(crate) seed: u64,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) jobs: Vec<SimJob>,
    pub(crate) allocs: Vec<Alloc>,
    pub(crate) arrays: Vec<ArraySpec>,
    pub(crate) accounts: Vec<Account>,
    pub(crate) users: Vec<User>,
    pub(crate) assocs: Vec<Assoc>,
    /// Indices into `assocs` of the user associations jobs run under.
    pub(crate) user_assocs: Vec<u32>,
    pub(crate) gpu_models_present: [bool; 3],
    /// Whether partition `p` has nodes of kind `k`: `part_kinds[p][k]`.
    pub(crate) part_kinds: [[bool; 3]; 5],
}

pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_4476_D1CE_4E5B);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn pick<T: Copy>(rng: &mut StdRng, xs: &[T]) -> T {
    xs[rng.random_range(0..xs.len())]
}

/// Slurm's `convert_num_unit2(..., CONVERT_NUM_UNIT_EXACT)` for a MiB count: `62.50G`,
/// `32000M`, `125G`; only scales while the value stays a multiple of half a unit.
pub(crate) fn mem_str(mib: u64) -> String {
    const UNITS: [&str; 7] = ["", "K", "M", "G", "T", "P", "?"];
    if mib == 0 {
        return "0".to_string();
    }
    let mut num = mib as f64;
    let mut unit = 2usize;
    while num >= 1024.0 && (num as u64).is_multiple_of(512) {
        num /= 1024.0;
        unit += 1;
    }
    let unit = UNITS[unit.min(6)];
    if num.fract() == 0.0 {
        format!("{}{unit}", num as u64)
    } else {
        format!("{num:.2}{unit}")
    }
}

/// Slurm hostlist notation for node indices (`cpu-[00001-00003,00007],gpu-00002`).
pub(crate) fn hostlist(nodes: &[SimNode], idx: &mut [u32]) -> String {
    idx.sort_unstable();
    let mut out = String::new();
    let mut i = 0;
    while i < idx.len() {
        let kind = nodes[idx[i] as usize].kind;
        let mut j = i;
        while j < idx.len() && nodes[idx[j] as usize].kind == kind {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        let group = &idx[i..j];
        if group.len() == 1 {
            out.push_str(&nodes[group[0] as usize].name());
        } else {
            let _ = write!(out, "{}-[", kind.prefix());
            let mut k = 0;
            while k < group.len() {
                let mut e = k;
                while e + 1 < group.len() && group[e + 1] == group[e] + 1 {
                    e += 1;
                }
                if k > 0 {
                    out.push(',');
                }
                let a = nodes[group[k] as usize].num;
                let b = nodes[group[e] as usize].num;
                if a == b {
                    let _ = write!(out, "{a:05}");
                } else {
                    let _ = write!(out, "{a:05}-{b:05}");
                }
                k = e + 1;
            }
            out.push(']');
        }
        i = j;
    }
    out
}

/// GPU index list as slurmrestd prints it inside `IDX:` (`0-1,4`), `N/A` when none.
pub(crate) fn idx_str(mask: u8) -> String {
    if mask == 0 {
        return "N/A".to_string();
    }
    let mut out = String::new();
    let mut i = 0u8;
    while i < 8 {
        if mask & (1 << i) != 0 {
            let mut e = i;
            while e + 1 < 8 && mask & (1 << (e + 1)) != 0 {
                e += 1;
            }
            if !out.is_empty() {
                out.push(',');
            }
            if e == i {
                let _ = write!(out, "{i}");
            } else {
                let _ = write!(out, "{i}-{e}");
            }
            i = e + 1;
        } else {
            i += 1;
        }
    }
    out
}

pub(crate) fn gpu_mask(start: u8, n: u8) -> u8 {
    ((((1u16 << n) - 1) << start) & 0xff) as u8
}

/// A request the placement pass tries to satisfy.
pub(crate) struct Req {
    pub(crate) nodes: u16,
    pub(crate) cpn: u16,
    pub(crate) mem: u64,
    pub(crate) gpn: u8,
    pub(crate) gtype: u8,
    pub(crate) counts_cpus: bool,
}

pub(crate) fn fits(n: &SimNode, r: &Req, multi: bool) -> bool {
    let free = (n.cps - n.next_core[0]) + (n.cps - n.next_core[1]);
    if free < r.cpn || n.alloc_mem + r.mem > n.real_memory || (multi && n.resv != 0) {
        return false;
    }
    if r.gpn == 0 {
        return true;
    }
    match n.gpu {
        Some(g) => {
            (r.gtype == 0 || r.gtype == g + 1)
                && GPU_MODELS[usize::from(g)].count - n.next_gpu >= r.gpn
        }
        None => false,
    }
}

/// Takes cores split evenly over both sockets (Slurm's default block:cyclic), like the capture.
pub(crate) fn take(n: &mut SimNode, node: u32, r: &Req) -> Alloc {
    let f0 = n.cps - n.next_core[0];
    let f1 = n.cps - n.next_core[1];
    let mut a = r.cpn.div_ceil(2).min(f0);
    let mut b = r.cpn - a;
    if b > f1 {
        b = f1;
        a = r.cpn - b;
    }
    let al = Alloc {
        node,
        mem: u32::try_from(r.mem).unwrap_or(u32::MAX),
        sock: [(n.next_core[0], a), (n.next_core[1], b)],
        gpu_start: n.next_gpu,
        ngpu: r.gpn,
    };
    n.next_core[0] += a;
    n.next_core[1] += b;
    n.alloc_mem += r.mem;
    if r.counts_cpus {
        n.alloc_cpus += u32::from(r.cpn);
    }
    n.gpu_used |= gpu_mask(n.next_gpu, r.gpn);
    n.next_gpu += r.gpn;
    al
}

pub(crate) fn try_place(
    nodes: &mut [SimNode],
    allocs: &mut Vec<Alloc>,
    r: &Req,
    pool: &[u32],
    cursor: &mut usize,
    rng: &mut StdRng,
) -> Option<(u32, u16)> {
    if pool.is_empty() {
        return None;
    }
    let len = pool.len();
    let mut chosen: Vec<u32> = Vec::new();
    if r.nodes <= 1 {
        for _ in 0..8 {
            let i = pool[rng.random_range(0..len)];
            if fits(&nodes[i as usize], r, false) {
                chosen.push(i);
                break;
            }
        }
        if chosen.is_empty() {
            for step in 0..len.min(64) {
                let pos = (*cursor + step) % len;
                if fits(&nodes[pool[pos] as usize], r, false) {
                    *cursor = pos;
                    chosen.push(pool[pos]);
                    break;
                }
            }
            if chosen.is_empty() {
                *cursor = (*cursor + 64) % len;
                return None;
            }
        }
    } else {
        let start = rng.random_range(0..len);
        for step in 0..len.min(512) {
            let i = pool[(start + step) % len];
            if fits(&nodes[i as usize], r, true) {
                chosen.push(i);
                if chosen.len() == usize::from(r.nodes) {
                    break;
                }
            }
        }
        if chosen.len() < usize::from(r.nodes) {
            return None;
        }
        chosen.sort_unstable();
    }
    let first = u32::try_from(allocs.len()).ok()?;
    for &i in &chosen {
        let al = take(&mut nodes[i as usize], i, r);
        allocs.push(al);
    }
    Some((first, u16::try_from(chosen.len()).ok()?))
}
