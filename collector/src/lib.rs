//! SLURM Exporter's collector: Slurm -> snapshot -> metric store.
//!
//! It knows nothing of HTTP serving or tenants' identities. The data flows one way:
//! a [`source`] fetches raw bytes, [`parse`] turns them into [`model`] parts, the poller
//! fuses parts into a [`model::Snapshot`], [`families`] turn the snapshot into series tagged
//! with their owner scope, and [`store::Store`] publishes them as an immutable generation.

pub mod families;
pub mod ledger;
pub mod model;
pub mod parse;
pub mod poller;
pub mod source;
pub mod store;
