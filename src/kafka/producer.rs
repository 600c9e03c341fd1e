//! `kafka::Producer`: logbus's `Producer` shape against a Kafka cluster.

use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};

use super::context::Context;
use super::error::kafka_error;
use super::settings::{ms, Settings, EVENTS_WAIT};
use crate::client::RecordSink;
use crate::error::Result;
use crate::record::{Record, RecordMetadata};

/// Default `delivery_timeout`: Kafka's Java client's `delivery.timeout.ms`.
const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a delivery report goes: the index of the record in its send and the channel of the send.
type Delivery = Box<(usize, Sender<(usize, DeliveryOutcome)>)>;

/// A delivery report, owned: partition, offset, timestamp, or the error.
type DeliveryOutcome = std::result::Result<(i32, i64, Option<i64>), KafkaError>;

impl ProducerContext for Context {
    type DeliveryOpaque = Delivery;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Delivery) {
        let (index, tx) = *opaque;
        let outcome = match result {
            Ok(m) => Ok((m.partition(), m.offset(), m.timestamp().to_millis())),
            Err((e, _)) => Err(e.clone()),
        };
        // The sender may have given up waiting; the report is then moot.
        let _ = tx.send((index, outcome));
    }
}

/// Builds a [`Producer`]. Setters consume and return the builder.
#[derive(Debug, Clone)]
#[must_use]
pub struct ProducerBuilder {
    settings: Settings,
    delivery_timeout: Duration,
}

impl ProducerBuilder {
    /// Sets a raw librdkafka setting (`security.protocol`, `sasl.mechanism`,
    /// `ssl.ca.location`, `linger.ms`, `compression.type`...). Raw settings
    /// win over the builder's defaults.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> ProducerBuilder {
        self.settings.set(key, value);
        self
    }

    /// How long `send` waits for the broker's acknowledgement, retries
    /// included, before failing (`delivery.timeout.ms`). Default = 120 s.
    pub fn delivery_timeout(mut self, d: Duration) -> ProducerBuilder {
        self.delivery_timeout = d;
        self
    }

    /// `build()` asks the cluster for its metadata and fails if no answer
    /// comes within this time; `None` builds without contacting the cluster.
    /// Default = 30 s.
    pub fn connect_timeout(mut self, d: Option<Duration>) -> ProducerBuilder {
        self.settings.connect_timeout = d;
        self
    }

    /// Creates the producer: `acks=all`, idempotent, Java's murmur2
    /// partitioner for keyed records (keys land where Java producers put
    /// them, and where `Partitioner::Murmur2` puts them locally).
    pub fn build(self) -> Result<Producer> {
        let config = self.settings.client_config(&[
            ("acks", "all".into()),
            ("enable.idempotence", "true".into()),
            ("partitioner", "murmur2_random".into()),
            ("message.timeout.ms", ms(self.delivery_timeout)),
        ])?;
        let inner = ThreadedProducer::from_config_and_context(&config, Context::default())
            .map_err(|e| kafka_error("creating a producer", &self.settings.bootstrap, e, None))?;
        self.settings
            .check_reachable(inner.client(), || inner.poll(EVENTS_WAIT))?;
        Ok(Producer {
            inner,
            bootstrap: self.settings.bootstrap,
            delivery_timeout: self.delivery_timeout,
        })
    }
}

/// Sends records to a Kafka cluster with [`logbus::Producer`](crate::Producer)'s
/// methods: `send` returns once the broker acknowledged the record.
///
/// Clone it to share it between threads (clones share one librdkafka producer).
///
/// Partition choice: an explicit partition wins; a keyed record goes to
/// `murmur2(key) % partitions` like Java's client; a record without a key
/// goes to a random partition.
#[derive(Clone)]
pub struct Producer {
    inner: ThreadedProducer<Context>,
    bootstrap: String,
    delivery_timeout: Duration,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("kafka::Producer")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl Producer {
    /// A builder for a producer of the cluster at `bootstrap_servers`
    /// (`HOST:PORT[,HOST:PORT...]`).
    pub fn builder(bootstrap_servers: impl Into<String>) -> ProducerBuilder {
        ProducerBuilder {
            settings: Settings::new(bootstrap_servers),
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
        }
    }

    /// The bootstrap servers this producer was built with.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Sends one record and waits for the broker's acknowledgement.
    pub fn send(&self, topic: &str, record: Record) -> Result<RecordMetadata> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.enqueue(topic, 0, &record, &tx)?;
        drop(tx);
        let mut out = self.collect(topic, 1, &rx)?;
        out.pop().ok_or_else(|| self.lost(topic))
    }

