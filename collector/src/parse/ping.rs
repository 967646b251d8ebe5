//! Controllers' answers to ping: REST `/slurm/vX/ping` (also `scontrol ping --json`) and
//! plain `scontrol ping` text.
//!
//! Fields by version (SchedMD `src/plugins/openapi/v0.0.3x/diag.c`,
//! `src/plugins/data_parser/v0.0.4x/parsers.c` `CONTROLLER_PING`):
//! - v0.0.36–38: `hostname`, `ping` ("UP"/"DOWN"), `status` (0 = answered), `mode`.
//! - v0.0.39–41: `hostname`, `pinged` ("UP"/"DOWN"), `latency` (microseconds), `mode`.
//! - v0.0.42+: `responding` (bool) and `primary` (bool) replace `pinged` and `mode`, which
//!   stay for a while as deprecated.

use super::doc::small_document;
use super::flex::{BoolLike, Flex};
use super::ParseError;
use crate::model::Controller;
use serde::Deserialize;
use serde_json::Value;

/// `backup` when there are two controllers, `backupN` beyond, as scontrol names them.
fn mode_for_index(i: usize, total: usize) -> String {
    match i {
        0 => "primary".to_owned(),
        1 if total == 2 => "backup".to_owned(),
        n => format!("backup{n}"),
    }
}

fn str_of<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn controller(p: &Value, i: usize, total: usize) -> Option<Controller> {
    let host = str_of(p, "hostname")?.to_owned();
    let bool_of = |k: &str| {
        p.get(k)
            .and_then(|x| BoolLike::deserialize(x).ok())
            .map(|b| b.0)
    };
    let up = bool_of("responding")
        .or_else(|| {
            str_of(p, "pinged")
                .or_else(|| str_of(p, "ping"))
                .map(|s| s.eq_ignore_ascii_case("UP"))
        })
        .or_else(|| p.get("status").and_then(Value::as_i64).map(|s| s == 0))
        .unwrap_or(false);
    let mode = match (str_of(p, "mode"), bool_of("primary")) {
        (Some(m), _) => m.to_ascii_lowercase(),
        (None, Some(true)) => "primary".to_owned(),
        // A non-primary listed first is still a backup.
        (None, Some(false)) => mode_for_index(i.max(1), total),
        (None, None) => mode_for_index(i, total),
    };
    let latency_seconds = p
        .get("latency")
        .and_then(|x| Flex::deserialize(x).ok())
        .and_then(Flex::u64)
        .map(|us| us as f64 / 1e6);
    Some(Controller {
        host,
        mode,
        up,
        latency_seconds,
    })
}

/// Parses a REST `ping` document (any version) or `scontrol ping --json` output.
pub fn parse_ping_json(bytes: &[u8]) -> Result<Vec<Controller>, ParseError> {
    let (env, doc) = small_document(bytes)?;
    let Some(pings) = doc.get("pings").and_then(Value::as_array) else {
        return Err(if env.errors.is_empty() {
            ParseError::Missing("pings")
        } else {
            ParseError::Slurm(env.errors.join("; "))
        });
    };
    Ok(pings
        .iter()
        .enumerate()
        .filter_map(|(i, p)| controller(p, i, pings.len()))
        .collect())
}

