//! slurmctld's own metrics (Slurm 25.11+, `MetricsType=metrics/openmetrics`), ingested and
//! normalized into `slurm_native_*` families ([`Parts::external`]).
//!
//! slurmctld serves plain HTTP on its port (6817) at `/metrics/jobs`, `/metrics/nodes`,
//! `/metrics/partitions`, `/metrics/scheduler` and `/metrics/jobs-users-accts`
//! (`src/slurmctld/http.c`, `doc/html/metrics.shtml`). Every metric is a gauge. With
//! `MetricsAuthUsers` or `PrivateData` set it wants a JWT in `X-SLURM-USER-TOKEN`.
//!
//! # Why `slurm_native_*` and not our own names
//! The same quantity often comes from slurmrestd or the CLI too; two families of one name
//! in one exposition are invalid, and silently preferring one source hides which one is
//! served. So every native metric keeps its Slurm name under our prefix
//! (`slurm_nodes_idle` -> `slurm_native_nodes_idle`), with units made explicit.
//!
//! # Normalization (Slurm 25.11.0 .. master, `src/plugins/metrics/openmetrics/openmetrics.c`,
//! `src/slurmctld/statistics.{h,c}`)
//! - **Memory is MiB under `_bytes` names.** `node_memory_bytes`, `node_memory_alloc_bytes`,
//!   `node_memory_effective_bytes`, `node_memory_free_bytes` are `node_record_t.real_memory`,
//!   `alloc_memory`, `real_memory - mem_spec_limit` and `free_mem`, all in MB/MiB
//!   (`src/common/node_conf.h`: "MB real memory on the node", "Free memory in MiB"); the job
//!   and partition sums (`jobs_memory_alloc`, `partition_nodes_mem_*`) add up the same MiB
//!   (`tres_alloc_cnt[TRES_ARRAY_MEM]`). We multiply by 2^20 and name them all `_bytes`
//!   ([`NativeConfig::memory_in_mib`] turns this off should SchedMD fix the unit).
//! - **CPU sums are 16-bit and wrap.** `partition_stats_t.nodes_cpus_alloc`,
//!   `nodes_cpus_efctv`, `nodes_cpus_idle`, `jobs_cpus_alloc` and `jobs_stats_t.cpus_alloc`
//!   (cluster, per user, per account) are `uint16_t` sums over nodes or jobs, printed with
//!   `%hu`: past 65,535 CPUs they wrap. The true value is `reported + k * 65536`; we pick the
//!   `k` that lands inside hard bounds and nearest a reference computed from numbers that do
//!   not wrap (per-node CPU counts are `uint16_t` too but one node never has 65,536 CPUs;
//!   `partition_cpus` is `uint32_t`):
//!   - cluster `jobs_cpus_alloc`: nearest the sum of per-node `node_cpus_alloc`;
//!   - partition `nodes_cpus_efctv`: at most `partition_cpus`, nearest it (effective CPUs
//!     are the total minus CoreSpec);
//!   - partition `nodes_cpus_alloc`: between `efctv - cluster idle` and
//!     `min(efctv, cluster alloc)`, nearest `efctv * cluster alloc / cluster efctv`; then
//!     `nodes_cpus_idle = efctv - alloc` (per node, idle is efctv - alloc);
//!   - partition `jobs_cpus_alloc`: nearest the partition's corrected `nodes_cpus_alloc`;
//!   - user/account `jobs_cpus_alloc`: between `jobs_nodes_alloc` and
//!     `jobs_nodes_alloc * largest node`, nearest `jobs_nodes_alloc * cluster alloc CPUs per
//!     allocated node`.
//!
//!   Without `/metrics/nodes` the cluster-relative references are missing and only the
//!   bounds that need no node data apply. Per node, `cpus_idle` is computed as `uint16_t`
//!   `efctv - alloc` and wraps to ~65,535 when alloc exceeds efctv; it is clamped to
//!   `efctv - alloc` saturating at 0. Node counts are 16-bit as well but wrap only past
//!   65,535 nodes; they are not corrected. How many values were corrected is
//!   `slurm_native_corrections{metric}`.
//! - **Scheduler times are microseconds** (`man sdiag`): `*_cycle_last|max|tot`,
//!   `*_mean_cycle`, `sdiag_latency` become `_seconds`; epoch values become
//!   `_timestamp_seconds`.
//!
//! # Owners
//! Series with a `partition` label are owned by that partition, `account` by the account,
//! `username` (renamed `user`) by `User { account, user }` with the account from
//! [`NativeConfig::user_account`] (empty, which no tenant owns, when unknown: a user's
//! counts span all their accounts). Everything else is `Cluster`.

