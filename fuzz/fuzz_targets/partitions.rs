//! Partitions as REST JSON and as `scontrol -o show partitions` text.
#![no_main]
use collector::model::Interner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut names = Interner::default();
    let _ = collector::parse::partitions::parse_partitions(data, &mut names);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = collector::parse::partitions::parse_partitions_text(text, &mut names);
    }
});
