//! Records written compressed read back the same through every read path:
//! `read`, `read_with`, `poll`, `poll_with`, consumer groups, time lookups,
//! `verify`, truncation; per topic and per producer.

use std::time::Duration;

use logbus::{Broker, Compression, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::{batch_codecs, check, record, CODECS};

const N: u64 = 3_000;

fn produce(broker: &Broker, topic: &str, producer: &logbus::Producer) {
    // Batches of 500, then single sends: both shapes an application uses.
    for start in (0..N - 10).step_by(500) {
        let end = (start + 500).min(N - 10);
        producer.send_batch(topic, (start..end).map(record)).unwrap();
    }
    for i in N - 10..N {
        producer.send(topic, record(i)).unwrap();
    }
    assert_eq!(broker.topic(topic).unwrap().partition(0).unwrap().end_offset(), N);
}

#[test]
fn every_read_path_returns_what_was_sent_for_each_codec() {
    for (compression, codec) in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        let topic = broker
            .create_topic("t", TopicConfig::new(1).compression(compression))
            .unwrap();
        produce(&broker, "t", &broker.producer());
        let p = topic.partition(0).unwrap();

        // On disk: the batches of send_batch are compressed with the codec.
        let batches = batch_codecs(&dir.path().join("t/0"));
        let compressed: u64 = batches
            .iter()
            .filter(|(_, c)| *c == Some(codec))
            .map(|(h, _)| u64::from(h.count))
            .sum();
        assert!(compressed >= N - 10, "{compression}: {compressed} records compressed");
        assert!(batches.iter().all(|(_, c)| c.is_none() || *c == Some(codec)));

        // read: owned records stay valid after the call and after more reads.
        let mut all = Vec::new();
        let mut at = 0;
        while at < N {
            let got = p.read(at, 700).unwrap();
            assert!(!got.is_empty());
            at = got.last().unwrap().offset() + 1;
            all.extend(got);
        }
        assert_eq!(all.len() as u64, N);
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.offset(), i as u64);
            check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
        }
        // From the middle of a compressed batch.
        let mid = p.read(1234, 3).unwrap();
        assert_eq!(mid.iter().map(|r| r.offset()).collect::<Vec<_>>(), [1234, 1235, 1236]);

        // read_with: lent records.
        let mut seen = 0u64;
        let next = p
            .read_with(17, 2_000, |r| {
                assert_eq!(r.offset(), 17 + seen);
                check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
                seen += 1;
            })
            .unwrap();
        assert_eq!((seen, next), (2_000, 2_017));

        // Time lookups and verify decompress too.
        assert_eq!(p.offset_for_timestamp(1_700_000_000_000 + 2_500).unwrap(), Some(2_500));
        assert_eq!(p.verify().unwrap(), N);

        // poll and poll_with of an assigned consumer.
        let tp = TopicPartition::new("t", 0);
        let mut c = broker
            .consumer(
                ConsumerConfig::new()
                    .offset_reset(OffsetReset::Earliest)
                    .max_poll_records(333),
            )
            .unwrap();
        c.assign(std::slice::from_ref(&tp)).unwrap();
        let mut polled = Vec::new();
        while (polled.len() as u64) < N / 2 {
            polled.extend(c.poll(Duration::from_secs(5)).unwrap());
        }
        let mut lent = 0u64;
        while polled.len() as u64 + lent < N {
            let base = polled.len() as u64 + lent;
            let mut k = 0;
            lent += c
                .poll_with(Duration::from_secs(5), |r| {
                    assert_eq!(r.offset(), base + k);
                    check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
                    k += 1;
                })
                .unwrap() as u64;
        }
        for (i, r) in polled.iter().enumerate() {
            assert_eq!(r.offset(), i as u64);
            check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
        }
        drop(broker);
        // Still valid once the broker is gone: they hold the decompressed batch.
        check(
            all[2_999].offset(),
            all[2_999].key(),
            all[2_999].value(),
            all[2_999].timestamp(),
            all[2_999].headers().collect(),
        );
        check(
            polled[5].offset(),
            polled[5].key(),
            polled[5].value(),
            polled[5].timestamp(),
            polled[5].headers().collect(),
        );
    }
}

