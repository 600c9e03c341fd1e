//! `Consumer::poll_with` (records lent to a closure) delivers what `poll`
//! delivers, in the same order per partition, moves positions and commits
//! the same way, waits and times out the same way; and both hand out the
//! records before a damaged batch, then report the damage on the next poll.

use std::time::Duration;

use logbus::{
    Broker, ConsumedRecord, Consumer, ConsumerConfig, Error, OffsetReset, Record, RecordView, TopicConfig,
    TopicPartition,
};
use proptest::prelude::*;

use crate::common;
use common::{batches, segment_paths};

type Seen = (u32, u64, i64, Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>);

/// What a test compares of a record (a `RecordView` or a `ConsumedRecord`).
macro_rules! seen {
    ($r:expr) => {{
        let r = $r;
        (
            r.partition(),
            r.offset(),
            r.timestamp(),
            r.key().map(<[u8]>::to_vec),
            r.value().to_vec(),
            r.headers().map(|(n, v)| (n.to_string(), v.to_vec())).collect(),
        )
    }};
}

fn of_view(r: RecordView<'_>) -> Seen {
    seen!(r)
}

fn of_owned(r: &ConsumedRecord) -> Seen {
    seen!(r)
}

fn record(i: u64) -> Record {
    let mut r = Record::new(format!("value {i} {}", "x".repeat((i % 17) as usize)))
        .with_timestamp(1_700_000_000_000 + (i % 50) as i64);
    if !i.is_multiple_of(3) {
        r = r.with_key(format!("key {}", i % 11));
    }
    if i.is_multiple_of(4) {
        r = r.with_header("h", vec![i as u8; (i % 3) as usize]);
    }
    r
}

fn consumer(broker: &Broker, partitions: u32, max: usize) -> Consumer {
    let mut c = broker
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(max),
        )
        .unwrap();
    let tps: Vec<_> = (0..partitions).map(|p| TopicPartition::new("t", p)).collect();
    c.assign(&tps).unwrap();
    c
}

/// Everything `poll` and `poll_with` deliver, poll by poll, until `n` records.
fn drain(broker: &Broker, partitions: u32, max: usize, n: usize) -> (Vec<Vec<Seen>>, Vec<Vec<Seen>>) {
    let (mut owned, mut lent) = (consumer(broker, partitions, max), consumer(broker, partitions, max));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    while a.iter().map(Vec::len).sum::<usize>() < n {
        let polled = owned.poll(Duration::from_secs(5)).unwrap();
        assert!(!polled.is_empty() && polled.len() <= max);
        a.push(polled.iter().map(of_owned).collect());
    }
    while b.iter().map(Vec::len).sum::<usize>() < n {
        let mut got = Vec::new();
        let k = lent
            .poll_with(Duration::from_secs(5), |r| got.push(of_view(r)))
            .unwrap();
        assert_eq!(k, got.len());
        assert!(k > 0 && k <= max);
        b.push(got);
    }
    for p in 0..partitions {
        let tp = TopicPartition::new("t", p);
        assert_eq!(owned.position(&tp).unwrap(), lent.position(&tp).unwrap());
    }
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Same records, same grouping into polls, same positions, from any
    /// batch shapes and poll limits, across segment rolls.
    #[test]
    fn poll_with_delivers_what_poll_delivers(
        partitions in 1u32..4,
        batch_sizes in proptest::collection::vec(1usize..40, 1..30),
        max in 1usize..300,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(partitions).segment_bytes(2048)).unwrap();
        let p = broker.producer();
        let mut i = 0;
        for size in &batch_sizes {
            p.send_batch("t", (i..i + *size as u64).map(record)).unwrap();
            i += *size as u64;
        }
        let (owned, lent) = drain(&broker, partitions, max, i as usize);
        prop_assert_eq!(owned, lent);
    }
}

#[test]
fn an_empty_poll_with_waits_for_the_timeout_and_sees_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut c = consumer(&broker, 1, 10);
    let start = std::time::Instant::now();
    let mut calls = 0;
    assert_eq!(c.poll_with(Duration::from_millis(100), |_| calls += 1).unwrap(), 0);
    assert_eq!(calls, 0);
    assert!(start.elapsed() >= Duration::from_millis(80));
}

