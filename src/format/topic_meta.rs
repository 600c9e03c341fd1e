//! Topic metadata, `<topic>/topic.meta`.
//!
//! ```text
//!  0  4  magic             "LBtm"
//!  4  1  version           2 (1: byte 7 reserved, must be 0)
//!  5  1  timestamp_type    0 = create time, 1 = log-append time
//!  6  1  partitioner       0 = xxh64 (default), 1 = Kafka murmur2
//!  7  1  compression       0 = none, 1 = lz4, 2 = zstd (version 1: reserved, 0)
//!  8  4  partitions        u32 LE, >= 1
//! 12  4  max_record_bytes  u32 LE, 0 = the default (1 MiB, or what fits a segment)
//! 16  8  segment_bytes     u64 LE
//! 24  8  segment_ms        i64 LE, -1 = none
//! 32  8  retention_bytes   i64 LE, -1 = none
//! 40  8  retention_ms      i64 LE, -1 = none
//! 48  4  crc               CRC-32 of bytes 0..48
//! ```

use super::{le, DecodeError, Fixed, Found};

/// Encoded size.
pub const LEN: usize = 52;
const MAGIC: [u8; 4] = *b"LBtm";
/// The version written: 2 adds `compression` in byte 7.
const VERSION: u8 = 2;
/// The version before compression: byte 7 is reserved (0), read as no compression.
const VERSION_1: u8 = 1;

/// The persisted settings of a topic (validated by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// 0 = none, 1 = lz4, 2 = zstd (Kafka's `compression.type`).
    pub compression: u8,
}

fn opt_i64(v: Option<i64>) -> i64 {
    v.unwrap_or(-1)
}

/// Encodes topic metadata.
pub fn encode(m: &TopicMeta) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    le::put(&mut b, 0, &MAGIC);
    b[4] = VERSION;
    b[5] = m.timestamp_type;
    b[6] = m.partitioner;
    b[7] = m.compression;
    le::put(&mut b, 8, &m.partitions.to_le_bytes());
    le::put(&mut b, 12, &m.max_record_bytes.to_le_bytes());
    le::put(&mut b, 16, &m.segment_bytes.to_le_bytes());
    le::put(&mut b, 24, &opt_i64(m.segment_ms).to_le_bytes());
    let rb = m.retention_bytes.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    le::put(&mut b, 32, &opt_i64(rb).to_le_bytes());
    le::put(&mut b, 40, &opt_i64(m.retention_ms).to_le_bytes());
    let crc = crc32fast::hash(b.get(..48).unwrap_or_default());
    le::put(&mut b, 48, &crc.to_le_bytes());
    b
}

/// Decodes topic metadata.
pub fn decode(b: &[u8]) -> Result<TopicMeta, DecodeError> {
    super::check_fixed(
        b,
        &Fixed {
            len: LEN,
            magic: MAGIC,
            // Version 1 reads as version 2 without compression (byte 7 must be 0 there).
            version: match b.get(4) {
                Some(&VERSION_1) => VERSION_1,
                _ => VERSION,
            },
            len_reason: "topic.meta must be exactly 52 bytes",
            magic_reason: "topic.meta magic \"LBtm\" expected",
            version_reason: "unsupported topic.meta version (this build reads versions 1 and 2)",
            crc_reason: "topic.meta CRC mismatch",
        },
    )?;
    let opt = |at| le::i64_at(b, at).filter(|&v| v >= 0);
    let m = TopicMeta {
        timestamp_type: b.get(5).copied().unwrap_or(0),
        partitioner: b.get(6).copied().unwrap_or(0),
        compression: b.get(7).copied().unwrap_or(0),
        partitions: le::u32_at(b, 8).unwrap_or(0),
        max_record_bytes: le::u32_at(b, 12).unwrap_or(0),
        segment_bytes: le::u64_at(b, 16).unwrap_or(0),
        segment_ms: opt(24),
        retention_bytes: opt(32).map(|v| v as u64),
        retention_ms: opt(40),
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
    if b.get(4) == Some(&VERSION_1) && m.compression != 0 {
        let reason = "topic.meta version 1 reserved byte must be zero";
        return Err(DecodeError::found(7, reason, Found::Bits(u64::from(m.compression))));
    }
    if m.compression > 2 {
        let reason = "unknown compression (expected 0, none, 1, lz4, or 2, zstd)";
        return Err(DecodeError::found(7, reason, Found::Number(u64::from(m.compression))));
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
            compression: 2,
        };
        let mut b = encode(&m);
        assert_eq!(b[4], 2);
        assert_eq!(decode(&b).unwrap(), m);
        b[9] ^= 1;
        assert!(decode(&b).is_err());
    }

    /// A version 1 file (before compression) reads as no compression; its
    /// byte 7 stays reserved.
    fn with_crc(mut b: [u8; LEN]) -> [u8; LEN] {
        let crc = crc32fast::hash(&b[..48]);
        b[48..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn version_1_reads_as_uncompressed() {
        let m = TopicMeta {
            partitions: 2,
            max_record_bytes: 0,
            segment_bytes: 4096,
            segment_ms: None,
            retention_bytes: None,
            retention_ms: None,
            timestamp_type: 0,
            partitioner: 0,
            compression: 0,
        };
        let mut v1 = encode(&m);
        v1[4] = 1;
        let v1 = with_crc(v1);
        assert_eq!(decode(&v1).unwrap(), m);
        let mut bad = v1;
        bad[7] = 1;
        assert!(decode(&with_crc(bad)).unwrap_err().message().contains("reserved byte"));
        let mut v2 = encode(&TopicMeta { compression: 1, ..m });
        assert_eq!(decode(&v2).unwrap().compression, 1);
        v2[7] = 3;
        assert!(decode(&with_crc(v2))
            .unwrap_err()
            .message()
            .contains("unknown compression"));
        let mut v3 = encode(&m);
        v3[4] = 3;
        assert!(decode(&with_crc(v3))
            .unwrap_err()
            .message()
            .contains("versions 1 and 2"));
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
