//! The sidecar's progress file, `<dir>/@mirror/<group>.offsets`: per
//! partition, the next local offset to ship and one past the highest offset
//! ever sent. Byte layout in `docs/FORMAT.md` ("Mirror progress file").
//!
//! The bytes are `format::mirror_progress`'s; `load`/`store` read and
//! replace the file (temp file, fsync, rename, directory fsync).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::mirror_progress;
use crate::names::TopicPartition;

/// The directory under the broker directory (names starting with `@` are never topics).
pub(crate) const DIR: &str = "@mirror";

pub(crate) use crate::format::mirror_progress::Progress;

/// `<dir>/@mirror/<group>.offsets`.
pub(crate) fn path(dir: &Path, group: &str) -> PathBuf {
    dir.join(DIR).join(format!("{group}.offsets"))
}

/// The file's entries; empty when there is no file yet.
pub(crate) fn load(path: &Path) -> Result<BTreeMap<TopicPartition, Progress>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io("reading the mirror's progress file", path, e)),
    };
    let entries = mirror_progress::decode(&bytes).map_err(|e| Error::Corruption {
        path: path.to_path_buf(),
        position: e.at as u64,
        reason: format!("{} (delete the file to mirror every stored record again)", e.message()),
    })?;
    Ok(entries
        .into_iter()
        .map(|((topic, partition), p)| (TopicPartition::new(topic, partition), p))
        .collect())
}

/// Replaces the file atomically (temp file, fsync, rename, directory fsync).
pub(crate) fn store(path: &Path, entries: &BTreeMap<TopicPartition, Progress>) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.is_dir() {
            crate::fs::create_dir_durable(parent)?;
        }
    }
    let entries: mirror_progress::Entries = entries
        .iter()
        .map(|(tp, p)| ((tp.topic.clone(), tp.partition), *p))
        .collect();
    crate::fs::write_atomic(path, &mirror_progress::encode(&entries))
}
