//! Consumer groups: committed offsets (fencing, persistence across a
//! restart, where a member starts, offset reset, independent groups).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logbus::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, Durability, Error, OffsetReset, RebalanceContext,
    RebalanceListener, Record, TopicConfig, TopicPartition,
};

use crate::common::wait_until;

const DEADLINE: Duration = Duration::from_secs(20);

fn tp(topic: &str, p: u32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn config(group: &str, reset: OffsetReset) -> ConsumerConfig {
    ConsumerConfig::new().group(group).offset_reset(reset)
}

fn member(broker: &Broker, group: &str, reset: OffsetReset) -> Consumer {
    let mut c = broker.consumer(config(group, reset)).unwrap();
    c.subscribe(&["t"]).unwrap();
    c
}

fn produce(broker: &Broker, partitions: u32, per_partition: u64, tag: &str) {
    let p = broker.producer();
    for part in 0..partitions {
        let batch = (0..per_partition).map(|i| Record::new(format!("{tag}-{part}-{i}")).with_partition(part));
        p.send_batch("t", batch).unwrap();
    }
}

/// Polls until at least `n` records arrived: (partition, offset) of each.
fn take(c: &mut Consumer, n: usize) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    wait_until(&format!("{n} records"), DEADLINE, || {
        out.extend(
            c.poll(Duration::from_millis(10))
                .unwrap()
                .iter()
                .map(|r| (r.partition(), r.offset())),
        );
        out.len() >= n
    });
    out
}

/// Polls for a short while and returns whatever arrived.
fn drain(c: &mut Consumer) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for _ in 0..10 {
        out.extend(
            c.poll(Duration::from_millis(10))
                .unwrap()
                .iter()
                .map(|r| (r.partition(), r.offset())),
        );
    }
    out
}

#[test]
fn a_commit_from_a_stale_generation_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    produce(&broker, 2, 10, "a");
    let mut a = member(&broker, "g", OffsetReset::Earliest);
    assert_eq!(take(&mut a, 20).len(), 20);
    a.commit().unwrap();
    assert_eq!(a.committed(&tp("t", 0)).unwrap(), Some(10));

    // b joins: a has not polled since, so its view is stale.
    let mut b = member(&broker, "g", OffsetReset::Earliest);
    let err = a.commit().unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("'g'") || msg.contains("\"g\"") || msg.contains(" g"),
        "names the group: {msg}"
    );
    let err = a.commit_offsets(&[(tp("t", 0), 3)]).unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err:?}");
    assert_eq!(
        a.committed(&tp("t", 0)).unwrap(),
        Some(10),
        "a fenced commit changes nothing"
    );

    // After a poll a's view is current again.
    a.poll(Duration::ZERO).unwrap();
    a.commit().unwrap();
    b.poll(Duration::ZERO).unwrap();
    assert_eq!(b.assignment().len(), 1);
    b.commit().unwrap();
    let err = a.commit_offsets(&[(tp("t", 9), 3)]).unwrap_err();
    assert!(matches!(err, Error::UnknownPartition { .. }), "{err:?}");
}

#[test]
fn commits_need_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut c = broker.consumer(ConsumerConfig::new()).unwrap();
    c.assign(&[tp("t", 0)]).unwrap();
    assert!(matches!(c.commit(), Err(Error::InvalidConfig { .. })));
    assert!(matches!(
        c.commit_offsets(&[(tp("t", 0), 0)]),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(c.subscribe(&["t"]), Err(Error::InvalidConfig { .. })));
}

#[test]
fn a_new_member_resumes_at_the_committed_offset_across_a_restart() {
    for durability in [Durability::PageCache, Durability::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let bc = BrokerConfig::default().durability(durability);
        {
            let broker = Broker::open_with(dir.path(), bc.clone()).unwrap();
            broker.create_topic("t", TopicConfig::new(3)).unwrap();
            produce(&broker, 3, 20, "x");
            let mut c = member(&broker, "g", OffsetReset::Earliest);
            // Read everything, then commit only part of it explicitly.
            assert_eq!(take(&mut c, 60).len(), 60);
            c.commit_offsets(&[(tp("t", 0), 5), (tp("t", 1), 20), (tp("t", 2), 0)])
                .unwrap();
            c.commit_offsets(&[(tp("t", 0), 7)]).unwrap();
            c.close().unwrap();
            broker.close().unwrap();
        }
        let broker = Broker::open_with(dir.path(), bc).unwrap();
        let mut c = member(&broker, "g", OffsetReset::Latest);
        assert_eq!(c.committed(&tp("t", 0)).unwrap(), Some(7));
        assert_eq!(c.committed(&tp("t", 1)).unwrap(), Some(20));
        assert_eq!(c.committed(&tp("t", 2)).unwrap(), Some(0));
        let got = take(&mut c, 13 + 20);
        let mut per: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for (p, o) in got {
            per.entry(p).or_default().push(o);
        }
        assert_eq!(per.get(&0), Some(&(7..20).collect::<Vec<u64>>()), "{durability:?}");
        assert_eq!(per.get(&1), None, "{durability:?}: nothing left after 20");
        assert_eq!(per.get(&2), Some(&(0..20).collect::<Vec<u64>>()), "{durability:?}");
        assert_eq!(c.position(&tp("t", 1)).unwrap(), 20);
    }
}

