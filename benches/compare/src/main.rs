//! logbus against its peers (`kafko`, `commitlog`, `crossbeam-channel`) and raw
//! baselines (`write(2)` per record, copy + CRC32 into memory), all in one
//! process, interleaved round by round, with medians and per-round ratios.
//!
//! ```text
//! cargo run --release -- [--rounds N] [--quick] [--big] [--only a,b] [--dir PATH]
//! ```
//! Scenarios: append1 append_batch scan pubsub latency durable recovery memory sustained partitions stages handoff.
//! `COMPARE_CONTENDER=substring` runs only the contenders whose name contains
//! it (for profiling one of them with `perf record`).

mod append;
mod child;
mod common;
mod durable;
mod handoff;
mod latency;
mod partitions;
mod pubsub;
mod recovery;
mod scan;
mod stages;
mod stats;
mod sustained;

use std::path::PathBuf;
use std::process::Command;

use common::Opts;

const SCENARIOS: [&str; 12] = [
    "append1",
    "append_batch",
    "scan",
    "pubsub",
    "latency",
    "durable",
    "recovery",
    "memory",
    "sustained",
    "partitions",
    "stages",
    "handoff",
];

fn usage() -> ! {
    eprintln!(
        "usage: logbus-compare [--rounds N] [--quick] [--big] [--only SCENARIO[,SCENARIO]] [--dir PATH]\n\
         scenarios: {}",
        SCENARIOS.join(" ")
    );
    std::process::exit(2)
}

fn parse(args: &[String]) -> Opts {
    let mut o = Opts {
        rounds: 5,
        quick: false,
        big: false,
        only: None,
        dir: std::env::temp_dir(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                o.rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&r| r > 0)
                    .unwrap_or_else(|| usage())
            }
            "--quick" => o.quick = true,
            "--big" => o.big = true,
            "--only" => o.only = Some(it.next().cloned().unwrap_or_else(|| usage())),
            "--dir" => o.dir = PathBuf::from(it.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    if o.quick && !args.iter().any(|a| a == "--rounds") {
        o.rounds = 2;
    }
    if let Some(only) = &o.only {
        if let Some(bad) = only.split(',').find(|s| !SCENARIOS.contains(s)) {
            eprintln!("unknown scenario {bad}");
            usage();
        }
    }
    o
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn header(o: &Opts) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    println!("# logbus comparison benchmark\n");
    println!("command:  {}", std::env::args().collect::<Vec<_>>().join(" "));
    println!(
        "machine:  {nproc} CPUs, {cpu}, {}, kernel {}",
        mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        sh("uname", &["-r"])
    );
    println!(
        "data dir: {} ({})",
        o.dir.display(),
        sh("df", &["--output=source,fstype", o.dir.to_str().unwrap_or(".")]).replace('\n', " ")
    );
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let rev =
        std::env::var("LOGBUS_REV").unwrap_or_else(|_| sh("git", &["-C", root, "describe", "--always", "--dirty"]));
    println!(
        "logbus:   {} (built from {root})",
        if rev.is_empty() { "unknown revision" } else { &rev }
    );
    println!(
        "rounds:   {}{}{}",
        o.rounds,
        if o.quick { ", quick sizes" } else { "" },
        if o.big { ", big sizes" } else { "" }
    );
    println!("uptime at start: {}", sh("uptime", &[]));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__hog") {
        common::Hog::run();
        return;
    }
    if args.first().map(String::as_str) == Some("__child") {
        child::main(&args[1..]);
        return;
    }
    let o = parse(&args);
    header(&o);
    let wanted = |s: &str| o.only.as_deref().is_none_or(|only| only.split(',').any(|x| x == s));
    let t = std::time::Instant::now();
    for s in SCENARIOS {
        if !wanted(s) {
            continue;
        }
        eprintln!("== {s}");
        match s {
            "append1" => append::append1(&o),
            "append_batch" => append::append_batch(&o),
            "scan" => scan::scan(&o),
            "pubsub" => pubsub::pubsub(&o),
            "latency" => latency::latency(&o),
            "durable" => durable::durable(&o),
            "recovery" => recovery::recovery(&o),
            "memory" => recovery::memory(&o),
            "sustained" => sustained::sustained(&o),
            "partitions" => partitions::partitions(&o),
            "stages" => stages::stages(&o),
            "handoff" => handoff::handoff(&o),
            _ => unreachable!(),
        }
    }
    println!("\nuptime at end: {}", sh("uptime", &[]));
    println!("total time: {:.0} s", t.elapsed().as_secs_f64());
}
