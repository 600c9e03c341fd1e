//! Scenario 9: `sustained`, append1 for long enough that the page cache,
//! fsynced checkpoints and the kernel's reclaim come into play (the other
//! append scenarios write 150 MB, a burst). One thread, one record per call.
//! Reports the overall rate and the slowest million.

use std::os::fd::AsRawFd;
use std::time::Instant;

use commitlog::{CommitLog, LogOptions};
use logbus::log::Log;
use logbus::{LogConfig, Record};

use crate::common::{framed, raw_file, value, write_all_fd, Opts};
use crate::stats::{interleave, print_table, Run};

const CHUNK: usize = 1_000_000;

/// Runs `n` appends in chunks of a million: (overall records/s, slowest chunk's records/s).
fn timed(n: usize, mut append: impl FnMut(u64)) -> Vec<f64> {
    let start = Instant::now();
    let mut slowest = f64::INFINITY;
    let mut i = 0u64;
    while (i as usize) < n {
        let t = Instant::now();
        let first = i;
        let end = (i as usize + CHUNK).min(n) as u64;
        while i < end {
            append(i);
            i += 1;
        }
        slowest = slowest.min((end - first) as f64 / t.elapsed().as_secs_f64());
    }
    vec![n as f64 / start.elapsed().as_secs_f64(), slowest]
}

pub fn sustained(o: &Opts) {
    let n = if o.big { 30 * CHUNK } else { o.n(10 * CHUNK, 2 * CHUNK) };
    println!(
        "\n## sustained: {n} records of 100 bytes ({} MB framed), one per call, one thread, default durability",
        n * 150 / 1_000_000
    );
    let frame = framed(1);
    let names = ["logbus Log::append", "commitlog", "write(2)"];
    let mut runs: Vec<Run> = vec![
        Box::new(|| {
            let d = o.tempdir();
            let log = Log::open(d.path(), LogConfig::default()).unwrap();
            let r = timed(n, |i| {
                log.append(&[Record::new(value(i).to_vec())]).unwrap();
            });
            log.close().unwrap();
            r
        }),
        Box::new(|| {
            let d = o.tempdir();
            let mut log = CommitLog::new(LogOptions::new(d.path())).unwrap();
            let r = timed(n, |i| {
                log.append_msg(value(i)).unwrap();
            });
            log.flush().unwrap();
            r
        }),
        Box::new(|| {
            let d = o.tempdir();
            let f = raw_file(d.path());
            timed(n, |_| write_all_fd(f.as_raw_fd(), &frame))
        }),
    ];
    let s = interleave(o.rounds, &names, &mut runs, 2);
    print_table("sustained: overall", "records/s", &s[0], &[(0, 1), (0, 2)]);
    print_table("sustained: slowest million", "records/s", &s[1], &[(0, 1), (0, 2)]);
}
