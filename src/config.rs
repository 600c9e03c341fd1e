//! Configuration builders. Every setter consumes and returns the builder;
//! values are validated where they are used, with `Error::InvalidConfig`
//! naming the field.

use std::time::Duration;

use crate::compression::Compression;
use crate::error::{Error, Result};
use crate::format::batch;

/// When an append is acknowledged, and so what survives a crash.
///
/// | mode | acknowledged when | process crash (kill -9, panic) | power loss / kernel crash |
/// |---|---|---|---|
/// | `PageCache` | bytes are in the OS page cache | everything acknowledged survives | what the kernel had not written back may be lost (it writes dirty pages back within ~30 s; logbus fsyncs every 30 s or 1 GiB written); the log stays a prefix of what was written (gaps only where compaction removed records) |
/// | `Sync` | after `fdatasync` (group commit: concurrent writers share one fsync) | everything acknowledged survives | everything acknowledged survives |
/// | `Interval(d)` | bytes are in the page cache; fsync at least every `d` | everything acknowledged survives | at most the last `d` of acknowledged writes may be lost |
///
/// Under `PageCache` a partition with new records fsyncs its segments, with an
/// fsynced recovery checkpoint, every
/// [`DEFAULT_SYNC_CHECKPOINT_INTERVAL`](BrokerConfig::DEFAULT_SYNC_CHECKPOINT_INTERVAL)
/// (30 s) or [`DEFAULT_SYNC_CHECKPOINT_BYTES`](BrokerConfig::DEFAULT_SYNC_CHECKPOINT_BYTES)
/// (1 GiB) written, whichever comes first (set them with
/// [`BrokerConfig::sync_checkpoint_interval`] / [`sync_checkpoint_bytes`](BrokerConfig::sync_checkpoint_bytes)).
/// In between, every
/// [`DEFAULT_CHECKPOINT_INTERVAL`](BrokerConfig::DEFAULT_CHECKPOINT_INTERVAL) (1 s) or
/// [`DEFAULT_CHECKPOINT_BYTES`](BrokerConfig::DEFAULT_CHECKPOINT_BYTES) (64 MiB), it writes a
/// *live* checkpoint without fsync, which only bounds the scan after a process crash.
/// Where live checkpoints are unavailable (outside Linux) every checkpoint is
/// fsynced, so the fsyncs come every 1 s or 64 MiB there.
///
/// ```
/// use std::time::Duration;
/// use logbus::BrokerConfig;
/// // The figures in the prose above (and in README.md's Durability table).
/// assert_eq!(BrokerConfig::DEFAULT_SYNC_CHECKPOINT_INTERVAL, Duration::from_secs(30));
/// assert_eq!(BrokerConfig::DEFAULT_SYNC_CHECKPOINT_BYTES, 1 << 30);
/// assert_eq!(BrokerConfig::DEFAULT_CHECKPOINT_INTERVAL, Duration::from_secs(1));
/// assert_eq!(BrokerConfig::DEFAULT_CHECKPOINT_BYTES, 64 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge once the bytes are in the OS page cache. Survives a process crash, not power loss.
    #[default]
    PageCache,
    /// Acknowledge after `fdatasync`; concurrent writers share fsyncs (group commit).
    Sync,
    /// Acknowledge from the page cache; a background thread fsyncs at least this often.
    Interval(Duration),
}

/// Broker-wide settings. `Default` = `PageCache` durability, checkpoints every
/// 1 s or 64 MiB (fsynced ones every 30 s or 1 GiB under `PageCache`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    pub(crate) durability: Durability,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) checkpoint_bytes: u64,
    pub(crate) sync_checkpoint_interval: Duration,
    pub(crate) sync_checkpoint_bytes: u64,
    pub(crate) topic_defaults: TopicConfig,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            durability: Durability::PageCache,
            checkpoint_interval: BrokerConfig::DEFAULT_CHECKPOINT_INTERVAL,
            checkpoint_bytes: BrokerConfig::DEFAULT_CHECKPOINT_BYTES,
            sync_checkpoint_interval: BrokerConfig::DEFAULT_SYNC_CHECKPOINT_INTERVAL,
            sync_checkpoint_bytes: BrokerConfig::DEFAULT_SYNC_CHECKPOINT_BYTES,
            topic_defaults: TopicConfig::default(),
        }
    }
}

