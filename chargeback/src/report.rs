//! Reports: priced lines of the kept allocations over a date range, grouped by billing
//! period and any of account, user, partition, qos, tres; written as an aligned table, CSV,
//! JSON or FOCUS 1.x (the FinOps Open Cost and Usage Specification) CSV.

use crate::period::{rfc3339, Calendar};
use crate::rates::{RateCard, NANO};
use crate::record::Allocation;
use crate::usage::lines;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What a report may be grouped by (besides the billing period, always).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dim {
    Account,
    User,
    Partition,
    Qos,
    Tres,
}

impl Dim {
    pub const ALL: [Dim; 5] = [Dim::Account, Dim::User, Dim::Partition, Dim::Qos, Dim::Tres];

    pub fn name(self) -> &'static str {
        match self {
            Dim::Account => "account",
            Dim::User => "user",
            Dim::Partition => "partition",
            Dim::Qos => "qos",
            Dim::Tres => "tres",
        }
    }

    /// `account,user,...` in any order; an unknown word is an error listing the known ones.
    pub fn parse_list(s: &str) -> Result<Vec<Dim>, String> {
        let mut out = BTreeSet::new();
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let d = Dim::ALL
                .into_iter()
                .find(|d| d.name() == w)
                .ok_or_else(|| {
                    format!("--by: unknown {w:?} (known: account, user, partition, qos, tres)")
                })?;
            out.insert(d);
        }
        Ok(out.into_iter().collect())
    }
}

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Focus,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "focus" => Format::Focus,
            _ => {
                return Err(format!(
                    "--format {s:?}: expected table, csv, json or focus"
                ))
            }
        })
    }
}

/// One report row.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub period: (u64, u64),
    /// The part of the period inside the report's range.
    pub charge: (u64, u64),
    pub cluster: String,
    /// Values of the grouped dimensions in [`Dim::ALL`] order; `""` when not grouped.
    pub account: String,
    pub user: String,
    pub partition: String,
    pub qos: String,
    pub tres: String,
    /// TRES-seconds (memory byte-seconds, energy joules); meaningful when grouped by tres.
    pub quantity: u128,
    /// Price per pricing unit (nano); 0 when the row mixes prices.
    pub unit_price: u128,
    pub list_nano: u128,
    pub billed_nano: u128,
}

/// Groups the priced lines of `allocs` inside `[from, to)`; `accounts` restricts to a
/// tenant's accounts.
pub fn rows(
    allocs: &[Allocation],
    cal: &Calendar,
    card: &RateCard,
    from: u64,
    to: u64,
    by: &[Dim],
    accounts: Option<&BTreeSet<String>>,
) -> Vec<Row> {
    let has = |d: Dim| by.contains(&d);
    let mut acc: BTreeMap<Row, (u128, BTreeSet<u128>, u128, u128)> = BTreeMap::new();
    for a in allocs {
        if accounts.is_some_and(|s| !s.contains(&a.account)) {
            continue;
        }
        for l in lines(a, cal, card, from, to) {
            let pick = |d: Dim, v: &str| if has(d) { v.to_owned() } else { String::new() };
            let key = Row {
                period: l.period,
                charge: (l.period.0.max(from), l.period.1.min(to)),
                cluster: if has(Dim::Account) {
                    a.cluster.clone()
                } else {
                    String::new()
                },
                account: pick(Dim::Account, &a.account),
                user: pick(Dim::User, &a.user),
                partition: pick(Dim::Partition, &a.partition),
                qos: pick(Dim::Qos, &a.qos),
                tres: pick(Dim::Tres, &l.tres),
                ..Row::default()
            };
            let e = acc.entry(key).or_default();
            e.0 = e.0.saturating_add(l.quantity);
            e.1.insert(l.unit_price);
            e.2 = e.2.saturating_add(l.list_nano);
            e.3 = e.3.saturating_add(l.billed_nano);
        }
    }
    acc.into_iter()
        .map(|(k, (q, prices, list, billed))| Row {
            quantity: if has(Dim::Tres) { q } else { 0 },
            unit_price: if prices.len() == 1 {
                prices.into_iter().next().unwrap_or(0)
            } else {
                0
            },
            list_nano: list,
            billed_nano: billed,
            ..k
        })
        .collect()
}

