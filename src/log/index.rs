//! The in-memory sparse indexes of one segment, and their files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::batch::BatchHeader;
use crate::format::index::{self as fmt, Kind, OffsetEntry, Seal, TimeEntry};

/// Bytes of log between two offset index entries.
pub const INDEX_INTERVAL: u32 = 4096;

/// Offset and time index of a segment.
#[derive(Debug, Clone)]
pub struct SegIndex {
    /// Sparse offset index, increasing.
    pub offsets: Vec<OffsetEntry>,
    /// Sparse time index, timestamps non-decreasing.
    pub times: Vec<TimeEntry>,
    /// Largest timestamp in the segment (`i64::MIN` when empty).
    pub max_ts: i64,
    /// Relative offset after the last indexed batch.
    pub next_rel: u32,
    /// Position of the batch the last offset entry points at (0 when none).
    last_pos: u32,
    /// Entries already written to the active index files.
    persisted: (usize, usize),
}

impl Default for SegIndex {
    fn default() -> SegIndex {
        SegIndex {
            offsets: Vec::new(),
            times: Vec::new(),
            max_ts: i64::MIN,
            next_rel: 0,
            last_pos: 0,
            persisted: (0, 0),
        }
    }
}

impl SegIndex {
    /// Accounts for a batch appended (or recovered) at `pos`.
    pub fn on_batch(&mut self, seg_base: u64, pos: u32, h: &BatchHeader) {
        let rel = h.base_offset.saturating_sub(seg_base) as u32;
        let last_rel = rel.saturating_add(h.last_offset_delta);
        if h.count > 0 {
            // A batch whose records compaction removed has no timestamp.
            self.max_ts = self.max_ts.max(h.max_timestamp);
        }
        self.next_rel = last_rel.saturating_add(1);
        if pos >= self.last_pos.saturating_add(INDEX_INTERVAL) {
            self.offsets.push(OffsetEntry {
                rel_offset: rel,
                position: pos,
            });
            self.last_pos = pos;
            self.push_time(last_rel);
        }
    }

    fn push_time(&mut self, last_rel: u32) {
        let grows = self
            .times
            .last()
            .is_none_or(|t| self.max_ts > t.timestamp && last_rel > t.rel_offset);
        if grows && self.max_ts != i64::MIN {
            self.times.push(TimeEntry {
                timestamp: self.max_ts,
                rel_offset: last_rel,
            });
        }
    }

    /// Byte position from which the next batch gets an offset index entry.
    pub fn next_entry_pos(&self) -> u32 {
        self.last_pos.saturating_add(INDEX_INTERVAL)
    }

    /// Adds the final time entry of a segment being sealed.
    pub fn finish(&mut self) {
        if self.next_rel > 0 {
            self.push_time(self.next_rel - 1);
        }
    }

    /// Byte position of the last indexed batch starting at or before `rel`.
    pub fn position_for(&self, rel: u32) -> u32 {
        let i = self.offsets.partition_point(|e| e.rel_offset <= rel);
        i.checked_sub(1)
            .and_then(|i| self.offsets.get(i))
            .map_or(0, |e| e.position)
    }

    /// Relative offset from which a scan for the first record with timestamp
    /// `>= ts` must start: after the last entry whose max timestamp is `< ts`.
    pub fn scan_start_for_time(&self, ts: i64) -> u32 {
        let i = self.times.partition_point(|e| e.timestamp < ts);
        i.checked_sub(1)
            .and_then(|i| self.times.get(i))
            .map_or(0, |e| e.rel_offset.saturating_add(1))
    }

    /// Keeps only what describes bytes before `pos`, where relative offset
    /// `next_rel` starts (recovery resumes scanning there).
    pub fn retain_before(&mut self, pos: u32, next_rel: u32) {
        self.offsets.retain(|e| e.position < pos && e.rel_offset < next_rel);
        self.times.retain(|t| t.rel_offset < next_rel);
        self.next_rel = next_rel;
        self.last_pos = self.offsets.last().map_or(0, |e| e.position);
        self.persisted = (self.offsets.len(), self.times.len());
    }

    /// Loads an unsealed (active) index pair; anything unreadable gives empty indexes.
    /// Recovery only (see [`map_decode`]).
    pub fn load_active(index_path: &Path, time_path: &Path, base: u64) -> SegIndex {
        let offsets = map_decode(index_path, fmt::decode_offset)
            .filter(|f| f.base_offset == base && f.seal.is_none())
            .map(|f| f.entries)
            .unwrap_or_default();
        let times = map_decode(time_path, fmt::decode_time)
            .filter(|f| f.base_offset == base && f.seal.is_none())
            .map(|f| f.entries)
            .unwrap_or_default();
        SegIndex {
            last_pos: offsets.last().map_or(0, |e| e.position),
            persisted: (offsets.len(), times.len()),
            offsets,
            times,
            ..SegIndex::default()
        }
    }

