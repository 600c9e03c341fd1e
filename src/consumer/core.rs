//! The consumer's state and mechanics: positions, resets, fetching,
//! waiting, commits. `Consumer` (in `mod.rs`) adds the group protocol and
//! the rebalance listener on top.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::BrokerInner;
use crate::config::{ConsumerConfig, IsolationLevel, OffsetReset, WaitStrategy};
use crate::error::{Error, Result};
use crate::log::consumed::{ConsumedRecord, RecordView};
use crate::log::txn::Isolation;
use crate::log::{Cursor, Log};
use crate::names::TopicPartition;
use crate::topic::TopicInner;

/// How long a `WaitStrategy::Block` consumer spins before parking. Short,
/// and without `yield_now`: a consumer that keeps its core busy between
/// records (a yield hands that core to any runnable thread for a whole
/// time slice) is preempted by every other thread on a small machine, and
/// the records it misses meanwhile wait milliseconds (BENCHMARKS.md,
/// "What limits the latency tail").
const BLOCK_BACKOFF: Duration = Duration::from_micros(10);

pub(super) struct PartState {
    pub(super) topic: Arc<TopicInner>,
    pub(super) log: Log,
    pub(super) position: std::cell::Cell<Option<u64>>,
    /// Where the last read stopped, so a tailing poll resumes without lookups.
    pub(super) cursor: std::cell::RefCell<Option<Cursor>>,
    pub(super) paused: bool,
}

pub(super) enum Mode {
    Unset,
    Manual,
    Subscribed { topics: Vec<String>, member: u64 },
}

/// The consumer's state, minus its rebalance listener (so that the listener
/// can be handed a `RebalanceContext` on it).
pub struct ConsumerCore {
    pub(super) broker: Arc<BrokerInner>,
    pub(super) config: ConsumerConfig,
    pub(super) parts: BTreeMap<TopicPartition, PartState>,
    pub(super) mode: Mode,
    pub(super) rotate: usize,
    pub(super) closed: bool,
    /// Inside a revoke callback or leaving the group: commits of partitions
    /// the member still owns are accepted even if the group has rebalanced.
    pub(super) revoking: bool,
    /// The group's change counter, the value the last full group sync saw,
    /// and when: while the counter is unchanged and the sync recent, a poll
    /// that finds records skips the coordinator (see `Consumer::sync_is_fresh`).
    pub(super) sync_seen: Option<(Arc<AtomicU64>, u64, Instant)>,
    /// This poll did a full group sync (and so must end it with `end_poll`).
    pub(super) synced_this_poll: bool,
}

impl PartState {
    pub(super) fn new(topic: Arc<TopicInner>, log: Log) -> PartState {
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
    pub(super) fn check(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        self.broker.check_open()
    }

    pub(super) fn group(&self) -> Result<&str> {
        self.config
            .group
            .as_deref()
            .ok_or_else(|| Error::config("group", "(none)", "commits and subscribe need ConsumerConfig::group"))
    }

    pub(super) fn member(&self) -> Option<u64> {
        match &self.mode {
            Mode::Subscribed { member, .. } => Some(*member),
            _ => None,
        }
    }

    pub(super) fn counts(&self) -> impl Fn(&str) -> Option<u32> + 'static {
        let broker = Arc::clone(&self.broker);
        move |t: &str| broker.partition_count(t)
    }

