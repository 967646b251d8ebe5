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

/// GPUs in a GRES string: the total and the count of each type, in the order first seen
/// (untyped GPUs under `""`). The per-type counts always sum to `gpus`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Gres {
    pub gpus: u64,
    /// The first GPU type named, empty when none is.
    pub gpu_type: String,
    pub by_type: Vec<(String, u64)>,
}

impl Gres {
    fn add(&mut self, ty: &str, n: u64) {
        self.gpus = self.gpus.saturating_add(n);
        if self.gpu_type.is_empty() && !ty.is_empty() {
            self.gpu_type = ty.to_owned();
        }
        match self.by_type.iter_mut().find(|(t, _)| t == ty) {
            Some((_, c)) => *c = c.saturating_add(n),
            None => self.by_type.push((ty.to_owned(), n)),
        }
    }

    /// The count of one type (`""` for untyped).
    pub fn of(&self, ty: &str) -> u64 {
        self.by_type
            .iter()
            .find(|(t, _)| t == ty)
            .map_or(0, |(_, n)| *n)
    }
}

/// A GRES count: digits with an optional `K`/`M`/`G` (powers of 1024, as Slurm reads them).
fn gres_count(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n.saturating_mul(mult))
}

/// The type of a GRES entry: `(null)`, `N/A` and empty mean untyped.
fn gres_type(t: &str) -> &str {
    let t = t.trim();
    if matches!(t, "(null)" | "N/A") {
        ""
    } else {
        t
    }
}

/// Parses one `gpu[:type][:count][(annotations)]` entry, or `gpu[:type]=count` (TRES
/// spelling); `gres/` and `gres:` prefixes are accepted. `None` for other GRES (`shard`,
/// `mps`, ...) and for entries without a readable count.
fn gpu_entry(entry: &str) -> Option<(&str, u64)> {
    let entry = entry.trim();
    let entry = entry
        .strip_prefix("gres/")
        .or_else(|| entry.strip_prefix("gres:"))
        .unwrap_or(entry);
    if let Some((key, v)) = entry.split_once('=') {
        let mut k = key.trim().splitn(2, ':');
        if k.next() != Some("gpu") {
            return None;
        }
        return Some((gres_type(k.next().unwrap_or("")), gres_count(v)?));
    }
    // Fields split outside parentheses, so `gpu:(null):8(IDX:0-7)` is
    // [`gpu`, `(null)`, `8(IDX:0-7)`]; annotations (`(S:0-1)`, `(IDX:0,2-3)`) follow the count.
    let mut fields: Vec<&str> = split_top(entry, ':').map(str::trim).collect();
    if fields.first().copied() != Some("gpu") {
        return None;
    }
    fields.remove(0);
    // `no_consume` is a flag, not a type.
    fields.retain(|f| !f.eq_ignore_ascii_case("no_consume"));
    let strip = |f: &str| -> String {
        match f.find('(') {
            Some(0) => f.to_owned(),
            Some(i) => f[..i].trim().to_owned(),
            None => f.to_owned(),
        }
    };
    match fields.as_slice() {
        [] => Some(("", 1)),
        [one] => match gres_count(&strip(one)) {
            Some(n) => Some(("", n)),
            // `gpu:a100` names a type and means one.
            None => Some((gres_type(one.split('(').next().unwrap_or("")), 1)),
        },
        [ty, .., count] => Some((gres_type(ty), gres_count(&strip(count))?)),
    }
}

/// Parses a node's GRES (`Gres=` / `GresUsed=`): `gpu:a100:4`, `gpu:8`,
/// `gpu:(null):8(IDX:0-7)`, `gpu:h100:2(S:0-1),gpu:h200:4(S:0-1)`, MIG profiles
/// (`gpu:a100_3g.20gb:2`), `(null)` / `N/A`. Shards and MPS are not GPUs.
pub fn parse_gres(s: &str) -> Gres {
    let mut g = Gres::default();
    for entry in split_top(s, ',') {
        if let Some((ty, n)) = gpu_entry(entry) {
            g.add(ty, n);
        }
    }
    g
}

