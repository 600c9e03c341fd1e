//! Topics and partitions: handles, name rules, persisted metadata.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::broker::BrokerInner;
use crate::config::{CleanupPolicy, Durability, LogConfig, Partitioner, TimestampType, TopicConfig};
use crate::error::{Error, Result};
use crate::format::batch::Encode;
use crate::format::topic_meta::{self, TopicMeta};
use crate::log::consumed::{ConsumedRecord, RecordView};
use crate::log::Log;
use crate::names::TopicName;
use crate::partitioner::partition_for_key;

/// Longest topic name (Kafka's limit).
pub const MAX_TOPIC_NAME: usize = 249;
pub(crate) const META_FILE: &str = "topic.meta";

/// Checks Kafka's rule: 1 to 249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidTopicName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.len() > MAX_TOPIC_NAME {
        return bad("the name is longer than 249 characters");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("it contains a character outside [A-Za-z0-9._-]");
    }
    Ok(())
}

pub(crate) struct TopicInner {
    pub(crate) name: Arc<str>,
    /// The name as each send's [`RecordMetadata`](crate::RecordMetadata)
    /// carries it, built once: a batch's results are clones of it (a copy
    /// of five words), not a copy of the name each.
    pub(crate) metadata_name: TopicName,
    pub(crate) dir: PathBuf,
    /// `config`'s partitioner, which never changes: read per keyed send
    /// without taking the config lock (an atomic add on a line every
    /// producer thread shares).
    pub(crate) partitioner: Partitioner,
    pub(crate) config: RwLock<TopicConfig>,
    pub(crate) partitions: RwLock<Arc<Vec<Log>>>,
    pub(crate) round_robin: AtomicU64,
    pub(crate) deleted: AtomicBool,
}

impl TopicInner {
    /// The partition a record goes to: its own, else its key's hash, else
    /// the next in round-robin order (the producer's routing, also used by
    /// `logbus produce`, which needs to know it before sending).
    #[inline]
    pub(crate) fn choose_partition<R: Encode>(&self, record: &R, count: u32) -> Result<u32> {
        if let Some(p) = record.target_partition() {
            if p >= count {
                return Err(Error::UnknownPartition {
                    topic: self.name.to_string(),
                    partition: p,
                    partition_count: count,
                });
            }
            return Ok(p);
        }
        if let Some(key) = record.key_bytes() {
            return Ok(partition_for_key(self.partitioner, key, count));
        }
        if count <= 1 {
            return Ok(0);
        }
        let n = self.round_robin.fetch_add(1, Ordering::Relaxed);
        Ok((n % u64::from(count)) as u32)
    }

    /// Creates the topic's directories and metadata (metadata last: a topic
    /// directory without `topic.meta` is an interrupted create).
    pub(crate) fn create(dir: &Path, name: &str, config: TopicConfig, durability: Durability) -> Result<TopicInner> {
        crate::fs::create_dir_durable(dir)?;
        let name: Arc<str> = name.into();
        let logs = open_partitions(dir, &name, &config, 0..config.partitions, durability, true)?;
        crate::fs::write_atomic(&dir.join(META_FILE), &topic_meta::encode(&to_meta(&config)))?;
        Ok(TopicInner::new(dir, name, config, logs))
    }

    /// Opens an existing topic directory.
    pub(crate) fn open(dir: &Path, name: &str, durability: Durability) -> Result<TopicInner> {
        let path = dir.join(META_FILE);
        let bytes = crate::fs::read_optional(&path)?.unwrap_or_default();
        let meta = topic_meta::decode(&bytes).map_err(|e| Error::Corruption {
            path: path.clone(),
            position: e.at as u64,
            reason: e.message(),
        })?;
        let config = from_meta(&meta);
        let name: Arc<str> = name.into();
        let logs = open_partitions(dir, &name, &config, 0..config.partitions, durability, false)?;
        Ok(TopicInner::new(dir, name, config, logs))
    }

