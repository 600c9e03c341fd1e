//! Opening a log: find the segments, trust what the checkpoint covers, scan
//! the rest, cut a torn or garbage tail, and record the result.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use super::checkpoint::{CheckpointState, LiveFile};
use super::group_commit::SyncState;
use super::index::{ActiveIndexFiles, SegIndex};
use super::mmap::{MapWriter, SegmentMap};
use super::notify::WaitList;
use super::segment::{self, Segment};
use super::{LogInner, Writer};
use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::format::checkpoint::{self, Checkpoint, LiveCheckpoint};
use crate::format::walk::{Expect, StopKind, Walker};
use crate::fs as lfs;
use crate::obs;

/// What opening a log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The previous shutdown was clean: nothing was scanned.
    pub clean: bool,
    /// Bytes of log checked batch by batch.
    pub scanned_bytes: u64,
    /// Bytes cut from the end (torn writes, garbage, unwritten preallocation excluded).
    pub truncated_bytes: u64,
    /// Segments removed because they followed damage.
    pub segments_removed: usize,
    /// Descriptions of the damage found, if any.
    pub damage: Vec<String>,
}

impl From<&RecoveryReport> for obs::Repairs {
    fn from(r: &RecoveryReport) -> obs::Repairs {
        obs::Repairs {
            clean: r.clean,
            scanned_bytes: r.scanned_bytes,
            truncated_bytes: r.truncated_bytes,
            segments_removed: r.segments_removed,
            damage: r.damage.len(),
        }
    }
}

pub(crate) const CHECKPOINT_FILE: &str = "recovery.ckpt";
pub(crate) const LIVE_FILE: &str = "recovery.live";

/// The partition's live checkpoint, if there is a valid one written on this
/// kernel boot (the only boot it may be trusted on).
pub(crate) fn live_checkpoint_of_this_boot(dir: &Path) -> Result<Option<LiveCheckpoint>> {
    let Some(id) = lfs::boot_id() else {
        return Ok(None);
    };
    Ok(lfs::read_optional(&dir.join(LIVE_FILE))?
        .and_then(|b| checkpoint::decode_live(&b).ok())
        .filter(|c| c.boot_id == id))
}

/// Opens (creating if needed) the log in `dir`: read the checkpoints, choose
/// where to start, open the trusted segments, scan the rest and cut damage,
/// set up the active segment, then record the result (see "Recovery" in
/// `ARCHITECTURE.md`).
pub(super) fn open(dir: &Path, config: LogConfig, topic: Arc<str>, partition: u32) -> Result<LogInner> {
    let _span = obs::log_open_span(&topic, partition);
    let started = obs::Timer::start();
    lfs::create_dir_durable(dir)?;
    // A compaction pass interrupted after its commit point is finished
    // first, one interrupted before it is undone (see `compact/swap.rs`).
    let compaction = super::compact::recover(dir)?;
    let mut bases = list_segments(dir)?;
    let ckpt_path = dir.join(CHECKPOINT_FILE);
    let ckpt = lfs::read_optional(&ckpt_path)?.and_then(|b| checkpoint::decode(&b).ok());
    let live = live_checkpoint_of_this_boot(dir)?;
    let mut r = Recovery {
        dir,
        config,
        report: RecoveryReport::default(),
        dir_dirty: false,
        created: false,
        unsynced: Vec::new(),
    };
    if bases.is_empty() {
        bases.push(r.create_first_segment(ckpt)?);
    }
    let start = r.choose_start(&bases, ckpt, live)?;
    let mut segments = open_trusted(dir, &bases, start.idx)?;
    let tail = r.scan_tail(&mut bases, &start, &mut segments)?;
    if bases.len() == 1 && tail.len == 0 && ckpt.is_none() && start.live.is_none() {
        // A log that never held a record (a close before the first one
        // leaves no checkpoint): nothing was scanned, nothing was lost.
        r.report.clean = true;
    }
    let active = open_active(&r.config, tail)?;
    segments.push(Arc::clone(&active.seg));
    if r.dir_dirty {
        lfs::sync_dir(dir)?;
    }
    // Nothing on disk claims anything about an empty log without a
    // checkpoint: a crash before its first append leaves what the next open
    // finds here again (no records), so nothing needs recording now.
    let empty = segments.len() == 1 && active.next_offset == active.seg.base;
    let nothing_to_record = empty && ckpt.is_none() && start.live.is_none();
    let mut inner = assemble(r, topic, partition, &start, segments, active)?;
    inner.compaction = Mutex::new(compaction);
    let inner = record_recovered(inner, &start, nothing_to_record)?;
    obs::recovered(&inner.topic, partition, started, (&inner.recovery).into());
    Ok(inner)
}

