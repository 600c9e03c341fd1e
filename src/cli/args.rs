//! Command-line arguments (clap derive). Every command's `--help` ends with an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Kafka's command-line tools for a logbus directory.
#[derive(Debug, Parser)]
#[command(
    name = "logbus",
    version,
    about = "Inspect and operate a logbus data directory: topics, records, consumer groups, segment files",
    after_help = "Examples:\n  logbus --dir ./data topics create orders --partitions 3\n  printf 'k1:hello\\nk2:world\\n' | logbus --dir ./data produce orders --key-separator :\n  logbus --dir ./data consume orders --from-beginning --print-key\n  LOGBUS_DIR=./data logbus groups describe billing\n\nInspection commands (topics list/describe, consume without --group, groups list/describe,\ndump, verify) work while another process owns the directory; the others need the\ndirectory's lock and fail with \"locked by `COMMAND` (pid N)\" while another process holds it."
)]
pub struct Cli {
    /// The data directory (the one given to `Broker::open`).
    #[arg(long, global = true, env = "LOGBUS_DIR", value_name = "DATA")]
    pub dir: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, alter and delete topics.
    Topics(TopicsArgs),
    /// Append records read from standard input, one per line.
    #[command(
        after_help = "Example:\n  printf 'customer-1:order created\\ncustomer-2:order paid\\n' \\\n    | logbus --dir ./data produce orders --key-separator : --header source=cli\n\nEach line becomes one record (the line ending is removed). Records go to the\npartition given by --partition, else by the key's hash, else round-robin.\nA line without the key separator stops produce: the lines before it are stored,\nit and the rest are not (--skip-bad-lines skips it instead). The summary and\nany error say how many records were stored."
    )]
    Produce(ProduceArgs),
    /// Print records of a topic.
    #[command(
        after_help = "Examples:\n  logbus --dir ./data consume orders --from-beginning --print-key --print-offset\n  logbus --dir ./data consume orders --partition 1 --offset 40 --max-messages 10 --format json\n  logbus --dir ./data consume orders --follow\n  logbus --dir ./data consume orders --group billing --from-beginning\n\nWithout --group the read is read-only (it works while another process owns the\ndirectory) and starts at the end of each partition unless --from-beginning or\n--offset says otherwise. With --group it joins the group (this needs the\ndirectory's lock), starts at the group's committed offsets and commits what it\nprints. Without --follow it stops at the end of the data (and, when it printed\nnothing, says why on stderr). --follow reads partitions added while it runs."
    )]
    Consume(ConsumeArgs),
    /// List, describe, reset and delete consumer groups.
    Groups(GroupsArgs),
    /// Print the batches and records of one segment file (or the entries of its index), with positions and CRC status.
    #[command(
        after_help = "Examples:\n  logbus dump ./data/orders/0/00000000000000000000.log\n  logbus dump ./data/orders/0/00000000000000000000.timeindex\n\nExits with code 1 if the file holds a damaged batch (or is a damaged index)."
    )]
    Dump(DumpArgs),
    /// Check the checksum of every batch of every segment.
    #[command(
        after_help = "Examples:\n  logbus --dir ./data verify\n  logbus --dir ./data verify orders\n\nExits with code 0 when everything is intact, 1 (with a report of each damaged\nsegment) when something is not."
    )]
    Verify(VerifyArgs),
    /// Copy Kafka topics into local topics of the same name and partition number, exactly once locally.
    #[cfg(feature = "kafka")]
    #[command(
        after_help = "Example:\n  logbus --dir ./data ingest --bootstrap-server localhost:9092 --topic orders --topic payments\n\nRuns until SIGINT or SIGTERM, then exits 0 after flushing. Each local record keeps the\nKafka record's key, value, headers and timestamp and gains the header kafka.origin\n(<topic>/<partition>/<offset>); a restart resumes after the last stored offset (no\ngap, no duplicate). A missing local topic is created with the Kafka partition count.\nNeeds the directory's lock."
    )]
    Ingest(IngestArgs),
    /// Copy local topics to a Kafka cluster, record by record, beside the directory's owner.
    #[cfg(feature = "kafka")]
    #[command(after_help = super::mirror::HELP)]
    Mirror(super::mirror::MirrorArgs),
}

