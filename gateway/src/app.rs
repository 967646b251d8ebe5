//! Wiring: a source from the configuration, the poller, the store and the HTTP server.

use crate::layer::audit::{Auditor, OnFailure};
use crate::layer::authn::Authenticator;
use crate::layer::authz::Authorizer;
use crate::layer::quota::{Quota, QuotaConfig};
use crate::layer::rate_limit::RateLimitConfig;
use crate::policy::pii::Pseudonymizer;
use crate::settings::{AccountingConfig, Settings, SimSection, SourceConfig, SourceSpec};
use crate::stack::{self, Limits};
use crate::state::{AppState, Tenancy, TenancyHandle};
use crate::tls::{self, ReloadableTls, TlsConfig};
use collector::families::{self, Options};
use collector::ledger::Ledger;
use collector::poller::{self, ClusterSpec, PollConfig, Runner};
use collector::source::cgroup::CgroupSource;
use collector::source::cli::CliSource;
use collector::source::native::{NativeConfig, NativeEndpoint, NativeSource};
use collector::source::node_exporter::{NodeExporterConfig, NodeExporterSource, Targets};
use collector::source::replay::ReplaySource;
use collector::source::rest::RestSource;
use collector::source::rest::Secret;
use collector::source::textfile::{CommandConfig, Scope, TextfileConfig, TextfileSource};
use collector::source::{Extras, Source};
use collector::store::{encode, label_cluster, merge_families, Format, Store};
use sim::{SimSource, SimSpec};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Builds one configured source.
pub fn make_source(s: &SourceConfig, options: &Options) -> Result<Box<dyn Source>, String> {
    Ok(match s.spec("source")? {
        SourceSpec::Rest(r) => {
            Box::new(RestSource::new(s.rest_config(r, options)?).map_err(|e| e.to_string())?)
        }
        SourceSpec::Cli(_) => Box::new(CliSource {
            config: s.cli_config(),
            extras: Extras::for_families(options),
        }),
        SourceSpec::Sim(sim) => Box::new(SimSource::new(SimSpec {
            nodes: sim.nodes,
            jobs: sim.jobs,
            seed: sim.seed,
        })),
        SourceSpec::Replay(r) => Box::new(ReplaySource {
            dir: r.dir.clone(),
            now_epoch: r.now_epoch,
        }),
        SourceSpec::Native(n) => {
            let mut c = NativeConfig::new(n.url.clone());
            if let Some(words) = &n.endpoints {
                c.endpoints = words
                    .iter()
                    .map(|w| {
                        NativeEndpoint::from_word(w).ok_or_else(|| {
                            format!("source.native.endpoints: unknown endpoint {w:?} (jobs, nodes, partitions, scheduler, jobs-users-accts)")
                        })
                    })
                    .collect::<Result<_, String>>()?;
            }
            c.user = n.user.clone();
            if let Some(p) = &n.token_file {
                let t = std::fs::read_to_string(p)
                    .map_err(|e| format!("source.native.token_file {}: {e}", p.display()))?;
                c.token = Some(Secret::new(t.trim().trim_start_matches("SLURM_JWT=")));
            }
            c.timeout = Duration::from_secs(s.timeout_seconds);
            Box::new(NativeSource::new(c).map_err(|e| e.to_string())?)
        }
        SourceSpec::NodeExporter(n) => {
            let targets = match &n.url_template {
                Some(t) => {
                    let nodes: Vec<&str> = n.nodes.iter().map(String::as_str).collect();
                    Targets::template(t.clone(), &nodes)
                        .map_err(|e| format!("source.node_exporter: {e}"))?
                }
                None => Targets::List(n.targets.clone().into_iter().collect()),
            };
            Box::new(
                NodeExporterSource::new(NodeExporterConfig::new(targets))
                    .map_err(|e| e.to_string())?,
            )
        }
        SourceSpec::Textfile(t) => {
            let scope = |key: &str, v: &str| {
                Scope::parse(v).map_err(|e| format!("source.textfile.{key}: {e}"))
            };
            let mut c = TextfileConfig {
                directory: t.directory.clone(),
                ..TextfileConfig::default()
            };
            for (file, sc) in &t.files {
                c.file_scopes
                    .insert(file.clone(), scope(&format!("files.{file}"), sc)?);
            }
            if let Some(d) = &t.default_scope {
                c.default_scope = Some(scope("default_scope", d)?);
            }
            for cmd in &t.commands {
                c.commands.push(CommandConfig {
                    name: cmd.name.clone(),
                    program: cmd.program.clone(),
                    args: cmd.args.clone(),
                    scope: Some(scope(&format!("commands.{}", cmd.name), &cmd.scope)?),
                    timeout: Duration::from_secs(cmd.timeout_seconds.max(1)),
                });
            }
            if let Some(p) = &t.prefix {
                c.prefix = p.clone();
            }
            Box::new(TextfileSource::new(c).map_err(|e| e.to_string())?)
        }
        SourceSpec::Cgroup(c) => Box::new(CgroupSource {
            root: c.root.clone(),
            node: c.node.clone(),
        }),
    })
}

