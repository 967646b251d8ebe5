//! The TLS room: the server's rustls configuration (TLS 1.3 by default, 1.2 only when
//! configured), certificate and client-CA reload without restart, client-certificate
//! identity, and the accept loop that hands that identity to the HTTP stack.
//!
//! The configuration uses the field names of Prometheus' exporter-toolkit web config
//! (`cert_file`, `key_file`, `client_auth_type`, `client_ca_file`, `client_allowed_sans`,
//! `min_version`), so a Prometheus user can carry their knowledge over.
//!
//! Identity: a connection whose client certificate was *verified* against the client CA
//! (`VerifyClientCertIfGiven`, `RequireAndVerifyClientCert`) carries a [`PeerIdentity`] as a
//! request extension on every request. A certificate that is only requested
//! (`RequestClientCert`, `RequireAnyClientCert`) proves possession of a key, not who its
//! holder is, so no `PeerIdentity` is attached for it. `client_allowed_sans` is enforced in
//! the handshake: a certificate with no allowed SAN never reaches HTTP (deny by default, and
//! nothing is logged by the HTTP stack for a connection that never became a request).
//!
//! Every connection's requests also carry `axum::extract::ConnectInfo<SocketAddr>`.

use crate::conn::{
    watchdog, Activity, Closed, ConnectionsConfig, Refusal, RefusalHook, Refusals, Slots, Watched,
};
use arc_swap::ArcSwap;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

/// Whether and how a client certificate is asked for (Go's `tls.ClientAuthType`, as in
/// exporter-toolkit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    NoClientCert,
    /// A certificate is asked for, not required, not verified: no identity is attached.
    RequestClientCert,
    /// A certificate is required but not verified: no identity is attached.
    #[serde(alias = "RequireClientCert")]
    RequireAnyClientCert,
    /// A certificate is optional; one that is sent must chain to `client_ca_file`.
    VerifyClientCertIfGiven,
    /// A certificate is required and must chain to `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// True when a presented certificate is verified against the client CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// The lowest TLS version offered. There is no TLS 1.0 or 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "TLS12")]
    Tls12,
    #[default]
    #[serde(rename = "TLS13")]
    Tls13,
}

/// The `[tls]` section. Relative paths are resolved against the config file by
/// `crate::settings::Settings::files_mut`, with every other path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the server certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// PEM: the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Default: `VerifyClientCertIfGiven` when `client_ca_file` is set, else `NoClientCert`.
    #[serde(default)]
    pub client_auth_type: Option<ClientAuth>,
    /// PEM: the CA certificates client certificates must chain to.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// When set, a verified client certificate must carry one of these SANs (DNS name, URI,
    /// e-mail address or IP address, compared exactly) or the handshake is refused.
    #[serde(default)]
    pub client_allowed_sans: Option<Vec<String>>,
    /// `"TLS13"` (default) or `"TLS12"`.
    #[serde(default)]
    pub min_version: TlsVersion,
}

impl TlsConfig {
    /// The client authentication in force, with the default applied.
    pub fn client_auth(&self) -> ClientAuth {
        match (self.client_auth_type, &self.client_ca_file) {
            (Some(a), _) => a,
            (None, Some(_)) => ClientAuth::VerifyClientCertIfGiven,
            (None, None) => ClientAuth::NoClientCert,
        }
    }

