//! One segment file read with `pread`, never mapped: another process may be
//! writing it (its active segment) or truncating it (sealing, recovery), and a
//! map of a file that shrinks under us would fault.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::batch::{self, BatchHeader, Records};
use crate::format::compress;
use crate::format::le;
use crate::format::walk::{Damage, Expect, StopKind, Walker};
use crate::log::consumed::ConsumedRecord;
use crate::log::mmap::SegmentMap;
use crate::log::segment;

/// Bytes read per `pread` while walking batches (a larger batch is read whole).
const CHUNK: usize = 1 << 20;

/// A segment `.log` file opened read-only.
#[derive(Debug)]
pub struct SegmentFile {
    path: PathBuf,
    base: Option<u64>,
    file: File,
}

/// How a batch checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchStatus {
    /// CRC, offsets and record framing are all right.
    Ok,
    /// The header is well formed but the batch is not (CRC, records or offset sequence).
    Bad(String),
}

/// One batch met by [`SegmentFile::walk`].
#[derive(Debug)]
pub struct WalkedBatch<'a> {
    /// Byte position of the batch in the file.
    pub position: u64,
    /// The decoded header.
    pub header: BatchHeader,
    /// Whether the batch is intact.
    pub status: BatchStatus,
    /// The bytes read around the batch; the batch starts at `map_pos`.
    pub(crate) map: &'a Arc<SegmentMap>,
    pub(crate) map_pos: usize,
}

impl WalkedBatch<'_> {
    /// The batch's bytes.
    pub fn bytes(&self) -> &[u8] {
        let end = self.map_pos + self.header.len as usize;
        self.map.bytes().get(self.map_pos..end).unwrap_or_default()
    }

    /// The batch's records: none from a bad batch. A good batch's records
    /// were all decoded when the walk checked it; a compressed one is
    /// decompressed (again) here, and its records share the decompressed batch.
    pub fn records<'r>(&'r self, topic: &'r Arc<str>, partition: u32) -> impl Iterator<Item = ConsumedRecord> + 'r {
        let good = self.status == BatchStatus::Ok;
        let base = self.header.base_offset;
        let mut out = Vec::new();
        if good && self.header.is_compressed() {
            let mut buf = Vec::new();
            if let Ok(plain) = compress::inflate(self.bytes(), &self.header, &mut buf) {
                let map = SegmentMap::from_vec(buf);
                out.extend(
                    Records::new(map.bytes(), plain)
                        .map_while(Result::ok)
                        .map(|r| ConsumedRecord::new(topic, partition, base, &map, 0, r)),
                );
            }
        } else if good {
            out.extend(
                Records::new(self.bytes(), self.header)
                    .map_while(Result::ok)
                    .map(|r| ConsumedRecord::new(topic, partition, base, self.map, self.map_pos as u32, r)),
            );
        }
        out.into_iter()
    }
}

/// Why a walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkStop {
    /// End of the file, or zeros (unwritten preallocated space) from here on.
    Clean,
    /// The callback asked to stop.
    Stopped,
    /// Bytes that are not a good batch, at `WalkEnd::position`.
    Damage(String),
}

/// Where a walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEnd {
    /// Position after the last batch accepted (or where the damage starts).
    pub position: u64,
    /// Offset after the last good batch.
    pub next_offset: Option<u64>,
    /// Why it stopped.
    pub stop: WalkStop,
}

/// Options of a walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Walk on past bad batches whose header is readable (for `dump`).
    pub past_bad_batches: bool,
    /// At zeros, read the rest of the file and call zeros followed by data damage.
    pub check_zero_tail: bool,
}

