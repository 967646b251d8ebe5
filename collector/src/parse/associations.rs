//! The association tree: limits from slurmdbd (`/slurmdb/vX/associations`), fairshare from
//! slurmctld (`sshare -a -l -P`, or `/slurm/vX/shares` from v0.0.40 on), and [`merge`] to
//! pair them into one record per (account, user, partition).
//!
//! Field paths are the same from v0.0.38 to v0.0.44 (SchedMD's `data_parser` keeps them);
//! what changes is the encoding of numbers (`5` vs `{"set":true,"number":5}`), which
//! [`Flex`] absorbs. Slurm's own naming is crossed over for jobs: `max/jobs/active` is
//! MaxJobs (per user) and `max/jobs/per/count` is GrpJobs.
//!
//! Elements are read as `serde_json::Value` one at a time (the document itself is streamed),
//! so a field of an unexpected type becomes "unset" instead of failing the record.

use super::doc::{small_document, stream_array};
use super::flex::{Flex, FlexStr};
use super::hostlist::parse_mem_mib_suffix;
use super::stream::parse_owned;
use super::ParseError;
use crate::model::accounts::{AssocLimits, Fairshare, TresAmounts};
use crate::model::{Association, Interner, Name};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

const MIB: u64 = 1 << 20;
/// `SLURMDB_FS_USE_PARENT`: the association takes its parent's shares (`fairshare=parent`).
const FS_USE_PARENT: u64 = 0x7fff_ffff;
/// How serializer/json writes a float infinity (and NaN): `(double)INFINITE64`.
const INFINITE64_AS_F64: f64 = 1.844_674_407_370_955e19;

/// The value at `path` under `v`, if every step is an object that has the key.
pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// A tolerant number at `path` (missing or oddly typed is unset).
pub(crate) fn num(v: &Value, path: &[&str]) -> Flex {
    at(v, path)
        .and_then(|x| Flex::deserialize(x).ok())
        .unwrap_or_default()
}

/// A tolerant string at `path` (numbers are written out, null and objects are empty).
pub(crate) fn text(v: &Value, path: &[&str]) -> String {
    at(v, path)
        .and_then(|x| FlexStr::deserialize(x).ok())
        .map(|s| s.0.into_owned())
        .unwrap_or_default()
}

/// Slurm minutes as seconds; sentinels and negatives are unset.
pub(crate) fn minutes(f: Flex) -> Option<u64> {
    f.u64().map(|m| m.saturating_mul(60))
}

/// A list of names: a JSON array of strings, or one comma separated string.
pub(crate) fn names_at(v: &Value, path: &[&str], names: &mut Interner) -> Vec<Name> {
    match at(v, path) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| names.intern(s))
            .collect(),
        Some(Value::String(s)) => split_names(s, names),
        _ => Vec::new(),
    }
}

pub(crate) fn split_names(s: &str, names: &mut Interner) -> Vec<Name> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| names.intern(s))
        .collect()
}

/// How a TRES value is counted: a plain amount (`GrpTRES`) or TRES-minutes (`GrpTRESMins`),
/// which the model keeps as TRES-seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TresUnit {
    Amount,
    Minutes,
}

/// Accumulates `(tres, value)` pairs; memory values are already in bytes.
#[derive(Default)]
struct TresBuilder {
    t: TresAmounts,
    typed_gpus: Option<u64>,
}

impl TresBuilder {
    fn set(&mut self, key: &str, value: Option<u64>) {
        let Some(value) = value else { return };
        match key {
            "cpu" => self.t.cpus = Some(value),
            "mem" => self.t.memory_bytes = Some(value),
            "node" => self.t.nodes = Some(value),
            "billing" => self.t.billing = Some(value),
            "gres/gpu" => self.t.gpus = Some(value),
            k if k.starts_with("gres/gpu:") => {
                self.typed_gpus = Some(self.typed_gpus.unwrap_or(0).saturating_add(value));
            }
            _ => {}
        }
    }

