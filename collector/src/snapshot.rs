//! One fused, immutable view of a cluster at a moment: the Slurm records of [`crate::model`]
//! plus the families ingested ready-made from Prometheus-text sources. The poller builds it,
//! the families read it. It sits above the store because those ingested families are already
//! series.

use crate::model::priority::JobPriority;
use crate::model::{
    AccountingTotals, Association, CgroupJob, Controller, Diag, Job, License, Name, Node,
    Partition, Qos, Reservation, SlurmMeta, SourceStatus,
};
use crate::store::Family;
use std::sync::Arc;

/// One fused, immutable view of a cluster at a moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub cluster: Name,
    pub meta: SlurmMeta,
    /// When the data was fetched (seconds since the epoch): "now" for ages and wait times,
    /// so the same input always gives the same output.
    pub taken_epoch: u64,
    pub sources: Arc<Vec<SourceStatus>>,
    pub nodes: Arc<Vec<Node>>,
    pub jobs: Arc<Vec<Job>>,
    pub partitions: Arc<Vec<Partition>>,
    /// Scheduler and RPC statistics; `None` when no source reads them.
    pub diag: Option<Arc<Diag>>,
    pub controllers: Arc<Vec<Controller>>,
    pub associations: Arc<Vec<Association>>,
    pub qos: Arc<Vec<Qos>>,
    pub licenses: Arc<Vec<License>>,
    pub reservations: Arc<Vec<Reservation>>,
    /// Chargeback totals from the accounting ledger; `None` when accounting is off.
    pub accounting: Option<Arc<AccountingTotals>>,
    /// Jobs' cgroup use on nodes (agent mode).
    pub cgroup_jobs: Arc<Vec<CgroupJob>>,
    /// Pending jobs' priority factors (`sprio`; CLI source only).
    pub priorities: Arc<Vec<JobPriority>>,
    /// Families ingested ready-made from Prometheus-text sources (slurmctld's own
    /// `/metrics`, node_exporter, textfiles, commands), already normalized and owned.
    pub external: Arc<Vec<Family>>,
    /// Which source provided each part (`("nodes", "rest")`), when several could.
    pub part_sources: Arc<Vec<(&'static str, String)>>,
}
