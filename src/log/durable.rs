//! Waiting for durability without a thread per wait (feature `async`).
//!
//! An async append is written at once, as a blocking one is; only the wait
//! for its fsync is a future. The future's waker joins `SyncState::tasks`,
//! which every group-commit round wakes when it ends, whoever led it: a
//! blocking writer, a checkpoint, or one of the sync threads here. When a
//! task finds no round running, it asks the sync threads for one and
//! returns `Pending`; thousands of pending sends then share that round's
//! fdatasync, as thousands of blocking writers would.
//!
//! The sync threads (`logbus-sync`, a few per process, started on first
//! use) only run `sync_to` for the logs that asked. A future never blocks
//! in `poll` on an fsync, except when those threads cannot be started.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};

use super::{Appended, Log, LogInner};
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::format::batch::Encode;

/// How many threads run requested rounds: rounds of different logs run in
/// parallel, as those of blocking writers on different partitions do.
const SYNC_THREADS: usize = 4;

/// Resolves once the records of an append are as durable as the log's
/// `Durability` promises: at once unless it is `Sync`, else after the
/// group-commit round that covers them.
#[must_use = "a durability wait does nothing unless polled"]
pub(crate) struct Durable {
    /// `None`: nothing to wait for.
    log: Option<Arc<LogInner>>,
    /// Every offset below it must be durable.
    target: u64,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("log", &self.log.as_ref().map(|l| &l.dir))
            .field("target", &self.target)
            .finish()
    }
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &self.log {
            None => Poll::Ready(Ok(())),
            Some(log) => log.poll_durable(self.target, cx),
        }
    }
}

impl Log {
    /// Appends now (so the order of calls is the order in the log) and
    /// returns the wait for durability as a future, instead of waiting in
    /// the call as [`append`](Self::append) does under `Durability::Sync`.
    pub(crate) fn append_deferred<R: Encode>(
        &self,
        records: &[R],
        compression: Option<crate::compression::Compression>,
    ) -> Result<(Appended, Durable)> {
        let appended = self.inner.append_then(records, compression, false)?;
        let sync = self.inner.config.durability == Durability::Sync;
        let wait = Durable {
            log: sync.then(|| Arc::clone(&self.inner)),
            target: appended.base_offset + appended.count as u64,
        };
        Ok((appended, wait))
    }
}

impl LogInner {
    /// `sync_to(target)` as a poll: ready when every offset below `target`
    /// is durable (or the log is poisoned or closed), else registers the
    /// task's waker for the end of the next round and makes sure one runs.
    fn poll_durable(self: &Arc<Self>, target: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut s = self.sync.lock();
        // A truncation may have removed what was waited for.
        let target = target.min(self.end_offset());
        if let Some(cause) = &s.poisoned {
            return Poll::Ready(Err(self.poisoned_error(cause)));
        }
        if s.durable >= target {
            return Poll::Ready(Ok(()));
        }
        if self.closed.load(Ordering::Acquire) {
            return Poll::Ready(Err(Error::Closed));
        }
        s.tasks.push(cx.waker().clone());
        // A running round wakes this task when it ends; else ask for one
        // (once: tasks arriving before it starts only add their wakers).
        let ask = !s.syncing && !std::mem::replace(&mut s.requested, true);
        drop(s);
        if ask && !request(Arc::downgrade(self)) {
            // No sync thread: run the round here; it wakes this task.
            self.serve_request();
        }
        Poll::Pending
    }

    /// A requested round: makes everything appended so far durable. Its end
    /// wakes the waiting tasks; a failure reaches them as the poisoned state.
    fn serve_request(&self) {
        self.sync.lock().requested = false;
        if self.closed.load(Ordering::Acquire) {
            self.wake_durable_waiters();
            return;
        }
        let _ = self.sync_to(self.end_offset());
    }
}

/// Hands a log to the sync threads; false if they could not be started.
fn request(log: Weak<LogInner>) -> bool {
    static SYNC: OnceLock<Option<crossbeam_channel::Sender<Weak<LogInner>>>> = OnceLock::new();
    let tx = SYNC.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<Weak<LogInner>>();
        let mut started = 0;
        for i in 0..SYNC_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("logbus-sync-{i}"))
                .spawn(move || {
                    for log in rx {
                        if let Some(log) = log.upgrade() {
                            log.serve_request();
                        }
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(tx)
    });
    tx.as_ref().is_some_and(|tx| tx.send(log).is_ok())
}
