//! Rate limits and the series quota over real HTTP on 127.0.0.1: the gateway's layers around
//! a trivial handler, served by axum with the peer address attached, driven by a small
//! HTTP/1.1 client on plain TCP sockets (so the source address is ours to choose).

#[path = "support/gateway.rs"]
mod gw;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use collector::store::{Family, Format, Generation, Kind, Owner};
use gateway::layer::quota::{
    refusal, OnExceed, Quota, QuotaConfig, QuotaOutcome, TRUNCATED_HEADER,
};
use gateway::layer::rate_limit::{self, PerIpLayer, PerPrincipalLayer, RateLimitConfig};
use gateway::policy::view_key::Names;
use gateway::serve::{BodyCache, Recipe};
use gateway::tenancy::{AuthMethod, Principal, Role, TenantId};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

// ---------------------------------------------------------------------------------------
// A server and a client

struct Conn(BufReader<TcpStream>);

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Conn {
    /// A keep-alive connection from `source` (any 127.0.0.0/8 address works on loopback).
    async fn open(server: SocketAddr, source: &str) -> Conn {
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind(format!("{source}:0").parse().expect("source"))
            .expect("bind source");
        Conn(BufReader::new(sock.connect(server).await.expect("connect")))
    }

    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.0
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("write");
        let mut line = String::new();
        self.0.read_line(&mut line).await.expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.0.read_line(&mut line).await.expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("header line");
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .expect("content-length");
        let mut body = vec![0; len];
        self.0.read_exact(&mut body).await.expect("body");
        Resp {
            status,
            headers,
            body: String::from_utf8(body).expect("utf8"),
        }
    }
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).expect("non-zero")
}

fn config(
    per_ip: u32,
    per_tenant: u32,
    per_principal: u32,
    burst: u32,
    max: usize,
) -> RateLimitConfig {
    RateLimitConfig {
        per_ip_per_minute: nz(per_ip),
        per_tenant_per_minute: nz(per_tenant),
        per_principal_per_minute: nz(per_principal),
        burst: nz(burst),
        max_tracked_keys: NonZeroUsize::new(max).expect("non-zero"),
    }
}

/// Stands in for authentication: `x-test-principal: tenant/id` becomes the `Principal`.
fn test_authn(mut req: Request<Body>) -> Request<Body> {
    let p = req
        .headers()
        .get("x-test-principal")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once('/'))
        .and_then(|(t, id)| {
            Some(Principal {
                id: id.to_owned(),
                tenant: TenantId::parse(t).ok()?,
                role: Role::Viewer,
                method: AuthMethod::ApiToken,
            })
        });
    if let Some(p) = p {
        req.extensions_mut().insert(p);
    }
    req
}

/// The stack's order: per-IP, then authentication, then per-tenant/principal, then the handler.
fn limited_app(ip: &PerIpLayer, principal: &PerPrincipalLayer) -> Router {
    Router::new()
        .route("/metrics", get(|| async { "ok\n" }))
        .layer(from_fn_with_state(
            principal.clone(),
            rate_limit::per_principal,
        ))
        .layer(tower::util::MapRequestLayer::new(test_authn))
        .layer(from_fn_with_state(ip.clone(), rate_limit::per_ip))
}

// ---------------------------------------------------------------------------------------
// Rate limits

#[tokio::test]
async fn per_ip_limit_answers_429_with_retry_after() {
    let ip = PerIpLayer::new(&config(2, 1000, 1000, 2, 100));
    let pp = PerPrincipalLayer::new(&config(2, 1000, 1000, 2, 100));
    let addr = gw::serve(limited_app(&ip, &pp)).await;
    let mut c = Conn::open(addr, "127.0.0.1").await;
    for _ in 0..2 {
        assert_eq!(c.get("/metrics", &[]).await.status, 200);
    }
    let r = c.get("/metrics", &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body, "too many requests\n");
    // 2 a minute: the next one in 30 s, rounded up to whole seconds.
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((29..=30).contains(&retry), "{retry}");
    // A new connection from the same address is the same key.
    let mut again = Conn::open(addr, "127.0.0.1").await;
    assert_eq!(again.get("/metrics", &[]).await.status, 429);
}

