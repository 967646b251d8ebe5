//! Every tamper case an auditor cares about: verify names the failure and the first bad
//! sequence number.

mod common;

use audit::testing::{fix_crc, frame, segment_data_key, Header, Kind};
use audit::{verify, verify_with, Reason, VerifyOptions};
use common::*;

fn expect_err(fx: &Fixture, opts: &VerifyOptions<'_>) -> audit::VerifyError {
    match verify_with(&fx.dir(), opts) {
        Ok(r) => panic!("verify passed a tampered log: {}", r.summary()),
        Err(e) => e,
    }
}

fn trusted(fx: &Fixture) -> VerifyOptions<'_> {
    VerifyOptions {
        public_key: Some(&fx.public),
        ..VerifyOptions::default()
    }
}

#[test]
fn intact_log_verifies_and_exports_by_time_and_tenant() {
    let fx = Fixture::new();
    let last = write_log(&fx, 30, 3).expect("a checkpoint");
    let with_keys = VerifyOptions {
        public_key: Some(&fx.public),
        keyring: Some(&fx.keyring),
        published: Some(&last),
    };
    let r = verify_with(&fx.dir(), &with_keys).expect("intact");
    assert_eq!(r.events, 30);
    assert!(r.from_genesis && r.signer_trusted && r.decrypted && r.published_checkpoint_matched);
    assert_eq!((r.first_segment, r.last_segment), (1, 3));
    assert_eq!(r.unsigned_tail, 0, "close() seals");
    assert!(r.torn_tail.is_none());

    let all: Vec<_> = audit::export(&fx.dir(), &fx.keyring, None, None, None)
        .collect::<Result<_, _>>()
        .expect("export");
    assert_eq!(all.len(), 30);
    assert_eq!(all[0]["event"]["request_id"], "req-0");
    let physics: Vec<_> = audit::export(&fx.dir(), &fx.keyring, None, None, Some("physics"))
        .collect::<Result<_, _>>()
        .expect("export");
    assert_eq!(physics.len(), 10);
    assert!(physics.iter().all(|v| v["event"]["tenant"] == "physics"));

    let t10 = audit::parse_time(all[10]["time"].as_str().expect("time")).expect("parse");
    let t20 = audit::parse_time(all[20]["time"].as_str().expect("time")).expect("parse");
    let range: Vec<_> = audit::export(&fx.dir(), &fx.keyring, Some(t10), Some(t20), None)
        .collect::<Result<_, _>>()
        .expect("export");
    assert!(range.iter().all(|v| {
        let t = audit::parse_time(v["time"].as_str().unwrap_or_default()).expect("parse");
        t >= t10 && t < t20
    }));
    assert!(range.iter().any(|v| v["event"]["request_id"] == "req-10"));
}

#[test]
fn export_from_a_time_reads_only_the_segments_it_covers() {
    let fx = Fixture::new();
    write_log(&fx, 30, 3);
    let all: Vec<_> = audit::export(&fx.dir(), &fx.keyring, None, None, None)
        .collect::<Result<_, _>>()
        .expect("export");
    let t25 = audit::parse_time(all[25]["time"].as_str().expect("time")).expect("parse");
    let want: Vec<_> = all
        .iter()
        .filter(|v| audit::parse_time(v["time"].as_str().unwrap_or_default()).expect("t") >= t25)
        .cloned()
        .collect();
    // Damage the first segment past its open record: a full read would stop there.
    let seg1 = fx.segment(1);
    let mut data = std::fs::read(&seg1).expect("read");
    let at = data.len() / 2;
    data[at] ^= 0xff;
    std::fs::write(&seg1, &data).expect("write");
    assert!(
        audit::export(&fx.dir(), &fx.keyring, None, None, None).any(|r| r.is_err()),
        "reading segment 1 finds the damage"
    );
    let from: Vec<_> = audit::export(&fx.dir(), &fx.keyring, Some(t25), None, None)
        .collect::<Result<_, _>>()
        .expect("segments before the range are not read");
    assert_eq!(from, want);
    assert!(!from.is_empty());
}

#[test]
fn flipped_byte_in_a_header_is_reported_at_that_record() {
    let fx = Fixture::new();
    write_log(&fx, 12, 1);
    let victim = nth_frame(&fx.segment(1), Kind::Event, 3);
    // The time field of the header (offset 34 in the header, 8 after the frame start).
    flip(&fx.segment(1), victim.offset + 8 + 34, None);
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::FlippedByte, Some(victim.header.seq)),
        "{e}"
    );
}

