//! node_exporter on the compute nodes (Debian's `prometheus-node-exporter`), scraped and
//! fused by Slurm node name into per-node series next to Slurm's own view of the node:
//!
//! | ours | node_exporter |
//! |---|---|
//! | `slurm_node_load1{node}`, `_load5`, `_load15` | `node_load1`, `node_load5`, `node_load15` |
//! | `slurm_node_memory_available_bytes{node}` | `node_memory_MemAvailable_bytes` |
//! | `slurm_node_memory_total_os_bytes{node}` | `node_memory_MemTotal_bytes` (what the OS sees; Slurm's `RealMemory` is `slurm_node_memory_configured_bytes`) |
//! | `slurm_node_network_receive_bytes_total{node,device}` | `node_network_receive_bytes_total` |
//! | `slurm_node_network_transmit_bytes_total{node,device}` | `node_network_transmit_bytes_total` |
//! | `slurm_node_exporter_up{node}` | 1 when the scrape succeeded |
//! | `slurm_node_exporter_scrape_duration_seconds{node}` | how long it took |
//!
//! All owned by the cluster. Loopback and virtual devices are skipped and at most
//! `max_devices` devices per node are kept (sorted by name), so a node with thousands of
//! container veths cannot blow up the series count.
//!
//! Targets come from a list (`node -> URL`) or a URL template with `{node}` over node
//! names from config or from a provider (the lead wires it to the snapshot's nodes). Node
//! names put in a URL must be host-name characters, so a hostile name cannot point the
//! request elsewhere. Scrapes run at most `concurrency` at a time, each with its own
//! timeout; a target that fails is `up 0` and a warning, never a failed poll.

use super::native::{http_get, HttpUrl};
use super::{now_epoch, Parts, PollFuture, Source, SourceError};
use crate::model::Name;
use crate::parse::prom_text::{self, Limits, ParsedFamily, Suffix};
use crate::store::{Family, LabelValue, Owner, Sink};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Node names for a URL template, asked for on every poll.
pub type NodeNames = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Where the node_exporters are.
#[derive(Clone)]
pub enum Targets {
    /// `(node name, URL)` pairs.
    List(Vec<(String, String)>),
    /// `http://{node}:9100/metrics` over the names `nodes` gives.
    Template { template: String, nodes: NodeNames },
}

impl Targets {
    /// A template over a fixed list of names (host lists like `cn[001-004]` expanded).
    pub fn template(template: impl Into<String>, names: &[&str]) -> Result<Targets, String> {
        let mut all = Vec::new();
        for n in names {
            all.extend(crate::parse::hostlist::expand(n)?);
        }
        Ok(Targets::Template {
            template: template.into(),
            nodes: Arc::new(move || all.clone()),
        })
    }
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Targets::List(l) => f.debug_tuple("List").field(l).finish(),
            Targets::Template { template, .. } => f
                .debug_struct("Template")
                .field("template", template)
                .finish(),
        }
    }
}

/// How to scrape node_exporters.
#[derive(Debug, Clone)]
pub struct NodeExporterConfig {
    pub targets: Targets,
    /// Scrapes in flight at once.
    pub concurrency: usize,
    /// Per target.
    pub timeout: Duration,
    pub max_body_bytes: usize,
    /// Network devices kept per node.
    pub max_devices: usize,
    /// Devices whose name starts with one of these are skipped.
    pub skip_device_prefixes: Vec<String>,
    /// Most targets per poll.
    pub max_targets: usize,
}

impl NodeExporterConfig {
    /// 32 at a time, 5 s each, 16 MiB per body, 16 devices per node, at most 20,000 nodes.
    pub fn new(targets: Targets) -> NodeExporterConfig {
        NodeExporterConfig {
            targets,
            concurrency: 32,
            timeout: Duration::from_secs(5),
            max_body_bytes: 16 << 20,
            max_devices: 16,
            skip_device_prefixes: [
                "lo", "veth", "docker", "br-", "virbr", "cali", "flannel", "cni", "tap", "vnet",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            max_targets: 20_000,
        }
    }
}

/// Scrapes node_exporters and fuses them by node name.
#[derive(Debug)]
pub struct NodeExporterSource {
    cfg: NodeExporterConfig,
}

/// Host-name characters: what a node name may hold to go into a URL.
fn safe_node_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

/// What one node's scrape gave.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NodeReading {
    pub load: [Option<f64>; 3],
    pub mem_available: Option<f64>,
    pub mem_total: Option<f64>,
    /// device -> (receive, transmit)
    pub net: BTreeMap<String, (Option<f64>, Option<f64>)>,
    /// Devices dropped past `max_devices`.
    pub devices_dropped: usize,
}

