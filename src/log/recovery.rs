//! Opening a log: find the segments, trust what the checkpoint covers, scan
//! the rest, cut a torn or garbage tail, and record the result.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use super::checkpoint::{CheckpointState, LiveFile};
use super::group_commit::SyncState;
use super::index::{ActiveIndexFiles, SegIndex};
use super::mmap::SegmentMap;
use super::notify::WaitList;
use super::segment::{self, Segment};
use super::{LogInner, Writer};
use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::format::checkpoint::{self, Checkpoint, LiveCheckpoint};
use crate::fs as lfs;

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

pub(super) fn open(dir: &Path, config: LogConfig, topic: Arc<str>, partition: u32) -> Result<LogInner> {
    lfs::create_dir_durable(dir)?;
    let mut bases = list_segments(dir)?;
    let ckpt_path = dir.join(CHECKPOINT_FILE);
    let ckpt = lfs::read_optional(&ckpt_path)?.and_then(|b| checkpoint::decode(&b).ok());
    let live = live_checkpoint_of_this_boot(dir)?;
    let mut report = RecoveryReport::default();
    let mut dir_dirty = false;

    if bases.is_empty() {
        let base = ckpt.map_or(0, |c| c.next_offset);
        let (path, _, _) = segment::paths(dir, base);
        lfs::open_rw(&path, "creating segment")?;
        bases.push(base);
        dir_dirty = true;
    }
    let last = bases.len() - 1;
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
            && live_holds(dir, l)
    });
    let mut unsynced = Vec::new();
    let hard = ckpt.filter(|_| hard_at.is_some());
    let ckpt = match live {
        Some(l) => {
            let from = hard_at.map_or(first_base, |(base, _)| base);
            for &base in bases.iter().filter(|&&b| b >= from && b < l.segment_base) {
                unsynced.push(sync_later(segment::paths(dir, base).0)?);
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
    let (start_idx, start) = match ckpt.and_then(|c| bases.binary_search(&c.segment_base).ok().map(|i| (i, c))) {
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
    report.clean = start.clean && start_idx == last;

    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
    for &base in bases.get(..start_idx).unwrap_or_default() {
        segments.push(Arc::new(Segment::open_sealed(dir, base)?));
    }

    let mut active: Option<(Arc<Segment>, super::mmap::MapWriter, SegIndex, u64)> = None;
    let mut i = start_idx;
    while i <= last {
        let base = bases.get(i).copied().unwrap_or(0);
        let (path, ipath, tpath) = segment::paths(dir, base);
        let file = lfs::open_rw(&path, "opening segment")?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading segment size", &path, e))?
            .len() as usize;
        if i == start_idx && (start.position as usize) > len {
            // The file is shorter than the checkpoint says it was: whatever the
            // clean flag claims, scan the segment from its start.
            report.clean = false;
            report.damage.push(format!(
                "{}: {len} bytes, shorter than the checkpoint's {}",
                path.display(),
                start.position
            ));
        }
        let (mut pos0, mut expected, mut index) = if i == start_idx && (start.position as usize) <= len {
            let mut ix = SegIndex::load_active(&ipath, &tpath, base);
            let next_rel = u32::try_from(start.next_offset.saturating_sub(base)).unwrap_or(u32::MAX);
            ix.retain_before(start.position as u32, next_rel);
            ix.max_ts = start.max_ts;
            (start.position as usize, start.next_offset, ix)
        } else {
            (0, base, SegIndex::default())
        };
        let is_last = i == last;
        let mut end_pos = pos0;
        let mut damaged = false;
        if !(is_last && report.clean) {
            let map = SegmentMap::read_only(&file, len).map_err(|e| Error::io("mapping segment", &path, e))?;
            let end = segment::scan(map.bytes(), pos0, expected, |p, h| index.on_batch(base, p as u32, h));
            report.scanned_bytes += (end.pos - pos0) as u64;
            if let Some(found) = end.unsupported {
                // Written by a newer logbus: refuse to open rather than cut it.
                return Err(Error::UnsupportedVersion {
                    path,
                    found,
                    supported: crate::format::batch::VERSION,
                });
            }
            if let Some(d) = &end.damage {
                report
                    .damage
                    .push(format!("{} at byte {}: {d}", path.display(), end.pos));
                damaged = true;
            }
            // The scan ends without damage only at the end of the file or at a
            // tail of zeros (preallocated space): anything else is cut bytes.
            let tail_nonzero = end.damage.is_some();
            if tail_nonzero {
                report.truncated_bytes += (len - end.pos) as u64;
            }
            end_pos = end.pos;
            expected = end.next_offset;
            pos0 = end.pos;
            drop(map);
            let next_base = bases.get(i + 1).copied();
            if !is_last && (damaged || next_base != Some(expected)) {
                // Everything after damage (or a gap) cannot be trusted: this
                // segment becomes the last one.
                if !damaged {
                    report.damage.push(format!(
                        "{}: next segment does not start at offset {expected}",
                        path.display()
                    ));
                }
                for &later in bases.get(i + 1..).unwrap_or_default() {
                    remove_segment_files(dir, later)?;
                    report.segments_removed += 1;
                }
                bases.truncate(i + 1);
                dir_dirty = true;
            }
            // The active segment keeps a tail the scan found to be all zeros:
            // it is the room preallocated for the next appends. Cutting it
            // would make a reopen wait for the kernel's writeback of those
            // pages (`ftruncate` waits on pages under I/O) and the writer
            // zero-fill it again right after.
            let keep_zero_tail = !tail_nonzero && i + 1 == bases.len() && len <= active_capacity(&config, end_pos);
            if end_pos < len && !keep_zero_tail {
                file.set_len(end_pos as u64)
                    .map_err(|e| Error::io("truncating damaged tail", &path, e))?;
            }
            if live.is_none() {
                file.sync_all()
                    .map_err(|e| Error::io("syncing recovered segment", &path, e))?;
            } else if i < last {
                // Synced with the others at the next fsynced checkpoint.
                unsynced.push(sync_later(path.clone())?);
            }
        }
        let _ = pos0;
        if i < bases.len() - 1 {
            // A sealed segment that the scan covered: write its sealed index.
            index.finish();
            let _ = index.write_sealed(&ipath, &tpath, base, end_pos as u64);
            let seg = Segment::open_sealed(dir, base)?;
            *seg.index.write() = Some(index);
            segments.push(Arc::new(seg));
            i += 1;
            continue;
        }
        // The active segment.
        let capacity = active_capacity(&config, end_pos);
        let fsync_handle = file.try_clone().map_err(|e| Error::io("opening segment", &path, e))?;
        let (map, writer) =
            SegmentMap::writable(file, capacity, end_pos).map_err(|e| Error::io("mapping segment", &path, e))?;
        writer
            .reserve_first_step()
            .map_err(|e| Error::io("extending segment", &path, e))?;
        let seg = Arc::new(Segment {
            base,
            path,
            map,
            file: Some(Arc::new(fsync_handle)),
            index: RwLock::new(None),
        });
        active = Some((seg, writer, index, expected));
        break;
    }
    let Some((seg, map_writer, mut index, next_offset)) = active else {
        return Err(Error::Corruption {
            path: dir.to_path_buf(),
            position: 0,
            reason: "no active segment after recovery".into(),
        });
    };
    let (_, ipath, tpath) = segment::paths(dir, seg.base);
    let index_files = ActiveIndexFiles::open(&ipath, &tpath, seg.base, &mut index)?;
    let max_ts = index.max_ts;
    let first_ts = first_batch_ts(&seg);
    *seg.index.write() = Some(index);
    segments.push(Arc::clone(&seg));
    if dir_dirty {
        lfs::sync_dir(dir)?;
    }

    let ckpt_file = lfs::open_rw(&ckpt_path, "opening recovery checkpoint")?;
    let live_file = match lfs::boot_id() {
        Some(id) => {
            let live_path = dir.join(LIVE_FILE);
            let file = lfs::open_rw(&live_path, "opening live checkpoint")?;
            Some(LiveFile::new(file, live_path, id))
        }
        None => None,
    };
    let start_offset = segments.first().map_or(next_offset, |s| s.base);
    let inner = LogInner {
        dir: dir.to_path_buf(),
        config,
        topic,
        partition,
        writer: Mutex::new(Writer {
            active: Arc::clone(&seg),
            map: Some(map_writer),
            index_files: Some(index_files),
            next_offset,
            unsynced,
            dir_dirty: false,
            first_ts,
            last_retention: Instant::now(),
            body_lens: Vec::new(),
            idx_next_pos: 0,
            idx_max_ts: i64::MIN,
            last_batch: None,
            live: live_file,
            live_pending: 0,
        }),
        segments: RwLock::new(Arc::new(segments)),
        next_offset: AtomicU64::new(next_offset),
        start_offset: AtomicU64::new(start_offset),
        truncations: AtomicU64::new(0),
        // After a live-checkpoint recovery, only what the fsynced checkpoint
        // covers is known durable.
        sync: Mutex::new(SyncState::new(match (live, hard) {
            (Some(_), Some(h)) => h.next_offset,
            (Some(_), None) => start_offset,
            (None, _) => next_offset,
        })),
        sync_done: Condvar::new(),
        checkpoint: Mutex::new(CheckpointState::new(ckpt_file, ckpt_path)),
        closed: AtomicBool::new(false),
        poisoned: AtomicBool::new(false),
        recovery: report,
        waiters: WaitList::default(),
        background: std::sync::OnceLock::new(),
        own_flusher: Mutex::new(None),
    };
    inner.writer.lock().sync_index_mirror();
    // Durably record "not clean" before any append can happen; after a
    // recovery this also records the recovered end, so it is not scanned again.
    let _ = max_ts;
    if live.is_some() {
        // The fsynced checkpoint on disk stays valid and not clean; the live
        // one too (recovery only cut bytes after it). Both go on from there.
        inner.checkpoint.lock().resume_from(hard);
    } else {
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
fn sync_later(path: std::path::PathBuf) -> Result<(Arc<fs::File>, std::path::PathBuf)> {
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
    match crate::format::batch::peek(batch) {
        crate::format::batch::Peek::Batch(h) => {
            u64::from(h.len) == l.position - l.last_batch
                && h.next_offset() == l.next_offset
                && crate::format::batch::crc_holds(batch)
        }
        _ => false,
    }
}

fn first_batch_ts(seg: &Segment) -> Option<i64> {
    match crate::format::batch::peek(seg.map.bytes()) {
        crate::format::batch::Peek::Batch(h) => Some(h.base_timestamp),
        _ => None,
    }
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
