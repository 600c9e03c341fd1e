//! Power loss simulated from fsync-point snapshots (issue 6).
//!
//! Segments are written through a memory map, so individual stores cannot be
//! intercepted. Instead, the `fault-injection` sync observer reports every
//! successful fsync: on a file fsync the test copies the file's bytes as its
//! *durable image* (the copy may hold bytes written after the fsync; those may
//! or may not survive, which is allowed), on a directory fsync it records the
//! listing (name -> inode) as the *durable listing*. A workload runs in
//! `Sync` mode (three producer threads, 8 KiB segments rolled and deleted by
//! retention, a grouped consumer committing) and, every few acknowledgements,
//! freezes a *crash point*: every file's durable image and current bytes.
//!
//! From each crash point, crash states are built in fresh directories: each
//! file is its durable image plus, per 512-byte or 4 KiB block that differs
//! from the current bytes, one of {durable, current, zeros, garbage}, then
//! maybe truncated at a block boundary (never below its durable length); a
//! file whose current inode was never fsynced gets only a random mix of its
//! current bytes; a directory entry not covered by a directory fsync may be
//! missing (new file), or still present (deleted file, with its durable image),
//! or name the previous inode (a rename not yet durable). Each state must open
//! and keep every promise the acknowledgements made. The topic is created,
//! two of its partitions get a record, and the broker is reopened before the
//! workload (a partition closed empty has fsynced nothing; the others reopen
//! clean, with their clean checkpoint left on disk until their first append).
//!
//! The topic is not compacted (policy `Delete`): each partition must be
//! gap-free, since a gap here could only be a lost record (compaction under
//! power loss is `faults::compaction_power`'s).
//!
//! The observer is process-wide: the test holds `common::process_wide_faults`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logbus::testing::{set_sync_observer, SyncEvent};
use logbus::{Broker, BrokerConfig, ConsumerConfig, Durability, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::common::{self, Rng};

const TOPIC: &str = "events";
const GROUP: &str = "auditors";
const PARTITIONS: u32 = 3;
const RETENTION_BYTES: u64 = 16 * 1024;
const RECORDS_PER_PRODUCER: u64 = 540;
const ACKS_PER_CRASH_POINT: usize = 54;
const STATES_PER_CRASH_POINT: usize = 8;
const FILE_POINT_EVERY: usize = 71;
const FILE_POINTS: usize = 15;
const DIR_POINTS: usize = 20;

fn broker_config() -> BrokerConfig {
    BrokerConfig::new().durability(Durability::Sync)
}

/// A file as (inode, bytes).
type Image = (u64, Vec<u8>);

/// What the observer learnt: paths relative to the broker directory.
#[derive(Default, Clone)]
struct Durable {
    files: HashMap<PathBuf, Image>,
    dirs: HashMap<PathBuf, HashMap<OsString, u64>>,
}

/// Everything needed to build crash states at one moment of the run.
pub(super) struct CrashPoint {
    durable: Durable,
    current: BTreeMap<PathBuf, Image>,
    dirs: BTreeSet<PathBuf>,
    /// How many acknowledged records / commits precede this point.
    pub(super) acked: usize,
    acked_commits: HashMap<u32, u64>,
    /// Start offset of each partition at the freeze (its oldest segment):
    /// a crash state may start later only through retention at open.
    live_start: Vec<u64>,
    /// End offsets of the live broker before the freeze: written (not
    /// necessarily durable) records. Not known for points frozen by the observer.
    written_end: Option<Vec<u64>>,
}

/// State shared by the observer and the test thread.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) root: PathBuf,
    durable: Mutex<Durable>,
    pub(super) acked: Mutex<Vec<(u32, u64, String)>>,
    acked_commits: Mutex<HashMap<u32, u64>>,
    pub(super) points: Mutex<Vec<CrashPoint>>,
    dir_events: AtomicUsize,
    file_events: AtomicUsize,
    commits: AtomicUsize,
    /// Set once the topic exists: crash points before that test nothing.
    pub(super) ready: AtomicBool,
}

