//! Names shared by the layers above the log: [`TopicPartition`], which
//! consumers, groups and the offsets store all speak. A leaf module: it
//! imports nothing from the crate, so any layer may use it.

use std::fmt;

/// A topic name and partition number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition number.
    pub partition: u32,
}

impl TopicPartition {
    /// A topic-partition pair.
    pub fn new(topic: impl Into<String>, partition: u32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
