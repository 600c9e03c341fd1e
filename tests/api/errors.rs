//! Every bad input returns its error, names what it is about, and leaves the
//! log (and the directory) unchanged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use logbus::{
    Broker, Codec, ConsumerConfig, Error, OffsetReset, Record, Topic, TopicConfig, TopicPartition, TypedConsumer,
    TypedProducer,
};

/// A minimal codec, so these tests need no optional feature.
#[derive(Debug)]
struct LeU32;

impl Codec<u32> for LeU32 {
    fn encode(&self, value: &u32) -> Result<Vec<u8>, String> {
        Ok(value.to_le_bytes().to_vec())
    }
    fn decode(&self, bytes: &[u8]) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            bytes.try_into().map_err(|_| "not 4 bytes".to_string())?,
        ))
    }
}

/// Every path under `root`, relative to it.
fn listing(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            out.insert(path.strip_prefix(root).unwrap().to_path_buf());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn ends(topic: &Topic) -> Vec<u64> {
    (0..topic.partition_count())
        .map(|p| topic.partition(p).unwrap().end_offset())
        .collect()
}

fn bad_names() -> Vec<String> {
    vec![
        String::new(),
        "x".repeat(250),
        ".".into(),
        "..".into(),
        "a/b".into(),
        "../x".into(),
        "/abs".into(),
        "a b".into(),
        "a\\b".into(),
        "tab\t".into(),
        "nul\0".into(),
        "caf\u{e9}".into(),
        "\u{65e5}\u{672c}".into(),
        "emoji-\u{1f600}".into(),
        "@lock".into(),
        "@groups".into(),
        "a:b".into(),
        "a*".into(),
    ]
}

#[test]
fn invalid_topic_names_are_refused_and_create_nothing_anywhere() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("broker");
    let broker = Broker::open(&dir).unwrap();
    let ok = broker.create_topic("ok", TopicConfig::new(2)).unwrap();
    broker.producer().send("ok", Record::new("v")).unwrap();
    let before = listing(root.path());
    let consumer_cfg = ConsumerConfig::new().group("g");
    let mut consumer = broker.consumer(consumer_cfg).unwrap();

    for name in bad_names() {
        let err = broker.create_topic(&name, TopicConfig::new(1)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidTopicName { name: n, .. } if *n == name),
            "{name:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("{name:?}")),
            "Display of {err:?} does not quote the name"
        );
        assert!(
            matches!(broker.topic(&name), Err(Error::InvalidTopicName { .. })),
            "{name:?}"
        );
        assert!(
            matches!(broker.delete_topic(&name), Err(Error::InvalidTopicName { .. })),
            "{name:?}"
        );
        assert!(
            matches!(
                broker.producer().send(&name, Record::new("v")),
                Err(Error::InvalidTopicName { .. })
            ),
            "{name:?}"
        );
        assert!(
            matches!(
                broker.producer().send_batch(&name, vec![Record::new("v")]),
                Err(Error::InvalidTopicName { .. })
            ),
            "{name:?}"
        );
        assert!(
            matches!(
                consumer.subscribe(&[name.as_str()]),
                Err(Error::InvalidTopicName { .. })
            ),
            "{name:?}"
        );
    }
    let mut manual = broker.consumer(ConsumerConfig::new()).unwrap();
    assert!(matches!(
        manual.assign(&[TopicPartition::new("a/b", 0)]),
        Err(Error::InvalidTopicName { .. })
    ));

    assert_eq!(listing(root.path()), before, "an invalid name left something on disk");
    assert_eq!(broker.topics(), vec!["ok".to_string()]);
    assert_eq!(ends(&ok), vec![1, 0]);
}

