//! The background compactor: a thread per broker (`logbus-compactor`) that
//! runs a compaction pass over each partition of a compacted topic whose
//! dirty ratio reached the topic's `min_cleanable_dirty_ratio`. A thread of
//! its own, not the background thread's tick: a pass reads and rewrites
//! whole segments, and the tick's fsyncs and segment extensions must not
//! wait for it.

use std::sync::Weak;
use std::time::Duration;

use crate::broker::BrokerInner;
use crate::log::thread::StoppableThread;

/// How often the compactor looks at the dirty ratios.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Handle on the compactor thread; stopping joins it (after the pass in progress).
#[derive(Debug)]
pub(crate) struct Compactor(StoppableThread);

impl Compactor {
    /// Starts the thread for `broker`; it ends when the broker is gone or closed.
    pub(crate) fn spawn(broker: Weak<BrokerInner>) -> std::io::Result<Compactor> {
        let thread = StoppableThread::spawn("logbus-compactor", move |stopped| loop {
            if stopped.recv_timeout(CHECK_EVERY).is_ok() {
                return;
            }
            let Some(broker) = broker.upgrade() else {
                return;
            };
            if broker.is_closed() {
                return;
            }
            for topic in broker.all_topics() {
                for log in topic.logs().iter() {
                    if stopped.try_recv().is_ok() {
                        return;
                    }
                    if log.compaction_due() {
                        // A failed pass leaves the old segments; damage it
                        // met surfaces in reads and `verify`, a failed
                        // install poisons the log. The next check retries.
                        let _ = log.compact();
                    }
                }
            }
        })?;
        Ok(Compactor(thread))
    }

    /// Stops the thread and waits for it (and for a pass in progress).
    pub(crate) fn stop(&mut self) {
        self.0.stop();
    }
}