    /// Makes relative paths relative to `base` (the config file's folder).
    /// The files [`ReloadableTls::reload`] reads: watch these for changes.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.cert_file.clone(), self.key_file.clone()];
        v.extend(self.client_ca_file.clone());
        v
    }

    /// Checks the fields against each other, without reading any file.
    pub fn validate(&self) -> Result<(), TlsError> {
        let auth = self.client_auth();
        if auth.verifies() && self.client_ca_file.is_none() {
            return Err(TlsError::Config(format!(
                "client_auth_type = {auth:?} needs client_ca_file, the CA that client certificates must chain to"
            )));
        }
        if !auth.verifies() && self.client_ca_file.is_some() {
            return Err(TlsError::Config(format!(
                "client_ca_file is set but client_auth_type = {auth:?} does not verify client certificates; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            )));
        }
        if let Some(sans) = &self.client_allowed_sans {
            if !auth.verifies() {
                return Err(TlsError::Config(format!(
                    "client_allowed_sans needs a verified client certificate, but client_auth_type = {auth:?}; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                )));
            }
            if sans.is_empty() {
                return Err(TlsError::Config(
                    "client_allowed_sans is empty, which would refuse every client certificate; list the allowed SANs or remove the key".into(),
                ));
            }
            if let Some(bad) = sans.iter().find(|s| s.trim().is_empty() || s.trim() != *s) {
                return Err(TlsError::Config(format!(
                    "client_allowed_sans: {bad:?} is empty or has surrounding spaces; SANs are compared exactly"
                )));
            }
        }
        Ok(())
    }
}

/// A TLS set-up problem: which setting or file, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("{field} {}: {msg}", path.display())]
    File {
        /// The config key that named the file (`cert_file`, `key_file`, `client_ca_file`).
        field: &'static str,
        path: PathBuf,
        msg: String,
    },
    #[error("tls: {0}")]
    Config(String),
}

fn file_err(field: &'static str, path: &Path, msg: impl Into<String>) -> TlsError {
    TlsError::File {
        field,
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Who the client is, from its verified certificate. Attached as a request extension to
/// every request of a connection whose client certificate chained to the client CA (and
/// carried an allowed SAN when `client_allowed_sans` is set); absent otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// Subject alternative names in certificate order: DNS names, URIs, e-mail addresses
    /// and IP addresses, as text.
    pub sans: Vec<String>,
    /// The subject's first common name, if any.
    pub cn: Option<String>,
    /// SHA-256 of the certificate's DER, lowercase hex without separators.
    pub fingerprint_sha256: String,
}

impl PeerIdentity {
    /// Reads the names of a DER certificate. Does not verify it: call this only on a
    /// certificate the handshake verified.
    pub fn from_der(der: &[u8]) -> Result<PeerIdentity, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut sans = Vec::new();
        let ext = cert
            .subject_alternative_name()
            .map_err(|e| format!("bad subjectAltName extension: {e}"))?;
        if let Some(ext) = ext {
            use x509_parser::extensions::GeneralName;
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                        sans.push((*s).to_owned())
                    }
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_from_bytes(b) {
                            sans.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned);
        Ok(PeerIdentity {
            sans,
            cn,
            fingerprint_sha256: fingerprint_sha256(der),
        })
    }

    /// The names to map to a principal, most specific first: the SANs, then the CN.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sans
            .iter()
            .map(String::as_str)
            .chain(self.cn.as_deref())
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// SHA-256 of DER bytes as lowercase hex, the form `openssl x509 -fingerprint -sha256`
/// prints without its colons.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(der)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The server's TLS configuration, swappable at run time. Clones share the same state.
#[derive(Clone)]
pub struct ReloadableTls {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<Loaded>,
    /// Serializes reloads so two at once cannot interleave their reads.
    reload_lock: Mutex<()>,
}

struct Loaded {
    config: TlsConfig,
    server: Arc<ServerConfig>,
    /// Attach a `PeerIdentity`: only when the client certificate was verified.
    attach_identity: bool,
    server_fingerprint: String,
}

impl std::fmt::Debug for ReloadableTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = self.inner.current.load();
        f.debug_struct("ReloadableTls")
            .field("config", &l.config)
            .field("server_fingerprint", &l.server_fingerprint)
            .finish()
    }
}

impl ReloadableTls {
    /// Reads and checks every file of `config`; any problem stops here, naming the file.
    pub fn load(config: TlsConfig) -> Result<ReloadableTls, TlsError> {
        let loaded = build(config)?;
        Ok(ReloadableTls {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(loaded),
                reload_lock: Mutex::new(()),
            }),
        })
    }

    /// Re-reads the same files (certificate rotation). On any error the configuration in
    /// force keeps serving and the error names the file at fault. New connections use the
    /// new configuration; established ones keep theirs.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = self.inner.current.load().config.clone();
        self.reload_with(config)
    }

    /// Switches to a changed `[tls]` section (config reload), with the same all-or-nothing
    /// rule as [`ReloadableTls::reload`].
    pub fn reload_with(&self, config: TlsConfig) -> Result<(), TlsError> {
        let _guard = self
            .inner
            .reload_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let loaded = build(config)?;
        tracing::info!(
            cert_file = %loaded.config.cert_file.display(),
            fingerprint = %loaded.server_fingerprint,
            "TLS configuration loaded"
        );
        self.inner.current.store(Arc::new(loaded));
        Ok(())
    }

    /// The rustls configuration new connections get.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.current.load().server.clone()
    }

    /// The `[tls]` section in force.
    pub fn config(&self) -> TlsConfig {
        self.inner.current.load().config.clone()
    }

    /// SHA-256 (hex) of the server certificate in force, for logs and self-metrics.
    pub fn server_cert_fingerprint(&self) -> String {
        self.inner.current.load().server_fingerprint.clone()
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.inner.current.load_full()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_file(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_err(field, path, format!("cannot read: {e}")))
}

