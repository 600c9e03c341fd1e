//! Transactions (issue 15): atomic appends across partitions, read_committed,
//! the last stable offset, offsets that commit with the output, crashes.

#[path = "../common/mod.rs"]
mod common;

mod concurrency;
mod kill_loop;
mod model;
mod recovery;
mod visibility;
