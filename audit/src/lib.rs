//! Append-only, AES-256-GCM encrypted, hash-chained audit log and its verifier.
//!
//! Skeleton: the record format, writer and verifier arrive with the audit-log issue. The
//! crate exists now so the workspace has its final shape and the gateway can depend on it.

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log is not implemented yet")]
    NotImplemented,
}
