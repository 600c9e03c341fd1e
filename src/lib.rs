//! logbus: Kafka's model inside a process.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod config;
mod error;
pub mod format;
mod fs;
pub mod log;
mod notify;
mod record;

pub use config::{
    AssignmentStrategy, BrokerConfig, ConsumerConfig, Durability, LogConfig, OffsetReset, Partitioner, TimestampType,
    TopicConfig,
};
pub use error::{Error, Result};
pub use record::{ConsumedRecord, Record, RecordMetadata};
