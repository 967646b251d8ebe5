//! The metric store: immutable generations of series, each tagged with its owner scope, and
//! the Prometheus text / OpenMetrics encoder (a pure function over families, used by the
//! gateway, `collect --once` and the textfile checks). Nothing here knows HTTP.
//!
//! Families build a [`Generation`] once per collection; [`Store::publish`] swaps it in with
//! an atomic pointer swap, so scrapes never wait on a collection and never see half of one.
//! Filtering for a tenant is by each series' [`Owner`], set when the series is made, never by
//! parsing labels back out of text.

use crate::model::Name;
use arc_swap::ArcSwap;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Who a series belongs to. Tenancy is decided on this, not on label text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// The exporter's own health: operators only.
    Exporter,
    /// Cluster-wide infrastructure (cluster totals, nodes).
    Cluster,
    Partition(Name),
    Account(Name),
    User {
        account: Name,
        user: Name,
    },
}

/// A label value: a static word (`allocated`) or a shared name from the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LabelValue {
    Static(&'static str),
    Shared(Name),
    Owned(Box<str>),
}

impl std::ops::Deref for LabelValue {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            LabelValue::Static(s) => s,
            LabelValue::Shared(s) => s,
            LabelValue::Owned(s) => s,
        }
    }
}

impl From<&'static str> for LabelValue {
    fn from(s: &'static str) -> Self {
        LabelValue::Static(s)
    }
}
impl From<&Name> for LabelValue {
    fn from(s: &Name) -> Self {
        LabelValue::Shared(s.clone())
    }
}
impl From<Name> for LabelValue {
    fn from(s: Name) -> Self {
        LabelValue::Shared(s)
    }
}
impl From<String> for LabelValue {
    fn from(s: String) -> Self {
        LabelValue::Owned(s.into_boxed_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// Which sample of a family a series is: histograms have buckets, a sum and a count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    Value,
    Bucket(f64),
    Sum,
    Count,
}

impl Sample {
    /// What the sample adds to its family's name on the wire (and in Prometheus' TSDB):
    /// counters `_total`, histograms `_bucket`, `_sum` and `_count`.
    pub fn suffix(self, kind: Kind) -> &'static str {
        match (kind, self) {
            (Kind::Counter, _) => "_total",
            (_, Sample::Bucket(_)) => "_bucket",
            (_, Sample::Sum) => "_sum",
            (_, Sample::Count) => "_count",
            _ => "",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Series {
    pub owner: Owner,
    pub labels: Box<[LabelValue]>,
    pub sample: Sample,
    pub value: f64,
}

/// One metric family: name, help, type, label names, and its series.
#[derive(Debug, Clone)]
pub struct Family {
    /// For counters, without the `_total` the samples carry.
    pub name: Cow<'static, str>,
    pub help: Cow<'static, str>,
    pub kind: Kind,
    pub label_names: Cow<'static, [&'static str]>,
    pub series: Vec<Series>,
}

impl Family {
    /// The name a sample of this family carries: the family name and [`Sample::suffix`].
    pub fn sample_name(&self, sample: Sample) -> Cow<'_, str> {
        match sample.suffix(self.kind) {
            "" => Cow::Borrowed(&*self.name),
            suffix => Cow::Owned(format!("{}{suffix}", self.name)),
        }
    }

    /// Adds a plain sample. `labels` must match `label_names` in length; a mismatch is a
    /// programming error caught by the tests, and is dropped rather than emitted broken.
    pub fn push<const N: usize>(&mut self, owner: Owner, labels: [LabelValue; N], value: f64) {
        self.push_sample(owner, Box::new(labels), Sample::Value, value);
    }

    pub fn push_sample(
        &mut self,
        owner: Owner,
        labels: Box<[LabelValue]>,
        sample: Sample,
        value: f64,
    ) {
        debug_assert_eq!(labels.len(), self.label_names.len(), "{}", self.name);
        if labels.len() == self.label_names.len() {
            self.series.push(Series {
                owner,
                labels,
                sample,
                value,
            });
        }
    }

    /// Adds a histogram from cumulative bucket counts (`bounds[i]` -> `cumulative[i]`).
    pub fn push_histogram<const N: usize>(
        &mut self,
        owner: Owner,
        labels: [LabelValue; N],
        h: &Histogram,
    ) {
        let labels: Box<[LabelValue]> = Box::new(labels);
        let mut cum = 0u64;
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            cum += n;
            self.push_sample(
                owner.clone(),
                labels.clone(),
                Sample::Bucket(*bound),
                cum as f64,
            );
        }
        cum += h.overflow;
        self.push_sample(
            owner.clone(),
            labels.clone(),
            Sample::Bucket(f64::INFINITY),
            cum as f64,
        );
        self.push_sample(owner.clone(), labels.clone(), Sample::Sum, h.sum);
        self.push_sample(owner, labels, Sample::Count, cum as f64);
    }
}

/// A fixed-bucket histogram being filled.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub overflow: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            overflow: 0,
            sum: 0.0,
        }
    }

    pub fn observe_n(&mut self, v: f64, n: u64) {
        match self.bounds.iter().position(|b| v <= *b) {
            Some(i) => self.counts[i] += n,
            None => self.overflow += n,
        }
        self.sum += v * n as f64;
    }
}

