//! The simulator knows the true counts of the cluster it made; the whole pipeline (bytes ->
//! streaming parse -> snapshot -> families) must report exactly those.

use collector::families::{collect_all, Options};
use collector::poller::{fuse, PollConfig, Runner};
use collector::store::Family;
use sim::{SimCluster, SimSource, SimSpec};

fn value(fams: &[Family], name: &str, label: Option<&str>) -> f64 {
    let f = fams
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("family {name}"));
    f.series
        .iter()
        .filter(|s| label.is_none_or(|l| s.labels.first().is_some_and(|v| &**v == l)))
        .map(|s| s.value)
        .sum()
}

#[tokio::test]
async fn families_match_the_simulators_ground_truth() {
    let spec = SimSpec {
        nodes: 600,
        jobs: 6000,
        seed: 7,
    };
    let truth = SimCluster::new(spec).truth();
    let mut runner = Runner::new(Box::new(SimSource::new(spec)), PollConfig::default());
    runner.poll_once().await.expect("sim poll");
    let snap = fuse(&[&runner], None);
    assert_eq!(&*snap.cluster, "sim");
    let fams = collect_all(&snap, &Options::default());

    assert_eq!(value(&fams, "slurm_cluster_nodes_configured", None), 600.0);
    assert_eq!(
        value(&fams, "slurm_cluster_nodes", None),
        600.0,
        "base states sum to the node count"
    );
    for (state, n) in &truth.nodes_by_state {
        assert_eq!(
            value(&fams, "slurm_cluster_nodes", Some(state)),
            *n as f64,
            "nodes {state}"
        );
    }
    for (flag, n) in &truth.node_flags {
        assert_eq!(
            value(&fams, "slurm_cluster_node_flags", Some(flag)),
            *n as f64,
            "flag {flag}"
        );
    }
    assert_eq!(
        value(&fams, "slurm_cluster_cpus_configured", None),
        truth.cpus_total as f64
    );
    assert_eq!(
        value(&fams, "slurm_cluster_cpus", None),
        truth.cpus_total as f64
    );
    assert_eq!(
        value(&fams, "slurm_cluster_cpus", Some("allocated")),
        truth.cpus_allocated as f64
    );
    assert_eq!(
        value(&fams, "slurm_cluster_gpus_configured", None),
        truth.gpus_total as f64
    );
    assert_eq!(
        value(&fams, "slurm_cluster_gpus", Some("allocated")),
        truth.gpus_allocated as f64
    );
    for (state, n) in &truth.jobs_by_state {
        assert_eq!(
            value(&fams, "slurm_cluster_jobs", Some(state)),
            *n as f64,
            "jobs {state}"
        );
    }
    let total_jobs: u64 = truth.jobs_by_state.values().sum();
    assert_eq!(value(&fams, "slurm_cluster_jobs", None), total_jobs as f64);
}

#[test]
fn no_series_is_emitted_twice() {
    let spec = SimSpec {
        nodes: 300,
        jobs: 3000,
        seed: 3,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let mut runner = Runner::new(Box::new(SimSource::new(spec)), PollConfig::default());
    rt.block_on(runner.poll_once()).expect("sim poll");
    let snap = fuse(&[&runner], None);
    let opts = Options {
        per_job: true,
        ..Options::default()
    };
    let fams = collect_all(&snap, &opts);
    let mut seen = std::collections::HashSet::new();
    for f in &fams {
        assert!(
            seen.insert(format!("family {}", f.name)),
            "family {} twice",
            f.name
        );
        for s in &f.series {
            let key = format!("{}{:?}{:?}", f.name, s.labels, s.sample);
            assert!(seen.insert(key.clone()), "series twice: {key}");
        }
    }
}
