//! Reloading the config in force without a restart: on SIGHUP, and when the config file or a
//! file it references changes.
//!
//! What reloads: tokens, OIDC issuers, introspection, tenants, policies, the pseudonym key,
//! the quota, the rate limits (changed limits start their counts afresh), and the TLS
//! certificate, key and client CA. Sources, listeners, the concurrency limit and request
//! timeout, `[server.connections]`, `[audit]`, and adding or removing `[auth]` or `[server.tls]` need a restart (the
//! last two are refused, so the gateway never silently changes who may connect).
//!
//! A reload is all or nothing: the new config is read and the new tenancy built (every file
//! checked, no network call); only then is TLS switched ([`ReloadableTls::reload_with`]
//! checks and installs in one step, the last step that can fail) and the tenancy stored.
//! A bad new config, policy, key or certificate is refused whole, logged, counted, and the
//! previous set keeps serving.
//!
//! Changes are found by polling, not inotify: every `server.reload.poll_seconds` (default 5,
//! 0 turns polling off) the SHA-256 of each watched file is compared with the set in force.
//! Polling sees Kubernetes ConfigMap updates (a symlink swapped under the file) and editors
//! that write a new file and rename it, which inotify watches on the old inode miss. A change
//! is acted on once the digests have stayed the same for one more poll ([`Debounce`]), so a
//! file caught half-written, or a certificate whose key has not arrived yet, is not tried.
//!
//! Each attempt is one [`ReloadEvent`], handed to the gateway metrics
//! (`slurm_exporter_gateway_config_reloads_total`, `..._config_info{digest}`) and to every
//! hook given to [`Reloader::on_reload`] (the audit log).

use crate::metrics::GatewayMetrics;
pub use crate::settings::sections::ReloadConfig;
use crate::settings::Settings;
use crate::state::{Tenancy, TenancyHandle};
use crate::tls::ReloadableTls;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Sighup,
    FileChange,
}

impl Trigger {
    /// The `trigger` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Sighup => "sighup",
            Trigger::FileChange => "file_change",
        }
    }
}

/// One reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadEvent {
    pub trigger: Trigger,
    /// Whether the new set is in force now.
    pub ok: bool,
    /// SHA-256 (hex) over the config file and every file it references that reloads, as
    /// read for this attempt ([`Digests::combined`]); in force only when `ok`.
    pub config_digest: String,
    /// Why the new set was refused.
    pub error: Option<String>,
    /// Watched files whose content differs from the previous attempt (or start-up).
    pub changed_files: Vec<PathBuf>,
}

/// Called after every reload attempt.
pub type ReloadHook = Arc<dyn Fn(&ReloadEvent) + Send + Sync>;

// ---------------------------------------------------------------------------------------
// Digests

/// What one watched file holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// SHA-256 of the content.
    Content([u8; 32]),
    Missing,
    /// Any other read error, by kind (a permission change is a change too).
    Unreadable(String),
}

/// The state of every watched file, by path (sorted, so the combined digest is stable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests(BTreeMap<PathBuf, FileState>);

impl Digests {
    /// Reads and hashes `paths` (a path listed twice is read once).
    pub fn read<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Digests {
        let mut map = BTreeMap::new();
        for p in paths {
            let p = p.as_ref();
            if map.contains_key(p) {
                continue;
            }
            let state = match std::fs::read(p) {
                Ok(bytes) => FileState::Content(Sha256::digest(&bytes).into()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileState::Missing,
                Err(e) => FileState::Unreadable(format!("{:?}", e.kind())),
            };
            map.insert(p.to_path_buf(), state);
        }
        Digests(map)
    }

    /// SHA-256 (hex) over every path and its state, in path order.
    pub fn combined(&self) -> String {
        let mut h = Sha256::new();
        for (path, state) in &self.0 {
            h.update(path.as_os_str().as_encoded_bytes());
            h.update([0]);
            match state {
                FileState::Content(d) => {
                    h.update(b"c");
                    h.update(d);
                }
                FileState::Missing => h.update(b"m"),
                FileState::Unreadable(kind) => {
                    h.update(b"u");
                    h.update(kind.as_bytes());
                }
            }
            h.update([b'\n']);
        }
        h.finalize()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }

    /// Paths whose state differs between `self` and `new`, or that only one of them watches.
    pub fn changed(&self, new: &Digests) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = new
            .0
            .iter()
            .filter(|(p, s)| self.0.get(*p) != Some(*s))
            .map(|(p, _)| p.clone())
            .collect();
        out.extend(self.0.keys().filter(|p| !new.0.contains_key(*p)).cloned());
        out.sort();
        out
    }
}