use super::rest::Secret;
use super::{now_epoch, Parts, PollFuture, Source, SourceError};
use crate::model::Name;
use crate::parse::prom_text::{self, Limits, ParsedFamily, ParsedSample};
use crate::store::{Family, Owner};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// A plain-HTTP URL: `http://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?}: expected http://HOST:PORT/PATH (plain HTTP; put a TLS proxy's plain side here)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || path.contains(['#', ' ']) {
            return Err(format!(
                "{url:?}: no credentials, fragments or blanks in the URL"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
                None if after.is_empty() => 80,
                None => return Err(format!("{url:?}: bad authority")),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
                ),
                None => (authority.to_owned(), 80),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'))
        {
            return Err(format!("{url:?}: bad host"));
        }
        Ok(HttpUrl {
            host,
            port,
            path: path.to_owned(),
        })
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.path)
    }
}

/// GETs `url` over plain HTTP/1.1 and returns a 200 body of at most `max_bytes`; the whole
/// exchange is bounded by `timeout`. Shared by the Prometheus-text sources.
pub async fn http_get(
    url: &HttpUrl,
    headers: &[(&str, &str)],
    timeout: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, SourceError> {
    let what = format!("GET {url}");
    let exchange = async {
        let connect = |e: String| SourceError::Connect {
            what: what.clone(),
            msg: e,
        };
        let stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| connect(e.to_string()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| connect(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let mut req = hyper::Request::get(url.path.as_str())
            .header(hyper::header::HOST, url.host_header())
            .header(
                hyper::header::ACCEPT,
                "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5",
            );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| SourceError::Config(format!("{what}: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| connect(e.to_string()))?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| SourceError::Io {
                what: what.clone(),
                msg: e.to_string(),
            })?;
            if let Ok(d) = frame.into_data() {
                if buf.len() + d.len() > max_bytes {
                    driver.abort();
                    return Err(SourceError::Io {
                        what: what.clone(),
                        msg: format!("body larger than {max_bytes} bytes"),
                    });
                }
                buf.extend_from_slice(&d);
            }
        }
        driver.abort();
        if status != hyper::StatusCode::OK {
            let text: String = String::from_utf8_lossy(&buf)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(200)
                .collect();
            let code = status.as_u16();
            return Err(if code == 401 || code == 403 {
                SourceError::Auth {
                    what: what.clone(),
                    status: code,
                    msg: text,
                }
            } else {
                SourceError::Http {
                    what: what.clone(),
                    status: code,
                    msg: text,
                }
            });
        }
        Ok(buf)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(SourceError::Timeout {
                what: what.clone(),
                seconds: timeout.as_secs_f64(),
            })
        })
}

/// One of slurmctld's metrics endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NativeEndpoint {
    Jobs,
    Nodes,
    Partitions,
    Scheduler,
    /// Per user and per account; unbounded (SchedMD advises against storing it), so off
    /// by default.
    JobsUsersAccts,
}

impl NativeEndpoint {
    pub const ALL: [NativeEndpoint; 5] = [
        NativeEndpoint::Jobs,
        NativeEndpoint::Nodes,
        NativeEndpoint::Partitions,
        NativeEndpoint::Scheduler,
        NativeEndpoint::JobsUsersAccts,
    ];

    pub fn path(self) -> &'static str {
        match self {
            NativeEndpoint::Jobs => "/metrics/jobs",
            NativeEndpoint::Nodes => "/metrics/nodes",
            NativeEndpoint::Partitions => "/metrics/partitions",
            NativeEndpoint::Scheduler => "/metrics/scheduler",
            NativeEndpoint::JobsUsersAccts => "/metrics/jobs-users-accts",
        }
    }

    /// The config word: `jobs`, `nodes`, `partitions`, `scheduler`, `jobs-users-accts`.
    pub fn from_word(w: &str) -> Option<NativeEndpoint> {
        NativeEndpoint::ALL
            .into_iter()
            .find(|e| e.path().strip_prefix("/metrics/") == Some(w))
    }
}

/// Maps a user name to the one account its native per-user series belong to.
pub type UserAccountFn = Arc<dyn Fn(&str) -> Option<Name> + Send + Sync>;

