//! Scenario `stages`: where the slow records of `latency` spend their time
//! (issue 18, item 1). The same paced stream as `latency` (one 100-byte
//! record every 20 µs), with each record timed at four points: send called,
//! send returned (published), the consumer's previous poll returned (it
//! started waiting then), and the poll that delivered it returned. A record
//! slower than 100 µs end to end is put in one bucket:
//!
//! - `send`: the producer's call itself took over 50 µs;
//! - `consumer busy`: the consumer was not waiting when the record was
//!   published (it was still busy with, or descheduled after, earlier records);
//! - `wake`: the consumer was waiting, and took that long to be woken and read.
//!
//! Per thread it also prints page faults and context switches
//! (`getrusage(RUSAGE_THREAD)`), and for logbus the background thread's CPU
//! time and wake-ups. Slow records close together (within 1 ms) form one
//! episode; the episodes' times show whether they follow a clock (the 1 s
//! checkpoint) or the data (segment growth).
//!
//! Controls (see `common::background_controls`, `common::Hog`):
//! `COMPARE_PIN_BACKGROUND=CPU`, `COMPARE_NICE_BACKGROUND=N`, `COMPARE_HOG=1`.

use std::time::{Duration, Instant};

use logbus::{Record, WaitStrategy};

use crate::common::{Opts, VALUE};
use crate::stats::percentile;

const SLOW_NS: u64 = 100_000;
const SLOW_SEND_NS: u64 = 50_000;

/// Per-thread counters from `getrusage(RUSAGE_THREAD)`.
#[derive(Clone, Copy, Default, Debug)]
struct Usage {
    minflt: i64,
    majflt: i64,
    nvcsw: i64,
    nivcsw: i64,
}

fn thread_usage() -> Usage {
    let ru = crate::common::thread_rusage();
    Usage {
        minflt: ru.ru_minflt,
        majflt: ru.ru_majflt,
        nvcsw: ru.ru_nvcsw,
        nivcsw: ru.ru_nivcsw,
    }
}

fn since(a: Usage, b: Usage) -> Usage {
    Usage {
        minflt: b.minflt - a.minflt,
        majflt: b.majflt - a.majflt,
        nvcsw: b.nvcsw - a.nvcsw,
        nivcsw: b.nivcsw - a.nivcsw,
    }
}

/// What one run recorded, all times in ns since the run's epoch.
struct Trace {
    /// Send called (the stamp in the payload), per record.
    called: Vec<u64>,
    /// Send returned, per record.
    returned: Vec<u64>,
    /// The delivering poll returned, per record.
    delivered: Vec<u64>,
    /// The consumer's previous poll returned (it started waiting), per record.
    waiting_since: Vec<u64>,
    producer: Usage,
    consumer: Usage,
    /// (name, CPU ms, voluntary switches, involuntary switches) of the other threads of this process.
    others: Vec<(String, f64, u64, u64)>,
}

impl Trace {
    /// A run's trace from the consumer's (delivered, waiting since, usage),
    /// the producer's (called, returned) and usage, and the other threads.
    fn new(
        consumer: (Vec<u64>, Vec<u64>, Usage),
        (called, returned): (Vec<u64>, Vec<u64>),
        producer: Usage,
        others: Vec<(String, f64, u64, u64)>,
    ) -> Trace {
        let (delivered, waiting_since, consumer) = consumer;
        Trace {
            called,
            returned,
            delivered,
            waiting_since,
            producer,
            consumer,
            others,
        }
    }
}

/// This process's threads other than `skip`: name, CPU ms, context switches.
fn other_threads(skip: &[i32]) -> Vec<(String, f64, u64, u64)> {
    let tick = 1000.0 / 100.0; // USER_HZ is 100 on Linux
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let tid: i32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        if skip.contains(&tid) {
            continue;
        }
        let p = e.path();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        let status = std::fs::read_to_string(p.join("status")).unwrap_or_default();
        let name = status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .unwrap_or("")
            .trim()
            .to_string();
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = after.split_whitespace().collect();
        let cpu = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let sw = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        out.push((
            name,
            cpu * tick,
            sw("voluntary_ctxt_switches:"),
            sw("nonvoluntary_ctxt_switches:"),
        ));
    }
    out
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// `latency::pace`, keeping every send's called and returned times.
fn pace(n: usize, epoch: Instant, send: impl FnMut([u8; VALUE])) -> (Vec<u64>, Vec<u64>) {
    let (mut called, mut returned) = (Vec::with_capacity(n), Vec::with_capacity(n));
    crate::latency::pace(n, epoch, send, |c, r| {
        called.push(c);
        returned.push(r);
    });
    (called, returned)
}

fn logbus_trace(o: &Opts, n: usize, wait: WaitStrategy) -> Trace {
    let d = o.tempdir();
    let (b, mut c, p) = crate::common::tailing_pair(d.path(), logbus::BrokerConfig::new(), wait);
    let epoch = Instant::now();
    let me = gettid();
    let trace = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let u0 = thread_usage();
            let tid = gettid();
            let (mut delivered, mut waiting) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let mut last = epoch.elapsed().as_nanos() as u64;
            while delivered.len() < n {
                let rs = c.poll(Duration::from_secs(1)).unwrap();
                let now = epoch.elapsed().as_nanos() as u64;
                for _ in &rs {
                    delivered.push(now);
                    waiting.push(last);
                }
                last = now;
            }
            (delivered, waiting, since(u0, thread_usage()), tid)
        });
        let u0 = thread_usage();
        let sent = pace(n, epoch, |v| {
            p.send("t", Record::new(v.to_vec())).unwrap();
        });
        let producer = since(u0, thread_usage());
        let (delivered, waiting, usage, tid) = h.join().unwrap();
        let others = other_threads(&[me, tid]);
        Trace::new((delivered, waiting, usage), sent, producer, others)
    });
    b.close().unwrap();
    trace
}

