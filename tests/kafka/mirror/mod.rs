//! `logbus::kafka::Mirror` and `logbus mirror`: local topics copied to a
//! real Kafka-compatible broker (tansu), record by record, at least once.

mod cli;
mod errors;
mod kill;
mod kill_in_process;
mod local_loss;
mod pause;
mod python;
mod round_trip;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logbus::kafka::mirror::{OFFSET_HEADER, PARTITION_HEADER, SOURCE_HEADER};
use logbus::kafka::{KafkaRecord, MirrorStatus};
use logbus::{Broker, Record, TopicConfig, TopicPartition};

use crate::broker::Tansu;
use crate::common::Deadline;
use crate::support::consumer;

/// The application that owns the directory: a thread writing 20 keyed
/// 100-byte records to `topic` every 10 ms (keys and values count up from 0)
/// until [`stop`](Self::stop).
pub struct OwnerWriter {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl OwnerWriter {
    pub fn start(broker: &Broker, topic: &str) -> OwnerWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let p = broker.producer();
        let (flag, topic) = (Arc::clone(&stop), topic.to_string());
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let batch: Vec<Record> = (0..20)
                    .map(|i| {
                        let k = n + i;
                        Record::new(format!("{k:0>100}")).with_key(k.to_string())
                    })
                    .collect();
                p.send_batch(&topic, batch).unwrap();
                n += 20;
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        });
        OwnerWriter { stop, thread }
    }

    /// Stops the writer; returns how many records it wrote.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A local broker in a fresh directory with one topic.
pub fn local(topic: &str, config: TopicConfig) -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic(topic, config).unwrap();
    (dir, broker)
}

