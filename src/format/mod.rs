//! Encoding and decoding of every on-disk structure, byte by byte as
//! `docs/FORMAT.md` specifies. Nothing here does I/O, and no decoder
//! allocates from a length it has not checked against the input's size,
//! so every decoder can be fed arbitrary bytes (see `fuzz/`).

pub mod batch;
pub mod checkpoint;
pub mod index;
pub mod offsets;
pub mod topic_meta;
pub mod varint;
pub mod walk;

use std::borrow::Cow;

/// Whether every byte is zero. Word-wide: recovery checks the zero-filled
/// tail of an active segment (up to 16 MiB ahead of the data), and a
/// byte-at-a-time loop made that most of the time of a reopen.
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(4096);
    // The OR of a block vectorises (no early exit inside it).
    let zero_blocks = blocks.by_ref().all(|b| b.iter().fold(0u8, |acc, &x| acc | x) == 0);
    zero_blocks && blocks.remainder().iter().all(|&b| b == 0)
}

/// A decoding failure: where (relative to the start of the decoded buffer) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte position, relative to the start of the structure being decoded.
    pub at: usize,
    /// What was found and what was expected. Borrowed for the fixed texts of
    /// the batch decoder, which builds errors on the read path without
    /// allocating; owned when it quotes the bytes found.
    pub reason: Cow<'static, str>,
}

impl DecodeError {
    /// A failure with a fixed text (no allocation).
    #[inline]
    pub(crate) const fn new(at: usize, reason: &'static str) -> DecodeError {
        DecodeError {
            at,
            reason: Cow::Borrowed(reason),
        }
    }

    /// A failure whose text says what was found (formatted only on failure).
    #[cold]
    pub(crate) fn found(at: usize, reason: String) -> DecodeError {
        DecodeError {
            at,
            reason: Cow::Owned(reason),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.at)
    }
}

/// The checks every fixed-size file (`recovery.ckpt`, `recovery.live`,
/// `topic.meta`) starts with, in this order: its exact length `len`, its
/// `magic` (bytes 0..4), its `version` (byte 4), and its CRC-32 (the last 4
/// bytes) of every byte before it. `what` names the file in the errors.
pub(crate) fn check_fixed(what: &str, b: &[u8], len: usize, magic: [u8; 4], version: u8) -> Result<(), DecodeError> {
    if b.len() != len {
        return Err(DecodeError::found(
            0,
            format!("{what} is {} bytes, expected exactly {len}", b.len()),
        ));
    }
    let found = b.get(..4).unwrap_or_default();
    if found != magic {
        return Err(DecodeError::found(
            0,
            format!(
                "{what} magic is \"{}\", expected \"{}\"",
                found.escape_ascii(),
                magic.escape_ascii()
            ),
        ));
    }
    let found = b.get(4).copied().unwrap_or(0);
    if found != version {
        return Err(DecodeError::found(
            4,
            format!("{what} version {found}, this build reads version {version}"),
        ));
    }
    let crc_at = len - 4;
    let stored = le::u32_at(b, crc_at).unwrap_or(0);
    let computed = crc32fast::hash(b.get(..crc_at).unwrap_or_default());
    if stored != computed {
        return Err(DecodeError::found(
            crc_at,
            format!("{what} CRC mismatch: stored {stored:#010x}, computed {computed:#010x} over bytes 0..{crc_at}"),
        ));
    }
    Ok(())
}

/// Little-endian field readers that return `None` past the end instead of panicking.
pub(crate) mod le {
    #[inline]
    pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
    }
    #[inline]
    pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }
    #[inline]
    pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }
    #[inline]
    pub fn i64_at(b: &[u8], at: usize) -> Option<i64> {
        Some(i64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }
    /// Copies `src` into `dst` at `at`; a `dst` too short is left untouched
    /// (callers size `dst` from the same layout constants first).
    #[inline]
    pub fn put(dst: &mut [u8], at: usize, src: &[u8]) {
        if let Some(slot) = dst.get_mut(at..at + src.len()) {
            slot.copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod zero_tests {
    #[test]
    fn all_zero_sees_any_nonzero_byte() {
        let mut v = vec![0u8; 3 * 4096 + 17];
        assert!(super::all_zero(&v));
        assert!(super::all_zero(&[]));
        for at in [0, 4095, 4096, 3 * 4096, 3 * 4096 + 16] {
            v[at] = 1;
            assert!(!super::all_zero(&v), "{at}");
            v[at] = 0;
        }
    }
}
