//! Tenant isolation through the real binary over TLS: each tenant's scrape (API token or
//! client certificate) shows only its own accounts' series; an operator sees everything;
//! no or wrong credentials get 401, roles without a view get 403. Scraped with curl.

use e2e::{
    assert_promtool_ok, curl, free_loopback_port, new_token, run_exporter, toml, Exposition, Server,
};
use std::time::Duration;

fn accounts(e: &Exposition) -> Vec<String> {
    let mut a: Vec<String> = e
        .family("slurm_account_jobs")
        .filter_map(|(labels, _)| {
            labels
                .iter()
                .find(|(k, _)| k == "account")
                .map(|(_, v)| v.clone())
        })
        .collect();
    a.sort();
    a.dedup();
    a
}

#[test]
fn each_tenant_sees_only_its_accounts_and_strangers_see_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let made = run_exporter(&["dev-certs", "--out", d.to_str().expect("utf-8")]);
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
    let (alpha, alpha_entry) = new_token("alpha", "admin");
    let (beta, beta_entry) = new_token("beta", "admin");
    let (op, op_entry) = new_token("ops", "operator");
    let (viewer, viewer_entry) = new_token("alpha", "viewer");
    let (billing, billing_entry) = new_token("beta", "billing");
    std::fs::write(d.join("pii.key"), [42u8; 32]).expect("write the pseudonym key");
    let port = free_loopback_port();
    let config = format!(
        r#"{server}
{source}
[pii]
key_file = "{d}/pii.key"

{policies}
[[tenants]]
name = "alpha"
accounts = ["physics"]

[[tenants]]
name = "beta"
accounts = ["chemistry"]
partitions = ["gpu"]

[[tenants]]
name = "ops"
cluster = true

[[auth.client_certs]]
identity = "spiffe://slurm-exporter/tenant/alpha"
tenant = "alpha"
role = "admin"

{alpha_entry}
{beta_entry}
{op_entry}
{viewer_entry}
{billing_entry}
"#,
        server = toml::tls_server(port, d),
        source = toml::replay_source(),
        policies = toml::policies(None),
        d = d.display(),
    );
    let cfg = d.join("config.toml");
    std::fs::write(&cfg, config).expect("write config");
    let server = Server::start(&cfg, &d.join("server.log"));
    let url = format!("https://127.0.0.1:{port}");
    let ca = d.join("ca.pem");
    let ca = ca.to_str().expect("utf-8");
    let bearer = |t: &str| format!("Authorization: Bearer {t}");

    server.wait_until("ready", Duration::from_secs(30), || {
        curl(&format!("{url}/readyz"), &["--cacert", ca]).0 == 200
    });
    let scrape = |who: &str, extra: &[&str]| {
        let (code, body) = curl(
            &format!("{url}/metrics"),
            &[&["--cacert", ca], extra].concat(),
        );
        assert_eq!(code, 200, "{who}: {body}");
        assert_promtool_ok(who, body.as_bytes());
        Exposition::parse(&body).unwrap_or_else(|e| panic!("{who}: {e}"))
    };

    let a = scrape("alpha token", &["-H", &bearer(&alpha)]);
    assert_eq!(accounts(&a), ["physics"]);
    assert!(
        a.get("slurm_cluster_nodes_configured", &[]).is_none(),
        "no cluster grant"
    );
    assert!(
        a.family("slurm_exporter_source_up").next().is_none(),
        "operators only"
    );
    assert!(
        a.family("slurm_user_jobs")
            .all(|(l, _)| l.iter().any(|(k, v)| k == "account" && v == "physics")),
        "alpha sees only its own users"
    );

    let b = scrape("beta token", &["-H", &bearer(&beta)]);
    assert_eq!(accounts(&b), ["chemistry"]);
    assert!(
        b.family("slurm_partition_jobs")
            .all(|(l, _)| l.iter().any(|(k, v)| k == "partition" && v == "gpu")),
        "beta's partition grant is gpu only"
    );

    let o = scrape("operator token", &["-H", &bearer(&op)]);
    assert_eq!(accounts(&o), ["biology", "chemistry", "physics"]);
    assert!(o.family("slurm_exporter_source_up").next().is_some());

    let cert = d.join("client-alpha.pem");
    let key = d.join("client-alpha-key.pem");
    let c = scrape(
        "alpha certificate",
        &[
            "--cert",
            cert.to_str().expect("utf-8"),
            "--key",
            key.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(accounts(&c), ["physics"]);

    for (who, args, want) in [
        ("no credentials", vec![], 401),
        (
            "wrong token",
            vec!["-H".to_owned(), bearer("sxp_nope_nope")],
            401,
        ),
        (
            "token twice",
            vec![
                "-H".to_owned(),
                bearer(&alpha),
                "-H".to_owned(),
                bearer(&beta),
            ],
            400,
        ),
        (
            "billing (no /metrics view)",
            vec!["-H".to_owned(), bearer(&billing)],
            403,
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, body) = curl(
            &format!("{url}/metrics"),
            &[&["--cacert", ca], &args[..]].concat(),
        );
        assert_eq!(code, want, "{who}: {body}");
        assert!(!body.contains("slurm_"), "{who} must see no series");
    }
    // A viewer of alpha: alpha's series, every user name a per-tenant pseudonym.
    let v = scrape("alpha viewer token", &["-H", &bearer(&viewer)]);
    assert_eq!(accounts(&v), ["physics"]);
    let users: Vec<String> = v
        .family("slurm_user_jobs")
        .filter_map(|(l, _)| l.iter().find(|(k, _)| k == "user").map(|(_, u)| u.clone()))
        .collect();
    assert!(!users.is_empty());
    assert!(
        users.iter().all(|u| u.starts_with("u1_") && u.len() == 19),
        "pseudonyms: {users:?}"
    );
    let (_, raw) = curl(
        &format!("{url}/metrics"),
        &["--cacert", ca, "-H", &bearer(&viewer)],
    );
    for name in ["alice", "bob", "carol", "dave"] {
        assert!(
            !raw.contains(&format!("\"{name}\"")),
            "{name} in clear for a viewer"
        );
    }
    // Health stays open: it says nothing about the cluster.
    assert_eq!(curl(&format!("{url}/healthz"), &["--cacert", ca]).0, 200);

    let status = server
        .terminate(Duration::from_secs(15))
        .expect("server stops");
    assert!(status.success(), "{status}");
}
