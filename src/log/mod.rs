//! The storage engine: one partition's append-only, segmented, checksummed log.
//!
//! [`Log`] is usable on its own (a durable single-partition log, like the
//! `commitlog` crate) and is what every [`Partition`](crate::Partition)
//! stands on. See `ARCHITECTURE.md` for the write, read and recovery paths.

mod checkpoint;
mod clock;
mod compact;
mod compressed;
pub(crate) mod consumed;
#[cfg(feature = "async")]
mod durable;
pub(crate) mod flusher;
mod group_commit;
pub(crate) mod index;
pub(crate) mod mmap;
mod notify;
mod read;
pub(crate) use read::Cursor;
mod recovery;
mod retention;
pub(crate) mod segment;
pub(crate) mod thread;
mod tick;
pub(crate) mod txn;
mod write;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::{CheckpointPolicy, LogConfig};
use crate::error::{Error, Result};
use crate::format::batch::Encode;
use crate::record::{BorrowedRecord, Record};
use consumed::{ConsumedRecord, RecordView};
use index::ActiveIndexFiles;
use mmap::MapWriter;
use notify::WaitList;
pub(crate) use notify::Waiter;
use segment::Segment;

pub(crate) use compact::cleaned_upto_of;
pub use compact::CompactionReport;
pub use recovery::RecoveryReport;
pub(crate) use recovery::{holds_records, live_checkpoint_of_this_boot, CHECKPOINT_FILE};

/// A durable, segmented, checksummed log of records: one partition.
///
/// Cheap to clone (an `Arc` inside); all methods take `&self` and may be
/// called from many threads.
///
/// ```
/// use logbus::log::Log;
/// use logbus::{LogConfig, Record};
/// # fn main() -> logbus::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let log = Log::open(dir.path(), LogConfig::default())?;
/// let first = log.append(&[Record::new("a"), Record::new("b")])?;
/// assert_eq!(first.base_offset, 0);
/// let records = log.read(0, 10)?;
/// assert_eq!(records[1].value(), b"b");
/// log.close()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Log {
    inner: Arc<LogInner>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.inner.dir)
            .field("start_offset", &self.start_offset())
            .field("end_offset", &self.end_offset())
            .finish()
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first record appended.
    pub base_offset: u64,
    /// Number of records appended.
    pub count: usize,
    /// The log's clock at the append, ms since the epoch: the timestamp of
    /// records sent without one, and of every record under log-append time.
    pub append_time: i64,
}

/// The timestamp a record is stored with: the log's clock `now` under
/// log-append time (`append_time`) or when the sender gave none (`sent`),
/// else the sender's create time.
#[inline]
pub(crate) fn record_timestamp(append_time: bool, sent: Option<i64>, now: i64) -> i64 {
    if append_time {
        now
    } else {
        sent.unwrap_or(now)
    }
}

pub(crate) struct LogInner {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// `retention_bytes` / `retention_ms`, as changed since the open.
    retention: retention::Limits,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: u32,
    /// The append path: one writer at a time.
    writer: Mutex<Writer>,
    /// Readers' view of the segments, oldest first; replaced on roll/retention/truncate.
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    /// Offset after the last published record.
    next_offset: AtomicU64,
    /// First offset still stored.
    start_offset: AtomicU64,
    /// Incremented by every truncation (invalidates read cursors).
    truncations: AtomicU64,
    /// Open transactions here: the last stable offset.
    txns: txn::OpenTxns,
    sync: Mutex<group_commit::SyncState>,
    sync_done: Condvar,
    checkpoint: Mutex<checkpoint::CheckpointState>,
    closed: AtomicBool,
    /// Set when an fsync failed: writes are refused until reopen.
    poisoned: AtomicBool,
    /// What the last open found and repaired.
    pub(crate) recovery: recovery::RecoveryReport,
    /// Metric handles of the append, read and fsync paths.
    pub(crate) metrics: crate::obs::LogMetrics,
    /// Compaction passes so far (`compact.state`).
    compaction: Mutex<crate::format::compact_state::CompactState>,
    /// Held for a whole compaction pass: one at a time.
    compacting: Mutex<()>,
    /// Consumers blocked waiting for records.
    pub(crate) waiters: WaitList,
    /// The broker's background thread, which extends the active segment
    /// ahead of the writer (a standalone `Log` grows inline only).
    pub(crate) background: std::sync::OnceLock<PreallocSender>,
    /// The background thread of a standalone `Log` (a broker's logs share the broker's).
    pub(crate) own_flusher: Mutex<Option<flusher::Flusher>>,
}

