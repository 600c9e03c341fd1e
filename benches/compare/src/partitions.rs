//! Scenario `partitions`: what a partition costs. In a child process per
//! run (its peak RSS is its own): open a broker, create a topic of N
//! partitions, close (timed: "create"); the child's `VmHWM` then ("peak RSS
//! at create"); the disk the empty topic takes (allocated blocks); then
//! open, send 200,000 keyed records of ~40 bytes with `send_batch` in
//! chunks of 1,000 (each routed by its key, as `logbus produce` does), close
//! (timed: "produce"); then the same again on the topic as that left it
//! (timed: "produce again": no partition is new any more). N = 10, 100,
//! 1,000 (issue 18, item 5). The runs' directories are deleted together
//! after the last run, not between runs (see `partitions`).

use std::path::Path;
use std::time::Instant;

use logbus::{Broker, Record, TopicConfig};

use crate::child::spawn;
use crate::common::Opts;
use crate::stats::{interleave, print_table, Run};

const COUNTS: [u32; 3] = [10, 100, 1000];
const RECORDS: u64 = 200_000;
const CHUNK: u64 = 1000;
const MB: f64 = 1e6;

/// Child: prints `partitions CREATE_S HWM_BYTES DISK_BYTES PRODUCE_S AGAIN_S`,
/// then `phases` with the seconds of each step (broker open, create_topic,
/// close; open, sends, close, twice) and the sending thread's CPU seconds in
/// each produce's sends, which the parent ignores (for runs by
/// hand: `logbus-compare __child partitions logbus DIR N`).
pub fn child(dir: &Path, partitions: u32) {
    let mut phases = Vec::new();
    let mut lap = Instant::now();
    let step = |phases: &mut Vec<f64>, lap: &mut Instant| {
        phases.push(lap.elapsed().as_secs_f64());
        *lap = Instant::now();
    };
    let t = Instant::now();
    let b = Broker::open(dir).unwrap();
    step(&mut phases, &mut lap);
    b.create_topic("big", TopicConfig::new(partitions)).unwrap();
    step(&mut phases, &mut lap);
    b.close().unwrap();
    step(&mut phases, &mut lap);
    let create = t.elapsed().as_secs_f64();
    let hwm = vm_hwm();
    let disk = allocated_bytes(dir);

    let mut produce = [0.0; 2];
    let mut sends_cpu = Vec::new();
    for time in &mut produce {
        let t = Instant::now();
        lap = t;
        let b = Broker::open(dir).unwrap();
        step(&mut phases, &mut lap);
        let p = b.producer();
        let cpu = crate::common::thread_cpu_s();
        for chunk in 0..RECORDS / CHUNK {
            let records = (chunk * CHUNK..(chunk + 1) * CHUNK)
                .map(|i| Record::new(format!("value number {i} with some padding text")).with_key(format!("key-{i}")));
            p.send_batch("big", records).unwrap();
        }
        sends_cpu.push(crate::common::thread_cpu_s() - cpu);
        step(&mut phases, &mut lap);
        b.close().unwrap();
        step(&mut phases, &mut lap);
        *time = t.elapsed().as_secs_f64();
    }
    println!("partitions {create} {hwm} {disk} {} {}", produce[0], produce[1]);
    let names = [
        "open",
        "create_topic",
        "close",
        "open",
        "sends",
        "close",
        "open",
        "sends",
        "close",
    ];
    let steps: Vec<String> = names.iter().zip(&phases).map(|(n, s)| format!("{n} {s:.3}")).collect();
    let cpus: Vec<String> = sends_cpu.iter().map(|s| format!("{s:.3}")).collect();
    println!("phases {} (sending thread's CPU: {})", steps.join(" "), cpus.join(" "));
}

/// Peak resident memory of this process so far, bytes (`VmHWM`).
fn vm_hwm() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Disk blocks allocated under `dir` (files and directories), bytes: what `du` counts.
fn allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// One child's figures, and its directory (deleted by the caller, later).
fn run(o: &Opts, partitions: u32) -> (Vec<f64>, tempfile::TempDir) {
    let d = o.tempdir();
    let dir = d.path().join("data");
    let out = spawn(&["partitions", "logbus", dir.to_str().unwrap(), &partitions.to_string()]);
    let line = out
        .lines()
        .find(|l| l.starts_with("partitions "))
        .expect("partitions line");
    let v: Vec<f64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect();
    (vec![v[0], v[1] / MB, v[2] / MB, v[3], v[4]], d)
}

pub fn partitions(o: &Opts) {
    println!(
        "\n## partitions: a child creates a topic of N partitions (open, create, close), then sends \
         {RECORDS} keyed records of ~40 bytes (send_batch of {CHUNK}, routed by key; open and close included), twice"
    );
    let names_owned: Vec<String> = COUNTS.iter().map(|n| format!("{n} partitions")).collect();
    let names: Vec<&str> = names_owned.iter().map(String::as_str).collect();
    // Every run's directory is kept until the last run ends: on an ext4
    // without a journal, creating an inode skips the inodes freed in the last
    // 5-35 s one by one, so deleting one run's 2,000 files right before the
    // next would time that deletion as much as the next create.
    let kept = std::cell::RefCell::new(Vec::new());
    let mut runs: Vec<Run> = COUNTS
        .iter()
        .map(|&n| {
            let kept = &kept;
            Box::new(move || {
                let (figures, dir) = run(o, n);
                kept.borrow_mut().push(dir);
                figures
            }) as Run
        })
        .collect();
    let s = interleave(o.rounds, &names, &mut runs, 5);
    drop(runs);
    drop(kept);
    print_table("partitions: create a topic (lower is better)", "s", &s[0], &[(2, 0)]);
    print_table("partitions: peak RSS at create (lower is better)", "MB", &s[1], &[]);
    print_table(
        "partitions: disk of the empty topic (lower is better)",
        "MB",
        &s[2],
        &[],
    );
    print_table(
        "partitions: produce 200K keyed records (lower is better)",
        "s",
        &s[3],
        &[(1, 0), (2, 0)],
    );
    print_table(
        "partitions: produce 200K keyed records again (lower is better)",
        "s",
        &s[4],
        &[(1, 0), (2, 0)],
    );
}
