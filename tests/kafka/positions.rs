//! Positions on a Kafka cluster, by manual assignment: seek, pause and
//! resume, position and the reset policy.

use std::time::Duration;

use logbus::kafka::KafkaRecord;
use logbus::{Error, OffsetReset, Record, TopicPartition};

use crate::broker::Tansu;
use crate::common::Deadline;
use crate::support::{consumer, create_topic, poll_for, poll_n, producer};

fn offsets(rs: &[KafkaRecord]) -> Vec<u64> {
    rs.iter().map(KafkaRecord::offset).collect()
}

#[test]
fn seek_moves_the_next_poll_and_max_poll_records_caps_a_poll() {
    let broker = Tansu::start();
    create_topic(&broker, "seek", 1);
    let tp = TopicPartition::new("seek", 0);
    producer(&broker)
        .send_batch("seek", (0..10).map(|i| Record::new(format!("r{i}"))))
        .unwrap();

    let mut c = consumer(&broker).max_poll_records(4).build().unwrap();
    c.assign(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(c.assignment().unwrap(), vec![tp.clone()]);
    assert_eq!(c.position(&tp).unwrap(), 0, "Earliest resolves to the first offset");
    let first = poll_n(&mut c, 10);
    assert_eq!(offsets(&first), (0..10).collect::<Vec<_>>());
    assert_eq!(c.position(&tp).unwrap(), 10);

    c.seek(&tp, 3).unwrap();
    assert_eq!(c.position(&tp).unwrap(), 3);
    let again = poll_n(&mut c, 7);
    assert_eq!(offsets(&again), (3..10).collect::<Vec<_>>());

    c.seek_to_beginning(&[]).unwrap();
    let batch = loop {
        let b = c.poll(Duration::from_secs(5)).unwrap();
        if !b.is_empty() {
            break b;
        }
    };
    assert!(batch.len() <= 4, "max_poll_records = 4, got {}", batch.len());
    assert_eq!(batch[0].offset(), 0);
}

#[test]
fn a_paused_partition_returns_nothing_until_resumed() {
    let broker = Tansu::start();
    create_topic(&broker, "pause", 2);
    let (a, b) = (TopicPartition::new("pause", 0), TopicPartition::new("pause", 1));
    let p = producer(&broker);
    p.send_batch("pause", (0..3).map(|i| Record::new(format!("a{i}")).with_partition(0)))
        .unwrap();
    p.send_batch("pause", (0..3).map(|i| Record::new(format!("b{i}")).with_partition(1)))
        .unwrap();

    let mut c = consumer(&broker).build().unwrap();
    c.assign(&[a.clone(), b.clone()]).unwrap();
    c.pause(std::slice::from_ref(&a)).unwrap();
    let got = poll_n(&mut c, 3);
    assert!(
        got.iter().all(|r| r.partition() == 1),
        "paused partition 0 returned records: {got:?}"
    );
    p.send("pause", Record::new("a3").with_partition(0)).unwrap();
    let quiet = poll_for(&mut c, Duration::from_secs(2));
    assert!(quiet.is_empty(), "paused partition 0 returned records: {quiet:?}");

    c.resume(std::slice::from_ref(&a)).unwrap();
    let got = poll_n(&mut c, 4);
    assert!(got.iter().all(|r| r.partition() == 0));
    assert_eq!(offsets(&got), vec![0, 1, 2, 3]);
}

#[test]
fn calls_on_unassigned_partitions_and_commits_without_a_group_are_refused() {
    let broker = Tansu::start();
    create_topic(&broker, "refuse", 1);
    let mut c = consumer(&broker).offset_reset(OffsetReset::None).build().unwrap();
    let tp = TopicPartition::new("refuse", 0);
    assert!(matches!(c.seek(&tp, 0), Err(Error::NotAssigned { ref topic, partition: 0 }) if topic == "refuse"));
    assert!(matches!(
        c.pause(std::slice::from_ref(&tp)),
        Err(Error::NotAssigned { .. })
    ));
    assert!(matches!(c.commit(), Err(Error::InvalidConfig { field: "group", .. })));
    assert!(matches!(
        c.subscribe(&["refuse"]),
        Err(Error::InvalidConfig { field: "group", .. })
    ));
    c.assign(std::slice::from_ref(&tp)).unwrap();
    assert!(matches!(c.position(&tp), Err(Error::NoOffset { ref topic, partition: 0, .. }) if topic == "refuse"));
    // poll says the same once librdkafka finds no offset to start from.
    let deadline = Deadline::new(Duration::from_secs(15), "poll to report NoOffset");
    let e = loop {
        match c.poll(Duration::from_millis(500)) {
            Err(e) => break e,
            Ok(rs) => {
                assert!(rs.is_empty(), "{rs:?}");
                deadline.check();
            }
        }
    };
    assert!(
        matches!(e, Error::NoOffset { ref topic, partition: 0, .. } if topic == "refuse"),
        "{e:?}"
    );
    // A seek gives it a position.
    producer(&broker).send("refuse", Record::new("x")).unwrap();
    c.seek(&tp, 0).unwrap();
    assert_eq!(poll_n(&mut c, 1)[0].value(), b"x");
}

#[test]
fn explicit_commits_by_an_assigning_member_are_where_the_next_one_starts() {
    let broker = Tansu::start();
    create_topic(&broker, "explicit", 1);
    let tp = TopicPartition::new("explicit", 0);
    producer(&broker)
        .send_batch("explicit", (0..5).map(|i| Record::new(format!("r{i}"))))
        .unwrap();

    let mut c = consumer(&broker).group("by-hand").build().unwrap();
    c.assign(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(c.committed(&tp).unwrap(), None);
    assert_eq!(offsets(&poll_n(&mut c, 5)), vec![0, 1, 2, 3, 4]);
    c.commit_offsets(&[(tp.clone(), 2)]).unwrap();
    assert_eq!(c.committed(&tp).unwrap(), Some(2));
    c.close().unwrap();

    let mut next = consumer(&broker).group("by-hand").build().unwrap();
    next.assign(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(next.position(&tp).unwrap(), 2);
    assert_eq!(offsets(&poll_n(&mut next, 3)), vec![2, 3, 4]);
    next.commit().unwrap();
    assert_eq!(next.committed(&tp).unwrap(), Some(5));
}
