//! Helpers shared by the Kafka tests: clients for a broker, topic creation,
//! polling until a count.
#![allow(dead_code)]

use std::time::Duration;

use logbus::kafka::{Admin, Consumer, ConsumerBuilder, KafkaRecord, Producer};
use logbus::{OffsetReset, Record};

use crate::broker::Tansu;
use crate::common::Deadline;

/// How long a test waits for records that were acknowledged.
pub const RECORDS_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates a topic on the broker.
pub fn create_topic(broker: &Tansu, name: &str, partitions: u32) {
    let admin = Admin::builder(broker.bootstrap()).build().unwrap();
    admin.create_topic(name, partitions).unwrap();
    assert_eq!(
        admin.partition_count(name).unwrap(),
        Some(partitions),
        "topic {name} after creation"
    );
}

/// A producer with short timeouts.
pub fn producer(broker: &Tansu) -> Producer {
    Producer::builder(broker.bootstrap())
        .delivery_timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Sends `{prefix}{i}` for each `i` of `range` to `topic`, record `i` to
/// partition `i % partitions`, as one batch.
pub fn send_spread(producer: &Producer, topic: &str, prefix: &str, range: std::ops::Range<u32>, partitions: u32) {
    let records = range.map(|i| Record::new(format!("{prefix}{i}")).with_partition(i % partitions));
    producer.send_batch(topic, records).unwrap();
}

/// A consumer builder reading from the earliest offset.
pub fn consumer(broker: &Tansu) -> ConsumerBuilder {
    Consumer::builder(broker.bootstrap())
        .offset_reset(OffsetReset::Earliest)
        .request_timeout(Duration::from_secs(10))
}

/// A consumer builder in `group`, reading from the earliest offset. tansu
/// holds a join for about the session timeout, so it is short (6 s) here.
pub fn group_consumer(broker: &Tansu, group: &str) -> ConsumerBuilder {
    consumer(broker).group(group).set("session.timeout.ms", "6000")
}

/// Polls until `n` records arrived (panics after `RECORDS_TIMEOUT`).
pub fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<KafkaRecord> {
    let deadline = Deadline::new(RECORDS_TIMEOUT, format!("{n} records"));
    let mut out = Vec::new();
    while out.len() < n {
        deadline.check_with(|| format!("got {}: {out:?}", out.len()));
        out.extend(consumer.poll(Duration::from_millis(500)).unwrap());
    }
    assert_eq!(out.len(), n, "more records than expected: {out:?}");
    out
}

/// Polls for `d` and returns whatever came.
pub fn poll_for(consumer: &mut Consumer, d: Duration) -> Vec<KafkaRecord> {
    let deadline = Deadline::new(d, "the end of the polling time");
    let mut out = Vec::new();
    while !deadline.passed() {
        out.extend(consumer.poll(Duration::from_millis(200)).unwrap());
    }
    out
}
