//! `slurm_reservation_*`: advance reservations (maintenance windows, courses, projects),
//! their time window, size, and the state of the nodes inside them, joined with the
//! snapshot's nodes. Cluster-owned: they name users and accounts, so only operators see
//! them.

use super::shared::Options;
use crate::model::{Name, Node, NodeBaseState, Reservation, Split};
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::{HashMap, HashSet};

/// What a reservation's nodes look like now.
#[derive(Default)]
struct Inside {
    by_state: [u64; NodeBaseState::ALL.len()],
    cpus: Split,
    gpus: Split,
}

fn inside(r: &Reservation, by_name: &HashMap<&str, &Node>) -> Inside {
    let mut t = Inside::default();
    let mut seen = HashSet::with_capacity(r.nodes.len());
    for name in r.nodes.iter().filter(|n| seen.insert(&***n)) {
        // A node the snapshot does not know (yet) still counts, as `unknown`.
        let state = match by_name.get(&**name) {
            Some(n) => {
                t.cpus.add(n.cpu_split());
                t.gpus.add(n.gpu_split());
                n.base
            }
            None => NodeBaseState::Unknown,
        };
        if let Some(i) = NodeBaseState::ALL.iter().position(|s| *s == state) {
            t.by_state[i] += 1;
        }
    }
    t
}

