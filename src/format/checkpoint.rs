//! The per-partition recovery checkpoint, `recovery.ckpt`.
//!
//! ```text
//!  0  4  magic         "LBck"
//!  4  1  version       1
//!  5  1  flags         bit 0: clean shutdown
//!  6  2  reserved      0
//!  8  8  segment_base  u64 LE, base offset of the active segment
//! 16  8  position      u64 LE, bytes of the active segment known durable
//! 24  8  next_offset   u64 LE, offset after the last durable record
//! 32  8  max_ts        i64 LE, largest timestamp up to `position`
//! 40  4  crc           CRC-32 of bytes 0..40
//! ```
//!
//! And the *live* checkpoint, `recovery.live`, written without fsync and
//! trusted only by a process running on the same kernel boot (a process crash
//! keeps the page cache; a power loss or kernel crash changes the boot id):
//!
//! ```text
//!  0  4  magic         "LBlc"
//!  4  1  version       1
//!  5  1  flags         0
//!  6  2  reserved      0
//!  8  8  segment_base  u64 LE
//! 16  8  position      u64 LE, bytes of the segment written when it was taken
//! 24  8  next_offset   u64 LE
//! 32  8  max_ts        i64 LE
//! 40  8  last_batch    u64 LE, byte position of the last batch before `position`
//! 48 16  boot_id       the kernel's boot id (16 bytes)
//! 64  4  crc           CRC-32 of bytes 0..64
//! ```

use super::{le, DecodeError, Fixed, Found};

/// Encoded size.
pub const LEN: usize = 44;
const MAGIC: [u8; 4] = *b"LBck";
const VERSION: u8 = 1;
const FLAG_CLEAN: u8 = 1;

/// A recovery checkpoint: everything before `position` in the segment
/// `segment_base` was fsynced; `clean` says nothing was written after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The segment it is about.
    pub segment_base: u64,
    /// Durable byte length of that segment.
    pub position: u64,
    /// Offset after the last durable record.
    pub next_offset: u64,
    /// Largest timestamp in the segment up to `position`.
    pub max_ts: i64,
    /// The broker closed cleanly at this point.
    pub clean: bool,
}

/// Encodes a checkpoint.
pub fn encode(c: &Checkpoint) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    le::put(&mut b, 0, &MAGIC);
    b[4] = VERSION;
    b[5] = if c.clean { FLAG_CLEAN } else { 0 };
    le::put(&mut b, 8, &c.segment_base.to_le_bytes());
    le::put(&mut b, 16, &c.position.to_le_bytes());
    le::put(&mut b, 24, &c.next_offset.to_le_bytes());
    le::put(&mut b, 32, &c.max_ts.to_le_bytes());
    let crc = crc32fast::hash(b.get(..40).unwrap_or_default());
    le::put(&mut b, 40, &crc.to_le_bytes());
    b
}

/// Decodes a checkpoint file.
pub fn decode(b: &[u8]) -> Result<Checkpoint, DecodeError> {
    super::check_fixed(
        b,
        &Fixed {
            len: LEN,
            magic: MAGIC,
            version: VERSION,
            len_reason: "checkpoint must be exactly 44 bytes",
            magic_reason: "checkpoint magic \"LBck\" expected",
            version_reason: "unsupported checkpoint version (this build reads version 1)",
            crc_reason: "checkpoint CRC mismatch",
        },
    )?;
    let flags = b.get(5).copied().unwrap_or(0);
    if flags & !FLAG_CLEAN != 0 {
        let reason = "unknown checkpoint flags (expected 0x00, or 0x01 for clean)";
        return Err(DecodeError::found(5, reason, Found::Bits(u64::from(flags))));
    }
    let reserved = le::u16_at(b, 6).unwrap_or(0);
    if reserved != 0 {
        let reason = "checkpoint reserved bytes must be zero";
        return Err(DecodeError::found(6, reason, Found::Bits(u64::from(reserved))));
    }
    Ok(Checkpoint {
        segment_base: le::u64_at(b, 8).unwrap_or(0),
        position: le::u64_at(b, 16).unwrap_or(0),
        next_offset: le::u64_at(b, 24).unwrap_or(0),
        max_ts: le::i64_at(b, 32).unwrap_or(0),
        clean: flags & FLAG_CLEAN != 0,
    })
}

/// Encoded size of a live checkpoint.
pub const LIVE_LEN: usize = 68;
const LIVE_MAGIC: [u8; 4] = *b"LBlc";

/// A live checkpoint: like [`Checkpoint`] (never clean), but nothing was
/// fsynced for it, so it is only valid while the kernel that buffered the
/// writes is still running (same `boot_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCheckpoint {
    /// The segment it is about.
    pub segment_base: u64,
    /// Byte length of that segment when it was taken.
    pub position: u64,
    /// Offset after the last record before `position`.
    pub next_offset: u64,
    /// Largest timestamp in the segment up to `position`.
    pub max_ts: i64,
    /// Byte position of the last batch before `position` (recovery checks
    /// that a valid batch ends exactly at `position` there).
    pub last_batch: u64,
    /// The kernel boot it is valid for.
    pub boot_id: [u8; 16],
}

