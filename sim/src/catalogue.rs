//! The static catalogue the model draws from: node kinds, GPU models, partitions, QOS,
//! accounts, users, job names, licenses, reasons, flags.

/// "Now" for every generated document, so output never depends on the wall clock.
pub const NOW: u32 = 1_795_860_000;
pub(crate) const CLUSTER: &str = "sim";
pub(crate) const FIRST_JOB_ID: u32 = 4_000_001;
/// slurmctld keeps finished jobs for `MinJobAge` (300 s by default) before purging them.
pub(crate) const MIN_JOB_AGE: u32 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Cpu = 0,
    Gpu = 1,
    Himem = 2,
}

impl Kind {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Kind::Cpu => "cpu",
            Kind::Gpu => "gpu",
            Kind::Himem => "himem",
        }
    }
}

pub(crate) struct GpuModel {
    pub(crate) gres_type: &'static str,
    pub(crate) count: u8,
    pub(crate) cores: u16,
    pub(crate) mem_gb: u64,
    pub(crate) features: &'static str,
    pub(crate) weight: f64,
}

pub(crate) const GPU_MODELS: [GpuModel; 3] = [
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

pub(crate) struct PartDef {
    pub(crate) name: &'static str,
    pub(crate) default: bool,
    pub(crate) default_time: u32,
    pub(crate) max_time: u32,
    pub(crate) tier: u32,
    pub(crate) max_nodes: i32,
    pub(crate) preempt_mode: &'static str,
    pub(crate) time_limits: &'static [u32],
}

pub(crate) const P_CPU: usize = 0;
pub(crate) const P_GPU: usize = 1;
pub(crate) const P_HIMEM: usize = 2;
pub(crate) const P_DEBUG: usize = 3;
pub(crate) const P_PREEMPT: usize = 4;
pub(crate) const PARTS: [PartDef; 5] = [
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

pub(crate) struct QosDef {
    pub(crate) id: u32,
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) priority: u32,
    pub(crate) flags: &'static [&'static str],
    pub(crate) max_wall: Option<u32>,
    pub(crate) max_jobs_per_user: Option<u32>,
    pub(crate) gpus_per_user: Option<u32>,
    pub(crate) preempts: &'static [&'static str],
    pub(crate) usage_factor: f64,
}

/// Indexed by the `Q_*` constants (id - 1).
pub(crate) const QOS: [QosDef; 4] = [
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
pub(crate) const Q_NORMAL: u8 = 0;
pub(crate) const Q_HIGH: u8 = 1;
pub(crate) const Q_LOW: u8 = 2;
pub(crate) const Q_GPU: u8 = 3;

pub(crate) const TOP_ACCOUNTS: [&str; 8] = [
    "physics",
    "chemistry",
    "biology",
    "engineering",
    "compsci",
    "math",
    "medicine",
    "earthsci",
];
pub(crate) const SUB_ACCOUNTS: [[&str; 4]; 8] = [
    ["astro", "hep", "condensed", "plasma"],
    ["organic", "quantum", "materials", "catalysis"],
    ["genomics", "neuro", "structbio", "ecology"],
    ["aero", "mech", "civil", "electrical"],
    ["ml", "systems", "vision", "nlp"],
    ["applied", "stats", "numerics", "topology"],
    ["imaging", "epidemiology", "pharma", "cardio"],
    ["climate", "seismo", "ocean", "hydro"],
];
pub(crate) const SURNAMES: [&str; 40] = [
    "smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "anderson", "thomas",
    "taylor", "moore", "jackson", "martin", "lee", "perez", "white", "harris", "clark", "lewis",
    "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen", "hill",
    "flores", "green", "adams", "nelson", "baker", "hall", "rivera", "campbell", "mitchell",
    "carter", "roberts",
];
pub(crate) const USERS: usize = 400;

pub(crate) const JOB_NAMES: [&str; 24] = [
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
pub(crate) const NAME_BASH: u8 = 23;

pub(crate) const LICENSES: [(&str, u32); 4] = [
    ("ansys", 20),
    ("matlab", 50),
    ("comsol", 10),
    ("abaqus", 30),
];

pub(crate) const DRAIN_REASONS: [&str; 6] = [
    "hw: correctable ECC errors on DIMM B2",
    "kernel update 5.14.0-427",
    "NHC: check_fs_mount: /scratch not mounted",
    "IB link flapping, ticket INC-20817",
    "reboot for BIOS update",
    "disk /tmp full",
];
pub(crate) const GPU_DRAIN_REASONS: [&str; 2] = [
    "Xid 79: GPU has fallen off the bus",
    "GPU ECC DBE, pending page retirement",
];
pub(crate) const DOWN_REASONS: [&str; 2] =
    ["PSU failure, vendor RMA 5521", "motherboard replacement"];
pub(crate) const NODES_DOWN: &str =
    "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions";
pub(crate) const FAIL_REASON: &str = "NHC: check_hw_physmem: 12% of memory missing";

pub(crate) const F_COMPLETING: u16 = 1 << 0;
pub(crate) const F_DRAIN: u16 = 1 << 1;
pub(crate) const F_FAIL: u16 = 1 << 2;
pub(crate) const F_MAINT: u16 = 1 << 3;
pub(crate) const F_POWERED_DOWN: u16 = 1 << 4;
pub(crate) const F_RESERVED: u16 = 1 << 5;
pub(crate) const F_NOT_RESPONDING: u16 = 1 << 6;
pub(crate) const F_PLANNED: u16 = 1 << 7;
/// Flag tokens in the order slurmrestd prints them, with the model's lowercase label.
pub(crate) const FLAG_NAMES: [(u16, &str, &str); 8] = [
    (F_COMPLETING, "COMPLETING", "completing"),
    (F_DRAIN, "DRAIN", "drain"),
    (F_FAIL, "FAIL", "fail"),
    (F_MAINT, "MAINTENANCE", "maintenance"),
    (F_POWERED_DOWN, "POWERED_DOWN", "powered_down"),
    (F_RESERVED, "RESERVED", "reserved"),
    (F_NOT_RESPONDING, "NOT_RESPONDING", "not_responding"),
    (F_PLANNED, "PLANNED", "planned"),
];

pub(crate) const OS: &str =
    "Linux 5.14.0-427.13.1.el9_4.x86_64 #1 SMP PREEMPT_DYNAMIC Wed Apr 10 10:29:16 EDT 2024";

/// Slurm's `NO_VAL`, what slurmrestd prints for the load of a node that never reported.
pub(crate) const NO_VAL: u64 = 4_294_967_294;

/// Reservation ids stored on nodes and jobs (0 = none).
pub(crate) const RESV_MAINT: u8 = 1;
pub(crate) const RESV_COURSE: u8 = 2;
pub(crate) const RESV_NAMES: [&str; 3] = ["", "maint-rack", "gpu-course"];
