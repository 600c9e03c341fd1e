//! `ingest`: copies Kafka topics into the local directory (`kafka::Ingest`)
//! until SIGINT or SIGTERM, with a progress line a second on stderr.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::args::IngestArgs;
use super::{open_broker, signals, CliResult};
use crate::kafka::{Ingest, IngestStatus};

/// How often the loop looks at the stop flag and the ingest's health.
const TICK: Duration = Duration::from_millis(50);
/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub(super) fn run(dir: &Path, a: IngestArgs) -> CliResult<u8> {
    let stop = signals::stop_flag()?;
    let broker = open_broker(dir)?;
    let mut builder = Ingest::builder(&a.bootstrap_server).assign_all(a.assign);
    for t in &a.topic {
        builder = builder.topic(t);
    }
    if let Some(g) = &a.group {
        builder = builder.group(g);
    }
    for (k, v) in signals::settings(&a.set)? {
        builder = builder.set(k, v);
    }
    let ingest = builder.start(&broker)?;
    let mut err = std::io::stderr();
    let mut last_print = Instant::now();
    let mut last_count = 0u64;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(TICK);
        if !ingest.status().running {
            break;
        }
        if last_print.elapsed() >= PROGRESS_EVERY {
            let status = ingest.status();
            let count = status.ingested();
            let rate = (count - last_count) as f64 / last_print.elapsed().as_secs_f64();
            let _ = writeln!(err, "ingest: {count} records ({rate:.0}/s){}", problem(&status));
            last_print = Instant::now();
            last_count = count;
        }
    }
    let report = ingest.stop()?;
    broker.close()?;
    let _ = writeln!(
        err,
        "ingest: stopped after {:.1} s, {} records ingested",
        report.elapsed.as_secs_f64(),
        report.ingested
    );
    for p in &report.partitions {
        let last = p.last_offset.map_or_else(|| "none".to_string(), |o| o.to_string());
        let _ = writeln!(
            err,
            "  {}/{}: {} records, last Kafka offset stored {last}{}",
            p.topic,
            p.partition,
            p.ingested,
            p.last_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
    Ok(0)
}

/// ", last error: ..." when the Kafka client reported one.
fn problem(status: &IngestStatus) -> String {
    status
        .last_error
        .as_ref()
        .map(|e| format!(", last Kafka client error: {e}"))
        .unwrap_or_default()
}
