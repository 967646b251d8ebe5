use super::*;
use crate::period::Period;
use proptest::prelude::*;

const CARD: &str = "currency = \"EUR\"\n[[prices]]\ncpu = 0.36\nbilling = 0.01\n[[prices]]\nfrom = \"2026-02-01T06:00:00Z\"\ncpu = 0.72\n[qos.high]\nusage_factor = 2.0\n";

fn setup() -> (Calendar, RateCard) {
    let cal = Calendar::new(Period::Month, "Europe/Berlin").expect("zone");
    let card = RateCard::parse(CARD, "t", &cal).expect("card");
    (cal, card)
}

fn run(job: u64, start: u64, until: u64, end: Option<u64>, cpus: u64) -> Allocation {
    Allocation {
        cluster: if job.is_multiple_of(2) { "a" } else { "b" }.into(),
        job_id: job,
        account: format!("acct{}", job % 3),
        qos: if job.is_multiple_of(4) {
            "high"
        } else {
            "normal"
        }
        .into(),
        end,
        ..Allocation::sample(
            start,
            until,
            [("cpu".to_owned(), cpus), ("mem".to_owned(), cpus << 30)].into(),
        )
    }
}

#[test]
fn a_running_job_accrues_and_is_settled_by_its_final_record() {
    let (cal, card) = setup();
    let mut s = Store::in_memory().expect("store");
    let t0 = 1_769_900_000;
    let d = s
        .apply(&[run(1, t0, t0 + 100, None, 2)], &cal, &card)
        .expect("apply");
    assert_eq!(d.added, 1);
    s.apply(&[run(1, t0, t0 + 200, None, 2)], &cal, &card)
        .expect("apply");
    let cpu = |c: &Counters| {
        c.tres_seconds
            .iter()
            .filter(|(k, _)| k.3 == "cpu")
            .map(|(_, v)| *v)
            .sum::<u128>()
    };
    assert_eq!(cpu(&s.totals().expect("t")), 400);
    // The final record says it ran 150 s (clock skew): totals follow, counters do not drop.
    let d = s
        .apply(&[run(1, t0, t0 + 150, Some(t0 + 150), 2)], &cal, &card)
        .expect("apply");
    assert_eq!(d.replaced, 1);
    assert_eq!(cpu(&s.totals().expect("t")), 300);
    assert_eq!(cpu(&s.counters().expect("c")), 400);
    // A stale running view arriving afterwards changes nothing.
    let d = s
        .apply(&[run(1, t0, t0 + 900, None, 2)], &cal, &card)
        .expect("apply");
    assert_eq!(d.kept, 1);
    assert_eq!(cpu(&s.totals().expect("t")), 300);
}

#[test]
fn a_record_arriving_years_late_is_counted_once() {
    let (cal, card) = setup();
    let mut s = Store::in_memory().expect("store");
    s.apply(
        &[run(5, 2_000_000_000, 2_000_000_100, Some(2_000_000_100), 1)],
        &cal,
        &card,
    )
    .expect("apply");
    let late = run(6, 1_500_000_000, 1_500_000_010, Some(1_500_000_010), 1);
    assert_eq!(
        s.apply(std::slice::from_ref(&late), &cal, &card)
            .expect("apply")
            .added,
        1
    );
    assert_eq!(s.apply(&[late], &cal, &card).expect("apply").kept, 1);
    let cpu: u128 = s
        .totals()
        .expect("t")
        .tres_seconds
        .iter()
        .filter(|(k, _)| k.3 == "cpu")
        .map(|(_, v)| *v)
        .sum();
    assert_eq!(cpu, 110);
}

#[test]
fn totals_survive_reopening_and_replay_changes_nothing() {
    let (cal, card) = setup();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("usage.redb");
    let batch: Vec<_> = (0..20)
        .map(|j| {
            run(
                j,
                1_769_000_000 + j * 1000,
                1_769_100_000 + j * 7,
                Some(1_769_100_000 + j * 7),
                1 + j,
            )
        })
        .collect();
    let before = {
        let mut s = Store::open(&path).expect("open");
        s.apply(&batch, &cal, &card).expect("apply");
        (s.totals().expect("t"), s.counters().expect("c"))
    };
    {
        // A report reads while the exporter holds the store open for writing.
        let _writer = Store::open(&path).expect("writer");
        let ro = Store::open_read_only(&path).expect("read only beside the writer");
        assert_eq!(ro.totals().expect("t"), before.0);
        let mut ro = ro;
        assert!(
            ro.apply(&batch, &cal, &card).is_err(),
            "a read-only store refuses writes"
        );
    }
    let mut s = Store::open(&path).expect("reopen");
    assert_eq!(
        (s.totals().expect("t"), s.counters().expect("c")),
        before.clone()
    );
    let d = s.apply(&batch, &cal, &card).expect("replay");
    assert_eq!((d.added, d.replaced, d.kept), (0, 0, 20));
    assert_eq!(s.totals().expect("t"), before.0);
    assert_eq!(s.allocations(0, u64::MAX).expect("all").len(), 20);
}

fn versions() -> impl Strategy<Value = Vec<Allocation>> {
    // Up to 6 runs, each in up to 4 versions: running views and finished records with ends
    // that move (corrections), starting around a price change and a month boundary.
    prop::collection::vec(
        (
            0u64..6,
            0u64..3,
            prop::collection::vec((0u64..400_000, any::<bool>()), 1..4),
            1u64..64,
        ),
        1..8,
    )
    .prop_map(|runs| {
        let mut out = Vec::new();
        for (job, which, vs, cpus) in runs {
            let start = 1_769_800_000 + which * 50_000 + job;
            for (len, done) in vs {
                out.push(run(
                    job,
                    start,
                    start + len,
                    done.then_some(start + len),
                    cpus,
                ));
            }
        }
        out
    })
}

proptest! {
    /// Any order, any repetition, any batching of the same records: the same totals, the
    /// same kept records, and report sums equal allocated TRES x charged seconds.
    #[test]
    fn order_and_repetition_do_not_change_totals(
        recs in versions(),
        perm in any::<prop::sample::Index>(),
        dup in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let (cal, card) = setup();
        let mut a = Store::in_memory().expect("store");
        a.apply(&recs, &cal, &card).expect("apply");
        let mut shuffled = recs.clone();
        let n = shuffled.len();
        shuffled.rotate_left(perm.index(n));
        shuffled.reverse();
        for d in &dup {
            shuffled.push(recs[d.index(n)].clone());
        }
        let mut b = Store::in_memory().expect("store");
        let (x, y) = shuffled.split_at(cut.index(shuffled.len()));
        b.apply(x, &cal, &card).expect("apply");
        b.apply(y, &cal, &card).expect("apply");
        prop_assert_eq!(a.totals().expect("t"), b.totals().expect("t"));
        let kept = b.allocations(0, u64::MAX).expect("all");
        prop_assert_eq!(&a.allocations(0, u64::MAX).expect("all"), &kept);
        let expect: u128 = kept.iter().map(|k| u128::from(k.tres["cpu"]) * u128::from(k.seconds())).sum();
        let got: u128 = b.totals().expect("t").tres_seconds.iter().filter(|(k, _)| k.3 == "cpu").map(|(_, v)| *v).sum();
        prop_assert_eq!(got, expect);
    }
}
