//! Consumer groups: what triggers a rebalance (join, close, drop, unsubscribe,
//! topic growth, eviction), what members observe, the generation, and the
//! order of rebalance callbacks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use logbus::{
    AssignmentStrategy, Broker, Consumer, ConsumerConfig, Error, OffsetReset, RebalanceContext, RebalanceListener,
    Record, TopicConfig, TopicPartition,
};

use crate::common::{wait_until, Deadline};

const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Assigned,
    Revoked,
    Lost,
}

/// (global sequence number, member, kind, partition)
type Events = Arc<Mutex<Vec<(u64, usize, Kind, TopicPartition)>>>;

#[derive(Clone)]
struct Recorder {
    id: usize,
    seq: Arc<AtomicU64>,
    events: Events,
    /// Commit the positions of revoked partitions inside the callback.
    commit_on_revoke: bool,
    commit_errors: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn new(id: usize, seq: &Arc<AtomicU64>, events: &Events) -> Recorder {
        Recorder {
            id,
            seq: Arc::clone(seq),
            events: Arc::clone(events),
            commit_on_revoke: false,
            commit_errors: Arc::default(),
        }
    }

    fn record(&self, kind: Kind, partitions: &[TopicPartition]) {
        let mut ev = self.events.lock().unwrap();
        for tp in partitions {
            let n = self.seq.fetch_add(1, Ordering::SeqCst);
            ev.push((n, self.id, kind, tp.clone()));
        }
    }
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        if self.commit_on_revoke {
            let offsets: Vec<(TopicPartition, u64)> = partitions
                .iter()
                .map(|tp| (tp.clone(), ctx.position(tp).unwrap()))
                .collect();
            if let Err(e) = ctx.commit_offsets(&offsets) {
                self.commit_errors.lock().unwrap().push(e.to_string());
            }
        }
        self.record(Kind::Revoked, partitions);
    }

    fn on_partitions_assigned(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.record(Kind::Assigned, partitions);
    }

    fn on_partitions_lost(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.record(Kind::Lost, partitions);
    }
}

fn config(group: &str) -> ConsumerConfig {
    ConsumerConfig::new().group(group).offset_reset(OffsetReset::Earliest)
}

fn member(broker: &Broker, group: &str, topics: &[&str]) -> Consumer {
    let mut c = broker.consumer(config(group)).unwrap();
    c.subscribe(topics).unwrap();
    c
}

fn generation(broker: &Broker, group: &str) -> u64 {
    broker.describe_group(group).unwrap().generation
}

fn assignment(c: &Consumer) -> BTreeSet<TopicPartition> {
    c.assignment().into_iter().collect()
}

fn tps(topic: &str, n: u32) -> BTreeSet<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

/// Polls the consumers from this thread until `done` holds.
fn poll_until(cs: &mut [&mut Consumer], what: &str, mut done: impl FnMut(&[&mut Consumer]) -> bool) {
    wait_until(what, DEADLINE, || {
        for c in cs.iter_mut() {
            c.poll(Duration::ZERO).unwrap();
        }
        done(cs)
    });
}

#[test]
fn a_join_is_observed_by_the_existing_member_through_its_revoke_callback() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(4)).unwrap();
    let seq = Arc::new(AtomicU64::new(0));
    let events: Events = Arc::default();
    let mut a = broker.consumer(config("g")).unwrap();
    a.subscribe_with_listener(&["t"], Recorder::new(0, &seq, &events))
        .unwrap();
    poll_until(&mut [&mut a], "a owns all", |cs| cs[0].assignment().len() == 4);
    let g1 = generation(&broker, "g");

    let mut b = broker.consumer(config("g")).unwrap();
    b.subscribe_with_listener(&["t"], Recorder::new(1, &seq, &events))
        .unwrap();
    assert_eq!(generation(&broker, "g"), g1 + 1, "a join is one rebalance");
    // Nothing moves until the old owner polls.
    b.poll(Duration::ZERO).unwrap();
    assert!(
        b.assignment().is_empty(),
        "b must wait for a to release: {:?}",
        b.assignment()
    );
    assert_eq!(a.assignment().len(), 4);
    a.poll(Duration::ZERO).unwrap();
    assert_eq!(a.assignment().len(), 2);
    b.poll(Duration::ZERO).unwrap();
    assert_eq!(b.assignment().len(), 2);
    let revoked: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.2 == Kind::Revoked)
        .cloned()
        .collect();
    assert_eq!(
        revoked.len(),
        2,
        "a was told about the two partitions it lost: {revoked:?}"
    );
    assert!(revoked.iter().all(|e| e.1 == 0 && b.assignment().contains(&e.3)));
}

