//! Reliability (issue 6): power-loss crash states, simulated without a storage seam.
//!
//! A child process (this test binary, re-executed) runs a `Durability::Sync`
//! workload (two producer threads, segments that roll, retention that deletes
//! them) and prints every acknowledged record; the parent SIGKILLs it. The
//! files as the kill left them are the "page cache" state. Under `Sync`, the
//! batch of the last acknowledged record, and everything before it, had been
//! fsynced: that is the durable point. A power failure may lose or mangle any
//! byte after it, so the parent generates many crash states from the one run,
//! each on its own copy of the directory: the bytes after a durable point are
//! dropped, zeroed in 512-byte or 4 KiB aligned pieces, torn at a 512/4096
//! boundary with garbage, replaced by random garbage, or by zeros followed by a
//! valid old batch; and `recovery.ckpt` and the index files are kept, deleted
//! or damaged. Besides the real durable point, earlier batch ends of the same
//! segment (chosen at random) are used as simulated durable points (recovery cannot tell them
//! apart; the checkpoint is then kept only if it does not claim more).
//!
//! For each state the broker must open, keep every record below the durable
//! point, be a gap-free prefix of what was written (never invent or repeat a
//! record), pass `verify`, and give the next append the end offset.
//!
//! The topic is not compacted (policy `Delete`): offsets are checked to be
//! gap-free, since a gap here could only be a lost record. Compacted logs,
//! where gaps are legal, are `reliability::kill_compaction`'s.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use logbus::{Broker, BrokerConfig, Durability, Record, TopicConfig};

use crate::common::{self, Deadline, Rng};

const CHILD_ENV: &str = "LOGBUS_RELIABILITY_POWER_CHILD";
const TEST_NAME: &str = "power_loss_crash_states_keep_the_durable_prefix";
const TOPIC: &str = "power";
const PARTITIONS: u32 = 2;
const SEGMENT_BYTES: u64 = 16 * 1024;
const RETENTION_BYTES: u64 = 48 * 1024;
const ACKS_BEFORE_KILL: usize = 700;

fn broker_config() -> BrokerConfig {
    BrokerConfig::new().durability(Durability::Sync)
}

fn value(thread: u32, seq: u64) -> String {
    format!("t{thread}-s{seq}-{}", "v".repeat((seq * 7 % 90) as usize))
}

