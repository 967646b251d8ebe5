//! The collection pipeline at scale: the simulator's slurmrestd JSON for N nodes and M jobs
//! through parse -> snapshot -> families -> encode, with wall time and peak RSS
//! per stage. Run: `cargo bench -p slurm-exporter-collector --bench pipeline -- [NODES] [JOBS]`
//! (default 10000 100000); pin to one core with `taskset -c 0` to check the one-core target.
//!
//! The JSON is generated to temporary files first (not timed) and parsed streaming from
//! them, as the REST and CLI sources parse from a socket or a pipe.

use collector::families::{collect_all, Options};
use collector::model::Interner;
use collector::parse::jobs::parse_jobs;
use collector::parse::nodes::parse_nodes;
use collector::parse::partitions::parse_partitions;
use collector::snapshot::Snapshot;
use collector::store::{encode, Format};
use sim::{SimCluster, SimSpec};
use std::io::{BufReader, BufWriter, Write};
use std::sync::Arc;
use std::time::Instant;

/// Peak resident set size since the last reset, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Resets the peak RSS counter so each stage reports its own peak.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Row {
    stage: &'static str,
    ms: f64,
    peak_mib: f64,
    note: String,
}

fn stage<T>(rows: &mut Vec<Row>, name: &'static str, f: impl FnOnce() -> (T, String)) -> T {
    reset_peak();
    let t = Instant::now();
    let (v, note) = f();
    rows.push(Row {
        stage: name,
        ms: t.elapsed().as_secs_f64() * 1000.0,
        peak_mib: peak_rss_mib(),
        note,
    });
    v
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let nodes: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let jobs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimCluster::new(SimSpec {
        nodes,
        jobs,
        seed: 1,
    });
    let write = |name: &str, f: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| {
        let p = dir.path().join(name);
        let mut w = BufWriter::new(std::fs::File::create(&p).expect("create"));
        f(&mut w).expect("write");
        w.flush().expect("flush");
        p
    };
    let t = Instant::now();
    let nodes_p = write("nodes.json", &|w| sim.write_nodes(w));
    let jobs_p = write("jobs.json", &|w| sim.write_jobs(w));
    let parts_p = write("partitions.json", &|w| sim.write_partitions(w));
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "generated {} nodes ({:.1} MB) and {} jobs ({:.1} MB) in {:.1} s",
        nodes,
        size(&nodes_p) as f64 / 1e6,
        jobs,
        size(&jobs_p) as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    drop(sim);

    let mut rows = Vec::new();
    let total = Instant::now();
    let mut names = Interner::default();
    let open = |p: &std::path::Path| {
        BufReader::with_capacity(1 << 20, std::fs::File::open(p).expect("open"))
    };
    let (_, node_list) = stage(&mut rows, "parse nodes", || {
        let r = parse_nodes(open(&nodes_p), &mut names).expect("nodes parse");
        let n = format!("{} nodes, {:.1} MB", r.1.len(), size(&nodes_p) as f64 / 1e6);
        (r, n)
    });
    let (env, job_list) = stage(&mut rows, "parse jobs", || {
        let r = parse_jobs(open(&jobs_p), &mut names).expect("jobs parse");
        let n = format!(
            "{} job records, {:.1} MB",
            r.1.len(),
            size(&jobs_p) as f64 / 1e6
        );
        (r, n)
    });
    let (_, part_list) = stage(&mut rows, "parse partitions", || {
        let bytes = std::fs::read(&parts_p).expect("read");
        let r = parse_partitions(&bytes, &mut names).expect("partitions parse");
        let n = format!("{} partitions", r.1.len());
        (r, n)
    });
    let snap = stage(&mut rows, "snapshot", || {
        let s = Snapshot {
            cluster: "sim".into(),
            meta: env.meta.clone(),
            taken_epoch: 1_795_860_300,
            nodes: Arc::new(node_list),
            jobs: Arc::new(job_list),
            partitions: Arc::new(part_list),
            sources: Arc::new(Vec::new()),
            ..Snapshot::default()
        };
        (s, String::new())
    });
    let families = stage(&mut rows, "families", || {
        let f = collect_all(&snap, &Options::default());
        let n = format!(
            "{} families, {} series",
            f.len(),
            f.iter().map(|x| x.series.len()).sum::<usize>()
        );
        (f, n)
    });
    let _body = stage(&mut rows, "encode (text 0.0.4)", || {
        let mut out = Vec::with_capacity(32 << 20);
        encode(&families, Format::Text, &|_| true, &mut out);
        let n = format!("{:.1} MB", out.len() as f64 / 1e6);
        (out, n)
    });
    let core_ms = total.elapsed().as_secs_f64() * 1000.0;

    println!("\n{nodes} nodes, {jobs} jobs (simulated slurmrestd v0.0.38 JSON)\n");
    println!("| stage | time | peak RSS | |\n|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} ms | {:.0} MiB | {} |",
            r.stage, r.ms, r.peak_mib, r.note
        );
    }
    println!("| **parse -> snapshot -> families -> encode** | **{core_ms:.0} ms** | | |");
    let peak = rows.iter().map(|r| r.peak_mib).fold(0.0, f64::max);
    println!("\npeak RSS over all stages: {peak:.0} MiB");
}
