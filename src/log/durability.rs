//! Making appends durable: group commit, recovery checkpoints, poisoning.
//!
//! Group commit: a thread that needs offset `n` durable becomes the *leader*
//! if no fsync is running; it snapshots what is written, fsyncs without
//! holding the append lock, and publishes the new durable offset to every
//! waiter. Threads arriving meanwhile wait and are usually covered by that
//! fsync or the next one, so N concurrent writers share fsyncs.
//!
//! Checkpoints: `recovery.ckpt` is written after an fsync of everything it
//! covers. Under `PageCache`, most checkpoints are *live* ones instead
//! (`recovery.live`): no fsync, stamped with the kernel's boot id, trusted by
//! recovery only on the same boot. An fsync of a segment that is mapped
//! writable write-protects every page it cleans (with a TLB shootdown on each
//! CPU running the writer), which costs the writer ~30% at millions of records
//! per second; a live checkpoint bounds the scan after a process crash without
//! that, and fsynced ones (every `sync_checkpoint_interval`/`_bytes`) bound
//! the scan after a power loss.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::LogInner;
use crate::config::{CheckpointPolicy, Durability};
use crate::error::{Error, Result};
use crate::format::checkpoint::{self, Checkpoint, LiveCheckpoint};

/// Rolled segments waiting for an fsync that make an fsynced checkpoint due
/// (each holds an open file until then).
const MAX_UNSYNCED_FILES: usize = 16;

#[derive(Debug)]
pub(crate) struct SyncState {
    durable: u64,
    syncing: bool,
    poisoned: Option<String>,
    last_sync: Instant,
    /// The most records one recent round covered (see `gather`).
    peak: u64,
    /// Rounds since `peak` was last reached; it decays after `PEAK_ROUNDS`.
    since_peak: u32,
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
}

/// How long a new group-commit leader waits for writers that the previous
/// round released to append again (a fraction of one fdatasync, ~150-250 us).
const GATHER_MAX: Duration = Duration::from_micros(60);
/// Rounds after which a writer count that is no longer reached stops being waited for.
const PEAK_ROUNDS: u32 = 32;

pub(crate) struct CheckpointState {
    file: File,
    path: PathBuf,
    last: Option<Checkpoint>,
    last_time: Instant,
}

impl CheckpointState {
    pub(crate) fn new(file: File, path: PathBuf) -> CheckpointState {
        CheckpointState {
            file,
            path,
            last: None,
            last_time: Instant::now(),
        }
    }

    /// Takes the checkpoint already on disk as the last one written.
    pub(crate) fn resume_from(&mut self, on_disk: Option<Checkpoint>) {
        self.last = on_disk;
    }
}

/// Under `PageCache`, the writer itself records a live checkpoint once this
/// many bytes were appended since its last one (a `pwrite` of 68 bytes and of
/// the pending index entries, a few microseconds per 2 MiB): the scan after a
/// process crash stays this small however fast the writer is, where the
/// background thread's ticks (every 100 ms at most) would leave up to 100 ms
/// of writes, ~100 MB at full speed, to scan.
pub(crate) const LIVE_CHECKPOINT_BYTES: u64 = 2 * 1024 * 1024;

impl super::Writer {
    /// Writes a live checkpoint of what is written now (no fsync). Does
    /// nothing when there is no live file or the active segment's last batch
    /// was not written by this process (then only an fsynced one will do).
    pub(super) fn write_live(&mut self) -> Result<()> {
        let (Some(live), Some(last_batch)) = (self.live.as_mut(), self.last_batch) else {
            return Ok(());
        };
        // Recovery trusts index entries below the checkpoint: they go to the
        // page cache first, like the checkpoint itself.
        let max_ts = {
            let mut ix = self.active.index.write();
            if let (Some(files), Some(ix)) = (&self.index_files, ix.as_mut()) {
                ix.persist_pending(files)?;
            }
            ix.as_ref().map_or(i64::MIN, |ix| ix.max_ts)
        };
        let c = LiveCheckpoint {
            segment_base: self.active.base,
            position: self.active.size(),
            next_offset: self.next_offset,
            max_ts,
            last_batch,
            boot_id: live.boot_id,
        };
        live.file
            .write_all_at(&checkpoint::encode_live(&c), 0)
            .map_err(|e| Error::io("writing live checkpoint", &live.path, e))?;
        live.last = Some(c);
        live.last_time = Instant::now();
        self.live_pending = 0;
        Ok(())
    }
}

/// The live checkpoint file of a partition (see the module docs).
#[derive(Debug)]
pub(crate) struct LiveFile {
    file: File,
    path: PathBuf,
    boot_id: [u8; 16],
    last: Option<LiveCheckpoint>,
    last_time: Instant,
}

