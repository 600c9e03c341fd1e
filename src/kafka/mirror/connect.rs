//! Reaching the cluster for the mirror: the admin client and the producer
//! (retried until they answer), the Kafka topics checked or created, and the
//! producer's delivery reports routed to the forwarding core.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{Producer as _, ProducerContext, ThreadedProducer};

use super::source::Source;
use super::{MirrorBuilder, Shared};
use crate::error::{Error, Result};
use crate::kafka::context::Context;
use crate::kafka::error::kafka_error;
use crate::kafka::settings::ms;
use crate::kafka::Admin;

/// Pause before trying to connect again.
const RETRY: Duration = Duration::from_secs(2);

/// A delivery report: partition slot, local offset, and librdkafka's error if it failed.
pub(super) struct Ack {
    pub(super) slot: usize,
    pub(super) offset: u64,
    pub(super) error: Option<KafkaError>,
}

/// The producer's callbacks: delivery reports go to the core's channel.
pub(super) struct MirrorContext {
    pub(super) inner: Context,
    acks: Sender<Ack>,
}

impl ClientContext for MirrorContext {
    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, _log_message: &str) {}

    fn error(&self, error: KafkaError, reason: &str) {
        self.inner.error(error, reason);
    }
}

impl ProducerContext for MirrorContext {
    type DeliveryOpaque = Box<(usize, u64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Box<(usize, u64)>) {
        let (slot, offset) = *opaque;
        let error = result.as_ref().err().map(|(e, _)| e.clone());
        // The core outlives the producer; a closed channel means it gave up waiting.
        let _ = self.acks.send(Ack { slot, offset, error });
    }
}

/// An error while connecting: worth another try or not.
enum ConnectError {
    Retry(Error),
    Fatal(Error),
}

/// Connects and checks the topics, retrying until it works, the mirror is
/// stopped (`None`) or a check fails for good.
pub(super) fn connect_until_done(
    b: &MirrorBuilder,
    source: &dyn Source,
    shared: &Shared,
    tx: &Sender<Ack>,
) -> Result<Option<(Admin, ThreadedProducer<MirrorContext>)>> {
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return Ok(None);
        }
        match connect(b, source, tx) {
            Ok(c) => {
                shared.status.lock().last_error = None;
                return Ok(Some(c));
            }
            Err(ConnectError::Fatal(e)) => return Err(e),
            Err(ConnectError::Retry(e)) => {
                shared.status.lock().last_error = Some(format!("{e} (retrying)"));
                sleep_unless_stopped(shared, RETRY);
            }
        }
    }
}

pub(super) fn sleep_unless_stopped(shared: &Shared, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !shared.stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect(
    b: &MirrorBuilder,
    source: &dyn Source,
    tx: &Sender<Ack>,
) -> std::result::Result<(Admin, ThreadedProducer<MirrorContext>), ConnectError> {
    let mut ab = Admin::builder(b.settings.bootstrap.clone())
        .connect_timeout(Some(b.connect_timeout))
        .request_timeout(b.connect_timeout);
    for (k, v) in &b.settings.raw {
        ab = ab.set(k, v);
    }
    let admin = ab.build().map_err(ConnectError::Retry)?;
    for t in &b.topics {
        let local = source.partition_count(t).map_err(ConnectError::Fatal)?;
        ensure_topic(&admin, &b.settings.bootstrap, t, local)?;
    }
    let config = b
        .settings
        .client_config(&[
            ("acks", "all".into()),
            ("enable.idempotence", "true".into()),
            ("message.timeout.ms", ms(b.delivery_timeout)),
            ("linger.ms", "5".into()),
            (
                "queue.buffering.max.messages",
                (b.max_in_flight + super::forward::POLL_MAX).to_string(),
            ),
        ])
        .map_err(ConnectError::Fatal)?;
    let ctx = MirrorContext {
        inner: Context::default(),
        acks: tx.clone(),
    };
    let producer = ThreadedProducer::from_config_and_context(&config, ctx).map_err(|e| {
        ConnectError::Fatal(kafka_error(
            "creating the mirror's producer",
            &b.settings.bootstrap,
            e,
            None,
        ))
    })?;
    // The producer's own connection (and the metadata of the topics) before
    // the mirror counts as connected: a cluster that answered the admin
    // client and refuses the producer is reported and retried here.
    for t in &b.topics {
        producer
            .client()
            .fetch_metadata(Some(t), b.connect_timeout)
            .map_err(|e| {
                let last = producer.context().inner.last_error();
                ConnectError::Retry(kafka_error(
                    &format!("the mirror's producer asking for topic '{t}'"),
                    &b.settings.bootstrap,
                    e,
                    last,
                ))
            })?;
    }
    Ok((admin, producer))
}

/// Creates the Kafka topic with `local` partitions if missing; fails for
/// good when it has fewer.
fn ensure_topic(admin: &Admin, bootstrap: &str, topic: &str, local: u32) -> std::result::Result<(), ConnectError> {
    let at_kafka = match admin.partition_count(topic).map_err(ConnectError::Retry)? {
        Some(n) => n,
        None => {
            match admin.create_topic(topic, local) {
                Ok(()) => {}
                Err(Error::Kafka { ref source, .. })
                    if source.rdkafka_error_code() == Some(Code::TopicAlreadyExists) => {}
                Err(e) => return Err(ConnectError::Retry(e)),
            }
            admin
                .partition_count(topic)
                .map_err(ConnectError::Retry)?
                .unwrap_or(local)
        }
    };
    if at_kafka < local {
        return Err(ConnectError::Fatal(partition_mismatch(
            bootstrap, topic, at_kafka, local,
        )));
    }
    Ok(())
}

pub(super) fn partition_mismatch(bootstrap: &str, topic: &str, at_kafka: u32, local: u32) -> Error {
    Error::Kafka {
        context: format!(
            "mirroring topic '{topic}' to the Kafka cluster at {bootstrap}: the Kafka topic has {at_kafka} partitions \
             and the local topic {local}; the mirror keeps partition numbers, so add partitions at Kafka \
             (kafka-topics --alter --topic {topic} --partitions {local}) or mirror into an empty cluster"
        ),
        source: Box::new(KafkaError::AdminOp(Code::InvalidPartitions)),
    }
}
