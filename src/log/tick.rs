//! The background thread's periodic work on one log: `Interval` fsyncs,
//! recovery checkpoints (fsynced or live), time-based retention.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::LogInner;
use crate::config::{CheckpointPolicy, Durability};
use crate::error::Result;

/// Rolled segments waiting for an fsync that make an fsynced checkpoint due
/// (each holds an open file until then).
const MAX_UNSYNCED_FILES: usize = 16;

impl LogInner {
    /// Bytes a recovery starting at `(base, pos)` would scan now; without a
    /// checkpoint (a new log), it scans every segment.
    fn bytes_after(&self, at: Option<(u64, u64)>) -> u64 {
        let (base, pos) = at.unwrap_or((0, 0));
        let after: u64 = self
            .segments()
            .iter()
            .filter(|seg| seg.base >= base)
            .map(|seg| seg.size())
            .sum();
        after.saturating_sub(pos)
    }

    /// Periodic work from the background thread (a broker's or a standalone
    /// log's). A checkpoint is written when records arrived and
    /// `policy.every` passed, or once `policy.bytes` arrived since the last
    /// one (so the recovery scan after a crash stays bounded however fast the
    /// writer is). Under `PageCache` with a live file, those are live
    /// checkpoints and fsynced ones follow `policy.sync_every`/`sync_bytes`.
    pub(crate) fn background_tick(&self, policy: &CheckpointPolicy) -> Result<()> {
        if self.closed.load(Ordering::Acquire) || self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let end = self.end_offset();
        let (durable, since_sync) = self.sync_status();
        let (ck_next, since_ck, ck_at) = self.checkpoint.lock().last_written();
        let (live, unsynced_files) = {
            let mut w = self.writer.lock();
            w.appends.publish(&self.metrics);
            let live = w
                .live
                .as_ref()
                .filter(|_| self.config.durability == Durability::PageCache)
                .map(|l| l.last_written());
            (live, w.unsynced.len())
        };
        if let Durability::Interval(d) = self.config.durability {
            // Ticks come every d/2 at most: syncing once d/2 has passed since
            // the last sync bounds the age of an unsynced write by d (waiting
            // for d itself could leave one unsynced for up to 1.5 d).
            if end > durable && since_sync >= d / 2 {
                self.sync_to(end)?;
            }
        }
        match live {
            None => {
                if end > ck_next && (since_ck >= policy.every || self.bytes_after(ck_at) >= policy.bytes) {
                    self.write_checkpoint(false)?;
                }
            }
            Some((live_next, since_live, live_at)) => {
                let sync_due = since_ck >= policy.sync_every
                    || self.bytes_after(ck_at) >= policy.sync_bytes
                    || unsynced_files >= MAX_UNSYNCED_FILES;
                if end > ck_next && sync_due {
                    self.write_checkpoint(false)?;
                } else {
                    let newest = live_at.max(ck_at);
                    let since = if live_at > ck_at { since_live } else { since_ck };
                    if end > live_next.max(ck_next)
                        && (since >= policy.every || self.bytes_after(newest) >= policy.bytes)
                    {
                        self.write_live_checkpoint()?;
                    }
                }
            }
        }
        if self.retention.ms().is_some() {
            let due = self.writer.lock().last_retention.elapsed() >= Duration::from_secs(1);
            if due {
                self.enforce_retention_now()?;
            }
        }
        Ok(())
    }
}
