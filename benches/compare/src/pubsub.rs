//! Scenario 4: `pubsub`, a producer thread and a consumer thread tailing at
//! the same time; end-to-end records/s (first send to last receive).

use std::time::{Duration, Instant};

use bytes::Bytes;
use logbus::{BorrowedRecord, Broker, ConsumerConfig, OffsetReset, Producer, Record, TopicConfig, TopicPartition};

use crate::common::{rate, runtime, value, Opts};
use crate::scan::kafko_small_segments;
use crate::stats::{interleave, print_table, Run};

pub fn pubsub(o: &Opts) {
    let n = o.n(1_000_000, 100_000);
    let nk = n / 5;
    println!("\n## pubsub: {n} records of 100 bytes, producer thread -> consumer thread (kafko: {nk} records, 64 KiB segments)");
    let rt = runtime();
    let names = [
        "logbus",
        "crossbeam bounded(1024)",
        "kafko",
        "logbus send_borrowed",
        "logbus borrowed+poll_with",
    ];
    let mut runs: Vec<Run> = vec![
        Box::new(|| {
            vec![logbus_pubsub(o, n, false, |p, i| {
                p.send("t", Record::new(value(i).to_vec())).unwrap();
            })]
        }),
        Box::new(|| vec![crate::common::crossbeam_pubsub(n).1]),
        Box::new(|| {
            let d = o.tempdir();
            rt.block_on(async {
                let kf = kafko::Kafko::open_with_config(d.path(), kafko_small_segments())
                    .await
                    .unwrap();
                kf.create_topic("t").await.unwrap();
                let p = kf.producer_for("t").await.unwrap();
                let mut c = kf.consumer_for("t").await.unwrap();
                c.seek_all(0);
                let t = Instant::now();
                let consumer = tokio::spawn(async move {
                    let mut bytes = 0usize;
                    for _ in 0..nk {
                        bytes += c.next_record().await.unwrap().value().len();
                    }
                    assert_eq!(bytes, nk * 100);
                });
                let producer = tokio::spawn(async move {
                    for i in 0..nk as u64 {
                        p.send(None, Bytes::copy_from_slice(&value(i))).await.unwrap();
                    }
                });
                producer.await.unwrap();
                consumer.await.unwrap();
                let r = rate(nk, t);
                kf.shutdown().await.unwrap();
                vec![r]
            })
        }),
        // The producer lends each value instead of allocating it.
        Box::new(|| {
            vec![logbus_pubsub(o, n, false, |p, i| {
                let v = value(i);
                p.send_borrowed("t", BorrowedRecord::new(&v)).unwrap();
            })]
        }),
        // ...and the consumer is lent the records instead of owning them.
        Box::new(|| {
            vec![logbus_pubsub(o, n, true, |p, i| {
                let v = value(i);
                p.send_borrowed("t", BorrowedRecord::new(&v)).unwrap();
            })]
        }),
    ];
    let s = interleave(o.rounds, &names, &mut runs, 1);
    print_table(
        "pubsub",
        "records/s end to end",
        &s[0],
        &[(0, 1), (0, 2), (3, 1), (4, 1)],
    );
}

/// End-to-end records/s: this thread sends `n` records with `send` while a
/// consumer thread polls them (`poll`, or `poll_with` when `lend`; fresh
/// broker, one-partition topic "t").
fn logbus_pubsub(o: &Opts, n: usize, lend: bool, send: impl Fn(&Producer, u64)) -> f64 {
    let d = o.tempdir();
    let b = Broker::open(d.path()).unwrap();
    b.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut c = b
        .consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))
        .unwrap();
    c.assign(&[TopicPartition::new("t", 0)]).unwrap();
    let p = b.producer();
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            let (mut got, mut bytes) = (0usize, 0usize);
            while got < n {
                if lend {
                    got += c
                        .poll_with(Duration::from_secs(1), |r| bytes += r.value().len())
                        .unwrap();
                } else {
                    let rs = c.poll(Duration::from_secs(1)).unwrap();
                    got += rs.len();
                    bytes += rs.iter().map(|r| r.value().len()).sum::<usize>();
                }
            }
            assert_eq!(bytes, n * 100);
        });
        for i in 0..n as u64 {
            send(&p, i);
        }
    });
    let r = rate(n, t);
    b.close().unwrap();
    r
}