/// Every configured cluster with a runner per source, in priority order.
pub fn make_clusters(cfg: &Settings) -> Result<Vec<ClusterSpec>, String> {
    let options = cfg.options();
    let charge = cfg
        .chargeback
        .as_ref()
        .map(collector::charge::Feed::open)
        .transpose()?;
    cfg.clusters()
        .into_iter()
        .map(|c| {
            let mut runners = Vec::with_capacity(c.sources.len());
            for (i, s) in c.sources.iter().enumerate() {
                let mut r = Runner::named(make_source(s, &options)?, s.label(), s.poll_config());
                // The persistent ledger goes with the cluster's first (primary) source.
                if let (0, Some(a)) = (i, &cfg.accounting) {
                    r = r.with_ledger(open_ledger(a, &c.name)?, a.window());
                }
                if let (0, Some(f)) = (i, &charge) {
                    r = r.with_chargeback(f.for_cluster());
                }
                runners.push(r);
            }
            Ok(ClusterSpec {
                name: (!c.name.is_empty()).then(|| c.name.clone()),
                runners,
                window: Duration::from_secs(c.correlation_window_seconds),
            })
        })
        .collect()
}

/// The cluster's ledger file under `accounting.ledger_dir`.
fn open_ledger(a: &AccountingConfig, cluster: &str) -> Result<Ledger, String> {
    let name = if cluster.is_empty() {
        "default"
    } else {
        cluster
    };
    std::fs::create_dir_all(&a.ledger_dir)
        .map_err(|e| format!("accounting.ledger_dir {}: {e}", a.ledger_dir.display()))?;
    let path = a.ledger_dir.join(format!("{name}.redb"));
    Ledger::open(&path).map_err(|e| format!("accounting ledger {}: {e}", path.display()))
}

/// Polls every source once and returns the exposition, or the one-line reason it failed.
pub async fn collect_once(cfg: &Settings, format: Format) -> Result<Vec<u8>, String> {
    let clusters = make_clusters(cfg)?;
    let several = clusters.len() > 1;
    let options = cfg.options();
    let mut all = Vec::new();
    for mut c in clusters {
        for r in c.runners.iter_mut() {
            let name = r.view().name;
            r.poll_once().await.map_err(|e| match &c.name {
                Some(cluster) => format!("cluster {cluster}, source {name}: {e}"),
                None => format!("source {name}: {e}"),
            })?;
        }
        let views: Vec<_> = c.runners.iter().map(Runner::view).collect();
        let snap = poller::fuse_window(&views, c.name.as_deref(), c.window);
        let options = options.clone();
        let mut fams = tokio::task::spawn_blocking(move || {
            let mut f = families::collect_all(&snap, &options);
            if several {
                label_cluster(&mut f, &snap.cluster);
            }
            f
        })
        .await
        .map_err(|e| e.to_string())?;
        all.append(&mut fams);
    }
    let families = if several { merge_families(all) } else { all };
    let mut out = Vec::with_capacity(1 << 20);
    encode(&families, format, &|_| true, &mut out);
    Ok(out)
}

