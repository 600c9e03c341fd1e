//! Sequential reads resume from a cursor; these tests pin that the cursor
//! never returns stale data and that every wait strategy delivers records.

use std::time::Duration;

use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition, WaitStrategy};

fn consumer(broker: &Broker, wait: WaitStrategy, max: usize) -> logbus::Consumer {
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(max)
                .wait_strategy(wait),
        )
        .unwrap();
    c.assign(&[TopicPartition::new("t", 0)]).unwrap();
    c
}

#[test]
fn cursor_does_not_return_truncated_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = broker.producer();
    for i in 0..20 {
        p.send("t", Record::new(format!("old-{i}"))).unwrap();
    }
    let mut c = consumer(&broker, WaitStrategy::Block, 10);
    let first = c.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(first.len(), 10);
    // Truncate exactly at the consumer's position, then write new records there.
    topic.partition(0).unwrap().log().truncate(10).unwrap();
    for i in 10..20 {
        p.send("t", Record::new(format!("new-{i}"))).unwrap();
    }
    let second = c.poll(Duration::from_secs(1)).unwrap();
    let values: Vec<String> = second
        .iter()
        .map(|r| String::from_utf8_lossy(r.value()).into_owned())
        .collect();
    assert_eq!(values, (10..20).map(|i| format!("new-{i}")).collect::<Vec<_>>());
}

#[test]
fn cursor_follows_segment_rolls_and_every_wait_strategy_delivers() {
    for wait in [
        WaitStrategy::Block,
        WaitStrategy::Spin,
        WaitStrategy::SpinThenBlock(Duration::from_micros(200)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker
            .create_topic("t", TopicConfig::new(1).segment_bytes(1024))
            .unwrap();
        let producer = broker.producer();
        let n = 2_000u64;
        let writer = std::thread::spawn(move || {
            for i in 0..n {
                producer.send("t", Record::new(i.to_le_bytes().to_vec())).unwrap();
            }
        });
        let mut c = consumer(&broker, wait, 7);
        let mut next = 0u64;
        while next < n {
            for r in &c.poll(Duration::from_secs(5)).unwrap() {
                assert_eq!(r.offset(), next, "{wait:?}");
                assert_eq!(r.value(), &next.to_le_bytes()[..], "{wait:?}");
                next += 1;
            }
        }
        writer.join().unwrap();
        assert!(broker.topic("t").unwrap().partition(0).unwrap().segment_count() > 10);
    }
}

/// Regression: the writer publishes a batch's bytes before its end offset;
/// a read that returned such a record put the consumer's position past the
/// end it then saw, which looked out of range and reset it to Earliest
/// (offset 0): records came twice. Offsets must arrive exactly in order.
#[test]
fn tailing_consumer_never_sees_a_position_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    let n = 100_000u64;
    let writer = std::thread::spawn(move || {
        for i in 0..n {
            producer.send("t", Record::new(i.to_le_bytes().to_vec())).unwrap();
        }
    });
    let mut c = consumer(&broker, WaitStrategy::Spin, 1000);
    let mut next = 0u64;
    while next < n {
        for r in &c.poll(Duration::from_secs(5)).unwrap() {
            assert_eq!(r.offset(), next, "an offset repeated or was skipped");
            next += 1;
        }
    }
    writer.join().unwrap();
    assert!(
        c.poll(Duration::from_millis(10)).unwrap().is_empty(),
        "nothing after the last record"
    );
}
