//! `kafka::Ingest` (Kafka → local) as a library: the round trip, resumption
//! from the local log, the group mode, and the errors at start.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use logbus::kafka::{Ingest, IngestBuilder, KafkaOrigin};
use logbus::{Broker, Record, TopicConfig};

use crate::broker::Tansu;
use crate::common::Deadline;
use crate::support::{create_topic, producer, send_spread, RECORDS_TIMEOUT};

/// An ingest builder in assign mode (no group join) for `topic`.
fn ingest(broker: &Tansu, topic: &str) -> IngestBuilder {
    Ingest::builder(broker.bootstrap()).topic(topic).assign_all(true)
}

/// Every local record of `topic`, partition by partition.
pub fn local_records(local: &Broker, topic: &str) -> Vec<logbus::ConsumedRecord> {
    let t = local.topic(topic).unwrap();
    let mut out = Vec::new();
    for p in 0..t.partition_count() {
        let part = t.partition(p).unwrap();
        let mut pos = part.start_offset();
        while pos < part.end_offset() {
            let got = part.read(pos, 1000).unwrap();
            pos = got.last().unwrap().offset() + 1;
            out.extend(got);
        }
    }
    out
}

/// Waits until the local topic holds `n` records.
fn wait_local(local: &Broker, topic: &str, n: usize) {
    let deadline = Deadline::new(RECORDS_TIMEOUT, format!("{n} records ingested"));
    loop {
        let have = local_records(local, topic).len();
        if have >= n {
            assert_eq!(have, n, "more local records than produced");
            return;
        }
        deadline.check_with(|| format!("{have} so far"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that the ingested records of `topic` are exactly Kafka offsets
/// 0..counts[p] of each partition, each once, in order.
fn assert_exactly_once(local: &Broker, topic: &str, counts: &BTreeMap<u32, u64>) {
    let mut seen: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for r in local_records(local, topic) {
        if let Some(o) = KafkaOrigin::of(&r) {
            assert_eq!(o.topic, topic);
            assert_eq!(
                o.partition,
                r.partition(),
                "Kafka partition {} stored in local partition {}",
                o.partition,
                r.partition()
            );
            seen.entry(o.partition).or_default().push(o.offset);
        }
    }
    for (p, n) in counts {
        let want: Vec<u64> = (0..*n).collect();
        assert_eq!(
            seen.remove(p).unwrap_or_default(),
            want,
            "Kafka offsets stored for partition {p}"
        );
    }
    assert!(seen.is_empty(), "records of unexpected partitions: {seen:?}");
}

#[test]
fn records_arrive_in_the_same_partition_intact_with_their_kafka_origin_and_a_restart_adds_no_duplicate() {
    let broker = Tansu::start();
    create_topic(&broker, "orders", 3);
    let kafka = producer(&broker);
    let sent: Vec<Record> = (0..30u32)
        .map(|i| {
            let mut r = Record::new(format!("value {i}"))
                .with_header("trace", format!("t{i}"))
                .with_header("trace", "dup")
                .with_timestamp(1_700_000_000_000 + i64::from(i))
                .with_partition(i % 3);
            if i % 2 == 0 {
                r = r.with_key(format!("key {i}"));
            }
            r
        })
        .collect();
    kafka.send_batch("orders", sent.clone()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    let running = ingest(&broker, "orders").start(&local).unwrap();
    assert_eq!(
        local.topic("orders").unwrap().partition_count(),
        3,
        "created with Kafka's partition count"
    );
    wait_local(&local, "orders", 30);
    let report = running.stop().unwrap();
    assert_eq!(report.ingested, 30);
    assert_eq!(report.partitions.len(), 3);
    assert!(
        report
            .partitions
            .iter()
            .all(|p| p.last_offset == Some(9) && p.ingested == 10),
        "{report:?}"
    );

    let by_value: BTreeMap<Vec<u8>, &Record> = sent.iter().map(|r| (r.value().to_vec(), r)).collect();
    for r in local_records(&local, "orders") {
        let s = by_value[r.value()];
        assert_eq!(r.partition(), s.partition().unwrap());
        assert_eq!(r.key(), s.key());
        assert_eq!(r.timestamp(), s.timestamp().unwrap());
        let headers: Vec<(&str, &[u8])> = r.headers().collect();
        let own: Vec<(&str, &[u8])> = s.headers().collect();
        assert_eq!(
            &headers[..own.len()],
            &own[..],
            "the record's own headers come first, unchanged"
        );
        let origin = KafkaOrigin::of(&r).unwrap();
        let value = format!("orders/{}/{}", r.partition(), origin.offset);
        assert_eq!(&headers[own.len()..], &[("kafka.origin", value.as_bytes())][..]);
    }

    // A restart resumes after the last stored offset: only the new records.
    send_spread(&kafka, "orders", "late ", 0..6, 3);
    let running = ingest(&broker, "orders").start(&local).unwrap();
    wait_local(&local, "orders", 36);
    std::thread::sleep(Duration::from_millis(500));
    let report = running.stop().unwrap();
    assert_eq!(report.ingested, 6, "{report:?}");
    assert_exactly_once(&local, "orders", &(0..3).map(|p| (p, 12)).collect());
}

#[test]
fn records_appended_locally_by_others_are_skipped_when_finding_the_resume_point_up_to_resume_scan() {
    let broker = Tansu::start();
    create_topic(&broker, "mixed", 1);
    let kafka = producer(&broker);
    kafka
        .send_batch("mixed", (0..5).map(|i| Record::new(format!("k{i}"))))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    let running = ingest(&broker, "mixed").start(&local).unwrap();
    wait_local(&local, "mixed", 5);
    running.stop().unwrap();

    // Someone else appends to the ingested topic.
    let own = local.producer();
    own.send_batch("mixed", (0..3).map(|i| Record::new(format!("local {i}"))))
        .unwrap();
    kafka
        .send_batch("mixed", (5..8).map(|i| Record::new(format!("k{i}"))))
        .unwrap();

    // Three foreign records at the end: a scan of two cannot find the resume point.
    let err = ingest(&broker, "mixed").resume_scan(2).start(&local).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("resume_scan") && msg.contains("'mixed' partition 0"),
        "{msg}"
    );
    assert_eq!(local_records(&local, "mixed").len(), 8, "a failed start writes nothing");

    let running = ingest(&broker, "mixed").start(&local).unwrap();
    wait_local(&local, "mixed", 11);
    running.stop().unwrap();
    assert_exactly_once(&local, "mixed", &[(0, 8)].into());
    let foreign = local_records(&local, "mixed")
        .iter()
        .filter(|r| KafkaOrigin::of(r).is_none())
        .count();
    assert_eq!(foreign, 3, "foreign records are kept");
}

#[test]
fn a_directory_holding_the_three_header_origin_form_resumes_after_its_last_record() {
    let broker = Tansu::start();
    create_topic(&broker, "legacy", 2);
    let kafka = producer(&broker);
    send_spread(&kafka, "legacy", "k", 0..10, 2);
    // What earlier builds stored for Kafka offsets 0..3 of each partition.
    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    local.create_topic("legacy", TopicConfig::new(2)).unwrap();
    let own = local.producer();
    for p in 0..2u32 {
        own.send_batch(
            "legacy",
            (0..3u64).map(|o| {
                Record::new(format!("old {o}"))
                    .with_header("kafka.topic", "legacy")
                    .with_header("kafka.partition", p.to_string())
                    .with_header("kafka.offset", o.to_string())
                    .with_partition(p)
            }),
        )
        .unwrap();
    }

    let running = ingest(&broker, "legacy").start(&local).unwrap();
    wait_local(&local, "legacy", 10);
    let report = running.stop().unwrap();
    assert_eq!(report.ingested, 4, "only offsets 3 and 4 of each partition: {report:?}");
    assert_exactly_once(&local, "legacy", &(0..2).map(|p| (p, 5)).collect());
}

#[test]
fn a_local_topic_with_fewer_partitions_than_the_kafka_topic_is_refused_naming_both_counts() {
    let broker = Tansu::start();
    create_topic(&broker, "wide", 3);
    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    local.create_topic("wide", TopicConfig::new(2)).unwrap();
    let msg = ingest(&broker, "wide").start(&local).unwrap_err().to_string();
    assert!(msg.contains("has 3 partitions") && msg.contains("has 2"), "{msg}");

    let msg = ingest(&broker, "absent").start(&local).unwrap_err().to_string();
    assert!(msg.contains("no topic 'absent'"), "{msg}");
    assert_eq!(
        local.topics(),
        vec!["wide".to_string()],
        "nothing created for a missing Kafka topic"
    );
}

#[test]
fn an_unreachable_cluster_fails_start_within_the_connect_timeout_and_writes_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    let t = Instant::now();
    let err = Ingest::builder(format!("127.0.0.1:{port}"))
        .topic("orders")
        .connect_timeout(Duration::from_secs(3))
        .start(&local)
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("no broker answered"),
        "{msg}"
    );
    assert!(local.topics().is_empty());
}

#[test]
fn group_mode_joins_fast_and_places_partitions_from_the_local_log_not_the_group_commits() {
    let broker = Tansu::start();
    create_topic(&broker, "grouped", 2);
    let kafka = producer(&broker);
    send_spread(&kafka, "grouped", "g", 0..10, 2);
    let dir = tempfile::tempdir().unwrap();
    let local = Broker::open(dir.path()).unwrap();
    let group = || {
        Ingest::builder(broker.bootstrap())
            .topic("grouped")
            .group("ingesters")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
    };
    let t = Instant::now();
    let running = group().start(&local).unwrap();
    wait_local(&local, "grouped", 10);
    eprintln!("group mode: first join and 10 records in {:?}", t.elapsed());
    running.stop().unwrap();

    // Local records are lost (say, a restored backup): the group's commits
    // are ahead of the local log, and the ingest follows the local log.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Broker::open(fresh_dir.path()).unwrap();
    send_spread(&kafka, "grouped", "g", 10..14, 2);
    let t = Instant::now();
    let running = group().start(&fresh).unwrap();
    wait_local(&fresh, "grouped", 14);
    eprintln!("group mode: rejoin and 14 records in {:?}", t.elapsed());
    let report = running.stop().unwrap();
    assert_eq!(report.ingested, 14);
    assert_exactly_once(&fresh, "grouped", &[(0, 7), (1, 7)].into());
}
