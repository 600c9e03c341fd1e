//! Rebalance callbacks.

use crate::consumer::ConsumerCore;
use crate::error::Result;
use crate::names::TopicPartition;

/// Callbacks around a group rebalance, called from inside `poll` on the
/// polling thread, in Kafka's order: revoked partitions are reported to their
/// old owner (which may still commit them) before anyone else is assigned them.
/// Leaving the group (`close`, drop, `unsubscribe`) reports the owned
/// partitions as revoked too; an evicted member's are reported as lost.
pub trait RebalanceListener: Send {
    /// These partitions are being taken away. Commit what was processed now.
    fn on_partitions_revoked(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let _ = (ctx, partitions);
    }

    /// The member was removed from the group (it did not poll within
    /// `max_poll_interval`) and these partitions may already belong to
    /// others: commits for them are fenced. Reported at the member's next
    /// poll, which rejoins the group. Default = `on_partitions_revoked`
    /// (Kafka's default too).
    fn on_partitions_lost(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(ctx, partitions);
    }

    /// These partitions were just assigned to this member.
    fn on_partitions_assigned(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let _ = (ctx, partitions);
    }
}

/// What a rebalance callback may do with its consumer.
pub struct RebalanceContext<'a> {
    pub(crate) core: &'a mut ConsumerCore,
}

impl std::fmt::Debug for RebalanceContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RebalanceContext").finish_non_exhaustive()
    }
}

impl RebalanceContext<'_> {
    /// Commits the current positions of all owned partitions.
    pub fn commit(&mut self) -> Result<()> {
        self.core.commit_all()
    }

    /// Commits explicit offsets (the next offset to read).
    pub fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        self.core.commit_offsets(offsets)
    }

    /// The position (next offset to read) of an owned partition.
    pub fn position(&self, tp: &TopicPartition) -> Result<u64> {
        self.core.position(tp)
    }

    /// Moves the position of an owned partition.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.core.seek(tp, offset)
    }
}
