//! Retention by size and by age: whole old segments go, `start_offset`
//! advances, reads below it are `OffsetOutOfRange`, and records already read
//! from a deleted segment stay valid.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use logbus::log::Log;
use logbus::{Durability, Error, LogConfig, Record, TopicConfig};

use crate::common::segment_bases;

const SEGMENT_BYTES: u64 = 4096;

fn open(dir: &Path, topic: TopicConfig) -> Log {
    Log::open(
        dir,
        LogConfig::from_topic(&topic.segment_bytes(SEGMENT_BYTES), Durability::PageCache),
    )
    .unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn value(offset: u64) -> Vec<u8> {
    format!("record-{offset:08}-{}", "r".repeat((offset % 40) as usize)).into_bytes()
}

fn assert_out_of_range(log: &Log, offset: u64) {
    let err = log.read(offset, 1).unwrap_err();
    assert!(
        matches!(err, Error::OffsetOutOfRange { offset: o, .. } if o == offset),
        "read({offset}): {err:?}"
    );
}

fn check_from_start(log: &Log) {
    let start = log.start_offset();
    let all = log.read(start, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, log.end_offset() - start);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.offset(), start + i as u64);
        assert_eq!(r.value(), &value(start + i as u64)[..]);
    }
}

#[test]
fn retention_by_bytes_deletes_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 3 * SEGMENT_BYTES;
    let log = open(dir.path(), TopicConfig::new(1).retention_bytes(Some(limit)));
    let mut starts = Vec::new();
    for o in 0..2000u64 {
        log.append(&[Record::new(value(o))]).unwrap();
        starts.push(log.start_offset());
    }
    // start_offset only moves forward, and it moved.
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    log.enforce_retention().unwrap();
    let start = log.start_offset();
    assert!(start > 0, "nothing was deleted");
    // What is kept is within the limit plus the segment that could not be
    // dropped without going under it.
    let bases = segment_bases(dir.path());
    assert_eq!(
        bases.first(),
        Some(&start),
        "files below start_offset remain: {bases:?}"
    );
    assert_eq!(bases.len(), log.segment_count());
    let sizes: Vec<u64> = bases
        .iter()
        .map(|b| {
            std::fs::metadata(dir.path().join(format!("{b:020}.log")))
                .unwrap()
                .len()
        })
        .collect();
    let active_written = log.size_bytes() - sizes[..sizes.len() - 1].iter().sum::<u64>();
    let total = log.size_bytes();
    assert!(
        total - sizes[0] < limit,
        "the oldest segment could have gone: {sizes:?} (active {active_written})"
    );
    assert!(total <= limit + SEGMENT_BYTES, "{total}");

    for o in [0, start / 2, start - 1] {
        assert_out_of_range(&log, o);
    }
    check_from_start(&log);
    assert!(matches!(log.truncate(start - 1), Err(Error::OffsetOutOfRange { .. })));
    log.close().unwrap();

    // Reopen keeps the same start; the deleted files stay deleted.
    let log = open(dir.path(), TopicConfig::new(1).retention_bytes(Some(limit)));
    assert_eq!(log.start_offset(), start);
    assert_out_of_range(&log, start - 1);
    check_from_start(&log);
    log.close().unwrap();

    // A smaller limit at open is applied at once.
    let log = open(dir.path(), TopicConfig::new(1).retention_bytes(Some(1)));
    assert_eq!(log.segment_count(), 1, "only the active segment survives");
    assert!(log.start_offset() > start);
    check_from_start(&log);
    log.close().unwrap();
}

#[test]
fn retention_by_time_deletes_segments_whose_newest_record_is_old() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 3_600_000;
    let topic = TopicConfig::new(1).retention_ms(Some(hour));
    let log = open(dir.path(), topic.clone());
    let now = now_ms();
    // 300 records from two days ago (several segments), then fresh ones.
    let old = 300u64;
    for o in 0..old {
        log.append(&[Record::new(value(o)).with_timestamp(now - 48 * hour + o as i64)])
            .unwrap();
    }
    // Rolls while appending old records delete the old segments already:
    // every sealed segment holds only old records.
    assert_eq!(
        log.segment_count(),
        1,
        "old sealed segments should have gone at each roll"
    );
    let first_fresh = old;
    for o in old..old + 300 {
        log.append(&[Record::new(value(o)).with_timestamp(now)]).unwrap();
    }
    log.enforce_retention().unwrap();
    let bases = segment_bases(dir.path());
    // The segment holding the first fresh record is kept; everything before it went.
    let holding_first_fresh = *bases.iter().filter(|&&b| b <= first_fresh).max().unwrap();
    assert_eq!(log.start_offset(), holding_first_fresh);
    assert_eq!(bases[0], holding_first_fresh);
    assert!(log.start_offset() > 0);
    assert_out_of_range(&log, 0);
    assert_out_of_range(&log, log.start_offset() - 1);
    check_from_start(&log);
    // The timestamp lookup only knows stored records.
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some(log.start_offset()));
    log.close().unwrap();

    // Applied on open too: with a 1 ms limit, only the active segment remains.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let log = open(dir.path(), TopicConfig::new(1).retention_ms(Some(1)));
    assert_eq!(log.segment_count(), 1);
    check_from_start(&log);
    log.close().unwrap();
}

