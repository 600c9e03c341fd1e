//! `kafka::Mirror`: store and forward, local topics to a Kafka cluster.
//!
//! Every record of a local topic goes to the Kafka topic of the same name,
//! into the same partition number, with its key, value, headers and create
//! timestamp, plus three headers naming where it came from:
//!
//! | header             | value (UTF-8)                                   |
//! |--------------------|-------------------------------------------------|
//! | `logbus.source`    | the source id (see [`MirrorBuilder::source_id`]) |
//! | `logbus.partition` | the local partition, decimal (`"2"`)            |
//! | `logbus.offset`    | the local offset, decimal (`"41"`)              |
//!
//! Delivery is at least once: the producer is idempotent with `acks=all`,
//! and the mirror's progress advances per partition only to the first record
//! Kafka has not acknowledged yet (the contiguous acknowledged prefix). After
//! a crash the records sent since the last commit are sent again (at most
//! [`MirrorBuilder::max_in_flight`] per crash), counted in
//! [`MirrorStatus::resent`]; a reader drops such duplicates by
//! (`logbus.source`, `logbus.partition`, `logbus.offset`).
//!
//! Two ways to run, one forwarding core:
//! * [`MirrorBuilder::start`]: in the process that owns the [`Broker`]; it
//!   reads with a local consumer of the mirror's group and commits there
//!   (a restart resumes at the group's committed offset), and keeps the
//!   highest offset sent in the same progress file as a sidecar.
//! * [`MirrorBuilder::start_sidecar`]: beside the process that owns the
//!   directory (what `logbus mirror` does). It reads the files read-only
//!   through [`crate::inspect`] and keeps its progress in
//!   `<dir>/@mirror/<group>.offsets` (replaced atomically; layout in
//!   `docs/FORMAT.md`).
//!
//! If the Kafka topic is missing it is created with the local partition
//! count; if it has fewer partitions than the local topic the mirror stops
//! with an error naming both counts. Partitions added to a local topic later
//! are picked up within a second (the same check applies).
//!
//! What stops the mirror (with the acknowledged prefix committed first):
//! records retention deleted before they were shipped ([`Error::MirrorGap`]
//! naming topic, partition and the lost range, unless [`OnGap::Skip`]); a
//! record larger than Kafka accepts (`Error::Kafka` naming topic, partition
//! and offset, unless [`MirrorBuilder::skip_oversized`]); fewer partitions at
//! Kafka; a local partition that ends below offsets already sent
//! ([`Error::MirrorAhead`], at start: the directory lost records after they
//! were shipped, and records written at those offsets again would look like
//! duplicates of different records; RELIABILITY.md says what to do). What does not: an unreachable or frozen cluster, reported in
//! [`MirrorStatus::last_error`] within the connect timeout and retried, and
//! failed deliveries, sent again from the first unacknowledged record.
//!
//! ```no_run
//! # fn main() -> logbus::Result<()> {
//! use logbus::{kafka::Mirror, Broker};
//! let broker = Broker::open("data")?;
//! let mirror = Mirror::builder("localhost:9092").topic("orders").start(&broker)?;
//! // ... the application produces to "orders" ...
//! let status = mirror.stop()?; // flush, wait for acks, commit
//! println!("{} records behind", status.behind());
//! # Ok(()) }
//! ```

mod connect;
mod forward;
mod progress;
mod source;
mod status;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::settings::Settings;
use crate::broker::Broker;
use crate::error::{Error, Result};
use source::{LocalGroup, Sidecar, Source};
pub use status::{MirrorStatus, PartitionStatus};

/// Header naming the mirror that sent a record (its source id).
pub const SOURCE_HEADER: &str = "logbus.source";
/// Header with the record's local partition, decimal.
pub const PARTITION_HEADER: &str = "logbus.partition";
/// Header with the record's local offset, decimal.
pub const OFFSET_HEADER: &str = "logbus.offset";

/// What the mirror does when retention deleted records it had not shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnGap {
    /// Stop with [`Error::MirrorGap`] naming topic, partition and the lost range.
    #[default]
    Stop,
    /// Continue from the first stored offset, counting the skipped offsets
    /// in [`MirrorStatus::skipped_gap`].
    Skip,
}