#[test]
fn invalid_topic_configs_are_refused_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let before = listing(dir.path());
    let cases: Vec<(TopicConfig, &str)> = vec![
        (TopicConfig::new(0), "partitions"),
        (TopicConfig::new(3).partitions(0), "partitions"),
        (TopicConfig::new(1).segment_bytes(0), "segment_bytes"),
        (TopicConfig::new(1).segment_bytes(10), "segment_bytes"),
        (
            TopicConfig::new(1).segment_bytes(4096).max_record_bytes(4096),
            "max_record_bytes",
        ),
        (
            TopicConfig::new(1).segment_bytes(4096).max_record_bytes(1 << 20),
            "max_record_bytes",
        ),
        (TopicConfig::new(1).max_record_bytes(0), "max_record_bytes"),
        (TopicConfig::new(1).retention_ms(Some(-1)), "retention_ms"),
    ];
    for (config, field) in cases {
        let err = broker.create_topic("t", config.clone()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field: f, .. } if *f == field),
            "{config:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(field),
            "Display of {err:?} does not name {field}"
        );
        assert!(broker.topics().is_empty());
        assert!(matches!(broker.topic("t"), Err(Error::UnknownTopic { .. })));
    }
    assert_eq!(listing(dir.path()), before);
    // The smallest segment that holds a record of the limit is fine (4096 works).
    broker
        .create_topic("small", TopicConfig::new(1).segment_bytes(4096).max_record_bytes(1000))
        .unwrap();
    broker
        .create_topic("tiny", TopicConfig::new(1).segment_bytes(4096))
        .unwrap();
    broker.producer().send("tiny", Record::new(vec![1u8; 3000])).unwrap();
}

#[test]
fn creating_a_topic_twice_is_topic_exists_and_keeps_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let t = broker
        .create_topic("t", TopicConfig::new(2).max_record_bytes(500))
        .unwrap();
    broker.producer().send("t", Record::new("v").with_partition(1)).unwrap();
    for config in [
        TopicConfig::new(2).max_record_bytes(500),
        TopicConfig::new(5),
        TopicConfig::new(0),
    ] {
        let err = broker.create_topic("t", config).unwrap_err();
        assert!(
            matches!(&err, Error::TopicExists { topic } if topic == "t") || matches!(&err, Error::InvalidConfig { .. }),
            "{err:?}"
        );
    }
    let err = broker.create_topic("t", TopicConfig::new(5)).unwrap_err();
    assert!(err.to_string().contains("'t'"), "{err}");
    let again = broker.topic("t").unwrap();
    assert_eq!(again.partition_count(), 2);
    assert_eq!(again.config(), TopicConfig::new(2).max_record_bytes(500));
    assert_eq!(ends(&t), vec![0, 1]);
}

#[test]
fn unknown_topics_are_unknown_topic_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("known", TopicConfig::new(1)).unwrap();
    let before = listing(dir.path());
    let producer = broker.producer();

    let err = producer.send("missing", Record::new("v")).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTopic { topic } if topic == "missing"),
        "{err:?}"
    );
    assert!(err.to_string().contains("'missing'"), "{err}");
    assert!(matches!(
        producer.send_batch("missing", vec![Record::new("v")]),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(broker.topic("missing"), Err(Error::UnknownTopic { .. })));
    assert!(matches!(
        broker.delete_topic("missing"),
        Err(Error::UnknownTopic { .. })
    ));
    let mut consumer = broker.consumer(ConsumerConfig::new().group("g")).unwrap();
    assert!(matches!(
        consumer.assign(&[TopicPartition::new("missing", 0)]),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        consumer.commit_offsets(&[(TopicPartition::new("missing", 0), 1)]),
        Err(Error::UnknownTopic { .. })
    ));
    // Never auto-created.
    assert_eq!(broker.topics(), vec!["known".to_string()]);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn partitions_out_of_range_are_unknown_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let t = broker.create_topic("t", TopicConfig::new(3)).unwrap();

    let err = t.partition(3).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownPartition { topic, partition: 3, partition_count: 3 } if topic == "t"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("'t'") && msg.contains("partition 3"), "{msg}");
    assert!(matches!(t.partition(u32::MAX), Err(Error::UnknownPartition { .. })));

    let producer = broker.producer();
    for p in [3, 4, u32::MAX] {
        let err = producer.send("t", Record::new("v").with_partition(p)).unwrap_err();
        assert!(matches!(err, Error::UnknownPartition { partition, .. } if partition == p));
    }
    assert_eq!(ends(&t), vec![0, 0, 0]);

    let mut consumer = broker.consumer(ConsumerConfig::new().group("g")).unwrap();
    assert!(matches!(
        consumer.assign(&[TopicPartition::new("t", 3)]),
        Err(Error::UnknownPartition { .. })
    ));
    assert!(consumer.assignment().is_empty());
    assert!(matches!(
        consumer.commit_offsets(&[(TopicPartition::new("t", 9), 0)]),
        Err(Error::UnknownPartition { .. })
    ));
    assert_eq!(consumer.committed(&TopicPartition::new("t", 0)).unwrap(), None);
}

