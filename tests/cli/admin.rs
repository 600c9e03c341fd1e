//! Kafka's admin output and commands: `groups describe` in Kafka's columns
//! with notes on stderr, `topics describe` of every topic, `topics alter
//! --partitions`, `topics create --if-not-exists`, `groups delete`.

use logbus::{Broker, ConsumerConfig, OffsetReset};

use super::run::{column, fails, logbus, ok, run};

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&dir, &["topics", "create", "orders", "--partitions", "2"]);
    ok(&dir, &["topics", "create", "audit"]);
    logbus(&dir)
        .args(["produce", "orders", "--partition", "0"])
        .write_stdin("a\nb\nc\n")
        .assert()
        .success();
    ok(
        &dir,
        &[
            "consume",
            "orders",
            "--group",
            "billing",
            "--from-beginning",
            "--max-messages",
            "1",
        ],
    );
    (tmp, dir)
}

#[test]
fn groups_describe_prints_kafkas_columns_and_only_the_table_on_stdout() {
    let (_tmp, dir) = setup();
    // A partition added after the group's commits has no committed offset: '-'.
    ok(&dir, &["topics", "alter", "orders", "--partitions", "3"]);
    let r = run(&dir, &["groups", "describe", "billing"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let header: Vec<&str> = r.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    // Every line after the header is a row of 9 fields: no notes on stdout.
    for line in r.stdout.lines().skip(1) {
        assert_eq!(line.split_whitespace().count(), 9, "{line}");
    }
    assert_eq!(column(&r.stdout, "GROUP"), ["billing"; 3]);
    assert_eq!(column(&r.stdout, "TOPIC"), ["orders"; 3]);
    assert_eq!(column(&r.stdout, "PARTITION"), ["0", "1", "2"]);
    assert_eq!(column(&r.stdout, "CURRENT-OFFSET"), ["1", "0", "-"]);
    assert_eq!(column(&r.stdout, "LOG-END-OFFSET"), ["3", "0", "0"]);
    assert_eq!(column(&r.stdout, "LAG"), ["2", "0", "-"]);
    for c in ["CONSUMER-ID", "HOST", "CLIENT-ID"] {
        assert_eq!(column(&r.stdout, c), ["-"; 3], "{c}");
    }
    assert!(r.stderr.starts_with("note: live members"), "{}", r.stderr);
}

#[test]
fn topics_describe_without_a_name_describes_every_topic() {
    let (_tmp, dir) = setup();
    let all = ok(&dir, &["topics", "describe"]);
    let one = |t: &str| ok(&dir, &["topics", "describe", t]);
    assert_eq!(all, format!("{}\n{}", one("audit"), one("orders")));
    assert_eq!(ok(&dir, &["topics", "--describe"]), all);
}

#[test]
fn topics_alter_adds_partitions_and_never_removes_them() {
    let (_tmp, dir) = setup();
    let out = ok(&dir, &["topics", "alter", "orders", "--partitions", "5"]);
    assert!(out.contains("now has 5 partition(s) (was 2)"), "{out}");
    let described = ok(&dir, &["topics", "describe", "orders"]);
    assert!(described.contains("PartitionCount: 5"), "{described}");
    // The records stay where they were; the new partitions are empty.
    assert_eq!(ok(&dir, &["consume", "orders", "--from-beginning"]), "a\nb\nc\n");
    fails(
        &dir,
        &["topics", "alter", "orders", "--partitions", "3"],
        "partitions cannot be removed",
    );
    fails(
        &dir,
        &["topics", "alter", "orders", "--partitions", "5"],
        "would not add any",
    );
    fails(&dir, &["topics", "alter", "nope", "--partitions", "5"], "nope");
    assert_eq!(
        run(&dir, &["topics", "alter", "orders"]).code,
        Some(2),
        "--partitions is required"
    );
}

#[test]
fn topics_create_if_not_exists_leaves_an_existing_topic_alone() {
    let (_tmp, dir) = setup();
    fails(&dir, &["topics", "create", "orders"], "orders");
    let r = run(
        &dir,
        &["topics", "create", "orders", "--partitions", "7", "--if-not-exists"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("exists; nothing changed"), "{}", r.stderr);
    assert!(ok(&dir, &["topics", "describe", "orders"]).contains("PartitionCount: 2"));
    let out = ok(&dir, &["topics", "create", "fresh", "--if-not-exists"]);
    assert!(out.contains("Created topic fresh"), "{out}");
}

#[test]
fn groups_delete_removes_committed_offsets_and_waits_for_the_owner() {
    let (_tmp, dir) = setup();
    fails(&dir, &["groups", "delete", "nobody"], "has no committed offsets");
    // While a process owns the directory (and so holds every live member), no delete.
    {
        let broker = Broker::open(&dir).unwrap();
        let mut c = broker
            .consumer(
                ConsumerConfig::new()
                    .group("billing")
                    .offset_reset(OffsetReset::Earliest),
            )
            .unwrap();
        c.subscribe(&["orders"]).unwrap();
        fails(&dir, &["groups", "delete", "billing"], "is locked by");
        c.close().unwrap();
        broker.close().unwrap();
    }
    assert_eq!(ok(&dir, &["groups", "list"]), "billing\n");
    let out = ok(&dir, &["groups", "delete", "billing"]);
    assert!(out.contains("Deleted the committed offsets of group billing"), "{out}");
    assert_eq!(ok(&dir, &["groups", "list"]), "");
    fails(&dir, &["groups", "describe", "billing"], "has no committed offsets");
}

#[test]
fn topics_create_takes_kafkas_config_names_and_describe_prints_them() {
    let (_tmp, dir) = setup();
    let out = ok(
        &dir,
        &[
            "topics",
            "create",
            "events",
            "--config",
            "retention.ms=604800000",
            "--config",
            "num.partitions=3",
            "--config",
            "message.timestamp.type=LogAppendTime",
        ],
    );
    assert!(out.contains("with 3 partition(s)"), "{out}");
    let described = ok(&dir, &["topics", "describe", "events"]);
    let first = described.lines().next().unwrap();
    assert!(
        first.starts_with("Topic: events\tPartitionCount: 3\tReplicationFactor: 1\t"),
        "{first}"
    );
    let configs = first.split("Configs: ").nth(1).unwrap();
    for kv in [
        "retention.ms=604800000",
        "retention.bytes=-1",
        "message.timestamp.type=LogAppendTime",
    ] {
        assert!(configs.split(',').any(|c| c == kv), "{configs} has {kv}");
    }
    fails(
        &dir,
        &["topics", "create", "bad", "--config", "retention.ms"],
        "expected KEY=VALUE",
    );
    fails(
        &dir,
        &["topics", "create", "bad", "--config", "cleanup.polcy=compact"],
        "unknown topic config",
    );
    fails(
        &dir,
        &["topics", "create", "bad", "--config", "segment.bytes=huge"],
        "segment.bytes",
    );
    assert!(
        !ok(&dir, &["topics", "list"]).contains("bad"),
        "nothing created on a bad config"
    );
}

#[test]
fn topics_create_takes_its_defaults_from_a_kafka_server_properties() {
    let (tmp, dir) = setup();
    let props = tmp.path().join("server.properties");
    std::fs::write(&props, "# broker defaults\nnum.partitions=4\nlog.retention.hours=1\n").unwrap();
    let props = props.to_str().unwrap();
    let out = ok(&dir, &["topics", "create", "dflt", "--broker-config", props]);
    assert!(out.contains("with 4 partition(s)"), "{out}");
    let described = ok(&dir, &["topics", "describe", "dflt"]);
    assert!(described.contains("PartitionCount: 4"), "{described}");
    assert!(described.contains("retention.ms=3600000"), "{described}");
    // What the command gives wins over the file.
    let out = ok(
        &dir,
        &[
            "topics",
            "create",
            "given",
            "--partitions",
            "2",
            "--retention-ms",
            "5",
            "--broker-config",
            props,
        ],
    );
    assert!(out.contains("with 2 partition(s)"), "{out}");
    assert!(ok(&dir, &["topics", "describe", "given"]).contains("retention.ms=5,"));
    std::fs::write(tmp.path().join("bad.properties"), "zookeeper.connect=localhost:2181\n").unwrap();
    let bad = tmp.path().join("bad.properties");
    fails(
        &dir,
        &["topics", "create", "nope", "--broker-config", bad.to_str().unwrap()],
        "unknown broker config",
    );
}

#[test]
fn topics_alter_changes_retention_with_kafkas_add_and_delete_config() {
    let (_tmp, dir) = setup();
    let out = ok(
        &dir,
        &[
            "topics",
            "alter",
            "orders",
            "--add-config",
            "retention.ms=60000,retention.bytes=1048576",
        ],
    );
    assert!(out.contains("retention.ms=60000,retention.bytes=1048576"), "{out}");
    let described = ok(&dir, &["topics", "describe", "orders"]);
    assert!(
        described.contains("retention.ms=60000,retention.bytes=1048576"),
        "{described}"
    );
    let out = ok(
        &dir,
        &["topics", "alter", "orders", "--delete-config", "retention.bytes"],
    );
    assert!(out.contains("retention.bytes=-1"), "{out}");
    fails(
        &dir,
        &["topics", "alter", "orders", "--add-config", "segment.bytes=4096"],
        "fixed when the topic is created",
    );
    fails(
        &dir,
        &["topics", "alter", "orders", "--add-config", "retention.ms"],
        "expected KEY=VALUE",
    );
    // A refused setting changes nothing, the partition count included.
    fails(
        &dir,
        &[
            "topics",
            "alter",
            "orders",
            "--partitions",
            "4",
            "--add-config",
            "retention.hours=1",
        ],
        "unknown topic config",
    );
    assert!(ok(&dir, &["topics", "describe", "orders"]).contains("PartitionCount: 2"));
}
