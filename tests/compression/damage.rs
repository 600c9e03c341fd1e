//! Damage to compressed batches: a torn one is cut by recovery like any
//! other, bad compressed data or a decompression bomb with an intact CRC is
//! `Error::Corruption` naming the segment file and the byte, on every path.

use std::path::{Path, PathBuf};

use logbus::log::Log;
use logbus::{Compression, Durability, Error, LogConfig, Record, TopicConfig};

use crate::{check, record, CODECS};

fn config(c: Compression) -> LogConfig {
    LogConfig::from_topic(&TopicConfig::new(1).compression(c), Durability::PageCache)
}

/// A log of three compressed batches of 200 records each, closed.
fn three_batches(dir: &Path, c: Compression) -> (PathBuf, Vec<(usize, logbus::format::batch::BatchHeader)>) {
    let log = Log::open(dir, config(c)).unwrap();
    for b in 0..3u64 {
        let recs: Vec<Record> = (b * 200..(b + 1) * 200).map(record).collect();
        log.append(&recs).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let seg = dir.join("00000000000000000000.log");
    let batches = crate::common::batches(&std::fs::read(&seg).unwrap());
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|(_, h)| h.is_compressed() && h.count == 200));
    (seg, batches)
}

/// Rewrites the batch at `pos` with `edit`, then recomputes its CRC (damage
/// a CRC cannot see: a bug, or a hostile file).
fn edit_batch(seg: &Path, pos: usize, edit: impl FnOnce(&mut [u8])) {
    let mut bytes = std::fs::read(seg).unwrap();
    let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
    edit(&mut bytes[pos..pos + len]);
    let crc = crc32fast::hash(&bytes[pos + 12..pos + len]);
    bytes[pos + 8..pos + 12].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(seg, bytes).unwrap();
}

fn corruption_at(e: Error) -> (PathBuf, u64, String) {
    match e {
        Error::Corruption { path, position, reason } => (path, position, reason),
        other => panic!("expected Corruption, got {other:?}"),
    }
}

#[test]
fn a_torn_compressed_batch_is_cut_by_recovery_and_the_rest_reads() {
    for (c, _) in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let (seg, batches) = three_batches(dir.path(), c);
        let (pos, h) = batches[2];
        // The last batch half written: a crash mid-append.
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len((pos + h.len as usize / 2) as u64).unwrap();
        drop(f);
        std::fs::remove_file(dir.path().join("recovery.ckpt")).ok();
        let log = Log::open(dir.path(), config(c)).unwrap();
        assert_eq!(log.end_offset(), 400, "{c}");
        let report = log.recovery_report();
        assert!(report.truncated_bytes > 0, "{c}: {report:?}");
        let got = log.read(0, 1_000).unwrap();
        assert_eq!(got.len(), 400);
        for r in &got {
            check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
        }
        // Appends go on from there, compressed.
        log.append(&(400..450).map(record).collect::<Vec<_>>()).unwrap();
        assert_eq!(log.verify().unwrap(), 450);
    }
}

#[test]
fn bad_compressed_data_is_corruption_naming_the_file_and_byte() {
    for (c, _) in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let (seg, batches) = three_batches(dir.path(), c);
        let (pos, _) = batches[1];
        // Keep header and stated length; garble every compressed byte.
        edit_batch(&seg, pos, |b| b[60..].fill(0xff));
        let log = Log::open(dir.path(), config(c)).unwrap();
        // The batch before the damage still reads.
        assert_eq!(log.read(0, 200).unwrap().len(), 200);
        let (path, position, reason) = corruption_at(log.read(200, 10).unwrap_err());
        assert_eq!(path, seg, "{c}");
        assert_eq!(position, (pos + 60) as u64, "{c}: {reason}");
        assert!(
            reason.contains("bad compressed records in the batch at offset 200"),
            "{reason}"
        );
        let mut seen = 0;
        let e = log.read_with(150, 100, |_| seen += 1).unwrap_err();
        assert_eq!(corruption_at(e).1, (pos + 60) as u64);
        assert_eq!(seen, 50, "records of the batch before the damage are lent");
        assert_eq!(corruption_at(log.verify().unwrap_err()).1, (pos + 60) as u64);
        // The batch after it is reached through the index or a seek.
        assert_eq!(log.read(400, 10).unwrap().len(), 10);
    }
}

#[test]
fn a_decompression_bomb_is_refused_by_the_size_limit() {
    for (c, _) in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let (seg, batches) = three_batches(dir.path(), c);
        let (pos, _) = batches[0];
        // A small batch claiming 4 GiB of records.
        edit_batch(&seg, pos, |b| b[56..60].copy_from_slice(&u32::MAX.to_le_bytes()));
        let log = Log::open(dir.path(), config(c)).unwrap();
        let (path, position, reason) = corruption_at(log.read(0, 10).unwrap_err());
        assert_eq!((path, position), (seg.clone(), (pos + 56) as u64));
        assert!(
            reason.contains("16 MiB limit") && reason.contains("4294967295 bytes"),
            "{reason}"
        );
        // One byte too many for what the data holds: damage too, never a short record.
        drop(log);
        let dir = tempfile::tempdir().unwrap();
        let (seg, batches) = three_batches(dir.path(), c);
        let (pos, _) = batches[0];
        edit_batch(&seg, pos, |b| {
            let n = u32::from_le_bytes(b[56..60].try_into().unwrap());
            b[56..60].copy_from_slice(&(n + 1).to_le_bytes());
        });
        let log = Log::open(dir.path(), config(c)).unwrap();
        let (_, position, reason) = corruption_at(log.read(0, 10).unwrap_err());
        assert!((pos as u64 + 56..pos as u64 + 61).contains(&position), "{reason}");
    }
}

#[test]
fn recovery_cuts_a_batch_whose_compressed_data_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, batches) = three_batches(dir.path(), Compression::Zstd);
    let (pos, _) = batches[2];
    edit_batch(&seg, pos, |b| b[60..64].copy_from_slice(b"junk"));
    // No checkpoint: recovery scans, decompressing every batch.
    std::fs::remove_file(dir.path().join("recovery.ckpt")).unwrap();
    let log = Log::open(dir.path(), config(Compression::Zstd)).unwrap();
    assert_eq!(log.end_offset(), 400);
    let damage = &log.recovery_report().damage;
    assert!(
        damage
            .iter()
            .any(|d| d.contains("bad compressed records in the batch at offset 400")),
        "{damage:?}"
    );
}