impl LiveFile {
    pub(crate) fn new(file: File, path: PathBuf, boot_id: [u8; 16]) -> LiveFile {
        LiveFile {
            file,
            path,
            boot_id,
            last: None,
            last_time: Instant::now(),
        }
    }

    /// Makes the file unusable for recovery (before a truncation rewrites
    /// what it describes). In the page cache at once, which is all a live
    /// checkpoint is ever trusted from.
    pub(crate) fn invalidate(&mut self) -> Result<()> {
        self.file
            .write_all_at(&[0u8; checkpoint::LIVE_LEN], 0)
            .map_err(|e| Error::io("invalidating live checkpoint", &self.path, e))?;
        self.last = None;
        Ok(())
    }
}

/// What one fsync (or live checkpoint) covered.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    next_offset: u64,
    segment_base: u64,
    position: u64,
    max_ts: i64,
}

impl LogInner {
    fn poisoned_error(&self, reason: &str) -> Error {
        Error::Poisoned {
            topic: self.topic.to_string(),
            partition: self.partition,
            reason: reason.to_string(),
        }
    }

    /// Fails if an earlier fsync failed.
    #[inline]
    pub(crate) fn check_poisoned(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let reason = self.sync.lock().poisoned.clone().unwrap_or_default();
            return Err(self.poisoned_error(&reason));
        }
        Ok(())
    }

    /// Returns once every offset below `target` is on stable storage.
    pub(crate) fn sync_to(&self, target: u64) -> Result<()> {
        let mut s = self.sync.lock();
        loop {
            // A truncation may have removed what was waited for.
            let target = target.min(self.end_offset());
            if let Some(reason) = &s.poisoned {
                return Err(self.poisoned_error(reason));
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
                Ok(snap) => {
                    s.durable = s.durable.max(snap.next_offset);
                    s.last_sync = Instant::now();
                }
                Err(reason) => {
                    s.poisoned = Some(reason);
                    self.poisoned.store(true, Ordering::Release);
                }
            }
            self.sync_done.notify_all();
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
    fn sync_once(&self, with_indexes: bool) -> std::result::Result<Snapshot, String> {
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
                    ix.persist_pending(files).map_err(|e| e.to_string())?;
                    let (_, ipath, tpath) = super::segment::paths(&self.dir, w.active.base);
                    index_files = Some((files.handles(), ipath, tpath));
                }
            }
            (files, dir_dirty, index_files, snap)
        };
        #[cfg(feature = "fault-injection")]
        if crate::testing::take_fsync_failure() {
            return Err("fdatasync of a segment failed: injected fault (logbus::testing)".to_string());
        }
        for (f, path) in &files {
            f.sync_data()
                .map_err(|e| format!("fdatasync of a segment failed: {e}"))?;
            #[cfg(feature = "fault-injection")]
            crate::testing::synced(|| crate::testing::SyncEvent::File(path.clone()));
            let _ = path;
        }
        if let Some(((a, b), ipath, tpath)) = index_files {
            a.sync_data()
                .map_err(|e| format!("fdatasync of an index failed: {e}"))?;
            #[cfg(feature = "fault-injection")]
            crate::testing::synced(|| crate::testing::SyncEvent::File(ipath.clone()));
            b.sync_data()
                .map_err(|e| format!("fdatasync of an index failed: {e}"))?;
            #[cfg(feature = "fault-injection")]
            crate::testing::synced(|| crate::testing::SyncEvent::File(tpath.clone()));
            let _ = (ipath, tpath);
        }
        if dir_dirty {
            crate::fs::sync_dir(&self.dir).map_err(|e| e.to_string())?;
        }
        Ok(snap)
    }

    /// fsyncs everything and records a recovery checkpoint (`clean` at close).
    pub(crate) fn write_checkpoint(&self, clean: bool) -> Result<()> {
        let mut ck = self.checkpoint.lock();
        self.check_poisoned()?;
        // A round of its own (rather than sync_to) so the snapshot describes
        // exactly what this checkpoint covers.
        let snap = match self.sync_once(true) {
            Ok(snap) => {
                let mut s = self.sync.lock();
                s.durable = s.durable.max(snap.next_offset);
                s.last_sync = Instant::now();
                snap
            }
            Err(reason) => {
                let err = self.poisoned_error(&reason);
                self.sync.lock().poisoned = Some(reason);
                self.poisoned.store(true, Ordering::Release);
                return Err(err);
            }
        };
        let c = Checkpoint {
            segment_base: snap.segment_base,
            position: snap.position,
            next_offset: snap.next_offset,
            max_ts: snap.max_ts,
            clean,
        };
        if let Some(last) = ck.last {
            if (last.segment_base, last.position) > (c.segment_base, c.position) {
                return Ok(());
            }
        }
        ck.file
            .write_all_at(&checkpoint::encode(&c), 0)
            .and_then(|()| ck.file.sync_data())
            .map_err(|e| {
                self.sync.lock().poisoned = Some(format!("checkpoint write failed: {e}"));
                self.poisoned.store(true, Ordering::Release);
                Error::io("writing recovery checkpoint", &ck.path, e)
            })?;
        #[cfg(feature = "fault-injection")]
        crate::testing::synced(|| crate::testing::SyncEvent::File(ck.path.clone()));
        ck.last = Some(c);
        ck.last_time = Instant::now();
        Ok(())
    }

    /// After a truncation to `offset` (whose new files were fsynced).
    pub(crate) fn lower_durable(&self, offset: u64) {
        self.sync.lock().durable = offset;
    }

    /// A checkpoint that may go backwards (after a truncation).
    pub(crate) fn write_checkpoint_after_truncate(&self) -> Result<()> {
        self.checkpoint.lock().last = None;
        self.write_checkpoint(false)
    }

    /// Takes the writer lock and writes a live checkpoint (see `Writer::write_live`).
    pub(crate) fn write_live_checkpoint(&self) -> Result<()> {
        self.writer.lock().write_live()
    }

    /// Bytes a recovery starting at `(base, pos)` would scan now.
    fn bytes_after(&self, at: Option<(u64, u64)>) -> u64 {
        let Some((base, pos)) = at else {
            return u64::MAX;
        };
        let after: u64 = self
            .segments()
            .iter()
            .filter(|seg| seg.base >= base)
            .map(|seg| seg.size())
            .sum();
        after.saturating_sub(pos)
    }

    /// Periodic work from the background thread (a broker's or a standalone
    /// log's). A checkpoint is written when records arrived and
    /// `policy.every` passed, or once `policy.bytes` arrived since the last
    /// one (so the recovery scan after a crash stays bounded however fast the
    /// writer is). Under `PageCache` with a live file, those are live
    /// checkpoints and fsynced ones follow `policy.sync_every`/`sync_bytes`.
    pub(crate) fn background_tick(&self, policy: &CheckpointPolicy) -> Result<()> {
        if self.closed.load(Ordering::Acquire) || self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let end = self.end_offset();
        let (durable, since_sync) = {
            let s = self.sync.lock();
            (s.durable, s.last_sync.elapsed())
        };
        let (ck_next, since_ck, ck_at) = {
            let ck = self.checkpoint.lock();
            let at = ck.last.map(|c| (c.segment_base, c.position));
            (ck.last.map_or(0, |c| c.next_offset), ck.last_time.elapsed(), at)
        };
        let (live, unsynced_files) = {
            let w = self.writer.lock();
            let live = w
                .live
                .as_ref()
                .filter(|_| self.config.durability == Durability::PageCache)
                .map(|l| {
                    let at = l.last.map(|c| (c.segment_base, c.position));
                    (l.last.map_or(0, |c| c.next_offset), l.last_time.elapsed(), at)
                });
            (live, w.unsynced.len())
        };
        if let Durability::Interval(d) = self.config.durability {
            // Ticks come every d/2 at most: syncing once d/2 has passed since
            // the last sync bounds the age of an unsynced write by d (waiting
            // for d itself could leave one unsynced for up to 1.5 d).
            if end > durable && since_sync >= d / 2 {
                self.sync_to(end)?;
            }
        }
        match live {
            None => {
                if end > ck_next && (since_ck >= policy.every || self.bytes_after(ck_at) >= policy.bytes) {
                    self.write_checkpoint(false)?;
                }
            }
            Some((live_next, since_live, live_at)) => {
                let sync_due = since_ck >= policy.sync_every
                    || self.bytes_after(ck_at) >= policy.sync_bytes
                    || unsynced_files >= MAX_UNSYNCED_FILES;
                if end > ck_next && sync_due {
                    self.write_checkpoint(false)?;
                } else {
                    let newest = live_at.max(ck_at);
                    let since = if live_at > ck_at { since_live } else { since_ck };
                    if end > live_next.max(ck_next)
                        && (since >= policy.every || self.bytes_after(newest) >= policy.bytes)
                    {
                        self.write_live_checkpoint()?;
                    }
                }
            }
        }
        if self.config.retention_ms.is_some() {
            let due = self.writer.lock().last_retention.elapsed() >= Duration::from_secs(1);
            if due {
                self.enforce_retention_now()?;
            }
        }
        Ok(())
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
