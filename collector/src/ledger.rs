//! The accounting ledger: monotonic chargeback counters built from finished jobs, persisted
//! in a redb file so they survive restarts, and never counting a job twice.
//!
//! # Schema (redb, one file)
//!
//! | table      | key                                         | value                    |
//! |------------|---------------------------------------------|--------------------------|
//! | `usage`    | `(account, user, partition, qos)`           | `[u128; 6]`: jobs, CPU-s, GPU-s, memory-byte-s, node-s, wait-s |
//! | `outcomes` | `(account, partition, state, exit_code)`    | `u64` finished jobs      |
//! | `seen`     | `(end_epoch, cluster, job_id, submit_epoch)`| `()`                     |
//! | `meta`     | `schema`, `cursor`, `horizon`, `counted`, `duplicate`, `late` | `u64` |
//!
//! # Why no job is counted twice
//!
//! Sources read a window `[since, now]` with `since = cursor - overlap`, so consecutive
//! windows overlap and the same job arrives in several batches. [`Ledger::apply`] runs ONE
//! redb write transaction per batch that, for each job:
//! 1. skips it as *late* if it ended before the stored `horizon` (its key may have been
//!    pruned, so it cannot be checked; better uncounted than counted twice);
//! 2. skips it as *duplicate* if its key `(end, cluster, job_id, submit)` is in `seen`;
//! 3. otherwise inserts the key into `seen` and adds the job to `usage` and `outcomes`.
//!
//! It then moves `cursor` to the newest end time (never past the poll's "now", so a bogus
//! future end time cannot push the window away), moves `horizon` to `cursor - 2 x overlap`
//! (never backwards), and deletes `seen` keys that ended before the horizon. Every key a
//! future batch could match is still in `seen` (its end is at or after the horizon), and
//! every job a future batch could bring that is not in `seen` ended before the horizon and
//! is skipped as late. The counters, the seen set and the cursor are written by the same
//! transaction: redb commits it atomically (copy-on-write B-trees, one durable commit), so
//! a crash leaves either the state before the batch or the state after it, never counters
//! without their seen keys. A failed transaction changes nothing and leaves the cursor
//! where it was, so the next poll asks for the same jobs again.

use crate::model::accounting::{OutcomeKey, Usage, UsageKey};
use crate::model::{AccountingTotals, FinishedJob, JobState, Name};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;

type Str4<'a> = (&'a str, &'a str, &'a str, &'a str);

const USAGE: TableDefinition<Str4, [u128; 6]> = TableDefinition::new("usage");
const OUTCOMES: TableDefinition<Str4, u64> = TableDefinition::new("outcomes");
const SEEN: TableDefinition<(u64, &str, u64, u64), ()> = TableDefinition::new("seen");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const SCHEMA: u64 = 1;

/// Why the ledger could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("accounting ledger {path}: {msg}")]
    Open { path: String, msg: String },
    #[error("accounting ledger: {0}")]
    Db(String),
    #[error("accounting ledger {path}: schema {found} is newer than this exporter's {SCHEMA}")]
    Schema { path: String, found: u64 },
}

fn db_err(e: impl Into<redb::Error>) -> LedgerError {
    LedgerError::Db(e.into().to_string())
}

/// How far back accounting reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountingWindow {
    /// How far back the first poll of an empty ledger reads, and the most any poll reads
    /// (after a long outage, older jobs are not fetched).
    pub lookback_seconds: u64,
    /// How far before the cursor each poll starts again: covers slurmdbd's lag in
    /// recording job ends and clock differences. The seen set is kept for twice this.
    pub overlap_seconds: u64,
}

