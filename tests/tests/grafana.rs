//! The Grafana dashboards in `deploy/grafana/*.json`, checked offline (no Grafana, no lab).
//!
//! - Structure: a title, a uid unique across the files, a `datasource` variable of type
//!   `datasource` for Prometheus; panel ids unique (rows and the panels of collapsed rows
//!   included); every panel with queries uses the `${datasource}` variable, and its targets
//!   use it too or name no data source (they inherit the panel's); every target has an
//!   `expr`; every grid position fits in 24 columns.
//! - Metric names: every `slurm_...` name in a query is a real one, from `METRICS.md` (plus
//!   `_bucket`/`_sum`/`_count` for its histograms) or from the gateway's own registry
//!   (`e2e::catalog`). Counters are only read as ranges (under
//!   `rate()`/`increase()`), and `rate()`-like functions only read counters and histograms.
//!   The tenant dashboard (tagged `tenant`) uses only metrics with an `account` or
//!   `partition` label: the gateway never serves a tenant cluster-wide or exporter series.
//! - Variables: every `$name` is a variable of the dashboard or one of Grafana's interval
//!   variables; a variable with "All" (`includeAll`, `allValue` `.*`) is only used as a
//!   regex matcher (`=~"$name"`), so a single-cluster setup (no `cluster` label, an empty
//!   variable) still matches every series.
//! - PromQL: brackets balance, and promtool parses every query (the variables replaced by
//!   `.*` and `5m`) as the expression of a recording rule (`promtool check rules`; `PROMTOOL`
//!   names the binary, `bash deploy/test-deps.sh` installs it).
//!
//! `checker_reports_every_kind_of_mistake` feeds the checker a dashboard with one mistake of
//! each kind, a misspelled metric first, so the checks cannot silently pass everything.
#![allow(clippy::disallowed_methods)] // spawns promtool

use e2e::catalog::{Catalog, Use};
use e2e::{run, workspace_path};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const DASHBOARD_DIR: &str = "deploy/grafana";
const DATASOURCE: &str = "${datasource}";
/// Grafana's own variables and the value each gets for promtool.
const BUILTINS: &[(&str, &str)] = &[
    ("__rate_interval", "5m"),
    ("__interval", "1m"),
    ("__range", "6h"),
    ("__interval_ms", "60000"),
    ("__range_s", "21600"),
    ("__range_ms", "21600000"),
];
/// Functions that need a counter (or a histogram's cumulative series) under them.
const COUNTER_FUNCTIONS: &[&str] = &["rate", "irate", "increase", "resets"];

// ------------------------------------------------------------------ PromQL scanning

/// A token of a query outside its string literals.
#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str,
    Punct(char),
}

/// Identifiers, string literals and punctuation (numbers and durations come out as
/// identifiers, which is all the checks need).
fn tokens(expr: &str) -> Result<Vec<(usize, Tok)>, String> {
    let b: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == '\\' && c != '`' {
                    i += 1;
                }
                i += 1;
            }
            if i >= b.len() {
                return Err(format!("unterminated string at {start}"));
            }
            i += 1;
            out.push((start, Tok::Str));
        } else if c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.' || c == '$' {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || matches!(b[i], '_' | ':' | '.' | '$'))
            {
                i += 1;
            }
            out.push((start, Tok::Ident(b[start..i].iter().collect())));
        } else {
            out.push((i, Tok::Punct(c)));
            i += 1;
        }
    }
    Ok(out)
}

/// Brackets outside string literals balance and nest.
fn check_brackets(toks: &[(usize, Tok)]) -> Result<(), String> {
    let mut stack = Vec::new();
    for (pos, t) in toks {
        if let Tok::Punct(c) = t {
            match c {
                '(' | '{' | '[' => stack.push((*c, *pos)),
                ')' | '}' | ']' => {
                    let want = match c {
                        ')' => '(',
                        '}' => '{',
                        _ => '[',
                    };
                    match stack.pop() {
                        Some((open, _)) if open == want => {}
                        Some((open, at)) => {
                            return Err(format!("{c:?} at {pos} closes {open:?} opened at {at}"))
                        }
                        None => return Err(format!("{c:?} at {pos} closes nothing")),
                    }
                }
                _ => {}
            }
        }
    }
    match stack.pop() {
        Some((open, at)) => Err(format!("{open:?} opened at {at} is never closed")),
        None => Ok(()),
    }
}