impl Recorder {
    /// A recorder of the broker directory `root`.
    pub(super) fn new(root: PathBuf) -> Recorder {
        Recorder {
            root,
            ..Recorder::default()
        }
    }

    /// Freezes a crash point. Lock order: acked, commits, durable.
    pub(super) fn freeze(&self, written_end: Option<Vec<u64>>) {
        let acked = self.acked.lock().unwrap().len();
        let acked_commits = self.acked_commits.lock().unwrap().clone();
        // No fsync completes while the files are read.
        let guard = self.durable.lock().unwrap();
        let (dirs, current) = walk(&self.root);
        let durable = guard.clone();
        drop(guard);
        let live_start = (0..PARTITIONS)
            .map(|p| {
                let dir = Path::new(TOPIC).join(p.to_string());
                current
                    .keys()
                    .filter(|k| k.parent() == Some(&dir))
                    .filter_map(|k| k.file_name()?.to_str()?.strip_suffix(".log")?.parse::<u64>().ok())
                    .min()
                    .unwrap_or(0)
            })
            .collect();
        self.points.lock().unwrap().push(CrashPoint {
            durable,
            current,
            dirs,
            acked,
            acked_commits,
            live_start,
            written_end,
        });
    }

    /// The sync observer. Every other directory fsync and every
    /// `FILE_POINT_EVERY`-th file fsync (up to a limit) first freezes a crash point as if
    /// power failed just before that fsync completed: the windows the test
    /// thread rarely hits (a deletion or rename not yet durable).
    pub(super) fn observe(&self, event: SyncEvent) {
        if self.ready.load(Ordering::SeqCst) {
            let (counter, every, limit) = match event {
                SyncEvent::Dir(_) => (&self.dir_events, 2, DIR_POINTS),
                SyncEvent::File(_) => (&self.file_events, FILE_POINT_EVERY, FILE_POINTS),
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n % every == every - 1 && n / every < limit {
                self.freeze(None);
            }
        }
        let root = &self.root;
        match event {
            SyncEvent::File(p) => {
                let Some(rel) = relative(root, &p) else { return };
                // Open once: inode and bytes of the same file. A file deleted
                // (retention) between its fsync and here is simply not recorded.
                let Ok(mut f) = std::fs::File::open(&p) else { return };
                let Ok(meta) = f.metadata() else { return };
                let mut bytes = Vec::new();
                if std::io::Read::read_to_end(&mut f, &mut bytes).is_ok() {
                    self.durable.lock().unwrap().files.insert(rel, (meta.ino(), bytes));
                }
            }
            SyncEvent::Dir(d) => {
                let Some(rel) = relative(root, &d) else { return };
                let Ok(entries) = std::fs::read_dir(&d) else { return };
                let listing = entries.flatten().map(|e| (e.file_name(), e.ino())).collect();
                self.durable.lock().unwrap().dirs.insert(rel, listing);
            }
        }
    }
}

fn value(producer: u32, seq: u64) -> String {
    format!("p{producer}-s{seq}-{}", "x".repeat((seq * 7 % 61) as usize))
}

fn relative(root: &Path, p: &Path) -> Option<PathBuf> {
    p.strip_prefix(root).ok().map(Path::to_path_buf)
}

/// Every directory and file under `root` now (relative paths).
fn walk(root: &Path) -> (BTreeSet<PathBuf>, BTreeMap<PathBuf, Image>) {
    let mut dirs = BTreeSet::new();
    let mut files = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        dirs.insert(rel.clone());
        for e in entries.flatten() {
            let child = rel.join(e.file_name());
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                todo.push(child);
            } else if let Ok(bytes) = std::fs::read(root.join(&child)) {
                files.insert(child, (e.ino(), bytes));
            }
        }
    }
    (dirs, files)
}

