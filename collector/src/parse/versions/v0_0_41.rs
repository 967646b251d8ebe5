//! OpenAPI v0.0.41, served by Slurm 24.05, 24.11, 25.05 and 25.11
//! (SchedMD/slurm: src/plugins/data_parser/v0.0.41 in the 24.05 to 25.11 tags).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.41",
    releases: "24.05, 24.11, 25.05 and 25.11",
    slurm: "/slurm/v0.0.41",
    slurmdb: "/slurmdb/v0.0.41",
};