/// Serves `/metrics` from the background pollers until SIGINT/SIGTERM.
pub async fn serve(cfg: Settings, config_path: PathBuf) -> Result<(), String> {
    let clusters = make_clusters(&cfg)?;
    let serving = Serving {
        addr: cfg.listen_addr()?,
        limits: Limits {
            request_timeout: Duration::from_secs(cfg.server.request_timeout_seconds.max(1)),
            max_concurrent: cfg.server.max_concurrent_requests.max(1),
        },
        tls: cfg.server.tls.clone(),
        tenancy: Tenancy::from_settings(&cfg).await?,
        auditor: open_auditor(cfg.audit.as_ref())?,
        config_path: Some(config_path),
        admin: cfg.server.admin.clone(),
        connections: cfg.server.connections,
    };
    run_server(serving, clusters, cfg.options(), |_| {}).await
}

/// Opens the audit log (keys made at first start) when `[audit]` is configured.
pub fn open_auditor(
    cfg: Option<&crate::layer::audit::AuditConfig>,
) -> Result<Option<Arc<Auditor>>, String> {
    cfg.map(|a| Auditor::open(a).map(Arc::new)).transpose()
}

/// Every reload attempt becomes an audit record; a successful one also hands the writer a
/// rotated keyring (`audit rotate-key`, then SIGHUP).
fn audit_reloads(auditor: Arc<Auditor>) -> crate::reload::ReloadHook {
    Arc::new(move |ev: &crate::reload::ReloadEvent| {
        let mut detail = serde_json::json!({
            "trigger": ev.trigger.as_str(),
            "ok": ev.ok,
            "config_digest": ev.config_digest,
            "changed_files": ev.changed_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        if let Some(e) = &ev.error {
            detail["error"] = e.as_str().into();
        }
        if ev.ok {
            match auditor.reload_keyring() {
                Ok(Some(id)) => detail["audit_key_rotated_to"] = id.into(),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("{e}");
                    detail["audit_key_error"] = e.into();
                }
            }
        }
        auditor.write_detached(audit::Event {
            kind: audit::EventKind::ConfigReload,
            decision: Some(if ev.ok {
                audit::Decision::Allow
            } else {
                audit::Decision::Deny
            }),
            detail: Some(detail),
            ..audit::Event::default()
        });
    })
}

/// How the server listens and whom it serves.
pub struct Serving {
    pub addr: SocketAddr,
    pub limits: Limits,
    pub tls: Option<TlsConfig>,
    pub tenancy: Option<Arc<Tenancy>>,
    /// The audit log every request is recorded in.
    pub auditor: Option<Arc<Auditor>>,
    /// The config file reloaded on SIGHUP and on change (see `crate::reload`).
    pub config_path: Option<PathBuf>,
    /// The admin listener (the gateway's own metrics and health), if any.
    pub admin: Option<crate::routes::admin::AdminConfig>,
    /// Connection caps and timeouts of the listener.
    pub connections: crate::conn::ConnectionsConfig,
}

pub async fn run_server(
    serving: Serving,
    clusters: Vec<ClusterSpec>,
    options: Options,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let Serving {
        addr,
        limits,
        tls,
        tenancy,
        auditor,
        config_path,
        admin,
        connections,
    } = serving;
    let tenancy = tenancy.map(TenancyHandle::new);
    // Raised before anything opens files; the cap then fits the descriptors there are.
    let max_connections = crate::conn::fit_to_nofile(connections.max);
    // Certificates are checked before binding: a bad file stops start-up with its name.
    let tls = tls
        .map(|t| ReloadableTls::load(t).map_err(|e| format!("server.tls: {e}")))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let admin = match &admin {
        Some(a) => Some(crate::routes::admin::bind(a).await?),
        None => None,
    };
    if let Some(a) = &auditor {
        let detail = serde_json::json!({
            "listen": bound.to_string(),
            "tls": tls.is_some(),
            "authentication": tenancy.is_some(),
        });
        if let Err(e) = a.startup(detail).await {
            // Fail closed: a gateway that cannot audit does not start, unless the site chose
            // to serve anyway.
            match a.on_failure() {
                OnFailure::Refuse => return Err(e),
                OnFailure::Serve => {
                    tracing::error!("{e}; serving anyway (audit.on_failure = \"serve\")")
                }
            }
        }
    }
    let store = Arc::new(Store::default());
    let poller = tokio::spawn(poller::run_clusters(clusters, store.clone(), options));
    let metrics = Arc::new(crate::metrics::GatewayMetrics::new());
    let state = AppState {
        store,
        tenancy: tenancy.clone(),
        auditor: auditor.clone(),
        metrics: metrics.clone(),
        bodies: Default::default(),
    };
    let admin = admin.map(|l| tokio::spawn(crate::routes::admin::serve(l, state.clone())));
    let app = stack::build(state, limits);
    tracing::info!(%bound, "serving /metrics, /healthz, /readyz");
    on_ready(bound);
    let mut reloader = crate::reload::Reloader::new(config_path, metrics.clone())
        .tls(tls.clone())
        .tenancy(tenancy);
    if let Some(a) = &auditor {
        reloader = reloader.on_reload(audit_reloads(a.clone()));
    }
    tokio::spawn(reloader.run());
    let mut opts = tls::ServeOptions::from(&connections);
    opts.max_connections = max_connections;
    let counted = metrics.clone();
    opts.on_refusal = Some(Arc::new(
        move |why: crate::conn::Refusal, _client: SocketAddr| {
            counted.connection_refused(why.as_str())
        },
    ));
    let served = match tls {
        Some(tls) => tls::serve_tls_with(listener, tls, app, shutdown_signal(), opts).await,
        // The per-IP limit keys on the TCP peer: the accept loop hands it to every request.
        None => tls::serve_plain_with(listener, app, shutdown_signal(), opts).await,
    }
    .map_err(|e| format!("server failed: {e}"));
    poller.abort();
    if let Some(a) = admin {
        a.abort();
    }
    if let Some(a) = &auditor {
        let _ = a
            .write(audit::Event {
                kind: audit::EventKind::Admin,
                detail: Some(serde_json::json!({"action": "shutdown"})),
                ..audit::Event::default()
            })
            .await;
        a.close();
    }
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// The demo's sample tenants: (name, the Slurm accounts of the simulated cluster it owns).
const DEMO_TENANTS: [(&str, &[&str]); 2] = [
    ("alpha", &["physics", "astro", "hep", "condensed", "plasma"]),
    (
        "beta",
        &["chemistry", "organic", "quantum", "materials", "catalysis"],
    ),
];

/// Everything the demo generates: certificates, tokens, the pseudonym key, and the
/// tenancy built from them. Written under `dir` (keys 0600).
struct DemoSecrets {
    certs: crate::devcerts::DevCerts,
    tokens: Vec<(String, String)>,
    operator_token: String,
    tenancy: Arc<Tenancy>,
}

async fn demo_secrets(dir: &std::path::Path) -> Result<DemoSecrets, String> {
    use crate::layer::authn::{AuthnConfig, CertIdentityConfig};
    use crate::policy::tenancy::{Role, TenantId, TenantScope};
    let names: Vec<&str> = DEMO_TENANTS.iter().map(|(n, _)| *n).collect();
    let certs = crate::devcerts::generate(&dir.join("certs"), &names)?;
    let mut auth = AuthnConfig::default();
    let mut scopes = std::collections::BTreeMap::new();
    let mut tokens = Vec::new();
    for (name, accounts) in DEMO_TENANTS {
        let tenant = TenantId::parse(name)?;
        let (token, entry) = crate::layer::authn::token::new_token(tenant.clone(), Role::Viewer)
            .map_err(|e| format!("demo token: {e}"))?;
        auth.api_tokens.push(entry);
        if let Some(c) = certs.client(name) {
            auth.client_certs.push(CertIdentityConfig {
                identity: c.uri.clone(),
                tenant: tenant.clone(),
                role: Role::Viewer,
            });
        }
        scopes.insert(
            tenant.clone(),
            TenantScope {
                tenant,
                accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
                partitions: Default::default(),
                cluster: false,
            },
        );
        tokens.push((name.to_owned(), token));
    }
    let ops = TenantId::parse("ops")?;
    let (operator_token, entry) =
        crate::layer::authn::token::new_token(ops.clone(), Role::Operator)
            .map_err(|e| format!("demo token: {e}"))?;
    auth.api_tokens.push(entry);
    scopes.insert(
        ops.clone(),
        TenantScope {
            tenant: ops,
            accounts: Default::default(),
            partitions: Default::default(),
            cluster: true,
        },
    );
    let mut key = vec![0u8; 32];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut key)
        .map_err(|e| format!("demo: the OS random generator failed: {e}"))?;
    let pii = Pseudonymizer::new(key, [])?;
    // The shipped example policies, so the demo needs no files from the repository.
    let pol = dir.join("policies");
    std::fs::create_dir_all(&pol).map_err(|e| format!("demo: {}: {e}", pol.display()))?;
    for (name, text) in [
        ("model.conf", include_str!("../../policies/model.conf")),
        ("policy.csv", include_str!("../../policies/policy.csv")),
    ] {
        std::fs::write(pol.join(name), text).map_err(|e| format!("demo: {name}: {e}"))?;
    }
    let authz = Authorizer::load(pol.join("model.conf"), pol.join("policy.csv"))
        .await
        .map_err(|e| format!("demo policies: {e}"))?;
    let tenancy = Arc::new(Tenancy {
        authn: Arc::new(Authenticator::new(&auth).map_err(|e| e.to_string())?),
        scopes,
        pii: Some(pii),
        authz: Arc::new(authz),
        quota: Arc::new(Quota::new(QuotaConfig::default())),
        rate_limit: RateLimitConfig::default(),
    });
    Ok(DemoSecrets {
        certs,
        tokens,
        operator_token,
        tenancy,
    })
}

/// The demo: a simulated cluster served over HTTPS with two sample viewer tenants and an
/// operator, credentials generated on the fly; prints what to try and writes `demo.json`.
pub async fn demo(
    listen: SocketAddr,
    nodes: usize,
    jobs: usize,
    state_dir: Option<PathBuf>,
) -> Result<(), String> {
    if !listen.ip().is_loopback() {
        return Err(format!("demo: {listen} is not a loopback address"));
    }
    let dir = match state_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("slurm-exporter-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("demo: {}: {e}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir).map_err(|e| format!("demo: {}: {e}", dir.display()))?;
    let secrets = demo_secrets(&dir).await?;
    // The demo audits too: keys made on first start under the state directory.
    let audit_cfg = crate::layer::audit::AuditConfig {
        dir: dir.join("audit"),
        key_file: dir.join("audit-keys").join("keyring.json"),
        signing_key_file: dir.join("audit-keys").join("signing.pem"),
        public_key_file: Some(dir.join("audit-public-key.pem")),
        on_failure: OnFailure::Refuse,
        durability: Default::default(),
        checkpoint_every_records: 1000,
        checkpoint_interval_seconds: 60,
        retention_days: None,
        publish: None,
    };
    let auditor = open_auditor(Some(&audit_cfg))?;
    let source = Box::new(
        SimSource::new(SimSpec {
            nodes,
            jobs,
            seed: SimSection::DEFAULT.seed,
        })
        .evolving(),
    );
    let poll = PollConfig {
        interval: Duration::from_secs(15),
        timeout: Duration::from_secs(60),
        max_staleness: Duration::from_secs(300),
        backoff_max: Duration::from_secs(60),
        cluster: Some("demo".into()),
    };
    let demo = ClusterSpec {
        name: poll.cluster.clone(),
        runners: vec![Runner::new(source, poll)],
        window: poller::DEFAULT_CORRELATION_WINDOW,
    };
    let serving = Serving {
        addr: listen,
        limits: Limits {
            request_timeout: Duration::from_secs(10),
            max_concurrent: 64,
        },
        tls: Some(
            secrets
                .certs
                .tls_config(tls::ClientAuth::VerifyClientCertIfGiven),
        ),
        tenancy: Some(secrets.tenancy.clone()),
        auditor,
        config_path: None,
        admin: None,
        connections: Default::default(),
    };
    let certs = secrets.certs;
    let tokens = secrets.tokens;
    let operator_token = secrets.operator_token;
    run_server(serving, vec![demo], Options::default(), move |bound| {
        let url = format!("https://{bound}");
        let ca = certs.ca_cert.display().to_string();
        let tenants: Vec<serde_json::Value> = DEMO_TENANTS
            .iter()
            .zip(&tokens)
            .map(|((name, accounts), (_, token))| {
                let c = certs.client(name);
                serde_json::json!({
                    "name": name,
                    "role": "viewer",
                    "accounts": accounts,
                    "token": token,
                    "client_cert": c.map(|c| c.cert.display().to_string()),
                    "client_key": c.map(|c| c.key.display().to_string()),
                })
            })
            .collect();
        let info = serde_json::json!({
            "url": url,
            "ca_file": ca,
            "operator_token": operator_token,
            "tenants": tenants,
            "audit_dir": audit_cfg.dir.display().to_string(),
            "audit_key_file": audit_cfg.key_file.display().to_string(),
            "audit_public_key": audit_cfg.public_key_path().display().to_string(),
        });
        if let Err(e) = write_private(&dir.join("demo.json"), info.to_string().as_bytes()) {
            tracing::error!("demo.json: {e}");
        }
        let alpha = tokens.first().map(|t| t.1.as_str()).unwrap_or_default();
        let alpha_cert = certs.client("alpha");
        println!(
            "SLURM Exporter demo: a simulated cluster of {nodes} nodes and {jobs} jobs over HTTPS, refreshed every 15 s.\n\
             Tenants alpha (physics accounts) and beta (chemistry) are viewers: their own series, user names pseudonymized.\n\
             Credentials and paths: {}/demo.json\n\
             Try:\n  \
             curl -s --cacert {ca} -H 'Authorization: Bearer {alpha}' {url}/metrics | grep '^slurm_account_jobs'\n  \
             curl -s --cacert {ca} --cert {} --key {} {url}/metrics | grep -c '^slurm_'\n  \
             curl -s --cacert {ca} -H 'Authorization: Bearer {operator_token}' {url}/metrics | grep '^slurm_cluster_'\n  \
             curl -s --cacert {ca} -o /dev/null -w '%{{http_code}}\\n' {url}/metrics    # 401: no credentials\n  \
             curl -s --cacert {ca} {url}/readyz\n\
             Every request is audited; verify and read the log:\n  \
             slurm-exporter audit verify --dir {audit_dir} --public-key {audit_pub}\n  \
             slurm-exporter audit export --dir {audit_dir} --key-file {audit_key} | tail -3\n\
             Press Ctrl-C to stop.",
            dir.display(),
            alpha_cert.map(|c| c.cert.display().to_string()).unwrap_or_default(),
            alpha_cert.map(|c| c.key.display().to_string()).unwrap_or_default(),
            audit_dir = audit_cfg.dir.display(),
            audit_pub = audit_cfg.public_key_path().display(),
            audit_key = audit_cfg.key_file.display(),
        );
    })
    .await
}

/// Writes a file only its owner can read (it holds tokens).
fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path)?.write_all(data)
}