/// Decides when polled digests call for a reload: once they differ from the set in force
/// and a second poll found them unchanged.
#[derive(Debug, Clone)]
pub struct Debounce {
    settled: Digests,
    pending: Option<Digests>,
}

impl Debounce {
    pub fn new(settled: Digests) -> Self {
        Debounce {
            settled,
            pending: None,
        }
    }

    /// The digests of the last attempt (or start-up).
    pub fn settled(&self) -> &Digests {
        &self.settled
    }

    /// One poll's digests; `true`: reload now.
    pub fn observe(&mut self, now: Digests) -> bool {
        if now == self.settled {
            // Changed back before it settled: nothing to do.
            self.pending = None;
            return false;
        }
        if self.pending.as_ref() == Some(&now) {
            self.pending = None;
            return true;
        }
        self.pending = Some(now);
        false
    }

    /// After an attempt, successful or not: its digests are the new reference, so a refused
    /// config is not retried every poll, only when it changes again.
    pub fn settle(&mut self, digests: Digests) {
        self.settled = digests;
        self.pending = None;
    }
}

/// The files a reload of `cfg` reads, the config file first: watch these.
pub fn watched_files(config_path: &Path, cfg: &Settings) -> Vec<PathBuf> {
    let mut v = vec![config_path.to_path_buf()];
    v.extend(cfg.reloaded_files());
    v
}

async fn read_digests(files: &[PathBuf]) -> Digests {
    let owned = files.to_vec();
    // Off the async workers: a slow or hung file system must not stall requests.
    match tokio::task::spawn_blocking(move || Digests::read(&owned)).await {
        Ok(d) => d,
        Err(_) => Digests::read(files),
    }
}

// ---------------------------------------------------------------------------------------
// The reloader

/// Watches and reloads; build it with the handles to swap, then `tokio::spawn(r.run())`.
pub struct Reloader {
    config_path: Option<PathBuf>,
    tls: Option<ReloadableTls>,
    tenancy: Option<TenancyHandle>,
    metrics: Arc<GatewayMetrics>,
    hooks: Vec<ReloadHook>,
    /// The files of the latest config that parsed (a refused one too: its new references
    /// are watched, so creating a missing file triggers the next attempt).
    files: Vec<PathBuf>,
    poll: ReloadConfig,
    debounce: Debounce,
}

impl Reloader {
    /// Without a config file (the demo) only the TLS files are watched and reloaded.
    pub fn new(config_path: Option<PathBuf>, metrics: Arc<GatewayMetrics>) -> Self {
        Reloader {
            config_path,
            tls: None,
            tenancy: None,
            metrics,
            hooks: Vec::new(),
            files: Vec::new(),
            poll: ReloadConfig::default(),
            debounce: Debounce::new(Digests::default()),
        }
    }

    /// The TLS configuration to switch (the one the listener serves).
    pub fn tls(mut self, tls: Option<ReloadableTls>) -> Self {
        self.tls = tls;
        self
    }

    /// The tenancy to swap. The metrics learn its tenants now, before the first request.
    pub fn tenancy(mut self, tenancy: Option<TenancyHandle>) -> Self {
        if let Some(h) = &tenancy {
            self.metrics.set_tenants(tenant_names(h));
        }
        self.tenancy = tenancy;
        self
    }

