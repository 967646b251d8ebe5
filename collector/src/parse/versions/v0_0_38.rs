//! OpenAPI v0.0.38, served by Slurm 22.05.

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.38",
    releases: "22.05",
    slurm: "/slurm/v0.0.38",
    slurmdb: "/slurmdb/v0.0.38",
};
