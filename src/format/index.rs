//! Sparse offset index (`.index`) and time index (`.timeindex`) files.
//!
//! ```text
//! header (48 bytes)
//!  0  4  magic        "LBix" (offset index) or "LBti" (time index)
//!  4  1  version      1
//!  5  1  flags        bit 0: sealed (the fields below are valid)
//!  6  2  reserved     0
//!  8  8  base_offset  u64 LE, the segment's base offset
//! 16  8  log_len      u64 LE, byte length of the sealed .log
//! 24  8  next_offset  u64 LE, offset after the segment's last record
//! 32  8  max_ts       i64 LE, largest timestamp in the segment
//! 40  4  entry_count  u32 LE
//! 44  4  crc          CRC-32 of bytes 0..44 and all entries (sealed files only)
//! entries
//!   offset index: rel_offset u32 LE, position u32 LE            (8 bytes)
//!   time index:   timestamp i64 LE, rel_offset u32 LE            (12 bytes)
//! ```
//!
//! The active segment's index files are unsealed: a header with flag 0 and
//! entries appended as the segment grows. Sealing rewrites the file whole.

use super::{le, DecodeError, Found};

/// Fixed header size.
pub const HEADER_LEN: usize = 48;
/// Index format version.
pub const VERSION: u8 = 1;
/// Magic of the offset index.
pub const OFFSET_MAGIC: [u8; 4] = *b"LBix";
/// Magic of the time index.
pub const TIME_MAGIC: [u8; 4] = *b"LBti";
const FLAG_SEALED: u8 = 1;

/// Which index a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.index`: relative offset to byte position.
    Offset,
    /// `.timeindex`: max timestamp so far to relative offset.
    Time,
}

impl Kind {
    /// Bytes per entry.
    pub fn entry_len(self) -> usize {
        match self {
            Kind::Offset => 8,
            Kind::Time => 12,
        }
    }
    fn magic(self) -> [u8; 4] {
        match self {
            Kind::Offset => OFFSET_MAGIC,
            Kind::Time => TIME_MAGIC,
        }
    }
}

/// `(relative offset, byte position)`: the batch holding `base + rel` starts at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OffsetEntry {
    /// Offset relative to the segment's base offset.
    pub rel_offset: u32,
    /// Byte position of a batch starting at that offset.
    pub position: u32,
}

/// `(timestamp, relative offset)`: every record up to `base + rel` has a
/// timestamp at most `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp among records up to `rel_offset`.
    pub timestamp: i64,
    /// Offset relative to the segment's base offset.
    pub rel_offset: u32,
}

/// Facts about a sealed segment stored in its sealed index header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seal {
    /// Byte length of the sealed `.log`.
    pub log_len: u64,
    /// Offset after the last record.
    pub next_offset: u64,
    /// Largest timestamp in the segment.
    pub max_ts: i64,
}

/// A decoded index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile<E> {
    /// The segment's base offset.
    pub base_offset: u64,
    /// Present when the file is sealed.
    pub seal: Option<Seal>,
    /// The entries, in file order.
    pub entries: Vec<E>,
}

/// Encodes an unsealed header (the start of an active index file).
pub fn encode_header(kind: Kind, base_offset: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    le::put(&mut h, 0, &kind.magic());
    h[4] = VERSION;
    le::put(&mut h, 8, &base_offset.to_le_bytes());
    h
}

/// Encodes one offset entry.
pub fn encode_offset_entry(e: OffsetEntry) -> [u8; 8] {
    let mut b = [0u8; 8];
    le::put(&mut b, 0, &e.rel_offset.to_le_bytes());
    le::put(&mut b, 4, &e.position.to_le_bytes());
    b
}

/// Encodes one time entry.
pub fn encode_time_entry(e: TimeEntry) -> [u8; 12] {
    let mut b = [0u8; 12];
    le::put(&mut b, 0, &e.timestamp.to_le_bytes());
    le::put(&mut b, 8, &e.rel_offset.to_le_bytes());
    b
}

/// Encodes a whole sealed file from already-encoded entries.
pub fn encode_sealed(kind: Kind, base_offset: u64, seal: Seal, entries: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + entries.len());
    out.extend_from_slice(&encode_header(kind, base_offset));
    if let Some(f) = out.get_mut(5) {
        *f = FLAG_SEALED;
    }
    let count = (entries.len() / kind.entry_len()) as u32;
    le::put(&mut out, 16, &seal.log_len.to_le_bytes());
    le::put(&mut out, 24, &seal.next_offset.to_le_bytes());
    le::put(&mut out, 32, &seal.max_ts.to_le_bytes());
    le::put(&mut out, 40, &count.to_le_bytes());
    out.extend_from_slice(entries);
    let crc = sealed_crc(&out);
    le::put(&mut out, 44, &crc.to_le_bytes());
    out
}