/// Picks our series out of one node_exporter body.
pub fn extract(fams: &[ParsedFamily], cfg: &NodeExporterConfig) -> NodeReading {
    let mut r = NodeReading::default();
    let scalar = |f: &ParsedFamily| {
        f.samples
            .iter()
            .find(|s| s.labels.is_empty() && s.suffix == Suffix::None)
            .map(|s| s.value)
    };
    let mut net: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for f in fams {
        match f.name.as_str() {
            "node_load1" => r.load[0] = scalar(f),
            "node_load5" => r.load[1] = scalar(f),
            "node_load15" => r.load[2] = scalar(f),
            "node_memory_MemAvailable_bytes" => r.mem_available = scalar(f),
            "node_memory_MemTotal_bytes" => r.mem_total = scalar(f),
            "node_network_receive_bytes_total" | "node_network_transmit_bytes_total" => {
                let rx = f.name.contains("receive");
                for s in &f.samples {
                    let Some(dev) = s.label("device") else {
                        continue;
                    };
                    if dev.is_empty()
                        || dev.len() > 64
                        || cfg
                            .skip_device_prefixes
                            .iter()
                            .any(|p| dev.starts_with(p.as_str()))
                    {
                        continue;
                    }
                    let e = net.entry(dev.to_owned()).or_default();
                    if rx {
                        e.0 = Some(s.value);
                    } else {
                        e.1 = Some(s.value);
                    }
                }
            }
            _ => {}
        }
    }
    r.devices_dropped = net.len().saturating_sub(cfg.max_devices);
    r.net = net.into_iter().take(cfg.max_devices).collect();
    r
}

