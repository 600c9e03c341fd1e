//! Consumer groups: how partitions are split among members (Range,
//! RoundRobin, Sticky), observed through the public API, including with
//! members polling from their own threads while ownership is checked
//! continuously.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use logbus::{
    AssignmentStrategy, Broker, Consumer, ConsumerConfig, OffsetReset, RebalanceContext, RebalanceListener, Record,
    TopicConfig, TopicPartition,
};

use crate::common::wait_until;

const DEADLINE: Duration = Duration::from_secs(20);

/// Partition -> member index, updated from the members' own threads: a
/// partition is removed in the revoke callback (before the coordinator
/// releases it) and inserted in the assign callback (after it acquired it).
type Owners = Arc<Mutex<HashMap<TopicPartition, usize>>>;
type Violations = Arc<Mutex<Vec<String>>>;

struct OwnershipCheck {
    id: usize,
    owners: Owners,
    violations: Violations,
}

impl RebalanceListener for OwnershipCheck {
    fn on_partitions_revoked(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let mut owners = self.owners.lock().unwrap();
        for tp in partitions {
            let prev = owners.remove(tp);
            if prev != Some(self.id) {
                self.violations
                    .lock()
                    .unwrap()
                    .push(format!("member {} revoked {tp} but the map said {prev:?}", self.id));
            }
        }
    }

    fn on_partitions_assigned(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let mut owners = self.owners.lock().unwrap();
        for tp in partitions {
            if let Some(other) = owners.insert(tp.clone(), self.id) {
                self.violations.lock().unwrap().push(format!(
                    "member {} was assigned {tp} while member {other} owns it",
                    self.id
                ));
            }
        }
    }
}

/// Checks, from a member's thread after a poll, that its assignment is exactly
/// what the shared map says it owns.
fn check_view(id: usize, c: &Consumer, owners: &Owners, violations: &Violations) {
    let mine: BTreeSet<TopicPartition> = c.assignment().into_iter().collect();
    let map: BTreeSet<TopicPartition> = owners
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, &m)| m == id)
        .map(|(tp, _)| tp.clone())
        .collect();
    if mine != map {
        violations.lock().unwrap().push(format!(
            "member {id}: assignment {mine:?} but the ownership map says {map:?}"
        ));
    }
}

fn tps(topic: &str, n: u32) -> BTreeSet<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

fn group_config(group: &str, strategy: AssignmentStrategy) -> ConsumerConfig {
    ConsumerConfig::new()
        .group(group)
        .offset_reset(OffsetReset::Earliest)
        .assignment_strategy(strategy)
}

/// Polls every consumer (from this thread) until the assignment stops
/// changing and covers `total` partitions; returns each consumer's assignment.
fn settle(cs: &mut [Consumer], total: usize) -> Vec<BTreeSet<TopicPartition>> {
    let mut last: Vec<BTreeSet<TopicPartition>> = Vec::new();
    for _ in 0..100 {
        for c in cs.iter_mut() {
            c.poll(Duration::ZERO).unwrap();
        }
        let now: Vec<BTreeSet<TopicPartition>> = cs.iter().map(|c| c.assignment().into_iter().collect()).collect();
        let covered: usize = now.iter().map(BTreeSet::len).sum();
        if now == last && covered == total {
            return now;
        }
        last = now;
    }
    panic!("assignment did not settle: {last:?}");
}

fn assert_partition_of(assignments: &[BTreeSet<TopicPartition>], all: &BTreeSet<TopicPartition>) {
    let mut seen = BTreeSet::new();
    for a in assignments {
        for tp in a {
            assert!(seen.insert(tp.clone()), "{tp} assigned twice: {assignments:?}");
        }
    }
    assert_eq!(&seen, all, "every partition assigned exactly once");
}

fn sizes(assignments: &[BTreeSet<TopicPartition>]) -> Vec<usize> {
    assignments.iter().map(BTreeSet::len).collect()
}

