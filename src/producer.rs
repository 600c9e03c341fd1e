//! Producers: partition choice and appends.

#[cfg(feature = "async")]
mod send_async;

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::broker::BrokerInner;
use crate::compression::Compression;
use crate::error::{Error, Result};
use crate::format::batch::Encode;
use crate::log::{Appended, Log};
use crate::record::{BorrowedRecord, Record, RecordMetadata};
use crate::topic::TopicInner;
use crate::txn::Transaction;

/// The topic this thread last sent to: with it, a `send` to the same topic
/// takes no lock and touches no reference count before the append (each of
/// those is an atomic read-modify-write, a measurable share of a send).
/// Valid while the broker's `topology` counter is unchanged.
struct Route {
    broker: u64,
    topology: u64,
    name: Box<str>,
    topic: Arc<TopicInner>,
    logs: Arc<Vec<Log>>,
}

thread_local! {
    static ROUTE: RefCell<Option<Route>> = const { RefCell::new(None) };
}

/// Drops a replaced route off the sending thread. A route can hold the last
/// references to a closed broker's or a deleted topic's logs, and dropping
/// them unmaps their segments, which would stall the send that drops them.
fn retire(route: Option<Route>) {
    static REAPER: std::sync::OnceLock<Option<crossbeam_channel::Sender<Route>>> = std::sync::OnceLock::new();
    let Some(route) = route else { return };
    let reaper = REAPER.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<Route>();
        std::thread::Builder::new()
            .name("logbus-reaper".into())
            .spawn(move || rx.into_iter().for_each(drop))
            .ok()
            .map(|_| tx)
    });
    // Without the thread (it could not be started), drop here.
    if let Some(tx) = reaper {
        let _ = tx.send(route);
    }
}

/// Drops the calling thread's cached route if it belongs to broker `id`
/// (called by the broker's close: the thread closing a broker pays for
/// unmapping its segments there, not in the middle of its next send's run,
/// where the reaper thread would do it next to the new broker's writers).
pub(crate) fn forget_route(id: u64) {
    let route = ROUTE
        .try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            slot.take_if(|r| r.broker == id)
        })
        .ok()
        .flatten();
    drop(route);
}

/// Sends records to topics. Cheap to clone; many threads may share one.
///
/// Partition choice: an explicit partition wins, else the hash of the key
/// (same key, same partition, always), else round-robin over the partitions.
///
/// ```
/// # fn main() -> logbus::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use logbus::{Broker, Record, TopicConfig};
/// let broker = Broker::open(dir.path())?;
/// broker.create_topic("orders", TopicConfig::new(3))?;
/// let producer = broker.producer();
/// let a = producer.send("orders", Record::new("created").with_key("order-7"))?;
/// let b = producer.send("orders", Record::new("paid").with_key("order-7"))?;
/// assert_eq!(a.partition(), b.partition());
/// assert_eq!(b.offset(), a.offset() + 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    pub(crate) broker: Arc<BrokerInner>,
    /// Overrides every topic's compression (see [`Producer::with_compression`]).
    pub(crate) compression: Option<Compression>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("dir", &self.broker.dir)
            .field("compression", &self.compression)
            .finish()
    }
}

pub(crate) fn metadata<R: Encode>(
    topic: &TopicInner,
    partition: u32,
    offset: u64,
    record: &R,
    append_time: i64,
    log_time: bool,
) -> RecordMetadata {
    let timestamp = crate::log::record_timestamp(log_time, record.create_time(), append_time);
    RecordMetadata {
        topic: topic.metadata_name.clone(),
        partition,
        offset,
        timestamp,
    }
}

impl Producer {
    /// This producer with its batches compressed with `compression`
    /// whatever the topic's [`TopicConfig::compression`](crate::TopicConfig::compression)
    /// (Kafka's producer `compression.type`); `Compression::None` writes
    /// them uncompressed. Other clones keep their setting. A codec whose
    /// cargo feature is off is `Error::InvalidConfig`.
    ///
    /// Each `send_batch` (per partition) is compressed as one or more
    /// batches of up to 64 KiB of records; a single `send` is a batch of
    /// one record, which compression rarely shrinks (it is then stored as is).
    pub fn with_compression(&self, compression: Compression) -> Result<Producer> {
        compression.check("compression")?;
        Ok(Producer {
            broker: Arc::clone(&self.broker),
            compression: Some(compression),
        })
    }

