//! The read-only `Inspector` next to a live owner (a `Broker` holding the
//! directory lock in this process): it takes no lock, sees appends and
//! segment rolls as they happen, reads committed offsets, and reports damage.

use logbus::inspect::{Inspector, SegmentFile, WalkOptions, WalkStop};
use logbus::{Broker, ConsumerConfig, Error, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::common;

fn value(i: u64) -> String {
    format!("record-{i:05}-{}", "x".repeat((i % 17) as usize))
}

fn send(broker: &Broker, topic: &str, partition: u32, range: std::ops::Range<u64>) {
    let p = broker.producer();
    for i in range {
        p.send(
            topic,
            Record::new(value(i))
                .with_key(format!("k{i}"))
                .with_header("i", i.to_string())
                .with_partition(partition),
        )
        .unwrap();
    }
}

fn drain(reader: &mut logbus::inspect::PartitionReader) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let got = reader.poll(7).unwrap();
        if got.is_empty() {
            return out;
        }
        assert!(got.len() <= 7);
        out.extend(got.iter().map(|r| (r.offset(), r.value().to_vec())));
    }
}

#[test]
fn sees_topics_offsets_and_records_while_the_owner_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("orders", TopicConfig::new(3)).unwrap();
    broker
        .create_topic("audit", TopicConfig::new(1).retention_ms(Some(60_000)))
        .unwrap();
    send(&broker, "orders", 1, 0..25);

    // The owner still holds the lock: a second Broker cannot open, the inspector can.
    assert!(matches!(Broker::open(dir.path()), Err(Error::Locked { .. })));
    let ins = Inspector::open(dir.path()).unwrap();
    assert_eq!(ins.topics().unwrap(), vec!["audit".to_string(), "orders".to_string()]);
    let info = ins.describe_topic("orders").unwrap();
    assert_eq!(info.meta.partitions, 3);
    assert_eq!(ins.topic_meta("audit").unwrap().retention_ms, Some(60_000));
    let p1 = &info.partitions[1];
    assert_eq!((p1.start_offset, p1.end_offset, p1.segment_count), (0, 25, 1));
    assert_eq!(
        p1.size_bytes,
        broker.topic("orders").unwrap().partition(1).unwrap().size_bytes()
    );
    assert_eq!(info.partitions[0].end_offset, 0);
    assert!(p1.tail_damage.is_none());

    let mut reader = ins.reader("orders", 1, 10).unwrap();
    let got = drain(&mut reader);
    assert_eq!(got.len(), 15);
    for (i, (off, v)) in got.iter().enumerate() {
        assert_eq!(*off, 10 + i as u64);
        assert_eq!(v, value(*off).as_bytes());
    }
    let one = ins.reader("orders", 1, 3).unwrap().poll(1).unwrap();
    assert_eq!(one[0].key(), Some(&b"k3"[..]));
    assert_eq!(one[0].headers().collect::<Vec<_>>(), vec![("i", &b"3"[..])]);
    assert_eq!(one[0].topic(), "orders");
    assert_eq!(one[0].partition(), 1);

    // Appends made after the reader reached the end show up at its next poll.
    send(&broker, "orders", 1, 25..40);
    let more = drain(&mut reader);
    assert_eq!(
        more.iter().map(|r| r.0).collect::<Vec<_>>(),
        (25..40).collect::<Vec<_>>()
    );
    assert_eq!(ins.partition_info("orders", 1).unwrap().end_offset, 40);

    assert!(matches!(ins.topic_meta("nope"), Err(Error::UnknownTopic { .. })));
    assert!(matches!(
        ins.topic_meta("bad/name"),
        Err(Error::InvalidTopicName { .. })
    ));
    assert!(matches!(
        ins.reader("orders", 3, 0),
        Err(Error::UnknownPartition { partition: 3, .. })
    ));
    broker.close().unwrap();
}

#[test]
fn follows_segment_rolls_and_reports_retention() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker
        .create_topic(
            "t",
            TopicConfig::new(1).segment_bytes(4096).retention_bytes(Some(3 * 4096)),
        )
        .unwrap();
    let ins = Inspector::open(dir.path()).unwrap();
    let mut reader = ins.reader("t", 0, 0).unwrap();
    let mut seen = Vec::new();
    // Interleave writes and reads across many segment rolls; the reader never falls behind retention.
    for round in 0..20u64 {
        send(&broker, "t", 0, round * 30..(round + 1) * 30);
        seen.extend(drain(&mut reader).into_iter().map(|r| r.0));
    }
    assert_eq!(seen, (0..600).collect::<Vec<_>>());
    let info = ins.partition_info("t", 0).unwrap();
    let part = broker.topic("t").unwrap().partition(0).unwrap();
    assert!(info.segment_count > 1);
    assert!(info.start_offset > 0, "retention deleted the oldest segments");
    assert_eq!(
        (info.start_offset, info.end_offset),
        (part.start_offset(), part.end_offset())
    );
    assert_eq!(info.segment_count, part.segment_count());

    // A reader below the first stored offset is out of range.
    let mut old = ins.reader("t", 0, 0).unwrap();
    assert!(matches!(old.poll(1), Err(Error::OffsetOutOfRange { .. })));

    let check = ins.verify_partition("t", 0, &mut |_| {}).unwrap();
    assert!(check.is_ok(), "{check:?}");
    assert_eq!(check.records(), info.end_offset - info.start_offset);
    broker.close().unwrap();

    // After a clean close (the checkpoint vouches for the end) the numbers are the same.
    let after = ins.partition_info("t", 0).unwrap();
    assert_eq!(
        (after.start_offset, after.end_offset, after.size_bytes),
        (info.start_offset, info.end_offset, info.size_bytes)
    );
}

