//! The broker's transaction coordinator: transaction ids, the committed set,
//! the transaction log `@txn/txn.log`, and the commit protocol (see
//! ARCHITECTURE.md, "Transactions: the commit protocol and why it is atomic").

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::ids::IdSet;
use crate::config::Durability;
use crate::entry_log::{self, EntryLog};
use crate::error::{Error, Result};
use crate::format::txn::{self, ControlKind, TxnEntry, TxnOffset, FILE_HEADER};
use crate::group::Coordinator;
use crate::log::txn::Committed;
use crate::log::Log;
use crate::names::TopicPartition;

/// Ids reserved by one durable `Reserve` entry.
const ID_BLOCK: u64 = 4096;
/// The transaction log is rewritten when it is over this size and over
/// [`REWRITE_FACTOR`] times its compacted size.
const REWRITE_BYTES: u64 = 1024 * 1024;
const REWRITE_FACTOR: u64 = 8;

/// A commit and its group offsets.
pub(crate) type Pending = (u64, Vec<TxnOffset>);

/// What replaying a transaction log found.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// Committed transaction ids.
    pub(crate) committed: IdSet,
    /// First id not reserved: ids from here were never handed out.
    pub(crate) reserved: u64,
    /// Commits whose group offsets are not known to be in the offsets log, in commit order.
    pub(crate) pending: Vec<Pending>,
    /// Why the replay stopped before the end, if it did.
    pub(crate) stopped: Option<String>,
}

/// Replays the bytes of a transaction log (`path` is for messages). A bad
/// header is an error; a file shorter than its header holds nothing; a torn
/// or damaged entry ends the replay (reported in `stopped`).
pub(crate) fn replay_file(path: &Path, bytes: &[u8]) -> Result<Replay> {
    let mut r = Replay {
        reserved: 1,
        ..Replay::default()
    };
    let log = EntryLog {
        header: FILE_HEADER,
        bad_header: "transaction log header \"LBtx\" expected",
        torn: "torn entry",
        torn_cause: "a crash while writing it",
        damaged: "damaged entries",
    };
    r.stopped = entry_log::replay(&log, path, bytes, txn::decode, |entry| match entry {
        TxnEntry::Reserve { up_to } => r.reserved = r.reserved.max(up_to),
        TxnEntry::Commit { id, offsets } => {
            r.committed.insert(id);
            if !offsets.is_empty() {
                r.pending.push((id, offsets));
            }
        }
        TxnEntry::Applied { id } => r.pending.retain(|(p, _)| *p != id),
        TxnEntry::Committed { ranges } => {
            for (first, last) in ranges {
                r.committed.insert_range(first, last);
            }
        }
    })?;
    Ok(r)
}

/// The transaction log file.
struct TxnFile {
    file: File,
    bytes: u64,
    /// First id not reserved (what the last `Reserve` entry says).
    reserved: u64,
    /// A write or fsync failed: nothing more is appended until reopen.
    failed: Option<Arc<Error>>,
}

/// Transaction ids handed out so far.
struct Ids {
    next: u64,
}

/// The broker's transactions.
pub(crate) struct TxnCoordinator {
    path: PathBuf,
    durability: Durability,
    /// Ids of committed transactions. Readers compute their bound under its
    /// read lock; a commit becomes visible under its write lock.
    committed: RwLock<IdSet>,
    ids: Mutex<Ids>,
    file: Mutex<TxnFile>,
}

impl std::fmt::Debug for TxnCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnCoordinator").field("path", &self.path).finish()
    }
}

impl Committed for TxnCoordinator {
    #[inline]
    fn is_committed(&self, id: u64) -> bool {
        self.committed.read().contains(id)
    }

    fn stable(&self, hold: &dyn Fn() -> u64) -> u64 {
        let _commits = self.committed.read();
        hold()
    }
}