    fn new(dir: &Path, name: Arc<str>, config: TopicConfig, logs: Vec<Log>) -> TopicInner {
        TopicInner {
            metadata_name: TopicName::new(&name),
            name,
            dir: dir.to_path_buf(),
            partitioner: config.partitioner,
            config: RwLock::new(config),
            partitions: RwLock::new(Arc::new(logs)),
            round_robin: AtomicU64::new(0),
            deleted: AtomicBool::new(false),
        }
    }

    pub(crate) fn logs(&self) -> Arc<Vec<Log>> {
        Arc::clone(&self.partitions.read())
    }

    pub(crate) fn partition_count(&self) -> u32 {
        self.partitions.read().len() as u32
    }

    pub(crate) fn log(&self, partition: u32) -> Result<Log> {
        let logs = self.partitions.read();
        logs.get(partition as usize)
            .cloned()
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.name.to_string(),
                partition,
                partition_count: logs.len() as u32,
            })
    }

    /// Grows the topic to `count` partitions (never shrinks, like Kafka).
    pub(crate) fn add_partitions(&self, count: u32, durability: Durability) -> Result<()> {
        let mut config = self.config.write();
        let current = config.partitions;
        if count <= current || count > crate::config::MAX_PARTITIONS {
            return Err(Error::config(
                "partitions",
                count,
                format!(
                    "topic '{}' has {current} partitions; the new count must be larger (and at most 10000)",
                    self.name
                ),
            ));
        }
        let mut logs: Vec<Log> = self.logs().iter().cloned().collect();
        let mut next = config.clone().partitions(count);
        logs.extend(open_partitions(
            &self.dir,
            &self.name,
            &next,
            current..count,
            durability,
            true,
        )?);
        crate::fs::write_atomic(&self.dir.join(META_FILE), &topic_meta::encode(&to_meta(&next)))?;
        std::mem::swap(&mut *config, &mut next);
        *self.partitions.write() = Arc::new(logs);
        Ok(())
    }

    /// Replaces the topic's config with `next`, which may differ from the
    /// current one only in what can change on a live topic (the caller
    /// checks): `topic.meta` first, then the partitions' retention limits.
    pub(crate) fn alter_config(&self, next: TopicConfig, durability: Durability) -> Result<()> {
        let mut config = self.config.write();
        crate::fs::write_atomic(&self.dir.join(META_FILE), &topic_meta::encode(&to_meta(&next)))?;
        let log_config = LogConfig::from_topic(&next, durability);
        for log in self.logs().iter() {
            log.set_retention(log_config.retention_bytes, log_config.retention_ms);
        }
        *config = next;
        Ok(())
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(Error::UnknownTopic {
                topic: self.name.to_string(),
            });
        }
        Ok(())
    }
}

/// Opens (creating as needed) the logs of partitions `ids` of a topic, on
/// several threads for many partitions (see `fs::in_parallel`). They share
/// the topic's name (one allocation, which their records point to).
///
/// `new`: the partitions are being added (topic creation, more partitions),
/// and the caller's write of `topic.meta` fsyncs the topic directory
/// afterwards, which makes their directories durable all at once; until
/// then they are not part of the topic. Their directories are created here
/// without an fsync of the topic directory each.
fn open_partitions(
    dir: &Path,
    name: &Arc<str>,
    config: &TopicConfig,
    ids: std::ops::Range<u32>,
    durability: Durability,
    new: bool,
) -> Result<Vec<Log>> {
    let ids: Vec<u32> = ids.collect();
    let opened = crate::fs::in_parallel(&ids, |&p| {
        let pdir = dir.join(p.to_string());
        if new {
            match std::fs::create_dir(&pdir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("creating partition directory", &pdir, e)),
            }
        }
        Log::open_named(&pdir, LogConfig::from_topic(config, durability), Arc::clone(name), p)
    });
    opened.into_iter().collect()
}

