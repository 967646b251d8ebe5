//! A strict parser of the Prometheus text exposition format 0.0.4, which also reads
//! OpenMetrics 1.0 text (`# UNIT`, `_created`, exemplars, `# EOF`). Used for every source
//! that hands us ready-made metrics: slurmctld's own `/metrics`, node_exporter, textfiles
//! and commands.
//!
//! Strict because what it reads is served again under our name: a line Prometheus would
//! reject is an error naming the line, not a guess. It never panics, and it is bounded:
//! [`Limits`] caps the line length, the number of series, of labels on one series and of
//! families, so a hostile or runaway producer cannot grow the exporter's memory.
//!
//! Two steps:
//! - [`parse_text`] turns bytes into [`ParsedFamily`]s: samples grouped under their family
//!   (a histogram's `_bucket`/`_sum`/`_count`, a summary's quantiles, a counter's `_total`),
//!   with `le` and `quantile` taken out of the labels as numbers.
//! - [`to_families`] turns those into store [`Family`]s, asking the caller's `owner`
//!   closure who owns each series (`None` drops it: deny by default).
//!
//! [`parse`] does both.
//!
//! Mapping onto the store, which knows gauges, counters and histograms:
//! - `gauge`, `untyped`/`unknown`, `stateset`, `info` -> gauge (`info` keeps its `_info` name);
//! - `counter` -> counter named without `_total` (the encoder adds it back); `_created`
//!   samples are dropped;
//! - `histogram` (and OpenMetrics `gaugehistogram`, `_gsum`/`_gcount`) -> histogram;
//! - `summary` -> three gauge families: `<name>{quantile=...}`, `<name>_sum`, `<name>_count`
//!   (the store has no summary kind; the three names are exactly what a summary exposes).
//!
//! Label names must be `&'static str` in the store; names read here are interned once per
//! process in a bounded table ([`MAX_INTERNED_LABEL_NAMES`]).

use super::ParseError;
use crate::model::Interner;
use crate::store::{Family, Kind, LabelValue, Owner, Sample};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

/// A sample's labels in line order: `(name, value)`.
pub type Labels = Vec<(Box<str>, Box<str>)>;

/// Bounds on one document. Every limit reached is an error naming the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, in bytes (without the newline).
    pub max_line_bytes: usize,
    /// Most samples in the document.
    pub max_series: usize,
    /// Most labels on one sample (`le` and `quantile` included).
    pub max_labels: usize,
    /// Most families in the document.
    pub max_families: usize,
}

impl Default for Limits {
    /// Generous for any real exporter (node_exporter on a 256-core node: ~3,000 samples,
    /// lines under 1 KiB), small enough to bound memory.
    fn default() -> Self {
        Limits {
            max_line_bytes: 64 << 10,
            max_series: 200_000,
            max_labels: 32,
            max_families: 20_000,
        }
    }
}

/// The declared type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Untyped,
    Info,
    StateSet,
}

impl TextType {
    fn from_word(w: &str) -> Option<TextType> {
        Some(match w {
            "counter" => TextType::Counter,
            "gauge" => TextType::Gauge,
            "histogram" => TextType::Histogram,
            "gaugehistogram" => TextType::GaugeHistogram,
            "summary" => TextType::Summary,
            "untyped" | "unknown" => TextType::Untyped,
            "info" => TextType::Info,
            "stateset" => TextType::StateSet,
            _ => return None,
        })
    }
}

/// Which sample of its family a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// The family name itself (a gauge, an untyped sample, a 0.0.4 counter, a quantile).
    None,
    Total,
    Created,
    Bucket,
    Sum,
    Count,
    GSum,
    GCount,
    Info,
}

impl Suffix {
    fn text(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Total => "_total",
            Suffix::Created => "_created",
            Suffix::Bucket => "_bucket",
            Suffix::Sum => "_sum",
            Suffix::Count => "_count",
            Suffix::GSum => "_gsum",
            Suffix::GCount => "_gcount",
            Suffix::Info => "_info",
        }
    }

    /// The suffixes a family of type `t` may carry.
    fn allowed(t: TextType) -> &'static [Suffix] {
        match t {
            TextType::Counter => &[Suffix::None, Suffix::Total, Suffix::Created],
            TextType::Gauge | TextType::Untyped | TextType::StateSet => &[Suffix::None],
            TextType::Histogram => &[Suffix::Bucket, Suffix::Sum, Suffix::Count, Suffix::Created],
            TextType::GaugeHistogram => &[Suffix::Bucket, Suffix::GSum, Suffix::GCount],
            TextType::Summary => &[Suffix::None, Suffix::Sum, Suffix::Count, Suffix::Created],
            TextType::Info => &[Suffix::Info],
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub suffix: Suffix,
    /// Labels in line order, without `le` (histogram buckets) and `quantile` (summaries),
    /// and without empty values (which Prometheus treats as absent).
    pub labels: Labels,
    /// `le` of a bucket, `quantile` of a summary sample.
    pub bound: Option<f64>,
    pub value: f64,
    /// 1-based line number, for messages.
    pub line: usize,
}

