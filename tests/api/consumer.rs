//! Consuming through the public API: blocking polls, positions, seeks,
//! pause/resume, poll sizes, reset policies, commits.

use std::thread;
use std::time::{Duration, Instant};

use logbus::{Broker, ConsumerConfig, ConsumerRecords, Error, OffsetReset, Record, TopicConfig, TopicPartition};

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn setup(partitions: u32) -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(partitions)).unwrap();
    (dir, broker)
}

fn send_n(broker: &Broker, partition: u32, range: std::ops::Range<u32>) {
    let producer = broker.producer();
    for i in range {
        producer
            .send("t", Record::new(format!("{partition}:{i}")).with_partition(partition))
            .unwrap();
    }
}

fn offsets(records: &ConsumerRecords) -> Vec<(u32, u64)> {
    records.iter().map(|r| (r.partition(), r.offset())).collect()
}

fn earliest() -> ConsumerConfig {
    ConsumerConfig::new().offset_reset(OffsetReset::Earliest)
}

#[test]
fn poll_times_out_empty_after_roughly_the_timeout() {
    let (_dir, broker) = setup(2);
    send_n(&broker, 0, 0..3);
    let mut consumer = broker.consumer(ConsumerConfig::new()).unwrap();
    consumer.assign(&[tp("t", 0), tp("t", 1)]).unwrap();
    // Latest: the three existing records are not returned.
    for timeout in [Duration::from_millis(300), Duration::from_millis(100)] {
        let start = Instant::now();
        let records = consumer.poll(timeout).unwrap();
        let elapsed = start.elapsed();
        assert!(records.is_empty());
        assert_eq!(records.len(), 0);
        assert!(
            elapsed >= timeout.mul_f64(0.8),
            "returned after {elapsed:?} for a {timeout:?} timeout"
        );
    }
    // Zero timeout: no wait, still empty.
    assert!(consumer.poll(Duration::ZERO).unwrap().is_empty());
    // A consumer with nothing assigned also waits and returns empty.
    let mut idle = broker.consumer(ConsumerConfig::new()).unwrap();
    let start = Instant::now();
    assert!(idle.poll(Duration::from_millis(200)).unwrap().is_empty());
    assert!(start.elapsed() >= Duration::from_millis(160));
}

#[test]
fn a_blocked_poll_wakes_up_for_a_record_from_another_thread() {
    let (_dir, broker) = setup(3);
    let mut consumer = broker.consumer(ConsumerConfig::new()).unwrap();
    consumer.assign(&[tp("t", 0), tp("t", 1), tp("t", 2)]).unwrap();
    // Fix the Latest positions before the send.
    for p in 0..3 {
        assert_eq!(consumer.position(&tp("t", p)).unwrap(), 0);
    }
    let waiter = thread::spawn(move || {
        let start = Instant::now();
        let records = consumer.poll(Duration::from_secs(10)).unwrap();
        (records, start.elapsed())
    });
    thread::sleep(Duration::from_millis(150));
    broker
        .producer()
        .send("t", Record::new("wake up").with_partition(2))
        .unwrap();
    let (records, elapsed) = waiter.join().unwrap();
    assert_eq!(records.len(), 1);
    let r = records.iter().next().unwrap();
    assert_eq!(
        (r.topic(), r.partition(), r.offset(), r.value()),
        ("t", 2, 0, &b"wake up"[..])
    );
    assert!(elapsed < Duration::from_secs(5), "woke after {elapsed:?}");
}

#[test]
fn a_blocked_group_member_wakes_up_for_a_record() {
    let (_dir, broker) = setup(2);
    let mut consumer = broker
        .consumer(ConsumerConfig::new().group("g").offset_reset(OffsetReset::Earliest))
        .unwrap();
    consumer.subscribe(&["t"]).unwrap();
    assert!(consumer.poll(Duration::from_millis(50)).unwrap().is_empty());
    assert_eq!(consumer.assignment(), vec![tp("t", 0), tp("t", 1)]);
    let waiter = thread::spawn(move || {
        let start = Instant::now();
        let records = consumer.poll(Duration::from_secs(10)).unwrap();
        (records, start.elapsed())
    });
    thread::sleep(Duration::from_millis(150));
    broker
        .producer()
        .send("t", Record::new("hi").with_partition(1))
        .unwrap();
    let (records, elapsed) = waiter.join().unwrap();
    assert_eq!(offsets(&records), vec![(1, 0)]);
    assert!(elapsed < Duration::from_secs(5), "woke after {elapsed:?}");
}

