//! Reading what transactions made visible.

use std::time::Duration;

use logbus::{Broker, ConsumerConfig, IsolationLevel, OffsetReset, TopicPartition};

use super::Deadline;

/// Every record of `topic` a read-committed consumer returns, read from the
/// start of each partition to its last stable offset: `(partition, offset,
/// value)`. `label` names the caller in failure messages.
pub fn read_committed(broker: &Broker, topic: &str, label: &str) -> Vec<(u32, u64, String)> {
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
    let deadline = Deadline::new(Duration::from_secs(30), format!("{label}: reading read-committed"));
    let mut out = Vec::new();
    while !tps
        .iter()
        .all(|tp| c.position(tp).unwrap() >= t.partition(tp.partition).unwrap().log().last_stable_offset())
    {
        deadline.check();
        let records = c
            .poll(Duration::from_millis(5))
            .unwrap_or_else(|e| panic!("{label}: poll: {e}"));
        for r in records.iter() {
            out.push((
                r.partition(),
                r.offset(),
                String::from_utf8(r.value().to_vec()).unwrap(),
            ));
        }
    }
    out
}
