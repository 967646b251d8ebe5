//! The accounting tree: associations (account and user nodes with shares, usage and limits),
//! fairshare factors (`sshare`) and QOS with their limits.

/// One association (cluster/account/user[/partition]). Filled by `parse::associations`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Association {}

/// One QOS with its limits. Filled by `parse::qos`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qos {}
