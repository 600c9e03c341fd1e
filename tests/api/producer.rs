//! Producing through the public API: partition choice, batches, record
//! contents (keys, headers, timestamps), reads by offset and time, and many
//! threads sharing one producer.

use std::collections::{BTreeMap, HashMap};
use std::thread;

use logbus::{Broker, Error, Record, TimestampType, Topic, TopicConfig};

use crate::common;
use common::read_all;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn ends(topic: &Topic) -> Vec<u64> {
    (0..topic.partition_count())
        .map(|p| topic.partition(p).unwrap().end_offset())
        .collect()
}

#[test]
fn same_key_same_partition_in_order_also_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut placement = HashMap::new();
    {
        let broker = Broker::open(dir.path()).unwrap();
        let topic = broker.create_topic("events", TopicConfig::new(4)).unwrap();
        let producer = broker.producer();
        for round in 0..10 {
            for k in 0..30 {
                let key = format!("key-{k}");
                let md = producer
                    .send("events", Record::new(format!("{key}:{round}")).with_key(key.clone()))
                    .unwrap();
                assert_eq!(md.topic(), "events");
                let p = *placement.entry(key).or_insert(md.partition());
                assert_eq!(md.partition(), p, "a key moved partitions");
            }
        }
        // 30 keys over 4 partitions: the hash spreads them.
        let used: std::collections::BTreeSet<u32> = placement.values().copied().collect();
        assert!(used.len() > 1, "all keys hashed to one partition: {used:?}");
        // Per key, values come back in send order within its partition.
        for p in 0..4 {
            let mut last_round: HashMap<String, i32> = HashMap::new();
            for r in read_all(&topic, p) {
                let key = String::from_utf8(r.key().unwrap().to_vec()).unwrap();
                assert_eq!(placement[&key], p);
                let value = String::from_utf8(r.value().to_vec()).unwrap();
                let (vk, round) = value.split_once(':').unwrap();
                assert_eq!(vk, key);
                let round: i32 = round.parse().unwrap();
                let prev = last_round.insert(key, round).unwrap_or(-1);
                assert_eq!(round, prev + 1, "per-key order broken in partition {p}");
            }
        }
        broker.close().unwrap();
    }
    let broker = Broker::open(dir.path()).unwrap();
    let producer = broker.producer();
    for (key, p) in &placement {
        let md = producer
            .send("events", Record::new("after reopen").with_key(key.clone()))
            .unwrap();
        assert_eq!(md.partition(), *p, "key {key} moved after reopen");
    }
}

#[test]
fn unkeyed_sends_round_robin_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("rr", TopicConfig::new(3)).unwrap();
    let producer = broker.producer();
    let mut counts = [0u32; 3];
    for i in 0..3000 {
        let md = producer.send("rr", Record::new(format!("{i}"))).unwrap();
        counts[md.partition() as usize] += 1;
    }
    assert_eq!(counts, [1000, 1000, 1000]);
    assert_eq!(ends(&topic), vec![1000, 1000, 1000]);
}

#[test]
fn explicit_partition_wins_over_key_and_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("t", TopicConfig::new(3)).unwrap();
    let producer = broker.producer();
    let natural = producer
        .send("t", Record::new("probe").with_key("k"))
        .unwrap()
        .partition();
    let other = (natural + 1) % 3;
    for _ in 0..5 {
        let md = producer
            .send("t", Record::new("pinned").with_key("k").with_partition(other))
            .unwrap();
        assert_eq!(md.partition(), other);
    }
    for _ in 0..5 {
        let md = producer.send("t", Record::new("pinned").with_partition(2)).unwrap();
        assert_eq!(md.partition(), 2);
    }
    let pinned_other = read_all(&topic, other)
        .iter()
        .filter(|r| r.value() == b"pinned" && r.key() == Some(b"k"))
        .count();
    assert_eq!(pinned_other, 5);
    let unkeyed_on_2 = read_all(&topic, 2).iter().filter(|r| r.key().is_none()).count();
    assert_eq!(unkeyed_on_2, 5);
}

