//! The verifier: walks every segment and checks framing, the hash chain, sequence numbers,
//! log identity, signatures and (given the keyring) every ciphertext. Needs no secret.

use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::checkpoint::Checkpoint;
use crate::format::{
    nonce, open_message, segment_cipher, Kind, LogId, HEADER_LEN, SALT_LEN, SIG_LEN,
};
use crate::keys::{fingerprint, Keyring};
use crate::scan::{list_segments, scan_file, FrameFault, Scan};

/// Why a log failed verification. Each names what an auditor would call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Bytes of a record changed on disk: its checksum or framing is wrong.
    FlippedByte,
    /// A record's content no longer matches the hash the next record (or a checkpoint)
    /// commits to: altered with its checksum recomputed.
    BadChainHash,
    /// Records are missing: the sequence jumps.
    Deleted,
    /// Records are out of order (or one is repeated).
    Reordered,
    /// The log ends before what a seal or a published checkpoint proves was written.
    Truncated,
    /// A record or segment belongs to another log (log id or segment number mismatch).
    Spliced,
    /// A checkpoint, seal or open record's Ed25519 signature is wrong.
    BadSignature,
    /// Signed by a key other than the trusted one, or encrypted under a key id the keyring
    /// (or the segment) does not have.
    UnknownKey,
    /// (With a keyring) AES-GCM authentication failed: re-encrypted under a wrong key, or
    /// altered and re-chained.
    DecryptFailed,
    /// A record's time is earlier than its predecessor's.
    TimeReversed,
    /// The records are individually sound but the structure is not (a segment without an
    /// open record, a record after a seal, a genesis record that is not one).
    Malformed,
    /// There is no log in the directory.
    Empty,
    /// The directory or a file could not be read.
    Io,
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct VerifyError {
    pub reason: Reason,
    /// The first bad sequence number (the record expected at the point of failure).
    pub seq: Option<u64>,
    pub segment: Option<u64>,
    pub detail: String,
}

impl VerifyError {
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.reason);
        if let Some(seq) = self.seq {
            s.push_str(&format!(" at sequence {seq}"));
        }
        if let Some(seg) = self.segment {
            s.push_str(&format!(" (segment {seg})"));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// A crash-torn tail: the end of the newest segment where a write was cut. Not tampering
/// by itself (the writer cuts it on restart); reported so an auditor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub segment: u64,
    pub offset: usize,
    pub bytes: usize,
}

/// What a successful verification established.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub log_id: LogId,
    /// The key the signatures were checked against.
    pub signer: VerifyingKey,
    /// True when that key was supplied by the caller; false when taken from the log itself
    /// (then the signatures only prove internal consistency).
    pub signer_trusted: bool,
    pub first_segment: u64,
    pub last_segment: u64,
    /// Sequence number of the first record present (0 unless retention removed segments).
    pub first_seq: u64,
    pub last_seq: u64,
    /// True when the log starts at its genesis record; false when it starts at a signed
    /// anchor (the open record of the oldest retained segment).
    pub from_genesis: bool,
    pub events: u64,
    pub checkpoints: u64,
    pub first_time_us: u64,
    pub last_time_us: u64,
    pub last_checkpoint: Option<Checkpoint>,
    /// Records after the last checkpoint: chained but not yet signed.
    pub unsigned_tail: u64,
    pub torn_tail: Option<TornTail>,
    /// Whether every event was decrypted and authenticated (a keyring was given).
    pub decrypted: bool,
    /// Whether a published checkpoint was given and matched.
    pub published_checkpoint_matched: bool,
}

impl VerifyReport {
    /// A short text summary for the CLI.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "log {} intact: segments {}..={}, records {}..={} ({} events, {} checkpoints), {}\n\
             signer {} ({})\n",
            self.log_id,
            self.first_segment,
            self.last_segment,
            self.first_seq,
            self.last_seq,
            self.events,
            self.checkpoints,
            if self.from_genesis {
                "from genesis"
            } else {
                "from a signed retention anchor"
            },
            fingerprint(&self.signer),
            if self.signer_trusted {
                "the public key you supplied"
            } else {
                "NOT supplied: taken from the log itself, signatures prove consistency only"
            },
        );
        if self.unsigned_tail > 0 {
            s.push_str(&format!(
                "{} record(s) after the last checkpoint are chained but not yet signed\n",
                self.unsigned_tail
            ));
        }
        if let Some(t) = &self.torn_tail {
            s.push_str(&format!(
                "torn tail: {} byte(s) at offset {} of segment {} (a write cut by a crash)\n",
                t.bytes, t.offset, t.segment
            ));
        }
        if self.published_checkpoint_matched {
            s.push_str("the published checkpoint is in the log\n");
        }
        s
    }
}

