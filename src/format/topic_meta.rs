//! Topic metadata, `<topic>/topic.meta`.
//!
//! ```text
//!  0  4  magic             "LBtm"
//!  4  1  version           1
//!  5  1  timestamp_type    0 = create time, 1 = log-append time
//!  6  1  partitioner       0 = xxh64 (default), 1 = Kafka murmur2
//!  7  1  reserved          0
//!  8  4  partitions        u32 LE, >= 1
//! 12  4  max_record_bytes  u32 LE, 0 = the default (1 MiB, or what fits a segment)
//! 16  8  segment_bytes     u64 LE
//! 24  8  segment_ms        i64 LE, -1 = none
//! 32  8  retention_bytes   i64 LE, -1 = none
//! 40  8  retention_ms      i64 LE, -1 = none
//! 48  4  crc               CRC-32 of bytes 0..48
//! ```
//!
//! Version 2 (80 bytes, written when a topic is compacted, changes a
//! compaction setting or compresses) has the same fields, with byte 7 as
//! `cleanup_policy` (0 = delete, 1 = compact, 2 = compact and delete), then:
//!
//! ```text
//! 48  8  delete_retention_ms        i64 LE, >= 0
//! 56  8  min_compaction_lag_ms      i64 LE, >= 0
//! 64  8  min_cleanable_dirty_ratio  f64 LE bits, 0.0 ..= 1.0
//! 72  1  compression                0 = none, 1 = lz4, 2 = zstd
//! 73  3  reserved                   0
//! 76  4  crc                        CRC-32 of bytes 0..76
//! ```
//!
//! A version 1 file reads as policy delete with the default compaction
//! settings and no compression.

use super::{le, DecodeError, Fixed, Found};

/// Encoded size of version 1.
pub const LEN: usize = 52;
/// Encoded size of version 2.
pub const LEN_V2: usize = 80;
const MAGIC: [u8; 4] = *b"LBtm";
const VERSION: u8 = 1;
const VERSION_2: u8 = 2;
/// `delete_retention_ms` of a version 1 file (Kafka's default, one day).
pub const DEFAULT_DELETE_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;
/// `min_cleanable_dirty_ratio` of a version 1 file (Kafka's default).
pub const DEFAULT_DIRTY_RATIO: f64 = 0.5;

/// The persisted settings of a topic (validated by the caller).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopicMeta {
    /// Partition count.
    pub partitions: u32,
    /// Largest key + value + headers size; 0 = the default.
    pub max_record_bytes: u32,
    /// Segment size limit.
    pub segment_bytes: u64,
    /// Segment age limit.
    pub segment_ms: Option<i64>,
    /// Per-partition size limit.
    pub retention_bytes: Option<u64>,
    /// Age limit.
    pub retention_ms: Option<i64>,
    /// 0 = create time, 1 = log-append time.
    pub timestamp_type: u8,
    /// 0 = xxh64, 1 = murmur2.
    pub partitioner: u8,
    /// 0 = delete, 1 = compact, 2 = compact and delete (version 2).
    pub cleanup_policy: u8,
    /// How long tombstones stay after compaction first reaches them (version 2).
    pub delete_retention_ms: i64,
    /// Minimum age of a segment's newest record before it is compacted (version 2).
    pub min_compaction_lag_ms: i64,
    /// Dirty share of the sealed bytes that triggers a pass (version 2).
    pub min_cleanable_dirty_ratio: f64,
    /// 0 = none, 1 = lz4, 2 = zstd, Kafka's `compression.type` (version 2).
    pub compression: u8,
}

// `decode` never yields a NaN ratio, so equality is reflexive.
impl Eq for TopicMeta {}

impl TopicMeta {
    /// Whether version 1 can hold these settings (policy delete, default
    /// compaction settings, no compression): then version 1 is written, so
    /// older builds open it.
    pub fn fits_version_1(&self) -> bool {
        self.cleanup_policy == 0
            && self.compression == 0
            && self.delete_retention_ms == DEFAULT_DELETE_RETENTION_MS
            && self.min_compaction_lag_ms == 0
            && self.min_cleanable_dirty_ratio.to_bits() == DEFAULT_DIRTY_RATIO.to_bits()
    }
}

fn opt_i64(v: Option<i64>) -> i64 {
    v.unwrap_or(-1)
}