    /// Calls `hook` after every attempt, after the metrics.
    pub fn on_reload(mut self, hook: ReloadHook) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Takes the files as they are now as the set in force, then reloads on SIGHUP and on
    /// settled file changes, forever.
    pub async fn run(mut self) {
        self.start().await;
        let mut hup = sighup();
        loop {
            let poll =
                (self.poll.poll_seconds > 0).then(|| Duration::from_secs(self.poll.poll_seconds));
            tokio::select! {
                _ = next_hup(&mut hup) => {
                    self.reload(Trigger::Sighup).await;
                }
                _ = sleep_or_never(poll) => {
                    let now = read_digests(&self.files).await;
                    if self.debounce.observe(now) {
                        self.reload(Trigger::FileChange).await;
                    }
                }
            }
        }
    }

    /// The baseline: the files the config in force references, their digests, the poll
    /// interval. Start-up loaded the same files a moment ago.
    pub async fn start(&mut self) {
        let cfg = match &self.config_path {
            Some(p) => match Settings::load(p) {
                Ok(cfg) => Some(cfg),
                Err(e) => {
                    tracing::warn!("config reload: cannot read the config to watch it: {e}");
                    None
                }
            },
            None => None,
        };
        self.files = self.files_of(cfg.as_ref());
        if let Some(c) = &cfg {
            self.poll = c.server.reload;
        }
        let digests = read_digests(&self.files).await;
        self.metrics.config_in_force(&digests.combined());
        self.debounce.settle(digests);
    }

    /// One attempt, now: read, build, check, then install all or nothing.
    pub async fn reload(&mut self, trigger: Trigger) -> ReloadEvent {
        let loaded = self
            .config_path
            .as_ref()
            .map(|p| Settings::load(p).map_err(|e| e.to_string()));
        if let Some(Ok(cfg)) = &loaded {
            self.files = self.files_of(Some(cfg));
        } else if self.files.is_empty() {
            self.files = self.files_of(None);
        }
        let digests = read_digests(&self.files).await;
        let changed_files = self.debounce.settled().changed(&digests);
        let config_digest = digests.combined();
        self.debounce.settle(digests);
        let result = match loaded {
            Some(Err(e)) => Err(e),
            Some(Ok(cfg)) => self.install(Some(&cfg)).await.map(|()| Some(cfg)),
            None => self.install(None).await.map(|()| None),
        };
        let ev = match result {
            Ok(cfg) => {
                if let Some(cfg) = cfg {
                    self.poll = cfg.server.reload;
                }
                if let Some(h) = &self.tenancy {
                    self.metrics.set_tenants(tenant_names(h));
                }
                tracing::info!(
                    trigger = trigger.as_str(),
                    digest = %config_digest,
                    changed = ?changed_files,
                    "config reloaded"
                );
                ReloadEvent {
                    trigger,
                    ok: true,
                    config_digest,
                    error: None,
                    changed_files,
                }
            }
            Err(e) => {
                tracing::error!(
                    trigger = trigger.as_str(),
                    digest = %config_digest,
                    changed = ?changed_files,
                    "config reload refused, still serving the previous config: {e}"
                );
                ReloadEvent {
                    trigger,
                    ok: false,
                    config_digest,
                    error: Some(e),
                    changed_files,
                }
            }
        };
        self.metrics
            .reload(ev.trigger.as_str(), ev.ok, &ev.config_digest);
        for hook in &self.hooks {
            hook(&ev);
        }
        ev
    }

    /// Builds everything that can fail first; installs only when all of it is good.
    async fn install(&self, cfg: Option<&Settings>) -> Result<(), String> {
        let tenancy =
            match (&self.tenancy, cfg) {
                (Some(_), Some(cfg)) => Some(Tenancy::from_settings(cfg).await?.ok_or(
                    "the new config has no [auth]: removing authentication needs a restart",
                )?),
                (None, Some(cfg)) if cfg.auth.is_some() => {
                    return Err(
                        "the new config adds [auth]: adding authentication needs a restart".into(),
                    )
                }
                _ => None,
            };
        let tls =
            match (&self.tls, cfg) {
                (Some(_), Some(cfg)) => Some(cfg.server.tls.clone().ok_or(
                    "the new config has no [server.tls]: turning TLS off needs a restart",
                )?),
                // No config file: the same certificate files, read again.
                (Some(tls), None) => Some(tls.config()),
                (None, Some(cfg)) if cfg.server.tls.is_some() => {
                    return Err(
                        "the new config adds [server.tls]: turning TLS on needs a restart".into(),
                    )
                }
                _ => None,
            };
        if let (Some(handle), Some(config)) = (&self.tls, tls) {
            handle
                .reload_with(config)
                .map_err(|e| format!("server.tls: {e}"))?;
        }
        // Cannot fail: the tenancy was built and checked above.
        if let (Some(handle), Some(t)) = (&self.tenancy, tenancy) {
            handle.store(t);
        }
        Ok(())
    }

