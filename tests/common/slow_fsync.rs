//! A slow disk, once: the first fsync of a file under a directory takes over
//! a second (the threshold of a slow fsync round), through `logbus::testing`'s
//! sync observer. Give it a partition's directory: the log's sync rounds,
//! which are what is timed, fsync the files there (a topic's `topic.meta` is
//! fsynced outside them). Hold `process_wide_faults` meanwhile.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use logbus::testing::{self, SyncEvent};

/// Longer than the 1 s that makes an fsync round slow.
const STALL: Duration = Duration::from_millis(1100);

/// Installed by [`SlowFsyncOnce::under`]; removes the observer when dropped.
pub struct SlowFsyncOnce;

impl SlowFsyncOnce {
    /// The first fsync of a file under `dir`, from now on, stalls for [`STALL`].
    pub fn under(dir: &Path) -> SlowFsyncOnce {
        let dir: PathBuf = dir.to_path_buf();
        let done = AtomicBool::new(false);
        testing::set_sync_observer(Some(Box::new(move |event| {
            if let SyncEvent::File(path) = event {
                if path.starts_with(&dir) && !done.swap(true, Ordering::SeqCst) {
                    std::thread::sleep(STALL);
                }
            }
        })));
        SlowFsyncOnce
    }
}

impl Drop for SlowFsyncOnce {
    fn drop(&mut self) {
        testing::set_sync_observer(None);
    }
}