/// Collects families while a generation is being built.
#[derive(Debug, Default)]
pub struct Sink {
    families: Vec<Family>,
}

impl Sink {
    pub fn family(
        &mut self,
        kind: Kind,
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        label_names: &'static [&'static str],
    ) -> &mut Family {
        self.families.push(Family {
            name: name.into(),
            help: help.into(),
            kind,
            label_names: Cow::Borrowed(label_names),
            series: Vec::new(),
        });
        let last = self.families.len() - 1;
        &mut self.families[last]
    }

    pub fn gauge(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        label_names: &'static [&'static str],
    ) -> &mut Family {
        self.family(Kind::Gauge, name, help, label_names)
    }

    pub fn counter(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        label_names: &'static [&'static str],
    ) -> &mut Family {
        self.family(Kind::Counter, name, help, label_names)
    }

    pub fn histogram(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        label_names: &'static [&'static str],
    ) -> &mut Family {
        self.family(Kind::Histogram, name, help, label_names)
    }

    /// Adds families made elsewhere (ingested from Prometheus-text sources).
    pub fn extend(&mut self, families: impl IntoIterator<Item = Family>) {
        self.families.extend(families);
    }

    /// Number of families made so far.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The families made since the sink had `first` of them.
    pub fn families_from(&mut self, first: usize) -> &mut [Family] {
        let first = first.min(self.families.len());
        &mut self.families[first..]
    }

    pub fn into_families(self) -> Vec<Family> {
        self.families
    }
}

/// Exposition format. Which one a scraper gets (content negotiation) is the gateway's
/// business; the collector only writes both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text 0.0.4.
    Text,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

/// Appends a sample value the way Prometheus parses it.
fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format(v).as_bytes());
    }
}

