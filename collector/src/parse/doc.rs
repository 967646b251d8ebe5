//! The envelope every slurmrestd and `--json` document shares: `meta`, `errors`,
//! `warnings`, and one data array (`jobs`, `nodes`, `partitions`, ...).

use super::stream::{parse_owned, DocReader, Parsed};
use super::ParseError;
use crate::model::SlurmMeta;
use serde_json::Value;
use std::io::Read;

/// What the envelope said besides the data.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Envelope {
    pub meta: SlurmMeta,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// slurmrestd answered `update_time=T` with HTTP 200, an empty data array and the
    /// warning "No job changes since update_time" (v0.0.37+): the data is unchanged, not
    /// empty. Sources treat it as HTTP 304.
    pub unchanged: bool,
}

impl Envelope {
    /// Slurm's errors and warnings beside data that was still delivered, as one message
    /// each, for the source to count and log (`None` when there are none).
    pub fn notes(&self) -> (Option<String>, Option<String>) {
        let join = |v: &[String]| (!v.is_empty()).then(|| v.join("; "));
        let warnings: Vec<String> = if self.unchanged {
            Vec::new()
        } else {
            self.warnings.clone()
        };
        (join(&self.errors), join(&warnings))
    }
}

/// slurmrestd's "No <what> changes since update_time" warning.
fn says_unchanged(warnings: &[String]) -> bool {
    warnings.iter().any(|w| {
        let w = w.to_ascii_lowercase();
        w.starts_with("no ") && w.contains("changes since update_time")
    })
}

/// A document whose `errors` array is not empty and that carries no data is Slurm saying
/// no (an expired token, "Protocol authentication error", an unknown job): an error, never
/// an empty cluster.
fn refused(env: &Envelope, elements: usize) -> Option<ParseError> {
    (elements == 0 && !env.errors.is_empty()).then(|| ParseError::Slurm(env.errors.join("; ")))
}

/// Streams the elements of `array_key` through `parse` into `sink` and returns the envelope.
/// A document with Slurm errors and no data array is an error; one without errors and
/// without the array is `Missing` (an answer from something that is not slurmrestd).
pub fn stream_array<R: Read, T>(
    src: R,
    array_key: &'static str,
    mut parse: impl FnMut(&[u8]) -> Parsed<T>,
    sink: impl FnMut(T),
) -> Result<Envelope, ParseError> {
    stream_arrays(src, &[array_key], |_, b| parse(b), sink)
}

/// [`stream_array`] for documents whose data array has changed its name between releases
/// (`sinfo --json` writes `nodes` up to 22.05 and `sinfo` from 23.02 on): every element of
/// whichever of `array_keys` is present goes through `parse`, which is told the key.
/// `Missing` names the first key.
pub fn stream_arrays<R: Read, T>(
    src: R,
    array_keys: &[&'static str],
    mut parse: impl FnMut(&'static str, &[u8]) -> Parsed<T>,
    mut sink: impl FnMut(T),
) -> Result<Envelope, ParseError> {
    let mut env = Envelope::default();
    let mut seen = false;
    let mut elements = 0usize;
    let mut r = DocReader::new(src);
    r.walk_object(|key, r| {
        if let Some(k) = array_keys.iter().copied().find(|k| *k == key) {
            seen = true;
            return r.for_each_element(
                |b| parse(k, b),
                |x| {
                    elements += 1;
                    sink(x)
                },
            );
        }
        match key {
            "meta" => {
                let v: Value = r.next_with(parse_owned::<Value>)?;
                env.meta = meta_of(&v);
                Ok(())
            }
            "errors" => {
                let v: Value = r.next_with(parse_owned::<Value>)?;
                env.errors = messages(&v);
                Ok(())
            }
            "warnings" => {
                let v: Value = r.next_with(parse_owned::<Value>)?;
                env.warnings = messages(&v);
                Ok(())
            }
            _ => r.skip_value(),
        }
    })?;
    r.finish()?;
    if let Some(e) = refused(&env, elements) {
        return Err(e);
    }
    if !seen {
        return Err(ParseError::Missing(
            array_keys.first().copied().unwrap_or("data"),
        ));
    }
    env.unchanged = elements == 0 && says_unchanged(&env.warnings);
    Ok(env)
}

/// Reads a small document whole (diag, ping, licenses): these are a few KB at most.
pub fn small_document(bytes: &[u8]) -> Result<(Envelope, Value), ParseError> {
    let mut r = DocReader::new(bytes);
    let v: Value = r.next_with(parse_owned::<Value>)?;
    r.finish()?;
    if !v.is_object() {
        return Err(ParseError::Syntax {
            offset: 0,
            msg: "expected a JSON object".into(),
        });
    }
    let mut env = Envelope {
        meta: v.get("meta").map(meta_of).unwrap_or_default(),
        errors: v.get("errors").map(messages).unwrap_or_default(),
        warnings: v.get("warnings").map(messages).unwrap_or_default(),
        unchanged: false,
    };
    // Data is whatever is not the envelope; empty arrays, objects and nulls are none.
    let data = v.as_object().map_or(0, |o| {
        o.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "meta" | "errors" | "warnings"))
            .filter(|(_, x)| match x {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(m) => !m.is_empty(),
                _ => true,
            })
            .count()
    });
    if let Some(e) = refused(&env, data) {
        return Err(e);
    }
    env.unchanged = data == 0 && says_unchanged(&env.warnings);
    Ok((env, v))
}