    /// Appends to `log` with this producer's compression, or the topic's.
    #[inline]
    fn append<R: Encode>(&self, log: &Log, records: &[R]) -> Result<crate::log::Appended> {
        match self.compression {
            None => log.append_records(records),
            Some(c) => log.append_records_as(records, c),
        }
    }

    /// Appends one record; returns where it landed. Under `Durability::Sync`
    /// returns once it is on stable storage.
    pub fn send(&self, topic: &str, record: Record) -> Result<RecordMetadata> {
        self.send_one(topic, &record)
    }

    /// [`send`](Self::send) from bytes the caller lends: no allocation per
    /// record, the bytes are copied once, into the segment.
    pub fn send_borrowed(&self, topic: &str, record: BorrowedRecord<'_>) -> Result<RecordMetadata> {
        self.send_one(topic, &record)
    }

    fn send_one<R: Encode>(&self, topic: &str, record: &R) -> Result<RecordMetadata> {
        let append = |log: &Log, r: &R| self.append(log, std::slice::from_ref(r)).map(|a| (a, ()));
        self.send_one_with(topic, record, append).map(|(meta, ())| meta)
    }

    /// A send of one record, appended by `append` (which may hand back
    /// something more, such as the wait for durability of an async send).
    fn send_one_with<R: Encode, T>(
        &self,
        topic: &str,
        record: &R,
        append: impl FnOnce(&Log, &R) -> Result<(Appended, T)>,
    ) -> Result<(RecordMetadata, T)> {
        self.with_topic(topic, |t, logs| {
            t.check_live()?;
            let partition = t.choose_partition(record, logs.len() as u32)?;
            let Some(log) = logs.get(partition as usize) else {
                return Err(Error::UnknownTopic {
                    topic: topic.to_string(),
                });
            };
            let (appended, more) = append(log, record).map_err(|e| self.map_closed(t, e))?;
            let meta = metadata(
                t,
                partition,
                appended.base_offset,
                record,
                appended.append_time,
                log.log_append_time(),
            );
            Ok((meta, more))
        })
    }

    /// Runs `f` with the topic and its partitions, from this thread's cached
    /// route when it is still valid (else looked up, and cached).
    fn with_topic<R>(&self, topic: &str, f: impl FnOnce(&TopicInner, &[Log]) -> Result<R>) -> Result<R> {
        let b = &*self.broker;
        // Loaded before the lookup: a change racing with it leaves a route
        // stamped with the older value, which the next send discards.
        let topology = b.topology.load(Ordering::Acquire);
        let mut f = Some(f);
        let cached = ROUTE
            .try_with(|cell| {
                let mut slot = cell.try_borrow_mut().ok()?;
                let hit = slot
                    .as_ref()
                    .is_some_and(|r| r.broker == b.id && r.topology == topology && &*r.name == topic);
                if !hit {
                    // Errors are reported by the uncached path below.
                    let t = b.topic(topic).ok()?;
                    let logs = t.logs();
                    let old = slot.replace(Route {
                        broker: b.id,
                        topology,
                        name: topic.into(),
                        topic: t,
                        logs,
                    });
                    retire(old);
                }
                let r = slot.as_ref()?;
                let f = f.take()?;
                Some(f(&r.topic, &r.logs))
            })
            .ok()
            .flatten();
        match (cached, f) {
            (Some(result), _) => result,
            (None, Some(f)) => {
                let t = b.topic(topic)?;
                let logs = t.logs();
                f(&t, &logs)
            }
            (None, None) => Err(Error::Closed),
        }
    }

    /// Appends many records, each routed as by `send`, in order per partition.
    /// All-or-nothing validation: if one record is invalid (unknown
    /// partition, too large), none is written.
    pub fn send_batch(&self, topic: &str, records: impl IntoIterator<Item = Record>) -> Result<Vec<RecordMetadata>> {
        let records: Vec<Record> = records.into_iter().collect();
        self.with_topic(topic, |t, logs| self.send_routed(t, logs, &records))
    }

