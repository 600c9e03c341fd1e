//! kill -9 crash test: a child process (this test binary, re-executed)
//! appends in a loop and prints each acknowledged offset; the parent kills it
//! with SIGKILL at random moments, reopens the log and checks that every
//! acknowledged record is there, intact, in a gap-free log (not compacted:
//! gaps would be losses; see `compaction.rs` for compacted logs).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use logbus::log::Log;
use logbus::{Durability, LogConfig, Record, TopicConfig};

use crate::common::{self, Deadline, Rng};

const CHILD_ENV: &str = "LOGBUS_CRASH_CHILD";
const SEGMENT_BYTES: u64 = 4096;
const KILLS: usize = 10;

fn config(durability: Durability) -> LogConfig {
    LogConfig::from_topic(&TopicConfig::new(1).segment_bytes(SEGMENT_BYTES), durability)
}

/// The value of the record at `offset`: it names its offset.
fn value(offset: u64) -> Vec<u8> {
    format!("crash-{offset:010}-{}", "v".repeat((offset % 50) as usize)).into_bytes()
}

fn key(offset: u64) -> Vec<u8> {
    format!("k{}", offset % 7).into_bytes()
}

fn ts(offset: u64) -> i64 {
    1_700_000_000_000 + offset as i64
}

/// Child mode: append forever (until killed, or a safety timeout), printing
/// "ACK <last offset>" after each acknowledged append.
fn child(dir: &Path, durability: Durability) {
    let log = Log::open(dir, config(durability)).unwrap();
    let mut out = std::io::stdout().lock();
    let run = Deadline::new(Duration::from_secs(30), "the child's run");
    let mut i = 0u64;
    while !run.passed() {
        let first = log.end_offset();
        let count = 1 + i % 5;
        let records: Vec<Record> = (first..first + count)
            .map(|o| {
                Record::new(value(o))
                    .with_key(key(o))
                    .with_timestamp(ts(o))
                    .with_header("o", o.to_string())
            })
            .collect();
        let at = log.append(&records).unwrap();
        assert_eq!(at.base_offset, first);
        writeln!(out, "ACK {}", first + count - 1).unwrap();
        out.flush().unwrap();
        i += 1;
    }
}

/// Checks the log after a crash: a gap-free prefix holding every acknowledged record.
fn check_log(dir: &Path, durability: Durability, acked: Option<u64>, round: usize) -> u64 {
    let log = Log::open(dir, config(durability)).unwrap();
    let end = log.end_offset();
    if let Some(a) = acked {
        assert!(
            end > a,
            "round {round}: acknowledged offset {a} lost (log ends at {end})"
        );
    }
    assert_eq!(log.start_offset(), 0);
    let all = log.read(0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, end, "round {round}: gap in the log");
    for (i, r) in all.iter().enumerate() {
        let o = i as u64;
        assert_eq!(r.offset(), o, "round {round}");
        assert_eq!(r.value(), &value(o)[..], "round {round}: value at {o}");
        assert_eq!(r.key(), Some(&key(o)[..]), "round {round}: key at {o}");
        assert_eq!(r.timestamp(), ts(o), "round {round}: timestamp at {o}");
        assert!(
            r.headers().eq([("o", o.to_string().as_bytes())]),
            "round {round}: headers at {o}"
        );
    }
    assert_eq!(log.verify().unwrap(), end);
    log.close().unwrap();
    end
}

fn crash_loop(test_name: &str, durability: Durability) {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir), durability);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::from_time();
    let mut acked: Option<u64> = None;
    let mut total_segments_seen = 0;
    for round in 0..KILLS {
        let mut child = common::rerun_self(module_path!(), test_name)
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Kill after a random number of acknowledgements, plus a random delay.
        let acks_before_kill = 1 + rng.below(40);
        let mut seen = 0;
        while seen < acks_before_kill {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            if let Some(o) = line.strip_prefix("ACK ") {
                let o: u64 = o.parse().unwrap();
                assert!(acked.is_none_or(|a| o > a), "acknowledged offsets go up");
                acked = Some(o);
                seen += 1;
            }
        }
        assert_eq!(seen, acks_before_kill, "round {round}: child stopped early");
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        child.kill().unwrap(); // SIGKILL
                               // Acknowledgements printed before the kill landed count too.
        for line in lines.map_while(Result::ok) {
            if let Some(Ok(o)) = line.strip_prefix("ACK ").map(str::parse::<u64>) {
                acked = Some(o);
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the child was not killed");
        let end = check_log(dir.path(), durability, acked, round);
        eprintln!("round {round}: log ends at {end}, last acknowledged {acked:?}");
        total_segments_seen = common::segment_paths(dir.path()).len();
        assert!(acked.is_some_and(|a| end > a));
    }
    assert!(total_segments_seen > 1, "segments should have rolled during the test");
}

#[test]
fn kill_9_during_appends_with_sync_durability() {
    crash_loop("kill_9_during_appends_with_sync_durability", Durability::Sync);
}

#[test]
fn kill_9_during_appends_with_page_cache_durability() {
    crash_loop(
        "kill_9_during_appends_with_page_cache_durability",
        Durability::PageCache,
    );
}
