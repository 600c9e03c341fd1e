//! `groups list | describe | reset-offsets | delete`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::{GroupsArgs, GroupsCommand};
use super::{existing_dir, open_broker, CliError, CliResult};
use crate::inspect::Inspector;
use crate::TopicPartition;

pub(super) fn run(dir: Option<PathBuf>, a: GroupsArgs) -> CliResult<u8> {
    super::topics::bootstrap_note(&a.bootstrap);
    let dir = existing_dir(dir)?;
    match a.command {
        GroupsCommand::List => list(&dir),
        GroupsCommand::Describe(g) => describe(&dir, g.id()),
        GroupsCommand::ResetOffsets(a) => super::reset::run(&dir, a),
        GroupsCommand::Delete(g) => delete(&dir, g.id()),
    }
}

fn list(dir: &Path) -> CliResult<u8> {
    let committed = Inspector::open(dir)?.committed_offsets()?;
    let mut out = std::io::stdout().lock();
    for g in committed.group_names() {
        writeln!(out, "{g}")?;
    }
    Ok(0)
}

fn describe(dir: &Path, group: &str) -> CliResult<u8> {
    let inspector = Inspector::open(dir)?;
    let committed = inspector.committed_offsets()?;
    let Some(offsets) = committed.groups.get(group).filter(|o| !o.is_empty()) else {
        return Err(CliError::new(format!(
            "group '{group}' has no committed offsets (see `logbus groups list`)"
        )));
    };
    let mut out = std::io::stdout().lock();
    let w = group.len().max(5);
    writeln!(
        out,
        "{:<w$}  {:<24}  {:>9}  {:>14}  {:>14}  {:>10}  {:<11}  {:<4}  CLIENT-ID",
        "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST"
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
            "{group:<w$}  {:<24}  {:>9}  {:>14}  {:>14}  {:>10}  {:<11}  {:<4}  -",
            tp.topic, tp.partition, off_s, end_s, lag, "-", "-"
        )?;
    }
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "note: live members are held in the memory of the process that owns the directory and are not visible to this command (CONSUMER-ID, HOST and CLIENT-ID are '-')"
    )?;
    if let Some(s) = &committed.stopped_early {
        writeln!(err, "note: offsets log read up to {s}")?;
    }
    Ok(0)
}

fn delete(dir: &Path, group: &str) -> CliResult<u8> {
    // Opening the broker takes the directory lock: live members exist only in
    // the process holding it, so once we have it the group has none.
    let broker = open_broker(dir)?;
    let known = Inspector::open(dir)?.committed_offsets()?;
    if known.groups.get(group).is_none_or(|o| o.is_empty()) {
        return Err(CliError::new(format!(
            "group '{group}' has no committed offsets (see `logbus groups list`)"
        )));
    }
    broker.delete_group_offsets(group)?;
    broker.close()?;
    writeln!(std::io::stdout(), "Deleted the committed offsets of group {group}.")?;
    Ok(0)
}
