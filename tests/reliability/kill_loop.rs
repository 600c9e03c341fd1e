//! Reliability (issue 6): kill -9 loops against a whole `Broker` on the real
//! filesystem.
//!
//! The test re-executes its own binary as a child. The child opens a broker
//! (`Durability::Sync`) with a 3-partition topic whose small segments roll and
//! whose `retention_bytes` deletes old ones, runs two producer threads and one
//! grouped consumer that commits after every poll, and prints every
//! acknowledged record (`A <partition> <offset> <value>`) and every
//! acknowledged commit (`C <partition> <offset>`). The parent SIGKILLs it after
//! a random delay, reopens the broker and checks what the README promises for
//! a process crash: every acknowledged record still stored is there with its
//! value, each partition is a gap-free run `start..end`, no record appears
//! twice or changes once seen, and committed offsets never go back. Then the
//! next child continues on the same directory.
//!
//! The topic is not compacted (policy `Delete`): offsets are checked to be
//! gap-free, since a gap here could only be a lost record. Compacted logs,
//! where gaps are legal, are `reliability::kill_compaction`'s.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logbus::{Broker, BrokerConfig, ConsumerConfig, Durability, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::common::{self, Deadline, Rng};

const CHILD_ENV: &str = "LOGBUS_RELIABILITY_KILL_CHILD";
const ROUND_ENV: &str = "LOGBUS_RELIABILITY_KILL_ROUND";
const TEST_NAME: &str = "kill_9_loop_keeps_every_acknowledged_record_and_commit";
const TOPIC: &str = "events";
const GROUP: &str = "auditors";
const PARTITIONS: u32 = 3;
const SEGMENT_BYTES: u64 = 8 * 1024;
const RETENTION_BYTES: u64 = 24 * 1024;
const KILLS: usize = 55;

fn broker_config() -> BrokerConfig {
    BrokerConfig::new().durability(Durability::Sync)
}

fn topic_config() -> TopicConfig {
    TopicConfig::new(PARTITIONS)
        .segment_bytes(SEGMENT_BYTES)
        .retention_bytes(Some(RETENTION_BYTES))
}

/// A value unique across the whole test: round, producer, sequence, and a
/// variable-length pad so that batches differ in size.
fn value(round: usize, producer: u32, seq: u64) -> String {
    format!("r{round}-p{producer}-s{seq}-{}", "x".repeat((seq % 37) as usize))
}

/// Child mode: produce and consume until killed (or a safety deadline).
fn child(dir: &Path, round: usize) {
    let broker = Broker::open_with(dir, broker_config()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Deadline::new(Duration::from_secs(20), "the child's run");
    let mut threads = Vec::new();
    for producer_id in 0..2u32 {
        let producer = broker.producer();
        let (stop, deadline) = (stop.clone(), deadline.clone());
        threads.push(std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) && !deadline.passed() {
                let v = value(round, producer_id, seq);
                // Alternate explicit partitions and round-robin.
                let mut record = Record::new(v.clone());
                if seq.is_multiple_of(2) {
                    record = record.with_partition(((seq / 2) % u64::from(PARTITIONS)) as u32);
                }
                let md = producer.send(TOPIC, record).unwrap();
                let line = format!("@A {} {} {v}\n", md.partition(), md.offset());
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).unwrap();
                out.flush().unwrap();
                seq += 1;
            }
        }));
    }
    let consumer_broker = broker.clone();
    threads.push(std::thread::spawn(move || {
        let mut consumer = consumer_broker
            .consumer(
                ConsumerConfig::new()
                    .group(GROUP)
                    .offset_reset(OffsetReset::Earliest)
                    .max_poll_records(50),
            )
            .unwrap();
        consumer.subscribe(&[TOPIC]).unwrap();
        while !deadline.passed() {
            let records = consumer.poll(Duration::from_millis(20)).unwrap();
            if records.is_empty() {
                continue;
            }
            let mut next: HashMap<u32, u64> = HashMap::new();
            for r in &records {
                next.insert(r.partition(), r.offset() + 1);
            }
            consumer.commit().unwrap();
            let mut out = std::io::stdout().lock();
            for (p, o) in next {
                out.write_all(format!("@C {p} {o}\n").as_bytes()).unwrap();
            }
            out.flush().unwrap();
        }
    }));
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
}

/// What the parent has learnt so far, across all rounds.
#[derive(Default)]
struct Model {
    /// Acknowledged records: (partition, offset) -> value.
    acked: HashMap<(u32, u64), String>,
    /// Every record seen in the log after a reopen: (partition, offset) -> value.
    seen: HashMap<(u32, u64), String>,
    /// Last acknowledged commit per partition.
    acked_commit: HashMap<u32, u64>,
    /// Committed offset found at the previous reopen.
    prev_committed: HashMap<u32, u64>,
    records_checked: u64,
    acked_checked: u64,
    acked_deleted_by_retention: u64,
    segments_deleted_seen: bool,
}

