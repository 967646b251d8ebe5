//! Shared resources that are not nodes: licenses and reservations.

use super::name::Name;

/// One license pool (`scontrol show licenses`, `/slurm/vX/licenses`). Filled by
/// `parse::licenses`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct License {
    pub name: Name,
    /// Licenses in the pool.
    pub total: u64,
    /// Held by running jobs.
    pub used: u64,
    /// Available to new jobs.
    pub free: u64,
    /// Set aside by reservations.
    pub reserved: u64,
    /// Served by slurmdbd (`sacctmgr add resource`) rather than `Licenses=` in slurm.conf.
    pub remote: bool,
    /// Remote licenses only (v0.0.39+): what the license manager last said was consumed.
    pub last_consumed: Option<u64>,
    /// Remote licenses only (v0.0.39+): licenses "missing" from the cluster's view.
    pub last_deficit: Option<u64>,
    /// When slurmctld last updated the remote count (v0.0.39+).
    pub last_update_epoch: Option<u64>,
}

/// One advance reservation (`scontrol show reservations`, `/slurm/vX/reservations`). Filled
/// by `parse::reservations`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reservation {
    pub name: Name,
    /// `None` when Slurm gives no time (unset or `NO_VAL`).
    pub start_epoch: Option<u64>,
    pub end_epoch: Option<u64>,
    /// Node names, host list expanded.
    pub nodes: Vec<Name>,
    /// Node count as Slurm reports it (`NodeCnt`); may differ from `nodes.len()` for
    /// floating or license-only reservations.
    pub node_count: u64,
    /// Cores reserved (`CoreCnt`).
    pub core_count: u64,
    /// Flags in lower case, in Slurm's order (`maint`, `spec_nodes`, `ignore_jobs`, ...).
    pub flags: Vec<Name>,
    /// Permitted users, as written (a leading `-` denies).
    pub users: Vec<Name>,
    /// Permitted accounts, as written (a leading `-` denies).
    pub accounts: Vec<Name>,
    /// Partition the nodes were picked from, empty when none.
    pub partition: Name,
    /// Reserved TRES as Slurm writes them (`cpu=64,gres/gpu=8`).
    pub tres: Name,
    /// Reserved licenses as written (`matlab:2`), empty when none.
    pub licenses: Name,
}

impl Reservation {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    /// In effect at `now`: started and not yet ended. A reservation without a start time
    /// is not active; one without an end time is open-ended.
    pub fn is_active(&self, now: u64) -> bool {
        match self.start_epoch {
            Some(start) => start <= now && self.end_epoch.is_none_or(|end| now < end),
            None => false,
        }
    }
}
