//! The send side of records: what producers send ([`Record`],
//! [`BorrowedRecord`]) and what a send returns ([`RecordMetadata`]). The read
//! side, which borrows from segments, is the log's (`log/consumed.rs`).

use std::fmt;

use crate::format::batch::Encode;
use crate::names::TopicName;

/// A record to send: optional key, value, ordered headers, optional timestamp
/// and optional explicit partition.
///
/// ```
/// use logbus::Record;
/// let r = Record::new("order created")
///     .with_key("customer-42")
///     .with_header("trace-id", "abc123")
///     .with_timestamp(1_700_000_000_000);
/// # let _ = r;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Vec<u8>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) partition: Option<u32>,
    /// The value is null: a tombstone (see [`Record::tombstone`]).
    pub(crate) null: bool,
}

impl Record {
    /// A record with this value, no key, no headers, the current time and
    /// the partitioner's choice of partition.
    pub fn new(value: impl Into<Vec<u8>>) -> Record {
        Record {
            key: None,
            value: value.into(),
            headers: Vec::new(),
            timestamp: None,
            partition: None,
            null: false,
        }
    }

    /// A tombstone: `key` with a null value (distinct from an empty one). On
    /// a compacted topic it deletes the key: compaction removes the key's
    /// older records, then the tombstone itself once the topic's
    /// `delete_retention_ms` has passed since a compaction pass first reached it.
    ///
    /// ```
    /// use logbus::Record;
    /// let r = Record::tombstone("customer-42");
    /// assert!(r.is_tombstone());
    /// assert_eq!(r.value(), b"");
    /// assert!(!Record::new("").is_tombstone());
    /// ```
    pub fn tombstone(key: impl Into<Vec<u8>>) -> Record {
        Record {
            null: true,
            ..Record::new(Vec::new()).with_key(key)
        }
    }

    /// Whether this is a tombstone (a null value; [`value`](Self::value) is empty then).
    pub fn is_tombstone(&self) -> bool {
        self.null
    }

    /// Sets the key. Records with the same key go to the same partition.
    /// An empty key is a key (it hashes like any other), distinct from no key.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Appends a header. Order and duplicate names are kept.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Record {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the timestamp (ms since the Unix epoch). Unset: the time of the send.
    /// Topics with log-append time replace it with the append time.
    #[must_use]
    pub fn with_timestamp(mut self, ts_ms: i64) -> Record {
        self.timestamp = Some(ts_ms);
        self
    }

    /// Sends to this partition, overriding the key hash and round-robin.
    #[must_use]
    pub fn with_partition(mut self, partition: u32) -> Record {
        self.partition = Some(partition);
        self
    }

    /// The key, if any.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The explicit timestamp, if one was set.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The explicit partition, if one was set.
    pub fn partition(&self) -> Option<u32> {
        self.partition
    }

    /// Bytes counted against `max_record_bytes`: key + value + header names and values.
    pub fn size(&self) -> usize {
        Encode::payload_size(self)
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("key", &self.key.as_deref().map(Bytes))
            .field("value", &Bytes(&self.value))
            .field("tombstone", &self.null)
            .field("headers", &self.headers.len())
            .field("timestamp", &self.timestamp)
            .field("partition", &self.partition)
            .finish()
    }
}

/// Debug-prints bytes as a string when they are short UTF-8, else as a length.
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(s) if s.len() <= 64 => write!(f, "{s:?}"),
            _ => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

/// A record whose bytes the caller lends for the send: the allocation-free
/// way to produce. The log copies the bytes into the segment during the
/// send, so they need to live only as long as the call.
///
/// ```
/// # fn main() -> logbus::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use logbus::{Broker, BorrowedRecord, TopicConfig};
/// let broker = Broker::open(dir.path())?;
/// broker.create_topic("ticks", TopicConfig::new(1))?;
/// let producer = broker.producer();
/// let mut buf = [0u8; 16];
/// for i in 0..10u64 {
///     buf[..8].copy_from_slice(&i.to_le_bytes()); // reuse one buffer
///     producer.send_borrowed("ticks", BorrowedRecord::new(&buf).with_key(b"sensor-1"))?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BorrowedRecord<'a> {
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: &'a [u8],
    pub(crate) headers: &'a [(&'a str, &'a [u8])],
    pub(crate) timestamp: Option<i64>,
    pub(crate) partition: Option<u32>,
    /// The value is null: a tombstone.
    pub(crate) null: bool,
}

