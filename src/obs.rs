//! Observability: the one place where the crate records metrics (feature
//! `metrics`, through the `metrics` facade) and emits `tracing` spans and
//! events (feature `tracing`).
//!
//! Call sites are one unconditional line. With a feature off, what it would
//! emit compiles to nothing: the types here are empty and the functions
//! empty and inlined. With a feature on and no recorder or subscriber
//! installed, the facades' no-op paths run: a `metrics` handle obtained
//! without a recorder is a no-op, and `tracing` checks one static interest
//! per call site.
//!
//! The hot paths use the handles of a [`LogMetrics`], looked up once when
//! the log opens, so they never look a name or label up. An append adds to
//! the writer's [`AppendTally`] (handed to the counters by the background
//! tick) and times one append in [`APPEND_SAMPLE`]; a read counts once per
//! call; an fsync round is timed. A recorder must therefore be installed
//! before the broker (or log) opens: handles taken earlier stay no-ops. Rare
//! events (rolls, retention, recovery, rebalances, poisoning, lag) look
//! their metric up by name at the event.
//!
//! A leaf module: it imports nothing from the crate, so every layer, `log/`
//! included, may use it.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;
#[cfg(any(feature = "metrics", feature = "tracing"))]
use std::time::Instant;

/// Metric names (README, "Metrics"). Counters end in `_total`, durations
/// are histograms in seconds.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) mod name {
    /// Records appended, per `topic` (published by the background tick and at close).
    pub(crate) const APPENDED_RECORDS: &str = "logbus_appended_records_total";
    /// Bytes appended to segments (record batches as stored), per `topic`.
    pub(crate) const APPENDED_BYTES: &str = "logbus_appended_bytes_total";
    /// Records handed to readers (partition reads and consumer polls), per `topic`.
    pub(crate) const READ_RECORDS: &str = "logbus_read_records_total";
    /// Key and value bytes of the records handed to readers, per `topic`.
    pub(crate) const READ_BYTES: &str = "logbus_read_bytes_total";
    /// Duration of an append call (one in [`APPEND_SAMPLE`](super::APPEND_SAMPLE)
    /// per thread is timed), per `topic`.
    pub(crate) const APPEND_SECONDS: &str = "logbus_append_duration_seconds";
    /// Duration of one fsync round (segments, indexes, directory), per `topic`.
    pub(crate) const FSYNC_SECONDS: &str = "logbus_fsync_duration_seconds";
    /// Fsync rounds slower than [`SLOW_FSYNC`](super::SLOW_FSYNC), per `topic`.
    pub(crate) const SLOW_FSYNCS: &str = "logbus_slow_fsyncs_total";
    /// Committed-offset lag, per `group`, `topic` and `partition`.
    pub(crate) const CONSUMER_LAG: &str = "logbus_consumer_lag";
    /// Rebalances (generation changes), per `group`.
    pub(crate) const REBALANCES: &str = "logbus_rebalances_total";
    /// Segment rolls, per `topic`.
    pub(crate) const SEGMENT_ROLLS: &str = "logbus_segment_rolls_total";
    /// Segments deleted by retention, per `topic`.
    pub(crate) const RETENTION_SEGMENTS: &str = "logbus_retention_deleted_segments_total";
    /// Bytes deleted by retention, per `topic`.
    pub(crate) const RETENTION_BYTES: &str = "logbus_retention_deleted_bytes_total";
    /// Counter, per topic: compaction passes that installed new segments.
    pub(crate) const COMPACTION_PASSES: &str = "logbus_compaction_passes_total";
    /// Counter, per topic: records compaction removed.
    pub(crate) const COMPACTION_REMOVED: &str = "logbus_compaction_removed_records_total";
    /// Counter, per topic: bytes compaction reclaimed.
    pub(crate) const COMPACTION_RECLAIMED: &str = "logbus_compaction_reclaimed_bytes_total";
    /// Duration of a partition's open (recovery included), per `topic`.
    pub(crate) const RECOVERY_SECONDS: &str = "logbus_recovery_duration_seconds";
    /// Bytes recovery checked batch by batch, per `topic`.
    pub(crate) const RECOVERY_SCANNED: &str = "logbus_recovery_scanned_bytes_total";
    /// Bytes recovery cut from damaged tails, per `topic`.
    pub(crate) const RECOVERY_TRUNCATED: &str = "logbus_recovery_truncated_bytes_total";
    /// Segments recovery removed because they followed damage, per `topic`.
    pub(crate) const RECOVERY_SEGMENTS_REMOVED: &str = "logbus_recovery_removed_segments_total";
    /// Damage recovery found (one per damaged place), per `topic`.
    pub(crate) const RECOVERY_DAMAGE: &str = "logbus_recovery_damage_total";
    /// Partitions that became poisoned (an fsync failed), per `topic`.
    pub(crate) const POISONED: &str = "logbus_poisoned_partitions_total";

    /// Every name, for the README check.
    #[cfg(test)]
    pub(crate) const ALL: &[&str] = &[
        APPENDED_RECORDS,
        APPENDED_BYTES,
        READ_RECORDS,
        READ_BYTES,
        APPEND_SECONDS,
        FSYNC_SECONDS,
        SLOW_FSYNCS,
        CONSUMER_LAG,
        REBALANCES,
        SEGMENT_ROLLS,
        RETENTION_SEGMENTS,
        RETENTION_BYTES,
        RECOVERY_SECONDS,
        RECOVERY_SCANNED,
        RECOVERY_TRUNCATED,
        RECOVERY_SEGMENTS_REMOVED,
        RECOVERY_DAMAGE,
        POISONED,
    ];
}