/// How to read slurmctld's metrics.
#[derive(Clone)]
pub struct NativeConfig {
    /// `http://slurmctld:6817` (the path, if any, is ignored).
    pub url: String,
    pub endpoints: Vec<NativeEndpoint>,
    /// Sent as `X-SLURM-USER-NAME` with the token.
    pub user: Option<String>,
    /// Sent as `X-SLURM-USER-TOKEN` (needed with `MetricsAuthUsers` or `PrivateData`).
    pub token: Option<Secret>,
    /// Per endpoint request.
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub limits: Limits,
    /// Slurm 25.11 reports MiB under `_bytes` names; true multiplies by 2^20.
    pub memory_in_mib: bool,
    /// The account owning a user's series; `None` leaves them to operators.
    pub user_account: Option<UserAccountFn>,
}

impl std::fmt::Debug for NativeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeConfig")
            .field("url", &self.url)
            .field("endpoints", &self.endpoints)
            .field("user", &self.user)
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("memory_in_mib", &self.memory_in_mib)
            .field("user_account", &self.user_account.is_some())
            .finish()
    }
}

impl NativeConfig {
    /// Jobs, nodes, partitions and scheduler; 10 s; 32 MiB per body; at most 1,000,000
    /// series per endpoint; MiB correction on.
    pub fn new(url: impl Into<String>) -> NativeConfig {
        NativeConfig {
            url: url.into(),
            endpoints: vec![
                NativeEndpoint::Jobs,
                NativeEndpoint::Nodes,
                NativeEndpoint::Partitions,
                NativeEndpoint::Scheduler,
            ],
            user: None,
            token: None,
            timeout: Duration::from_secs(10),
            max_body_bytes: 32 << 20,
            // /metrics/jobs-users-accts has 27 series per user and per account.
            limits: Limits {
                max_series: 1_000_000,
                ..Limits::default()
            },
            memory_in_mib: true,
            user_account: None,
        }
    }
}

/// Reads slurmctld's `/metrics/*`.
#[derive(Debug)]
pub struct NativeSource {
    cfg: NativeConfig,
    base: HttpUrl,
}

impl NativeSource {
    pub fn new(cfg: NativeConfig) -> Result<NativeSource, SourceError> {
        let base = HttpUrl::parse(&cfg.url).map_err(SourceError::Config)?;
        if cfg.endpoints.is_empty() {
            return Err(SourceError::Config(
                "native: no endpoints selected".to_owned(),
            ));
        }
        Ok(NativeSource { cfg, base })
    }

    async fn poll_inner(&self) -> Result<Parts, SourceError> {
        let fetched_epoch = now_epoch();
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = &self.cfg.token {
            headers.push(("X-SLURM-USER-TOKEN", t.expose()));
            if let Some(u) = &self.cfg.user {
                headers.push(("X-SLURM-USER-NAME", u.as_str()));
            }
        }
        let mut read: Vec<(NativeEndpoint, Vec<ParsedFamily>)> = Vec::new();
        let mut warnings = Vec::new();
        let mut bytes = 0u64;
        let mut last_err = None;
        // One request at a time: each takes slurmctld's locks (metrics.shtml, "Performance").
        for ep in &self.cfg.endpoints {
            let url = HttpUrl {
                path: ep.path().to_owned(),
                ..self.base.clone()
            };
            let got = http_get(&url, &headers, self.cfg.timeout, self.cfg.max_body_bytes)
                .await
                .and_then(|body| {
                    bytes += body.len() as u64;
                    prom_text::parse_text(&body, &self.cfg.limits).map_err(|err| {
                        SourceError::Parse {
                            what: format!("GET {url}"),
                            err,
                        }
                    })
                });
            match got {
                Ok(fams) => read.push((*ep, fams)),
                Err(e) => {
                    last_err = Some(e.clone());
                    warnings.push(e);
                }
            }
        }
        if read.is_empty() {
            return Err(
                last_err.unwrap_or_else(|| SourceError::Config("native: nothing read".into()))
            );
        }
        let families = normalize(read, self.cfg.memory_in_mib, self.cfg.user_account.as_ref());
        Ok(Parts {
            external: Some(families),
            fetched_epoch,
            bytes,
            warnings,
            ..Parts::default()
        })
    }
}

impl Source for NativeSource {
    fn name(&self) -> &str {
        "native"
    }

    fn poll(&self) -> PollFuture<'_> {
        Box::pin(self.poll_inner())
    }
}

