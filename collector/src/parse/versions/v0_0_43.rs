//! OpenAPI v0.0.43, served by Slurm 25.05, 25.11 and 26.05
//! (SchedMD/slurm: src/plugins/data_parser/v0.0.43 in the 25.05 to 26.05 tags).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.43",
    releases: "25.05, 25.11 and 26.05",
    slurm: "/slurm/v0.0.43",
    slurmdb: "/slurmdb/v0.0.43",
};
