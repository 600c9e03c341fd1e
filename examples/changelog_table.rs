//! A key-value table kept in a compacted topic (a changelog): the service
//! writes every change to the topic and applies it to its in-memory table;
//! at startup it rebuilds the table by reading the topic from the start.
//! Compaction keeps the topic's size following the number of keys, not the
//! number of updates, so the restore stays short however long the service runs.
//!
//! `cargo run --example changelog_table [DIR]` (default: a fresh temp
//! directory). Run it twice on the same DIR: the second run restores what
//! the first one wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use logbus::{Broker, CleanupPolicy, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};

const TOPIC: &str = "prices-changelog";

/// The service's state: the table, and the broker its changelog lives in.
struct PriceTable {
    broker: Broker,
    table: BTreeMap<String, String>,
}

impl PriceTable {
    /// Opens the changelog (creating it compacted) and restores the table
    /// from it: the latest record of each key wins; a tombstone deletes.
    fn open(broker: Broker) -> logbus::Result<PriceTable> {
        if broker.topics().iter().all(|t| t != TOPIC) {
            let config = TopicConfig::new(1)
                .cleanup_policy(CleanupPolicy::Compact)
                // Small segments so this example shows compaction at work.
                .segment_bytes(16 * 1024)
                // Deletes stay visible for an hour to consumers that lag behind.
                .delete_retention_ms(3_600_000);
            broker.create_topic(TOPIC, config)?;
        }
        let mut consumer = broker.consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))?;
        let tp = TopicPartition::new(TOPIC, 0);
        consumer.assign(std::slice::from_ref(&tp))?;
        let end = broker.topic(TOPIC)?.partition(0)?.end_offset();
        let mut table = BTreeMap::new();
        let mut read = 0;
        // Offsets removed by compaction are skipped: read until the position reaches the end.
        while consumer.position(&tp)? < end {
            for r in consumer.poll(Duration::from_millis(100))?.iter() {
                read += 1;
                let key = String::from_utf8_lossy(r.key().unwrap_or_default()).into_owned();
                if r.is_tombstone() {
                    table.remove(&key);
                } else {
                    table.insert(key, String::from_utf8_lossy(r.value()).into_owned());
                }
            }
        }
        println!(
            "restored {} keys from {read} records (offsets 0..{end}: compaction removed {})",
            table.len(),
            end - read
        );
        Ok(PriceTable { broker, table })
    }

    /// Writes the change to the changelog first, then applies it.
    fn set(&mut self, item: &str, price: &str) -> logbus::Result<()> {
        self.broker.producer().send(TOPIC, Record::new(price).with_key(item))?;
        self.table.insert(item.to_string(), price.to_string());
        Ok(())
    }

    /// A delete is a tombstone: compaction later drops every record of the key.
    fn delete(&mut self, item: &str) -> logbus::Result<()> {
        self.broker.producer().send(TOPIC, Record::tombstone(item))?;
        self.table.remove(item);
        Ok(())
    }
}

fn main() -> logbus::Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("logbus-changelog-{}", std::process::id())),
    };
    let mut prices = PriceTable::open(Broker::open(&dir)?)?;

    // A day of trading: 20 items, 5000 price updates, one item delisted.
    for i in 0..5000u32 {
        let item = format!("item-{:02}", i % 20);
        prices.set(&item, &format!("{}.{:02}", 100 + i % 37, i % 100))?;
    }
    prices.delete("item-07")?;
    let topic = prices.broker.topic(TOPIC)?;
    let before = topic.size_bytes();
    // The background compactor would get to it; run a pass now to show it.
    topic.compact()?;
    println!(
        "changelog: {before} bytes before compaction, {} after",
        topic.size_bytes()
    );
    let snapshot = prices.table.clone();
    prices.broker.close()?;

    // "Restart": the table comes back from the compacted changelog.
    let restored = PriceTable::open(Broker::open(&dir)?)?;
    assert_eq!(restored.table, snapshot, "the restored table differs");
    assert!(!restored.table.contains_key("item-07"));
    println!(
        "item-03 costs {}; {} items listed",
        restored.table["item-03"],
        restored.table.len()
    );
    restored.broker.close()?;
    Ok(())
}
