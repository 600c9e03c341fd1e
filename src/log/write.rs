//! The append path: encode batches straight into the mapped active segment,
//! roll segments, truncate.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::RwLock;

use super::clock::now_ms;
use super::index::{ActiveIndexFiles, SegIndex};
use super::mmap::SegmentMap;
use super::recovery::remove_segment_files;
use super::segment::{self, Segment};
use super::{Appended, LogInner, Writer};
use crate::compression::Compression;
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::format::batch::{self, Encode};
use crate::format::walk::{Expect, Walker};
use crate::record::Record;

impl LogInner {
    /// Checks every record against the size limits; nothing is written on failure.
    pub(crate) fn validate_records<R: Encode>(&self, records: impl IntoIterator<Item = R>) -> Result<()> {
        let max = self.config.max_record_bytes as usize;
        let room = self.config.segment_bytes as usize;
        for r in records {
            let size = r.payload_size();
            // Exact framing only matters when the record is near a segment's size.
            let header = if r.value_is_null() {
                batch::HEADER_LEN_V2
            } else {
                batch::HEADER_LEN
            };
            let bound = size + header + batch::RECORD_OVERHEAD + r.header_count() * 2 * 10;
            let framed = if bound <= room {
                0
            } else {
                header + batch::record_len(&r, 0, 0, 0)
            };
            if size > max || framed > room {
                return Err(Error::RecordTooLarge {
                    topic: self.topic.to_string(),
                    size,
                    max: max.min(room.saturating_sub(framed.saturating_sub(size))),
                });
            }
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn append<R: Encode>(&self, records: &[R]) -> Result<Appended> {
        self.append_inner(records, self.config.compression, None, true)
    }

    /// The append; `wait_durable`: under `Durability::Sync`, return only once
    /// the records are on stable storage (false: the caller waits for that
    /// itself, as an async send does with `poll_durable`).
    /// `compression`: a producer's override of the topic's.
    #[cfg(feature = "async")]
    pub(crate) fn append_then<R: Encode>(
        &self,
        records: &[R],
        compression: Option<Compression>,
        wait_durable: bool,
    ) -> Result<Appended> {
        let compression = compression.unwrap_or(self.config.compression);
        self.append_inner(records, compression, None, wait_durable)
    }

    /// [`append`](Self::append) with `compression` instead of the topic's.
    pub(crate) fn append_compressed_as<R: Encode>(&self, records: &[R], compression: Compression) -> Result<Appended> {
        self.append_inner(records, compression, None, true)
    }

    /// [`append`](Self::append), as part of a transaction when `txn` says so
    /// (then version 2 transactional batches, registered as open on the
    /// transaction's first append here, and no fsync: the commit syncs).
    /// Transactional batches are not compressed.
    pub(super) fn append_as<R: Encode>(&self, records: &[R], txn: Option<super::txn::TxnAppend>) -> Result<Appended> {
        let compression = if txn.is_some() {
            Compression::None
        } else {
            self.config.compression
        };
        self.append_inner(records, compression, txn, true)
    }

    #[inline(always)]
    fn append_inner<R: Encode>(
        &self,
        records: &[R],
        compression: Compression,
        txn: Option<super::txn::TxnAppend>,
        wait_durable: bool,
    ) -> Result<Appended> {
        let started = self.metrics.append_started();
        self.check_open()?;
        self.check_poisoned()?;
        self.validate_records(records)?;
        let now = now_ms();
        let append_time = self.config.log_append_time;
        let ts = move |r: &R| super::record_timestamp(append_time, r.create_time(), now);
        let attrs = if append_time { batch::ATTR_LOG_APPEND_TIME } else { 0 };
        let shape = match txn {
            None => batch::Shape::for_records(attrs, records),
            Some(t) => t.shape(attrs),
        };

        let mut guard = self.writer.lock();
        let w: &mut Writer = &mut guard;
        self.check_open()?;
        if w.clean_on_disk.is_some() {
            w.unmark_clean()?;
        }
        let base = w.next_offset;
        if let Some(t) = txn.filter(|t| t.register) {
            // Before the end offset moves past it: a read-committed reader
            // that sees the batch sees the hold.
            self.txns.open(base, t.id);
        }
        if let (Some(limit), Some(first)) = (self.config.segment_ms, w.first_ts) {
            if now.saturating_sub(first) >= limit && w.active.size() > 0 {
                self.roll(w)?;
            }
        }
        let mut rest = records;
        if let Some(codec) = compression.codec() {
            // Compressed batches while they shrink; what is left goes plain.
            rest = self.append_compressed(w, rest, ts, attrs, codec)?;
        }
        while !rest.is_empty() {
            let room = w.map.as_ref().map_or(0, |m| m.remaining()).min(u32::MAX as usize);
            let (n, len) = batch::plan_lens(rest, ts, room, &shape, &mut w.body_lens);
            if n == 0 {
                if w.active.size() == 0 {
                    // validate_records guarantees this cannot happen.
                    return Err(Error::RecordTooLarge {
                        topic: self.topic.to_string(),
                        size: rest.first().map_or(0, Encode::payload_size),
                        max: self.config.max_record_bytes as usize,
                    });
                }
                self.roll(w)?;
                continue;
            }
            let (chunk, tail) = rest.split_at(n);
            let offset = w.next_offset;
            let pos = w.active.size() as u32;
            let mut header = None;
            let Some(map) = w.map.as_mut() else {
                return Err(Error::Closed);
            };
            let lens = &w.body_lens;
            map.append(len, |dst| {
                header = Some(batch::encode_planned(dst, offset, &shape, chunk, ts, lens))
            })
            .map_err(|e| Error::io("appending to segment", &w.active.path, e))?;
            self.batch_written(w, pos, header.as_ref(), n, len);
            rest = tail;
        }
        // Written after the lock is released, by the path the background
        // tick takes (which creates the partition's first live file outside
        // the lock).
        let live_due = w.live_pending >= super::checkpoint::LIVE_CHECKPOINT_BYTES
            && self.config.durability == Durability::PageCache;
        let end = w.next_offset;
        let prealloc = w.growth_request();
        // Consumers register under this lock (`register_waiter`): no fence.
        let wake = self.waiters.registered_under_lock();
        drop(guard);
        if wake {
            self.waiters.wake_all();
        }
        if let Some(request) = prealloc {
            self.send_growth(request);
        }
        if live_due {
            // An optimisation only (recovery falls back to the fsynced
            // checkpoint): a failure leaves the previous live checkpoint, which
            // still describes a prefix, and is not the append's failure.
            let _ = self.write_live_checkpoint();
        }
        if wait_durable && txn.is_none() && self.config.durability == Durability::Sync {
            self.sync_to(end)?;
        }
        self.metrics.append_done(started);
        Ok(Appended {
            base_offset: base,
            count: records.len(),
            append_time: now,
        })
    }

    /// Registers the calling thread to be woken by the next append (then
    /// re-check for records before parking, and unregister from `waiters`).
    /// Under the writer lock: `append` checks for waiters under it, so either
    /// that append sees this registration or the re-check sees its records.
    pub(crate) fn register_waiter(&self, waiter: super::Waiter) -> u64 {
        let _writer = self.writer.lock();
        self.waiters.register(waiter)
    }

    /// The writer's bookkeeping for a batch of `n` records and `len` bytes
    /// just published at byte `pos` of the active segment (plain or
    /// compressed): its place, the segment's first timestamp, an index entry
    /// when one is due, the end offset readers see, and the append metrics'
    /// tally.
    #[inline(always)]
    pub(super) fn batch_written(
        &self,
        w: &mut Writer,
        pos: u32,
        header: Option<&batch::BatchHeader>,
        n: usize,
        len: usize,
    ) {
        w.last_batch = Some(u64::from(pos));
        if let Some(h) = header {
            w.first_ts.get_or_insert(h.base_timestamp);
            if pos >= w.idx_next_pos || h.max_timestamp > w.idx_max_ts {
                if let Some(ix) = w.active.index.write().as_mut() {
                    ix.on_batch(w.active.base, pos, h);
                    w.idx_next_pos = ix.next_entry_pos();
                    w.idx_max_ts = ix.max_ts;
                }
            }
        }
        w.next_offset += n as u64;
        self.next_offset.store(w.next_offset, Ordering::Release);
        w.live_pending += len as u64;
        w.appends.add(n, len);
    }

    /// Hands a growth request to the background thread (the writer grows
    /// inline when there is none, or its queue is full).
    fn send_growth(&self, (growth, target): (Arc<super::mmap::Growth>, usize)) {
        match self.background.get() {
            Some(tx) if tx.try_send((Arc::clone(&growth), target)).is_ok() => {}
            _ => growth.cancel_request(),
        }
    }

    /// Connects the log to the background thread that extends its active
    /// segment ahead of the writer. Nothing is allocated now: room ahead
    /// follows the appends (see `MapWriter::prealloc_request`), so a
    /// partition nobody writes costs no more than it did on disk.
    pub(crate) fn attach_background(&self, tx: super::PreallocSender) {
        let _ = self.background.set(tx);
    }

    /// Seals the active segment and starts a new one at the next offset.
    pub(super) fn roll(&self, w: &mut Writer) -> Result<()> {
        let old = Arc::clone(&w.active);
        let (_, ipath, tpath) = segment::paths(&self.dir, old.base);
        let ahead = w.map.as_ref().map_or(super::mmap::MIN_AHEAD, |m| m.ahead());
        if let Some(map) = w.map.take() {
            map.seal().map_err(|e| Error::io("sealing segment", &old.path, e))?;
        }
        w.index_files = None;
        let next_rel = u32::try_from(w.next_offset - old.base).unwrap_or(u32::MAX);
        let index = old.index.write().take().map(|mut ix| {
            // Batches that did not touch the index (see Writer::idx_next_pos)
            // did not advance next_rel.
            ix.next_rel = next_rel;
            ix.finish();
            // Index files are caches: a failed write means a rebuild on next use.
            let _ = ix.write_sealed(&ipath, &tpath, old.base, old.size());
            ix
        });
        w.unsynced.extend(old.file.clone().map(|f| (f, old.path.clone())));
        // Readers switch to an exact-size read-only map of the sealed file;
        // readers still holding the old map keep it alive until they finish.
        let sealed = Segment::open_sealed(&self.dir, old.base)?;
        *sealed.index.write() = index;
        let sealed = Arc::new(sealed);

        let active = self.create_segment(w.next_offset, ahead)?;
        w.active = Arc::clone(&active.0);
        w.map = Some(active.1);
        w.index_files = Some(active.2);
        w.dir_dirty = true;
        w.first_ts = None;
        w.last_batch = None;
        w.sync_index_mirror();

        let mut segs: Vec<Arc<Segment>> = self.segments().iter().cloned().collect();
        if let Some(last) = segs.last_mut() {
            *last = sealed;
        }
        segs.push(active.0);
        self.set_segments(segs);
        crate::obs::rolled(&self.topic, self.partition, old.base, w.next_offset);
        self.apply_retention(w)
    }

    /// A new, empty active segment at `base`, whose writer starts with the
    /// room ahead (`ahead`) the previous one had reached.
    fn create_segment(
        &self,
        base: u64,
        ahead: usize,
    ) -> Result<(Arc<Segment>, super::mmap::MapWriter, ActiveIndexFiles)> {
        let (path, ipath, tpath) = segment::paths(&self.dir, base);
        let file = crate::fs::open_rw(&path, "creating segment")?;
        file.set_len(0).map_err(|e| Error::io("creating segment", &path, e))?;
        let fsync_handle = file.try_clone().map_err(|e| Error::io("creating segment", &path, e))?;
        let (map, mut writer) = SegmentMap::writable(file, self.config.segment_bytes as usize, 0)
            .map_err(|e| Error::io("mapping segment", &path, e))?;
        writer.continue_from(ahead);
        let mut index = SegIndex::default();
        let files = ActiveIndexFiles::open(&ipath, &tpath, base, &mut index)?;
        let seg = Arc::new(Segment {
            base,
            path,
            map,
            file: Some(Arc::new(fsync_handle)),
            index: RwLock::new(Some(index)),
        });
        Ok((seg, writer, files))
    }

    pub(crate) fn truncate(&self, offset: u64) -> Result<()> {
        self.check_open()?;
        let mut guard = self.writer.lock();
        let w: &mut Writer = &mut guard;
        if offset >= w.next_offset {
            return Ok(());
        }
        w.unmark_clean()?;
        let start = self.start_offset();
        if offset < start {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.to_string(),
                partition: self.partition,
                offset,
                start,
                end: w.next_offset,
            });
        }
        let segs = self.segments();
        let idx = segs.partition_point(|s| s.base <= offset).saturating_sub(1);
        let Some(seg) = segs.get(idx) else {
            return Err(Error::Closed);
        };
        let (cut, partial) = self.cut_point(seg, offset)?;
        // A live checkpoint describes bytes about to be rewritten.
        if let Some(live) = w.live.as_mut() {
            live.invalidate()?;
        }

        // Copy the kept prefix to a new file and rename it over the segment:
        // readers of the old file keep their mapping of the old inode.
        let tmp = crate::fs::tmp_path(&seg.path);
        let bytes = seg.map.bytes();
        let tail = partial.map(|p| p.encode(offset)).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes.get(..cut).unwrap_or_default())?;
            f.write_all(&tail)?;
            f.sync_all()
        };
        write().map_err(|e| Error::io("writing truncated segment", &tmp, e))?;
        for later in segs.get(idx + 1..).unwrap_or_default() {
            remove_segment_files(&self.dir, later.base)?;
        }
        std::fs::rename(&tmp, &seg.path).map_err(|e| Error::io("replacing truncated segment", &seg.path, e))?;
        crate::fs::sync_dir(&self.dir)?;

        // Reopen the replaced file as the active segment.
        let file = crate::fs::open_rw(&seg.path, "opening segment")?;
        let len = cut + tail.len();
        let fsync_handle = file
            .try_clone()
            .map_err(|e| Error::io("opening segment", &seg.path, e))?;
        let capacity = (self.config.segment_bytes as usize).max(len);
        let (map, writer) =
            SegmentMap::writable(file, capacity, len).map_err(|e| Error::io("mapping segment", &seg.path, e))?;
        let mut index = SegIndex::default();
        segment::scan(map.bytes(), 0, seg.base, |p, h| index.on_batch(seg.base, p as u32, h));
        let (_, ipath, tpath) = segment::paths(&self.dir, seg.base);
        let files = ActiveIndexFiles::open(&ipath, &tpath, seg.base, &mut index)?;
        let first_ts = Walker::new(map.bytes(), 0, Expect::Exactly(seg.base))
            .next_batch()
            .ok()
            .map(|b| b.header.base_timestamp);
        let active = Arc::new(Segment {
            base: seg.base,
            path: seg.path.clone(),
            map,
            file: Some(Arc::new(fsync_handle)),
            index: RwLock::new(Some(index)),
        });
        let mut kept: Vec<Arc<Segment>> = segs.get(..idx).unwrap_or_default().to_vec();
        kept.push(Arc::clone(&active));
        w.active = active;
        w.map = Some(writer);
        w.index_files = Some(files);
        w.next_offset = offset;
        // Rolled segments before the cut still wait for their fsync; the cut
        // one was rewritten and fsynced, later ones are gone.
        w.unsynced
            .retain(|(_, p)| kept.iter().any(|s| &s.path == p && s.base != seg.base));
        w.first_ts = first_ts;
        w.last_batch = None;
        w.sync_index_mirror();
        self.set_segments(kept);
        self.truncations.fetch_add(1, Ordering::AcqRel);
        self.txns.truncated(offset);
        self.next_offset.store(offset, Ordering::Release);
        self.lower_durable(offset);
        drop(guard);
        self.forget_compaction_after(offset);
        self.write_checkpoint_after_truncate()
    }

    /// Byte position of the batch holding `offset`, and that batch's part
    /// before `offset` when the cut falls inside it (to re-encode).
    fn cut_point(&self, seg: &Segment, offset: u64) -> Result<(usize, Option<Partial>)> {
        let rel = u32::try_from(offset - seg.base).unwrap_or(u32::MAX);
        let pos = seg.with_index(|ix| ix.position_for(rel)) as usize;
        let mut walk = Walker::new(seg.map.bytes(), pos, Expect::AtMost(offset));
        walk.skip_before(offset);
        loop {
            let b = match walk.next_batch() {
                Ok(b) => b,
                Err(stop) if stop.is_end() => return Ok((stop.pos, None)),
                Err(stop) => return Err(seg.stop_error(stop)),
            };
            let h = b.header;
            if h.next_offset() <= offset {
                continue;
            }
            if h.base_offset >= offset {
                return Ok((b.pos, None));
            }
            let mut part = Partial {
                header: h,
                records: Vec::new(),
                deltas: Vec::new(),
            };
            // The kept part of a compressed batch is re-encoded uncompressed.
            let mut inflated = Vec::new();
            let (bytes, plain) = if h.is_compressed() {
                let plain = b.inflate(&mut inflated).map_err(|stop| seg.stop_error(stop))?;
                (&inflated[..], plain)
            } else {
                (b.bytes, h)
            };
            for r in batch::Records::new(bytes, plain) {
                let r = r.map_err(|e| seg.stop_error(b.bad_record(e)))?;
                if h.base_offset + u64::from(r.offset_delta) >= offset {
                    break;
                }
                let slice = |(x, y): (u32, u32)| bytes.get(x as usize..y as usize).unwrap_or_default();
                let mut rec = Record::new(slice(r.value)).with_timestamp(r.timestamp);
                rec.key = r.key.map(|k| slice(k).to_vec());
                rec.null = r.null_value;
                rec.headers = batch::headers(slice(r.headers), r.header_count)
                    .map(|(n, v)| (n.to_string(), v.to_vec()))
                    .collect();
                part.records.push(rec);
                part.deltas.push(r.offset_delta);
            }
            part.header = plain;
            return Ok((b.pos, Some(part)));
        }
    }
}

/// The part of a batch before a truncation's cut.
struct Partial {
    header: batch::BatchHeader,
    records: Vec<Record>,
    deltas: Vec<u32>,
}

impl Partial {
    /// The batch re-encoded to end just before `offset`, in its own version
    /// and with its attributes, producer id and offset deltas.
    fn encode(&self, offset: u64) -> Vec<u8> {
        let h = &self.header;
        let shape = if h.version == batch::V1 {
            batch::Shape::v1(h.attributes)
        } else {
            let last = u32::try_from(offset - 1 - h.base_offset).unwrap_or(u32::MAX);
            batch::Shape::v2(h.attributes, h.producer_id).with_deltas(&self.deltas, last)
        };
        let ts = |r: &Record| r.timestamp.unwrap_or(0);
        let mut lens = Vec::new();
        let len = match batch::plan_lens(&self.records, ts, usize::MAX, &shape, &mut lens) {
            (0, _) => shape.header_len(),
            (_, len) => len,
        };
        let mut out = vec![0; len];
        batch::encode_planned(&mut out, h.base_offset, &shape, &self.records, ts, &lens);
        out
    }
}
