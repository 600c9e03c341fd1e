//! Retention: delete whole sealed segments from the front by size and age.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::clock::now_ms;
use super::recovery::remove_segment_files;
use super::segment::Segment;
use super::{LogInner, Writer};
use crate::error::Result;

/// The retention limits of a live log, changeable while it is open
/// (`Log::set_retention`): read by the retention pass, never by appends.
#[derive(Debug)]
pub(crate) struct Limits {
    /// `u64::MAX`: no size limit.
    bytes: AtomicU64,
    /// Negative: no age limit.
    ms: AtomicI64,
}

impl Limits {
    pub(crate) fn new(bytes: Option<u64>, ms: Option<i64>) -> Limits {
        let l = Limits {
            bytes: AtomicU64::new(u64::MAX),
            ms: AtomicI64::new(-1),
        };
        l.set(bytes, ms);
        l
    }

    pub(crate) fn set(&self, bytes: Option<u64>, ms: Option<i64>) {
        self.bytes.store(bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.ms.store(ms.filter(|&m| m >= 0).unwrap_or(-1), Ordering::Relaxed);
    }

    pub(crate) fn bytes(&self) -> Option<u64> {
        Some(self.bytes.load(Ordering::Relaxed)).filter(|&b| b != u64::MAX)
    }

    pub(crate) fn ms(&self) -> Option<i64> {
        Some(self.ms.load(Ordering::Relaxed)).filter(|&m| m >= 0)
    }
}

impl LogInner {
    pub(crate) fn enforce_retention_now(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.apply_retention(&mut w)
    }

    /// Deletes the oldest sealed segments while the partition is over
    /// `retention_bytes` without them, or their newest record is older than
    /// `retention_ms`. The active segment is never deleted. Readers holding a
    /// deleted segment keep its mapping and finish safely.
    pub(super) fn apply_retention(&self, w: &mut Writer) -> Result<()> {
        w.last_retention = Instant::now();
        let (by_size, by_age) = (self.retention.bytes(), self.retention.ms());
        if by_size.is_none() && by_age.is_none() {
            return Ok(());
        }
        let segs = self.segments();
        let now = now_ms();
        let mut total: u64 = segs.iter().map(|s| s.size()).sum();
        let mut drop_count = 0;
        for s in segs.iter().take(segs.len().saturating_sub(1)) {
            let over_size = by_size.is_some_and(|limit| total - s.size() >= limit);
            let too_old = by_age.is_some_and(|ms| s.max_ts() < now.saturating_sub(ms));
            if !(over_size || too_old) {
                break;
            }
            total -= s.size();
            drop_count += 1;
        }
        if drop_count == 0 {
            return Ok(());
        }
        let kept: Vec<Arc<Segment>> = segs.get(drop_count..).unwrap_or_default().to_vec();
        self.set_segments(kept);
        let dropped = segs.get(..drop_count).unwrap_or_default();
        for s in dropped {
            remove_segment_files(&self.dir, s.base)?;
        }
        w.dir_dirty = true;
        let freed = dropped.iter().map(|s| s.size()).sum();
        crate::obs::retention_deleted(&self.topic, self.partition, drop_count, freed, self.start_offset());
        Ok(())
    }
}