#[test]
fn three_threaded_members_split_six_partitions_and_two_take_three_each_after_a_close() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(6)).unwrap();
    let owners: Owners = Arc::default();
    let violations: Violations = Arc::default();
    let views: Arc<Mutex<BTreeMap<usize, BTreeSet<TopicPartition>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let close_flags: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let received = Arc::new(Mutex::new(0usize));

    // A producer keeps records flowing so the members also fetch while rebalancing.
    let producer = {
        let p = broker.producer();
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                p.send("t", Record::new(n.to_string()).with_key(format!("k{}", n % 97)))
                    .unwrap();
                n += 1;
                thread::sleep(Duration::from_micros(200));
            }
            n
        })
    };

    let mut handles = Vec::new();
    for (id, close) in close_flags.iter().enumerate() {
        let broker = broker.clone();
        let (owners, violations, views) = (Arc::clone(&owners), Arc::clone(&violations), Arc::clone(&views));
        let (stop, close) = (Arc::clone(&stop), Arc::clone(close));
        let received = Arc::clone(&received);
        handles.push(thread::spawn(move || {
            let mut c = broker.consumer(group_config("g", AssignmentStrategy::Range)).unwrap();
            let check = OwnershipCheck {
                id,
                owners: Arc::clone(&owners),
                violations: Arc::clone(&violations),
            };
            c.subscribe_with_listener(&["t"], check).unwrap();
            loop {
                if close.load(Ordering::Relaxed) {
                    // close() reports the owned partitions as revoked
                    // (the listener updates the map) before leaving.
                    views.lock().unwrap().remove(&id);
                    c.close().unwrap();
                    assert!(!owners.lock().unwrap().values().any(|m| *m == id));
                    return;
                }
                if stop.load(Ordering::Relaxed) {
                    // Dropping leaves the group too, after the revoke callback.
                    drop(c);
                    return;
                }
                let recs = c.poll(Duration::from_millis(20)).unwrap();
                *received.lock().unwrap() += recs.len();
                check_view(id, &c, &owners, &violations);
                views.lock().unwrap().insert(id, c.assignment().into_iter().collect());
            }
        }));
    }

    let balanced = |expect: &[(usize, usize)]| {
        let v = views.lock().unwrap();
        expect.iter().all(|(id, n)| v.get(id).is_some_and(|a| a.len() == *n)) && v.len() == expect.len()
    };
    wait_until("2 + 2 + 2", DEADLINE, || balanced(&[(0, 2), (1, 2), (2, 2)]));
    let desc = broker.describe_group("g").unwrap();
    assert_eq!(desc.members.len(), 3);
    let mut counts: Vec<usize> = desc.members.iter().map(|m| m.assignment.len()).collect();
    counts.sort();
    assert_eq!(counts, vec![2, 2, 2], "{desc:?}");

    close_flags[1].store(true, Ordering::Relaxed);
    wait_until("3 + 3 after member 1 closed", DEADLINE, || balanced(&[(0, 3), (2, 3)]));
    let desc = broker.describe_group("g").unwrap();
    assert_eq!(desc.members.len(), 2, "{desc:?}");
    assert!(desc.partitions.iter().all(|p| p.owner.is_some()), "{desc:?}");
    {
        let v = views.lock().unwrap();
        let both: Vec<BTreeSet<TopicPartition>> = v.values().cloned().collect();
        assert_partition_of(&both, &tps("t", 6));
    }
    // Let the two survivors keep consuming for a moment under load.
    let before = *received.lock().unwrap();
    wait_until("the survivors keep receiving", DEADLINE, || {
        *received.lock().unwrap() > before + 50
    });

    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let sent = producer.join().unwrap();
    let v = violations.lock().unwrap();
    assert!(v.is_empty(), "ownership violations: {v:?}");
    println!("records sent {sent}, received {}", *received.lock().unwrap());
}

#[test]
fn every_strategy_balances_within_one_as_members_come_and_go() {
    for strategy in [
        AssignmentStrategy::Range,
        AssignmentStrategy::RoundRobin,
        AssignmentStrategy::Sticky,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(7)).unwrap();
        let all = tps("t", 7);
        let mut cs: Vec<Consumer> = Vec::new();
        for n in 1..=5 {
            let mut c = broker.consumer(group_config("g", strategy)).unwrap();
            c.subscribe(&["t"]).unwrap();
            cs.push(c);
            let a = settle(&mut cs, 7);
            assert_partition_of(&a, &all);
            let (min, max) = (
                sizes(&a).into_iter().min().unwrap(),
                sizes(&a).into_iter().max().unwrap(),
            );
            assert!(max - min <= 1, "{strategy:?} with {n} members: {:?}", sizes(&a));
        }
        // Eight members for seven partitions: one gets nothing.
        let mut extra: Vec<Consumer> = (0..3)
            .map(|_| {
                let mut c = broker.consumer(group_config("g", strategy)).unwrap();
                c.subscribe(&["t"]).unwrap();
                c
            })
            .collect();
        cs.append(&mut extra);
        let a = settle(&mut cs, 7);
        assert_partition_of(&a, &all);
        assert_eq!(
            sizes(&a).iter().filter(|&&s| s == 0).count(),
            1,
            "{strategy:?}: {:?}",
            sizes(&a)
        );
        while cs.len() > 1 {
            cs.remove(0).close().unwrap();
            let a = settle(&mut cs, 7);
            assert_partition_of(&a, &all);
            let (min, max) = (
                sizes(&a).into_iter().min().unwrap(),
                sizes(&a).into_iter().max().unwrap(),
            );
            assert!(
                max - min <= 1,
                "{strategy:?} with {} members: {:?}",
                cs.len(),
                sizes(&a)
            );
        }
    }
}