fn joined(v: &[Name]) -> String {
    v.iter().map(|n| &**n).collect::<Vec<_>>().join(",")
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let o = || Owner::Cluster;
    let by_name: HashMap<&str, &Node> = s.nodes.iter().map(|n| (&*n.name, n)).collect();
    let resv: Vec<(&Reservation, Inside)> = s
        .reservations
        .iter()
        .map(|r| (r, inside(r, &by_name)))
        .collect();

    let f = out.gauge(
        "slurm_reservation_info",
        "Reservations with their partition, flags (lower case, comma separated), permitted users and accounts (value 1).",
        &["reservation", "partition", "flags", "users", "accounts"],
    );
    for (r, _) in &resv {
        f.push(
            o(),
            [
                (&r.name).into(),
                (&r.partition).into(),
                joined(&r.flags).into(),
                joined(&r.users).into(),
                joined(&r.accounts).into(),
            ],
            1.0,
        );
    }
    for (name, help, pick) in [
        (
            "slurm_reservation_start_time_seconds",
            "When the reservation starts (seconds since the epoch).",
            (|r: &Reservation| r.start_epoch) as fn(&Reservation) -> Option<u64>,
        ),
        (
            "slurm_reservation_end_time_seconds",
            "When the reservation ends (seconds since the epoch; absent when open-ended).",
            |r: &Reservation| r.end_epoch,
        ),
        (
            "slurm_reservation_nodes_configured",
            "Nodes reserved, as Slurm counts them (NodeCnt).",
            |r: &Reservation| Some(r.node_count),
        ),
        (
            "slurm_reservation_cores_configured",
            "Cores reserved (CoreCnt).",
            |r: &Reservation| Some(r.core_count),
        ),
    ] {
        let f = out.gauge(name, help, &["reservation"]);
        for (r, _) in &resv {
            if let Some(v) = pick(r) {
                f.push(o(), [(&r.name).into()], v as f64);
            }
        }
    }
    let f = out.gauge(
        "slurm_reservation_active",
        "Whether the reservation is in effect at the snapshot time: 1 from its start until its end, else 0.",
        &["reservation"],
    );
    for (r, _) in &resv {
        let active = r.is_active(s.taken_epoch);
        f.push(o(), [(&r.name).into()], if active { 1.0 } else { 0.0 });
    }
    let f = out.gauge(
        "slurm_reservation_nodes",
        "Nodes in the reservation by base state (nodes the exporter does not know are unknown); sums to the nodes listed.",
        &["reservation", "state"],
    );
    for (r, t) in &resv {
        for (i, st) in NodeBaseState::ALL.iter().enumerate() {
            f.push(
                o(),
                [(&r.name).into(), st.as_str().into()],
                t.by_state[i] as f64,
            );
        }
    }
    let f = out.gauge(
        "slurm_reservation_cpus",
        "CPUs of the reservation's nodes (whole nodes): allocated, idle (usable now), other (on nodes that cannot run jobs).",
        &["reservation", "state"],
    );
    for (r, t) in &resv {
        for (state, v) in Split::STATES.iter().zip(t.cpus.values()) {
            f.push(o(), [(&r.name).into(), (*state).into()], v as f64);
        }
    }
    let f = out.gauge(
        "slurm_reservation_gpus",
        "GPUs of the reservation's nodes: allocated, idle, other (only reservations with GPU nodes).",
        &["reservation", "state"],
    );
    for (r, t) in resv.iter().filter(|(_, t)| t.gpus.total() > 0) {
        for (state, v) in Split::STATES.iter().zip(t.gpus.values()) {
            f.push(o(), [(&r.name).into(), (*state).into()], v as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeFlags;
    use std::sync::Arc;

    fn node(name: &str, base: NodeBaseState, cpus: u64, alloc: u64) -> Node {
        Node {
            name: Name::from(name),
            base,
            flags: NodeFlags::default(),
            cpus,
            alloc_cpus: alloc,
            real_memory_bytes: 0,
            alloc_memory_bytes: 0,
            free_memory_bytes: None,
            cpu_load: None,
            gpus_total: 0,
            gpus_alloc: 0,
            gpu_type: Name::from(""),
            gpu_types: Vec::new(),
            partitions: Vec::new(),
            reason: Name::from(""),
            features: Name::from(""),
            arch: Name::from(""),
            slurmd_version: Name::from(""),
            weight: 1,
            boot_time_epoch: None,
            last_busy_epoch: None,
        }
    }

    fn names(v: &[&str]) -> Vec<Name> {
        v.iter().map(|s| Name::from(*s)).collect()
    }

    fn snapshot(now: u64) -> Snapshot {
        let mut drained = node("cpu-02", NodeBaseState::Idle, 32, 0);
        drained.flags.insert(NodeFlags::DRAIN);
        let mut gpu = node("gpu-01", NodeBaseState::Mixed, 64, 16);
        gpu.gpus_total = 4;
        gpu.gpus_alloc = 1;
        Snapshot {
            taken_epoch: now,
            nodes: Arc::new(vec![
                node("cpu-01", NodeBaseState::Allocated, 32, 32),
                drained,
                gpu,
            ]),
            reservations: Arc::new(vec![
                Reservation {
                    name: Name::from("maint"),
                    start_epoch: Some(1000),
                    end_epoch: Some(2000),
                    nodes: names(&["cpu-01", "cpu-02", "cpu-99", "cpu-01"]),
                    node_count: 3,
                    core_count: 64,
                    flags: names(&["maint", "spec_nodes"]),
                    users: names(&["root"]),
                    ..Reservation::default()
                },
                Reservation {
                    name: Name::from("course"),
                    start_epoch: Some(2000),
                    end_epoch: None,
                    nodes: names(&["gpu-01"]),
                    node_count: 1,
                    core_count: 32,
                    accounts: names(&["physics", "chemistry"]),
                    partition: Name::from("gpu"),
                    ..Reservation::default()
                },
            ]),
            ..Snapshot::default()
        }
    }

    fn text(s: &Snapshot) -> String {
        let (fams, text) = crate::families::render(collect, s);
        assert!(fams
            .iter()
            .all(|f| f.series.iter().all(|x| x.owner == Owner::Cluster)));
        text
    }

    #[test]
    fn maintenance_window_is_encoded_and_joined_with_nodes() {
        let t = text(&snapshot(1500));
        for line in [
            "slurm_reservation_info{reservation=\"maint\",partition=\"\",flags=\"maint,spec_nodes\",users=\"root\",accounts=\"\"} 1\n",
            "slurm_reservation_info{reservation=\"course\",partition=\"gpu\",flags=\"\",users=\"\",accounts=\"physics,chemistry\"} 1\n",
            "slurm_reservation_start_time_seconds{reservation=\"maint\"} 1000\n",
            "slurm_reservation_end_time_seconds{reservation=\"maint\"} 2000\n",
            "slurm_reservation_nodes_configured{reservation=\"maint\"} 3\n",
            "slurm_reservation_cores_configured{reservation=\"maint\"} 64\n",
            "slurm_reservation_active{reservation=\"maint\"} 1\n",
            "slurm_reservation_active{reservation=\"course\"} 0\n",
            "slurm_reservation_nodes{reservation=\"maint\",state=\"allocated\"} 1\n",
            "slurm_reservation_nodes{reservation=\"maint\",state=\"idle\"} 1\n",
            "slurm_reservation_nodes{reservation=\"maint\",state=\"unknown\"} 1\n",
            "slurm_reservation_nodes{reservation=\"maint\",state=\"down\"} 0\n",
            "slurm_reservation_cpus{reservation=\"maint\",state=\"allocated\"} 32\n",
            "slurm_reservation_cpus{reservation=\"maint\",state=\"idle\"} 0\n",
            "slurm_reservation_cpus{reservation=\"maint\",state=\"other\"} 32\n",
            "slurm_reservation_cpus{reservation=\"course\",state=\"idle\"} 48\n",
            "slurm_reservation_gpus{reservation=\"course\",state=\"allocated\"} 1\n",
            "slurm_reservation_gpus{reservation=\"course\",state=\"idle\"} 3\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(!t.contains("slurm_reservation_end_time_seconds{reservation=\"course\"}"));
        assert!(!t.contains("slurm_reservation_gpus{reservation=\"maint\""));
    }

    #[test]
    fn active_from_start_until_end() {
        let active = |now| {
            text(&snapshot(now)).contains("slurm_reservation_active{reservation=\"maint\"} 1\n")
        };
        assert!(!active(999));
        assert!(active(1000));
        assert!(active(1999));
        assert!(!active(2000));
        let open = text(&snapshot(u64::MAX));
        assert!(open.contains("slurm_reservation_active{reservation=\"course\"} 1\n"));
    }

    #[test]
    fn the_lab_capture_end_to_end() {
        let bytes = include_bytes!("../../testdata/rest/22.05.8/slurm_v0.0.38_reservations.json");
        let resv = crate::parse::reservations::parse_reservations_json(
            bytes,
            &mut crate::model::Interner::default(),
        )
        .expect("parses");
        let s = Snapshot {
            taken_epoch: 1_795_950_000,
            reservations: Arc::new(resv),
            nodes: Arc::new(vec![
                node("cpu-01", NodeBaseState::Idle, 32, 0),
                node("cpu-02", NodeBaseState::Mixed, 32, 8),
            ]),
            ..Snapshot::default()
        };
        let t = text(&s);
        assert!(t.contains("slurm_reservation_info{reservation=\"maint\",partition=\"\",flags=\"maint,spec_nodes\",users=\"root\",accounts=\"\"} 1\n"));
        assert!(t.contains("slurm_reservation_active{reservation=\"maint\"} 1\n"));
        assert!(t.contains("slurm_reservation_cpus{reservation=\"maint\",state=\"idle\"} 56\n"));
    }
}
