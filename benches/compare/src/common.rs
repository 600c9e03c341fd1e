//! What every scenario shares: options, payloads, framing, directories, the
//! tokio runtime kafko needs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use logbus::format::batch;
use logbus::Record;

/// 100-byte values, as the issue asks.
pub const VALUE: usize = 100;

pub struct Opts {
    pub rounds: usize,
    pub quick: bool,
    pub big: bool,
    pub only: Option<String>,
    pub dir: PathBuf,
}

impl Opts {
    /// `full` normally, `quick` with `--quick`.
    pub fn n(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// A fresh directory under `--dir` (deleted on drop).
    pub fn tempdir(&self) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("lbcmp-")
            .tempdir_in(&self.dir)
            .expect("create temp dir")
    }
}

/// A 100-byte value whose first 8 bytes are `i` (so no two are alike).
pub fn fill(buf: &mut [u8; VALUE], i: u64) {
    buf[..8].copy_from_slice(&i.to_le_bytes());
}

pub fn value(i: u64) -> [u8; VALUE] {
    let mut b = [0x5au8; VALUE];
    fill(&mut b, i);
    b
}

/// logbus's own framing of `n` records as one batch (header, varints, CRC):
/// what the raw baselines copy or `write(2)`.
pub fn framed(n: usize) -> Vec<u8> {
    let rs: Vec<Record> = (0..n as u64)
        .map(|i| Record::new(value(i).to_vec()).with_timestamp(1_700_000_000_000))
        .collect();
    let ts = |r: &Record| r.timestamp().unwrap_or(0);
    let (_, len) = batch::plan(&rs, ts, usize::MAX);
    let mut buf = vec![0u8; len];
    batch::encode(&mut buf, 0, 0, &rs, ts);
    buf
}

/// The tokio runtime kafko runs on (its README's `rt-multi-thread` default:
/// one worker per core).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn rate(n: usize, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

/// A raw file for the `write(2)` baselines.
pub fn raw_file(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(dir.join("raw.log"))
        .expect("raw file")
}

pub fn write_all_fd(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice; `fd` is an open file descriptor.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        assert!(n > 0, "write(2) failed: {}", std::io::Error::last_os_error());
        buf = &buf[n as usize..];
    }
}

/// Anonymous resident memory of this process, bytes (`RssAnon` in /proc/self/status).
pub fn rss_anon() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Copy + CRC32 of one frame into a wrapping, pre-touched 64 MiB arena.
pub struct Arena {
    buf: Vec<u8>,
    pos: usize,
}

impl Arena {
    pub fn new() -> Arena {
        Arena {
            buf: vec![1u8; 64 << 20],
            pos: 0,
        }
    }

    pub fn push(&mut self, frame: &[u8]) -> u32 {
        if self.pos + frame.len() > self.buf.len() {
            self.pos = 0;
        }
        let dst = &mut self.buf[self.pos..self.pos + frame.len()];
        dst.copy_from_slice(frame);
        self.pos += frame.len();
        crc32fast::hash(dst)
    }
}

/// Records/s of `send(producer, i)` for `i` in `0..n`, on a fresh broker
/// with one one-partition topic "t" (the broker's close is not timed).
pub fn logbus_sends(o: &Opts, n: usize, send: impl Fn(&logbus::Producer, u64)) -> f64 {
    let d = o.tempdir();
    let b = logbus::Broker::open(d.path()).unwrap();
    b.create_topic("t", logbus::TopicConfig::new(1)).unwrap();
    let p = b.producer();
    let t = Instant::now();
    for i in 0..n as u64 {
        send(&p, i);
    }
    let r = rate(n, t);
    b.close().unwrap();
    r
}

/// Another process keeping one core half busy (1 ms of spinning, then 1 ms
/// of sleep, over and over) while it lives: `COMPARE_HOG=1` starts one for
/// the `latency` and `stages` scenarios (issue 18: the tail under contention).
pub struct Hog(std::process::Child);

