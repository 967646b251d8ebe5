//! slurmctld's own health: scheduler and RPC statistics (`sdiag`, REST `diag`) and the
//! controllers' answers to ping.
//!
//! Every scalar is an `Option`: releases differ in what they report (v0.0.39/40 have no
//! backfill max cycle, only v0.0.41+ give the cycle sums, only newer `sdiag` prints exit
//! reasons), and a missing value must be absent from the exposition, not a false zero.
//! Slurm measures times in microseconds; the model holds seconds.

/// Everything `sdiag` / REST `diag` reports. Filled by `parse::diag`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diag {
    /// When slurmctld produced the report (`req_time`, "sdiag output at").
    pub report_epoch: Option<u64>,
    /// When the statistics were last reset (`req_time_start`, "Data since"): midnight UTC,
    /// `sdiag --reset`, or slurmctld start.
    pub stats_reset_epoch: Option<u64>,

    pub server_thread_count: Option<u64>,
    /// Whether slurmctld queues RPCs by type (newer `sdiag` only).
    pub rpc_queue_enabled: Option<bool>,
    pub agent_queue_size: Option<u64>,
    pub agent_count: Option<u64>,
    pub agent_thread_count: Option<u64>,
    pub dbd_agent_queue_size: Option<u64>,
    /// Time of 1000 `gettimeofday()` calls, measured at slurmctld start.
    pub gettimeofday_latency_seconds: Option<f64>,

    /// Job counters since the statistics were last reset.
    pub jobs_submitted: Option<u64>,
    pub jobs_started: Option<u64>,
    pub jobs_completed: Option<u64>,
    pub jobs_canceled: Option<u64>,
    pub jobs_failed: Option<u64>,
    /// Job counts at `job_states_epoch`.
    pub jobs_pending: Option<u64>,
    pub jobs_running: Option<u64>,
    pub job_states_epoch: Option<u64>,

    pub main: MainScheduler,
    pub backfill: Backfill,

    /// Sorted by message type as Slurm reported them; may hold repeats in hostile input.
    pub rpcs_by_type: Vec<RpcTypeStat>,
    pub rpcs_by_user: Vec<RpcUserStat>,
    /// RPCs waiting on the agent queue, by type.
    pub pending_rpcs: Vec<PendingRpc>,
}

/// The main (priority-order) scheduler since the last statistics reset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MainScheduler {
    pub last_cycle_seconds: Option<f64>,
    pub max_cycle_seconds: Option<f64>,
    pub mean_cycle_seconds: Option<f64>,
    /// Sum of all cycle times (REST v0.0.41+ only).
    pub cycle_sum_seconds: Option<f64>,
    pub cycles: Option<u64>,
    pub mean_depth: Option<u64>,
    /// Jobs looked at over all cycles (REST v0.0.41+ only).
    pub depth_sum: Option<u64>,
    pub cycles_per_minute: Option<u64>,
    pub last_queue_length: Option<u64>,
    /// Why cycles ended, by reason (`end_job_queue`, `max_sched_time`, ...).
    pub exits: Vec<(String, u64)>,
}

/// The backfill scheduler.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backfill {
    pub active: Option<bool>,
    /// Jobs started by backfill since slurmctld started (not reset by `sdiag --reset`).
    pub backfilled_jobs: Option<u64>,
    /// Jobs started by backfill since the statistics were last reset.
    pub backfilled_jobs_since_reset: Option<u64>,
    pub backfilled_het_jobs: Option<u64>,
    pub cycles: Option<u64>,
    pub last_cycle_epoch: Option<u64>,
    pub last_cycle_seconds: Option<f64>,
    pub max_cycle_seconds: Option<f64>,
    pub mean_cycle_seconds: Option<f64>,
    pub cycle_sum_seconds: Option<f64>,
    pub last_depth: Option<u64>,
    pub last_depth_try: Option<u64>,
    pub mean_depth: Option<u64>,
    pub mean_depth_try: Option<u64>,
    pub depth_sum: Option<u64>,
    pub depth_try_sum: Option<u64>,
    pub last_queue_length: Option<u64>,
    pub mean_queue_length: Option<u64>,
    pub last_table_size: Option<u64>,
    pub mean_table_size: Option<u64>,
    pub exits: Vec<(String, u64)>,
}

/// RPCs slurmctld served for one message type, since slurmctld start or `sdiag --reset`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RpcTypeStat {
    /// `REQUEST_SUBMIT_BATCH_JOB`; the numeric id when Slurm gives no name.
    pub message_type: String,
    pub type_id: Option<u64>,
    pub count: u64,
    pub total_time_seconds: f64,
    /// As Slurm computed it (whole microseconds); `None` when not reported.
    pub average_time_seconds: Option<f64>,
    /// RPC queue statistics (only when the RPC queue is enabled, Slurm 24.05+).
    pub queued: Option<u64>,
    pub dropped: Option<u64>,
    pub cycle_last: Option<u64>,
    pub cycle_max: Option<u64>,
}

/// RPCs slurmctld served for one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RpcUserStat {
    /// User name; the numeric uid when it does not resolve.
    pub user: String,
    pub user_id: Option<u64>,
    pub count: u64,
    pub total_time_seconds: f64,
    pub average_time_seconds: Option<f64>,
}

/// Outgoing RPCs of one type waiting on the agent queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingRpc {
    pub message_type: String,
    pub type_id: Option<u64>,
    pub count: u64,
}

/// One controller's answer to ping (primary, backups). Filled by `parse::ping`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controller {
    pub host: String,
    /// `primary`, `backup`, `backup2`, ...
    pub mode: String,
    pub up: bool,
    /// How long the ping took (or took to time out); REST v0.0.39+ only.
    pub latency_seconds: Option<f64>,
}
