//! The compressed side of the append path (a topic's or a producer's
//! `Compression`): plan a batch of records, encode it in a scratch buffer,
//! compress it (`format::compress`), then copy it into the mapping. Plain
//! appends never come here: they encode straight into the mapping.

use super::{LogInner, Writer};
use crate::error::{Error, Result};
use crate::format::batch::{self, Encode, Shape};
use crate::format::compress::{self, Codec};

/// Records (their plain encoding) per compressed batch, at most, unless one
/// record alone is larger: large enough for a good ratio, small enough that
/// a read of one record decompresses little more than it needs.
pub(super) const BATCH_TARGET: usize = 64 << 10;

/// Scratch buffers of the writer, kept across appends.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// The plain batch.
    plain: Vec<u8>,
    /// The compressed batch.
    packed: Vec<u8>,
}

impl LogInner {
    /// Appends records from the front of `records` as batches compressed
    /// with `codec` (rolling segments as needed) while compression shrinks
    /// them; returns the records left, which the caller appends plain: all
    /// of them from the first batch that would not shrink, whose first
    /// record is too large for a compressed batch, or when the codec is not
    /// built in. Never inlined: the plain append loop stays as it was.
    #[inline(never)]
    pub(super) fn append_compressed<'r, R: Encode>(
        &self,
        w: &mut Writer,
        records: &'r [R],
        ts: impl Fn(&R) -> i64,
        attributes: u8,
        codec: Codec,
    ) -> Result<&'r [R]> {
        let mut rest = records;
        while !rest.is_empty() {
            match self.append_compressed_batch(w, rest, &ts, attributes, codec)? {
                Some(n) => rest = rest.get(n..).unwrap_or_default(),
                None => break,
            }
        }
        Ok(rest)
    }

    /// One compressed batch of the records at the front of `records`: how
    /// many it wrote, or `None` (nothing written) when they are better
    /// written plain.
    fn append_compressed_batch<R: Encode>(
        &self,
        w: &mut Writer,
        records: &[R],
        ts: impl Fn(&R) -> i64,
        attributes: u8,
        codec: Codec,
    ) -> Result<Option<usize>> {
        let shape = Shape::v2(attributes, 0);
        let limit = usize::try_from(self.config.segment_bytes)
            .unwrap_or(usize::MAX)
            .min(batch::HEADER_LEN_V2 + compress::MAX_INFLATED_LEN);
        let target = limit.min(batch::HEADER_LEN_V2 + BATCH_TARGET);
        let (mut n, mut len) = batch::plan_lens(records, &ts, target, &shape, &mut w.body_lens);
        if n == 0 {
            (n, len) = batch::plan_lens(records, &ts, limit, &shape, &mut w.body_lens);
        }
        let Some(chunk) = records.get(..n).filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let scratch = &mut w.compress;
        scratch.plain.clear();
        scratch.plain.resize(len, 0);
        let plain = batch::encode_planned(&mut scratch.plain, w.next_offset, &shape, chunk, ts, &w.body_lens);
        let Some(header) = compress::deflate(codec, &scratch.plain, &plain, &mut scratch.packed) else {
            return Ok(None);
        };
        let size = scratch.packed.len();
        if size > w.map.as_ref().map_or(0, |m| m.remaining()) {
            if w.active.size() == 0 {
                // Smaller than its plain form, which fits an empty segment.
                return Ok(None);
            }
            self.roll(w)?;
        }
        let pos = w.active.size() as u32;
        let Some(map) = w.map.as_mut() else {
            return Err(Error::Closed);
        };
        let packed = &w.compress.packed;
        map.append(size, |dst| {
            if let Some(d) = dst.get_mut(..size) {
                d.copy_from_slice(packed);
            }
        })
        .map_err(|e| Error::io("appending to segment", &w.active.path, e))?;
        self.batch_written(w, pos, Some(&header), n, size);
        Ok(Some(n))
    }
}
