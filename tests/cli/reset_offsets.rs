//! `groups reset-offsets` is Kafka's: a preview unless `--execute`, the
//! modes `--to-earliest/--to-latest/--to-offset/--shift-by/--to-datetime/
//! --by-duration`, `--to-offset` and `--shift-by` clamped with a warning,
//! and `--all-topics` / `--topic T:P,...` choosing the partitions.

use std::path::{Path, PathBuf};

use logbus::{Broker, Record, TopicConfig, TopicPartition};

use super::run::{fails, numbers, ok, run};

const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20.000Z

/// Topic `a` (2 partitions, offsets 0..10 each, record i at T0 + i s), topic
/// `b` (1 partition, 4 records) and group `g` committed at 5 on a/0, 6 on a/1, 1 on b/0.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let broker = Broker::open(&dir).unwrap();
    broker.create_topic("a", TopicConfig::new(2)).unwrap();
    broker.create_topic("b", TopicConfig::new(1)).unwrap();
    let p = broker.producer();
    for i in 0..10 {
        for part in 0..2 {
            p.send(
                "a",
                Record::new(format!("{i}"))
                    .with_partition(part)
                    .with_timestamp(T0 + i * 1000),
            )
            .unwrap();
        }
    }
    for i in 0..4 {
        p.send("b", Record::new(format!("{i}")).with_timestamp(T0 + i * 1000))
            .unwrap();
    }
    let offsets = [
        (TopicPartition::new("a", 0), 5),
        (TopicPartition::new("a", 1), 6),
        (TopicPartition::new("b", 0), 1),
    ];
    broker.set_group_offsets("g", &offsets).unwrap();
    broker.close().unwrap();
    (tmp, dir)
}

/// The group's committed offsets, in `groups describe` order (topic, partition).
fn committed(dir: &Path) -> Vec<u64> {
    numbers(&ok(dir, &["groups", "describe", "g"]), "CURRENT-OFFSET")
}

#[test]
fn preview_by_default_writes_nothing_and_says_so() {
    let (_tmp, dir) = setup();
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["groups", "reset-offsets", "g", "--topic", "a", "--to-earliest"];
        args.extend_from_slice(extra);
        let r = run(&dir, &args);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert_eq!(
            r.stdout.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]
        );
        assert_eq!(numbers(&r.stdout, "NEW-OFFSET"), [0, 0]);
        assert!(
            r.stderr.contains("nothing was written") && r.stderr.contains("--execute"),
            "{}",
            r.stderr
        );
        assert_eq!(committed(&dir), [5, 6, 1], "a preview must not write");
    }
    // --dry-run and --execute contradict each other.
    let r = run(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a",
            "--to-earliest",
            "--dry-run",
            "--execute",
        ],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

#[test]
fn execute_writes_the_plan_it_prints() {
    let (_tmp, dir) = setup();
    let r = run(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a",
            "--to-latest",
            "--execute",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(numbers(&r.stdout, "NEW-OFFSET"), [10, 10]);
    assert!(!r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert_eq!(committed(&dir), [10, 10, 1]);
}

#[test]
fn to_offset_and_shift_by_are_clamped_with_a_warning() {
    let (_tmp, dir) = setup();
    let r = run(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a",
            "--to-offset",
            "50",
            "--execute",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(numbers(&r.stdout, "NEW-OFFSET"), [10, 10]);
    assert_eq!(r.stderr.matches("warning: a partition").count(), 2, "{}", r.stderr);
    assert!(r.stderr.contains("using 10"), "{}", r.stderr);

    ok(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a",
            "--to-offset",
            "5",
            "--execute",
        ],
    );
    let r = run(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a",
            "--shift-by",
            "-2",
            "--execute",
        ],
    );
    assert_eq!(numbers(&r.stdout, "NEW-OFFSET"), [3, 3]);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let r = run(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a",
            "--shift-by",
            "-7",
            "--execute",
        ],
    );
    assert_eq!(numbers(&r.stdout, "NEW-OFFSET"), [0, 0]);
    assert!(r.stderr.contains("outside 0..=10"), "{}", r.stderr);
    let r = run(
        &dir,
        &["groups", "reset-offsets", "g", "--topic", "a", "--shift-by", "4"],
    );
    assert_eq!(numbers(&r.stdout, "NEW-OFFSET"), [4, 4]);
    assert_eq!(committed(&dir), [0, 0, 1]);
    // A partition without a committed offset cannot be shifted.
    fails(
        &dir,
        &["groups", "reset-offsets", "h", "--topic", "a", "--shift-by", "1"],
        "no committed offset",
    );
}

