//! `read_with` (borrowed records lent to a callback) gives exactly what `read`
//! gives, with the same errors: the same records from any offset and any
//! limit across segments, the right next offset, `OffsetOutOfRange` outside
//! the stored range, and `Error::Corruption` for a damaged batch whose records
//! never reach the callback.

use logbus::format::batch;
use logbus::log::Log;
use logbus::{Broker, ConsumedRecord, Durability, Error, LogConfig, Record, RecordView, TopicConfig};

mod common;
use common::{batches, segment_paths};

const SEGMENT_BYTES: u64 = 4096;

fn config() -> LogConfig {
    LogConfig::from_topic(&TopicConfig::new(1).segment_bytes(SEGMENT_BYTES), Durability::PageCache)
}

fn record(offset: u64) -> Record {
    let mut r = Record::new(format!("value {offset} {}", "v".repeat((offset % 23) as usize)))
        .with_timestamp(1_700_000_000_000 + ((offset * 7919) % 3_000) as i64);
    if !offset.is_multiple_of(3) {
        r = r.with_key(if offset % 3 == 1 {
            format!("k{offset}")
        } else {
            String::new()
        });
    }
    for h in 0..offset % 4 {
        r = r.with_header(format!("h{h}"), vec![h as u8; (offset % 5) as usize]);
    }
    r
}

/// Appends records `0..n` in batches of 1 to 7 records.
fn fill(log: &Log, n: u64) {
    let mut next = 0;
    let mut i = 0;
    while next < n {
        let count = (1 + i % 7).min(n - next);
        log.append(&(next..next + count).map(record).collect::<Vec<_>>())
            .unwrap();
        next += count;
        i += 1;
    }
    assert_eq!(log.end_offset(), n);
}

/// A record as plain data, from either API.
#[derive(Debug, PartialEq)]
struct Seen {
    topic: String,
    partition: u32,
    offset: u64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

/// `RecordView` and `ConsumedRecord` have the same accessors but no common trait.
macro_rules! seen {
    ($r:expr) => {
        Seen {
            topic: $r.topic().to_string(),
            partition: $r.partition(),
            offset: $r.offset(),
            timestamp: $r.timestamp(),
            key: $r.key().map(<[u8]>::to_vec),
            value: $r.value().to_vec(),
            headers: $r.headers().map(|(n, v)| (n.to_string(), v.to_vec())).collect(),
        }
    };
}

fn from_view(r: RecordView<'_>) -> Seen {
    seen!(r)
}

fn from_consumed(r: &ConsumedRecord) -> Seen {
    seen!(r)
}

/// `read_with(offset, max)`: what the callback saw and the returned next offset.
// With feature `kafka`, `Error::Kafka` carries librdkafka's error by value; a test helper need not box it.
#[allow(clippy::result_large_err)]
fn scan(log: &Log, offset: u64, max: usize) -> Result<(Vec<Seen>, u64), (Error, Vec<Seen>)> {
    let mut seen = Vec::new();
    match log.read_with(offset, max, |r| seen.push(from_view(r))) {
        Ok(next) => Ok((seen, next)),
        Err(e) => Err((e, seen)),
    }
}

#[test]
fn same_records_as_read_from_every_offset_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let n = 400;
    fill(&log, n);
    assert!(log.segment_count() >= 4, "{} segments", log.segment_count());
    // Every offset: batch starts, middles of batches, segment boundaries.
    for offset in 0..=n {
        for max in [1, 2, 5, 64, usize::MAX] {
            let want: Vec<Seen> = log.read(offset, max).unwrap().iter().map(from_consumed).collect();
            let (got, next) = scan(&log, offset, max).unwrap();
            assert_eq!(
                got.len() as u64,
                (max as u64).min(n - offset),
                "read_with({offset}, {max})"
            );
            assert_eq!(got, want, "read_with({offset}, {max})");
            assert_eq!(
                next,
                offset + got.len() as u64,
                "next offset of read_with({offset}, {max})"
            );
            for (i, r) in got.iter().enumerate() {
                let o = offset + i as u64;
                let rec = record(o);
                assert_eq!(r.offset, o);
                assert_eq!(r.value, rec.value());
                assert_eq!(r.key.as_deref(), rec.key());
                assert_eq!(r.timestamp, rec.timestamp().unwrap());
                assert!(
                    r.headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_slice()))
                        .eq(rec.headers()),
                    "headers of {o}"
                );
            }
        }
    }
    log.close().unwrap();
}

