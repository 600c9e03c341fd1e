//! `Consumer::wait_for_assignment` returns once the group has handed this
//! member its partitions, reads no record on the way, and returns what it
//! owns so far when the time is up.

use std::time::{Duration, Instant};

use logbus::{Broker, Consumer, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};

fn member(broker: &Broker) -> Consumer {
    let mut c = broker
        .consumer(ConsumerConfig::new().group("g").offset_reset(OffsetReset::Earliest))
        .unwrap();
    c.subscribe(&["t"]).unwrap();
    c
}

fn all(n: u32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new("t", p)).collect()
}

#[test]
fn a_lone_member_gets_every_partition_and_no_record_is_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(4)).unwrap();
    broker
        .producer()
        .send_batch("t", (0..20).map(|i| Record::new(format!("{i}"))))
        .unwrap();

    let mut c = member(&broker);
    assert!(c.assignment().is_empty(), "nothing before the group forms");
    let owned = c.wait_for_assignment(Duration::from_secs(10)).unwrap();
    assert_eq!(owned, all(4));
    assert_eq!(c.assignment(), all(4));
    let mut n = 0;
    while n < 20 {
        let got = c.poll(Duration::from_secs(1)).unwrap();
        assert!(!got.is_empty(), "records missing after {n}");
        n += got.len();
    }
    assert_eq!(n, 20, "waiting read nothing: every record comes from poll");
}

#[test]
fn a_second_member_waits_until_the_first_hands_partitions_over() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(4)).unwrap();
    let mut first = member(&broker);
    assert_eq!(first.wait_for_assignment(Duration::from_secs(10)).unwrap(), all(4));

    let (tx, rx) = std::sync::mpsc::channel();
    let broker2 = broker.clone();
    let second = std::thread::spawn(move || {
        let mut c = member(&broker2);
        tx.send(()).unwrap();
        let owned = c.wait_for_assignment(Duration::from_secs(20)).unwrap();
        (owned, c)
    });
    rx.recv().unwrap();
    // The first member releases its share at its next polls.
    let start = Instant::now();
    while !second.is_finished() && start.elapsed() < Duration::from_secs(20) {
        first.poll(Duration::from_millis(5)).unwrap();
    }
    let (owned, _second) = second.join().unwrap();
    assert_eq!(owned.len(), 2, "{owned:?}");
    first.poll(Duration::ZERO).unwrap();
    let mut both: Vec<TopicPartition> = first.assignment().into_iter().chain(owned).collect();
    both.sort();
    assert_eq!(both, all(4), "the two members split the partitions");
}

#[test]
fn on_timeout_it_returns_what_the_member_owns_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let mut first = member(&broker);
    assert_eq!(first.wait_for_assignment(Duration::from_secs(10)).unwrap(), all(2));

    // The first member never polls again, so it never hands a partition over.
    let mut second = member(&broker);
    let start = Instant::now();
    let owned = second.wait_for_assignment(Duration::from_millis(200)).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "it waited the whole timeout"
    );
    assert!(owned.is_empty(), "{owned:?}");
    assert_eq!(owned, second.assignment());
}

#[test]
fn without_a_subscription_it_returns_the_manual_assignment_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(3)).unwrap();
    let mut c = broker.consumer(ConsumerConfig::new()).unwrap();
    c.assign(&[TopicPartition::new("t", 1)]).unwrap();
    let start = Instant::now();
    assert_eq!(
        c.wait_for_assignment(Duration::from_secs(10)).unwrap(),
        vec![TopicPartition::new("t", 1)]
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}