/// Requests to extend an active segment: its growth handle and the file length wanted.
pub(crate) type PreallocSender = crossbeam_channel::Sender<(Arc<mmap::Growth>, usize)>;

struct Writer {
    active: Arc<Segment>,
    map: Option<MapWriter>,
    index_files: Option<ActiveIndexFiles>,
    next_offset: u64,
    /// Files whose data has not been fsynced yet, with their paths: sealed
    /// segments, and `recovery.ckpt` once `unmark_clean` rewrote it.
    unsynced: Vec<(Arc<File>, std::path::PathBuf)>,
    /// The clean checkpoint a clean open trusted, still on disk as it was:
    /// the first append or truncation rewrites it as not clean first
    /// (`Writer::unmark_clean`); while it is there, a close has nothing to write.
    clean_on_disk: Option<checkpoint::CleanMark>,
    /// Files were created or deleted since the last directory fsync.
    dir_dirty: bool,
    /// Timestamp of the active segment's first record (for `segment_ms`).
    first_ts: Option<i64>,
    last_retention: Instant,
    /// Scratch: body lengths of the batch being encoded.
    body_lens: Vec<u32>,
    /// Scratch of compressed appends.
    compress: compressed::Scratch,
    /// Mirror of the active index: the next batch at or past this position,
    /// or with a timestamp above `idx_max_ts`, updates it. Other batches skip
    /// the index lock entirely.
    idx_next_pos: u32,
    idx_max_ts: i64,
    /// Byte position of the active segment's last batch, when this process
    /// wrote it (what a live checkpoint records).
    last_batch: Option<u64>,
    /// The live checkpoint file (`None` without a kernel boot id). Kept under
    /// the writer lock so a truncation can invalidate it before cutting.
    live: Option<checkpoint::LiveFile>,
    /// Bytes appended since the last live checkpoint (see
    /// `checkpoint::LIVE_CHECKPOINT_BYTES`).
    live_pending: u64,
    /// Records and bytes appended since the metrics last got them.
    appends: crate::obs::AppendTally,
}

impl Writer {
    /// Refreshes the index mirror from the active segment's index.
    fn sync_index_mirror(&mut self) {
        let (pos, ts) = self
            .active
            .index
            .read()
            .as_ref()
            .map_or((index::INDEX_INTERVAL, i64::MIN), |ix| (ix.next_entry_pos(), ix.max_ts));
        self.idx_next_pos = pos;
        self.idx_max_ts = ts;
    }
}

