//! A producer caches, per thread, the topic it last sent to. Every change that
//! makes such a route stale must be seen by the next send from that thread.

use logbus::{Broker, Error, Record, TopicConfig};

use crate::common;

#[test]
fn a_deleted_then_recreated_topic_is_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = broker.producer();
    for i in 0..3 {
        assert_eq!(p.send("t", Record::new("a")).unwrap().offset(), i);
    }
    broker.delete_topic("t").unwrap();
    assert!(matches!(p.send("t", Record::new("b")), Err(Error::UnknownTopic { .. })));
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    assert_eq!(p.send("t", Record::new("c")).unwrap().offset(), 0);
    let part = broker.topic("t").unwrap().partition(0).unwrap();
    let got = part.read(0, 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value(), b"c");
}

#[test]
fn added_partitions_are_seen_by_the_next_send() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let p = broker.producer();
    p.send("t", Record::new("x").with_partition(1)).unwrap();
    assert!(matches!(
        p.send("t", Record::new("x").with_partition(3)),
        Err(Error::UnknownPartition { .. })
    ));
    broker.add_partitions("t", 4).unwrap();
    let m = p.send("t", Record::new("y").with_partition(3)).unwrap();
    assert_eq!((m.partition(), m.offset()), (3, 0));
    // Round-robin now covers all four.
    let mut seen: Vec<u32> = (0..8)
        .map(|_| p.send("t", Record::new("z")).unwrap().partition())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, vec![0, 1, 2, 3]);
}

#[test]
fn two_brokers_with_the_same_topic_name_are_kept_apart() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Broker::open(da.path()).unwrap();
    let b = Broker::open(db.path()).unwrap();
    a.create_topic("t", TopicConfig::new(1)).unwrap();
    b.create_topic("t", TopicConfig::new(1)).unwrap();
    let (pa, pb) = (a.producer(), b.producer());
    for i in 0..5u64 {
        assert_eq!(pa.send("t", Record::new("a")).unwrap().offset(), 2 * i);
        assert_eq!(pa.send("t", Record::new("a")).unwrap().offset(), 2 * i + 1);
        assert_eq!(pb.send("t", Record::new("b")).unwrap().offset(), i);
    }
    assert_eq!(a.topic("t").unwrap().partition(0).unwrap().end_offset(), 10);
    assert_eq!(b.topic("t").unwrap().partition(0).unwrap().end_offset(), 5);
    let rb = b.topic("t").unwrap().partition(0).unwrap().read(0, 100).unwrap();
    assert!(rb.iter().all(|r| r.value() == b"b"));
}

#[test]
fn a_closed_broker_refuses_sends_from_a_warm_thread() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = broker.producer();
    p.send("t", Record::new("a")).unwrap();
    broker.close().unwrap();
    assert!(matches!(p.send("t", Record::new("b")), Err(Error::Closed)));
    assert!(matches!(p.send_batch("t", [Record::new("b")]), Err(Error::Closed)));
}

#[test]
fn a_reopened_broker_on_the_same_directory_gets_the_sends() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = broker.producer();
    p.send("t", Record::new("a")).unwrap();
    broker.close().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let p = broker.producer();
    assert_eq!(p.send("t", Record::new("b")).unwrap().offset(), 1);
    broker.close().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    assert_eq!(broker.topic("t").unwrap().partition(0).unwrap().end_offset(), 2);
}

/// A thread's cached route holds a broker's logs (their segments stay
/// mapped). Closing the broker drops the closing thread's route at once; a
/// route another thread cached lives until that thread's next send replaces
/// it, and the replaced route is then released (off the sending thread).
#[cfg(target_os = "linux")]
#[test]
fn closed_brokers_mappings_go_with_the_routes_that_hold_them() {
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mapped = |dir: &std::path::Path| {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .any(|l| l.contains(dir.to_str().unwrap()))
    };
    let open = |dir: &std::path::Path| {
        let b = Broker::open(dir).unwrap();
        b.create_topic("t", TopicConfig::new(1)).unwrap();
        b
    };
    let a = open(da.path());
    a.producer().send("t", Record::new("a")).unwrap();
    a.close().unwrap();
    assert!(!mapped(da.path()), "closing dropped this thread's route and the broker");

    // Another thread caches a route to `b`, then sends to `c` when told.
    let (b, c) = (open(db.path()), open(dc.path()));
    let (pb, pc) = (b.producer(), c.producer());
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        pb.send("t", Record::new("b")).unwrap();
        drop(pb);
        sent_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        pc.send("t", Record::new("c")).unwrap();
    });
    sent_rx.recv().unwrap();
    b.close().unwrap();
    assert!(
        mapped(db.path()),
        "the other thread's route keeps the closed broker's segment mapped"
    );
    go_tx.send(()).unwrap();
    other.join().unwrap();
    common::wait_until(
        "the old broker's segments to be unmapped",
        std::time::Duration::from_secs(10),
        || !mapped(db.path()),
    );
    assert!(!mapped(db.path()), "the old broker's segments are still mapped");
    c.close().unwrap();
}
