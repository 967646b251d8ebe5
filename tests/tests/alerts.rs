//! The alerting rules users get, `deploy/prometheus/alerts.yml`: `promtool check rules`
//! accepts them, `promtool test rules` passes their unit tests
//! (`deploy/prometheus/alerts_test.yml`), every alert has a firing and a silent case there,
//! every alert carries `for:`, a severity, a summary and a description with a runbook hint,
//! and every metric either file names exists: in `METRICS.md` (generated from the
//! collector's code) or among the gateway's own metrics (its real registry, `e2e::catalog`). A misspelled metric would otherwise make an alert that never
//! fires, and its unit test would pass with the same misspelling.
//!
//! No lab needed; `PROMTOOL` names the binary (default `promtool`; `bash
//! deploy/test-deps.sh` installs it).
#![allow(clippy::disallowed_methods)] // promtool is the program under test

use e2e::catalog::Catalog;
use e2e::{run, workspace_path};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

const RULES: &str = "deploy/prometheus/alerts.yml";
const RULE_TESTS: &str = "deploy/prometheus/alerts_test.yml";

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
/// Every sample name the exporter and the gateway expose (`e2e::catalog`).
fn known_metrics() -> BTreeSet<String> {
    Catalog::load().names.into_keys().collect()
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
        "not in METRICS.md nor among the gateway's metrics:\n{}",
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