/// Where the scan of one `open` starts, chosen from the checkpoints found.
struct Start {
    /// The fsynced checkpoint, when it names an existing segment.
    hard: Option<Checkpoint>,
    /// The live checkpoint, when it is trusted (see `Recovery::choose_start`).
    live: Option<LiveCheckpoint>,
    /// Index in the segment list of the first segment to scan.
    idx: usize,
    /// What is trusted in that segment: the scan starts at its position and
    /// offset (position 0 and the segment's base without a checkpoint).
    at: Checkpoint,
}

/// What one `open` has found and done so far, carried from step to step.
struct Recovery<'a> {
    dir: &'a Path,
    config: LogConfig,
    report: RecoveryReport,
    /// Files were deleted: the directory needs an fsync before the log is used.
    dir_dirty: bool,
    /// The first segment was created (a new log): the directory needs an
    /// fsync before anything written to it is durable, which the writer's
    /// first fsync round does (nothing in the log can be lost before it).
    created: bool,
    /// Sealed segments written after the last fsynced checkpoint, for the
    /// writer's "unsynced" list (fsynced by the next fsynced checkpoint).
    unsynced: Vec<(Arc<fs::File>, PathBuf)>,
}

/// A segment being recovered: its open file and what its scan found.
struct Scanned {
    base: u64,
    file: fs::File,
    path: PathBuf,
    ipath: PathBuf,
    tpath: PathBuf,
    /// The file's length before any cut.
    len: usize,
    /// Position after the last valid batch.
    end_pos: usize,
    /// Offset after the last valid batch.
    next_offset: u64,
    /// The sparse index rebuilt by the scan (on top of the trusted part).
    index: SegIndex,
}

/// The recovered active segment, ready for the writer.
struct Active {
    seg: Arc<Segment>,
    map_writer: MapWriter,
    index_files: ActiveIndexFiles,
    next_offset: u64,
    first_ts: Option<i64>,
}