fn sealed_crc(file: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(file.get(..44).unwrap_or_default());
    h.update(file.get(HEADER_LEN..).unwrap_or_default());
    h.finalize()
}

fn decode_header(kind: Kind, file: &[u8]) -> Result<(u64, Option<Seal>, usize), DecodeError> {
    let Some(head) = file.get(..HEADER_LEN) else {
        let reason = "index file shorter than its 48-byte header";
        return Err(DecodeError::found(0, reason, Found::Bytes(file.len() as u64)));
    };
    let mut magic = [0u8; 4];
    magic.copy_from_slice(head.get(..4).unwrap_or(&[0; 4]));
    if magic != kind.magic() {
        let reason = match kind {
            Kind::Offset => "offset index magic \"LBix\" expected",
            Kind::Time => "time index magic \"LBti\" expected",
        };
        return Err(DecodeError::found(0, reason, Found::Magic(magic)));
    }
    let version = head.get(4).copied().unwrap_or(0);
    if version != VERSION {
        let reason = "unsupported index version (this build reads version 1)";
        return Err(DecodeError::found(4, reason, Found::Version(version)));
    }
    let flags = head.get(5).copied().unwrap_or(0);
    if flags & !FLAG_SEALED != 0 {
        let reason = "unknown index flags (expected 0x00, or 0x01 for sealed)";
        return Err(DecodeError::found(5, reason, Found::Bits(u64::from(flags))));
    }
    let reserved = le::u16_at(head, 6).unwrap_or(0);
    if reserved != 0 {
        let reason = "index reserved bytes must be zero";
        return Err(DecodeError::found(5, reason, Found::Bits(u64::from(reserved))));
    }
    let base = le::u64_at(head, 8).unwrap_or(0);
    let body = file.len() - HEADER_LEN;
    if flags & FLAG_SEALED == 0 {
        // Unsealed: a partial last entry (torn append) is ignored.
        return Ok((base, None, body / kind.entry_len()));
    }
    let count = le::u32_at(head, 40).unwrap_or(0) as usize;
    if count.checked_mul(kind.entry_len()) != Some(body) {
        let reason = match kind {
            Kind::Offset => "sealed index entry count does not match the file size (8 bytes an entry)",
            Kind::Time => "sealed index entry count does not match the file size (12 bytes an entry)",
        };
        let found = Found::Entries {
            count: count as u64,
            bytes: body as u64,
        };
        return Err(DecodeError::found(40, reason, found));
    }
    let (stored, computed) = (le::u32_at(head, 44).unwrap_or(0), sealed_crc(file));
    if stored != computed {
        return Err(DecodeError::found(
            44,
            "sealed index CRC mismatch",
            Found::Crc { stored, computed },
        ));
    }
    let seal = Seal {
        log_len: le::u64_at(head, 16).unwrap_or(0),
        next_offset: le::u64_at(head, 24).unwrap_or(0),
        max_ts: le::i64_at(head, 32).unwrap_or(0),
    };
    Ok((base, Some(seal), count))
}

/// Decodes an offset index file. Entries must be strictly increasing in
/// both fields; the first entry that is not ends an unsealed file and fails a sealed one.
pub fn decode_offset(file: &[u8]) -> Result<IndexFile<OffsetEntry>, DecodeError> {
    decode_entries(
        Kind::Offset,
        file,
        |b, at| OffsetEntry {
            rel_offset: le::u32_at(b, at).unwrap_or(0),
            position: le::u32_at(b, at + 4).unwrap_or(0),
        },
        |l, e| {
            if l.rel_offset >= e.rel_offset {
                Some(("offset index offsets not increasing", after(l.rel_offset, e.rel_offset)))
            } else if l.position >= e.position {
                Some(("offset index positions not increasing", after(l.position, e.position)))
            } else {
                None
            }
        },
    )
}

