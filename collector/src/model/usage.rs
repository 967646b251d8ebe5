//! Per-job resource use measured on compute nodes (cgroup v2, agent mode).

/// One job's cgroup on a node. Filled by `source::cgroup`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupJob {}