    fn finish(mut self, unit: TresUnit) -> TresAmounts {
        if self.t.gpus.is_none() {
            self.t.gpus = self.typed_gpus;
        }
        if unit == TresUnit::Minutes {
            let s = |v: Option<u64>| v.map(|v| v.saturating_mul(60));
            let t = self.t;
            self.t = TresAmounts {
                cpus: s(t.cpus),
                memory_bytes: s(t.memory_bytes),
                nodes: s(t.nodes),
                gpus: s(t.gpus),
                billing: s(t.billing),
            };
        }
        self.t
    }
}

/// TRES as slurmdbd's JSON gives them: `[{"type":"cpu","name":null,"count":64},
/// {"type":"gres","name":"gpu","count":4}]`, or a TRES string in some shapes.
pub(crate) fn tres_at(v: &Value, path: &[&str], unit: TresUnit) -> TresAmounts {
    match at(v, path) {
        Some(Value::Array(items)) => {
            let mut b = TresBuilder::default();
            for it in items {
                let ty = text(it, &["type"]).to_ascii_lowercase();
                let name = text(it, &["name"]).to_ascii_lowercase();
                let key = if name.is_empty() {
                    ty
                } else {
                    format!("{ty}/{name}")
                };
                let count = num(it, &["count"]).u64();
                let count = if key == "mem" {
                    count.map(|c| c.saturating_mul(MIB))
                } else {
                    count
                };
                b.set(&key, count);
            }
            b.finish(unit)
        }
        Some(Value::String(s)) => tres_text(s, unit),
        _ => TresAmounts::default(),
    }
}

/// A TRES string as the CLIs print it: `cpu=64,mem=100G,gres/gpu=4` (memory without a
/// suffix is MiB, as in `sshare`'s TRES-minute columns).
pub(crate) fn tres_text(s: &str, unit: TresUnit) -> TresAmounts {
    let mut b = TresBuilder::default();
    for part in s.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let key = k.trim().to_ascii_lowercase();
        let value = if key == "mem" {
            parse_mem_mib_suffix(v)
        } else {
            v.trim().parse::<u64>().ok()
        };
        b.set(&key, value);
    }
    b.finish(unit)
}

fn assoc_limits(v: &Value) -> AssocLimits {
    use TresUnit::{Amount, Minutes};
    AssocLimits {
        grp_tres: tres_at(v, &["max", "tres", "total"], Amount),
        grp_tres_seconds: tres_at(v, &["max", "tres", "group", "minutes"], Minutes),
        grp_tres_run_seconds: tres_at(v, &["max", "tres", "group", "active"], Minutes),
        grp_jobs: num(v, &["max", "jobs", "per", "count"]).u64(),
        grp_jobs_accrue: num(v, &["max", "jobs", "per", "accruing"]).u64(),
        grp_submit_jobs: num(v, &["max", "jobs", "per", "submitted"]).u64(),
        grp_wall_seconds: minutes(num(v, &["max", "per", "account", "wall_clock"])),
        max_jobs: num(v, &["max", "jobs", "active"]).u64(),
        max_jobs_accrue: num(v, &["max", "jobs", "accruing"]).u64(),
        max_submit_jobs: num(v, &["max", "jobs", "total"]).u64(),
        max_tres_per_job: tres_at(v, &["max", "tres", "per", "job"], Amount),
        max_tres_per_node: tres_at(v, &["max", "tres", "per", "node"], Amount),
        max_tres_seconds_per_job: tres_at(v, &["max", "tres", "minutes", "per", "job"], Minutes),
        max_wall_seconds_per_job: minutes(num(v, &["max", "jobs", "per", "wall_clock"])),
    }
}

/// Whether the record carries the `DELETED` flag (slurmdbd lists deleted ones on request).
fn is_deleted(v: &Value) -> bool {
    match v.get("flags") {
        Some(Value::Array(f)) => f
            .iter()
            .filter_map(Value::as_str)
            .any(|s| s.eq_ignore_ascii_case("DELETED")),
        _ => false,
    }
}

