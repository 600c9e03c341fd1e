//! Kafka's `compression.type`: the codec a topic's (or a producer's)
//! batches are compressed with. The bytes are `format::compress`'s.

use std::fmt;

use crate::error::{Error, Result};
use crate::format::compress::Codec;

/// How record batches are compressed on disk, per topic
/// ([`TopicConfig::compression`](crate::TopicConfig::compression)) and
/// overridable per producer
/// ([`Producer::with_compression`](crate::Producer::with_compression)).
///
/// Each append compresses its records as one batch (up to 64 KiB of
/// records per batch), as Kafka compresses each producer batch: records
/// sent together with `send_batch` compress well, a lone `send` makes a
/// batch of one record, which gains little. When a batch would not get
/// smaller, it and the rest of that append are written uncompressed. Readers decompress each batch
/// once and accept every codec whatever the topic's setting, so changing it
/// affects only new batches.
///
/// Default = `None`. `Lz4` needs the cargo feature `lz4` (pure Rust
/// `lz4_flex`), `Zstd` the feature `zstd` (the `zstd` crate, libzstd built
/// with cc): asking for a codec that is not built in is
/// [`Error::InvalidConfig`]. A topic created with a codec by a build that has
/// it still opens in a build that lacks it: its new batches are then written
/// uncompressed, and reading its compressed batches is
/// [`Error::CodecUnavailable`] (nothing is cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Batches are stored as encoded.
    #[default]
    None,
    /// LZ4 (fast; feature `lz4`).
    Lz4,
    /// Zstandard level 3 (smaller; feature `zstd`).
    Zstd,
}

impl Compression {
    /// The codec, `None` for no compression.
    pub(crate) fn codec(self) -> Option<Codec> {
        match self {
            Compression::None => None,
            Compression::Lz4 => Some(Codec::Lz4),
            Compression::Zstd => Some(Codec::Zstd),
        }
    }

    /// Kafka's name: `none`, `lz4` or `zstd`.
    pub fn name(self) -> &'static str {
        self.codec().map_or("none", Codec::name)
    }

    /// Whether this build can write it (its cargo feature is on).
    pub fn available(self) -> bool {
        self.codec().is_none_or(Codec::available)
    }

    /// `InvalidConfig` naming `field` when the codec is not built in.
    pub(crate) fn check(self, field: &'static str) -> Result<()> {
        if self.available() {
            return Ok(());
        }
        Err(Error::config(
            field,
            self.name(),
            format!(
                "this build of logbus lacks the cargo feature `{0}`; enable it to use {0}",
                self.name()
            ),
        ))
    }

    /// The `topic.meta` code: 0 none, 1 lz4, 2 zstd.
    pub(crate) fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 1,
            Compression::Zstd => 2,
        }
    }

    /// The compression of a `topic.meta` code (checked by its decoder).
    pub(crate) fn from_code(code: u8) -> Compression {
        match code {
            1 => Compression::Lz4,
            2 => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            assert_eq!(Compression::from_code(c.code()), c);
        }
        assert_eq!(Compression::Zstd.to_string(), "zstd");
        assert_eq!(Compression::default(), Compression::None);
        assert!(Compression::None.check("compression").is_ok());
        let lz4 = Compression::Lz4.check("compression");
        assert_eq!(lz4.is_ok(), cfg!(feature = "lz4"), "{lz4:?}");
    }
}
