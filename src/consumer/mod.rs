//! Consumers: manual assignment or group subscription, positions, blocking polls.

mod listener;
mod records;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use listener::{RebalanceContext, RebalanceListener};
pub use records::{ConsumerRecords, TopicPartition};

use crate::broker::BrokerInner;
use crate::config::{ConsumerConfig, OffsetReset, WaitStrategy};
use crate::error::{Error, Result};
use crate::log::{Cursor, Log};
use crate::record::ConsumedRecord;
use crate::topic::TopicInner;

/// How long a `WaitStrategy::Block` consumer spins and yields before parking.
const BLOCK_BACKOFF: Duration = Duration::from_micros(50);

/// Reads records from assigned partitions, by offset, blocking for new data.
///
/// `Send` but meant to be polled by one thread at a time. Dropping it (or
/// `close`) leaves its group, which rebalances.
///
/// ```
/// # fn main() -> logbus::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};
/// let broker = Broker::open(dir.path())?;
/// broker.create_topic("logs", TopicConfig::new(1))?;
/// broker.producer().send("logs", Record::new("line 1"))?;
///
/// let mut consumer = broker.consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))?;
/// consumer.assign(&[TopicPartition::new("logs", 0)])?;
/// let records = consumer.poll(Duration::from_millis(100))?;
/// assert_eq!(records.iter().next().unwrap().value(), b"line 1");
/// # Ok(()) }
/// ```
pub struct Consumer {
    core: ConsumerCore,
    listener: Option<Box<dyn RebalanceListener>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.core.config.group)
            .field("assignment", &self.core.assignment())
            .finish()
    }
}

struct PartState {
    topic: Arc<TopicInner>,
    log: Log,
    position: std::cell::Cell<Option<u64>>,
    /// Where the last read stopped, so a tailing poll resumes without lookups.
    cursor: std::cell::RefCell<Option<Cursor>>,
    paused: bool,
}

enum Mode {
    Unset,
    Manual,
    Subscribed { topics: Vec<String>, member: u64 },
}

/// The consumer's state, minus its rebalance listener (so that the listener
/// can be handed a `RebalanceContext` on it).
pub struct ConsumerCore {
    broker: Arc<BrokerInner>,
    config: ConsumerConfig,
    parts: BTreeMap<TopicPartition, PartState>,
    mode: Mode,
    rotate: usize,
    closed: bool,
    /// Inside a revoke callback or leaving the group: commits of partitions
    /// the member still owns are accepted even if the group has rebalanced.
    revoking: bool,
}

impl Consumer {
    pub(crate) fn new(broker: Arc<BrokerInner>, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        Ok(Consumer {
            core: ConsumerCore {
                broker,
                config,
                parts: BTreeMap::new(),
                mode: Mode::Unset,
                rotate: 0,
                closed: false,
                revoking: false,
            },
            listener: None,
        })
    }