/// An fsync round slower than this is *slow*: it is counted and logged at
/// `WARN`. Every `Durability::Sync` writer waiting on the round waits that
/// long; a healthy disk takes milliseconds (the same threshold as etcd's
/// "slow fdatasync" warning).
#[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
pub(crate) const SLOW_FSYNC: Duration = Duration::from_secs(1);

/// One append in this many, per thread, is timed for
/// [`name::APPEND_SECONDS`]: two clock reads on every append would cost more
/// than the rest of the instrumentation of a one-record append.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const APPEND_SAMPLE: u32 = 64;

/// How often the broker's background thread publishes consumer lag.
pub(crate) const LAG_EVERY: Duration = Duration::from_secs(1);

/// When something started (empty without either feature).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    #[cfg(any(feature = "metrics", feature = "tracing"))]
    started: Instant,
}

impl Timer {
    #[inline]
    pub(crate) fn start() -> Timer {
        Timer {
            #[cfg(any(feature = "metrics", feature = "tracing"))]
            started: Instant::now(),
        }
    }

    #[cfg(any(feature = "metrics", feature = "tracing"))]
    fn elapsed(self) -> Duration {
        self.started.elapsed()
    }
}

/// A sampled append's start (see [`APPEND_SAMPLE`]); empty without `metrics`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendTimer(#[cfg(feature = "metrics")] Option<Instant>);

/// An entered `tracing` span, left when dropped (empty without `tracing`).
#[must_use = "the span is left when this is dropped"]
pub(crate) struct Span {
    #[cfg(feature = "tracing")]
    _entered: tracing::span::EnteredSpan,
}

/// What one partition's open found and repaired (from `RecoveryReport`).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct Repairs {
    pub(crate) clean: bool,
    pub(crate) scanned_bytes: u64,
    pub(crate) truncated_bytes: u64,
    pub(crate) segments_removed: usize,
    pub(crate) damage: usize,
}

/// Records and bytes appended and not yet handed to the metrics: counted
/// under the writer lock with two additions per batch, published by the
/// background tick (at most 100 ms apart) and at close. Empty without `metrics`.
#[derive(Debug, Default)]
pub(crate) struct AppendTally {
    #[cfg(feature = "metrics")]
    records: u64,
    #[cfg(feature = "metrics")]
    bytes: u64,
}

impl AppendTally {
    /// A batch of `records` records, `bytes` bytes as stored, was appended.
    #[inline]
    pub(crate) fn add(&mut self, records: usize, bytes: usize) {
        #[cfg(feature = "metrics")]
        {
            self.records += records as u64;
            self.bytes += bytes as u64;
        }
        let _ = (records, bytes);
    }

