//! `append1` for instruction counts, which this noisy machine cannot blur:
//! N one-record appends of 100 bytes to a `Log` (`PageCache`, 256 MiB
//! segments), as `hot_paths`' `append/append1` does, and nothing else.
//! BENCHMARKS.md, "Metrics overhead", runs it under callgrind:
//!
//! ```text
//! cargo bench --bench append_count --no-run [--features metrics]
//! valgrind --tool=callgrind --toggle-collect='*LogInner*append*' target/release/deps/append_count-HASH 200000
//! ```

use logbus::log::Log;
use logbus::{Durability, LogConfig, Record, TopicConfig};

fn main() {
    // `cargo bench` passes `--bench`: the first number given is N.
    let n: usize = std::env::args().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::from_topic(
        &TopicConfig::new(1).segment_bytes(256 * 1024 * 1024),
        Durability::PageCache,
    );
    let log = Log::open(dir.path().join("a1"), config).unwrap();
    let one = [Record::new(vec![7u8; 100]).with_timestamp(1_700_000_000_000)];
    for _ in 0..n {
        std::hint::black_box(log.append(std::hint::black_box(&one)).unwrap());
    }
    log.close().unwrap();
}
