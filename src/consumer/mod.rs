//! Consumers: manual assignment or group subscription, positions, blocking polls.

mod core;
mod listener;
mod records;
#[cfg(feature = "async")]
mod recv;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use listener::{RebalanceContext, RebalanceListener};
pub use records::ConsumerRecords;

pub use self::core::ConsumerCore;
use self::core::{Fetch, Lend, Mode, PartState};

use crate::broker::BrokerInner;
use crate::config::ConsumerConfig;
use crate::error::{Error, Result};
use crate::log::consumed::RecordView;
use crate::log::Waiter;
use crate::names::TopicPartition;

/// What a timeout too large for the clock means: longer than any process lives.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

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
                sync_seen: None,
                synced_this_poll: false,
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

    /// Waits, up to `timeout`, until the group has given this member its
    /// partitions, without reading a record, and returns its assignment
    /// (sorted). For a subscribed member it returns once the member has seen
    /// the group's latest rebalance and owns every partition the group
    /// assigned it (other members hand theirs over at their next poll, as in
    /// Kafka's cooperative rebalancing); that may be none when the group has
    /// more members than partitions. On timeout it returns what the member
    /// owns so far, possibly nothing. Rebalance callbacks run here as in
    /// `poll`. Without a subscription it returns `assignment()` at once.
    ///
    /// ```
    /// # fn main() -> logbus::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::time::Duration;
    /// use logbus::{Broker, ConsumerConfig, TopicConfig};
    /// let broker = Broker::open(dir.path())?;
    /// broker.create_topic("events", TopicConfig::new(2))?;
    /// let mut consumer = broker.consumer(ConsumerConfig::new().group("billing"))?;
    /// consumer.subscribe(&["events"])?;
    /// let owned = consumer.wait_for_assignment(Duration::from_secs(5))?;
    /// assert_eq!(owned.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn wait_for_assignment(&mut self, timeout: Duration) -> Result<Vec<TopicPartition>> {
        self.core.check()?;
        let start = Instant::now();
        let deadline = start.checked_add(timeout).unwrap_or(start + FOREVER);
        loop {
            let Mode::Subscribed { member, .. } = &self.core.mode else {
                return Ok(self.assignment());
            };
            let member = *member;
            self.group_sync(Waiter::current())?;
            self.core.end_poll();
            let done = self.core.broker.groups.holds_target(self.core.group()?, member);
            let now = Instant::now();
            if done || now >= deadline || self.core.broker.is_closed() {
                self.core.check()?;
                return Ok(self.assignment());
            }
            // Owners hand partitions over at their next poll: look again soon.
            std::thread::park_timeout((deadline - now).min(Duration::from_millis(2)));
        }
    }

    /// Returns the next records from the assigned partitions, waiting up to
    /// `timeout` for some to arrive (empty on timeout). Runs rebalance
    /// callbacks and, with auto commit, commits the previous poll's positions.
    ///
    /// An error met after some records were read (a damaged batch, say)
    /// does not discard them: this poll returns them, the position stops at
    /// the error, and the next poll reports it.
    pub fn poll(&mut self, timeout: Duration) -> Result<ConsumerRecords> {
        // Sized by `fetch` to what is there: nothing is allocated until then.
        let mut out = Vec::new();
        self.poll_into(timeout, &mut out)?;
        Ok(ConsumerRecords { records: out })
    }

    /// [`poll`](Self::poll) that lends each record to `f` instead of
    /// returning owned ones: the record is borrowed from the segment for the
    /// call, so a poll costs no allocation and no reference count per record
    /// (BENCHMARKS.md, scan). Returns **how
    /// many records `f` saw** (0 on timeout), like `poll(..)?.len()`, not an
    /// offset (unlike [`Partition::read_with`](crate::Partition::read_with),
    /// which returns the next offset): the consumer keeps its positions
    /// itself and moves them past each record, as with `poll`. Copy out what must outlive the call
    /// ([`RecordView::to_record`]).
    ///
    /// ```
    /// # fn main() -> logbus::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::time::Duration;
    /// use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};
    /// let broker = Broker::open(dir.path())?;
    /// broker.create_topic("events", TopicConfig::new(1))?;
    /// broker.producer().send("events", Record::new("hello"))?;
    /// let mut consumer = broker.consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))?;
    /// consumer.assign(&[TopicPartition::new("events", 0)])?;
    /// let mut bytes = 0;
    /// let seen = consumer.poll_with(Duration::from_secs(1), |r| bytes += r.value().len())?;
    /// assert_eq!((seen, bytes), (1, 5));
    /// # Ok(()) }
    /// ```
    pub fn poll_with<F: FnMut(RecordView<'_>)>(&mut self, timeout: Duration, f: F) -> Result<usize> {
        let mut lend = Lend { f, taken: 0 };
        self.poll_into(timeout, &mut lend)?;
        Ok(lend.taken)
    }

    fn poll_into<F: Fetch>(&mut self, timeout: Duration, out: &mut F) -> Result<()> {
        self.core.check()?;
        if self.core.config.auto_commit && self.core.config.group.is_some() {
            match self.core.commit_all() {
                Ok(()) | Err(Error::Fenced { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.core.synced_this_poll = false;
        let result = self.poll_until(timeout, out);
        if self.core.synced_this_poll {
            self.core.end_poll();
        }
        result
    }

    /// A subscribed member may skip the group sync when nothing changed in
    /// its group since its last full sync and that sync is recent (its
    /// liveness is refreshed at least every `max_poll_interval / 4`, and at
    /// least every 100 ms). A poll about to wait always syncs first, so a
    /// member blocked in `poll` is registered for wake-ups and never evicted.
    fn sync_is_fresh(&self) -> bool {
        if !matches!(self.core.mode, Mode::Subscribed { .. }) {
            return true;
        }
        let Some((counter, seen, at)) = &self.core.sync_seen else {
            return false;
        };
        let refresh = (self.core.config.max_poll_interval / 4).min(Duration::from_millis(100));
        counter.load(Ordering::Acquire) == *seen && at.elapsed() < refresh
    }

    fn poll_until<F: Fetch>(&mut self, timeout: Duration, out: &mut F) -> Result<()> {
        // The clock is read only once there is nothing to return: a consumer
        // that keeps up finds records at the first look, and a clock read is
        // a sizable share of a poll that returns one record.
        let mut deadline: Option<Instant> = None;
        loop {
            if !self.sync_is_fresh() {
                self.group_sync(Waiter::current())?;
            }
            self.core.fetch(out)?;
            if out.taken() > 0 {
                return Ok(());
            }
            let now = Instant::now();
            // A timeout too large to add to the clock waits without end.
            let deadline = *deadline.get_or_insert_with(|| now.checked_add(timeout).unwrap_or(now + FOREVER));
            if now >= deadline || self.core.broker.is_closed() {
                return self.core.check();
            }
            if !self.core.synced_this_poll && matches!(self.core.mode, Mode::Subscribed { .. }) {
                // About to wait: register with the coordinator first.
                self.group_sync(Waiter::current())?;
                continue;
            }
            self.core.wait(deadline);
        }
    }

    /// Applies a rebalance: revoke (with callback), release, acquire (with
    /// callback). Until the poll ends (`end_poll`), group changes wake `waiter`.
    fn group_sync(&mut self, waiter: Waiter) -> Result<()> {
        let Mode::Subscribed { topics, member } = &self.core.mode else {
            return Ok(());
        };
        let (topics, member) = (topics.clone(), *member);
        let group = self.core.group()?.to_string();
        let coord = &self.core.broker.groups;
        let counter = coord.change_counter(&group);
        let seen = counter.as_ref().map(|c| c.load(Ordering::Acquire));
        self.core.synced_this_poll = true;
        let plan = coord.begin_sync(&group, member, Some(waiter));
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
            self.core.sync_seen = None;
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
        self.core.sync_seen = counter.zip(seen).map(|(c, v)| (c, v, Instant::now()));
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
