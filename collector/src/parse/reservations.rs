//! Advance reservations: `/slurm/vX/reservations` and `scontrol -o show reservations`.
//!
//! The record keeps the same keys from v0.0.38 to v0.0.44; what changes is the encoding:
//! times are plain numbers up to v0.0.39 and `{"set","infinite","number"}` from v0.0.40,
//! and `watts` left in v0.0.41. Both are absorbed by [`super::flex`]. CLI text prints times
//! in the local time zone of the host running `scontrol`; run it with `TZ=UTC` or with
//! `SLURM_TIME_FORMAT=%s` (epoch seconds), both of which read back exactly here.

use super::hostlist::expand;
use super::text::{count, get, is_no_time, records, time_epoch};
use super::value::{data_array, number, string};
use super::ParseError;
use crate::model::{Interner, Name, Reservation};
use serde_json::Value;

/// Comma list to interned names; `(null)` and empty parts dropped.
fn list(s: &str, names: &mut Interner, lower: bool) -> Vec<Name> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "(null)")
        .map(|t| {
            if lower {
                names.intern(&t.to_ascii_lowercase())
            } else {
                names.intern(t)
            }
        })
        .collect()
}

/// Byte offset of `needle` in `hay`, for errors that point at the offending value. Only
/// a prefix is searched, so a hostile megabyte-long value cannot make this quadratic.
fn offset_of(hay: &[u8], needle: &str) -> u64 {
    let needle = &needle.as_bytes()[..needle.len().min(64)];
    if needle.is_empty() {
        return 0;
    }
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or(0) as u64
}

fn from_value(r: &Value, bytes: &[u8], names: &mut Interner) -> Result<Reservation, ParseError> {
    let name = string(r, &["name"]);
    let node_list = string(r, &["node_list"]);
    let nodes = expand(&node_list).map_err(|e| ParseError::Syntax {
        offset: offset_of(bytes, &node_list),
        msg: format!("reservation {name:?}: {e}"),
    })?;
    Ok(Reservation {
        name: names.intern(&name),
        start_epoch: number(r, &["start_time"]).filter(|&t| t > 0),
        end_epoch: number(r, &["end_time"]).filter(|&t| t > 0),
        node_count: number(r, &["node_count"]).unwrap_or(nodes.len() as u64),
        nodes: nodes.iter().map(|n| names.intern(n)).collect(),
        core_count: number(r, &["core_count"]).unwrap_or(0),
        flags: list(&string(r, &["flags"]), names, true),
        users: list(&string(r, &["users"]), names, false),
        accounts: list(&string(r, &["accounts"]), names, false),
        partition: names.intern(&string(r, &["partition"])),
        tres: names.intern(&string(r, &["tres"])),
        licenses: names.intern(&string(r, &["licenses"])),
    })
}

/// Parses a `/slurm/vX/reservations` document (v0.0.38 .. v0.0.44). A host list that
/// does not expand is an error naming the reservation and the byte where the list is.
pub fn parse_reservations_json(
    bytes: &[u8],
    names: &mut Interner,
) -> Result<Vec<Reservation>, ParseError> {
    let mut out = Vec::new();
    for r in data_array(bytes, "reservations")?
        .iter()
        .filter(|r| r.is_object())
    {
        let resv = from_value(r, bytes, names)?;
        if !resv.name.is_empty() {
            out.push(resv);
        }
    }
    Ok(out)
}