/// When a partition's background work records recovery checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckpointPolicy {
    /// A checkpoint (live or fsynced) after this long with new records...
    pub(crate) every: Duration,
    /// ...or once this many bytes arrived since the last one.
    pub(crate) bytes: u64,
    /// Under `PageCache`, where checkpoints in between are live ones: an
    /// fsynced checkpoint after this long with new records...
    pub(crate) sync_every: Duration,
    /// ...or once this many bytes arrived since the last fsynced one.
    pub(crate) sync_bytes: u64,
}

impl BrokerConfig {
    /// Default [`checkpoint_interval`](Self::checkpoint_interval): 1 s.
    pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
    /// Default [`checkpoint_bytes`](Self::checkpoint_bytes): 64 MiB.
    pub const DEFAULT_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
    /// Default [`sync_checkpoint_interval`](Self::sync_checkpoint_interval):
    /// 30 s, how often `PageCache` fsyncs a partition with new records.
    pub const DEFAULT_SYNC_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
    /// Default [`sync_checkpoint_bytes`](Self::sync_checkpoint_bytes): 1 GiB,
    /// the most `PageCache` writes to a partition between fsyncs.
    pub const DEFAULT_SYNC_CHECKPOINT_BYTES: u64 = 1024 * 1024 * 1024;

    /// The default configuration.
    pub fn new() -> BrokerConfig {
        BrokerConfig::default()
    }

    /// How appends are made durable. Default = `Durability::PageCache`.
    #[must_use]
    pub fn durability(mut self, d: Durability) -> BrokerConfig {
        self.durability = d;
        self
    }

    /// How often the background thread records a recovery checkpoint when
    /// records arrived (it also does so after every `checkpoint_bytes`
    /// written): the scan after a process crash covers at most what came
    /// since. Under `Sync` and `Interval` each checkpoint fsyncs what it
    /// covers. Under `PageCache` (on Linux) it is a *live* checkpoint, written
    /// without fsync and trusted only on the same kernel boot, so it bounds
    /// the scan after a process crash without cleaning the mapped pages on
    /// the writer's behalf; `sync_checkpoint_interval`/`_bytes` bound the scan
    /// after a power loss. Default = 1 s.
    #[must_use]
    pub fn checkpoint_interval(mut self, every: Duration) -> BrokerConfig {
        self.checkpoint_interval = every;
        self
    }

    /// A partition also records a checkpoint once this many bytes arrived
    /// since its last one. Smaller bounds the recovery scan after a crash;
    /// larger costs the writer less (an fsynced checkpoint cleans the mapped
    /// pages written since the last one, which is measurable at millions of
    /// records per second: see BENCHMARKS.md). Default = 64 MiB.
    #[must_use]
    pub fn checkpoint_bytes(mut self, bytes: u64) -> BrokerConfig {
        self.checkpoint_bytes = bytes;
        self
    }

    /// Under `PageCache`: how often a partition with new records fsyncs its
    /// segments and records a checkpoint that survives a power loss (the
    /// checkpoints in between are live ones, see `checkpoint_interval`).
    /// This bounds the recovery scan after a power loss or kernel crash.
    /// Ignored under `Sync` and `Interval`, where every checkpoint is fsynced.
    /// Default = 30 s.
    #[must_use]
    pub fn sync_checkpoint_interval(mut self, every: Duration) -> BrokerConfig {
        self.sync_checkpoint_interval = every;
        self
    }

    /// Under `PageCache`: a partition also records an fsynced checkpoint once
    /// this many bytes arrived since its last one. Default = 1 GiB.
    #[must_use]
    pub fn sync_checkpoint_bytes(mut self, bytes: u64) -> BrokerConfig {
        self.sync_checkpoint_bytes = bytes;
        self
    }

