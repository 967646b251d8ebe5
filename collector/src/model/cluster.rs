//! The cluster's records: nodes and their states, jobs and theirs, partitions, and where
//! the data came from and how each source is doing.

use super::name::Name;

/// A node's one base state. Everything else about a node is a [`NodeFlags`] bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeBaseState {
    Allocated,
    Mixed,
    Idle,
    Down,
    Error,
    Future,
    Unknown,
}

impl NodeBaseState {
    pub const ALL: [NodeBaseState; 7] = [
        NodeBaseState::Allocated,
        NodeBaseState::Mixed,
        NodeBaseState::Idle,
        NodeBaseState::Down,
        NodeBaseState::Error,
        NodeBaseState::Future,
        NodeBaseState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeBaseState::Allocated => "allocated",
            NodeBaseState::Mixed => "mixed",
            NodeBaseState::Idle => "idle",
            NodeBaseState::Down => "down",
            NodeBaseState::Error => "error",
            NodeBaseState::Future => "future",
            NodeBaseState::Unknown => "unknown",
        }
    }

    /// Recognizes a base state token in any case (`idle`, `IDLE`); `None` for flags.
    pub fn from_token(t: &str) -> Option<NodeBaseState> {
        Some(match t.to_ascii_lowercase().as_str() {
            "allocated" | "alloc" => NodeBaseState::Allocated,
            "mixed" | "mix" => NodeBaseState::Mixed,
            "idle" => NodeBaseState::Idle,
            "down" => NodeBaseState::Down,
            "error" => NodeBaseState::Error,
            "future" => NodeBaseState::Future,
            "unknown" | "unk" => NodeBaseState::Unknown,
            _ => return None,
        })
    }
}

macro_rules! node_flags {
    ($( $bit:literal $konst:ident $label:literal [$($tok:literal),*] ),* $(,)?) => {
        /// Node state flags, counted separately from the base state.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct NodeFlags(pub u32);
        impl NodeFlags {
            $( pub const $konst: NodeFlags = NodeFlags(1 << $bit); )*
            /// Every flag with its label value, in a fixed order.
            pub const ALL: &'static [(NodeFlags, &'static str)] = &[$( (NodeFlags::$konst, $label) ),*];
            /// Maps a Slurm flag token (any case) to a flag; unknown tokens are `None`.
            pub fn from_token(t: &str) -> Option<NodeFlags> {
                let up = t.to_ascii_uppercase();
                match up.as_str() {
                    $( $($tok)|* => Some(NodeFlags::$konst), )*
                    _ => None,
                }
            }
        }
    };
}

node_flags! {
    0 DRAIN "drain" ["DRAIN", "DRAINING", "DRAINED"],
    1 NOT_RESPONDING "not_responding" ["NOT_RESPONDING", "NO_RESPOND"],
    2 MAINTENANCE "maintenance" ["MAINTENANCE", "MAINT"],
    3 RESERVED "reserved" ["RESERVED"],
    4 COMPLETING "completing" ["COMPLETING"],
    5 PLANNED "planned" ["PLANNED"],
    6 FAIL "fail" ["FAIL", "FAILING"],
    7 POWERED_DOWN "powered_down" ["POWERED_DOWN", "POWER_DOWN"],
    8 POWERING_UP "powering_up" ["POWERING_UP", "POWER_UP"],
    9 POWERING_DOWN "powering_down" ["POWERING_DOWN"],
    10 REBOOT_REQUESTED "reboot_requested" ["REBOOT_REQUESTED", "REBOOT"],
    11 REBOOT_ISSUED "reboot_issued" ["REBOOT_ISSUED"],
    12 CLOUD "cloud" ["CLOUD"],
    13 INVALID_REG "invalid_reg" ["INVALID_REG", "INVAL"],
    14 DYNAMIC "dynamic" ["DYNAMIC_FUTURE", "DYNAMIC_NORM", "DYNAMIC"],
    15 BLOCKED "blocked" ["BLOCKED"],
}

