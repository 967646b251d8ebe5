//! The audit layer in process: every answer gets a record with the inner layers' facts, and
//! when the record cannot be written the request is refused (fail closed) unless the site
//! chose to serve anyway.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use gateway::layer::audit::{
    AuditConfig, AuditLayer, Auditor, Durability, OnFailure, REQUEST_ID_HEADER,
};
use std::sync::Arc;
use tower::ServiceExt;

fn config(dir: &std::path::Path, on_failure: OnFailure, durability: Durability) -> AuditConfig {
    AuditConfig {
        dir: dir.join("log"),
        key_file: dir.join("keys/keyring.json"),
        signing_key_file: dir.join("keys/signing.pem"),
        public_key_file: None,
        on_failure,
        durability,
        checkpoint_every_records: 1000,
        checkpoint_interval_seconds: 60,
        retention_days: None,
        publish: None,
    }
}

fn app(a: Arc<Auditor>) -> Router {
    Router::new()
        .route("/metrics", get(|| async { "slurm_up 1\n" }))
        .layer(AuditLayer::new(
            Some(a),
            Arc::new(gateway::metrics::GatewayMetrics::new()),
        ))
}

async fn status(app: &Router, path: &str) -> (StatusCode, Option<String>) {
    let res = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let id = res
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (res.status(), id)
}

#[tokio::test]
async fn records_every_answer_and_keys_are_made_at_first_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), OnFailure::Refuse, Durability::Fsync);
    let a = Arc::new(Auditor::open(&cfg).expect("open"));
    assert!(cfg.key_file.exists() && cfg.signing_key_file.exists());
    assert!(
        cfg.public_key_path().exists(),
        "the public key is written for auditors"
    );
    let app = app(a.clone());
    let (ok, id1) = status(&app, "/metrics").await;
    let (missing, id2) = status(&app, "/nope?token=secret").await;
    assert_eq!(ok, StatusCode::OK);
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert_ne!(id1, id2, "request ids are unique");
    a.close();
    let public = audit::load_public_key(&cfg.public_key_path()).expect("public key");
    let report = audit::verify(&cfg.dir, Some(&public)).expect("intact");
    assert_eq!(report.events, 2);
    let ring = audit::Keyring::load(&cfg.key_file).expect("keyring");
    let events: Vec<serde_json::Value> = audit::export(&cfg.dir, &ring, None, None, None)
        .collect::<Result<_, _>>()
        .expect("export");
    assert_eq!(events[0]["event"]["route"], "/metrics");
    assert_eq!(events[0]["event"]["status"], 200);
    assert_eq!(events[0]["event"]["request_id"].as_str(), id1.as_deref());
    assert_eq!(
        events[1]["event"]["route"], "/nope",
        "no query string recorded"
    );
    assert_eq!(events[1]["event"]["decision"], "deny");
    // Reopening continues the same log with the same keys.
    let again = Auditor::open(&cfg).expect("reopen");
    again.close();
    assert!(audit::verify(&cfg.dir, Some(&public)).is_ok());
}

#[tokio::test]
async fn fails_closed_unless_the_site_serves_anyway() {
    for (durability, on_failure, want) in [
        (
            Durability::Fsync,
            OnFailure::Refuse,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            Durability::Queued,
            OnFailure::Refuse,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (Durability::Fsync, OnFailure::Serve, StatusCode::OK),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Arc::new(Auditor::open(&config(dir.path(), on_failure, durability)).expect("open"));
        let app = app(a.clone());
        assert_eq!(status(&app, "/metrics").await.0, StatusCode::OK);
        // The writer is gone: no record can be written any more.
        a.close();
        let (got, _) = status(&app, "/metrics").await;
        assert_eq!(got, want, "{durability:?} {on_failure:?}");
    }
}

#[tokio::test]
async fn a_keyring_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), OnFailure::Refuse, Durability::Fsync);
    Auditor::open(&cfg).expect("open").close();
    std::fs::set_permissions(&cfg.key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Auditor::open(&cfg).expect_err("refused");
    assert!(err.contains("audit.key_file"), "{err}");
}
