//! `kafka::Consumer`: logbus's `Consumer` shape against a Kafka cluster.

mod builder;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

pub use builder::ConsumerBuilder;

use super::context::Context;
use super::error::{is_transient, kafka_error};
use super::record::KafkaRecord;
use super::settings::Settings;
use crate::config::{AssignmentStrategy, OffsetReset};
use crate::error::{Error, Result};
use crate::names::TopicPartition;

/// Reads records from a Kafka cluster with [`logbus::Consumer`](crate::Consumer)'s
/// methods: manual assignment or group subscription, positions, commits of
/// the next offset to read, pause and resume.
///
/// `Send`; polled by one thread at a time. Dropping it (or `close`) leaves its group.
pub struct Consumer {
    inner: BaseConsumer<Context>,
    bootstrap: String,
    group: Option<String>,
    offset_reset: OffsetReset,
    auto_commit: bool,
    max_poll_records: usize,
    request_timeout: Duration,
    /// Next offset to return, per partition, once known (after a poll, a
    /// seek or a resolved `position`); what `commit` commits.
    positions: Mutex<BTreeMap<TopicPartition, u64>>,
    /// Records were returned since the last auto commit.
    uncommitted: bool,
    /// Partitions come from `assign` (not from a group's rebalance).
    manual: bool,
    /// Paused partitions, re-paused when a seek re-assigns.
    paused: Mutex<BTreeSet<TopicPartition>>,
    /// An error met after a poll had records: reported by the next poll.
    pending_error: Option<Error>,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("kafka::Consumer")
            .field("bootstrap", &self.bootstrap)
            .field("group", &self.group)
            .finish()
    }
}

impl Consumer {
    /// A builder for a consumer of the cluster at `bootstrap_servers`
    /// (`HOST:PORT[,HOST:PORT...]`).
    pub fn builder(bootstrap_servers: impl Into<String>) -> ConsumerBuilder {
        ConsumerBuilder {
            settings: Settings::new(bootstrap_servers),
            group: None,
            offset_reset: OffsetReset::Latest,
            auto_commit: false,
            max_poll_records: 500,
            max_poll_interval: Duration::from_secs(300),
            strategy: AssignmentStrategy::Range,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Joins the group for these topics; the group assigns partitions,
    /// observed from the next `poll`. Calling again replaces the subscription.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        self.need_group("subscribe")?;
        self.positions.lock().clear();
        self.paused.lock().clear();
        self.manual = false;
        self.inner
            .subscribe(topics)
            .map_err(|e| self.err(&format!("subscribing group '{}' to {topics:?}", self.group_name()), e))
    }

    /// Leaves the group; the consumer owns nothing until it subscribes or assigns again.
    pub fn unsubscribe(&mut self) -> Result<()> {
        self.inner.unsubscribe();
        self.positions.lock().clear();
        self.paused.lock().clear();
        Ok(())
    }

    /// Reads exactly these partitions (no group management). Positions of
    /// partitions that stay assigned are kept; new ones start at the
    /// committed offset (with a group) or where `offset_reset` says.
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let mut positions = self.positions.lock();
        positions.retain(|tp, _| partitions.contains(tp));
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for tp in partitions {
            let offset = positions.get(tp).map_or(Offset::Invalid, |&o| Offset::Offset(o as i64));
            tpl.add_partition_offset(&tp.topic, tp.partition as i32, offset)
                .map_err(|e| self.err(&format!("assigning {tp:?}"), e))?;
        }
        drop(positions);
        self.paused.lock().retain(|tp| partitions.contains(tp));
        self.manual = true;
        self.inner
            .assign(&tpl)
            .map_err(|e| self.err("assigning partitions", e))?;
        self.repause()
    }