/// What to check a log against.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions<'a> {
    /// The log's public key. Without it signatures are checked against the key the log
    /// names, which proves consistency but not authorship.
    pub public_key: Option<&'a VerifyingKey>,
    /// With the keyring every event is decrypted and authenticated too.
    pub keyring: Option<&'a Keyring>,
    /// A checkpoint published earlier: the log must still contain it (detects a deleted tail).
    pub published: Option<&'a Checkpoint>,
}

/// Verifies the log in `dir` against `public_key`. See [`verify_with`].
pub fn verify(dir: &Path, public_key: Option<&VerifyingKey>) -> Result<VerifyReport, VerifyError> {
    verify_with(
        dir,
        &VerifyOptions {
            public_key,
            ..VerifyOptions::default()
        },
    )
}

fn fail(reason: Reason, seq: Option<u64>, segment: Option<u64>, detail: String) -> VerifyError {
    VerifyError {
        reason,
        seq,
        segment,
        detail,
    }
}

struct Chain {
    next_seq: u64,
    prev_hash: [u8; 32],
    last_time_us: u64,
}

/// Verifies the log in `dir`: every segment, in order, up to the last committed record.
pub fn verify_with(dir: &Path, opts: &VerifyOptions<'_>) -> Result<VerifyReport, VerifyError> {
    let segments = list_segments(dir)
        .map_err(|e| fail(Reason::Io, None, None, format!("{}: {e}", dir.display())))?;
    if segments.is_empty() {
        return Err(fail(
            Reason::Empty,
            None,
            None,
            format!("{}: no segment files", dir.display()),
        ));
    }
    let mut log_id: Option<LogId> = None;
    let mut signer: Option<VerifyingKey> = opts.public_key.copied();
    // Segment 1 begins at the genesis record: sequence 0 after an all-zero hash. A later
    // first segment begins at a signed anchor (retention removed the ones before it).
    let from_genesis = segments.first().is_some_and(|(n, _)| *n == 1);
    let mut chain: Option<Chain> = from_genesis.then_some(Chain {
        next_seq: 0,
        prev_hash: [0; 32],
        last_time_us: 0,
    });
    let mut report_first_seq = 0;
    let mut events = 0u64;
    let mut checkpoints = 0u64;
    let mut first_time_us = None;
    let mut last_checkpoint: Option<Checkpoint> = None;
    let mut since_checkpoint = 0u64;
    let mut torn_tail = None;
    let mut published_matched = false;
    let last_index = segments.len() - 1;

    for (index, (number, path)) in segments.iter().enumerate() {
        let number = *number;
        let is_last = index == last_index;
        let scan = scan_file(path).map_err(|e| {
            fail(
                Reason::Io,
                chain.as_ref().map(|c| c.next_seq),
                Some(number),
                format!("{}: {e}", path.display()),
            )
        })?;
        let expected = |chain: &Option<Chain>| chain.as_ref().map(|c| c.next_seq);

        // Framing first: where does this file stop making sense?
        if let Some(stop) = &scan.stop {
            let seq_at_stop = scan
                .frames
                .last()
                .map(|f| f.header.seq.saturating_add(1))
                .or(expected(&chain));
            if is_last && !stop.frames_after {
                torn_tail = Some(TornTail {
                    segment: number,
                    offset: stop.offset,
                    bytes: scan.data.len() - stop.offset,
                });
            } else {
                return Err(fail(
                    Reason::FlippedByte,
                    seq_at_stop,
                    Some(number),
                    format!(
                        "{} at byte {} of {} ({})",
                        fault_text(stop.fault),
                        stop.offset,
                        path.display(),
                        if stop.frames_after {
                            "well-formed records follow, so this is not a torn write"
                        } else {
                            "the segment is not the newest, so this is not a torn write"
                        }
                    ),
                ));
            }
        }
        if scan.frames.is_empty() {
            // A crash while the writer opened its next segment: the file exists but its open
            // record was cut (torn bytes) or never written (no bytes). Nothing was
            // acknowledged in it; the writer removes it when it reopens the log.
            if is_last && chain.is_some() && (torn_tail.is_some() || scan.data.is_empty()) {
                break;
            }
            return Err(fail(
                if chain.is_some() {
                    Reason::Truncated
                } else {
                    Reason::Empty
                },
                expected(&chain),
                Some(number),
                format!("{}: no complete record", path.display()),
            ));
        }

        let mut seg_key_id = None;
        let mut seg_cipher: Option<Aes256Gcm> = None;
        let frame_count = scan.frames.len();
        for (i, frame) in scan.frames.iter().enumerate() {
            let h = &frame.header;
            let exp = expected(&chain);
            // Identity: the same log, the segment the file name says.
            match log_id {
                Some(id) if id != h.log_id => {
                    return Err(fail(
                        Reason::Spliced,
                        exp.or(Some(h.seq)),
                        Some(number),
                        format!("record belongs to log {} not {id}", h.log_id),
                    ))
                }
                _ => {}
            }
            if h.segment != number {
                return Err(fail(
                    Reason::Reordered,
                    exp.or(Some(h.seq)),
                    Some(number),
                    format!(
                        "record of segment {} found in segment file {number}",
                        h.segment
                    ),
                ));
            }
            // Order: sequence numbers, then the hash link.
            if let Some(c) = &chain {
                if h.seq != c.next_seq {
                    let later = scan.frames[i..].iter().any(|f| f.header.seq == c.next_seq);
                    let (reason, what) = if h.seq < c.next_seq || later {
                        (Reason::Reordered, "out of order")
                    } else {
                        (Reason::Deleted, "missing")
                    };
                    return Err(fail(
                        reason,
                        Some(c.next_seq),
                        Some(number),
                        format!("expected record {} but found {}: {what}", c.next_seq, h.seq),
                    ));
                }
                if h.prev_hash != c.prev_hash {
                    return Err(fail(
                        Reason::BadChainHash,
                        Some(h.seq.saturating_sub(1)),
                        Some(number),
                        format!(
                            "record {} does not hash to what record {} commits to",
                            h.seq.saturating_sub(1),
                            h.seq
                        ),
                    ));
                }
                if h.time_us < c.last_time_us {
                    return Err(fail(
                        Reason::TimeReversed,
                        Some(h.seq),
                        Some(number),
                        "record is older than its predecessor".to_owned(),
                    ));
                }
            }
            if i == 0 && h.kind != Kind::Open {
                return Err(fail(
                    Reason::Malformed,
                    Some(h.seq),
                    Some(number),
                    "segment does not start with an open record".to_owned(),
                ));
            }
            let body = scan.body(frame);
            let header_bytes = scan.header_bytes(frame);
            match h.kind {
                Kind::Open => {
                    if i != 0 {
                        return Err(fail(
                            Reason::Malformed,
                            Some(h.seq),
                            Some(number),
                            "open record inside a segment".to_owned(),
                        ));
                    }
                    let (salt, pk) = check_open(h.seq, number, header_bytes, body, &mut signer)?;
                    if log_id.is_none() {
                        // The genesis record, or the signed anchor left by retention.
                        report_first_seq = h.seq;
                        log_id = Some(h.log_id);
                        first_time_us = Some(h.time_us);
                    }
                    let _ = pk;
                    seg_key_id = Some(h.key_id);
                    if let Some(ring) = opts.keyring {
                        seg_cipher = ring
                            .key(h.key_id)
                            .map(|k| segment_cipher(k, salt, h.log_id, number, h.key_id));
                    }
                }
                Kind::Event => {
                    events += 1;
                    since_checkpoint += 1;
                    if seg_key_id != Some(h.key_id) {
                        return Err(fail(
                            Reason::UnknownKey,
                            Some(h.seq),
                            Some(number),
                            format!(
                                "event under key {} in a segment opened for another",
                                h.key_id
                            ),
                        ));
                    }
                    if let Some(ring) = opts.keyring {
                        let Some(cipher) = &seg_cipher else {
                            return Err(fail(
                                Reason::UnknownKey,
                                Some(h.seq),
                                Some(number),
                                format!(
                                    "the keyring has no key {} (has {:?})",
                                    h.key_id,
                                    ring.ids()
                                ),
                            ));
                        };
                        let ok = cipher
                            .decrypt(
                                Nonce::from_slice(&nonce(h.seq)),
                                Payload {
                                    msg: body,
                                    aad: header_bytes,
                                },
                            )
                            .is_ok();
                        if !ok {
                            return Err(fail(
                                Reason::DecryptFailed,
                                Some(h.seq),
                                Some(number),
                                "AES-GCM authentication failed".to_owned(),
                            ));
                        }
                    }
                }
                Kind::Checkpoint | Kind::Seal => {
                    let Some(cp) = Checkpoint::from_record(h, body) else {
                        return Err(fail(
                            Reason::Malformed,
                            Some(h.seq),
                            Some(number),
                            "checkpoint record of the wrong size".to_owned(),
                        ));
                    };
                    let Some(key) = &signer else {
                        unreachable!("the segment's open record set the signer");
                    };
                    if !cp.verify_signature(key) {
                        return Err(fail(
                            Reason::BadSignature,
                            Some(h.seq),
                            Some(number),
                            format!("{} signature does not verify", kind_text(h.kind)),
                        ));
                    }
                    if h.kind == Kind::Seal && i + 1 != frame_count {
                        return Err(fail(
                            Reason::Malformed,
                            Some(h.seq.saturating_add(1)),
                            Some(number),
                            "records after the segment's seal".to_owned(),
                        ));
                    }
                    checkpoints += 1;
                    since_checkpoint = 0;
                    last_checkpoint = Some(cp);
                }
            }
            if let Some(p) = opts.published {
                if p.seq == h.seq && p.log_id == h.log_id {
                    if frame.hash != p.record_hash() {
                        return Err(fail(
                            Reason::BadChainHash,
                            Some(h.seq),
                            Some(number),
                            "the record here differs from the published checkpoint".to_owned(),
                        ));
                    }
                    published_matched = true;
                }
            }
            chain = Some(Chain {
                next_seq: h.seq.saturating_add(1),
                prev_hash: frame.hash,
                last_time_us: h.time_us,
            });
        }
        if !is_last {
            if let Some(last) = scan.frames.last() {
                if last.header.kind != Kind::Seal {
                    return Err(fail(
                        Reason::Truncated,
                        Some(last.header.seq.saturating_add(1)),
                        Some(number),
                        "segment ends without its seal: its tail was removed".to_owned(),
                    ));
                }
            }
        }
    }

    let Some(chain) = chain else {
        return Err(fail(
            Reason::Empty,
            None,
            None,
            "no complete record".to_owned(),
        ));
    };
    let (Some(log_id), Some(signer)) = (log_id, signer) else {
        // Only a torn first record: a log that crashed before its first write, unless a
        // published checkpoint proves it had more.
        let reason = if opts.published.is_some() {
            Reason::Truncated
        } else {
            Reason::Empty
        };
        return Err(fail(
            reason,
            Some(chain.next_seq),
            segments.first().map(|(n, _)| *n),
            "no complete open record".to_owned(),
        ));
    };
    let first_segment = segments.first().map_or(0, |(n, _)| *n);
    let last_segment = segments.last().map_or(0, |(n, _)| *n);
    let last_seq = chain.next_seq.saturating_sub(1);

    // Retention: the newest signed checkpoint says where the retained log begins.
    if let Some(cp) = &last_checkpoint {
        if first_segment > cp.oldest_segment {
            return Err(fail(
                Reason::Deleted,
                Some(report_first_seq.saturating_sub(1)),
                Some(cp.oldest_segment),
                format!(
                    "segments {}..{} are missing; the last checkpoint keeps segment {} onward",
                    cp.oldest_segment, first_segment, cp.oldest_segment
                ),
            ));
        }
    }

    if let Some(p) = opts.published {
        if p.log_id != log_id {
            return Err(fail(
                Reason::Spliced,
                Some(p.seq),
                None,
                format!("the published checkpoint is for log {}", p.log_id),
            ));
        }
        if !p.verify_signature(&signer) {
            return Err(fail(
                Reason::BadSignature,
                Some(p.seq),
                None,
                "the published checkpoint's signature does not verify".to_owned(),
            ));
        }
        if p.seq > last_seq {
            return Err(fail(
                Reason::Truncated,
                Some(last_seq.saturating_add(1)),
                Some(last_segment),
                format!(
                    "the log ends at record {last_seq}; the published checkpoint is record {}",
                    p.seq
                ),
            ));
        }
    }

    Ok(VerifyReport {
        log_id,
        signer,
        signer_trusted: opts.public_key.is_some(),
        first_segment,
        last_segment,
        first_seq: report_first_seq,
        last_seq,
        from_genesis,
        events,
        checkpoints,
        first_time_us: first_time_us.unwrap_or(0),
        last_time_us: chain.last_time_us,
        last_checkpoint,
        unsigned_tail: since_checkpoint,
        torn_tail,
        decrypted: opts.keyring.is_some(),
        published_checkpoint_matched: published_matched,
    })
}

