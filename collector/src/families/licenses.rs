//! `slurm_license_*`: license pools (`Licenses=` in slurm.conf, or remote ones served by
//! slurmdbd). Cluster-owned: a pool is shared by every tenant.

use super::shared::Options;
use crate::model::License;
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};

type Pick = fn(&License) -> Option<u64>;

const COUNTS: [(&str, &str, Pick); 7] = [
    (
        "slurm_license_configured",
        "Licenses in the pool (Slurm's Total).",
        |l| Some(l.total),
    ),
    (
        "slurm_license_used",
        "Licenses held by running jobs.",
        |l| Some(l.used),
    ),
    (
        "slurm_license_free",
        "Licenses available to new jobs.",
        |l| Some(l.free),
    ),
    (
        "slurm_license_reserved",
        "Licenses set aside by reservations.",
        |l| Some(l.reserved),
    ),
    (
        "slurm_license_remote_consumed",
        "Remote licenses only: licenses the license manager last reported consumed, inside and outside the cluster.",
        |l| l.last_consumed,
    ),
    (
        "slurm_license_remote_deficit",
        "Remote licenses only: licenses consumed outside Slurm's view that it cannot account for (LastDeficit).",
        |l| l.last_deficit,
    ),
    (
        "slurm_license_remote_last_update_time_seconds",
        "Remote licenses only: when slurmctld last updated the pool from slurmdbd (seconds since the epoch).",
        |l| l.last_update_epoch,
    ),
];

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let o = || Owner::Cluster;
    let f = out.gauge(
        "slurm_license_info",
        "License pools and whether slurmdbd serves them (remote=\"true\") or slurm.conf defines them (value 1).",
        &["license", "remote"],
    );
    for l in s.licenses.iter() {
        let remote = if l.remote { "true" } else { "false" };
        f.push(o(), [(&l.name).into(), remote.into()], 1.0);
    }
    for (name, help, pick) in COUNTS {
        let f = out.gauge(name, help, &["license"]);
        for l in s.licenses.iter() {
            if let Some(v) = pick(l) {
                f.push(o(), [(&l.name).into()], v as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Name;
    use std::sync::Arc;

    fn text(s: &Snapshot) -> String {
        let (fams, text) = crate::families::render(collect, s);
        assert!(fams
            .iter()
            .all(|f| f.series.iter().all(|x| x.owner == Owner::Cluster)));
        text
    }

    #[test]
    fn pools_are_encoded_with_remote_fields_only_when_known() {
        let s = Snapshot {
            licenses: Arc::new(vec![
                License {
                    name: Name::from("matlab"),
                    total: 10,
                    used: 2,
                    free: 8,
                    ..License::default()
                },
                License {
                    name: Name::from("comsol@slurmdb"),
                    total: 20,
                    used: 5,
                    free: 13,
                    reserved: 2,
                    remote: true,
                    last_consumed: Some(6),
                    last_deficit: Some(1),
                    last_update_epoch: Some(1_795_860_000),
                },
            ]),
            ..Snapshot::default()
        };
        let t = text(&s);
        for line in [
            "slurm_license_info{license=\"matlab\",remote=\"false\"} 1\n",
            "slurm_license_info{license=\"comsol@slurmdb\",remote=\"true\"} 1\n",
            "slurm_license_configured{license=\"matlab\"} 10\n",
            "slurm_license_used{license=\"matlab\"} 2\n",
            "slurm_license_free{license=\"matlab\"} 8\n",
            "slurm_license_reserved{license=\"matlab\"} 0\n",
            "slurm_license_reserved{license=\"comsol@slurmdb\"} 2\n",
            "slurm_license_remote_consumed{license=\"comsol@slurmdb\"} 6\n",
            "slurm_license_remote_deficit{license=\"comsol@slurmdb\"} 1\n",
            "slurm_license_remote_last_update_time_seconds{license=\"comsol@slurmdb\"} 1795860000\n",
            "# TYPE slurm_license_configured gauge\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(!t.contains("slurm_license_remote_consumed{license=\"matlab\"}"));
    }

    #[test]
    fn no_licenses_no_series() {
        assert_eq!(text(&Snapshot::default()), "");
    }
}