    /// Loads a sealed index pair if both files are sealed, match the segment and agree.
    pub fn load_sealed(index_path: &Path, time_path: &Path, base: u64, log_len: u64) -> Option<SegIndex> {
        let o = read_decode(index_path, fmt::decode_offset)?;
        let t = read_decode(time_path, fmt::decode_time)?;
        let (os, ts) = (o.seal?, t.seal?);
        if o.base_offset != base || t.base_offset != base || os != ts || os.log_len != log_len {
            return None;
        }
        let next_rel = u32::try_from(os.next_offset.checked_sub(base)?).ok()?;
        if o.entries
            .iter()
            .any(|e| u64::from(e.position) >= log_len || e.rel_offset >= next_rel)
            || t.entries.iter().any(|e| e.rel_offset >= next_rel)
        {
            return None;
        }
        Some(SegIndex {
            last_pos: o.entries.last().map_or(0, |e| e.position),
            persisted: (o.entries.len(), t.entries.len()),
            offsets: o.entries,
            times: t.entries,
            max_ts: os.max_ts,
            next_rel,
        })
    }

    /// Writes both files sealed (whole-file replace; they are caches).
    pub fn write_sealed(&self, index_path: &Path, time_path: &Path, base: u64, log_len: u64) -> Result<()> {
        let seal = Seal {
            log_len,
            next_offset: base + u64::from(self.next_rel),
            max_ts: self.max_ts,
        };
        let mut raw = Vec::with_capacity(self.offsets.len() * 8);
        for e in &self.offsets {
            raw.extend_from_slice(&fmt::encode_offset_entry(*e));
        }
        crate::fs::write_cache(index_path, &fmt::encode_sealed(Kind::Offset, base, seal, &raw))?;
        raw.clear();
        for e in &self.times {
            raw.extend_from_slice(&fmt::encode_time_entry(*e));
        }
        crate::fs::write_cache(time_path, &fmt::encode_sealed(Kind::Time, base, seal, &raw))
    }

    /// Appends entries not yet written to the active index files, creating
    /// the files first once an entry lies at or past `INDEX_FILES_FROM`
    /// (before that, nothing is written: see `ActiveIndexFiles`).
    pub fn persist_pending(&mut self, files: &ActiveIndexFiles) -> Result<()> {
        let (mut po, mut pt) = self.persisted;
        if po == self.offsets.len() && pt == self.times.len() {
            return Ok(());
        }
        let created_now = files.files.get().is_none();
        let Some((offsets, times)) = files.files_for(self.last_pos)? else {
            return Ok(());
        };
        if created_now {
            // New files hold only their header.
            (po, pt) = (0, 0);
        }
        let mut buf = Vec::new();
        for e in self.offsets.get(po..).unwrap_or_default() {
            buf.extend_from_slice(&fmt::encode_offset_entry(*e));
        }
        let at = (fmt::HEADER_LEN + po * 8) as u64;
        offsets
            .write_all_at(&buf, at)
            .map_err(|e| Error::io("writing offset index", &files.offsets_path, e))?;
        buf.clear();
        for e in self.times.get(pt..).unwrap_or_default() {
            buf.extend_from_slice(&fmt::encode_time_entry(*e));
        }
        let at = (fmt::HEADER_LEN + pt * 12) as u64;
        times
            .write_all_at(&buf, at)
            .map_err(|e| Error::io("writing time index", &files.times_path, e))?;
        self.persisted = (self.offsets.len(), self.times.len());
        Ok(())
    }
}

fn read_decode<E>(
    path: &Path,
    decode: fn(&[u8]) -> Result<fmt::IndexFile<E>, crate::format::DecodeError>,
) -> Option<fmt::IndexFile<E>> {
    let bytes = crate::fs::read_optional(path).ok()??;
    decode(&bytes).ok()
}

/// [`read_decode`] straight from a read-only mapping, without copying the
/// file into as many fresh heap pages first (a visible share of a reopen
/// after a crash). Only for recovery: a mapping
/// must not outlive a shrink of its file (`SIGBUS`), and while a log is
/// being opened no other thread of it exists to cut an index file (the
/// directory lock keeps other processes out). Later loads of sealed indexes
/// run next to `Log::truncate`, which cuts index files in place: they read.
fn map_decode<E>(
    path: &Path,
    decode: fn(&[u8]) -> Result<fmt::IndexFile<E>, crate::format::DecodeError>,
) -> Option<fmt::IndexFile<E>> {
    let file = std::fs::File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    let map = super::mmap::SegmentMap::read_only(&file, len).ok()?;
    decode(map.bytes()).ok()
}

/// Byte position of the active segment from which its index files exist:
/// they are created by the first persist of an index entry at or past it (256
/// entries at one per `INDEX_INTERVAL`). A partition that never gets this far
/// has no index files: they are caches, and without them a read below the
/// position of a reopen walks at most this many bytes of batch headers;
/// creating two files per partition would be most of what a new or
/// little-used partition costs (BENCHMARKS.md, "partitions").
pub const INDEX_FILES_FROM: u32 = 256 * INDEX_INTERVAL;

