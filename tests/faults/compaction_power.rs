//! Power loss during compaction passes (issue 16), simulated from the fsync seam.
//!
//! Run twice: under `Durability::Sync` (every record durable before a pass)
//! and under `PageCache`, where a pass meets records that are not durable
//! yet; there the durable variant below takes each file's bytes as of its
//! last fsync (nothing for a file never fsynced), and the log may come back
//! shorter: every key's latest record *among those that survived* must be
//! there.
//!
//! A compacted log (`Durability::Sync`, small segments) is written in rounds
//! of keyed updates and tombstones; after each round a compaction pass runs
//! with the `fault-injection` sync observer installed. At every fsync the
//! pass makes (segment, `.cleaned` file, checkpoint, `compact.state`,
//! directory), the observer records the partition directory: each inode's
//! bytes, and the listing (name -> inode) as of the last directory fsync.
//! Two crash states come from each point, each in a fresh directory:
//!
//! * **durable listing**: the names of the last directory fsync, each with
//!   its inode's bytes (a creation, rename or deletion not yet made durable
//!   by a directory fsync did not happen);
//! * **current listing**: every name as it is now (every directory change
//!   reached the disk);
//! * **renames only**: the current names, plus the names deleted since the
//!   last directory fsync (creations and renames reached the disk,
//!   deletions did not).
//!
//! Each state must open and hold every record written so far at its
//! offset: every key's latest record (or nothing of the key, for a
//! tombstone compaction may remove), every record read equal to the one
//! written at its offset, increasing offsets, the same end offset, `verify`
//! clean; and a pass run on it must keep all of that.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use logbus::log::Log;
use logbus::testing::{set_sync_observer, SyncEvent};
use logbus::{CleanupPolicy, Durability, LogConfig, Record, TopicConfig};

use crate::common;

const ROUNDS: u64 = 3;
const PER_ROUND: u64 = 150;
const KEYS: u64 = 25;

fn config(durability: Durability) -> LogConfig {
    let topic = TopicConfig::new(1)
        .segment_bytes(1024)
        .cleanup_policy(CleanupPolicy::Compact)
        .delete_retention_ms(0);
    LogConfig::from_topic(&topic, durability)
}

/// One crash point: file names (durable and current) with their bytes.
struct Point {
    durable: Vec<(OsString, Vec<u8>)>,
    current: Vec<(OsString, Vec<u8>)>,
    renames_only: Vec<(OsString, Vec<u8>)>,
    /// Records written before it.
    written: usize,
}

#[derive(Default)]
struct Recorder {
    dir: PathBuf,
    /// Latest bytes seen of each inode (a deleted file keeps its last ones).
    inodes: HashMap<u64, Vec<u8>>,
    /// The listing as of the last directory fsync.
    durable_listing: Vec<(OsString, u64)>,
    /// Bytes of each inode at its last fsync (`PageCache` runs: what a power
    /// loss keeps of a file; a file never fsynced keeps nothing).
    synced: HashMap<u64, Vec<u8>>,
    /// The durable variant takes each file's fsynced bytes, not its latest.
    page_cache: bool,
    points: Vec<Point>,
    written: usize,
    capturing: bool,
}

impl Recorder {
    /// Reads the directory: every name with its inode, recording each inode's bytes.
    fn scan(&mut self) -> Vec<(OsString, u64)> {
        let mut listing = Vec::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if let Ok(bytes) = std::fs::read(e.path()) {
                self.inodes.insert(e.ino(), bytes);
                listing.push((e.file_name(), e.ino()));
            }
        }
        listing
    }

    fn observe(&mut self, event: &SyncEvent) {
        let current = self.scan();
        if self.capturing {
            self.freeze(&current);
        }
        match event {
            SyncEvent::Dir(d) if d == &self.dir => self.durable_listing = current,
            SyncEvent::File(p) => {
                if let (Ok(meta), Ok(bytes)) = (std::fs::metadata(p), std::fs::read(p)) {
                    self.synced.insert(meta.ino(), bytes);
                }
            }
            SyncEvent::Dir(_) => {}
        }
    }

    /// A crash point as if power failed just before the fsync being
    /// reported completed (the state just after it is the next point's).
    fn freeze(&mut self, current: &[(OsString, u64)]) {
        let files = |listing: &[(OsString, u64)]| {
            listing
                .iter()
                .filter_map(|(n, ino)| Some((n.clone(), self.inodes.get(ino)?.clone())))
                .collect()
        };
        let durable = if self.page_cache {
            self.durable_listing
                .iter()
                .map(|(n, ino)| (n.clone(), self.synced.get(ino).cloned().unwrap_or_default()))
                .collect()
        } else {
            files(&self.durable_listing)
        };
        // Deleted since the last directory fsync: in the durable listing, and
        // neither the name nor the inode (renamed) is current.
        let mut renames_only = current.to_vec();
        renames_only.extend(
            self.durable_listing
                .iter()
                .filter(|(n, ino)| current.iter().all(|(cn, cino)| cn != n && cino != ino))
                .cloned(),
        );
        let point = Point {
            durable,
            current: files(current),
            renames_only: files(&renames_only),
            written: self.written,
        };
        self.points.push(point);
    }

    /// Everything now on disk counts as durable (the log was just flushed).
    fn settle(&mut self) {
        self.durable_listing = self.scan();
    }
}