const MIB: f64 = 1_048_576.0;
const WRAP: f64 = 65_536.0;

/// Our name and the factor for a native name (without its `slurm_` prefix).
fn rename(bare: &str, memory_in_mib: bool) -> (String, f64) {
    let mem = if memory_in_mib { MIB } else { 1.0 };
    let (name, factor): (Cow, f64) = match bare {
        "node_memory_alloc_bytes"
        | "node_memory_effective_bytes"
        | "node_memory_free_bytes"
        | "node_memory_bytes" => (Cow::B(bare), mem),
        "jobs_memory_alloc"
        | "partition_jobs_memory_alloc"
        | "user_jobs_memory_alloc"
        | "account_jobs_memory_alloc" => (Cow::O(format!("{bare}_bytes")), mem),
        "partition_nodes_mem_alloc" => (Cow::B("partition_nodes_memory_alloc_bytes"), mem),
        "partition_nodes_mem_avail" => (Cow::B("partition_nodes_memory_effective_bytes"), mem),
        "partition_nodes_mem_free" => (Cow::B("partition_nodes_memory_free_bytes"), mem),
        "partition_nodes_mem_tot" => (Cow::B("partition_nodes_memory_bytes"), mem),
        "bf_cycle_last"
        | "bf_cycle_max"
        | "bf_cycle_tot"
        | "bf_mean_cycle"
        | "schedule_cycle_last"
        | "schedule_cycle_max"
        | "schedule_cycle_tot"
        | "sched_mean_cycle"
        | "sched_cycle_last"
        | "sched_cycle_max"
        | "sdiag_latency" => (Cow::O(format!("{bare}_seconds")), 1e-6),
        "bf_when_last_cycle" => (Cow::B("bf_last_cycle_timestamp_seconds"), 1.0),
        "sdiag_job_states_ts" => (Cow::B("sdiag_job_states_timestamp_seconds"), 1.0),
        "sched_stats_timestamp" => (Cow::B("sched_stats_timestamp_seconds"), 1.0),
        "last_proc_req_start" => (Cow::B("last_proc_req_start_timestamp_seconds"), 1.0),
        _ => (Cow::B(bare), 1.0),
    };
    let name = match name {
        Cow::B(s) => format!("slurm_native_{s}"),
        Cow::O(s) => format!("slurm_native_{s}"),
    };
    (name, factor)
}

enum Cow<'a> {
    B(&'a str),
    O(String),
}

/// The `k` in `raw + k * 65536` inside `[lo, hi]` nearest `hint`; `raw` when none fits.
pub fn unwrap16(raw: f64, lo: f64, hi: f64, hint: f64) -> f64 {
    if !(0.0..WRAP).contains(&raw) {
        return raw;
    }
    let mut best: Option<f64> = None;
    let mut c = raw;
    // At most 65,537 steps even for hi = u32::MAX.
    let hi = hi.min(u32::MAX as f64 * 2.0);
    while c <= hi {
        if c >= lo && best.is_none_or(|b| (c - hint).abs() < (b - hint).abs()) {
            best = Some(c);
        }
        c += WRAP;
    }
    best.unwrap_or(raw)
}

/// Lookups over what was read.
struct Read<'a> {
    fams: HashMap<&'a str, &'a ParsedFamily>,
}

