//! Recovery work stays bounded: the background thread records a checkpoint
//! once 64 MiB arrived since the last one, however long the time interval.

use std::time::{Duration, Instant};

use logbus::format::checkpoint;
use logbus::{Broker, BrokerConfig, Record, TopicConfig};

#[test]
fn checkpoints_follow_bytes_written_not_only_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig::new().checkpoint_interval(Duration::from_secs(3600));
    let broker = Broker::open_with(dir.path(), config).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    for _ in 0..100 {
        producer
            .send_batch("t", (0..1000).map(|_| Record::new(vec![7u8; 1000])))
            .unwrap();
    }
    let ckpt = dir.path().join("t/0/recovery.ckpt");
    let deadline = Instant::now() + Duration::from_secs(30);
    let position = loop {
        let c = checkpoint::decode(&std::fs::read(&ckpt).unwrap()).unwrap();
        if c.position >= 64 << 20 || Instant::now() > deadline {
            break c.position;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        position >= 64 << 20,
        "no byte-triggered checkpoint: position {position}"
    );
    broker.close().unwrap();
}
