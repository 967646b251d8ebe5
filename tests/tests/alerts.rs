//! The alerting rules users get, `deploy/prometheus/alerts.yml`: `promtool check rules`
//! accepts them, `promtool test rules` passes their unit tests
//! (`deploy/prometheus/alerts_test.yml`), every alert has a firing and a silent case there,
//! every alert carries `for:`, a severity, a summary and a description with a runbook hint,
//! and every metric either file names exists: in `METRICS.md` (generated from the
//! collector's code) or among the gateway's own metrics registered in
//! `gateway/src/admin.rs`. A misspelled metric would otherwise make an alert that never
//! fires, and its unit test would pass with the same misspelling.
//!
//! No lab needed; `PROMTOOL` names the binary (default `promtool`; `bash
//! deploy/test-deps.sh` installs it).
#![allow(clippy::disallowed_methods)] // promtool is the program under test

use e2e::{run, workspace_path};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

const RULES: &str = "deploy/prometheus/alerts.yml";
const RULE_TESTS: &str = "deploy/prometheus/alerts_test.yml";
const METRICS_DOC: &str = "METRICS.md";
const GATEWAY_METRICS_SRC: &str = "gateway/src/admin.rs";

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace_path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// `promtool ARGS FILE`; panics with promtool's output unless it exits 0 and prints no
/// warning.
fn promtool(args: &[&str], rel: &str) -> String {
    let bin = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let r = run(
        Command::new(&bin)
            .args(args)
            .arg(workspace_path(rel))
            .current_dir(workspace_path("deploy/prometheus")),
        None,
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e} (install promtool with `bash deploy/test-deps.sh`)"));
    let out = format!("{}{}", r.stdout_text(), r.stderr);
    assert!(
        r.status.success() && !out.contains("WARNING") && !out.contains("FAILED"),
        "promtool {} {rel}: {}\n{out}",
        args.join(" "),
        r.status
    );
    out
}

#[test]
fn promtool_checks_the_alerting_rules() {
    let out = promtool(&["check", "rules"], RULES);
    let alerts = alerts(&read(RULES));
    let rules: usize = alerts.values().sum();
    assert!(
        out.contains(&format!("SUCCESS: {rules} rules found")),
        "promtool check rules {RULES}: want {rules} rules: {out}"
    );
}

#[test]
fn promtool_unit_tests_of_the_alerting_rules_pass() {
    let out = promtool(&["test", "rules"], RULE_TESTS);
    assert!(out.contains("SUCCESS"), "{out}");
}

// ------------------------------------------------------------------ metric names

/// Every metric name a query may use: from METRICS.md (a histogram's `_bucket`, `_sum` and
/// `_count`; counters are listed with their `_total`) and the gateway's registrations.
fn known_metrics() -> BTreeSet<String> {
    let mut known = documented_metrics(&read(METRICS_DOC));
    known.extend(gateway_metrics(&read(GATEWAY_METRICS_SRC)));
    known
}

/// The sample names of METRICS.md's table rows (`` | `name` | type | ... ``). Checks the
/// count against the file's own "N metric names." line.
fn documented_metrics(doc: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut families = 0;
    for line in doc.lines() {
        let Some(rest) = line.strip_prefix("| `") else {
            continue;
        };
        let Some((name, rest)) = rest.split_once('`') else {
            continue;
        };
        let kind = rest
            .trim_start_matches([' ', '|'])
            .split('|')
            .next()
            .unwrap_or_default()
            .trim();
        families += 1;
        match kind {
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            "counter" if !name.ends_with("_total") => {
                names.insert(format!("{name}_total"));
            }
            "counter" | "gauge" => {
                names.insert(name.to_owned());
            }
            other => panic!("{METRICS_DOC}: {name}: unknown type {other:?}"),
        }
    }
    let stated = doc
        .lines()
        .find_map(|l| l.strip_suffix(" metric names."))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("{METRICS_DOC}: no \"N metric names.\" line"));
    assert_eq!(
        families, stated,
        "{METRICS_DOC}: table rows read vs the stated count"
    );
    names
}

