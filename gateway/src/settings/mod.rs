//! The TOML configuration as one typed value, [`Settings`], validated strictly: an unknown
//! key, a wrong type or a missing required value is an error that names the file, the line
//! or key, and what was expected. Every path the file names is resolved relative to the file
//! here, in one place ([`Settings::files_mut`]), which also lists the files a reload reads.
//!
//! The section types live in this module's children ([`sections`], [`auth`]), never in the
//! modules above that read them, so settings import nothing but the policy types and TLS.

pub mod auth;
pub mod sections;

use crate::policy::tenancy::{TenantId, TenantScope};
use collector::families::Options;
use collector::poller::PollConfig;
use collector::source::cli::CliConfig;
use collector::source::rest::{Endpoint, RestConfig, Secret, TokenSource};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default listen address: loopback only until TLS and authentication guard the server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9341";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerConfig,
    /// One cluster with one source (the common case)...
    pub source: Option<SourceConfig>,
    /// ...or several clusters, each with its sources in priority order.
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
    #[serde(default)]
    pub collectors: CollectorsConfig,
    /// Where chargeback counters persist; without it they restart with the process.
    pub accounting: Option<AccountingConfig>,
    /// Priced usage by billing period (`usage report`, `slurm_chargeback_*`).
    pub chargeback: Option<chargeback::Settings>,
    /// Who may scrape. Without it the server answers anyone, so it refuses any address but
    /// loopback unless mutual TLS is on.
    pub auth: Option<auth::AuthnConfig>,
    /// The tenants: which Slurm accounts, partitions and cluster-wide series each owns.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Per-tenant pseudonyms of user names for viewers.
    pub pii: Option<PiiConfig>,
    /// The casbin RBAC model and policy deciding what each role may read.
    pub policies: Option<PoliciesConfig>,
    /// Requests per minute per client IP (before any credential work), tenant and principal.
    #[serde(default)]
    pub rate_limit: sections::RateLimitConfig,
    /// Most series one tenant's scrape may carry, and what happens past it.
    #[serde(default)]
    pub quota: sections::QuotaConfig,
    /// The encrypted, tamper-evident audit log of every request (see `crate::layer::audit`).
    pub audit: Option<sections::AuditConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// `policies/model.conf` in the repository.
    pub model: PathBuf,
    /// `policies/policy.csv` in the repository.
    pub policy: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// At least 32 random bytes (`head -c 32 /dev/urandom > pii.key`, mode 0600).
    pub key_file: PathBuf,
    /// Labels hidden besides `user`.
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub name: String,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub partitions: Vec<String>,
    /// Cluster-wide series (totals, nodes, scheduler): shared infrastructure, off by default.
    #[serde(default)]
    pub cluster: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingConfig {
    /// One redb ledger per cluster is kept here (`<cluster>.redb`).
    pub ledger_dir: PathBuf,
    /// How far back the first poll reads finished jobs.
    #[serde(default = "d86400")]
    pub lookback_seconds: u64,
    /// Each poll re-reads this much before its cursor: slurmdbd's end times arrive late.
    #[serde(default = "d600")]
    pub overlap_seconds: u64,
}

impl AccountingConfig {
    pub fn window(&self) -> collector::ledger::AccountingWindow {
        collector::ledger::AccountingWindow {
            lookback_seconds: self.lookback_seconds,
            overlap_seconds: self.overlap_seconds,
        }
    }
}

fn d86400() -> u64 {
    86_400
}
fn d600() -> u64 {
    600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: usize,
    /// TLS (1.3 by default) and client certificates, with exporter-toolkit's field names.
    pub tls: Option<crate::tls::TlsConfig>,
    /// A second, plain-HTTP listener for the gateway's own metrics and health; none without it.
    pub admin: Option<sections::AdminConfig>,
    /// How changed files are noticed (SIGHUP always reloads); see `crate::reload`.
    #[serde(default)]
    pub reload: sections::ReloadConfig,
    /// Connection caps and timeouts of the accept loop; see `crate::conn`.
    #[serde(default)]
    pub connections: crate::conn::ConnectionsConfig,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_owned()
}
fn default_request_timeout() -> u64 {
    10
}
fn default_max_concurrent() -> usize {
    64
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            request_timeout_seconds: default_request_timeout(),
            max_concurrent_requests: default_max_concurrent(),
            tls: None,
            admin: None,
            reload: Default::default(),
            connections: Default::default(),
        }
    }
}

/// When a file named by the settings is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileUse {
    /// At start-up (or by a source, at every poll): a change needs a restart.
    AtStart,
    /// Again by every reload (see `crate::reload`).
    Reload,
}

