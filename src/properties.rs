//! Kafka's configuration names: the typed configs built from `(key, value)`
//! pairs, as in Kafka's `server.properties`, a client's `.properties` file or
//! the tools' `--config key=value`.
//!
//! ```
//! use logbus::{ConsumerConfig, TopicConfig};
//!
//! let topic = TopicConfig::from_properties(&[("partitions", "3"), ("retention.ms", "604800000")])?;
//! assert_eq!(topic.partition_count(), 3);
//! let consumer = ConsumerConfig::from_properties(&[
//!     ("group.id", "billing"),
//!     ("auto.offset.reset", "earliest"),
//!     ("enable.auto.commit", "false"),
//! ])?;
//! # let _ = consumer;
//! # Ok::<(), logbus::Error>(())
//! ```
//!
//! An unknown key or a bad value is [`Error::InvalidConfig`] naming the key
//! (and, for an unknown key, listing the accepted ones). Keys that only make
//! sense for a networked client are refused with the reason, never ignored.

use std::path::Path;
use std::time::Duration;

use crate::compression::Compression;
use crate::config::{
    AssignmentStrategy, BrokerConfig, CleanupPolicy, ConsumerConfig, IsolationLevel, OffsetReset, TimestampType,
    TopicConfig,
};
use crate::error::{Error, Result};

/// Topic configs accepted by [`TopicConfig::from_properties`], with Kafka's names.
pub const TOPIC_KEYS: &[&str] = &[
    "partitions",
    "num.partitions",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "cleanup.policy",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "min.cleanable.dirty.ratio",
    "compression.type",
];

/// Topic configs [`Broker::alter_topic_config`](crate::Broker::alter_topic_config)
/// (and `logbus topics alter --add-config`) can change on a live topic.
pub const ALTERABLE_KEYS: &[&str] = &["retention.ms", "retention.bytes"];

/// Consumer configs accepted by [`ConsumerConfig::from_properties`], with Kafka's names.
pub const CONSUMER_KEYS: &[&str] = &[
    "group.id",
    "auto.offset.reset",
    "enable.auto.commit",
    "max.poll.records",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "isolation.level",
];

/// Broker configs accepted by [`BrokerConfig::from_properties`], with the
/// names of Kafka's `server.properties`: the defaults of topics created
/// without these settings.
pub const BROKER_KEYS: &[&str] = &[
    "num.partitions",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.retention.bytes",
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "message.max.bytes",
    "log.message.timestamp.type",
    "log.cleanup.policy",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "compression.type",
];

/// Kafka client keys that have no meaning in one process, with the reason
/// given when one is passed.
const NETWORK_ONLY: &[(&str, &str)] = &[
    (
        "bootstrap.servers",
        "logbus has no servers: open the directory with Broker::open (for a Kafka cluster, use logbus::kafka with the feature `kafka`)",
    ),
    (
        "key.deserializer",
        "records are bytes; use TypedConsumer with a Codec for typed values",
    ),
    (
        "value.deserializer",
        "records are bytes; use TypedConsumer with a Codec for typed values",
    ),
    (
        "session.timeout.ms",
        "members live in this process: a member leaves when its Consumer is closed or dropped, or misses max.poll.interval.ms",
    ),
    (
        "heartbeat.interval.ms",
        "members live in this process and send no heartbeats",
    ),
    (
        "security.protocol",
        "there is no network connection to secure",
    ),
    ("replication.factor", "logbus keeps one copy of each partition"),
    ("default.replication.factor", "logbus keeps one copy of each partition"),
    (
        "log.dirs",
        "the directory is the one given to Broker::open (or --dir on the command line)",
    ),
    ("listeners", "logbus has no network listeners: it runs inside the process"),
    ("broker.id", "there is one broker, the directory's owner"),
    ("node.id", "there is one broker, the directory's owner"),
];

