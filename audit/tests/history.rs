//! History that cannot shrink unseen, the edges a crash cannot produce, keys, and recovery
//! from a full disk. Each test names the tamper or failure and what catches it; each failed
//! on the format-1 writer and verifier.
#![allow(clippy::disallowed_methods)] // mount a small tmpfs to fill; sha256sum as the independent unkeyed hash

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use audit::testing::{list_segments, scan_file};
use audit::{AuditLog, Keyring, OpenError, Reason, VerifyOptions};
use common::{config, event, frames, write_log, Fixture};

fn verify_err(fx: &Fixture, published: Option<&audit::Checkpoint>) -> audit::VerifyError {
    audit::verify_with(
        &fx.dir(),
        &VerifyOptions {
            public_key: Some(&fx.public),
            keyring: Some(&fx.keyring),
            published,
        },
    )
    .expect_err("the log must not verify")
}

fn reopen(fx: &Fixture) -> Result<AuditLog, OpenError> {
    AuditLog::open(&fx.dir(), config(), fx.keyring.clone(), fx.signing.clone())
}

#[test]
fn deleting_the_oldest_segments_then_restarting_is_refused_not_signed() {
    let fx = Fixture::new();
    write_log(&fx, 30, 4);
    for n in [1, 2] {
        std::fs::remove_file(fx.segment(n)).expect("delete");
    }
    // The writer no longer takes the directory's word for where the log starts.
    let err = reopen(&fx).expect_err("a log that lost its oldest segments is not continued");
    let text = err.to_string();
    assert!(matches!(err, OpenError::HistoryMissing { .. }), "{text}");
    assert!(text.contains("1..=2"), "names what is missing: {text}");
    // Nothing was signed over the gap, and verify still says Deleted.
    assert_eq!(verify_err(&fx, None).reason, Reason::Deleted);
}

#[test]
fn deleting_a_middle_segment_then_restarting_is_refused() {
    let fx = Fixture::new();
    write_log(&fx, 30, 4);
    std::fs::remove_file(fx.segment(2)).expect("delete");
    let err = reopen(&fx).expect_err("a gap is not continued");
    assert!(matches!(err, OpenError::HistoryMissing { .. }), "{err}");
    assert!(err.to_string().contains("2..=2"), "{err}");
}

#[test]
fn replacing_the_first_segment_with_one_from_another_log_is_refused() {
    let fx = Fixture::new();
    write_log(&fx, 20, 3);
    let other = Fixture {
        tmp: common::tempdir(),
        keyring: fx.keyring.clone(),
        signing: fx.signing.clone(),
        public: fx.public,
    };
    write_log(&other, 20, 3);
    std::fs::copy(other.segment(1), fx.segment(1)).expect("swap segment 1");
    let err = reopen(&fx).expect_err("a swapped first segment is not continued");
    assert!(matches!(err, OpenError::HistoryMissing { .. }), "{err}");
}

#[test]
fn a_published_checkpoint_older_than_the_logs_first_record_fails_naming_both() {
    let fx = Fixture::new();
    let log = fx.open(config());
    for i in 0..12 {
        log.append(&event(i)).expect("append");
    }
    let early = log.checkpoint().expect("checkpoint in segment 1");
    log.rotate_key(fx.keyring.clone()).expect("roll");
    log.append(&event(99)).expect("append");
    log.rotate_key(fx.keyring.clone()).expect("roll");
    log.append(&event(100)).expect("append");
    let removed = log
        .apply_retention(SystemTime::now() + Duration::from_secs(3600))
        .expect("retention");
    assert_eq!(removed, vec![1, 2]);
    let late = log.checkpoint().expect("checkpoint after retention");
    log.close().expect("close");

    // The log itself, and against a checkpoint published after retention: intact.
    audit::verify_with(
        &fx.dir(),
        &VerifyOptions {
            public_key: Some(&fx.public),
            keyring: None,
            published: Some(&late),
        },
    )
    .expect("retained log verifies against a checkpoint published after retention");
    // Against one published before: the log starts later than it says.
    let err = verify_err(&fx, Some(&early));
    assert_eq!(err.reason, Reason::Deleted, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("segment 3") && text.contains("segment 1"),
        "names both starts: {text}"
    );
}