#[test]
fn auto_commit_commits_the_previous_poll_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    produce(&broker, 1, 30, "x");
    let mut c = broker
        .consumer(
            config("g", OffsetReset::Earliest)
                .auto_commit(true)
                .max_poll_records(10),
        )
        .unwrap();
    c.subscribe(&["t"]).unwrap();
    assert_eq!(take(&mut c, 10).len(), 10);
    assert_eq!(
        c.committed(&tp("t", 0)).unwrap(),
        None,
        "nothing committed before the next poll"
    );
    assert_eq!(take(&mut c, 10).len(), 10);
    assert_eq!(c.committed(&tp("t", 0)).unwrap(), Some(10));
    c.close().unwrap();
    let desc = broker.describe_group("g").unwrap();
    assert_eq!(
        desc.partitions[0].committed,
        Some(20),
        "close commits what was returned"
    );
}

#[test]
fn offset_reset_without_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    produce(&broker, 1, 5, "old");

    let mut earliest = member(&broker, "e", OffsetReset::Earliest);
    assert_eq!(take(&mut earliest, 5), (0..5).map(|o| (0, o)).collect::<Vec<_>>());

    let mut latest = member(&broker, "l", OffsetReset::Latest);
    latest.poll(Duration::ZERO).unwrap();
    assert_eq!(latest.position(&tp("t", 0)).unwrap(), 5, "latest starts at the end");
    produce(&broker, 1, 2, "new");
    assert_eq!(take(&mut latest, 2), vec![(0, 5), (0, 6)]);

    let mut none = member(&broker, "n", OffsetReset::None);
    let err = none.poll(Duration::ZERO).unwrap_err();
    assert!(matches!(err, Error::NoOffset { .. }), "{err:?}");
    assert!(err.to_string().contains('t'), "{err}");
    let err = none.position(&tp("t", 0)).unwrap_err();
    assert!(matches!(err, Error::NoOffset { .. }), "{err:?}");
    // With a commit the same member reads from it.
    none.commit_offsets(&[(tp("t", 0), 3)]).unwrap();
    assert_eq!(take(&mut none, 4), vec![(0, 3), (0, 4), (0, 5), (0, 6)]);
}

#[test]
fn offset_reset_when_the_committed_offset_was_deleted_by_retention() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let cfg = TopicConfig::new(1).segment_bytes(4096).retention_bytes(Some(8192));
    broker.create_topic("t", cfg).unwrap();
    produce(&broker, 1, 10, "early");
    for group in ["e", "l", "n"] {
        broker.set_group_offsets(group, &[(tp("t", 0), 5)]).unwrap();
    }
    // Push offset 5 out of the log.
    let p = broker.producer();
    for i in 0..400 {
        p.send("t", Record::new(vec![b'x'; 100]).with_key(format!("k{i}")))
            .unwrap();
    }
    let part = broker.topic("t").unwrap().partition(0).unwrap();
    let (start, end) = (part.start_offset(), part.end_offset());
    assert!(start > 5, "retention deleted the committed offset: start {start}");

    let mut e = member(&broker, "e", OffsetReset::Earliest);
    let got = take(&mut e, 1);
    assert_eq!(got.first(), Some(&(0, start)));

    let mut l = member(&broker, "l", OffsetReset::Latest);
    l.poll(Duration::ZERO).unwrap();
    assert_eq!(l.position(&tp("t", 0)).unwrap(), end);

    let mut n = member(&broker, "n", OffsetReset::None);
    let err = n.poll(Duration::ZERO).unwrap_err();
    // Kafka's behaviour: with no reset policy, a committed offset that is no
    // longer stored is an out-of-range error naming it.
    assert!(matches!(err, Error::OffsetOutOfRange { offset: 5, .. }), "{err:?}");
    assert_eq!(n.committed(&tp("t", 0)).unwrap(), Some(5), "the commit itself is kept");
}

