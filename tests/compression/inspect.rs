//! The read-only tools decompress through the same walker: the inspector's
//! reader, `verify` and the batches `dump` prints.

use logbus::inspect::{BatchStatus, Inspector, SegmentFile, WalkOptions};
use logbus::{Broker, TopicConfig};

use crate::{check, record, CODECS};

#[test]
fn reader_verify_and_dump_read_compressed_batches() {
    for (c, codec) in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(1).compression(c)).unwrap();
        broker.producer().send_batch("t", (0..1_500).map(record)).unwrap();

        // Next to the running owner, as the tools run.
        let inspector = Inspector::open(dir.path()).unwrap();
        assert_eq!(inspector.topic_meta("t").unwrap().compression, c as u8);
        let mut reader = inspector.reader("t", 0, 700).unwrap();
        let mut got = Vec::new();
        loop {
            let batch = reader.poll(400).unwrap();
            if batch.is_empty() {
                break;
            }
            got.extend(batch);
        }
        assert_eq!(got.len(), 800, "{c}");
        for (k, r) in got.iter().enumerate() {
            assert_eq!(r.offset(), 700 + k as u64);
            check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
        }

        let verified = inspector.verify_partition("t", 0, &mut |_| {}).unwrap();
        assert!(verified.is_ok(), "{c}: {verified:?}");
        assert_eq!(verified.records(), 1_500);

        // dump's walk: every batch is the codec's and lists its records.
        let seg = SegmentFile::open(dir.path().join("t/0/00000000000000000000.log")).unwrap();
        let topic: std::sync::Arc<str> = "t".into();
        let mut offsets = Vec::new();
        seg.walk(0, Some(0), WalkOptions::default(), &mut |b| {
            assert_eq!(b.status, BatchStatus::Ok);
            assert_eq!(
                logbus::format::compress::Codec::from_attributes(b.header.attributes),
                Ok(Some(codec))
            );
            offsets.extend(b.records(&topic, 0).map(|r| r.offset()));
            true
        })
        .unwrap();
        assert_eq!(offsets, (0..1_500).collect::<Vec<u64>>());
        broker.close().unwrap();
    }
}

#[test]
fn verify_and_dump_report_bad_compressed_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker
            .create_topic("t", TopicConfig::new(1).compression(logbus::Compression::Lz4))
            .unwrap();
        for b in 0..3u64 {
            broker
                .producer()
                .send_batch("t", (b * 100..(b + 1) * 100).map(record))
                .unwrap();
        }
        broker.close().unwrap();
    }
    let path = dir.path().join("t/0/00000000000000000000.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let batches = crate::common::batches(&bytes);
    let (pos, h) = batches[1];
    let end = pos + h.len as usize;
    bytes[pos + 60..end].fill(0xff);
    let crc = crc32fast::hash(&bytes[pos + 12..end]);
    bytes[pos + 8..pos + 12].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();

    let inspector = Inspector::open(dir.path()).unwrap();
    let verified = inspector.verify_partition("t", 0, &mut |_| {}).unwrap();
    assert!(!verified.is_ok());
    let (at, why) = verified.segments[0].damage.clone().unwrap();
    assert_eq!(at, pos as u64, "{why}");
    assert!(why.contains("bad compressed records"), "{why}");

    // dump walks past it and shows no record of it.
    let seg = SegmentFile::open(&path).unwrap();
    let topic: std::sync::Arc<str> = "t".into();
    let mut seen = Vec::new();
    let opts = WalkOptions {
        past_bad_batches: true,
        check_zero_tail: true,
    };
    seg.walk(0, Some(0), opts, &mut |b| {
        seen.push((b.header.base_offset, b.status.clone(), b.records(&topic, 0).count()));
        true
    })
    .unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[0].0, seen[0].2), (0, 100));
    assert!(
        matches!(&seen[1].1, BatchStatus::Bad(why) if why.contains("bad compressed")),
        "{seen:?}"
    );
    assert_eq!(seen[1].2, 0);
    assert_eq!((seen[2].0, seen[2].2), (200, 100));
}
