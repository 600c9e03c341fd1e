//! On-disk layout of a partition log: segment file names, rolling by size and
//! by age, and records too large for a segment.

use std::collections::BTreeMap;
use std::path::Path;

use logbus::format::batch;
use logbus::log::Log;
use logbus::{Durability, Error, LogConfig, Record, TopicConfig};

use crate::common;
use common::{batches, segment_bases};

fn open(dir: &Path, topic: TopicConfig) -> Log {
    Log::open(dir, LogConfig::from_topic(&topic, Durability::PageCache)).unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every file of a directory, by name, with its size.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.metadata().unwrap().len())
        })
        .collect()
}

#[test]
fn file_names_are_twenty_digit_base_offsets_with_three_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), TopicConfig::new(1).segment_bytes(4096));
    for i in 0..300u32 {
        log.append(&[Record::new(format!("value-{i:05}-{}", "x".repeat(40)))])
            .unwrap();
    }
    assert!(
        log.segment_count() >= 3,
        "expected rolls, got {} segments",
        log.segment_count()
    );
    log.close().unwrap();

    let names = files(dir.path());
    let bases = segment_bases(dir.path());
    assert_eq!(bases.len(), log.segment_count());
    assert_eq!(bases[0], 0);
    for name in names.keys() {
        if name == "recovery.ckpt" || name == "recovery.live" {
            continue;
        }
        let (stem, ext) = name.split_once('.').unwrap();
        assert_eq!(stem.len(), 20, "{name}");
        assert!(stem.bytes().all(|b| b.is_ascii_digit()), "{name}");
        assert!(["log", "index", "timeindex"].contains(&ext), "unexpected file {name}");
    }
    for (i, &base) in bases.iter().enumerate() {
        let stem = format!("{base:020}");
        // The active segment's index files come once it passes 1 MiB.
        let exts: &[&str] = if i + 1 == bases.len() {
            &["log"]
        } else {
            &["log", "index", "timeindex"]
        };
        for ext in exts {
            assert!(names.contains_key(&format!("{stem}.{ext}")), "missing {stem}.{ext}");
        }
        // The name is the offset of the segment's first record.
        let bytes = std::fs::read(dir.path().join(format!("{stem}.log"))).unwrap();
        let first = batches(&bytes);
        if let Some((_, h)) = first.first() {
            assert_eq!(h.base_offset, base, "segment {stem}");
        }
    }
    // Consecutive segments continue each other's offsets.
    for w in bases.windows(2) {
        let bytes = std::fs::read(dir.path().join(format!("{:020}.log", w[0]))).unwrap();
        let last = batches(&bytes).last().unwrap().1;
        assert_eq!(last.next_offset(), w[1]);
    }
    assert_eq!(
        names.get("recovery.ckpt"),
        Some(&(logbus::format::checkpoint::LEN as u64))
    );
    // The live checkpoint (Linux only) is empty until the first one is written.
    let live = names.get("recovery.live").copied();
    assert!(
        [None, Some(0), Some(logbus::format::checkpoint::LIVE_LEN as u64)].contains(&live),
        "recovery.live is {live:?} bytes"
    );
}

#[test]
fn segments_roll_at_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let segment_bytes = 4096u64;
    let log = open(dir.path(), TopicConfig::new(1).segment_bytes(segment_bytes));
    let mut n = 0u64;
    let mut sent = Vec::new();
    // Appends of varied sizes and batch lengths.
    for round in 0..200u64 {
        let count = 1 + (round % 5) as usize;
        let records: Vec<Record> = (0..count)
            .map(|i| {
                Record::new(vec![
                    b'a' + (i as u8);
                    10 + ((round * 37 + i as u64 * 11) % 150) as usize
                ])
            })
            .collect();
        let at = log.append(&records).unwrap();
        assert_eq!(at.base_offset, n);
        n += count as u64;
        sent.extend(records);
    }
    assert_eq!(log.end_offset(), n);
    let segments = log.segment_count();
    log.close().unwrap();

    let bases = segment_bases(dir.path());
    assert_eq!(bases.len(), segments);
    assert!(bases.len() >= 10, "only {} segments", bases.len());
    let mut sizes = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let path = dir.path().join(format!("{base:020}.log"));
        let bytes = std::fs::read(&path).unwrap();
        let bs = batches(&bytes);
        let data_len: usize = bs.iter().map(|(_, h)| h.len as usize).sum();
        assert!(
            data_len as u64 <= segment_bytes,
            "segment {base} holds {data_len} bytes"
        );
        if i + 1 < bases.len() {
            // A sealed segment is cut to its data, and was full: the first
            // record of the next segment would not have fit after it.
            assert_eq!(bytes.len(), data_len, "sealed segment {base} not cut to its data");
            sizes.push(data_len);
            let first_next = &sent[bases[i + 1] as usize];
            let needed = batch::HEADER_LEN + batch::record_len(first_next, 0, 0, 0);
            assert!(
                data_len + needed > segment_bytes as usize,
                "segment {base} rolled at {data_len} bytes though a {needed}-byte batch fitted"
            );
        } else {
            assert!(bytes.len() as u64 <= segment_bytes);
        }
    }
    // Every sealed segment is close to the limit.
    assert!(sizes.iter().all(|&s| s as u64 > segment_bytes - 250), "{sizes:?}");

    // Everything reads back across the rolls.
    let log = open(dir.path(), TopicConfig::new(1).segment_bytes(segment_bytes));
    assert!(log.recovery_report().clean);
    let all = log.read(0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, n);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.offset(), i as u64);
    }
    log.close().unwrap();
}

