//! Record batches: the unit written to a segment `.log` file.
//!
//! ```text
//! offset size field
//!  0     4    magic              "LBat"
//!  4     4    batch_len          u32 LE, whole batch including this header
//!  8     4    crc                CRC-32 (IEEE) of bytes 12..batch_len
//! 12     1    version            1 or 2
//! 13     1    attributes         bit 0: log-append time; v2: bit 1 transactional, bit 2 control,
//!                                bits 3-4 codec (0 none, 1 lz4, 2 zstd: see `compress`)
//! 14     2    reserved           0
//! 16     8    base_offset        u64 LE
//! 24     8    base_timestamp     i64 LE (first record's timestamp)
//! 32     8    max_timestamp      i64 LE
//! 40     4    record_count       u32 LE, >= 1 (v2: may be 0)
//! 44     4    last_offset_delta  v2 only: the batch covers base_offset ..= base_offset + this
//! 48     8    producer_id        v2 only: the transaction of a transactional batch, else 0
//! 44/56  ..   records
//! ```
//!
//! Each record: `varint body_len`, then the body: `varint offset_delta`
//! (v1: the record's index in the batch; v2: increasing, at most
//! `last_offset_delta`), `varint zigzag(ts - base_ts)`, `varint key_len + 1`
//! (0 = no key) and the key, the value (v1: `varint value_len`; v2:
//! `varint value_len + 1`, 0 = a null value) and the value bytes,
//! `varint header_count`, then per header `varint name_len`, UTF-8 name,
//! `varint value_len`, value.
//!
//! Version 1 is written whenever a batch needs nothing of version 2, so the
//! common batch keeps its bytes; [`Shape`] says which a batch is.

use super::{le, varint, DecodeError, Malformed};

/// First four bytes of every batch.
pub const MAGIC: [u8; 4] = *b"LBat";
/// Batch format version 1: records at contiguous offsets, no null values.
pub const V1: u8 = 1;
/// Batch format version 2: offset gaps, null values, transactions.
pub const V2: u8 = 2;
/// The newest batch format version this build reads and writes.
pub const VERSION: u8 = V2;
/// Size of the fixed header of a version 1 batch (the batches most appends write).
pub const HEADER_LEN: usize = 44;
/// Size of the fixed header of a version 2 batch.
pub const HEADER_LEN_V2: usize = 56;
/// Attribute bit: timestamps were assigned by the log at append time.
pub const ATTR_LOG_APPEND_TIME: u8 = 0x01;
/// Attribute bit (version 2): the batch belongs to the transaction `producer_id`.
pub const ATTR_TRANSACTIONAL: u8 = 0x02;
/// Attribute bit (version 2): the batch is a control batch (a transaction
/// marker); it is also transactional.
pub const ATTR_CONTROL: u8 = 0x04;
/// Attribute bits version 1 understands.
const KNOWN_ATTRS_V1: u8 = ATTR_LOG_APPEND_TIME;
/// Attribute bits version 2 understands (bits 3-4: the codec, see [`super::compress`]).
const KNOWN_ATTRS_V2: u8 = ATTR_LOG_APPEND_TIME | ATTR_TRANSACTIONAL | ATTR_CONTROL | super::compress::ATTR_CODEC_MASK;
/// Largest record framing overhead beyond key + value + header bytes, for one
/// record with no headers (length prefix, deltas, key and value lengths, header count).
pub const RECORD_OVERHEAD: usize = 5 * varint::MAX_LEN;

/// What the encoder needs of a record to send: implemented by the crate's
/// `Record` (owned bytes) and `BorrowedRecord` (the caller's bytes, no
/// allocation), beside their definitions, and by references to any
/// implementation.
pub trait Encode {
    /// The key, if any.
    fn key_bytes(&self) -> Option<&[u8]>;
    /// The value (empty for a null value).
    fn value_bytes(&self) -> &[u8];
    /// Whether the value is null (a tombstone), as distinct from empty. Only
    /// a version 2 batch can hold a null value.
    fn value_is_null(&self) -> bool {
        false
    }
    /// Number of headers.
    fn header_count(&self) -> usize;
    /// The headers in order, as (UTF-8 name bytes, value).
    fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])>;
    /// The timestamp set by the sender (`None`: the log's clock at the append).
    fn create_time(&self) -> Option<i64>;
    /// The partition set by the sender, if any.
    fn target_partition(&self) -> Option<u32>;
    /// Key, value and header bytes (what `max_record_bytes` limits).
    fn payload_size(&self) -> usize {
        self.key_bytes().map_or(0, <[u8]>::len)
            + self.value_bytes().len()
            + self.header_pairs().map(|(n, v)| n.len() + v.len()).sum::<usize>()
    }
}

