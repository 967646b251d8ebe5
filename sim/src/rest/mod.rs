//! The slurmrestd JSON writers, one file per group of endpoints; each streams the document
//! slurmrestd 22.05 (OpenAPI v0.0.38) sends, with its formatting.

mod jobs;
mod nodes;
mod slurm;
mod slurmdb;

use crate::model::{splitmix64, SimCluster};

impl SimCluster {
    /// A stable hash of the seed, a salt and a record id: where the writers get per-record
    /// variety (loads, free memory, times, RPC counts) without touching the model.
    pub(crate) fn h(&self, salt: u64, id: u64) -> u64 {
        splitmix64(self.seed ^ splitmix64(salt.wrapping_mul(0x1000_0000_01B3) ^ id))
    }
}
