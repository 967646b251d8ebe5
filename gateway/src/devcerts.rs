//! Development certificates for the demo and the tests: a throw-away CA, a server
//! certificate for 127.0.0.1, ::1 and localhost, and one client certificate per tenant whose
//! identity is `URI:spiffe://slurm-exporter/tenant/<name>` (CN = the tenant's name).
//!
//! Never for production and never used by `deploy/`: the CA's key is not even written to
//! disk, so nothing more can be signed with it once `generate` returns.

use crate::policy::tenancy::TenantId;
use crate::tls::{ClientAuth, TlsConfig, TlsVersion};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The URI SAN prefix of the tenants' client certificates.
pub const TENANT_URI_PREFIX: &str = "spiffe://slurm-exporter/tenant/";

/// How long the dev certificates are valid.
const VALIDITY_DAYS: i64 = 365;

/// The client-certificate identity (URI SAN) of a tenant.
pub fn tenant_uri(tenant: &str) -> String {
    format!("{TENANT_URI_PREFIX}{tenant}")
}

/// Absolute paths of what [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCerts {
    pub dir: PathBuf,
    /// The dev CA's certificate: clients trust it for the server, the server for clients.
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub clients: Vec<ClientCert>,
}

/// One tenant's client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub tenant: String,
    /// The certificate's URI SAN, `spiffe://slurm-exporter/tenant/<tenant>`.
    pub uri: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DevCerts {
    pub fn client(&self, tenant: &str) -> Option<&ClientCert> {
        self.clients.iter().find(|c| c.tenant == tenant)
    }

    /// A `[tls]` section serving the dev server certificate and verifying client
    /// certificates against the dev CA with `client_auth`.
    pub fn tls_config(&self, client_auth: ClientAuth) -> TlsConfig {
        let verifies = client_auth.verifies();
        TlsConfig {
            cert_file: self.server_cert.clone(),
            key_file: self.server_key.clone(),
            client_auth_type: Some(client_auth),
            client_ca_file: verifies.then(|| self.ca_cert.clone()),
            client_allowed_sans: None,
            min_version: TlsVersion::Tls13,
        }
    }
}

/// Makes a new dev CA, a server certificate and one client certificate per tenant in
/// `out_dir` (created if missing): `ca.pem`, `server.pem`, `server-key.pem`,
/// `client-<tenant>.pem`, `client-<tenant>-key.pem`. Keys are written with mode 0600.
/// Existing files of those names are replaced.
pub fn generate(out_dir: &Path, tenants: &[&str]) -> Result<DevCerts, String> {
    let tenants = tenants
        .iter()
        .map(|t| TenantId::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("{}: cannot create: {e}", out_dir.display()))?;
    let dir = std::fs::canonicalize(out_dir)
        .map_err(|e| format!("{}: cannot resolve: {e}", out_dir.display()))?;
    let rc = |what: &str, e: rcgen::Error| format!("dev certificates: {what}: {e}");

    let now = OffsetDateTime::now_utc();
    let validity = |p: &mut CertificateParams| {
        // Backdated an hour for clocks a little behind.
        p.not_before = now - Duration::hours(1);
        p.not_after = now + Duration::days(VALIDITY_DAYS);
    };

    let mut ca = CertificateParams::default();
    ca.distinguished_name = dn("SLURM Exporter dev CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca);
    let ca_key = KeyPair::generate().map_err(|e| rc("CA key", e))?;
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| rc("CA", e))?;
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(|e| rc("server names", e))?;
    server.distinguished_name = dn("localhost");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    validity(&mut server);
    let server_key = KeyPair::generate().map_err(|e| rc("server key", e))?;
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .map_err(|e| rc("server", e))?;

    let out = DevCerts {
        dir: dir.clone(),
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
        clients: Vec::new(),
    };
    write_file(&out.ca_cert, ca_cert.pem().as_bytes(), false)?;
    write_file(&out.server_cert, server_cert.pem().as_bytes(), false)?;
    write_file(&out.server_key, server_key.serialize_pem().as_bytes(), true)?;

    let mut out = out;
    for t in &tenants {
        let name = t.as_str();
        let uri = tenant_uri(name);
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(name);
        p.subject_alt_names = vec![SanType::URI(
            uri.clone().try_into().map_err(|e| rc("tenant URI", e))?,
        )];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        validity(&mut p);
        let key = KeyPair::generate().map_err(|e| rc("client key", e))?;
        let cert = p
            .signed_by(&key, &issuer)
            .map_err(|e| rc(&format!("client {name}"), e))?;
        let c = ClientCert {
            tenant: name.to_owned(),
            uri,
            cert: dir.join(format!("client-{name}.pem")),
            key: dir.join(format!("client-{name}-key.pem")),
        };
        write_file(&c.cert, cert.pem().as_bytes(), false)?;
        write_file(&c.key, key.serialize_pem().as_bytes(), true)?;
        out.clients.push(c);
    }
    Ok(out)
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        "SLURM Exporter (development only)",
    );
    dn.push(DnType::CommonName, cn);
    dn
}

/// Writes `bytes`; a secret is 0600 before any byte of it lands, even when replacing a
/// file that had wider permissions.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: cannot write: {e}", path.display());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(if secret { 0o600 } else { 0o644 });
        let f = opts.open(path).map_err(err)?;
        if secret {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(err)?;
        }
        write_all(f, bytes).map_err(err)
    }
    #[cfg(not(unix))]
    {
        let _ = secret;
        write_all(opts.open(path).map_err(err)?, bytes).map_err(err)
    }
}

fn write_all(mut f: std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::PeerIdentity;

    #[test]
    fn tenant_names_are_checked_before_becoming_file_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["../x", "a/b", "", "A"] {
            assert!(generate(dir.path(), &[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_certificates_carry_the_tenant_identity_and_keys_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = generate(&dir.path().join("certs"), &["alpha", "beta"]).expect("generate");
        assert!(certs.ca_cert.is_absolute());
        let beta = certs.client("beta").expect("beta");
        let pem = std::fs::read(&beta.cert).expect("read");
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(&pem)
            .map(|c: rustls_pki_types::CertificateDer<'static>| c)
            .expect("pem");
        let id = PeerIdentity::from_der(&der).expect("parse");
        assert_eq!(
            id.sans,
            vec!["spiffe://slurm-exporter/tenant/beta".to_owned()]
        );
        assert_eq!(id.cn.as_deref(), Some("beta"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in [&certs.server_key, &beta.key] {
                let mode = std::fs::metadata(key).expect("stat").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", key.display());
            }
        }
        let server = std::fs::read(&certs.server_cert).expect("read");
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(&server)
            .map(|c: rustls_pki_types::CertificateDer<'static>| c)
            .expect("pem");
        let id = PeerIdentity::from_der(&der).expect("parse");
        assert_eq!(id.sans, vec!["localhost", "127.0.0.1", "::1"]);
    }
}
