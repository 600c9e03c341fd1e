//! The `logbus` binary end to end: Kafka's quick start (create, produce keyed
//! lines, consume from the beginning in another process, group lag), JSON
//! output, inspection next to a live owner, `--follow` across processes and
//! segment rolls, and `verify`/`dump` finding a flipped byte.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::Command;
use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_logbus");

fn logbus(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("LOGBUS_DIR")
        .env_remove("RUST_BACKTRACE")
        .arg("--dir")
        .arg(dir);
    c
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Sums a numeric column of a table printed with a header line.
fn column_sum(table: &str, name: &str) -> u64 {
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let col = header.iter().position(|h| *h == name).unwrap();
    lines
        .filter(|l| !l.starts_with("note:"))
        .map(|l| l.split_whitespace().nth(col).unwrap())
        .map(|v| if v == "-" { 0 } else { v.parse::<u64>().unwrap() })
        .sum()
}

#[test]
fn quick_start_create_produce_consume_and_group_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let created = stdout_of(logbus(&dir).args(["topics", "create", "orders", "--partitions", "3"]));
    assert!(created.contains("Created topic orders"));

    let input: String = (0..30).map(|i| format!("user-{}:event {i}\n", i % 5)).collect();
    logbus(&dir)
        .args(["produce", "orders", "--key-separator", ":", "--header", "src=cli"])
        .write_stdin(input)
        .assert()
        .success()
        .stderr(predicates::str::contains("Produced 30 record(s)"));

    assert_eq!(stdout_of(logbus(&dir).args(["topics", "list"])), "orders\n");
    let described = stdout_of(logbus(&dir).args(["topics", "describe", "orders"]));
    assert!(described.contains("PartitionCount: 3"), "{described}");
    let table: String = described.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert_eq!(column_sum(&table, "END"), 30);
    assert_eq!(column_sum(&table, "SEGMENTS"), 3);

    // Consume everything in another process; per key, records keep their order.
    let all = stdout_of(logbus(&dir).args([
        "consume",
        "orders",
        "--from-beginning",
        "--print-key",
        "--print-headers",
    ]));
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 30);
    for user in 0..5 {
        let key = format!("user-{user}");
        let events: Vec<u64> = lines
            .iter()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(|f| f[0] == key)
            .map(|f| {
                assert_eq!(f[1], "src=cli");
                f[2].strip_prefix("event ").unwrap().parse().unwrap()
            })
            .collect();
        let want: Vec<u64> = (0..30).filter(|i| i % 5 == user).collect();
        assert_eq!(events, want, "order of {key}");
    }
    // Without --from-beginning a consumer starts at the end: nothing to print.
    assert_eq!(stdout_of(logbus(&dir).args(["consume", "orders"])), "");

    // A group reads 12, commits, and its lag is the other 18.
    let first = stdout_of(logbus(&dir).args([
        "consume",
        "orders",
        "--group",
        "billing",
        "--from-beginning",
        "--max-messages",
        "12",
    ]));
    assert_eq!(first.lines().count(), 12);
    assert_eq!(stdout_of(logbus(&dir).args(["groups", "list"])), "billing\n");
    let described = logbus(&dir).args(["groups", "describe", "billing"]).output().unwrap();
    let lag = String::from_utf8(described.stdout).unwrap();
    assert_eq!(column_sum(&lag, "LAG"), 18, "{lag}");
    assert!(String::from_utf8(described.stderr).unwrap().contains("not visible"));
    // The group goes on from its committed offsets.
    let rest = stdout_of(logbus(&dir).args(["consume", "orders", "--group", "billing"]));
    assert_eq!(rest.lines().count(), 18);
    let mut seen: Vec<&str> = first.lines().chain(rest.lines()).collect();
    seen.sort_unstable();
    let mut want: Vec<String> = (0..30).map(|i| format!("event {i}")).collect();
    want.sort_unstable();
    assert_eq!(seen, want);
    assert_eq!(
        column_sum(&stdout_of(logbus(&dir).args(["groups", "describe", "billing"])), "LAG"),
        0
    );

    let reset = stdout_of(logbus(&dir).args([
        "groups",
        "reset-offsets",
        "billing",
        "--topic",
        "orders",
        "--to-earliest",
        "--execute",
    ]));
    assert_eq!(column_sum(&reset, "NEW-OFFSET"), 0);
    assert_eq!(
        column_sum(&stdout_of(logbus(&dir).args(["groups", "describe", "billing"])), "LAG"),
        30
    );
    logbus(&dir)
        .args([
            "groups",
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--to-latest",
            "--execute",
        ])
        .assert()
        .success();
    assert_eq!(
        column_sum(&stdout_of(logbus(&dir).args(["groups", "describe", "billing"])), "LAG"),
        0
    );

    stdout_of(logbus(&dir).args(["topics", "delete", "orders"]));
    assert_eq!(stdout_of(logbus(&dir).args(["topics", "list"])), "");
}

