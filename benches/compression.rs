//! Compression (features `lz4`, `zstd`) on compressible JSON-like records of
//! 200 bytes: bytes on disk, append, scan and pubsub throughput for each
//! codec, each beside `none` run in the same process (ratios, on a noisy
//! machine). Run: `cargo bench --bench compression --features lz4,zstd`;
//! `LOGBUS_BENCH_RECORDS` sets the record count (default 1,000,000),
//! `LOGBUS_BENCH_ROUNDS` the rounds per figure (default 3, the best is kept).

use std::hint::black_box;
use std::time::{Duration, Instant};

use logbus::{
    BorrowedRecord, Broker, BrokerConfig, Compression, ConsumerConfig, OffsetReset, TopicConfig, TopicPartition,
};

/// Records per `send_batch_borrowed`, as a producer batches before it sends.
const BATCH: usize = 1_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A JSON-like event of exactly 200 bytes.
fn json(i: usize) -> Vec<u8> {
    let mut v = format!(
        "{{\"id\":{i},\"user\":\"user-{:05}\",\"event\":\"{}\",\"amount\":{}.{:02},\"currency\":\"EUR\",\"country\":\"{}\",\"ts\":\"2026-12-07T12:{:02}:{:02}.{:03}Z\"",
        (i * 7919) % 100_000,
        ["page_view", "add_to_cart", "purchase", "refund", "login"][i % 5],
        (i * 31) % 1000,
        i % 100,
        ["DE", "FR", "NL", "IT", "ES", "PL"][i % 6],
        (i / 60_000) % 60,
        (i / 1000) % 60,
        i % 1000
    );
    v.truncate(199);
    while v.len() < 199 {
        v.push(' ');
    }
    v.push('}');
    v.into_bytes()
}

/// Values and keys of every record, built before the clock starts.
fn data(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| (json(i), format!("user-{}", i % 1000).into_bytes()))
        .collect()
}

/// The records lent in batches of [`BATCH`]: sends copy them once, into the segment.
fn batches(data: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<BorrowedRecord<'_>>> {
    data.chunks(BATCH)
        .map(|c| c.iter().map(|(v, k)| BorrowedRecord::new(v).with_key(k)).collect())
        .collect()
}

struct Figures {
    disk_bytes: u64,
    append: Duration,
    scan: Duration,
    pubsub: Duration,
}

fn run(compression: Compression, data: &[Vec<BorrowedRecord<'_>>], n: usize) -> Figures {
    let topic = || {
        TopicConfig::new(1)
            .compression(compression)
            .segment_bytes(256 * 1024 * 1024)
    };
    // Append: send_batch of 1,000 records until all are written.
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::open_with(dir.path(), BrokerConfig::default()).expect("open");
    broker.create_topic("t", topic()).expect("create");
    let p = broker.producer();
    let start = Instant::now();
    for b in data {
        p.send_batch_borrowed("t", b).expect("send");
    }
    let append = start.elapsed();

    // Scan: every record lent by read_with, in chunks of 10,000.
    let part = broker.topic("t").expect("topic").partition(0).expect("partition");
    let start = Instant::now();
    let mut at = 0;
    let mut bytes = 0usize;
    while at < n as u64 {
        at = part
            .read_with(at, 10_000, |r| bytes += black_box(r.value()).len())
            .expect("read");
    }
    let scan = start.elapsed();
    assert_eq!(bytes, n * 200);
    // The batches' bytes (a segment's preallocated room is not counted).
    let disk_bytes = part.size_bytes();
    broker.close().expect("close");

    // Pubsub: one producer thread, one consumer polling as records arrive.
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::open(dir.path()).expect("open");
    broker.create_topic("t", topic()).expect("create");
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(1_000),
        )
        .expect("consumer");
    c.assign(&[TopicPartition::new("t", 0)]).expect("assign");
    let p = broker.producer();
    let start = Instant::now();
    let pubsub = std::thread::scope(|s| {
        s.spawn(|| {
            for b in data {
                p.send_batch_borrowed("t", b).expect("send");
            }
        });
        let mut got = 0;
        while got < n {
            got += c
                .poll_with(Duration::from_secs(10), |r| {
                    black_box(r.value());
                })
                .expect("poll");
        }
        start.elapsed()
    });
    drop(c);
    broker.close().expect("close");
    Figures {
        disk_bytes,
        append,
        scan,
        pubsub,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, tiny.
    let quick = std::env::args().all(|a| a != "--bench");
    let n = if quick {
        5_000
    } else {
        env("LOGBUS_BENCH_RECORDS", 1_000_000)
    };
    let rounds = if quick { 1 } else { env("LOGBUS_BENCH_ROUNDS", 3) };
    let data = data(n);
    let data = batches(&data);
    println!("compression: {n} JSON-like records of 200 bytes, send_batch_borrowed of {BATCH}, best of {rounds}");
    println!(
        "{:<6} {:>12} {:>7} {:>13} {:>13} {:>13}",
        "codec", "disk bytes", "ratio", "append rec/s", "scan rec/s", "pubsub rec/s"
    );
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let mut base: Option<(f64, f64, f64)> = None;
    for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let mut best: Option<Figures> = None;
        for _ in 0..rounds {
            let f = run(c, &data, n);
            best = Some(match best {
                None => f,
                Some(b) => Figures {
                    disk_bytes: f.disk_bytes,
                    append: b.append.min(f.append),
                    scan: b.scan.min(f.scan),
                    pubsub: b.pubsub.min(f.pubsub),
                },
            });
        }
        let Some(f) = best else { continue };
        let (a, s, p) = (rate(f.append), rate(f.scan), rate(f.pubsub));
        let (ba, bs, bp) = *base.get_or_insert((a, s, p));
        println!(
            "{:<6} {:>12} {:>6.2}x {:>9.2}M {:>4.2}x {:>8.2}M {:>4.2}x {:>8.2}M {:>4.2}x",
            c.name(),
            f.disk_bytes,
            (n * 200) as f64 / f.disk_bytes as f64,
            a / 1e6,
            a / ba,
            s / 1e6,
            s / bs,
            p / 1e6,
            p / bp
        );
    }
}
