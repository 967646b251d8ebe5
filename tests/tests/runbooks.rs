//! Every alert of `deploy/prometheus/alerts.yml` carries a `runbook_url` annotation that
//! points at its own runbook, `docs/runbooks/<AlertName>.md`, and that file exists with the
//! three parts a runbook needs (what it means, how to confirm with Slurm, what to do). No
//! runbook is left without its alert.

use e2e::workspace_path;
use std::collections::BTreeSet;
use std::path::Path;

const RULES: &str = "deploy/prometheus/alerts.yml";
const RUNBOOKS: &str = "docs/runbooks";
/// The headings every runbook has.
const SECTIONS: &[&str] = &["## What it means", "## Confirm with Slurm", "## What to do"];

/// The problems of the rules' runbook links against the runbooks in `dir`.
fn check(rules: &str, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut alerts = BTreeSet::new();
    for block in rules.split("- alert:").skip(1) {
        let name = block.lines().next().unwrap_or_default().trim().to_owned();
        // The block ends where the next rule or group starts.
        let own: Vec<&str> = block
            .lines()
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with("- "))
            .collect();
        let url = own.iter().find_map(|l| {
            l.trim_start()
                .strip_prefix("runbook_url:")
                .map(|v| v.trim().trim_matches('"').to_owned())
        });
        alerts.insert(name.clone());
        let Some(url) = url else {
            problems.push(format!("{name}: no runbook_url annotation"));
            continue;
        };
        let want = format!("/{RUNBOOKS}/{name}.md");
        if !url.ends_with(&want) {
            problems.push(format!(
                "{name}: runbook_url {url:?} does not end in {want:?}"
            ));
            continue;
        }
        let file = dir.join(format!("{name}.md"));
        match std::fs::read_to_string(&file) {
            Err(e) => problems.push(format!("{name}: {}: {e}", file.display())),
            Ok(text) => {
                if !text.starts_with(&format!("# {name}\n")) {
                    problems.push(format!("{name}: the runbook's title is not `# {name}`"));
                }
                for s in SECTIONS {
                    if !text.lines().any(|l| l == *s) {
                        problems.push(format!("{name}: the runbook has no `{s}`"));
                    }
                }
            }
        }
    }
    if alerts.is_empty() {
        problems.push("no alerts".into());
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = file.strip_suffix(".md") {
            if stem != "README" && !alerts.contains(stem) {
                problems.push(format!("{file}: a runbook without an alert"));
            }
        }
    }
    problems
}

#[test]
fn every_alert_links_its_own_runbook_and_the_runbook_exists() {
    let rules = std::fs::read_to_string(workspace_path(RULES)).expect("read the alert rules");
    let problems = check(&rules, &workspace_path(RUNBOOKS));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_reports_a_missing_link_a_wrong_link_a_missing_file_and_an_orphan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = format!("# Good\n\n{}\n", SECTIONS.join("\n\ntext\n\n"));
    std::fs::write(dir.path().join("Good.md"), good).expect("write");
    std::fs::write(dir.path().join("Thin.md"), "# Thin\n\n## What to do\n").expect("write");
    std::fs::write(dir.path().join("Orphan.md"), "# Orphan\n").expect("write");
    let rules = r#"groups:
  - name: g
    rules:
      - alert: Good
        annotations:
          runbook_url: "https://x/docs/runbooks/Good.md"
      - alert: NoLink
        annotations:
          summary: "s"
      - alert: WrongLink
        annotations:
          runbook_url: "https://x/docs/runbooks/Good.md"
      - alert: Missing
        annotations:
          runbook_url: "https://x/docs/runbooks/Missing.md"
      - alert: Thin
        annotations:
          runbook_url: "https://x/docs/runbooks/Thin.md"
"#;
    let all = check(rules, dir.path()).join("\n");
    for needle in [
        "NoLink: no runbook_url",
        "WrongLink: runbook_url",
        "Missing: ",
        "Thin: the runbook has no `## What it means`",
        "Orphan.md: a runbook without an alert",
    ] {
        assert!(all.contains(needle), "{needle:?} not reported:\n{all}");
    }
    assert!(!all.contains("Good:"), "{all}");
}
