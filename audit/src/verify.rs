//! The verifier: walks every segment and checks framing, the hash chain, sequence numbers,
//! log identity, signatures and (given the keyring) every ciphertext. Needs no secret.

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::checkpoint::Checkpoint;
use crate::format::{
    hex, nonce, open_message, segment_cipher, Commitment, Kind, LogId, OpenBody, HEADER_LEN,
    NO_CHECKPOINT,
};
use crate::keys::{fingerprint, Keyring};
use crate::scan::{crash_tail, list_segments, scan_file, FrameFault, Scan};

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
    /// Bytes after the newest segment's last record that a crash cannot leave (a crash
    /// leaves a prefix of one record, possibly followed by zeros): something was appended.
    TrailingGarbage,
    /// A segment file numbered past the end of the log that holds no record of it: no crash
    /// makes one (the writer opens segment n+1 only after sealing n).
    SegmentPastEnd,
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
    // Segment number -> (sequence number, prev_hash) of its open record.
    let mut opens: BTreeMap<u64, (u64, [u8; 32])> = BTreeMap::new();
    let mut history = History {
        first_segment: segments.first().map_or(0, |(n, _)| *n),
        from_genesis,
        last: None,
        last_checkpoint: None,
    };

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
            if is_last && !stop.frames_after && !crash_tail(&scan.data, stop.offset) {
                return Err(fail(
                    Reason::TrailingGarbage,
                    seq_at_stop,
                    Some(number),
                    format!(
                        "{} byte(s) at byte {} of {} are not a record and not what a crash leaves (a prefix of one record, or zeros)",
                        scan.data.len() - stop.offset,
                        stop.offset,
                        path.display()
                    ),
                ));
            }
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
        let follows = match index.checked_sub(1) {
            Some(i) => segments[i].0.checked_add(1) == Some(number),
            None => true,
        };
        if scan.frames.is_empty() {
            if is_last && !follows {
                return Err(fail(
                    Reason::SegmentPastEnd,
                    expected(&chain),
                    Some(number),
                    format!(
                        "{} holds no record and is numbered past the end of the log (segment {})",
                        path.display(),
                        segments[index.saturating_sub(1)].0
                    ),
                ));
            }
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
                    // A changed header also breaks the next record's link to it: report the
                    // break (what was done) rather than the older time (one of its effects),
                    // whichever bit of the time the change hit.
                    let disowned = scan
                        .frames
                        .get(i + 1)
                        .is_some_and(|next| next.header.prev_hash != frame.hash);
                    if disowned {
                        return Err(fail(
                            Reason::BadChainHash,
                            Some(h.seq),
                            Some(number),
                            format!(
                                "record {} does not hash to what record {} commits to",
                                h.seq,
                                h.seq + 1
                            ),
                        ));
                    }
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
                    let (salt, commitment) =
                        check_open(h.seq, number, header_bytes, body, &mut signer)?;
                    if log_id.is_none() {
                        // The genesis record, or the signed anchor left by retention.
                        report_first_seq = h.seq;
                        log_id = Some(h.log_id);
                        first_time_us = Some(h.time_us);
                    }
                    opens.insert(number, (h.seq, h.prev_hash));
                    history.check(&commitment, h.seq, number, &opens)?;
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
                    history.check(&cp.commitment(), h.seq, number, &opens)?;
                    history.last_checkpoint = Some((h.seq, frame.hash));
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

    // Retention: the newest signed record says where the retained log begins; only a
    // signed retention checkpoint moves that point.
    if let Some(c) = &history.last {
        if first_segment > c.oldest_segment {
            return Err(fail(
                Reason::Deleted,
                Some(report_first_seq.saturating_sub(1)),
                Some(c.oldest_segment),
                format!(
                    "segments {}..{} are missing; the newest signed record keeps segment {} onward (record {})",
                    c.oldest_segment, first_segment, c.oldest_segment, c.oldest_seq
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
        if first_segment > p.oldest_segment {
            return Err(fail(
                Reason::Deleted,
                Some(report_first_seq),
                Some(first_segment),
                format!(
                    "the log starts at segment {first_segment} (record {report_first_seq}); the published checkpoint (record {}) says it starts at segment {} (record {})",
                    p.seq, p.oldest_segment, p.oldest_seq
                ),
            ));
        }
        if p.seq < report_first_seq {
            return Err(fail(
                Reason::Deleted,
                Some(p.seq),
                Some(first_segment),
                format!(
                    "the published checkpoint is record {}, before the log's first record {report_first_seq} (segment {first_segment})",
                    p.seq
                ),
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

/// Checks a segment's open record; returns its salt and its history commitment.
fn check_open<'b>(
    seq: u64,
    segment: u64,
    header: &[u8],
    body: &'b [u8],
    signer: &mut Option<VerifyingKey>,
) -> Result<(&'b [u8], Commitment), VerifyError> {
    let malformed = || {
        fail(
            Reason::Malformed,
            Some(seq),
            Some(segment),
            "open record of the wrong size".to_owned(),
        )
    };
    let open = OpenBody::parse(body).ok_or_else(malformed)?;
    let header: [u8; HEADER_LEN] = header.try_into().map_err(|_| malformed())?;
    let embedded = VerifyingKey::from_bytes(&open.public_key).map_err(|_| {
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
    let message = open_message(&header, open.salt, &open.public_key, &open.commitment);
    if key
        .verify(&message, &Signature::from_bytes(&open.signature))
        .is_err()
    {
        return Err(fail(
            Reason::BadSignature,
            Some(seq),
            Some(segment),
            "open record signature does not verify".to_owned(),
        ));
    }
    Ok((open.salt, open.commitment))
}

/// What the signed records have said so far about the history before them.
struct History {
    first_segment: u64,
    from_genesis: bool,
    last: Option<Commitment>,
    /// (sequence number, chain hash) of the last checkpoint or seal seen.
    last_checkpoint: Option<(u64, [u8; 32])>,
}

impl History {
    /// One signed record's commitment: its start never moves back; when it names a segment
    /// present here, that segment's open record is the one named; and it names the
    /// checkpoint just before it.
    fn check(
        &mut self,
        c: &Commitment,
        seq: u64,
        segment: u64,
        opens: &BTreeMap<u64, (u64, [u8; 32])>,
    ) -> Result<(), VerifyError> {
        let bad = |reason, detail: String| Err(fail(reason, Some(seq), Some(segment), detail));
        if let Some(prev) = &self.last {
            if c.oldest_segment < prev.oldest_segment {
                return bad(
                    Reason::Malformed,
                    format!(
                        "the log's start moves back from segment {} to {}",
                        prev.oldest_segment, c.oldest_segment
                    ),
                );
            }
        }
        if c.oldest_segment >= self.first_segment {
            match opens.get(&c.oldest_segment) {
                Some((s, h)) if *s == c.oldest_seq && *h == c.start_hash => {}
                Some((s, h)) => {
                    return bad(
                        Reason::BadChainHash,
                        format!(
                            "signed as starting at segment {} record {} from hash {}, but that segment's open record is record {s} from hash {}",
                            c.oldest_segment,
                            c.oldest_seq,
                            hex(&c.start_hash),
                            hex(h)
                        ),
                    )
                }
                None => {
                    return bad(
                        Reason::Malformed,
                        format!(
                            "signed as starting at segment {}, which comes after this record",
                            c.oldest_segment
                        ),
                    )
                }
            }
        }
        let named = (c.prev_checkpoint_seq, c.prev_checkpoint_hash);
        match self.last_checkpoint {
            Some(link) if link != named => {
                return bad(
                    Reason::BadChainHash,
                    format!(
                        "names checkpoint {} as the one before it; the log's is record {}",
                        c.prev_checkpoint_seq, link.0
                    ),
                )
            }
            None if self.from_genesis && c.prev_checkpoint_seq != NO_CHECKPOINT => {
                return bad(
                    Reason::Malformed,
                    format!(
                        "names checkpoint {} before the log's first checkpoint",
                        c.prev_checkpoint_seq
                    ),
                )
            }
            _ => {}
        }
        self.last = Some(*c);
        Ok(())
    }
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
    checkpoints_from(dir, 0)
}

/// [`checkpoints`] of segment `first_segment` and later only (to catch up from a known one).
pub fn checkpoints_from(dir: &Path, first_segment: u64) -> Result<Vec<Checkpoint>, VerifyError> {
    let segments = list_segments(dir)
        .map_err(|e| fail(Reason::Io, None, None, format!("{}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for (number, path) in segments.into_iter().filter(|(n, _)| *n >= first_segment) {
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
