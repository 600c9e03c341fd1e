//! Durable committed offsets: an append-only, checksummed log of commits
//! (`@groups/offsets.log`), replayed on open and compacted when mostly stale.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Durability;
use crate::entry_log::{self, EntryLog};
use crate::error::{Error, Result};
use crate::format::offsets::{self, OffsetEntry, FILE_HEADER};
use crate::names::TopicPartition;

pub(crate) type Offsets = BTreeMap<TopicPartition, u64>;

pub(crate) struct OffsetStore {
    path: PathBuf,
    file: File,
    groups: BTreeMap<String, Offsets>,
    file_bytes: u64,
    durability: Durability,
}

impl OffsetStore {
    /// Opens the store; a torn tail (crash mid-append) is cut off and reported in `notes`.
    pub(crate) fn open(dir: &Path, durability: Durability, notes: &mut Vec<String>) -> Result<OffsetStore> {
        let gdir = dir.join("@groups");
        crate::fs::create_dir_durable(&gdir)?;
        let path = gdir.join("offsets.log");
        let bytes = crate::fs::read_optional(&path)?.unwrap_or_default();
        let (groups, stopped) = replay_file(&path, &bytes)?;
        if let Some(why) = stopped {
            notes.push(format!("{why}; cut there"));
        }
        let mut store = OffsetStore {
            file: crate::fs::open_rw(&path, "opening offsets log")?,
            path,
            groups,
            file_bytes: 0,
            durability,
        };
        // Rewrite at open: drops a damaged tail and stale entries. A file that
        // is already exactly its compacted form is kept (the rewrite costs two
        // fsyncs, on every open of a broker whose groups never commit).
        let compacted = store.compacted();
        if compacted == bytes {
            std::io::Seek::seek(&mut store.file, std::io::SeekFrom::End(0))
                .map_err(|e| Error::io("opening offsets log", &store.path, e))?;
            store.file_bytes = bytes.len() as u64;
        } else {
            store.replace_with(&compacted)?;
        }
        Ok(store)
    }

    pub(crate) fn get(&self, group: &str, tp: &TopicPartition) -> Option<u64> {
        self.groups.get(group)?.get(tp).copied()
    }

    pub(crate) fn group(&self, group: &str) -> Option<&Offsets> {
        self.groups.get(group)
    }

    pub(crate) fn group_names(&self) -> impl Iterator<Item = &String> {
        self.groups.iter().filter(|(_, o)| !o.is_empty()).map(|(g, _)| g)
    }

    /// Appends commits; durable before return under `Durability::Sync`.
    pub(crate) fn commit(&mut self, group: &str, entries: &[(TopicPartition, u64)]) -> Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * 48);
        for (tp, offset) in entries {
            offsets::encode(
                &OffsetEntry::Commit {
                    group: group.to_string(),
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: *offset,
                },
                &mut buf,
            );
        }
        self.append(&buf)?;
        let g = self.groups.entry(group.to_string()).or_default();
        for (tp, offset) in entries {
            g.insert(tp.clone(), *offset);
        }
        self.maybe_compact()
    }

    pub(crate) fn delete_group(&mut self, group: &str) -> Result<()> {
        let mut buf = Vec::new();
        offsets::encode(
            &OffsetEntry::DeleteGroup {
                group: group.to_string(),
            },
            &mut buf,
        );
        self.append(&buf)?;
        self.groups.remove(group);
        Ok(())
    }

    fn append(&mut self, buf: &[u8]) -> Result<()> {
        self.file
            .write_all(buf)
            .map_err(|e| Error::io("appending to offsets log", &self.path, e))?;
        self.file_bytes += buf.len() as u64;
        if self.durability != Durability::PageCache {
            self.sync()?;
        }
        Ok(())
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("syncing offsets log", &self.path, e))?;
        #[cfg(feature = "fault-injection")]
        crate::testing::synced(|| crate::testing::SyncEvent::File(self.path.clone()));
        Ok(())
    }

    fn live_entries(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }

    fn maybe_compact(&mut self) -> Result<()> {
        let live_bytes = (self.live_entries() as u64) * 64;
        if self.file_bytes > 1024 * 1024 && self.file_bytes > live_bytes * 8 {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with only the live commits (temp, fsync, rename, dir fsync).
    fn compact(&mut self) -> Result<()> {
        let buf = self.compacted();
        self.replace_with(&buf)
    }

    /// The file's content with one entry per committed offset.
    fn compacted(&self) -> Vec<u8> {
        let mut buf = FILE_HEADER.to_vec();
        for (g, offsets) in &self.groups {
            for (tp, offset) in offsets {
                offsets::encode(
                    &OffsetEntry::Commit {
                        group: g.clone(),
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset: *offset,
                    },
                    &mut buf,
                );
            }
        }
        buf
    }

    /// Atomically replaces the file with `buf` and appends after it from now on.
    fn replace_with(&mut self, buf: &[u8]) -> Result<()> {
        crate::fs::write_atomic(&self.path, buf)?;
        let mut file = crate::fs::open_rw(&self.path, "opening offsets log")?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
            .map_err(|e| Error::io("opening offsets log", &self.path, e))?;
        self.file = file;
        self.file_bytes = buf.len() as u64;
        Ok(())
    }
}

/// Replays the bytes of an offsets log (`path` is for messages): every
/// group's committed offsets, and why the replay stopped before the end, if it
/// did (a torn last commit, or damage). A bad header is an error; a file
/// shorter than its header is a torn first write and holds nothing.
pub(crate) fn replay_file(path: &Path, bytes: &[u8]) -> Result<(BTreeMap<String, Offsets>, Option<String>)> {
    let mut groups: BTreeMap<String, Offsets> = BTreeMap::new();
    let log = EntryLog {
        header: FILE_HEADER,
        bad_header: "offsets log header \"LBof\" expected",
        torn: "torn commit",
        torn_cause: "a crash during a commit",
        damaged: "damaged commits",
    };
    let stopped = entry_log::replay(&log, path, bytes, offsets::decode, |entry| apply(&mut groups, entry))?;
    Ok((groups, stopped))
}

fn apply(groups: &mut BTreeMap<String, Offsets>, entry: OffsetEntry) {
    match entry {
        OffsetEntry::Commit {
            group,
            topic,
            partition,
            offset,
        } => {
            groups
                .entry(group)
                .or_default()
                .insert(TopicPartition::new(topic, partition), offset);
        }
        OffsetEntry::DeleteGroup { group } => {
            groups.remove(&group);
        }
    }
}