impl ParsedSample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| &**v)
    }
}

/// One family as read: its declared name, type, help, unit and samples in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFamily {
    /// The name in `# TYPE` (or of the first sample of an untyped family).
    pub name: String,
    pub kind: TextType,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub samples: Vec<ParsedSample>,
    /// Line where the family starts.
    pub line: usize,
}

impl ParsedFamily {
    /// The name a store family takes: counters lose `_total`.
    pub fn base_name(&self) -> &str {
        match self.kind {
            TextType::Counter => self.name.strip_suffix("_total").unwrap_or(&self.name),
            _ => &self.name,
        }
    }
}

fn err(line: usize, msg: impl Into<String>) -> ParseError {
    ParseError::Line {
        line,
        msg: msg.into(),
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A sample value or timestamp: decimal floats, `NaN`, `+Inf`, `-Inf` (any case, as Go's
/// `ParseFloat` reads them). Hex floats and empty strings are refused.
pub fn parse_value(s: &str) -> Option<f64> {
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let body = s.trim_start_matches(['+', '-']);
    if body.len() + 1 < s.len() {
        return None; // two signs
    }
    let lower = body.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => return Some(f64::NAN),
        "inf" | "infinity" => {
            return Some(if s.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        _ => {}
    }
    if !body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        || !body.bytes().any(|c| c.is_ascii_digit())
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// A cursor over one line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if f(c)) {
            self.pos += 1;
        }
        // Only ASCII bytes are ever matched by `f`, so these are char boundaries.
        self.s.get(start..self.pos).unwrap_or("")
    }
    fn token(&mut self) -> &'a str {
        self.take_while(|c| c != b' ' && c != b'\t')
    }
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }
}

fn name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Reads `{a="x",b="y"}` (the cursor on `{`).
fn read_labels(c: &mut Cursor<'_>, line: usize, limits: &Limits) -> Result<Labels, ParseError> {
    c.pos += 1; // '{'
    let mut out: Labels = Vec::new();
    loop {
        c.skip_blanks();
        if c.peek() == Some(b'}') {
            c.pos += 1;
            return Ok(out);
        }
        let name = c.take_while(name_byte);
        if !is_label_name(name) {
            return Err(err(line, format!("invalid label name {:?}", short(name))));
        }
        if name.starts_with("__") {
            return Err(err(
                line,
                format!("label name {name:?} is reserved (starts with __)"),
            ));
        }
        c.skip_blanks();
        if c.peek() != Some(b'=') {
            return Err(err(line, format!("expected '=' after label name {name:?}")));
        }
        c.pos += 1;
        c.skip_blanks();
        if c.peek() != Some(b'"') {
            return Err(err(line, format!("label {name:?}: value must be quoted")));
        }
        c.pos += 1;
        let mut value = String::new();
        loop {
            let rest = c.rest();
            let Some(ch) = rest.chars().next() else {
                return Err(err(line, format!("label {name:?}: unterminated value")));
            };
            c.pos += ch.len_utf8();
            match ch {
                '"' => break,
                '\\' => {
                    let esc = c.peek();
                    c.pos += 1;
                    match esc {
                        Some(b'\\') => value.push('\\'),
                        Some(b'"') => value.push('"'),
                        Some(b'n') => value.push('\n'),
                        _ => {
                            return Err(err(
                                line,
                                format!("label {name:?}: invalid escape in value"),
                            ))
                        }
                    }
                }
                _ => value.push(ch),
            }
        }
        if out.iter().any(|(n, _)| &**n == name) {
            return Err(err(line, format!("label {name:?} appears twice")));
        }
        if out.len() >= limits.max_labels {
            return Err(err(
                line,
                format!("more than {} labels on one series", limits.max_labels),
            ));
        }
        out.push((name.into(), value.into()));
        c.skip_blanks();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {}
            _ => return Err(err(line, "expected ',' or '}' after a label")),
        }
    }
}

fn short(s: &str) -> String {
    let t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        format!("{t}...")
    } else {
        t
    }
}

