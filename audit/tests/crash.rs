//! Crashes: a write cut at every byte, a real `kill -9`, and nonces across restarts.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use audit::testing::{list_segments, scan_file, segment_data_key, Header, Kind};
use audit::{verify, AuditLog, Config};
use common::*;

fn quiet() -> Config {
    Config {
        checkpoint_every_records: 1_000_000,
        background_checkpoints: false,
        ..Config::default()
    }
}

fn newest_segment(dir: &Path) -> PathBuf {
    list_segments(dir)
        .expect("list")
        .last()
        .expect("a segment")
        .1
        .clone()
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).expect("meta").len()
}

fn truncate(p: &Path, at: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .expect("open")
        .set_len(at)
        .expect("truncate");
}

fn torn_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".torn-"))
        .collect()
}

#[test]
fn a_write_cut_at_every_byte_of_the_last_record_verifies_up_to_the_last_committed_one() {
    let fx = Fixture::new();
    let log = fx.open(quiet());
    for i in 0..5 {
        log.append(&event(i)).expect("append");
    }
    let seg = newest_segment(&fx.dir());
    let committed = len(&seg);
    let last_good = log.append(&event(4)).expect("append").seq; // record 5 of 6
    let before_last = len(&seg);
    // A small last record keeps the loop short (debug-build signatures are slow).
    log.append(&serde_json::json!({"kind": "admin"}))
        .expect("append");
    let full = len(&seg);
    // The crash image: the files as they are while the writer is still running.
    let image = fx.tmp.path().join("image");
    copy_dir(&fx.dir(), &image);
    drop(log);
    assert!(committed < before_last && before_last < full);

    for cut in before_last..full {
        let d = tempdir();
        let dir = d.path().join("log");
        copy_dir(&image, &dir);
        truncate(&newest_segment(&dir), cut);

        let r = verify(&dir, Some(&fx.public)).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(r.last_seq, last_good, "cut at {cut}");
        assert_eq!(r.torn_tail.is_some(), cut > before_last, "cut at {cut}");
        assert_eq!(
            audit::export(&dir, &fx.keyring, None, None, None).count(),
            6
        );

        // Restart: the torn tail is kept aside, cut, and writing continues.
        let log = AuditLog::open(&dir, quiet(), fx.keyring.clone(), fx.signing.clone())
            .unwrap_or_else(|e| panic!("reopen after cut at {cut}: {e}"));
        log.append(&event(99)).expect("append after recovery");
        log.close().expect("close");
        let r = verify(&dir, Some(&fx.public)).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert!(r.torn_tail.is_none());
        assert_eq!(r.events, 7);
        assert_eq!(torn_files(&dir).len(), usize::from(cut > before_last));
        let all: Vec<_> = audit::export(&dir, &fx.keyring, None, None, None)
            .collect::<Result<_, _>>()
            .expect("export");
        assert_eq!(all.last().expect("last")["event"]["request_id"], "req-99");
    }
}

/// Every (segment key, nonce) pair used by an event in `dir`, torn records included.
fn key_nonce_pairs(fx: &Fixture, dir: &Path, out: &mut Vec<([u8; 32], u64)>) {
    let mut keys = HashMap::new();
    for (n, path) in list_segments(dir).expect("list") {
        let scan = scan_file(&path).expect("scan");
        let open = scan.frames.first().expect("open");
        assert_eq!(open.header.kind, Kind::Open);
        let key = segment_data_key(&fx.keyring, &open.header, scan.body(open)).expect("key");
        keys.insert(n, key);
        for f in scan.frames.iter().filter(|f| f.header.kind == Kind::Event) {
            out.push((key, f.header.seq));
        }
    }
    for torn in torn_files(dir) {
        let bytes = std::fs::read(&torn).expect("read");
        if let Some(h) = bytes.get(8..).and_then(Header::decode) {
            if h.kind == Kind::Event {
                out.push((keys[&h.segment], h.seq));
            }
        }
    }
}

#[test]
fn restarts_crashes_and_a_restored_backup_never_reuse_a_key_nonce_pair() {
    let fx = Fixture::new();
    let mut dir = fx.dir();
    let mut torn_seqs = Vec::new();
    let mut lineages = Vec::new();
    for round in 0..6u64 {
        let log =
            AuditLog::open(&dir, quiet(), fx.keyring.clone(), fx.signing.clone()).expect("open");
        for i in 0..3 {
            log.append(&event(round * 10 + i)).expect("append");
        }
        let seg = newest_segment(&dir);
        let committed = len(&seg);
        let r = log.append(&event(round * 10 + 9)).expect("append");
        torn_seqs.push(r.seq);
        // Crash image with the last record torn past its header.
        let next = fx.tmp.path().join(format!("round-{round}"));
        copy_dir(&dir, &next);
        truncate(&newest_segment(&next), committed + 8 + 78 + 3 + round);
        if round % 2 == 1 {
            // Clean restarts too.
            log.close().expect("close");
        }
        drop(log);
        lineages.push(dir.clone());
        dir = next;
    }
    // The last crash image is restored twice (a backup used again): two writers continue
    // the same history with the same segment and sequence numbers.
    let twin = fx.tmp.path().join("twin");
    copy_dir(&dir, &twin);
    for d in [&dir, &twin] {
        let log = AuditLog::open(d, quiet(), fx.keyring.clone(), fx.signing.clone()).expect("open");
        for i in 0..4 {
            log.append(&event(100 + i)).expect("append");
        }
        log.close().expect("close");
        verify(d, Some(&fx.public)).expect("verifies");
    }

    let mut pairs = Vec::new();
    key_nonce_pairs(&fx, &dir, &mut pairs);
    let mut twin_pairs = Vec::new();
    key_nonce_pairs(&fx, &twin, &mut twin_pairs);
    // The twin shares its history with `dir`; only what it wrote after the restore is new.
    let shared: HashSet<_> = pairs.iter().copied().collect();
    pairs.extend(twin_pairs.into_iter().filter(|p| !shared.contains(p)));
    let mut seen = HashSet::new();
    for (key, seq) in &pairs {
        assert!(
            seen.insert((*key, *seq)),
            "nonce {seq} reused under one key"
        );
    }
    // The scenario really exercised reuse of sequence numbers: torn records' numbers, and
    // the twins' numbers, occur more than once...
    let seqs: Vec<u64> = pairs.iter().map(|(_, s)| *s).collect();
    let repeated = seqs
        .iter()
        .filter(|s| seqs.iter().filter(|t| t == s).count() > 1)
        .count();
    assert!(repeated >= 8, "sequence numbers were reused ({repeated})");
    // ...and every torn record is on record in its `.torn-` file.
    assert_eq!(torn_files(&dir).len(), 6);
    assert!(torn_seqs.iter().all(|s| seqs.contains(s)));
}

