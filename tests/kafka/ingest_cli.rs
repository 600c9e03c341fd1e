//! `logbus ingest` as a process: kill -9 at random moments while a producer
//! keeps writing to Kafka (no loss, no duplicate), and a clean SIGTERM stop.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus::inspect::Inspector;
use logbus::kafka::KafkaOrigin;
use logbus::{Broker, Record};

use crate::broker::Tansu;
use crate::common::Deadline;
use crate::ingest::local_records;
use crate::support::{create_topic, producer};

/// Starts `logbus --dir DIR ingest --bootstrap-server B --topic T EXTRA...`.
fn spawn_ingest(dir: &Path, broker: &Tansu, topic: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_logbus"))
        .arg("--dir")
        .arg(dir)
        .args(["ingest", "--bootstrap-server", &broker.bootstrap(), "--topic", topic])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the child to exit (panics after `timeout`), with its stderr.
fn wait_exit(mut child: Child, timeout: Duration) -> Output {
    let deadline = Deadline::new(timeout, "logbus ingest to exit");
    while child.try_wait().unwrap().is_none() {
        if deadline.passed() {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("logbus ingest did not exit within {timeout:?}; stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn sigterm(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0);
}

/// Records stored locally, read without the directory lock (the ingest holds it).
fn local_count(dir: &Path, topic: &str) -> u64 {
    let Ok(inspector) = Inspector::open(dir) else {
        return 0;
    };
    let Ok(meta) = inspector.topic_meta(topic) else {
        return 0;
    };
    (0..meta.partitions)
        .map(|p| inspector.partition_info(topic, p).map_or(0, |i| i.end_offset))
        .sum()
}

/// Waits until `n` records are stored locally.
fn wait_local(dir: &Path, topic: &str, n: u64, timeout: Duration) {
    let deadline = Deadline::new(timeout, format!("{n} records ingested"));
    loop {
        let have = local_count(dir, topic);
        if have >= n {
            return;
        }
        deadline.check_with(|| format!("{have} so far"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts, for every Kafka (partition, offset) in `produced`, the local
/// records that came from it: (lost, duplicated, unexpected).
fn audit(dir: &Path, topic: &str, produced: &[(u32, u64)]) -> (usize, usize, usize) {
    let local = Broker::open(dir).unwrap();
    let mut copies: BTreeMap<(u32, u64), usize> = produced.iter().map(|&k| (k, 0)).collect();
    let mut unexpected = 0;
    for r in local_records(&local, topic) {
        let o = KafkaOrigin::of(&r).expect("every local record came from Kafka");
        assert_eq!(o.partition, r.partition());
        match copies.get_mut(&(o.partition, o.offset)) {
            Some(c) => *c += 1,
            None => unexpected += 1,
        }
    }
    let lost = copies.values().filter(|&&c| c == 0).count();
    let duplicated = copies.values().filter(|&&c| c > 1).map(|c| c - 1).sum();
    (lost, duplicated, unexpected)
}

#[test]
fn kill_9_of_logbus_ingest_20_times_while_producing_loses_and_duplicates_nothing() {
    const KILLS: usize = 20;
    let broker = Tansu::start();
    create_topic(&broker, "events", 3);
    let dir = tempfile::tempdir().unwrap();

    // A producer writes to Kafka for the whole test, keeping every acknowledged offset.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let kafka = producer(&broker);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut acked: Vec<(u32, u64)> = Vec::new();
            let mut i = 0u32;
            while !stop.load(Ordering::Acquire) {
                let batch = (0..30).map(|j| {
                    Record::new(format!("event {i}.{j}"))
                        .with_key(format!("k{j}"))
                        .with_partition((i + j) % 3)
                });
                for md in kafka.send_batch("events", batch).unwrap() {
                    acked.push((md.partition(), md.offset()));
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            acked
        })
    };

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut progressed = 0;
    let t = Instant::now();
    for _ in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let before = local_count(dir.path(), "events");
        let child = spawn_ingest(dir.path(), &broker, "events", &["--assign"]);
        std::thread::sleep(Duration::from_millis(300 + seed % 1200));
        let mut child = child;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if local_count(dir.path(), "events") > before {
            progressed += 1;
        }
    }
    stop.store(true, Ordering::Release);
    let produced = writer.join().unwrap();

    // A last run catches up, then stops cleanly.
    let child = spawn_ingest(dir.path(), &broker, "events", &["--assign"]);
    wait_local(dir.path(), "events", produced.len() as u64, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&child);
    let out = wait_exit(child, Duration::from_secs(20));
    assert!(out.status.success(), "{out:?}");

    let (lost, duplicated, unexpected) = audit(dir.path(), "events", &produced);
    println!(
        "reliability_ingest: kills={KILLS} runs_with_progress={progressed} produced={} lost={lost} \
         duplicated={duplicated} unexpected={unexpected} elapsed={:.1}s",
        produced.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(
        progressed >= KILLS / 2,
        "only {progressed} of {KILLS} runs ingested anything before the kill"
    );
    assert_eq!((lost, duplicated, unexpected), (0, 0, 0));
}

#[test]
fn sigterm_stops_cleanly_with_exit_0_and_a_restart_ingests_nothing_twice() {
    let broker = Tansu::start();
    create_topic(&broker, "clean", 3);
    let kafka = producer(&broker);
    let mut produced: Vec<(u32, u64)> = Vec::new();
    let mut send = |from: u32, to: u32| {
        let batch = (from..to).map(|i| Record::new(format!("c{i}")).with_partition(i % 3));
        produced.extend(
            kafka
                .send_batch("clean", batch)
                .unwrap()
                .iter()
                .map(|m| (m.partition(), m.offset())),
        );
    };
    send(0, 20);
    let dir = tempfile::tempdir().unwrap();
    let group = ["--group", "cli-ingest", "--set", "session.timeout.ms=6000"];

    let child = spawn_ingest(dir.path(), &broker, "clean", &group);
    wait_local(dir.path(), "clean", 20, Duration::from_secs(30));
    // A second process cannot take the directory.
    let second = wait_exit(
        spawn_ingest(dir.path(), &broker, "clean", &group),
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1));
    // The holder is named by its command line, with its pid.
    assert!(
        err.contains("locked by `logbus") && err.contains("ingest") && err.contains("(pid "),
        "{err}"
    );
    sigterm(&child);
    let out = wait_exit(child, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(
        err.contains("stopped after") && err.contains("20 records ingested"),
        "{err}"
    );

    send(20, 30);
    let child = spawn_ingest(dir.path(), &broker, "clean", &group);
    wait_local(dir.path(), "clean", 30, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&child);
    let out = wait_exit(child, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(err.contains("10 records ingested"), "{err}");
    assert_eq!(audit(dir.path(), "clean", &produced), (0, 0, 0));
}
