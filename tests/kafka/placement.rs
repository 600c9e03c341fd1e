//! Keys land where Java producers (and logbus's `Partitioner::Murmur2`) put them.

use logbus::{partition_for_key, Partitioner, Record, TopicPartition};

use crate::broker::Tansu;
use crate::support::{consumer, create_topic, poll_n, producer};

#[test]
fn keyed_records_land_in_the_murmur2_partition() {
    let broker = Tansu::start();
    create_topic(&broker, "placed", 6);
    let p = producer(&broker);
    let keys: Vec<String> = (0..60).map(|i| format!("customer-{i}")).collect();
    let mds = p
        .send_batch(
            "placed",
            keys.iter().map(|k| Record::new(k.clone()).with_key(k.clone())),
        )
        .unwrap();
    let mut used = std::collections::BTreeSet::new();
    for (k, md) in keys.iter().zip(&mds) {
        let want = partition_for_key(Partitioner::Murmur2, k.as_bytes(), 6);
        assert_eq!(md.partition(), want, "key {k}");
        used.insert(want);
    }
    assert!(used.len() > 1, "60 keys should spread over partitions: {used:?}");
    // Same key, same partition, every time.
    let again = p.send("placed", Record::new("x").with_key("customer-7")).unwrap();
    assert_eq!(again.partition(), mds[7].partition());

    // And the broker stored them there.
    let mut c = consumer(&broker).build().unwrap();
    let tp = TopicPartition::new("placed", mds[0].partition());
    c.assign(std::slice::from_ref(&tp)).unwrap();
    let n = mds
        .iter()
        .chain([&again])
        .filter(|m| m.partition() == tp.partition)
        .count();
    for r in poll_n(&mut c, n) {
        let want = partition_for_key(Partitioner::Murmur2, r.key().unwrap(), 6);
        assert_eq!(r.partition(), want);
    }
}
