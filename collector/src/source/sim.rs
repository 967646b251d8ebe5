//! A deterministic synthetic Slurm cluster that answers like slurmrestd 22.05 (OpenAPI v0.0.38).
//!
//! Benchmarks and end-to-end tests need a cluster of 10,000 nodes and 100,000 jobs, and nobody
//! has one at hand. [`SimCluster`] builds a compact, seeded model of such a cluster and streams
//! the bytes slurmrestd would send for each endpoint: the same keys in the same order, the same
//! JSON types, and slurmrestd's own formatting (two-space indent, `\/`-escaped slashes, empty
//! containers broken over two lines), so the exporter's real parse path runs on it and the
//! benchmark pays for realistic document sizes. [`SimTruth`] is what the exporter must report.
//!
//! Node counters follow slurmctld: RUNNING jobs hold cores, memory and GPUs; SUSPENDED jobs
//! give their cores back but keep memory and GPUs; COMPLETING and recently finished jobs hold
//! nothing (COMPLETING only flags the node) yet still list the cores they ran on.
//!
//! Output depends only on the [`SimSpec`] (and on `rand`'s `StdRng` stream for a seed), never on
//! the wall clock: "now" is the fixed epoch [`NOW`].

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

/// Ordered JSON object literal for [`J`] trees: `obj! { "key": value, ... }`.
macro_rules! obj {
    ($($k:literal : $v:expr),* $(,)?) => { J::O(vec![$(($k, J::from($v))),*]) };
}

/// "Now" for every generated document, so output never depends on the wall clock.
pub const NOW: u32 = 1_795_860_000;
const CLUSTER: &str = "sim";
const FIRST_JOB_ID: u32 = 4_000_001;
/// slurmctld keeps finished jobs for `MinJobAge` (300 s by default) before purging them.
const MIN_JOB_AGE: u32 = 300;

/// Size and seed of a simulated cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimSpec {
    pub nodes: usize,
    /// Job records (array meta-records and array tasks each count as one record).
    pub jobs: usize,
    pub seed: u64,
}

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

// ---------------------------------------------------------------------------------------------
// slurmrestd's JSON formatting
// ---------------------------------------------------------------------------------------------

/// serde_json formatter that reproduces slurmrestd's serializer byte for byte: two-space
/// pretty printing, `/` escaped as `\/`, and empty arrays/objects still broken over two lines.
struct SlurmFormatter {
    level: usize,
}

const SPACES: &[u8; 64] = b"                                                                ";

fn indent<W: ?Sized + Write>(w: &mut W, level: usize) -> io::Result<()> {
    let mut n = level * 2;
    while n > 0 {
        let k = n.min(SPACES.len());
        w.write_all(&SPACES[..k])?;
        n -= k;
    }
    Ok(())
}

impl serde_json::ser::Formatter for SlurmFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        w.write_all(b"\n")?;
        indent(w, self.level)?;
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        indent(w, self.level)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        w.write_all(b"\n")?;
        indent(w, self.level)?;
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        indent(w, self.level)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        Ok(())
    }
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        frag: &str,
    ) -> io::Result<()> {
        let mut rest = frag;
        while let Some(p) = rest.find('/') {
            w.write_all(&rest.as_bytes()[..p])?;
            w.write_all(b"\\/")?;
            rest = &rest[p + 1..];
        }
        w.write_all(rest.as_bytes())
    }
}

fn to_slurm_json<T: Serialize + ?Sized, W: Write>(
    w: &mut W,
    level: usize,
    v: &T,
) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, SlurmFormatter { level });
    v.serialize(&mut ser).map_err(io::Error::from)
}

#[derive(Clone, Copy)]
enum Api {
    Slurm,
    Slurmdb,
}

/// Writes `{ "meta": ..., "errors": [], "<key>": ` so the caller can stream the payload.
fn write_head<W: Write>(w: &mut W, api: Api, key: &str) -> io::Result<()> {
    let (ty, name) = match api {
        Api::Slurm => ("openapi/v0.0.38", "Slurm OpenAPI v0.0.38"),
        Api::Slurmdb => ("openapi/dbv0.0.38", "Slurm OpenAPI DB v0.0.38"),
    };
    let meta = obj! {
        "plugin": obj! { "type": ty, "name": name },
        "Slurm": obj! {
            "version": obj! { "major": 22u32, "micro": 8u32, "minor": 5u32 },
            "release": "22.05.8",
        },
    };
    w.write_all(b"{\n  \"meta\": ")?;
    to_slurm_json(w, 1, &meta)?;
    write!(w, ",\n  \"errors\": [\n  ],\n  \"{key}\": ")
}

/// Streams a whole document whose payload is a list, one element at a time, so a
/// 100,000-job document is never held in memory.
fn write_list_doc<I, T>(w: &mut dyn Write, api: Api, key: &str, items: I) -> io::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Serialize,
{
    let mut out = BufWriter::with_capacity(1 << 16, w);
    write_head(&mut out, api, key)?;
    out.write_all(b"[")?;
    let mut first = true;
    for item in items {
        out.write_all(if first { b"\n    " } else { b",\n    " })?;
        first = false;
        to_slurm_json(&mut out, 2, &item)?;
    }
    out.write_all(b"\n  ]\n}")?;
    out.flush()
}

/// A small ordered JSON tree for the little documents, where key order matters but
/// a dedicated struct per nested object would be noise.
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    Str(&'static str),
    S(String),
    A(Vec<J>),
    O(Vec<(&'static str, J)>),
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::U(n) => s.serialize_u64(*n),
            J::I(n) => s.serialize_i64(*n),
            J::F(x) => s.serialize_f64(*x),
            J::Str(x) => s.serialize_str(x),
            J::S(x) => s.serialize_str(x),
            J::A(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for x in v {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            J::O(v) => {
                let mut m = s.serialize_map(Some(v.len()))?;
                for (k, x) in v {
                    m.serialize_entry(k, x)?;
                }
                m.end()
            }
        }
    }
}

impl From<()> for J {
    fn from(_: ()) -> J {
        J::Null
    }
}
impl From<bool> for J {
    fn from(b: bool) -> J {
        J::Bool(b)
    }
}
impl From<u32> for J {
    fn from(n: u32) -> J {
        J::U(n.into())
    }
}
impl From<u64> for J {
    fn from(n: u64) -> J {
        J::U(n)
    }
}
impl From<i32> for J {
    fn from(n: i32) -> J {
        J::I(n.into())
    }
}
impl From<f64> for J {
    fn from(x: f64) -> J {
        J::F(x)
    }
}
impl From<&'static str> for J {
    fn from(s: &'static str) -> J {
        J::Str(s)
    }
}
impl From<String> for J {
    fn from(s: String) -> J {
        J::S(s)
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> J {
        J::A(v)
    }
}
impl From<Vec<&'static str>> for J {
    fn from(v: Vec<&'static str>) -> J {
        J::A(v.into_iter().map(J::Str).collect())
    }
}
impl<T: Into<J>> From<Option<T>> for J {
    fn from(o: Option<T>) -> J {
        o.map_or(J::Null, Into::into)
    }
}

fn empty() -> J {
    J::A(Vec::new())
}

// ---------------------------------------------------------------------------------------------
// Static catalogue
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cpu = 0,
    Gpu = 1,
    Himem = 2,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Cpu => "cpu",
            Kind::Gpu => "gpu",
            Kind::Himem => "himem",
        }
    }
}

