//! Log compaction: what a pass keeps and removes, how every reader sees the
//! gaps it leaves, and how an interrupted install is finished or undone at open.

use std::collections::BTreeMap;
use std::path::Path;

use logbus::log::Log;
use logbus::{
    Broker, CleanupPolicy, ConsumerConfig, Durability, Error, LogConfig, OffsetReset, Record, TopicConfig,
    TopicPartition,
};

fn compacted(segment_bytes: u64) -> TopicConfig {
    TopicConfig::new(1)
        .cleanup_policy(CleanupPolicy::Compact)
        .segment_bytes(segment_bytes)
}

fn log_config(t: &TopicConfig) -> LogConfig {
    LogConfig::from_topic(t, Durability::PageCache)
}

/// Appends `n` updates over `keys` keys (key `k{i % keys}`, value `v{i}`).
fn fill(log: &Log, n: u64, keys: u64) {
    for i in 0..n {
        log.append(&[Record::new(format!("v{i}")).with_key(format!("k{}", i % keys))])
            .unwrap();
    }
}

/// Every record (offset, key, value, tombstone), read 7 at a time.
fn all(log: &Log) -> Vec<(u64, Vec<u8>, Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut at = log.start_offset();
    while at < log.end_offset() {
        let next = log
            .read_with(at, 7, |r| {
                out.push((
                    r.offset(),
                    r.key().unwrap_or_default().to_vec(),
                    r.value().to_vec(),
                    r.is_tombstone(),
                ))
            })
            .unwrap();
        assert!(next > at, "read_with at {at} made no progress");
        at = next;
    }
    out
}

#[test]
fn a_pass_keeps_the_latest_record_of_every_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = compacted(512);
    let log = Log::open(dir.path(), log_config(&config)).unwrap();
    fill(&log, 400, 10);
    let before = log.segment_count();
    let size_before = log.size_bytes();
    let report = log.compact().unwrap();
    assert!(report.records_removed > 300, "{report:?}");
    assert!(
        log.segment_count() < before,
        "{} segments, was {before}",
        log.segment_count()
    );
    assert!(log.size_bytes() < size_before);
    let records = all(&log);
    // Every key's latest value is there, at the offset it was written to.
    for k in 0..10u64 {
        let last = (0..400u64).rev().find(|i| i % 10 == k).unwrap();
        assert!(
            records.contains(&(
                last,
                format!("k{k}").into_bytes(),
                format!("v{last}").into_bytes(),
                false
            )),
            "key k{k} lost its latest value v{last}"
        );
    }
    // Every record read is the one written at its offset; offsets increase.
    for w in records.windows(2) {
        assert!(w[0].0 < w[1].0);
    }
    for (o, k, v, _) in &records {
        assert_eq!(k, format!("k{}", o % 10).as_bytes());
        assert_eq!(v, format!("v{o}").as_bytes());
    }
    // Offsets keep their numbers: the end does not move.
    assert_eq!(log.end_offset(), 400);
    log.verify().unwrap();

    // The same after a reopen, and a second pass changes nothing more.
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), log_config(&config)).unwrap();
    assert_eq!(all(&log), records);
    assert!(log.cleaned_offset() > 0);
    let again = log.compact().unwrap();
    assert_eq!(again.records_removed, 0, "{again:?}");
    assert_eq!(all(&log), records);
}

#[test]
fn reads_and_seeks_to_a_removed_offset_land_on_the_next_kept_one() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("t", compacted(256)).unwrap();
    let producer = broker.producer();
    for i in 0..60u64 {
        producer
            .send("t", Record::new(format!("v{i}")).with_key(format!("k{}", i % 3)))
            .unwrap();
    }
    topic.compact().unwrap();
    let p = topic.partition(0).unwrap();
    let kept: Vec<u64> = p.read(0, 1000).unwrap().iter().map(|r| r.offset()).collect();
    assert!(kept.len() < 60 && kept.contains(&59), "{kept:?}");
    // Offset 0 was superseded by offset 3 (same key): read(0) starts after it.
    assert!(!kept.contains(&0));
    let first = p.read(0, 1).unwrap();
    assert_eq!(first[0].offset(), kept[0]);

    // A consumer seeking to a removed offset gets the next kept one, and
    // its position moves past every gap.
    let mut consumer = broker
        .consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))
        .unwrap();
    let tp = TopicPartition::new("t", 0);
    consumer.assign(std::slice::from_ref(&tp)).unwrap();
    consumer.seek(&tp, 1).unwrap();
    let mut seen = Vec::new();
    let deadline = common::Deadline::new(common::PATIENCE, "the consumer reaches offset 59");
    while seen.last() != Some(&59) {
        deadline.check_with(|| format!("{seen:?}"));
        let polled = consumer.poll(std::time::Duration::from_millis(100)).unwrap();
        seen.extend(polled.iter().map(|r| r.offset()));
    }
    let expected: Vec<u64> = kept.iter().copied().filter(|&o| o >= 1).collect();
    assert_eq!(seen, expected);
    assert_eq!(consumer.position(&tp).unwrap(), 60);

    // poll_with lends the same records, and its position passes the gaps too.
    consumer.seek(&tp, 0).unwrap();
    let mut lent = Vec::new();
    while consumer.position(&tp).unwrap() < 60 {
        deadline.check_with(|| format!("{lent:?}"));
        consumer
            .poll_with(std::time::Duration::from_millis(100), |r| lent.push(r.offset()))
            .unwrap();
    }
    assert_eq!(lent, kept);

    // offset_for_timestamp answers with kept offsets only.
    let ts0 = p.read(kept[0], 1).unwrap()[0].timestamp();
    let found = p.offset_for_timestamp(ts0).unwrap().unwrap();
    assert!(kept.contains(&found), "{found} is not a kept offset");
    broker.close().unwrap();
}

