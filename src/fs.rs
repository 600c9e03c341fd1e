//! Small filesystem helpers: directory fsync, atomic replace, the broker lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))?;
    #[cfg(feature = "fault-injection")]
    crate::testing::synced(|| crate::testing::SyncEvent::Dir(dir.to_path_buf()));
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, directory fsync.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("writing file atomically", path, e)
    })?;
    // The data was synced under the temp name; report it under the final one.
    #[cfg(feature = "fault-injection")]
    crate::testing::synced(|| crate::testing::SyncEvent::File(path.to_path_buf()));
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Replaces `path` by `bytes` via a temp file and rename, without fsync: for
/// caches (index files) that are validated when read and rebuilt when wrong.
pub fn write_cache(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("writing index file", path, e)
        })
}

/// `path` with `.tmp` appended.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Reads a whole small file; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .map_err(|e| Error::io("reading file", path, e))?;
            Ok(Some(buf))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("opening file", path, e)),
    }
}

/// Creates a directory and its parents, fsyncing the parent of each new one.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            create_dir_durable(parent)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(Error::io("creating directory", dir, e)),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Most threads [`in_parallel`] starts: fsyncs of different files overlap
/// in the device's queue and share journal commits (1,000 `fdatasync`s of
/// small files on the benchmark VM: 3 s one after another, 0.1 s on 16
/// threads).
const PARALLEL_THREADS: usize = 16;

/// Fewest items a thread of [`in_parallel`] gets (a thread costs tens of
/// microseconds to start).
const ITEMS_PER_THREAD: usize = 4;

/// `items.iter().map(f).collect()`, on up to `PARALLEL_THREADS` scoped
/// threads for long lists: opening, creating and closing the partitions of
/// a topic, whose work is mostly waiting for fsyncs. Results keep the order
/// of `items`. Where a thread cannot be started, its share runs on the
/// calling thread.
pub(crate) fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = (items.len() / ITEMS_PER_THREAD).min(PARALLEL_THREADS);
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let started: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|chunk| {
                let thread = std::thread::Builder::new()
                    .name("logbus-open".into())
                    .spawn_scoped(s, move || chunk.iter().map(f).collect::<Vec<R>>());
                (chunk, thread)
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (chunk, thread) in started {
            match thread.map(|t| t.join()) {
                Ok(Ok(results)) => out.extend(results),
                // `f` panicked on that thread: the same panic, here.
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                Err(_) => out.extend(chunk.iter().map(f)),
            }
        }
        out
    })
}

/// Opens a file for reading and writing, creating it if needed.
pub fn open_rw(path: &Path, context: &'static str) -> Result<File> {
    create_or_open(path).map_err(|e| Error::io(context, path, e))
}

/// [`open_rw`] without the error's context: the checkpoint files' lazy
/// creation goes through here too. With `fault-injection`, a test's hook
/// (`testing::set_create_hook`) runs first, on the creating thread.
pub(crate) fn create_or_open(path: &Path) -> io::Result<File> {
    #[cfg(feature = "fault-injection")]
    crate::testing::creating(path);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// The exclusive lock on a broker directory (`flock` on `<dir>/@lock`),
/// released when dropped. The file holds the owner's pid, for error messages.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    /// The lock file's canonical path, as registered in `HELD`.
    path: PathBuf,
}

/// Lock files this process holds. A `flock` belongs to the open file, and a
/// child being spawned by another thread holds a copy of every descriptor
/// until it execs: for that moment, a lock this process already released
/// still looks held, by this process. `acquire` tells that apart from a
/// broker of this process really holding it.
static HELD: parking_lot::Mutex<Vec<PathBuf>> = parking_lot::Mutex::new(Vec::new());

/// How long `acquire` waits for a released lock that a spawning child still
/// holds a copy of.
const RELEASED_LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long `acquire` retries a lock another process holds before it fails:
/// that process may have just released it while one of its threads was
/// spawning a child (between `fork` and `exec` the child holds a copy of the
/// lock), which says nothing about an owner.
const FOREIGN_LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = HELD.lock();
        if let Some(i) = held.iter().position(|p| p == &self.path) {
            held.swap_remove(i);
        }
    }
}

