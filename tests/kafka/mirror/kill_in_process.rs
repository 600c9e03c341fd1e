//! The in-process mirror (`Mirror::start`) under crashes: a child process
//! (this test binary run again) opens the broker directory, starts the
//! mirror and keeps producing; the parent SIGKILLs it 20 times at random
//! moments and starts it again. At the end every record stored locally is
//! at Kafka with its stored value, and the duplicates (records sent again
//! after a kill) stay within the mirror's window per kill. The window is
//! small (50 records sent and not committed) so that the bound bites: a
//! mirror that let acknowledged records pile up uncommitted sends more again.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use logbus::kafka::Mirror;
use logbus::{Broker, Record, TopicConfig};

use super::{read_all, shipped, stored_records, wait_mirrored, Shipped};
use crate::broker::Tansu;
use crate::common::{self, Deadline, Rng};

const TEST_NAME: &str = "reliability_in_process_mirror_kill_9_twenty_times_loses_nothing";
const ENV_DIR: &str = "LOGBUS_MIRROR_KILL_DIR";
const ENV_BOOTSTRAP: &str = "LOGBUS_MIRROR_KILL_BOOTSTRAP";
const TOPIC: &str = "stream";
const PARTITIONS: u32 = 4;
const KILLS: usize = 20;
/// The mirrors' `max_in_flight`: records sent and not yet committed.
const WINDOW: usize = 50;
const SOURCE_ID: &str = "in-process-kill";

/// Records each child writes before it starts its mirror: a backlog the
/// mirror catches up on, so that some kills land while it sends as fast as
/// the window lets it.
const BACKLOG: u64 = 2000;

/// The child: open the directory, write a backlog, start the mirror, say
/// READY once it is connected, then produce 20 records every 10 ms and print
/// the mirror's counters every 50 ms, until killed (or, if the parent is
/// gone, for at most two minutes).
fn child(dir: &str, bootstrap: &str) {
    let broker = Broker::open(dir).unwrap();
    let pid = std::process::id();
    let producer = broker.producer();
    for chunk in 0..BACKLOG / 500 {
        let batch: Vec<Record> = (0..500)
            .map(|i| Record::new(format!("{pid}-backlog-{:0>82}", chunk * 500 + i)).with_key(i.to_string()))
            .collect();
        producer.send_batch(TOPIC, batch).unwrap();
    }
    let mirror = Mirror::builder(bootstrap)
        .topic(TOPIC)
        .source_id(SOURCE_ID)
        .max_in_flight(WINDOW)
        .delivery_timeout(Duration::from_secs(20))
        .start(&broker)
        .unwrap();
    let out = std::io::stdout();
    let ready = Deadline::new(Duration::from_secs(60), "the child's mirror to connect");
    while !mirror.status().connected {
        ready.check_with(|| format!("{:?}", mirror.status()));
        std::thread::sleep(Duration::from_millis(5));
    }
    writeln!(out.lock(), "READY").unwrap();
    let run = Deadline::new(Duration::from_secs(120), "the child's run");
    let mut n = 0u64;
    let mut last_print = Instant::now();
    while !run.passed() {
        let batch: Vec<Record> = (0..20)
            .map(|i| Record::new(format!("{pid}-{:0>90}", n + i)).with_key((n + i).to_string()))
            .collect();
        producer.send_batch(TOPIC, batch).unwrap();
        n += 20;
        std::thread::sleep(Duration::from_millis(10));
        if last_print.elapsed() >= Duration::from_millis(50) {
            let st = mirror.status();
            assert!(st.running, "the child's mirror stopped: {st:?}");
            let mut o = out.lock();
            writeln!(
                o,
                "STATUS {} {} {} {}",
                st.sent,
                st.acknowledged,
                st.resent,
                st.last_error.as_deref().unwrap_or("-").replace('\n', " ")
            )
            .unwrap();
            o.flush().unwrap();
            last_print = Instant::now();
        }
    }
}

/// What the parent learnt from one child's output.
#[derive(Default, Debug)]
struct Seen {
    ready: bool,
    /// Counters of the last status line: sent, acknowledged, resent.
    last: (u64, u64, u64),
    /// Status lines whose last error says records are sent again (a failed delivery).
    rewinds: usize,
}

