//! OpenAPI v0.0.36, served by Slurm 21.08 and 22.05
//! (SchedMD/slurm: src/plugins/openapi/v0.0.36 in the slurm-21-08 and slurm-22-05 tags; gone in 23.02).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.36",
    releases: "21.08 and 22.05",
    slurm: "/slurm/v0.0.36",
    slurmdb: "/slurmdb/v0.0.36",
};
