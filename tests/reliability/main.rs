//! Reliability under crashes, a full disk, hostile input and concurrency
//! (issue 6). Several tests re-run this binary as a child process.

#[path = "../common/mod.rs"]
mod common;

mod disk_full;
mod hostile;
mod kill_compaction;
mod kill_loop;
mod power_loss;
mod stress;
