//! What read-committed and read-uncommitted readers see of committed,
//! aborted, dropped and open transactions, before and after a reopen.

use std::time::Duration;

use logbus::{
    Broker, BrokerConfig, ConsumedRecord, ConsumerConfig, Durability, IsolationLevel, OffsetReset, Record, TopicConfig,
    TopicPartition,
};

fn broker(dir: &std::path::Path) -> Broker {
    Broker::open_with(dir, BrokerConfig::new().durability(Durability::Sync)).unwrap()
}

fn consumer(b: &Broker, level: IsolationLevel, tps: &[TopicPartition]) -> logbus::Consumer {
    let mut c = b
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .isolation_level(level),
        )
        .unwrap();
    c.assign(tps).unwrap();
    c
}

/// Polls until two polls in a row return nothing; the values in order.
fn drain(c: &mut logbus::Consumer) -> Vec<String> {
    let mut out = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let rs = c.poll(Duration::from_millis(20)).unwrap();
        if rs.is_empty() {
            empty += 1;
        }
        out.extend(
            rs.iter()
                .map(|r: &ConsumedRecord| String::from_utf8(r.value().to_vec()).unwrap()),
        );
    }
    out
}

fn tp(t: &str, p: u32) -> TopicPartition {
    TopicPartition::new(t, p)
}

#[test]
fn committed_records_appear_aborted_and_dropped_ones_never() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    b.create_topic("t", TopicConfig::new(2)).unwrap();
    let p = b.producer();
    let mut c = consumer(&b, IsolationLevel::ReadCommitted, &[tp("t", 0), tp("t", 1)]);
    let mut u = consumer(&b, IsolationLevel::ReadUncommitted, &[tp("t", 0)]);

    let mut t1 = p.transaction().unwrap();
    t1.send("t", Record::new("c0").with_partition(0)).unwrap();
    t1.send("t", Record::new("c1").with_partition(1)).unwrap();
    assert!(
        drain(&mut c).is_empty(),
        "an open transaction is invisible to read-committed"
    );
    assert_eq!(drain(&mut u), ["c0"], "read-uncommitted sees it as written");
    t1.commit().unwrap();
    let mut got = drain(&mut c);
    got.sort();
    assert_eq!(got, ["c0", "c1"]);

    let mut t2 = p.transaction().unwrap();
    t2.send("t", Record::new("a0").with_partition(0)).unwrap();
    t2.abort().unwrap();
    {
        let mut t3 = p.transaction().unwrap();
        t3.send("t", Record::new("d0").with_partition(0)).unwrap();
    }
    p.send("t", Record::new("plain").with_partition(0)).unwrap();
    assert_eq!(
        drain(&mut c),
        ["plain"],
        "aborted and dropped transactions never appear"
    );
    assert_eq!(
        drain(&mut u),
        ["a0", "d0", "plain"],
        "read-uncommitted skips only markers"
    );

    // Markers occupy offsets: c0, commit marker, a0, abort marker, d0, abort marker, plain.
    let part = b.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(part.end_offset(), 7);
    let read: Vec<u64> = part.read(0, 100).unwrap().iter().map(|r| r.offset()).collect();
    assert_eq!(read, [0, 2, 4, 6], "Partition::read returns data records, not markers");
    assert_eq!(part.read_with(6, 10, |_| {}).unwrap(), 7);
    assert_eq!(part.verify().unwrap(), 7, "verify checks markers too");

    // The same after a reopen: visibility comes from the transaction log.
    drop((c, u, p));
    b.close().unwrap();
    let b = broker(dir.path());
    let mut c = consumer(&b, IsolationLevel::ReadCommitted, &[tp("t", 0), tp("t", 1)]);
    let mut got = drain(&mut c);
    got.sort();
    assert_eq!(got, ["c0", "c1", "plain"]);
}

#[test]
fn an_open_transaction_holds_read_committed_readers_at_its_first_offset() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    b.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = b.producer();
    p.send("t", Record::new("before")).unwrap();
    let mut open = p.transaction().unwrap();
    open.send("t", Record::new("pending")).unwrap();
    p.send("t", Record::new("after")).unwrap();
    let log = b.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(log.log().last_stable_offset(), 1);
    let mut c = consumer(&b, IsolationLevel::ReadCommitted, &[tp("t", 0)]);
    assert_eq!(drain(&mut c), ["before"], "nothing at or past the last stable offset");
    assert_eq!(c.position(&tp("t", 0)).unwrap(), 1);
    open.commit().unwrap();
    assert_eq!(log.log().last_stable_offset(), log.end_offset());
    assert_eq!(drain(&mut c), ["pending", "after"], "offsets stay in order");
}

