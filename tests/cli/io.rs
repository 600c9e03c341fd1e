//! `produce`, `consume` and `dump` as a Kafka user drives them: true counts
//! when `produce` stops, `--follow` across added partitions and a deleted
//! topic, Kafka's flags, a bare `consume` that says why it printed nothing,
//! `dump` of index files, and notes on stderr only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::Command;
use logbus::{Broker, Record, TopicConfig};

const BIN: &str = env!("CARGO_BIN_EXE_logbus");

fn logbus(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("LOGBUS_DIR")
        .env_remove("RUST_BACKTRACE")
        .arg("--dir")
        .arg(dir);
    c
}

fn create(dir: &Path, topic: &str, partitions: u32) {
    let broker = Broker::open(dir).unwrap();
    broker.create_topic(topic, TopicConfig::new(partitions)).unwrap();
    broker.close().unwrap();
}

fn stored(dir: &Path, topic: &str) -> u64 {
    let broker = Broker::open(dir).unwrap();
    let t = broker.topic(topic).unwrap();
    let n = (0..t.partition_count())
        .map(|p| t.partition(p).unwrap().end_offset())
        .sum();
    drop(t);
    broker.close().unwrap();
    n
}

/// `n` keyed lines (keys spread over partitions), with line `bad` lacking the separator.
fn input(n: usize, bad: usize) -> String {
    (1..=n)
        .map(|i| {
            if i == bad {
                format!("no separator {i}\n")
            } else {
                format!("k{i}:v{i}\n")
            }
        })
        .collect()
}

#[test]
fn produce_stores_every_line_before_a_bad_one_every_time() {
    for bad in [10usize, 1500] {
        for run in 0..3 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("data");
            create(&dir, "t", 3);
            let out = logbus(&dir)
                .args(["produce", "t", "--key-separator", ":"])
                .write_stdin(input(2000, bad))
                .output()
                .unwrap();
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(1), "{err}");
            let want = bad as u64 - 1;
            assert_eq!(stored(&dir, "t"), want, "bad line {bad}, run {run}: {err}");
            assert!(err.contains(&format!("line {bad}:")), "{err}");
            assert!(
                err.contains(&format!("Stored {want} record(s) from lines 1-{want}")),
                "{err}"
            );
            assert!(err.contains("everything after it were not written"), "{err}");
        }
    }
}

#[test]
fn produce_with_a_bad_first_line_stores_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    create(&dir, "t", 1);
    let out = logbus(&dir)
        .args(["produce", "t", "--key-separator", ":"])
        .write_stdin(input(5, 1))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 1: no key separator") && err.contains("Stored 0 record(s); line 1 and everything"),
        "{err}"
    );
    assert_eq!(stored(&dir, "t"), 0);
}

#[test]
fn produce_skip_bad_lines_stores_the_others_and_names_the_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    create(&dir, "t", 2);
    let out = logbus(&dir)
        .args(["produce", "t", "--key-separator", ":", "--skip-bad-lines"])
        .write_stdin(input(50, 7))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    assert!(out.stdout.is_empty(), "notes go to stderr");
    assert!(err.contains("skipped line 7"), "{err}");
    assert!(
        err.contains("Produced 49 record(s)") && err.contains("1 bad line(s) skipped"),
        "{err}"
    );
    assert_eq!(stored(&dir, "t"), 49);
}

#[test]
fn produce_and_consume_take_kafkas_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    create(&dir, "t", 1);
    let out = logbus(&dir)
        .args(["produce", "--bootstrap-server", "localhost:9092", "--topic", "t"])
        .args(["--property", "parse.key=true", "--property", "key.separator=:"])
        .write_stdin("a:1\nb:2\n")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("--bootstrap-server is ignored"), "{err}");
    assert!(out.stdout.is_empty());
    // parse.key=true without key.separator splits at a tab, as in Kafka.
    logbus(&dir)
        .args(["produce", "t", "--property", "parse.key=true"])
        .write_stdin("c\t3\n")
        .assert()
        .success();

    let out = logbus(&dir)
        .args([
            "consume",
            "--bootstrap-server",
            "localhost:9092",
            "--topic",
            "t",
            "--from-beginning",
        ])
        .args(["--property", "print.key=true", "--property", "print.timestamp=true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for (row, (k, v)) in rows.iter().zip([("a", "1"), ("b", "2"), ("c", "3")]) {
        assert_eq!(row.len(), 3, "timestamp, key, value: {row:?}");
        assert!(row[0].parse::<i64>().is_ok(), "{row:?}");
        assert_eq!((row[1], row[2]), (k, v));
    }
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("--bootstrap-server is ignored"));
    // key.separator on the consumer separates the printed fields; --broker-list is the old spelling.
    let out = logbus(&dir)
        .args([
            "consume",
            "--broker-list",
            "localhost:9092",
            "--topic",
            "t",
            "--from-beginning",
        ])
        .args([
            "--property",
            "print.key=true",
            "--property",
            "key.separator=:",
            "--max-messages",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "a:1\n");

    for (cmd, prop, supported) in [
        ("produce", "acks=all", "parse.key=true and key.separator"),
        ("consume", "print.value.deserializer=x", "print.key, print.timestamp"),
        ("consume", "print.key=yes", "print.key, print.timestamp"),
    ] {
        let out = logbus(&dir)
            .args([cmd, "t", "--property", prop])
            .write_stdin("")
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("unsupported --property") && err.contains(supported),
            "{err}"
        );
    }
}

