//! `TopicPartition` and `ConsumerRecords`.

use std::fmt;

use crate::record::ConsumedRecord;

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

/// The records one `poll` returned, in partition order (each partition's records in offset order).
#[derive(Debug, Clone, Default)]
pub struct ConsumerRecords {
    pub(crate) records: Vec<ConsumedRecord>,
}

impl ConsumerRecords {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the poll timed out without records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Iterates the records.
    pub fn iter(&self) -> impl Iterator<Item = &ConsumedRecord> {
        self.records.iter()
    }

    /// The records of one partition.
    pub fn records(&self, tp: &TopicPartition) -> impl Iterator<Item = &ConsumedRecord> {
        let tp = tp.clone();
        self.records
            .iter()
            .filter(move |r| r.partition() == tp.partition && r.topic() == tp.topic)
    }

    /// The records as a vector.
    pub fn into_vec(self) -> Vec<ConsumedRecord> {
        self.records
    }
}

impl IntoIterator for ConsumerRecords {
    type Item = ConsumedRecord;
    type IntoIter = std::vec::IntoIter<ConsumedRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConsumerRecords {
    type Item = &'a ConsumedRecord;
    type IntoIter = std::slice::Iter<'a, ConsumedRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}