/// One cluster: its `cluster` label and its sources, fused part by part (see
/// `collector::poller::fuse_window`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    /// Copies of the same part fetched this close together count as simultaneous, and
    /// the higher-priority (earlier) source's copy wins.
    #[serde(default = "d60")]
    pub correlation_window_seconds: u64,
    pub sources: Vec<SourceConfig>,
}

fn d60() -> u64 {
    60
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Rest,
    Cli,
    Sim,
    Replay,
    /// slurmctld's own `/metrics` (Slurm 25.11+), normalized.
    Native,
    /// node_exporter on the compute nodes, fused by node name.
    NodeExporter,
    /// `.prom` files and commands with an owner scope each.
    Textfile,
    /// Agent mode: the job cgroups of the node this exporter runs on.
    Cgroup,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// The `source` label; default: the kind. Needed when a cluster has two of a kind.
    pub name: Option<String>,
    #[serde(default = "d30")]
    pub interval_seconds: u64,
    #[serde(default = "d20")]
    pub timeout_seconds: u64,
    #[serde(default = "d300")]
    pub max_staleness_seconds: u64,
    #[serde(default = "d300")]
    pub backoff_max_seconds: u64,
    /// The `cluster` label; default: what Slurm reports, else `slurm`.
    pub cluster: Option<String>,
    pub rest: Option<RestSection>,
    pub cli: Option<CliSection>,
    pub sim: Option<SimSection>,
    pub replay: Option<ReplaySection>,
    pub native: Option<NativeSection>,
    pub node_exporter: Option<NodeExporterSection>,
    pub textfile: Option<TextfileSection>,
    pub cgroup: Option<CgroupSection>,
}

