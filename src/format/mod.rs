//! Encoding and decoding of every on-disk structure, byte by byte as
//! `docs/FORMAT.md` specifies. Nothing here does I/O, and no decoder
//! allocates from a length it has not checked against the input's size,
//! so every decoder can be fed arbitrary bytes (see `fuzz/`).

pub mod batch;
pub mod checkpoint;
pub mod compact_state;
pub mod compress;
mod entry;
pub mod index;
pub mod mirror_progress;
pub mod offsets;
pub mod topic_meta;
pub mod txn;
pub mod varint;
pub mod walk;

/// Whether every byte is zero. Word-wide: recovery checks the zero-filled
/// tail of an active segment (up to 16 MiB ahead of the data), and a
/// byte-at-a-time loop made that most of the time of a reopen.
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(4096);
    // The OR of a block vectorises (no early exit inside it).
    let zero_blocks = blocks.by_ref().all(|b| b.iter().fold(0u8, |acc, &x| acc | x) == 0);
    zero_blocks && blocks.remainder().iter().all(|&b| b == 0)
}

/// A decoding failure with a fixed reason: what the per-record decoders
/// (varints, the records of a batch) return. Two words, so the `Result` each
/// record passes through stays small on the read path; `?` turns it into a
/// [`DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// Byte position, relative to the start of the structure being decoded.
    pub at: usize,
    /// What is wrong, saying what was expected.
    pub reason: &'static str,
}

impl Malformed {
    #[inline]
    pub(crate) const fn new(at: usize, reason: &'static str) -> Malformed {
        Malformed { at, reason }
    }
}

impl From<Malformed> for DecodeError {
    #[inline]
    fn from(m: Malformed) -> DecodeError {
        DecodeError::new(m.at, m.reason)
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        DecodeError::from(*self).fmt(f)
    }
}

/// A decoding failure: where (relative to the start of the decoded buffer),
/// what was expected, and what was found.
///
/// `Copy` and allocation-free. The per-record decoders return the smaller
/// [`Malformed`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte position, relative to the start of the structure being decoded.
    pub at: usize,
    /// What was expected (or, for the batch decoder's checks, what is wrong).
    pub reason: &'static str,
    /// What was found there instead.
    pub found: Found,
}

/// What a decoder found where the bytes break the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// Not reported: the reason says it all (the batch decoder's checks).
    Unreported,
    /// A length, in bytes.
    Bytes(u64),
    /// A magic number.
    Magic([u8; 4]),
    /// A format version.
    Version(u8),
    /// Flags or reserved bits (shown in hex).
    Bits(u64),
    /// A number (a kind, a count).
    Number(u64),
    /// The CRC stored in the file, and the one computed over the same bytes.
    Crc {
        /// As stored.
        stored: u32,
        /// As computed.
        computed: u32,
    },
    /// A value, and the one before it that it should have followed.
    After {
        /// The value before it.
        previous: i64,
        /// The value found.
        value: i64,
    },
    /// Fewer bytes left than a field needs.
    Short {
        /// Bytes the field needs.
        need: u64,
        /// Bytes left.
        left: u64,
    },
    /// A sealed index header's entry count, and the bytes of entries after it.
    Entries {
        /// Entries the header counts.
        count: u64,
        /// Bytes after the header.
        bytes: u64,
    },
    /// Bytes that are not UTF-8, after this many that are.
    Utf8 {
        /// Valid bytes before the invalid sequence.
        valid: u64,
    },
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Found::Unreported => Ok(()),
            Found::Bytes(n) => write!(f, "{n} bytes"),
            Found::Magic(m) => write!(f, "\"{}\"", m.escape_ascii()),
            Found::Version(v) => write!(f, "version {v}"),
            Found::Bits(b) => write!(f, "{b:#04x}"),
            Found::Number(n) => write!(f, "{n}"),
            Found::Crc { stored, computed } => write!(f, "CRC {stored:#010x}, computed {computed:#010x}"),
            Found::After { previous, value } => write!(f, "{value} after {previous}"),
            Found::Short { need, left } => write!(f, "{left} bytes left, {need} needed"),
            Found::Entries { count, bytes } => write!(f, "{count} entries in the header, {bytes} bytes of entries"),
            Found::Utf8 { valid } => write!(f, "an invalid sequence after {valid} valid bytes"),
        }
    }
}

impl DecodeError {
    /// A failure whose reason says it all.
    #[inline]
    pub(crate) const fn new(at: usize, reason: &'static str) -> DecodeError {
        DecodeError {
            at,
            reason,
            found: Found::Unreported,
        }
    }

    /// A failure: `reason` says what was expected, `found` what was there.
    #[inline]
    pub(crate) const fn found(at: usize, reason: &'static str, found: Found) -> DecodeError {
        DecodeError { at, reason, found }
    }

    /// What was expected and what was found, without the position: the
    /// `reason` of an `Error::Corruption`.
    pub fn message(&self) -> String {
        match self.found {
            Found::Unreported => self.reason.to_string(),
            found => format!("{}, found {found}", self.reason),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.found {
            Found::Unreported => write!(f, "{} (at byte {})", self.reason, self.at),
            found => write!(f, "{}, found {found} (at byte {})", self.reason, self.at),
        }
    }
}

/// The expectations a fixed-size file's checks name (see `check_fixed`).
pub(crate) struct Fixed {
    pub len: usize,
    pub magic: [u8; 4],
    pub version: u8,
    /// "must be exactly N bytes"
    pub len_reason: &'static str,
    /// "magic \"XXXX\" expected"
    pub magic_reason: &'static str,
    /// "unsupported version (this build reads version N)"
    pub version_reason: &'static str,
    /// "CRC mismatch"
    pub crc_reason: &'static str,
}

/// The checks every fixed-size file (`recovery.ckpt`, `recovery.live`,
/// `topic.meta`) starts with, in this order: its exact length, its magic
/// (bytes 0..4), its version (byte 4), and its CRC-32 (the last 4 bytes) of
/// every byte before it.
pub(crate) fn check_fixed(b: &[u8], file: &Fixed) -> Result<(), DecodeError> {
    if b.len() != file.len {
        return Err(DecodeError::found(0, file.len_reason, Found::Bytes(b.len() as u64)));
    }
    let mut magic = [0u8; 4];
    magic.copy_from_slice(b.get(..4).unwrap_or(&[0; 4]));
    if magic != file.magic {
        return Err(DecodeError::found(0, file.magic_reason, Found::Magic(magic)));
    }
    let version = b.get(4).copied().unwrap_or(0);
    if version != file.version {
        return Err(DecodeError::found(4, file.version_reason, Found::Version(version)));
    }
    let crc_at = file.len - 4;
    let stored = le::u32_at(b, crc_at).unwrap_or(0);
    let computed = crc32fast::hash(b.get(..crc_at).unwrap_or_default());
    if stored != computed {
        return Err(DecodeError::found(
            crc_at,
            file.crc_reason,
            Found::Crc { stored, computed },
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
