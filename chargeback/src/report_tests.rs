use super::*;
use crate::period::Period;
use proptest::prelude::*;

const CARD: &str = "currency = \"USD\"\n[[prices]]\ncpu = 0.05\nmem_gib = 0.01\ngpu = 1.0\ngpu_types = { a100 = 3.0 }\n[partitions.gpu]\nmultiplier = 1.25\n";

fn alloc(job: u64, account: &str, start: u64, len: u64, tres: &[(&str, u64)]) -> Allocation {
    Allocation {
        cluster: "lab".into(),
        job_id: job,
        account: account.into(),
        user: "alice,jr".into(),
        partition: "gpu".into(),
        qos: "normal".into(),
        ..Allocation::sample(
            start,
            start + len,
            tres.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        )
    }
}

/// A CSV reader for the test (quoted fields, doubled quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut row = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => row.push(std::mem::take(&mut cur)),
                (c, _) => cur.push(c),
            }
        }
        row.push(cur);
        rows.push(row);
    }
    rows
}

fn is_rfc3339_utc(s: &str) -> bool {
    s.len() == 20 && s.ends_with('Z') && s.parse::<jiff::Timestamp>().is_ok()
}

fn is_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let w = parts.next().unwrap_or("");
    let f = parts.next().unwrap_or("0");
    !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) && f.bytes().all(|b| b.is_ascii_digit())
}

proptest! {
    /// Every FOCUS row has every column with a value of its type, costs add up to the
    /// table's, and the period columns are a valid billing period.
    #[test]
    fn focus_rows_have_every_required_column_with_valid_values(
        jobs in prop::collection::vec((0u64..3, 1_767_000_000u64..1_772_000_000, 1u64..3_000_000, 1u64..64, 0u64..8), 1..12),
    ) {
        let cal = Calendar::new(Period::Month, "America/Chicago").expect("zone");
        let card = RateCard::parse(CARD, "t", &cal).expect("card");
        let allocs: Vec<_> = jobs.iter().enumerate().map(|(i, (a, s, l, c, g))| {
            alloc(i as u64, ["physics", "chem", "bio\"x"][*a as usize], *s, *l, &[("cpu", *c), ("mem", c << 30), ("gres/gpu:a100", *g)])
        }).collect();
        let (from, to) = (cal.parse_instant("2026-01-01").expect("d"), cal.parse_instant("2026-03-01").expect("d"));
        let by = Dim::parse_list("account,user,partition,qos,tres").expect("by");
        let rs = rows(&allocs, &cal, &card, from, to, &by, None);
        let text = write(&rs, &by, Format::Focus, &card.currency);
        let table = parse_csv(&text);
        prop_assert_eq!(&table[0], &FOCUS_COLUMNS.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>());
        prop_assert_eq!(table.len(), rs.len() + 1);
        let col = |name: &str| FOCUS_COLUMNS.iter().position(|c| *c == name).expect("column");
        let mut billed = 0u128;
        for row in &table[1..] {
            prop_assert_eq!(row.len(), FOCUS_COLUMNS.len());
            for c in ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ListUnitPrice", "ContractedUnitPrice", "PricingQuantity", "ConsumedQuantity"] {
                prop_assert!(is_decimal(&row[col(c)]), "{} = {:?}", c, row[col(c)]);
            }
            for c in ["BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"] {
                prop_assert!(is_rfc3339_utc(&row[col(c)]), "{} = {:?}", c, row[col(c)]);
            }
            prop_assert!(row[col("ChargePeriodStart")] < row[col("ChargePeriodEnd")]);
            prop_assert!(row[col("BillingPeriodStart")] <= row[col("ChargePeriodStart")]);
            prop_assert!(row[col("ChargePeriodEnd")] <= row[col("BillingPeriodEnd")]);
            prop_assert_eq!(&row[col("BillingCurrency")], "USD");
            prop_assert_eq!(&row[col("ChargeCategory")], "Usage");
            prop_assert_eq!(&row[col("ChargeFrequency")], "Usage-Based");
            prop_assert_eq!(&row[col("ServiceCategory")], "Compute");
            prop_assert_eq!(&row[col("ChargeClass")], "");
            for c in ["BillingAccountId", "SubAccountId", "ResourceId", "ConsumedUnit", "PricingUnit", "SkuId", "ProviderName", "ServiceName"] {
                prop_assert!(!row[col(c)].is_empty(), "{} empty", c);
            }
            let tags: serde_json::Value = serde_json::from_str(&row[col("Tags")]).expect("Tags is JSON");
            prop_assert!(tags.is_object());
            let b = &row[col("BilledCost")];
            let (w, f) = b.split_once('.').expect("decimal");
            billed += w.parse::<u128>().expect("w") * NANO + f.parse::<u128>().expect("f");
        }
        let total: u128 = rs.iter().map(|r| r.billed_nano).sum();
        prop_assert_eq!(billed, total);
    }
}

#[test]
fn reports_group_by_what_is_asked_and_filter_by_tenant() {
    let cal = Calendar::new(Period::Day, "UTC").expect("zone");
    let card = RateCard::parse(CARD, "t", &cal).expect("card");
    let day = cal.parse_instant("2026-05-01").expect("d");
    // Two hours across midnight: split into two days.
    let allocs = [
        alloc(1, "physics", day - 3600, 7200, &[("cpu", 2)]),
        alloc(2, "chem", day, 3600, &[("cpu", 1)]),
    ];
    let by = Dim::parse_list("account,tres").expect("by");
    let all = rows(&allocs, &cal, &card, 0, u64::MAX, &by, None);
    // Without a billing TRES in the record or weights for the partition, Slurm bills CPUs.
    let billing: Vec<_> = all.iter().filter(|r| r.tres == "billing").collect();
    assert_eq!(billing.len(), 3);
    assert!(
        billing.iter().all(|r| r.billed_nano == 0),
        "no billing price in this card"
    );
    let rs: Vec<_> = all.into_iter().filter(|r| r.tres == "cpu").collect();
    assert_eq!(rs.len(), 3);
    assert!(rs.iter().all(|r| r.quantity == 7200 || r.quantity == 3600));
    // 2 CPU x 1 h x 0.05 x 1.25 in each day for physics.
    let physics: Vec<_> = rs.iter().filter(|r| r.account == "physics").collect();
    assert_eq!(physics.len(), 2);
    assert!(physics
        .iter()
        .all(|r| r.billed_nano == 125_000_000 && r.list_nano == 100_000_000));
    let only: BTreeSet<String> = ["chem".to_owned()].into();
    let rs: Vec<_> = rows(&allocs, &cal, &card, 0, u64::MAX, &by, Some(&only))
        .into_iter()
        .filter(|r| r.tres == "cpu")
        .collect();
    assert_eq!(rs.len(), 1);
    let text = write(&rs, &by, Format::Csv, "USD");
    assert_eq!(
        text,
        "period_start,period_end,account,tres,quantity,list_cost,cost,currency\n\
         2026-05-01T00:00:00Z,2026-05-02T00:00:00Z,chem,cpu,3600,0.050000000,0.062500000,USD\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&write(&rs, &by, Format::Json, "USD")).expect("json");
    assert_eq!(json[0]["cost"], "0.062500000");
    let table = write(&rs, &by, Format::Table, "USD");
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("chem") && l.contains("0.062500000")),
        "{table}"
    );
    assert!(Dim::parse_list("account,cost").is_err());
    assert!("xml".parse::<Format>().is_err());
}
