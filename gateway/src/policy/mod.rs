//! Pure policy types: who is asking (tenancy), what they asked for (query decoding,
//! selectors), how user names are hidden (pseudonyms), which view a body is (the typed view
//! key) and what refused an answer (outcomes). No async and no I/O beyond reading a key file:
//! everything above builds on these.

pub mod client;
pub mod outcome;
pub mod pii;
pub mod query;
pub mod selector;
pub mod tenancy;
pub mod view_key;