impl NodeFlags {
    pub fn contains(self, other: NodeFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn insert(&mut self, other: NodeFlags) {
        self.0 |= other.0;
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: Name,
    pub base: NodeBaseState,
    pub flags: NodeFlags,
    pub cpus: u64,
    pub alloc_cpus: u64,
    pub real_memory_bytes: u64,
    pub alloc_memory_bytes: u64,
    /// `None` when the node does not report it (not responding).
    pub free_memory_bytes: Option<u64>,
    /// Load average (Slurm reports it x100); `None` for the unregistered placeholder.
    pub cpu_load: Option<f64>,
    pub gpus_total: u64,
    pub gpus_alloc: u64,
    /// GPU type from GRES (`a100`), empty when untyped or no GPUs.
    pub gpu_type: Name,
    /// GPUs of each type (`""` untyped), from `gres` (total) and `gres_used` (allocated).
    /// The totals sum to `gpus_total` and the allocations to `gpus_alloc`; empty when the
    /// node has no GPUs.
    pub gpu_types: Vec<GpuTypeCount>,
    pub partitions: Vec<Name>,
    pub reason: Name,
    pub features: Name,
    pub arch: Name,
    pub slurmd_version: Name,
    pub weight: u64,
    pub boot_time_epoch: Option<u64>,
    pub last_busy_epoch: Option<u64>,
}

/// One GPU type of a node: how many it has and how many are allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuTypeCount {
    /// `a100`, a MIG profile kept whole, or `""` when GRES names no type.
    pub gpu_type: Name,
    pub total: u64,
    pub alloc: u64,
}

impl Node {
    /// Whether the node's unallocated resources count as idle, as `sinfo %C` counts them
    /// (`src/sinfo/sinfo.c`, `_update_sinfo`): they are `other` only when the node is
    /// drained/draining or its base state is DOWN. Powered-down, failing, not responding,
    /// planned and maintenance nodes keep their idle CPUs: Slurm powers nodes up for jobs.
    pub fn is_schedulable(&self) -> bool {
        self.base != NodeBaseState::Down && !self.flags.contains(NodeFlags::DRAIN)
    }

    /// Per-type GPU splits; they sum to [`Node::gpu_split`].
    pub fn gpu_type_splits(&self) -> impl Iterator<Item = (&Name, Split)> + '_ {
        self.gpu_types
            .iter()
            .map(|t| (&t.gpu_type, self.split(t.total, t.alloc)))
    }

    /// Splits `total` with `alloc` in use: the rest is idle on a node that can run jobs and
    /// `other` on one that cannot (GPUs in use on a draining node stay allocated).
    fn split(&self, total: u64, alloc: u64) -> Split {
        let allocated = alloc.min(total);
        let rest = total - allocated;
        if self.is_schedulable() {
            Split {
                allocated,
                idle: rest,
                other: 0,
            }
        } else {
            Split {
                allocated,
                idle: 0,
                other: rest,
            }
        }
    }

    pub fn cpu_split(&self) -> Split {
        self.split(self.cpus, self.alloc_cpus)
    }

    pub fn memory_split(&self) -> Split {
        self.split(self.real_memory_bytes, self.alloc_memory_bytes)
    }

    /// The node's GPUs; with per-type counts, their sum (each type capped at its own
    /// total), so per-type series always add up to the node's.
    pub fn gpu_split(&self) -> Split {
        if self.gpu_types.is_empty() {
            return self.split(self.gpus_total, self.gpus_alloc);
        }
        let mut s = Split::default();
        for (_, t) in self.gpu_type_splits() {
            s.add(t);
        }
        s
    }
}

/// A resource split as `sinfo %C` splits CPUs: allocated, idle (usable now), and other
/// (on nodes that cannot run jobs). The three always sum to the configured total.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub allocated: u64,
    pub idle: u64,
    pub other: u64,
}

impl Split {
    /// The `state` label values, in the order of [`Split::values`].
    pub const STATES: [&'static str; 3] = ["allocated", "idle", "other"];

    pub fn values(self) -> [u64; 3] {
        [self.allocated, self.idle, self.other]
    }

    pub fn total(self) -> u64 {
        self.allocated + self.idle + self.other
    }

    pub fn add(&mut self, o: Split) {
        self.allocated += o.allocated;
        self.idle += o.idle;
        self.other += o.other;
    }
}

/// A job's state, the one Slurm reports as its base state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    Pending,
    Running,
    Suspended,
    Completing,
    Configuring,
    Completed,
    Cancelled,
    Failed,
    Timeout,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    OutOfMemory,
    Requeued,
    Resizing,
    #[default]
    Other,
}