#[test]
fn seek_seek_to_beginning_seek_to_end_and_position() {
    let (_dir, broker) = setup(2);
    send_n(&broker, 0, 0..10);
    send_n(&broker, 1, 0..4);
    let (a, b) = (tp("t", 0), tp("t", 1));
    let mut consumer = broker.consumer(earliest()).unwrap();
    consumer.assign(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(consumer.position(&a).unwrap(), 0);

    consumer.seek(&a, 7).unwrap();
    consumer.seek(&b, 4).unwrap();
    assert_eq!(consumer.position(&a).unwrap(), 7);
    let got = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(offsets(&got), vec![(0, 7), (0, 8), (0, 9)]);
    assert_eq!(got.iter().next().unwrap().value(), b"0:7");
    assert_eq!(consumer.position(&a).unwrap(), 10);
    assert_eq!(consumer.position(&b).unwrap(), 4);

    // Back to the start of one partition only.
    consumer.seek_to_beginning(std::slice::from_ref(&a)).unwrap();
    assert_eq!(consumer.position(&a).unwrap(), 0);
    assert_eq!(consumer.position(&b).unwrap(), 4);
    let got = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(offsets(&got), (0..10).map(|o| (0, o)).collect::<Vec<_>>());

    // Empty slice: every assigned partition.
    consumer.seek_to_beginning(&[]).unwrap();
    assert_eq!((consumer.position(&a).unwrap(), consumer.position(&b).unwrap()), (0, 0));
    consumer.seek_to_end(&[]).unwrap();
    assert_eq!(
        (consumer.position(&a).unwrap(), consumer.position(&b).unwrap()),
        (10, 4)
    );
    assert!(consumer.poll(Duration::from_millis(50)).unwrap().is_empty());
    send_n(&broker, 1, 4..6);
    let got = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(offsets(&got), vec![(1, 4), (1, 5)]);

    // Seeking past the end follows the reset policy (Earliest here).
    consumer.seek(&b, 1_000).unwrap();
    let got = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(got.iter().next().map(|r| (r.partition(), r.offset())), Some((1, 0)));

    // Partitions that are not assigned are refused.
    let c = tp("t", 5);
    assert!(consumer.seek(&c, 0).is_err());
    assert!(consumer.position(&c).is_err());
    assert!(consumer.seek_to_end(std::slice::from_ref(&c)).is_err());
    assert!(consumer.pause(std::slice::from_ref(&c)).is_err());
}

#[test]
fn position_fixes_a_pending_latest_reset() {
    let (_dir, broker) = setup(1);
    send_n(&broker, 0, 0..5);
    let t0 = tp("t", 0);

    // With position(): the reset is resolved now, records sent afterwards are returned.
    let mut fixed = broker.consumer(ConsumerConfig::new()).unwrap();
    fixed.assign(std::slice::from_ref(&t0)).unwrap();
    // Without position(): Latest is resolved at the first poll.
    let mut lazy = broker.consumer(ConsumerConfig::new()).unwrap();
    lazy.assign(std::slice::from_ref(&t0)).unwrap();

    assert_eq!(fixed.position(&t0).unwrap(), 5);
    send_n(&broker, 0, 5..8);
    assert_eq!(fixed.position(&t0).unwrap(), 5, "position moved without a poll");
    let got = fixed.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(offsets(&got), vec![(0, 5), (0, 6), (0, 7)]);
    assert!(lazy.poll(Duration::from_millis(50)).unwrap().is_empty());
    assert_eq!(lazy.position(&t0).unwrap(), 8);
}

#[test]
fn position_resolves_to_the_committed_offset() {
    let (_dir, broker) = setup(1);
    send_n(&broker, 0, 0..10);
    let t0 = tp("t", 0);
    let config = ConsumerConfig::new().group("g").offset_reset(OffsetReset::Latest);
    let mut first = broker.consumer(config.clone()).unwrap();
    first.assign(std::slice::from_ref(&t0)).unwrap();
    first.commit_offsets(&[(t0.clone(), 6)]).unwrap();
    assert_eq!(first.committed(&t0).unwrap(), Some(6));
    first.close().unwrap();

    let mut second = broker.consumer(config).unwrap();
    second.assign(std::slice::from_ref(&t0)).unwrap();
    assert_eq!(second.position(&t0).unwrap(), 6);
    let got = second.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(offsets(&got), vec![(0, 6), (0, 7), (0, 8), (0, 9)]);
}

#[test]
fn pause_and_resume() {
    let (_dir, broker) = setup(2);
    send_n(&broker, 0, 0..5);
    send_n(&broker, 1, 0..5);
    let (a, b) = (tp("t", 0), tp("t", 1));
    let mut consumer = broker.consumer(earliest()).unwrap();
    consumer.assign(&[a.clone(), b.clone()]).unwrap();

    consumer.pause(std::slice::from_ref(&a)).unwrap();
    assert_eq!(consumer.paused(), vec![a.clone()]);
    let got = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(offsets(&got), (0..5).map(|o| (1, o)).collect::<Vec<_>>());
    // Data arriving on the paused partition does not end a poll.
    send_n(&broker, 0, 5..6);
    let start = Instant::now();
    assert!(consumer.poll(Duration::from_millis(200)).unwrap().is_empty());
    assert!(start.elapsed() >= Duration::from_millis(160));
    // Pausing everything.
    consumer.pause(std::slice::from_ref(&b)).unwrap();
    send_n(&broker, 1, 5..6);
    assert!(consumer.poll(Duration::from_millis(50)).unwrap().is_empty());
    // Resume: a paused partition continues where it was.
    consumer.resume(&[a.clone(), b.clone()]).unwrap();
    assert!(consumer.paused().is_empty());
    let mut all = Vec::new();
    while all.len() < 7 {
        let got = consumer.poll(Duration::from_secs(1)).unwrap();
        assert!(!got.is_empty());
        all.extend(offsets(&got));
    }
    all.sort();
    let mut want: Vec<(u32, u64)> = (0..6).map(|o| (0, o)).collect();
    want.push((1, 5));
    assert_eq!(all, want);
    // Positions survive pause: nothing returned twice.
    assert!(consumer.poll(Duration::from_millis(50)).unwrap().is_empty());
}

#[test]
fn max_poll_records_caps_each_poll() {
    let (_dir, broker) = setup(2);
    send_n(&broker, 0, 0..10);
    send_n(&broker, 1, 0..7);
    let mut consumer = broker.consumer(earliest().max_poll_records(3)).unwrap();
    consumer.assign(&[tp("t", 0), tp("t", 1)]).unwrap();
    let mut seen = Vec::new();
    loop {
        let got = consumer.poll(Duration::from_millis(100)).unwrap();
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 3, "poll returned {}", got.len());
        seen.extend(offsets(&got));
    }
    assert_eq!(seen.len(), 17);
    for p in 0..2 {
        let of_p: Vec<u64> = seen.iter().filter(|(q, _)| *q == p).map(|(_, o)| *o).collect();
        let n = if p == 0 { 10 } else { 7 };
        assert_eq!(
            of_p,
            (0..n).collect::<Vec<u64>>(),
            "partition {p} out of order or incomplete"
        );
    }
}