#[tokio::test]
async fn spoofed_forwarding_headers_do_not_change_the_ip_key() {
    let ip = PerIpLayer::new(&config(2, 1000, 1000, 2, 100));
    let pp = PerPrincipalLayer::new(&config(2, 1000, 1000, 2, 100));
    let addr = gw::serve(limited_app(&ip, &pp)).await;
    let mut c = Conn::open(addr, "127.0.0.3").await;
    let spoofs = [
        [
            ("X-Forwarded-For", "203.0.113.1"),
            ("X-Real-IP", "203.0.113.1"),
        ],
        [
            ("X-Forwarded-For", "203.0.113.2, 10.0.0.1"),
            ("Forwarded", "for=203.0.113.2"),
        ],
        [
            ("X-Forwarded-For", "198.51.100.9"),
            ("True-Client-IP", "198.51.100.9"),
        ],
    ];
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for h in &spoofs {
            v.push(c.get("/metrics", h).await.status);
        }
        v
    };
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(
        ip.tracked_keys(),
        1,
        "one peer, one key, whatever the headers say"
    );
    // Another peer address is another key.
    let mut other = Conn::open(addr, "127.0.0.4").await;
    assert_eq!(other.get("/metrics", &[]).await.status, 200);
    assert_eq!(ip.tracked_keys(), 2);
}

#[tokio::test]
async fn per_tenant_limit_separates_tenants() {
    let cfg = config(1000, 2, 1000, 2, 100);
    // One `burst` serves every limit: the per-IP layer gets a roomy config of its own here.
    let roomy_ip = PerIpLayer::new(&config(1000, 1000, 1000, 100, 100));
    let addr = gw::serve(limited_app(&roomy_ip, &PerPrincipalLayer::new(&cfg))).await;
    let mut c = Conn::open(addr, "127.0.0.1").await;
    let who = |p: &'static str| [("x-test-principal", p)];
    assert_eq!(c.get("/metrics", &who("alpha/p1")).await.status, 200);
    assert_eq!(c.get("/metrics", &who("alpha/p2")).await.status, 200);
    // A third principal of the same tenant: the tenant's budget is spent.
    let r = c.get("/metrics", &who("alpha/p3")).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // Another tenant is untouched.
    assert_eq!(c.get("/metrics", &who("beta/p1")).await.status, 200);
    assert_eq!(c.get("/metrics", &who("beta/p2")).await.status, 200);
    // No principal (authentication would have refused): passes through untouched.
    for _ in 0..5 {
        assert_eq!(c.get("/metrics", &[]).await.status, 200);
    }
}