#[test]
fn send_batch_routes_like_send() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("b", TopicConfig::new(3)).unwrap();
    let producer = broker.producer();
    let key_home: Vec<u32> = (0..10)
        .map(|k| {
            producer
                .send("b", Record::new("probe").with_key(format!("k{k}")))
                .unwrap()
                .partition()
        })
        .collect();
    let before = ends(&topic);

    let mut batch = Vec::new();
    for i in 0..30 {
        batch.push(Record::new(format!("keyed-{i}")).with_key(format!("k{}", i % 10)));
        batch.push(Record::new(format!("pinned-{i}")).with_partition(1));
    }
    for i in 0..300 {
        batch.push(Record::new(format!("free-{i}")));
    }
    let mds = producer.send_batch("b", batch.clone()).unwrap();
    assert_eq!(mds.len(), batch.len());
    for (md, rec) in mds.iter().zip(&batch) {
        assert_eq!(md.topic(), "b");
        match rec.partition() {
            Some(p) => assert_eq!(md.partition(), p),
            None => {
                if let Some(key) = rec.key() {
                    let k: usize = std::str::from_utf8(&key[1..]).unwrap().parse().unwrap();
                    assert_eq!(md.partition(), key_home[k]);
                }
            }
        }
    }
    // Unkeyed records of a batch go round-robin like sends.
    let mut free = [0; 3];
    for (md, rec) in mds.iter().zip(&batch) {
        if rec.key().is_none() && rec.partition().is_none() {
            free[md.partition() as usize] += 1;
        }
    }
    assert_eq!(free, [100, 100, 100]);
    // Offsets per partition are consecutive from the old end, in batch order,
    // and each metadata points at its record.
    let mut next = before.clone();
    for (md, rec) in mds.iter().zip(&batch) {
        let p = md.partition() as usize;
        assert_eq!(md.offset(), next[p]);
        next[p] += 1;
        let stored = topic.partition(md.partition()).unwrap().read(md.offset(), 1).unwrap();
        assert_eq!(stored[0].value(), rec.value());
    }
    assert_eq!(ends(&topic), next);
    assert!(producer.send_batch("b", Vec::new()).unwrap().is_empty());
    assert_eq!(ends(&topic), next);
}

#[test]
fn send_batch_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("b", TopicConfig::new(3).max_record_bytes(100))
        .unwrap();
    let producer = broker.producer();
    producer
        .send_batch("b", (0..6).map(|i| Record::new(format!("seed{i}"))))
        .unwrap();
    let before = ends(&topic);
    assert_eq!(before, vec![2, 2, 2]);

    // One oversized record in the middle: nothing written anywhere.
    let mut batch: Vec<Record> = (0..20).map(|i| Record::new(format!("ok{i}"))).collect();
    batch.insert(10, Record::new(vec![7u8; 101]));
    assert!(matches!(
        producer.send_batch("b", batch),
        Err(Error::RecordTooLarge { .. })
    ));
    assert_eq!(ends(&topic), before);

    // Oversized only through its headers and key.
    let sneaky = Record::new(vec![0u8; 50])
        .with_key(vec![1u8; 30])
        .with_header("h", vec![2u8; 20]);
    assert_eq!(sneaky.size(), 101);
    let batch = vec![Record::new("a"), Record::new("b").with_key("k"), sneaky];
    assert!(matches!(
        producer.send_batch("b", batch),
        Err(Error::RecordTooLarge { .. })
    ));
    assert_eq!(ends(&topic), before);

    // A bad explicit partition at the end: nothing written.
    let mut batch: Vec<Record> = (0..20)
        .map(|i| Record::new(format!("ok{i}")).with_key(format!("{i}")))
        .collect();
    batch.push(Record::new("lost").with_partition(3));
    assert!(matches!(
        producer.send_batch("b", batch),
        Err(Error::UnknownPartition { partition: 3, .. })
    ));
    assert_eq!(ends(&topic), before);

    // Unknown topic: nothing anywhere.
    assert!(matches!(
        producer.send_batch("nope", vec![Record::new("x")]),
        Err(Error::UnknownTopic { .. })
    ));
    assert_eq!(broker.topics(), vec!["b".to_string()]);
    for p in 0..3 {
        assert_eq!(read_all(&topic, p).len(), 2);
    }
    // The topic still works, and the failed batches did not disturb round-robin fairness much.
    let mds = producer
        .send_batch("b", (0..3).map(|i| Record::new(format!("after{i}"))))
        .unwrap();
    assert_eq!(mds.len(), 3);
    assert_eq!(ends(&topic).iter().sum::<u64>(), 9);
}

