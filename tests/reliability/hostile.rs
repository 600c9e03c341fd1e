//! Reliability (issue 6): hostile caller input.
//!
//! Topic names that try to leave the broker directory, absurd configurations,
//! records at and one byte over the size limit, reads past the end, seeks on
//! partitions not assigned, and a second broker on a directory held by another
//! process. Each must be a clear error, create nothing outside the broker
//! directory (nor anything inside it for a rejected call), and lose nothing.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use logbus::{Broker, ConsumerConfig, Error, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::common;

const CHILD_ENV: &str = "LOGBUS_RELIABILITY_HOSTILE_CHILD";

/// Every path under `root`, recursively, relative to it.
fn listing(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// A broker directory nested three levels down, so that names climbing up
/// with `..` would land inside `root`, where the listing sees them.
fn nested(root: &Path) -> PathBuf {
    root.join("a").join("b").join("c").join("broker")
}

fn good_records(broker: &Broker) -> Vec<(u64, Vec<u8>)> {
    let part = broker.topic("good").unwrap().partition(0).unwrap();
    part.read(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| (r.offset(), r.value().to_vec()))
        .collect()
}

#[test]
fn hostile_topic_names_are_rejected_and_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = nested(root.path());
    let broker = Broker::open(&dir).unwrap();
    broker.create_topic("good", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    for i in 0..10 {
        producer.send("good", Record::new(format!("v{i}"))).unwrap();
    }
    let before_records = good_records(&broker);
    let before = listing(root.path());
    let abs = std::env::temp_dir().join(format!("logbus-hostile-abs-{}", std::process::id()));
    let long = "x".repeat(250);
    let names: Vec<String> = vec![
        "../x".into(),
        "a/../../b".into(),
        "../../../../escape".into(),
        abs.to_str().unwrap().into(),
        "/abs".into(),
        "x\0y".into(),
        long,
        String::new(),
        ".".into(),
        "..".into(),
        "a b".into(),
        "a\\b".into(),
        "é".into(),
        "@groups".into(),
        "@trash".into(),
        "@lock".into(),
        "x/".into(),
        "x\n".into(),
    ];
    for name in &names {
        let e = broker.create_topic(name, TopicConfig::new(1)).unwrap_err();
        assert!(matches!(e, Error::InvalidTopicName { .. }), "create {name:?}: {e:?}");
        assert!(
            e.to_string().contains("[A-Za-z0-9._-]"),
            "message does not say the rule: {e}"
        );
        let e = broker.topic(name).unwrap_err();
        assert!(
            matches!(e, Error::InvalidTopicName { .. } | Error::UnknownTopic { .. }),
            "topic {name:?}: {e:?}"
        );
        let e = broker.delete_topic(name).unwrap_err();
        assert!(
            matches!(e, Error::InvalidTopicName { .. } | Error::UnknownTopic { .. }),
            "delete {name:?}: {e:?}"
        );
        let e = producer.send(name, Record::new("x")).unwrap_err();
        assert!(
            matches!(e, Error::InvalidTopicName { .. } | Error::UnknownTopic { .. }),
            "send {name:?}: {e:?}"
        );
        let mut c = broker.consumer(ConsumerConfig::new()).unwrap();
        assert!(
            c.assign(&[TopicPartition::new(name.as_str(), 0)]).is_err(),
            "assign {name:?}"
        );
        let mut c = broker.consumer(ConsumerConfig::new().group("g")).unwrap();
        // Subscribing to a name that can never exist: an error, or a no-op
        // subscription; either way nothing may be created.
        let _ = c.subscribe(&[name.as_str()]);
    }
    assert!(!abs.exists(), "an absolute topic name created {}", abs.display());
    assert!(!Path::new("/abs").exists());
    assert_eq!(listing(root.path()), before, "a rejected name created or removed files");
    // The longest valid name works, and round-trips a reopen.
    let longest = "y".repeat(249);
    broker.create_topic(&longest, TopicConfig::new(1)).unwrap();
    assert_eq!(producer.send(&longest, Record::new("ok")).unwrap().offset(), 0);
    broker.close().unwrap();
    let broker = Broker::open(&dir).unwrap();
    assert_eq!(broker.topics(), vec!["good".to_string(), longest.clone()]);
    assert_eq!(good_records(&broker), before_records, "records lost");
    let after: BTreeSet<PathBuf> = listing(root.path());
    // New: the longest topic's files, and the checkpoint files a partition
    // creates when it first writes one (here "good"'s, at the close).
    let good = Path::new("a/b/c/broker/good/0");
    for p in after.difference(&before) {
        let checkpoint_file = p.parent() == Some(good)
            && p.file_name()
                .is_some_and(|n| n == "recovery.ckpt" || n == "recovery.live");
        assert!(
            p.starts_with(Path::new("a/b/c/broker").join(&longest)) || checkpoint_file,
            "unexpected new file {}",
            p.display()
        );
    }
}

#[test]
fn absurd_configs_are_invalid_config_and_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = nested(root.path());
    let broker = Broker::open(&dir).unwrap();
    broker.create_topic("good", TopicConfig::new(1)).unwrap();
    broker.producer().send("good", Record::new("keep me")).unwrap();
    let before = listing(root.path());
    let bad: Vec<(&str, TopicConfig)> = vec![
        ("partitions", TopicConfig::new(0)),
        ("partitions", TopicConfig::new(u32::MAX)),
        ("segment_bytes", TopicConfig::new(1).segment_bytes(0)),
        ("segment_bytes", TopicConfig::new(1).segment_bytes(1)),
        ("segment_bytes", TopicConfig::new(1).segment_bytes(u64::MAX)),
        ("max_record_bytes", TopicConfig::new(1).max_record_bytes(0)),
        ("max_record_bytes", TopicConfig::new(1).max_record_bytes(u32::MAX)),
        ("segment_ms", TopicConfig::new(1).segment_ms(Some(0))),
        ("segment_ms", TopicConfig::new(1).segment_ms(Some(i64::MIN))),
        ("retention_ms", TopicConfig::new(1).retention_ms(Some(-1))),
        ("retention_ms", TopicConfig::new(1).retention_ms(Some(i64::MIN))),
        // topic.meta holds it as i64: refused rather than silently clamped.
        ("retention_bytes", TopicConfig::new(1).retention_bytes(Some(u64::MAX))),
    ];
    for (field, cfg) in bad {
        let e = broker.create_topic("t", cfg.clone()).unwrap_err();
        match &e {
            Error::InvalidConfig { field: f, .. } => assert_eq!(*f, field, "{cfg:?}: {e}"),
            other => panic!("{cfg:?}: expected InvalidConfig({field}), got {other:?}"),
        }
        assert!(e.to_string().contains(field), "message does not name the field: {e}");
        assert!(matches!(broker.topic("t"), Err(Error::UnknownTopic { .. })));
    }
    assert_eq!(listing(root.path()), before, "a rejected config created files");
    // Bad consumer settings.
    assert!(matches!(
        broker.consumer(ConsumerConfig::new().group("")),
        Err(Error::InvalidConfig { field: "group", .. })
    ));
    assert!(matches!(
        broker.consumer(ConsumerConfig::new().group("g".repeat(256))),
        Err(Error::InvalidConfig { field: "group", .. })
    ));
    assert!(matches!(
        broker.consumer(ConsumerConfig::new().max_poll_interval(Duration::ZERO)),
        Err(Error::InvalidConfig { .. })
    ));
    // Huge but legal limits: accepted, and they keep everything.
    let huge = TopicConfig::new(2)
        .segment_bytes(4096)
        .retention_bytes(Some(i64::MAX as u64))
        .retention_ms(Some(i64::MAX));
    broker.create_topic("huge", huge).unwrap();
    let producer = broker.producer();
    for i in 0..200u32 {
        let r = Record::new(vec![b'h'; 300])
            .with_partition(i % 2)
            .with_timestamp(if i % 3 == 0 { i64::MIN } else { i64::MAX });
        producer.send("huge", r).unwrap();
    }
    broker.close().unwrap();
    let broker = Broker::open(&dir).unwrap();
    let t = broker.topic("huge").unwrap();
    for p in 0..2 {
        let part = t.partition(p).unwrap();
        assert_eq!(part.start_offset(), 0, "huge retention deleted data");
        assert_eq!(part.end_offset(), 100);
        assert!(part.segment_count() > 1, "segments should have rolled");
        assert_eq!(part.verify().unwrap(), 100);
    }
    assert_eq!(good_records(&broker), vec![(0, b"keep me".to_vec())]);
}

