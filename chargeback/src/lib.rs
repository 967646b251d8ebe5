//! Chargeback and showback for Slurm: TRES-seconds per allocation split by billing period,
//! priced by a rate card, persisted in redb, reported as a table, CSV, JSON or FOCUS.
//!
//! Pure and synchronous. Modules import downwards only: [`record`] (allocations), [`period`]
//! (calendars), [`rates`] (rate cards), [`usage`] (splitting an allocation into priced
//! lines), [`store`] (redb), [`report`] (grouping and formats), [`settings`] (the config
//! section).

pub mod period;
pub mod rates;
pub mod record;
pub mod report;
pub mod settings;
pub mod store;
pub mod usage;

pub use period::{Calendar, Period};
pub use rates::RateCard;
pub use record::{Allocation, Tres};
pub use settings::Settings;
pub use store::{Applied, Counters, Store};