/// A sample value or `le` bound as the encoder writes it (`le` label values are matched as
/// written: `"1"`, `"0.5"`, `"+Inf"`).
pub fn format_value(v: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_value(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

fn write_escaped_label(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

fn escaped_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Encodes the families' series that `visible` lets through. Families with no visible
/// series are left out entirely.
pub fn encode(
    families: &[Family],
    format: Format,
    visible: &dyn Fn(&Owner) -> bool,
    out: &mut Vec<u8>,
) {
    encode_with(families, format, visible, None, out)
}

/// Rewrites a label value for a view (`label name`, `value`) -> replacement; `None` keeps it.
pub type Rewrite<'a> = &'a dyn Fn(&str, &str) -> Option<String>;

/// [`encode`] with label values rewritten on the way out (per-tenant pseudonyms).
pub fn encode_with(
    families: &[Family],
    format: Format,
    visible: &dyn Fn(&Owner) -> bool,
    rewrite: Option<Rewrite<'_>>,
    out: &mut Vec<u8>,
) {
    encode_filtered(families, format, None, visible, rewrite, out)
}

/// Keeps a family by its index in the generation (a tenant's series quota).
pub type KeepFamily<'a> = &'a dyn Fn(usize) -> bool;

/// [`encode_with`] over the families `keep` lets through.
pub fn encode_filtered(
    families: &[Family],
    format: Format,
    keep: Option<KeepFamily<'_>>,
    visible: &dyn Fn(&Owner) -> bool,
    rewrite: Option<Rewrite<'_>>,
    out: &mut Vec<u8>,
) {
    encode_selected(
        families,
        format,
        keep,
        &|_, _, s| visible(&s.owner),
        rewrite,
        out,
    )
}

/// Picks single series: (family index in the generation, family, series) -> shown.
pub type Select<'a> = &'a dyn Fn(usize, &Family, &Series) -> bool;

/// THE encoder: the series of the families `keep` lets through that `select` picks, label
/// values rewritten by `rewrite`. Families with no picked series are left out entirely.
/// `keep` is asked once per family, before any of its series, so it is the cheap way to
/// skip whole families; `select` sees every series of the others.
pub fn encode_selected(
    families: &[Family],
    format: Format,
    keep: Option<KeepFamily<'_>>,
    select: Select<'_>,
    rewrite: Option<Rewrite<'_>>,
    out: &mut Vec<u8>,
) {
    let mut header = String::new();
    for (i, f) in families.iter().enumerate() {
        if keep.is_some_and(|k| !k(i)) {
            continue;
        }
        let mut shown = f.series.iter().filter(|s| select(i, f, s)).peekable();
        if shown.peek().is_none() {
            continue;
        }
        let base = &*f.name;
        let header_name: Cow<str> = match (f.kind, format) {
            (Kind::Counter, Format::Text) => Cow::Owned(format!("{base}_total")),
            _ => Cow::Borrowed(base),
        };
        header.clear();
        let _ = writeln!(header, "# HELP {header_name} {}", escaped_help(&f.help));
        let _ = writeln!(header, "# TYPE {header_name} {}", f.kind.as_str());
        out.extend_from_slice(header.as_bytes());
        for s in shown {
            out.extend_from_slice(base.as_bytes());
            out.extend_from_slice(s.sample.suffix(f.kind).as_bytes());
            let le = match s.sample {
                Sample::Bucket(b) => Some(b),
                _ => None,
            };
            if !s.labels.is_empty() || le.is_some() {
                out.push(b'{');
                let mut first = true;
                for (name, value) in f.label_names.iter().zip(s.labels.iter()) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"=\"");
                    match rewrite.and_then(|r| r(name, value)) {
                        Some(v) => write_escaped_label(out, &v),
                        None => write_escaped_label(out, value),
                    }
                    out.push(b'"');
                }
                if let Some(b) = le {
                    if !first {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"le=\"");
                    write_value(out, b);
                    out.push(b'"');
                }
                out.push(b'}');
            }
            out.push(b' ');
            write_value(out, s.value);
            out.push(b'\n');
        }
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

/// One published collection: all families, immutable. How it is served (content
/// negotiation, compression, per-view body caches) is the gateway's business.
#[derive(Debug)]
pub struct Generation {
    pub seq: u64,
    /// Wall-clock time it was published, seconds since the epoch.
    pub published_epoch: f64,
    pub families: Vec<Family>,
}

impl Generation {
    pub fn new(seq: u64, published_epoch: f64, families: Vec<Family>) -> Self {
        Generation {
            seq,
            published_epoch,
            families,
        }
    }

    pub fn series_count(&self) -> usize {
        self.families.iter().map(|f| f.series.len()).sum()
    }
}

/// Prepends a `cluster` label to every series (several clusters in one process). Families
/// that already carry a `cluster` label (`slurm_info`) are left as they are.
pub fn label_cluster(families: &mut [Family], cluster: &Name) {
    for f in families.iter_mut() {
        if f.label_names.contains(&"cluster") {
            continue;
        }
        let mut names = Vec::with_capacity(f.label_names.len() + 1);
        names.push("cluster");
        names.extend_from_slice(&f.label_names);
        f.label_names = Cow::Owned(names);
        for s in f.series.iter_mut() {
            let mut labels = Vec::with_capacity(s.labels.len() + 1);
            labels.push(LabelValue::Shared(cluster.clone()));
            labels.extend(s.labels.iter().cloned());
            s.labels = labels.into_boxed_slice();
        }
    }
}

/// Merges families of the same name (from several clusters) into one, keeping the order of
/// first appearance, so each name has one HELP and TYPE.
pub fn merge_families(families: impl IntoIterator<Item = Family>) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    let mut index: HashMap<Cow<'static, str>, usize> = HashMap::new();
    for f in families {
        match index.get(&f.name) {
            Some(&i) if out[i].kind == f.kind && out[i].label_names == f.label_names => {
                out[i].series.extend(f.series)
            }
            _ => {
                index.insert(f.name.clone(), out.len());
                out.push(f);
            }
        }
    }
    out
}

/// The current generation, swapped atomically; readers never block writers.
#[derive(Debug)]
pub struct Store {
    current: ArcSwap<Generation>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            current: ArcSwap::from_pointee(Generation::new(0, 0.0, Vec::new())),
        }
    }
}