/// Builds a [`Mirror`]. Setters consume and return the builder.
#[derive(Debug, Clone)]
#[must_use]
pub struct MirrorBuilder {
    pub(crate) settings: Settings,
    pub(crate) topics: Vec<String>,
    pub(crate) group: String,
    pub(crate) source_id: Option<String>,
    pub(crate) on_gap: OnGap,
    pub(crate) skip_oversized: bool,
    pub(crate) commit_interval: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) delivery_timeout: Duration,
    pub(crate) max_in_flight: usize,
}

impl MirrorBuilder {
    /// Adds a local topic to mirror (repeatable).
    pub fn topic(mut self, name: impl Into<String>) -> MirrorBuilder {
        self.topics.push(name.into());
        self
    }

    /// Adds local topics to mirror.
    pub fn topics<I, S>(mut self, names: I) -> MirrorBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics.extend(names.into_iter().map(Into::into));
        self
    }

    /// The mirror's name: the local group whose committed offsets hold the
    /// in-process mirror's position, and the progress file
    /// `<dir>/@mirror/<group>.offsets` (a sidecar's position; in both modes
    /// the highest offset sent): 1 to 249 characters of `[A-Za-z0-9._-]`.
    /// Default = `"logbus-mirror"`.
    pub fn group(mut self, group: impl Into<String>) -> MirrorBuilder {
        self.group = group.into();
        self
    }

    /// The value of the `logbus.source` header.
    /// Default = `"<hostname>:<absolute broker directory>"`.
    pub fn source_id(mut self, id: impl Into<String>) -> MirrorBuilder {
        self.source_id = Some(id.into());
        self
    }

    /// A raw librdkafka setting for the producer and the admin client
    /// (`security.protocol`, `linger.ms`, `compression.type`...); raw settings
    /// win over the mirror's defaults.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> MirrorBuilder {
        self.settings.set(key, value);
        self
    }

    /// What to do about records retention deleted before they were shipped. Default = [`OnGap::Stop`].
    pub fn on_gap(mut self, on_gap: OnGap) -> MirrorBuilder {
        self.on_gap = on_gap;
        self
    }

    /// Skip (and count) a record larger than Kafka accepts instead of
    /// stopping at it. Default = false: stop with an error naming topic,
    /// partition and offset.
    pub fn skip_oversized(mut self, skip: bool) -> MirrorBuilder {
        self.skip_oversized = skip;
        self
    }

    /// How often acknowledged progress is committed. Default = 100 ms.
    pub fn commit_interval(mut self, d: Duration) -> MirrorBuilder {
        self.commit_interval = d;
        self
    }

    /// How long one attempt to reach the cluster may take before the
    /// mirror reports the error in [`MirrorStatus::last_error`] and tries
    /// again. Default = 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> MirrorBuilder {
        self.connect_timeout = d;
        self
    }

    /// How long librdkafka retries a record before reporting it failed
    /// (`message.timeout.ms`); the mirror then sends it again. Also the
    /// bound on the flush at stop. Default = 30 s.
    pub fn delivery_timeout(mut self, d: Duration) -> MirrorBuilder {
        self.delivery_timeout = d;
        self
    }

    /// Most records sent and not yet committed (in flight, or acknowledged
    /// and waiting for the next commit): the bound on the records a crash
    /// makes the next run send again. Default = 50 000.
    pub fn max_in_flight(mut self, n: usize) -> MirrorBuilder {
        self.max_in_flight = n;
        self
    }

    /// Starts mirroring in this process: reads with a local consumer of the
    /// group, commits the acknowledged prefix there. Fails at once on local
    /// problems (no topic given, an unknown topic, a bad group name); problems
    /// with the cluster show in [`Mirror::status`] and end the mirror only
    /// when retrying cannot help (fewer Kafka partitions than local ones).
    pub fn start(self, broker: &Broker) -> Result<Mirror> {
        self.validate()?;
        for t in &self.topics {
            broker.topic(t)?;
        }
        let source = LocalGroup::new(broker, &self.group, self.on_gap)?;
        source.check_ahead(&self.topics)?;
        self.spawn(Box::new(source), broker.dir())
    }

    /// Starts mirroring the directory `dir` read-only, beside the process
    /// that owns it (no directory lock taken), keeping progress in
    /// `<dir>/@mirror/<group>.offsets`.
    pub fn start_sidecar(self, dir: impl AsRef<Path>) -> Result<Mirror> {
        self.validate()?;
        let dir = dir.as_ref();
        let source = Sidecar::new(dir, &self.group, self.on_gap)?;
        for t in &self.topics {
            source.partition_count(t)?;
        }
        source.check_ahead(&self.topics)?;
        self.spawn(Box::new(source), dir)
    }

    fn validate(&self) -> Result<()> {
        if self.topics.is_empty() {
            return Err(Error::config("topics", "[]", "give at least one local topic to mirror"));
        }
        for t in &self.topics {
            crate::topic::validate_topic_name(t)?;
        }
        let g = &self.group;
        if g.is_empty()
            || g.len() > 249
            || g == "."
            || g == ".."
            || !g.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(Error::config(
                "group",
                g,
                "use 1 to 249 characters of [A-Za-z0-9._-] (it names the progress file)",
            ));
        }
        if self.max_in_flight == 0 {
            return Err(Error::config("max_in_flight", 0, "must be at least 1"));
        }
        Ok(())
    }

    fn spawn(mut self, source: Box<dyn Source>, dir: &Path) -> Result<Mirror> {
        if self.source_id.is_none() {
            self.source_id = Some(default_source_id(dir));
        }
        self.topics.sort();
        self.topics.dedup();
        let shared = Arc::new(Shared::default());
        // Running from here on, so that a status read before the thread starts says so.
        shared.status.lock().running = true;
        let s = Arc::clone(&shared);
        let b = self.clone();
        let thread = std::thread::Builder::new()
            .name("logbus-mirror".into())
            .spawn(move || {
                let result = forward::run(b, source, &s);
                let mut st = s.status.lock();
                st.running = false;
                if let Err(e) = &result {
                    st.last_error = Some(e.to_string());
                }
                drop(st);
                result
            })
            .map_err(|e| Error::io("starting the mirror thread", dir, e))?;
        Ok(Mirror {
            shared,
            thread: Some(thread),
            bootstrap: self.settings.bootstrap,
        })
    }
}