impl<'a> BorrowedRecord<'a> {
    /// A record with this value, no key, no headers.
    pub fn new(value: &'a [u8]) -> BorrowedRecord<'a> {
        BorrowedRecord {
            key: None,
            value,
            headers: &[],
            timestamp: None,
            partition: None,
            null: false,
        }
    }

    /// A tombstone: `key` with a null value (see [`Record::tombstone`]).
    pub fn tombstone(key: &'a [u8]) -> BorrowedRecord<'a> {
        BorrowedRecord {
            null: true,
            ..BorrowedRecord::new(&[]).with_key(key)
        }
    }

    /// Whether this is a tombstone (a null value).
    pub fn is_tombstone(&self) -> bool {
        self.null
    }

    /// Sets the key (records with the same key go to the same partition).
    #[must_use]
    pub fn with_key(mut self, key: &'a [u8]) -> BorrowedRecord<'a> {
        self.key = Some(key);
        self
    }

    /// Sets the headers, in order.
    #[must_use]
    pub fn with_headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> BorrowedRecord<'a> {
        self.headers = headers;
        self
    }

    /// Sets the timestamp, ms since the epoch (unset: the log's clock at the append).
    #[must_use]
    pub fn with_timestamp(mut self, ts_ms: i64) -> BorrowedRecord<'a> {
        self.timestamp = Some(ts_ms);
        self
    }

    /// Sends to this partition, whatever the key.
    #[must_use]
    pub fn with_partition(mut self, partition: u32) -> BorrowedRecord<'a> {
        self.partition = Some(partition);
        self
    }

    /// The key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The value.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The headers, in order.
    pub fn headers(&self) -> &'a [(&'a str, &'a [u8])] {
        self.headers
    }

    /// The timestamp set with [`with_timestamp`](Self::with_timestamp).
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The partition set with [`with_partition`](Self::with_partition).
    pub fn partition(&self) -> Option<u32> {
        self.partition
    }

    /// Bytes of key, value and headers (what `max_record_bytes` limits).
    pub fn size(&self) -> usize {
        Encode::payload_size(self)
    }

    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record {
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.to_vec(),
            headers: self.headers.iter().map(|&(n, v)| (n.to_string(), v.to_vec())).collect(),
            timestamp: self.timestamp,
            partition: self.partition,
            null: self.null,
        }
    }
}

// The encoder's view of a record to send. Here, beside the types, so that
// `format` knows no public type; `#[inline]` because the encoder's generic
// code sits in another module (and codegen unit) than these impls.
impl Encode for Record {
    #[inline]
    fn key_bytes(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }
    #[inline]
    fn value_bytes(&self) -> &[u8] {
        &self.value
    }
    #[inline]
    fn value_is_null(&self) -> bool {
        self.null
    }
    #[inline]
    fn header_count(&self) -> usize {
        self.headers.len()
    }
    #[inline]
    fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()))
    }
    #[inline]
    fn create_time(&self) -> Option<i64> {
        self.timestamp
    }
    #[inline]
    fn target_partition(&self) -> Option<u32> {
        self.partition
    }
}

impl Encode for BorrowedRecord<'_> {
    #[inline]
    fn key_bytes(&self) -> Option<&[u8]> {
        self.key
    }
    #[inline]
    fn value_bytes(&self) -> &[u8] {
        self.value
    }
    #[inline]
    fn value_is_null(&self) -> bool {
        self.null
    }
    #[inline]
    fn header_count(&self) -> usize {
        self.headers.len()
    }
    #[inline]
    fn header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers.iter().map(|&(n, v)| (n.as_bytes(), v))
    }
    #[inline]
    fn create_time(&self) -> Option<i64> {
        self.timestamp
    }
    #[inline]
    fn target_partition(&self) -> Option<u32> {
        self.partition
    }
}

/// Where a sent record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub(crate) topic: TopicName,
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) timestamp: i64,
}

impl RecordMetadata {
    /// Where a record landed outside this crate's broker (a Kafka cluster,
    /// a test double), for code that reports sends the same way for every backend.
    pub fn new(topic: &str, partition: u32, offset: u64, timestamp: i64) -> RecordMetadata {
        RecordMetadata {
            topic: TopicName::new(&std::sync::Arc::from(topic)),
            partition,
            offset,
            timestamp,
        }
    }
    /// The topic.
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }
    /// The partition.
    pub fn partition(&self) -> u32 {
        self.partition
    }
    /// The offset assigned to the record.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The record's timestamp as stored (create time or log-append time).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
}
