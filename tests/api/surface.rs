//! Compile-time checks of the public surface API.md promises: auto traits,
//! derives, iteration, and the exact shapes of the contract's signatures.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::path::PathBuf;
use std::time::Duration;

use logbus::{
    Broker, BrokerConfig, ConsumedRecord, Consumer, ConsumerConfig, ConsumerRecords, Durability, Error, OffsetReset,
    Partition, Producer, Record, RecordMetadata, Result, Topic, TopicConfig, TopicPartition,
};

fn clone_send_sync<T: Clone + Send + Sync + 'static>() {}
fn send<T: Send>() {}
fn send_clone<T: Send + Clone>() {}
fn debug<T: Debug>() {}
fn key_like<T: Clone + Eq + Hash + Ord + Debug>() {}

#[test]
fn handles_have_the_promised_auto_traits() {
    clone_send_sync::<Broker>();
    clone_send_sync::<Topic>();
    clone_send_sync::<Partition>();
    clone_send_sync::<Producer>();
    send::<Consumer>();
    send_clone::<ConsumedRecord>();
    send::<ConsumerRecords>();
    send::<Error>();
    key_like::<TopicPartition>();
}

#[test]
fn every_public_type_implements_debug() {
    debug::<Broker>();
    debug::<BrokerConfig>();
    debug::<Durability>();
    debug::<TopicConfig>();
    debug::<Topic>();
    debug::<Partition>();
    debug::<Record>();
    debug::<Producer>();
    debug::<RecordMetadata>();
    debug::<TopicPartition>();
    debug::<OffsetReset>();
    debug::<ConsumerConfig>();
    debug::<Consumer>();
    debug::<ConsumerRecords>();
    debug::<ConsumedRecord>();
    debug::<Error>();
    debug::<logbus::TimestampType>();
    debug::<logbus::Partitioner>();
    debug::<logbus::AssignmentStrategy>();
    debug::<logbus::LogConfig>();
    debug::<logbus::Log>();
    debug::<logbus::Appended>();
    debug::<logbus::RecoveryReport>();
    debug::<logbus::GroupDescription>();
    debug::<logbus::MemberDescription>();
    debug::<logbus::PartitionLag>();
    debug::<logbus::TypedRecord<u8>>();
    typed_debug();
}

#[cfg(feature = "serde")]
fn typed_debug() {
    debug::<logbus::TypedProducer<u8, logbus::Postcard>>();
    debug::<logbus::TypedConsumer<u8, logbus::Postcard>>();
    debug::<logbus::Postcard>();
}

#[cfg(not(feature = "serde"))]
fn typed_debug() {}

#[test]
fn debug_output_is_useful() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("orders", TopicConfig::new(2)).unwrap();
    let md = broker
        .producer()
        .send("orders", Record::new("v").with_key("k"))
        .unwrap();
    let partition = topic.partition(md.partition()).unwrap();
    let record = partition.read(md.offset(), 1).unwrap().remove(0);
    for text in [
        format!("{broker:?}"),
        format!("{topic:?}"),
        format!("{partition:?}"),
        format!("{md:?}"),
        format!("{record:?}"),
    ] {
        assert!(text.contains("orders"), "{text}");
    }
    let consumer = broker.consumer(ConsumerConfig::new().group("billing")).unwrap();
    assert!(format!("{consumer:?}").contains("billing"));
    assert!(format!("{:?}", broker.producer()).starts_with("Producer"));
    assert!(format!("{:?}", Record::new("hello").with_key("k")).contains("hello"));
}

#[test]
fn topic_partition_orders_by_topic_then_partition() {
    let mut set = BTreeSet::new();
    set.insert(TopicPartition::new("b", 0));
    set.insert(TopicPartition::new("a", 10));
    set.insert(TopicPartition::new("a", 2));
    set.insert(TopicPartition::new("a", 2));
    let v: Vec<_> = set.into_iter().collect();
    assert_eq!(
        v,
        vec![
            TopicPartition::new("a", 2),
            TopicPartition::new("a", 10),
            TopicPartition::new("b", 0)
        ]
    );
    let tp = TopicPartition {
        topic: "x".to_string(),
        partition: 1,
    };
    let hs: HashSet<TopicPartition> = [tp.clone(), TopicPartition::new("x", 1)].into_iter().collect();
    assert_eq!(hs.len(), 1);
    assert_eq!((tp.topic.as_str(), tp.partition), ("x", 1));
}

