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
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

/// A segment file mapped once for its whole capacity (or, for readers that
/// must not map files another process may truncate, bytes read into memory).
/// The mapping of an active segment reserves address space only: what is
/// resident is the pages written or prefaulted, as far as the file was
/// allocated (see [`Growth`]).
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
            ahead: MIN_AHEAD,
            last_request: Instant::now(),
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
    /// Room to keep allocated ahead of the writer (`MIN_AHEAD..=MAX_AHEAD`),
    /// following the write rate (see [`prealloc_request`](Self::prealloc_request)).
    ahead: usize,
    /// When the writer last asked for room (or was created).
    last_request: Instant,
}

impl std::fmt::Debug for MapWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapWriter")
            .field("capacity", &self.capacity)
            .field("allocated", &self.growth.allocated())
            .field("ahead", &self.ahead)
            .finish()
    }
}

/// The smallest growth step, and the room a new segment starts with: an
/// idle partition costs this much (and nothing before its first append).
/// One page: over 1,000 partitions a larger first step is zero-filled by the
/// producer and written by the close for every partition (BENCHMARKS.md,
/// "partitions").
pub(crate) const MIN_AHEAD: usize = 4 * 1024;
/// The largest room kept allocated ahead of a writer (reached by one that
/// writes 4 MiB/s or more).
pub(crate) const MAX_AHEAD: usize = 16 * 1024 * 1024;
/// The background thread extends in steps of at most this much, and the
/// writer grows inline by at most this much when it catches up.
const GROW: usize = 1024 * 1024;
/// A request for more room this soon after the previous one doubles the
/// room ahead (the writer consumed half of it in less than this)...
const FAST: Duration = Duration::from_secs(1);
/// ...and one this late halves it: the room ahead follows the write rate,
/// between about two and eight seconds of writing.
const SLOW: Duration = Duration::from_secs(4);

