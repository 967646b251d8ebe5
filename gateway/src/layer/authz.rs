//! Authorization: may this principal do this action on this object, in this tenant? casbin
//! RBAC with domains (the domain is the tenant), model and policy in `policies/`.
//!
//! The role that authentication bound to a [`Principal`] holds in the principal's own tenant
//! only. A decision asks casbin first with that role as subject, then with the principal
//! itself (`principal:<home tenant>/<id>`), so the policy can grant per-principal and
//! per-tenant exceptions with `g` lines. Deny by default: no matching rule, an error inside
//! casbin, or a request value we would not trust a matcher with all deny.
//!
//! Both files are checked line by line before casbin sees them, so a mistake is reported as
//! `file:line: what is wrong`; the model may only use `g`, `keyMatch` and `==` (no regular
//! expression ever sees a request value). [`Authorizer::reload`] swaps the enforcer
//! atomically and keeps the last good one when the new files are bad.

use crate::policy::tenancy::{Principal, Role, TenantId};
use arc_swap::ArcSwap;
use casbin::function_map::key_match;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The objects the gateway asks about. Policies may name these, or `*`.
pub mod object {
    /// The principal's own tenant's series.
    pub const METRICS: &str = "metrics";
    /// The whole cluster's series, the exporter's own included.
    pub const METRICS_ALL: &str = "metrics:all";
    /// User names in clear instead of per-tenant pseudonyms.
    pub const METRICS_CLEAR_NAMES: &str = "metrics:clear-names";
    /// `/federate`.
    pub const FEDERATE: &str = "federate";
    /// The audit log.
    pub const AUDIT: &str = "audit";
    /// Usage reports.
    pub const USAGE: &str = "usage";
    /// Re-identifying one pseudonymized value.
    pub const PII_LOOKUP: &str = "pii-lookup";
    /// The gateway's administration endpoints.
    pub const ADMIN: &str = "admin";
    /// Every object, in the order of the design.
    pub const ALL: [&str; 8] = [
        METRICS,
        METRICS_ALL,
        METRICS_CLEAR_NAMES,
        FEDERATE,
        AUDIT,
        USAGE,
        PII_LOOKUP,
        ADMIN,
    ];
}

/// The actions the gateway asks about.
pub mod action {
    pub const READ: &str = "read";
    pub const WRITE: &str = "write";
    pub const ALL: [&str; 2] = [READ, WRITE];
}

/// What the audit record says about a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The rule that allowed it (`policy.csv:LINE: p, ... (as SUBJECT)`), or `default deny`.
    pub policy: String,
}

impl Decision {
    fn deny() -> Decision {
        Decision {
            allowed: false,
            policy: DEFAULT_DENY.to_owned(),
        }
    }
}

const DEFAULT_DENY: &str = "default deny";

/// A model or policy file that cannot be used. The message names the file and the line.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// One loaded model and policy, never changed once built.
struct Loaded {
    enforcer: Enforcer,
    /// The `p` rules and their lines in the policy file, for the audit record.
    p_rules: Vec<(Vec<String>, usize)>,
    fingerprint: String,
}

impl Loaded {
    /// Names the rule behind an allow casbin gave. casbin 2.20 explains only with its slog
    /// logging on, so this walks the rules as the shipped matcher does, with casbin's own role
    /// graph and `keyMatch`. casbin's answer stands either way.
    fn explain(
        &self,
        policy_path: &Path,
        subject: &str,
        dom: &str,
        obj: &str,
        act: &str,
    ) -> String {
        let rm = self.enforcer.get_role_manager();
        let rm = rm.read();
        let found = self.p_rules.iter().find(|(p, _)| {
            matches!(p.as_slice(), [p_sub, p_dom, p_obj, p_act]
                if rm.has_link(subject, p_sub, Some(dom))
                    && key_match(dom, p_dom)
                    && key_match(obj, p_obj)
                    && key_match(act, p_act))
        });
        match found {
            Some((rule, line)) => format!(
                "{}:{line}: p, {} (as {subject})",
                file_name(policy_path),
                rule.join(", ")
            ),
            None => format!(
                "{}: allowed by the model's matcher (as {subject})",
                file_name(policy_path)
            ),
        }
    }
}