#[test]
fn range_splits_each_topic_and_round_robin_deals_across_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("a", TopicConfig::new(3)).unwrap();
    broker.create_topic("b", TopicConfig::new(3)).unwrap();
    let all: BTreeSet<TopicPartition> = tps("a", 3).union(&tps("b", 3)).cloned().collect();

    // Range: per topic, the first member takes the extra partition (Kafka's behaviour).
    let mut range: Vec<Consumer> = (0..2)
        .map(|_| {
            let mut c = broker
                .consumer(group_config("range", AssignmentStrategy::Range))
                .unwrap();
            c.subscribe(&["a", "b"]).unwrap();
            c
        })
        .collect();
    let a = settle(&mut range, 6);
    assert_partition_of(&a, &all);
    let mut s = sizes(&a);
    s.sort();
    assert_eq!(s, vec![2, 4], "range gives 2+1 per topic to the first member: {a:?}");

    let mut rr: Vec<Consumer> = (0..2)
        .map(|_| {
            let mut c = broker
                .consumer(group_config("rr", AssignmentStrategy::RoundRobin))
                .unwrap();
            c.subscribe(&["a", "b"]).unwrap();
            c
        })
        .collect();
    let a = settle(&mut rr, 6);
    assert_partition_of(&a, &all);
    assert_eq!(sizes(&a), vec![3, 3], "round robin balances across topics: {a:?}");
}

#[test]
fn sticky_moves_only_what_must_move() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(6)).unwrap();
    let all = tps("t", 6);
    let mut cs: Vec<Consumer> = (0..2)
        .map(|_| {
            let mut c = broker.consumer(group_config("g", AssignmentStrategy::Sticky)).unwrap();
            c.subscribe(&["t"]).unwrap();
            c
        })
        .collect();
    let before = settle(&mut cs, 6);
    assert_eq!(sizes(&before), vec![3, 3]);

    let mut c = broker.consumer(group_config("g", AssignmentStrategy::Sticky)).unwrap();
    c.subscribe(&["t"]).unwrap();
    cs.push(c);
    let after = settle(&mut cs, 6);
    assert_partition_of(&after, &all);
    assert_eq!(sizes(&after), vec![2, 2, 2]);
    for i in 0..2 {
        assert!(
            after[i].is_subset(&before[i]),
            "member {i} only gives partitions away: {before:?} -> {after:?}"
        );
    }
    let moved: usize = (0..2).map(|i| before[i].difference(&after[i]).count()).sum();
    assert_eq!(moved, 2, "only the newcomer's share moves: {before:?} -> {after:?}");

    // The first member leaves: the others keep theirs and split its two.
    let kept = after.clone();
    cs.remove(0).close().unwrap();
    let last = settle(&mut cs, 6);
    assert_partition_of(&last, &all);
    assert_eq!(sizes(&last), vec![3, 3]);
    assert!(
        kept[1].is_subset(&last[0]) && kept[2].is_subset(&last[1]),
        "{kept:?} -> {last:?}"
    );
}

#[test]
fn round_robin_skips_members_not_subscribed_to_a_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("a", TopicConfig::new(2)).unwrap();
    broker.create_topic("b", TopicConfig::new(4)).unwrap();
    for strategy in [
        AssignmentStrategy::Range,
        AssignmentStrategy::RoundRobin,
        AssignmentStrategy::Sticky,
    ] {
        let group = format!("g-{strategy:?}");
        let mut only_a = broker.consumer(group_config(&group, strategy)).unwrap();
        only_a.subscribe(&["a"]).unwrap();
        let mut both = broker.consumer(group_config(&group, strategy)).unwrap();
        both.subscribe(&["a", "b"]).unwrap();
        let mut cs = vec![only_a, both];
        let a = settle(&mut cs, 6);
        assert!(a[0].iter().all(|tp| tp.topic == "a"), "{strategy:?}: {a:?}");
        assert!(
            tps("b", 4).is_subset(&a[1]),
            "{strategy:?}: all of b goes to its only subscriber: {a:?}"
        );
        assert!(
            !a[0].is_empty(),
            "{strategy:?}: the a-only member gets some of a: {a:?}"
        );
    }
}

#[test]
fn a_topic_created_after_subscribing_is_assigned_once_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let mut c = broker.consumer(group_config("g", AssignmentStrategy::Range)).unwrap();
    c.subscribe(&["later"]).unwrap();
    assert!(c.poll(Duration::ZERO).unwrap().is_empty());
    assert!(c.assignment().is_empty());
    broker.create_topic("later", TopicConfig::new(2)).unwrap();
    broker
        .producer()
        .send("later", Record::new("x").with_partition(1))
        .unwrap();
    let mut got = Vec::new();
    wait_until("the record on the new topic", DEADLINE, || {
        got.extend(
            c.poll(Duration::from_millis(50))
                .unwrap()
                .iter()
                .map(|r| r.value().to_vec()),
        );
        !got.is_empty()
    });
    assert_eq!(got, vec![b"x".to_vec()]);
    assert_eq!(c.assignment().into_iter().collect::<BTreeSet<_>>(), tps("later", 2));
}
