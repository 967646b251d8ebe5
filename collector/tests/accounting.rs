//! The accounting path end to end: a source's finished jobs -> the runner's ledger ->
//! the snapshot -> `slurm_*_total` counters, across overlapping polls and restarts.

use collector::families::{collect_all, Options};
use collector::ledger::{AccountingWindow, Ledger};
use collector::poller::{fuse, PollConfig, Runner};
use collector::source::replay::ReplaySource;
use collector::store::{encode, Format};
use sim::{SimSource, SimSpec};
use std::path::Path;

fn replay() -> Box<ReplaySource> {
    Box::new(ReplaySource {
        dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cli/22.05.8"),
        now_epoch: Some(1_795_860_300),
    })
}

fn text(r: &Runner) -> String {
    let snap = fuse(&[r], Some("lab"));
    let mut out = Vec::new();
    encode(
        &collect_all(&snap, &Options::default()),
        Format::Text,
        &|_| true,
        &mut out,
    );
    String::from_utf8(out).expect("utf8")
}

fn sample(text: &str, head: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(head))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn replayed_polls_count_each_job_once_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.redb");
    let window = AccountingWindow::default();
    let mut r = Runner::new(replay(), PollConfig::default())
        .with_ledger(Ledger::open(&path).expect("open"), window);
    r.poll_once().await.expect("poll");
    let first = text(&r);
    // The same window again (a replay returns the same file): nothing new.
    r.poll_once().await.expect("poll");
    let second = text(&r);
    let completed = "slurm_account_jobs_finished_total{account=\"physics\",state=\"completed\"} ";
    assert_eq!(sample(&first, completed), Some(10.0), "{first}");
    assert_eq!(sample(&second, completed), Some(10.0));
    let cpu = "slurm_account_cpu_seconds_total{account=\"physics\"} ";
    assert_eq!(sample(&first, cpu), sample(&second, cpu));
    assert_eq!(
        sample(
            &second,
            "slurm_exporter_accounting_records_skipped_total{reason=\"duplicate\"} "
        ),
        Some(14.0)
    );
    let totals = r.accounting().expect("ledger");
    drop(r);

    // A restart: the file gives the same counters, and the overlap counts nothing twice.
    let mut r = Runner::new(replay(), PollConfig::default())
        .with_ledger(Ledger::open(&path).expect("reopen"), window);
    assert_eq!(r.accounting().as_ref(), Some(&totals));
    r.poll_once().await.expect("poll");
    let third = text(&r);
    assert_eq!(sample(&third, completed), Some(10.0));
    assert_eq!(sample(&third, cpu), sample(&first, cpu));
}

#[tokio::test]
async fn the_simulator_feeds_the_accounting_family() {
    let mut r = Runner::new(
        Box::new(SimSource::new(SimSpec {
            nodes: 100,
            jobs: 1000,
            seed: 3,
        })),
        PollConfig::default(),
    );
    r.poll_once().await.expect("poll");
    let t = text(&r);
    let names = t
        .lines()
        .filter(|l| l.starts_with("# TYPE slurm_") && l.contains("seconds_total counter"))
        .count();
    assert!(names >= 15, "{names} accounting counters in\n{t}");
    let jobs: f64 = t
        .lines()
        .filter(|l| l.starts_with("slurm_cluster_jobs_finished_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(jobs > 0.0, "the sim has finished jobs");
    // A second poll of the same (non-evolving) cluster adds nothing.
    let before = r.accounting().expect("in-memory ledger");
    r.poll_once().await.expect("poll");
    let after = r.accounting().expect("ledger");
    assert_eq!(before.usage, after.usage);
    assert_eq!(after.jobs_counted, before.jobs_counted);
}

/// Against the real Slurm lab (`bash deploy/slurm-lab/lab.sh start`), as root: the CLI and
/// REST sources read the same finished jobs. Run with
/// `cargo test -p slurm-exporter-collector --test accounting -- --ignored`.
#[tokio::test]
#[ignore = "needs the Slurm lab"]
async fn lab_cli_and_rest_read_the_same_finished_jobs() {
    use collector::source::cli::{CliConfig, CliSource};
    use collector::source::rest::{Endpoint, RestConfig, RestSource, TokenSource};
    use collector::source::Extras;
    use std::time::Duration;
    assert!(
        Path::new("/etc/slurm/slurm.conf").exists(),
        "start the lab first: bash deploy/slurm-lab/lab.sh start"
    );
    let cli = CliConfig {
        bin_dir: None,
        slurm_conf: None,
        timeout: Duration::from_secs(30),
    };
    let mut c = Runner::new(
        Box::new(CliSource {
            config: cli.clone(),
            extras: Extras::all(),
        }),
        PollConfig::default(),
    );
    let mut r = Runner::new(
        Box::new(
            RestSource::new(RestConfig {
                endpoint: Endpoint::Tcp {
                    host: "127.0.0.1".into(),
                    port: 6820,
                },
                user: "root".into(),
                // As root, `scontrol token` mints one (what config/rest.toml does).
                token: TokenSource::Scontrol {
                    lifespan_seconds: 600,
                },
                api_version: Some("v0.0.38".into()),
                timeout: Duration::from_secs(30),
                cli,
                extras: Extras::all(),
            })
            .expect("config"),
        ),
        PollConfig::default(),
    );
    c.poll_once().await.expect("cli poll");
    r.poll_once().await.expect("rest poll");
    let (ct, rt) = (c.accounting().expect("cli"), r.accounting().expect("rest"));
    eprintln!(
        "cli counted {} (cursor {:?}), rest counted {} (cursor {:?}); errors cli {:?} rest {:?}",
        ct.jobs_counted,
        ct.cursor_epoch,
        rt.jobs_counted,
        rt.cursor_epoch,
        c.status().errors,
        r.status().errors
    );
    assert!(c.status().errors.is_empty() && r.status().errors.is_empty());
    // Same jobs except those cancelled before they were ever eligible, which only
    // `sacct --state` returns (they used nothing).
    let cpu = |t: &collector::model::AccountingTotals| -> u128 {
        t.usage.values().map(|u| u.cpu_seconds).sum()
    };
    assert!(ct.jobs_counted >= rt.jobs_counted);
    // The two polls are a second apart, so a job ending in between may be in one window
    // only: equal up to a sliver, never off by a whole job class.
    let (a, b) = (cpu(&ct) as f64, cpu(&rt) as f64);
    assert!(
        (a - b).abs() <= a.max(b) * 0.001,
        "CLI {a} vs REST {b} CPU-seconds"
    );
}
