//! The read side of records: what a read returns ([`ConsumedRecord`], which
//! keeps its segment's mapping alive) and what a lending read gives its
//! callback ([`RecordView`], borrowed from the segment for the call). Both
//! point into segment bytes, so they live with the log.

use std::fmt;
use std::sync::Arc;

use super::mmap::SegmentMap;
use crate::format::batch::{self, RecordRef};
use crate::record::{Bytes, Record};

/// A record read from a partition.
///
/// Zero-copy: key, value and headers borrow from the segment's memory map,
/// which this record keeps alive (even if retention deletes the segment file).
/// A record of a compressed batch borrows instead from the batch decompressed
/// once by the read (held like a mapping), shared by all the records of that batch.
#[derive(Clone)]
pub struct ConsumedRecord {
    /// The segment's bytes; it also knows the topic and partition, so a record
    /// costs one reference count, not two.
    pub(crate) map: Arc<SegmentMap>,
    pub(crate) offset: u64,
    pub(crate) timestamp: i64,
    /// Position of the batch inside the segment; record ranges are relative to it.
    pub(crate) batch_pos: u32,
    pub(crate) rec: RecordRef,
}

impl ConsumedRecord {
    pub(crate) fn new(
        topic: &Arc<str>,
        partition: u32,
        base_offset: u64,
        map: &Arc<SegmentMap>,
        batch_pos: u32,
        rec: RecordRef,
    ) -> ConsumedRecord {
        map.origin(topic, partition);
        ConsumedRecord {
            map: Arc::clone(map),
            offset: base_offset + u64::from(rec.offset_delta),
            timestamp: rec.timestamp,
            batch_pos,
            rec,
        }
    }

    fn range(&self, r: (u32, u32)) -> &[u8] {
        let base = self.batch_pos as usize;
        self.map
            .bytes()
            .get(base + r.0 as usize..base + r.1 as usize)
            .unwrap_or_default()
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        self.map.origin_known().map_or("", |(t, _)| t)
    }
    /// The partition.
    pub fn partition(&self) -> u32 {
        self.map.origin_known().map_or(0, |(_, p)| *p)
    }
    /// The record's offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The record's timestamp, ms since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
    /// The key, if the record has one (`Some(b"")` for an empty key).
    pub fn key(&self) -> Option<&[u8]> {
        self.rec.key.map(|k| self.range(k))
    }
    /// The value.
    pub fn value(&self) -> &[u8] {
        self.range(self.rec.value)
    }
    /// The headers in the order they were sent, duplicates included.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        batch::headers(self.range(self.rec.headers), self.rec.header_count)
    }
    /// Whether the record is a tombstone: a key with a null value
    /// ([`value`](Self::value) is empty then), as sent with
    /// [`Record::tombstone`], as distinct from an empty value.
    pub fn is_tombstone(&self) -> bool {
        self.rec.null_value
    }
    /// The record as an owned `Record` (copies of its bytes, its timestamp;
    /// a tombstone stays one).
    pub fn to_record(&self) -> Record {
        owned_record(
            self.key(),
            self.value(),
            self.headers(),
            self.timestamp,
            self.rec.null_value,
        )
    }
}

/// A `Record` holding copies of a stored record's parts.
fn owned_record<'a>(
    key: Option<&[u8]>,
    value: &[u8],
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    timestamp: i64,
    null: bool,
) -> Record {
    let mut r = Record::new(value).with_timestamp(timestamp);
    r.key = key.map(<[u8]>::to_vec);
    r.null = null;
    r.headers = headers.map(|(n, v)| (n.to_string(), v.to_vec())).collect();
    r
}

impl fmt::Debug for ConsumedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumedRecord")
            .field("topic", &self.topic())
            .field("partition", &self.partition())
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("key", &self.key().map(Bytes))
            .field("value", &Bytes(self.value()))
            .field("headers", &self.rec.header_count)
            .finish()
    }
}

/// A record lent to the callback of [`Partition::read_with`](crate::Partition::read_with)
/// or [`Log::read_with`](crate::log::Log::read_with): the accessors of
/// [`ConsumedRecord`], borrowing from the segment for the duration of the
/// callback, with no reference count and no allocation.
///
/// To keep a record past the callback, copy what you need (or use `read`,
/// whose records keep the segment alive on their own).
///
/// A view cannot outlive the callback:
///
/// ```compile_fail
/// # let dir = tempfile::tempdir().unwrap();
/// # let log = logbus::log::Log::open(dir.path(), logbus::LogConfig::default()).unwrap();
/// let mut kept = None;
/// log.read_with(0, 1, |r| kept = Some(r)).unwrap();
/// # let _ = kept;
/// ```
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    topic: &'a str,
    partition: u32,
    offset: u64,
    /// The whole batch holding the record; record ranges are relative to it.
    batch: &'a [u8],
    rec: RecordRef,
}

impl<'a> RecordView<'a> {
    #[inline]
    pub(crate) fn new(topic: &'a str, partition: u32, base_offset: u64, batch: &'a [u8], rec: RecordRef) -> Self {
        RecordView {
            topic,
            partition,
            offset: base_offset + u64::from(rec.offset_delta),
            batch,
            rec,
        }
    }

    #[inline]
    fn range(&self, r: (u32, u32)) -> &'a [u8] {
        self.batch.get(r.0 as usize..r.1 as usize).unwrap_or_default()
    }

    /// The topic.
    pub fn topic(&self) -> &'a str {
        self.topic
    }
    /// The partition.
    pub fn partition(&self) -> u32 {
        self.partition
    }
    /// The record's offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The record's timestamp, ms since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.rec.timestamp
    }
    /// The key, if the record has one (`Some(b"")` for an empty key).
    pub fn key(&self) -> Option<&'a [u8]> {
        self.rec.key.map(|k| self.range(k))
    }
    /// The value.
    pub fn value(&self) -> &'a [u8] {
        self.range(self.rec.value)
    }
    /// The headers in the order they were sent, duplicates included.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        batch::headers(self.range(self.rec.headers), self.rec.header_count)
    }
    /// The record as an owned `Record` (copies of its bytes, its timestamp).
    pub fn to_record(&self) -> Record {
        owned_record(
            self.key(),
            self.value(),
            self.headers(),
            self.timestamp(),
            self.rec.null_value,
        )
    }
    /// Whether the record is a tombstone (a null value, as distinct from an empty one).
    pub fn is_tombstone(&self) -> bool {
        self.rec.null_value
    }
}

impl fmt::Debug for RecordView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordView")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.rec.timestamp)
            .field("key", &self.key().map(Bytes))
            .field("value", &Bytes(self.value()))
            .field("headers", &self.rec.header_count)
            .finish()
    }
}