    /// The settings a topic takes when it is created without them (Kafka's
    /// broker-level `num.partitions`, `log.retention.ms`, `log.segment.bytes`,
    /// ...): every setting given in `defaults` replaces the built-in default
    /// for topics created through this broker, unless the topic's own config
    /// gives it. Default = the built-in defaults of [`TopicConfig::default`].
    #[must_use]
    pub fn topic_defaults(mut self, defaults: TopicConfig) -> BrokerConfig {
        self.topic_defaults = defaults;
        self
    }

    pub(crate) fn checkpoint_policy(&self) -> CheckpointPolicy {
        CheckpointPolicy {
            every: self.checkpoint_interval,
            bytes: self.checkpoint_bytes,
            sync_every: self.sync_checkpoint_interval,
            sync_bytes: self.sync_checkpoint_bytes,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.checkpoint_bytes == 0 {
            return Err(Error::config("checkpoint_bytes", 0, "must be at least 1"));
        }
        if self.sync_checkpoint_bytes == 0 {
            return Err(Error::config("sync_checkpoint_bytes", 0, "must be at least 1"));
        }
        if self.sync_checkpoint_interval.is_zero() {
            return Err(Error::config("sync_checkpoint_interval", "0", "must be at least 1 ms"));
        }
        if let Durability::Interval(d) = self.durability {
            if d.is_zero() {
                return Err(Error::config(
                    "durability",
                    "Interval(0)",
                    "use Durability::Sync to fsync every write",
                ));
            }
        }
        if self.checkpoint_interval.is_zero() {
            return Err(Error::config("checkpoint_interval", "0", "must be at least 1 ms"));
        }
        Ok(())
    }
}

/// Where record timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamp (or the send time when unset). Kafka's `CreateTime`.
    #[default]
    CreateTime,
    /// The time the log appended the record. Kafka's `LogAppendTime`.
    LogAppendTime,
}

/// How keyed records are mapped to partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// `xxh64(key, seed 0) % partitions`: stable across versions (see docs/FORMAT.md).
    #[default]
    Xxh64,
    /// Apache Kafka's Java client: `(murmur2(key) & 0x7fffffff) % partitions`,
    /// so keys land where Kafka would put them.
    Murmur2,
}

/// What happens to a topic's old records (Kafka's `cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// Whole old segments are deleted by `retention_bytes` / `retention_ms`.
    #[default]
    Delete,
    /// Compaction keeps at least the latest record of every key (and
    /// removes tombstones after `delete_retention_ms`); `retention_bytes` and
    /// `retention_ms` are not applied.
    Compact,
    /// Both: compaction, and retention deleting whole old segments.
    CompactAndDelete,
}

impl CleanupPolicy {
    /// Whether compaction runs on the topic.
    pub fn compacts(self) -> bool {
        self != CleanupPolicy::Delete
    }

    /// Whether retention deletes old segments.
    pub fn deletes(self) -> bool {
        self != CleanupPolicy::Compact
    }

    /// Kafka's spelling: `delete`, `compact` or `compact,delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactAndDelete => "compact,delete",
        }
    }
}

/// Default `delete_retention_ms`: one day, like Kafka.
pub const DEFAULT_DELETE_RETENTION_MS: i64 = crate::format::topic_meta::DEFAULT_DELETE_RETENTION_MS;
/// Default `min_cleanable_dirty_ratio`: 0.5, like Kafka.
pub const DEFAULT_MIN_CLEANABLE_DIRTY_RATIO: f64 = crate::format::topic_meta::DEFAULT_DIRTY_RATIO;

/// Smallest accepted segment size.
pub const MIN_SEGMENT_BYTES: u64 = 64;
/// Largest accepted segment size (positions inside a segment are 32-bit).
pub const MAX_SEGMENT_BYTES: u64 = u32::MAX as u64;
/// Largest partition count accepted for one topic.
pub const MAX_PARTITIONS: u32 = 10_000;
/// Default `max_record_bytes`: 1 MiB, like Kafka.
pub const DEFAULT_MAX_RECORD_BYTES: u32 = 1024 * 1024;
/// Default `segment_bytes`: 1 GiB, like Kafka. Disk is reserved as the segment grows, not up front.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1024 * 1024 * 1024;