impl<T: Encode> Encode for &T {
    fn key_bytes(&self) -> Option<&[u8]> {
        (**self).key_bytes()
    }
    fn value_bytes(&self) -> &[u8] {
        (**self).value_bytes()
    }
    fn value_is_null(&self) -> bool {
        (**self).value_is_null()
    }
    fn header_count(&self) -> usize {
        (**self).header_count()
    }
    fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        (**self).header_pairs()
    }
    fn create_time(&self) -> Option<i64> {
        (**self).create_time()
    }
    fn target_partition(&self) -> Option<u32> {
        (**self).target_partition()
    }
    fn payload_size(&self) -> usize {
        (**self).payload_size()
    }
}

/// The decoded fixed header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Whole batch length, header included.
    pub len: u32,
    /// Stored CRC of bytes `12..len`.
    pub crc: u32,
    /// Attribute bits.
    pub attributes: u8,
    /// Offset of the first record.
    pub base_offset: u64,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Number of records.
    pub count: u32,
    /// Format version ([`V1`] or [`V2`]).
    pub version: u8,
    /// The batch covers offsets `base_offset ..= base_offset + last_offset_delta`
    /// (version 1: `count - 1`; version 2 may leave offsets without a record).
    pub last_offset_delta: u32,
    /// The transaction of a transactional or control batch; 0 otherwise.
    pub producer_id: u64,
}

impl BatchHeader {
    /// Offset after the last offset this batch covers: the next batch's base offset.
    pub fn next_offset(&self) -> u64 {
        self.base_offset
            .saturating_add(u64::from(self.last_offset_delta))
            .saturating_add(1)
    }

    /// Size of this batch's fixed header.
    pub fn header_len(&self) -> usize {
        if self.version == V1 {
            HEADER_LEN
        } else {
            HEADER_LEN_V2
        }
    }

    /// Whether the batch belongs to a transaction (control batches included).
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch is a control batch (a transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether the records section is compressed (version 2, attribute bits 3-4).
    #[inline]
    pub fn is_compressed(&self) -> bool {
        super::compress::is_compressed(self)
    }
}

/// How a batch is laid out: its version and the fields only version 2 has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape<'a> {
    /// [`V1`] or [`V2`].
    pub version: u8,
    /// Attribute bits.
    pub attributes: u8,
    /// The transaction of a transactional batch (version 2); 0 otherwise.
    pub producer_id: u64,
    /// Each record's offset delta, increasing (version 2); `None`: 0, 1, 2, ...
    pub deltas: Option<&'a [u32]>,
    /// Offsets covered minus one (version 2); `None`: the last record's delta.
    pub last_offset_delta: Option<u32>,
}

impl Shape<'static> {
    /// A version 1 batch: contiguous offsets, no null values.
    pub const fn v1(attributes: u8) -> Shape<'static> {
        Shape {
            version: V1,
            attributes,
            producer_id: 0,
            deltas: None,
            last_offset_delta: None,
        }
    }

    /// A version 2 batch with contiguous offsets.
    pub const fn v2(attributes: u8, producer_id: u64) -> Shape<'static> {
        Shape {
            version: V2,
            attributes,
            producer_id,
            deltas: None,
            last_offset_delta: None,
        }
    }

    /// The oldest version that can hold `records`: version 2 only if one has a null value.
    pub fn for_records<R: Encode>(attributes: u8, records: &[R]) -> Shape<'static> {
        if records.iter().any(Encode::value_is_null) {
            Shape::v2(attributes, 0)
        } else {
            Shape::v1(attributes)
        }
    }
}

impl<'a> Shape<'a> {
    /// This version 2 shape with the records at `deltas` (increasing) and the
    /// batch covering `last_offset_delta + 1` offsets.
    pub fn with_deltas<'b>(self, deltas: &'b [u32], last_offset_delta: u32) -> Shape<'b> {
        Shape {
            version: V2,
            attributes: self.attributes,
            producer_id: self.producer_id,
            deltas: Some(deltas),
            last_offset_delta: Some(last_offset_delta),
        }
    }

    /// Size of the fixed header.
    pub fn header_len(&self) -> usize {
        if self.version == V1 {
            HEADER_LEN
        } else {
            HEADER_LEN_V2
        }
    }

    #[inline]
    fn delta(&self, i: usize) -> u32 {
        match self.deltas {
            None => u32::try_from(i).unwrap_or(u32::MAX),
            Some(d) => d.get(i).copied().unwrap_or(u32::MAX),
        }
    }
}

/// What lies at a position in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// A well-formed header (the CRC is not checked yet).
    Batch(BatchHeader),
    /// Zeros where a header would start: the unwritten end of a preallocated segment.
    End,
    /// A header or batch that runs past the end of the available bytes.
    Truncated,
    /// A batch header with a format version this build does not know (a newer logbus wrote it).
    Unsupported(u8),
    /// Bytes that are not a batch.
    Invalid(DecodeError),
}

/// Bytes a record takes inside a version 1 batch (version 2 when its value
/// is null), length prefix included.
#[inline]
pub fn record_len<R: Encode>(r: &R, ts: i64, base_ts: i64, offset_delta: u32) -> usize {
    let body = record_body_len(r, ts, base_ts, offset_delta, r.value_is_null());
    varint::len(body as u64) + body
}

