//! Streaming reader for Slurm's `{"meta":..,"errors":[..],"jobs":[ {..}, {..} ]}` documents.
//!
//! 100,000 jobs are about 350 MB of JSON: reading that whole into memory, let alone into a DOM,
//! is over the memory budget. This reader keeps a sliding window of the input, walks the top
//! object by hand and hands each array element to serde as a slice, so every element is
//! parsed once, with strings borrowed from the window, and memory stays at the window size
//! plus one element.

use super::ParseError;
use serde::Deserialize;
use std::io::Read;

/// Bytes read from the source per refill.
const CHUNK: usize = 1 << 20;
/// One JSON value (a job, a node) larger than this is refused as hostile.
pub const MAX_VALUE_BYTES: usize = 64 << 20;

pub struct DocReader<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Bytes dropped from the front of `buf`, for error offsets.
    base: u64,
}

/// Outcome of parsing one value out of a byte slice.
pub type Parsed<T> = Result<Option<(T, usize)>, serde_json::Error>;

/// Parses the first JSON value in `bytes`; returns it with the bytes it used.
/// `Ok(None)` when `bytes` holds only white space.
pub fn parse_one<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Parsed<T> {
    let mut it = serde_json::Deserializer::from_slice(bytes).into_iter::<T>();
    match it.next() {
        Some(Ok(v)) => Ok(Some((v, it.byte_offset()))),
        Some(Err(e)) => Err(e),
        None => Ok(None),
    }
}

/// [`parse_one`] for values that own their data (keys, `meta`, skipped values).
pub fn parse_owned<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Parsed<T> {
    parse_one::<T>(bytes)
}

impl<R: Read> DocReader<R> {
    pub fn new(src: R) -> Self {
        DocReader {
            src,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            base: 0,
        }
    }

    /// Byte offset in the whole input of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Read size: small at first, so a 4 KB document does not pay for zeroing a 1 MiB
    /// buffer, growing to [`CHUNK`] for large streams.
    fn chunk(&self) -> usize {
        (self.base as usize + self.buf.len())
            .saturating_mul(2)
            .clamp(64 << 10, CHUNK)
    }

    /// Reads at least `want` more bytes unless the input ends first.
    fn fill(&mut self, want: usize) -> Result<(), ParseError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let target = self.buf.len() + want.max(self.chunk());
        while !self.eof && self.buf.len() < target {
            let old = self.buf.len();
            self.buf.resize(target, 0);
            match self.src.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(old + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(ParseError::Io(e.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Next non-white-space byte, not consumed; `None` at the end of input.
    pub fn peek(&mut self) -> Result<Option<u8>, ParseError> {
        loop {
            while self.pos < self.buf.len() {
                let b = self.buf[self.pos];
                if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    self.pos += 1;
                } else {
                    return Ok(Some(b));
                }
            }
            if self.eof {
                return Ok(None);
            }
            self.fill(self.chunk())?;
        }
    }

    /// Consumes `want` after optional white space.
    pub fn expect(&mut self, want: u8, what: &str) -> Result<(), ParseError> {
        match self.peek()? {
            Some(b) if b == want => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => Err(ParseError::Syntax {
                offset: self.offset(),
                msg: format!("expected {what}, found {}", shown(b)),
            }),
            None => Err(ParseError::Truncated {
                offset: self.offset(),
            }),
        }
    }

    /// Parses the next value with `f`, which gets the unread window and returns the value and
    /// the bytes it used. On a value cut by the window's end, reads more and calls `f` again,
    /// so `f` must not have side effects.
    pub fn next_with<T>(&mut self, mut f: impl FnMut(&[u8]) -> Parsed<T>) -> Result<T, ParseError> {
        let mut want = self.chunk();
        loop {
            self.peek()?;
            let window = &self.buf[self.pos..];
            let outcome = f(window);
            let avail = window.len();
            match outcome {
                // A value that ends exactly at the window's end may be a cut number.
                Ok(Some((v, used))) if used < avail || self.eof => {
                    self.pos += used;
                    return Ok(v);
                }
                Ok(None) if self.eof => {
                    return Err(ParseError::Truncated {
                        offset: self.offset(),
                    })
                }
                Err(e) if !e.is_eof() || self.eof => {
                    return Err(if e.is_eof() {
                        ParseError::Truncated {
                            offset: self.offset() + avail as u64,
                        }
                    } else {
                        ParseError::Syntax {
                            offset: self.offset() + err_offset(window, &e),
                            msg: e.to_string(),
                        }
                    })
                }
                _ => {
                    if avail >= MAX_VALUE_BYTES {
                        return Err(ParseError::TooLarge {
                            offset: self.offset(),
                            limit: MAX_VALUE_BYTES,
                        });
                    }
                    // Grow geometrically so one huge value costs linear, not quadratic, time.
                    self.fill(want)?;
                    want = want.saturating_mul(2).min(MAX_VALUE_BYTES);
                }
            }
        }
    }

    /// Skips one value of any kind.
    pub fn skip_value(&mut self) -> Result<(), ParseError> {
        self.next_with(parse_owned::<serde::de::IgnoredAny>)
            .map(|_| ())
    }

    /// Reads an object key and its colon.
    pub fn key(&mut self) -> Result<String, ParseError> {
        let k: String = self.next_with(parse_owned::<String>)?;
        self.expect(b':', "':' after an object key")?;
        Ok(k)
    }

    /// Walks the top-level object, calling `on_key` for each key with the reader positioned
    /// on its value; `on_key` must consume the value.
    pub fn walk_object(
        &mut self,
        mut on_key: impl FnMut(&str, &mut Self) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        self.expect(b'{', "a JSON object")?;
        if self.peek()? == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            on_key(&key, self)?;
            match self.peek()? {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b) => {
                    return Err(ParseError::Syntax {
                        offset: self.offset(),
                        msg: format!("expected ',' or '}}' in an object, found {}", shown(b)),
                    })
                }
                None => {
                    return Err(ParseError::Truncated {
                        offset: self.offset(),
                    })
                }
            }
        }
    }

    /// Streams the elements of the array the reader is positioned on through `parse`, handing
    /// each parsed element to `sink`. A `null` array counts as empty.
    pub fn for_each_element<T>(
        &mut self,
        mut parse: impl FnMut(&[u8]) -> Parsed<T>,
        mut sink: impl FnMut(T),
    ) -> Result<(), ParseError> {
        if self.peek()? == Some(b'n') {
            return self.skip_value();
        }
        self.expect(b'[', "a JSON array")?;
        if self.peek()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let v = self.next_with(&mut parse)?;
            sink(v);
            match self.peek()? {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b) => {
                    return Err(ParseError::Syntax {
                        offset: self.offset(),
                        msg: format!("expected ',' or ']' in an array, found {}", shown(b)),
                    })
                }
                None => {
                    return Err(ParseError::Truncated {
                        offset: self.offset(),
                    })
                }
            }
        }
    }

    /// After the top object: only white space may follow.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        match self.peek()? {
            None => Ok(()),
            Some(b) => Err(ParseError::Syntax {
                offset: self.offset(),
                msg: format!("trailing data after the document: {}", shown(b)),
            }),
        }
    }
}