/// Settings of one topic. `Default` = 1 partition, 1 GiB segments, no
/// retention limit (records are kept until deleted; unlike Kafka's 7 days),
/// 1 MiB records, create-time timestamps, xxh64 key partitioner.
///
/// A setting not given (through a builder method, `new`'s partition count or
/// `from_properties`) takes the broker's default when the topic is created
/// (see [`BrokerConfig::topic_defaults`]), as in Kafka.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    pub(crate) partitions: u32,
    pub(crate) segment_bytes: u64,
    pub(crate) segment_ms: Option<i64>,
    pub(crate) retention_bytes: Option<u64>,
    pub(crate) retention_ms: Option<i64>,
    pub(crate) max_record_bytes: Option<u32>,
    pub(crate) timestamp_type: TimestampType,
    pub(crate) partitioner: Partitioner,
    pub(crate) cleanup_policy: CleanupPolicy,
    pub(crate) delete_retention_ms: i64,
    pub(crate) min_compaction_lag_ms: i64,
    /// `min_cleanable_dirty_ratio` as `f64` bits (so the config stays `Eq`).
    pub(crate) min_cleanable_dirty_ratio: u64,
    pub(crate) compression: Compression,
    /// The settings the caller gave, which a broker's defaults do not replace.
    pub(crate) given: Given,
}

/// Which settings of a [`TopicConfig`] were given, one bit per setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Given(u16);

impl Given {
    pub(crate) const PARTITIONS: u16 = 1;
    pub(crate) const SEGMENT_BYTES: u16 = 1 << 1;
    pub(crate) const SEGMENT_MS: u16 = 1 << 2;
    pub(crate) const RETENTION_BYTES: u16 = 1 << 3;
    pub(crate) const RETENTION_MS: u16 = 1 << 4;
    pub(crate) const MAX_RECORD_BYTES: u16 = 1 << 5;
    pub(crate) const TIMESTAMP_TYPE: u16 = 1 << 6;
    pub(crate) const PARTITIONER: u16 = 1 << 7;
    pub(crate) const CLEANUP_POLICY: u16 = 1 << 8;
    pub(crate) const DELETE_RETENTION_MS: u16 = 1 << 9;
    pub(crate) const MIN_COMPACTION_LAG_MS: u16 = 1 << 10;
    pub(crate) const MIN_CLEANABLE_DIRTY_RATIO: u16 = 1 << 11;
    pub(crate) const COMPRESSION: u16 = 1 << 12;

    fn set(&mut self, bit: u16) {
        self.0 |= bit;
    }

    fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// Equal when every setting is equal, whether given or defaulted (the
/// record size limit by its effective value).
impl PartialEq for TopicConfig {
    fn eq(&self, o: &TopicConfig) -> bool {
        self.partitions == o.partitions
            && self.segment_bytes == o.segment_bytes
            && self.segment_ms == o.segment_ms
            && self.retention_bytes == o.retention_bytes
            && self.retention_ms == o.retention_ms
            && self.effective_max_record_bytes() == o.effective_max_record_bytes()
            && self.timestamp_type == o.timestamp_type
            && self.partitioner == o.partitioner
            && self.cleanup_policy == o.cleanup_policy
            && self.delete_retention_ms == o.delete_retention_ms
            && self.min_compaction_lag_ms == o.min_compaction_lag_ms
            && self.min_cleanable_dirty_ratio == o.min_cleanable_dirty_ratio
            && self.compression == o.compression
    }
}

impl Eq for TopicConfig {}

impl Default for TopicConfig {
    /// 1 partition and the default settings, none of them given: a broker's
    /// [`topic_defaults`](BrokerConfig::topic_defaults) replace them all.
    fn default() -> TopicConfig {
        TopicConfig {
            given: Given::default(),
            ..TopicConfig::new(1)
        }
    }
}

impl TopicConfig {
    /// A topic with `partitions` partitions and default settings.
    pub fn new(partitions: u32) -> TopicConfig {
        TopicConfig {
            partitions,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: None,
            retention_bytes: None,
            retention_ms: None,
            max_record_bytes: None,
            timestamp_type: TimestampType::CreateTime,
            partitioner: Partitioner::Xxh64,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: DEFAULT_MIN_CLEANABLE_DIRTY_RATIO.to_bits(),
            compression: Compression::None,
            given: Given(Given::PARTITIONS),
        }
    }