/// Decides requests; shared by every request, reloaded in place.
pub struct Authorizer {
    model_path: PathBuf,
    policy_path: PathBuf,
    current: ArcSwap<Loaded>,
    /// One reload at a time, so the last one to finish is the last one started.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("model_path", &self.model_path)
            .field("policy_path", &self.policy_path)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// Loads and checks the model and the policy. Errors name the file and the line.
    pub async fn load(
        model_path: impl AsRef<Path>,
        policy_path: impl AsRef<Path>,
    ) -> Result<Authorizer, AuthzError> {
        let model_path = model_path.as_ref().to_path_buf();
        let policy_path = policy_path.as_ref().to_path_buf();
        let loaded = build(&model_path, &policy_path).await?;
        Ok(Authorizer {
            model_path,
            policy_path,
            current: ArcSwap::from_pointee(loaded),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads both files again and swaps them in atomically. When they are bad, the error is
    /// returned and the previous policy keeps deciding.
    pub async fn reload(&self) -> Result<(), AuthzError> {
        let _one_at_a_time = self.reloading.lock().await;
        match build(&self.model_path, &self.policy_path).await {
            Ok(loaded) => {
                tracing::info!(fingerprint = %loaded.fingerprint, "authorization policy reloaded");
                self.current.store(Arc::new(loaded));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, fingerprint = %self.fingerprint(), "authorization policy reload refused; keeping the previous one");
                Err(e)
            }
        }
    }

    /// SHA-256 (hex, first 16 digits) of the model and policy in force, for a self-metric.
    pub fn fingerprint(&self) -> String {
        self.current.load().fingerprint.clone()
    }

    /// May `principal` do `action` on `object` in its own tenant?
    pub fn decide(&self, principal: &Principal, object: &str, action: &str) -> Decision {
        self.decide_in(principal, &principal.tenant, object, action)
    }

    /// May `principal` do `action` on `object` in `tenant` (its own or another)? The role
    /// from authentication counts only in the principal's own tenant; elsewhere only rules
    /// naming the principal do.
    pub fn decide_in(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        object: &str,
        action: &str,
    ) -> Decision {
        // keyMatch slices by byte index: only plain ASCII names reach it.
        if !is_name(object) || !is_name(action) {
            tracing::warn!(principal = %principal.id, object = ?object, action = ?action, "authorization asked about a malformed object or action");
            return Decision::deny();
        }
        let loaded = self.current.load();
        let mut subjects = Vec::with_capacity(2);
        if *tenant == principal.tenant {
            subjects.push(principal.role.as_str().to_owned());
        }
        subjects.push(principal_subject(&principal.tenant, &principal.id));
        for subject in subjects {
            let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                loaded
                    .enforcer
                    .enforce((subject.as_str(), tenant.as_str(), object, action))
            }));
            match asked {
                Ok(Ok(true)) => {
                    return Decision {
                        allowed: true,
                        policy: loaded.explain(
                            &self.policy_path,
                            &subject,
                            tenant.as_str(),
                            object,
                            action,
                        ),
                    };
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, principal = %principal.id, tenant = %tenant, object, action, "casbin failed; denying");
                    return Decision::deny();
                }
                Err(_) => {
                    tracing::error!(principal = %principal.id, tenant = %tenant, object, action, "casbin panicked; denying");
                    return Decision::deny();
                }
            }
        }
        Decision::deny()
    }
}

/// The casbin subject naming one principal: its home tenant and its id.
pub fn principal_subject(tenant: &TenantId, id: &str) -> String {
    format!("principal:{tenant}/{id}")
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Lowercase ASCII letters, digits, `:`, `-`, `_`; 1 to 64 characters.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-' || b == b'_'
        })
}

async fn read(path: &Path) -> Result<String, AuthzError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|source| AuthzError::Read {
            path: path.to_path_buf(),
            source,
        })
}

