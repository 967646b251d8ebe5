//! A real Prometheus (Debian's `prometheus`, `PROMETHEUS` names the binary) for the lab
//! tests: started on a free loopback port, queried through its HTTP API, killed on drop.
#![allow(clippy::disallowed_methods)] // Prometheus is a program under test

use crate::{free_loopback_port, http_get};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One result of an instant query: its labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

/// A running Prometheus; killed on drop, so a failing test leaves nothing behind.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    pub fn start(config: &Path, data: &Path, log: &Path) -> Prometheus {
        let bin = std::env::var_os("PROMETHEUS").unwrap_or_else(|| "prometheus".into());
        let addr = SocketAddr::from(([127, 0, 0, 1], free_loopback_port()));
        let file = std::fs::File::create(log).expect("create the Prometheus log");
        let file2 = file.try_clone().expect("clone the Prometheus log handle");
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(data)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): install it with `bash deploy/test-deps.sh`",
                    bin.to_string_lossy()
                )
            });
        Prometheus {
            child,
            addr,
            log: log.to_path_buf(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log when Prometheus has stopped.
    pub fn assert_running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("prometheus exited ({st}); log:\n{}", self.log());
        }
    }

    /// `data` of a successful answer of the HTTP API at `path`.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let r = http_get(self.addr, path, &[], HTTP_TIMEOUT)?;
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| {
            format!(
                "GET {path}: {} with a body that is not JSON ({e}): {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )
        })?;
        if r.status != 200 || v["status"] != "success" {
            return Err(format!("GET {path}: {}: {v}", r.status));
        }
        Ok(v["data"].clone())
    }

    /// An instant PromQL query: each result's labels and value.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", percent_encode(promql)))?;
        let results = data["result"]
            .as_array()
            .ok_or_else(|| format!("{promql}: no result vector in {data}"))?;
        results
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .ok_or_else(|| format!("{promql}: a result without labels: {r}"))?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                let value = r["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .ok_or_else(|| format!("{promql}: a result without a value: {r}"))?;
                Ok((labels, value))
            })
            .collect()
    }

    /// [`Self::query`], panicking with Prometheus's log on an error.
    pub fn must_query(&self, promql: &str) -> Vec<Sample> {
        self.query(promql)
            .unwrap_or_else(|e| panic!("{e}; prometheus log:\n{}", self.log()))
    }

    /// The value of label `label` in each result of `promql`.
    pub fn label_values(&self, promql: &str, label: &str) -> BTreeSet<String> {
        self.must_query(promql)
            .into_iter()
            .filter_map(|(mut l, _)| l.remove(label))
            .collect()
    }

    /// Job name -> (health, last scrape error) of every active target.
    pub fn targets(&self) -> Result<BTreeMap<String, (String, String)>, String> {
        let data = self.api("/api/v1/targets?state=active")?;
        let targets = data["activeTargets"]
            .as_array()
            .ok_or_else(|| format!("no activeTargets in {data}"))?;
        Ok(targets
            .iter()
            .map(|t| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                (
                    s(&t["labels"]["job"]),
                    (s(&t["health"]), s(&t["lastError"])),
                )
            })
            .collect())
    }

    /// The value of one of Prometheus's own un-labelled metrics.
    pub fn own_metric(&self, name: &str) -> Result<f64, String> {
        let r = http_get(self.addr, "/metrics", &[], HTTP_TIMEOUT)?;
        let text = String::from_utf8_lossy(&r.body);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("Prometheus's /metrics has no {name}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
