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

use super::{le, varint, DecodeError, Found};

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

fn push_str(out: &mut Vec<u8>, s: &str) {
    varint::push(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
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
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

fn get_str(b: &[u8], p: &mut usize) -> Result<String, DecodeError> {
    let start = *p;
    let n = varint::get(b, p)?;
    let end = p
        .checked_add(usize::try_from(n).unwrap_or(usize::MAX))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| {
            let left = b.len().saturating_sub(*p) as u64;
            DecodeError::found(start, "string runs past the entry", Found::Short { need: n, left })
        })?;
    let s = std::str::from_utf8(b.get(*p..end).unwrap_or_default()).map_err(|e| {
        let found = Found::Utf8 {
            valid: e.valid_up_to() as u64,
        };
        DecodeError::found(*p, "string is not UTF-8", found)
    })?;
    *p = end;
    Ok(s.to_string())
}

/// Decodes the entry at the start of `b`; returns it and its encoded length.
/// `Ok(None)` when `b` ends before the entry does (a torn tail).
pub fn decode(b: &[u8]) -> Result<Option<(OffsetEntry, usize)>, DecodeError> {
    let (Some(len), Some(crc)) = (le::u32_at(b, 0), le::u32_at(b, 4)) else {
        return Ok(None);
    };
    let len = len as usize;
    if len > MAX_ENTRY {
        let reason = "offsets entry longer than 64 KiB";
        return Err(DecodeError::found(0, reason, Found::Bytes(len as u64)));
    }
    let Some(body) = b.get(8..8 + len) else {
        return Ok(None);
    };
    let computed = crc32fast::hash(body);
    if computed != crc {
        let found = Found::Crc { stored: crc, computed };
        return Err(DecodeError::found(4, "offsets entry CRC mismatch", found));
    }
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
