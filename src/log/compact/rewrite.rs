//! One segment's batches with the records a pass removes left out: kept
//! records keep their offsets, timestamps, keys, values and headers; every
//! output batch is version 2 and spans the offsets of the input batches it
//! replaces (removed records become gaps), so batches still tile the offsets.

use std::collections::HashMap;

use crate::format::batch::{self, Encode, RecordRef};
use crate::format::walk::{Expect, Walker};
use crate::log::segment::Segment;

use crate::error::Result;

/// Largest output batch (records are grouped into batches up to this size).
const MAX_OUT_BATCH: usize = 1 << 20;

/// The key of every keyed record, and the offset of its latest record.
pub(super) type LatestMap<'a> = HashMap<&'a [u8], u64>;

/// Adds every keyed record of `seg` below `end` to `map` (later offsets win).
/// Records of transactional and compressed batches are left out: compaction
/// does not touch them, and does not let them supersede other records.
pub(super) fn index_keys<'a>(seg: &'a Segment, end: u64, map: &mut LatestMap<'a>) -> Result<()> {
    let mut walk = Walker::new(seg.map.bytes(), 0, Expect::Exactly(seg.base));
    loop {
        let b = match walk.next_batch() {
            Ok(b) => b,
            Err(stop) if stop.is_end() => return Ok(()),
            Err(stop) => return Err(seg.stop_error(stop)),
        };
        let h = b.header;
        if h.base_offset >= end {
            return Ok(());
        }
        if h.is_transactional() || h.is_compressed() {
            continue;
        }
        for r in b.records() {
            let r = r.map_err(|e| seg.stop_error(b.bad_record(e)))?;
            let o = h.base_offset + u64::from(r.offset_delta);
            if o >= end {
                break;
            }
            if let Some(k) = r.key {
                map.insert(slice(b.bytes, k), o);
            }
        }
    }
}

fn slice(bytes: &[u8], (start, end): (u32, u32)) -> &[u8] {
    bytes.get(start as usize..end as usize).unwrap_or_default()
}

/// A kept record, borrowed from the old segment, as the encoder sees it.
struct Kept<'a> {
    key: Option<&'a [u8]>,
    value: &'a [u8],
    null: bool,
    headers: &'a [u8],
    header_count: u32,
    ts: i64,
}

impl<'a> Kept<'a> {
    fn new(bytes: &'a [u8], r: &RecordRef) -> Kept<'a> {
        Kept {
            key: r.key.map(|k| slice(bytes, k)),
            value: slice(bytes, r.value),
            null: r.null_value,
            headers: slice(bytes, r.headers),
            header_count: r.header_count,
            ts: r.timestamp,
        }
    }
}

impl Encode for Kept<'_> {
    fn key_bytes(&self) -> Option<&[u8]> {
        self.key
    }
    fn value_bytes(&self) -> &[u8] {
        self.value
    }
    fn value_is_null(&self) -> bool {
        self.null
    }
    fn header_count(&self) -> usize {
        self.header_count as usize
    }
    fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        batch::headers(self.headers, self.header_count).map(|(n, v)| (n.as_bytes(), v))
    }
    fn create_time(&self) -> Option<i64> {
        Some(self.ts)
    }
    fn target_partition(&self) -> Option<u32> {
        None
    }
}

/// What the pass decides for each record.
pub(super) struct Rules<'m, 'a> {
    /// Latest offset of every key.
    pub(super) latest: &'m LatestMap<'a>,
    /// Whether the tombstone at an offset has outlived `delete_retention_ms`.
    pub(super) tombstone_expired: &'m dyn Fn(u64) -> bool,
}

/// One segment's output.
#[derive(Debug, Default)]
pub(super) struct Output {
    /// The batches, from the segment's base offset to its end.
    pub(super) bytes: Vec<u8>,
    pub(super) kept: u64,
    pub(super) removed: u64,
    pub(super) tombstones_removed: u64,
}