/// The file length of an active segment, extended (zero-filled) by its
/// writer or, ahead of it, by the broker's background thread: allocating new
/// page-cache pages is the dominant per-byte cost of appending, and this
/// takes it off the producer's thread. How far ahead follows the write rate
/// (see [`MapWriter::prealloc_request`]): a segment never written has no
/// bytes, an idle one `MIN_AHEAD`, a fast one `MAX_AHEAD`. Writer and
/// background thread both extend under `state`'s lock and only at or past
/// `allocated`, where the writer never stores; sealing takes
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

    /// Background work: extend the file to `target` bytes (capped at the
    /// capacity), then clear the request flag.
    pub fn extend_ahead(&self, target: usize) -> io::Result<()> {
        let mut r;
        // In GROW steps with a yield between: on a machine whose cores are all
        // busy (a spinning consumer and a producer), this thread takes a core
        // from one of them: small steps keep each hold short, so the producer
        // never stalls behind one long pwrite. No yield after the last step:
        // on a busy machine a yield can cost milliseconds, and over many
        // partitions the next request is another writer's.
        let target = target.min(self.state.lock().capacity);
        loop {
            let before = self.allocated();
            r = self.ensure_prefaulted(before.saturating_add(GROW).min(target));
            let after = self.allocated();
            // Stop on an error, when done, or when nothing grew (the segment
            // was sealed).
            if r.is_err() || after >= target || after <= before {
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
            self.grow_inline(end)?;
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

    /// The writer caught up with the allocated length (a new segment, or a
    /// background thread behind a fast writer): extends the file past `end`
    /// by the room ahead, at most `GROW`. Catching up counts as asking for
    /// room: soon after the previous time, it doubles the room ahead, so a
    /// fast writer on a new segment reaches 1 MiB steps within a few of them.
    #[cold]
    fn grow_inline(&mut self, end: usize) -> io::Result<()> {
        let allocated = self.growth.allocated();
        if allocated > 0 {
            let now = Instant::now();
            self.ahead = next_ahead(self.ahead, now.saturating_duration_since(self.last_request));
            self.last_request = now;
        }
        self.growth.ensure(end.max(allocated + self.ahead.min(GROW)))
    }

    /// Gives a recovered segment that holds records but no room after them
    /// (its tail was cut) its first growth step now, at open, so its first
    /// append does not grow the file inline. Free when the file already has
    /// room (a recovered active segment keeps its preallocated zero tail),
    /// and nothing for an empty segment: a partition never written costs no
    /// bytes of log; its first append allocates `MIN_AHEAD`.
    pub fn reserve_first_step(&self) -> io::Result<()> {
        let published = self.map.published();
        if published == 0 || self.growth.allocated() > published {
            return Ok(());
        }
        self.growth.ensure_prefaulted(published.saturating_add(self.ahead))
    }

    /// Room kept ahead of this writer now (for the next segment's writer).
    pub fn ahead(&self) -> usize {
        self.ahead
    }

    /// Starts this writer with the room ahead its segment's predecessor had
    /// reached, so a fast writer keeps its pace across a roll.
    pub fn continue_from(&mut self, ahead: usize) {
        self.ahead = ahead.clamp(MIN_AHEAD, MAX_AHEAD);
    }

    /// When the allocated room ahead runs below half of `ahead`, returns the
    /// growth handle and the file length to extend to, for the background
    /// thread (once per request). The room ahead follows the write rate: a
    /// request within `FAST` of the previous one doubles it (up to
    /// `MAX_AHEAD`), one after `SLOW` halves it (down to `MIN_AHEAD`), so a
    /// partition keeps about two to eight seconds of writing allocated ahead.
    pub fn prealloc_request(&mut self) -> Option<(Arc<Growth>, usize)> {
        let allocated = self.growth.allocated();
        let published = self.map.published();
        if allocated.saturating_sub(published) >= self.ahead / 2 || allocated >= self.capacity {
            return None;
        }
        // A load first: while a request is pending (the background thread is
        // behind a fast writer), every append gets here, and a swap is a
        // locked instruction that waits for the append's stores to drain.
        if self.growth.requested.load(Ordering::Relaxed) || self.growth.requested.swap(true, Ordering::AcqRel) {
            return None;
        }
        let now = Instant::now();
        self.ahead = next_ahead(self.ahead, now.saturating_duration_since(self.last_request));
        self.last_request = now;
        Some((Arc::clone(&self.growth), published.saturating_add(self.ahead)))
    }

    /// Cuts the file to its written length; the writer ends here.
    pub fn seal(self) -> io::Result<()> {
        let mut st = self.growth.state.lock();
        st.sealed = true;
        st.file.set_len(self.map.published() as u64)
    }
}

/// The room to keep ahead of a writer that asked for more `since` its
/// previous request, having had `ahead` (see [`MapWriter::prealloc_request`]).
fn next_ahead(ahead: usize, since: Duration) -> usize {
    if since < FAST {
        ahead.saturating_mul(2).min(MAX_AHEAD)
    } else if since > SLOW {
        (ahead / 2).max(MIN_AHEAD)
    } else {
        ahead
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

    fn rw(path: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap()
    }

    #[test]
    fn background_growth_reaches_its_target_in_steps_and_stops_when_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.log");
        let (_map, w) = SegmentMap::writable(rw(&path), MAX_AHEAD + 3 * GROW + 17, 0).unwrap();
        let growth = Arc::clone(&w.growth);
        growth.extend_ahead(MAX_AHEAD).unwrap();
        assert_eq!(growth.allocated(), MAX_AHEAD);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), MAX_AHEAD as u64);
        // Capped at the capacity, which is not a multiple of the step.
        growth.extend_ahead(2 * MAX_AHEAD).unwrap();
        assert_eq!(growth.allocated(), MAX_AHEAD + 3 * GROW + 17);
        // A sealed segment never grows again, and the call returns.
        let path2 = dir.path().join("h.log");
        let (_map2, w2) = SegmentMap::writable(rw(&path2), 4 * MAX_AHEAD, 0).unwrap();
        let growth2 = Arc::clone(&w2.growth);
        w2.seal().unwrap();
        growth2.extend_ahead(MAX_AHEAD).unwrap();
        assert_eq!(std::fs::metadata(&path2).unwrap().len(), 0);
    }

    #[test]
    fn a_new_segment_has_no_bytes_and_its_first_append_allocates_the_smallest_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.log");
        let (_map, mut w) = SegmentMap::writable(rw(&path), 1 << 30, 0).unwrap();
        w.reserve_first_step().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        w.append(100, |d| d.fill(1)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), MIN_AHEAD as u64);
        assert!(w.prealloc_request().is_none(), "more than half the step is still free");
    }

    #[test]
    fn the_room_ahead_doubles_for_a_fast_writer_and_halves_for_a_slow_one() {
        let fast = Duration::from_millis(10);
        let mut ahead = MIN_AHEAD;
        let mut seen = Vec::new();
        for _ in 0..10 {
            ahead = next_ahead(ahead, fast);
            seen.push(ahead);
        }
        let expected: Vec<usize> = (1..=10).map(|i| (MIN_AHEAD << i).min(MAX_AHEAD)).collect();
        assert_eq!(seen, expected);
        assert_eq!(next_ahead(MAX_AHEAD, Duration::from_secs(2)), MAX_AHEAD, "steady");
        assert_eq!(next_ahead(MAX_AHEAD, SLOW * 2), MAX_AHEAD / 2);
        assert_eq!(next_ahead(MIN_AHEAD, SLOW * 2), MIN_AHEAD);
    }

    #[test]
    fn a_request_asks_for_the_room_ahead_once_and_the_next_segment_continues_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_map, mut w) = SegmentMap::writable(rw(&dir.path().join("r.log")), 1 << 30, 0).unwrap();
        w.append(1, |d| d.fill(1)).unwrap();
        assert_eq!(w.growth.allocated(), MIN_AHEAD);
        // Half the room used: a request, for `ahead` bytes past the end.
        w.append(MIN_AHEAD / 2, |d| d.fill(2)).unwrap();
        let (growth, target) = w.prealloc_request().expect("less than half the room left");
        assert_eq!(target, w.map.published() + w.ahead());
        assert!(w.ahead() >= MIN_AHEAD);
        assert!(w.prealloc_request().is_none(), "a pending request is not repeated");
        growth.extend_ahead(target).unwrap();
        assert_eq!(growth.allocated(), target);
        assert!(w.prealloc_request().is_none(), "room again");

        let (_map2, mut w2) = SegmentMap::writable(rw(&dir.path().join("s.log")), 1 << 30, 0).unwrap();
        w2.continue_from(w.ahead());
        assert_eq!(w2.ahead(), w.ahead());
        w2.continue_from(usize::MAX);
        assert_eq!(w2.ahead(), MAX_AHEAD);
        // Its first append grows by the step (at most GROW), not by MIN_AHEAD.
        w2.append(1, |d| d.fill(3)).unwrap();
        assert_eq!(w2.growth.allocated(), GROW);
    }
}