impl Recovery<'_> {
    /// Creates the first, empty segment of a log that has none (a new log),
    /// at the checkpoint's next offset if there is a checkpoint, else 0.
    fn create_first_segment(&mut self, ckpt: Option<Checkpoint>) -> Result<u64> {
        let base = ckpt.map_or(0, |c| c.next_offset);
        let (path, _, _) = segment::paths(self.dir, base);
        lfs::open_rw(&path, "creating segment")?;
        self.created = true;
        Ok(base)
    }

    /// Reads the checkpoints found into where the scan starts, and whether
    /// the previous shutdown was clean.
    fn choose_start(&mut self, bases: &[u64], ckpt: Option<Checkpoint>, live: Option<LiveCheckpoint>) -> Result<Start> {
        let first_base = bases.first().copied().unwrap_or(0);
        // A live checkpoint (same boot, so the page cache it describes survived)
        // is used when it is further than the fsynced one and its last batch is
        // where it says. What lies between the two was never fsynced: the sealed
        // segments there join the list the next fsynced checkpoint syncs, the
        // fsynced checkpoint on disk stays as it is (it is not clean: a live one
        // is ahead of it), and nothing is fsynced here (a reopen after a crash
        // must not write back a gigabyte of dirty pages before it returns).
        let hard_at = ckpt
            .filter(|c| bases.binary_search(&c.segment_base).is_ok())
            .map(|c| (c.segment_base, c.position));
        let live = live.filter(|l| {
            bases.binary_search(&l.segment_base).is_ok()
                && Some((l.segment_base, l.position)) > hard_at
                && live_holds(self.dir, l)
        });
        let hard = ckpt.filter(|_| hard_at.is_some());
        let ckpt = match live {
            Some(l) => {
                let from = hard_at.map_or(first_base, |(base, _)| base);
                for &base in bases.iter().filter(|&&b| b >= from && b < l.segment_base) {
                    self.unsynced.push(sync_later(segment::paths(self.dir, base).0)?);
                }
                Some(Checkpoint {
                    segment_base: l.segment_base,
                    position: l.position,
                    next_offset: l.next_offset,
                    max_ts: l.max_ts,
                    clean: false,
                })
            }
            None => ckpt,
        };
        // Where the scan starts: the checkpoint's segment and position, or everything.
        let (idx, at) = match ckpt.and_then(|c| bases.binary_search(&c.segment_base).ok().map(|i| (i, c))) {
            Some((i, c)) => (i, c),
            None => (
                0,
                Checkpoint {
                    segment_base: first_base,
                    position: 0,
                    next_offset: first_base,
                    max_ts: i64::MIN,
                    clean: false,
                },
            ),
        };
        self.report.clean = at.clean && idx == bases.len() - 1;
        Ok(Start { hard, live, idx, at })
    }

    /// Scans the segments from the start on, cutting damage and everything
    /// after it, and seals each scanned segment but the last, which it
    /// returns (it becomes the active segment).
    fn scan_tail(&mut self, bases: &mut Vec<u64>, start: &Start, segments: &mut Vec<Arc<Segment>>) -> Result<Scanned> {
        let last = bases.len() - 1;
        let mut i = start.idx;
        while i <= last {
            let base = bases.get(i).copied().unwrap_or(0);
            let mut s = self.open_segment(base, Some(&start.at).filter(|_| i == start.idx))?;
            let is_last = i == last;
            if !(is_last && self.report.clean) {
                let damaged = self.scan_segment(&mut s)?;
                self.cut_damage(bases, i, last, damaged, &mut s, start.live.is_some())?;
            }
            if i < bases.len() - 1 {
                segments.push(Arc::new(seal_scanned(self.dir, s)?));
                i += 1;
                continue;
            }
            return Ok(s);
        }
        Err(Error::Corruption {
            path: self.dir.to_path_buf(),
            position: 0,
            reason: "no active segment after recovery".into(),
        })
    }

    /// Opens segment `base` for its scan, starting after what `from` (the
    /// start checkpoint, for the first segment scanned) covers, unless the
    /// file is shorter than that.
    fn open_segment(&mut self, base: u64, from: Option<&Checkpoint>) -> Result<Scanned> {
        let (path, ipath, tpath) = segment::paths(self.dir, base);
        let file = lfs::open_rw(&path, "opening segment")?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading segment size", &path, e))?
            .len() as usize;
        if let Some(start) = from.filter(|c| c.position as usize > len) {
            // The file is shorter than the checkpoint says it was: whatever the
            // clean flag claims, scan the segment from its start.
            self.report.clean = false;
            self.report.damage.push(format!(
                "{}: {len} bytes, shorter than the checkpoint's {}",
                path.display(),
                start.position
            ));
        }
        let (end_pos, next_offset, index) = match from.filter(|c| c.position as usize <= len) {
            Some(start) => {
                let mut ix = SegIndex::load_active(&ipath, &tpath, base);
                let next_rel = u32::try_from(start.next_offset.saturating_sub(base)).unwrap_or(u32::MAX);
                ix.retain_before(start.position as u32, next_rel);
                ix.max_ts = start.max_ts;
                (start.position as usize, start.next_offset, ix)
            }
            None => (0, base, SegIndex::default()),
        };
        Ok(Scanned {
            base,
            file,
            path,
            ipath,
            tpath,
            len,
            end_pos,
            next_offset,
            index,
        })
    }

    /// Checks the segment batch by batch from `s.end_pos`, indexing each
    /// valid batch, and moves `s.end_pos` / `s.next_offset` past the last
    /// one. Returns whether it stopped at damage (anything but the end of the
    /// file or a tail of zeros, which is preallocated space).
    fn scan_segment(&mut self, s: &mut Scanned) -> Result<bool> {
        let (base, pos0, index) = (s.base, s.end_pos, &mut s.index);
        let map = SegmentMap::read_only(&s.file, s.len).map_err(|e| Error::io("mapping segment", &s.path, e))?;
        let end = segment::scan(map.bytes(), pos0, s.next_offset, |p, h| {
            index.on_batch(base, p as u32, h)
        });
        let stop = &end.stop;
        self.report.scanned_bytes += (stop.pos - pos0) as u64;
        if let StopKind::Unsupported(found) = stop.kind {
            // Written by a newer logbus: refuse to open rather than cut it.
            return Err(Error::UnsupportedVersion {
                path: s.path.clone(),
                found,
                supported: crate::format::batch::VERSION,
            });
        }
        if let StopKind::Codec(c) = stop.kind {
            // Intact, in a codec this build lacks: refuse to open rather than cut it.
            return Err(Error::CodecUnavailable {
                path: s.path.clone(),
                codec: c.name(),
            });
        }
        let damaged = stop.damage().is_some();
        if damaged {
            self.report
                .damage
                .push(format!("{} at byte {}: {stop}", s.path.display(), stop.pos));
            self.report.truncated_bytes += (s.len - stop.pos) as u64;
        }
        s.end_pos = stop.pos;
        s.next_offset = end.next_offset;
        Ok(damaged)
    }

    /// After the scan of segment `bases[i]`: removes every later segment if
    /// it is damaged or the next one does not continue its offsets, cuts the
    /// file after its last valid batch, and makes that durable (fsync), or,
    /// when recovering from a live checkpoint, leaves it to the next fsynced
    /// checkpoint. `last` is the index of the last segment before any removal.
    fn cut_damage(
        &mut self,
        bases: &mut Vec<u64>,
        i: usize,
        last: usize,
        damaged: bool,
        s: &mut Scanned,
        from_live: bool,
    ) -> Result<()> {
        let expected = s.next_offset;
        let next_base = bases.get(i + 1).copied();
        if i != last && (damaged || next_base != Some(expected)) {
            // Everything after damage (or a gap) cannot be trusted: this
            // segment becomes the last one.
            if !damaged {
                self.report.damage.push(format!(
                    "{}: next segment does not start at offset {expected}",
                    s.path.display()
                ));
            }
            for &later in bases.get(i + 1..).unwrap_or_default() {
                remove_segment_files(self.dir, later)?;
                self.report.segments_removed += 1;
            }
            bases.truncate(i + 1);
            self.dir_dirty = true;
        }
        // The active segment keeps a tail the scan found to be all zeros:
        // it is the room preallocated for the next appends. Cutting it
        // would make a reopen wait for the kernel's writeback of those
        // pages (`ftruncate` waits on pages under I/O) and the writer
        // zero-fill it again right after.
        let keep_zero_tail = !damaged && i + 1 == bases.len() && s.len <= active_capacity(&self.config, s.end_pos);
        if s.end_pos < s.len && !keep_zero_tail {
            s.file
                .set_len(s.end_pos as u64)
                .map_err(|e| Error::io("truncating damaged tail", &s.path, e))?;
        }
        if !from_live && s.len > 0 {
            // (An empty file has nothing to make durable.)
            s.file
                .sync_all()
                .map_err(|e| Error::io("syncing recovered segment", &s.path, e))?;
        } else if i < last {
            // Synced with the others at the next fsynced checkpoint.
            self.unsynced.push(sync_later(s.path.clone())?);
        }
        Ok(())
    }
}