/// The sample names of the gateway's own metrics, from `GatewayMetrics::new` in
/// gateway/src/admin.rs: `Registry::with_prefix(P)`, then each `registry.register(NAME, HELP,
/// METRIC)` or `registry.register_with_unit(NAME, HELP, Unit::U, METRIC)`, METRIC's type
/// read from its `let` (prometheus-client's naming: `P_NAME[_UNIT]` and `_total` for
/// counters, `_bucket`/`_sum`/`_count` for histograms, `_info` for infos).
fn gateway_metrics(src: &str) -> BTreeSet<String> {
    let what = GATEWAY_METRICS_SRC;
    let prefix = src
        .split_once("Registry::with_prefix(\"")
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(p, _)| p)
        .unwrap_or_else(|| panic!("{what}: no Registry::with_prefix(\"...\")"));
    let mut names = BTreeSet::new();
    for (at, _) in src.match_indices("registry.register") {
        let call = &src[at + "registry.register".len()..];
        let with_unit = call.starts_with("_with_unit(");
        if !with_unit && !call.starts_with('(') {
            continue;
        }
        let args = call_args(&call[call.find('(').unwrap_or(0)..])
            .unwrap_or_else(|| panic!("{what}: unreadable registry.register call at byte {at}"));
        let name = args
            .first()
            .and_then(|a| a.strip_prefix('"'))
            .and_then(|a| a.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{what}: register call at byte {at}: {args:?}"));
        let unit = if with_unit {
            match args.get(2).map(String::as_str) {
                Some("Unit::Seconds") => "_seconds",
                Some("Unit::Bytes") => "_bytes",
                other => panic!("{what}: {name}: unit {other:?} not known to this test"),
            }
        } else {
            ""
        };
        let metric = args.last().map(String::as_str).unwrap_or_default();
        let kind = if metric.starts_with("Info::new(") {
            "info"
        } else {
            let var = metric
                .strip_suffix(".clone()")
                .unwrap_or_else(|| panic!("{what}: {name}: metric {metric:?}"));
            let decl = format!("let {var} =");
            let start = src[..at]
                .rfind(&decl)
                .unwrap_or_else(|| panic!("{what}: {name}: no `{decl}` before its registration"));
            let stmt = src[start..].split(';').next().unwrap_or_default();
            if stmt.contains("Histogram") || stmt.contains("histogram") {
                "histogram"
            } else if stmt.contains("Counter") {
                "counter"
            } else if stmt.contains("Gauge") {
                "gauge"
            } else {
                panic!("{what}: {name}: type of `{stmt}` not known to this test")
            }
        };
        let base = format!("{prefix}_{name}{unit}");
        match kind {
            "counter" => {
                names.insert(format!("{base}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{base}{suffix}"));
                }
            }
            "info" => {
                names.insert(format!("{base}_info"));
            }
            _ => {
                names.insert(base);
            }
        }
    }
    assert!(names.len() >= 8, "{what}: only {names:?}");
    names
}

/// The top-level arguments of a call, `(` first: split at commas outside strings and
/// brackets, trimmed, an empty trailing one dropped. `None` when the call does not close.
fn call_args(call: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let (mut in_str, mut escaped) = (false, false);
    for c in call.chars() {
        if in_str {
            cur.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                cur.push(c);
            }
            '(' | '[' | '{' => {
                if depth > 0 {
                    cur.push(c);
                }
                depth += 1;
            }
            ')' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    args.push(cur.trim().to_owned());
                    args.retain(|a| !a.is_empty());
                    return Some(args);
                }
                cur.push(c);
            }
            ',' if depth == 1 => args.push(std::mem::take(&mut cur).trim().to_owned()),
            _ => cur.push(c),
        }
    }
    None
}

/// Every `slurm_[a-z0-9_]+` identifier in `text` that starts a word (not inside `x_slurm_y`).
fn slurm_identifiers(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("slurm_") {
        if at > 0 && word(b[at - 1]) {
            continue;
        }
        let len = b[at..]
            .iter()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || **c == b'_')
            .count();
        out.insert(text[at..at + len].to_owned());
    }
    out
}

/// The rule files' `expr:` values, block scalars (`expr: |`) included.
fn expressions(rules: &str) -> Vec<String> {
    let lines: Vec<&str> = rules.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let Some(value) = body.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if matches!(value, "|" | "|-" | "|+" | ">" | ">-" | ">+") {
            let indent = line.len() - body.len();
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            out.push(block.join("\n"));
        } else {
            out.push(value.to_owned());
        }
    }
    out
}

/// The identifiers of `text` that are not metrics.
fn unknown_metrics(text: &str, known: &BTreeSet<String>) -> Vec<String> {
    slurm_identifiers(text)
        .into_iter()
        .filter(|n| !known.contains(n))
        .collect()
}

