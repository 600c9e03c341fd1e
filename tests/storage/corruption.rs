//! Bit flips inside sealed segments: reads of the damaged offsets give
//! `Error::Corruption` naming the file and byte position, never a wrong
//! record and never a panic; `verify()` finds the damage; other segments
//! still read.

use std::path::Path;

use logbus::format::batch;
use logbus::log::Log;
use logbus::{ConsumedRecord, Durability, Error, LogConfig, Record, TopicConfig};

use crate::common;
use common::{batches, segment_paths};

const SEGMENT_BYTES: u64 = 4096;

fn open(dir: &Path) -> Log {
    Log::open(
        dir,
        LogConfig::from_topic(&TopicConfig::new(1).segment_bytes(SEGMENT_BYTES), Durability::PageCache),
    )
    .unwrap()
}

fn ts_of(offset: u64) -> i64 {
    1_650_000_000_000 + ((offset * 104_729) % 5_000) as i64
}

fn record(offset: u64) -> Record {
    let r = Record::new(format!("offset={offset:06};{}", "z".repeat((offset % 31) as usize)))
        .with_timestamp(ts_of(offset))
        .with_header("o", offset.to_string());
    if offset % 2 == 1 {
        r.with_key(format!("key{offset}"))
    } else {
        r
    }
}

fn check_record(r: &ConsumedRecord, offset: u64) {
    let want = record(offset);
    assert_eq!(r.offset(), offset);
    assert_eq!(r.value(), want.value(), "value of offset {offset}");
    assert_eq!(r.key(), want.key(), "key of offset {offset}");
    assert_eq!(r.timestamp(), ts_of(offset));
    assert!(r.headers().eq(want.headers()), "headers of offset {offset}");
}

/// Writes `n` records in appends of 1..=3 and closes the log.
fn fill(dir: &Path, n: u64) {
    let log = open(dir);
    let mut next = 0;
    let mut i = 0;
    while next < n {
        let count = (1 + i % 3).min(n - next);
        let records: Vec<Record> = (next..next + count).map(record).collect();
        log.append(&records).unwrap();
        next += count;
        i += 1;
    }
    log.close().unwrap();
}

/// Asserts `err` is a corruption error about `path` whose message names the file and position.
fn assert_corruption_in(err: &Error, path: &Path, ctx: &str) {
    let Error::Corruption { path: p, position, .. } = err else {
        panic!("{ctx}: expected Error::Corruption, got {err:?}");
    };
    assert_eq!(p, path, "{ctx}");
    let shown = err.to_string();
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(shown.contains(name), "{ctx}: {shown}");
    assert!(shown.contains(&format!("byte {position}")), "{ctx}: {shown}");
    assert!(
        *position <= std::fs::metadata(path).unwrap().len(),
        "{ctx}: position past the file"
    );
}

/// A read that is either the right records from `offset` on, or corruption in `path`.
fn check_read(log: &Log, offset: u64, max: usize, end: u64, path: &Path, ctx: &str) -> bool {
    match log.read(offset, max) {
        Ok(records) => {
            assert_eq!(
                records.len() as u64,
                (max as u64).min(end - offset),
                "{ctx}: read({offset}, {max})"
            );
            for (i, r) in records.iter().enumerate() {
                check_record(r, offset + i as u64);
            }
            true
        }
        Err(e) => {
            assert_corruption_in(&e, path, &format!("{ctx}: read({offset}, {max})"));
            false
        }
    }
}

