//! A compacted partition's compaction state, `<partition>/compact.state`.
//!
//! ```text
//!  0  4  magic        "LBcs"
//!  4  1  version      1
//!  5  3  reserved     0
//!  8  4  pass_count   u32 LE, at most MAX_PASSES
//! 12  4  swap_count   u32 LE, at most MAX_SWAPS
//! 16  ..  passes      pass_count x (upto u64 LE, time_ms i64 LE): a pass at
//!                     time_ms reached every offset below upto; both increase
//! ..  ..  swaps       swap_count x (base u64 LE, end u64 LE): the segment
//!                     <base>.log.cleaned replaces every segment whose base
//!                     is in base..end (a swap in progress)
//! ..  4  crc          CRC-32 of every byte before it
//! ```
//!
//! The file is replaced atomically. A file with swaps is the commit point of
//! a compaction pass: recovery finishes the swaps it lists.

use super::{le, DecodeError, Found};

const MAGIC: [u8; 4] = *b"LBcs";
const VERSION: u8 = 1;
const HEADER: usize = 16;
/// Most pass entries a file holds (older ones are merged, see [`CompactState::push_pass`]).
pub const MAX_PASSES: usize = 64;
/// Most swaps one pass lists.
pub const MAX_SWAPS: usize = 1 << 20;

/// One pass: at `time_ms` it reached every offset below `upto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Offset after the last offset the pass compacted.
    pub upto: u64,
    /// When the pass ran, ms since the epoch.
    pub time_ms: i64,
}

/// One segment replacement: `<base>.log.cleaned` replaces the segments
/// whose base offsets are in `base..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swap {
    /// The first replaced segment's base, and the new segment's.
    pub base: u64,
    /// The base of the first segment after the replaced ones.
    pub end: u64,
}

/// The decoded file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactState {
    /// The passes, oldest first.
    pub passes: Vec<Pass>,
    /// The swaps of a pass being installed (empty when none is).
    pub swaps: Vec<Swap>,
}

impl CompactState {
    /// Offset below which the log has been compacted (0: never).
    pub fn cleaned_upto(&self) -> u64 {
        self.passes.last().map_or(0, |p| p.upto)
    }

    /// When a pass first reached `offset`; `None` if none has.
    pub fn first_reached(&self, offset: u64) -> Option<i64> {
        let i = self.passes.partition_point(|p| p.upto <= offset);
        self.passes.get(i).map(|p| p.time_ms)
    }

    /// Records a pass. Beyond [`MAX_PASSES`] the two oldest merge into one
    /// with the later time: tombstones they reached then look reached later,
    /// which keeps them longer, never shorter, than `delete_retention_ms`.
    pub fn push_pass(&mut self, pass: Pass) {
        match self.passes.last_mut() {
            Some(last) if pass.upto <= last.upto => return,
            _ => {}
        }
        let time_ms = self.passes.last().map_or(pass.time_ms, |l| l.time_ms.max(pass.time_ms));
        self.passes.push(Pass { time_ms, ..pass });
        if self.passes.len() > MAX_PASSES {
            let first = self.passes.remove(0);
            if let Some(second) = self.passes.first_mut() {
                second.time_ms = second.time_ms.max(first.time_ms);
            }
        }
    }
}

