//! `slurm_gpu_*`: GPUs split by GPU type (the type from GRES, `a100`, or a MIG
//! profile such as `a100_3g.20gb` kept whole) at node, partition and cluster level, and held
//! or requested by each account and user. Summed over `type`, each equals its untyped
//! sibling (`slurm_cluster_gpus`, `slurm_partition_gpus`, `slurm_account_gpus`, ...).
//!
//! GPUs without a type (untyped GRES `gpu:4`, a job asking for `gres/gpu=2` on nodes of
//! mixed or unknown types) are labelled `type="unknown"` everywhere. A job whose TRES name
//! no type takes the type of the GPU nodes it runs on when they all share one, so per-type
//! job sums line up with per-type node allocation.

use super::partitions::job_partitions;
use super::shared::Options;
use crate::model::{Job, JobState, Name, Node, Split};
use crate::parse::hostlist::expand;
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The `type` label for GPUs Slurm gives no type.
pub const UNKNOWN_TYPE: &str = "unknown";

fn label(ty: &Name) -> Name {
    if ty.is_empty() {
        Name::from(UNKNOWN_TYPE)
    } else {
        ty.clone()
    }
}

/// A node's GPU splits by type label; several types on one node are each counted, and the
/// splits sum to the node's.
fn node_splits(n: &Node) -> Vec<(Name, Split)> {
    if n.gpus_total == 0 {
        return Vec::new();
    }
    if n.gpu_types.is_empty() {
        return vec![(label(&n.gpu_type), n.gpu_split())];
    }
    let mut out: Vec<(Name, Split)> = Vec::new();
    for (ty, split) in n.gpu_type_splits() {
        let ty = label(ty);
        match out.iter_mut().find(|(t, _)| *t == ty) {
            Some((_, s)) => s.add(split),
            None => out.push((ty, split)),
        }
    }
    out
}

/// The node's one GPU type, when it has exactly one named type.
fn single_type(n: &Node) -> Option<&Name> {
    match n.gpu_types.as_slice() {
        [] if !n.gpu_type.is_empty() => Some(&n.gpu_type),
        [one] if !one.gpu_type.is_empty() => Some(&one.gpu_type),
        _ => None,
    }
}

/// Resolves job GPU types, caching node lists (array tasks and job steps repeat them).
struct JobTypes<'a> {
    gpu_nodes: HashMap<&'a str, &'a Name>,
    cache: HashMap<&'a str, Name>,
    unknown: Name,
}

impl<'a> JobTypes<'a> {
    fn new(nodes: &'a [Node]) -> Self {
        JobTypes {
            gpu_nodes: nodes
                .iter()
                .filter(|n| n.gpus_total > 0)
                .filter_map(|n| Some((&*n.name, single_type(n)?)))
                .collect(),
            cache: HashMap::new(),
            unknown: Name::from(UNKNOWN_TYPE),
        }
    }

    fn of(&mut self, j: &'a Job) -> Name {
        if !j.gpu_type.is_empty() {
            return j.gpu_type.clone();
        }
        if !j.state.holds_resources() || j.node_list.is_empty() {
            return self.unknown.clone();
        }
        if let Some(t) = self.cache.get(&*j.node_list) {
            return t.clone();
        }
        let mut found: Option<&Name> = None;
        let mut mixed = false;
        for host in expand(&j.node_list).unwrap_or_default() {
            if let Some(t) = self.gpu_nodes.get(host.as_str()) {
                match found {
                    Some(f) if f != *t => mixed = true,
                    _ => found = Some(*t),
                }
            }
        }
        let t = match found {
            Some(t) if !mixed => t.clone(),
            _ => self.unknown.clone(),
        };
        self.cache.insert(&j.node_list, t.clone());
        t
    }
}

/// Per-type splits of a set of nodes, each node counted once.
type ByType = BTreeMap<Name, Split>;

