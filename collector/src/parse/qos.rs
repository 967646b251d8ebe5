//! QOS and their limits: `/slurmdb/vX/qos` (v0.0.38 to v0.0.44) and `sacctmgr -P show qos`.
//!
//! The JSON array is `QOS` in v0.0.38 and `qos` from v0.0.39 on. GrpSubmitJobs
//! (`limits/max/jobs/count`) and GrpTRESMins (`limits/max/tres/minutes/total`) only exist
//! from v0.0.42 on; `limits/max/tres/minutes/per/qos` is GrpTRESRunMins in every version.
//!
//! The text parser reads the header line, so it takes any column subset; the exporter runs
//!
//! ```text
//! sacctmgr -P show qos format=Name,Priority,UsageFactor,UsageThres,LimitFactor,GraceTime,PreemptMode,Preempt,PreemptExemptTime,Flags,GrpTRES,GrpTRESMins,GrpTRESRunMins,GrpJobs,GrpJobsAccrue,GrpSubmit,GrpWall,MaxTRES,MaxTRESPerNode,MaxTRESMins,MaxWall,MaxTRESPU,MaxJobsPU,MaxSubmitPU,MaxJobsAccruePU,MaxTRESPA,MaxJobsPA,MaxSubmitPA,MaxJobsAccruePA,MinTRES,MinPrioThresh
//! ```
//!
//! (`-P` with the header, no `-n`); plain `sacctmgr -P show qos` parses too.

use super::associations::{
    at, minutes, names_at, num, split_names, text, tres_at, tres_text, TresUnit,
};
use super::doc::small_document;
use super::text::duration_seconds;
use super::ParseError;
use crate::model::{Interner, Name, Qos};
use serde_json::Value;

/// The columns the exporter asks `sacctmgr` for (see the module docs).
pub const SACCTMGR_QOS_FORMAT: &str = "Name,Priority,UsageFactor,UsageThres,LimitFactor,GraceTime,PreemptMode,Preempt,PreemptExemptTime,Flags,GrpTRES,GrpTRESMins,GrpTRESRunMins,GrpJobs,GrpJobsAccrue,GrpSubmit,GrpWall,MaxTRES,MaxTRESPerNode,MaxTRESMins,MaxWall,MaxTRESPU,MaxJobsPU,MaxSubmitPU,MaxJobsAccruePU,MaxTRESPA,MaxJobsPA,MaxSubmitPA,MaxJobsAccruePA,MinTRES,MinPrioThresh";

/// `requeue`, `suspend,gang`; Slurm's "off" (mode 0) means "use the cluster's", which
/// `sacctmgr` prints as `cluster`.
fn preempt_mode<'a>(modes: impl Iterator<Item = &'a str>, names: &mut Interner) -> Name {
    let modes: Vec<String> = modes
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty() && m != "disabled" && m != "off" && m != "cluster")
        .collect();
    if modes.is_empty() {
        names.intern("cluster")
    } else {
        names.intern(&modes.join(","))
    }
}