impl TxnCoordinator {
    /// Opens `<dir>/@txn/txn.log`. Returns the coordinator and the commits
    /// whose group offsets must be applied before [`finish_open`](Self::finish_open).
    pub(crate) fn open(
        dir: &Path,
        durability: Durability,
        notes: &mut Vec<String>,
    ) -> Result<(TxnCoordinator, Vec<Pending>)> {
        let tdir = dir.join("@txn");
        crate::fs::create_dir_durable(&tdir)?;
        let path = tdir.join("txn.log");
        let bytes = crate::fs::read_optional(&path)?.unwrap_or_default();
        let replay = replay_file(&path, &bytes)?;
        if let Some(why) = &replay.stopped {
            notes.push(format!("{why}; cut there"));
        }
        let file = crate::fs::open_rw(&path, "opening transaction log")?;
        let coordinator = TxnCoordinator {
            path,
            durability,
            committed: RwLock::new(replay.committed),
            ids: Mutex::new(Ids { next: replay.reserved }),
            file: Mutex::new(TxnFile {
                file,
                bytes: 0,
                reserved: replay.reserved,
                failed: None,
            }),
        };
        // Compare with the compacted form now (the pending commits are
        // applied before the rewrite drops them).
        let keep = bytes == coordinator.compacted(replay.reserved) && replay.pending.is_empty();
        if keep {
            let mut f = coordinator.file.lock();
            std::io::Seek::seek(&mut f.file, std::io::SeekFrom::End(0))
                .map_err(|e| Error::io("opening transaction log", &coordinator.path, e))?;
            f.bytes = bytes.len() as u64;
        }
        Ok((coordinator, replay.pending))
    }

    /// Rewrites the log compactly (drops a damaged tail and applied commits)
    /// unless it already is; call after the pending offsets are applied.
    pub(crate) fn finish_open(&self) -> Result<()> {
        let mut f = self.file.lock();
        if f.bytes == 0 {
            let compacted = self.compacted(f.reserved);
            self.replace(&mut f, &compacted)?;
        }
        Ok(())
    }

    /// The log's compacted content: the reservation and the committed ids.
    fn compacted(&self, reserved: u64) -> Vec<u8> {
        let mut buf = FILE_HEADER.to_vec();
        let ranges: Vec<(u64, u64)> = self.committed.read().ranges().collect();
        // Neither entry can be over the limit: 16 bytes a range would need a
        // million of them; past that the ranges are split over entries.
        let _ = txn::encode(&TxnEntry::Reserve { up_to: reserved }, &mut buf);
        for chunk in ranges.chunks(65_536) {
            let _ = txn::encode(&TxnEntry::Committed { ranges: chunk.to_vec() }, &mut buf);
        }
        buf
    }

    fn replace(&self, f: &mut TxnFile, bytes: &[u8]) -> Result<()> {
        crate::fs::write_atomic(&self.path, bytes)?;
        let mut file = crate::fs::open_rw(&self.path, "opening transaction log")?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
            .map_err(|e| Error::io("opening transaction log", &self.path, e))?;
        f.file = file;
        f.bytes = bytes.len() as u64;
        Ok(())
    }

    /// Appends `entry`, fsynced when `sync`. A failure refuses every later
    /// append (the file may hold part of the entry) until reopen.
    fn append(&self, f: &mut TxnFile, entry: &[u8], sync: bool) -> Result<()> {
        if let Some(e) = &f.failed {
            return Err(Error::TransactionLog {
                reason: e.to_string(),
                source: Arc::clone(e),
            });
        }
        let result = f
            .file
            .write_all(entry)
            .and_then(|()| if sync { f.file.sync_data() } else { Ok(()) })
            .map_err(|e| Error::io("appending to the transaction log", &self.path, e));
        match result {
            Ok(()) => {
                f.bytes += entry.len() as u64;
                #[cfg(feature = "fault-injection")]
                if sync {
                    crate::testing::synced(|| crate::testing::SyncEvent::File(self.path.clone()));
                }
                Ok(())
            }
            Err(e) => {
                let e = Arc::new(e);
                f.failed = Some(Arc::clone(&e));
                Err(Error::TransactionLog {
                    reason: e.to_string(),
                    source: e,
                })
            }
        }
    }

    /// A new transaction id, never handed out before (also across restarts
    /// and power loss: ids are reserved by an fsynced entry before use).
    pub(crate) fn begin(&self) -> Result<u64> {
        let mut ids = self.ids.lock();
        let id = ids.next;
        let mut f = self.file.lock();
        if id >= f.reserved {
            let up_to = id.saturating_add(ID_BLOCK);
            let mut entry = Vec::new();
            let _ = txn::encode(&TxnEntry::Reserve { up_to }, &mut entry);
            self.append(&mut f, &entry, true)?;
            f.reserved = up_to;
        }
        ids.next = id.saturating_add(1);
        Ok(id)
    }

