//! Ingest throughput (Kafka → local directory) against an rdkafka consumer
//! reading the same records alone, in interleaved rounds on one tansu broker
//! on loopback, 100-byte records. Prints each round and the median ratio.
//! Each side is timed twice: from its start (connecting, creating the local
//! topic) to its last record (consumed, or stored locally), the rate a
//! catch-up sees; and from its first record to its last, the steady rate.
//!
//! `cargo bench --features kafka --bench kafka_ingest`
//!
//! `KAFKA_INGEST_RECORDS=N` (a multiple of 10 000; default 300 000) sets the
//! record count: longer windows are less at the mercy of a busy machine's
//! scheduler.

#[path = "../tests/kafka/broker.rs"]
mod broker;
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use logbus::kafka::{Admin, Ingest, Producer};
use logbus::{Broker, Record};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The record count: `KAFKA_INGEST_RECORDS`, else 300 000.
fn records() -> usize {
    std::env::var("KAFKA_INGEST_RECORDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n >= 10_000 && n % 10_000 == 0)
        .unwrap_or(300_000)
}
const PARTITIONS: u32 = 3;
const ROUNDS: usize = 5;
const TOPIC: &str = "bench";

fn main() {
    let count = records();
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
    for chunk in 0..count / 10_000 {
        let batch = (0..10_000u32).map(|i| Record::new(value.clone()).with_partition((chunk as u32 + i) % PARTITIONS));
        producer.send_batch(TOPIC, batch).unwrap();
    }
    println!(
        "produced {count} records of 100 bytes in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let (mut catch_up, mut steady, mut steady_warm) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let base = rdkafka_alone(&bootstrap, round, count, false);
        let warm = rdkafka_alone(&bootstrap, round, count, true);
        let ingest = ingest(&bootstrap, count);
        let ratio = (ingest.0 / base.0, ingest.1 / base.1, ingest.1 / warm.1);
        println!(
            "round {round}: start to last record: rdkafka {:>9.0} rec/s, ingest {:>9.0} rec/s, ratio {:.2}; \
             first to last: rdkafka {:>9.0} rec/s, ingest {:>9.0} rec/s, ratio {:.2}; \
             rdkafka set up like the ingest {:>9.0} rec/s, ratio {:.2}",
            base.0, ingest.0, ratio.0, base.1, ingest.1, ratio.1, warm.1, ratio.2
        );
        catch_up.push(ratio.0);
        steady.push(ratio.1);
        steady_warm.push(ratio.2);
    }
    catch_up.sort_by(f64::total_cmp);
    steady.sort_by(f64::total_cmp);
    steady_warm.sort_by(f64::total_cmp);
    println!(
        "kafka_ingest: median ratio ingest / rdkafka consumer: start to last record {:.2}, first to last {:.2}; \
         first to last against rdkafka set up like the ingest {:.2} ({ROUNDS} rounds, {count} records of 100 bytes)",
        catch_up[ROUNDS / 2],
        steady[ROUNDS / 2],
        steady_warm[ROUNDS / 2]
    );
}

/// CPU time this process has used (every thread: librdkafka's included;
/// tansu is another process).
#[allow(unsafe_code)]
fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of each live thread of this process whose name starts with
/// `prefix` (from `/proc/self/task/*/schedstat`, nanoseconds on a CPU).
fn threads_cpu(prefix: &str) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let path = task.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        let comm = comm.trim().to_string();
        if !comm.starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        if let Some(ns) = stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            out.push((comm, Duration::from_nanos(ns)));
        }
    }
    out.sort();
    out
}

/// Records per second of a plain rdkafka consumer reading every record
/// from the beginning: (start to last record, first to last).
///
/// `like_ingest`: the consumer is set up as `kafka::Ingest` sets up its own
/// (`fetch.queue.backoff.ms=10`, and the cluster's metadata fetched on its
/// connection before assigning), so both start fetching at the same point
/// and their first-to-last windows both include fetching. Without it the
/// consumer's first record arrives ~0.5 s later, by when librdkafka has
/// prefetched much of the topic, and its first-to-last window is mostly a
/// drain of its in-memory queue.
fn rdkafka_alone(bootstrap: &str, round: usize, count: usize, like_ingest: bool) -> (f64, f64) {
    let t = Instant::now();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-baseline-{round}-{like_ingest}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("log_level", "0");
    if like_ingest {
        config.set("fetch.queue.backoff.ms", "10");
    }
    let consumer: BaseConsumer = config.create().unwrap();
    if like_ingest {
        consumer.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p as i32, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut n = 0;
    let mut bytes = 0;
    let mut first = None;
    let mut cpu0 = Duration::ZERO;
    while n < count {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(|| {
                cpu0 = process_cpu();
                Instant::now()
            });
            bytes += m.unwrap().payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    let (steady, cpu) = (first.unwrap().elapsed(), process_cpu() - cpu0);
    assert_eq!(bytes, count * 100);
    println!(
        "  rdkafka consumer (like ingest: {like_ingest}): first to last {:.3} s, process CPU {:.3} s ({:.2} us/record)",
        steady.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / count as f64
    );
    // The first record's own time is not in the span: count the others.
    (
        count as f64 / t.elapsed().as_secs_f64(),
        (count - 1) as f64 / steady.as_secs_f64(),
    )
}

/// Records per second of `kafka::Ingest` into a fresh directory: (start
/// to last record stored, first to last).
fn ingest(bootstrap: &str, count: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    let t = Instant::now();
    let running = Ingest::builder(bootstrap)
        .topic(TOPIC)
        .assign_all(true)
        .start(&local)
        .unwrap();
    let mut first = None;
    let mut stored = 0;
    while stored < count as u64 {
        // 1 ms: fine enough that the window's ends are found within ~1% of a
        // 0.15 s window, coarse enough that the waiting thread takes no CPU
        // worth counting from the ingest.
        std::thread::sleep(Duration::from_millis(1));
        stored = running.status().ingested();
        if stored > 0 {
            first.get_or_insert_with(|| (Instant::now(), stored, process_cpu()));
        }
    }
    let (t0, at_t0, cpu0) = first.unwrap();
    let (total, steady, cpu) = (t.elapsed(), t0.elapsed(), process_cpu() - cpu0);
    let threads: Vec<String> = threads_cpu("logbus-ingest")
        .iter()
        .map(|(name, d)| format!("{name} {:.3} s", d.as_secs_f64()))
        .collect();
    println!(
        "  ingest: first to last {:.3} s, process CPU {:.3} s ({:.2} us/record); since start: {}",
        steady.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / (count as u64 - at_t0) as f64,
        threads.join(", ")
    );
    let report = running.stop().unwrap();
    assert_eq!(report.ingested, count as u64);
    local.close().unwrap();
    (
        count as f64 / total.as_secs_f64(),
        (count as u64 - at_t0) as f64 / steady.as_secs_f64(),
    )
}
