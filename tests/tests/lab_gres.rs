//! Issue 12 on the real Slurm 22.05 lab: the shapes production clusters write, checked
//! against Slurm's own tools at the same moment.
//!
//! The lab (`deploy/slurm-lab/lab.sh submit-mix`) has an untyped GPU node (`xgpu-01`,
//! `gpu:2`), a node with two GPU types (`xgpu-02`, `gpu:h100:2,gpu:h200:2`), a job pending
//! in two partitions (`-p cpu,debug`), a requeued run, nodes in IDLE+FAIL, IDLE+POWERED_DOWN,
//! IDLE+MAINT and IDLE+DRAIN+POWERED_DOWN, and no `gres/gpu` in `AccountingStorageTRES`
//! (job TRES strings name no GPUs). Compared with `sinfo -N -O NodeList,Gres,GresUsed`,
//! `sinfo [-p P] -o %C`, `squeue -p P` and `sacct -D`.

use e2e::slurm::{client, require_lab};
use e2e::{assert_promtool_ok, run_exporter, workspace_path, Exposition};
use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::Duration;

const ATTEMPTS: usize = 3;
const CONFIGS: [(&str, &str); 2] = [("rest", "config/rest.toml"), ("cli", "config/cli.toml")];

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

fn tool(program: &str, args: &[&str]) -> String {
    client(program, args).unwrap_or_else(|e| panic!("{program} {}: {e}", args.join(" ")))
}

/// GPUs by type of one GRES string as sinfo prints it, written independently of the
/// exporter: `name[:type]:count[(annotations)]` entries; `(null)` is no type; only `gpu`.
fn gpus_by_type(gres: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let (mut depth, mut start, mut entries) = (0, 0, Vec::new());
    for (i, c) in gres.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                entries.push(&gres[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&gres[start..]);
    for e in entries {
        // cut the annotation after the count, keep `(null)` as a field
        let e = e.trim();
        let e = match e.rfind('(') {
            Some(i) if !e[i..].starts_with("(null)") => &e[..i],
            _ => e,
        };
        let f: Vec<&str> = e.split(':').collect();
        if f.first() != Some(&"gpu") {
            continue;
        }
        let (ty, n) = match f.as_slice() {
            [_, n] => ("", *n),
            [_, t, n] => (if *t == "(null)" { "" } else { *t }, *n),
            _ => panic!("unexpected GRES entry {e:?} in {gres:?}"),
        };
        let n: u64 = n.parse().unwrap_or_else(|_| panic!("count of {e:?}"));
        *out.entry(if ty.is_empty() {
            "unknown".to_owned()
        } else {
            ty.to_owned()
        })
        .or_default() += n;
    }
    out
}

/// `node -> type -> (total, used)` from `sinfo -N -O NodeList,Gres,GresUsed`.
fn sinfo_gres() -> BTreeMap<String, BTreeMap<String, (u64, u64)>> {
    let text = tool(
        "sinfo",
        &["-N", "-h", "-O", "NodeList:60|,Gres:200|,GresUsed:300"],
    );
    let mut out: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let [node, gres, used] = f[..] else {
            panic!("sinfo line {line:?}");
        };
        let node = out.entry(node.to_owned()).or_default();
        node.clear();
        for (ty, n) in gpus_by_type(gres) {
            node.entry(ty).or_default().0 = n;
        }
        for (ty, n) in gpus_by_type(used) {
            node.entry(ty).or_default().1 = n;
        }
    }
    out.retain(|_, types| types.values().any(|(t, _)| *t > 0));
    out
}