#[test]
fn record_too_large_over_the_limit_and_exactly_at_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let t = broker
        .create_topic("t", TopicConfig::new(1).max_record_bytes(100))
        .unwrap();
    let producer = broker.producer();

    let err = producer.send("t", Record::new(vec![0u8; 101])).unwrap_err();
    assert!(
        matches!(&err, Error::RecordTooLarge { topic, size: 101, max: 100 } if topic == "t"),
        "{err:?}"
    );
    assert!(err.to_string().contains("'t'"), "{err}");
    // Key and headers count: 40 + 40 + (1 + 20) = 101.
    let r = Record::new(vec![0u8; 40])
        .with_key(vec![1u8; 40])
        .with_header("h", vec![2u8; 20]);
    assert!(matches!(
        producer.send("t", r),
        Err(Error::RecordTooLarge { size: 101, .. })
    ));
    assert_eq!(ends(&t), vec![0]);

    // Exactly at the limit succeeds, in every composition.
    producer.send("t", Record::new(vec![0u8; 100])).unwrap();
    producer
        .send(
            "t",
            Record::new(vec![0u8; 40])
                .with_key(vec![1u8; 40])
                .with_header("h", vec![2u8; 19]),
        )
        .unwrap();
    producer
        .send("t", Record::new(Vec::new()).with_key(vec![1u8; 100]))
        .unwrap();
    assert_eq!(ends(&t), vec![3]);
    let recs = t.partition(0).unwrap().read(0, 10).unwrap();
    assert_eq!(recs[0].value().len(), 100);
    assert_eq!(recs[2].key().unwrap().len(), 100);
}

#[test]
fn records_at_the_limit_fit_in_the_smallest_segment_that_accepts_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    // Find the largest limit 4 KiB segments accept, then send records of exactly that size.
    let mut limit = 4096;
    let topic = loop {
        match broker.create_topic("t", TopicConfig::new(1).segment_bytes(4096).max_record_bytes(limit)) {
            Ok(t) => break t,
            Err(Error::InvalidConfig { .. }) => limit -= 1,
            Err(e) => panic!("{e}"),
        }
    };
    let limit = limit as usize;
    let producer = broker.producer();
    producer.send("t", Record::new(vec![1u8; limit])).unwrap();
    producer
        .send("t", Record::new(vec![2u8; limit - 10]).with_key(vec![3u8; 10]))
        .unwrap();
    let mut many_headers = Record::new(vec![4u8; limit - 40]);
    for i in 0..20 {
        many_headers = many_headers.with_header(format!("{}", i % 10), "x");
    }
    assert_eq!(many_headers.size(), limit);
    producer.send("t", many_headers).unwrap();
    producer.send("t", Record::new(vec![5u8; 10])).unwrap();
    let p = topic.partition(0).unwrap();
    assert_eq!(p.end_offset(), 4);
    let recs: Vec<_> = (0..4).flat_map(|o| p.read(o, 1).unwrap()).collect();
    assert_eq!(recs[0].value(), vec![1u8; limit].as_slice());
    assert_eq!(recs[2].headers().count(), 20);
    assert_eq!(recs[3].value(), &[5u8; 10]);
}

