//! The attack-case table: requests an attacker would try against the whole gateway stack
//! (real API tokens, the shipped casbin model, tenant scopes, pseudonyms, the quota, rate
//! limits and the body limit) over HTTP on 127.0.0.1, each row asserting the status AND that
//! no series the caller may not see is in the body. `ATTACKS.md` lists every case and where it
//! is tested; keep the two in step.
//!
//! JWT and other credential attacks are covered in `authn.rs`, against a real OIDC issuer,
//! and connection and handshake attacks in `connections.rs` and `tls.rs`; they are not
//! repeated here:
//!
//! | attack                                                   | test in `authn.rs`                                             |
//! |----------------------------------------------------------|----------------------------------------------------------------|
//! | `alg: none`                                              | `forged_expired_and_misdirected_jwts_are_refused`              |
//! | HS256 signed with the RSA public key (with and without kid) | `forged_expired_and_misdirected_jwts_are_refused`           |
//! | RS256 header naming an Ed25519 key; another key claiming a published kid | `forged_expired_and_misdirected_jwts_are_refused` |
//! | payload swapped after signing; `a.b.c`                   | `forged_expired_and_misdirected_jwts_are_refused`              |
//! | expired, not yet valid, wrong audience, wrong issuer, issuer with a trailing slash | `forged_expired_and_misdirected_jwts_are_refused` |
//! | no kid, no exp, no sub, no tenant claim, unknown role    | `forged_expired_and_misdirected_jwts_are_refused`              |
//! | `typ` other than `at+jwt`, lifetime over the maximum, `iat` in the future, JSON keys twice | `jwt_type_lifetime_issue_time_and_duplicate_keys_are_checked` |
//! | unknown-kid flood (JWKS refetch amplification)           | `an_unknown_kid_flood_costs_the_issuer_at_most_one_fetch_per_interval` |
//! | unreachable issuer                                       | `an_unreachable_issuer_is_a_refusal_and_is_not_hammered`       |
//! | revoked, altered, malformed API tokens; wrong scheme; empty bearer | `api_tokens_resolve_to_their_own_tenant_and_nothing_else_gets_in` |
//! | duplicate `Authorization` (layer level)                  | `duplicate_authorization_headers_are_refused_never_first_wins` |
//! | inactive introspected tokens                             | `introspection_accepts_active_tokens_refuses_inactive_ones_and_caches_both` |

#[path = "support/gateway.rs"]
mod gw;

use gw::{
    bearer, federate_path, request, send_pipelined, send_raw, start, url_encode, Gateway, Options,
    Resp, ALPHA_MARKERS, BETA_MARKERS,
};
use std::io::Write as _;

/// What a body may not show: beta's series, alice in clear (alpha's viewers see a pseudonym)
/// and the exporter's own health (operators only).
const NOT_FOR_ALPHA_VIEWER: [&str; 5] = [
    BETA_MARKERS[0],
    BETA_MARKERS[1],
    BETA_MARKERS[2],
    "alice",
    "slurm_exporter_",
];
/// An unauthenticated or refused answer shows no series at all.
const NOTHING: [&str; 7] = [
    ALPHA_MARKERS[0],
    ALPHA_MARKERS[1],
    ALPHA_MARKERS[2],
    BETA_MARKERS[0],
    BETA_MARKERS[1],
    BETA_MARKERS[2],
    "slurm_",
];

/// One row: a request exactly as sent, the status it must get, what its body may not show.
struct Row {
    name: String,
    request: Vec<u8>,
    status: u16,
    forbidden: &'static [&'static str],
    /// Series alpha's viewer must see in a 200 (proves the answer is alpha's view).
    expect_alpha_view: bool,
}

fn row(
    name: impl Into<String>,
    request: Vec<u8>,
    status: u16,
    forbidden: &'static [&'static str],
) -> Row {
    Row {
        name: name.into(),
        request,
        status,
        forbidden,
        expect_alpha_view: false,
    }
}

/// A row answered with alpha's viewer's whole view: 200, alpha's series, nothing else.
fn alpha_view(name: impl Into<String>, request: Vec<u8>) -> Row {
    Row {
        expect_alpha_view: true,
        ..row(name, request, 200, &NOT_FOR_ALPHA_VIEWER)
    }
}

