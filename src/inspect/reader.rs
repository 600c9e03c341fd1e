//! Reading one partition's records without the directory lock, following
//! a live writer's appends and segment rolls.

use std::path::PathBuf;
use std::sync::Arc;

use super::segfile::{self, SegmentFile, WalkOptions, WalkStop};
use crate::error::{Error, Result};
use crate::format::index;
use crate::log::consumed::ConsumedRecord;
use crate::log::segment;

/// A record's part in a transaction, as [`PartitionReader::poll_marked`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnMark {
    /// A record sent in transaction `id` (see [`Transactions`](super::Transactions)
    /// for whether it committed).
    Record {
        /// The transaction.
        id: u64,
    },
    /// The control record that ended transaction `id` in this partition.
    Marker {
        /// The transaction.
        id: u64,
        /// A commit marker (else an abort marker).
        commit: bool,
    },
}

/// A read-only cursor over one partition, from a given offset onwards.
///
/// Every [`poll`](PartitionReader::poll) reads the files again, so records a
/// writer in another process appends (and segments it rolls) show up at the
/// next poll. A batch the writer is still writing is simply not returned yet.
#[derive(Debug)]
pub struct PartitionReader {
    topic: Arc<str>,
    partition: u32,
    dir: PathBuf,
    next_offset: u64,
    cursor: Option<Cursor>,
    tail_damage: Option<String>,
}

#[derive(Debug)]
struct Cursor {
    seg: SegmentFile,
    base: u64,
    /// Byte position of the batch holding `next_offset` (or of the end).
    pos: u64,
}

impl PartitionReader {
    pub(crate) fn new(topic: &str, partition: u32, dir: PathBuf, offset: u64) -> PartitionReader {
        PartitionReader {
            topic: topic.into(),
            partition,
            dir,
            next_offset: offset,
            cursor: None,
            tail_damage: None,
        }
    }

    /// The next offset this reader returns.
    pub fn position(&self) -> u64 {
        self.next_offset
    }

    /// The partition number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Why the last poll stopped before the end of the newest segment, when
    /// it did: a batch being written right now, or a torn tail left by a crash
    /// (the next open of the directory cuts it).
    pub fn tail_damage(&self) -> Option<&str> {
        self.tail_damage.as_deref()
    }

    /// Up to `max` records from the current position; empty when there are no
    /// more yet. `Error::OffsetOutOfRange` when the position is below the
    /// first stored offset (retention deleted it), `Error::Corruption` for
    /// damage in a segment that a newer segment follows.
    ///
    /// Records of transactions are returned whatever became of their
    /// transaction (read_uncommitted); control records (transaction markers)
    /// are not returned. [`poll_marked`](Self::poll_marked) says which is which.
    pub fn poll(&mut self, max: usize) -> Result<Vec<ConsumedRecord>> {
        let mut out = Vec::new();
        self.poll_into(max, false, &mut |r, _| out.push(r))?;
        Ok(out)
    }

    /// [`poll`](Self::poll), with each record's part in a transaction, and
    /// control records (transaction markers) too, for the tools.
    pub fn poll_marked(&mut self, max: usize) -> Result<Vec<(ConsumedRecord, Option<TxnMark>)>> {
        let mut out = Vec::new();
        self.poll_into(max, true, &mut |r, m| out.push((r, m)))?;
        Ok(out)
    }

