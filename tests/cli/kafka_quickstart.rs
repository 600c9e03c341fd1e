//! The Kafka quick start from the seed tutorials, typed the Kafka way and
//! translated only where logbus must differ: `kafka-topics` is `logbus
//! topics`, `kafka-console-producer --topic T` is `logbus produce T`,
//! `kafka-console-consumer --topic T` is `logbus consume T`,
//! `kafka-consumer-groups` is `logbus groups`, and `--dir` replaces the
//! cluster (`--bootstrap-server` is accepted and ignored where shown).

use super::run::{column, logbus, numbers, ok, run};

const KAFKA: [&str; 2] = ["--bootstrap-server", "localhost:9092"];

/// `args` followed by `--bootstrap-server localhost:9092`, as the tutorials type it.
fn kafka(args: &[&str]) -> Vec<String> {
    args.iter().chain(KAFKA.iter()).map(|s| s.to_string()).collect()
}

fn ok_kafka(dir: &std::path::Path, args: &[&str]) -> String {
    let args = kafka(args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(dir, &args);
    assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
    assert!(
        r.stderr.contains("--bootstrap-server localhost:9092 ignored"),
        "{}",
        r.stderr
    );
    r.stdout
}

#[test]
fn the_kafka_quickstart_runs_as_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");

    // kafka-topics --create --topic my-topic --bootstrap-server localhost:9092 --partitions 1 --replication-factor 1
    let created = ok_kafka(
        &dir,
        &[
            "topics",
            "--create",
            "--topic",
            "my-topic",
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ],
    );
    assert!(created.contains("Created topic my-topic"), "{created}");
    // kafka-topics --create --topic user-topic --bootstrap-server localhost:9092 (running it twice with --if-not-exists is fine)
    ok_kafka(&dir, &["topics", "--create", "--topic", "user-topic"]);
    ok_kafka(
        &dir,
        &["topics", "--create", "--topic", "user-topic", "--if-not-exists"],
    );
    // kafka-topics --list --bootstrap-server localhost:9092
    assert_eq!(ok_kafka(&dir, &["topics", "--list"]), "my-topic\nuser-topic\n");
    // kafka-topics --describe --topic my-topic --bootstrap-server localhost:9092
    let described = ok_kafka(&dir, &["topics", "--describe", "--topic", "my-topic"]);
    assert!(described.contains("Topic: my-topic\tPartitionCount: 1"), "{described}");
    // kafka-topics --describe --bootstrap-server localhost:9092 (every topic)
    let all = ok_kafka(&dir, &["topics", "--describe"]);
    assert!(
        all.contains("Topic: my-topic") && all.contains("Topic: user-topic"),
        "{all}"
    );

    // kafka-console-producer --topic my-topic --bootstrap-server localhost:9092
    logbus(&dir)
        .args(["produce", "my-topic"])
        .write_stdin("This is my first event\nThis is my second event\nThird\n")
        .assert()
        .success();

    // kafka-console-consumer --topic my-topic --from-beginning --bootstrap-server localhost:9092
    let events = ok(
        &dir,
        &["consume", "my-topic", "--from-beginning", "--max-messages", "3"],
    );
    assert_eq!(events, "This is my first event\nThis is my second event\nThird\n");

    // kafka-console-consumer --topic my-topic --group my-group --from-beginning --max-messages 2
    let read = ok(
        &dir,
        &[
            "consume",
            "my-topic",
            "--group",
            "my-group",
            "--from-beginning",
            "--max-messages",
            "2",
        ],
    );
    assert_eq!(read.lines().count(), 2);

    // kafka-consumer-groups --bootstrap-server localhost:9092 --list
    assert_eq!(ok_kafka(&dir, &["groups", "--list"]), "my-group\n");
    // kafka-consumer-groups --bootstrap-server localhost:9092 --describe --group my-group
    let lag = ok_kafka(&dir, &["groups", "--describe", "--group", "my-group"]);
    assert_eq!(column(&lag, "GROUP"), ["my-group"]);
    assert_eq!(numbers(&lag, "CURRENT-OFFSET"), [2]);
    assert_eq!(numbers(&lag, "LOG-END-OFFSET"), [3]);
    assert_eq!(numbers(&lag, "LAG"), [1]);

    // kafka-consumer-groups --reset-offsets --group my-group --topic my-topic --to-earliest (a preview)
    let plan = ok_kafka(
        &dir,
        &[
            "groups",
            "--reset-offsets",
            "--group",
            "my-group",
            "--topic",
            "my-topic",
            "--to-earliest",
        ],
    );
    assert_eq!(numbers(&plan, "NEW-OFFSET"), [0]);
    assert_eq!(
        numbers(&ok_kafka(&dir, &["groups", "--describe", "--group", "my-group"]), "LAG"),
        [1]
    );
    // ... --dry-run says the same; --execute writes it.
    let dry = ok_kafka(
        &dir,
        &[
            "groups",
            "--reset-offsets",
            "--group",
            "my-group",
            "--topic",
            "my-topic",
            "--to-earliest",
            "--dry-run",
        ],
    );
    assert_eq!(dry, plan);
    let done = ok_kafka(
        &dir,
        &[
            "groups",
            "--reset-offsets",
            "--group",
            "my-group",
            "--topic",
            "my-topic",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(done, plan);
    assert_eq!(
        numbers(&ok_kafka(&dir, &["groups", "--describe", "--group", "my-group"]), "LAG"),
        [3]
    );
    // kafka-consumer-groups --reset-offsets --group my-group --all-topics --shift-by 1 --execute
    ok_kafka(
        &dir,
        &[
            "groups",
            "--reset-offsets",
            "--group",
            "my-group",
            "--all-topics",
            "--shift-by",
            "1",
            "--execute",
        ],
    );
    assert_eq!(
        numbers(&ok_kafka(&dir, &["groups", "--describe", "--group", "my-group"]), "LAG"),
        [2]
    );
    // The group reads on from there.
    let rest = ok(
        &dir,
        &["consume", "my-topic", "--group", "my-group", "--max-messages", "2"],
    );
    assert_eq!(rest, "This is my second event\nThird\n");

    // kafka-topics --alter --topic my-topic --partitions 3 --bootstrap-server localhost:9092
    ok_kafka(&dir, &["topics", "--alter", "--topic", "my-topic", "--partitions", "3"]);
    assert!(ok_kafka(&dir, &["topics", "--describe", "--topic", "my-topic"]).contains("PartitionCount: 3"));

    // kafka-consumer-groups --bootstrap-server localhost:9092 --delete --group my-group
    ok_kafka(&dir, &["groups", "--delete", "--group", "my-group"]);
    assert_eq!(ok_kafka(&dir, &["groups", "--list"]), "");
    // kafka-topics --delete --topic my-topic --bootstrap-server localhost:9092
    ok_kafka(&dir, &["topics", "--delete", "--topic", "my-topic"]);
    assert_eq!(ok_kafka(&dir, &["topics", "--list"]), "user-topic\n");
}