/// Kafka's `--bootstrap-server`, accepted so Kafka commands work as typed; logbus has no server.
#[derive(Debug, Args)]
pub struct BootstrapArg {
    /// Ignored (logbus works on --dir); accepted for Kafka's commands.
    #[arg(long, value_name = "HOST:PORT", global = true, hide = true)]
    pub bootstrap_server: Option<String>,
}

/// `topics ...`: Kafka's `kafka-topics`; `--create`, `--list`, `--describe`,
/// `--alter` and `--delete` are hidden spellings of the subcommands.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArg,
    /// What to do.
    #[command(subcommand)]
    pub command: TopicsCommand,
}

/// `topics ...`
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    #[command(
        long_flag_alias = "create",
        after_help = "Examples:\n  logbus --dir ./data topics create orders --partitions 3 --retention-ms 604800000\n  logbus --dir ./data topics create orders --partitions 3 --if-not-exists\n\nKafka's spelling works too: logbus topics --create --topic orders --partitions 3.\nNames starting with '-' are refused (they are almost always a mistyped flag)."
    )]
    Create(CreateArgs),
    /// List the topics (read-only).
    #[command(long_flag_alias = "list", after_help = "Example:\n  logbus --dir ./data topics list")]
    List,
    /// Partitions, offsets, sizes, segment counts and settings of a topic, or of every topic (read-only).
    #[command(
        long_flag_alias = "describe",
        after_help = "Examples:\n  logbus --dir ./data topics describe orders\n  logbus --dir ./data topics describe          # every topic"
    )]
    Describe(OptionalTopicArg),
    /// Add partitions to a topic (partitions cannot be removed).
    #[command(
        long_flag_alias = "alter",
        after_help = "Examples:\n  logbus --dir ./data topics alter orders --partitions 6\n  logbus --dir ./data topics alter orders --add-config retention.ms=86400000\n  logbus --dir ./data topics alter orders --delete-config retention.ms\n\nAs in Kafka, keys may map to other partitions afterwards, and a count\nsmaller than or equal to the current one is an error. The settings that\ncan change on an existing topic are retention.ms and retention.bytes."
    )]
    Alter(AlterArgs),
    /// Delete a topic and all its records.
    #[command(
        long_flag_alias = "delete",
        after_help = "Example:\n  logbus --dir ./data topics delete orders"
    )]
    Delete(TopicArg),
}

/// `topics create`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("topic_name").required(true).args(["name", "topic"])))]
pub struct CreateArgs {
    /// The topic name: 1 to 249 characters of [A-Za-z0-9._-], not starting with '-'.
    pub name: Option<String>,
    /// Kafka's spelling of the topic name.
    #[arg(long, value_name = "NAME", hide = true)]
    pub topic: Option<String>,
    /// Number of partitions. Default: the broker config's num.partitions, else 1.
    #[arg(long)]
    pub partitions: Option<u32>,
    /// A Kafka `server.properties`: its topic defaults (num.partitions,
    /// log.retention.ms/minutes/hours, log.retention.bytes, log.segment.bytes,
    /// log.roll.ms/hours, message.max.bytes, log.message.timestamp.type) apply
    /// to the settings not given here.
    #[arg(long, value_name = "FILE", env = "LOGBUS_BROKER_CONFIG")]
    pub broker_config: Option<PathBuf>,
    /// Kafka's replication factor: logbus keeps one copy, so only 1 is accepted.
    #[arg(long, value_name = "N", hide = true)]
    pub replication_factor: Option<u32>,
    /// Succeed without changing anything when the topic exists.
    #[arg(long)]
    pub if_not_exists: bool,
    /// Delete whole segments whose newest record is older than this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<i64>,
    /// Delete the oldest whole segments while a partition is larger than this.
    #[arg(long, value_name = "BYTES")]
    pub retention_bytes: Option<u64>,
    /// Segment size at which a new segment file is started.
    #[arg(long, value_name = "BYTES")]
    pub segment_bytes: Option<u64>,
    /// Largest key + value + headers of one record.
    #[arg(long, value_name = "BYTES")]
    pub max_record_bytes: Option<u32>,
    /// A topic config with Kafka's name, e.g. `--config retention.ms=604800000`
    /// (repeatable; applied after the flags above).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
    /// What happens to old records: `delete` (retention deletes whole old
    /// segments), `compact` (keep the latest record of each key), or
    /// `compact,delete` (both). Kafka's `cleanup.policy`.
    #[arg(long, value_name = "POLICY", value_parser = parse_cleanup_policy)]
    pub cleanup_policy: Option<crate::CleanupPolicy>,
    /// How long a tombstone stays after compaction first reaches it (default one day).
    #[arg(long, value_name = "MS")]
    pub delete_retention_ms: Option<i64>,
    /// A segment is compacted only once its newest record is this old.
    #[arg(long, value_name = "MS")]
    pub min_compaction_lag_ms: Option<i64>,
    /// Dirty share of a partition's sealed bytes that starts a compaction pass (default 0.5).
    #[arg(long, value_name = "RATIO")]
    pub min_cleanable_dirty_ratio: Option<f64>,
}

