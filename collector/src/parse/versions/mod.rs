//! The slurmrestd OpenAPI versions the exporter speaks, newest first.
//!
//! One file per version says where its endpoints are and which Slurm releases serve it. The
//! record parsers (`jobs.rs`, `nodes.rs`, ...) are shared: they read every version's field
//! names and encodings (aliases and [`super::flex`]). Adding a version is one small file here,
//! an entry in [`SUPPORTED`], and fixtures under `testdata/rest/<release>/`.

mod v0_0_36;
mod v0_0_37;
mod v0_0_38;
mod v0_0_39;
mod v0_0_40;
mod v0_0_41;
mod v0_0_42;
mod v0_0_43;
mod v0_0_44;

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

impl ApiVersion {
    pub fn path(&self, endpoint: &str) -> String {
        format!("{}/{}", self.slurm, endpoint)
    }
}

/// Newest first: discovery takes the first one the server answers.
pub const SUPPORTED: &[ApiVersion] = &[
    v0_0_44::VERSION,
    v0_0_43::VERSION,
    v0_0_42::VERSION,
    v0_0_41::VERSION,
    v0_0_40::VERSION,
    v0_0_39::VERSION,
    v0_0_38::VERSION,
    v0_0_37::VERSION,
    v0_0_36::VERSION,
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
