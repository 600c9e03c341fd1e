//! The mirror's failures: an unreachable cluster (reported, retried), a
//! record Kafka refuses for its size, records retention deleted first.

use std::time::{Duration, Instant};

use logbus::kafka::{Mirror, OnGap};
use logbus::{ConsumerConfig, Error, Record, TopicConfig, TopicPartition};

use super::{dead_address, local, read_all, wait_mirrored, wait_until};
use crate::broker::Tansu;

#[test]
fn an_unreachable_cluster_is_reported_within_seconds_and_retried_until_it_answers() {
    let (_dir, broker) = local("later", TopicConfig::new(1));
    broker.producer().send("later", Record::new("kept")).unwrap();
    // A cluster that does not answer yet: a frozen broker.
    let kafka = Tansu::start();
    kafka.pause();
    let t = Instant::now();
    let m = Mirror::builder(kafka.bootstrap())
        .topic("later")
        .connect_timeout(Duration::from_secs(2))
        .start(&broker)
        .unwrap();
    let st = wait_until(Duration::from_secs(10), "an error in the status", || {
        let st = m.status();
        (st.last_error.is_some(), st)
    });
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    let e = st.last_error.unwrap();
    assert!(e.contains(&kafka.bootstrap()) && e.contains("retrying"), "{e}");
    assert!(!st.connected && m.is_running());
    kafka.resume();
    let st = wait_mirrored(|| m.status(), 1);
    assert!(st.connected && st.last_error.is_none(), "{st:?}");
    m.stop().unwrap();
    assert_eq!(read_all(&kafka, "later", 1, 1, Duration::from_millis(300)).len(), 1);

    // A port nobody listens on: same report, and stop() returns promptly.
    let address = dead_address();
    let m = Mirror::builder(&address)
        .topic("later")
        .group("other")
        .connect_timeout(Duration::from_secs(1))
        .start(&broker)
        .unwrap();
    let st = wait_until(Duration::from_secs(10), "an error in the status", || {
        let st = m.status();
        (st.last_error.is_some(), st)
    });
    assert!(st.last_error.unwrap().contains(&address));
    let t = Instant::now();
    m.stop().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "stop took {:?}", t.elapsed());
}

#[test]
fn an_oversized_record_stops_the_mirror_at_its_offset_unless_skipped() {
    let kafka = Tansu::start();
    let (_dir, broker) = local("big", TopicConfig::new(2));
    let p = broker.producer();
    p.send("big", Record::new("small 0").with_partition(1)).unwrap();
    p.send("big", Record::new("small 1").with_partition(1)).unwrap();
    p.send("big", Record::new(vec![7u8; 5000]).with_partition(1)).unwrap();
    p.send("big", Record::new("small 3").with_partition(1)).unwrap();
    p.send("big", Record::new("other").with_partition(0)).unwrap();
    // Kafka's limit, as the client sees it (librdkafka's minimum is 1000 bytes).
    let m = Mirror::builder(kafka.bootstrap())
        .topic("big")
        .set("message.max.bytes", "2000")
        .start(&broker)
        .unwrap();
    wait_until(Duration::from_secs(30), "the mirror stops", || {
        (!m.is_running(), m.status())
    });
    let e = m.stop().unwrap_err();
    assert!(matches!(e, Error::Kafka { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("topic 'big' partition 1 offset 2"), "{msg}");
    assert!(msg.contains("larger than the cluster accepts"), "{msg}");
    let c = broker.consumer(ConsumerConfig::new().group("logbus-mirror")).unwrap();
    assert_eq!(
        c.committed(&TopicPartition::new("big", 1)).unwrap(),
        Some(2),
        "stops at the big record"
    );

    let m = Mirror::builder(kafka.bootstrap())
        .topic("big")
        .group("skipping")
        .set("message.max.bytes", "2000")
        .skip_oversized(true)
        .start(&broker)
        .unwrap();
    wait_mirrored(|| m.status(), 5);
    let st = m.stop().unwrap();
    assert_eq!(st.skipped_oversized, 1, "{st:?}");
    assert!(st.last_error.unwrap_or_default().contains("offset 2"));
    // At Kafka: the two small ones twice (both mirrors sent them), "small 3" and "other" once, never the big one.
    let got = read_all(&kafka, "big", 2, 5, Duration::from_millis(500));
    assert!(got.iter().all(|r| r.value().len() < 100), "{got:?}");
    assert!(got.iter().any(|r| r.value() == b"small 3"));
}

#[test]
fn records_retention_deleted_before_shipping_stop_the_sidecar_unless_skipped() {
    let kafka = Tansu::start();
    let config = TopicConfig::new(1).segment_bytes(4096).retention_bytes(Some(8192));
    let (dir, broker) = local("short", config);
    let p = broker.producer();
    let send = |n: usize| {
        for i in 0..n {
            p.send("short", Record::new(vec![b'x'; 100]).with_key(i.to_string()))
                .unwrap();
        }
    };
    send(20);
    let m = Mirror::builder(kafka.bootstrap())
        .topic("short")
        .start_sidecar(dir.path())
        .unwrap();
    wait_mirrored(|| m.status(), 20);
    m.stop().unwrap();
    // Much more than retention keeps, while no mirror runs.
    send(400);
    let start = broker.topic("short").unwrap().partition(0).unwrap().start_offset();
    assert!(start > 20, "retention deleted nothing: start {start}");

    let m = Mirror::builder(kafka.bootstrap())
        .topic("short")
        .start_sidecar(dir.path());
    let e = match m {
        Err(e) => e,
        Ok(m) => {
            wait_until(Duration::from_secs(20), "the mirror stops", || {
                (!m.is_running(), m.status())
            });
            m.stop().unwrap_err()
        }
    };
    assert!(matches!(e, Error::MirrorGap { from: 20, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("topic 'short' partition 0") && msg.contains("20..") && msg.contains("--on-gap skip"),
        "{msg}"
    );

    let m = Mirror::builder(kafka.bootstrap())
        .topic("short")
        .on_gap(OnGap::Skip)
        .start_sidecar(dir.path())
        .unwrap();
    let st = wait_mirrored(|| m.status(), 420);
    let st2 = m.stop().unwrap();
    assert!(st2.skipped_gap > 0, "{st:?} {st2:?}");
    assert_eq!(st2.sent + st2.skipped_gap, 400, "{st2:?}");
}