struct Builder {
    families: Vec<ParsedFamily>,
    /// Every family name seen, to refuse a second group or a second TYPE.
    seen: HashMap<String, usize>,
    /// Whether the current family has a TYPE / HELP / UNIT line.
    typed: bool,
    helped: bool,
    unit: bool,
    /// (family index, suffix, sorted labels, bound bits) of every series, for duplicates.
    series: HashSet<(usize, Suffix, Labels, Option<u64>)>,
    count: usize,
}

impl Builder {
    fn start(
        &mut self,
        name: &str,
        kind: TextType,
        line: usize,
        limits: &Limits,
    ) -> Result<(), ParseError> {
        if self.seen.contains_key(name) {
            return Err(err(
                line,
                format!("metric {name:?} appears again after other metrics (one group per family)"),
            ));
        }
        if self.families.len() >= limits.max_families {
            return Err(err(
                line,
                format!("more than {} families", limits.max_families),
            ));
        }
        self.seen.insert(name.to_owned(), self.families.len());
        self.families.push(ParsedFamily {
            name: name.to_owned(),
            kind,
            help: None,
            unit: None,
            samples: Vec::new(),
            line,
        });
        self.typed = false;
        self.helped = false;
        self.unit = false;
        Ok(())
    }

    /// The current family when `name` is it and nothing but metadata was read for it.
    fn current_meta(&mut self, name: &str) -> Option<&mut ParsedFamily> {
        match self.families.last_mut() {
            Some(f) if f.name == name && f.samples.is_empty() => Some(f),
            _ => None,
        }
    }
}

/// Reads a whole document into families. Any line Prometheus would reject is an error
/// naming the line; so is any limit reached.
pub fn parse_text(input: &[u8], limits: &Limits) -> Result<Vec<ParsedFamily>, ParseError> {
    let mut b = Builder {
        families: Vec::new(),
        seen: HashMap::new(),
        typed: false,
        helped: false,
        unit: false,
        series: HashSet::new(),
        count: 0,
    };
    let mut eof_at: Option<usize> = None;
    let mut lines = input.split(|&c| c == b'\n').enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let line = i + 1;
        // The piece after the final newline is empty: not a line.
        if raw.is_empty() && lines.peek().is_none() {
            break;
        }
        if raw.len() > limits.max_line_bytes {
            return Err(err(
                line,
                format!("line longer than {} bytes", limits.max_line_bytes),
            ));
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(err(line, "not valid UTF-8"));
        };
        if let Some(at) = eof_at {
            return Err(err(line, format!("content after '# EOF' (line {at})")));
        }
        if text.trim().is_empty() {
            continue;
        }
        if let Some(comment) = text.strip_prefix('#') {
            if comment.trim_end() == " EOF" {
                eof_at = Some(line);
                continue;
            }
            meta_line(&mut b, comment, line, limits)?;
            continue;
        }
        sample_line(&mut b, text, line, limits)?;
    }
    Ok(b.families
        .into_iter()
        .filter(|f| !f.samples.is_empty())
        .collect())
}

/// `# HELP name text`, `# TYPE name type`, `# UNIT name unit`; other comments are ignored.
fn meta_line(
    b: &mut Builder,
    comment: &str,
    line: usize,
    limits: &Limits,
) -> Result<(), ParseError> {
    let mut c = Cursor { s: comment, pos: 0 };
    if c.skip_blanks() == 0 {
        return Ok(()); // "#foo": a plain comment
    }
    let word = c.token();
    if !matches!(word, "HELP" | "TYPE" | "UNIT") {
        return Ok(());
    }
    if c.skip_blanks() == 0 {
        return Err(err(line, format!("# {word} without a metric name")));
    }
    let name = c.token();
    if !is_metric_name(name) {
        return Err(err(line, format!("invalid metric name {:?}", short(name))));
    }
    let blanks = c.skip_blanks();
    let rest = c.rest();
    match word {
        "TYPE" => {
            let kind = TextType::from_word(rest.trim_end())
                .ok_or_else(|| err(line, format!("unknown type {:?}", short(rest))))?;
            if b.current_meta(name).is_none() {
                b.start(name, kind, line, limits)?;
            } else if b.typed {
                return Err(err(line, format!("second TYPE line for {name:?}")));
            }
            if let Some(f) = b.families.last_mut() {
                f.kind = kind;
            }
            b.typed = true;
        }
        "HELP" => {
            if blanks == 0 && !rest.is_empty() {
                return Err(err(line, "expected a blank after the metric name"));
            }
            let help = unescape_help(rest).ok_or_else(|| err(line, "invalid escape in HELP"))?;
            if b.current_meta(name).is_none() {
                b.start(name, TextType::Untyped, line, limits)?;
            } else if b.helped {
                return Err(err(line, format!("second HELP line for {name:?}")));
            }
            if let Some(f) = b.families.last_mut() {
                f.help = Some(help);
            }
            b.helped = true;
        }
        _ => {
            if b.current_meta(name).is_none() {
                b.start(name, TextType::Untyped, line, limits)?;
            } else if b.unit {
                return Err(err(line, format!("second UNIT line for {name:?}")));
            }
            if let Some(f) = b.families.last_mut() {
                f.unit = Some(rest.trim_end().to_owned());
            }
            b.unit = true;
        }
    }
    Ok(())
}

