//! The usage store: every allocation ever seen, and the totals they add up to, in one redb
//! file.
//!
//! # Schema
//!
//! | table      | key                                   | value |
//! |------------|---------------------------------------|-------|
//! | `allocs`   | `(cluster, job_id, start)`            | JSON: the record kept and what it added |
//! | `tres`     | `(account, partition, qos, tres)`     | `u128` TRES-seconds now |
//! | `cost`     | `(account, partition, qos, currency)` | `u128` nano-units now |
//! | `tres_hw`, `cost_hw` | as above                    | `u128` highest value ever (the exported counters) |
//! | `meta`     | `schema`, `added`, `replaced`, `kept` | `u64` |
//!
//! # Why nothing is dropped or counted twice
//!
//! A record is keyed by its run identity and the store keeps, per key, the greatest version
//! under [`Allocation::supersedes`], a total order: the kept version is the same whatever the
//! order records arrive in and however often. Totals are the sum of what each kept version
//! adds; replacing a version subtracts exactly what the old one added (stored beside it) and
//! adds the new one's. So a late record (any age: there is no horizon), a repeated one, a
//! running job's growing accrual and its final record all converge to the same totals.
//! One write transaction per batch: a crash leaves the store before or after the batch.
//!
//! Totals may go down when a finished record charges less than its running view had accrued
//! (clock skew between the exporter and slurmdbd). The exported counters are the high-water
//! marks of the totals, so they never decrease; reports read the exact totals.

use crate::period::Calendar;
use crate::rates::RateCard;
use crate::record::{Allocation, Key};
use crate::usage::lines;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

type K4<'a> = (&'a str, &'a str, &'a str, &'a str);

const ALLOCS: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("allocs");
const TRES: TableDefinition<K4, u128> = TableDefinition::new("tres");
const COST: TableDefinition<K4, u128> = TableDefinition::new("cost");
const TRES_HW: TableDefinition<K4, u128> = TableDefinition::new("tres_hw");
const COST_HW: TableDefinition<K4, u128> = TableDefinition::new("cost_hw");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const SCHEMA: u64 = 1;

/// Why the store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("usage store {path}: {msg}")]
    Open { path: String, msg: String },
    #[error("usage store: {0}")]
    Db(String),
    #[error("usage store {path}: schema {found} is newer than this exporter's {SCHEMA}")]
    Schema { path: String, found: u64 },
    #[error("usage store: a stored record is unreadable: {0}")]
    Corrupt(String),
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into().to_string())
}

/// A record kept and what it added to the totals when it was kept.
#[derive(Serialize, Deserialize)]
struct Kept {
    alloc: Allocation,
    tres: BTreeMap<String, u128>,
    cost_nano: u128,
    currency: String,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Records of runs not seen before.
    pub added: u64,
    /// Records that replaced an earlier version (accrual grew, the run ended, a correction).
    pub replaced: u64,
    /// Records equal to or superseded by the version kept (repeats, stale views).
    pub kept: u64,
}

/// `(account, partition, qos, tres or currency)`.
pub type CounterKey = (String, String, String, String);

/// The exported counters: TRES-seconds and cost (nano-units), never decreasing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub tres_seconds: BTreeMap<CounterKey, u128>,
    pub cost_nano: BTreeMap<CounterKey, u128>,
}

enum Db {
    Write(Database),
    /// Opened by `usage report`: no writes, and no write lock.
    Read(redb::ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        match self {
            Db::Write(d) => d.begin_read(),
            Db::Read(d) => d.begin_read(),
        }
        .map_err(db_err)
    }
}

/// The persisted usage store.
pub struct Store {
    db: Db,
    path: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn what_it_adds(a: &Allocation, cal: &Calendar, card: &RateCard) -> Kept {
    let mut tres: BTreeMap<String, u128> = BTreeMap::new();
    let mut cost_nano = 0u128;
    for l in lines(a, cal, card, 0, u64::MAX) {
        let e = tres.entry(l.tres).or_default();
        *e = e.saturating_add(l.quantity);
        cost_nano = cost_nano.saturating_add(l.billed_nano);
    }
    Kept {
        alloc: a.clone(),
        tres,
        cost_nano,
        currency: card.currency.clone(),
    }
}

/// Signed changes per key, applied at the end of a batch.
#[derive(Default)]
struct Deltas(BTreeMap<CounterKey, (u128, u128)>);

impl Deltas {
    fn add(&mut self, k: CounterKey, v: u128, plus: bool) {
        let e = self.0.entry(k).or_default();
        if plus {
            e.0 = e.0.saturating_add(v);
        } else {
            e.1 = e.1.saturating_add(v);
        }
    }

    fn record(&mut self, tres: &mut Deltas, k: &Kept, plus: bool) {
        let a = &k.alloc;
        let key = |last: &str| {
            (
                a.account.clone(),
                a.partition.clone(),
                a.qos.clone(),
                last.to_owned(),
            )
        };
        for (t, q) in &k.tres {
            tres.add(key(t), *q, plus);
        }
        self.add(key(&k.currency), k.cost_nano, plus);
    }

