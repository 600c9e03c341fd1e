//! Scenario 6: `durable`, 8 threads each sending one record at a time and
//! waiting until it is on stable storage; and 1,000 async sends in flight
//! on a tokio runtime (`send_async`, which waits once per record for the
//! group commit its record joined).

use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use logbus::{Broker, BrokerConfig, Durability, Record, TopicConfig};

use crate::common::{framed, rate, raw_file, runtime, value, write_all_fd, Opts};
use crate::stats::{interleave, print_table, Run};

const THREADS: usize = 8;
const IN_FLIGHT: usize = 1000;

pub fn durable(o: &Opts) {
    let per = o.n(2_000, 300);
    let per_raw = o.n(250, 50);
    let per_async = o.n(60, 10);
    println!(
        "\n## durable: {THREADS} threads, one record of 100 bytes per send, acknowledged after fdatasync \
         (logbus {per}/thread; raw and kafko {per_raw}/thread: one fsync per record); \
         logbus send_async: {IN_FLIGHT} tasks x {per_async} records on tokio's multi-thread runtime"
    );
    let frame = framed(1);
    let rt = runtime();
    let names = [
        "logbus Durability::Sync",
        "write+fdatasync (mutex)",
        "kafko send+sync",
        "logbus send_async x1000",
    ];
    let mut runs: Vec<Run> = vec![
        Box::new(|| {
            let d = o.tempdir();
            let b = Broker::open_with(d.path(), BrokerConfig::new().durability(Durability::Sync)).unwrap();
            b.create_topic("t", TopicConfig::new(1)).unwrap();
            let t = Instant::now();
            std::thread::scope(|s| {
                for th in 0..THREADS as u64 {
                    let p = b.producer();
                    s.spawn(move || {
                        for i in 0..per as u64 {
                            p.send("t", Record::new(value(th << 32 | i).to_vec())).unwrap();
                        }
                    });
                }
            });
            let r = rate(THREADS * per, t);
            b.close().unwrap();
            vec![r]
        }),
        Box::new(|| {
            let d = o.tempdir();
            let f = Mutex::new(raw_file(d.path()));
            let t = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        for _ in 0..per_raw {
                            let g = f.lock().unwrap();
                            write_all_fd(g.as_raw_fd(), &frame);
                            // SAFETY: the fd is open for as long as the guard lives.
                            assert_eq!(unsafe { libc::fdatasync(g.as_raw_fd()) }, 0);
                        }
                    });
                }
            });
            vec![rate(THREADS * per_raw, t)]
        }),
        Box::new(|| {
            let d = o.tempdir();
            let kf = rt.block_on(async {
                let kf = kafko::Kafko::open(d.path()).await.unwrap();
                kf.create_topic("t").await.unwrap();
                kf
            });
            let (p, part) = rt.block_on(async {
                let p = kf.producer_for("t").await.unwrap();
                let part = kf.topic("t").await.unwrap().partition(0).unwrap().clone();
                (p, part)
            });
            let h = rt.handle();
            let t = Instant::now();
            std::thread::scope(|s| {
                for th in 0..THREADS as u64 {
                    let (p, part) = (p.clone(), part.clone());
                    s.spawn(move || {
                        h.block_on(async {
                            for i in 0..per_raw as u64 {
                                p.send(None, Bytes::copy_from_slice(&value(th << 32 | i)))
                                    .await
                                    .unwrap();
                                part.sync().await.unwrap();
                            }
                        })
                    });
                }
            });
            let r = rate(THREADS * per_raw, t);
            rt.block_on(async { kf.shutdown().await.unwrap() });
            vec![r]
        }),
    ];
    runs.push(Box::new(|| {
        let d = o.tempdir();
        let b = Broker::open_with(d.path(), BrokerConfig::new().durability(Durability::Sync)).unwrap();
        b.create_topic("t", TopicConfig::new(1)).unwrap();
        let p = std::sync::Arc::new(b.producer());
        let t = Instant::now();
        rt.block_on(async {
            let tasks: Vec<_> = (0..IN_FLIGHT as u64)
                .map(|task| {
                    let p = std::sync::Arc::clone(&p);
                    tokio::spawn(async move {
                        for i in 0..per_async as u64 {
                            p.send_async("t", Record::new(value(task << 32 | i).to_vec()))
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        let r = rate(IN_FLIGHT * per_async, t);
        b.close().unwrap();
        vec![r]
    }));
    let s = interleave(o.rounds, &names, &mut runs, 1);
    print_table("durable", "records/s", &s[0], &[(0, 1), (0, 2), (3, 1), (3, 0)]);
}