#[derive(Default, Debug)]
pub(super) struct Stats {
    pub(super) states: u64,
    files_written: u64,
    pub(super) blocks_not_current: u64,
    files_truncated: u64,
    entries_dropped: u64,
    entries_resurrected: u64,
    old_inode_kept: u64,
    states_dropping_written_records: u64,
    acked_checked: u64,
    acked_below_start: u64,
    records_read: u64,
    commits_checked: u64,
    commits_clamped: u64,
    retention_at_open: u64,
}

/// `durable` plus, per block that differs in `current`, one of {durable,
/// current, zeros, garbage}; then maybe cut at a block boundary at or past
/// `durable.len()`.
fn mix(rng: &mut Rng, durable: &[u8], current: &[u8], block: usize, stats: &mut Stats) -> Vec<u8> {
    let n = durable.len().max(current.len());
    let mut out = vec![0u8; n];
    out[..durable.len()].copy_from_slice(durable);
    // Per file: 0 every block random, 1 a persisted prefix of the changes,
    // 2 all changes persisted, 3 none persisted.
    let mode = rng.below(4);
    let prefix_cut = rng.below(n as u64 / block as u64 + 1) as usize * block;
    let mut pos = 0;
    while pos < n {
        let end = (pos + block).min(n);
        let d = durable.get(pos..end.min(durable.len())).unwrap_or_default();
        let c = current.get(pos..end.min(current.len())).unwrap_or_default();
        if d != c {
            let choice = match mode {
                0 => rng.below(4),
                1 if pos < prefix_cut => 1,
                1 => 0,
                2 => 1,
                _ => 0,
            };
            if choice != 1 {
                stats.blocks_not_current += 1;
            }
            // Only the bytes this block changed since the fsync are at risk:
            // the unchanged durable ones stay.
            for (i, byte) in out.iter_mut().enumerate().take(end).skip(pos) {
                let (db, cb) = (durable.get(i).copied(), current.get(i).copied());
                if db.is_some() && db == cb {
                    continue;
                }
                *byte = match choice {
                    0 => db.unwrap_or(0), // the write was lost (a hole past the durable end)
                    1 => cb.unwrap_or(0),
                    2 => 0,
                    _ => rng.below(256) as u8,
                };
            }
        }
        pos = end;
    }
    // The file's length: the current one, or cut at a block boundary
    // (never below the durable length).
    if n > durable.len() && rng.chance(3) {
        let first = durable.len().div_ceil(block);
        let last = n.div_ceil(block);
        let cut = ((first + rng.below((last - first) as u64 + 1) as usize) * block).clamp(durable.len(), n);
        if cut < n {
            stats.files_truncated += 1;
        }
        out.truncate(cut);
    } else if current.len() < n {
        out.truncate(current.len().max(durable.len()));
    }
    out
}

/// The content of `rel` in a crash state, or `None` when it is missing.
fn crash_file(rng: &mut Rng, cp: &CrashPoint, rel: &Path, block: usize, stats: &mut Stats) -> Option<Vec<u8>> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().unwrap();
    // The inode the durable listing names, if the directory was fsynced.
    let listed = cp.durable.dirs.get(parent).and_then(|l| l.get(name)).copied();
    let durable = cp.durable.files.get(rel);
    match cp.current.get(rel) {
        Some((ino, cur)) => {
            if let Some((_, dbytes)) = durable.filter(|(dino, _)| dino == ino) {
                if listed != Some(*ino) && rng.chance(3) {
                    stats.entries_dropped += 1;
                    return None; // created after the last directory fsync
                }
                Some(mix(rng, dbytes, cur, block, stats))
            } else {
                // The current inode's data was never fsynced.
                if listed == Some(*ino) {
                    return Some(mix(rng, &[], cur, block, stats));
                }
                if let Some((_, dbytes)) = durable.filter(|(dino, _)| Some(*dino) == listed) {
                    // Replaced by a rename that is not durable yet.
                    if rng.chance(2) {
                        stats.old_inode_kept += 1;
                        return Some(dbytes.clone());
                    }
                } else if rng.chance(3) {
                    stats.entries_dropped += 1;
                    return None;
                }
                Some(mix(rng, &[], cur, block, stats))
            }
        }
        None => {
            // Deleted: the entry survives if the deletion was not durable.
            let (dino, dbytes) = durable?;
            if listed == Some(*dino) && rng.chance(2) {
                stats.entries_resurrected += 1;
                return Some(dbytes.clone());
            }
            None
        }
    }
}

