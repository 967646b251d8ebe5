//! Slurm's compact lists: host lists (`cpu-[01-10],gpu-[1,3]`), array task sets
//! (`9-40%8`, `1,3,5-7`, `1-99:2`), TRES strings (`cpu=64,mem=62.50G,gres/gpu=8`) and
//! GRES strings (`gpu:a100:2(IDX:0-1)`).

/// A host list expanding past this many names is refused as hostile.
pub const MAX_HOSTS: usize = 1_000_000;

/// Expands a Slurm host list. Errors name the part that is malformed.
pub fn expand(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in split_top(list, ',') {
        let item = item.trim();
        if item.is_empty() || item == "(null)" {
            continue;
        }
        expand_one(item, &mut out)?;
        if out.len() > MAX_HOSTS {
            return Err(format!("host list expands past {MAX_HOSTS} names"));
        }
    }
    Ok(out)
}

fn expand_one(item: &str, out: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = item.find('[') else {
        out.push(item.to_owned());
        return Ok(());
    };
    let close = item[open..]
        .find(']')
        .map(|c| open + c)
        .ok_or_else(|| format!("unclosed '[' in host list item {item:?}"))?;
    let (prefix, ranges, rest) = (&item[..open], &item[open + 1..close], &item[close + 1..]);
    let mut tails = Vec::new();
    expand_one(rest, &mut tails)?;
    for r in ranges.split(',') {
        let (lo, hi) = match r.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (r.trim(), r.trim()),
        };
        let width = lo.len();
        let a: u64 = lo
            .parse()
            .map_err(|_| format!("bad range start {lo:?} in host list item {item:?}"))?;
        let b: u64 = hi
            .parse()
            .map_err(|_| format!("bad range end {hi:?} in host list item {item:?}"))?;
        if b < a {
            return Err(format!("descending range {r:?} in host list item {item:?}"));
        }
        let adds = ((b - a) as usize)
            .saturating_add(1)
            .saturating_mul(tails.len());
        if b - a >= MAX_HOSTS as u64 || out.len().saturating_add(adds) > MAX_HOSTS {
            return Err(format!("host list expands past {MAX_HOSTS} names"));
        }
        for n in a..=b {
            for t in &tails {
                out.push(format!("{prefix}{n:0width$}{t}"));
            }
        }
    }
    Ok(())
}

/// Splits on `sep` outside brackets and parentheses.
pub fn split_top(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut depth = 0i32;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            c if c == sep && depth <= 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter()
}

/// How many tasks an array task set stands for (`9-40%8` is 32). Unparsable parts count 1,
/// so a job is never counted as zero jobs.
pub fn array_task_count(set: &str) -> u64 {
    let set = set.split('%').next().unwrap_or("").trim();
    if set.is_empty() {
        return 1;
    }
    let mut total: u64 = 0;
    for part in set.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((r, s)) => (
                r,
                s.trim().parse::<u64>().ok().filter(|&s| s > 0).unwrap_or(1),
            ),
            None => (part, 1),
        };
        let n = match range.split_once('-') {
            Some((a, b)) => match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
                (Ok(a), Ok(b)) if b >= a => (b - a) / step + 1,
                _ => 1,
            },
            None => 1,
        };
        total = total.saturating_add(n);
    }
    total.max(1)
}

/// Parsed TRES string: only the parts the model uses.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tres {
    pub cpu: Option<u64>,
    pub mem_bytes: Option<u64>,
    pub node: Option<u64>,
    pub gpus: Option<u64>,
    /// The first GPU type named (`gres/gpu:a100=2` -> `a100`).
    pub gpu_type: Option<String>,
}

/// Parses `cpu=64,mem=62.50G,node=3,billing=64,gres/gpu=8` (also `gres/gpu:a100=4`).
pub fn parse_tres(s: &str) -> Tres {
    let mut t = Tres::default();
    let mut typed_gpus: Option<u64> = None;
    for part in s.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim() {
            "cpu" => t.cpu = v.trim().parse().ok(),
            "mem" => t.mem_bytes = parse_mem_mib_suffix(v),
            "node" => t.node = v.trim().parse().ok(),
            "gres/gpu" => t.gpus = v.trim().parse().ok(),
            k if k.starts_with("gres/gpu:") => {
                if t.gpu_type.is_none() {
                    t.gpu_type = k.strip_prefix("gres/gpu:").map(str::to_owned);
                }
                if let Ok(n) = v.trim().parse::<u64>() {
                    typed_gpus = Some(typed_gpus.unwrap_or(0) + n);
                }
            }
            _ => {}
        }
    }
    if t.gpus.is_none() {
        t.gpus = typed_gpus;
    }
    t
}

