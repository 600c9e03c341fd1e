//! Record batches: the unit written to a segment `.log` file.
//!
//! ```text
//! offset size field
//!  0     4    magic           "LBat"
//!  4     4    batch_len       u32 LE, whole batch including this header
//!  8     4    crc             CRC-32 (IEEE) of bytes 12..batch_len
//! 12     1    version         1
//! 13     1    attributes      bit 0: timestamps are log-append time
//! 14     2    reserved        0
//! 16     8    base_offset     u64 LE
//! 24     8    base_timestamp  i64 LE (first record's timestamp)
//! 32     8    max_timestamp   i64 LE
//! 40     4    record_count    u32 LE, >= 1
//! 44     ..   records
//! ```
//!
//! Each record: `varint body_len`, then the body: `varint offset_delta`
//! (equal to the record's index in the batch), `varint zigzag(ts - base_ts)`,
//! `varint key_len + 1` (0 = no key) and the key, `varint value_len` and the
//! value, `varint header_count`, then per header `varint name_len`, UTF-8
//! name, `varint value_len`, value.

use super::{le, varint, DecodeError};

/// First four bytes of every batch.
pub const MAGIC: [u8; 4] = *b"LBat";
/// The batch format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Size of the fixed batch header.
pub const HEADER_LEN: usize = 44;
/// Attribute bit: timestamps were assigned by the log at append time.
pub const ATTR_LOG_APPEND_TIME: u8 = 0x01;
/// Attribute bits this version understands.
const KNOWN_ATTRS: u8 = ATTR_LOG_APPEND_TIME;
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
    /// The value.
    fn value_bytes(&self) -> &[u8];
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
}

