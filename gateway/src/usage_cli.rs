//! `slurm-exporter usage report`: priced usage by billing period from the `[chargeback]`
//! store, as a table, CSV, JSON or FOCUS. (The poller's side is `collector::charge::Feed`.)
//! The engine is the `chargeback` crate; this file only wires the config to it.

use crate::settings::Settings as Config;
use chargeback::report::{self, Dim, Format};
use chargeback::{Settings, Store};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// `usage` subcommands.
#[derive(clap::Subcommand)]
pub enum UsageCommand {
    /// Priced usage over a date range, by billing period (see docs/chargeback.md).
    Report {
        #[arg(long)]
        config: PathBuf,
        /// First day (`YYYY-MM-DD`, local midnight in `chargeback.time_zone`) or RFC 3339 time.
        #[arg(long)]
        from: String,
        /// End, exclusive: `--from 2026-01-01 --to 2026-02-01` is January.
        #[arg(long)]
        to: String,
        /// Only this tenant's accounts (`[[tenants]]`).
        #[arg(long)]
        tenant: Option<String>,
        /// Any of account,user,partition,qos,tres.
        #[arg(long, default_value = "account")]
        by: String,
        /// table, csv, json or focus (FOCUS 1.x CSV; always by account and tres).
        #[arg(long, default_value = "table")]
        format: String,
    },
}

/// Runs a `usage` subcommand, printing its output.
pub fn run(cmd: UsageCommand) -> Result<(), String> {
    match cmd {
        UsageCommand::Report {
            config,
            from,
            to,
            tenant,
            by,
            format,
        } => {
            let cfg = Config::load(&config).map_err(|e| e.to_string())?;
            let text = report(&cfg, &from, &to, tenant.as_deref(), &by, &format)?;
            // A closed pipe (`| head`) is an error line, not a panic.
            std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
                .map_err(|e| format!("writing to stdout: {e}"))
        }
    }
}

fn settings(cfg: &Config) -> Result<&Settings, String> {
    cfg.chargeback
        .as_ref()
        .ok_or_else(|| "the config has no [chargeback] section".to_owned())
}

/// The report's text.
pub fn report(
    cfg: &Config,
    from: &str,
    to: &str,
    tenant: Option<&str>,
    by: &str,
    format: &str,
) -> Result<String, String> {
    let s = settings(cfg)?;
    let (cal, card) = s.load()?;
    let format: Format = format.parse()?;
    let mut by = Dim::parse_list(by)?;
    if format == Format::Focus {
        by.extend([Dim::Account, Dim::Tres]);
        by.sort();
        by.dedup();
    }
    let from = cal.parse_instant(from).map_err(|e| format!("--from {e}"))?;
    let to = cal.parse_instant(to).map_err(|e| format!("--to {e}"))?;
    if from >= to {
        return Err("--from must be before --to".into());
    }
    let accounts: Option<BTreeSet<String>> = match tenant {
        None => None,
        Some(t) => Some(
            cfg.tenants
                .iter()
                .find(|x| x.name == t)
                .ok_or_else(|| format!("--tenant {t:?}: no such tenant in [[tenants]]"))?
                .accounts
                .iter()
                .cloned()
                .collect(),
        ),
    };
    let store = Store::open_read_only(&s.store).map_err(|e| e.to_string())?;
    let allocs = store.allocations(from, to).map_err(|e| e.to_string())?;
    let rows = report::rows(&allocs, &cal, &card, from, to, &by, accounts.as_ref());
    Ok(report::write(&rows, &by, format, &card.currency))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chargeback::{Allocation, Calendar, Period};
    use collector::charge::Feed;

    fn alloc(job: u64, account: &str, start: u64, len: u64) -> Allocation {
        Allocation {
            cluster: "lab".into(),
            job_id: job,
            array_job_id: 0,
            array_task_id: None,
            het_job_id: 0,
            het_offset: None,
            account: account.into(),
            user: "alice".into(),
            partition: "cpu".into(),
            qos: "normal".into(),
            start,
            end: Some(start + len),
            until: start + len,
            tres: [("cpu".to_owned(), 4)].into(),
        }
    }

    #[test]
    fn the_example_config_has_a_valid_chargeback_section() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/chargeback.toml");
        let cfg = Config::load(&p).expect("example loads");
        let (cal, card) = settings(&cfg)
            .expect("section")
            .load()
            .expect("card and zone");
        assert_eq!((cal.period, card.currency.as_str()), (Period::Month, "EUR"));
    }

    #[test]
    fn a_report_reads_the_configured_store_for_a_tenant() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("rates.toml"),
            "currency = \"EUR\"\n[[prices]]\ncpu = 0.10\n",
        )
        .expect("card");
        let cfg_path = dir.path().join("exporter.toml");
        std::fs::write(
            &cfg_path,
            "[source]\nkind = \"sim\"\n\n[[tenants]]\nname = \"alpha\"\naccounts = [\"physics\"]\n\n\
             [chargeback]\nstore = \"usage.redb\"\nrate_card = \"rates.toml\"\ntime_zone = \"Europe/Paris\"\n",
        )
        .expect("config");
        let cfg = Config::load(&cfg_path).expect("config loads");
        let feed = Feed::open(settings(&cfg).expect("section")).expect("open");
        let cal = Calendar::new(Period::Month, "Europe/Paris").expect("zone");
        let jan = cal.parse_instant("2026-01-31T22:00:00Z").expect("t");
        // One hour across the Paris month boundary (23:00 UTC on Jan 31 is midnight).
        feed.apply(&[alloc(1, "physics", jan, 7200), alloc(2, "chem", jan, 3600)])
            .expect("apply");
        let r = |tenant, by, fmt| report(&cfg, "2026-01-01", "2026-03-01", tenant, by, fmt);
        let csv = r(Some("alpha"), "account,tres", "csv").expect("report");
        let lines: Vec<&str> = csv.lines().filter(|l| l.contains(",cpu,")).collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(
            lines[0].starts_with(
                "2025-12-31T23:00:00Z,2026-01-31T23:00:00Z,physics,cpu,14400,0.400000000"
            ),
            "{csv}"
        );
        assert!(
            lines[1].starts_with("2026-01-31T23:00:00Z,2026-02-28T23:00:00Z,physics,cpu,14400"),
            "{csv}"
        );
        assert!(
            !csv.contains("chem"),
            "another tenant's account is left out"
        );
        let focus = r(None, "user", "focus").expect("focus");
        assert!(focus.starts_with("BilledCost,"));
        assert!(focus.contains("chem") && focus.contains("physics"));
        assert!(r(Some("omega"), "account", "csv")
            .expect_err("unknown")
            .contains("omega"));
        assert!(r(None, "account", "pdf").is_err());
        assert!(report(&cfg, "2026-03-01", "2026-01-01", None, "account", "csv").is_err());
        // A bad card fails the config load (and `check-config`) with the card's file and line.
        std::fs::write(
            dir.path().join("rates.toml"),
            "currency = \"EUR\"\n[[prices]]\ncpu = -0.1\n",
        )
        .expect("card");
        let e = Config::load(&cfg_path).expect_err("bad card").to_string();
        assert!(e.contains("rates.toml line 3"), "{e}");
    }
}