/// `62.50G`, `32000M`, `1.50T`, `512K`, or a bare number of MiB, as bytes.
pub fn parse_mem_mib_suffix(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()? {
        'K' | 'k' => (&v[..v.len() - 1], 1u64 << 10),
        'M' | 'm' => (&v[..v.len() - 1], 1 << 20),
        'G' | 'g' => (&v[..v.len() - 1], 1 << 30),
        'T' | 't' => (&v[..v.len() - 1], 1 << 40),
        'P' | 'p' => (&v[..v.len() - 1], 1 << 50),
        _ => (v, 1 << 20),
    };
    let x: f64 = num.parse().ok()?;
    (x.is_finite() && x >= 0.0).then(|| (x * mult as f64).round() as u64)
}

/// GPUs in a GRES string: total count and the first type seen.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Gres {
    pub gpus: u64,
    pub gpu_type: String,
}

/// Parses `gpu:a100:4`, `gpu:a100:2(IDX:0-1)`, `gpu:4(S:0-1)`, `gpu:0`, several comma
/// separated entries, and `(null)` / `N/A`.
pub fn parse_gres(s: &str) -> Gres {
    let mut g = Gres::default();
    for entry in split_top(s, ',') {
        let entry = entry.split('(').next().unwrap_or("").trim();
        let mut fields = entry.split(':');
        if fields.next() != Some("gpu") {
            continue;
        }
        let rest: Vec<&str> = fields.collect();
        let (ty, count) = match rest.as_slice() {
            [count] => ("", *count),
            [ty, count, ..] => (*ty, *count),
            [] => ("", "1"),
        };
        if let Ok(n) = count.parse::<u64>() {
            g.gpus += n;
            if g.gpu_type.is_empty() && !ty.is_empty() {
                g.gpu_type = ty.to_owned();
            }
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lists() {
        assert_eq!(
            expand("cpu-[01-03],gpu-1").expect("valid"),
            ["cpu-01", "cpu-02", "cpu-03", "gpu-1"]
        );
        assert_eq!(expand("n[1,3-4]").expect("valid"), ["n1", "n3", "n4"]);
        assert_eq!(
            expand("r[1-2]-n[01-02]").expect("valid"),
            ["r1-n01", "r1-n02", "r2-n01", "r2-n02"]
        );
        assert!(expand("").expect("valid").is_empty());
        assert!(expand("n[1-").is_err());
        assert!(expand("n[5-1]").is_err());
        assert!(expand("n[0-99999999999]").is_err());
        assert!(expand("n[a-b]").is_err());
    }

    #[test]
    fn array_tasks() {
        assert_eq!(array_task_count("9-40%8"), 32);
        assert_eq!(array_task_count("1,3,5-7"), 5);
        assert_eq!(array_task_count("1-99:2"), 50);
        assert_eq!(array_task_count(""), 1);
        assert_eq!(array_task_count("garbage"), 1);
    }

    #[test]
    fn tres_strings() {
        let t = parse_tres("cpu=64,mem=62.50G,node=3,billing=64,gres/gpu=8");
        assert_eq!(t.cpu, Some(64));
        assert_eq!(t.mem_bytes, Some(67_108_864_000));
        assert_eq!(t.node, Some(3));
        assert_eq!(t.gpus, Some(8));
        assert_eq!(parse_tres("gres/gpu:a100=2,gres/gpu:v100=1").gpus, Some(3));
        assert_eq!(
            parse_tres("gres/gpu=2,gres/gpu:a100=2").gpu_type.as_deref(),
            Some("a100")
        );
        assert_eq!(parse_tres("mem=32000M").mem_bytes, Some(32000 << 20));
        assert_eq!(parse_tres("").cpu, None);
        assert_eq!(parse_tres("cpu=x,=,mem").cpu, None);
    }

    #[test]
    fn gres_strings() {
        assert_eq!(
            parse_gres("gpu:a100:4"),
            Gres {
                gpus: 4,
                gpu_type: "a100".into()
            }
        );
        assert_eq!(parse_gres("gpu:a100:2(IDX:0-1)").gpus, 2);
        assert_eq!(parse_gres("gpu:a100:2(IDX:0,2),mps:100").gpus, 2);
        assert_eq!(parse_gres("gpu:0").gpus, 0);
        assert_eq!(parse_gres("gpu:4(S:0-1)").gpus, 4);
        assert_eq!(parse_gres("(null)").gpus, 0);
        assert_eq!(parse_gres("gpu:a100:0(IDX:N/A)").gpus, 0);
        assert_eq!(parse_gres("gpu:a100:2,gpu:v100:1").gpus, 3);
    }
}
