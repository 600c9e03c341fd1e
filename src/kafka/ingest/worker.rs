//! The ingest threads: one polls Kafka, one appends to the local topics;
//! every (re)assigned partition is placed at the resume point the local log
//! gives.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::origin::{origin_prefix, push_origin, resume_point, Resume, ORIGIN_HEADER};
use super::PartitionStatus;
use crate::broker::Broker;
use crate::config::OffsetReset;
use crate::error::{Error, Result};
use crate::kafka::error::kafka_error;
use crate::names::TopicPartition;
use crate::producer::Producer;
use crate::record::BorrowedRecord;

/// How long one poll waits for the first message of a batch.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How often the stored positions are committed to the Kafka group (informational).
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// What the ingest thread and the handle share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) state: Mutex<State>,
    pub(crate) pipeline: Pipeline,
}

/// Per-partition progress plus the first fatal error.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) partitions: BTreeMap<TopicPartition, Progress>,
    /// Set by the rebalance callback; the thread stops before appending anything more.
    pub(crate) fatal: Option<Error>,
    /// The client's last asynchronous error (connection lost...), for status.
    pub(crate) client_error: Option<String>,
    pub(crate) running: bool,
}

/// One partition's progress.
#[derive(Debug, Default, Clone)]
pub(crate) struct Progress {
    /// Next Kafka offset to store: one past the last stored (or accepted into
    /// the batch being appended). `None`: nothing of this partition stored.
    pub(crate) next: Option<u64>,
    /// The first record after an assignment is checked against `next`.
    pub(crate) just_assigned: bool,
    pub(crate) ingested: u64,
    pub(crate) skipped: u64,
    pub(crate) last_error: Option<String>,
}

impl Progress {
    pub(crate) fn status(&self, tp: &TopicPartition) -> PartitionStatus {
        PartitionStatus {
            topic: tp.topic.clone(),
            partition: tp.partition,
            last_offset: self.next.and_then(|n| n.checked_sub(1)),
            ingested: self.ingested,
            skipped: self.skipped,
            last_error: self.last_error.clone(),
        }
    }
}

/// How the thread places partitions.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub(crate) broker: Broker,
    pub(crate) bootstrap: String,
    pub(crate) reset: OffsetReset,
    pub(crate) resume_scan: u64,
}

impl Placement {
    /// Sets each partition of `tpl` to its resume offset: one past the last
    /// Kafka offset stored locally (or kept in memory for a batch being
    /// appended, whichever is further), else where the reset policy says.
    pub(crate) fn place(&self, shared: &Shared, tpl: &mut TopicPartitionList) -> Result<()> {
        let tps: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| TopicPartition::new(e.topic(), e.partition().max(0) as u32))
            .collect();
        for tp in tps {
            let local = self.broker.topic(&tp.topic)?.partition(tp.partition)?;
            let stored = match resume_point(&local, &tp.topic, tp.partition, self.resume_scan)? {
                Resume::At(n) => Some(n),
                Resume::Fresh => None,
            };
            let mut state = shared.state.lock();
            let progress = state.partitions.entry(tp.clone()).or_default();
            let next = match (stored, progress.next) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            progress.next = next;
            progress.just_assigned = true;
            let offset = match (next, self.reset) {
                (Some(n), _) => Offset::Offset(i64::try_from(n).unwrap_or(i64::MAX)),
                (None, OffsetReset::Earliest) => Offset::Beginning,
                (None, OffsetReset::Latest) => Offset::End,
                (None, OffsetReset::None) => Offset::Stored,
            };
            tpl.set_partition_offset(&tp.topic, tp.partition as i32, offset)
                .map_err(|e| {
                    let what = format!("ingest: placing topic '{}' partition {}", tp.topic, tp.partition);
                    kafka_error(&what, &self.bootstrap, e, None)
                })?;
        }
        Ok(())
    }
}

/// librdkafka callbacks: errors kept for status, rebalances placed from the local log.
pub(crate) struct IngestContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) placement: Placement,
}

