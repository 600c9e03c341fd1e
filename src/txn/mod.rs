//! Transactions: atomic appends across partitions and topics, and group
//! offsets that commit with them (Kafka's transactional producer, in one
//! process). See ARCHITECTURE.md, "Transactions".

pub(crate) mod coordinator;
pub(crate) mod ids;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::broker::BrokerInner;
use crate::error::{Error, Result};
use crate::format::txn::TxnOffset;
use crate::log::txn::Committed;
use crate::log::Log;
use crate::names::TopicPartition;
use crate::record::{Record, RecordMetadata};
use crate::topic::TopicInner;

/// A transaction: records sent through it to any topics and partitions,
/// and group offsets, become visible and committed together, or never.
///
/// Begin one with [`Producer::transaction`](crate::Producer::transaction).
/// Records are appended at once ([`send`](Self::send) returns their real
/// offset); consumers with `IsolationLevel::ReadCommitted` see them only
/// after [`commit`](Self::commit), all at once, and never after
/// [`abort`](Self::abort), a drop without commit, or a crash before the
/// commit. Consumers with the default `ReadUncommitted` see them as they
/// are written.
///
/// Any number of transactions may be open at once, from any threads, on
/// the same partitions: each is independent. An open transaction holds
/// read-committed consumers of every partition it wrote to at its first
/// offset there (the last stable offset), so keep transactions short.
///
/// ```
/// # fn main() -> logbus::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use logbus::{Broker, ConsumerConfig, IsolationLevel, OffsetReset, Record, TopicConfig};
/// let broker = Broker::open(dir.path())?;
/// broker.create_topic("orders", TopicConfig::new(2))?;
/// broker.create_topic("audit", TopicConfig::new(1))?;
///
/// let mut txn = broker.producer().transaction()?;
/// txn.send("orders", Record::new("order 7").with_partition(1))?;
/// txn.send("audit", Record::new("order 7 placed"))?;
/// txn.commit()?; // both visible now, or (after a crash before this) neither
///
/// let mut aborted = broker.producer().transaction()?;
/// aborted.send("orders", Record::new("never seen").with_partition(1))?;
/// aborted.abort()?;
///
/// let mut consumer = broker.consumer(
///     ConsumerConfig::new()
///         .offset_reset(OffsetReset::Earliest)
///         .isolation_level(IsolationLevel::ReadCommitted),
/// )?;
/// consumer.assign(&[logbus::TopicPartition::new("orders", 1)])?;
/// let records = consumer.poll(std::time::Duration::from_millis(100))?;
/// let values: Vec<&[u8]> = records.iter().map(|r| r.value()).collect();
/// assert_eq!(values, [b"order 7"]);
/// # Ok(()) }
/// ```
pub struct Transaction {
    broker: Arc<BrokerInner>,
    id: u64,
    /// Partitions written to, in first-write order.
    touched: Vec<(Arc<str>, u32, Log)>,
    /// Group offsets to commit with it; the last one per partition wins.
    offsets: BTreeMap<(String, TopicPartition), u64>,
    finished: bool,
    /// The topic of the last `send` (see [`Transaction::route`]).
    route: Option<Route>,
}

/// A topic and its partitions, as of the broker's topology counter `topology`.
struct Route {
    topology: u64,
    topic: Arc<TopicInner>,
    logs: Arc<Vec<Log>>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("id", &self.id)
            .field("partitions", &self.touched.len())
            .field("offsets", &self.offsets.len())
            .finish()
    }
}

impl Transaction {
    pub(crate) fn begin(broker: Arc<BrokerInner>) -> Result<Transaction> {
        broker.check_open()?;
        let id = broker.txns.begin()?;
        Ok(Transaction {
            broker,
            id,
            touched: Vec::new(),
            offsets: BTreeMap::new(),
            finished: false,
            route: None,
        })
    }

    /// The transaction's id: unique in this broker directory, never reused
    /// (stored in each of its batches, shown by `logbus dump`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Appends `record` to `topic` as part of this transaction, routed as
    /// [`Producer::send`](crate::Producer::send) routes it; returns where it
    /// landed. The record is stored (not yet visible to read-committed
    /// consumers) or, on an error, nothing is written; the transaction stays
    /// open either way. Not fsynced here: the commit makes every record of
    /// the transaction durable before its commit point.
    pub fn send(&mut self, topic: &str, record: Record) -> Result<RecordMetadata> {
        let route = self.route(topic)?;
        let result = self.send_routed(&route, record);
        self.route = Some(route);
        result
    }

    /// The topic `topic` and its partitions: the last send's while the
    /// broker's topology counter is unchanged (create, delete, add_partitions
    /// and close bump it), else looked up.
    fn route(&mut self, topic: &str) -> Result<Route> {
        let topology = self.broker.topology.load(Ordering::Acquire);
        match self.route.take() {
            Some(r) if r.topology == topology && &*r.topic.name == topic => Ok(r),
            _ => {
                let topic = self.broker.topic(topic)?;
                let logs = topic.logs();
                Ok(Route { topology, topic, logs })
            }
        }
    }

    fn send_routed(&mut self, route: &Route, record: Record) -> Result<RecordMetadata> {
        let (t, logs) = (&route.topic, &route.logs);
        let topic = &*t.name;
        t.check_live()?;
        let partition = t.choose_partition(&record, logs.len() as u32)?;
        let Some(log) = logs.get(partition as usize) else {
            return Err(Error::UnknownTopic {
                topic: topic.to_string(),
            });
        };
        let first = self.touch(&t.name, partition, log);
        let appended = log.append_txn(std::slice::from_ref(&record), self.id, first)?;
        Ok(crate::producer::metadata(
            t,
            partition,
            appended.base_offset,
            &record,
            appended.append_time,
            log.log_append_time(),
        ))
    }

