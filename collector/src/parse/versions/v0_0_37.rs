//! OpenAPI v0.0.37, served by Slurm 21.08, 22.05 and 23.02
//! (SchedMD/slurm: src/plugins/openapi/v0.0.37 up to 23.02; 23.11 RELEASE_NOTES: removed).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.37",
    releases: "21.08, 22.05 and 23.02",
    slurm: "/slurm/v0.0.37",
    slurmdb: "/slurmdb/v0.0.37",
};
