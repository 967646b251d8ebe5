//! The on-disk format: frames, record headers, the chain hash, per-segment keys and nonces.
//!
//! Everything that decides a byte on disk lives here, so the format has one definition that
//! the writer, the verifier and the exporter share. Integers are little-endian except the
//! nonce's counter, which is big-endian as AES-GCM's deterministic construction suggests.

use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Every frame starts with these four bytes ("SXA1": slurm-exporter audit, format 1).
pub const MAGIC: [u8; 4] = *b"SXA1";
/// Format version carried in every header. Version 2 added the history commitment
/// ([`Commitment`]) to open records, checkpoints and seals.
pub const VERSION: u8 = 2;
/// Length of an encoded [`Header`].
pub const HEADER_LEN: usize = 78;
/// magic (4) + length (4) before the record, CRC-32 (4) after it.
pub const FRAME_OVERHEAD: usize = 12;
/// Largest record (header + body) a reader accepts; larger lengths are corruption.
pub const MAX_RECORD_LEN: usize = 1 << 20;
/// Length of the AES-GCM tag appended to each ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of the random per-segment salt stored in the open record.
pub const SALT_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIG_LEN: usize = 64;

/// Length of an encoded [`Commitment`].
pub const COMMITMENT_LEN: usize = 88;
/// Length of an open record's body: salt, public key, commitment, signature.
pub const OPEN_BODY_LEN: usize = SALT_LEN + 32 + COMMITMENT_LEN + SIG_LEN;

const CHAIN_DOMAIN: &[u8] = b"SXA1/chain";
const OPEN_DOMAIN: &[u8] = b"SXA2/open";
const CHECKPOINT_DOMAIN: &[u8] = b"SXA2/checkpoint";
const KEY_DOMAIN: &[u8] = b"SXA1/segment-key";
const DIGEST_DOMAIN: &[u8] = b"SXA2/keyed-digest";

/// What every signed record (open, checkpoint, seal) says about the history before it: where
/// the retained log starts, and which checkpoint came last. The first lets nobody remove old
/// segments unseen (only a signed retention checkpoint moves `oldest_segment`); the second
/// chains checkpoints to each other, so a witness holding only checkpoints can tell that a
/// new one extends the last it holds rather than forks from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commitment {
    /// The first segment of the retained log.
    pub oldest_segment: u64,
    /// Sequence number of that segment's open record.
    pub oldest_seq: u64,
    /// The chain hash the retained log starts from (that open record's `prev_hash`; zeros
    /// at genesis).
    pub start_hash: [u8; 32],
    /// Sequence number of the previous checkpoint or seal, [`NO_CHECKPOINT`] when none.
    pub prev_checkpoint_seq: u64,
    /// Chain hash of that record (zeros when none).
    pub prev_checkpoint_hash: [u8; 32],
}

/// `prev_checkpoint_seq` of a record with no checkpoint before it.
pub const NO_CHECKPOINT: u64 = u64::MAX;

impl Commitment {
    /// A new log: segment 1, record 0, from the all-zero hash, no checkpoint yet.
    pub fn genesis() -> Commitment {
        Commitment {
            oldest_segment: 1,
            oldest_seq: 0,
            start_hash: [0; 32],
            prev_checkpoint_seq: NO_CHECKPOINT,
            prev_checkpoint_hash: [0; 32],
        }
    }

    pub fn encode(&self) -> [u8; COMMITMENT_LEN] {
        let mut b = [0u8; COMMITMENT_LEN];
        b[..8].copy_from_slice(&self.oldest_segment.to_le_bytes());
        b[8..16].copy_from_slice(&self.oldest_seq.to_le_bytes());
        b[16..48].copy_from_slice(&self.start_hash);
        b[48..56].copy_from_slice(&self.prev_checkpoint_seq.to_le_bytes());
        b[56..88].copy_from_slice(&self.prev_checkpoint_hash);
        b
    }

