//! The fsync path: rounds are timed, and a failed one counts a poisoned
//! partition (with `fault-injection`). Both tests hold
//! [`common::process_wide_faults`]: an injected failure hits any log's fsync.

use logbus::{Broker, BrokerConfig, Durability, Record, TopicConfig};

use crate::{common, exporter, scrape};

#[test]
fn every_fsync_round_is_timed() {
    let _faults = common::process_wide_faults();
    let addr = exporter();
    let topic = [("topic", "durable")];
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(dir.path(), BrokerConfig::new().durability(Durability::Sync)).unwrap();
    broker.create_topic("durable", TopicConfig::new(1)).unwrap();
    let before = scrape(addr).count("logbus_fsync_duration_seconds_count", &topic);
    let p = broker.producer();
    for i in 0..5 {
        p.send("durable", Record::new(format!("r{i}"))).unwrap();
    }
    let after = scrape(addr).count("logbus_fsync_duration_seconds_count", &topic);
    assert!(
        after - before >= 5.0,
        "one round per lone Sync send: {before} -> {after}"
    );
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_poisoned_partition_is_counted() {
    let _faults = common::process_wide_faults();
    let addr = exporter();
    let topic = [("topic", "poisoned")];
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(dir.path(), BrokerConfig::new().durability(Durability::Sync)).unwrap();
    broker.create_topic("poisoned", TopicConfig::new(2)).unwrap();
    let p = broker.producer();
    p.send("poisoned", Record::new("ok").with_partition(0)).unwrap();
    assert_eq!(scrape(addr).count("logbus_poisoned_partitions_total", &topic), 0.0);

    logbus::testing::fail_next_fsyncs(1);
    let err = p.send("poisoned", Record::new("lost").with_partition(0)).unwrap_err();
    assert!(matches!(err, logbus::Error::Poisoned { .. }), "{err}");
    assert_eq!(scrape(addr).count("logbus_poisoned_partitions_total", &topic), 1.0);
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_slow_fsync_round_is_counted() {
    let _faults = common::process_wide_faults();
    let addr = exporter();
    let topic = [("topic", "slow")];
    let dir = tempfile::tempdir().unwrap();
    // Partition 0 of topic `slow`: its segment is fsynced by a log's sync round.
    let _slow = common::SlowFsyncOnce::under(&dir.path().join("slow").join("0"));
    let broker = Broker::open_with(dir.path(), BrokerConfig::new().durability(Durability::Sync)).unwrap();
    broker.create_topic("slow", TopicConfig::new(1)).unwrap();
    broker.producer().send("slow", Record::new("waits")).unwrap();
    let scraped = scrape(addr);
    assert!(scraped.count("logbus_slow_fsyncs_total", &topic) >= 1.0);
    assert!(scraped.count("logbus_fsync_duration_seconds_sum", &topic) >= 1.0);
}
