//! A client for a real Kafka cluster with logbus's producer and consumer
//! shape (cargo feature `kafka`): code written against [`crate::Producer`]
//! and [`crate::Consumer`] runs against a cluster through [`Producer`] and
//! [`Consumer`], or through the [`RecordSink`](crate::RecordSink) and
//! [`RecordSource`](crate::RecordSource) traits both implement.
//!
//! Built on librdkafka (compiled from source with OpenSSL, so
//! `security.protocol=SSL` and `SASL_SSL` work; pass any librdkafka setting
//! with `.set(key, value)`). Errors are [`Error::Kafka`](crate::Error::Kafka),
//! saying what was attempted against which cluster and what to do.
//!
//! ```no_run
//! # fn main() -> logbus::Result<()> {
//! use std::time::Duration;
//! use logbus::{kafka, OffsetReset, Record, TopicPartition};
//!
//! let producer = kafka::Producer::builder("localhost:9092").build()?;
//! let md = producer.send("orders", Record::new("order #1").with_key("customer-42"))?;
//!
//! let mut consumer = kafka::Consumer::builder("localhost:9092")
//!     .group("billing")
//!     .offset_reset(OffsetReset::Earliest)
//!     .build()?;
//! consumer.assign(&[TopicPartition::new("orders", md.partition())])?;
//! for r in consumer.poll(Duration::from_secs(5))? {
//!     println!("{}/{}@{}: {:?}", r.topic(), r.partition(), r.offset(), r.value());
//! }
//! consumer.commit()?;
//! # Ok(()) }
//! ```
//!
//! Differences from the local types, all Kafka's: `send_batch` is not
//! all-or-nothing; keyless records go to a random partition; consumed
//! records are [`KafkaRecord`]s (owned copies) rather than `ConsumedRecord`s.

mod admin;
mod consumer;
mod context;
mod digits;
mod error;
pub mod ingest;
pub mod mirror;
mod producer;
mod record;
mod settings;

pub use admin::{Admin, AdminBuilder};
pub use consumer::{Consumer, ConsumerBuilder};
pub use ingest::{Ingest, IngestBuilder, IngestReport, IngestStatus, KafkaOrigin};
pub use mirror::{Mirror, MirrorBuilder, MirrorStatus, OnGap};
pub use producer::{Producer, ProducerBuilder};
/// librdkafka's error types, as found in [`Error::Kafka`](crate::Error::Kafka).
pub use rdkafka::error::{KafkaError, RDKafkaErrorCode};
pub use record::KafkaRecord;

/// The librdkafka error code inside an [`Error::Kafka`](crate::Error::Kafka),
/// for code that reacts to one (`TopicAlreadyExists`, `MessageTimedOut`...);
/// `None` for every other error.
pub fn error_code(e: &crate::Error) -> Option<RDKafkaErrorCode> {
    match e {
        crate::Error::Kafka { source, .. } => error::code(source),
        _ => None,
    }
}
