//! Compressed record batches (Kafka's `compression.type`): pure functions
//! between a plain version 2 batch and its compressed form, shared by the
//! writer, the batch walker and the read-only tools.
//!
//! A compressed batch is a version 2 batch whose attribute bits 3-4 name the
//! codec. Its 56-byte header is stored as is; its records section is
//!
//! ```text
//! 56  4   inflated_len   u32 LE: length of the plain version 2 record encoding
//! 60  ..  data           the codec's compressed form of those bytes
//!                        (lz4: one LZ4 block; zstd: one Zstandard frame)
//! ```
//!
//! and the batch CRC covers these stored (compressed) bytes. `inflated_len`
//! is checked against [`MAX_INFLATED_LEN`] before anything is allocated, so
//! a small batch claiming gigabytes is refused, never allocated.

use super::batch::{BatchHeader, HEADER_LEN_V2, V2};
use super::{le, DecodeError, Found};

/// Attribute bits 3-4 (version 2): the codec of the records section; 0 = none.
pub const ATTR_CODEC_MASK: u8 = 0x18;
const CODEC_SHIFT: u8 = 3;
/// Bytes of the `inflated_len` field that starts a compressed records section.
pub const INFLATED_LEN_FIELD: usize = 4;
/// Largest decompressed records section a reader accepts (16 MiB). Writers
/// never compress more than this into one batch.
pub const MAX_INFLATED_LEN: usize = 16 << 20;

/// A compression codec of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// LZ4 block format (`lz4_flex`), attribute value 1.
    Lz4,
    /// Zstandard frame (`zstd`), attribute value 2.
    Zstd,
}

impl Codec {
    /// The codec named by a batch's attribute bits: `Ok(None)` for an
    /// uncompressed batch, `Err(bits)` for a value no codec has (3).
    #[inline]
    pub fn from_attributes(attributes: u8) -> Result<Option<Codec>, u8> {
        match (attributes & ATTR_CODEC_MASK) >> CODEC_SHIFT {
            0 => Ok(None),
            1 => Ok(Some(Codec::Lz4)),
            2 => Ok(Some(Codec::Zstd)),
            other => Err(other),
        }
    }

    /// The attribute bits that name this codec.
    pub const fn attribute_bits(self) -> u8 {
        let id = match self {
            Codec::Lz4 => 1,
            Codec::Zstd => 2,
        };
        id << CODEC_SHIFT
    }

    /// The codec's name, as Kafka's `compression.type` spells it (and the
    /// cargo feature that builds it in).
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// Whether this build can compress and decompress it (its cargo feature is on).
    pub const fn available(self) -> bool {
        match self {
            Codec::Lz4 => cfg!(feature = "lz4"),
            Codec::Zstd => cfg!(feature = "zstd"),
        }
    }
}

/// Why a compressed batch could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The batch is damaged (its position is relative to the batch start).
    Damage(DecodeError),
    /// An intact batch of a codec this build lacks (its cargo feature is off).
    Unavailable(Codec),
}

/// Whether a batch's records section is compressed.
#[inline]
pub fn is_compressed(header: &BatchHeader) -> bool {
    header.attributes & ATTR_CODEC_MASK != 0
}

