//! What compression puts on disk: fewer bytes, the topic's setting kept in
//! `topic.meta` across restarts, and directories written without compression
//! (and by the release before it) reading unchanged.

use logbus::{Broker, BrokerConfig, Compression, Record, TopicConfig};

use crate::{batch_codecs, check, record, CODECS};

fn segment_bytes(dir: &std::path::Path) -> u64 {
    crate::common::segment_paths(dir)
        .into_iter()
        .map(|(_, p)| {
            crate::common::batches(&std::fs::read(p).unwrap())
                .iter()
                .map(|(_, h)| u64::from(h.len))
                .sum::<u64>()
        })
        .sum()
}

#[test]
fn compressed_topics_take_fewer_bytes_and_keep_their_setting_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("none", TopicConfig::new(1)).unwrap();
    for (c, _) in CODECS {
        broker
            .create_topic(c.name(), TopicConfig::new(1).compression(c))
            .unwrap();
    }
    let p = broker.producer();
    for t in ["none", "lz4", "zstd"] {
        for chunk in 0..10u64 {
            p.send_batch(t, (chunk * 500..(chunk + 1) * 500).map(record)).unwrap();
        }
    }
    let plain = segment_bytes(&dir.path().join("none/0"));
    for (c, _) in CODECS {
        let packed = segment_bytes(&dir.path().join(c.name()).join("0"));
        assert!(packed * 3 < plain, "{c}: {packed} bytes against {plain} uncompressed");
    }
    broker.close().unwrap();

    let meta = std::fs::read(dir.path().join("zstd/topic.meta")).unwrap();
    assert_eq!((meta[4], meta[72]), (2, 2), "topic.meta version 2, codec zstd");
    let broker = Broker::open(dir.path()).unwrap();
    for (c, _) in CODECS {
        let topic = broker.topic(c.name()).unwrap();
        assert_eq!(topic.config().compression_type(), c);
        let recs = crate::common::read_all(&topic, 0);
        assert_eq!(recs.len(), 5_000);
        // Appends after the restart are compressed with the persisted codec.
        broker
            .producer()
            .send_batch(c.name(), (5_000..5_100).map(record))
            .unwrap();
        let last = batch_codecs(&dir.path().join(c.name()).join("0")).pop().unwrap();
        assert!(last.1.is_some(), "{c}: {last:?}");
    }
    assert_eq!(
        broker.topic("none").unwrap().config().compression_type(),
        Compression::None
    );
}

/// What the release before compression wrote: topic.meta version 1 (byte 7
/// reserved) and version 1 batches. It opens and reads as before, as a
/// topic without compression.
#[test]
fn a_directory_written_without_compression_reads_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("old", TopicConfig::new(2)).unwrap();
        let p = broker.producer();
        for i in 0..400 {
            p.send("old", record(i).with_partition((i % 2) as u32)).unwrap();
        }
        p.send_batch("old", (400..600).map(|i| record(i).with_partition((i % 2) as u32)))
            .unwrap();
        broker.close().unwrap();
    }
    // Rewrite topic.meta as version 1, the format of the previous release.
    let meta_path = dir.path().join("old/topic.meta");
    let mut meta = std::fs::read(&meta_path).unwrap();
    assert_eq!(meta[7], 0);
    meta[4] = 1;
    let crc = crc32fast::hash(&meta[..48]);
    meta[48..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&meta_path, &meta).unwrap();
    for part in ["0", "1"] {
        let batches = batch_codecs(&dir.path().join("old").join(part));
        assert!(batches.iter().all(|(h, c)| h.version == 1 && c.is_none()));
    }

    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker.topic("old").unwrap();
    assert_eq!(topic.config().compression_type(), Compression::None);
    for part in 0..2u32 {
        let recs = crate::common::read_all(&topic, part);
        assert_eq!(recs.len(), 300);
        for (k, r) in recs.iter().enumerate() {
            let i = 2 * k as u64 + u64::from(part);
            assert_eq!(r.value(), crate::json(i).as_slice());
            assert_eq!(
                r.key().map(<[u8]>::to_vec),
                (i % 2 == 1).then(|| format!("key-{i}").into_bytes())
            );
        }
    }
}

#[test]
fn kafka_compression_type_names() {
    for (value, want) in [
        ("none", Compression::None),
        ("producer", Compression::None),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let c = TopicConfig::from_properties(&[("compression.type", value)]).unwrap();
        assert_eq!(c.compression_type(), want, "{value}");
    }
    for value in ["gzip", "snappy"] {
        let e = TopicConfig::from_properties(&[("compression.type", value)]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("compression.type") && msg.contains("lz4"), "{msg}");
    }
    let e = TopicConfig::from_properties(&[("compression.type", "brotli")]).unwrap_err();
    assert!(matches!(e, logbus::Error::InvalidConfig { .. }), "{e}");
    let described = TopicConfig::new(1).compression(Compression::Zstd).to_properties();
    assert!(
        described.contains(&("compression.type", "zstd".to_string())),
        "{described:?}"
    );
    // server.properties' compression.type is the default of new topics.
    let dir = tempfile::tempdir().unwrap();
    let broker_config = BrokerConfig::from_properties(&[("compression.type", "lz4")]).unwrap();
    let broker = Broker::open_with(dir.path(), broker_config).unwrap();
    let t = broker.create_topic("d", TopicConfig::new(1)).unwrap();
    assert_eq!(t.config().compression_type(), Compression::Lz4);
    let t = broker
        .create_topic("e", TopicConfig::new(1).compression(Compression::None))
        .unwrap();
    assert_eq!(t.config().compression_type(), Compression::None);
    broker.producer().send("d", Record::new("x")).unwrap();
    check_one(&t);
}

fn check_one(t: &logbus::Topic) {
    assert_eq!(t.partition(0).unwrap().end_offset(), 0);
}

#[test]
fn records_read_before_a_restart_match_those_after() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker
        .create_topic("t", TopicConfig::new(1).compression(Compression::Lz4))
        .unwrap();
    broker.producer().send_batch("t", (0..1_000).map(record)).unwrap();
    drop(broker); // no clean close: recovery scans and decompresses
    let broker = Broker::open(dir.path()).unwrap();
    let recs = crate::common::read_all(&broker.topic("t").unwrap(), 0);
    assert_eq!(recs.len(), 1_000);
    for r in &recs {
        check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
    }
}