impl ClientContext for IngestContext {
    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, _log_message: &str) {}

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.state.lock().client_error = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for IngestContext {
    /// Eager protocol only (the builder sets `range`): an assignment is taken
    /// whole, with every offset set from the local log before any fetch.
    ///
    /// It runs inside the poller's `poll`: it first waits for the appender
    /// to append every batch already handed over, so revoked partitions get
    /// nothing more and resume points are read from a local log that holds
    /// everything fetched before the rebalance.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        self.shared.pipeline.drain();
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self
                .placement
                .place(&self.shared, tpl)
                .and_then(|()| consumer.assign(tpl).map_err(|e| self.kafka("assigning partitions", e))),
            _ => consumer.unassign().map_err(|e| self.kafka("revoking partitions", e)),
        };
        if let Err(e) = result {
            let mut state = self.shared.state.lock();
            state.fatal.get_or_insert(e);
        }
    }
}

impl IngestContext {
    fn kafka(&self, what: &str, e: KafkaError) -> Error {
        let last = self.shared.state.lock().client_error.clone();
        kafka_error(&format!("ingest: {what}"), &self.placement.bootstrap, e, last)
    }
}

/// Most polled batches waiting for the appender. A batch holds at most
/// `max_batch` messages (librdkafka's buffers, not copies).
const PIPELINE_DEPTH: usize = 4;

/// The appender's side of the pipeline, as the poller (and the rebalance
/// callback, which runs inside the poller's `poll`) sees it.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    counts: Mutex<Counts>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Counts {
    /// Batches handed to the appender.
    sent: u64,
    /// Batches the appender finished (appended, or found empty).
    done: u64,
    /// The appender returned (error, or end of the channel).
    stopped: bool,
}

impl Pipeline {
    fn sent(&self) {
        self.counts.lock().sent += 1;
    }

    fn done(&self) {
        self.counts.lock().done += 1;
        self.changed.notify_all();
    }

    fn stopped(&self) {
        self.counts.lock().stopped = true;
        self.changed.notify_all();
    }

    fn appender_stopped(&self) -> bool {
        self.counts.lock().stopped
    }

    /// Waits until every batch handed over is appended (or the appender
    /// stopped): the rebalance callback reads resume points from the local
    /// log only after this, as when polling and appending took turns.
    pub(crate) fn drain(&self) {
        let mut counts = self.counts.lock();
        while counts.done < counts.sent && !counts.stopped {
            self.changed.wait(&mut counts);
        }
    }
}

/// Polls Kafka on this thread and appends on a second one, with a bounded
/// channel of batches between them; returns when asked to stop or on the
/// first fatal error of either side (which stops the other).
///
/// The channel carries librdkafka's messages themselves (no copy); both
/// threads live inside one scope that borrows the consumer, so every
/// message is released before the consumer closes. A batch in the channel
/// at a crash was never appended: the next start resumes from the local
/// log and fetches it again. On a clean stop the poller hands over its last
/// batch and closes the channel; the appender appends everything handed
/// over, then flushes. `one_topic`: the ingest reads a single Kafka topic,
/// so every message's partition number alone says where it goes.
pub(crate) fn run(
    consumer: &BaseConsumer<IngestContext>,
    producer: &Producer,
    shared: &Shared,
    max_batch: usize,
    one_topic: bool,
) -> Result<()> {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<BorrowedMessage<'_>>>(PIPELINE_DEPTH);
    std::thread::scope(|scope| {
        let appender = std::thread::Builder::new()
            .name("logbus-ingest-append".into())
            .spawn_scoped(scope, move || {
                let result = append_all(&rx, producer, shared, one_topic);
                drop(rx);
                shared.pipeline.stopped();
                result
            })
            .map_err(|e| Error::io("spawning the ingest's append thread", "", e))?;
        let polled = poll_all(consumer, shared, max_batch, &tx);
        drop(tx);
        let appended = match appender.join() {
            Ok(r) => r,
            Err(_) => Err(Error::config("ingest", "thread", "the ingest's append thread panicked")),
        };
        // The appender's error first: a poll that stopped because the
        // appender did is not the cause.
        appended.and(polled)?;
        commit(consumer, shared, CommitMode::Sync);
        Ok(())
    })
}