/// Keywords whose parenthesised list names labels.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The tokens that are `slurm_...` metric names: not label names in `{...}` or in a
/// `by (...)`-like list.
fn metric_positions(toks: &[(usize, Tok)]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut braces = 0usize;
    let mut k = 0;
    while k < toks.len() {
        match &toks[k].1 {
            Tok::Punct('{') => braces += 1,
            Tok::Punct('}') => braces = braces.saturating_sub(1),
            Tok::Ident(w) if braces == 0 && GROUPING.contains(&w.as_str()) => {
                if matches!(toks.get(k + 1), Some((_, Tok::Punct('(')))) {
                    while k < toks.len() && toks[k].1 != Tok::Punct(')') {
                        k += 1;
                    }
                }
            }
            Tok::Ident(w) if braces == 0 && w.starts_with("slurm_") => out.push(k),
            _ => {}
        }
        k += 1;
    }
    out
}

/// The checks on one query's metric names: known, counters under a range, range functions
/// on counters only, and (for a tenant dashboard) tenant-visible metrics only.
fn check_metrics(expr: &str, catalog: &Catalog, tenant: bool, problems: &mut Vec<String>) {
    let toks = match tokens(expr) {
        Ok(t) => t,
        Err(e) => return problems.push(e),
    };
    if let Err(e) = check_brackets(&toks) {
        problems.push(format!("unbalanced brackets: {e}"));
        return;
    }
    for k in metric_positions(&toks) {
        let Tok::Ident(name) = &toks[k].1 else {
            continue;
        };
        let Some(m) = catalog.names.get(name) else {
            problems.push(format!(
                "{name} is not a metric (METRICS.md, gateway/src/admin.rs)"
            ));
            continue;
        };
        // Skip the selector's `{...}`, then see whether a range `[` follows.
        let mut j = k + 1;
        if let Some((_, Tok::Punct('{'))) = toks.get(j) {
            while j < toks.len() && toks[j].1 != Tok::Punct('}') {
                j += 1;
            }
            j += 1;
        }
        let range = matches!(toks.get(j), Some((_, Tok::Punct('['))));
        // The function the selector is the argument of: `f ( name`.
        let function = match (
            k.checked_sub(2).map(|i| &toks[i].1),
            k.checked_sub(1).and_then(|i| toks.get(i)),
        ) {
            (Some(Tok::Ident(f)), Some((_, Tok::Punct('(')))) => Some(f.as_str()),
            _ => None,
        };
        match m.usage {
            Use::Range if !range => problems.push(format!(
                "{name} is a counter: read it as a range, under rate() or increase()"
            )),
            Use::Instant if function.is_some_and(|f| COUNTER_FUNCTIONS.contains(&f)) => problems
                .push(format!(
                    "{name} is not a counter: {}() makes no sense on it",
                    function.unwrap_or_default()
                )),
            _ => {}
        }
        if tenant && !m.labels.contains("account") && !m.labels.contains("partition") {
            problems.push(format!(
                "{name} has neither an account nor a partition label: the gateway never \
                 serves it to a tenant"
            ));
        }
    }
}

/// `$name`, `${name}` and `${name:format}` in a query, with their byte ranges.
fn variables_in(expr: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let start = i;
        if b.get(i + 1) == Some(&b'{') {
            let end = expr[i..].find('}').map_or(b.len(), |e| i + e + 1);
            let inner = &expr[i + 2..end.saturating_sub(1).max(i + 2)];
            let name = inner.split(':').next().unwrap_or_default();
            out.push((start, end, name.to_owned()));
            i = end;
        } else {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            // A `$` alone is a regex anchor, not a variable.
            if i > start + 1 {
                out.push((start, i, expr[start + 1..i].to_owned()));
            }
        }
    }
    out
}