/// Opens the segments before the start (index `idx`) as sealed ones: the
/// checkpoint vouches for them, nothing in them is read.
fn open_trusted(dir: &Path, bases: &[u64], idx: usize) -> Result<Vec<Arc<Segment>>> {
    let mut segments = Vec::with_capacity(bases.len());
    for &base in bases.get(..idx).unwrap_or_default() {
        segments.push(Arc::new(Segment::open_sealed(dir, base)?));
    }
    Ok(segments)
}

/// A sealed segment the scan covered: writes its sealed index and reopens it
/// read-only with that index.
fn seal_scanned(dir: &Path, mut s: Scanned) -> Result<Segment> {
    s.index.finish();
    let _ = s.index.write_sealed(&s.ipath, &s.tpath, s.base, s.end_pos as u64);
    let seg = Segment::open_sealed(dir, s.base)?;
    *seg.index.write() = Some(s.index);
    Ok(seg)
}

/// Maps the last segment writable for appends from its end, with its index
/// files open for the entries to come.
fn open_active(config: &LogConfig, s: Scanned) -> Result<Active> {
    let Scanned {
        base,
        file,
        path,
        ipath,
        tpath,
        end_pos,
        next_offset,
        mut index,
        ..
    } = s;
    let capacity = active_capacity(config, end_pos);
    let fsync_handle = file.try_clone().map_err(|e| Error::io("opening segment", &path, e))?;
    let (map, map_writer) =
        SegmentMap::writable(file, capacity, end_pos).map_err(|e| Error::io("mapping segment", &path, e))?;
    map_writer
        .reserve_first_step()
        .map_err(|e| Error::io("extending segment", &path, e))?;
    let seg = Arc::new(Segment {
        base,
        path,
        map,
        file: Some(Arc::new(fsync_handle)),
        index: RwLock::new(None),
    });
    let index_files = ActiveIndexFiles::open(&ipath, &tpath, seg.base, &mut index)?;
    let first_ts = first_batch_ts(&seg);
    *seg.index.write() = Some(index);
    Ok(Active {
        seg,
        map_writer,
        index_files,
        next_offset,
        first_ts,
    })
}