/// Parses `scontrol -o show reservations` (also the multi-line layout without `-o`):
/// `ReservationName=maint StartTime=... EndTime=... Duration=02:00:00 Nodes=cpu-[01-02]
/// NodeCnt=2 CoreCnt=64 ... PartitionName=(null) Flags=MAINT,SPEC_NODES TRES=cpu=64
/// Users=root Groups=(null) Accounts=(null) Licenses=(null) State=INACTIVE ...`.
pub fn parse_scontrol_reservations_text(
    text: &str,
    names: &mut Interner,
) -> Result<Vec<Reservation>, ParseError> {
    let mut out = Vec::new();
    for (line, kv) in records(text, "ReservationName")? {
        let name = get(&kv, "ReservationName");
        if name.is_empty() {
            return Err(ParseError::Line {
                line,
                msg: "empty ReservationName=".into(),
            });
        }
        let time = |key: &str| -> Result<Option<u64>, ParseError> {
            let v = get(&kv, key);
            match time_epoch(v) {
                None if !v.is_empty() && !is_no_time(v) => Err(ParseError::Line {
                    line,
                    msg: format!("{key}={v:?} is not a time"),
                }),
                t => Ok(t),
            }
        };
        let start_epoch = time("StartTime")?;
        let end_epoch = match time("EndTime")? {
            Some(t) => Some(t),
            None => start_epoch
                .zip(super::text::duration_seconds(get(&kv, "Duration")))
                .map(|(s, d)| s.saturating_add(d)),
        };
        let node_list = get(&kv, "Nodes");
        let nodes = expand(node_list).map_err(|msg| ParseError::Line {
            line,
            msg: format!("reservation {name:?}: {msg}"),
        })?;
        out.push(Reservation {
            name: names.intern(name),
            start_epoch,
            end_epoch,
            node_count: count(&kv, "NodeCnt", line)?.unwrap_or(nodes.len() as u64),
            nodes: nodes.iter().map(|n| names.intern(n)).collect(),
            core_count: count(&kv, "CoreCnt", line)?.unwrap_or(0),
            flags: list(get(&kv, "Flags"), names, true),
            users: list(get(&kv, "Users"), names, false),
            accounts: list(get(&kv, "Accounts"), names, false),
            partition: names.intern(get(&kv, "PartitionName")),
            tres: names.intern(get(&kv, "TRES")),
            licenses: names.intern(get(&kv, "Licenses")),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Name]) -> Vec<&str> {
        v.iter().map(|n| &**n).collect()
    }

    #[test]
    fn lab_capture_v0_0_38() {
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_reservations.json");
        let r = parse_reservations_json(bytes, &mut Interner::default()).expect("parses");
        assert_eq!(r.len(), 1);
        let m = &r[0];
        assert_eq!(&*m.name, "maint");
        assert_eq!(names(&m.flags), ["maint", "spec_nodes"]);
        assert!(m.has_flag("MAINT"));
        assert_eq!(names(&m.nodes), ["cpu-01", "cpu-02"]);
        assert_eq!((m.node_count, m.core_count), (2, 64));
        assert_eq!(m.start_epoch, Some(1_795_945_976));
        assert_eq!(m.end_epoch, Some(1_795_953_176));
        assert_eq!(names(&m.users), ["root"]);
        assert!(m.accounts.is_empty());
        assert_eq!(&*m.partition, "");
        assert_eq!(&*m.tres, "cpu=64");
        assert!(!m.is_active(1_795_945_975));
        assert!(m.is_active(1_795_945_976));
        assert!(!m.is_active(1_795_953_176));
    }

    #[test]
    fn scontrol_text_in_both_time_formats() {
        let iso = include_str!("../../testdata/cli/22.05.8/scontrol.show-reservations.txt");
        let epoch = include_str!("../../testdata/cli/22.05.8/scontrol.show-reservations.epoch.txt");
        let a = parse_scontrol_reservations_text(iso, &mut Interner::default()).expect("iso");
        let b = parse_scontrol_reservations_text(epoch, &mut Interner::default()).expect("epoch");
        assert_eq!(a, b, "TZ=UTC ISO times and SLURM_TIME_FORMAT=%s agree");
        let m = &a[0];
        assert_eq!(&*m.name, "maint");
        assert_eq!(m.start_epoch, Some(1_795_950_737));
        assert_eq!(m.end_epoch, Some(1_795_957_937));
        // Same reservation as the REST capture, re-created later by the lab: all but the
        // times must match.
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_reservations.json");
        let mut rest = parse_reservations_json(bytes, &mut Interner::default()).expect("parses");
        rest[0].start_epoch = m.start_epoch;
        rest[0].end_epoch = m.end_epoch;
        assert_eq!(rest, a);
    }

    #[test]
    fn multi_line_layout_without_o() {
        let text = "ReservationName=maint StartTime=2026-11-29T11:12:17 EndTime=2026-11-29T13:12:17 Duration=02:00:00\n   Nodes=cpu-[01-02] NodeCnt=2 CoreCnt=64 Features=(null) PartitionName=(null) Flags=MAINT,SPEC_NODES\n   TRES=cpu=64\n   Users=root Groups=(null) Accounts=(null) Licenses=(null) State=INACTIVE BurstBuffer=(null) Watts=n/a\n   MaxStartDelay=(null)\n\n";
        let one = include_str!("../../testdata/cli/22.05.8/scontrol.show-reservations.txt");
        let mut n = Interner::default();
        assert_eq!(
            parse_scontrol_reservations_text(text, &mut n).expect("multi"),
            parse_scontrol_reservations_text(one, &mut n).expect("one line")
        );
    }

    #[test]
    fn every_newer_version_fixture_parses() {
        let docs: [(&str, &[u8]); 6] = [
            (
                "v0.0.39",
                include_bytes!("../../testdata/rest/23.02.7/slurm_v0.0.39_reservations.json"),
            ),
            (
                "v0.0.40",
                include_bytes!("../../testdata/rest/23.11.10/slurm_v0.0.40_reservations.json"),
            ),
            (
                "v0.0.41",
                include_bytes!("../../testdata/rest/24.05.8/slurm_v0.0.41_reservations.json"),
            ),
            (
                "v0.0.42",
                include_bytes!("../../testdata/rest/24.11.5/slurm_v0.0.42_reservations.json"),
            ),
            (
                "v0.0.43",
                include_bytes!("../../testdata/rest/25.05.8/slurm_v0.0.43_reservations.json"),
            ),
            (
                "v0.0.44",
                include_bytes!("../../testdata/rest/25.11.0/slurm_v0.0.44_reservations.json"),
            ),
        ];
        for (version, bytes) in docs {
            let r = parse_reservations_json(bytes, &mut Interner::default())
                .unwrap_or_else(|e| panic!("{version}: {e}"));
            assert_eq!(r.len(), 2, "{version}");
            let m = &r[0];
            assert_eq!(&*m.name, "maint", "{version}");
            assert_eq!(names(&m.flags), ["maint", "spec_nodes"], "{version}");
            assert_eq!(names(&m.nodes), ["cpu-01", "cpu-02"], "{version}");
            assert_eq!((m.node_count, m.core_count), (2, 64), "{version}");
            assert_eq!(m.start_epoch, Some(1_795_945_976), "{version}");
            assert_eq!(m.end_epoch, Some(1_795_953_176), "{version}");
            let c = &r[1];
            assert_eq!(&*c.name, "course", "{version}");
            assert_eq!(names(&c.flags), ["ignore_jobs", "magnetic"], "{version}");
            assert_eq!(names(&c.accounts), ["physics", "chemistry"], "{version}");
            assert_eq!(names(&c.users), ["-mallory"], "{version}");
            assert_eq!(&*c.partition, "gpu", "{version}");
            assert_eq!(names(&c.nodes), ["gpu-01", "gpu-02"], "{version}");
            assert_eq!(&*c.tres, "cpu=128,gres/gpu=8", "{version}");
            assert_eq!(&*c.licenses, "matlab:2", "{version}");
            assert_eq!(c.start_epoch, Some(1_795_900_000), "{version}");
            assert_eq!(c.end_epoch, Some(1_796_000_000), "{version}");
            assert!(c.is_active(1_795_950_000), "{version}");
        }
    }

    #[test]
    fn hostile_json_errors_or_neutral_values() {
        let mut n = Interner::default();
        let err = parse_reservations_json(
            br#"{"reservations":[{"name":"evil","node_list":"n[0-99999999999]"}]}"#,
            &mut n,
        )
        .expect_err("refused");
        assert!(err.to_string().contains("evil"), "{err}");
        assert!(err.to_string().contains("byte 45"), "{err}");
        assert_eq!(
            parse_reservations_json(b"{}", &mut n),
            Err(ParseError::Missing("reservations"))
        );
        assert!(parse_reservations_json(b"{\"reservations\":[{", &mut n).is_err());
        assert!(parse_reservations_json(b"\"reservations\"", &mut n).is_err());
        let odd = br#"{"reservations":[1,"x",{"name":""},{"name":"odd","start_time":"soon",
            "end_time":{"set":false,"number":5},"node_count":-1,"core_count":true,
            "flags":{"MAINT":true},"users":7,"node_list":null}]}"#;
        let r = parse_reservations_json(odd, &mut n).expect("neutral");
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0],
            Reservation {
                name: Name::from("odd"),
                users: vec![Name::from("7")],
                ..Reservation::default()
            }
        );
    }

    #[test]
    fn hostile_text_errors_name_the_line() {
        let mut n = Interner::default();
        let e = parse_scontrol_reservations_text("Nodes=a\n", &mut n).expect_err("orphan");
        assert!(e.to_string().starts_with("line 1:"), "{e}");
        let e = parse_scontrol_reservations_text(
            "ReservationName=a Nodes=x\nReservationName=b Nodes=n[3-1]\n",
            &mut n,
        )
        .expect_err("bad hosts");
        assert!(e.to_string().starts_with("line 2:"), "{e}");
        let e = parse_scontrol_reservations_text("ReservationName=a StartTime=yesterday\n", &mut n)
            .expect_err("bad time");
        assert!(e.to_string().contains("StartTime"), "{e}");
        let e = parse_scontrol_reservations_text("ReservationName=a CoreCnt=-4\n", &mut n)
            .expect_err("bad count");
        assert!(e.to_string().contains("CoreCnt"), "{e}");
        assert_eq!(
            parse_scontrol_reservations_text("No reservations in the system\n", &mut n)
                .expect("none"),
            []
        );
        let r = parse_scontrol_reservations_text(
            "ReservationName=lic StartTime=1795950737 EndTime=Unknown Duration=1-00:00:00 Nodes= NodeCnt=0 CoreCnt=0 Licenses=matlab:2\n",
            &mut n,
        )
        .expect("license-only");
        assert_eq!(r[0].end_epoch, Some(1_795_950_737 + 86_400));
        assert!(r[0].nodes.is_empty());
        assert_eq!(&*r[0].licenses, "matlab:2");
    }
}