/// GPUs a job names in a request or detail string, in any spelling Slurm has used:
/// `gres/gpu=4`, `gres/gpu:h100=2`, `gres:gpu:2`, `gpu:h100:4(IDX:0-3)`, several entries.
/// `None` when the string names no GPUs at all (so the next field is asked).
pub fn parse_gpu_request(s: &str) -> Option<Gres> {
    let mut g = parse_gres(s);
    if g.by_type.is_empty() {
        return None;
    }
    // A TRES string counts typed GPUs twice: `gres/gpu=4,gres/gpu:a100=4` is four GPUs.
    let untyped = g.of("");
    let typed = g.gpus - untyped;
    if s.contains('=') && untyped > 0 && typed > 0 {
        g.by_type.retain(|(t, _)| !t.is_empty());
        if untyped > typed {
            g.by_type.push((String::new(), untyped - typed));
        }
        g.gpus = untyped.max(typed);
    }
    Some(g)
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
        let g = parse_gres("gpu:a100:4");
        assert_eq!((g.gpus, g.gpu_type.as_str()), (4, "a100"));
        assert_eq!(parse_gres("gpu:a100:2(IDX:0-1)").gpus, 2);
        assert_eq!(parse_gres("gpu:a100:2(IDX:0,2),mps:100").gpus, 2);
        assert_eq!(parse_gres("gpu:0").gpus, 0);
        assert_eq!(parse_gres("gpu:4(S:0-1)").gpus, 4);
        assert_eq!(parse_gres("(null)").gpus, 0);
        assert_eq!(parse_gres("gpu:a100:0(IDX:N/A)").gpus, 0);
        assert_eq!(parse_gres("gpu:a100:2,gpu:v100:1").gpus, 3);
        // The production shapes of issue 12.
        let g = parse_gres("gpu:(null):8(IDX:0-7)");
        assert_eq!((g.gpus, g.by_type.clone()), (8, vec![(String::new(), 8)]));
        let g = parse_gres("gpu:h100:2(S:0-1),gpu:h200:4(S:0-1)");
        assert_eq!((g.of("h100"), g.of("h200"), g.gpus), (2, 4, 6));
        assert_eq!(parse_gres("gpu:8").of(""), 8);
        assert_eq!(parse_gres("gpu:a100_3g.20gb:3,gpu:a100_1g.5gb:7").gpus, 10);
        assert_eq!(parse_gres("shard:16,mps:400,gpu:2").gpus, 2);
        assert_eq!(parse_gres("gpu:a100:no_consume:2").of("a100"), 2);
        assert_eq!(parse_gres("gpu:a100(S:0)").of("a100"), 1);
        assert_eq!(parse_gres("gpu:2K").gpus, 2048);
        assert_eq!(parse_gres("gpu:x:y:(").gpus, 0, "no count, no GPUs");
    }

    #[test]
    fn gpu_requests_in_every_spelling() {
        let n = |s: &str| parse_gpu_request(s).map(|g| g.gpus);
        assert_eq!(n("gres/gpu=4"), Some(4));
        assert_eq!(n("gres/gpu:h100=2"), Some(2));
        assert_eq!(n("gres:gpu:2"), Some(2));
        assert_eq!(n("gpu:h100:4(IDX:0-3)"), Some(4));
        assert_eq!(n("gres/gpu=4,gres/gpu:a100=4"), Some(4));
        assert_eq!(n("gres/gpu=5,gres/gpu:a100=4"), Some(5));
        assert_eq!(n("cpu=4,mem=1G"), None);
        assert_eq!(n("gres/shard=2"), None);
        assert_eq!(n(""), None);
        let g = parse_gpu_request("gres/gpu:h100=2").expect("names GPUs");
        assert_eq!(g.gpu_type, "h100");
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;

        /// One generated GRES entry and the GPUs it stands for, by type.
        fn entry() -> impl Strategy<Value = (String, Option<(String, u64)>)> {
            let ty = prop_oneof![
                Just(String::new()),
                Just("(null)".to_owned()),
                "[a-z][a-z0-9]{0,5}",
                "[a-z][0-9]{2,3}_[1-7]g\\.[0-9]{1,2}gb",
            ];
            let annot = prop_oneof![
                Just(String::new()),
                "\\(S:[0-3](-[0-3])?\\)",
                "\\(IDX:[0-7](-[0-7])?(,[0-7]){0,2}\\)",
                Just("(IDX:N/A)".to_owned()),
            ];
            let other = prop_oneof![Just("shard"), Just("mps"), Just("nic"), Just("gpfs")];
            prop_oneof![
                3 => (ty, 0u64..64, annot.clone()).prop_map(|(t, n, a)| {
                    let text = if t.is_empty() { format!("gpu:{n}{a}") } else { format!("gpu:{t}:{n}{a}") };
                    let t = if t == "(null)" { String::new() } else { t };
                    (text, Some((t, n)))
                }),
                1 => (other, 0u64..500, annot).prop_map(|(o, n, a)| (format!("{o}:{n}{a}"), None)),
            ]
        }

        proptest! {
            #[test]
            fn every_entry_is_counted_by_its_type(entries in proptest::collection::vec(entry(), 0..6)) {
                let text: Vec<&str> = entries.iter().map(|(t, _)| t.as_str()).collect();
                let g = parse_gres(&text.join(","));
                let mut want: Vec<(String, u64)> = Vec::new();
                for (ty, n) in entries.iter().filter_map(|(_, e)| e.clone()) {
                    match want.iter_mut().find(|(t, _)| *t == ty) {
                        Some((_, c)) => *c += n,
                        None => want.push((ty, n)),
                    }
                }
                prop_assert_eq!(&g.by_type, &want);
                prop_assert_eq!(g.gpus, want.iter().map(|(_, n)| n).sum::<u64>());
            }

            #[test]
            fn never_panics(s in "\\PC{0,60}") {
                let g = parse_gres(&s);
                prop_assert_eq!(g.gpus, g.by_type.iter().map(|(_, n)| n).sum::<u64>());
                let _ = parse_gpu_request(&s);
            }
        }
    }
}
