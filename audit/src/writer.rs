//! The writer: one thread owns the open segment; callers queue events and wait for fsync.
//!
//! Group commit: the thread takes every event queued while the previous fsync ran (plus an
//! optional short window), encrypts and chains them into one buffer, writes it with one
//! `write` and makes it durable with one `fdatasync`, then wakes every caller of the batch.
//! A caller's `append` returns only after its record is on disk, so throughput comes from
//! concurrency (many requests share an fsync), not from acknowledging unwritten records.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::format::{
    chain_hash, nonce, open_message, push_frame, segment_cipher, segment_file_name, Commitment,
    Header, Kind, LogId, OpenBody, FRAME_OVERHEAD, HEADER_LEN, MAX_RECORD_LEN, SALT_LEN, TAG_LEN,
};
use crate::keys::{open_private, KeyId, Keyring};
use crate::scan::{crash_tail, first_frame, list_segments, scan_file, Scan};
use crate::time::to_unix_us;

/// Largest serialized event accepted by [`AuditLog::append`].
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Called with each durable checkpoint (see [`Config::on_checkpoint`]).
pub type CheckpointHook = Arc<dyn Fn(&Checkpoint) + Send + Sync>;

/// Writer settings. `Default` is what a gateway should run with.
#[derive(Clone)]
pub struct Config {
    /// N: a signed checkpoint at least every this many records.
    pub checkpoint_every_records: u64,
    /// M: a signed checkpoint at least this often, even when idle (a liveness proof).
    pub checkpoint_interval: Duration,
    /// Whether the writer thread writes the time-based checkpoints by itself. When false the
    /// host calls [`AuditLog::tick`].
    pub background_checkpoints: bool,
    /// A segment is sealed and a new one opened past this size...
    pub segment_max_bytes: u64,
    /// ...or this age (segments are the unit of retention).
    pub segment_max_age: Duration,
    /// How long the writer waits for more events before an fsync once it has one. Zero:
    /// batch only what queued during the previous fsync (lowest latency).
    pub group_commit_window: Duration,
    /// Most events per fsync.
    pub max_batch: usize,
    /// Queued events before `append` blocks (back-pressure).
    pub queue_capacity: usize,
    /// Called on the writer thread after each checkpoint is durable: ship it off the host.
    pub on_checkpoint: Option<CheckpointHook>,
    /// After a failed write or fsync, how long the writer waits before it tries to carry on
    /// (cut the file back to its last durable record, seal it, open a new segment). Until
    /// then, and for as long as that fails, every call fails.
    pub retry_interval: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            checkpoint_every_records: 1000,
            checkpoint_interval: Duration::from_secs(60),
            background_checkpoints: true,
            segment_max_bytes: 64 << 20,
            segment_max_age: Duration::from_secs(24 * 3600),
            group_commit_window: Duration::ZERO,
            max_batch: 4096,
            queue_capacity: 65_536,
            on_checkpoint: None,
            retry_interval: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("checkpoint_every_records", &self.checkpoint_every_records)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("background_checkpoints", &self.background_checkpoints)
            .field("segment_max_bytes", &self.segment_max_bytes)
            .field("segment_max_age", &self.segment_max_age)
            .field("group_commit_window", &self.group_commit_window)
            .field("max_batch", &self.max_batch)
            .field("queue_capacity", &self.queue_capacity)
            .field("retry_interval", &self.retry_interval)
            .finish_non_exhaustive()
    }
}

/// Why an append (or another writer call) did not become durable. The host decides what a
/// failure means; the gateway's default is to refuse the request (fail closed).
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    #[error("audit log write failed: {0}")]
    Io(Arc<std::io::Error>),
    #[error(
        "audit log stopped after an earlier write failure ({0}); it retries every few seconds"
    )]
    Poisoned(Arc<std::io::Error>),
    #[error("audit log is closed")]
    Closed,
    #[error("audit event cannot be serialized: {0}")]
    Serialize(String),
    #[error("audit event is {0} bytes; the limit is {MAX_EVENT_BYTES}")]
    TooLarge(usize),
    #[error("the keyring has no key {0}")]
    NoSuchKey(KeyId),
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// Why a log could not be opened for writing.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: another writer holds this audit log")]
    Locked(PathBuf),
    #[error("{path}: damaged at byte {offset} ({reason}); run `audit verify`, the writer will not continue it")]
    Corrupt {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    #[error("{0}: this log was signed with a different signing key")]
    WrongSigningKey(PathBuf),
    #[error("{dir}: {what}; only a signed retention checkpoint may remove segments (last signed statement: record {seq}). Restore the missing files, or run `audit verify` to see what is left")]
    HistoryMissing {
        dir: PathBuf,
        what: String,
        seq: u64,
    },
    #[error("{path}: {what}: a segment numbered past the end of the log, which no crash leaves; run `audit verify`")]
    SegmentPastEnd { path: PathBuf, what: String },
    #[error("{0}: group or others may write to the audit directory; run `chmod 700` on it")]
    InsecureDir(PathBuf),
    #[error("the keyring does not match the log: {0}")]
    KeyringMismatch(String),
    #[error("the keyring has no active key {0}")]
    NoSuchKey(KeyId),
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// Where a durable record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    pub segment: u64,
    /// The record's time, microseconds since the Unix epoch.
    pub time_us: u64,
}

