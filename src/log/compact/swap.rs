//! Installing a pass's segments, crash-safely, and finishing an interrupted
//! install at open.
//!
//! 1. Each new segment is written to `<base>.log.cleaned` and fsynced.
//! 2. `compact.state` is replaced (temp file, fsync, rename, directory fsync)
//!    by one listing the swaps: the commit point. Before it, a crash leaves
//!    the old segments (recovery deletes `*.cleaned`); after it, recovery
//!    finishes the swaps.
//! 3. For each swap: the old index files go, `<base>.log.cleaned` is renamed
//!    over `<base>.log`, and the later segments it replaces are deleted; the
//!    directory is fsynced.
//! 4. `compact.state` is replaced by one without swaps.
//!
//! Every step of 3 can be repeated: a rename whose `.cleaned` file is gone
//! was done, a deletion whose file is gone was done.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::compact_state::{self, CompactState, Swap};
use crate::fs as lfs;
use crate::log::recovery::remove_segment_files;
use crate::log::segment;

/// The partition's compaction state file.
pub(crate) const STATE_FILE: &str = "compact.state";
const CLEANED: &str = ".cleaned";

/// `<base>.log.cleaned`.
pub(super) fn cleaned_path(dir: &Path, base: u64) -> PathBuf {
    let (log, _, _) = segment::paths(dir, base);
    let mut s = log.into_os_string();
    s.push(CLEANED);
    PathBuf::from(s)
}

/// Reads `compact.state` (none: a log never compacted).
pub(crate) fn read_state(dir: &Path) -> Result<CompactState> {
    let path = dir.join(STATE_FILE);
    match lfs::read_optional(&path)? {
        None => Ok(CompactState::default()),
        Some(bytes) => compact_state::decode(&bytes).map_err(|e| Error::Corruption {
            path,
            position: e.at as u64,
            reason: e.message(),
        }),
    }
}

/// Offset below which the log in `dir` was compacted, for readers without
/// the directory lock (0 when never, or when the state cannot be read).
pub(crate) fn cleaned_upto_of(dir: &Path) -> u64 {
    read_state(dir).map_or(0, |s| s.cleaned_upto())
}

/// Replaces `compact.state` atomically.
pub(super) fn write_state(dir: &Path, state: &CompactState) -> Result<()> {
    lfs::write_atomic(&dir.join(STATE_FILE), &compact_state::encode(state))
}

/// Step 3 for every swap, then a directory fsync. `bases`: the segment
/// files present, to find the ones each swap replaces.
pub(super) fn apply(dir: &Path, swaps: &[Swap], bases: &[u64]) -> Result<()> {
    for w in swaps {
        let (_, index, time) = segment::paths(dir, w.base);
        for p in [index, time] {
            remove_if_present(&p)?;
        }
    }
    lfs::sync_dir(dir)?;
    for w in swaps {
        let cleaned = cleaned_path(dir, w.base);
        if cleaned.exists() {
            let (log, _, _) = segment::paths(dir, w.base);
            fs::rename(&cleaned, &log).map_err(|e| Error::io("installing compacted segment", &log, e))?;
        }
        for &b in bases.iter().filter(|&&b| b > w.base && b < w.end) {
            remove_segment_files(dir, b)?;
        }
    }
    lfs::sync_dir(dir)
}

fn remove_if_present(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("deleting file", p, e)),
    }
}

/// At open, before the segments are listed: finishes the swaps of a pass
/// that committed, deletes the `*.cleaned` files of one that did not, and
/// returns the state (empty for a log never compacted).
pub(crate) fn recover(dir: &Path) -> Result<CompactState> {
    let mut state = read_state(dir)?;
    if !state.swaps.is_empty() {
        let bases = segment_bases(dir)?;
        apply(dir, &state.swaps, &bases)?;
        state.swaps.clear();
        write_state(dir, &state)?;
    }
    let entries = fs::read_dir(dir).map_err(|e| Error::io("listing partition directory", dir, e))?;
    let mut removed = false;
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(|n| n.ends_with(CLEANED)) {
            remove_if_present(&entry.path())?;
            removed = true;
        }
    }
    if removed {
        lfs::sync_dir(dir)?;
    }
    Ok(state)
}

fn segment_bases(dir: &Path) -> Result<Vec<u64>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("listing partition directory", dir, e))?;
    let mut bases: Vec<u64> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(segment::parse_name))
        .collect();
    bases.sort_unstable();
    Ok(bases)
}
