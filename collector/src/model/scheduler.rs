//! slurmctld's own health: scheduler and RPC statistics (`sdiag`, REST `diag`) and the
//! controllers' answers to ping.

/// Everything `sdiag` / REST `diag` reports. Filled by `parse::diag`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diag {}

/// One controller's answer to ping (primary, backups). Filled by `parse::ping`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controller {}
