//! Consumer groups seen from the admin side: describe_group (state, members,
//! assignment, committed offsets, end offsets, lag), groups(),
//! delete_group_offsets and set_group_offsets.

use std::collections::BTreeSet;
use std::time::Duration;

use logbus::{
    Broker, Consumer, ConsumerConfig, Error, GroupState, OffsetReset, PartitionLag, Record, TopicConfig, TopicPartition,
};

use crate::common::wait_until;

const DEADLINE: Duration = Duration::from_secs(20);

fn tp(topic: &str, p: u32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn member(broker: &Broker, group: &str) -> Consumer {
    let mut c = broker
        .consumer(ConsumerConfig::new().group(group).offset_reset(OffsetReset::Earliest))
        .unwrap();
    c.subscribe(&["t"]).unwrap();
    c
}

fn produce(broker: &Broker, partition: u32, n: usize) {
    let p = broker.producer();
    p.send_batch(
        "t",
        (0..n).map(|i| Record::new(format!("{i}")).with_partition(partition)),
    )
    .unwrap();
}

fn lag_of<'a>(parts: &'a [PartitionLag], t: &TopicPartition) -> &'a PartitionLag {
    parts.iter().find(|p| &p.topic_partition == t).unwrap()
}

fn settle(cs: &mut [&mut Consumer], total: usize) {
    wait_until("a settled assignment", DEADLINE, || {
        for c in cs.iter_mut() {
            c.poll(Duration::ZERO).unwrap();
        }
        cs.iter().map(|c| c.assignment().len()).sum::<usize>() == total && cs.iter().all(|c| !c.assignment().is_empty())
    });
}

#[test]
fn describe_group_shows_members_assignment_commits_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(3)).unwrap();
    for p in 0..3 {
        produce(&broker, p, 10);
    }
    let mut a = member(&broker, "g");
    let mut b = member(&broker, "g");
    settle(&mut [&mut a, &mut b], 3);
    // Whichever member owns a partition commits for it.
    let commits = [(tp("t", 0), 10u64), (tp("t", 1), 4)];
    for (t, off) in &commits {
        let owner = if a.assignment().contains(t) { &mut a } else { &mut b };
        owner.commit_offsets(&[(t.clone(), *off)]).unwrap();
    }

    let desc = broker.describe_group("g").unwrap();
    assert_eq!(desc.group, "g");
    assert!(desc.generation >= 2, "two joins: {desc:?}");
    assert_eq!(desc.members.len(), 2);
    for m in &desc.members {
        assert_eq!(m.topics, vec!["t".to_string()]);
        assert!(m.member_id.contains(char::is_numeric), "{m:?}");
    }
    let described: BTreeSet<Vec<TopicPartition>> = desc.members.iter().map(|m| m.assignment.clone()).collect();
    let actual: BTreeSet<Vec<TopicPartition>> = [a.assignment(), b.assignment()].into_iter().collect();
    assert_eq!(described, actual, "describe agrees with the members");

    assert_eq!(desc.partitions.len(), 3, "{desc:?}");
    for p in &desc.partitions {
        assert_eq!(p.end_offset, 10);
        let owner = p.owner.as_ref().expect("every partition owned");
        let m = desc.members.iter().find(|m| &m.member_id == owner).unwrap();
        assert!(m.assignment.contains(&p.topic_partition));
    }
    let p0 = lag_of(&desc.partitions, &tp("t", 0));
    assert_eq!((p0.committed, p0.lag), (Some(10), Some(0)));
    let p1 = lag_of(&desc.partitions, &tp("t", 1));
    assert_eq!((p1.committed, p1.lag), (Some(4), Some(6)));
    let p2 = lag_of(&desc.partitions, &tp("t", 2));
    assert_eq!((p2.committed, p2.lag), (None, None), "no commit, no lag");

    // Lag grows with new records and shrinks with commits.
    produce(&broker, 0, 5);
    let p0 = broker.describe_group("g").unwrap().partitions[0].clone();
    assert_eq!((p0.end_offset, p0.lag), (15, Some(5)));

    // Closed members leave; the commits and lag stay visible.
    a.close().unwrap();
    b.close().unwrap();
    let desc = broker.describe_group("g").unwrap();
    assert!(desc.members.is_empty());
    assert_eq!(
        desc.partitions.len(),
        2,
        "only partitions with commits remain: {desc:?}"
    );
    assert!(desc.partitions.iter().all(|p| p.owner.is_none()));
    assert_eq!(lag_of(&desc.partitions, &tp("t", 1)).lag, Some(6));
}