#[test]
fn json_output_and_explicit_partition_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    stdout_of(logbus(&dir).args(["topics", "create", "t", "--partitions", "2"]));
    let mut input = b"k:hello\n".to_vec();
    input.extend_from_slice(b"k:\xff\xfe\n");
    input.extend_from_slice(b"k:third\r\n");
    logbus(&dir)
        .args([
            "produce",
            "t",
            "--partition",
            "1",
            "--key-separator",
            ":",
            "--header",
            "a=1",
            "--header",
            "a=2",
        ])
        .write_stdin(input)
        .assert()
        .success();
    let out = stdout_of(logbus(&dir).args(["consume", "t", "--partition", "1", "--offset", "1", "--format", "json"]));
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["partition"], 1);
    assert_eq!(rows[0]["offset"], 1);
    assert_eq!(rows[0]["key"], "k");
    assert_eq!(rows[0]["value"], "//4=");
    assert_eq!(rows[0]["value_encoding"], "base64");
    assert_eq!(rows[1]["value"], "third");
    assert!(rows[1].get("value_encoding").is_none());
    assert_eq!(rows[1]["headers"][1]["name"], "a");
    assert_eq!(rows[1]["headers"][1]["value"], "2");
    assert!(rows[1]["timestamp"].as_i64().unwrap() > 0);

    let text = stdout_of(logbus(&dir).args([
        "consume",
        "t",
        "--from-beginning",
        "--print-offset",
        "--print-timestamp",
    ]));
    let first: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    assert_eq!(first[0], "1:0");
    assert!(first[1].parse::<i64>().unwrap() > 0);
    assert_eq!(first[2], "hello");
    assert_eq!(
        stdout_of(logbus(&dir).args([
            "consume",
            "t",
            "--partition",
            "1",
            "--offset",
            "earliest",
            "--max-messages",
            "1"
        ])),
        "hello\n"
    );
}