#[tokio::test]
async fn per_principal_limit_stops_one_principal_before_its_tenant() {
    // The tenant refills one request a millisecond; its principals two a minute.
    let cfg = config(1000, 60_000, 2, 2, 100);
    // One `burst` serves every limit: the per-IP layer gets a roomy config of its own here.
    let roomy_ip = PerIpLayer::new(&config(1000, 1000, 1000, 100, 100));
    let addr = gw::serve(limited_app(&roomy_ip, &PerPrincipalLayer::new(&cfg))).await;
    let mut c = Conn::open(addr, "127.0.0.1").await;
    let who = |p: &'static str| [("x-test-principal", p)];
    assert_eq!(c.get("/metrics", &who("alpha/noisy")).await.status, 200);
    assert_eq!(c.get("/metrics", &who("alpha/noisy")).await.status, 200);
    for _ in 0..20 {
        let r = c.get("/metrics", &who("alpha/noisy")).await;
        assert_eq!(r.status, 429);
        assert!((29..=30).contains(
            &r.header("retry-after")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        ));
    }
    // Refused requests of the noisy one did not spend the tenant's budget.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(c.get("/metrics", &who("alpha/quiet")).await.status, 200);
    // Same id in another tenant is another principal.
    assert_eq!(c.get("/metrics", &who("beta/noisy")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_stores_stay_bounded_under_100000_rotating_keys() {
    const MAX: usize = 1000;
    const KEYS: usize = 100_000;
    // Rates high enough that the flood itself is mostly served.
    let cfg = config(6_000_000, 6_000_000, 6_000_000, 5, MAX);
    let ip = PerIpLayer::new(&cfg);
    let pp = PerPrincipalLayer::new(&cfg);
    let addr = gw::serve(limited_app(&ip, &pp)).await;

    // Rotating principals and tenants, over real HTTP on 4 keep-alive connections.
    let mut tasks = Vec::new();
    for w in 0..4 {
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr, "127.0.0.1").await;
            for i in (w..KEYS).step_by(4) {
                let p = format!("t{}/p{i}", i % 50_000);
                let r = c.get("/metrics", &[("x-test-principal", p.as_str())]).await;
                assert!(r.status == 200 || r.status == 429, "{}", r.status);
            }
        }));
    }
    for t in tasks {
        t.await.expect("flood");
    }
    assert!(
        pp.tracked_principals() <= MAX,
        "{}",
        pp.tracked_principals()
    );
    assert!(pp.tracked_tenants() <= MAX, "{}", pp.tracked_tenants());

    // Rotating source addresses: 100,000 IPv4 peers, then 100,000 addresses of one IPv6 /64.
    for i in 0..KEYS as u32 {
        let _ = ip.check_ip(IpAddr::from((0x0a00_0000u32 + i).to_be_bytes()));
    }
    assert!(ip.tracked_keys() <= MAX, "{}", ip.tracked_keys());
    assert!(
        ip.overflowed() > 0,
        "the full store sent new keys to the shared bucket"
    );

    // Once the flood stops, idle keys are swept and a newcomer gets its own budget again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut c = Conn::open(addr, "127.0.0.1").await;
    let r = c
        .get("/metrics", &[("x-test-principal", "alpha/newcomer")])
        .await;
    assert_eq!(r.status, 200);
    assert!(pp.tracked_principals() < MAX, "{}", pp.tracked_principals());
    let before = ip.tracked_keys();
    for i in 0..KEYS as u128 {
        let a = (0x2001_0db8_0000_0001u128 << 64) | i;
        let _ = ip.check_ip(IpAddr::from(a.to_be_bytes()));
    }
    assert!(ip.tracked_keys() <= before + 1, "one /64 is one key");
}

// ---------------------------------------------------------------------------------------
// Quota

fn family(name: &'static str, owners: &[Owner]) -> Family {
    let mut f = Family {
        name: Cow::Borrowed(name),
        help: Cow::Borrowed("test family"),
        kind: Kind::Gauge,
        label_names: Cow::Borrowed(&["i"]),
        series: Vec::new(),
    };
    for (i, o) in owners.iter().enumerate() {
        f.push(o.clone(), [i.to_string().into()], 1.0);
    }
    f
}

fn generation() -> Generation {
    let mine = Owner::Account("physics".into());
    let theirs = Owner::Account("chemistry".into());
    let n = |k: usize| vec![mine.clone(); k];
    // Listed out of priority order on purpose; chemistry's series do not count for alpha.
    Generation::new(
        3,
        0.0,
        vec![
            family("slurm_node_info", &n(1)),
            family("slurm_user_jobs", &n(4)),
            family("slurm_account_cpus", &n(2)),
            family("slurm_job_cpus", &[n(3), vec![theirs.clone(); 5]].concat()),
            family("slurm_cluster_cpus", &[Owner::Cluster, theirs.clone()]),
            family("slurm_partition_jobs", &n(2)),
        ],
    )
}

type QuotaState = (Arc<Generation>, Arc<Quota>, Arc<BodyCache>);

