//! Typed records: `TypedProducer` / `TypedConsumer` with the `Postcard` codec.
#![cfg(feature = "serde")]

use std::time::Duration;

use logbus::{
    Broker, Codec, ConsumerConfig, Error, OffsetReset, Postcard, Record, TopicConfig, TopicPartition, TypedConsumer,
    TypedProducer,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Deposit,
    Withdrawal { reason: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Event {
    account: String,
    cents: u64,
    delta: i64,
    kind: Kind,
    tags: Vec<String>,
    ratio: f64,
}

fn event(i: u64) -> Event {
    Event {
        account: format!("acct-{}", i % 3),
        cents: i * 100,
        delta: -(i as i64),
        kind: if i.is_multiple_of(2) {
            Kind::Deposit
        } else {
            Kind::Withdrawal {
                reason: (i % 4 == 1).then(|| format!("reason {i}")),
            }
        },
        tags: (0..i % 4).map(|t| format!("tag{t}")).collect(),
        ratio: i as f64 / 7.0,
    }
}

fn earliest() -> ConsumerConfig {
    ConsumerConfig::new().offset_reset(OffsetReset::Earliest)
}

fn typed_consumer(broker: &Broker, topic: &str, partitions: u32) -> TypedConsumer<Event, Postcard> {
    let mut c = broker.consumer(earliest()).unwrap();
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    c.assign(&tps).unwrap();
    TypedConsumer::new(c, Postcard)
}

#[test]
fn a_serde_struct_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("events", TopicConfig::new(3)).unwrap();
    let producer = TypedProducer::new(broker.producer(), "events", Postcard);
    let mut sent = Vec::new();
    for i in 0..60 {
        let e = event(i);
        let md = if i % 3 == 0 {
            producer.send(&e).unwrap()
        } else if i % 3 == 1 {
            producer.send_keyed(e.account.clone(), &e).unwrap()
        } else {
            producer
                .send_record(
                    Record::new("ignored").with_header("i", i.to_string()).with_partition(2),
                    &e,
                )
                .unwrap()
        };
        assert_eq!(md.topic(), "events");
        if i % 3 == 2 {
            assert_eq!(md.partition(), 2);
        }
        sent.push((md.partition(), md.offset(), e));
    }

    let mut consumer = typed_consumer(&broker, "events", 3);
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let batch = consumer.poll(Duration::from_secs(1)).unwrap();
        assert!(!batch.is_empty());
        got.extend(batch);
    }
    assert!(consumer.poll(Duration::from_millis(50)).unwrap().is_empty());
    for (p, o, e) in &sent {
        let r = got
            .iter()
            .find(|r| r.record.partition() == *p && r.record.offset() == *o)
            .expect("sent record not received");
        assert_eq!(&r.value, e);
        // The raw record is there too: keys for keyed sends, headers for prepared records.
        if e.cents / 100 % 3 == 1 {
            assert_eq!(r.record.key(), Some(e.account.as_bytes()));
        }
        if e.cents / 100 % 3 == 2 {
            let i = (e.cents / 100).to_string();
            assert_eq!(r.record.headers().collect::<Vec<_>>(), vec![("i", i.as_bytes())]);
            assert_ne!(r.record.value(), b"ignored");
        }
    }
    // The stored bytes are postcard's encoding.
    let first = &got[0];
    assert_eq!(
        first.record.value(),
        Codec::<Event>::encode(&Postcard, &first.value).unwrap()
    );
}

#[test]
fn an_undecodable_record_is_a_decode_error_that_can_be_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("events", TopicConfig::new(1)).unwrap();
    let typed = TypedProducer::new(broker.producer(), "events", Postcard);
    typed.send(&event(0)).unwrap();
    typed.send(&event(1)).unwrap();
    // Not postcard for `Event`: an empty value, and a truncated string length.
    broker.producer().send("events", Record::new(Vec::new())).unwrap();
    broker
        .producer()
        .send("events", Record::new(vec![0xffu8, 0xff, 0xff]))
        .unwrap();
    typed.send(&event(4)).unwrap();

    let mut consumer = typed_consumer(&broker, "events", 1);
    let tp = TopicPartition::new("events", 0);
    // Records before the bad one come first.
    let good = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(
        good.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
        vec![event(0), event(1)]
    );
    // Then the error, naming where it is; polling again repeats it (the position stays).
    for _ in 0..2 {
        let err = consumer.poll(Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(&err, Error::Decode { topic, partition: 0, offset: 2, .. } if topic == "events"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("'events'") && msg.contains("partition 0") && msg.contains("offset 2"),
            "{msg}"
        );
    }
    assert_eq!(consumer.consumer().position(&tp).unwrap(), 2);
    // Skip it; the next one is bad too.
    consumer.consumer().seek(&tp, 3).unwrap();
    assert!(matches!(
        consumer.poll(Duration::from_secs(1)),
        Err(Error::Decode { offset: 3, .. })
    ));
    consumer.consumer().seek(&tp, 4).unwrap();
    let rest = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].value, event(4));
    assert_eq!(rest[0].record.offset(), 4);
}