#[test]
fn a_published_checkpoint_is_refused_when_the_log_starts_after_its_first_segment() {
    let fx = Fixture::new();
    let log = fx.open(config());
    for i in 0..6 {
        log.append(&event(i)).expect("append");
    }
    log.rotate_key(fx.keyring.clone()).expect("roll");
    log.rotate_key(fx.keyring.clone()).expect("roll");
    // Published while the log started at segment 1, but in segment 3: still present later.
    let published = log.checkpoint().expect("checkpoint");
    assert_eq!((published.oldest_segment, published.segment), (1, 3));
    log.apply_retention(SystemTime::now() + Duration::from_secs(3600))
        .expect("retention");
    log.close().expect("close");
    let err = verify_err(&fx, Some(&published));
    assert_eq!(err.reason, Reason::Deleted, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("starts at segment 3") && text.contains("starts at segment 1"),
        "{text}"
    );
}

#[test]
fn every_checkpoint_names_the_one_before_it() {
    let fx = Fixture::new();
    write_log(&fx, 40, 3);
    let cps = audit::checkpoints(&fx.dir()).expect("checkpoints");
    assert!(cps.len() > 8, "{}", cps.len());
    assert_eq!(cps[0].prev_checkpoint_seq, u64::MAX);
    for w in cps.windows(2) {
        assert!(
            w[1].extends(&w[0]),
            "{} does not extend {}",
            w[1].seq,
            w[0].seq
        );
        assert!(!w[0].extends(&w[1]), "a rollback never extends");
    }
    // A fork: a checkpoint two ahead does not extend the first.
    assert!(!cps[2].extends(&cps[0]));
}

/// Small deterministic generator for the byte-level cases (no `rand` dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn bytes_a_crash_cannot_leave_after_the_last_record_are_their_own_finding() {
    let fx = Fixture::new();
    write_log(&fx, 12, 2);
    let newest = fx.segment(2);
    let original = std::fs::read(&newest).expect("read");
    let (_, frames) = frames(&newest);
    let last = frames.last().expect("a frame").clone();
    let mut rng = Lcg(7);
    for case in 0..200 {
        let len = 1 + (rng.next() % 300) as usize;
        let mut garbage: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        if garbage.iter().all(|b| *b == 0) || garbage[0] == b'S' {
            garbage[0] = b'x'; // zeros and frame prefixes are what a crash leaves; see below
        }
        let mut data = original.clone();
        data.extend_from_slice(&garbage);
        std::fs::write(&newest, &data).expect("append garbage");
        let err = verify_err(&fx, None);
        assert_eq!(err.reason, Reason::TrailingGarbage, "case {case}: {err}");
        assert!(
            matches!(reopen(&fx), Err(OpenError::Corrupt { .. })),
            "case {case}: the writer does not cut foreign bytes away"
        );
    }
    // What a crash does leave: a prefix of a record (here: of the last one, appended
    // again), possibly followed by zeros. Torn, not garbage.
    let record = &original[last.offset..last.end];
    for cut in [1, 4, 7, 8, 50, record.len() - 1] {
        for zeros in [0usize, 4096] {
            let mut data = original.clone();
            data.extend_from_slice(&record[..cut]);
            data.extend(std::iter::repeat_n(0u8, zeros));
            std::fs::write(&newest, &data).expect("torn write");
            let report = audit::verify(&fx.dir(), Some(&fx.public))
                .unwrap_or_else(|e| panic!("cut {cut} + {zeros} zeros: {e}"));
            assert!(report.torn_tail.is_some());
        }
    }
    std::fs::write(&newest, &original).expect("restore");
}

#[test]
fn a_segment_numbered_past_the_end_is_its_own_finding() {
    let fx = Fixture::new();
    write_log(&fx, 12, 2);
    for (name, bytes) in [("empty", Vec::new()), ("zeros", vec![0u8; 100])] {
        let stray = fx.segment(5);
        std::fs::write(&stray, &bytes).expect("stray segment");
        let err = verify_err(&fx, None);
        assert_eq!(err.reason, Reason::SegmentPastEnd, "{name}: {err}");
        assert!(
            matches!(reopen(&fx), Err(OpenError::SegmentPastEnd { .. })),
            "{name}: the writer refuses"
        );
        std::fs::remove_file(&stray).expect("remove");
    }
    // The next number, empty, is what a crash while opening it leaves: accepted.
    std::fs::write(fx.segment(3), b"").expect("next segment");
    audit::verify(&fx.dir(), Some(&fx.public)).expect("a crash while opening the next segment");
    reopen(&fx)
        .expect("the writer removes it and continues")
        .close()
        .expect("close");
}

