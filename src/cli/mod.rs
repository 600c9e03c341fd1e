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
        CliError::new(e.to_string())
    }
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

/// The `--dir` / `LOGBUS_DIR` value.
fn data_dir(dir: Option<PathBuf>) -> CliResult<PathBuf> {
    dir.ok_or_else(|| CliError::new("no data directory given: pass --dir DATA or set LOGBUS_DIR"))
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
