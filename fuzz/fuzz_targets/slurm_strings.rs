//! Slurm's compact strings: host lists, array task sets, TRES, GRES, durations.
#![no_main]
use collector::parse::{hostlist, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = hostlist::expand(s);
        let _ = hostlist::array_task_count(s);
        let _ = hostlist::parse_tres(s);
        let _ = hostlist::parse_gres(s);
        let _ = text::duration_seconds(s);
        let _ = text::kv_lines(s).count();
    }
});
