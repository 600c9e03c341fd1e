//! The README's first command: create a topic, produce keyed records,
//! consume them as a group, commit, and see the commit survive a reopen.
//!
//! `cargo run --example quickstart [DIR]` (default: a fresh temp directory).

use std::time::Duration;

use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};

fn main() -> logbus::Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("logbus-quickstart-{}", std::process::id())),
    };
    let broker = Broker::open(&dir)?;
    if broker.topics().iter().all(|t| t != "orders") {
        broker.create_topic("orders", TopicConfig::new(3))?;
    }

    // Producers route by key: every event of one customer lands in one
    // partition, in order.
    let producer = broker.producer();
    for (customer, event) in [
        ("alice", "created"),
        ("bob", "created"),
        ("alice", "paid"),
        ("alice", "shipped"),
    ] {
        let md = producer.send("orders", Record::new(format!("{customer}: {event}")).with_key(customer))?;
        println!(
            "sent {customer:>5}/{event:<8} -> partition {} offset {}",
            md.partition(),
            md.offset()
        );
    }

    // A consumer group reads from the beginning and commits what it read.
    let config = ConsumerConfig::new()
        .group("billing")
        .offset_reset(OffsetReset::Earliest);
    let mut consumer = broker.consumer(config.clone())?;
    consumer.subscribe(&["orders"])?;
    let records = consumer.poll(Duration::from_secs(1))?;
    for r in &records {
        println!(
            "got  partition {} offset {}: {}",
            r.partition(),
            r.offset(),
            String::from_utf8_lossy(r.value())
        );
    }
    consumer.commit()?;
    consumer.close()?;
    broker.close()?;

    // After a restart, the group resumes after its commit: nothing new to read.
    let broker = Broker::open(&dir)?;
    let mut consumer = broker.consumer(config)?;
    consumer.subscribe(&["orders"])?;
    let again = consumer.poll(Duration::from_millis(200))?;
    let committed: Vec<Option<u64>> = (0..3)
        .map(|p| consumer.committed(&TopicPartition::new("orders", p)))
        .collect::<logbus::Result<_>>()?;
    println!(
        "after reopen: {} new records, committed offsets {committed:?}",
        again.len()
    );
    consumer.close()?;
    broker.close()?;
    Ok(())
}
