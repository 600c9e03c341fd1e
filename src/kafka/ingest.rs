//! `kafka::Ingest`: copies Kafka topics into local topics of the same name
//! and partition number, exactly once locally across crashes and restarts.
//!
//! # Where each record's origin is kept
//!
//! Every ingested local record carries, after its own headers, one reserved
//! header (see [`KafkaOrigin`]):
//!
//! | header | value |
//! |---|---|
//! | `kafka.origin` | `<topic>/<partition>/<offset>` in ASCII, e.g. `orders/3/12345` (topic names hold no `/`) |
//!
//! Directories written by earlier development builds hold the origin as
//! three headers instead, `kafka.topic` (the topic, UTF-8),
//! `kafka.partition` and `kafka.offset` (ASCII decimal); they are read the
//! same way (the resume scan and [`KafkaOrigin::of`] accept both forms), so
//! such a directory resumes where it stopped and continues in the one-header
//! form.
//!
//! The record's own key, value, headers (order and duplicates kept) and
//! timestamp are copied unchanged; a record without a timestamp gets the
//! local append time. A Kafka tombstone (null value) becomes an empty value.
//!
//! # Exactly once locally
//!
//! The local log is the only source of truth; Kafka group commits are made
//! once a second for `kafka-consumer-groups`' lag display and never read.
//!
//! 1. **Resume point.** Before any record of a partition is fetched (at
//!    start in assign mode, inside the rebalance callback in group mode),
//!    the ingest reads the local partition backwards from its end until it
//!    finds a record whose origin names this Kafka topic and partition,
//!    and sets the partition's fetch offset to that record's offset + 1.
//!    Records without an origin (appended by
//!    someone else) are skipped, at most [`IngestBuilder::resume_scan`] of
//!    them; past that `start` fails (or the ingest stops) with an error
//!    rather than guessing. A partition with no ingested record starts where
//!    [`IngestBuilder::offset_reset`] says (default `Earliest`), whatever the
//!    group has committed.
//! 2. **Append.** Records of one partition reach the ingest in Kafka offset
//!    order. One thread polls Kafka and hands each round of messages (up to
//!    [`IngestBuilder::max_batch`]) to a second thread through a bounded
//!    channel (a few rounds deep), which appends them in the order they were
//!    polled. Each round's records of one partition are appended with one
//!    `send_batch` to that local partition: one batch, checksummed as a
//!    whole (two if it spans a segment roll), so a crash leaves all of it, a
//!    prefix of it or none of it (recovery cuts a torn batch; the log stays
//!    a gap-free prefix of what was appended). Rounds still in the channel
//!    at a crash were never appended, so step 1 fetches them again. A
//!    rebalance waits (inside the rebalance callback) until every round
//!    handed over is appended, then reads the resume points.
//! 3. **No duplicate.** A record at or before the last stored offset (a
//!    re-delivery around a rebalance) is dropped, not appended.
//!
//! After a crash at any moment (kill -9 included), what is stored locally is
//! a prefix, in Kafka offset order, of every partition's records from its
//! first ingested offset; step 1 continues exactly after its last record, so
//! nothing is stored twice and nothing is left out.
//!
//! Gaps in Kafka offsets are not losses: compaction, transaction markers
//! and retention leave offsets without records. Each skipped offset is
//! counted in [`PartitionStatus::skipped`]; when the resume offset itself
//! is gone from the cluster (Kafka retention deleted it while the ingest was
//! stopped) the fetch continues per `offset_reset` (librdkafka's
//! `auto.offset.reset`, default earliest) and [`PartitionStatus::last_error`]
//! says which offsets were never ingested.
//!
//! # Durability
//!
//! Local appends follow the broker's [`Durability`](crate::Durability).
//! Across a process crash every mode keeps what was appended. Across power
//! loss only `Durability::Sync` keeps every appended record; under
//! `PageCache` or `Interval` the newest appends may be lost, but recovery
//! keeps a gap-free prefix, so the next start resumes after the last record
//! that survived: no gap and no duplicate relative to what survived, and the
//! lost records are fetched again from Kafka (if it still has them).
//!
//! A local topic that also receives other writers keeps working (their
//! records are skipped by the resume scan), but local retention that deletes
//! every ingested record of a partition makes it look never ingested.

