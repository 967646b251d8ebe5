//! Prometheus series selectors for `/federate?match[]=`: parsed from untrusted query strings,
//! bounded, checked against the caller's tenant scope, then evaluated against the store's
//! series without ever parsing labels back out of text.
//!
//! Syntax (Prometheus' `match[]`): `name`, `name{matchers}` or `{matchers}`, where a matcher
//! is `label op "value"` with `op` one of `=`, `!=`, `=~`, `!~`; values in double or single
//! quotes with Go escapes (`\n`, `\\`, `\"`, `\x41`, `\101`, `\u00e9`, `\U0001F600`) or in
//! backticks, raw; `{__name__="x"}` names the metric too; a trailing comma is allowed.
//! Quoted (UTF-8) metric and label names of Prometheus 3 are not accepted.
//!
//! Semantics, as Prometheus:
//! - Regexes are fully anchored: `=~"re"` is `^(?s:re)$` (`.` matches a newline too, as in
//!   Prometheus). The pattern is first parsed alone, so `a)|(.*` cannot close the anchoring
//!   group early. Compiling is bounded: [`REGEX_SIZE_LIMIT`] per regex, [`MAX_REGEXES`] per
//!   request (a request costs at most a few tens of milliseconds of compiling). The `regex`
//!   crate matches in linear time: no pattern can make matching slow.
//! - Bounds: [`MAX_SELECTORS`] `match[]`, [`MAX_SELECTOR_LEN`] bytes and [`MAX_MATCHERS`]
//!   matchers each.
//! - A missing label is the empty string: `{x=""}` matches series without `x`.
//! - A selector whose every matcher matches the empty string (`{job=~".*"}`, `{x=""}`) is
//!   refused: it would select every series. `{__name__=~".+"}` is accepted.
//! - `__name__` is the sample's name as Prometheus stores it (`foo_total` for a counter,
//!   `foo_bucket`, `foo_sum`, `foo_count` for a histogram); `le` is the bucket bound as
//!   written (`"+Inf"`).
//! - Several `match[]`: a series is returned when any of them selects it.
//!
//! Tenancy ([`Selector::scoped`]), for callers who see one tenant's scope: the scope is always
//! *appended*, never replaced; series outside it are never returned whatever the selectors
//! say. A selector that explicitly asks for another tenant's data is refused (403) instead of
//! answering an empty body:
//! - `tenant`: in a tenant's view every series is the caller's, so `tenant` names the view,
//!   not a label. A `tenant` matcher must match the caller's tenant id and must not match the
//!   empty string (series lacking the tenant); it is then dropped. `tenant="beta"`,
//!   `tenant!="alpha"`, `tenant=""`, `tenant=~"alpha|"` are refused.
//! - `account`: a matcher must be able to match one of the tenant's accounts, the empty
//!   string (series without an account label: partitions, the cluster) or `__overflow__`
//!   (series folded at the label budget, owned by the cluster scope). `account="beta-acct"` is
//!   refused; `account=~"beta-acct|alpha-acct"` is accepted and returns alpha's only.
//! - These decisions depend on the selector text and the caller's own scope only, never on
//!   which series exist: a refusal cannot be used to learn anything about another tenant.
//! - Hidden labels (`user`, and `[pii] labels`) are matched against the value the caller
//!   sees: for a viewer the pseudonym, never the clear name, so no regex can probe names.

use crate::policy::tenancy::TenantScope;
use collector::store::{format_value, Family, Kind, Rewrite, Sample, Series};
use regex::{Regex, RegexBuilder};

/// Longest selector accepted, in bytes after URL decoding.
pub const MAX_SELECTOR_LEN: usize = 4096;
/// Most matchers in one selector, the metric name included.
pub const MAX_MATCHERS: usize = 20;
/// Most `match[]` parameters in one request.
pub const MAX_SELECTORS: usize = 32;
/// Compiled size limit of one regex (the `regex` crate's `size_limit`), and of its lazy DFA.
pub const REGEX_SIZE_LIMIT: usize = 128 << 10;
/// Most regex matchers (`=~`, `!~`) in one request, all `match[]` together: compiling is
/// the expensive part of a selector (up to about a millisecond at the size limit).
pub const MAX_REGEXES: usize = 64;

/// The folded-series value of every label but `state` (see `collector::families::OVERFLOW`).
const OVERFLOW: &str = collector::families::OVERFLOW;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        }
    }
}