#[test]
fn a_regenerated_keyring_is_refused_and_key_ids_never_repeat() {
    let fx = Fixture::new();
    write_log(&fx, 10, 1);
    // Lost keyring, new one: key id 1 again, other bytes.
    let fresh = Keyring::generate().expect("keyring");
    let err = AuditLog::open(&fx.dir(), config(), fresh, fx.signing.clone())
        .expect_err("a keyring that cannot read the log is refused");
    assert!(matches!(err, OpenError::KeyringMismatch(_)), "{err}");
    // A ring whose active key is older than the log's newest key.
    let mut ring = fx.keyring.clone();
    ring.rotate().expect("rotate");
    let log = AuditLog::open(&fx.dir(), config(), ring.clone(), fx.signing.clone())
        .expect("rotated ring");
    log.append(&event(1)).expect("append");
    log.close().expect("close");
    let err = AuditLog::open(&fx.dir(), config(), fx.keyring.clone(), fx.signing.clone())
        .expect_err("an older ring is refused");
    assert!(err.to_string().contains("never repeat"), "{err}");
}

#[test]
fn a_group_or_world_writable_log_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    write_log(&fx, 3, 1);
    for mode in [0o770, 0o722, 0o777] {
        std::fs::set_permissions(fx.dir(), std::fs::Permissions::from_mode(mode)).expect("chmod");
        let err = reopen(&fx).expect_err("writable by others");
        assert!(matches!(err, OpenError::InsecureDir(_)), "{mode:o}: {err}");
    }
    std::fs::set_permissions(fx.dir(), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    reopen(&fx)
        .expect("readable by the group is fine")
        .close()
        .expect("close");
}

#[test]
fn keyed_digests_are_per_log_and_not_a_plain_hash() {
    use sha2_check::plain_prefix;
    let a = Fixture::new();
    let b = Fixture::new();
    let la = a.open(config());
    let lb = b.open(config());
    let q = b"match[]=slurm_user_jobs{user=\"alice\"}";
    assert_eq!(
        la.keyed_digest(q),
        la.keyed_digest(q),
        "stable within a log"
    );
    assert_ne!(
        la.keyed_digest(q),
        lb.keyed_digest(q),
        "differs between logs"
    );
    assert_ne!(la.keyed_digest(q), plain_prefix(q), "not the unkeyed hash");
    assert_eq!(la.keyed_digest(q).len(), 32);
}

mod sha2_check {
    /// The format-1 digest: first 8 bytes of SHA-256, hex (reversible by guessing).
    pub fn plain_prefix(data: &[u8]) -> String {
        let out = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().expect("stdin").write_all(data)?;
                c.wait_with_output()
            })
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)[..16].to_owned()
    }
}

/// A small tmpfs mounted for one test (the tests run as root), unmounted on drop.
struct SmallDisk {
    at: PathBuf,
    _tmp: tempfile::TempDir,
}
impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let t = tempfile::tempdir().expect("tempdir");
        let at = t.path().join("disk");
        std::fs::create_dir(&at).expect("mkdir");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&at)
            .status()
            .expect("mount");
        assert!(ok.success(), "mount a tmpfs (the tests run as root)");
        SmallDisk { at, _tmp: t }
    }
    fn path(&self) -> &Path {
        &self.at
    }
}
impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

#[test]
fn a_full_disk_fails_appends_and_the_writer_recovers_without_a_restart() {
    let disk = SmallDisk::new("1m");
    let dir = disk.path().join("log");
    let keyring = Keyring::generate().expect("keyring");
    let signing = audit::generate_signing_key().expect("key");
    let cfg = audit::Config {
        retry_interval: Duration::from_millis(100),
        ..config()
    };
    let log = AuditLog::open(&dir, cfg, keyring.clone(), signing.clone()).expect("open");
    // Fill the disk around the log.
    let filler = disk.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 2 << 20]);
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for i in 0..5000 {
        match log.append(&event(i)) {
            Ok(r) => acknowledged.push(r.seq),
            Err(_) => failed += 1,
        }
        if failed >= 20 {
            break;
        }
    }
    assert!(failed >= 20, "the disk filled up");
    // Space returns: the writer carries on by itself.
    std::fs::remove_file(&filler).expect("free space");
    std::thread::sleep(Duration::from_millis(150));
    let mut back = false;
    for i in 0..50 {
        if let Ok(r) = log.append(&event(10_000 + i)) {
            acknowledged.push(r.seq);
            back = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(back, "appends succeed again without a restart");
    log.close().expect("close");
    audit::verify(&dir, Some(&signing.verifying_key())).expect("the log verifies");
    // Every acknowledged record is in the log.
    let present: std::collections::BTreeSet<u64> = list_segments(&dir)
        .expect("segments")
        .iter()
        .flat_map(|(_, p)| scan_file(p).expect("scan").frames)
        .map(|f| f.header.seq)
        .collect();
    for seq in &acknowledged {
        assert!(
            present.contains(seq),
            "acknowledged record {seq} is missing"
        );
    }
}