/// Checks a segment's open record; returns its salt and embedded public key.
fn check_open<'b>(
    seq: u64,
    segment: u64,
    header: &[u8],
    body: &'b [u8],
    signer: &mut Option<VerifyingKey>,
) -> Result<(&'b [u8], [u8; 32]), VerifyError> {
    let malformed = || {
        fail(
            Reason::Malformed,
            Some(seq),
            Some(segment),
            "open record of the wrong size".to_owned(),
        )
    };
    if body.len() != SALT_LEN + 32 + SIG_LEN || header.len() != HEADER_LEN {
        return Err(malformed());
    }
    let salt = &body[..SALT_LEN];
    let pk: [u8; 32] = body[SALT_LEN..SALT_LEN + 32]
        .try_into()
        .map_err(|_| malformed())?;
    let sig: [u8; SIG_LEN] = body[SALT_LEN + 32..].try_into().map_err(|_| malformed())?;
    let embedded = VerifyingKey::from_bytes(&pk).map_err(|_| {
        fail(
            Reason::UnknownKey,
            Some(seq),
            Some(segment),
            "the open record names an invalid public key".to_owned(),
        )
    })?;
    let key = match signer {
        Some(k) if *k != embedded => {
            return Err(fail(
                Reason::UnknownKey,
                Some(seq),
                Some(segment),
                format!(
                    "segment signed by key {}, expected {}",
                    fingerprint(&embedded),
                    fingerprint(k)
                ),
            ))
        }
        Some(k) => *k,
        None => {
            *signer = Some(embedded);
            embedded
        }
    };
    let header: [u8; HEADER_LEN] = header.try_into().map_err(|_| malformed())?;
    if key
        .verify(
            &open_message(&header, salt, &pk),
            &Signature::from_bytes(&sig),
        )
        .is_err()
    {
        return Err(fail(
            Reason::BadSignature,
            Some(seq),
            Some(segment),
            "open record signature does not verify".to_owned(),
        ));
    }
    Ok((salt, pk))
}

