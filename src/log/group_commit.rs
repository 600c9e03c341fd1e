//! Group commit: making appends durable, and poisoning after a failed fsync.
//!
//! A thread that needs offset `n` durable becomes the *leader* if no fsync is
//! running; it snapshots what is written, fsyncs without holding the append
//! lock, and publishes the new durable offset to every waiter. Threads
//! arriving meanwhile wait and are usually covered by that fsync or the next
//! one, so N concurrent writers share fsyncs.
//!
//! After a failed fsync the kernel may have dropped the dirty pages, so a
//! retried fsync could succeed without the data being on disk: the log is
//! *poisoned* and refuses writes until it is reopened.
//!
//! Async sends (feature `async`) wait in the same state: their wakers are
//! woken at the end of every round, like the threads on `sync_done`
//! (`log/durable.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::LogInner;
use crate::error::{Error, Result};

#[derive(Debug)]
pub(crate) struct SyncState {
    pub(super) durable: u64,
    pub(super) syncing: bool,
    /// The failure that poisoned the log (an `Error::Io`).
    pub(super) poisoned: Option<Arc<Error>>,
    last_sync: Instant,
    /// The most records one recent round covered (see `gather`).
    peak: u64,
    /// Rounds since `peak` was last reached; it decays after `PEAK_ROUNDS`.
    since_peak: u32,
    /// Async sends waiting for a round to end (woken by `round_ended`).
    #[cfg(feature = "async")]
    pub(super) tasks: Vec<std::task::Waker>,
    /// A round was asked of the sync threads and has not started yet.
    #[cfg(feature = "async")]
    pub(super) requested: bool,
}

impl SyncState {
    pub(crate) fn new(durable: u64) -> SyncState {
        SyncState {
            durable,
            syncing: false,
            poisoned: None,
            last_sync: Instant::now(),
            peak: 1,
            since_peak: 0,
            #[cfg(feature = "async")]
            tasks: Vec::new(),
            #[cfg(feature = "async")]
            requested: false,
        }
    }

    /// Records how many records a round covered.
    fn served(&mut self, n: u64) {
        if n >= self.peak {
            self.peak = n;
            self.since_peak = 0;
        } else {
            self.since_peak += 1;
            if self.since_peak > PEAK_ROUNDS {
                self.peak = n;
                self.since_peak = 0;
            }
        }
    }

    /// Records a successful round that made everything below `next_offset` durable.
    fn synced(&mut self, next_offset: u64) {
        self.durable = self.durable.max(next_offset);
        self.last_sync = Instant::now();
    }
}

/// A round ended (or the log was poisoned, truncated or closed): every
/// waiting task looks again, as the threads woken on `sync_done` do. The
/// wakers run with the lock released: a task polled at once takes it.
#[cfg_attr(not(feature = "async"), allow(unused_variables))]
fn round_ended(s: &mut parking_lot::MutexGuard<'_, SyncState>) {
    #[cfg(feature = "async")]
    if !s.tasks.is_empty() {
        let tasks = std::mem::take(&mut s.tasks);
        parking_lot::MutexGuard::unlocked(s, || tasks.into_iter().for_each(std::task::Waker::wake));
    }
}

/// How long a new group-commit leader waits for writers that the previous
/// round released to append again (a fraction of one fdatasync).
const GATHER_MAX: Duration = Duration::from_micros(60);
/// Rounds after which a writer count that is no longer reached stops being waited for.
const PEAK_ROUNDS: u32 = 32;

/// What one fsync (or live checkpoint) covered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Snapshot {
    pub(super) next_offset: u64,
    pub(super) segment_base: u64,
    pub(super) position: u64,
    pub(super) max_ts: i64,
}

impl LogInner {
    pub(super) fn poisoned_error(&self, cause: &Arc<Error>) -> Error {
        Error::Poisoned {
            topic: self.topic.to_string(),
            partition: self.partition,
            reason: describe(cause),
            source: Arc::clone(cause),
        }
    }

