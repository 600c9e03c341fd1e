//! The forwarding core shared by both sources: send every record to its
//! partition, track acknowledgements per partition, commit the acknowledged
//! prefix, re-send from it after a failure.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ThreadedProducer};

use super::connect::{connect_until_done, partition_mismatch, sleep_unless_stopped, Ack, MirrorContext};
use super::progress::Progress;
use super::source::{Gap, Source};
use super::status::{MirrorStatus, PartitionStatus};
use super::{MirrorBuilder, Shared, OFFSET_HEADER, PARTITION_HEADER, SOURCE_HEADER};
use crate::error::{Error, Result};
use crate::kafka::error::kafka_error;
use crate::kafka::Admin;
use crate::names::TopicPartition;
use crate::ConsumedRecord;

/// Most records read from the source at once.
pub(super) const POLL_MAX: usize = 2000;
/// How long a poll waits when there is nothing new.
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// How often end offsets and partition counts are looked at again.
const REFRESH: Duration = Duration::from_secs(1);
/// How often counters are published to `Mirror::status` between commits.
const PUBLISH: Duration = Duration::from_millis(10);
/// Pause before sending again after a failed delivery or connection.
const BACKOFF: Duration = Duration::from_millis(500);

/// Where a sent record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flight {
    Sent,
    Acked,
    Failed,
}

/// One mirrored partition.
struct Part {
    tp: TopicPartition,
    /// `logbus.partition` header value.
    partition_text: Vec<u8>,
    /// Next local offset to send.
    pos: u64,
    /// One past the highest offset ever sent.
    sent_upto: u64,
    /// Sent records in offset order, until the acknowledged prefix is popped.
    flights: VecDeque<(u64, Flight)>,
    /// The position last committed.
    committed: u64,
    /// Flights still `Sent`.
    unacked: usize,
    /// Local end offset when last looked at.
    end: u64,
}

impl Part {
    /// Pops the acknowledged prefix; returns the mirrored position.
    fn settle(&mut self) -> u64 {
        while self.flights.front().is_some_and(|f| f.1 == Flight::Acked) {
            self.flights.pop_front();
        }
        self.flights.front().map_or(self.pos, |f| f.0)
    }
}

/// Runs a mirror until `shared.stop` or an error that retrying cannot fix.
pub(super) fn run(b: MirrorBuilder, source: Box<dyn Source>, shared: &Shared) -> Result<()> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let Some((admin, producer)) = connect_until_done(&b, source.as_ref(), shared, &tx)? else {
        return Ok(());
    };
    let source_id = b.source_id.clone().unwrap_or_default().into_bytes();
    let mut core = Core {
        b,
        source,
        shared,
        admin,
        producer,
        acks: rx,
        parts: Vec::new(),
        slots: HashMap::new(),
        source_id,
        in_flight: 0,
        counters: MirrorStatus::default(),
        rewind: false,
        fatal: None,
        last_error: None,
        error_clears: false,
    };
    let topics = core.b.topics.clone();
    for t in &topics {
        let n = core.source.partition_count(t)?;
        core.add_partitions(t, n)?;
    }
    core.commit(true)?;
    core.main_loop()
}

struct Core<'a> {
    b: MirrorBuilder,
    source: Box<dyn Source>,
    shared: &'a Shared,
    admin: Admin,
    producer: ThreadedProducer<MirrorContext>,
    acks: Receiver<Ack>,
    parts: Vec<Part>,
    /// Slots of each topic's partitions, by partition number.
    slots: HashMap<String, Vec<usize>>,
    source_id: Vec<u8>,
    /// Records sent and not yet reported.
    in_flight: usize,
    /// sent, acknowledged, resent, skipped counters.
    counters: MirrorStatus,
    /// A delivery failed: re-send from the first unacknowledged record.
    rewind: bool,
    /// The error to stop with once in-flight records are settled.
    fatal: Option<Error>,
    last_error: Option<String>,
    /// `last_error` is a failed delivery, cleared by the next acknowledgement
    /// (a skipped record's error stays until the next error).
    error_clears: bool,
}

