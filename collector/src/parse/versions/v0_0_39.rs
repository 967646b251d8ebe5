//! OpenAPI v0.0.39, served by Slurm 23.02, 23.11 and 24.05
//! (SchedMD/slurm: openapi/v0.0.39 + data_parser/v0.0.39 from 23.02; 24.05 RELEASE_NOTES: tagged deprecated; gone in 24.11).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.39",
    releases: "23.02, 23.11 and 24.05",
    slurm: "/slurm/v0.0.39",
    slurmdb: "/slurmdb/v0.0.39",
};