#[test]
fn segments_roll_by_age_of_their_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 3_600_000;
    let topic = TopicConfig::new(1).segment_bytes(1 << 20).segment_ms(Some(hour));
    let log = open(dir.path(), topic.clone());
    let now = now_ms();

    // Fresh records: no roll however many appends.
    for i in 0..10 {
        log.append(&[Record::new(format!("fresh-{i}")).with_timestamp(now)])
            .unwrap();
    }
    assert_eq!(log.segment_count(), 1);

    // A segment whose first record is two hours old rolls on the next append.
    let dir2 = tempfile::tempdir().unwrap();
    let log2 = open(dir2.path(), topic.clone());
    log2.append(&[Record::new("old").with_timestamp(now - 2 * hour)])
        .unwrap();
    assert_eq!(log2.segment_count(), 1);
    log2.append(&[Record::new("next").with_timestamp(now)]).unwrap();
    assert_eq!(log2.segment_count(), 2);
    assert_eq!(segment_bases(dir2.path()), vec![0, 1]);
    // The new segment starts with a fresh record: no further roll.
    log2.append(&[Record::new("again").with_timestamp(now)]).unwrap();
    assert_eq!(log2.segment_count(), 2);
    // Each old-first segment rolls once more.
    log2.append(&[Record::new("old2").with_timestamp(now - 3 * hour)])
        .unwrap();
    assert_eq!(log2.segment_count(), 2, "the segment's first record is fresh");
    log2.close().unwrap();

    // The age survives a reopen: a segment opened with an old first record rolls.
    let dir3 = tempfile::tempdir().unwrap();
    let log3 = open(dir3.path(), topic.clone());
    log3.append(&[Record::new("old").with_timestamp(now - 2 * hour)])
        .unwrap();
    log3.close().unwrap();
    let log3 = open(dir3.path(), topic);
    log3.append(&[Record::new("new").with_timestamp(now)]).unwrap();
    assert_eq!(log3.segment_count(), 2);
    assert_eq!(segment_bases(dir3.path()), vec![0, 1]);
    let values: Vec<Vec<u8>> = log3.read(0, 10).unwrap().iter().map(|r| r.value().to_vec()).collect();
    assert_eq!(values, vec![b"old".to_vec(), b"new".to_vec()]);
    log3.close().unwrap();
    log.close().unwrap();
}

#[test]
fn record_larger_than_a_segment_is_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), TopicConfig::new(1).segment_bytes(4096));
    log.append(&[Record::new("before")]).unwrap();
    let size_before = log.size_bytes();
    let files_before = files(dir.path());

    let err = log.append(&[Record::new(vec![7u8; 5000])]).unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { size: 5000, .. }), "{err:?}");
    // All or nothing: a valid record next to a too large one is not written either.
    let err = log
        .append(&[Record::new("ok"), Record::new(vec![7u8; 4096]), Record::new("ok too")])
        .unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err:?}");
    // Key and headers count toward the size.
    let err = log
        .append(&[Record::new(vec![1u8; 2000])
            .with_key(vec![2u8; 2000])
            .with_header("h", vec![3u8; 200])])
        .unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err:?}");

    assert_eq!(log.end_offset(), 1);
    assert_eq!(log.size_bytes(), size_before);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        files(dir.path()).keys().collect::<Vec<_>>(),
        files_before.keys().collect::<Vec<_>>()
    );

    // The largest record that fits the segment is accepted, alone in its segment.
    let limit = TopicConfig::new(1).segment_bytes(4096).effective_max_record_bytes() as usize;
    assert!(log.append(&[Record::new(vec![9u8; limit + 1])]).is_err());
    let at = log.append(&[Record::new(vec![9u8; limit])]).unwrap();
    assert_eq!(at.base_offset, 1);
    assert_eq!(log.segment_count(), 2);
    let got = log.read(0, 10).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].value(), b"before");
    assert_eq!(got[1].value(), &vec![9u8; limit][..]);
    log.close().unwrap();

    let log = open(dir.path(), TopicConfig::new(1).segment_bytes(4096));
    assert_eq!(log.end_offset(), 2);
    assert_eq!(log.verify().unwrap(), 2);
    log.close().unwrap();
}