fn association(v: &Value, names: &mut Interner) -> Option<Association> {
    if !v.is_object() || is_deleted(v) {
        return None;
    }
    let account = text(v, &["account"]);
    if account.is_empty() {
        return None;
    }
    let user = text(v, &["user"]);
    let parent = if user.is_empty() {
        text(v, &["parent_account"])
    } else {
        account.clone()
    };
    let shares = num(v, &["shares_raw"]).u64();
    // `default.qos` is a name from v0.0.39 on; v0.0.38 may give a name or null.
    let default_qos = match at(v, &["default", "qos"]) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    Some(Association {
        cluster: names.intern(&text(v, &["cluster"])),
        account: names.intern(&account),
        user: names.intern(&user),
        parent_account: names.intern(&parent),
        partition: names.intern(&text(v, &["partition"])),
        shares_raw: shares.filter(|&s| s != FS_USE_PARENT),
        shares_parent: shares == Some(FS_USE_PARENT),
        priority: num(v, &["priority"]).u64(),
        qos: names_at(v, &["qos"], names),
        default_qos: names.intern(&default_qos),
        is_default: matches!(at(v, &["is_default"]), Some(Value::Bool(true)))
            || num(v, &["is_default"]).u64() == Some(1),
        limits: assoc_limits(v),
        fairshare: None,
    })
}

/// Parses `/slurmdb/vX/associations` (v0.0.38 to v0.0.44). Deleted associations and
/// elements without an account are left out.
pub fn parse_associations_json(
    bytes: &[u8],
    names: &mut Interner,
) -> Result<Vec<Association>, ParseError> {
    let mut out = Vec::new();
    stream_array(bytes, "associations", parse_owned::<Value>, |v| {
        if let Some(a) = association(&v, names) {
            out.push(a);
        }
    })?;
    Ok(out)
}