/// One `label op "value"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: Op,
    pub value: String,
    /// The anchored regex, for `=~` and `!~`.
    re: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling (and bounding) its regex.
    pub fn new(label: &str, op: Op, value: &str) -> Result<Matcher, SelectorError> {
        let re = match op {
            Op::Eq | Op::Ne => None,
            Op::Re | Op::NotRe => Some(compile(label, value)?),
        };
        Ok(Matcher {
            label: label.to_owned(),
            op,
            value: value.to_owned(),
            re,
        })
    }

    /// Whether a label value (the empty string for a missing label) matches.
    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (Op::Eq, _) => v == self.value,
            (Op::Ne, _) => v != self.value,
            (Op::Re, Some(re)) => re.is_match(v),
            (Op::NotRe, Some(re)) => !re.is_match(v),
            // Regex matchers are only built with their regex.
            (Op::Re | Op::NotRe, None) => false,
        }
    }
}

fn compile(label: &str, pattern: &str) -> Result<Regex, SelectorError> {
    let build = |p: &str| {
        RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(64)
            .build()
    };
    let refuse = |e: regex::Error| SelectorError::Regex {
        label: label.to_owned(),
        why: match e {
            regex::Error::CompiledTooBig(_) => "too large",
            _ => "invalid",
        },
    };
    // Parsed alone first (cheap: no compiling): a pattern that is not a regex by itself
    // (`a)|(.*`) could otherwise close the anchoring group and match unanchored.
    regex_syntax::ParserBuilder::new()
        .nest_limit(64)
        .build()
        .parse(pattern)
        .map_err(|_| SelectorError::Regex {
            label: label.to_owned(),
            why: "invalid",
        })?;
    build(&format!("^(?s:{pattern})$")).map_err(refuse)
}

/// One parsed selector: its matchers, the metric name as a `__name__` matcher.
#[derive(Debug, Clone)]
pub struct Selector {
    pub matchers: Vec<Matcher>,
}

/// Why a selector is not accepted (400). Short, and never echoes the input back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("empty selector")]
    Empty,
    #[error("selector longer than {MAX_SELECTOR_LEN} bytes")]
    TooLong,
    #[error("more than {MAX_MATCHERS} matchers")]
    TooManyMatchers,
    #[error("{what} at byte {at}")]
    Syntax { at: usize, what: &'static str },
    #[error("regex for label {label} is {why}")]
    Regex { label: String, why: &'static str },
    #[error("metric name given twice")]
    NameTwice,
    #[error("more than {MAX_REGEXES} regex matchers in one request")]
    TooManyRegexes,
    #[error("every matcher matches the empty string; add one that does not, e.g. a metric name")]
    MatchesEmpty,
}

fn syntax(at: usize, what: &'static str) -> SelectorError {
    SelectorError::Syntax { at, what }
}

struct Lexer<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, plus `:` for metric names.
    fn name(&mut self, colons: bool) -> Option<&'a str> {
        let start = self.at;
        let ok = |b: u8, first: bool| {
            b.is_ascii_alphabetic()
                || b == b'_'
                || (!first && b.is_ascii_digit())
                || (colons && b == b':')
        };
        while let Some(b) = self.peek() {
            if !ok(b, self.at == start) {
                break;
            }
            self.at += 1;
        }
        if self.at == start {
            return None;
        }
        // Only ASCII was consumed, so the slice is on character boundaries.
        std::str::from_utf8(&self.s[start..self.at]).ok()
    }

    fn op(&mut self) -> Result<Op, SelectorError> {
        let at = self.at;
        let op = match (self.peek(), self.s.get(self.at + 1).copied()) {
            (Some(b'='), Some(b'~')) => Op::Re,
            (Some(b'!'), Some(b'~')) => Op::NotRe,
            (Some(b'!'), Some(b'=')) => Op::Ne,
            (Some(b'='), _) => Op::Eq,
            _ => return Err(syntax(at, "expected =, !=, =~ or !~")),
        };
        self.at += if op == Op::Eq { 1 } else { 2 };
        Ok(op)
    }

    /// A quoted string: `"..."` or `'...'` with Go escapes, or `` `...` `` raw.
    fn string(&mut self) -> Result<String, SelectorError> {
        let start = self.at;
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'' | b'`')) => q,
            _ => return Err(syntax(start, "expected a quoted string")),
        };
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let at = self.at;
            let Some(b) = self.peek() else {
                return Err(syntax(start, "unterminated string"));
            };
            self.at += 1;
            match b {
                _ if b == quote => break,
                b'\n' if quote != b'`' => return Err(syntax(at, "newline in string")),
                b'\\' if quote != b'`' => self.escape(quote, &mut out)?,
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| syntax(start, "string is not UTF-8"))
    }

    fn escape(&mut self, quote: u8, out: &mut Vec<u8>) -> Result<(), SelectorError> {
        let at = self.at - 1;
        let bad = || syntax(at, "bad escape in string");
        let c = self.peek().ok_or_else(bad)?;
        self.at += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            _ if c == quote => Some(quote),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        if c.is_ascii_digit() {
            // Octal: the digit just read is the first of three.
            self.at -= 1;
        }
        let mut digits = |n: usize, radix: u32| -> Result<u32, SelectorError> {
            let end = self.at + n;
            let text = self.s.get(self.at..end).ok_or_else(bad)?;
            let text = std::str::from_utf8(text).map_err(|_| bad())?;
            if !text.chars().all(|ch| ch.is_digit(radix)) {
                return Err(bad());
            }
            self.at = end;
            u32::from_str_radix(text, radix).map_err(|_| bad())
        };
        match c {
            b'x' => out.push(u8::try_from(digits(2, 16)?).map_err(|_| bad())?),
            b'0'..=b'7' => out.push(u8::try_from(digits(3, 8)?).map_err(|_| bad())?),
            b'u' | b'U' => {
                let n = if c == b'u' { 4 } else { 8 };
                let ch = char::from_u32(digits(n, 16)?).ok_or_else(bad)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(bad()),
        }
        Ok(())
    }
}

