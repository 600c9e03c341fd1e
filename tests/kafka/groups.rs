//! Consumer groups on a Kafka cluster: subscribe, commit, and a second
//! member resuming from the committed offsets. Group joins on tansu take
//! ~20 s, so this is the one test that subscribes; the rest assign.

use std::time::Duration;

use logbus::{Record, TopicPartition};

use crate::broker::Tansu;
use crate::support::{consumer, create_topic, poll_for, poll_n, producer};

#[test]
fn a_second_member_resumes_from_the_committed_offsets() {
    let broker = Tansu::start();
    create_topic(&broker, "grp", 2);
    let tps = [TopicPartition::new("grp", 0), TopicPartition::new("grp", 1)];
    let p = producer(&broker);
    p.send_batch(
        "grp",
        (0..6).map(|i| Record::new(format!("old {i}")).with_partition(i % 2)),
    )
    .unwrap();

    let mut first = consumer(&broker).group("billing").build().unwrap();
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

    p.send_batch(
        "grp",
        (0..4).map(|i| Record::new(format!("new {i}")).with_partition(i % 2)),
    )
    .unwrap();

    // The same group, by subscription: starts at the commits, so only the new records.
    let mut second = consumer(&broker).group("billing").auto_commit(true).build().unwrap();
    second.subscribe(&["grp"]).unwrap();
    let got = poll_n(&mut second, 4);
    assert!(got.iter().all(|r| r.value().starts_with(b"new")), "{got:?}");
    assert!(got.iter().all(|r| r.offset() >= 3), "{got:?}");
    assert_eq!(second.position(&tps[0]).unwrap(), 5);
    // auto_commit: the next poll commits what the previous one returned.
    assert!(poll_for(&mut second, Duration::from_secs(1)).is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while second.committed(&tps[1]).unwrap() != Some(5) {
        assert!(std::time::Instant::now() < deadline, "auto commit did not land");
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