fn record(i: u64) -> (u64, Option<String>, Record) {
    let key = (i * 7) % KEYS;
    if i % 13 == 6 {
        (
            key,
            None,
            Record::tombstone(format!("k{key}")).with_timestamp(1_000 + i as i64),
        )
    } else {
        let v = format!("v{i}-{}", "y".repeat((i % 29) as usize));
        let r = Record::new(v.clone())
            .with_key(format!("k{key}"))
            .with_header("i", i.to_le_bytes().to_vec())
            .with_timestamp(1_000 + i as i64);
        (key, Some(v), r)
    }
}

/// Checks a crash state of a log that had the first `written` records;
/// `prefix`: a power loss may have taken the newest of them (`PageCache`).
fn check_state(dir: &Path, written: usize, what: &str, then_compact: bool, prefix: bool) {
    let log = Log::open(dir, config(Durability::PageCache)).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    if prefix {
        assert!(
            log.end_offset() <= written as u64,
            "{what}: end offset past what was written"
        );
    } else {
        assert_eq!(log.end_offset(), written as u64, "{what}: end offset");
    }
    // Every key's latest record among those that survived must be there.
    let written = log.end_offset() as usize;
    // The segments tile the offsets: each ends where the next begins.
    let segments = common::segment_paths(dir);
    for (i, (base, path)) in segments.iter().enumerate() {
        let batches = common::batches(&std::fs::read(path).unwrap());
        if batches.is_empty() && i + 1 == segments.len() {
            continue; // an active segment with nothing (durable) in it yet
        }
        assert_eq!(
            batches.first().map(|b| b.1.base_offset),
            Some(*base),
            "{what}: {path:?}"
        );
        if let Some(&(next, _)) = segments.get(i + 1) {
            let end = batches.last().unwrap().1.next_offset();
            assert_eq!(
                end, next,
                "{what}: {path:?} ends at {end}, the next segment starts at {next}"
            );
        }
    }
    for pass in 0..1 + usize::from(then_compact) {
        // Pass 0 checks the crash state, pass 1 the same after a compaction pass on it.
        let mut stored: BTreeMap<u64, (Vec<u8>, Option<Vec<u8>>)> = BTreeMap::new();
        let mut at = log.start_offset();
        while at < log.end_offset() {
            let next = log
                .read_with(at, 64, |r| {
                    let value = (!r.is_tombstone()).then(|| r.value().to_vec());
                    let header: Vec<_> = r.headers().map(|(_, v)| v.to_vec()).collect();
                    let i = r.offset();
                    assert!(stored.keys().next_back().is_none_or(|&l| l < i), "{what}: order");
                    let (_, want_v, want) = record(i);
                    assert_eq!(r.key(), want.key(), "{what}: key at {i}");
                    assert_eq!(
                        value.as_deref(),
                        want_v.as_deref().map(str::as_bytes),
                        "{what}: value at {i}"
                    );
                    assert_eq!(r.timestamp(), 1_000 + i as i64, "{what}: timestamp at {i}");
                    if want_v.is_some() {
                        assert_eq!(header, [i.to_le_bytes().to_vec()], "{what}: headers at {i}");
                    }
                    stored.insert(i, (r.key().unwrap().to_vec(), value));
                })
                .unwrap_or_else(|e| panic!("{what}: read at {at}: {e}"));
            assert!(next > at, "{what}: no progress at {at}");
            at = next;
        }
        let mut latest: HashMap<u64, u64> = HashMap::new();
        for i in 0..written as u64 {
            latest.insert(record(i).0, i);
        }
        for (key, i) in latest {
            let tombstone = record(i).1.is_none();
            assert!(
                stored.contains_key(&i) || tombstone,
                "{what}: key k{key} lost its latest record {i} (pass {pass})"
            );
        }
        log.verify().unwrap_or_else(|e| panic!("{what}: verify: {e}"));
        if pass == 0 {
            // A pass on the recovered state keeps every promise too.
            log.compact().unwrap_or_else(|e| panic!("{what}: compact: {e}"));
        }
    }
    log.close().unwrap();
}

