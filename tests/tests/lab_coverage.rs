//! The coverage families against the lab's own tools: scheduler counters against `sdiag`,
//! fairshare against `sshare`, licenses against `scontrol show licenses`, controllers
//! against `scontrol ping`. Each compares only what cannot move between the two looks, or
//! retries when it did.

use e2e::slurm::{client, require_lab};
use e2e::{assert_promtool_ok, run_exporter, workspace_path, Exposition};
use std::thread::sleep;
use std::time::Duration;

const ATTEMPTS: usize = 3;

fn collect(config: &str) -> Exposition {
    let path = workspace_path(config);
    let path = path.to_str().expect("the workspace path is UTF-8");
    let run = run_exporter(&["collect", "--once", "--config", path]);
    assert!(
        run.status.success(),
        "collect --config {config} failed: {}",
        run.stderr.trim()
    );
    assert_promtool_ok(config, &run.stdout);
    Exposition::parse(&run.stdout_text()).unwrap_or_else(|e| panic!("{config}: {e}"))
}

/// `Jobs submitted: 12`-style counters of `sdiag`'s header section.
fn sdiag_job_counters() -> Vec<(String, f64)> {
    let text = client("sdiag", &[]).unwrap_or_else(|e| panic!("sdiag: {e}"));
    ["submitted", "started", "completed", "canceled", "failed"]
        .iter()
        .map(|what| {
            let key = format!("Jobs {what}:");
            let v = text
                .lines()
                .find_map(|l| l.trim().strip_prefix(&key))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("sdiag has no {key:?} line"));
            ((*what).to_owned(), v)
        })
        .collect()
}

