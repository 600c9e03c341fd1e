//! Scenarios 1 and 2: `append1` (one record per send) and `append_batch`
//! (batches of 100), one thread, default durability.

use std::os::fd::AsRawFd;
use std::time::Instant;

use bytes::Bytes;
use commitlog::message::MessageBuf;
use commitlog::{CommitLog, LogOptions};
use logbus::log::Log;
use logbus::{BorrowedRecord, Broker, LogConfig, Record, TopicConfig};

use crate::common::{framed, logbus_sends, rate, raw_file, runtime, value, write_all_fd, Arena, Opts};
use crate::stats::{interleave, print_table, Run};

pub fn append1(o: &Opts) {
    let n = o.n(1_000_000, 100_000);
    println!("\n## append1: {n} records of 100 bytes, one per send, one thread, default durability");
    let frame = framed(1);
    println!(
        "(baselines move logbus's framing of one record: {} bytes per record)",
        frame.len()
    );
    let rt = runtime();
    let names = [
        "logbus Producer::send",
        "logbus Log::append",
        "commitlog",
        "kafko",
        "write(2)",
        "copy+crc",
        "logbus send_borrowed",
    ];
    let mut runs: Vec<Run> = vec![
        Box::new(|| {
            vec![logbus_sends(o, n, |p, i| {
                p.send("t", Record::new(value(i).to_vec())).unwrap();
            })]
        }),
        Box::new(|| {
            let d = o.tempdir();
            let log = Log::open(d.path(), LogConfig::default()).unwrap();
            let t = Instant::now();
            for i in 0..n as u64 {
                log.append(&[Record::new(value(i).to_vec())]).unwrap();
            }
            let r = rate(n, t);
            log.close().unwrap();
            vec![r]
        }),
        Box::new(|| {
            let d = o.tempdir();
            let mut log = CommitLog::new(LogOptions::new(d.path())).unwrap();
            let t = Instant::now();
            for i in 0..n as u64 {
                log.append_msg(value(i)).unwrap();
            }
            let r = rate(n, t);
            log.flush().unwrap();
            vec![r]
        }),
        Box::new(|| {
            let d = o.tempdir();
            rt.block_on(async {
                let k = kafko::Kafko::open(d.path()).await.unwrap();
                k.create_topic("t").await.unwrap();
                let p = k.producer_for("t").await.unwrap();
                let t = Instant::now();
                for i in 0..n as u64 {
                    p.send(None, Bytes::copy_from_slice(&value(i))).await.unwrap();
                }
                let r = rate(n, t);
                k.shutdown().await.unwrap();
                vec![r]
            })
        }),
        Box::new(|| {
            let d = o.tempdir();
            let f = raw_file(d.path());
            let t = Instant::now();
            for _ in 0..n {
                write_all_fd(f.as_raw_fd(), &frame);
            }
            vec![rate(n, t)]
        }),
        Box::new(|| {
            let mut a = Arena::new();
            let mut x = 0u32;
            let t = Instant::now();
            for _ in 0..n {
                x ^= a.push(std::hint::black_box(&frame));
            }
            std::hint::black_box(x);
            vec![rate(n, t)]
        }),
        // No allocation per record: the value is lent for the call.
        Box::new(|| {
            vec![logbus_sends(o, n, |p, i| {
                let v = value(i);
                p.send_borrowed("t", BorrowedRecord::new(&v)).unwrap();
            })]
        }),
    ];
    let s = interleave(o.rounds, &names, &mut runs, 1);
    print_table(
        "append1",
        "records/s",
        &s[0],
        &[(0, 2), (0, 3), (0, 4), (0, 5), (1, 2), (1, 5), (6, 2), (6, 5)],
    );
}

