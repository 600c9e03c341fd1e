//! The broker: one directory, many topics, one owner process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::config::{BrokerConfig, ConsumerConfig, TopicConfig};
use crate::consumer::Consumer;
use crate::error::{Error, Result};
use crate::fs::DirLock;
use crate::group::{Coordinator, GroupDescription};
use crate::log::flusher::{self, Flusher};
use crate::log::Log;
use crate::producer::Producer;
use crate::topic::{validate_topic_name, Topic, TopicInner};
use crate::txn::coordinator::TxnCoordinator;

const TRASH: &str = "@trash";

/// The in-process "cluster": a directory of topics, owned by one process.
///
/// Cheap to clone (an `Arc` inside); `Send + Sync`.
///
/// ```
/// # fn main() -> logbus::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use logbus::{Broker, TopicConfig, Record};
/// let broker = Broker::open(dir.path())?;
/// broker.create_topic("events", TopicConfig::new(1))?;
/// let md = broker.producer().send("events", Record::new("hello"))?;
/// assert_eq!(md.offset(), 0);
/// broker.close()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Broker {
    pub(crate) inner: Arc<BrokerInner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("dir", &self.inner.dir)
            .field("topics", &self.topics())
            .finish()
    }
}

static NEXT_BROKER_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct BrokerInner {
    pub(crate) dir: PathBuf,
    pub(crate) config: BrokerConfig,
    topics: RwLock<BTreeMap<String, Arc<TopicInner>>>,
    /// Unique per broker opened in this process (producers' route caches
    /// tell brokers apart by it, never by address).
    pub(crate) id: u64,
    /// Bumped after every change to the topics or their partitions, and at
    /// close: a producer's cached route is valid while this is unchanged.
    pub(crate) topology: AtomicU64,
    closed: AtomicBool,
    lock: Mutex<Option<DirLock>>,
    /// Serialises create/delete/alter.
    admin: Mutex<()>,
    pub(crate) groups: Coordinator,
    /// Transaction ids, the committed set and the transaction log.
    pub(crate) txns: TxnCoordinator,
    flusher: Mutex<Option<Flusher>>,
    compactor: Mutex<Option<crate::compactor::Compactor>>,
    /// Segment-extension requests to the background thread.
    prealloc: crate::log::PreallocSender,
    notes: Vec<String>,
    /// When the background thread last published consumer lag.
    lag_published: Mutex<std::time::Instant>,
}

impl Broker {
    /// Opens (creating if needed) the broker directory with default settings.
    pub fn open(dir: impl AsRef<Path>) -> Result<Broker> {
        Broker::open_with(dir, BrokerConfig::default())
    }