impl DirLock {
    /// Takes the lock or fails with `Error::Locked`.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("@lock");
        let mut file = open_rw(&path, "opening the lock file")?;
        // One name per file, however the directory was spelled.
        let held_as = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let start = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    let pid = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    // This process's pid, but no broker of this process holds
                    // it: a released lock still held by a spawning child.
                    let released_here = pid == Some(std::process::id()) && !HELD.lock().contains(&held_as);
                    let grace = if released_here {
                        RELEASED_LOCK_GRACE
                    } else if pid == Some(std::process::id()) {
                        std::time::Duration::ZERO
                    } else {
                        FOREIGN_LOCK_GRACE
                    };
                    if start.elapsed() < grace {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        continue;
                    }
                    return Err(Error::Locked {
                        path: dir.to_path_buf(),
                        pid,
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io("locking the directory", &path, e)),
            }
        }
        // Always 11 bytes (a u32 right-aligned, newline), written in place:
        // truncating it first would make an open wait for the kernel's
        // writeback of a large log.
        let pid = format!("{:>10}\n", std::process::id());
        let write = |file: &mut File| -> io::Result<()> {
            use std::os::unix::fs::FileExt;
            if file.metadata()?.len() > pid.len() as u64 {
                file.set_len(pid.len() as u64)?;
            }
            file.write_all_at(pid.as_bytes(), 0)
        };
        write(&mut file).map_err(|e| Error::io("writing the lock file", &path, e))?;
        HELD.lock().push(held_as.clone());
        Ok(DirLock {
            _file: file,
            path: held_as,
        })
    }
}

/// The running kernel's boot id (Linux: `/proc/sys/kernel/random/boot_id`),
/// read once. `None` where the system has none: live checkpoints are then
/// never written or trusted.
pub(crate) fn boot_id() -> Option<[u8; 16]> {
    static ID: std::sync::OnceLock<Option<[u8; 16]>> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        parse_uuid(text.trim())
    })
}

/// 32 hex digits, optionally separated by dashes.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|&b| b != b'-')
        .map(|b| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if digits.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (slot, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
        if let [hi, lo] = pair {
            *slot = hi << 4 | lo;
        }
    }
    Some(id)
}

#[cfg(test)]
mod lock_tests {
    use super::DirLock;
    use crate::error::Error;

    /// A child being spawned holds a copy of the lock's descriptor until it
    /// execs: a reopen right after a close waits for it instead of failing.
    #[test]
    fn a_released_lock_still_held_by_a_copied_descriptor_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DirLock::acquire(dir.path()).unwrap();
        let copy = lock._file.try_clone().unwrap(); // shares the flock, like a fork
        drop(lock);
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(copy);
        });
        let again = DirLock::acquire(dir.path());
        holder.join().unwrap();
        assert!(again.is_ok(), "{again:?}");
    }

    #[test]
    fn a_lock_held_by_this_process_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = DirLock::acquire(dir.path()).unwrap();
        let second = DirLock::acquire(dir.path());
        assert!(
            matches!(second, Err(Error::Locked { pid: Some(p), .. }) if p == std::process::id()),
            "{second:?}"
        );
    }
}

#[cfg(test)]
mod boot_id_tests {
    #[test]
    fn parses_a_boot_id() {
        let id = super::parse_uuid("0123abcd-4567-89ef-0123-456789abcdef").unwrap();
        assert_eq!(id[0], 0x01);
        assert_eq!(id[3], 0xcd);
        assert_eq!(id[15], 0xef);
        assert!(super::parse_uuid("0123").is_none());
        assert!(super::parse_uuid("zz23abcd-4567-89ef-0123-456789abcdef").is_none());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_parallel_keeps_the_order_of_its_items() {
        for n in [0usize, 1, 7, 8, 100, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let out = super::in_parallel(&items, |i| (i * 3, std::thread::current().id()));
            assert_eq!(
                out.iter().map(|r| r.0).collect::<Vec<_>>(),
                (0..n).map(|i| i * 3).collect::<Vec<_>>()
            );
            let threads: std::collections::HashSet<_> = out.iter().map(|r| r.1).collect();
            assert_eq!(threads.len() > 1, n >= 8, "{n} items on {} threads", threads.len());
        }
    }
}
