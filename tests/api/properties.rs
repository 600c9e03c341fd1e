//! Kafka's config names: `TopicConfig::from_properties`,
//! `ConsumerConfig::from_properties` and `.properties` files.

use logbus::properties::{parse_properties, read_properties, CONSUMER_KEYS, TOPIC_KEYS};
use logbus::{AssignmentStrategy, ConsumerConfig, Error, OffsetReset, TimestampType, TopicConfig};

fn invalid(e: Error) -> (String, String, String) {
    match e {
        Error::InvalidConfig { field, value, reason } => (field.to_string(), value, reason),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn topic_configs_take_kafkas_names() {
    let c = TopicConfig::from_properties(&[
        ("num.partitions", "4"),
        ("retention.ms", "604800000"),
        ("retention.bytes", "-1"),
        ("segment.bytes", "1048576"),
        ("segment.ms", "3600000"),
        ("max.message.bytes", "1000"),
        ("message.timestamp.type", "LogAppendTime"),
    ])
    .unwrap();
    let want = TopicConfig::new(4)
        .retention_ms(Some(604_800_000))
        .retention_bytes(None)
        .segment_bytes(1 << 20)
        .segment_ms(Some(3_600_000))
        .max_record_bytes(1000)
        .timestamp_type(TimestampType::LogAppendTime);
    assert_eq!(c, want);
    // And back: what `topics describe` prints.
    let props = c.to_properties();
    let get = |k: &str| props.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("retention.ms"), Some("604800000"));
    assert_eq!(get("retention.bytes"), Some("-1"));
    assert_eq!(get("message.timestamp.type"), Some("LogAppendTime"));
    let pairs: Vec<(&str, &str)> = props.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        TopicConfig::from_properties(&pairs).unwrap(),
        c,
        "to_properties round-trips"
    );
}

#[test]
fn bad_topic_configs_name_the_key() {
    let (field, value, reason) = invalid(TopicConfig::from_properties(&[("retention.ms", "a week")]).unwrap_err());
    assert_eq!((field.as_str(), value.as_str()), ("retention.ms", "a week"));
    assert!(reason.contains("-1 for no limit"), "{reason}");

    let (_, value, reason) = invalid(TopicConfig::from_properties(&[("retention.hours", "1")]).unwrap_err());
    assert_eq!(value, "retention.hours");
    for k in TOPIC_KEYS {
        assert!(reason.contains(k), "{reason} lists {k}");
    }

    let (field, ..) = invalid(TopicConfig::from_properties(&[("message.timestamp.type", "create")]).unwrap_err());
    assert_eq!(field, "message.timestamp.type");
    // The typed builder's own checks still hold.
    let (field, ..) = invalid(TopicConfig::from_properties(&[("partitions", "0")]).unwrap_err());
    assert_eq!(field, "partitions");
    let (_, _, reason) = invalid(TopicConfig::from_properties(&[("replication.factor", "3")]).unwrap_err());
    assert!(reason.contains("one copy"), "{reason}");
}

#[test]
fn consumer_configs_take_kafkas_names() {
    let c = ConsumerConfig::from_properties(&[
        ("group.id", "billing"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "true"),
        ("max.poll.records", "10"),
        ("max.poll.interval.ms", "1000"),
        ("isolation.level", "read_committed"),
        (
            "partition.assignment.strategy",
            "org.apache.kafka.clients.consumer.RoundRobinAssignor,org.apache.kafka.clients.consumer.RangeAssignor",
        ),
    ])
    .unwrap();
    let want = ConsumerConfig::new()
        .group("billing")
        .offset_reset(OffsetReset::Earliest)
        .auto_commit(true)
        .max_poll_records(10)
        .max_poll_interval(std::time::Duration::from_secs(1))
        .isolation_level(logbus::IsolationLevel::ReadCommitted)
        .assignment_strategy(AssignmentStrategy::RoundRobin);
    assert_eq!(c, want);
    for (name, s) in [
        ("cooperative-sticky", AssignmentStrategy::Sticky),
        ("range", AssignmentStrategy::Range),
        ("StickyAssignor", AssignmentStrategy::Sticky),
    ] {
        let c = ConsumerConfig::from_properties(&[("partition.assignment.strategy", name)]).unwrap();
        assert_eq!(c, ConsumerConfig::new().assignment_strategy(s), "{name}");
    }
}