async fn build(model_path: &Path, policy_path: &Path) -> Result<Loaded, AuthzError> {
    let model_text = read(model_path).await?;
    let policy_text = read(policy_path).await?;
    let matcher_line = check_model(model_path, &model_text)?;
    let policy = parse_policy(policy_path, &policy_text)?;

    let model_err = |line: usize, e: casbin::Error| AuthzError::Invalid {
        path: model_path.to_path_buf(),
        line,
        message: format!("casbin: {e}"),
    };
    let model = DefaultModel::from_str(&model_text)
        .await
        .map_err(|e| model_err(1, e))?;
    let mut adapter = MemoryAdapter::default();
    for rule in &policy.rules {
        casbin::Adapter::add_policy(&mut adapter, rule.sec, rule.sec, rule.fields.clone())
            .await
            .map_err(|e| AuthzError::Invalid {
                path: policy_path.to_path_buf(),
                line: rule.line,
                message: format!("casbin: {e}"),
            })?;
    }
    let enforcer = Enforcer::new(model, adapter)
        .await
        .map_err(|e| AuthzError::Invalid {
            path: policy_path.to_path_buf(),
            line: 1,
            message: format!("casbin: {e}"),
        })?;
    // The matcher is compiled on first use: try it now, not on the first request.
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        enforcer.enforce(("viewer", "probe", "metrics", "read"))
    }));
    match probe {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(model_err(matcher_line, e)),
        Err(_) => {
            return Err(AuthzError::Invalid {
                path: model_path.to_path_buf(),
                line: matcher_line,
                message: "the matcher panicked on a probe request".to_owned(),
            })
        }
    }

    let mut hash = Sha256::new();
    hash.update(model_text.as_bytes());
    hash.update([0u8]);
    hash.update(policy_text.as_bytes());
    let mut fingerprint = String::with_capacity(16);
    for b in &hash.finalize()[..8] {
        let _ = write!(fingerprint, "{b:02x}");
    }
    let p_rules = policy
        .rules
        .into_iter()
        .filter(|r| r.sec == "p")
        .map(|r| (r.fields, r.line))
        .collect();
    Ok(Loaded {
        enforcer,
        p_rules,
        fingerprint,
    })
}

/// The functions a matcher may call: none of them builds a regular expression.
const ALLOWED_FUNCTIONS: [&str; 2] = ["g", "keyMatch"];

/// Checks the model's shape line by line; returns the line of the matcher.
fn check_model(path: &Path, text: &str) -> Result<usize, AuthzError> {
    let err = |line: usize, message: String| AuthzError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
    };
    let expected: [(&str, &str, &str); 4] = [
        ("request_definition", "r", "sub, dom, obj, act"),
        ("policy_definition", "p", "sub, dom, obj, act"),
        ("role_definition", "g", "_, _, _"),
        ("policy_effect", "e", "some(where (p.eft == allow))"),
    ];
    let mut section: Option<String> = None;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut matcher_line = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.ends_with('\\') {
            return Err(err(n, "line continuations are not supported".to_owned()));
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let known = expected.iter().any(|(s, _, _)| *s == name) || name == "matchers";
            if !known {
                return Err(err(n, format!("unknown section [{name}]")));
            }
            section = Some(name.to_owned());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(err(n, "expected `key = value` or `[section]`".to_owned()));
        };
        let (key, value) = (key.trim(), value.trim());
        let Some(sec) = section.as_deref() else {
            return Err(err(n, format!("`{key}` outside any section")));
        };
        if let Some(first) = seen.insert(format!("{sec}.{key}"), n) {
            return Err(err(n, format!("`{key}` already defined on line {first}")));
        }
        if sec == "matchers" {
            if key != "m" {
                return Err(err(n, format!("unexpected matcher `{key}`: only `m`")));
            }
            check_matcher(value).map_err(|m| err(n, m))?;
            matcher_line = Some(n);
            continue;
        }
        let Some((_, want_key, want_value)) = expected.iter().find(|(s, _, _)| *s == sec) else {
            return Err(err(n, format!("unexpected key in [{sec}]")));
        };
        if key != *want_key {
            return Err(err(
                n,
                format!("unexpected `{key}` in [{sec}]: only `{want_key}`"),
            ));
        }
        if squash(value) != squash(want_value) {
            return Err(err(
                n,
                format!("`{key} = {value}`: the gateway needs `{key} = {want_value}`"),
            ));
        }
    }
    for (sec, key, value) in expected {
        if !seen.contains_key(&format!("{sec}.{key}")) {
            return Err(err(
                text.lines().count().max(1),
                format!("missing [{sec}] {key} = {value}"),
            ));
        }
    }
    matcher_line.ok_or_else(|| {
        err(
            text.lines().count().max(1),
            "missing [matchers] m = ...".to_owned(),
        )
    })
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Every `name(` in the matcher must be an allowed function.
fn check_matcher(m: &str) -> Result<(), String> {
    let bytes = m.as_bytes();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        let ident = b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
        match (ident, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let name = &m[s..i];
                let rest = m[i..].trim_start();
                if rest.starts_with('(') && !ALLOWED_FUNCTIONS.contains(&name) {
                    return Err(format!(
                        "function `{name}` is not allowed in the matcher: only {}",
                        ALLOWED_FUNCTIONS.join(", ")
                    ));
                }
                start = None;
            }
            _ => {}
        }
    }
    if m.contains("r.sub") && m.contains("g(") {
        Ok(())
    } else {
        Err("the matcher must check roles with g(r.sub, p.sub, r.dom)".to_owned())
    }
}

