//! One segment: a `.log` file of batches, mapped, plus its index files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use super::index::SegIndex;
use super::mmap::SegmentMap;
use crate::error::{Error, Result};
use crate::format::batch::BatchHeader;
use crate::format::walk::{Expect, Stop, StopKind, Walker};

/// A segment of a partition's log.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first record.
    pub base: u64,
    /// The `.log` file.
    pub path: PathBuf,
    /// The mapping readers read.
    pub map: Arc<SegmentMap>,
    /// A handle for fsync, while the segment may hold unsynced bytes (active
    /// segments). Sealed segments opened from disk keep no descriptor: their
    /// mapping stays valid without it, and a large log of small segments
    /// must not run into the process's file-descriptor limit.
    pub file: Option<Arc<File>>,
    /// Indexes; `None` for a sealed segment whose index is not loaded yet.
    pub index: RwLock<Option<SegIndex>>,
}

/// File name of a segment: its base offset on 20 digits.
pub fn file_stem(base: u64) -> String {
    format!("{base:020}")
}

/// Parses a segment file name (`<20 digits>.log`) back to its base offset.
pub fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The three paths of a segment.
pub fn paths(dir: &Path, base: u64) -> (PathBuf, PathBuf, PathBuf) {
    let stem = file_stem(base);
    (
        dir.join(format!("{stem}.log")),
        dir.join(format!("{stem}.index")),
        dir.join(format!("{stem}.timeindex")),
    )
}

/// Result of scanning batches from a position.
#[derive(Debug)]
pub struct ScanEnd {
    /// Offset after the last valid batch.
    pub next_offset: u64,
    /// Where and why the scan stopped: at the end (zeros or end of bytes), at
    /// damage, or at an intact batch of a newer format version (not damage:
    /// nothing may be cut).
    pub stop: Stop,
}

/// Walks the batches in `bytes` from `pos` (see [`Walker`]: zeros to the
/// end are preallocated room), expecting `next_offset` first, checking every
/// CRC and record, feeding `on_batch` with each batch's position and header.
pub fn scan(bytes: &[u8], pos: usize, next_offset: u64, mut on_batch: impl FnMut(usize, &BatchHeader)) -> ScanEnd {
    let mut walk = Walker::new(bytes, pos, Expect::Exactly(next_offset))
        .zero_tail()
        .validate_records();
    let mut next_offset = next_offset;
    let stop = loop {
        match walk.next_batch() {
            Ok(b) => {
                on_batch(b.pos, &b.header);
                next_offset = b.header.next_offset();
            }
            Err(stop) => break stop,
        }
    };
    ScanEnd { next_offset, stop }
}

impl Segment {
    /// Opens a sealed segment read-only (index loaded lazily).
    pub fn open_sealed(dir: &Path, base: u64) -> Result<Segment> {
        let (path, _, _) = paths(dir, base);
        let file = File::open(&path).map_err(|e| Error::io("opening segment", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading segment size", &path, e))?
            .len();
        let len = usize::try_from(len).map_err(|_| Error::Corruption {
            path: path.clone(),
            position: 0,
            reason: "segment larger than the address space".into(),
        })?;
        let map = SegmentMap::read_only(&file, len).map_err(|e| Error::io("mapping segment", &path, e))?;
        Ok(Segment {
            base,
            path,
            map,
            file: None,
            index: RwLock::new(None),
        })
    }

    /// Size in bytes of the written part.
    pub fn size(&self) -> u64 {
        self.map.published() as u64
    }

    /// Runs `f` on the loaded index, loading (or rebuilding) a sealed one first.
    pub fn with_index<T>(&self, f: impl FnOnce(&SegIndex) -> T) -> T {
        if let Some(ix) = self.index.read().as_ref() {
            return f(ix);
        }
        let mut guard = self.index.write();
        let ix = guard.get_or_insert_with(|| self.load_sealed_index());
        f(ix)
    }

    fn load_sealed_index(&self) -> SegIndex {
        let (_, ipath, tpath) = paths(self.path.parent().unwrap_or(Path::new(".")), self.base);
        let len = self.size();
        if let Some(ix) = SegIndex::load_sealed(&ipath, &tpath, self.base, len) {
            return ix;
        }
        // A cache: rebuild from the log. Damage stops the rebuild; readers that
        // reach it get Error::Corruption from the read path.
        let mut ix = SegIndex::default();
        let end = scan(self.map.bytes(), 0, self.base, |pos, h| {
            ix.on_batch(self.base, pos as u32, h)
        });
        ix.finish();
        // Best effort: a failed write only means another rebuild next time.
        // Not for a segment retention already deleted (a reader may still
        // hold it): that would leave index files without a log.
        if end.stop.damage().is_none() && self.path.exists() {
            let _ = ix.write_sealed(&ipath, &tpath, self.base, len);
        }
        ix
    }

    /// Largest timestamp in the segment.
    pub fn max_ts(&self) -> i64 {
        self.with_index(|ix| ix.max_ts)
    }

    /// The error for a walk of this segment that stopped at `stop`: a newer
    /// format version, or `Corruption` naming the file and the position.
    pub fn stop_error(&self, stop: Stop) -> Error {
        match stop.kind {
            StopKind::Unsupported(found) => Error::UnsupportedVersion {
                path: self.path.clone(),
                found,
                supported: crate::format::batch::VERSION,
            },
            StopKind::Codec(c) => Error::CodecUnavailable {
                path: self.path.clone(),
                codec: c.name(),
            },
            _ => self.corruption(stop.at, stop.to_string()),
        }
    }

    /// A corruption error at `position` of this segment.
    pub fn corruption(&self, position: usize, reason: impl Into<String>) -> Error {
        Error::Corruption {
            path: self.path.clone(),
            position: position as u64,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory holding batches of a codec this build lacks is refused at
    /// open, never cut (only built without the `zstd` feature).
    #[cfg(not(feature = "zstd"))]
    #[test]
    fn a_codec_this_build_lacks_is_refused_not_cut() {
        use crate::{Durability, LogConfig, Record, TopicConfig};
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::from_topic(&TopicConfig::new(1), Durability::PageCache);
        let log = crate::log::Log::open(dir.path(), config.clone()).unwrap();
        log.append(&[Record::new("plain")]).unwrap();
        let end = log.inner.segments().last().unwrap().size();
        log.close().unwrap();
        drop(log);
        // A zstd batch at offset 1 after it, with a valid CRC.
        let mut b = vec![0u8; crate::format::batch::HEADER_LEN_V2];
        b[..4].copy_from_slice(&crate::format::batch::MAGIC);
        b[12] = 2;
        b[13] = crate::format::compress::Codec::Zstd.attribute_bits();
        b[16..24].copy_from_slice(&1u64.to_le_bytes());
        b[40..44].copy_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[9, 0, 0, 0, 1, 2, 3, 4]);
        let len = b.len() as u32;
        b[4..8].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&b[12..]);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
        let path = dir.path().join("00000000000000000000.log");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&b, end)
            .unwrap();
        std::fs::remove_file(dir.path().join("recovery.ckpt")).unwrap();
        let before = std::fs::read(&path).unwrap();
        match crate::log::Log::open(dir.path(), config) {
            Err(Error::CodecUnavailable { path: p, codec }) => assert_eq!((p, codec), (path.clone(), "zstd")),
            other => panic!("expected CodecUnavailable, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing may be cut");
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(file_stem(42), "00000000000000000042");
        assert_eq!(parse_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_name("42.log"), None);
        assert_eq!(parse_name("0000000000000000004x.log"), None);
        assert_eq!(parse_name("00000000000000000042.index"), None);
    }
}