/// `<hostname>:<absolute dir>`.
fn default_source_id(dir: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("{host}:{}", dir.display())
}

/// State shared by the handle and the mirror's thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) status: Mutex<MirrorStatus>,
}

/// A running mirror (see the module docs). Dropping it stops it like [`Mirror::stop`].
pub struct Mirror {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<()>>>,
    bootstrap: String,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("kafka::Mirror")
            .field("bootstrap", &self.bootstrap)
            .field("running", &self.is_running())
            .finish()
    }
}

impl Mirror {
    /// A builder for a mirror to the cluster at `bootstrap_servers` (`HOST:PORT[,HOST:PORT...]`).
    pub fn builder(bootstrap_servers: impl Into<String>) -> MirrorBuilder {
        MirrorBuilder {
            settings: Settings::new(bootstrap_servers),
            topics: Vec::new(),
            group: "logbus-mirror".into(),
            source_id: None,
            on_gap: OnGap::Stop,
            skip_oversized: false,
            commit_interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            max_in_flight: 50_000,
        }
    }

    /// Progress per partition, counters and the last error.
    pub fn status(&self) -> MirrorStatus {
        self.shared.status.lock().clone()
    }

    /// False once the mirror stopped on an error (see [`Mirror::stop`] for which).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops: waits for the acknowledgement of every record sent (up to the
    /// delivery timeout), commits what was acknowledged, and returns the
    /// final status; or the error that stopped the mirror earlier.
    pub fn stop(mut self) -> Result<MirrorStatus> {
        self.halt()?;
        Ok(self.status())
    }

    fn halt(&mut self) -> Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::config("mirror", "thread", "the mirror's thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}
