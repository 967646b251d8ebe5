//! Pure, synchronous, version-tolerant parsers of untrusted bytes. They never panic: every
//! malformed input is a [`ParseError`] that names what is wrong and where (a byte offset or
//! a line number). Unknown fields are ignored; missing fields take neutral defaults.

pub mod associations;
pub mod diag;
pub mod doc;
pub mod flex;
pub mod hostlist;
pub mod jobs;
pub mod licenses;
pub mod nodes;
pub mod partitions;
pub mod ping;
pub mod prom_text;
pub mod qos;
pub mod reservations;
pub mod sacct;
pub mod sprio;
pub mod stream;
pub mod text;
pub mod value;
pub mod versions;

/// What went wrong in a document, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("input ends early (truncated) at byte {offset}")]
    Truncated { offset: u64 },
    #[error("malformed JSON at byte {offset}: {msg}")]
    Syntax { offset: u64, msg: String },
    #[error("a single value at byte {offset} is larger than the {limit}-byte limit")]
    TooLarge { offset: u64, limit: usize },
    #[error("reading the input failed: {0}")]
    Io(String),
    #[error("Slurm answered with errors: {0}")]
    Slurm(String),
    #[error("the document has no {0:?} array")]
    Missing(&'static str),
    #[error("line {line}: {msg}")]
    Line { line: usize, msg: String },
}
