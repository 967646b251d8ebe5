//! `slurm_controller*`: whether each slurmctld (primary, backups) answers ping, from REST
//! `ping` or `scontrol ping`. Infrastructure: `Owner::Cluster`.

use super::shared::Options;
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::HashSet;

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    if s.controllers.is_empty() {
        return;
    }
    // A repeated (host, mode) would make the exposition invalid; the first answer wins.
    let mut seen = HashSet::new();
    let controllers: Vec<_> = s
        .controllers
        .iter()
        .filter(|c| seen.insert((c.host.as_str(), c.mode.as_str())))
        .collect();
    let o = || Owner::Cluster;

    let f = out.gauge(
        "slurm_controller_up",
        "1 when this slurmctld answered ping, 0 when it did not.",
        &["host", "mode"],
    );
    for c in &controllers {
        f.push(
            o(),
            [c.host.clone().into(), c.mode.clone().into()],
            if c.up { 1.0 } else { 0.0 },
        );
    }
    if controllers.iter().any(|c| c.latency_seconds.is_some()) {
        let f = out.gauge(
            "slurm_controller_ping_latency_seconds",
            "How long the ping of this slurmctld took, or took to time out (REST v0.0.39+).",
            &["host", "mode"],
        );
        for c in &controllers {
            if let Some(l) = c.latency_seconds {
                f.push(o(), [c.host.clone().into(), c.mode.clone().into()], l);
            }
        }
    }
    out.gauge(
        "slurm_controllers",
        "slurmctld controllers configured (primary and backups).",
        &[],
    )
    .push(o(), [], controllers.len() as f64);
    out.gauge(
        "slurm_controllers_responding",
        "slurmctld controllers that answered ping; 0 means the cluster has no working controller.",
        &[],
    )
    .push(o(), [], controllers.iter().filter(|c| c.up).count() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Controller;
    use crate::parse::ping::parse_scontrol_ping_text;
    use crate::store::{encode, Format};
    use std::sync::Arc;

    fn render(controllers: Vec<Controller>) -> String {
        let s = Snapshot {
            controllers: Arc::new(controllers),
            ..Snapshot::default()
        };
        let mut sink = Sink::default();
        collect(&s, &Options::default(), &mut sink);
        let mut out = Vec::new();
        encode(&sink.into_families(), Format::Text, &|_| true, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn a_down_backup_shows_as_zero() {
        let cs = parse_scontrol_ping_text(
            "Slurmctld(primary) at host1 is UP\nSlurmctld(backup) at host2 is DOWN\n",
        )
        .expect("parses");
        let text = render(cs);
        assert!(text.contains("slurm_controller_up{host=\"host1\",mode=\"primary\"} 1\n"));
        assert!(text.contains("slurm_controller_up{host=\"host2\",mode=\"backup\"} 0\n"));
        assert!(text.contains("slurm_controllers 2\n"));
        assert!(text.contains("slurm_controllers_responding 1\n"));
        assert!(!text.contains("latency"), "scontrol gives no latency");
    }

    #[test]
    fn latency_when_known_and_repeats_dropped() {
        let c = |host: &str, latency| Controller {
            host: host.into(),
            mode: "primary".into(),
            up: true,
            latency_seconds: latency,
        };
        let text = render(vec![c("a", Some(0.0012)), c("a", Some(9.0)), c("b", None)]);
        assert!(text.contains(
            "slurm_controller_ping_latency_seconds{host=\"a\",mode=\"primary\"} 0.0012\n"
        ));
        assert_eq!(text.matches("slurm_controller_up{").count(), 2);
        assert!(text.contains("slurm_controllers_responding 2\n"));
    }

    #[test]
    fn no_controllers_no_series() {
        assert_eq!(render(Vec::new()), "");
    }
}
