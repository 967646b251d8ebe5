//! OpenAPI v0.0.44, served by Slurm 25.11 and 26.05
//! (SchedMD/slurm: src/plugins/data_parser/v0.0.44 in the 25.11 and 26.05 tags; 26.05 also serves v0.0.45).

use super::ApiVersion;

pub const VERSION: ApiVersion = ApiVersion {
    name: "v0.0.44",
    releases: "25.11 and 26.05",
    slurm: "/slurm/v0.0.44",
    slurmdb: "/slurmdb/v0.0.44",
};