const CHILD_ENV: &str = "AUDIT_KILL9_CHILD_DIR";

/// The process `kill_9_...` starts and kills: four threads append until killed, printing
/// each sequence number once `append` returned (that is, once the record is durable).
#[test]
#[ignore = "run by kill_9_at_random_moments_loses_no_acknowledged_record"]
fn kill9_child_writer() {
    let Some(base) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    let keyring = audit::Keyring::load(&base.join("keys.json")).expect("keys");
    let signing = audit::load_signing_key(&base.join("signing.pem")).expect("signing key");
    let config = Config {
        checkpoint_every_records: 50,
        segment_max_bytes: 64 * 1024,
        ..Config::default()
    };
    let log = std::sync::Arc::new(
        AuditLog::open(&base.join("log"), config, keyring, signing).expect("open"),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                let stdout = std::io::stdout();
                for i in 0.. {
                    let r = log.append(&event(t * 1_000_000 + i)).expect("append");
                    use std::io::Write;
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "ack {}", r.seq);
                    let _ = out.flush();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
// Spawning is confined to the collector's CLI source in production code; this test must
// start a process in order to kill it with SIGKILL.
#[allow(clippy::disallowed_methods)]
fn kill_9_at_random_moments_loses_no_acknowledged_record() {
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir on disk");
    let keyring = audit::Keyring::generate().expect("ring");
    keyring.save(&base.path().join("keys.json")).expect("save");
    let signing = audit::generate_signing_key().expect("sk");
    audit::save_signing_key(&signing, &base.path().join("signing.pem")).expect("save");
    let exe = std::env::current_exe().expect("exe");
    let mut acked: Vec<u64> = Vec::new();
    for round in 0..4u64 {
        let mut child = std::process::Command::new(&exe)
            .args(["--ignored", "--exact", "kill9_child_writer", "--nocapture"])
            .env(CHILD_ENV, base.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("ack ").and_then(|s| s.parse::<u64>().ok()))
                .collect::<Vec<u64>>()
        });
        std::thread::sleep(Duration::from_millis(300 + round * 170));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let got = reader.join().expect("reader");
        assert!(
            !got.is_empty(),
            "round {round}: the child acknowledged nothing"
        );
        acked.extend(got);

        let dir = base.path().join("log");
        let r = verify(&dir, Some(&signing.verifying_key()))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let present: HashSet<u64> = audit::export(&dir, &keyring, None, None, None)
            .map(|v| v.expect("export")["seq"].as_u64().expect("seq"))
            .collect();
        let lost: Vec<_> = acked.iter().filter(|s| !present.contains(s)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged but lost: {lost:?}"
        );
        assert!(r.last_seq >= *acked.iter().max().expect("acked"));
    }
    // A final clean open and close continues the log.
    let dir = base.path().join("log");
    let log = AuditLog::open(&dir, quiet(), keyring.clone(), signing.clone()).expect("open");
    log.close().expect("close");
    let r = verify(&dir, Some(&signing.verifying_key())).expect("verifies");
    assert!(r.torn_tail.is_none());
    assert!(r.events >= acked.len() as u64);
}

/// A crash after the writer created its next segment file but before it wrote a byte of the
/// open record (seen once in the kill -9 test): nothing was acknowledged there, so the log
/// verifies up to the previous segment, and reopening removes the empty file and goes on.
#[test]
fn an_empty_newest_segment_is_a_crash_while_opening_it() {
    let fx = Fixture::new();
    write_log(&fx, 10, 1);
    let empty = fx.segment(2);
    std::fs::write(&empty, b"").expect("create the empty segment");
    let r =
        verify(&fx.dir(), Some(&fx.public)).expect("verifies: the crash cut nothing acknowledged");
    assert_eq!(
        (r.events, r.last_segment),
        (10, 2),
        "the empty file is listed, holds nothing"
    );
    let log = fx.open(quiet());
    log.append(&event(10)).expect("append after reopening");
    log.close().expect("close");
    let r = verify(&fx.dir(), Some(&fx.public)).expect("verifies");
    assert_eq!(r.events, 11);
}
