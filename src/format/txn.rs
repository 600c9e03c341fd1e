//! Transactions on disk: the broker's transaction log `@txn/txn.log` and
//! the control records (commit and abort markers) written into partitions.
//!
//! The transaction log is a file header (`"LBtx"`, version 1, 3 reserved
//! zero bytes) followed by entries, each:
//!
//! ```text
//!  0  4  len    u32 LE, bytes after the CRC field (at most 16 MiB)
//!  4  4  crc    CRC-32 of the `len` bytes that follow
//!  8  1  kind   1 = reserve, 2 = commit, 3 = applied, 4 = committed ranges
//!  9  .. body   kind 1: u64 up_to (ids below it may be in use)
//!               kind 2: u64 id, varint n, n x (varint+UTF-8 group,
//!                       varint+UTF-8 topic, u32 partition, u64 offset)
//!               kind 3: u64 id (the commit's offsets are in offsets.log)
//!               kind 4: varint n, n x (u64 first, u64 last): committed ids
//! ```
//!
//! A control record is the only record of a control batch (a version 2
//! batch with the transactional and control bits, `producer_id` = the
//! transaction id). Its key is 4 bytes, `u16 LE` version 0 and `u16 LE` type
//! (0 abort, 1 commit); its value is empty.

use super::batch::{BatchHeader, Records};
use super::entry::{self, get_str, push_str, Framing};
use super::{le, varint, DecodeError, Found};

/// File header of `txn.log`.
pub const FILE_HEADER: [u8; 8] = *b"LBtx\x01\0\0\0";
/// Largest entry body accepted.
pub const MAX_ENTRY: usize = 16 * 1024 * 1024;

/// One entry of the transaction log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnEntry {
    /// Transaction ids below `up_to` may be in use: the next open starts there.
    Reserve {
        /// First id not reserved.
        up_to: u64,
    },
    /// The commit point of transaction `id`, with the group offsets it commits.
    Commit {
        /// Transaction id.
        id: u64,
        /// `(group, topic, partition, next offset to read)`.
        offsets: Vec<TxnOffset>,
    },
    /// The offsets of transaction `id` were written to the offsets log.
    Applied {
        /// Transaction id.
        id: u64,
    },
    /// Committed transaction ids, as inclusive ranges (written by a rewrite).
    Committed {
        /// `(first, last)` ranges.
        ranges: Vec<(u64, u64)>,
    },
}

/// A group offset committed with a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffset {
    /// Group id.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// Next offset to read.
    pub offset: u64,
}

/// Appends an encoded entry to `out`. `None` (nothing appended) when the
/// entry's body would be over [`MAX_ENTRY`].
pub fn encode(e: &TxnEntry, out: &mut Vec<u8>) -> Option<()> {
    let mut body = Vec::with_capacity(16);
    match e {
        TxnEntry::Reserve { up_to } => {
            body.push(1);
            body.extend_from_slice(&up_to.to_le_bytes());
        }
        TxnEntry::Commit { id, offsets } => {
            body.push(2);
            body.extend_from_slice(&id.to_le_bytes());
            varint::push(&mut body, offsets.len() as u64);
            for o in offsets {
                push_str(&mut body, &o.group);
                push_str(&mut body, &o.topic);
                body.extend_from_slice(&o.partition.to_le_bytes());
                body.extend_from_slice(&o.offset.to_le_bytes());
            }
        }
        TxnEntry::Applied { id } => {
            body.push(3);
            body.extend_from_slice(&id.to_le_bytes());
        }
        TxnEntry::Committed { ranges } => {
            body.push(4);
            varint::push(&mut body, ranges.len() as u64);
            for (first, last) in ranges {
                body.extend_from_slice(&first.to_le_bytes());
                body.extend_from_slice(&last.to_le_bytes());
            }
        }
    }
    if body.len() > MAX_ENTRY {
        return None;
    }
    entry::frame(&body, out);
    Some(())
}

fn short(body: &[u8], at: usize, need: u64) -> Found {
    Found::Short {
        need,
        left: body.len().saturating_sub(at) as u64,
    }
}

