//! Committed offsets of consumer groups, read from `@groups/offsets.log`
//! without the directory lock.

use std::collections::BTreeMap;
use std::path::Path;

use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::format::offsets::{self, OffsetEntry, FILE_HEADER};

/// Every group's committed offsets (next offset to read), as the file says now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedOffsets {
    /// Group id to its committed offsets.
    pub groups: BTreeMap<String, BTreeMap<TopicPartition, u64>>,
    /// Where the replay stopped before the end of the file, and why (a commit
    /// being written right now, or damage the owner cuts at its next open).
    pub stopped_early: Option<String>,
}

impl CommittedOffsets {
    /// Group ids with at least one committed offset, sorted.
    pub fn group_names(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, o)| !o.is_empty())
            .map(|(g, _)| g.clone())
            .collect()
    }
}

/// Replays `<dir>/@groups/offsets.log`; a missing file means no commits.
pub fn read_committed(dir: &Path) -> Result<CommittedOffsets> {
    let path = dir.join("@groups").join("offsets.log");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CommittedOffsets::default()),
        Err(e) => return Err(Error::io("reading committed offsets", &path, e)),
    };
    let mut out = CommittedOffsets::default();
    if bytes.len() < FILE_HEADER.len() {
        return Ok(out);
    }
    if bytes.get(..4) != FILE_HEADER.get(..4) {
        return Err(Error::Corruption {
            path,
            position: 0,
            reason: "offsets log header \"LBof\" expected".into(),
        });
    }
    if bytes.get(4) != FILE_HEADER.get(4) {
        return Err(Error::UnsupportedVersion {
            path,
            found: bytes.get(4).copied().unwrap_or(0),
            supported: 1,
        });
    }
    let mut pos = FILE_HEADER.len();
    while let Some(rest) = bytes.get(pos..).filter(|r| !r.is_empty()) {
        match offsets::decode(rest) {
            Ok(Some((entry, len))) => {
                apply(&mut out.groups, entry);
                pos += len;
            }
            Ok(None) => {
                out.stopped_early = Some(format!("{}: incomplete commit at byte {pos}", path.display()));
                break;
            }
            Err(e) => {
                out.stopped_early = Some(format!("{}: damaged commit at byte {pos}: {e}", path.display()));
                break;
            }
        }
    }
    Ok(out)
}

fn apply(groups: &mut BTreeMap<String, BTreeMap<TopicPartition, u64>>, entry: OffsetEntry) {
    match entry {
        OffsetEntry::Commit {
            group,
            topic,
            partition,
            offset,
        } => {
            groups
                .entry(group)
                .or_default()
                .insert(TopicPartition::new(topic, partition), offset);
        }
        OffsetEntry::DeleteGroup { group } => {
            groups.remove(&group);
        }
    }
}
