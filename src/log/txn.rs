//! Transactions as one partition sees them: the open transactions that hold
//! back read-committed readers (the last stable offset), transactional and
//! control appends, and which batches each isolation level hides.
//!
//! Which transactions committed is not known here: the layer above passes a
//! [`Committed`] to reads. See ARCHITECTURE.md, "Transactions".

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{Appended, LogInner};
use crate::error::Result;
use crate::format::batch::{self, BatchHeader, Encode};
use crate::format::txn::{control_key, ControlKind};
use crate::record::Record;

/// Which transactions committed (the broker's transaction coordinator).
pub(crate) trait Committed {
    /// Whether transaction `id` committed. Final for every transaction with
    /// a batch below a partition's last stable offset.
    fn is_committed(&self, id: u64) -> bool;

    /// Runs `hold` (which loads a partition's hold) where no commit is
    /// half-applied, so a commit's partitions change for readers together.
    fn stable(&self, hold: &dyn Fn() -> u64) -> u64;
}

/// What a read returns of transactional data. Control records (markers) are
/// skipped at both levels; they occupy offsets.
#[derive(Clone, Copy)]
pub(crate) enum Isolation<'a> {
    /// Every data record, transactional ones as they are written.
    Uncommitted,
    /// Only records of committed transactions (and non-transactional ones),
    /// never at or past the last stable offset.
    Committed(&'a dyn Committed),
}

impl Isolation<'_> {
    /// Whether a read at this level skips the batch `h` (only called for
    /// transactional batches: the plain read path tests one attribute mask).
    #[inline]
    pub(crate) fn hides(&self, h: &BatchHeader) -> bool {
        h.is_control()
            || match self {
                Isolation::Uncommitted => false,
                Isolation::Committed(c) => !c.is_committed(h.producer_id),
            }
    }
}

/// Attribute bits that send a batch through [`Isolation::hides`].
pub(crate) const TXN_BITS: u8 = batch::ATTR_TRANSACTIONAL | batch::ATTR_CONTROL;

/// The open transactions of one partition.
pub(crate) struct OpenTxns {
    /// (first offset here, id) of each open transaction.
    open: Mutex<BTreeSet<(u64, u64)>>,
    /// The first offset of the oldest open transaction; `u64::MAX` when none.
    hold: AtomicU64,
}

impl Default for OpenTxns {
    fn default() -> OpenTxns {
        OpenTxns {
            open: Mutex::new(BTreeSet::new()),
            hold: AtomicU64::new(u64::MAX),
        }
    }
}

impl OpenTxns {
    /// Registers transaction `id` as open from `first` (under the writer
    /// lock, before the end offset moves past its first batch).
    pub(super) fn open(&self, first: u64, id: u64) {
        let mut open = self.open.lock();
        open.insert((first, id));
        self.publish(&open);
    }

    /// The log was truncated to end at `end` (under the writer lock): an open
    /// transaction whose first offset was cut off holds from `end` instead,
    /// where its next records will go.
    pub(super) fn truncated(&self, end: u64) {
        let mut open = self.open.lock();
        let cut: Vec<(u64, u64)> = open.range((end, 0)..).copied().collect();
        for (first, id) in cut {
            open.remove(&(first, id));
            open.insert((end, id));
        }
        self.publish(&open);
    }

    /// Forgets transaction `id` (committed or aborted).
    fn close(&self, id: u64) {
        let mut open = self.open.lock();
        open.retain(|&(_, v)| v != id);
        self.publish(&open);
    }

    fn publish(&self, open: &BTreeSet<(u64, u64)>) {
        let hold = open.first().map_or(u64::MAX, |&(first, _)| first);
        self.hold.store(hold, Ordering::Release);
    }

    /// The first offset of the oldest open transaction, `u64::MAX` if none.
    #[inline]
    pub(super) fn hold(&self) -> u64 {
        self.hold.load(Ordering::Acquire)
    }
}

/// How an append belongs to a transaction.
#[derive(Clone, Copy)]
pub(super) struct TxnAppend {
    /// The transaction id (the batches' `producer_id`).
    pub(super) id: u64,
    /// Register the transaction as open here, from this append's first offset.
    pub(super) register: bool,
    /// A control batch (a marker).
    pub(super) control: bool,
}

impl TxnAppend {
    /// The batch shape for this append.
    pub(super) fn shape(&self, attrs: u8) -> batch::Shape<'static> {
        let control = if self.control { batch::ATTR_CONTROL } else { 0 };
        batch::Shape::v2(attrs | batch::ATTR_TRANSACTIONAL | control, self.id)
    }
}

impl super::Log {
    /// Appends `records` as transactional batches of transaction `id`
    /// (`first`: its first append to this partition, which registers it as
    /// open here). Not fsynced: the commit makes them durable first.
    pub(crate) fn append_txn<R: Encode>(&self, records: &[R], id: u64, first: bool) -> Result<Appended> {
        let txn = TxnAppend {
            id,
            register: first,
            control: false,
        };
        self.inner.append_as(records, Some(txn))
    }

    /// Appends the control batch (a marker) that ends transaction `id` here.
    /// Not fsynced (visibility never depends on it).
    pub(crate) fn append_marker(&self, id: u64, kind: ControlKind) -> Result<Appended> {
        let txn = TxnAppend {
            id,
            register: false,
            control: true,
        };
        let marker = Record::new(Vec::new()).with_key(control_key(kind).to_vec());
        self.inner.append_as(std::slice::from_ref(&marker), Some(txn))
    }

    /// Whether `other` is a handle to this same log (not one reopened or
    /// recreated at the same place).
    pub(crate) fn is_same(&self, other: &super::Log) -> bool {
        std::sync::Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Forgets the open transaction `id` here: the last stable offset moves on.
    pub(crate) fn end_txn(&self, id: u64) {
        self.inner.txns.close(id);
        // Read-committed consumers parked at the old bound can move on.
        self.inner.waiters.notify();
    }

    /// The last stable offset: the first offset of the oldest open
    /// transaction here, else the end offset. Read-committed readers never
    /// get a record at or past it.
    pub fn last_stable_offset(&self) -> u64 {
        let end = self.end_offset();
        end.min(self.inner.txns.hold())
    }
}

impl LogInner {
    /// The end a read at `iso` stops at, given the end offset `end` loaded
    /// first (a registration stores the hold before it moves the end).
    #[inline]
    pub(super) fn read_bound(&self, end: u64, iso: Isolation<'_>) -> u64 {
        match iso {
            Isolation::Uncommitted => end,
            Isolation::Committed(c) => end.min(c.stable(&|| self.txns.hold())),
        }
    }
}