impl Core<'_> {
    fn main_loop(&mut self) -> Result<()> {
        let mut last_commit = Instant::now();
        let mut last_refresh = Instant::now();
        let mut last_publish = Instant::now();
        while !self.shared.stop.load(Ordering::Acquire) {
            self.drain_acks(Duration::ZERO);
            if let Some(e) = self.fatal.take() {
                return self.stop_with(e);
            }
            if self.rewind {
                self.rewind()?;
                continue;
            }
            let window = self.uncommitted();
            if window < self.b.max_in_flight {
                let room = (self.b.max_in_flight - window).min(POLL_MAX);
                match self.source.poll(room, IDLE_WAIT) {
                    Ok(batch) => {
                        for gap in &batch.gaps {
                            self.skip_gap(gap);
                        }
                        for rec in &batch.records {
                            self.send(rec);
                            if self.fatal.is_some() {
                                break;
                            }
                        }
                    }
                    Err(e) => self.fatal = Some(e),
                }
            } else if self.settled_since_commit() >= self.b.max_in_flight.div_ceil(4) as u64 {
                // The window is full of records sent since the last commit:
                // commit the acknowledged prefix to make room.
                self.commit(false)?;
                last_commit = Instant::now();
            } else {
                self.drain_acks(Duration::from_millis(10));
            }
            if last_commit.elapsed() >= self.b.commit_interval {
                self.commit(false)?;
                last_commit = Instant::now();
            } else if last_publish.elapsed() >= PUBLISH {
                self.publish();
                last_publish = Instant::now();
            }
            if last_refresh.elapsed() >= REFRESH {
                self.refresh()?;
                last_refresh = Instant::now();
            }
        }
        // Stop: wait for every acknowledgement, commit what was acknowledged.
        self.wait_in_flight(self.b.delivery_timeout + Duration::from_secs(5));
        self.commit(true)
    }

    /// Records sent (or skipped) since the last commit, over all partitions:
    /// what a crash now would send again. Kept below `max_in_flight`.
    fn uncommitted(&self) -> usize {
        let n: u64 = self.parts.iter().map(|p| p.pos.saturating_sub(p.committed)).sum();
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Records acknowledged in order past the last commit: what a commit now would move.
    fn settled_since_commit(&mut self) -> u64 {
        self.parts
            .iter_mut()
            .map(|p| {
                let committed = p.committed;
                p.settle().saturating_sub(committed)
            })
            .sum()
    }

    /// Settles what is in flight, commits, and returns `e`.
    fn stop_with(&mut self, e: Error) -> Result<()> {
        self.wait_in_flight(self.b.delivery_timeout + Duration::from_secs(5));
        self.commit(true)?;
        Err(e)
    }

    /// Starts mirroring partitions `known..n` of `topic`.
    fn add_partitions(&mut self, topic: &str, n: u32) -> Result<()> {
        let known = self.slots.get(topic).map_or(0, Vec::len) as u32;
        if n <= known {
            return Ok(());
        }
        if known > 0 {
            // The local topic grew: the Kafka topic must have room too.
            let at_kafka = self.admin.partition_count(topic)?.unwrap_or(0);
            if at_kafka < n {
                return Err(partition_mismatch(&self.b.settings.bootstrap, topic, at_kafka, n));
            }
        }
        let tps: Vec<TopicPartition> = (known..n).map(|p| TopicPartition::new(topic, p)).collect();
        let (opened, gaps) = self.source.open(&tps)?;
        for (tp, progress) in opened {
            let end = self.source.end_offset(&tp)?;
            let slot = self.parts.len();
            self.slots.entry(tp.topic.clone()).or_default().push(slot);
            self.parts.push(Part {
                partition_text: tp.partition.to_string().into_bytes(),
                pos: progress.next,
                sent_upto: progress.sent_upto.max(progress.next),
                flights: VecDeque::new(),
                committed: progress.next,
                unacked: 0,
                end,
                tp,
            });
        }
        for gap in &gaps {
            self.skip_gap(gap);
        }
        Ok(())
    }

    fn slot(&self, topic: &str, partition: u32) -> Option<usize> {
        self.slots.get(topic)?.get(partition as usize).copied()
    }

    /// Hands one record to librdkafka (waiting while its queue is full).
    fn send(&mut self, rec: &ConsumedRecord) {
        let Some(slot) = self.slot(rec.topic(), rec.partition()) else {
            return;
        };
        let offset = rec.offset();
        let Some(part) = self.parts.get(slot) else { return };
        if offset < part.pos {
            return;
        }
        let mut headers = OwnedHeaders::new_with_capacity(rec.headers().count() + 3);
        for (name, value) in rec.headers() {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        let mut digits = [0u8; 20];
        let offset_text = crate::kafka::digits::decimal(offset, &mut digits);
        headers = headers
            .insert(Header {
                key: SOURCE_HEADER,
                value: Some(&self.source_id),
            })
            .insert(Header {
                key: PARTITION_HEADER,
                value: Some(&part.partition_text),
            })
            .insert(Header {
                key: OFFSET_HEADER,
                value: Some(offset_text),
            });
        let mut base: BaseRecord<'_, [u8], [u8], Box<(usize, u64)>> =
            BaseRecord::with_opaque_to(rec.topic(), Box::new((slot, offset)))
                .partition(i32::try_from(rec.partition()).unwrap_or(i32::MAX))
                .timestamp(rec.timestamp())
                .headers(headers);
        // A tombstone stays one: a null payload, which a compacted Kafka topic
        // takes as the key's delete.
        if !rec.is_tombstone() {
            base = base.payload(rec.value());
        }
        if let Some(key) = rec.key() {
            base = base.key(key);
        }
        let outcome = loop {
            match self.producer.send(base) {
                Ok(()) => break Ok(()),
                Err((KafkaError::MessageProduction(Code::QueueFull), back)) => {
                    base = back;
                    self.drain_acks(Duration::from_millis(5));
                }
                Err((e, _)) => break Err(e),
            }
        };
        let flight = match outcome {
            Ok(()) => {
                self.in_flight += 1;
                self.counters.sent += 1;
                Flight::Sent
            }
            Err(e) if e.rdkafka_error_code() == Some(Code::MessageSizeTooLarge) => {
                self.oversized(slot, offset, rec.value().len(), e)
            }
            Err(e) => {
                self.fail(rec.topic(), e);
                Flight::Failed
            }
        };
        if let Some(part) = self.parts.get_mut(slot) {
            if flight == Flight::Sent {
                part.unacked += 1;
                if offset < part.sent_upto {
                    self.counters.resent += 1;
                }
            }
            part.flights.push_back((offset, flight));
            part.pos = offset + 1;
            part.sent_upto = part.sent_upto.max(offset + 1);
        }
    }

    /// A record Kafka refuses for its size: skipped (and counted) or the stop.
    fn oversized(&mut self, slot: usize, offset: u64, size: usize, e: KafkaError) -> Flight {
        let (topic, partition) = self
            .parts
            .get(slot)
            .map(|p| (p.tp.topic.clone(), p.tp.partition))
            .unwrap_or_default();
        let what = format!(
            "mirroring topic '{topic}' partition {partition} offset {offset} (value {size} bytes){}",
            if self.b.skip_oversized { " [skipped]" } else { "" }
        );
        let err = kafka_error(&what, &self.b.settings.bootstrap, e, None);
        self.last_error = Some(err.to_string());
        self.error_clears = false;
        if self.b.skip_oversized {
            self.counters.skipped_oversized += 1;
            Flight::Acked
        } else {
            if self.fatal.is_none() {
                self.fatal = Some(err);
            }
            Flight::Failed
        }
    }

    /// A failed send or delivery: remembered, and everything from the first
    /// unacknowledged record is sent again.
    fn fail(&mut self, topic: &str, e: KafkaError) {
        let last = self.producer.context().inner.last_error();
        let err = kafka_error(
            &format!("mirroring to topic '{topic}'"),
            &self.b.settings.bootstrap,
            e,
            last,
        );
        self.last_error = Some(format!("{err} (sending again)"));
        self.error_clears = true;
        self.rewind = true;
    }

    /// Applies delivery reports; waits up to `wait` for the first one.
    fn drain_acks(&mut self, wait: Duration) {
        let first = if wait.is_zero() {
            self.acks.try_recv().ok()
        } else {
            self.acks.recv_timeout(wait).ok()
        };
        let Some(first) = first else { return };
        self.apply(first);
        while let Ok(ack) = self.acks.try_recv() {
            self.apply(ack);
        }
    }

    fn apply(&mut self, ack: Ack) {
        let Some(part) = self.parts.get_mut(ack.slot) else {
            return;
        };
        // Offsets are sent in increasing order: a binary search finds the flight.
        let Ok(i) = part.flights.binary_search_by_key(&ack.offset, |f| f.0) else {
            return;
        };
        let Some(flight) = part.flights.get_mut(i) else { return };
        if flight.1 != Flight::Sent {
            return;
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        part.unacked = part.unacked.saturating_sub(1);
        let topic = part.tp.topic.clone();
        match ack.error {
            None => {
                flight.1 = Flight::Acked;
                self.counters.acknowledged += 1;
                if self.error_clears && !self.rewind {
                    self.last_error = None;
                    self.error_clears = false;
                }
            }
            Some(e) if e.rdkafka_error_code() == Some(Code::MessageSizeTooLarge) => {
                flight.1 = Flight::Failed;
                let state = self.oversized(ack.slot, ack.offset, 0, e);
                if let Some(f) = self.parts.get_mut(ack.slot).and_then(|p| p.flights.get_mut(i)) {
                    f.1 = state;
                }
            }
            Some(e) => {
                flight.1 = Flight::Failed;
                self.fail(&topic, e);
            }
        }
    }

    /// Waits until every record sent was reported, or `timeout`.
    fn wait_in_flight(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.in_flight > 0 && Instant::now() < deadline {
            self.drain_acks(Duration::from_millis(50));
        }
    }

    /// After a failure: settle what is in flight, move every partition back
    /// to its first unacknowledged record, commit, pause, go on.
    fn rewind(&mut self) -> Result<()> {
        self.wait_in_flight(self.b.delivery_timeout + Duration::from_secs(5));
        self.in_flight = 0;
        for part in &mut self.parts {
            let mirrored = part.settle();
            part.flights.clear();
            part.unacked = 0;
            if mirrored < part.pos {
                self.source.seek(&part.tp, mirrored)?;
                part.pos = mirrored;
            }
        }
        self.rewind = false;
        self.commit(true)?;
        sleep_unless_stopped(self.shared, BACKOFF);
        Ok(())
    }

    /// Retention deleted `gap` before it was shipped (`OnGap::Skip`).
    fn skip_gap(&mut self, gap: &Gap) {
        self.counters.skipped_gap += gap.to.saturating_sub(gap.from);
        self.last_error = Some(
            Error::MirrorGap {
                topic: gap.tp.topic.clone(),
                partition: gap.tp.partition,
                from: gap.from,
                to: gap.to,
            }
            .to_string()
                + " [skipped]",
        );
        self.error_clears = false;
        if let Some(part) = self
            .slot(&gap.tp.topic, gap.tp.partition)
            .and_then(|s| self.parts.get_mut(s))
        {
            part.pos = part.pos.max(gap.to);
        }
    }

    /// Commits each partition's acknowledged prefix if it moved (or `force`), and publishes the status.
    fn commit(&mut self, force: bool) -> Result<()> {
        let mut progress = BTreeMap::new();
        let mut moved = force;
        for part in &mut self.parts {
            let mirrored = part.settle();
            moved |= mirrored != part.committed;
            progress.insert(
                part.tp.clone(),
                Progress {
                    next: mirrored,
                    sent_upto: part.sent_upto,
                },
            );
        }
        if moved && !self.parts.is_empty() {
            self.source.commit(&progress)?;
            for part in &mut self.parts {
                if let Some(p) = progress.get(&part.tp) {
                    part.committed = p.next;
                }
            }
        }
        self.publish();
        Ok(())
    }

    /// Looks at local end offsets and partition counts again.
    fn refresh(&mut self) -> Result<()> {
        for part in &mut self.parts {
            if let Ok(end) = self.source.end_offset(&part.tp) {
                part.end = end;
            }
        }
        let topics = self.b.topics.clone();
        for t in &topics {
            let n = self.source.partition_count(t)?;
            self.add_partitions(t, n)?;
        }
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        let mut st = self.shared.status.lock();
        st.connected = true;
        let c = &self.counters;
        st.sent = c.sent;
        st.acknowledged = c.acknowledged;
        st.resent = c.resent;
        st.skipped_gap = c.skipped_gap;
        st.skipped_oversized = c.skipped_oversized;
        st.last_error.clone_from(&self.last_error);
        st.partitions = self
            .parts
            .iter()
            .map(|p| PartitionStatus {
                topic: p.tp.topic.clone(),
                partition: p.tp.partition,
                mirrored: p.committed,
                end_offset: p.end.max(p.committed),
                in_flight: p.unacked,
            })
            .collect();
        st.partitions
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    }
}