impl BrokerConfig {
    /// The broker's topic defaults from the names of Kafka's
    /// `server.properties` (see [`BROKER_KEYS`]), over [`BrokerConfig::default`].
    /// As in Kafka, `log.retention.ms` wins over `log.retention.minutes`,
    /// which wins over `log.retention.hours`, and `log.roll.ms` over
    /// `log.roll.hours`, whatever their order; -1 means no retention limit.
    pub fn from_properties(props: &[(&str, &str)]) -> Result<BrokerConfig> {
        let mut topic = Vec::new();
        // (precedence, value): the most precise unit of a setting wins.
        let mut retention: Option<(u8, Option<i64>)> = None;
        let mut roll: Option<(u8, i64)> = None;
        for &(key, value) in props {
            let (key, value) = (key.trim(), value.trim());
            let scaled = |unit: i64| -> Result<Option<i64>> {
                let v: Option<i64> = unlimited_or(key, value)?;
                v.map(|v| v.checked_mul(unit).ok_or_else(|| bad(key, value, "too large")))
                    .transpose()
            };
            match key {
                "num.partitions" => topic.push(("partitions", value)),
                "log.retention.bytes" => topic.push(("retention.bytes", value)),
                "log.segment.bytes" => topic.push(("segment.bytes", value)),
                "message.max.bytes" => topic.push(("max.message.bytes", value)),
                "log.message.timestamp.type" => topic.push(("message.timestamp.type", value)),
                "log.cleanup.policy" => topic.push(("cleanup.policy", value)),
                "log.cleaner.delete.retention.ms" => topic.push(("delete.retention.ms", value)),
                "log.cleaner.min.compaction.lag.ms" => topic.push(("min.compaction.lag.ms", value)),
                "log.cleaner.min.cleanable.ratio" => topic.push(("min.cleanable.dirty.ratio", value)),
                "compression.type" => topic.push(("compression.type", value)),
                "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => {
                    let (rank, unit) = match key {
                        "log.retention.ms" => (3, 1),
                        "log.retention.minutes" => (2, 60_000),
                        _ => (1, 3_600_000),
                    };
                    let ms = scaled(unit)?;
                    if retention.is_none_or(|(r, ..)| rank >= r) {
                        retention = Some((rank, ms));
                    }
                }
                "log.roll.ms" | "log.roll.hours" => {
                    let (rank, unit) = if key == "log.roll.ms" { (2, 1) } else { (1, 3_600_000) };
                    let ms = number::<i64>(key, value)?
                        .checked_mul(unit)
                        .ok_or_else(|| bad(key, value, "too large"))?;
                    if roll.is_none_or(|(r, ..)| rank >= r) {
                        roll = Some((rank, ms));
                    }
                }
                _ => return Err(unknown(key, value, "broker", BROKER_KEYS)),
            }
        }
        let mut defaults = TopicConfig::default();
        for (key, value) in topic {
            defaults = defaults.with_property(key, value)?;
        }
        if let Some((_, ms)) = retention {
            defaults = defaults.retention_ms(ms);
        }
        if let Some((_, ms)) = roll {
            defaults = defaults.segment_ms(Some(ms));
        }
        defaults.validate()?;
        Ok(BrokerConfig::default().topic_defaults(defaults))
    }
}

impl TopicConfig {
    /// A topic config from Kafka's topic config names, over the defaults of
    /// [`TopicConfig::default`]. Keys: see [`TOPIC_KEYS`]. `retention.ms` and
    /// `retention.bytes` take -1 for no limit, as in Kafka;
    /// `message.timestamp.type` is `CreateTime` or `LogAppendTime`.
    pub fn from_properties(props: &[(&str, &str)]) -> Result<TopicConfig> {
        TopicConfig::default().with_properties(props)
    }

    /// This config with the given Kafka-named settings applied over it.
    pub fn with_properties(self, props: &[(&str, &str)]) -> Result<TopicConfig> {
        let mut c = self;
        for &(key, value) in props {
            c = c.with_property(key.trim(), value.trim())?;
        }
        c.validate()?;
        Ok(c)
    }

    /// A topic config from a `.properties` file (see [`read_properties`]).
    pub fn from_properties_file(path: impl AsRef<Path>) -> Result<TopicConfig> {
        let props = read_properties(path)?;
        TopicConfig::from_properties(&as_pairs(&props))
    }

