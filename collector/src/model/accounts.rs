//! The accounting tree: associations (account and user nodes with shares, usage and limits),
//! fairshare factors (`sshare`) and QOS with their limits.
//!
//! Limits are `None` when unset or unlimited: Slurm's sentinels never reach the model.
//! Memory is in bytes (Slurm's TRES `mem` is MiB) and times in seconds (Slurm says minutes).

use super::name::Name;

/// The TRES the exporter tracks, in one unit family per use: counts (`cpu=64`, memory in
/// bytes) for TRES limits, or count-seconds (CPU-seconds, byte-seconds, GPU-seconds) for
/// TRES-minute limits and usage, which the parsers convert from Slurm's TRES-minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TresAmounts {
    pub cpus: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub nodes: Option<u64>,
    /// `gres/gpu`, summed over typed entries (`gres/gpu:a100`) when no untyped one is given.
    pub gpus: Option<u64>,
    pub billing: Option<u64>,
}

impl TresAmounts {
    pub fn is_empty(&self) -> bool {
        *self == TresAmounts::default()
    }
}

/// Limits as set on one association (`sacctmgr show assoc`). Inherited limits are not
/// resolved here: a user without its own `MaxJobs` has `max_jobs: None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssocLimits {
    /// GrpTRES: TRES held by running jobs of the association and its children.
    pub grp_tres: TresAmounts,
    /// GrpTRESMins, as TRES-seconds: past, present and future use.
    pub grp_tres_seconds: TresAmounts,
    /// GrpTRESRunMins, as TRES-seconds: what running jobs may still use.
    pub grp_tres_run_seconds: TresAmounts,
    /// GrpJobs: running jobs of the association and its children.
    pub grp_jobs: Option<u64>,
    /// GrpJobsAccrue: pending jobs accruing age priority.
    pub grp_jobs_accrue: Option<u64>,
    /// GrpSubmitJobs: pending + running jobs.
    pub grp_submit_jobs: Option<u64>,
    /// GrpWall, in seconds.
    pub grp_wall_seconds: Option<u64>,
    /// MaxJobs: running jobs per user.
    pub max_jobs: Option<u64>,
    pub max_jobs_accrue: Option<u64>,
    /// MaxSubmitJobs: pending + running jobs per user.
    pub max_submit_jobs: Option<u64>,
    pub max_tres_per_job: TresAmounts,
    pub max_tres_per_node: TresAmounts,
    /// MaxTRESMinsPerJob, as TRES-seconds.
    pub max_tres_seconds_per_job: TresAmounts,
    /// MaxWallDurationPerJob, in seconds.
    pub max_wall_seconds_per_job: Option<u64>,
}

/// What `sshare` (or REST `/shares`) says about one association.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fairshare {
    /// Shares relative to siblings (`NormShares`), 0..1.
    pub shares_normalized: Option<f64>,
    /// Decayed usage in TRES-billing-seconds (`RawUsage`).
    pub usage_raw: Option<f64>,
    /// Usage relative to the whole cluster (`NormUsage`), 0..1.
    pub usage_normalized: Option<f64>,
    /// Usage including the parent's share of it (`EffectvUsage`), 0..1.
    pub usage_effective: Option<f64>,
    /// The fairshare factor (`FairShare`), 0..1; Slurm shows it for users only.
    pub factor: Option<f64>,
    /// Fair Tree's level fairshare (`LevelFS`); `f64::INFINITY` when there is no usage.
    pub level: Option<f64>,
    /// TRES-seconds the running jobs may still use (`TRESRunMins` x 60, memory in bytes).
    pub tres_run_seconds: TresAmounts,
}

/// One association (cluster/account/user[/partition]). Filled by `parse::associations`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Association {
    pub cluster: Name,
    pub account: Name,
    /// Empty for an account node.
    pub user: Name,
    /// Parent account of an account node (empty for `root`); the account of a user node.
    pub parent_account: Name,
    /// Empty unless the association is for one partition.
    pub partition: Name,
    /// Raw shares (`fairshare=N`); `None` when unset or `parent`.
    pub shares_raw: Option<u64>,
    /// `fairshare=parent`: the node uses its parent's shares.
    pub shares_parent: bool,
    pub priority: Option<u64>,
    pub qos: Vec<Name>,
    /// Empty when not set.
    pub default_qos: Name,
    pub is_default: bool,
    pub limits: AssocLimits,
    /// `None` when no fairshare source was read.
    pub fairshare: Option<Fairshare>,
}

impl Association {
    /// An account node (no user).
    pub fn is_account(&self) -> bool {
        self.user.is_empty()
    }

    /// The tree root, which stands for the whole cluster.
    pub fn is_root(&self) -> bool {
        self.is_account() && &*self.account == "root"
    }
}

/// One QOS with its limits. Filled by `parse::qos`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qos {
    pub name: Name,
    pub priority: Option<u64>,
    pub usage_factor: Option<f64>,
    pub usage_threshold: Option<f64>,
    pub limit_factor: Option<f64>,
    pub grace_time_seconds: Option<u64>,
    /// Lower case (`requeue`, `suspend,gang`); `cluster` when the QOS uses the cluster's.
    pub preempt_mode: Name,
    /// QOS this one may preempt.
    pub preempt: Vec<Name>,
    pub preempt_exempt_seconds: Option<u64>,
    pub flags: Vec<Name>,
    pub grp_tres: TresAmounts,
    pub grp_tres_seconds: TresAmounts,
    pub grp_tres_run_seconds: TresAmounts,
    pub grp_jobs: Option<u64>,
    pub grp_jobs_accrue: Option<u64>,
    pub grp_submit_jobs: Option<u64>,
    pub grp_wall_seconds: Option<u64>,
    pub max_jobs_per_user: Option<u64>,
    pub max_jobs_per_account: Option<u64>,
    pub max_submit_jobs_per_user: Option<u64>,
    pub max_submit_jobs_per_account: Option<u64>,
    pub max_jobs_accrue_per_user: Option<u64>,
    pub max_jobs_accrue_per_account: Option<u64>,
    pub max_tres_per_user: TresAmounts,
    pub max_tres_per_account: TresAmounts,
    pub max_tres_per_job: TresAmounts,
    pub max_tres_per_node: TresAmounts,
    pub min_tres_per_job: TresAmounts,
    pub max_tres_seconds_per_job: TresAmounts,
    pub max_wall_seconds_per_job: Option<u64>,
    pub min_priority_threshold: Option<u64>,
}