#[test]
fn network_only_consumer_keys_are_refused_with_the_reason() {
    let (field, _, reason) =
        invalid(ConsumerConfig::from_properties(&[("bootstrap.servers", "localhost:9092")]).unwrap_err());
    assert_eq!(field, "bootstrap.servers");
    assert!(reason.contains("Broker::open"), "{reason}");
    let (_, _, reason) = invalid(ConsumerConfig::from_properties(&[("fetch.max.wait", "1")]).unwrap_err());
    for k in CONSUMER_KEYS {
        assert!(reason.contains(k), "{reason} lists {k}");
    }
    for (k, v) in [
        ("auto.offset.reset", "smallest"),
        ("enable.auto.commit", "yes"),
        ("max.poll.records", "0"),
        ("max.poll.interval.ms", "-5"),
        ("group.id", ""),
        ("partition.assignment.strategy", "MyAssignor"),
        ("isolation.level", "READ_COMMITTED"),
    ] {
        let (field, value, _) = invalid(ConsumerConfig::from_properties(&[(k, v)]).unwrap_err());
        assert_eq!((field.as_str(), value.as_str()), (k, v));
    }
}

#[test]
fn properties_files_build_configs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consumer.properties");
    std::fs::write(
        &path,
        "# as a Kafka client reads it\ngroup.id = billing\nauto.offset.reset: earliest\n",
    )
    .unwrap();
    let c = ConsumerConfig::from_properties_file(&path).unwrap();
    assert_eq!(
        c,
        ConsumerConfig::new()
            .group("billing")
            .offset_reset(OffsetReset::Earliest)
    );
    assert_eq!(read_properties(&path).unwrap().len(), 2);
    assert_eq!(parse_properties("partitions 3").len(), 1);
    let topic = dir.path().join("topic.properties");
    std::fs::write(&topic, "partitions=2\nsegment.bytes=\\\n  4096\n").unwrap();
    assert_eq!(
        TopicConfig::from_properties_file(&topic).unwrap(),
        TopicConfig::new(2).segment_bytes(4096)
    );
    let missing = TopicConfig::from_properties_file(dir.path().join("nope.properties")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing:?}");
}