    fn with_property(self, key: &str, value: &str) -> Result<TopicConfig> {
        Ok(match key {
            "partitions" | "num.partitions" => self.partitions(number(key, value)?),
            "retention.ms" => self.retention_ms(unlimited_or(key, value)?),
            "retention.bytes" => self.retention_bytes(unlimited_or(key, value)?),
            "segment.bytes" => self.segment_bytes(number(key, value)?),
            "segment.ms" => self.segment_ms(Some(number(key, value)?)),
            "max.message.bytes" => self.max_record_bytes(number(key, value)?),
            "message.timestamp.type" => self.timestamp_type(match value {
                "CreateTime" => TimestampType::CreateTime,
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => return Err(bad(key, value, "must be CreateTime or LogAppendTime")),
            }),
            "cleanup.policy" => self.cleanup_policy(match value.replace(' ', "").as_str() {
                "delete" => CleanupPolicy::Delete,
                "compact" => CleanupPolicy::Compact,
                "compact,delete" | "delete,compact" => CleanupPolicy::CompactAndDelete,
                _ => return Err(bad(key, value, "must be delete, compact or compact,delete")),
            }),
            "delete.retention.ms" => self.delete_retention_ms(number(key, value)?),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms(number(key, value)?),
            "min.cleanable.dirty.ratio" => match value.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => self.min_cleanable_dirty_ratio(r),
                _ => return Err(bad(key, value, "must be a number from 0 to 1")),
            },
            "compression.type" => {
                let c = compression_type(key, value)?;
                c.check("compression.type")?;
                self.compression(c)
            }
            _ => return Err(unknown(key, value, "topic", TOPIC_KEYS)),
        })
    }

    /// The settings with Kafka's names, as `topics describe` prints them:
    /// the partition count and every setting that differs from Kafka's
    /// meaning of "not set" (`retention.ms=-1` for no time limit, and so on).
    pub fn to_properties(&self) -> Vec<(&'static str, String)> {
        let limit = |v: Option<String>| v.unwrap_or_else(|| "-1".to_string());
        let mut out = vec![
            ("partitions", self.partitions.to_string()),
            ("retention.ms", limit(self.retention_ms.map(|v| v.to_string()))),
            ("retention.bytes", limit(self.retention_bytes.map(|v| v.to_string()))),
            ("segment.bytes", self.segment_bytes.to_string()),
        ];
        if let Some(ms) = self.segment_ms {
            out.push(("segment.ms", ms.to_string()));
        }
        out.push(("max.message.bytes", self.effective_max_record_bytes().to_string()));
        let ts = match self.timestamp_type {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        };
        out.push(("message.timestamp.type", ts.to_string()));
        let policy = self.policy();
        out.push(("cleanup.policy", policy.as_str().to_string()));
        if policy.compacts() {
            out.push(("delete.retention.ms", self.delete_retention_ms.to_string()));
            out.push(("min.compaction.lag.ms", self.min_compaction_lag_ms.to_string()));
            let ratio = f64::from_bits(self.min_cleanable_dirty_ratio);
            out.push(("min.cleanable.dirty.ratio", ratio.to_string()));
        }
        if self.compression != Compression::None {
            out.push(("compression.type", self.compression.name().to_string()));
        }
        out
    }
}

/// Kafka's `compression.type` values: `none`, `lz4`, `zstd`, and
/// `producer` (Kafka's default: keep what the producer sent), which is
/// `none` here, since a producer's own compression
/// ([`Producer::with_compression`](crate::Producer::with_compression)) wins
/// over the topic's anyway. `gzip` and `snappy` are refused with the reason.
fn compression_type(key: &str, value: &str) -> Result<Compression> {
    Ok(match value {
        "none" | "producer" => Compression::None,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        "gzip" | "snappy" => {
            return Err(bad(
                key,
                value,
                "logbus does not implement gzip or snappy; use lz4 (fast) or zstd (smaller), or none",
            ))
        }
        _ => return Err(bad(key, value, "must be none, producer, lz4 or zstd")),
    })
}

