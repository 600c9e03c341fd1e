//! Log compaction (Kafka's `cleanup.policy=compact`): a pass keeps the
//! latest record of every key in the sealed segments and drops the older
//! ones, and tombstones once `delete_retention_ms` has passed since a pass
//! first reached them. Kept records keep their offsets; the offsets of
//! removed ones become gaps inside version 2 batches. See ARCHITECTURE.md,
//! "Compaction".

mod rewrite;
mod swap;

use std::io::Write;
use std::sync::Arc;

use super::clock::now_ms;
use super::index::SegIndex;
use super::segment::{self, Segment};
use super::LogInner;
use crate::config::CompactionConfig;
use crate::error::{Error, Result};
use crate::format::compact_state::{CompactState, Pass, Swap};
use crate::format::walk::{Expect, Walker};

pub(crate) use swap::{cleaned_upto_of, recover};

/// What one compaction pass did (see [`Log::compact`](crate::log::Log::compact)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Sealed segments the pass covered.
    pub segments_before: usize,
    /// Segments that replaced them.
    pub segments_after: usize,
    /// Bytes of the covered segments before the pass.
    pub bytes_before: u64,
    /// Bytes of the segments that replaced them.
    pub bytes_after: u64,
    /// Records removed (superseded ones and expired tombstones).
    pub records_removed: u64,
    /// Of those, tombstones removed because `delete_retention_ms` had passed.
    pub tombstones_removed: u64,
    /// Every offset below this one has been compacted at least once.
    pub cleaned_upto: u64,
}

/// One new segment of a pass: the old segments `olds` it replaces.
struct Group {
    olds: Vec<Arc<Segment>>,
    /// Its bytes, until they are written to `<base>.log.cleaned`.
    bytes: Vec<u8>,
    /// A record was removed, or segments were merged: a group of one
    /// unchanged segment is left alone.
    changed: bool,
    /// The index of the written file, and its length.
    index: Option<SegIndex>,
    len: u64,
}

impl LogInner {
    /// Offset below which the log has been compacted (0 when never).
    pub(crate) fn cleaned_upto(&self) -> u64 {
        self.compaction.lock().cleaned_upto()
    }