/// Parses one complete line of child output into the model.
fn absorb(model: &mut Model, line: &str) {
    // The harness prints "test NAME ... " without a newline before the test
    // runs, so the child's first line may follow it: start at the marker.
    let Some(at) = line.find('@') else { return };
    let mut parts = line[at + 1..].splitn(4, ' ');
    match parts.next() {
        Some("A") => {
            let p: u32 = parts.next().unwrap().parse().unwrap();
            let o: u64 = parts.next().unwrap().parse().unwrap();
            let v = parts.next().unwrap().to_string();
            let old = model.acked.insert((p, o), v.clone());
            assert!(old.is_none(), "offset {p}/{o} acknowledged twice ({old:?} and {v})");
        }
        Some("C") => {
            let p: u32 = parts.next().unwrap().parse().unwrap();
            let o: u64 = parts.next().unwrap().parse().unwrap();
            let e = model.acked_commit.entry(p).or_insert(0);
            *e = (*e).max(o);
        }
        _ => {} // test-harness chatter
    }
}

/// Reopens the broker and checks every promise; returns the number of records read.
fn check(dir: &Path, model: &mut Model, round: usize) {
    let broker = Broker::open_with(dir, broker_config()).unwrap();
    let topic = broker.topic(TOPIC).unwrap();
    let mut values_in_log: HashSet<String> = HashSet::new();
    for p in 0..PARTITIONS {
        let part = topic.partition(p).unwrap();
        let (start, end) = (part.start_offset(), part.end_offset());
        assert!(start <= end, "round {round}: partition {p} start {start} > end {end}");
        if start > 0 {
            model.segments_deleted_seen = true;
        }
        // Read everything, in chunks: a gap-free run start..end.
        let mut next = start;
        while next < end {
            let chunk = part.read(next, 500).unwrap();
            assert!(
                !chunk.is_empty(),
                "round {round}: partition {p} read at {next} < end {end} returned nothing"
            );
            for r in &chunk {
                assert_eq!(r.offset(), next, "round {round}: partition {p}: gap or repeat");
                let v = std::str::from_utf8(r.value()).unwrap().to_string();
                assert!(values_in_log.insert(v.clone()), "round {round}: value {v} stored twice");
                if let Some(old) = model.seen.get(&(p, next)) {
                    assert_eq!(old, &v, "round {round}: record {p}/{next} changed after a crash");
                }
                if let Some(a) = model.acked.get(&(p, next)) {
                    assert_eq!(
                        a, &v,
                        "round {round}: acknowledged record {p}/{next} has a different value"
                    );
                }
                model.seen.insert((p, next), v);
                model.records_checked += 1;
                next += 1;
            }
        }
        assert_eq!(next, end);
        assert_eq!(
            part.verify().unwrap(),
            end - start,
            "round {round}: partition {p} verify"
        );
        // Every acknowledged record at or above start is there.
        for (&(ap, ao), _) in model.acked.iter().filter(|((ap, _), _)| *ap == p) {
            if ao >= start {
                assert!(
                    ao < end,
                    "round {round}: acknowledged record {ap}/{ao} lost (end {end})"
                );
                model.acked_checked += 1;
            } else {
                model.acked_deleted_by_retention += 1;
            }
        }
        // Committed offsets: never past the end, never behind an acknowledged
        // commit, never backwards.
        let probe = broker.consumer(ConsumerConfig::new().group(GROUP)).unwrap();
        let committed = probe.committed(&TopicPartition::new(TOPIC, p)).unwrap();
        let acked_commit = model.acked_commit.get(&p).copied();
        if let Some(c) = committed {
            assert!(c <= end, "round {round}: partition {p} committed {c} past end {end}");
            assert!(
                acked_commit.is_none_or(|a| c >= a),
                "round {round}: partition {p} committed {c} behind acknowledged commit {acked_commit:?}"
            );
            let prev = model.prev_committed.insert(p, c);
            assert!(prev.is_none_or(|prev| c >= prev), "round {round}: commit went back");
        } else {
            assert!(
                acked_commit.is_none(),
                "round {round}: partition {p} lost its committed offset"
            );
        }
        // Forget what retention deleted: it can never come back.
        model.seen.retain(|&(sp, so), _| sp != p || so >= start);
        model.acked.retain(|&(sp, so), _| sp != p || so >= start);
    }
    broker.close().unwrap();
}

#[test]
fn kill_9_loop_keeps_every_acknowledged_record_and_commit() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
        child(Path::new(&dir), round);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open_with(dir.path(), broker_config()).unwrap();
        broker.create_topic(TOPIC, topic_config()).unwrap();
        broker.close().unwrap();
    }
    let mut rng = Rng::from_time();
    let mut model = Model::default();
    let mut acks_total = 0u64;
    let mut commits_total = 0u64;
    for round in 0..KILLS {
        let mut child = common::rerun_self(module_path!(), TEST_NAME);
        child.env(CHILD_ENV, dir.path()).env(ROUND_ENV, round.to_string());
        let lines = common::kill_after(child, Duration::from_millis(40 + rng.below(260)), round);
        for line in &lines {
            acks_total += u64::from(line.contains("@A "));
            commits_total += u64::from(line.contains("@C "));
            absorb(&mut model, line);
        }
        check(dir.path(), &mut model, round);
    }
    println!(
        "reliability_kill_loop: kills {KILLS}, acknowledged records {acks_total}, acknowledged commits \
         {commits_total}, records read back {}, acknowledged records checked {}, acknowledged then deleted by \
         retention {}, lost 0",
        model.records_checked, model.acked_checked, model.acked_deleted_by_retention
    );
    assert!(acks_total > 0, "the children acknowledged nothing");
    assert!(commits_total > 0, "the consumer acknowledged no commit");
    assert!(
        model.segments_deleted_seen,
        "retention never deleted a segment: the test is too weak"
    );
}