    /// This config with every setting it was not given taken from `defaults`.
    pub(crate) fn over(&self, defaults: &TopicConfig) -> TopicConfig {
        let g = self.given;
        let pick = |bit| if g.has(bit) { self } else { defaults };
        TopicConfig {
            partitions: pick(Given::PARTITIONS).partitions,
            segment_bytes: pick(Given::SEGMENT_BYTES).segment_bytes,
            segment_ms: pick(Given::SEGMENT_MS).segment_ms,
            retention_bytes: pick(Given::RETENTION_BYTES).retention_bytes,
            retention_ms: pick(Given::RETENTION_MS).retention_ms,
            max_record_bytes: pick(Given::MAX_RECORD_BYTES).max_record_bytes,
            timestamp_type: pick(Given::TIMESTAMP_TYPE).timestamp_type,
            partitioner: pick(Given::PARTITIONER).partitioner,
            cleanup_policy: pick(Given::CLEANUP_POLICY).cleanup_policy,
            delete_retention_ms: pick(Given::DELETE_RETENTION_MS).delete_retention_ms,
            min_compaction_lag_ms: pick(Given::MIN_COMPACTION_LAG_MS).min_compaction_lag_ms,
            min_cleanable_dirty_ratio: pick(Given::MIN_CLEANABLE_DIRTY_RATIO).min_cleanable_dirty_ratio,
            compression: pick(Given::COMPRESSION).compression,
            given: Given(g.0 | defaults.given.0),
        }
    }

    /// Number of partitions (1 to 10,000). Default = 1.
    #[must_use]
    pub fn partitions(mut self, n: u32) -> TopicConfig {
        self.partitions = n;
        self.given.set(Given::PARTITIONS);
        self
    }

    /// Segment size at which a new segment is started. Default = 1 GiB; at least 64 bytes.
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> TopicConfig {
        self.segment_bytes = bytes;
        self.given.set(Given::SEGMENT_BYTES);
        self
    }

    /// Segment age (from its first record's timestamp) at which a new segment
    /// is started on the next append. Default = `None` (size only).
    #[must_use]
    pub fn segment_ms(mut self, ms: Option<i64>) -> TopicConfig {
        self.segment_ms = ms;
        self.given.set(Given::SEGMENT_MS);
        self
    }

    /// Per-partition size above which the oldest whole segments are deleted. Default = `None`.
    #[must_use]
    pub fn retention_bytes(mut self, bytes: Option<u64>) -> TopicConfig {
        self.retention_bytes = bytes;
        self.given.set(Given::RETENTION_BYTES);
        self
    }

    /// Age above which whole segments (by their newest record) are deleted. Default = `None`.
    #[must_use]
    pub fn retention_ms(mut self, ms: Option<i64>) -> TopicConfig {
        self.retention_ms = ms;
        self.given.set(Given::RETENTION_MS);
        self
    }

    /// Largest key + value + headers of one record. Default = 1 MiB (or what
    /// fits in a segment, when segments are smaller).
    #[must_use]
    pub fn max_record_bytes(mut self, bytes: u32) -> TopicConfig {
        self.max_record_bytes = Some(bytes);
        self.given.set(Given::MAX_RECORD_BYTES);
        self
    }

    /// Create time (default) or log-append time.
    #[must_use]
    pub fn timestamp_type(mut self, t: TimestampType) -> TopicConfig {
        self.timestamp_type = t;
        self.given.set(Given::TIMESTAMP_TYPE);
        self
    }

    /// Key partitioner. Default = `Partitioner::Xxh64`.
    #[must_use]
    pub fn partitioner(mut self, p: Partitioner) -> TopicConfig {
        self.partitioner = p;
        self.given.set(Given::PARTITIONER);
        self
    }

    /// Delete old segments, compact, or both (Kafka's `cleanup.policy`).
    /// Default = `CleanupPolicy::Delete`.
    #[must_use]
    pub fn cleanup_policy(mut self, policy: CleanupPolicy) -> TopicConfig {
        self.cleanup_policy = policy;
        self.given.set(Given::CLEANUP_POLICY);
        self
    }