#[inline(always)]
fn record_body_len<R: Encode>(r: &R, ts: i64, base_ts: i64, offset_delta: u32, v2: bool) -> usize {
    let value = r.value_bytes();
    let mut n = varint::len(u64::from(offset_delta))
        + varint::len(varint::zigzag(ts.wrapping_sub(base_ts)))
        + varint::len(value_field(r, v2))
        + value.len()
        + varint::len(r.header_count() as u64);
    n += match r.key_bytes() {
        None => 1,
        Some(k) => varint::len(k.len() as u64 + 1) + k.len(),
    };
    for (name, value) in r.header_pairs() {
        n += varint::len(name.len() as u64) + name.len() + varint::len(value.len() as u64) + value.len();
    }
    n
}

/// The varint before the value bytes: v1 the length; v2 the length + 1, 0 for null.
#[inline(always)]
fn value_field<R: Encode>(r: &R, v2: bool) -> u64 {
    let len = r.value_bytes().len() as u64;
    match (v2, r.value_is_null()) {
        (false, _) => len,
        (true, true) => 0,
        (true, false) => len + 1,
    }
}

/// How many records from the front of `records` fit in one version 1 batch
/// of at most `max_len` bytes, and that batch's length. `(0, 0)` when not
/// even the first fits.
pub fn plan<R: Encode>(records: &[R], ts: impl Fn(&R) -> i64, max_len: usize) -> (usize, usize) {
    plan_lens(records, ts, max_len, &Shape::v1(0), &mut Vec::new())
}

/// How many records from the front of `records` fit in one batch of `shape`
/// of at most `max_len` bytes, and that batch's length, leaving each planned
/// record's body length in `body_lens` for [`encode_planned`], so lengths are
/// computed once per record. `(0, 0)` when not even the first fits.
pub fn plan_lens<R: Encode>(
    records: &[R],
    ts: impl Fn(&R) -> i64,
    max_len: usize,
    shape: &Shape<'_>,
    body_lens: &mut Vec<u32>,
) -> (usize, usize) {
    // Two copies, as in the decoder: version 1 plans pay nothing for version 2.
    if shape.version == V1 {
        plan_shaped::<false, R>(records, ts, max_len, shape, body_lens)
    } else {
        plan_shaped::<true, R>(records, ts, max_len, shape, body_lens)
    }
}

#[inline(always)]
fn plan_shaped<const V2: bool, R: Encode>(
    records: &[R],
    ts: impl Fn(&R) -> i64,
    max_len: usize,
    shape: &Shape<'_>,
    body_lens: &mut Vec<u32>,
) -> (usize, usize) {
    body_lens.clear();
    let Some(first) = records.first() else {
        return (0, 0);
    };
    let limit = shape.deltas.map_or(u32::MAX as usize, <[u32]>::len);
    let base_ts = ts(first);
    let mut len = shape.header_len();
    for (i, r) in records.iter().enumerate().take(limit) {
        let delta = if V2 {
            shape.delta(i)
        } else {
            u32::try_from(i).unwrap_or(u32::MAX)
        };
        let body = record_body_len(r, ts(r), base_ts, delta, V2);
        let next = len + varint::len(body as u64) + body;
        if next > max_len || body_lens.len() == u32::MAX as usize {
            break;
        }
        len = next;
        body_lens.push(body as u32);
    }
    if body_lens.is_empty() {
        (0, 0)
    } else {
        (body_lens.len(), len)
    }
}

/// Encodes `records` as one version 1 batch into `dst`, which must be
/// exactly the length [`plan`] returned for them. Returns the header written.
pub fn encode<R: Encode>(
    dst: &mut [u8],
    base_offset: u64,
    attributes: u8,
    records: &[R],
    ts: impl Fn(&R) -> i64,
) -> BatchHeader {
    encode_shaped(dst, base_offset, &Shape::v1(attributes), records, ts)
}

/// Encodes `records` as one batch of `shape` into `dst`, which must be
/// exactly the length [`plan_lens`] returned for them.
pub fn encode_shaped<R: Encode>(
    dst: &mut [u8],
    base_offset: u64,
    shape: &Shape<'_>,
    records: &[R],
    ts: impl Fn(&R) -> i64,
) -> BatchHeader {
    let mut lens = Vec::with_capacity(records.len());
    plan_lens(records, &ts, usize::MAX, shape, &mut lens);
    encode_planned(dst, base_offset, shape, records, ts, &lens)
}

/// Encodes the records [`plan_lens`] planned, with the body lengths it computed.
/// With no records (version 2 only: a batch whose records compaction removed),
/// the timestamps are 0 and `shape.last_offset_delta` gives the offsets covered.
pub fn encode_planned<R: Encode>(
    dst: &mut [u8],
    base_offset: u64,
    shape: &Shape<'_>,
    records: &[R],
    ts: impl Fn(&R) -> i64,
    body_lens: &[u32],
) -> BatchHeader {
    if shape.version == V1 {
        encode_shaped_planned::<false, R>(dst, base_offset, shape, records, ts, body_lens)
    } else {
        encode_shaped_planned::<true, R>(dst, base_offset, shape, records, ts, body_lens)
    }
}