impl JobState {
    pub const ALL: [JobState; 17] = [
        JobState::Pending,
        JobState::Running,
        JobState::Suspended,
        JobState::Completing,
        JobState::Configuring,
        JobState::Completed,
        JobState::Cancelled,
        JobState::Failed,
        JobState::Timeout,
        JobState::NodeFail,
        JobState::Preempted,
        JobState::BootFail,
        JobState::Deadline,
        JobState::OutOfMemory,
        JobState::Requeued,
        JobState::Resizing,
        JobState::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Suspended => "suspended",
            JobState::Completing => "completing",
            JobState::Configuring => "configuring",
            JobState::Completed => "completed",
            JobState::Cancelled => "cancelled",
            JobState::Failed => "failed",
            JobState::Timeout => "timeout",
            JobState::NodeFail => "node_fail",
            JobState::Preempted => "preempted",
            JobState::BootFail => "boot_fail",
            JobState::Deadline => "deadline",
            JobState::OutOfMemory => "out_of_memory",
            JobState::Requeued => "requeued",
            JobState::Resizing => "resizing",
            JobState::Other => "other",
        }
    }

    pub fn from_token(t: &str) -> Option<JobState> {
        Some(match t.to_ascii_uppercase().as_str() {
            "PENDING" | "PD" => JobState::Pending,
            "RUNNING" | "R" => JobState::Running,
            "SUSPENDED" | "S" => JobState::Suspended,
            "COMPLETING" | "CG" => JobState::Completing,
            "CONFIGURING" | "CF" => JobState::Configuring,
            "COMPLETED" | "CD" => JobState::Completed,
            "CANCELLED" | "CA" => JobState::Cancelled,
            "FAILED" | "F" => JobState::Failed,
            "TIMEOUT" | "TO" => JobState::Timeout,
            "NODE_FAIL" | "NF" => JobState::NodeFail,
            "PREEMPTED" | "PR" => JobState::Preempted,
            "BOOT_FAIL" | "BF" => JobState::BootFail,
            "DEADLINE" | "DL" => JobState::Deadline,
            "OUT_OF_MEMORY" | "OOM" => JobState::OutOfMemory,
            "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD" | "RQ" => JobState::Requeued,
            "RESIZING" | "RS" => JobState::Resizing,
            _ => return None,
        })
    }

    /// Jobs still in the queue (not finished).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Pending
                | JobState::Running
                | JobState::Suspended
                | JobState::Completing
                | JobState::Configuring
                | JobState::Requeued
                | JobState::Resizing
        )
    }

    /// Jobs that hold resources on nodes.
    pub fn holds_resources(self) -> bool {
        matches!(
            self,
            JobState::Running | JobState::Suspended | JobState::Completing | JobState::Configuring
        )
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub job_id: u64,
    /// Array parent id, 0 when not an array.
    pub array_job_id: u64,
    pub array_task_id: Option<u64>,
    /// How many jobs this record stands for: a pending array meta-record (`9-40%8`) is many tasks.
    pub task_count: u64,
    pub state: JobState,
    /// Pending reason (`Resources`, `Priority`, ...) or `None`.
    pub reason: Name,
    pub partition: Name,
    pub account: Name,
    pub user: Name,
    pub qos: Name,
    pub cpus: u64,
    pub nodes: u64,
    /// Memory the job has (allocated) or asks for (pending), for the whole job.
    pub memory_bytes: u64,
    pub gpus: u64,
    /// GPU type from the job's TRES (`gres/gpu:a100=2`), empty when untyped.
    pub gpu_type: Name,
    pub submit_epoch: Option<u64>,
    pub start_epoch: Option<u64>,
    pub end_epoch: Option<u64>,
    pub time_limit_seconds: Option<u64>,
    pub priority: Option<u64>,
    pub exit_code: Option<i64>,
    pub node_list: Name,
}

#[derive(Debug, Clone)]
pub struct Partition {
    pub name: Name,
    /// `up`, `down`, `drain`, `inactive`.
    pub state: Name,
    pub is_default: bool,
    pub total_cpus: u64,
    pub total_nodes: u64,
    /// Node names, hostlist expanded.
    pub nodes: Vec<Name>,
    pub max_time_seconds: Option<u64>,
    pub default_time_seconds: Option<u64>,
    pub priority_tier: Option<u64>,
    pub max_nodes_per_job: Option<u64>,
}

/// Where the data came from, for `slurm_info`-style series and the version log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmMeta {
    /// Slurm release, `22.05.8`.
    pub release: String,
    /// OpenAPI plugin, `openapi/v0.0.38`, or `cli` for CLI text.
    pub plugin: String,
    /// The OpenAPI / data_parser version read (`v0.0.41`): the URL's for REST, the
    /// data_parser's for `--json`; empty when unknown.
    pub openapi: String,
    /// Which kind of source read it (`rest`, `cli`); empty when the source does not say.
    pub source: String,
}

/// How a source is doing, as the poller last saw it; published as `slurm_exporter_*`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStatus {
    pub source: String,
    /// The last poll succeeded and its data is within `max_staleness`.
    pub up: bool,
    pub polls: u64,
    pub last_duration_seconds: f64,
    pub last_success_epoch: Option<f64>,
    /// Errors by kind (`timeout`, `http`, `auth`, `parse`, `spawn`, `exit`, `io`).
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    pub not_modified: u64,
    pub last_bytes: u64,
    /// The data being served is older than `max_staleness` and was dropped.
    pub stale: bool,
}