impl SegmentFile {
    /// Opens a segment file; its base offset comes from its name (`<20 digits>.log`) when it has one.
    pub fn open(path: impl AsRef<Path>) -> Result<SegmentFile> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io("opening segment", &path, e))?;
        let base = path.file_name().and_then(|n| n.to_str()).and_then(segment::parse_name);
        Ok(SegmentFile { path, base, file })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The base offset from the file name, if it is a segment name.
    pub fn base(&self) -> Option<u64> {
        self.base
    }

    /// Current length of the file (including a live writer's preallocated zeros).
    pub fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io("reading segment size", &self.path, e))
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|l| l == 0)
    }

    /// Reads up to `len` bytes at `pos`; fewer at the end of the file.
    pub fn read_at(&self, pos: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let rest = buf.get_mut(filled..).unwrap_or_default();
            match self.file.read_at(rest, pos + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading segment", &self.path, e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Whether a batch whose first record is `offset` starts at `pos` (header only, no CRC).
    pub(crate) fn batch_starts_at(&self, pos: u64, offset: u64) -> bool {
        let Ok(head) = self.read_at(pos, batch::HEADER_LEN) else {
            return false;
        };
        head.get(..4) == Some(&batch::MAGIC[..]) && le::u64_at(&head, 16) == Some(offset)
    }

    /// Walks batches from `pos`, expecting `expected` as the first batch's base
    /// offset (any, when `None`), calling `f` for each; `f` returns false to stop.
    /// The batches are those of [`Walker`]: a batch is `Ok` only when its
    /// CRC holds and all its records decode.
    pub fn walk(
        &self,
        mut pos: u64,
        expected: Option<u64>,
        opts: WalkOptions,
        f: &mut dyn FnMut(&WalkedBatch<'_>) -> bool,
    ) -> Result<WalkEnd> {
        let mut expect = expected.map_or(Expect::Any, Expect::Exactly);
        let mut next_offset = None;
        let mut want = CHUNK;
        let end = |position, next_offset, stop| {
            Ok(WalkEnd {
                position,
                next_offset,
                stop,
            })
        };
        loop {
            let chunk = self.read_at(pos, want)?;
            let at_eof = chunk.len() < want;
            let map = SegmentMap::from_vec(chunk);
            let bytes = map.bytes();
            let mut walk = Walker::new(bytes, 0, expect).zero_tail().validate_records();
            let stop = loop {
                let (header, at, status) = match walk.next_batch() {
                    Ok(b) => (b.header, b.pos, BatchStatus::Ok),
                    Err(stop) => match stop.damage().and_then(Damage::header).copied() {
                        Some(h) if opts.past_bad_batches => {
                            walk.step_over(&stop);
                            (h, stop.pos, BatchStatus::Bad(stop.to_string()))
                        }
                        _ => break stop,
                    },
                };
                if status == BatchStatus::Ok {
                    next_offset = Some(header.next_offset());
                }
                let walked = WalkedBatch {
                    position: pos + at as u64,
                    header,
                    status,
                    map: &map,
                    map_pos: at,
                };
                if !f(&walked) {
                    return end(pos + walk.pos() as u64, next_offset, WalkStop::Stopped);
                }
            };
            let here = pos + stop.pos as u64;
            let rest = bytes.len() - stop.pos.min(bytes.len());
            match stop.kind {
                StopKind::End if at_eof => return end(here, next_offset, WalkStop::Clean),
                // The chunk ended at a batch boundary: read on.
                StopKind::End if rest == 0 => {}
                StopKind::End if rest >= batch::HEADER_LEN => {
                    // Zeros to the end of the bytes read: are there zeros to the end of the file?
                    let stop = if opts.check_zero_tail {
                        self.zero_tail(here)?
                    } else {
                        WalkStop::Clean
                    };
                    return end(here, next_offset, stop);
                }
                // A header cut by the chunk: read again from its start.
                StopKind::End | StopKind::Damage(Damage::Torn) if !at_eof => {
                    if stop.pos == 0 {
                        // One batch larger than the bytes read: read exactly it, bounded by the file size.
                        let len = le::u32_at(bytes, 4).unwrap_or(0) as usize;
                        let avail = self.len()?.saturating_sub(pos);
                        if len <= bytes.len() || len as u64 > avail {
                            return end(pos, next_offset, damage(Damage::Torn));
                        }
                        want = len;
                        continue;
                    }
                }
                // A live writer writes a batch's header last: zeros then data
                // may be a batch being written. Only a full check calls it damage.
                StopKind::Damage(Damage::ZerosThenData { .. }) if !opts.check_zero_tail => {
                    return end(here, next_offset, WalkStop::Clean)
                }
                StopKind::Damage(Damage::ZerosThenData { data_at }) => {
                    let d = Damage::ZerosThenData {
                        data_at: (pos + data_at as u64) as usize,
                    };
                    return end(here, next_offset, damage(d));
                }
                _ => return end(here, next_offset, WalkStop::Damage(stop.to_string())),
            }
            expect = walk.expect();
            want = CHUNK;
            pos = here;
        }
    }

    /// Zeros at `pos`: clean if zeros run to the end of the file.
    fn zero_tail(&self, pos: u64) -> Result<WalkStop> {
        let mut p = pos;
        loop {
            let chunk = self.read_at(p, CHUNK)?;
            // Word-wide first, as the walker does: up to a segment's whole preallocated room.
            if !crate::format::all_zero(&chunk) {
                let i = chunk.iter().position(|&b| b != 0).unwrap_or(0);
                let data_at = usize::try_from(p + i as u64).unwrap_or(usize::MAX);
                return Ok(damage(Damage::ZerosThenData { data_at }));
            }
            if chunk.len() < CHUNK {
                return Ok(WalkStop::Clean);
            }
            p += CHUNK as u64;
        }
    }
}

fn damage(d: Damage) -> WalkStop {
    WalkStop::Damage(d.to_string())
}

/// Base offsets of the segments in a partition directory, sorted.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("listing partition directory", dir, e))?;
    let mut bases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing partition directory", dir, e))?;
        if let Some(base) = entry.file_name().to_str().and_then(segment::parse_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Path of the segment `base` in a partition directory.
pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    segment::paths(dir, base).0
}
