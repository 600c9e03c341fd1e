//! The lending reads say what they return by their names: `read_with` the
//! next offset, `poll_with` a count, `read_with_progress` both as named
//! fields; a loop written from any of them visits every record once.

use std::time::Duration;

use logbus::{Broker, ConsumerConfig, OffsetReset, ReadProgress, Record, TopicConfig, TopicPartition};

fn broker_with_25() -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("events", TopicConfig::new(1)).unwrap();
    broker
        .producer()
        .send_batch("events", (0..25).map(|i| Record::new(format!("event {i}"))))
        .unwrap();
    (dir, broker)
}

#[test]
fn read_with_returns_the_next_offset_and_poll_with_a_count_from_the_same_start() {
    let (_dir, broker) = broker_with_25();
    let p = broker.topic("events").unwrap().partition(0).unwrap();

    let mut visited = 0;
    let next = p.read_with(10, 100, |_| visited += 1).unwrap();
    assert_eq!(
        (next, visited),
        (25, 15),
        "read_with returns the next offset, not the count"
    );

    let progress = p.read_with_progress(10, 100, |_| {}).unwrap();
    assert_eq!(
        progress,
        ReadProgress {
            next_offset: 25,
            count: 15
        }
    );
    let at_end = p.read_with_progress(25, 100, |_| {}).unwrap();
    assert_eq!(
        at_end,
        ReadProgress {
            next_offset: 25,
            count: 0
        }
    );

    let mut consumer = broker
        .consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))
        .unwrap();
    let tp = TopicPartition::new("events", 0);
    consumer.assign(std::slice::from_ref(&tp)).unwrap();
    consumer.seek(&tp, 10).unwrap();
    let count = consumer.poll_with(Duration::from_secs(1), |_| {}).unwrap();
    assert_eq!(count, 15, "poll_with returns how many records it lent");
    assert_eq!(consumer.position(&tp).unwrap(), 25);
}

#[test]
fn a_progress_loop_visits_every_record_once() {
    let (_dir, broker) = broker_with_25();
    let p = broker.topic("events").unwrap().partition(0).unwrap();
    let mut offsets = Vec::new();
    let mut offset = p.start_offset();
    loop {
        let progress = p.read_with_progress(offset, 7, |r| offsets.push(r.offset())).unwrap();
        if progress.count == 0 {
            break;
        }
        offset = progress.next_offset;
    }
    assert_eq!(offsets, (0..25).collect::<Vec<u64>>());
}
