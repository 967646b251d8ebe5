//! OpenAPI v0.0.40, served by Slurm 23.11, 24.05, 24.11 and 25.05
//! (SchedMD/slurm: src/plugins/data_parser/v0.0.40 in the 23.11 to 25.05 tags).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.40",
    releases: "23.11, 24.05, 24.11 and 25.05",
    slurm: "/slurm/v0.0.40",
    slurmdb: "/slurmdb/v0.0.40",
};