fn get_u64(body: &[u8], p: &mut usize, what: &'static str) -> Result<u64, DecodeError> {
    let v = le::u64_at(body, *p).ok_or_else(|| DecodeError::found(*p, what, short(body, *p, 8)))?;
    *p += 8;
    Ok(v)
}

/// A count read from the entry, checked against the bytes left (each item
/// takes at least `min_item` bytes), so nothing is allocated from it unchecked.
fn get_count(body: &[u8], p: &mut usize, min_item: usize) -> Result<usize, DecodeError> {
    let at = *p;
    let n = varint::get(body, p)?;
    let left = body.len().saturating_sub(*p);
    match usize::try_from(n) {
        Ok(n) if n.saturating_mul(min_item) <= left => Ok(n),
        _ => Err(DecodeError::found(
            at,
            "count larger than the entry can hold",
            Found::Number(n),
        )),
    }
}

/// Decodes the entry at the start of `b`; returns it and its encoded length.
/// `Ok(None)` when `b` ends before the entry does (a torn tail).
pub fn decode(b: &[u8]) -> Result<Option<(TxnEntry, usize)>, DecodeError> {
    let framing = Framing {
        max: MAX_ENTRY,
        too_long: "transaction log entry longer than 16 MiB",
        crc_mismatch: "transaction log entry CRC mismatch",
    };
    let Some(body) = entry::unframe(b, &framing)? else {
        return Ok(None);
    };
    let len = body.len();
    let mut p = 1;
    let entry = match body.first() {
        Some(1) => TxnEntry::Reserve {
            up_to: get_u64(body, &mut p, "reserved id missing")?,
        },
        Some(2) => {
            let id = get_u64(body, &mut p, "transaction id missing")?;
            // Two empty strings, a partition and an offset: 14 bytes at least.
            let n = get_count(body, &mut p, 14)?;
            let mut offsets = Vec::with_capacity(n);
            for _ in 0..n {
                let group = get_str(body, &mut p)?;
                let topic = get_str(body, &mut p)?;
                let partition =
                    le::u32_at(body, p).ok_or_else(|| DecodeError::found(p, "partition missing", short(body, p, 4)))?;
                p += 4;
                let offset = get_u64(body, &mut p, "offset missing")?;
                offsets.push(TxnOffset {
                    group,
                    topic,
                    partition,
                    offset,
                });
            }
            TxnEntry::Commit { id, offsets }
        }
        Some(3) => TxnEntry::Applied {
            id: get_u64(body, &mut p, "transaction id missing")?,
        },
        Some(4) => {
            let n = get_count(body, &mut p, 16)?;
            let mut ranges = Vec::with_capacity(n);
            for _ in 0..n {
                let first = get_u64(body, &mut p, "range start missing")?;
                let last = get_u64(body, &mut p, "range end missing")?;
                if last < first {
                    let found = Found::After {
                        previous: first as i64,
                        value: last as i64,
                    };
                    return Err(DecodeError::found(p - 8, "range ends before it starts", found));
                }
                ranges.push((first, last));
            }
            TxnEntry::Committed { ranges }
        }
        other => {
            let reason = "unknown transaction log entry kind (expected 1 to 4)";
            let kind = u64::from(other.copied().unwrap_or(0));
            return Err(DecodeError::found(8, reason, Found::Number(kind)));
        }
    };
    if p != body.len() {
        let left = body.len().saturating_sub(p) as u64;
        return Err(DecodeError::found(
            8 + p,
            "bytes left after the transaction log entry",
            Found::Bytes(left),
        ));
    }
    Ok(Some((entry, 8 + len)))
}

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// The transaction aborted: its records are never visible.
    Abort,
    /// The transaction committed.
    Commit,
}

/// The key of a control record of `kind`.
pub fn control_key(kind: ControlKind) -> [u8; 4] {
    let t: u16 = match kind {
        ControlKind::Abort => 0,
        ControlKind::Commit => 1,
    };
    let [a, b] = t.to_le_bytes();
    [0, 0, a, b]
}