#[test]
fn tombstones_delete_keys_and_go_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    // Tombstones stay for a day: the pass removes the key's values, not the tombstone.
    let keep = compacted(256);
    let log = Log::open(dir.path(), log_config(&keep)).unwrap();
    fill(&log, 30, 3);
    log.append(&[Record::tombstone("k1")]).unwrap();
    fill(&log, 30, 1); // roll past the tombstone with other keys' records
    log.compact().unwrap();
    let records = all(&log);
    let k1: Vec<_> = records.iter().filter(|r| r.1 == b"k1").collect();
    assert_eq!(k1.len(), 1, "{k1:?}");
    assert!(k1[0].3, "the tombstone is the key's only record");
    assert_eq!(k1[0].2, b"");
    log.close().unwrap();
    drop(log);

    // delete_retention_ms = 0: the next pass removes it.
    let gone = keep.clone().delete_retention_ms(0);
    let log = Log::open(dir.path(), log_config(&gone)).unwrap();
    let report = log.compact().unwrap();
    assert_eq!(report.tombstones_removed, 1, "{report:?}");
    assert!(all(&log).iter().all(|r| r.1 != b"k1"));
    log.verify().unwrap();
}

#[test]
fn a_tombstone_is_distinct_from_an_empty_value_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&[
        Record::new("").with_key("empty"),
        Record::tombstone("gone"),
        Record::new("x"),
    ])
    .unwrap();
    let rs = log.read(0, 10).unwrap();
    assert_eq!(
        rs.iter().map(|r| r.is_tombstone()).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert!(rs[1].to_record().is_tombstone());
    // The borrowed form too.
    log.append_borrowed(&[logbus::BorrowedRecord::tombstone(b"gone-too")])
        .unwrap();
    let last = log.read(3, 1).unwrap();
    assert!(last[0].is_tombstone() && last[0].key() == Some(&b"gone-too"[..]));
    assert!(logbus::BorrowedRecord::tombstone(b"k").to_record().is_tombstone());
    // Truncation re-encodes the batch before the cut: the null value stays null.
    log.truncate(2).unwrap();
    let rs = log.read(0, 10).unwrap();
    assert_eq!(rs.len(), 2);
    assert!(rs[1].is_tombstone() && !rs[0].is_tombstone());
}

#[test]
fn compact_on_a_topic_that_is_not_compacted_is_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("plain", TopicConfig::new(1)).unwrap();
    assert!(matches!(
        topic.compact(),
        Err(Error::InvalidConfig {
            field: "cleanup_policy",
            ..
        })
    ));
    for bad in [
        TopicConfig::new(1).delete_retention_ms(-1),
        TopicConfig::new(1).min_compaction_lag_ms(-5),
        TopicConfig::new(1).min_cleanable_dirty_ratio(1.5),
        TopicConfig::new(1).min_cleanable_dirty_ratio(f64::NAN),
    ] {
        assert!(matches!(
            broker.create_topic("bad", bad),
            Err(Error::InvalidConfig { .. })
        ));
    }
}

#[test]
fn the_policy_and_settings_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = compacted(4096)
        .cleanup_policy(CleanupPolicy::CompactAndDelete)
        .delete_retention_ms(1234)
        .min_compaction_lag_ms(99)
        .min_cleanable_dirty_ratio(0.25);
    Broker::open(dir.path())
        .unwrap()
        .create_topic("t", config.clone())
        .unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(broker.topic("t").unwrap().config(), config);
}

#[test]
fn min_compaction_lag_keeps_recent_segments_out_of_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let config = compacted(256).min_compaction_lag_ms(3_600_000);
    let log = Log::open(dir.path(), log_config(&config)).unwrap();
    fill(&log, 100, 2);
    let report = log.compact().unwrap();
    assert_eq!(report.segments_before, 0, "{report:?}");
    assert_eq!(all(&log).len(), 100);
}

