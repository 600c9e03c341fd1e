//! Recovery of a damaged tail after an unclean shutdown: garbage after the last
//! batch, a half-written batch, zeroed preallocated space, garbage after zeros.
//! After reopen exactly the intact records remain, the recovery report says
//! what was cut, and the next append gets the next offset.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use logbus::format::checkpoint::{self, Checkpoint};
use logbus::log::Log;
use logbus::{Durability, LogConfig, Record, TopicConfig};

use crate::common;
use common::batches;

const CKPT: &str = "recovery.ckpt";

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig::from_topic(&TopicConfig::new(1).segment_bytes(segment_bytes), Durability::PageCache)
}

fn ts_of(offset: u64) -> i64 {
    // Not monotonic on purpose.
    1_700_000_000_000 + ((offset * 7919) % 1000) as i64
}

fn record(offset: u64) -> Record {
    let mut r =
        Record::new(format!("value-{offset:06}-{}", "p".repeat((offset % 23) as usize))).with_timestamp(ts_of(offset));
    if offset.is_multiple_of(2) {
        r = r.with_key(format!("key-{offset}"));
    }
    if offset.is_multiple_of(3) {
        r = r
            .with_header("h", offset.to_le_bytes().to_vec())
            .with_header("h", "dup");
    }
    r
}

/// Checks that the log holds exactly offsets `0..n`, each with its content.
fn check_contents(log: &Log, n: u64) {
    assert_eq!(log.start_offset(), 0);
    assert_eq!(log.end_offset(), n);
    let all = log.read(0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, n);
    for (i, r) in all.iter().enumerate() {
        let want = record(i as u64);
        assert_eq!(r.offset(), i as u64);
        assert_eq!(r.value(), want.value());
        assert_eq!(r.key(), want.key());
        assert_eq!(r.timestamp(), ts_of(i as u64));
        assert!(r.headers().eq(want.headers()), "headers of offset {i}");
    }
    assert_eq!(log.verify().unwrap(), n);
}

/// Writes `appends` appends of 1..=4 records and closes; returns the record count.
fn fill(dir: &Path, segment_bytes: u64, appends: u64) -> u64 {
    let log = Log::open(dir, config(segment_bytes)).unwrap();
    let mut n = 0;
    for i in 0..appends {
        let count = 1 + i % 4;
        let records: Vec<Record> = (n..n + count).map(record).collect();
        assert_eq!(log.append(&records).unwrap().base_offset, n);
        n += count;
    }
    log.close().unwrap();
    n
}

fn active_segment(dir: &Path) -> PathBuf {
    common::segment_paths(dir).pop().unwrap().1
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Non-zero bytes right after the last batch.
    GarbageAfterLastBatch,
    /// The file ends in the middle of the last batch.
    CutMidBatch,
    /// The second half of the last batch is zeros (the write never reached it).
    HalfBatchZeroed,
    /// Only unwritten, zeroed preallocated space after the last batch.
    ZeroedPreallocation,
    /// Zeros, then non-zero bytes further on.
    GarbageAfterZeros,
}

#[derive(Debug, Clone, Copy)]
enum Shutdown {
    /// `recovery.ckpt` deleted: everything is scanned.
    Deleted,
    /// The clean flag cleared in the checkpoint written at close.
    Unclean,
    /// A checkpoint that covers the log only up to the start of its last batch.
    Behind,
    /// The checkpoint's bytes damaged (CRC mismatch): treated as missing.
    Garbled,
}

fn write_at(path: &Path, pos: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, pos).unwrap();
    f.sync_all().unwrap();
}

fn set_len(path: &Path, len: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
    f.sync_all().unwrap();
}

