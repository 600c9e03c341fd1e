//! The sidecar's progress file, `<dir>/@mirror/<group>.offsets`: per
//! partition, the next local offset to ship and one past the highest offset
//! ever sent. Byte layout in `docs/FORMAT.md` ("Mirror progress file").
//!
//! `encode`/`decode` do no I/O; `load`/`store` read and replace the file
//! (temp file, fsync, rename, directory fsync).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::TopicPartition;

/// First bytes of the file.
const MAGIC: &[u8; 4] = b"LBMP";
/// The only version written and read.
const VERSION: u8 = 1;
/// The directory under the broker directory (names starting with `@` are never topics).
pub(crate) const DIR: &str = "@mirror";

/// What the file keeps for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Every offset below this was acknowledged by Kafka: restart here.
    pub(crate) next: u64,
    /// One past the highest offset ever sent: records re-sent below it after
    /// a restart may be duplicates at Kafka.
    pub(crate) sent_upto: u64,
}

/// `<dir>/@mirror/<group>.offsets`.
pub(crate) fn path(dir: &Path, group: &str) -> PathBuf {
    dir.join(DIR).join(format!("{group}.offsets"))
}

/// The file's bytes.
pub(crate) fn encode(entries: &BTreeMap<TopicPartition, Progress>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 40);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (tp, p) in entries {
        let name = tp.topic.as_bytes();
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&tp.partition.to_le_bytes());
        out.extend_from_slice(&p.next.to_le_bytes());
        out.extend_from_slice(&p.sent_upto.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A decode failure: byte position and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub(crate) at: usize,
    pub(crate) reason: String,
}

/// Parses the file's bytes; every length is checked before use.
pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<BTreeMap<TopicPartition, Progress>, DecodeError> {
    let err = |at: usize, reason: &str| DecodeError {
        at,
        reason: reason.to_string(),
    };
    if bytes.len() < 13 {
        return Err(err(
            0,
            "file shorter than its 13-byte minimum (magic, version, count, CRC)",
        ));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let want = u32::from_le_bytes(crc.try_into().map_err(|_| err(body.len(), "CRC"))?);
    if crc32fast::hash(body) != want {
        return Err(err(body.len(), "CRC-32 of the file does not match its last 4 bytes"));
    }
    let mut r = Reader { bytes: body, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(err(0, "magic is not \"LBMP\""));
    }
    let version = r.take(1)?.first().copied().unwrap_or_default();
    if version != VERSION {
        return Err(err(4, &format!("version {version}, expected {VERSION}")));
    }
    let count = r.u32()?;
    let mut out = BTreeMap::new();
    for _ in 0..count {
        let len = usize::from(r.u16()?);
        let at = r.at;
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| err(at, "topic name is not UTF-8"))?;
        let partition = r.u32()?;
        let next = r.u64()?;
        let sent_upto = r.u64()?;
        out.insert(TopicPartition::new(name, partition), Progress { next, sent_upto });
    }
    if r.at != body.len() {
        return Err(err(r.at, "bytes after the last entry"));
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(DecodeError {
                at: self.at,
                reason: format!("{n} more bytes expected, the file ends"),
            })?;
        let out = self.bytes.get(self.at..end).unwrap_or_default();
        self.at = end;
        Ok(out)
    }
    fn u16(&mut self) -> std::result::Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap_or_default()))
    }
    fn u32(&mut self) -> std::result::Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> std::result::Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
}

/// The file's entries; empty when there is no file yet.
pub(crate) fn load(path: &Path) -> Result<BTreeMap<TopicPartition, Progress>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io("reading the mirror's progress file", path, e)),
    };
    decode(&bytes).map_err(|e| Error::Corruption {
        path: path.to_path_buf(),
        position: e.at as u64,
        reason: format!("{} (delete the file to mirror every stored record again)", e.reason),
    })
}

/// Replaces the file atomically (temp file, fsync, rename, directory fsync).
pub(crate) fn store(path: &Path, entries: &BTreeMap<TopicPartition, Progress>) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.is_dir() {
            crate::fs::create_dir_durable(parent)?;
        }
    }
    crate::fs::write_atomic(path, &encode(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut m = BTreeMap::new();
        m.insert(TopicPartition::new("orders", 2), Progress { next: 7, sent_upto: 9 });
        m.insert(TopicPartition::new("a", 0), Progress { next: 0, sent_upto: 0 });
        let bytes = encode(&m);
        assert_eq!(decode(&bytes).unwrap(), m);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {i}");
            assert!(decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }
}
