//! Walking a segment's batches: the one place that decides whether a batch
//! may be read and what to call it when it may not.
//!
//! Every reader of `.log` bytes goes through [`Walker`]: recovery, reads,
//! time lookups, truncation, index rebuilds, `verify`, and the read-only
//! tools (`inspect`, `dump`). A [`Batch`] comes out only when its header is
//! well formed, its base offset is the one expected and its CRC holds, so no
//! reader can hand out a record of a damaged batch. Everything else ends the
//! walk with a [`Stop`], whose [`Damage`] carries the one wording of each
//! kind of damage.

use std::fmt;

use super::batch::{self, BatchHeader, Peek, Records};
use super::compress::{self, Codec, InflateError};
use super::DecodeError;

/// Which base offset the next batch must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this one (the walk knows the offset of the batch at its position).
    Exactly(u64),
    /// This one or an earlier one: the position came from a sparse index
    /// entry for a batch at or before this offset.
    AtMost(u64),
    /// Any: a file whose base offset is unknown. Later batches must follow on.
    Any,
}

/// What may follow the last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Nothing: the bytes are a sealed segment or the published part of an
    /// active one, so zeros where a batch should start are damage.
    BatchesOnly,
    /// Zeros to the end are the unwritten, preallocated room of an active
    /// segment (recovery, and files a live writer may still be writing).
    Zeros,
}

/// A batch whose header is well formed, whose base offset is the one
/// expected and whose CRC holds.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Byte position of the batch in the walked bytes.
    pub pos: usize,
    /// The decoded header.
    pub header: BatchHeader,
    /// The whole batch (`header.len` bytes).
    pub bytes: &'a [u8],
}

impl<'a> Batch<'a> {
    /// The batch's records. A record that does not decode ends the iteration
    /// with an error: turn it into a [`Stop`] with [`bad_record`](Self::bad_record).
    #[inline(always)]
    pub fn records(&self) -> Records<'a> {
        Records::new(self.bytes, self.header)
    }

    /// Whether the batch's records are compressed: read them with
    /// [`inflate`](Self::inflate), not [`records`](Self::records).
    #[inline(always)]
    pub fn is_compressed(&self) -> bool {
        self.header.is_compressed()
    }

    /// Decompresses a compressed batch into `out` (see
    /// [`compress::inflate`]) and returns the header of the plain batch it
    /// holds: read its records with `Records::new(out, header)`. Damaged
    /// compressed data (or a decompressed length over the limit) is a
    /// [`Damage::Compressed`] stop, a codec this build lacks a
    /// [`StopKind::Codec`] stop.
    #[cold]
    pub fn inflate(&self, out: &mut Vec<u8>) -> Result<BatchHeader, Stop> {
        compress::inflate(self.bytes, &self.header, out).map_err(|e| match e {
            InflateError::Damage(error) => Stop {
                pos: self.pos,
                at: self.pos + error.at,
                kind: StopKind::Damage(Damage::Compressed {
                    header: self.header,
                    error: Box::new(error),
                }),
            },
            InflateError::Unavailable(codec) => Stop {
                pos: self.pos,
                at: self.pos,
                kind: StopKind::Codec(codec),
            },
        })
    }

    /// The stop for a record of this batch that does not decode. In a
    /// compressed batch, the error's position is in the decompressed batch;
    /// the stop's is the start of the compressed records.
    pub fn bad_record(&self, e: impl Into<DecodeError>) -> Stop {
        let e = e.into();
        let inside = if self.is_compressed() {
            batch::HEADER_LEN_V2
        } else {
            e.at
        };
        Stop {
            pos: self.pos,
            at: self.pos + inside,
            kind: StopKind::Damage(Damage::Record {
                header: self.header,
                error: e,
            }),
        }
    }
}

/// Why a walk ended, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// Position after the last batch the walk yielded: where the damage, the
    /// newer batch or the end begins. A recovery cuts the segment here.
    pub pos: usize,
    /// Position of the damage itself (inside the batch for a bad header
    /// field or record; `pos` otherwise).
    pub at: usize,
    /// What was found there.
    pub kind: StopKind,
}

