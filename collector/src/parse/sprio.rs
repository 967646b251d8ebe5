//! `sprio -h -o '%i|%u|%r|%Y|%A|%F|%J|%P|%Q|%T'`: weighted priority factors of pending
//! jobs. REST has no equivalent; the CLI source reads it.

use super::ParseError;
use crate::model::priority::JobPriority;
use crate::model::Interner;

/// The arguments the parser expects the output of (one line per pending job and partition).
pub const SPRIO_ARGS: &[&str] = &["-h", "-o", "%i|%u|%r|%Y|%A|%F|%J|%P|%Q|%T"];

/// Parses the fixed-format output of [`SPRIO_ARGS`].
pub fn parse_sprio(text: &str, names: &mut Interner) -> Result<Vec<JobPriority>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('|').collect();
        let [id, user, part, prio, age, fs, size, pfac, qos, tres] = f[..] else {
            return Err(ParseError::Line {
                line: i + 1,
                msg: format!(
                    "expected 10 '|'-separated fields (sprio {}), found {}",
                    SPRIO_ARGS.join(" "),
                    f.len()
                ),
            });
        };
        let num = |v: &str, what: &str| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| ParseError::Line {
                    line: i + 1,
                    msg: format!("{what} {v:?} is not a number"),
                })
        };
        let job_id = id.trim().parse::<u64>().map_err(|_| ParseError::Line {
            line: i + 1,
            msg: format!("job id {id:?} is not a number"),
        })?;
        // `cpu=62,mem=31`: the TRES factor is their sum; an empty field is 0.
        let tres = tres
            .split(',')
            .filter_map(|kv| {
                kv.split_once('=')
                    .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            })
            .filter(|x| x.is_finite())
            .sum();
        out.push(JobPriority {
            job_id,
            partition: names.intern(part.trim()),
            user: names.intern(user.trim()),
            priority: num(prio, "priority")?,
            age: num(age, "age factor")?,
            fairshare: num(fs, "fairshare factor")?,
            job_size: num(size, "job size factor")?,
            partition_factor: num(pfac, "partition factor")?,
            qos: num(qos, "QOS factor")?,
            tres,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_capture() {
        let text = include_str!("../../testdata/cli/22.05.8/sprio.txt");
        let p = parse_sprio(text, &mut Interner::default()).expect("parses");
        let j = p.iter().find(|j| j.job_id == 1133).expect("job 1133");
        assert_eq!((&*j.partition, &*j.user), ("debug", "alice"));
        assert_eq!(
            (j.priority, j.fairshare, j.job_size, j.partition_factor),
            (2556.0, 1429.0, 34.0, 1000.0)
        );
        assert_eq!(j.tres, 93.0);
    }

    #[test]
    fn hostile_lines_name_the_line() {
        let e =
            parse_sprio("1|a|p|1|0|0|0|0|0|\nx|y\n", &mut Interner::default()).expect_err("short");
        assert!(e.to_string().starts_with("line 2"), "{e}");
        let e = parse_sprio("1|a|p|lots|0|0|0|0|0|\n", &mut Interner::default()).expect_err("nan");
        assert!(e.to_string().contains("priority"), "{e}");
        assert!(parse_sprio("", &mut Interner::default())
            .expect("empty")
            .is_empty());
    }
}