enum Done {
    Appended(Receipt),
    Checkpoint(Option<Box<Checkpoint>>),
    Rotated(KeyId),
    Removed(Vec<u64>),
    Flushed,
}

/// Where a command's outcome goes: a waiting caller's channel, or a callback run on the
/// writer thread (it must be quick: it delays the next batch).
enum Reply {
    Channel(SyncSender<Result<Done, AppendError>>),
    Callback(Box<dyn FnOnce(Result<Receipt, AppendError>) + Send>),
}

impl Reply {
    fn send(self, out: Result<Done, AppendError>) {
        match self {
            Reply::Channel(tx) => {
                // The caller may have stopped waiting; the outcome is then nobody's.
                let _ = tx.send(out);
            }
            Reply::Callback(f) => f(match out {
                Ok(Done::Appended(r)) => Ok(r),
                Ok(_) => Err(AppendError::Closed),
                Err(e) => Err(e),
            }),
        }
    }
}

enum Cmd {
    Event(Vec<u8>, Reply),
    Flush(Reply),
    Tick(u64, Reply),
    Checkpoint(Reply),
    Rotate(Box<Keyring>, Reply),
    Retention(u64, Reply),
    Close(Reply),
}

/// An event queued by [`AuditLog::submit`]; [`Pending::wait`] returns once it is durable.
#[must_use = "an audit record is durable only once wait() returned Ok"]
pub struct Pending {
    rx: Receiver<Result<Done, AppendError>>,
}

impl Pending {
    /// Blocks until the record is durable (or failed).
    pub fn wait(self) -> Result<Receipt, AppendError> {
        match self.rx.recv() {
            Ok(Ok(Done::Appended(r))) => Ok(r),
            Ok(Ok(_)) | Err(_) => Err(AppendError::Closed),
            Ok(Err(e)) => Err(e),
        }
    }
}

/// A writable audit log. Share it (`Arc<AuditLog>`); every method takes `&self`.
pub struct AuditLog {
    tx: SyncSender<Cmd>,
    digest_key: zeroize::Zeroizing<[u8; 32]>,
    thread: Mutex<Option<JoinHandle<()>>>,
    last_checkpoint: Arc<Mutex<Option<Checkpoint>>>,
    log_id: LogId,
    public_key: VerifyingKey,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("log_id", &self.log_id)
            .finish_non_exhaustive()
    }
}

struct Segment {
    number: u64,
    file: File,
    bytes: u64,
    opened: Instant,
    key_id: KeyId,
    cipher: Option<Aes256Gcm>,
}

/// The writer's state as of the last successful fsync: what a failed batch is rolled back to.
#[derive(Clone, Copy)]
struct Durable {
    bytes: u64,
    next_seq: u64,
    prev_hash: [u8; 32],
    history: Commitment,
    sealed: bool,
}

struct Writer {
    dir: PathBuf,
    config: Config,
    keyring: Keyring,
    signing: SigningKey,
    log_id: LogId,
    /// Where the retained log starts and the last checkpoint: what the next signed record
    /// commits to.
    history: Commitment,
    durable: Durable,
    next_retry: Instant,
    seg: Option<Segment>,
    next_seq: u64,
    prev_hash: [u8; 32],
    last_time_us: u64,
    records_since_checkpoint: u64,
    last_checkpoint_us: u64,
    last_checkpoint_at: Instant,
    buf: Vec<u8>,
    new_checkpoints: Vec<Checkpoint>,
    poisoned: Option<Arc<std::io::Error>>,
    closed: bool,
    last_checkpoint: Arc<Mutex<Option<Checkpoint>>>,
    _lock: File,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl AuditLog {
    /// Opens (or creates) the log in `dir` for writing.
    ///
    /// Crash recovery happens here: a torn tail of the newest segment (a record whose write
    /// was cut by a crash) is copied aside to `<segment>.torn-<time>` and cut off, the segment
    /// is sealed if it was not, and writing continues in a new segment with a fresh key
    /// salt. A segment damaged in the middle is never cut: opening fails with `Corrupt`.
    pub fn open(
        dir: &Path,
        config: Config,
        keyring: Keyring,
        signing: SigningKey,
    ) -> Result<AuditLog, OpenError> {
        create_private_dir(dir).map_err(io_err(dir))?;
        check_dir_mode(dir)?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| OpenError::Locked(dir.to_owned()))?;
        if keyring.key(keyring.active_id()).is_none() {
            return Err(OpenError::NoSuchKey(keyring.active_id()));
        }

        let last_checkpoint = Arc::new(Mutex::new(None));
        let mut w = Writer {
            dir: dir.to_owned(),
            config,
            keyring,
            signing,
            log_id: LogId([0; 16]),
            history: Commitment::genesis(),
            durable: Durable {
                bytes: 0,
                next_seq: 0,
                prev_hash: [0; 32],
                history: Commitment::genesis(),
                sealed: true,
            },
            next_retry: Instant::now(),
            seg: None,
            next_seq: 0,
            prev_hash: [0; 32],
            last_time_us: 0,
            records_since_checkpoint: 0,
            last_checkpoint_us: 0,
            last_checkpoint_at: Instant::now(),
            buf: Vec::with_capacity(1 << 20),
            new_checkpoints: Vec::new(),
            poisoned: None,
            closed: false,
            last_checkpoint: Arc::clone(&last_checkpoint),
            _lock: lock,
        };
        let next_segment = w.recover()?;
        w.last_checkpoint_us = w.last_time_us;
        w.open_segment(next_segment).map_err(|e| OpenError::Io {
            path: dir.join(segment_file_name(next_segment)),
            source: std::io::Error::other(e.to_string()),
        })?;

        let log_id = w.log_id;
        let public_key = w.signing.verifying_key();
        let digest_key = crate::format::digest_key(w.signing.as_bytes(), log_id);
        let (tx, rx) = mpsc::sync_channel(w.config.queue_capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || w.run(rx))
            .map_err(io_err(dir))?;
        Ok(AuditLog {
            tx,
            digest_key,
            thread: Mutex::new(Some(thread)),
            last_checkpoint,
            log_id,
            public_key,
        })
    }