impl Stop {
    /// The walk reached the end of the bytes (or, where zeros may follow,
    /// zeros to the end) without damage.
    pub fn is_end(&self) -> bool {
        self.kind == StopKind::End
    }

    /// The damage found, if the walk stopped at damage.
    pub fn damage(&self) -> Option<&Damage> {
        match &self.kind {
            StopKind::Damage(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            StopKind::End => write!(f, "end of the segment's batches"),
            StopKind::Unsupported(v) => write!(
                f,
                "batch format version {v} (written by a newer logbus; this build reads versions 1 to {})",
                batch::VERSION
            ),
            StopKind::Codec(c) => write!(
                f,
                "batch compressed with {0} (this build of logbus lacks the cargo feature `{0}`)",
                c.name()
            ),
            StopKind::Damage(d) => d.fmt(f),
        }
    }
}

/// What a walk stopped at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopKind {
    /// The end of the batches: no damage.
    End,
    /// An intact batch (its CRC holds) of a newer format version: not
    /// damage, and nothing may be cut; this build cannot read it.
    Unsupported(u8),
    /// An intact batch compressed with a codec this build lacks (its cargo
    /// feature is off): not damage, and nothing may be cut.
    Codec(Codec),
    /// Bytes that are not a readable batch.
    Damage(Damage),
}

/// The kinds of damage a walk can meet, each with its one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Zeros where a batch was expected, in bytes that hold only batches.
    Zeros,
    /// Zeros where a batch was expected, then data again at `data_at`.
    ZerosThenData {
        /// Position of the first non-zero byte after the zeros.
        data_at: usize,
    },
    /// A batch, or its header, runs past the end of the bytes.
    Torn,
    /// A header that is not a batch header (magic, length, attributes, count).
    Header(DecodeError),
    /// A version byte this build does not know, in a batch whose CRC fails:
    /// a damaged byte rather than a newer format.
    Version(u8),
    /// A well-formed batch with another base offset than the one expected.
    Sequence {
        /// The batch's header.
        header: BatchHeader,
        /// The offset expected (for [`Expect::AtMost`], the largest allowed).
        expected: u64,
    },
    /// A batch whose CRC does not match its bytes.
    Crc {
        /// The batch's header (its fields are not covered by a valid CRC).
        header: BatchHeader,
    },
    /// A compressed batch whose CRC holds but whose records do not
    /// decompress, or claim more than `compress::MAX_INFLATED_LEN` bytes.
    Compressed {
        /// The batch's header.
        header: BatchHeader,
        /// What is wrong (position relative to the batch). Boxed: a second
        /// variant as large as `Record` would grow every walk's `Result`.
        error: Box<DecodeError>,
    },
    /// A batch whose CRC holds but whose records do not decode.
    Record {
        /// The batch's header.
        header: BatchHeader,
        /// The record's decoding error (position relative to the batch).
        error: DecodeError,
    },
}

impl Damage {
    /// The header of the damaged batch, when it was readable (a walk that
    /// shows bad batches can step over it: see [`Walker::step_over`]).
    pub fn header(&self) -> Option<&BatchHeader> {
        match self {
            Damage::Sequence { header, .. }
            | Damage::Crc { header }
            | Damage::Compressed { header, .. }
            | Damage::Record { header, .. } => Some(header),
            _ => None,
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Zeros => write!(f, "zeros where a batch was expected"),
            Damage::ZerosThenData { data_at } => {
                write!(f, "zeros where a batch was expected, then data again at byte {data_at}")
            }
            Damage::Torn => write!(f, "batch cut short (a torn or unfinished write)"),
            Damage::Header(e) => write!(f, "bad batch header: {}", e.message()),
            Damage::Version(v) => write!(f, "batch version byte {v} with a CRC mismatch"),
            Damage::Sequence { header, expected } => write!(
                f,
                "batch at offset {} where {expected} was expected",
                header.base_offset
            ),
            Damage::Crc { header } => write!(f, "batch CRC mismatch (batch at offset {})", header.base_offset),
            Damage::Compressed { header, error } => write!(
                f,
                "bad compressed records in the batch at offset {}: {}",
                header.base_offset,
                error.message()
            ),
            Damage::Record { header, error } if header.is_compressed() => write!(
                f,
                "bad record in the batch at offset {} (at byte {} of the decompressed batch): {}",
                header.base_offset,
                error.at,
                error.message()
            ),
            Damage::Record { header, error } => write!(
                f,
                "bad record in the batch at offset {}: {}",
                header.base_offset,
                error.message()
            ),
        }
    }
}

