//! Billing periods in a time zone: calendar months (the default), ISO weeks (Monday first),
//! days, or a custom fixed length counted from the Unix epoch. Boundaries are local
//! midnights, so a day in a zone with daylight saving time may be 23 or 25 hours long; the
//! tz database is bundled (jiff), so it works offline.

use crate::record::MAX_EPOCH;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// How long a billing period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    /// A fixed length in seconds, periods aligned to the Unix epoch.
    Fixed(u64),
}

impl std::str::FromStr for Period {
    type Err = String;
    /// `month`, `week`, `day`, or a custom length `<N>s`, `<N>m`, `<N>h`, `<N>d`.
    fn from_str(s: &str) -> Result<Period, String> {
        match s {
            "month" => return Ok(Period::Month),
            "week" => return Ok(Period::Week),
            "day" => return Ok(Period::Day),
            _ => {}
        }
        let bad =
            || format!("period {s:?}: expected month, week, day or a length like 6h, 90m, 7d");
        let (num, unit) = s.split_at(s.len().saturating_sub(1));
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        match n.checked_mul(mult) {
            Some(len) if len > 0 => Ok(Period::Fixed(len)),
            _ => Err(bad()),
        }
    }
}

/// Periods in one time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub period: Period,
    pub tz: TimeZone,
}

impl Calendar {
    /// `zone` is an IANA name (`UTC`, `Europe/Paris`).
    pub fn new(period: Period, zone: &str) -> Result<Calendar, String> {
        let tz = TimeZone::get(zone).map_err(|e| format!("time zone {zone:?}: {e}"))?;
        Ok(Calendar { period, tz })
    }

    /// The period `[start, end)` holding the instant `t`.
    pub fn period_of(&self, t: u64) -> (u64, u64) {
        let t = t.min(MAX_EPOCH);
        if let Period::Fixed(len) = self.period {
            let start = t - t % len;
            return (start, start.saturating_add(len));
        }
        let date = Timestamp::from_second(t as i64)
            .map(|ts| ts.to_zoned(self.tz.clone()).date())
            .unwrap_or(Date::ZERO);
        let (first, next) = match self.period {
            Period::Day => (date, date.checked_add(1.day())),
            Period::Week => {
                let first = date
                    .checked_sub(i64::from(date.weekday().to_monday_zero_offset()).days())
                    .unwrap_or(date);
                (first, first.checked_add(1.week()))
            }
            _ => {
                let first = date.first_of_month();
                (first, first.checked_add(1.month()))
            }
        };
        let start = self.midnight(first).min(t);
        let end = next.map_or(MAX_EPOCH + 1, |d| self.midnight(d)).max(t + 1);
        (start, end)
    }

    /// The first instant of a local date (midnight, or the first instant after a gap).
    pub fn midnight(&self, d: Date) -> u64 {
        d.to_zoned(self.tz.clone())
            .and_then(|z| z.start_of_day())
            .map(|z| z.timestamp().as_second().max(0) as u64)
            .unwrap_or(0)
    }

    /// An instant from `YYYY-MM-DD` (local midnight) or an RFC 3339 timestamp.
    pub fn parse_instant(&self, s: &str) -> Result<u64, String> {
        if let Ok(d) = s.parse::<Date>() {
            return Ok(self.midnight(d));
        }
        let ts: Timestamp = s
            .parse()
            .map_err(|_| format!("{s:?}: expected a date YYYY-MM-DD or an RFC 3339 time"))?;
        u64::try_from(ts.as_second())
            .ok()
            .filter(|&t| t <= MAX_EPOCH)
            .ok_or_else(|| format!("{s:?}: out of range"))
    }
}

/// RFC 3339 in UTC (`2026-01-01T00:00:00Z`), the form FOCUS asks for.
pub fn rfc3339(t: u64) -> String {
    Timestamp::from_second(t.min(MAX_EPOCH) as i64)
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn months_in_a_zone_start_at_local_midnight() {
        let c = Calendar::new(Period::Month, "Europe/Paris").expect("zone");
        let mid_march = c.parse_instant("2026-03-15").expect("date");
        let (s, e) = c.period_of(mid_march);
        assert_eq!(rfc3339(s), "2026-02-28T23:00:00Z");
        // March has the switch to summer time: the period ends at UTC+2 midnight.
        assert_eq!(rfc3339(e), "2026-03-31T22:00:00Z");
    }

    #[test]
    fn weeks_start_on_monday_and_custom_lengths_align_to_the_epoch() {
        let c = Calendar::new(Period::Week, "UTC").expect("zone");
        let (s, e) = c.period_of(c.parse_instant("2026-12-10").expect("thu"));
        assert_eq!(
            (rfc3339(s).as_str(), e - s),
            ("2026-12-07T00:00:00Z", 7 * 86_400)
        );
        let f = Calendar::new("6h".parse().expect("6h"), "UTC").expect("zone");
        assert_eq!(f.period_of(7 * 3600 + 5), (6 * 3600, 12 * 3600));
        assert!("0h".parse::<Period>().is_err());
        assert!("fortnight".parse::<Period>().is_err());
        assert!(Calendar::new(Period::Day, "Mars/Olympus").is_err());
    }

    proptest! {
        #[test]
        fn every_instant_lies_in_its_period_and_periods_tile(
            t in 0u64..4_000_000_000,
            p in prop_oneof![Just("month"), Just("week"), Just("day"), Just("7h")],
            z in prop_oneof![Just("UTC"), Just("America/New_York"), Just("Australia/Lord_Howe")],
        ) {
            let c = Calendar::new(p.parse().expect("period"), z).expect("zone");
            let (s, e) = c.period_of(t);
            prop_assert!(s <= t && t < e);
            prop_assert_eq!(c.period_of(e).0, e, "the next period starts where this one ends");
            prop_assert_eq!(c.period_of(e - 1), (s, e));
        }
    }
}