    /// Opens (creating if needed) the broker directory. Fails with
    /// `Error::Locked` when another broker (in this or another process) has it open.
    pub fn open_with(dir: impl AsRef<Path>, config: BrokerConfig) -> Result<Broker> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let _span = crate::obs::broker_open_span(&dir);
        crate::fs::create_dir_durable(&dir)?;
        let lock = DirLock::acquire(&dir)?;
        empty_trash(&dir)?;
        let mut topics = BTreeMap::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("listing broker directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing broker directory", &dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = entry.path();
            if !path.is_dir() || validate_topic_name(&name).is_err() {
                continue;
            }
            if !path.join(crate::topic::META_FILE).exists() {
                // An interrupted create_topic (the metadata is written last)
                // holds no records: remove it. A directory with records but no
                // metadata was damaged from outside: refuse, delete nothing.
                if holds_records(&path) {
                    return Err(Error::Corruption {
                        path: path.join(crate::topic::META_FILE),
                        position: 0,
                        reason: format!(
                            "topic '{name}' has segment files with records but no topic.meta; restore topic.meta (or move the directory away) and open again"
                        ),
                    });
                }
                std::fs::remove_dir_all(&path).map_err(|e| Error::io("removing incomplete topic", &path, e))?;
                continue;
            }
            let topic = TopicInner::open(&path, &name, config.durability)?;
            topics.insert(name, Arc::new(topic));
        }
        let ends = |topic: &str, partition: u32| {
            topics
                .get(topic)
                .and_then(|t: &Arc<TopicInner>| t.log(partition).ok())
                .map(|l| (l.start_offset(), l.end_offset()))
        };
        let mut txn_notes = Vec::new();
        let (txns, pending) = TxnCoordinator::open(&dir, config.durability, &mut txn_notes)?;
        let (groups, mut notes) = Coordinator::open(&dir, config.durability, &ends)?;
        // Offsets of transactions committed just before a crash.
        for (_, offsets) in &pending {
            crate::txn::coordinator::apply_to_groups(offsets, &groups, true)?;
        }
        txns.finish_open()?;
        notes.extend(txn_notes);
        let (prealloc, prealloc_rx) = crossbeam_channel::bounded(1024);
        let inner = Arc::new(BrokerInner {
            dir,
            config: config.clone(),
            topics: RwLock::new(topics),
            id: NEXT_BROKER_ID.fetch_add(1, Ordering::Relaxed),
            topology: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
            admin: Mutex::new(()),
            groups,
            txns,
            flusher: Mutex::new(None),
            compactor: Mutex::new(None),
            prealloc,
            notes,
            lag_published: Mutex::new(std::time::Instant::now()),
        });
        for t in inner.all_topics() {
            inner.attach(&t);
        }
        let weak = Arc::downgrade(&inner);
        let every = config.checkpoint_interval;
        let work = move || match weak.upgrade() {
            Some(broker) => {
                broker.background_tick();
                true
            }
            None => false,
        };
        let tick = flusher::tick_for(config.durability, every);
        let flusher = Flusher::spawn(tick, work, prealloc_rx)
            .map_err(|e| Error::io("starting the background thread", &inner.dir, e))?;
        *inner.flusher.lock() = Some(flusher);
        let compactor = crate::compactor::Compactor::spawn(Arc::downgrade(&inner))
            .map_err(|e| Error::io("starting the compactor thread", &inner.dir, e))?;
        *inner.compactor.lock() = Some(compactor);
        Ok(Broker { inner })
    }

    /// Creates a topic. `Error::TopicExists` if it exists, `Error::InvalidTopicName`
    /// or `Error::InvalidConfig` (nothing is created) for bad input.
    /// Settings the config does not give come from the broker's
    /// [`topic_defaults`](crate::BrokerConfig::topic_defaults).
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<Topic> {
        self.inner.check_open()?;
        validate_topic_name(name)?;
        let config = config.over(&self.inner.config.topic_defaults);
        config.validate()?;
        if config.effective_max_record_bytes() == 0 {
            // topic.meta cannot store a record limit of 0 (the next open would
            // refuse the file as corrupt): a segment this small holds no record.
            let need = (crate::format::batch::HEADER_LEN + crate::format::batch::RECORD_OVERHEAD + 1) as u64;
            return Err(Error::config(
                "segment_bytes",
                config.segment_bytes,
                format!("too small to hold a record of 1 byte; use at least {need}"),
            ));
        }
        let _admin = self.inner.admin.lock();
        if self.inner.topics.read().contains_key(name) {
            return Err(Error::TopicExists {
                topic: name.to_string(),
            });
        }
        let path = self.inner.dir.join(name);
        if path.exists() {
            // Left by an interrupted create (no metadata, so not a topic).
            std::fs::remove_dir_all(&path).map_err(|e| Error::io("removing incomplete topic", &path, e))?;
        }
        let topic = match TopicInner::create(&path, name, config, self.inner.config.durability) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                return Err(e);
            }
        };
        self.inner.attach(&topic);
        self.inner.topics.write().insert(name.to_string(), Arc::clone(&topic));
        self.inner.topology_changed();
        self.inner.groups.topics_changed(&|t| self.inner.partition_count(t));
        Ok(Topic {
            broker: Arc::clone(&self.inner),
            inner: topic,
        })
    }

    /// An existing topic. `Error::UnknownTopic` if there is none by that name.
    pub fn topic(&self, name: &str) -> Result<Topic> {
        let inner = self.inner.topic(name)?;
        Ok(Topic {
            broker: Arc::clone(&self.inner),
            inner,
        })
    }

    /// Names of all topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// Deletes a topic and all its records. Handles on it then fail with `Error::UnknownTopic`.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.inner.check_open()?;
        let _admin = self.inner.admin.lock();
        let topic = self.inner.topic(name)?;
        topic.deleted.store(true, Ordering::Release);
        for log in topic.logs().iter() {
            log.abandon();
            log.wake_waiters();
        }
        self.inner.topics.write().remove(name);
        self.inner.topology_changed();
        // Rename first (atomic), then delete at leisure: a crash in between
        // leaves only trash, emptied on the next open.
        let trash = self.inner.dir.join(TRASH);
        crate::fs::create_dir_durable(&trash)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let target = trash.join(format!("{name}.{nanos}"));
        std::fs::rename(&topic.dir, &target).map_err(|e| Error::io("deleting topic", &topic.dir, e))?;
        crate::fs::sync_dir(&self.inner.dir)?;
        std::fs::remove_dir_all(&target).map_err(|e| Error::io("deleting topic files", &target, e))?;
        self.inner.groups.topics_changed(&|t| self.inner.partition_count(t));
        Ok(())
    }

    /// Grows a topic to `partitions` partitions (Kafka's `--alter --partitions`).
    /// Keys may map to other partitions afterwards, as in Kafka. Groups subscribed to it rebalance.
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<()> {
        self.inner.check_open()?;
        let _admin = self.inner.admin.lock();
        let topic = self.inner.topic(name)?;
        topic.add_partitions(partitions, self.inner.config.durability)?;
        self.inner.topology_changed();
        self.inner.attach(&topic);
        self.inner.groups.topics_changed(&|t| self.inner.partition_count(t));
        Ok(())
    }

    /// Changes a live topic's settings by Kafka's names, as Kafka's
    /// `kafka-configs --alter --add-config` / `--delete-config` do: `set`
    /// gives new values, `delete` returns settings to the broker's default
    /// ([`BrokerConfig::topic_defaults`](crate::BrokerConfig::topic_defaults)).
    /// The settings that can change while the topic is open are
    /// [`ALTERABLE_KEYS`](crate::properties::ALTERABLE_KEYS) (`retention.ms`,
    /// `retention.bytes`); the next retention pass applies them. Any other key
    /// is `Error::InvalidConfig` saying why, and nothing changes. Returns the
    /// topic's config afterwards (also written to `topic.meta`).
    pub fn alter_topic_config(&self, name: &str, set: &[(&str, &str)], delete: &[&str]) -> Result<TopicConfig> {
        self.inner.check_open()?;
        let _admin = self.inner.admin.lock();
        let topic = self.inner.topic(name)?;
        let current = topic.config.read().clone();
        let next = crate::properties::altered(&current, set, delete, &self.inner.config.topic_defaults)?;
        topic.alter_config(next.clone(), self.inner.config.durability)?;
        Ok(next)
    }

    /// A producer. Cheap; clone it or call again freely.
    pub fn producer(&self) -> Producer {
        Producer {
            broker: Arc::clone(&self.inner),
            compression: None,
        }
    }

    /// A consumer. Validates the config (`Error::InvalidConfig`).
    pub fn consumer(&self, config: ConsumerConfig) -> Result<Consumer> {
        self.inner.check_open()?;
        Consumer::new(Arc::clone(&self.inner), config)
    }

    /// Makes everything appended so far durable (fsync of every partition).
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Clean shutdown of the broker and every handle on it: flush, record a
    /// clean checkpoint per partition, release the directory lock. Later calls
    /// on any handle return `Error::Closed`.
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }

    /// The broker directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Names of consumer groups with members or committed offsets, sorted.
    pub fn groups(&self) -> Vec<String> {
        self.inner.groups.list()
    }

    /// Members, assignments, committed offsets, end offsets and lag of a group.
    ///
    /// As in Kafka, describing a group never fails for want of the group: one
    /// with no members and no committed offsets (never used, ended without a
    /// commit, or deleted with `delete_group_offsets`) is
    /// [`GroupState::Dead`](crate::GroupState::Dead) with no members and no
    /// partitions; one with only committed offsets is
    /// [`GroupState::Empty`](crate::GroupState::Empty). Fails only with
    /// `Error::Closed`.
    pub fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        self.inner.check_open()?;
        let counts = |t: &str| self.inner.partition_count(t);
        let ends = |t: &str, p: u32| self.inner.offsets(t, p);
        self.inner.groups.describe(group, &counts, &ends)
    }

    /// Deletes a group's committed offsets. Fails with `Error::InvalidConfig`
    /// while the group has members.
    pub fn delete_group_offsets(&self, group: &str) -> Result<()> {
        self.inner.check_open()?;
        self.inner.groups.delete_offsets(group)
    }

    /// Sets a group's committed offsets (for tools like `reset-offsets`).
    /// Fails with `Error::InvalidConfig` while the group has members.
    pub fn set_group_offsets(&self, group: &str, offsets: &[(crate::TopicPartition, u64)]) -> Result<()> {
        self.inner.check_open()?;
        for (tp, _) in offsets {
            self.inner.topic(&tp.topic)?.log(tp.partition)?;
        }
        self.inner.groups.set_offsets_offline(group, offsets)
    }

    /// Things the last open noticed and repaired (e.g. committed offsets
    /// clamped to the end of a partition that lost data in a crash).
    pub fn open_notes(&self) -> &[String] {
        &self.inner.notes
    }
}

