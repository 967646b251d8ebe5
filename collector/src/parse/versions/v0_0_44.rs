//! OpenAPI v0.0.44, served by Slurm 25.11 and 26.05.

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.44",
    releases: "25.11 and 26.05",
    slurm: "/slurm/v0.0.44",
    slurmdb: "/slurmdb/v0.0.44",
};