fn fault_text(f: FrameFault) -> &'static str {
    match f {
        FrameFault::Short => "record cut short",
        FrameFault::BadMagic => "frame marker damaged",
        FrameFault::BadLength => "length field damaged",
        FrameFault::BadChecksum => "checksum mismatch",
        FrameFault::BadHeader => "header not understood",
    }
}

fn kind_text(k: Kind) -> &'static str {
    match k {
        Kind::Event => "event",
        Kind::Open => "open record",
        Kind::Checkpoint => "checkpoint",
        Kind::Seal => "seal",
    }
}

/// Every checkpoint and seal in the log, oldest first, as written (signatures unchecked:
/// use [`Checkpoint::verify_signature`] or [`verify`]).
pub fn checkpoints(dir: &Path) -> Result<Vec<Checkpoint>, VerifyError> {
    let segments = list_segments(dir)
        .map_err(|e| fail(Reason::Io, None, None, format!("{}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for (number, path) in segments {
        let scan: Scan = scan_file(&path).map_err(|e| {
            fail(
                Reason::Io,
                None,
                Some(number),
                format!("{}: {e}", path.display()),
            )
        })?;
        for f in &scan.frames {
            if matches!(f.header.kind, Kind::Checkpoint | Kind::Seal) {
                if let Some(cp) = Checkpoint::from_record(&f.header, scan.body(f)) {
                    out.push(cp);
                }
            }
        }
    }
    Ok(out)
}
