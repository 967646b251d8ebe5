//! Plain-text Slurm output: `scontrol show ... -o` key=value lines and Slurm durations.

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
}