/// The NEW-OFFSET column of `groups reset-offsets g --topic a MODE VALUE` (a preview).
fn new_offsets(dir: &Path, mode: &str, value: &str) -> Vec<u64> {
    let out = ok(dir, &["groups", "reset-offsets", "g", "--topic", "a", mode, value]);
    numbers(&out, "NEW-OFFSET")
}

#[test]
fn to_datetime_and_by_duration_find_the_first_record_at_or_after_the_time() {
    let (_tmp, dir) = setup();
    // T0 + 3.5 s, in UTC and in +02:00; records 4.. are at or after it.
    for when in [
        "2023-11-14T22:13:23.500Z",
        "2023-11-15T00:13:23.500+02:00",
        "2023-11-14T22:13:23.500",
    ] {
        assert_eq!(new_offsets(&dir, "--to-datetime", when), [4, 4], "{when}");
    }
    // Before every record: the start; after every record: the end.
    assert_eq!(new_offsets(&dir, "--to-datetime", "2000-01-01T00:00:00.000"), [0, 0]);
    assert_eq!(new_offsets(&dir, "--to-datetime", "2100-01-01T00:00:00.000Z"), [10, 10]);
    // The records are years old: one hour back is after all of them, 100000 days back before.
    assert_eq!(new_offsets(&dir, "--by-duration", "PT1H"), [10, 10]);
    assert_eq!(new_offsets(&dir, "--by-duration", "P100000D"), [0, 0]);
    fails(
        &dir,
        &["groups", "reset-offsets", "g", "--topic", "a", "--by-duration", "1h"],
        "ISO-8601",
    );
    fails(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a",
            "--to-datetime",
            "2023-11-14",
        ],
        "YYYY-MM-DD",
    );
    assert_eq!(committed(&dir), [5, 6, 1]);
}

#[test]
fn all_topics_and_topic_partition_lists_choose_the_partitions() {
    let (_tmp, dir) = setup();
    let out = ok(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(super::run::column(&out, "TOPIC"), ["a", "a", "b"]);
    assert_eq!(committed(&dir), [0, 0, 0]);

    let out = ok(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a:1",
            "--topic",
            "b",
            "--to-latest",
            "--execute",
        ],
    );
    assert_eq!(numbers(&out, "PARTITION"), [1, 0]);
    assert_eq!(committed(&dir), [0, 10, 4]);
    ok(
        &dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "a",
            "--partition",
            "0",
            "--to-offset",
            "2",
            "--execute",
        ],
    );
    assert_eq!(committed(&dir), [2, 10, 4]);

    fails(
        &dir,
        &["groups", "reset-offsets", "new", "--all-topics", "--to-earliest"],
        "--all-topics names no topic",
    );
    fails(
        &dir,
        &["groups", "reset-offsets", "g", "--topic", "a:x", "--to-earliest"],
        "not a partition number",
    );
    fails(
        &dir,
        &["groups", "reset-offsets", "g", "--topic", "a:0,7", "--to-earliest"],
        "has no partition 7",
    );
    let r = run(&dir, &["groups", "reset-offsets", "g", "--to-earliest"]);
    assert_eq!(r.code, Some(2), "naming no topic is a usage error: {}", r.stderr);
}
