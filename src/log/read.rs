//! The read path: find the segment, use the sparse index, scan a few
//! batches, check each batch's CRC, hand out zero-copy records.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::consumed::{ConsumedRecord, RecordView};
use super::segment::Segment;
use super::txn::{Isolation, TXN_BITS};
use super::LogInner;
use crate::error::{Error, Result};
use crate::format::batch::{BatchHeader, RecordRef, Records};
use crate::format::walk::{Batch, Expect, Walker};
use crate::log::mmap::SegmentMap;

/// Where the read path hands each record: the segment's map, the batch's base
/// offset, its position in the segment, its bytes (CRC checked) and the
/// record. For a compressed batch: the map holding the decompressed batch,
/// position 0 and the decompressed bytes.
trait RecordSink: FnMut(&Arc<SegmentMap>, u64, u32, &[u8], RecordRef) {}
impl<F: FnMut(&Arc<SegmentMap>, u64, u32, &[u8], RecordRef)> RecordSink for F {}

/// Where a sequential read stopped (see [`LogInner::read_with_cursor`]).
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    seg: Arc<Segment>,
    next_offset: u64,
    pos: usize,
    /// `LogInner::truncations` when made: a truncation invalidates it.
    epoch: u64,
    /// The last compressed batch the read decompressed, so a sequential
    /// reader that stopped inside it does not decompress it again.
    inflated: Option<Inflated>,
}

/// A decompressed batch: which one (segment base and byte position), the
/// map holding it, and its plain header.
#[derive(Debug, Clone)]
struct Inflated {
    seg_base: u64,
    pos: usize,
    map: Arc<SegmentMap>,
    plain: BatchHeader,
}

/// Decompresses a compressed batch of `seg` (once per batch a read visits):
/// a map holding the plain batch, which its records share, and its header.
#[cold]
fn inflate(seg: &Segment, b: &Batch<'_>) -> Result<(Arc<SegmentMap>, BatchHeader)> {
    let mut buf = Vec::new();
    let plain = b.inflate(&mut buf).map_err(|stop| seg.stop_error(stop))?;
    Ok((SegmentMap::from_vec(buf), plain))
}

/// Key and value bytes of a record (what the read metrics count).
#[inline]
fn payload_len(r: &RecordRef) -> u64 {
    let span = |(a, b): (u32, u32)| u64::from(b.saturating_sub(a));
    span(r.value) + r.key.map_or(0, span)
}

impl LogInner {
    fn out_of_range(&self, offset: u64) -> Error {
        Error::OffsetOutOfRange {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset,
            start: self.start_offset(),
            end: self.end_offset(),
        }
    }

    /// Appends up to `max` records from `offset` to `out`; returns the
    /// offset to read next (past offsets compaction removed and control records).
    pub(crate) fn read_into(&self, offset: u64, max: usize, out: &mut Vec<ConsumedRecord>) -> Result<u64> {
        let (_, next) = self.read_with_cursor(offset, max, out, &mut None, None, Isolation::Uncommitted)?;
        Ok(next)
    }

    /// [`read_into`](Self::read_into) for sequential readers: when `cursor`
    /// says where the previous read stopped and `offset` is where it said, the
    /// read resumes there without a segment lookup or an index search. The
    /// cursor is updated to where this read stopped. `end`: the end offset
    /// the caller just loaded, if it has one (else it is loaded here).
    /// Returns how many records, and the offset to read next: past offsets
    /// compaction removed, control records and records `iso` hides.
    pub(crate) fn read_with_cursor(
        &self,
        offset: u64,
        max: usize,
        out: &mut Vec<ConsumedRecord>,
        cursor: &mut Option<Cursor>,
        end: Option<u64>,
        iso: Isolation<'_>,
    ) -> Result<(usize, u64)> {
        let (topic, partition) = (&self.topic, self.partition);
        let mut bytes = 0;
        let (n, next) = self.read_records(offset, max, end, cursor, iso, &mut |map, base, pos, _, r| {
            bytes += payload_len(&r);
            out.push(ConsumedRecord::new(topic, partition, base, map, pos, r));
        })?;
        self.metrics.read(n, bytes);
        Ok((n, next))
    }

