//! Typed records: a [`Codec`] turns values into bytes and back;
//! [`TypedProducer`] and [`TypedConsumer`] send and poll values of one type.
//!
//! With the default `serde` feature, [`Postcard`] encodes any
//! `Serialize + DeserializeOwned` type with postcard's stable wire format.

use std::marker::PhantomData;
use std::time::Duration;

use crate::consumer::Consumer;
use crate::error::{Error, Result};
use crate::log::consumed::{ConsumedRecord, RecordView};
use crate::names::TopicPartition;
use crate::producer::Producer;
use crate::record::{Record, RecordMetadata};

/// Converts values of type `T` to bytes and back.
pub trait Codec<T> {
    /// Encodes a value; the error message is reported in `Error::Encode`.
    fn encode(&self, value: &T) -> std::result::Result<Vec<u8>, String>;
    /// Decodes a value; the error message is reported in `Error::Decode`.
    fn decode(&self, bytes: &[u8]) -> std::result::Result<T, String>;
}

/// The postcard codec for serde types (feature `serde`, on by default).
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> for Postcard {
    fn encode(&self, value: &T) -> std::result::Result<Vec<u8>, String> {
        postcard::to_allocvec(value).map_err(|e| e.to_string())
    }
    fn decode(&self, bytes: &[u8]) -> std::result::Result<T, String> {
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }
}

/// Sends values of type `T` to one topic.
///
/// ```
/// # #[cfg(feature = "serde")] fn main() -> logbus::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use logbus::{Broker, ConsumerConfig, OffsetReset, Postcard, TopicConfig, TopicPartition, TypedConsumer, TypedProducer};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Deposit { account: String, cents: u64 }
///
/// let broker = Broker::open(dir.path())?;
/// broker.create_topic("deposits", TopicConfig::new(1))?;
/// let producer = TypedProducer::new(broker.producer(), "deposits", Postcard);
/// producer.send_keyed("acct-1", &Deposit { account: "acct-1".into(), cents: 500 })?;
///
/// let mut consumer = broker.consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))?;
/// consumer.assign(&[TopicPartition::new("deposits", 0)])?;
/// let mut typed = TypedConsumer::<Deposit, _>::new(consumer, Postcard);
/// let got = typed.poll(Duration::from_millis(100))?;
/// assert_eq!(got[0].value, Deposit { account: "acct-1".into(), cents: 500 });
/// # Ok(()) }
/// # #[cfg(not(feature = "serde"))] fn main() {}
/// ```
pub struct TypedProducer<T, C> {
    producer: Producer,
    topic: String,
    codec: C,
    _values: PhantomData<fn(&T)>,
}

impl<T, C: std::fmt::Debug> std::fmt::Debug for TypedProducer<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProducer")
            .field("topic", &self.topic)
            .field("codec", &self.codec)
            .finish()
    }
}

/// A clone sends to the same topic through the same broker, with a clone of
/// the codec; like [`Producer`], many threads may share one or each hold one.
impl<T, C: Clone> Clone for TypedProducer<T, C> {
    fn clone(&self) -> Self {
        TypedProducer {
            producer: self.producer.clone(),
            topic: self.topic.clone(),
            codec: self.codec.clone(),
            _values: PhantomData,
        }
    }
}

impl<T, C: Codec<T>> TypedProducer<T, C> {
    /// A producer of `T` values to `topic`.
    pub fn new(producer: Producer, topic: impl Into<String>, codec: C) -> TypedProducer<T, C> {
        TypedProducer {
            producer,
            topic: topic.into(),
            codec,
            _values: PhantomData,
        }
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>> {
        self.codec.encode(value).map_err(|reason| Error::Encode {
            topic: self.topic.clone(),
            reason,
        })
    }

    /// Sends a value without a key (round-robin over partitions).
    pub fn send(&self, value: &T) -> Result<RecordMetadata> {
        self.producer.send(&self.topic, Record::new(self.encode(value)?))
    }

    /// Sends a value with a key (same key, same partition).
    pub fn send_keyed(&self, key: impl Into<Vec<u8>>, value: &T) -> Result<RecordMetadata> {
        self.producer
            .send(&self.topic, Record::new(self.encode(value)?).with_key(key))
    }

    /// Sends values without keys as one batch, like [`Producer::send_batch`]:
    /// all or nothing, so a value that fails to encode (`Error::Encode`) or a
    /// record the topic refuses writes none of them. Returns each value's
    /// metadata, in order.
    pub fn send_batch<'v>(&self, values: impl IntoIterator<Item = &'v T>) -> Result<Vec<RecordMetadata>>
    where
        T: 'v,
    {
        let records = values
            .into_iter()
            .map(|v| self.encode(v).map(Record::new))
            .collect::<Result<Vec<Record>>>()?;
        self.producer.send_batch(&self.topic, records)
    }

    /// [`send_batch`](Self::send_batch) of `(key, value)` pairs (same key,
    /// same partition); all or nothing.
    pub fn send_batch_keyed<'v, K: Into<Vec<u8>>>(
        &self,
        items: impl IntoIterator<Item = (K, &'v T)>,
    ) -> Result<Vec<RecordMetadata>>
    where
        T: 'v,
    {
        let records = items
            .into_iter()
            .map(|(k, v)| self.encode(v).map(|bytes| Record::new(bytes).with_key(k)))
            .collect::<Result<Vec<Record>>>()?;
        self.producer.send_batch(&self.topic, records)
    }

