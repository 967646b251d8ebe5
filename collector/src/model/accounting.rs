//! Finished jobs from slurmdbd (`sacct --json`, `/slurmdb/vX/jobs`) and the running totals
//! built from them for chargeback.

/// One finished job as accounting reports it. Filled by `parse::sacct`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinishedJob {}

/// Monotonic totals per account/user/partition/QOS, kept by `ledger`. Filled by the
/// accounting work.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountingTotals {}