struct GpuModel {
    gres_type: &'static str,
    count: u8,
    cores: u16,
    mem_gb: u64,
    features: &'static str,
    weight: f64,
}

const GPU_MODELS: [GpuModel; 3] = [
    GpuModel {
        gres_type: "a100",
        count: 4,
        cores: 64,
        mem_gb: 512,
        features: "gpu,a100",
        weight: 0.5,
    },
    GpuModel {
        gres_type: "h100",
        count: 8,
        cores: 96,
        mem_gb: 1024,
        features: "gpu,h100",
        weight: 0.35,
    },
    GpuModel {
        gres_type: "a100_3g.20gb",
        count: 2,
        cores: 64,
        mem_gb: 512,
        features: "gpu,a100,mig",
        weight: 0.15,
    },
];

struct PartDef {
    name: &'static str,
    default: bool,
    default_time: u32,
    max_time: u32,
    tier: u32,
    max_nodes: i32,
    preempt_mode: &'static str,
    time_limits: &'static [u32],
}

const P_CPU: usize = 0;
const P_GPU: usize = 1;
const P_HIMEM: usize = 2;
const P_DEBUG: usize = 3;
const P_PREEMPT: usize = 4;
const PARTS: [PartDef; 5] = [
    PartDef {
        name: "cpu",
        default: true,
        default_time: 60,
        max_time: 4320,
        tier: 10,
        max_nodes: -1,
        preempt_mode: "disabled",
        time_limits: &[10, 30, 60, 120, 240, 720, 1440, 2880, 4320],
    },
    PartDef {
        name: "gpu",
        default: false,
        default_time: 60,
        max_time: 2880,
        tier: 10,
        max_nodes: -1,
        preempt_mode: "disabled",
        time_limits: &[60, 240, 720, 1440, 2880],
    },
    PartDef {
        name: "himem",
        default: false,
        default_time: 60,
        max_time: 10080,
        tier: 10,
        max_nodes: -1,
        preempt_mode: "disabled",
        time_limits: &[240, 1440, 4320, 10080],
    },
    PartDef {
        name: "debug",
        default: false,
        default_time: 10,
        max_time: 30,
        tier: 20,
        max_nodes: 2,
        preempt_mode: "disabled",
        time_limits: &[10, 15, 30],
    },
    PartDef {
        name: "preempt",
        default: false,
        default_time: 60,
        max_time: 1440,
        tier: 1,
        max_nodes: -1,
        preempt_mode: "requeue",
        time_limits: &[60, 240, 720, 1440],
    },
];

struct QosDef {
    id: u32,
    name: &'static str,
    description: &'static str,
    priority: u32,
    flags: &'static [&'static str],
    max_wall: Option<u32>,
    max_jobs_per_user: Option<u32>,
    gpus_per_user: Option<u32>,
    preempts: &'static [&'static str],
    usage_factor: f64,
}

/// Indexed by the `Q_*` constants (id - 1).
const QOS: [QosDef; 4] = [
    QosDef {
        id: 1,
        name: "normal",
        description: "Normal QOS default",
        priority: 0,
        flags: &[],
        max_wall: None,
        max_jobs_per_user: None,
        gpus_per_user: None,
        preempts: &[],
        usage_factor: 1.0,
    },
    QosDef {
        id: 2,
        name: "high",
        description: "high priority",
        priority: 100,
        flags: &[],
        max_wall: Some(2880),
        max_jobs_per_user: None,
        gpus_per_user: None,
        preempts: &["low"],
        usage_factor: 1.0,
    },
    QosDef {
        id: 3,
        name: "low",
        description: "low priority, preemptible",
        priority: 0,
        flags: &[],
        max_wall: None,
        max_jobs_per_user: Some(50),
        gpus_per_user: None,
        preempts: &[],
        usage_factor: 0.5,
    },
    QosDef {
        id: 4,
        name: "gpu",
        description: "gpu jobs",
        priority: 10,
        flags: &["DENY_LIMIT"],
        max_wall: None,
        max_jobs_per_user: None,
        gpus_per_user: Some(16),
        preempts: &[],
        usage_factor: 1.0,
    },
];
const Q_NORMAL: u8 = 0;
const Q_HIGH: u8 = 1;
const Q_LOW: u8 = 2;
const Q_GPU: u8 = 3;

const TOP_ACCOUNTS: [&str; 8] = [
    "physics",
    "chemistry",
    "biology",
    "engineering",
    "compsci",
    "math",
    "medicine",
    "earthsci",
];
const SUB_ACCOUNTS: [[&str; 4]; 8] = [
    ["astro", "hep", "condensed", "plasma"],
    ["organic", "quantum", "materials", "catalysis"],
    ["genomics", "neuro", "structbio", "ecology"],
    ["aero", "mech", "civil", "electrical"],
    ["ml", "systems", "vision", "nlp"],
    ["applied", "stats", "numerics", "topology"],
    ["imaging", "epidemiology", "pharma", "cardio"],
    ["climate", "seismo", "ocean", "hydro"],
];
const SURNAMES: [&str; 40] = [
    "smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "anderson", "thomas",
    "taylor", "moore", "jackson", "martin", "lee", "perez", "white", "harris", "clark", "lewis",
    "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen", "hill",
    "flores", "green", "adams", "nelson", "baker", "hall", "rivera", "campbell", "mitchell",
    "carter", "roberts",
];
const USERS: usize = 400;

const JOB_NAMES: [&str; 24] = [
    "md-sim",
    "train-llm",
    "param-sweep",
    "vasp",
    "gromacs",
    "lammps",
    "cp2k",
    "wrf",
    "bwa-align",
    "cryo-em",
    "alphafold",
    "preproc",
    "postproc",
    "finetune",
    "eval",
    "namd",
    "openfoam",
    "matlab-fit",
    "r-analysis",
    "snakemake",
    "nextflow",
    "qe-scf",
    "blast",
    "bash",
];
const NAME_BASH: u8 = 23;

const LICENSES: [(&str, u32); 4] = [
    ("ansys", 20),
    ("matlab", 50),
    ("comsol", 10),
    ("abaqus", 30),
];

const DRAIN_REASONS: [&str; 6] = [
    "hw: correctable ECC errors on DIMM B2",
    "kernel update 5.14.0-427",
    "NHC: check_fs_mount: /scratch not mounted",
    "IB link flapping, ticket INC-20817",
    "reboot for BIOS update",
    "disk /tmp full",
];
const GPU_DRAIN_REASONS: [&str; 2] = [
    "Xid 79: GPU has fallen off the bus",
    "GPU ECC DBE, pending page retirement",
];
const DOWN_REASONS: [&str; 2] = ["PSU failure, vendor RMA 5521", "motherboard replacement"];
const NODES_DOWN: &str =
    "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions";
const FAIL_REASON: &str = "NHC: check_hw_physmem: 12% of memory missing";

const F_COMPLETING: u16 = 1 << 0;
const F_DRAIN: u16 = 1 << 1;
const F_FAIL: u16 = 1 << 2;
const F_MAINT: u16 = 1 << 3;
const F_POWERED_DOWN: u16 = 1 << 4;
const F_RESERVED: u16 = 1 << 5;
const F_NOT_RESPONDING: u16 = 1 << 6;
const F_PLANNED: u16 = 1 << 7;
/// Flag tokens in the order slurmrestd prints them, with the model's lowercase label.
const FLAG_NAMES: [(u16, &str, &str); 8] = [
    (F_COMPLETING, "COMPLETING", "completing"),
    (F_DRAIN, "DRAIN", "drain"),
    (F_FAIL, "FAIL", "fail"),
    (F_MAINT, "MAINTENANCE", "maintenance"),
    (F_POWERED_DOWN, "POWERED_DOWN", "powered_down"),
    (F_RESERVED, "RESERVED", "reserved"),
    (F_NOT_RESPONDING, "NOT_RESPONDING", "not_responding"),
    (F_PLANNED, "PLANNED", "planned"),
];

