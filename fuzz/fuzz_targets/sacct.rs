//! Finished-job documents (`sacct --json`, `/slurmdb/vX/jobs`), streamed.
#![no_main]
use collector::model::Interner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = collector::parse::sacct::parse_sacct_json(data, &mut Interner::default());
});
