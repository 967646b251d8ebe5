//! Family names in the config: `external` (the series ingested from textfiles, node_exporter,
//! slurmctld's `/metrics`) is switched off and budgeted from `[collectors]` like every other
//! family, and a renamed family's old name still loads.

use collector::store::Format;
use gateway::app::collect_once;
use gateway::settings::Settings as Config;

/// A textfile source serving one metric with `n` series, plus `collectors`.
fn config(dir: &std::path::Path, n: usize, collectors: &str) -> Config {
    let body: String = (0..n)
        .map(|i| format!("slurm_custom_disk_bytes{{fs=\"fs{i}\"}} {}\n", i + 1))
        .collect();
    std::fs::write(
        dir.join("site.prom"),
        format!("# TYPE slurm_custom_disk_bytes gauge\n{body}"),
    )
    .expect("write site.prom");
    let text = format!(
        "[source]\nkind = \"textfile\"\n[source.textfile]\ndirectory = {:?}\n\
         default_scope = \"cluster\"\n{collectors}",
        dir.display().to_string()
    );
    Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

async fn exposition(cfg: &Config) -> String {
    let out = collect_once(cfg, Format::Text).await.expect("collects");
    String::from_utf8(out).expect("UTF-8")
}

fn series(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn external_is_switched_off_and_budgeted_from_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    for n in [3, 5, 9] {
        let on = exposition(&config(dir.path(), n, "")).await;
        assert_eq!(series(&on, "slurm_custom_disk_bytes").len(), n, "{on}");
        // The n series and the file's `slurm_textfile_ok`.
        assert!(
            on.contains(&format!(
                "slurm_exporter_series{{family=\"external\"}} {}\n",
                n + 1
            )),
            "{on}"
        );

        let off = exposition(&config(
            dir.path(),
            n,
            "[collectors]\ndisabled = [\"external\"]\n",
        ))
        .await;
        assert!(series(&off, "slurm_custom_disk_bytes").is_empty(), "{off}");
        assert!(!off.contains("family=\"external\""), "{off}");

        let budget = 2;
        let folded = exposition(&config(
            dir.path(),
            n,
            &format!("[collectors.label_budgets]\nexternal = {budget}\n"),
        ))
        .await;
        let kept = series(&folded, "slurm_custom_disk_bytes");
        assert_eq!(kept.len(), budget, "{folded}");
        assert!(kept.iter().any(|l| l.contains("__overflow__")), "{kept:?}");
        // Folding keeps the sum: 1 + 2 + ... + n.
        let sum: f64 = kept
            .iter()
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(sum, (n * (n + 1) / 2) as f64, "{kept:?}");
        assert!(
            folded.contains(&format!(
                "slurm_exporter_series_folded{{family=\"external\"}} {}\n",
                n - (budget - 1)
            )),
            "{folded}"
        );
    }
}

#[test]
fn old_family_names_still_load_and_unknown_ones_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    for old in ["users", "usage"] {
        config(
            dir.path(),
            1,
            &format!(
                "[collectors]\ndisabled = [\"{old}\"]\n[collectors.label_budgets]\n{old} = 10\n"
            ),
        );
    }
    for word in ["accounts", "cgroup", "external"] {
        config(
            dir.path(),
            1,
            &format!("[collectors]\ndisabled = [\"{word}\"]\n"),
        );
    }
    let e = Config::parse("[source]\nkind = \"sim\"\n[collectors]\ndisabled = [\"externals\"]\n")
        .expect_err("unknown family")
        .msg;
    assert!(
        e.contains("collectors.disabled: unknown family \"externals\""),
        "{e}"
    );
    assert!(
        e.contains(", external)"),
        "the known names include external: {e}"
    );
}