/// Walks the batches of a segment's bytes from a position.
///
/// ```
/// use logbus::format::walk::{Expect, Walker};
/// let bytes: &[u8] = &[]; // a segment's bytes
/// let mut walk = Walker::new(bytes, 0, Expect::Exactly(0));
/// let stop = loop {
///     match walk.next_batch() {
///         Ok(batch) => {
///             for record in batch.records() {
///                 let _record = record.map_err(|e| batch.bad_record(e));
///             }
///         }
///         Err(stop) => break stop,
///     }
/// };
/// assert!(stop.is_end());
/// ```
#[derive(Debug, Clone)]
pub struct Walker<'a> {
    bytes: &'a [u8],
    pos: usize,
    expect: Expect,
    tail: Tail,
    validate: bool,
    /// Where `validate` decompresses compressed batches.
    scratch: Vec<u8>,
}

impl<'a> Walker<'a> {
    /// A walk of `bytes` from `pos`, where only batches may follow (a sealed
    /// segment, or the published part of an active one).
    #[inline]
    pub fn new(bytes: &'a [u8], pos: usize, expect: Expect) -> Walker<'a> {
        Walker {
            bytes,
            pos,
            expect,
            tail: Tail::BatchesOnly,
            validate: false,
            scratch: Vec::new(),
        }
    }

    /// Zeros running to the end of the bytes end the walk cleanly (the
    /// preallocated room of an active segment); zeros followed by data are damage.
    #[must_use]
    pub fn zero_tail(mut self) -> Walker<'a> {
        self.tail = Tail::Zeros;
        self
    }

