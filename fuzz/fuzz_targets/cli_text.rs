//! Every CLI text format: sdiag, scontrol ping/licenses/reservations, sshare, sacctmgr qos,
//! sprio.
//! The first byte picks the parser.
#![no_main]
use collector::model::Interner;
use collector::parse::{associations, diag, licenses, ping, qos, reservations, sprio};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut names = Interner::default();
    match which % 7 {
        0 => drop(diag::parse_sdiag_text(text)),
        1 => drop(ping::parse_scontrol_ping_text(text)),
        2 => drop(licenses::parse_scontrol_licenses_text(text)),
        3 => drop(reservations::parse_scontrol_reservations_text(text, &mut names)),
        4 => drop(associations::parse_sshare_text(text, &mut names)),
        5 => drop(qos::parse_sacctmgr_qos_text(text, &mut names)),
        _ => drop(sprio::parse_sprio(text, &mut names)),
    }
});