/// `sshare`'s numbers: empty is unset, `inf` is infinite (LevelFS of an idle user).
fn share_num(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity") {
        return Some(f64::INFINITY);
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Parses `sshare -a -l -P` (the header line names the columns; `Partition` and `Cluster`
/// columns are used when present). Leading spaces in `Account` give the tree depth, from
/// which each account's parent is found; a line with an empty `User` is an account node.
pub fn parse_sshare_text(text: &str, names: &mut Interner) -> Result<Vec<Association>, ParseError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with("CLUSTER:"));
    let Some((hline, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let cols: Vec<&str> = header.split('|').map(str::trim).collect();
    let col = |name: &str| cols.iter().position(|c| c.eq_ignore_ascii_case(name));
    let (Some(c_account), Some(c_user)) = (col("Account"), col("User")) else {
        return Err(ParseError::Line {
            line: hline,
            msg: "expected the `sshare -P` header (Account|User|...)".into(),
        });
    };
    let c = |name: &str| col(name);
    let (c_raw, c_norm, c_usage, c_nusage, c_eff, c_fs, c_level, c_run, c_part, c_cluster) = (
        c("RawShares"),
        c("NormShares"),
        c("RawUsage"),
        c("NormUsage"),
        c("EffectvUsage"),
        c("FairShare"),
        c("LevelFS"),
        c("TRESRunMins"),
        c("Partition"),
        c("Cluster"),
    );
    let mut out = Vec::new();
    // (depth, account) of the account nodes on the path to the current line.
    let mut path: Vec<(usize, Name)> = Vec::new();
    for (line, l) in lines {
        let fields: Vec<&str> = l.split('|').collect();
        if fields.len() != cols.len() {
            return Err(ParseError::Line {
                line,
                msg: format!(
                    "expected {} fields, found {} (truncated or not `sshare -P` output)",
                    cols.len(),
                    fields.len()
                ),
            });
        }
        let f = |c: Option<usize>| c.and_then(|i| fields.get(i)).copied().unwrap_or("");
        let raw_account = f(Some(c_account));
        let depth = raw_account.len() - raw_account.trim_start().len();
        let account = raw_account.trim();
        let user = f(Some(c_user)).trim();
        if account.is_empty() {
            return Err(ParseError::Line {
                line,
                msg: "empty Account".into(),
            });
        }
        let parent = if user.is_empty() {
            while path.last().is_some_and(|(d, _)| *d >= depth) {
                path.pop();
            }
            let parent = path.last().map(|(_, a)| a.clone());
            path.push((depth, names.intern(account)));
            parent.unwrap_or_else(|| names.intern(""))
        } else {
            names.intern(account)
        };
        let raw_shares = f(c_raw).trim();
        out.push(Association {
            cluster: names.intern(f(c_cluster).trim()),
            account: names.intern(account),
            user: names.intern(user),
            parent_account: parent,
            partition: names.intern(f(c_part).trim()),
            shares_raw: raw_shares.parse().ok(),
            shares_parent: raw_shares.eq_ignore_ascii_case("parent"),
            fairshare: Some(Fairshare {
                shares_normalized: share_num(f(c_norm)),
                usage_raw: share_num(f(c_usage)),
                usage_normalized: share_num(f(c_nusage)),
                usage_effective: share_num(f(c_eff)),
                factor: share_num(f(c_fs)),
                level: share_num(f(c_level)),
                tres_run_seconds: tres_text(f(c_run), TresUnit::Minutes),
            }),
            ..Association::default()
        });
    }
    Ok(out)
}

/// A float that may be infinite in JSON's encodings (`{"infinite":true}`, `"inf"`).
fn share_flex(v: &Value, path: &[&str]) -> Option<f64> {
    if let Some(Value::String(s)) = at(v, path) {
        return share_num(s);
    }
    let f = num(v, path);
    match f.f64() {
        // A plain float infinity is written as `(double)INFINITE64` (serializer/json).
        _ if f.is_infinite() => Some(f64::INFINITY),
        Some(x) if x >= INFINITE64_AS_F64 => Some(f64::INFINITY),
        x => x,
    }
}

/// Parses `/slurm/vX/shares` (v0.0.40+; earlier plugins have no shares endpoint). A record
/// of type `USER` is a user under the account in `parent`; `ASSOCIATION` is an account.
pub fn parse_shares_json(
    bytes: &[u8],
    names: &mut Interner,
) -> Result<Vec<Association>, ParseError> {
    let (env, doc) = small_document(bytes)?;
    let list = match at(&doc, &["shares", "shares"]).or_else(|| doc.get("shares")) {
        Some(Value::Array(items)) => items,
        _ => {
            return Err(if env.errors.is_empty() {
                ParseError::Missing("shares")
            } else {
                ParseError::Slurm(env.errors.join("; "))
            })
        }
    };
    let mut out = Vec::new();
    for v in list.iter().filter(|v| v.is_object()) {
        let is_user = match v.get("type") {
            Some(Value::Array(t)) => t
                .iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case("USER")),
            Some(Value::String(s)) => s.eq_ignore_ascii_case("USER"),
            _ => false,
        };
        let name = text(v, &["name"]);
        let parent = text(v, &["parent"]);
        if name.is_empty() || (is_user && parent.is_empty()) {
            continue;
        }
        let (account, user) = if is_user {
            (parent.clone(), name)
        } else {
            (name, String::new())
        };
        let shares = num(v, &["shares"]).u64();
        out.push(Association {
            cluster: names.intern(&text(v, &["cluster"])),
            account: names.intern(&account),
            user: names.intern(&user),
            parent_account: names.intern(&parent),
            partition: names.intern(&text(v, &["partition"])),
            shares_raw: shares.filter(|&s| s != FS_USE_PARENT),
            shares_parent: shares == Some(FS_USE_PARENT),
            fairshare: Some(Fairshare {
                shares_normalized: share_flex(v, &["shares_normalized"]),
                usage_raw: share_flex(v, &["usage"]),
                usage_normalized: share_flex(v, &["usage_normalized"]),
                usage_effective: share_flex(v, &["effective_usage"]),
                factor: share_flex(v, &["fairshare", "factor"]),
                level: share_flex(v, &["fairshare", "level"]),
                tres_run_seconds: shares_tres_seconds(v),
            }),
            ..Association::default()
        });
    }
    Ok(out)
}

/// `tres.run_seconds` is a list of `{"name":"cpu","value":N}` in TRES-seconds (memory in
/// MiB-seconds): `sshare` divides the same numbers by 60 for its TRESRunMins column.
fn shares_tres_seconds(v: &Value) -> TresAmounts {
    let Some(Value::Array(items)) = at(v, &["tres", "run_seconds"]) else {
        return TresAmounts::default();
    };
    let mut b = TresBuilder::default();
    for it in items {
        let key = text(it, &["name"]).to_ascii_lowercase();
        let value = num(it, &["value"]).u64();
        let value = if key == "mem" {
            value.map(|m| m.saturating_mul(MIB))
        } else {
            value
        };
        b.set(&key, value);
    }
    b.finish(TresUnit::Amount)
}

/// One record per (account, user, partition): limits, cluster, parent and QOS from
/// slurmdbd, fairshare from `sshare`/`shares`. Records only one side knows are kept.
pub fn merge(limits: Vec<Association>, shares: Vec<Association>) -> Vec<Association> {
    let mut out = limits;
    let mut index: HashMap<(Name, Name, Name), usize> = HashMap::with_capacity(out.len());
    for (i, a) in out.iter().enumerate() {
        index
            .entry((a.account.clone(), a.user.clone(), a.partition.clone()))
            .or_insert(i);
    }
    for s in shares {
        let key = (s.account.clone(), s.user.clone(), s.partition.clone());
        match index.get(&key).and_then(|&i| out.get_mut(i)) {
            Some(a) => {
                if s.fairshare.is_some() {
                    a.fairshare = s.fairshare;
                }
                if a.shares_raw.is_none() && !a.shares_parent {
                    a.shares_raw = s.shares_raw;
                    a.shares_parent = s.shares_parent;
                }
                if a.parent_account.is_empty() {
                    a.parent_account = s.parent_account;
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(s);
            }
        }
    }
    out
}

/// The lab's 22.05 associations merged with its `sshare` capture, for the family tests.
#[cfg(test)]
pub(crate) fn lab_associations(names: &mut Interner) -> Vec<Association> {
    let limits = parse_associations_json(
        include_bytes!("../../testdata/rest/22.05.8/slurmdb_v0.0.38_associations.json"),
        names,
    )
    .expect("the associations capture parses");
    let shares = parse_sshare_text(include_str!("../../testdata/cli/22.05.8/sshare.txt"), names)
        .expect("the sshare capture parses");
    merge(limits, shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSOC_38: &[u8] =
        include_bytes!("../../testdata/rest/22.05.8/slurmdb_v0.0.38_associations.json");
    const SSHARE: &str = include_str!("../../testdata/cli/22.05.8/sshare.txt");

    fn find<'a>(v: &'a [Association], account: &str, user: &str) -> &'a Association {
        v.iter()
            .find(|a| &*a.account == account && &*a.user == user)
            .unwrap_or_else(|| panic!("{account}/{user} missing"))
    }

    #[test]
    fn capture_22_05_gives_limits_qos_and_tree() {
        let v = parse_associations_json(ASSOC_38, &mut Interner::default()).expect("parses");
        assert_eq!(v.len(), 11);
        let bio = find(&v, "biology", "");
        assert_eq!(bio.limits.grp_tres.cpus, Some(64));
        assert_eq!(bio.limits.grp_tres.memory_bytes, None);
        assert_eq!(&*bio.cluster, "lab");
        assert_eq!(&*bio.parent_account, "root");
        assert_eq!(bio.shares_raw, Some(100));
        let carol = find(&v, "chemistry", "carol");
        assert_eq!(carol.limits.max_jobs, Some(2));
        assert_eq!(carol.limits.grp_jobs, None);
        assert_eq!(&*carol.parent_account, "chemistry");
        let qos: Vec<&str> = carol.qos.iter().map(|q| &**q).collect();
        assert_eq!(qos, ["high", "low", "normal"]);
        assert_eq!(&*carol.default_qos, "");
        let root = find(&v, "root", "");
        assert!(root.is_root());
        assert_eq!(&*root.parent_account, "");
        assert_eq!(root.limits, AssocLimits::default());
        assert!(v.iter().all(|a| a.fairshare.is_none()));
    }

    #[test]
    fn sshare_capture_gives_fairshare_and_parents() {
        let v = parse_sshare_text(SSHARE, &mut Interner::default()).expect("parses");
        assert_eq!(v.len(), 11);
        let root = find(&v, "root", "");
        let fs = root.fairshare.as_ref().expect("fairshare");
        assert_eq!(root.shares_raw, None);
        assert_eq!(fs.usage_raw, Some(298553.0));
        assert_eq!(fs.usage_effective, Some(1.0));
        assert_eq!(fs.shares_normalized, Some(0.0));
        assert_eq!(fs.factor, None);
        assert_eq!(fs.tres_run_seconds.cpus, Some(370221 * 60));
        assert_eq!(fs.tres_run_seconds.gpus, Some(12941 * 60));
        assert_eq!(
            fs.tres_run_seconds.memory_bytes,
            Some(4_750_449_574 * MIB * 60)
        );
        let phys = find(&v, "physics", "");
        assert_eq!(&*phys.parent_account, "root");
        let pf = phys.fairshare.as_ref().expect("fairshare");
        assert_eq!(pf.level, Some(0.484714));
        assert_eq!(pf.usage_normalized, Some(0.685406));
        let alice = find(&v, "physics", "alice");
        assert_eq!(&*alice.parent_account, "physics");
        let af = alice.fairshare.as_ref().expect("fairshare");
        assert_eq!(af.factor, Some(0.142857));
        assert_eq!(af.shares_normalized, Some(0.333333));
        assert_eq!(af.usage_raw, Some(126053.0));
        assert_eq!(af.usage_effective, Some(0.616003));
        assert_eq!(af.level, Some(0.541123));
        let carol = find(&v, "chemistry", "carol");
        assert_eq!(
            carol.fairshare.as_ref().and_then(|f| f.factor),
            Some(0.714286)
        );
        let rr = find(&v, "root", "root");
        assert_eq!(
            rr.fairshare.as_ref().and_then(|f| f.level),
            Some(f64::INFINITY)
        );
        assert_eq!(&*rr.parent_account, "root");
    }

    #[test]
    fn sshare_nested_accounts_find_their_parent() {
        let text = "Account|User|RawShares|NormShares|RawUsage|EffectvUsage|FairShare\n\
                    root|||0.000000|10|1.000000|\n \
                    science||parent||10|1.000000|\n  \
                    physics||10|1.0|10|1.000000|\n   \
                    physics|alice|1|1.0|10|1.000000|0.5\n \
                    ops||5|0.5|0|0.000000|\n";
        let v = parse_sshare_text(text, &mut Interner::default()).expect("parses");
        assert_eq!(&*find(&v, "physics", "").parent_account, "science");
        assert_eq!(&*find(&v, "ops", "").parent_account, "root");
        assert_eq!(&*find(&v, "science", "").parent_account, "root");
        assert!(find(&v, "science", "").shares_parent);
        assert_eq!(find(&v, "science", "").shares_raw, None);
        assert_eq!(&*find(&v, "physics", "alice").parent_account, "physics");
    }

    #[test]
    fn merge_pairs_limits_with_fairshare() {
        let mut names = Interner::default();
        let limits = parse_associations_json(ASSOC_38, &mut names).expect("parses");
        let shares = parse_sshare_text(SSHARE, &mut names).expect("parses");
        let m = merge(limits, shares);
        assert_eq!(m.len(), 11, "every sshare line matches one association");
        assert!(m.iter().all(|a| a.fairshare.is_some()));
        let carol = find(&m, "chemistry", "carol");
        assert_eq!(carol.limits.max_jobs, Some(2));
        assert_eq!(
            carol.fairshare.as_ref().and_then(|f| f.factor),
            Some(0.714286)
        );
        assert_eq!(&*carol.cluster, "lab");
        let bio = find(&m, "biology", "");
        assert_eq!(bio.limits.grp_tres.cpus, Some(64));
        assert_eq!(bio.fairshare.as_ref().and_then(|f| f.level), Some(2.154338));
        // A share line slurmdbd does not know is kept.
        let extra = parse_sshare_text("Account|User|RawShares\nroot||\n new||1\n", &mut names)
            .expect("parses");
        let m = merge(m, extra);
        assert_eq!(m.len(), 12);
        assert_eq!(&*find(&m, "new", "").parent_account, "root");
    }

    #[test]
    fn newer_association_shapes_parse() {
        for (file, bytes) in [
            (
                "v0.0.39",
                &include_bytes!("../../testdata/rest/23.02.7/slurmdb_v0.0.39_associations.json")[..],
            ),
            (
                "v0.0.41",
                &include_bytes!("../../testdata/rest/24.05.8/slurmdb_v0.0.41_associations.json")[..],
            ),
            (
                "v0.0.44",
                &include_bytes!("../../testdata/rest/25.11.0/slurmdb_v0.0.44_associations.json")[..],
            ),
        ] {
            let v = parse_associations_json(bytes, &mut Interner::default())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(v.len(), 4, "{file}: the deleted one is left out");
            let bio = find(&v, "biology", "");
            assert_eq!(bio.limits.grp_tres.cpus, Some(64), "{file}");
            assert_eq!(
                bio.limits.grp_tres.memory_bytes,
                Some(256 * 1024 * MIB),
                "{file}"
            );
            assert_eq!(bio.limits.grp_tres.gpus, Some(8), "{file}");
            assert_eq!(bio.limits.grp_jobs, Some(20), "{file}");
            assert_eq!(bio.limits.grp_submit_jobs, Some(50), "{file}");
            assert_eq!(bio.limits.grp_wall_seconds, None, "{file}: infinite");
            assert_eq!(
                bio.limits.grp_tres_seconds.cpus,
                Some(1_000_000 * 60),
                "{file}"
            );
            let dave = find(&v, "biology", "dave");
            assert_eq!(dave.limits.max_jobs, Some(4), "{file}");
            assert_eq!(dave.limits.max_submit_jobs, Some(10), "{file}");
            assert_eq!(dave.limits.max_tres_per_job.cpus, Some(16), "{file}");
            assert_eq!(dave.limits.max_tres_per_node.gpus, Some(2), "{file}");
            assert_eq!(
                dave.limits.max_wall_seconds_per_job,
                Some(2 * 86_400),
                "{file}"
            );
            assert_eq!(&*dave.default_qos, "normal", "{file}");
            assert!(dave.is_default, "{file}");
            assert_eq!(dave.qos.len(), 2, "{file}");
            assert_eq!(dave.limits.grp_jobs, None, "{file}: set=false");
            let part = v
                .iter()
                .find(|a| !a.partition.is_empty())
                .expect("partition association");
            assert_eq!(&*part.partition, "gpu", "{file}");
            assert_eq!(part.limits.max_jobs, Some(1), "{file}");
        }
    }

    #[test]
    fn shares_json_from_v0_0_40_and_v0_0_42() {
        for (file, bytes) in [
            (
                "v0.0.40",
                &include_bytes!("../../testdata/rest/23.11.10/slurm_v0.0.40_shares.json")[..],
            ),
            (
                "v0.0.42",
                &include_bytes!("../../testdata/rest/24.11.5/slurm_v0.0.42_shares.json")[..],
            ),
        ] {
            let v = parse_shares_json(bytes, &mut Interner::default())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(v.len(), 5, "{file}");
            let root = find(&v, "root", "");
            assert_eq!(&*root.parent_account, "", "{file}");
            let bio = find(&v, "biology", "");
            assert_eq!(&*bio.parent_account, "root", "{file}");
            assert_eq!(bio.shares_raw, Some(100), "{file}");
            let bf = bio.fairshare.as_ref().expect("fairshare");
            assert_eq!(bf.level, Some(2.154338), "{file}");
            assert_eq!(bf.usage_raw, Some(46040.0), "{file}");
            let dave = find(&v, "biology", "dave");
            let df = dave.fairshare.as_ref().expect("fairshare");
            assert_eq!(df.factor, Some(0.857143), "{file}");
            assert_eq!(df.shares_normalized, Some(1.0), "{file}");
            assert_eq!(df.usage_effective, Some(1.0), "{file}");
            assert_eq!(df.tres_run_seconds.cpus, Some(138148 * 60), "{file}");
            let rr = find(&v, "root", "root");
            let rf = rr.fairshare.as_ref().expect("fairshare");
            assert_eq!(
                rf.level,
                Some(f64::INFINITY),
                "{file}: `inf` or infinite struct"
            );
            assert!(find(&v, "chemistry", "").shares_parent, "{file}");
        }
    }

    #[test]
    fn hostile_json_errors_or_neutral_never_panics() {
        let mut n = Interner::default();
        let truncated = &ASSOC_38[..ASSOC_38.len() / 2];
        assert!(parse_associations_json(truncated, &mut n).is_err());
        let html = b"<html><body>502 Bad Gateway</body></html>";
        assert!(parse_associations_json(html, &mut n).is_err());
        assert!(parse_shares_json(html, &mut n).is_err());
        assert!(parse_associations_json(b"", &mut n).is_err());
        assert_eq!(
            parse_associations_json(b"{}", &mut n),
            Err(ParseError::Missing("associations"))
        );
        let wrong = br#"{"associations":[7,"x",null,{"account":5,"user":[1],"max":"lots",
            "shares_raw":"many","qos":{"a":1},"default":[]},{"account":"a","max":{"tres":{"total":
            [{"type":"cpu","count":"x"},3,{"type":"mem","count":-1}]},"jobs":{"active":true}}}]}"#;
        let v = parse_associations_json(wrong, &mut n).expect("wrong types are neutral");
        assert_eq!(v.len(), 2);
        assert_eq!(&*v[0].account, "5");
        assert_eq!(v[0].limits, AssocLimits::default());
        assert_eq!(v[1].limits, AssocLimits::default());
        assert!(parse_shares_json(
            br#"{"shares":{"shares":[1,{"name":7,"type":"USER"}]}}"#,
            &mut n
        )
        .expect("neutral")
        .is_empty());
        assert!(parse_shares_json(br#"{"errors":[{"description":"denied"}]}"#, &mut n).is_err());
    }

    #[test]
    fn hostile_sshare_text_names_the_line() {
        let mut n = Interner::default();
        assert_eq!(parse_sshare_text("", &mut n), Ok(Vec::new()));
        let err = parse_sshare_text("<html>\n<body>oops</body>\n", &mut n).expect_err("html");
        assert!(err.to_string().starts_with("line 1:"), "{err}");
        let cut = &SSHARE[..SSHARE.rfind("|0.428571|").expect("last line")];
        let err = parse_sshare_text(cut, &mut n).expect_err("truncated");
        assert!(err.to_string().starts_with("line 12:"), "{err}");
        let v = parse_sshare_text(
            "Account|User|RawShares|NormShares|FairShare\nroot||x|-|?\n",
            &mut n,
        )
        .expect("garbage numbers are unset");
        assert_eq!(v[0].shares_raw, None);
        assert_eq!(v[0].fairshare.as_ref().and_then(|f| f.factor), None);
    }
}
