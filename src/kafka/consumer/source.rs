//! The `RecordSource` impl of `kafka::Consumer`: the trait forwards to the inherent methods.

use std::time::Duration;

use super::Consumer;
use crate::client::RecordSource;
use crate::error::Result;
use crate::kafka::record::KafkaRecord;
use crate::names::TopicPartition;

impl RecordSource for Consumer {
    type Record = KafkaRecord;

    fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        Consumer::subscribe(self, topics)
    }
    fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        Consumer::assign(self, partitions)
    }
    fn assignment(&self) -> Result<Vec<TopicPartition>> {
        Consumer::assignment(self)
    }
    fn poll(&mut self, timeout: Duration) -> Result<Vec<KafkaRecord>> {
        Consumer::poll(self, timeout)
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