/// Builds the log from the recovered segments, with its checkpoint files open.
fn assemble(
    r: Recovery<'_>,
    topic: Arc<str>,
    partition: u32,
    start: &Start,
    segments: Vec<Arc<Segment>>,
    active: Active,
) -> Result<LogInner> {
    let Recovery {
        dir,
        config,
        report,
        unsynced,
        created,
        ..
    } = r;
    let ckpt_path = dir.join(CHECKPOINT_FILE);
    // Both files are created by their first write.
    let live_file = lfs::boot_id().map(|id| LiveFile::new(dir.join(LIVE_FILE), id));
    let next_offset = active.next_offset;
    let start_offset = segments.first().map_or(next_offset, |s| s.base);
    let metrics = obs::LogMetrics::new(&topic);
    Ok(LogInner {
        dir: dir.to_path_buf(),
        retention: super::retention::Limits::new(config.retention_bytes, config.retention_ms),
        config,
        topic,
        partition,
        writer: Mutex::new(Writer {
            active: active.seg,
            map: Some(active.map_writer),
            index_files: Some(active.index_files),
            next_offset,
            unsynced,
            // Without an fsynced checkpoint, nothing says the segment's
            // directory entry is durable: a log created by an earlier open
            // that was closed empty never fsynced its directory.
            dir_dirty: created || start.hard.is_none(),
            first_ts: active.first_ts,
            last_retention: Instant::now(),
            body_lens: Vec::new(),
            compress: Default::default(),
            idx_next_pos: 0,
            idx_max_ts: i64::MIN,
            last_batch: None,
            clean_on_disk: None,
            live: live_file,
            live_pending: 0,
            appends: obs::AppendTally::default(),
        }),
        segments: RwLock::new(Arc::new(segments)),
        next_offset: AtomicU64::new(next_offset),
        start_offset: AtomicU64::new(start_offset),
        truncations: AtomicU64::new(0),
        txns: super::txn::OpenTxns::default(),
        // After a live-checkpoint recovery, only what the fsynced checkpoint
        // covers is known durable.
        sync: Mutex::new(SyncState::new(match (start.live, start.hard) {
            (Some(_), Some(h)) => h.next_offset,
            (Some(_), None) => start_offset,
            (None, _) => next_offset,
        })),
        sync_done: Condvar::new(),
        checkpoint: Mutex::new(CheckpointState::new(ckpt_path)),
        closed: AtomicBool::new(false),
        poisoned: AtomicBool::new(false),
        recovery: report,
        metrics,
        compaction: Mutex::new(Default::default()),
        compacting: Mutex::new(()),
        waiters: WaitList::default(),
        background: std::sync::OnceLock::new(),
        own_flusher: Mutex::new(None),
    })
}

