//! OpenAPI v0.0.43, served by Slurm 25.05 and 25.11.

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.43",
    releases: "25.05 and 25.11",
    slurm: "/slurm/v0.0.43",
    slurmdb: "/slurmdb/v0.0.43",
};
