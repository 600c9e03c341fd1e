//! The background thread of a broker (or of a standalone `Log`): interval
//! fsyncs, recovery checkpoints, time-based retention, eviction of group
//! members that stopped polling, and extending active segments ahead of
//! their writers.

use std::time::Duration;

use crossbeam_channel::{select, Receiver};

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

/// Handle on the background thread; stopping joins it.
#[derive(Debug)]
pub(crate) struct Flusher(StoppableThread);

impl Flusher {
    /// Starts the thread: `work` runs every `tick` and returns false once
    /// its owner is gone; `prealloc` receives segment-extension requests
    /// (see `log::mmap::Growth`).
    pub(crate) fn spawn(
        tick: Duration,
        work: impl Fn() -> bool + Send + 'static,
        prealloc: Receiver<(std::sync::Arc<crate::log::mmap::Growth>, usize)>,
    ) -> std::io::Result<Flusher> {
        let thread = StoppableThread::spawn("logbus-flusher", move |stopped| {
            let mut next_tick = std::time::Instant::now() + tick;
            loop {
                let wait = next_tick.saturating_duration_since(std::time::Instant::now());
                select! {
                    recv(stopped) -> _ => return,
                    recv(prealloc) -> job => {
                        // A failure (full disk) leaves the writer to grow inline
                        // and report the error to its caller.
                        if let Ok((growth, target)) = job {
                            let _ = growth.extend_ahead(target);
                        }
                        continue;
                    }
                    default(wait) => {}
                }
                next_tick = std::time::Instant::now() + tick;
                if !work() {
                    return;
                }
            }
        })?;
        Ok(Flusher(thread))
    }

    pub(crate) fn stop(&mut self) {
        self.0.stop();
    }
}
