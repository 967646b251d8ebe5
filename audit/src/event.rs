//! What one audit record says: the typed [`Event`] the gateway writes.
//!
//! The contract: an event names who did what to which data and with what outcome. It never
//! carries a secret: no bearer token, password, client secret, session cookie, private key
//! or raw `Authorization` header, not even in `detail`. A principal is the verified identity
//! (subject, certificate subject or key id), not the credential that proved it. The log is
//! encrypted, but an auditor who exports it sees every field in clear, and audit logs are
//! kept for years: whatever goes in must be safe to show an auditor for that long.

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A request through the gateway, whatever its outcome.
    #[default]
    Request,
    /// Authentication failed (no identity was established).
    AuthFailure,
    /// Configuration or policy was (re)loaded.
    ConfigReload,
    /// Someone resolved a pseudonym back to personal data.
    PiiLookup,
    /// An administrative action (key rotation, retention, ...).
    Admin,
    /// The gateway started; `detail` records site choices such as fail-open or fail-closed.
    Startup,
}

/// The authorization outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

/// One audit event. Every field but `kind` is optional so each kind fills what it knows;
/// absent fields are not written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The authenticated identity (never the credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The policy rule that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// HTTP status sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Series served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<u64>,
    /// Body bytes served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// The peer's address as the gateway saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// Kind-specific facts (reload: file and digest; admin: action). No secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}