#[test]
fn records_keep_headers_keys_and_values_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("h", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    producer
        .send(
            "h",
            Record::new("v1")
                .with_header("b", "1")
                .with_header("a", "2")
                .with_header("b", "3")
                .with_header("", "")
                .with_header("bin", vec![0u8, 255, 0]),
        )
        .unwrap();
    producer.send("h", Record::new("v2").with_key("")).unwrap();
    producer.send("h", Record::new("v3")).unwrap();
    producer.send("h", Record::new(Vec::new()).with_key("k")).unwrap();
    let big = vec![0xabu8; 100_000];
    producer.send("h", Record::new(big.clone())).unwrap();

    let recs = read_all(&topic, 0);
    assert_eq!(recs.len(), 5);
    let headers: Vec<(&str, &[u8])> = recs[0].headers().collect();
    assert_eq!(
        headers,
        vec![
            ("b", &b"1"[..]),
            ("a", b"2"),
            ("b", b"3"),
            ("", b""),
            ("bin", &[0u8, 255, 0][..])
        ]
    );
    assert_eq!(recs[0].key(), None);
    // An empty key is a key, distinct from no key.
    assert_eq!(recs[1].key(), Some(&b""[..]));
    assert_eq!(recs[2].key(), None);
    assert_eq!(recs[1].headers().count(), 0);
    assert_eq!(recs[3].value(), b"");
    assert_eq!(recs[3].key(), Some(&b"k"[..]));
    assert_eq!(recs[4].value(), &big[..]);
}

#[test]
fn empty_key_is_hashed_not_round_robined() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("e", TopicConfig::new(5)).unwrap();
    let producer = broker.producer();
    let first = producer.send("e", Record::new("x").with_key("")).unwrap().partition();
    for _ in 0..20 {
        assert_eq!(
            producer.send("e", Record::new("x").with_key("")).unwrap().partition(),
            first
        );
    }
}

#[test]
fn timestamps_explicit_default_and_log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let create = broker.create_topic("create", TopicConfig::new(1)).unwrap();
    let append = broker
        .create_topic(
            "append",
            TopicConfig::new(1).timestamp_type(TimestampType::LogAppendTime),
        )
        .unwrap();
    let producer = broker.producer();

    let md = producer
        .send("create", Record::new("old").with_timestamp(1_000))
        .unwrap();
    assert_eq!(md.timestamp(), 1_000);
    let neg = producer.send("create", Record::new("neg").with_timestamp(-5)).unwrap();
    assert_eq!(neg.timestamp(), -5);
    let t0 = now_ms();
    let md = producer.send("create", Record::new("now")).unwrap();
    let t1 = now_ms();
    assert!(
        (t0..=t1).contains(&md.timestamp()),
        "{} not in {t0}..={t1}",
        md.timestamp()
    );
    let recs = read_all(&create, 0);
    assert_eq!(recs[0].timestamp(), 1_000);
    assert_eq!(recs[1].timestamp(), -5);
    assert_eq!(recs[2].timestamp(), md.timestamp());

    // Log-append time replaces the producer's timestamp.
    let t0 = now_ms();
    let md = producer.send("append", Record::new("x").with_timestamp(1_000)).unwrap();
    let batch = producer
        .send_batch("append", vec![Record::new("y").with_timestamp(5), Record::new("z")])
        .unwrap();
    let t1 = now_ms();
    for ts in [md.timestamp(), batch[0].timestamp(), batch[1].timestamp()] {
        assert!((t0..=t1).contains(&ts), "{ts} not in {t0}..={t1}");
    }
    let recs = read_all(&append, 0);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].timestamp(), md.timestamp());
    assert_eq!(recs[1].timestamp(), batch[0].timestamp());
    for r in &recs {
        assert!((t0..=t1).contains(&r.timestamp()));
    }
}

