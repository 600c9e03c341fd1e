//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// `Result<T, logbus::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in logbus.
///
/// Every variant carries the context needed to act on it (topic, partition,
/// offset, path), and its `Display` says what happened and what to do.
///
/// `Debug` prints the `Display` message first, then the variant and its
/// fields, so `fn main() -> logbus::Result<()>` (which reports an error with
/// `Debug`) shows what to do:
///
/// ```
/// let err = logbus::Error::UnknownTopic { topic: "orders".into() };
/// let debug = format!("{err:?}");
/// assert!(debug.starts_with(&err.to_string()));
/// assert!(debug.ends_with(r#"UnknownTopic { topic: "orders" }"#));
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("I/O error while {context} ({path}): {source}; check free disk space and permissions", path = .path.display())]
    Io {
        /// What logbus was doing.
        context: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Bytes on disk are not what the format says they must be.
    #[error("corruption in {path} at byte {position}: {reason}; the data there cannot be trusted (run `verify`, restore the file or truncate the partition before this offset)", path = .path.display())]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the damage inside the file.
        position: u64,
        /// What was expected and what was found.
        reason: String,
    },

    /// A file was written by a newer (or unknown) version of the format.
    #[error("{path} uses format version {found}, this build of logbus reads versions up to {supported}; upgrade logbus", path = .path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u8,
        /// The version this build supports.
        supported: u8,
    },

    /// Compressed batches of a codec whose cargo feature this build lacks
    /// (the data is intact: nothing is cut or skipped).
    #[error("{path} holds record batches compressed with {codec}, which this build of logbus cannot read; build logbus with the cargo feature `{codec}`", path = .path.display())]
    CodecUnavailable {
        /// The segment file.
        path: PathBuf,
        /// The codec (`lz4` or `zstd`), also the name of its cargo feature.
        codec: &'static str,
    },

    /// `create_topic` on a name that already exists.
    #[error("topic '{topic}' already exists; use Broker::topic to open it or delete it first")]
    TopicExists {
        /// The topic name.
        topic: String,
    },

    /// A topic that was never created (or was deleted).
    #[error("unknown topic '{topic}'; create it first with Broker::create_topic (topics are never auto-created)")]
    UnknownTopic {
        /// The topic name.
        topic: String,
    },

    /// A partition number outside `0..partition_count`.
    #[error("topic '{topic}' has no partition {partition} (it has {partition_count} partitions, numbered from 0)")]
    UnknownPartition {
        /// The topic name.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partition_count: u32,
    },

    /// A configuration value out of its valid range.
    #[error("invalid configuration: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The setting at fault.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        reason: String,
    },

    /// A topic name outside Kafka's rule.
    #[error("invalid topic name {name:?}: {reason}; use 1 to 249 characters of [A-Za-z0-9._-], not '.' or '..'")]
    InvalidTopicName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A record (key + value + headers) above the topic's limit.
    #[error("record of {size} bytes is too large for topic '{topic}' (limit {max} bytes for key + value + headers); split it or raise max_record_bytes")]
    RecordTooLarge {
        /// The topic name.
        topic: String,
        /// The record's size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// An offset outside `start_offset..=end_offset`.
    #[error("offset {offset} is out of range for topic '{topic}' partition {partition} (stored offsets are {start}..{end}); seek to a stored offset")]
    OffsetOutOfRange {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: u32,
        /// The offset asked for.
        offset: u64,
        /// First stored offset.
        start: u64,
        /// Next offset to be written.
        end: u64,
    },

    /// The group has no committed offset and the reset policy is `OffsetReset::None`.
    #[error("group '{group}' has no committed offset for topic '{topic}' partition {partition} and offset_reset is None; commit or seek first, or use Earliest/Latest")]
    NoOffset {
        /// The group.
        group: String,
        /// The topic name.
        topic: String,
        /// The partition.
        partition: u32,
    },

    /// Another process (or another `Broker` in this process) owns the directory.
    #[error("{path} is locked by {owner}; close the other broker or use a different directory", path = .path.display(), owner = match .pid { Some(p) => format!("pid {p}"), None => "another process".to_string() })]
    Locked {
        /// The broker directory.
        path: PathBuf,
        /// The process id that holds it, when known.
        pid: Option<u32>,
    },

    /// A commit from a group member whose generation is stale.
    #[error("commit from member '{member}' of group '{group}' was fenced: the group rebalanced (generation {current}) since this member's last poll (generation {member_generation}); poll again, then commit")]
    Fenced {
        /// The group.
        group: String,
        /// The member id.
        member: String,
        /// The generation this member last saw.
        member_generation: u64,
        /// The group's current generation.
        current: u64,
    },

    /// An fsync failed earlier; the partition refuses writes until the broker is reopened.
    #[error("topic '{topic}' partition {partition} refuses writes since an fsync failed ({reason}); data written after the last successful sync may be lost: reopen the broker to recover")]
    Poisoned {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: u32,
        /// The original failure: the call, the file and the OS error.
        reason: String,
        /// The original failure as an error (an [`Error::Io`] with the
        /// file's path and the OS error), shared by every later refusal.
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// A write or fsync of the transaction log failed earlier; commits are
    /// refused until the broker is reopened.
    #[error("the transaction log refuses commits since a write to it failed ({reason}); whether the transaction being committed then committed is decided when the broker is reopened")]
    TransactionLog {
        /// The original failure: the call, the file and the OS error.
        reason: String,
        /// The original failure (an [`Error::Io`]).
        #[source]
        source: std::sync::Arc<Error>,
    },

    /// A record's value could not be decoded by a `Codec`.
    #[error("could not decode the value at topic '{topic}' partition {partition} offset {offset}: {reason}")]
    Decode {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: u32,
        /// The offset.
        offset: u64,
        /// The codec's message.
        reason: String,
    },

    /// A value could not be encoded by a `Codec`.
    #[error("could not encode a value for topic '{topic}': {reason}")]
    Encode {
        /// The topic name.
        topic: String,
        /// The codec's message.
        reason: String,
    },

    /// A consumer operation on a partition it is not assigned.
    #[error("topic '{topic}' partition {partition} is not assigned to this consumer; assign or subscribe first")]
    NotAssigned {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: u32,
    },

    /// The broker was closed; every handle derived from it is finished.
    #[error("the broker was closed; open it again with Broker::open")]
    Closed,

    /// A Kafka cluster (the `kafka` feature's client) refused or failed a request.
    #[cfg(feature = "kafka")]
    #[error("{context}: {source}")]
    Kafka {
        /// What was attempted (topic, partition, broker address) and what to do about it.
        context: String,
        /// librdkafka's error (boxed: it would double the size of every `Result`).
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },

    /// Retention deleted local records the Kafka mirror had not shipped yet
    /// (`logbus::kafka::Mirror` with `OnGap::Stop`, the default).
    #[cfg(feature = "kafka")]
    #[error("topic '{topic}' partition {partition}: records at offsets {from}..{to} were deleted by retention before the mirror shipped them to Kafka; they cannot be mirrored. Continue from offset {to} with --on-gap skip (OnGap::Skip), and keep records longer (retention.ms, retention.bytes) than the mirror may lag")]
    MirrorGap {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: u32,
        /// First offset lost (the mirror's position).
        from: u64,
        /// First offset still stored (one past the last offset lost).
        to: u64,
    },

    /// The mirror already sent local offsets the local partition no longer
    /// has: the directory lost records after they were shipped (a power
    /// failure or OS crash with unsynced writes), and records stored at those
    /// offsets from now on would carry the source headers of different records
    /// already at Kafka. Nothing was sent.
    #[cfg(feature = "kafka")]
    #[error("topic '{topic}' partition {partition}: the mirror sent offsets below {sent} to Kafka, but the local partition ends at {end}: records were lost locally after they were shipped (a power failure or OS crash with unsynced writes), and new records stored at offsets {end}..{sent} would carry the same logbus.source, logbus.partition and logbus.offset headers as different records already at Kafka, so a reader dropping duplicates by them would drop the new ones. Nothing was sent. To go on, delete {} and start the mirror with a new source id (--source-id): the in-process mirror resumes at its group's committed offset, a sidecar ships every stored record again under the new id", progress.display())]
    MirrorAhead {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: u32,
        /// One past the highest local offset the mirror sent.
        sent: u64,
        /// The local end offset now.
        end: u64,
        /// The mirror's progress file, `<dir>/@mirror/<group>.offsets`.
        progress: std::path::PathBuf,
    },
}

impl Error {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(field: &'static str, value: impl ToString, reason: impl Into<String>) -> Error {
        Error::InvalidConfig {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// The `Display` message, then the variant with its fields (as a derived
/// `Debug` would print them) on the next line.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        macro_rules! variant {
            ($name:literal $(, $field:ident)*) => {
                f.debug_struct($name)$(.field(stringify!($field), $field))*.finish()
            };
        }
        writeln!(f, "{self}")?;
        match self {
            Error::Io { context, path, source } => variant!("Io", context, path, source),
            Error::Corruption { path, position, reason } => variant!("Corruption", path, position, reason),
            Error::UnsupportedVersion { path, found, supported } => {
                variant!("UnsupportedVersion", path, found, supported)
            }
            Error::CodecUnavailable { path, codec } => variant!("CodecUnavailable", path, codec),
            Error::TopicExists { topic } => variant!("TopicExists", topic),
            Error::UnknownTopic { topic } => variant!("UnknownTopic", topic),
            Error::UnknownPartition {
                topic,
                partition,
                partition_count,
            } => variant!("UnknownPartition", topic, partition, partition_count),
            Error::InvalidConfig { field, value, reason } => variant!("InvalidConfig", field, value, reason),
            Error::InvalidTopicName { name, reason } => variant!("InvalidTopicName", name, reason),
            Error::RecordTooLarge { topic, size, max } => variant!("RecordTooLarge", topic, size, max),
            Error::OffsetOutOfRange {
                topic,
                partition,
                offset,
                start,
                end,
            } => variant!("OffsetOutOfRange", topic, partition, offset, start, end),
            Error::NoOffset {
                group,
                topic,
                partition,
            } => variant!("NoOffset", group, topic, partition),
            Error::Locked { path, pid } => variant!("Locked", path, pid),
            Error::Fenced {
                group,
                member,
                member_generation,
                current,
            } => variant!("Fenced", group, member, member_generation, current),
            // `source` is the same failure as `reason`, already in the message.
            Error::Poisoned {
                topic,
                partition,
                reason,
                source: _,
            } => variant!("Poisoned", topic, partition, reason),
            Error::TransactionLog { reason, source: _ } => variant!("TransactionLog", reason),
            Error::Decode {
                topic,
                partition,
                offset,
                reason,
            } => variant!("Decode", topic, partition, offset, reason),
            Error::Encode { topic, reason } => variant!("Encode", topic, reason),
            Error::NotAssigned { topic, partition } => variant!("NotAssigned", topic, partition),
            Error::Closed => f.write_str("Closed"),
            #[cfg(feature = "kafka")]
            Error::Kafka { context, source } => variant!("Kafka", context, source),
            #[cfg(feature = "kafka")]
            Error::MirrorGap {
                topic,
                partition,
                from,
                to,
            } => variant!("MirrorGap", topic, partition, from, to),
            #[cfg(feature = "kafka")]
            Error::MirrorAhead {
                topic,
                partition,
                sent,
                end,
                progress,
            } => variant!("MirrorAhead", topic, partition, sent, end, progress),
        }
    }
}
