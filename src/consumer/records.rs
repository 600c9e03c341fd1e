//! `ConsumerRecords`, what a poll returns.

use crate::log::consumed::ConsumedRecord;
use crate::names::TopicPartition;

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
