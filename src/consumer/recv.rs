//! `Consumer::recv` and `Consumer::stream` (feature `async`).
//!
//! A pending `recv` is a poll that waits: its task's waker is registered on
//! the `WaitList` of every unpaused assigned partition (where a blocking poll
//! registers its thread) and with the group coordinator (which marks the
//! member as inside a poll, so it is never evicted while it waits). Records
//! are taken from the partitions only in the `poll` that returns them, so
//! dropping the future between polls loses nothing.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::core::Mode;
use super::{Consumer, ConsumerCore, ConsumerRecords};
use crate::error::{Error, Result};
use crate::log::consumed::ConsumedRecord;
use crate::log::{Log, Waiter};
use crate::names::TopicPartition;

/// Fetch attempts in one `poll` before yielding to the executor (a
/// partition that looks ready but gives nothing, such as one whose position
/// was just reset, needs a second look).
const ATTEMPTS: usize = 4;

/// One `recv` in progress: what it registered, and whether it has started.
#[derive(Default)]
struct Waiting {
    started: bool,
    /// The partitions' logs this task is registered on, with the ids.
    logs: Vec<(Log, u64)>,
}

impl Waiting {
    fn unregister(&mut self) {
        for (log, id) in self.logs.drain(..) {
            log.unregister_waiter(id);
        }
    }

    /// Polls for records as `Consumer::poll` does, with the task's waker
    /// where `poll` parks its thread. Ready ends the receive (see `finish`).
    fn poll(&mut self, c: &mut Consumer, cx: &mut Context<'_>) -> Poll<Result<ConsumerRecords>> {
        self.unregister();
        if !self.started {
            self.started = true;
            c.begin_poll()?;
        }
        let mut out = Vec::new();
        let mut synced = false;
        for _ in 0..ATTEMPTS {
            if !c.sync_is_fresh() {
                c.group_sync(Waiter::Task(cx.waker().clone()))?;
                synced = true;
            }
            c.core.fetch(&mut out)?;
            if !out.is_empty() {
                return Poll::Ready(Ok(ConsumerRecords { records: out }));
            }
            if c.core.broker.is_closed() {
                return Poll::Ready(Err(c.core.check().err().unwrap_or(Error::Closed)));
            }
            c.core.check_can_wait()?;
            if !synced && matches!(c.core.mode, Mode::Subscribed { .. }) {
                // About to wait: the coordinator must know whom to wake (the
                // waker may differ from the last poll's).
                c.group_sync(Waiter::Task(cx.waker().clone()))?;
                synced = true;
                continue;
            }
            for st in c.core.parts.values().filter(|s| !s.paused) {
                self.logs.push((st.log.clone(), st.log.register_task(cx.waker())));
            }
            // Re-check after registering: an append before it is seen here,
            // an append after it wakes the task.
            if !c.core.ready(true) {
                return Poll::Pending;
            }
            self.unregister();
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Ends the receive (returned, failed or dropped): no registration is
    /// left behind, and the member is no longer inside a poll.
    fn finish(&mut self, c: &mut Consumer) {
        self.unregister();
        if std::mem::take(&mut self.started) {
            c.end_recv();
        }
    }
}

impl Consumer {
    /// Waits until at least one record is available, or an error, and
    /// returns the records as [`poll`](Self::poll) does (up to
    /// `max_poll_records`, rebalance callbacks run here, auto commit commits
    /// the previous receive's positions). Needs no runtime: the task is woken
    /// by the append, rebalance or close it waits for.
    ///
    /// **Cancel-safe:** records are taken from the partitions only in the
    /// poll that returns them, so dropping the future (a `select!` whose
    /// other branch won, a timeout) loses no record; the next `recv` or
    /// `poll` returns it.
    ///
    /// **Group membership:** while a `recv` is pending the member counts as
    /// inside a poll and is never evicted, however long it waits. Between
    /// receives (the application awaiting something else) the blocking rule
    /// holds: a member that does not call `recv` or `poll` again within
    /// `max_poll_interval` is evicted, its partitions go to the others, and
    /// its next `recv` rejoins the group (the listener's
    /// `on_partitions_lost` runs first).
    ///
    /// **Errors** end the wait instead of a hang: `Error::Closed` once the
    /// broker or the consumer is closed (a pending `recv` is woken by the
    /// close); `Error::InvalidConfig` for a consumer with nothing to wait on
    /// (no assignment, no subscription); `Error::UnknownTopic` when every
    /// manually assigned partition belongs to a deleted topic. A subscribed
    /// member waits for its topics to be created, as with `poll`.
    ///
    /// ```
    /// # fn main() -> logbus::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig, TopicPartition};
    /// let broker = Broker::open(dir.path())?;
    /// broker.create_topic("events", TopicConfig::new(1))?;
    /// let mut consumer = broker.consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))?;
    /// consumer.assign(&[TopicPartition::new("events", 0)])?;
    /// let producer = broker.producer();
    /// std::thread::spawn(move || producer.send("events", Record::new("hello")));
    /// # smol::block_on(async {
    /// let records = consumer.recv().await?;
    /// assert_eq!(records.iter().next().map(|r| r.value()), Some(&b"hello"[..]));
    /// # Ok(()) })
    /// # }
    /// ```
    pub fn recv(&mut self) -> impl Future<Output = Result<ConsumerRecords>> + Send + '_ {
        Recv {
            consumer: self,
            waiting: Waiting::default(),
        }
    }

    /// The records of the assigned partitions, one at a time, as a
    /// [`Stream`] that waits as [`recv`](Self::recv) does.
    ///
    /// An error is an item of its own; the stream goes on after it (the next
    /// item retries, as the next `poll` would) and ends after
    /// `Error::Closed`. Dropping the stream loses nothing: records it had
    /// read but not yielded are read again by the next `recv`, `poll` or
    /// stream (their partitions' positions are moved back to them), and
    /// auto commit commits only the positions of yielded records.
    pub fn stream(&mut self) -> impl Stream<Item = Result<ConsumedRecord>> + Send + '_ {
        RecordStream {
            consumer: self,
            waiting: Waiting::default(),
            buffered: VecDeque::new(),
            ended: false,
        }
    }

