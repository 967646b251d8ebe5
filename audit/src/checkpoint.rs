//! Signed checkpoints: the statements an auditor can publish and check a log against.

use std::time::SystemTime;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::format::{
    chain_hash, checkpoint_message, hex, unhex, Commitment, Header, Kind, LogId, COMMITMENT_LEN,
    HEADER_LEN, NO_CHECKPOINT, SIG_LEN,
};
use crate::time::{format_rfc3339_us, from_unix_us};

/// Length of a checkpoint or seal record's body: commitment (88) + signature (64).
pub(crate) const CHECKPOINT_BODY_LEN: usize = COMMITMENT_LEN + SIG_LEN;

/// A signed statement: "log `log_id` had, at `seq`, the chain head `head_hash`; its retained
/// history started at segment `oldest_segment` (record `oldest_seq`, from hash `start_hash`);
/// the checkpoint before this one was record `prev_checkpoint_seq` with hash
/// `prev_checkpoint_hash`". A seal is the last checkpoint of a segment.
///
/// Because `head_hash` chains over every earlier record, one valid checkpoint vouches for
/// the whole prefix before it. Publish the latest one somewhere the gateway's host cannot
/// rewrite (syslog server, ticket, WORM bucket): a log whose tail was deleted no longer
/// reaches it, and [`crate::verify_with`] reports `Truncated`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_id: LogId,
    pub segment: u64,
    /// Sequence number of the checkpoint record itself.
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub time_us: u64,
    /// The data key id active in the segment (not secret; part of the signed header).
    pub key_id: u32,
    /// Chain hash of the record just before this checkpoint.
    pub head_hash: [u8; 32],
    /// The first segment of the retained log (moved only by a signed retention checkpoint).
    pub oldest_segment: u64,
    /// Sequence number of that segment's open record.
    pub oldest_seq: u64,
    /// The chain hash the retained log starts from (zeros at genesis).
    pub start_hash: [u8; 32],
    /// The previous checkpoint or seal (`u64::MAX` when there was none).
    pub prev_checkpoint_seq: u64,
    /// Its chain hash (zeros when none).
    pub prev_checkpoint_hash: [u8; 32],
    /// Whether this is a segment's seal.
    pub sealed: bool,
    pub signature: [u8; SIG_LEN],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointJson {
    log_id: String,
    segment: u64,
    seq: u64,
    time: String,
    time_us: u64,
    key_id: u32,
    head_hash: String,
    record_hash: String,
    oldest_segment: u64,
    oldest_seq: u64,
    start_hash: String,
    /// Absent when there was no earlier checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prev_checkpoint_seq: Option<u64>,
    prev_checkpoint_hash: String,
    sealed: bool,
    /// The exact bytes the signature covers, hex (what `openssl pkeyutl -verify` checks).
    signed_hex: String,
    signature: String,
}

impl Checkpoint {
    pub(crate) fn header(&self) -> Header {
        Header {
            kind: if self.sealed {
                Kind::Seal
            } else {
                Kind::Checkpoint
            },
            log_id: self.log_id,
            segment: self.segment,
            seq: self.seq,
            time_us: self.time_us,
            key_id: self.key_id,
            prev_hash: self.head_hash,
        }
    }

    /// What this checkpoint says about the history before it.
    pub fn commitment(&self) -> Commitment {
        Commitment {
            oldest_segment: self.oldest_segment,
            oldest_seq: self.oldest_seq,
            start_hash: self.start_hash,
            prev_checkpoint_seq: self.prev_checkpoint_seq,
            prev_checkpoint_hash: self.prev_checkpoint_hash,
        }
    }

    pub(crate) fn body(&self) -> [u8; CHECKPOINT_BODY_LEN] {
        let mut b = [0u8; CHECKPOINT_BODY_LEN];
        b[..COMMITMENT_LEN].copy_from_slice(&self.commitment().encode());
        b[COMMITMENT_LEN..].copy_from_slice(&self.signature);
        b
    }

    /// Builds an unsigned checkpoint record's fields (the writer signs it).
    pub(crate) fn unsigned(header: &Header, c: &Commitment) -> Checkpoint {
        Checkpoint {
            log_id: header.log_id,
            segment: header.segment,
            seq: header.seq,
            time_us: header.time_us,
            key_id: header.key_id,
            head_hash: header.prev_hash,
            oldest_segment: c.oldest_segment,
            oldest_seq: c.oldest_seq,
            start_hash: c.start_hash,
            prev_checkpoint_seq: c.prev_checkpoint_seq,
            prev_checkpoint_hash: c.prev_checkpoint_hash,
            sealed: header.kind == Kind::Seal,
            signature: [0; SIG_LEN],
        }
    }

