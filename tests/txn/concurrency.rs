//! Several transactions open at once, from different threads, on the same
//! partitions: each commits or aborts on its own, and read-committed readers
//! see exactly the committed ones, in offset order.

use std::collections::HashMap;

use logbus::{Broker, BrokerConfig, Durability, Record, TopicConfig};

#[test]
fn concurrent_transactions_on_overlapping_partitions_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(dir.path(), BrokerConfig::new().durability(Durability::PageCache)).unwrap();
    broker.create_topic("t", TopicConfig::new(4)).unwrap();
    let threads: Vec<_> = (0..4u32)
        .map(|thread| {
            let producer = broker.producer();
            std::thread::spawn(move || {
                let mut outcome = HashMap::new();
                for n in 0..40u32 {
                    // Two transactions of this thread open at once.
                    let mut a = producer.transaction().unwrap();
                    let mut b = producer.transaction().unwrap();
                    for i in 0..(1 + n % 7) {
                        a.send("t", Record::new(format!("{thread}-{n}-a-{i}")).with_partition(i % 4))
                            .unwrap();
                        b.send(
                            "t",
                            Record::new(format!("{thread}-{n}-b-{i}")).with_partition((i + 1) % 4),
                        )
                        .unwrap();
                    }
                    let a_commits = n % 3 != 0;
                    if a_commits {
                        a.commit().unwrap();
                    } else {
                        a.abort().unwrap();
                    }
                    // b is dropped uncommitted every fourth time.
                    let b_commits = n % 4 != 0;
                    if b_commits {
                        b.commit().unwrap();
                    } else {
                        drop(b);
                    }
                    outcome.insert(format!("{thread}-{n}-a"), (a_commits, 1 + n % 7));
                    outcome.insert(format!("{thread}-{n}-b"), (b_commits, 1 + n % 7));
                }
                outcome
            })
        })
        .collect();
    let mut outcome = HashMap::new();
    for t in threads {
        outcome.extend(t.join().unwrap());
    }
    let got = crate::common::read_committed(&broker, "t", "concurrency");
    let mut count: HashMap<String, u32> = HashMap::new();
    let mut last_offset: HashMap<u32, u64> = HashMap::new();
    for (p, o, v) in &got {
        let prev = last_offset.insert(*p, *o);
        assert!(
            prev.is_none_or(|prev| prev < *o),
            "offsets out of order in partition {p}"
        );
        let txn = v.rsplit_once('-').unwrap().0.to_string();
        *count.entry(txn).or_default() += 1;
    }
    for (txn, (committed, n)) in &outcome {
        let seen = count.get(txn).copied().unwrap_or(0);
        if *committed {
            assert_eq!(seen, *n, "committed transaction {txn} must be whole");
        } else {
            assert_eq!(seen, 0, "aborted or dropped transaction {txn} must be invisible");
        }
    }
    for p in 0..4 {
        let part = broker.topic("t").unwrap().partition(p).unwrap();
        assert_eq!(
            part.log().last_stable_offset(),
            part.end_offset(),
            "no transaction left open"
        );
    }
}