    pub fn decode(b: &[u8]) -> Option<Commitment> {
        if b.len() != COMMITMENT_LEN {
            return None;
        }
        Some(Commitment {
            oldest_segment: u64::from_le_bytes(b[..8].try_into().ok()?),
            oldest_seq: u64::from_le_bytes(b[8..16].try_into().ok()?),
            start_hash: b[16..48].try_into().ok()?,
            prev_checkpoint_seq: u64::from_le_bytes(b[48..56].try_into().ok()?),
            prev_checkpoint_hash: b[56..88].try_into().ok()?,
        })
    }
}

/// The parts of an open record's body.
pub struct OpenBody<'a> {
    pub salt: &'a [u8],
    pub public_key: [u8; 32],
    pub commitment: Commitment,
    pub signature: [u8; SIG_LEN],
}

impl<'a> OpenBody<'a> {
    pub fn parse(body: &'a [u8]) -> Option<OpenBody<'a>> {
        if body.len() != OPEN_BODY_LEN {
            return None;
        }
        let (salt, rest) = body.split_at(SALT_LEN);
        let (pk, rest) = rest.split_at(32);
        let (c, sig) = rest.split_at(COMMITMENT_LEN);
        Some(OpenBody {
            salt,
            public_key: pk.try_into().ok()?,
            commitment: Commitment::decode(c)?,
            signature: sig.try_into().ok()?,
        })
    }
}

/// Identifies one log for its whole life: 16 random bytes chosen when the log is created.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogId(pub [u8; 16]);

impl LogId {
    pub(crate) fn random() -> Result<LogId, getrandom::Error> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)?;
        Ok(LogId(id))
    }
}

impl std::fmt::Display for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl std::fmt::Debug for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogId({self})")
    }
}

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An encrypted event.
    Event = 1,
    /// First record of a segment: salt, signer public key, signature (the retention anchor).
    Open = 2,
    /// A signed checkpoint over the chain so far.
    Checkpoint = 3,
    /// The final signed checkpoint of a segment.
    Seal = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Event),
            2 => Some(Kind::Open),
            3 => Some(Kind::Checkpoint),
            4 => Some(Kind::Seal),
            _ => None,
        }
    }
}

/// The plaintext header of every record. Its encoding is the AES-GCM associated data of an
/// event and is covered by the chain hash and by every signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub log_id: LogId,
    pub segment: u64,
    pub seq: u64,
    /// Microseconds since the Unix epoch (UTC); never decreases along the chain.
    pub time_us: u64,
    /// The data key that encrypted this segment's events.
    pub key_id: u32,
    /// Chain hash of the previous record (all zeros for the very first record of a log).
    pub prev_hash: [u8; 32],
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1] = self.kind as u8;
        b[2..18].copy_from_slice(&self.log_id.0);
        b[18..26].copy_from_slice(&self.segment.to_le_bytes());
        b[26..34].copy_from_slice(&self.seq.to_le_bytes());
        b[34..42].copy_from_slice(&self.time_us.to_le_bytes());
        b[42..46].copy_from_slice(&self.key_id.to_le_bytes());
        b[46..78].copy_from_slice(&self.prev_hash);
        b
    }

    pub fn decode(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER_LEN || b[0] != VERSION {
            return None;
        }
        let kind = Kind::from_u8(b[1])?;
        Some(Header {
            kind,
            log_id: LogId(b[2..18].try_into().ok()?),
            segment: u64::from_le_bytes(b[18..26].try_into().ok()?),
            seq: u64::from_le_bytes(b[26..34].try_into().ok()?),
            time_us: u64::from_le_bytes(b[34..42].try_into().ok()?),
            key_id: u32::from_le_bytes(b[42..46].try_into().ok()?),
            prev_hash: b[46..78].try_into().ok()?,
        })
    }
}

/// Chain hash of one record: SHA-256 over a domain tag, the encoded header and the body.
pub fn chain_hash(header: &[u8], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CHAIN_DOMAIN);
    h.update(header);
    h.update(body);
    h.finalize().into()
}

