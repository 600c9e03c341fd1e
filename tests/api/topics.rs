//! Topic administration through the public API: create, list, delete, reopen.

use logbus::{Broker, Error, Partitioner, Record, TimestampType, TopicConfig};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn create_list_and_get_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    assert!(broker.topics().is_empty());

    let t = broker.create_topic("zeta", TopicConfig::new(3)).unwrap();
    assert_eq!(t.name(), "zeta");
    assert_eq!(t.partition_count(), 3);
    broker.create_topic("alpha", TopicConfig::default()).unwrap();
    broker.create_topic("Mid.dle_name-9", TopicConfig::new(2)).unwrap();

    // Sorted by byte order, whatever the creation order.
    assert_eq!(broker.topics(), names(&["Mid.dle_name-9", "alpha", "zeta"]));

    let again = broker.topic("zeta").unwrap();
    assert_eq!(again.name(), "zeta");
    assert_eq!(again.partition_count(), 3);
    assert_eq!(broker.topic("alpha").unwrap().partition_count(), 1);

    for id in 0..3 {
        let p = t.partition(id).unwrap();
        assert_eq!(p.id(), id);
        assert_eq!(p.start_offset(), 0);
        assert_eq!(p.end_offset(), 0);
    }
    // Each partition lives in its own directory under the topic's.
    for id in 0..3 {
        assert!(
            dir.path().join("zeta").join(id.to_string()).is_dir(),
            "partition dir {id}"
        );
    }
}

#[test]
fn topic_names_at_the_edges_of_the_rule_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let longest = "x".repeat(249);
    for name in ["a", "...", ".hidden", "-", "_", "A-Z_a-z.0-9", longest.as_str()] {
        let t = broker.create_topic(name, TopicConfig::new(1)).unwrap();
        assert_eq!(t.name(), name);
        broker.producer().send(name, Record::new("v")).unwrap();
        assert_eq!(broker.topic(name).unwrap().partition(0).unwrap().end_offset(), 1);
    }
    assert_eq!(broker.topics().len(), 7);
}

#[test]
fn delete_topic_removes_it_and_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("keep", TopicConfig::new(1)).unwrap();
    let doomed = broker.create_topic("doomed", TopicConfig::new(2)).unwrap();
    let producer = broker.producer();
    for i in 0..10 {
        producer.send("doomed", Record::new(format!("v{i}"))).unwrap();
    }
    let part = doomed.partition(0).unwrap();

    broker.delete_topic("doomed").unwrap();
    assert_eq!(broker.topics(), names(&["keep"]));
    assert!(!dir.path().join("doomed").exists());
    assert!(matches!(broker.topic("doomed"), Err(Error::UnknownTopic { topic }) if topic == "doomed"));
    assert!(matches!(
        producer.send("doomed", Record::new("x")),
        Err(Error::UnknownTopic { .. })
    ));
    // Handles taken before the delete see it too.
    assert!(matches!(doomed.partition(0), Err(Error::UnknownTopic { .. })));
    assert!(matches!(part.read(0, 10), Err(Error::UnknownTopic { .. })));
    assert!(matches!(broker.delete_topic("doomed"), Err(Error::UnknownTopic { .. })));

    // The name is free again and the new topic starts empty.
    let reborn = broker.create_topic("doomed", TopicConfig::new(1)).unwrap();
    assert_eq!(reborn.partition_count(), 1);
    assert_eq!(reborn.partition(0).unwrap().end_offset(), 0);
    let md = producer.send("doomed", Record::new("fresh")).unwrap();
    assert_eq!((md.partition(), md.offset()), (0, 0));
    let read = reborn.partition(0).unwrap().read(0, 10).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].value(), b"fresh");
}