/// `meta.plugin.type` and `meta.Slurm.release` (v0.0.38, v0.0.39) or `meta.slurm.release`
/// (v0.0.40+).
pub fn meta_of(v: &Value) -> SlurmMeta {
    let slurm = v.get("Slurm").or_else(|| v.get("slurm"));
    let release = slurm
        .and_then(|s| s.get("release"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|r| !r.is_empty())
        .or_else(|| {
            // Numbers, or strings of digits (v0.0.40+ writes `"major":"24"`).
            let ver = slurm?.get("version")?;
            let n = |k: &str| {
                ver.get(k).and_then(|x| {
                    x.as_u64()
                        .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
                })
            };
            Some(format!(
                "{}.{:02}.{}",
                n("major")?,
                n("minor")?,
                n("micro")?
            ))
        })
        .unwrap_or_default();
    // slurmrestd names its openapi plugin; the CLI's `--json` leaves `type` empty (23.11+)
    // or writes `plugins` (23.02) and names only the data_parser plugin.
    let plugin = v
        .get("plugin")
        .or_else(|| v.get("plugins"))
        .and_then(|p| {
            ["type", "data_parser"]
                .iter()
                .filter_map(|k| p.get(*k).and_then(Value::as_str))
                .find(|s| !s.is_empty())
        })
        .unwrap_or_default()
        .to_owned();
    // The version read: the data_parser's (`data_parser/v0.0.41`), else the plugin's own
    // (`openapi/v0.0.38`); `openapi/slurmctld` names none.
    let openapi = v
        .get("plugin")
        .or_else(|| v.get("plugins"))
        .and_then(|p| {
            ["data_parser", "type"]
                .iter()
                .filter_map(|k| p.get(*k).and_then(Value::as_str))
                .filter_map(|s| s.rsplit('/').next())
                .find(|s| s.starts_with("v0.") || s.starts_with("v1."))
        })
        .unwrap_or_default()
        .to_owned();
    SlurmMeta {
        release,
        plugin,
        openapi,
        source: String::new(),
    }
}

/// Error and warning lists: objects with `description`/`error`/`warning`, or plain strings.
fn messages(v: &Value) -> Vec<String> {
    let Some(items) = v.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => ["description", "error", "warning"]
                .iter()
                .filter_map(|k| o.get(*k).and_then(Value::as_str))
                .find(|s| !s.is_empty())
                .map(str::to_owned)
                .or_else(|| Some(e.to_string())),
            other => Some(other.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_without_data_are_slurm_errors() {
        let doc = br#"{"meta":{},"errors":[{"error":"x","description":"slurmctld config is unable to load"}]}"#;
        let err =
            stream_array(&doc[..], "jobs", parse_owned::<Value>, |_| {}).expect_err("no data");
        assert_eq!(
            err,
            ParseError::Slurm("slurmctld config is unable to load".into())
        );
    }

    #[test]
    fn missing_array_is_named() {
        let err =
            stream_array(&b"{}"[..], "nodes", parse_owned::<Value>, |_| {}).expect_err("no data");
        assert_eq!(err.to_string(), "the document has no \"nodes\" array");
    }

    #[test]
    fn meta_in_both_spellings() {
        let old: Value = serde_json::from_str(
            r#"{"plugin":{"type":"openapi/v0.0.38"},"Slurm":{"release":"22.05.8"}}"#,
        )
        .expect("valid");
        assert_eq!(meta_of(&old).release, "22.05.8");
        let new: Value = serde_json::from_str(
            r#"{"plugin":{"type":"openapi/slurmctld","data_parser":"data_parser/v0.0.41"},"slurm":{"version":{"major":"24","minor":"05","micro":"4"},"release":"24.05.4"}}"#,
        )
        .expect("valid");
        assert_eq!(meta_of(&new).release, "24.05.4");
        assert_eq!(meta_of(&new).plugin, "openapi/slurmctld");
    }

    #[test]
    fn cli_meta_names_the_data_parser() {
        // squeue --json, 23.02 (src/interfaces/data_parser.c: "plugins", "Slurm")
        let v: Value = serde_json::from_str(
            r#"{"plugins":{"data_parser":"data_parser/v0.0.39"},"command":["squeue"],"Slurm":{"release":"23.02.7"}}"#,
        )
        .expect("valid");
        assert_eq!(meta_of(&v).plugin, "data_parser/v0.0.39");
        // 23.11+: openapi_resp_meta_t with an empty plugin type
        let v: Value = serde_json::from_str(
            r#"{"plugin":{"type":"","name":"","data_parser":"data_parser/v0.0.42"},"slurm":{"release":"24.11.5"}}"#,
        )
        .expect("valid");
        assert_eq!(meta_of(&v).plugin, "data_parser/v0.0.42");
    }

    #[test]
    fn renamed_data_arrays_are_streamed() {
        let doc = br#"{"meta":{},"sinfo":[1,2]}"#;
        let mut got = Vec::new();
        stream_arrays(
            &doc[..],
            &["nodes", "sinfo"],
            |k, b| parse_owned::<u64>(b).map(|o| o.map(|(v, n)| ((k, v), n))),
            |x| got.push(x),
        )
        .expect("parses");
        assert_eq!(got, [("sinfo", 1), ("sinfo", 2)]);
        let err = stream_arrays(
            &b"{}"[..],
            &["nodes", "sinfo"],
            |_, b| parse_owned::<u64>(b),
            |_| {},
        )
        .expect_err("no data");
        assert_eq!(err, ParseError::Missing("nodes"));
    }
}