    /// [`send_batch`](Self::send_batch) from bytes the caller lends: no
    /// allocation per record.
    pub fn send_batch_borrowed(&self, topic: &str, records: &[BorrowedRecord<'_>]) -> Result<Vec<RecordMetadata>> {
        self.with_topic(topic, |t, logs| self.send_routed(t, logs, records))
    }

    fn send_routed<R: Encode>(&self, t: &TopicInner, logs: &[Log], records: &[R]) -> Result<Vec<RecordMetadata>> {
        t.check_live()?;
        let count = logs.len() as u32;
        let parts = records
            .iter()
            .map(|r| t.choose_partition(r, count))
            .collect::<Result<Vec<u32>>>()?;
        let meta = |log: &Log, p: u32, first: u64, k: usize, r: &R, at: i64| {
            metadata(t, p, first + k as u64, r, at, log.log_append_time())
        };
        // One partition (a one-partition topic, one key, one explicit
        // partition): one append, which validates all-or-nothing itself.
        if let Some(&p) = parts.first().filter(|&&p| parts.iter().all(|&q| q == p)) {
            let Some(log) = logs.get(p as usize) else {
                return Err(Error::UnknownTopic {
                    topic: t.name.to_string(),
                });
            };
            let appended = self.append(log, records).map_err(|e| self.map_closed(t, e))?;
            let (first, at) = (appended.base_offset, appended.append_time);
            return Ok(records
                .iter()
                .enumerate()
                .map(|(k, r)| meta(log, p, first, k, r, at))
                .collect());
        }
        // Several partitions: validate every group before writing any.
        let mut groups: Vec<Vec<&R>> = (0..count).map(|_| Vec::new()).collect();
        let mut places: Vec<(u32, usize)> = Vec::with_capacity(records.len());
        for (r, &p) in records.iter().zip(&parts) {
            if let Some(g) = groups.get_mut(p as usize) {
                places.push((p, g.len()));
                g.push(r);
            }
        }
        for (group, log) in groups.iter().zip(logs) {
            log.validate_records(group.iter().copied())?;
        }
        let mut firsts: Vec<(u64, i64)> = vec![(0, 0); groups.len()];
        for ((group, log), first) in groups.iter().zip(logs).zip(&mut firsts) {
            if !group.is_empty() {
                let appended = self.append(log, group).map_err(|e| self.map_closed(t, e))?;
                *first = (appended.base_offset, appended.append_time);
            }
        }
        Ok(records
            .iter()
            .zip(places)
            .filter_map(|(r, (p, k))| {
                let (first, at) = *firsts.get(p as usize)?;
                Some(meta(logs.get(p as usize)?, p, first, k, r, at))
            })
            .collect())
    }

    /// Begins a transaction: records sent through it, to any topics and
    /// partitions, and group offsets given to it become visible and
    /// committed together when it commits, or never (see [`Transaction`]).
    pub fn transaction(&self) -> Result<Transaction> {
        Transaction::begin(Arc::clone(&self.broker))
    }

    /// Makes everything sent so far (by anyone) durable.
    pub fn flush(&self) -> Result<()> {
        self.broker.flush()
    }

    /// A log closed under us because its topic was deleted reads as UnknownTopic.
    fn map_closed(&self, t: &TopicInner, e: Error) -> Error {
        match e {
            Error::Closed if !self.broker.is_closed() => Error::UnknownTopic {
                topic: t.name.to_string(),
            },
            e => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ROUTE;
    use crate::{Broker, Record, TopicConfig};

    fn cached_broker() -> Option<u64> {
        ROUTE.with(|cell| cell.borrow().as_ref().map(|r| r.broker))
    }

    /// Closing a broker drops the closing thread's cached route to it (and
    /// leaves a route to another broker alone).
    #[test]
    fn close_forgets_the_closing_threads_route() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (Broker::open(d1.path()).unwrap(), Broker::open(d2.path()).unwrap());
        for broker in [&a, &b] {
            broker.create_topic("t", TopicConfig::new(1)).unwrap();
        }
        let (a_id, b_id) = (a.inner.id, b.inner.id);
        b.producer().send("t", Record::new("x")).unwrap();
        assert_eq!(cached_broker(), Some(b_id));
        a.close().unwrap();
        assert_eq!(cached_broker(), Some(b_id), "closing another broker keeps the route");
        b.close().unwrap();
        assert_eq!(cached_broker(), None);
        assert_ne!(a_id, b_id);
    }
}