/// `current` with `set` applied and the `delete`d keys back at `defaults`'
/// values; only [`ALTERABLE_KEYS`] may change.
pub(crate) fn altered(
    current: &TopicConfig,
    set: &[(&str, &str)],
    delete: &[&str],
    defaults: &TopicConfig,
) -> Result<TopicConfig> {
    let check = |key: &str, value: &str| -> Result<()> {
        if ALTERABLE_KEYS.contains(&key) {
            return Ok(());
        }
        let why = match key {
            "partitions" | "num.partitions" => {
                "add partitions with Broker::add_partitions (topics alter --partitions N)".to_string()
            }
            k if TOPIC_KEYS.contains(&k) => format!(
                "fixed when the topic is created; the settings a live topic can change are {}",
                ALTERABLE_KEYS.join(", ")
            ),
            _ => return Err(unknown(key, value, "topic", TOPIC_KEYS)),
        };
        Err(bad(key, value, &why))
    };
    let mut next = current.clone();
    for &(key, value) in set {
        let (key, value) = (key.trim(), value.trim());
        check(key, value)?;
        next = next.with_property(key, value)?;
    }
    for &key in delete {
        let key = key.trim();
        check(key, "")?;
        next = match key {
            "retention.ms" => next.retention_ms(defaults.retention_ms),
            _ => next.retention_bytes(defaults.retention_bytes),
        };
    }
    next.validate()?;
    Ok(next)
}

impl ConsumerConfig {
    /// A consumer config from Kafka's consumer config names, over the
    /// defaults of [`ConsumerConfig::default`]. Keys: see [`CONSUMER_KEYS`].
    /// `partition.assignment.strategy` takes Kafka's assignor class names
    /// (`org.apache.kafka.clients.consumer.RangeAssignor`, or the short
    /// `RangeAssignor`, `RoundRobinAssignor`, `StickyAssignor`,
    /// `CooperativeStickyAssignor`) or librdkafka's (`range`, `roundrobin`,
    /// `cooperative-sticky`); in a comma-separated list the first is used
    /// (every member of a group is in this process and uses the same one).
    pub fn from_properties(props: &[(&str, &str)]) -> Result<ConsumerConfig> {
        let mut c = ConsumerConfig::default();
        for &(key, value) in props {
            c = c.with_property(key.trim(), value.trim())?;
        }
        Ok(c)
    }

    /// A consumer config from a `.properties` file (see [`read_properties`]).
    pub fn from_properties_file(path: impl AsRef<Path>) -> Result<ConsumerConfig> {
        let props = read_properties(path)?;
        ConsumerConfig::from_properties(&as_pairs(&props))
    }

    fn with_property(self, key: &str, value: &str) -> Result<ConsumerConfig> {
        Ok(match key {
            "group.id" if value.is_empty() => return Err(bad(key, value, "must not be empty")),
            "group.id" => self.group(value),
            "auto.offset.reset" => self.offset_reset(match value {
                "earliest" => OffsetReset::Earliest,
                "latest" => OffsetReset::Latest,
                "none" => OffsetReset::None,
                _ => return Err(bad(key, value, "must be earliest, latest or none")),
            }),
            "enable.auto.commit" => self.auto_commit(match value {
                "true" => true,
                "false" => false,
                _ => return Err(bad(key, value, "must be true or false")),
            }),
            "max.poll.records" => match number::<usize>(key, value)? {
                0 => return Err(bad(key, value, "must be at least 1")),
                n => self.max_poll_records(n),
            },
            "max.poll.interval.ms" => match number::<u64>(key, value)? {
                0 => return Err(bad(key, value, "must be at least 1")),
                ms => self.max_poll_interval(Duration::from_millis(ms)),
            },
            "partition.assignment.strategy" => self.assignment_strategy(strategy(key, value)?),
            "isolation.level" => self.isolation_level(match value {
                "read_uncommitted" => IsolationLevel::ReadUncommitted,
                "read_committed" => IsolationLevel::ReadCommitted,
                _ => return Err(bad(key, value, "must be read_uncommitted or read_committed")),
            }),
            _ => return Err(unknown(key, value, "consumer", CONSUMER_KEYS)),
        })
    }
}