#[test]
fn a_parked_read_committed_consumer_wakes_when_the_transaction_commits() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    b.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut txn = b.producer().transaction().unwrap();
    txn.send("t", Record::new("x")).unwrap();
    let mut c = consumer(&b, IsolationLevel::ReadCommitted, &[tp("t", 0)]);
    assert!(c.poll(Duration::from_millis(10)).unwrap().is_empty());
    let waiter = std::thread::spawn(move || c.poll(Duration::from_secs(60)).unwrap().len());
    std::thread::sleep(Duration::from_millis(20));
    txn.commit().unwrap();
    assert_eq!(waiter.join().unwrap(), 1);
}

#[test]
fn offsets_sent_with_a_transaction_commit_with_it_only() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    b.create_topic("in", TopicConfig::new(1)).unwrap();
    b.create_topic("out", TopicConfig::new(1)).unwrap();
    let p = b.producer();
    p.send_batch("in", (0..10).map(|i| Record::new(format!("in {i}"))))
        .unwrap();
    let input = tp("in", 0);
    let group_committed = |b: &Broker| {
        b.describe_group("g").ok().and_then(|d| {
            d.partitions
                .iter()
                .find(|l| l.topic_partition == input)
                .and_then(|l| l.committed)
        })
    };

    let mut aborted = p.transaction().unwrap();
    aborted.send("out", Record::new("x")).unwrap();
    aborted.send_offsets("g", &[(input.clone(), 5)]).unwrap();
    aborted.abort().unwrap();
    assert_eq!(group_committed(&b), None);

    let mut committed = p.transaction().unwrap();
    committed.send("out", Record::new("y")).unwrap();
    committed.send_offsets("g", &[(input.clone(), 3)]).unwrap();
    committed.send_offsets("g", &[(input.clone(), 7)]).unwrap();
    committed.commit().unwrap();
    assert_eq!(group_committed(&b), Some(7), "the last offset given wins");

    assert!(p
        .transaction()
        .unwrap()
        .send_offsets("g", &[(tp("nope", 0), 1)])
        .is_err());
    drop(p);
    b.close().unwrap();
    let b = broker(dir.path());
    assert_eq!(group_committed(&b), Some(7));
}

#[test]
fn transaction_ids_are_never_reused_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let b = broker(dir.path());
        for _ in 0..5 {
            let t = b.producer().transaction().unwrap();
            assert!(seen.insert(t.id()), "id {} handed out twice", t.id());
        }
        // Not closed: a crash.
        drop(b);
    }
}

#[test]
fn a_transaction_moves_between_threads_and_send_batch_is_one_unit() {
    fn assert_send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    b.create_topic("t", TopicConfig::new(3)).unwrap();
    let mut txn = b.producer().transaction().unwrap();
    assert_send(&txn);
    let mds = txn
        .send_batch(
            "t",
            (0..9u32).map(|i| Record::new(format!("r{i}")).with_partition(i % 3)),
        )
        .unwrap();
    assert_eq!(mds.len(), 9);
    assert!(
        mds.iter().all(|m| m.offset() < 3),
        "one batch per partition, offsets 0..3"
    );
    let mut c = consumer(&b, IsolationLevel::ReadCommitted, &[tp("t", 0), tp("t", 1), tp("t", 2)]);
    assert!(drain(&mut c).is_empty());
    std::thread::spawn(move || txn.commit().unwrap()).join().unwrap();
    let mut got = drain(&mut c);
    got.sort();
    assert_eq!(got.len(), 9);
    // Too large a record: nothing of the batch is written.
    let mut txn = b.producer().transaction().unwrap();
    let big = Record::new(vec![0u8; 2 << 20]).with_partition(1);
    assert!(txn.send_batch("t", [Record::new("ok").with_partition(0), big]).is_err());
    assert_eq!(
        b.topic("t").unwrap().partition(0).unwrap().end_offset(),
        4,
        "3 records and a marker"
    );
}

#[test]
fn truncating_below_an_open_transaction_keeps_readers_held_at_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path());
    b.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = b.producer();
    for v in ["a", "b", "c"] {
        p.send("t", Record::new(v)).unwrap();
    }
    let mut txn = p.transaction().unwrap();
    assert_eq!(txn.send("t", Record::new("cut")).unwrap().offset(), 3);
    p.send("t", Record::new("d")).unwrap();
    let part = b.topic("t").unwrap().partition(0).unwrap();
    part.log().truncate(2).unwrap();
    assert_eq!(part.log().last_stable_offset(), 2, "the transaction holds from the cut");
    assert_eq!(p.send("t", Record::new("e")).unwrap().offset(), 2);
    assert_eq!(txn.send("t", Record::new("kept")).unwrap().offset(), 3);
    let mut c = consumer(&b, IsolationLevel::ReadCommitted, &[tp("t", 0)]);
    assert_eq!(drain(&mut c), ["a", "b"]);
    txn.commit().unwrap();
    assert_eq!(drain(&mut c), ["e", "kept"]);
}
