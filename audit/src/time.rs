//! RFC 3339 times in UTC, without a calendar dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, saturating (0 before 1970).
pub fn to_unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The time `us` microseconds after the Unix epoch.
pub fn from_unix_us(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

// Days since 1970-01-01 to a civil date, and back (H. Hinnant's algorithms).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-28T12:34:56.123456Z`.
pub fn format_rfc3339_us(us: u64) -> String {
    let secs = us / 1_000_000;
    let micros = us % 1_000_000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses `2026-11-28`, `2026-11-28T12:00:00Z`, with optional fraction and a `+hh:mm` /
/// `-hh:mm` offset, or `@<unix seconds>`. For the CLI's `--from` and `--to`.
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    let bad =
        || format!("{s:?} is not a time (use 2026-11-28, 2026-11-28T12:00:00Z or @1700000000)");
    if let Some(unix) = s.strip_prefix('@') {
        let secs: u64 = unix.parse().map_err(|_| bad())?;
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let num = |t: &str| -> Result<u32, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d), None) if y.len() == 4 => (num(y)?, num(m)?, num(d)?),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return Err(bad());
    }
    let mut secs = days_from_civil(i64::from(y), m, d) * 86_400;
    let mut micros = 0i64;
    if let Some(rest) = rest {
        let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
            (c, 0i64)
        } else if let Some(i) = rest.rfind(['+', '-']) {
            let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
            let (oh, om) = rest[i + 1..].split_once(':').ok_or_else(bad)?;
            (
                &rest[..i],
                sign * (i64::from(num(oh)?) * 3600 + i64::from(num(om)?) * 60),
            )
        } else {
            return Err(bad());
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (clock, None),
        };
        let mut f = hms.split(':');
        let (h, mi, se) = match (f.next(), f.next(), f.next(), f.next()) {
            (Some(h), Some(mi), Some(se), None) => (num(h)?, num(mi)?, num(se)?),
            _ => return Err(bad()),
        };
        if h > 23 || mi > 59 || se > 60 {
            return Err(bad());
        }
        secs += i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se) - offset_secs;
        if let Some(frac) = frac {
            let digits: String = frac.chars().take(6).collect();
            let scale = 10i64.pow(6 - u32::try_from(digits.len()).map_err(|_| bad())?);
            micros = i64::from(num(&digits)?) * scale;
        }
    }
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    let micros = u64::try_from(micros).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let us = 1_764_333_296_123_456;
        let text = format_rfc3339_us(us);
        assert_eq!(text, "2025-11-28T12:34:56.123456Z");
        assert_eq!(to_unix_us(parse_time(&text).expect("parses")), us);
        assert_eq!(format_rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn parses_dates_offsets_and_unix_seconds() {
        let day = parse_time("2024-02-29").expect("date");
        assert_eq!(to_unix_us(day), 1_709_164_800_000_000);
        let off = parse_time("2024-02-29T01:00:00+01:00").expect("offset");
        assert_eq!(off, day);
        assert_eq!(to_unix_us(parse_time("@10").expect("unix")), 10_000_000);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2024-13-01").is_err());
    }
}
