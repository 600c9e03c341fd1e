//! Helpers shared by every test binary (`tests/<area>/main.rs` includes this
//! module; each binary uses some of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use logbus::format::batch::{self, BatchHeader, Peek};

/// The `.log` files of a partition directory with their base offsets, ascending.
pub fn segment_paths(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().parse().unwrap(), p))
        .collect();
    out.sort();
    out
}

/// The base offsets of a partition directory's segments, ascending.
pub fn segment_bases(dir: &Path) -> Vec<u64> {
    segment_paths(dir).into_iter().map(|(base, _)| base).collect()
}

/// Batches of a segment file: (position, header), stopping at zeros or the end.
pub fn batches(bytes: &[u8]) -> Vec<(usize, BatchHeader)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Peek::Batch(h) = batch::peek(&bytes[pos..]) {
        out.push((pos, h));
        pos += h.len as usize;
    }
    out
}

/// Every record of a partition, from its start offset to its end.
pub fn read_all(topic: &logbus::Topic, partition: u32) -> Vec<logbus::ConsumedRecord> {
    let p = topic.partition(partition).unwrap();
    let mut out = Vec::new();
    let mut at = p.start_offset();
    loop {
        let batch = p.read(at, 1000).unwrap();
        if batch.is_empty() {
            return out;
        }
        at = batch.last().unwrap().offset() + 1;
        out.extend(batch);
    }
}

/// This test binary, run again to execute only the test `test` of `module`
/// (pass `module_path!()`), on one thread and with its output: the child
/// process of the kill -9 and other multi-process tests. Callers add the
/// environment and the pipes they need.
///
/// Panics unless the binary lists exactly that test: a child started with a
/// name that matches nothing runs zero tests and exits 0, which would let its
/// parent pass without exercising anything.
pub fn rerun_self(module: &str, test: &str) -> std::process::Command {
    // libtest names a test by its path without the crate (`crash::f` in the
    // `storage` binary).
    let name = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{test}"),
        None => test.to_string(),
    };
    let exe = std::env::current_exe().unwrap();
    let listed = std::process::Command::new(&exe)
        .args(["--list", "--exact", &name])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let tests: Vec<&str> = listed.lines().filter(|l| l.ends_with(": test")).collect();
    assert_eq!(
        tests,
        [format!("{name}: test")],
        "the child test {name} is not in {}",
        exe.display()
    );
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", &name, "--nocapture", "--test-threads=1"]);
    cmd
}

/// Held for its whole run by every test that uses `logbus::testing`: its
/// switches (failing fsyncs, the sync observer) act on every log in the
/// process, so two such tests must not overlap.
pub fn process_wide_faults() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding it leaves nothing to protect.
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tests' random numbers: xorshift64*, seeded, so a failing run can be
/// replayed from its seed.
pub struct Rng(u64);

impl Rng {
    /// The generator for `seed` (any value; 0 is mapped to a valid state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Seeded from the clock: a different sequence every run.
    pub fn from_time() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng::new(t)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True once in `one_in` calls, on average.
    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

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