    fn files_of(&self, cfg: Option<&Settings>) -> Vec<PathBuf> {
        match (&self.config_path, cfg) {
            (Some(p), Some(cfg)) => watched_files(p, cfg),
            (p, _) => p
                .iter()
                .cloned()
                .chain(self.tls.iter().flat_map(|t| t.config().files()))
                .collect(),
        }
    }
}

fn tenant_names(h: &TenancyHandle) -> Vec<String> {
    h.load()
        .scopes
        .keys()
        .map(|t| t.as_str().to_owned())
        .collect()
}

#[cfg(unix)]
type Hup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hup = Option<()>;

fn sighup() -> Hup {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(
                    "SIGHUP cannot be caught ({e}); reloads come from file changes only"
                );
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

async fn next_hup(hup: &mut Hup) {
    #[cfg(unix)]
    if let Some(s) = hup {
        if s.recv().await.is_some() {
            return;
        }
    }
    let _ = hup;
    std::future::pending::<()>().await
}

async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::write(p, s).expect("write");
    }

    #[test]
    fn digests_see_content_missing_files_and_are_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        write(&a, "one");
        let d1 = Digests::read([&a, &b, &a]);
        assert_eq!(d1.0.len(), 2, "a path listed twice is read once");
        assert_eq!(d1.0.get(&b), Some(&FileState::Missing));
        // Order of the list does not matter.
        assert_eq!(d1.combined(), Digests::read([&b, &a]).combined());
        assert_eq!(d1.combined().len(), 64);
        write(&b, "two");
        let d2 = Digests::read([&a, &b]);
        assert_ne!(d1.combined(), d2.combined());
        assert_eq!(d1.changed(&d2), vec![b.clone()]);
        // The same bytes written again are no change (an editor saving without edits).
        write(&a, "one");
        assert_eq!(Digests::read([&a, &b]), d2);
        // A file no longer watched is a change.
        assert_eq!(d2.changed(&Digests::read([&a])), vec![b]);
    }

    #[test]
    fn a_symlink_swap_is_a_change() {
        // How a Kubernetes ConfigMap volume updates: `..data` is repointed at a new folder.
        let dir = tempfile::tempdir().expect("tempdir");
        let v1 = dir.path().join("v1");
        let v2 = dir.path().join("v2");
        std::fs::create_dir(&v1).expect("mkdir");
        std::fs::create_dir(&v2).expect("mkdir");
        write(&v1.join("policy.csv"), "p, viewer, *, metrics, read\n");
        write(&v2.join("policy.csv"), "p, admin, *, metrics, read\n");
        let data = dir.path().join("..data");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&v1, &data).expect("symlink");
            let file = data.join("policy.csv");
            let before = Digests::read([&file]);
            let tmp = dir.path().join("..data_tmp");
            std::os::unix::fs::symlink(&v2, &tmp).expect("symlink");
            std::fs::rename(&tmp, &data).expect("swap");
            assert_eq!(before.changed(&Digests::read([&file])), vec![file]);
        }
    }

    #[test]
    fn debounce_waits_for_one_stable_poll() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("config.toml");
        write(&f, "v1");
        let mut d = Debounce::new(Digests::read([&f]));
        assert!(!d.observe(Digests::read([&f])), "no change");
        write(&f, "v2-half");
        assert!(
            !d.observe(Digests::read([&f])),
            "first sight of a change waits"
        );
        write(&f, "v2");
        assert!(
            !d.observe(Digests::read([&f])),
            "still changing: wait again"
        );
        assert!(
            d.observe(Digests::read([&f])),
            "stable for one poll: reload"
        );
        d.settle(Digests::read([&f]));
        assert!(!d.observe(Digests::read([&f])), "settled");
        assert!(!d.observe(Digests::read([&f])));
        // Changed and changed back before it settled: nothing to do.
        write(&f, "v3");
        assert!(!d.observe(Digests::read([&f])));
        write(&f, "v2");
        assert!(!d.observe(Digests::read([&f])));
        assert!(!d.observe(Digests::read([&f])));
        // A refused attempt settles too: the same broken bytes are not retried every poll.
        write(&f, "broken");
        assert!(!d.observe(Digests::read([&f])));
        assert!(d.observe(Digests::read([&f])));
        d.settle(Digests::read([&f]));
        assert!(!d.observe(Digests::read([&f])));
    }

    #[test]
    fn reload_config_defaults_and_refuses_unknown_keys() {
        assert_eq!(
            toml::from_str::<ReloadConfig>("").expect("defaults"),
            ReloadConfig { poll_seconds: 5 }
        );
        assert_eq!(
            toml::from_str::<ReloadConfig>("poll_seconds = 0").expect("off"),
            ReloadConfig { poll_seconds: 0 }
        );
        assert!(toml::from_str::<ReloadConfig>("poll = 1").is_err());
    }

    #[test]
    fn watched_files_are_the_config_and_what_it_references() {
        let cfg = Settings::parse(
            "[source]\nkind = \"sim\"\n[policies]\nmodel = \"/p/model.conf\"\npolicy = \"/p/policy.csv\"\n[pii]\nkey_file = \"/k/pii.key\"\n[server.tls]\ncert_file = \"/t/c.pem\"\nkey_file = \"/t/k.pem\"\nclient_ca_file = \"/t/ca.pem\"\n",
        )
        .expect("config");
        let files = watched_files(Path::new("/etc/x.toml"), &cfg);
        let names: Vec<&str> = files.iter().filter_map(|p| p.to_str()).collect();
        assert_eq!(
            names,
            [
                "/etc/x.toml",
                "/t/c.pem",
                "/t/k.pem",
                "/t/ca.pem",
                "/p/model.conf",
                "/p/policy.csv",
                "/k/pii.key"
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_reload_changes_nothing_and_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("config.toml");
        write(&cfg, "[source]\nkind = \"sim\"\n");
        let metrics = Arc::new(GatewayMetrics::new());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut r = Reloader::new(Some(cfg.clone()), metrics.clone()).on_reload(Arc::new(
            move |ev: &ReloadEvent| {
                s2.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(ev.clone())
            },
        ));
        r.start().await;
        let first = Digests::read([&cfg]).combined();
        assert!(metrics.encode().contains(&first));

        write(
            &cfg,
            "[source]\nkind = \"sim\"\n[server.reload]\npoll_seconds = 1\n",
        );
        let ev = r.reload(Trigger::FileChange).await;
        assert!(ev.ok, "{ev:?}");
        assert_eq!(ev.changed_files, vec![cfg.clone()]);
        assert_eq!(r.poll.poll_seconds, 1, "the poll interval reloads too");
        let second = ev.config_digest.clone();

        // Adding authentication to a gateway started without it is refused whole.
        write(
            &cfg,
            "[source]\nkind = \"sim\"\n[auth]\n[policies]\nmodel = \"m\"\npolicy = \"p\"\n",
        );
        let ev = r.reload(Trigger::Sighup).await;
        assert!(!ev.ok);
        assert!(
            ev.error.as_deref().is_some_and(|e| e.contains("restart")),
            "{ev:?}"
        );
        write(&cfg, "[source\n");
        let ev = r.reload(Trigger::Sighup).await;
        assert!(!ev.ok, "a config that does not parse is refused");
        let text = metrics.encode();
        assert!(text.contains(&second) && !text.contains(&first), "{text}");
        assert!(
            text.contains(r#"{trigger="sighup",result="failure"} 2"#),
            "{text}"
        );
        assert_eq!(seen.lock().unwrap_or_else(|e| e.into_inner()).len(), 3);
    }
}
