//! Values as Slurm writes them in any version, decoded without ever failing a document.
//!
//! The same quantity is `5`, `5.0`, `"5"`, `null`, `{"set":true,"infinite":false,"number":5}`
//! (v0.0.39+), or a `NO_VAL`/`INFINITE` sentinel (`4294967294`), depending on the Slurm
//! release and the field. A value of the wrong type becomes "unset", never an error: one odd
//! field must not cost the whole snapshot.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// Slurm's 32-bit "no value" and "infinite" sentinels, also seen in 64-bit fields.
const NO_VAL: u64 = 0xffff_fffe;
const INFINITE: u64 = 0xffff_ffff;

/// A tolerant number.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Flex {
    #[default]
    Unset,
    Infinite,
    Int(i64),
    Float(f64),
}

impl Flex {
    /// A non-negative integer, or `None` for unset, infinite, negative and sentinel values.
    pub fn u64(self) -> Option<u64> {
        match self {
            Flex::Int(i) if i >= 0 => {
                let u = i as u64;
                (u != NO_VAL && u != INFINITE).then_some(u)
            }
            Flex::Float(f) if f >= 0.0 && f.is_finite() && f < 9.0e15 => Some(f as u64),
            _ => None,
        }
    }

    /// Any finite number (negative allowed), sentinels excluded.
    pub fn f64(self) -> Option<f64> {
        match self {
            Flex::Int(i) => {
                let u = i as u64;
                (i < 0 || (u != NO_VAL && u != INFINITE)).then_some(i as f64)
            }
            Flex::Float(f) if f.is_finite() => Some(f),
            _ => None,
        }
    }

    pub fn i64(self) -> Option<i64> {
        match self {
            Flex::Int(i) if (i as u64) != NO_VAL && (i as u64) != INFINITE => Some(i),
            Flex::Float(f) if f.is_finite() && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        }
    }

    pub fn is_infinite(self) -> bool {
        matches!(self, Flex::Infinite)
    }

    fn from_str_value(s: &str) -> Flex {
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("infinite") {
            return Flex::Infinite;
        }
        if let Ok(i) = t.parse::<i64>() {
            return Flex::Int(i);
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Flex::Float(f),
            _ => Flex::Unset,
        }
    }
}

struct FlexVisitor;

