//! Scenario 5: `latency`, one record every 20 µs (busy-wait pacing); the
//! producer stamps each payload with nanoseconds since a shared `Instant`
//! epoch and the consumer subtracts on receipt. Blocking and spinning waits.

use std::time::{Duration, Instant};

use logbus::{BrokerConfig, Record, WaitStrategy};

use crate::common::{Opts, VALUE};
use crate::stats::{interleave, percentile, print_table, Run};

const PERIOD: Duration = Duration::from_micros(20);

/// Sends `n` payloads, one every 20 µs (busy-wait), through `send`, each
/// stamped with the time it is sent; `sent(called, returned)` gets each
/// send's times, ns since `epoch`.
pub fn pace(n: usize, epoch: Instant, mut send: impl FnMut([u8; VALUE]), mut sent: impl FnMut(u64, u64)) {
    let start = Instant::now();
    for i in 0..n as u32 {
        let due = start + PERIOD * i;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let mut v = [0x5au8; VALUE];
        let t = epoch.elapsed().as_nanos() as u64;
        v[..8].copy_from_slice(&t.to_le_bytes());
        send(v);
        sent(t, epoch.elapsed().as_nanos() as u64);
    }
}

/// [`pace`], returning the longest `send` call, µs.
fn pace_longest(n: usize, epoch: Instant, send: impl FnMut([u8; VALUE])) -> f64 {
    let mut longest = 0;
    pace(n, epoch, send, |called, returned| {
        longest = longest.max(returned - called)
    });
    longest as f64 / 1000.0
}

fn stamp(v: &[u8]) -> u64 {
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

/// p50, p99, p99.9 in µs, after dropping the first 1% as warm-up, then the longest send.
fn summary(mut lat: Vec<u64>, longest_send: f64) -> Vec<f64> {
    let skip = lat.len() / 100;
    lat.drain(..skip);
    lat.sort_unstable();
    let mut v: Vec<f64> = [0.50, 0.99, 0.999]
        .iter()
        .map(|q| percentile(&lat, *q) as f64 / 1000.0)
        .collect();
    v.push(longest_send);
    v
}

fn logbus_run(o: &Opts, n: usize, wait: WaitStrategy) -> Vec<f64> {
    let d = o.tempdir();
    // Diagnostic: COMPARE_CHECKPOINT_MS changes the PageCache checkpoint interval (default 1 s).
    let mut cfg = BrokerConfig::new();
    if let Some(ms) = std::env::var("COMPARE_CHECKPOINT_MS").ok().and_then(|v| v.parse().ok()) {
        cfg = cfg.checkpoint_interval(Duration::from_millis(ms));
    }
    let (b, mut c, p) = crate::common::tailing_pair(d.path(), cfg, wait);
    let epoch = Instant::now();
    let lat = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let mut lat = Vec::with_capacity(n);
            while lat.len() < n {
                for r in &c.poll(Duration::from_secs(1)).unwrap() {
                    lat.push((epoch.elapsed().as_nanos() as u64).saturating_sub(stamp(r.value())));
                }
            }
            lat
        });
        let longest = pace_longest(n, epoch, |v| {
            p.send("t", Record::new(v.to_vec())).unwrap();
        });
        (h.join().unwrap(), longest)
    });
    b.close().unwrap();
    summary(lat.0, lat.1)
}

/// crossbeam's next record, by `try_recv` in a spin loop (`spin`) or a blocking `recv`.
pub fn crossbeam_next(rx: &crossbeam_channel::Receiver<Vec<u8>>, spin: bool) -> Vec<u8> {
    if !spin {
        return rx.recv().unwrap();
    }
    loop {
        match rx.try_recv() {
            Ok(v) => return v,
            Err(_) => std::hint::spin_loop(),
        }
    }
}

fn crossbeam_run(n: usize, spin: bool) -> Vec<f64> {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(1024);
    let epoch = Instant::now();
    let lat = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let mut lat = Vec::with_capacity(n);
            while lat.len() < n {
                let v = crossbeam_next(&rx, spin);
                lat.push((epoch.elapsed().as_nanos() as u64).saturating_sub(stamp(&v)));
            }
            lat
        });
        let longest = pace_longest(n, epoch, |v| tx.send(v.to_vec()).unwrap());
        (h.join().unwrap(), longest)
    });
    summary(lat.0, lat.1)
}

pub fn latency(o: &Opts) {
    let n = o.n(200_000, 20_000);
    println!(
        "\n## latency: {n} records of 100 bytes, one every 20 µs (busy-wait pacing), producer -> consumer thread; \
         first 1% dropped as warm-up"
    );
    let names = [
        "logbus block",
        "crossbeam recv",
        "logbus spin",
        "crossbeam try_recv spin",
    ];
    let mut runs: Vec<Run> = vec![
        Box::new(|| logbus_run(o, n, WaitStrategy::Block)),
        Box::new(|| crossbeam_run(n, false)),
        Box::new(|| logbus_run(o, n, WaitStrategy::Spin)),
        Box::new(|| crossbeam_run(n, true)),
    ];
    let _hog = crate::common::Hog::from_env();
    let s = interleave(o.rounds, &names, &mut runs, 4);
    for (i, label) in ["p50", "p99", "p99.9", "longest producer send() call"]
        .iter()
        .enumerate()
    {
        print_table(&format!("latency {label}"), "µs", &s[i], &[(0, 1), (2, 3)]);
    }
}