#[test]
fn inspection_works_while_another_process_owns_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // This test process is the owner: it holds the lock for the whole test.
    let broker = Broker::open(dir).unwrap();
    broker.create_topic("events", TopicConfig::new(2)).unwrap();
    let p = broker.producer();
    for i in 0..10 {
        p.send("events", Record::new(format!("v{i}")).with_partition(i % 2))
            .unwrap();
    }
    let mut c = broker
        .consumer(ConsumerConfig::new().group("g").offset_reset(OffsetReset::Earliest))
        .unwrap();
    c.subscribe(&["events"]).unwrap();
    assert_eq!(c.poll(Duration::from_secs(5)).unwrap().len(), 10);
    c.commit_offsets(&[(TopicPartition::new("events", 0), 2)]).unwrap();

    assert_eq!(stdout_of(logbus(dir).args(["topics", "list"])), "events\n");
    let described = stdout_of(logbus(dir).args(["topics", "describe", "events"]));
    let table: String = described.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert_eq!(column_sum(&table, "END"), 10);
    let all = stdout_of(logbus(dir).args(["consume", "events", "--from-beginning"]));
    assert_eq!(all.lines().count(), 10);
    assert_eq!(stdout_of(logbus(dir).args(["groups", "list"])), "g\n");
    assert_eq!(
        column_sum(&stdout_of(logbus(dir).args(["groups", "describe", "g"])), "LAG"),
        3
    );
    assert!(stdout_of(logbus(dir).args(["verify"])).contains("all intact"));
    let seg = dir.join("events/0/00000000000000000000.log");
    let dump = stdout_of(Command::new(BIN).arg("dump").arg(&seg));
    assert!(dump.contains("batch at byte 0: offsets 0..=0"), "{dump}");
    assert!(dump.contains("crc") && dump.contains(" ok"));

    // Writing commands need the lock and say who has it.
    // Named by its command line (this test binary here), with its pid.
    let owner = format!("(pid {})", std::process::id());
    let writes: Vec<Vec<&str>> = vec![
        vec!["topics", "create", "other"],
        vec!["topics", "delete", "events"],
        vec!["produce", "events"],
        vec!["consume", "events", "--group", "g2"],
        vec!["groups", "reset-offsets", "g", "--topic", "events", "--to-earliest"],
    ];
    for args in writes {
        let out = logbus(dir).args(&args).write_stdin("x\n").output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(err.contains("locked by `") && err.contains(&owner), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    c.close().unwrap();
    broker.close().unwrap();
}

/// Lines of a child's stdout, delivered through a channel so reads can time out.
fn line_channel(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn follow_picks_up_records_written_by_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("data");
    stdout_of(logbus(&dir).args(["topics", "create", "live", "--segment-bytes", "4096"]));

    // The owner: a `logbus produce` process that sends each line as it arrives.
    let mut producer = std::process::Command::new(BIN)
        .arg("--dir")
        .arg(&dir)
        .args(["produce", "live"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut feed = producer.stdin.take().unwrap();
    let line = |i: usize| format!("line {i:04} {}", "p".repeat(80));
    writeln!(feed, "{}", line(0)).unwrap();
    feed.flush().unwrap();

    // A read-only follower in a third process.
    let total = 120;
    let mut follower = std::process::Command::new(BIN)
        .arg("--dir")
        .arg(&dir)
        .args([
            "consume",
            "live",
            "--from-beginning",
            "--follow",
            "--max-messages",
            &total.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_channel(follower.stdout.take().unwrap());
    let wait = Duration::from_secs(20);
    assert_eq!(lines.recv_timeout(wait).unwrap(), line(0));

    // Record by record: each shows up while the follower is waiting at the end.
    for i in 1..5 {
        writeln!(feed, "{}", line(i)).unwrap();
        feed.flush().unwrap();
        assert_eq!(lines.recv_timeout(wait).unwrap(), line(i));
    }
    // Then enough to roll several 4 KiB segments; the follower prints them all, in order.
    for i in 5..total {
        writeln!(feed, "{}", line(i)).unwrap();
    }
    feed.flush().unwrap();
    for i in 5..total {
        assert_eq!(
            lines.recv_timeout(wait).expect("the follower stopped printing"),
            line(i)
        );
    }
    let status = follower.wait().unwrap();
    assert!(status.success());

    drop(feed);
    let out = producer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let segs = common::segment_paths(&dir.join("live/0")).len();
    assert!(segs >= 3, "the follower crossed segment rolls ({segs} segments)");
}

#[test]
fn verify_and_dump_detect_a_flipped_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    stdout_of(logbus(&dir).args(["topics", "create", "t", "--segment-bytes", "4096"]));
    let input: String = (0..300)
        .map(|i| format!("record number {i:05} with some padding\n"))
        .collect();
    logbus(&dir)
        .args(["produce", "t"])
        .write_stdin(input)
        .assert()
        .success();
    let ok = stdout_of(logbus(&dir).args(["verify", "t"]));
    assert!(ok.contains("t/0: ok") && ok.contains("300 records: all intact"), "{ok}");

    let seg = dir.join("t/0/00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();

    let out = logbus(&dir).arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("DAMAGED"), "{report}");
    assert!(report.contains(&seg.display().to_string()), "{report}");
    assert!(report.contains("CRC"), "{report}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("error: 1 damaged partition"), "{err}");
    assert!(!err.contains("panicked"));

    let dump = Command::new(BIN).arg("dump").arg(&seg).output().unwrap();
    assert_eq!(dump.status.code(), Some(1));
    let text = String::from_utf8(dump.stdout).unwrap();
    assert!(text.contains("BAD: batch CRC mismatch"), "{text}");
    assert!(text.contains("End at byte"), "{text}");
    // A damaged segment does not stop reading the intact ones.
    let (_, second) = common::segment_paths(&dir.join("t/0"))
        .into_iter()
        .find(|&(base, _)| base != 0)
        .unwrap();
    Command::new(BIN)
        .arg("dump")
        .arg(&second)
        .arg("--batches-only")
        .assert()
        .success()
        .stdout(predicates::str::contains("0 bad"));
}