/// Flips one bit at each of many positions of segment `which` (a sealed one),
/// reopening each time, and checks every read.
fn flip_bits_in_sealed_segment(which: usize, step: usize) {
    let dir = tempfile::tempdir().unwrap();
    let n = 400;
    fill(dir.path(), n);
    let segs = segment_paths(dir.path());
    assert!(
        segs.len() > which + 1,
        "need a sealed segment {which}, got {} segments",
        segs.len()
    );
    let (base, path) = segs[which].clone();
    let next_base = segs[which + 1].0;
    let original = std::fs::read(&path).unwrap();
    let bs = batches(&original);
    assert_eq!(bs.iter().map(|(_, h)| h.len as usize).sum::<usize>(), original.len());

    let mut damaged_reads = 0;
    for (k, pos) in (0..original.len()).step_by(step).enumerate() {
        let bit = k % 8;
        let mut bytes = original.clone();
        bytes[pos] ^= 1 << bit;
        std::fs::write(&path, &bytes).unwrap();
        let ctx = format!("bit {bit} of byte {pos} of segment {base}");

        let log = open(dir.path());
        assert_eq!(log.end_offset(), n, "{ctx}");
        let (bpos, bh) = *bs
            .iter()
            .find(|(p, h)| (*p..*p + h.len as usize).contains(&pos))
            .unwrap();
        let _ = bpos;
        // Offsets of the damaged batch never read back.
        for o in bh.base_offset..bh.next_offset() {
            let err = log.read(o, 1).unwrap_err();
            assert_corruption_in(&err, &path, &format!("{ctx}: read({o}, 1)"));
            damaged_reads += 1;
        }
        // Every other offset of the segment: right records or corruption.
        for o in base..next_base {
            check_read(&log, o, 1, n, &path, &ctx);
            check_read(&log, o, 50, n, &path, &ctx);
        }
        // Other segments are untouched.
        for (i, (b, p)) in segs.iter().enumerate() {
            let seg_end = segs.get(i + 1).map_or(n, |s| s.0);
            if *b != base {
                let whole = (seg_end - b) as usize;
                assert!(check_read(&log, *b, whole, n, p, &ctx), "{ctx}: segment {b} unreadable");
            }
        }
        // Timestamp lookups: the right answer or corruption, never a wrong offset.
        for probe in [
            ts_of(bh.base_offset),
            ts_of(bh.next_offset() - 1),
            ts_of(bh.base_offset) + 1,
        ] {
            let want = (0..n).find(|&o| ts_of(o) >= probe);
            match log.offset_for_timestamp(probe) {
                Ok(got) => assert_eq!(got, want, "{ctx}: offset_for_timestamp({probe})"),
                Err(e) => assert_corruption_in(&e, &path, &format!("{ctx}: offset_for_timestamp({probe})")),
            }
        }
        let err = log.verify().unwrap_err();
        assert_corruption_in(&err, &path, &format!("{ctx}: verify"));
        log.close().unwrap();
    }
    assert!(damaged_reads > 0);

    // Restored, everything reads and verifies again.
    std::fs::write(&path, &original).unwrap();
    let log = open(dir.path());
    assert_eq!(log.verify().unwrap(), n);
    let all = log.read(0, usize::MAX).unwrap();
    for (i, r) in all.iter().enumerate() {
        check_record(r, i as u64);
    }
    log.close().unwrap();
}

#[test]
fn bit_flips_in_the_first_sealed_segment() {
    flip_bits_in_sealed_segment(0, 19);
}

#[test]
fn bit_flips_in_a_middle_sealed_segment() {
    flip_bits_in_sealed_segment(2, 29);
}

#[test]
fn corruption_error_names_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 200);
    let (_, path) = segment_paths(dir.path())[0].clone();
    let mut bytes = std::fs::read(&path).unwrap();
    let bs = batches(&bytes);
    // Damage the value of the first record of the third batch.
    let (pos, h) = bs[2];
    bytes[pos + batch::HEADER_LEN + 8] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let log = open(dir.path());
    let err = log.read(h.base_offset, 1).unwrap_err();
    let Error::Corruption { path: p, position, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(p, &path);
    assert_eq!(*position, pos as u64, "the position of the damaged batch");
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains(&format!("byte {pos}")), "{shown}");
    // Records before the damaged batch still read, one batch at a time.
    let before = log.read(0, h.base_offset as usize).unwrap();
    assert_eq!(before.len() as u64, h.base_offset);
    // A read spanning the damage fails rather than returning a short or wrong answer.
    assert!(matches!(log.read(0, 1000), Err(Error::Corruption { .. })));
    // The batch after the damaged one reads.
    let after = log.read(h.next_offset(), 1).unwrap();
    check_record(&after[0], h.next_offset());
    assert!(matches!(log.verify(), Err(Error::Corruption { .. })));
    log.close().unwrap();
}

#[test]
fn read_holding_records_across_reopen_of_corrupt_log_does_not_panic() {
    // Garbage over a whole sealed segment: reads fail cleanly, the rest works,
    // and appends continue.
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 300);
    let segs = segment_paths(dir.path());
    let (base, path) = segs[1].clone();
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let garbage: Vec<u8> = (0..len).map(|i| (i * 131 + 17) as u8).collect();
    std::fs::write(&path, garbage).unwrap();

    let log = open(dir.path());
    for o in base..segs[2].0 {
        let err = log.read(o, 10).unwrap_err();
        assert_corruption_in(&err, &path, &format!("read({o})"));
    }
    let first = log.read(0, 5).unwrap();
    for (i, r) in first.iter().enumerate() {
        check_record(r, i as u64);
    }
    let at = log.append(&[record(300)]).unwrap();
    assert_eq!(at.base_offset, 300);
    check_record(&log.read(300, 1).unwrap()[0], 300);
    assert!(matches!(log.verify(), Err(Error::Corruption { .. })));
    log.close().unwrap();
}