    /// Hands what was counted to `metrics`' counters and starts again from zero.
    pub(crate) fn publish(&mut self, metrics: &LogMetrics) {
        #[cfg(feature = "metrics")]
        if self.records > 0 {
            metrics.appended_records.increment(std::mem::take(&mut self.records));
            metrics.appended_bytes.increment(std::mem::take(&mut self.bytes));
        }
        let _ = metrics;
    }
}

/// One partition's metric handles, looked up when the log opens.
pub(crate) struct LogMetrics {
    #[cfg(feature = "metrics")]
    appended_records: metrics::Counter,
    #[cfg(feature = "metrics")]
    appended_bytes: metrics::Counter,
    #[cfg(feature = "metrics")]
    read_records: metrics::Counter,
    #[cfg(feature = "metrics")]
    read_bytes: metrics::Counter,
    #[cfg(feature = "metrics")]
    append_seconds: metrics::Histogram,
    #[cfg(feature = "metrics")]
    fsync_seconds: metrics::Histogram,
}

#[cfg(feature = "metrics")]
thread_local! {
    /// Appends this thread made, for sampling (see [`APPEND_SAMPLE`]).
    static APPENDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl LogMetrics {
    /// The handles of a partition of `topic` (no-ops without a recorder).
    pub(crate) fn new(topic: &str) -> LogMetrics {
        #[cfg(feature = "metrics")]
        {
            describe();
            let t = topic.to_owned();
            LogMetrics {
                appended_records: metrics::counter!(name::APPENDED_RECORDS, "topic" => t.clone()),
                appended_bytes: metrics::counter!(name::APPENDED_BYTES, "topic" => t.clone()),
                read_records: metrics::counter!(name::READ_RECORDS, "topic" => t.clone()),
                read_bytes: metrics::counter!(name::READ_BYTES, "topic" => t.clone()),
                append_seconds: metrics::histogram!(name::APPEND_SECONDS, "topic" => t.clone()),
                fsync_seconds: metrics::histogram!(name::FSYNC_SECONDS, "topic" => t),
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = topic;
            LogMetrics {}
        }
    }

    /// Called as an append starts: the start time, for one append in [`APPEND_SAMPLE`].
    #[inline]
    pub(crate) fn append_started(&self) -> AppendTimer {
        #[cfg(feature = "metrics")]
        {
            let n = APPENDS.with(|c| {
                let n = c.get().wrapping_add(1);
                c.set(n);
                n
            });
            AppendTimer(n.is_multiple_of(APPEND_SAMPLE).then(Instant::now))
        }
        #[cfg(not(feature = "metrics"))]
        AppendTimer()
    }

    /// An append call that started at `started` succeeded.
    #[inline]
    pub(crate) fn append_done(&self, started: AppendTimer) {
        #[cfg(feature = "metrics")]
        if let Some(t) = started.0 {
            self.append_seconds.record(t.elapsed().as_secs_f64());
        }
        let _ = started;
    }

    /// A read handed out `records` records of `bytes` key and value bytes.
    #[inline]
    pub(crate) fn read(&self, records: usize, bytes: u64) {
        #[cfg(feature = "metrics")]
        if records > 0 {
            self.read_records.increment(records as u64);
            self.read_bytes.increment(bytes);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (records, bytes);
    }

    /// An fsync round of a partition of `topic` that started at `started` succeeded.
    pub(crate) fn fsynced(&self, started: Timer, topic: &str, partition: u32) {
        #[cfg(any(feature = "metrics", feature = "tracing"))]
        {
            let took = started.elapsed();
            #[cfg(feature = "metrics")]
            {
                self.fsync_seconds.record(took.as_secs_f64());
                if took >= SLOW_FSYNC {
                    metrics::counter!(name::SLOW_FSYNCS, "topic" => topic.to_owned()).increment(1);
                }
            }
            #[cfg(feature = "tracing")]
            if took >= SLOW_FSYNC {
                tracing::warn!(
                    topic,
                    partition,
                    took_ms = took.as_millis() as u64,
                    slow_ms = SLOW_FSYNC.as_millis() as u64,
                    "slow fsync round"
                );
            }
        }
        let _ = (started, topic, partition);
    }
}

/// Registers the metrics' help texts with the recorder.
#[cfg(feature = "metrics")]
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(name::APPENDED_RECORDS, Unit::Count, "Records appended.");
    describe_counter!(
        name::APPENDED_BYTES,
        Unit::Bytes,
        "Bytes appended to segments (record batches as stored)."
    );
    describe_counter!(
        name::READ_RECORDS,
        Unit::Count,
        "Records handed to readers and consumers."
    );
    describe_counter!(
        name::READ_BYTES,
        Unit::Bytes,
        "Key and value bytes of the records handed to readers and consumers."
    );
    describe_histogram!(
        name::APPEND_SECONDS,
        Unit::Seconds,
        "Duration of an append call (one append in 64 per thread is timed)."
    );
    describe_histogram!(
        name::FSYNC_SECONDS,
        Unit::Seconds,
        "Duration of one fsync round (segments, indexes, directory)."
    );
    describe_counter!(name::SLOW_FSYNCS, Unit::Count, "Fsync rounds that took 1 s or more.");
    describe_gauge!(
        name::CONSUMER_LAG,
        Unit::Count,
        "End offset minus the group's committed offset, per partition."
    );
    describe_counter!(
        name::REBALANCES,
        Unit::Count,
        "Rebalances (generation changes) of a group."
    );
    describe_counter!(
        name::SEGMENT_ROLLS,
        Unit::Count,
        "Segments sealed and replaced by a new one."
    );
    describe_counter!(name::RETENTION_SEGMENTS, Unit::Count, "Segments deleted by retention.");
    describe_counter!(name::RETENTION_BYTES, Unit::Bytes, "Bytes deleted by retention.");
    describe_histogram!(
        name::RECOVERY_SECONDS,
        Unit::Seconds,
        "Duration of a partition's open, recovery included."
    );
    describe_counter!(
        name::RECOVERY_SCANNED,
        Unit::Bytes,
        "Bytes recovery checked batch by batch."
    );
    describe_counter!(
        name::RECOVERY_TRUNCATED,
        Unit::Bytes,
        "Bytes recovery cut from damaged tails."
    );
    describe_counter!(
        name::RECOVERY_SEGMENTS_REMOVED,
        Unit::Count,
        "Segments recovery removed because they followed damage."
    );
    describe_counter!(name::RECOVERY_DAMAGE, Unit::Count, "Places of damage recovery found.");
    describe_counter!(name::POISONED, Unit::Count, "Partitions poisoned by a failed fsync.");
}

/// Enters the span of a broker's open (every partition's open nests in it).
#[inline]
pub(crate) fn broker_open_span(dir: &Path) -> Span {
    #[cfg(feature = "tracing")]
    return Span {
        _entered: tracing::info_span!("logbus.broker.open", dir = %dir.display()).entered(),
    };
    #[cfg(not(feature = "tracing"))]
    {
        let _ = dir;
        Span {}
    }
}

/// Enters the span of one partition's open and recovery.
#[inline]
pub(crate) fn log_open_span(topic: &str, partition: u32) -> Span {
    #[cfg(feature = "tracing")]
    return Span {
        _entered: tracing::info_span!("logbus.log.open", topic, partition).entered(),
    };
    #[cfg(not(feature = "tracing"))]
    {
        let _ = (topic, partition);
        Span {}
    }
}

/// A partition opened, started at `started`, after finding and repairing `r`.
pub(crate) fn recovered(topic: &str, partition: u32, started: Timer, r: Repairs) {
    #[cfg(any(feature = "metrics", feature = "tracing"))]
    let took = started.elapsed();
    #[cfg(feature = "metrics")]
    {
        let t = || topic.to_owned();
        metrics::histogram!(name::RECOVERY_SECONDS, "topic" => t()).record(took.as_secs_f64());
        metrics::counter!(name::RECOVERY_SCANNED, "topic" => t()).increment(r.scanned_bytes);
        metrics::counter!(name::RECOVERY_TRUNCATED, "topic" => t()).increment(r.truncated_bytes);
        metrics::counter!(name::RECOVERY_SEGMENTS_REMOVED, "topic" => t()).increment(r.segments_removed as u64);
        metrics::counter!(name::RECOVERY_DAMAGE, "topic" => t()).increment(r.damage as u64);
    }
    #[cfg(feature = "tracing")]
    {
        let repaired = r.truncated_bytes > 0 || r.segments_removed > 0 || r.damage > 0;
        macro_rules! opened {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    topic,
                    partition,
                    took_ms = took.as_millis() as u64,
                    clean = r.clean,
                    scanned_bytes = r.scanned_bytes,
                    truncated_bytes = r.truncated_bytes,
                    segments_removed = r.segments_removed,
                    damage = r.damage,
                    "partition opened"
                )
            };
        }
        if repaired {
            opened!(tracing::Level::WARN);
        } else {
            opened!(tracing::Level::DEBUG);
        }
    }
    let _ = (topic, partition, started, r);
}