impl Default for AccountingWindow {
    fn default() -> Self {
        AccountingWindow {
            lookback_seconds: 3600,
            overlap_seconds: 600,
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub counted: u64,
    pub duplicate: u64,
    pub late: u64,
}

/// Persistent chargeback counters. See the module docs for the schema and the argument.
pub struct Ledger {
    db: Database,
    path: String,
    totals: AccountingTotals,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

impl Ledger {
    /// Opens (or creates) the ledger file at `path`. Totals are those it held when last
    /// written: reopening gives the same counters.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger, LedgerError> {
        let p = path.as_ref();
        let shown = p.display().to_string();
        let db = Database::create(p).map_err(|e| LedgerError::Open {
            path: shown.clone(),
            msg: e.to_string(),
        })?;
        Ledger::init(db, shown)
    }

    /// A ledger that lives in memory only (tests, the simulator, no `ledger_path`).
    pub fn in_memory() -> Result<Ledger, LedgerError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| LedgerError::Open {
                path: "(memory)".into(),
                msg: e.to_string(),
            })?;
        Ledger::init(db, "(memory)".into())
    }

    fn init(db: Database, path: String) -> Result<Ledger, LedgerError> {
        let tx = db.begin_write().map_err(db_err)?;
        {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let found = meta.get("schema").map_err(db_err)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA => {
                    return Err(LedgerError::Schema { path, found: v });
                }
                Some(_) => {}
                None => {
                    meta.insert("schema", SCHEMA).map_err(db_err)?;
                }
            }
            tx.open_table(USAGE).map_err(db_err)?;
            tx.open_table(OUTCOMES).map_err(db_err)?;
            tx.open_table(SEEN).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        let mut l = Ledger {
            db,
            path,
            totals: AccountingTotals::default(),
        };
        l.totals = l.read_totals()?;
        Ok(l)
    }

    /// Where the file is (`(memory)` for an in-memory ledger).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The counters as of the last committed batch.
    pub fn totals(&self) -> AccountingTotals {
        self.totals.clone()
    }

    /// Newest end time counted.
    pub fn cursor(&self) -> Option<u64> {
        self.totals.cursor_epoch
    }

    /// Where the next poll's window starts: the cursor less the overlap, but never more
    /// than the lookback before `now`.
    pub fn since(&self, now_epoch: u64, w: AccountingWindow) -> u64 {
        let floor = now_epoch.saturating_sub(w.lookback_seconds);
        match self.cursor() {
            Some(c) => c.saturating_sub(w.overlap_seconds).max(floor),
            None => floor,
        }
    }

    /// Adds a batch of finished jobs in one write transaction (see the module docs).
    /// `now_epoch` is when the batch was read; `overlap_seconds` the window overlap.
    pub fn apply(
        &mut self,
        jobs: &[FinishedJob],
        now_epoch: u64,
        overlap_seconds: u64,
    ) -> Result<Applied, LedgerError> {
        let mut done = Applied::default();
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let mut seen = tx.open_table(SEEN).map_err(db_err)?;
            let mut usage = tx.open_table(USAGE).map_err(db_err)?;
            let mut outcomes = tx.open_table(OUTCOMES).map_err(db_err)?;
            let get = |m: &redb::Table<&str, u64>, k: &str| -> Result<Option<u64>, LedgerError> {
                Ok(m.get(k).map_err(db_err)?.map(|v| v.value()))
            };
            let horizon = get(&meta, "horizon")?.unwrap_or(0);
            let mut cursor = get(&meta, "cursor")?;
            let mut add_usage: BTreeMap<UsageKey, Usage> = BTreeMap::new();
            let mut add_outcomes: BTreeMap<OutcomeKey, u64> = BTreeMap::new();
            for j in jobs {
                if j.end_epoch < horizon {
                    done.late += 1;
                    continue;
                }
                let key = (j.end_epoch, &*j.cluster, j.job_id, j.submit_epoch);
                if seen.get(key).map_err(db_err)?.is_some() {
                    done.duplicate += 1;
                    continue;
                }
                seen.insert(key, ()).map_err(db_err)?;
                add_usage.entry(j.usage_key()).or_default().add(&j.usage());
                *add_outcomes.entry(j.outcome_key()).or_default() += 1;
                done.counted += 1;
                let end = j.end_epoch.min(now_epoch);
                cursor = Some(cursor.map_or(end, |c| c.max(end)));
            }
            for (k, u) in &add_usage {
                let key = (&*k.account, &*k.user, &*k.partition, &*k.qos);
                let mut cur = usage
                    .get(key)
                    .map_err(db_err)?
                    .map(|v| Usage::from_array(v.value()))
                    .unwrap_or_default();
                cur.add(u);
                usage.insert(key, cur.to_array()).map_err(db_err)?;
            }
            for (k, n) in &add_outcomes {
                let key = (&*k.account, &*k.partition, k.state.as_str(), &*k.exit_code);
                let cur = outcomes.get(key).map_err(db_err)?.map_or(0, |v| v.value());
                outcomes
                    .insert(key, cur.saturating_add(*n))
                    .map_err(db_err)?;
            }
            if let Some(c) = cursor {
                meta.insert("cursor", c).map_err(db_err)?;
                let new_horizon = horizon.max(c.saturating_sub(overlap_seconds.saturating_mul(2)));
                if new_horizon > horizon {
                    meta.insert("horizon", new_horizon).map_err(db_err)?;
                    seen.retain_in(..(new_horizon, "", 0u64, 0u64), |_, _| false)
                        .map_err(db_err)?;
                }
            }
            for (k, n) in [
                ("counted", done.counted),
                ("duplicate", done.duplicate),
                ("late", done.late),
            ] {
                if n > 0 {
                    let cur = get(&meta, k)?.unwrap_or(0);
                    meta.insert(k, cur.saturating_add(n)).map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)?;
        self.totals = self.read_totals()?;
        Ok(done)
    }

    /// Keys in the seen set (for tests and the operator's curiosity).
    pub fn seen_len(&self) -> Result<u64, LedgerError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(SEEN).map_err(db_err)?;
        t.len().map_err(db_err)
    }

