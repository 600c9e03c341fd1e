//! The `logbus` command-line tool (feature `cli`), run as a separate process.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod io;
mod terms;
mod workflow;
