//! OpenAPI v0.0.37, served by Slurm 21.08 and 22.05.

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.37",
    releases: "21.08 and 22.05",
    slurm: "/slurm/v0.0.37",
    slurmdb: "/slurmdb/v0.0.37",
};
