//! What a partition costs on disk and at open and close (issue 18, item 5): a
//! new partition is a directory and an empty segment file; the active
//! segment's index files come once it passes 1 MiB; a close before the
//! first record, or after a clean open with nothing changed, writes nothing;
//! a clean open leaves the clean checkpoint on disk until the first change,
//! and rewrites it as not clean before that change reaches any file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use logbus::format::checkpoint;
use logbus::log::Log;
use logbus::{Broker, Durability, LogConfig, Record, TopicConfig};

use crate::layout::files;

fn config() -> LogConfig {
    LogConfig::from_topic(&TopicConfig::new(1), Durability::PageCache)
}

fn ckpt_path(dir: &Path) -> PathBuf {
    dir.join("recovery.ckpt")
}

fn read_ckpt(dir: &Path) -> checkpoint::Checkpoint {
    checkpoint::decode(&std::fs::read(ckpt_path(dir)).unwrap()).unwrap()
}

fn value(i: u64) -> String {
    format!("value-{i:06}-{}", "x".repeat((i % 40) as usize))
}

/// Copies a directory's files as they are now: what a process crash (kill -9)
/// would leave, since the page cache keeps every write.
fn crash_copy(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for name in files(dir).keys() {
        std::fs::copy(dir.join(name), copy.path().join(name)).unwrap();
    }
    copy
}

fn check_reads(log: &Log, n: u64) {
    assert_eq!(log.end_offset(), n);
    for at in [0, 1, n / 3, n / 2, n - 1] {
        let got = log.read(at, 1).unwrap();
        assert_eq!(got[0].offset(), at);
        assert_eq!(got[0].value(), value(at).as_bytes(), "offset {at}");
    }
}

#[test]
fn a_new_topic_closed_before_its_first_record_holds_a_directory_and_an_empty_segment_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(3)).unwrap();
    broker.close().unwrap();
    for p in 0..3 {
        let f = files(&dir.path().join("t").join(p.to_string()));
        let expected: BTreeMap<String, u64> = [("00000000000000000000.log".to_string(), 0)].into();
        assert_eq!(f, expected, "partition {p}");
    }

    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.topic("t").unwrap();
    for p in 0..3 {
        let part = topic.partition(p).unwrap();
        assert!(part.log().recovery_report().clean, "nothing to scan in partition {p}");
        assert_eq!(part.end_offset(), 0);
    }
    broker
        .producer()
        .send("t", Record::new("first").with_partition(1))
        .unwrap();
    broker.close().unwrap();

    let broker = Broker::open(dir.path()).unwrap();
    let part = broker.topic("t").unwrap().partition(1).unwrap();
    assert!(part.log().recovery_report().clean);
    assert_eq!(part.read(0, 10).unwrap()[0].value(), b"first");
    assert!(files(&dir.path().join("t").join("1")).contains_key("recovery.ckpt"));
    broker.close().unwrap();
}

#[test]
fn a_small_active_segment_has_no_index_files_and_reads_at_every_offset_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let n = 2000u64;
    for i in 0..n {
        log.append(&[Record::new(value(i))]).unwrap();
    }
    log.close().unwrap();
    let f = files(dir.path());
    assert!(
        !f.keys().any(|k| k.ends_with("index")),
        "a segment of {} bytes (under 1 MiB) has index files: {f:?}",
        f["00000000000000000000.log"]
    );

    // After a clean close and after a crash.
    let log = Log::open(dir.path(), config()).unwrap();
    check_reads(&log, n);
    log.append(&[Record::new(value(n))]).unwrap();
    let crashed = crash_copy(dir.path());
    log.close().unwrap();
    let log = Log::open(crashed.path(), config()).unwrap();
    assert!(!log.recovery_report().clean);
    check_reads(&log, n + 1);
    log.close().unwrap();
}

#[test]
fn the_active_index_files_are_created_past_1_mib_and_used_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    // Each batch is over 4 KiB: one offset index entry per batch but the first.
    let big = |i: u64| Record::new(format!("{}{}", value(i), "y".repeat(4200)));
    for i in 0..200u64 {
        log.append(&[big(i)]).unwrap();
    }
    log.close().unwrap();
    assert!(
        !files(dir.path()).contains_key("00000000000000000000.index"),
        "the last entry is below 1 MiB"
    );

    let log = Log::open(dir.path(), config()).unwrap();
    for i in 200..300u64 {
        log.append(&[big(i)]).unwrap();
    }
    log.close().unwrap();
    let f = files(dir.path());
    let index_len = f["00000000000000000000.index"];
    let entries = (index_len - 48) / 8;
    // Entries below the reopen's position were not persisted (the files did
    // not exist): the 100 of the batches after it are.
    assert_eq!(entries, 100);
    assert!(f.contains_key("00000000000000000000.timeindex"));

    let log = Log::open(dir.path(), config()).unwrap();
    assert!(log.recovery_report().clean);
    assert_eq!(log.end_offset(), 300);
    for at in [0u64, 100, 199, 200, 299] {
        assert_eq!(log.read(at, 1).unwrap()[0].offset(), at);
    }
    log.close().unwrap();
}

#[test]
fn a_clean_open_leaves_the_clean_checkpoint_until_the_first_append_rewrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    for i in 0..100 {
        log.append(&[Record::new(value(i))]).unwrap();
    }
    log.close().unwrap();
    let closed = std::fs::read(ckpt_path(dir.path())).unwrap();
    assert!(read_ckpt(dir.path()).clean);

    // Opened and closed with nothing changed: the file is as the close left it.
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(log.recovery_report().clean);
    assert_eq!(std::fs::read(ckpt_path(dir.path())).unwrap(), closed);
    log.close().unwrap();
    assert_eq!(std::fs::read(ckpt_path(dir.path())).unwrap(), closed);

    // The first append rewrites it as not clean before writing the record:
    // a crash from then on scans and finds the record.
    let log = Log::open(dir.path(), config()).unwrap();
    log.append(&[Record::new(value(100))]).unwrap();
    let c = read_ckpt(dir.path());
    assert!(!c.clean);
    assert_eq!(c.next_offset, 100);
    let crashed = crash_copy(dir.path());
    let reopened = Log::open(crashed.path(), config()).unwrap();
    assert!(!reopened.recovery_report().clean);
    assert_eq!(reopened.end_offset(), 101);
    assert_eq!(reopened.read(100, 1).unwrap()[0].value(), value(100).as_bytes());
    reopened.close().unwrap();
    log.close().unwrap();
    assert!(read_ckpt(dir.path()).clean);
}

#[test]
fn a_truncation_after_a_clean_open_rewrites_the_clean_checkpoint_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    for i in 0..100 {
        log.append(&[Record::new(value(i))]).unwrap();
    }
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    log.truncate(40).unwrap();
    let c = read_ckpt(dir.path());
    assert!(!c.clean);
    assert_eq!(c.next_offset, 40);
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.end_offset(), 40);
    log.close().unwrap();
}