    /// The partitions this consumer reads now, sorted.
    pub fn assignment(&self) -> Result<Vec<TopicPartition>> {
        let tpl = self
            .inner
            .assignment()
            .map_err(|e| self.err("reading the assignment", e))?;
        let mut out: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| TopicPartition::new(e.topic(), e.partition() as u32))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Returns the next records (at most `max_poll_records`), waiting up to
    /// `timeout` for some (empty on timeout). Serves rebalances and, with
    /// auto commit, commits the previous poll's positions. Transient
    /// connection errors are retried inside, as Kafka's Java consumer does.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<KafkaRecord>> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        if self.auto_commit && self.uncommitted && self.group.is_some() {
            self.commit_positions(CommitMode::Async)?;
            self.uncommitted = false;
        }
        let deadline = Instant::now() + timeout;
        let mut out: Vec<KafkaRecord> = Vec::new();
        let mut topic: Option<Arc<str>> = None;
        let mut failure = None;
        loop {
            let wait = if out.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.inner.poll(wait) {
                Some(Ok(m)) => {
                    out.push(KafkaRecord::from_message(&m, &mut topic));
                    if out.len() >= self.max_poll_records {
                        break;
                    }
                }
                Some(Err(e)) if is_transient(&e) => {
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                None if out.is_empty() && Instant::now() < deadline => {}
                None => break,
            }
        }
        if self.inner.context().take_rebalanced() {
            let owned = self.assignment().unwrap_or_default();
            self.positions.lock().retain(|tp, _| owned.contains(tp));
        }
        self.advance(&out);
        if let Some(e) = failure {
            let e = self.poll_error(e);
            if out.is_empty() {
                return Err(e);
            }
            self.pending_error = Some(e);
        }
        Ok(out)
    }

    /// Commits the positions of all owned partitions (the offsets after the
    /// records returned so far, or where a seek put them). Needs a group.
    pub fn commit(&mut self) -> Result<()> {
        self.need_group("commit")?;
        self.commit_positions(CommitMode::Sync)?;
        self.uncommitted = false;
        Ok(())
    }

    /// Commits explicit offsets: each is the next offset to read. Needs a group.
    pub fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        self.need_group("commit_offsets")?;
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for (tp, o) in offsets {
            tpl.add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(*o as i64))
                .map_err(|e| self.err(&format!("committing {tp:?}"), e))?;
        }
        self.inner
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| self.err(&format!("committing offsets of group '{}'", self.group_name()), e))
    }

    /// The group's committed offset for a partition (`None`: nothing committed).
    pub fn committed(&self, tp: &TopicPartition) -> Result<Option<u64>> {
        self.need_group("committed")?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.topic, tp.partition as i32);
        let got = self
            .inner
            .committed_offsets(tpl, self.request_timeout)
            .map_err(|e| self.err(&format!("reading the committed offset of {}", where_(tp)), e))?;
        Ok(
            match got.find_partition(&tp.topic, tp.partition as i32).map(|e| e.offset()) {
                Some(Offset::Offset(o)) if o >= 0 => Some(o as u64),
                _ => None,
            },
        )
    }

    /// The next offset `poll` returns for an assigned partition. Resolves
    /// (and fixes, by seeking there) a pending reset: the committed offset or
    /// the reset policy (`Error::NoOffset` under `OffsetReset::None`).
    pub fn position(&self, tp: &TopicPartition) -> Result<u64> {
        if let Some(&o) = self.positions.lock().get(tp) {
            return Ok(o);
        }
        self.need_assigned(tp)?;
        let known = self.inner.position().ok().and_then(|tpl| {
            match tpl.find_partition(&tp.topic, tp.partition as i32).map(|e| e.offset()) {
                Some(Offset::Offset(o)) if o >= 0 => Some(o as u64),
                _ => None,
            }
        });
        let offset = match known {
            // librdkafka's own position: the next poll starts there already.
            Some(o) => {
                self.positions.lock().insert(tp.clone(), o);
                o
            }
            None => {
                let o = self.resolve_reset(tp)?;
                self.seek_exact(tp, o)?;
                o
            }
        };
        Ok(offset)
    }

    /// Moves the position of an assigned partition: the next poll returns `offset` first.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.need_assigned(tp)?;
        self.seek_exact(tp, offset)
    }

    /// Moves to the first stored offset (all assigned partitions when `tps` is empty).
    pub fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in self.targets(tps)? {
            let (low, _) = self.watermarks(&tp)?;
            self.seek_exact(&tp, low)?;
        }
        Ok(())
    }

    /// Moves to the end, the high watermark (all assigned partitions when `tps` is empty).
    pub fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in self.targets(tps)? {
            let (_, high) = self.watermarks(&tp)?;
            self.seek_exact(&tp, high)?;
        }
        Ok(())
    }

    /// Stops returning records from these partitions until resumed.
    pub fn pause(&mut self, tps: &[TopicPartition]) -> Result<()> {
        let tpl = self.tpl(tps)?;
        self.inner
            .pause(&tpl)
            .map_err(|e| self.err(&format!("pausing {tps:?}"), e))?;
        self.paused.lock().extend(tps.iter().cloned());
        Ok(())
    }

    /// Resumes paused partitions.
    pub fn resume(&mut self, tps: &[TopicPartition]) -> Result<()> {
        let tpl = self.tpl(tps)?;
        self.inner
            .resume(&tpl)
            .map_err(|e| self.err(&format!("resuming {tps:?}"), e))?;
        self.paused.lock().retain(|tp| !tps.contains(tp));
        Ok(())
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.lock().iter().cloned().collect()
    }

    /// The first and next offsets of a partition as the cluster reports them
    /// (Kafka's low and high watermarks).
    pub fn watermarks(&self, tp: &TopicPartition) -> Result<(u64, u64)> {
        let (low, high) = self
            .inner
            .fetch_watermarks(&tp.topic, tp.partition as i32, self.request_timeout)
            .map_err(|e| self.err(&format!("reading the offsets of {}", where_(tp)), e))?;
        Ok((low.max(0) as u64, high.max(0) as u64))
    }

    /// Leaves the group now (drop does the same).
    pub fn close(self) -> Result<()> {
        if self.group.is_some() {
            self.inner.unsubscribe();
        }
        drop(self);
        Ok(())
    }

    /// Moves positions past the records of one poll.
    fn advance(&mut self, records: &[KafkaRecord]) {
        if records.is_empty() {
            return;
        }
        self.uncommitted = true;
        let mut positions = self.positions.lock();
        let mut last: Option<(&str, u32)> = None;
        for r in records.iter().rev() {
            if last == Some((r.topic(), r.partition)) {
                continue;
            }
            last = Some((r.topic(), r.partition));
            let next = r.offset + 1;
            let slot = positions
                .entry(TopicPartition::new(r.topic(), r.partition))
                .or_insert(next);
            // Records of one partition arrive in offset order; the last one decides.
            *slot = (*slot).max(next);
        }
    }

    fn commit_positions(&self, mode: CommitMode) -> Result<()> {
        let positions = self.positions.lock().clone();
        if positions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::with_capacity(positions.len());
        for (tp, o) in &positions {
            tpl.add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(*o as i64))
                .map_err(|e| self.err(&format!("committing {tp:?}"), e))?;
        }
        self.inner
            .commit(&tpl, mode)
            .map_err(|e| self.err(&format!("committing the positions of group '{}'", self.group_name()), e))
    }

    /// Moves librdkafka's position and records it. librdkafka refuses a seek
    /// ("Erroneous state") until the partition's fetcher is active, e.g. right
    /// after an assignment: a manual assignment is then re-made with the
    /// offset; a group's partition is retried until `request_timeout`.
    fn seek_exact(&self, tp: &TopicPartition, offset: u64) -> Result<()> {
        let what = || format!("seeking {} to offset {offset}", where_(tp));
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let e = match self.inner.seek(
                &tp.topic,
                tp.partition as i32,
                Offset::Offset(offset as i64),
                self.request_timeout,
            ) {
                Ok(()) => break,
                Err(e) => e,
            };
            if self.manual {
                self.positions.lock().insert(tp.clone(), offset);
                return self.reassign().map_err(|_| self.err(&what(), e));
            }
            if Instant::now() >= deadline {
                return Err(self.err(&what(), e));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.positions.lock().insert(tp.clone(), offset);
        Ok(())
    }

    /// Re-makes the manual assignment from the known positions (the others
    /// start from the committed offset or the reset policy), then re-pauses.
    fn reassign(&self) -> Result<()> {
        let owned = self.assignment()?;
        let positions = self.positions.lock().clone();
        let mut tpl = TopicPartitionList::with_capacity(owned.len());
        for tp in &owned {
            let offset = positions.get(tp).map_or(Offset::Invalid, |&o| Offset::Offset(o as i64));
            tpl.add_partition_offset(&tp.topic, tp.partition as i32, offset)
                .map_err(|e| self.err(&format!("assigning {tp:?}"), e))?;
        }
        self.inner
            .assign(&tpl)
            .map_err(|e| self.err("re-assigning partitions", e))?;
        self.repause()
    }

    /// Pauses again what the caller paused (an assignment resumes everything).
    fn repause(&self) -> Result<()> {
        let paused: Vec<TopicPartition> = self.paused.lock().iter().cloned().collect();
        if paused.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::with_capacity(paused.len());
        for tp in &paused {
            tpl.add_partition(&tp.topic, tp.partition as i32);
        }
        self.inner
            .pause(&tpl)
            .map_err(|e| self.err(&format!("pausing {paused:?}"), e))
    }

    /// Where a partition without a position starts: its committed offset, else the reset policy.
    fn resolve_reset(&self, tp: &TopicPartition) -> Result<u64> {
        if self.group.is_some() {
            if let Some(o) = self.committed(tp)? {
                return Ok(o);
            }
        }
        match self.offset_reset {
            OffsetReset::Earliest => Ok(self.watermarks(tp)?.0),
            OffsetReset::Latest => Ok(self.watermarks(tp)?.1),
            OffsetReset::None => Err(Error::NoOffset {
                group: self.group_name().to_string(),
                topic: tp.topic.clone(),
                partition: tp.partition,
            }),
        }
    }

    /// A poll's error; librdkafka's "no offset and reset = error" becomes
    /// `Error::NoOffset` for the first partition without a committed offset.
    fn poll_error(&self, e: KafkaError) -> Error {
        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::AutoOffsetReset) && self.offset_reset == OffsetReset::None {
            for tp in self.assignment().unwrap_or_default() {
                if self.positions.lock().contains_key(&tp) {
                    continue;
                }
                if !matches!(self.committed(&tp), Ok(Some(_))) {
                    return Error::NoOffset {
                        group: self.group_name().to_string(),
                        topic: tp.topic,
                        partition: tp.partition,
                    };
                }
            }
        }
        self.err("polling", e)
    }

    fn targets(&self, tps: &[TopicPartition]) -> Result<Vec<TopicPartition>> {
        if tps.is_empty() {
            return self.assignment();
        }
        for tp in tps {
            self.need_assigned(tp)?;
        }
        Ok(tps.to_vec())
    }

    fn tpl(&self, tps: &[TopicPartition]) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::with_capacity(tps.len());
        for tp in tps {
            self.need_assigned(tp)?;
            tpl.add_partition(&tp.topic, tp.partition as i32);
        }
        Ok(tpl)
    }

    fn need_assigned(&self, tp: &TopicPartition) -> Result<()> {
        if self.assignment()?.contains(tp) {
            Ok(())
        } else {
            Err(Error::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            })
        }
    }

    fn need_group(&self, call: &str) -> Result<()> {
        match self.group {
            Some(_) => Ok(()),
            None => Err(Error::InvalidConfig {
                field: "group",
                value: "None".into(),
                reason: format!("{call} needs a consumer group: build the consumer with .group(..)"),
            }),
        }
    }

    fn group_name(&self) -> &str {
        self.group.as_deref().unwrap_or("")
    }

    fn err(&self, what: &str, e: KafkaError) -> Error {
        kafka_error(what, &self.bootstrap, e, self.inner.context().last_error())
    }
}

/// "topic 't' partition p", for messages.
fn where_(tp: &TopicPartition) -> String {
    format!("topic '{}' partition {}", tp.topic, tp.partition)
}