    /// Bytes of sealed segments written since the last pass over the bytes
    /// of all sealed segments (the active segment is never compacted); 0
    /// when there are none.
    pub(crate) fn dirty_ratio(&self) -> f64 {
        let upto = self.cleaned_upto();
        let segs = self.segments();
        let sealed = segs.get(..segs.len().saturating_sub(1)).unwrap_or_default();
        let total: u64 = sealed.iter().map(|s| s.size()).sum();
        let dirty: u64 = sealed.iter().filter(|s| s.base >= upto).map(|s| s.size()).sum();
        if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        }
    }

    /// Whether the background compactor should run a pass now: the dirty
    /// ratio reached the topic's setting, and a dirty segment is old enough
    /// for `min_compaction_lag_ms` (else a pass would find nothing new).
    pub(crate) fn compaction_due(&self) -> bool {
        let Some(c) = &self.config.compaction else {
            return false;
        };
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        let ratio = self.dirty_ratio();
        if ratio <= 0.0 || ratio < c.min_cleanable_dirty_ratio() {
            return false;
        }
        let upto = self.cleaned_upto();
        let segs = self.segments();
        cleanable(&segs, c, now_ms()).last().is_some_and(|s| s.base >= upto)
    }

    /// Runs one compaction pass over the sealed segments (see the module docs).
    pub(crate) fn compact(&self) -> Result<CompactionReport> {
        let Some(config) = self.config.compaction else {
            return Err(Error::config(
                "cleanup_policy",
                "delete",
                format!(
                    "topic '{}' is not compacted; create it with CleanupPolicy::Compact or CompactAndDelete",
                    self.topic
                ),
            ));
        };
        // One pass at a time per log.
        let _pass = self.compacting.lock();
        let state = self.compaction.lock().clone();
        self.check_open()?;
        self.check_poisoned()?;
        // Records the pass reads must be durable before it removes older
        // records of their keys: a power loss must not take the newer record
        // while the older one is already gone.
        let end = self.end_offset();
        self.sync_to(end)?;
        let now = now_ms();
        let segs = self.segments();
        let epoch = self.truncations.load(std::sync::atomic::Ordering::Acquire);
        let cleanable = cleanable(&segs, &config, now);
        let Some(upto) = segs
            .get(cleanable.len())
            .map(|s| s.base)
            .filter(|_| !cleanable.is_empty())
        else {
            return Ok(CompactionReport {
                cleaned_upto: state.cleaned_upto(),
                ..CompactionReport::default()
            });
        };
        let mut latest = rewrite::LatestMap::new();
        for seg in segs.iter() {
            rewrite::index_keys(seg, end, &mut latest)?;
        }
        let retention = config.delete_retention_ms;
        let expired = |o: u64| state.first_reached(o).unwrap_or(now).saturating_add(retention) <= now;
        let rules = rewrite::Rules {
            latest: &latest,
            tombstone_expired: &expired,
        };
        let mut report = CompactionReport::default();
        let mut groups = Vec::new();
        if let Err(e) = self.group_and_write(cleanable, upto, &rules, &mut report, &mut groups) {
            self.remove_cleaned(&groups);
            return Err(e);
        }
        drop(latest);
        let swaps = Self::swaps(&groups);
        let mut next = state.clone();
        next.push_pass(Pass { upto, time_ms: now });
        if self.install(&groups, swaps, &next, epoch)? {
            report.cleaned_upto = next.cleaned_upto();
            let reclaimed = report.bytes_before.saturating_sub(report.bytes_after);
            crate::obs::compacted(
                &self.topic,
                self.partition,
                report.segments_before,
                report.records_removed,
                reclaimed,
            );
        } else {
            report = CompactionReport {
                cleaned_upto: state.cleaned_upto(),
                ..CompactionReport::default()
            };
        }
        Ok(report)
    }

    /// Rewrites the cleanable segments and groups the results into new
    /// segments of at most `segment_bytes` (and 2^32 offsets), writing each
    /// changed group to `<base>.log.cleaned` (fsynced) as soon as it is
    /// complete, so a pass holds at most one new segment in memory. `upto`:
    /// the base of the segment after the cleanable ones.
    fn group_and_write(
        &self,
        cleanable: &[Arc<Segment>],
        upto: u64,
        rules: &rewrite::Rules<'_, '_>,
        report: &mut CompactionReport,
        groups: &mut Vec<Group>,
    ) -> Result<()> {
        let limit = self.config.segment_bytes as usize;
        for (i, seg) in cleanable.iter().enumerate() {
            let out = rewrite::rewrite(seg, rules)?;
            report.segments_before += 1;
            report.bytes_before += seg.size();
            report.records_removed += out.removed;
            report.tombstones_removed += out.tombstones_removed;
            let seg_end = cleanable.get(i + 1).map_or(upto, |s| s.base);
            let joins = groups.last().is_some_and(|g| {
                let first = g.olds.first().map_or(seg.base, |s| s.base);
                g.bytes.len() + out.bytes.len() <= limit && seg_end - first <= u64::from(u32::MAX)
            });
            match groups.last_mut() {
                Some(g) if joins => {
                    g.bytes.extend_from_slice(&out.bytes);
                    g.olds.push(Arc::clone(seg));
                    g.changed = true;
                }
                _ => {
                    if let Some(done) = groups.last_mut() {
                        self.finish_group(done)?;
                    }
                    groups.push(Group {
                        olds: vec![Arc::clone(seg)],
                        bytes: out.bytes,
                        changed: out.removed > 0,
                        index: None,
                        len: 0,
                    });
                }
            }
        }
        if let Some(done) = groups.last_mut() {
            self.finish_group(done)?;
        }
        report.segments_after = groups.len();
        report.bytes_after = groups
            .iter()
            .map(|g| {
                if g.changed {
                    g.len
                } else {
                    g.olds.iter().map(|s| s.size()).sum()
                }
            })
            .sum();
        Ok(())
    }

    /// Writes a complete changed group to `<base>.log.cleaned`, fsyncs it and
    /// builds its index; drops its bytes either way.
    fn finish_group(&self, g: &mut Group) -> Result<()> {
        let bytes = std::mem::take(&mut g.bytes);
        let Some(first) = g.olds.first().map(|s| s.base).filter(|_| g.changed) else {
            return Ok(());
        };
        let path = swap::cleaned_path(&self.dir, first);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&bytes)?;
            #[cfg(feature = "fault-injection")]
            if crate::testing::take_fsync_failure() {
                return Err(std::io::Error::other("injected fsync failure"));
            }
            f.sync_all()
        };
        write().map_err(|e| Error::io("writing compacted segment", &path, e))?;
        #[cfg(feature = "fault-injection")]
        crate::testing::synced(|| crate::testing::SyncEvent::File(path.clone()));
        let mut ix = SegIndex::default();
        let mut walk = Walker::new(&bytes, 0, Expect::Exactly(first));
        while let Ok(b) = walk.next_batch() {
            ix.on_batch(first, b.pos as u32, &b.header);
        }
        ix.finish();
        g.index = Some(ix);
        g.len = bytes.len() as u64;
        Ok(())
    }

    /// The swaps that install the changed groups.
    fn swaps(groups: &[Group]) -> Vec<Swap> {
        groups
            .iter()
            .filter(|g| g.changed)
            .filter_map(|g| {
                let (first, last) = (g.olds.first()?, g.olds.last()?);
                Some(Swap {
                    base: first.base,
                    end: last.base + 1,
                })
            })
            .collect()
    }

    fn remove_cleaned(&self, groups: &[Group]) {
        for g in groups {
            if let Some(first) = g.olds.first() {
                let _ = std::fs::remove_file(swap::cleaned_path(&self.dir, first.base));
            }
        }
    }

    /// Installs the written groups (see `swap.rs` for the steps and how a
    /// crash at each is recovered), under the writer lock so that no roll,
    /// retention or truncation runs meanwhile. A pass that raced with
    /// retention or a truncation is dropped: the old segments stay, and it
    /// returns false.
    fn install(&self, groups: &[Group], swaps: Vec<Swap>, next: &CompactState, epoch: u64) -> Result<bool> {
        // Readers of an old segment must not rebuild its index later: the
        // rebuilt files would describe the old file under the new file's name.
        for g in groups {
            for s in &g.olds {
                s.with_index(|_| ());
            }
        }
        // The fsynced checkpoint must name the active segment, never one this
        // pass replaces (its position would not describe the new file).
        self.write_checkpoint(false)?;
        let mut w = self.writer.lock();
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            drop(w);
            self.remove_cleaned(groups);
            return Err(Error::Closed);
        }
        let segs = self.segments();
        let still_there = groups
            .iter()
            .flat_map(|g| g.olds.iter())
            .all(|old| segs.iter().any(|s| Arc::ptr_eq(s, old)));
        if !still_there || self.truncations.load(std::sync::atomic::Ordering::Acquire) != epoch {
            drop(w);
            self.remove_cleaned(groups);
            return Ok(false);
        }
        if let Some(live) = w.live.as_mut() {
            live.invalidate()?;
        }
        let bases: Vec<u64> = segs.iter().map(|s| s.base).collect();
        let committed = CompactState {
            swaps: swaps.clone(),
            ..next.clone()
        };
        // The new segment list: each changed group's first old segment's
        // place holds the new segment, its other old segments are gone.
        let new_list = || -> Result<Vec<Arc<Segment>>> {
            let mut list = Vec::with_capacity(segs.len());
            for s in segs.iter() {
                match groups
                    .iter()
                    .find(|g| g.changed && g.olds.iter().any(|o| Arc::ptr_eq(o, s)))
                {
                    Some(g) if g.olds.first().is_some_and(|f| Arc::ptr_eq(f, s)) => {
                        list.push(Arc::new(self.open_compacted(s.base, g)?));
                    }
                    Some(_) => {}
                    None => list.push(Arc::clone(s)),
                }
            }
            Ok(list)
        };
        let switched = swap::write_state(&self.dir, &committed)
            .and_then(|()| swap::apply(&self.dir, &swaps, &bases))
            .and_then(|()| swap::write_state(&self.dir, next))
            .and_then(|()| new_list());
        let list = match switched {
            Ok(list) => list,
            Err(e) => {
                // The files may be half switched, or switched under a segment
                // list that still names the old ones: only a reopen (whose
                // recovery finishes a committed swap) may go on from here.
                drop(w);
                let cause = self.poison(e);
                return Err(self.poisoned_error(&cause));
            }
        };
        let replaced: Vec<&std::path::Path> = groups
            .iter()
            .filter(|g| g.changed)
            .flat_map(|g| g.olds.iter().map(|s| s.path.as_path()))
            .collect();
        w.unsynced.retain(|(_, p)| !replaced.contains(&p.as_path()));
        // The state first: whoever sees the new segments sees them as cleaned.
        *self.compaction.lock() = next.clone();
        self.set_segments(list);
        Ok(true)
    }

    /// Opens an installed segment with the index built when it was written
    /// (written as sealed index files: caches).
    fn open_compacted(&self, base: u64, g: &Group) -> Result<Segment> {
        let seg = Segment::open_sealed(&self.dir, base)?;
        if let Some(ix) = &g.index {
            let (_, ipath, tpath) = segment::paths(&self.dir, base);
            // A cache: a failed write means a rebuild on first use.
            let _ = ix.write_sealed(&ipath, &tpath, base, g.len);
            *seg.index.write() = Some(ix.clone());
        }
        Ok(seg)
    }

    /// After a truncation to `offset`: passes no longer reached the offsets
    /// from there on (new records will take them).
    pub(crate) fn forget_compaction_after(&self, offset: u64) {
        let _pass = self.compacting.lock();
        let mut state = self.compaction.lock();
        let before = state.passes.len();
        state.passes.retain(|p| p.upto <= offset);
        if state.passes.len() != before {
            // Best effort: a stale file only keeps tombstones longer.
            let _ = swap::write_state(&self.dir, &state);
        }
    }
}

/// The sealed segments a pass may compact: from the first, up to the first
/// one whose newest record is younger than `min_compaction_lag_ms`.
fn cleanable<'a>(segs: &'a [Arc<Segment>], config: &CompactionConfig, now: i64) -> &'a [Arc<Segment>] {
    let sealed = segs.get(..segs.len().saturating_sub(1)).unwrap_or_default();
    let horizon = now.saturating_sub(config.min_compaction_lag_ms);
    let n = sealed
        .iter()
        .position(|s| config.min_compaction_lag_ms > 0 && s.max_ts() > horizon)
        .unwrap_or(sealed.len());
    sealed.get(..n).unwrap_or_default()
}
