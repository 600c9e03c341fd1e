//! Committed offsets survive a crash. The kill -9 test re-executes this test
//! binary as a child process (selected by an environment variable) that
//! produces, consumes and commits in a loop, printing every acknowledged
//! commit; the parent SIGKILLs it at a random point and reopens the directory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use logbus::{Broker, BrokerConfig, ConsumerConfig, Durability, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::common::{self, Deadline};

const CHILD_DIR: &str = "LOGBUS_GROUP_CRASH_DIR";
const CHILD_DURABILITY: &str = "LOGBUS_GROUP_CRASH_SYNC";
const PARTITIONS: u32 = 4;

fn tp(p: u32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn durability(sync: bool) -> BrokerConfig {
    BrokerConfig::default().durability(if sync { Durability::Sync } else { Durability::PageCache })
}

/// The child: produce a little, poll, commit, print "ACK <partition> <offset>"
/// for each partition of every acknowledged commit. Runs until killed (or,
/// if the parent is gone, for at most a minute).
fn child(dir: &str, sync: bool) {
    let broker = Broker::open_with(dir, durability(sync)).unwrap();
    let producer = broker.producer();
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .group("g")
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(7),
        )
        .unwrap();
    c.subscribe(&["t"]).unwrap();
    let out = std::io::stdout();
    let run = Deadline::new(Duration::from_secs(60), "the child's run");
    let mut n = 0u64;
    while !run.passed() {
        producer
            .send_batch(
                "t",
                (0..3).map(|i| Record::new(format!("{n}-{i}")).with_key(format!("k{}", n + i))),
            )
            .unwrap();
        n += 3;
        c.poll(Duration::from_millis(1)).unwrap();
        let positions: Vec<(u32, u64)> = c
            .assignment()
            .iter()
            .map(|t| (t.partition, c.position(t).unwrap()))
            .collect();
        c.commit().unwrap();
        let mut o = out.lock();
        for (p, pos) in positions {
            writeln!(o, "ACK {p} {pos}").unwrap();
        }
        o.flush().unwrap();
    }
}

/// Runs the child until it has acknowledged at least `acks` commits, kills
/// it, and returns the last acknowledged offset per partition.
fn run_and_kill(dir: &std::path::Path, sync: bool, acks: usize) -> BTreeMap<u32, u64> {
    let mut child = common::rerun_self(module_path!(), "commits_survive_kill_9")
        .env(CHILD_DIR, dir)
        .env(CHILD_DURABILITY, if sync { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    let mut seen = 0;
    let mut killed = false;
    let mut line = String::new();
    let deadline = Deadline::new(
        Duration::from_secs(25),
        format!("{acks} acknowledged commits and the kill"),
    );
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // A line cut by the kill has no newline: that commit was not acknowledged.
        if let Some(rest) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) {
            let mut it = rest.split(' ').map(|x| x.parse::<u64>().unwrap());
            let (p, off) = (it.next().unwrap() as u32, it.next().unwrap());
            let prev = last.insert(p, off).unwrap_or(0);
            assert!(off >= prev, "commits go forward: {p} {prev} -> {off}");
            seen += 1;
        }
        if !killed && seen >= acks {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
        deadline.check_with(|| format!("child made too little progress ({seen} acks)"));
    }
    // Lines already in the pipe were acknowledged before the kill and count.
    let status = child.wait().unwrap();
    assert!(killed, "the child exited by itself: {status:?}");
    assert!(!status.success());
    last
}

#[test]
fn commits_survive_kill_9() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(&dir, std::env::var(CHILD_DURABILITY).as_deref() == Ok("1"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(PARTITIONS)).unwrap();
        broker.close().unwrap();
    }
    let mut previous: BTreeMap<u32, u64> = BTreeMap::new();
    for (round, acks) in [40usize, 150, 7, 300, 90].into_iter().enumerate() {
        let sync = round % 2 == 1;
        let last = run_and_kill(dir.path(), sync, acks);
        assert!(!last.is_empty());

        let broker = Broker::open_with(dir.path(), durability(sync)).unwrap();
        let topic = broker.topic("t").unwrap();
        let probe = broker.consumer(ConsumerConfig::new().group("g")).unwrap();
        let mut line = Vec::new();
        for p in 0..PARTITIONS {
            let committed = probe.committed(&tp(p)).unwrap();
            let end = topic.partition(p).unwrap().end_offset();
            if let Some(&acked) = last.get(&p) {
                let c = committed.expect("an acknowledged commit survives");
                assert!(c >= acked, "round {round}: t-{p} committed {c} < acknowledged {acked}");
            }
            if let Some(c) = committed {
                assert!(c <= end, "round {round}: t-{p} committed {c} past the end {end}");
                assert!(c >= previous.get(&p).copied().unwrap_or(0), "commits never go back");
                previous.insert(p, c);
            }
            line.push(format!(
                "t-{p}: acked {:?} committed {committed:?} end {end}",
                last.get(&p)
            ));
        }
        println!("round {round} (sync {sync}): {}", line.join(", "));
        assert!(
            broker.open_notes().iter().all(|n| !n.contains("past the partition")),
            "{:?}",
            broker.open_notes()
        );
        drop(probe);
        broker.close().unwrap();
    }
}

