//! A clean close fsyncs what its checkpoint covers, then writes the clean
//! checkpoint without an fsync of its own. Checked with the sync observer:
//! the close fsyncs the segment, and `recovery.ckpt` never with the clean
//! flag (a clean open's checkpoint rewritten not clean by the first append
//! is fsynced before the records after it, as always); and a power loss
//! right after the close, simulated by putting back each file as its last
//! fsync left it (or deleting it when it was never fsynced), reopens by
//! scanning and finds every record, after a first close (no checkpoint on
//! disk before) and after a second one (a not-clean checkpoint before).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use logbus::format::checkpoint;
use logbus::log::Log;
use logbus::testing::{set_sync_observer, SyncEvent};
use logbus::{Durability, LogConfig, Record, TopicConfig};

use crate::common;

fn config() -> LogConfig {
    LogConfig::from_topic(&TopicConfig::new(1), Durability::PageCache)
}

fn value(o: u64) -> Vec<u8> {
    format!("record-{o}").into_bytes()
}

/// The bytes each file had at its last fsync, by path.
type Durable = Arc<Mutex<HashMap<PathBuf, Vec<u8>>>>;

fn observe(durable: &Durable) {
    let seen = Arc::clone(durable);
    set_sync_observer(Some(Box::new(move |e| {
        if let SyncEvent::File(p) = e {
            if let Ok(bytes) = std::fs::read(&p) {
                seen.lock().unwrap().insert(p, bytes);
            }
        }
    })));
}

/// Appends `count` records from offset `from` and closes; returns the files
/// the session fsynced.
fn session(dir: &Path, from: u64, count: u64, durable: &Durable) -> Vec<PathBuf> {
    durable.lock().unwrap().clear();
    observe(durable);
    let log = Log::open(dir, config()).unwrap();
    assert_eq!(log.end_offset(), from);
    let batch: Vec<Record> = (from..from + count).map(|o| Record::new(value(o))).collect();
    log.append(&batch).unwrap();
    log.close().unwrap();
    set_sync_observer(None);
    durable.lock().unwrap().keys().cloned().collect()
}

/// Whether the session fsynced `recovery.ckpt` with the clean flag.
fn clean_checkpoint_synced(dir: &Path, durable: &Durable) -> bool {
    let bytes = durable.lock().unwrap().get(&dir.join("recovery.ckpt")).cloned();
    bytes.is_some_and(|b| checkpoint::decode(&b).unwrap().clean)
}

/// What a power loss right after the close leaves of `recovery.ckpt`: its
/// bytes at its last fsync in this session, else as the session found it.
fn lose_power(dir: &Path, durable: &Durable, before: Option<Vec<u8>>) {
    let ckpt = dir.join("recovery.ckpt");
    match durable.lock().unwrap().get(&ckpt).cloned().or(before) {
        Some(bytes) => std::fs::write(&ckpt, bytes).unwrap(),
        None => std::fs::remove_file(&ckpt).unwrap(),
    }
}

fn reopen_and_check(dir: &Path, end: u64) {
    let log = Log::open(dir, config()).unwrap();
    let report = log.recovery_report().clone();
    assert!(!report.clean, "the clean checkpoint was lost: {report:?}");
    assert!(report.scanned_bytes > 0, "{report:?}");
    assert!(report.damage.is_empty(), "{report:?}");
    let got = log.read(0, usize::MAX).unwrap();
    let values: Vec<Vec<u8>> = got.iter().map(|r| r.value().to_vec()).collect();
    assert_eq!(values, (0..end).map(value).collect::<Vec<_>>());
    log.close().unwrap();
}

#[test]
fn a_power_loss_after_a_clean_close_reopens_by_scanning_with_every_record() {
    let _faults = common::process_wide_faults();
    let dir = tempfile::tempdir().unwrap();
    let durable: Durable = Arc::default();
    let ckpt = dir.path().join("recovery.ckpt");
    let segment = dir.path().join(format!("{:020}.log", 0));

    // First close: the segment is fsynced, the new checkpoint file is not.
    let synced = session(dir.path(), 0, 100, &durable);
    assert!(synced.contains(&segment), "the close fsynced {synced:?}");
    assert!(!synced.contains(&ckpt), "the first close fsynced its checkpoint file");
    assert!(ckpt.exists());
    lose_power(dir.path(), &durable, None);
    reopen_and_check(dir.path(), 100);

    // The check's own reopen closed cleanly; a second session appends (its
    // first append rewrites the checkpoint not clean) and closes, and the
    // power loss takes the close's clean checkpoint.
    let before = std::fs::read(&ckpt).ok();
    assert!(before.is_some(), "the check's close writes a checkpoint");
    let synced = session(dir.path(), 100, 50, &durable);
    assert!(synced.contains(&segment), "the close fsynced {synced:?}");
    assert!(synced.contains(&ckpt), "the not-clean rewrite was not fsynced");
    assert!(
        !clean_checkpoint_synced(dir.path(), &durable),
        "the close fsynced its clean checkpoint"
    );
    lose_power(dir.path(), &durable, before);
    reopen_and_check(dir.path(), 150);
}