impl Hog {
    /// Starts the hog when `COMPARE_HOG=1`.
    pub fn from_env() -> Option<Hog> {
        if std::env::var("COMPARE_HOG").ok().as_deref() != Some("1") {
            return None;
        }
        let exe = std::env::current_exe().expect("current exe");
        let child = std::process::Command::new(exe).arg("__hog").spawn().expect("spawn hog");
        println!("(with a hog process: one core half busy, 1 ms on / 1 ms off)");
        Some(Hog(child))
    }

    /// The hog's loop (in the child process); ends when its parent dies.
    pub fn run() {
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() };
        loop {
            let t = Instant::now();
            while t.elapsed() < std::time::Duration::from_millis(1) {
                std::hint::spin_loop();
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            // SAFETY: as above.
            if unsafe { libc::getppid() } != parent {
                return;
            }
        }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Controls for the latency scenarios, applied to this process's `logbus-*`
/// threads (the flusher, which also grows segments ahead of the writer):
/// `COMPARE_PIN_BACKGROUND=CPU` pins them to one CPU, and
/// `COMPARE_NICE_BACKGROUND=N` gives them nice value N.
pub fn background_controls() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<i32>().ok());
    let (pin, nice) = (env("COMPARE_PIN_BACKGROUND"), env("COMPARE_NICE_BACKGROUND"));
    if pin.is_none() && nice.is_none() {
        return;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for e in dir.flatten() {
        let name = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if !name.starts_with("logbus-") {
            continue;
        }
        let tid: i32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        if let Some(cpu) = pin {
            // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
            // sched_setaffinity only touch it and the named thread.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu as usize, &mut set);
                libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
        }
        if let Some(n) = nice {
            // SAFETY: setpriority on one thread id of this process.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, n) };
        }
    }
}

/// A fresh broker with a one-partition topic "t", a consumer assigned to it
/// from the beginning that waits with `wait`, and a producer; the background
/// controls applied (see [`background_controls`]).
pub fn tailing_pair(
    dir: &Path,
    cfg: logbus::BrokerConfig,
    wait: logbus::WaitStrategy,
) -> (logbus::Broker, logbus::Consumer, logbus::Producer) {
    let b = logbus::Broker::open_with(dir, cfg).unwrap();
    b.create_topic("t", logbus::TopicConfig::new(1)).unwrap();
    let mut c = b
        .consumer(
            logbus::ConsumerConfig::new()
                .offset_reset(logbus::OffsetReset::Earliest)
                .wait_strategy(wait),
        )
        .unwrap();
    c.assign(&[logbus::TopicPartition::new("t", 0)]).unwrap();
    let p = b.producer();
    background_controls();
    (b, c, p)
}

/// crossbeam `bounded(1024)` moving `n` 100-byte `Vec`s from this thread to
/// another: the producer-side and end-to-end records/s.
pub fn crossbeam_pubsub(n: usize) -> (f64, f64) {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(1024);
    let t = Instant::now();
    let produced = std::thread::scope(|s| {
        s.spawn(move || {
            let mut bytes = 0usize;
            for _ in 0..n {
                bytes += rx.recv().unwrap().len();
            }
            assert_eq!(bytes, n * 100);
        });
        for i in 0..n as u64 {
            tx.send(value(i).to_vec()).unwrap();
        }
        rate(n, t)
    });
    (produced, rate(n, t))
}

/// `getrusage(RUSAGE_THREAD)` of the calling thread.
pub fn thread_rusage() -> libc::rusage {
    // SAFETY: getrusage writes one plain struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is valid on Linux.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    ru
}

/// CPU time (user and system) the calling thread has used so far, seconds.
pub fn thread_cpu_s() -> f64 {
    let ru = thread_rusage();
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    s(ru.ru_utime) + s(ru.ru_stime)
}