    /// Joins the group (from `ConsumerConfig::group`) for these topics; the
    /// group assigns partitions, observed from the next `poll`. Topics that do
    /// not exist yet are assigned once created. Calling again replaces the subscription.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        self.core.subscribe(topics)
    }

    /// Like `subscribe`, with callbacks around each rebalance.
    pub fn subscribe_with_listener(
        &mut self,
        topics: &[&str],
        listener: impl RebalanceListener + 'static,
    ) -> Result<()> {
        self.core.subscribe(topics)?;
        self.listener = Some(Box::new(listener));
        Ok(())
    }

    /// Leaves the group; the consumer owns nothing until it subscribes or assigns again.
    pub fn unsubscribe(&mut self) -> Result<()> {
        self.revoke_before_leaving();
        self.core.leave_group();
        self.core.parts.clear();
        self.core.mode = Mode::Unset;
        Ok(())
    }

    /// Reads exactly these partitions (no group management). Positions of
    /// partitions that stay assigned are kept.
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.core.assign(partitions)
    }

    /// The partitions this consumer reads now, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.core.assignment()
    }

    /// Returns the next records from the assigned partitions, waiting up to
    /// `timeout` for some to arrive (empty on timeout). Runs rebalance
    /// callbacks and, with auto commit, commits the previous poll's positions.
    pub fn poll(&mut self, timeout: Duration) -> Result<ConsumerRecords> {
        self.core.check()?;
        let deadline = Instant::now() + timeout;
        if self.core.config.auto_commit && self.core.config.group.is_some() {
            match self.core.commit_all() {
                Ok(()) | Err(Error::Fenced { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let result = self.poll_until(deadline);
        self.core.end_poll();
        result
    }

    fn poll_until(&mut self, deadline: Instant) -> Result<ConsumerRecords> {
        loop {
            self.group_sync()?;
            let mut out = Vec::with_capacity(self.core.config.max_poll_records.min(4096));
            self.core.fetch(&mut out)?;
            if !out.is_empty() {
                return Ok(ConsumerRecords { records: out });
            }
            let now = Instant::now();
            if now >= deadline || self.core.broker.is_closed() {
                self.core.check()?;
                return Ok(ConsumerRecords::default());
            }
            self.core.wait(deadline);
        }
    }

    /// Applies a rebalance: revoke (with callback), release, acquire (with callback).
    fn group_sync(&mut self) -> Result<()> {
        let Mode::Subscribed { topics, member } = &self.core.mode else {
            return Ok(());
        };
        let (topics, member) = (topics.clone(), *member);
        let group = self.core.group()?.to_string();
        let coord = &self.core.broker.groups;
        let plan = coord.begin_sync(&group, member, Some(std::thread::current()));
        if plan.evicted {
            // Removed for not polling in time: its partitions went to others.
            let lost: Vec<TopicPartition> = self.core.parts.keys().cloned().collect();
            if !lost.is_empty() {
                if let Some(l) = self.listener.as_mut() {
                    l.on_partitions_lost(&mut RebalanceContext { core: &mut self.core }, &lost);
                }
            }
            self.core.parts.clear();
            let counts = self.core.counts();
            let id = self.core.broker.groups.join(
                &group,
                topics.clone(),
                self.core.config.strategy,
                self.core.config.max_poll_interval,
                &counts,
            );
            self.core.mode = Mode::Subscribed { topics, member: id };
            return Ok(());
        }
        if !plan.revoke.is_empty() {
            self.core.revoking = true;
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_revoked(&mut RebalanceContext { core: &mut self.core }, &plan.revoke);
            }
            let committed = if self.core.config.auto_commit {
                let offsets = self.core.positions_of(&plan.revoke);
                self.core.commit_offsets(&offsets)
            } else {
                Ok(())
            };
            self.core.revoking = false;
            match committed {
                Ok(()) | Err(Error::Fenced { .. }) => {}
                Err(e) => return Err(e),
            }
            for tp in &plan.revoke {
                self.core.parts.remove(tp);
            }
        }
        let acquired = self.core.broker.groups.finish_sync(&group, member, &plan.revoke);
        let mut added = Vec::new();
        for tp in acquired {
            if let Ok(topic) = self.core.broker.topic(&tp.topic) {
                if let Ok(log) = topic.log(tp.partition) {
                    self.core.parts.insert(tp.clone(), PartState::new(topic, log));
                    added.push(tp);
                }
            }
        }
        if !added.is_empty() {
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_assigned(&mut RebalanceContext { core: &mut self.core }, &added);
            }
        }
        Ok(())
    }

    /// Commits the positions of all owned partitions (the offsets after the
    /// records returned so far). Needs a group (`Error::InvalidConfig`);
    /// `Error::Fenced` if the group rebalanced since this member's last poll.
    pub fn commit(&mut self) -> Result<()> {
        self.core.commit_all()
    }

    /// Commits explicit offsets: each is the next offset to read.
    pub fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        self.core.commit_offsets(offsets)
    }

    /// The group's committed offset for a partition.
    pub fn committed(&self, tp: &TopicPartition) -> Result<Option<u64>> {
        self.core.check()?;
        let group = self.core.group()?;
        Ok(self.core.broker.groups.committed(group, tp))
    }

    /// The next offset `poll` will return for an assigned partition. Resolves
    /// (and fixes) a pending reset: the committed offset or the reset policy.
    pub fn position(&self, tp: &TopicPartition) -> Result<u64> {
        self.core.position(tp)
    }

    /// Moves the position of an assigned partition.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.core.seek(tp, offset)
    }

    /// Moves to the first stored offset (all assigned partitions when `tps` is empty).
    pub fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.core.seek_with(tps, |log| log.start_offset())
    }

    /// Moves to the end (all assigned partitions when `tps` is empty).
    pub fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.core.seek_with(tps, |log| log.end_offset())
    }

    /// Stops returning records from these partitions until resumed.
    pub fn pause(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.core.set_paused(tps, true)
    }

    /// Resumes paused partitions.
    pub fn resume(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.core.set_paused(tps, false)
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.core
            .parts
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Leaves the group now (commits first under auto commit). The rebalance
    /// listener is told that the owned partitions are revoked first.
    pub fn close(mut self) -> Result<()> {
        self.revoke_before_leaving();
        self.core.shutdown()
    }

    /// Before leaving the group (close, drop, unsubscribe), reports the owned
    /// partitions as revoked, as Kafka does: the listener may still commit them.
    /// An evicted member's partitions may already belong to others: those
    /// are reported as lost.
    fn revoke_before_leaving(&mut self) {
        let (Mode::Subscribed { member, .. }, Some(group)) = (&self.core.mode, self.core.config.group.as_deref())
        else {
            return;
        };
        if self.core.closed || self.core.broker.is_closed() {
            return;
        }
        let still_member = self.core.broker.groups.is_member(group, *member);
        let owned = self.core.assignment();
        if owned.is_empty() {
            return;
        }
        if let Some(l) = self.listener.as_mut() {
            let ctx = &mut RebalanceContext { core: &mut self.core };
            if still_member {
                ctx.core.revoking = true;
                l.on_partitions_revoked(ctx, &owned);
                ctx.core.revoking = false;
            } else {
                l.on_partitions_lost(ctx, &owned);
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // No user callbacks while unwinding (a second panic would abort).
        if !std::thread::panicking() {
            self.revoke_before_leaving();
        }
        let _ = self.core.shutdown();
    }
}

impl PartState {
    fn new(topic: Arc<TopicInner>, log: Log) -> PartState {
        PartState {
            topic,
            log,
            position: std::cell::Cell::new(None),
            cursor: std::cell::RefCell::new(None),
            paused: false,
        }
    }
}

impl ConsumerCore {
    fn check(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        self.broker.check_open()
    }

    fn group(&self) -> Result<&str> {
        self.config
            .group
            .as_deref()
            .ok_or_else(|| Error::config("group", "(none)", "commits and subscribe need ConsumerConfig::group"))
    }

    fn member(&self) -> Option<u64> {
        match &self.mode {
            Mode::Subscribed { member, .. } => Some(*member),
            _ => None,
        }
    }

    fn counts(&self) -> impl Fn(&str) -> Option<u32> + 'static {
        let broker = Arc::clone(&self.broker);
        move |t: &str| broker.partition_count(t)
    }

    fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        self.check()?;
        let group = self.group()?.to_string();
        if matches!(self.mode, Mode::Manual) {
            return Err(Error::config(
                "subscribe",
                topics.join(","),
                "this consumer uses assign(); a consumer either assigns or subscribes",
            ));
        }
        for t in topics {
            crate::topic::validate_topic_name(t)?;
        }
        let mut list: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        list.sort();
        list.dedup();
        let counts = self.counts();
        let member = match &self.mode {
            Mode::Subscribed { member, .. } => {
                self.broker.groups.resubscribe(&group, *member, list.clone(), &counts);
                *member
            }
            _ => self.broker.groups.join(
                &group,
                list.clone(),
                self.config.strategy,
                self.config.max_poll_interval,
                &counts,
            ),
        };
        self.mode = Mode::Subscribed { topics: list, member };
        Ok(())
    }

    fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.check()?;
        if matches!(self.mode, Mode::Subscribed { .. }) {
            return Err(Error::config(
                "assign",
                "",
                "this consumer uses subscribe(); call unsubscribe() first",
            ));
        }
        let mut next = BTreeMap::new();
        for tp in partitions {
            let topic = self.broker.topic(&tp.topic)?;
            let log = topic.log(tp.partition)?;
            let state = self.parts.remove(tp).unwrap_or_else(|| PartState::new(topic, log));
            next.insert(tp.clone(), state);
        }
        self.parts = next;
        self.mode = Mode::Manual;
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.parts.keys().cloned().collect()
    }

    fn state(&self, tp: &TopicPartition) -> Result<&PartState> {
        self.parts.get(tp).ok_or_else(|| Error::NotAssigned {
            topic: tp.topic.clone(),
            partition: tp.partition,
        })
    }

    /// The position of `tp`, resolving a missing or out-of-range one.
    fn position(&self, tp: &TopicPartition) -> Result<u64> {
        self.check()?;
        let st = self.state(tp)?;
        let (start, end) = (st.log.start_offset(), st.log.end_offset());
        if let Some(p) = st.position.get() {
            if (start..=end).contains(&p) {
                return Ok(p);
            }
            let p = self.reset(tp, st, Some(p))?;
            st.position.set(Some(p));
            return Ok(p);
        }
        let committed = self
            .config
            .group
            .as_deref()
            .and_then(|g| self.broker.groups.committed(g, tp));
        let p = match committed {
            Some(c) if (start..=end).contains(&c) => c,
            Some(c) => self.reset(tp, st, Some(c))?,
            None => self.reset(tp, st, None)?,
        };
        st.position.set(Some(p));
        Ok(p)
    }

    /// Applies the reset policy; `bad` is an out-of-range offset, if that is the cause.
    fn reset(&self, tp: &TopicPartition, st: &PartState, bad: Option<u64>) -> Result<u64> {
        match (self.config.offset_reset, bad) {
            (OffsetReset::Earliest, _) => Ok(st.log.start_offset()),
            (OffsetReset::Latest, _) => Ok(st.log.end_offset()),
            (OffsetReset::None, Some(offset)) => Err(Error::OffsetOutOfRange {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
                start: st.log.start_offset(),
                end: st.log.end_offset(),
            }),
            (OffsetReset::None, None) => Err(Error::NoOffset {
                group: self.config.group.clone().unwrap_or_else(|| "(none)".into()),
                topic: tp.topic.clone(),
                partition: tp.partition,
            }),
        }
    }

    fn fetch(&mut self, out: &mut Vec<ConsumedRecord>) -> Result<()> {
        let max = self.config.max_poll_records;
        let n = self.parts.len();
        if n == 0 {
            return Ok(());
        }
        // Start one partition further each poll, so none starves the others.
        let first = self.rotate % n;
        self.rotate = self.rotate.wrapping_add(1);
        for (tp, st) in self.parts.iter().cycle().skip(first).take(n) {
            if st.paused || st.topic.check_live().is_err() {
                continue;
            }
            let pos = self.position(tp)?;
            let before = out.len();
            let read = st
                .log
                .inner
                .read_with_cursor(pos, max - out.len(), out, &mut st.cursor.borrow_mut());
            match read {
                Ok(_) => {}
                Err(Error::OffsetOutOfRange { .. }) => {
                    // Retention overtook the position: reset now, read next time.
                    let p = self.reset(tp, st, Some(pos))?;
                    st.position.set(Some(p));
                }
                Err(Error::Closed) if st.topic.check_live().is_err() => continue,
                Err(e) => return Err(e),
            }
            if let Some(last) = out.get(before..).and_then(<[ConsumedRecord]>::last) {
                st.position.set(Some(last.offset() + 1));
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(())
    }

    /// True when a poll would find something to do: records past a
    /// position, a position to resolve or reset, or a group change.
    fn ready(&self, check_group: bool) -> bool {
        self.parts.values().any(|s| {
            !s.paused
                && s.position
                    .get()
                    .is_none_or(|p| s.log.end_offset() != p || s.log.start_offset() > p)
        }) || (check_group && self.group_needs_sync())
    }

    /// Waits until a partition has data, the group needs this member, or the
    /// deadline, as the configured `WaitStrategy` says.
    fn wait(&self, deadline: Instant) {
        let park_from = match self.config.wait {
            // A short backoff first (as crossbeam-channel's receivers do): a
            // consumer that parks the moment it catches up makes the producer
            // pay a futex wake-up for nearly every record.
            WaitStrategy::Block => Instant::now() + BLOCK_BACKOFF,
            WaitStrategy::Spin => deadline,
            WaitStrategy::SpinThenBlock(d) => Instant::now() + d,
        };
        let spin_only = matches!(self.config.wait, WaitStrategy::Spin | WaitStrategy::SpinThenBlock(_));
        let mut spins = 0u32;
        while Instant::now() < park_from.min(deadline) {
            // The group check takes the coordinator's lock: only now and then.
            spins = spins.wrapping_add(1);
            if self.ready(spins.is_multiple_of(1024)) || self.broker.is_closed() {
                return;
            }
            if spin_only || spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let mut registered = Vec::with_capacity(self.parts.len());
        for st in self.parts.values().filter(|s| !s.paused) {
            registered.push((&st.log.inner.waiters, st.log.inner.waiters.register()));
        }
        if !self.ready(true) {
            std::thread::park_timeout(deadline - now);
        }
        for (list, id) in registered {
            list.unregister(id);
        }
    }

    fn group_needs_sync(&self) -> bool {
        match (&self.mode, self.config.group.as_deref()) {
            (Mode::Subscribed { member, .. }, Some(g)) => self.broker.groups.needs_sync(g, *member),
            _ => false,
        }
    }

    fn end_poll(&self) {
        if let (Mode::Subscribed { member, .. }, Some(g)) = (&self.mode, self.config.group.as_deref()) {
            self.broker.groups.end_poll(g, *member);
        }
    }

    fn positions_of(&self, tps: &[TopicPartition]) -> Vec<(TopicPartition, u64)> {
        tps.iter()
            .filter_map(|tp| Some((tp.clone(), self.parts.get(tp)?.position.get()?)))
            .collect()
    }

    fn commit_all(&mut self) -> Result<()> {
        self.check()?;
        let group = self.group()?;
        let offsets: Vec<(TopicPartition, u64)> = self
            .parts
            .iter()
            .filter_map(|(tp, s)| Some((tp.clone(), s.position.get()?)))
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        self.broker.groups.commit(group, self.member(), &offsets, self.revoking)
    }

    fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        self.check()?;
        let group = self.group()?;
        for (tp, _) in offsets {
            self.broker.topic(&tp.topic)?.log(tp.partition)?;
        }
        self.broker.groups.commit(group, self.member(), offsets, self.revoking)
    }

    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.check()?;
        self.state(tp)?.position.set(Some(offset));
        Ok(())
    }

    fn targets(&self, tps: &[TopicPartition]) -> Result<Vec<TopicPartition>> {
        if tps.is_empty() {
            return Ok(self.assignment());
        }
        for tp in tps {
            self.state(tp)?;
        }
        Ok(tps.to_vec())
    }

    fn seek_with(&mut self, tps: &[TopicPartition], to: impl Fn(&Log) -> u64) -> Result<()> {
        self.check()?;
        for tp in self.targets(tps)? {
            let st = self.state(&tp)?;
            st.position.set(Some(to(&st.log)));
        }
        Ok(())
    }

    fn set_paused(&mut self, tps: &[TopicPartition], paused: bool) -> Result<()> {
        self.check()?;
        for tp in tps {
            self.state(tp)?;
        }
        for tp in tps {
            if let Some(st) = self.parts.get_mut(tp) {
                st.paused = paused;
            }
        }
        Ok(())
    }

    fn leave_group(&mut self) {
        if let (Mode::Subscribed { member, .. }, Some(g)) = (&self.mode, self.config.group.clone()) {
            let member = *member;
            let counts = self.counts();
            self.broker.groups.leave(&g, member, &counts);
        }
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let commit = if self.config.auto_commit && self.config.group.is_some() && !self.broker.is_closed() {
            // Leaving: what it still owns it may commit.
            self.revoking = true;
            let r = self.commit_all();
            self.revoking = false;
            r
        } else {
            Ok(())
        };
        self.leave_group();
        self.closed = true;
        self.parts.clear();
        match commit {
            Err(Error::Fenced { .. }) => Ok(()),
            other => other,
        }
    }
}
