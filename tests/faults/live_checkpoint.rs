//! Live checkpoints (`recovery.live`, PageCache durability): written without
//! fsync and trusted only on the same kernel boot. A child process (this test
//! binary, re-executed) appends, waits for its background thread to record a
//! live checkpoint, and is SIGKILLed; the parent reopens the log.
//!
//! Checked: after a process crash the reopen scans nothing the live
//! checkpoint covers and loses nothing; a live checkpoint of another boot, or
//! one whose last batch is not where it says, is ignored (the reopen scans
//! from the fsynced checkpoint and still finds every record); the sealed
//! segments written after the last fsynced checkpoint are fsynced at reopen;
//! a truncation invalidates the live checkpoint first; creating the live
//! checkpoint file, by the background tick or by the writer after 2 MiB,
//! does not hold up appends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use logbus::format::checkpoint;
use logbus::log::Log;
use logbus::{Durability, LogConfig, Record, TopicConfig};

use crate::common;

const CHILD_ENV: &str = "LOGBUS_LIVE_CKPT_CHILD";
const RECORDS: u64 = 3000;

fn config() -> LogConfig {
    LogConfig::from_topic(&TopicConfig::new(1).segment_bytes(64 * 1024), Durability::PageCache)
}

fn value(o: u64) -> Vec<u8> {
    format!("record-{o}-{}", "x".repeat((o % 50) as usize)).into_bytes()
}

fn live_path(dir: &Path) -> PathBuf {
    dir.join("recovery.live")
}

fn read_live(dir: &Path) -> Option<checkpoint::LiveCheckpoint> {
    std::fs::read(live_path(dir))
        .ok()
        .and_then(|b| checkpoint::decode_live(&b).ok())
}

/// Child: append RECORDS records in batches of 10 (segments roll), wait for
/// a live checkpoint covering all of them, say so, then wait to be killed.
fn child(dir: &Path) {
    let log = Log::open(dir, config()).unwrap();
    for first in (0..RECORDS).step_by(10) {
        let batch: Vec<Record> = (first..first + 10).map(|o| Record::new(value(o))).collect();
        log.append(&batch).unwrap();
    }
    common::wait_until("a live checkpoint of every record", Duration::from_secs(20), || {
        read_live(dir).is_some_and(|c| c.next_offset >= RECORDS)
    });
    println!("READY");
    std::thread::sleep(Duration::from_secs(60));
}

/// Runs the child to its live checkpoint and SIGKILLs it.
fn crashed_log(test_name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::rerun_self(module_path!(), test_name)
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.any(|l| l.is_ok_and(|l| l.ends_with("READY")));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready, "the child never reported its live checkpoint");
    dir
}

fn check_all_records(log: &Log) {
    assert_eq!(log.end_offset(), RECORDS);
    let mut next = 0;
    while next < RECORDS {
        let got = log.read(next, 1 << 20).unwrap();
        assert!(!got.is_empty(), "records missing at {next}");
        for r in got {
            assert_eq!(r.offset(), next);
            assert_eq!(r.value(), value(next).as_slice(), "record {next}");
            next += 1;
        }
    }
    assert_eq!(log.verify().unwrap(), RECORDS);
}

/// Whether this machine has a boot id (Linux); without one no live
/// checkpoint is ever written and these tests have nothing to check.
fn has_boot_id() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").is_ok()
}

macro_rules! child_or {
    () => {
        if let Ok(dir) = std::env::var(CHILD_ENV) {
            child(Path::new(&dir));
            return;
        }
        if !has_boot_id() {
            eprintln!("no kernel boot id: live checkpoints are disabled here");
            return;
        }
    };
}

