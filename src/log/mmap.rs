//! Memory maps of segment files. The only module of the crate with `unsafe`.
//!
//! A [`SegmentMap`] maps a segment file once for its whole capacity. Bytes
//! `0..published` are written, immutable, and readable by any thread through
//! [`SegmentMap::bytes`]. Only the single [`MapWriter`] of a map writes, and
//! only at or beyond `published`, and only below `allocated`, the length the
//! file is known to have. So readers' slices and the writer's slice never
//! overlap, and no access touches a page past the end of the file (SIGBUS).
//!
//! Invariants relied on (with the directory lock held by this process, no other
//! process writes or truncates these files):
//! 1. `published` only grows (truncation copies to a new file, see `Log::truncate`).
//! 2. The file is never shorter than `published`; a sealed file is truncated to
//!    exactly `published`, which readers never pass.
//! 3. Writes happen only through the unique `MapWriter`, in `published..allocated`.
//!
//! `unsafe_code` is allowed item by item, on each function holding an
//! `unsafe` block, never on the whole module.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

/// A segment file mapped once for its whole capacity (or, for readers that
/// must not map files another process may truncate, bytes read into memory).
pub struct SegmentMap {
    raw: Option<MmapRaw>,
    heap: Option<Box<[u8]>>,
    /// Topic and partition the segment belongs to, set by the first record
    /// read from it: records then need only this map's `Arc`.
    origin: std::sync::OnceLock<(Arc<str>, u32)>,
    /// On its own cache line: the writer stores it on every append, while
    /// readers bump the `Arc` count (next to the fields above) per record.
    published: Padded,
}

/// An `AtomicUsize` alone on a 128-byte line (two 64-byte lines: adjacent-line prefetch).
#[repr(align(128))]
struct Padded(AtomicUsize);

impl std::ops::Deref for Padded {
    type Target = AtomicUsize;
    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

impl std::fmt::Debug for SegmentMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentMap")
            .field("published", &self.published())
            .finish()
    }
}

impl SegmentMap {
    /// Maps `len` bytes of a sealed (or recovered) segment read-only.
    pub fn read_only(file: &File, len: usize) -> io::Result<Arc<SegmentMap>> {
        let raw = if len == 0 {
            None
        } else {
            Some(MmapOptions::new().len(len).map_raw_read_only(file)?)
        };
        Ok(Arc::new(SegmentMap {
            raw,
            heap: None,
            origin: std::sync::OnceLock::new(),
            published: Padded(AtomicUsize::new(len)),
        }))
    }

    /// Wraps bytes already in memory (read with `pread` by a read-only inspector).
    pub fn from_vec(bytes: Vec<u8>) -> Arc<SegmentMap> {
        let len = bytes.len();
        Arc::new(SegmentMap {
            raw: None,
            heap: Some(bytes.into_boxed_slice()),
            origin: std::sync::OnceLock::new(),
            published: Padded(AtomicUsize::new(len)),
        })
    }

    /// Maps `capacity` bytes of an active segment for writing. `published`
    /// bytes are already valid data; the file is `allocated` bytes long.
    pub fn writable(file: File, capacity: usize, published: usize) -> io::Result<(Arc<SegmentMap>, MapWriter)> {
        let allocated = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if published > allocated || allocated > capacity || capacity == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "segment map: published {published} / allocated {allocated} / capacity {capacity} out of order"
                ),
            ));
        }
        let raw = MmapOptions::new().len(capacity).map_raw(&file)?;
        let map = Arc::new(SegmentMap {
            raw: Some(raw),
            heap: None,
            origin: std::sync::OnceLock::new(),
            published: Padded(AtomicUsize::new(published)),
        });
        let writer = MapWriter {
            map: Arc::clone(&map),
            growth: Arc::new(Growth {
                map: Arc::clone(&map),
                state: parking_lot::Mutex::new(GrowthState {
                    file,
                    capacity,
                    sealed: false,
                }),
                allocated: AtomicUsize::new(allocated),
                requested: std::sync::atomic::AtomicBool::new(false),
            }),
            capacity,
        };
        Ok((map, writer))
    }

    /// The segment's topic and partition (recorded once, by the first read).
    #[inline]
    pub fn origin(&self, topic: &Arc<str>, partition: u32) -> &(Arc<str>, u32) {
        self.origin.get_or_init(|| (Arc::clone(topic), partition))
    }

    /// The topic and partition, if a record was read from this map.
    #[inline]
    pub fn origin_known(&self) -> Option<&(Arc<str>, u32)> {
        self.origin.get()
    }

    /// Bytes written so far.
    #[inline]
    pub fn published(&self) -> usize {
        self.published.load(Ordering::Acquire)
    }

    /// The written bytes, `0..published`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn bytes(&self) -> &[u8] {
        let len = self.published();
        if let Some(heap) = &self.heap {
            return heap.get(..len).unwrap_or_default();
        }
        match &self.raw {
            // SAFETY: the mapping is at least `len` bytes (published <= capacity),
            // bytes below `published` are initialised file data that is never
            // written again (invariants 1 and 3), and the file is at least
            // `published` bytes long (invariant 2), so no page here can fault.
            // The mapping lives as long as `self`.
            Some(raw) if len > 0 => unsafe { std::slice::from_raw_parts(raw.as_ptr(), len) },
            _ => &[],
        }
    }
}

