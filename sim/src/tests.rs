//! The simulator against the 22.05.8 captures and against itself.

use crate::catalogue::{Kind, FLAG_NAMES, NOW};
use crate::json::{empty, to_slurm_json};
use crate::model::{hostlist, idx_str, mem_str, ArraySpec, SimCluster, SimSpec};
use crate::truth::SimTruth;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};

const CAP_JOBS: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurm_v0.0.38_jobs.json");
const CAP_NODES: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurm_v0.0.38_nodes.json");
const CAP_PARTITIONS: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurm_v0.0.38_partitions.json");
const CAP_DIAG: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurm_v0.0.38_diag.json");
const CAP_PING: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurm_v0.0.38_ping.json");
const CAP_LICENSES: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurm_v0.0.38_licenses.json");
const CAP_RESERVATIONS: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurm_v0.0.38_reservations.json");
const CAP_ASSOCIATIONS: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurmdb_v0.0.38_associations.json");
const CAP_QOS: &str =
    include_str!("../../collector/testdata/rest/22.05.8/slurmdb_v0.0.38_qos.json");

type WriteFn = fn(&SimCluster, &mut dyn Write) -> io::Result<()>;
const DOCS: [(&str, WriteFn, &str, &str); 9] = [
    ("jobs", SimCluster::write_jobs, CAP_JOBS, "jobs"),
    ("nodes", SimCluster::write_nodes, CAP_NODES, "nodes"),
    (
        "partitions",
        SimCluster::write_partitions,
        CAP_PARTITIONS,
        "partitions",
    ),
    ("diag", SimCluster::write_diag, CAP_DIAG, "statistics"),
    ("ping", SimCluster::write_ping, CAP_PING, "pings"),
    (
        "licenses",
        SimCluster::write_licenses,
        CAP_LICENSES,
        "licenses",
    ),
    (
        "reservations",
        SimCluster::write_reservations,
        CAP_RESERVATIONS,
        "reservations",
    ),
    (
        "associations",
        SimCluster::write_associations,
        CAP_ASSOCIATIONS,
        "associations",
    ),
    ("qos", SimCluster::write_qos, CAP_QOS, "QOS"),
];

fn spec(seed: u64) -> SimSpec {
    SimSpec {
        nodes: 300,
        jobs: 3_000,
        seed,
    }
}

fn render(c: &SimCluster, f: WriteFn) -> Vec<u8> {
    let mut out = Vec::new();
    f(c, &mut out).expect("well-formed");
    out
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("well-formed")
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, b, c) = (
        SimCluster::new(spec(7)),
        SimCluster::new(spec(7)),
        SimCluster::new(spec(8)),
    );
    for (name, f, _, _) in DOCS {
        assert_eq!(
            render(&a, f),
            render(&b, f),
            "{name} differs for the same seed"
        );
    }
    assert_eq!(a.truth(), b.truth());
    for f in [SimCluster::write_jobs as WriteFn, SimCluster::write_nodes] {
        assert_ne!(render(&a, f), render(&c, f));
    }
    assert_eq!(a.cluster_name(), "sim");
}

#[test]
fn every_document_parses_and_starts_like_slurmrestd() {
    let c = SimCluster::new(spec(1));
    for (name, f, cap, key) in DOCS {
        let bytes = render(&c, f);
        let v = parse(&bytes);
        assert!(v[key].is_array() || v[key].is_object(), "{name}: no {key}");
        assert_eq!(v["errors"], Value::Array(vec![]), "{name}");
        // Everything up to the payload key, meta included, is byte-identical to the capture.
        let head = |s: &[u8]| {
            let key = format!("\"{key}\": ");
            let text = String::from_utf8_lossy(s).into_owned();
            text[..text.find(&key).expect("well-formed") + key.len()].to_string()
        };
        assert_eq!(head(&bytes), head(cap.as_bytes()), "{name}: header");
        assert!(
            !bytes.ends_with(b"\n"),
            "{name}: slurmrestd sends no trailing newline"
        );
    }
}

#[test]
fn formatter_reproduces_capture_bytes() {
    // Re-serializing a capture cannot keep key order without `preserve_order`, so check the
    // formatting rules on a value whose order is fixed.
    let v = obj! { "a": empty(), "b": obj! {}, "c": vec!["x/y"], "d": 32.0, "e": -2i32 };
    let mut out = Vec::new();
    to_slurm_json(&mut out, 0, &v).expect("well-formed");
    let want = concat!(
        "{\n  \"a\": [\n  ],\n  \"b\": {\n  },\n",
        "  \"c\": [\n    \"x\\/y\"\n  ],\n  \"d\": 32.0,\n  \"e\": -2\n}",
    );
    assert_eq!(String::from_utf8(out).expect("well-formed"), want);
}