/// Encodes topic metadata: version 1 when [`TopicMeta::fits_version_1`], else version 2.
pub fn encode(m: &TopicMeta) -> Vec<u8> {
    let v1 = m.fits_version_1();
    let (len, crc_at) = if v1 { (LEN, 48) } else { (LEN_V2, 76) };
    let mut b = vec![0u8; len];
    le::put(&mut b, 0, &MAGIC);
    le::put(&mut b, 4, &[if v1 { VERSION } else { VERSION_2 }]);
    le::put(&mut b, 5, &[m.timestamp_type, m.partitioner]);
    if !v1 {
        le::put(&mut b, 7, &[m.cleanup_policy]);
        le::put(&mut b, 48, &m.delete_retention_ms.to_le_bytes());
        le::put(&mut b, 56, &m.min_compaction_lag_ms.to_le_bytes());
        le::put(&mut b, 64, &m.min_cleanable_dirty_ratio.to_bits().to_le_bytes());
        le::put(&mut b, 72, &[m.compression]);
    }
    le::put(&mut b, 8, &m.partitions.to_le_bytes());
    le::put(&mut b, 12, &m.max_record_bytes.to_le_bytes());
    le::put(&mut b, 16, &m.segment_bytes.to_le_bytes());
    le::put(&mut b, 24, &opt_i64(m.segment_ms).to_le_bytes());
    let rb = m.retention_bytes.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    le::put(&mut b, 32, &opt_i64(rb).to_le_bytes());
    le::put(&mut b, 40, &opt_i64(m.retention_ms).to_le_bytes());
    let crc = crc32fast::hash(b.get(..crc_at).unwrap_or_default());
    le::put(&mut b, crc_at, &crc.to_le_bytes());
    b
}

/// Decodes topic metadata.
pub fn decode(b: &[u8]) -> Result<TopicMeta, DecodeError> {
    let v2 = b.get(4) == Some(&VERSION_2);
    super::check_fixed(
        b,
        &Fixed {
            len: if v2 { LEN_V2 } else { LEN },
            magic: MAGIC,
            version: if v2 { VERSION_2 } else { VERSION },
            len_reason: if v2 {
                "topic.meta version 2 must be exactly 80 bytes"
            } else {
                "topic.meta must be exactly 52 bytes"
            },
            magic_reason: "topic.meta magic \"LBtm\" expected",
            version_reason: "unsupported topic.meta version (this build reads versions 1 and 2)",
            crc_reason: "topic.meta CRC mismatch",
        },
    )?;
    let opt = |at| le::i64_at(b, at).filter(|&v| v >= 0);
    let m = TopicMeta {
        timestamp_type: b.get(5).copied().unwrap_or(0),
        partitioner: b.get(6).copied().unwrap_or(0),
        partitions: le::u32_at(b, 8).unwrap_or(0),
        max_record_bytes: le::u32_at(b, 12).unwrap_or(0),
        segment_bytes: le::u64_at(b, 16).unwrap_or(0),
        segment_ms: opt(24),
        retention_bytes: opt(32).map(|v| v as u64),
        retention_ms: opt(40),
        cleanup_policy: if v2 { b.get(7).copied().unwrap_or(0) } else { 0 },
        delete_retention_ms: if v2 {
            le::i64_at(b, 48).unwrap_or(0)
        } else {
            DEFAULT_DELETE_RETENTION_MS
        },
        min_compaction_lag_ms: if v2 { le::i64_at(b, 56).unwrap_or(0) } else { 0 },
        min_cleanable_dirty_ratio: if v2 {
            f64::from_bits(le::u64_at(b, 64).unwrap_or(0))
        } else {
            DEFAULT_DIRTY_RATIO
        },
        compression: if v2 { b.get(72).copied().unwrap_or(0) } else { 0 },
    };
    if m.timestamp_type > 1 {
        let reason = "unknown timestamp type (expected 0, create time, or 1, log-append time)";
        return Err(DecodeError::found(
            5,
            reason,
            Found::Number(u64::from(m.timestamp_type)),
        ));
    }
    if m.partitioner > 1 {
        let reason = "unknown partitioner (expected 0, xxh64, or 1, Kafka murmur2)";
        return Err(DecodeError::found(5, reason, Found::Number(u64::from(m.partitioner))));
    }
    if v2 {
        if b.get(73..76).is_some_and(|r| r.iter().any(|&x| x != 0)) {
            let reason = "topic.meta reserved bytes 73..76 must be zero";
            return Err(DecodeError::found(73, reason, Found::Bits(0)));
        }
        return check_v2(&m).map(|()| m);
    }
    let reserved = b.get(7).copied().unwrap_or(0);
    if reserved != 0 {
        let reason = "topic.meta reserved byte must be zero";
        return Err(DecodeError::found(5, reason, Found::Bits(u64::from(reserved))));
    }
    if m.partitions == 0 {
        let reason = "zero partitions (expected at least 1)";
        return Err(DecodeError::found(8, reason, Found::Number(0)));
    }
    if m.segment_bytes == 0 {
        let reason = "zero segment size (expected at least 1 byte)";
        return Err(DecodeError::found(8, reason, Found::Bytes(0)));
    }
    Ok(m)
}

