//! A failed fsync poisons the partition: the sender gets a clear error,
//! later writes to that partition are refused until the broker is reopened,
//! other partitions and reads keep working, and nothing acknowledged is lost.
//! Uses the `fault-injection` feature (a process-wide switch: the test holds
//! `common::process_wide_faults`).

use logbus::{Broker, BrokerConfig, Durability, Error, Record, TopicConfig};

use crate::common;

#[test]
fn a_failed_fsync_poisons_the_partition_until_reopen() {
    let _faults = common::process_wide_faults();
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig::new().durability(Durability::Sync);
    let broker = Broker::open_with(dir.path(), config.clone()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let p = broker.producer();
    for i in 0..10 {
        p.send("t", Record::new(format!("ok-{i}")).with_partition(0)).unwrap();
    }

    logbus::testing::fail_next_fsyncs(1);
    let err = p
        .send("t", Record::new("not acknowledged").with_partition(0))
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned { partition: 0, .. }), "{err}");
    assert!(err.to_string().contains("reopen"), "the message says what to do: {err}");
    assert!(
        err.to_string().contains(".log failed: injected fault"),
        "it names the file and the cause: {err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the failure is kept as the source"
    );
    if let Error::Poisoned { source, .. } = &err {
        let names_segment = |p: &std::path::Path| p.extension().is_some_and(|e| e == "log");
        assert!(
            matches!(&**source, Error::Io { path, .. } if names_segment(path)),
            "{source:?}"
        );
    }

    // fsync works again, but the partition stays poisoned until reopen.
    let err = p.send("t", Record::new("refused").with_partition(0)).unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    // Other partitions and reads are unaffected.
    p.send("t", Record::new("other").with_partition(1)).unwrap();
    let part0 = broker.topic("t").unwrap().partition(0).unwrap();
    let before: Vec<Vec<u8>> = part0.read(0, 10).unwrap().iter().map(|r| r.value().to_vec()).collect();
    assert_eq!(before.len(), 10);
    // Closing cannot record a clean shutdown for a poisoned partition.
    assert!(broker.close().is_err());

    let broker = Broker::open_with(dir.path(), config).unwrap();
    let part0 = broker.topic("t").unwrap().partition(0).unwrap();
    let after = part0.read(0, 100).unwrap();
    for (i, r) in after.iter().take(10).enumerate() {
        assert_eq!(r.value(), format!("ok-{i}").as_bytes(), "acknowledged record {i}");
    }
    assert!(after.len() <= 11, "only the unacknowledged record may also be there");
    assert!(
        !after.iter().any(|r| r.value() == b"refused"),
        "a refused send left nothing"
    );
    let md = broker
        .producer()
        .send("t", Record::new("resumed").with_partition(0))
        .unwrap();
    assert_eq!(
        md.offset(),
        part0.end_offset() - 1,
        "writes resume at the end after reopen"
    );
    broker.close().unwrap();
}