    /// [`read_with`](Self::read_with) for sequential readers, resuming at
    /// `cursor` like [`read_with_cursor`](Self::read_with_cursor); returns
    /// the offset to read next: after the last record `f` saw and the
    /// records `iso` hides after it (`offset` if none).
    pub(crate) fn read_views_with_cursor<F: FnMut(RecordView<'_>)>(
        &self,
        offset: u64,
        max: usize,
        f: &mut F,
        cursor: &mut Option<Cursor>,
        end: Option<u64>,
        iso: Isolation<'_>,
    ) -> Result<u64> {
        let (topic, partition) = (&*self.topic, self.partition);
        let mut bytes = 0;
        let (n, next) = self.read_records(offset, max, end, cursor, iso, &mut |_, base, _, batch, r| {
            bytes += payload_len(&r);
            f(RecordView::new(topic, partition, base, batch, r));
        })?;
        self.metrics.read(n, bytes);
        Ok(next)
    }

    /// Lends up to `max` records from `offset` to `f`, borrowed from the
    /// segments (kept alive for the call); returns the offset after the last
    /// record visited (`offset` if none). Validation and errors are those of
    /// [`read_into`](Self::read_into); records of batches before a damaged
    /// one have been visited when the error is returned.
    pub(crate) fn read_with<F: FnMut(RecordView<'_>)>(&self, offset: u64, max: usize, f: &mut F) -> Result<u64> {
        self.read_views_with_cursor(offset, max, f, &mut None, None, Isolation::Uncommitted)
    }

    /// The read path shared by [`read_with_cursor`](Self::read_with_cursor)
    /// and [`read_with`](Self::read_with): validates `offset`, finds the
    /// segment (or resumes at `cursor`) and hands each record to `sink`
    /// (see [`read_segment`](Self::read_segment)). Returns how many records
    /// it handed out and the offset after the last one (`offset` if none).
    fn read_records<S: RecordSink>(
        &self,
        offset: u64,
        max: usize,
        end: Option<u64>,
        cursor: &mut Option<Cursor>,
        iso: Isolation<'_>,
        sink: &mut S,
    ) -> Result<(usize, u64)> {
        self.check_open()?;
        // A caller that just loaded the end offset passes it: each load of
        // it, when the producer has stored it since, is a cache miss on both
        // sides for a consumer tailing a busy producer.
        let end = end.unwrap_or_else(|| self.end_offset());
        let start = self.start_offset();
        if offset < start || offset > end {
            return Err(self.out_of_range(offset));
        }
        // Read-committed: stop at the last stable offset (loaded after the end).
        let end = self.read_bound(end, iso);
        if offset >= end || max == 0 {
            return Ok((0, offset));
        }
        let epoch = self.truncations.load(Ordering::Acquire);
        let next_cursor = |seg: &Arc<Segment>, pos: usize, next_offset: u64, inflated: &mut Option<Inflated>| Cursor {
            seg: Arc::clone(seg),
            next_offset,
            pos,
            epoch,
            inflated: inflated.take(),
        };
        let mut inflated = None;
        if let Some(c) = cursor
            .as_mut()
            .filter(|c| c.next_offset == offset && c.seg.base >= start && c.epoch == epoch)
        {
            let seg = Arc::clone(&c.seg);
            inflated = c.inflated.take();
            let (n, pos, next) = self.read_segment(&seg, Some(c.pos), offset, end, max, iso, sink, &mut inflated)?;
            if n > 0 {
                *cursor = Some(next_cursor(&seg, pos, next, &mut inflated));
                return Ok((n, next));
            }
            // That segment is exhausted (it was sealed): find the next one below.
        }
        // Holds every segment (and so every mapping a sink borrowed from) until the read returns.
        let segs = self.segments();
        if segs.first().is_some_and(|s| s.base > offset) {
            // Retention removed the segment between the range check and the snapshot.
            return Err(self.out_of_range(offset));
        }
        let mut idx = segs.partition_point(|s| s.base <= offset).saturating_sub(1);
        let mut next = offset;
        let mut total = 0;
        // Stop at the end loaded above: segments rolled since then follow in
        // the snapshot, and their first batch (past `end`) would read as a
        // batch where `next` was expected, i.e. as damage.
        while total < max && next < end {
            let Some(seg) = segs.get(idx) else { break };
            let (n, pos, after) = self.read_segment(seg, None, next, end, max - total, iso, sink, &mut inflated)?;
            total += n;
            if n > 0 {
                *cursor = Some(next_cursor(seg, pos, after, &mut inflated));
            }
            next = after;
            idx += 1;
        }
        if total == 0 && self.start_offset() > offset {
            // Retention removed the segment between the range check and the read.
            return Err(self.out_of_range(offset));
        }
        Ok((total, next))
    }

