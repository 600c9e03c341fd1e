//! Consumer groups under churn: 60,000 keyed records produced while members
//! join, close and get dropped, each member committing after every poll.
//! Nothing may be lost; a record may be delivered twice only if it lies after
//! the previous owner's last successful commit (at-least-once hand-over).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use logbus::{
    AssignmentStrategy, Broker, ConsumerConfig, Error, OffsetReset, RebalanceContext, RebalanceListener, Record,
    TopicConfig, TopicPartition,
};

use crate::common::Deadline;

const RECORDS: u64 = 60_000;
const PARTITIONS: u32 = 8;
const DEADLINE: Duration = Duration::from_secs(25);

const RUN: u8 = 0;
const CLOSE: u8 = 1;
const DROP: u8 = 2;

#[derive(Default)]
struct Shared {
    /// Partition -> member, maintained from the rebalance callbacks.
    owners: Mutex<HashMap<u32, usize>>,
    /// Everything that went wrong, checked at the end.
    violations: Mutex<Vec<String>>,
    /// (partition, offset) -> times delivered.
    deliveries: Mutex<HashMap<(u32, u64), u32>>,
    /// Partition -> highest offset delivered so far + 1.
    high_water: Mutex<HashMap<u32, u64>>,
    /// Partition -> last offset a member's commit() was acknowledged for.
    acked: Mutex<HashMap<u32, u64>>,
    /// Records a new owner re-reads: previous high water - its start position.
    expected_duplicates: AtomicU64,
    handovers: AtomicU64,
    fenced_commits: AtomicU64,
    polls: AtomicU64,
}

impl Shared {
    fn violation(&self, v: String) {
        self.violations.lock().unwrap().push(v);
    }
}

struct Member {
    id: usize,
    shared: Arc<Shared>,
    /// Commit the positions of revoked partitions in the callback.
    commit_on_revoke: bool,
    /// Partition -> next offset this member expects on it.
    next: Arc<Mutex<HashMap<u32, u64>>>,
}

impl RebalanceListener for Member {
    fn on_partitions_revoked(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        if self.commit_on_revoke {
            let offsets: Vec<(TopicPartition, u64)> = partitions
                .iter()
                .map(|tp| (tp.clone(), ctx.position(tp).unwrap()))
                .collect();
            match ctx.commit_offsets(&offsets) {
                Ok(()) => {
                    let mut acked = self.shared.acked.lock().unwrap();
                    for (tp, pos) in offsets {
                        acked.insert(tp.partition, pos);
                    }
                }
                Err(e) => self
                    .shared
                    .violation(format!("member {}: commit in revoke failed: {e}", self.id)),
            }
        }
        let mut owners = self.shared.owners.lock().unwrap();
        for tp in partitions {
            if owners.remove(&tp.partition) != Some(self.id) {
                self.shared
                    .violation(format!("member {} revoked {tp} it did not own", self.id));
            }
            self.next.lock().unwrap().remove(&tp.partition);
        }
    }

    fn on_partitions_lost(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.shared
            .violation(format!("member {} was evicted and lost {partitions:?}", self.id));
    }

    fn on_partitions_assigned(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let mut owners = self.shared.owners.lock().unwrap();
        for tp in partitions {
            if let Some(other) = owners.insert(tp.partition, self.id) {
                self.shared
                    .violation(format!("member {} got {tp} while member {other} owns it", self.id));
            }
            // A new owner starts exactly at the last acknowledged commit.
            let start = ctx.position(tp).unwrap();
            let acked = self
                .shared
                .acked
                .lock()
                .unwrap()
                .get(&tp.partition)
                .copied()
                .unwrap_or(0);
            if start != acked {
                self.shared.violation(format!(
                    "member {} starts {tp} at {start}, the last acknowledged commit is {acked}",
                    self.id
                ));
            }
            let high = self
                .shared
                .high_water
                .lock()
                .unwrap()
                .get(&tp.partition)
                .copied()
                .unwrap_or(0);
            if start > high {
                self.shared
                    .violation(format!("{tp}: start {start} skips records after {high}"));
            }
            self.shared
                .expected_duplicates
                .fetch_add(high.saturating_sub(start), Ordering::Relaxed);
            self.shared.handovers.fetch_add(1, Ordering::Relaxed);
            self.next.lock().unwrap().insert(tp.partition, start);
        }
    }
}

