//! A background thread that runs until told to stop: the handle the
//! flusher and the compactor share.

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

/// Handle on a background thread; stopping (or dropping) signals it and
/// joins it, unless called from the thread itself.
#[derive(Debug)]
pub(crate) struct StoppableThread {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl StoppableThread {
    /// Starts `body` on a thread called `name`; `body` receives the stop
    /// signal on the channel it is given, and should return when it does.
    pub(crate) fn spawn(
        name: &str,
        body: impl FnOnce(Receiver<()>) + Send + 'static,
    ) -> std::io::Result<StoppableThread> {
        let (stop, stopped) = bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(stopped))?;
        Ok(StoppableThread {
            stop,
            thread: Some(thread),
        })
    }

    /// Signals the thread and waits for it.
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for StoppableThread {
    fn drop(&mut self) {
        self.stop();
    }
}