/// HELP text escapes: `\\` and `\n` (OpenMetrics also `\"`).
fn unescape_help(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(ch) = it.next() {
        if ch == '\\' {
            match it.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') => out.push('"'),
                _ => return None,
            }
        } else {
            out.push(ch);
        }
    }
    Some(out)
}

fn sample_line(
    b: &mut Builder,
    text: &str,
    line: usize,
    limits: &Limits,
) -> Result<(), ParseError> {
    let mut c = Cursor { s: text, pos: 0 };
    c.skip_blanks();
    let name = c.take_while(name_byte);
    if !is_metric_name(name) {
        let bad = c.token();
        return Err(err(
            line,
            format!("invalid metric name {:?}", short(&format!("{name}{bad}"))),
        ));
    }
    // Blanks may separate the name from its labels, as Prometheus' own parser allows.
    let mut blanks = c.skip_blanks();
    let mut labels = Vec::new();
    if c.peek() == Some(b'{') {
        labels = read_labels(&mut c, line, limits)?;
        blanks = c.skip_blanks();
    }
    if blanks == 0 {
        return Err(err(
            line,
            format!("expected a blank before the value of {name:?}"),
        ));
    }
    let v = c.token();
    let value = parse_value(v).ok_or_else(|| err(line, format!("invalid value {:?}", short(v))))?;
    if c.skip_blanks() > 0 {
        match c.peek() {
            None => {}
            // An OpenMetrics exemplar: ignored.
            Some(b'#') => {}
            Some(_) => {
                let ts = c.token();
                if parse_value(ts).is_none_or(|t| !t.is_finite()) {
                    return Err(err(line, format!("invalid timestamp {:?}", short(ts))));
                }
                c.skip_blanks();
                if !matches!(c.peek(), None | Some(b'#')) {
                    return Err(err(line, "unexpected text after the timestamp"));
                }
            }
        }
    } else if c.peek().is_some() {
        return Err(err(line, "unexpected text after the value"));
    }

    // Which family: the current one when the name fits its type, else a new untyped one.
    let fits = b.families.last().and_then(|f| {
        let rest = name.strip_prefix(f.name.as_str())?;
        Suffix::allowed(f.kind)
            .iter()
            .copied()
            .find(|s| s.text() == rest)
    });
    let suffix = match fits {
        Some(s) => s,
        None => {
            b.start(name, TextType::Untyped, line, limits)?;
            Suffix::None
        }
    };
    let idx = b.families.len() - 1;
    let kind = b.families[idx].kind;
    let bound_label = match (kind, suffix) {
        (TextType::Histogram | TextType::GaugeHistogram, Suffix::Bucket) => Some("le"),
        (TextType::Summary, Suffix::None) => Some("quantile"),
        _ => None,
    };
    let mut bound = None;
    if let Some(bl) = bound_label {
        let pos = labels
            .iter()
            .position(|(n, _)| &**n == bl)
            .ok_or_else(|| err(line, format!("{name:?} lacks its {bl:?} label")))?;
        let (_, v) = labels.remove(pos);
        bound = Some(
            parse_value(&v).ok_or_else(|| err(line, format!("invalid {bl} {:?}", short(&v))))?,
        );
    }
    labels.retain(|(_, v)| !v.is_empty());
    if b.count >= limits.max_series {
        return Err(err(line, format!("more than {} series", limits.max_series)));
    }
    let mut key = labels.clone();
    key.sort();
    let bits = bound.map(|x: f64| if x.is_nan() { u64::MAX } else { x.to_bits() });
    if !b.series.insert((idx, suffix, key, bits)) {
        return Err(err(
            line,
            format!("duplicate series {name:?} with the same labels"),
        ));
    }
    b.count += 1;
    b.families[idx].samples.push(ParsedSample {
        suffix,
        labels,
        bound,
        value,
        line,
    });
    Ok(())
}