/// Reads a Java `.properties` file as `(key, value)` pairs in file order:
/// `key=value`, `key: value` or `key value` per line; lines starting with
/// `#` or `!` are comments; a line ending in an odd number of backslashes
/// continues on the next; `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\<char>`
/// escapes are decoded. A file that cannot be read is `Error::Io`.
pub fn read_properties(path: impl AsRef<Path>) -> Result<Vec<(String, String)>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading properties file", path, e))?;
    Ok(parse_properties(&text))
}

/// Parses the text of a `.properties` file (see [`read_properties`]).
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut logical = first.trim_start().to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while continues(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        out.push(split_entry(&logical));
    }
    out
}

/// Whether a line ends in an odd number of backslashes (a continuation).
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> (String, String) {
    let mut key_end = line.len();
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || c.is_whitespace() {
            key_end = i;
            break;
        }
    }
    let key = line.get(..key_end).unwrap_or_default();
    let mut rest = line.get(key_end..).unwrap_or_default().trim_start();
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start();
    }
    (unescape(key), unescape(rest))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn as_pairs(props: &[(String, String)]) -> Vec<(&str, &str)> {
    props.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The static name of a known key, for `Error::InvalidConfig`'s field.
fn field(key: &str) -> &'static str {
    TOPIC_KEYS
        .iter()
        .chain(CONSUMER_KEYS)
        .chain(BROKER_KEYS)
        .chain(NETWORK_ONLY.iter().map(|(k, _)| k))
        .find(|k| **k == key)
        .copied()
        .unwrap_or("property")
}

fn bad(key: &str, value: &str, reason: &str) -> Error {
    Error::config(field(key), value, reason.to_string())
}

fn unknown(key: &str, value: &str, kind: &str, accepted: &[&str]) -> Error {
    if let Some((k, why)) = NETWORK_ONLY.iter().find(|(k, _)| *k == key) {
        return Error::config(k, value, format!("not a {kind} config in logbus: {why}"));
    }
    Error::config(
        "property",
        key,
        format!("unknown {kind} config; accepted: {}", accepted.join(", ")),
    )
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| bad(key, value, &format!("must be a whole number in range for {key}")))
}

/// Kafka's "-1 means no limit".
fn unlimited_or<T: std::str::FromStr>(key: &str, value: &str) -> Result<Option<T>> {
    if value == "-1" {
        return Ok(None);
    }
    number(key, value)
        .map(Some)
        .map_err(|_| bad(key, value, "must be a non-negative whole number, or -1 for no limit"))
}

fn strategy(key: &str, value: &str) -> Result<AssignmentStrategy> {
    let first = value.split(',').next().unwrap_or_default().trim();
    let short = first.rsplit('.').next().unwrap_or(first);
    Ok(match short {
        "RangeAssignor" | "range" => AssignmentStrategy::Range,
        "RoundRobinAssignor" | "roundrobin" => AssignmentStrategy::RoundRobin,
        "StickyAssignor" | "CooperativeStickyAssignor" | "cooperative-sticky" => AssignmentStrategy::Sticky,
        _ => {
            return Err(bad(
                key,
                value,
                "must be RangeAssignor, RoundRobinAssignor, StickyAssignor or CooperativeStickyAssignor (or librdkafka's range, roundrobin, cooperative-sticky)",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_files_parse_as_java_does() {
        let text = "# comment\n! also a comment\n\nnum.partitions=3\nlog.dirs : /tmp/a\\\n    /b\nkey\\=with\\:seps value\n  spaced   =   v  \nempty=\nunicode=\\u00e9\n";
        let got = parse_properties(text);
        let want: Vec<(String, String)> = [
            ("num.partitions", "3"),
            ("log.dirs", "/tmp/a/b"),
            ("key=with:seps", "value"),
            ("spaced", "v  "),
            ("empty", ""),
            ("unicode", "é"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_even_number_of_trailing_backslashes_is_not_a_continuation() {
        let got = parse_properties("a=x\\\\\nb=y\n");
        assert_eq!(got, vec![("a".into(), "x\\".into()), ("b".into(), "y".into())]);
    }
}