/// The query with every variable replaced by a concrete value, or the problems with its
/// variables.
fn substitute(expr: &str, vars: &BTreeMap<String, Value>, problems: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (start, end, name) in variables_in(expr) {
        out.push_str(&expr[last..start]);
        last = end;
        if let Some((_, v)) = BUILTINS.iter().find(|(b, _)| *b == name) {
            out.push_str(v);
            continue;
        }
        let Some(var) = vars.get(&name) else {
            problems.push(format!("${name} is not a variable of this dashboard"));
            out.push_str(".*");
            continue;
        };
        let regex =
            var["includeAll"].as_bool() == Some(true) || var["multi"].as_bool() == Some(true);
        if regex && !expr[..start].ends_with("=~\"") {
            problems.push(format!(
                "${name} can be All or several values: use it as a regex matcher, =~\"${name}\""
            ));
        }
        out.push_str(".*");
    }
    out.push_str(&expr[last..]);
    if out.contains("[[") {
        problems.push("the deprecated [[variable]] syntax".into());
    }
    out
}

// ------------------------------------------------------------------ dashboards

/// One query to hand to promtool: where it is (for messages and the rule name) and the
/// query with its variables substituted.
#[derive(Debug)]
struct Query {
    rule: String,
    place: String,
    expr: String,
}

#[derive(Debug, Default)]
struct Report {
    problems: Vec<String>,
    queries: Vec<Query>,
    metrics: BTreeSet<String>,
    panels: usize,
}

fn is_datasource_var(v: &Value) -> bool {
    v["uid"].as_str() == Some(DATASOURCE)
}