/// Decodes a time index file. Timestamps must not decrease and offsets must
/// increase; the first entry that breaks this ends an unsealed file and fails a sealed one.
pub fn decode_time(file: &[u8]) -> Result<IndexFile<TimeEntry>, DecodeError> {
    decode_entries(
        Kind::Time,
        file,
        |b, at| TimeEntry {
            timestamp: le::i64_at(b, at).unwrap_or(0),
            rel_offset: le::u32_at(b, at + 8).unwrap_or(0),
        },
        |l, e| {
            if l.timestamp > e.timestamp {
                let found = Found::After {
                    previous: l.timestamp,
                    value: e.timestamp,
                };
                Some(("time index timestamps decreasing", found))
            } else if l.rel_offset >= e.rel_offset {
                Some(("time index offsets not increasing", after(l.rel_offset, e.rel_offset)))
            } else {
                None
            }
        },
    )
}

/// An unsigned entry field that did not increase.
fn after(previous: u32, value: u32) -> Found {
    Found::After {
        previous: i64::from(previous),
        value: i64::from(value),
    }
}

/// The entry walk both index kinds share: `parse` reads the entry at a byte
/// position, `out_of_order` says why an entry may not come after the
/// previous one (`None` when it may).
fn decode_entries<E>(
    kind: Kind,
    file: &[u8],
    parse: impl Fn(&[u8], usize) -> E,
    out_of_order: impl Fn(&E, &E) -> Option<(&'static str, Found)>,
) -> Result<IndexFile<E>, DecodeError> {
    let (base_offset, seal, count) = decode_header(kind, file)?;
    let mut entries: Vec<E> = Vec::with_capacity(count);
    for i in 0..count {
        let at = HEADER_LEN + i * kind.entry_len();
        let e = parse(file, at);
        if let Some((reason, found)) = entries.last().and_then(|l| out_of_order(l, &e)) {
            if seal.is_some() {
                return Err(DecodeError::found(at, reason, found));
            }
            break;
        }
        entries.push(e);
    }
    Ok(IndexFile {
        base_offset,
        seal,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_round_trip_and_crc() {
        let mut raw = Vec::new();
        for (r, p) in [(0u32, 0u32), (10, 4096), (20, 8192)] {
            raw.extend_from_slice(&encode_offset_entry(OffsetEntry {
                rel_offset: r,
                position: p,
            }));
        }
        let seal = Seal {
            log_len: 9000,
            next_offset: 125,
            max_ts: 77,
        };
        let mut file = encode_sealed(Kind::Offset, 100, seal, &raw);
        let d = decode_offset(&file).unwrap();
        assert_eq!(d.base_offset, 100);
        assert_eq!(d.seal, Some(seal));
        assert_eq!(d.entries.len(), 3);
        file[50] ^= 1;
        assert!(decode_offset(&file).is_err());
        assert!(decode_time(&file).is_err(), "wrong magic");
    }

    #[test]
    fn unsealed_stops_at_torn_or_bad_entry() {
        let mut file = encode_header(Kind::Time, 0).to_vec();
        file.extend_from_slice(&encode_time_entry(TimeEntry {
            timestamp: 5,
            rel_offset: 1,
        }));
        file.extend_from_slice(&encode_time_entry(TimeEntry {
            timestamp: 4,
            rel_offset: 2,
        }));
        file.extend_from_slice(&[1, 2, 3]);
        let d = decode_time(&file).unwrap();
        assert_eq!(d.seal, None);
        assert_eq!(
            d.entries,
            vec![TimeEntry {
                timestamp: 5,
                rel_offset: 1
            }]
        );
    }

    #[test]
    fn errors_say_what_was_found_and_what_was_expected() {
        let header = encode_header(Kind::Offset, 0);
        let message = |b: &[u8]| decode_offset(b).unwrap_err().message();
        assert_eq!(
            message(&header[..10]),
            "index file shorter than its 48-byte header, found 10 bytes"
        );
        assert_eq!(
            decode_time(&header).unwrap_err().message(),
            "time index magic \"LBti\" expected, found \"LBix\""
        );
        let mut v = header.to_vec();
        v[4] = 9;
        assert_eq!(
            message(&v),
            "unsupported index version (this build reads version 1), found version 9"
        );
        let raw = [
            encode_offset_entry(OffsetEntry {
                rel_offset: 5,
                position: 50,
            }),
            encode_offset_entry(OffsetEntry {
                rel_offset: 4,
                position: 60,
            }),
        ]
        .concat();
        let seal = Seal {
            log_len: 100,
            next_offset: 6,
            max_ts: 0,
        };
        assert_eq!(
            message(&encode_sealed(Kind::Offset, 0, seal, &raw)),
            "offset index offsets not increasing, found 4 after 5"
        );
    }
}
