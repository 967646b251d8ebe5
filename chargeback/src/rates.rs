//! Rate cards: prices per TRES unit-hour with effective dates, partition and QOS
//! multipliers, and Slurm's `TRESBillingWeights` to compute the billing TRES of records that
//! lack one. Loaded from TOML and validated strictly: an unknown key or a bad value is one
//! error naming the file and the line.
//!
//! Money is fixed-point: prices in nano-units of the currency per unit-hour, multipliers in
//! millionths, so the same usage always costs the same integer, whatever the order it was
//! added in.

use crate::period::Calendar;
use crate::record::{Allocation, Tres};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

/// Nano-units per currency unit.
pub const NANO: u128 = 1_000_000_000;
/// Millionths per multiplier unit.
pub const PPM: u128 = 1_000_000;
const GIB: u128 = 1 << 30;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFile {
    currency: Spanned<String>,
    prices: Vec<PriceFile>,
    #[serde(default)]
    partitions: BTreeMap<String, PartitionFile>,
    #[serde(default)]
    qos: BTreeMap<String, QosFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    from: Option<Spanned<String>>,
    billing: Option<Spanned<f64>>,
    cpu: Option<Spanned<f64>>,
    mem_gib: Option<Spanned<f64>>,
    node: Option<Spanned<f64>>,
    gpu: Option<Spanned<f64>>,
    energy_kwh: Option<Spanned<f64>>,
    #[serde(default)]
    gpu_types: BTreeMap<String, Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionFile {
    multiplier: Option<Spanned<f64>>,
    tres_billing_weights: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QosFile {
    usage_factor: Option<Spanned<f64>>,
}

/// Prices from one instant on, in nano-units per unit-hour (memory per GiB-hour, energy per
/// kWh).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    pub from: u64,
    pub billing: u128,
    pub cpu: u128,
    pub mem_gib: u128,
    pub node: u128,
    pub gpu: u128,
    pub energy_kwh: u128,
    pub gpu_types: BTreeMap<String, u128>,
}

/// A TRES's price and the divisor turning its quantity (unit-seconds, byte-seconds, joules)
/// into priced units (hours, GiB-hours, kWh).
impl Prices {
    pub fn of(&self, tres: &str) -> (u128, u128) {
        match tres {
            "billing" => (self.billing, 3600),
            "cpu" => (self.cpu, 3600),
            "mem" => (self.mem_gib, 3600 * GIB),
            "node" => (self.node, 3600),
            "energy" => (self.energy_kwh, 3_600_000),
            "gres/gpu" => (self.gpu, 3600),
            t => match t.strip_prefix("gres/gpu:") {
                Some(ty) => (*self.gpu_types.get(ty).unwrap_or(&self.gpu), 3600),
                None => (0, 3600),
            },
        }
    }
}

/// One `TRESBillingWeights` entry: a TRES name (lower case, as in records) and its weight per
/// unit (memory per byte).
type Weights = Vec<(String, f64)>;

/// A validated rate card.
#[derive(Debug, Clone, PartialEq)]
pub struct RateCard {
    pub currency: String,
    /// Sorted by `from`; the first starts at 0.
    pub prices: Vec<Prices>,
    pub partition_multiplier: BTreeMap<String, u128>,
    pub partition_weights: BTreeMap<String, Weights>,
    pub qos_factor: BTreeMap<String, u128>,
}

fn line_of(text: &str, pos: usize) -> usize {
    text.get(..pos).map_or(0, |t| t.matches('\n').count()) + 1
}

fn money(v: &Spanned<f64>, what: &str, at: &dyn Fn(usize) -> String) -> Result<u128, String> {
    let x = *v.get_ref();
    if !(0.0..=1e12).contains(&x) {
        return Err(format!(
            "{}: {what} = {x} must be a number from 0 to 1e12",
            at(v.span().start)
        ));
    }
    Ok((x * NANO as f64).round() as u128)
}

fn factor(v: &Spanned<f64>, what: &str, at: &dyn Fn(usize) -> String) -> Result<u128, String> {
    let x = *v.get_ref();
    if !(0.0..=1e6).contains(&x) {
        return Err(format!(
            "{}: {what} = {x} must be a number from 0 to 1e6",
            at(v.span().start)
        ));
    }
    Ok((x * PPM as f64).round() as u128)
}

/// Parses `CPU=1.0,Mem=0.25G,GRES/gpu=2.0,GRES/gpu:a100=4` as Slurm does: names case
/// insensitive, a memory weight per MiB unless suffixed K, M, G or T (weight per that unit).
pub fn parse_weights(s: &str) -> Result<Weights, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, w) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: expected NAME=WEIGHT"))?;
        let name = name.trim().to_ascii_lowercase();
        let w = w.trim();
        let (num, per) = match w.char_indices().last() {
            Some((i, c @ ('K' | 'M' | 'G' | 'T' | 'k' | 'm' | 'g' | 't'))) => {
                let per = match c.to_ascii_uppercase() {
                    'K' => 1u64 << 10,
                    'M' => 1 << 20,
                    'G' => 1 << 30,
                    _ => 1 << 40,
                };
                (&w[..i], per)
            }
            _ => (w, if name == "mem" { 1 << 20 } else { 1 }),
        };
        let x: f64 = num
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("{item:?}: weight must be a number of 0 or more"))?;
        let ok = ["cpu", "mem", "node", "energy", "billing"].contains(&name.as_str())
            || name == "gres/gpu"
            || name.starts_with("gres/gpu:");
        if !ok {
            return Err(format!("{item:?}: unknown TRES {name:?}"));
        }
        out.push((name, x / per as f64));
    }
    Ok(out)
}