    /// Commits transaction `id`, which appended to `logs`, with the group
    /// offsets `offsets` (see ARCHITECTURE.md for the steps).
    pub(crate) fn commit(&self, id: u64, logs: &[Log], offsets: &[TxnOffset], groups: &Coordinator) -> Result<()> {
        // 1. Its records are durable before the commit point can be.
        let sync = self.durability != Durability::PageCache;
        if sync {
            for log in logs {
                log.flush()?;
            }
        }
        let mut entry = Vec::new();
        let commit = TxnEntry::Commit {
            id,
            offsets: offsets.to_vec(),
        };
        txn::encode(&commit, &mut entry).ok_or_else(|| {
            Error::config(
                "send_offsets",
                offsets.len(),
                "the transaction's group offsets take more than 16 MiB; commit fewer partitions per transaction",
            )
        })?;
        let mut f = self.file.lock();
        // 2. The commit point.
        self.append(&mut f, &entry, sync)?;
        // 3. Visible in every partition at once.
        {
            let mut committed = self.committed.write();
            committed.insert(id);
            for log in logs {
                log.end_txn(id);
            }
        }
        // 4. The group offsets, in commit order (the file lock is held).
        let applied = self.apply_offsets(id, offsets, groups, &mut f);
        self.maybe_rewrite(&mut f);
        drop(f);
        // 5. Markers, for the tools (visibility never depends on them).
        for log in logs {
            let _ = log.append_marker(id, ControlKind::Commit);
        }
        applied
    }

    fn apply_offsets(&self, id: u64, offsets: &[TxnOffset], groups: &Coordinator, f: &mut TxnFile) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        apply_to_groups(offsets, groups, false)?;
        let mut entry = Vec::new();
        let _ = txn::encode(&TxnEntry::Applied { id }, &mut entry);
        // Not fsynced: a lost entry only makes the next open apply the
        // offsets again, never moving a committed offset backwards.
        self.append(f, &entry, false)
    }

    /// Rewrites the log when it is mostly applied commits. A failure leaves
    /// the old file, which still replays to the same state.
    fn maybe_rewrite(&self, f: &mut TxnFile) {
        let live = 64 + 16 * self.committed.read().range_count() as u64;
        if f.bytes > REWRITE_BYTES && f.bytes > live * REWRITE_FACTOR {
            let compacted = self.compacted(f.reserved);
            let _ = self.replace(f, &compacted);
        }
    }

    /// Aborts transaction `id`, which appended to `logs` (with abort
    /// markers, for the tools, when `markers`).
    pub(crate) fn abort(&self, id: u64, logs: &[Log], markers: bool) {
        {
            let _committed = self.committed.write();
            for log in logs {
                log.end_txn(id);
            }
        }
        if markers {
            for log in logs {
                let _ = log.append_marker(id, ControlKind::Abort);
            }
        }
    }

    /// Makes the log durable (under `PageCache`, where commits are not fsynced).
    pub(crate) fn flush(&self) -> Result<()> {
        let f = self.file.lock();
        f.file
            .sync_data()
            .map_err(|e| Error::io("syncing the transaction log", &self.path, e))
    }
}

/// Writes transaction offsets into the groups' committed offsets. With
/// `forward_only` (recovery), an offset is written only where the group's
/// committed offset is missing or lower: a later ordinary commit wins.
pub(crate) fn apply_to_groups(offsets: &[TxnOffset], groups: &Coordinator, forward_only: bool) -> Result<()> {
    let mut by_group: std::collections::BTreeMap<&str, Vec<(TopicPartition, u64)>> = Default::default();
    for o in offsets {
        let tp = TopicPartition::new(o.topic.clone(), o.partition);
        if forward_only && groups.committed(&o.group, &tp).is_some_and(|c| c >= o.offset) {
            continue;
        }
        by_group.entry(&o.group).or_default().push((tp, o.offset));
    }
    for (group, entries) in by_group {
        groups.commit_unfenced(group, &entries)?;
    }
    Ok(())
}
