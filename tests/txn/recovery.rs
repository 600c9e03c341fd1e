//! A crash after the commit point but before the group offsets reached
//! `offsets.log`: the next open applies them, never moving an offset back.

use std::path::Path;

use logbus::format::txn::{self, TxnEntry, FILE_HEADER};
use logbus::{Broker, BrokerConfig, ConsumerConfig, Durability, Record, TopicConfig, TopicPartition};

fn open(dir: &Path) -> Broker {
    Broker::open_with(dir, BrokerConfig::new().durability(Durability::Sync)).unwrap()
}

/// `txn.log` as a crash before the `applied` entries were written leaves it.
fn drop_applied_entries(dir: &Path) {
    let path = dir.join("@txn").join("txn.log");
    let bytes = std::fs::read(&path).unwrap();
    let mut out = FILE_HEADER.to_vec();
    let mut pos = FILE_HEADER.len();
    let mut dropped = 0;
    while pos < bytes.len() {
        let (entry, len) = txn::decode(&bytes[pos..]).unwrap().unwrap();
        if matches!(entry, TxnEntry::Applied { .. }) {
            dropped += 1;
        } else {
            out.extend_from_slice(&bytes[pos..pos + len]);
        }
        pos += len;
    }
    assert_eq!(dropped, 1, "one commit with offsets, one applied entry");
    std::fs::write(&path, out).unwrap();
}

fn committed(b: &Broker) -> Option<u64> {
    let probe = b.consumer(ConsumerConfig::new().group("g")).unwrap();
    probe.committed(&TopicPartition::new("in", 0)).unwrap()
}

fn run(later_ordinary_commit: Option<u64>) -> Option<u64> {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    b.create_topic("in", TopicConfig::new(1)).unwrap();
    b.create_topic("out", TopicConfig::new(1)).unwrap();
    b.producer()
        .send_batch("in", (0..10).map(|i| Record::new(format!("{i}"))))
        .unwrap();
    b.close().unwrap();
    let offsets_log = dir.path().join("@groups").join("offsets.log");
    let before = std::fs::read(&offsets_log).unwrap();

    let b = open(dir.path());
    let mut t = b.producer().transaction().unwrap();
    t.send("out", Record::new("x")).unwrap();
    t.send_offsets("g", &[(TopicPartition::new("in", 0), 5)]).unwrap();
    t.commit().unwrap();
    if let Some(o) = later_ordinary_commit {
        b.set_group_offsets("g", &[(TopicPartition::new("in", 0), o)]).unwrap();
    }
    let after = std::fs::read(&offsets_log).unwrap();
    b.close().unwrap();

    // The offsets log as if the transaction's offsets never reached it
    // (keeping a later ordinary commit, if any), and no applied entry.
    drop_applied_entries(dir.path());
    let mut restored = before.clone();
    if later_ordinary_commit.is_some() {
        restored = after;
    }
    std::fs::write(&offsets_log, restored).unwrap();
    let b = open(dir.path());
    let c = committed(&b);
    b.close().unwrap();
    // Applied once: a second open finds them applied and the log compacted.
    let b = open(dir.path());
    assert_eq!(committed(&b), c);
    b.close().unwrap();
    c
}

#[test]
fn offsets_of_a_commit_that_missed_the_offsets_log_are_applied_at_open() {
    assert_eq!(run(None), Some(5));
}

#[test]
fn applying_them_at_open_never_moves_a_later_commit_back() {
    assert_eq!(run(Some(8)), Some(8));
}