#[test]
fn broker_topic_defaults_fill_what_a_topic_config_does_not_give() {
    use logbus::{Broker, BrokerConfig};
    let config = BrokerConfig::from_properties(&[
        ("num.partitions", "3"),
        ("log.retention.ms", "60000"),
        // Kafka's precedence: ms over minutes over hours, whatever the order.
        ("log.retention.hours", "168"),
        ("log.segment.bytes", "1048576"),
        ("log.roll.hours", "1"),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(dir.path(), config).unwrap();
    let t = broker.create_topic("defaults", TopicConfig::default()).unwrap();
    assert_eq!(
        t.config(),
        TopicConfig::new(3)
            .retention_ms(Some(60_000))
            .segment_bytes(1 << 20)
            .segment_ms(Some(3_600_000))
    );
    // What a topic's config gives wins, explicit "no limit" included.
    let given = TopicConfig::new(1).retention_ms(None);
    let t = broker.create_topic("given", given).unwrap();
    assert_eq!(
        t.config(),
        TopicConfig::new(1).segment_bytes(1 << 20).segment_ms(Some(3_600_000))
    );
    let t = broker
        .create_topic(
            "props",
            TopicConfig::from_properties(&[("segment.bytes", "4096")]).unwrap(),
        )
        .unwrap();
    assert_eq!(t.partition_count(), 3);
    assert_eq!(t.config().to_properties()[3], ("segment.bytes", "4096".to_string()));
    broker.close().unwrap();

    // Reopened with the built-in defaults, the topics keep what they were created with.
    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(broker.topic("defaults").unwrap().partition_count(), 3);
    broker.close().unwrap();
}

#[test]
fn broker_configs_from_a_kafka_server_properties_name_what_does_not_apply() {
    use logbus::properties::BROKER_KEYS;
    use logbus::BrokerConfig;
    let (field, _, reason) = invalid(BrokerConfig::from_properties(&[("log.dirs", "/tmp/kafka-logs")]).unwrap_err());
    assert_eq!(field, "log.dirs");
    assert!(reason.contains("Broker::open"), "{reason}");
    let (_, value, reason) =
        invalid(BrokerConfig::from_properties(&[("zookeeper.connect", "localhost:2181")]).unwrap_err());
    assert_eq!(value, "zookeeper.connect");
    for k in BROKER_KEYS {
        assert!(reason.contains(k), "{reason} lists {k}");
    }
    let (field, ..) =
        invalid(BrokerConfig::from_properties(&[("log.retention.hours", "9223372036854775807")]).unwrap_err());
    assert_eq!(field, "log.retention.hours");
    let (field, ..) = invalid(BrokerConfig::from_properties(&[("num.partitions", "0")]).unwrap_err());
    assert_eq!(field, "partitions");
}

#[test]
fn compaction_configs_take_kafkas_names_and_round_trip() {
    use logbus::CleanupPolicy;
    let c = TopicConfig::from_properties(&[
        ("cleanup.policy", "compact,delete"),
        ("delete.retention.ms", "5000"),
        ("min.compaction.lag.ms", "100"),
        ("min.cleanable.dirty.ratio", "0.25"),
    ])
    .unwrap();
    let want = TopicConfig::new(1)
        .cleanup_policy(CleanupPolicy::CompactAndDelete)
        .delete_retention_ms(5000)
        .min_compaction_lag_ms(100)
        .min_cleanable_dirty_ratio(0.25);
    assert_eq!(c, want);
    let props = c.to_properties();
    let pairs: Vec<(&str, &str)> = props.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(TopicConfig::from_properties(&pairs).unwrap(), c);
    let (field, ..) = invalid(TopicConfig::from_properties(&[("cleanup.policy", "shred")]).unwrap_err());
    assert_eq!(field, "cleanup.policy");
    let (field, ..) = invalid(TopicConfig::from_properties(&[("min.cleanable.dirty.ratio", "2")]).unwrap_err());
    assert_eq!(field, "min.cleanable.dirty.ratio");
    let b = logbus::BrokerConfig::from_properties(&[("log.cleanup.policy", "compact")]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = logbus::Broker::open_with(dir.path(), b).unwrap();
    let t = broker.create_topic("t", TopicConfig::default()).unwrap();
    assert_eq!(t.config().policy(), CleanupPolicy::Compact);
    broker.close().unwrap();
}

#[test]
fn a_live_topics_retention_changes_and_applies() {
    use logbus::{Broker, Record};
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker
        .create_topic("t", TopicConfig::new(1).segment_bytes(1024))
        .unwrap();
    let p = broker.producer();
    for i in 0..200 {
        p.send("t", Record::new(format!("value {i:04}"))).unwrap();
    }
    let part = broker.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(part.start_offset(), 0, "no retention yet");
    let c = broker
        .alter_topic_config("t", &[("retention.bytes", "2048")], &[])
        .unwrap();
    assert_eq!(c.to_properties()[2], ("retention.bytes", "2048".to_string()));
    part.log().enforce_retention().unwrap();
    assert!(part.start_offset() > 0, "the new limit deleted old segments");
    let (field, ..) = invalid(
        broker
            .alter_topic_config("t", &[("max.message.bytes", "10")], &[])
            .unwrap_err(),
    );
    assert_eq!(field, "max.message.bytes");
    let c = broker.alter_topic_config("t", &[], &["retention.bytes"]).unwrap();
    assert_eq!(c, TopicConfig::new(1).segment_bytes(1024));
    broker.close().unwrap();
    // Kept in topic.meta.
    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(
        broker.topic("t").unwrap().config(),
        TopicConfig::new(1).segment_bytes(1024)
    );
    broker.close().unwrap();
}
