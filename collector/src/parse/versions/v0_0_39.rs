//! OpenAPI v0.0.39, served by Slurm 23.02 and 23.11.

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.39",
    releases: "23.02 and 23.11",
    slurm: "/slurm/v0.0.39",
    slurmdb: "/slurmdb/v0.0.39",
};