/// Lists a partition directory's files.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn an_install_interrupted_before_its_commit_is_undone_and_after_it_finished() {
    let dir = tempfile::tempdir().unwrap();
    let config = compacted(256);
    let log = Log::open(dir.path(), log_config(&config)).unwrap();
    fill(&log, 120, 4);
    let expected_all = all(&log);
    log.close().unwrap();
    drop(log);

    // Before the commit point: a stray `.cleaned` file is deleted at open.
    let stray = dir.path().join("00000000000000000000.log.cleaned");
    std::fs::write(&stray, b"garbage").unwrap();
    let log = Log::open(dir.path(), log_config(&config)).unwrap();
    assert!(!stray.exists());
    assert_eq!(all(&log), expected_all);

    // Compact a copy to learn the installed result.
    let copy = tempfile::tempdir().unwrap();
    log.close().unwrap();
    drop(log);
    for f in files(dir.path()) {
        std::fs::copy(dir.path().join(&f), copy.path().join(&f)).unwrap();
    }
    let compacted_log = Log::open(copy.path(), log_config(&config)).unwrap();
    compacted_log.compact().unwrap();
    let expected = all(&compacted_log);
    compacted_log.close().unwrap();
    drop(compacted_log);

    // After the commit point: the state lists the swaps, the `.cleaned` files
    // exist, the old segments are still there. Open finishes the swap.
    let state = std::fs::read(copy.path().join("compact.state")).unwrap();
    let decoded = logbus::format::compact_state::decode(&state).unwrap();
    let mut committed = decoded.clone();
    let new_bases = common::segment_bases(copy.path());
    let old_bases = common::segment_bases(dir.path());
    for (i, &b) in new_bases.iter().enumerate() {
        let next = new_bases.get(i + 1).copied().unwrap_or(u64::MAX);
        if next == u64::MAX {
            break; // the active segment
        }
        let last_old = old_bases.iter().copied().filter(|&o| o < next).max().unwrap();
        committed.swaps.push(logbus::format::compact_state::Swap {
            base: b,
            end: last_old + 1,
        });
        let name = format!("{b:020}.log");
        std::fs::copy(copy.path().join(&name), dir.path().join(format!("{name}.cleaned"))).unwrap();
    }
    assert!(!committed.swaps.is_empty());
    std::fs::write(
        dir.path().join("compact.state"),
        logbus::format::compact_state::encode(&committed),
    )
    .unwrap();
    let log = Log::open(dir.path(), log_config(&config)).unwrap();
    assert_eq!(all(&log), expected);
    assert_eq!(common::segment_bases(dir.path()), new_bases);
    assert!(files(dir.path()).iter().all(|f| !f.ends_with(".cleaned")));
    log.verify().unwrap();
    assert_eq!(
        logbus::format::compact_state::decode(&std::fs::read(dir.path().join("compact.state")).unwrap())
            .unwrap()
            .swaps,
        []
    );
    // Nothing written lost its latest value.
    let latest: BTreeMap<Vec<u8>, (u64, Vec<u8>)> = expected_all
        .iter()
        .map(|(o, k, v, _)| (k.clone(), (*o, v.clone())))
        .collect();
    let got = all(&log);
    for (k, (o, v)) in latest {
        assert!(got.iter().any(|r| r.0 == o && r.1 == k && r.2 == v), "lost {k:?}");
    }
}

use crate::common;

#[test]
fn the_background_compactor_runs_passes_when_the_dirty_ratio_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let config = compacted(512).min_cleanable_dirty_ratio(0.2);
    let topic = broker.create_topic("t", config).unwrap();
    let producer = broker.producer();
    for i in 0..300u64 {
        producer
            .send("t", Record::new(format!("v{i}")).with_key(format!("k{}", i % 5)))
            .unwrap();
    }
    let p = topic.partition(0).unwrap();
    assert!(p.dirty_ratio() >= 0.2, "dirty ratio {}", p.dirty_ratio());
    // No call to compact(): the compactor thread notices the ratio.
    let deadline = common::Deadline::new(common::PATIENCE, "the background compactor runs a pass");
    while p.read(0, 1000).unwrap().len() == 300 {
        deadline.check_with(|| format!("dirty ratio {}", p.dirty_ratio()));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(p.dirty_ratio() < 0.2, "dirty ratio {} after a pass", p.dirty_ratio());
    let latest: Vec<_> = p.read(0, 1000).unwrap().iter().map(|r| r.offset()).collect();
    for last in 295..300 {
        assert!(latest.contains(&last), "{last} missing from {latest:?}");
    }
    broker.close().unwrap();
}