impl BrokerInner {
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Invalidates every producer's cached route (call after the change).
    pub(crate) fn topology_changed(&self) {
        self.topology.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn topic(&self, name: &str) -> Result<Arc<TopicInner>> {
        self.check_open()?;
        if let Some(t) = self.topics.read().get(name) {
            return Ok(Arc::clone(t));
        }
        validate_topic_name(name)?;
        Err(Error::UnknownTopic {
            topic: name.to_string(),
        })
    }

    /// Connects a topic's logs to the background thread.
    fn attach(&self, topic: &TopicInner) {
        for log in topic.logs().iter() {
            log.attach_background(self.prealloc.clone());
        }
    }

    pub(crate) fn partition_count(&self, name: &str) -> Option<u32> {
        self.topics.read().get(name).map(|t| t.partition_count())
    }

    /// A partition's start and end offsets, if it exists.
    fn offsets(&self, name: &str, partition: u32) -> Option<(u64, u64)> {
        let log = self.topics.read().get(name)?.log(partition).ok()?;
        Some((log.start_offset(), log.end_offset()))
    }

    pub(crate) fn all_topics(&self) -> Vec<Arc<TopicInner>> {
        self.topics.read().values().cloned().collect()
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.check_open()?;
        for t in self.all_topics() {
            for log in t.logs().iter() {
                log.flush()?;
            }
        }
        self.groups.flush()?;
        self.txns.flush()
    }

    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.topology_changed();
        if let Some(mut c) = self.compactor.lock().take() {
            c.stop();
        }
        if let Some(mut f) = self.flusher.lock().take() {
            f.stop();
        }
        // In parallel: a close is mostly fsyncs, which overlap (see `fs::in_parallel`).
        let logs: Vec<Log> = self.all_topics().iter().flat_map(|t| t.logs().to_vec()).collect();
        let closed = crate::fs::in_parallel(&logs, |log| {
            let r = log.close();
            log.wake_waiters();
            r
        });
        let mut first_err = closed.into_iter().find_map(Result::err);
        if let Err(e) = self.groups.close() {
            first_err.get_or_insert(e);
        }
        if let Err(e) = self.txns.flush() {
            first_err.get_or_insert(e);
        }
        self.lock.lock().take();
        crate::producer::forget_route(self.id);
        first_err.map_or(Ok(()), Err)
    }