#[inline(always)]
fn encode_shaped_planned<const V2: bool, R: Encode>(
    dst: &mut [u8],
    base_offset: u64,
    shape: &Shape<'_>,
    records: &[R],
    ts: impl Fn(&R) -> i64,
    body_lens: &[u32],
) -> BatchHeader {
    let base_ts = records.first().map(&ts).unwrap_or(0);
    let mut max_ts = if records.is_empty() { 0 } else { i64::MIN };
    let mut pos = shape.header_len();
    let mut last_delta = 0;
    for (i, (r, &body)) in records.iter().zip(body_lens).enumerate() {
        let t = ts(r);
        max_ts = max_ts.max(t);
        last_delta = if V2 {
            shape.delta(i)
        } else {
            u32::try_from(i).unwrap_or(u32::MAX)
        };
        let rest = dst.get_mut(pos..).unwrap_or_default();
        pos += write_record(rest, r, body as usize, t.wrapping_sub(base_ts), last_delta, V2);
    }
    let header = BatchHeader {
        len: u32::try_from(pos).unwrap_or(u32::MAX),
        crc: 0,
        attributes: shape.attributes,
        base_offset,
        base_timestamp: base_ts,
        max_timestamp: max_ts,
        count: u32::try_from(body_lens.len().min(records.len())).unwrap_or(u32::MAX),
        version: shape.version,
        last_offset_delta: shape.last_offset_delta.unwrap_or(last_delta),
        producer_id: shape.producer_id,
    };
    let crc = write_header(dst, &header);
    BatchHeader { crc, ..header }
}

#[inline(always)]
fn write_record<R: Encode>(dst: &mut [u8], r: &R, body: usize, ts_delta: i64, offset_delta: u32, v2: bool) -> usize {
    let mut w = Writer { dst, pos: 0 };
    w.varint(body as u64);
    w.varint(u64::from(offset_delta));
    w.varint(varint::zigzag(ts_delta));
    match r.key_bytes() {
        None => w.varint(0),
        Some(k) => {
            w.varint(k.len() as u64 + 1);
            w.bytes(k);
        }
    }
    w.varint(value_field(r, v2));
    w.bytes(r.value_bytes());
    w.varint(r.header_count() as u64);
    for (name, value) in r.header_pairs() {
        w.varint(name.len() as u64);
        w.bytes(name);
        w.varint(value.len() as u64);
        w.bytes(value);
    }
    w.pos
}

struct Writer<'a> {
    dst: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    #[inline]
    fn varint(&mut self, v: u64) {
        let rest = self.dst.get_mut(self.pos..).unwrap_or_default();
        self.pos += varint::put(rest, v);
    }
    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        le::put(self.dst, self.pos, b);
        self.pos += b.len();
    }
}

/// Writes the fixed header into `dst[..HEADER_LEN]` and the CRC over
/// `dst[12..len]`; returns the CRC.
fn write_header(dst: &mut [u8], h: &BatchHeader) -> u32 {
    le::put(dst, 0, &MAGIC);
    le::put(dst, 4, &h.len.to_le_bytes());
    le::put(dst, 12, &[h.version, h.attributes, 0, 0]);
    le::put(dst, 16, &h.base_offset.to_le_bytes());
    le::put(dst, 24, &h.base_timestamp.to_le_bytes());
    le::put(dst, 32, &h.max_timestamp.to_le_bytes());
    le::put(dst, 40, &h.count.to_le_bytes());
    if h.version != V1 {
        le::put(dst, 44, &h.last_offset_delta.to_le_bytes());
        le::put(dst, 48, &h.producer_id.to_le_bytes());
    }
    let crc = crc32fast::hash(dst.get(12..h.len as usize).unwrap_or_default());
    le::put(dst, 8, &crc.to_le_bytes());
    crc
}