#[test]
fn record_size_limit_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker
        .create_topic("lim", TopicConfig::new(1).segment_bytes(4096).max_record_bytes(100))
        .unwrap();
    let p = broker.producer();
    // key + value + header name + header value = 100: accepted.
    let at = Record::new(vec![1u8; 90])
        .with_key(vec![2u8; 5])
        .with_header("hh", vec![3u8; 3]);
    assert_eq!(p.send("lim", at).unwrap().offset(), 0);
    assert_eq!(p.send("lim", Record::new(vec![0u8; 100])).unwrap().offset(), 1);
    // One byte over, whichever part carries it: RecordTooLarge, nothing written.
    let over = [
        Record::new(vec![0u8; 101]),
        Record::new(vec![1u8; 90])
            .with_key(vec![2u8; 6])
            .with_header("hh", vec![3u8; 3]),
        Record::new(vec![1u8; 90])
            .with_key(vec![2u8; 5])
            .with_header("hhh", vec![3u8; 3]),
        Record::new(vec![1u8; 90])
            .with_key(vec![2u8; 5])
            .with_header("hh", vec![3u8; 4]),
    ];
    for r in over {
        let e = p.send("lim", r.clone()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::RecordTooLarge {
                    size: 101,
                    max: 100,
                    ..
                }
            ),
            "{e:?}"
        );
        // In a batch, the valid records are not written either.
        let e = p.send_batch("lim", [Record::new("fine"), r]).unwrap_err();
        assert!(matches!(e, Error::RecordTooLarge { .. }), "{e:?}");
    }
    let part = broker.topic("lim").unwrap().partition(0).unwrap();
    assert_eq!(part.end_offset(), 2, "a rejected record was written");
    // A segment too small for a 1-byte record is refused at create_topic. (It
    // used to be accepted with a record limit of 0, which topic.meta cannot
    // hold: the next Broker::open then failed with Corruption.)
    for seg in [64, 94] {
        let e = broker
            .create_topic("tiny", TopicConfig::new(1).segment_bytes(seg))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidConfig {
                    field: "segment_bytes",
                    ..
                }
            ),
            "{seg}: {e:?}"
        );
    }
    // The smallest segment that holds a record: the limit a RecordTooLarge
    // names is exact (a record of that size is accepted, one byte more is not),
    // and the topic survives a reopen.
    broker
        .create_topic("tiny", TopicConfig::new(1).segment_bytes(95))
        .unwrap();
    let e = p.send("tiny", Record::new(vec![7u8; 64])).unwrap_err();
    let Error::RecordTooLarge { max, .. } = e else {
        panic!("{e:?}")
    };
    let fits = max;
    p.send("tiny", Record::new(vec![7u8; fits])).unwrap();
    assert!(matches!(
        p.send("tiny", Record::new(vec![7u8; fits + 1])),
        Err(Error::RecordTooLarge { .. })
    ));
    broker.close().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let part = broker.topic("tiny").unwrap().partition(0).unwrap();
    assert_eq!(part.verify().unwrap(), part.end_offset() - part.start_offset());
    assert_eq!(part.read(part.end_offset() - 1, 1).unwrap()[0].value().len(), fits);
}

