//! A deterministic synthetic Slurm cluster that answers like slurmrestd 22.05 (OpenAPI v0.0.38).
//!
//! Benchmarks and end-to-end tests need a cluster of 10,000 nodes and 100,000 jobs, and nobody
//! has one at hand. [`SimCluster`] builds a compact, seeded model of such a cluster and streams
//! the bytes slurmrestd would send for each endpoint: the same keys in the same order, the same
//! JSON types, and slurmrestd's own formatting (two-space indent, `\/`-escaped slashes, empty
//! containers broken over two lines), so the exporter's real parse path runs on it and the
//! benchmark pays for realistic document sizes. [`SimTruth`] is what the exporter must report.
//!
//! Node counters follow slurmctld: RUNNING jobs hold cores, memory and GPUs; SUSPENDED jobs
//! give their cores back but keep memory and GPUs; COMPLETING and recently finished jobs hold
//! nothing (COMPLETING only flags the node) yet still list the cores they ran on.
//!
//! Output depends only on the [`SimSpec`] (and on `rand`'s `StdRng` stream for a seed), never on
//! the wall clock: "now" is the fixed epoch [`NOW`].
//!
//! Modules import only from those listed before them: `json` (slurmrestd's formatting) and
//! `catalogue` (the static tables); `model` (the cluster's records and placement helpers);
//! `build` and `jobs` (building the model from the seed); `truth`; `rest` (the slurmrestd
//! JSON writers, one file per group of endpoints) and `cli` (the CLI text writers); `source`
//! (the simulator as a collector [`collector::source::Source`]).

#[macro_use]
mod json;
mod build;
mod catalogue;
mod cli;
mod jobs;
mod model;
mod rest;
mod source;
mod truth;

#[cfg(test)]
mod tests;

pub use catalogue::NOW;
pub use model::{SimCluster, SimSpec};
pub use source::SimSource;
pub use truth::SimTruth;
