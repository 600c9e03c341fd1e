//! `ConsumerBuilder`: a Kafka consumer's settings, `ConsumerConfig`'s plus raw librdkafka ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use super::Consumer;
use crate::config::{AssignmentStrategy, OffsetReset};
use crate::error::{Error, Result};
use crate::kafka::context::Context;
use crate::kafka::error::kafka_error;
use crate::kafka::settings::{ms, Settings};

/// Builds a [`Consumer`]. The settings are [`ConsumerConfig`](crate::ConsumerConfig)'s,
/// with the same defaults, plus raw librdkafka settings. Setters consume and return the builder.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConsumerBuilder {
    pub(super) settings: Settings,
    pub(super) group: Option<String>,
    pub(super) offset_reset: OffsetReset,
    pub(super) auto_commit: bool,
    pub(super) max_poll_records: usize,
    pub(super) max_poll_interval: Duration,
    pub(super) strategy: AssignmentStrategy,
    pub(super) request_timeout: Duration,
}

impl ConsumerBuilder {
    /// Joins this consumer group (needed for `subscribe` and commits). Default = no group.
    pub fn group(mut self, group_id: impl Into<String>) -> ConsumerBuilder {
        self.group = Some(group_id.into());
        self
    }

    /// What to do without a valid position (`auto.offset.reset`). Default = `OffsetReset::Latest`.
    pub fn offset_reset(mut self, reset: OffsetReset) -> ConsumerBuilder {
        self.offset_reset = reset;
        self
    }

    /// Commit the previous poll's positions at the start of each poll
    /// (asynchronously), as the local consumer does. Default = off.
    pub fn auto_commit(mut self, enabled: bool) -> ConsumerBuilder {
        self.auto_commit = enabled;
        self
    }

    /// Most records one poll returns. Default = 500.
    pub fn max_poll_records(mut self, n: usize) -> ConsumerBuilder {
        self.max_poll_records = n;
        self
    }

    /// A member that does not poll for this long leaves the group (`max.poll.interval.ms`). Default = 5 minutes.
    pub fn max_poll_interval(mut self, d: Duration) -> ConsumerBuilder {
        self.max_poll_interval = d;
        self
    }

    /// The group's assignment strategy (`partition.assignment.strategy`;
    /// `Sticky` is Kafka's `cooperative-sticky`). Default = `AssignmentStrategy::Range`.
    pub fn assignment_strategy(mut self, s: AssignmentStrategy) -> ConsumerBuilder {
        self.strategy = s;
        self
    }

    /// Bound on each request `committed`, `position`, `seek` and sync commits
    /// make to the cluster. Default = 30 s.
    pub fn request_timeout(mut self, d: Duration) -> ConsumerBuilder {
        self.request_timeout = d;
        self
    }

    /// `build()` asks the cluster for its metadata and fails if no answer
    /// comes within this time; `None` builds without contacting the cluster.
    /// Default = 30 s.
    pub fn connect_timeout(mut self, d: Option<Duration>) -> ConsumerBuilder {
        self.settings.connect_timeout = d;
        self
    }

    /// Sets a raw librdkafka setting (`security.protocol`, `sasl.mechanism`,
    /// `session.timeout.ms`...). Raw settings win over the builder's.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> ConsumerBuilder {
        self.settings.set(key, value);
        self
    }

    /// Creates the consumer; `Error::InvalidConfig` names a setting out of range.
    pub fn build(self) -> Result<Consumer> {
        if self.max_poll_records == 0 {
            return Err(Error::InvalidConfig {
                field: "max_poll_records",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let reset = match self.offset_reset {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::None => "error",
        };
        let strategy = match self.strategy {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::RoundRobin => "roundrobin",
            AssignmentStrategy::Sticky => "cooperative-sticky",
        };
        let mut defaults = vec![
            // Positions are committed by this wrapper (commit, auto_commit), never behind its back.
            ("enable.auto.commit", "false".to_string()),
            ("enable.auto.offset.store", "false".to_string()),
            ("enable.partition.eof", "false".to_string()),
            ("auto.offset.reset", reset.to_string()),
            ("max.poll.interval.ms", ms(self.max_poll_interval)),
            ("partition.assignment.strategy", strategy.to_string()),
        ];
        // librdkafka's consumer needs a group id even for `assign`; without a
        // group, a private one that is never committed to (commits need `.group`).
        let group_id = match &self.group {
            Some(g) => g.clone(),
            None => format!("logbus-assign-only-{}-{:x}", std::process::id(), unique()),
        };
        defaults.push(("group.id", group_id));
        let config = self.settings.client_config(&defaults)?;
        let inner = BaseConsumer::from_config_and_context(&config, Context::default())
            .map_err(|e| kafka_error("creating a consumer", &self.settings.bootstrap, e, None))?;
        self.settings.check_reachable(inner.client())?;
        Ok(Consumer {
            inner,
            bootstrap: self.settings.bootstrap,
            group: self.group,
            offset_reset: self.offset_reset,
            auto_commit: self.auto_commit,
            max_poll_records: self.max_poll_records,
            request_timeout: self.request_timeout,
            positions: Mutex::new(BTreeMap::new()),
            uncommitted: false,
            manual: false,
            paused: Mutex::new(BTreeSet::new()),
            pending_error: None,
        })
    }
}

/// A number no other consumer of this process got.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ NEXT.fetch_add(1, Ordering::Relaxed)
}
