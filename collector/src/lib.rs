//! SLURM Exporter's collector: Slurm -> snapshot -> metric store.
//!
//! It knows nothing of HTTP serving or tenants' identities. The data flows one way:
//! a [`source`] fetches raw bytes, [`parse`] turns them into [`model`] parts, the poller
//! fuses parts into a [`snapshot::Snapshot`], [`families`] turn the snapshot into series tagged
//! with their owner scope, and [`store::Store`] publishes them as an immutable generation.
//!
//! Modules import only from the layers below them, bottom first: [`model`] (typed Slurm
//! records, [`model::Name`]); [`store`] (series, owners, the encoder and the published
//! generation); [`parse`]; [`ledger`] (accounting totals on disk) and [`charge`] (feeding the chargeback
//! store); [`snapshot`] (one fused
//! view: records plus ingested series); [`families`]; [`source`]; [`poller`]. `tests/layers.rs`
//! fails on a path pointing up.

pub mod charge;
pub mod families;
pub mod ledger;
pub mod model;
pub mod parse;
pub mod poller;
pub mod snapshot;
pub mod source;
pub mod store;
