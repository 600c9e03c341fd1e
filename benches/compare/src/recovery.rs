//! Scenarios 7 and 8: `recovery` (reopen time after kill -9) and `memory`
//! (max anonymous RSS while writing then reading), both in child processes.

use std::time::Instant;

use logbus::Broker;

use crate::child::spawn;
use crate::common::{runtime, Opts};
use crate::stats::{interleave, print_table, Run};

const MB: u64 = 1_000_000;
const MIB: u64 = 1 << 20;

/// A child writes `bytes` of 100-byte values in batches of 100 (PageCache
/// durability) and SIGKILLs itself; returns [reopen ms, bytes scanned (MB)].
fn reopen(o: &Opts, system: &str, bytes: u64) -> Vec<f64> {
    let d = o.tempdir();
    let dir = d.path().join("data");
    spawn(&["recovery", system, dir.to_str().unwrap(), &bytes.to_string()]);
    match system {
        "logbus" => {
            let t = Instant::now();
            let b = Broker::open(&dir).unwrap();
            let part = b.topic("t").unwrap().partition(0).unwrap();
            let end = part.end_offset();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert!(end > 0);
            let scanned = part.log().recovery_report().scanned_bytes as f64 / MB as f64;
            b.close().unwrap();
            vec![ms, scanned]
        }
        "commitlog" => {
            let t = Instant::now();
            let log = commitlog::CommitLog::new(commitlog::LogOptions::new(&dir)).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert!(log.next_offset() > 0);
            vec![ms, f64::NAN]
        }
        "kafko" => {
            let rt = runtime();
            rt.block_on(async {
                let t = Instant::now();
                let kf = kafko::Kafko::open(&dir).await.unwrap();
                let ms = t.elapsed().as_secs_f64() * 1e3;
                kf.shutdown().await.unwrap();
                vec![ms, f64::NAN]
            })
        }
        s => panic!("unknown system {s}"),
    }
}

pub fn recovery(o: &Opts) {
    let small = if o.quick { 20 * MB } else { 100 * MB };
    let large = if o.big {
        2000 * MB
    } else if o.quick {
        200 * MB
    } else {
        1000 * MB
    };
    let (sn, ln) = (small / MB, large / MB);
    println!(
        "\n## recovery: a child writes N MB of 100-byte values (batches of 100, PageCache durability), \
         SIGKILLs itself; the parent times the reopen. {sn} MB vs {ln} MB{}",
        if o.big { "" } else { " (2 GB with --big)" }
    );
    println!("(the files are in the page cache when reopened: this is CPU work, not disk reads)");
    let names_owned: Vec<String> = ["logbus", "commitlog", "kafko"]
        .iter()
        .flat_map(|s| [format!("{s} {sn} MB"), format!("{s} {ln} MB")])
        .collect();
    let names: Vec<&str> = names_owned.iter().map(String::as_str).collect();
    let mut runs: Vec<Run> = vec![
        Box::new(|| reopen(o, "logbus", small)),
        Box::new(|| reopen(o, "logbus", large)),
        Box::new(|| reopen(o, "commitlog", small)),
        Box::new(|| reopen(o, "commitlog", large)),
        Box::new(|| reopen(o, "kafko", small)),
        Box::new(|| reopen(o, "kafko", large)),
    ];
    let s = interleave(o.rounds, &names, &mut runs, 2);
    print_table(
        "recovery: reopen time (lower is better)",
        "ms",
        &s[0],
        &[(1, 0), (0, 2), (1, 3), (0, 4), (1, 5)],
    );
    print_table("recovery: bytes logbus scanned", "MB", &s[1][..2], &[]);
}

/// A child writes then reads `bytes` (values) while a thread samples RssAnon.
fn memory_run(o: &Opts, system: &str, bytes: u64) -> Vec<f64> {
    let d = o.tempdir();
    let dir = d.path().join("data");
    let out = spawn(&["memory", system, dir.to_str().unwrap(), &bytes.to_string()]);
    let line = out.lines().find(|l| l.starts_with("rss ")).expect("rss line");
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse::<f64>().unwrap() / MIB as f64)
        .collect();
    vec![v[1], v[2], v[0]]
}

pub fn memory(o: &Opts) {
    let bytes = if o.big {
        4096 * MIB
    } else if o.quick {
        64 * MIB
    } else {
        512 * MIB
    };
    println!(
        "\n## memory: a child writes {} MiB of 100-byte values (batches of 100), then reads them back in chunks \
         of 1000, sampling RssAnon every 2 ms{} (kafko not run: its reads allocate the rest of the segment per record)",
        bytes / MIB,
        if o.big { "" } else { " (4 GiB with --big)" }
    );
    let names = ["logbus", "commitlog"];
    let mut runs: Vec<Run> = vec![
        Box::new(|| memory_run(o, "logbus", bytes)),
        Box::new(|| memory_run(o, "commitlog", bytes)),
    ];
    let s = interleave(o.rounds, &names, &mut runs, 3);
    print_table(
        "memory: max RssAnon while writing (lower is better)",
        "MiB",
        &s[0],
        &[(0, 1)],
    );
    print_table(
        "memory: max RssAnon while reading (lower is better)",
        "MiB",
        &s[1],
        &[(0, 1)],
    );
    print_table("memory: RssAnon at start", "MiB", &s[2], &[]);
}
