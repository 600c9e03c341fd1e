//! # logbus
//!
//! Kafka's model inside a process: topics split into partitions, each
//! partition an append-only, segmented, checksummed log on local disk;
//! producers that route by key hash; consumers that read by offset, block for
//! new data, and form groups that split partitions and commit offsets that
//! survive restarts. No broker process, no network.
//!
//! ```
//! # fn main() -> logbus::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use std::time::Duration;
//! use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig};
//!
//! let broker = Broker::open(dir.path())?;
//! broker.create_topic("orders", TopicConfig::new(3))?;
//!
//! let producer = broker.producer();
//! producer.send("orders", Record::new("order #1 created").with_key("customer-42"))?;
//!
//! let mut consumer = broker.consumer(
//!     ConsumerConfig::new().group("billing").offset_reset(OffsetReset::Earliest),
//! )?;
//! consumer.subscribe(&["orders"])?;
//! let records = consumer.poll(Duration::from_secs(1))?;
//! for r in &records {
//!     println!("{}/{}@{}: {:?}", r.topic(), r.partition(), r.offset(), r.value());
//! }
//! consumer.commit()?;
//! # assert_eq!(records.len(), 1);
//! # Ok(()) }
//! ```
//!
//! With the `async` feature, `Producer::send_async`, `Consumer::recv` and
//! `Consumer::stream` are futures that run on any executor (the crate
//! depends on none).
//!
//! See the README for concepts, durability modes and what each survives,
//! and `ARCHITECTURE.md` for the design.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)
)]
#![deny(missing_docs)]

mod broker;
#[cfg(feature = "cli")]
pub mod cli;
mod client;
mod codec;
mod compactor;
mod compression;
mod config;
mod consumer;
mod entry_log;
mod error;
pub mod format;
mod fs;
mod group;
pub mod inspect;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod log;
mod names;
mod obs;
mod partitioner;
mod producer;
pub mod properties;
mod record;
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub mod testing;
mod topic;
mod txn;

pub use broker::Broker;
pub use client::{RecordSink, RecordSource, SourceRecord};
#[cfg(feature = "serde")]
pub use codec::Postcard;
pub use codec::{Codec, TypedConsumer, TypedProducer, TypedRecord};
pub use compression::Compression;
pub use config::{
    AssignmentStrategy, BrokerConfig, CleanupPolicy, ConsumerConfig, Durability, IsolationLevel, LogConfig,
    OffsetReset, Partitioner, TimestampType, TopicConfig, WaitStrategy,
};
pub use consumer::{Consumer, ConsumerRecords, RebalanceContext, RebalanceListener};
pub use error::{Error, Result};
pub use group::{GroupDescription, GroupState, MemberDescription, PartitionLag};
pub use log::consumed::{ConsumedRecord, RecordView};
pub use log::{Appended, Log, RecoveryReport};
pub use names::TopicPartition;
pub use partitioner::{murmur2, partition_for_key, xxh64};
pub use producer::Producer;
pub use record::{BorrowedRecord, Record, RecordMetadata};
pub use topic::{validate_topic_name, Partition, ReadProgress, Topic};
pub use txn::Transaction;
