//! The README's "Typed records" section: serde structs in and out through
//! `TypedProducer` / `TypedConsumer` with the `Postcard` codec, a consumer
//! group that waits for its partitions, a typed batch and a lending read.
//!
//! `cargo run --example typed [DIR]` (default: a fresh temp directory).

use std::path::PathBuf;

// README:begin
use std::time::Duration;

use logbus::{Broker, ConsumerConfig, OffsetReset, Postcard, TopicConfig, TypedConsumer, TypedProducer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    cents: u64,
}

fn run(dir: &std::path::Path) -> logbus::Result<()> {
    let broker = Broker::open(dir)?;
    broker.create_topic("orders", TopicConfig::new(3))?;

    // One topic, one value type; clone it to send from other threads.
    let orders = TypedProducer::new(broker.producer(), "orders", Postcard);
    let first = Order {
        id: 1,
        customer: "alice".into(),
        cents: 1250,
    };
    orders.send_keyed(first.customer.clone(), &first)?;
    let more: Vec<Order> = (2..=4)
        .map(|id| Order {
            id,
            customer: "bob".into(),
            cents: id * 100,
        })
        .collect();
    orders.send_batch_keyed(more.iter().map(|o| (o.customer.clone(), o)))?; // all or nothing

    let mut consumer = broker.consumer(
        ConsumerConfig::new()
            .group("billing")
            .offset_reset(OffsetReset::Earliest),
    )?;
    consumer.subscribe(&["orders"])?;
    consumer.wait_for_assignment(Duration::from_secs(5))?; // the group has formed
    let mut billing = TypedConsumer::<Order, _>::new(consumer, Postcard);

    // Owned values...
    for r in billing.poll(Duration::from_secs(1))? {
        println!("{}@{}: {:?}", r.record.partition(), r.record.offset(), r.value);
    }
    // ...or each value lent with its record, nothing allocated per record.
    billing.consumer().seek_to_beginning(&[])?;
    let mut total = 0;
    let seen = billing.poll_with(Duration::from_secs(1), |order, _record| total += order.cents)?;
    println!("{seen} orders, {total} cents");
    billing.consumer().commit()?;
    Ok(())
}
// README:end

fn main() -> logbus::Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("logbus-typed-{}", std::process::id())),
    };
    run(&dir)
}
