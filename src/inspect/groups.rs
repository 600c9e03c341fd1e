//! Committed offsets of consumer groups, read from `@groups/offsets.log`
//! without the directory lock.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::names::TopicPartition;

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
    let (groups, stopped_early) = crate::group::store::replay_file(&path, &bytes)?;
    Ok(CommittedOffsets { groups, stopped_early })
}
