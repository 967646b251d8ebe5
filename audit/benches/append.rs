//! Sustained appends with group commit: records per second and append latency, on tmpfs
//! and on the real disk. `cargo bench -p slurm-exporter-audit --bench append` prints a
//! markdown table. `AUDIT_BENCH_SECS` sets the seconds per row (default 3).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit::{AuditLog, Config, Decision, Event, EventKind, Keyring};

fn event(i: u64) -> Event {
    Event {
        kind: EventKind::Request,
        request_id: Some(format!("01JD{i:022}")),
        principal: Some("CN=alice,OU=physics".into()),
        tenant: Some("physics".into()),
        role: Some("tenant-viewer".into()),
        route: Some("/metrics".into()),
        decision: Some(Decision::Allow),
        policy: Some("p, tenant-viewer, physics, /metrics, GET".into()),
        status: Some(200),
        series: Some(12_345),
        bytes: Some(1_048_576),
        latency_us: Some(830),
        client_addr: Some("10.1.2.3:51234".into()),
        detail: None,
    }
}

struct Row {
    storage: &'static str,
    threads: usize,
    records: u64,
    secs: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    bytes_per_record: u64,
}

fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    u64::from(sorted[idx.min(sorted.len() - 1)])
}

fn run(storage: &'static str, base: &Path, threads: usize, secs: f64) -> Row {
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let signing = audit::generate_signing_key().expect("key");
    let keyring = Keyring::generate().expect("keyring");
    let log = Arc::new(
        AuditLog::open(dir.path(), Config::default(), keyring, signing).expect("open log"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = Arc::clone(&log);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(1 << 16);
                let mut i = t as u64 * 1_000_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let e = event(i);
                    let t0 = Instant::now();
                    log.append(&e).expect("append");
                    lat.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                    i += 1;
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = Vec::new();
    for h in handles {
        all.extend(h.join().expect("thread"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    log.close().expect("close");
    let bytes: u64 = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    all.sort_unstable();
    let records = all.len() as u64;
    // The log must still verify after the run.
    audit::verify(dir.path(), None).expect("bench log verifies");
    Row {
        storage,
        threads,
        records,
        secs: elapsed,
        p50_us: percentile(&all, 0.50),
        p99_us: percentile(&all, 0.99),
        p999_us: percentile(&all, 0.999),
        bytes_per_record: bytes / records.max(1),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let secs: f64 = std::env::var("AUDIT_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let disk = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(disk).expect("target tmp");
    let mut places: Vec<(&'static str, &Path)> = Vec::new();
    if Path::new("/dev/shm").is_dir() {
        places.push(("tmpfs (/dev/shm)", Path::new("/dev/shm")));
    }
    places.push(("disk (target/tmp)", disk));

    println!("| storage | appending threads | records/s | p50 append | p99 append | p99.9 append | bytes/record |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, base) in places {
        for threads in [1, 16, 64, 256] {
            let r = run(name, base, threads, secs);
            println!(
                "| {} | {} | {:.0} | {} µs | {} µs | {} µs | {} |",
                r.storage,
                r.threads,
                r.records as f64 / r.secs,
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.bytes_per_record
            );
        }
    }
}