/// The active segment starting at `sealed_base` was sealed; the new one starts at `next_base`.
pub(crate) fn rolled(topic: &str, partition: u32, sealed_base: u64, next_base: u64) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name::SEGMENT_ROLLS, "topic" => topic.to_owned()).increment(1);
    #[cfg(feature = "tracing")]
    tracing::debug!(topic, partition, sealed_base, next_base, "segment rolled");
    let _ = (topic, partition, sealed_base, next_base);
}

/// Retention deleted `segments` segments, `bytes` bytes; the log now starts at `start_offset`.
pub(crate) fn retention_deleted(topic: &str, partition: u32, segments: usize, bytes: u64, start_offset: u64) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(name::RETENTION_SEGMENTS, "topic" => topic.to_owned()).increment(segments as u64);
        metrics::counter!(name::RETENTION_BYTES, "topic" => topic.to_owned()).increment(bytes);
    }
    #[cfg(feature = "tracing")]
    tracing::info!(
        topic,
        partition,
        segments,
        bytes,
        start_offset,
        "retention deleted segments"
    );
    let _ = (topic, partition, segments, bytes, start_offset);
}

/// A compaction pass replaced `segments` segments, removing `records`
/// records and reclaiming `bytes` bytes.
pub(crate) fn compacted(topic: &str, partition: u32, segments: usize, records: u64, bytes: u64) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(name::COMPACTION_PASSES, "topic" => topic.to_owned()).increment(1);
        metrics::counter!(name::COMPACTION_REMOVED, "topic" => topic.to_owned()).increment(records);
        metrics::counter!(name::COMPACTION_RECLAIMED, "topic" => topic.to_owned()).increment(bytes);
    }
    #[cfg(feature = "tracing")]
    tracing::info!(topic, partition, segments, records, bytes, "compaction pass");
    let _ = (topic, partition, segments, records, bytes);
}

