//! What refused or shaped an answer, as typed response extensions and headers: the layers
//! that refuse attach them, the self-metrics and the audit record read them. Plain values,
//! so the readers need not know the layers.

use axum::http::{HeaderName, StatusCode};
use std::fmt;

/// Why a request was refused. Goes to tracing and, as [`AuthnFailure`], to the response's
/// extensions for the audit layer; the client sees only the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    NoCredentials,
    DuplicateAuthorization,
    MalformedAuthorization,
    UnsupportedScheme,
    CertNotMapped,
    CertAmbiguous,
    ApiTokenMalformed,
    ApiTokenUnknown,
    ApiTokenMismatch,
    /// A bearer token no configured method can check.
    NoVerifier,
    JwtMalformed,
    JwtUnknownIssuer,
    JwtAlgorithmNotAllowed,
    JwtMissingKid,
    JwtUnknownKey,
    JwtKeyMismatch,
    JwksUnavailable,
    JwtBadSignature,
    JwtExpired,
    JwtNotYetValid,
    JwtWrongAudience,
    JwtWrongIssuer,
    JwtMissingClaim,
    /// The header's `typ` is not the configured one (e.g. an ID token where `at+jwt` is due).
    JwtWrongType,
    /// `iat` later than now plus the leeway.
    JwtIssuedInFuture,
    /// `exp - iat` over `max_lifetime_seconds`.
    JwtLifetimeTooLong,
    /// A key twice in one JSON object of the header or the payload.
    JwtDuplicateKey,
    /// Tenant or role claim missing, unmapped, ambiguous or not allowed for this issuer.
    ClaimsUnmapped,
    IntrospectionInactive,
    IntrospectionRejected,
    IntrospectionUnavailable,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        use FailureReason::*;
        match self {
            NoCredentials => "no_credentials",
            DuplicateAuthorization => "duplicate_authorization",
            MalformedAuthorization => "malformed_authorization",
            UnsupportedScheme => "unsupported_scheme",
            CertNotMapped => "cert_not_mapped",
            CertAmbiguous => "cert_ambiguous",
            ApiTokenMalformed => "api_token_malformed",
            ApiTokenUnknown => "api_token_unknown",
            ApiTokenMismatch => "api_token_mismatch",
            NoVerifier => "no_verifier",
            JwtMalformed => "jwt_malformed",
            JwtUnknownIssuer => "jwt_unknown_issuer",
            JwtAlgorithmNotAllowed => "jwt_algorithm_not_allowed",
            JwtMissingKid => "jwt_missing_kid",
            JwtUnknownKey => "jwt_unknown_key",
            JwtKeyMismatch => "jwt_key_mismatch",
            JwksUnavailable => "jwks_unavailable",
            JwtBadSignature => "jwt_bad_signature",
            JwtExpired => "jwt_expired",
            JwtNotYetValid => "jwt_not_yet_valid",
            JwtWrongAudience => "jwt_wrong_audience",
            JwtWrongIssuer => "jwt_wrong_issuer",
            JwtMissingClaim => "jwt_missing_claim",
            JwtWrongType => "jwt_wrong_type",
            JwtIssuedInFuture => "jwt_issued_in_future",
            JwtLifetimeTooLong => "jwt_lifetime_too_long",
            JwtDuplicateKey => "jwt_duplicate_key",
            ClaimsUnmapped => "claims_unmapped",
            IntrospectionInactive => "introspection_inactive",
            IntrospectionRejected => "introspection_rejected",
            IntrospectionUnavailable => "introspection_unavailable",
        }
    }

    /// 400 for a request that is malformed as HTTP, 401 for everything else.
    pub fn status(self) -> StatusCode {
        match self {
            FailureReason::DuplicateAuthorization | FailureReason::MalformedAuthorization => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Response extension on every refusal, for the audit layer outside this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthnFailure {
    pub reason: FailureReason,
}

/// Which limit refused a request; a response extension for the audit layer and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimited {
    Ip,
    Tenant,
    Principal,
}

impl RateLimited {
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimited::Ip => "ip",
            RateLimited::Tenant => "tenant",
            RateLimited::Principal => "principal",
        }
    }
}

/// The response header naming a truncated view: `<series kept>/<series visible>`.
pub const TRUNCATED_HEADER: HeaderName = HeaderName::from_static("x-slurm-exporter-truncated");

/// Marks a response refused at the quota, for the audit layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaRefused {
    pub visible_series: usize,
    pub limit: usize,
}
