//! One allocation as priced lines: its charged interval cut at every billing-period boundary
//! and every price change, each piece times each TRES it held. Energy (a total, not a rate)
//! goes whole to the piece holding the run's last second.

use crate::period::Calendar;
use crate::rates::{RateCard, PPM};
use crate::record::Allocation;

/// A TRES used during one piece of an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The billing period `[start, end)` the piece lies in.
    pub period: (u64, u64),
    /// The piece `[start, end)`.
    pub piece: (u64, u64),
    pub tres: String,
    /// TRES-seconds (memory: byte-seconds; energy: joules).
    pub quantity: u128,
    /// The price per pricing unit in force (nano-units of the currency).
    pub unit_price: u128,
    /// At list price, before multipliers (nano-units).
    pub list_nano: u128,
    /// With the partition multiplier and QOS usage factor (nano-units).
    pub billed_nano: u128,
}

/// Lines of `a` within `[from, to)`.
pub fn lines(a: &Allocation, cal: &Calendar, card: &RateCard, from: u64, to: u64) -> Vec<Line> {
    let tres = card.charged_tres(a);
    let mult = card.multiplier(a);
    let mut out = Vec::new();
    let stop = a.until.min(to);
    let mut t = a.start.max(from);
    while t < stop {
        let period = cal.period_of(t);
        let (prices, change) = card.prices_at(t);
        let end = period.1.min(change.unwrap_or(u64::MAX)).min(stop);
        let secs = u128::from(end - t);
        let last = end == a.until;
        for (name, count) in &tres {
            let quantity = if name == "energy" {
                if !last {
                    continue;
                }
                u128::from(*count)
            } else {
                u128::from(*count) * secs
            };
            let (unit_price, div) = prices.of(name);
            let list_nano = quantity.saturating_mul(unit_price) / div;
            let billed_nano = list_nano.saturating_mul(mult) / (PPM * PPM);
            out.push(Line {
                period,
                piece: (t, end),
                tres: name.clone(),
                quantity,
                unit_price,
                list_nano,
                billed_nano,
            });
        }
        t = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::record::Tres;
    use proptest::prelude::*;

    const CARD: &str = "currency = \"EUR\"\n[[prices]]\ncpu = 3.6\n[[prices]]\nfrom = \"2026-01-10T12:00:00Z\"\ncpu = 7.2\n";

    fn alloc(start: u64, until: u64, tres: Tres) -> Allocation {
        Allocation::sample(start, until, tres)
    }

    #[test]
    fn a_price_change_mid_period_splits_the_allocation_at_its_instant() {
        let cal = Calendar::new(Period::Month, "UTC").expect("zone");
        let card = RateCard::parse(CARD, "t", &cal).expect("card");
        let change = cal.parse_instant("2026-01-10T12:00:00Z").expect("t");
        let a = alloc(change - 100, change + 100, [("cpu".to_owned(), 2)].into());
        let ls: Vec<_> = lines(&a, &cal, &card, 0, u64::MAX)
            .into_iter()
            .filter(|l| l.tres == "cpu")
            .collect();
        assert_eq!(ls.len(), 2);
        // 200 CPU-s at 3.6/h = 0.2; 200 CPU-s at 7.2/h = 0.4
        assert_eq!(ls[0].list_nano, 200_000_000);
        assert_eq!(ls[1].list_nano, 400_000_000);
        assert_eq!(ls[0].period, ls[1].period);
    }

    proptest! {
        /// Per-period sums equal allocated TRES x elapsed, to the second, in any zone and
        /// period length, and the pieces tile the charged interval.
        #[test]
        fn pieces_sum_to_tres_times_elapsed(
            start in 1_600_000_000u64..1_900_000_000,
            len in 0u64..90 * 86_400,
            cpus in 1u64..512,
            mem in 1u64..(1u64 << 40),
            p in prop_oneof![Just("month"), Just("week"), Just("day"), Just("5h")],
            z in prop_oneof![Just("UTC"), Just("Europe/Paris"), Just("Asia/Kathmandu")],
        ) {
            let cal = Calendar::new(p.parse().expect("period"), z).expect("zone");
            let card = RateCard::parse(CARD, "t", &cal).expect("card");
            let a = alloc(start, start + len, [("cpu".to_owned(), cpus), ("mem".to_owned(), mem)].into());
            let ls = lines(&a, &cal, &card, 0, u64::MAX);
            let sum = |t: &str| ls.iter().filter(|l| l.tres == t).map(|l| l.quantity).sum::<u128>();
            prop_assert_eq!(sum("cpu"), u128::from(cpus) * u128::from(len));
            prop_assert_eq!(sum("mem"), u128::from(mem) * u128::from(len));
            let mut at = start;
            for l in ls.iter().filter(|l| l.tres == "cpu") {
                prop_assert_eq!(l.piece.0, at);
                prop_assert!(l.period.0 <= l.piece.0 && l.piece.1 <= l.period.1);
                at = l.piece.1;
            }
            prop_assert_eq!(at, start + len);
        }
    }
}
