//! OpenAPI v0.0.42, served by Slurm 24.11, 25.05, 25.11 and 26.05
//! (SchedMD/slurm: src/plugins/data_parser/v0.0.42 in the 24.11 to 26.05 tags).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.42",
    releases: "24.11, 25.05, 25.11 and 26.05",
    slurm: "/slurm/v0.0.42",
    slurmdb: "/slurmdb/v0.0.42",
};