struct Rule {
    sec: &'static str,
    fields: Vec<String>,
    line: usize,
}

struct Policy {
    rules: Vec<Rule>,
}

/// Parses `policy.csv` strictly: known roles, objects and actions, valid tenants.
fn parse_policy(path: &Path, text: &str) -> Result<Policy, AuthzError> {
    let err = |line: usize, message: String| AuthzError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut rules = Vec::new();
    let mut seen: HashMap<(&'static str, Vec<String>), usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('"') {
            return Err(err(n, "quotes are not supported".to_owned()));
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (sec, rest) = match fields.split_first() {
            Some((&"p", rest)) => ("p", rest),
            Some((&"g", rest)) => ("g", rest),
            _ => return Err(err(n, "a rule starts with `p,` or `g,`".to_owned())),
        };
        match sec {
            "p" => {
                let [sub, dom, obj, act] = rest else {
                    return Err(err(
                        n,
                        format!(
                            "`p` takes 4 fields (subject, tenant, object, action), found {}",
                            rest.len()
                        ),
                    ));
                };
                check_subject(sub).map_err(|m| err(n, m))?;
                if *dom != "*" {
                    TenantId::parse(dom).map_err(|m| err(n, m))?;
                }
                if *obj != "*" && !object::ALL.contains(obj) {
                    return Err(err(
                        n,
                        format!(
                            "unknown object {obj:?}: one of {} or *",
                            object::ALL.join(", ")
                        ),
                    ));
                }
                if *act != "*" && !action::ALL.contains(act) {
                    return Err(err(n, format!("unknown action {act:?}: read, write or *")));
                }
            }
            _ => {
                let [sub, role, dom] = rest else {
                    return Err(err(
                        n,
                        format!(
                            "`g` takes 3 fields (subject, role, tenant), found {}",
                            rest.len()
                        ),
                    ));
                };
                check_subject(sub).map_err(|m| err(n, m))?;
                Role::parse(role).map_err(|m| err(n, m))?;
                TenantId::parse(dom).map_err(|m| err(n, format!("{m} (no `*` in `g` rules)")))?;
            }
        }
        let fields: Vec<String> = rest.iter().map(|s| (*s).to_owned()).collect();
        if let Some(first) = seen.insert((sec, fields.clone()), n) {
            return Err(err(n, format!("duplicate of line {first}")));
        }
        rules.push(Rule {
            sec,
            fields,
            line: n,
        });
    }
    Ok(Policy { rules })
}

/// A role name, or `principal:<tenant>/<id>`.
fn check_subject(s: &str) -> Result<(), String> {
    if let Some(rest) = s.strip_prefix("principal:") {
        let Some((tenant, id)) = rest.split_once('/') else {
            return Err(format!("subject {s:?}: write principal:<tenant>/<id>"));
        };
        TenantId::parse(tenant)?;
        let ok = !id.is_empty()
            && id
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && c != ',' && c != '"');
        if ok {
            Ok(())
        } else {
            Err(format!("subject {s:?}: empty or malformed principal id"))
        }
    } else {
        Role::parse(s)
            .map(|_| ())
            .map_err(|m| format!("subject: {m}, or principal:<tenant>/<id>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorizer_is_shared_across_tasks() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Authorizer>();
    }

    #[test]
    fn matcher_functions_are_allow_listed() {
        assert!(check_matcher("g(r.sub, p.sub, r.dom) && keyMatch(r.obj, p.obj)").is_ok());
        assert!(check_matcher("g(r.sub, p.sub, r.dom) && regexMatch(r.obj, p.obj)").is_err());
        assert!(check_matcher("g(r.sub, p.sub, r.dom) && keyMatch2 (r.obj, p.obj)").is_err());
        assert!(
            check_matcher("r.obj == p.obj").is_err(),
            "roles must be checked"
        );
    }

    #[test]
    fn names_reaching_key_match_are_plain_ascii() {
        assert!(is_name("metrics:clear-names"));
        for bad in ["", "Metrics", "métrics", "a b", "a*", &"x".repeat(65)] {
            assert!(!is_name(bad), "{bad:?}");
        }
    }
}