/// A nano-unit amount as a decimal with 9 places.
pub fn money(n: u128) -> String {
    format!("{}.{:09}", n / NANO, n % NANO)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn dims_of(r: &Row, by: &[Dim]) -> Vec<String> {
    by.iter()
        .map(|d| match d {
            Dim::Account => r.account.clone(),
            Dim::User => r.user.clone(),
            Dim::Partition => r.partition.clone(),
            Dim::Qos => r.qos.clone(),
            Dim::Tres => r.tres.clone(),
        })
        .collect()
}

/// Writes rows in a format. FOCUS needs rows grouped by account and tres (see [`focus`]).
pub fn write(rows: &[Row], by: &[Dim], format: Format, currency: &str) -> String {
    match format {
        Format::Focus => focus(rows, currency),
        Format::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    o.insert("period_start".into(), rfc3339(r.period.0).into());
                    o.insert("period_end".into(), rfc3339(r.period.1).into());
                    for (d, v) in by.iter().zip(dims_of(r, by)) {
                        o.insert(d.name().into(), v.into());
                    }
                    if by.contains(&Dim::Tres) {
                        o.insert("quantity".into(), r.quantity.to_string().into());
                    }
                    o.insert("list_cost".into(), money(r.list_nano).into());
                    o.insert("cost".into(), money(r.billed_nano).into());
                    o.insert("currency".into(), currency.into());
                    serde_json::Value::Object(o)
                })
                .collect();
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        Format::Csv | Format::Table => {
            let mut head = vec!["period_start".to_owned(), "period_end".to_owned()];
            head.extend(by.iter().map(|d| d.name().to_owned()));
            if by.contains(&Dim::Tres) {
                head.push("quantity".into());
            }
            head.extend(["list_cost".into(), "cost".into(), "currency".into()]);
            let mut table = vec![head];
            for r in rows {
                let mut line = vec![rfc3339(r.period.0), rfc3339(r.period.1)];
                line.extend(dims_of(r, by));
                if by.contains(&Dim::Tres) {
                    line.push(r.quantity.to_string());
                }
                line.extend([
                    money(r.list_nano),
                    money(r.billed_nano),
                    currency.to_owned(),
                ]);
                table.push(line);
            }
            let mut out = String::new();
            if format == Format::Csv {
                for l in &table {
                    let f: Vec<String> = l.iter().map(|c| csv_field(c)).collect();
                    out.push_str(&f.join(","));
                    out.push('\n');
                }
            } else {
                let widths: Vec<usize> = (0..table[0].len())
                    .map(|i| {
                        table
                            .iter()
                            .map(|l| l[i].chars().count())
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                for l in &table {
                    let cells: Vec<String> = l
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect();
                    out.push_str(cells.join("  ").trim_end());
                    out.push('\n');
                }
            }
            out
        }
    }
}

/// The FOCUS 1.x columns written, in order: the columns FOCUS 1.0 makes mandatory, plus
/// ConsumedQuantity/ConsumedUnit and ResourceId (conditional columns that apply here).
pub const FOCUS_COLUMNS: &[&str] = &[
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
];

/// The units a TRES is consumed and priced in, and the divisor from consumed to priced.
fn units(tres: &str) -> (&'static str, &'static str, u128) {
    match tres {
        "mem" => ("Byte-Seconds", "GiB-Hours", 3600 << 30),
        "energy" => ("Joules", "kWh", 3_600_000),
        "cpu" => ("CPU-Seconds", "CPU-Hours", 3600),
        "node" => ("Node-Seconds", "Node-Hours", 3600),
        "billing" => ("Billing-Seconds", "Billing-Hours", 3600),
        t if t.starts_with("gres/gpu") => ("GPU-Seconds", "GPU-Hours", 3600),
        _ => ("Unit-Seconds", "Unit-Hours", 3600),
    }
}

/// A decimal `q / div` with 9 places (rounded down).
fn ratio(q: u128, div: u128) -> String {
    let whole = q / div;
    let frac = (q % div).saturating_mul(NANO) / div;
    format!("{whole}.{frac:09}")
}

/// FOCUS rows: one per billing period, cluster, account, user, partition, qos and TRES that
/// is in `rows` (group them by at least account and tres). The billing account is the
/// Slurm cluster, the sub-account the Slurm account; ChargePeriod is the part of the billing
/// period inside the report range; dates are RFC 3339 UTC; costs are decimals in
/// BillingCurrency; Tags is a JSON object of the grouping values.
pub fn focus(rows: &[Row], currency: &str) -> String {
    let mut out = FOCUS_COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        let (cunit, punit, div) = units(&r.tres);
        let cluster = if r.cluster.is_empty() {
            "slurm"
        } else {
            &r.cluster
        };
        let mut tags = serde_json::Map::new();
        for (k, v) in [
            ("user", &r.user),
            ("partition", &r.partition),
            ("qos", &r.qos),
            ("tres", &r.tres),
        ] {
            if !v.is_empty() {
                tags.insert(format!("slurm/{k}"), v.clone().into());
            }
        }
        let tags = serde_json::Value::Object(tags).to_string();
        let sku = format!("slurm-{}", r.tres.replace(['/', ':'], "-"));
        let desc = format!("{} of account {} on {cluster}", punit, r.account);
        let billed = money(r.billed_nano);
        let list = money(r.list_nano);
        let cells: Vec<String> = vec![
            billed.clone(),
            cluster.to_owned(),
            cluster.to_owned(),
            currency.to_owned(),
            rfc3339(r.period.1),
            rfc3339(r.period.0),
            "Usage".into(),
            String::new(),
            desc,
            "Usage-Based".into(),
            rfc3339(r.charge.1),
            rfc3339(r.charge.0),
            r.quantity.to_string(),
            cunit.into(),
            billed.clone(),
            money(r.unit_price),
            billed,
            "Slurm".into(),
            list,
            money(r.unit_price),
            "Standard".into(),
            ratio(r.quantity, div),
            punit.into(),
            "Slurm".into(),
            "Slurm".into(),
            String::new(),
            String::new(),
            format!("{cluster}/{}", r.account),
            r.account.clone(),
            "Slurm Account".into(),
            "Compute".into(),
            "Slurm HPC".into(),
            sku.clone(),
            format!("{sku}@{}", money(r.unit_price)),
            r.account.clone(),
            r.account.clone(),
            tags,
        ];
        let f: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        let _ = writeln!(out, "{}", f.join(","));
    }
    out
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
