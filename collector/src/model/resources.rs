//! Shared resources that are not nodes: licenses and reservations.

/// One license pool. Filled by `parse::licenses`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct License {}

/// One reservation. Filled by `parse::reservations`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reservation {}
