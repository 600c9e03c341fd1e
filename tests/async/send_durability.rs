//! What `send_async` waits for under `Sync`, seen through `logbus::testing`
//! (feature `fault-injection`): pending sends share fsyncs, and a failed
//! fsync fails every send it was to cover. The fault switches act on the
//! whole process, so each scenario runs alone in a child process.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use logbus::testing::{fail_next_fsyncs, set_sync_observer, SyncEvent};
use logbus::{Error, Record, TopicConfig};

use crate::common::rerun_self;
use crate::{sync_broker, RUNTIMES};

const CHILD: &str = "LOGBUS_ASYNC_FAULT_CHILD";

/// Runs `test` of this module in a child process; it passes there or this fails.
fn in_child(test: &str) {
    let out = rerun_self(module_path!(), test).env(CHILD, "1").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{test} failed in its child process:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "{text}");
}

fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

#[test]
fn a_thousand_pending_sends_share_fsyncs() {
    in_child("child_a_thousand_pending_sends_share_fsyncs");
}

#[test]
fn child_a_thousand_pending_sends_share_fsyncs() {
    if !is_child() {
        return;
    }
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = sync_broker(dir.path());
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        let segment_fsyncs = Arc::new(AtomicUsize::new(0));
        let partition_dir: PathBuf = dir.path().join("t").join("0");
        {
            let count = Arc::clone(&segment_fsyncs);
            set_sync_observer(Some(Box::new(move |e| {
                if let SyncEvent::File(p) = e {
                    if p.starts_with(&partition_dir) && p.extension().is_some_and(|x| x == "log") {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })));
        }
        let producer = broker.producer();
        let sends = 1000;
        let tasks: Vec<_> = rt.block_on(async {
            let tasks: Vec<_> = (0..sends)
                .map(|i| rt.spawn(producer.send_async("t", Record::new(format!("{i}")))))
                .collect();
            let mut done = Vec::new();
            for t in tasks {
                done.push(rt.within("a send", t).await.unwrap());
            }
            done
        });
        set_sync_observer(None);
        assert_eq!(tasks.len(), sends);
        let fsyncs = segment_fsyncs.load(Ordering::SeqCst);
        assert!(fsyncs >= 1, "{rt:?}: the sends waited for an fsync");
        assert!(
            fsyncs * 10 <= sends,
            "{rt:?}: {sends} pending sends took {fsyncs} segment fsyncs"
        );
    }
}

#[test]
fn a_failed_fsync_fails_every_send_waiting_for_it() {
    in_child("child_a_failed_fsync_fails_every_send_waiting_for_it");
}

#[test]
fn child_a_failed_fsync_fails_every_send_waiting_for_it() {
    if !is_child() {
        return;
    }
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = sync_broker(dir.path());
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        let producer = broker.producer();
        let sends: Vec<_> = (0..200)
            .map(|i| producer.send_async("t", Record::new(format!("{i}"))))
            .collect();
        fail_next_fsyncs(1);
        rt.block_on(async {
            for send in sends {
                let err = rt.within("a send whose fsync failed", send).await.unwrap_err();
                assert!(matches!(err, Error::Poisoned { .. }), "{rt:?}: {err:?}");
            }
            let err = producer.send_async("t", Record::new("later")).await.unwrap_err();
            assert!(matches!(err, Error::Poisoned { .. }), "{rt:?}: {err:?}");
        });
        fail_next_fsyncs(0);
    }
}
