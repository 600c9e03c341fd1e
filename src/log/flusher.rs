//! The background threads of a broker (or of a standalone `Log`): one for
//! interval fsyncs, recovery checkpoints, time-based retention and eviction
//! of group members that stopped polling; one for extending active segments
//! ahead of their writers.

use std::time::Duration;

use crossbeam_channel::{select, Receiver, RecvTimeoutError};

use super::thread::StoppableThread;
use crate::config::Durability;

/// The tick period for a durability mode and checkpoint interval.
pub(crate) fn tick_for(durability: Durability, checkpoint_every: Duration) -> Duration {
    let mut tick = checkpoint_every.min(Duration::from_millis(100));
    if let Durability::Interval(d) = durability {
        tick = tick.min(d / 2);
    }
    tick.max(Duration::from_millis(1))
}

/// Handle on the background threads; stopping joins them.
///
/// Two threads: `logbus-flusher` runs the periodic work, `logbus-grow`
/// extends active segments ahead of their writers. They are separate so
/// that growth never waits behind a tick: over many partitions a tick can
/// take seconds (a first live checkpoint creates a file per partition, each
/// an inode allocation), and writers that catch up with their files in the
/// meantime zero-fill pages themselves (BENCHMARKS.md, "partitions").
#[derive(Debug)]
pub(crate) struct Flusher {
    ticks: StoppableThread,
    growth: StoppableThread,
}

impl Flusher {
    /// Starts the threads: `work` runs every `tick` and returns false once
    /// its owner is gone; `prealloc` receives segment-extension requests
    /// (see `log::mmap::Growth`).
    pub(crate) fn spawn(
        tick: Duration,
        work: impl Fn() -> bool + Send + 'static,
        prealloc: Receiver<(std::sync::Arc<crate::log::mmap::Growth>, usize)>,
    ) -> std::io::Result<Flusher> {
        let ticks = StoppableThread::spawn("logbus-flusher", move |stopped| loop {
            match stopped.recv_timeout(tick) {
                Err(RecvTimeoutError::Timeout) => {
                    if !work() {
                        return;
                    }
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        })?;
        let growth = StoppableThread::spawn("logbus-grow", move |stopped| loop {
            select! {
                recv(stopped) -> _ => return,
                recv(prealloc) -> job => match job {
                    // A failure (full disk) leaves the writer to grow inline
                    // and report the error to its caller.
                    Ok((growth, target)) => {
                        let _ = growth.extend_ahead(target);
                    }
                    // Every log holding a sender is gone.
                    Err(_) => return,
                },
            }
        })?;
        Ok(Flusher { ticks, growth })
    }

    pub(crate) fn stop(&mut self) {
        self.ticks.stop();
        self.growth.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::Flusher;
    use crate::log::mmap::SegmentMap;

    /// A tick that takes long (over many partitions, creating their first
    /// live checkpoint files) must not hold up the growth of a segment whose
    /// writer is catching up with its file.
    #[test]
    fn growth_is_served_while_a_tick_is_running() {
        let (entered_tx, entered) = crossbeam_channel::bounded(1);
        let (release, released) = crossbeam_channel::bounded::<()>(1);
        // Every tick blocks until the test releases (or drops) `release`.
        let work = move || {
            let _ = entered_tx.try_send(());
            let _ = released.recv();
            true
        };
        let (requests, prealloc) = crossbeam_channel::bounded(16);
        let mut flusher = Flusher::spawn(Duration::from_millis(1), work, prealloc).unwrap();
        entered
            .recv_timeout(Duration::from_secs(10))
            .expect("the first tick started");

        let dir = tempfile::tempdir().unwrap();
        let file = crate::fs::create_or_open(&dir.path().join("s.log")).unwrap();
        let (_map, mut writer) = SegmentMap::writable(file, 1 << 20, 0).unwrap();
        let (growth, target) = writer.prealloc_request().expect("a new segment asks for room");
        requests.send((Arc::clone(&growth), target)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while growth.allocated() < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let allocated = growth.allocated();
        drop(release);
        flusher.stop();
        assert!(
            allocated >= target,
            "grown to {allocated} of {target} bytes while a tick ran"
        );
    }
}
