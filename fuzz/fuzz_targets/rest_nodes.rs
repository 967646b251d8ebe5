//! Nodes documents (`/slurm/vX/nodes`, `sinfo --json`), streamed: any bytes, never a panic.
#![no_main]
use collector::model::Interner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = collector::parse::nodes::parse_nodes(data, &mut Interner::default());
});