#[test]
fn reopen_restores_topics_with_their_config_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let full = TopicConfig::new(3)
        .segment_bytes(4096)
        .retention_bytes(Some(1 << 20))
        .retention_ms(Some(86_400_000))
        .max_record_bytes(1000)
        .timestamp_type(TimestampType::LogAppendTime)
        .partitioner(Partitioner::Murmur2);
    let mut ends = Vec::new();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("orders", full.clone()).unwrap();
        broker.create_topic("audit", TopicConfig::new(1)).unwrap();
        broker.create_topic("gone", TopicConfig::new(1)).unwrap();
        broker.delete_topic("gone").unwrap();
        let producer = broker.producer();
        for i in 0..200 {
            producer
                .send(
                    "orders",
                    Record::new(format!("order-{i}")).with_key(format!("k{}", i % 7)),
                )
                .unwrap();
        }
        producer.send("audit", Record::new("a0")).unwrap();
        let orders = broker.topic("orders").unwrap();
        // 200 records of ~40 bytes in 4 KiB segments: several segments.
        assert!(orders.partition(0).unwrap().segment_count() > 1 || orders.partition(1).unwrap().segment_count() > 1);
        for p in 0..3 {
            ends.push(orders.partition(p).unwrap().end_offset());
        }
        assert_eq!(ends.iter().sum::<u64>(), 200);
        broker.close().unwrap();
    }

    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(broker.topics(), names(&["audit", "orders"]));
    let orders = broker.topic("orders").unwrap();
    assert_eq!(orders.partition_count(), 3);
    assert_eq!(orders.config(), full);
    let audit = broker.topic("audit").unwrap();
    assert_eq!(audit.config().partition_count(), 1);
    assert_eq!(
        audit.config().effective_max_record_bytes(),
        TopicConfig::new(1).effective_max_record_bytes()
    );
    for p in 0..3 {
        assert_eq!(orders.partition(p).unwrap().end_offset(), ends[p as usize]);
    }
    // Every record is readable, in order, after the reopen.
    let mut seen = 0;
    for p in 0..3 {
        let recs = orders.partition(p).unwrap().read(0, 1000).unwrap();
        assert_eq!(recs.len() as u64, ends[p as usize]);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset(), i as u64);
            assert!(r.value().starts_with(b"order-"));
        }
        seen += recs.len();
    }
    assert_eq!(seen, 200);
    assert_eq!(audit.partition(0).unwrap().read(0, 10).unwrap()[0].value(), b"a0");
    // Appends continue after the restored end offsets.
    let md = broker
        .producer()
        .send("orders", Record::new("after").with_partition(1))
        .unwrap();
    assert_eq!(md.offset(), ends[1]);
    // The restored config still applies: too-large records are refused.
    assert!(matches!(
        broker.producer().send("orders", Record::new(vec![0u8; 1001])),
        Err(Error::RecordTooLarge { .. })
    ));
}

#[test]
fn topics_created_after_a_reopen_coexist_with_restored_ones() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("b", TopicConfig::new(2)).unwrap();
        broker.close().unwrap();
    }
    let broker = Broker::open(dir.path()).unwrap();
    assert!(matches!(
        broker.create_topic("b", TopicConfig::new(1)),
        Err(Error::TopicExists { .. })
    ));
    broker.create_topic("a", TopicConfig::new(1)).unwrap();
    broker.create_topic("c", TopicConfig::new(1)).unwrap();
    assert_eq!(broker.topics(), names(&["a", "b", "c"]));
    broker.delete_topic("b").unwrap();
    broker.close().unwrap();

    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(broker.topics(), names(&["a", "c"]));
}

#[test]
fn clones_of_a_broker_share_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let clone = broker.clone();
    broker.create_topic("shared", TopicConfig::new(1)).unwrap();
    assert_eq!(clone.topics(), names(&["shared"]));
    clone.producer().send("shared", Record::new("x")).unwrap();
    assert_eq!(broker.topic("shared").unwrap().partition(0).unwrap().end_offset(), 1);
    clone.delete_topic("shared").unwrap();
    assert!(broker.topics().is_empty());
}

/// `Topic::config()` after a reopen equals the config the topic was created
/// with: an unset `max_record_bytes` stays unset (the default), an explicit one stays.
#[test]
fn config_round_trips_through_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = logbus::TopicConfig::new(2);
    let explicit = logbus::TopicConfig::new(1)
        .segment_bytes(8192)
        .max_record_bytes(1000)
        .retention_ms(Some(60_000));
    let broker = logbus::Broker::open(dir.path()).unwrap();
    broker.create_topic("a", defaults.clone()).unwrap();
    broker.create_topic("b", explicit.clone()).unwrap();
    broker.close().unwrap();
    let broker = logbus::Broker::open(dir.path()).unwrap();
    assert_eq!(broker.topic("a").unwrap().config(), defaults);
    assert_eq!(broker.topic("b").unwrap().config(), explicit);
}