#[test]
fn consumer_records_iterate_owned_and_by_reference() {
    fn by_ref<'a, I: IntoIterator<Item = &'a ConsumedRecord>>(i: I) -> usize {
        i.into_iter().count()
    }
    fn owned<I: IntoIterator<Item = ConsumedRecord>>(i: I) -> Vec<ConsumedRecord> {
        i.into_iter().collect()
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    broker
        .producer()
        .send_batch("t", vec![Record::new("a"), Record::new("b")])
        .unwrap();
    let mut c = broker
        .consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))
        .unwrap();
    c.assign(&[TopicPartition::new("t", 0)]).unwrap();
    let records: ConsumerRecords = c.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(by_ref(&records), 2);
    assert_eq!(records.iter().count(), 2);
    let mut n = 0;
    for r in &records {
        n += r.value().len();
    }
    assert_eq!(n, 2);
    let kept: Vec<ConsumedRecord> = owned(records);
    // Owned records are independent values: they move to another thread.
    let values = std::thread::spawn(move || kept.iter().map(|r| r.value().to_vec()).collect::<Vec<_>>())
        .join()
        .unwrap();
    assert_eq!(values, vec![b"a".to_vec(), b"b".to_vec()]);
}

/// The contract's signatures, pinned by coercing each method to its exact
/// function-pointer type. A change of argument or return types fails to compile.
#[test]
fn signatures_match_the_contract() {
    let _: fn(PathBuf) -> Result<Broker> = Broker::open;
    let _: fn(PathBuf, BrokerConfig) -> Result<Broker> = Broker::open_with;
    let _: fn(&Broker, &str, TopicConfig) -> Result<Topic> = Broker::create_topic;
    let _: fn(&Broker, &str) -> Result<Topic> = Broker::topic;
    let _: fn(&Broker) -> Vec<String> = Broker::topics;
    let _: fn(&Broker, &str) -> Result<()> = Broker::delete_topic;
    let _: fn(&Broker) -> Producer = Broker::producer;
    let _: fn(&Broker, ConsumerConfig) -> Result<Consumer> = Broker::consumer;
    let _: fn(&Broker) -> Result<()> = Broker::flush;
    let _: fn(Broker) -> Result<()> = Broker::close;
    let _: fn(BrokerConfig, Durability) -> BrokerConfig = BrokerConfig::durability;
    let _: BrokerConfig = BrokerConfig::default();
    let _: Durability = Durability::default();
    let _ = [
        Durability::PageCache,
        Durability::Sync,
        Durability::Interval(Duration::from_millis(5)),
    ];

    let _: fn(u32) -> TopicConfig = TopicConfig::new;
    let _: fn(TopicConfig, u32) -> TopicConfig = TopicConfig::partitions;
    let _: fn(TopicConfig, u64) -> TopicConfig = TopicConfig::segment_bytes;
    let _: fn(TopicConfig, Option<u64>) -> TopicConfig = TopicConfig::retention_bytes;
    let _: fn(TopicConfig, Option<i64>) -> TopicConfig = TopicConfig::retention_ms;
    let _: fn(TopicConfig, u32) -> TopicConfig = TopicConfig::max_record_bytes;
    let _: TopicConfig = TopicConfig::default();

    let _: fn(&Topic) -> &str = Topic::name;
    let _: fn(&Topic) -> u32 = Topic::partition_count;
    let _: fn(&Topic, u32) -> Result<Partition> = Topic::partition;

    let _: fn(&Partition) -> u32 = Partition::id;
    let _: fn(&Partition) -> u64 = Partition::start_offset;
    let _: fn(&Partition) -> u64 = Partition::end_offset;
    let _: fn(&Partition, u64, usize) -> Result<Vec<ConsumedRecord>> = Partition::read;
    let _: fn(&Partition, i64) -> Result<Option<u64>> = Partition::offset_for_timestamp;

    let _: fn(Vec<u8>) -> Record = Record::new;
    let _: fn(Record, Vec<u8>) -> Record = Record::with_key;
    let _: fn(Record, String, Vec<u8>) -> Record = Record::with_header;
    let _: fn(Record, i64) -> Record = Record::with_timestamp;
    let _: fn(Record, u32) -> Record = Record::with_partition;
    let _ = Record::new("str")
        .with_key(b"bytes".to_vec())
        .with_header("n", &b"v"[..]);

    let _: fn(&Producer, &str, Record) -> Result<RecordMetadata> = Producer::send;
    let _: fn(&Producer, &str, Vec<Record>) -> Result<Vec<RecordMetadata>> = Producer::send_batch;
    let _: fn(&Producer) -> Result<()> = Producer::flush;
    let _: fn(&RecordMetadata) -> &str = RecordMetadata::topic;
    let _: fn(&RecordMetadata) -> u32 = RecordMetadata::partition;
    let _: fn(&RecordMetadata) -> u64 = RecordMetadata::offset;
    let _: fn(&RecordMetadata) -> i64 = RecordMetadata::timestamp;

    let _: fn(String, u32) -> TopicPartition = TopicPartition::new;
    let _ = [OffsetReset::Earliest, OffsetReset::Latest, OffsetReset::None];
    let _: fn() -> ConsumerConfig = ConsumerConfig::new;
    let _: fn(ConsumerConfig, String) -> ConsumerConfig = ConsumerConfig::group;
    let _: fn(ConsumerConfig, OffsetReset) -> ConsumerConfig = ConsumerConfig::offset_reset;
    let _: fn(ConsumerConfig, bool) -> ConsumerConfig = ConsumerConfig::auto_commit;
    let _: fn(ConsumerConfig, usize) -> ConsumerConfig = ConsumerConfig::max_poll_records;
    let _: ConsumerConfig = ConsumerConfig::default();

    let _: fn(&mut Consumer, &[&str]) -> Result<()> = Consumer::subscribe;
    let _: fn(&mut Consumer, &[TopicPartition]) -> Result<()> = Consumer::assign;
    let _: fn(&Consumer) -> Vec<TopicPartition> = Consumer::assignment;
    let _: fn(&mut Consumer, Duration) -> Result<ConsumerRecords> = Consumer::poll;
    let _: fn(&mut Consumer) -> Result<()> = Consumer::commit;
    type Offsets<'a> = &'a [(TopicPartition, u64)];
    let _: fn(&mut Consumer, Offsets) -> Result<()> = Consumer::commit_offsets;
    let _: fn(&Consumer, &TopicPartition) -> Result<Option<u64>> = Consumer::committed;
    let _: fn(&Consumer, &TopicPartition) -> Result<u64> = Consumer::position;
    let _: fn(&mut Consumer, &TopicPartition, u64) -> Result<()> = Consumer::seek;
    let _: fn(&mut Consumer, &[TopicPartition]) -> Result<()> = Consumer::seek_to_beginning;
    let _: fn(&mut Consumer, &[TopicPartition]) -> Result<()> = Consumer::seek_to_end;
    let _: fn(&mut Consumer, &[TopicPartition]) -> Result<()> = Consumer::pause;
    let _: fn(&mut Consumer, &[TopicPartition]) -> Result<()> = Consumer::resume;
    let _: fn(Consumer) -> Result<()> = Consumer::close;

    let _: fn(&ConsumerRecords) -> usize = ConsumerRecords::len;
    let _: fn(&ConsumerRecords) -> bool = ConsumerRecords::is_empty;
    let _: fn(&ConsumedRecord) -> &str = ConsumedRecord::topic;
    let _: fn(&ConsumedRecord) -> u32 = ConsumedRecord::partition;
    let _: fn(&ConsumedRecord) -> u64 = ConsumedRecord::offset;
    let _: fn(&ConsumedRecord) -> i64 = ConsumedRecord::timestamp;
    let _: fn(&ConsumedRecord) -> Option<&[u8]> = ConsumedRecord::key;
    let _: fn(&ConsumedRecord) -> &[u8] = ConsumedRecord::value;
    fn headers_shape(r: &ConsumedRecord) -> Vec<(&str, &[u8])> {
        r.headers().collect()
    }
    let _ = headers_shape;
    fn records_shape(r: &ConsumerRecords) -> Option<&ConsumedRecord> {
        r.iter().next()
    }
    let _ = records_shape;
    let r: std::result::Result<u8, Error> = Result::<u8>::Ok(1);
    assert!(matches!(r, Ok(1)));
}

/// Every variant API.md lists exists; `#[non_exhaustive]` forces a wildcard arm.
#[allow(dead_code)]
fn error_variants(e: &Error) -> &'static str {
    match e {
        Error::Io { .. } => "io",
        Error::Corruption { .. } => "corruption",
        Error::TopicExists { .. } => "exists",
        Error::UnknownTopic { .. } => "unknown topic",
        Error::UnknownPartition { .. } => "unknown partition",
        Error::InvalidConfig { .. } => "config",
        Error::InvalidTopicName { .. } => "name",
        Error::RecordTooLarge { .. } => "too large",
        Error::OffsetOutOfRange { .. } => "range",
        Error::NoOffset { .. } => "no offset",
        Error::Locked { .. } => "locked",
        Error::Fenced { .. } => "fenced",
        Error::Closed => "closed",
        _ => "other",
    }
}

#[test]
fn closed_displays_what_to_do() {
    assert_eq!(error_variants(&Error::Closed), "closed");
    assert!(Error::Closed.to_string().contains("Broker::open"));
}
