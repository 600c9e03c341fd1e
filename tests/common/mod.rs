//! Helpers shared by every test binary: each `tests/<area>/main.rs` includes
//! this module and uses some of it.
#![allow(dead_code, unused_imports)]

mod child;
mod dirs;
mod rng;
mod segments;
#[cfg(feature = "fault-injection")]
mod slow_fsync;
mod txn;
mod wait;

pub use child::{kill_after, rerun_self};
pub use dirs::copy_dir;
pub use rng::Rng;
pub use segments::{batches, read_all, segment_bases, segment_paths};
#[cfg(feature = "fault-injection")]
pub use slow_fsync::SlowFsyncOnce;
pub use txn::read_committed;
pub use wait::{wait_until, Deadline, PATIENCE};

/// Held for its whole run by every test that uses `logbus::testing`: its
/// switches (failing fsyncs, the sync observer) act on every log in the
/// process, so two such tests must not overlap.
pub fn process_wide_faults() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding it leaves nothing to protect.
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