#[test]
fn groups_lists_groups_with_members_or_commits() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        assert!(broker.groups().is_empty());
        assert_eq!(broker.describe_group("nobody").unwrap().state, GroupState::Dead);
        let live = member(&broker, "z-live");
        let mut committed = member(&broker, "a-committed");
        committed.poll(Duration::ZERO).unwrap();
        committed.commit_offsets(&[(tp("t", 0), 0)]).unwrap();
        committed.close().unwrap();
        assert_eq!(broker.groups(), vec!["a-committed".to_string(), "z-live".to_string()]);
        drop(live);
        assert_eq!(
            broker.groups(),
            vec!["a-committed".to_string()],
            "no members, no commits: gone"
        );
        broker.close().unwrap();
    }
    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(
        broker.groups(),
        vec!["a-committed".to_string()],
        "commits survive a restart"
    );
}

#[test]
fn delete_group_offsets_fails_with_members_and_works_after() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(2)).unwrap();
        produce(&broker, 0, 10);
        let mut c = member(&broker, "g");
        c.poll(Duration::ZERO).unwrap();
        c.commit_offsets(&[(tp("t", 0), 7), (tp("t", 1), 0)]).unwrap();
        let err = broker.delete_group_offsets("g").unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
        assert!(err.to_string().contains("member"), "says why: {err}");
        assert_eq!(c.committed(&tp("t", 0)).unwrap(), Some(7), "nothing deleted");
        c.close().unwrap();

        broker.delete_group_offsets("g").unwrap();
        assert!(broker.groups().is_empty());
        let gone = broker.describe_group("g").unwrap();
        assert_eq!(gone.state, GroupState::Dead, "{gone:?}");
        assert!(gone.partitions.is_empty() && gone.members.is_empty(), "{gone:?}");
        broker.close().unwrap();
    }
    // The deletion is durable; a new member starts over from its reset policy.
    let broker = Broker::open(dir.path()).unwrap();
    assert!(broker.groups().is_empty());
    let mut c = member(&broker, "g");
    assert_eq!(c.committed(&tp("t", 0)).unwrap(), None);
    let mut n = 0;
    wait_until("10 records from the beginning", DEADLINE, || {
        n += c.poll(Duration::from_millis(10)).unwrap().len();
        n >= 10
    });
    assert_eq!(n, 10, "read from the beginning again");
}

#[test]
fn set_group_offsets_fails_with_members_and_moves_an_idle_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    produce(&broker, 0, 10);
    let c = member(&broker, "g");
    let err = broker.set_group_offsets("g", &[(tp("t", 0), 3)]).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    drop(c);
    let err = broker.set_group_offsets("g", &[(tp("nope", 0), 3)]).unwrap_err();
    assert!(matches!(err, Error::UnknownTopic { .. }), "{err:?}");
    let err = broker.set_group_offsets("g", &[(tp("t", 4), 3)]).unwrap_err();
    assert!(matches!(err, Error::UnknownPartition { .. }), "{err:?}");
    broker.set_group_offsets("g", &[(tp("t", 0), 8)]).unwrap();
    let desc = broker.describe_group("g").unwrap();
    assert_eq!(desc.partitions[0].lag, Some(2));

    let mut c = member(&broker, "g");
    let mut got = Vec::new();
    wait_until("2 records from the set offset", DEADLINE, || {
        got.extend(c.poll(Duration::from_millis(10)).unwrap().iter().map(|r| r.offset()));
        got.len() >= 2
    });
    assert_eq!(got, vec![8, 9]);
}

/// Kafka's `describe` of a group that has ended (or never was) reports its
/// state instead of failing: `Empty` while committed offsets remain, `Dead`
/// once there are neither members nor commits.
#[test]
fn describe_group_reports_stable_empty_and_dead_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    produce(&broker, 0, 5);

    let never = broker.describe_group("never-used").unwrap();
    assert_eq!(never.state, GroupState::Dead);
    assert_eq!(
        (never.generation, never.members.len(), never.partitions.len()),
        (0, 0, 0)
    );

    // A member that leaves without committing ends the group: Dead.
    let mut quiet = member(&broker, "quiet");
    quiet.poll(Duration::ZERO).unwrap();
    assert_eq!(broker.describe_group("quiet").unwrap().state, GroupState::Stable);
    quiet.close().unwrap();
    let ended = broker.describe_group("quiet").unwrap();
    assert_eq!(ended.state, GroupState::Dead, "{ended:?}");
    assert!(ended.members.is_empty() && ended.partitions.is_empty(), "{ended:?}");

    // A member that committed and left: Empty, with its commits and lag.
    let mut c = member(&broker, "billing");
    c.poll(Duration::ZERO).unwrap();
    c.commit_offsets(&[(tp("t", 0), 3)]).unwrap();
    assert_eq!(broker.describe_group("billing").unwrap().state, GroupState::Stable);
    c.close().unwrap();
    let empty = broker.describe_group("billing").unwrap();
    assert_eq!(empty.state, GroupState::Empty, "{empty:?}");
    assert!(empty.members.is_empty(), "{empty:?}");
    assert_eq!(lag_of(&empty.partitions, &tp("t", 0)).committed, Some(3));

    broker.delete_group_offsets("billing").unwrap();
    assert_eq!(broker.describe_group("billing").unwrap().state, GroupState::Dead);
}
