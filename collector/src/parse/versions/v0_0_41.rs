//! OpenAPI v0.0.41, served by Slurm 24.05 and 24.11.

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.41",
    releases: "24.05 and 24.11",
    slurm: "/slurm/v0.0.41",
    slurmdb: "/slurmdb/v0.0.41",
};
