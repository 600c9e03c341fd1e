//! Tests that use `logbus::testing` fault injection (feature
//! `fault-injection`). Its switches (failing fsyncs, the sync observer) are
//! process-wide, so these tests live in their own binary and each holds
//! [`common::process_wide_faults`] while it runs.
#![cfg(feature = "fault-injection")]

#[path = "../common/mod.rs"]
mod common;

mod clean_close;
mod compaction_power;
mod fsync_failure;
mod live_checkpoint;
mod seam;
mod txn_power_loss;