#[test]
fn offset_reset_earliest_latest_and_none() {
    let (dir, broker) = setup(1);
    send_n(&broker, 0, 0..4);
    let t0 = tp("t", 0);

    let mut e = broker.consumer(earliest().group("e")).unwrap();
    e.subscribe(&["t"]).unwrap();
    assert_eq!(e.poll(Duration::from_secs(1)).unwrap().len(), 4);

    let mut l = broker.consumer(ConsumerConfig::new().group("l")).unwrap();
    l.subscribe(&["t"]).unwrap();
    assert!(l.poll(Duration::from_millis(100)).unwrap().is_empty());
    send_n(&broker, 0, 4..5);
    assert_eq!(offsets(&l.poll(Duration::from_secs(1)).unwrap()), vec![(0, 4)]);

    let none = ConsumerConfig::new().group("n").offset_reset(OffsetReset::None);
    let mut n = broker.consumer(none.clone()).unwrap();
    n.assign(std::slice::from_ref(&t0)).unwrap();
    assert!(matches!(n.position(&t0), Err(Error::NoOffset { partition: 0, .. })));
    assert!(matches!(n.poll(Duration::from_millis(10)), Err(Error::NoOffset { .. })));
    // A seek gives it a position.
    n.seek(&t0, 2).unwrap();
    assert_eq!(
        offsets(&n.poll(Duration::from_secs(1)).unwrap()),
        vec![(0, 2), (0, 3), (0, 4)]
    );
    n.commit().unwrap();
    assert_eq!(n.committed(&t0).unwrap(), Some(5));
    n.close().unwrap();

    // Once committed, None starts from the commit, also after a restart.
    let mut n2 = broker.consumer(none.clone()).unwrap();
    n2.subscribe(&["t"]).unwrap();
    assert!(n2.poll(Duration::from_millis(100)).unwrap().is_empty());
    assert_eq!(n2.position(&t0).unwrap(), 5);
    drop(n2);
    drop(e);
    drop(l);
    broker.close().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    send_n(&broker, 0, 5..6);
    let mut n3 = broker.consumer(none).unwrap();
    n3.assign(std::slice::from_ref(&t0)).unwrap();
    assert_eq!(n3.committed(&t0).unwrap(), Some(5));
    assert_eq!(offsets(&n3.poll(Duration::from_secs(1)).unwrap()), vec![(0, 5)]);
}