/// Reads the batch header at the start of `buf` (the rest of the segment).
pub fn peek(buf: &[u8]) -> Peek {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return if super::all_zero(buf) {
            Peek::End
        } else {
            Peek::Truncated
        };
    };
    if head.get(..4) != Some(&MAGIC[..]) {
        return if head.iter().all(|&b| b == 0) {
            Peek::End
        } else {
            Peek::Invalid(DecodeError::new(0, "batch magic \"LBat\" expected"))
        };
    }
    let field = |at| le::u32_at(head, at).unwrap_or(0);
    let len = field(4);
    let version = head.get(12).copied().unwrap_or(0);
    let attributes = head.get(13).copied().unwrap_or(0);
    let count = field(40);
    let (last_offset_delta, producer_id) = match version {
        V1 => {
            if attributes & !KNOWN_ATTRS_V1 != 0 || le::u16_at(head, 14) != Some(0) {
                return Peek::Invalid(DecodeError::new(13, "unknown batch attribute bits"));
            }
            if (len as usize) < HEADER_LEN + 1 {
                return Peek::Invalid(DecodeError::new(4, "batch length shorter than a header and one record"));
            }
            if count == 0 {
                return Peek::Invalid(DecodeError::new(40, "batch with zero records"));
            }
            (count - 1, 0)
        }
        V2 => match peek_v2(buf, attributes, len, count) {
            Ok(fields) => fields,
            Err(p) => return p,
        },
        _ => return Peek::Unsupported(version),
    };
    let header = BatchHeader {
        len,
        crc: field(8),
        attributes,
        base_offset: le::u64_at(head, 16).unwrap_or(0),
        base_timestamp: le::i64_at(head, 24).unwrap_or(0),
        max_timestamp: le::i64_at(head, 32).unwrap_or(0),
        count,
        version,
        last_offset_delta,
        producer_id,
    };
    if buf.len() < len as usize {
        return Peek::Truncated;
    }
    Peek::Batch(header)
}

/// The header checks and fields only version 2 has: `(last_offset_delta, producer_id)`.
#[cold]
fn peek_v2(buf: &[u8], attributes: u8, len: u32, count: u32) -> Result<(u32, u64), Peek> {
    let Some(head) = buf.get(..HEADER_LEN_V2) else {
        return Err(Peek::Truncated);
    };
    let invalid = |at, why| Err(Peek::Invalid(DecodeError::new(at, why)));
    if attributes & !KNOWN_ATTRS_V2 != 0 || le::u16_at(head, 14) != Some(0) {
        return invalid(13, "unknown batch attribute bits");
    }
    if (len as usize) < HEADER_LEN_V2 {
        return invalid(4, "batch length shorter than a header");
    }
    match super::compress::Codec::from_attributes(attributes) {
        Err(_) => return invalid(13, "unknown compression codec (attribute bits 3-4 must be 0, 1 or 2)"),
        Ok(Some(_)) if (len as usize) < HEADER_LEN_V2 + super::compress::INFLATED_LEN_FIELD => {
            return invalid(4, "compressed batch shorter than a header and its decompressed length")
        }
        Ok(_) => {}
    }
    let last_offset_delta = le::u32_at(head, 44).unwrap_or(0);
    let producer_id = le::u64_at(head, 48).unwrap_or(0);
    if u64::from(count) > u64::from(last_offset_delta) + 1 {
        return invalid(40, "more records than offsets the batch covers");
    }
    let transactional = attributes & ATTR_TRANSACTIONAL != 0;
    if attributes & ATTR_CONTROL != 0 && !transactional {
        return invalid(13, "a control batch that is not transactional");
    }
    if transactional != (producer_id != 0) {
        return invalid(
            48,
            "a producer id on a batch that is not transactional, or none on one that is",
        );
    }
    Ok((last_offset_delta, producer_id))
}

/// Checks the CRC of the batch at the start of `buf` from its length and CRC
/// fields alone, whatever its version (to tell a newer batch from damage).
pub fn crc_holds(buf: &[u8]) -> bool {
    let (Some(len), Some(crc)) = (le::u32_at(buf, 4), le::u32_at(buf, 8)) else {
        return false;
    };
    (len as usize) > 12 && buf.get(12..len as usize).is_some_and(|b| crc32fast::hash(b) == crc)
}

/// Checks the CRC of a whole batch (`batch.len() == header.len`).
pub fn crc_ok(batch: &[u8], header: &BatchHeader) -> bool {
    batch
        .get(12..header.len as usize)
        .is_some_and(|b| crc32fast::hash(b) == header.crc)
}

/// One decoded record; ranges are byte positions relative to the batch start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef {
    /// Offset delta from the batch's base offset.
    pub offset_delta: u32,
    /// The record's timestamp.
    pub timestamp: i64,
    /// Key bytes, if the record has a key.
    pub key: Option<(u32, u32)>,
    /// Value bytes (empty for a null value).
    pub value: (u32, u32),
    /// The value is null (a tombstone), as distinct from empty (version 2 only).
    pub null_value: bool,
    /// The encoded headers (count, then name/value pairs).
    pub headers: (u32, u32),
    /// Number of headers.
    pub header_count: u32,
}

/// Iterates the records of one batch. `batch` is the whole batch; the caller
/// has checked its CRC. Every length is checked against the batch's bounds.
pub struct Records<'a> {
    batch: &'a [u8],
    pos: usize,
    index: u32,
    /// The smallest offset delta the next record may have (version 2).
    next_delta: u64,
    /// Whether the batch is version 2 (decided once, not per record).
    v2: bool,
    header: BatchHeader,
}

