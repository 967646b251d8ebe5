//! Jobs documents (`/slurm/vX/jobs`, `squeue --json`), streamed: any bytes, never a panic.
#![no_main]
use collector::model::Interner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = collector::parse::jobs::parse_jobs(data, &mut Interner::default());
});
