//! API tokens: long random secrets made by `slurm-exporter token new`, printed once, stored
//! in the config only as a SHA-256 hash.
//!
//! Shape: `sxp_<id>_<secret>`, all base62 so a double click selects it whole and a secret
//! scanner can match the prefix. The id (12 characters) is public: it names the token in
//! logs, audit records and the config. The secret is 43 base62 characters drawn from the OS
//! RNG, about 256 bits; with that much entropy a plain SHA-256 is the right hash (a slow
//! password hash buys nothing against a search space of 2^256). The hash covers the whole
//! token, id included, and is compared in constant time.

use super::common::AuthnConfigError;
use crate::policy::outcome::FailureReason;
use crate::policy::tenancy::{AuthMethod, Principal, Role, TenantId};
pub use crate::settings::auth::ApiTokenConfig;
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// Every API token starts with this.
pub const TOKEN_PREFIX: &str = "sxp_";
const ID_LEN: usize = 12;
/// 43 * log2(62) = 256.0 bits.
const SECRET_LEN: usize = 43;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The OS random number generator failed; no token was made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a token: the OS random number generator failed: {0}")]
pub struct TokenError(String);

/// Makes a new API token for `tenant` with `role`: the token string, to print once, and the
/// config entry, which holds only its hash.
pub fn new_token(tenant: TenantId, role: Role) -> Result<(String, ApiTokenConfig), TokenError> {
    let id = random_base62(ID_LEN)?;
    let secret = random_base62(SECRET_LEN)?;
    let token = format!("{TOKEN_PREFIX}{id}_{secret}");
    let entry = ApiTokenConfig {
        id,
        sha256: hash_token(&token),
        tenant,
        role,
    };
    Ok((token, entry))
}

/// Lowercase hex SHA-256 of a token, as stored in [`ApiTokenConfig::sha256`].
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0x0f)]));
    }
    out
}

/// Uniform base62 characters from the OS RNG, by rejection sampling (bytes >= 248 are
/// dropped so that `b % 62` has no bias).
fn random_base62(n: usize) -> Result<String, TokenError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rand::rngs::OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| TokenError(e.to_string()))?;
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == n {
                break;
            }
            out.push(char::from(BASE62[usize::from(b % 62)]));
        }
    }
    Ok(out)
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

struct Entry {
    sha256: [u8; 32],
    tenant: TenantId,
    role: Role,
}

/// The configured tokens, by id.
pub(crate) struct ApiTokens {
    by_id: HashMap<String, Entry>,
}

impl ApiTokens {
    pub(crate) fn new(cfg: &[ApiTokenConfig]) -> Result<ApiTokens, AuthnConfigError> {
        let mut by_id = HashMap::new();
        for t in cfg {
            if t.id.len() != ID_LEN || !is_base62(&t.id) {
                return Err(AuthnConfigError::new(format!(
                    "api_tokens: id {:?} is not {ID_LEN} base62 characters",
                    t.id
                )));
            }
            let sha256 = parse_hex32(&t.sha256).ok_or_else(|| {
                AuthnConfigError::new(format!(
                    "api_tokens: id {}: sha256 must be 64 hex digits",
                    t.id
                ))
            })?;
            let entry = Entry {
                sha256,
                tenant: t.tenant.clone(),
                role: t.role,
            };
            if by_id.insert(t.id.clone(), entry).is_some() {
                return Err(AuthnConfigError::new(format!(
                    "api_tokens: id {} listed twice",
                    t.id
                )));
            }
        }
        Ok(ApiTokens { by_id })
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Principal, FailureReason> {
        let rest = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(FailureReason::ApiTokenMalformed)?;
        let (id, secret) = rest
            .split_once('_')
            .ok_or(FailureReason::ApiTokenMalformed)?;
        if id.len() != ID_LEN || secret.len() != SECRET_LEN || !is_base62(id) || !is_base62(secret)
        {
            return Err(FailureReason::ApiTokenMalformed);
        }
        let computed: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Ids are public (logs, config), so looking one up need not be constant time; the
        // hash comparison, which touches the secret, is.
        let Some(entry) = self.by_id.get(id) else {
            tracing::debug!(token_id = id, "unknown API token id");
            return Err(FailureReason::ApiTokenUnknown);
        };
        if bool::from(computed.ct_eq(&entry.sha256)) {
            Ok(Principal {
                id: id.to_owned(),
                tenant: entry.tenant.clone(),
                role: entry.role,
                method: AuthMethod::ApiToken,
            })
        } else {
            tracing::debug!(token_id = id, "API token secret does not match");
            Err(FailureReason::ApiTokenMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_verify_and_are_distinct() {
        let tenant = TenantId::parse("physics").expect("tenant");
        let (t1, c1) = new_token(tenant.clone(), Role::Viewer).expect("token");
        let (t2, c2) = new_token(tenant.clone(), Role::Viewer).expect("token");
        assert_ne!(t1, t2);
        assert!(t1.starts_with("sxp_"));
        assert_eq!(t1.len(), 4 + ID_LEN + 1 + SECRET_LEN);
        assert!(!c1.sha256.contains(&t1[4 + ID_LEN + 1..]));
        let tokens = ApiTokens::new(&[c1.clone(), c2]).expect("config");
        let p = tokens.verify(&t1).expect("valid");
        assert_eq!(p.id, c1.id);
        assert_eq!(p.tenant, tenant);
        assert_eq!(p.method, AuthMethod::ApiToken);
    }

    #[test]
    fn altered_and_malformed_tokens_are_refused() {
        let (t, c) = new_token(TenantId::parse("a").expect("t"), Role::Admin).expect("token");
        let tokens = ApiTokens::new(&[c]).expect("config");
        let mut altered = t.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'a' { b'b' } else { b'a' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert_eq!(
            tokens.verify(&altered),
            Err(FailureReason::ApiTokenMismatch)
        );
        assert_eq!(
            tokens.verify(&t.replacen(&t[4..16], "ZZZZZZZZZZZZ", 1)),
            Err(FailureReason::ApiTokenUnknown)
        );
        for bad in [
            "sxp_",
            "sxp_abc",
            &t[..t.len() - 1],
            &format!("{t}x"),
            "sxp_abc_def",
        ] {
            assert_eq!(
                tokens.verify(bad),
                Err(FailureReason::ApiTokenMalformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_entry_round_trips_through_toml() {
        let (_, c) = new_token(TenantId::parse("physics").expect("t"), Role::Billing).expect("t");
        let text = toml::to_string(&c).expect("serialize");
        assert!(text.contains("role = \"billing\""), "{text}");
        let back: ApiTokenConfig = toml::from_str(&text).expect("parse");
        assert_eq!(back, c);
    }

    #[test]
    fn bad_config_is_refused() {
        let good = ApiTokenConfig {
            id: "abcdefghijkl".into(),
            sha256: "0".repeat(64),
            tenant: TenantId::parse("a").expect("t"),
            role: Role::Viewer,
        };
        assert!(ApiTokens::new(std::slice::from_ref(&good)).is_ok());
        assert!(ApiTokens::new(&[good.clone(), good.clone()]).is_err());
        let short = ApiTokenConfig {
            sha256: "0".repeat(63),
            ..good.clone()
        };
        assert!(ApiTokens::new(&[short]).is_err());
        let bad_id = ApiTokenConfig {
            id: "abc_defghijk".into(),
            ..good
        };
        assert!(ApiTokens::new(&[bad_id]).is_err());
    }
}