/// The batch being assembled: offsets `base..next`, the kept records in it.
struct Pending<'a> {
    base: u64,
    next: u64,
    attributes: Option<u8>,
    records: Vec<Kept<'a>>,
    deltas: Vec<u32>,
    size: usize,
}

/// Rewrites `seg` (a sealed segment) by `rules`.
pub(super) fn rewrite(seg: &Segment, rules: &Rules<'_, '_>) -> Result<Output> {
    let bytes = seg.map.bytes();
    let mut out = Output::default();
    let mut p = Pending {
        base: seg.base,
        next: seg.base,
        attributes: None,
        records: Vec::new(),
        deltas: Vec::new(),
        size: 0,
    };
    let mut lens = Vec::new();
    let mut walk = Walker::new(bytes, 0, Expect::Exactly(seg.base)).validate_records();
    loop {
        let b = match walk.next_batch() {
            Ok(b) => b,
            Err(stop) if stop.is_end() => break,
            Err(stop) => return Err(seg.stop_error(stop)),
        };
        let h = b.header;
        if h.is_transactional() || h.is_compressed() {
            // Transactions keep their batches (markers included) byte for
            // byte, and so do compressed batches (a producer's override on a
            // compacted topic): their records are kept whole.
            flush(&mut p, &mut out.bytes, &mut lens);
            out.bytes.extend_from_slice(b.bytes);
            out.kept += u64::from(h.count);
            p.base = h.next_offset();
            p.next = p.base;
            continue;
        }
        let span_too_long = h.next_offset() - p.base > u64::from(u32::MAX);
        let other_attrs = h.count > 0 && p.attributes.is_some_and(|a| a != h.attributes);
        if span_too_long || other_attrs || p.size >= MAX_OUT_BATCH {
            flush(&mut p, &mut out.bytes, &mut lens);
        }
        for r in b.records() {
            let r = r.map_err(|e| seg.stop_error(b.bad_record(e)))?;
            let o = h.base_offset + u64::from(r.offset_delta);
            let keep = match r.key {
                None => true,
                Some(k) => {
                    let latest = rules.latest.get(slice(b.bytes, k)) == Some(&o);
                    if latest && r.null_value && (rules.tombstone_expired)(o) {
                        out.tombstones_removed += 1;
                        false
                    } else {
                        latest
                    }
                }
            };
            if !keep {
                out.removed += 1;
                continue;
            }
            out.kept += 1;
            let kept = Kept::new(b.bytes, &r);
            p.size += kept.payload_size() + batch::RECORD_OVERHEAD;
            p.deltas.push(u32::try_from(o - p.base).unwrap_or(u32::MAX));
            p.records.push(kept);
            p.attributes.get_or_insert(h.attributes);
        }
        p.next = h.next_offset();
    }
    flush(&mut p, &mut out.bytes, &mut lens);
    Ok(out)
}

/// Encodes the pending batch (if it covers any offset) at the end of `out`.
fn flush(p: &mut Pending<'_>, out: &mut Vec<u8>, lens: &mut Vec<u32>) {
    if p.next > p.base {
        let last_delta = u32::try_from(p.next - p.base - 1).unwrap_or(u32::MAX);
        let shape = batch::Shape::v2(p.attributes.unwrap_or(0), 0).with_deltas(&p.deltas, last_delta);
        let ts = |r: &Kept<'_>| r.ts;
        let len = match batch::plan_lens(&p.records, ts, usize::MAX, &shape, lens) {
            (0, _) => shape.header_len(),
            (_, len) => len,
        };
        let at = out.len();
        out.resize(at + len, 0);
        if let Some(dst) = out.get_mut(at..) {
            batch::encode_planned(dst, p.base, &shape, &p.records, ts, lens);
        }
    }
    p.base = p.next;
    p.attributes = None;
    p.records.clear();
    p.deltas.clear();
    p.size = 0;
}