fn scheduler_counters_match_sdiag(config: &str) {
    require_lab();
    for attempt in 1..=ATTEMPTS {
        let before = sdiag_job_counters();
        let e = collect(config);
        let after = sdiag_job_counters();
        if before != after {
            assert!(attempt < ATTEMPTS, "{config}: jobs kept moving in sdiag");
            sleep(Duration::from_secs(2));
            continue;
        }
        for (what, want) in &after {
            let name = format!("slurm_scheduler_jobs_{what}_total");
            assert_eq!(e.get(&name, &[]), Some(*want), "{config}: {name} vs sdiag");
        }
        assert!(
            e.get("slurm_scheduler_server_threads", &[]).is_some(),
            "{config}: server threads missing"
        );
        return;
    }
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn rest_scheduler_counters_match_sdiag() {
    scheduler_counters_match_sdiag("config/rest.toml");
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn cli_scheduler_counters_match_sdiag() {
    scheduler_counters_match_sdiag("config/cli.toml");
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn cli_fairshare_matches_sshare() {
    require_lab();
    let e = collect("config/cli.toml");
    let text = client("sshare", &["-a", "-l", "-P"]).unwrap_or_else(|err| panic!("sshare: {err}"));
    let mut header: Vec<&str> = Vec::new();
    let mut users = 0;
    for line in text.lines() {
        let cols: Vec<&str> = line.split('|').collect();
        if header.is_empty() {
            header = cols;
            continue;
        }
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .and_then(|i| cols.get(i))
                .copied()
                .unwrap_or("")
        };
        let (account, user) = (col("Account").trim(), col("User"));
        if user.is_empty() || account == "root" {
            continue;
        }
        let labels = [("user", user), ("account", account)];
        let num = |v: &str| v.parse::<f64>().unwrap_or(f64::NAN);
        assert_eq!(
            e.get("slurm_user_fairshare_raw_shares", &labels),
            Some(num(col("RawShares"))),
            "{user}@{account} raw shares"
        );
        let norm = e
            .get("slurm_user_fairshare_normalized_shares", &labels)
            .unwrap_or(f64::NAN);
        assert!(
            (norm - num(col("NormShares"))).abs() < 1e-6,
            "{user}@{account} normalized shares {norm} vs sshare {}",
            col("NormShares")
        );
        // The factor is recomputed every PriorityCalcPeriod (1 min in the lab): near, not equal.
        let factor = e
            .get("slurm_user_fairshare_factor", &labels)
            .unwrap_or(f64::NAN);
        assert!(
            (factor - num(col("FairShare"))).abs() < 0.2,
            "{user}@{account} fairshare factor {factor} vs sshare {}",
            col("FairShare")
        );
        users += 1;
    }
    assert!(
        users >= 4,
        "expected the lab's users in sshare, found {users}"
    );
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn licenses_and_controllers_match_scontrol() {
    require_lab();
    for config in ["config/rest.toml", "config/cli.toml"] {
        let e = collect(config);
        let lic = client("scontrol", &["-o", "show", "licenses"])
            .unwrap_or_else(|err| panic!("scontrol show licenses: {err}"));
        let mut seen = 0;
        for line in lic.lines().filter(|l| !l.trim().is_empty()) {
            let kv = |k: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{k}=")))
                    .unwrap_or("")
                    .to_owned()
            };
            let name = kv("LicenseName");
            let total: f64 = kv("Total").parse().unwrap_or(f64::NAN);
            assert_eq!(
                e.get("slurm_license_configured", &[("license", &name)]),
                Some(total),
                "{config}: license {name}"
            );
            seen += 1;
        }
        assert!(seen >= 2, "{config}: the lab has matlab and ansys licenses");
        let ping =
            client("scontrol", &["ping"]).unwrap_or_else(|err| panic!("scontrol ping: {err}"));
        let up = ping.contains("is UP");
        assert_eq!(
            e.get("slurm_controllers_responding", &[]),
            Some(if up { 1.0 } else { 0.0 }),
            "{config}: controllers responding vs `{}`",
            ping.trim()
        );
    }
}

/// `sacct` finished allocations of the last hour: (account, state) -> jobs and
/// account -> CPU-seconds (AllocCPUS x ElapsedRaw), the same window the CLI source reads
/// when it has no ledger yet. `-D`: a job requeued after a node failure has a record per
/// run, and each run held its CPUs (`sacct --json`, which the exporter reads, lists them
/// all; plain `sacct` only the last).
fn sacct_truth() -> (
    std::collections::BTreeMap<(String, String), f64>,
    std::collections::BTreeMap<String, f64>,
) {
    let text = client(
        "sacct",
        &[
            "-a",
            "-X",
            "-D",
            "-n",
            "-P",
            "-S",
            "now-3600",
            "-E",
            "now",
            "-s",
            "BF,CA,CD,DL,F,NF,OOM,PR,RQ,TO",
            "-o",
            "JobID,Account,State,AllocCPUS,ElapsedRaw",
        ],
    )
    .unwrap_or_else(|e| panic!("sacct: {e}"));
    let mut jobs = std::collections::BTreeMap::new();
    let mut cpu = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').collect();
        let [_, account, state, cpus, elapsed] = f[..] else {
            panic!("sacct line {line:?}");
        };
        // "CANCELLED by 1001" -> cancelled
        let state = state
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        *jobs.entry((account.to_owned(), state)).or_insert(0.0) += 1.0;
        let c: f64 = cpus.parse().unwrap_or(0.0);
        let e: f64 = elapsed.parse().unwrap_or(0.0);
        *cpu.entry(account.to_owned()).or_insert(0.0) += c * e;
    }
    (jobs, cpu)
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn cli_accounting_matches_sacct() {
    require_lab();
    for attempt in 1..=ATTEMPTS {
        let before = sacct_truth();
        let e = collect("config/cli.toml");
        let after = sacct_truth();
        if before != after {
            assert!(attempt < ATTEMPTS, "jobs kept finishing during the collect");
            sleep(Duration::from_secs(2));
            continue;
        }
        let (jobs, cpu) = after;
        assert!(
            !jobs.is_empty(),
            "the mix leaves finished jobs in the last hour"
        );
        for ((account, state), n) in &jobs {
            assert_eq!(
                e.get(
                    "slurm_account_jobs_finished_total",
                    &[("account", account), ("state", state)]
                ),
                Some(*n),
                "{account} {state} vs sacct"
            );
        }
        // And nothing the ground truth does not have.
        let served: Vec<(String, String)> = e
            .family("slurm_account_jobs_finished_total")
            .filter(|(_, v)| *v > 0.0)
            .filter_map(|(l, _)| {
                let get = |k: &str| l.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                Some((get("account")?, get("state")?))
            })
            .collect();
        assert!(!served.is_empty(), "finished-job series are served");
        for key in &served {
            assert!(jobs.contains_key(key), "{key:?} served but not in sacct");
        }
        for (account, secs) in &cpu {
            assert_eq!(
                e.get("slurm_account_cpu_seconds_total", &[("account", account)]),
                Some(*secs),
                "{account} CPU-seconds vs sacct AllocCPUS x ElapsedRaw"
            );
        }
        return;
    }
}