#[test]
fn two_groups_on_one_topic_each_receive_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(4)).unwrap();
    let p = broker.producer();
    p.send_batch(
        "t",
        (0..2000).map(|i| Record::new(format!("{i}")).with_key(format!("key-{}", i % 50))),
    )
    .unwrap();

    let mut g1 = vec![
        member(&broker, "one", OffsetReset::Earliest),
        member(&broker, "one", OffsetReset::Earliest),
    ];
    let mut g2 = vec![member(&broker, "two", OffsetReset::Earliest)];
    for (name, group) in [("one", &mut g1), ("two", &mut g2)] {
        let mut values: BTreeMap<String, usize> = BTreeMap::new();
        wait_until(&format!("group {name} to get 2000 records"), DEADLINE, || {
            for c in group.iter_mut() {
                for r in &c.poll(Duration::from_millis(5)).unwrap() {
                    *values
                        .entry(String::from_utf8(r.value().to_vec()).unwrap())
                        .or_default() += 1;
                }
                c.commit().unwrap();
            }
            values.len() >= 2000
        });
        assert_eq!(values.len(), 2000, "group {name} got every record");
        assert!(
            values.values().all(|&n| n == 1),
            "group {name}: once each without rebalances"
        );
        for c in group.iter_mut() {
            assert!(drain(c).is_empty());
        }
    }
    for name in ["one", "two"] {
        let desc = broker.describe_group(name).unwrap();
        assert!(desc.partitions.iter().all(|p| p.lag == Some(0)), "{desc:?}");
    }
}

/// Commits the revoked partitions' positions from the callback; may trigger
/// another rebalance first (a member joining at that very moment).
struct CommitOnRevoke {
    join_first: Option<Broker>,
    joined: Arc<Mutex<Vec<Consumer>>>,
    results: Arc<Mutex<Vec<std::result::Result<(), String>>>>,
}

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        if let Some(broker) = self.join_first.take() {
            self.joined
                .lock()
                .unwrap()
                .push(member(&broker, "g", OffsetReset::Earliest));
        }
        let offsets: Vec<(TopicPartition, u64)> = partitions
            .iter()
            .map(|t| (t.clone(), ctx.position(t).unwrap()))
            .collect();
        self.results
            .lock()
            .unwrap()
            .push(ctx.commit_offsets(&offsets).map_err(|e| e.to_string()));
    }
}

#[test]
fn a_revoke_callback_may_commit_what_it_still_owns_even_after_another_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(4)).unwrap();
    produce(&broker, 4, 5, "x");
    let joined: Arc<Mutex<Vec<Consumer>>> = Arc::default();
    let results: Arc<Mutex<Vec<std::result::Result<(), String>>>> = Arc::default();
    let mut a = broker.consumer(config("g", OffsetReset::Earliest)).unwrap();
    let listener = CommitOnRevoke {
        join_first: Some(broker.clone()),
        joined: Arc::clone(&joined),
        results: Arc::clone(&results),
    };
    a.subscribe_with_listener(&["t"], listener).unwrap();
    assert_eq!(take(&mut a, 20).len(), 20);

    // b joins; in a's revoke callback c joins too (generation moves again)
    // before a commits the partitions it is giving up.
    let _b = member(&broker, "g", OffsetReset::Earliest);
    let g = broker.describe_group("g").unwrap().generation;
    a.poll(Duration::ZERO).unwrap();
    assert_eq!(
        broker.describe_group("g").unwrap().generation,
        g + 1,
        "c joined inside the callback"
    );
    assert_eq!(
        results.lock().unwrap().clone(),
        vec![Ok(())],
        "the callback's commit is accepted"
    );
    let desc = broker.describe_group("g").unwrap();
    let with_commit = desc.partitions.iter().filter(|p| p.committed == Some(5)).count();
    assert_eq!(with_commit, 2, "the two revoked partitions were committed: {desc:?}");

    // Outside a callback, a stale member is still fenced ...
    let err = a.commit().unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err:?}");
    // ... but close() reports its partitions as revoked and that commit lands.
    results.lock().unwrap().clear();
    a.close().unwrap();
    assert_eq!(results.lock().unwrap().clone(), vec![Ok(())]);
    let desc = broker.describe_group("g").unwrap();
    assert!(desc.partitions.iter().all(|p| p.committed == Some(5)), "{desc:?}");
    drop(joined);
}

/// Kafka refuses commits from a manually assigned consumer into a group that
/// has subscribed members (they could overwrite the owner's newer commit).
#[test]
fn manual_consumer_cannot_commit_into_a_live_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = logbus::Broker::open(dir.path()).unwrap();
    broker.create_topic("t", logbus::TopicConfig::new(1)).unwrap();
    let tp = logbus::TopicPartition::new("t", 0);
    let mut member = broker.consumer(logbus::ConsumerConfig::new().group("g")).unwrap();
    member.subscribe(&["t"]).unwrap();
    member.poll(std::time::Duration::from_millis(10)).unwrap();
    let mut manual = broker.consumer(logbus::ConsumerConfig::new().group("g")).unwrap();
    manual.assign(std::slice::from_ref(&tp)).unwrap();
    let err = manual.commit_offsets(&[(tp.clone(), 0)]).unwrap_err();
    assert!(matches!(err, logbus::Error::InvalidConfig { .. }), "{err}");
    member.close().unwrap();
    manual.commit_offsets(&[(tp.clone(), 0)]).unwrap();
    assert_eq!(manual.committed(&tp).unwrap(), Some(0));
}