#[test]
fn reads_past_the_end_and_seeks_on_unassigned_partitions_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("r", TopicConfig::new(2)).unwrap();
    let p = broker.producer();
    for i in 0..5 {
        p.send("r", Record::new(format!("{i}")).with_partition(0)).unwrap();
    }
    let part = broker.topic("r").unwrap().partition(0).unwrap();
    assert!(part.read(5, 10).unwrap().is_empty(), "reading at the end is empty");
    for off in [6, 1000, u64::MAX] {
        let e = part.read(off, 10).unwrap_err();
        assert!(
            matches!(e, Error::OffsetOutOfRange { offset, start: 0, end: 5, .. } if offset == off),
            "{e:?}"
        );
    }
    assert!(part.read(0, 0).unwrap().is_empty());
    assert_eq!(part.read(0, usize::MAX).unwrap().len(), 5);
    assert_eq!(part.offset_for_timestamp(i64::MAX).unwrap(), None);
    assert_eq!(part.offset_for_timestamp(i64::MIN).unwrap(), Some(0));
    assert!(matches!(
        broker.topic("r").unwrap().partition(2),
        Err(Error::UnknownPartition { partition: 2, .. })
    ));
    assert!(matches!(
        broker.topic("r").unwrap().partition(u32::MAX),
        Err(Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        p.send("r", Record::new("x").with_partition(2)),
        Err(Error::UnknownPartition { .. })
    ));

    let mut c = broker
        .consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))
        .unwrap();
    let tp0 = TopicPartition::new("r", 0);
    let tp1 = TopicPartition::new("r", 1);
    assert!(matches!(c.seek(&tp0, 0), Err(Error::NotAssigned { .. })));
    assert!(matches!(c.position(&tp0), Err(Error::NotAssigned { .. })));
    assert!(matches!(
        c.assign(&[TopicPartition::new("r", 7)]),
        Err(Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        c.assign(&[TopicPartition::new("nope", 0)]),
        Err(Error::UnknownTopic { .. })
    ));
    c.assign(std::slice::from_ref(&tp0)).unwrap();
    assert!(matches!(c.seek(&tp1, 0), Err(Error::NotAssigned { .. })));
    assert!(matches!(
        c.pause(std::slice::from_ref(&tp1)),
        Err(Error::NotAssigned { .. })
    ));
    // A seek past the end: the next poll never returns an offset that does not exist.
    c.seek(&tp0, u64::MAX).unwrap_or(());
    match c.poll(Duration::from_millis(20)) {
        Ok(recs) => assert!(
            recs.iter().all(|r| r.offset() < 5),
            "poll returned a nonexistent record"
        ),
        Err(e) => assert!(matches!(e, Error::OffsetOutOfRange { .. }), "{e:?}"),
    }
    // Commit without a group: InvalidConfig.
    assert!(matches!(c.commit(), Err(Error::InvalidConfig { .. })));
    // Nothing lost.
    assert_eq!(part.read(0, 10).unwrap().len(), 5);
}