fn add(by_type: &mut ByType, n: &Node) {
    for (ty, split) in node_splits(n) {
        by_type.entry(ty).or_default().add(split);
    }
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let mut seen = HashSet::with_capacity(s.nodes.len());
    let nodes: Vec<&Node> = s.nodes.iter().filter(|n| seen.insert(&*n.name)).collect();

    let f = out.gauge(
        "slurm_gpu_node",
        "GPUs of the node by GPU type: allocated, idle (usable now), other (on a node that cannot run jobs); only GPU nodes.",
        &["node", "type", "state"],
    );
    for n in &nodes {
        for (ty, split) in node_splits(n) {
            for (state, v) in Split::STATES.iter().zip(split.values()) {
                f.push(
                    Owner::Cluster,
                    [(&n.name).into(), (&ty).into(), (*state).into()],
                    v as f64,
                );
            }
        }
    }

    let mut cluster = ByType::new();
    for n in &nodes {
        add(&mut cluster, n);
    }
    let f = out.gauge(
        "slurm_gpu_cluster",
        "GPUs of all nodes by GPU type: allocated, idle, other; sums over type to slurm_cluster_gpus.",
        &["type", "state"],
    );
    for (ty, split) in &cluster {
        for (state, v) in Split::STATES.iter().zip(split.values()) {
            f.push(Owner::Cluster, [ty.into(), (*state).into()], v as f64);
        }
    }
    let f = out.gauge(
        "slurm_gpu_cluster_configured",
        "GPUs configured on all nodes, by GPU type.",
        &["type"],
    );
    for (ty, split) in &cluster {
        f.push(Owner::Cluster, [ty.into()], split.total() as f64);
    }

    // Membership as `families/partitions.rs` takes it: the partitions source, else the
    // partitions each node names.
    let by_name: HashMap<&str, &Node> = nodes.iter().map(|n| (&*n.name, *n)).collect();
    let mut parts: BTreeMap<Name, ByType> = BTreeMap::new();
    if s.partitions.is_empty() {
        for n in &nodes {
            let mut once = HashSet::new();
            for p in n.partitions.iter().filter(|p| once.insert(&***p)) {
                add(parts.entry(p.clone()).or_default(), n);
            }
        }
    } else {
        for p in s.partitions.iter() {
            let e = parts.entry(p.name.clone()).or_default();
            let mut once = HashSet::new();
            for n in p.nodes.iter().filter(|n| once.insert(&***n)) {
                if let Some(node) = by_name.get(&**n) {
                    add(e, node);
                }
            }
        }
    }
    let own = |p: &Name| Owner::Partition(p.clone());
    let f = out.gauge(
        "slurm_gpu_partition",
        "GPUs of the partition's nodes by GPU type: allocated, idle, other (partitions with GPU nodes only).",
        &["partition", "type", "state"],
    );
    for (p, by_type) in &parts {
        for (ty, split) in by_type {
            for (state, v) in Split::STATES.iter().zip(split.values()) {
                f.push(own(p), [p.into(), ty.into(), (*state).into()], v as f64);
            }
        }
    }
    let f = out.gauge(
        "slurm_gpu_partition_configured",
        "GPUs configured on the partition's nodes, by GPU type.",
        &["partition", "type"],
    );
    for (p, by_type) in &parts {
        for (ty, split) in by_type {
            f.push(own(p), [p.into(), ty.into()], split.total() as f64);
        }
    }

    let mut types = JobTypes::new(&s.nodes);
    let mut acct: BTreeMap<(&Name, Name, JobState), u64> = BTreeMap::new();
    let mut user: BTreeMap<(&Name, &Name, Name, JobState), u64> = BTreeMap::new();
    let mut part_jobs: BTreeMap<(&str, Name, JobState), u64> = BTreeMap::new();
    for j in s.jobs.iter().filter(|j| j.gpus > 0 && j.state.is_active()) {
        let ty = types.of(j);
        let gpus = j.gpus.saturating_mul(j.task_count);
        *acct.entry((&j.account, ty.clone(), j.state)).or_default() += gpus;
        *user
            .entry((&j.account, &j.user, ty.clone(), j.state))
            .or_default() += gpus;
        for p in job_partitions(&j.partition) {
            *part_jobs.entry((p, ty.clone(), j.state)).or_default() += gpus;
        }
    }
    let f = out.gauge(
        "slurm_gpu_partition_job",
        "GPUs held (running, suspended, completing) or requested (pending) by the partition's jobs, by GPU type and job state.",
        &["partition", "type", "state"],
    );
    for ((p, ty, st), v) in &part_jobs {
        let p = Name::from(*p);
        f.push(
            own(&p),
            [(&p).into(), ty.into(), st.as_str().into()],
            *v as f64,
        );
    }
    let f = out.gauge(
        "slurm_gpu_account",
        "GPUs held (running, suspended, completing) or requested (pending) by the account's jobs, by GPU type and job state.",
        &["account", "type", "state"],
    );
    for ((a, ty, st), v) in &acct {
        f.push(
            Owner::Account((*a).clone()),
            [(*a).into(), ty.into(), st.as_str().into()],
            *v as f64,
        );
    }
    let f = out.gauge(
        "slurm_gpu_user",
        "GPUs held or requested by the user's jobs in the account, by GPU type and job state.",
        &["user", "account", "type", "state"],
    );
    for ((a, u, ty, st), v) in &user {
        f.push(
            Owner::User {
                account: (*a).clone(),
                user: (*u).clone(),
            },
            [(*u).into(), (*a).into(), ty.into(), st.as_str().into()],
            *v as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeBaseState, NodeFlags, Partition};
    use crate::store::{encode, Family, Format};
    use std::sync::Arc;

    fn node(name: &str, ty: &str, total: u64, alloc: u64, parts: &[&str]) -> Node {
        Node {
            name: Name::from(name),
            base: if alloc > 0 {
                NodeBaseState::Mixed
            } else {
                NodeBaseState::Idle
            },
            flags: NodeFlags::default(),
            cpus: 64,
            alloc_cpus: alloc,
            real_memory_bytes: 0,
            alloc_memory_bytes: 0,
            free_memory_bytes: None,
            cpu_load: None,
            gpus_total: total,
            gpus_alloc: alloc,
            gpu_type: Name::from(ty),
            gpu_types: if total > 0 {
                vec![crate::model::GpuTypeCount {
                    gpu_type: Name::from(ty),
                    total,
                    alloc,
                }]
            } else {
                Vec::new()
            },
            partitions: parts.iter().map(|p| Name::from(*p)).collect(),
            reason: Name::from(""),
            features: Name::from(""),
            arch: Name::from(""),
            slurmd_version: Name::from(""),
            weight: 1,
            boot_time_epoch: None,
            last_busy_epoch: None,
        }
    }

    fn job(
        id: u64,
        state: JobState,
        acct: &str,
        user: &str,
        gpus: u64,
        ty: &str,
        nodes: &str,
    ) -> Job {
        Job {
            job_id: id,
            array_job_id: 0,
            array_task_id: None,
            task_count: 1,
            state,
            reason: Name::from(""),
            partition: Name::from("gpu"),
            account: Name::from(acct),
            user: Name::from(user),
            qos: Name::from("normal"),
            cpus: 1,
            nodes: 1,
            memory_bytes: 0,
            gpus,
            gpu_type: Name::from(ty),
            submit_epoch: None,
            start_epoch: None,
            end_epoch: None,
            time_limit_seconds: None,
            priority: None,
            exit_code: None,
            node_list: Name::from(nodes),
        }
    }

    fn snapshot() -> Snapshot {
        let mut drained = node("gpu-03", "a100_3g.20gb", 7, 1, &["gpu"]);
        drained.flags.insert(NodeFlags::DRAIN);
        Snapshot {
            nodes: Arc::new(vec![
                node("gpu-01", "a100", 4, 3, &["gpu", "all"]),
                node("gpu-02", "a100", 4, 0, &["gpu"]),
                drained,
                node("gpu-04", "", 2, 1, &["gpu"]),
                node("cpu-01", "", 0, 0, &["all"]),
                // A duplicate record (two sources) counts once.
                node("gpu-02", "a100", 4, 0, &["gpu"]),
            ]),
            jobs: Arc::new(vec![
                job(1, JobState::Running, "physics", "alice", 2, "", "gpu-01"),
                job(2, JobState::Running, "physics", "bob", 1, "a100", "gpu-01"),
                job(3, JobState::Running, "chemistry", "carol", 1, "", "gpu-03"),
                job(4, JobState::Running, "chemistry", "carol", 1, "", "gpu-04"),
                job(5, JobState::Pending, "physics", "alice", 8, "", ""),
                job(
                    6,
                    JobState::Completed,
                    "physics",
                    "alice",
                    8,
                    "a100",
                    "gpu-02",
                ),
                job(7, JobState::Running, "physics", "dave", 0, "", "gpu-02"),
            ]),
            ..Snapshot::default()
        }
    }

    fn families(s: &Snapshot) -> Vec<Family> {
        let mut sink = Sink::default();
        collect(s, &Options::default(), &mut sink);
        sink.into_families()
    }

    fn text(fams: &[Family]) -> String {
        let mut out = Vec::new();
        encode(fams, Format::Text, &|_| true, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    /// value of `name` for each label set, keyed by joined label values.
    fn values(fams: &[Family], name: &str) -> BTreeMap<String, f64> {
        fams.iter()
            .filter(|f| f.name == name)
            .flat_map(|f| f.series.iter())
            .map(|s| {
                let k: Vec<&str> = s.labels.iter().map(|l| &**l).collect();
                (k.join("/"), s.value)
            })
            .collect()
    }

    #[test]
    fn per_type_splits_sum_to_the_configured_total() {
        let fams = families(&snapshot());
        let t = text(&fams);
        for line in [
            "slurm_gpu_node{node=\"gpu-01\",type=\"a100\",state=\"allocated\"} 3\n",
            "slurm_gpu_node{node=\"gpu-01\",type=\"a100\",state=\"idle\"} 1\n",
            "slurm_gpu_node{node=\"gpu-03\",type=\"a100_3g.20gb\",state=\"other\"} 6\n",
            "slurm_gpu_node{node=\"gpu-04\",type=\"unknown\",state=\"idle\"} 1\n",
            "slurm_gpu_cluster{type=\"a100\",state=\"allocated\"} 3\n",
            "slurm_gpu_cluster{type=\"a100\",state=\"idle\"} 5\n",
            "slurm_gpu_cluster{type=\"a100\",state=\"other\"} 0\n",
            "slurm_gpu_cluster_configured{type=\"a100\"} 8\n",
            "slurm_gpu_cluster_configured{type=\"a100_3g.20gb\"} 7\n",
            "slurm_gpu_cluster_configured{type=\"unknown\"} 2\n",
            "slurm_gpu_partition{partition=\"all\",type=\"a100\",state=\"allocated\"} 3\n",
            "slurm_gpu_partition_configured{partition=\"gpu\",type=\"a100\"} 8\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(
            !t.contains("node=\"cpu-01\""),
            "no series for nodes without GPUs"
        );

        for (split, configured, key_len) in [
            ("slurm_gpu_cluster", "slurm_gpu_cluster_configured", 1),
            ("slurm_gpu_partition", "slurm_gpu_partition_configured", 2),
        ] {
            let mut sums: BTreeMap<String, f64> = BTreeMap::new();
            for (k, v) in values(&fams, split) {
                let key: Vec<&str> = k.split('/').take(key_len).collect();
                *sums.entry(key.join("/")).or_default() += v;
            }
            assert_eq!(sums, values(&fams, configured), "{split}");
        }
        // Per node: allocated + idle + other = the node's GPUs, every type.
        let mut per_node: BTreeMap<String, f64> = BTreeMap::new();
        for (k, v) in values(&fams, "slurm_gpu_node") {
            *per_node
                .entry(k.split('/').next().unwrap_or("").to_owned())
                .or_default() += v;
        }
        assert_eq!(
            per_node.into_iter().collect::<Vec<_>>(),
            [
                ("gpu-01".to_owned(), 4.0),
                ("gpu-02".to_owned(), 4.0),
                ("gpu-03".to_owned(), 7.0),
                ("gpu-04".to_owned(), 2.0)
            ]
        );
        // Summed over type, the cluster split is the untyped cluster split.
        let mut cluster = crate::families::cluster::NodeTotals::default();
        let mut seen = HashSet::new();
        for n in snapshot()
            .nodes
            .iter()
            .filter(|n| seen.insert(n.name.clone()))
        {
            cluster.add(n);
        }
        let mut by_state = [0.0; 3];
        for (k, v) in values(&fams, "slurm_gpu_cluster") {
            let i = Split::STATES
                .iter()
                .position(|s| k.ends_with(&format!("/{s}")))
                .expect("a state");
            by_state[i] += v;
        }
        assert_eq!(by_state, cluster.gpus.values().map(|v| v as f64));
    }

    #[test]
    fn job_gpus_by_account_user_and_type() {
        let fams = families(&snapshot());
        let t = text(&fams);
        for line in [
            // alice's untyped job on gpu-01 takes the node's type; bob asked for a100.
            "slurm_gpu_account{account=\"physics\",type=\"a100\",state=\"running\"} 3\n",
            "slurm_gpu_account{account=\"physics\",type=\"unknown\",state=\"pending\"} 8\n",
            "slurm_gpu_account{account=\"chemistry\",type=\"a100_3g.20gb\",state=\"running\"} 1\n",
            "slurm_gpu_account{account=\"chemistry\",type=\"unknown\",state=\"running\"} 1\n",
            "slurm_gpu_user{user=\"alice\",account=\"physics\",type=\"a100\",state=\"running\"} 2\n",
            "slurm_gpu_user{user=\"bob\",account=\"physics\",type=\"a100\",state=\"running\"} 1\n",
            "slurm_gpu_partition_job{partition=\"gpu\",type=\"a100\",state=\"running\"} 3\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(
            !t.contains("state=\"completed\""),
            "finished jobs hold nothing"
        );
        assert!(
            !t.contains("user=\"dave\""),
            "jobs without GPUs are left out"
        );
        // Running GPUs by type match what the nodes say is allocated.
        let acct = values(&fams, "slurm_gpu_account");
        let running_a100: f64 = acct
            .iter()
            .filter(|(k, _)| k.ends_with("/a100/running"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            Some(&running_a100),
            values(&fams, "slurm_gpu_cluster").get("a100/allocated")
        );
        for f in &fams {
            for s in &f.series {
                let ok = match f.name.as_ref() {
                    "slurm_gpu_account" => matches!(s.owner, Owner::Account(_)),
                    "slurm_gpu_user" => matches!(s.owner, Owner::User { .. }),
                    n if n.starts_with("slurm_gpu_partition") => {
                        matches!(s.owner, Owner::Partition(_))
                    }
                    _ => s.owner == Owner::Cluster,
                };
                assert!(ok, "{} has owner {:?}", f.name, s.owner);
            }
        }
    }

    #[test]
    fn mixed_type_nodes_and_partitions_source() {
        let mut s = snapshot();
        s.jobs = Arc::new(vec![job(
            1,
            JobState::Running,
            "physics",
            "alice",
            2,
            "",
            "gpu-[01,03]",
        )]);
        s.partitions = Arc::new(vec![Partition {
            name: Name::from("gpu"),
            state: Name::from("up"),
            is_default: false,
            total_cpus: 0,
            total_nodes: 2,
            nodes: vec![
                Name::from("gpu-01"),
                Name::from("gpu-01"),
                Name::from("gpu-02"),
            ],
            max_time_seconds: None,
            default_time_seconds: None,
            priority_tier: None,
            max_nodes_per_job: None,
        }]);
        let t = text(&families(&s));
        assert!(t.contains(
            "slurm_gpu_account{account=\"physics\",type=\"unknown\",state=\"running\"} 2\n"
        ));
        assert!(t.contains("slurm_gpu_partition_configured{partition=\"gpu\",type=\"a100\"} 8\n"));
        assert!(
            !t.contains("partition=\"all\""),
            "the partitions source wins"
        );
    }

    #[test]
    fn an_empty_snapshot_gives_no_series() {
        assert_eq!(text(&families(&Snapshot::default())), "");
    }
}
