//! `groups list | describe | reset-offsets`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use super::args::ResetArgs;
use super::{open_broker, CliError, CliResult};
use crate::inspect::Inspector;
use crate::TopicPartition;

pub(super) fn list(dir: &Path) -> CliResult<u8> {
    let committed = Inspector::open(dir)?.committed_offsets()?;
    let mut out = std::io::stdout().lock();
    for g in committed.group_names() {
        writeln!(out, "{g}")?;
    }
    Ok(0)
}

pub(super) fn describe(dir: &Path, group: &str) -> CliResult<u8> {
    let inspector = Inspector::open(dir)?;
    let committed = inspector.committed_offsets()?;
    let Some(offsets) = committed.groups.get(group).filter(|o| !o.is_empty()) else {
        return Err(CliError::new(format!(
            "group '{group}' has no committed offsets (see `logbus groups list`)"
        )));
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<24}  {:>9}  {:>14}  {:>12}  {:>10}  MEMBER",
        "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
    )?;
    // Every partition of each topic the group committed on; '-' where it has no commit.
    let mut rows: BTreeMap<TopicPartition, Option<u64>> =
        offsets.iter().map(|(tp, &o)| (tp.clone(), Some(o))).collect();
    let topics: BTreeSet<&str> = offsets.keys().map(|tp| tp.topic.as_str()).collect();
    for t in topics {
        if let Ok(meta) = inspector.topic_meta(t) {
            for p in 0..meta.partitions {
                rows.entry(TopicPartition::new(t, p)).or_insert(None);
            }
        }
    }
    for (tp, off) in rows {
        let end = inspector
            .partition_info(&tp.topic, tp.partition)
            .ok()
            .map(|i| i.end_offset);
        let dash = || "-".to_string();
        let lag = match (end, off) {
            (Some(e), Some(o)) => e.saturating_sub(o).to_string(),
            _ => dash(),
        };
        let (off_s, end_s) = (
            off.map_or_else(dash, |o| o.to_string()),
            end.map_or_else(dash, |e| e.to_string()),
        );
        writeln!(
            out,
            "{:<24}  {:>9}  {:>14}  {:>12}  {:>10}  -",
            tp.topic, tp.partition, off_s, end_s, lag
        )?;
    }
    writeln!(
        out,
        "note: live members are held in the memory of the process that owns the directory and are not visible to this command (MEMBER is '-')"
    )?;
    if let Some(s) = &committed.stopped_early {
        writeln!(out, "note: offsets log read up to {s}")?;
    }
    Ok(0)
}

pub(super) fn reset(dir: &Path, a: ResetArgs) -> CliResult<u8> {
    let broker = open_broker(dir)?;
    let topic = broker.topic(&a.topic)?;
    let partitions: Vec<u32> = match a.partition {
        Some(p) => vec![topic.partition(p)?.id()],
        None => (0..topic.partition_count()).collect(),
    };
    let mut offsets = Vec::with_capacity(partitions.len());
    for p in partitions {
        let part = topic.partition(p)?;
        let (start, end) = (part.start_offset(), part.end_offset());
        let target = match a.to_offset {
            Some(o) if o < start || o > end => {
                return Err(crate::Error::OffsetOutOfRange {
                    topic: a.topic.clone(),
                    partition: p,
                    offset: o,
                    start,
                    end,
                }
                .into());
            }
            Some(o) => o,
            None if a.to_earliest => start,
            None => end,
        };
        offsets.push((TopicPartition::new(a.topic.as_str(), p), target));
    }
    broker.set_group_offsets(&a.group, &offsets)?;
    broker.close()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<24}  {:>9}  {:>14}", "TOPIC", "PARTITION", "NEW-OFFSET")?;
    for (tp, o) in offsets {
        writeln!(out, "{:<24}  {:>9}  {:>14}", tp.topic, tp.partition, o)?;
    }
    Ok(0)
}
