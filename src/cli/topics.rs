//! `topics create | list | describe | delete`.

use std::io::Write;
use std::path::Path;

use super::args::CreateArgs;
use super::{open_broker, CliResult};
use crate::inspect::Inspector;
use crate::TopicConfig;

pub(super) fn create(dir: &Path, a: CreateArgs) -> CliResult<u8> {
    // Check the name before Broker::open creates a directory for a typo.
    crate::validate_topic_name(&a.name)?;
    let mut config = TopicConfig::new(a.partitions)
        .retention_ms(a.retention_ms)
        .retention_bytes(a.retention_bytes);
    if let Some(b) = a.segment_bytes {
        config = config.segment_bytes(b);
    }
    if let Some(b) = a.max_record_bytes {
        config = config.max_record_bytes(b);
    }
    let broker = open_broker(dir)?;
    broker.create_topic(&a.name, config)?;
    broker.close()?;
    writeln!(
        std::io::stdout(),
        "Created topic {} with {} partition(s).",
        a.name,
        a.partitions
    )?;
    Ok(0)
}

pub(super) fn list(dir: &Path) -> CliResult<u8> {
    let names = Inspector::open(dir)?.topics()?;
    let mut out = std::io::stdout().lock();
    for n in names {
        writeln!(out, "{n}")?;
    }
    Ok(0)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

pub(super) fn describe(dir: &Path, name: &str) -> CliResult<u8> {
    let info = Inspector::open(dir)?.describe_topic(name)?;
    let m = &info.meta;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Topic: {}\tPartitions: {}\tsegment.bytes: {}\tsegment.ms: {}\tretention.bytes: {}\tretention.ms: {}\tmax.record.bytes: {}\ttimestamp.type: {}\tpartitioner: {}",
        info.name,
        m.partitions,
        m.segment_bytes,
        opt(m.segment_ms),
        opt(m.retention_bytes),
        opt(m.retention_ms),
        if m.max_record_bytes == 0 {
            let default = crate::TopicConfig::new(1).segment_bytes(m.segment_bytes).effective_max_record_bytes();
            format!("{default} (default)")
        } else {
            m.max_record_bytes.to_string()
        },
        if m.timestamp_type == 1 { "LogAppendTime" } else { "CreateTime" },
        if m.partitioner == 1 { "murmur2" } else { "xxh64" },
    )?;
    writeln!(
        out,
        "{:>9}  {:>12}  {:>12}  {:>10}  {:>14}  {:>8}",
        "PARTITION", "START", "END", "RECORDS", "SIZE_BYTES", "SEGMENTS"
    )?;
    let mut notes = Vec::new();
    for p in &info.partitions {
        writeln!(
            out,
            "{:>9}  {:>12}  {:>12}  {:>10}  {:>14}  {:>8}",
            p.partition,
            p.start_offset,
            p.end_offset,
            p.end_offset.saturating_sub(p.start_offset),
            p.size_bytes,
            p.segment_count
        )?;
        if let Some(d) = &p.tail_damage {
            notes.push(format!(
                "note: partition {} ends before an incomplete or damaged batch ({d})",
                p.partition
            ));
        }
    }
    for n in notes {
        writeln!(out, "{n}")?;
    }
    Ok(0)
}

pub(super) fn delete(dir: &Path, name: &str) -> CliResult<u8> {
    let broker = open_broker(dir)?;
    broker.delete_topic(name)?;
    broker.close()?;
    writeln!(std::io::stdout(), "Deleted topic {name}.")?;
    Ok(0)
}