/// The checks only version 2's fields need (the others were checked by [`decode`]'s caller path).
fn check_v2(m: &TopicMeta) -> Result<(), DecodeError> {
    if m.partitions == 0 {
        return Err(DecodeError::found(
            8,
            "zero partitions (expected at least 1)",
            Found::Number(0),
        ));
    }
    if m.segment_bytes == 0 {
        let reason = "zero segment size (expected at least 1 byte)";
        return Err(DecodeError::found(16, reason, Found::Bytes(0)));
    }
    if m.cleanup_policy > 2 {
        let reason = "unknown cleanup policy (expected 0, delete, 1, compact, or 2, compact and delete)";
        return Err(DecodeError::found(
            7,
            reason,
            Found::Number(u64::from(m.cleanup_policy)),
        ));
    }
    if m.delete_retention_ms < 0 {
        let reason = "negative delete_retention_ms (expected at least 0)";
        return Err(DecodeError::found(
            48,
            reason,
            Found::Number(m.delete_retention_ms as u64),
        ));
    }
    if m.min_compaction_lag_ms < 0 {
        let reason = "negative min_compaction_lag_ms (expected at least 0)";
        return Err(DecodeError::found(
            56,
            reason,
            Found::Number(m.min_compaction_lag_ms as u64),
        ));
    }
    if m.compression > 2 {
        let reason = "unknown compression (expected 0, none, 1, lz4, or 2, zstd)";
        return Err(DecodeError::found(72, reason, Found::Number(u64::from(m.compression))));
    }
    if !(0.0..=1.0).contains(&m.min_cleanable_dirty_ratio) {
        let reason = "min_cleanable_dirty_ratio outside 0 ..= 1";
        return Err(DecodeError::found(
            64,
            reason,
            Found::Number(m.min_cleanable_dirty_ratio.to_bits()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = TopicMeta {
            partitions: 3,
            max_record_bytes: 1 << 20,
            segment_bytes: 4096,
            segment_ms: None,
            retention_bytes: Some(1 << 30),
            retention_ms: Some(60_000),
            timestamp_type: 1,
            partitioner: 1,
            cleanup_policy: 0,
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: DEFAULT_DIRTY_RATIO,
            compression: 0,
        };
        let mut b = encode(&m);
        assert_eq!(b.len(), LEN, "default compaction settings keep version 1");
        assert_eq!(decode(&b).unwrap(), m);
        b[9] ^= 1;
        assert!(decode(&b).is_err());
        let c = TopicMeta {
            cleanup_policy: 2,
            delete_retention_ms: 5,
            min_compaction_lag_ms: 7,
            min_cleanable_dirty_ratio: 0.25,
            ..m
        };
        let mut b = encode(&c);
        assert_eq!((b.len(), b[4]), (LEN_V2, 2));
        assert_eq!(decode(&b).unwrap(), c);
        b[7] = 3;
        let crc = crc32fast::hash(&b[..76]);
        b[76..].copy_from_slice(&crc.to_le_bytes());
        assert!(decode(&b).unwrap_err().message().contains("cleanup policy"));
        // Compression alone needs version 2 too.
        let z = TopicMeta { compression: 2, ..m };
        let mut b = encode(&z);
        assert_eq!((b.len(), b[4], b[72]), (LEN_V2, 2, 2));
        assert_eq!(decode(&b).unwrap(), z);
        b[72] = 3;
        let crc = crc32fast::hash(&b[..76]);
        b[76..].copy_from_slice(&crc.to_le_bytes());
        assert!(decode(&b).unwrap_err().message().contains("unknown compression"));
    }

    #[test]
    fn errors_say_what_was_found_and_what_was_expected() {
        assert_eq!(
            decode(&[0; 51]).unwrap_err().message(),
            "topic.meta must be exactly 52 bytes, found 51 bytes"
        );
        let m = TopicMeta {
            partitions: 0,
            max_record_bytes: 1,
            segment_bytes: 4096,
            segment_ms: None,
            retention_bytes: None,
            retention_ms: None,
            timestamp_type: 0,
            partitioner: 0,
            cleanup_policy: 0,
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: DEFAULT_DIRTY_RATIO,
            compression: 0,
        };
        assert_eq!(
            decode(&encode(&m)).unwrap_err().message(),
            "zero partitions (expected at least 1), found 0"
        );
        let mut b = encode(&TopicMeta { partitions: 1, ..m });
        b[6] = 3;
        let crc = crc32fast::hash(&b[..48]);
        b[48..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode(&b).unwrap_err().message(),
            "unknown partitioner (expected 0, xxh64, or 1, Kafka murmur2), found 3"
        );
    }
}