mod origin;
mod worker;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::TopicPartitionList;

pub use origin::{KafkaOrigin, OFFSET_HEADER, ORIGIN_HEADER, PARTITION_HEADER, TOPIC_HEADER};

use super::error::kafka_error;
use super::settings::Settings;
use crate::broker::Broker;
use crate::config::{OffsetReset, TopicConfig};
use crate::error::{Error, Result};
use worker::{IngestContext, Placement, Shared};

/// The Kafka group an ingest joins unless told otherwise.
pub const DEFAULT_GROUP: &str = "logbus-ingest";

/// Builds an [`Ingest`]. Setters consume and return the builder.
#[derive(Debug, Clone)]
#[must_use]
pub struct IngestBuilder {
    settings: Settings,
    topics: Vec<String>,
    group: String,
    assign: bool,
    offset_reset: OffsetReset,
    resume_scan: u64,
    max_batch: usize,
}

impl IngestBuilder {
    /// Adds a Kafka topic to copy (repeat for several). At least one is needed.
    pub fn topic(mut self, name: impl Into<String>) -> IngestBuilder {
        self.topics.push(name.into());
        self
    }

    /// The Kafka consumer group. Default = `"logbus-ingest"`.
    pub fn group(mut self, group_id: impl Into<String>) -> IngestBuilder {
        self.group = group_id.into();
        self
    }

    /// Reads every partition of the topics by manual assignment instead of
    /// joining the group (no rebalances, no join delay; offsets are still
    /// committed to the group for lag display). Default = false (group).
    pub fn assign_all(mut self, enabled: bool) -> IngestBuilder {
        self.assign = enabled;
        self
    }

    /// Where a partition with no ingested record locally starts:
    /// `Earliest` (the cluster's first offset), `Latest` (only new records),
    /// `None` (the group's committed offset, an error without one). Also
    /// the policy when the resume offset is gone from the cluster.
    /// Default = `OffsetReset::Earliest`.
    pub fn offset_reset(mut self, reset: OffsetReset) -> IngestBuilder {
        self.offset_reset = reset;
        self
    }

    /// Most records without an origin header the resume scan skips at the end
    /// of a local partition before giving up. Default = 10 000.
    pub fn resume_scan(mut self, records: u64) -> IngestBuilder {
        self.resume_scan = records;
        self
    }

    /// Most records taken from Kafka per round of local appends. Default = 2000.
    pub fn max_batch(mut self, records: usize) -> IngestBuilder {
        self.max_batch = records;
        self
    }