#[test]
fn commit_stores_the_next_offset_to_read() {
    let (_dir, broker) = setup(2);
    send_n(&broker, 0, 0..3);
    send_n(&broker, 1, 0..2);
    let mut c = broker.consumer(earliest().group("g")).unwrap();
    c.subscribe(&["t"]).unwrap();
    let mut n = 0;
    while n < 5 {
        n += c.poll(Duration::from_secs(1)).unwrap().len();
    }
    c.commit().unwrap();
    assert_eq!(c.committed(&tp("t", 0)).unwrap(), Some(3));
    assert_eq!(c.committed(&tp("t", 1)).unwrap(), Some(2));
    c.close().unwrap();
    let mut again = broker.consumer(earliest().group("g")).unwrap();
    again.subscribe(&["t"]).unwrap();
    assert!(again.poll(Duration::from_millis(100)).unwrap().is_empty());
}

#[test]
fn consumer_records_iterate_by_reference_and_owned() {
    let (_dir, broker) = setup(2);
    send_n(&broker, 0, 0..3);
    send_n(&broker, 1, 0..2);
    let mut consumer = broker.consumer(earliest()).unwrap();
    consumer.assign(&[tp("t", 1), tp("t", 0)]).unwrap();
    assert_eq!(consumer.assignment(), vec![tp("t", 0), tp("t", 1)]);
    // Everything is already stored, so one poll returns all of it.
    let records = consumer.poll(Duration::from_secs(1)).unwrap();
    assert_eq!(records.len(), 5);
    assert!(!records.is_empty());
    let by_ref: Vec<(u32, u64)> = (&records).into_iter().map(|r| (r.partition(), r.offset())).collect();
    let mut by_iter: Vec<(u32, u64)> = Vec::new();
    for r in &records {
        by_iter.push((r.partition(), r.offset()));
    }
    assert_eq!(by_ref, by_iter);
    let cloned = records.clone();
    let owned: Vec<logbus::ConsumedRecord> = records.into_iter().collect();
    let values: Vec<Vec<u8>> = owned.iter().map(|r| r.value().to_vec()).collect();
    assert_eq!(cloned.iter().map(|r| r.value().to_vec()).collect::<Vec<_>>(), values);
    assert_eq!(values.len(), 5);
    assert!(values.contains(&b"1:1".to_vec()));
}

#[test]
fn records_in_a_poll_are_in_offset_order_per_partition() {
    let (_dir, broker) = setup(3);
    let producer = broker.producer();
    for i in 0..300 {
        producer.send("t", Record::new(format!("{i}"))).unwrap();
    }
    let mut consumer = broker.consumer(earliest().max_poll_records(1000)).unwrap();
    consumer.assign(&[tp("t", 0), tp("t", 1), tp("t", 2)]).unwrap();
    let mut next = [0u64; 3];
    let mut total = 0;
    while total < 300 {
        let got = consumer.poll(Duration::from_secs(1)).unwrap();
        assert!(!got.is_empty());
        for r in &got {
            let p = r.partition() as usize;
            assert_eq!(r.offset(), next[p]);
            next[p] += 1;
            total += 1;
        }
    }
    assert_eq!(next, [100, 100, 100]);
}

#[test]
fn a_position_below_start_offset_follows_the_reset_policy() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("t", TopicConfig::new(1).segment_bytes(4096).retention_bytes(Some(8192)))
        .unwrap();
    let t0 = tp("t", 0);
    let mut consumer = broker.consumer(earliest()).unwrap();
    consumer.assign(std::slice::from_ref(&t0)).unwrap();
    assert_eq!(consumer.position(&t0).unwrap(), 0);
    let producer = broker.producer();
    for i in 0..2000 {
        producer.send("t", Record::new(format!("retained-{i:05}"))).unwrap();
    }
    let start = topic.partition(0).unwrap().start_offset();
    assert!(start > 0, "retention deleted nothing");
    let got = consumer.poll(Duration::from_secs(1)).unwrap();
    let first = got.iter().next().expect("records after the reset").offset();
    assert!(first >= start, "returned offset {first} below start_offset {start}");
    assert_eq!(first, start);
}

#[test]
fn timeouts_too_large_for_the_clock_wait_instead_of_panicking() {
    for wait in [
        logbus::WaitStrategy::Block,
        logbus::WaitStrategy::SpinThenBlock(Duration::MAX),
    ] {
        let (_dir, broker) = setup(1);
        let mut c = broker
            .consumer(
                ConsumerConfig::new()
                    .offset_reset(OffsetReset::Earliest)
                    .wait_strategy(wait),
            )
            .unwrap();
        c.assign(&[tp("t", 0)]).unwrap();
        // Data already there: returned at once.
        send_n(&broker, 0, 0..3);
        assert_eq!(c.poll(Duration::MAX).unwrap().len(), 3);
        // Nothing there yet: waits (no deadline arithmetic overflow) until a
        // record arrives from another thread.
        thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(20));
                send_n(&broker, 0, 3..4);
            });
            let rs = c.poll(Duration::MAX).unwrap();
            assert_eq!(offsets(&rs), vec![(0, 3)]);
        });
    }
}
