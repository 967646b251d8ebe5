//! What one audit record costs a request: `Auditor::write` as the gateway's audit layer calls
//! it (one scrape's record, awaited on a 2-thread tokio runtime), for both durabilities, with
//! the log on this machine's disk (`target/`), one request at a time and 16 at once.
//!
//! `cargo bench -p slurm-exporter --bench audit_write` (prints percentiles; no load generator
//! shares the CPUs, unlike `http-load.sh`).

use gateway::layer::audit::{AuditConfig, Auditor, Durability, OnFailure};
use std::sync::Arc;
use std::time::Instant;

const RECORDS: usize = 4000;

fn record(i: usize) -> audit::Event {
    audit::Event {
        kind: audit::EventKind::Request,
        request_id: Some(format!("0badc0de-{i:010x}")),
        principal: Some("alpha/9roh3kO1a46I".into()),
        tenant: Some("alpha".into()),
        role: Some("viewer".into()),
        route: Some("/metrics".into()),
        decision: Some(audit::Decision::Allow),
        policy: Some("policy.csv:18: p, viewer, *, metrics, read (as viewer)".into()),
        status: Some(200),
        series: Some(3661),
        bytes: Some(38911),
        latency_us: Some(310),
        client_addr: Some("127.0.0.1:48952".into()),
        detail: Some(serde_json::json!({"view": "pseudonyms"})),
    }
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

async fn run(durability: Durability, concurrent: usize) -> Result<String, String> {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&base).map_err(|e| e.to_string())?;
    let cfg = AuditConfig {
        dir: dir.path().join("log"),
        key_file: dir.path().join("keyring.json"),
        signing_key_file: dir.path().join("signing.pem"),
        public_key_file: None,
        on_failure: OnFailure::Refuse,
        durability,
        checkpoint_every_records: 1000,
        checkpoint_interval_seconds: 60,
        retention_days: None,
        publish: None,
    };
    let a = Arc::new(Auditor::open(&cfg)?);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrent {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(RECORDS / concurrent);
            for i in 0..RECORDS / concurrent {
                let t0 = Instant::now();
                a.write(record(t * RECORDS + i))
                    .await
                    .map_err(|e| e.to_string())?;
                lat.push(t0.elapsed().as_micros());
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(|e| e.to_string())??);
    }
    let secs = started.elapsed().as_secs_f64();
    a.close();
    lat.sort_unstable();
    Ok(format!(
        "| {:?} | {concurrent} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |",
        durability,
        lat.len() as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
    ))
}

fn main() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    println!("| durability | concurrent requests | records/s | p50 | p99 | p99.9 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for d in [Durability::Fsync, Durability::Queued] {
        for c in [1, 16] {
            println!("{}", rt.block_on(run(d, c))?);
        }
    }
    Ok(())
}