/// A failed fsync (`cause`) poisoned the partition.
pub(crate) fn poisoned(topic: &str, partition: u32, cause: &dyn Display) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name::POISONED, "topic" => topic.to_owned()).increment(1);
    #[cfg(feature = "tracing")]
    tracing::error!(topic, partition, cause = %cause, "partition poisoned: writes refused until reopened");
    let _ = (topic, partition, cause);
}

/// `group` rebalanced to `generation` with `members` members.
pub(crate) fn rebalanced(group: &str, generation: u64, members: usize) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name::REBALANCES, "group" => group.to_owned()).increment(1);
    #[cfg(feature = "tracing")]
    tracing::info!(group, generation, members, "group rebalanced");
    let _ = (group, generation, members);
}

/// Whether consumer lag is published at all (only with `metrics`).
pub(crate) const EXPORTS_LAG: bool = cfg!(feature = "metrics");

/// `group`'s committed offset on `topic`/`partition` is `lag` records behind the end.
pub(crate) fn consumer_lag(group: &str, topic: &str, partition: u32, lag: u64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(
        name::CONSUMER_LAG,
        "group" => group.to_owned(),
        "topic" => topic.to_owned(),
        "partition" => partition.to_string()
    )
    .set(lag as f64);
    let _ = (group, topic, partition, lag);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_metric() {
        let readme = include_str!("../README.md");
        for n in name::ALL {
            assert!(readme.contains(n), "README.md does not list the metric {n}");
        }
    }
}
