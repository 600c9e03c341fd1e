//! Consumer groups on a Kafka cluster: subscribe, commit, a second member
//! resuming from the committed offsets, two members splitting partitions.
//! tansu holds each join for about the session timeout (6 s here), so only
//! these tests subscribe; the rest assign.

use std::time::Duration;

use logbus::{SourceRecord, TopicPartition};

use crate::broker::Tansu;
use crate::common::Deadline;
use crate::support::{consumer, create_topic, group_consumer, poll_for, poll_n, producer, send_spread};

#[test]
fn a_second_member_resumes_from_the_committed_offsets() {
    let broker = Tansu::start();
    create_topic(&broker, "grp", 2);
    let tps = [TopicPartition::new("grp", 0), TopicPartition::new("grp", 1)];
    let p = producer(&broker);
    send_spread(&p, "grp", "old ", 0..6, 2);

    let mut first = group_consumer(&broker, "billing").build().unwrap();
    first.subscribe(&["grp"]).unwrap();
    let got = poll_n(&mut first, 6);
    assert!(got.iter().all(|r| r.value().starts_with(b"old")));
    assert_eq!(
        first.assignment().unwrap(),
        tps.to_vec(),
        "one member owns every partition"
    );
    assert_eq!(
        first.committed(&tps[0]).unwrap(),
        None,
        "nothing committed before commit()"
    );
    first.commit().unwrap();
    assert_eq!(first.committed(&tps[0]).unwrap(), Some(3));
    assert_eq!(first.committed(&tps[1]).unwrap(), Some(3));
    first.close().unwrap();

    send_spread(&p, "grp", "new ", 0..4, 2);

    // The same group, by subscription: starts at the commits, so only the new records.
    let mut second = group_consumer(&broker, "billing").auto_commit(true).build().unwrap();
    second.subscribe(&["grp"]).unwrap();
    let got = poll_n(&mut second, 4);
    assert!(got.iter().all(|r| r.value().starts_with(b"new")), "{got:?}");
    assert!(got.iter().all(|r| r.offset() >= 3), "{got:?}");
    assert_eq!(second.position(&tps[0]).unwrap(), 5);
    // auto_commit: the next poll commits what the previous one returned.
    assert!(poll_for(&mut second, Duration::from_secs(1)).is_empty());
    let deadline = Deadline::new(Duration::from_secs(10), "the auto commit to land");
    while second.committed(&tps[1]).unwrap() != Some(5) {
        deadline.check();
        second.poll(Duration::from_millis(100)).unwrap();
    }
    drop(second);

    // A member that assigns by hand reads the group's commits too.
    let mut third = consumer(&broker).group("billing").build().unwrap();
    third.assign(&tps).unwrap();
    assert_eq!(third.position(&tps[0]).unwrap(), 5);
    assert_eq!(third.position(&tps[1]).unwrap(), 5);
    assert!(poll_for(&mut third, Duration::from_secs(1)).is_empty());
}

#[test]
fn two_members_split_the_partitions_and_one_takes_all_when_the_other_leaves() {
    let broker = Tansu::start();
    create_topic(&broker, "split", 4);
    let all: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new("split", p)).collect();
    let mut a = group_consumer(&broker, "splitters").build().unwrap();
    let mut b = group_consumer(&broker, "splitters").build().unwrap();
    a.subscribe(&["split"]).unwrap();
    b.subscribe(&["split"]).unwrap();

    // Both poll until the group settles with every partition owned once.
    let deadline = Deadline::new(Duration::from_secs(60), "a 2+2 split");
    loop {
        a.poll(Duration::from_millis(200)).unwrap();
        b.poll(Duration::from_millis(200)).unwrap();
        let (mine, theirs) = (a.assignment().unwrap(), b.assignment().unwrap());
        if mine.len() == 2 && theirs.len() == 2 {
            let mut both: Vec<_> = mine.iter().chain(&theirs).cloned().collect();
            both.sort();
            assert_eq!(both, all, "no partition has two owners: {mine:?} {theirs:?}");
            break;
        }
        deadline.check_with(|| format!("{mine:?} {theirs:?}"));
    }

    // Each member reads only its own partitions.
    let p = producer(&broker);
    send_spread(&p, "split", "r", 0..8, 4);
    let owned_by_a = a.assignment().unwrap();
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    let deadline = Deadline::new(Duration::from_secs(30), "8 records");
    while got_a.len() + got_b.len() < 8 {
        deadline.check_with(|| format!("{} + {}", got_a.len(), got_b.len()));
        got_a.extend(a.poll(Duration::from_millis(200)).unwrap());
        got_b.extend(b.poll(Duration::from_millis(200)).unwrap());
    }
    assert!(
        got_a.iter().all(|r| owned_by_a.contains(&r.topic_partition())),
        "{got_a:?}"
    );
    assert!(
        got_b.iter().all(|r| !owned_by_a.contains(&r.topic_partition())),
        "{got_b:?}"
    );

    // b leaves: a gets everything.
    b.close().unwrap();
    let deadline = Deadline::new(Duration::from_secs(60), "a to take over every partition");
    while a.assignment().unwrap() != all {
        deadline.check_with(|| format!("{:?}", a.assignment().unwrap()));
        a.poll(Duration::from_millis(200)).unwrap();
    }
}
