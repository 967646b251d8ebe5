//! OpenAPI v0.0.38, served by Slurm 22.05, 23.02 and 23.11
//! (SchedMD/slurm: src/plugins/openapi/v0.0.38 (23.02), src/slurmrestd/plugins/openapi/v0.0.38 (23.11, deprecated); 24.05 RELEASE_NOTES: removed).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.38",
    releases: "22.05, 23.02 and 23.11",
    slurm: "/slurm/v0.0.38",
    slurmdb: "/slurmdb/v0.0.38",
};