fn read_certs(field: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(field, path, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(
            field,
            path,
            "contains no certificate (expected PEM blocks \"-----BEGIN CERTIFICATE-----\")",
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file("key_file", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let msg = match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "contains no private key (expected a PEM block \"-----BEGIN PRIVATE KEY-----\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\")".to_owned()
            }
            e => format!("not a valid PEM private key: {e}"),
        };
        file_err("key_file", path, msg)
    })
}

fn build(config: TlsConfig) -> Result<Loaded, TlsError> {
    config.validate()?;
    let provider = provider();
    let chain = read_certs("cert_file", &config.cert_file)?;
    let key = read_key(&config.key_file)?;
    let server_fingerprint = fingerprint_sha256(&chain[0]);
    warn_if_expired(&config.cert_file, &chain[0]);
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => file_err(
            "key_file",
            &config.key_file,
            format!(
                "does not match the certificate in {}",
                config.cert_file.display()
            ),
        ),
        rustls::Error::InvalidCertificate(e) => file_err(
            "cert_file",
            &config.cert_file,
            format!("the first certificate is not usable: {e}"),
        ),
        e => file_err(
            "key_file",
            &config.key_file,
            format!("unusable private key: {e}"),
        ),
    })?;

    let versions: &[&'static SupportedProtocolVersion] = match config.min_version {
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let auth = config.client_auth();
    let verifier = client_verifier(&config, auth, &provider)?;
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(format!("min_version: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    // HTTP/1.1 only: the scrape protocol needs nothing more, and it keeps HTTP/2's attack
    // surface (stream floods, rapid reset) out of the gateway.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded {
        config,
        server: Arc::new(server),
        attach_identity: auth.verifies(),
        server_fingerprint,
    })
}

fn warn_if_expired(path: &Path, der: &[u8]) {
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
        if !cert.validity().is_valid() {
            tracing::warn!(
                cert_file = %path.display(),
                not_before = %cert.validity().not_before,
                not_after = %cert.validity().not_after,
                "the server certificate is not valid now; clients will refuse it"
            );
        }
    }
}

fn client_verifier(
    config: &TlsConfig,
    auth: ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    match auth {
        ClientAuth::NoClientCert => Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Ok(Arc::new(UnverifiedClientCert {
                provider: provider.clone(),
                mandatory: auth == ClientAuth::RequireAnyClientCert,
            }))
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let path = config.client_ca_file.as_deref().ok_or_else(|| {
                TlsError::Config(format!("client_auth_type = {auth:?} needs client_ca_file"))
            })?;
            let mut roots = RootCertStore::empty();
            for (i, ca) in read_certs("client_ca_file", path)?.into_iter().enumerate() {
                roots.add(ca).map_err(|e| {
                    file_err(
                        "client_ca_file",
                        path,
                        format!("certificate #{} is not a usable CA: {e}", i + 1),
                    )
                })?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            let webpki = builder.build().map_err(|e| match e {
                VerifierBuilderError::NoRootAnchors => {
                    file_err("client_ca_file", path, "yields no CA certificate")
                }
                e => file_err("client_ca_file", path, e.to_string()),
            })?;
            Ok(match &config.client_allowed_sans {
                Some(allowed) => Arc::new(AllowedSans {
                    inner: webpki,
                    allowed: allowed.clone(),
                }),
                None => webpki,
            })
        }
    }
}