    /// Fails if an earlier fsync failed.
    #[inline]
    pub(crate) fn check_poisoned(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            if let Some(cause) = &self.sync.lock().poisoned {
                return Err(self.poisoned_error(cause));
            }
        }
        Ok(())
    }

    /// Marks the log poisoned by `cause`: every later write fails with
    /// `Error::Poisoned`, carrying it.
    pub(super) fn poison(&self, cause: Error) -> Arc<Error> {
        let cause = Arc::new(cause);
        let mut s = self.sync.lock();
        s.poisoned = Some(Arc::clone(&cause));
        self.poisoned.store(true, Ordering::Release);
        round_ended(&mut s);
        crate::obs::poisoned(&self.topic, self.partition, &cause);
        cause
    }

    /// The durable offset and the time since the last successful round.
    pub(super) fn sync_status(&self) -> (u64, Duration) {
        let s = self.sync.lock();
        (s.durable, s.last_sync.elapsed())
    }

    /// Returns once every offset below `target` is on stable storage.
    pub(crate) fn sync_to(&self, target: u64) -> Result<()> {
        let mut s = self.sync.lock();
        loop {
            // A truncation may have removed what was waited for.
            let target = target.min(self.end_offset());
            if let Some(cause) = &s.poisoned {
                return Err(self.poisoned_error(cause));
            }
            if s.durable >= target {
                return Ok(());
            }
            if s.syncing {
                self.sync_done.wait(&mut s);
                continue;
            }
            s.syncing = true;
            let served = self.gather(&mut s);
            drop(s);
            let result = self.sync_once(false);
            s = self.sync.lock();
            s.syncing = false;
            s.served(served);
            match result {
                Ok(snap) => s.synced(snap.next_offset),
                Err(cause) => {
                    crate::obs::poisoned(&self.topic, self.partition, &cause);
                    s.poisoned = Some(Arc::new(cause));
                    self.poisoned.store(true, Ordering::Release);
                }
            }
            self.sync_done.notify_all();
            round_ended(&mut s);
        }
    }

    /// A round of its own, outside the group (a checkpoint needs a snapshot
    /// describing exactly what it covers). A failure poisons the log.
    pub(super) fn sync_round(&self, with_indexes: bool) -> Result<Snapshot> {
        match self.sync_once(with_indexes) {
            Ok(snap) => {
                let mut s = self.sync.lock();
                s.synced(snap.next_offset);
                round_ended(&mut s);
                Ok(snap)
            }
            Err(cause) => {
                let cause = self.poison(cause);
                Err(self.poisoned_error(&cause))
            }
        }
    }

    /// Adaptive group commit: when recent rounds covered more records than
    /// are waiting to be made durable now, the writers the last round
    /// released are probably about to append again; the leader yields for up
    /// to `GATHER_MAX` so that this fsync covers them too, instead of
    /// splitting the writers into groups that alternate between rounds.
    /// Returns the records the round will cover (appended, not yet durable).
    ///
    /// Counted in records appended, not in threads waiting: a thread the
    /// last round released still counts as waiting until it gets the lock
    /// back, so a thread count started rounds too early (instrumented with
    /// 8 writers: most rounds "served 8", ~5 records per fdatasync).
    fn gather(&self, s: &mut parking_lot::MutexGuard<'_, SyncState>) -> u64 {
        let pending = |s: &SyncState| self.end_offset().saturating_sub(s.durable);
        if pending(s) >= s.peak {
            return pending(s);
        }
        let deadline = Instant::now() + GATHER_MAX;
        while pending(s) < s.peak && Instant::now() < deadline {
            parking_lot::MutexGuard::unlocked(s, std::thread::yield_now);
        }
        pending(s)
    }

    /// One fsync round: everything written when it starts is durable when it ends.
    ///
    /// `with_indexes`: also write and fsync the active segment's pending index
    /// entries. Only a checkpoint needs that (recovery trusts index entries
    /// below the checkpoint); acknowledging appends does not, so group-commit
    /// rounds cost one fdatasync, not three.
    ///
    /// A failure is the `Error::Io` of the call that failed, with its file.
    fn sync_once(&self, with_indexes: bool) -> Result<Snapshot> {
        let (files, dir_dirty, index_files, snap) = {
            let mut w = self.writer.lock();
            let mut files = std::mem::take(&mut w.unsynced);
            files.extend(w.active.file.clone().map(|f| (f, w.active.path.clone())));
            let dir_dirty = std::mem::take(&mut w.dir_dirty);
            let max_ts = w.active.index.read().as_ref().map_or(i64::MIN, |ix| ix.max_ts);
            let snap = Snapshot {
                next_offset: w.next_offset,
                segment_base: w.active.base,
                position: w.active.size(),
                max_ts,
            };
            // Index entries go to their files now; they are synced below,
            // before any checkpoint that relies on them is written.
            let mut index_files = None;
            if with_indexes {
                if let (Some(files), Some(ix)) = (&w.index_files, w.active.index.write().as_mut()) {
                    ix.persist_pending(files)?;
                    let (_, ipath, tpath) = super::segment::paths(&self.dir, w.active.base);
                    index_files = files.handles().map(|h| (h, ipath, tpath));
                }
            }
            (files, dir_dirty, index_files, snap)
        };
        let started = crate::obs::Timer::start();
        #[cfg(feature = "fault-injection")]
        if crate::testing::take_fsync_failure() {
            let path = files.first().map_or(self.dir.as_path(), |(_, p)| p.as_path());
            let fault = std::io::Error::other("injected fault (logbus::testing)");
            return Err(Error::io("fdatasync of segment", path, fault));
        }
        for (f, path) in &files {
            f.sync_data().map_err(|e| Error::io("fdatasync of segment", path, e))?;
            #[cfg(feature = "fault-injection")]
            crate::testing::synced(|| crate::testing::SyncEvent::File(path.clone()));
        }
        if let Some(((a, b), ipath, tpath)) = index_files {
            a.sync_data().map_err(|e| Error::io("fdatasync of index", &ipath, e))?;
            #[cfg(feature = "fault-injection")]
            crate::testing::synced(|| crate::testing::SyncEvent::File(ipath.clone()));
            b.sync_data().map_err(|e| Error::io("fdatasync of index", &tpath, e))?;
            #[cfg(feature = "fault-injection")]
            crate::testing::synced(|| crate::testing::SyncEvent::File(tpath.clone()));
        }
        if dir_dirty {
            crate::fs::sync_dir(&self.dir)?;
        }
        self.metrics.fsynced(started, &self.topic, self.partition);
        Ok(snap)
    }

    /// After a truncation to `offset` (whose new files were fsynced).
    pub(crate) fn lower_durable(&self, offset: u64) {
        let mut s = self.sync.lock();
        s.durable = offset;
        round_ended(&mut s);
    }

    /// Wakes the tasks waiting for durability (the log was closed).
    pub(super) fn wake_durable_waiters(&self) {
        round_ended(&mut self.sync.lock());
    }
}

/// The `reason` of `Error::Poisoned`: the call that failed, its file and the
/// OS error ("fdatasync of segment /data/t-0/00000000000000000000.log failed:
/// Input/output error (os error 5)").
fn describe(cause: &Error) -> String {
    match cause {
        Error::Io { context, path, source } => format!("{context} {} failed: {source}", path.display()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_peak_follows_rounds_and_decays() {
        let mut s = SyncState::new(0);
        assert_eq!(s.peak, 1, "a lone writer never waits for others");
        s.served(8);
        assert_eq!(s.peak, 8);
        for _ in 0..PEAK_ROUNDS {
            s.served(3);
        }
        assert_eq!(s.peak, 8, "a few smaller rounds keep the peak");
        s.served(3);
        assert_eq!(s.peak, 3, "a peak not reached for PEAK_ROUNDS rounds decays");
        s.served(5);
        assert_eq!(s.peak, 5);
    }
}
