//! Transactions against their non-transactional twins, in the same process
//! (ratios, as the machine is noisy; BENCHMARKS.md, "Transactions"):
//! - a transaction of 100 records over 4 partitions (`send` per record, or
//!   one `send_batch`) plus its commit, vs. the same 100 records with
//!   `Producer::send_batch` (and with 100 `Producer::send`);
//! - a read-committed scan of a partition written by transactions vs. a
//!   read-uncommitted scan of the same partition.

use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use logbus::{
    Broker, BrokerConfig, ConsumerConfig, Durability, IsolationLevel, OffsetReset, Record, TopicConfig, TopicPartition,
};

const VALUE: usize = 100;

fn hundred() -> Vec<Record> {
    (0..100u32)
        .map(|i| Record::new(vec![i as u8; VALUE]).with_partition(i % 4))
        .collect()
}

fn broker(dir: &std::path::Path) -> Broker {
    let b = Broker::open_with(dir, BrokerConfig::new().durability(Durability::PageCache)).unwrap();
    b.create_topic("t", TopicConfig::new(4).segment_bytes(256 * 1024 * 1024))
        .unwrap();
    b
}

fn commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let producer = broker.producer();
    let rs = hundred();
    let mut g = c.benchmark_group("txn");
    g.throughput(Throughput::Elements(100));
    g.bench_function("baseline_send_batch_100_over_4", |b| {
        b.iter(|| producer.send_batch("t", rs.clone()).unwrap())
    });
    g.bench_function("baseline_send_100_over_4", |b| {
        b.iter(|| {
            for r in &rs {
                producer.send("t", r.clone()).unwrap();
            }
        })
    });
    g.bench_function("txn_send_100_over_4_commit", |b| {
        b.iter(|| {
            let mut txn = producer.transaction().unwrap();
            for r in &rs {
                txn.send("t", r.clone()).unwrap();
            }
            txn.commit().unwrap()
        })
    });
    g.bench_function("txn_send_batch_100_over_4_commit", |b| {
        b.iter(|| {
            let mut txn = producer.transaction().unwrap();
            txn.send_batch("t", rs.clone()).unwrap();
            txn.commit().unwrap()
        })
    });
    g.finish();
    drop(producer);
    broker.close().unwrap();
}

/// A 4-partition topic written by 1000 transactions of 100 records, one
/// record per send (one batch per record: the worst case for the visibility
/// check), every tenth aborted; and partition 0's end offset.
fn scan_topic() -> (tempfile::TempDir, Broker, u64) {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let producer = broker.producer();
    for i in 0..1000 {
        let mut txn = producer.transaction().unwrap();
        for r in hundred() {
            txn.send("t", r).unwrap();
        }
        if i % 10 == 9 {
            txn.abort().unwrap();
        } else {
            txn.commit().unwrap();
        }
    }
    let end = broker.topic("t").unwrap().partition(0).unwrap().end_offset();
    (dir, broker, end)
}

/// Records a scan of partition 0 returns at `level`: 25 per transaction,
/// 25 000 written, 22 500 committed (and one marker per transaction).
fn scan_count(level: IsolationLevel) -> usize {
    if level == IsolationLevel::ReadCommitted {
        22_500
    } else {
        25_000
    }
}

fn scan_consumer(broker: &Broker, level: IsolationLevel) -> logbus::Consumer {
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(1000)
                .isolation_level(level),
        )
        .unwrap();
    c.assign(&[TopicPartition::new("t", 0)]).unwrap();
    c
}

fn scan(c: &mut Criterion) {
    let (_dir, broker, end) = scan_topic();
    let mut g = c.benchmark_group("txn_scan");
    g.throughput(Throughput::Elements(end));
    for (name, level) in [
        ("baseline_read_uncommitted_poll_all", IsolationLevel::ReadUncommitted),
        ("read_committed_poll_all", IsolationLevel::ReadCommitted),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut c = scan_consumer(&broker, level);
                let (mut got, mut bytes) = (0, 0usize);
                // Counted, not by position: a poll that finds only markers
                // left waits for its timeout, as Kafka's does.
                while got < scan_count(level) {
                    let rs = c.poll(Duration::from_secs(1)).unwrap();
                    got += rs.len();
                    bytes += rs.iter().map(|r| r.value().len()).sum::<usize>();
                }
                assert_eq!(got, scan_count(level));
                bytes
            })
        });
    }
    g.finish();
    broker.close().unwrap();
}