#[test]
fn commits_survive_a_clean_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(2)).unwrap();
        let p = broker.producer();
        p.send_batch("t", (0..10).map(|i| Record::new(format!("{i}")).with_partition(i % 2)))
            .unwrap();
        let mut c = broker.consumer(ConsumerConfig::new().group("g")).unwrap();
        c.subscribe(&["t"]).unwrap();
        c.poll(Duration::ZERO).unwrap();
        for off in 1..=5 {
            c.commit_offsets(&[(tp(0), off), (tp(1), off - 1)]).unwrap();
        }
        broker.close().unwrap();
        // The consumer outlived its broker: it fails cleanly.
        assert!(c.commit().is_err());
    }
    for _ in 0..2 {
        let broker = Broker::open(dir.path()).unwrap();
        let c = broker.consumer(ConsumerConfig::new().group("g")).unwrap();
        assert_eq!(c.committed(&tp(0)).unwrap(), Some(5));
        assert_eq!(c.committed(&tp(1)).unwrap(), Some(4));
        assert!(broker.open_notes().is_empty(), "{:?}", broker.open_notes());
        drop(c);
        broker.close().unwrap();
    }
}

#[test]
fn a_torn_commit_at_the_tail_of_the_offsets_log_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        broker
            .producer()
            .send_batch("t", (0..10).map(|i| Record::new(format!("{i}"))))
            .unwrap();
        for off in 1..=5 {
            broker.set_group_offsets("g", &[(tp(0), off)]).unwrap();
        }
        broker.close().unwrap();
    }
    let log = dir.path().join("@groups").join("offsets.log");
    let len = std::fs::metadata(&log).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len - 3).unwrap(); // a crash in the middle of the last append
    drop(f);
    let broker = Broker::open(dir.path()).unwrap();
    let desc = broker.describe_group("g").unwrap();
    assert_eq!(
        desc.partitions[0].committed,
        Some(4),
        "the torn commit is dropped, the rest kept"
    );
    assert!(!broker.open_notes().is_empty(), "the repair is reported");
    // The log is usable again and the next open is clean.
    broker.set_group_offsets("g", &[(tp(0), 6)]).unwrap();
    broker.close().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(broker.describe_group("g").unwrap().partitions[0].committed, Some(6));
    assert!(broker.open_notes().is_empty(), "{:?}", broker.open_notes());
}

#[test]
fn a_commit_past_the_end_is_clamped_on_open() {
    // Records acknowledged under PageCache can be lost by a power failure
    // while a (synced) commit for them survives: on open the commit is
    // clamped to the partition's end and the repair reported.
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        broker
            .producer()
            .send_batch("t", (0..10).map(|i| Record::new(format!("{i}"))))
            .unwrap();
        broker.set_group_offsets("g", &[(tp(0), 25)]).unwrap();
        broker.close().unwrap();
    }
    let broker = Broker::open(dir.path()).unwrap();
    let desc = broker.describe_group("g").unwrap();
    assert_eq!(desc.partitions[0].committed, Some(10));
    assert_eq!(desc.partitions[0].lag, Some(0));
    assert!(
        broker.open_notes().iter().any(|n| n.contains("past the partition")),
        "{:?}",
        broker.open_notes()
    );
}