    /// Decodes every record of a batch before yielding it, so a batch comes
    /// out only if all its records decode (recovery and `verify`; readers
    /// decode the records as they hand them out instead).
    #[must_use]
    pub fn validate_records(mut self) -> Walker<'a> {
        self.validate = true;
        self
    }

    /// Position of the next batch.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The base offset the next batch must have.
    pub fn expect(&self) -> Expect {
        self.expect
    }

    /// The next batch, or why there is none. A stopped walk stays stopped:
    /// calling again returns the same stop.
    #[inline(always)]
    pub fn next_batch(&mut self) -> Result<Batch<'a>, Stop> {
        let pos = self.pos;
        let rest = self.bytes.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return Err(self.stop(pos, StopKind::End));
        }
        let h = match batch::peek(rest) {
            Peek::Batch(h) => h,
            Peek::End => return Err(self.at_zeros(rest)),
            Peek::Truncated => return Err(self.damage(pos, Damage::Torn)),
            Peek::Invalid(e) => {
                return Err(Stop {
                    pos,
                    at: pos + e.at,
                    kind: StopKind::Damage(Damage::Header(e)),
                })
            }
            // A newer format only if the batch is intact; a flipped version byte is damage.
            Peek::Unsupported(v) if batch::crc_holds(rest) => return Err(self.stop(pos, StopKind::Unsupported(v))),
            Peek::Unsupported(v) => {
                return Err(Stop {
                    pos,
                    at: pos + 12,
                    kind: StopKind::Damage(Damage::Version(v)),
                })
            }
        };
        let out_of_sequence = match self.expect {
            Expect::Exactly(e) if h.base_offset != e => Some(e),
            Expect::AtMost(e) if h.base_offset > e => Some(e),
            _ => None,
        };
        if let Some(expected) = out_of_sequence {
            return Err(self.damage(pos, Damage::Sequence { header: h, expected }));
        }
        let bytes = rest.get(..h.len as usize).unwrap_or_default();
        if !batch::crc_ok(bytes, &h) {
            return Err(self.damage(pos, Damage::Crc { header: h }));
        }
        let found = Batch { pos, header: h, bytes };
        if self.validate {
            if h.is_compressed() {
                self.validate_compressed(&found)?;
            } else if let Err(e) = Records::validate(bytes, h) {
                return Err(found.bad_record(e));
            }
            if h.is_control() {
                if let Err(e) = super::txn::control_of(bytes, h) {
                    return Err(found.bad_record(e));
                }
            }
        }
        self.pos = pos + h.len as usize;
        self.expect = Expect::Exactly(h.next_offset());
        Ok(found)
    }

    /// Moves past the batches that end at or before `offset`, reading their
    /// headers only (a reader that seeks past a damaged batch reads on, as in
    /// Kafka). Their base offsets must still follow on, so a damaged length
    /// or count that skipped records is caught at the next batch. Stops
    /// quietly at anything else: [`next_batch`](Self::next_batch) reports it.
    #[inline]
    pub fn skip_before(&mut self, offset: u64) {
        while let Some(Peek::Batch(h)) = self.bytes.get(self.pos..).map(batch::peek) {
            let in_sequence = match self.expect {
                Expect::Exactly(e) => h.base_offset == e,
                Expect::AtMost(e) => h.base_offset <= e,
                Expect::Any => true,
            };
            if !in_sequence || h.next_offset() > offset {
                return;
            }
            self.pos += h.len as usize;
            self.expect = Expect::Exactly(h.next_offset());
        }
    }

    /// Steps over the damaged batch a walk stopped at, when its header was
    /// readable, and expects the offsets after it. For tools that show
    /// every batch (`dump`); readers never do this. Returns false (and
    /// stays put) when the damage has no readable header.
    pub fn step_over(&mut self, stop: &Stop) -> bool {
        match stop.damage().and_then(Damage::header) {
            Some(h) if stop.pos == self.pos => {
                self.pos = stop.pos + h.len as usize;
                self.expect = Expect::Exactly(h.next_offset());
                true
            }
            _ => false,
        }
    }

    /// Decompresses a compressed batch and decodes every record of it.
    #[cold]
    fn validate_compressed(&mut self, found: &Batch<'a>) -> Result<(), Stop> {
        let plain = found.inflate(&mut self.scratch)?;
        Records::validate(&self.scratch, plain).map_err(|e| found.bad_record(e))
    }

    /// Zeros (or a short all-zero rest) where a header would start.
    #[cold]
    fn at_zeros(&self, rest: &[u8]) -> Stop {
        let pos = self.pos;
        match self.tail {
            Tail::BatchesOnly => self.damage(pos, Damage::Zeros),
            // Word-wide first: a reopen checks an active segment's whole
            // zero tail, up to its preallocated room.
            Tail::Zeros if super::all_zero(rest) => self.stop(pos, StopKind::End),
            Tail::Zeros => {
                let data_at = pos + rest.iter().position(|&b| b != 0).unwrap_or(0);
                self.damage(pos, Damage::ZerosThenData { data_at })
            }
        }
    }

    fn damage(&self, pos: usize, d: Damage) -> Stop {
        self.stop(pos, StopKind::Damage(d))
    }

    fn stop(&self, pos: usize, kind: StopKind) -> Stop {
        Stop { pos, at: pos, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::batch::{encode, plan, Encode};

    struct Rec(&'static [u8]);
    impl Encode for Rec {
        fn key_bytes(&self) -> Option<&[u8]> {
            None
        }
        fn value_bytes(&self) -> &[u8] {
            self.0
        }
        fn header_count(&self) -> usize {
            0
        }
        fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
            std::iter::empty()
        }
        fn create_time(&self) -> Option<i64> {
            None
        }
        fn target_partition(&self) -> Option<u32> {
            None
        }
    }

    /// Three batches of two records each, offsets 10..16.
    fn segment() -> Vec<u8> {
        let mut out = Vec::new();
        for b in 0..3u64 {
            let rs = [Rec(b"first value"), Rec(b"second")];
            let (_, len) = plan(&rs, |_| 7, usize::MAX);
            let mut buf = vec![0u8; len];
            encode(&mut buf, 10 + 2 * b, 0, &rs, |_| 7);
            out.extend_from_slice(&buf);
        }
        out
    }

    fn walk_all(w: &mut Walker<'_>) -> (Vec<u64>, Stop) {
        let mut bases = Vec::new();
        loop {
            match w.next_batch() {
                Ok(b) => bases.push(b.header.base_offset),
                Err(s) => return (bases, s),
            }
        }
    }

    #[test]
    fn walks_every_batch_to_a_clean_end() {
        let seg = segment();
        let (bases, stop) = walk_all(&mut Walker::new(&seg, 0, Expect::Exactly(10)));
        assert_eq!(bases, [10, 12, 14]);
        assert!(stop.is_end());
        assert_eq!(stop.pos, seg.len());
    }

    #[test]
    fn version_2_batches_with_gaps_follow_on_by_the_offsets_they_cover() {
        use crate::format::batch::{encode_planned, plan_lens, Shape};
        let mut seg = segment(); // 10..16
        let rs = [Rec(b"kept"), Rec(b"also kept")];
        let shape = Shape::v2(0, 0).with_deltas(&[1, 4], 6); // offsets 16..23, records at 17 and 20
        let mut lens = Vec::new();
        let (_, len) = plan_lens(&rs, |_| 7, usize::MAX, &shape, &mut lens);
        let mut buf = vec![0u8; len];
        encode_planned(&mut buf, 16, &shape, &rs, |_| 7, &lens);
        seg.extend_from_slice(&buf);
        let (_, len) = plan(&rs, |_| 7, usize::MAX);
        let mut buf = vec![0u8; len];
        encode(&mut buf, 23, 0, &rs, |_| 7);
        seg.extend_from_slice(&buf);

        let mut w = Walker::new(&seg, 0, Expect::Exactly(10)).validate_records();
        let (bases, stop) = walk_all(&mut w);
        assert_eq!(bases, [10, 12, 14, 16, 23]);
        assert!(stop.is_end(), "{stop}");
        // A reader after offset 18 skips to the batch covering it.
        let mut w = Walker::new(&seg, 0, Expect::Exactly(10));
        w.skip_before(18);
        let b = w.next_batch().unwrap();
        assert_eq!(b.header.base_offset, 16);
        let offsets: Vec<u64> = b.records().map(|r| 16 + u64::from(r.unwrap().offset_delta)).collect();
        assert_eq!(offsets, [17, 20]);
    }

    #[test]
    fn no_batch_with_a_flipped_byte_is_ever_yielded() {
        let seg = segment();
        let first_len = segment().len() / 3;
        for i in 0..first_len {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = seg.clone();
                bad[i] ^= flip;
                let (bases, stop) = walk_all(&mut Walker::new(&bad, 0, Expect::Exactly(10)).zero_tail());
                assert!(bases.is_empty(), "byte {i} ^ {flip:#x}: yielded {bases:?}");
                assert!(!stop.is_end(), "byte {i} ^ {flip:#x}: a clean end");
                assert_eq!(stop.pos, 0);
            }
        }
    }

    #[test]
    fn zeros_are_damage_unless_a_zero_tail_is_allowed() {
        let mut seg = segment();
        let len = seg.len();
        seg.resize(len + 100, 0);
        let (_, stop) = walk_all(&mut Walker::new(&seg, 0, Expect::Any).zero_tail());
        assert!(stop.is_end());
        assert_eq!(stop.pos, len);
        let (_, stop) = walk_all(&mut Walker::new(&seg, 0, Expect::Any));
        assert_eq!(stop.kind, StopKind::Damage(Damage::Zeros));
        seg.push(1);
        let (_, stop) = walk_all(&mut Walker::new(&seg, 0, Expect::Any).zero_tail());
        assert_eq!(stop.damage(), Some(&Damage::ZerosThenData { data_at: len + 100 }));
    }

    #[test]
    fn offsets_must_follow_on() {
        let seg = segment();
        let (bases, stop) = walk_all(&mut Walker::new(&seg, 0, Expect::Exactly(11)));
        assert!(bases.is_empty());
        assert_eq!(stop.to_string(), "batch at offset 10 where 11 was expected");
        let (bases, _) = walk_all(&mut Walker::new(&seg, 0, Expect::AtMost(11)));
        assert_eq!(bases, [10, 12, 14]);
        let (bases, stop) = walk_all(&mut Walker::new(&seg, 0, Expect::AtMost(9)));
        assert!(bases.is_empty());
        assert!(matches!(stop.damage(), Some(Damage::Sequence { expected: 9, .. })));
    }

    #[test]
    fn step_over_skips_a_bad_batch_with_a_readable_header() {
        let mut seg = segment();
        let len = seg.len() / 3;
        seg[len + 50] ^= 1; // a value byte of the second batch
        let mut w = Walker::new(&seg, 0, Expect::Exactly(10));
        let (bases, stop) = walk_all(&mut w);
        assert_eq!(bases, [10]);
        assert_eq!(stop.to_string(), "batch CRC mismatch (batch at offset 12)");
        assert!(w.step_over(&stop));
        let (bases, stop) = walk_all(&mut w);
        assert_eq!(bases, [14]);
        assert!(stop.is_end());
    }

    #[test]
    fn skip_before_passes_a_damaged_batch_but_not_a_gap() {
        let mut seg = segment();
        let len = seg.len() / 3;
        seg[50] ^= 1; // a value byte of the first batch
        let mut w = Walker::new(&seg, 0, Expect::AtMost(12));
        w.skip_before(12);
        assert_eq!(w.next_batch().map(|b| b.header.base_offset), Ok(12));
        // A count that claims fewer records than the batch holds: the next
        // batch does not follow on, and reading it is damage.
        let mut seg = segment();
        seg[40] = 1;
        let mut w = Walker::new(&seg, 0, Expect::AtMost(12));
        w.skip_before(12);
        assert_eq!(w.pos(), len);
        assert!(matches!(
            w.next_batch().unwrap_err().damage(),
            Some(Damage::Sequence { .. })
        ));
    }

    /// A version 2 batch with codec bits `codec` whose compressed records
    /// are `data`, with a valid CRC.
    fn compressed_batch(codec: crate::format::compress::Codec, inflated_len: u32, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; batch::HEADER_LEN_V2];
        b[..4].copy_from_slice(&batch::MAGIC);
        b[12] = batch::V2;
        b[13] = codec.attribute_bits();
        b[16..24].copy_from_slice(&10u64.to_le_bytes());
        b[40..44].copy_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&inflated_len.to_le_bytes());
        b.extend_from_slice(data);
        let len = b.len() as u32;
        b[4..8].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&b[12..]);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// An intact compressed batch yields from a plain walk (headers and CRC
    /// only); a validating walk decompresses it: bad data is damage at the
    /// compressed records, and a codec this build lacks is a stop that is
    /// not damage, naming the cargo feature.
    #[test]
    fn validating_walks_decompress_and_tell_a_missing_codec_from_damage() {
        use crate::format::compress::Codec;
        for codec in [Codec::Lz4, Codec::Zstd] {
            let seg = compressed_batch(codec, 100, &[0xff; 16]);
            let b = Walker::new(&seg, 0, Expect::Exactly(10)).next_batch().unwrap();
            assert!(b.is_compressed());
            let stop = Walker::new(&seg, 0, Expect::Exactly(10))
                .validate_records()
                .next_batch()
                .unwrap_err();
            if codec.available() {
                assert!(matches!(stop.damage(), Some(Damage::Compressed { .. })), "{stop}");
                assert_eq!(stop.at, batch::HEADER_LEN_V2 + 4);
                assert!(stop
                    .to_string()
                    .starts_with("bad compressed records in the batch at offset 10"));
            } else {
                assert_eq!(stop.kind, StopKind::Codec(codec));
                assert_eq!(stop.pos, 0);
                assert!(
                    stop.to_string().contains(&format!("cargo feature `{}`", codec.name())),
                    "{stop}"
                );
            }
            // Its records are never read from the stored bytes.
            assert!(b.records().next().unwrap().is_err());
        }
    }

    #[test]
    fn torn_batch_is_damage() {
        let seg = segment();
        let (bases, stop) = walk_all(&mut Walker::new(&seg[..seg.len() - 1], 0, Expect::Any).zero_tail());
        assert_eq!(bases, [10, 12]);
        assert_eq!(stop.damage(), Some(&Damage::Torn));
    }
}
