//! The simulator's output is a function of its spec alone, and stays what it was: every
//! document for 20 (size, seed) pairs hashes to the digest recorded in `digests.txt` (taken
//! from the simulator before it moved out of the collector). A deliberate change to the
//! simulator refreshes the file with `UPDATE_DIGESTS=1 cargo test -p slurm-exporter-sim
//! --test byte_exact`; review the benchmarks and goldens that depend on it first.

use sha2::{Digest, Sha256};
use sim::{SimCluster, SimSpec};
use std::fmt::Write as _;
use std::io::Write;

type WriteFn = fn(&SimCluster, &mut dyn Write) -> std::io::Result<()>;

const DOCS: [(&str, WriteFn); 11] = [
    ("nodes", SimCluster::write_nodes),
    ("jobs", SimCluster::write_jobs),
    ("partitions", SimCluster::write_partitions),
    ("diag", SimCluster::write_diag),
    ("ping", SimCluster::write_ping),
    ("licenses", SimCluster::write_licenses),
    ("reservations", SimCluster::write_reservations),
    ("associations", SimCluster::write_associations),
    ("sshare", SimCluster::write_sshare),
    ("qos", SimCluster::write_qos),
    ("finished_jobs", SimCluster::write_finished_jobs),
];

fn digests() -> String {
    let mut lines = Vec::new();
    for (nodes, jobs) in [(0, 0), (1, 1), (7, 50), (40, 300), (300, 3000)] {
        for seed in [0u64, 1, 42, 0xdead_beef] {
            let c = SimCluster::new(SimSpec { nodes, jobs, seed });
            let mut outputs: Vec<(String, Vec<u8>)> = DOCS
                .iter()
                .map(|(name, write)| {
                    let mut out = Vec::new();
                    write(&c, &mut out).expect("writing to memory");
                    (name.to_string(), out)
                })
                .collect();
            let truth = format!("{:#?}\n{}", c.truth(), c.cluster_name());
            outputs.push(("truth".into(), truth.into_bytes()));
            for (name, bytes) in outputs {
                let hex = Sha256::digest(&bytes)
                    .iter()
                    .fold(String::new(), |mut s, b| {
                        let _ = write!(s, "{b:02x}");
                        s
                    });
                lines.push(format!("{hex} {nodes}-{jobs}-{seed}-{name}"));
            }
        }
    }
    // The order `sort` gives the recorded file.
    lines.sort_by(|a, b| a[65..].cmp(&b[65..]));
    lines.join("\n") + "\n"
}

#[test]
fn every_document_is_byte_identical_to_the_recorded_digests() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/digests.txt");
    let got = digests();
    if std::env::var_os("UPDATE_DIGESTS").is_some() {
        std::fs::write(path, &got).expect("writing digests.txt");
        return;
    }
    let want = std::fs::read_to_string(path).expect("tests/digests.txt");
    assert_eq!(want.lines().count(), 240, "20 clusters x 12 documents");
    for (w, g) in want.lines().zip(got.lines()) {
        assert_eq!(g, w, "this document's bytes changed");
    }
    assert_eq!(got, want);
}
