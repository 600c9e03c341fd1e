//! Exactly-once consume -> transform -> produce: a group reads `orders`,
//! writes one `invoices` record per order, and commits its input offsets in
//! the same transaction as its output. Kill it at any point and run it again:
//! every order has exactly one invoice, for read-committed readers.
//!
//! `cargo run --example exactly_once [DIR]` (default: a fresh temp directory).

use std::time::Duration;

use logbus::{
    Broker, BrokerConfig, ConsumerConfig, Durability, IsolationLevel, OffsetReset, Record, TopicConfig, TopicPartition,
};

fn main() -> logbus::Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("logbus-exactly-once-{}", std::process::id())),
    };
    let broker = Broker::open_with(&dir, BrokerConfig::new().durability(Durability::Sync))?;
    for topic in ["orders", "invoices"] {
        if broker.topics().iter().all(|t| t != topic) {
            broker.create_topic(topic, TopicConfig::new(2))?;
        }
    }
    let producer = broker.producer();
    if broker.topic("orders")?.partition(0)?.end_offset() == 0 {
        producer.send_batch(
            "orders",
            (0..10).map(|i| Record::new(format!("order {i}")).with_key(format!("{i}"))),
        )?;
    }

    // The pipeline: poll, transform, send the outputs and the input offsets
    // in one transaction, commit. A crash before the commit loses both the
    // outputs and the offsets, so the inputs are processed again: never
    // twice visible, never lost.
    let mut input = broker.consumer(
        ConsumerConfig::new()
            .group("billing")
            .offset_reset(OffsetReset::Earliest)
            .isolation_level(IsolationLevel::ReadCommitted),
    )?;
    input.subscribe(&["orders"])?;
    loop {
        let records = input.poll(Duration::from_millis(200))?;
        if records.is_empty() {
            break;
        }
        let mut txn = producer.transaction()?;
        let mut next = Vec::new();
        for r in records.iter() {
            let order = String::from_utf8_lossy(r.value());
            txn.send("invoices", Record::new(format!("invoice for {order}")))?;
            next.push((TopicPartition::new(r.topic(), r.partition()), r.offset() + 1));
        }
        txn.send_offsets("billing", &next)?;
        txn.commit()?;
        println!("committed {} invoices with their input offsets", records.len());
    }

    // A read-committed reader sees each invoice exactly once.
    let mut check = broker.consumer(
        ConsumerConfig::new()
            .offset_reset(OffsetReset::Earliest)
            .isolation_level(IsolationLevel::ReadCommitted),
    )?;
    check.assign(&[TopicPartition::new("invoices", 0), TopicPartition::new("invoices", 1)])?;
    let mut invoices = 0;
    loop {
        let rs = check.poll(Duration::from_millis(100))?;
        if rs.is_empty() {
            break;
        }
        invoices += rs.len();
    }
    println!("{invoices} invoices for 10 orders in {}", dir.display());
    assert_eq!(invoices, 10);
    broker.close()
}