#[test]
fn a_decode_error_on_one_partition_does_not_lose_records_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("events", TopicConfig::new(2)).unwrap();
    let producer = broker.producer();
    let encode = |e: &Event| Codec::<Event>::encode(&Postcard, e).unwrap();
    for i in 0..5u64 {
        producer
            .send("events", Record::new(encode(&event(i))).with_partition(0))
            .unwrap();
        producer
            .send("events", Record::new(encode(&event(10 + i))).with_partition(1))
            .unwrap();
    }
    producer
        .send("events", Record::new(vec![0xff]).with_partition(0))
        .unwrap();
    for i in 5..8u64 {
        producer
            .send("events", Record::new(encode(&event(i))).with_partition(0))
            .unwrap();
        producer
            .send("events", Record::new(encode(&event(10 + i))).with_partition(1))
            .unwrap();
    }

    let mut consumer = typed_consumer(&broker, "events", 2);
    let mut got: Vec<(u32, u64)> = Vec::new();
    let mut errors = 0;
    for _ in 0..20 {
        match consumer.poll(Duration::from_millis(100)) {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => got.extend(batch.iter().map(|r| (r.record.partition(), r.record.offset()))),
            Err(Error::Decode { partition, offset, .. }) => {
                assert_eq!((partition, offset), (0, 5));
                errors += 1;
                consumer.consumer().seek(&TopicPartition::new("events", 0), 6).unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(errors, 1);
    got.sort();
    let mut want: Vec<(u32, u64)> = (0..5).chain(6..9).map(|o| (0, o)).collect();
    want.extend((0..8).map(|o| (1, o)));
    assert_eq!(got, want, "records lost or duplicated around the decode error");
}

#[test]
fn typed_records_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("events", TopicConfig::new(1)).unwrap();
        let producer = TypedProducer::new(broker.producer(), "events", Postcard);
        for i in 0..10 {
            producer.send(&event(i)).unwrap();
        }
        broker.close().unwrap();
    }
    let broker = Broker::open(dir.path()).unwrap();
    let mut consumer = typed_consumer(&broker, "events", 1);
    let got = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(
        got.into_iter().map(|r| r.value).collect::<Vec<_>>(),
        (0..10).map(event).collect::<Vec<_>>()
    );
    let inner = consumer.into_inner();
    assert_eq!(inner.assignment(), vec![TopicPartition::new("events", 0)]);
}

#[test]
fn typed_producer_errors_are_the_producers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker
        .create_topic("small", TopicConfig::new(1).max_record_bytes(16))
        .unwrap();
    let missing = TypedProducer::<Event, _>::new(broker.producer(), "missing", Postcard);
    assert!(matches!(missing.send(&event(1)), Err(Error::UnknownTopic { .. })));
    let small = TypedProducer::<Event, _>::new(broker.producer(), "small", Postcard);
    assert!(matches!(small.send(&event(3)), Err(Error::RecordTooLarge { .. })));
    assert_eq!(broker.topic("small").unwrap().partition(0).unwrap().end_offset(), 0);
}

/// A codec that cannot encode some values.
#[derive(Debug)]
struct EvenOnly;

impl Codec<u32> for EvenOnly {
    fn encode(&self, value: &u32) -> Result<Vec<u8>, String> {
        if value.is_multiple_of(2) {
            Ok(value.to_le_bytes().to_vec())
        } else {
            Err(format!("{value} is odd"))
        }
    }
    fn decode(&self, bytes: &[u8]) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            bytes.try_into().map_err(|_| "not 4 bytes".to_string())?,
        ))
    }
}

#[test]
fn custom_codecs_report_encode_errors_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("n", TopicConfig::new(1)).unwrap();
    let producer = TypedProducer::new(broker.producer(), "n", EvenOnly);
    producer.send(&2).unwrap();
    let err = producer.send(&3).unwrap_err();
    assert!(
        matches!(&err, Error::Encode { topic, reason } if topic == "n" && reason == "3 is odd"),
        "{err:?}"
    );
    assert!(err.to_string().contains("'n'"));
    producer.send(&4).unwrap();
    let mut c = broker.consumer(earliest()).unwrap();
    c.assign(&[TopicPartition::new("n", 0)]).unwrap();
    let mut typed = TypedConsumer::<u32, _>::new(c, EvenOnly);
    let got: Vec<u32> = typed
        .poll(Duration::from_secs(1))
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(got, vec![2, 4]);
}
