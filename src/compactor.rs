//! The background compactor: a thread per broker (`logbus-compactor`) that
//! runs a compaction pass over each partition of a compacted topic whose
//! dirty ratio reached the topic's `min_cleanable_dirty_ratio`. A thread of
//! its own, not the background thread's tick: a pass reads and rewrites
//! whole segments, and the tick's fsyncs and segment extensions must not
//! wait for it.

use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};

use crate::broker::BrokerInner;

/// How often the compactor looks at the dirty ratios.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Handle on the compactor thread; stopping joins it (after the pass in progress).
#[derive(Debug)]
pub(crate) struct Compactor {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Compactor {
    /// Starts the thread for `broker`; it ends when the broker is gone or closed.
    pub(crate) fn spawn(broker: Weak<BrokerInner>) -> std::io::Result<Compactor> {
        let (stop, stopped) = bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("logbus-compactor".into())
            .spawn(move || loop {
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
        Ok(Compactor {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (and for a pass in progress).
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.stop();
    }
}