pub(super) fn build_state(rng: &mut Rng, cp: &CrashPoint, dir: &Path, stats: &mut Stats) {
    let block = if rng.chance(2) { 512 } else { 4096 };
    for d in &cp.dirs {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let paths: BTreeSet<&PathBuf> = cp.current.keys().chain(cp.durable.files.keys()).collect();
    for rel in paths {
        if !cp.dirs.contains(rel.parent().unwrap_or(Path::new(""))) {
            continue;
        }
        if let Some(bytes) = crash_file(rng, cp, rel, block, stats) {
            std::fs::write(dir.join(rel), bytes).unwrap();
            stats.files_written += 1;
        }
    }
}

/// Opens a crash state and checks every promise made before its crash point.
fn check_state(dir: &Path, cp: &CrashPoint, acked: &[(u32, u64, String)], label: &str, stats: &mut Stats) {
    let broker = Broker::open_with(dir, broker_config()).unwrap_or_else(|e| panic!("{label}: open failed: {e}"));
    let topic = broker.topic(TOPIC).unwrap_or_else(|e| panic!("{label}: {e}"));
    let acked = &acked[..cp.acked];
    let probe = broker.consumer(ConsumerConfig::new().group(GROUP)).unwrap();
    let producer = broker.producer();
    let mut dropped_written = false;
    for p in 0..PARTITIONS {
        let part = topic.partition(p).unwrap();
        let (start, end) = (part.start_offset(), part.end_offset());
        assert!(start <= end, "{label}: partition {p} start {start} > end {end}");
        if start > cp.live_start[p as usize] {
            // Retention also runs at open, on the recovered log: it may drop
            // more than the live broker had, but only while what stays is
            // at least `retention_bytes`.
            let kept: u64 = common::segment_paths(&dir.join(TOPIC).join(p.to_string()))
                .iter()
                .map(|(_, path)| std::fs::metadata(path).unwrap().len())
                .sum();
            assert!(
                kept >= RETENTION_BYTES,
                "{label}: partition {p} starts at {start}, past the live start {}, keeping only {kept} bytes",
                cp.live_start[p as usize]
            );
            stats.retention_at_open += 1;
        }
        dropped_written |= cp.written_end.as_ref().is_some_and(|w| end < w[p as usize]);
        let mut values: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut next = start;
        while next < end {
            let chunk = part
                .read(next, 500)
                .unwrap_or_else(|e| panic!("{label}: read {p}/{next}: {e}"));
            assert!(
                !chunk.is_empty(),
                "{label}: partition {p}: read at {next} < end {end} is empty"
            );
            for r in &chunk {
                assert_eq!(r.offset(), next, "{label}: partition {p}: gap or repeat");
                assert!(
                    seen.insert(r.value().to_vec()),
                    "{label}: {p}/{next}: a value stored twice"
                );
                values.insert(next, r.value().to_vec());
                next += 1;
            }
        }
        stats.records_read += end - start;
        assert_eq!(part.verify().unwrap(), end - start, "{label}: partition {p} verify");
        for (_, o, v) in acked.iter().filter(|(ap, _, _)| *ap == p) {
            if *o < start {
                stats.acked_below_start += 1;
                continue;
            }
            assert!(*o < end, "{label}: acknowledged record {p}/{o} lost (end {end})");
            assert_eq!(
                values.get(o).map(Vec::as_slice),
                Some(v.as_bytes()),
                "{label}: acknowledged record {p}/{o} has another value"
            );
            stats.acked_checked += 1;
        }
        let committed = probe.committed(&TopicPartition::new(TOPIC, p)).unwrap();
        let acked_commit = cp.acked_commits.get(&p).copied();
        match committed {
            Some(c) => {
                assert!(c <= end, "{label}: partition {p} committed {c} past end {end}");
                assert!(
                    c >= start || c < cp.live_start[p as usize],
                    "{label}: partition {p} committed {c} below start {start}"
                );
                // A consumer reads records before they are durable (README,
                // Durability): a commit past what survived is clamped to the end.
                let clamped = acked_commit.is_some_and(|a| a > end && c == end);
                assert!(
                    acked_commit.is_none_or(|a| c >= a) || clamped,
                    "{label}: partition {p} committed {c} behind acknowledged {acked_commit:?} (end {end})"
                );
                stats.commits_checked += 1;
                stats.commits_clamped += u64::from(clamped);
            }
            None => assert!(
                acked_commit.is_none(),
                "{label}: partition {p} lost its committed offset"
            ),
        }
        let md = producer
            .send(TOPIC, Record::new("after the crash").with_partition(p))
            .unwrap_or_else(|e| panic!("{label}: append to {p}: {e}"));
        assert_eq!(md.offset(), end, "{label}: partition {p}: next append");
    }
    stats.states_dropping_written_records += u64::from(dropped_written);
    drop(probe);
    broker.close().unwrap();
}

#[test]
fn power_loss_states_from_fsync_snapshots_keep_every_acknowledgement() {
    let _faults = common::process_wide_faults();
    let seed = std::env::var("LOGBUS_SEAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("reliability_seam: seed {seed} (rerun with LOGBUS_SEAM_SEED={seed})");
    let mut rng = Rng::new(seed);

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("broker");
    std::fs::create_dir(&root).unwrap();
    let rec = Arc::new(Recorder {
        root: root.clone(),
        ..Recorder::default()
    });
    {
        let rec = Arc::clone(&rec);
        set_sync_observer(Some(Box::new(move |e| rec.observe(e))));
    }

    // Created, closed and reopened before the workload. Partition 2 is closed
    // before its first record, which writes and fsyncs nothing: the first
    // fsync round after the reopen must make its segment file's directory
    // entry durable. Partitions 0 and 1 get a record first: their reopen is a
    // clean open, whose clean checkpoint the first append rewrites (fsynced by
    // the first round after it).
    let broker = Broker::open_with(&root, broker_config()).unwrap();
    broker
        .create_topic(
            TOPIC,
            TopicConfig::new(PARTITIONS)
                .segment_bytes(8 * 1024)
                .retention_bytes(Some(RETENTION_BYTES)),
        )
        .unwrap();
    for p in 0..2 {
        let v = format!("before-the-reopen-{p}");
        let md = broker
            .producer()
            .send(TOPIC, Record::new(v.clone()).with_partition(p))
            .unwrap();
        rec.acked.lock().unwrap().push((md.partition(), md.offset(), v));
    }
    broker.close().unwrap();
    let broker = Broker::open_with(&root, broker_config()).unwrap();
    let topic = broker.topic(TOPIC).unwrap();
    rec.ready.store(true, Ordering::SeqCst);
    let producers_done = Arc::new(AtomicUsize::new(0));
    let stop_consumer = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for id in 0..3u32 {
        let (producer, rec, done) = (broker.producer(), Arc::clone(&rec), Arc::clone(&producers_done));
        threads.push(std::thread::spawn(move || {
            let mut seq = 0;
            while seq < RECORDS_PER_PRODUCER {
                if id == 2 {
                    // Batches of three, round-robin.
                    let vs: Vec<String> = (seq..seq + 3).map(|s| value(id, s)).collect();
                    let mds = producer
                        .send_batch(TOPIC, vs.iter().map(|v| Record::new(v.clone())))
                        .unwrap();
                    let mut a = rec.acked.lock().unwrap();
                    for (md, v) in mds.iter().zip(vs) {
                        a.push((md.partition(), md.offset(), v));
                    }
                    seq += 3;
                } else {
                    let v = value(id, seq);
                    let record = Record::new(v.clone()).with_partition(((seq + u64::from(id)) % 3) as u32);
                    let md = producer.send(TOPIC, record).unwrap();
                    rec.acked.lock().unwrap().push((md.partition(), md.offset(), v));
                    seq += 1;
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    {
        let (broker, rec, stop) = (broker.clone(), Arc::clone(&rec), Arc::clone(&stop_consumer));
        threads.push(std::thread::spawn(move || {
            let mut consumer = broker
                .consumer(
                    ConsumerConfig::new()
                        .group(GROUP)
                        .offset_reset(OffsetReset::Earliest)
                        .max_poll_records(40),
                )
                .unwrap();
            consumer.subscribe(&[TOPIC]).unwrap();
            while !stop.load(Ordering::SeqCst) {
                let records = consumer.poll(Duration::from_millis(5)).unwrap();
                let mut next: HashMap<u32, u64> = HashMap::new();
                for r in &records {
                    next.insert(r.partition(), r.offset() + 1);
                }
                if next.is_empty() {
                    continue;
                }
                consumer.commit().unwrap();
                rec.commits.fetch_add(1, Ordering::SeqCst);
                let mut c = rec.acked_commits.lock().unwrap();
                for (p, o) in next {
                    let e = c.entry(p).or_insert(0);
                    *e = (*e).max(o);
                }
            }
        }));
    }

    // Freeze crash points while the workload runs, and one at the end.
    let parts: Vec<_> = (0..PARTITIONS).map(|p| topic.partition(p).unwrap()).collect();
    let mut next_point = ACKS_PER_CRASH_POINT;
    loop {
        let finished = producers_done.load(Ordering::SeqCst) == 3;
        let n_acked = rec.acked.lock().unwrap().len();
        if n_acked < next_point && !finished {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        next_point = n_acked + ACKS_PER_CRASH_POINT;
        rec.freeze(Some(parts.iter().map(|p| p.end_offset()).collect()));
        if finished {
            break;
        }
    }
    stop_consumer.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    set_sync_observer(None);
    let deleted = parts.iter().filter(|p| p.start_offset() > 0).count();
    broker.close().unwrap();
    let acked = rec.acked.lock().unwrap().clone();
    let commits = rec.commits.load(Ordering::SeqCst);
    let points = std::mem::take(&mut *rec.points.lock().unwrap());
    let from_observer = points.iter().filter(|p| p.written_end.is_none()).count();
    assert!(points.len() - from_observer >= 20, "only {} crash points", points.len());
    assert!(from_observer > 0, "the observer froze no crash point");
    assert!(deleted > 0, "retention deleted no segment: the workload is too small");
    assert!(commits > 0, "the consumer acknowledged no commit");

    let mut stats = Stats::default();
    for (i, cp) in points.iter().enumerate() {
        for j in 0..STATES_PER_CRASH_POINT {
            let state = tempfile::tempdir().unwrap();
            build_state(&mut rng, cp, state.path(), &mut stats);
            let label = format!("seed {seed}, crash point {i} ({} acks), state {j}", cp.acked);
            check_state(state.path(), cp, &acked, &label, &mut stats);
            stats.states += 1;
        }
    }
    println!(
        "reliability_seam: {} records and {commits} commits acknowledged, {} crash points \
         ({from_observer} frozen inside an fsync), {} crash states; {:?}",
        acked.len(),
        points.len(),
        stats.states,
        stats
    );
    assert_eq!(stats.states, (points.len() * STATES_PER_CRASH_POINT) as u64);
    assert!(stats.blocks_not_current > 0, "no state lost an unsynced write");
}