/// Per-node results, in node order, to families.
pub fn families(readings: &BTreeMap<String, (Option<NodeReading>, f64)>) -> Vec<Family> {
    let mut sink = Sink::default();
    let o = || Owner::Cluster;
    for (i, (name, help)) in [
        (
            "slurm_node_load1",
            "1-minute load average of the node (node_exporter).",
        ),
        (
            "slurm_node_load5",
            "5-minute load average of the node (node_exporter).",
        ),
        (
            "slurm_node_load15",
            "15-minute load average of the node (node_exporter).",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let f = sink.gauge(name, help, &["node"]);
        for (node, (r, _)) in readings {
            if let Some(v) = r.as_ref().and_then(|r| r.load[i]) {
                f.push(o(), [LabelValue::Shared(Name::from(node.as_str()))], v);
            }
        }
    }
    type Pick = fn(&NodeReading) -> Option<f64>;
    let mems: [(&'static str, &'static str, Pick); 2] = [
        (
            "slurm_node_memory_available_bytes",
            "Memory available to new work on the node as the OS sees it (MemAvailable, node_exporter).",
            |r| r.mem_available,
        ),
        (
            "slurm_node_memory_total_os_bytes",
            "Memory of the node as the OS sees it (MemTotal, node_exporter).",
            |r| r.mem_total,
        ),
    ];
    for (name, help, pick) in mems {
        let f = sink.gauge(name, help, &["node"]);
        for (node, (r, _)) in readings {
            if let Some(v) = r.as_ref().and_then(pick) {
                f.push(o(), [LabelValue::Shared(Name::from(node.as_str()))], v);
            }
        }
    }
    for (name, help, rx) in [
        (
            "slurm_node_network_receive_bytes",
            "Bytes received by a network device of the node (node_exporter).",
            true,
        ),
        (
            "slurm_node_network_transmit_bytes",
            "Bytes sent by a network device of the node (node_exporter).",
            false,
        ),
    ] {
        let f = sink.counter(name, help, &["node", "device"]);
        for (node, (r, _)) in readings {
            let Some(r) = r else { continue };
            let n = Name::from(node.as_str());
            for (dev, (recv, sent)) in &r.net {
                if let Some(v) = if rx { *recv } else { *sent } {
                    f.push(o(), [LabelValue::Shared(n.clone()), dev.clone().into()], v);
                }
            }
        }
    }
    let f = sink.gauge(
        "slurm_node_exporter_up",
        "1 when the node's node_exporter answered with valid metrics in the last poll, else 0.",
        &["node"],
    );
    for (node, (r, _)) in readings {
        f.push(
            o(),
            [LabelValue::Shared(Name::from(node.as_str()))],
            if r.is_some() { 1.0 } else { 0.0 },
        );
    }
    let f = sink.gauge(
        "slurm_node_exporter_scrape_duration_seconds",
        "How long scraping the node's node_exporter took in the last poll.",
        &["node"],
    );
    for (node, (_, secs)) in readings {
        f.push(o(), [LabelValue::Shared(Name::from(node.as_str()))], *secs);
    }
    sink.into_families()
        .into_iter()
        .filter(|f| !f.series.is_empty())
        .collect()
}

impl NodeExporterSource {
    pub fn new(cfg: NodeExporterConfig) -> Result<NodeExporterSource, SourceError> {
        match &cfg.targets {
            Targets::List(l) => {
                for (node, url) in l {
                    if !safe_node_name(node) {
                        return Err(SourceError::Config(format!(
                            "node_exporter: bad node name {node:?}"
                        )));
                    }
                    HttpUrl::parse(url).map_err(SourceError::Config)?;
                }
            }
            Targets::Template { template, .. } => {
                if !template.contains("{node}") {
                    return Err(SourceError::Config(format!(
                        "node_exporter: template {template:?} lacks {{node}}"
                    )));
                }
                HttpUrl::parse(&template.replace("{node}", "node")).map_err(SourceError::Config)?;
            }
        }
        if cfg.concurrency == 0 {
            return Err(SourceError::Config(
                "node_exporter: concurrency must be at least 1".into(),
            ));
        }
        Ok(NodeExporterSource { cfg })
    }

    /// `(node, URL)` for this poll; bad names are warnings.
    fn targets(&self, warnings: &mut Vec<SourceError>) -> Vec<(String, HttpUrl)> {
        let pairs: Vec<(String, String)> = match &self.cfg.targets {
            Targets::List(l) => l.clone(),
            Targets::Template { template, nodes } => nodes()
                .into_iter()
                .map(|n| {
                    let url = template.replace("{node}", &n);
                    (n, url)
                })
                .collect(),
        };
        let mut out = Vec::with_capacity(pairs.len());
        let mut seen = std::collections::BTreeSet::new();
        for (node, url) in pairs {
            if out.len() >= self.cfg.max_targets {
                warnings.push(SourceError::Config(format!(
                    "node_exporter: more than {} targets; the rest are skipped",
                    self.cfg.max_targets
                )));
                break;
            }
            if !safe_node_name(&node) || !seen.insert(node.clone()) {
                warnings.push(SourceError::Config(format!(
                    "node_exporter: skipped node name {:?} (not a host name, or repeated)",
                    node.chars().take(64).collect::<String>()
                )));
                continue;
            }
            match HttpUrl::parse(&url) {
                Ok(u) => out.push((node, u)),
                Err(e) => warnings.push(SourceError::Config(e)),
            }
        }
        out
    }

    async fn poll_inner(&self) -> Result<Parts, SourceError> {
        let fetched_epoch = now_epoch();
        let mut warnings = Vec::new();
        let targets = self.targets(&mut warnings);
        let sem = Arc::new(tokio::sync::Semaphore::new(self.cfg.concurrency));
        let mut set = tokio::task::JoinSet::new();
        for (node, url) in targets {
            let sem = sem.clone();
            let cfg = self.cfg.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let start = Instant::now();
                let got = http_get(&url, &[], cfg.timeout, cfg.max_body_bytes)
                    .await
                    .and_then(|body| {
                        let n = body.len() as u64;
                        prom_text::parse_text(&body, &Limits::default())
                            .map(|f| (extract(&f, &cfg), n))
                            .map_err(|err| SourceError::Parse {
                                what: format!("{node}: GET {url}"),
                                err,
                            })
                    });
                (node, got, start.elapsed().as_secs_f64())
            });
        }
        let mut readings = BTreeMap::new();
        let mut bytes = 0;
        let mut dropped = 0;
        while let Some(joined) = set.join_next().await {
            let Ok((node, got, secs)) = joined else {
                continue;
            };
            match got {
                Ok((r, n)) => {
                    bytes += n;
                    dropped += r.devices_dropped;
                    readings.insert(node, (Some(r), secs));
                }
                Err(e) => {
                    warnings.push(e);
                    readings.insert(node, (None, secs));
                }
            }
        }
        if dropped > 0 {
            warnings.push(SourceError::Config(format!(
                "node_exporter: {dropped} network devices past max_devices = {} were left out",
                self.cfg.max_devices
            )));
        }
        Ok(Parts {
            external: Some(families(&readings)),
            fetched_epoch,
            bytes,
            warnings,
            ..Parts::default()
        })
    }
}

