//! Shared helpers for the audit crate's tests: build logs, copy them, find and edit frames.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use audit::testing::{fix_crc, scan_file, segment_file_name, Frame, Kind};
use audit::{AuditLog, Config, Event, EventKind, Keyring, SigningKey, VerifyingKey};

/// A temporary directory on tmpfs when there is one (fast fsync), else the default.
pub fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub keyring: Keyring,
    pub signing: SigningKey,
    pub public: VerifyingKey,
}

impl Fixture {
    pub fn new() -> Fixture {
        let signing = audit::generate_signing_key().expect("signing key");
        Fixture {
            tmp: tempdir(),
            keyring: Keyring::generate().expect("keyring"),
            public: signing.verifying_key(),
            signing,
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("log")
    }

    pub fn open(&self, config: Config) -> AuditLog {
        AuditLog::open(
            &self.dir(),
            config,
            self.keyring.clone(),
            self.signing.clone(),
        )
        .expect("open log")
    }

    pub fn segment(&self, n: u64) -> PathBuf {
        self.dir().join(segment_file_name(n))
    }
}

/// Checkpoints every 5 records, no timers: deterministic layouts.
pub fn config() -> Config {
    Config {
        checkpoint_every_records: 5,
        background_checkpoints: false,
        ..Config::default()
    }
}

pub fn event(i: u64) -> Event {
    Event {
        kind: EventKind::Request,
        request_id: Some(format!("req-{i}")),
        principal: Some(format!("user{}", i % 3)),
        tenant: Some(["physics", "chemistry", "biology"][(i % 3) as usize].to_owned()),
        role: Some("viewer".into()),
        route: Some("/metrics".into()),
        decision: Some(audit::Decision::Allow),
        policy: Some("tenant-scope".into()),
        status: Some(200),
        series: Some(100 + i),
        bytes: Some(4096 + i),
        latency_us: Some(800 + i),
        client_addr: Some("192.0.2.10:54321".into()),
        detail: None,
    }
}

/// A closed log of `events` events across `segments` segments (rotating by hand).
pub fn write_log(fx: &Fixture, events: u64, segments: u64) -> Option<audit::Checkpoint> {
    let log = fx.open(config());
    let per = events.div_ceil(segments.max(1)).max(1);
    for i in 0..events {
        if i > 0 && i % per == 0 {
            log.rotate_key(fx.keyring.clone()).expect("roll segment");
        }
        log.append(&event(i)).expect("append");
    }
    log.close().expect("close");
    log.last_checkpoint()
}

pub fn frames(path: &Path) -> (Vec<u8>, Vec<Frame>) {
    let scan = scan_file(path).expect("scan");
    (scan.data.clone(), scan.frames)
}

/// The `nth` frame of kind `kind` in a segment.
pub fn nth_frame(path: &Path, kind: Kind, nth: usize) -> Frame {
    frames(path)
        .1
        .into_iter()
        .filter(|f| f.header.kind == kind)
        .nth(nth)
        .expect("frame")
}

/// XORs one byte of a file; optionally recomputes the CRC of the frame at `frame_offset`.
pub fn flip(path: &Path, at: usize, fix_crc_of: Option<usize>) {
    let mut data = std::fs::read(path).expect("read");
    data[at] ^= 0x5a;
    if let Some(off) = fix_crc_of {
        fix_crc(&mut data, off);
    }
    std::fs::write(path, data).expect("write");
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}