    pub(super) fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
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
        self.sync_seen = None;
        Ok(())
    }

    pub(super) fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
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

    pub(super) fn assignment(&self) -> Vec<TopicPartition> {
        self.parts.keys().cloned().collect()
    }

    pub(super) fn state(&self, tp: &TopicPartition) -> Result<&PartState> {
        self.parts.get(tp).ok_or_else(|| Error::NotAssigned {
            topic: tp.topic.clone(),
            partition: tp.partition,
        })
    }

    /// The position of `tp`, resolving a missing or out-of-range one.
    pub(super) fn position(&self, tp: &TopicPartition) -> Result<u64> {
        self.check()?;
        self.resolve(tp, self.state(tp)?)
    }

    /// The position of a partition whose state the caller already holds.
    pub(super) fn resolve(&self, tp: &TopicPartition, st: &PartState) -> Result<u64> {
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
    pub(super) fn reset(&self, tp: &TopicPartition, st: &PartState, bad: Option<u64>) -> Result<u64> {
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

    /// Reads from the assigned partitions into `out`, up to
    /// `max_poll_records` in all. An error after some records were handed
    /// out ends the fetch without the error: the positions stop where it
    /// struck, so the next poll reports it (as Kafka's consumer returns the
    /// records before a corrupt one, then fails).
    pub(super) fn fetch<F: Fetch>(&mut self, out: &mut F) -> Result<()> {
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
            let pos = self.resolve(tp, st)?;
            let end = st.log.end_offset();
            let room = max - out.taken();
            out.reserve(usize::try_from(end.saturating_sub(pos)).unwrap_or(usize::MAX).min(room));
            let iso = match self.config.isolation {
                IsolationLevel::ReadUncommitted => Isolation::Uncommitted,
                IsolationLevel::ReadCommitted => Isolation::Committed(&self.broker.txns),
            };
            let (next, read) = out.read(st, pos, room, end, iso);
            if let Some(next) = next {
                st.position.set(Some(next));
            }
            match read {
                Ok(()) => {}
                Err(Error::OffsetOutOfRange { .. }) => {
                    // Retention overtook the position: reset now, read next time.
                    let p = self.reset(tp, st, Some(pos))?;
                    st.position.set(Some(p));
                }
                Err(Error::Closed) if st.topic.check_live().is_err() => continue,
                Err(_) if out.taken() > 0 => return Ok(()),
                Err(e) => return Err(e),
            }
            if out.taken() >= max {
                break;
            }
        }
        Ok(())
    }

    /// True when a poll would find something to do: records past a
    /// position, a position to resolve or reset, or a group change.
    pub(super) fn ready(&self, check_group: bool) -> bool {
        let committed = self.config.isolation == IsolationLevel::ReadCommitted;
        self.parts.values().any(|s| {
            !s.paused
                && s.position.get().is_none_or(|p| {
                    let end = s.log.end_offset();
                    // Read-committed: records below the last stable offset.
                    let more = if committed {
                        s.log.last_stable_offset() > p
                    } else {
                        end > p
                    };
                    more || end < p || s.log.start_offset() > p
                })
        }) || (check_group && self.group_needs_sync())
    }

    /// Waits until a partition has data, the group needs this member, or the
    /// deadline, as the configured `WaitStrategy` says.
    pub(super) fn wait(&self, deadline: Instant) {
        let park_from = match self.config.wait {
            // A short spin first (as crossbeam-channel's receivers do): a
            // consumer that parks the moment it catches up makes a busy
            // producer pay a futex wake-up for nearly every record.
            WaitStrategy::Block => Instant::now() + BLOCK_BACKOFF,
            WaitStrategy::Spin => deadline,
            WaitStrategy::SpinThenBlock(d) => Instant::now().checked_add(d).unwrap_or(deadline),
        };
        let mut spins = 0u32;
        while Instant::now() < park_from.min(deadline) {
            // The group check takes the coordinator's lock: only now and then.
            spins = spins.wrapping_add(1);
            if self.ready(spins.is_multiple_of(1024)) || self.broker.is_closed() {
                return;
            }
            std::hint::spin_loop();
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let mut registered = Vec::with_capacity(self.parts.len());
        for st in self.parts.values().filter(|s| !s.paused) {
            registered.push((&st.log, st.log.register_waiter()));
        }
        if !self.ready(true) {
            std::thread::park_timeout(deadline - now);
        }
        for (log, id) in registered {
            log.unregister_waiter(id);
        }
    }

    pub(super) fn group_needs_sync(&self) -> bool {
        match (&self.mode, self.config.group.as_deref()) {
            (Mode::Subscribed { member, .. }, Some(g)) => self.broker.groups.needs_sync(g, *member),
            _ => false,
        }
    }

    pub(super) fn end_poll(&self) {
        if let (Mode::Subscribed { member, .. }, Some(g)) = (&self.mode, self.config.group.as_deref()) {
            self.broker.groups.end_poll(g, *member);
        }
    }

    pub(super) fn positions_of(&self, tps: &[TopicPartition]) -> Vec<(TopicPartition, u64)> {
        tps.iter()
            .filter_map(|tp| Some((tp.clone(), self.parts.get(tp)?.position.get()?)))
            .collect()
    }

    pub(super) fn commit_all(&mut self) -> Result<()> {
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

    pub(super) fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        self.check()?;
        let group = self.group()?;
        for (tp, _) in offsets {
            self.broker.topic(&tp.topic)?.log(tp.partition)?;
        }
        self.broker.groups.commit(group, self.member(), offsets, self.revoking)
    }

    pub(super) fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.check()?;
        self.state(tp)?.position.set(Some(offset));
        Ok(())
    }

    pub(super) fn targets(&self, tps: &[TopicPartition]) -> Result<Vec<TopicPartition>> {
        if tps.is_empty() {
            return Ok(self.assignment());
        }
        for tp in tps {
            self.state(tp)?;
        }
        Ok(tps.to_vec())
    }

    pub(super) fn seek_with(&mut self, tps: &[TopicPartition], to: impl Fn(&Log) -> u64) -> Result<()> {
        self.check()?;
        for tp in self.targets(tps)? {
            let st = self.state(&tp)?;
            st.position.set(Some(to(&st.log)));
        }
        Ok(())
    }

    pub(super) fn set_paused(&mut self, tps: &[TopicPartition], paused: bool) -> Result<()> {
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

    pub(super) fn leave_group(&mut self) {
        if let (Mode::Subscribed { member, .. }, Some(g)) = (&self.mode, self.config.group.clone()) {
            let member = *member;
            let counts = self.counts();
            self.broker.groups.leave(&g, member, &counts);
        }
    }

    pub(super) fn shutdown(&mut self) -> Result<()> {
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

/// Where a fetch hands the records it reads: owned records for
/// `Consumer::poll`, or the caller's closure for `Consumer::poll_with`.
pub(super) trait Fetch {
    /// Records handed out so far in this poll.
    fn taken(&self) -> usize;
    /// Room for `n` more records (a hint).
    fn reserve(&mut self, _n: usize) {}
    /// Reads up to `max` records of `st`'s partition from `pos`, stopping at
    /// `end` (and, at `iso` read-committed, at the last stable offset).
    /// Returns the position after the last record handed out and the
    /// control or hidden records after it (if it moved; after a failed read,
    /// after the last record handed out) and the read's result.
    fn read(&mut self, st: &PartState, pos: u64, max: usize, end: u64, iso: Isolation<'_>)
        -> (Option<u64>, Result<()>);
}

impl Fetch for Vec<ConsumedRecord> {
    fn taken(&self) -> usize {
        self.len()
    }

    // Room for what is there (up to the poll's limit), no more: a consumer
    // that keeps up gets a record or two per poll, and a fixed 64 slots
    // (~4 KB) made each poll a larger malloc than it needed; a full poll
    // reserves its 500 once instead of growing.
    fn reserve(&mut self, n: usize) {
        Vec::reserve(self, n);
    }

    fn read(
        &mut self,
        st: &PartState,
        pos: u64,
        max: usize,
        end: u64,
        iso: Isolation<'_>,
    ) -> (Option<u64>, Result<()>) {
        let before = self.len();
        let read = st
            .log
            .read_with_cursor(pos, max, self, &mut st.cursor.borrow_mut(), Some(end), iso);
        match read {
            // Past the last record, control records, hidden records and
            // offsets compaction removed after them.
            Ok((_, next)) => (Some(next).filter(|&n| n > pos), Ok(())),
            Err(e) => {
                let next = self
                    .get(before..)
                    .and_then(<[ConsumedRecord]>::last)
                    .map(|r| r.offset() + 1);
                (next, Err(e))
            }
        }
    }
}

/// `Consumer::poll_with`'s sink: lends each record to `f`.
pub(super) struct Lend<F> {
    pub(super) f: F,
    pub(super) taken: usize,
}

impl<F: FnMut(RecordView<'_>)> Fetch for Lend<F> {
    fn taken(&self) -> usize {
        self.taken
    }

    fn read(
        &mut self,
        st: &PartState,
        pos: u64,
        max: usize,
        end: u64,
        iso: Isolation<'_>,
    ) -> (Option<u64>, Result<()>) {
        // Counted as they are lent: records before an error count too.
        let (mut last, taken, f) = (None, &mut self.taken, &mut self.f);
        let read = st.log.read_views_with_cursor(
            pos,
            max,
            &mut |r: RecordView<'_>| {
                last = Some(r.offset());
                *taken += 1;
                f(r);
            },
            &mut st.cursor.borrow_mut(),
            Some(end),
            iso,
        );
        match read {
            // Past the last record, control records, hidden records and
            // offsets compaction removed after them.
            Ok(next) => (Some(next).filter(|&n| n > pos), Ok(())),
            Err(e) => (last.map(|o| o + 1), Err(e)),
        }
    }
}
