//! The `[chargeback]` config section.

use crate::period::{Calendar, Period};
use crate::rates::RateCard;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[chargeback] store = "...", rate_card = "...", period = "month", time_zone = "UTC"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The redb usage store (one file; several clusters share it).
    pub store: PathBuf,
    /// The TOML rate card.
    pub rate_card: PathBuf,
    /// `month` (default), `week`, `day`, or a length like `6h`.
    #[serde(default = "month")]
    pub period: String,
    /// IANA time zone of period boundaries and of dates in the rate card.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn month() -> String {
    "month".into()
}

fn utc() -> String {
    "UTC".into()
}

impl Settings {
    /// Relative paths are relative to the config file's directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.store, &mut self.rate_card] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub fn calendar(&self) -> Result<Calendar, String> {
        let p: Period = self.period.parse().map_err(|e| format!("chargeback.{e}"))?;
        Calendar::new(p, &self.time_zone).map_err(|e| format!("chargeback.{e}"))
    }

    /// The calendar and the validated rate card.
    pub fn load(&self) -> Result<(Calendar, RateCard), String> {
        let cal = self.calendar()?;
        let card = RateCard::load(&self.rate_card, &cal)?;
        Ok((cal, card))
    }
}