    fn poll_into(
        &mut self,
        max: usize,
        markers: bool,
        sink: &mut dyn FnMut(ConsumedRecord, Option<TxnMark>),
    ) -> Result<()> {
        let mut n = 0usize;
        let mut rechecked = false;
        loop {
            if self.cursor.is_none() {
                self.cursor = self.locate()?;
            }
            let Some(cur) = &mut self.cursor else { return Ok(()) };
            let (topic, partition, from) = (&self.topic, self.partition, self.next_offset);
            let mut next = from;
            let mut batch_pos = cur.pos;
            let end = cur.seg.walk(cur.pos, None, WalkOptions::default(), &mut |b| {
                batch_pos = b.position;
                let h = b.header;
                if h.next_offset() <= next {
                    return true;
                }
                let control = h.is_control();
                if control && !markers {
                    // Occupies offsets, returns nothing.
                    next = h.next_offset();
                    return true;
                }
                let mark = match (h.is_transactional(), control) {
                    (false, _) => None,
                    (true, false) => Some(TxnMark::Record { id: h.producer_id }),
                    (true, true) => {
                        let kind = crate::format::txn::control_of(b.bytes(), h).ok();
                        Some(TxnMark::Marker {
                            id: h.producer_id,
                            commit: kind == Some(crate::format::txn::ControlKind::Commit),
                        })
                    }
                };
                for rec in b.records(topic, partition) {
                    let offset = rec.offset();
                    if offset < next {
                        continue;
                    }
                    if n >= max {
                        return false;
                    }
                    sink(rec, mark);
                    n += 1;
                    next = offset + 1;
                }
                if n < max && next < h.next_offset() && control {
                    next = h.next_offset();
                }
                n < max
            })?;
            self.next_offset = next;
            // Stopped early: the last batch may hold more records for the next poll.
            cur.pos = if end.stop == WalkStop::Stopped && next < end.next_offset.unwrap_or(0) {
                batch_pos
            } else {
                end.position
            };
            if n > 0 || next > from {
                self.tail_damage = None;
                return Ok(());
            }
            // Nothing new here: has the writer moved on to a newer segment?
            let newer = segfile::list_segments(&self.dir)?.into_iter().find(|&b| b > cur.base);
            match (end.stop, newer) {
                (WalkStop::Damage(reason), None) => {
                    self.tail_damage = Some(format!(
                        "{} at byte {}: {reason}",
                        cur.seg.path().display(),
                        end.position
                    ));
                    return Ok(());
                }
                (_, None) => {
                    self.tail_damage = None;
                    return Ok(());
                }
                (WalkStop::Damage(reason), Some(_)) if rechecked => {
                    return Err(Error::Corruption {
                        path: cur.seg.path().to_path_buf(),
                        position: end.position,
                        reason,
                    });
                }
                // The writer may have appended to the old segment before rolling:
                // read it once more before moving on.
                (_, Some(_)) if !rechecked => rechecked = true,
                (_, Some(base)) => {
                    let path = segfile::segment_path(&self.dir, base);
                    self.next_offset = self.next_offset.max(base);
                    self.cursor = Some(Cursor {
                        seg: SegmentFile::open(path)?,
                        base,
                        pos: 0,
                    });
                    rechecked = false;
                }
            }
        }
    }

    /// Finds the segment holding `next_offset` and a position to start at.
    fn locate(&mut self) -> Result<Option<Cursor>> {
        let bases = segfile::list_segments(&self.dir)?;
        let Some(&first) = bases.first() else { return Ok(None) };
        if self.next_offset < first {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.to_string(),
                partition: self.partition,
                offset: self.next_offset,
                start: first,
                end: first,
            });
        }
        let base = bases
            .iter()
            .rev()
            .find(|&&b| b <= self.next_offset)
            .copied()
            .unwrap_or(first);
        let seg = match SegmentFile::open(segfile::segment_path(&self.dir, base)) {
            Ok(s) => s,
            // Deleted by retention between the listing and the open: list again next poll.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let pos = self.index_hint(&seg, base);
        Ok(Some(Cursor { seg, base, pos }))
    }

    /// A batch position at or before `next_offset` from the segment's offset
    /// index (a cache: checked against the log, ignored when wrong).
    fn index_hint(&self, seg: &SegmentFile, base: u64) -> u64 {
        let (_, ipath, _) = segment::paths(&self.dir, base);
        let Ok(bytes) = std::fs::read(ipath) else { return 0 };
        let Ok(ix) = index::decode_offset(&bytes) else { return 0 };
        ix.entries
            .iter()
            .rev()
            .map(|e| (base + u64::from(e.rel_offset), u64::from(e.position)))
            .find(|&(off, pos)| off <= self.next_offset && seg.batch_starts_at(pos, off))
            .map_or(0, |(_, pos)| pos)
    }
}