    /// Appends many records as part of this transaction, each routed as by
    /// [`send`](Self::send), as one append (one batch) per partition, in
    /// order per partition. All-or-nothing validation: if one record is
    /// invalid (unknown partition, too large), none is written.
    pub fn send_batch(
        &mut self,
        topic: &str,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Vec<RecordMetadata>> {
        let records: Vec<Record> = records.into_iter().collect();
        let t = self.broker.topic(topic)?;
        t.check_live()?;
        let logs = t.logs();
        let count = logs.len() as u32;
        let parts = records
            .iter()
            .map(|r| t.choose_partition(r, count))
            .collect::<Result<Vec<u32>>>()?;
        let mut groups: BTreeMap<u32, Vec<&Record>> = BTreeMap::new();
        let mut places: Vec<(u32, usize)> = Vec::with_capacity(records.len());
        for (r, &p) in records.iter().zip(&parts) {
            let g = groups.entry(p).or_default();
            places.push((p, g.len()));
            g.push(r);
        }
        for (&p, group) in &groups {
            let Some(log) = logs.get(p as usize) else {
                return Err(Error::UnknownTopic {
                    topic: topic.to_string(),
                });
            };
            log.validate_records(group.iter().copied())?;
        }
        let mut firsts: BTreeMap<u32, (u64, i64)> = BTreeMap::new();
        for (&p, group) in &groups {
            let Some(log) = logs.get(p as usize) else { continue };
            let first = self.touch(&t.name, p, log);
            let appended = log.append_txn(group, self.id, first)?;
            firsts.insert(p, (appended.base_offset, appended.append_time));
        }
        Ok(records
            .iter()
            .zip(places)
            .filter_map(|(r, (p, k))| {
                let &(first, at) = firsts.get(&p)?;
                let log = logs.get(p as usize)?;
                Some(crate::producer::metadata(
                    &t,
                    p,
                    first + k as u64,
                    r,
                    at,
                    log.log_append_time(),
                ))
            })
            .collect())
    }

    /// Records that this transaction writes to `partition` of `topic`;
    /// whether it is the first write there. Before the append: an append
    /// that fails after registering the transaction there is still ended by
    /// the commit or abort.
    fn touch(&mut self, topic: &Arc<str>, partition: u32, log: &Log) -> bool {
        // By identity: a topic deleted and created again has new logs.
        let first = !self.touched.iter().any(|(_, _, l)| l.is_same(log));
        if first {
            self.touched.push((Arc::clone(topic), partition, log.clone()));
        }
        first
    }

    /// Adds group offsets (the next offset to read, per partition) that become
    /// `group`'s committed offsets if and only if this transaction commits.
    /// This is the consume-transform-produce loop's commit: after any crash,
    /// each input's output appears exactly once. A later call for the same
    /// partition replaces the earlier offset. The offsets are written
    /// whatever the group's members and generation (no fencing).
    pub fn send_offsets(&mut self, group: &str, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        if group.is_empty() {
            return Err(Error::config("group", group, "a group id must not be empty"));
        }
        for (tp, _) in offsets {
            // An unknown topic or partition is refused now, not at commit.
            self.broker.topic(&tp.topic)?.log(tp.partition)?;
        }
        for (tp, offset) in offsets {
            self.offsets.insert((group.to_string(), tp.clone()), *offset);
        }
        Ok(())
    }

    /// Commits: every record and offset of the transaction becomes visible
    /// at once, durable as the broker's `Durability` promises (under `Sync`
    /// and `Interval`, fsynced before this returns).
    ///
    /// An error before the commit point (a failed fsync of a partition)
    /// aborts the transaction. `Error::TransactionLog` means the write of the
    /// commit point itself failed: the transaction is not visible now, and
    /// the next open of the broker finds it committed or not, all or nothing.
    /// An error after the commit point (writing the group offsets) leaves the
    /// transaction committed; its offsets are applied at the next open.
    pub fn commit(mut self) -> Result<()> {
        self.finished = true;
        let logs: Vec<Log> = self.touched.iter().map(|(_, _, l)| l.clone()).collect();
        if let Err(e) = self.broker.check_open() {
            self.broker.txns.abort(self.id, &logs, false);
            return Err(e);
        }
        let offsets: Vec<TxnOffset> = self
            .offsets
            .iter()
            .map(|((group, tp), &offset)| TxnOffset {
                group: group.clone(),
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
            })
            .collect();
        let result = self.broker.txns.commit(self.id, &logs, &offsets, &self.broker.groups);
        if result.is_err() && !self.broker.txns.is_committed(self.id) {
            // Not committed (now): release the partitions. No abort marker
            // when the commit point's write failed: the next open decides.
            let markers = !matches!(result, Err(Error::TransactionLog { .. }));
            self.broker.txns.abort(self.id, &logs, markers);
        }
        result
    }

    /// Aborts: no record or offset of the transaction is ever visible to
    /// read-committed consumers. Its records keep their offsets (skipped by
    /// those consumers, shown by `logbus dump` as aborted).
    pub fn abort(mut self) -> Result<()> {
        self.finished = true;
        self.end_aborted();
        Ok(())
    }

    fn end_aborted(&self) {
        let logs: Vec<Log> = self.touched.iter().map(|(_, _, l)| l.clone()).collect();
        self.broker.txns.abort(self.id, &logs, true);
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.finished {
            self.end_aborted();
        }
    }
}