fn qos_json(v: &Value, names: &mut Interner) -> Option<Qos> {
    let name = text(v, &["name"]);
    if !v.is_object() || name.is_empty() {
        return None;
    }
    use TresUnit::{Amount, Minutes};
    let l = |p: &[&str]| {
        let mut path = vec!["limits"];
        path.extend_from_slice(p);
        num(v, &path)
    };
    let lt = |p: &[&str], unit| {
        let mut path = vec!["limits"];
        path.extend_from_slice(p);
        tres_at(v, &path, unit)
    };
    let modes: Vec<String> = match at(v, &["preempt", "mode"]) {
        Some(Value::Array(m)) => m
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Some(Qos {
        name: names.intern(&name),
        priority: num(v, &["priority"]).u64(),
        usage_factor: num(v, &["usage_factor"]).f64(),
        usage_threshold: num(v, &["usage_threshold"]).f64(),
        limit_factor: l(&["factor"]).f64(),
        grace_time_seconds: l(&["grace_time"]).u64(),
        preempt_mode: preempt_mode(modes.iter().map(String::as_str), names),
        preempt: names_at(v, &["preempt", "list"], names),
        preempt_exempt_seconds: num(v, &["preempt", "exempt_time"]).u64(),
        flags: names_at(v, &["flags"], names),
        grp_tres: lt(&["max", "tres", "total"], Amount),
        grp_tres_seconds: lt(&["max", "tres", "minutes", "total"], Minutes),
        grp_tres_run_seconds: lt(&["max", "tres", "minutes", "per", "qos"], Minutes),
        grp_jobs: l(&["max", "active_jobs", "count"]).u64(),
        grp_jobs_accrue: l(&["max", "active_jobs", "accruing"]).u64(),
        grp_submit_jobs: l(&["max", "jobs", "count"]).u64(),
        grp_wall_seconds: minutes(l(&["max", "wall_clock", "per", "qos"])),
        max_jobs_per_user: l(&["max", "jobs", "active_jobs", "per", "user"]).u64(),
        max_jobs_per_account: l(&["max", "jobs", "active_jobs", "per", "account"]).u64(),
        max_submit_jobs_per_user: l(&["max", "jobs", "per", "user"]).u64(),
        max_submit_jobs_per_account: l(&["max", "jobs", "per", "account"]).u64(),
        max_jobs_accrue_per_user: l(&["max", "accruing", "per", "user"]).u64(),
        max_jobs_accrue_per_account: l(&["max", "accruing", "per", "account"]).u64(),
        max_tres_per_user: lt(&["max", "tres", "per", "user"], Amount),
        max_tres_per_account: lt(&["max", "tres", "per", "account"], Amount),
        max_tres_per_job: lt(&["max", "tres", "per", "job"], Amount),
        max_tres_per_node: lt(&["max", "tres", "per", "node"], Amount),
        min_tres_per_job: lt(&["min", "tres", "per", "job"], Amount),
        max_tres_seconds_per_job: lt(&["max", "tres", "minutes", "per", "job"], Minutes),
        max_wall_seconds_per_job: minutes(l(&["max", "wall_clock", "per", "job"])),
        min_priority_threshold: l(&["min", "priority_threshold"]).u64(),
    })
}

/// Parses `/slurmdb/vX/qos`. Elements without a name are left out.
pub fn parse_qos_json(bytes: &[u8], names: &mut Interner) -> Result<Vec<Qos>, ParseError> {
    let (env, doc) = small_document(bytes)?;
    let Some(Value::Array(list)) = doc.get("qos").or_else(|| doc.get("QOS")) else {
        return Err(if env.errors.is_empty() {
            ParseError::Missing("qos")
        } else {
            ParseError::Slurm(env.errors.join("; "))
        });
    };
    Ok(list.iter().filter_map(|v| qos_json(v, names)).collect())
}

/// Parses `sacctmgr -P show qos [format=...]` with its header line (see the module docs).
pub fn parse_sacctmgr_qos_text(text: &str, names: &mut Interner) -> Result<Vec<Qos>, ParseError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((hline, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let cols: Vec<String> = header
        .split('|')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let Some(c_name) = cols.iter().position(|c| c == "name") else {
        return Err(ParseError::Line {
            line: hline,
            msg: "expected the `sacctmgr -P show qos` header (Name|...)".into(),
        });
    };
    let mut out = Vec::new();
    for (line, l) in lines {
        let fields: Vec<&str> = l.split('|').collect();
        if fields.len() != cols.len() {
            return Err(ParseError::Line {
                line,
                msg: format!(
                    "expected {} fields, found {} (truncated or not `sacctmgr -P` output)",
                    cols.len(),
                    fields.len()
                ),
            });
        }
        let name = fields.get(c_name).map_or("", |s| s.trim());
        if name.is_empty() {
            return Err(ParseError::Line {
                line,
                msg: "empty Name".into(),
            });
        }
        let mut q = Qos {
            name: names.intern(name),
            preempt_mode: names.intern("cluster"),
            ..Qos::default()
        };
        for (col, raw) in cols.iter().zip(&fields) {
            let v = raw.trim();
            let int = || v.parse::<u64>().ok();
            let float = || v.parse::<f64>().ok().filter(|f| f.is_finite());
            let dur = || duration_seconds(v);
            let amount = || tres_text(v, TresUnit::Amount);
            let mins = || tres_text(v, TresUnit::Minutes);
            match col.as_str() {
                "priority" => q.priority = int(),
                "usagefactor" => q.usage_factor = float(),
                "usagethres" => q.usage_threshold = float(),
                "limitfactor" => q.limit_factor = float(),
                "gracetime" => q.grace_time_seconds = dur(),
                "preemptmode" => q.preempt_mode = preempt_mode(v.split(','), names),
                "preempt" => q.preempt = split_names(v, names),
                "preemptexempttime" => q.preempt_exempt_seconds = dur(),
                "flags" => q.flags = split_names(v, names),
                "grptres" => q.grp_tres = amount(),
                "grptresmins" => q.grp_tres_seconds = mins(),
                "grptresrunmins" => q.grp_tres_run_seconds = mins(),
                "grpjobs" => q.grp_jobs = int(),
                "grpjobsaccrue" => q.grp_jobs_accrue = int(),
                "grpsubmit" | "grpsubmitjobs" => q.grp_submit_jobs = int(),
                "grpwall" => q.grp_wall_seconds = dur(),
                "maxtres" | "maxtrespj" | "maxtresperjob" => q.max_tres_per_job = amount(),
                "maxtrespernode" | "maxtrespn" => q.max_tres_per_node = amount(),
                "maxtresmins" | "maxtresminspj" => q.max_tres_seconds_per_job = mins(),
                "maxwall" | "maxwalldurationperjob" => q.max_wall_seconds_per_job = dur(),
                "maxtrespu" | "maxtresperuser" => q.max_tres_per_user = amount(),
                "maxjobspu" | "maxjobsperuser" => q.max_jobs_per_user = int(),
                "maxsubmitpu" | "maxsubmitjobsperuser" => q.max_submit_jobs_per_user = int(),
                "maxjobsaccruepu" => q.max_jobs_accrue_per_user = int(),
                "maxtrespa" | "maxtresperaccount" => q.max_tres_per_account = amount(),
                "maxjobspa" | "maxjobsperaccount" => q.max_jobs_per_account = int(),
                "maxsubmitpa" | "maxsubmitjobsperaccount" => q.max_submit_jobs_per_account = int(),
                "maxjobsaccruepa" => q.max_jobs_accrue_per_account = int(),
                "mintres" | "mintrespj" => q.min_tres_per_job = amount(),
                "minpriothres" | "minpriothresh" => q.min_priority_threshold = int(),
                _ => {}
            }
        }
        out.push(q);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::accounts::TresAmounts;

    const QOS_38: &[u8] = include_bytes!("../../testdata/rest/22.05.8/slurmdb_v0.0.38_qos.json");

    fn find<'a>(v: &'a [Qos], name: &str) -> &'a Qos {
        v.iter()
            .find(|q| &*q.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn capture_22_05_gives_lab_qos() {
        let v = parse_qos_json(QOS_38, &mut Interner::default()).expect("parses");
        assert_eq!(v.len(), 3);
        let low = find(&v, "low");
        assert_eq!(low.max_jobs_per_user, Some(1));
        assert_eq!(low.max_submit_jobs_per_user, None);
        assert_eq!(low.priority, Some(0));
        let high = find(&v, "high");
        assert_eq!(high.priority, Some(100));
        assert_eq!(high.max_wall_seconds_per_job, Some(2 * 86_400));
        assert_eq!(high.usage_factor, Some(1.0));
        assert_eq!(high.grace_time_seconds, Some(0));
        assert_eq!(&*high.preempt_mode, "cluster");
        let normal = find(&v, "normal");
        assert_eq!(normal.max_jobs_per_user, None);
        assert_eq!(normal.grp_tres, TresAmounts::default());
    }

    #[test]
    fn newer_qos_shapes_parse() {
        for (file, bytes, has_submit) in [
            (
                "v0.0.39",
                &include_bytes!("../../testdata/rest/23.02.7/slurmdb_v0.0.39_qos.json")[..],
                false,
            ),
            (
                "v0.0.41",
                &include_bytes!("../../testdata/rest/24.05.8/slurmdb_v0.0.41_qos.json")[..],
                false,
            ),
            (
                "v0.0.42",
                &include_bytes!("../../testdata/rest/24.11.5/slurmdb_v0.0.42_qos.json")[..],
                true,
            ),
            (
                "v0.0.44",
                &include_bytes!("../../testdata/rest/25.11.0/slurmdb_v0.0.44_qos.json")[..],
                true,
            ),
        ] {
            let v = parse_qos_json(bytes, &mut Interner::default())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(v.len(), 3, "{file}");
            let high = find(&v, "high");
            assert_eq!(high.priority, Some(100), "{file}");
            assert_eq!(high.grp_tres.cpus, Some(128), "{file}");
            assert_eq!(high.grp_tres.gpus, Some(16), "{file}");
            assert_eq!(high.grp_jobs, Some(10), "{file}");
            assert_eq!(high.max_jobs_per_user, Some(5), "{file}");
            assert_eq!(high.max_submit_jobs_per_user, Some(20), "{file}");
            assert_eq!(high.max_tres_per_user.cpus, Some(32), "{file}");
            assert_eq!(
                high.max_tres_per_user.memory_bytes,
                Some(128 << 30),
                "{file}"
            );
            assert_eq!(high.max_wall_seconds_per_job, Some(172_800), "{file}");
            assert_eq!(high.grace_time_seconds, Some(120), "{file}");
            assert_eq!(&*high.preempt_mode, "requeue", "{file}");
            assert_eq!(high.flags.len(), 1, "{file}");
            let low = find(&v, "low");
            assert_eq!(low.max_jobs_per_user, Some(1), "{file}");
            assert_eq!(low.usage_factor, Some(0.5), "{file}");
            assert_eq!(low.max_tres_per_job.nodes, Some(2), "{file}");
            assert_eq!(&*low.preempt_mode, "suspend,gang", "{file}");
            assert_eq!(low.grp_submit_jobs.is_some(), has_submit, "{file}");
            assert_eq!(
                low.grp_tres_seconds.cpus,
                has_submit.then_some(600_000 * 60),
                "{file}"
            );
            let normal = find(&v, "normal");
            assert_eq!(
                &*normal.preempt_mode, "cluster",
                "{file}: DISABLED is unset"
            );
            assert_eq!(normal.preempt.len(), 1, "{file}");
            assert_eq!(normal.usage_threshold, None, "{file}");
        }
    }

    #[test]
    fn sacctmgr_capture_with_its_columns() {
        // The capture was taken with `-n` (no header); its columns are, by the lab's setup
        // (high: MaxWall 2 days, low: MaxJobsPU 1), Name|Priority|MaxWall|MaxJobsPU|MaxSubmitPU|GrpTRES.
        let capture = include_str!("../../testdata/cli/22.05.8/sacctmgr.qos.txt");
        let text = format!("Name|Priority|MaxWall|MaxJobsPU|MaxSubmitPU|GrpTRES\n{capture}");
        let v = parse_sacctmgr_qos_text(&text, &mut Interner::default()).expect("parses");
        assert_eq!(v.len(), 3);
        assert_eq!(find(&v, "low").max_jobs_per_user, Some(1));
        assert_eq!(find(&v, "high").max_wall_seconds_per_job, Some(172_800));
        assert_eq!(find(&v, "high").priority, Some(100));
        assert_eq!(find(&v, "normal").max_jobs_per_user, None);
    }

    #[test]
    fn sacctmgr_full_format_as_the_lab_prints_it() {
        let text = include_str!("../../testdata/cli/22.05.8/sacctmgr.qos-format.txt");
        let v = parse_sacctmgr_qos_text(text, &mut Interner::default()).expect("parses");
        let json = parse_qos_json(QOS_38, &mut Interner::default()).expect("parses");
        assert_eq!(v.len(), 3);
        for q in &json {
            let t = find(&v, &q.name);
            assert_eq!(t, q, "text and JSON agree on {}", q.name);
        }
        let made = "Name|GrpTRES|MaxTRESPU|MaxTRESMins|GrpWall|Preempt|PreemptMode|Flags\n\
                    big|cpu=64,mem=100G,gres/gpu:a100=4|cpu=8,node=2|cpu=600|1-00:00:00|low,normal|requeue|DenyOnLimit\n";
        let v = parse_sacctmgr_qos_text(made, &mut Interner::default()).expect("parses");
        let big = find(&v, "big");
        assert_eq!(big.grp_tres.memory_bytes, Some(100 << 30));
        assert_eq!(big.grp_tres.gpus, Some(4));
        assert_eq!(big.max_tres_per_user.nodes, Some(2));
        assert_eq!(big.max_tres_seconds_per_job.cpus, Some(36_000));
        assert_eq!(big.grp_wall_seconds, Some(86_400));
        assert_eq!(big.preempt.len(), 2);
        assert_eq!(&*big.preempt_mode, "requeue");
    }

    #[test]
    fn hostile_input_errors_or_neutral_never_panics() {
        let mut n = Interner::default();
        assert!(parse_qos_json(&QOS_38[..QOS_38.len() - 10], &mut n).is_err());
        assert!(parse_qos_json(b"<html>502</html>", &mut n).is_err());
        assert!(parse_qos_json(b"", &mut n).is_err());
        assert!(parse_qos_json(b"[]", &mut n).is_err());
        assert_eq!(
            parse_qos_json(b"{}", &mut n),
            Err(ParseError::Missing("qos"))
        );
        let wrong = br#"{"qos":[1,null,{"name":"x","priority":"high","limits":7,
            "preempt":{"mode":5,"list":"a,b"},"usage_factor":[1]}]}"#;
        let v = parse_qos_json(wrong, &mut n).expect("neutral");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].priority, None);
        assert_eq!(v[0].preempt.len(), 2);
        assert_eq!(&*v[0].preempt_mode, "cluster");
        assert_eq!(parse_sacctmgr_qos_text("", &mut n), Ok(Vec::new()));
        let err = parse_sacctmgr_qos_text("<html>\n", &mut n).expect_err("html");
        assert!(err.to_string().starts_with("line 1:"), "{err}");
        let err = parse_sacctmgr_qos_text("Name|Priority|MaxWall\nnormal|0||\nlow|", &mut n)
            .expect_err("wrong field count");
        assert!(err.to_string().starts_with("line 2:"), "{err}");
        let v = parse_sacctmgr_qos_text(
            "Name|Priority|MaxWall|GrpTRES\nx|-1|forever|cpu=lots\n",
            &mut n,
        )
        .expect("garbage values are unset");
        assert_eq!(v[0].priority, None);
        assert_eq!(v[0].max_wall_seconds_per_job, None);
        assert_eq!(v[0].grp_tres, TresAmounts::default());
    }
}
