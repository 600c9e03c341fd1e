//! Records keep partition, key, value, headers and timestamp through the
//! mirror; Kafka topics are created with the local count or checked.

use std::time::Duration;

use logbus::kafka::{Admin, Mirror};
use logbus::{ConsumerConfig, Error, Record, TopicConfig, TopicPartition};

use super::{local, origin, read_all, wait_mirrored, wait_until};
use crate::broker::Tansu;
use crate::support::create_topic;

#[test]
fn mirrored_records_keep_partition_key_value_headers_timestamp_and_carry_their_origin() {
    let kafka = Tansu::start();
    let (_dir, broker) = local("rt", TopicConfig::new(3));
    let mut sent = Vec::new();
    for i in 0..30u32 {
        let mut r = Record::new(format!("value {i}"))
            .with_header("n", i.to_string())
            .with_header("dup", "a")
            .with_header("dup", "")
            .with_timestamp(1_700_000_000_000 + i64::from(i))
            .with_partition(i % 3);
        if i % 4 != 0 {
            r = r.with_key(format!("key {i}"));
        }
        sent.push(r);
    }
    broker.producer().send_batch("rt", sent.clone()).unwrap();

    let mirror = Mirror::builder(kafka.bootstrap())
        .topic("rt")
        .source_id("round-trip-test")
        .start(&broker)
        .unwrap();
    wait_mirrored(|| mirror.status(), 30);
    let st = mirror.stop().unwrap();
    assert_eq!((st.sent, st.acknowledged, st.resent), (30, 30, 0), "{st:?}");
    assert_eq!(st.partitions.len(), 3);
    assert!(
        st.partitions.iter().all(|p| p.mirrored == 10 && p.behind() == 0),
        "{st:?}"
    );

    // Auto-created with the local partition count.
    let admin = Admin::builder(kafka.bootstrap()).build().unwrap();
    assert_eq!(admin.partition_count("rt").unwrap(), Some(3));

    let got = read_all(&kafka, "rt", 3, 30, Duration::from_millis(500));
    assert_eq!(got.len(), 30);
    // Local offsets by partition: record i is at offset i / 3 of partition i % 3.
    for r in &got {
        let (source, p, o) = origin(r);
        assert_eq!(source, "round-trip-test");
        assert_eq!(p, r.partition());
        assert_eq!(o, r.offset(), "a fresh Kafka topic gets the same offsets");
        let s = &sent[(o * 3 + u64::from(p)) as usize];
        assert_eq!(r.key(), s.key());
        assert_eq!(r.value(), s.value());
        assert_eq!(r.timestamp(), s.timestamp().unwrap());
        let mut want: Vec<(String, Vec<u8>)> = s.headers().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
        want.push(("logbus.source".into(), b"round-trip-test".to_vec()));
        want.push(("logbus.partition".into(), p.to_string().into_bytes()));
        want.push(("logbus.offset".into(), o.to_string().into_bytes()));
        let have: Vec<(String, Vec<u8>)> = r.headers().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
        assert_eq!(have, want, "headers of {r:?}");
    }

    // Progress lives in the local group's committed offsets.
    let c = broker.consumer(ConsumerConfig::new().group("logbus-mirror")).unwrap();
    for p in 0..3 {
        assert_eq!(c.committed(&TopicPartition::new("rt", p)).unwrap(), Some(10));
    }
}

#[test]
fn a_restarted_mirror_ships_only_what_is_new() {
    let kafka = Tansu::start();
    let (_dir, broker) = local("again", TopicConfig::new(2));
    let p = broker.producer();
    for i in 0..20u32 {
        p.send("again", Record::new(format!("a{i}")).with_partition(i % 2))
            .unwrap();
    }
    let m = Mirror::builder(kafka.bootstrap())
        .topic("again")
        .start(&broker)
        .unwrap();
    wait_mirrored(|| m.status(), 20);
    m.stop().unwrap();
    for i in 0..10u32 {
        p.send("again", Record::new(format!("b{i}")).with_partition(i % 2))
            .unwrap();
    }
    let m = Mirror::builder(kafka.bootstrap())
        .topic("again")
        .start(&broker)
        .unwrap();
    let st = wait_mirrored(|| m.status(), 30);
    let st2 = m.stop().unwrap();
    assert_eq!(st2.sent, 10, "{st:?} {st2:?}");
    let got = read_all(&kafka, "again", 2, 30, Duration::from_millis(500));
    assert_eq!(got.len(), 30);
}

#[test]
fn a_kafka_topic_with_fewer_partitions_stops_the_mirror_naming_both_counts() {
    let kafka = Tansu::start();
    create_topic(&kafka, "narrow", 1);
    let (_dir, broker) = local("narrow", TopicConfig::new(3));
    broker.producer().send("narrow", Record::new("x")).unwrap();
    let m = Mirror::builder(kafka.bootstrap())
        .topic("narrow")
        .start(&broker)
        .unwrap();
    wait_until(Duration::from_secs(20), "the mirror stops", || {
        (!m.is_running(), m.status())
    });
    let e = m.stop().unwrap_err();
    assert!(matches!(e, Error::Kafka { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("'narrow'") && msg.contains("has 1 partitions") && msg.contains("local topic 3"),
        "{msg}"
    );
}

#[test]
fn partitions_added_locally_are_picked_up_when_the_kafka_topic_has_them() {
    let kafka = Tansu::start();
    create_topic(&kafka, "grow", 3);
    let (_dir, broker) = local("grow", TopicConfig::new(1));
    let p = broker.producer();
    p.send("grow", Record::new("p0").with_partition(0)).unwrap();
    let m = Mirror::builder(kafka.bootstrap()).topic("grow").start(&broker).unwrap();
    wait_mirrored(|| m.status(), 1);
    broker.add_partitions("grow", 3).unwrap();
    p.send("grow", Record::new("p2").with_partition(2)).unwrap();
    let st = wait_mirrored(|| m.status(), 2);
    assert_eq!(st.partitions.len(), 3, "{st:?}");
    m.stop().unwrap();
    let got = read_all(&kafka, "grow", 3, 2, Duration::from_millis(500));
    assert!(got.iter().any(|r| r.partition() == 2 && r.value() == b"p2"), "{got:?}");
}
