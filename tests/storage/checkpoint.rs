//! Recovery work stays bounded: the background thread records a checkpoint
//! once 64 MiB arrived since the last one, however long the time interval.
//! Under `PageCache` (the default) on a machine with a boot id that is a live
//! checkpoint (`recovery.live`); elsewhere the fsynced `recovery.ckpt`.

use std::time::Duration;

use logbus::format::checkpoint;
use logbus::{Broker, BrokerConfig, Record, TopicConfig};

use crate::common::Deadline;

#[test]
fn checkpoints_follow_bytes_written_not_only_time() {
    let dir = tempfile::tempdir().unwrap();
    // Both timers out of reach: only the bytes can trigger a checkpoint.
    let config = BrokerConfig::new()
        .checkpoint_interval(Duration::from_secs(3600))
        .sync_checkpoint_interval(Duration::from_secs(3600));
    let broker = Broker::open_with(dir.path(), config).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    for _ in 0..100 {
        producer
            .send_batch("t", (0..1000).map(|_| Record::new(vec![7u8; 1000])))
            .unwrap();
    }
    let pdir = dir.path().join("t/0");
    // The newest checkpoint's position, live or fsynced.
    let newest = || {
        // (A new partition has no fsynced checkpoint, nor its file, before it needs one.)
        let fsynced = std::fs::read(pdir.join("recovery.ckpt"))
            .ok()
            .and_then(|b| checkpoint::decode(&b).ok());
        let live = std::fs::read(pdir.join("recovery.live"))
            .ok()
            .and_then(|b| checkpoint::decode_live(&b).ok());
        fsynced.map_or(0, |c| c.position).max(live.map_or(0, |l| l.position))
    };
    let deadline = Deadline::new(Duration::from_secs(30), "a byte-triggered checkpoint");
    while newest() < 64 << 20 {
        deadline.check_with(|| format!("position {}", newest()));
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.close().unwrap();
}

/// A standalone `Log` runs its own background thread: without any flush or
/// close, its recovery checkpoint advances (it never did before the log had
/// one, so `Durability::Interval` never synced either).
#[test]
fn a_standalone_log_checkpoints_in_the_background() {
    use logbus::log::Log;
    use logbus::{Durability, LogConfig};
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::from_topic(&TopicConfig::new(1), Durability::Interval(Duration::from_millis(20)));
    let log = Log::open(dir.path(), config).unwrap();
    log.append(
        &(0..100)
            .map(|i: u32| Record::new(i.to_le_bytes().to_vec()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let ckpt = dir.path().join("recovery.ckpt");
    // None until the first checkpoint: a new log writes none at open.
    let next = || {
        std::fs::read(&ckpt)
            .ok()
            .and_then(|b| checkpoint::decode(&b).ok())
            .map(|c| c.next_offset)
    };
    let deadline = Deadline::new(Duration::from_secs(20), "a background checkpoint of the standalone log");
    while next() != Some(100) {
        deadline.check_with(|| format!("its next offset is {:?}, not 100", next()));
        std::thread::sleep(Duration::from_millis(20));
    }
    log.close().unwrap();
}