impl RateCard {
    /// Reads and validates a card; dates without a time are local midnights in `cal`'s zone.
    pub fn load(path: &Path, cal: &Calendar) -> Result<RateCard, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("rate card {}: {e}", path.display()))?;
        RateCard::parse(&text, &path.display().to_string(), cal)
    }

    /// Validates a card's text; `name` names it in errors.
    pub fn parse(text: &str, name: &str, cal: &Calendar) -> Result<RateCard, String> {
        let at = |pos: usize| format!("rate card {name} line {}", line_of(text, pos));
        let f: CardFile = toml::from_str(text).map_err(|e| {
            let pos = e.span().map_or(0, |s| s.start);
            format!("{}: {}", at(pos), e.message())
        })?;
        let cur = f.currency.get_ref();
        if cur.len() != 3 || !cur.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "{}: currency {cur:?} must be an ISO 4217 code like EUR",
                at(f.currency.span().start)
            ));
        }
        if f.prices.is_empty() {
            return Err(format!("{}: at least one [[prices]] is needed", at(0)));
        }
        let mut prices = Vec::with_capacity(f.prices.len());
        for p in &f.prices {
            let from = match &p.from {
                None => 0,
                Some(s) => cal
                    .parse_instant(s.get_ref())
                    .map_err(|e| format!("{}: from: {e}", at(s.span().start)))?,
            };
            let m =
                |v: &Option<Spanned<f64>>, w: &str| v.as_ref().map_or(Ok(0), |v| money(v, w, &at));
            let mut gpu_types = BTreeMap::new();
            for (ty, v) in &p.gpu_types {
                gpu_types.insert(ty.clone(), money(v, &format!("gpu_types.{ty}"), &at)?);
            }
            prices.push(Prices {
                from,
                billing: m(&p.billing, "billing")?,
                cpu: m(&p.cpu, "cpu")?,
                mem_gib: m(&p.mem_gib, "mem_gib")?,
                node: m(&p.node, "node")?,
                gpu: m(&p.gpu, "gpu")?,
                energy_kwh: m(&p.energy_kwh, "energy_kwh")?,
                gpu_types,
            });
        }
        prices.sort_by_key(|p| p.from);
        for (p, w) in prices.windows(2).map(|w| (&w[1], w)) {
            if p.from == w[0].from {
                return Err(format!(
                    "{}: two [[prices]] start at the same instant",
                    at(0)
                ));
            }
        }
        // Before the first dated price nothing was priced yet: it starts at 0 (the epoch).
        if let Some(first) = prices.first_mut() {
            first.from = 0;
        }
        let mut partition_multiplier = BTreeMap::new();
        let mut partition_weights = BTreeMap::new();
        for (p, c) in &f.partitions {
            if let Some(v) = &c.multiplier {
                partition_multiplier.insert(
                    p.clone(),
                    factor(v, &format!("partitions.{p}.multiplier"), &at)?,
                );
            }
            if let Some(w) = &c.tres_billing_weights {
                let parsed = parse_weights(w.get_ref()).map_err(|e| {
                    format!(
                        "{}: partitions.{p}.tres_billing_weights: {e}",
                        at(w.span().start)
                    )
                })?;
                partition_weights.insert(p.clone(), parsed);
            }
        }
        let mut qos_factor = BTreeMap::new();
        for (q, c) in &f.qos {
            if let Some(v) = &c.usage_factor {
                qos_factor.insert(q.clone(), factor(v, &format!("qos.{q}.usage_factor"), &at)?);
            }
        }
        Ok(RateCard {
            currency: cur.clone(),
            prices,
            partition_multiplier,
            partition_weights,
            qos_factor,
        })
    }

    /// The prices in force at `t` and the instant they next change (if they do).
    pub fn prices_at(&self, t: u64) -> (&Prices, Option<u64>) {
        let i = self
            .prices
            .partition_point(|p| p.from <= t)
            .saturating_sub(1);
        let next = self.prices.get(i + 1).map(|p| p.from);
        (&self.prices[i.min(self.prices.len() - 1)], next)
    }

    /// The allocation's partition multiplier times its QOS usage factor, in millionths of
    /// millionths (1.0 x 1.0 = `PPM * PPM`).
    pub fn multiplier(&self, a: &Allocation) -> u128 {
        let p = self
            .partition_multiplier
            .get(&a.partition)
            .copied()
            .unwrap_or(PPM);
        let q = self.qos_factor.get(&a.qos).copied().unwrap_or(PPM);
        p * q
    }

    /// The TRES charged for an allocation: its own, plus a `billing` TRES computed from the
    /// partition's `TRESBillingWeights` (sum of count x weight, Slurm's default) when the
    /// record has none, or the CPU count when the partition has no weights (Slurm's default).
    pub fn charged_tres(&self, a: &Allocation) -> Tres {
        let mut t = a.tres.clone();
        if !t.contains_key("billing") {
            let b = match self.partition_weights.get(&a.partition) {
                Some(ws) => {
                    let mut sum = 0.0;
                    for (name, w) in ws {
                        let count = if name == "gres/gpu" {
                            a.tres
                                .iter()
                                .filter(|(k, _)| *k == "gres/gpu" || k.starts_with("gres/gpu:"))
                                .map(|(_, v)| *v)
                                .sum()
                        } else {
                            a.tres.get(name).copied().unwrap_or(0)
                        };
                        sum += count as f64 * w;
                    }
                    sum.round() as u64
                }
                None => a.tres.get("cpu").copied().unwrap_or(0),
            };
            if b > 0 {
                t.insert("billing".into(), b);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;

    fn cal() -> Calendar {
        Calendar::new(Period::Month, "UTC").expect("zone")
    }

    const CARD: &str = r#"currency = "EUR"

[[prices]]
billing = 0.01
gpu = 1.0

[[prices]]
from = "2026-03-15"
billing = 0.02
gpu_types = { a100 = 2.5 }

[partitions.gpu]
multiplier = 1.5
tres_billing_weights = "CPU=1.0,Mem=0.25G,GRES/gpu=2.0"

[qos.high]
usage_factor = 2.0
"#;

    #[test]
    fn a_card_parses_with_dates_and_weights() {
        let c = RateCard::parse(CARD, "t.toml", &cal()).expect("card");
        assert_eq!(c.currency, "EUR");
        let change = cal().parse_instant("2026-03-15").expect("date");
        assert_eq!(c.prices_at(change - 1).0.billing, NANO / 100);
        assert_eq!(c.prices_at(change - 1).1, Some(change));
        assert_eq!(c.prices_at(change).0.billing, NANO / 50);
        assert_eq!(c.prices_at(change).0.of("gres/gpu:a100").0, 2_500_000_000);
        assert_eq!(
            c.prices_at(change).0.of("gres/gpu:h100").0,
            0,
            "type falls back to gpu"
        );
        let a = Allocation {
            partition: "gpu".into(),
            qos: "high".into(),
            end: None,
            ..Allocation::sample(
                0,
                10,
                [
                    ("cpu".to_owned(), 4),
                    ("mem".to_owned(), 8 << 30),
                    ("gres/gpu:a100".to_owned(), 2),
                ]
                .into(),
            )
        };
        // 4 x 1 + 8 GiB x 0.25 + 2 x 2 = 10
        assert_eq!(c.charged_tres(&a).get("billing"), Some(&10));
        assert_eq!(c.multiplier(&a), 3 * PPM * PPM);
    }

    #[test]
    fn the_example_card_is_valid() {
        let text = include_str!("../../config/rates/example.toml");
        let c = RateCard::parse(text, "example.toml", &cal()).expect("example card");
        assert_eq!(c.prices.len(), 2);
        assert_eq!(c.qos_factor.get("scavenger"), Some(&(PPM / 4)));
    }

    #[test]
    fn every_bad_card_is_one_error_with_its_line() {
        for (text, line, word) in [
            ("currency = \"EUR\"\nprices = []\nbogus = 1\n", 3, "bogus"),
            ("currency = \"euro\"\n[[prices]]\n", 1, "currency"),
            ("currency = \"EUR\"\n[[prices]]\ncpu = -1.0\n", 3, "cpu"),
            ("currency = \"EUR\"\n[[prices]]\nfrom = \"yesterday\"\n", 3, "from"),
            ("currency = \"EUR\"\n[[prices]]\ncpuu = 1.0\n", 3, "cpuu"),
            ("currency = \"EUR\"\n[[prices]]\n[qos.x]\nusage_factor = inf\n", 4, "usage_factor"),
            ("currency = \"EUR\"\n[[prices]]\n[partitions.p]\ntres_billing_weights = \"Foo=1\"\n", 4, "foo"),
        ] {
            let e = RateCard::parse(text, "bad.toml", &cal()).expect_err(text);
            assert!(e.starts_with(&format!("rate card bad.toml line {line}:")), "{e}");
            assert!(e.contains(word), "{e}");
        }
    }
}
