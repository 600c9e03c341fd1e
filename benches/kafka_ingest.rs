//! Ingest throughput (Kafka → local directory) against an rdkafka consumer
//! reading the same records alone, in interleaved rounds on one tansu broker
//! on loopback, 100-byte records. Prints each round and the median ratio.
//!
//! `cargo bench --features kafka --bench kafka_ingest`

#[allow(dead_code)]
#[path = "../tests/kafka/broker.rs"]
mod broker;

use std::time::{Duration, Instant};

use logbus::kafka::{Admin, Ingest, Producer};
use logbus::{Broker, Record};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const RECORDS: usize = 200_000;
const PARTITIONS: u32 = 3;
const ROUNDS: usize = 5;
const TOPIC: &str = "bench";

fn main() {
    let tansu = broker::Tansu::start();
    let bootstrap = tansu.bootstrap();
    Admin::builder(&bootstrap)
        .build()
        .unwrap()
        .create_topic(TOPIC, PARTITIONS)
        .unwrap();
    let producer = Producer::builder(&bootstrap).set("linger.ms", "5").build().unwrap();
    let value = vec![b'x'; 100];
    let t = Instant::now();
    for chunk in 0..RECORDS / 10_000 {
        let batch = (0..10_000u32).map(|i| Record::new(value.clone()).with_partition((chunk as u32 + i) % PARTITIONS));
        producer.send_batch(TOPIC, batch).unwrap();
    }
    println!(
        "produced {RECORDS} records of 100 bytes in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let base = rdkafka_alone(&bootstrap, round);
        let ingest = ingest(&bootstrap);
        let ratio = ingest / base;
        println!(
            "round {round}: rdkafka consumer alone {:>9.0} rec/s, ingest {:>9.0} rec/s, ratio {ratio:.2}",
            base, ingest
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "kafka_ingest: median ratio ingest / rdkafka consumer = {:.2} ({ROUNDS} rounds, {RECORDS} records of 100 bytes)",
        ratios[ROUNDS / 2]
    );
}

/// Records per second of a plain rdkafka consumer reading every record from the beginning.
fn rdkafka_alone(bootstrap: &str, round: usize) -> f64 {
    let t = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-baseline-{round}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("log_level", "0")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p as i32, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut n = 0;
    let mut bytes = 0;
    while n < RECORDS {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            bytes += m.unwrap().payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    assert_eq!(bytes, RECORDS * 100);
    RECORDS as f64 / t.elapsed().as_secs_f64()
}

/// Records per second of `kafka::Ingest` into a fresh directory, start to last record stored.
fn ingest(bootstrap: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    let t = Instant::now();
    let running = Ingest::builder(bootstrap)
        .topic(TOPIC)
        .assign_all(true)
        .start(&local)
        .unwrap();
    while running.status().ingested() < RECORDS as u64 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = t.elapsed();
    let report = running.stop().unwrap();
    assert_eq!(report.ingested, RECORDS as u64);
    local.close().unwrap();
    RECORDS as f64 / elapsed.as_secs_f64()
}