    /// The start of a receive: what `poll` does before it fetches.
    fn begin_poll(&mut self) -> Result<()> {
        self.core.check()?;
        if self.core.config.auto_commit && self.core.config.group.is_some() {
            match self.core.commit_all() {
                Ok(()) | Err(Error::Fenced { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.core.synced_this_poll = false;
        Ok(())
    }

    /// The end of a receive: the member is no longer waiting in a poll.
    fn end_recv(&mut self) {
        if std::mem::take(&mut self.core.synced_this_poll) {
            self.core.end_poll();
        }
    }
}

impl ConsumerCore {
    /// A receive that nothing could ever end is an error, not a hang: a
    /// consumer that neither assigns nor subscribes, or whose manually
    /// assigned partitions all belong to deleted topics.
    fn check_can_wait(&self) -> Result<()> {
        match self.mode {
            Mode::Subscribed { .. } => Ok(()),
            Mode::Unset | Mode::Manual if self.parts.is_empty() => Err(Error::config(
                "recv",
                "no partitions",
                "assign() partitions or subscribe() to topics before receiving",
            )),
            Mode::Unset | Mode::Manual => match self.parts.values().find_map(|st| st.topic.check_live().ok()) {
                Some(()) => Ok(()),
                None => self.parts.values().try_for_each(|st| st.topic.check_live()),
            },
        }
    }
}

/// The future of [`Consumer::recv`].
struct Recv<'a> {
    consumer: &'a mut Consumer,
    waiting: Waiting,
}

impl Future for Recv<'_> {
    type Output = Result<ConsumerRecords>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let result = this.waiting.poll(this.consumer, cx);
        if result.is_ready() {
            this.waiting.finish(this.consumer);
        }
        result
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        self.waiting.finish(self.consumer);
    }
}

/// The stream of [`Consumer::stream`].
struct RecordStream<'a> {
    consumer: &'a mut Consumer,
    waiting: Waiting,
    /// Records read, not yet yielded, in order.
    buffered: VecDeque<ConsumedRecord>,
    ended: bool,
}

impl Stream for RecordStream<'_> {
    type Item = Result<ConsumedRecord>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(r) = this.buffered.pop_front() {
            return Poll::Ready(Some(Ok(r)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        let result = this.waiting.poll(this.consumer, cx);
        if result.is_ready() {
            this.waiting.finish(this.consumer);
        }
        match result {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(records)) => {
                this.buffered.extend(records);
                Poll::Ready(this.buffered.pop_front().map(Ok))
            }
            Poll::Ready(Err(e)) => {
                this.ended = matches!(e, Error::Closed);
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.buffered.len(), None)
    }
}

impl Drop for RecordStream<'_> {
    fn drop(&mut self) {
        self.waiting.finish(self.consumer);
        // Give back what was read and not yielded: each partition's position
        // moves back to its first such record.
        let mut back: Vec<(TopicPartition, u64)> = Vec::new();
        for r in self.buffered.drain(..) {
            if !back
                .iter()
                .any(|(tp, _)| tp.topic == r.topic() && tp.partition == r.partition())
            {
                back.push((TopicPartition::new(r.topic(), r.partition()), r.offset()));
            }
        }
        for (tp, offset) in back {
            // A partition revoked meanwhile is not this consumer's to move.
            let _ = self.consumer.core.seek(&tp, offset);
        }
    }
}