/// Parses one selector (already URL-decoded).
pub fn parse(input: &str) -> Result<Selector, SelectorError> {
    let mut regexes_left = MAX_REGEXES;
    parse_counting(input, &mut regexes_left)
}

/// [`parse`], taking each regex matcher from `regexes_left`.
fn parse_counting(input: &str, regexes_left: &mut usize) -> Result<Selector, SelectorError> {
    if input.len() > MAX_SELECTOR_LEN {
        return Err(SelectorError::TooLong);
    }
    let mut lx = Lexer {
        s: input.as_bytes(),
        at: 0,
    };
    lx.skip_ws();
    if lx.peek().is_none() {
        return Err(SelectorError::Empty);
    }
    let mut matchers = Vec::new();
    let mut named = false;
    if lx.peek() != Some(b'{') {
        let at = lx.at;
        let name = lx
            .name(true)
            .ok_or_else(|| syntax(at, "expected a metric name or {"))?;
        matchers.push(Matcher::new("__name__", Op::Eq, name)?);
        named = true;
        lx.skip_ws();
    }
    if lx.eat(b'{') {
        loop {
            lx.skip_ws();
            if lx.eat(b'}') {
                break;
            }
            let at = lx.at;
            let label = lx
                .name(false)
                .ok_or_else(|| syntax(at, "expected a label name"))?;
            lx.skip_ws();
            let op = lx.op()?;
            lx.skip_ws();
            let value = lx.string()?;
            if label == "__name__" {
                if named && op == Op::Eq {
                    return Err(SelectorError::NameTwice);
                }
                named |= op == Op::Eq;
            }
            if matchers.len() >= MAX_MATCHERS {
                return Err(SelectorError::TooManyMatchers);
            }
            if matches!(op, Op::Re | Op::NotRe) {
                *regexes_left = regexes_left
                    .checked_sub(1)
                    .ok_or(SelectorError::TooManyRegexes)?;
            }
            matchers.push(Matcher::new(label, op, &value)?);
            lx.skip_ws();
            if lx.eat(b',') {
                continue;
            }
            let at = lx.at;
            if !lx.eat(b'}') {
                return Err(syntax(at, "expected , or }"));
            }
            break;
        }
        lx.skip_ws();
    }
    if lx.peek().is_some() {
        return Err(syntax(lx.at, "unexpected text after the selector"));
    }
    if matchers.iter().all(|m| m.matches("")) {
        return Err(SelectorError::MatchesEmpty);
    }
    Ok(Selector { matchers })
}

// ---------------------------------------------------------------------------------------
// The query string

/// Why a request's parameters are refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("at least one match[] is required")]
    NoMatch,
    #[error("more than {MAX_SELECTORS} match[] parameters")]
    TooMany,
    #[error("unknown query parameter; only match[] is accepted")]
    Unknown,
    #[error("bad URL encoding in the query string")]
    Encoding,
    #[error("match[] #{index}: {error}")]
    Selector { index: usize, error: SelectorError },
}

fn url_decode(s: &str, max: usize) -> Result<String, ParamsError> {
    crate::policy::query::url_decode(s, max).map_err(|_| ParamsError::Encoding)
}