/// Same keys (recursively) and same JSON types wherever neither side is null.
fn shape_diff(path: &str, ours: &Value, real: &Value, errs: &mut Vec<String>) {
    match (ours, real) {
        (Value::Object(a), Value::Object(b)) => {
            if path.ends_with(".sockets") || path.ends_with(".cores") {
                return; // keys are socket and core numbers
            }
            let ka: BTreeSet<&String> = a.keys().collect();
            let kb: BTreeSet<&String> = b.keys().collect();
            if ka != kb {
                errs.push(format!(
                    "{path}: ours-only {:?}, capture-only {:?}",
                    &ka - &kb,
                    &kb - &ka
                ));
            }
            for (k, va) in a {
                if let Some(vb) = b.get(k) {
                    shape_diff(&format!("{path}.{k}"), va, vb, errs);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                shape_diff(&format!("{path}[]"), x, y, errs);
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() != y.is_f64() {
                errs.push(format!("{path}: number {x} vs {y}"));
            }
        }
        (a, b) => {
            if std::mem::discriminant(a) != std::mem::discriminant(b) {
                errs.push(format!("{path}: {a} vs {b}"));
            }
        }
    }
}

#[test]
fn records_have_the_captures_keys_and_types() {
    let c = SimCluster::new(spec(3));
    for (name, f, cap, key) in DOCS {
        let ours = parse(&render(&c, f));
        let real: Value = serde_json::from_str(cap).expect("well-formed");
        let mut errs = Vec::new();
        // Top level and meta.
        let strip = |v: &Value| {
            let mut v = v.clone();
            v[key] = Value::Null;
            v
        };
        shape_diff(name, &strip(&ours), &strip(&real), &mut errs);
        match (&ours[key], &real[key]) {
            (Value::Array(mine), Value::Array(theirs)) => {
                assert!(!mine.is_empty(), "{name}: no records");
                let with_res = theirs
                    .iter()
                    .find(|r| r.get("job_resources").is_some())
                    .unwrap_or(&theirs[0]);
                let without = theirs
                    .iter()
                    .find(|r| r.get("job_resources").is_none())
                    .unwrap_or(&theirs[0]);
                for (i, r) in mine.iter().enumerate() {
                    let model = if key == "jobs" && r.get("job_resources").is_none() {
                        without
                    } else {
                        with_res
                    };
                    shape_diff(&format!("{name}[{i}]"), r, model, &mut errs);
                }
            }
            (a, b) => shape_diff(name, a, b, &mut errs),
        }
        errs.truncate(10);
        assert!(errs.is_empty(), "{name}:\n{}", errs.join("\n"));
    }
}

fn gres_count(s: &str) -> u64 {
    // `gpu:a100:4`, `gpu:a100:2(IDX:0-1)`, `gpu:0`, ``
    let s = s.split('(').next().unwrap_or("");
    s.rsplit(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn array_tasks(s: &str) -> u64 {
    let s = s.split('%').next().expect("well-formed");
    s.split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => {
                b.parse::<u64>().expect("well-formed") - a.parse::<u64>().expect("well-formed") + 1
            }
            None => {
                r.parse::<u64>().expect("well-formed");
                1
            }
        })
        .sum()
}

fn recount(c: &SimCluster) -> SimTruth {
    let nodes = parse(&render(c, SimCluster::write_nodes));
    let jobs = parse(&render(c, SimCluster::write_jobs));
    let mut t = SimTruth::default();
    for n in nodes["nodes"].as_array().expect("well-formed") {
        *t.nodes_by_state
            .entry(n["state"].as_str().expect("well-formed").to_string())
            .or_default() += 1;
        for f in n["state_flags"].as_array().expect("well-formed") {
            *t.node_flags
                .entry(f.as_str().expect("well-formed").to_ascii_lowercase())
                .or_default() += 1;
        }
        t.cpus_total += n["cpus"].as_u64().expect("well-formed");
        t.cpus_allocated += n["alloc_cpus"].as_u64().expect("well-formed");
        t.gpus_total += gres_count(n["gres"].as_str().expect("well-formed"));
        t.gpus_allocated += gres_count(n["gres_used"].as_str().expect("well-formed"));
    }
    for j in jobs["jobs"].as_array().expect("well-formed") {
        let tasks = match (
            j["array_task_id"].is_null(),
            j["array_task_string"].as_str().expect("well-formed"),
        ) {
            (true, s) if !s.is_empty() => array_tasks(s),
            _ => 1,
        };
        *t.jobs_by_state
            .entry(
                j["job_state"]
                    .as_str()
                    .expect("well-formed")
                    .to_ascii_lowercase(),
            )
            .or_default() += tasks;
    }
    t
}

#[test]
fn truth_matches_the_json() {
    for seed in [1, 2] {
        let c = SimCluster::new(spec(seed));
        let t = c.truth();
        assert_eq!(recount(&c), t, "seed {seed}");
        // Every state and flag the exporter maps is exercised.
        for s in ["allocated", "mixed", "idle", "down", "future", "unknown"] {
            assert!(t.nodes_by_state.contains_key(s), "no {s} node: {t:?}");
        }
        for (_, _, f) in FLAG_NAMES {
            assert!(t.node_flags.contains_key(f), "no {f} node: {t:?}");
        }
        for s in [
            "running",
            "pending",
            "completing",
            "suspended",
            "completed",
            "cancelled",
            "failed",
            "timeout",
            "out_of_memory",
            "node_fail",
            "preempted",
        ] {
            assert!(t.jobs_by_state.contains_key(s), "no {s} job: {t:?}");
        }
        assert!(t.cpus_allocated > 0 && t.cpus_allocated < t.cpus_total);
        assert!(t.gpus_allocated > 0 && t.gpus_allocated <= t.gpus_total);
    }
}

#[test]
fn nodes_agree_with_the_jobs_on_them() {
    let c = SimCluster::new(spec(5));
    let nodes = parse(&render(&c, SimCluster::write_nodes));
    let jobs = parse(&render(&c, SimCluster::write_jobs));
    // node -> (cores of running jobs, memory of running+suspended jobs, gpus of those)
    let mut held: HashMap<String, (u64, u64, u64)> = HashMap::new();
    let mut reasons = BTreeSet::new();
    for j in jobs["jobs"].as_array().expect("well-formed") {
        let state = j["job_state"].as_str().expect("well-formed");
        if state == "PENDING" {
            reasons.insert(j["state_reason"].as_str().expect("well-formed").to_string());
            assert!(j.get("job_resources").is_none());
            continue;
        }
        if !matches!(state, "RUNNING" | "SUSPENDED") {
            continue;
        }
        assert!(j["submit_time"].as_u64() <= j["start_time"].as_u64());
        assert!(j["start_time"].as_u64().expect("well-formed") <= u64::from(NOW));
        let res = &j["job_resources"];
        let mut cores = 0;
        let gres = j["gres_detail"].as_array().expect("well-formed");
        for (i, n) in res["allocated_nodes"]
            .as_array()
            .expect("well-formed")
            .iter()
            .enumerate()
        {
            let k: u64 = n["sockets"]
                .as_object()
                .expect("well-formed")
                .values()
                .map(|s| s["cores"].as_object().expect("well-formed").len() as u64)
                .sum();
            cores += k;
            let e = held
                .entry(n["nodename"].as_str().expect("well-formed").to_string())
                .or_default();
            if state == "RUNNING" {
                e.0 += k;
            }
            e.1 += n["memory_allocated"].as_u64().expect("well-formed");
            e.2 += gres
                .get(i)
                .map_or(0, |g| gres_count(g.as_str().expect("well-formed")));
        }
        assert_eq!(cores, j["cpus"].as_u64().expect("well-formed"));
        assert_eq!(res["allocated_cores"], j["cpus"]);
    }
    for n in nodes["nodes"].as_array().expect("well-formed") {
        let name = n["name"].as_str().expect("well-formed");
        let (cores, mem, gpus) = held.get(name).copied().unwrap_or_default();
        assert_eq!(
            n["alloc_cpus"].as_u64().expect("well-formed"),
            cores,
            "{name}"
        );
        assert_eq!(
            gres_count(n["gres_used"].as_str().expect("well-formed")),
            gpus,
            "{name}"
        );
        assert_eq!(
            n["alloc_memory"].as_u64().expect("well-formed"),
            mem,
            "{name}"
        );
        assert_eq!(
            n["idle_cpus"].as_u64().expect("well-formed") + cores,
            n["cpus"].as_u64().expect("well-formed")
        );
        let state = n["state"].as_str().expect("well-formed");
        let cpus = n["cpus"].as_u64().expect("well-formed");
        match state {
            "allocated" => assert_eq!(cores, cpus, "{name}"),
            "mixed" => assert!(cores > 0 && cores < cpus, "{name}"),
            "idle" | "down" | "future" | "unknown" => assert_eq!(cores, 0, "{name}"),
            other => panic!("{other}"),
        }
        if n["state_flags"]
            .as_array()
            .expect("well-formed")
            .iter()
            .any(|f| f == "NOT_RESPONDING")
        {
            assert_eq!(n["cpu_load"], 4_294_967_294u64);
            assert_eq!(n["free_memory"], -2);
        }
    }
    for r in [
        "Priority",
        "Resources",
        "AssocMaxJobsLimit",
        "AssocGrpCpuLimit",
        "QOSMaxJobsPerUserLimit",
        "JobArrayTaskLimit",
        "Dependency",
        "DependencyNeverSatisfied",
        "JobHeldUser",
        "JobHeldAdmin",
        "ReqNodeNotAvail",
        "BeginTime",
        "PartitionTimeLimit",
    ] {
        assert!(reasons.contains(r), "no job pending for {r}: {reasons:?}");
    }
}

#[test]
fn sizes_are_like_the_real_thing() {
    let c = SimCluster::new(SimSpec {
        nodes: 1_000,
        jobs: 10_000,
        seed: 11,
    });
    let jobs = render(&c, SimCluster::write_jobs);
    let per_job = jobs.len() / 10_000;
    assert!(
        (2_800..=4_500).contains(&per_job),
        "{per_job} bytes per job"
    );
    let t = c.truth();
    let running = t.jobs_by_state["running"] as f64 / 10_000.0;
    assert!((0.30..=0.50).contains(&running), "running share {running}");
}

#[test]
fn tiny_and_empty_clusters_do_not_panic() {
    for (nodes, jobs) in [(0, 0), (0, 50), (1, 10), (5, 100), (40, 0)] {
        let c = SimCluster::new(SimSpec {
            nodes,
            jobs,
            seed: 9,
        });
        for (_, f, _, _) in DOCS {
            parse(&render(&c, f));
        }
        assert_eq!(recount(&c), c.truth());
    }
}

#[test]
fn memory_units_follow_slurm() {
    assert_eq!(mem_str(64_000), "62.50G");
    assert_eq!(mem_str(32_000), "32000M");
    assert_eq!(mem_str(65_536), "64G");
    assert_eq!(mem_str(128_000), "125G");
    assert_eq!(mem_str(2_048_000), "2000G");
    assert_eq!(mem_str(1_024), "1G");
    assert_eq!(mem_str(3 * 1024 * 1024), "3T");
}

#[test]
fn hostlists_and_gpu_indices() {
    let c = SimCluster::new(SimSpec {
        nodes: 100,
        jobs: 0,
        seed: 1,
    });
    let gpu0 = c
        .nodes
        .iter()
        .position(|n| n.kind == Kind::Gpu)
        .expect("well-formed") as u32;
    assert_eq!(
        hostlist(&c.nodes, &mut [2, 0, 1, 5, gpu0]),
        "cpu-[00001-00003,00006],gpu-00001"
    );
    assert_eq!(hostlist(&c.nodes, &mut [4]), "cpu-00005");
    assert_eq!(idx_str(0b0001_0011), "0-1,4");
    assert_eq!(idx_str(0), "N/A");
    let a = ArraySpec {
        ranges: vec![(9, 40)],
        max: 8,
    };
    assert_eq!((a.text(), a.tasks()), ("9-40%8".to_string(), 32));
    let b = ArraySpec {
        ranges: vec![(1, 1), (3, 3), (5, 7)],
        max: 0,
    };
    assert_eq!((b.text(), b.tasks()), ("1,3,5-7".to_string(), 5));
}

/// `cargo test --release -- --ignored --nocapture full_size` prints the benchmark's sizes.
#[test]
#[ignore]
fn full_size() {
    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let t0 = std::time::Instant::now();
    let c = SimCluster::new(SimSpec {
        nodes: 10_000,
        jobs: 100_000,
        seed: 42,
    });
    let built = t0.elapsed();
    let mut jobs = Count(0);
    c.write_jobs(&mut jobs).expect("well-formed");
    let jobs_t = t0.elapsed() - built;
    let mut nodes = Count(0);
    c.write_nodes(&mut nodes).expect("well-formed");
    let total = t0.elapsed();
    println!(
        "build {built:?}, jobs {} bytes ({} per job) in {jobs_t:?}, \
         nodes {} bytes ({} per node), total {total:?}",
        jobs.0,
        jobs.0 / 100_000,
        nodes.0,
        nodes.0 / 10_000
    );
    println!("{:#?}", c.truth());
}
