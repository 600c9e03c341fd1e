//! `consume` (without a group) and `dump` show transaction markers and
//! records of transactions that did not commit for what they are.

use logbus::{Broker, Record, TopicConfig};

use crate::run::ok;

fn directory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::open(dir.path()).unwrap();
    b.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = b.producer();
    p.send("t", Record::new("plain")).unwrap();
    let mut t = p.transaction().unwrap();
    t.send("t", Record::new("committed")).unwrap();
    t.commit().unwrap();
    let mut t = p.transaction().unwrap();
    t.send("t", Record::new("aborted")).unwrap();
    t.abort().unwrap();
    drop(p);
    b.close().unwrap();
    dir
}

#[test]
fn consume_labels_markers_and_uncommitted_records() {
    let dir = directory();
    let out = ok(
        dir.path(),
        &["consume", "--topic", "t", "--from-beginning", "--print-offset"],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "0:0\tplain",
            "0:1\tcommitted",
            "# 0:2 commit marker of transaction 1",
            "# 0:3 not committed: transaction 2 aborted or still open",
            "0:3\taborted",
            "# 0:4 abort marker of transaction 2",
        ]
    );
    let json = ok(
        dir.path(),
        &["consume", "--topic", "t", "--from-beginning", "--format", "json"],
    );
    let lines: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[1]["committed"], true);
    assert_eq!(lines[2]["control"], "commit");
    assert_eq!(lines[3]["committed"], false);
    assert_eq!(lines[4]["control"], "abort");
}

#[test]
fn dump_labels_transactional_batches_and_markers() {
    let dir = directory();
    let seg = dir.path().join("t").join("0").join("00000000000000000000.log");
    let out = ok(dir.path(), &["dump", seg.to_str().unwrap()]);
    assert!(out.contains("transaction 1 (committed)"), "{out}");
    assert!(out.contains("COMMIT marker of transaction 1"), "{out}");
    assert!(
        out.contains("transaction 2 (NOT committed: aborted or still open)"),
        "{out}"
    );
    assert!(out.contains("ABORT marker of transaction 2"), "{out}");
    assert!(out.contains("5 batches, 0 bad"), "{out}");
}
