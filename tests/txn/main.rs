//! Transactions (issue 15): atomic appends across partitions, read_committed,
//! the last stable offset, offsets that commit with the output, crashes.

#[path = "../common/mod.rs"]
mod common;

mod concurrency;
mod kill_loop;
mod model;
mod recovery;
mod visibility;

use std::time::Duration;

use logbus::{Broker, ConsumerConfig, IsolationLevel, OffsetReset, TopicPartition};

/// Every record of `topic` a read-committed consumer returns, read from the
/// start of each partition to its last stable offset: `(partition, offset, value)`.
pub fn read_committed(broker: &Broker, topic: &str) -> Vec<(u32, u64, String)> {
    let t = broker.topic(topic).unwrap();
    let tps: Vec<TopicPartition> = (0..t.partition_count())
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .isolation_level(IsolationLevel::ReadCommitted),
        )
        .unwrap();
    c.assign(&tps).unwrap();
    let deadline = common::Deadline::new(Duration::from_secs(30), "reading a topic read-committed");
    let mut out = Vec::new();
    loop {
        let done = tps
            .iter()
            .all(|tp| c.position(tp).unwrap() >= t.partition(tp.partition).unwrap().log().last_stable_offset());
        if done {
            return out;
        }
        deadline.check();
        for r in c.poll(Duration::from_millis(5)).unwrap().iter() {
            out.push((
                r.partition(),
                r.offset(),
                String::from_utf8(r.value().to_vec()).unwrap(),
            ));
        }
    }
}