/// Parses `scontrol ping`: one `Slurmctld(MODE) at HOST is UP|DOWN` line per controller.
/// Releases before 20.02 print them on one line (`Slurmctld(primary/backup) at a/b is UP/DOWN`).
/// The "RESTORE SLURMCTLD DAEMON TO SERVICE" banner and other lines are ignored, but text
/// without any controller line is an error.
pub fn parse_scontrol_ping_text(text: &str) -> Result<Vec<Controller>, ParseError> {
    let mut out = Vec::new();
    let mut first_line = None;
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        first_line.get_or_insert(i + 1);
        let Some(rest) = t.strip_prefix("Slurmctld(") else {
            continue;
        };
        let bad = |msg: &str| ParseError::Line {
            line: i + 1,
            msg: format!("{msg}: {t:?}"),
        };
        let (modes, rest) = rest
            .split_once(')')
            .ok_or_else(|| bad("no closing parenthesis"))?;
        let rest = rest
            .trim_start()
            .strip_prefix("at ")
            .ok_or_else(|| bad("expected \"at HOST\""))?;
        let (hosts, states) = rest
            .rsplit_once(" is ")
            .ok_or_else(|| bad("expected \"is UP|DOWN\""))?;
        let modes: Vec<&str> = modes.split('/').map(str::trim).collect();
        let hosts: Vec<&str> = hosts.split('/').map(str::trim).collect();
        let states: Vec<&str> = states.split('/').map(str::trim).collect();
        if modes.len() != hosts.len() || hosts.len() != states.len() {
            return Err(bad("modes, hosts and states do not pair up"));
        }
        for ((mode, host), state) in modes.iter().zip(&hosts).zip(&states) {
            if host.is_empty() {
                return Err(bad("empty host name"));
            }
            out.push(Controller {
                host: (*host).to_owned(),
                mode: mode.to_ascii_lowercase(),
                up: state.eq_ignore_ascii_case("UP"),
                latency_seconds: None,
            });
        }
    }
    if out.is_empty() {
        return Err(ParseError::Line {
            line: first_line.unwrap_or(1),
            msg: "not scontrol ping output: no \"Slurmctld(...) at HOST is UP|DOWN\" line".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V38: &[u8] = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_ping.json");
    const V39: &[u8] = include_bytes!("../../testdata/rest/23.02.7/slurm_v0.0.39_ping.json");
    const V42: &[u8] = include_bytes!("../../testdata/rest/24.11.5/slurm_v0.0.42_ping.json");
    const V44: &[u8] = include_bytes!("../../testdata/rest/25.11.0/slurm_v0.0.44_ping.json");
    const TEXT: &str = include_str!("../../testdata/cli/22.05.8/scontrol.ping.txt");

    fn c(host: &str, mode: &str, up: bool, latency: Option<f64>) -> Controller {
        Controller {
            host: host.into(),
            mode: mode.into(),
            up,
            latency_seconds: latency,
        }
    }

    #[test]
    fn rest_and_scontrol_captures_of_the_lab_agree() {
        let json = parse_ping_json(V38).expect("capture parses");
        assert_eq!(json, vec![c("vm", "primary", true, None)]);
        assert_eq!(
            parse_scontrol_ping_text(TEXT).expect("capture parses"),
            json
        );
    }

    #[test]
    fn newer_versions_give_latency_and_booleans() {
        assert_eq!(
            parse_ping_json(V39).expect("v0.0.39"),
            vec![
                c("ctl1", "primary", true, Some(0.001835)),
                c("ctl2", "backup", false, Some(10.001422)),
            ]
        );
        assert_eq!(
            parse_ping_json(V42).expect("v0.0.42"),
            vec![
                c("ctl1", "primary", true, Some(0.001204)),
                c("ctl2", "backup", true, Some(0.00231)),
            ]
        );
        // Only `responding`/`primary`: backups are named as scontrol names them.
        assert_eq!(
            parse_ping_json(V44).expect("v0.0.44"),
            vec![
                c("ctl1", "primary", true, Some(0.000988)),
                c("ctl2", "backup1", false, Some(10.00021)),
                c("ctl3", "backup2", true, Some(0.001502)),
            ]
        );
    }

    #[test]
    fn scontrol_multi_controller_forms() {
        let text = "Slurmctld(primary) at host1 is UP\nSlurmctld(backup) at host2 is DOWN\n\
                    *****************************************\n\
                    ** RESTORE SLURMCTLD DAEMON TO SERVICE **\n\
                    *****************************************\n";
        let want = vec![
            c("host1", "primary", true, None),
            c("host2", "backup", false, None),
        ];
        assert_eq!(parse_scontrol_ping_text(text).expect("parses"), want);
        // Releases before 20.02 put both controllers on one line.
        let old = "Slurmctld(primary/backup) at host1/host2 is UP/DOWN\n";
        assert_eq!(parse_scontrol_ping_text(old).expect("parses"), want);
    }

    #[test]
    fn numbers_as_strings_and_nulls_are_tolerated() {
        let doc = br#"{"pings":[{"hostname":null},5,{"hostname":"a","ping":7,"status":"0"},
            {"hostname":"b","status":0,"latency":"1500"},{"hostname":"c","responding":"true","primary":1}]}"#;
        assert_eq!(
            parse_ping_json(doc).expect("tolerated"),
            vec![
                c("a", "backup2", false, None),
                c("b", "backup3", true, Some(0.0015)),
                c("c", "primary", true, None),
            ]
        );
        assert_eq!(parse_ping_json(br#"{"pings":[]}"#).expect("empty"), vec![]);
    }

    #[test]
    fn hostile_input_is_an_error_never_a_panic() {
        for bad in [
            &b""[..],
            b"<html><body>502 Bad Gateway</body></html>",
            b"null",
            b"{}",
            br#"{"pings":null}"#,
            br#"{"pings":{"hostname":"a"}}"#,
        ] {
            assert!(
                parse_ping_json(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A stride keeps debug runs short: each parse sets up a 1 MiB window.
        for cut in (0..V39.len() - 1).step_by(7) {
            assert!(parse_ping_json(&V39[..cut]).is_err(), "cut at {cut}");
        }
        let err = parse_ping_json(br#"{"errors":[{"description":"slurm_load_ctl_conf failed"}]}"#)
            .expect_err("errors only");
        assert_eq!(err, ParseError::Slurm("slurm_load_ctl_conf failed".into()));
        for bad in [
            "",
            "<html></html>",
            "scontrol: error: slurm_load_ctl_conf: Unable to contact slurm controller",
        ] {
            assert!(parse_scontrol_ping_text(bad).is_err(), "{bad:?}");
        }
        let err =
            parse_scontrol_ping_text("\nSlurmctld(primary) at host1\n").expect_err("no state");
        assert!(matches!(err, ParseError::Line { line: 2, .. }), "{err}");
        let err = parse_scontrol_ping_text("Slurmctld(primary/backup) at a is UP/DOWN")
            .expect_err("unpaired");
        assert!(matches!(err, ParseError::Line { line: 1, .. }), "{err}");
    }
}