    /// This log's id.
    pub fn log_id(&self) -> LogId {
        self.log_id
    }

    /// The public key that verifies this log's checkpoints.
    pub fn public_key(&self) -> VerifyingKey {
        self.public_key
    }

    /// A digest of `data` that cannot be reversed by guessing without this log's secret:
    /// HMAC-SHA256 under a key derived from the signing key and the log id, first 16 bytes,
    /// hex. For facts a record must not hold in clear (federation selectors may name users)
    /// but that the site, holding the signing key, can still match against a candidate.
    pub fn keyed_digest(&self, data: &[u8]) -> String {
        crate::format::keyed_digest(&self.digest_key, data)
    }

    /// Appends one event and returns once it is durable (written and fsynced).
    pub fn append<T: Serialize + ?Sized>(&self, event: &T) -> Result<Receipt, AppendError> {
        self.submit(event)?.wait()
    }

    /// Queues one event without waiting; [`Pending::wait`] returns once it is durable. Lets a
    /// caller overlap its own work with the fsync. Records are durable in submission order.
    pub fn submit<T: Serialize + ?Sized>(&self, event: &T) -> Result<Pending, AppendError> {
        let bytes = serde_json::to_vec(event).map_err(|e| AppendError::Serialize(e.to_string()))?;
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(AppendError::TooLarge(bytes.len()));
        }
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send(Cmd::Event(bytes, Reply::Channel(reply)))
            .map_err(|_| AppendError::Closed)?;
        Ok(Pending { rx })
    }

    /// Queues one event; `on_durable` runs on the writer thread once the record is durable
    /// (or failed). For hosts that wait without blocking a thread (an async runtime hands
    /// the result to a oneshot channel). Keep the callback short.
    pub fn submit_with<T: Serialize + ?Sized>(
        &self,
        event: &T,
        on_durable: impl FnOnce(Result<Receipt, AppendError>) + Send + 'static,
    ) -> Result<(), AppendError> {
        let bytes = serde_json::to_vec(event).map_err(|e| AppendError::Serialize(e.to_string()))?;
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(AppendError::TooLarge(bytes.len()));
        }
        self.tx
            .send(Cmd::Event(bytes, Reply::Callback(Box::new(on_durable))))
            .map_err(|_| AppendError::Closed)
    }

    fn call(&self, make: impl FnOnce(Reply) -> Cmd) -> Result<Done, AppendError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send(make(Reply::Channel(reply)))
            .map_err(|_| AppendError::Closed)?;
        rx.recv().map_err(|_| AppendError::Closed)?
    }

    /// Returns once everything submitted before it is durable.
    pub fn flush(&self) -> Result<(), AppendError> {
        self.call(Cmd::Flush).map(|_| ())
    }

    /// Writes a time-based checkpoint if `checkpoint_interval` has passed since the last one
    /// as of `now`, idle or not. For hosts that drive time themselves (and tests).
    pub fn tick(&self, now: SystemTime) -> Result<Option<Checkpoint>, AppendError> {
        match self.call(|r| Cmd::Tick(to_unix_us(now), r))? {
            Done::Checkpoint(cp) => Ok(cp.map(|c| *c)),
            _ => Err(AppendError::Closed),
        }
    }

    /// Writes a signed checkpoint now and returns it once durable.
    pub fn checkpoint(&self) -> Result<Checkpoint, AppendError> {
        match self.call(Cmd::Checkpoint)? {
            Done::Checkpoint(Some(cp)) => Ok(*cp),
            _ => Err(AppendError::Closed),
        }
    }

    /// Seals the current segment and continues in a new one encrypted under `keyring`'s
    /// active key. Keep the old keys in the ring you give auditors: old segments still need
    /// them. See [`crate::rotate_key`] for the file side.
    pub fn rotate_key(&self, keyring: Keyring) -> Result<KeyId, AppendError> {
        if keyring.key(keyring.active_id()).is_none() {
            return Err(AppendError::NoSuchKey(keyring.active_id()));
        }
        match self.call(|r| Cmd::Rotate(Box::new(keyring), r))? {
            Done::Rotated(id) => Ok(id),
            _ => Err(AppendError::Closed),
        }
    }

    /// Removes whole sealed segments whose every record is older than `older_than`, oldest
    /// first, never the current one. Before deleting it writes a signed checkpoint naming the
    /// new oldest segment, so the remaining chain verifies from that segment's signed open
    /// record and a deletion beyond the policy is detected. Returns the removed segments.
    pub fn apply_retention(&self, older_than: SystemTime) -> Result<Vec<u64>, AppendError> {
        match self.call(|r| Cmd::Retention(to_unix_us(older_than), r))? {
            Done::Removed(v) => Ok(v),
            _ => Err(AppendError::Closed),
        }
    }

    /// The newest durable checkpoint written by this writer.
    pub fn last_checkpoint(&self) -> Option<Checkpoint> {
        self.last_checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Seals the current segment and stops the writer. Later calls fail with `Closed`.
    /// Dropping the log does the same, ignoring errors.
    pub fn close(&self) -> Result<(), AppendError> {
        let result = self.call(Cmd::Close).map(|_| ());
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        result
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

impl Writer {
    /// Reads the newest segment, repairs a torn tail, seals it; returns the next segment
    /// number. A new log gets a random id. Refuses to continue a log whose history lost
    /// segments that no signed retention removed, one with bytes no crash leaves, and one
    /// the keyring cannot read.
    fn recover(&mut self) -> Result<u64, OpenError> {
        let dir = self.dir.clone();
        let mut segments = list_segments(&dir).map_err(io_err(&dir))?;
        loop {
            let Some((number, path)) = segments.last().cloned() else {
                self.log_id = LogId::random().map_err(|e| OpenError::Random(e.to_string()))?;
                self.history = Commitment::genesis();
                return Ok(1);
            };
            let scan = scan_file(&path).map_err(io_err(&path))?;
            if let Some(stop) = &scan.stop {
                if stop.frames_after || !crash_tail(&scan.data, stop.offset) {
                    return Err(OpenError::Corrupt {
                        path,
                        offset: stop.offset,
                        reason: if stop.frames_after {
                            format!("{:?} before well-formed records", stop.fault)
                        } else {
                            "bytes after the last record that a crash cannot leave".to_owned()
                        },
                    });
                }
            }
            let Some(first) = scan.frames.first() else {
                // No complete record: a crash while this segment was being opened. The
                // writer opens segment n+1 only after sealing segment n, and a log starts at
                // segment 1; any other number was not made by a crash.
                let before = segments.len().checked_sub(2).map(|i| segments[i].0);
                let expected = before.map_or(1, |b| b.saturating_add(1));
                if number != expected {
                    return Err(OpenError::SegmentPastEnd {
                        path,
                        what: format!("segment {number} holds no record and follows {before:?}"),
                    });
                }
                preserve_torn(&path, &scan.data).map_err(io_err(&path))?;
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                sync_dir(&dir).map_err(io_err(&dir))?;
                segments.pop();
                continue;
            };
            let open = (first.header.kind == Kind::Open)
                .then(|| OpenBody::parse(scan.body(first)))
                .flatten()
                .ok_or_else(|| OpenError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    reason: "segment does not start with an open record".to_owned(),
                })?;
            if open.public_key != self.signing.verifying_key().to_bytes() {
                return Err(OpenError::WrongSigningKey(path));
            }
            self.log_id = first.header.log_id;
            self.history = latest_history(&scan, open.commitment);
            self.check_history(&segments, number)?;
            self.check_keyring(&segments)?;
            let mut file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            if let Some(stop) = &scan.stop {
                preserve_torn(&path, &scan.data[stop.offset..]).map_err(io_err(&path))?;
                file.set_len(stop.offset as u64).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
            }
            let Some(last) = scan.frames.last() else {
                unreachable!("a first frame exists");
            };
            self.next_seq = last.header.seq.saturating_add(1);
            self.prev_hash = last.hash;
            self.last_time_us = last.header.time_us;
            let end = last.end as u64;
            let sealed = last.header.kind == Kind::Seal;
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(end))
                .map_err(io_err(&path))?;
            self.seg = Some(Segment {
                number,
                file,
                bytes: end,
                opened: Instant::now(),
                key_id: first.header.key_id,
                cipher: None,
            });
            self.mark_durable(sealed);
            if !sealed {
                let t = self.now_us();
                self.push_checkpoint(Kind::Seal, t);
                self.commit().map_err(|e| OpenError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            }
            self.seg = None;
            return Ok(number.saturating_add(1));
        }
    }

    /// The directory must hold every segment from the signed start of the log to the newest,
    /// and the first of them must be the one the signatures name. Segments before the signed
    /// start are left over from a retention cut short by a crash (the checkpoint is written
    /// before the files are removed) and are harmless.
    fn check_history(&self, segments: &[(u64, PathBuf)], newest: u64) -> Result<(), OpenError> {
        let h = self.history;
        let missing = |what: String| OpenError::HistoryMissing {
            dir: self.dir.clone(),
            what,
            seq: h.prev_checkpoint_seq.min(h.oldest_seq),
        };
        let present: std::collections::BTreeSet<u64> = segments.iter().map(|(n, _)| *n).collect();
        let gone: Vec<u64> = (h.oldest_segment..=newest)
            .filter(|n| !present.contains(n))
            .take(1000)
            .collect();
        if let (Some(a), Some(b)) = (gone.first(), gone.last()) {
            return Err(missing(format!(
                "segment(s) {a}..={b} are gone ({} file(s)); the log's signed start is segment {}",
                gone.len(),
                h.oldest_segment
            )));
        }
        let path = self.dir.join(segment_file_name(h.oldest_segment));
        let head = first_frame(&path).map_err(io_err(&path))?;
        match head {
            Some((hd, _))
                if hd.log_id == self.log_id
                    && hd.seq == h.oldest_seq
                    && hd.prev_hash == h.start_hash =>
            {
                Ok(())
            }
            _ => Err(missing(format!(
                "segment {} is not the one the log's signatures start from (record {})",
                h.oldest_segment, h.oldest_seq
            ))),
        }
    }

    /// The keyring must hold the key of the newest segment that has events, that key must
    /// decrypt its last event, and the active key must not be older: a keyring regenerated
    /// after a loss reuses key id 1 and is refused here rather than mixed into the log.
    fn check_keyring(&self, segments: &[(u64, PathBuf)]) -> Result<(), OpenError> {
        for (number, path) in segments.iter().rev().take(4) {
            let scan = scan_file(path).map_err(io_err(path))?;
            let Some(open) = scan.frames.first() else {
                continue;
            };
            let key_id = open.header.key_id;
            if self.keyring.active_id() < key_id {
                return Err(OpenError::KeyringMismatch(format!(
                    "its active key {} is older than key {key_id}, which segment {number} uses; key ids never repeat",
                    self.keyring.active_id()
                )));
            }
            let Some(event) = scan
                .frames
                .iter()
                .rev()
                .find(|f| f.header.kind == Kind::Event)
            else {
                continue;
            };
            let Some(master) = self.keyring.key(key_id) else {
                return Err(OpenError::KeyringMismatch(format!(
                    "it has no key {key_id}, which encrypted segment {number}"
                )));
            };
            let salt = scan.body(open).get(..SALT_LEN).unwrap_or_default();
            let cipher = segment_cipher(master, salt, self.log_id, *number, key_id);
            let ok = cipher
                .decrypt(
                    Nonce::from_slice(&nonce(event.header.seq)),
                    Payload {
                        msg: scan.body(event),
                        aad: scan.header_bytes(event),
                    },
                )
                .is_ok();
            if !ok {
                return Err(OpenError::KeyringMismatch(format!(
                    "its key {key_id} does not decrypt segment {number}"
                )));
            }
            return Ok(());
        }
        Ok(())
    }

    /// Records the current state as durable (after a successful fsync).
    fn mark_durable(&mut self, sealed: bool) {
        self.durable = Durable {
            bytes: self.seg.as_ref().map_or(0, |s| s.bytes),
            next_seq: self.next_seq,
            prev_hash: self.prev_hash,
            history: self.history,
            sealed,
        };
    }

    /// After a failed write or fsync: cut the segment back to its last durable record (a
    /// failed batch's callers were told it failed), make that durable, seal the segment and
    /// continue in a new one under a new segment key. Fails, and stays poisoned, while the
    /// disk still refuses.
    fn heal(&mut self) -> Result<(), AppendError> {
        let io = |e: std::io::Error| AppendError::Io(Arc::new(e));
        let d = self.durable;
        let Some(seg) = self.seg.as_mut() else {
            return Err(AppendError::Closed);
        };
        use std::io::Seek;
        seg.file.set_len(d.bytes).map_err(io)?;
        seg.file
            .seek(std::io::SeekFrom::Start(d.bytes))
            .map_err(io)?;
        seg.file.sync_all().map_err(io)?;
        seg.bytes = d.bytes;
        let next = seg.number.saturating_add(1);
        // A half-made next segment (the failure came while opening it) held no event.
        let half = self.dir.join(segment_file_name(next));
        if half.exists() {
            std::fs::remove_file(&half).map_err(io)?;
            sync_dir(&self.dir).map_err(io)?;
        }
        self.next_seq = d.next_seq;
        self.prev_hash = d.prev_hash;
        self.history = d.history;
        self.buf.clear();
        self.new_checkpoints.clear();
        self.poisoned = None;
        if d.sealed {
            self.open_segment(next)
        } else {
            self.seal_and_roll()
        }
    }

    fn now_us(&self) -> u64 {
        to_unix_us(SystemTime::now()).max(self.last_time_us)
    }

    fn header(&self, kind: Kind, time_us: u64) -> Header {
        let (segment, key_id) = self.seg.as_ref().map_or((0, 0), |s| (s.number, s.key_id));
        Header {
            kind,
            log_id: self.log_id,
            segment,
            seq: self.next_seq,
            time_us,
            key_id,
            prev_hash: self.prev_hash,
        }
    }

    fn push_record(&mut self, header: &Header, body: &[u8]) {
        let hb = header.encode();
        push_frame(&mut self.buf, &hb, body);
        self.prev_hash = chain_hash(&hb, body);
        self.next_seq = header.seq.saturating_add(1);
        self.last_time_us = header.time_us;
    }

    fn push_event(&mut self, plaintext: &[u8]) -> Result<Receipt, AppendError> {
        let header = self.header(Kind::Event, self.now_us());
        let hb = header.encode();
        let Some(cipher) = self.seg.as_ref().and_then(|s| s.cipher.as_ref()) else {
            return Err(AppendError::Closed);
        };
        if plaintext.len() + TAG_LEN + HEADER_LEN > MAX_RECORD_LEN {
            return Err(AppendError::TooLarge(plaintext.len()));
        }
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce(header.seq)),
                Payload {
                    msg: plaintext,
                    aad: &hb,
                },
            )
            .map_err(|_| AppendError::TooLarge(plaintext.len()))?;
        self.push_record(&header, &ciphertext);
        self.records_since_checkpoint += 1;
        Ok(Receipt {
            seq: header.seq,
            segment: header.segment,
            time_us: header.time_us,
        })
    }

    fn push_checkpoint(&mut self, kind: Kind, time_us: u64) -> Checkpoint {
        let header = self.header(kind, time_us.max(self.last_time_us));
        let mut cp = Checkpoint::unsigned(&header, &self.history);
        cp.signature = self.signing.sign(&cp.message()).to_bytes();
        self.push_record(&header, &cp.body());
        self.history.prev_checkpoint_seq = cp.seq;
        self.history.prev_checkpoint_hash = self.prev_hash;
        self.records_since_checkpoint = 0;
        self.last_checkpoint_us = header.time_us;
        self.last_checkpoint_at = Instant::now();
        self.new_checkpoints.push(cp.clone());
        cp
    }

    /// Writes the buffer and fsyncs it. After any failure the writer is poisoned: a partial
    /// write may sit at the end of the file, so nothing more is appended in this process.
    fn commit(&mut self) -> Result<(), AppendError> {
        if let Some(e) = &self.poisoned {
            return Err(AppendError::Poisoned(Arc::clone(e)));
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(seg) = self.seg.as_mut() else {
            return Err(AppendError::Closed);
        };
        let result = seg
            .file
            .write_all(&self.buf)
            .and_then(|()| seg.file.sync_data());
        if let Err(e) = result {
            let e = Arc::new(e);
            self.poisoned = Some(Arc::clone(&e));
            self.buf.clear();
            self.new_checkpoints.clear();
            return Err(AppendError::Io(e));
        }
        seg.bytes += self.buf.len() as u64;
        self.buf.clear();
        let sealed = self.new_checkpoints.last().is_some_and(|c| c.sealed)
            && self.new_checkpoints.last().map(|c| c.seq.saturating_add(1)) == Some(self.next_seq);
        self.mark_durable(sealed);
        if let Some(cp) = self.new_checkpoints.last() {
            *self
                .last_checkpoint
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(cp.clone());
        }
        if let Some(hook) = &self.config.on_checkpoint {
            for cp in &self.new_checkpoints {
                hook(cp);
            }
        }
        self.new_checkpoints.clear();
        Ok(())
    }

    /// Creates segment `number` and makes its signed open record durable (file and
    /// directory entry) before any event is encrypted under its key.
    fn open_segment(&mut self, number: u64) -> Result<(), AppendError> {
        let io = |e: std::io::Error| AppendError::Io(Arc::new(e));
        let path = self.dir.join(segment_file_name(number));
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| AppendError::Random(e.to_string()))?;
        let key_id = self.keyring.active_id();
        let master = *self
            .keyring
            .key(key_id)
            .ok_or(AppendError::NoSuchKey(key_id))?;
        let master = zeroize::Zeroizing::new(master);
        let mut file = open_private(&path, true).map_err(io)?;
        let header = Header {
            kind: Kind::Open,
            log_id: self.log_id,
            segment: number,
            seq: self.next_seq,
            time_us: self.now_us(),
            key_id,
            prev_hash: self.prev_hash,
        };
        let hb = header.encode();
        let pk = self.signing.verifying_key().to_bytes();
        let sig = self
            .signing
            .sign(&open_message(&hb, &salt, &pk, &self.history))
            .to_bytes();
        let mut body = Vec::with_capacity(crate::format::OPEN_BODY_LEN);
        body.extend_from_slice(&salt);
        body.extend_from_slice(&pk);
        body.extend_from_slice(&self.history.encode());
        body.extend_from_slice(&sig);
        let mut frame = Vec::with_capacity(FRAME_OVERHEAD + HEADER_LEN + body.len());
        push_frame(&mut frame, &hb, &body);
        file.write_all(&frame)
            .and_then(|()| file.sync_all())
            .and_then(|()| sync_dir(&self.dir))
            .map_err(|e| {
                let e = Arc::new(e);
                self.poisoned = Some(Arc::clone(&e));
                AppendError::Io(e)
            })?;
        self.prev_hash = chain_hash(&hb, &body);
        self.next_seq = header.seq.saturating_add(1);
        self.last_time_us = header.time_us;
        self.seg = Some(Segment {
            number,
            file,
            bytes: frame.len() as u64,
            opened: Instant::now(),
            key_id,
            cipher: Some(segment_cipher(&master, &salt, self.log_id, number, key_id)),
        });
        self.mark_durable(false);
        Ok(())
    }

    fn seal_and_roll(&mut self) -> Result<(), AppendError> {
        let t = self.now_us();
        self.push_checkpoint(Kind::Seal, t);
        self.commit()?;
        let next = self.seg.as_ref().map_or(1, |s| s.number.saturating_add(1));
        self.open_segment(next)
    }

    fn retention(&mut self, cutoff_us: u64) -> Result<Vec<u64>, AppendError> {
        let io = |e: std::io::Error| AppendError::Io(Arc::new(e));
        let current = self.seg.as_ref().map_or(0, |s| s.number);
        let mut expired = Vec::new();
        for (number, path) in list_segments(&self.dir).map_err(io)? {
            if number >= current {
                break;
            }
            let scan = scan_file(&path).map_err(io)?;
            match scan.frames.last() {
                Some(last)
                    if last.header.kind == Kind::Seal
                        && scan.stop.is_none()
                        && last.header.time_us < cutoff_us =>
                {
                    expired.push((number, path));
                }
                _ => break,
            }
        }
        let Some((last_expired, _)) = expired.last() else {
            return Ok(Vec::new());
        };
        // Say it (signed) before doing it: a crash in between leaves extra old segments,
        // which verify accepts; never a gap the log did not announce.
        let oldest = last_expired.saturating_add(1);
        let path = self.dir.join(segment_file_name(oldest));
        let Some((head, _)) = first_frame(&path).map_err(io)? else {
            return Err(io(std::io::Error::other(format!(
                "{}: no open record to start the retained log from",
                path.display()
            ))));
        };
        self.history.oldest_segment = oldest;
        self.history.oldest_seq = head.seq;
        self.history.start_hash = head.prev_hash;
        let t = self.now_us();
        self.push_checkpoint(Kind::Checkpoint, t);
        self.commit()?;
        for (_, path) in &expired {
            std::fs::remove_file(path).map_err(io)?;
        }
        sync_dir(&self.dir).map_err(io)?;
        Ok(expired.into_iter().map(|(n, _)| n).collect())
    }

    fn deadline(&self) -> Option<Instant> {
        let age = self
            .seg
            .as_ref()
            .map(|s| s.opened + self.config.segment_max_age);
        let cp = self
            .config
            .background_checkpoints
            .then(|| self.last_checkpoint_at + self.config.checkpoint_interval);
        match (age, cp) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }

    fn run(mut self, rx: Receiver<Cmd>) {
        let max_batch = self.config.max_batch.max(1);
        loop {
            let first = match self.deadline() {
                Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => break,
                },
            };
            let mut batch = Vec::new();
            let mut batch_bytes = 0;
            if let Some(c) = first {
                batch.push(c);
                let window_end = Instant::now() + self.config.group_commit_window;
                while batch.len() < max_batch && batch_bytes < MAX_BATCH_BYTES {
                    let next = match rx.try_recv() {
                        Ok(c) => Some(c),
                        Err(TryRecvError::Disconnected) => None,
                        Err(TryRecvError::Empty) => {
                            let left = window_end.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                None
                            } else {
                                rx.recv_timeout(left).ok()
                            }
                        }
                    };
                    let Some(c) = next else { break };
                    if let Cmd::Event(b, _) = &c {
                        batch_bytes += b.len();
                    }
                    batch.push(c);
                }
            }
            self.process(batch);
            if self.closed {
                return;
            }
        }
        // Every handle is gone without close(): seal anyway.
        let (tx, _rx) = mpsc::sync_channel(1);
        self.process(vec![Cmd::Close(Reply::Channel(tx))]);
    }

    fn settle(&mut self, pending: &mut Vec<(Reply, Result<Done, AppendError>)>) {
        let result = self.commit();
        for (reply, done) in pending.drain(..) {
            let out = match &result {
                Err(e) => Err(e.clone()),
                Ok(()) => done,
            };
            reply.send(out);
        }
    }

    fn process(&mut self, batch: Vec<Cmd>) {
        let mut pending: Vec<(Reply, Result<Done, AppendError>)> = Vec::new();
        if self.poisoned.is_some() && !self.closed && Instant::now() >= self.next_retry {
            self.next_retry = Instant::now() + self.config.retry_interval;
            if let Err(e) = self.heal() {
                let e = match e {
                    AppendError::Io(e) | AppendError::Poisoned(e) => e,
                    other => Arc::new(std::io::Error::other(other.to_string())),
                };
                self.poisoned = Some(e);
            }
        }
        for cmd in batch {
            if self.closed {
                let reply = match cmd {
                    Cmd::Event(_, r)
                    | Cmd::Flush(r)
                    | Cmd::Tick(_, r)
                    | Cmd::Checkpoint(r)
                    | Cmd::Rotate(_, r)
                    | Cmd::Retention(_, r)
                    | Cmd::Close(r) => r,
                };
                reply.send(Err(AppendError::Closed));
                continue;
            }
            match cmd {
                Cmd::Event(bytes, reply) => {
                    let done = self.push_event(&bytes).map(Done::Appended);
                    pending.push((reply, done));
                    if self.records_since_checkpoint >= self.config.checkpoint_every_records {
                        let t = self.now_us();
                        self.push_checkpoint(Kind::Checkpoint, t);
                    }
                }
                Cmd::Flush(reply) => pending.push((reply, Ok(Done::Flushed))),
                Cmd::Tick(now_us, reply) => {
                    let interval = u64::try_from(self.config.checkpoint_interval.as_micros())
                        .unwrap_or(u64::MAX);
                    let cp = (now_us.saturating_sub(self.last_checkpoint_us) >= interval)
                        .then(|| self.push_checkpoint(Kind::Checkpoint, now_us));
                    pending.push((reply, Ok(Done::Checkpoint(cp.map(Box::new)))));
                }
                Cmd::Checkpoint(reply) => {
                    let t = self.now_us();
                    let cp = self.push_checkpoint(Kind::Checkpoint, t);
                    pending.push((reply, Ok(Done::Checkpoint(Some(Box::new(cp))))));
                }
                Cmd::Rotate(keyring, reply) => {
                    self.settle(&mut pending);
                    self.keyring = *keyring;
                    let id = self.keyring.active_id();
                    reply.send(self.seal_and_roll().map(|()| Done::Rotated(id)));
                }
                Cmd::Retention(cutoff, reply) => {
                    self.settle(&mut pending);
                    reply.send(self.retention(cutoff).map(Done::Removed));
                }
                Cmd::Close(reply) => {
                    let t = self.now_us();
                    self.push_checkpoint(Kind::Seal, t);
                    self.settle(&mut pending);
                    let result = self.commit().map(|()| Done::Flushed);
                    self.closed = true;
                    self.seg = None;
                    reply.send(result);
                }
            }
        }
        if !self.closed {
            let now = Instant::now();
            if self.config.background_checkpoints
                && now >= self.last_checkpoint_at + self.config.checkpoint_interval
            {
                let t = self.now_us();
                self.push_checkpoint(Kind::Checkpoint, t);
            }
            self.settle(&mut pending);
            let too_big = self.seg.as_ref().is_some_and(|s| {
                s.bytes >= self.config.segment_max_bytes
                    || now >= s.opened + self.config.segment_max_age
            });
            if too_big && self.poisoned.is_none() {
                // A failure here poisons the writer; the next append reports it.
                let _ = self.seal_and_roll();
            }
        }
    }
}

/// The newest statement a segment's signed records make about the history before them: the
/// last checkpoint's (naming that checkpoint as the previous one), else the open record's.
fn latest_history(scan: &Scan, open: Commitment) -> Commitment {
    let mut h = open;
    for f in &scan.frames {
        if let Some(cp) = Checkpoint::from_record(&f.header, scan.body(f)) {
            h = cp.commitment();
            h.prev_checkpoint_seq = cp.seq;
            h.prev_checkpoint_hash = f.hash;
        }
    }
    h
}

/// A log directory others can write to lets them swap files under the writer: refused.
fn check_dir_mode(dir: &Path) -> Result<(), OpenError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(io_err(dir))?
            .permissions()
            .mode();
        if mode & 0o022 != 0 {
            return Err(OpenError::InsecureDir(dir.to_owned()));
        }
    }
    Ok(())
}

/// Keeps the bytes a crash recovery cuts off, for forensics: `<segment>.torn-<unix µs>`.
fn preserve_torn(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".torn-{}", to_unix_us(SystemTime::now())));
    let aside = PathBuf::from(name);
    let mut f = open_private(&aside, false)?;
    f.write_all(bytes)?;
    f.sync_all()
}
