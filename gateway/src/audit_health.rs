//! The audit log's own health on the admin port: whether the writer has failed, answers whose
//! record was lost (queued mode), and checkpoint publishing to the witness.
//!
//! Registered by [`crate::metrics::GatewayMetrics`]; the audit layer and the publisher update
//! the same handles (prometheus-client metrics are shared references).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishLabels {
    /// `dir` or `url`.
    pub target: String,
    /// `success` or `failure`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: String,
}

/// Handles to the audit health metrics.
#[derive(Clone, Debug, Default)]
pub struct AuditHealth {
    /// 1 while the writer refuses records (a failed write or fsync not yet healed; in queued
    /// mode until restart).
    pub writer_failed: Gauge,
    /// Answers sent before their record was durable whose record then failed (queued mode).
    pub answered_unrecorded: Counter,
    /// Publishing attempts, by target and result.
    pub publish: Family<PublishLabels, Counter>,
    /// When a target last accepted checkpoints.
    pub last_published: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    /// Checkpoints written but not yet accepted by a target.
    pub unpublished: Family<TargetLabels, Gauge>,
}

impl AuditHealth {
    /// Creates the metrics and registers them (prefix of `registry`, e.g.
    /// `slurm_exporter_gateway_audit_...`).
    pub fn register(registry: &mut Registry) -> AuditHealth {
        let h = AuditHealth::default();
        registry.register(
            "audit_writer_failed",
            "1 while the audit writer refuses records after a failed write or fsync (requests are answered 503)",
            h.writer_failed.clone(),
        );
        registry.register(
            "audit_answered_unrecorded",
            "Answers already sent (durability = queued) whose audit record then failed to be written",
            h.answered_unrecorded.clone(),
        );
        registry.register(
            "audit_checkpoint_publish",
            "Attempts to publish signed audit checkpoints, by target (dir, url) and result (success, failure)",
            h.publish.clone(),
        );
        registry.register_with_unit(
            "audit_checkpoint_last_published_timestamp",
            "When a target last accepted the audit log's checkpoints, in seconds since the epoch",
            Unit::Seconds,
            h.last_published.clone(),
        );
        registry.register(
            "audit_checkpoints_unpublished",
            "Signed audit checkpoints written but not yet accepted by a target",
            h.unpublished.clone(),
        );
        h
    }

    /// Makes a target's series exist (at zero) so alerts see their first increment.
    pub fn declare_target(&self, target: &str) {
        for result in ["success", "failure"] {
            let _ = self.publish.get_or_create(&PublishLabels {
                target: target.into(),
                result: result.into(),
            });
        }
        let t = TargetLabels {
            target: target.into(),
        };
        let _ = self.last_published.get_or_create(&t);
        let _ = self.unpublished.get_or_create(&t);
    }
}
