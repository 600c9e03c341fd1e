//! Recovery checkpoints: how much of the log recovery may trust without a scan.
//!
//! `recovery.ckpt` is written after an fsync of everything it covers. Under
//! `PageCache`, most checkpoints are *live* ones instead (`recovery.live`): no
//! fsync, stamped with the kernel's boot id, trusted by recovery only on the
//! same boot. An fsync of a segment that is mapped writable write-protects
//! every page it cleans (with a TLB shootdown on each CPU running the writer),
//! which slows a fast writer measurably (BENCHMARKS.md, "Costs that shaped
//! the design"); a live
//! checkpoint bounds the scan after a process crash without that, and fsynced
//! ones (every `sync_checkpoint_interval`/`_bytes`) bound the scan after a
//! power loss.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::LogInner;
use crate::error::{Error, Result};
use crate::format::checkpoint::{self, Checkpoint, LiveCheckpoint};

/// The fsynced checkpoint file of a partition and the last checkpoint written to it.
pub(crate) struct CheckpointState {
    /// Opened (created) by the first write: a partition that never needs a
    /// checkpoint creates no file for it (see `lazy_open`).
    file: Option<File>,
    path: PathBuf,
    last: Option<Checkpoint>,
    last_time: Instant,
}

impl CheckpointState {
    pub(crate) fn new(path: PathBuf) -> CheckpointState {
        CheckpointState {
            file: None,
            path,
            last: None,
            last_time: Instant::now(),
        }
    }

    /// Overwrites the checkpoint file with `c`, and fdatasyncs it unless
    /// `c` is the close's clean checkpoint: what that one covers was fsynced
    /// before it was written, so a power loss that takes it leaves the
    /// previous checkpoint (or none), from which recovery scans to the same
    /// end.
    fn write(&mut self, c: &Checkpoint) -> io::Result<()> {
        let file = lazy_open(&mut self.file, &self.path)?;
        file.write_all_at(&checkpoint::encode(c), 0)?;
        if c.clean {
            return Ok(());
        }
        file.sync_data()
    }

    /// No checkpoint was read at open or written since.
    pub(crate) fn is_unwritten(&self) -> bool {
        self.last.is_none() && self.file.is_none()
    }

    /// Takes the checkpoint already on disk as the last one written.
    pub(crate) fn resume_from(&mut self, on_disk: Option<Checkpoint>) {
        self.last = on_disk;
    }

    /// The last checkpoint written: its next offset (0 if none), the time
    /// since, and its `(segment_base, position)`.
    pub(super) fn last_written(&self) -> (u64, Duration, Option<(u64, u64)>) {
        let at = self.last.map(|c| (c.segment_base, c.position));
        (self.last.map_or(0, |c| c.next_offset), self.last_time.elapsed(), at)
    }
}

/// Under `PageCache`, the writer itself records a live checkpoint once this
/// many bytes were appended since its last one (a `pwrite` of 68 bytes and of
/// the pending index entries: cheap next to 2 MiB of appends): the scan after
/// a process crash stays this small however fast the writer is, where the
/// background thread's ticks (every 100 ms at most) would leave up to 100 ms
/// of writes to scan.
pub(crate) const LIVE_CHECKPOINT_BYTES: u64 = 2 * 1024 * 1024;