/// Most distinct label names ever interned by this process.
pub const MAX_INTERNED_LABEL_NAMES: usize = 4096;

/// A `&'static str` for a label name, leaked once per distinct name; `None` past the cap.
pub fn intern_label_name(name: &str) -> Option<&'static str> {
    static TABLE: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| Mutex::new(HashSet::new()));
    let mut t = table.lock().ok()?;
    if let Some(s) = t.get(name) {
        return Some(s);
    }
    if t.len() >= MAX_INTERNED_LABEL_NAMES || !is_label_name(name) {
        return None;
    }
    let s: &'static str = Box::leak(name.to_owned().into_boxed_str());
    t.insert(s);
    Some(s)
}

/// Who owns a series: `(store family name, labels)` to an owner; `None` drops the series.
pub type OwnerFn<'a> = dyn FnMut(&str, &[(Box<str>, Box<str>)]) -> Option<Owner> + 'a;

/// What [`to_families`] left out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Series the owner closure refused.
    pub unowned: usize,
    /// `_created` samples (the store has no place for them).
    pub created: usize,
    /// Families whose label names could not be interned.
    pub families: usize,
}

/// Turns parsed families into store families; see the module docs for the type mapping.
pub fn to_families(parsed: Vec<ParsedFamily>, owner: &mut OwnerFn<'_>) -> (Vec<Family>, Dropped) {
    let mut out = Vec::with_capacity(parsed.len());
    let mut dropped = Dropped::default();
    let mut values = Interner::default();
    for pf in parsed {
        let help: Cow<'static, str> = Cow::Owned(pf.help.clone().unwrap_or_default());
        let base = pf.base_name().to_owned();
        match pf.kind {
            TextType::Summary => {
                let mut q = Vec::new();
                let mut sum = Vec::new();
                let mut count = Vec::new();
                for s in pf.samples {
                    match s.suffix {
                        Suffix::None => q.push(s),
                        Suffix::Sum => sum.push(s),
                        Suffix::Count => count.push(s),
                        _ => dropped.created += 1,
                    }
                }
                for (name, samples, quantile) in [
                    (base.clone(), q, true),
                    (format!("{base}_sum"), sum, false),
                    (format!("{base}_count"), count, false),
                ] {
                    if let Some(f) = build(
                        name,
                        help.clone(),
                        Kind::Gauge,
                        samples,
                        quantile.then_some("quantile"),
                        owner,
                        &mut values,
                        &mut dropped,
                    ) {
                        out.push(f);
                    }
                }
            }
            kind => {
                let store_kind = match kind {
                    TextType::Counter => Kind::Counter,
                    TextType::Histogram | TextType::GaugeHistogram => Kind::Histogram,
                    _ => Kind::Gauge,
                };
                let name = if kind == TextType::Info {
                    format!("{base}_info")
                } else {
                    base
                };
                let samples: Vec<ParsedSample> = pf
                    .samples
                    .into_iter()
                    .filter(|s| {
                        let keep = s.suffix != Suffix::Created;
                        if !keep {
                            dropped.created += 1;
                        }
                        keep
                    })
                    .collect();
                if let Some(f) = build(
                    name,
                    help,
                    store_kind,
                    samples,
                    None,
                    owner,
                    &mut values,
                    &mut dropped,
                ) {
                    out.push(f);
                }
            }
        }
    }
    (out, dropped)
}