#[test]
fn a_live_checkpoint_bounds_the_scan_after_a_process_crash() {
    let _faults = common::process_wide_faults();
    child_or!();
    let dir = crashed_log("a_live_checkpoint_bounds_the_scan_after_a_process_crash");
    let live = read_live(dir.path()).unwrap();
    // A new log writes no fsynced checkpoint (nor creates its file) before
    // it needs one: none at all in the child's second of writing, usually.
    let hard = std::fs::read(dir.path().join("recovery.ckpt"))
        .ok()
        .and_then(|b| checkpoint::decode(&b).ok());
    assert!(
        hard.is_none_or(|hard| (hard.segment_base, hard.position) < (live.segment_base, live.position)),
        "the fsynced checkpoint ({hard:?}) should be behind the live one ({live:?})"
    );
    assert!(
        live.segment_base > 0,
        "segments should have rolled after the fsynced checkpoint"
    );

    // The reopen writes nothing back (it must not wait for up to a gigabyte
    // of dirty pages); the segments from the fsynced checkpoint's to the live
    // one's, which were never fsynced, are fsynced by the first flush.
    let synced: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
    let seen = Arc::clone(&synced);
    logbus::testing::set_sync_observer(Some(Box::new(move |e| {
        if let logbus::testing::SyncEvent::File(p) = e {
            seen.lock().unwrap().push(p);
        }
    })));
    let log = Log::open(dir.path(), config()).unwrap();
    let at_open = synced.lock().unwrap().clone();
    log.flush().unwrap();
    logbus::testing::set_sync_observer(None);
    let report = log.recovery_report().clone();
    assert!(!report.clean);
    assert_eq!(
        report.scanned_bytes, 0,
        "the live checkpoint covered everything: {report:?}"
    );
    assert!(report.damage.is_empty(), "{report:?}");
    let at_flush = synced.lock().unwrap().clone();
    let bases = common::segment_bases(dir.path());
    let from = hard.map_or(0, |hard| hard.segment_base);
    for base in bases.iter().filter(|&&b| b >= from) {
        let path = dir.path().join(format!("{base:020}.log"));
        assert!(!at_open.contains(&path), "{} was fsynced by the reopen", path.display());
        assert!(
            at_flush.contains(&path),
            "{} was not fsynced by the flush",
            path.display()
        );
    }
    check_all_records(&log);
    log.close().unwrap();
}

/// Rewrites the live checkpoint with `edit` applied (keeping it decodable).
fn edit_live(dir: &Path, edit: impl FnOnce(&mut checkpoint::LiveCheckpoint)) {
    let mut live = read_live(dir).unwrap();
    edit(&mut live);
    std::fs::write(live_path(dir), checkpoint::encode_live(&live)).unwrap();
}

#[test]
fn a_live_checkpoint_of_another_boot_is_ignored() {
    let _faults = common::process_wide_faults();
    child_or!();
    let dir = crashed_log("a_live_checkpoint_of_another_boot_is_ignored");
    edit_live(dir.path(), |c| c.boot_id[0] ^= 0xff);
    let log = Log::open(dir.path(), config()).unwrap();
    let report = log.recovery_report().clone();
    assert!(
        report.scanned_bytes > 0,
        "another boot's live checkpoint was trusted: {report:?}"
    );
    assert!(report.damage.is_empty(), "{report:?}");
    check_all_records(&log);
    log.close().unwrap();
}

#[test]
fn a_live_checkpoint_whose_last_batch_does_not_hold_is_ignored() {
    let _faults = common::process_wide_faults();
    child_or!();
    let dir = crashed_log("a_live_checkpoint_whose_last_batch_does_not_hold_is_ignored");
    // Claims one more record than the batch it points at ends with.
    edit_live(dir.path(), |c| c.next_offset += 1);
    let log = Log::open(dir.path(), config()).unwrap();
    let report = log.recovery_report().clone();
    assert!(
        report.scanned_bytes > 0,
        "an inconsistent live checkpoint was trusted: {report:?}"
    );
    check_all_records(&log);
    log.close().unwrap();
}

#[test]
fn a_truncation_invalidates_the_live_checkpoint_first() {
    let _faults = common::process_wide_faults();
    child_or!();
    let dir = crashed_log("a_truncation_invalidates_the_live_checkpoint_first");
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(read_live(dir.path()).is_some());
    log.truncate(RECORDS / 2).unwrap();
    assert!(
        read_live(dir.path()).is_none(),
        "the live checkpoint still describes the bytes before the truncation"
    );
    assert_eq!(log.end_offset(), RECORDS / 2);
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.end_offset(), RECORDS / 2);
    assert_eq!(log.verify().unwrap(), RECORDS / 2);
    log.close().unwrap();
}

/// The writer records a live checkpoint itself every 2 MiB, whatever the
/// background thread's interval: the scan after a crash stays that small.
#[test]
fn the_writer_records_a_live_checkpoint_every_2_mib() {
    let _faults = common::process_wide_faults();
    if !has_boot_id() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = logbus::BrokerConfig::new().checkpoint_interval(Duration::from_secs(3600));
    let broker = logbus::Broker::open_with(dir.path(), config).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let p = broker.producer();
    let live = dir.path().join("t/0");
    for round in 1..=3u64 {
        // Just over 2 MiB of batches (~1 MB each).
        for _ in 0..3 {
            p.send_batch("t", (0..1024).map(|_| Record::new(vec![1u8; 1000])))
                .unwrap();
        }
        let c = read_live(&live).expect("no live checkpoint after 2 MiB");
        assert!(
            c.position >= round * (2 << 20),
            "round {round}: live checkpoint at byte {} only",
            c.position
        );
        // Written right after a batch of 1024 records.
        assert_eq!(c.next_offset % 1024, 0, "round {round}");
        assert!(c.next_offset <= round * 3 * 1024, "round {round}");
    }
    broker.close().unwrap();
}