#[test]
fn consumer_groups_read_compressed_partitions_and_resume_from_commits() {
    for (compression, _) in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker
            .create_topic("g", TopicConfig::new(3).compression(compression))
            .unwrap();
        broker
            .producer()
            .send_batch("g", (0..900).map(|i| record(i).with_partition((i % 3) as u32)))
            .unwrap();
        let config = || {
            ConsumerConfig::new()
                .group("billing")
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(100)
        };
        let mut first = broker.consumer(config()).unwrap();
        first.subscribe(&["g"]).unwrap();
        let mut got = 0;
        while got < 450 {
            got += first.poll(Duration::from_secs(5)).unwrap().len();
        }
        first.commit().unwrap();
        first.close().unwrap();
        let mut second = broker.consumer(config()).unwrap();
        second.subscribe(&["g"]).unwrap();
        let mut rest = 0;
        let mut offsets = Vec::new();
        while got + rest < 900 {
            let recs = second.poll(Duration::from_secs(5)).unwrap();
            for r in recs.iter() {
                // Record i went to partition i % 3 at offset i / 3.
                let i = r.offset() * 3 + u64::from(r.partition());
                assert_eq!(r.value(), crate::json(i).as_slice());
                offsets.push((r.partition(), r.offset()));
            }
            rest += recs.len();
        }
        assert_eq!(got + rest, 900, "{compression}: every record exactly once");
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), rest, "no record read twice after the commit");
    }
}

#[test]
fn a_producer_override_wins_over_the_topic_setting() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("plain", TopicConfig::new(1)).unwrap();
    broker
        .create_topic("zstd", TopicConfig::new(1).compression(Compression::Zstd))
        .unwrap();
    let lz4 = broker.producer().with_compression(Compression::Lz4).unwrap();
    let none = broker.producer().with_compression(Compression::None).unwrap();
    lz4.send_batch("plain", (0..200).map(record)).unwrap();
    none.send_batch("zstd", (0..200).map(record)).unwrap();
    broker.producer().send_batch("zstd", (200..400).map(record)).unwrap();
    let codecs = |t: &str| {
        batch_codecs(&dir.path().join(t).join("0"))
            .into_iter()
            .map(|(_, c)| c)
            .collect::<Vec<_>>()
    };
    use logbus::format::compress::Codec;
    assert!(
        codecs("plain").iter().all(|c| *c == Some(Codec::Lz4)),
        "{:?}",
        codecs("plain")
    );
    let z = codecs("zstd");
    assert_eq!(z.first(), Some(&None), "the override wrote plain batches: {z:?}");
    assert_eq!(z.last(), Some(&Some(Codec::Zstd)), "the topic's codec otherwise: {z:?}");
    for t in ["plain", "zstd"] {
        let recs = crate::common::read_all(&broker.topic(t).unwrap(), 0);
        for r in &recs {
            check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
        }
        assert_eq!(recs.len(), if t == "plain" { 200 } else { 400 });
    }
    // The producer it was made from keeps the topic's setting.
    assert!(format!("{lz4:?}").contains("Lz4"));
}

#[test]
fn truncating_inside_a_compressed_batch_keeps_the_records_before_the_cut() {
    use logbus::log::Log;
    use logbus::{Durability, LogConfig};
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::from_topic(
        &TopicConfig::new(1).compression(Compression::Zstd),
        Durability::PageCache,
    );
    let log = Log::open(dir.path(), config.clone()).unwrap();
    let recs: Vec<Record> = (0..300).map(record).collect();
    log.append(&recs).unwrap();
    log.truncate(123).unwrap();
    assert_eq!(log.end_offset(), 123);
    log.append(&recs[123..130]).unwrap();
    let got = log.read(0, 1_000).unwrap();
    assert_eq!(got.len(), 130);
    for r in &got {
        check(r.offset(), r.key(), r.value(), r.timestamp(), r.headers().collect());
    }
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.verify().unwrap(), 130);
}

