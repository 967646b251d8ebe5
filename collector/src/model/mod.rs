//! The typed model every source is parsed into and every family reads from.
//!
//! Units are in the field names (`_bytes`, `_seconds`, `_epoch`): Slurm speaks MiB and
//! minutes, the model never does. Strings that repeat across thousands of records
//! (partition, account, user, state reason) are `Arc<str>` shared through an interner, so a
//! 100,000-job snapshot stays small and grouping by them is cheap.
//!
//! `mod.rs` only gathers the files: each type lives in one of them, and they import one
//! another, never this facade.

pub mod accounting;
pub mod accounts;
pub mod cluster;
pub mod name;
pub mod priority;
pub mod resources;
pub mod scheduler;
pub mod usage;

pub use accounting::{AccountingTotals, FinishedJob};
pub use accounts::{Association, Qos};
pub use cluster::{
    GpuTypeCount, Job, JobState, Node, NodeBaseState, NodeFlags, Partition, SlurmMeta,
    SourceStatus, Split,
};
pub use name::{Interner, Name};
pub use resources::{License, Reservation};
pub use scheduler::{Controller, Diag};
pub use usage::CgroupJob;
