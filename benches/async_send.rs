//! Durable sends under `Durability::Sync`, one record per send, each
//! acknowledged after the `fdatasync` that covers it, against baselines run
//! in the same process (BENCHMARKS.md, "async"):
//! - `async_1000_in_flight_tokio` / `_smol`: 1,000 tasks, each awaiting
//!   `Producer::send_async` in a loop, so 1,000 sends are always in flight;
//! - `blocking_8_threads`: 8 threads calling `Producer::send` (the `durable`
//!   scenario of the comparison harness);
//! - `baseline_write_fdatasync`: one `write(2)` + `fdatasync` per record,
//!   appending (the harness's baseline: each sync also writes the file size);
//! - `baseline_overwrite_fdatasync`: one `pwrite(2)` + `fdatasync` per record
//!   into a file written full of zeros beforehand, as logbus's preallocated
//!   segments are (no size or block allocation to sync: the harder baseline).
//!
//! Run with `cargo bench --features async --bench async_send`.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logbus::{Broker, BrokerConfig, Durability, Producer, Record, TopicConfig};

const VALUE: usize = 100;
const IN_FLIGHT: u64 = 1000;
const THREADS: u64 = 8;

fn sync_broker(dir: &std::path::Path) -> Broker {
    let broker = Broker::open_with(dir, BrokerConfig::default().durability(Durability::Sync)).unwrap();
    broker
        .create_topic("t", TopicConfig::new(1).segment_bytes(1 << 30))
        .unwrap();
    broker
}

/// `total` sends split over `tasks` tasks; what each task sends.
fn shares(total: u64, tasks: u64) -> impl Iterator<Item = u64> {
    (0..tasks).map(move |i| total / tasks + u64::from(i < total % tasks))
}

async fn sender(producer: Arc<Producer>, n: u64) {
    for _ in 0..n {
        producer.send_async("t", Record::new(vec![7u8; VALUE])).await.unwrap();
    }
}

fn durable(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));

    let dir = tempfile::tempdir().unwrap();
    let broker = sync_broker(&dir.path().join("tokio"));
    let producer = Arc::new(broker.producer());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    g.bench_function("async_1000_in_flight_tokio", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            rt.block_on(async {
                let tasks: Vec<_> = shares(iters, IN_FLIGHT.min(iters))
                    .map(|n| tokio::spawn(sender(Arc::clone(&producer), n)))
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
            start.elapsed()
        })
    });
    drop(rt);
    broker.close().unwrap();

    let broker = sync_broker(&dir.path().join("smol"));
    let producer = Arc::new(broker.producer());
    g.bench_function("async_1000_in_flight_smol", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            smol::block_on(async {
                let tasks: Vec<_> = shares(iters, IN_FLIGHT.min(iters))
                    .map(|n| smol::spawn(sender(Arc::clone(&producer), n)))
                    .collect();
                for t in tasks {
                    t.await;
                }
            });
            start.elapsed()
        })
    });
    broker.close().unwrap();

    let broker = sync_broker(&dir.path().join("blocking"));
    let producer = broker.producer();
    g.bench_function("blocking_8_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for n in shares(iters, THREADS) {
                    let producer = &producer;
                    s.spawn(move || {
                        for _ in 0..n {
                            producer.send("t", Record::new(vec![7u8; VALUE])).unwrap();
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    broker.close().unwrap();

    // logbus's framing of one 100-byte record is 150 bytes.
    let mut raw = std::fs::File::create(dir.path().join("raw")).unwrap();
    let frame = [7u8; 150];
    g.bench_function("baseline_write_fdatasync", |b| {
        b.iter(|| {
            raw.write_all(&frame).unwrap();
            raw.sync_data().unwrap();
        })
    });

    let prealloc: u64 = 16 << 20;
    let mut file = std::fs::File::create(dir.path().join("prealloc")).unwrap();
    file.write_all(&vec![0u8; prealloc as usize]).unwrap();
    file.sync_all().unwrap();
    let mut pos = 0u64;
    g.bench_function("baseline_overwrite_fdatasync", |b| {
        b.iter(|| {
            file.write_all_at(&frame, pos).unwrap();
            file.sync_data().unwrap();
            pos = (pos + frame.len() as u64) % (prealloc - frame.len() as u64);
        })
    });
    g.finish();
}

criterion_group!(benches, durable);
criterion_main!(benches);
