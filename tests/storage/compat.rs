//! Data written by a newer logbus, and damage from outside, are refused with
//! a clear error and nothing is cut or deleted.

use logbus::log::Log;
use logbus::{Broker, Durability, Error, LogConfig, Record, TopicConfig};

fn config() -> LogConfig {
    LogConfig::from_topic(&TopicConfig::new(1), Durability::PageCache)
}

/// Rewrites the batch at `pos` of `file` as format version `v` with a valid CRC.
fn bump_version(file: &std::path::Path, pos: usize, v: u8, fix_crc: bool) {
    let mut bytes = std::fs::read(file).unwrap();
    let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
    bytes[pos + 12] = v;
    if fix_crc {
        let crc = crc32fast::hash(&bytes[pos + 12..pos + len]);
        bytes[pos + 8..pos + 12].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn newer_batch_version_is_refused_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    log.append(&[Record::new("a")]).unwrap();
    let second = log.read(0, 1).unwrap();
    drop(second);
    log.append(&[Record::new("b")]).unwrap();
    log.close().unwrap();
    drop(log);
    let seg = dir.path().join("00000000000000000000.log");
    // The second batch starts after the first one.
    let first_len = {
        let b = std::fs::read(&seg).unwrap();
        u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize
    };
    bump_version(&seg, first_len, 3, true);
    let before = std::fs::read(&seg).unwrap();

    // Clean checkpoint: the open succeeds, reading the newer batch fails clearly.
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.read(0, 1).unwrap()[0].value(), b"a");
    let err = log.read(1, 1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{err}"
    );
    log.close().unwrap();
    drop(log);

    // Unclean: recovery scans, finds the newer batch, refuses to open.
    std::fs::remove_file(dir.path().join("recovery.ckpt")).unwrap();
    let err = Log::open(dir.path(), config()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion { found: 3, .. }), "{err}");
    assert!(err.to_string().contains("upgrade logbus"), "{err}");
    assert_eq!(std::fs::read(&seg).unwrap(), before, "nothing was cut");
}

#[test]
fn flipped_version_byte_is_damage_not_a_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    log.append(&[Record::new("a")]).unwrap();
    log.append(&[Record::new("b")]).unwrap();
    log.close().unwrap();
    drop(log);
    let seg = dir.path().join("00000000000000000000.log");
    let first_len = u32::from_le_bytes(std::fs::read(&seg).unwrap()[4..8].try_into().unwrap()) as usize;
    bump_version(&seg, first_len, 4, false);
    std::fs::remove_file(dir.path().join("recovery.ckpt")).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.end_offset(), 1, "the damaged tail batch is cut");
    assert!(!log.recovery_report().damage.is_empty());
}

#[test]
fn topic_with_records_but_no_metadata_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("orders", TopicConfig::new(2)).unwrap();
    broker
        .producer()
        .send("orders", Record::new("keep me").with_partition(1))
        .unwrap();
    broker.create_topic("empty", TopicConfig::new(1)).unwrap();
    broker.close().unwrap();
    std::fs::remove_file(dir.path().join("orders/topic.meta")).unwrap();
    std::fs::remove_file(dir.path().join("empty/topic.meta")).unwrap();

    let err = Broker::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
    assert!(err.to_string().contains("orders"), "{err}");
    assert!(
        dir.path().join("orders/1/00000000000000000000.log").exists(),
        "data kept"
    );

    // Restoring the metadata brings everything back.
    let other = tempfile::tempdir().unwrap();
    let b2 = Broker::open(other.path()).unwrap();
    b2.create_topic("orders", TopicConfig::new(2)).unwrap();
    b2.close().unwrap();
    std::fs::copy(
        other.path().join("orders/topic.meta"),
        dir.path().join("orders/topic.meta"),
    )
    .unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let recs = broker
        .topic("orders")
        .unwrap()
        .partition(1)
        .unwrap()
        .read(0, 10)
        .unwrap();
    assert_eq!(recs[0].value(), b"keep me");
    // The topic without records and without metadata was an interrupted create: removed.
    assert_eq!(broker.topics(), vec!["orders".to_string()]);
}