/// The one writer of a [`SegmentMap`].
pub struct MapWriter {
    map: Arc<SegmentMap>,
    growth: Arc<Growth>,
    capacity: usize,
}

impl std::fmt::Debug for MapWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapWriter")
            .field("capacity", &self.capacity)
            .field("allocated", &self.growth.allocated())
            .finish()
    }
}

/// Inline growth step, when the writer catches up with the allocated length.
const GROW: usize = 1024 * 1024;
/// Below this much allocated room ahead of the writer, it asks the background
/// thread to extend the file (see [`Growth`]).
const LOW_WATER: usize = 8 * 1024 * 1024;
/// How far ahead of the writer the background thread extends the file.
const AHEAD: usize = 16 * 1024 * 1024;

/// The file length of an active segment, extended (zero-filled) by its
/// writer or, ahead of it, by the broker's background thread: allocating new
/// page-cache pages is the dominant per-byte cost of appending, and this
/// takes it off the producer's thread. Both extend under `state`'s lock and
/// only at or past `allocated`, where the writer never stores; sealing takes
/// the same lock, so nothing extends a sealed file. The background thread
/// also maps what it allocated writable into the segment's mapping (see
/// `ensure_prefaulted`).
pub struct Growth {
    map: Arc<SegmentMap>,
    state: parking_lot::Mutex<GrowthState>,
    allocated: AtomicUsize,
    requested: std::sync::atomic::AtomicBool,
}

struct GrowthState {
    file: File,
    capacity: usize,
    sealed: bool,
}

impl Growth {
    /// Length of the file known to be allocated (zero-filled).
    pub fn allocated(&self) -> usize {
        self.allocated.load(Ordering::Acquire)
    }

    /// Makes the file at least `need` bytes long (capped at the capacity).
    pub fn ensure(&self, need: usize) -> io::Result<()> {
        if need <= self.allocated() {
            return Ok(());
        }
        let st = self.state.lock();
        let current = self.allocated();
        let target = need.min(st.capacity);
        if st.sealed || target <= current {
            return Ok(());
        }
        allocate(&st.file, current as u64, (target - current) as u64)?;
        self.allocated.store(target, Ordering::Release);
        Ok(())
    }

    /// Extends like [`ensure`](Self::ensure), then maps the new pages
    /// writable into the segment's mapping (`MADV_POPULATE_WRITE`), so the
    /// writer's first store into each page does not fault (`page_mkwrite`);
    /// the background thread pays for that instead, 1 MiB at a time (cost:
    /// BENCHMARKS.md, "Costs that shaped the design"). A hint only: an older kernel
    /// (before 5.14) refuses it and the writer faults as before.
    ///
    /// Not under the growth lock: with both cores busy (a spinning consumer,
    /// a pacing producer) this thread can be preempted mid-step, and a
    /// writer that caught up would wait for it. A seal racing with it is harmless: the kernel
    /// answers a populate past the end of the file with `EFAULT`, not a
    /// signal, and the advice touches no bytes.
    fn ensure_prefaulted(&self, need: usize) -> io::Result<()> {
        let before = self.allocated();
        self.ensure(need)?;
        let after = self.allocated();
        #[cfg(target_os = "linux")]
        if after > before {
            if let Some(raw) = &self.map.raw {
                let _ = raw.advise_range(memmap2::Advice::PopulateWrite, before, after - before);
            }
        }
        Ok(())
    }

    /// Withdraws a request that could not be delivered (the writer grows inline).
    pub fn cancel_request(&self) {
        self.requested.store(false, Ordering::Release);
    }

    /// Background work: extend to `AHEAD` bytes past `published`, then clear
    /// the request flag.
    pub fn extend_ahead(&self, published: usize) -> io::Result<()> {
        let target = published.saturating_add(AHEAD);
        let mut r = Ok(());
        // In GROW steps with a yield between: on a machine whose cores are all
        // busy (a spinning consumer and a producer), this thread takes a core
        // from one of them: small steps keep each hold short, so the producer
        // never stalls behind one long pwrite.
        let target = target.min(self.state.lock().capacity);
        loop {
            let before = self.allocated();
            if before >= target {
                break;
            }
            r = self.ensure_prefaulted(before.saturating_add(GROW).min(target));
            // Stop on an error, or when nothing grew (the segment was sealed).
            if r.is_err() || self.allocated() <= before {
                break;
            }
            std::thread::yield_now();
        }
        self.requested.store(false, Ordering::Release);
        r
    }
}

impl MapWriter {
    /// Bytes still free before the segment's capacity.
    pub fn remaining(&self) -> usize {
        self.capacity - self.map.published()
    }

