//! Reading segment files: split the bytes into frames and say where and why framing stops.
//!
//! Shared by the writer (crash recovery), the verifier and the exporter. It checks framing
//! and checksums only; what the records mean is the verifier's business.

use std::path::{Path, PathBuf};

use crate::format::{
    chain_hash, parse_segment_file_name, Header, FRAME_OVERHEAD, HEADER_LEN, MAGIC, MAX_RECORD_LEN,
};

/// One well-framed record inside a segment's bytes.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Offset of the frame's magic in the file.
    pub offset: usize,
    /// Offset just past the frame's checksum.
    pub end: usize,
    pub header: Header,
    /// Range of the body (after the header) in the file's bytes.
    pub body: std::ops::Range<usize>,
    /// Range of the encoded header in the file's bytes.
    pub header_range: std::ops::Range<usize>,
    /// The record's chain hash.
    pub hash: [u8; 32],
}

/// Why framing stopped before the end of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFault {
    /// Fewer bytes left than a frame needs, or than its length field announces.
    Short,
    /// The four magic bytes are wrong.
    BadMagic,
    /// The length field is impossible.
    BadLength,
    /// The CRC-32 does not match the bytes.
    BadChecksum,
    /// The checksum matches but the header is not a header of this format.
    BadHeader,
}

/// Where framing stopped.
#[derive(Clone, Debug)]
pub struct Stop {
    pub offset: usize,
    pub fault: FrameFault,
    /// Whether a well-formed frame exists anywhere after `offset`. A crash leaves only a torn
    /// tail; well-formed frames after a bad one mean the file was damaged in the middle.
    pub frames_after: bool,
}

/// A segment file split into frames.
pub struct Scan {
    pub data: Vec<u8>,
    pub frames: Vec<Frame>,
    pub stop: Option<Stop>,
}

impl Scan {
    pub fn body(&self, f: &Frame) -> &[u8] {
        &self.data[f.body.clone()]
    }

    pub fn header_bytes(&self, f: &Frame) -> &[u8] {
        &self.data[f.header_range.clone()]
    }
}

/// Tries to read one frame at `offset`.
fn frame_at(data: &[u8], offset: usize) -> Result<Frame, FrameFault> {
    let rest = &data[offset..];
    if rest.len() < 8 {
        return Err(FrameFault::Short);
    }
    if rest[..4] != MAGIC {
        return Err(FrameFault::BadMagic);
    }
    let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    if !(HEADER_LEN..=MAX_RECORD_LEN).contains(&len) {
        return Err(FrameFault::BadLength);
    }
    let total = len + FRAME_OVERHEAD;
    if rest.len() < total {
        return Err(FrameFault::Short);
    }
    let crc_at = 8 + len;
    let stored = u32::from_le_bytes([
        rest[crc_at],
        rest[crc_at + 1],
        rest[crc_at + 2],
        rest[crc_at + 3],
    ]);
    if crc32fast::hash(&rest[..crc_at]) != stored {
        return Err(FrameFault::BadChecksum);
    }
    let header = Header::decode(&rest[8..8 + HEADER_LEN]).ok_or(FrameFault::BadHeader)?;
    let header_range = offset + 8..offset + 8 + HEADER_LEN;
    let body = offset + 8 + HEADER_LEN..offset + crc_at;
    let hash = chain_hash(&data[header_range.clone()], &data[body.clone()]);
    Ok(Frame {
        offset,
        end: offset + total,
        header,
        body,
        header_range,
        hash,
    })
}

/// Splits bytes into frames.
pub fn scan_bytes(data: Vec<u8>) -> Scan {
    let mut frames = Vec::new();
    let mut offset = 0;
    let mut stop = None;
    while offset < data.len() {
        match frame_at(&data, offset) {
            Ok(f) => {
                offset = f.end;
                frames.push(f);
            }
            Err(fault) => {
                let frames_after = (offset + 1..data.len())
                    .filter(|&o| data[o..].starts_with(&MAGIC))
                    .any(|o| frame_at(&data, o).is_ok());
                stop = Some(Stop {
                    offset,
                    fault,
                    frames_after,
                });
                break;
            }
        }
    }
    Scan { data, frames, stop }
}

/// The header and chain hash of a segment's first record (its signed open record), reading
/// only that frame; `None` when the file does not start with a whole, intact frame.
pub fn first_frame(path: &Path) -> std::io::Result<Option<(Header, [u8; 32])>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)?
        .take(4096)
        .read_to_end(&mut head)?;
    Ok(frame_at(&head, 0).ok().map(|f| (f.header, f.hash)))
}

/// The time of a segment's first record; see [`first_frame`].
pub fn first_time_us(path: &Path) -> std::io::Result<Option<u64>> {
    Ok(first_frame(path)?.map(|(h, _)| h.time_us))
}

/// Whether the bytes of `data` from `offset` on are what a crash can leave after the last
/// complete record: the writer appends whole frames with one `write`, so a crash leaves a
/// *prefix* of a frame (the frame marker, a possible length, fewer bytes than that length
/// announces, a header this format understands), possibly followed by zeros (blocks the
/// file system allocated but never wrote). Anything else was put there by someone.
pub fn crash_tail(data: &[u8], offset: usize) -> bool {
    let tail = data.get(offset..).unwrap_or_default();
    let end = tail.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let t = &tail[..end];
    if t.is_empty() {
        return true;
    }
    let marker = t.len().min(MAGIC.len());
    if t[..marker] != MAGIC[..marker] {
        return false;
    }
    if t.len() < 8 {
        return true;
    }
    let len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]) as usize;
    if !(HEADER_LEN..=MAX_RECORD_LEN).contains(&len) || t.len() >= len + FRAME_OVERHEAD {
        return false;
    }
    t.len() < 8 + HEADER_LEN || Header::decode(&t[8..8 + HEADER_LEN]).is_some()
}

/// Reads and splits one segment file.
pub fn scan_file(path: &Path) -> std::io::Result<Scan> {
    Ok(scan_bytes(std::fs::read(path)?))
}

/// The segment files of a log directory, sorted by segment number.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(n) = name.to_str().and_then(parse_segment_file_name) {
            out.push((n, entry.path()));
        }
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}