    fn write(
        &self,
        now: &mut redb::Table<K4, u128>,
        hw: &mut redb::Table<K4, u128>,
    ) -> Result<(), StoreError> {
        for ((a, p, q, t), (plus, minus)) in &self.0 {
            let k = (a.as_str(), p.as_str(), q.as_str(), t.as_str());
            let cur = now.get(k).map_err(db_err)?.map_or(0, |v| v.value());
            let new = cur.saturating_add(*plus).saturating_sub(*minus);
            now.insert(k, new).map_err(db_err)?;
            let high = hw.get(k).map_err(db_err)?.map_or(0, |v| v.value());
            if new > high {
                hw.insert(k, new).map_err(db_err)?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// Opens (or creates) the store file.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let shown = path.as_ref().display().to_string();
        // One writer (the exporter) and any number of read-only readers (`usage report`) at
        // once, each reader seeing the last commit.
        let db = Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .create(path.as_ref())
            .map_err(|e| StoreError::Open {
                path: shown.clone(),
                msg: e.to_string(),
            })?;
        Store::init(db, shown)
    }

    /// Opens an existing store for reading only (reports).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let shown = path.as_ref().display().to_string();
        let db = Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .open_read_only(path.as_ref())
            .map_err(|e| StoreError::Open {
                path: shown.clone(),
                msg: e.to_string(),
            })?;
        let s = Store {
            db: Db::Read(db),
            path: shown.clone(),
        };
        let tx = s.db.begin_read()?;
        let meta = tx.open_table(META).map_err(db_err)?;
        match meta.get("schema").map_err(db_err)?.map(|v| v.value()) {
            Some(v) if v > SCHEMA => Err(StoreError::Schema {
                path: shown,
                found: v,
            }),
            _ => Ok(s),
        }
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StoreError::Open {
                path: "(memory)".into(),
                msg: e.to_string(),
            })?;
        Store::init(db, "(memory)".into())
    }

    fn init(db: Database, path: String) -> Result<Store, StoreError> {
        let tx = db.begin_write().map_err(db_err)?;
        {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let found = meta.get("schema").map_err(db_err)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA => return Err(StoreError::Schema { path, found: v }),
                Some(_) => {}
                None => {
                    meta.insert("schema", SCHEMA).map_err(db_err)?;
                }
            }
            tx.open_table(ALLOCS).map_err(db_err)?;
            for t in [TRES, COST, TRES_HW, COST_HW] {
                tx.open_table(t).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(Store {
            db: Db::Write(db),
            path,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Adds a batch in one write transaction (see the module docs).
    pub fn apply(
        &mut self,
        batch: &[Allocation],
        cal: &Calendar,
        card: &RateCard,
    ) -> Result<Applied, StoreError> {
        let mut done = Applied::default();
        let (mut tres, mut cost) = (Deltas::default(), Deltas::default());
        let Db::Write(db) = &self.db else {
            return Err(StoreError::Db(format!(
                "{} is open for reading only",
                self.path
            )));
        };
        let tx = db.begin_write().map_err(db_err)?;
        {
            let mut allocs = tx.open_table(ALLOCS).map_err(db_err)?;
            for a in batch {
                let a = a.clone().sanitized();
                let (c, j, s) = a.key();
                let old = match allocs.get((c.as_str(), j, s)).map_err(db_err)? {
                    Some(v) => Some(
                        serde_json::from_slice::<Kept>(v.value())
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    ),
                    None => None,
                };
                if let Some(o) = &old {
                    if !a.supersedes(&o.alloc) {
                        done.kept += 1;
                        continue;
                    }
                    cost.record(&mut tres, o, false);
                    done.replaced += 1;
                } else {
                    done.added += 1;
                }
                let k = what_it_adds(&a, cal, card);
                cost.record(&mut tres, &k, true);
                let bytes =
                    serde_json::to_vec(&k).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                allocs
                    .insert((c.as_str(), j, s), bytes.as_slice())
                    .map_err(db_err)?;
            }
            tres.write(
                &mut tx.open_table(TRES).map_err(db_err)?,
                &mut tx.open_table(TRES_HW).map_err(db_err)?,
            )?;
            cost.write(
                &mut tx.open_table(COST).map_err(db_err)?,
                &mut tx.open_table(COST_HW).map_err(db_err)?,
            )?;
            let mut meta = tx.open_table(META).map_err(db_err)?;
            for (k, n) in [
                ("added", done.added),
                ("replaced", done.replaced),
                ("kept", done.kept),
            ] {
                let cur = meta.get(k).map_err(db_err)?.map_or(0, |v| v.value());
                meta.insert(k, cur.saturating_add(n)).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(done)
    }

    fn read4(
        &self,
        t: TableDefinition<K4, u128>,
    ) -> Result<BTreeMap<CounterKey, u128>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(t).map_err(db_err)?;
        let mut out = BTreeMap::new();
        for row in table.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let (a, p, q, x) = k.value();
            out.insert(
                (a.to_owned(), p.to_owned(), q.to_owned(), x.to_owned()),
                v.value(),
            );
        }
        Ok(out)
    }

    /// The exported counters (high-water marks of the totals).
    pub fn counters(&self) -> Result<Counters, StoreError> {
        Ok(Counters {
            tres_seconds: self.read4(TRES_HW)?,
            cost_nano: self.read4(COST_HW)?,
        })
    }

    /// The exact totals now (what the kept records add up to).
    pub fn totals(&self) -> Result<Counters, StoreError> {
        Ok(Counters {
            tres_seconds: self.read4(TRES)?,
            cost_nano: self.read4(COST)?,
        })
    }

    /// Every kept record whose charged interval meets `[from, to)`.
    pub fn allocations(&self, from: u64, to: u64) -> Result<Vec<Allocation>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ALLOCS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            let k: Kept = serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if k.alloc.start < to && k.alloc.until > from {
                out.push(k.alloc);
            }
        }
        Ok(out)
    }

    /// The record kept for a run.
    pub fn get(&self, key: &Key) -> Result<Option<Allocation>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ALLOCS).map_err(db_err)?;
        match table.get((key.0.as_str(), key.1, key.2)).map_err(db_err)? {
            Some(v) => serde_json::from_slice::<Kept>(v.value())
                .map(|k| Some(k.alloc))
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