impl Writer {
    /// The active segment's growth handle and the length to extend it to,
    /// when its allocated room ahead runs low (once per request; see `Growth`).
    fn growth_request(&mut self) -> Option<(Arc<mmap::Growth>, usize)> {
        self.map.as_mut().and_then(MapWriter::prealloc_request)
    }
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering after an unclean shutdown.
    ///
    /// A standalone log runs its own background thread (as a broker does for
    /// its logs): `Durability::Interval` fsyncs, recovery checkpoints as
    /// [`BrokerConfig::default`](crate::BrokerConfig) schedules them, time-based retention, and segment pre-allocation.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        let dir = dir.as_ref();
        let name: Arc<str> = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .into();
        let log = Log::open_named(dir, config, name, 0)?;
        let (tx, rx) = crossbeam_channel::bounded(16);
        log.inner.attach_background(tx);
        let policy = crate::config::BrokerConfig::default().checkpoint_policy();
        let every = policy.every;
        let weak = Arc::downgrade(&log.inner);
        let work = move || match weak.upgrade() {
            Some(inner) if !inner.closed.load(Ordering::Acquire) => {
                // A failure poisons the log; writers see it on their next append.
                let _ = inner.background_tick(&policy);
                true
            }
            _ => false,
        };
        let tick = flusher::tick_for(log.inner.config.durability, every);
        let flusher = flusher::Flusher::spawn(tick, work, rx)
            .map_err(|e| Error::io("starting the log's background thread", dir, e))?;
        *log.inner.own_flusher.lock() = Some(flusher);
        Ok(log)
    }

    pub(crate) fn open_named(dir: &Path, config: LogConfig, topic: Arc<str>, partition: u32) -> Result<Log> {
        clock::init();
        recovery::open(dir, config, topic, partition).map(|inner| Log { inner: Arc::new(inner) })
    }

    /// Appends records as one or more batches (one batch unless they span a
    /// segment roll; with the config's compression, one batch per 64 KiB of
    /// records). Returns the first offset; the others follow in order.
    /// Nothing is written if any record is over the size limit.
    pub fn append(&self, records: &[Record]) -> Result<Appended> {
        self.inner.append(records)
    }

    /// [`append`](Self::append) from bytes the caller lends: nothing is
    /// allocated per record (see [`BorrowedRecord`]).
    pub fn append_borrowed(&self, records: &[BorrowedRecord<'_>]) -> Result<Appended> {
        self.inner.append(records)
    }

    /// Reads up to `max` records starting at `offset`. Offsets that
    /// compaction removed are skipped: the first record returned is the
    /// first kept one at or after `offset`. An empty result means no record
    /// is stored from `offset` to the end of the log; an offset outside
    /// `start_offset()..=end_offset()` is `Error::OffsetOutOfRange`.
    ///
    /// Records of transactions are returned as they were written, whether
    /// their transaction committed, aborted or is still open (Kafka's
    /// read_uncommitted); control records (transaction markers) are skipped:
    /// they occupy offsets but are never returned. Use a consumer with
    /// `IsolationLevel::ReadCommitted` for committed records only.
    pub fn read(&self, offset: u64, max: usize) -> Result<Vec<ConsumedRecord>> {
        let mut out = Vec::with_capacity(max.min(4096));
        self.inner.read_into(offset, max, &mut out)?;
        Ok(out)
    }

    /// Calls `f` with each of up to `max_records` records from `offset`, in
    /// order, borrowed from the segment (no allocation, no reference count per
    /// record); returns the offset to read next: the one after the last record
    /// visited and any control records after it, or `offset` if none (at the
    /// end of the log). It returns what [`read`](Self::read) does. Validation and
    /// errors are those of [`read`](Self::read); on an error, the records of
    /// the batches before the damaged one have already been visited (each
    /// batch's CRC is checked before any of its records is).
    pub fn read_with(&self, offset: u64, max_records: usize, mut f: impl FnMut(RecordView<'_>)) -> Result<u64> {
        self.inner.read_with(offset, max_records, &mut f)
    }

    /// First offset with a timestamp `>= ts_ms`, or `None` if every stored record is older.
    pub fn offset_for_timestamp(&self, ts_ms: i64) -> Result<Option<u64>> {
        self.inner.offset_for_timestamp(ts_ms)
    }

    /// First offset still stored (moves forward with retention).
    pub fn start_offset(&self) -> u64 {
        self.inner.start_offset.load(Ordering::Acquire)
    }

    /// The next offset to be written.
    pub fn end_offset(&self) -> u64 {
        self.inner.next_offset.load(Ordering::Acquire)
    }

    /// Makes everything appended so far durable (fdatasync), whatever the durability mode.
    pub fn flush(&self) -> Result<()> {
        self.inner.check_open()?;
        self.inner.sync_to(self.end_offset())
    }

    /// Removes every record at `offset` and after, like Kafka's log truncation.
    /// Reads that started before may still return the removed records.
    pub fn truncate(&self, offset: u64) -> Result<()> {
        self.inner.truncate(offset)
    }

    /// Changes the retention limits of the open log (`None`: no limit); the
    /// next retention pass applies them. Appends and reads are unaffected.
    pub fn set_retention(&self, bytes: Option<u64>, ms: Option<i64>) {
        self.inner.retention.set(bytes, ms);
    }

    /// Applies `retention_bytes` / `retention_ms` now (also done on every roll and on open).
    pub fn enforce_retention(&self) -> Result<()> {
        self.inner.enforce_retention_now()
    }

    /// Reads every batch of every segment and checks its CRC and records.
    /// Returns the number of records checked, or the first damage found.
    pub fn verify(&self) -> Result<u64> {
        self.inner.verify()
    }

    /// Runs one compaction pass now over the sealed segments (never the
    /// active one) and returns when it is installed: every key keeps at
    /// least its latest record, older records of a key are removed, and a
    /// tombstone is removed once `delete_retention_ms` has passed since a
    /// pass first reached it. Kept records keep their offset, key, value,
    /// headers and timestamp; reads skip the removed offsets. A pass that
    /// retention or a truncation overtakes changes nothing (its report is
    /// empty); the next one starts over. `Error::InvalidConfig` if the log's
    /// topic is not compacted.
    pub fn compact(&self) -> Result<CompactionReport> {
        self.inner.compact()
    }

    /// Share of the sealed segments' bytes written since the last
    /// compaction pass (0 to 1): the background compactor runs a pass when
    /// it reaches the topic's `min_cleanable_dirty_ratio`.
    pub fn dirty_ratio(&self) -> f64 {
        self.inner.dirty_ratio()
    }

    /// Offset below which every record has been through a compaction pass (0: none).
    pub fn cleaned_offset(&self) -> u64 {
        self.inner.cleaned_upto()
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.inner.segments().iter().map(|s| s.size()).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.inner.segments().len()
    }

    /// Clean shutdown: fsync, write indexes and a clean checkpoint so the next
    /// open skips recovery. Later calls return `Error::Closed`.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// What the open that produced this log found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The directory holding this log's files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

/// What the layers above (broker, producers, consumers) ask of a log that
/// is not public API: forwarding methods, inlined so that a send or a fetch
/// costs what it did when the caller reached into `LogInner` itself.
impl Log {
    /// [`append`](Self::append) for any record type the encoder knows
    /// (a producer's `Record`s, `BorrowedRecord`s, or references to them).
    #[inline]
    pub(crate) fn append_records<R: Encode>(&self, records: &[R]) -> Result<Appended> {
        self.inner.append(records)
    }

    /// [`append_records`](Self::append_records) compressed with `compression`
    /// instead of the topic's (a producer's override).
    #[inline]
    pub(crate) fn append_records_as<R: Encode>(
        &self,
        records: &[R],
        compression: crate::compression::Compression,
    ) -> Result<Appended> {
        self.inner.append_compressed_as(records, compression)
    }

    /// Checks every record against the size limit without writing (a
    /// multi-partition send validates all partitions before appending to any).
    #[inline]
    pub(crate) fn validate_records<R: Encode>(&self, records: impl IntoIterator<Item = R>) -> Result<()> {
        self.inner.validate_records(records)
    }

    /// Whether records are stamped with the append time (the topic's
    /// `LogAppendTime`), not the sender's.
    #[inline]
    pub(crate) fn log_append_time(&self) -> bool {
        self.inner.config.log_append_time
    }

    /// [`read`](Self::read) into `out` for sequential readers, resuming at
    /// `cursor` (see `LogInner::read_with_cursor`); returns how many records
    /// and the offset to read next (past offsets compaction removed).
    #[inline]
    pub(crate) fn read_with_cursor(
        &self,
        offset: u64,
        max: usize,
        out: &mut Vec<ConsumedRecord>,
        cursor: &mut Option<Cursor>,
        end: Option<u64>,
        iso: txn::Isolation<'_>,
    ) -> Result<(usize, u64)> {
        self.inner.read_with_cursor(offset, max, out, cursor, end, iso)
    }

    /// [`read_with`](Self::read_with) for sequential readers, resuming at
    /// `cursor`; returns the offset after the last record `f` saw.
    #[inline]
    pub(crate) fn read_views_with_cursor<F: FnMut(RecordView<'_>)>(
        &self,
        offset: u64,
        max: usize,
        f: &mut F,
        cursor: &mut Option<Cursor>,
        end: Option<u64>,
        iso: txn::Isolation<'_>,
    ) -> Result<u64> {
        self.inner.read_views_with_cursor(offset, max, f, cursor, end, iso)
    }

    /// Registers the calling thread to be unparked by the next append (or
    /// [`wake_waiters`](Self::wake_waiters)); the caller re-checks for
    /// records before parking, and unregisters with the returned id.
    pub(crate) fn register_waiter(&self) -> u64 {
        self.inner.register_waiter(Waiter::current())
    }

    /// [`register_waiter`](Self::register_waiter) for an async task: the
    /// next append wakes `waker` instead of unparking a thread.
    #[cfg(feature = "async")]
    pub(crate) fn register_task(&self, waker: &std::task::Waker) -> u64 {
        self.inner.register_waiter(Waiter::Task(waker.clone()))
    }

    /// Ends a registration made by [`register_waiter`](Self::register_waiter).
    pub(crate) fn unregister_waiter(&self, id: u64) {
        self.inner.waiters.unregister(id);
    }

    /// Unparks every registered waiter (the log was closed or deleted).
    pub(crate) fn wake_waiters(&self) {
        self.inner.waiters.notify();
    }

    /// Marks the log finished without a checkpoint (its files are being deleted).
    pub(crate) fn abandon(&self) {
        self.inner.abandon();
    }

    /// Connects the log to the broker's background thread.
    pub(crate) fn attach_background(&self, tx: PreallocSender) {
        self.inner.attach_background(tx);
    }

    /// Whether the log is compacted and its dirty ratio calls for a pass.
    pub(crate) fn compaction_due(&self) -> bool {
        self.inner.compaction_due()
    }

    /// One round of the background thread's work on this log (interval
    /// fsync, checkpoint, retention); a failure poisons the log.
    pub(crate) fn background_tick(&self, policy: &CheckpointPolicy) -> Result<()> {
        self.inner.background_tick(policy)
    }
}

impl LogInner {
    pub(crate) fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        Arc::clone(&self.segments.read())
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn end_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn start_offset(&self) -> u64 {
        self.start_offset.load(Ordering::Acquire)
    }

    fn set_segments(&self, segs: Vec<Arc<Segment>>) {
        let start = segs.first().map(|s| s.base);
        *self.segments.write() = Arc::new(segs);
        if let Some(start) = start {
            self.start_offset.store(start, Ordering::Release);
        }
    }

    pub(crate) fn close(&self) -> Result<()> {
        // Taking the writer lock waits for an append in progress to finish.
        let was_closed = {
            let mut w = self.writer.lock();
            w.appends.publish(&self.metrics);
            self.closed.swap(true, Ordering::AcqRel)
        };
        if was_closed {
            return Ok(());
        }
        let result = if self.close_has_nothing_to_write() {
            Ok(())
        } else {
            self.write_checkpoint(true)
        };
        self.wake_durable_waiters();
        if let Some(mut f) = self.own_flusher.lock().take() {
            f.stop();
        }
        result
    }

    /// Whether the files already say what a clean checkpoint would: the
    /// clean checkpoint of a clean open is still on disk unchanged (nothing
    /// was appended, truncated or deleted since), or the log never held a record and
    /// has no checkpoint (nothing on disk claims anything about it, and a
    /// crash or a close leaves what the next open finds again, an empty log).
    /// Such a close writes and fsyncs nothing (closing a new topic of 1,000
    /// partitions would otherwise create 1,000 checkpoint files and wait for
    /// 5,000 fsyncs).
    fn close_has_nothing_to_write(&self) -> bool {
        // Lock order: checkpoint, then writer (as `write_checkpoint`).
        let ck = self.checkpoint.lock();
        let w = self.writer.lock();
        if w.clean_on_disk.is_some() {
            // Unless retention deleted segments since: their directory
            // entries wait for the close's fsync round.
            return !w.dir_dirty && w.unsynced.is_empty();
        }
        let empty = w.next_offset == w.active.base && w.active.size() == 0 && w.unsynced.is_empty();
        empty && ck.is_unwritten() && self.segments.read().len() == 1
    }

    /// Marks the log finished without a checkpoint (its files are being deleted).
    pub(crate) fn abandon(&self) {
        // A compaction pass in progress finishes (or gives up) first: it
        // must not write into a directory being deleted.
        let _pass = self.compacting.lock();
        {
            let _w = self.writer.lock();
            self.closed.store(true, Ordering::Release);
        }
        self.wake_durable_waiters();
    }
}

impl Drop for LogInner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.close();
        }
    }
}
