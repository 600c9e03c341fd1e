//! The example's workload moves the counters of the append, read, roll,
//! retention, recovery and group paths, and the scrape shows it.

use crate::{common, example, exporter, scrape, Scrape};

const TOPIC: &[(&str, &str)] = &[("topic", "events")];
const GROUP: &[(&str, &str)] = &[("group", "dashboard")];

const APPENDED: &str = "logbus_appended_records_total";

/// The first scrape (awaited) in which the records appended since `before` reach `n`:
/// appends are counted under the writer lock and published by the background thread.
fn scrape_once_appended(addr: std::net::SocketAddr, before: &Scrape, n: f64) -> Scrape {
    scrape_once_appended_to(addr, TOPIC, before, n)
}

/// [`scrape_once_appended`] for the topic `labels` name.
fn scrape_once_appended_to(addr: std::net::SocketAddr, labels: &[(&str, &str)], before: &Scrape, n: f64) -> Scrape {
    let deadline = common::Deadline::new(common::PATIENCE, format!("{n} appended records to be published"));
    loop {
        let now = scrape(addr);
        let appended = now.count(APPENDED, labels) - before.count(APPENDED, labels);
        if appended >= n {
            return now;
        }
        deadline.check_with(|| appended);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// How much `name` grew from `before` to `after`.
fn grew(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.count(name, labels) - before.count(name, labels)
}

#[test]
fn the_example_exporter_shows_the_counters_moving() {
    // An fsync failure injected by another test would hit this one's logs.
    let _faults = common::process_wide_faults();
    let addr = exporter();
    let dir = tempfile::tempdir().unwrap();
    let before = scrape(addr);
    let mut work = example::Workload::open(dir.path()).unwrap();

    let opened = scrape(addr);
    assert!(
        grew(&before, &opened, "logbus_recovery_duration_seconds_count", TOPIC) >= 3.0,
        "each of the 3 partitions' opens is timed"
    );

    // 60 rounds of 100 records of ~230 bytes over 3 partitions: each
    // partition's 64 KiB segments roll, and its 256 KiB limit deletes some.
    for _ in 0..60 {
        work.round(100).unwrap();
    }
    let after = scrape_once_appended(addr, &opened, 6000.0);
    let grew = |name: &str, labels| grew(&opened, &after, name, labels);
    assert_eq!(grew(APPENDED, TOPIC), 6000.0, "every record counted once");
    assert!(grew("logbus_appended_bytes_total", TOPIC) > 6000.0 * 200.0);
    assert!(grew("logbus_read_records_total", TOPIC) > 0.0, "the group's polls read");
    assert!(grew("logbus_read_bytes_total", TOPIC) > 0.0);
    assert!(
        grew("logbus_append_duration_seconds_count", TOPIC) >= (6000 / 64) as f64,
        "one append in 64 is timed"
    );
    assert!(grew("logbus_segment_rolls_total", TOPIC) > 0.0);
    assert!(grew("logbus_retention_deleted_segments_total", TOPIC) > 0.0);
    assert!(grew("logbus_retention_deleted_bytes_total", TOPIC) > 0.0);
    assert!(
        after.count("logbus_rebalances_total", GROUP) >= 1.0,
        "the consumer's join rebalanced its group"
    );

    // Lag is published by the background thread, once a second.
    let lag = [("group", "dashboard"), ("topic", "events"), ("partition", "0")];
    common::wait_until("the group's lag to be published", common::PATIENCE, || {
        scrape(addr).value("logbus_consumer_lag", &lag).is_some()
    });

    // The counters keep moving.
    for _ in 0..5 {
        work.round(100).unwrap();
    }
    let later = scrape_once_appended(addr, &after, 500.0);
    assert_eq!(later.count(APPENDED, TOPIC) - after.count(APPENDED, TOPIC), 500.0);
}

/// A broker in a fresh directory holding topic `name`.
fn broker_with(name: &str, config: logbus::TopicConfig) -> (tempfile::TempDir, logbus::Broker, logbus::Topic) {
    let dir = tempfile::tempdir().unwrap();
    let broker = logbus::Broker::open(dir.path()).unwrap();
    let topic = broker.create_topic(name, config).unwrap();
    (dir, broker, topic)
}

#[test]
fn compaction_passes_are_counted() {
    use logbus::{CleanupPolicy, Record, TopicConfig};
    let _faults = common::process_wide_faults();
    let addr = exporter();
    let config = TopicConfig::new(1)
        .segment_bytes(1024)
        .cleanup_policy(CleanupPolicy::Compact);
    let (_dir, broker, topic) = broker_with("table", config);
    let p = broker.producer();
    for i in 0..300 {
        p.send(
            "table",
            Record::new(format!("value {i:04}")).with_key(format!("k{}", i % 5)),
        )
        .unwrap();
    }
    let labels: &[(&str, &str)] = &[("topic", "table")];
    let before = scrape(addr);
    topic.compact().unwrap();
    let after = scrape(addr);
    assert_eq!(grew(&before, &after, "logbus_compaction_passes_total", labels), 1.0);
    assert!(grew(&before, &after, "logbus_compaction_removed_records_total", labels) > 200.0);
    assert!(grew(&before, &after, "logbus_compaction_reclaimed_bytes_total", labels) > 0.0);
    broker.close().unwrap();
}

/// Compressed batches take their own write path; their records and stored
/// (compressed) bytes are counted as plain ones are.
#[cfg(feature = "lz4")]
#[test]
fn compressed_appends_are_counted() {
    use logbus::{Compression, Record, TopicConfig};
    let _faults = common::process_wide_faults();
    let addr = exporter();
    let (_dir, broker, _) = broker_with("packed", TopicConfig::new(1).compression(Compression::Lz4));
    let labels: &[(&str, &str)] = &[("topic", "packed")];
    let before = scrape(addr);
    let p = broker.producer();
    // 30 batches of 10 records of 200 bytes that compress well.
    for b in 0..30 {
        let batch = (0..10).map(|i| Record::new(format!("{b:03}-{i:03}-{}", "x".repeat(192))));
        p.send_batch("packed", batch).unwrap();
    }
    let after = scrape_once_appended_to(addr, labels, &before, 300.0);
    assert_eq!(
        grew(&before, &after, APPENDED, labels),
        300.0,
        "every record counted once"
    );
    let bytes = grew(&before, &after, "logbus_appended_bytes_total", labels);
    assert!(bytes > 0.0, "the stored bytes are counted");
    assert!(bytes < 300.0 * 200.0, "as stored, compressed: {bytes} bytes");
    broker.close().unwrap();
}
