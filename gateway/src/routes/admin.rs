//! The admin listener: the gateway's own metrics ([`crate::metrics::GatewayMetrics`]) and
//! health on a separate plain-HTTP listener, never on the scrape port:
//!
//! ```toml
//! [server.admin]
//! listen = "127.0.0.1:9342"   # default; loopback only unless allow_remote = true
//! ```
//!
//! `/metrics` answers OpenMetrics 1.0 (what Prometheus asks for), or the text format 0.0.4
//! when the `Accept` header asks for `text/plain` only (`promtool check metrics` reads
//! that); `/healthz` and `/readyz` are the scrape port's own ([`super::health`]).

use super::health;
use crate::serve::OPENMETRICS_CONTENT_TYPE;
use crate::stack::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::net::SocketAddr;

/// The admin listener's default address, next to the scrape port's 9341.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9342";

/// `Content-Type` of the text format 0.0.4 answer.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `[server.admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Off loopback only when set: the admin listener is plain HTTP without authentication
    /// and its metrics name every tenant and its request rates, so it belongs on loopback
    /// or a network only the monitoring can reach (a pod IP behind a NetworkPolicy).
    #[serde(default)]
    pub allow_remote: bool,
}

fn default_admin_listen() -> String {
    DEFAULT_ADMIN_LISTEN.to_owned()
}

impl AdminConfig {
    /// The address to bind, checked against the loopback rule.
    pub fn addr(&self) -> Result<SocketAddr, String> {
        let a: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "server.admin.listen: {:?} is not an IP:port address",
                self.listen
            )
        })?;
        if !a.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "server.admin.listen: {a} is not a loopback address; the admin listener is plain HTTP without authentication, so set allow_remote = true only where the network limits who reaches it"
            ));
        }
        Ok(a)
    }
}

/// `/metrics`, `/healthz` and `/readyz` of the admin listener. Unknown paths are 404.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}

/// OpenMetrics unless the client accepts `text/plain` and not OpenMetrics.
pub fn wants_text(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("text/plain") && !a.contains("application/openmetrics-text"))
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response<Body> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (body, content_type) = if wants_text(accept) {
        (s.metrics.encode_text(), TEXT_CONTENT_TYPE)
    } else {
        (s.metrics.encode(), OPENMETRICS_CONTENT_TYPE)
    };
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Binds the admin listener; a taken or refused address stops start-up with its name.
pub async fn bind(config: &AdminConfig) -> Result<tokio::net::TcpListener, String> {
    let addr = config.addr()?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("server.admin: cannot listen on {addr}: {e}"))
}

/// Serves the admin routes on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) {
    let bound = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    tracing::info!(%bound, "admin listener: /metrics (gateway), /healthz, /readyz");
    if let Err(e) = axum::serve(listener, router(state)).await {
        tracing::error!("admin listener failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_listen_is_loopback_unless_allowed() {
        let c: AdminConfig = toml::from_str("").expect("defaults");
        assert_eq!(
            c.addr().expect("loopback").to_string(),
            DEFAULT_ADMIN_LISTEN
        );
        let c: AdminConfig = toml::from_str("listen = \"0.0.0.0:9342\"").expect("parses");
        assert!(c.addr().expect_err("remote").contains("allow_remote"));
        let c: AdminConfig =
            toml::from_str("listen = \"0.0.0.0:9342\"\nallow_remote = true").expect("parses");
        assert!(c.addr().is_ok());
        assert!(toml::from_str::<AdminConfig>("listen_addr = \"127.0.0.1:1\"").is_err());
    }

    #[test]
    fn the_admin_listener_needs_its_own_port_and_known_keys() {
        let base = "[source]\nkind = \"sim\"\n[server]\nlisten = \"127.0.0.1:9341\"\n";
        let e = crate::config::Config::parse(&format!(
            "{base}[server.admin]\nlisten = \"127.0.0.1:9341\"\n"
        ))
        .expect_err("same port");
        assert!(e.contains("own port"), "{e}");
        let e = crate::config::Config::parse(&format!("{base}[server.admin]\nport = 1\n"))
            .expect_err("unknown key");
        assert!(e.contains("port"), "{e}");
        let e = crate::config::Config::parse(&format!(
            "{base}[server.admin]\nlisten = \"0.0.0.0:9342\"\n"
        ))
        .expect_err("remote");
        assert!(e.contains("allow_remote"), "{e}");
        let c = crate::config::Config::parse(&format!("{base}[server.admin]\n")).expect("valid");
        assert_eq!(
            c.server.admin.map(|a| a.listen),
            Some(DEFAULT_ADMIN_LISTEN.to_owned())
        );
    }

    #[test]
    fn text_only_when_openmetrics_is_not_accepted() {
        assert!(!wants_text(None));
        assert!(!wants_text(Some("*/*")));
        assert!(wants_text(Some("text/plain")));
        assert!(!wants_text(Some(
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4"
        )));
    }
}
