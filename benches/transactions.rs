//! Transactions against their non-transactional twins, in the same process
//! (ratios, as the machine is noisy; BENCHMARKS.md, "Transactions"):
//! - a transaction of 100 records over 4 partitions (`send` per record, or
//!   one `send_batch`) plus its commit, vs. the same 100 records with
//!   `Producer::send_batch` (and with 100 `Producer::send`);
//! - a read-committed scan of a partition written by transactions vs. a
//!   read-uncommitted scan of the same partition.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
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

fn scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let producer = broker.producer();
    // 1000 transactions of 100 records over 4 partitions, one record per
    // send (one batch per record: the worst case for the visibility check),
    // every tenth aborted.
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
    // Partition 0 holds 25 records of each transaction: 25 000 written,
    // 22 500 committed (and one marker per transaction).
    let end = broker.topic("t").unwrap().partition(0).unwrap().end_offset();
    let count = |level| {
        if level == IsolationLevel::ReadCommitted {
            22_500
        } else {
            25_000
        }
    };
    let consumer = |level| {
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
    };
    let mut g = c.benchmark_group("txn_scan");
    g.throughput(Throughput::Elements(end));
    for (name, level) in [
        ("baseline_read_uncommitted_poll_all", IsolationLevel::ReadUncommitted),
        ("read_committed_poll_all", IsolationLevel::ReadCommitted),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut c = consumer(level);
                let (mut got, mut bytes) = (0, 0usize);
                // Counted, not by position: a poll that finds only markers
                // left waits for its timeout, as Kafka's does.
                while got < count(level) {
                    let rs = c.poll(Duration::from_secs(1)).unwrap();
                    got += rs.len();
                    bytes += rs.iter().map(|r| r.value().len()).sum::<usize>();
                }
                assert_eq!(got, count(level));
                bytes
            })
        });
    }
    g.finish();
    drop(producer);
    broker.close().unwrap();
}

criterion_group!(benches, commit, scan);
criterion_main!(benches);