impl BatchHeader {
    /// Offset after the last record of this batch.
    pub fn next_offset(&self) -> u64 {
        self.base_offset.saturating_add(u64::from(self.count))
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

/// Bytes a record takes inside a batch, length prefix included.
#[inline]
pub fn record_len<R: Encode>(r: &R, ts: i64, base_ts: i64, offset_delta: u32) -> usize {
    let body = record_body_len(r, ts, base_ts, offset_delta);
    varint::len(body as u64) + body
}

#[inline]
fn record_body_len<R: Encode>(r: &R, ts: i64, base_ts: i64, offset_delta: u32) -> usize {
    let value = r.value_bytes();
    let mut n = varint::len(u64::from(offset_delta))
        + varint::len(varint::zigzag(ts.wrapping_sub(base_ts)))
        + varint::len(value.len() as u64)
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

/// How many records from the front of `records` fit in one batch of at most
/// `max_len` bytes, and that batch's length. `(0, 0)` when not even the first fits.
pub fn plan<R: Encode>(records: &[R], ts: impl Fn(&R) -> i64, max_len: usize) -> (usize, usize) {
    plan_lens(records, ts, max_len, &mut Vec::new())
}

/// [`plan`], also leaving each planned record's body length in `body_lens`
/// for [`encode_planned`], so lengths are computed once per record.
pub fn plan_lens<R: Encode>(
    records: &[R],
    ts: impl Fn(&R) -> i64,
    max_len: usize,
    body_lens: &mut Vec<u32>,
) -> (usize, usize) {
    body_lens.clear();
    let Some(first) = records.first() else {
        return (0, 0);
    };
    let base_ts = ts(first);
    let mut len = HEADER_LEN;
    for (i, r) in records.iter().enumerate() {
        let delta = u32::try_from(i).unwrap_or(u32::MAX);
        let body = record_body_len(r, ts(r), base_ts, delta);
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

/// Encodes `records` as one batch into `dst`, which must be exactly the
/// length [`plan`] returned for them. Returns the batch header written.
pub fn encode<R: Encode>(
    dst: &mut [u8],
    base_offset: u64,
    attributes: u8,
    records: &[R],
    ts: impl Fn(&R) -> i64,
) -> BatchHeader {
    let mut lens = Vec::with_capacity(records.len());
    plan_lens(records, &ts, usize::MAX, &mut lens);
    encode_planned(dst, base_offset, attributes, records, ts, &lens)
}

/// [`encode`] with the body lengths [`plan_lens`] computed.
pub fn encode_planned<R: Encode>(
    dst: &mut [u8],
    base_offset: u64,
    attributes: u8,
    records: &[R],
    ts: impl Fn(&R) -> i64,
    body_lens: &[u32],
) -> BatchHeader {
    let base_ts = records.first().map(&ts).unwrap_or(0);
    let mut max_ts = i64::MIN;
    let mut pos = HEADER_LEN;
    for (i, (r, &body)) in records.iter().zip(body_lens).enumerate() {
        let t = ts(r);
        max_ts = max_ts.max(t);
        let delta = u32::try_from(i).unwrap_or(u32::MAX);
        let rest = dst.get_mut(pos..).unwrap_or_default();
        pos += write_record(rest, r, body as usize, t.wrapping_sub(base_ts), delta);
    }
    let header = BatchHeader {
        len: u32::try_from(pos).unwrap_or(u32::MAX),
        crc: 0,
        attributes,
        base_offset,
        base_timestamp: base_ts,
        max_timestamp: max_ts,
        count: u32::try_from(body_lens.len().min(records.len())).unwrap_or(u32::MAX),
    };
    let crc = write_header(dst, &header);
    BatchHeader { crc, ..header }
}

#[inline]
fn write_record<R: Encode>(dst: &mut [u8], r: &R, body: usize, ts_delta: i64, offset_delta: u32) -> usize {
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
    let value = r.value_bytes();
    w.varint(value.len() as u64);
    w.bytes(value);
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
    le::put(dst, 12, &[VERSION, h.attributes, 0, 0]);
    le::put(dst, 16, &h.base_offset.to_le_bytes());
    le::put(dst, 24, &h.base_timestamp.to_le_bytes());
    le::put(dst, 32, &h.max_timestamp.to_le_bytes());
    le::put(dst, 40, &h.count.to_le_bytes());
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
    if version != VERSION {
        return Peek::Unsupported(version);
    }
    if attributes & !KNOWN_ATTRS != 0 || le::u16_at(head, 14) != Some(0) {
        return Peek::Invalid(DecodeError::new(13, "unknown batch attribute bits"));
    }
    if (len as usize) < HEADER_LEN + 1 {
        return Peek::Invalid(DecodeError::new(4, "batch length shorter than a header and one record"));
    }
    let count = field(40);
    if count == 0 {
        return Peek::Invalid(DecodeError::new(40, "batch with zero records"));
    }
    let header = BatchHeader {
        len,
        crc: field(8),
        attributes,
        base_offset: le::u64_at(head, 16).unwrap_or(0),
        base_timestamp: le::i64_at(head, 24).unwrap_or(0),
        max_timestamp: le::i64_at(head, 32).unwrap_or(0),
        count,
    };
    if buf.len() < len as usize {
        return Peek::Truncated;
    }
    Peek::Batch(header)
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
    /// Value bytes.
    pub value: (u32, u32),
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
    header: BatchHeader,
}

impl<'a> Records<'a> {
    /// Iterates the records of `batch`, whose header is `header`.
    pub fn new(batch: &'a [u8], header: BatchHeader) -> Records<'a> {
        let end = (header.len as usize).min(batch.len());
        Records {
            batch: batch.get(..end).unwrap_or_default(),
            pos: HEADER_LEN,
            index: 0,
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
    #[inline(always)]
    fn decode_one(&mut self) -> Result<RecordRef, DecodeError> {
        let b = self.batch;
        let start = self.pos;
        let mut p = start;
        let body_len = varint::get(b, &mut p)?;
        let body_end = p
            .checked_add(usize::try_from(body_len).unwrap_or(usize::MAX))
            .filter(|&e| e <= b.len())
            .ok_or(DecodeError::new(start, "record length runs past the batch"))?;
        let body = b.get(..body_end).unwrap_or_default();
        let offset_delta = varint::get(body, &mut p)?;
        if offset_delta != u64::from(self.index) {
            return Err(DecodeError::new(start, "record offset delta out of sequence"));
        }
        let ts_delta = varint::unzigzag(varint::get(body, &mut p)?);
        let timestamp = self.header.base_timestamp.wrapping_add(ts_delta);
        let key = match varint::get(body, &mut p)? {
            0 => None,
            n => Some(take(body, &mut p, n - 1, "record key runs past the record")?),
        };
        let vlen = varint::get(body, &mut p)?;
        let value = take(body, &mut p, vlen, "record value runs past the record")?;
        let hcount = varint::get(body, &mut p)?;
        let hstart = p;
        for _ in 0..hcount {
            // Each header takes at least two bytes, so a huge count fails fast.
            let nlen = varint::get(body, &mut p)?;
            let (ns, ne) = take(body, &mut p, nlen, "header name runs past the record")?;
            let name = body.get(ns as usize..ne as usize).unwrap_or_default();
            if std::str::from_utf8(name).is_err() {
                return Err(DecodeError::new(ns as usize, "header name is not UTF-8"));
            }
            let hvlen = varint::get(body, &mut p)?;
            take(body, &mut p, hvlen, "header value runs past the record")?;
        }
        if p != body_end {
            return Err(DecodeError::new(p, "record body length does not match its fields"));
        }
        self.pos = body_end;
        Ok(RecordRef {
            offset_delta: self.index,
            timestamp,
            key,
            value,
            headers: (hstart as u32, body_end as u32),
            header_count: u32::try_from(hcount).unwrap_or(u32::MAX),
        })
    }
}

#[inline]
fn take(b: &[u8], p: &mut usize, n: u64, why: &'static str) -> Result<(u32, u32), DecodeError> {
    let start = *p;
    let end = start
        .checked_add(usize::try_from(n).unwrap_or(usize::MAX))
        .filter(|&e| e <= b.len())
        .ok_or(DecodeError::new(start, why))?;
    *p = end;
    Ok((start as u32, end as u32))
}

impl Iterator for Records<'_> {
    type Item = Result<RecordRef, DecodeError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.header.count {
            return None;
        }
        let r = self.decode_one();
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
        assert_eq!(rs[2].payload_size(), 300);
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
}