#[test]
fn close_drop_and_unsubscribe_each_trigger_a_rebalance_the_others_observe() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(6)).unwrap();
    let mut stay = member(&broker, "g", &["t"]);
    let mut by_close = member(&broker, "g", &["t"]);
    let mut by_drop = member(&broker, "g", &["t"]);
    let mut by_unsub = member(&broker, "g", &["t"]);
    poll_until(
        &mut [&mut stay, &mut by_close, &mut by_drop, &mut by_unsub],
        "4 members",
        |cs| {
            cs.iter().map(|c| c.assignment().len()).sum::<usize>() == 6 && cs.iter().all(|c| !c.assignment().is_empty())
        },
    );

    let g = generation(&broker, "g");
    by_close.close().unwrap();
    assert_eq!(generation(&broker, "g"), g + 1, "close is a rebalance");
    assert_eq!(broker.describe_group("g").unwrap().members.len(), 3);

    drop(by_drop);
    assert_eq!(generation(&broker, "g"), g + 2, "drop is a rebalance");
    assert_eq!(broker.describe_group("g").unwrap().members.len(), 2);

    by_unsub.unsubscribe().unwrap();
    assert_eq!(generation(&broker, "g"), g + 3, "unsubscribe is a rebalance");
    assert!(by_unsub.assignment().is_empty());
    poll_until(&mut [&mut stay], "the last member takes everything", |cs| {
        cs[0].assignment().len() == 6
    });
    assert_eq!(assignment(&stay), tps("t", 6));
    let desc = broker.describe_group("g").unwrap();
    assert_eq!(desc.members.len(), 1);
    assert_eq!(desc.members[0].assignment.len(), 6);
}

#[test]
fn close_and_unsubscribe_report_the_partitions_as_revoked_so_they_can_be_committed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let p = broker.producer();
    for i in 0..10 {
        p.send("t", Record::new(format!("{i}")).with_partition(i % 2)).unwrap();
    }
    let seq = Arc::new(AtomicU64::new(0));
    let events: Events = Arc::default();
    for how in ["close", "unsubscribe", "drop"] {
        let group = format!("g-{how}");
        let mut rec = Recorder::new(0, &seq, &events);
        rec.commit_on_revoke = true;
        let errors = Arc::clone(&rec.commit_errors);
        let mut c = broker.consumer(config(&group)).unwrap();
        c.subscribe_with_listener(&["t"], rec).unwrap();
        let mut n = 0;
        wait_until("10 records", DEADLINE, || {
            n += c.poll(Duration::from_millis(20)).unwrap().len();
            n >= 10
        });
        assert_eq!(n, 10);
        events.lock().unwrap().clear();
        match how {
            "close" => c.close().unwrap(),
            "unsubscribe" => c.unsubscribe().unwrap(),
            _ => drop(c),
        }
        let revoked: BTreeSet<TopicPartition> = events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.2 == Kind::Revoked)
            .map(|e| e.3.clone())
            .collect();
        assert_eq!(revoked, tps("t", 2), "{how} reports what the member owned as revoked");
        assert!(errors.lock().unwrap().is_empty(), "{how}: {:?}", errors.lock().unwrap());
        let desc = broker.describe_group(&group).unwrap();
        let committed: Vec<Option<u64>> = desc.partitions.iter().map(|p| p.committed).collect();
        assert_eq!(committed, vec![Some(5), Some(5)], "{how}: the callback's commit landed");
    }
}