#[test]
fn reads_committed_offsets_of_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    send(&broker, "t", 0, 0..5);
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .group("billing")
                .offset_reset(OffsetReset::Earliest),
        )
        .unwrap();
    c.subscribe(&["t"]).unwrap();
    assert_eq!(c.poll(std::time::Duration::from_secs(5)).unwrap().len(), 5);
    c.commit_offsets(&[(TopicPartition::new("t", 0), 3)]).unwrap();
    c.commit_offsets(&[(TopicPartition::new("t", 0), 4), (TopicPartition::new("t", 1), 0)])
        .unwrap();

    let committed = Inspector::open(dir.path()).unwrap().committed_offsets().unwrap();
    assert_eq!(committed.group_names(), vec!["billing".to_string()]);
    let g = &committed.groups["billing"];
    assert_eq!(g.get(&TopicPartition::new("t", 0)), Some(&4));
    assert_eq!(g.get(&TopicPartition::new("t", 1)), Some(&0));
    assert!(committed.stopped_early.is_none());
    c.close().unwrap();
    broker.close().unwrap();
}

#[test]
fn verify_and_walk_find_a_flipped_byte_in_a_sealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker
        .create_topic("t", TopicConfig::new(1).segment_bytes(4096))
        .unwrap();
    send(&broker, "t", 0, 0..200);
    broker.close().unwrap();
    let segs = common::segment_paths(&dir.path().join("t/0"));
    assert!(segs.len() >= 3);

    // Flip a byte in the middle of the second segment (a record's payload).
    let victim = &segs[1].1;
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();

    let ins = Inspector::open(dir.path()).unwrap();
    let mut checked = 0u64;
    let check = ins.verify_partition("t", 0, &mut |n| checked += n).unwrap();
    assert!(!check.is_ok());
    assert!(checked > 0);
    let bad: Vec<_> = check.segments.iter().filter(|s| s.damage.is_some()).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(&bad[0].path, victim);
    let (pos, reason) = bad[0].damage.clone().unwrap();
    assert!(pos <= at as u64, "damage reported at {pos}, flipped byte at {at}");
    assert!(reason.contains("CRC"), "{reason}");

    // A reader crossing the damaged segment stops with Error::Corruption naming the file.
    let mut reader = ins.reader("t", 0, 0).unwrap();
    let err = loop {
        match reader.poll(50) {
            Ok(r) => assert!(!r.is_empty(), "the reader must not stop silently before the damage"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&err, Error::Corruption { path, .. } if path == victim),
        "{err}"
    );

    // The walk used by `dump` goes on past the bad batch.
    let seg = SegmentFile::open(victim).unwrap();
    let (mut good, mut badb) = (0, 0);
    let opts = WalkOptions {
        past_bad_batches: true,
        check_zero_tail: true,
    };
    let end = seg
        .walk(0, seg.base(), opts, &mut |b| {
            if b.status == logbus::inspect::BatchStatus::Ok {
                good += 1
            } else {
                badb += 1
            }
            true
        })
        .unwrap();
    assert_eq!(badb, 1);
    assert!(good >= 1);
    assert_eq!(end.stop, WalkStop::Clean);
}

#[test]
fn a_torn_tail_of_the_newest_segment_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    send(&broker, "t", 0, 0..10);
    broker.close().unwrap();
    let (_, seg) = common::segment_paths(&dir.path().join("t/0")).pop().unwrap();
    let len = SegmentFile::open(&seg).unwrap();
    let info = Inspector::open(dir.path()).unwrap().partition_info("t", 0).unwrap();
    // Garbage where the next batch would start (a crash in the middle of a write).
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, b"LBat\xff\xff", info.size_bytes).unwrap();
    drop(f);
    assert!(len.len().unwrap() >= info.size_bytes + 6);

    let ins = Inspector::open(dir.path()).unwrap();
    let mut reader = ins.reader("t", 0, 0).unwrap();
    assert_eq!(drain(&mut reader).len(), 10);
    assert!(reader.tail_damage().is_some_and(|d| d.contains("byte")));
    let check = ins.verify_partition("t", 0, &mut |_| {}).unwrap();
    assert!(!check.is_ok());
    assert_eq!(check.records(), 10);
}

#[test]
fn open_fails_clearly_on_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = Inspector::open(dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().contains("missing"));
    let ins = Inspector::open(dir.path()).unwrap();
    assert!(ins.topics().unwrap().is_empty());
    assert!(ins.committed_offsets().unwrap().groups.is_empty());
}