    pub(crate) fn background_tick(&self) {
        if self.is_closed() {
            return;
        }
        let policy = self.config.checkpoint_policy();
        for t in self.all_topics() {
            for log in t.logs().iter() {
                // A failure poisons the log; writers see it on their next append.
                let _ = log.background_tick(&policy);
            }
        }
        self.groups.tick(&|t| self.partition_count(t));
        self.publish_consumer_lag();
    }

    /// Publishes every group's committed-offset lag per partition (feature
    /// `metrics`), at most once per `obs::LAG_EVERY`.
    fn publish_consumer_lag(&self) {
        if !crate::obs::EXPORTS_LAG {
            return;
        }
        {
            let mut last = self.lag_published.lock();
            if last.elapsed() < crate::obs::LAG_EVERY {
                return;
            }
            *last = std::time::Instant::now();
        }
        let counts = |t: &str| self.partition_count(t);
        let ends = |t: &str, p: u32| self.offsets(t, p);
        for group in self.groups.list() {
            let Ok(d) = self.groups.describe(&group, &counts, &ends) else {
                continue;
            };
            for p in d.partitions {
                if let Some(lag) = p.lag {
                    let tp = &p.topic_partition;
                    crate::obs::consumer_lag(&group, &tp.topic, tp.partition, lag);
                }
            }
        }
    }
}

impl Drop for BrokerInner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Whether any partition directory of a topic holds records (see
/// `log::holds_records`); a topic directory that cannot be listed counts as
/// data to keep.
fn holds_records(topic_dir: &Path) -> bool {
    let Ok(parts) = std::fs::read_dir(topic_dir) else {
        return true;
    };
    parts.flatten().any(|p| crate::log::holds_records(&p.path()))
}

fn empty_trash(dir: &Path) -> Result<()> {
    let trash = dir.join(TRASH);
    if trash.exists() {
        std::fs::remove_dir_all(&trash).map_err(|e| Error::io("emptying deleted topics", &trash, e))?;
    }
    Ok(())
}
