//! What [`Mirror::status`](super::Mirror::status) reports.

use std::fmt;

/// One partition's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionStatus {
    /// The topic (local and at Kafka).
    pub topic: String,
    /// The partition (local and at Kafka).
    pub partition: u32,
    /// The mirrored position: every local offset below it is acknowledged
    /// by Kafka and committed (the next offset a restart ships).
    pub mirrored: u64,
    /// The local end offset when last looked at (refreshed about once a second).
    pub end_offset: u64,
    /// Records sent and not yet acknowledged.
    pub in_flight: usize,
}

impl PartitionStatus {
    /// Records stored locally and not yet mirrored: `end_offset - mirrored`.
    pub fn behind(&self) -> u64 {
        self.end_offset.saturating_sub(self.mirrored)
    }
}

/// Progress and counters of a mirror since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorStatus {
    /// Every mirrored partition, sorted by topic and partition.
    pub partitions: Vec<PartitionStatus>,
    /// Records handed to the Kafka producer (re-sends included).
    pub sent: u64,
    /// Records Kafka acknowledged.
    pub acknowledged: u64,
    /// Records sent again: after a failed delivery, or after a restart below
    /// the highest offset the previous run's last commit recorded as sent (in
    /// the progress file, in both modes). Each may be a duplicate at Kafka.
    /// After a crash the records sent since that commit are sent again
    /// uncounted too: the duplicates of one crash are at most
    /// [`MirrorBuilder::max_in_flight`](super::MirrorBuilder::max_in_flight).
    pub resent: u64,
    /// Offsets skipped because retention deleted them first (`OnGap::Skip`).
    pub skipped_gap: u64,
    /// Records skipped because Kafka refused their size (`skip_oversized`).
    pub skipped_oversized: u64,
    /// The most recent error (cleared when the cluster answers again).
    pub last_error: Option<String>,
    /// True once the cluster answered and the Kafka topics were checked.
    pub connected: bool,
    /// False once the mirror stopped.
    pub running: bool,
}

impl MirrorStatus {
    /// Records stored locally and not yet mirrored, over all partitions.
    pub fn behind(&self) -> u64 {
        self.partitions.iter().map(PartitionStatus::behind).sum()
    }
}

impl fmt::Display for MirrorStatus {
    /// One progress line: `sent N acked N behind N resent N skipped-gap N
    /// skipped-oversized N`, then ` (not connected)` while the cluster has
    /// not answered (the error itself is in `last_error`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} acked {} behind {} resent {} skipped-gap {} skipped-oversized {}",
            self.sent,
            self.acknowledged,
            self.behind(),
            self.resent,
            self.skipped_gap,
            self.skipped_oversized
        )?;
        if !self.connected {
            write!(f, " (not connected)")?;
        }
        Ok(())
    }
}