#[test]
fn a_blocked_poll_with_wakes_up_for_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut c = consumer(&broker, 1, 10);
    let waiter = std::thread::spawn(move || {
        let mut values = Vec::new();
        let n = c
            .poll_with(Duration::from_secs(10), |r| values.push(r.value().to_vec()))
            .unwrap();
        (n, values)
    });
    std::thread::sleep(Duration::from_millis(100));
    broker.producer().send("t", Record::new("wake")).unwrap();
    let (n, values) = waiter.join().unwrap();
    assert_eq!((n, values), (1, vec![b"wake".to_vec()]));
}

#[test]
fn a_group_member_commits_what_poll_with_saw() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let p = broker.producer();
    for i in 0..100 {
        p.send("t", Record::new(format!("{i}")).with_partition((i % 2) as u32))
            .unwrap();
    }
    let config = || {
        ConsumerConfig::new()
            .group("g")
            .offset_reset(OffsetReset::Earliest)
            .max_poll_records(30)
    };
    let mut first = broker.consumer(config()).unwrap();
    first.subscribe(&["t"]).unwrap();
    let mut seen = 0;
    while seen < 60 {
        seen += first.poll_with(Duration::from_secs(5), |_| ()).unwrap();
    }
    first.commit().unwrap();
    let committed: u64 = (0..2)
        .map(|p| first.committed(&TopicPartition::new("t", p)).unwrap().unwrap())
        .sum();
    assert_eq!(committed, seen as u64);
    first.close().unwrap();

    // The next member starts where the first one's commits say.
    let mut second = broker.consumer(config()).unwrap();
    second.subscribe(&["t"]).unwrap();
    let mut rest = 0;
    while rest < 100 - seen {
        rest += second.poll_with(Duration::from_secs(5), |_| ()).unwrap();
    }
    assert_eq!(rest, 100 - seen);
    assert_eq!(second.poll_with(Duration::from_millis(50), |_| ()).unwrap(), 0);
}

/// A flipped byte in a batch of the middle segment: both kinds of poll hand
/// out every record before that batch (none of it), stop there, and report
/// `Error::Corruption` on the next poll, again and again, delivering nothing.
#[test]
fn the_records_before_a_damaged_batch_come_first_then_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300u64;
    {
        let broker = Broker::open(dir.path()).unwrap();
        broker
            .create_topic("t", TopicConfig::new(1).segment_bytes(4096))
            .unwrap();
        let p = broker.producer();
        for k in 0..n / 3 {
            p.send_batch("t", (3 * k..3 * k + 3).map(record)).unwrap();
        }
        broker.close().unwrap();
    }
    let segs = segment_paths(&dir.path().join("t").join("0"));
    assert!(segs.len() > 2, "need a sealed segment in the middle");
    let (_, path) = &segs[1];
    let mut bytes = std::fs::read(path).unwrap();
    let (pos, header) = batches(&bytes)[2];
    bytes[pos + header.len as usize - 3] ^= 0x10;
    std::fs::write(path, &bytes).unwrap();
    let damaged = header.base_offset;

    let broker = Broker::open(dir.path()).unwrap();
    let tp = TopicPartition::new("t", 0);
    let (mut owned, mut lent) = (consumer(&broker, 1, 1000), consumer(&broker, 1, 1000));
    let polled = owned.poll(Duration::from_secs(1)).unwrap();
    let offsets: Vec<u64> = polled.iter().map(ConsumedRecord::offset).collect();
    assert_eq!(offsets, (0..damaged).collect::<Vec<_>>());
    let mut lent_offsets = Vec::new();
    let k = lent
        .poll_with(Duration::from_secs(1), |r| lent_offsets.push(r.offset()))
        .unwrap();
    assert_eq!(k as u64, damaged);
    assert_eq!(lent_offsets, offsets);
    for _ in 0..2 {
        assert_eq!(owned.position(&tp).unwrap(), damaged);
        assert_eq!(lent.position(&tp).unwrap(), damaged);
        assert!(matches!(
            owned.poll(Duration::from_secs(1)),
            Err(Error::Corruption { .. })
        ));
        let mut calls = 0;
        let err = lent.poll_with(Duration::from_secs(1), |_| calls += 1).unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
        assert_eq!(calls, 0);
    }
    // Past the damage (a seek), both read on.
    let after = header.base_offset + u64::from(header.count);
    owned.seek(&tp, after).unwrap();
    lent.seek(&tp, after).unwrap();
    let mut next = None;
    lent.poll_with(Duration::from_secs(1), |r| {
        next.get_or_insert(r.offset());
    })
    .unwrap();
    assert_eq!(next, Some(after));
    assert_eq!(
        owned
            .poll(Duration::from_secs(1))
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .offset(),
        after
    );
}