fn to_meta(c: &TopicConfig) -> TopicMeta {
    TopicMeta {
        partitions: c.partitions,
        // 0 keeps "not set" (the default) distinct from an explicit limit.
        max_record_bytes: c.max_record_bytes.unwrap_or(0),
        segment_bytes: c.segment_bytes,
        segment_ms: c.segment_ms,
        retention_bytes: c.retention_bytes,
        retention_ms: c.retention_ms,
        timestamp_type: match c.timestamp_type {
            TimestampType::CreateTime => 0,
            TimestampType::LogAppendTime => 1,
        },
        partitioner: match c.partitioner {
            Partitioner::Xxh64 => 0,
            Partitioner::Murmur2 => 1,
        },
        cleanup_policy: match c.cleanup_policy {
            CleanupPolicy::Delete => 0,
            CleanupPolicy::Compact => 1,
            CleanupPolicy::CompactAndDelete => 2,
        },
        delete_retention_ms: c.delete_retention_ms,
        min_compaction_lag_ms: c.min_compaction_lag_ms,
        min_cleanable_dirty_ratio: f64::from_bits(c.min_cleanable_dirty_ratio),
        compression: c.compression.code(),
    }
}

pub(crate) fn from_meta(m: &TopicMeta) -> TopicConfig {
    let mut c = TopicConfig::new(m.partitions)
        .segment_bytes(m.segment_bytes)
        .segment_ms(m.segment_ms)
        .retention_bytes(m.retention_bytes)
        .retention_ms(m.retention_ms)
        .cleanup_policy(match m.cleanup_policy {
            1 => CleanupPolicy::Compact,
            2 => CleanupPolicy::CompactAndDelete,
            _ => CleanupPolicy::Delete,
        })
        .delete_retention_ms(m.delete_retention_ms)
        .min_compaction_lag_ms(m.min_compaction_lag_ms)
        .min_cleanable_dirty_ratio(m.min_cleanable_dirty_ratio);
    if m.max_record_bytes > 0 {
        c = c.max_record_bytes(m.max_record_bytes);
    }
    c.timestamp_type = if m.timestamp_type == 1 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    };
    c.partitioner = if m.partitioner == 1 {
        Partitioner::Murmur2
    } else {
        Partitioner::Xxh64
    };
    c.compression = crate::compression::Compression::from_code(m.compression);
    c
}

/// A topic: a named set of partitions. Cheap to clone.
///
/// ```
/// # fn main() -> logbus::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use logbus::{Broker, TopicConfig};
/// let broker = Broker::open(dir.path())?;
/// let orders = broker.create_topic("orders", TopicConfig::new(3))?;
/// assert_eq!(orders.partition_count(), 3);
/// assert_eq!(orders.partition(0)?.end_offset(), 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Topic {
    pub(crate) broker: Arc<BrokerInner>,
    pub(crate) inner: Arc<TopicInner>,
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.inner.name)
            .field("partitions", &self.partition_count())
            .finish()
    }
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> u32 {
        self.inner.partition_count()
    }

    /// The partition `record` goes to if sent now (see `TopicInner::choose_partition`).
    #[cfg(feature = "cli")]
    pub(crate) fn partition_for(&self, record: &crate::Record) -> Result<u32> {
        self.inner.choose_partition(record, self.partition_count())
    }

    /// A handle on one partition.
    pub fn partition(&self, id: u32) -> Result<Partition> {
        self.broker.check_open()?;
        self.inner.check_live()?;
        let log = self.inner.log(id)?;
        Ok(Partition {
            broker: Arc::clone(&self.broker),
            topic: Arc::clone(&self.inner),
            log,
            id,
        })
    }

    /// The topic's settings.
    pub fn config(&self) -> TopicConfig {
        self.inner.config.read().clone()
    }

    /// Total bytes stored, all partitions.
    pub fn size_bytes(&self) -> u64 {
        self.inner.logs().iter().map(Log::size_bytes).sum()
    }

    /// Runs one compaction pass over every partition's sealed segments now,
    /// and returns when it is done (the background compactor does the same
    /// when a partition's dirty ratio reaches `min_cleanable_dirty_ratio`).
    /// It keeps at least the latest record of every key, never changes a
    /// kept record's offset, key, value, headers or timestamp, and never
    /// touches the active segment. Reads, polls and seeks skip the offsets
    /// it removed. `Error::InvalidConfig` if the topic's cleanup policy is
    /// `Delete`.
    ///
    /// ```
    /// # fn main() -> logbus::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use logbus::{Broker, CleanupPolicy, Record, TopicConfig};
    /// let broker = Broker::open(dir.path())?;
    /// let config = TopicConfig::new(1).cleanup_policy(CleanupPolicy::Compact).segment_bytes(1024);
    /// let prices = broker.create_topic("prices", config)?;
    /// let producer = broker.producer();
    /// for i in 0..100 {
    ///     producer.send("prices", Record::new(format!("{i}")).with_key(format!("item-{}", i % 3)))?;
    /// }
    /// prices.compact()?;
    /// let p = prices.partition(0)?;
    /// let kept = p.read(0, 1000)?;
    /// assert!(kept.len() < 100);
    /// assert_eq!(kept.last().unwrap().value(), b"99"); // offsets and values unchanged
    /// assert_eq!(kept.last().unwrap().offset(), 99);
    /// # Ok(()) }
    /// ```
    pub fn compact(&self) -> Result<()> {
        self.broker.check_open()?;
        self.inner.check_live()?;
        for log in self.inner.logs().iter() {
            log.compact()?;
        }
        Ok(())
    }
}

