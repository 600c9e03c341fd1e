//! One client shape for every backend: [`RecordSink`] (what a producer does),
//! [`RecordSource`] (what a consumer does) and [`SourceRecord`] (what a
//! consumed record offers), so one generic function runs against a local
//! [`Broker`](crate::Broker) or, with the `kafka` feature, a Kafka cluster.
//!
//! The methods carry the names and arguments of [`Producer`] and
//! [`Consumer`]; where a backend can fail where the local one cannot (asking
//! a remote cluster for the assignment), the trait returns `Result`.
//!
//! ```
//! # fn main() -> logbus::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use std::time::Duration;
//! use logbus::{Broker, ConsumerConfig, OffsetReset, Record, RecordSink, RecordSource, SourceRecord, TopicConfig, TopicPartition};
//!
//! /// Sends three records, reads them back: the same code for any backend.
//! fn round_trip<P: RecordSink, C: RecordSource>(producer: &P, consumer: &mut C) -> logbus::Result<Vec<Vec<u8>>> {
//!     producer.send_batch("events", (0..3).map(|i| Record::new(format!("event {i}"))).collect())?;
//!     consumer.assign(&[TopicPartition::new("events", 0)])?;
//!     let mut values = Vec::new();
//!     while values.len() < 3 {
//!         values.extend(consumer.poll(Duration::from_secs(1))?.iter().map(|r| r.value().to_vec()));
//!     }
//!     Ok(values)
//! }
//!
//! let broker = Broker::open(dir.path())?;
//! broker.create_topic("events", TopicConfig::new(1))?;
//! let mut consumer = broker.consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))?;
//! let values = round_trip(&broker.producer(), &mut consumer)?;
//! assert_eq!(values[2], b"event 2");
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::consumer::Consumer;
use crate::error::Result;
use crate::log::consumed::ConsumedRecord;
use crate::names::TopicPartition;
use crate::producer::Producer;
use crate::record::{Record, RecordMetadata};

/// A consumed record, whichever backend returned it: a local
/// [`ConsumedRecord`] or a `kafka::KafkaRecord`.
pub trait SourceRecord {
    /// The topic.
    fn topic(&self) -> &str;
    /// The partition.
    fn partition(&self) -> u32;
    /// The offset.
    fn offset(&self) -> u64;
    /// The timestamp, milliseconds since the Unix epoch (-1 when the backend has none).
    fn timestamp(&self) -> i64;
    /// The key; `None` for a record sent without one (an empty key is `Some(b"")`).
    fn key(&self) -> Option<&[u8]>;
    /// The value.
    fn value(&self) -> &[u8];
    /// The headers in the order they were sent, duplicates included.
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])>;

    /// Where the record was read.
    fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic(), self.partition())
    }

    /// A copy as a `Record` to send elsewhere: key, value, headers and
    /// timestamp; no explicit partition (add one with `with_partition`).
    fn to_record(&self) -> Record {
        let mut r = Record::new(self.value());
        if self.timestamp() >= 0 {
            r = r.with_timestamp(self.timestamp());
        }
        if let Some(k) = self.key() {
            r = r.with_key(k);
        }
        for (name, value) in self.headers() {
            r = r.with_header(name, value);
        }
        r
    }
}

/// What a producer does: [`Producer`] locally, `kafka::Producer` for a cluster.
///
/// Dyn-compatible: a `Box<dyn RecordSink>` can pick its backend at run time.
pub trait RecordSink {
    /// Sends one record and returns where it landed once the backend holds it
    /// (locally: appended; Kafka: acknowledged by the broker).
    fn send(&self, topic: &str, record: Record) -> Result<RecordMetadata>;
    /// Sends records to one topic, in order. Locally all-or-nothing; on Kafka
    /// records acknowledged before a failure stay written.
    fn send_batch(&self, topic: &str, records: Vec<Record>) -> Result<Vec<RecordMetadata>>;
    /// Returns once everything sent so far is as durable as the backend promises.
    fn flush(&self) -> Result<()>;
}

/// What a consumer does: [`Consumer`] locally, `kafka::Consumer` for a cluster.
///
/// The semantics are Kafka's and the local consumer's: a commit stores the
/// next offset to read, `position` is the next offset `poll` returns.
pub trait RecordSource {
    /// The record type `poll` returns.
    type Record: SourceRecord;