fn shown(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// serde_json reports line/column; turn that back into a byte offset within `window`.
fn err_offset(window: &[u8], e: &serde_json::Error) -> u64 {
    let (line, col) = (e.line(), e.column());
    let mut cur_line = 1;
    for (i, &b) in window.iter().enumerate() {
        if cur_line == line {
            return (i + col.saturating_sub(1)).min(window.len()) as u64;
        }
        if b == b'\n' {
            cur_line += 1;
        }
    }
    window.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte at a time: every value crosses a window edge.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || out.is_empty() {
                return Ok(0);
            }
            out[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    fn collect(doc: &[u8]) -> Result<(Vec<u64>, Vec<String>), ParseError> {
        let mut r = DocReader::new(Trickle(doc));
        let mut nums = Vec::new();
        let mut keys = Vec::new();
        r.walk_object(|k, r| {
            keys.push(k.to_owned());
            if k == "items" {
                r.for_each_element(parse_owned::<u64>, |v| nums.push(v))
            } else {
                r.skip_value()
            }
        })?;
        r.finish()?;
        Ok((nums, keys))
    }

    #[test]
    fn numbers_cut_at_window_edges_are_read_whole() {
        let (nums, keys) =
            collect(br#" {"meta": {"a": [1, 2]}, "items": [12345, 678, 9], "z": null} "#)
                .expect("valid document");
        assert_eq!(nums, [12345, 678, 9]);
        assert_eq!(keys, ["meta", "items", "z"]);
    }

    #[test]
    fn truncated_document_is_an_error_with_offset() {
        let err = collect(br#"{"items": [1, 2, 3"#).expect_err("truncated");
        assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
        let err = collect(br#"{"items": [1, 23"#).expect_err("truncated");
        assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
    }

    #[test]
    fn html_instead_of_json_names_the_byte() {
        let err = collect(b"<html>502 Bad Gateway</html>").expect_err("not json");
        assert!(err.to_string().contains("'<'"), "{err}");
    }

    #[test]
    fn empty_input_is_truncated_not_a_panic() {
        assert!(matches!(
            collect(b"").expect_err("empty"),
            ParseError::Truncated { .. }
        ));
        assert!(collect(b"{}").is_ok());
        assert!(collect(br#"{"items": null}"#).is_ok());
        assert!(collect(br#"{"items": []}"#).is_ok());
    }

    #[test]
    fn trailing_garbage_is_refused() {
        assert!(collect(br#"{"items": []} x"#).is_err());
    }

    #[test]
    fn bad_separator_is_a_syntax_error() {
        assert!(matches!(
            collect(br#"{"items": [1 2]}"#).expect_err("bad"),
            ParseError::Syntax { .. }
        ));
    }
}
