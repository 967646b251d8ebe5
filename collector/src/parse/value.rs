//! Small documents read as a [`serde_json::Value`]: tolerant field access shared by the
//! parsers of documents with a handful of records (licenses, reservations).

use super::doc::small_document;
use super::flex::Flex;
use super::ParseError;
use serde::Deserialize;
use serde_json::Value;

/// The first of `keys` present and not null.
pub(super) fn field<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().find_map(|k| v.get(*k).filter(|x| !x.is_null()))
}

/// A tolerant number: plain, string, or `{"set":..,"number":..}`; sentinels are `None`.
pub(super) fn number(v: &Value, keys: &[&str]) -> Option<u64> {
    field(v, keys)
        .and_then(|x| Flex::deserialize(x).ok())
        .and_then(Flex::u64)
}

/// A string, or a list of strings joined with commas; anything else is empty.
pub(super) fn string(v: &Value, keys: &[&str]) -> String {
    match field(v, keys) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The data array of a small document, or the error the envelope gives for its absence.
pub(super) fn data_array(bytes: &[u8], key: &'static str) -> Result<Vec<Value>, ParseError> {
    let (env, mut v) = small_document(bytes)?;
    match v.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        // `null` or a wrong type: a neutral empty list, not a failed poll.
        Some(_) => Ok(Vec::new()),
        None if env.errors.is_empty() => Err(ParseError::Missing(key)),
        None => Err(ParseError::Slurm(env.errors.join("; "))),
    }
}