#[allow(clippy::too_many_arguments)]
fn build(
    name: String,
    help: Cow<'static, str>,
    kind: Kind,
    samples: Vec<ParsedSample>,
    bound_label: Option<&'static str>,
    owner: &mut OwnerFn<'_>,
    values: &mut Interner,
    dropped: &mut Dropped,
) -> Option<Family> {
    if samples.is_empty() {
        return None;
    }
    // Union of label names in order of first appearance: the store wants one list per
    // family; a series lacking a label gets "" (the same as absent to Prometheus).
    let mut names: Vec<&'static str> = Vec::new();
    for s in &samples {
        for (n, _) in &s.labels {
            if !names.contains(&&**n) {
                match intern_label_name(n) {
                    Some(i) => names.push(i),
                    None => {
                        dropped.families += 1;
                        return None;
                    }
                }
            }
        }
    }
    if let Some(bl) = bound_label {
        names.push(bl);
    }
    let mut fam = Family {
        name: Cow::Owned(name),
        help,
        kind,
        label_names: Cow::Owned(names),
        series: Vec::with_capacity(samples.len()),
    };
    for s in samples {
        let Some(o) = owner(&fam.name, &s.labels) else {
            dropped.unowned += 1;
            continue;
        };
        let mut labels: Vec<LabelValue> = fam
            .label_names
            .iter()
            .map(|n| match s.label(n) {
                Some(v) => LabelValue::Shared(values.intern(v)),
                None => LabelValue::Static(""),
            })
            .collect();
        let sample = match (kind, s.suffix) {
            (Kind::Histogram, Suffix::Bucket) => Sample::Bucket(s.bound.unwrap_or(f64::INFINITY)),
            (Kind::Histogram, Suffix::Sum | Suffix::GSum) => Sample::Sum,
            (Kind::Histogram, Suffix::Count | Suffix::GCount) => Sample::Count,
            _ => Sample::Value,
        };
        if bound_label.is_some() {
            let q = s.bound.unwrap_or(f64::NAN);
            let mut buf = ryu::Buffer::new();
            let text = if q.fract() == 0.0 && q.abs() < 1e15 {
                format!("{}", q as i64)
            } else {
                buf.format(q).to_owned()
            };
            if let Some(last) = labels.last_mut() {
                *last = LabelValue::Owned(text.into_boxed_str());
            }
        }
        fam.series.push(crate::store::Series {
            owner: o,
            labels: labels.into_boxed_slice(),
            sample,
            value: s.value,
        });
    }
    if fam.series.is_empty() {
        None
    } else {
        Some(fam)
    }
}

