//! Read-only inspection of a broker directory, safe while another process owns it.
//!
//! [`Inspector`] never takes the directory lock (`<dir>/@lock`) and never maps
//! a file: segments are read with `pread`, because the owner may truncate a
//! segment (sealing, recovery) and a map of a shrinking file faults. What it
//! sees is what is on the files right now: the owner's last appends are there
//! (the page cache is shared), a batch the owner is writing at this instant
//! is not yet, and live group membership (held in the owner's memory) is not
//! visible at all. This is what the `logbus` tool's inspection commands use.
//!
//! ```
//! # fn main() -> logbus::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use logbus::{inspect::Inspector, Broker, Record, TopicConfig};
//! let broker = Broker::open(dir.path())?;           // the owner keeps the lock
//! broker.create_topic("events", TopicConfig::new(2))?;
//! broker.producer().send("events", Record::new("hello").with_partition(1))?;
//!
//! let inspector = Inspector::open(dir.path())?;     // no lock taken
//! assert_eq!(inspector.topics()?, vec!["events".to_string()]);
//! assert_eq!(inspector.partition_info("events", 1)?.end_offset, 1);
//! let mut reader = inspector.reader("events", 1, 0)?;
//! assert_eq!(reader.poll(10)?[0].value(), b"hello");
//! # Ok(()) }
//! ```

mod groups;
mod reader;
mod segfile;
mod verify;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::checkpoint;
use crate::format::topic_meta::{self, TopicMeta};
use crate::topic::validate_topic_name;

pub use groups::{read_committed, CommittedOffsets};
pub use reader::{PartitionReader, TxnMark};
pub use segfile::{list_segments, BatchStatus, SegmentFile, WalkEnd, WalkOptions, WalkStop, WalkedBatch};
pub use verify::{PartitionCheck, SegmentCheck};

const META_FILE: &str = "topic.meta";

/// A read-only view of a broker directory (see the module docs).
#[derive(Debug, Clone)]
pub struct Inspector {
    dir: PathBuf,
}

/// Which transactions of a directory committed ([`Inspector::transactions`]).
#[derive(Debug, Clone, Default)]
pub struct Transactions {
    committed: crate::txn::ids::IdSet,
}

impl Transactions {
    /// Whether transaction `id` committed. A transaction that did not was
    /// aborted, lost in a crash, or is still open in a live owner.
    pub fn is_committed(&self, id: u64) -> bool {
        self.committed.contains(id)
    }
}

/// A topic's settings and partitions, as `topics describe` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The persisted settings.
    pub meta: TopicMeta,
    /// Every partition, in order.
    pub partitions: Vec<PartitionInfo>,
}

/// Offsets and storage of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition number.
    pub partition: u32,
    /// First offset still stored.
    pub start_offset: u64,
    /// Next offset to be written.
    pub end_offset: u64,
    /// Bytes of record batches (without a live segment's preallocated space).
    pub size_bytes: u64,
    /// Number of segment files.
    pub segment_count: usize,
    /// Why reading stopped before the end of the newest segment, if it did.
    pub tail_damage: Option<String>,
    /// Offset below which compaction passes have run (0: never).
    pub cleaned_offset: u64,
    /// Bytes of the sealed segments (all but the newest): what compaction works on.
    pub sealed_bytes: u64,
    /// Bytes of the sealed segments at or after `cleaned_offset`.
    pub dirty_bytes: u64,
}

impl PartitionInfo {
    /// Share of the sealed bytes not compacted yet (0 to 1; 0 with none):
    /// what the background compactor compares with `min_cleanable_dirty_ratio`.
    pub fn dirty_ratio(&self) -> f64 {
        if self.sealed_bytes == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / self.sealed_bytes as f64
        }
    }
}

