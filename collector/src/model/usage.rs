//! Per-job resource use measured on compute nodes (cgroup v2, agent mode).

/// One job's cgroup on one node, as the kernel accounts it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupJob {
    pub job_id: u64,
    /// The node the agent runs on.
    pub node: String,
    /// `cpu.stat` `usage_usec`, in seconds.
    pub cpu_seconds: Option<f64>,
    /// `memory.current`.
    pub memory_bytes: Option<u64>,
    /// `memory.peak` (kernel 5.19+).
    pub memory_peak_bytes: Option<u64>,
    /// `memory.max`; `None` when `max` (unlimited).
    pub memory_limit_bytes: Option<u64>,
    /// `memory.events` `oom_kill`.
    pub oom_kills: Option<u64>,
    /// `pids.current`.
    pub tasks: Option<u64>,
}
