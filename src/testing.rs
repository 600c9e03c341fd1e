//! Fault injection for tests (feature `fault-injection`). Not part of the
//! stable API and not for production: the switch is process-wide.

use std::sync::atomic::{AtomicU32, Ordering};

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