/// Decompresses the compressed batch `stored` (the whole batch, CRC checked
/// by the caller) into `out`: `out` becomes the same batch in plain form
/// (its header followed by the decompressed records), and the header
/// returned describes it (length of `out`, no codec bits), ready for
/// [`Records`](super::batch::Records). `out`'s previous contents are dropped.
pub fn inflate(stored: &[u8], header: &BatchHeader, out: &mut Vec<u8>) -> Result<BatchHeader, InflateError> {
    let damage = |at, why| InflateError::Damage(DecodeError::new(at, why));
    let codec = match Codec::from_attributes(header.attributes) {
        Ok(Some(c)) if header.version == V2 => c,
        _ => return Err(damage(13, "a compressed batch's codec bits expected")),
    };
    let stored = stored.get(..header.len as usize).unwrap_or(stored);
    let Some(n) = le::u32_at(stored, HEADER_LEN_V2) else {
        return Err(damage(
            HEADER_LEN_V2,
            "compressed batch shorter than its decompressed length field",
        ));
    };
    let n = n as usize;
    if n > MAX_INFLATED_LEN {
        return Err(InflateError::Damage(DecodeError::found(
            HEADER_LEN_V2,
            "decompressed records within the 16 MiB limit expected (a decompression bomb, or damage)",
            Found::Bytes(n as u64),
        )));
    }
    if !codec.available() {
        return Err(InflateError::Unavailable(codec));
    }
    let data = stored.get(HEADER_LEN_V2 + INFLATED_LEN_FIELD..).unwrap_or_default();
    out.clear();
    // Exact: a caller may turn it into a boxed slice without reallocating.
    out.reserve_exact(HEADER_LEN_V2 + n);
    out.extend_from_slice(stored.get(..HEADER_LEN_V2).unwrap_or_default());
    out.resize(HEADER_LEN_V2 + n, 0);
    let dst = out.get_mut(HEADER_LEN_V2..).unwrap_or_default();
    let got = decompress(codec, data, dst).map_err(|why| damage(HEADER_LEN_V2 + INFLATED_LEN_FIELD, why))?;
    if got != n {
        return Err(InflateError::Damage(DecodeError::found(
            HEADER_LEN_V2,
            "compressed records decompress to another length than the batch states",
            Found::Bytes(got as u64),
        )));
    }
    Ok(BatchHeader {
        len: u32::try_from(out.len()).unwrap_or(u32::MAX),
        attributes: header.attributes & !ATTR_CODEC_MASK,
        ..*header
    })
}

/// Compresses the plain version 2 batch `plain` (as the batch encoder wrote
/// it, CRC included) with `codec` into `out`, which becomes the compressed
/// batch with its header's length, codec bits and CRC rewritten. Returns the
/// compressed batch's header, or `None` when compressing would not make the
/// batch smaller, the records exceed [`MAX_INFLATED_LEN`], the batch is not
/// a plain version 2 batch, or the codec is not built in: the caller then
/// writes `plain` as it is.
pub fn deflate(codec: Codec, plain: &[u8], header: &BatchHeader, out: &mut Vec<u8>) -> Option<BatchHeader> {
    if header.version != V2 || is_compressed(header) || plain.len() != header.len as usize {
        return None;
    }
    let records = plain.get(HEADER_LEN_V2..)?;
    if records.len() > MAX_INFLATED_LEN || !codec.available() {
        return None;
    }
    out.clear();
    out.extend_from_slice(plain.get(..HEADER_LEN_V2)?);
    out.extend_from_slice(&u32::try_from(records.len()).ok()?.to_le_bytes());
    compress(codec, records, out)?;
    if out.len() >= plain.len() {
        return None;
    }
    let len = u32::try_from(out.len()).ok()?;
    let attributes = header.attributes | codec.attribute_bits();
    le::put(out, 4, &len.to_le_bytes());
    le::put(out, 13, &[attributes]);
    let crc = crc32fast::hash(out.get(12..)?);
    le::put(out, 8, &crc.to_le_bytes());
    Some(BatchHeader {
        len,
        crc,
        attributes,
        ..*header
    })
}

/// Appends the compressed form of `src` to `out`.
fn compress(codec: Codec, src: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    out.resize(start + max_compressed_len(codec, src.len())?, 0);
    let n = compress_into(codec, src, out.get_mut(start..)?)?;
    out.truncate(start + n);
    Some(())
}

