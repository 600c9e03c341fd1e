//! The README's "Async" section: durable sends that share fsyncs, a
//! consumer that awaits records, and a stream of them, here on tokio (any
//! executor works: the library depends on none).
//!
//! `cargo run --example async_quickstart --features async [DIR]` (default: a
//! fresh temp directory).

use std::path::PathBuf;

// README:begin
use futures_lite::StreamExt; // or futures::StreamExt, tokio_stream::StreamExt
use logbus::{Broker, BrokerConfig, ConsumerConfig, Durability, OffsetReset, Record, TopicConfig};

async fn run(dir: &std::path::Path) -> logbus::Result<()> {
    let broker = Broker::open_with(dir, BrokerConfig::default().durability(Durability::Sync))?;
    broker.create_topic("orders", TopicConfig::new(3))?;

    // Each send is appended in the call, in call order; its future resolves
    // after the fsync that covers it. The 1,000 in flight share a few fsyncs.
    let producer = broker.producer();
    let sends: Vec<_> = (0..1000)
        .map(|i| producer.send_async("orders", Record::new(format!("order #{i}"))))
        .collect();
    for send in sends {
        send.await?;
    }

    let mut consumer = broker.consumer(
        ConsumerConfig::new()
            .group("billing")
            .offset_reset(OffsetReset::Earliest),
    )?;
    consumer.subscribe(&["orders"])?;
    // Waits for records without a thread; cancel-safe (a `select!` may drop it).
    let first = consumer.recv().await?;
    let mut seen = first.len();

    // Or one record at a time. What a dropped stream read and did not yield
    // is read again later.
    {
        let mut stream = std::pin::pin!(consumer.stream());
        while seen < 1000 {
            let Some(record) = stream.next().await else { break };
            let record = record?;
            seen += 1;
            if seen == 1000 {
                println!("last: {}/{}@{}", record.topic(), record.partition(), record.offset());
            }
        }
    }
    consumer.commit()?;
    println!("{seen} orders received");
    Ok(())
}
// README:end

#[tokio::main]
async fn main() -> logbus::Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("logbus-async-{}", std::process::id())),
    };
    run(&dir).await
}
