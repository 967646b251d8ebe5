//! OpenAPI v0.0.42, served by Slurm 24.11 and 25.05.

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.42",
    releases: "24.11 and 25.05",
    slurm: "/slurm/v0.0.42",
    slurmdb: "/slurmdb/v0.0.42",
};