fn crossbeam_trace(n: usize, spin: bool) -> Trace {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(1024);
    let epoch = Instant::now();
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            let u0 = thread_usage();
            let (mut delivered, mut waiting) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let mut last = epoch.elapsed().as_nanos() as u64;
            while delivered.len() < n {
                let v = crate::latency::crossbeam_next(&rx, spin);
                std::hint::black_box(&v);
                let now = epoch.elapsed().as_nanos() as u64;
                delivered.push(now);
                waiting.push(last);
                last = now;
            }
            (delivered, waiting, since(u0, thread_usage()))
        });
        let u0 = thread_usage();
        let sent = pace(n, epoch, |v| tx.send(v.to_vec()).unwrap());
        let producer = since(u0, thread_usage());
        Trace::new(h.join().unwrap(), sent, producer, Vec::new())
    })
}

fn report(name: &str, t: &Trace) {
    let n = t.called.len();
    let skip = n / 100;
    let mut lat: Vec<u64> = (skip..n).map(|i| t.delivered[i].saturating_sub(t.called[i])).collect();
    lat.sort_unstable();
    let us = |q| percentile(&lat, q) as f64 / 1000.0;
    println!(
        "\n#### {name}: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        us(0.5),
        us(0.99),
        us(0.999),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    // Buckets of the slow records.
    let (mut send, mut busy, mut wake) = ((0u64, 0u64, 0u64), (0u64, 0u64, 0u64), (0u64, 0u64, 0u64));
    let mut episodes: Vec<(u64, u64, usize, &str)> = Vec::new(); // (start, end, records, main bucket)
    for i in skip..n {
        let total = t.delivered[i].saturating_sub(t.called[i]);
        if total <= SLOW_NS {
            continue;
        }
        let send_ns = t.returned[i].saturating_sub(t.called[i]);
        let (bucket, what) = if send_ns > SLOW_SEND_NS {
            (&mut send, "send")
        } else if t.waiting_since[i] > t.returned[i] {
            (&mut busy, "consumer busy")
        } else {
            (&mut wake, "wake")
        };
        bucket.0 += 1;
        bucket.1 += total;
        bucket.2 = bucket.2.max(total);
        match episodes.last_mut() {
            Some(e) if t.called[i] <= e.1 + 1_000_000 => {
                e.1 = t.delivered[i].max(e.1);
                e.2 += 1;
            }
            _ => episodes.push((t.called[i], t.delivered[i], 1, what)),
        }
    }
    let slow = send.0 + busy.0 + wake.0;
    println!(
        "records over 100 µs: {slow} of {} ({:.3}%)",
        n - skip,
        100.0 * slow as f64 / (n - skip) as f64
    );
    for (label, b) in [("send > 50 µs", send), ("consumer busy", busy), ("wake", wake)] {
        if b.0 > 0 {
            println!(
                "  {label:<14} {:>6} records, mean {:>8.1} µs, max {:>8.1} µs",
                b.0,
                b.1 as f64 / b.0 as f64 / 1000.0,
                b.2 as f64 / 1000.0
            );
        }
    }
    let shown: Vec<String> = episodes
        .iter()
        .take(24)
        .map(|e| {
            format!(
                "{:.3}s {}x{} {:.0}µs",
                e.0 as f64 / 1e9,
                e.3,
                e.2,
                (e.1 - e.0) as f64 / 1000.0
            )
        })
        .collect();
    println!(
        "episodes (slow records within 1 ms of each other): {}; first: {}",
        episodes.len(),
        shown.join(", ")
    );
    println!(
        "producer thread: {} minor faults, {} major, {} voluntary / {} involuntary switches",
        t.producer.minflt, t.producer.majflt, t.producer.nvcsw, t.producer.nivcsw
    );
    println!(
        "consumer thread: {} minor faults, {} major, {} voluntary / {} involuntary switches",
        t.consumer.minflt, t.consumer.majflt, t.consumer.nvcsw, t.consumer.nivcsw
    );
    for (name, ms, v, iv) in &t.others {
        println!("other thread {name}: {ms:.0} ms CPU, {v} voluntary / {iv} involuntary switches");
    }
}

pub fn stages(o: &Opts) {
    let n = o.n(200_000, 20_000);
    println!(
        "\n## stages: {n} records of 100 bytes, one every 20 µs, producer -> consumer thread; \
         where records over 100 µs end to end spent their time; first 1% dropped as warm-up"
    );
    let _hog = crate::common::Hog::from_env();
    for round in 1..=o.rounds {
        println!("\n### round {round}");
        report("logbus block", &logbus_trace(o, n, WaitStrategy::Block));
        report("crossbeam recv", &crossbeam_trace(n, false));
        report("logbus spin", &logbus_trace(o, n, WaitStrategy::Spin));
        report("crossbeam try_recv spin", &crossbeam_trace(n, true));
    }
}
