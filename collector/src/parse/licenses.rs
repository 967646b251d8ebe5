//! License pools: `/slurm/vX/licenses` (same `LicenseName`/`Total`/`Used`/... keys from
//! v0.0.38 to v0.0.44; v0.0.39+ add `LastConsumed`, `LastDeficit`, `LastUpdate` for remote
//! licenses and a top-level `last_update`) and `scontrol -o show licenses` text for the CLI
//! source. A cluster has a handful of pools, so documents are read whole.

use super::flex::BoolLike;
use super::text::{count, get, records, time_epoch};
use super::value::{data_array, field, number, string};
use super::ParseError;
use crate::model::{License, Name};
use serde::Deserialize;
use serde_json::Value;

fn from_value(l: &Value) -> Option<License> {
    let name = string(l, &["LicenseName", "name"]);
    if name.is_empty() {
        return None;
    }
    let total = number(l, &["Total", "total"]).unwrap_or(0);
    let used = number(l, &["Used", "used", "in_use"]).unwrap_or(0);
    let remote = field(l, &["Remote", "remote"])
        .and_then(|x| BoolLike::deserialize(x).ok())
        .is_some_and(|b| b.0);
    // The license manager fields mean nothing for local licenses (Slurm sends zeros).
    let if_remote = |x: Option<u64>| x.filter(|_| remote);
    Some(License {
        name: Name::from(name),
        total,
        used,
        free: number(l, &["Free", "free", "available"]).unwrap_or(total.saturating_sub(used)),
        reserved: number(l, &["Reserved", "reserved"]).unwrap_or(0),
        remote,
        last_consumed: if_remote(number(l, &["LastConsumed", "last_consumed"])),
        last_deficit: if_remote(number(l, &["LastDeficit", "last_deficit"])),
        last_update_epoch: if_remote(number(l, &["LastUpdate", "last_update"])).filter(|&t| t > 0),
    })
}

/// Parses a `/slurm/vX/licenses` document (v0.0.38 .. v0.0.44). Entries without a name
/// are skipped; odd values become neutral ones.
pub fn parse_licenses_json(bytes: &[u8]) -> Result<Vec<License>, ParseError> {
    Ok(data_array(bytes, "licenses")?
        .iter()
        .filter_map(from_value)
        .collect())
}