    /// Whether `self` comes right after `prev` in the checkpoint chain: the same log, a later
    /// record, which names `prev` as its predecessor and does not move the log's start back.
    /// Signatures are not checked here.
    pub fn extends(&self, prev: &Checkpoint) -> bool {
        self.log_id == prev.log_id
            && self.seq > prev.seq
            && self.prev_checkpoint_seq == prev.seq
            && self.prev_checkpoint_hash == prev.record_hash()
            && self.oldest_segment >= prev.oldest_segment
            && self.time_us >= prev.time_us
    }

    /// Rebuilds a checkpoint from a record's header and body.
    pub(crate) fn from_record(header: &Header, body: &[u8]) -> Option<Checkpoint> {
        if body.len() != CHECKPOINT_BODY_LEN {
            return None;
        }
        let c = Commitment::decode(&body[..COMMITMENT_LEN])?;
        let sealed = match header.kind {
            Kind::Seal => true,
            Kind::Checkpoint => false,
            _ => return None,
        };
        Some(Checkpoint {
            log_id: header.log_id,
            segment: header.segment,
            seq: header.seq,
            time_us: header.time_us,
            key_id: header.key_id,
            head_hash: header.prev_hash,
            oldest_segment: c.oldest_segment,
            oldest_seq: c.oldest_seq,
            start_hash: c.start_hash,
            prev_checkpoint_seq: c.prev_checkpoint_seq,
            prev_checkpoint_hash: c.prev_checkpoint_hash,
            sealed,
            signature: body[COMMITMENT_LEN..].try_into().ok()?,
        })
    }

    /// The signed message.
    pub(crate) fn message(&self) -> Vec<u8> {
        let header: [u8; HEADER_LEN] = self.header().encode();
        checkpoint_message(&header, &self.commitment())
    }

    /// Whether `key` signed this checkpoint.
    pub fn verify_signature(&self, key: &VerifyingKey) -> bool {
        let sig = Signature::from_bytes(&self.signature);
        key.verify(&self.message(), &sig).is_ok()
    }

    /// Chain hash of the checkpoint record itself (what the next record links to).
    pub fn record_hash(&self) -> [u8; 32] {
        chain_hash(&self.header().encode(), &self.body())
    }

    /// When the checkpoint was written.
    pub fn time(&self) -> SystemTime {
        from_unix_us(self.time_us)
    }

    /// One line of JSON: what to publish, and what `audit verify` can check a log against.
    pub fn to_json_line(&self) -> String {
        let j = CheckpointJson {
            log_id: self.log_id.to_string(),
            segment: self.segment,
            seq: self.seq,
            time: format_rfc3339_us(self.time_us),
            time_us: self.time_us,
            key_id: self.key_id,
            head_hash: hex(&self.head_hash),
            record_hash: hex(&self.record_hash()),
            oldest_segment: self.oldest_segment,
            oldest_seq: self.oldest_seq,
            start_hash: hex(&self.start_hash),
            prev_checkpoint_seq: (self.prev_checkpoint_seq != NO_CHECKPOINT)
                .then_some(self.prev_checkpoint_seq),
            prev_checkpoint_hash: hex(&self.prev_checkpoint_hash),
            sealed: self.sealed,
            signed_hex: hex(&self.message()),
            signature: hex(&self.signature),
        };
        serde_json::to_string(&j).unwrap_or_default()
    }

    /// Parses [`Checkpoint::to_json_line`]'s output. The `record_hash` must match the other
    /// fields; the signature is not checked here.
    pub fn from_json_line(line: &str) -> Result<Checkpoint, String> {
        let j: CheckpointJson = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let cp = Checkpoint {
            log_id: LogId(unhex(&j.log_id).ok_or("log_id is not 32 hex digits")?),
            segment: j.segment,
            seq: j.seq,
            time_us: j.time_us,
            key_id: j.key_id,
            head_hash: unhex(&j.head_hash).ok_or("head_hash is not 64 hex digits")?,
            oldest_segment: j.oldest_segment,
            oldest_seq: j.oldest_seq,
            start_hash: unhex(&j.start_hash).ok_or("start_hash is not 64 hex digits")?,
            prev_checkpoint_seq: j.prev_checkpoint_seq.unwrap_or(NO_CHECKPOINT),
            prev_checkpoint_hash: unhex(&j.prev_checkpoint_hash)
                .ok_or("prev_checkpoint_hash is not 64 hex digits")?,
            sealed: j.sealed,
            signature: unhex(&j.signature).ok_or("signature is not 128 hex digits")?,
        };
        if hex(&cp.record_hash()) != j.record_hash.to_ascii_lowercase() {
            return Err("record_hash does not match the checkpoint's fields".to_owned());
        }
        if hex(&cp.message()) != j.signed_hex.to_ascii_lowercase() {
            return Err("signed_hex does not match the checkpoint's fields".to_owned());
        }
        Ok(cp)
    }
}
