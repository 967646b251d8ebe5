//! Prometheus text and OpenMetrics input (slurmctld's /metrics, node_exporter, textfiles,
//! commands), parsed and turned into owned families.
#![no_main]
use collector::parse::prom_text::{parse, Limits};
use collector::store::Owner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut owner = |_: &str, _: &[(Box<str>, Box<str>)]| Some(Owner::Cluster);
    let _ = parse(data, &Limits::default(), &mut owner);
});
