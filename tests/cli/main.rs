//! The `logbus` command-line tool (feature `cli`), run as a separate process.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod compaction;
mod errors;
mod io;
mod kafka_flags;
mod kafka_quickstart;
mod reset_offsets;
mod run;
mod terms;
mod transactions;
mod workflow;