fn spawn(dir: &std::path::Path, bootstrap: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = common::rerun_self(module_path!(), TEST_NAME)
        .env(ENV_DIR, dir)
        .env(ENV_BOOTSTRAP, bootstrap)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let pipe = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Takes in one line of the child's stdout (the test harness may print
/// `test NAME ... ` before the child's first line on the same line).
fn absorb(seen: &mut Seen, line: &str) {
    if line.ends_with("READY") {
        seen.ready = true;
    } else if let Some((_, rest)) = line.split_once("STATUS ") {
        let mut it = rest.splitn(4, ' ');
        let mut num = || it.next().unwrap().parse::<u64>().unwrap();
        seen.last = (num(), num(), num());
        if it.next().is_some_and(|e| e.contains("sending again")) {
            seen.rewinds += 1;
        }
    }
}

#[test]
fn reliability_in_process_mirror_kill_9_twenty_times_loses_nothing() {
    if let (Ok(dir), Ok(bootstrap)) = (std::env::var(ENV_DIR), std::env::var(ENV_BOOTSTRAP)) {
        child(&dir, &bootstrap);
        return;
    }
    let started = Instant::now();
    let seed = Rng::from_time().next() | 1;
    let mut rng = Rng::new(seed);
    let kafka = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker
            .create_topic(TOPIC, TopicConfig::new(PARTITIONS).segment_bytes(256 * 1024))
            .unwrap();
        broker.close().unwrap();
    }

    let (mut resent_seen, mut rewinds, mut acked_seen) = (0u64, 0usize, 0u64);
    for round in 0..KILLS {
        let (mut child, lines) = spawn(dir.path(), &kafka.bootstrap());
        let mut seen = Seen::default();
        // Kill at a random moment after the mirror connected: during its
        // catch-up on the backlog or later.
        let ready = Deadline::new(
            Duration::from_secs(90),
            format!("round {round}: the child's mirror to connect"),
        );
        while !seen.ready {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("round {round}: the child exited before its mirror connected: {st:?}");
            }
            ready.check();
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
                absorb(&mut seen, &line);
            }
        }
        // Every other kill within 300 ms: mostly during the catch-up.
        let run_for = Duration::from_millis(if round % 2 == 0 {
            rng.below(300)
        } else {
            300 + rng.below(1200)
        });
        let until = Instant::now() + run_for;
        while Instant::now() < until {
            if let Ok(line) = lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                absorb(&mut seen, &line);
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "round {round}: the child exited by itself; last status {seen:?}"
        );
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success());
        // Lines already in the pipe were printed before the kill.
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            absorb(&mut seen, &line);
        }
        resent_seen += seen.last.2;
        acked_seen += seen.last.1;
        rewinds += seen.rewinds;
    }

    // A last mirror, in this process, catches up and stops cleanly.
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.topic(TOPIC).unwrap();
    let stored_total: u64 = (0..PARTITIONS).map(|p| topic.partition(p).unwrap().end_offset()).sum();
    let mirror = Mirror::builder(kafka.bootstrap())
        .topic(TOPIC)
        .source_id(SOURCE_ID)
        .max_in_flight(WINDOW)
        .start(&broker)
        .unwrap();
    wait_mirrored(|| mirror.status(), stored_total);
    let last = mirror.stop().unwrap();
    assert!(
        last.resent <= WINDOW as u64,
        "the last run re-sent more than the window: {last:?}"
    );

    // Local truth: every stored record, by (partition, offset).
    let stored = stored_records(&topic, PARTITIONS);
    assert_eq!(stored.len() as u64, stored_total);
    // The children wrote their backlogs and more, and their mirrors shipped while running.
    assert!(
        stored_total > KILLS as u64 * BACKLOG,
        "only {stored_total} records stored"
    );
    assert!(acked_seen > 0, "no child reported an acknowledged record");

    let got = read_all(&kafka, TOPIC, PARTITIONS, stored.len(), Duration::from_secs(2));
    let Shipped {
        copies,
        lost,
        duplicates,
    } = shipped(&got, &stored, Some(SOURCE_ID));
    println!(
        "reliability_in_process_mirror: stored {} at_kafka {} lost {lost} duplicates {duplicates} \
         kept_after_dedup {} kills {KILLS} window {WINDOW} failed_delivery_rewinds {rewinds} \
         resent_reported_by_killed_children {resent_seen} (acked {acked_seen}) resent_last_run {} seed {seed} secs {:.0}",
        stored.len(),
        got.len(),
        copies.len(),
        last.resent,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0, "records stored locally and missing at Kafka");
    // Every copy names this mirror and a stored record: dropping repeats of
    // (source, partition, offset) leaves each stored record exactly once.
    assert_eq!(copies.len(), stored.len());
    // A kill makes the next run send again at most what was sent and not
    // committed, which the window bounds; so does a failed delivery.
    let bound = (KILLS + rewinds) * WINDOW;
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates, more than {KILLS} kills + {rewinds} rewinds times the window {WINDOW}"
    );
}