/// The index files of the active segment: opened if they exist, else created
/// by the first [`SegIndex::persist_pending`] with an entry at or past
/// `INDEX_FILES_FROM`.
#[derive(Debug)]
pub struct ActiveIndexFiles {
    /// Both files, once opened or created. Set under the writer lock only.
    files: std::sync::OnceLock<(Arc<File>, Arc<File>)>,
    base: u64,
    offsets_path: std::path::PathBuf,
    times_path: std::path::PathBuf,
}

impl ActiveIndexFiles {
    /// Opens the active index files if either exists, with a fresh unsealed
    /// header, keeping the entries `index` counts as persisted (those it was
    /// loaded from, a prefix of the file's) and writing the rest, so a reopen
    /// after a crash does not rewrite a large segment's whole index. Files
    /// already in that state are not written (a clean reopen dirties no
    /// page). Creates nothing when neither exists and `index` has no entry at
    /// or past `INDEX_FILES_FROM`.
    pub fn open(index_path: &Path, time_path: &Path, base: u64, index: &mut SegIndex) -> Result<ActiveIndexFiles> {
        let files = ActiveIndexFiles {
            files: std::sync::OnceLock::new(),
            base,
            offsets_path: index_path.to_path_buf(),
            times_path: time_path.to_path_buf(),
        };
        if index_path.exists() || time_path.exists() {
            files.create(index.persisted)?;
        }
        index.persist_pending(&files)?;
        Ok(files)
    }

    /// The open files, creating them first when the last entry's position
    /// `last_pos` reached `INDEX_FILES_FROM`; `None` while they are not needed yet.
    fn files_for(&self, last_pos: u32) -> Result<Option<(&File, &File)>> {
        if self.files.get().is_none() && last_pos >= INDEX_FILES_FROM {
            self.create((0, 0))?;
        }
        Ok(self.files.get().map(|(o, t)| (&**o, &**t)))
    }

    /// Opens (creating if missing) both files, each cut to its header and
    /// the `kept` (offset, time) entries, with the header rewritten.
    fn create(&self, kept: (usize, usize)) -> Result<()> {
        let open = |p: &Path, kind: Kind, kept: usize| -> Result<File> {
            let f = crate::fs::open_rw(p, "opening index file")?;
            let len = (fmt::HEADER_LEN + kept * kind.entry_len()) as u64;
            let header = fmt::encode_header(kind, self.base);
            let mut on_disk = [0u8; fmt::HEADER_LEN];
            let current = f.metadata().is_ok_and(|m| m.len() == len)
                && f.read_exact_at(&mut on_disk, 0).is_ok()
                && on_disk == header;
            if !current {
                f.set_len(len)
                    .and_then(|()| f.write_all_at(&header, 0))
                    .map_err(|e| Error::io("resetting index file", p, e))?;
            }
            Ok(f)
        };
        let offsets = open(&self.offsets_path, Kind::Offset, kept.0)?;
        let times = open(&self.times_path, Kind::Time, kept.1)?;
        let _ = self.files.set((Arc::new(offsets), Arc::new(times)));
        Ok(())
    }

    /// Handles to fsync both files without holding the writer lock (`None`
    /// while they are not created).
    pub fn handles(&self) -> Option<(Arc<File>, Arc<File>)> {
        self.files.get().map(|(o, t)| (Arc::clone(o), Arc::clone(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(base: u64, count: u32, max_ts: i64) -> BatchHeader {
        BatchHeader {
            len: 100,
            crc: 0,
            attributes: 0,
            base_offset: base,
            base_timestamp: max_ts,
            max_timestamp: max_ts,
            count,
            version: crate::format::batch::V1,
            last_offset_delta: count - 1,
            producer_id: 0,
        }
    }

    #[test]
    fn sparse_entries_and_lookups() {
        let mut ix = SegIndex::default();
        let mut pos = 0u32;
        for i in 0..100u64 {
            ix.on_batch(1000, pos, &h(1000 + i * 10, 10, i as i64 * 100));
            pos += 1000;
        }
        assert!((15..=25).contains(&ix.offsets.len()), "{}", ix.offsets.len());
        // rel 555 lives in the batch starting at rel 550 (pos 55_000); the
        // nearest entry at or before it is at most INDEX_INTERVAL bytes earlier.
        let p = ix.position_for(555);
        assert!(p <= 55_000 && 55_000 - p <= INDEX_INTERVAL + 1000);
        assert_eq!(ix.position_for(0), 0);
        ix.finish();
        assert_eq!(ix.times.last().unwrap().timestamp, 9900);
        assert_eq!(ix.scan_start_for_time(i64::MIN), 0);
        let s = ix.scan_start_for_time(5000);
        assert!(s <= 500, "{s}");
    }
}