#[test]
fn adding_partitions_triggers_a_rebalance_and_the_new_partitions_are_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let mut a = member(&broker, "g", &["t"]);
    let mut b = member(&broker, "g", &["t"]);
    poll_until(&mut [&mut a, &mut b], "1 + 1", |cs| {
        cs.iter().all(|c| c.assignment().len() == 1)
    });
    let g = generation(&broker, "g");
    broker.add_partitions("t", 4).unwrap();
    assert_eq!(
        generation(&broker, "g"),
        g + 1,
        "growing a subscribed topic is a rebalance"
    );
    let p = broker.producer();
    for part in 0..4 {
        p.send("t", Record::new(format!("p{part}")).with_partition(part))
            .unwrap();
    }
    let mut got = BTreeSet::new();
    let deadline = Deadline::new(DEADLINE, "a record from each of the 4 partitions");
    while got.len() < 4 {
        for c in [&mut a, &mut b] {
            for r in &c.poll(Duration::from_millis(5)).unwrap() {
                got.insert(String::from_utf8(r.value().to_vec()).unwrap());
            }
        }
        deadline.check_with(|| format!("got only {got:?}"));
    }
    assert_eq!(assignment(&a).len(), 2);
    assert_eq!(assignment(&b).len(), 2);
    let all: BTreeSet<TopicPartition> = assignment(&a).union(&assignment(&b)).cloned().collect();
    assert_eq!(all, tps("t", 4));
}

#[test]
fn every_rebalance_increments_the_generation_and_unrelated_topics_do_not_fence() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(3)).unwrap();
    let mut a = member(&broker, "g", &["t"]);
    let g0 = generation(&broker, "g");
    let b = member(&broker, "g", &["t"]);
    assert_eq!(generation(&broker, "g"), g0 + 1);
    a.subscribe(&["t", "u"]).unwrap();
    assert_eq!(generation(&broker, "g"), g0 + 2, "a new subscription is a rebalance");
    broker.create_topic("u", TopicConfig::new(1)).unwrap();
    assert_eq!(
        generation(&broker, "g"),
        g0 + 3,
        "a subscribed topic appearing is a rebalance"
    );
    broker.add_partitions("t", 5).unwrap();
    assert_eq!(generation(&broker, "g"), g0 + 4);
    drop(b);
    assert_eq!(generation(&broker, "g"), g0 + 5);

    // A topic nobody in the group subscribes to changes nothing: the member's
    // commits stay valid.
    broker.producer().send("t", Record::new("x").with_partition(0)).unwrap();
    wait_until("a's record", DEADLINE, || {
        !a.poll(Duration::from_millis(10)).unwrap().is_empty()
    });
    broker.create_topic("unrelated", TopicConfig::new(2)).unwrap();
    broker.add_partitions("unrelated", 3).unwrap();
    broker.delete_topic("unrelated").unwrap();
    assert_eq!(
        generation(&broker, "g"),
        g0 + 5,
        "unrelated topic changes are not rebalances"
    );
    a.commit().unwrap();
}

#[test]
fn deleting_a_subscribed_topic_revokes_its_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    broker.create_topic("gone", TopicConfig::new(2)).unwrap();
    let seq = Arc::new(AtomicU64::new(0));
    let events: Events = Arc::default();
    let mut a = broker.consumer(config("g")).unwrap();
    a.subscribe_with_listener(&["t", "gone"], Recorder::new(0, &seq, &events))
        .unwrap();
    poll_until(&mut [&mut a], "a owns 4", |cs| cs[0].assignment().len() == 4);
    let g = generation(&broker, "g");
    broker.delete_topic("gone").unwrap();
    assert_eq!(generation(&broker, "g"), g + 1);
    a.poll(Duration::ZERO).unwrap();
    assert_eq!(
        assignment(&a),
        tps("t", 2),
        "the deleted topic's partitions left the assignment"
    );
    let revoked: BTreeSet<TopicPartition> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.2 == Kind::Revoked)
        .map(|e| e.3.clone())
        .collect();
    assert_eq!(revoked, tps("gone", 2));
    a.commit().unwrap();

    // Re-created: assigned again, read from the start (no commit for it).
    broker.create_topic("gone", TopicConfig::new(1)).unwrap();
    broker.producer().send("gone", Record::new("new")).unwrap();
    wait_until("the record on the re-created topic", DEADLINE, || {
        let recs = a.poll(Duration::from_millis(10)).unwrap();
        let got = recs.iter().next();
        if let Some(r) = &got {
            assert_eq!((r.topic(), r.value()), ("gone", &b"new"[..]));
        }
        got.is_some()
    });
    assert_eq!(a.assignment().len(), 3);
}