impl super::Writer {
    /// Writes a live checkpoint of what is written now (no fsync). Does
    /// nothing when there is no live file, when its file is not open yet
    /// (`LogInner::write_live_checkpoint` creates it, outside the writer
    /// lock), or when the active segment's last batch was not written by
    /// this process (then only an fsynced one will do).
    pub(super) fn write_live(&mut self) -> Result<()> {
        let (Some(live), Some(last_batch)) = (self.live.as_mut(), self.last_batch) else {
            return Ok(());
        };
        let Some(file) = &live.file else {
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
        file.write_all_at(&checkpoint::encode_live(&c), 0)
            .map_err(|e| Error::io("writing live checkpoint", &live.path, e))?;
        live.last = Some(c);
        live.last_time = Instant::now();
        self.live_pending = 0;
        Ok(())
    }
}

/// The clean checkpoint a clean open trusted, left on disk as it was: opening
/// a cleanly closed partition writes and fsyncs nothing (reopening 1,000
/// partitions would otherwise wait for 1,000 fdatasyncs, and closing them
/// unchanged for 4,000 more).
#[derive(Debug)]
pub(crate) struct CleanMark {
    path: PathBuf,
    on_disk: Checkpoint,
}

impl CleanMark {
    pub(crate) fn new(path: PathBuf, on_disk: Checkpoint) -> CleanMark {
        CleanMark { path, on_disk }
    }
}

impl super::Writer {
    /// Rewrites the clean checkpoint of a clean open as not clean, before the
    /// first change to the log (an append or a truncation; the caller holds
    /// the writer lock). In the page cache at once, so a process crash from
    /// here on finds it not clean; the file joins `unsynced`, so the fsync
    /// round that first makes any change durable makes this rewrite durable
    /// too (a power loss can never leave the clean flag with records after it).
    #[cold]
    pub(super) fn unmark_clean(&mut self) -> Result<()> {
        let Some(mark) = self.clean_on_disk.as_ref() else {
            return Ok(());
        };
        let c = Checkpoint {
            clean: false,
            ..mark.on_disk
        };
        let file = crate::fs::open_rw(&mark.path, "opening recovery checkpoint")?;
        file.write_all_at(&checkpoint::encode(&c), 0)
            .map_err(|e| Error::io("writing recovery checkpoint", &mark.path, e))?;
        self.unsynced.push((std::sync::Arc::new(file), mark.path.clone()));
        self.clean_on_disk = None;
        Ok(())
    }
}

/// The live checkpoint file of a partition (see the module docs).
#[derive(Debug)]
pub(crate) struct LiveFile {
    /// Opened (created) by the first write, as `CheckpointState::file`.
    file: Option<File>,
    /// A thread is creating `file` outside the writer lock
    /// (`LogInner::write_live_checkpoint`).
    creating: bool,
    path: PathBuf,
    boot_id: [u8; 16],
    last: Option<LiveCheckpoint>,
    last_time: Instant,
}

impl LiveFile {
    pub(crate) fn new(path: PathBuf, boot_id: [u8; 16]) -> LiveFile {
        LiveFile {
            file: None,
            creating: false,
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
        lazy_open(&mut self.file, &self.path)
            .and_then(|f| f.write_all_at(&[0u8; checkpoint::LIVE_LEN], 0))
            .map_err(|e| Error::io("invalidating live checkpoint", &self.path, e))?;
        self.last = None;
        Ok(())
    }

    /// The last live checkpoint written: its next offset (0 if none), the
    /// time since, and its `(segment_base, position)`.
    pub(super) fn last_written(&self) -> (u64, Duration, Option<(u64, u64)>) {
        let at = self.last.map(|c| (c.segment_base, c.position));
        (self.last.map_or(0, |c| c.next_offset), self.last_time.elapsed(), at)
    }
}

impl LogInner {
    /// fsyncs everything and records a recovery checkpoint (`clean` at
    /// close, the one checkpoint that is not fsynced itself).
    pub(crate) fn write_checkpoint(&self, clean: bool) -> Result<()> {
        let mut ck = self.checkpoint.lock();
        self.check_poisoned()?;
        // A round of its own (rather than sync_to) so the snapshot describes
        // exactly what this checkpoint covers.
        let snap = self.sync_round(true)?;
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
        ck.write(&c).map_err(|e| {
            self.poison(Error::io("writing recovery checkpoint", &ck.path, copy_io_error(&e)));
            Error::io("writing recovery checkpoint", &ck.path, e)
        })?;
        #[cfg(feature = "fault-injection")]
        if !clean {
            crate::testing::synced(|| crate::testing::SyncEvent::File(ck.path.clone()));
        }
        ck.last = Some(c);
        ck.last_time = Instant::now();
        Ok(())
    }

    /// A checkpoint that may go backwards (after a truncation).
    pub(crate) fn write_checkpoint_after_truncate(&self) -> Result<()> {
        self.checkpoint.lock().last = None;
        self.write_checkpoint(false)
    }

    /// Takes the writer lock and writes a live checkpoint (see `Writer::write_live`).
    ///
    /// The partition's first live checkpoint creates its file, before the
    /// lock is taken: an inode allocation can take milliseconds (ext4
    /// without a journal skips recently freed inodes one by one), and a
    /// producer must not wait for it behind the writer lock. The background
    /// tick gets here for every written partition within its first second,
    /// and an append every 2 MiB, after releasing the lock (`append`).
    pub(crate) fn write_live_checkpoint(&self) -> Result<()> {
        // Closed or abandoned (set under the writer lock): the close's
        // checkpoint is the last word, and an abandoned directory is being
        // deleted.
        let missing = {
            let mut w = self.writer.lock();
            if self.closed.load(Ordering::Acquire) {
                return Ok(());
            }
            match w.live.as_mut().filter(|l| l.file.is_none()) {
                // Another thread is creating it: its checkpoint will do.
                Some(live) if live.creating => return Ok(()),
                Some(live) => {
                    live.creating = true;
                    live.path.clone()
                }
                None => return w.write_live(),
            }
        };
        let created = crate::fs::open_rw(&missing, "creating live checkpoint");
        let mut w = self.writer.lock();
        let Some(live) = w.live.as_mut() else {
            return Ok(());
        };
        live.creating = false;
        live.file.get_or_insert(created?);
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        w.write_live()
    }
}

/// The file in `slot`, opened (created if missing) at `path` the first time.
/// Creating a topic of 1,000 partitions creates 2,000 files fewer this way
/// (creations are most of what a new partition costs, see BENCHMARKS.md).
fn lazy_open<'a>(slot: &'a mut Option<File>, path: &std::path::Path) -> io::Result<&'a File> {
    if slot.is_none() {
        let file = crate::fs::create_or_open(path)?;
        *slot = Some(file);
    }
    slot.as_ref()
        .ok_or_else(|| io::Error::other("checkpoint file not open"))
}

/// A copy of `e` for the poisoned state, while the caller gets `e` itself: the
/// same OS error code, or else the same kind and message.
fn copy_io_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}
