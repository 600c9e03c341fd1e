//! Waiting for something to happen, with a deadline.

/// How long a test waits for something that should happen at once on an idle
/// machine: generous, because this one is shared and slow.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// A point in time by which `what` must have happened.
#[derive(Clone)]
pub struct Deadline {
    at: std::time::Instant,
    within: std::time::Duration,
    what: String,
}

impl Deadline {
    /// `what` (said in a few words: "the group settles") must happen within
    /// `within` from now.
    pub fn new(within: std::time::Duration, what: impl Into<String>) -> Deadline {
        Deadline {
            at: std::time::Instant::now() + within,
            within,
            what: what.into(),
        }
    }

    /// Whether the time is up (for loops that run until a deadline, not
    /// until something happens).
    pub fn passed(&self) -> bool {
        std::time::Instant::now() >= self.at
    }

    /// The time left, zero once passed.
    pub fn left(&self) -> std::time::Duration {
        self.at.saturating_duration_since(std::time::Instant::now())
    }

    /// Panics, naming what was awaited, once the time is up.
    #[track_caller]
    pub fn check(&self) {
        self.check_with(String::new);
    }

    /// Like [`Deadline::check`], adding `detail()` (what was seen so far) to
    /// the message.
    #[track_caller]
    pub fn check_with<D: std::fmt::Display>(&self, detail: impl FnOnce() -> D) {
        if self.passed() {
            let detail = detail().to_string();
            let sep = if detail.is_empty() { "" } else { ": " };
            panic!(
                "timed out after {:?} waiting for {}{sep}{detail}",
                self.within, self.what
            );
        }
    }
}

/// Calls `done` until it returns true, sleeping a millisecond between calls;
/// panics naming `what` if that takes longer than `within`.
#[track_caller]
pub fn wait_until(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = Deadline::new(within, what);
    while !done() {
        deadline.check();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