#[test]
fn revocation_is_reported_to_the_old_owner_before_the_new_owner_is_assigned() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(8)).unwrap();
    let seq = Arc::new(AtomicU64::new(0));
    let events: Events = Arc::default();
    let stops: Vec<Arc<AtomicBool>> = (0..4).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let sizes: Arc<Mutex<BTreeMap<usize, usize>>> = Arc::default();

    let spawn = |id: usize, strategy: AssignmentStrategy| {
        let broker = broker.clone();
        let rec = Recorder::new(id, &seq, &events);
        let stop = Arc::clone(&stops[id]);
        let sizes = Arc::clone(&sizes);
        thread::spawn(move || {
            let mut c = broker.consumer(config("g").assignment_strategy(strategy)).unwrap();
            c.subscribe_with_listener(&["t"], rec).unwrap();
            while !stop.load(Ordering::Relaxed) {
                c.poll(Duration::from_millis(10)).unwrap();
                sizes.lock().unwrap().insert(id, c.assignment().len());
            }
            sizes.lock().unwrap().remove(&id);
            c.close().unwrap();
        })
    };
    let settled = |want: &[(usize, usize)]| {
        let s = sizes.lock().unwrap();
        s.len() == want.len() && want.iter().all(|(id, n)| s.get(id) == Some(n))
    };
    let mut handles = vec![spawn(0, AssignmentStrategy::RoundRobin)];
    wait_until("0 owns 8", DEADLINE, || settled(&[(0, 8)]));
    handles.push(spawn(1, AssignmentStrategy::RoundRobin));
    wait_until("4 + 4", DEADLINE, || settled(&[(0, 4), (1, 4)]));
    handles.push(spawn(2, AssignmentStrategy::RoundRobin));
    handles.push(spawn(3, AssignmentStrategy::RoundRobin));
    wait_until("2 + 2 + 2 + 2", DEADLINE, || settled(&[(0, 2), (1, 2), (2, 2), (3, 2)]));
    stops[0].store(true, Ordering::Relaxed);
    wait_until("3 members", DEADLINE, || {
        settled(&[(1, 3), (2, 3), (3, 2)]) || settled(&[(1, 3), (2, 2), (3, 3)]) || settled(&[(1, 2), (2, 3), (3, 3)])
    });
    for s in &stops {
        s.store(true, Ordering::Relaxed);
    }
    for h in handles {
        h.join().unwrap();
    }

    // Per partition, in global order: assigned(m), revoked(m), assigned(m'), ...
    let mut ev = events.lock().unwrap().clone();
    ev.sort_by_key(|e| e.0);
    let mut per_tp: BTreeMap<TopicPartition, Vec<(usize, Kind)>> = BTreeMap::new();
    for (_, m, k, tp) in &ev {
        per_tp.entry(tp.clone()).or_default().push((*m, *k));
    }
    assert_eq!(per_tp.len(), 8);
    let mut handovers = 0;
    for (tp, list) in &per_tp {
        let mut owner: Option<usize> = None;
        for &(m, k) in list {
            match k {
                Kind::Assigned => {
                    assert_eq!(
                        owner, None,
                        "{tp} assigned to {m} before {owner:?} was told it was revoked: {list:?}"
                    );
                    owner = Some(m);
                    handovers += 1;
                }
                Kind::Revoked => {
                    assert_eq!(owner, Some(m), "{tp} revoked from {m}, which did not own it: {list:?}");
                    owner = None;
                }
                Kind::Lost => panic!("no member was evicted here: {list:?}"),
            }
        }
        assert_eq!(owner, None, "close reports the final revocation: {tp} {list:?}");
    }
    println!("{} callback events, {handovers} assignments", ev.len());
    assert!(handovers > 8, "partitions did change hands");
}

#[test]
fn a_blocked_poller_is_woken_to_release_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let mut a = member(&broker, "g", &["t"]);
    poll_until(&mut [&mut a], "a owns both", |cs| cs[0].assignment().len() == 2);
    let blocked = thread::spawn(move || {
        // Far longer than the test waits: only a wake-up lets b in.
        let recs = a.poll(Duration::from_secs(120)).unwrap();
        (a, recs.len())
    });
    thread::sleep(Duration::from_millis(50));
    let mut b = member(&broker, "g", &["t"]);
    poll_until(&mut [&mut b], "b receives a partition from the blocked a", |cs| {
        cs[0].assignment().len() == 1
    });
    // End a's poll with a record on the partition it kept.
    let kept = 1 - b.assignment()[0].partition;
    broker
        .producer()
        .send("t", Record::new("wake").with_partition(kept))
        .unwrap();
    let (a, n) = blocked.join().unwrap();
    assert_eq!(n, 1);
    assert_eq!(a.assignment(), vec![TopicPartition::new("t", kept)]);
}

