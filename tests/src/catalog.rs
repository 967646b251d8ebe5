//! Every series name the exporter and its gateway expose, for the tests of files that name
//! them (alerting rules, dashboards): the Slurm series from `METRICS.md` (generated from the
//! code and drift-tested), the gateway's own series from its real registry.

use std::collections::{BTreeMap, BTreeSet};

/// How a query must read a series: counters through `rate()` and friends, the rest as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Instant,
    Range,
}

/// One sample name.
#[derive(Debug, Clone)]
pub struct Series {
    pub usage: Use,
    /// Its labels (empty for the gateway's series: not checked).
    pub labels: BTreeSet<String>,
}

/// Sample name -> what it is.
#[derive(Debug, Default)]
pub struct Catalog {
    pub names: BTreeMap<String, Series>,
}

/// The gateway's self-metrics with one sample in every family (labelled families without a
/// sample are not exposed at all).
fn gateway_exposition() -> String {
    use gateway::metrics::GatewayMetrics;
    let m = GatewayMetrics::new();
    m.set_tenants(["t".to_owned()]);
    m.observe_request("/metrics", 200, Some("t"), 0.01);
    m.authn_failure("no_credentials");
    m.rate_limited("ip");
    m.quota("t", "truncated");
    m.audit_record(true);
    m.audit.declare_target("url");
    m.reload("sighup", true, &"0".repeat(64));
    m.encode()
}

impl Catalog {
    /// `METRICS.md` of the workspace plus the gateway's registry.
    pub fn load() -> Catalog {
        let doc = std::fs::read_to_string(crate::workspace_path("METRICS.md"))
            .unwrap_or_else(|e| panic!("METRICS.md: {e}"));
        let mut c = Catalog::default();
        c.add_metrics_md(&doc)
            .unwrap_or_else(|e| panic!("METRICS.md: {e}"));
        c.add_openmetrics(&gateway_exposition())
            .unwrap_or_else(|e| panic!("the gateway's registry: {e}"));
        c
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    fn add(&mut self, name: String, usage: Use, labels: &BTreeSet<String>) {
        self.names.insert(
            name,
            Series {
                usage,
                labels: labels.clone(),
            },
        );
    }

    fn add_family(
        &mut self,
        name: &str,
        kind: &str,
        labels: &BTreeSet<String>,
    ) -> Result<(), String> {
        match kind {
            "gauge" => self.add(name.to_owned(), Use::Instant, labels),
            "counter" => {
                let sample = if name.ends_with("_total") {
                    name.to_owned()
                } else {
                    format!("{name}_total")
                };
                self.add(sample, Use::Range, labels);
            }
            "histogram" => {
                let mut with_le = labels.clone();
                with_le.insert("le".into());
                self.add(format!("{name}_bucket"), Use::Instant, &with_le);
                self.add(format!("{name}_sum"), Use::Instant, labels);
                self.add(format!("{name}_count"), Use::Instant, labels);
            }
            "info" => self.add(format!("{name}_info"), Use::Instant, labels),
            other => return Err(format!("{name}: unknown type {other:?}")),
        }
        Ok(())
    }

    /// The table rows of METRICS.md: `` | `name` | type | labels | ... ``. The count must
    /// match the "N metric names." line, so a change of the table's shape fails here.
    pub fn add_metrics_md(&mut self, doc: &str) -> Result<(), String> {
        let declared: usize = doc
            .lines()
            .find_map(|l| l.strip_suffix(" metric names."))
            .and_then(|n| n.trim().parse().ok())
            .ok_or("no \"N metric names.\" line")?;
        let mut rows = 0;
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, name, kind, labels, ..] = cells.as_slice() else {
                return Err(format!("cannot read the row {line:?}"));
            };
            let labels: BTreeSet<String> = labels
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            rows += 1;
            // The Slurm histograms are snapshots of the jobs slurmctld knows, not cumulative.
            self.add_family(name.trim_matches('`'), kind, &labels)?;
        }
        if rows != declared {
            return Err(format!(
                "{rows} metric rows, but the file says {declared} metric names"
            ));
        }
        Ok(())
    }

    /// The `# TYPE` lines of an OpenMetrics exposition; histograms are cumulative here.
    pub fn add_openmetrics(&mut self, text: &str) -> Result<(), String> {
        let mut n = 0;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| format!("cannot read {line:?}"))?;
            self.add_family(name, kind, &BTreeSet::new())?;
            if kind == "histogram" {
                for s in ["_bucket", "_sum", "_count"] {
                    if let Some(e) = self.names.get_mut(&format!("{name}{s}")) {
                        e.usage = Use::Range;
                    }
                }
            }
            n += 1;
        }
        if n < 8 {
            return Err(format!("only {n} families"));
        }
        Ok(())
    }
}