#[test]
fn header_changed_with_its_checksum_recomputed_breaks_the_chain_at_that_record() {
    // Every byte of the time field (offsets 34..42 of the header): whether the change makes
    // the time earlier or later than its predecessor's, the finding is the broken link.
    for byte in 34..42 {
        let fx = Fixture::new();
        write_log(&fx, 12, 1);
        let victim = nth_frame(&fx.segment(1), Kind::Event, 3);
        flip(
            &fx.segment(1),
            victim.offset + 8 + byte,
            Some(victim.offset),
        );
        let e = expect_err(&fx, &trusted(&fx));
        assert_eq!(
            (e.reason, e.seq),
            (Reason::BadChainHash, Some(victim.header.seq)),
            "time byte {byte}: {e}"
        );
    }
}

#[test]
fn flipped_byte_in_a_ciphertext_is_reported_at_that_record() {
    let fx = Fixture::new();
    write_log(&fx, 12, 1);
    let victim = nth_frame(&fx.segment(1), Kind::Event, 6);
    let at = victim.body.start + 5;
    flip(&fx.segment(1), at, None);
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::FlippedByte, Some(victim.header.seq)),
        "{e}"
    );

    // Same flip by someone who also fixes the checksum.
    flip(&fx.segment(1), at, None);
    flip(&fx.segment(1), at, Some(victim.offset));
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::BadChainHash, Some(victim.header.seq)),
        "{e}"
    );
}

#[test]
fn flipped_byte_in_a_checkpoint_is_reported_at_that_checkpoint() {
    let fx = Fixture::new();
    write_log(&fx, 12, 1);
    let cp = nth_frame(&fx.segment(1), Kind::Checkpoint, 0);
    let sig_byte = cp.body.start + 8 + 10;
    flip(&fx.segment(1), sig_byte, None);
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::FlippedByte, Some(cp.header.seq)),
        "{e}"
    );

    flip(&fx.segment(1), sig_byte, None);
    flip(&fx.segment(1), sig_byte, Some(cp.offset));
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::BadSignature, Some(cp.header.seq)),
        "{e}"
    );

    // The retention field is signed too.
    flip(&fx.segment(1), sig_byte, Some(cp.offset));
    flip(&fx.segment(1), cp.body.start, Some(cp.offset));
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::BadSignature, Some(cp.header.seq)),
        "{e}"
    );
}

#[test]
fn deleted_record_is_reported_at_its_sequence_number() {
    let fx = Fixture::new();
    write_log(&fx, 12, 1);
    let (mut data, _) = frames(&fx.segment(1));
    let victim = nth_frame(&fx.segment(1), Kind::Event, 4);
    data.drain(victim.offset..victim.end);
    std::fs::write(fx.segment(1), data).expect("write");
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::Deleted, Some(victim.header.seq)),
        "{e}"
    );
}

#[test]
fn swapped_records_are_reported_as_reordered() {
    let fx = Fixture::new();
    write_log(&fx, 12, 1);
    let a = nth_frame(&fx.segment(1), Kind::Event, 6);
    let b = nth_frame(&fx.segment(1), Kind::Event, 7);
    assert_eq!(a.end, b.offset, "adjacent");
    let (data, _) = frames(&fx.segment(1));
    let mut out = data[..a.offset].to_vec();
    out.extend_from_slice(&data[b.offset..b.end]);
    out.extend_from_slice(&data[a.offset..a.end]);
    out.extend_from_slice(&data[b.end..]);
    std::fs::write(fx.segment(1), out).expect("write");
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::Reordered, Some(a.header.seq)),
        "{e}"
    );
}

#[test]
fn truncated_tail_is_caught_by_the_published_checkpoint() {
    let fx = Fixture::new();
    let published = write_log(&fx, 12, 1).expect("checkpoint");
    let cp = nth_frame(&fx.segment(1), Kind::Checkpoint, 1);
    let (data, _) = frames(&fx.segment(1));
    // Cut everything after the second checkpoint, seal included, at a frame boundary.
    std::fs::write(fx.segment(1), &data[..cp.end]).expect("write");
    // Alone, the log looks complete up to its last signed checkpoint...
    let r = verify(&fx.dir(), Some(&fx.public)).expect("prefix verifies");
    assert_eq!(r.last_seq, cp.header.seq);
    // ...the published checkpoint proves more existed.
    let e = expect_err(
        &fx,
        &VerifyOptions {
            published: Some(&published),
            ..trusted(&fx)
        },
    );
    assert_eq!(
        (e.reason, e.seq),
        (Reason::Truncated, Some(cp.header.seq + 1)),
        "{e}"
    );
}