/// Waits until `f` holds, panicking with `what` (and the last value) after `limit`.
pub fn wait_until<T: std::fmt::Debug>(limit: Duration, what: &str, mut f: impl FnMut() -> (bool, T)) -> T {
    let deadline = Deadline::new(limit, what);
    loop {
        let (ok, v) = f();
        if ok {
            return v;
        }
        deadline.check_with(|| format!("last: {v:?}"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the mirror has shipped and committed `total` records.
pub fn wait_mirrored(status: impl Fn() -> MirrorStatus, total: u64) -> MirrorStatus {
    wait_until(Duration::from_secs(30), "everything mirrored", || {
        let st = status();
        let done: u64 = st.partitions.iter().map(|p| p.mirrored).sum();
        (done >= total && st.behind() == 0, st)
    })
}

/// Every record of `topic`'s partitions at Kafka: polls (by `assign`, no
/// group join) until at least `at_least` arrived and then nothing new for `quiet`.
pub fn read_all(broker: &Tansu, topic: &str, partitions: u32, at_least: usize, quiet: Duration) -> Vec<KafkaRecord> {
    let mut c = consumer(broker).max_poll_records(5000).build().unwrap();
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    c.assign(&tps).unwrap();
    let deadline = Deadline::new(
        Duration::from_secs(60),
        format!("{at_least} records of '{topic}' at Kafka"),
    );
    let mut out = Vec::new();
    let mut last_new = Instant::now();
    loop {
        let got = c.poll(Duration::from_millis(200)).unwrap();
        if !got.is_empty() {
            last_new = Instant::now();
        }
        out.extend(got);
        if out.len() >= at_least && last_new.elapsed() >= quiet {
            return out;
        }
        deadline.check_with(|| format!("read {}", out.len()));
    }
}

/// A header's value.
pub fn header<'a>(r: &'a KafkaRecord, name: &str) -> Option<&'a [u8]> {
    r.headers().filter(|(n, _)| *n == name).map(|(_, v)| v).last()
}

/// (`logbus.source`, `logbus.partition`, `logbus.offset`) of a mirrored record.
pub fn origin(r: &KafkaRecord) -> (String, u32, u64) {
    let text = |name| {
        String::from_utf8(
            header(r, name)
                .unwrap_or_else(|| panic!("no {name} header on {r:?}"))
                .to_vec(),
        )
        .unwrap()
    };
    (
        text(SOURCE_HEADER),
        text(PARTITION_HEADER).parse().unwrap(),
        text(OFFSET_HEADER).parse().unwrap(),
    )
}

/// How many times each local (partition, offset) arrived at Kafka.
pub fn copies(records: &[KafkaRecord]) -> HashMap<(u32, u64), usize> {
    let mut m = HashMap::new();
    for r in records {
        let (_, p, o) = origin(r);
        assert_eq!(p, r.partition(), "partition header of {r:?}");
        *m.entry((p, o)).or_insert(0) += 1;
    }
    m
}

/// Every record stored in `topic`'s first `partitions` partitions: the
/// local truth a mirror is checked against, by (partition, offset).
pub fn stored_records(topic: &logbus::Topic, partitions: u32) -> HashMap<(u32, u64), Vec<u8>> {
    let mut stored = HashMap::new();
    for p in 0..partitions {
        let part = topic.partition(p).unwrap();
        let mut at = part.start_offset();
        while at < part.end_offset() {
            for r in part.read(at, 5000).unwrap() {
                stored.insert((p, r.offset()), r.value().to_vec());
                at = r.offset() + 1;
            }
        }
    }
    stored
}

/// What reached Kafka of the records stored locally.
pub struct Shipped {
    /// Copies of each (source, partition, offset) at Kafka.
    pub copies: HashMap<(String, u32, u64), usize>,
    /// Stored records missing at Kafka.
    pub lost: usize,
    /// Records at Kafka beyond one per (source, partition, offset).
    pub duplicates: usize,
}

impl Shipped {
    /// Records left over after dropping repeats by the source headers,
    /// beyond one per stored record (another source id re-shipping them).
    pub fn left_after_dedup(&self, stored: usize) -> usize {
        self.copies.len().saturating_sub(stored)
    }
}

/// Checks every record read from Kafka against `stored`: it names a stored
/// record in its headers (and `source`, when given), in the same partition,
/// with the same value. Counts what was lost and what came twice.
pub fn shipped(got: &[KafkaRecord], stored: &HashMap<(u32, u64), Vec<u8>>, source: Option<&str>) -> Shipped {
    let mut copies: HashMap<(String, u32, u64), usize> = HashMap::new();
    for r in got {
        let (src, p, o) = origin(r);
        if let Some(want) = source {
            assert_eq!(src, want);
        }
        assert_eq!(p, r.partition());
        let want = stored
            .get(&(p, o))
            .unwrap_or_else(|| panic!("Kafka has a record never stored locally: {r:?}"));
        assert_eq!(r.value(), want.as_slice(), "content of {p}/{o}");
        *copies.entry((src, p, o)).or_insert(0) += 1;
    }
    let reached: std::collections::HashSet<(u32, u64)> = copies.keys().map(|k| (k.1, k.2)).collect();
    let lost = stored.keys().filter(|k| !reached.contains(k)).count();
    let duplicates = got.len() - copies.len();
    Shipped {
        copies,
        lost,
        duplicates,
    }
}

/// A loopback address with nothing listening.
pub fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

/// The `logbus` binary; the CLI tests need `--features cli` (as `--all-features` gives).
pub fn logbus_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_logbus") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "the `logbus mirror` tests need the logbus binary: run them with --features cli,kafka (or --all-features)"
        ),
    }
}

/// A `logbus mirror` child process whose stderr lines are collected.
pub struct Sidecar {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Sidecar {
    /// `logbus --dir DIR mirror --bootstrap-server BS --topic T... EXTRA...`
    pub fn spawn(dir: &Path, bootstrap: &str, topics: &[&str], extra: &[&str]) -> Sidecar {
        let mut cmd = Command::new(logbus_bin());
        cmd.arg("--dir")
            .arg(dir)
            .args(["mirror", "--bootstrap-server", bootstrap]);
        for t in topics {
            cmd.args(["--topic", t]);
        }
        let mut child = cmd
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Sidecar { child, stderr }
    }

    /// What it printed to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own unreaped child takes plain integers.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    /// Waits for the exit (panics after `limit`).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Deadline::new(limit, "logbus mirror to exit");
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            if deadline.passed() {
                let _ = self.child.kill();
                panic!(
                    "logbus mirror did not exit within {limit:?}; stderr: {:#?}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(40))
    }

    /// SIGKILL (kill -9), then reap.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