/// Parses every `match[]` of a raw query string. Each one is parsed and checked: any bad one
/// refuses the whole request. Any other parameter, empty or repeated, is refused.
pub fn parse_params(query: Option<&str>) -> Result<Vec<Selector>, ParamsError> {
    let mut out = Vec::new();
    let mut regexes_left = MAX_REGEXES;
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if url_decode(k, 16)? != "match[]" {
            return Err(ParamsError::Unknown);
        }
        if out.len() >= MAX_SELECTORS {
            return Err(ParamsError::TooMany);
        }
        let index = out.len() + 1;
        let v = url_decode(v, MAX_SELECTOR_LEN)?;
        let sel = parse_counting(&v, &mut regexes_left);
        out.push(sel.map_err(|error| ParamsError::Selector { index, error })?);
    }
    if out.is_empty() {
        return Err(ParamsError::NoMatch);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Tenancy

/// Why a selector is refused for a tenant (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeRefusal {
    #[error("match[] #{0}: the account matcher selects none of your tenant's accounts")]
    Account(usize),
    #[error(
        "match[] #{0}: the tenant matcher must select your tenant, and only series that have one"
    )]
    Tenant(usize),
}

impl Selector {
    /// The selector for a caller who sees `scope` only (see the module documentation): the
    /// `tenant` matchers checked and dropped, the `account` matchers checked. `index` is the
    /// selector's 1-based position, for the message. `seen` gives the value the caller sees
    /// for a label value (its pseudonym when the label is hidden from the caller).
    pub fn scoped(
        &self,
        index: usize,
        scope: &TenantScope,
        seen: &dyn Fn(&str, &str) -> String,
    ) -> Result<Selector, ScopeRefusal> {
        let on = |label: &'static str| self.matchers.iter().filter(move |m| m.label == label);
        // The selector's `tenant` matchers together: the caller's id, and not "no tenant".
        if on("tenant").next().is_some()
            && (!on("tenant").all(|m| m.matches(scope.tenant.as_str()))
                || on("tenant").all(|m| m.matches("")))
        {
            return Err(ScopeRefusal::Tenant(index));
        }
        // The `account` matchers together must leave a value the caller can have.
        if on("account").next().is_some() {
            let mut possible = scope
                .accounts
                .iter()
                .map(|a| seen("account", a))
                .chain(["".to_owned(), OVERFLOW.to_owned()]);
            if !possible.any(|v| on("account").all(|m| m.matches(&v))) {
                return Err(ScopeRefusal::Account(index));
            }
        }
        Ok(Selector {
            matchers: self
                .matchers
                .iter()
                .filter(|m| m.label != "tenant")
                .cloned()
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation against the store

/// The samples of a family by kind: plain value (or counter), bucket, sum, count.
fn sample_slot(s: Sample) -> usize {
    match s {
        Sample::Value => 0,
        Sample::Bucket(_) => 1,
        Sample::Sum => 2,
        Sample::Count => 3,
    }
}

const SAMPLES: [Sample; 4] = [
    Sample::Value,
    Sample::Bucket(0.0),
    Sample::Sum,
    Sample::Count,
];

/// Where a matcher finds its label in a family's series.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// `labels[i]`; `hidden`: compare with what the caller sees.
    Label { i: usize, hidden: bool },
    /// The bucket bound of a histogram bucket, `""` for other samples.
    Le,
    /// The family has no such label: `""`.
    Absent,
}

/// One selector as it applies to one family: which samples its name lets through, and
/// where each of its other matchers looks.
#[derive(Debug)]
struct Alt<'s> {
    samples: [bool; 4],
    checks: Vec<(&'s Matcher, Slot)>,
}

/// Selectors resolved against a generation's families once per request; then each series
/// costs one comparison per matcher, and families no selector names are skipped whole.
#[derive(Debug)]
pub struct Selection<'s> {
    per_family: Vec<Vec<Alt<'s>>>,
}

impl<'s> Selection<'s> {
    /// `hides(label)`: whether the caller sees that label's values rewritten.
    pub fn new(
        selectors: &'s [Selector],
        families: &[Family],
        hides: &dyn Fn(&str) -> bool,
    ) -> Self {
        let per_family = families
            .iter()
            .map(|f| {
                let names = SAMPLES.map(|s| {
                    let possible = match f.kind {
                        Kind::Histogram => s != Sample::Value,
                        Kind::Gauge | Kind::Counter => s == Sample::Value,
                    };
                    possible.then(|| f.sample_name(s))
                });
                selectors
                    .iter()
                    .filter_map(|sel| {
                        let mut samples = [false; 4];
                        for (slot, name) in names.iter().enumerate() {
                            samples[slot] = name.as_ref().is_some_and(|n| {
                                sel.matchers
                                    .iter()
                                    .filter(|m| m.label == "__name__")
                                    .all(|m| m.matches(n))
                            });
                        }
                        if !samples.iter().any(|s| *s) {
                            return None;
                        }
                        let checks = sel
                            .matchers
                            .iter()
                            .filter(|m| m.label != "__name__")
                            .map(|m| {
                                let slot = match f.label_names.iter().position(|l| *l == m.label) {
                                    Some(i) => Slot::Label {
                                        i,
                                        hidden: hides(&m.label),
                                    },
                                    None if m.label == "le" && f.kind == Kind::Histogram => {
                                        Slot::Le
                                    }
                                    None => Slot::Absent,
                                };
                                (m, slot)
                            })
                            .collect();
                        Some(Alt { samples, checks })
                    })
                    .collect()
            })
            .collect();
        Selection { per_family }
    }

    /// Whether any selector could pick a series of the family at `index`.
    pub fn names_family(&self, index: usize) -> bool {
        self.per_family.get(index).is_some_and(|a| !a.is_empty())
    }

    /// Whether any selector picks `s`, a series of the family at `index`. `rewrite` is the
    /// caller's view of hidden labels (the encoder's rewrite: `None` keeps the value).
    pub fn picks(&self, index: usize, s: &Series, rewrite: Option<Rewrite<'_>>) -> bool {
        let Some(alts) = self.per_family.get(index) else {
            return false;
        };
        let slot = sample_slot(s.sample);
        alts.iter().any(|alt| {
            alt.samples[slot]
                && alt.checks.iter().all(|(m, where_)| match *where_ {
                    Slot::Label { i, hidden } => {
                        let v = s.labels.get(i).map_or("", |v| &**v);
                        match rewrite.filter(|_| hidden).and_then(|r| r(&m.label, v)) {
                            Some(shown) => m.matches(&shown),
                            None => m.matches(v),
                        }
                    }
                    Slot::Le => match s.sample {
                        Sample::Bucket(b) => m.matches(&format_value(b)),
                        _ => m.matches(""),
                    },
                    Slot::Absent => m.matches(""),
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tenancy::TenantId;

    /// (input, Ok(rendered matchers) | Err(message fragment))
    const PARSE: &[(&str, Result<&str, &str>)] = &[
        ("up", Ok("__name__=up")),
        ("  slurm_job_cpus  ", Ok("__name__=slurm_job_cpus")),
        ("ns:rule_x", Ok("__name__=ns:rule_x")),
        ("up{}", Ok("__name__=up")),
        ("up{job=\"a\"}", Ok("__name__=up job=a")),
        ("{__name__=\"up\",job!=\"b\"}", Ok("__name__=up job!=b")),
        ("{ a = 'x' , b =~ \"y.*\" , }", Ok("a=x b=~y.*")),
        ("{a=`raw\\n`}", Ok("a=raw\\n")),
        ("{a=\"q\\\"\\\\\\n\\t\"}", Ok("a=q\"\\\n\t")),
        ("{a='it\\'s'}", Ok("a=it's")),
        ("{a=\"\\x41\\101\\u00e9\\U0001F600\"}", Ok("a=AAé😀")),
        ("{a!~\"x\",b=\"1\"}", Ok("a!~x b=1")),
        ("{__name__=~\".+\"}", Ok("__name__=~.+")),
        ("up{__name__=~\"u.*\"}", Ok("__name__=up __name__=~u.*")),
        ("", Err("empty selector")),
        ("   ", Err("empty selector")),
        ("{}", Err("every matcher matches the empty string")),
        (
            "{job=~\".*\"}",
            Err("every matcher matches the empty string"),
        ),
        ("{x=\"\"}", Err("every matcher matches the empty string")),
        (
            "{x!=\"a\",y!~\"b\"}",
            Err("every matcher matches the empty string"),
        ),
        (
            "{account=~\"beta-acct|.*\"}",
            Err("every matcher matches the empty string"),
        ),
        (
            "{__name__=~\".*\"}",
            Err("every matcher matches the empty string"),
        ),
        ("up{__name__=\"down\"}", Err("metric name given twice")),
        ("9up", Err("expected a metric name or { at byte 0")),
        ("up{", Err("expected a label name at byte 3")),
        ("up{a}", Err("expected =, !=, =~ or !~ at byte 4")),
        ("up{a==\"x\"}", Err("expected a quoted string at byte 5")),
        ("up{a=x}", Err("expected a quoted string at byte 5")),
        ("up{a=\"x\"", Err("expected , or } at byte 8")),
        (
            "up{a=\"x\"} extra",
            Err("unexpected text after the selector at byte 10"),
        ),
        (
            "up[5m]",
            Err("unexpected text after the selector at byte 2"),
        ),
        (
            "up offset 5m",
            Err("unexpected text after the selector at byte 3"),
        ),
        ("up{a=\"x}", Err("unterminated string at byte 5")),
        ("up{a=\"x\ny\"}", Err("newline in string at byte 7")),
        ("up{a=\"\\q\"}", Err("bad escape in string at byte 6")),
        ("up{a=\"\\'\"}", Err("bad escape in string at byte 6")),
        ("up{a=\"\\xZZ\"}", Err("bad escape in string at byte 6")),
        ("up{a=\"\\uD800\"}", Err("bad escape in string at byte 6")),
        ("up{a=\"\\xff\"}", Err("string is not UTF-8 at byte 5")),
        ("up{\"a\"=\"x\"}", Err("expected a label name at byte 3")),
        ("{\"up\"}", Err("expected a label name at byte 1")),
        ("up{a=~\"(\"}", Err("regex for label a is invalid")),
        ("up{a=~\"x)|(.*\"}", Err("regex for label a is invalid")),
        ("up{a=~\"(?x)a#\"}", Err("regex for label a is invalid")),
        (
            "up{a=~\"a{1000}{1000}\"}",
            Err("regex for label a is too large"),
        ),
    ];

    fn render(s: &Selector) -> String {
        s.matchers
            .iter()
            .map(|m| format!("{}{}{}", m.label, m.op.as_str(), m.value))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn the_parse_table() {
        let mut wrong = Vec::new();
        for (input, want) in PARSE {
            let got = parse(input).map(|s| render(&s)).map_err(|e| e.to_string());
            let ok = match (want, &got) {
                (Ok(w), Ok(g)) => w == g,
                (Err(w), Err(g)) => g.contains(w),
                _ => false,
            };
            if !ok {
                wrong.push(format!("{input:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn bounds_are_enforced() {
        let long = format!("up{{a=\"{}\"}}", "x".repeat(MAX_SELECTOR_LEN));
        assert_eq!(parse(&long).err(), Some(SelectorError::TooLong));
        let many = (0..=MAX_MATCHERS)
            .map(|i| format!("l{i}=\"v\""))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            parse(&format!("{{{many}}}")).err(),
            Some(SelectorError::TooManyMatchers)
        );
        let ok = (0..MAX_MATCHERS - 1)
            .map(|i| format!("l{i}=\"v\""))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse(&format!("up{{{ok}}}")).is_ok());
    }

    #[test]
    fn regexes_are_fully_anchored_and_dot_matches_newline() {
        let s = parse("{a=~\"b\"}").expect("parses");
        let m = &s.matchers[0];
        assert!(m.matches("b"));
        assert!(!m.matches("abc"), "anchored at both ends");
        assert!(!m.matches("b\n"));
        let s = parse("{a=~\"b|c\"}").expect("parses");
        assert!(
            !s.matchers[0].matches("bc"),
            "the alternation is inside the group"
        );
        let s = parse("{a=~\"x.y\"}").expect("parses");
        assert!(s.matchers[0].matches("x\ny"));
        let s = parse("{a!~\"x.*\",b=\"1\"}").expect("parses");
        assert!(s.matchers[0].matches("yx") && !s.matchers[0].matches("xy"));
        let s = parse("{a=~\"(?m)b$\"}").expect("parses");
        assert!(
            !s.matchers[0].matches("b\nzzz"),
            "flags stay inside the group"
        );
    }

    #[test]
    fn query_strings() {
        let q = |s: &str| parse_params(Some(s)).map(|v| v.iter().map(render).collect::<Vec<_>>());
        assert_eq!(q("match[]=up"), Ok(vec!["__name__=up".to_owned()]));
        assert_eq!(
            q("match%5B%5D=%7Ba%3D%22x+y%22%7D&&match[]=down"),
            Ok(vec!["a=x y".to_owned(), "__name__=down".to_owned()])
        );
        assert_eq!(q(""), Err(ParamsError::NoMatch));
        assert_eq!(parse_params(None).err(), Some(ParamsError::NoMatch));
        assert_eq!(q("match[]=up&foo=1"), Err(ParamsError::Unknown));
        assert_eq!(q("match=up"), Err(ParamsError::Unknown));
        assert_eq!(q("match[]=up&match[]=up&x"), Err(ParamsError::Unknown));
        assert_eq!(q("match[]=%zz"), Err(ParamsError::Encoding));
        assert_eq!(q("match[]=%"), Err(ParamsError::Encoding));
        assert_eq!(q("match[]=%ff"), Err(ParamsError::Encoding));
        assert_eq!(
            q("match[]=up&match[]={x=\"\"}"),
            Err(ParamsError::Selector {
                index: 2,
                error: SelectorError::MatchesEmpty
            })
        );
        assert_eq!(
            q("match[]="),
            Err(ParamsError::Selector {
                index: 1,
                error: SelectorError::Empty
            })
        );
        let regexes = (0..MAX_SELECTORS)
            .map(|i| format!("match[]=up{{a=~\"x{i}\",b=~\"y\",c!~\"z\"}}"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            q(&regexes),
            Err(ParamsError::Selector {
                index: MAX_REGEXES / 3 + 1,
                error: SelectorError::TooManyRegexes
            })
        );
        let many = vec!["match[]=up"; MAX_SELECTORS + 1].join("&");
        assert_eq!(q(&many), Err(ParamsError::TooMany));
        let max = vec!["match[]=up"; MAX_SELECTORS].join("&");
        assert_eq!(q(&max).map(|v| v.len()), Ok(MAX_SELECTORS));
        let long = format!("match[]={}", "%41".repeat(MAX_SELECTOR_LEN + 10));
        assert_eq!(
            q(&long),
            Err(ParamsError::Selector {
                index: 1,
                error: SelectorError::TooLong
            })
        );
        assert_eq!(
            ParamsError::Selector {
                index: 2,
                error: SelectorError::MatchesEmpty
            }
            .to_string(),
            "match[] #2: every matcher matches the empty string; add one that does not, e.g. a metric name"
        );
    }

    fn scope() -> TenantScope {
        TenantScope {
            tenant: TenantId::parse("alpha").expect("tenant"),
            accounts: ["alpha-acct".to_owned(), "alpha-2".to_owned()].into(),
            partitions: Default::default(),
            cluster: true,
        }
    }

    #[test]
    fn scope_refusals() {
        let clear = |_: &str, v: &str| v.to_owned();
        // (selector, Ok(matchers kept) | Err(refusal))
        let table: &[(&str, Result<&str, ScopeRefusal>)] = &[
            ("up{tenant=\"alpha\"}", Ok("__name__=up")),
            ("{tenant=\"alpha\"}", Ok("")),
            ("up{tenant=~\"alp.*\"}", Ok("__name__=up")),
            ("up{tenant=\"beta\"}", Err(ScopeRefusal::Tenant(1))),
            ("up{tenant!=\"alpha\"}", Err(ScopeRefusal::Tenant(1))),
            ("up{tenant!=\"beta\"}", Err(ScopeRefusal::Tenant(1))),
            ("up{tenant=\"\"}", Err(ScopeRefusal::Tenant(1))),
            ("up{tenant=~\"alpha|\"}", Err(ScopeRefusal::Tenant(1))),
            ("up{tenant!~\".+\"}", Err(ScopeRefusal::Tenant(1))),
            (
                "up{account=\"alpha-acct\"}",
                Ok("__name__=up account=alpha-acct"),
            ),
            (
                "up{account=~\"beta-acct|alpha-2\"}",
                Ok("__name__=up account=~beta-acct|alpha-2"),
            ),
            ("up{account=\"\"}", Ok("__name__=up account=")),
            (
                "up{account!=\"alpha-acct\"}",
                Ok("__name__=up account!=alpha-acct"),
            ),
            (
                "up{account=\"__overflow__\"}",
                Ok("__name__=up account=__overflow__"),
            ),
            ("up{account=\"beta-acct\"}", Err(ScopeRefusal::Account(1))),
            ("up{account=~\"beta.*\"}", Err(ScopeRefusal::Account(1))),
            (
                "up{account=~\"b.+\",account!~\"alpha.*\"}",
                Err(ScopeRefusal::Account(1)),
            ),
            (
                "up{account=\"alpha-acct\",account=\"beta-acct\"}",
                Err(ScopeRefusal::Account(1)),
            ),
            (
                "up{account=~\".+\",account!~\"alpha.*\"}",
                Ok("__name__=up account=~.+ account!~alpha.*"),
            ),
            ("up{tenant=~\"alpha|\",tenant!=\"\"}", Ok("__name__=up")),
        ];
        let mut wrong = Vec::new();
        for (input, want) in table {
            let sel = parse(input).expect(input);
            let got = sel.scoped(1, &scope(), &clear).map(|s| render(&s));
            if got.as_deref().map_err(Clone::clone) != want.clone() {
                wrong.push(format!("{input}: got {got:?}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // The account check sees what the caller sees: a hidden `account` is a pseudonym.
        let hidden = |l: &str, v: &str| {
            if l == "account" {
                format!("p_{v}")
            } else {
                v.to_owned()
            }
        };
        let sel = parse("up{account=\"alpha-acct\"}").expect("parses");
        assert_eq!(
            sel.scoped(3, &scope(), &hidden).err(),
            Some(ScopeRefusal::Account(3))
        );
        let sel = parse("up{account=\"p_alpha-acct\"}").expect("parses");
        assert!(sel.scoped(3, &scope(), &hidden).is_ok());
    }

    #[test]
    fn selection_matches_sample_names_labels_le_and_hidden_values() {
        use collector::store::{Histogram, Owner, Sink};
        let mut sink = Sink::default();
        let g = sink.gauge("slurm_user_jobs", "h", &["user", "account"]);
        g.push(Owner::Cluster, ["alice".into(), "a".into()], 1.0);
        g.push(Owner::Cluster, ["bob".into(), "b".into()], 2.0);
        let c = sink.counter("slurm_polls", "h", &[]);
        c.push(Owner::Cluster, [], 3.0);
        let h = sink.histogram("slurm_wait_seconds", "h", &["partition"]);
        let mut hist = Histogram::new(&[1.0]);
        hist.observe_n(0.5, 1);
        h.push_histogram(Owner::Cluster, ["p".into()], &hist);
        let fams = sink.into_families();
        let picked = |sel: &[&str], rewrite: Option<Rewrite<'_>>| {
            let sels: Vec<Selector> = sel.iter().map(|s| parse(s).expect(s)).collect();
            let selection = Selection::new(&sels, &fams, &|l| l == "user");
            let mut out = Vec::new();
            for (i, f) in fams.iter().enumerate() {
                for s in &f.series {
                    if selection.picks(i, s, rewrite) {
                        let labels: Vec<&str> = s.labels.iter().map(|l| &**l).collect();
                        out.push(format!("{}{:?}", f.sample_name(s.sample), labels));
                    }
                }
            }
            out
        };
        assert_eq!(
            picked(&["slurm_polls"], None),
            Vec::<String>::new(),
            "counters are _total"
        );
        assert_eq!(
            picked(&["slurm_polls_total"], None),
            ["slurm_polls_total[]"]
        );
        assert_eq!(
            picked(&["{__name__=~\"slurm_wait_seconds_(sum|count)\"}"], None),
            [
                "slurm_wait_seconds_sum[\"p\"]",
                "slurm_wait_seconds_count[\"p\"]"
            ]
        );
        assert_eq!(
            picked(&["slurm_wait_seconds_bucket{le=\"+Inf\"}"], None).len(),
            1
        );
        assert_eq!(
            picked(&["{__name__=~\"slurm_wait.*\",le=\"\"}"], None).len(),
            2,
            "sum and count have no le"
        );
        assert_eq!(
            picked(
                &["slurm_user_jobs{user=\"alice\"}", "{account=\"b\"}"],
                None
            ),
            [
                "slurm_user_jobs[\"alice\", \"a\"]",
                "slurm_user_jobs[\"bob\", \"b\"]"
            ]
        );
        assert_eq!(picked(&["slurm_user_jobs{missing=\"\"}"], None).len(), 2);
        // A viewer's rewrite: matchers on `user` see the pseudonym, never the clear name.
        let pseudo = |l: &str, v: &str| (l == "user").then(|| format!("u1_{}", v.len()));
        let r: &dyn Fn(&str, &str) -> Option<String> = &pseudo;
        assert!(picked(&["slurm_user_jobs{user=\"alice\"}"], Some(r)).is_empty());
        assert!(picked(&["slurm_user_jobs{user=~\"a.*\"}"], Some(r)).is_empty());
        assert_eq!(
            picked(&["slurm_user_jobs{user=\"u1_5\"}"], Some(r)).len(),
            1
        );
        let sels = [parse("slurm_polls_total").expect("parses")];
        let selection = Selection::new(&sels, &fams, &|_| false);
        assert!(!selection.names_family(0));
        assert!(selection.names_family(1));
        assert!(!selection.names_family(2));
        assert!(!selection.names_family(99));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Hostile input: any text, and text built from selector syntax, parses or is refused
        /// with an error; it never panics.
        #[test]
        fn hostile_selectors_never_panic(
            raw in ".{0,300}",
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "\"", "\\", ",", "=", "!=", "=~", "!~", "__name__", "account",
                    "tenant", "user", "a", ".*", "(", ")", "|", "[", "]", "+", "?", "{1000}",
                    "%", "%zz", "&", "match[]=", "\u{0}", "\u{1F600}", " ",
                ]),
                0..60,
            ),
        ) {
            let _ = parse(&raw);
            let _ = parse_params(Some(&raw));
            let built: String = pieces.concat();
            let _ = parse(&built);
            let _ = parse_params(Some(&format!("match[]={built}")));
        }
    }
}
