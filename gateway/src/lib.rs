//! SLURM Exporter's server and command-line tool: configuration, the HTTP stack and routes,
//! and the commands (`serve`, `collect`, `demo`). The collector crate does the Slurm work;
//! this crate wires it to the network.

pub mod admin;
pub mod app;
pub mod audit_cli;
pub mod config;
pub mod devcerts;
pub mod layer;
pub mod pii;
pub mod pii_cli;
pub mod query;
pub mod reload;
pub mod routes;
pub mod selector;
pub mod stack;
pub mod tenancy;
pub mod tls;
pub mod usage_cli;