const OS: &str =
    "Linux 5.14.0-427.13.1.el9_4.x86_64 #1 SMP PREEMPT_DYNAMIC Wed Apr 10 10:29:16 EDT 2024";

/// Slurm's `NO_VAL`, what slurmrestd prints for the load of a node that never reported.
const NO_VAL: u64 = 4_294_967_294;

/// Reservation ids stored on nodes and jobs (0 = none).
const RESV_MAINT: u8 = 1;
const RESV_COURSE: u8 = 2;
const RESV_NAMES: [&str; 3] = ["", "maint-rack", "gpu-course"];

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Allocated,
    Mixed,
    Idle,
    Down,
    Future,
    Unknown,
}

impl Base {
    fn as_str(self) -> &'static str {
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
struct SimNode {
    kind: Kind,
    num: u32,
    /// Cores per socket; every node has two sockets and one thread per core.
    cps: u16,
    /// MiB.
    real_memory: u64,
    gpu: Option<u8>,
    features: &'static str,
    base: Base,
    /// Base state follows from the allocations (allocated/mixed/idle) once jobs are placed.
    derive_base: bool,
    flags: u16,
    parts: u8,
    /// Whether the placement pass may start jobs here.
    schedulable: bool,
    resv: u8,
    reason: &'static str,
    reason_by: &'static str,
    next_core: [u16; 2],
    next_gpu: u8,
    alloc_cpus: u32,
    alloc_mem: u64,
    gpu_used: u8,
}

impl SimNode {
    fn new(
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
    fn cpus(&self) -> u32 {
        2 * u32::from(self.cps)
    }
    fn gpus(&self) -> u8 {
        self.gpu.map_or(0, |g| GPU_MODELS[usize::from(g)].count)
    }
    fn name(&self) -> String {
        node_name(self.kind, self.num)
    }
    /// Never registered or stopped answering: slurmctld has no load or memory figures.
    fn unregistered(&self) -> bool {
        self.flags & F_NOT_RESPONDING != 0 || matches!(self.base, Base::Future | Base::Unknown)
    }
}

fn node_name(kind: Kind, num: u32) -> String {
    format!("{}-{:05}", kind.prefix(), num)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JState {
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
    fn upper(self) -> &'static str {
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
    fn lower(self) -> String {
        self.upper().to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, Copy)]
enum Mem {
    PerCpu(u32),
    PerNode(u32),
}

#[derive(Debug, Clone)]
struct SimJob {
    id: u32,
    state: JState,
    /// Only for CANCELLED: whether it had started (and so has `job_resources`).
    ran: bool,
    reason: &'static str,
    part: u8,
    kind: Kind,
    assoc: u32,
    qos: u8,
    name: u8,
    nodes: u16,
    cpn: u16,
    mem: Mem,
    gpn: u8,
    /// 0 = untyped GPU request, else `GPU_MODELS` index + 1.
    gtype: u8,
    time_limit: u32,
    submit: u32,
    eligible: u32,
    accrue: u32,
    start: u32,
    end: u32,
    last_eval: u32,
    suspend: u32,
    pre_sus: u32,
    preempt: u32,
    priority: u32,
    exit_code: u32,
    array_job_id: u32,
    array_task: Option<u32>,
    array_spec: Option<u32>,
    alloc_start: u32,
    alloc_len: u16,
    dep: Option<(u32, bool)>,
    license: u8,
    resv: u8,
    partial_alloc: bool,
    /// `ReqNodeNotAvail`: the unavailable node it asked for.
    req_node: Option<u32>,
    desc_nodes_down: bool,
}

impl SimJob {
    fn cpus(&self) -> u64 {
        u64::from(self.cpn) * u64::from(self.nodes)
    }
    fn mem_per_node(&self) -> u64 {
        match self.mem {
            Mem::PerCpu(m) => u64::from(m) * u64::from(self.cpn),
            Mem::PerNode(m) => u64::from(m),
        }
    }
}

/// One node's share of a job: cores per socket as `(first, count)`, GPUs as a contiguous range.
#[derive(Debug, Clone, Copy)]
struct Alloc {
    node: u32,
    mem: u32,
    sock: [(u16, u16); 2],
    gpu_start: u8,
    ngpu: u8,
}

#[derive(Debug, Clone)]
struct ArraySpec {
    ranges: Vec<(u32, u32)>,
    max: u32,
}

impl ArraySpec {
    fn tasks(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| u64::from(b - a + 1)).sum()
    }
    fn text(&self) -> String {
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
struct Account {
    name: &'static str,
    parent: Option<u16>,
    grp_cpus: Option<u32>,
}

#[derive(Debug, Clone)]
struct User {
    name: String,
    uid: u32,
}

#[derive(Debug, Clone)]
struct Assoc {
    account: u16,
    user: Option<u16>,
    is_default: bool,
    max_jobs: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
enum Special {
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
const SPECIALS: [(Special, f64); 10] = [
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
    seed: u64,
    nodes: Vec<SimNode>,
    jobs: Vec<SimJob>,
    allocs: Vec<Alloc>,
    arrays: Vec<ArraySpec>,
    accounts: Vec<Account>,
    users: Vec<User>,
    assocs: Vec<Assoc>,
    /// Indices into `assocs` of the user associations jobs run under.
    user_assocs: Vec<u32>,
    gpu_models_present: [bool; 3],
    /// Whether partition `p` has nodes of kind `k`: `part_kinds[p][k]`.
    part_kinds: [[bool; 3]; 5],
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_4476_D1CE_4E5B);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<T: Copy>(rng: &mut StdRng, xs: &[T]) -> T {
    xs[rng.random_range(0..xs.len())]
}

/// Slurm's `convert_num_unit2(..., CONVERT_NUM_UNIT_EXACT)` for a MiB count: `62.50G`,
/// `32000M`, `125G`; only scales while the value stays a multiple of half a unit.
fn mem_str(mib: u64) -> String {
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
fn hostlist(nodes: &[SimNode], idx: &mut [u32]) -> String {
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
fn idx_str(mask: u8) -> String {
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

fn gpu_mask(start: u8, n: u8) -> u8 {
    ((((1u16 << n) - 1) << start) & 0xff) as u8
}

/// A request the placement pass tries to satisfy.
struct Req {
    nodes: u16,
    cpn: u16,
    mem: u64,
    gpn: u8,
    gtype: u8,
    counts_cpus: bool,
}

fn fits(n: &SimNode, r: &Req, multi: bool) -> bool {
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
fn take(n: &mut SimNode, node: u32, r: &Req) -> Alloc {
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

fn try_place(
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

// ---------------------------------------------------------------------------------------------
// Building the model
// ---------------------------------------------------------------------------------------------

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

    fn build_nodes(&mut self, n: usize, rng: &mut StdRng) {
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

    fn build_accounts(&mut self, rng: &mut StdRng) {
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

    fn pick_state(rng: &mut StdRng) -> JState {
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

    fn pick_pending_reason(rng: &mut StdRng) -> &'static str {
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

    fn part_has(&self, p: usize, kind: Kind) -> bool {
        self.part_kinds[p][kind as usize]
    }

    fn new_job(&mut self, id: u32, state: JState, rng: &mut StdRng) -> SimJob {
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
    fn shape(&self, job: &mut SimJob, rng: &mut StdRng) {
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
    fn set_pending_reason(&mut self, job: &mut SimJob, reason: &'static str, rng: &mut StdRng) {
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

    fn build_jobs(&mut self, n: usize, rng: &mut StdRng) {
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
    fn new_array(&mut self, left: usize, next_id: &mut u32, rng: &mut StdRng) {
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
    fn pools(&self, only_schedulable: bool) -> Vec<Vec<u32>> {
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
    fn place_running(&mut self, rng: &mut StdRng) {
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
    fn place_history(&mut self, rng: &mut StdRng) {
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
    fn finish_nodes(&mut self) {
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
    fn finalize_jobs(&mut self, rng: &mut StdRng) {
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

// ---------------------------------------------------------------------------------------------
// Output records
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct NodeOut<'a> {
    architecture: &'a str,
    burstbuffer_network_address: &'a str,
    boards: u32,
    boot_time: u64,
    comment: &'a str,
    cores: u32,
    cpu_binding: u32,
    cpu_load: u64,
    extra: &'a str,
    free_memory: i64,
    cpus: u32,
    last_busy: u64,
    features: &'a str,
    active_features: &'a str,
    gres: String,
    gres_drained: &'a str,
    gres_used: String,
    mcs_label: &'a str,
    name: String,
    next_state_after_reboot: &'a str,
    address: String,
    hostname: String,
    state: &'a str,
    state_flags: Vec<&'a str>,
    next_state_after_reboot_flags: Vec<&'a str>,
    operating_system: &'a str,
    owner: (),
    partitions: Vec<&'a str>,
    port: u32,
    real_memory: u64,
    reason: &'a str,
    reason_changed_at: u64,
    reason_set_by_user: Option<&'a str>,
    slurmd_start_time: u64,
    sockets: u32,
    threads: u32,
    temporary_disk: u64,
    weight: u32,
    tres: String,
    slurmd_version: &'a str,
    alloc_memory: u64,
    alloc_cpus: u32,
    idle_cpus: u32,
    tres_used: Option<String>,
    tres_weighted: f64,
}

#[derive(Serialize)]
struct JobOut<'a> {
    account: &'a str,
    accrue_time: u64,
    admin_comment: &'a str,
    array_job_id: u64,
    array_task_id: Option<u64>,
    array_max_tasks: u64,
    array_task_string: String,
    association_id: u64,
    batch_features: &'a str,
    batch_flag: bool,
    batch_host: String,
    flags: Vec<&'a str>,
    burst_buffer: &'a str,
    burst_buffer_state: &'a str,
    cluster: &'a str,
    cluster_features: &'a str,
    command: &'a str,
    comment: &'a str,
    container: &'a str,
    contiguous: bool,
    core_spec: (),
    thread_spec: (),
    cores_per_socket: (),
    billable_tres: Option<f64>,
    cpus_per_task: (),
    cpu_frequency_minimum: (),
    cpu_frequency_maximum: (),
    cpu_frequency_governor: (),
    cpus_per_tres: &'a str,
    deadline: u64,
    delay_boot: u64,
    dependency: String,
    derived_exit_code: u64,
    eligible_time: u64,
    end_time: u64,
    excluded_nodes: &'a str,
    exit_code: u64,
    features: &'a str,
    federation_origin: &'a str,
    federation_siblings_active: &'a str,
    federation_siblings_viable: &'a str,
    gres_detail: Vec<String>,
    group_id: u64,
    group_name: &'a str,
    job_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_resources: Option<JobResOut<'a>>,
    job_state: &'a str,
    last_sched_evaluation: u64,
    licenses: String,
    max_cpus: u64,
    max_nodes: u64,
    mcs_label: &'a str,
    memory_per_tres: &'a str,
    name: &'a str,
    nodes: String,
    nice: (),
    tasks_per_core: (),
    tasks_per_node: u64,
    tasks_per_socket: (),
    tasks_per_board: u64,
    cpus: u64,
    node_count: u64,
    tasks: u64,
    het_job_id: u64,
    het_job_id_set: &'a str,
    het_job_offset: u64,
    partition: &'a str,
    prefer: &'a str,
    memory_per_node: Option<u64>,
    memory_per_cpu: Option<u64>,
    minimum_cpus_per_node: u64,
    minimum_tmp_disk_per_node: u64,
    preempt_time: u64,
    pre_sus_time: u64,
    priority: u64,
    profile: (),
    qos: &'a str,
    reboot: bool,
    required_nodes: String,
    requeue: bool,
    resize_time: u64,
    restart_cnt: u64,
    resv_name: &'a str,
    shared: Option<&'a str>,
    show_flags: [&'a str; 3],
    sockets_per_board: u64,
    sockets_per_node: (),
    start_time: u64,
    state_description: String,
    state_reason: &'a str,
    standard_error: &'a str,
    standard_input: &'a str,
    standard_output: &'a str,
    submit_time: u64,
    suspend_time: u64,
    system_comment: &'a str,
    time_limit: u64,
    time_minimum: u64,
    threads_per_core: (),
    tres_bind: &'a str,
    tres_freq: &'a str,
    tres_per_job: &'a str,
    tres_per_node: String,
    tres_per_socket: &'a str,
    tres_per_task: &'a str,
    tres_req_str: String,
    tres_alloc_str: String,
    user_id: u64,
    user_name: &'a str,
    wckey: &'a str,
    current_working_directory: String,
}

#[derive(Serialize)]
struct JobResOut<'a> {
    nodes: String,
    allocated_cores: u64,
    allocated_hosts: u64,
    allocated_nodes: Vec<AllocNodeOut<'a>>,
}

struct AllocNodeOut<'a> {
    alloc: &'a Alloc,
    name: String,
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
struct Sockets<'a>(&'a Alloc);

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

struct SocketCores(u16, u16);

impl Serialize for SocketCores {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Socket", 1)?;
        st.serialize_field("cores", &CoreMap(self.0, self.1))?;
        st.end()
    }
}

struct CoreMap(u16, u16);

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
    fn h(&self, salt: u64, id: u64) -> u64 {
        splitmix64(self.seed ^ splitmix64(salt.wrapping_mul(0x1000_0000_01B3) ^ id))
    }

    fn node_out(&self, i: usize) -> NodeOut<'_> {
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

    fn job_out<'a>(&'a self, j: &'a SimJob) -> JobOut<'a> {
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

    fn partition_json(&self, p: usize) -> J {
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

    fn reservations_json(&self) -> Vec<J> {
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

    fn assoc_json(&self, a: &Assoc) -> J {
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

    fn qos_json(q: &QosDef) -> J {
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

    fn diag_json(&self) -> J {
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

    // -----------------------------------------------------------------------------------------
    // Public writers
    // -----------------------------------------------------------------------------------------

    /// `GET /slurm/v0.0.38/nodes`.
    pub fn write_nodes(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(
            w,
            Api::Slurm,
            "nodes",
            (0..self.nodes.len()).map(|i| self.node_out(i)),
        )
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

    /// `GET /slurm/v0.0.38/partitions`.
    pub fn write_partitions(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(
            w,
            Api::Slurm,
            "partitions",
            (0..PARTS.len()).map(|p| self.partition_json(p)),
        )
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

    /// `GET /slurm/v0.0.38/reservations`: the active maintenance and course reservations the
    /// MAINTENANCE/RESERVED node flags come from, and a future one.
    pub fn write_reservations(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(w, Api::Slurm, "reservations", self.reservations_json())
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

    /// `sshare -a -l -P`: the fairshare tree (22.05 has no `/shares` endpoint). Usage is a
    /// deterministic function of the names; shares, normalization, effective usage, the
    /// fair-tree factor (rank among siblings) and LevelFS follow Slurm's definitions.
    pub fn write_sshare(&self, w: &mut dyn Write) -> io::Result<()> {
        fn usage_of(name: &str) -> u64 {
            // FNV-1a: stable across runs and platforms.
            let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            h % 200_000
        }
        let mut w = BufWriter::with_capacity(1 << 16, w);
        writeln!(w, "Account|User|RawShares|NormShares|RawUsage|NormUsage|EffectvUsage|FairShare|LevelFS|GrpTRESMins|TRESRunMins")?;
        let users_of = |acct: u16| -> Vec<&str> {
            self.assocs
                .iter()
                .filter(|a| a.account == acct)
                .filter_map(|a| a.user.map(|u| self.users[usize::from(u)].name.as_str()))
                .collect()
        };
        let children = |acct: u16| -> Vec<u16> {
            (0..self.accounts.len() as u16)
                .filter(|&c| self.accounts[usize::from(c)].parent == Some(acct))
                .collect()
        };
        // Raw usage of an account is its users' plus its sub-accounts'.
        fn account_usage(this: &SimCluster, acct: u16, key: &dyn Fn(u16) -> Vec<u16>) -> u64 {
            let own: u64 = this
                .assocs
                .iter()
                .filter(|a| a.account == acct)
                .filter_map(|a| a.user)
                .map(|u| {
                    usage_of(&format!(
                        "{}/{}",
                        this.accounts[usize::from(acct)].name,
                        this.users[usize::from(u)].name
                    ))
                })
                .sum();
            own + key(acct)
                .into_iter()
                .map(|c| account_usage(this, c, key))
                .sum::<u64>()
        }
        let total = account_usage(self, 0, &children).max(1) as f64;
        writeln!(w, "root|||0.000000|{}||1.000000||||", total as u64)?;
        let mut stack: Vec<(u16, usize, f64)> = Vec::new();
        for c in children(0).into_iter().rev() {
            stack.push((c, 1, 1.0));
        }
        while let Some((acct, depth, parent_norm)) = stack.pop() {
            let a = &self.accounts[usize::from(acct)];
            let siblings = a.parent.map(&children).unwrap_or_default();
            let norm_shares = parent_norm / siblings.len().max(1) as f64;
            let raw = account_usage(self, acct, &children);
            let norm_usage = raw as f64 / total;
            let level = if norm_usage > 0.0 {
                norm_shares / norm_usage
            } else {
                f64::INFINITY
            };
            let pad = " ".repeat(depth);
            writeln!(
                w,
                "{pad}{}||100|{norm_shares:.6}|{raw}|{norm_usage:.6}|{norm_usage:.6}||{level:.6}||",
                a.name
            )?;
            let users = users_of(acct);
            let mut levels: Vec<(f64, &str, u64)> = users
                .iter()
                .map(|u| {
                    let r = usage_of(&format!("{}/{u}", a.name));
                    let eff = if raw > 0 { r as f64 / raw as f64 } else { 0.0 };
                    let lvl = if eff > 0.0 {
                        (1.0 / users.len() as f64) / eff
                    } else {
                        f64::INFINITY
                    };
                    (lvl, *u, r)
                })
                .collect();
            levels.sort_by(|x, y| x.0.total_cmp(&y.0));
            let n = levels.len().max(1) as f64;
            for (rank, (lvl, u, r)) in levels.iter().enumerate() {
                let eff = if raw > 0 { *r as f64 / raw as f64 } else { 0.0 };
                let fs = (rank + 1) as f64 / n;
                writeln!(
                    w,
                    "{pad} {}|{u}|1|{:.6}|{r}|{:.6}|{eff:.6}|{fs:.6}|{lvl:.6}||",
                    a.name,
                    1.0 / n,
                    *r as f64 / total
                )?;
            }
            for c in children(acct).into_iter().rev() {
                stack.push((c, depth + 1, norm_shares));
            }
        }
        w.flush()
    }

    /// `GET /slurmdb/v0.0.38/qos`.
    pub fn write_qos(&self, w: &mut dyn Write) -> io::Result<()> {
        write_list_doc(w, Api::Slurmdb, "QOS", QOS.iter().map(Self::qos_json))
    }

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

impl SimCluster {
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

    fn finished_job_out(&self, j: &SimJob) -> serde_json::Value {
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

// ---------------------------------------------------------------------------------------
// The simulator as a source: its bytes go through a pipe into the same streaming parsers the
// REST and CLI sources use, so the demo and the benchmark run the real parse path.

/// A [`super::Source`] serving a [`SimCluster`]. With [`SimSource::evolving`], every poll
/// uses the next seed, so a demo's graphs move.
pub struct SimSource {
    spec: SimSpec,
    evolving: bool,
    polls: std::sync::atomic::AtomicU64,
}

impl SimSource {
    pub fn new(spec: SimSpec) -> SimSource {
        SimSource {
            spec,
            evolving: false,
            polls: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn evolving(mut self) -> SimSource {
        self.evolving = true;
        self
    }

    fn poll_blocking(spec: SimSpec) -> Result<super::Parts, super::SourceError> {
        use crate::model::Interner;
        use crate::parse::ParseError;
        let sim = std::sync::Arc::new(SimCluster::new(spec));
        let mut names = Interner::default();
        let io_err = |what: &str, e: io::Error| super::SourceError::Io {
            what: format!("sim {what}"),
            msg: e.to_string(),
        };
        // Writer thread -> pipe -> streaming parser, as a socket or a child's stdout would.
        fn piped<T>(
            sim: &std::sync::Arc<SimCluster>,
            write: fn(&SimCluster, &mut dyn Write) -> io::Result<()>,
            parse: impl FnOnce(&mut dyn io::Read) -> Result<T, ParseError>,
        ) -> Result<(T, u64), io::Error> {
            let (reader, mut writer) = io::pipe()?;
            let sim = sim.clone();
            let producer = std::thread::spawn(move || write(&sim, &mut writer));
            let mut counted = super::Counted {
                inner: reader,
                count: 0,
            };
            let parsed = parse(&mut counted);
            drop(counted.inner);
            let wrote = producer
                .join()
                .map_err(|_| io::Error::other("sim writer panicked"))?;
            let value = parsed.map_err(|e| io::Error::other(e.to_string()))?;
            wrote?;
            Ok((value, counted.count))
        }
        let ((env, nodes), nb) = piped(&sim, SimCluster::write_nodes, |r| {
            crate::parse::nodes::parse_nodes(r, &mut names)
        })
        .map_err(|e| io_err("nodes", e))?;
        let ((_, jobs), jb) = piped(&sim, SimCluster::write_jobs, |r| {
            crate::parse::jobs::parse_jobs(r, &mut names)
        })
        .map_err(|e| io_err("jobs", e))?;
        let mut buf = Vec::new();
        sim.write_partitions(&mut buf)
            .map_err(|e| io_err("partitions", e))?;
        let (_, partitions) = crate::parse::partitions::parse_partitions(&buf, &mut names)
            .map_err(|err| super::SourceError::Parse {
                what: "sim partitions".into(),
                err,
            })?;
        // The small documents go through the same parsers as slurmrestd's answers.
        let mut small_bytes = 0u64;
        let mut small = |what: &str,
                         write: fn(&SimCluster, &mut dyn Write) -> io::Result<()>|
         -> Result<Vec<u8>, super::SourceError> {
            let mut b = Vec::new();
            write(&sim, &mut b).map_err(|e| io_err(what, e))?;
            small_bytes += b.len() as u64;
            Ok(b)
        };
        let parse_err = |what: &str| {
            let what = format!("sim {what}");
            move |err| super::SourceError::Parse { what, err }
        };
        use crate::parse::{associations, diag, licenses, ping, qos, reservations};
        let diag = diag::parse_diag_json(&small("diag", SimCluster::write_diag)?)
            .map_err(parse_err("diag"))?;
        let controllers = ping::parse_ping_json(&small("ping", SimCluster::write_ping)?)
            .map_err(parse_err("ping"))?;
        let license_list =
            licenses::parse_licenses_json(&small("licenses", SimCluster::write_licenses)?)
                .map_err(parse_err("licenses"))?;
        let resv = reservations::parse_reservations_json(
            &small("reservations", SimCluster::write_reservations)?,
            &mut names,
        )
        .map_err(parse_err("reservations"))?;
        let qos_list = qos::parse_qos_json(&small("qos", SimCluster::write_qos)?, &mut names)
            .map_err(parse_err("qos"))?;
        let limits = associations::parse_associations_json(
            &small("associations", SimCluster::write_associations)?,
            &mut names,
        )
        .map_err(parse_err("associations"))?;
        let mut sshare = Vec::new();
        sim.write_sshare(&mut sshare)
            .map_err(|e| io_err("sshare", e))?;
        small_bytes += sshare.len() as u64;
        let shares = associations::parse_sshare_text(&String::from_utf8_lossy(&sshare), &mut names)
            .map_err(parse_err("sshare"))?;
        let assoc = associations::merge(limits, shares);
        let (finished, fb) = piped(&sim, SimCluster::write_finished_jobs, |r| {
            crate::parse::sacct::parse_sacct_json(r, &mut Interner::default())
        })
        .map_err(|e| io_err("finished jobs", e))?;
        small_bytes += fb;
        Ok(super::Parts {
            finished_jobs: Some(finished),
            diag: Some(diag),
            controllers: Some(controllers),
            licenses: Some(license_list),
            reservations: Some(resv),
            qos: Some(qos_list),
            associations: Some(assoc),
            meta: env.meta,
            cluster: Some(sim.cluster_name().to_owned()),
            nodes: Some(nodes),
            jobs: Some(jobs),
            partitions: Some(partitions),
            fetched_epoch: u64::from(NOW),
            bytes: nb + jb + buf.len() as u64 + small_bytes,
            not_modified: false,
            ..Default::default()
        })
    }
}

impl super::Source for SimSource {
    fn name(&self) -> &str {
        "sim"
    }

    fn poll(&self) -> super::PollFuture<'_> {
        let n = self
            .polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut spec = self.spec;
        if self.evolving {
            spec.seed = spec.seed.wrapping_add(n);
        }
        Box::pin(async move {
            tokio::task::spawn_blocking(move || SimSource::poll_blocking(spec))
                .await
                .map_err(|e| super::SourceError::Io {
                    what: "sim poll".into(),
                    msg: e.to_string(),
                })?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::{BTreeSet, HashMap};

    const CAP_JOBS: &str = include_str!("../../testdata/rest/22.05.8/slurm_v0.0.38_jobs.json");
    const CAP_NODES: &str = include_str!("../../testdata/rest/22.05.8/slurm_v0.0.38_nodes.json");
    const CAP_PARTITIONS: &str =
        include_str!("../../testdata/rest/22.05.8/slurm_v0.0.38_partitions.json");
    const CAP_DIAG: &str = include_str!("../../testdata/rest/22.05.8/slurm_v0.0.38_diag.json");
    const CAP_PING: &str = include_str!("../../testdata/rest/22.05.8/slurm_v0.0.38_ping.json");
    const CAP_LICENSES: &str =
        include_str!("../../testdata/rest/22.05.8/slurm_v0.0.38_licenses.json");
    const CAP_RESERVATIONS: &str =
        include_str!("../../testdata/rest/22.05.8/slurm_v0.0.38_reservations.json");
    const CAP_ASSOCIATIONS: &str =
        include_str!("../../testdata/rest/22.05.8/slurmdb_v0.0.38_associations.json");
    const CAP_QOS: &str = include_str!("../../testdata/rest/22.05.8/slurmdb_v0.0.38_qos.json");

    type WriteFn = fn(&SimCluster, &mut dyn Write) -> io::Result<()>;
    const DOCS: [(&str, WriteFn, &str, &str); 9] = [
        ("jobs", SimCluster::write_jobs, CAP_JOBS, "jobs"),
        ("nodes", SimCluster::write_nodes, CAP_NODES, "nodes"),
        (
            "partitions",
            SimCluster::write_partitions,
            CAP_PARTITIONS,
            "partitions",
        ),
        ("diag", SimCluster::write_diag, CAP_DIAG, "statistics"),
        ("ping", SimCluster::write_ping, CAP_PING, "pings"),
        (
            "licenses",
            SimCluster::write_licenses,
            CAP_LICENSES,
            "licenses",
        ),
        (
            "reservations",
            SimCluster::write_reservations,
            CAP_RESERVATIONS,
            "reservations",
        ),
        (
            "associations",
            SimCluster::write_associations,
            CAP_ASSOCIATIONS,
            "associations",
        ),
        ("qos", SimCluster::write_qos, CAP_QOS, "QOS"),
    ];

    fn spec(seed: u64) -> SimSpec {
        SimSpec {
            nodes: 300,
            jobs: 3_000,
            seed,
        }
    }

    fn render(c: &SimCluster, f: WriteFn) -> Vec<u8> {
        let mut out = Vec::new();
        f(c, &mut out).expect("well-formed");
        out
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("well-formed")
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, b, c) = (
            SimCluster::new(spec(7)),
            SimCluster::new(spec(7)),
            SimCluster::new(spec(8)),
        );
        for (name, f, _, _) in DOCS {
            assert_eq!(
                render(&a, f),
                render(&b, f),
                "{name} differs for the same seed"
            );
        }
        assert_eq!(a.truth(), b.truth());
        for f in [SimCluster::write_jobs as WriteFn, SimCluster::write_nodes] {
            assert_ne!(render(&a, f), render(&c, f));
        }
        assert_eq!(a.cluster_name(), "sim");
    }

    #[test]
    fn every_document_parses_and_starts_like_slurmrestd() {
        let c = SimCluster::new(spec(1));
        for (name, f, cap, key) in DOCS {
            let bytes = render(&c, f);
            let v = parse(&bytes);
            assert!(v[key].is_array() || v[key].is_object(), "{name}: no {key}");
            assert_eq!(v["errors"], Value::Array(vec![]), "{name}");
            // Everything up to the payload key, meta included, is byte-identical to the capture.
            let head = |s: &[u8]| {
                let key = format!("\"{key}\": ");
                let text = String::from_utf8_lossy(s).into_owned();
                text[..text.find(&key).expect("well-formed") + key.len()].to_string()
            };
            assert_eq!(head(&bytes), head(cap.as_bytes()), "{name}: header");
            assert!(
                !bytes.ends_with(b"\n"),
                "{name}: slurmrestd sends no trailing newline"
            );
        }
    }

    #[test]
    fn formatter_reproduces_capture_bytes() {
        // Re-serializing a capture cannot keep key order without `preserve_order`, so check the
        // formatting rules on a value whose order is fixed.
        let v = obj! { "a": empty(), "b": obj! {}, "c": vec!["x/y"], "d": 32.0, "e": -2i32 };
        let mut out = Vec::new();
        to_slurm_json(&mut out, 0, &v).expect("well-formed");
        let want = concat!(
            "{\n  \"a\": [\n  ],\n  \"b\": {\n  },\n",
            "  \"c\": [\n    \"x\\/y\"\n  ],\n  \"d\": 32.0,\n  \"e\": -2\n}",
        );
        assert_eq!(String::from_utf8(out).expect("well-formed"), want);
    }

    /// Same keys (recursively) and same JSON types wherever neither side is null.
    fn shape_diff(path: &str, ours: &Value, real: &Value, errs: &mut Vec<String>) {
        match (ours, real) {
            (Value::Object(a), Value::Object(b)) => {
                if path.ends_with(".sockets") || path.ends_with(".cores") {
                    return; // keys are socket and core numbers
                }
                let ka: BTreeSet<&String> = a.keys().collect();
                let kb: BTreeSet<&String> = b.keys().collect();
                if ka != kb {
                    errs.push(format!(
                        "{path}: ours-only {:?}, capture-only {:?}",
                        &ka - &kb,
                        &kb - &ka
                    ));
                }
                for (k, va) in a {
                    if let Some(vb) = b.get(k) {
                        shape_diff(&format!("{path}.{k}"), va, vb, errs);
                    }
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                if let (Some(x), Some(y)) = (a.first(), b.first()) {
                    shape_diff(&format!("{path}[]"), x, y, errs);
                }
            }
            (Value::Null, _) | (_, Value::Null) => {}
            (Value::Number(x), Value::Number(y)) => {
                if x.is_f64() != y.is_f64() {
                    errs.push(format!("{path}: number {x} vs {y}"));
                }
            }
            (a, b) => {
                if std::mem::discriminant(a) != std::mem::discriminant(b) {
                    errs.push(format!("{path}: {a} vs {b}"));
                }
            }
        }
    }

    #[test]
    fn records_have_the_captures_keys_and_types() {
        let c = SimCluster::new(spec(3));
        for (name, f, cap, key) in DOCS {
            let ours = parse(&render(&c, f));
            let real: Value = serde_json::from_str(cap).expect("well-formed");
            let mut errs = Vec::new();
            // Top level and meta.
            let strip = |v: &Value| {
                let mut v = v.clone();
                v[key] = Value::Null;
                v
            };
            shape_diff(name, &strip(&ours), &strip(&real), &mut errs);
            match (&ours[key], &real[key]) {
                (Value::Array(mine), Value::Array(theirs)) => {
                    assert!(!mine.is_empty(), "{name}: no records");
                    let with_res = theirs
                        .iter()
                        .find(|r| r.get("job_resources").is_some())
                        .unwrap_or(&theirs[0]);
                    let without = theirs
                        .iter()
                        .find(|r| r.get("job_resources").is_none())
                        .unwrap_or(&theirs[0]);
                    for (i, r) in mine.iter().enumerate() {
                        let model = if key == "jobs" && r.get("job_resources").is_none() {
                            without
                        } else {
                            with_res
                        };
                        shape_diff(&format!("{name}[{i}]"), r, model, &mut errs);
                    }
                }
                (a, b) => shape_diff(name, a, b, &mut errs),
            }
            errs.truncate(10);
            assert!(errs.is_empty(), "{name}:\n{}", errs.join("\n"));
        }
    }

    fn gres_count(s: &str) -> u64 {
        // `gpu:a100:4`, `gpu:a100:2(IDX:0-1)`, `gpu:0`, ``
        let s = s.split('(').next().unwrap_or("");
        s.rsplit(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn array_tasks(s: &str) -> u64 {
        let s = s.split('%').next().expect("well-formed");
        s.split(',')
            .map(|r| match r.split_once('-') {
                Some((a, b)) => {
                    b.parse::<u64>().expect("well-formed") - a.parse::<u64>().expect("well-formed")
                        + 1
                }
                None => {
                    r.parse::<u64>().expect("well-formed");
                    1
                }
            })
            .sum()
    }

    fn recount(c: &SimCluster) -> SimTruth {
        let nodes = parse(&render(c, SimCluster::write_nodes));
        let jobs = parse(&render(c, SimCluster::write_jobs));
        let mut t = SimTruth::default();
        for n in nodes["nodes"].as_array().expect("well-formed") {
            *t.nodes_by_state
                .entry(n["state"].as_str().expect("well-formed").to_string())
                .or_default() += 1;
            for f in n["state_flags"].as_array().expect("well-formed") {
                *t.node_flags
                    .entry(f.as_str().expect("well-formed").to_ascii_lowercase())
                    .or_default() += 1;
            }
            t.cpus_total += n["cpus"].as_u64().expect("well-formed");
            t.cpus_allocated += n["alloc_cpus"].as_u64().expect("well-formed");
            t.gpus_total += gres_count(n["gres"].as_str().expect("well-formed"));
            t.gpus_allocated += gres_count(n["gres_used"].as_str().expect("well-formed"));
        }
        for j in jobs["jobs"].as_array().expect("well-formed") {
            let tasks = match (
                j["array_task_id"].is_null(),
                j["array_task_string"].as_str().expect("well-formed"),
            ) {
                (true, s) if !s.is_empty() => array_tasks(s),
                _ => 1,
            };
            *t.jobs_by_state
                .entry(
                    j["job_state"]
                        .as_str()
                        .expect("well-formed")
                        .to_ascii_lowercase(),
                )
                .or_default() += tasks;
        }
        t
    }

    #[test]
    fn truth_matches_the_json() {
        for seed in [1, 2] {
            let c = SimCluster::new(spec(seed));
            let t = c.truth();
            assert_eq!(recount(&c), t, "seed {seed}");
            // Every state and flag the exporter maps is exercised.
            for s in ["allocated", "mixed", "idle", "down", "future", "unknown"] {
                assert!(t.nodes_by_state.contains_key(s), "no {s} node: {t:?}");
            }
            for (_, _, f) in FLAG_NAMES {
                assert!(t.node_flags.contains_key(f), "no {f} node: {t:?}");
            }
            for s in [
                "running",
                "pending",
                "completing",
                "suspended",
                "completed",
                "cancelled",
                "failed",
                "timeout",
                "out_of_memory",
                "node_fail",
                "preempted",
            ] {
                assert!(t.jobs_by_state.contains_key(s), "no {s} job: {t:?}");
            }
            assert!(t.cpus_allocated > 0 && t.cpus_allocated < t.cpus_total);
            assert!(t.gpus_allocated > 0 && t.gpus_allocated <= t.gpus_total);
        }
    }

    #[test]
    fn nodes_agree_with_the_jobs_on_them() {
        let c = SimCluster::new(spec(5));
        let nodes = parse(&render(&c, SimCluster::write_nodes));
        let jobs = parse(&render(&c, SimCluster::write_jobs));
        // node -> (cores of running jobs, memory of running+suspended jobs, gpus of those)
        let mut held: HashMap<String, (u64, u64, u64)> = HashMap::new();
        let mut reasons = BTreeSet::new();
        for j in jobs["jobs"].as_array().expect("well-formed") {
            let state = j["job_state"].as_str().expect("well-formed");
            if state == "PENDING" {
                reasons.insert(j["state_reason"].as_str().expect("well-formed").to_string());
                assert!(j.get("job_resources").is_none());
                continue;
            }
            if !matches!(state, "RUNNING" | "SUSPENDED") {
                continue;
            }
            assert!(j["submit_time"].as_u64() <= j["start_time"].as_u64());
            assert!(j["start_time"].as_u64().expect("well-formed") <= u64::from(NOW));
            let res = &j["job_resources"];
            let mut cores = 0;
            let gres = j["gres_detail"].as_array().expect("well-formed");
            for (i, n) in res["allocated_nodes"]
                .as_array()
                .expect("well-formed")
                .iter()
                .enumerate()
            {
                let k: u64 = n["sockets"]
                    .as_object()
                    .expect("well-formed")
                    .values()
                    .map(|s| s["cores"].as_object().expect("well-formed").len() as u64)
                    .sum();
                cores += k;
                let e = held
                    .entry(n["nodename"].as_str().expect("well-formed").to_string())
                    .or_default();
                if state == "RUNNING" {
                    e.0 += k;
                }
                e.1 += n["memory_allocated"].as_u64().expect("well-formed");
                e.2 += gres
                    .get(i)
                    .map_or(0, |g| gres_count(g.as_str().expect("well-formed")));
            }
            assert_eq!(cores, j["cpus"].as_u64().expect("well-formed"));
            assert_eq!(res["allocated_cores"], j["cpus"]);
        }
        for n in nodes["nodes"].as_array().expect("well-formed") {
            let name = n["name"].as_str().expect("well-formed");
            let (cores, mem, gpus) = held.get(name).copied().unwrap_or_default();
            assert_eq!(
                n["alloc_cpus"].as_u64().expect("well-formed"),
                cores,
                "{name}"
            );
            assert_eq!(
                gres_count(n["gres_used"].as_str().expect("well-formed")),
                gpus,
                "{name}"
            );
            assert_eq!(
                n["alloc_memory"].as_u64().expect("well-formed"),
                mem,
                "{name}"
            );
            assert_eq!(
                n["idle_cpus"].as_u64().expect("well-formed") + cores,
                n["cpus"].as_u64().expect("well-formed")
            );
            let state = n["state"].as_str().expect("well-formed");
            let cpus = n["cpus"].as_u64().expect("well-formed");
            match state {
                "allocated" => assert_eq!(cores, cpus, "{name}"),
                "mixed" => assert!(cores > 0 && cores < cpus, "{name}"),
                "idle" | "down" | "future" | "unknown" => assert_eq!(cores, 0, "{name}"),
                other => panic!("{other}"),
            }
            if n["state_flags"]
                .as_array()
                .expect("well-formed")
                .iter()
                .any(|f| f == "NOT_RESPONDING")
            {
                assert_eq!(n["cpu_load"], 4_294_967_294u64);
                assert_eq!(n["free_memory"], -2);
            }
        }
        for r in [
            "Priority",
            "Resources",
            "AssocMaxJobsLimit",
            "AssocGrpCpuLimit",
            "QOSMaxJobsPerUserLimit",
            "JobArrayTaskLimit",
            "Dependency",
            "DependencyNeverSatisfied",
            "JobHeldUser",
            "JobHeldAdmin",
            "ReqNodeNotAvail",
            "BeginTime",
            "PartitionTimeLimit",
        ] {
            assert!(reasons.contains(r), "no job pending for {r}: {reasons:?}");
        }
    }

    #[test]
    fn sizes_are_like_the_real_thing() {
        let c = SimCluster::new(SimSpec {
            nodes: 1_000,
            jobs: 10_000,
            seed: 11,
        });
        let jobs = render(&c, SimCluster::write_jobs);
        let per_job = jobs.len() / 10_000;
        assert!(
            (2_800..=4_500).contains(&per_job),
            "{per_job} bytes per job"
        );
        let t = c.truth();
        let running = t.jobs_by_state["running"] as f64 / 10_000.0;
        assert!((0.30..=0.50).contains(&running), "running share {running}");
    }

    #[test]
    fn tiny_and_empty_clusters_do_not_panic() {
        for (nodes, jobs) in [(0, 0), (0, 50), (1, 10), (5, 100), (40, 0)] {
            let c = SimCluster::new(SimSpec {
                nodes,
                jobs,
                seed: 9,
            });
            for (_, f, _, _) in DOCS {
                parse(&render(&c, f));
            }
            assert_eq!(recount(&c), c.truth());
        }
    }

    #[test]
    fn memory_units_follow_slurm() {
        assert_eq!(mem_str(64_000), "62.50G");
        assert_eq!(mem_str(32_000), "32000M");
        assert_eq!(mem_str(65_536), "64G");
        assert_eq!(mem_str(128_000), "125G");
        assert_eq!(mem_str(2_048_000), "2000G");
        assert_eq!(mem_str(1_024), "1G");
        assert_eq!(mem_str(3 * 1024 * 1024), "3T");
    }

    #[test]
    fn hostlists_and_gpu_indices() {
        let c = SimCluster::new(SimSpec {
            nodes: 100,
            jobs: 0,
            seed: 1,
        });
        let gpu0 = c
            .nodes
            .iter()
            .position(|n| n.kind == Kind::Gpu)
            .expect("well-formed") as u32;
        assert_eq!(
            hostlist(&c.nodes, &mut [2, 0, 1, 5, gpu0]),
            "cpu-[00001-00003,00006],gpu-00001"
        );
        assert_eq!(hostlist(&c.nodes, &mut [4]), "cpu-00005");
        assert_eq!(idx_str(0b0001_0011), "0-1,4");
        assert_eq!(idx_str(0), "N/A");
        let a = ArraySpec {
            ranges: vec![(9, 40)],
            max: 8,
        };
        assert_eq!((a.text(), a.tasks()), ("9-40%8".to_string(), 32));
        let b = ArraySpec {
            ranges: vec![(1, 1), (3, 3), (5, 7)],
            max: 0,
        };
        assert_eq!((b.text(), b.tasks()), ("1,3,5-7".to_string(), 5));
    }

    /// `cargo test --release -- --ignored --nocapture full_size` prints the benchmark's sizes.
    #[test]
    #[ignore]
    fn full_size() {
        struct Count(u64);
        impl Write for Count {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0 += b.len() as u64;
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let t0 = std::time::Instant::now();
        let c = SimCluster::new(SimSpec {
            nodes: 10_000,
            jobs: 100_000,
            seed: 42,
        });
        let built = t0.elapsed();
        let mut jobs = Count(0);
        c.write_jobs(&mut jobs).expect("well-formed");
        let jobs_t = t0.elapsed() - built;
        let mut nodes = Count(0);
        c.write_nodes(&mut nodes).expect("well-formed");
        let total = t0.elapsed();
        println!(
            "build {built:?}, jobs {} bytes ({} per job) in {jobs_t:?}, \
             nodes {} bytes ({} per node), total {total:?}",
            jobs.0,
            jobs.0 / 100_000,
            nodes.0,
            nodes.0 / 10_000
        );
        println!("{:#?}", c.truth());
    }
}
