//! The authentication layer as an attacker would try it: every credential kind against a real
//! OIDC issuer process (HTTP on 127.0.0.1, real RSA/P-256/Ed25519 keys, a real JWKS and an
//! RFC 7662 introspection endpoint), each refusal asserted by status and by reason.

#[path = "support/issuer.rs"]
mod issuer;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use gateway::layer::authn::introspect::IntrospectionConfig;
use gateway::layer::authn::jwt::OidcConfig;
use gateway::layer::authn::token::new_token;
use gateway::layer::authn::{
    Authenticator, AuthnConfig, AuthnFailure, AuthnLayer, CertIdentity, CertIdentityConfig,
    FailureReason, SecretString,
};
use gateway::tenancy::{AuthMethod, Principal, Role, TenantId};
use issuer::{now, Issuer, SigningKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const AUD: &str = "slurm-exporter";

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("tenant id")
}

/// What the protected handler saw, or why the layer refused.
#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    reason: Option<FailureReason>,
    body: String,
    headers: HeaderMap,
    principal: Option<Principal>,
}

async fn whoami(Extension(p): Extension<Principal>, headers: HeaderMap) -> String {
    format!(
        "{}|{}|{}|{:?}|authorization_seen={}",
        p.id,
        p.tenant,
        p.role,
        p.method,
        headers.contains_key(header::AUTHORIZATION)
    )
}

fn app(authn: Arc<Authenticator>) -> Router {
    Router::new()
        .route("/metrics", get(whoami))
        .layer(axum::middleware::from_fn_with_state(
            AuthnLayer::new(authn),
            gateway::layer::authn::authenticate_request,
        ))
}