#[test]
fn a_second_open_of_the_same_directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let err = Broker::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Locked { path, .. } if path == dir.path()),
        "{err:?}"
    );
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
    assert!(matches!(
        Broker::open_with(dir.path(), Default::default()),
        Err(Error::Locked { .. })
    ));
    // The failed opens changed nothing for the owner.
    broker.producer().send("t", Record::new("still mine")).unwrap();
    let clone = broker.clone();
    broker.close().unwrap();
    // close ends every clone and releases the lock.
    assert!(matches!(clone.topic("t"), Err(Error::Closed)));
    let reopened = Broker::open(dir.path()).unwrap();
    assert_eq!(reopened.topic("t").unwrap().partition(0).unwrap().end_offset(), 1);
    drop(clone);
    assert!(matches!(Broker::open(dir.path()), Err(Error::Locked { .. })));
}

#[test]
fn dropping_the_last_handle_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let clone = broker.clone();
    drop(broker);
    assert!(matches!(Broker::open(dir.path()), Err(Error::Locked { .. })));
    drop(clone);
    Broker::open(dir.path()).unwrap().close().unwrap();
}

#[test]
fn group_operations_without_a_group_are_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut consumer = broker.consumer(ConsumerConfig::new()).unwrap();
    let err = consumer.subscribe(&["t"]).unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { field: "group", .. }), "{err:?}");
    consumer.assign(std::slice::from_ref(&tp)).unwrap();
    assert!(matches!(
        consumer.commit(),
        Err(Error::InvalidConfig { field: "group", .. })
    ));
    assert!(matches!(
        consumer.commit_offsets(&[(tp.clone(), 0)]),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(consumer.committed(&tp), Err(Error::InvalidConfig { .. })));
    assert!(broker.groups().is_empty());

    assert!(matches!(
        broker.consumer(ConsumerConfig::new().max_poll_records(0)),
        Err(Error::InvalidConfig {
            field: "max_poll_records",
            ..
        })
    ));
    assert!(matches!(
        broker.consumer(ConsumerConfig::new().group("")),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn offset_errors_name_topic_partition_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let t = broker.create_topic("t", TopicConfig::new(2)).unwrap();
    broker.producer().send("t", Record::new("v").with_partition(1)).unwrap();
    let err = t.partition(1).unwrap().read(7, 1).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::OffsetOutOfRange {
                partition: 1,
                offset: 7,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("'t'") && msg.contains("partition 1") && msg.contains('7'),
        "{msg}"
    );

    let mut consumer = broker
        .consumer(ConsumerConfig::new().group("g").offset_reset(OffsetReset::None))
        .unwrap();
    consumer.assign(&[TopicPartition::new("t", 1)]).unwrap();
    let err = consumer.poll(Duration::from_millis(10)).unwrap_err();
    assert!(
        matches!(&err, Error::NoOffset { group, partition: 1, .. } if group == "g"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("'g'") && msg.contains("'t'") && msg.contains("partition 1"),
        "{msg}"
    );
}

#[test]
fn every_handle_kind_returns_closed_after_broker_close() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let partition = topic.partition(0).unwrap();
    let producer = broker.producer();
    producer.send("t", Record::new("v").with_partition(0)).unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut manual = broker
        .consumer(ConsumerConfig::new().group("m").offset_reset(OffsetReset::Earliest))
        .unwrap();
    manual.assign(std::slice::from_ref(&tp)).unwrap();
    let mut member = broker
        .consumer(ConsumerConfig::new().group("g").offset_reset(OffsetReset::Earliest))
        .unwrap();
    member.subscribe(&["t"]).unwrap();
    assert_eq!(member.poll(Duration::from_secs(5)).unwrap().len(), 1);
    let fresh = broker.consumer(ConsumerConfig::new()).unwrap();
    let typed_producer = TypedProducer::<u32, _>::new(broker.producer(), "t", LeU32);
    let mut typed_consumer = TypedConsumer::<u32, _>::new(
        {
            let mut c = broker.consumer(ConsumerConfig::new()).unwrap();
            c.assign(&[TopicPartition::new("t", 1)]).unwrap();
            c
        },
        LeU32,
    );
    let clone = broker.clone();

    broker.close().unwrap();

    let closed = |r: Result<(), Error>, what: &str| {
        assert!(matches!(r, Err(Error::Closed)), "{what}: {r:?}");
    };
    // Broker (through a clone).
    closed(clone.create_topic("u", TopicConfig::new(1)).map(drop), "create_topic");
    closed(clone.topic("t").map(drop), "topic");
    closed(clone.delete_topic("t"), "delete_topic");
    closed(clone.flush(), "broker flush");
    closed(clone.consumer(ConsumerConfig::new()).map(drop), "consumer");
    closed(clone.describe_group("g").map(drop), "describe_group");
    // Topic and Partition.
    closed(topic.partition(1).map(drop), "topic.partition");
    closed(partition.read(0, 1).map(drop), "partition.read");
    closed(partition.offset_for_timestamp(0).map(drop), "offset_for_timestamp");
    // Producer.
    closed(producer.send("t", Record::new("late")).map(drop), "send");
    closed(
        producer.send_batch("t", vec![Record::new("late")]).map(drop),
        "send_batch",
    );
    closed(producer.flush(), "producer flush");
    closed(
        clone.producer().send("t", Record::new("late")).map(drop),
        "new producer",
    );
    closed(typed_producer.send(&1).map(drop), "typed send");
    // Consumers: manual, group member, fresh, typed.
    closed(manual.poll(Duration::from_millis(10)).map(drop), "manual poll");
    closed(manual.position(&tp).map(drop), "position");
    closed(manual.seek(&tp, 0), "seek");
    closed(manual.seek_to_beginning(&[]), "seek_to_beginning");
    closed(manual.seek_to_end(&[]), "seek_to_end");
    closed(manual.pause(std::slice::from_ref(&tp)), "pause");
    closed(manual.resume(std::slice::from_ref(&tp)), "resume");
    closed(manual.commit(), "manual commit");
    closed(manual.commit_offsets(&[(tp.clone(), 0)]), "commit_offsets");
    closed(manual.committed(&tp).map(drop), "committed");
    closed(manual.assign(std::slice::from_ref(&tp)), "assign");
    closed(member.poll(Duration::from_millis(10)).map(drop), "member poll");
    closed(member.commit(), "member commit");
    closed(member.subscribe(&["t"]), "resubscribe");
    let mut fresh = fresh;
    closed(fresh.subscribe(&["t"]), "fresh subscribe");
    closed(fresh.poll(Duration::ZERO).map(drop), "fresh poll");
    closed(typed_consumer.poll(Duration::from_millis(10)).map(drop), "typed poll");
    // Closing again (any clone) is harmless; the data is intact on reopen.
    clone.close().unwrap();
    member.close().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(ends(&broker.topic("t").unwrap()), vec![1, 0]);
}

#[test]
fn a_poll_blocked_when_the_broker_closes_returns_closed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut consumer = broker.consumer(ConsumerConfig::new()).unwrap();
    consumer.assign(&[TopicPartition::new("t", 0)]).unwrap();
    let waiter = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        (consumer.poll(Duration::from_secs(10)), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    broker.close().unwrap();
    let (result, elapsed) = waiter.join().unwrap();
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "close did not wake the poll: {elapsed:?}"
    );
}

#[test]
fn errors_are_std_errors_that_cross_threads() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Error>();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let err: Box<dyn std::error::Error + Send + Sync> = Box::new(broker.topic("nope").unwrap_err());
    assert!(err.to_string().contains("nope"));
}

#[test]
fn opening_a_file_as_a_broker_directory_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"hello").unwrap();
    let err = Broker::open(&file).unwrap_err();
    assert!(matches!(&err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"hello");
}