    /// Sends records to one topic, in order, and waits for every
    /// acknowledgement. Not all-or-nothing (Kafka has no atomic batch outside
    /// transactions): records acknowledged before a failure stay written.
    pub fn send_batch(&self, topic: &str, records: impl IntoIterator<Item = Record>) -> Result<Vec<RecordMetadata>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut n = 0;
        for record in records {
            self.enqueue(topic, n, &record, &tx)?;
            n += 1;
        }
        drop(tx);
        self.collect(topic, n, &rx)
    }

    /// Waits until every record sent so far is acknowledged (or failed).
    pub fn flush(&self) -> Result<()> {
        self.inner.flush(self.delivery_timeout).map_err(|e| {
            kafka_error(
                "flushing the producer",
                &self.bootstrap,
                e,
                self.inner.context().last_error(),
            )
        })
    }

    /// Hands one record to librdkafka, waiting while its queue is full.
    fn enqueue(&self, topic: &str, index: usize, record: &Record, tx: &Sender<(usize, DeliveryOutcome)>) -> Result<()> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers().count());
        for (name, value) in record.headers() {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8], Delivery> =
            BaseRecord::with_opaque_to(topic, Box::new((index, tx.clone()))).headers(headers);
        // A tombstone is a null payload, as Kafka's compacted topics expect.
        if !record.is_tombstone() {
            base = base.payload(record.value());
        }
        if let Some(key) = record.key() {
            base = base.key(key);
        }
        if let Some(p) = record.partition() {
            base = base.partition(i32::try_from(p).unwrap_or(i32::MAX));
        }
        if let Some(ts) = record.timestamp() {
            base = base.timestamp(ts);
        }
        let deadline = Instant::now() + self.delivery_timeout;
        loop {
            match self.inner.send(base) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    base = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(kafka_error(
                        &format!("sending to topic '{topic}'"),
                        &self.bootstrap,
                        e,
                        self.inner.context().last_error(),
                    ))
                }
            }
        }
    }

    /// Waits for `n` delivery reports and returns the metadata in send order.
    fn collect(&self, topic: &str, n: usize, rx: &Receiver<(usize, DeliveryOutcome)>) -> Result<Vec<RecordMetadata>> {
        let mut out: Vec<Option<RecordMetadata>> = vec![None; n];
        let mut first_error = None;
        // librdkafka reports every record by message.timeout.ms; the margin covers its timer granularity.
        let deadline = Instant::now() + self.delivery_timeout + Duration::from_secs(5);
        for _ in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((index, outcome)) = rx.recv_timeout(left) else {
                return Err(self.lost(topic));
            };
            match outcome {
                Ok((partition, offset, ts)) => {
                    let md = RecordMetadata::new(
                        topic,
                        u32::try_from(partition).unwrap_or_default(),
                        u64::try_from(offset).unwrap_or_default(),
                        ts.unwrap_or(-1),
                    );
                    if let Some(slot) = out.get_mut(index) {
                        *slot = Some(md);
                    }
                }
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some((index, e));
                    }
                }
            }
        }
        if let Some((index, e)) = first_error {
            let what = if n == 1 {
                format!("sending to topic '{topic}'")
            } else {
                format!("sending record {index} of a batch of {n} to topic '{topic}'")
            };
            return Err(kafka_error(
                &what,
                &self.bootstrap,
                e,
                self.inner.context().last_error(),
            ));
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// The error when librdkafka never reported a delivery (it always should).
    fn lost(&self, topic: &str) -> crate::Error {
        kafka_error(
            &format!("waiting for the acknowledgement of a send to topic '{topic}'"),
            &self.bootstrap,
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            self.inner.context().last_error(),
        )
    }
}

impl RecordSink for Producer {
    fn send(&self, topic: &str, record: Record) -> Result<RecordMetadata> {
        Producer::send(self, topic, record)
    }
    fn send_batch(&self, topic: &str, records: Vec<Record>) -> Result<Vec<RecordMetadata>> {
        Producer::send_batch(self, topic, records)
    }
    fn flush(&self) -> Result<()> {
        Producer::flush(self)
    }
}
