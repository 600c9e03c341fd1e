//! The mirror's progress file (`@mirror/<group>.offsets`): per partition, the
//! next local offset to ship and one past the highest offset ever sent.
//!
//! ```text
//! offset size field
//!  0     4    magic       "LBMP"
//!  4     1    version     1
//!  5     4    count       u32 LE, entries that follow
//!  9     ..   entries     count x (u16 LE name_len, name (UTF-8), u32 LE partition,
//!                         u64 LE next, u64 LE sent_upto)
//!  end-4 4    crc         CRC-32 (IEEE) of every byte before it
//! ```

use std::collections::BTreeMap;

use super::{le, DecodeError, Found};

/// First bytes of the file.
pub const MAGIC: [u8; 4] = *b"LBMP";
/// The only version written and read.
pub const VERSION: u8 = 1;
/// Magic, version, count and CRC: the smallest valid file.
const MIN_LEN: usize = 13;

/// What the file keeps for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Every offset below this was acknowledged by Kafka: restart here.
    pub next: u64,
    /// One past the highest offset ever sent: records re-sent below it after
    /// a restart may be duplicates at Kafka.
    pub sent_upto: u64,
}

/// The entries, keyed by (topic, partition).
pub type Entries = BTreeMap<(String, u32), Progress>;

/// The file's bytes.
pub fn encode(entries: &Entries) -> Vec<u8> {
    let mut out = Vec::with_capacity(MIN_LEN + entries.len() * 40);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&u32::try_from(entries.len()).unwrap_or(u32::MAX).to_le_bytes());
    for ((topic, partition), p) in entries {
        // Topic names are at most 249 bytes (the topic-name rule).
        let name = topic.as_bytes();
        out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&partition.to_le_bytes());
        out.extend_from_slice(&p.next.to_le_bytes());
        out.extend_from_slice(&p.sent_upto.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Parses the file's bytes; every length is checked before use.
pub fn decode(bytes: &[u8]) -> Result<Entries, DecodeError> {
    if bytes.len() < MIN_LEN {
        let found = Found::Bytes(bytes.len() as u64);
        return Err(DecodeError::found(
            0,
            "mirror progress file of at least 13 bytes expected",
            found,
        ));
    }
    let body_len = bytes.len() - 4;
    let body = bytes.get(..body_len).unwrap_or_default();
    let stored = le::u32_at(bytes, body_len).unwrap_or(0);
    let computed = crc32fast::hash(body);
    if stored != computed {
        let found = Found::Crc { stored, computed };
        return Err(DecodeError::found(body_len, "mirror progress CRC mismatch", found));
    }
    let magic: [u8; 4] = body.get(..4).and_then(|m| m.try_into().ok()).unwrap_or_default();
    if magic != MAGIC {
        return Err(DecodeError::found(
            0,
            "mirror progress magic \"LBMP\" expected",
            Found::Magic(magic),
        ));
    }
    let version = body.get(4).copied().unwrap_or(0);
    if version != VERSION {
        let reason = "unsupported mirror progress version (this build reads version 1)";
        return Err(DecodeError::found(4, reason, Found::Version(version)));
    }
    let count = le::u32_at(body, 5).unwrap_or(0);
    let mut at = 9;
    let mut out = Entries::new();
    for _ in 0..count {
        let short = |at: usize, need: u64| {
            let left = body.len().saturating_sub(at) as u64;
            DecodeError::found(
                at,
                "mirror progress entry runs past the file",
                Found::Short { need, left },
            )
        };
        let len = usize::from(le::u16_at(body, at).ok_or_else(|| short(at, 2))?);
        let name_at = at + 2;
        let name = body
            .get(name_at..name_at + len)
            .ok_or_else(|| short(name_at, len as u64))?;
        let name = std::str::from_utf8(name).map_err(|e| {
            let found = Found::Utf8 {
                valid: e.valid_up_to() as u64,
            };
            DecodeError::found(name_at, "mirror progress topic name in UTF-8 expected", found)
        })?;
        let fields = name_at + len;
        let (Some(partition), Some(next), Some(sent_upto)) = (
            le::u32_at(body, fields),
            le::u64_at(body, fields + 4),
            le::u64_at(body, fields + 12),
        ) else {
            return Err(short(fields, 20));
        };
        out.insert((name.to_string(), partition), Progress { next, sent_upto });
        at = fields + 20;
    }
    if at != body.len() {
        let found = Found::Bytes((body.len() - at) as u64);
        return Err(DecodeError::found(
            at,
            "mirror progress: no bytes after the last entry expected",
            found,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_or_cut_is_refused() {
        let mut m = Entries::new();
        m.insert(("orders".into(), 2), Progress { next: 7, sent_upto: 9 });
        m.insert(("a".into(), 0), Progress { next: 0, sent_upto: 0 });
        let bytes = encode(&m);
        assert_eq!(decode(&bytes).unwrap(), m);
        assert_eq!(decode(&encode(&Entries::new())).unwrap(), Entries::new());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {i}");
            assert!(decode(&bytes[..i]).is_err(), "cut at {i}");
        }
        let e = decode(&bytes[..5]).unwrap_err();
        assert_eq!(
            e.message(),
            "mirror progress file of at least 13 bytes expected, found 5 bytes"
        );
    }
}