/// Every check but promtool's, on one dashboard. `stem` names it in rule names.
fn check_dashboard(stem: &str, d: &Value, catalog: &Catalog) -> Report {
    let mut r = Report::default();
    for key in ["title", "uid"] {
        if d[key].as_str().is_none_or(str::is_empty) {
            r.problems.push(format!("no {key}"));
        }
    }
    if d["uid"].as_str().is_some_and(|u| u.len() > 40) {
        r.problems
            .push("uid longer than Grafana's 40 characters".into());
    }
    if d["schemaVersion"].as_u64().is_none_or(|v| v < 36) {
        r.problems.push("schemaVersion below 36 (Grafana 9)".into());
    }
    let tenant = d["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t.as_str() == Some("tenant")));
    let rule_stem: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();

    // Variables.
    let mut vars = BTreeMap::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let Some(name) = v["name"].as_str() else {
            r.problems.push("a variable without a name".into());
            continue;
        };
        if vars.insert(name.to_owned(), v.clone()).is_some() {
            r.problems.push(format!("variable {name} defined twice"));
        }
    }
    match vars.get("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => r
            .problems
            .push("no variable `datasource` of type datasource with query prometheus".into()),
    }
    for (name, v) in &vars {
        if v["includeAll"].as_bool() == Some(true) && v["allValue"].as_str() != Some(".*") {
            r.problems.push(format!(
                "variable {name}: includeAll needs allValue \".*\" (matches series without the label)"
            ));
        }
        if v["type"] != "query" {
            continue;
        }
        if !is_datasource_var(&v["datasource"]) {
            r.problems
                .push(format!("variable {name}: data source is not {DATASOURCE}"));
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or("");
        let promql = if let Some(inner) = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
        {
            // label_values(selector, label); label_values(label) has no selector.
            inner.rsplit_once(',').map(|(sel, _)| sel.trim().to_owned())
        } else if let Some(inner) = q
            .strip_prefix("query_result(")
            .and_then(|s| s.strip_suffix(')'))
        {
            Some(inner.to_owned())
        } else {
            r.problems.push(format!(
                "variable {name}: query {q:?} is not label_values(...) or query_result(...)"
            ));
            None
        };
        if let Some(e) = promql {
            let mut ps = Vec::new();
            check_metrics(&e, catalog, tenant, &mut ps);
            let expr = substitute(&e, &vars, &mut ps);
            r.metrics.extend(metric_names(&e));
            r.problems
                .extend(ps.into_iter().map(|p| format!("variable {name}: {p}")));
            r.queries.push(Query {
                rule: format!("grafana:{rule_stem}:var_{name}"),
                place: format!("variable {name}"),
                expr,
            });
        }
    }

    // Panels, rows and the panels of collapsed rows.
    let mut ids = BTreeSet::new();
    let mut stack: Vec<&Value> = d["panels"].as_array().into_iter().flatten().collect();
    if stack.is_empty() {
        r.problems.push("no panels".into());
    }
    stack.reverse();
    while let Some(p) = stack.pop() {
        let id = p["id"].as_u64();
        let title = p["title"].as_str().unwrap_or("");
        let place = format!(
            "panel {} {title:?}",
            id.map_or("?".into(), |i| i.to_string())
        );
        let mut problem = |m: String| r.problems.push(format!("{place}: {m}"));
        match id {
            None => problem("no numeric id".into()),
            Some(i) if !ids.insert(i) => problem("id used twice".into()),
            _ => {}
        }
        let g = &p["gridPos"];
        match (
            g["x"].as_u64(),
            g["y"].as_u64(),
            g["w"].as_u64(),
            g["h"].as_u64(),
        ) {
            (Some(x), Some(_), Some(w), Some(h)) if w > 0 && h > 0 && x + w <= 24 => {}
            _ => problem(format!("gridPos {g} does not fit in 24 columns")),
        }
        let children = p["panels"].as_array().map_or(&[][..], Vec::as_slice);
        if p["type"] == "row" {
            if p["targets"].as_array().is_some_and(|t| !t.is_empty()) {
                problem("a row with queries".into());
            }
            if p["collapsed"].as_bool() != Some(true) && !children.is_empty() {
                problem(
                    "an open row holding panels (Grafana shows them only when collapsed)".into(),
                );
            }
            stack.extend(children.iter().rev());
            continue;
        }
        r.panels += 1;
        if !children.is_empty() {
            problem("panels inside a panel that is not a row".into());
        }
        let targets = p["targets"].as_array().map_or(&[][..], Vec::as_slice);
        if targets.is_empty() {
            if p["type"] != "text" {
                problem("no queries".into());
            }
            continue;
        }
        if !is_datasource_var(&p["datasource"]) {
            problem(format!(
                "data source is {} and not {DATASOURCE}",
                p["datasource"]
            ));
        }
        let mut refs = BTreeSet::new();
        for t in targets {
            let ref_id = t["refId"].as_str().unwrap_or("");
            let mut problem = |m: String| r.problems.push(format!("{place} query {ref_id:?}: {m}"));
            if ref_id.is_empty() || !refs.insert(ref_id) {
                problem("refId missing or used twice".into());
            }
            if !(t.get("datasource").is_none_or(Value::is_null)
                || is_datasource_var(&t["datasource"]))
            {
                problem(format!(
                    "data source is {}: name none (the panel's) or {DATASOURCE}",
                    t["datasource"]
                ));
            }
            let Some(expr) = t["expr"].as_str().filter(|e| !e.trim().is_empty()) else {
                problem("no expr".into());
                continue;
            };
            let mut ps = Vec::new();
            check_metrics(expr, catalog, tenant, &mut ps);
            let subst = substitute(expr, &vars, &mut ps);
            for m in ps {
                problem(m);
            }
            r.metrics.extend(metric_names(expr));
            r.queries.push(Query {
                rule: format!(
                    "grafana:{rule_stem}:panel_{}_{ref_id}",
                    id.unwrap_or_default()
                ),
                place: format!("{place} query {ref_id:?}"),
                expr: subst,
            });
        }
    }
    r
}

/// The `slurm_...` metric names a query uses (not label names).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let toks = tokens(expr).unwrap_or_default();
    metric_positions(&toks)
        .into_iter()
        .filter_map(|k| match &toks[k].1 {
            Tok::Ident(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// `promtool check rules` on the queries as recording rules: Ok(number of rules checked).
fn promtool_check_queries(queries: &[Query]) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let path = dir.path().join("grafana-queries.rules.yml");
    let mut yaml = String::from("groups:\n  - name: grafana-dashboards\n    rules:\n");
    for q in queries {
        // A JSON string is a valid YAML double-quoted scalar.
        let _ = writeln!(
            yaml,
            "      - record: {}\n        expr: {}",
            q.rule,
            Value::String(q.expr.clone())
        );
    }
    std::fs::write(&path, &yaml).map_err(|e| format!("{}: {e}", path.display()))?;
    let bin = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let r = run(
        Command::new(&bin).arg("check").arg("rules").arg(&path),
        None,
        Duration::from_secs(60),
    )
    .map_err(|e| format!("{e} (install promtool with `bash deploy/test-deps.sh`)"))?;
    let out = format!("{}{}", r.stdout_text(), r.stderr);
    let expected = format!("SUCCESS: {} rules found", queries.len());
    if r.status.success() && out.contains(&expected) {
        return Ok(queries.len());
    }
    // Name the queries promtool refused, by their rule names.
    let refused: Vec<String> = queries
        .iter()
        .filter(|q| out.contains(&format!("\"{}\"", q.rule)))
        .map(|q| format!("  {}: {}", q.place, q.expr))
        .collect();
    Err(format!(
        "promtool check rules: {} (wanted {expected:?}):\n{}\n{}",
        r.status,
        out.trim(),
        refused.join("\n")
    ))
}

fn dashboard_files() -> Vec<PathBuf> {
    let dir = workspace_path(DASHBOARD_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

// ------------------------------------------------------------------ tests

#[test]
fn dashboards_are_well_formed_use_real_metrics_and_parse_with_promtool() {
    let catalog = Catalog::load();
    let files = dashboard_files();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for want in ["slurm-cluster.json", "slurm-tenant.json"] {
        assert!(
            names.iter().any(|n| n == want),
            "{DASHBOARD_DIR}/{want} is missing: {names:?}"
        );
    }
    let mut problems = Vec::new();
    let mut queries = Vec::new();
    let mut uids = BTreeMap::new();
    let mut summary = Vec::new();
    for (path, name) in files.iter().zip(&names) {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let d: Value = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{name}: not JSON: {e}"));
                continue;
            }
        };
        if let Some(uid) = d["uid"].as_str() {
            if let Some(other) = uids.insert(uid.to_owned(), name.clone()) {
                problems.push(format!("{name}: uid {uid:?} is also {other}'s"));
            }
        }
        let stem = name.trim_end_matches(".json");
        let r = check_dashboard(stem, &d, &catalog);
        summary.push(format!(
            "{name}: {} panels, {} queries, {} metric names",
            r.panels,
            r.queries.len(),
            r.metrics.len()
        ));
        problems.extend(r.problems.into_iter().map(|p| format!("{name}: {p}")));
        queries.extend(r.queries.into_iter().map(|mut q| {
            q.place = format!("{name}: {}", q.place);
            q
        }));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    match promtool_check_queries(&queries) {
        Ok(n) => eprintln!("{}\npromtool parsed all {n} queries", summary.join("\n")),
        Err(e) => panic!("{e}"),
    }
}

/// A dashboard with one mistake of each kind: the checker must name every one, and promtool
/// must refuse a query that only it can see is wrong.
#[test]
fn checker_reports_every_kind_of_mistake() {
    let catalog = Catalog::load();
    let ds = json!({"type": "prometheus", "uid": DATASOURCE});
    let panel = |id: u64, exprs: &[&str]| {
        json!({
            "id": id, "type": "timeseries", "title": format!("p{id}"), "datasource": ds,
            "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
            "targets": exprs.iter().enumerate().map(|(i, e)| json!({
                "refId": ((b'A' + u8::try_from(i).unwrap_or(0)) as char).to_string(), "expr": e,
            })).collect::<Vec<_>>(),
        })
    };
    let good =
        r#"sum by (state) (slurm_cluster_nodes{cluster=~"$cluster", state=~"^(idle|mixed)$"})"#;
    let mut no_ds = panel(9, &[good]);
    no_ds["datasource"] = Value::Null;
    let mut no_expr = panel(10, &[good]);
    if let Some(t) = no_expr["targets"][0].as_object_mut() {
        t.remove("expr");
    }
    let d = json!({
        "title": "t", "uid": "u", "schemaVersion": 39, "tags": ["tenant"],
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "cluster", "type": "query", "datasource": ds, "includeAll": true, "allValue": ".*",
             "multi": true, "query": {"query": "label_values(slurm_cluster_nodes_configured, cluster)"}},
        ]},
        "panels": [
            panel(1, &[good, r#"sum(slurm_cluster_nodez{cluster=~"$cluster"})"#]),
            panel(2, &[r#"sum(rate(slurm_cluster_jobs{cluster=~"$cluster"}[5m])"#]),
            panel(3, &[r#"slurm_cluster_jobs{cluster=~"$clustr"}"#]),
            panel(4, &[r#"sum(slurm_cluster_jobs_finished_total{cluster=~"$cluster"})"#]),
            panel(5, &[r#"rate(slurm_cluster_jobs{cluster=~"$cluster"}[5m])"#]),
            panel(6, &[r#"slurm_cluster_jobs{cluster="$cluster"}"#]),
            panel(5, &[good]),
            panel(11, &[r#"slurm_cluster_nodez == 1"#]),
            {"id": 7, "type": "row", "title": "r", "collapsed": true, "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1},
             "panels": [panel(8, &[r#"slurm_exporter_gateway_requests_totl"#]), no_ds, no_expr]},
        ],
    });
    let r = check_dashboard("bad", &d, &catalog);
    let all = r.problems.join("\n");
    for (what, needle) in [
        (
            "a misspelled metric",
            "panel 1 \"p1\" query \"B\": slurm_cluster_nodez is not a metric",
        ),
        (
            "a misspelled metric in a comparison",
            "panel 11 \"p11\" query \"A\": slurm_cluster_nodez is not a metric",
        ),
        (
            "a misspelled gateway metric",
            "slurm_exporter_gateway_requests_totl is not a metric",
        ),
        (
            "unbalanced brackets",
            "panel 2 \"p2\" query \"A\": unbalanced brackets",
        ),
        ("an unknown variable", "$clustr is not a variable"),
        (
            "a counter read as is",
            "slurm_cluster_jobs_finished_total is a counter",
        ),
        (
            "rate() on a gauge",
            "slurm_cluster_jobs is not a counter: rate()",
        ),
        (
            "an All variable in an equality matcher",
            "panel 6 \"p6\" query \"A\": $cluster can be All",
        ),
        ("a duplicate panel id", "panel 5 \"p5\": id used twice"),
        (
            "a panel without the data source variable",
            "panel 9 \"p9\": data source is null",
        ),
        (
            "a query without expr",
            "panel 10 \"p10\" query \"A\": no expr",
        ),
        (
            "a cluster-wide metric on a tenant dashboard",
            "slurm_cluster_nodes has neither an account nor a partition label",
        ),
    ] {
        assert!(
            all.contains(needle),
            "{what} not reported ({needle:?}); reported:\n{all}"
        );
    }
    // The good query (panel 1 "A") raised nothing but the tenant-visibility complaint.
    assert!(
        !r.problems
            .iter()
            .any(|p| p.contains("panel 1 \"p1\" query \"A\"") && !p.contains("neither an account")),
        "{all}"
    );

    // promtool: a good query passes, a query with balanced brackets but bad grammar fails
    // and is named.
    let q = |rule: &str, expr: &str| Query {
        rule: rule.into(),
        place: rule.into(),
        expr: expr.into(),
    };
    assert_eq!(
        promtool_check_queries(&[q(
            "t:good",
            "sum by (state) (slurm_cluster_nodes{cluster=~\".*\"})"
        )]),
        Ok(1)
    );
    let err = promtool_check_queries(&[
        q("t:good", "sum(rate(slurm_cluster_jobs_finished_total[5m]))"),
        q("t:bad", "sum by (state) (slurm_cluster_nodes) by"),
    ])
    .expect_err("promtool accepted a broken query");
    assert!(err.contains("t:bad"), "{err}");
}