    fn read_totals(&self) -> Result<AccountingTotals, LedgerError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let mut names: BTreeMap<String, Name> = BTreeMap::new();
        let mut name = |s: &str| -> Name {
            if let Some(n) = names.get(s) {
                return n.clone();
            }
            let n = Name::from(s);
            names.insert(s.to_owned(), n.clone());
            n
        };
        let mut t = AccountingTotals::default();
        let usage = tx.open_table(USAGE).map_err(db_err)?;
        for row in usage.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let (a, u, p, q) = k.value();
            t.usage.insert(
                UsageKey {
                    account: name(a),
                    user: name(u),
                    partition: name(p),
                    qos: name(q),
                },
                Usage::from_array(v.value()),
            );
        }
        let outcomes = tx.open_table(OUTCOMES).map_err(db_err)?;
        for row in outcomes.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let (a, p, s, e) = k.value();
            t.outcomes.insert(
                OutcomeKey {
                    account: name(a),
                    partition: name(p),
                    state: JobState::from_token(s).unwrap_or(JobState::Other),
                    exit_code: name(e),
                },
                v.value(),
            );
        }
        let meta = tx.open_table(META).map_err(db_err)?;
        let get = |k: &str| -> Result<Option<u64>, LedgerError> {
            Ok(meta.get(k).map_err(db_err)?.map(|v| v.value()))
        };
        t.cursor_epoch = get("cursor")?;
        t.jobs_counted = get("counted")?.unwrap_or(0);
        t.jobs_duplicate = get("duplicate")?.unwrap_or(0);
        t.jobs_late = get("late")?.unwrap_or(0);
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, end: u64) -> FinishedJob {
        FinishedJob {
            cluster: "lab".into(),
            job_id: id,
            submit_epoch: end - 100,
            start_epoch: Some(end - 60),
            end_epoch: end,
            state: JobState::Completed,
            exit_code: Some(0),
            account: "physics".into(),
            user: "alice".into(),
            partition: "cpu".into(),
            qos: "normal".into(),
            cpus: 4,
            gpus: 1,
            memory_bytes: 1 << 30,
            nodes: 1,
            elapsed_seconds: 60,
            ..FinishedJob::default()
        }
    }

    fn cpu_seconds(t: &AccountingTotals) -> u128 {
        t.usage.values().map(|u| u.cpu_seconds).sum()
    }

    #[test]
    fn a_job_in_two_overlapping_polls_counts_once() {
        let mut l = Ledger::in_memory().expect("ledger");
        let a = l
            .apply(&[job(1, 10_000), job(2, 10_050)], 10_100, 600)
            .expect("apply");
        assert_eq!((a.counted, a.duplicate), (2, 0));
        // The next window starts at cursor - overlap and returns job 2 again, plus job 3.
        assert_eq!(l.since(10_200, AccountingWindow::default()), 10_050 - 600);
        let b = l
            .apply(&[job(2, 10_050), job(3, 10_150)], 10_200, 600)
            .expect("apply");
        assert_eq!((b.counted, b.duplicate), (1, 1));
        let t = l.totals();
        assert_eq!(t.jobs_counted, 3);
        assert_eq!(t.jobs_duplicate, 1);
        assert_eq!(cpu_seconds(&t), 3 * 4 * 60);
        let done: u64 = t.outcomes.values().sum();
        assert_eq!(done, 3);
    }

    #[test]
    fn duplicates_inside_one_batch_count_once() {
        let mut l = Ledger::in_memory().expect("ledger");
        let a = l
            .apply(&[job(1, 10_000), job(1, 10_000)], 10_100, 600)
            .expect("apply");
        assert_eq!((a.counted, a.duplicate), (1, 1));
    }

    #[test]
    fn jobs_older_than_the_horizon_are_skipped_not_recounted() {
        let mut l = Ledger::in_memory().expect("ledger");
        l.apply(&[job(1, 10_000)], 20_000, 600).expect("apply");
        // A job far in the past moves nothing; a later one prunes the seen set.
        l.apply(&[job(2, 19_000)], 20_000, 600).expect("apply");
        assert_eq!(l.seen_len().expect("len"), 1, "job 1 pruned");
        // Job 1 comes back (a replayed file, a fuzzy window edge): late, not counted again.
        let c = l.apply(&[job(1, 10_000)], 20_100, 600).expect("apply");
        assert_eq!((c.counted, c.late), (0, 1));
        assert_eq!(l.totals().jobs_counted, 2);
    }

    #[test]
    fn a_bogus_future_end_does_not_run_the_cursor_away() {
        let mut l = Ledger::in_memory().expect("ledger");
        l.apply(&[job(1, 4_000_000_000)], 10_000, 600)
            .expect("apply");
        assert_eq!(l.cursor(), Some(10_000));
        let b = l.apply(&[job(2, 9_990)], 10_010, 600).expect("apply");
        assert_eq!(b.counted, 1);
    }

    #[test]
    fn counters_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.redb");
        let before = {
            let mut l = Ledger::open(&path).expect("open");
            l.apply(&[job(1, 10_000), job(2, 10_010)], 10_100, 600)
                .expect("apply");
            l.totals()
        };
        let mut l = Ledger::open(&path).expect("reopen");
        assert_eq!(l.totals(), before);
        assert_eq!(l.cursor(), Some(10_010));
        // The seen set survived too: the overlap after a restart counts nothing twice.
        let a = l.apply(&[job(2, 10_010)], 10_200, 600).expect("apply");
        assert_eq!((a.counted, a.duplicate), (0, 1));
        assert_eq!(l.totals().usage, before.usage);
    }

    #[test]
    fn counters_never_decrease() {
        let mut l = Ledger::in_memory().expect("ledger");
        let mut last = l.totals();
        for i in 0..20u64 {
            let batch: Vec<FinishedJob> = (0..5)
                .map(|k| job(i * 3 + k, 10_000 + i * 30 + k))
                .collect();
            l.apply(&batch, 10_000 + i * 30 + 10, 60).expect("apply");
            let now = l.totals();
            for (k, u) in &last.usage {
                let n = now.usage.get(k).expect("key kept");
                assert!(n.cpu_seconds >= u.cpu_seconds && n.jobs >= u.jobs);
            }
            for (k, c) in &last.outcomes {
                assert!(now.outcomes.get(k).copied().unwrap_or(0) >= *c);
            }
            last = now;
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.redb");
        {
            let db = Database::create(&path).expect("create");
            let tx = db.begin_write().expect("tx");
            tx.open_table(META)
                .expect("meta")
                .insert("schema", SCHEMA + 1)
                .expect("insert");
            tx.commit().expect("commit");
        }
        let err = Ledger::open(&path).expect_err("newer schema");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