impl Source for NodeExporterSource {
    fn name(&self) -> &str {
        "node_exporter"
    }

    fn poll(&self) -> PollFuture<'_> {
        Box::pin(self.poll_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{encode, Format};

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/node_exporter/1.5.0/metrics.txt"
    );

    fn fixture() -> Vec<u8> {
        std::fs::read(FIXTURE).expect("fixture")
    }

    /// Serves `body` at every path; returns the port.
    async fn fake_exporter(body: Vec<u8>, delay: Duration) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                });
            }
        });
        port
    }

    fn dead_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    fn value(fams: &[Family], name: &str, labels: &[&str]) -> Option<f64> {
        fams.iter().find(|f| f.name == name).and_then(|f| {
            f.series
                .iter()
                .find(|s| s.labels.iter().map(|l| &**l).eq(labels.iter().copied()))
                .map(|s| s.value)
        })
    }

    #[test]
    fn extracts_load_memory_and_bounded_devices() {
        let fams = prom_text::parse_text(&fixture(), &Limits::default()).expect("parses");
        let mut cfg = NodeExporterConfig::new(Targets::List(vec![]));
        let r = extract(&fams, &cfg);
        assert_eq!(r.load, [Some(2.37), Some(2.7), Some(2.63)]);
        assert_eq!(r.mem_total, Some(16_454_447_104.0));
        assert_eq!(r.mem_available, Some(9_663_430_656.0));
        let devs: Vec<&str> = r.net.keys().map(String::as_str).collect();
        assert_eq!(devs, ["eth0", "ib0"], "lo, veth and docker skipped");
        assert_eq!(
            r.net["eth0"],
            (Some(123_456_789_012.0), Some(98_765_432_100.0))
        );
        cfg.max_devices = 1;
        let r = extract(&fams, &cfg);
        assert_eq!((r.net.len(), r.devices_dropped), (1, 1));
    }

    #[tokio::test]
    async fn fuses_by_node_and_a_dead_target_is_a_warning() {
        let port = fake_exporter(fixture(), Duration::ZERO).await;
        let dead = dead_port();
        let src = NodeExporterSource::new(NodeExporterConfig::new(Targets::List(vec![
            ("cn001".into(), format!("http://127.0.0.1:{port}/metrics")),
            ("cn002".into(), format!("http://127.0.0.1:{dead}/metrics")),
        ])))
        .expect("src");
        assert_eq!(src.name(), "node_exporter");
        let parts = src
            .poll()
            .await
            .expect("a dead target is not a failed poll");
        assert_eq!(parts.warnings.len(), 1);
        assert_eq!(parts.warnings[0].kind(), "connect");
        let fams = parts.external.expect("external");
        assert_eq!(
            value(&fams, "slurm_node_exporter_up", &["cn001"]),
            Some(1.0)
        );
        assert_eq!(
            value(&fams, "slurm_node_exporter_up", &["cn002"]),
            Some(0.0)
        );
        assert_eq!(value(&fams, "slurm_node_load1", &["cn001"]), Some(2.37));
        assert_eq!(value(&fams, "slurm_node_load1", &["cn002"]), None);
        assert_eq!(
            value(&fams, "slurm_node_network_receive_bytes", &["cn001", "ib0"]),
            Some(5e12)
        );
        assert!(fams
            .iter()
            .flat_map(|f| &f.series)
            .all(|s| s.owner == Owner::Cluster));
        let mut out = Vec::new();
        encode(&fams, Format::Text, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains(
            "slurm_node_network_transmit_bytes_total{node=\"cn001\",device=\"eth0\"} 98765432100\n"
        ));
        assert!(!text.contains("device=\"lo\""));
    }

    #[tokio::test]
    async fn slow_targets_time_out_alone_and_garbage_is_a_warning() {
        let slow = fake_exporter(fixture(), Duration::from_secs(5)).await;
        let garbage = fake_exporter(b"node_load1 1\nnode_load1 2\n".to_vec(), Duration::ZERO).await;
        let good = fake_exporter(fixture(), Duration::ZERO).await;
        let mut cfg = NodeExporterConfig::new(Targets::List(vec![
            ("slow".into(), format!("http://127.0.0.1:{slow}/metrics")),
            ("bad".into(), format!("http://127.0.0.1:{garbage}/metrics")),
            ("good".into(), format!("http://127.0.0.1:{good}/metrics")),
        ]));
        cfg.timeout = Duration::from_millis(300);
        cfg.concurrency = 2;
        let started = Instant::now();
        let parts = NodeExporterSource::new(cfg)
            .expect("src")
            .poll()
            .await
            .expect("poll");
        assert!(started.elapsed() < Duration::from_secs(3));
        let mut kinds: Vec<&str> = parts.warnings.iter().map(|w| w.kind()).collect();
        kinds.sort();
        assert_eq!(kinds, ["parse", "timeout"]);
        let fams = parts.external.expect("external");
        assert_eq!(value(&fams, "slurm_node_exporter_up", &["good"]), Some(1.0));
        assert_eq!(value(&fams, "slurm_node_exporter_up", &["slow"]), Some(0.0));
        assert_eq!(value(&fams, "slurm_node_exporter_up", &["bad"]), Some(0.0));
    }

    #[tokio::test]
    async fn templates_expand_names_and_refuse_hostile_ones() {
        let port = fake_exporter(fixture(), Duration::ZERO).await;
        let names: NodeNames = Arc::new(|| {
            vec![
                "127.0.0.1".to_owned(),
                "evil.example/x?".to_owned(),
                "a@b".to_owned(),
            ]
        });
        let src = NodeExporterSource::new(NodeExporterConfig::new(Targets::Template {
            template: format!("http://{{node}}:{port}/metrics"),
            nodes: names,
        }))
        .expect("src");
        let parts = src.poll().await.expect("poll");
        assert_eq!(parts.warnings.len(), 2, "{:?}", parts.warnings);
        let fams = parts.external.expect("external");
        assert_eq!(
            value(&fams, "slurm_node_exporter_up", &["127.0.0.1"]),
            Some(1.0)
        );
        assert!(
            NodeExporterSource::new(NodeExporterConfig::new(Targets::Template {
                template: "http://x:9100/metrics".into(),
                nodes: Arc::new(Vec::new),
            }))
            .is_err()
        );
        let t = Targets::template("http://{node}:9100/metrics", &["cn[001-003]"]).expect("t");
        let Targets::Template { nodes, .. } = t else {
            panic!("template");
        };
        assert_eq!(nodes(), ["cn001", "cn002", "cn003"]);
    }

    /// Debian's real `prometheus-node-exporter` on 127.0.0.1, when installed
    /// (`deploy/test-deps.sh`).
    // Spawning is allowed only in source/cli.rs; this test starts the real exporter it
    // scrapes (there is no other way to test against the real binary) and kills it after.
    #[allow(clippy::disallowed_methods)]
    #[tokio::test]
    async fn scrapes_debians_real_node_exporter() {
        let bin = std::path::Path::new("/usr/bin/prometheus-node-exporter");
        if !bin.exists() {
            eprintln!(
                "skipped: {} not installed (bash deploy/test-deps.sh)",
                bin.display()
            );
            return;
        }
        let port = dead_port();
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let _exporter = Kill(
            std::process::Command::new(bin)
                .args([
                    &format!("--web.listen-address=127.0.0.1:{port}"),
                    "--collector.disable-defaults",
                    "--collector.loadavg",
                    "--collector.meminfo",
                    "--collector.netdev",
                    "--log.level=error",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start node_exporter"),
        );
        let src = NodeExporterSource::new(NodeExporterConfig::new(Targets::List(vec![(
            "localnode".into(),
            format!("http://127.0.0.1:{port}/metrics"),
        )])))
        .expect("src");
        let mut fams = Vec::new();
        for _ in 0..50 {
            let parts = src.poll().await.expect("poll");
            fams = parts.external.expect("external");
            if value(&fams, "slurm_node_exporter_up", &["localnode"]) == Some(1.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            value(&fams, "slurm_node_exporter_up", &["localnode"]),
            Some(1.0)
        );
        assert!(value(&fams, "slurm_node_load1", &["localnode"]).is_some());
        assert!(
            value(&fams, "slurm_node_memory_total_os_bytes", &["localnode"]).unwrap_or(0.0) > 0.0
        );
        assert!(value(&fams, "slurm_node_memory_available_bytes", &["localnode"]).is_some());
        let net = fams
            .iter()
            .find(|f| f.name == "slurm_node_network_receive_bytes")
            .map(|f| f.series.len())
            .unwrap_or(0);
        assert!(net <= 16);
        assert!(fams
            .iter()
            .flat_map(|f| &f.series)
            .all(|s| !s.labels.iter().any(|l| &**l == "lo")));
    }
}
