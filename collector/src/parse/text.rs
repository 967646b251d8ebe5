//! Plain-text Slurm output: `scontrol show ... -o` key=value lines and records, Slurm
//! durations and times.

use super::ParseError;

/// Splits `Key=Value Key2=Value with spaces Key3=...` lines into (line number, pairs).
/// A word without `=` continues the previous value (`Reason=lab: drain for update`).
pub fn kv_lines(text: &str) -> impl Iterator<Item = (usize, Vec<(&str, &str)>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with("No ") {
            return None;
        }
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let mut last_end = 0;
        for (start, word) in words(line) {
            match word.split_once('=') {
                Some((k, v))
                    if !k.is_empty()
                        && k.chars().all(|c| {
                            c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == ':'
                        }) =>
                {
                    pairs.push((k, v));
                    last_end = start + word.len();
                }
                _ => {
                    if let Some(last) = pairs.last_mut() {
                        let value_start = last.1.as_ptr() as usize - line.as_ptr() as usize;
                        last_end = start + word.len();
                        last.1 = &line[value_start..last_end];
                    }
                }
            }
        }
        let _ = last_end;
        Some((i + 1, pairs))
    })
}

fn words(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split(' ')
        .scan(0usize, |pos, w| {
            let start = *pos;
            *pos += w.len() + 1;
            Some((start, w))
        })
        .filter(|(_, w)| !w.is_empty())
}

/// `[D-]HH:MM:SS`, `MM:SS`, `MM` (minutes) as seconds; `UNLIMITED`, `INFINITE`, `N/A`, `NONE`
/// and garbage are `None`.
pub fn duration_seconds(s: &str) -> Option<u64> {
    let s = s.trim();
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, s),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    // Checked: a hostile value must not overflow (found by fuzzing).
    let hms = |h: u64, m: u64, s: u64| {
        h.checked_mul(3600)?
            .checked_add(m.checked_mul(60)?)?
            .checked_add(s)
    };
    let secs = match parts.as_slice() {
        [m] if days == 0 => hms(0, *m, 0),
        [h] => hms(*h, 0, 0),
        [m, s] if days == 0 => hms(0, *m, *s),
        [h, m] => hms(*h, *m, 0),
        [h, m, s] => hms(*h, *m, *s),
        _ => None,
    }?;
    days.checked_mul(86_400)?.checked_add(secs)
}

/// One CLI text record: the line it starts on and its `Key=Value` pairs.
pub(super) type Record<'t> = (usize, Vec<(&'t str, &'t str)>);

/// Groups `Key=Value` lines into records: a line whose first key is `start` opens one,
/// other lines continue it. This reads both `scontrol -o show ...` (one line per record)
/// and the default multi-line layout. Yields (first line number, pairs).
pub(super) fn records<'t>(text: &'t str, start: &str) -> Result<Vec<Record<'t>>, ParseError> {
    let mut out: Vec<Record<'t>> = Vec::new();
    for (line, kv) in kv_lines(text) {
        match (kv.first(), out.last_mut()) {
            (Some((k, _)), _) if *k == start => out.push((line, kv)),
            (_, Some((_, rec))) => rec.extend(kv),
            (_, None) => {
                return Err(ParseError::Line {
                    line,
                    msg: format!("expected a line starting with {start}="),
                })
            }
        }
    }
    Ok(out)
}

/// The value of `key` in a record; `(null)` and `N/A` read as empty.
pub(super) fn get<'t>(kv: &[(&'t str, &'t str)], key: &str) -> &'t str {
    kv.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .filter(|v| !matches!(*v, "(null)" | "N/A" | "n/a"))
        .unwrap_or("")
}

/// A count: absent is `None`, present but not a number is an error naming the line.
pub(super) fn count(
    kv: &[(&str, &str)],
    key: &str,
    line: usize,
) -> Result<Option<u64>, ParseError> {
    let v = get(kv, key);
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<u64>().map(Some).map_err(|_| ParseError::Line {
        line,
        msg: format!("{key}={v:?} is not a count"),
    })
}

/// Words Slurm prints for "no time".
pub(super) fn is_no_time(v: &str) -> bool {
    ["unknown", "none", "n/a", "(null)", "unlimited", "infinite"]
        .iter()
        .any(|w| v.eq_ignore_ascii_case(w))
}

/// A Slurm time as epoch seconds: digits (`SLURM_TIME_FORMAT=%s`) or ISO 8601
/// `YYYY-MM-DDTHH:MM:SS` read as UTC (scontrol under `TZ=UTC`). `0`, the words Slurm uses
/// for "no time" and anything malformed are `None`.
pub fn time_epoch(v: &str) -> Option<u64> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().filter(|&t| t > 0 && t < 0xffff_fffe);
    }
    let (date, clock) = v.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut c = clock.splitn(3, ':').map(|p| p.parse::<u32>().ok());
    let (h, mi, s) = (c.next()??, c.next()??, c.next().unwrap_or(Some(0))?);
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&da)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, da);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    u64::try_from(secs).ok().filter(|&t| t > 0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_with_spaces_in_values() {
        let lines: Vec<_> = kv_lines(
            "NodeName=a State=IDLE+DRAIN Reason=lab: drain now [root@x] TRES=cpu=2,mem=1G\n\n",
        )
        .collect();
        assert_eq!(lines.len(), 1);
        let (n, kv) = &lines[0];
        assert_eq!(*n, 1);
        assert_eq!(kv[0], ("NodeName", "a"));
        assert_eq!(kv[2], ("Reason", "lab: drain now [root@x]"));
        assert_eq!(kv[3], ("TRES", "cpu=2,mem=1G"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("3-00:00:00"), Some(259_200));
        assert_eq!(duration_seconds("01:00:00"), Some(3600));
        assert_eq!(duration_seconds("30:00"), Some(1800));
        assert_eq!(duration_seconds("10"), Some(600));
        assert_eq!(duration_seconds("1-2"), Some(93_600));
        assert_eq!(duration_seconds("UNLIMITED"), None);
        // Minutes that overflow seconds (the fuzzer's find).
        assert_eq!(duration_seconds("999999999999999999"), None);
        assert_eq!(duration_seconds("99999999999999999-00:00:00"), None);
        assert_eq!(duration_seconds(""), None);
    }

    #[test]
    fn times() {
        assert_eq!(time_epoch("2026-11-29T11:12:17"), Some(1_795_950_737));
        assert_eq!(time_epoch("1970-01-01T00:00:01"), Some(1));
        assert_eq!(time_epoch("2024-02-29T00:00:00"), Some(1_709_164_800));
        assert_eq!(time_epoch("1795950737"), Some(1_795_950_737));
        assert_eq!(time_epoch("0"), None);
        assert_eq!(time_epoch("Unknown"), None);
        assert_eq!(time_epoch("2026-13-01T00:00:00"), None);
        assert_eq!(time_epoch("2026-11-29T25:00:00"), None);
        assert_eq!(time_epoch("2026-11-29"), None);
        assert_eq!(time_epoch("T:"), None);
        assert_eq!(time_epoch("99999999999999999999999"), None);
        assert_eq!(time_epoch("4294967294"), None);
    }
}
