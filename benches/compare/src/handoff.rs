//! Scenario `handoff`: what a tailing consumer costs the producer (issue 18,
//! item 3). The same 1M `send_borrowed` calls of 100 bytes, timed on the
//! producer's side (first to last send) and end to end, with:
//!
//! - no consumer;
//! - a consumer polling another topic (it runs, but reads nothing the
//!   producer writes: the cost of a second busy core alone);
//! - a consumer tailing the producer's partition (`pubsub`);

//! - crossbeam `bounded(1024)`, for scale.
//!
//! and a consumer reading the same records after they were all written (no
//! producer running: the read side's own rate).

use std::time::{Duration, Instant};

use logbus::{BorrowedRecord, Broker, ConsumerConfig, OffsetReset, TopicConfig, TopicPartition};

use crate::common::{rate, value, Opts};
use crate::stats::{interleave, print_table, Run};

static PAUSE: std::sync::LazyLock<Option<Duration>> = std::sync::LazyLock::new(|| {
    std::env::var("COMPARE_PAUSE_NS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_nanos)
});

#[derive(Clone, Copy, PartialEq)]
enum Reader {
    None,
    OtherTopic,
    Tail,
    AfterwardsOnly,
}

/// Producer-side and end-to-end records/s.
fn run(o: &Opts, n: usize, reader: Reader) -> Vec<f64> {
    let d = o.tempdir();
    let b = Broker::open(d.path()).unwrap();
    b.create_topic("t", TopicConfig::new(1)).unwrap();
    b.create_topic("idle", TopicConfig::new(1)).unwrap();
    let mut c = b
        .consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))
        .unwrap();
    let topic = if reader == Reader::OtherTopic { "idle" } else { "t" };
    c.assign(&[TopicPartition::new(topic, 0)]).unwrap();
    let p = b.producer();
    let send_all = || {
        for i in 0..n as u64 {
            let v = value(i);
            p.send_borrowed("t", BorrowedRecord::new(&v)).unwrap();
        }
    };
    let read_all = |c: &mut logbus::Consumer| {
        let (mut got, mut bytes) = (0usize, 0usize);
        while got < n {
            let k = c
                .poll_with(Duration::from_secs(1), |r| bytes += r.value().len())
                .unwrap();
            got += k;
            if let Some(pause) = PAUSE.as_ref().copied().filter(|_| k < 64) {
                let t = Instant::now();
                while t.elapsed() < pause {
                    std::hint::spin_loop();
                }
            }
        }
        assert_eq!(bytes, n * 100);
    };
    let out = match reader {
        Reader::None => {
            let t = Instant::now();
            send_all();
            let r = rate(n, t);
            vec![r, r]
        }
        Reader::AfterwardsOnly => {
            send_all();
            let t = Instant::now();
            read_all(&mut c);
            let r = rate(n, t);
            vec![r, r]
        }
        Reader::OtherTopic | Reader::Tail => {
            let stop = std::sync::atomic::AtomicBool::new(false);
            let t = Instant::now();
            let produced = std::thread::scope(|s| {
                let stop = &stop;
                let h = s.spawn(move || {
                    if reader == Reader::Tail {
                        read_all(&mut c);
                    } else {
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            c.poll_with(Duration::from_millis(1), |_| ()).unwrap();
                        }
                    }
                });
                send_all();
                let produced = rate(n, t);
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                h.join().unwrap();
                produced
            });
            vec![produced, rate(n, t)]
        }
    };
    b.close().unwrap();
    out
}

pub fn handoff(o: &Opts) {
    let n = o.n(1_000_000, 100_000);
    println!(
        "\n## handoff: {n} send_borrowed calls of 100 bytes; producer-side rate (first to last send) \
         and end to end, with and without a consumer"
    );
    let names = [
        "producer alone",
        "consumer on another topic",
        "consumer tailing",
        "consumer reading afterwards",
        "crossbeam bounded(1024)",
    ];
    let mut runs: Vec<Run> = vec![
        Box::new(|| run(o, n, Reader::None)),
        Box::new(|| run(o, n, Reader::OtherTopic)),
        Box::new(|| run(o, n, Reader::Tail)),
        Box::new(|| run(o, n, Reader::AfterwardsOnly)),
        Box::new(|| {
            let (produced, end_to_end) = crate::common::crossbeam_pubsub(n);
            vec![produced, end_to_end]
        }),
    ];
    let s = interleave(o.rounds, &names, &mut runs, 2);
    print_table("handoff: producer side", "records/s", &s[0], &[(1, 0), (2, 0), (2, 4)]);
    print_table("handoff: end to end", "records/s", &s[1], &[(2, 0), (2, 4), (3, 0)]);
}