async fn send(app: &Router, authorization: &[&str], cert: Option<CertIdentity>) -> Outcome {
    let mut req = Request::builder().uri("/metrics");
    for a in authorization {
        req = req.header(header::AUTHORIZATION, *a);
    }
    let mut req = req.body(Body::empty()).expect("request");
    if let Some(c) = cert {
        req.extensions_mut().insert(c);
    }
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let reason = res.extensions().get::<AuthnFailure>().map(|f| f.reason);
    let principal = res.extensions().get::<Principal>().cloned();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    Outcome {
        status,
        reason,
        body: String::from_utf8_lossy(&body).into_owned(),
        headers,
        principal,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn b64url(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

struct Setup {
    issuer: Issuer,
    token_a: String,
    token_b: String,
    /// Made like the others but never put in the config (or removed from it: revoked).
    token_revoked: String,
    cfg: AuthnConfig,
}

async fn setup() -> Setup {
    let issuer = Issuer::start().await;
    let (token_a, entry_a) = new_token(tenant("tenant-a"), Role::Viewer).expect("token");
    let (token_b, entry_b) = new_token(tenant("tenant-b"), Role::Admin).expect("token");
    let (token_revoked, _) = new_token(tenant("tenant-a"), Role::Viewer).expect("token");
    let oidc = OidcConfig {
        jwks_min_refresh_seconds: 60,
        ..OidcConfig::new(issuer.url.clone(), vec![AUD.into()])
    };
    let mut introspection = IntrospectionConfig::new(
        issuer.introspection_url(),
        issuer::CLIENT_ID,
        SecretString::new(issuer::CLIENT_SECRET),
    );
    introspection.audiences = vec![AUD.into()];
    let cfg = AuthnConfig {
        client_certs: vec![
            CertIdentityConfig {
                identity: "scraper.tenant-a.example".into(),
                tenant: tenant("tenant-a"),
                role: Role::Viewer,
            },
            CertIdentityConfig {
                identity: "scraper.tenant-b.example".into(),
                tenant: tenant("tenant-b"),
                role: Role::Viewer,
            },
        ],
        api_tokens: vec![entry_a, entry_b],
        oidc: vec![oidc],
        introspection: Some(introspection),
    };
    Setup {
        issuer,
        token_a,
        token_b,
        token_revoked,
        cfg,
    }
}

fn build(cfg: &AuthnConfig) -> Router {
    app(Arc::new(Authenticator::new(cfg).expect("config")))
}

#[tokio::test]
async fn no_credentials_is_401_with_a_bearer_challenge_and_no_detail() {
    let s = setup().await;
    let app = build(&s.cfg);
    let o = send(&app, &[], None).await;
    assert_eq!(o.status, StatusCode::UNAUTHORIZED);
    assert_eq!(o.reason, Some(FailureReason::NoCredentials));
    let challenge = o.headers[header::WWW_AUTHENTICATE].to_str().expect("ascii");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(o.body, "unauthorized\n");
}

#[tokio::test]
async fn api_tokens_resolve_to_their_own_tenant_and_nothing_else_gets_in() {
    let s = setup().await;
    let app = build(&s.cfg);

    let a = send(&app, &[&bearer(&s.token_a)], None).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let pa = a.principal.expect("principal");
    assert_eq!(pa.tenant, tenant("tenant-a"));
    assert_eq!(pa.role, Role::Viewer);
    assert_eq!(pa.method, AuthMethod::ApiToken);
    assert!(
        !pa.id.contains(&s.token_a[17..]),
        "id never carries the secret"
    );
    assert!(
        a.body.ends_with("authorization_seen=false"),
        "the header is stripped before later layers: {}",
        a.body
    );

    let b = send(&app, &[&bearer(&s.token_b)], None).await;
    assert_eq!(b.status, StatusCode::OK);
    let pb = b.principal.expect("principal");
    assert_eq!((pb.tenant, pb.role), (tenant("tenant-b"), Role::Admin));

    let mut altered = s.token_a.clone();
    let last = altered.pop().expect("non-empty");
    altered.push(if last == 'x' { 'y' } else { 'x' });
    let cases: Vec<(&str, String, FailureReason)> = vec![
        (
            "revoked or unknown token",
            bearer(&s.token_revoked),
            FailureReason::ApiTokenUnknown,
        ),
        (
            "right id, wrong secret",
            bearer(&altered),
            FailureReason::ApiTokenMismatch,
        ),
        (
            "garbage with the prefix",
            bearer("sxp_not-a-token"),
            FailureReason::ApiTokenMalformed,
        ),
        (
            "an opaque token the issuer does not know",
            bearer("wrong-token-123"),
            FailureReason::IntrospectionInactive,
        ),
        (
            "token in the wrong scheme",
            format!("Basic {}", s.token_a),
            FailureReason::UnsupportedScheme,
        ),
        (
            "token without a scheme",
            s.token_a.clone(),
            FailureReason::UnsupportedScheme,
        ),
        (
            "empty bearer",
            "Bearer ".into(),
            FailureReason::MalformedAuthorization,
        ),
        (
            "bearer with a space inside",
            format!("Bearer {} extra", s.token_a),
            FailureReason::MalformedAuthorization,
        ),
    ];
    for (name, auth, want) in cases {
        let o = send(&app, &[&auth], None).await;
        assert_eq!(o.status, want.status(), "{name}");
        assert!(o.status.is_client_error(), "{name}");
        assert_eq!(o.reason, Some(want), "{name}");
        assert!(o.principal.is_none(), "{name}");
        assert!(!o.body.contains("sxp_"), "{name}: body echoes nothing");
    }
    // API tokens are never shown to the issuer, valid or not.
    assert_eq!(
        s.issuer.introspect_hits(),
        1,
        "only the opaque token was introspected"
    );
}

#[tokio::test]
async fn duplicate_authorization_headers_are_refused_never_first_wins() {
    let s = setup().await;
    let app = build(&s.cfg);
    for pair in [
        [bearer(&s.token_a), bearer(&s.token_b)],
        [bearer(&s.token_a), bearer("garbage")],
        [bearer("garbage"), bearer(&s.token_a)],
        [bearer(&s.token_a), bearer(&s.token_a)],
    ] {
        let o = send(&app, &[&pair[0], &pair[1]], None).await;
        assert_eq!(o.status, StatusCode::BAD_REQUEST);
        assert_eq!(o.reason, Some(FailureReason::DuplicateAuthorization));
        assert!(o.principal.is_none());
    }
    // Even with a valid client certificate.
    let cert = CertIdentity::from("scraper.tenant-a.example".to_owned());
    let o = send(
        &app,
        &[&bearer(&s.token_a), &bearer(&s.token_b)],
        Some(cert),
    )
    .await;
    assert_eq!(o.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_certificates_come_first_and_map_through_config() {
    let s = setup().await;
    let app = build(&s.cfg);

    let a = CertIdentity::from("scraper.tenant-a.example".to_owned());
    let o = send(&app, &[], Some(a.clone())).await;
    assert_eq!(o.status, StatusCode::OK);
    let p = o.principal.expect("principal");
    assert_eq!(p.method, AuthMethod::ClientCert);
    assert_eq!(p.tenant, tenant("tenant-a"));
    assert_eq!(p.id, "scraper.tenant-a.example");

    // A mapped certificate decides, whatever token rides along.
    let o = send(&app, &[&bearer(&s.token_b)], Some(a)).await;
    assert_eq!(o.principal.expect("principal").tenant, tenant("tenant-a"));

    // Unmapped certificate: refused alone, the bearer token decides when there is one.
    let stranger = CertIdentity(vec!["self-signed.example".into(), "Some CN".into()]);
    let o = send(&app, &[], Some(stranger.clone())).await;
    assert_eq!(o.status, StatusCode::UNAUTHORIZED);
    assert_eq!(o.reason, Some(FailureReason::CertNotMapped));
    let o = send(&app, &[&bearer(&s.token_b)], Some(stranger)).await;
    let p = o.principal.expect("principal");
    assert_eq!(
        (p.tenant, p.method),
        (tenant("tenant-b"), AuthMethod::ApiToken)
    );

    // The TLS accept loop's own extension works as is: SANs first, then the CN.
    let peer = gateway::tls::PeerIdentity {
        sans: vec!["unlisted.example".into()],
        cn: Some("scraper.tenant-b.example".into()),
        fingerprint_sha256: "00".repeat(32),
    };
    let mut req = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .expect("request");
    req.extensions_mut().insert(peer);
    let res = app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let p = res.extensions().get::<Principal>().expect("principal");
    assert_eq!(
        (&p.tenant, &p.method),
        (&tenant("tenant-b"), &AuthMethod::ClientCert)
    );

    // Names mapping to two tenants are not resolved by order.
    let both = CertIdentity(vec![
        "scraper.tenant-a.example".into(),
        "scraper.tenant-b.example".into(),
    ]);
    let o = send(&app, &[&bearer(&s.token_a)], Some(both)).await;
    assert_eq!(o.status, StatusCode::UNAUTHORIZED);
    assert_eq!(o.reason, Some(FailureReason::CertAmbiguous));
}

#[tokio::test]
async fn jwts_signed_by_the_issuer_resolve_tenant_and_role_from_claims() {
    let s = setup().await;
    let app = build(&s.cfg);
    let i = &s.issuer;
    for (key, t, r) in [
        (&i.rsa, "tenant-a", Role::Viewer),
        (&i.ec, "tenant-b", Role::Admin),
        (&i.ed, "tenant-a", Role::Billing),
    ] {
        let jwt = key.sign(&i.claims(AUD, t, r.as_str()));
        let o = send(&app, &[&bearer(&jwt)], None).await;
        assert_eq!(o.status, StatusCode::OK, "{:?}: {o:?}", key.alg);
        let p = o.principal.expect("principal");
        assert_eq!(p.method, AuthMethod::Jwt);
        assert_eq!((p.tenant, p.role), (tenant(t), r));
        assert_eq!(p.id, format!("user-of-{t}"));
    }
    // The keys came from the discovery document's jwks_uri, fetched once.
    assert_eq!(
        i.hits().discovery.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(i.jwks_hits(), 1);
    assert_eq!(
        i.introspect_hits(),
        0,
        "JWTs of a known issuer are not introspected"
    );
}

#[tokio::test]
async fn forged_expired_and_misdirected_jwts_are_refused() {
    let s = setup().await;
    let i = &s.issuer;
    // JWT checks alone, so each refusal has the JWT reason.
    let jwt_only = AuthnConfig {
        introspection: None,
        ..s.cfg.clone()
    };
    let app = build(&jwt_only);
    let t = now();
    let good = i.claims(AUD, "tenant-a", "viewer");
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().expect("object") {
            if v.is_null() {
                c.as_object_mut().expect("object").remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };

    let none_token = format!(
        "{}.{}.",
        b64url(&json!({"alg": "none", "typ": "JWT", "kid": i.rsa.kid})),
        b64url(&good)
    );
    let hs_confusion = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(i.rsa.kid.clone());
        let key = EncodingKey::from_secret(i.rsa.public_pem.as_bytes()).expect("hmac key");
        jsonwebtoken::encode(&h, &good, &key).expect("sign")
    };
    let hs_no_kid = {
        let key = EncodingKey::from_secret(i.rsa.public_pem.as_bytes()).expect("hmac key");
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &good, &key).expect("sign")
    };
    let other_rsa = SigningKey::generate(Algorithm::RS256, "attacker");
    let tampered = {
        let valid = i.rsa.sign(&good);
        let mut parts: Vec<&str> = valid.split('.').collect();
        let forged = b64url(&with(
            json!({"slurm_tenant": "tenant-b", "slurm_role": "operator"}),
        ));
        parts[1] = &forged;
        parts.join(".")
    };
    let no_kid =
        { jsonwebtoken::encode(&Header::new(Algorithm::RS256), &good, &i.rsa.key).expect("sign") };

    let cases: Vec<(&str, String, FailureReason)> = vec![
        (
            "expired",
            i.rsa.sign(&with(json!({"exp": t - 3600, "nbf": t - 7200}))),
            FailureReason::JwtExpired,
        ),
        (
            "not yet valid",
            i.rsa.sign(&with(json!({"nbf": t + 3600, "exp": t + 7200}))),
            FailureReason::JwtNotYetValid,
        ),
        (
            "wrong audience",
            i.rsa.sign(&with(json!({"aud": "grafana"}))),
            FailureReason::JwtWrongAudience,
        ),
        (
            "wrong issuer, signed by the right key",
            i.rsa.sign(&with(json!({"iss": "http://127.0.0.1:1"}))),
            FailureReason::JwtUnknownIssuer,
        ),
        (
            "issuer with a trailing slash",
            i.rsa.sign(&with(json!({"iss": format!("{}/", i.url)}))),
            FailureReason::JwtUnknownIssuer,
        ),
        ("alg none", none_token, FailureReason::JwtMalformed),
        (
            "HS256 signed with the RSA public key",
            hs_confusion,
            FailureReason::JwtAlgorithmNotAllowed,
        ),
        (
            "HS256 signed with the RSA public key, no kid",
            hs_no_kid,
            FailureReason::JwtAlgorithmNotAllowed,
        ),
        (
            "RS256 header naming the Ed25519 key",
            i.rsa.sign_as(&i.ed.kid, &good),
            FailureReason::JwtKeyMismatch,
        ),
        (
            "another key claiming a published kid",
            other_rsa.sign_as(&i.rsa.kid, &good),
            FailureReason::JwtBadSignature,
        ),
        (
            "payload swapped after signing",
            tampered,
            FailureReason::JwtBadSignature,
        ),
        ("no kid", no_kid, FailureReason::JwtMissingKid),
        (
            "no exp",
            i.rsa.sign(&with(json!({"exp": null}))),
            FailureReason::JwtMissingClaim,
        ),
        (
            "no sub",
            i.rsa.sign(&with(json!({"sub": null}))),
            FailureReason::JwtMissingClaim,
        ),
        (
            "no tenant claim",
            i.rsa.sign(&with(json!({"slurm_tenant": null}))),
            FailureReason::ClaimsUnmapped,
        ),
        (
            "role that does not exist",
            i.rsa.sign(&with(json!({"slurm_role": "root"}))),
            FailureReason::ClaimsUnmapped,
        ),
        (
            "three parts that decode to nothing",
            "a.b.c".into(),
            FailureReason::JwtUnknownIssuer,
        ),
        (
            "an opaque token with no introspection configured",
            "opaque-token".into(),
            FailureReason::NoVerifier,
        ),
    ];
    for (name, jwt, want) in cases {
        let o = send(&app, &[&bearer(&jwt)], None).await;
        assert_eq!(o.status, StatusCode::UNAUTHORIZED, "{name}: {o:?}");
        assert_eq!(o.reason, Some(want), "{name}");
        assert!(o.principal.is_none(), "{name}");
        assert!(
            o.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .expect("ascii")
                .starts_with("Bearer"),
            "{name}"
        );
        assert_eq!(o.body, "unauthorized\n", "{name}: no detail for the client");
    }

    // With introspection configured, a JWT from an unknown issuer goes there, and the issuer
    // says it does not know it.
    let full = build(&s.cfg);
    let o = send(
        &full,
        &[&bearer(
            &i.rsa.sign(&with(json!({"iss": "http://127.0.0.1:1"}))),
        )],
        None,
    )
    .await;
    assert_eq!(o.status, StatusCode::UNAUTHORIZED);
    assert_eq!(o.reason, Some(FailureReason::IntrospectionInactive));
}

/// `header` and `payload` exactly as written (duplicate keys and all), signed with `key`.
fn sign_raw(key: &SigningKey, header: &str, payload: &str) -> String {
    let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let msg = format!("{}.{}", b(header), b(payload));
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &key.key, key.alg).expect("sign");
    format!("{msg}.{sig}")
}

#[tokio::test]
async fn jwt_type_lifetime_issue_time_and_duplicate_keys_are_checked() {
    let s = setup().await;
    let i = &s.issuer;
    let strict = OidcConfig {
        typ: Some("at+jwt".into()),
        max_lifetime_seconds: Some(3600),
        ..OidcConfig::new(i.url.clone(), vec![AUD.into()])
    };
    let app = build(&AuthnConfig {
        oidc: vec![strict],
        ..AuthnConfig::default()
    });
    // The issuer's defaults: no typ or lifetime rule, but the issue time and duplicate
    // keys are always checked.
    let lax = build(&AuthnConfig {
        oidc: vec![OidcConfig::new(i.url.clone(), vec![AUD.into()])],
        ..AuthnConfig::default()
    });
    let t = now();
    let good = i.claims(AUD, "tenant-a", "viewer");
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().expect("object") {
            if v.is_null() {
                c.as_object_mut().expect("object").remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let typed = |typ: Option<&str>, claims: &Value| {
        let mut h = Header::new(i.rsa.alg);
        h.kid = Some(i.rsa.kid.clone());
        h.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&h, claims, &i.rsa.key).expect("sign")
    };
    let at = |claims: &Value| typed(Some("at+jwt"), claims);
    let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#, i.rsa.kid);
    let body = good.to_string();
    let inner = body.trim_start_matches('{').trim_end_matches('}');

    for (name, jwt) in [
        ("typ at+jwt", at(&good)),
        (
            "typ application/at+jwt",
            typed(Some("application/at+jwt"), &good),
        ),
        ("iat within the leeway", at(&with(json!({"iat": t + 10})))),
        (
            "exactly the maximum lifetime",
            at(&with(json!({"iat": t, "exp": t + 3600}))),
        ),
    ] {
        let o = send(&app, &[&bearer(&jwt)], None).await;
        assert_eq!(o.status, StatusCode::OK, "{name}: {o:?}");
    }
    let cases: Vec<(&str, &Router, String, FailureReason)> = vec![
        (
            "an ID token (typ JWT) where at+jwt is required",
            &app,
            typed(Some("JWT"), &good),
            FailureReason::JwtWrongType,
        ),
        (
            "no typ",
            &app,
            typed(None, &good),
            FailureReason::JwtWrongType,
        ),
        (
            "typ at+jwt with a suffix",
            &app,
            typed(Some("at+jwt2"), &good),
            FailureReason::JwtWrongType,
        ),
        (
            "a lifetime of two hours, one allowed",
            &app,
            at(&with(json!({"iat": t, "exp": t + 7200}))),
            FailureReason::JwtLifetimeTooLong,
        ),
        (
            "a year-long token that is not yet expired",
            &app,
            at(&with(json!({"iat": t - 60, "exp": t + 365 * 86_400}))),
            FailureReason::JwtLifetimeTooLong,
        ),
        (
            "no iat with a maximum lifetime",
            &app,
            at(&with(json!({"iat": null}))),
            FailureReason::JwtMissingClaim,
        ),
        (
            "iat an hour in the future",
            &app,
            at(&with(json!({"iat": t + 3600, "exp": t + 4000}))),
            FailureReason::JwtIssuedInFuture,
        ),
        (
            "iat an hour in the future, default issuer settings",
            &lax,
            i.rsa.sign(&with(json!({"iat": t + 3600, "exp": t + 4000}))),
            FailureReason::JwtIssuedInFuture,
        ),
        (
            "a string iat",
            &lax,
            i.rsa.sign(&with(json!({"iat": "yesterday"}))),
            FailureReason::JwtMalformed,
        ),
        (
            "sub twice",
            &app,
            sign_raw(
                &i.rsa,
                &header,
                &format!(r#"{{{inner},"sub":"someone-else"}}"#),
            ),
            FailureReason::JwtDuplicateKey,
        ),
        (
            "the tenant claim twice, the second another tenant's",
            &lax,
            sign_raw(
                &i.rsa,
                &header,
                &format!(r#"{{{inner},"slurm_tenant":"tenant-b"}}"#),
            ),
            FailureReason::JwtDuplicateKey,
        ),
        (
            "the role claim twice, spelled with an escape",
            &lax,
            sign_raw(
                &i.rsa,
                &header,
                &format!(r#"{{{inner},"slurm_\u0072ole":"operator"}}"#),
            ),
            FailureReason::JwtDuplicateKey,
        ),
        (
            "kid twice in the header",
            &lax,
            sign_raw(
                &i.rsa,
                &format!(r#"{{"alg":"RS256","kid":"{0}","kid":"{0}"}}"#, i.rsa.kid),
                &body,
            ),
            FailureReason::JwtDuplicateKey,
        ),
    ];
    for (name, app, jwt, want) in cases {
        let o = send(app, &[&bearer(&jwt)], None).await;
        assert_eq!(o.status, StatusCode::UNAUTHORIZED, "{name}: {o:?}");
        assert_eq!(o.reason, Some(want), "{name}");
        assert!(o.principal.is_none(), "{name}");
        assert_eq!(o.body, "unauthorized\n", "{name}: no detail for the client");
    }
    // The same bytes without the duplicate are a valid token: the refusal is the duplicate.
    let o = send(&lax, &[&bearer(&sign_raw(&i.rsa, &header, &body))], None).await;
    assert_eq!(o.status, StatusCode::OK, "{o:?}");
}

#[tokio::test]
async fn an_unknown_kid_flood_costs_the_issuer_at_most_one_fetch_per_interval() {
    let issuer = Issuer::start().await;
    let oidc = OidcConfig {
        jwks_url: Some(issuer.jwks_url()),
        jwks_min_refresh_seconds: 60,
        ..OidcConfig::new(issuer.url.clone(), vec![AUD.into()])
    };
    let cfg = AuthnConfig {
        oidc: vec![oidc.clone()],
        ..AuthnConfig::default()
    };
    let authn = Arc::new(Authenticator::new(&cfg).expect("config"));
    let app = app(authn.clone());
    let claims = issuer.claims(AUD, "tenant-a", "viewer");

    // Signed up front, so the flood arrives all at once.
    let forged: Vec<String> = (0..200)
        .map(|n| issuer.ed.sign_as(&format!("made-up-{n}"), &claims))
        .collect();
    let mut flood = tokio::task::JoinSet::new();
    for jwt in forged {
        let app = app.clone();
        flood.spawn(async move { send(&app, &[&bearer(&jwt)], None).await });
    }
    while let Some(o) = flood.join_next().await {
        let o = o.expect("task");
        assert_eq!(o.status, StatusCode::UNAUTHORIZED);
        assert_eq!(o.reason, Some(FailureReason::JwtUnknownKey));
    }
    assert_eq!(
        issuer.jwks_hits(),
        1,
        "200 unknown kids within one interval: one fetch"
    );
    assert_eq!(authn.stats().jwks_fetches, 1);

    // Known keys keep working from the cache, and a second wave costs nothing.
    let ok = send(&app, &[&bearer(&issuer.rsa.sign(&claims))], None).await;
    assert_eq!(ok.status, StatusCode::OK);
    for n in 0..20 {
        let jwt = issuer.ed.sign_as(&format!("again-{n}"), &claims);
        let o = send(&app, &[&bearer(&jwt)], None).await;
        assert_eq!(o.reason, Some(FailureReason::JwtUnknownKey));
    }
    assert_eq!(issuer.jwks_hits(), 1);

    // A key rotation: a new kid is picked up by the first refresh the interval allows.
    let quick = AuthnConfig {
        oidc: vec![OidcConfig {
            jwks_min_refresh_seconds: 1,
            ..oidc
        }],
        ..AuthnConfig::default()
    };
    let app = build(&quick);
    let ok = send(&app, &[&bearer(&issuer.rsa.sign(&claims))], None).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(issuer.jwks_hits(), 2);
    let rotated = SigningKey::generate(Algorithm::EdDSA, "ed-2");
    issuer.publish(&rotated);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let o = send(&app, &[&bearer(&rotated.sign(&claims))], None).await;
    assert_eq!(o.status, StatusCode::OK, "{o:?}");
    assert_eq!(issuer.jwks_hits(), 3);
}

#[tokio::test]
async fn an_unreachable_issuer_is_a_refusal_and_is_not_hammered() {
    // A port nothing listens on: bind, note, drop.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let url = format!("http://{addr}");
    let cfg = AuthnConfig {
        oidc: vec![OidcConfig::new(url.clone(), vec![AUD.into()])],
        introspection: Some(IntrospectionConfig::new(
            format!("{url}/introspect"),
            "gw",
            SecretString::new("s"),
        )),
        ..AuthnConfig::default()
    };
    let authn = Arc::new(Authenticator::new(&cfg).expect("config"));
    let app = app(authn.clone());
    let key = SigningKey::generate(Algorithm::EdDSA, "k");
    let jwt = key.sign(&json!({"iss": url, "sub": "x", "aud": AUD, "exp": now() + 60}));
    for _ in 0..3 {
        let o = send(&app, &[&bearer(&jwt)], None).await;
        assert_eq!(o.status, StatusCode::UNAUTHORIZED);
        assert_eq!(o.reason, Some(FailureReason::JwksUnavailable));
    }
    assert_eq!(
        authn.stats().jwks_fetches,
        1,
        "failed fetches are rate limited too"
    );
    let o = send(&app, &[&bearer("opaque-token")], None).await;
    assert_eq!(o.status, StatusCode::UNAUTHORIZED);
    assert_eq!(o.reason, Some(FailureReason::IntrospectionUnavailable));
    let o = send(&app, &[&bearer("opaque-token")], None).await;
    assert_eq!(o.reason, Some(FailureReason::IntrospectionUnavailable));
    assert_eq!(
        authn.stats().introspection_calls,
        2,
        "failures are not cached"
    );
}

#[tokio::test]
async fn introspection_accepts_active_tokens_refuses_inactive_ones_and_caches_both() {
    let s = setup().await;
    let app = build(&s.cfg);
    let i = &s.issuer;
    let t = now();
    i.set_answer(
        "opaque-active",
        json!({"active": true, "sub": "svc-1", "aud": AUD, "exp": t + 300,
               "token_type": "Bearer", "slurm_tenant": "tenant-b", "slurm_role": "viewer"}),
    );
    i.set_answer("opaque-inactive", json!({"active": false}));
    i.set_answer(
        "opaque-other-audience",
        json!({"active": true, "sub": "svc-2", "aud": "grafana", "exp": t + 300,
               "slurm_tenant": "tenant-b", "slurm_role": "viewer"}),
    );
    i.set_answer(
        "opaque-expired",
        json!({"active": true, "sub": "svc-3", "aud": AUD, "exp": t - 3600,
               "slurm_tenant": "tenant-b", "slurm_role": "viewer"}),
    );
    i.set_answer(
        "opaque-no-tenant",
        json!({"active": true, "sub": "svc-4", "aud": AUD, "exp": t + 300,
               "slurm_role": "viewer"}),
    );

    let o = send(&app, &[&bearer("opaque-active")], None).await;
    assert_eq!(o.status, StatusCode::OK, "{o:?}");
    let p = o.principal.expect("principal");
    assert_eq!(p.method, AuthMethod::Introspection);
    assert_eq!((p.id.as_str(), p.tenant), ("svc-1", tenant("tenant-b")));
    assert_eq!(i.introspect_hits(), 1);
    let o = send(&app, &[&bearer("opaque-active")], None).await;
    assert_eq!(o.status, StatusCode::OK);
    assert_eq!(i.introspect_hits(), 1, "positive answer cached");

    for (token, want) in [
        ("opaque-inactive", FailureReason::IntrospectionInactive),
        (
            "opaque-other-audience",
            FailureReason::IntrospectionRejected,
        ),
        ("opaque-expired", FailureReason::IntrospectionRejected),
        ("opaque-no-tenant", FailureReason::ClaimsUnmapped),
    ] {
        let before = i.introspect_hits();
        for _ in 0..3 {
            let o = send(&app, &[&bearer(token)], None).await;
            assert_eq!(o.status, StatusCode::UNAUTHORIZED, "{token}");
            assert_eq!(o.reason, Some(want), "{token}");
        }
        assert_eq!(
            i.introspect_hits(),
            before + 1,
            "{token}: negative answer cached"
        );
    }

    // The gateway authenticates itself to the endpoint: wrong client secret, no answer.
    let mut wrong = s.cfg.clone();
    if let Some(c) = wrong.introspection.as_mut() {
        c.client_secret = Some(SecretString::new("not-the-secret"));
    }
    let o = send(&build(&wrong), &[&bearer("opaque-active")], None).await;
    assert_eq!(o.status, StatusCode::UNAUTHORIZED);
    assert_eq!(o.reason, Some(FailureReason::IntrospectionUnavailable));
}

#[tokio::test]
async fn config_parses_from_toml_and_refuses_unknown_keys() {
    let (_, entry) = new_token(tenant("tenant-a"), Role::Viewer).expect("token");
    let text = format!(
        r#"
        [[client_certs]]
        identity = "scraper.tenant-a.example"
        tenant = "tenant-a"
        role = "viewer"

        [[api_tokens]]
        {}
        [[oidc]]
        issuer = "https://idp.example/realms/hpc"
        audiences = ["slurm-exporter"]
        algorithms = ["RS256", "EdDSA"]
        role_claim = "realm_access.roles"
        role_map = {{ "slurm-viewer" = "viewer", "slurm-operator" = "operator" }}
        allowed_tenants = ["tenant-a"]

        [introspection]
        url = "https://idp.example/oauth2/introspect"
        client_id = "slurm-gateway"
        client_secret = "s3cret"
        "#,
        toml::to_string(&entry).expect("entry")
    );
    let cfg: AuthnConfig = toml::from_str(&text).expect("parses");
    assert_eq!(cfg.api_tokens, vec![entry]);
    assert!(!format!("{cfg:?}").contains("s3cret"));
    Authenticator::new(&cfg).expect("valid");

    let typo = text.replace("audiences", "audience");
    assert!(toml::from_str::<AuthnConfig>(&typo).is_err());
    let bad_role = text.replace("\"operator\" }", "\"root\" }");
    assert!(toml::from_str::<AuthnConfig>(&bad_role).is_err());
    let hs = text.replace("\"RS256\", \"EdDSA\"", "\"HS256\"");
    let cfg: AuthnConfig = toml::from_str(&hs).expect("parses");
    assert!(Authenticator::new(&cfg).is_err(), "HS256 refused at load");
}