    /// `start()` fails if the cluster does not answer within this time. Default = 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> IngestBuilder {
        self.settings.connect_timeout = Some(d);
        self
    }

    /// Sets a raw librdkafka setting (`security.protocol`, `session.timeout.ms`...).
    /// Raw settings win over the ingest's own.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> IngestBuilder {
        self.settings.set(key, value);
        self
    }

    /// Checks the cluster and the topics, creates missing local topics (with
    /// the Kafka partition count), and starts copying on two threads
    /// (`logbus-ingest` polls Kafka, `logbus-ingest-append` appends locally).
    ///
    /// Errors: the cluster unreachable within `connect_timeout` (nothing is
    /// written locally then); a Kafka topic that does not exist; a local
    /// topic with fewer partitions than the Kafka topic; a resume point that
    /// cannot be found (see [`IngestBuilder::resume_scan`]).
    pub fn start(self, broker: &Broker) -> Result<Ingest> {
        self.validate()?;
        let timeout = self.settings.connect_timeout.unwrap_or(Duration::from_secs(10));
        let shared = Arc::new(Shared::default());
        let placement = Placement {
            broker: broker.clone(),
            bootstrap: self.settings.bootstrap.clone(),
            reset: self.offset_reset,
            resume_scan: self.resume_scan,
        };
        let reset = match self.offset_reset {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::None => "error",
        };
        let config = self.settings.client_config(&[
            ("group.id", self.group.clone()),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            ("enable.partition.eof", "false".into()),
            ("auto.offset.reset", reset.into()),
            // Eager rebalances: the callback places whole assignments (see worker.rs).
            ("partition.assignment.strategy", "range".into()),
            // A fetcher whose queue is full waits this long before fetching again
            // (librdkafka's default, 1 s, stalled the ingest for whole seconds
            // while it appended what it had taken from a full queue).
            ("fetch.queue.backoff.ms", "10".into()),
        ])?;
        let context = IngestContext {
            shared: Arc::clone(&shared),
            placement: placement.clone(),
        };
        let consumer = BaseConsumer::from_config_and_context(&config, context)
            .map_err(|e| kafka_error("creating the ingest's consumer", &self.settings.bootstrap, e, None))?;
        // The consumer's own connection answers the reachability check and
        // the partition counts (the whole cluster's metadata: asking never
        // auto-creates a topic), so fetching starts on a connection already up.
        let md = crate::kafka::settings::first_metadata(
            consumer.client(),
            timeout,
            || drop(consumer.poll(crate::kafka::settings::EVENTS_WAIT)),
            || shared.state.lock().client_error.clone(),
        )
        .map_err(|e| {
            let last = shared.state.lock().client_error.clone();
            kafka_error(
                &format!("the first metadata request (connect_timeout {timeout:?})"),
                &self.settings.bootstrap,
                e,
                last,
            )
        })?;
        let mut counts = Vec::with_capacity(self.topics.len());
        for topic in &self.topics {
            let Some(n) = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| u32::try_from(t.partitions().len()).unwrap_or(u32::MAX))
            else {
                return Err(Error::config(
                    "topic",
                    topic,
                    format!(
                        "the Kafka cluster at {} has no topic '{topic}'; create it there first",
                        self.settings.bootstrap
                    ),
                ));
            };
            counts.push((topic.clone(), n));
        }
        for (topic, n) in &counts {
            local_topic(broker, topic, *n)?;
        }
        let names: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        if self.assign {
            let mut tpl = TopicPartitionList::new();
            for (topic, n) in &counts {
                for p in 0..*n {
                    tpl.add_partition(topic, p as i32);
                }
            }
            placement.place(&shared, &mut tpl)?;
            consumer
                .assign(&tpl)
                .map_err(|e| kafka_error("assigning partitions", &self.settings.bootstrap, e, None))?;
        } else {
            consumer.subscribe(&names).map_err(|e| {
                kafka_error(
                    &format!("subscribing group '{}' to {names:?}", self.group),
                    &self.settings.bootstrap,
                    e,
                    None,
                )
            })?;
        }
        shared.state.lock().running = true;
        let producer = broker.producer();
        let thread_shared = Arc::clone(&shared);
        let max_batch = self.max_batch;
        let one_topic = self.topics.len() == 1;
        let thread = std::thread::Builder::new()
            .name("logbus-ingest".into())
            .spawn(move || {
                let result = worker::run(&consumer, &producer, &thread_shared, max_batch, one_topic);
                drop(consumer);
                thread_shared.state.lock().running = false;
                result
            })
            .map_err(|e| Error::io("spawning the ingest thread", "", e))?;
        Ok(Ingest {
            shared,
            thread: Some(thread),
            bootstrap: self.settings.bootstrap,
            topics: self.topics,
            started: Instant::now(),
        })
    }

    fn validate(&self) -> Result<()> {
        if self.topics.is_empty() {
            return Err(Error::config(
                "topic",
                "none",
                "give at least one Kafka topic to ingest",
            ));
        }
        for t in &self.topics {
            crate::topic::validate_topic_name(t)?;
        }
        if self.max_batch == 0 {
            return Err(Error::config("max_batch", 0, "must be at least 1"));
        }
        if self.resume_scan == 0 {
            return Err(Error::config("resume_scan", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// Opens the local topic, creating it with `partitions` if missing; it needs
/// at least as many partitions as the Kafka topic.
fn local_topic(broker: &Broker, topic: &str, partitions: u32) -> Result<()> {
    let local = match broker.topic(topic) {
        Ok(t) => t,
        Err(Error::UnknownTopic { .. }) => match broker.create_topic(topic, TopicConfig::new(partitions)) {
            Ok(t) => t,
            Err(Error::TopicExists { .. }) => broker.topic(topic)?,
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    if local.partition_count() < partitions {
        return Err(Error::config(
            "topic",
            topic,
            format!(
                "the Kafka topic '{topic}' has {partitions} partitions but the local topic '{topic}' has {}; \
                 ingest keeps partition numbers, so the local topic needs at least {partitions}: \
                 ingest into a fresh directory or recreate the local topic with {partitions} partitions",
                local.partition_count()
            ),
        ));
    }
    Ok(())
}

/// One partition's progress, as [`Ingest::status`] and [`IngestReport`] show it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionStatus {
    /// The topic (same name locally and on Kafka).
    pub topic: String,
    /// The partition (same number locally and on Kafka).
    pub partition: u32,
    /// The last Kafka offset stored locally, `None` before the first.
    pub last_offset: Option<u64>,
    /// Records this ingest appended locally since `start`.
    pub ingested: u64,
    /// Kafka offsets passed over without a record (compaction, transaction
    /// markers, retention).
    pub skipped: u64,
    /// The last problem seen on this partition.
    pub last_error: Option<String>,
}

/// A snapshot of a running ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestStatus {
    /// False once the threads stopped (asked to, or on a fatal error that `stop` returns).
    pub running: bool,
    /// Every partition seen so far, sorted.
    pub partitions: Vec<PartitionStatus>,
    /// The Kafka client's last error (a lost connection, a failed informational commit).
    pub last_error: Option<String>,
}

impl IngestStatus {
    /// Records ingested since `start`, all partitions together.
    pub fn ingested(&self) -> u64 {
        self.partitions.iter().map(|p| p.ingested).sum()
    }
}

/// What a stopped ingest did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestReport {
    /// Every partition's final progress.
    pub partitions: Vec<PartitionStatus>,
    /// Records ingested, all partitions together.
    pub ingested: u64,
    /// Time from `start` to the end of `stop`.
    pub elapsed: Duration,
}

/// A running ingest (Kafka → local). Stop it with [`Ingest::stop`];
/// dropping it stops it too, discarding the report.
pub struct Ingest {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<()>>>,
    bootstrap: String,
    topics: Vec<String>,
    started: Instant,
}

impl fmt::Debug for Ingest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("kafka::Ingest")
            .field("bootstrap", &self.bootstrap)
            .field("topics", &self.topics)
            .finish()
    }
}

impl Ingest {
    /// A builder for an ingest from the cluster at `bootstrap_servers`.
    pub fn builder(bootstrap_servers: impl Into<String>) -> IngestBuilder {
        let mut settings = Settings::new(bootstrap_servers);
        settings.connect_timeout = Some(Duration::from_secs(10));
        IngestBuilder {
            settings,
            topics: Vec::new(),
            group: DEFAULT_GROUP.to_string(),
            assign: false,
            offset_reset: OffsetReset::Earliest,
            resume_scan: 10_000,
            max_batch: 2000,
        }
    }

    /// Progress per partition; cheap (no I/O).
    pub fn status(&self) -> IngestStatus {
        let state = self.shared.state.lock();
        IngestStatus {
            running: state.running,
            partitions: state.partitions.iter().map(|(tp, p)| p.status(tp)).collect(),
            last_error: state.client_error.clone(),
        }
    }

    /// Stops polling, appends every record already polled from Kafka (at
    /// most a few rounds of [`IngestBuilder::max_batch`]; none is dropped),
    /// flushes the local producer, commits the stored positions to the
    /// group (informational) and leaves it. Returns the report, or the error
    /// that stopped the ingest earlier (an append error stops the polling
    /// too; the rounds polled but not appended then are dropped and fetched
    /// again by the next start).
    pub fn stop(mut self) -> Result<IngestReport> {
        let result = self.join();
        let status = self.status();
        result.map(|()| IngestReport {
            ingested: status.ingested(),
            partitions: status.partitions,
            elapsed: self.started.elapsed(),
        })
    }

    fn join(&mut self) -> Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(Error::config("ingest", "thread", "the ingest thread panicked")),
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.join();
    }
}