/// Records the recovered state before any append: a checkpoint (or, after a
/// live-checkpoint recovery, the one on disk taken as the last; or none for
/// a new, empty log, `nothing_to_record`), then retention.
fn record_recovered(inner: LogInner, start: &Start, nothing_to_record: bool) -> Result<LogInner> {
    inner.writer.lock().sync_index_mirror();
    if nothing_to_record {
        // No fsync for a partition that holds nothing (creating a topic of
        // 1,000 partitions would wait for 4,000 of them).
    } else if start.live.is_some() {
        // The fsynced checkpoint on disk stays valid and not clean; the live
        // one too (recovery only cut bytes after it). Both go on from there.
        inner.checkpoint.lock().resume_from(start.hard);
    } else if let Some(hard) = start.hard.filter(|_| inner.recovery.clean) {
        // A clean open: the clean checkpoint stays on disk until the first
        // append or truncation rewrites it as not clean (before it changes
        // anything), and the fsync round that first makes such a change
        // durable fsyncs that rewrite too (see `Writer::unmark_clean`).
        inner.checkpoint.lock().resume_from(Some(hard));
        inner.writer.lock().clean_on_disk =
            Some(super::checkpoint::CleanMark::new(inner.dir.join(CHECKPOINT_FILE), hard));
    } else {
        // Durably record "not clean" before any append can happen; after a
        // recovery this also records the recovered end, so it is not scanned again.
        inner.write_checkpoint(false)?;
    }
    inner.enforce_retention_now()?;
    Ok(inner)
}

/// The mapping size of an active segment holding `end_pos` bytes.
fn active_capacity(config: &LogConfig, end_pos: usize) -> usize {
    (config.segment_bytes as usize).max(end_pos).max(1)
}

/// A handle on a segment for the writer's "unsynced" list: written after the
/// last fsynced checkpoint, it is fsynced by the next one.
fn sync_later(path: PathBuf) -> Result<(Arc<fs::File>, PathBuf)> {
    let f = fs::File::open(&path).map_err(|e| Error::io("opening segment", &path, e))?;
    Ok((Arc::new(f), path))
}

/// Whether a valid batch ending exactly at the live checkpoint's position,
/// with its next offset, starts at its `last_batch`.
fn live_holds(dir: &Path, l: &LiveCheckpoint) -> bool {
    let (path, _, _) = segment::paths(dir, l.segment_base);
    let Ok(file) = fs::File::open(&path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    if l.position > len || l.last_batch >= l.position {
        return false;
    }
    let Ok(map) = SegmentMap::read_only(&file, len as usize) else {
        return false;
    };
    let Some(batch) = map.bytes().get(l.last_batch as usize..l.position as usize) else {
        return false;
    };
    Walker::new(batch, 0, Expect::Any)
        .next_batch()
        .is_ok_and(|b| b.bytes.len() == batch.len() && b.header.next_offset() == l.next_offset)
}

fn first_batch_ts(seg: &Segment) -> Option<i64> {
    let mut walk = Walker::new(seg.map.bytes(), 0, Expect::Exactly(seg.base));
    walk.next_batch().ok().map(|b| b.header.base_timestamp)
}

/// Whether a log directory has a segment file with any nonzero byte (a
/// file of preallocated zeros holds no records; anything else, or a file that
/// cannot be read, counts as data to keep). A directory that cannot be listed
/// holds none. For the broker, which must tell an interrupted topic creation
/// (nothing written) from a topic whose metadata was lost.
pub(crate) fn holds_records(dir: &Path) -> bool {
    let has_data = |path: &Path| {
        let Ok(mut f) = fs::File::open(path) else {
            return true;
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match std::io::Read::read(&mut f, &mut buf) {
                Ok(0) => return false,
                Ok(n) if !crate::format::all_zero(buf.get(..n).unwrap_or_default()) => return true,
                Ok(_) => {}
                Err(_) => return true,
            }
        }
    };
    fs::read_dir(dir).is_ok_and(|files| {
        files
            .flatten()
            .any(|f| f.file_name().to_str().is_some_and(|n| n.ends_with(".log")) && has_data(&f.path()))
    })
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io("listing partition directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing partition directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        } else if let Some(base) = segment::parse_name(name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

pub(super) fn remove_segment_files(dir: &Path, base: u64) -> Result<()> {
    let (log, index, time) = segment::paths(dir, base);
    for p in [log, index, time] {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("deleting segment file", &p, e)),
        }
    }
    Ok(())
}
