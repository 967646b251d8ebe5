//! `slurm_scheduler_*`: slurmctld's threads, agents, job counters and the main and backfill
//! schedulers, from `sdiag` / REST `diag`. Infrastructure, so every series is
//! `Owner::Cluster`. Values a Slurm release does not report are left out, never zero.

use super::shared::Options;
use crate::model::Diag;
use crate::snapshot::Snapshot;
use crate::store::{Kind, Owner, Sink};

/// Appended to the HELP of counters that `sdiag` resets at midnight UTC.
macro_rules! since_reset {
    ($what:literal) => {
        concat!(
            $what,
            " Since the statistics were last reset: midnight UTC, sdiag --reset, or slurmctld restart."
        )
    };
}

type Pick = fn(&Diag) -> Option<f64>;

fn n(v: Option<u64>) -> Option<f64> {
    v.map(|x| x as f64)
}

/// One unlabelled series each: kind, name (counters without `_total`), help, value.
const SCALARS: &[(Kind, &str, &str, Pick)] = &[
    (
        Kind::Gauge,
        "slurm_scheduler_stats_timestamp_seconds",
        "When slurmctld produced these statistics (Unix time).",
        |d| n(d.report_epoch),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_stats_reset_timestamp_seconds",
        "When the scheduler statistics were last reset (Unix time): midnight UTC, sdiag --reset, or slurmctld start.",
        |d| n(d.stats_reset_epoch),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_server_threads",
        "Active slurmctld server threads; staying near the thread limit means slurmctld is saturated.",
        |d| n(d.server_thread_count),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_agent_queue_size",
        "Outgoing RPCs to slurmd daemons waiting in slurmctld's agent retry queue.",
        |d| n(d.agent_queue_size),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_agents",
        "slurmctld agent threads sending RPCs to nodes.",
        |d| n(d.agent_count),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_agent_threads",
        "Active threads created by all slurmctld agent threads.",
        |d| n(d.agent_thread_count),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_dbd_agent_queue_size",
        "Messages for slurmdbd queued in slurmctld; grows while slurmdbd or its database is down (limit MaxDBDMsgs).",
        |d| n(d.dbd_agent_queue_size),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_gettimeofday_latency_seconds",
        "Time slurmctld took for 1000 gettimeofday() calls, measured when it started.",
        |d| d.gettimeofday_latency_seconds,
    ),
    (
        Kind::Counter,
        "slurm_scheduler_jobs_submitted",
        since_reset!("Jobs submitted."),
        |d| n(d.jobs_submitted),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_jobs_started",
        since_reset!("Jobs started, backfilled ones included."),
        |d| n(d.jobs_started),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_jobs_completed",
        since_reset!("Jobs completed."),
        |d| n(d.jobs_completed),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_jobs_canceled",
        since_reset!("Jobs canceled."),
        |d| n(d.jobs_canceled),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_jobs_failed",
        since_reset!("Jobs failed because of slurmd or other internal problems."),
        |d| n(d.jobs_failed),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_jobs_pending",
        "Pending jobs as slurmctld last counted them (see slurm_scheduler_job_states_timestamp_seconds).",
        |d| n(d.jobs_pending),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_jobs_running",
        "Running jobs as slurmctld last counted them (see slurm_scheduler_job_states_timestamp_seconds).",
        |d| n(d.jobs_running),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_job_states_timestamp_seconds",
        "When slurmctld last counted pending and running jobs (Unix time).",
        |d| n(d.job_states_epoch),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_main_last_cycle_seconds",
        "Duration of the main scheduler's last cycle.",
        |d| d.main.last_cycle_seconds,
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_main_max_cycle_seconds",
        "Longest main scheduler cycle since the statistics were last reset.",
        |d| d.main.max_cycle_seconds,
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_main_mean_cycle_seconds",
        "Mean main scheduler cycle since the statistics were last reset.",
        |d| d.main.mean_cycle_seconds,
    ),
    (
        Kind::Counter,
        "slurm_scheduler_main_cycles",
        since_reset!("Main scheduler cycles."),
        |d| n(d.main.cycles),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_main_cycle_time_seconds",
        since_reset!("Time spent in main scheduler cycles (REST v0.0.41+ only)."),
        |d| d.main.cycle_sum_seconds,
    ),
    (
        Kind::Counter,
        "slurm_scheduler_main_jobs_processed",
        since_reset!("Jobs examined by main scheduler cycles (REST v0.0.41+ only)."),
        |d| n(d.main.depth_sum),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_main_mean_depth",
        "Mean jobs examined per main scheduler cycle since the statistics were last reset.",
        |d| n(d.main.mean_depth),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_main_cycles_per_minute",
        "Main scheduler cycles per minute since the statistics were last reset, as slurmctld computes it.",
        |d| n(d.main.cycles_per_minute),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_main_last_queue_length",
        "Pending jobs in the main scheduler's queue at its last cycle.",
        |d| n(d.main.last_queue_length),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_active",
        "1 while a backfill cycle was running when the statistics were taken.",
        |d| d.backfill.active.map(|a| if a { 1.0 } else { 0.0 }),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_backfilled_jobs",
        "Jobs started by the backfill scheduler since slurmctld started (not reset at midnight or by sdiag --reset).",
        |d| n(d.backfill.backfilled_jobs),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_backfilled_jobs_since_reset",
        since_reset!("Jobs started by the backfill scheduler."),
        |d| n(d.backfill.backfilled_jobs_since_reset),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_backfilled_het_jobs",
        "Heterogeneous job components started by the backfill scheduler since slurmctld started.",
        |d| n(d.backfill.backfilled_het_jobs),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_backfill_cycles",
        since_reset!("Backfill scheduler cycles."),
        |d| n(d.backfill.cycles),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_backfill_cycle_time_seconds",
        since_reset!("Time spent in backfill cycles, sleeps excluded (REST v0.0.39+ only)."),
        |d| d.backfill.cycle_sum_seconds,
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_last_cycle_timestamp_seconds",
        "When the last backfill cycle ran (Unix time).",
        |d| n(d.backfill.last_cycle_epoch),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_last_cycle_seconds",
        "Duration of the last backfill cycle, sleeps excluded.",
        |d| d.backfill.last_cycle_seconds,
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_max_cycle_seconds",
        "Longest backfill cycle since the statistics were last reset, sleeps excluded.",
        |d| d.backfill.max_cycle_seconds,
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_mean_cycle_seconds",
        "Mean backfill cycle since the statistics were last reset.",
        |d| d.backfill.mean_cycle_seconds,
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_last_depth",
        "Jobs examined by the last backfill cycle, ineligible ones included.",
        |d| n(d.backfill.last_depth),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_last_depth_try",
        "Jobs the last backfill cycle tried to schedule (those with a chance to start).",
        |d| n(d.backfill.last_depth_try),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_mean_depth",
        "Mean jobs examined per backfill cycle since the statistics were last reset.",
        |d| n(d.backfill.mean_depth),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_mean_depth_try",
        "Mean jobs the backfill scheduler tried to schedule per cycle since the statistics were last reset.",
        |d| n(d.backfill.mean_depth_try),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_backfill_jobs_processed",
        since_reset!("Jobs examined by backfill cycles (REST v0.0.39+ only)."),
        |d| n(d.backfill.depth_sum),
    ),
    (
        Kind::Counter,
        "slurm_scheduler_backfill_jobs_tried",
        since_reset!("Jobs the backfill scheduler tried to schedule (REST v0.0.39+ only)."),
        |d| n(d.backfill.depth_try_sum),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_last_queue_length",
        "Jobs pending for the backfill scheduler at its last cycle; a job counts once per partition.",
        |d| n(d.backfill.last_queue_length),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_mean_queue_length",
        "Mean jobs pending for the backfill scheduler per cycle since the statistics were last reset.",
        |d| n(d.backfill.mean_queue_length),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_last_table_size",
        "Time slots the backfill scheduler tested in its last cycle.",
        |d| n(d.backfill.last_table_size),
    ),
    (
        Kind::Gauge,
        "slurm_scheduler_backfill_mean_table_size",
        "Mean time slots the backfill scheduler tested per cycle since the statistics were last reset.",
        |d| n(d.backfill.mean_table_size),
    ),
];

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let Some(d) = s.diag.as_deref() else {
        return;
    };
    for (kind, name, help, pick) in SCALARS {
        if let Some(v) = pick(d) {
            out.family(*kind, *name, *help, &[])
                .push(Owner::Cluster, [], v);
        }
    }
    let exits = [
        (
            "slurm_scheduler_main_exits",
            since_reset!("Main scheduler cycles by the reason they ended (end_job_queue, default_queue_depth, max_job_start, max_rpc_cnt, max_sched_time, licenses)."),
            &d.main.exits,
        ),
        (
            "slurm_scheduler_backfill_exits",
            since_reset!("Backfill cycles by the reason they ended (end_job_queue, bf_max_job_start, bf_max_job_test, bf_max_time, bf_node_space_size, state_changed)."),
            &d.backfill.exits,
        ),
    ];
    for (name, help, reasons) in exits {
        if reasons.is_empty() {
            continue;
        }
        let f = out.counter(name, help, &["reason"]);
        let mut seen = std::collections::HashSet::new();
        for (reason, v) in reasons {
            // A repeated label set would make the exposition invalid.
            if seen.insert(reason.as_str()) {
                f.push(Owner::Cluster, [reason.clone().into()], *v as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::diag::{parse_diag_json, parse_sdiag_text};
    use crate::parse::ping::parse_ping_json;
    use crate::store::{encode, Format};
    use std::collections::BTreeSet;
    use std::sync::Arc;

    fn snapshot(d: Diag) -> Snapshot {
        Snapshot {
            diag: Some(Arc::new(d)),
            ..Snapshot::default()
        }
    }

    fn render(s: &Snapshot) -> String {
        let mut sink = Sink::default();
        collect(s, &Options::default(), &mut sink);
        let mut out = Vec::new();
        encode(&sink.into_families(), Format::Text, &|_| true, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn sdiag_capture_becomes_scheduler_series() {
        let d = parse_sdiag_text(include_str!("../../testdata/cli/22.05.8/sdiag.txt"))
            .expect("capture parses");
        let text = render(&snapshot(d));
        for line in [
            "slurm_scheduler_server_threads 3\n",
            "slurm_scheduler_stats_reset_timestamp_seconds 1795860180\n",
            "# TYPE slurm_scheduler_jobs_submitted_total counter\n",
            "slurm_scheduler_jobs_submitted_total 72\n",
            "slurm_scheduler_jobs_pending 42\n",
            "slurm_scheduler_main_max_cycle_seconds 0.003077\n",
            "slurm_scheduler_main_cycles_total 14\n",
            "slurm_scheduler_backfill_active 0\n",
            "slurm_scheduler_backfilled_jobs_total 21\n",
            "slurm_scheduler_backfill_mean_table_size 3\n",
            "slurm_scheduler_gettimeofday_latency_seconds 0.000021\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // 22.05 reports neither sums nor exit reasons: absent, not zero.
        assert!(!text.contains("slurm_scheduler_main_cycle_time_seconds"));
        assert!(!text.contains("slurm_scheduler_main_exits"));
    }

    #[test]
    fn exit_reasons_are_labelled_counters() {
        let d = parse_sdiag_text(include_str!("../../testdata/cli/25.05.8/sdiag.txt"))
            .expect("fixture parses");
        let text = render(&snapshot(d));
        assert!(text.contains("# TYPE slurm_scheduler_main_exits_total counter\n"));
        assert!(text.contains("slurm_scheduler_main_exits_total{reason=\"end_job_queue\"} 50\n"));
        assert!(text.contains("slurm_scheduler_backfill_exits_total{reason=\"bf_max_time\"} 3\n"));
    }

    #[test]
    fn no_diag_no_series() {
        let mut sink = Sink::default();
        collect(&Snapshot::default(), &Options::default(), &mut sink);
        assert!(sink.is_empty());
    }

    /// The three slurmctld families together, from the newest REST shape.
    #[test]
    fn coverage_families_are_well_formed_and_owned_by_the_cluster() {
        let d = parse_diag_json(include_bytes!(
            "../../testdata/rest/25.11.0/slurm_v0.0.44_diag.json"
        ))
        .expect("fixture parses");
        let pings = parse_ping_json(include_bytes!(
            "../../testdata/rest/25.11.0/slurm_v0.0.44_ping.json"
        ))
        .expect("fixture parses");
        let s = Snapshot {
            controllers: Arc::new(pings),
            ..snapshot(d)
        };
        let mut sink = Sink::default();
        collect(&s, &Options::default(), &mut sink);
        super::super::rpc::collect(&s, &Options::default(), &mut sink);
        super::super::controllers::collect(&s, &Options::default(), &mut sink);
        let fams = sink.into_families();
        let names: BTreeSet<&str> = fams.iter().map(|f| &*f.name).collect();
        assert_eq!(names.len(), fams.len(), "each family made once");
        assert!(names.len() >= 45, "{} names: {names:?}", names.len());
        for f in &fams {
            assert!(
                f.kind == Kind::Counter || !f.name.ends_with("_total"),
                "gauge {} ends in _total",
                f.name
            );
            assert!(!f.help.is_empty(), "{} has no help", f.name);
            assert!(
                f.series.iter().all(|s| s.owner == Owner::Cluster),
                "{}",
                f.name
            );
            let labels: BTreeSet<_> = f.series.iter().map(|s| &s.labels).collect();
            assert_eq!(
                labels.len(),
                f.series.len(),
                "{} repeats a label set",
                f.name
            );
        }
    }
}
