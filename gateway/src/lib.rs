//! SLURM Exporter's server and command-line tool: configuration, the HTTP stack and routes,
//! and the commands (`serve`, `collect`, `demo`). The collector crate does the Slurm work;
//! this crate wires it to the network.
//!
//! The modules, bottom to top; each imports only modules of the groups above it here
//! (ARCHITECTURE.md draws the graph).

// Pure types: no async, no I/O but reading a key file.
pub mod conn;
pub mod policy;
pub mod tls;

// The gateway's own metrics and how bodies are served.
pub mod audit_health;
pub mod metrics;
pub mod serve;

// One typed configuration, owning every section type.
pub mod settings;

// The tower layers, each with its own state type, and the audit log's checkpoint publisher
// (the audit layer starts it; it borrows authn's HTTP client).
pub mod audit_publish;
pub mod layer;

// The shared state the routes read.
pub mod state;

// The routes.
pub mod routes;

// The whole layer order.
pub mod stack;

// Reloading the settings in force.
pub mod reload;

// Wiring and the command-line tools.
pub mod app;
pub mod assets;
pub mod audit_cli;
pub mod devcerts;
pub mod pii_cli;
pub mod usage_cli;
pub mod witness;

/// The policy modules at their former paths, for callers outside the crate.
pub use policy::{pii, query, selector, tenancy};