    /// Sends a prepared record whose value is replaced by the encoded `value`.
    pub fn send_record(&self, record: Record, value: &T) -> Result<RecordMetadata> {
        let mut record = record;
        record.value = self.encode(value)?;
        self.producer.send(&self.topic, record)
    }
}

/// A decoded record.
#[derive(Debug, Clone)]
pub struct TypedRecord<T> {
    /// The decoded value.
    pub value: T,
    /// The raw record (key, headers, position).
    pub record: ConsumedRecord,
}

/// Polls values of type `T`. A value that fails to decode is `Error::Decode`
/// naming its topic, partition and offset; like Kafka, the position stays on
/// that record (records before it are returned first), so the caller can
/// `seek` past it.
pub struct TypedConsumer<T, C> {
    consumer: Consumer,
    codec: C,
    _values: PhantomData<fn() -> T>,
}

impl<T, C: std::fmt::Debug> std::fmt::Debug for TypedConsumer<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedConsumer")
            .field("consumer", &self.consumer)
            .field("codec", &self.codec)
            .finish()
    }
}

impl<T, C: Codec<T>> TypedConsumer<T, C> {
    /// Wraps a consumer (already assigned or subscribed).
    pub fn new(consumer: Consumer, codec: C) -> TypedConsumer<T, C> {
        TypedConsumer {
            consumer,
            codec,
            _values: PhantomData,
        }
    }

    /// The underlying consumer (for seek, commit, assignment...).
    pub fn consumer(&mut self) -> &mut Consumer {
        &mut self.consumer
    }

    /// Unwraps the consumer.
    pub fn into_inner(self) -> Consumer {
        self.consumer
    }

    /// [`poll`](Self::poll) that decodes each record and lends it to `f`
    /// with the raw record as a [`RecordView`] (key, headers, position)
    /// borrowed from the segment: no `ConsumedRecord` is allocated or
    /// reference-counted per record ([`Consumer::poll_with`]). Returns how
    /// many values `f` saw (a count, like `poll(..)?.len()`).
    ///
    /// A value that fails to decode is handled as in `poll`: `f` sees the
    /// records before it, the position of its partition stays on it (and each
    /// other partition's on its first record `f` did not see), and the error
    /// comes from this call if `f` saw nothing, else from the next one.
    ///
    /// ```
    /// # #[cfg(feature = "serde")] fn main() -> logbus::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::time::Duration;
    /// use logbus::{Broker, ConsumerConfig, OffsetReset, Postcard, TopicConfig, TopicPartition, TypedConsumer, TypedProducer};
    /// let broker = Broker::open(dir.path())?;
    /// broker.create_topic("cents", TopicConfig::new(1))?;
    /// TypedProducer::new(broker.producer(), "cents", Postcard).send_batch(&[500u64, 250])?;
    ///
    /// let mut consumer = broker.consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))?;
    /// consumer.assign(&[TopicPartition::new("cents", 0)])?;
    /// let mut typed = TypedConsumer::<u64, _>::new(consumer, Postcard);
    /// let mut total = 0;
    /// let seen = typed.poll_with(Duration::from_secs(1), |cents, record| {
    ///     assert!(record.offset() < 2);
    ///     total += cents;
    /// })?;
    /// assert_eq!((seen, total), (2, 750));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "serde"))] fn main() {}
    /// ```
    pub fn poll_with<F: FnMut(T, RecordView<'_>)>(&mut self, timeout: Duration, mut f: F) -> Result<usize> {
        let codec = &self.codec;
        let mut seen = 0;
        let mut failed: Option<Error> = None;
        // Each partition's first record `f` did not see, once a decode failed.
        let mut rewind: Vec<(TopicPartition, u64)> = Vec::new();
        self.consumer.poll_with(timeout, |r| {
            if failed.is_none() {
                match codec.decode(r.value()) {
                    Ok(value) => {
                        seen += 1;
                        f(value, r);
                        return;
                    }
                    Err(reason) => {
                        failed = Some(Error::Decode {
                            topic: r.topic().to_string(),
                            partition: r.partition(),
                            offset: r.offset(),
                            reason,
                        });
                    }
                }
            }
            if !rewind
                .iter()
                .any(|(tp, _)| tp.partition == r.partition() && tp.topic == r.topic())
            {
                rewind.push((TopicPartition::new(r.topic(), r.partition()), r.offset()));
            }
        })?;
        for (tp, offset) in &rewind {
            self.consumer.seek(tp, *offset)?;
        }
        match failed {
            Some(e) if seen == 0 => Err(e),
            _ => Ok(seen),
        }
    }

    /// Polls and decodes.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<TypedRecord<T>>> {
        let records = self.consumer.poll(timeout)?.into_vec();
        let mut out = Vec::with_capacity(records.len());
        let mut iter = records.into_iter();
        while let Some(record) = iter.next() {
            match self.codec.decode(record.value()) {
                Ok(value) => out.push(TypedRecord { value, record }),
                Err(reason) => {
                    // Rewind every partition to its first record not returned.
                    let mut rewind: Vec<(TopicPartition, u64)> =
                        vec![(TopicPartition::new(record.topic(), record.partition()), record.offset())];
                    for r in iter {
                        let tp = TopicPartition::new(r.topic(), r.partition());
                        if !rewind.iter().any(|(t, _)| *t == tp) {
                            rewind.push((tp, r.offset()));
                        }
                    }
                    for (tp, offset) in &rewind {
                        self.consumer.seek(tp, *offset)?;
                    }
                    if out.is_empty() {
                        return Err(Error::Decode {
                            topic: record.topic().to_string(),
                            partition: record.partition(),
                            offset: record.offset(),
                            reason,
                        });
                    }
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}