    /// Joins the configured group for these topics (group-managed assignment).
    fn subscribe(&mut self, topics: &[&str]) -> Result<()>;
    /// Reads exactly these partitions, without group management.
    fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()>;
    /// The partitions this consumer reads now, sorted.
    fn assignment(&self) -> Result<Vec<TopicPartition>>;
    /// The next records, waiting up to `timeout` for some (empty on timeout).
    fn poll(&mut self, timeout: Duration) -> Result<Vec<Self::Record>>;
    /// Commits the positions after every record returned so far.
    fn commit(&mut self) -> Result<()>;
    /// Commits explicit offsets, each the next offset to read.
    fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<()>;
    /// The group's committed offset for a partition.
    fn committed(&self, tp: &TopicPartition) -> Result<Option<u64>>;
    /// The next offset `poll` returns for an assigned partition.
    fn position(&self, tp: &TopicPartition) -> Result<u64>;
    /// Moves the position of an assigned partition.
    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()>;
    /// Moves to the first stored offset (all assigned partitions when `tps` is empty).
    fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()>;
    /// Moves to the end (all assigned partitions when `tps` is empty).
    fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()>;
    /// Stops returning records from these partitions until resumed.
    fn pause(&mut self, tps: &[TopicPartition]) -> Result<()>;
    /// Resumes paused partitions.
    fn resume(&mut self, tps: &[TopicPartition]) -> Result<()>;
    /// Leaves the group now.
    fn close(self) -> Result<()>
    where
        Self: Sized;
}

impl<S: RecordSink + ?Sized> RecordSink for &S {
    fn send(&self, topic: &str, record: Record) -> Result<RecordMetadata> {
        (**self).send(topic, record)
    }
    fn send_batch(&self, topic: &str, records: Vec<Record>) -> Result<Vec<RecordMetadata>> {
        (**self).send_batch(topic, records)
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
}

impl<S: RecordSink + ?Sized> RecordSink for Box<S> {
    fn send(&self, topic: &str, record: Record) -> Result<RecordMetadata> {
        (**self).send(topic, record)
    }
    fn send_batch(&self, topic: &str, records: Vec<Record>) -> Result<Vec<RecordMetadata>> {
        (**self).send_batch(topic, records)
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
}

impl SourceRecord for ConsumedRecord {
    fn topic(&self) -> &str {
        ConsumedRecord::topic(self)
    }
    fn partition(&self) -> u32 {
        ConsumedRecord::partition(self)
    }
    fn offset(&self) -> u64 {
        ConsumedRecord::offset(self)
    }
    fn timestamp(&self) -> i64 {
        ConsumedRecord::timestamp(self)
    }
    fn key(&self) -> Option<&[u8]> {
        ConsumedRecord::key(self)
    }
    fn value(&self) -> &[u8] {
        ConsumedRecord::value(self)
    }
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        ConsumedRecord::headers(self)
    }
    fn to_record(&self) -> Record {
        ConsumedRecord::to_record(self)
    }
}

impl RecordSink for Producer {
    fn send(&self, topic: &str, record: Record) -> Result<RecordMetadata> {
        Producer::send(self, topic, record)
    }
    fn send_batch(&self, topic: &str, records: Vec<Record>) -> Result<Vec<RecordMetadata>> {
        Producer::send_batch(self, topic, records)
    }
    fn flush(&self) -> Result<()> {
        Producer::flush(self)
    }
}

impl RecordSource for Consumer {
    type Record = ConsumedRecord;

    fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        Consumer::subscribe(self, topics)
    }
    fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        Consumer::assign(self, partitions)
    }
    fn assignment(&self) -> Result<Vec<TopicPartition>> {
        Ok(Consumer::assignment(self))
    }
    fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumedRecord>> {
        Ok(Consumer::poll(self, timeout)?.into_vec())
    }
    fn commit(&mut self) -> Result<()> {
        Consumer::commit(self)
    }
    fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        Consumer::commit_offsets(self, offsets)
    }
    fn committed(&self, tp: &TopicPartition) -> Result<Option<u64>> {
        Consumer::committed(self, tp)
    }
    fn position(&self, tp: &TopicPartition) -> Result<u64> {
        Consumer::position(self, tp)
    }
    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        Consumer::seek(self, tp, offset)
    }
    fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        Consumer::seek_to_beginning(self, tps)
    }
    fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        Consumer::seek_to_end(self, tps)
    }
    fn pause(&mut self, tps: &[TopicPartition]) -> Result<()> {
        Consumer::pause(self, tps)
    }
    fn resume(&mut self, tps: &[TopicPartition]) -> Result<()> {
        Consumer::resume(self, tps)
    }
    fn close(self) -> Result<()> {
        Consumer::close(self)
    }
}