#[test]
fn tail_cut_from_an_older_segment_is_reported_as_truncated() {
    let fx = Fixture::new();
    write_log(&fx, 20, 2);
    let (data, frames1) = frames(&fx.segment(1));
    let seal = frames1.last().expect("seal");
    assert_eq!(seal.header.kind, Kind::Seal);
    let cut = &frames1[frames1.len() - 3];
    std::fs::write(fx.segment(1), &data[..cut.end]).expect("write");
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::Truncated, Some(cut.header.seq + 1)),
        "{e}"
    );
}

#[test]
fn deleted_segment_is_reported_as_deleted() {
    let fx = Fixture::new();
    write_log(&fx, 30, 3);
    let first_of_2 = nth_frame(&fx.segment(2), Kind::Open, 0).header.seq;
    std::fs::remove_file(fx.segment(2)).expect("rm");
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::Deleted, Some(first_of_2)),
        "{e}"
    );

    // Deleting the oldest segment is caught by the retention field of the signed checkpoints.
    let fx = Fixture::new();
    write_log(&fx, 30, 3);
    let last_of_1 = frames(&fx.segment(1)).1.last().expect("seal").header.seq;
    std::fs::remove_file(fx.segment(1)).expect("rm");
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!((e.reason, e.seq), (Reason::Deleted, Some(last_of_1)), "{e}");
}

#[test]
fn segment_from_another_log_is_reported_as_spliced() {
    let a = Fixture::new();
    write_log(&a, 30, 3);
    // Same keys, same shape, different log: only the log id tells them apart.
    let b = Fixture {
        tmp: tempdir(),
        keyring: a.keyring.clone(),
        signing: a.signing.clone(),
        public: a.public,
    };
    write_log(&b, 30, 3);
    let expected = nth_frame(&a.segment(2), Kind::Open, 0).header.seq;
    std::fs::copy(b.segment(2), a.segment(2)).expect("splice");
    let e = expect_err(&a, &trusted(&a));
    assert_eq!((e.reason, e.seq), (Reason::Spliced, Some(expected)), "{e}");
}

#[test]
fn records_reencrypted_under_a_wrong_key_are_detected() {
    let fx = Fixture::new();
    write_log(&fx, 12, 1);
    let path = fx.segment(1);
    let victim = nth_frame(&path, Kind::Event, 2);
    let (data, all) = frames(&path);
    let forged_key = [0x42u8; 32];
    let forged_body =
        audit::testing::encrypt(&forged_key, &victim.header, b"{\"kind\":\"request\"}");
    let mut out = data[..victim.offset].to_vec();
    out.extend_from_slice(&frame(&victim.header, &forged_body));
    out.extend_from_slice(&data[victim.end..]);
    std::fs::write(&path, &out).expect("write");
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::BadChainHash, Some(victim.header.seq)),
        "{e}"
    );

    // A thorough forger also re-chains every later record; the next signed checkpoint,
    // which it cannot re-sign, gives it away.
    let mut prev = audit::testing::chain_hash(&victim.header.encode(), &forged_body);
    let mut out = data[..victim.offset].to_vec();
    out.extend_from_slice(&frame(&victim.header, &forged_body));
    for f in all.iter().filter(|f| f.header.seq > victim.header.seq) {
        let h = Header {
            prev_hash: prev,
            ..f.header.clone()
        };
        let body = &data[f.body.clone()];
        prev = audit::testing::chain_hash(&h.encode(), body);
        out.extend_from_slice(&frame(&h, body));
    }
    std::fs::write(&path, &out).expect("write");
    let next_cp = all
        .iter()
        .find(|f| f.header.kind == Kind::Checkpoint && f.header.seq > victim.header.seq)
        .expect("a later checkpoint");
    let e = expect_err(&fx, &trusted(&fx));
    assert_eq!(
        (e.reason, e.seq),
        (Reason::BadSignature, Some(next_cp.header.seq)),
        "{e}"
    );
    // With the keyring the forged record itself fails authentication.
    let e = expect_err(
        &fx,
        &VerifyOptions {
            keyring: Some(&fx.keyring),
            ..trusted(&fx)
        },
    );
    assert_eq!(
        (e.reason, e.seq),
        (Reason::DecryptFailed, Some(victim.header.seq)),
        "{e}"
    );
    let _ = fix_crc;
}