/// Parses and converts in one go.
pub fn parse(
    input: &[u8],
    limits: &Limits,
    owner: &mut OwnerFn<'_>,
) -> Result<(Vec<Family>, Dropped), ParseError> {
    Ok(to_families(parse_text(input, limits)?, owner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{encode, Format};

    fn p(s: &str) -> Result<Vec<ParsedFamily>, ParseError> {
        parse_text(s.as_bytes(), &Limits::default())
    }

    fn line_of(e: ParseError) -> (usize, String) {
        match e {
            ParseError::Line { line, msg } => (line, msg),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    fn cluster_owned(s: &str) -> Vec<Family> {
        parse(s.as_bytes(), &Limits::default(), &mut |_, _| {
            Some(Owner::Cluster)
        })
        .expect("parses")
        .0
    }

    fn encoded(f: &[Family], fmt: Format) -> String {
        let mut out = Vec::new();
        encode(f, fmt, &|_| true, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    const NODE_EXPORTER_LIKE: &str = "\
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 2.37
# HELP node_network_receive_bytes_total Network device statistic receive_bytes.
# TYPE node_network_receive_bytes_total counter
node_network_receive_bytes_total{device=\"eth0\"} 1.234e+09
node_network_receive_bytes_total{device=\"lo\"} 5678
# HELP go_gc_duration_seconds A summary of the pause duration.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile=\"0\"} 1.5e-05
go_gc_duration_seconds{quantile=\"1\"} 0.0001
go_gc_duration_seconds_sum 0.5
go_gc_duration_seconds_count 20
# HELP http_request_duration_seconds Latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{code=\"200\",le=\"0.1\"} 3
http_request_duration_seconds_bucket{code=\"200\",le=\"+Inf\"} 4
http_request_duration_seconds_sum{code=\"200\"} 0.9
http_request_duration_seconds_count{code=\"200\"} 4
untyped_thing{a=\"x\"} NaN 1700000000000
";

    #[test]
    fn groups_every_type_under_its_family() {
        let fams = p(NODE_EXPORTER_LIKE).expect("parses");
        let names: Vec<(&str, TextType, usize)> = fams
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.samples.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("node_load1", TextType::Gauge, 1),
                ("node_network_receive_bytes_total", TextType::Counter, 2),
                ("go_gc_duration_seconds", TextType::Summary, 4),
                ("http_request_duration_seconds", TextType::Histogram, 4),
                ("untyped_thing", TextType::Untyped, 1),
            ]
        );
        assert!(fams[4].samples[0].value.is_nan());
        assert_eq!(fams[3].samples[1].bound, Some(f64::INFINITY));
        assert_eq!(fams[1].samples[0].value, 1.234e9);
    }

    #[test]
    fn reencodes_as_valid_exposition() {
        let fams = cluster_owned(NODE_EXPORTER_LIKE);
        let text = encoded(&fams, Format::Text);
        assert!(text.contains("# TYPE node_network_receive_bytes_total counter\n"));
        assert!(text.contains("node_network_receive_bytes_total{device=\"eth0\"} 1234000000\n"));
        assert!(text.contains("http_request_duration_seconds_bucket{code=\"200\",le=\"0.1\"} 3\n"));
        assert!(text.contains("http_request_duration_seconds_bucket{code=\"200\",le=\"+Inf\"} 4\n"));
        assert!(
            text.contains("go_gc_duration_seconds{quantile=\"0\"} 0.000015\n")
                || text.contains("go_gc_duration_seconds{quantile=\"0\"} 1.5e-5\n"),
            "{text}"
        );
        assert!(text.contains(
            "# TYPE go_gc_duration_seconds_count gauge\ngo_gc_duration_seconds_count 20\n"
        ));
        assert!(text.contains("untyped_thing{a=\"x\"} NaN\n"));
        // Parsing our own output again gives the same families.
        let again = cluster_owned(&text);
        assert_eq!(encoded(&again, Format::Text), text);
    }

    #[test]
    fn openmetrics_input_with_eof_units_created_and_exemplars() {
        let s = "\
# TYPE jobs counter
# UNIT jobs jobs
# HELP jobs Jobs \\\"done\\\".
jobs_total{q=\"a\"} 5 # {trace_id=\"x\"} 1 1.7e9
jobs_created{q=\"a\"} 1.7e9
# TYPE build info
build_info{version=\"1\"} 1
# TYPE temp gauge
temp -Inf
temp{a=\"b\"} +Inf 1700000000.5
# EOF
";
        let fams = p(s).expect("parses");
        assert_eq!(fams[0].unit.as_deref(), Some("jobs"));
        assert_eq!(fams[0].help.as_deref(), Some("Jobs \"done\"."));
        let store = cluster_owned(s);
        let text = encoded(&store, Format::OpenMetrics);
        assert!(
            text.contains("# TYPE jobs counter\njobs_total{q=\"a\"} 5\n"),
            "{text}"
        );
        assert!(!text.contains("created"));
        assert!(text.contains("build_info{version=\"1\"} 1\n"));
        assert!(
            text.contains("temp{a=\"\"} -Inf\ntemp{a=\"b\"} +Inf\n"),
            "{text}"
        );
    }

    #[test]
    fn label_escapes_and_utf8_round_trip() {
        let s = "m{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"new\\nline\",d=\"ünï\",} 1\n";
        let f = p(s).expect("parses");
        assert_eq!(f[0].samples[0].label("a"), Some("q\"uote"));
        assert_eq!(f[0].samples[0].label("b"), Some("back\\slash"));
        assert_eq!(f[0].samples[0].label("c"), Some("new\nline"));
        assert_eq!(f[0].samples[0].label("d"), Some("ünï"));
        let text = encoded(&cluster_owned(s), Format::Text);
        assert!(
            text.contains("m{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"new\\nline\",d=\"ünï\"} 1\n")
        );
    }

    #[test]
    fn hostile_inputs_are_errors_naming_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("ok 1\n9bad 1\n", 2, "invalid metric name"),
            ("ok 1\nbad-name 1\n", 2, "expected a blank"),
            ("m{a=\"1\"} 1\nm{a=\"1\"} 2\n", 2, "duplicate series"),
            ("m{a=\"1\",a=\"2\"} 1\n", 1, "twice"),
            ("m{1a=\"1\"} 1\n", 1, "invalid label name"),
            ("m{__name__=\"x\"} 1\n", 1, "reserved"),
            ("m{a=1} 1\n", 1, "quoted"),
            ("m{a=\"1} 1\n", 1, "unterminated"),
            ("m{a=\"\\t\"} 1\n", 1, "invalid escape"),
            ("m one\n", 1, "invalid value"),
            ("m 0x10\n", 1, "invalid value"),
            ("m 1 2 3\n", 1, "after the timestamp"),
            ("m 1 notatime\n", 1, "invalid timestamp"),
            ("# TYPE m gauge\n# TYPE m gauge\nm 1\n", 2, "second TYPE"),
            ("# TYPE m gauge\nm 1\n# TYPE m counter\n", 3, "again"),
            ("# TYPE m sideways\n", 1, "unknown type"),
            ("a 1\nb 1\na 2\n", 3, "again"),
            ("# TYPE h histogram\nh_bucket 1\n", 2, "le"),
            (
                "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
                2,
                "invalid le",
            ),
            ("# TYPE s summary\ns 1\n", 2, "quantile"),
            ("m 1\n# EOF\nm2 1\n", 3, "after '# EOF'"),
            ("m 1\n\u{0}\n", 2, "invalid metric name"),
            ("# HELP m bad \\x escape\n", 1, "escape"),
        ];
        for (input, line, what) in cases {
            let (l, msg) = line_of(p(input).expect_err(input));
            assert_eq!(l, *line, "{input:?}: {msg}");
            assert!(msg.contains(what), "{input:?}: {msg}");
        }
        let (l, msg) = line_of(p_bytes(b"m 1\nm{a=\"\xff\"} 1\n").expect_err("utf8"));
        assert_eq!((l, msg.as_str()), (2, "not valid UTF-8"));
    }

    fn p_bytes(b: &[u8]) -> Result<Vec<ParsedFamily>, ParseError> {
        parse_text(b, &Limits::default())
    }

    #[test]
    fn limits_are_errors_naming_the_line() {
        let small = Limits {
            max_line_bytes: 20,
            max_series: 2,
            max_labels: 2,
            max_families: 2,
        };
        let long = format!("m{{a=\"{}\"}} 1\n", "x".repeat(100));
        assert_eq!(
            line_of(parse_text(format!("a 1\n{long}").as_bytes(), &small).expect_err("long")).0,
            2
        );
        let (l, m) = line_of(
            parse_text(b"m{a=\"1\"} 1\nm{a=\"2\"} 1\nm{a=\"3\"} 1\n", &small).expect_err("series"),
        );
        assert_eq!(l, 3);
        assert!(m.contains("series"));
        let (l, m) =
            line_of(parse_text(b"m{a=\"1\",b=\"\",c=\"\"} 1\n", &small).expect_err("labels"));
        assert_eq!(l, 1);
        assert!(m.contains("labels"));
        let (l, m) = line_of(parse_text(b"a 1\nb 1\nc 1\n", &small).expect_err("families"));
        assert_eq!(l, 3);
        assert!(m.contains("families"));
        // A huge line never gets near the parser's allocations.
        let huge = vec![b'a'; 10 << 20];
        assert!(parse_text(&huge, &Limits::default()).is_err());
    }

    #[test]
    fn empty_label_values_are_absent_and_collide() {
        let e = p("m{a=\"\"} 1\nm 2\n").expect_err("same series");
        assert!(line_of(e).1.contains("duplicate"));
    }

    #[test]
    fn comments_blank_lines_crlf_and_tabs_are_fine() {
        let s = "# a comment\n#another\n\n  \r\nm\t{a=\"1\"}\t1\r\n# HELP m late help is a second group\n";
        let f = p(s);
        // HELP after samples starts a second group of m: refused.
        assert!(f.is_err());
        let f = p("# a comment\n\nm {a=\"1\"}\t1\r\n").expect("parses");
        assert_eq!(f[0].samples[0].value, 1.0);
    }

    #[test]
    fn owner_none_drops_and_owner_sees_labels() {
        let (fams, dropped) = parse(
            b"m{account=\"a\"} 1\nm{account=\"b\"} 2\n",
            &Limits::default(),
            &mut |name, labels| {
                assert_eq!(name, "m");
                labels
                    .iter()
                    .find(|(n, v)| &**n == "account" && &**v == "a")
                    .map(|_| Owner::Account("a".into()))
            },
        )
        .expect("parses");
        assert_eq!(dropped.unowned, 1);
        assert_eq!(fams[0].series.len(), 1);
        assert_eq!(fams[0].series[0].owner, Owner::Account("a".into()));
    }

    #[test]
    fn families_with_differing_label_sets_share_one_name_list() {
        let fams = cluster_owned("m{a=\"1\"} 1\nm{b=\"2\"} 2\n");
        assert_eq!(&*fams[0].label_names, &["a", "b"]);
        let text = encoded(&fams, Format::Text);
        assert!(text.contains("m{a=\"1\",b=\"\"} 1\nm{a=\"\",b=\"2\"} 2\n"));
    }

    #[test]
    fn values_parse_like_prometheus() {
        for (s, v) in [
            ("1", 1.0),
            ("-1.5e3", -1500.0),
            (".5", 0.5),
            ("+Inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
        ] {
            assert_eq!(parse_value(s), Some(v), "{s}");
        }
        assert!(parse_value("NaN").is_some_and(f64::is_nan));
        for s in ["", "0x1p3", "1_000", "--1", "e", "1,5", "nan2"] {
            assert_eq!(parse_value(s), None, "{s}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"m_{}=\",# \n\\\tHELPTYPEhistogramsummarycounter_bucketle0.5+Inf\xff";
        for _ in 0..3000 {
            let mut buf = Vec::new();
            for _ in 0..(seed % 97) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                buf.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse(&buf, &Limits::default(), &mut |_, _| Some(Owner::Cluster));
        }
    }
}