/// Holds every creation of a `recovery.live` under `dir`
/// (`testing::set_create_hook`): the first receiver hears of each creation
/// as it starts, and the creation goes on once the sender is sent to (or
/// dropped, or after 60 s).
fn hold_live_file_creation(dir: &Path) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let ours = dir.to_path_buf();
    logbus::testing::set_create_hook(Some(Box::new(move |p: &Path| {
        if p.starts_with(&ours) && p.ends_with("recovery.live") {
            let _ = entered_tx.send(());
            let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
        }
    })));
    (entered_rx, release_tx)
}

/// Sends ten records to `topic` on another thread; true when they were all
/// appended within 10 s.
fn ten_sends_complete(producer: logbus::Producer, topic: &'static str) -> (bool, std::thread::JoinHandle<()>) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        for i in 0..10 {
            producer.send(topic, Record::new(format!("r{i}"))).unwrap();
        }
        let _ = done_tx.send(());
    });
    (done_rx.recv_timeout(Duration::from_secs(10)).is_ok(), sender)
}

/// The background tick creates a partition's `recovery.live` (its first live
/// checkpoint) before it takes the writer lock: an inode allocation can take
/// milliseconds, and a producer must not wait for it. The test holds that
/// creation and sends meanwhile.
#[test]
fn creating_the_live_checkpoint_file_does_not_hold_up_appends() {
    use logbus::{Broker, BrokerConfig};

    let _faults = common::process_wide_faults();
    let dir = tempfile::tempdir().unwrap();
    let (entered, release) = hold_live_file_creation(dir.path());
    let config = BrokerConfig::new()
        .durability(Durability::PageCache)
        .checkpoint_interval(Duration::from_millis(10));
    let broker = Broker::open_with(dir.path(), config).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    producer.send("t", Record::new("first")).unwrap();
    entered
        .recv_timeout(common::PATIENCE)
        .expect("the background tick to create recovery.live");

    // The creation is held: ten more sends, on another thread.
    let (appended, sender) = ten_sends_complete(producer, "t");
    release.send(()).unwrap();
    sender.join().unwrap();
    logbus::testing::set_create_hook(None);
    assert!(appended, "the sends waited for the live checkpoint file's creation");
    let part = broker.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(part.end_offset(), 11);
    broker.close().unwrap();
}

/// The same when the writer's own 2 MiB live checkpoint comes first (the
/// background thread's interval is an hour): the append that finds it due
/// creates the file after releasing the writer lock, so only that send
/// waits for the creation, and other producers' sends go on.
#[test]
fn the_writers_own_first_live_checkpoint_does_not_hold_up_other_producers() {
    use logbus::{Broker, BrokerConfig};

    let _faults = common::process_wide_faults();
    if !has_boot_id() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (entered, release) = hold_live_file_creation(dir.path());
    let config = BrokerConfig::new()
        .durability(Durability::PageCache)
        .checkpoint_interval(Duration::from_secs(3600));
    let broker = Broker::open_with(dir.path(), config).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let big = broker.producer();
    let writer = std::thread::spawn(move || {
        // Just over 2 MiB, the last batch making the live checkpoint due.
        for _ in 0..3 {
            big.send_batch("t", (0..1024).map(|_| Record::new(vec![1u8; 1000])))
                .unwrap();
        }
    });
    entered
        .recv_timeout(common::PATIENCE)
        .expect("the writer to create recovery.live after 2 MiB");

    let (appended, sender) = ten_sends_complete(broker.producer(), "t");
    release.send(()).unwrap();
    sender.join().unwrap();
    writer.join().unwrap();
    logbus::testing::set_create_hook(None);
    assert!(appended, "the sends waited for the live checkpoint file's creation");
    let c = read_live(&dir.path().join("t/0")).expect("a live checkpoint once the file is created");
    assert!(c.position >= 2 << 20, "live checkpoint at byte {} only", c.position);
    let part = broker.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(part.end_offset(), 3 * 1024 + 10);
    broker.close().unwrap();
}
