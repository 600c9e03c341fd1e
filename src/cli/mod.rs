//! The `logbus` command-line tool (feature `cli`): Kafka's `kafka-topics`,
//! `kafka-console-producer`, `kafka-console-consumer`, `kafka-consumer-groups`
//! and `kafka-dump-log` for a logbus directory.
//!
//! Inspection commands read the files through [`crate::inspect`] without
//! taking the directory lock, so they work next to a running owner; writing
//! commands open a [`Broker`](crate::Broker) and so need the lock.

mod args;
mod consume;
mod groups;
#[cfg(feature = "kafka")]
mod ingest;
#[cfg(feature = "kafka")]
mod mirror;
mod output;
mod produce;
mod reset;
#[cfg(feature = "kafka")]
mod signals;
mod tools;
mod topics;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use args::Cli;
use args::Command;

/// A failure to report: one line on stderr, then this exit code.
#[derive(Debug)]
pub struct CliError {
    /// The message (without the "error: " prefix).
    pub message: String,
    /// The process exit code.
    pub code: u8,
}

impl CliError {
    fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<crate::Error> for CliError {
    fn from(e: crate::Error) -> CliError {
        CliError::new(cli_terms(&e))
    }
}

/// A library error in the tool's terms: commands and flags, not API names and fields.
pub(crate) fn cli_terms(e: &crate::Error) -> String {
    use crate::Error;
    match e {
        Error::UnknownTopic { topic } => format!(
            "unknown topic '{topic}'; create it first with `logbus topics create {topic}` (topics are never auto-created)"
        ),
        Error::TopicExists { topic } => format!(
            "topic '{topic}' already exists; use another name, or delete it first with `logbus topics delete {topic}`"
        ),
        Error::RecordTooLarge { topic, size, max } => format!(
            "record of {size} bytes is too large for topic '{topic}' (limit {max} bytes for key + value + headers); split it, or use a topic created with a larger `--max-record-bytes` (`logbus topics create`)"
        ),
        Error::InvalidConfig { field, value, reason } => {
            format!("invalid {} {value}: {reason}", flag_of(field))
        }
        Error::Locked { path, pid } => format!(
            "{} is locked by {}; stop that process first, or use a read-only command (topics list/describe, consume without --group, groups list/describe, dump, verify)",
            path.display(),
            holder(*pid)
        ),
        Error::OffsetOutOfRange {
            topic,
            partition,
            offset,
            start,
            end,
        } => format!(
            "offset {offset} is out of range for topic '{topic}' partition {partition} (stored offsets are {start}..{end}); give an offset in that range, or `earliest` / `latest`"
        ),
        e => e
            .to_string()
            .replace("Broker::create_topic", "`logbus topics create`")
            .replace("(run `verify`,", "(run `logbus verify`,")
            .replace("reopen the broker to recover", "run the command again to recover")
            .replace("open it again with Broker::open", "run the command again"),
    }
}

/// The command-line flag of a library setting, e.g. `--max-record-bytes` for `max_record_bytes`.
fn flag_of(field: &str) -> String {
    let name = field.rsplit('.').next().unwrap_or(field);
    match name {
        "max_record_bytes" | "segment_bytes" | "retention_ms" | "retention_bytes" | "partitions" => {
            format!("--{}", name.replace('_', "-"))
        }
        _ => field.to_string(),
    }
}

/// The process holding a directory's lock, named by its command line when
/// `/proc` shows it: "`logbus consume --group billing orders` (pid 42)".
fn holder(pid: Option<u32>) -> String {
    let Some(pid) = pid else {
        return "another process".to_string();
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut args = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let Some(program) = args.next() else {
        return format!("pid {pid}");
    };
    let program = Path::new(&program)
        .file_name()
        .map_or(program.clone(), |n| n.to_string_lossy().into_owned());
    let mut line = std::iter::once(program).chain(args).collect::<Vec<_>>().join(" ");
    if line.chars().count() > 80 {
        line = format!("{}…", line.chars().take(80).collect::<String>());
    }
    format!("`{line}` (pid {pid})")
}

/// A note for the user: always on stderr, so standard output stays parseable.
pub(crate) fn note(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader of our output went away (`| head`): stop quietly.
            return CliError {
                message: String::new(),
                code: 0,
            };
        }
        CliError::new(format!("writing output: {e}"))
    }
}

type CliResult<T = ()> = std::result::Result<T, CliError>;

/// Runs the tool with the process's arguments; the body of `src/bin/logbus.rs`.
pub fn main() -> ExitCode {
    let cli = match args::parse() {
        Ok(c) => c,
        Err(e) => {
            // Usage errors print clap's message (exit 2); --help and --version exit 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if !e.message.is_empty() {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "error: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}

/// Runs one parsed command; returns the exit code.
pub fn run(cli: Cli) -> CliResult<u8> {
    let dir = cli.dir;
    match cli.command {
        Command::Topics(a) => topics::run(dir, a),
        Command::Produce(a) => produce::run(&existing_dir(dir)?, a),
        Command::Consume(a) => consume::run(&existing_dir(dir)?, a),
        Command::Groups(a) => groups::run(dir, a),
        Command::Dump(a) => tools::dump(a),
        Command::Verify(a) => tools::verify(&existing_dir(dir)?, a.topic.as_deref()),
        #[cfg(feature = "kafka")]
        Command::Ingest(a) => ingest::run(&data_dir(dir)?, a),
        #[cfg(feature = "kafka")]
        Command::Mirror(a) => mirror::run(&existing_dir(dir)?, a),
    }
}

/// The `--dir` / `LOGBUS_DIR` value; a path that exists must be a logbus directory.
fn data_dir(dir: Option<PathBuf>) -> CliResult<PathBuf> {
    let dir = dir.ok_or_else(|| CliError {
        message: "no data directory given: pass --dir DATA or set LOGBUS_DIR".to_string(),
        code: 2,
    })?;
    match std::fs::metadata(&dir) {
        Ok(m) if !m.is_dir() => Err(CliError::new(format!(
            "{} is a file, not a logbus data directory; pass the directory that holds the topics",
            dir.display()
        ))),
        Ok(_) if !is_logbus_dir(&dir) => Err(CliError::new(format!(
            "{} is not a logbus data directory (no @lock file and no topics, but other files); pass the data directory your application opens, or a new or empty one",
            dir.display()
        ))),
        _ => Ok(dir),
    }
}

/// Whether `dir` holds a logbus directory's lock file or a topic, or is empty.
fn is_logbus_dir(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        // Unreadable: let the command report the I/O error itself.
        return true;
    };
    let mut empty = true;
    for entry in entries.flatten() {
        empty = false;
        let path = entry.path();
        if entry.file_name() == "@lock" || path.join("topic.meta").is_file() {
            return true;
        }
    }
    empty
}

/// The data directory, which must exist (only `topics create` makes a new one).
fn existing_dir(dir: Option<PathBuf>) -> CliResult<PathBuf> {
    let dir = data_dir(dir)?;
    if !dir.is_dir() {
        return Err(CliError::new(format!(
            "{} is not a logbus data directory (it does not exist); create a topic there first with `logbus --dir {} topics create NAME`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(dir)
}

/// Opens the broker for a writing command (takes the directory lock).
fn open_broker(dir: &Path) -> CliResult<crate::Broker> {
    Ok(crate::Broker::open(dir)?)
}