#[test]
fn a_member_that_stops_polling_is_evicted_and_its_partitions_move() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(4)).unwrap();
    let interval = Duration::from_millis(300);
    let seq = Arc::new(AtomicU64::new(0));
    let events: Events = Arc::default();
    let mut slow = broker.consumer(config("g").max_poll_interval(interval)).unwrap();
    slow.subscribe_with_listener(&["t"], Recorder::new(0, &seq, &events))
        .unwrap();

    // `live` polls all along from its own thread.
    let live_size = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(AtomicBool::new(false));
    let live = {
        let (broker, live_size, stop) = (broker.clone(), Arc::clone(&live_size), Arc::clone(&stop));
        thread::spawn(move || {
            let mut c = broker.consumer(config("g").max_poll_interval(interval)).unwrap();
            c.subscribe(&["t"]).unwrap();
            while !stop.load(Ordering::Relaxed) {
                c.poll(Duration::from_millis(10)).unwrap();
                *live_size.lock().unwrap() = c.assignment().len();
            }
        })
    };
    wait_until("a 2 + 2 split", DEADLINE, || {
        let split = slow.assignment().len() == 2 && *live_size.lock().unwrap() == 2;
        if !split {
            slow.poll(Duration::from_millis(10)).unwrap();
        }
        split
    });

    events.lock().unwrap().clear();

    // A member blocked inside a poll longer than max_poll_interval is alive.
    let g = generation(&broker, "g");
    slow.poll(interval * 2).unwrap();
    assert_eq!(generation(&broker, "g"), g, "polling members are not evicted");
    assert_eq!(broker.describe_group("g").unwrap().members.len(), 2);

    // `slow` stops polling: it is evicted and `live` inherits its partitions.
    wait_until("live owns all 4", DEADLINE, || *live_size.lock().unwrap() == 4);
    assert_eq!(broker.describe_group("g").unwrap().members.len(), 1);
    assert!(generation(&broker, "g") > g);

    // The evicted member's commit is fenced; its next poll reports the lost
    // partitions and rejoins.
    let err = slow.commit_offsets(&[(TopicPartition::new("t", 0), 0)]).unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err:?}");
    assert!(err.to_string().contains('g'), "{err}");
    assert_eq!(slow.assignment().len(), 2, "nothing changes before it polls");
    slow.poll(Duration::ZERO).unwrap();
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 2, "the lost partitions are reported, as lost: {ev:?}");
    assert!(ev.iter().all(|e| e.2 == Kind::Lost), "{ev:?}");
    wait_until("slow to rejoin (2 + 2)", DEADLINE, || {
        let split = slow.assignment().len() == 2 && *live_size.lock().unwrap() == 2;
        if !split {
            slow.poll(Duration::from_millis(10)).unwrap();
        }
        split
    });
    assert_eq!(broker.describe_group("g").unwrap().members.len(), 2);
    stop.store(true, Ordering::Relaxed);
    live.join().unwrap();
}

#[test]
fn an_evicted_member_that_closes_reports_its_partitions_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let interval = Duration::from_millis(200);
    let seq = Arc::new(AtomicU64::new(0));
    let events: Events = Arc::default();
    let mut slow = broker.consumer(config("g").max_poll_interval(interval)).unwrap();
    slow.subscribe_with_listener(&["t"], Recorder::new(0, &seq, &events))
        .unwrap();
    poll_until(&mut [&mut slow], "slow owns both", |cs| cs[0].assignment().len() == 2);
    let mut other = broker.consumer(config("g")).unwrap();
    other
        .subscribe_with_listener(&["t"], Recorder::new(1, &seq, &events))
        .unwrap();
    // Only `other` polls: `slow` is evicted and `other` takes everything.
    poll_until(&mut [&mut other], "other owns both", |cs| cs[0].assignment().len() == 2);
    events.lock().unwrap().clear();
    slow.close().unwrap();
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(
        ev.iter().all(|e| e.2 == Kind::Lost),
        "already owned by another member: lost, not revoked: {ev:?}"
    );
}
