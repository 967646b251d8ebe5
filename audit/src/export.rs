//! The exporter: decrypted records as JSON values, filtered by time and tenant.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::format::{nonce, segment_cipher, Kind, SALT_LEN};
use crate::keys::Keyring;
use crate::scan::{first_time_us, list_segments, scan_file, Scan};
use crate::time::{format_rfc3339_us, to_unix_us};

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("segment {segment}: damaged at byte {offset}; run verify")]
    Damaged { segment: u64, offset: usize },
    #[error("record {seq}: the keyring has no key {key_id}")]
    UnknownKey { seq: u64, key_id: u32 },
    #[error("record {seq}: decryption failed (wrong key or altered record)")]
    DecryptFailed { seq: u64 },
    #[error("record {seq}: the decrypted event is not JSON: {reason}")]
    NotJson { seq: u64, reason: String },
}

/// Which events to export. `None` means unbounded.
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    /// Records at or after this time.
    pub from: Option<SystemTime>,
    /// Records before this time.
    pub to: Option<SystemTime>,
    /// Events whose `tenant` field equals this.
    pub tenant: Option<String>,
}

/// Decrypts the events of the log in `dir` that pass the filter, oldest first.
///
/// Each item is `{"seq", "time", "segment", "key_id", "event"}`, one per record; print each
/// on its own line for JSON lines. An error item ends the iteration. The exporter checks
/// framing and AES-GCM authentication of what it decrypts, not the chain: run
/// [`crate::verify`] first. With a `from` time, segments that end before it are not read
/// (the next segment's first record time says so).
pub fn export(
    dir: &Path,
    keyring: &Keyring,
    from: Option<SystemTime>,
    to: Option<SystemTime>,
    tenant: Option<&str>,
) -> Export {
    export_with(
        dir,
        keyring,
        ExportFilter {
            from,
            to,
            tenant: tenant.map(str::to_owned),
        },
    )
}

/// [`export`] with an [`ExportFilter`].
pub fn export_with(dir: &Path, keyring: &Keyring, filter: ExportFilter) -> Export {
    let (segments, error) = match list_segments(dir) {
        Ok(s) => (s, None),
        Err(source) => (
            Vec::new(),
            Some(ExportError::Io {
                path: dir.to_owned(),
                source,
            }),
        ),
    };
    Export {
        keyring: keyring.clone(),
        from_us: filter.from.map(to_unix_us),
        to_us: filter.to.map(to_unix_us),
        tenant: filter.tenant,
        segments: segments.into_iter(),
        current: None,
        error,
        done: false,
    }
}

struct Current {
    number: u64,
    scan: Scan,
    next: usize,
    cipher: Option<Aes256Gcm>,
}

/// Iterator over exported events; see [`export`].
pub struct Export {
    keyring: Keyring,
    from_us: Option<u64>,
    to_us: Option<u64>,
    tenant: Option<String>,
    segments: std::vec::IntoIter<(u64, PathBuf)>,
    current: Option<Current>,
    error: Option<ExportError>,
    done: bool,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export").finish_non_exhaustive()
    }
}

impl Export {
    fn step(&mut self) -> Option<Result<serde_json::Value, ExportError>> {
        loop {
            if self.current.is_none() {
                let (number, path) = self.segments.next()?;
                // Times never decrease along the chain: when the next segment starts before
                // `from`, every record of this one is earlier still, so it is not read at all
                // (a time range out of years of segments reads only the segments it covers).
                if let (Some(from), Some((_, next))) =
                    (self.from_us, self.segments.as_slice().first())
                {
                    if first_time_us(next).ok().flatten().is_some_and(|t| t < from) {
                        continue;
                    }
                }
                let scan = match scan_file(&path) {
                    Ok(s) => s,
                    Err(source) => return Some(Err(ExportError::Io { path, source })),
                };
                let is_last = self.segments.len() == 0;
                if let Some(stop) = &scan.stop {
                    if stop.frames_after || !is_last {
                        return Some(Err(ExportError::Damaged {
                            segment: number,
                            offset: stop.offset,
                        }));
                    }
                }
                self.current = Some(Current {
                    number,
                    scan,
                    next: 0,
                    cipher: None,
                });
            }
            let cur = self.current.as_mut()?;
            let Some(frame) = cur.scan.frames.get(cur.next).cloned() else {
                self.current = None;
                continue;
            };
            cur.next += 1;
            let h = &frame.header;
            match h.kind {
                Kind::Open => {
                    let body = cur.scan.body(&frame);
                    cur.cipher = match (self.keyring.key(h.key_id), body.get(..SALT_LEN)) {
                        (Some(k), Some(salt)) => {
                            Some(segment_cipher(k, salt, h.log_id, cur.number, h.key_id))
                        }
                        _ => None,
                    };
                    continue;
                }
                Kind::Checkpoint | Kind::Seal => continue,
                Kind::Event => {}
            }
            if self.from_us.is_some_and(|f| h.time_us < f) {
                continue;
            }
            if self.to_us.is_some_and(|t| h.time_us >= t) {
                // Times never decrease along the chain: nothing later can match.
                self.segments = Vec::new().into_iter();
                self.current = None;
                return None;
            }
            let Some(cipher) = &cur.cipher else {
                return Some(Err(ExportError::UnknownKey {
                    seq: h.seq,
                    key_id: h.key_id,
                }));
            };
            let plain = match cipher.decrypt(
                Nonce::from_slice(&nonce(h.seq)),
                Payload {
                    msg: cur.scan.body(&frame),
                    aad: cur.scan.header_bytes(&frame),
                },
            ) {
                Ok(p) => zeroize::Zeroizing::new(p),
                Err(_) => return Some(Err(ExportError::DecryptFailed { seq: h.seq })),
            };
            let event: serde_json::Value = match serde_json::from_slice(&plain) {
                Ok(v) => v,
                Err(e) => {
                    return Some(Err(ExportError::NotJson {
                        seq: h.seq,
                        reason: e.to_string(),
                    }))
                }
            };
            if let Some(t) = &self.tenant {
                if event.get("tenant").and_then(|v| v.as_str()) != Some(t.as_str()) {
                    continue;
                }
            }
            return Some(Ok(serde_json::json!({
                "seq": h.seq,
                "time": format_rfc3339_us(h.time_us),
                "segment": h.segment,
                "key_id": h.key_id,
                "event": event,
            })));
        }
    }
}

impl Iterator for Export {
    type Item = Result<serde_json::Value, ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        let item = self.step();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}