/// The web PKI verifier, then the SAN allow-list: a chain that verifies but names no
/// allowed SAN fails the handshake.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let id = PeerIdentity::from_der(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if id.sans.iter().any(|s| self.allowed.contains(s)) {
            Ok(verified)
        } else {
            tracing::info!(
                sans = ?id.sans,
                cn = ?id.cn,
                fingerprint = %id.fingerprint_sha256,
                "client certificate refused: no SAN is in client_allowed_sans"
            );
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: any certificate is taken, but the client
/// must still prove it holds the certificate's key (the provider checks the handshake
/// signature). The chain is not verified, so no identity is derived from it.
#[derive(Debug)]
struct UnverifiedClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl ClientCertVerifier for UnverifiedClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Limits of the accept loop; [`ConnectionsConfig`] (`[server.connections]`) sets them.
#[derive(Clone)]
pub struct ServeOptions {
    /// A handshake not finished by then is dropped.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; further connections wait in the listen backlog.
    pub max_handshakes: usize,
    /// Handshakes in progress at once from one client (IPv6: one /64); further connections
    /// from it are closed at once, so one slow client cannot take every handshake slot.
    pub max_handshakes_per_ip: usize,
    /// Open connections (handshaking or established), over all clients; further ones are
    /// closed at once.
    pub max_connections: usize,
    /// Open connections from one client (IPv6: one /64); further ones are closed at once.
    pub max_connections_per_ip: usize,
    /// A connection with no request in flight and no byte moved for this long is closed.
    pub idle_timeout: Duration,
    /// A connection whose write makes no progress for this long is closed.
    pub write_timeout: Duration,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
    /// Told about every refused connection (self-metrics, audit).
    pub on_refusal: Option<Arc<dyn RefusalHook>>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_handshakes", &self.max_handshakes)
            .field("max_handshakes_per_ip", &self.max_handshakes_per_ip)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("idle_timeout", &self.idle_timeout)
            .field("write_timeout", &self.write_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions::from(&ConnectionsConfig::default())
    }
}

impl From<&ConnectionsConfig> for ServeOptions {
    fn from(c: &ConnectionsConfig) -> Self {
        ServeOptions {
            handshake_timeout: Duration::from_secs(c.handshake_timeout_seconds),
            max_handshakes: c.max_handshakes,
            max_handshakes_per_ip: c.max_handshakes_per_client,
            max_connections: c.max,
            max_connections_per_ip: c.max_per_client,
            idle_timeout: Duration::from_secs(c.idle_timeout_seconds),
            write_timeout: Duration::from_secs(c.write_timeout_seconds),
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            on_refusal: None,
        }
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then stops accepting,
/// lets requests in flight finish (up to [`ServeOptions::shutdown_grace`]) and returns.
/// Each request carries `ConnectInfo<SocketAddr>` and, for a verified client certificate,
/// a [`PeerIdentity`].
pub async fn serve_tls(
    listener: TcpListener,
    tls: ReloadableTls,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_tls_with(listener, tls, app, shutdown, ServeOptions::default()).await
}

/// [`serve_tls`] with explicit limits.
///
/// The order per connection: the global handshake slot (waited for before `accept`), then
/// the client's connection slot and handshake slot (refused at once when taken), then the
/// handshake with its timeout, where rustls verifies any client certificate. So certificate
/// chain verification runs at most `max_handshakes_per_ip` at a time per client; the
/// per-IP *request* rate limit of the HTTP stack comes after the handshake.
pub async fn serve_tls_with(
    listener: TcpListener,
    tls: ReloadableTls,
    app: Router,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
) -> io::Result<()> {
    accept_loop(listener, Some(tls), app, shutdown, opts).await
}

/// [`serve_tls_with`] without TLS (the loopback listener when `[server.tls]` is absent): the
/// same connection caps, idle and write timeouts, and `ConnectInfo`; no handshake.
pub async fn serve_plain_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
) -> io::Result<()> {
    accept_loop(listener, None, app, shutdown, opts).await
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<ReloadableTls>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
) -> io::Result<()> {
    let global = Arc::new(Semaphore::new(opts.max_handshakes.max(1)));
    let handshakes = Slots::handshakes_per_client(opts.max_handshakes_per_ip);
    let connections = Slots::connections(opts.max_connections, opts.max_connections_per_ip);
    let refusals = Arc::new(Refusals::new(opts.on_refusal.clone()));
    let graceful = GracefulShutdown::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Wait for a handshake slot before accepting: excess connections queue in the
        // kernel's backlog instead of in our memory.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = global.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Per-connection errors (reset before accept) are the client's; running
                    // out of descriptors is ours: back off instead of spinning.
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        let slots = connections
            .try_take(peer.ip())
            .and_then(|c| handshakes.try_take(peer.ip()).map(|h| (c, h)));
        let (conn_slot, ip_slot) = match slots {
            Ok(s) => s,
            Err(reason) => {
                refusals.report(reason, peer);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let loaded = tls.as_ref().map(ReloadableTls::loaded);
        let app = app.clone();
        let watcher = graceful.watcher();
        let mut stop = stop_rx.clone();
        let refusals = refusals.clone();
        let opts = opts.clone();
        tokio::spawn(async move {
            let activity = Activity::new();
            let io = Watched::new(tcp, activity.clone());
            let Some(loaded) = loaded else {
                drop((ip_slot, permit));
                let conn = Conn {
                    peer,
                    identity: None,
                    app,
                    activity,
                };
                conn.serve(io, &opts, watcher, &refusals).await;
                drop(conn_slot);
                return;
            };
            let acceptor = TlsAcceptor::from(loaded.server.clone());
            let handshake = tokio::time::timeout(opts.handshake_timeout, acceptor.accept(io));
            let stream = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        refusals.report(Refusal::of_handshake_error(&e), peer);
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        refusals.report(Refusal::HandshakeTimeout, peer);
                        return;
                    }
                },
                _ = stop.changed() => return,
            };
            drop((ip_slot, permit));
            let identity = if loaded.attach_identity {
                match stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| PeerIdentity::from_der(c))
                {
                    None => None,
                    Some(Ok(id)) => Some(id),
                    Some(Err(e)) => {
                        // The verifier parsed this certificate already; refuse rather than
                        // serve a verified connection without its identity.
                        tracing::warn!(%peer, error = %e, "verified client certificate unreadable");
                        return;
                    }
                }
            } else {
                None
            };
            let conn = Conn {
                peer,
                identity,
                app,
                activity,
            };
            conn.serve(stream, &opts, watcher, &refusals).await;
            drop(conn_slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(opts.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing the remaining connections");
        }
    }
    Ok(())
}

/// One accepted (and, with TLS, handshaken) connection and what its requests carry.
struct Conn {
    peer: std::net::SocketAddr,
    identity: Option<PeerIdentity>,
    app: Router,
    activity: Arc<Activity>,
}

impl Conn {
    /// Serves HTTP/1.1 on `io` until the client leaves, shutdown, or the idle or write
    /// timeout; each request carries `ConnectInfo` and the identity.
    async fn serve<I>(
        self,
        io: I,
        opts: &ServeOptions,
        watcher: hyper_util::server::graceful::Watcher,
        refusals: &Refusals,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            peer,
            identity,
            app,
            activity,
        } = self;
        let requests = activity.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            if let Some(id) = &identity {
                req.extensions_mut().insert(id.clone());
            }
            let in_flight = requests.request();
            let answer = tower::ServiceExt::oneshot(app.clone(), req);
            async move {
                let r = answer.await;
                drop(in_flight);
                r
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_read_timeout);
        let conn = builder.serve_connection(TokioIo::new(io), svc);
        tokio::select! {
            r = watcher.watch(conn) => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
            why = watchdog(activity, opts.idle_timeout, opts.write_timeout) => {
                tracing::debug!(%peer, ?why, "connection closed");
                if why == Closed::WriteTimeout {
                    refusals.report(Refusal::WriteTimeout, peer);
                }
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Result<TlsConfig, String> {
        toml::from_str(&format!(
            "cert_file = \"s.pem\"\nkey_file = \"k.pem\"\n{extra}"
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn config_uses_exporter_toolkit_names_and_defaults() {
        let c = cfg("").expect("minimal config");
        assert_eq!(c.min_version, TlsVersion::Tls13);
        assert_eq!(c.client_auth(), ClientAuth::NoClientCert);
        let c = cfg("client_ca_file = \"ca.pem\"").expect("with a CA");
        assert_eq!(c.client_auth(), ClientAuth::VerifyClientCertIfGiven);
        let c = cfg(
            "client_auth_type = \"RequireAndVerifyClientCert\"\nclient_ca_file = \"ca.pem\"\n\
             client_allowed_sans = [\"spiffe://x/tenant/a\"]\nmin_version = \"TLS12\"",
        )
        .expect("full config");
        assert_eq!(c.client_auth(), ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(c.min_version, TlsVersion::Tls12);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn config_refuses_unknown_keys_and_versions() {
        assert!(cfg("cipher_suites = []").is_err());
        let e = cfg("min_version = \"TLS11\"").expect_err("TLS 1.1");
        assert!(e.contains("TLS12"), "{e}");
        assert!(cfg("client_auth_type = \"Sometimes\"").is_err());
    }

    #[test]
    fn inconsistent_client_auth_is_refused() {
        let bad = [
            "client_auth_type = \"RequireAndVerifyClientCert\"",
            "client_auth_type = \"NoClientCert\"\nclient_ca_file = \"ca.pem\"",
            "client_auth_type = \"RequireAnyClientCert\"\nclient_allowed_sans = [\"a\"]",
            "client_ca_file = \"ca.pem\"\nclient_allowed_sans = []",
            "client_ca_file = \"ca.pem\"\nclient_allowed_sans = [\" a\"]",
        ];
        for b in bad {
            let c = cfg(b).expect("parses");
            assert!(c.validate().is_err(), "{b}");
        }
    }
}