impl Store {
    pub fn load(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    pub fn publish(&self, families: Vec<Family>, published_epoch: f64) -> Arc<Generation> {
        let seq = self.current.load().seq + 1;
        let g = Arc::new(Generation::new(seq, published_epoch, families));
        self.current.store(g.clone());
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_families() -> Vec<Family> {
        let mut sink = Sink::default();
        let f = sink.gauge("slurm_test_nodes", "Nodes\nby state", &["state"]);
        f.push(Owner::Cluster, ["idle".into()], 3.0);
        f.push(Owner::Cluster, ["we\"ird\\".into()], 0.5);
        let c = sink.counter("slurm_test_polls", "Polls", &[]);
        c.push(Owner::Exporter, [], 7.0);
        let h = sink.histogram("slurm_test_wait_seconds", "Wait", &["partition"]);
        let mut hist = Histogram::new(&[1.0, 10.0]);
        hist.observe_n(0.5, 2);
        hist.observe_n(5.0, 1);
        hist.observe_n(100.0, 1);
        h.push_histogram(Owner::Partition("p".into()), ["p".into()], &hist);
        sink.into_families()
    }

    #[test]
    fn text_format_is_exact() {
        let mut out = Vec::new();
        encode(&sample_families(), Format::Text, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "# HELP slurm_test_nodes Nodes\\nby state\n# TYPE slurm_test_nodes gauge\n\
             slurm_test_nodes{state=\"idle\"} 3\nslurm_test_nodes{state=\"we\\\"ird\\\\\"} 0.5\n\
             # HELP slurm_test_polls_total Polls\n# TYPE slurm_test_polls_total counter\n\
             slurm_test_polls_total 7\n\
             # HELP slurm_test_wait_seconds Wait\n# TYPE slurm_test_wait_seconds histogram\n\
             slurm_test_wait_seconds_bucket{partition=\"p\",le=\"1\"} 2\n\
             slurm_test_wait_seconds_bucket{partition=\"p\",le=\"10\"} 3\n\
             slurm_test_wait_seconds_bucket{partition=\"p\",le=\"+Inf\"} 4\n\
             slurm_test_wait_seconds_sum{partition=\"p\"} 106\n\
             slurm_test_wait_seconds_count{partition=\"p\"} 4\n"
        );
    }

    #[test]
    fn selected_encoding_picks_single_series_by_family_and_labels() {
        let fams = sample_families();
        assert_eq!(fams[0].sample_name(Sample::Value), "slurm_test_nodes");
        assert_eq!(fams[1].sample_name(Sample::Value), "slurm_test_polls_total");
        assert_eq!(
            fams[2].sample_name(Sample::Bucket(1.0)),
            "slurm_test_wait_seconds_bucket"
        );
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(10.0), "10");
        let mut out = Vec::new();
        encode_selected(
            &fams,
            Format::Text,
            Some(&|i| i != 1),
            &|_, f, s| {
                (f.name == "slurm_test_nodes" && &*s.labels[0] == "idle")
                    || s.sample == Sample::Sum
                    || f.kind == Kind::Counter
            },
            None,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "# HELP slurm_test_nodes Nodes\\nby state\n# TYPE slurm_test_nodes gauge\n\
             slurm_test_nodes{state=\"idle\"} 3\n\
             # HELP slurm_test_wait_seconds Wait\n# TYPE slurm_test_wait_seconds histogram\n\
             slurm_test_wait_seconds_sum{partition=\"p\"} 106\n"
        );
    }

    #[test]
    fn openmetrics_counter_header_and_eof() {
        let mut out = Vec::new();
        encode(&sample_families(), Format::OpenMetrics, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("# TYPE slurm_test_polls counter\nslurm_test_polls_total 7\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn filtered_view_drops_empty_families() {
        let mut out = Vec::new();
        encode(
            &sample_families(),
            Format::Text,
            &|o| matches!(o, Owner::Partition(_)),
            &mut out,
        );
        let text = String::from_utf8(out).expect("utf8");
        assert!(!text.contains("slurm_test_nodes"));
        assert!(!text.contains("slurm_test_polls"));
        assert!(text.contains("slurm_test_wait_seconds_count"));
    }

    #[test]
    fn clusters_are_labelled_and_merged_under_one_header() {
        let mut a = sample_families();
        let mut b = sample_families();
        label_cluster(&mut a, &Name::from("east"));
        label_cluster(&mut b, &Name::from("west"));
        let merged = merge_families(a.into_iter().chain(b));
        assert_eq!(merged.len(), 3);
        let mut out = Vec::new();
        encode(&merged, Format::Text, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text.matches("# TYPE slurm_test_nodes gauge").count(), 1);
        assert!(text.contains("slurm_test_nodes{cluster=\"east\",state=\"idle\"} 3\n"));
        assert!(text.contains("slurm_test_nodes{cluster=\"west\",state=\"idle\"} 3\n"));
        assert!(text.contains("slurm_test_polls_total{cluster=\"west\"} 7\n"));
    }

    #[test]
    fn publish_swaps_generations() {
        let store = Store::default();
        assert_eq!(store.load().seq, 0);
        let g = store.publish(sample_families(), 1.0);
        assert_eq!(g.seq, 1);
        assert_eq!(g.series_count(), 8);
        assert!(Arc::ptr_eq(&g, &store.load()));
        assert_eq!(store.publish(Vec::new(), 2.0).seq, 2);
        assert_eq!(g.seq, 1, "a reader keeps the generation it loaded");
    }
}
