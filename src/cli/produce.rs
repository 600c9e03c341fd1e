//! `produce`: one record per line of standard input.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use super::args::ProduceArgs;
use super::{open_broker, CliError, CliResult};
use crate::Record;

/// Records sent per batch when input arrives faster than it is sent.
const BATCH: usize = 1000;

pub(super) fn run(dir: &Path, a: ProduceArgs) -> CliResult<u8> {
    let headers = parse_headers(&a.headers)?;
    if a.key_separator.as_deref() == Some("") {
        return Err(CliError::new("--key-separator must not be empty"));
    }
    let broker = open_broker(dir)?;
    let topic = broker.topic(&a.topic)?;
    if let Some(p) = a.partition {
        topic.partition(p)?;
    }
    let producer = broker.producer();
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut pending: Vec<Record> = Vec::new();
    let mut first_line = 1u64;
    let mut line_no = 0u64;
    let mut sent = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| CliError::new(format!("reading standard input: {e}")))?;
        if n > 0 {
            line_no += 1;
            pending.push(to_record(&buf, line_no, &a, &headers)?);
        }
        // Send when the input has nothing more buffered, so typed lines go out at once.
        let flush = n == 0 || pending.len() >= BATCH || input.buffer().is_empty();
        if flush && !pending.is_empty() {
            let batch = std::mem::take(&mut pending);
            let count = batch.len() as u64;
            producer.send_batch(&a.topic, batch).map_err(|e| {
                let lines = if count == 1 {
                    format!("line {first_line}")
                } else {
                    format!("lines {first_line}-{line_no}")
                };
                CliError::new(format!("{lines}: {e} (nothing from these lines was written)"))
            })?;
            sent += count;
            first_line = line_no + 1;
        }
        if n == 0 {
            break;
        }
    }
    broker.close()?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "Produced {sent} record(s) to topic {}.", a.topic);
    Ok(0)
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

fn to_record(line: &[u8], line_no: u64, a: &ProduceArgs, headers: &[(String, Vec<u8>)]) -> CliResult<Record> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut record = match a.key_separator.as_deref() {
        None => Record::new(line),
        Some(sep) => {
            let sep = sep.as_bytes();
            let at = line.windows(sep.len()).position(|w| w == sep).ok_or_else(|| {
                CliError::new(format!(
                    "line {line_no} has no key separator {:?}; every line must be KEY{}VALUE",
                    String::from_utf8_lossy(sep),
                    String::from_utf8_lossy(sep)
                ))
            })?;
            let (key, rest) = line.split_at(at);
            Record::new(rest.get(sep.len()..).unwrap_or_default()).with_key(key)
        }
    };
    for (n, v) in headers {
        record = record.with_header(n.clone(), v.clone());
    }
    if let Some(p) = a.partition {
        record = record.with_partition(p);
    }
    Ok(record)
}