pub fn append_batch(o: &Opts) {
    let n = o.n(2_000_000, 200_000) / 100 * 100;
    let batches = n / 100;
    println!("\n## append_batch: {n} records of 100 bytes in batches of 100, one thread, default durability");
    let frame = framed(100);
    println!(
        "(baselines move logbus's framing of a 100-record batch: {} bytes per batch; \"per record\": 100 one-record frames)",
        frame.len()
    );
    let rt = runtime();
    let names = [
        "logbus send_batch",
        "logbus Log::append",
        "commitlog",
        "kafko send_batch",
        "write(2)",
        "copy+crc",
        "copy+crc per record",
        "logbus send_batch_borrowed",
    ];
    let one = framed(1);
    let mut runs: Vec<Run> = vec![
        Box::new(|| {
            let d = o.tempdir();
            let b = Broker::open(d.path()).unwrap();
            b.create_topic("t", TopicConfig::new(1)).unwrap();
            let p = b.producer();
            let t = Instant::now();
            for k in 0..batches as u64 {
                p.send_batch("t", (0..100).map(|j| Record::new(value(k * 100 + j).to_vec())))
                    .unwrap();
            }
            let r = rate(n, t);
            b.close().unwrap();
            vec![r]
        }),
        Box::new(|| {
            let d = o.tempdir();
            let log = Log::open(d.path(), LogConfig::default()).unwrap();
            let t = Instant::now();
            for k in 0..batches as u64 {
                let rs: Vec<Record> = (0..100).map(|j| Record::new(value(k * 100 + j).to_vec())).collect();
                log.append(&rs).unwrap();
            }
            let r = rate(n, t);
            log.close().unwrap();
            vec![r]
        }),
        Box::new(|| {
            let d = o.tempdir();
            let mut log = CommitLog::new(LogOptions::new(d.path())).unwrap();
            let mut buf = MessageBuf::default();
            let t = Instant::now();
            for k in 0..batches as u64 {
                buf.clear();
                for j in 0..100 {
                    buf.push(value(k * 100 + j)).unwrap();
                }
                log.append(&mut buf).unwrap();
            }
            let r = rate(n, t);
            log.flush().unwrap();
            vec![r]
        }),
        Box::new(|| {
            let d = o.tempdir();
            rt.block_on(async {
                let kf = kafko::Kafko::open(d.path()).await.unwrap();
                kf.create_topic("t").await.unwrap();
                let p = kf.producer_for("t").await.unwrap();
                let t = Instant::now();
                for k in 0..batches as u64 {
                    let items = (0..100)
                        .map(|j| (None, Bytes::copy_from_slice(&value(k * 100 + j))))
                        .collect();
                    p.send_batch(items).await.unwrap();
                }
                let r = rate(n, t);
                kf.shutdown().await.unwrap();
                vec![r]
            })
        }),
        Box::new(|| {
            let d = o.tempdir();
            let f = raw_file(d.path());
            let t = Instant::now();
            for _ in 0..batches {
                write_all_fd(f.as_raw_fd(), &frame);
            }
            vec![rate(n, t)]
        }),
        Box::new(|| {
            let mut a = Arena::new();
            let mut x = 0u32;
            let t = Instant::now();
            for _ in 0..batches {
                x ^= a.push(std::hint::black_box(&frame));
            }
            std::hint::black_box(x);
            vec![rate(n, t)]
        }),
        Box::new(|| {
            let mut a = Arena::new();
            let mut x = 0u32;
            let t = Instant::now();
            for _ in 0..n {
                x ^= a.push(std::hint::black_box(&one));
            }
            std::hint::black_box(x);
            vec![rate(n, t)]
        }),
        // The 100 values in one reused buffer, lent for the call: one
        // allocation per batch (the BorrowedRecord slice), none per record.
        Box::new(|| {
            let d = o.tempdir();
            let b = Broker::open(d.path()).unwrap();
            b.create_topic("t", TopicConfig::new(1)).unwrap();
            let p = b.producer();
            let mut vals = vec![[0u8; 100]; 100];
            let t = Instant::now();
            for k in 0..batches as u64 {
                for (j, v) in vals.iter_mut().enumerate() {
                    *v = value(k * 100 + j as u64);
                }
                let rs: Vec<BorrowedRecord<'_>> = vals.iter().map(|v| BorrowedRecord::new(v)).collect();
                p.send_batch_borrowed("t", &rs).unwrap();
            }
            let r = rate(n, t);
            b.close().unwrap();
            vec![r]
        }),
    ];
    let s = interleave(o.rounds, &names, &mut runs, 1);
    print_table(
        "append_batch",
        "records/s",
        &s[0],
        &[
            (0, 2),
            (0, 3),
            (0, 4),
            (0, 5),
            (0, 6),
            (1, 2),
            (1, 5),
            (1, 6),
            (7, 2),
            (7, 6),
        ],
    );
}