/// What [`Partition::read_with_progress`] did: where to read next and how
/// many records it lent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadProgress {
    /// The next offset to read: pass it as `offset` to the next call.
    pub next_offset: u64,
    /// How many records the callback saw.
    pub count: usize,
}

/// One partition of a topic: an ordered log of records. Cheap to clone.
#[derive(Clone)]
pub struct Partition {
    pub(crate) broker: Arc<BrokerInner>,
    pub(crate) topic: Arc<TopicInner>,
    pub(crate) log: Log,
    pub(crate) id: u32,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("topic", &self.topic.name)
            .field("id", &self.id)
            .field("start_offset", &self.start_offset())
            .field("end_offset", &self.end_offset())
            .finish()
    }
}

impl Partition {
    fn check(&self) -> Result<()> {
        self.broker.check_open()?;
        self.topic.check_live()
    }

    /// The partition number.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// First offset still stored (moves with retention).
    pub fn start_offset(&self) -> u64 {
        self.log.start_offset()
    }

    /// The next offset to be written.
    pub fn end_offset(&self) -> u64 {
        self.log.end_offset()
    }

    /// Up to `max_records` records from `offset` (offsets compaction removed
    /// are skipped: the first is the first kept one at or after `offset`);
    /// empty at the end of the log; `Error::OffsetOutOfRange` outside
    /// `start_offset()..=end_offset()`.
    ///
    /// Reads uncommitted: records of transactions are returned as they were
    /// written, whether the transaction committed, aborted or is still open;
    /// control records (transaction markers) are skipped, though they occupy
    /// offsets. For committed records only, use a consumer with
    /// `IsolationLevel::ReadCommitted`.
    pub fn read(&self, offset: u64, max_records: usize) -> Result<Vec<ConsumedRecord>> {
        self.check()?;
        self.log.read(offset, max_records)
    }