/// A consumer whose poll stops inside a compressed batch continues from the
/// same decompressed batch (its read cursor keeps it): the records of both
/// polls lie in one buffer, next to each other.
#[test]
fn a_poll_that_stops_inside_a_compressed_batch_does_not_decompress_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker
        .create_topic("t", TopicConfig::new(1).compression(Compression::Lz4))
        .unwrap();
    broker.producer().send_batch("t", (0..100).map(record)).unwrap();
    assert_eq!(batch_codecs(&dir.path().join("t/0")).len(), 1, "one compressed batch");
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(10),
        )
        .unwrap();
    c.assign(&[TopicPartition::new("t", 0)]).unwrap();
    let first = c.poll(Duration::from_secs(5)).unwrap();
    let second = c.poll(Duration::from_secs(5)).unwrap();
    let last = first.iter().last().unwrap();
    let next = second.iter().next().unwrap();
    assert_eq!((last.offset(), next.offset()), (9, 10));
    let gap = next.value().as_ptr() as usize - last.value().as_ptr() as usize;
    assert!(
        gap > 0 && gap < 400,
        "offsets 9 and 10 are {gap} bytes apart: not in one decompressed batch"
    );
}

/// `send_async` appends with the producer's codec, as `send` does.
#[cfg(feature = "async")]
#[test]
fn async_sends_use_the_producers_compression() {
    use logbus::{Broker, Compression, TopicConfig};
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let producer = broker.producer().with_compression(Compression::Lz4).unwrap();
    // One record per batch: a value compression surely shrinks.
    let value = "abcdefgh".repeat(250);
    smol::block_on(producer.send_async("t", logbus::Record::new(value.clone()))).unwrap();
    let batches = crate::batch_codecs(&dir.path().join("t/0"));
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].1, Some(logbus::format::compress::Codec::Lz4), "{batches:?}");
    let read = broker.topic("t").unwrap().partition(0).unwrap().read(0, 1).unwrap();
    assert_eq!(read[0].value(), value.as_bytes());
    broker.close().unwrap();
}

/// Compaction keeps compressed batches whole (a producer's override on a
/// compacted topic), compacts the plain ones around them, and never loses a
/// key's latest value; a compacted topic cannot be compressed by its config.
#[test]
fn compaction_keeps_compressed_batches_whole() {
    use logbus::{Broker, CleanupPolicy, Compression, Error, Record, TopicConfig};
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let compacted = TopicConfig::new(1)
        .segment_bytes(4096)
        .cleanup_policy(CleanupPolicy::Compact);
    let refused = broker
        .create_topic("zipped", compacted.clone().compression(Compression::Lz4))
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::InvalidConfig {
                field: "compression",
                ..
            }
        ),
        "{refused}"
    );
    let topic = broker.create_topic("table", compacted).unwrap();
    let plain = broker.producer();
    let zipped = broker.producer().with_compression(Compression::Lz4).unwrap();
    let mut latest = std::collections::BTreeMap::new();
    for round in 0..30u64 {
        let recs: Vec<Record> = (0..10u64)
            .map(|k| Record::new(format!("{}{round}", "v".repeat(200))).with_key(format!("k{k}")))
            .collect();
        let p = if round % 3 == 0 { &zipped } else { &plain };
        p.send_batch("table", recs).unwrap();
        for k in 0..10u64 {
            latest.insert(format!("k{k}"), format!("{}{round}", "v".repeat(200)));
        }
    }
    assert!(crate::batch_codecs(&dir.path().join("table/0"))
        .iter()
        .any(|(_, c)| c.is_some()));
    topic.compact().unwrap();
    let p = topic.partition(0).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let mut offset = p.start_offset();
    while offset < p.end_offset() {
        let batch = p.read(offset, 1000).unwrap();
        let Some(last) = batch.last() else { break };
        offset = last.offset() + 1;
        for r in &batch {
            seen.insert(
                String::from_utf8(r.key().unwrap().to_vec()).unwrap(),
                String::from_utf8(r.value().to_vec()).unwrap(),
            );
        }
    }
    assert_eq!(seen, latest, "the last value of every key, in offset order");
    assert!(
        crate::batch_codecs(&dir.path().join("table/0"))
            .iter()
            .any(|(_, c)| c.is_some()),
        "compressed batches kept"
    );
    broker.close().unwrap();
}