/// Appends one frame (magic, length, header, body, CRC-32) to `out`.
pub fn push_frame(out: &mut Vec<u8>, header: &[u8; HEADER_LEN], body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    // Record lengths are bounded by MAX_RECORD_LEN (checked by callers), so this fits.
    let len = u32::try_from(HEADER_LEN + body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The message an open record's signature covers.
pub fn open_message(
    header: &[u8; HEADER_LEN],
    salt: &[u8],
    public_key: &[u8],
    commitment: &Commitment,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(OPEN_DOMAIN.len() + HEADER_LEN + 64 + COMMITMENT_LEN);
    m.extend_from_slice(OPEN_DOMAIN);
    m.extend_from_slice(header);
    m.extend_from_slice(salt);
    m.extend_from_slice(public_key);
    m.extend_from_slice(&commitment.encode());
    m
}

/// The message a checkpoint or seal signature covers. The header carries `prev_hash`, the
/// chain hash of everything before the checkpoint, so one signature commits to the whole
/// prefix of the log; the commitment says where that prefix starts.
pub fn checkpoint_message(header: &[u8; HEADER_LEN], commitment: &Commitment) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + HEADER_LEN + COMMITMENT_LEN);
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    m.extend_from_slice(header);
    m.extend_from_slice(&commitment.encode());
    m
}

/// Per-segment AES-256-GCM key: HKDF-SHA256 of the data key, salted with the segment's
/// random salt and bound to the log, segment number and key id.
pub fn segment_key(
    master: &[u8; 32],
    salt: &[u8],
    log_id: LogId,
    segment: u64,
    key_id: u32,
) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(salt), master);
    let mut info = Vec::with_capacity(KEY_DOMAIN.len() + 28);
    info.extend_from_slice(KEY_DOMAIN);
    info.extend_from_slice(&log_id.0);
    info.extend_from_slice(&segment.to_le_bytes());
    info.extend_from_slice(&key_id.to_le_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit, so expand cannot fail.
    if hk.expand(&info, okm.as_mut()).is_err() {
        unreachable!("HKDF-SHA256 output of 32 bytes is always valid");
    }
    okm
}

/// The AES-GCM cipher for one segment.
pub fn segment_cipher(
    master: &[u8; 32],
    salt: &[u8],
    log_id: LogId,
    segment: u64,
    key_id: u32,
) -> Aes256Gcm {
    let key = segment_key(master, salt, log_id, segment, key_id);
    Aes256Gcm::new(key.as_ref().into())
}

/// Nonce of an event: 32 zero bits then the record's 64-bit sequence number, big-endian.
/// Unique under one segment key because a segment key lives in exactly one writer session
/// and sequence numbers only grow within a session.
pub fn nonce(seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

/// The per-log key of [`keyed_digest`]: HKDF-SHA256 of the signing key's secret bytes,
/// salted with the log id.
pub fn digest_key(signing_secret: &[u8; 32], log_id: LogId) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(&log_id.0), signing_secret);
    let mut okm = Zeroizing::new([0u8; 32]);
    if hk.expand(DIGEST_DOMAIN, okm.as_mut()).is_err() {
        unreachable!("HKDF-SHA256 output of 32 bytes is always valid");
    }
    okm
}

/// HMAC-SHA256 of `data` under `key`, first 16 bytes in hex.
pub fn keyed_digest(key: &[u8; 32], data: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(data);
    hex(&mac.finalize().into_bytes()[..16])
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Parses lower- or upper-case hex into exactly `N` bytes.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// File name of segment `n`: 16 decimal digits and `.seg`, so names sort like numbers.
pub fn segment_file_name(n: u64) -> String {
    format!("{n:016}.seg")
}

/// The segment number of a file name made by [`segment_file_name`], if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            kind: Kind::Checkpoint,
            log_id: LogId([7; 16]),
            segment: 3,
            seq: 99,
            time_us: 1_700_000_000_000_000,
            key_id: 2,
            prev_hash: [9; 32],
        };
        assert_eq!(Header::decode(&h.encode()), Some(h));
    }

    #[test]
    fn hex_round_trips() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex::<4>(&hex(&b)), Some(b));
        assert_eq!(unhex::<4>("zz"), None);
    }

    #[test]
    fn segment_names_sort_and_parse() {
        assert_eq!(segment_file_name(12), "0000000000000012.seg");
        assert_eq!(parse_segment_file_name("0000000000000012.seg"), Some(12));
        assert_eq!(parse_segment_file_name("0000000000000012.seg.torn-1"), None);
        assert_eq!(parse_segment_file_name("12.seg"), None);
    }
}