    /// Calls `f` with each of up to `max_records` records from `offset`, in
    /// order, and returns the **next offset to read** (the one after the last
    /// record visited; `offset` itself at the end of the log), **not a
    /// count**: assign it (`offset = p.read_with(offset, ..)?`), never add it.
    /// [`Consumer::poll_with`](crate::Consumer::poll_with) returns a count
    /// instead; [`read_with_progress`](Self::read_with_progress) returns both,
    /// by name. Validation and errors are those of [`read`](Self::read), and
    /// so is what it returns of transactions (markers are skipped: the next
    /// offset passes over them).
    ///
    /// For scans and replays: each [`RecordView`] borrows straight from the
    /// segment's memory map for the duration of the callback only, so there
    /// is no allocation and no reference count per record (a
    /// [`ConsumedRecord`] holds one: BENCHMARKS.md, scan).
    /// Use [`read`](Self::read) to keep records after the call.
    ///
    /// Each batch's checksum is checked before any of its records is visited;
    /// when a later batch is damaged, the records of the batches before it
    /// have been visited when `Error::Corruption` is returned.
    ///
    /// ```
    /// # fn main() -> logbus::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use logbus::{Broker, Record, TopicConfig};
    /// let broker = Broker::open(dir.path())?;
    /// broker.create_topic("events", TopicConfig::new(1))?;
    /// broker.producer().send_batch("events", (0..2500).map(|i| Record::new(format!("event {i}"))))?;
    ///
    /// // Replay the whole partition, 1000 records per call.
    /// let p = broker.topic("events")?.partition(0)?;
    /// let (mut offset, mut bytes) = (p.start_offset(), 0);
    /// while offset < p.end_offset() {
    ///     offset = p.read_with(offset, 1000, |r| bytes += r.value().len())?;
    /// }
    /// assert_eq!(offset, 2500);
    /// assert_eq!(bytes, (0..2500).map(|i| format!("event {i}").len()).sum::<usize>());
    /// # Ok(()) }
    /// ```
    pub fn read_with(&self, offset: u64, max_records: usize, f: impl FnMut(RecordView<'_>)) -> Result<u64> {
        self.check()?;
        self.log.read_with(offset, max_records, f)
    }

    /// [`read_with`](Self::read_with) that returns both the next offset to
    /// read and how many records `f` saw, as named fields, so neither can be
    /// taken for the other. The two differ by more than `offset`: offsets
    /// removed by compaction are skipped without a call to `f`.
    ///
    /// ```
    /// # fn main() -> logbus::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use logbus::{Broker, Record, TopicConfig};
    /// let broker = Broker::open(dir.path())?;
    /// broker.create_topic("events", TopicConfig::new(1))?;
    /// broker.producer().send_batch("events", (0..25).map(|i| Record::new(format!("event {i}"))))?;
    ///
    /// let p = broker.topic("events")?.partition(0)?;
    /// let mut offset = p.start_offset();
    /// let mut seen = 0;
    /// loop {
    ///     let progress = p.read_with_progress(offset, 10, |_r| {})?;
    ///     if progress.count == 0 {
    ///         break;
    ///     }
    ///     seen += progress.count;
    ///     offset = progress.next_offset;
    /// }
    /// assert_eq!((seen, offset), (25, 25));
    /// # Ok(()) }
    /// ```
    pub fn read_with_progress(
        &self,
        offset: u64,
        max_records: usize,
        mut f: impl FnMut(RecordView<'_>),
    ) -> Result<ReadProgress> {
        let mut count = 0;
        let next_offset = self.read_with(offset, max_records, |r| {
            count += 1;
            f(r)
        })?;
        Ok(ReadProgress { next_offset, count })
    }

    /// First offset whose timestamp is `>= ts_ms`, `None` if all records are older.
    pub fn offset_for_timestamp(&self, ts_ms: i64) -> Result<Option<u64>> {
        self.check()?;
        self.log.offset_for_timestamp(ts_ms)
    }

    /// Bytes stored in this partition.
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }

    /// Share of the sealed bytes written since the last compaction pass
    /// (see [`Log::dirty_ratio`]); 0 on a topic that is not compacted.
    pub fn dirty_ratio(&self) -> f64 {
        self.log.dirty_ratio()
    }

    /// Full CRC check of every batch; returns the number of records checked.
    pub fn verify(&self) -> Result<u64> {
        self.check()?;
        self.log.verify()
    }

    /// The underlying storage log.
    pub fn log(&self) -> &Log {
        &self.log
    }
}