    /// How long a tombstone stays after a compaction pass first reached it,
    /// so consumers behind the pass still see the delete (Kafka's
    /// `delete.retention.ms`). Default = 86 400 000 (one day); at least 0.
    #[must_use]
    pub fn delete_retention_ms(mut self, ms: i64) -> TopicConfig {
        self.delete_retention_ms = ms;
        self.given.set(Given::DELETE_RETENTION_MS);
        self
    }

    /// A segment is compacted only once its newest record is at least this
    /// old (Kafka's `min.compaction.lag.ms`). Default = 0; at least 0.
    #[must_use]
    pub fn min_compaction_lag_ms(mut self, ms: i64) -> TopicConfig {
        self.min_compaction_lag_ms = ms;
        self.given.set(Given::MIN_COMPACTION_LAG_MS);
        self
    }

    /// The background compactor runs a pass over a partition when the
    /// sealed bytes written since the last pass are at least this share of
    /// its sealed bytes (Kafka's `min.cleanable.dirty.ratio`). Default = 0.5;
    /// between 0 and 1.
    #[must_use]
    pub fn min_cleanable_dirty_ratio(mut self, ratio: f64) -> TopicConfig {
        self.min_cleanable_dirty_ratio = ratio.to_bits();
        self.given.set(Given::MIN_CLEANABLE_DIRTY_RATIO);
        self
    }

    /// The cleanup policy.
    pub fn policy(&self) -> CleanupPolicy {
        self.cleanup_policy
    }

    /// How the topic's batches are compressed (Kafka's `compression.type`);
    /// a producer may override it ([`Producer::with_compression`](crate::Producer::with_compression)).
    /// Default = [`Compression::None`]. A codec whose cargo feature is off is
    /// `Error::InvalidConfig` at `create_topic`.
    #[must_use]
    pub fn compression(mut self, c: Compression) -> TopicConfig {
        self.compression = c;
        self.given.set(Given::COMPRESSION);
        self
    }

    /// The topic's compression.
    pub fn compression_type(&self) -> Compression {
        self.compression
    }

    /// The partition count.
    pub fn partition_count(&self) -> u32 {
        self.partitions
    }

    /// The effective record size limit.
    pub fn effective_max_record_bytes(&self) -> u32 {
        let fits = self
            .segment_bytes
            .saturating_sub((batch::HEADER_LEN + batch::RECORD_OVERHEAD) as u64);
        let fits = u32::try_from(fits).unwrap_or(u32::MAX);
        self.max_record_bytes.unwrap_or(DEFAULT_MAX_RECORD_BYTES.min(fits))
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(Error::config(
                "partitions",
                self.partitions,
                "must be between 1 and 10000",
            ));
        }
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(Error::config(
                "segment_bytes",
                self.segment_bytes,
                format!("must be between {MIN_SEGMENT_BYTES} and {MAX_SEGMENT_BYTES}"),
            ));
        }
        if let Some(m) = self.max_record_bytes {
            let need = u64::from(m) + (batch::HEADER_LEN + batch::RECORD_OVERHEAD) as u64;
            if m == 0 {
                return Err(Error::config("max_record_bytes", m, "must be at least 1"));
            }
            if need > self.segment_bytes {
                return Err(Error::config(
                    "max_record_bytes",
                    m,
                    format!("a record this large does not fit in a segment of {} bytes; raise segment_bytes to at least {need}", self.segment_bytes),
                ));
            }
        }
        self.compression.check("compression")?;
        if let Some(ms) = self.segment_ms {
            if ms <= 0 {
                return Err(Error::config(
                    "segment_ms",
                    ms,
                    "must be positive (None: roll by size only)",
                ));
            }
        }
        if let Some(ms) = self.retention_ms {
            if ms < 0 {
                return Err(Error::config("retention_ms", ms, "must be >= 0 (None: keep forever)"));
            }
        }
        if self.delete_retention_ms < 0 {
            return Err(Error::config(
                "delete_retention_ms",
                self.delete_retention_ms,
                "must be >= 0",
            ));
        }
        if self.min_compaction_lag_ms < 0 {
            return Err(Error::config(
                "min_compaction_lag_ms",
                self.min_compaction_lag_ms,
                "must be >= 0",
            ));
        }
        let ratio = f64::from_bits(self.min_cleanable_dirty_ratio);
        if !(0.0..=1.0).contains(&ratio) {
            return Err(Error::config(
                "min_cleanable_dirty_ratio",
                ratio,
                "must be between 0 and 1",
            ));
        }
        if let Some(bytes) = self.retention_bytes {
            // topic.meta stores it as a signed 64-bit value (-1 = none).
            if bytes > i64::MAX as u64 {
                return Err(Error::config(
                    "retention_bytes",
                    bytes,
                    "must be at most i64::MAX (None: no size limit)",
                ));
            }
        }
        if self.cleanup_policy.compacts() && self.compression != Compression::None {
            return Err(Error::config(
                "compression",
                self.compression.name(),
                "a compacted topic is not compressed: compaction keeps compressed batches whole, so it could reclaim nothing (use Compression::None with cleanup_policy compact)",
            ));
        }
        Ok(())
    }
}