    /// Writes `len` bytes at the published end with `fill`, then publishes them.
    /// Grows the file first when needed (a full disk is an error here, never
    /// a SIGBUS on the store).
    #[allow(unsafe_code)]
    pub fn append(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<()> {
        let start = self.map.published();
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.capacity)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "append past segment capacity"))?;
        if end > self.growth.allocated() {
            self.growth.ensure(end.max(self.growth.allocated() + GROW))?;
        }
        if end > self.growth.allocated() {
            return Err(io::Error::other("segment file could not be extended"));
        }
        let Some(raw) = &self.map.raw else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "segment is not mapped"));
        };
        // SAFETY: `start..end` lies within the mapping (end <= capacity) and within
        // the file (end <= allocated, the length the file was extended to, and only
        // a seal, which consumes this writer, shortens it). Nothing else writes this
        // range (this writer is unique; background growth writes only at or past
        // `allocated`), and no reader reads it (readers stop at `published`, which
        // is `start`).
        let dst = unsafe { std::slice::from_raw_parts_mut(raw.as_mut_ptr().add(start), len) };
        fill(dst);
        self.map.published.store(end, Ordering::Release);
        Ok(())
    }

    /// Gives a writer with no room at all (a new segment) its first growth
    /// step now, at open, so its first append does not grow the file inline
    /// (it would otherwise wait for a background thread that busy threads
    /// keep off the cores).
    /// Free when the file already has room, as a recovered active segment
    /// keeps its preallocated zero tail.
    pub fn reserve_first_step(&self) -> io::Result<()> {
        if self.growth.allocated() > self.map.published() {
            return Ok(());
        }
        self.growth.ensure_prefaulted(self.map.published().saturating_add(GROW))
    }

    /// When the allocated room ahead runs low, returns the growth handle for
    /// the background thread (once per request).
    pub fn prealloc_request(&self) -> Option<Arc<Growth>> {
        let room = self.growth.allocated().saturating_sub(self.map.published());
        if room >= LOW_WATER || self.growth.allocated() >= self.capacity {
            return None;
        }
        // A load first: while a request is pending (the background thread is
        // behind a fast writer), every append gets here, and a swap is a
        // locked instruction that waits for the append's stores to drain.
        if self.growth.requested.load(Ordering::Relaxed) || self.growth.requested.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(Arc::clone(&self.growth))
    }

    /// The map this writer writes (for the background thread's `extend_ahead`).
    pub fn published(&self) -> usize {
        self.map.published()
    }

    /// Cuts the file to its written length; the writer ends here.
    pub fn seal(self) -> io::Result<()> {
        let mut st = self.growth.state.lock();
        st.sealed = true;
        st.file.set_len(self.map.published() as u64)
    }
}

/// Extends the file by `len` bytes of zeros at `offset`, written with
/// `pwrite`: the blocks are allocated now (a full disk is an error here, not a
/// SIGBUS later) and the pages land in the page cache already dirty. On ext4,
/// the first store into a *fallocated* or sparse mapped page converts an
/// unwritten extent in `page_mkwrite`, far dearer than a store into a
/// pwritten page.
pub fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(ZEROS.len() as u64) as usize;
        file.write_all_at(ZEROS.get(..n).unwrap_or_default(), offset + done)?;
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_publishes_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("s.log"))
            .unwrap();
        let (map, mut w) = SegmentMap::writable(file, 1 << 20, 0).unwrap();
        assert_eq!(map.bytes(), b"");
        w.append(5, |d| d.copy_from_slice(b"hello")).unwrap();
        assert_eq!(map.bytes(), b"hello");
        w.append(100_000, |d| d.fill(7)).unwrap();
        assert_eq!(map.published(), 100_005);
        assert!(w.append(1 << 20, |_| {}).is_err());
        w.seal().unwrap();
        let len = std::fs::metadata(dir.path().join("s.log")).unwrap().len();
        assert_eq!(len, 100_005);
        assert_eq!(&map.bytes()[..5], b"hello");
    }

    #[test]
    fn background_growth_reaches_its_target_in_steps_and_stops_when_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.log");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let (_map, w) = SegmentMap::writable(file, AHEAD + 3 * GROW + 17, 0).unwrap();
        let growth = Arc::clone(&w.growth);
        growth.extend_ahead(0).unwrap();
        assert_eq!(growth.allocated(), AHEAD);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), AHEAD as u64);
        // Capped at the capacity, which is not a multiple of the step.
        growth.extend_ahead(AHEAD).unwrap();
        assert_eq!(growth.allocated(), AHEAD + 3 * GROW + 17);
        // A sealed segment never grows again, and the call returns.
        let (file2, path2) = (
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.path().join("h.log"))
                .unwrap(),
            dir.path().join("h.log"),
        );
        let (_map2, w2) = SegmentMap::writable(file2, 4 * AHEAD, 0).unwrap();
        let growth2 = Arc::clone(&w2.growth);
        w2.seal().unwrap();
        growth2.extend_ahead(0).unwrap();
        assert_eq!(std::fs::metadata(&path2).unwrap().len(), 0);
    }
}