impl<'a> Read<'a> {
    fn scalar(&self, name: &str) -> Option<f64> {
        self.fams
            .get(name)
            .and_then(|f| f.samples.iter().find(|s| s.labels.is_empty()))
            .map(|s| s.value)
    }
    fn by(&self, name: &str, label: &str) -> HashMap<&'a str, f64> {
        self.fams
            .get(name)
            .map(|f| {
                f.samples
                    .iter()
                    .filter_map(|s| {
                        s.labels
                            .iter()
                            .find(|(n, _)| &**n == label)
                            .map(|(_, v)| (&**v, s.value))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Corrected values by (native name, label value or "").
type Fixes = HashMap<(String, String), f64>;

fn corrections(r: &Read<'_>) -> Fixes {
    let mut fixes = Fixes::new();
    let node_alloc = r.by("slurm_node_cpus_alloc", "node");
    let node_efctv = r.by("slurm_node_cpus_effective", "node");
    let node_idle = r.by("slurm_node_cpus_idle", "node");
    let node_cpus = r.by("slurm_node_cpus", "node");
    let have_nodes = !node_cpus.is_empty() || !node_alloc.is_empty();
    // Per node: idle is uint16 efctv - alloc, which wraps when alloc > efctv.
    let mut cl_idle = 0.0;
    for (node, idle) in &node_idle {
        let e = node_efctv.get(node).copied().unwrap_or(f64::INFINITY);
        let a = node_alloc.get(node).copied().unwrap_or(0.0);
        let fixed = if *idle > e { (e - a).max(0.0) } else { *idle };
        if fixed != *idle {
            fixes.insert(("slurm_node_cpus_idle".into(), (*node).into()), fixed);
        }
        cl_idle += fixed;
    }
    let cl_alloc: f64 = node_alloc.values().sum();
    let cl_efctv: f64 = node_efctv.values().sum();
    let allocated_nodes = node_alloc.values().filter(|a| **a > 0.0).count() as f64;
    let biggest_node = node_cpus.values().copied().fold(0.0, f64::max);

    if let (true, Some(raw)) = (have_nodes, r.scalar("slurm_jobs_cpus_alloc")) {
        fixes.insert(
            ("slurm_jobs_cpus_alloc".into(), String::new()),
            unwrap16(raw, 0.0, f64::INFINITY, cl_alloc),
        );
    }

    let total = r.by("slurm_partition_cpus", "partition");
    let efctv = r.by("slurm_partition_nodes_cpus_efctv", "partition");
    let alloc = r.by("slurm_partition_nodes_cpus_alloc", "partition");
    let idle = r.by("slurm_partition_nodes_cpus_idle", "partition");
    let jobs_alloc = r.by("slurm_partition_jobs_cpus_alloc", "partition");
    for (p, raw_e) in &efctv {
        let t = total.get(p).copied().unwrap_or(f64::INFINITY);
        let e = unwrap16(*raw_e, 0.0, t, t.min(u32::MAX as f64));
        fixes.insert(("slurm_partition_nodes_cpus_efctv".into(), (*p).into()), e);
        let Some(raw_a) = alloc.get(p).copied() else {
            continue;
        };
        let (lo, hi, hint) = if have_nodes && cl_efctv > 0.0 {
            (
                (e - cl_idle).max(0.0),
                e.min(cl_alloc),
                e * cl_alloc / cl_efctv,
            )
        } else {
            (0.0, e, raw_a)
        };
        let a = unwrap16(raw_a, lo, hi, hint);
        fixes.insert(("slurm_partition_nodes_cpus_alloc".into(), (*p).into()), a);
        if let Some(raw_i) = idle.get(p).copied() {
            let derived = e - a;
            let i = if derived >= 0.0 && (derived - raw_i).rem_euclid(WRAP) == 0.0 {
                derived
            } else {
                unwrap16(raw_i, 0.0, e, derived.max(0.0))
            };
            fixes.insert(("slurm_partition_nodes_cpus_idle".into(), (*p).into()), i);
        }
        if let Some(raw_j) = jobs_alloc.get(p).copied() {
            fixes.insert(
                ("slurm_partition_jobs_cpus_alloc".into(), (*p).into()),
                unwrap16(raw_j, 0.0, f64::INFINITY, a),
            );
        }
    }

    if have_nodes && allocated_nodes > 0.0 {
        let per_node = cl_alloc / allocated_nodes;
        for (who, label) in [("user", "username"), ("account", "account")] {
            let cpus = r.by(&format!("slurm_{who}_jobs_cpus_alloc"), label);
            let nodes = r.by(&format!("slurm_{who}_jobs_nodes_alloc"), label);
            for (k, raw) in cpus {
                let Some(n) = nodes.get(k).copied() else {
                    continue;
                };
                let hi = if biggest_node > 0.0 {
                    n * biggest_node
                } else {
                    f64::INFINITY
                };
                fixes.insert(
                    (format!("slurm_{who}_jobs_cpus_alloc"), k.into()),
                    unwrap16(raw, n, hi, n * per_node),
                );
            }
        }
    }
    fixes
}

/// The label whose value keys a corrected series.
fn key_label(s: &ParsedSample) -> String {
    s.labels
        .iter()
        .find(|(n, _)| matches!(&**n, "node" | "partition" | "username" | "account"))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// Renames, rescales and corrects what was read, then makes owned store families.
pub fn normalize(
    read: Vec<(NativeEndpoint, Vec<ParsedFamily>)>,
    memory_in_mib: bool,
    user_account: Option<&UserAccountFn>,
) -> Vec<Family> {
    let all: Vec<ParsedFamily> = read.into_iter().flat_map(|(_, f)| f).collect();
    let fixes = {
        let r = Read {
            fams: all.iter().map(|f| (f.name.as_str(), f)).collect(),
        };
        corrections(&r)
    };
    let mut corrected: BTreeMap<String, u64> = BTreeMap::new();
    let mut out_parsed = Vec::with_capacity(all.len());
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    for mut f in all {
        let Some(bare) = f.name.strip_prefix("slurm_").map(str::to_owned) else {
            continue; // not Slurm's: nothing of ours to shadow, nothing to normalize
        };
        let (name, factor) = rename(&bare, memory_in_mib);
        // Two endpoints (or a future Slurm) giving one name twice: keep the first.
        if !taken.insert(name.clone()) {
            continue;
        }
        for s in &mut f.samples {
            let key = (f.name.clone(), key_label(s));
            if let Some(v) = fixes.get(&key) {
                if *v != s.value {
                    *corrected.entry(f.name.clone()).or_default() += 1;
                }
                s.value = *v;
            }
            s.value *= factor;
            for (n, _) in &mut s.labels {
                if &**n == "username" {
                    *n = "user".into();
                }
            }
        }
        f.name = name;
        // Everything slurmctld serves is a gauge; keep what it declares otherwise.
        out_parsed.push(f);
    }
    let mut owner = |_: &str, labels: &[(Box<str>, Box<str>)]| -> Option<Owner> {
        let get = |k: &str| labels.iter().find(|(n, _)| &**n == k).map(|(_, v)| &**v);
        Some(if let Some(p) = get("partition") {
            Owner::Partition(Name::from(p))
        } else if let Some(a) = get("account") {
            Owner::Account(Name::from(a))
        } else if let Some(u) = get("user") {
            let account = user_account
                .and_then(|f| f(u))
                .unwrap_or_else(|| Name::from(""));
            Owner::User {
                account,
                user: Name::from(u),
            }
        } else {
            Owner::Cluster
        })
    };
    let (mut fams, _) = prom_text::to_families(out_parsed, &mut owner);
    let mut sink = crate::store::Sink::default();
    let f = sink.gauge(
        "slurm_native_corrections",
        "Values of slurmctld's native metrics corrected in the last poll (16-bit CPU sums that wrapped), by native metric.",
        &["metric"],
    );
    for (m, n) in corrected {
        f.push(Owner::Exporter, [m.into()], n as f64);
    }
    fams.extend(
        sink.into_families()
            .into_iter()
            .filter(|f| !f.series.is_empty()),
    );
    fams
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{encode, Format};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/native/25.11");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    fn read_all() -> Vec<(NativeEndpoint, Vec<ParsedFamily>)> {
        [
            (NativeEndpoint::Jobs, "jobs.txt"),
            (NativeEndpoint::Nodes, "nodes.txt"),
            (NativeEndpoint::Partitions, "partitions.txt"),
            (NativeEndpoint::Scheduler, "scheduler.txt"),
            (NativeEndpoint::JobsUsersAccts, "jobs-users-accts.txt"),
        ]
        .into_iter()
        .map(|(e, f)| {
            (
                e,
                prom_text::parse_text(&fixture(f), &Limits::default()).expect("fixture parses"),
            )
        })
        .collect()
    }

    fn value(fams: &[Family], name: &str, label: &str) -> Option<f64> {
        let f = fams.iter().find(|f| f.name == name)?;
        f.series
            .iter()
            .find(|s| label.is_empty() || s.labels.iter().any(|l| &**l == label))
            .map(|s| s.value)
    }

    fn owner_of(fams: &[Family], name: &str, label: &str) -> Option<Owner> {
        let f = fams.iter().find(|f| f.name == name)?;
        f.series
            .iter()
            .find(|s| label.is_empty() || s.labels.iter().any(|l| &**l == label))
            .map(|s| s.owner.clone())
    }

    #[test]
    fn unwrap16_picks_the_candidate_nearest_the_reference_within_bounds() {
        assert_eq!(unwrap16(1000.0, 0.0, 60000.0, 59000.0), 1000.0);
        assert_eq!(unwrap16(1000.0, 0.0, 200_000.0, 66_000.0), 66_536.0);
        assert_eq!(unwrap16(1000.0, 70_000.0, 200_000.0, 0.0), 132_072.0);
        assert_eq!(unwrap16(1000.0, 500_000.0, 400_000.0, 0.0), 1000.0);
        assert!(unwrap16(f64::NAN, 0.0, 1.0, 0.0).is_nan());
    }

    #[test]
    fn memory_is_mib_made_bytes_and_times_are_seconds() {
        let fams = normalize(read_all(), true, None);
        // node001 RealMemory=1546000 (MiB).
        assert_eq!(
            value(&fams, "slurm_native_node_memory_bytes", "node001"),
            Some(1_546_000.0 * MIB)
        );
        assert_eq!(
            value(&fams, "slurm_native_partition_nodes_memory_bytes", "big"),
            Some(100.0 * 1_546_000.0 * MIB)
        );
        assert_eq!(
            value(&fams, "slurm_native_jobs_memory_alloc_bytes", ""),
            Some(1_536_000.0 * MIB)
        );
        assert_eq!(
            value(&fams, "slurm_native_bf_cycle_last_seconds", ""),
            Some(251_234.0 * 1e-6)
        );
        assert_eq!(
            value(&fams, "slurm_native_bf_last_cycle_timestamp_seconds", ""),
            Some(1_764_000_000.0)
        );
        assert!(fams.iter().all(|f| f.name.starts_with("slurm_native_")));
        // Off: values pass through as read.
        let raw = normalize(read_all(), false, None);
        assert_eq!(
            value(&raw, "slurm_native_node_memory_bytes", "node001"),
            Some(1_546_000.0)
        );
    }

    #[test]
    fn wrapped_cpu_sums_are_corrected_from_node_counts_and_totals() {
        let fams = normalize(read_all(), true, None);
        // Partition "big": 100 nodes x 768 CPUs = 76,800, node003 has 8 CoreSpec CPUs:
        // 76,792 effective, 90 nodes allocated (69,120). Slurm printed each mod 65,536.
        let v = |n: &str, l: &str| value(&fams, n, l);
        assert_eq!(v("slurm_native_partition_cpus", "big"), Some(76_800.0));
        assert_eq!(
            v("slurm_native_partition_nodes_cpus_efctv", "big"),
            Some(76_792.0)
        );
        assert_eq!(
            v("slurm_native_partition_nodes_cpus_alloc", "big"),
            Some(69_120.0)
        );
        assert_eq!(
            v("slurm_native_partition_nodes_cpus_idle", "big"),
            Some(7_672.0)
        );
        assert_eq!(
            v("slurm_native_partition_jobs_cpus_alloc", "big"),
            Some(69_120.0)
        );
        // The small partition never wrapped and is left alone.
        assert_eq!(
            v("slurm_native_partition_nodes_cpus_alloc", "debug"),
            Some(256.0)
        );
        // Cluster: the sum over nodes is 69,120 + 256; Slurm printed 3,840.
        assert_eq!(v("slurm_native_jobs_cpus_alloc", ""), Some(69_376.0));
        // Account physics and user alice: 90 nodes, 69,120 CPUs; printed 3,584.
        assert_eq!(
            v("slurm_native_account_jobs_cpus_alloc", "physics"),
            Some(69_120.0)
        );
        assert_eq!(
            v("slurm_native_user_jobs_cpus_alloc", "alice"),
            Some(69_120.0)
        );
        assert_eq!(v("slurm_native_user_jobs_cpus_alloc", "bob"), Some(256.0));
        // node003: 768 allocated of 760 effective; uint16 idle wrapped to 65,528.
        assert_eq!(v("slurm_native_node_cpus_idle", "node003"), Some(0.0));
        assert_eq!(
            v(
                "slurm_native_corrections",
                "slurm_partition_nodes_cpus_alloc"
            ),
            Some(1.0)
        );
    }

    #[test]
    fn owners_follow_labels_and_unknown_accounts_stay_private() {
        let resolver: UserAccountFn =
            Arc::new(|u: &str| (u == "alice").then(|| Name::from("physics")));
        let fams = normalize(read_all(), true, Some(&resolver));
        assert_eq!(
            owner_of(&fams, "slurm_native_partition_jobs", "big"),
            Some(Owner::Partition("big".into()))
        );
        assert_eq!(
            owner_of(&fams, "slurm_native_account_jobs", "physics"),
            Some(Owner::Account("physics".into()))
        );
        assert_eq!(
            owner_of(&fams, "slurm_native_user_jobs", "alice"),
            Some(Owner::User {
                account: "physics".into(),
                user: "alice".into()
            })
        );
        assert_eq!(
            owner_of(&fams, "slurm_native_user_jobs", "bob"),
            Some(Owner::User {
                account: "".into(),
                user: "bob".into()
            })
        );
        assert_eq!(
            owner_of(&fams, "slurm_native_nodes", ""),
            Some(Owner::Cluster)
        );
        assert_eq!(
            owner_of(&fams, "slurm_native_node_cpus", "node001"),
            Some(Owner::Cluster)
        );
        let users = fams
            .iter()
            .find(|f| f.name == "slurm_native_user_jobs")
            .expect("users");
        assert_eq!(&*users.label_names, &["user"]);
    }

    #[test]
    fn golden_exposition() {
        let fams = normalize(read_all(), true, None);
        let mut out = Vec::new();
        encode(&fams, Format::Text, &|_| true, &mut out);
        let golden = format!("{FIXTURES}/normalized.prom");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &out).expect("write golden");
        }
        let want = std::fs::read(&golden).expect("golden (UPDATE_GOLDEN=1 to create)");
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want)
        );
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://ctl:6817").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("ctl", 6817, "/")
        );
        let u = HttpUrl::parse("http://[::1]:9100/metrics").expect("url");
        assert_eq!(u.to_string(), "http://[::1]:9100/metrics");
        for bad in [
            "https://x",
            "http://",
            "http://u:p@x/",
            "http://x:99999/",
            "http://x y/",
            "ftp://x",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            NativeEndpoint::from_word("jobs-users-accts"),
            Some(NativeEndpoint::JobsUsersAccts)
        );
    }