#[test]
fn a_scan_in_steps_visits_every_record_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let n = 500;
    fill(&log, n);
    for step in [1, 3, 97, 1000] {
        let mut offsets = Vec::new();
        let mut offset = 0;
        loop {
            let next = log.read_with(offset, step, |r| offsets.push(r.offset())).unwrap();
            if next == offset {
                break;
            }
            assert!(next - offset <= step as u64, "step {step}: {offset} -> {next}");
            offset = next;
        }
        assert_eq!(offset, n, "step {step}");
        assert!(offsets.iter().copied().eq(0..n), "step {step}");
    }
    log.close().unwrap();
}

#[test]
fn empty_at_the_end_and_for_a_zero_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let mut calls = 0;
    assert_eq!(log.read_with(0, 10, |_| calls += 1).unwrap(), 0, "empty log");
    fill(&log, 30);
    assert_eq!(log.read_with(30, 10, |_| calls += 1).unwrap(), 30, "at the end");
    assert_eq!(log.read_with(5, 0, |_| calls += 1).unwrap(), 5, "zero limit");
    assert_eq!(calls, 0);
    // New records after the end are visited by the next call.
    log.append(&[record(30)]).unwrap();
    assert_eq!(log.read_with(30, 10, |r| assert_eq!(r.offset(), 30)).unwrap(), 31);
    log.close().unwrap();
}

#[test]
fn offsets_outside_the_stored_range_are_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig::from_topic(
        &TopicConfig::new(1)
            .segment_bytes(SEGMENT_BYTES)
            .retention_bytes(Some(3 * SEGMENT_BYTES)),
        Durability::PageCache,
    );
    let log = Log::open(dir.path(), cfg).unwrap();
    fill(&log, 600);
    log.enforce_retention().unwrap();
    let start = log.start_offset();
    assert!(start > 0, "retention removed nothing");
    let mut calls = 0;
    for offset in [0, start - 1, 601, u64::MAX] {
        let err = log.read_with(offset, 10, |_| calls += 1).unwrap_err();
        let Error::OffsetOutOfRange {
            offset: o,
            start: s,
            end: e,
            ..
        } = err
        else {
            panic!("read_with({offset}): {err:?}")
        };
        assert_eq!((o, s, e), (offset, start, 600));
        // The same error as read.
        assert_eq!(err.to_string(), log.read(offset, 10).unwrap_err().to_string());
    }
    assert_eq!(calls, 0);
    assert_eq!(
        log.read_with(start, 1, |r| assert_eq!(r.offset(), start)).unwrap(),
        start + 1
    );
    log.close().unwrap();
    assert!(matches!(log.read_with(start, 1, |_| ()), Err(Error::Closed)));
}

#[test]
fn partition_read_with_names_topic_and_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("events", TopicConfig::new(2)).unwrap();
    let producer = broker.producer();
    for i in 0..20 {
        producer.send("events", record(i).with_partition(1)).unwrap();
    }
    let p = broker.topic("events").unwrap().partition(1).unwrap();
    let want: Vec<Seen> = p.read(3, 100).unwrap().iter().map(from_consumed).collect();
    let mut got = Vec::new();
    assert_eq!(p.read_with(3, 100, |r| got.push(from_view(r))).unwrap(), 20);
    assert_eq!(got, want);
    assert!(got.iter().all(|r| r.topic == "events" && r.partition == 1));
    let mut shown = String::new();
    p.read_with(0, 1, |r| shown = format!("{r:?}")).unwrap();
    assert!(shown.contains("RecordView") && shown.contains("offset: 0"), "{shown}");
    assert!(matches!(
        p.read_with(21, 1, |_| ()),
        Err(Error::OffsetOutOfRange { .. })
    ));
    broker.clone().close().unwrap();
    assert!(matches!(p.read_with(0, 1, |_| ()), Err(Error::Closed)));
}