/// Kafka's spellings of `cleanup.policy`.
fn parse_cleanup_policy(s: &str) -> Result<crate::CleanupPolicy, String> {
    match s {
        "delete" => Ok(crate::CleanupPolicy::Delete),
        "compact" => Ok(crate::CleanupPolicy::Compact),
        "compact,delete" | "delete,compact" => Ok(crate::CleanupPolicy::CompactAndDelete),
        _ => Err(format!(
            "unknown cleanup policy '{s}': use delete, compact or compact,delete"
        )),
    }
}

/// A topic name, positional or as Kafka's `--topic NAME`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("topic_name").required(true).args(["name", "topic"])))]
pub struct TopicArg {
    /// The topic name.
    pub name: Option<String>,
    /// Kafka's spelling of the topic name.
    #[arg(long, value_name = "NAME", hide = true)]
    pub topic: Option<String>,
}

impl TopicArg {
    /// The name, however it was given (clap requires one of the two).
    pub fn name(&self) -> &str {
        self.name.as_deref().or(self.topic.as_deref()).unwrap_or_default()
    }
}

/// An optional topic name (none: every topic).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("topic_name").args(["name", "topic"])))]
pub struct OptionalTopicArg {
    /// The topic name (default: every topic).
    pub name: Option<String>,
    /// Kafka's spelling of the topic name.
    #[arg(long, value_name = "NAME", hide = true)]
    pub topic: Option<String>,
}

/// `topics alter`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["partitions", "add_config", "delete_config"])))]
pub struct AlterArgs {
    #[command(flatten)]
    pub topic: TopicArg,
    /// The new, larger number of partitions.
    #[arg(long, value_name = "N")]
    pub partitions: Option<u32>,
    /// Kafka's `--add-config KEY=VALUE[,KEY=VALUE...]` (repeatable): settings a
    /// live topic can change (retention.ms, retention.bytes).
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub add_config: Vec<String>,
    /// Kafka's `--delete-config KEY[,KEY...]` (repeatable): back to the default.
    #[arg(long, value_name = "KEY,...")]
    pub delete_config: Vec<String>,
}

/// `produce`
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic to write to.
    #[arg(required_unless_present = "topic_flag")]
    pub topic: Option<String>,
    /// Kafka's spelling of the topic argument.
    #[arg(long = "topic", value_name = "T", hide = true, conflicts_with = "topic")]
    pub topic_flag: Option<String>,
    /// Kafka's `--bootstrap-server` (or older `--broker-list`): accepted and ignored (logbus reads --dir).
    #[arg(long, value_name = "HOST:PORT", hide = true, alias = "broker-list")]
    pub bootstrap_server: Option<String>,
    /// Kafka's `--property NAME=VALUE`: `parse.key=true`, `key.separator=SEP`.
    #[arg(long = "property", value_name = "NAME=VALUE", hide = true)]
    pub properties: Vec<String>,
    /// Skip (and report on stderr) lines without the key separator instead of stopping at the first one.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Split each line at the first SEP into key and value (a line without SEP is an error).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Add a header NAME=VALUE to every record (repeatable, order kept).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Send every record to this partition.
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
}

/// Output format of `consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The value (and the fields asked for with --print-*), tab-separated.
    Text,
    /// One JSON object per record with every field; bytes that are not
    /// UTF-8 are base64 with an `*_encoding: "base64"` marker field.
    Json,
}

