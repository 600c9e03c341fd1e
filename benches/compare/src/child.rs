//! Child processes for `recovery` (write N bytes, then SIGKILL itself) and
//! `memory` (write then read N bytes while sampling RssAnon). Started as
//! `compare __child <recovery|memory> <logbus|commitlog|kafko> <dir> <bytes>`,
//! and `partitions` (`compare __child partitions logbus <dir> <count>`).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};
use logbus::{Broker, Record, TopicConfig};

use crate::common::{rss_anon, runtime, value};

/// Each batch of 100 records of 100 bytes counts as this many bytes written.
const BATCH_BYTES: u64 = 100 * 100;

/// Runs this binary as a child; returns its stdout (panics if it failed
/// other than by the SIGKILL it sends itself).
pub fn spawn(args: &[&str]) -> String {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .arg("__child")
        .args(args)
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    use std::os::unix::process::ExitStatusExt;
    let killed = out.status.signal() == Some(libc::SIGKILL);
    assert!(
        out.status.success() || (killed && stdout.contains("done")),
        "child {args:?} failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn main(args: &[String]) {
    let [mode, system, dir, bytes] = args else {
        panic!("usage: __child MODE SYSTEM DIR BYTES")
    };
    let bytes: u64 = bytes.parse().expect("bytes");
    let dir = Path::new(dir);
    match mode.as_str() {
        "recovery" => {
            write(system, dir, bytes, false);
            println!("done");
            std::io::stdout().flush().unwrap();
            // SAFETY: kill(2) on our own pid; nothing after it runs.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        "memory" => {
            let max = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let sampler = {
                let (max, stop) = (max.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        max.fetch_max(rss_anon(), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            };
            let start = rss_anon();
            max.store(start, Ordering::Relaxed);
            let n = write(system, dir, bytes, true);
            let write_max = max.swap(rss_anon(), Ordering::Relaxed).max(rss_anon());
            read(system, dir, n);
            let read_max = max.load(Ordering::Relaxed).max(rss_anon());
            stop.store(true, Ordering::Relaxed);
            sampler.join().unwrap();
            println!("rss {start} {write_max} {read_max}");
        }
        "partitions" => crate::partitions::child(dir, bytes as u32),
        m => panic!("unknown child mode {m}"),
    }
}

/// Appends batches of 100 records until `bytes` of values are written; returns
/// the record count. Without `clean` nothing is closed (a SIGKILL follows).
fn write(system: &str, dir: &Path, bytes: u64, clean: bool) -> u64 {
    let batches = bytes.div_ceil(BATCH_BYTES);
    match system {
        "logbus" => {
            let b = Broker::open(dir).unwrap();
            b.create_topic("t", TopicConfig::new(1)).unwrap();
            let p = b.producer();
            for k in 0..batches {
                p.send_batch("t", (0..100).map(|j| Record::new(value(k * 100 + j).to_vec())))
                    .unwrap();
            }
            if clean {
                b.close().unwrap();
            } else {
                std::mem::forget(b); // no clean close: the SIGKILL comes first
            }
        }
        "commitlog" => {
            let mut log = CommitLog::new(LogOptions::new(dir)).unwrap();
            let mut buf = MessageBuf::default();
            for k in 0..batches {
                buf.clear();
                for j in 0..100 {
                    buf.push(value(k * 100 + j)).unwrap();
                }
                log.append(&mut buf).unwrap();
            }
            if clean {
                log.flush().unwrap();
            } else {
                std::mem::forget(log);
            }
        }
        "kafko" => {
            let rt = runtime();
            rt.block_on(async {
                let kf = kafko::Kafko::open(dir).await.unwrap();
                kf.create_topic("t").await.unwrap();
                let p = kf.producer_for("t").await.unwrap();
                for k in 0..batches {
                    let items = (0..100)
                        .map(|j| (None, Bytes::copy_from_slice(&value(k * 100 + j))))
                        .collect();
                    p.send_batch(items).await.unwrap();
                }
                std::mem::forget(kf);
            });
            std::mem::forget(rt);
        }
        s => panic!("unknown system {s}"),
    }
    batches * 100
}

/// Reads `n` records back from offset 0 in chunks of about 1000.
fn read(system: &str, dir: &Path, n: u64) {
    let mut bytes = 0u64;
    match system {
        "logbus" => {
            let b = Broker::open(dir).unwrap();
            let part = b.topic("t").unwrap().partition(0).unwrap();
            let mut off = 0;
            while off < n {
                let rs = part.read(off, 1000).unwrap();
                off += rs.len() as u64;
                bytes += rs.iter().map(|r| r.value().len() as u64).sum::<u64>();
            }
            b.close().unwrap();
        }
        "commitlog" => {
            let log = CommitLog::new(LogOptions::new(dir)).unwrap();
            let mut off = 0;
            while off < n {
                for m in log.read(off, ReadLimit::max_bytes(128 * 1024)).unwrap().iter() {
                    bytes += m.payload().len() as u64;
                    off = m.offset() + 1;
                }
            }
        }
        s => panic!("unknown system {s}"),
    }
    assert_eq!(bytes, n * 100);
}
