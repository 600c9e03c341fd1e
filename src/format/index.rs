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

use super::{le, DecodeError};

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
        return Err(DecodeError::found(
            0,
            format!(
                "index file is {} bytes, shorter than its {HEADER_LEN}-byte header",
                file.len()
            ),
        ));
    };
    let magic = head.get(..4).unwrap_or_default();
    if magic != kind.magic() {
        return Err(DecodeError::found(
            0,
            format!(
                "index magic is \"{}\", expected \"{}\"",
                magic.escape_ascii(),
                kind.magic().escape_ascii()
            ),
        ));
    }
    let version = head.get(4).copied().unwrap_or(0);
    if version != VERSION {
        return Err(DecodeError::found(
            4,
            format!("index version {version}, this build reads version {VERSION}"),
        ));
    }
    let flags = head.get(5).copied().unwrap_or(0);
    let reserved = le::u16_at(head, 6).unwrap_or(0);
    if flags & !FLAG_SEALED != 0 || reserved != 0 {
        return Err(DecodeError::found(
            5,
            format!(
                "unknown index flags: flags {flags:#04x}, reserved bytes {reserved:#06x}; \
                 expected flags 0x00 or {FLAG_SEALED:#04x} (sealed) and zero reserved bytes"
            ),
        ));
    }
    let base = le::u64_at(head, 8).unwrap_or(0);
    let body = file.len() - HEADER_LEN;
    if flags & FLAG_SEALED == 0 {
        // Unsealed: a partial last entry (torn append) is ignored.
        return Ok((base, None, body / kind.entry_len()));
    }
    let count = le::u32_at(head, 40).unwrap_or(0) as usize;
    if count.checked_mul(kind.entry_len()) != Some(body) {
        return Err(DecodeError::found(
            40,
            format!(
                "sealed index entry count does not match the file size: the header says {count} entries of {} \
                 bytes, {body} bytes follow it",
                kind.entry_len()
            ),
        ));
    }
    let (stored, computed) = (le::u32_at(head, 44).unwrap_or(0), sealed_crc(file));
    if stored != computed {
        return Err(DecodeError::found(
            44,
            format!("sealed index CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"),
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
        |l, e| l.rel_offset < e.rel_offset && l.position < e.position,
        |l, e| {
            format!(
                "offset index entries not increasing: (offset +{}, byte {}) follows (offset +{}, byte {}); \
                 both must increase",
                e.rel_offset, e.position, l.rel_offset, l.position
            )
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
        |l, e| l.timestamp <= e.timestamp && l.rel_offset < e.rel_offset,
        |l, e| {
            format!(
                "time index entries not increasing: (timestamp {}, offset +{}) follows (timestamp {}, offset +{}); \
                 timestamps must not decrease and offsets must increase",
                e.timestamp, e.rel_offset, l.timestamp, l.rel_offset
            )
        },
    )
}

/// The entry walk both index kinds share: `parse` reads the entry at a byte
/// position, `follows` says whether an entry may come after the previous one,
/// and `out_of_order` describes a pair where it may not.
fn decode_entries<E>(
    kind: Kind,
    file: &[u8],
    parse: impl Fn(&[u8], usize) -> E,
    follows: impl Fn(&E, &E) -> bool,
    out_of_order: impl Fn(&E, &E) -> String,
) -> Result<IndexFile<E>, DecodeError> {
    let (base_offset, seal, count) = decode_header(kind, file)?;
    let mut entries: Vec<E> = Vec::with_capacity(count);
    for i in 0..count {
        let at = HEADER_LEN + i * kind.entry_len();
        let e = parse(file, at);
        if let Some(l) = entries.last().filter(|l| !follows(l, &e)) {
            if seal.is_some() {
                return Err(DecodeError::found(at, out_of_order(l, &e)));
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
        let reason = |b: &[u8]| decode_offset(b).unwrap_err().reason.into_owned();
        assert_eq!(
            reason(&header[..10]),
            "index file is 10 bytes, shorter than its 48-byte header"
        );
        assert_eq!(
            decode_time(&header).unwrap_err().reason,
            "index magic is \"LBix\", expected \"LBti\""
        );
        let mut v = header.to_vec();
        v[4] = 9;
        assert_eq!(reason(&v), "index version 9, this build reads version 1");
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
            reason(&encode_sealed(Kind::Offset, 0, seal, &raw)),
            "offset index entries not increasing: (offset +4, byte 60) follows (offset +5, byte 50); both must increase"
        );
    }
}