/// Encodes the state.
pub fn encode(s: &CompactState) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER + 16 * (s.passes.len() + s.swaps.len()) + 4);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&[VERSION, 0, 0, 0]);
    b.extend_from_slice(&(s.passes.len() as u32).to_le_bytes());
    b.extend_from_slice(&(s.swaps.len() as u32).to_le_bytes());
    for p in &s.passes {
        b.extend_from_slice(&p.upto.to_le_bytes());
        b.extend_from_slice(&p.time_ms.to_le_bytes());
    }
    for w in &s.swaps {
        b.extend_from_slice(&w.base.to_le_bytes());
        b.extend_from_slice(&w.end.to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes the state, checking magic, version, counts, length, CRC and order.
pub fn decode(b: &[u8]) -> Result<CompactState, DecodeError> {
    if b.len() < HEADER + 4 {
        let reason = "compact.state shorter than its 20-byte minimum";
        return Err(DecodeError::found(0, reason, Found::Bytes(b.len() as u64)));
    }
    let mut magic = [0u8; 4];
    magic.copy_from_slice(b.get(..4).unwrap_or(&[0; 4]));
    if magic != MAGIC {
        return Err(DecodeError::found(
            0,
            "compact.state magic \"LBcs\" expected",
            Found::Magic(magic),
        ));
    }
    let version = b.get(4).copied().unwrap_or(0);
    if version != VERSION {
        let reason = "unsupported compact.state version (this build reads version 1)";
        return Err(DecodeError::found(4, reason, Found::Version(version)));
    }
    if b.get(5..8) != Some(&[0, 0, 0][..]) {
        return Err(DecodeError::new(5, "compact.state reserved bytes must be zero"));
    }
    let passes = le::u32_at(b, 8).unwrap_or(0) as usize;
    let swaps = le::u32_at(b, 12).unwrap_or(0) as usize;
    if passes > MAX_PASSES || swaps > MAX_SWAPS {
        return Err(DecodeError::new(8, "compact.state counts out of range"));
    }
    let len = HEADER + 16 * (passes + swaps) + 4;
    if b.len() != len {
        let reason = "compact.state length does not match its counts";
        return Err(DecodeError::found(0, reason, Found::Bytes(b.len() as u64)));
    }
    let crc_at = len - 4;
    let stored = le::u32_at(b, crc_at).unwrap_or(0);
    let computed = crc32fast::hash(b.get(..crc_at).unwrap_or_default());
    if stored != computed {
        return Err(DecodeError::found(
            crc_at,
            "compact.state CRC mismatch",
            Found::Crc { stored, computed },
        ));
    }
    let pair = |i: usize| {
        let at = HEADER + 16 * i;
        (le::u64_at(b, at).unwrap_or(0), le::u64_at(b, at + 8).unwrap_or(0))
    };
    let mut s = CompactState::default();
    for i in 0..passes {
        let (upto, time) = pair(i);
        let p = Pass {
            upto,
            time_ms: time as i64,
        };
        if s.passes
            .last()
            .is_some_and(|l| l.upto >= p.upto || l.time_ms > p.time_ms)
        {
            return Err(DecodeError::new(HEADER + 16 * i, "compact.state passes out of order"));
        }
        s.passes.push(p);
    }
    for i in passes..passes + swaps {
        let (base, end) = pair(i);
        if end <= base || s.swaps.last().is_some_and(|l: &Swap| l.end > base) {
            return Err(DecodeError::new(HEADER + 16 * i, "compact.state swaps out of order"));
        }
        s.swaps.push(Swap { base, end });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut s = CompactState::default();
        s.push_pass(Pass { upto: 10, time_ms: 5 });
        s.push_pass(Pass { upto: 30, time_ms: 9 });
        s.swaps = vec![Swap { base: 0, end: 10 }, Swap { base: 10, end: 30 }];
        let mut b = encode(&s);
        assert_eq!(decode(&b).unwrap(), s);
        assert_eq!(s.cleaned_upto(), 30);
        assert_eq!(s.first_reached(0), Some(5));
        assert_eq!(s.first_reached(10), Some(9));
        assert_eq!(s.first_reached(30), None);
        b[20] ^= 1;
        assert!(decode(&b).unwrap_err().message().contains("CRC"));
        assert!(decode(&b[..10]).is_err());
    }

    #[test]
    fn old_passes_merge_towards_the_later_time() {
        let mut s = CompactState::default();
        for i in 0..(MAX_PASSES as u64 + 5) {
            s.push_pass(Pass {
                upto: (i + 1) * 10,
                time_ms: i as i64,
            });
        }
        assert_eq!(s.passes.len(), MAX_PASSES);
        // Offset 0 was first reached at time 0; merged, it looks reached at 5.
        assert_eq!(s.first_reached(0), Some(5));
        assert_eq!(decode(&encode(&s)).unwrap(), s);
    }
}
