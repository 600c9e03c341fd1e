//! Compaction throughput against a plain scan of the same data, and the
//! space a pass reclaims (issue 16). Not criterion: one pass needs a fresh,
//! uncompacted log of 1M records, so each round builds one, scans it with
//! `read_with` (the baseline: every batch's CRC checked, every record
//! decoded), then runs one `Log::compact` pass over it. Figures are MB/s of
//! the log's bytes before the pass; the ratio is what to compare across machines.
//!
//! `cargo bench --bench compaction` (ROUNDS rounds, median printed);
//! `COMPACTION_BENCH_RECORDS=100000` for a quick run.

use std::time::Instant;

use logbus::log::Log;
use logbus::{CleanupPolicy, Durability, LogConfig, Record, TopicConfig};

const KEYS: u64 = 10_000;
const VALUE: usize = 100;
const ROUNDS: usize = 3;

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let records: u64 = std::env::var("COMPACTION_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let topic = TopicConfig::new(1)
        .segment_bytes(16 * 1024 * 1024)
        .cleanup_policy(CleanupPolicy::Compact);
    let config = LogConfig::from_topic(&topic, Durability::PageCache);
    let (mut scans, mut passes, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config.clone()).unwrap();
        let value = vec![7u8; VALUE];
        let mut batch = Vec::with_capacity(100);
        for i in 0..records {
            batch.push(Record::new(value.clone()).with_key(format!("key-{:05}", (i * 7919) % KEYS)));
            if batch.len() == 100 {
                log.append(&batch).unwrap();
                batch.clear();
            }
        }
        if !batch.is_empty() {
            log.append(&batch).unwrap();
        }
        log.flush().unwrap();
        let bytes = log.size_bytes();

        let t = Instant::now();
        let (mut at, mut seen) = (0, 0u64);
        while at < log.end_offset() {
            at = log.read_with(at, 10_000, |r| seen += r.value().len() as u64).unwrap();
        }
        let scan = t.elapsed();
        assert_eq!(seen, records * VALUE as u64);

        let t = Instant::now();
        let report = log.compact().unwrap();
        let pass = t.elapsed();
        let mb = |b: u64, d: std::time::Duration| b as f64 / 1e6 / d.as_secs_f64();
        scans.push(mb(bytes, scan));
        passes.push(mb(report.bytes_before, pass));
        ratios.push(pass.as_secs_f64() / scan.as_secs_f64() * bytes as f64 / report.bytes_before as f64);
        last = Some((bytes, report, log.size_bytes(), log.segment_count()));
        log.close().unwrap();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (bytes, report, after, segments) = last.unwrap();
    println!("compaction: {records} records over {KEYS} keys, {VALUE}-byte values, 16 MiB segments, {ROUNDS} rounds (median)");
    println!(
        "  log before the pass: {bytes} bytes; the pass covered {} sealed segments, {} bytes",
        report.segments_before, report.bytes_before
    );
    println!("  plain scan (read_with):  {:>8.0} MB/s", median(&mut scans));
    println!(
        "  compaction pass:         {:>8.0} MB/s of the covered bytes",
        median(&mut passes)
    );
    println!("  pass time / scan time, per byte: {:.2}", median(&mut ratios));
    println!(
        "  space: {} -> {} bytes ({:.1} % reclaimed), {} -> {} segments, {} records removed",
        bytes,
        after,
        100.0 * (bytes - after) as f64 / bytes as f64,
        report.segments_before + 1,
        segments,
        report.records_removed
    );
}