#[test]
fn the_gres_parser_of_this_test_reads_every_lab_shape() {
    let g = |s: &str| gpus_by_type(s).into_iter().collect::<Vec<_>>();
    assert_eq!(g("gpu:2"), [("unknown".into(), 2)]);
    assert_eq!(g("gpu:(null):1(IDX:0)"), [("unknown".into(), 1)]);
    assert_eq!(
        g("gpu:h100:2(IDX:0-1),gpu:h200:1(IDX:2)"),
        [("h100".into(), 2), ("h200".into(), 1)]
    );
    assert_eq!(g("gpu:a100:0(IDX:N/A)"), [("a100".into(), 0)]);
    assert!(g("(null)").is_empty());
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn gpus_of_every_type_match_sinfo_gres_and_gres_used() {
    require_lab();
    for (source, config) in CONFIGS {
        for attempt in 1..=ATTEMPTS {
            let before = sinfo_gres();
            let e = collect(config);
            let after = sinfo_gres();
            if before != after {
                assert!(attempt < ATTEMPTS, "{source}: GRES kept changing");
                sleep(Duration::from_secs(2));
                continue;
            }
            assert!(
                after
                    .get("xgpu-01")
                    .is_some_and(|t| t.contains_key("unknown")),
                "the lab has an untyped GPU node: {after:?}"
            );
            assert!(
                after.get("xgpu-02").is_some_and(|t| t.len() == 2),
                "the lab has a node with two GPU types: {after:?}"
            );
            let mut cluster: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
            for (node, types) in &after {
                let (mut total, mut used) = (0, 0);
                for (ty, (t, u)) in types {
                    let get = |state: &str| {
                        e.get(
                            "slurm_gpu_node",
                            &[("node", node), ("type", ty), ("state", state)],
                        )
                    };
                    assert_eq!(
                        get("allocated"),
                        Some(*u as f64),
                        "{source}: {node} {ty} in use"
                    );
                    let sum: f64 = ["allocated", "idle", "other"]
                        .iter()
                        .filter_map(|s| get(s))
                        .sum();
                    assert_eq!(sum, *t as f64, "{source}: {node} {ty} total");
                    let c = cluster.entry(ty).or_default();
                    c.0 += t;
                    c.1 += u;
                    total += t;
                    used += u;
                }
                assert_eq!(
                    e.get("slurm_node_gpus", &[("node", node), ("state", "allocated")]),
                    Some(used as f64),
                    "{source}: {node} GPUs in use"
                );
                let node_total: f64 = ["allocated", "idle", "other"]
                    .iter()
                    .filter_map(|s| e.get("slurm_node_gpus", &[("node", node), ("state", s)]))
                    .sum();
                assert_eq!(node_total, total as f64, "{source}: {node} GPUs");
            }
            for (ty, (t, u)) in &cluster {
                assert_eq!(
                    e.get("slurm_gpu_cluster_configured", &[("type", ty)]),
                    Some(*t as f64),
                    "{source}: cluster {ty} GPUs"
                );
                assert_eq!(
                    e.get("slurm_gpu_cluster", &[("type", ty), ("state", "allocated")]),
                    Some(*u as f64),
                    "{source}: cluster {ty} GPUs in use"
                );
            }
            break;
        }
    }
}

/// `A/I/O/T` of `sinfo [-p P] -h -o %C`.
fn sinfo_cpus(partition: Option<&str>) -> [u64; 4] {
    let mut args = vec!["-h", "-o", "%C"];
    if let Some(p) = partition {
        args.extend(["-p", p]);
    }
    let text = tool("sinfo", &args);
    let v: Vec<u64> = text
        .trim()
        .split('/')
        .map(|x| x.parse().unwrap_or_else(|_| panic!("sinfo %C {text:?}")))
        .collect();
    v.try_into().unwrap_or_else(|_| panic!("sinfo %C {text:?}"))
}

fn partitions() -> Vec<String> {
    let text = tool("sinfo", &["-h", "-o", "%R"]);
    let mut v: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    v.sort();
    v.dedup();
    v
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn cpu_states_match_sinfo_percent_c_for_the_cluster_and_every_partition() {
    require_lab();
    // The states sinfo %C treats apart are all in the lab.
    let states = tool("sinfo", &["-N", "-h", "-O", "StateComplete:80"]);
    for want in [
        "idle+fail",
        "idle+powered_down",
        "idle+maintenance",
        "idle+drain+powered_down",
        "down+not_responding",
        "drain",
    ] {
        assert!(
            states.contains(want),
            "the lab has a node in {want}:\n{states}"
        );
    }
    for (source, config) in CONFIGS {
        for attempt in 1..=ATTEMPTS {
            let parts = partitions();
            let before: Vec<[u64; 4]> = std::iter::once(sinfo_cpus(None))
                .chain(parts.iter().map(|p| sinfo_cpus(Some(p))))
                .collect();
            let e = collect(config);
            let after: Vec<[u64; 4]> = std::iter::once(sinfo_cpus(None))
                .chain(parts.iter().map(|p| sinfo_cpus(Some(p))))
                .collect();
            if before != after {
                assert!(attempt < ATTEMPTS, "{source}: CPUs kept changing");
                sleep(Duration::from_secs(2));
                continue;
            }
            let states = ["allocated", "idle", "other"];
            for (i, st) in states.iter().enumerate() {
                assert_eq!(
                    e.get("slurm_cluster_cpus", &[("state", st)]),
                    Some(after[0][i] as f64),
                    "{source}: slurm_cluster_cpus{{state={st:?}}} vs sinfo -o %C {:?}",
                    after[0]
                );
            }
            assert_eq!(
                e.get("slurm_cluster_cpus_configured", &[]),
                Some(after[0][3] as f64)
            );
            for (p, c) in parts.iter().zip(&after[1..]) {
                for (i, st) in states.iter().enumerate() {
                    assert_eq!(
                        e.get("slurm_partition_cpus", &[("partition", p), ("state", st)]),
                        Some(c[i] as f64),
                        "{source}: partition {p} {st} vs sinfo -p {p} -o %C {c:?}"
                    );
                }
                assert_eq!(
                    e.get("slurm_partition_cpus_configured", &[("partition", p)]),
                    Some(c[3] as f64),
                    "{source}: partition {p} configured"
                );
            }
            break;
        }
    }
}

/// `squeue -p P` job counts by state label, array tasks one each.
fn squeue_by_partition(p: &str) -> BTreeMap<String, u64> {
    let text = tool(
        "squeue",
        &["-h", "-a", "-r", "-t", "all", "-p", p, "-o", "%T"],
    );
    let mut m = BTreeMap::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        *m.entry(e2e::slurm::job_state_label(l).to_owned())
            .or_default() += 1;
    }
    m
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn partition_jobs_match_squeue_p_with_a_job_pending_in_two_partitions() {
    require_lab();
    let multi = tool("squeue", &["-h", "-a", "-t", "PD", "-o", "%P"]);
    assert!(
        multi.lines().any(|l| l.trim() == "cpu,debug"),
        "the lab has a job pending in cpu and debug"
    );
    for (source, config) in CONFIGS {
        for attempt in 1..=ATTEMPTS {
            let parts = partitions();
            let before: Vec<_> = parts.iter().map(|p| squeue_by_partition(p)).collect();
            let e = collect(config);
            let after: Vec<_> = parts.iter().map(|p| squeue_by_partition(p)).collect();
            if before != after {
                assert!(attempt < ATTEMPTS, "{source}: jobs kept changing");
                sleep(Duration::from_secs(2));
                continue;
            }
            let mut sum = 0u64;
            for (p, counts) in parts.iter().zip(&after) {
                for (st, n) in counts {
                    assert_eq!(
                        e.get("slurm_partition_jobs", &[("partition", p), ("state", st)]),
                        Some(*n as f64),
                        "{source}: slurm_partition_jobs{{partition={p:?},state={st:?}}} vs squeue -p {p}"
                    );
                    sum += n;
                }
            }
            let cluster: f64 = e.family("slurm_cluster_jobs").map(|(_, v)| v).sum();
            assert!(
                sum as f64 > cluster,
                "{source}: the job in two partitions makes partition sums ({sum}) exceed the cluster's ({cluster})"
            );
            break;
        }
    }
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn job_gpus_come_from_gres_when_accounting_does_not_track_gpus() {
    require_lab();
    let config = tool("scontrol", &["show", "config"]);
    let tres = config
        .lines()
        .find(|l| l.trim_start().starts_with("AccountingStorageTRES"))
        .unwrap_or_default();
    assert!(
        !tres.contains("gres/gpu"),
        "the lab does not account gres/gpu: {tres}"
    );
    for (source, config) in CONFIGS {
        for attempt in 1..=ATTEMPTS {
            // %b: GRES per node (`gres:gpu:a100:4`), %D: nodes
            let look = || tool("squeue", &["-h", "-a", "-r", "-t", "R", "-o", "%b|%D"]);
            let before = look();
            let e = collect(config);
            let after = look();
            if before != after {
                assert!(attempt < ATTEMPTS, "{source}: running jobs kept changing");
                sleep(Duration::from_secs(2));
                continue;
            }
            let mut want = 0u64;
            for l in after.lines().filter(|l| !l.trim().is_empty()) {
                let (per_node, nodes) = l.split_once('|').unwrap_or_else(|| panic!("{l:?}"));
                let per_node = per_node.trim().trim_start_matches("gres:");
                let n: u64 = gpus_by_type(per_node).values().sum();
                want += n * nodes.trim().parse::<u64>().unwrap_or(1);
            }
            assert!(want > 0, "the lab runs GPU jobs");
            assert_eq!(
                e.get("slurm_cluster_job_gpus", &[("state", "running")]),
                Some(want as f64),
                "{source}: running job GPUs vs squeue %b x %D"
            );
            break;
        }
    }
}

#[test]
#[ignore = "needs the Slurm lab: bash deploy/slurm-lab/lab.sh start && submit-mix"]
fn requeued_runs_count_as_sacct_d_lists_them() {
    require_lab();
    let look = || {
        tool(
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
                "RQ",
                "-o",
                "JobID,Account,End",
            ],
        )
    };
    for attempt in 1..=ATTEMPTS {
        let before = look();
        let e = collect("config/cli.toml");
        let after = look();
        if before != after {
            assert!(attempt < ATTEMPTS, "requeued runs kept changing");
            sleep(Duration::from_secs(2));
            continue;
        }
        let mut by_account: BTreeMap<&str, f64> = BTreeMap::new();
        for l in after.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = l.split('|').collect();
            if f.get(2).is_some_and(|end| *end != "Unknown") {
                *by_account.entry(f[1]).or_default() += 1.0;
            }
        }
        assert!(
            !by_account.is_empty(),
            "the lab has a requeued run that ended"
        );
        for (account, n) in by_account {
            assert_eq!(
                e.get(
                    "slurm_account_jobs_finished_total",
                    &[("account", account), ("state", "requeued")]
                ),
                Some(n),
                "{account}: requeued runs vs sacct -D -s RQ"
            );
        }
        return;
    }
}