#[test]
fn log_signed_by_another_key_is_reported_as_unknown_key() {
    let fx = Fixture::new();
    write_log(&fx, 5, 1);
    let stranger = audit::generate_signing_key().expect("key").verifying_key();
    let e = verify(&fx.dir(), Some(&stranger)).expect_err("wrong key");
    assert_eq!((e.reason, e.seq), (Reason::UnknownKey, Some(0)), "{e}");
    // Without a trusted key it verifies, and says so.
    let r = verify(&fx.dir(), None).expect("consistent");
    assert!(!r.signer_trusted);
    assert!(r.summary().contains("NOT supplied"));
}

#[test]
fn key_rotation_keeps_old_records_readable_and_needs_every_key() {
    let fx = Fixture::new();
    let log = fx.open(config());
    log.append(&event(0)).expect("append");
    let mut ring = fx.keyring.clone();
    let new_id = ring.rotate().expect("rotate");
    assert_eq!(log.rotate_key(ring.clone()).expect("rotate"), new_id);
    log.append(&event(1)).expect("append");
    log.close().expect("close");

    let all: Vec<_> = audit::export(&fx.dir(), &ring, None, None, None)
        .collect::<Result<_, _>>()
        .expect("both keys");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["key_id"], 1);
    assert_eq!(all[1]["key_id"], new_id);

    let mut only_new = ring.clone();
    only_new.remove(1).expect("remove old key");
    let first = audit::export(&fx.dir(), &only_new, None, None, None).next();
    assert!(matches!(
        first,
        Some(Err(audit::ExportError::UnknownKey { key_id: 1, .. }))
    ));
    let e = verify_with(
        &fx.dir(),
        &VerifyOptions {
            keyring: Some(&only_new),
            ..trusted(&fx)
        },
    )
    .expect_err("missing key");
    assert_eq!(e.reason, Reason::UnknownKey);
    // The wrong keyring altogether: decryption fails.
    let stranger = audit::Keyring::generate().expect("ring");
    let e = verify_with(
        &fx.dir(),
        &VerifyOptions {
            keyring: Some(&stranger),
            ..trusted(&fx)
        },
    )
    .expect_err("wrong keys");
    assert_eq!(e.reason, Reason::DecryptFailed);
}

#[test]
fn retention_removes_expired_segments_and_the_rest_verifies_from_the_signed_anchor() {
    let fx = Fixture::new();
    let log = fx.open(config());
    for i in 0..10 {
        if i > 0 && i % 2 == 0 {
            log.rotate_key(fx.keyring.clone()).expect("roll");
        }
        log.append(&event(i)).expect("append");
    }
    let cutoff = std::time::SystemTime::now();
    let removed = log.apply_retention(cutoff).expect("retention");
    assert_eq!(
        removed,
        vec![1, 2, 3, 4],
        "all sealed segments before the current one"
    );
    log.append(&event(10)).expect("append");
    log.close().expect("close");
    let r = verify(&fx.dir(), Some(&fx.public)).expect("verifies from the anchor");
    assert!(!r.from_genesis);
    assert_eq!(r.first_segment, 5);
    let exported = audit::export(&fx.dir(), &fx.keyring, None, None, None).count();
    assert_eq!(exported, 3);
}

