//! The slurmrestd OpenAPI versions the exporter speaks, newest first, as one table.
//!
//! Each row says which Slurm releases serve a version; its endpoints follow from its name. The
//! record parsers (`jobs.rs`, `nodes.rs`, ...) are shared: they read every version's field
//! names and encodings (aliases and [`super::flex`]). Adding a version is one row in
//! [`SUPPORTED`] and fixtures under `testdata/rest/<release>/`.

/// One OpenAPI version of slurmrestd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    /// `v0.0.38`
    pub name: &'static str,
    /// Slurm releases that serve it, for docs and logs.
    pub releases: &'static str,
    /// Prefix of the slurmctld endpoints, `/slurm/v0.0.38`.
    pub slurm: &'static str,
    /// Prefix of the slurmdbd endpoints, `/slurmdb/v0.0.38`.
    pub slurmdb: &'static str,
}

/// A row of [`SUPPORTED`]: the endpoint prefixes are spelled from the version number.
macro_rules! version {
    ($n:literal, $releases:literal) => {
        ApiVersion {
            name: concat!("v", $n),
            releases: $releases,
            slurm: concat!("/slurm/v", $n),
            slurmdb: concat!("/slurmdb/v", $n),
        }
    };
}

impl ApiVersion {
    pub fn path(&self, endpoint: &str) -> String {
        format!("{}/{}", self.slurm, endpoint)
    }
}

/// Newest first: discovery takes the first one the server answers. Each row: the version,
/// the Slurm releases that serve it, and where in SchedMD/slurm that is seen.
pub const SUPPORTED: &[ApiVersion] = &[
    // SchedMD/slurm: src/plugins/data_parser/v0.0.44 in the 25.11 and 26.05 tags; 26.05 also serves v0.0.45.
    version!("0.0.44", "25.11 and 26.05"),
    // SchedMD/slurm: src/plugins/data_parser/v0.0.43 in the 25.05 to 26.05 tags.
    version!("0.0.43", "25.05, 25.11 and 26.05"),
    // SchedMD/slurm: src/plugins/data_parser/v0.0.42 in the 24.11 to 26.05 tags.
    version!("0.0.42", "24.11, 25.05, 25.11 and 26.05"),
    // SchedMD/slurm: src/plugins/data_parser/v0.0.41 in the 24.05 to 25.11 tags.
    version!("0.0.41", "24.05, 24.11, 25.05 and 25.11"),
    // SchedMD/slurm: src/plugins/data_parser/v0.0.40 in the 23.11 to 25.05 tags.
    version!("0.0.40", "23.11, 24.05, 24.11 and 25.05"),
    // SchedMD/slurm: openapi/v0.0.39 + data_parser/v0.0.39 from 23.02; 24.05 RELEASE_NOTES: tagged deprecated; gone in 24.11.
    version!("0.0.39", "23.02, 23.11 and 24.05"),
    // SchedMD/slurm: src/plugins/openapi/v0.0.38 (23.02), src/slurmrestd/plugins/openapi/v0.0.38 (23.11, deprecated); 24.05 RELEASE_NOTES: removed.
    version!("0.0.38", "22.05, 23.02 and 23.11"),
    // SchedMD/slurm: src/plugins/openapi/v0.0.37 up to 23.02; 23.11 RELEASE_NOTES: removed.
    version!("0.0.37", "21.08, 22.05 and 23.02"),
    // SchedMD/slurm: src/plugins/openapi/v0.0.36 in the slurm-21-08 and slurm-22-05 tags; gone in 23.02.
    version!("0.0.36", "21.08 and 22.05"),
];

/// Looks a version up by name (`v0.0.38` or `0.0.38`).
pub fn by_name(name: &str) -> Option<ApiVersion> {
    let want = name.trim_start_matches('v');
    SUPPORTED
        .iter()
        .copied()
        .find(|v| v.name.trim_start_matches('v') == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_unique() {
        let names: Vec<_> = SUPPORTED.iter().map(|v| v.name).collect();
        let mut sorted = names.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(names, sorted);
        assert_eq!(by_name("0.0.38").map(|v| v.slurm), Some("/slurm/v0.0.38"));
        assert_eq!(by_name("v9.9.9"), None);
    }
}
