//! Wake-ups for threads blocked waiting for new data or a rebalance.
//!
//! Notifiers pay one fence and one relaxed load when nobody waits: the list is
//! only locked when a waiter is registered. Waiters register, re-check their
//! condition, then park; the fences on both sides (Dekker style) guarantee
//! that either the waiter sees the new state or the notifier sees the waiter.
//! A log's appends skip the fence: its consumers register under the writer
//! lock, and the append checks for waiters under that lock
//! ([`WaitList::registered_under_lock`]).
//!
//! A waiter is a parked thread (a blocking call) or a task's `Waker` (a
//! future of the `async` feature); both sit in the same list and are woken
//! by the same notifications.

use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;
use std::thread::Thread;

use parking_lot::Mutex;

/// Who to wake: a thread parked in a blocking call, or an async task.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    Thread(Thread),
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    Task(Waker),
}

impl Waiter {
    /// The calling thread.
    pub(crate) fn current() -> Waiter {
        Waiter::Thread(std::thread::current())
    }

    pub(crate) fn wake(&self) {
        match self {
            Waiter::Thread(t) => t.unpark(),
            Waiter::Task(w) => w.wake_by_ref(),
        }
    }
}

/// Threads and tasks waiting on one source of events.
#[derive(Debug, Default)]
pub struct WaitList {
    count: AtomicUsize,
    next_id: AtomicU64,
    threads: Mutex<Vec<(u64, Waiter)>>,
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
        for (_, w) in self.threads.lock().iter() {
            w.wake();
        }
    }

    /// Registers a waiter; the caller must re-check its condition after this
    /// and before parking (or returning `Pending`), then
    /// [`unregister`](Self::unregister).
    pub(crate) fn register(&self, waiter: Waiter) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.threads.lock().push((id, waiter));
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
