//! `chargeback`: priced usage from the chargeback store (crate `chargeback`), when
//! `[chargeback]` is configured: TRES-seconds and cost per account, partition, QOS.
//!
//! Both are counters read from the persisted store, so they survive restarts. A running job
//! adds to them every poll up to that poll's time; when its final record charges less (the
//! exporter's clock ran ahead of slurmdbd's) the counters hold their value until usage
//! catches up, so they never decrease. `slurm-exporter usage report` gives the exact
//! figures by billing period.

use super::shared::Options;
use crate::model::Name;
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let Some(c) = s
        .accounting
        .as_deref()
        .and_then(|t| t.chargeback.as_deref())
    else {
        return;
    };
    let f = out.counter(
        "slurm_chargeback_tres_seconds",
        "TRES-seconds allocated to the account's jobs, running ones up to the last poll (memory in byte-seconds, energy in joules).",
        &["account", "partition", "qos", "tres"],
    );
    for ((a, p, q, t), v) in &c.tres_seconds {
        f.push(
            Owner::Account(Name::from(a.as_str())),
            [
                a.clone().into(),
                p.clone().into(),
                q.clone().into(),
                t.clone().into(),
            ],
            *v as f64,
        );
    }
    let f = out.counter(
        "slurm_chargeback_cost",
        "Cost of the account's jobs under the rate card, in the currency (multipliers applied).",
        &["account", "partition", "qos", "currency"],
    );
    for ((a, p, q, cur), v) in &c.cost_nano {
        f.push(
            Owner::Account(Name::from(a.as_str())),
            [
                a.clone().into(),
                p.clone().into(),
                q.clone().into(),
                cur.clone().into(),
            ],
            *v as f64 / chargeback::rates::NANO as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::render;
    use crate::model::AccountingTotals;
    use std::sync::Arc;

    #[test]
    fn counters_are_owned_by_their_account() {
        let c = chargeback::Counters {
            tres_seconds: [(
                (
                    "physics".into(),
                    "gpu".into(),
                    "normal".into(),
                    "cpu".into(),
                ),
                7200,
            )]
            .into(),
            cost_nano: [(
                (
                    "physics".into(),
                    "gpu".into(),
                    "normal".into(),
                    "EUR".into(),
                ),
                1_500_000_000,
            )]
            .into(),
        };
        let snap = Snapshot {
            accounting: Some(Arc::new(AccountingTotals {
                chargeback: Some(Arc::new(c)),
                ..AccountingTotals::default()
            })),
            ..Snapshot::default()
        };
        let (fams, text) = render(collect, &snap);
        assert!(text.contains("slurm_chargeback_tres_seconds_total{account=\"physics\",partition=\"gpu\",qos=\"normal\",tres=\"cpu\"} 7200\n"), "{text}");
        assert!(text.contains("slurm_chargeback_cost_total{account=\"physics\",partition=\"gpu\",qos=\"normal\",currency=\"EUR\"} 1.5\n"), "{text}");
        assert!(fams
            .iter()
            .flat_map(|f| &f.series)
            .all(|s| s.owner == Owner::Account("physics".into())));
        let (none, _) = render(collect, &Snapshot::default());
        assert!(none.is_empty(), "no chargeback, no series");
    }
}