async fn run(g: &Gateway, rows: Vec<Row>) -> usize {
    let mut wrong = Vec::new();
    let n = rows.len();
    for r in rows {
        let resp: Resp = send_raw(g.addr, "127.0.0.1", &r.request).await;
        if resp.status != r.status {
            wrong.push(format!(
                "{}: status {} (want {}): {:?}",
                r.name,
                resp.status,
                r.status,
                resp.body.chars().take(200).collect::<String>()
            ));
            continue;
        }
        if let Some(m) = r.forbidden.iter().find(|m| resp.body.contains(**m)) {
            wrong.push(format!("{}: the body leaks {m:?}", r.name));
        }
        if r.expect_alpha_view && !resp.body.contains("alpha-acct") {
            wrong.push(format!("{}: not alpha's view: {:?}", r.name, resp.body));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {n} rows failed:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    n
}

fn get_req(target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    request("GET", target, headers, &[])
}

/// concatenated gzip members of 1 MiB of zeros each: `members` MiB once inflated, about
/// 1 KiB each on the wire.
fn gzip_bomb(members: usize) -> Vec<u8> {
    let mut one = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    one.write_all(&vec![0u8; 1 << 20]).expect("compress");
    let one = one.finish().expect("compress");
    one.repeat(members)
}

#[tokio::test]
async fn credentials_and_identity_headers() {
    let g = start(Options::default()).await;
    let alpha = format!("Bearer {}", g.tokens.alpha_viewer);
    let beta = format!("Bearer {}", g.tokens.beta_viewer);
    let (unknown, _) = gateway::layer::authn::token::new_token(
        gw::tenant("alpha"),
        gateway::tenancy::Role::Operator,
    )
    .expect("token");
    let unknown = format!("Bearer {unknown}");
    let a = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = vec![("Authorization", alpha.as_str())];
        h.extend_from_slice(extra);
        h
    };
    let fed_all = federate_path(&["{__name__=~\".+\"}"]);
    let rows = vec![
        row(
            "no credentials, /metrics",
            get_req("/metrics", &[]),
            401,
            &NOTHING,
        ),
        row(
            "no credentials, /federate",
            get_req(&fed_all, &[]),
            401,
            &NOTHING,
        ),
        row(
            "a well-formed token the gateway does not know",
            get_req("/metrics", &[("Authorization", &unknown)]),
            401,
            &NOTHING,
        ),
        row(
            "garbage token",
            get_req("/metrics", &[("Authorization", "Bearer wrong-token")]),
            401,
            &NOTHING,
        ),
        row(
            "alpha's token in the Basic scheme",
            get_req(
                "/metrics",
                &[("Authorization", &format!("Basic {}", g.tokens.alpha_viewer))],
            ),
            401,
            &NOTHING,
        ),
        row(
            "duplicate Authorization: alpha's, then beta's",
            get_req(
                "/metrics",
                &[("Authorization", &alpha), ("Authorization", &beta)],
            ),
            400,
            &NOTHING,
        ),
        row(
            "duplicate Authorization: the same token twice",
            get_req(
                "/metrics",
                &[("Authorization", &alpha), ("Authorization", &alpha)],
            ),
            400,
            &NOTHING,
        ),
        row(
            "duplicate Authorization in two spellings, on /federate",
            get_req(
                &fed_all,
                &[("authorization", &alpha), ("AUTHORIZATION", &beta)],
            ),
            400,
            &NOTHING,
        ),
        alpha_view(
            "X-Scope-OrgID: beta as alpha's viewer",
            get_req("/metrics", &a(&[("X-Scope-OrgID", "beta")])),
        ),
        alpha_view(
            "X-Scope-OrgID: beta as alpha's viewer, /federate",
            get_req(&fed_all, &a(&[("X-Scope-OrgID", "beta")])),
        ),
        alpha_view(
            "X-Remote-User: admin as alpha's viewer (names stay pseudonyms)",
            get_req("/metrics", &a(&[("X-Remote-User", "admin")])),
        ),
        alpha_view(
            "proxy identity headers all at once as alpha's viewer",
            get_req(
                &fed_all,
                &a(&[
                    ("X-Remote-User", "admin"),
                    ("X-Forwarded-User", "operator"),
                    ("X-Auth-Request-User", "ops"),
                    ("X-Tenant", "beta"),
                    ("X-Role", "operator"),
                    ("X-Scope-OrgID", "beta|alpha"),
                    (
                        "X-Forwarded-Client-Cert",
                        "By=spiffe://x;URI=scraper.tenant-b.example",
                    ),
                ]),
            ),
        ),
        row(
            "X-Scope-OrgID: beta without credentials",
            get_req(
                "/metrics",
                &[("X-Scope-OrgID", "beta"), ("X-Remote-User", "admin")],
            ),
            401,
            &NOTHING,
        ),
        row(
            "an Authorization header of 300 KiB",
            get_req(
                "/metrics",
                &[(
                    "Authorization",
                    &format!("Bearer sxp_{}", "A".repeat(300 << 10)),
                )],
            ),
            // Refused as malformed by authentication (under hyper's ~400 KiB head limit).
            400,
            &NOTHING,
        ),
    ];
    assert_eq!(run(&g, rows).await, 14);
}

#[tokio::test]
async fn spoofed_forwarding_headers_do_not_change_the_per_ip_key() {
    // 3 requests a minute per IP: unauthenticated requests count too (the limit sits before
    // authentication), whatever the forwarding headers claim.
    let g = start(Options {
        rate_limit: gw::limits(3, 3),
        ..Options::default()
    })
    .await;
    let spoofs: [&[(&str, &str)]; 4] = [
        &[("X-Forwarded-For", "203.0.113.1")],
        &[
            ("X-Forwarded-For", "203.0.113.2, 10.0.0.1"),
            ("X-Real-IP", "203.0.113.2"),
        ],
        &[
            ("Forwarded", "for=198.51.100.7"),
            ("True-Client-IP", "198.51.100.7"),
        ],
        &[
            ("X-Forwarded-For", "198.51.100.8"),
            ("X-Client-IP", "198.51.100.8"),
        ],
    ];
    let mut statuses = Vec::new();
    for h in spoofs {
        let r = send_raw(g.addr, "127.0.0.5", &get_req("/metrics", h)).await;
        r.assert_free_of(&NOTHING, "spoofed forwarding header");
        statuses.push(r.status);
    }
    assert_eq!(statuses, [401, 401, 401, 429], "one peer, one key");
    // Another peer address is another key; the spoofing peer stays limited with credentials.
    let r = send_raw(g.addr, "127.0.0.6", &get_req("/metrics", &[])).await;
    assert_eq!(r.status, 401);
    let (n, v) = bearer(&g.tokens.alpha_viewer);
    let r = send_raw(
        g.addr,
        "127.0.0.5",
        &get_req("/metrics", &[(n, &v), ("X-Forwarded-For", "127.0.0.6")]),
    )
    .await;
    assert_eq!(r.status, 429);
    r.assert_free_of(&NOTHING, "rate limited");
}

#[tokio::test]
async fn path_tricks_never_reach_data_without_credentials() {
    let g = start(Options::default()).await;
    let alpha = format!("Bearer {}", g.tokens.alpha_viewer);
    // (target, status without credentials, status with alpha's viewer token)
    let tricks: [(&str, u16, u16); 14] = [
        ("//metrics", 404, 404),
        ("/%6detrics", 404, 404),
        ("/%6Detrics", 404, 404),
        ("/metrics/..", 404, 404),
        ("/metrics/", 404, 404),
        ("/METRICS", 404, 404),
        ("/Metrics", 404, 404),
        ("/metrics;x", 404, 404),
        ("/./metrics", 404, 404),
        ("/healthz/../metrics", 404, 404),
        ("/metrics%00", 404, 404),
        ("/metrics?x=1", 401, 200),
        ("http://127.0.0.1/metrics", 401, 200),
        ("/federate/..?match[]=up", 404, 404),
    ];
    let mut rows = Vec::new();
    for (target, anonymous, as_alpha) in tricks {
        rows.push(row(
            format!("{target} without credentials"),
            get_req(target, &[]),
            anonymous,
            &NOTHING,
        ));
        let name = format!("{target} as alpha's viewer");
        let req = get_req(target, &[("Authorization", &alpha)]);
        rows.push(match as_alpha {
            200 => alpha_view(name, req),
            status => row(name, req, status, &NOTHING),
        });
    }
    rows.push(row(
        "HEAD /metrics without credentials",
        // No body comes back to a HEAD: the server closes, so the client knows it is done.
        request("HEAD", "/metrics", &[("Connection", "close")], &[]),
        401,
        &NOTHING,
    ));
    rows.push(row(
        "POST /metrics without credentials",
        request("POST", "/metrics", &[("Content-Length", "0")], &[]),
        401,
        &NOTHING,
    ));
    rows.push(row(
        "POST /federate as alpha's viewer",
        request(
            "POST",
            "/federate",
            &[("Authorization", &alpha), ("Content-Length", "0")],
            &[],
        ),
        405,
        &NOTHING,
    ));
    assert_eq!(run(&g, rows).await, 31);
}

#[tokio::test]
async fn federate_selectors_that_reach_for_other_tenants() {
    let g = start(Options::default()).await;
    let alpha = format!("Bearer {}", g.tokens.alpha_viewer);
    let as_alpha = |target: &str| get_req(target, &[("Authorization", alpha.as_str())]);
    let f = |sels: &[&str]| as_alpha(&federate_path(sels));
    let long = format!("slurm_account_jobs{{account=~\"{}\"}}", "a|".repeat(3000));
    let huge = format!("up{{a=\"{}\"}}", "x".repeat(64 << 10));
    let too_many: Vec<&str> = vec!["slurm_cluster_cpus"; 33];
    let a_thousand: Vec<&str> = vec!["{__name__=~\"(a|b)+\"}"; 1000];
    let regexes: Vec<String> = (0..32)
        .map(|i| format!("{{__name__=~\"x{i}.+\",a=~\"[a-z]+\",b!~\"[0-9]+\"}}"))
        .collect();
    let regexes: Vec<&str> = regexes.iter().map(String::as_str).collect();
    let rows = vec![
        row(
            "duplicate match[]: the second selects beta's account",
            f(&["{account=\"alpha-acct\"}", "{account=\"beta-acct\"}"]),
            403,
            &NOTHING,
        ),
        row(
            "duplicate match[]: a match-all, then beta's account",
            f(&[
                "{__name__=~\".+\"}",
                "slurm_user_jobs{account=\"beta-acct\"}",
            ]),
            403,
            &NOTHING,
        ),
        row(
            "duplicate match[]: a bad one after a good one",
            f(&["slurm_cluster_cpus", "{job=~\".*\"}"]),
            400,
            &NOTHING,
        ),
        row(
            "match[] raw, unencoded, then an encoded one for beta",
            as_alpha(&format!(
                "/federate?match[]=slurm_cluster_cpus&match%5B%5D={}",
                url_encode("{account=\"beta-acct\"}")
            )),
            403,
            &NOTHING,
        ),
        alpha_view(
            "{__name__=~\".+\"} (every series)",
            f(&["{__name__=~\".+\"}"]),
        ),
        row(
            "{__name__=~\".*\"} (matches the empty string)",
            f(&["{__name__=~\".*\"}"]),
            400,
            &NOTHING,
        ),
        row("{__name__=~\"\"}", f(&["{__name__=~\"\"}"]), 400, &NOTHING),
        alpha_view("{__name__!=\"\"}", f(&["{__name__!=\"\"}"])),
        row("{} (no matcher)", f(&["{}"]), 400, &NOTHING),
        row(
            "{account=~\"beta-acct|.*\"} (matches the empty string)",
            f(&["{account=~\"beta-acct|.*\"}"]),
            400,
            &NOTHING,
        ),
        alpha_view(
            "{__name__=~\".+\",account=~\"beta-acct|.*\"} (the scope is appended)",
            f(&["{__name__=~\".+\",account=~\"beta-acct|.*\"}"]),
        ),
        alpha_view(
            "{__name__=~\".+\",account=~\"beta-acct|alpha-acct\"} (the scope is appended)",
            f(&["{__name__=~\".+\",account=~\"beta-acct|alpha-acct\"}"]),
        ),
        row(
            "{account=\"beta-acct\"}",
            f(&["{account=\"beta-acct\"}"]),
            403,
            &NOTHING,
        ),
        row(
            "{account!~\"alpha.*\",account=~\".+acct\"}",
            f(&["{account!~\"alpha.*\",account=~\".+acct\"}"]),
            403,
            &NOTHING,
        ),
        row(
            "{tenant=\"beta\"}",
            f(&["{tenant=\"beta\"}"]),
            403,
            &NOTHING,
        ),
        row(
            "{tenant!=\"alpha\",__name__=~\".+\"}",
            f(&["{tenant!=\"alpha\",__name__=~\".+\"}"]),
            403,
            &NOTHING,
        ),
        alpha_view(
            "{tenant=~\"alpha|beta\"} (the scope is appended)",
            f(&["{tenant=~\"alpha|beta\"}"]),
        ),
        row(
            "{__name__=~\".+\",tenant=\"\"} (series without a tenant)",
            f(&["{__name__=~\".+\",tenant=\"\"}"]),
            403,
            &NOTHING,
        ),
        row(
            "slurm_user_jobs{user=\"bob\"} (beta's user, in clear)",
            f(&["slurm_user_jobs{user=\"bob\"}"]),
            200,
            &NOT_FOR_ALPHA_VIEWER,
        ),
        row(
            "slurm_user_jobs{user=~\"a.*\"} (probing clear names by regex)",
            f(&["slurm_user_jobs{user=~\"a.*\"}"]),
            200,
            &["alpha-acct", "alice", "beta", "bob"],
        ),
        row(
            "slurm_exporter_polls_total (operators only)",
            f(&["slurm_exporter_polls_total"]),
            200,
            &NOTHING,
        ),
        row(
            "a regex escaping its anchors: x)|(.*",
            f(&["{__name__=~\"x)|(.*\"}"]),
            400,
            &NOTHING,
        ),
        row(
            "a regex too large to compile: (a{1000}){1000}",
            f(&["{__name__=~\"(a{1000}){1000}\"}"]),
            400,
            &NOTHING,
        ),
        row("a 6 KB selector", f(&[long.as_str()]), 400, &NOTHING),
        // hyper refuses request targets of 64 KiB (65,534 bytes) and more before the stack.
        row("a 64 KiB selector", f(&[huge.as_str()]), 414, &NOTHING),
        row("33 match[]", f(&too_many), 400, &NOTHING),
        row("1000 match[] with regexes", f(&a_thousand), 400, &NOTHING),
        row("96 regexes in 32 match[]", f(&regexes), 400, &NOTHING),
        row(
            "an unknown parameter next to match[]",
            as_alpha("/federate?match%5B%5D=slurm_cluster_cpus&tenant=beta"),
            400,
            &NOTHING,
        ),
        row(
            "a double-encoded match[]",
            as_alpha("/federate?match%255B%255D=slurm_cluster_cpus"),
            400,
            &NOTHING,
        ),
        row("no match[] at all", as_alpha("/federate"), 400, &NOTHING),
        row(
            "an invalid percent escape",
            as_alpha("/federate?match%5B%5D=%G0"),
            400,
            &NOTHING,
        ),
    ];
    assert_eq!(run(&g, rows).await, 32);
}

#[tokio::test]
async fn request_bodies_and_oversized_headers_are_refused_with_bounded_memory() {
    let g = start(Options::default()).await;
    let alpha = format!("Bearer {}", g.tokens.alpha_viewer);
    // Over the 16 KiB body limit, announced: refused from the header, before any byte of the
    // body is read, before authentication.
    let announce = |len: usize, extra: &[(&str, &str)]| {
        let len = len.to_string();
        let mut h: Vec<(&str, &str)> = vec![("Content-Length", len.as_str())];
        h.extend_from_slice(extra);
        request("GET", "/metrics", &h, &[])
    };
    let big_bomb = gzip_bomb(64);
    let small_bomb = gzip_bomb(8);
    assert!(big_bomb.len() > 16 << 10 && small_bomb.len() < 16 << 10);
    let big_bomb_len = big_bomb.len().to_string();
    let small_bomb_len = small_bomb.len().to_string();
    let rows = vec![
        row(
            "a 1 MiB body, no credentials",
            announce(1 << 20, &[]),
            413,
            &NOTHING,
        ),
        row(
            "a 1 MiB body as alpha's viewer",
            announce(1 << 20, &[("Authorization", &alpha)]),
            413,
            &NOTHING,
        ),
        row(
            "a 4 GiB Content-Length",
            announce(4 << 30, &[("Authorization", &alpha)]),
            413,
            &NOTHING,
        ),
        row(
            "a gzip bomb over the body limit (64 MiB inflated)",
            request(
                "GET",
                &federate_path(&["slurm_cluster_cpus"]),
                &[
                    ("Authorization", &alpha),
                    ("Content-Encoding", "gzip"),
                    ("Content-Length", &big_bomb_len),
                ],
                &big_bomb,
            ),
            413,
            &NOTHING,
        ),
        alpha_view(
            "a gzip bomb under the body limit (8 MiB inflated): ignored, never inflated",
            request(
                "GET",
                "/metrics",
                &[
                    ("Authorization", &alpha),
                    ("Content-Encoding", "gzip"),
                    ("Content-Length", &small_bomb_len),
                ],
                &small_bomb,
            ),
        ),
        // RFC 9112 6.1: processed by Transfer-Encoding alone (hyper), so the 5 bytes are an
        // empty chunked body; see `pipelined_requests_are_authenticated_one_by_one` for what
        // follows such a body on the connection.
        alpha_view(
            "Content-Length and Transfer-Encoding together",
            request(
                "GET",
                "/metrics",
                &[
                    ("Authorization", &alpha),
                    ("Content-Length", "5"),
                    ("Transfer-Encoding", "chunked"),
                ],
                b"0\r\n\r\n",
            ),
        ),
        row(
            "a 512 KiB header",
            get_req(
                "/metrics",
                &[
                    ("Authorization", &alpha),
                    ("X-Padding", &"a".repeat(512 << 10)),
                ],
            ),
            431,
            &NOTHING,
        ),
        row(
            "a 512 KiB request target",
            get_req(
                &format!("/metrics?{}", "a".repeat(512 << 10)),
                &[("Authorization", &alpha)],
            ),
            431,
            &NOTHING,
        ),
    ];
    assert_eq!(run(&g, rows).await, 8);
}

#[tokio::test]
async fn pipelined_requests_are_authenticated_one_by_one() {
    let g = start(Options::default()).await;
    let alpha = format!("Bearer {}", g.tokens.alpha_viewer);
    // A request smuggled behind a Content-Length/Transfer-Encoding conflict, or simply
    // pipelined after an authenticated one, is a request of its own: it gets no credentials
    // from the connection or from the request before it.
    let first = request(
        "GET",
        "/metrics",
        &[
            ("Authorization", &alpha),
            ("Content-Length", "5"),
            ("Transfer-Encoding", "chunked"),
        ],
        b"0\r\n\r\n",
    );
    let smuggled = request(
        "GET",
        &federate_path(&["{__name__=~\".+\"}"]),
        &[("X-Scope-OrgID", "beta")],
        &[],
    );
    let last = request("GET", "/metrics", &[("Connection", "close")], &[]);
    let answers = send_pipelined(g.addr, &[first, smuggled, last]).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    // hyper closes the connection after a request with both headers (RFC 9112 6.1): the
    // bytes behind it are never read as a request.
    assert_eq!(statuses, [200], "one answer, then the connection is closed");
    answers[0].assert_free_of(&NOT_FOR_ALPHA_VIEWER, "the authenticated request");
    // Plain keep-alive pipelining: each request stands alone.
    let with = request("GET", "/metrics", &[("Authorization", &alpha)], &[]);
    let without = request("GET", "/metrics", &[("Connection", "close")], &[]);
    let answers = send_pipelined(g.addr, &[with, without]).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401]);
    answers[1].assert_free_of(&NOTHING, "the second, unauthenticated request");
}