async fn quota_handler(State((g, q, bodies)): State<QuotaState>) -> Response<Body> {
    let Ok(tenant) = TenantId::parse("alpha") else {
        return Response::new(Body::from("bad tenant"));
    };
    let visible = |o: &Owner| match o {
        Owner::Cluster => true,
        Owner::Account(a) => &**a == "physics",
        _ => false,
    };
    let view = q.view_key(&tenant, Names::Pseudonyms);
    let recipe = |keep| Recipe {
        keep,
        visible: &visible,
        rewrite: None,
    };
    let (body, truncated) = match q.apply(&g, &view, &tenant, &visible) {
        QuotaOutcome::Within(_) => (
            bodies.body(&g, &view, Format::Text, false, recipe(None)),
            None,
        ),
        QuotaOutcome::Truncated(plan) => {
            let keep = |i: usize| plan.keeps(i);
            (
                bodies.body(&g, &view, Format::Text, false, recipe(Some(&keep))),
                Some(plan.header_value()),
            )
        }
        QuotaOutcome::Refused(plan) => return refusal(&plan),
    };
    let mut r = Response::new(Body::from(bytes::Bytes::from_owner(body)));
    if let Some(v) = truncated {
        r.headers_mut().insert(TRUNCATED_HEADER, v);
    }
    r
}

async fn quota_server(metrics_per_tenant: usize, on_exceed: OnExceed) -> SocketAddr {
    let q = Arc::new(Quota::new(QuotaConfig {
        metrics_per_tenant,
        on_exceed,
    }));
    let app = Router::new()
        .route("/metrics", get(quota_handler))
        .with_state((Arc::new(generation()), q, Arc::new(BodyCache::default())));
    gw::serve(app).await
}

/// Family names in the order they appear in an exposition.
fn family_order(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[tokio::test]
async fn quota_truncation_keeps_whole_families_in_priority_order_and_says_so() {
    // Visible to alpha: cluster 1, partitions 2, jobs 3, users 4, accounts 2, node 1 = 13.
    // Quota 8: cluster + partitions + jobs = 6; users (4) would make 10: stop there, even
    // though accounts (2) would still fit.
    let addr = quota_server(8, OnExceed::Truncate).await;
    let mut c = Conn::open(addr, "127.0.0.1").await;
    let r = c.get("/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-slurm-exporter-truncated"), Some("6/13"));
    // Kept in the generation's order: the encoder does not reorder, the quota only selects.
    let mut kept = family_order(&r.body);
    kept.sort_unstable();
    assert_eq!(
        kept,
        [
            "slurm_cluster_cpus",
            "slurm_job_cpus",
            "slurm_partition_jobs"
        ]
    );
    assert_eq!(
        r.body.matches("slurm_job_cpus{").count(),
        3,
        "whole family, own series only"
    );
    assert_eq!(r.body.matches("slurm_cluster_cpus{").count(), 1);
    // Same generation and view: the same body and header again (cached, deterministic).
    let again = c.get("/metrics", &[]).await;
    assert_eq!(again.body, r.body);
    assert_eq!(again.header("x-slurm-exporter-truncated"), Some("6/13"));

    // Within the quota: everything, no header.
    let addr = quota_server(13, OnExceed::Truncate).await;
    let r = Conn::open(addr, "127.0.0.1")
        .await
        .get("/metrics", &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-slurm-exporter-truncated"), None);
    assert_eq!(family_order(&r.body).len(), 6);
}

#[tokio::test]
async fn quota_refuse_mode_answers_413() {
    let addr = quota_server(8, OnExceed::Refuse).await;
    let r = Conn::open(addr, "127.0.0.1")
        .await
        .get("/metrics", &[])
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE.as_u16());
    assert_eq!(r.body, "series quota exceeded\n");
    assert_eq!(r.header("retry-after"), None, "waiting does not help");
    assert_eq!(r.header("x-slurm-exporter-truncated"), None);
}