/// Median of per-round time ratios `test / base`, the two run alternately
/// (`per_round` times each, order swapped every round), so that the load of
/// a shared machine weighs on both alike; printed with the range.
fn ratio(label: &str, rounds: usize, per_round: usize, mut base: impl FnMut(), mut test: impl FnMut()) {
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let time = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            t.elapsed().as_secs_f64()
        };
        let (b, t) = if round % 2 == 0 {
            let b = time(&mut base);
            (b, time(&mut test))
        } else {
            let t = time(&mut test);
            (time(&mut base), t)
        };
        ratios.push(t / b);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio {label}: median {:.2}x (rounds {:.2}x .. {:.2}x, {rounds} rounds of {per_round})",
        ratios[rounds / 2],
        ratios[0],
        ratios[rounds - 1]
    );
}

/// The two goals as interleaved ratios.
fn ratios() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let producer = broker.producer();
    let rs = hundred();
    let send_batch = || {
        producer.send_batch("t", rs.clone()).unwrap();
    };
    ratio(
        "txn.send_batch(100 over 4) + commit / send_batch",
        40,
        40,
        send_batch,
        || {
            let mut txn = producer.transaction().unwrap();
            txn.send_batch("t", rs.clone()).unwrap();
            txn.commit().unwrap();
        },
    );
    ratio("100 txn.send over 4 + commit / send_batch", 40, 40, send_batch, || {
        let mut txn = producer.transaction().unwrap();
        for r in &rs {
            txn.send("t", r.clone()).unwrap();
        }
        txn.commit().unwrap();
    });
    ratio(
        "100 txn.send over 4 + commit / 100 Producer::send",
        40,
        40,
        || {
            for r in &rs {
                producer.send("t", r.clone()).unwrap();
            }
        },
        || {
            let mut txn = producer.transaction().unwrap();
            for r in &rs {
                txn.send("t", r.clone()).unwrap();
            }
            txn.commit().unwrap();
        },
    );
    drop(producer);
    broker.close().unwrap();

    let (dir, broker, end) = scan_topic();
    let per_record = |level: IsolationLevel| {
        let mut c = scan_consumer(&broker, level);
        let mut got = 0;
        while got < scan_count(level) {
            got += c.poll(Duration::from_secs(1)).unwrap().len();
        }
        assert_eq!(got, scan_count(level));
    };
    // Time per record read: the committed scan returns 22 500 of 25 000.
    let share = scan_count(IsolationLevel::ReadCommitted) as f64 / scan_count(IsolationLevel::ReadUncommitted) as f64;
    let mut ratios = Vec::new();
    for round in 0..15 {
        let time = |level| {
            let t = Instant::now();
            per_record(level);
            t.elapsed().as_secs_f64() / scan_count(level) as f64
        };
        let (u, c) = if round % 2 == 0 {
            let u = time(IsolationLevel::ReadUncommitted);
            (u, time(IsolationLevel::ReadCommitted))
        } else {
            let c = time(IsolationLevel::ReadCommitted);
            (time(IsolationLevel::ReadUncommitted), c)
        };
        // Throughput ratio, committed / uncommitted, in records per second.
        ratios.push(u / c);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio read-committed / read-uncommitted scan throughput (records/s, {end} offsets, {:.0}% committed): \
         median {:.2}x (rounds {:.2}x .. {:.2}x, 15 rounds)",
        share * 100.0,
        ratios[7],
        ratios[0],
        ratios[14]
    );
    broker.close().unwrap();
    drop(dir);
}

criterion_group!(benches, commit, scan);

fn main() {
    ratios();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