/// Child mode: append until killed, printing `@A <partition> <offset> <value>`.
fn child(dir: &Path) {
    let broker = Broker::open_with(dir, broker_config()).unwrap();
    let deadline = Deadline::new(Duration::from_secs(30), "the child's run");
    let threads: Vec<_> = (0..2u32)
        .map(|t| {
            let (producer, deadline) = (broker.producer(), deadline.clone());
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while !deadline.passed() {
                    let mds;
                    let mut values = Vec::new();
                    if t == 0 {
                        // Batches of 1 to 4 records to one partition.
                        let n = 1 + seq % 4;
                        let p = (seq % u64::from(PARTITIONS)) as u32;
                        let records: Vec<Record> = (0..n)
                            .map(|i| {
                                values.push(value(t, seq + i));
                                Record::new(value(t, seq + i)).with_partition(p)
                            })
                            .collect();
                        mds = producer.send_batch(TOPIC, records).unwrap();
                        seq += n;
                    } else {
                        values.push(value(t, seq));
                        mds = vec![producer.send(TOPIC, Record::new(value(t, seq))).unwrap()];
                        seq += 1;
                    }
                    let mut out = String::new();
                    for (md, v) in mds.iter().zip(&values) {
                        out.push_str(&format!("@A {} {} {v}\n", md.partition(), md.offset()));
                    }
                    let mut o = std::io::stdout().lock();
                    o.write_all(out.as_bytes()).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A batch found by walking a segment file's headers.
#[derive(Clone, Copy, Debug)]
struct BatchPos {
    pos: u64,
    len: u64,
    base: u64,
    count: u64,
}

fn walk(bytes: &[u8]) -> Vec<BatchPos> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 44 <= bytes.len() && &bytes[pos..pos + 4] == b"LBat" {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if len < 45 || pos + len > bytes.len() {
            break;
        }
        let base = u64::from_le_bytes(bytes[pos + 16..pos + 24].try_into().unwrap());
        let count = u32::from_le_bytes(bytes[pos + 40..pos + 44].try_into().unwrap());
        out.push(BatchPos {
            pos: pos as u64,
            len: len as u64,
            base,
            count: u64::from(count),
        });
        pos += len;
    }
    out
}

/// How the bytes after the durable point are damaged.
#[derive(Clone, Copy, Debug)]
enum Tail {
    Dropped,
    DroppedInsideNextBatch,
    Zeroed512,
    Zeroed4096,
    Torn512,
    Torn4096,
    Garbage,
    ZerosThenOldBatch,
    OldBatchRightAfter,
    NextBatchBitFlip,
}
const TAILS: [Tail; 10] = [
    Tail::Dropped,
    Tail::DroppedInsideNextBatch,
    Tail::Zeroed512,
    Tail::Zeroed4096,
    Tail::Torn512,
    Tail::Torn4096,
    Tail::Garbage,
    Tail::ZerosThenOldBatch,
    Tail::OldBatchRightAfter,
    Tail::NextBatchBitFlip,
];

/// What happens to the caches of the partition.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Intact,
    CheckpointDeleted,
    CheckpointGarbage,
    IndexesDeleted,
    IndexesGarbage,
}
const SIDES: [Side; 5] = [
    Side::Intact,
    Side::CheckpointDeleted,
    Side::CheckpointGarbage,
    Side::IndexesDeleted,
    Side::IndexesGarbage,
];

/// Applies `tail` to `bytes` after byte `x` (the durable end). `next` is the
/// batch after `x`, if any; `old` an earlier valid batch of the same segment.
fn mangle(bytes: &mut Vec<u8>, x: usize, tail: Tail, next: Option<BatchPos>, old: &[u8], rng: &mut Rng) {
    let round_up = |v: usize, a: usize| v.div_ceil(a) * a;
    match tail {
        Tail::Dropped => bytes.truncate(x),
        Tail::DroppedInsideNextBatch => {
            let cut = next.map_or(x, |n| x + 1 + rng.below(n.len - 1) as usize);
            bytes.truncate(cut.min(bytes.len()));
        }
        Tail::Zeroed512 | Tail::Zeroed4096 => {
            let a = if matches!(tail, Tail::Zeroed512) { 512 } else { 4096 };
            // Zero one or more aligned pieces at or after x (the part of the
            // piece that holds x keeps its durable bytes).
            let first = x / a * a;
            let pieces = bytes.len().saturating_sub(first).div_ceil(a).max(1);
            for k in 0..pieces {
                if k == 0 || rng.below(2) == 0 {
                    let s = (first + k * a).max(x).min(bytes.len());
                    let e = (first + (k + 1) * a).min(bytes.len());
                    bytes[s..e].fill(0);
                }
            }
        }
        Tail::Torn512 | Tail::Torn4096 => {
            let a = if matches!(tail, Tail::Torn512) { 512 } else { 4096 };
            let b = round_up(x + 1, a);
            let end = (b + a).max(bytes.len());
            bytes.resize(end, 0);
            let g = rng.bytes(a);
            bytes[b..b + a].copy_from_slice(&g);
        }
        Tail::Garbage => {
            let n = 1 + rng.below(6000) as usize;
            bytes.truncate(x);
            bytes.extend(rng.bytes(n));
        }
        Tail::ZerosThenOldBatch => {
            let z = 1 + rng.below(1024) as usize;
            bytes.truncate(x);
            bytes.resize(x + z, 0);
            bytes.extend_from_slice(old);
        }
        Tail::OldBatchRightAfter => {
            bytes.truncate(x);
            bytes.extend_from_slice(old);
        }
        Tail::NextBatchBitFlip => {
            if let Some(n) = next {
                let at = (n.pos + 12 + rng.below(n.len - 12)) as usize;
                if at < bytes.len() {
                    bytes[at] ^= 1 << rng.below(8);
                }
            } else {
                bytes.truncate(x);
                bytes.extend(rng.bytes(100));
            }
        }
    }
}

fn apply_side(pdir: &Path, side: Side, ckpt_ok: bool, rng: &mut Rng) {
    let ckpt = pdir.join("recovery.ckpt");
    let ckpt_delete = !ckpt_ok || side == Side::CheckpointDeleted;
    if ckpt_delete {
        let _ = std::fs::remove_file(&ckpt);
    }
    match side {
        Side::CheckpointGarbage if !ckpt_delete || !ckpt_ok => {
            let mut b = std::fs::read(&ckpt).unwrap_or_else(|_| vec![0; 44]);
            let i = rng.below(b.len() as u64) as usize;
            b[i] ^= 0x5a;
            std::fs::write(&ckpt, b).unwrap();
        }
        Side::IndexesDeleted | Side::IndexesGarbage => {
            for e in std::fs::read_dir(pdir).unwrap() {
                let p = e.unwrap().path();
                let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
                if ext == "index" || ext == "timeindex" {
                    if side == Side::IndexesDeleted {
                        std::fs::remove_file(&p).unwrap();
                    } else {
                        let mut b = std::fs::read(&p).unwrap();
                        let n = b.len();
                        match rng.below(3) {
                            0 => b.truncate(n.saturating_sub(1 + rng.below(12) as usize)),
                            1 => {
                                let n = 1 + rng.below(30) as usize;
                                b.extend(rng.bytes(n))
                            }
                            _ => {
                                if n > 0 {
                                    let i = rng.below(n as u64) as usize;
                                    b[i] ^= 0xff;
                                }
                            }
                        }
                        std::fs::write(&p, b).unwrap();
                    }
                }
            }
        }
        _ => {}
    }
}

/// Reads a whole partition: (start, records as (offset, value)).
fn read_all(broker: &Broker, p: u32) -> (u64, Vec<(u64, String)>) {
    let part = broker.topic(TOPIC).unwrap().partition(p).unwrap();
    let (start, end) = (part.start_offset(), part.end_offset());
    let mut out = Vec::new();
    let mut next = start;
    while next < end {
        let chunk = part.read(next, 1000).unwrap();
        assert!(!chunk.is_empty(), "read at {next} < end {end} returned nothing");
        for r in chunk {
            out.push((r.offset(), String::from_utf8(r.value().to_vec()).unwrap()));
            next += 1;
        }
    }
    (start, out)
}

#[test]
fn power_loss_crash_states_keep_the_durable_prefix() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    {
        let b = Broker::open_with(&live, broker_config()).unwrap();
        b.create_topic(
            TOPIC,
            TopicConfig::new(PARTITIONS)
                .segment_bytes(SEGMENT_BYTES)
                .retention_bytes(Some(RETENTION_BYTES)),
        )
        .unwrap();
        b.close().unwrap();
    }
    // Run the workload and kill it.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Rng::new(seed);
    let mut child = common::rerun_self(module_path!(), TEST_NAME)
        .env(CHILD_ENV, &live)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked: HashMap<(u32, u64), String> = HashMap::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let absorb = |line: &[u8], acked: &mut HashMap<(u32, u64), String>| {
        let line = String::from_utf8_lossy(line);
        let Some(at) = line.find("@A ") else { return };
        let mut f = line[at + 3..].splitn(3, ' ');
        let p: u32 = f.next().unwrap().parse().unwrap();
        let o: u64 = f.next().unwrap().parse().unwrap();
        acked.insert((p, o), f.next().unwrap().to_string());
    };
    while acked.len() < ACKS_BEFORE_KILL {
        let mut line = Vec::new();
        assert!(reader.read_until(b'\n', &mut line).unwrap() > 0, "child stopped early");
        assert_eq!(line.last(), Some(&b'\n'));
        absorb(&line[..line.len() - 1], &mut acked);
    }
    std::thread::sleep(Duration::from_micros(rng.below(5000)));
    child.kill().unwrap();
    // Lines after the kill: a last line without its newline is not an ack.
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut rest).unwrap();
    if let Some(cut) = rest.iter().rposition(|&b| b == b'\n') {
        for l in rest[..cut].split(|&b| b == b'\n') {
            absorb(l, &mut acked);
        }
    }
    assert!(!child.wait().unwrap().success());

    // Ground truth: the page-cache state as the kill left it.
    let truth_dir = root.path().join("truth");
    crate::common::copy_dir(&live, &truth_dir);
    let mut truth: HashMap<u32, (u64, Vec<(u64, String)>)> = HashMap::new();
    {
        let b = Broker::open_with(&truth_dir, broker_config()).unwrap();
        for p in 0..PARTITIONS {
            let (start, recs) = read_all(&b, p);
            let vals: HashSet<&String> = recs.iter().map(|(_, v)| v).collect();
            assert_eq!(vals.len(), recs.len(), "partition {p}: a value stored twice");
            for ((ap, ao), v) in &acked {
                if *ap == p && *ao >= start {
                    let i = (ao - start) as usize;
                    assert_eq!(
                        recs.get(i).map(|r| &r.1),
                        Some(v),
                        "kill state lost acknowledged {p}/{ao}"
                    );
                }
            }
            truth.insert(p, (start, recs));
        }
        b.close().unwrap();
    }

    let mut states = 0u64;
    let mut real_points = 0u64;
    let mut records_checked = 0u64;
    let mut truncated_states = 0u64;
    for p in 0..PARTITIONS {
        let pdir = live.join(TOPIC).join(p.to_string());
        let last_acked = acked.keys().filter(|(ap, _)| *ap == p).map(|(_, o)| *o).max().unwrap();
        let segs = common::segment_paths(&pdir);
        let (seg_base, seg_path) = segs.iter().rev().find(|(b, _)| *b <= last_acked).unwrap().clone();
        let seg_bytes = std::fs::read(&seg_path).unwrap();
        let batches = walk(&seg_bytes);
        let real = batches
            .iter()
            .position(|b| b.base <= last_acked && last_acked < b.base + b.count)
            .expect("the last acknowledged batch is in its segment");
        // Durable points: the real one, plus 2 earlier batch ends (random).
        let mut points = vec![real];
        points.extend((0..2).map(|_| rng.below(real as u64) as usize));
        // No checkpoint yet (the topic was closed before its first record,
        // which writes none): one that covers nothing.
        let (ck_seg, ck_pos) = match std::fs::read(pdir.join("recovery.ckpt")) {
            Ok(ckpt) => (
                u64::from_le_bytes(ckpt[8..16].try_into().unwrap()),
                u64::from_le_bytes(ckpt[16..24].try_into().unwrap()),
            ),
            Err(_) => (0, 0),
        };
        let old = &seg_bytes[batches[0].pos as usize..(batches[0].pos + batches[0].len) as usize];
        for (pi, &bi) in points.iter().enumerate() {
            let b = batches[bi];
            let x = (b.pos + b.len) as usize;
            let durable_next = b.base + b.count;
            // A checkpoint claiming bytes past x says they were fsynced: such a
            // state cannot exist with x as the durable end, so drop it there.
            let ckpt_ok = ck_seg < seg_base || (ck_seg == seg_base && ck_pos <= x as u64);
            let next = batches.get(bi + 1).copied();
            for tail in TAILS {
                for side in SIDES {
                    let state_dir = root.path().join(format!("s{states}"));
                    crate::common::copy_dir(&live, &state_dir);
                    let spdir = state_dir.join(TOPIC).join(p.to_string());
                    let seg = spdir.join(seg_path.file_name().unwrap());
                    let mut bytes = seg_bytes.clone();
                    mangle(&mut bytes, x, tail, next, old, &mut rng);
                    std::fs::write(&seg, &bytes).unwrap();
                    apply_side(&spdir, side, ckpt_ok, &mut rng);
                    let what = format!("state {states} (partition {p}, point {pi}, x {x}, {tail:?}, {side:?})");

                    let broker = Broker::open_with(&state_dir, broker_config())
                        .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
                    let (t_start, t_recs) = &truth[&p];
                    let (start, recs) = read_all(&broker, p);
                    let end = start + recs.len() as u64;
                    assert!(start >= *t_start, "{what}: start went back");
                    // Every record below the durable point is kept.
                    assert!(
                        end >= durable_next,
                        "{what}: durable records lost: end {end} < {durable_next}"
                    );
                    // A gap-free prefix of what was written: nothing invented or repeated.
                    assert!(
                        end <= t_start + t_recs.len() as u64,
                        "{what}: records invented past the written end"
                    );
                    for (o, v) in &recs {
                        let t = &t_recs[(o - t_start) as usize];
                        assert_eq!(&t.0, o, "{what}");
                        assert_eq!(&t.1, v, "{what}: record {o} differs from what was written");
                        if let Some(a) = acked.get(&(p, *o)) {
                            assert_eq!(a, v, "{what}: acknowledged record {o}");
                        }
                    }
                    records_checked += recs.len() as u64;
                    truncated_states += u64::from(end < t_start + t_recs.len() as u64);
                    let part = broker.topic(TOPIC).unwrap().partition(p).unwrap();
                    assert_eq!(part.verify().unwrap(), end - start, "{what}: verify");
                    // The other partition is untouched.
                    let q = (p + 1) % PARTITIONS;
                    let other = broker.topic(TOPIC).unwrap().partition(q).unwrap();
                    assert_eq!(other.end_offset(), truth[&q].0 + truth[&q].1.len() as u64, "{what}");
                    // The next append gets the end offset, and survives a reopen.
                    let md = broker
                        .producer()
                        .send(TOPIC, Record::new("after").with_partition(p))
                        .unwrap();
                    assert_eq!(md.offset(), end, "{what}: next append");
                    broker.close().unwrap();
                    if side != Side::Intact {
                        // The reopen below costs fsyncs: once per tail is enough.
                        std::fs::remove_dir_all(&state_dir).unwrap();
                        states += 1;
                        real_points += u64::from(pi == 0);
                        continue;
                    }
                    let broker = Broker::open_with(&state_dir, broker_config()).unwrap();
                    let part = broker.topic(TOPIC).unwrap().partition(p).unwrap();
                    assert_eq!(part.end_offset(), end + 1, "{what}: after reopen");
                    assert_eq!(part.read(end, 1).unwrap()[0].value(), b"after");
                    broker.close().unwrap();
                    std::fs::remove_dir_all(&state_dir).unwrap();
                    states += 1;
                    real_points += u64::from(pi == 0);
                }
            }
        }
    }
    println!(
        "reliability_power_loss: seed {seed}, acknowledged {}, crash states tried {states} ({real_points} at the real \
         durable point), states where recovery cut records {truncated_states}, records checked {records_checked}, lost 0",
        acked.len()
    );
    assert!(states >= 250, "too few crash states: {states}");
}
