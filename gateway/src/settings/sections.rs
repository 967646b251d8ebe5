//! The sections of the configuration that the layers, the admin listener and the reloader
//! read: pure data with their defaults, owned here so that `Settings` imports nothing from
//! the modules above it.

use serde::Deserialize;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

/// The admin listener's default address, next to the scrape port's 9341.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9342";

/// `[server.admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Off loopback only when set: the admin listener is plain HTTP without authentication
    /// and its metrics name every tenant and its request rates, so it belongs on loopback
    /// or a network only the monitoring can reach (a pod IP behind a NetworkPolicy).
    #[serde(default)]
    pub allow_remote: bool,
}

fn default_admin_listen() -> String {
    DEFAULT_ADMIN_LISTEN.to_owned()
}

impl AdminConfig {
    /// The address to bind, checked against the loopback rule.
    pub fn addr(&self) -> Result<SocketAddr, String> {
        let a: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "server.admin.listen: {:?} is not an IP:port address",
                self.listen
            )
        })?;
        if !a.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "server.admin.listen: {a} is not a loopback address; the admin listener is plain HTTP without authentication, so set allow_remote = true only where the network limits who reaches it"
            ));
        }
        Ok(a)
    }
}

/// `[server.reload]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// How often the watched files are read and hashed; 0: only SIGHUP reloads.
    pub poll_seconds: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig { poll_seconds: 5 }
    }
}

/// What a view over the quota gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExceed {
    /// Whole families in priority order, and a header saying so.
    #[default]
    Truncate,
    /// 413, nothing served.
    Refuse,
}

/// The `[quota]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Series one tenant's view may hold.
    pub metrics_per_tenant: usize,
    pub on_exceed: OnExceed,
}

impl Default for QuotaConfig {
    /// 10,000 jobs at about 10 job series each, plus room for the rest.
    fn default() -> Self {
        QuotaConfig {
            metrics_per_tenant: 200_000,
            on_exceed: OnExceed::Truncate,
        }
    }
}

pub(crate) const fn nz32(v: u32) -> NonZeroU32 {
    match NonZeroU32::new(v) {
        Some(n) => n,
        None => panic!("zero"),
    }
}

pub(crate) const fn nzusize(v: usize) -> NonZeroUsize {
    match NonZeroUsize::new(v) {
        Some(n) => n,
        None => panic!("zero"),
    }
}

/// The `[rate_limit]` section. Zero is refused when the config is read (a zero rate would
/// refuse everything; leave the layer out instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests per minute from one client address (IPv6: one /64), before authentication.
    pub per_ip_per_minute: NonZeroU32,
    /// Requests per minute for one tenant, all its principals together (`queries_per_minute`).
    pub per_tenant_per_minute: NonZeroU32,
    /// Requests per minute for one principal (token, certificate, JWT subject).
    pub per_principal_per_minute: NonZeroU32,
    /// Requests a key may make at once after being idle (the bucket size of every limit).
    pub burst: NonZeroU32,
    /// Keys each store tracks at most (per-IP, per-tenant and per-principal stores each).
    pub max_tracked_keys: NonZeroUsize,
}

impl Default for RateLimitConfig {
    /// A Prometheus scraping every 15 s makes 4 requests a minute; these leave room for a
    /// few scrapers and dashboards behind one address or token, and stop floods.
    fn default() -> Self {
        RateLimitConfig {
            per_ip_per_minute: nz32(600),
            per_tenant_per_minute: nz32(600),
            per_principal_per_minute: nz32(120),
            burst: nz32(20),
            max_tracked_keys: nzusize(10_000),
        }
    }
}

/// `[audit]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The log's segment files (created 0700 at first start).
    pub dir: PathBuf,
    /// The AES-256 keyring (JSON, 0600); generated at first start when missing.
    pub key_file: PathBuf,
    /// The Ed25519 signing key (PKCS#8 PEM, 0600); generated at first start when missing.
    pub signing_key_file: PathBuf,
    /// Written at every start for auditors: the public key that verifies this log.
    /// Default: `<dir>/public-key.pem`.
    pub public_key_file: Option<PathBuf>,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(default)]
    pub durability: Durability,
    /// A signed checkpoint at least every this many records...
    #[serde(default = "d1000")]
    pub checkpoint_every_records: u64,
    /// ...and at least this often, even when idle.
    #[serde(default = "d60")]
    pub checkpoint_interval_seconds: u64,
    /// Whole segments older than this are removed (the chain then starts at a signed
    /// anchor). Unset: keep everything.
    pub retention_days: Option<u64>,
    /// Where signed checkpoints are shipped (a witness). Unset: nowhere; then deleting the
    /// newest records or restoring an older copy of the log cannot be detected.
    #[serde(default)]
    pub publish: Option<PublishConfig>,
}

/// `[audit.publish]`: see `crate::audit_publish`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Append every checkpoint as one JSON line to `DIR/checkpoints.jsonl`.
    pub dir: Option<PathBuf>,
    /// POST checkpoints (JSON lines) to this witness endpoint, e.g.
    /// `https://witness.example.org:9443/v1/checkpoints`.
    pub url: Option<String>,
    /// PEM: CA certificate(s) to trust for `url`.
    pub ca_file: Option<PathBuf>,
    /// A file holding the bearer token sent to `url`.
    pub token_file: Option<PathBuf>,
    /// How often queued checkpoints are sent (and always at shutdown).
    #[serde(default = "d60")]
    pub interval_seconds: u64,
}

fn d1000() -> u64 {
    1000
}
fn d60() -> u64 {
    60
}

/// What happens to a request whose audit record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Fail closed: answer 503, serve nothing unaudited.
    #[default]
    Refuse,
    /// Fail open: serve and log the failure (sites whose scrapes matter more than the trail).
    Serve,
}

/// When a request's record counts as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// The response waits until the record is fsynced.
    #[default]
    Fsync,
    /// The response waits until the record is queued to the writer; a crash can lose the
    /// last group commit's records (never the chain's integrity).
    Queued,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Refuse => "refuse",
            OnFailure::Serve => "serve",
        }
    }
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::Queued => "queued",
        }
    }
}

impl AuditConfig {
    pub fn public_key_path(&self) -> PathBuf {
        self.public_key_file
            .clone()
            .unwrap_or_else(|| self.dir.join("public-key.pem"))
    }
}