#[test]
fn partition_read_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("r", TopicConfig::new(1).segment_bytes(4096))
        .unwrap();
    let producer = broker.producer();
    for i in 0..500 {
        producer.send("r", Record::new(format!("value-{i:04}"))).unwrap();
    }
    let p = topic.partition(0).unwrap();
    assert!(p.segment_count() > 1);
    assert_eq!((p.start_offset(), p.end_offset()), (0, 500));
    // Reads from every offset return consecutive records, across segment boundaries.
    for start in [0u64, 1, 99, 250, 498, 499] {
        let recs = p.read(start, 7).unwrap();
        assert_eq!(recs.len(), 7.min(500 - start as usize));
        for (i, r) in recs.iter().enumerate() {
            let o = start + i as u64;
            assert_eq!(r.offset(), o);
            assert_eq!(r.topic(), "r");
            assert_eq!(r.partition(), 0);
            assert_eq!(r.value(), format!("value-{o:04}").as_bytes());
        }
    }
    assert!(p.read(500, 10).unwrap().is_empty());
    assert!(p.read(0, 0).unwrap().is_empty());
    assert!(matches!(
        p.read(501, 10),
        Err(Error::OffsetOutOfRange {
            offset: 501,
            start: 0,
            end: 500,
            ..
        })
    ));
    assert_eq!(read_all(&topic, 0).len(), 500);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("ts", TopicConfig::new(1).segment_bytes(4096))
        .unwrap();
    let producer = broker.producer();
    assert_eq!(topic.partition(0).unwrap().offset_for_timestamp(0).unwrap(), None);
    // Timestamps 1000, 1010, ... (with a duplicate run) across several segments.
    let mut model = Vec::new();
    for i in 0..400i64 {
        let ts = 1_000 + 10 * (i / 2);
        producer
            .send("ts", Record::new(format!("r{i}")).with_timestamp(ts))
            .unwrap();
        model.push(ts);
    }
    let p = topic.partition(0).unwrap();
    assert!(p.segment_count() > 1);
    for q in [
        i64::MIN,
        0,
        999,
        1_000,
        1_001,
        1_005,
        1_010,
        1_500,
        2_990,
        2_991,
        2_995,
        3_000,
        i64::MAX,
    ] {
        let want = model.iter().position(|&t| t >= q).map(|i| i as u64);
        assert_eq!(p.offset_for_timestamp(q).unwrap(), want, "query {q}");
    }
}

#[test]
fn offset_for_timestamp_with_out_of_order_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("ts", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    for ts in [100, 50, 300, 200, 400] {
        producer.send("ts", Record::new("x").with_timestamp(ts)).unwrap();
    }
    let p = topic.partition(0).unwrap();
    // Kafka's rule: the earliest offset whose timestamp is >= the target.
    assert_eq!(p.offset_for_timestamp(60).unwrap(), Some(0));
    assert_eq!(p.offset_for_timestamp(150).unwrap(), Some(2));
    assert_eq!(p.offset_for_timestamp(350).unwrap(), Some(4));
    assert_eq!(p.offset_for_timestamp(401).unwrap(), None);
}

#[test]
fn many_threads_share_one_producer() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 1_500;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("mt", TopicConfig::new(4).segment_bytes(64 * 1024))
        .unwrap();
    let producer = broker.producer();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let producer = producer.clone();
            thread::spawn(move || {
                let mut mine = Vec::with_capacity(PER_THREAD);
                for i in 0..PER_THREAD {
                    let value = format!("{t}:{i}");
                    let md = if i % 3 == 0 {
                        producer
                            .send_batch("mt", vec![Record::new(value).with_key(format!("t{t}"))])
                            .unwrap()
                            .remove(0)
                    } else if i % 3 == 1 {
                        producer
                            .send("mt", Record::new(value).with_key(format!("t{t}")))
                            .unwrap()
                    } else {
                        producer.send("mt", Record::new(value)).unwrap()
                    };
                    mine.push((i, md.partition(), md.offset()));
                }
                (t, mine)
            })
        })
        .collect();
    // Per thread: (thread, [(index, partition, offset)]) as the sends returned them.
    let all_md: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(ends(&topic).iter().sum::<u64>(), total);

    // No lost or duplicated records; each thread's records are in send order
    // within every partition; returned metadata matches the stored records.
    let mut seen: BTreeMap<(usize, usize), (u32, u64)> = BTreeMap::new();
    for p in 0..4 {
        let mut last: HashMap<usize, usize> = HashMap::new();
        for r in read_all(&topic, p) {
            let v = std::str::from_utf8(r.value()).unwrap();
            let (t, i) = v.split_once(':').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert!(seen.insert((t, i), (p, r.offset())).is_none(), "duplicate {v}");
            if let Some(prev) = last.insert(t, i) {
                assert!(i > prev, "thread {t} out of order in partition {p}: {prev} then {i}");
            }
        }
    }
    assert_eq!(seen.len() as u64, total);
    for (t, mine) in all_md {
        let mut home = None;
        for (i, p, o) in mine {
            assert_eq!(seen[&(t, i)], (p, o), "metadata of {t}:{i} does not match the log");
            if i % 3 != 2 {
                assert_eq!(*home.get_or_insert(p), p, "thread {t}'s key moved");
            }
        }
    }
}

