//! What the mirror counts when it sends records again, and what it does
//! when the local directory lost records after they were shipped (a power
//! failure with unsynced writes: the owner then writes new records at the
//! offsets Kafka already holds, and a reader dropping duplicates by the
//! source headers would drop the new ones).
//!
//! The loss is simulated by a directory holding fewer records than the
//! mirror's progress file says were sent: the file of a mirror that shipped
//! 10 records, copied beside a partition of 4.

use std::path::Path;
use std::time::Duration;

use logbus::kafka::Mirror;
use logbus::{Broker, Error, Record, TopicPartition};

use super::{local, origin, read_all, wait_mirrored, wait_until};
use crate::broker::Tansu;

const PROGRESS: &str = "@mirror/logbus-mirror.offsets";

fn produce(broker: &Broker, topic: &str, prefix: &str, n: u32) {
    let p = broker.producer();
    for i in 0..n {
        p.send(topic, Record::new(format!("{prefix}{i}"))).unwrap();
    }
}

/// A second directory with `topic` holding `n` records, and the progress
/// file of `shipped` copied into it.
fn lost_copy(shipped: &Path, topic: &str, n: u32) -> (tempfile::TempDir, Broker) {
    let (dir, broker) = local(topic, logbus::TopicConfig::new(1));
    produce(&broker, topic, "old", n);
    std::fs::create_dir_all(dir.path().join("@mirror")).unwrap();
    std::fs::copy(shipped.join(PROGRESS), dir.path().join(PROGRESS)).unwrap();
    (dir, broker)
}

fn assert_ahead(e: &Error, path: &Path) {
    assert!(
        matches!(
            e,
            Error::MirrorAhead {
                partition: 0,
                sent: 10,
                end: 4,
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("offsets 4..10") && msg.contains(&path.join(PROGRESS).display().to_string()),
        "{msg}"
    );
}

#[test]
fn the_in_process_mirror_counts_resent_records_and_refuses_a_directory_that_lost_shipped_ones() {
    let kafka = Tansu::start();
    let (dir, broker) = local("lost", logbus::TopicConfig::new(1));
    produce(&broker, "lost", "old", 10);
    let m = Mirror::builder(kafka.bootstrap()).topic("lost").start(&broker).unwrap();
    wait_mirrored(|| m.status(), 10);
    let st = m.stop().unwrap();
    assert_eq!((st.sent, st.resent), (10, 0), "{st:?}");

    // Moving the group back (what `logbus groups reset-offsets` does) ships
    // the records again, each counted as re-sent.
    let tp = TopicPartition::new("lost", 0);
    broker.set_group_offsets("logbus-mirror", &[(tp.clone(), 0)]).unwrap();
    let m = Mirror::builder(kafka.bootstrap()).topic("lost").start(&broker).unwrap();
    wait_until(Duration::from_secs(30), "10 records acknowledged again", || {
        let st = m.status();
        (st.acknowledged == 10 && st.behind() == 0, st)
    });
    let st = m.stop().unwrap();
    assert_eq!((st.sent, st.resent), (10, 10), "{st:?}");

    // A directory that lost 6 of the 10 shipped records: refused at start, nothing sent.
    let (dir2, broker2) = lost_copy(dir.path(), "lost", 4);
    let e = Mirror::builder(kafka.bootstrap())
        .topic("lost")
        .start(&broker2)
        .unwrap_err();
    assert_ahead(&e, dir2.path());

    // The way out the error names: delete the file, use a new source id. The
    // mirror resumes at the group's committed offset (4 here: where
    // Broker::open clamps an offset past the end), so only new records go.
    broker2.set_group_offsets("logbus-mirror", &[(tp, 4)]).unwrap();
    std::fs::remove_file(dir2.path().join(PROGRESS)).unwrap();
    produce(&broker2, "lost", "new", 3);
    let m = Mirror::builder(kafka.bootstrap())
        .topic("lost")
        .source_id("after-the-loss")
        .start(&broker2)
        .unwrap();
    wait_mirrored(|| m.status(), 7);
    let st = m.stop().unwrap();
    assert_eq!((st.sent, st.resent), (3, 0), "{st:?}");
    let got = read_all(&kafka, "lost", 1, 23, Duration::from_millis(500));
    let mut new: Vec<(u64, Vec<u8>)> = got
        .iter()
        .filter(|r| origin(r).0 == "after-the-loss")
        .map(|r| (origin(r).2, r.value().to_vec()))
        .collect();
    new.sort();
    assert_eq!(
        new,
        [(4, b"new0".to_vec()), (5, b"new1".to_vec()), (6, b"new2".to_vec())],
        "{got:?}"
    );
}

#[test]
fn a_sidecar_refuses_a_directory_that_lost_shipped_records_and_names_the_way_out() {
    let kafka = Tansu::start();
    let (dir, broker) = local("gone", logbus::TopicConfig::new(1));
    produce(&broker, "gone", "old", 10);
    let m = Mirror::builder(kafka.bootstrap())
        .topic("gone")
        .start_sidecar(dir.path())
        .unwrap();
    wait_mirrored(|| m.status(), 10);
    m.stop().unwrap();

    let (dir2, _broker2) = lost_copy(dir.path(), "gone", 4);
    let e = Mirror::builder(kafka.bootstrap())
        .topic("gone")
        .start_sidecar(dir2.path())
        .unwrap_err();
    assert_ahead(&e, dir2.path());

    // Deleting the file and taking a new source id ships every stored record again under it.
    std::fs::remove_file(dir2.path().join(PROGRESS)).unwrap();
    let m = Mirror::builder(kafka.bootstrap())
        .topic("gone")
        .source_id("after-the-loss")
        .start_sidecar(dir2.path())
        .unwrap();
    wait_mirrored(|| m.status(), 4);
    let st = m.stop().unwrap();
    assert_eq!((st.sent, st.resent), (4, 0), "{st:?}");
}
