//! `logbus mirror` beside the directory's owner: SIGTERM stops it cleanly,
//! a restart resumes without re-sending, an unreachable cluster is reported.

use std::time::{Duration, Instant};

use logbus::{Record, TopicConfig};

use super::{copies, dead_address, local, read_all, wait_until, Sidecar};
use crate::broker::Tansu;

#[test]
fn sigterm_exits_0_after_committing_and_a_restart_sends_nothing_twice() {
    let kafka = Tansu::start();
    let (dir, broker) = local("orders", TopicConfig::new(2));
    let p = broker.producer();
    for i in 0..200u32 {
        p.send("orders", Record::new(format!("first {i}")).with_key(i.to_string()))
            .unwrap();
    }
    let mut side = Sidecar::spawn(
        dir.path(),
        &kafka.bootstrap(),
        &["orders"],
        &["--progress-interval-ms", "200"],
    );
    wait_until(Duration::from_secs(30), "behind 0 on a progress line", || {
        let lines = side.stderr();
        (lines.iter().any(|l| l.contains("acked 200 behind 0")), lines)
    });
    assert!(dir.path().join("@mirror/logbus-mirror.offsets").is_file());
    let status = side.terminate();
    assert_eq!(status.code(), Some(0), "{:#?}", side.stderr());
    let lines = side.stderr();
    assert!(
        lines.iter().any(|l| l.contains("stopped: sent 200 acked 200 behind 0")),
        "{lines:#?}"
    );

    for i in 0..50u32 {
        p.send("orders", Record::new(format!("second {i}")).with_key(i.to_string()))
            .unwrap();
    }
    let mut side = Sidecar::spawn(
        dir.path(),
        &kafka.bootstrap(),
        &["orders"],
        &["--progress-interval-ms", "200"],
    );
    wait_until(Duration::from_secs(30), "the 50 new records acknowledged", || {
        let lines = side.stderr();
        (lines.iter().any(|l| l.contains("acked 50 behind 0")), lines)
    });
    assert_eq!(side.terminate().code(), Some(0));
    let lines = side.stderr();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("stopped: sent 50 acked 50 behind 0 resent 0")),
        "{lines:#?}"
    );

    let got = read_all(&kafka, "orders", 2, 250, Duration::from_secs(1));
    let c = copies(&got);
    assert_eq!((got.len(), c.len()), (250, 250), "every record exactly once");
}

#[test]
fn an_unreachable_cluster_is_reported_on_stderr_within_seconds_and_sigint_still_exits_0() {
    let (dir, broker) = local("orders", TopicConfig::new(1));
    broker.producer().send("orders", Record::new("x")).unwrap();
    let address = dead_address();
    let t = Instant::now();
    let mut side = Sidecar::spawn(dir.path(), &address, &["orders"], &["--connect-timeout-ms", "2000"]);
    let lines = wait_until(Duration::from_secs(10), "the error on stderr", || {
        let lines = side.stderr();
        (
            lines.iter().any(|l| l.contains(&address) && l.contains("retrying")),
            lines,
        )
    });
    assert!(t.elapsed() < Duration::from_secs(10), "{lines:#?}");
    assert!(side.running(), "it keeps retrying");
    side.signal(libc::SIGINT);
    assert_eq!(side.wait(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn a_directory_that_lost_shipped_records_makes_logbus_mirror_exit_1_naming_the_offsets_and_the_file() {
    let kafka = Tansu::start();
    let (dir, broker) = local("orders", TopicConfig::new(1));
    let p = broker.producer();
    for i in 0..10u32 {
        p.send("orders", Record::new(format!("old {i}"))).unwrap();
    }
    let mut side = Sidecar::spawn(
        dir.path(),
        &kafka.bootstrap(),
        &["orders"],
        &["--progress-interval-ms", "200"],
    );
    wait_until(Duration::from_secs(30), "the 10 records acknowledged", || {
        let lines = side.stderr();
        (lines.iter().any(|l| l.contains("acked 10 behind 0")), lines)
    });
    assert_eq!(side.terminate().code(), Some(0), "{:#?}", side.stderr());

    // The same topic with 4 records (6 lost after they were shipped) and the progress file.
    let (dir2, broker2) = local("orders", TopicConfig::new(1));
    for i in 0..4u32 {
        broker2
            .producer()
            .send("orders", Record::new(format!("old {i}")))
            .unwrap();
    }
    let file = "@mirror/logbus-mirror.offsets";
    std::fs::create_dir_all(dir2.path().join("@mirror")).unwrap();
    std::fs::copy(dir.path().join(file), dir2.path().join(file)).unwrap();
    let mut side = Sidecar::spawn(dir2.path(), &kafka.bootstrap(), &["orders"], &[]);
    assert_eq!(
        side.wait(Duration::from_secs(20)).code(),
        Some(1),
        "{:#?}",
        side.stderr()
    );
    let text = side.stderr().join("\n");
    assert!(
        text.contains("offsets 4..10")
            && text.contains(&dir2.path().join(file).display().to_string())
            && text.contains("--source-id"),
        "{text}"
    );
}