#[test]
fn checkpoints_come_every_n_records_and_every_interval_even_when_idle() {
    let fx = Fixture::new();
    let log = fx.open(audit::Config {
        checkpoint_every_records: 3,
        checkpoint_interval: std::time::Duration::from_secs(60),
        background_checkpoints: false,
        ..audit::Config::default()
    });
    for i in 0..7 {
        log.append(&event(i)).expect("append");
    }
    let now = std::time::SystemTime::now();
    assert!(log.tick(now).expect("tick").is_none(), "not due yet");
    let later = now + std::time::Duration::from_secs(61);
    let cp = log.tick(later).expect("tick").expect("due while idle");
    assert!(cp.verify_signature(&fx.public));
    assert!(log.tick(later).expect("tick").is_none(), "just written");
    assert!(log
        .tick(later + std::time::Duration::from_secs(61))
        .expect("tick")
        .is_some());
    log.close().expect("close");
    let cps = audit::checkpoints(&fx.dir()).expect("list");
    // Two by count (after records 3 and 6), two by time, one seal.
    assert_eq!(cps.iter().filter(|c| !c.sealed).count(), 4);
    assert!(cps.last().expect("seal").sealed);
    assert!(cps.iter().all(|c| c.verify_signature(&fx.public)));

    // The background timer checkpoints an idle log by itself.
    let fx = Fixture::new();
    let log = fx.open(audit::Config {
        checkpoint_interval: std::time::Duration::from_millis(30),
        ..audit::Config::default()
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(log.last_checkpoint().is_some());
    drop(log);
    assert!(audit::checkpoints(&fx.dir()).expect("list").len() >= 3);
}

#[test]
fn published_checkpoint_round_trips_as_one_json_line() {
    let fx = Fixture::new();
    let cp = write_log(&fx, 3, 1).expect("cp");
    let line = cp.to_json_line();
    assert!(!line.contains('\n'));
    let back = audit::Checkpoint::from_json_line(&line).expect("parse");
    assert_eq!(back, cp);
    assert!(back.verify_signature(&fx.public));
    let forged = line.replace("\"sealed\":true", "\"sealed\":false");
    assert!(audit::Checkpoint::from_json_line(&forged).is_err());
}

#[test]
fn keys_are_stored_private_and_insecure_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempdir();
    let ring = tmp.path().join("audit.keys");
    assert_eq!(audit::rotate_key(&ring).expect("create"), 1);
    assert_eq!(audit::rotate_key(&ring).expect("rotate"), 2);
    let mode = std::fs::metadata(&ring).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let loaded = audit::Keyring::load(&ring).expect("load");
    assert_eq!((loaded.active_id(), loaded.ids()), (2, vec![1, 2]));
    assert!(
        !format!("{loaded:?}").contains(&"0".repeat(8)),
        "Debug shows ids only"
    );

    let sk_path = tmp.path().join("audit-signing.pem");
    let pk_path = tmp.path().join("audit-signing.pub.pem");
    let sk = audit::generate_signing_key().expect("sk");
    audit::save_signing_key(&sk, &sk_path).expect("save");
    audit::save_public_key(&sk.verifying_key(), &pk_path).expect("save");
    assert_eq!(
        audit::load_signing_key(&sk_path).expect("load").to_bytes(),
        sk.to_bytes()
    );
    assert_eq!(
        audit::load_public_key(&pk_path).expect("load"),
        sk.verifying_key()
    );

    std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(matches!(
        audit::Keyring::load(&ring),
        Err(audit::KeyError::InsecurePermissions { .. })
    ));
    std::fs::set_permissions(&sk_path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(audit::load_signing_key(&sk_path).is_err());
}

#[test]
fn a_second_writer_is_refused_while_the_first_runs() {
    let fx = Fixture::new();
    let log = fx.open(config());
    let second = audit::AuditLog::open(&fx.dir(), config(), fx.keyring.clone(), fx.signing.clone());
    assert!(matches!(second, Err(audit::OpenError::Locked(_))));
    drop(log);
    let again = audit::AuditLog::open(&fx.dir(), config(), fx.keyring.clone(), fx.signing.clone());
    assert!(again.is_ok());
}

#[test]
fn reopening_with_another_signing_key_is_refused() {
    let fx = Fixture::new();
    write_log(&fx, 2, 1);
    let other = audit::generate_signing_key().expect("sk");
    let r = audit::AuditLog::open(&fx.dir(), config(), fx.keyring.clone(), other);
    assert!(matches!(r, Err(audit::OpenError::WrongSigningKey(_))));
}

#[test]
fn closed_log_refuses_appends_visibly() {
    let fx = Fixture::new();
    let log = fx.open(config());
    log.close().expect("close");
    assert!(matches!(
        log.append(&event(0)),
        Err(audit::AppendError::Closed)
    ));
}

#[test]
fn segment_data_keys_differ_per_segment() {
    let fx = Fixture::new();
    write_log(&fx, 20, 2);
    let o1 = nth_frame(&fx.segment(1), Kind::Open, 0);
    let o2 = nth_frame(&fx.segment(2), Kind::Open, 0);
    let (d1, _) = frames(&fx.segment(1));
    let (d2, _) = frames(&fx.segment(2));
    let k1 = segment_data_key(&fx.keyring, &o1.header, &d1[o1.body.clone()]);
    let k2 = segment_data_key(&fx.keyring, &o2.header, &d2[o2.body.clone()]);
    assert!(k1.is_some() && k1 != k2);
}
