//! Scenario 3: `scan`, read everything back from offset 0.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::Instant;

use bytes::Bytes;
use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};
use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::common::{framed, rate, raw_file, runtime, value, write_all_fd, Opts};
use crate::stats::{interleave, print_table, Run};

/// kafko's `read_record_at` reads from the sparse-index position to the end of
/// the segment for every record, so a scan costs O(segment size) per record:
/// it is given small segments and fewer records.
pub const KAFKO_SEGMENT: u64 = 64 * 1024;

pub fn kafko_small_segments() -> kafko::LogConfig {
    kafko::LogConfig {
        segment_size_threshold: KAFKO_SEGMENT,
        ..Default::default()
    }
}

/// A consumer of "t"-0 from its start, 1000 records per poll.
fn scan_consumer(broker: &Broker) -> logbus::Consumer {
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(1000),
        )
        .unwrap();
    c.assign(&[TopicPartition::new("t", 0)]).unwrap();
    c
}

pub fn scan(o: &Opts) {
    let n = o.n(1_000_000, 100_000);
    let nk = n / 10;
    println!("\n## scan: read {n} records of 100 bytes back from offset 0 (kafko: {nk} records, 64 KiB segments)");
    let rt = runtime();

    // Write each system's data once; every round reads it all back.
    let lb_dir = o.tempdir();
    let broker = Broker::open(lb_dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = broker.producer();
    for k in 0..(n / 100) as u64 {
        p.send_batch("t", (0..100).map(|j| Record::new(value(k * 100 + j).to_vec())))
            .unwrap();
    }
    let part = broker.topic("t").unwrap().partition(0).unwrap();

    let cl_dir = o.tempdir();
    let mut cl = CommitLog::new(LogOptions::new(cl_dir.path())).unwrap();
    let mut buf = MessageBuf::default();
    for k in 0..(n / 100) as u64 {
        buf.clear();
        for j in 0..100 {
            buf.push(value(k * 100 + j)).unwrap();
        }
        cl.append(&mut buf).unwrap();
    }
    cl.flush().unwrap();

    let kf_dir = o.tempdir();
    let kf = rt.block_on(async {
        let kf = kafko::Kafko::open_with_config(kf_dir.path(), kafko_small_segments())
            .await
            .unwrap();
        kf.create_topic("t").await.unwrap();
        let p = kf.producer_for("t").await.unwrap();
        for k in 0..(nk / 100) as u64 {
            let items = (0..100)
                .map(|j| (None, Bytes::copy_from_slice(&value(k * 100 + j))))
                .collect();
            p.send_batch(items).await.unwrap();
        }
        kf
    });

    let raw_dir = o.tempdir();
    {
        let f = raw_file(raw_dir.path());
        let frame = framed(100);
        for _ in 0..n / 100 {
            write_all_fd(f.as_raw_fd(), &frame);
        }
    }

    let names = [
        "logbus Partition::read",
        "logbus Partition::read_with",
        "logbus Consumer::poll",
        "commitlog",
        "kafko",
        "read(2)+crc",
        "logbus Consumer::poll_with",
    ];
    let mut runs: Vec<Run> = vec![
        Box::new(|| {
            let t = Instant::now();
            let (mut off, mut bytes) = (0u64, 0usize);
            while off < n as u64 {
                let rs = part.read(off, 1000).unwrap();
                off += rs.len() as u64;
                bytes += rs.iter().map(|r| r.value().len()).sum::<usize>();
            }
            assert_eq!(bytes, n * 100);
            vec![rate(n, t)]
        }),
        Box::new(|| {
            let t = Instant::now();
            let (mut off, mut bytes) = (0u64, 0usize);
            while off < n as u64 {
                off = part.read_with(off, 1000, |r| bytes += r.value().len()).unwrap();
            }
            assert_eq!(bytes, n * 100);
            vec![rate(n, t)]
        }),
        Box::new(|| {
            let mut c = scan_consumer(&broker);
            let t = Instant::now();
            let (mut got, mut bytes) = (0usize, 0usize);
            while got < n {
                let rs = c.poll(std::time::Duration::from_secs(1)).unwrap();
                got += rs.len();
                bytes += rs.iter().map(|r| r.value().len()).sum::<usize>();
            }
            assert_eq!(bytes, n * 100);
            vec![rate(n, t)]
        }),
        Box::new(|| {
            let t = Instant::now();
            let (mut off, mut bytes) = (0u64, 0usize);
            while off < n as u64 {
                let mb = cl.read(off, ReadLimit::max_bytes(128 * 1024)).unwrap();
                for m in mb.iter() {
                    bytes += m.payload().len();
                    off = m.offset() + 1;
                }
            }
            assert_eq!(bytes, n * 100);
            vec![rate(n, t)]
        }),
        Box::new(|| {
            rt.block_on(async {
                let mut c = kf.consumer_for("t").await.unwrap();
                c.seek_all(0);
                let t = Instant::now();
                let mut bytes = 0usize;
                for _ in 0..nk {
                    bytes += c.next_record().await.unwrap().value().len();
                }
                assert_eq!(bytes, nk * 100);
                vec![rate(nk, t)]
            })
        }),
        Box::new(|| {
            let mut f = std::fs::File::open(raw_dir.path().join("raw.log")).unwrap();
            let mut chunk = vec![0u8; 1 << 20];
            let t = Instant::now();
            let mut h = crc32fast::Hasher::new();
            loop {
                let k = f.read(&mut chunk).unwrap();
                if k == 0 {
                    break;
                }
                h.update(&chunk[..k]);
            }
            std::hint::black_box(h.finalize());
            vec![rate(n, t)]
        }),
        Box::new(|| {
            let mut c = scan_consumer(&broker);
            let t = Instant::now();
            let (mut got, mut bytes) = (0usize, 0usize);
            while got < n {
                got += c
                    .poll_with(std::time::Duration::from_secs(1), |r| bytes += r.value().len())
                    .unwrap();
            }
            assert_eq!(bytes, n * 100);
            vec![rate(n, t)]
        }),
    ];
    let s = interleave(o.rounds, &names, &mut runs, 1);
    print_table(
        "scan",
        "records/s",
        &s[0],
        &[
            (0, 3),
            (0, 4),
            (0, 5),
            (2, 3),
            (2, 4),
            (1, 3),
            (1, 0),
            (1, 5),
            (6, 3),
            (6, 2),
        ],
    );
    drop(runs);
    broker.close().unwrap();
    rt.block_on(async { kf.shutdown().await.unwrap() });
}