/// A source's kind carrying its own section ([`SourceConfig::spec`]).
#[derive(Debug, Clone)]
pub enum SourceSpec<'a> {
    Rest(&'a RestSection),
    Cli(CliSection),
    Sim(SimSection),
    Replay(&'a ReplaySection),
    Native(&'a NativeSection),
    NodeExporter(&'a NodeExporterSection),
    Textfile(&'a TextfileSection),
    Cgroup(&'a CgroupSection),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeSection {
    /// slurmctld's HTTP address, `http://host:port`.
    pub url: String,
    /// Default: jobs, nodes, partitions, scheduler (`jobs-users-accts` is opt-in).
    pub endpoints: Option<Vec<String>>,
    pub user: Option<String>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeExporterSection {
    /// Node name -> URL.
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
    /// Or a URL with `{node}` over the host lists in `nodes`.
    pub url_template: Option<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextfileSection {
    pub directory: Option<PathBuf>,
    /// Owner scope by file name: `cluster`, `partition:NAME`, `account:NAME`, `user:ACCOUNT/USER`.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Scope of files not listed; without it they are not served (deny by default).
    pub default_scope: Option<String>,
    #[serde(default)]
    pub commands: Vec<TextfileCommand>,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextfileCommand {
    pub name: String,
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    pub scope: String,
    #[serde(default = "d10")]
    pub timeout_seconds: u64,
}

fn d10() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupSection {
    #[serde(default = "default_cgroup_root")]
    pub root: PathBuf,
    /// This node's Slurm name.
    pub node: String,
}

fn default_cgroup_root() -> PathBuf {
    PathBuf::from("/sys/fs/cgroup")
}

fn d30() -> u64 {
    30
}
fn d20() -> u64 {
    20
}
fn d300() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestSection {
    /// `http://127.0.0.1:6820` or `unix:/run/slurmrestd/slurmrestd.sock`.
    pub url: String,
    #[serde(default = "default_user")]
    pub user: String,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `true`: get tokens with `scontrol token` (as root or SlurmUser).
    #[serde(default)]
    pub token_scontrol: bool,
    #[serde(default = "default_lifespan")]
    pub token_lifespan_seconds: u64,
    pub api_version: Option<String>,
}

fn default_user() -> String {
    "root".to_owned()
}
fn default_lifespan() -> u64 {
    3600
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliSection {
    pub bin_dir: Option<PathBuf>,
    pub slurm_conf: Option<PathBuf>,
}

/// `[source.sim]`: the size and seed of the simulated cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimSection {
    pub nodes: usize,
    pub jobs: usize,
    pub seed: u64,
}

impl SimSection {
    /// THE simulator defaults: the config, `collect --sim-*` and `demo` all start here.
    pub const DEFAULT: SimSection = SimSection {
        nodes: 1000,
        jobs: 10_000,
        seed: 1,
    };
}

impl Default for SimSection {
    fn default() -> Self {
        SimSection::DEFAULT
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySection {
    pub dir: PathBuf,
    /// Fixed "now" for ages and wait times (golden tests); default: the wall clock.
    pub now_epoch: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorsConfig {
    #[serde(default)]
    pub disabled: BTreeSet<String>,
    #[serde(default)]
    pub per_job: bool,
    #[serde(default = "default_per_job_limit")]
    pub per_job_limit: usize,
    /// Most series any one metric may have before the smallest fold into `__overflow__`.
    #[serde(default = "default_label_budget")]
    pub label_budget: usize,
    /// Per-family budgets (`accounts = 5000`), overriding `label_budget`.
    #[serde(default)]
    pub label_budgets: BTreeMap<String, usize>,
}

fn default_per_job_limit() -> usize {
    10_000
}
fn default_label_budget() -> usize {
    collector::families::DEFAULT_LABEL_BUDGET
}

impl Default for CollectorsConfig {
    fn default() -> Self {
        CollectorsConfig {
            disabled: BTreeSet::new(),
            per_job: false,
            per_job_limit: default_per_job_limit(),
            label_budget: default_label_budget(),
            label_budgets: BTreeMap::new(),
        }
    }
}

/// What is wrong in a configuration text: the line when the TOML parser knows it (a syntax
/// error, an unknown key, a wrong type), else the key named in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{msg}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct Problem {
    pub line: Option<usize>,
    pub msg: String,
}

impl From<String> for Problem {
    fn from(msg: String) -> Self {
        Problem { line: None, msg }
    }
}

/// A configuration file that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: Problem },
    /// The chargeback rate card named by the config (the message names its file and line).
    #[error("{0}")]
    RateCard(String),
}

impl Settings {
    /// Reads, parses and validates a config file; relative paths become relative to it.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            file: file.clone(),
            source,
        })?;
        let mut cfg =
            Settings::parse(&text).map_err(|problem| SettingsError::Invalid { file, problem })?;
        cfg.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        // The rate card, once its path is known (its errors name its own file and line).
        if let Some(c) = &cfg.chargeback {
            c.load().map_err(SettingsError::RateCard)?;
        }
        Ok(cfg)
    }

    /// Parses and validates TOML text (paths stay as written).
    pub fn parse(text: &str) -> Result<Settings, Problem> {
        let cfg: Settings = toml::from_str(text).map_err(|e| Problem {
            line: e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1),
            msg: e.message().to_owned(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Relative paths in a config file are relative to the file.
    fn resolve_paths(&mut self, base: &Path) {
        self.files_mut(&mut |p, _| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        });
    }

    /// Every path the settings name, with when it is read: THE list, for resolving paths
    /// and for watching files. Add a path field here when you add one to a section.
    pub fn files_mut(&mut self, f: &mut dyn FnMut(&mut PathBuf, FileUse)) {
        use FileUse::{AtStart, Reload};
        if let Some(a) = &mut self.accounting {
            f(&mut a.ledger_dir, AtStart);
        }
        if let Some(c) = &mut self.chargeback {
            f(&mut c.store, AtStart);
            f(&mut c.rate_card, AtStart);
        }
        if let Some(t) = &mut self.server.tls {
            f(&mut t.cert_file, Reload);
            f(&mut t.key_file, Reload);
            if let Some(p) = &mut t.client_ca_file {
                f(p, Reload);
            }
        }
        if let Some(p) = &mut self.policies {
            f(&mut p.model, Reload);
            f(&mut p.policy, Reload);
        }
        if let Some(p) = &mut self.pii {
            f(&mut p.key_file, Reload);
        }
        if let Some(a) = &mut self.auth {
            for o in a.oidc.iter_mut() {
                if let Some(p) = &mut o.ca_file {
                    f(p, Reload);
                }
            }
            if let Some(i) = &mut a.introspection {
                if let Some(p) = &mut i.client_secret_file {
                    f(p, Reload);
                }
                if let Some(p) = &mut i.ca_file {
                    f(p, Reload);
                }
            }
        }
        if let Some(a) = &mut self.audit {
            f(&mut a.dir, AtStart);
            f(&mut a.key_file, AtStart);
            f(&mut a.signing_key_file, AtStart);
            if let Some(p) = &mut a.public_key_file {
                f(p, AtStart);
            }
            if let Some(publish) = &mut a.publish {
                for p in [
                    &mut publish.dir,
                    &mut publish.ca_file,
                    &mut publish.token_file,
                ]
                .into_iter()
                .flatten()
                {
                    f(p, AtStart);
                }
            }
        }
        let sources = self
            .source
            .iter_mut()
            .chain(self.clusters.iter_mut().flat_map(|c| c.sources.iter_mut()));
        for s in sources {
            s.files_mut(f);
        }
    }

    /// The files a reload reads (in [`Settings::files_mut`]'s order): watch these.
    pub fn reloaded_files(&self) -> Vec<PathBuf> {
        let mut copy = self.clone();
        let mut out = Vec::new();
        copy.files_mut(&mut |p, when| {
            if when == FileUse::Reload {
                out.push(p.clone());
            }
        });
        out
    }

    /// Every cluster with its sources; the single `[source]` form is one cluster.
    pub fn clusters(&self) -> Vec<ClusterConfig> {
        match &self.source {
            Some(s) => vec![ClusterConfig {
                name: s.cluster.clone().unwrap_or_default(),
                correlation_window_seconds: d60(),
                sources: vec![s.clone()],
            }],
            None => self.clusters.clone(),
        }
    }

    /// Each tenant's scope, by tenant id.
    pub fn tenant_scopes(&self) -> Result<BTreeMap<TenantId, TenantScope>, String> {
        let mut out = BTreeMap::new();
        for (i, t) in self.tenants.iter().enumerate() {
            let id = TenantId::parse(&t.name).map_err(|e| format!("tenants[{i}].name: {e}"))?;
            let scope = TenantScope {
                tenant: id.clone(),
                accounts: t.accounts.iter().cloned().collect(),
                partitions: t.partitions.iter().cloned().collect(),
                cluster: t.cluster,
            };
            if out.insert(id, scope).is_some() {
                return Err(format!("tenants[{i}]: a second tenant named {:?}", t.name));
            }
        }
        Ok(out)
    }

    fn validate(&self) -> Result<(), String> {
        let listen = self.listen_addr()?;
        if let Some(c) = &self.chargeback {
            c.calendar()?;
        }
        if let Some(admin) = &self.server.admin {
            if admin.addr()? == listen {
                return Err(format!(
                    "server.admin.listen: {listen} is server.listen too; give the admin listener its own port"
                ));
            }
        }
        let scopes = self.tenant_scopes()?;
        if self.auth.is_some() && self.policies.is_none() {
            return Err(
                "[auth] needs [policies] (model and policy files, e.g. policies/model.conf and policies/policy.csv): deny by default".into(),
            );
        }
        if let Some(auth) = &self.auth {
            let named = auth
                .client_certs
                .iter()
                .map(|c| ("auth.client_certs", &c.tenant))
                .chain(
                    auth.api_tokens
                        .iter()
                        .map(|t| ("auth.api_tokens", &t.tenant)),
                );
            for (key, tenant) in named {
                if !scopes.contains_key(tenant) {
                    return Err(format!(
                        "{key}: tenant {tenant} is not defined in [[tenants]]"
                    ));
                }
            }
        }
        if let Some(t) = &self.server.tls {
            t.validate().map_err(|e| format!("server.tls: {e}"))?;
        }
        self.server.connections.validate()?;
        match (&self.source, self.clusters.is_empty()) {
            (Some(s), true) => s.validate("source")?,
            (None, false) => {
                let mut names = BTreeSet::new();
                for (i, c) in self.clusters.iter().enumerate() {
                    if c.name.is_empty() || !names.insert(c.name.as_str()) {
                        return Err(format!(
                            "clusters[{i}].name: give each cluster a distinct, non-empty name"
                        ));
                    }
                    if c.sources.is_empty() {
                        return Err(format!(
                            "clusters[{i}] ({}): needs at least one source",
                            c.name
                        ));
                    }
                    let mut labels = BTreeSet::new();
                    for (j, s) in c.sources.iter().enumerate() {
                        s.validate(&format!("clusters[{i}].sources[{j}]"))?;
                        if !labels.insert(s.label()) {
                            return Err(format!(
                                "clusters[{i}].sources[{j}]: a second source named {:?} in cluster {}: give it a distinct `name`",
                                s.label(),
                                c.name
                            ));
                        }
                    }
                }
            }
            (Some(_), false) => return Err("give either [source] or [[clusters]], not both".into()),
            (None, true) => {
                return Err(
                    "missing [source] (or [[clusters]]): say where the Slurm data comes from"
                        .into(),
                )
            }
        }
        // Family names: the collector's list (`external` included; old names warn).
        let named = self
            .collectors
            .disabled
            .iter()
            .map(|d| ("collectors.disabled", d.as_str()))
            .chain(
                self.collectors
                    .label_budgets
                    .keys()
                    .map(|k| ("collectors.label_budgets", k.as_str())),
            );
        collector::families::check_names(named)?;
        let mut budgets = std::iter::once(self.collectors.label_budget)
            .chain(self.collectors.label_budgets.values().copied());
        if budgets.any(|b| b < 2) {
            return Err("collectors.label_budget(s): a budget must be at least 2 series".into());
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let a: SocketAddr = self.server.listen.parse().map_err(|_| {
            format!(
                "server.listen: {:?} is not an IP:port address",
                self.server.listen
            )
        })?;
        // Off loopback only encrypted and authenticated: TLS with `[auth]` (tokens, OIDC,
        // mapped certificates), or TLS requiring verified client certificates.
        let tls = self.server.tls.as_ref();
        let mtls = tls
            .is_some_and(|t| t.client_auth() == crate::tls::ClientAuth::RequireAndVerifyClientCert);
        let guarded = mtls || (tls.is_some() && self.auth.is_some());
        if !a.ip().is_loopback() && !guarded {
            return Err(format!(
                "server.listen: {a} is not a loopback address; off loopback the exporter needs [server.tls] and [auth], or [server.tls] with client_auth_type = \"RequireAndVerifyClientCert\""
            ));
        }
        Ok(a)
    }

    pub fn options(&self) -> Options {
        Options {
            disabled: self.collectors.disabled.clone(),
            per_job: self.collectors.per_job,
            per_job_limit: self.collectors.per_job_limit,
            label_budgets: self.collectors.label_budgets.clone(),
            default_label_budget: self.collectors.label_budget,
        }
    }
}

impl SourceConfig {
    /// This source's paths, for [`Settings::files_mut`].
    fn files_mut(&mut self, f: &mut dyn FnMut(&mut PathBuf, FileUse)) {
        let mut at_start = |p: &mut Option<PathBuf>| {
            if let Some(p) = p {
                f(p, FileUse::AtStart);
            }
        };
        if let Some(r) = &mut self.rest {
            at_start(&mut r.token_file);
        }
        if let Some(c) = &mut self.cli {
            at_start(&mut c.bin_dir);
            at_start(&mut c.slurm_conf);
        }
        if let Some(n) = &mut self.native {
            at_start(&mut n.token_file);
        }
        if let Some(t) = &mut self.textfile {
            at_start(&mut t.directory);
        }
        if let Some(r) = &mut self.replay {
            f(&mut r.dir, FileUse::AtStart);
        }
        if let Some(c) = &mut self.cgroup {
            f(&mut c.root, FileUse::AtStart);
        }
    }

    /// The `source` label of this source.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            match self.kind {
                SourceKind::Rest => "rest",
                SourceKind::Cli => "cli",
                SourceKind::Sim => "sim",
                SourceKind::Replay => "replay",
                SourceKind::Native => "native",
                SourceKind::NodeExporter => "node_exporter",
                SourceKind::Textfile => "textfile",
                SourceKind::Cgroup => "cgroup",
            }
            .to_owned()
        })
    }

    /// Checks one source; `key` names it in errors (`source`, `clusters[0].sources[1]`).
    pub fn validate(&self, key: &str) -> Result<(), String> {
        let s = self;
        if s.interval_seconds == 0 {
            return Err(format!("{key}.interval_seconds must be at least 1"));
        }
        if s.timeout_seconds == 0 {
            return Err(format!("{key}.timeout_seconds must be at least 1"));
        }
        if s.max_staleness_seconds < s.interval_seconds {
            return Err(format!(
                "{key}.max_staleness_seconds ({}) must be at least {key}.interval_seconds ({})",
                s.max_staleness_seconds, s.interval_seconds
            ));
        }
        match s.spec(key)? {
            SourceSpec::Rest(r) => {
                let ep = Endpoint::parse(&r.url).map_err(|e| format!("{key}.rest.url: {e}"))?;
                let n = [r.token.is_some(), r.token_file.is_some(), r.token_scontrol]
                    .iter()
                    .filter(|x| **x)
                    .count();
                if n > 1 {
                    return Err(format!(
                        "{key}.rest: give only one of token, token_file, token_scontrol"
                    ));
                }
                if n == 0 && matches!(ep, Endpoint::Tcp { .. }) {
                    return Err(
                        format!("{key}.rest: slurmrestd over TCP needs one of token, token_file or token_scontrol = true"),
                    );
                }
                if let Some(v) = &r.api_version {
                    collector::parse::versions::by_name(v).ok_or_else(|| {
                        format!("{key}.rest.api_version: {v:?} is not a supported version")
                    })?;
                }
            }
            SourceSpec::Sim(sim) => {
                if sim.nodes == 0 || sim.nodes > 1_000_000 || sim.jobs > 10_000_000 {
                    return Err(format!(
                        "{key}.sim: nodes must be 1..=1000000 and jobs at most 10000000"
                    ));
                }
            }
            SourceSpec::Cli(_)
            | SourceSpec::Replay(_)
            | SourceSpec::Native(_)
            | SourceSpec::NodeExporter(_)
            | SourceSpec::Textfile(_)
            | SourceSpec::Cgroup(_) => {}
        }
        Ok(())
    }

    /// The source's kind with its own section: what `kind` and the eight optional sections
    /// mean, decided here once (validation and `crate::app` both match on it). A missing
    /// section is an error naming it (`key`: `source`, `clusters[0].sources[1]`); `cli` and
    /// `sim` have defaults.
    pub fn spec(&self, key: &str) -> Result<SourceSpec<'_>, String> {
        let needs = |section: &str, what: &str| {
            format!("{key}.kind = \"{section}\" needs a [{key}.{section}] section{what}")
        };
        Ok(match self.kind {
            SourceKind::Rest => {
                SourceSpec::Rest(self.rest.as_ref().ok_or_else(|| needs("rest", ""))?)
            }
            SourceKind::Cli => SourceSpec::Cli(self.cli.clone().unwrap_or_default()),
            SourceKind::Sim => SourceSpec::Sim(self.sim.clone().unwrap_or_default()),
            SourceKind::Replay => SourceSpec::Replay(
                self.replay
                    .as_ref()
                    .ok_or_else(|| needs("replay", " with dir"))?,
            ),
            SourceKind::Native => {
                SourceSpec::Native(self.native.as_ref().ok_or_else(|| needs("native", ""))?)
            }
            SourceKind::NodeExporter => SourceSpec::NodeExporter(
                self.node_exporter
                    .as_ref()
                    .ok_or_else(|| needs("node_exporter", ""))?,
            ),
            SourceKind::Textfile => SourceSpec::Textfile(
                self.textfile
                    .as_ref()
                    .ok_or_else(|| needs("textfile", ""))?,
            ),
            SourceKind::Cgroup => {
                SourceSpec::Cgroup(self.cgroup.as_ref().ok_or_else(|| needs("cgroup", ""))?)
            }
        })
    }

    pub fn poll_config(&self) -> PollConfig {
        let s = self;
        PollConfig {
            interval: Duration::from_secs(s.interval_seconds),
            timeout: Duration::from_secs(s.timeout_seconds),
            max_staleness: Duration::from_secs(s.max_staleness_seconds),
            backoff_max: Duration::from_secs(s.backoff_max_seconds.max(s.interval_seconds)),
            cluster: s.cluster.clone(),
        }
    }

    pub fn cli_config(&self) -> CliConfig {
        let c = self.cli.clone().unwrap_or_default();
        CliConfig {
            bin_dir: c.bin_dir,
            slurm_conf: c.slurm_conf,
            timeout: Duration::from_secs(self.timeout_seconds),
        }
    }

    pub fn rest_config(&self, r: &RestSection, options: &Options) -> Result<RestConfig, String> {
        let token = if let Some(t) = &r.token {
            TokenSource::Static(Secret::new(t.clone()))
        } else if let Some(p) = &r.token_file {
            TokenSource::File(p.clone())
        } else if r.token_scontrol {
            TokenSource::Scontrol {
                lifespan_seconds: r.token_lifespan_seconds.max(60),
            }
        } else {
            TokenSource::None
        };
        Ok(RestConfig {
            endpoint: Endpoint::parse(&r.url)?,
            user: r.user.clone(),
            token,
            api_version: r.api_version.clone(),
            timeout: Duration::from_secs(self.timeout_seconds),
            cli: self.cli_config(),
            extras: collector::source::Extras::for_families(options),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sections::{AdminConfig, DEFAULT_ADMIN_LISTEN};

    #[test]
    fn unknown_key_is_named() {
        let e =
            Settings::parse("[source]\nkind = \"sim\"\nintervall_seconds = 5\n").expect_err("typo");
        assert!(e.to_string().contains("intervall_seconds"), "{e}");
        assert!(e.to_string().contains("line 3"), "{e}");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn rest_over_tcp_needs_a_token() {
        let e = Settings::parse(
            "[source]\nkind = \"rest\"\n[source.rest]\nurl = \"http://127.0.0.1:6820\"\n",
        )
        .expect_err("no token");
        assert!(e.to_string().contains("token"), "{e}");
        Settings::parse("[source]\nkind = \"rest\"\n[source.rest]\nurl = \"unix:/run/x.sock\"\n")
            .expect("unix socket needs no token");
    }

    #[test]
    fn off_loopback_needs_tls_and_authentication() {
        let tls = |auth: &str| {
            format!(
                "[server]\nlisten = \"0.0.0.0:9341\"\n[server.tls]\ncert_file = \"s.pem\"\n\
                 key_file = \"k.pem\"\nclient_auth_type = \"{auth}\"\nclient_ca_file = \"ca.pem\"\n\
                 [source]\nkind = \"sim\"\n"
            )
        };
        let tokens = "[[tenants]]\nname = \"t\"\n[policies]\nmodel = \"m.conf\"\npolicy = \"p.csv\"\n[[auth.api_tokens]]\n\
                      id = \"abcdefghijkl\"\nsha256 = \"00000000000000000000000000000000000000000000000000000000000000ab\"\n\
                      tenant = \"t\"\nrole = \"viewer\"\n";
        let plain = "[server]\nlisten = \"0.0.0.0:9341\"\n[source]\nkind = \"sim\"\n";
        for (what, text, ok) in [
            ("plain HTTP", plain.to_owned(), false),
            ("plain HTTP with tokens", format!("{plain}{tokens}"), false),
            (
                "TLS, optional client certificates, no [auth]",
                tls("VerifyClientCertIfGiven"),
                false,
            ),
            (
                "TLS with tokens",
                format!("{}{tokens}", tls("VerifyClientCertIfGiven")),
                true,
            ),
            (
                "TLS requiring client certificates",
                tls("RequireAndVerifyClientCert"),
                true,
            ),
        ] {
            match Settings::parse(&text) {
                Ok(_) => assert!(ok, "{what}: accepted"),
                Err(e) => assert!(!ok && e.to_string().contains("loopback"), "{what}: {e}"),
            }
        }
    }

    #[test]
    fn unknown_family_is_refused() {
        let e = Settings::parse("[source]\nkind = \"sim\"\n[collectors]\ndisabled = [\"nodez\"]\n")
            .expect_err("typo");
        assert!(e.to_string().contains("nodez"), "{e}");
    }

    #[test]
    fn budgets_name_known_families_and_are_sane() {
        let e =
            Settings::parse("[source]\nkind = \"sim\"\n[collectors.label_budgets]\nuserz = 10\n")
                .expect_err("typo");
        assert!(e.to_string().contains("userz"), "{e}");
        let e = Settings::parse("[source]\nkind = \"sim\"\n[collectors]\nlabel_budget = 0\n")
            .expect_err("zero");
        assert!(e.to_string().contains("at least 2"), "{e}");
        let c =
            Settings::parse("[source]\nkind = \"sim\"\n[collectors.label_budgets]\nusers = 500\n")
                .expect("valid");
        assert_eq!(c.options().label_budgets.get("users"), Some(&500));
    }

    #[test]
    fn clusters_need_distinct_names_sources_and_not_both_forms() {
        let e =
            Settings::parse("[[clusters]]\nname = \"a\"\nsources = []\n").expect_err("no sources");
        assert!(e.to_string().contains("at least one source"), "{e}");
        let two = "[[clusters]]\nname = \"a\"\n[[clusters.sources]]\nkind = \"sim\"\n";
        let e = Settings::parse(&format!("{two}{two}")).expect_err("same name");
        assert!(e.to_string().contains("distinct"), "{e}");
        let e = Settings::parse(&format!("[source]\nkind = \"sim\"\n{two}")).expect_err("both");
        assert!(e.to_string().contains("not both"), "{e}");
        let e = Settings::parse("[server]\n").expect_err("nothing");
        assert!(e.to_string().contains("missing [source]"), "{e}");
        let e = Settings::parse(
            "[[clusters]]\nname = \"a\"\n[[clusters.sources]]\nkind = \"sim\"\ninterval_seconds = 0\n",
        )
        .expect_err("bad source");
        assert!(
            e.to_string()
                .contains("clusters[0].sources[0].interval_seconds"),
            "{e}"
        );
        let ok = Settings::parse(&two.replace("\"a\"", "\"b\"")).expect("valid");
        assert_eq!(ok.clusters().len(), 1);
    }

    #[test]
    fn wrong_type_is_named() {
        let e = Settings::parse("[source]\nkind = \"sim\"\ninterval_seconds = \"often\"\n")
            .expect_err("type");
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn every_example_config_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).expect("config dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "toml") {
                Settings::load(&p).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 4, "expected the example configs, found {n}");
    }
    #[test]
    fn admin_listen_is_loopback_unless_allowed() {
        let c: AdminConfig = toml::from_str("").expect("defaults");
        assert_eq!(
            c.addr().expect("loopback").to_string(),
            DEFAULT_ADMIN_LISTEN
        );
        let c: AdminConfig = toml::from_str("listen = \"0.0.0.0:9342\"").expect("parses");
        assert!(c.addr().expect_err("remote").contains("allow_remote"));
        let c: AdminConfig =
            toml::from_str("listen = \"0.0.0.0:9342\"\nallow_remote = true").expect("parses");
        assert!(c.addr().is_ok());
        assert!(toml::from_str::<AdminConfig>("listen_addr = \"127.0.0.1:1\"").is_err());
    }

    #[test]
    fn the_admin_listener_needs_its_own_port_and_known_keys() {
        let base = "[source]\nkind = \"sim\"\n[server]\nlisten = \"127.0.0.1:9341\"\n";
        let e = Settings::parse(&format!(
            "{base}[server.admin]\nlisten = \"127.0.0.1:9341\"\n"
        ))
        .expect_err("same port");
        assert!(e.to_string().contains("own port"), "{e}");
        let e =
            Settings::parse(&format!("{base}[server.admin]\nport = 1\n")).expect_err("unknown key");
        assert!(e.to_string().contains("port"), "{e}");
        let e = Settings::parse(&format!(
            "{base}[server.admin]\nlisten = \"0.0.0.0:9342\"\n"
        ))
        .expect_err("remote");
        assert!(e.to_string().contains("allow_remote"), "{e}");
        let c = Settings::parse(&format!("{base}[server.admin]\n")).expect("valid");
        assert_eq!(
            c.server.admin.map(|a| a.listen),
            Some(DEFAULT_ADMIN_LISTEN.to_owned())
        );
    }

    #[test]
    fn every_path_is_relative_to_the_config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "[source]\nkind = \"rest\"\n[source.rest]\nurl = \"unix:/x.sock\"\ntoken_file = \"tok\"\n\
            [source.native]\nurl = \"http://127.0.0.1:1\"\ntoken_file = \"native.jwt\"\n\
            [source.textfile]\ndirectory = \"prom\"\n[source.cli]\nbin_dir = \"bin\"\nslurm_conf = \"/etc/slurm/slurm.conf\"\n\
            [accounting]\nledger_dir = \"ledger\"\n[pii]\nkey_file = \"pii.key\"\n\
            [policies]\nmodel = \"m.conf\"\npolicy = \"p.csv\"\n[[tenants]]\nname = \"t\"\n\
            [audit]\ndir = \"audit\"\nkey_file = \"k.json\"\nsigning_key_file = \"s.pem\"\n\
            [[auth.oidc]]\nissuer = \"https://idp.example\"\naudiences = [\"a\"]\nca_file = \"oidc-ca.pem\"\n\
            [auth.introspection]\nurl = \"https://idp.example/introspect\"\nclient_id = \"c\"\n\
            client_secret_file = \"secret\"\nca_file = \"intro-ca.pem\"\n\
            [server.tls]\ncert_file = \"s.pem\"\nkey_file = \"k.pem\"\n";
        let path = dir.path().join("exporter.toml");
        std::fs::write(&path, text).expect("write");
        let mut cfg = Settings::load(&path).expect("loads");
        let mut seen = Vec::new();
        cfg.files_mut(&mut |p, _| seen.push(p.clone()));
        assert_eq!(seen.len(), 17, "{seen:?}");
        for p in &seen {
            assert!(p.is_absolute(), "{} not resolved", p.display());
            assert!(
                p.starts_with(dir.path()) || p.starts_with("/etc"),
                "{} not under the config's directory",
                p.display()
            );
        }
        let auth = cfg.auth.as_ref().expect("auth");
        assert_eq!(auth.oidc[0].ca_file, Some(dir.path().join("oidc-ca.pem")));
        let i = auth.introspection.as_ref().expect("introspection");
        assert_eq!(i.client_secret_file, Some(dir.path().join("secret")));
        assert_eq!(i.ca_file, Some(dir.path().join("intro-ca.pem")));
        let watched = cfg.reloaded_files();
        for f in [
            "oidc-ca.pem",
            "secret",
            "intro-ca.pem",
            "pii.key",
            "m.conf",
            "p.csv",
        ] {
            assert!(
                watched.contains(&dir.path().join(f)),
                "{f} not watched: {watched:?}"
            );
        }
        assert!(
            !watched.contains(&dir.path().join("tok")),
            "sources need a restart"
        );
    }

    #[test]
    fn load_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        match Settings::load(&path) {
            Err(e @ SettingsError::Read { .. }) => {
                assert!(
                    e.to_string().starts_with(&path.display().to_string()),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, "[source]\nkind = \"sim\"\n\nnodez = 1\n").expect("write");
        match Settings::load(&path) {
            Err(SettingsError::Invalid { file, problem }) => {
                assert_eq!(file, path.display().to_string());
                assert_eq!(problem.line, Some(4), "{problem}");
                assert!(problem.msg.contains("nodez"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }
}