impl<'de> Visitor<'de> for FlexVisitor {
    type Value = Flex;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number in any of Slurm's encodings")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Flex, E> {
        Ok(Flex::Unset)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flex, E> {
        Ok(Flex::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flex, E> {
        // NO_VAL64 / INFINITE64 and anything past i64 is not a real quantity.
        Ok(i64::try_from(v).map(Flex::Int).unwrap_or(Flex::Infinite))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Flex, E> {
        Ok(if v.is_finite() {
            Flex::Float(v)
        } else {
            Flex::Unset
        })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Flex, E> {
        Ok(Flex::from_str_value(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Flex, E> {
        Ok(Flex::Unset)
    }
    fn visit_none<E: de::Error>(self) -> Result<Flex, E> {
        Ok(Flex::Unset)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Flex, D::Error> {
        d.deserialize_any(FlexVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Flex, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Flex::Unset)
    }
    /// `{"set":bool,"infinite":bool,"number":N}` (v0.0.39+), and `{"return_code":{..}}` exit codes.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Flex, A::Error> {
        let mut set = true;
        let mut infinite = false;
        let mut number = Flex::Unset;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "set" => set = map.next_value::<BoolLike>()?.0,
                "infinite" => infinite = map.next_value::<BoolLike>()?.0,
                "number" | "return_code" => number = map.next_value::<Flex>()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(if infinite {
            Flex::Infinite
        } else if set {
            number
        } else {
            Flex::Unset
        })
    }
}

impl<'de> Deserialize<'de> for Flex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flex, D::Error> {
        d.deserialize_any(FlexVisitor)
    }
}

/// A bool that tolerates numbers and strings (`1`, `"true"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BoolLike(pub bool);

impl<'de> Deserialize<'de> for BoolLike {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BoolLike, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BoolLike;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<BoolLike, E> {
                Ok(BoolLike(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BoolLike, E> {
                Ok(BoolLike(v != 0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BoolLike, E> {
                Ok(BoolLike(v != 0))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<BoolLike, E> {
                Ok(BoolLike(v != 0.0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BoolLike, E> {
                Ok(BoolLike(matches!(
                    v.to_ascii_lowercase().as_str(),
                    "true" | "yes" | "1"
                )))
            }
            fn visit_unit<E: de::Error>(self) -> Result<BoolLike, E> {
                Ok(BoolLike(false))
            }
            fn visit_none<E: de::Error>(self) -> Result<BoolLike, E> {
                Ok(BoolLike(false))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<BoolLike, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BoolLike, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(BoolLike(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BoolLike, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(BoolLike(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string that tolerates numbers, bools and null; borrowed from the input when it can be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlexStr<'a>(pub Cow<'a, str>);

impl FlexStr<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for FlexStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FlexStr<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FlexStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr(Cow::Borrowed(if v { "true" } else { "false" })))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<FlexStr<'de>, E> {
                Ok(FlexStr::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<FlexStr<'de>, D::Error> {
                d.deserialize_any(V)
            }
            /// Newer releases turn some strings into lists (`features`); join them.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlexStr<'de>, A::Error> {
                let mut out = String::new();
                while let Some(s) = seq.next_element::<FlexStr<'de>>()? {
                    if !out.is_empty() {
                        out.push(',');
                    }
                    out.push_str(s.as_str());
                }
                Ok(FlexStr(Cow::Owned(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlexStr<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FlexStr::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of tokens given as a JSON array, one string (`"IDLE"`), or a comma list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrList<'a>(pub Vec<Cow<'a, str>>);

impl<'a> StrList<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|c| c.as_ref())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for StrList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StrList<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrList<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<FlexStr<'de>>()? {
                    if !s.is_empty() {
                        out.push(s.0);
                    }
                }
                Ok(StrList(out))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<StrList<'de>, E> {
                Ok(StrList(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(Cow::Borrowed)
                        .collect(),
                ))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrList<'de>, E> {
                Ok(StrList(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Cow::Owned(s.to_owned()))
                        .collect(),
                ))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StrList<'de>, E> {
                Ok(StrList::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<StrList<'de>, E> {
                Ok(StrList::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<StrList<'de>, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<StrList<'de>, E> {
                Ok(StrList::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<StrList<'de>, E> {
                Ok(StrList::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<StrList<'de>, E> {
                Ok(StrList::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<StrList<'de>, E> {
                Ok(StrList::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrList<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrList::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A nested object (`{"cpus":{"allocated":..}}`) that becomes `T::default()` when the value
/// is not an object, so a reshaped field never fails the record around it. `T`'s own fields
/// must be tolerant types (this module's), as every record's are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lenient<T>(pub T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Lenient<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Lenient<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Lenient)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lenient<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Lenient<T>, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_none<E: de::Error>(self) -> Result<Lenient<T>, E> {
                Ok(Lenient::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Lenient<T>, E> {
                Ok(Lenient::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Lenient<T>, E> {
                Ok(Lenient::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Lenient<T>, E> {
                Ok(Lenient::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Lenient<T>, E> {
                Ok(Lenient::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Lenient<T>, E> {
                Ok(Lenient::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Lenient<T>, E> {
                Ok(Lenient::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flex(s: &str) -> Flex {
        serde_json::from_str(s).expect("flex never fails on valid JSON")
    }

    #[test]
    fn numbers_in_every_encoding() {
        assert_eq!(flex("5").u64(), Some(5));
        assert_eq!(flex("5.0").u64(), Some(5));
        assert_eq!(flex("\"5\"").u64(), Some(5));
        assert_eq!(flex("null").u64(), None);
        assert_eq!(
            flex(r#"{"set":true,"infinite":false,"number":7}"#).u64(),
            Some(7)
        );
        assert_eq!(
            flex(r#"{"set":false,"infinite":false,"number":0}"#).u64(),
            None
        );
        assert!(flex(r#"{"set":true,"infinite":true,"number":0}"#).is_infinite());
        assert_eq!(flex("4294967294").u64(), None);
        assert_eq!(flex("18446744073709551614").u64(), None);
        assert_eq!(flex("-2").u64(), None);
        assert_eq!(flex("-2").i64(), Some(-2));
        assert_eq!(flex("\"UNLIMITED\"").u64(), None);
        assert!(flex("\"UNLIMITED\"").is_infinite());
        assert_eq!(flex("\"garbage\"").u64(), None);
        assert_eq!(flex("[1,2]").u64(), None);
        assert_eq!(flex("true").u64(), None);
        assert_eq!(
            flex(r#"{"status":["EXITED"],"return_code":{"set":true,"number":3}}"#).i64(),
            Some(3)
        );
    }

    #[test]
    fn set_false_hides_the_number() {
        assert_eq!(flex(r#"{"number":9,"set":false}"#).u64(), None);
    }

    #[test]
    fn strings_tolerate_other_types() {
        let s: FlexStr = serde_json::from_str("12").expect("valid");
        assert_eq!(s.as_str(), "12");
        let s: FlexStr = serde_json::from_str("null").expect("valid");
        assert_eq!(s.as_str(), "");
        let s: FlexStr = serde_json::from_str(r#"["a","b"]"#).expect("valid");
        assert_eq!(s.as_str(), "a,b");
        let s: FlexStr = serde_json::from_str(r#""a\/b""#).expect("valid");
        assert_eq!(s.as_str(), "a/b");
    }

    #[test]
    fn lists_from_arrays_strings_and_commas() {
        let l: StrList = serde_json::from_str(r#"["IDLE","DRAIN"]"#).expect("valid");
        assert_eq!(l.iter().collect::<Vec<_>>(), ["IDLE", "DRAIN"]);
        let l: StrList = serde_json::from_str(r#""idle""#).expect("valid");
        assert_eq!(l.iter().collect::<Vec<_>>(), ["idle"]);
        let l: StrList = serde_json::from_str(r#""cpu,gpu""#).expect("valid");
        assert_eq!(l.iter().collect::<Vec<_>>(), ["cpu", "gpu"]);
        let l: StrList = serde_json::from_str("7").expect("valid");
        assert!(l.0.is_empty());
    }

    #[test]
    fn lenient_objects_default_on_other_shapes() {
        #[derive(Deserialize, Default, Debug, PartialEq)]
        #[serde(default)]
        struct Inner {
            n: Flex,
        }
        let l: Lenient<Inner> = serde_json::from_str(r#"{"n":3,"x":[1]}"#).expect("valid");
        assert_eq!(l.0.n.u64(), Some(3));
        for odd in ["\"s\"", "7", "null", "[1,{}]", "true"] {
            let l: Lenient<Inner> = serde_json::from_str(odd).expect("never fails");
            assert_eq!(l.0, Inner::default(), "{odd}");
        }
    }
}
