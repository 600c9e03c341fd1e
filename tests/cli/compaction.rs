//! Compaction on the command line: `topics create --cleanup-policy`,
//! `topics describe` with each partition's dirty ratio, `dump` showing the
//! gaps compaction left and tombstones, `consume` skipping the gaps.

use logbus::{Broker, Record};

use super::run::{fails, ok, run};

#[test]
fn create_describe_dump_and_consume_a_compacted_topic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(
        &dir,
        &[
            "topics",
            "create",
            "table",
            "--cleanup-policy",
            "compact",
            "--segment-bytes",
            "300",
            "--delete-retention-ms",
            "5000",
        ],
    );
    {
        let broker = Broker::open(&dir).unwrap();
        let producer = broker.producer();
        for i in 0..40 {
            producer
                .send("table", Record::new(format!("v{i}")).with_key(format!("k{}", i % 4)))
                .unwrap();
        }
        producer.send("table", Record::tombstone("k1")).unwrap();
        producer.send("table", Record::new("last").with_key("k9")).unwrap();
        let before = ok(&dir, &["topics", "describe", "table"]);
        assert!(before.contains("cleanup.policy=compact,"), "{before}");
        assert!(before.contains("delete.retention.ms=5000"), "{before}");
        assert!(before.contains("DIRTY_RATIO"), "{before}");
        assert!(
            before.contains("1.000"),
            "every sealed byte is dirty before a pass: {before}"
        );
        broker.topic("table").unwrap().compact().unwrap();
        broker.close().unwrap();
    }
    let after = ok(&dir, &["topics", "describe", "table"]);
    assert!(after.contains("0.000"), "nothing is dirty right after a pass: {after}");

    let first = dir.join("table/0/00000000000000000000.log");
    let dumped = ok(&dir, &["dump", first.to_str().unwrap()]);
    assert!(dumped.contains("removed by compaction"), "{dumped}");
    let values = ok(&dir, &["consume", "table", "--from-beginning", "--print-key"]);
    let lines: Vec<&str> = values.lines().collect();
    assert!(lines.len() < 40, "{values}");
    for latest in ["k0\tv36", "k2\tv38", "k3\tv39", "k9\tlast"] {
        assert!(lines.contains(&latest), "{latest} missing from {values}");
    }
    assert!(!values.contains("v0\n"), "{values}");
    ok(&dir, &["verify"]);
}

#[test]
fn an_unknown_cleanup_policy_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // A usage error: clap's exit code 2, nothing created.
    let r = run(&dir, &["topics", "create", "t", "--cleanup-policy", "shred"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("unknown cleanup policy 'shred'"), "{}", r.stderr);
    assert!(!dir.join("t").exists());
    // A bad value of a compaction setting is the library's InvalidConfig.
    fails(
        &dir,
        &["topics", "create", "t", "--min-cleanable-dirty-ratio", "2"],
        "min_cleanable_dirty_ratio",
    );
}