/// Where a consumer starts when it has no valid position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The first stored offset.
    Earliest,
    /// The end of the log: only records sent from now on.
    #[default]
    Latest,
    /// Fail with `Error::NoOffset` (no committed offset) or
    /// `Error::OffsetOutOfRange` (position deleted by retention).
    None,
}

/// How a group splits partitions among its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssignmentStrategy {
    /// Kafka's default: per topic, contiguous ranges of partitions per member.
    #[default]
    Range,
    /// All partitions dealt out one by one across members.
    RoundRobin,
    /// Balanced like round-robin, but keeps every partition that need not move where it is.
    Sticky,
}

/// How a consumer waits inside `poll` while no record is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Spin for up to 10 µs, then park the thread until a producer's append
    /// wakes it. Uses no CPU while idle for longer. A record that arrives
    /// after the consumer parked costs a wake-up (about 10 µs on the
    /// benchmark VM, as a blocking channel's `recv`); for sub-microsecond
    /// hand-offs at a cost of CPU, spin longer with `SpinThenBlock`.
    #[default]
    Block,
    /// Busy-spin until data arrives or the timeout passes (like Chronicle
    /// Queue's tailers): lowest latency, one core at 100% while waiting.
    Spin,
    /// Spin for this long, then park.
    SpinThenBlock(Duration),
}

/// What a consumer returns of records written in transactions (Kafka's
/// `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record as it is written, including records of transactions
    /// that are still open or were aborted (Kafka's default).
    #[default]
    ReadUncommitted,
    /// Records of a transaction only after it commits, never if it aborts;
    /// in each partition nothing at or past the first offset of a still-open
    /// transaction (the last stable offset), so offsets stay in order.
    ReadCommitted,
}

/// Consumer settings. `Default` = no group, `OffsetReset::Latest`, auto
/// commit off, 500 records per poll, 5 min `max_poll_interval`, range
/// assignment, `IsolationLevel::ReadUncommitted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub(crate) group: Option<String>,
    pub(crate) offset_reset: OffsetReset,
    pub(crate) auto_commit: bool,
    pub(crate) max_poll_records: usize,
    pub(crate) max_poll_interval: Duration,
    pub(crate) strategy: AssignmentStrategy,
    pub(crate) wait: WaitStrategy,
    pub(crate) isolation: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            group: None,
            offset_reset: OffsetReset::Latest,
            auto_commit: false,
            max_poll_records: 500,
            max_poll_interval: Duration::from_secs(300),
            strategy: AssignmentStrategy::Range,
            wait: WaitStrategy::Block,
            isolation: IsolationLevel::ReadUncommitted,
        }
    }
}

impl ConsumerConfig {
    /// The default configuration.
    pub fn new() -> ConsumerConfig {
        ConsumerConfig::default()
    }

    /// Joins this consumer group (needed for `subscribe` and commits). Default = no group.
    #[must_use]
    pub fn group(mut self, group_id: impl Into<String>) -> ConsumerConfig {
        self.group = Some(group_id.into());
        self
    }

    /// What to do without a valid position. Default = `OffsetReset::Latest`.
    #[must_use]
    pub fn offset_reset(mut self, reset: OffsetReset) -> ConsumerConfig {
        self.offset_reset = reset;
        self
    }