impl Inspector {
    /// A view of `dir`; fails when it is not a directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Inspector> {
        let dir = dir.as_ref().to_path_buf();
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(Inspector { dir }),
            Ok(_) => Err(Error::io(
                "opening the broker directory",
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            )),
            Err(e) => Err(Error::io("opening the broker directory", &dir, e)),
        }
    }

    /// The broker directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Names of all topics, sorted.
    pub fn topics(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io("listing broker directory", &self.dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing broker directory", &self.dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_topic_name(&name).is_ok() && entry.path().join(META_FILE).is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// A topic's persisted settings; `Error::UnknownTopic` if there is no such topic.
    pub fn topic_meta(&self, topic: &str) -> Result<TopicMeta> {
        validate_topic_name(topic)?;
        let path = self.dir.join(topic).join(META_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::UnknownTopic {
                    topic: topic.to_string(),
                })
            }
            Err(e) => return Err(Error::io("reading topic metadata", &path, e)),
        };
        topic_meta::decode(&bytes).map_err(|e| Error::Corruption {
            path,
            position: e.at as u64,
            reason: e.message(),
        })
    }

    /// Settings and per-partition offsets and sizes of a topic.
    pub fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        let meta = self.topic_meta(topic)?;
        let partitions = (0..meta.partitions)
            .map(|p| self.partition_info(topic, p))
            .collect::<Result<Vec<_>>>()?;
        Ok(TopicInfo {
            name: topic.to_string(),
            meta,
            partitions,
        })
    }

    /// The directory of a partition; `Error::UnknownPartition` outside the topic's count.
    pub fn partition_dir(&self, topic: &str, partition: u32) -> Result<PathBuf> {
        let meta = self.topic_meta(topic)?;
        if partition >= meta.partitions {
            return Err(Error::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partition_count: meta.partitions,
            });
        }
        Ok(self.dir.join(topic).join(partition.to_string()))
    }

    /// Offsets and sizes of one partition. Reads the newest segment from the
    /// position the recovery checkpoint vouches for (from its start without one).
    pub fn partition_info(&self, topic: &str, partition: u32) -> Result<PartitionInfo> {
        let dir = self.partition_dir(topic, partition)?;
        let ckpt = std::fs::read(dir.join(crate::log::CHECKPOINT_FILE))
            .ok()
            .and_then(|b| checkpoint::decode(&b).ok());
        let bases = match list_segments(&dir) {
            Ok(b) => b,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let (Some(&first), Some(&last)) = (bases.first(), bases.last()) else {
            let at = ckpt.map_or(0, |c| c.next_offset);
            let info = PartitionInfo {
                partition,
                start_offset: at,
                end_offset: at,
                size_bytes: 0,
                segment_count: 0,
                tail_damage: None,
                cleaned_offset: 0,
                sealed_bytes: 0,
                dirty_bytes: 0,
            };
            return Ok(info);
        };
        let cleaned_offset = crate::log::cleaned_upto_of(&dir);
        let (mut size, mut dirty) = (0, 0);
        for &base in bases.iter().filter(|&&b| b != last) {
            // A segment deleted by retention (or replaced by compaction) since
            // the listing counts as empty.
            let len = std::fs::metadata(segfile::segment_path(&dir, base)).map_or(0, |m| m.len());
            size += len;
            if base >= cleaned_offset {
                dirty += len;
            }
        }
        let seg = SegmentFile::open(segfile::segment_path(&dir, last))?;
        let len = seg.len()?;
        // A live checkpoint of this boot is a hint as good as an fsynced one
        // (the walk below checks what follows it either way).
        let live = crate::log::live_checkpoint_of_this_boot(&dir).ok().flatten();
        let hint = ckpt
            .map(|c| (c.segment_base, c.position, c.next_offset))
            .into_iter()
            .chain(live.map(|c| (c.segment_base, c.position, c.next_offset)))
            .filter(|&(base, pos, _)| base == last && pos > 0 && pos <= len)
            .max()
            .map(|(_, pos, next)| (pos, next));
        let mut end = None;
        if let Some((pos, next)) = hint {
            let e = seg.walk(pos, Some(next), WalkOptions::default(), &mut |_| true)?;
            if !matches!(e.stop, WalkStop::Damage(_)) {
                end = Some((e.position, e.next_offset.unwrap_or(next), None));
            }
        }
        let (data_end, end_offset, tail_damage) = match end {
            Some(e) => e,
            None => {
                let e = seg.walk(0, Some(last), WalkOptions::default(), &mut |_| true)?;
                let damage = match e.stop {
                    WalkStop::Damage(reason) => {
                        Some(format!("{} at byte {}: {reason}", seg.path().display(), e.position))
                    }
                    _ => None,
                };
                (e.position, e.next_offset.unwrap_or(last), damage)
            }
        };
        Ok(PartitionInfo {
            partition,
            start_offset: first,
            end_offset,
            size_bytes: size + data_end,
            segment_count: bases.len(),
            tail_damage,
            cleaned_offset,
            sealed_bytes: size,
            dirty_bytes: dirty,
        })
    }

    /// A reader of `topic`/`partition` starting at `offset`.
    pub fn reader(&self, topic: &str, partition: u32, offset: u64) -> Result<PartitionReader> {
        let dir = self.partition_dir(topic, partition)?;
        Ok(PartitionReader::new(topic, partition, dir, offset))
    }

    /// Which transactions committed, from `@txn/txn.log` as it is now (a
    /// live owner may commit more later: read it again to see them).
    pub fn transactions(&self) -> Result<Transactions> {
        let path = self.dir.join("@txn").join("txn.log");
        let bytes = crate::fs::read_optional(&path)?.unwrap_or_default();
        let replay = crate::txn::coordinator::replay_file(&path, &bytes)?;
        Ok(Transactions {
            committed: replay.committed,
        })
    }

    /// Every group's committed offsets.
    pub fn committed_offsets(&self) -> Result<CommittedOffsets> {
        read_committed(&self.dir)
    }

    /// Full check of every batch of every segment of a partition. `progress`
    /// is called with the bytes checked as the scan goes.
    pub fn verify_partition(
        &self,
        topic: &str,
        partition: u32,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PartitionCheck> {
        let dir = self.partition_dir(topic, partition)?;
        verify::verify_dir(topic, partition, &dir, progress)
    }
}
