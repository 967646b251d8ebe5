//! `slurm_partition_pending_priority*`: how the multifactor plugin weighs the pending jobs of
//! each partition, factor by factor (from `sprio`), so a dashboard shows why jobs wait.

use super::shared::Options;
use crate::model::Name;
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::BTreeMap;

/// The factors, in `sprio`'s order.
const FACTORS: [&str; 7] = [
    "total",
    "age",
    "fairshare",
    "job_size",
    "partition",
    "qos",
    "tres",
];

#[derive(Default)]
struct Acc {
    jobs: u64,
    sum: [f64; 7],
    max: [f64; 7],
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    if s.priorities.is_empty() {
        return;
    }
    let mut by: BTreeMap<&Name, Acc> = BTreeMap::new();
    for p in s.priorities.iter() {
        let v = [
            p.priority,
            p.age,
            p.fairshare,
            p.job_size,
            p.partition_factor,
            p.qos,
            p.tres,
        ];
        let a = by.entry(&p.partition).or_default();
        a.jobs += 1;
        for (i, x) in v.iter().enumerate() {
            a.sum[i] += x;
            a.max[i] = a.max[i].max(*x);
        }
    }
    let own = |p: &Name| Owner::Partition(p.clone());
    let f = out.gauge(
        "slurm_partition_pending_priority_jobs",
        "Pending jobs sprio reports priority factors for, per partition.",
        &["partition"],
    );
    for (p, a) in &by {
        f.push(own(p), [(*p).into()], a.jobs as f64);
    }
    let f = out.gauge(
        "slurm_partition_pending_priority_mean",
        "Mean weighted priority factor of the partition's pending jobs (total, age, fairshare, job_size, partition, qos, tres), as sprio reports it.",
        &["partition", "factor"],
    );
    for (p, a) in &by {
        for (i, factor) in FACTORS.iter().enumerate() {
            f.push(
                own(p),
                [(*p).into(), (*factor).into()],
                a.sum[i] / a.jobs.max(1) as f64,
            );
        }
    }
    let f = out.gauge(
        "slurm_partition_pending_priority_max",
        "Largest weighted priority factor among the partition's pending jobs.",
        &["partition", "factor"],
    );
    for (p, a) in &by {
        for (i, factor) in FACTORS.iter().enumerate() {
            f.push(own(p), [(*p).into(), (*factor).into()], a.max[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{encode, Format};
    use std::sync::Arc;

    #[test]
    fn factors_per_partition_from_the_lab_capture() {
        let text = include_str!("../../testdata/cli/22.05.8/sprio.txt");
        let p = crate::parse::sprio::parse_sprio(text, &mut Default::default()).expect("parses");
        let snap = Snapshot {
            priorities: Arc::new(p),
            ..Snapshot::default()
        };
        let mut sink = Sink::default();
        collect(&snap, &Options::default(), &mut sink);
        let mut out = Vec::new();
        encode(&sink.into_families(), Format::Text, &|_| true, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("slurm_partition_pending_priority_jobs{partition=\"debug\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(
            "slurm_partition_pending_priority_mean{partition=\"debug\",factor=\"fairshare\"} 1429\n"
        ));
        assert!(text
            .contains("slurm_partition_pending_priority_max{partition=\"cpu\",factor=\"total\"}"));
    }

    #[test]
    fn no_sprio_no_series() {
        let mut sink = Sink::default();
        collect(&Snapshot::default(), &Options::default(), &mut sink);
        assert!(sink.into_families().is_empty());
    }
}
