//! slurmrestd's JSON formatting, byte for byte, and a small ordered JSON tree for the
//! little documents.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::io::{self, BufWriter, Write};

/// Ordered JSON object literal for [`J`] trees: `obj! { "key": value, ... }`.
macro_rules! obj {
    ($($k:literal : $v:expr),* $(,)?) => {
        $crate::json::J::O(vec![$(($k, $crate::json::J::from($v))),*])
    };
}

/// serde_json formatter that reproduces slurmrestd's serializer byte for byte: two-space
/// pretty printing, `/` escaped as `\/`, and empty arrays/objects still broken over two lines.
pub(crate) struct SlurmFormatter {
    pub(crate) level: usize,
}

pub(crate) const SPACES: &[u8; 64] =
    b"                                                                ";

pub(crate) fn indent<W: ?Sized + Write>(w: &mut W, level: usize) -> io::Result<()> {
    let mut n = level * 2;
    while n > 0 {
        let k = n.min(SPACES.len());
        w.write_all(&SPACES[..k])?;
        n -= k;
    }
    Ok(())
}

impl serde_json::ser::Formatter for SlurmFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        w.write_all(b"\n")?;
        indent(w, self.level)?;
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        indent(w, self.level)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        w.write_all(b"\n")?;
        indent(w, self.level)?;
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        indent(w, self.level)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        Ok(())
    }
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        frag: &str,
    ) -> io::Result<()> {
        let mut rest = frag;
        while let Some(p) = rest.find('/') {
            w.write_all(&rest.as_bytes()[..p])?;
            w.write_all(b"\\/")?;
            rest = &rest[p + 1..];
        }
        w.write_all(rest.as_bytes())
    }
}

pub(crate) fn to_slurm_json<T: Serialize + ?Sized, W: Write>(
    w: &mut W,
    level: usize,
    v: &T,
) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, SlurmFormatter { level });
    v.serialize(&mut ser).map_err(io::Error::from)
}

#[derive(Clone, Copy)]
pub(crate) enum Api {
    Slurm,
    Slurmdb,
}

/// Writes `{ "meta": ..., "errors": [], "<key>": ` so the caller can stream the payload.
pub(crate) fn write_head<W: Write>(w: &mut W, api: Api, key: &str) -> io::Result<()> {
    let (ty, name) = match api {
        Api::Slurm => ("openapi/v0.0.38", "Slurm OpenAPI v0.0.38"),
        Api::Slurmdb => ("openapi/dbv0.0.38", "Slurm OpenAPI DB v0.0.38"),
    };
    let meta = obj! {
        "plugin": obj! { "type": ty, "name": name },
        "Slurm": obj! {
            "version": obj! { "major": 22u32, "micro": 8u32, "minor": 5u32 },
            "release": "22.05.8",
        },
    };
    w.write_all(b"{\n  \"meta\": ")?;
    to_slurm_json(w, 1, &meta)?;
    write!(w, ",\n  \"errors\": [\n  ],\n  \"{key}\": ")
}

/// Streams a whole document whose payload is a list, one element at a time, so a
/// 100,000-job document is never held in memory.
pub(crate) fn write_list_doc<I, T>(
    w: &mut dyn Write,
    api: Api,
    key: &str,
    items: I,
) -> io::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Serialize,
{
    let mut out = BufWriter::with_capacity(1 << 16, w);
    write_head(&mut out, api, key)?;
    out.write_all(b"[")?;
    let mut first = true;
    for item in items {
        out.write_all(if first { b"\n    " } else { b",\n    " })?;
        first = false;
        to_slurm_json(&mut out, 2, &item)?;
    }
    out.write_all(b"\n  ]\n}")?;
    out.flush()
}

/// A small ordered JSON tree for the little documents, where key order matters but
/// a dedicated struct per nested object would be noise.
#[derive(Debug, Clone)]
pub(crate) enum J {
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    Str(&'static str),
    S(String),
    A(Vec<J>),
    O(Vec<(&'static str, J)>),
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::U(n) => s.serialize_u64(*n),
            J::I(n) => s.serialize_i64(*n),
            J::F(x) => s.serialize_f64(*x),
            J::Str(x) => s.serialize_str(x),
            J::S(x) => s.serialize_str(x),
            J::A(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for x in v {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            J::O(v) => {
                let mut m = s.serialize_map(Some(v.len()))?;
                for (k, x) in v {
                    m.serialize_entry(k, x)?;
                }
                m.end()
            }
        }
    }
}

impl From<()> for J {
    fn from(_: ()) -> J {
        J::Null
    }
}
impl From<bool> for J {
    fn from(b: bool) -> J {
        J::Bool(b)
    }
}
impl From<u32> for J {
    fn from(n: u32) -> J {
        J::U(n.into())
    }
}
impl From<u64> for J {
    fn from(n: u64) -> J {
        J::U(n)
    }
}
impl From<i32> for J {
    fn from(n: i32) -> J {
        J::I(n.into())
    }
}
impl From<f64> for J {
    fn from(x: f64) -> J {
        J::F(x)
    }
}
impl From<&'static str> for J {
    fn from(s: &'static str) -> J {
        J::Str(s)
    }
}
impl From<String> for J {
    fn from(s: String) -> J {
        J::S(s)
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> J {
        J::A(v)
    }
}
impl From<Vec<&'static str>> for J {
    fn from(v: Vec<&'static str>) -> J {
        J::A(v.into_iter().map(J::Str).collect())
    }
}
impl<T: Into<J>> From<Option<T>> for J {
    fn from(o: Option<T>) -> J {
        o.map_or(J::Null, Into::into)
    }
}

pub(crate) fn empty() -> J {
    J::A(Vec::new())
}