/// Parses `scontrol -o show licenses` (also the multi-line layout without `-o`):
/// `LicenseName=matlab Total=10 Used=2 Free=8 Reserved=0 Remote=no`, with
/// `LastConsumed=`, `LastDeficit=`, `LastUpdate=` on 23.02+ for remote licenses.
pub fn parse_scontrol_licenses_text(text: &str) -> Result<Vec<License>, ParseError> {
    let mut out = Vec::new();
    for (line, kv) in records(text, "LicenseName")? {
        let name = get(&kv, "LicenseName");
        if name.is_empty() {
            return Err(ParseError::Line {
                line,
                msg: "empty LicenseName=".into(),
            });
        }
        let total = count(&kv, "Total", line)?.unwrap_or(0);
        let used = count(&kv, "Used", line)?.unwrap_or(0);
        let remote = get(&kv, "Remote").eq_ignore_ascii_case("yes");
        let if_remote = |x: Option<u64>| x.filter(|_| remote);
        out.push(License {
            name: Name::from(name),
            total,
            used,
            free: count(&kv, "Free", line)?.unwrap_or(total.saturating_sub(used)),
            reserved: count(&kv, "Reserved", line)?.unwrap_or(0),
            remote,
            last_consumed: if_remote(count(&kv, "LastConsumed", line)?),
            last_deficit: if_remote(count(&kv, "LastDeficit", line)?),
            last_update_epoch: if_remote(time_epoch(get(&kv, "LastUpdate"))),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lic(name: &str, total: u64, used: u64, free: u64) -> License {
        License {
            name: Name::from(name),
            total,
            used,
            free,
            ..License::default()
        }
    }

    #[test]
    fn lab_capture_v0_0_38() {
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_licenses.json");
        let l = parse_licenses_json(bytes).expect("parses");
        assert_eq!(l, [lic("ansys", 4, 0, 4), lic("matlab", 10, 2, 8)]);
    }

    #[test]
    fn scontrol_text_matches_the_rest_capture() {
        let text = include_str!("../../testdata/cli/22.05.8/scontrol.show-licenses.txt");
        let from_text = parse_scontrol_licenses_text(text).expect("parses");
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_licenses.json");
        assert_eq!(from_text, parse_licenses_json(bytes).expect("parses"));
    }

    #[test]
    fn multi_line_layout_without_o() {
        let text = "LicenseName=ansys\n    Total=4 Used=0 Free=4 Reserved=0 Remote=no\n\
                    LicenseName=matlab\n    Total=10 Used=2 Free=8 Reserved=0 Remote=no\n";
        let l = parse_scontrol_licenses_text(text).expect("parses");
        assert_eq!(l, [lic("ansys", 4, 0, 4), lic("matlab", 10, 2, 8)]);
    }

    #[test]
    fn remote_license_text_of_newer_releases() {
        let text = "LicenseName=fluent@db Total=50 Used=3 Free=40 Reserved=5 Remote=yes \
                    LastConsumed=7 LastDeficit=2 LastUpdate=2026-11-28T10:00:00\n";
        let l = parse_scontrol_licenses_text(text).expect("parses");
        assert!(l[0].remote);
        assert_eq!(l[0].reserved, 5);
        assert_eq!(l[0].last_consumed, Some(7));
        assert_eq!(l[0].last_deficit, Some(2));
        assert_eq!(l[0].last_update_epoch, Some(1_795_860_000));
    }

    #[test]
    fn every_newer_version_fixture_parses() {
        let docs: [(&str, &[u8]); 6] = [
            (
                "v0.0.39",
                include_bytes!("../../testdata/rest/23.02.7/slurm_v0.0.39_licenses.json"),
            ),
            (
                "v0.0.40",
                include_bytes!("../../testdata/rest/23.11.10/slurm_v0.0.40_licenses.json"),
            ),
            (
                "v0.0.41",
                include_bytes!("../../testdata/rest/24.05.8/slurm_v0.0.41_licenses.json"),
            ),
            (
                "v0.0.42",
                include_bytes!("../../testdata/rest/24.11.5/slurm_v0.0.42_licenses.json"),
            ),
            (
                "v0.0.43",
                include_bytes!("../../testdata/rest/25.05.8/slurm_v0.0.43_licenses.json"),
            ),
            (
                "v0.0.44",
                include_bytes!("../../testdata/rest/25.11.0/slurm_v0.0.44_licenses.json"),
            ),
        ];
        for (version, bytes) in docs {
            let l = parse_licenses_json(bytes).unwrap_or_else(|e| panic!("{version}: {e}"));
            assert_eq!(l.len(), 2, "{version}");
            assert_eq!(l[0], lic("matlab", 10, 2, 8), "{version}");
            let remote = &l[1];
            assert_eq!(&*remote.name, "comsol@slurmdb", "{version}");
            assert!(remote.remote, "{version}");
            assert_eq!(
                (remote.total, remote.used, remote.free, remote.reserved),
                (20, 5, 13, 2),
                "{version}"
            );
            assert_eq!(remote.last_consumed, Some(6), "{version}");
            assert_eq!(remote.last_deficit, Some(1), "{version}");
            assert_eq!(remote.last_update_epoch, Some(1_795_860_000), "{version}");
        }
    }

    #[test]
    fn hostile_json_errors_or_neutral_values() {
        assert!(matches!(
            parse_licenses_json(b"{\"licenses\":[{\"LicenseName\":\"x\""),
            Err(ParseError::Truncated { .. } | ParseError::Syntax { .. })
        ));
        assert_eq!(
            parse_licenses_json(b"{}"),
            Err(ParseError::Missing("licenses"))
        );
        assert!(matches!(
            parse_licenses_json(br#"{"errors":[{"error":"no","description":"denied"}]}"#),
            Err(ParseError::Slurm(m)) if m == "denied"
        ));
        assert!(parse_licenses_json(b"[]").is_err());
        assert!(parse_licenses_json(b"").is_err());
        assert!(parse_licenses_json(&[0xff, 0xfe, 0x00]).is_err());
        let odd = br#"{"licenses":[7,null,{"LicenseName":""},
            {"LicenseName":"a","Total":"lots","Used":-3,"Free":4294967294,"Remote":"maybe"}]}"#;
        let l = parse_licenses_json(odd).expect("neutral values");
        assert_eq!(l, [lic("a", 0, 0, 0)]);
        assert_eq!(
            parse_licenses_json(br#"{"licenses":null}"#).expect("empty"),
            []
        );
    }

    #[test]
    fn hostile_text_errors_name_the_line() {
        let err = parse_scontrol_licenses_text("Total=4\n").expect_err("no name");
        assert_eq!(
            err,
            ParseError::Line {
                line: 1,
                msg: "expected a line starting with LicenseName=".into()
            }
        );
        let err = parse_scontrol_licenses_text("LicenseName=a Total=4\nLicenseName=b Total=x\n")
            .expect_err("bad count");
        assert!(err.to_string().starts_with("line 2:"), "{err}");
        let err = parse_scontrol_licenses_text("LicenseName= Total=4\n").expect_err("empty");
        assert!(err.to_string().starts_with("line 1:"), "{err}");
        assert_eq!(
            parse_scontrol_licenses_text("No licenses configured in Slurm.\n").expect("none"),
            []
        );
        assert_eq!(parse_scontrol_licenses_text("").expect("none"), []);
        let l = parse_scontrol_licenses_text("LicenseName=z Total=99999999999999999999999\n");
        assert!(l.is_err());
    }
}