fn build(files: &[(OsString, Vec<u8>)], into: &Path) {
    for (name, bytes) in files {
        std::fs::write(into.join(name), bytes).unwrap();
    }
}

/// Writes `ROUNDS` rounds under `durability`, a pass after each with crash
/// points recorded, then checks every distinct crash state. Returns
/// (crash points, crash states, records removed).
fn run(durability: Durability) -> (usize, usize, u64) {
    let page_cache = durability == Durability::PageCache;
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Mutex::new(Recorder {
        dir: dir.path().to_path_buf(),
        page_cache,
        ..Recorder::default()
    }));
    let r = Arc::clone(&recorder);
    set_sync_observer(Some(Box::new(move |event| r.lock().unwrap().observe(&event))));
    let log = Log::open(dir.path(), config(durability)).unwrap();
    let mut removed = 0;
    for round in 0..ROUNDS {
        for i in round * PER_ROUND..(round + 1) * PER_ROUND {
            log.append(&[record(i).2]).unwrap();
        }
        {
            let mut rec = recorder.lock().unwrap();
            if !page_cache {
                // Sync: every append was fsynced before it returned.
                rec.settle();
            }
            rec.written = ((round + 1) * PER_ROUND) as usize;
            rec.capturing = true;
        }
        removed += log.compact().unwrap().records_removed;
        recorder.lock().unwrap().capturing = false;
    }
    set_sync_observer(None);
    log.close().unwrap();
    let points = std::mem::take(&mut recorder.lock().unwrap().points);
    assert!(removed > 0, "the passes removed nothing: the test is too weak");
    assert!(points.len() > 4 * ROUNDS as usize, "only {} crash points", points.len());
    let mut states = 0;
    // Many points give the same state (no directory change between them): check each once.
    let mut checked = std::collections::HashSet::new();
    for (n, p) in points.iter().enumerate() {
        let kinds = [
            ("durable listing", &p.durable),
            ("current listing", &p.current),
            ("renames only", &p.renames_only),
        ];
        for (kind, files) in kinds {
            let mut sorted = files.clone();
            sorted.sort();
            if !checked.insert((p.written, kind == "renames only", sorted)) {
                continue;
            }
            let state = tempfile::tempdir().unwrap();
            build(files, state.path());
            // A pass on the recovered state too, on the variant most likely to trip it.
            let then_compact = kind == "renames only";
            // Under PageCache the durable variant holds only what was fsynced.
            let prefix = page_cache && kind == "durable listing";
            let what = format!("{durability:?}, crash point {n} ({kind})");
            check_state(state.path(), p.written, &what, then_compact, prefix);
            states += 1;
        }
    }
    (points.len(), states, removed)
}

#[test]
fn power_loss_at_every_fsync_of_a_pass_keeps_every_latest_value() {
    let _faults = common::process_wide_faults();
    let (points, states, removed) = run(Durability::Sync);
    println!(
        "compaction_power: Sync, {points} crash points over {ROUNDS} passes, {states} crash states, records removed {removed}, lost 0"
    );
}

/// Under `PageCache` the records a pass reads may not be durable yet: a pass
/// must make them so before it removes the older records of their keys, or a
/// power loss could take a key's newer record after its older one is gone.
#[test]
fn power_loss_during_a_pass_over_unsynced_records_keeps_the_latest_surviving_values() {
    let _faults = common::process_wide_faults();
    let (points, states, removed) = run(Durability::PageCache);
    println!(
        "compaction_power: PageCache, {points} crash points over {ROUNDS} passes, {states} crash states, records removed {removed}, lost 0"
    );
}