#[test]
fn every_metric_the_alerts_use_exists() {
    let known = known_metrics();
    let rules = read(RULES);
    let exprs = expressions(&rules);
    assert!(
        exprs.len() >= 20,
        "{RULES}: only {} expressions",
        exprs.len()
    );
    let mut used = BTreeSet::new();
    let mut bad = Vec::new();
    for e in &exprs {
        let ids = slurm_identifiers(e);
        assert!(!ids.is_empty(), "{RULES}: no slurm_ metric in `{e}`");
        for n in unknown_metrics(e, &known) {
            bad.push(format!("{n} in `{e}`"));
        }
        used.extend(ids);
    }
    // Annotations (runbook hints) and the unit tests' input series name metrics too; comments
    // (which mention `slurm_exporter_gateway_*`) do not count.
    let not_comments = |text: &str| {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (file, text) in [
        (RULES, not_comments(&rules)),
        (RULE_TESTS, not_comments(&read(RULE_TESTS))),
    ] {
        for n in unknown_metrics(&text, &known) {
            bad.push(format!("{n} in {file}"));
        }
    }
    assert!(
        bad.is_empty(),
        "not in {METRICS_DOC} nor registered in {GATEWAY_METRICS_SRC}:\n{}",
        bad.join("\n")
    );
    // Both sources of names are really used.
    assert!(used
        .iter()
        .any(|n| n.starts_with("slurm_exporter_gateway_")));
    assert!(used.iter().any(|n| n.starts_with("slurm_cluster_")));
}

#[test]
fn a_misspelled_metric_is_caught() {
    let known = known_metrics();
    for (expr, bad) in [
        (
            "slurm_exporter_source_up == 0 and slurm_controllers_respondng == 0",
            "slurm_controllers_respondng",
        ),
        (
            "increase(slurm_exporter_gateway_audit_record_total{result=\"failed\"}[5m]) > 0",
            "slurm_exporter_gateway_audit_record_total",
        ),
        // A histogram's base name is not a series.
        (
            "histogram_quantile(0.5, slurm_partition_pending_age_seconds) > 1",
            "slurm_partition_pending_age_seconds",
        ),
        // A gauge has no _total.
        (
            "rate(slurm_cluster_nodes_total[5m])",
            "slurm_cluster_nodes_total",
        ),
        (
            "slurm_exporter_gateway_config_last_reload_successful_total == 0",
            "slurm_exporter_gateway_config_last_reload_successful_total",
        ),
    ] {
        assert_eq!(unknown_metrics(expr, &known), [bad], "{expr}");
    }
    for good in [
        "slurm_partition_pending_age_seconds_bucket",
        "slurm_partition_pending_age_seconds_count",
        "slurm_rpc_user_calls_total",
        "slurm_exporter_gateway_request_duration_seconds_bucket",
        "slurm_exporter_gateway_config_last_reload_success_timestamp_seconds",
        "slurm_exporter_gateway_config_last_reload_successful",
        "slurm_exporter_gateway_build_info",
    ] {
        assert!(known.contains(good), "{good} should be known");
    }
    // Identifiers inside longer words are not metrics of ours.
    assert!(slurm_identifiers("my_slurm_metric x:slurm_y").is_empty());
}

/// The gateway's own unit tests (in admin.rs) spell out exposition lines; every
/// `slurm_exporter_gateway_` name they use must be one this test derives from the
/// registrations, or the derivation is wrong.
#[test]
fn gateway_names_derived_from_the_registrations_match_the_gateways_own_tests() {
    let src = read(GATEWAY_METRICS_SRC);
    let derived = gateway_metrics(&src);
    let spelled: BTreeSet<String> = slurm_identifiers(&src)
        .into_iter()
        .filter(|n| n.starts_with("slurm_exporter_gateway_") && !n.ends_with('_'))
        .collect();
    assert!(
        spelled.len() >= 6,
        "{GATEWAY_METRICS_SRC}: only {spelled:?}"
    );
    let missing: Vec<_> = spelled.difference(&derived).collect();
    assert!(
        missing.is_empty(),
        "named in {GATEWAY_METRICS_SRC} but not derived: {missing:?}; derived: {derived:?}"
    );
}

// ------------------------------------------------------------------ rule shape and coverage

/// Alert name -> number of rules with that name (one per severity).
fn alerts(rules: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for l in rules.lines() {
        if let Some(name) = l.trim_start().strip_prefix("- alert:") {
            *out.entry(name.trim().to_owned()).or_default() += 1;
        }
    }
    out
}

#[test]
fn every_alert_has_for_severity_summary_and_a_runbook_hint() {
    let rules = read(RULES);
    let blocks: Vec<&str> = rules.split("- alert:").skip(1).collect();
    assert!(blocks.len() >= 20, "{RULES}: only {} alerts", blocks.len());
    for b in blocks {
        let name = b.lines().next().unwrap_or_default().trim();
        let has = |key: &str| b.lines().any(|l| l.trim_start().starts_with(key));
        assert!(has("expr: "), "{name}: no expr");
        assert!(has("for: "), "{name}: no `for:`");
        assert!(
            has("severity: warning") || has("severity: critical"),
            "{name}: severity must be warning or critical"
        );
        assert!(has("summary: "), "{name}: no summary");
        let description = b
            .lines()
            .find(|l| l.trim_start().starts_with("description: "))
            .unwrap_or_else(|| panic!("{name}: no description"));
        assert!(
            description.contains("Runbook: "),
            "{name}: the description has no `Runbook: ` hint"
        );
    }
}

#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test() {
    let names = alerts(&read(RULES));
    let tests = read(RULE_TESTS);
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = l.strip_prefix("alertname:") else {
            continue;
        };
        let name = name.trim().to_owned();
        assert!(
            names.contains_key(&name),
            "{RULE_TESTS}: {name} is not an alert of {RULES}"
        );
        match lines.get(i + 1).copied() {
            Some("exp_alerts: []") => silent.insert(name),
            Some("exp_alerts:") => fires.insert(name),
            other => panic!("{RULE_TESTS}: {name}: exp_alerts expected after it, got {other:?}"),
        };
    }
    for name in names.keys() {
        assert!(
            fires.contains(name),
            "{RULE_TESTS}: no case where {name} fires"
        );
        assert!(
            silent.contains(name),
            "{RULE_TESTS}: no case where {name} stays silent"
        );
    }
}