#[derive(Clone, Copy)]
struct Setup {
    strategy: AssignmentStrategy,
    commit_on_revoke: bool,
}

fn run_member(broker: Broker, id: usize, shared: Arc<Shared>, control: Arc<AtomicU8>, setup: Setup) {
    let next: Arc<Mutex<HashMap<u32, u64>>> = Arc::default();
    let config = ConsumerConfig::new()
        .group("churn")
        .offset_reset(OffsetReset::Earliest)
        .max_poll_records(300)
        .assignment_strategy(setup.strategy);
    let mut c = broker.consumer(config).unwrap();
    let listener = Member {
        id,
        shared: Arc::clone(&shared),
        commit_on_revoke: setup.commit_on_revoke,
        next: Arc::clone(&next),
    };
    c.subscribe_with_listener(&["t"], listener).unwrap();
    loop {
        match control.load(Ordering::Relaxed) {
            CLOSE => {
                c.close().unwrap();
                return;
            }
            DROP => {
                drop(c);
                return;
            }
            _ => {}
        }
        let records = c.poll(Duration::from_millis(20)).unwrap();
        shared.polls.fetch_add(1, Ordering::Relaxed);
        {
            let mut next = next.lock().unwrap();
            let mut deliveries = shared.deliveries.lock().unwrap();
            let mut high = shared.high_water.lock().unwrap();
            for r in &records {
                let p = r.partition();
                let expect = next.get(&p).copied();
                if expect != Some(r.offset()) {
                    shared.violation(format!(
                        "member {id}: t-{p} offset {} but expected {expect:?}",
                        r.offset()
                    ));
                }
                next.insert(p, r.offset() + 1);
                *deliveries.entry((p, r.offset())).or_default() += 1;
                let h = high.entry(p).or_default();
                *h = (*h).max(r.offset() + 1);
            }
        }
        // Commit after every poll; remember what was acknowledged.
        let positions: Vec<(u32, u64)> = c
            .assignment()
            .iter()
            .map(|tp| (tp.partition, c.position(tp).unwrap()))
            .collect();
        match c.commit() {
            Ok(()) => {
                let mut acked = shared.acked.lock().unwrap();
                for (p, pos) in positions {
                    acked.insert(p, pos);
                }
            }
            Err(Error::Fenced { .. }) => {
                shared.fenced_commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => panic!("member {id}: commit failed: {e}"),
        }
    }
}

/// Runs the churn scenario; returns (duplicates, duplicates explained by hand-overs).
fn churn(setup: Setup) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(PARTITIONS)).unwrap();
    let shared = Arc::new(Shared::default());
    let produced_all = Arc::new(AtomicBool::new(false));

    let producer = {
        let p = broker.producer();
        let done = Arc::clone(&produced_all);
        thread::spawn(move || {
            let mut i = 0u64;
            while i < RECORDS {
                let batch: Vec<Record> = (i..(i + 100).min(RECORDS))
                    .map(|n| Record::new(n.to_string()).with_key(format!("key-{}", n % 997)))
                    .collect();
                i += batch.len() as u64;
                p.send_batch("t", batch).unwrap();
                thread::sleep(Duration::from_millis(2));
            }
            done.store(true, Ordering::Release);
        })
    };

    let mut members: Vec<(usize, Arc<AtomicU8>, thread::JoinHandle<()>)> = Vec::new();
    let mut next_id = 0usize;
    let mut spawn = |members: &mut Vec<(usize, Arc<AtomicU8>, thread::JoinHandle<()>)>| {
        let control = Arc::new(AtomicU8::new(RUN));
        let (b, s, c) = (broker.clone(), Arc::clone(&shared), Arc::clone(&control));
        let id = next_id;
        next_id += 1;
        members.push((id, control, thread::spawn(move || run_member(b, id, s, c, setup))));
    };
    spawn(&mut members);
    spawn(&mut members);

    // Churn while producing: joins, closes and drops in turn.
    let script = ["join", "close", "join", "join", "drop", "close", "join", "drop", "join"];
    let mut step = 0;
    let mut leaves = 0;
    let producing = Deadline::new(DEADLINE, "the producer to finish");
    while !produced_all.load(Ordering::Acquire) {
        producing.check();
        thread::sleep(Duration::from_millis(60));
        let action = script[step % script.len()];
        step += 1;
        match action {
            "join" if members.len() < 5 => spawn(&mut members),
            "close" | "drop" if members.len() > 1 => {
                let (_, control, handle) = members.remove(step % members.len());
                control.store(if action == "close" { CLOSE } else { DROP }, Ordering::Relaxed);
                handle.join().unwrap();
                leaves += 1;
            }
            _ => {}
        }
    }
    producer.join().unwrap();
    while members.len() < 2 {
        spawn(&mut members);
    }

    // Wait until every record was delivered at least once.
    let delivered = Deadline::new(DEADLINE, "every record delivered, then committed");
    while shared.deliveries.lock().unwrap().len() < RECORDS as usize {
        delivered.check_with(|| {
            format!(
                "only {} of {RECORDS} records delivered",
                shared.deliveries.lock().unwrap().len()
            )
        });
        thread::sleep(Duration::from_millis(10));
    }
    // ... and until the members' commits caught up with it.
    let committed = || -> u64 {
        let desc = broker.describe_group("churn").unwrap();
        desc.partitions.iter().map(|p| p.committed.unwrap_or(0)).sum()
    };
    while committed() < RECORDS {
        delivered.check_with(|| format!("commits stuck at {}", committed()));
        thread::sleep(Duration::from_millis(10));
    }
    for (_, control, _) in &members {
        control.store(CLOSE, Ordering::Relaxed);
    }
    for (_, _, handle) in members {
        handle.join().unwrap();
    }

    let violations = shared.violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} violations, first: {:?}",
        violations.len(),
        violations.first()
    );

    // Nothing lost: every offset of every partition, all 60,000 records.
    let deliveries = shared.deliveries.lock().unwrap();
    let topic = broker.topic("t").unwrap();
    let mut total_end = 0;
    let mut per_partition: BTreeMap<u32, u64> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let end = topic.partition(p).unwrap().end_offset();
        total_end += end;
        for o in 0..end {
            assert!(deliveries.contains_key(&(p, o)), "t-{p} offset {o} never delivered");
        }
        per_partition.insert(p, end);
    }
    assert_eq!(total_end, RECORDS);
    assert_eq!(deliveries.len() as u64, RECORDS);

    // Duplicates are exactly the records new owners re-read after the
    // previous owner's last acknowledged commit.
    let delivered: u64 = deliveries.values().map(|&n| u64::from(n)).sum();
    let duplicates = delivered - RECORDS;
    let expected = shared.expected_duplicates.load(Ordering::Relaxed);
    println!(
        "churn ({:?}, commit on revoke: {}): {RECORDS} records, {leaves} leaves, {} hand-overs, {} polls, {} fenced commits, {duplicates} duplicates \
         ({:.3}%), per partition {per_partition:?}",
        setup.strategy,
        setup.commit_on_revoke,
        shared.handovers.load(Ordering::Relaxed),
        shared.polls.load(Ordering::Relaxed),
        shared.fenced_commits.load(Ordering::Relaxed),
        duplicates as f64 * 100.0 / RECORDS as f64,
    );
    assert!(leaves >= 3, "the group did churn");

    // The group's commits cover everything and lag is zero.
    let desc = broker.describe_group("churn").unwrap();
    assert!(desc.members.is_empty());
    assert!(desc.partitions.iter().all(|p| p.lag == Some(0)), "{desc:?}");
    (duplicates, expected)
}

#[test]
fn sixty_thousand_keyed_records_through_a_churning_group() {
    let (duplicates, expected) = churn(Setup {
        strategy: AssignmentStrategy::Range,
        commit_on_revoke: false,
    });
    assert_eq!(
        duplicates, expected,
        "every duplicate lies after a last commit before a hand-over"
    );
}

#[test]
fn committing_in_the_revoke_callback_makes_hand_overs_duplicate_free() {
    // Sticky moves fewer partitions; the revoke callback commits what was
    // processed, so the next owner starts exactly where the last one stopped.
    let (duplicates, expected) = churn(Setup {
        strategy: AssignmentStrategy::Sticky,
        commit_on_revoke: true,
    });
    assert_eq!(duplicates, expected);
    assert_eq!(duplicates, 0, "commit-on-revoke hands over without re-delivery");
}