/// Encodes a live checkpoint.
pub fn encode_live(c: &LiveCheckpoint) -> [u8; LIVE_LEN] {
    let mut b = [0u8; LIVE_LEN];
    le::put(&mut b, 0, &LIVE_MAGIC);
    b[4] = VERSION;
    le::put(&mut b, 8, &c.segment_base.to_le_bytes());
    le::put(&mut b, 16, &c.position.to_le_bytes());
    le::put(&mut b, 24, &c.next_offset.to_le_bytes());
    le::put(&mut b, 32, &c.max_ts.to_le_bytes());
    le::put(&mut b, 40, &c.last_batch.to_le_bytes());
    le::put(&mut b, 48, &c.boot_id);
    let crc = crc32fast::hash(b.get(..64).unwrap_or_default());
    le::put(&mut b, 64, &crc.to_le_bytes());
    b
}

/// Decodes a live checkpoint file (whatever its boot id).
pub fn decode_live(b: &[u8]) -> Result<LiveCheckpoint, DecodeError> {
    super::check_fixed(
        b,
        &Fixed {
            len: LIVE_LEN,
            magic: LIVE_MAGIC,
            version: VERSION,
            len_reason: "live checkpoint must be exactly 68 bytes",
            magic_reason: "live checkpoint magic \"LBlc\" expected",
            version_reason: "unsupported live checkpoint version (this build reads version 1)",
            crc_reason: "live checkpoint CRC mismatch",
        },
    )?;
    let flags = b.get(5).copied().unwrap_or(0);
    if flags != 0 {
        let reason = "unknown live checkpoint flags (expected 0x00)";
        return Err(DecodeError::found(5, reason, Found::Bits(u64::from(flags))));
    }
    let reserved = le::u16_at(b, 6).unwrap_or(0);
    if reserved != 0 {
        let reason = "live checkpoint reserved bytes must be zero";
        return Err(DecodeError::found(6, reason, Found::Bits(u64::from(reserved))));
    }
    let mut boot_id = [0u8; 16];
    if let Some(id) = b.get(48..64) {
        boot_id.copy_from_slice(id);
    }
    Ok(LiveCheckpoint {
        segment_base: le::u64_at(b, 8).unwrap_or(0),
        position: le::u64_at(b, 16).unwrap_or(0),
        next_offset: le::u64_at(b, 24).unwrap_or(0),
        max_ts: le::i64_at(b, 32).unwrap_or(0),
        last_batch: le::u64_at(b, 40).unwrap_or(0),
        boot_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_round_trip_and_damage() {
        let c = LiveCheckpoint {
            segment_base: 7,
            position: 4096,
            next_offset: 99,
            max_ts: -3,
            last_batch: 3900,
            boot_id: [0xab; 16],
        };
        let mut b = encode_live(&c);
        assert_eq!(decode_live(&b).unwrap(), c);
        assert!(decode(&b).is_err(), "a live checkpoint is not a checkpoint");
        b[50] ^= 0x10;
        assert!(decode_live(&b).is_err());
        assert!(decode_live(&encode(&Checkpoint {
            segment_base: 0,
            position: 0,
            next_offset: 0,
            max_ts: 0,
            clean: false
        }))
        .is_err());
    }

    #[test]
    fn round_trip_and_damage() {
        let c = Checkpoint {
            segment_base: 7,
            position: 4096,
            next_offset: 99,
            max_ts: -3,
            clean: true,
        };
        let mut b = encode(&c);
        assert_eq!(decode(&b).unwrap(), c);
        b[20] ^= 0x10;
        assert!(decode(&b).is_err());
        assert!(decode(&b[..10]).is_err());
    }

    #[test]
    fn errors_say_what_was_found_and_what_was_expected() {
        let c = Checkpoint {
            segment_base: 0,
            position: 0,
            next_offset: 0,
            max_ts: 0,
            clean: false,
        };
        let message = |b: &[u8]| decode(b).unwrap_err().message();
        let b = encode(&c);
        assert_eq!(message(&b[..43]), "checkpoint must be exactly 44 bytes, found 43 bytes");
        let mut v = b;
        v[4] = 7;
        assert_eq!(
            message(&v),
            "unsupported checkpoint version (this build reads version 1), found version 7"
        );
        let live = encode_live(&LiveCheckpoint {
            segment_base: 0,
            position: 0,
            next_offset: 0,
            max_ts: 0,
            last_batch: 0,
            boot_id: [0; 16],
        });
        assert_eq!(
            decode_live(&b[..]).unwrap_err().to_string(),
            "live checkpoint must be exactly 68 bytes, found 44 bytes (at byte 0)"
        );
        let mut v = live;
        v[0] = 0;
        assert_eq!(
            decode_live(&v).unwrap_err().message(),
            "live checkpoint magic \"LBlc\" expected, found \"\\x00Blc\""
        );
        let mut v = b;
        v[5] = 0x82;
        let crc = crc32fast::hash(&v[..40]);
        v[40..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            message(&v),
            "unknown checkpoint flags (expected 0x00, or 0x01 for clean), found 0x82"
        );
        let mut v = b;
        v[40] ^= 0xff;
        assert!(
            message(&v).starts_with("checkpoint CRC mismatch, found CRC 0x"),
            "{}",
            message(&v)
        );
    }
}
