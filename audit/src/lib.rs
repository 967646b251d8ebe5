//! Append-only, AES-256-GCM encrypted, hash-chained audit log with signed checkpoints, and
//! its offline verifier.
//!
//! The room holds three things and nothing about HTTP:
//!
//! - the **writer** ([`AuditLog`]): one thread owns the newest segment file; callers queue
//!   events and [`AuditLog::append`] returns once the record is fsynced (group commit);
//! - the **verifier** ([`verify`], [`verify_with`], [`checkpoints`]): needs no secret, only
//!   the log's Ed25519 public key, and names the first bad record and why ([`Reason`]);
//! - the **exporter** ([`export`]): decrypts a time range, optionally one tenant's events,
//!   with the keyring.
//!
//! # Format in one paragraph
//!
//! A log is a directory of segment files `0000000000000001.seg`, ... Each file is a run of
//! frames `magic "SXA1" | u32 length | header (78 bytes) | body | CRC-32`. The header holds
//! format version, record kind, log id, segment number, sequence number, time, key id and
//! the previous record's chain hash. Every record's chain hash is
//! `SHA-256("SXA1/chain" || header || body)`. A segment starts with a signed *open* record
//! (random key salt, public key) and ends with a signed *seal*; signed *checkpoints* come at
//! least every N records and every M seconds. Event bodies are AES-256-GCM ciphertexts whose
//! associated data is the header. Details, and why, in the crate's README.
//!
//! # Nonces
//!
//! Each segment has its own AES key, derived with HKDF-SHA256 from the keyring's data key
//! and a 32-byte random salt stored in the segment's open record. A segment belongs to one
//! writer session: after any restart (clean or crash) writing continues in a new segment,
//! so a new salt and a new key. Within a segment the nonce is the record's sequence number,
//! which only grows. A (key, nonce) pair therefore never repeats, even when a crash makes a
//! sequence number be used again: it is used again under a different key.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let keyring = audit::Keyring::generate()?;
//! let signing = audit::generate_signing_key()?;
//! let public = signing.verifying_key();
//! let log = audit::AuditLog::open(dir.path(), audit::Config::default(), keyring.clone(), signing)?;
//! log.append(&audit::Event {
//!     kind: audit::EventKind::Request,
//!     tenant: Some("physics".into()),
//!     route: Some("/metrics".into()),
//!     status: Some(200),
//!     ..Default::default()
//! })?;
//! log.close()?;
//! let report = audit::verify(dir.path(), Some(&public))?;
//! assert_eq!(report.events, 1);
//! let events: Vec<_> = audit::export(dir.path(), &keyring, None, None, Some("physics"))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(events[0]["event"]["status"], 200);
//! # Ok(())
//! # }
//! ```

mod checkpoint;
mod event;
mod export;
mod format;
mod keys;
mod scan;
mod time;
mod verify;
mod writer;

pub use checkpoint::Checkpoint;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use event::{Decision, Event, EventKind};
pub use export::{export, export_with, Export, ExportError, ExportFilter};
pub use format::{Commitment, LogId};
pub use keys::{
    fingerprint, generate_signing_key, load_public_key, load_signing_key, rotate_key,
    save_public_key, save_signing_key, KeyError, KeyId, Keyring, KEYRING_FORMAT,
};
pub use time::{format_rfc3339_us, parse_time};
pub use verify::{
    checkpoints, checkpoints_from, verify, verify_with, Reason, TornTail, VerifyError,
    VerifyOptions, VerifyReport,
};
pub use writer::{
    AppendError, AuditLog, CheckpointHook, Config, OpenError, Pending, Receipt, MAX_EVENT_BYTES,
};

/// Test hooks for the crate's own tamper and crash tests; not part of the stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::format::{chain_hash, segment_file_name, segment_key, Header, Kind};
    pub use crate::scan::{list_segments, scan_bytes, scan_file, Frame, Scan};

    /// Recomputes the CRC of the frame starting at `offset` (an attacker who knows the
    /// format can always do this; tests use it to get past the checksum).
    pub fn fix_crc(data: &mut [u8], offset: usize) {
        let len = u32::from_le_bytes([
            data[offset + 4],
            data[offset + 5],
            data[offset + 6],
            data[offset + 7],
        ]) as usize;
        let end = offset + 8 + len;
        let crc = crc32fast::hash(&data[offset..end]);
        data[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    }

    /// The key a segment's events are encrypted under, from its open record's salt.
    pub fn segment_data_key(
        keyring: &crate::Keyring,
        open: &Header,
        open_body: &[u8],
    ) -> Option<[u8; 32]> {
        let master = keyring.key(open.key_id)?;
        let salt = open_body.get(..crate::format::SALT_LEN)?;
        Some(*segment_key(
            master,
            salt,
            open.log_id,
            open.segment,
            open.key_id,
        ))
    }

    /// Encrypts `plaintext` as record `header` under `key` (to forge re-encrypted records).
    pub fn encrypt(key: &[u8; 32], header: &Header, plaintext: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{Aead, Payload};
        use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
        let cipher = Aes256Gcm::new(key.into());
        cipher
            .encrypt(
                Nonce::from_slice(&crate::format::nonce(header.seq)),
                Payload {
                    msg: plaintext,
                    aad: &header.encode(),
                },
            )
            .unwrap_or_default()
    }

    /// Builds one frame.
    pub fn frame(header: &Header, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::format::push_frame(&mut out, &header.encode(), body);
        out
    }
}
