//! `KafkaRecord`: a record consumed from a Kafka cluster, owned.

use std::fmt;
use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Headers, Message};

use crate::client::SourceRecord;
use crate::record::Record;

/// A record a `kafka::Consumer` returned. It owns its bytes (librdkafka's
/// message buffers are released as soon as `poll` returns), so it is `Send`,
/// `Clone` and outlives the consumer.
///
/// Its accessors are those of [`ConsumedRecord`](crate::ConsumedRecord);
/// generic code reads both through [`SourceRecord`].
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

impl KafkaRecord {
    /// An owned copy of a librdkafka message; `topic` caches the last topic name
    /// so a poll allocates it once per topic, not once per record.
    pub(crate) fn from_message(m: &BorrowedMessage<'_>, topic: &mut Option<Arc<str>>) -> KafkaRecord {
        let name = match topic {
            Some(t) if &**t == m.topic() => Arc::clone(t),
            _ => {
                let t: Arc<str> = Arc::from(m.topic());
                *topic = Some(Arc::clone(&t));
                t
            }
        };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        KafkaRecord {
            topic: name,
            partition: m.partition().max(0) as u32,
            offset: m.offset().max(0) as u64,
            timestamp: m.timestamp().to_millis().unwrap_or(-1),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The partition.
    pub fn partition(&self) -> u32 {
        self.partition
    }
    /// The offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The timestamp (create time or log-append time, as the topic is set),
    /// milliseconds since the Unix epoch; -1 when the record has none.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
    /// The key; `None` for a record sent without one.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }
    /// The value; empty for a tombstone.
    pub fn value(&self) -> &[u8] {
        self.value.as_deref().unwrap_or_default()
    }
    /// True when the value is null (Kafka's tombstone on a compacted topic).
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
    /// The headers in the order they were sent, duplicates included (a null
    /// header value reads as empty).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
    /// A copy as a `Record` to send elsewhere: key, value, headers, timestamp.
    pub fn to_record(&self) -> Record {
        SourceRecord::to_record(self)
    }
}

impl SourceRecord for KafkaRecord {
    fn topic(&self) -> &str {
        KafkaRecord::topic(self)
    }
    fn partition(&self) -> u32 {
        self.partition
    }
    fn offset(&self) -> u64 {
        self.offset
    }
    fn timestamp(&self) -> i64 {
        self.timestamp
    }
    fn key(&self) -> Option<&[u8]> {
        KafkaRecord::key(self)
    }
    fn value(&self) -> &[u8] {
        KafkaRecord::value(self)
    }
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        KafkaRecord::headers(self)
    }
}

impl fmt::Debug for KafkaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaRecord")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("key", &self.key.as_deref().map(String::from_utf8_lossy))
            .field("value_len", &self.value.as_ref().map(Vec::len))
            .field("headers", &self.headers.len())
            .finish()
    }
}