    /// Reads from `seg` starting at byte `from` (or where the index says),
    /// never at or past `end` (the end offset loaded when the read began: the
    /// writer publishes a batch's bytes before its end offset, so a reader may
    /// see bytes of records that `end_offset()` does not cover yet; returning
    /// them would put the caller's position past the end it sees).
    /// Each batch's CRC is checked before any of its records goes to `sink`.
    /// Returns the records read, the position of the batch holding the
    /// next offset (the one a next read starts from) and that next offset.
    /// `inflated`: the compressed batch decompressed last, reused when it is
    /// met again, replaced by the next one decompressed.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn read_segment<S: RecordSink>(
        &self,
        seg: &Arc<Segment>,
        from: Option<usize>,
        offset: u64,
        end: u64,
        max: usize,
        iso: Isolation<'_>,
        sink: &mut S,
        inflated: &mut Option<Inflated>,
    ) -> Result<(usize, usize, u64)> {
        let mut pos = match from {
            Some(p) => p,
            None => {
                let rel = u32::try_from(offset.saturating_sub(seg.base)).unwrap_or(u32::MAX);
                seg.with_index(|ix| ix.position_for(rel)) as usize
            }
        };
        // The first batch holds `offset` or precedes it (the index is sparse);
        // a batch starting after it means records would be skipped: damage.
        let mut walk = Walker::new(seg.map.bytes(), pos, Expect::AtMost(offset));
        walk.skip_before(offset);
        let mut n = 0;
        // The next offset to read: after the last record handed out, or past
        // offsets compaction removed (a batch's records may leave gaps).
        let mut expect = offset;
        // The last transactions found visible and hidden (consecutive
        // batches often share one): one lookup per run of batches.
        let (mut visible_txn, mut hidden_txn) = (0, 0);
        while n < max {
            pos = walk.pos();
            let b = match walk.next_batch() {
                Ok(b) => b,
                Err(stop) if stop.is_end() => break,
                Err(stop) => return Err(seg.stop_error(stop)),
            };
            let h = b.header;
            if h.next_offset() <= offset {
                continue;
            }
            if h.base_offset >= end {
                break;
            }
            if h.attributes & TXN_BITS != 0 && (h.is_control() || h.producer_id != visible_txn) {
                if h.producer_id == hidden_txn || iso.hides(&h) {
                    // A marker, or a transaction this level does not show: its
                    // offsets are passed over (a batch never straddles the bound).
                    if !h.is_control() {
                        hidden_txn = h.producer_id;
                    }
                    expect = expect.max(h.next_offset());
                    continue;
                }
                visible_txn = h.producer_id;
            }
            let mut stopped = false;
            // A compressed batch is decompressed once, here, into a map of
            // its own that its records share.
            let (map, at, bytes, plain) = if h.is_compressed() {
                let current = match inflated.take() {
                    Some(i) if i.seg_base == seg.base && i.pos == pos => i,
                    _ => {
                        let (map, plain) = inflate(seg, &b)?;
                        Inflated {
                            seg_base: seg.base,
                            pos,
                            map,
                            plain,
                        }
                    }
                };
                let i = inflated.insert(current);
                (&i.map, 0, i.map.bytes(), i.plain)
            } else {
                (&seg.map, pos as u32, b.bytes, h)
            };
            for r in Records::new(bytes, plain) {
                let r = r.map_err(|e| seg.stop_error(b.bad_record(e)))?;
                let o = h.base_offset + u64::from(r.offset_delta);
                if o < offset {
                    continue;
                }
                if o >= end {
                    stopped = true;
                    break;
                }
                sink(map, h.base_offset, at, bytes, r);
                expect = o + 1;
                n += 1;
                if n == max {
                    stopped = true;
                    break;
                }
            }
            if stopped {
                if expect < h.next_offset() {
                    // Stopped inside this batch: the next read starts here again.
                    return Ok((n, pos, expect));
                }
            } else {
                // Every record of the batch from `offset` on was handed out:
                // the offsets it covers without a record are skipped too.
                expect = expect.max(h.next_offset().min(end));
            }
            pos = walk.pos();
        }
        Ok((n, pos, expect))
    }

    pub(crate) fn offset_for_timestamp(&self, ts: i64) -> Result<Option<u64>> {
        self.check_open()?;
        let start = self.start_offset();
        for seg in self.segments().iter() {
            if seg.size() == 0 || seg.max_ts() < ts {
                continue;
            }
            let from_rel = seg.with_index(|ix| ix.scan_start_for_time(ts));
            let from = (seg.base + u64::from(from_rel)).max(start);
            let pos = seg.with_index(|ix| ix.position_for(from_rel)) as usize;
            let mut walk = Walker::new(seg.map.bytes(), pos, Expect::AtMost(from));
            loop {
                let b = match walk.next_batch() {
                    Ok(b) => b,
                    Err(stop) if stop.is_end() => break,
                    Err(stop) => return Err(seg.stop_error(stop)),
                };
                let h = b.header;
                if h.next_offset() > from && h.max_timestamp >= ts {
                    let inflated = if h.is_compressed() {
                        Some(inflate(seg, &b)?)
                    } else {
                        None
                    };
                    let (bytes, plain) = match &inflated {
                        Some((map, plain)) => (map.bytes(), *plain),
                        None => (b.bytes, h),
                    };
                    for r in Records::new(bytes, plain) {
                        let r = r.map_err(|e| seg.stop_error(b.bad_record(e)))?;
                        let o = h.base_offset + u64::from(r.offset_delta);
                        if o >= from && r.timestamp >= ts {
                            return Ok(Some(o));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Full check of every segment (every batch's CRC and every record);
    /// returns the number of records.
    pub(crate) fn verify(&self) -> Result<u64> {
        let mut records = 0u64;
        for seg in self.segments().iter() {
            let mut walk = Walker::new(seg.map.bytes(), 0, Expect::Exactly(seg.base)).validate_records();
            let stop = loop {
                match walk.next_batch() {
                    Ok(b) => records += u64::from(b.header.count),
                    Err(stop) => break stop,
                }
            };
            if !stop.is_end() {
                return Err(seg.stop_error(stop));
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Durability, LogConfig, TopicConfig};
    use crate::format::batch;
    use crate::log::Log;
    use crate::record::Record;

    /// The writer publishes a batch's bytes before the end offset; a read in
    /// between must stop at the end offset (else a consumer's position passes
    /// the end it sees and is reset as out of range).
    #[test]
    fn reads_stop_at_the_end_offset_not_at_the_published_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(
            dir.path(),
            LogConfig::from_topic(&TopicConfig::new(1), Durability::PageCache),
        )
        .unwrap();
        log.append(&[Record::new("a"), Record::new("b")]).unwrap();
        {
            // Publish a third record's bytes the way append does, but stop
            // before the end offset store.
            let mut w = log.inner.writer.lock();
            let rs = [Record::new("c").with_timestamp(0)];
            let ts = |r: &Record| r.timestamp().unwrap_or(0);
            let (_, len) = batch::plan(&rs, ts, usize::MAX);
            w.map
                .as_mut()
                .unwrap()
                .append(len, |dst| {
                    batch::encode(dst, 2, 0, &rs, ts);
                })
                .unwrap();
        }
        assert_eq!(log.end_offset(), 2);
        let got = log.read(0, 10).unwrap();
        assert_eq!(got.len(), 2, "the record beyond the end offset must not be returned");
        let mut seen = Vec::new();
        assert_eq!(log.read_with(0, 10, |r| seen.push(r.offset())).unwrap(), 2);
        assert_eq!(seen, [0, 1], "read_with must stop at the end offset too");
        let mut cursor = None;
        let mut out = Vec::new();
        let iso = super::Isolation::Uncommitted;
        log.inner
            .read_with_cursor(1, 10, &mut out, &mut cursor, None, iso)
            .unwrap();
        assert_eq!(out.len(), 1);
        out.clear();
        assert_eq!(
            log.inner
                .read_with_cursor(2, 10, &mut out, &mut cursor, None, iso)
                .unwrap(),
            (0, 2)
        );
        assert!(out.is_empty());
    }

    /// A read loads the end offset, then snapshots the segments; segments
    /// rolled in between follow the one where the end lies. The read must stop
    /// at the end instead of walking into them (it took their first batch for
    /// a batch where the end offset was expected, i.e. for damage: a rare
    /// `Error::Corruption` in tests/reliability_stress.rs).
    #[test]
    fn reads_stop_at_the_loaded_end_even_when_later_segments_exist() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(
            dir.path(),
            LogConfig::from_topic(&TopicConfig::new(1).segment_bytes(1024), Durability::PageCache),
        )
        .unwrap();
        while log.segment_count() < 3 {
            log.append(&[Record::new(vec![7u8; 100])]).unwrap();
        }
        let segs = log.inner.segments();
        let second_base = segs[1].base;
        let real_end = log.end_offset();
        // As seen by a reader that loaded the end before the second roll.
        log.inner.next_offset.store(second_base, Ordering::Release);
        let got = log.read(0, 10_000);
        let mut seen = 0;
        let with = log.read_with(0, 10_000, |_| seen += 1);
        log.inner.next_offset.store(real_end, Ordering::Release);
        assert_eq!(got.unwrap().len() as u64, second_base);
        assert_eq!(with.unwrap(), second_base);
        assert_eq!(seen, second_base);
    }
}