impl<'a> Records<'a> {
    /// Iterates the records of `batch`, whose header is `header`.
    /// A compressed batch must be inflated first (`compress::inflate`):
    /// given its stored bytes, the first record fails to decode.
    pub fn new(batch: &'a [u8], header: BatchHeader) -> Records<'a> {
        let end = if header.is_compressed() {
            0
        } else {
            (header.len as usize).min(batch.len())
        };
        Records {
            batch: batch.get(..end).unwrap_or_default(),
            pos: header.header_len(),
            index: 0,
            next_delta: 0,
            v2: header.version != V1,
            header,
        }
    }

    /// Decodes every record and checks that they fill the batch exactly.
    pub fn validate(batch: &'a [u8], header: BatchHeader) -> Result<(), DecodeError> {
        let mut it = Records::new(batch, header);
        for r in &mut it {
            r?;
        }
        if it.pos != it.batch.len() {
            return Err(DecodeError::new(
                it.pos,
                "bytes left after the last record of the batch",
            ));
        }
        Ok(())
    }

    // Always: with several read paths instantiating the reader, the
    // compiler stopped inlining it into some, leaving a call per record in
    // the scan loop.
    //
    // `V2` makes two copies of the decoder, so a version 1 batch pays for
    // version 2's rules once per record (which copy to call), not per field.
    #[inline(always)]
    fn decode_one<const V2: bool>(&mut self) -> Result<RecordRef, Malformed> {
        let b = self.batch;
        let start = self.pos;
        let mut p = start;
        let body_len = varint::get(b, &mut p)?;
        let body_end = p
            .checked_add(usize::try_from(body_len).unwrap_or(usize::MAX))
            .filter(|&e| e <= b.len())
            .ok_or(Malformed::new(start, "record length runs past the batch"))?;
        let body = b.get(..body_end).unwrap_or_default();
        let offset_delta = varint::get(body, &mut p)?;
        let in_sequence = if V2 {
            offset_delta >= self.next_delta && offset_delta <= u64::from(self.header.last_offset_delta)
        } else {
            offset_delta == u64::from(self.index)
        };
        if !in_sequence {
            return Err(Malformed::new(start, "record offset delta out of sequence"));
        }
        let ts_delta = varint::unzigzag(varint::get(body, &mut p)?);
        let timestamp = self.header.base_timestamp.wrapping_add(ts_delta);
        let key = match varint::get(body, &mut p)? {
            0 => None,
            n => Some(take(body, &mut p, n - 1, "record key runs past the record")?),
        };
        let (vlen, null_value) = match varint::get(body, &mut p)? {
            0 if V2 => (0, true),
            n if V2 => (n - 1, false),
            n => (n, false),
        };
        let value = take(body, &mut p, vlen, "record value runs past the record")?;
        let hcount = varint::get(body, &mut p)?;
        let hstart = p;
        for _ in 0..hcount {
            // Each header takes at least two bytes, so a huge count fails fast.
            let nlen = varint::get(body, &mut p)?;
            let (ns, ne) = take(body, &mut p, nlen, "header name runs past the record")?;
            let name = body.get(ns as usize..ne as usize).unwrap_or_default();
            if std::str::from_utf8(name).is_err() {
                return Err(Malformed::new(ns as usize, "header name is not UTF-8"));
            }
            let hvlen = varint::get(body, &mut p)?;
            take(body, &mut p, hvlen, "header value runs past the record")?;
        }
        if p != body_end {
            return Err(Malformed::new(p, "record body length does not match its fields"));
        }
        self.pos = body_end;
        if V2 {
            self.next_delta = offset_delta + 1;
        }
        Ok(RecordRef {
            offset_delta: offset_delta as u32,
            timestamp,
            key,
            value,
            null_value,
            headers: (hstart as u32, body_end as u32),
            header_count: u32::try_from(hcount).unwrap_or(u32::MAX),
        })
    }
}

#[inline]
fn take(b: &[u8], p: &mut usize, n: u64, why: &'static str) -> Result<(u32, u32), Malformed> {
    let start = *p;
    let end = start
        .checked_add(usize::try_from(n).unwrap_or(usize::MAX))
        .filter(|&e| e <= b.len())
        .ok_or(Malformed::new(start, why))?;
    *p = end;
    Ok((start as u32, end as u32))
}

impl Iterator for Records<'_> {
    type Item = Result<RecordRef, Malformed>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.header.count {
            return None;
        }
        let r = if self.v2 {
            self.decode_one::<true>()
        } else {
            self.decode_one::<false>()
        };
        match r {
            Ok(_) => self.index += 1,
            Err(_) => self.index = self.header.count,
        }
        Some(r)
    }
}

