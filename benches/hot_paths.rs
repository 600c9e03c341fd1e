//! Criterion benches of the hot paths, each beside an in-process baseline so
//! results read as ratios on a noisy machine:
//! - `encode`/`decode` a batch of 100 records vs. copy + CRC32 of the same bytes;
//! - `append1` (one record per append) and `append100` vs. copy + CRC into a buffer
//!   and one `write(2)` per record;
//! - `read` (sequential scan with `read`, and with `read_with`) and `lookup`
//!   (random offset reads, index + scan).

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use logbus::format::batch::{self, Peek, Records};
use logbus::log::Log;
use logbus::{
    BorrowedRecord, Broker, ConsumerConfig, Durability, LogConfig, OffsetReset, Record, TopicConfig, TopicPartition,
};

const VALUE: usize = 100;

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record::new(vec![i as u8; VALUE]).with_timestamp(1_700_000_000_000 + i as i64))
        .collect()
}

fn ts(r: &Record) -> i64 {
    r.timestamp().unwrap_or(0)
}

fn log_config() -> LogConfig {
    LogConfig::from_topic(
        &TopicConfig::new(1).segment_bytes(256 * 1024 * 1024),
        Durability::PageCache,
    )
}

fn codec(c: &mut Criterion) {
    let rs = records(100);
    let (_, len) = batch::plan(&rs, ts, usize::MAX);
    let mut buf = vec![0u8; len];
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(100));
    g.bench_function("encode_batch_100", |b| {
        b.iter(|| batch::encode(black_box(&mut buf), 0, 0, &rs, ts))
    });
    batch::encode(&mut buf, 0, 0, &rs, ts);
    g.bench_function("decode_batch_100", |b| {
        b.iter(|| {
            let Peek::Batch(h) = batch::peek(black_box(&buf)) else {
                unreachable!()
            };
            assert!(batch::crc_ok(&buf, &h));
            Records::new(&buf, h).filter(|r| r.is_ok()).count()
        })
    });
    let mut dst = vec![0u8; len];
    g.bench_function("baseline_copy_crc_100", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&buf));
            crc32fast::hash(&dst)
        })
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("a1"), log_config()).unwrap();
    let one = records(1);
    let hundred = records(100);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append1", |b| b.iter(|| log.append(black_box(&one)).unwrap()));
    g.bench_function("baseline_copy_crc_1", |b| {
        let mut arena = vec![0u8; 64 * 1024 * 1024];
        let mut pos = 0usize;
        b.iter(|| {
            if pos + VALUE + 64 > arena.len() {
                pos = 0;
            }
            let dst = &mut arena[pos..pos + VALUE];
            dst.copy_from_slice(black_box(one[0].value()));
            pos += VALUE + 50;
            crc32fast::hash(dst)
        })
    });
    let mut raw = std::fs::File::create(dir.path().join("raw")).unwrap();
    g.bench_function("baseline_write_syscall_1", |b| {
        b.iter(|| raw.write_all(black_box(one[0].value())).unwrap())
    });
    let one_lent = [BorrowedRecord::new(one[0].value())];
    g.bench_function("append1_borrowed", |b| {
        b.iter(|| log.append_borrowed(black_box(&one_lent)).unwrap())
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("append100", |b| b.iter(|| log.append(black_box(&hundred)).unwrap()));
    let hundred_lent: Vec<BorrowedRecord<'_>> = hundred.iter().map(|r| BorrowedRecord::new(r.value())).collect();
    g.bench_function("append100_borrowed", |b| {
        b.iter(|| log.append_borrowed(black_box(&hundred_lent)).unwrap())
    });
    g.finish();
    log.close().unwrap();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), log_config()).unwrap();
    let n = 100_000u64;
    for chunk in records(n as usize).chunks(100) {
        log.append(chunk).unwrap();
    }
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(n));
    g.bench_function("scan_all", |b| {
        b.iter(|| {
            let mut off = 0;
            let mut bytes = 0usize;
            while off < n {
                let rs = log.read(off, 1000).unwrap();
                off += rs.len() as u64;
                bytes += rs.iter().map(|r| r.value().len()).sum::<usize>();
            }
            bytes
        })
    });
    // The same scan through the borrowed-record API (no Vec, no per-record Arc).
    g.bench_function("scan_all_read_with", |b| {
        b.iter(|| {
            let mut off = 0;
            let mut bytes = 0usize;
            while off < n {
                off = log.read_with(off, 1000, |r| bytes += r.value().len()).unwrap();
            }
            bytes
        })
    });
    g.throughput(Throughput::Elements(1));
    let mut x = 12345u64;
    g.bench_function("lookup_random", |b| {
        b.iter_batched(
            || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            },
            |off| log.read(off, 1).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    log.close().unwrap();
}

/// A consumer scanning a partition from its start: owned records (`poll`)
/// against lent ones (`poll_with`).
fn consume(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let n = 100_000u64;
    let producer = broker.producer();
    for chunk in records(n as usize).chunks(100) {
        producer.send_batch("t", chunk.to_vec()).unwrap();
    }
    let consumer = || {
        let mut c = broker
            .consumer(
                ConsumerConfig::new()
                    .offset_reset(OffsetReset::Earliest)
                    .max_poll_records(1000),
            )
            .unwrap();
        c.assign(&[TopicPartition::new("t", 0)]).unwrap();
        c
    };
    let mut g = c.benchmark_group("consume");
    g.throughput(Throughput::Elements(n));
    g.bench_function("poll_all", |b| {
        b.iter(|| {
            let mut c = consumer();
            let (mut got, mut bytes) = (0u64, 0usize);
            while got < n {
                let rs = c.poll(Duration::from_secs(1)).unwrap();
                got += rs.len() as u64;
                bytes += rs.iter().map(|r| r.value().len()).sum::<usize>();
            }
            bytes
        })
    });
    g.bench_function("poll_with_all", |b| {
        b.iter(|| {
            let mut c = consumer();
            let (mut got, mut bytes) = (0u64, 0usize);
            while got < n {
                got += c
                    .poll_with(Duration::from_secs(1), |r| bytes += r.value().len())
                    .unwrap() as u64;
            }
            bytes
        })
    });
    g.finish();
    drop(producer);
    broker.close().unwrap();
}

criterion_group!(benches, codec, append, read, consume);
criterion_main!(benches);
