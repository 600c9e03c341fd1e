//! The committed-offsets log of consumer groups, `@groups/offsets.log`.
//!
//! A file header (`"LBof"`, version 1, 3 reserved zero bytes) followed by
//! entries, each:
//!
//! ```text
//!  0  4  len        u32 LE, bytes after the CRC field
//!  4  4  crc        CRC-32 of the `len` bytes that follow
//!  8  1  kind       1 = commit, 2 = delete the group's offsets
//!  9  .. group      varint length + UTF-8
//!     .. topic      varint length + UTF-8 (empty for kind 2)
//!     4  partition  u32 LE (0 for kind 2)
//!     8  offset     u64 LE, the next offset to read (0 for kind 2)
//! ```
//! The last entry for a (group, topic, partition) wins; a delete entry
//! removes everything earlier for its group.

use super::entry::{self, get_str, push_str, Framing};
use super::{le, DecodeError, Found};

/// File header.
pub const FILE_HEADER: [u8; 8] = *b"LBof\x01\0\0\0";
/// Largest entry body accepted (group and topic names are bounded).
pub const MAX_ENTRY: usize = 64 * 1024;

/// One entry of the offsets log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetEntry {
    /// `group` committed `offset` (the next offset to read) for a partition.
    Commit {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition.
        partition: u32,
        /// Next offset to read.
        offset: u64,
    },
    /// The group's committed offsets were deleted.
    DeleteGroup {
        /// Group id.
        group: String,
    },
}

/// Appends an encoded entry to `out`.
pub fn encode(e: &OffsetEntry, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(64);
    match e {
        OffsetEntry::Commit {
            group,
            topic,
            partition,
            offset,
        } => {
            body.push(1);
            push_str(&mut body, group);
            push_str(&mut body, topic);
            body.extend_from_slice(&partition.to_le_bytes());
            body.extend_from_slice(&offset.to_le_bytes());
        }
        OffsetEntry::DeleteGroup { group } => {
            body.push(2);
            push_str(&mut body, group);
            push_str(&mut body, "");
            body.extend_from_slice(&[0u8; 12]);
        }
    }
    entry::frame(&body, out);
}

/// Decodes the entry at the start of `b`; returns it and its encoded length.
/// `Ok(None)` when `b` ends before the entry does (a torn tail).
pub fn decode(b: &[u8]) -> Result<Option<(OffsetEntry, usize)>, DecodeError> {
    let framing = Framing {
        max: MAX_ENTRY,
        too_long: "offsets entry longer than 64 KiB",
        crc_mismatch: "offsets entry CRC mismatch",
    };
    let Some(body) = entry::unframe(b, &framing)? else {
        return Ok(None);
    };
    let len = body.len();
    let mut p = 1;
    let group = get_str(body, &mut p)?;
    let topic = get_str(body, &mut p)?;
    let short = |at: usize, need: u64| Found::Short {
        need,
        left: body.len().saturating_sub(at) as u64,
    };
    let partition = le::u32_at(body, p).ok_or_else(|| DecodeError::found(p, "partition missing", short(p, 4)))?;
    let offset = le::u64_at(body, p + 4).ok_or_else(|| DecodeError::found(p + 4, "offset missing", short(p + 4, 8)))?;
    if p + 12 != body.len() {
        let left = body.len().saturating_sub(p + 12) as u64;
        return Err(DecodeError::found(
            p + 12,
            "bytes left after the offsets entry",
            Found::Bytes(left),
        ));
    }
    let entry = match body.first() {
        Some(1) => OffsetEntry::Commit {
            group,
            topic,
            partition,
            offset,
        },
        Some(2) => OffsetEntry::DeleteGroup { group },
        other => {
            let reason = "unknown offsets entry kind (expected 1, commit, or 2, delete group)";
            let kind = u64::from(other.copied().unwrap_or(0));
            return Err(DecodeError::found(8, reason, Found::Number(kind)));
        }
    };
    Ok(Some((entry, 8 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_tail() {
        let a = OffsetEntry::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 2,
            offset: 99,
        };
        let d = OffsetEntry::DeleteGroup { group: "g".into() };
        let mut buf = Vec::new();
        encode(&a, &mut buf);
        let first = buf.len();
        encode(&d, &mut buf);
        let (e, n) = decode(&buf).unwrap().unwrap();
        assert_eq!((e, n), (a, first));
        assert_eq!(decode(&buf[first..]).unwrap().unwrap().0, d);
        assert_eq!(decode(&buf[..first - 1]).unwrap(), None);
        buf[10] ^= 1;
        assert!(decode(&buf).is_err());
    }

    #[test]
    fn errors_say_what_was_found_and_what_was_expected() {
        let mut buf = Vec::new();
        encode(&OffsetEntry::DeleteGroup { group: "g".into() }, &mut buf);
        buf[8] = 9;
        let crc = crc32fast::hash(&buf[8..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode(&buf).unwrap_err().message(),
            "unknown offsets entry kind (expected 1, commit, or 2, delete group), found 9"
        );
        let mut big = vec![0u8; 8];
        big[..4].copy_from_slice(&(70_000u32).to_le_bytes());
        assert_eq!(
            decode(&big).unwrap_err().message(),
            "offsets entry longer than 64 KiB, found 70000 bytes"
        );
    }
}