#[test]
fn a_large_batch_spans_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("big", TopicConfig::new(2).segment_bytes(4096))
        .unwrap();
    let producer = broker.producer();
    let batch: Vec<Record> = (0..2000)
        .map(|i| Record::new(format!("record-{i:05}")).with_partition(i % 2))
        .collect();
    let mds = producer.send_batch("big", batch).unwrap();
    assert_eq!(mds.len(), 2000);
    for (i, md) in mds.iter().enumerate() {
        assert_eq!((md.partition(), md.offset()), ((i % 2) as u32, (i / 2) as u64));
    }
    for p in 0..2 {
        assert!(topic.partition(p).unwrap().segment_count() > 3);
        let recs = read_all(&topic, p);
        assert_eq!(recs.len(), 1000);
        for (j, r) in recs.iter().enumerate() {
            assert_eq!(r.value(), format!("record-{:05}", 2 * j + p as usize).as_bytes());
        }
    }
    // And after a reopen.
    broker.close().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.topic("big").unwrap();
    assert_eq!(read_all(&topic, 1).len(), 1000);
}

#[test]
fn consumed_records_outlive_close_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("held", TopicConfig::new(1).segment_bytes(4096))
        .unwrap();
    let producer = broker.producer();
    for i in 0..300 {
        producer
            .send("held", Record::new(format!("held-{i:03}")).with_key("k"))
            .unwrap();
    }
    let held = read_all(&topic, 0);
    broker.delete_topic("held").unwrap();
    broker.create_topic("other", TopicConfig::new(1)).unwrap();
    let held2 = {
        producer.send("other", Record::new("x")).unwrap();
        broker.topic("other").unwrap().partition(0).unwrap().read(0, 1).unwrap()
    };
    broker.close().unwrap();
    for (i, r) in held.iter().enumerate() {
        assert_eq!(r.value(), format!("held-{i:03}").as_bytes());
        assert_eq!(r.key(), Some(&b"k"[..]));
    }
    assert_eq!(held2[0].value(), b"x");
}

#[test]
fn the_default_record_limit_is_one_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("d", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    producer.send("d", Record::new(vec![9u8; 1 << 20])).unwrap();
    assert!(matches!(
        producer.send("d", Record::new(vec![9u8; (1 << 20) + 1])),
        Err(Error::RecordTooLarge { max, .. }) if max == 1 << 20
    ));
    assert_eq!(topic.partition(0).unwrap().end_offset(), 1);
    assert_eq!(read_all(&topic, 0)[0].value().len(), 1 << 20);
}

#[test]
fn offset_for_timestamp_on_a_log_append_time_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("lat", TopicConfig::new(1).timestamp_type(TimestampType::LogAppendTime))
        .unwrap();
    let producer = broker.producer();
    let first = producer.send("lat", Record::new("a").with_timestamp(0)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = producer.send("lat", Record::new("b").with_timestamp(0)).unwrap();
    assert!(second.timestamp() > first.timestamp());
    let p = topic.partition(0).unwrap();
    assert_eq!(p.offset_for_timestamp(0).unwrap(), Some(0));
    assert_eq!(p.offset_for_timestamp(first.timestamp() + 1).unwrap(), Some(1));
    assert_eq!(p.offset_for_timestamp(second.timestamp() + 1).unwrap(), None);
}