#[test]
fn a_directory_held_by_another_process_is_locked_with_its_pid() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        // Child: hold the broker until stdin closes.
        let broker = Broker::open(&dir).unwrap();
        broker.producer().send("held", Record::new("from the child")).unwrap();
        println!("@HOLDING");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        broker.close().unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let b = Broker::open(dir.path()).unwrap();
        b.create_topic("held", TopicConfig::new(1)).unwrap();
        b.close().unwrap();
    }
    let mut child = common::rerun_self(
        module_path!(),
        "a_directory_held_by_another_process_is_locked_with_its_pid",
    )
    .env(CHILD_ENV, dir.path())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("@HOLDING") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child exited before holding the lock"
        );
    }
    let before = listing(dir.path());
    for _ in 0..3 {
        let e = Broker::open(dir.path()).unwrap_err();
        assert!(
            matches!(&e, Error::Locked { pid: Some(pid), path } if *pid == child.id() && path == dir.path()),
            "{e:?}"
        );
        assert!(e.to_string().contains(&format!("pid {}", child.id())), "{e}");
    }
    assert_eq!(listing(dir.path()), before, "a refused open changed the directory");
    drop(child.stdin.take()); // EOF: the child closes its broker and exits
    assert!(child.wait().unwrap().success());
    let b = Broker::open(dir.path()).unwrap();
    let part = b.topic("held").unwrap().partition(0).unwrap();
    assert_eq!(part.read(0, 10).unwrap()[0].value(), b"from the child");
    // And a second open in this process is refused the same way.
    let e = Broker::open(dir.path()).unwrap_err();
    assert!(
        matches!(e, Error::Locked { pid: Some(pid), .. } if pid == std::process::id()),
        "{e:?}"
    );
    b.close().unwrap();
}

#[test]
fn a_file_where_the_directory_should_be_is_an_io_error() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("not-a-dir");
    std::fs::write(&file, b"precious").unwrap();
    let e = Broker::open(&file).unwrap_err();
    assert!(matches!(&e, Error::Io { path, .. } if path.starts_with(&file)), "{e:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious", "the file was changed");
}