/// The most bytes `codec` can make of `len` bytes.
#[allow(unused_variables)]
fn max_compressed_len(codec: Codec, len: usize) -> Option<usize> {
    match codec {
        #[cfg(feature = "lz4")]
        Codec::Lz4 => Some(lz4_flex::block::get_maximum_output_size(len)),
        #[cfg(feature = "zstd")]
        Codec::Zstd => Some(zstd::zstd_safe::compress_bound(len)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Compresses `src` into `dst` (at least `max_compressed_len` bytes); returns the bytes written.
#[allow(unused_variables)]
fn compress_into(codec: Codec, src: &[u8], dst: &mut [u8]) -> Option<usize> {
    match codec {
        #[cfg(feature = "lz4")]
        Codec::Lz4 => lz4_flex::block::compress_into(src, dst).ok(),
        #[cfg(feature = "zstd")]
        Codec::Zstd => ZSTD_CCTX.with(|c| {
            let mut c = c.borrow_mut();
            let cctx = match c.as_mut() {
                Some(cctx) => cctx,
                None => c.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).ok()?),
            };
            cctx.compress_to_buffer(src, dst).ok()
        }),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Decompresses `src` into exactly `dst`; returns the bytes written.
#[allow(unused_variables)]
fn decompress(codec: Codec, src: &[u8], dst: &mut [u8]) -> Result<usize, &'static str> {
    match codec {
        #[cfg(feature = "lz4")]
        Codec::Lz4 => lz4_flex::block::decompress_into(src, dst).map_err(|_| "an LZ4 block that decompresses expected"),
        #[cfg(feature = "zstd")]
        Codec::Zstd => ZSTD_DCTX.with(|d| {
            let mut d = d.borrow_mut();
            let dctx = match d.as_mut() {
                Some(dctx) => dctx,
                None => d.insert(
                    zstd::bulk::Decompressor::new().map_err(|_| "a Zstandard decompression context (out of memory)")?,
                ),
            };
            dctx.decompress_to_buffer(src, dst)
                .map_err(|_| "a Zstandard frame that decompresses expected")
        }),
        #[allow(unreachable_patterns)]
        _ => Err("a codec this build has"),
    }
}

/// Zstandard's level for batches: its default (3), Kafka's default too.
#[cfg(feature = "zstd")]
const ZSTD_LEVEL: i32 = 3;

// One compression and one decompression context per thread: creating one
// costs more than a small batch's whole decompression.
#[cfg(feature = "zstd")]
thread_local! {
    static ZSTD_CCTX: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static ZSTD_DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::batch::{encode_planned, plan_lens, Shape};

    struct Rec(Vec<u8>);
    impl crate::format::batch::Encode for Rec {
        fn key_bytes(&self) -> Option<&[u8]> {
            Some(b"key")
        }
        fn value_bytes(&self) -> &[u8] {
            &self.0
        }
        fn header_count(&self) -> usize {
            0
        }
        fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
            std::iter::empty()
        }
        fn create_time(&self) -> Option<i64> {
            Some(5)
        }
        fn target_partition(&self) -> Option<u32> {
            None
        }
    }

    fn plain(n: usize) -> (Vec<u8>, BatchHeader) {
        let rs: Vec<Rec> = (0..n)
            .map(|i| Rec(format!("{{\"id\":{i},\"name\":\"user-{i}\",\"active\":true}}").into_bytes()))
            .collect();
        let shape = Shape::v2(0, 0);
        let mut lens = Vec::new();
        let (_, len) = plan_lens(&rs, |_| 5, usize::MAX, &shape, &mut lens);
        let mut buf = vec![0u8; len];
        let h = encode_planned(&mut buf, 100, &shape, &rs, |_| 5, &lens);
        (buf, h)
    }

    #[test]
    fn codec_bits_round_trip_and_three_is_no_codec() {
        for c in [Codec::Lz4, Codec::Zstd] {
            assert_eq!(Codec::from_attributes(c.attribute_bits() | 1), Ok(Some(c)));
        }
        assert_eq!(Codec::from_attributes(0x07), Ok(None));
        assert_eq!(Codec::from_attributes(0x18), Err(3));
    }

    #[test]
    fn a_bomb_is_refused_before_any_allocation() {
        let (buf, h) = plain(3);
        let mut bomb = buf[..HEADER_LEN_V2].to_vec();
        bomb.extend_from_slice(&u32::MAX.to_le_bytes());
        bomb.extend_from_slice(&[0u8; 8]);
        let h = BatchHeader {
            len: bomb.len() as u32,
            attributes: Codec::Zstd.attribute_bits(),
            ..h
        };
        let mut out = Vec::new();
        match inflate(&bomb, &h, &mut out) {
            Err(InflateError::Damage(e)) => {
                assert_eq!(e.at, HEADER_LEN_V2);
                assert!(e.message().contains("16 MiB limit"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(out.capacity(), 0, "nothing may be allocated for a bomb");
    }

    #[test]
    fn without_the_feature_nothing_is_compressed() {
        let (buf, h) = plain(50);
        for c in [Codec::Lz4, Codec::Zstd] {
            let got = deflate(c, &buf, &h, &mut Vec::new());
            assert_eq!(got.is_some(), c.available(), "{c:?}");
        }
    }

    #[cfg(any(feature = "lz4", feature = "zstd"))]
    #[test]
    fn compressed_batches_round_trip_and_check() {
        use crate::format::batch::{peek, Peek, Records};
        for c in [Codec::Lz4, Codec::Zstd].into_iter().filter(|c| c.available()) {
            let (buf, h) = plain(200);
            let mut z = Vec::new();
            let zh = deflate(c, &buf, &h, &mut z).expect("compressible");
            assert!(z.len() < buf.len() / 2, "{c:?}: {} of {}", z.len(), buf.len());
            let Peek::Batch(p) = peek(&z) else { panic!("no batch") };
            assert_eq!(p, zh);
            assert!(crate::format::batch::crc_ok(&z, &p));
            let mut out = Vec::new();
            let ph = inflate(&z, &p, &mut out).unwrap();
            assert_eq!(out[HEADER_LEN_V2..], buf[HEADER_LEN_V2..]);
            assert_eq!((ph.len, ph.count, ph.base_offset), (h.len, 200, 100));
            Records::validate(&out, ph).unwrap();
            // Damage inside the compressed data (with the CRC recomputed):
            // an error, never a panic or a wrong length.
            for i in [HEADER_LEN_V2 + 4, HEADER_LEN_V2 + 5, z.len() / 2, z.len() - 1] {
                let mut bad = z.clone();
                bad[i] ^= 0x55;
                let r = inflate(&bad, &p, &mut out);
                if let Ok(ph) = r {
                    // A flip that still decompresses to the right length
                    // yields bytes the record decoder then checks.
                    assert_eq!(out.len(), ph.len as usize);
                }
            }
            // A short stated length is damage.
            let mut bad = z.clone();
            bad[HEADER_LEN_V2..HEADER_LEN_V2 + 4].copy_from_slice(&10u32.to_le_bytes());
            assert!(matches!(inflate(&bad, &p, &mut out), Err(InflateError::Damage(_))));
        }
    }

    #[test]
    fn incompressible_batches_stay_plain() {
        let rs = [Rec((0..40u8).map(|i| i.wrapping_mul(97) ^ 0x5a).collect())];
        let shape = Shape::v2(0, 0);
        let mut lens = Vec::new();
        let (_, len) = plan_lens(&rs, |_| 5, usize::MAX, &shape, &mut lens);
        let mut buf = vec![0u8; len];
        let h = encode_planned(&mut buf, 0, &shape, &rs, |_| 5, &lens);
        for c in [Codec::Lz4, Codec::Zstd] {
            assert_eq!(deflate(c, &buf, &h, &mut Vec::new()), None);
        }
    }
}
