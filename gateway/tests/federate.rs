//! `/federate?match[]=` through the whole stack (real API tokens, the shipped casbin model,
//! tenant scopes, pseudonyms and the quota) over HTTP on 127.0.0.1: what each principal gets,
//! and that no other tenant's series ever shows. Attack-shaped requests are in `attacks.rs`.

#[path = "support/gateway.rs"]
mod gw;

use gateway::layer::quota::{OnExceed, QuotaConfig};
use gw::{bearer, federate_path, get, start, Options, Policy, Resp, ALPHA_MARKERS, BETA_MARKERS};

async fn fed(g: &gw::Gateway, token: &str, selectors: &[&str]) -> Resp {
    let (n, v) = bearer(token);
    get(g.addr, &federate_path(selectors), &[(n, &v)]).await
}

#[tokio::test]
async fn match_all_federates_exactly_what_metrics_shows_alpha_and_nothing_of_beta() {
    let g = start(Options::default()).await;
    let (n, v) = bearer(&g.tokens.alpha_viewer);
    let metrics = get(g.addr, "/metrics", &[(n, &v)]).await;
    assert_eq!(metrics.status, 200);
    let r = fed(&g, &g.tokens.alpha_viewer, &["{__name__=~\".+\"}"]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(r.body, metrics.body, "the same view, the same encoder");
    r.assert_free_of(&BETA_MARKERS, "alpha viewer");
    r.assert_free_of(&["alice", "slurm_exporter_"], "alpha viewer");
    assert!(r.body.contains(&g.alpha_pseudonym("alice")), "{}", r.body);
    // alpha: 2 account, 2 user (alice and the folded series), 2 cluster, 1 partition, and the
    // histogram's 3 buckets, sum and count.
    assert_eq!(r.samples().len(), 12, "{}", r.body);
    // Same for beta: its own, nothing of alpha's (beta holds no cluster-wide series).
    let r = fed(&g, &g.tokens.beta_viewer, &["{__name__=~\".+\"}"]).await;
    assert_eq!(r.status, 200);
    r.assert_free_of(&ALPHA_MARKERS, "beta viewer");
    r.assert_free_of(&["__overflow__", "slurm_cluster_cpus"], "beta viewer");
    assert_eq!(r.samples().len(), 9, "{}", r.body);
}

#[tokio::test]
async fn selectors_pick_single_series_and_several_match_params_are_a_union() {
    let g = start(Options::default()).await;
    let r = fed(
        &g,
        &g.tokens.alpha_viewer,
        &[
            "slurm_account_jobs{state=\"running\"}",
            "slurm_cluster_cpus",
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.samples(),
        [
            "slurm_account_jobs{account=\"alpha-acct\",state=\"running\"} 3",
            "slurm_cluster_cpus{state=\"idle\"} 100",
            "slurm_cluster_cpus{state=\"allocated\"} 28",
        ]
    );
    // Sample names as Prometheus stores them; `le` as written.
    let r = fed(
        &g,
        &g.tokens.alpha_viewer,
        &["slurm_partition_job_wait_seconds_bucket{le=\"+Inf\"}"],
    )
    .await;
    assert_eq!(
        r.samples(),
        ["slurm_partition_job_wait_seconds_bucket{partition=\"alpha-part\",le=\"+Inf\"} 3"]
    );
    let r = fed(&g, &g.tokens.ops_operator, &["slurm_exporter_polls"]).await;
    assert_eq!(
        (r.status, r.samples().len()),
        (200, 0),
        "counters are _total"
    );
    let r = fed(&g, &g.tokens.ops_operator, &["slurm_exporter_polls_total"]).await;
    assert_eq!(
        r.samples(),
        ["slurm_exporter_polls_total{source=\"sim\"} 42"]
    );
}

#[tokio::test]
async fn viewers_match_user_labels_against_pseudonyms_never_clear_names() {
    let g = start(Options::default()).await;
    for probe in [
        "slurm_user_jobs{user=\"alice\"}",
        "slurm_user_jobs{user=~\"a.*\"}",
        "slurm_user_jobs{user=~\"alice|bob\"}",
        "{user=\"bob\"}",
    ] {
        let r = fed(&g, &g.tokens.alpha_viewer, &[probe]).await;
        assert_eq!(r.status, 200, "{probe}");
        assert!(r.samples().is_empty(), "{probe}: {}", r.body);
    }
    let pseudonym = g.alpha_pseudonym("alice");
    let r = fed(
        &g,
        &g.tokens.alpha_viewer,
        &[format!("slurm_user_jobs{{user=\"{pseudonym}\"}}").as_str()],
    )
    .await;
    assert_eq!(
        r.samples(),
        [format!(
            "slurm_user_jobs{{user=\"{pseudonym}\",account=\"alpha-acct\",state=\"running\"}} 2"
        )]
    );
    // beta's pseudonym of alice is not alpha's: nothing links the two tenants' views.
    let beta_view = g
        .pii
        .pseudonym(&gw::tenant("beta"), "bob")
        .expect("pseudonym");
    let r = fed(
        &g,
        &g.tokens.alpha_viewer,
        &[format!("{{user=\"{beta_view}\"}}").as_str()],
    )
    .await;
    assert!(r.samples().is_empty(), "{}", r.body);
}

#[tokio::test]
async fn admins_match_clear_names_within_their_scope_only() {
    let g = start(Options::default()).await;
    let r = fed(
        &g,
        &g.tokens.alpha_admin,
        &["slurm_user_jobs{user=\"alice\"}"],
    )
    .await;
    assert_eq!(
        r.samples(),
        ["slurm_user_jobs{user=\"alice\",account=\"alpha-acct\",state=\"running\"} 2"]
    );
    let r = fed(
        &g,
        &g.tokens.alpha_admin,
        &["slurm_user_jobs{user=\"bob\"}"],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.samples().is_empty(), "bob is beta's: {}", r.body);
}

#[tokio::test]
async fn operators_federate_the_whole_store_filtered_by_selectors() {
    let g = start(Options::default()).await;
    let r = fed(&g, &g.tokens.ops_operator, &["{account=\"beta-acct\"}"]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.samples().len(), 3, "{}", r.body);
    assert!(
        r.body.contains("user=\"bob\""),
        "operators see names in clear"
    );
    let r = fed(&g, &g.tokens.ops_operator, &["{__name__=~\".+\"}"]).await;
    let (n, v) = bearer(&g.tokens.ops_operator);
    let metrics = get(g.addr, "/metrics", &[(n, &v)]).await;
    assert_eq!(r.body, metrics.body);
}

#[tokio::test]
async fn the_tenant_scope_is_appended_and_explicit_requests_for_others_are_refused() {
    let g = start(Options::default()).await;
    let all = fed(&g, &g.tokens.alpha_viewer, &["{__name__=~\".+\"}"]).await;
    // `tenant` names the caller's view.
    let r = fed(&g, &g.tokens.alpha_viewer, &["{tenant=\"alpha\"}"]).await;
    assert_eq!((r.status, &r.body), (200, &all.body));
    // A regex that also names beta's account still returns alpha's only: appended.
    let r = fed(
        &g,
        &g.tokens.alpha_viewer,
        &["slurm_account_jobs{account=~\"beta-acct|alpha-acct\"}"],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.samples().len(), 2);
    r.assert_free_of(&BETA_MARKERS, "append, never replace");
    // The folded series are the cluster's, which alpha holds.
    let r = fed(&g, &g.tokens.alpha_viewer, &["{account=\"__overflow__\"}"]).await;
    assert_eq!(r.samples().len(), 1, "{}", r.body);
    // Explicitly another tenant's: 403 naming the selector, not an empty 200.
    for (sel, says) in [
        ("{account=\"beta-acct\"}", "match[] #1: the account matcher"),
        (
            "slurm_account_jobs{account=~\"beta.*\"}",
            "match[] #1: the account matcher",
        ),
        ("{tenant=\"beta\"}", "match[] #1: the tenant matcher"),
        ("up{tenant!=\"alpha\"}", "match[] #1: the tenant matcher"),
        ("up{tenant=\"\"}", "match[] #1: the tenant matcher"),
    ] {
        let r = fed(&g, &g.tokens.alpha_viewer, &[sel]).await;
        assert_eq!(r.status, 403, "{sel}");
        assert!(r.body.starts_with(says), "{sel}: {}", r.body);
        r.assert_free_of(&BETA_MARKERS, sel);
    }
    // The same selector is fine for the tenant it names.
    let r = fed(&g, &g.tokens.beta_viewer, &["{account=\"beta-acct\"}"]).await;
    assert_eq!((r.status, r.samples().len()), (200, 3));
}

#[tokio::test]
async fn federate_needs_its_own_permission_besides_a_metrics_view() {
    let g = start(Options {
        policy: Policy::WithoutFederate,
        ..Options::default()
    })
    .await;
    let r = fed(&g, &g.tokens.alpha_viewer, &["slurm_cluster_cpus"]).await;
    assert_eq!((r.status, r.body.as_str()), (403, "forbidden\n"));
    let (n, v) = bearer(&g.tokens.alpha_viewer);
    assert_eq!(get(g.addr, "/metrics", &[(n, &v)]).await.status, 200);
    let r = fed(&g, &g.tokens.ops_operator, &["slurm_cluster_cpus"]).await;
    assert_eq!((r.status, r.samples().len()), (200, 2));
    // Billing may federate nothing even where federate is granted to viewers and admins.
    let g = start(Options::default()).await;
    let r = fed(&g, &g.tokens.alpha_billing, &["slurm_cluster_cpus"]).await;
    assert_eq!((r.status, r.body.as_str()), (403, "forbidden\n"));
}

#[tokio::test]
async fn openmetrics_and_gzip_follow_the_request_headers() {
    let g = start(Options::default()).await;
    let (n, v) = bearer(&g.tokens.alpha_viewer);
    let path = federate_path(&["slurm_cluster_cpus"]);
    let plain = get(g.addr, &path, &[(n, &v)]).await;
    let om = get(
        g.addr,
        &path,
        &[
            (n, &v),
            ("Accept", "application/openmetrics-text;version=1.0.0"),
        ],
    )
    .await;
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    let gz = get(g.addr, &path, &[(n, &v), ("Accept-Encoding", "gzip")]).await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.body, plain.body, "the client gunzipped it");
    assert_eq!(plain.header("vary"), Some("Accept, Accept-Encoding"));
}

#[tokio::test]
async fn the_quota_is_the_views_quota() {
    // alpha's view holds 12 series: cluster 2, partitions 6, users 2, accounts 2. A quota of
    // 8 keeps cluster and partitions; federation cannot reach the families left out.
    let quota = |on_exceed| Options {
        quota: QuotaConfig {
            metrics_per_tenant: 8,
            on_exceed,
        },
        ..Options::default()
    };
    let g = start(quota(OnExceed::Truncate)).await;
    let r = fed(&g, &g.tokens.alpha_viewer, &["slurm_user_jobs"]).await;
    assert_eq!(r.status, 200);
    assert!(r.samples().is_empty(), "{}", r.body);
    assert_eq!(r.header("x-slurm-exporter-truncated"), Some("8/12"));
    let r = fed(&g, &g.tokens.alpha_viewer, &["slurm_cluster_cpus"]).await;
    assert_eq!(r.samples().len(), 2);
    assert_eq!(r.header("x-slurm-exporter-truncated"), Some("8/12"));
    // Operators are not under a tenant quota.
    let r = fed(&g, &g.tokens.ops_operator, &["slurm_user_jobs"]).await;
    assert_eq!(
        (r.samples().len(), r.header("x-slurm-exporter-truncated")),
        (3, None)
    );

    let g = start(quota(OnExceed::Refuse)).await;
    let r = fed(&g, &g.tokens.alpha_viewer, &["slurm_cluster_cpus"]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (413, "series quota exceeded\n")
    );
}

#[tokio::test]
async fn bad_requests_are_400_naming_what_is_wrong() {
    let g = start(Options::default()).await;
    let (n, v) = bearer(&g.tokens.alpha_viewer);
    let too_many = vec!["match%5B%5D=up"; 33].join("&");
    let long = format!("up{{a=\"{}\"}}", "x".repeat(5000));
    let regexes: Vec<String> = (0..32)
        .map(|i| format!("{{__name__=~\"x{i}.+\",a=~\"[a-z]+\",b!~\"[0-9]+\"}}"))
        .collect();
    let cases: [(String, &str); 10] = [
        ("/federate".into(), "at least one match[] is required"),
        (
            "/federate?match[]=up&step=5".into(),
            "unknown query parameter",
        ),
        ("/federate?match=up".into(), "unknown query parameter"),
        (
            federate_path(&["{job=~\".*\"}"]),
            "match[] #1: every matcher matches the empty string",
        ),
        (
            federate_path(&["up", "up{"]),
            "match[] #2: expected a label name at byte 3",
        ),
        (
            federate_path(&["{__name__=~\"x)|(.*\"}"]),
            "match[] #1: regex for label __name__ is invalid",
        ),
        (format!("/federate?{too_many}"), "more than 32 match[]"),
        (
            federate_path(&[long.as_str()]),
            "match[] #1: selector longer than 4096 bytes",
        ),
        ("/federate?match[]=%E0%80".into(), "bad URL encoding"),
        (
            federate_path(&regexes.iter().map(String::as_str).collect::<Vec<_>>()),
            "match[] #22: more than 64 regex matchers in one request",
        ),
    ];
    for (path, says) in cases {
        let r = get(g.addr, &path, &[(n, &v)]).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.starts_with(says), "{path}: {:?}", r.body);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(r.body.len() < 200, "short: {}", r.body);
    }
}

#[tokio::test]
async fn without_auth_federate_filters_the_whole_store() {
    let addr = gw::start_open().await;
    let r = get(addr, &federate_path(&["{account=\"beta-acct\"}"]), &[]).await;
    assert_eq!((r.status, r.samples().len()), (200, 3), "{}", r.body);
    let r = get(addr, &federate_path(&["{__name__=~\".+\"}"]), &[]).await;
    let metrics = get(addr, "/metrics", &[]).await;
    assert_eq!(r.body, metrics.body);
    let r = get(addr, &federate_path(&["{x=\"\"}"]), &[]).await;
    assert_eq!(r.status, 400, "the same selector rules");
}
