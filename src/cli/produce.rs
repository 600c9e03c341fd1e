//! `produce`: one record per line of standard input.
//!
//! The outcome is the same on every run: every valid line before a bad one
//! (a line without the key separator) is stored, the bad line and everything
//! after it are not (unless `--skip-bad-lines`). Records are sent in one
//! `send_batch` per partition, so when a send fails the tool knows exactly
//! which lines were stored and says so.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::args::{topic_of, ProduceArgs};
use super::{note, open_broker, CliError, CliResult};
use crate::Record;

/// Records sent per batch when input arrives faster than it is sent.
const BATCH: usize = 1000;

/// A record with the input line it came from and the partition it goes to.
struct Line {
    no: u64,
    partition: u32,
    record: Record,
}

/// What `produce` stored so far.
#[derive(Default)]
struct Stored {
    /// Records stored.
    count: u64,
}

/// The key separator from `--key-separator` or Kafka's `--property parse.key=true`.
fn key_separator(a: &ProduceArgs) -> CliResult<Option<String>> {
    let (mut parse_key, mut sep) = (false, None);
    for p in &a.properties {
        match p.split_once('=') {
            Some(("parse.key", v)) => parse_key = v.eq_ignore_ascii_case("true"),
            Some(("key.separator", v)) => sep = Some(v.to_string()),
            _ => {
                return Err(CliError::new(format!(
                    "unsupported --property {p:?}; produce supports parse.key=true and key.separator=SEP (or use --key-separator SEP)"
                )))
            }
        }
    }
    match (&a.key_separator, parse_key) {
        (Some(s), _) => Ok(Some(s.clone())),
        // Kafka's default key.separator is a tab.
        (None, true) => Ok(Some(sep.unwrap_or_else(|| "\t".to_string()))),
        (None, false) => {
            if sep.is_some() {
                note("note: --property key.separator is used only with --property parse.key=true (as in Kafka)");
            }
            Ok(None)
        }
    }
}

pub(super) fn run(dir: &Path, a: ProduceArgs) -> CliResult<u8> {
    let topic_name = topic_of(&a.topic, &a.topic_flag);
    if a.bootstrap_server.is_some() {
        note("note: --bootstrap-server is ignored; logbus writes to the directory given by --dir");
    }
    let headers = parse_headers(&a.headers)?;
    let sep = key_separator(&a)?;
    if sep.as_deref() == Some("") {
        return Err(CliError::new("--key-separator must not be empty"));
    }
    let broker = open_broker(dir)?;
    let topic = broker.topic(&topic_name)?;
    if let Some(p) = a.partition {
        topic.partition(p)?;
    }
    let producer = broker.producer();
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut pending: Vec<Line> = Vec::new();
    let mut stored = Stored::default();
    let (mut line_no, mut skipped) = (0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| CliError::new(format!("reading standard input: {e}")))?;
        let mut bad = None;
        if n > 0 {
            line_no += 1;
            match to_record(&buf, sep.as_deref(), &headers) {
                Ok(record) => {
                    let record = match a.partition {
                        Some(p) => record.with_partition(p),
                        None => record,
                    };
                    let partition = topic.partition_for(&record)?;
                    let record = record.with_partition(partition);
                    pending.push(Line {
                        no: line_no,
                        partition,
                        record,
                    });
                }
                Err(reason) if a.skip_bad_lines => {
                    skipped += 1;
                    note(&format!("skipped line {line_no}: {reason}"));
                }
                Err(reason) => bad = Some(reason),
            }
        }
        // Send when the input has nothing more buffered (typed lines go out at
        // once), and before reporting a bad line (so what precedes it is stored).
        let flush = n == 0 || bad.is_some() || pending.len() >= BATCH || input.buffer().is_empty();
        if flush && !pending.is_empty() {
            send(&producer, &topic_name, std::mem::take(&mut pending), &mut stored)?;
        }
        if let Some(reason) = bad {
            let before = match line_no {
                1 => String::new(),
                2 => " from line 1".to_string(),
                n => format!(" from lines 1-{}", n - 1),
            };
            return Err(CliError::new(format!(
                "line {line_no}: {reason}. Stored {} record(s){before}; line {line_no} and everything after it were not written (fix the line and send again from line {line_no}, or pass --skip-bad-lines)",
                stored.count,
            )));
        }
        if n == 0 {
            break;
        }
    }
    broker.close()?;
    let skipped = if skipped > 0 {
        format!(" ({skipped} bad line(s) skipped)")
    } else {
        String::new()
    };
    note(&format!(
        "Produced {} record(s) to topic {topic_name}{skipped}.",
        stored.count
    ));
    Ok(0)
}

/// Sends `lines` with one `send_batch` per partition (each is all-or-nothing),
/// so a failure tells exactly which lines were stored.
fn send(producer: &crate::Producer, topic: &str, lines: Vec<Line>, stored: &mut Stored) -> CliResult {
    let (first, last) = match (lines.first(), lines.last()) {
        (Some(f), Some(l)) => (f.no, l.no),
        _ => return Ok(()),
    };
    let mut groups: BTreeMap<u32, Vec<Line>> = BTreeMap::new();
    for l in lines {
        groups.entry(l.partition).or_default().push(l);
    }
    let total: usize = groups.values().map(Vec::len).sum();
    let mut done: Vec<u32> = Vec::new();
    let mut done_lines = 0u64;
    let parts: Vec<u32> = groups.keys().copied().collect();
    for p in parts {
        let group = groups.remove(&p).unwrap_or_default();
        let n = group.len() as u64;
        if let Err(e) = producer.send_batch(topic, group.into_iter().map(|l| l.record)) {
            let mut lost = vec![p];
            lost.extend(groups.keys().copied());
            let partly = if done.is_empty() {
                String::new()
            } else {
                format!(
                    ", and {done_lines} of the {total} lines {first}-{last} (those for partition(s) {})",
                    list(&done)
                )
            };
            return Err(CliError::new(format!(
                "{} (sending lines {first}-{last} to partition {p}). Stored {} record(s): every line before line {first}{partly}; not written: {} of lines {first}-{last} (partition(s) {}) and everything after line {last}",
                super::cli_terms(&e),
                stored.count + done_lines,
                total as u64 - done_lines,
                list(&lost),
            )));
        }
        done.push(p);
        done_lines += n;
    }
    stored.count += done_lines;
    Ok(())
}

fn list(ps: &[u32]) -> String {
    ps.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

fn parse_headers(raw: &[String]) -> CliResult<Vec<(String, Vec<u8>)>> {
    raw.iter()
        .map(|h| match h.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.as_bytes().to_vec())),
            _ => Err(CliError::new(format!(
                "--header {h:?} is not NAME=VALUE (the name must not be empty)"
            ))),
        })
        .collect()
}

/// The record of one input line, or why the line is bad.
fn to_record(line: &[u8], sep: Option<&str>, headers: &[(String, Vec<u8>)]) -> Result<Record, String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut record = match sep {
        None => Record::new(line),
        Some(sep) => {
            let sep = sep.as_bytes();
            let at = line.windows(sep.len()).position(|w| w == sep).ok_or_else(|| {
                format!(
                    "no key separator {:?}; every line must be KEY{}VALUE",
                    String::from_utf8_lossy(sep),
                    String::from_utf8_lossy(sep)
                )
            })?;
            let (key, rest) = line.split_at(at);
            Record::new(rest.get(sep.len()..).unwrap_or_default()).with_key(key)
        }
    };
    for (n, v) in headers {
        record = record.with_header(n.clone(), v.clone());
    }
    Ok(record)
}
