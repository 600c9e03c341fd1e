//! Sending borrowed records (`send_borrowed`, `send_batch_borrowed`,
//! `Log::append_borrowed`): the same bytes on disk, the same routing and the
//! same all-or-nothing validation as owned `Record`s.

use logbus::log::Log;
use logbus::{BorrowedRecord, Broker, ConsumedRecord, Durability, Error, LogConfig, Record, TopicConfig};
use proptest::prelude::*;

use crate::common;
use common::read_all;

type Fields = (u64, Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>, i64);

fn fields(r: &ConsumedRecord) -> Fields {
    (
        r.offset(),
        r.key().map(<[u8]>::to_vec),
        r.value().to_vec(),
        r.headers().map(|(n, v)| (n.to_string(), v.to_vec())).collect(),
        r.timestamp(),
    )
}

#[test]
fn borrowed_and_owned_sends_store_identical_records_and_route_alike() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let owned = broker.create_topic("owned", TopicConfig::new(3)).unwrap();
    let lent = broker.create_topic("lent", TopicConfig::new(3)).unwrap();
    let producer = broker.producer();
    let headers: [(&str, &[u8]); 2] = [("trace", b"abc"), ("empty", b"")];
    let mut buf = Vec::new();
    for i in 0..60u32 {
        // One buffer reused for every value: the send copies it.
        buf.clear();
        buf.extend_from_slice(format!("value-{i}").as_bytes());
        let key = format!("k{}", i % 7);
        let mut b = BorrowedRecord::new(&buf)
            .with_key(key.as_bytes())
            .with_timestamp(1_000 + i64::from(i));
        if i % 3 == 0 {
            b = b.with_headers(&headers);
        }
        if i % 10 == 0 {
            b = b.with_partition(2);
        }
        let m1 = producer.send("owned", b.to_record()).unwrap();
        let m2 = producer.send_borrowed("lent", b).unwrap();
        assert_eq!(
            (m1.partition(), m1.offset(), m1.timestamp()),
            (m2.partition(), m2.offset(), m2.timestamp())
        );
        assert_eq!(m2.topic(), "lent");
    }
    for p in 0..3 {
        let a: Vec<Fields> = read_all(&owned, p).iter().map(fields).collect();
        let b: Vec<Fields> = read_all(&lent, p).iter().map(fields).collect();
        assert_eq!(a, b, "partition {p}");
    }
    let total: usize = (0..3).map(|p| read_all(&lent, p).len()).sum();
    assert_eq!(total, 60);
}

#[test]
fn borrowed_batch_is_all_or_nothing_across_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let topic = broker
        .create_topic("t", TopicConfig::new(2).max_record_bytes(100))
        .unwrap();
    let producer = broker.producer();
    let big = [7u8; 101];
    let bad = [
        BorrowedRecord::new(b"a").with_partition(0),
        BorrowedRecord::new(&big).with_partition(1),
    ];
    assert!(matches!(
        producer.send_batch_borrowed("t", &bad),
        Err(Error::RecordTooLarge { .. })
    ));
    let unknown = [BorrowedRecord::new(b"a"), BorrowedRecord::new(b"b").with_partition(9)];
    assert!(matches!(
        producer.send_batch_borrowed("t", &unknown),
        Err(Error::UnknownPartition { partition: 9, .. })
    ));
    assert_eq!(topic.partition(0).unwrap().end_offset(), 0);
    assert_eq!(topic.partition(1).unwrap().end_offset(), 0);

    // A good batch spread over both partitions: metadata in input order,
    // offsets consecutive per partition.
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    let rs: Vec<BorrowedRecord<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| BorrowedRecord::new(v.as_bytes()).with_partition((i % 2) as u32))
        .collect();
    let md = producer.send_batch_borrowed("t", &rs).unwrap();
    assert_eq!(md.len(), 10);
    for (i, m) in md.iter().enumerate() {
        assert_eq!(m.partition(), (i % 2) as u32);
        assert_eq!(m.offset(), (i / 2) as u64);
        let back = topic.partition(m.partition()).unwrap().read(m.offset(), 1).unwrap();
        assert_eq!(back[0].value(), values[i].as_bytes());
    }
    assert!(matches!(
        producer.send_borrowed("nope", BorrowedRecord::new(b"x")),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(producer.send_batch_borrowed("t", &[]).unwrap().is_empty());
}

#[test]
fn log_append_borrowed_reads_back_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || LogConfig::from_topic(&TopicConfig::new(1).segment_bytes(4096), Durability::PageCache);
    {
        let log = Log::open(dir.path(), cfg()).unwrap();
        let vals: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().repeat(10)).collect();
        for chunk in vals.chunks(7) {
            let rs: Vec<BorrowedRecord<'_>> = chunk.iter().map(|v| BorrowedRecord::new(v)).collect();
            log.append_borrowed(&rs).unwrap();
        }
        assert!(log.segment_count() > 1, "the appends should have rolled segments");
        log.close().unwrap();
    }
    let log = Log::open(dir.path(), cfg()).unwrap();
    let back = log.read(0, 1000).unwrap();
    assert_eq!(back.len(), 200);
    for (i, r) in back.iter().enumerate() {
        assert_eq!(r.value(), (i as u32).to_le_bytes().repeat(10).as_slice());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any batch sent borrowed reads back exactly as its owned copy does.
    #[test]
    fn borrowed_batches_read_back_like_owned_ones(
        recs in prop::collection::vec(
            (
                prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
                prop::collection::vec(any::<u8>(), 0..300),
                prop::collection::vec(("[a-z]{0,8}", prop::collection::vec(any::<u8>(), 0..10)), 0..3),
                prop::option::of(0i64..1_000_000),
            ),
            1..40,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        let a = broker.create_topic("a", TopicConfig::new(1)).unwrap();
        let b = broker.create_topic("b", TopicConfig::new(1)).unwrap();
        let hdrs: Vec<Vec<(&str, &[u8])>> = recs
            .iter()
            .map(|(_, _, h, _)| h.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect())
            .collect();
        let borrowed: Vec<BorrowedRecord<'_>> = recs
            .iter()
            .zip(&hdrs)
            .map(|((k, v, _, ts), h)| {
                let mut r = BorrowedRecord::new(v).with_headers(h).with_timestamp(ts.unwrap_or(42));
                if let Some(k) = k {
                    r = r.with_key(k);
                }
                r
            })
            .collect();
        let owned: Vec<Record> = borrowed.iter().map(BorrowedRecord::to_record).collect();
        let p = broker.producer();
        p.send_batch("a", owned).unwrap();
        p.send_batch_borrowed("b", &borrowed).unwrap();
        let ra: Vec<Fields> = read_all(&a, 0).iter().map(fields).collect();
        let rb: Vec<Fields> = read_all(&b, 0).iter().map(fields).collect();
        prop_assert_eq!(ra.len(), recs.len());
        prop_assert_eq!(ra, rb);
    }
}
