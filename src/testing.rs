//! Fault injection for tests (feature `fault-injection`). Not part of the
//! stable API and not for production: the switch is process-wide.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::RwLock;

static FAIL_FSYNCS: AtomicU32 = AtomicU32::new(0);

/// Makes the next `n` segment fsyncs (group-commit rounds, flushes,
/// checkpoints) of every log in the process fail, as a disk error would.
pub fn fail_next_fsyncs(n: u32) {
    FAIL_FSYNCS.store(n, Ordering::SeqCst);
}

/// Consumes one pending injected failure, if any.
pub(crate) fn take_fsync_failure() -> bool {
    FAIL_FSYNCS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// What an fsync made durable, as reported to the observer set with
/// [`set_sync_observer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A successful fdatasync/fsync of this file: a segment, an index file,
    /// `recovery.ckpt`, the offsets log, or a file written by
    /// `fs::write_atomic` (reported under its final name, after the rename).
    File(PathBuf),
    /// A successful fsync of this directory: creations, renames and deletions
    /// in it are durable.
    Dir(PathBuf),
}

/// The observer's type.
pub type SyncObserver = Box<dyn Fn(SyncEvent) + Send + Sync>;

static OBSERVER: RwLock<Option<SyncObserver>> = RwLock::new(None);

/// Installs (or, with `None`, removes) a process-wide observer called after
/// every successful fsync, on the syncing thread, before the fsync's caller
/// goes on (so before an append it covers is acknowledged). Tests use it to
/// snapshot what is durable at each point and build power-loss states.
pub fn set_sync_observer(observer: Option<SyncObserver>) {
    *OBSERVER.write() = observer;
}

/// Reports an event to the observer, if one is installed.
pub(crate) fn synced(event: impl FnOnce() -> SyncEvent) {
    if let Some(observer) = OBSERVER.read().as_ref() {
        observer(event());
    }
}

/// The hook's type: called with the path of a file about to be opened for
/// writing, and created if missing.
pub type CreateHook = Box<dyn Fn(&Path) + Send + Sync>;

static CREATE_HOOK: RwLock<Option<CreateHook>> = RwLock::new(None);

/// Installs (or, with `None`, removes) a process-wide hook called on the
/// opening thread before logbus opens a file that it creates if missing (a
/// segment, index and checkpoint files, the offsets and transaction logs).
/// Tests use it to hold a creation and check what waits for it.
pub fn set_create_hook(hook: Option<CreateHook>) {
    *CREATE_HOOK.write() = hook;
}

/// Calls the create hook, if one is installed.
pub(crate) fn creating(path: &Path) {
    if let Some(hook) = CREATE_HOOK.read().as_ref() {
        hook(path);
    }
}