/// Iterates encoded headers (as stored in a record) as `(name, value)` pairs.
/// The bytes were validated when the record was decoded; malformed input
/// simply ends the iteration.
pub fn headers(encoded: &[u8], count: u32) -> impl Iterator<Item = (&str, &[u8])> {
    let mut p = 0usize;
    (0..count).map_while(move |_| {
        let nlen = varint::get(encoded, &mut p).ok()?;
        let (ns, ne) = take(encoded, &mut p, nlen, "").ok()?;
        let name = std::str::from_utf8(encoded.get(ns as usize..ne as usize)?).ok()?;
        let vlen = varint::get(encoded, &mut p).ok()?;
        let (vs, ve) = take(encoded, &mut p, vlen, "").ok()?;
        Some((name, encoded.get(vs as usize..ve as usize)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the encoder sees it (the crate's `Record` lives above `format`).
    struct Rec {
        key: Option<&'static [u8]>,
        value: Vec<u8>,
        headers: Vec<(&'static str, &'static [u8])>,
        timestamp: i64,
    }

    impl Encode for Rec {
        fn key_bytes(&self) -> Option<&[u8]> {
            self.key
        }
        fn value_bytes(&self) -> &[u8] {
            &self.value
        }
        fn header_count(&self) -> usize {
            self.headers.len()
        }
        fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
            self.headers.iter().map(|&(n, v)| (n.as_bytes(), v))
        }
        fn create_time(&self) -> Option<i64> {
            Some(self.timestamp)
        }
        fn target_partition(&self) -> Option<u32> {
            None
        }
    }

    fn recs() -> Vec<Rec> {
        vec![
            Rec {
                key: Some(b"k"),
                value: b"hello".to_vec(),
                headers: vec![],
                timestamp: 1000,
            },
            Rec {
                key: None,
                value: vec![],
                headers: vec![("a", b"1"), ("a", b"2")],
                timestamp: 990,
            },
            Rec {
                key: Some(b""),
                value: vec![7u8; 300],
                headers: vec![],
                timestamp: 5000,
            },
        ]
    }

    fn ts(r: &Rec) -> i64 {
        r.timestamp
    }

    #[test]
    fn payload_size_counts_key_value_and_headers() {
        let rs = recs();
        assert_eq!(rs[0].payload_size(), 1 + 5);
        assert_eq!(rs[1].payload_size(), 2 * (1 + 1));
        // Through the blanket impl for references.
        let by_ref: &Rec = &rs[2];
        assert_eq!(<&Rec as Encode>::payload_size(&by_ref), 300);
    }

    #[test]
    fn encode_decode_round_trip() {
        let rs = recs();
        let (n, len) = plan(&rs, ts, 1 << 20);
        assert_eq!(n, 3);
        let mut buf = vec![0u8; len];
        let h = encode(&mut buf, 42, 0, &rs, ts);
        assert_eq!(h.len as usize, len);
        let Peek::Batch(p) = peek(&buf) else { panic!("no batch") };
        assert_eq!(p, h);
        assert!(crc_ok(&buf, &p));
        assert_eq!(p.max_timestamp, 5000);
        Records::validate(&buf, p).unwrap();
        let out: Vec<RecordRef> = Records::new(&buf, p).map(|r| r.unwrap()).collect();
        assert_eq!(out.len(), 3);
        let slice = |r: (u32, u32)| &buf[r.0 as usize..r.1 as usize];
        assert_eq!(slice(out[0].key.unwrap()), b"k");
        assert_eq!(slice(out[0].value), b"hello");
        assert_eq!(out[1].timestamp, 990);
        assert_eq!(out[1].key, None);
        let hs: Vec<_> = headers(slice(out[1].headers), out[1].header_count).collect();
        assert_eq!(hs, vec![("a", &b"1"[..]), ("a", &b"2"[..])]);
        assert_eq!(slice(out[2].key.unwrap()), b"");
        assert_eq!(slice(out[2].value).len(), 300);
    }

    #[test]
    fn plan_respects_max_len() {
        let rs = recs();
        // The first record takes 12 bytes, the second 14.
        let (n, len) = plan(&rs, ts, HEADER_LEN + 20);
        assert_eq!((n, len), (1, HEADER_LEN + 12));
        assert_eq!(plan(&rs, ts, HEADER_LEN + 26).0, 2);
        assert_eq!(plan(&rs, ts, HEADER_LEN + 2), (0, 0));
    }

    #[test]
    fn peek_classifies_damage() {
        assert_eq!(peek(&[0u8; 100]), Peek::End);
        assert_eq!(peek(&[0u8; 3]), Peek::End);
        assert_eq!(peek(&[1u8; 3]), Peek::Truncated);
        assert!(matches!(peek(&[9u8; 100]), Peek::Invalid(_)));
        let rs = recs();
        let (_, len) = plan(&rs, ts, 1 << 20);
        let mut buf = vec![0u8; len];
        encode(&mut buf, 0, 0, &rs, ts);
        assert_eq!(peek(&buf[..len - 1]), Peek::Truncated);
        let Peek::Batch(h) = peek(&buf) else { panic!() };
        buf[len - 1] ^= 1;
        assert!(!crc_ok(&buf, &h));
    }

    /// A record with a null value (what compaction's tombstones are).
    struct Null(&'static [u8]);

    impl Encode for Null {
        fn key_bytes(&self) -> Option<&[u8]> {
            Some(self.0)
        }
        fn value_bytes(&self) -> &[u8] {
            &[]
        }
        fn value_is_null(&self) -> bool {
            true
        }
        fn header_count(&self) -> usize {
            0
        }
        fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
            std::iter::empty()
        }
        fn create_time(&self) -> Option<i64> {
            Some(7)
        }
        fn target_partition(&self) -> Option<u32> {
            None
        }
    }

    fn encode_v2<R: Encode>(base: u64, shape: &Shape<'_>, rs: &[R], ts: impl Fn(&R) -> i64) -> Vec<u8> {
        let mut lens = Vec::new();
        let len = match plan_lens(rs, &ts, usize::MAX, shape, &mut lens) {
            (0, _) => shape.header_len(),
            (_, len) => len,
        };
        let mut buf = vec![0u8; len];
        let h = encode_planned(&mut buf, base, shape, rs, ts, &lens);
        assert_eq!(h.len as usize, len);
        buf
    }

    #[test]
    fn version_2_keeps_gaps_null_values_and_the_producer_id() {
        let rs = recs();
        let deltas = [0, 5, 9];
        let shape = Shape::v2(ATTR_TRANSACTIONAL, 77).with_deltas(&deltas, 12);
        let buf = encode_v2(100, &shape, &rs, ts);
        let Peek::Batch(h) = peek(&buf) else { panic!("no batch") };
        assert_eq!(
            (h.version, h.count, h.last_offset_delta, h.producer_id),
            (V2, 3, 12, 77)
        );
        assert_eq!(h.next_offset(), 113);
        assert!(h.is_transactional() && !h.is_control());
        assert!(crc_ok(&buf, &h));
        Records::validate(&buf, h).unwrap();
        let out: Vec<RecordRef> = Records::new(&buf, h).map(|r| r.unwrap()).collect();
        assert_eq!(out.iter().map(|r| r.offset_delta).collect::<Vec<_>>(), deltas);
        let slice = |r: (u32, u32)| &buf[r.0 as usize..r.1 as usize];
        assert_eq!(slice(out[0].value), b"hello");
        assert_eq!(slice(out[2].value).len(), 300);
        assert!(out.iter().all(|r| !r.null_value));

        // A null value is distinct from an empty one, and picks version 2 by itself.
        let nulls = [Null(b"gone")];
        let shape = Shape::for_records(0, &nulls);
        assert_eq!(shape.version, V2);
        let buf = encode_v2(0, &shape, &nulls, |_| 7);
        let Peek::Batch(h) = peek(&buf) else { panic!("no batch") };
        let r = Records::new(&buf, h).next().unwrap().unwrap();
        assert!(r.null_value);
        assert_eq!(slice_of(&buf, r.key.unwrap()), b"gone");
        assert_eq!(Shape::for_records(0, &rs).version, V1);
    }

    fn slice_of(buf: &[u8], r: (u32, u32)) -> &[u8] {
        &buf[r.0 as usize..r.1 as usize]
    }

    #[test]
    fn an_empty_version_2_batch_covers_its_offsets() {
        let shape = Shape::v2(0, 0).with_deltas(&[], 4);
        let buf = encode_v2::<Rec>(10, &shape, &[], ts);
        assert_eq!(buf.len(), HEADER_LEN_V2);
        let Peek::Batch(h) = peek(&buf) else { panic!("no batch") };
        assert_eq!((h.count, h.next_offset()), (0, 15));
        Records::validate(&buf, h).unwrap();
        assert_eq!(Records::new(&buf, h).count(), 0);
    }

    #[test]
    fn version_2_header_rules() {
        let rs = recs();
        let bad = |shape: Shape<'_>, why: &str| {
            let buf = encode_v2(0, &shape, &rs, ts);
            match peek(&buf) {
                Peek::Invalid(e) => assert!(e.reason.contains(why), "{e}"),
                other => panic!("{other:?}"),
            }
        };
        bad(Shape::v2(ATTR_CONTROL, 5), "control batch");
        bad(Shape::v2(0, 5), "producer id");
        bad(Shape::v2(ATTR_TRANSACTIONAL, 0), "producer id");
        bad(Shape::v2(0, 0).with_deltas(&[0, 1, 2], 1), "more records");
        // Deltas must increase and stay within the batch's offsets.
        for deltas in [[0u32, 3, 3], [2, 1, 5]] {
            let buf = encode_v2(0, &Shape::v2(0, 0).with_deltas(&deltas, 9), &rs, ts);
            let Peek::Batch(h) = peek(&buf) else { panic!("no batch") };
            let e = Records::validate(&buf, h).unwrap_err();
            assert!(e.reason.contains("offset delta"), "{e}");
        }
        // A version 2 header cut before its last field is torn, not valid.
        let buf = encode_v2(0, &Shape::v2(0, 0), &rs, ts);
        assert_eq!(peek(&buf[..50]), Peek::Truncated);
    }
}
