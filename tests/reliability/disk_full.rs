//! Reliability (issue 6): a full disk, for real.
//!
//! The test re-executes its own binary as a child that lowers its
//! `RLIMIT_FSIZE` (the kernel then refuses, with `EFBIG`, any write that would
//! make a file larger than the limit; `SIGXFSZ` is ignored so the write fails
//! instead of killing the process) and appends until a send fails. Promises
//! checked: the failure is `Error::Io` naming the file, nothing acknowledged is
//! lost (read back in the child, and by the parent after reopening without the
//! limit), nothing unacknowledged is invented, and after the reopen writes
//! resume at the next offset.

// setrlimit and signal are libc calls; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use logbus::{Broker, BrokerConfig, Durability, Error, Record, TopicConfig};

use crate::common;

const CHILD_ENV: &str = "LOGBUS_RELIABILITY_DISK_FULL_CHILD";
const TOPIC: &str = "full";
/// Largest file the child may write. Segments are larger than this, so the
/// active segment's growth (zeros written ahead of the writer, 1 MiB at a
/// time) is what meets the limit.
const FSIZE_LIMIT: u64 = 1536 * 1024;
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

fn value(thread: usize, seq: u64) -> Vec<u8> {
    let mut v = format!("t{thread}-s{seq}-").into_bytes();
    v.resize(1500 + (seq % 700) as usize, b'a' + (seq % 26) as u8);
    v
}

fn limit_file_size() {
    // SAFETY (test code): plain libc calls with valid arguments.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: FSIZE_LIMIT as libc::rlim_t,
            rlim_max: FSIZE_LIMIT as libc::rlim_t,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0, "setrlimit failed");
    }
}

/// Checks that `e` is the disk-full error promised: `Error::Io`, on a file
/// inside `dir`, whose message names that file.
fn assert_disk_full(e: &Error, dir: &Path) {
    match e {
        Error::Io { path, source, .. } => {
            assert!(
                path.starts_with(dir),
                "error path {} outside {}",
                path.display(),
                dir.display()
            );
            assert_eq!(source.raw_os_error(), Some(libc::EFBIG), "expected EFBIG, got {source}");
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "message does not name the file: {msg}"
            );
        }
        other => panic!("a full disk must be Error::Io, got {other:?}"),
    }
}

/// Child mode: append with `threads` threads until each gets an error; print
/// every acknowledged record, then check in-process that all are readable.
fn child(dir: &Path, durability: Durability, threads: usize) {
    limit_file_size();
    let broker = Broker::open_with(dir, BrokerConfig::new().durability(durability)).unwrap();
    let acked: Arc<Mutex<BTreeMap<u64, Vec<u8>>>> = Arc::default();
    let mut handles = Vec::new();
    for t in 0..threads {
        let producer = broker.producer();
        let acked = acked.clone();
        let dir = dir.to_path_buf();
        handles.push(std::thread::spawn(move || {
            for seq in 0.. {
                let v = value(t, seq);
                match producer.send(TOPIC, Record::new(v.clone())) {
                    Ok(md) => {
                        let line = format!("ACK {} {t} {seq}\n", md.offset());
                        let mut out = std::io::stdout().lock();
                        out.write_all(line.as_bytes()).unwrap();
                        out.flush().unwrap();
                        assert!(acked.lock().unwrap().insert(md.offset(), v).is_none());
                    }
                    Err(e) => {
                        assert_disk_full(&e, &dir);
                        // Failing again is fine; succeeding would mean the
                        // first failure lost nothing it claimed to write.
                        return seq;
                    }
                }
            }
            unreachable!()
        }));
    }
    for h in handles {
        assert!(h.join().unwrap() > 0, "a thread failed on its first send");
    }
    let acked = acked.lock().unwrap();
    let part = broker.topic(TOPIC).unwrap().partition(0).unwrap();
    // Nothing invented: the log ends right after the acknowledged records.
    assert_eq!(
        part.end_offset(),
        acked.len() as u64,
        "records stored but not acknowledged"
    );
    let all = part.read(0, usize::MAX).unwrap();
    assert_eq!(all.len(), acked.len());
    for (r, (o, v)) in all.iter().zip(acked.iter()) {
        assert_eq!(r.offset(), *o);
        assert_eq!(r.value(), &v[..], "child read-back at {o}");
    }
    println!("CHILD-OK {}", acked.len());
    // No close: the limit is still in force, and a crash-like exit is the
    // harder case for the parent's reopen.
    std::process::exit(0);
}

fn run(test_name: &str, durability: Durability, threads: usize) {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir), durability, threads);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open_with(dir.path(), BrokerConfig::new().durability(durability)).unwrap();
        broker
            .create_topic(TOPIC, TopicConfig::new(1).segment_bytes(SEGMENT_BYTES))
            .unwrap();
        broker.close().unwrap();
    }
    let out = common::rerun_self(module_path!(), test_name)
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut acked = BTreeMap::new();
    // The harness prints "test NAME ... " without a newline before the test
    // runs, so the first acknowledgement may share its line: find the marker.
    for line in stdout.lines().filter_map(|l| l.split_once("ACK ").map(|(_, a)| a)) {
        let f: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        assert!(acked.insert(f[0], value(f[1] as usize, f[2])).is_none());
    }
    assert!(
        acked.len() > 100,
        "too few records before the disk filled: {}",
        acked.len()
    );
    // The limit was met: a segment file reached it.
    let seg = dir.path().join(TOPIC).join("0").join(format!("{:020}.log", 0));
    assert!(std::fs::metadata(&seg).unwrap().len() >= FSIZE_LIMIT - 64 * 1024);

    // Reopen without the limit: every acknowledged record is there, nothing else.
    let broker = Broker::open_with(dir.path(), BrokerConfig::new().durability(durability)).unwrap();
    let part = broker.topic(TOPIC).unwrap().partition(0).unwrap();
    let end = acked.len() as u64;
    assert_eq!(part.end_offset(), end, "after reopen: records lost or invented");
    let all = part.read(0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, end);
    for (r, (o, v)) in all.iter().zip(acked.iter()) {
        assert_eq!(r.offset(), *o);
        assert_eq!(r.value(), &v[..], "parent read-back at {o}");
    }
    assert_eq!(part.verify().unwrap(), end);
    // Writes resume at the next offset, past the point where the disk was full.
    let producer = broker.producer();
    for i in 0..1000u64 {
        let md = producer.send(TOPIC, Record::new(value(99, i))).unwrap();
        assert_eq!(md.offset(), end + i);
    }
    broker.close().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let part = broker.topic(TOPIC).unwrap().partition(0).unwrap();
    assert_eq!(part.end_offset(), end + 1000);
    assert_eq!(part.verify().unwrap(), end + 1000);
    let r = part.read(end - 1, 2).unwrap();
    assert_eq!(r[0].value(), &acked[&(end - 1)][..]);
    assert_eq!(r[1].value(), &value(99, 0)[..]);
    println!("{test_name}: {end} records acknowledged before the disk was full, all read back; lost 0");
}

#[test]
fn disk_full_is_io_error_and_loses_nothing() {
    run("disk_full_is_io_error_and_loses_nothing", Durability::PageCache, 1);
}

#[test]
fn disk_full_under_group_commit_loses_nothing() {
    run("disk_full_under_group_commit_loses_nothing", Durability::Sync, 4);
}