/// Damages a closed log and makes its shutdown look unclean; reopens and
/// checks the result. Returns the recovery report.
fn run(segment_bytes: u64, appends: u64, damage: Damage, shutdown: Shutdown) {
    if matches!((damage, shutdown), (Damage::HalfBatchZeroed, Shutdown::Unclean)) {
        // Not a crash state: the checkpoint would claim that the zeroed bytes
        // were fsynced. (Reads of them give Error::Corruption, see corruption.rs.)
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n = fill(dir.path(), segment_bytes, appends);
    let seg = active_segment(dir.path());
    let seg_base: u64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let bs = batches(&bytes);
    let &(last_pos, last) = bs.last().expect("the active segment holds batches");
    let data_end = last_pos + last.len as usize;
    // Make sure there is zeroed "preallocated" space after the data.
    if bytes.len() < data_end + 2048 {
        set_len(&seg, (data_end + 2048) as u64);
        bytes.resize(data_end + 2048, 0);
    }
    assert!(bytes[data_end..].iter().all(|&b| b == 0));
    let garbage: Vec<u8> = (0..100u32).map(|i| (i * 31 + 7) as u8 | 1).collect();

    // (records that survive, bytes expected cut from the tail or None if no damage)
    let (survivors, cut_expected): (u64, Option<u64>) = match damage {
        Damage::GarbageAfterLastBatch => {
            write_at(&seg, data_end as u64, &garbage);
            (n, Some((bytes.len() - data_end) as u64))
        }
        Damage::CutMidBatch => {
            let cut = last_pos + last.len as usize / 2;
            set_len(&seg, cut as u64);
            (last.base_offset, Some((cut - last_pos) as u64))
        }
        Damage::HalfBatchZeroed => {
            let half = last_pos + last.len as usize / 2;
            write_at(&seg, half as u64, &vec![0u8; data_end - half]);
            (last.base_offset, Some((bytes.len() - last_pos) as u64))
        }
        Damage::ZeroedPreallocation => (n, None),
        Damage::GarbageAfterZeros => {
            write_at(&seg, (data_end + 1000) as u64, &garbage);
            (n, Some((bytes.len() - data_end) as u64))
        }
    };

    let ckpt_path = dir.path().join(CKPT);
    let clean = checkpoint::decode(&std::fs::read(&ckpt_path).unwrap()).unwrap();
    assert!(clean.clean);
    assert_eq!(clean.segment_base, seg_base);
    match shutdown {
        Shutdown::Deleted => std::fs::remove_file(&ckpt_path).unwrap(),
        Shutdown::Unclean => {
            std::fs::write(&ckpt_path, checkpoint::encode(&Checkpoint { clean: false, ..clean })).unwrap();
        }
        Shutdown::Behind => {
            let max_ts = (seg_base..last.base_offset).map(ts_of).max().unwrap_or(i64::MIN);
            let behind = Checkpoint {
                segment_base: seg_base,
                position: last_pos as u64,
                next_offset: last.base_offset,
                max_ts,
                clean: false,
            };
            std::fs::write(&ckpt_path, checkpoint::encode(&behind)).unwrap();
        }
        Shutdown::Garbled => {
            let mut b = checkpoint::encode(&clean).to_vec();
            b[20] ^= 0x40;
            std::fs::write(&ckpt_path, b).unwrap();
        }
    }

    let ctx = format!("{damage:?} / {shutdown:?} / segment_bytes {segment_bytes}");
    let log = Log::open(dir.path(), config(segment_bytes)).unwrap();
    let report = log.recovery_report().clone();
    assert!(!report.clean, "{ctx}: {report:?}");
    if matches!(shutdown, Shutdown::Deleted | Shutdown::Garbled) {
        // Without a usable checkpoint every segment is scanned.
        assert!(
            report.scanned_bytes >= (data_end - last.len as usize) as u64,
            "{ctx}: {report:?}"
        );
    }
    assert_eq!(report.segments_removed, 0, "{ctx}: {report:?}");
    match cut_expected {
        Some(cut) => {
            assert_eq!(report.truncated_bytes, cut, "{ctx}: {report:?}");
            assert!(!report.damage.is_empty(), "{ctx}: {report:?}");
            let file_name = seg.file_name().unwrap().to_str().unwrap();
            assert!(report.damage.iter().all(|d| d.contains(file_name)), "{ctx}: {report:?}");
        }
        None => {
            assert_eq!(report.truncated_bytes, 0, "{ctx}: {report:?}");
            assert!(report.damage.is_empty(), "{ctx}: {report:?}");
        }
    }
    check_contents(&log, survivors);

    // The next append continues right after the intact records.
    let next = log.append(&[record(survivors)]).unwrap();
    assert_eq!(next.base_offset, survivors, "{ctx}");
    check_contents(&log, survivors + 1);
    log.close().unwrap();

    // A clean reopen sees the same.
    let log = Log::open(dir.path(), config(segment_bytes)).unwrap();
    assert!(log.recovery_report().clean, "{ctx}");
    assert!(log.recovery_report().damage.is_empty(), "{ctx}");
    check_contents(&log, survivors + 1);
    log.close().unwrap();
}

const DAMAGES: [Damage; 5] = [
    Damage::GarbageAfterLastBatch,
    Damage::CutMidBatch,
    Damage::HalfBatchZeroed,
    Damage::ZeroedPreallocation,
    Damage::GarbageAfterZeros,
];

const SHUTDOWNS: [Shutdown; 4] = [
    Shutdown::Deleted,
    Shutdown::Unclean,
    Shutdown::Behind,
    Shutdown::Garbled,
];

#[test]
fn garbage_after_last_batch_is_cut() {
    for s in SHUTDOWNS {
        run(1 << 20, 30, Damage::GarbageAfterLastBatch, s);
    }
}

#[test]
fn half_written_batch_is_cut_by_length() {
    for s in SHUTDOWNS {
        run(1 << 20, 30, Damage::CutMidBatch, s);
    }
}

#[test]
fn half_written_batch_followed_by_zeros_is_cut() {
    for s in SHUTDOWNS {
        run(1 << 20, 30, Damage::HalfBatchZeroed, s);
    }
}

#[test]
fn zeroed_preallocated_space_is_not_damage() {
    for s in SHUTDOWNS {
        run(1 << 20, 30, Damage::ZeroedPreallocation, s);
    }
}

#[test]
fn garbage_after_zeros_is_cut() {
    for s in SHUTDOWNS {
        run(1 << 20, 30, Damage::GarbageAfterZeros, s);
    }
}

#[test]
fn tail_damage_after_sealed_segments() {
    // Small segments: the damaged active segment follows sealed ones, which stay intact.
    for d in DAMAGES {
        for s in SHUTDOWNS {
            run(4096, 150, d, s);
        }
    }
}

#[test]
fn single_batch_cut_leaves_an_empty_log_that_accepts_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    log.append(&[record(0), record(1)]).unwrap();
    log.close().unwrap();
    let seg = active_segment(dir.path());
    set_len(&seg, 30);
    std::fs::remove_file(dir.path().join(CKPT)).unwrap();

    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.recovery_report().truncated_bytes, 30);
    assert_eq!(log.end_offset(), 0);
    assert!(log.read(0, 10).unwrap().is_empty());
    assert_eq!(log.append(&[record(0)]).unwrap().base_offset, 0);
    check_contents(&log, 1);
    log.close().unwrap();
}

#[test]
fn clean_checkpoint_with_a_shortened_segment_recovers_the_intact_prefix() {
    // The checkpoint says "clean" but the segment file was cut afterwards
    // (e.g. restored from an older copy): the intact records must not vanish.
    let dir = tempfile::tempdir().unwrap();
    let n = fill(dir.path(), 1 << 20, 20);
    let seg = active_segment(dir.path());
    let bytes = std::fs::read(&seg).unwrap();
    let bs = batches(&bytes);
    let (last_pos, last) = *bs.last().unwrap();
    set_len(&seg, (last_pos + 10) as u64);
    assert!(
        checkpoint::decode(&std::fs::read(dir.path().join(CKPT)).unwrap())
            .unwrap()
            .clean
    );

    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert!(!log.recovery_report().clean);
    assert!(!log.recovery_report().damage.is_empty());
    assert!(last.base_offset < n);
    check_contents(&log, last.base_offset);
    assert_eq!(
        log.append(&[record(last.base_offset)]).unwrap().base_offset,
        last.base_offset
    );
    log.close().unwrap();
}
