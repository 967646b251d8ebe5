//! `slurm-exporter`: parse the command line, load the config, run, exit with one clear line
//! on failure.

use clap::{CommandFactory, Parser, Subcommand};
use collector::store::Format;
use gateway::settings::{ReplaySection, Settings, SimSection, SourceConfig, SourceKind};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "slurm-exporter",
    version,
    about = "Prometheus exporter for Slurm clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Poll Slurm in the background and serve /metrics, /healthz and /readyz.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Poll once, print the exposition on stdout and exit.
    Collect {
        /// Required for now: the exporter only collects once from the command line.
        #[arg(long)]
        once: bool,
        /// Overrides `source.kind` of the config; `sim` and `replay` need no config.
        #[arg(long, value_enum)]
        source: Option<SourceKind>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = SimSection::DEFAULT.nodes)]
        sim_nodes: usize,
        #[arg(long, default_value_t = SimSection::DEFAULT.jobs)]
        sim_jobs: usize,
        #[arg(long, default_value_t = SimSection::DEFAULT.seed)]
        seed: u64,
        #[arg(long)]
        replay_dir: Option<PathBuf>,
        /// Fixed "now" (epoch seconds) for replayed data, for reproducible output.
        #[arg(long)]
        now: Option<u64>,
        /// Include per-job series.
        #[arg(long)]
        per_job: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: OutFormat,
    },
    /// Serve a simulated cluster on loopback and print what to try.
    Demo {
        #[arg(long, default_value = gateway::settings::DEFAULT_LISTEN)]
        listen: SocketAddr,
        #[arg(long, default_value_t = SimSection::DEFAULT.nodes)]
        nodes: usize,
        #[arg(long, default_value_t = SimSection::DEFAULT.jobs)]
        jobs: usize,
        /// Where to write demo.json (the URL and, later, credentials) for scripts.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Make development certificates: a CA, a server certificate for 127.0.0.1/localhost and
    /// one client certificate per tenant (never for production; see certs-dev/README.md).
    DevCerts {
        #[arg(long)]
        out: PathBuf,
        /// Tenants to make client certificates for (repeatable).
        #[arg(long = "tenant", default_values_t = ["alpha".to_owned(), "beta".to_owned()])]
        tenants: Vec<String>,
    },
    /// API tokens for scrapers.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit log, for auditors: verify, export, checkpoints, rotate-key.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Personal data: re-identify a pseudonym through a running gateway (authorized and
    /// audited there).
    Pii {
        #[command(subcommand)]
        command: PiiCommand,
    },
    /// Chargeback: priced usage by billing period from the `[chargeback]` store.
    Usage {
        #[command(subcommand)]
        command: gateway::usage_cli::UsageCommand,
    },
    /// Validate a config file and exit.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Write the man page and shell completions (for packagers).
    #[command(hide = true)]
    GenerateAssets {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Exit 0 when the log is intact, else name the first bad record and why.
    Verify {
        #[arg(long)]
        dir: PathBuf,
        /// The log's Ed25519 public key (PEM); without it, consistency but not authorship.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// A checkpoint published earlier (JSON line): detects a deleted tail.
        #[arg(long)]
        published: Option<PathBuf>,
        /// With the keyring every record is also decrypted and authenticated.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// A witness (URL, or a file of checkpoint lines): the log must hold its newest.
        #[arg(long)]
        witness: Option<String>,
        /// CA certificate(s) to trust for an https witness (PEM).
        #[arg(long)]
        witness_ca: Option<PathBuf>,
    },
    /// Hold the log's checkpoints for auditors (see `gateway::witness`).
    Witness {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        public_key: PathBuf,
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Publishers must send this bearer token.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Decrypted records as JSON lines.
    Export {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        key_file: PathBuf,
        /// RFC 3339 time or epoch seconds.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Every signed checkpoint, as JSON lines.
    Checkpoints {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Add a new active encryption key to the keyring.
    RotateKey {
        #[arg(long)]
        key_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new random token once, and the config entry that stores only its hash.
    New {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "viewer")]
        role: String,
    },
}

#[derive(Subcommand)]
enum PiiCommand {
    /// Print the user name behind a pseudonym (`u1_...`) of one tenant.
    Lookup {
        /// The gateway, e.g. https://exporter.example.org:9341
        #[arg(long)]
        url: String,
        /// CA certificate(s) to trust for the gateway (PEM).
        #[arg(long)]
        cacert: Option<PathBuf>,
        /// A file holding the bearer token (API token or OIDC access token).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Client certificate (PEM) for mTLS, with --key.
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// The pseudonym's tenant (default: your own).
        #[arg(long)]
        tenant: Option<String>,
        pseudonym: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutFormat {
    Text,
    Openmetrics,
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn collect_config(
    source: Option<SourceKind>,
    config: Option<PathBuf>,
    sim: SimSection,
    replay_dir: Option<PathBuf>,
    now: Option<u64>,
    per_job: bool,
) -> Result<Settings, String> {
    let mut cfg = match &config {
        Some(p) => Settings::load(p).map_err(|e| e.to_string())?,
        None => {
            let kind = source.ok_or("collect: give --source sim|replay, or --config FILE")?;
            if matches!(kind, SourceKind::Rest | SourceKind::Cli) {
                return Err(format!(
                    "collect --source {kind:?}: needs --config FILE saying how to reach Slurm"
                )
                .to_lowercase());
            }
            Settings::parse("[source]\nkind = \"sim\"\n").map_err(|e| e.to_string())?
        }
    };
    if source.is_some() && cfg.source.is_none() {
        return Err(
            "--source applies to a config with a single [source], not to [[clusters]]".into(),
        );
    }
    let Some(s) = cfg.source.as_mut() else {
        return Ok(cfg);
    };
    if let Some(kind) = source {
        s.kind = kind;
    }
    let s: &mut SourceConfig = s;
    match s.kind {
        // Command-line sizes win unless the config file gives its own [source.sim].
        SourceKind::Sim if config.is_none() || s.sim.is_none() => s.sim = Some(sim),
        SourceKind::Replay => {
            if let Some(dir) = replay_dir {
                s.replay = Some(ReplaySection {
                    dir,
                    now_epoch: now,
                });
            }
            if s.replay.is_none() {
                return Err("collect --source replay: give --replay-dir DIR".into());
            }
        }
        SourceKind::Rest if s.rest.is_none() => {
            return Err("the config has no [source.rest] section".into())
        }
        _ => {}
    }
    cfg.collectors.per_job |= per_job;
    Ok(cfg)
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { config } => {
            init_logs("info");
            let cfg = Settings::load(&config).map_err(|e| e.to_string())?;
            gateway::app::serve(cfg, config).await
        }
        Command::Collect {
            once,
            source,
            config,
            sim_nodes,
            sim_jobs,
            seed,
            replay_dir,
            now,
            per_job,
            format,
        } => {
            // A failure is reported once, as the one line main() prints; RUST_LOG shows more.
            init_logs("off");
            if !once {
                return Err("collect: pass --once (continuous collection is `serve`)".into());
            }
            let sim = SimSection {
                nodes: sim_nodes,
                jobs: sim_jobs,
                seed,
            };
            let cfg = collect_config(source, config, sim, replay_dir, now, per_job)?;
            let format = match format {
                OutFormat::Text => Format::Text,
                OutFormat::Openmetrics => Format::OpenMetrics,
            };
            let out = gateway::app::collect_once(&cfg, format).await?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&out)
                .and_then(|_| stdout.flush())
                .map_err(|e| format!("writing to stdout: {e}"))
        }
        Command::Demo {
            listen,
            nodes,
            jobs,
            state_dir,
        } => {
            init_logs("info");
            gateway::app::demo(listen, nodes, jobs, state_dir).await
        }
        Command::DevCerts { out, tenants } => {
            let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
            let dc = gateway::devcerts::generate(&out, &names)?;
            println!("CA:     {}", dc.ca_cert.display());
            println!(
                "server: {} (key {})",
                dc.server_cert.display(),
                dc.server_key.display()
            );
            for c in &dc.clients {
                println!(
                    "client {}: {} (key {}, SAN {})",
                    c.tenant,
                    c.cert.display(),
                    c.key.display(),
                    c.uri
                );
            }
            Ok(())
        }
        Command::Token {
            command: TokenCommand::New { tenant, role },
        } => {
            let tenant = gateway::tenancy::TenantId::parse(&tenant)?;
            let role = gateway::tenancy::Role::parse(&role)?;
            let (token, entry) = gateway::layer::authn::token::new_token(tenant, role)
                .map_err(|e| format!("token new: {e}"))?;
            let toml = toml::to_string(&entry).map_err(|e| format!("token new: {e}"))?;
            println!("{token}");
            eprintln!(
                "The token above is shown once: give it to the scraper. Add this to the config \
                 (it holds only the token's SHA-256):\n\n[[auth.api_tokens]]\n{toml}"
            );
            Ok(())
        }
        Command::Pii {
            command:
                PiiCommand::Lookup {
                    url,
                    cacert,
                    token_file,
                    cert,
                    key,
                    tenant,
                    pseudonym,
                },
        } => {
            let cert = cert.as_deref().zip(key.as_deref());
            let value = gateway::pii_cli::lookup(gateway::pii_cli::LookupArgs {
                url: &url,
                ca_file: cacert.as_deref(),
                token_file: token_file.as_deref(),
                cert,
                tenant: tenant.as_deref(),
                pseudonym: &pseudonym,
            })
            .await?;
            println!("{value}");
            Ok(())
        }
        Command::Audit { command } => match command {
            AuditCommand::Verify {
                dir,
                public_key,
                published,
                key_file,
                witness,
                witness_ca,
            } => {
                let summary = gateway::audit_cli::verify(
                    &dir,
                    public_key.as_deref(),
                    published.as_deref(),
                    key_file.as_deref(),
                    witness.as_deref(),
                    witness_ca.as_deref(),
                )
                .await?;
                print!("{summary}");
                Ok(())
            }
            AuditCommand::Export {
                dir,
                key_file,
                from,
                to,
                tenant,
            } => gateway::audit_cli::export(
                &dir,
                &key_file,
                from.as_deref(),
                to.as_deref(),
                tenant.as_deref(),
            ),
            AuditCommand::Checkpoints { dir } => gateway::audit_cli::checkpoints(&dir),
            AuditCommand::Witness {
                listen,
                dir,
                public_key,
                tls_cert,
                tls_key,
                token_file,
            } => {
                init_logs("info");
                gateway::witness::run(gateway::witness::WitnessArgs {
                    listen,
                    dir,
                    public_key,
                    tls_cert,
                    tls_key,
                    token_file,
                })
                .await
            }
            AuditCommand::RotateKey { key_file } => {
                println!("{}", gateway::audit_cli::rotate_key(&key_file)?);
                Ok(())
            }
        },
        Command::Usage { command } => gateway::usage_cli::run(command),
        Command::CheckConfig { config } => {
            Settings::load(&config).map_err(|e| e.to_string())?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::GenerateAssets { out } => gateway::assets::write(Cli::command(), &out)
            .map_err(|e| format!("{}: {e}", out.display())),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slurm-exporter: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slurm-exporter: {e}");
            ExitCode::FAILURE
        }
    }
}