/// The polling side: rounds of up to `max_batch` messages handed to the
/// appender, informational commits once a second.
fn poll_all<'c>(
    consumer: &'c BaseConsumer<IngestContext>,
    shared: &Shared,
    max_batch: usize,
    tx: &crossbeam_channel::Sender<Vec<BorrowedMessage<'c>>>,
) -> Result<()> {
    let mut last_commit = Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        if shared.pipeline.appender_stopped() {
            return Ok(());
        }
        let mut messages = Vec::with_capacity(max_batch.min(4096));
        let mut wait = POLL_WAIT;
        while messages.len() < max_batch {
            match consumer.poll(wait) {
                Some(Ok(m)) => messages.push(m),
                Some(Err(e)) => {
                    shared.state.lock().client_error = Some(e.to_string());
                    break;
                }
                None => break,
            }
            wait = Duration::ZERO;
        }
        if let Some(e) = shared.state.lock().fatal.take() {
            return Err(e);
        }
        if !messages.is_empty() {
            shared.pipeline.sent();
            if tx.send(messages).is_err() {
                // The appender stopped; its error is the one to report.
                return Ok(());
            }
        }
        if last_commit.elapsed() >= COMMIT_EVERY {
            commit(consumer, shared, CommitMode::Async);
            last_commit = Instant::now();
        }
    }
    Ok(())
}

/// The appending side: every batch handed over, in order, then a flush.
fn append_all(
    rx: &crossbeam_channel::Receiver<Vec<BorrowedMessage<'_>>>,
    producer: &Producer,
    shared: &Shared,
    one_topic: bool,
) -> Result<()> {
    for messages in rx {
        let parts = sort(&messages, shared, one_topic);
        for part in &parts {
            append(producer, shared, &messages, part)?;
        }
        drop(messages);
        shared.pipeline.done();
    }
    producer.flush()
}

/// One partition's share of a round of messages.
struct Part {
    topic: String,
    partition: u32,
    /// Next offset to store, as of the messages taken so far.
    next: Option<u64>,
    skipped: u64,
    note: Option<String>,
    /// Indices of the messages to append, in offset order.
    take: Vec<usize>,
}

/// Splits a round's messages by partition, dropping each message at or
/// before what is already stored or taken (a re-delivery after a
/// rebalance) and counting offsets passed over. The shared state is read
/// once per partition, not per message; with `one_topic` a message's topic
/// name (a call into librdkafka and a UTF-8 check) is read once per
/// partition too.
fn sort(messages: &[BorrowedMessage<'_>], shared: &Shared, one_topic: bool) -> Vec<Part> {
    let mut parts: Vec<Part> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (Ok(partition), Ok(offset)) = (u32::try_from(m.partition()), u64::try_from(m.offset())) else {
            continue;
        };
        let k = match parts
            .iter()
            .position(|p| p.partition == partition && (one_topic || p.topic == m.topic()))
        {
            Some(k) => k,
            None => {
                let mut state = shared.state.lock();
                let progress = state
                    .partitions
                    .entry(TopicPartition::new(m.topic(), partition))
                    .or_default();
                let mut part = Part {
                    topic: m.topic().to_string(),
                    partition,
                    next: progress.next,
                    skipped: 0,
                    note: None,
                    take: Vec::new(),
                };
                if std::mem::take(&mut progress.just_assigned) {
                    if let Some(next) = progress.next.filter(|&n| offset > n) {
                        part.note = Some(format!(
                            "resumed at Kafka offset {next} but the cluster's next record was {offset}: offsets \
                             {next}..{} are not on the cluster any more (retention or compaction) and were not ingested",
                            offset - 1
                        ));
                    }
                }
                parts.push(part);
                parts.len() - 1
            }
        };
        let Some(part) = parts.get_mut(k) else { continue };
        match part.next {
            Some(next) if offset < next => continue,
            Some(next) => part.skipped += offset - next,
            None => {}
        }
        part.next = Some(offset + 1);
        part.take.push(i);
    }
    parts
}

