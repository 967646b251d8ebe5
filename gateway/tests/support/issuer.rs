//! A small but real OAuth2/OIDC issuer for tests: an HTTP server on 127.0.0.1 (port 0) that
//! serves a discovery document, a JWKS of freshly generated RSA, P-256 and Ed25519 public keys,
//! and an RFC 7662 introspection endpoint; plus the private keys to sign real tokens with.
//! Every endpoint counts its hits so tests can prove what the gateway did (or did not) ask.

#![allow(dead_code)]

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub const CLIENT_ID: &str = "slurm-gateway";
pub const CLIENT_SECRET: &str = "gateway-secret-for-tests";

/// A private key the issuer signs with, and its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: EncodingKey,
    pub jwk: Jwk,
    /// The public key as SPKI PEM (what an attacker can download).
    pub public_pem: String,
}

impl SigningKey {
    pub fn generate(alg: Algorithm, kid: &str) -> SigningKey {
        let (rc_alg, key_of) = match alg {
            Algorithm::RS256 => (
                &rcgen::PKCS_RSA_SHA256,
                EncodingKey::from_rsa_pem as fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>,
            ),
            Algorithm::ES256 => (
                &rcgen::PKCS_ECDSA_P256_SHA256,
                EncodingKey::from_ec_pem as _,
            ),
            Algorithm::EdDSA => (&rcgen::PKCS_ED25519, EncodingKey::from_ed_pem as _),
            other => panic!("test issuer does not do {other:?}"),
        };
        let kp = rcgen::KeyPair::generate_for(rc_alg).expect("generate key");
        let key = key_of(kp.serialize_pem().as_bytes()).expect("encoding key");
        let mut jwk = match alg {
            // Public parameters computed from the private key by jsonwebtoken's provider.
            Algorithm::RS256 | Algorithm::ES256 => Jwk::from_encoding_key(&key, alg).expect("jwk"),
            _ => Jwk::from_decoding_key(&DecodingKey::from_ed_der(kp.public_key_raw()), Some(alg))
                .expect("jwk"),
        };
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        SigningKey {
            kid: kid.to_owned(),
            alg,
            key,
            jwk,
            public_pem: kp.public_key_pem(),
        }
    }

    /// Signs `claims` with this key, `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.key).expect("sign")
    }

    /// Signs with this key but names another `kid` in the header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&h, claims, &self.key).expect("sign")
    }
}

#[derive(Default)]
pub struct Hits {
    pub discovery: AtomicUsize,
    pub jwks: AtomicUsize,
    pub introspect: AtomicUsize,
}

struct Shared {
    issuer: String,
    jwks: Mutex<Vec<Jwk>>,
    /// token -> introspection answer; unknown tokens are `{"active": false}`.
    answers: Mutex<HashMap<String, Value>>,
    hits: Hits,
}

/// The running issuer. Dropping it stops the server.
pub struct Issuer {
    pub url: String,
    pub rsa: SigningKey,
    pub ec: SigningKey,
    pub ed: SigningKey,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("time")
}

impl Issuer {
    pub async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let rsa = SigningKey::generate(Algorithm::RS256, "rsa-1");
        let ec = SigningKey::generate(Algorithm::ES256, "ec-1");
        let ed = SigningKey::generate(Algorithm::EdDSA, "ed-1");
        let shared = Arc::new(Shared {
            issuer: url.clone(),
            jwks: Mutex::new(vec![rsa.jwk.clone(), ec.jwk.clone(), ed.jwk.clone()]),
            answers: Mutex::new(HashMap::new()),
            hits: Hits::default(),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/introspect", post(introspect))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("issuer serves");
        });
        Issuer {
            url,
            rsa,
            ec,
            ed,
            shared,
            task,
        }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.url)
    }

    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.url)
    }

    pub fn hits(&self) -> &Hits {
        &self.shared.hits
    }

    pub fn jwks_hits(&self) -> usize {
        self.shared.hits.jwks.load(Ordering::SeqCst)
    }

    pub fn introspect_hits(&self) -> usize {
        self.shared.hits.introspect.load(Ordering::SeqCst)
    }

    /// Publishes another key (a key rotation).
    pub fn publish(&self, key: &SigningKey) {
        self.shared.jwks.lock().expect("lock").push(key.jwk.clone());
    }

    /// What introspecting `token` will answer.
    pub fn set_answer(&self, token: &str, answer: Value) {
        self.shared
            .answers
            .lock()
            .expect("lock")
            .insert(token.to_owned(), answer);
    }

    /// Standard claims for this issuer, valid now, for `aud`, with tenant and role claims.
    pub fn claims(&self, aud: &str, tenant: &str, role: &str) -> Value {
        let t = now();
        json!({
            "iss": self.url,
            "sub": format!("user-of-{tenant}"),
            "aud": aud,
            "iat": t,
            "nbf": t - 5,
            "exp": t + 300,
            "slurm_tenant": tenant,
            "slurm_role": role,
        })
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn discovery(State(s): State<Arc<Shared>>) -> Response {
    s.hits.discovery.fetch_add(1, Ordering::SeqCst);
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": s.issuer,
            "jwks_uri": format!("{}/jwks", s.issuer),
            "introspection_endpoint": format!("{}/introspect", s.issuer),
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        }),
    )
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    s.hits.jwks.fetch_add(1, Ordering::SeqCst);
    let keys = s.jwks.lock().expect("lock").clone();
    json_response(StatusCode::OK, &json!({ "keys": keys }))
}

/// RFC 7662 §2.1: client authentication required (HTTP Basic here), token in a form body.
async fn introspect(State(s): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    s.hits.introspect.fetch_add(1, Ordering::SeqCst);
    let expected = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(decode_basic)
        .is_some_and(|creds| creds == expected);
    if !authorized {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client"}),
        );
    }
    // Test tokens are URL-safe already, so no percent-decoding is needed.
    let token = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .unwrap_or_default();
    let answer = s
        .answers
        .lock()
        .expect("lock")
        .get(token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    json_response(StatusCode::OK, &answer)
}

fn decode_basic(b64: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(raw).ok()
}