#[test]
fn bare_consume_says_on_stderr_why_nothing_came() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    create(&dir, "t", 1);
    logbus(&dir)
        .args(["produce", "t"])
        .write_stdin("x\n")
        .assert()
        .success();
    let out = logbus(&dir).args(["consume", "t"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("starts at the end") && err.contains("--from-beginning") && err.contains("--follow"),
        "{err}"
    );
    // With records printed, or an explicit start, there is nothing to explain.
    let out = logbus(&dir)
        .args(["consume", "t", "--from-beginning"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"x\n");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

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

fn follower(dir: &Path, topic: &str) -> std::process::Child {
    std::process::Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .args(["consume", topic, "--from-beginning", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn follow_reads_partitions_added_by_the_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("data");
    let broker = Broker::open(&dir).unwrap();
    broker.create_topic("grow", TopicConfig::new(2)).unwrap();
    let producer = broker.producer();
    producer.send("grow", Record::new("old").with_partition(0)).unwrap();
    let mut child = follower(&dir, "grow");
    let lines = line_channel(child.stdout.take().unwrap());
    let wait = Duration::from_secs(20);
    assert_eq!(lines.recv_timeout(wait).unwrap(), "old");

    broker.add_partitions("grow", 6).unwrap();
    for p in 0..6 {
        producer
            .send("grow", Record::new(format!("new {p}")).with_partition(p))
            .unwrap();
    }
    let mut got: Vec<String> = (0..6).map(|_| lines.recv_timeout(wait).unwrap()).collect();
    got.sort();
    let want: Vec<String> = (0..6).map(|p| format!("new {p}")).collect();
    assert_eq!(got, want);
    child.kill().unwrap();
    child.wait().unwrap();
    broker.close().unwrap();
}

#[test]
fn follow_reports_a_deleted_topic_as_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("data");
    let broker = Broker::open(&dir).unwrap();
    broker.create_topic("gone", TopicConfig::new(2)).unwrap();
    broker.producer().send("gone", Record::new("first")).unwrap();
    let mut child = follower(&dir, "gone");
    let lines = line_channel(child.stdout.take().unwrap());
    assert_eq!(lines.recv_timeout(Duration::from_secs(20)).unwrap(), "first");
    broker.delete_topic("gone").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim(), "error: topic 'gone' was deleted");
    broker.close().unwrap();
}

#[test]
fn dump_prints_index_and_time_index_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("data");
    let broker = Broker::open(&dir).unwrap();
    broker
        .create_topic("t", TopicConfig::new(1).segment_bytes(64 * 1024))
        .unwrap();
    let producer = broker.producer();
    for i in 0..3000 {
        producer
            .send("t", Record::new(format!("value {i:05} {}", "x".repeat(40))))
            .unwrap();
    }
    broker.close().unwrap();
    let first = dir.join("t/0/00000000000000000000");
    let index = first.with_extension("index");
    let out = logbus(&dir).args(["dump"]).arg(&index).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.starts_with("Offset index ") && text.contains("base offset 0"),
        "{text}"
    );
    assert!(text.contains("sealed"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("  offset ") && l.contains(" at byte ")),
        "{text}"
    );

    // Kafka's spelling: --files and --print-data-log.
    let timeindex = first.with_extension("timeindex");
    let out = logbus(&dir)
        .args(["dump", "--print-data-log", "--files"])
        .arg(&timeindex)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("Time index ") && text.lines().any(|l| l.starts_with("  timestamp ")),
        "{text}"
    );

    // Damage: a flipped byte in a sealed index fails its CRC.
    let mut bytes = std::fs::read(&index).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let copy = tmp.path().join("copy.index");
    std::fs::write(&copy, &bytes).unwrap();
    let out = logbus(&dir).args(["dump"]).arg(&copy).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("DAMAGE at byte 44") && text.contains("CRC"), "{text}");
}

#[test]
fn produce_on_a_full_disk_reports_exactly_what_was_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    logbus(&dir)
        .args([
            "topics",
            "create",
            "t",
            "--partitions",
            "3",
            "--segment-bytes",
            "8388608",
        ])
        .assert()
        .success();
    let lines: String = (0..60_000).map(|i| format!("k{i}:{}\n", "v".repeat(300))).collect();
    // A full disk, for real: the kernel refuses writes that would make a file
    // larger than RLIMIT_FSIZE (2 or 4 MiB, by the shell's block size), and
    // SIGXFSZ is ignored so the write fails instead of killing the process.
    let out = Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 4096; exec \"$0\" --dir \"$1\" produce t --key-separator :",
            BIN,
        ])
        .arg(&dir)
        .env_remove("LOGBUS_DIR")
        .write_stdin(lines)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let reported: u64 = err
        .split("Stored ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stored count in {err}"));
    assert!(reported > 0 && reported < 60_000, "{err}");
    assert!(err.contains("not written"), "{err}");
    // Reopened without the limit: exactly what the message said.
    assert_eq!(stored(&dir, "t"), reported, "{err}");
}
