//! SLURM Exporter's server and command-line tool: configuration, the HTTP stack and routes,
//! and the commands (`serve`, `collect`, `demo`). The collector crate does the Slurm work;
//! this crate wires it to the network.
//!
//! Modules import only modules listed before them here (bottom to top): see ARCHITECTURE.md.

pub mod app;
pub mod audit_cli;
pub mod config;
pub mod devcerts;
pub mod layer;
pub mod metrics;
pub mod pii_cli;
pub mod policy;
pub mod reload;
pub mod routes;
pub mod serve;
pub mod stack;
pub mod tls;

/// The policy modules at their former paths, for callers outside the crate.
pub use policy::{pii, query, selector, tenancy};
