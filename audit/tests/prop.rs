//! Property: whatever single tamper is applied to a log, verify against the published
//! checkpoint fails, and names the tampered record (or the one just before, whose hash the
//! tampered link no longer matches).

mod common;

use audit::testing::{fix_crc, list_segments, scan_file, Frame};
use audit::{verify_with, VerifyOptions};
use common::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Tamper {
    /// XOR a byte anywhere in a segment file.
    FlipRaw {
        pos: usize,
        xor: u8,
    },
    /// XOR a byte inside a record's header or body and fix the checksum.
    FlipFixed {
        frame: usize,
        pos: usize,
        xor: u8,
    },
    DeleteRecord {
        frame: usize,
    },
    SwapWithNext {
        frame: usize,
    },
    TruncateAt {
        pos: usize,
    },
    DeleteSegment {
        segment: usize,
    },
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(pos, xor)| Tamper::FlipRaw { pos, xor }),
        (any::<usize>(), any::<usize>(), 1..=255u8)
            .prop_map(|(frame, pos, xor)| Tamper::FlipFixed { frame, pos, xor }),
        any::<usize>().prop_map(|frame| Tamper::DeleteRecord { frame }),
        any::<usize>().prop_map(|frame| Tamper::SwapWithNext { frame }),
        any::<usize>().prop_map(|pos| Tamper::TruncateAt { pos }),
        any::<usize>().prop_map(|segment| Tamper::DeleteSegment { segment }),
    ]
}

fn random_event() -> impl Strategy<Value = serde_json::Value> {
    (0..4usize, "[a-z0-9 ]{0,120}", 100..600u16, any::<u32>()).prop_map(|(t, s, status, n)| {
        let tenant = ["a", "b", "c", "d"][t];
        serde_json::json!({
            "kind": "request",
            "tenant": tenant,
            "route": "/metrics",
            "status": status,
            "series": n,
            "detail": s,
        })
    })
}

struct Located {
    path: std::path::PathBuf,
    frame: Frame,
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn verify_finds_every_tamper(
        events in prop::collection::vec(random_event(), 1..30),
        segments in 1..4usize,
        t in tamper(),
    ) {
        let fx = Fixture::new();
        let log = fx.open(config());
        let per = events.len().div_ceil(segments).max(1);
        for (i, e) in events.iter().enumerate() {
            if i > 0 && i % per == 0 {
                log.rotate_key(fx.keyring.clone()).expect("roll");
            }
            log.append(e).expect("append");
        }
        log.close().expect("close");
        let published = log.last_checkpoint().expect("seal");
        let opts = VerifyOptions {
            public_key: Some(&fx.public),
            keyring: None,
            published: Some(&published),
        };
        verify_with(&fx.dir(), &opts).expect("intact before tampering");

        let files = list_segments(&fx.dir()).expect("list");
        let mut all: Vec<Located> = Vec::new();
        for (_, path) in &files {
            for frame in scan_file(path).expect("scan").frames {
                all.push(Located { path: path.clone(), frame });
            }
        }
        // Where the whole log's bytes are, to map a raw position to a file and frame.
        let locate = |pos: usize| -> (&Located, usize) {
            let total: usize = all.iter().map(|l| l.frame.end - l.frame.offset).sum();
            let mut p = pos % total;
            for l in &all {
                let n = l.frame.end - l.frame.offset;
                if p < n {
                    return (l, l.frame.offset + p);
                }
                p -= n;
            }
            unreachable!("pos is within the total");
        };

        let target: Option<u64> = match &t {
            Tamper::FlipRaw { pos, xor } => {
                let (l, at) = locate(*pos);
                let mut data = std::fs::read(&l.path).expect("read");
                data[at] ^= xor;
                std::fs::write(&l.path, data).expect("write");
                Some(l.frame.header.seq)
            }
            Tamper::FlipFixed { frame, pos, xor } => {
                let l = &all[frame % all.len()];
                let span = l.frame.body.end - l.frame.header_range.start;
                let at = l.frame.header_range.start + pos % span;
                let mut data = std::fs::read(&l.path).expect("read");
                data[at] ^= xor;
                fix_crc(&mut data, l.frame.offset);
                std::fs::write(&l.path, data).expect("write");
                Some(l.frame.header.seq)
            }
            Tamper::DeleteRecord { frame } => {
                let l = &all[frame % all.len()];
                let mut data = std::fs::read(&l.path).expect("read");
                data.drain(l.frame.offset..l.frame.end);
                std::fs::write(&l.path, data).expect("write");
                Some(l.frame.header.seq)
            }
            Tamper::SwapWithNext { frame } => {
                let i = frame % (all.len() - 1);
                let (a, b) = (&all[i], &all[i + 1]);
                if a.path == b.path {
                    let data = std::fs::read(&a.path).expect("read");
                    let mut out = data[..a.frame.offset].to_vec();
                    out.extend_from_slice(&data[b.frame.offset..b.frame.end]);
                    out.extend_from_slice(&data[a.frame.offset..a.frame.end]);
                    out.extend_from_slice(&data[b.frame.end..]);
                    std::fs::write(&a.path, out).expect("write");
                } else {
                    // Across a segment boundary: move b's open record to the end of a's file.
                    let da = std::fs::read(&a.path).expect("read");
                    let db = std::fs::read(&b.path).expect("read");
                    let mut out = da[..a.frame.offset].to_vec();
                    out.extend_from_slice(&db[b.frame.offset..b.frame.end]);
                    out.extend_from_slice(&da[a.frame.offset..a.frame.end]);
                    std::fs::write(&a.path, out).expect("write");
                    std::fs::write(&b.path, &db[b.frame.end..]).expect("write");
                }
                Some(a.frame.header.seq)
            }
            Tamper::TruncateAt { pos } => {
                let (l, at) = locate(*pos);
                let f = std::fs::OpenOptions::new().write(true).open(&l.path).expect("open");
                f.set_len(at as u64).expect("truncate");
                Some(l.frame.header.seq)
            }
            Tamper::DeleteSegment { segment } => {
                let (_, path) = &files[segment % files.len()];
                std::fs::remove_file(path).expect("rm");
                None
            }
        };

        let result = verify_with(&fx.dir(), &opts);
        let e = match result {
            Ok(r) => panic!("{t:?} went unnoticed: {}", r.summary()),
            Err(e) => e,
        };
        if let Some(seq) = target {
            let Some(got) = e.seq else { panic!("{t:?}: no sequence number in {e}") };
            prop_assert!(
                got + 1 >= seq && got <= seq,
                "{t:?} on record {seq} reported at {got}: {e}"
            );
        }
    }
}
