//! Wake-ups for threads blocked waiting for new data or a rebalance.
//!
//! Notifiers pay one fence and one relaxed load when nobody waits: the list is
//! only locked when a waiter is registered. Waiters register, re-check their
//! condition, then park; the fences on both sides (Dekker style) guarantee
//! that either the waiter sees the new state or the notifier sees the waiter.
//! A log's appends skip the fence: its consumers register under the writer
//! lock, and the append checks for waiters under that lock
//! ([`WaitList::registered_under_lock`]).

use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;

use parking_lot::Mutex;

/// Threads waiting on one source of events.
#[derive(Debug, Default)]
pub struct WaitList {
    count: AtomicUsize,
    next_id: AtomicU64,
    threads: Mutex<Vec<(u64, Thread)>>,
}

impl WaitList {
    /// Wakes every registered waiter. Cheap when there is none.
    #[inline]
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.wake_all();
    }

    /// Whether a waiter is registered, without the fence of
    /// [`notify`](Self::notify): only for a notifier whose waiters register
    /// while holding a lock that the notifier holds across its state change
    /// and this call. The lock orders the two: either the notifier sees the
    /// registration, or the waiter's re-check (after its lock) sees the state.
    #[inline]
    pub fn registered_under_lock(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// Wakes every registered waiter (after [`registered_under_lock`](Self::registered_under_lock)).
    pub fn wake_all(&self) {
        for (_, t) in self.threads.lock().iter() {
            t.unpark();
        }
    }

    /// Registers the current thread; the caller must re-check its condition
    /// after this and before parking, then [`unregister`](Self::unregister).
    pub fn register(&self) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.threads.lock().push((id, std::thread::current()));
        self.count.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        id
    }

    /// Removes a registration.
    pub fn unregister(&self, id: u64) {
        let mut threads = self.threads.lock();
        let before = threads.len();
        threads.retain(|(i, _)| *i != id);
        if threads.len() < before {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
