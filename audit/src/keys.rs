//! Key material: the keyring of AES-256 data keys and the Ed25519 signing key.
//!
//! Two files, on purpose. The keyring decrypts (an auditor who exports needs it); the signing
//! key vouches for the log (only the gateway holds it). An auditor who can read the log must
//! not be able to forge checkpoints, and a verifier needs neither: the public key suffices.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::format::{hex, unhex};

/// Identifies a data key in the keyring and in every record header.
pub type KeyId = u32;

/// The `format` value of a keyring file.
pub const KEYRING_FORMAT: &str = "slurm-exporter-audit-keyring/1";

/// Errors reading or writing key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("{path}: not a keyring: {reason}")]
    BadKeyring { path: PathBuf, reason: String },
    #[error("{path}: not an Ed25519 key in PEM: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error("the keyring has no key with id {0}")]
    NoSuchKey(KeyId),
}

/// One AES-256 data key. Zeroed on drop; never printed.
#[derive(Clone)]
pub struct DataKey {
    bytes: Zeroizing<[u8; 32]>,
    created_unix: u64,
}

impl DataKey {
    fn generate() -> Result<DataKey, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(KeyError::Random)?;
        Ok(DataKey {
            bytes,
            created_unix: unix_now(),
        })
    }
}

/// The AES-256 data keys of a log, by key id, and which one encrypts new segments.
///
/// Old keys stay in the ring so old records stay readable. Printing a keyring shows key ids
/// only.
#[derive(Clone)]
pub struct Keyring {
    active: KeyId,
    keys: BTreeMap<KeyId, DataKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: String,
    active: KeyId,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: KeyId,
    created_unix: u64,
    aes256_hex: Zeroizing<String>,
}

impl Keyring {
    /// A new keyring holding one fresh random key, id 1.
    pub fn generate() -> Result<Keyring, KeyError> {
        let mut keys = BTreeMap::new();
        keys.insert(1, DataKey::generate()?);
        Ok(Keyring { active: 1, keys })
    }

    /// Adds a fresh random key with the next id and makes it the active one.
    pub fn rotate(&mut self) -> Result<KeyId, KeyError> {
        let id = self
            .keys
            .keys()
            .next_back()
            .map_or(1, |m| m.saturating_add(1));
        self.keys.insert(id, DataKey::generate()?);
        self.active = id;
        Ok(id)
    }

    /// The id of the key that encrypts new segments.
    pub fn active_id(&self) -> KeyId {
        self.active
    }

    /// Every key id in the ring, ascending.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.keys().copied().collect()
    }

    /// Drops a key (for example after its records expired). The active key cannot be removed.
    pub fn remove(&mut self, id: KeyId) -> Result<(), KeyError> {
        if id == self.active || self.keys.remove(&id).is_none() {
            return Err(KeyError::NoSuchKey(id));
        }
        Ok(())
    }

    pub(crate) fn key(&self, id: KeyId) -> Option<&[u8; 32]> {
        self.keys.get(&id).map(|k| &*k.bytes)
    }

    /// Builds a keyring from raw keys (tests and migrations). The active id must be present.
    pub fn from_keys(active: KeyId, keys: &[(KeyId, [u8; 32])]) -> Result<Keyring, KeyError> {
        let keys: BTreeMap<_, _> = keys
            .iter()
            .map(|(id, k)| {
                (
                    *id,
                    DataKey {
                        bytes: Zeroizing::new(*k),
                        created_unix: unix_now(),
                    },
                )
            })
            .collect();
        if !keys.contains_key(&active) {
            return Err(KeyError::NoSuchKey(active));
        }
        Ok(Keyring { active, keys })
    }

    /// Reads a keyring file, refusing one that group or others can read.
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        check_private(path)?;
        let text = Zeroizing::new(std::fs::read(path).map_err(|e| io(path, e))?);
        let bad = |reason: String| KeyError::BadKeyring {
            path: path.to_owned(),
            reason,
        };
        let file: KeyringFile = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if file.format != KEYRING_FORMAT {
            return Err(bad(format!(
                "format is {:?}, expected {KEYRING_FORMAT:?}",
                file.format
            )));
        }
        let mut keys = BTreeMap::new();
        for entry in file.keys {
            let bytes = unhex::<32>(&entry.aes256_hex)
                .ok_or_else(|| bad(format!("key {}: aes256_hex is not 64 hex digits", entry.id)))?;
            let key = DataKey {
                bytes: Zeroizing::new(bytes),
                created_unix: entry.created_unix,
            };
            if keys.insert(entry.id, key).is_some() {
                return Err(bad(format!("key id {} appears twice", entry.id)));
            }
        }
        if !keys.contains_key(&file.active) {
            return Err(bad(format!(
                "active key {} is not in the ring",
                file.active
            )));
        }
        Ok(Keyring {
            active: file.active,
            keys,
        })
    }

    /// Writes the keyring atomically with mode 0600 (temporary file, fsync, rename, fsync dir).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let file = KeyringFile {
            format: KEYRING_FORMAT.to_owned(),
            active: self.active,
            keys: self
                .keys
                .iter()
                .map(|(id, k)| KeyEntry {
                    id: *id,
                    created_unix: k.created_unix,
                    aes256_hex: Zeroizing::new(hex(&*k.bytes)),
                })
                .collect(),
        };
        let mut text =
            Zeroizing::new(
                serde_json::to_vec_pretty(&file).map_err(|e| KeyError::BadKeyring {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?,
            );
        text.push(b'\n');
        write_private_atomic(path, &text)
    }
}

/// Adds a new data key to the keyring file at `path` and makes it active; creates the file
/// with a first key when it does not exist. Returns the new active key id. A running writer
/// starts using it when the host hands it the new ring ([`crate::AuditLog::rotate_key`]).
pub fn rotate_key(path: &Path) -> Result<KeyId, KeyError> {
    let ring = match path.try_exists() {
        Ok(true) => {
            let mut ring = Keyring::load(path)?;
            ring.rotate()?;
            ring
        }
        Ok(false) => Keyring::generate()?,
        Err(e) => return Err(io(path, e)),
    };
    ring.save(path)?;
    Ok(ring.active)
}

/// A fresh Ed25519 signing key from the operating system's random number generator.
pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(KeyError::Random)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes the signing key as PKCS#8 PEM (RFC 8410, version 1: the private key alone, what
/// OpenSSL, python-cryptography and Go read), mode 0600.
pub fn save_signing_key(key: &SigningKey, path: &Path) -> Result<(), KeyError> {
    let v1 = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let pem = v1
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::BadPem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    write_private_atomic(path, pem.as_bytes())
}

/// Reads a PKCS#8 PEM signing key, refusing one that group or others can read.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    check_private(path)?;
    let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| io(path, e))?);
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::BadPem {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Writes the public key as SubjectPublicKeyInfo PEM (`openssl pkey -pubin` reads it).
pub fn save_public_key(key: &VerifyingKey, path: &Path) -> Result<(), KeyError> {
    let pem = key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::BadPem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    std::fs::write(path, pem).map_err(|e| io(path, e))
}

/// Reads a SubjectPublicKeyInfo PEM public key.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    VerifyingKey::from_public_key_pem(&pem).map_err(|e| KeyError::BadPem {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A short, stable name for a public key: the first 16 bytes of SHA-256 of its 32 bytes, hex.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex(&digest[..16])
}

fn io(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

pub(crate) fn open_private(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = open_private(&tmp, false)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| io(path, e))
}

pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
