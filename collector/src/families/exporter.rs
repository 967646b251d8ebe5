//! `slurm_exporter_*`: the exporter's own health per source. Owned by [`Owner::Exporter`]:
//! operators see it, tenants never do.

use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};

pub fn collect(s: &Snapshot, stats: &[super::shared::FamilyStats], out: &mut Sink) {
    let o = || Owner::Exporter;
    out.gauge(
        "slurm_exporter_build_info",
        "Exporter version (value 1).",
        &["version"],
    )
    .push(o(), [env!("CARGO_PKG_VERSION").into()], 1.0);
    let f = out.gauge(
        "slurm_exporter_source_up",
        "1 when the source's last poll succeeded and its data is fresh, else 0.",
        &["source"],
    );
    for st in s.sources.iter() {
        f.push(
            o(),
            [st.source.clone().into()],
            if st.up { 1.0 } else { 0.0 },
        );
    }
    let f = out.gauge(
        "slurm_exporter_source_stale",
        "1 when the source's last good data is older than max_staleness and is no longer served.",
        &["source"],
    );
    for st in s.sources.iter() {
        f.push(
            o(),
            [st.source.clone().into()],
            if st.stale { 1.0 } else { 0.0 },
        );
    }
    let f = out.gauge(
        "slurm_exporter_source_duration_seconds",
        "How long the source's last poll took.",
        &["source"],
    );
    for st in s.sources.iter() {
        f.push(o(), [st.source.clone().into()], st.last_duration_seconds);
    }
    let f = out.gauge(
        "slurm_exporter_source_last_success_timestamp_seconds",
        "When the source last answered with good data, seconds since the epoch.",
        &["source"],
    );
    for st in s.sources.iter() {
        if let Some(t) = st.last_success_epoch {
            f.push(o(), [st.source.clone().into()], t);
        }
    }
    let f = out.counter(
        "slurm_exporter_source_polls",
        "Polls of the source since start.",
        &["source"],
    );
    for st in s.sources.iter() {
        f.push(o(), [st.source.clone().into()], st.polls as f64);
    }
    let f = out.counter(
        "slurm_exporter_source_errors",
        "Failed polls of the source by kind of error (timeout, http, auth, parse, spawn, exit, io).",
        &["source", "kind"],
    );
    for st in s.sources.iter() {
        for (kind, n) in &st.errors {
            f.push(o(), [st.source.clone().into(), (*kind).into()], *n as f64);
        }
    }
    let f = out.counter(
        "slurm_exporter_source_not_modified",
        "Polls answered 304 Not Modified (previous data reused).",
        &["source"],
    );
    for st in s.sources.iter() {
        f.push(o(), [st.source.clone().into()], st.not_modified as f64);
    }
    let f = out.gauge(
        "slurm_exporter_source_bytes",
        "Bytes the source's last poll read.",
        &["source"],
    );
    for st in s.sources.iter() {
        f.push(o(), [st.source.clone().into()], st.last_bytes as f64);
    }
    out.gauge(
        "slurm_exporter_snapshot_timestamp_seconds",
        "When the data in this exposition was fetched from Slurm, seconds since the epoch.",
        &[],
    )
    .push(o(), [], s.taken_epoch as f64);
    out.gauge(
        "slurm_exporter_snapshot_nodes",
        "Nodes in the published snapshot.",
        &[],
    )
    .push(o(), [], s.nodes.len() as f64);
    out.gauge(
        "slurm_exporter_snapshot_jobs",
        "Job records in the published snapshot (before array expansion).",
        &[],
    )
    .push(o(), [], s.jobs.len() as f64);
    let f = out.gauge(
        "slurm_exporter_part_source",
        "Which source's copy of each part (nodes, jobs, diag, ...) this collection used (value 1): the highest-priority source within the correlation window of the newest copy.",
        &["part", "source"],
    );
    for (part, source) in s.part_sources.iter() {
        f.push(o(), [(*part).into(), source.clone().into()], 1.0);
    }
    let f = out.gauge(
        "slurm_exporter_series",
        "Series each family produced in this collection.",
        &["family"],
    );
    for st in stats {
        f.push(o(), [st.family.into()], st.series as f64);
    }
    let f = out.gauge(
        "slurm_exporter_series_folded",
        "Series of the family folded into __overflow__ in this collection because a metric went over its label budget.",
        &["family"],
    );
    for st in stats {
        f.push(o(), [st.family.into()], st.folded as f64);
    }
}
