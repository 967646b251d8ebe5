//! OpenAPI v0.0.40, served by Slurm 23.11 and 24.05.

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.40",
    releases: "23.11 and 24.05",
    slurm: "/slurm/v0.0.40",
    slurmdb: "/slurmdb/v0.0.40",
};
