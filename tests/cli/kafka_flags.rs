//! A Kafka user's spellings work: `--topic NAME`, `--create`/`--list`/
//! `--describe`/`--alter`/`--delete`, `--group G`, `--bootstrap-server`
//! (accepted, ignored with a note); and no spelling creates a topic whose
//! name is a flag.

use super::run::{column, fails, ok, run};

#[test]
fn a_flag_never_becomes_a_topic_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // An unknown flag is a usage error without clap's "use '-- --flag'" tip.
    let r = run(&dir, &["topics", "create", "--partitons", "3", "x"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(!r.stderr.contains("as a value"), "{}", r.stderr);
    let r = run(&dir, &["topics", "create", "x", "--no-such-flag"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(!r.stderr.contains("-- --no-such-flag"), "{}", r.stderr);
    // Even after `--`, a name starting with '-' is refused, and nothing is created.
    fails(&dir, &["topics", "create", "--", "--topic"], "starting with '-'");
    fails(&dir, &["topics", "create", "--", "-x"], "starting with '-'");
    assert!(!dir.exists(), "no data directory for a refused name");
    // Kafka's `--topic NAME` is the name.
    ok(&dir, &["topics", "create", "--topic", "x"]);
    assert_eq!(ok(&dir, &["topics", "list"]), "x\n");
}

#[test]
fn kafka_topics_flags_are_the_subcommands() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let bootstrap = ["--bootstrap-server", "localhost:9092"];
    let r = run(
        &dir,
        &[
            &["topics"][..],
            &bootstrap,
            &[
                "--create",
                "--topic",
                "events",
                "--partitions",
                "3",
                "--replication-factor",
                "1",
            ],
        ]
        .concat(),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("Created topic events with 3 partition(s)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("--bootstrap-server localhost:9092 ignored"),
        "{}",
        r.stderr
    );
    fails(
        &dir,
        &["topics", "--create", "--topic", "more", "--replication-factor", "3"],
        "only 1",
    );

    let r = run(&dir, &[&["topics", "--list"][..], &bootstrap].concat());
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "events\n"));
    assert!(r.stderr.starts_with("note: --bootstrap-server"), "{}", r.stderr);
    let described = ok(
        &dir,
        &["topics", "--describe", "--topic", "events", "--bootstrap-server", "x:1"],
    );
    assert!(described.contains("PartitionCount: 3"), "{described}");
    assert_eq!(ok(&dir, &["topics", "describe", "events"]), described);
    ok(&dir, &["topics", "--alter", "--topic", "events", "--partitions", "4"]);
    assert!(ok(&dir, &["topics", "describe", "--topic", "events"]).contains("PartitionCount: 4"));
    ok(&dir, &["topics", "--delete", "--topic", "events"]);
    assert_eq!(ok(&dir, &["topics", "list"]), "");
    // One name, not two.
    assert_eq!(run(&dir, &["topics", "delete", "a", "--topic", "b"]).code, Some(2));
}

#[test]
fn kafka_consumer_groups_flags_are_the_subcommands() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&dir, &["topics", "create", "t"]);
    logbus_produce(&dir, "a\nb\nc\n");
    ok(
        &dir,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--max-messages",
            "2",
        ],
    );

    let r = run(&dir, &["groups", "--bootstrap-server", "localhost:9092", "--list"]);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "g\n"), "{}", r.stderr);
    assert!(r.stderr.contains("ignored"), "{}", r.stderr);
    let by_flag = ok(&dir, &["groups", "--describe", "--group", "g"]);
    assert_eq!(ok(&dir, &["groups", "describe", "g"]), by_flag);
    assert_eq!(column(&by_flag, "LAG"), ["1"]);
    let out = ok(
        &dir,
        &[
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(column(&out, "NEW-OFFSET"), ["0"]);
    ok(&dir, &["groups", "--delete", "--group", "g"]);
    assert_eq!(ok(&dir, &["groups", "--list"]), "");
}

fn logbus_produce(dir: &std::path::Path, lines: &str) {
    super::run::logbus(dir)
        .args(["produce", "t"])
        .write_stdin(lines.to_string())
        .assert()
        .success();
}
