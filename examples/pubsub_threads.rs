//! Producer threads and consumer threads exchanging records through one topic.
//!
//! Three producer threads send keyed records to a 4-partition topic; two
//! consumer threads form the group "workers", which splits the partitions
//! between them (2 each). At the end every record was received exactly once
//! and, per key, in the order it was sent.
//!
//! `cargo run --example pubsub_threads` (uses a fresh temp directory).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};

const PRODUCERS: usize = 3;
const PER_PRODUCER: usize = 5_000;
const CONSUMERS: usize = 2;
const TOTAL: usize = PRODUCERS * PER_PRODUCER;

/// What one consumer thread saw.
struct Received {
    partitions: Vec<TopicPartition>,
    /// (partition, offset) of every record, to check for duplicates.
    positions: Vec<(u32, u64)>,
    /// Per key, the sequence numbers in arrival order.
    per_key: BTreeMap<String, Vec<usize>>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let dir = dir.path();
    let broker = Broker::open(dir)?;
    broker.create_topic("jobs", TopicConfig::new(4))?;
    println!("broker at {}; topic 'jobs' with 4 partitions", dir.display());

    // Consumers join first, so that no record is sent before the group has
    // settled on its assignment (2 partitions each).
    let settled = Arc::new(Barrier::new(CONSUMERS + 1));
    let consumed = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|id| {
            let broker = broker.clone();
            let settled = Arc::clone(&settled);
            let consumed = Arc::clone(&consumed);
            thread::spawn(move || consume(id, &broker, &settled, &consumed))
        })
        .collect();
    settled.wait();

    let started = Instant::now();
    let producer = broker.producer();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let producer = producer.clone(); // one Producer shared by all threads
            thread::spawn(move || -> logbus::Result<()> {
                for seq in 0..PER_PRODUCER {
                    let key = format!("producer-{id}/stream-{}", seq % 5);
                    producer.send("jobs", Record::new(format!("{key}#{seq}")).with_key(key))?;
                }
                Ok(())
            })
        })
        .collect();
    for p in producers {
        p.join().map_err(|_| "a producer thread panicked")??;
    }
    println!(
        "{PRODUCERS} producer threads sent {TOTAL} records in {:?}",
        started.elapsed()
    );

    let mut all_positions = HashSet::new();
    let mut per_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut total = 0;
    for (id, c) in consumers.into_iter().enumerate() {
        let got = c.join().map_err(|_| "a consumer thread panicked")??;
        let parts: Vec<String> = got.partitions.iter().map(ToString::to_string).collect();
        println!(
            "consumer {id} owned {parts:?} and received {} records",
            got.positions.len()
        );
        total += got.positions.len();
        all_positions.extend(got.positions);
        for (k, v) in got.per_key {
            per_key.entry(k).or_default().extend(v);
        }
    }
    println!("received {total} records in {:?}", started.elapsed());

    let stored: u64 = (0..4)
        .map(|p| {
            broker
                .topic("jobs")
                .and_then(|t| t.partition(p))
                .map(|p| p.end_offset())
        })
        .sum::<logbus::Result<u64>>()?;
    let in_order = per_key.values().all(|seqs| seqs.windows(2).all(|w| w[0] < w[1]));
    println!(
        "sent {TOTAL}, stored {stored}, received {total}, distinct {}, per-key order kept: {in_order}",
        all_positions.len()
    );
    assert_eq!(stored as usize, TOTAL);
    assert_eq!(total, TOTAL, "every record received exactly once");
    assert_eq!(all_positions.len(), TOTAL, "no record received twice");
    assert!(in_order);
    println!("counts match");
    broker.close()?;
    Ok(())
}

fn consume(id: usize, broker: &Broker, settled: &Barrier, consumed: &AtomicUsize) -> logbus::Result<Received> {
    let config = ConsumerConfig::new()
        .group("workers")
        .offset_reset(OffsetReset::Earliest)
        .auto_commit(true);
    let mut consumer = broker.consumer(config)?;
    consumer.subscribe(&["jobs"])?;
    // Poll until the group gives this member its half of the partitions.
    while consumer.assignment().len() != 4 / CONSUMERS {
        consumer.poll(Duration::from_millis(20))?;
    }
    let partitions = consumer.assignment();
    let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
    println!("consumer {id} joined 'workers' and was assigned {names:?}");
    settled.wait();

    let mut got = Received {
        partitions,
        positions: Vec::new(),
        per_key: BTreeMap::new(),
    };
    while consumed.load(Ordering::Acquire) < TOTAL {
        let records = consumer.poll(Duration::from_millis(100))?;
        for r in &records {
            let value = String::from_utf8_lossy(r.value());
            let (key, seq) = value.rsplit_once('#').unwrap_or((&value, "0"));
            got.per_key
                .entry(key.to_string())
                .or_default()
                .push(seq.parse().unwrap_or(0));
            got.positions.push((r.partition(), r.offset()));
        }
        consumed.fetch_add(records.len(), Ordering::AcqRel);
    }
    consumer.commit()?;
    consumer.close()?;
    Ok(got)
}
