//! Every small slurmrestd document: diag, ping, licenses, reservations, QOS, associations,
//! shares (all versions). The first byte picks the parser so one corpus serves them all.
#![no_main]
use collector::model::Interner;
use collector::parse::{associations, diag, licenses, ping, qos, reservations};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, doc)) = data.split_first() else {
        return;
    };
    let mut names = Interner::default();
    match which % 7 {
        0 => drop(diag::parse_diag_json(doc)),
        1 => drop(ping::parse_ping_json(doc)),
        2 => drop(licenses::parse_licenses_json(doc)),
        3 => drop(reservations::parse_reservations_json(doc, &mut names)),
        4 => drop(qos::parse_qos_json(doc, &mut names)),
        5 => drop(associations::parse_associations_json(doc, &mut names)),
        _ => drop(associations::parse_shares_json(doc, &mut names)),
    }
});