/// `consume`
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic to read.
    #[arg(required_unless_present = "topic_flag")]
    pub topic: Option<String>,
    /// Kafka's spelling of the topic argument.
    #[arg(long = "topic", value_name = "T", hide = true, conflicts_with = "topic")]
    pub topic_flag: Option<String>,
    /// Kafka's `--bootstrap-server` (or older `--broker-list`): accepted and ignored (logbus reads --dir).
    #[arg(long, value_name = "HOST:PORT", hide = true, alias = "broker-list")]
    pub bootstrap_server: Option<String>,
    /// Kafka's `--property NAME=VALUE`: `print.key`, `print.timestamp`, `print.offset`, `print.partition`, `print.headers`, `key.separator`.
    #[arg(long = "property", value_name = "NAME=VALUE", hide = true)]
    pub properties: Vec<String>,
    /// Start at the first stored offset (for a group: when it has no committed offset).
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Read as a member of this consumer group, committing what is printed (needs the directory's lock).
    #[arg(long, value_name = "G", conflicts_with_all = ["partition", "offset"])]
    pub group: Option<String>,
    /// Read only this partition.
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// Start at this offset (needs --partition); also `earliest` or `latest`.
    #[arg(long, value_name = "O", requires = "partition")]
    pub offset: Option<String>,
    /// Stop after printing this many records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Keep waiting for new records at the end (until interrupted or --max-messages).
    #[arg(long)]
    pub follow: bool,
    /// Print the key (text format).
    #[arg(long)]
    pub print_key: bool,
    /// Print partition:offset (text format).
    #[arg(long)]
    pub print_offset: bool,
    /// Print the timestamp in ms since the epoch (text format).
    #[arg(long)]
    pub print_timestamp: bool,
    /// Print the headers as name=value,... (text format).
    #[arg(long)]
    pub print_headers: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Between the printed fields of the text format (a tab unless Kafka's `--property key.separator=SEP`).
    #[arg(skip)]
    pub field_separator: Option<String>,
}

/// `groups ...`: Kafka's `kafka-consumer-groups`; `--list`, `--describe`,
/// `--reset-offsets` and `--delete` are hidden spellings of the subcommands.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArg,
    /// What to do.
    #[command(subcommand)]
    pub command: GroupsCommand,
}

/// `groups ...`
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List groups that have committed offsets (read-only).
    #[command(long_flag_alias = "list", after_help = "Example:\n  logbus --dir ./data groups list")]
    List,
    /// Committed offset, end offset and lag of a group on each partition (read-only).
    #[command(
        long_flag_alias = "describe",
        after_help = "Example:\n  logbus --dir ./data groups describe billing\n\nColumns are Kafka's: GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG\nCONSUMER-ID HOST CLIENT-ID. Live members are held in the memory of the process\nthat owns the directory, so this command (which reads the files) shows '-' for\nCONSUMER-ID, HOST and CLIENT-ID. Notes go to stderr."
    )]
    Describe(GroupArg),
    /// Preview, or with --execute set, a group's committed offsets.
    #[command(
        long_flag_alias = "reset-offsets",
        after_help = "Examples:\n  logbus --dir ./data groups reset-offsets billing --topic orders --to-earliest            # preview\n  logbus --dir ./data groups reset-offsets billing --topic orders --to-earliest --execute  # write\n  logbus --dir ./data groups reset-offsets billing --topic orders:0,2 --shift-by -10 --execute\n  logbus --dir ./data groups reset-offsets billing --all-topics --to-datetime 2024-05-01T12:00:00.000Z\n  logbus --dir ./data groups reset-offsets billing --all-topics --by-duration PT1H\n\nAs in Kafka, nothing is written without --execute: the plan (GROUP TOPIC PARTITION\nNEW-OFFSET) is printed and a note on stderr says so. --to-offset and --shift-by are\nclamped to each partition's first stored offset and end, with a warning.\n--to-datetime takes YYYY-MM-DDTHH:mm:SS.sss with an optional zone (Z, +HH:mm);\nwithout a zone it is UTC. --all-topics means every topic the group has committed on.\nNeeds the directory's lock (the group must have no live members), so the process\nthat owns the directory must be stopped first."
    )]
    ResetOffsets(ResetArgs),
    /// Delete a group's committed offsets.
    #[command(
        long_flag_alias = "delete",
        after_help = "Example:\n  logbus --dir ./data groups delete billing\n\nLive members exist only in the process that owns the directory; this command\nneeds the directory's lock, so it fails (\"locked by ... (pid N)\") while that process runs."
    )]
    Delete(GroupArg),
}

