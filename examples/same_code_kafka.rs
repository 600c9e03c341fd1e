//! One generic function, two backends: a local logbus directory and a Kafka
//! cluster, through the `RecordSink` / `RecordSource` / `SourceRecord` traits.
//!
//! `cargo run --example same_code_kafka --features kafka -- --bootstrap-server HOST:PORT`
//! (or `LOGBUS_BOOTSTRAP_SERVERS=HOST:PORT`). Without a cluster it runs the
//! local half only. On the cluster it creates topic `same-code-orders` (one
//! partition) if it is missing and commits as group `same-code-example`.

use std::time::{Duration, Instant};

use logbus::{
    Broker, ConsumerConfig, OffsetReset, Record, RecordSink, RecordSource, SourceRecord, TopicConfig, TopicPartition,
};

/// The topic both backends use.
pub const TOPIC: &str = "same-code-orders";
/// The group both consumers commit as.
pub const GROUP: &str = "same-code-example";

/// Key, value, headers and timestamp of one record read back.
pub type ReadBack = (Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>, i64);

/// What `replay_orders` saw, comparable across backends.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    /// (key, value, headers, timestamp) of the records read back, in order.
    pub records: Vec<ReadBack>,
    /// The committed offset after the batch, relative to the batch's first offset.
    pub committed_after: Option<u64>,
    /// The value read again after seeking back to the third record.
    pub replayed: Vec<u8>,
}

/// Sends five orders to partition 0, reads them back from where they landed,
/// commits, then seeks back to the third and reads it again. The same code
/// for a local broker and a Kafka cluster.
pub fn replay_orders<P: RecordSink, C: RecordSource>(producer: &P, consumer: &mut C) -> logbus::Result<Seen> {
    let orders = (0..5).map(|i| {
        Record::new(format!("order #{i}"))
            .with_key(format!("customer-{}", i % 2))
            .with_header("seq", i.to_string())
            .with_timestamp(1_700_000_000_000 + i)
            .with_partition(0)
    });
    let sent = producer.send_batch(TOPIC, orders.collect())?;
    let first = sent.first().map_or(0, |m| m.offset());

    let tp = TopicPartition::new(TOPIC, 0);
    consumer.assign(std::slice::from_ref(&tp))?;
    consumer.seek(&tp, first)?;
    let read = poll_exactly(consumer, sent.len())?;
    consumer.commit()?;
    let committed_after = consumer.committed(&tp)?.map(|o| o - first);

    consumer.seek(&tp, first + 2)?;
    let replayed = poll_exactly(consumer, 1)?.remove(0).value().to_vec();

    let records = read
        .iter()
        .map(|r| {
            let headers = r.headers().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
            (r.key().map(<[u8]>::to_vec), r.value().to_vec(), headers, r.timestamp())
        })
        .collect();
    Ok(Seen {
        records,
        committed_after,
        replayed,
    })
}

/// Polls until `n` records came (at most 30 s), keeping only the first `n`.
fn poll_exactly<C: RecordSource>(consumer: &mut C, n: usize) -> logbus::Result<Vec<C::Record>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(500))?);
    }
    out.truncate(n);
    Ok(out)
}

/// The local half: a fresh directory.
pub fn run_local(dir: &std::path::Path) -> logbus::Result<Seen> {
    let broker = Broker::open(dir)?;
    broker.create_topic(TOPIC, TopicConfig::new(1))?;
    let mut consumer = broker.consumer(ConsumerConfig::new().group(GROUP).offset_reset(OffsetReset::Earliest))?;
    replay_orders(&broker.producer(), &mut consumer)
}

/// The Kafka half: the cluster at `bootstrap`.
pub fn run_kafka(bootstrap: &str) -> logbus::Result<Seen> {
    use logbus::kafka;
    let admin = kafka::Admin::builder(bootstrap).build()?;
    if admin.partition_count(TOPIC)?.is_none() {
        admin.create_topic(TOPIC, 1)?;
    }
    let producer = kafka::Producer::builder(bootstrap).build()?;
    let mut consumer = kafka::Consumer::builder(bootstrap)
        .group(GROUP)
        .offset_reset(OffsetReset::Earliest)
        .build()?;
    replay_orders(&producer, &mut consumer)
}

fn show(backend: &str, seen: &Seen) {
    println!("{backend}:");
    for (key, value, headers, ts) in &seen.records {
        let key = key.as_deref().map(String::from_utf8_lossy);
        let headers: Vec<_> = headers
            .iter()
            .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v)))
            .collect();
        println!(
            "  key={key:?} value={:?} headers={headers:?} ts={ts}",
            String::from_utf8_lossy(value)
        );
    }
    println!(
        "  committed after the batch: {:?}; read again after seeking back: {:?}",
        seen.committed_after,
        String::from_utf8_lossy(&seen.replayed)
    );
}

fn main() -> logbus::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args
        .iter()
        .position(|a| a == "--bootstrap-server")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("LOGBUS_BOOTSTRAP_SERVERS").ok());

    let dir = std::env::temp_dir().join(format!("logbus-same-code-{}", std::process::id()));
    let local = run_local(&dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    show("local directory", &local);

    let Some(bootstrap) = bootstrap else {
        println!(
            "no cluster given: pass --bootstrap-server HOST:PORT (or LOGBUS_BOOTSTRAP_SERVERS) to run the Kafka half"
        );
        return Ok(());
    };
    let remote = run_kafka(&bootstrap)?;
    show(&format!("Kafka at {bootstrap}"), &remote);
    println!(
        "{}",
        if remote == local {
            "same results on both backends"
        } else {
            "the backends differ"
        }
    );
    Ok(())
}