/// Decodes a control record's key.
pub fn decode_control_key(key: &[u8]) -> Result<ControlKind, DecodeError> {
    if key.len() != 4 {
        let reason = "control record key of 4 bytes expected";
        return Err(DecodeError::found(0, reason, Found::Bytes(key.len() as u64)));
    }
    let version = le::u16_at(key, 0).unwrap_or(u16::MAX);
    if version != 0 {
        return Err(DecodeError::found(
            0,
            "control record version 0 expected",
            Found::Number(u64::from(version)),
        ));
    }
    match le::u16_at(key, 2) {
        Some(0) => Ok(ControlKind::Abort),
        Some(1) => Ok(ControlKind::Commit),
        other => Err(DecodeError::found(
            2,
            "control record type 0 (abort) or 1 (commit) expected",
            Found::Number(u64::from(other.unwrap_or(u16::MAX))),
        )),
    }
}

/// What a control batch (its header says so; CRC checked) marks: it must
/// hold exactly one record whose key is a control key.
pub fn control_of(batch: &[u8], header: BatchHeader) -> Result<ControlKind, DecodeError> {
    let mut records = Records::new(batch, header);
    let (Some(r), None) = (records.next(), records.next()) else {
        let found = Found::Number(u64::from(header.count));
        return Err(DecodeError::found(0, "one record in a control batch expected", found));
    };
    let r = r?;
    let key = r
        .key
        .and_then(|(a, b)| batch.get(a as usize..b as usize))
        .unwrap_or_default();
    decode_control_key(key).map_err(|e| DecodeError {
        at: r.key.map_or(0, |(a, _)| a as usize) + e.at,
        ..e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_a_cut_entry_is_a_torn_tail() {
        let entries = [
            TxnEntry::Reserve { up_to: 4097 },
            TxnEntry::Commit {
                id: 7,
                offsets: vec![TxnOffset {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 3,
                    offset: 42,
                }],
            },
            TxnEntry::Applied { id: 7 },
            TxnEntry::Committed {
                ranges: vec![(1, 5), (7, 7)],
            },
        ];
        for e in &entries {
            let mut buf = Vec::new();
            encode(e, &mut buf).unwrap();
            let (back, len) = decode(&buf).unwrap().unwrap();
            assert_eq!((&back, len), (e, buf.len()));
            assert_eq!(decode(&buf[..buf.len() - 1]).unwrap(), None);
            let mut bad = buf.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(decode(&bad).is_err());
        }
    }

    /// The example of docs/FORMAT.md, "Transaction log".
    #[test]
    fn the_format_documents_example_bytes() {
        let mut buf = FILE_HEADER.to_vec();
        encode(&TxnEntry::Reserve { up_to: 4097 }, &mut buf).unwrap();
        encode(&TxnEntry::Committed { ranges: vec![(1, 41)] }, &mut buf).unwrap();
        let hex: Vec<String> = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "4c 42 74 78 01 00 00 00 09 00 00 00 bd 9c 06 5a 01 01 10 00 00 00 00 00 00 \
             12 00 00 00 e4 3b 44 a3 04 01 01 00 00 00 00 00 00 00 29 00 00 00 00 00 00 00"
        );
    }

    #[test]
    fn a_huge_count_is_rejected_before_allocating() {
        let mut body = vec![4u8];
        varint::push(&mut body, u64::MAX / 2);
        let mut buf = (body.len() as u32).to_le_bytes().to_vec();
        buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        buf.extend_from_slice(&body);
        assert!(decode(&buf).is_err());
    }

    #[test]
    fn control_keys_round_trip_and_others_are_rejected() {
        for k in [ControlKind::Abort, ControlKind::Commit] {
            assert_eq!(decode_control_key(&control_key(k)).unwrap(), k);
        }
        assert!(decode_control_key(b"abc").is_err());
        assert!(decode_control_key(&[1, 0, 1, 0]).is_err());
        assert!(decode_control_key(&[0, 0, 2, 0]).is_err());
    }
}