/// A group id, positional or as Kafka's `--group G`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("group_id").required(true).args(["group", "group_flag"])))]
pub struct GroupArg {
    /// The group id.
    pub group: Option<String>,
    /// Kafka's spelling of the group id.
    #[arg(long = "group", id = "group_flag", value_name = "G", hide = true)]
    pub group_flag: Option<String>,
}

impl GroupArg {
    /// The group id, however it was given (clap requires one of the two).
    pub fn id(&self) -> &str {
        self.group.as_deref().or(self.group_flag.as_deref()).unwrap_or_default()
    }
}

/// `groups reset-offsets`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime", "by_duration"])))]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
pub struct ResetArgs {
    #[command(flatten)]
    pub group: GroupArg,
    /// A topic whose offsets to reset, or TOPIC:P,P,... for some partitions (repeatable).
    #[arg(long, value_name = "T[:P,...]")]
    pub topic: Vec<String>,
    /// Every topic the group has committed offsets on.
    #[arg(long, conflicts_with = "topic")]
    pub all_topics: bool,
    /// Only this partition (with one --topic; default: every partition).
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// Reset to the first stored offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// Reset to the end (skip everything stored now).
    #[arg(long)]
    pub to_latest: bool,
    /// Reset to this offset (clamped to each partition's first stored offset and end).
    #[arg(long, value_name = "N")]
    pub to_offset: Option<u64>,
    /// Move the committed offset by N (negative: back), clamped like --to-offset.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Reset to the first record at or after this time: YYYY-MM-DDTHH:mm:SS.sss[Z|+HH:mm].
    #[arg(long, value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// Reset to the first record at or after now minus this ISO-8601 duration (e.g. PT1H, P1DT30M).
    #[arg(long, value_name = "DURATION")]
    pub by_duration: Option<String>,
    /// Only print the plan (the default; Kafka's flag).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Write the new offsets.
    #[arg(long)]
    pub execute: bool,
}

/// `dump`
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// A segment file (`<dir>/<topic>/<partition>/<20 digits>.log`), or its `.index` / `.timeindex`.
    #[arg(required_unless_present = "files")]
    pub path: Option<PathBuf>,
    /// Kafka's spelling of the path argument.
    #[arg(long, value_name = "PATH", hide = true, conflicts_with = "path")]
    pub files: Option<PathBuf>,
    /// Kafka's `--print-data-log`: accepted; records are printed unless --batches-only.
    #[arg(long, hide = true, conflicts_with = "batches_only")]
    pub print_data_log: bool,
    /// Print batches only, not their records.
    #[arg(long)]
    pub batches_only: bool,
}

/// The topic given as the positional argument or as Kafka's `--topic`.
pub(super) fn topic_of(positional: &Option<String>, flag: &Option<String>) -> String {
    positional.clone().or_else(|| flag.clone()).unwrap_or_default()
}

/// `verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this topic (default: every topic).
    pub topic: Option<String>,
}

/// `ingest`
#[cfg(feature = "kafka")]
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The Kafka cluster: HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// A Kafka topic to copy (repeatable).
    #[arg(long, value_name = "T", required = true)]
    pub topic: Vec<String>,
    /// The Kafka consumer group (default: logbus-ingest).
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Read every partition by manual assignment instead of joining the group (no join delay).
    #[arg(long)]
    pub assign: bool,
    /// A raw librdkafka setting KEY=VALUE (repeatable), e.g. security.protocol=SSL.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Parses the process's arguments. clap's tip for an unknown flag ("to pass
/// '--x' as a value, use '-- --x'") is left out: following it would make the
/// flag a topic or group name.
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::error::{ContextKind, ErrorKind};
    use clap::CommandFactory;
    Cli::try_parse().map_err(|e| {
        if e.kind() != ErrorKind::UnknownArgument || e.get(ContextKind::Suggested).is_none() {
            return e;
        }
        let mut cleaned = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(&Cli::command());
        for (kind, value) in e.context() {
            if kind != ContextKind::Suggested {
                cleaned.insert(kind, value.clone());
            }
        }
        cleaned
    })
}
