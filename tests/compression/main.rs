//! Compression (Kafka's `compression.type`, features `lz4` and `zstd`): one
//! promise per module. Records round-trip through every read path, the bytes
//! on disk are compressed batches, damage inside compressed data is
//! `Error::Corruption` naming the file and byte, and directories written
//! without compression read as before.

#[path = "../common/mod.rs"]
mod common;

mod damage;
mod inspect;
mod on_disk;
mod round_trip;

use logbus::format::batch::BatchHeader;
use logbus::format::compress::Codec;
use logbus::Record;

/// Both codecs, as `Compression` and as the format's codec.
pub const CODECS: [(logbus::Compression, Codec); 2] = [
    (logbus::Compression::Lz4, Codec::Lz4),
    (logbus::Compression::Zstd, Codec::Zstd),
];

/// A JSON-like value of about 200 bytes: compressible as real events are.
pub fn json(i: u64) -> Vec<u8> {
    let mut v = format!(
        "{{\"id\":{i},\"user\":\"user-{:05}\",\"event\":\"{}\",\"amount\":{}.{:02},\"currency\":\"EUR\",\"tags\":[\"web\",\"checkout\"],\"ts\":\"2026-12-07T12:{:02}:{:02}Z\"",
        i % 10_000,
        ["view", "click", "purchase", "refund"][(i % 4) as usize],
        i % 997,
        i % 100,
        (i / 60) % 60,
        i % 60
    );
    while v.len() < 198 {
        v.push(' ');
    }
    v.push('}');
    v.into_bytes()
}

/// Record `i`: a key on odd offsets, a header, a timestamp of its own.
pub fn record(i: u64) -> Record {
    let r = Record::new(json(i))
        .with_timestamp(1_700_000_000_000 + i as i64)
        .with_header("seq", i.to_string());
    if i % 2 == 1 {
        r.with_key(format!("key-{i}"))
    } else {
        r
    }
}

/// Checks a read record against [`record`].
pub fn check(offset: u64, key: Option<&[u8]>, value: &[u8], ts: i64, headers: Vec<(&str, &[u8])>) {
    assert_eq!(value, json(offset).as_slice(), "value of offset {offset}");
    let want_key = (offset % 2 == 1).then(|| format!("key-{offset}").into_bytes());
    assert_eq!(key, want_key.as_deref(), "key of offset {offset}");
    assert_eq!(ts, 1_700_000_000_000 + offset as i64, "timestamp of offset {offset}");
    assert_eq!(
        headers,
        vec![("seq", offset.to_string().as_bytes())],
        "headers of offset {offset}"
    );
}

/// The codec of each batch of a partition directory's segments, in order.
pub fn batch_codecs(dir: &std::path::Path) -> Vec<(BatchHeader, Option<Codec>)> {
    common::segment_paths(dir)
        .into_iter()
        .flat_map(|(_, p)| common::batches(&std::fs::read(p).unwrap()))
        .map(|(_, h)| (h, Codec::from_attributes(h.attributes).unwrap()))
        .collect()
}
