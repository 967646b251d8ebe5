//! `slurm_rpc_*`: the RPCs slurmctld served, by message type and by user, and the outgoing
//! RPCs pending on its agent queue, from `sdiag` / REST `diag`. slurmctld keeps these for
//! its whole life (not reset at midnight), so counters drop only on restart or
//! `sdiag --reset`. Operators' view only (`Owner::Cluster`): user names here are not tied
//! to any account a tenant owns.

use super::shared::Options;
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::BTreeMap;

const RESET_NOTE: &str = "Resets when slurmctld restarts or on sdiag --reset.";

/// One label value's totals; repeats (hostile or odd input) are summed so every label set
/// appears once.
#[derive(Default)]
struct Agg {
    count: u64,
    total_seconds: f64,
    reported_average: Option<f64>,
    records: usize,
    queued: Option<u64>,
    dropped: Option<u64>,
    cycle_last: Option<u64>,
    cycle_max: Option<u64>,
}

impl Agg {
    fn add(&mut self, count: u64, total: f64, avg: Option<f64>) {
        self.count += count;
        self.total_seconds += total;
        self.reported_average = avg;
        self.records += 1;
    }

    /// Slurm's own average (whole microseconds) for a single record, else computed.
    fn average(&self) -> f64 {
        match self.reported_average {
            Some(a) if self.records == 1 => a,
            _ if self.count > 0 => self.total_seconds / self.count as f64,
            _ => 0.0,
        }
    }
}

fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.saturating_add(y)),
        (x, y) => x.or(y),
    }
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let Some(d) = s.diag.as_deref() else {
        return;
    };
    let o = || Owner::Cluster;

    if let Some(enabled) = d.rpc_queue_enabled {
        out.gauge(
            "slurm_rpc_queue_enabled",
            "1 when slurmctld queues incoming RPCs by type (SlurmctldParameters=enable_rpc_queue).",
            &[],
        )
        .push(o(), [], if enabled { 1.0 } else { 0.0 });
    }

    let mut by_type: BTreeMap<&str, Agg> = BTreeMap::new();
    for r in &d.rpcs_by_type {
        let a = by_type.entry(r.message_type.as_str()).or_default();
        a.add(r.count, r.total_time_seconds, r.average_time_seconds);
        a.queued = sum(a.queued, r.queued);
        a.dropped = sum(a.dropped, r.dropped);
        a.cycle_last = a.cycle_last.max(r.cycle_last);
        a.cycle_max = a.cycle_max.max(r.cycle_max);
    }
    if !by_type.is_empty() {
        let f = out.counter(
            "slurm_rpc_calls",
            format!("RPCs slurmctld received, by message type. {RESET_NOTE}"),
            &["type"],
        );
        for (t, a) in &by_type {
            f.push(o(), [(*t).to_owned().into()], a.count as f64);
        }
        let f = out.counter(
            "slurm_rpc_time_seconds",
            format!("Time slurmctld spent processing RPCs, by message type. {RESET_NOTE}"),
            &["type"],
        );
        for (t, a) in &by_type {
            f.push(o(), [(*t).to_owned().into()], a.total_seconds);
        }
        let f = out.gauge(
            "slurm_rpc_average_time_seconds",
            "Mean time slurmctld spent per RPC of this message type since slurmctld start or sdiag --reset.",
            &["type"],
        );
        for (t, a) in &by_type {
            f.push(o(), [(*t).to_owned().into()], a.average());
        }
        type QueuePick = fn(&Agg) -> Option<u64>;
        let queue: [(bool, &'static str, String, QueuePick); 4] = [
            (
                false,
                "slurm_rpc_queued",
                "RPCs of this type waiting in slurmctld's RPC queue (RPC queue enabled only).".to_owned(),
                |a| a.queued,
            ),
            (
                true,
                "slurm_rpc_dropped",
                format!("RPCs of this type slurmctld's RPC queue dropped (RPC queue enabled only). {RESET_NOTE}"),
                |a| a.dropped,
            ),
            (
                false,
                "slurm_rpc_queue_last_cycle_rpcs",
                "RPCs of this type processed in the RPC queue's last cycle (RPC queue enabled only).".to_owned(),
                |a| a.cycle_last,
            ),
            (
                false,
                "slurm_rpc_queue_max_cycle_rpcs",
                "Most RPCs of this type processed in one RPC queue cycle since slurmctld start (RPC queue enabled only).".to_owned(),
                |a| a.cycle_max,
            ),
        ];
        // slurmrestd writes these as zeros when the RPC queue is off; without sdiag's
        // "RPC queue enabled" line, all zeros is taken to mean off, to spare ~4 series per type.
        let queue_on = d.rpc_queue_enabled.unwrap_or_else(|| {
            by_type
                .values()
                .any(|a| queue.iter().any(|q| q.3(a).is_some_and(|v| v > 0)))
        });
        for (is_counter, name, help, pick) in queue {
            if !queue_on || by_type.values().all(|a| pick(a).is_none()) {
                continue;
            }
            let f = if is_counter {
                out.counter(name, help, &["type"])
            } else {
                out.gauge(name, help, &["type"])
            };
            for (t, a) in &by_type {
                if let Some(v) = pick(a) {
                    f.push(o(), [(*t).to_owned().into()], v as f64);
                }
            }
        }
    }

    let mut by_user: BTreeMap<&str, Agg> = BTreeMap::new();
    for u in &d.rpcs_by_user {
        by_user.entry(u.user.as_str()).or_default().add(
            u.count,
            u.total_time_seconds,
            u.average_time_seconds,
        );
    }
    if !by_user.is_empty() {
        let f = out.counter(
            "slurm_rpc_user_calls",
            format!("RPCs slurmctld received, by user. {RESET_NOTE}"),
            &["user"],
        );
        for (u, a) in &by_user {
            f.push(o(), [(*u).to_owned().into()], a.count as f64);
        }
        let f = out.counter(
            "slurm_rpc_user_time_seconds",
            format!("Time slurmctld spent processing RPCs, by user. {RESET_NOTE}"),
            &["user"],
        );
        for (u, a) in &by_user {
            f.push(o(), [(*u).to_owned().into()], a.total_seconds);
        }
        let f = out.gauge(
            "slurm_rpc_user_average_time_seconds",
            "Mean time slurmctld spent per RPC from this user since slurmctld start or sdiag --reset.",
            &["user"],
        );
        for (u, a) in &by_user {
            f.push(o(), [(*u).to_owned().into()], a.average());
        }
    }

    let mut pending: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &d.pending_rpcs {
        *pending.entry(p.message_type.as_str()).or_default() += p.count;
    }
    if !pending.is_empty() {
        let f = out.gauge(
            "slurm_rpc_pending",
            "Outgoing RPCs waiting on slurmctld's agent queue, by message type (refreshed by slurmctld every 30 s).",
            &["type"],
        );
        for (t, n) in pending {
            f.push(o(), [t.to_owned().into()], n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::scheduler::{PendingRpc, RpcTypeStat};
    use crate::model::Diag;
    use crate::parse::diag::{parse_diag_json, parse_sdiag_text};
    use crate::store::{encode, Format};
    use std::sync::Arc;

    fn render(d: Diag) -> String {
        let s = Snapshot {
            diag: Some(Arc::new(d)),
            ..Snapshot::default()
        };
        let mut sink = Sink::default();
        collect(&s, &Options::default(), &mut sink);
        let mut out = Vec::new();
        encode(&sink.into_families(), Format::Text, &|_| true, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn sdiag_capture_becomes_rpc_series() {
        let d = parse_sdiag_text(include_str!("../../testdata/cli/22.05.8/sdiag.txt"))
            .expect("capture parses");
        let text = render(d);
        for line in [
            "# TYPE slurm_rpc_calls_total counter\n",
            "slurm_rpc_calls_total{type=\"REQUEST_SUBMIT_BATCH_JOB\"} 24\n",
            "slurm_rpc_time_seconds_total{type=\"REQUEST_SUBMIT_BATCH_JOB\"} 0.023661\n",
            "slurm_rpc_average_time_seconds{type=\"REQUEST_SUBMIT_BATCH_JOB\"} 0.000985\n",
            "slurm_rpc_user_calls_total{user=\"alice\"} 8\n",
            "slurm_rpc_user_time_seconds_total{user=\"alice\"} 0.00579\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("slurm_rpc_pending"), "nothing pending");
        assert!(!text.contains("slurm_rpc_queued"), "no RPC queue in 22.05");
    }

    #[test]
    fn queue_series_only_when_the_rpc_queue_is_on() {
        let off = parse_diag_json(include_bytes!(
            "../../testdata/rest/24.05.8/slurm_v0.0.41_diag.json"
        ))
        .expect("fixture parses");
        let text = render(off);
        assert!(!text.contains("slurm_rpc_queued"), "all zeros: queue off");
        assert!(text.contains("slurm_rpc_pending{type=\"REQUEST_TERMINATE_JOB\"} 2\n"));
        let on = parse_diag_json(include_bytes!(
            "../../testdata/rest/25.11.0/slurm_v0.0.44_diag.json"
        ))
        .expect("fixture parses");
        let text = render(on);
        assert!(text.contains("slurm_rpc_queued{type=\"REQUEST_SUBMIT_BATCH_JOB\"} 3\n"));
        assert!(text.contains("slurm_rpc_queued{type=\"REQUEST_PING\"} 0\n"));
        assert!(text.contains("slurm_rpc_dropped_total{type=\"REQUEST_SUBMIT_BATCH_JOB\"} 1\n"));
        assert!(
            text.contains("slurm_rpc_queue_max_cycle_rpcs{type=\"REQUEST_SUBMIT_BATCH_JOB\"} 9\n")
        );
    }

    #[test]
    fn repeated_types_are_summed_into_one_series() {
        let rec = |count, us: f64| RpcTypeStat {
            message_type: "REQUEST_PING".into(),
            count,
            total_time_seconds: us / 1e6,
            average_time_seconds: Some(1.0),
            ..RpcTypeStat::default()
        };
        let d = Diag {
            rpcs_by_type: vec![rec(2, 1e6), rec(3, 2e6)],
            pending_rpcs: vec![
                PendingRpc {
                    message_type: "X".into(),
                    type_id: None,
                    count: 1,
                },
                PendingRpc {
                    message_type: "X".into(),
                    type_id: None,
                    count: 4,
                },
            ],
            ..Diag::default()
        };
        let text = render(d);
        assert!(
            text.contains("slurm_rpc_calls_total{type=\"REQUEST_PING\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("slurm_rpc_average_time_seconds{type=\"REQUEST_PING\"} 0.6\n"));
        assert!(text.contains("slurm_rpc_pending{type=\"X\"} 5\n"));
        assert_eq!(text.matches("slurm_rpc_calls_total{").count(), 1);
    }

    #[test]
    fn no_diag_no_series() {
        let mut sink = Sink::default();
        collect(&Snapshot::default(), &Options::default(), &mut sink);
        assert!(sink.is_empty());
    }
}