    /// Commit the previous poll's positions at the start of each poll. Default = off.
    #[must_use]
    pub fn auto_commit(mut self, enabled: bool) -> ConsumerConfig {
        self.auto_commit = enabled;
        self
    }

    /// Most records one poll returns. Default = 500.
    #[must_use]
    pub fn max_poll_records(mut self, n: usize) -> ConsumerConfig {
        self.max_poll_records = n;
        self
    }

    /// A group member that does not poll for this long is removed from the
    /// group and its partitions reassigned. Default = 5 minutes.
    #[must_use]
    pub fn max_poll_interval(mut self, d: Duration) -> ConsumerConfig {
        self.max_poll_interval = d;
        self
    }

    /// The group's assignment strategy. Default = `AssignmentStrategy::Range`.
    #[must_use]
    pub fn assignment_strategy(mut self, s: AssignmentStrategy) -> ConsumerConfig {
        self.strategy = s;
        self
    }

    /// How `poll` waits for data. Default = `WaitStrategy::Block`.
    #[must_use]
    pub fn wait_strategy(mut self, w: WaitStrategy) -> ConsumerConfig {
        self.wait = w;
        self
    }

    /// Which records of transactions `poll` returns. Default =
    /// `IsolationLevel::ReadUncommitted` (Kafka's default). Control records
    /// (transaction markers) are never returned; they occupy offsets.
    #[must_use]
    pub fn isolation_level(mut self, level: IsolationLevel) -> ConsumerConfig {
        self.isolation = level;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_poll_records == 0 {
            return Err(Error::config("max_poll_records", 0, "must be at least 1"));
        }
        if let Some(g) = &self.group {
            if g.is_empty() || g.len() > 255 {
                return Err(Error::config("group", g, "group ids are 1 to 255 bytes"));
            }
        }
        if self.max_poll_interval.is_zero() {
            return Err(Error::config("max_poll_interval", "0", "must be positive"));
        }
        Ok(())
    }
}

/// Settings of one partition log, derived from its topic's config and the broker's durability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub(crate) segment_bytes: u64,
    pub(crate) segment_ms: Option<i64>,
    pub(crate) retention_bytes: Option<u64>,
    pub(crate) retention_ms: Option<i64>,
    pub(crate) max_record_bytes: u32,
    pub(crate) log_append_time: bool,
    pub(crate) compression: Compression,
    pub(crate) durability: Durability,
    pub(crate) compaction: Option<CompactionConfig>,
}

/// A compacted log's settings (see the `TopicConfig` setters of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactionConfig {
    pub(crate) delete_retention_ms: i64,
    pub(crate) min_compaction_lag_ms: i64,
    /// `f64` bits.
    pub(crate) min_cleanable_dirty_ratio: u64,
}

impl CompactionConfig {
    pub(crate) fn min_cleanable_dirty_ratio(&self) -> f64 {
        f64::from_bits(self.min_cleanable_dirty_ratio)
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig::from_topic(&TopicConfig::default(), Durability::PageCache)
    }
}

impl LogConfig {
    /// Derives a log's settings from a topic's and a durability mode.
    pub fn from_topic(t: &TopicConfig, durability: Durability) -> LogConfig {
        LogConfig {
            segment_bytes: t.segment_bytes,
            segment_ms: t.segment_ms,
            // Kafka: under `compact` alone, retention deletes nothing.
            retention_bytes: t.retention_bytes.filter(|_| t.cleanup_policy.deletes()),
            retention_ms: t.retention_ms.filter(|_| t.cleanup_policy.deletes()),
            max_record_bytes: t.effective_max_record_bytes(),
            log_append_time: t.timestamp_type == TimestampType::LogAppendTime,
            compression: t.compression,
            durability,
            compaction: t.cleanup_policy.compacts().then_some(CompactionConfig {
                delete_retention_ms: t.delete_retention_ms,
                min_compaction_lag_ms: t.min_compaction_lag_ms,
                min_cleanable_dirty_ratio: t.min_cleanable_dirty_ratio,
            }),
        }
    }
}