    /// Serves canned bodies by path on 127.0.0.1, like slurmctld would.
    async fn fake_ctld(bodies: Vec<(&'static str, Vec<u8>)>) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let bodies = bodies.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = req.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let (status, body) = match bodies.iter().find(|(p, _)| *p == path) {
                        Some((_, b)) => ("200 OK", b.clone()),
                        None => ("404 Not Found", b"no such endpoint".to_vec()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn polls_a_fake_slurmctld_and_a_missing_endpoint_is_a_warning() {
        let port = fake_ctld(vec![
            ("/metrics/jobs", fixture("jobs.txt")),
            ("/metrics/nodes", fixture("nodes.txt")),
            ("/metrics/partitions", fixture("partitions.txt")),
        ])
        .await;
        let src =
            NativeSource::new(NativeConfig::new(format!("http://127.0.0.1:{port}"))).expect("src");
        assert_eq!(src.name(), "native");
        let parts = src.poll().await.expect("poll");
        assert_eq!(parts.warnings.len(), 1, "{:?}", parts.warnings);
        assert_eq!(parts.warnings[0].kind(), "http");
        assert!(parts.nodes.is_none() && parts.jobs.is_none());
        let fams = parts.external.expect("external");
        assert_eq!(
            value(&fams, "slurm_native_jobs_cpus_alloc", ""),
            Some(69_376.0)
        );
        assert!(parts.bytes > 0);
    }

    #[tokio::test]
    async fn garbage_from_slurmctld_fails_the_poll_with_the_line() {
        let port = fake_ctld(vec![(
            "/metrics/jobs",
            b"slurm_jobs 1\nslurm_jobs 2\n".to_vec(),
        )])
        .await;
        let mut cfg = NativeConfig::new(format!("http://127.0.0.1:{port}"));
        cfg.endpoints = vec![NativeEndpoint::Jobs];
        let e = NativeSource::new(cfg)
            .expect("src")
            .poll()
            .await
            .expect_err("dup");
        assert_eq!(e.kind(), "parse");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[tokio::test]
    async fn oversized_bodies_and_dead_servers_are_errors() {
        let port = fake_ctld(vec![("/metrics/jobs", vec![b'#'; 4096])]).await;
        let mut cfg = NativeConfig::new(format!("http://127.0.0.1:{port}"));
        cfg.endpoints = vec![NativeEndpoint::Jobs];
        cfg.max_body_bytes = 1000;
        let e = NativeSource::new(cfg)
            .expect("src")
            .poll()
            .await
            .expect_err("big");
        assert_eq!(e.kind(), "io");
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = dead.local_addr().expect("addr").port();
        drop(dead);
        let e = NativeSource::new(NativeConfig::new(format!("http://127.0.0.1:{port}")))
            .expect("src")
            .poll()
            .await
            .expect_err("dead");
        assert_eq!(e.kind(), "connect");
    }
}