/// Appends one partition's messages as one `send_batch` (one local batch,
/// or a batch per segment when it spans a roll: a crash keeps a prefix),
/// each with its key, value, headers, timestamp and the origin header,
/// from the bytes librdkafka lends (no allocation per record).
fn append(producer: &Producer, shared: &Shared, messages: &[BorrowedMessage<'_>], part: &Part) -> Result<()> {
    let prefix = origin_prefix(&part.topic, part.partition);
    let mut origins: Vec<u8> = Vec::with_capacity(part.take.len() * (prefix.len() + 8));
    let mut ends = Vec::with_capacity(part.take.len());
    for &i in &part.take {
        if let Some(offset) = messages.get(i).and_then(|m| u64::try_from(m.offset()).ok()) {
            push_origin(&mut origins, &prefix, offset);
        }
        ends.push(origins.len());
    }
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(part.take.len());
    let mut spans = Vec::with_capacity(part.take.len());
    let mut from = 0;
    for (&i, &to) in part.take.iter().zip(&ends) {
        let start = headers.len();
        if let Some(hs) = messages.get(i).and_then(|m| m.headers()) {
            headers.extend(hs.iter().map(|h| (h.key, h.value.unwrap_or_default())));
        }
        headers.push((ORIGIN_HEADER, origins.get(from..to).unwrap_or_default()));
        from = to;
        spans.push(start..headers.len());
    }
    let mut records = Vec::with_capacity(part.take.len());
    for (&i, span) in part.take.iter().zip(spans) {
        let Some(m) = messages.get(i) else { continue };
        // A keyed message with a null payload is a tombstone in Kafka: it stays one.
        let record = match (m.payload(), m.key()) {
            (None, Some(key)) => BorrowedRecord::tombstone(key),
            (payload, _) => BorrowedRecord::new(payload.unwrap_or_default()),
        };
        let mut r = record
            .with_headers(headers.get(span).unwrap_or_default())
            .with_partition(part.partition);
        if let Some(key) = m.key() {
            r = r.with_key(key);
        }
        if let Some(ts) = m.timestamp().to_millis() {
            r = r.with_timestamp(ts);
        }
        records.push(r);
    }
    let result = if records.is_empty() {
        Ok(Vec::new())
    } else {
        producer.send_batch_borrowed(&part.topic, &records)
    };
    let mut state = shared.state.lock();
    let progress = state
        .partitions
        .entry(TopicPartition::new(part.topic.as_str(), part.partition))
        .or_default();
    match result {
        Ok(_) => {
            progress.next = progress.next.max(part.next);
            progress.ingested += records.len() as u64;
            progress.skipped += part.skipped;
            if part.note.is_some() {
                progress.last_error.clone_from(&part.note);
            }
            Ok(())
        }
        Err(e) => {
            progress.last_error = Some(e.to_string());
            Err(e)
        }
    }
}

/// Commits the next offset of every partition stored locally to the Kafka
/// group, so `kafka-consumer-groups` shows the lag. Informational only:
/// resumption never reads it, and a failure is only noted.
fn commit(consumer: &BaseConsumer<IngestContext>, shared: &Shared, mode: CommitMode) {
    let Ok(owned) = consumer.assignment() else {
        return;
    };
    let mut tpl = TopicPartitionList::with_capacity(owned.count());
    {
        let state = shared.state.lock();
        for e in owned.elements() {
            let tp = TopicPartition::new(e.topic(), e.partition().max(0) as u32);
            if let Some(next) = state.partitions.get(&tp).and_then(|p| p.next) {
                let _ = tpl.add_partition_offset(e.topic(), e.partition(), Offset::Offset(next as i64));
            }
        }
    }
    if tpl.count() == 0 {
        return;
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        shared.state.lock().client_error = Some(format!("committing to the Kafka group (informational): {e}"));
    }
}