#[test]
fn a_damaged_batch_is_corruption_and_none_of_its_records_is_visited() {
    let dir = tempfile::tempdir().unwrap();
    let n = 400;
    {
        let log = Log::open(dir.path(), config()).unwrap();
        fill(&log, n);
        log.close().unwrap();
    }
    let segs = segment_paths(dir.path());
    assert!(segs.len() > 2, "need a sealed segment in the middle");
    let (base, path) = segs[1].clone();
    let next_base = segs[2].0;
    let original = std::fs::read(&path).unwrap();
    let bs = batches(&original);
    assert!(bs.len() > 3);

    let mut damaged = 0;
    for (k, pos) in (0..original.len()).step_by(23).enumerate() {
        let mut bytes = original.clone();
        bytes[pos] ^= 1 << (k % 8);
        std::fs::write(&path, &bytes).unwrap();
        let ctx = format!("bit {} of byte {pos} of segment {base}", k % 8);
        let (bpos, bh) = *bs
            .iter()
            .find(|(p, h)| (*p..*p + h.len as usize).contains(&pos))
            .unwrap();
        let log = Log::open(dir.path(), config()).unwrap();
        assert_eq!(log.end_offset(), n, "{ctx}");

        // Reads of the damaged batch's offsets fail before visiting anything.
        for o in bh.base_offset..bh.next_offset() {
            let (err, seen) = scan(&log, o, usize::MAX).unwrap_err();
            assert!(
                matches!(err, Error::Corruption { path: ref p, .. } if *p == path),
                "{ctx}: {err:?}"
            );
            assert!(seen.is_empty(), "{ctx}: read_with({o}) visited {seen:?}");
            damaged += 1;
        }
        // A scan of the segment from its start: the records before the damage
        // (when the damage is in the batch's bytes, not a header that hides
        // the batches before it), never one of the damaged batch, then the error.
        let (err, seen) = scan(&log, base, usize::MAX).unwrap_err();
        let Error::Corruption { path: p, position, .. } = &err else {
            panic!("{ctx}: {err:?}")
        };
        assert_eq!(p, &path, "{ctx}");
        assert!(
            *position as usize >= bs[0].0 && (*position as usize) < original.len(),
            "{ctx}"
        );
        assert!(
            seen.iter().map(|r| r.offset).eq(base..base + seen.len() as u64),
            "{ctx}: visited out of order"
        );
        assert!(
            seen.iter().all(|r| r.offset < bh.base_offset),
            "{ctx}: a record of the damaged batch at {bpos} was visited"
        );
        for r in &seen {
            assert_eq!(r.value, record(r.offset).value(), "{ctx}");
        }
        if pos >= bpos + batch::HEADER_LEN {
            // Damage in the records, under the CRC: the CRC check stops the read at this batch.
            assert_eq!(*position as usize, bpos, "{ctx}");
            assert_eq!(seen.len() as u64, bh.base_offset - base, "{ctx}");
        }
        // Other segments still read in full.
        let (before, next) = scan(&log, 0, base as usize).unwrap();
        assert_eq!((before.len() as u64, next), (base, base), "{ctx}");
        let (after, next) = scan(&log, next_base, usize::MAX).unwrap();
        assert_eq!((after.len() as u64, next), (n - next_base, n), "{ctx}");
        log.close().unwrap();
    }
    assert!(damaged > 0);

    std::fs::write(&path, &original).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let (all, next) = scan(&log, 0, usize::MAX).unwrap();
    assert_eq!((all.len() as u64, next), (n, n));
    log.close().unwrap();
}