#[test]
fn records_read_before_their_segment_is_deleted_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), TopicConfig::new(1).retention_bytes(Some(2 * SEGMENT_BYTES)));
    for o in 0..100u64 {
        log.append(&[Record::new(value(o))
            .with_key(format!("k{o}"))
            .with_header("n", o.to_string())])
            .unwrap();
    }
    assert_eq!(log.start_offset(), 0);
    let held = log.read(0, 50).unwrap();
    let first_file = dir.path().join(format!("{:020}.log", 0));
    assert!(first_file.exists());
    // Enough appends that segment 0 is deleted.
    let mut o = 100u64;
    while log.start_offset() == 0 {
        log.append(&[Record::new(value(o))]).unwrap();
        o += 1;
    }
    assert!(!first_file.exists(), "segment 0 should be deleted");
    assert_out_of_range(&log, 0);
    for (i, r) in held.iter().enumerate() {
        assert_eq!(r.offset(), i as u64);
        assert_eq!(r.value(), &value(i as u64)[..]);
        assert_eq!(r.key(), Some(format!("k{i}").as_bytes()));
        assert!(r.headers().eq([("n", i.to_string().as_bytes())]));
    }
    // Clones made afterwards, on another thread, read the same.
    let held2 = held.clone();
    drop(held);
    std::thread::spawn(move || {
        for (i, r) in held2.iter().enumerate() {
            assert_eq!(r.value(), &value(i as u64)[..]);
        }
    })
    .join()
    .unwrap();
    log.close().unwrap();
}

#[test]
fn reads_racing_retention_return_correct_records_or_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), TopicConfig::new(1).retention_bytes(Some(2 * SEGMENT_BYTES)));
    for o in 0..200u64 {
        log.append(&[Record::new(value(o))]).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for t in 0..2u64 {
        let log = log.clone();
        let done = Arc::clone(&done);
        readers.push(std::thread::spawn(move || {
            let (mut ok, mut out_of_range) = (0u64, 0u64);
            let mut held = Vec::new();
            let mut i = t;
            while !done.load(Ordering::Acquire) {
                i += 1;
                // Aim at the oldest stored segment, the one retention deletes next.
                let start = log.start_offset();
                let offset = start + (i * 7) % 40;
                match log.read(offset, 1 + (i % 60) as usize) {
                    Ok(records) => {
                        for (k, r) in records.iter().enumerate() {
                            assert_eq!(r.offset(), offset + k as u64, "read({offset})");
                            assert_eq!(r.value(), &value(offset + k as u64)[..], "read({offset})");
                        }
                        ok += 1;
                        if i % 50 == 0 {
                            held.push(records);
                        }
                    }
                    Err(Error::OffsetOutOfRange { .. }) => out_of_range += 1,
                    Err(e) => panic!("read({offset}): unexpected {e:?}"),
                }
            }
            // Everything held is still intact after its segments went.
            for records in &held {
                for r in records {
                    assert_eq!(r.value(), &value(r.offset())[..]);
                }
            }
            (ok, out_of_range)
        }));
    }
    let mut o = 200u64;
    while o < 6000 {
        log.append(&[Record::new(value(o))]).unwrap();
        o += 1;
    }
    done.store(true, Ordering::Release);
    let mut total_ok = 0;
    for r in readers {
        let (ok, _oor) = r.join().unwrap();
        total_ok += ok;
    }
    assert!(total_ok > 0);
    assert!(log.start_offset() > 4000, "retention ran: start {}", log.start_offset());
    check_from_start(&log);
    log.close().unwrap();
}
