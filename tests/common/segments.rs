//! Segment files on disk and reading a partition back.

use std::path::{Path, PathBuf};

use logbus::format::batch::{self, BatchHeader, Peek};

/// The `.log` files of a partition directory with their base offsets, ascending.
pub fn segment_paths(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().parse().unwrap(), p))
        .collect();
    out.sort();
    out
}

/// The base offsets of a partition directory's segments, ascending.
pub fn segment_bases(dir: &Path) -> Vec<u64> {
    segment_paths(dir).into_iter().map(|(base, _)| base).collect()
}

/// Batches of a segment file: (position, header), stopping at zeros or the end.
pub fn batches(bytes: &[u8]) -> Vec<(usize, BatchHeader)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Peek::Batch(h) = batch::peek(&bytes[pos..]) {
        out.push((pos, h));
        pos += h.len as usize;
    }
    out
}

/// Every record of a partition, from its start offset to its end.
pub fn read_all(topic: &logbus::Topic, partition: u32) -> Vec<logbus::ConsumedRecord> {
    let p = topic.partition(partition).unwrap();
    let mut out = Vec::new();
    let mut at = p.start_offset();
    loop {
        let batch = p.read(at, 1000).unwrap();
        if batch.is_empty() {
            return out;
        }
        at = batch.last().unwrap().offset() + 1;
        out.extend(batch);
    }
}
