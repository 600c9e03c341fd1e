//! Helpers shared by the storage tests (each test binary uses some of them).
#![allow(dead_code)]

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

/// This test binary, run again to execute only `test_name` (on one thread,
/// with its output): the child process of the kill -9 and other
/// multi-process tests. Callers add the environment and the pipes they need.
pub fn rerun_self(test_name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"]);
    cmd
}
