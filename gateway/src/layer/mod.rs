//! The gateway's own tower layers, one concern per module. Their order lives in
//! `crate::stack`, not here.

pub mod audit;
pub mod authn;
pub mod authz;
pub mod quota;
pub mod rate_limit;
