//! A set of transaction ids kept as disjoint inclusive ranges: ids are handed
//! out in order and most transactions commit, so the committed ids of a long
//! life stay a handful of ranges (one more per aborted or lost transaction).

use std::collections::BTreeMap;

/// Disjoint, non-adjacent inclusive ranges `first -> last`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct IdSet {
    ranges: BTreeMap<u64, u64>,
}

impl IdSet {
    /// Whether `id` is in the set.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.ranges
            .range(..=id)
            .next_back()
            .is_some_and(|(_, &last)| id <= last)
    }

    /// Adds `id` (merging it with the ranges it touches).
    pub(crate) fn insert(&mut self, id: u64) {
        self.insert_range(id, id);
    }

    /// Adds every id of `first..=last` (nothing if `last < first`).
    pub(crate) fn insert_range(&mut self, first: u64, last: u64) {
        if last < first {
            return;
        }
        let (mut lo, mut hi) = (first, last);
        // A range that starts before `first` and reaches it (or its predecessor).
        if let Some((&s, &e)) = self.ranges.range(..=first).next_back() {
            if e.saturating_add(1) >= first {
                lo = s;
                hi = hi.max(e);
            }
        }
        // Ranges that start inside `lo..=hi + 1` are swallowed.
        let swallowed: Vec<u64> = self.ranges.range(lo..=hi.saturating_add(1)).map(|(&s, _)| s).collect();
        for s in swallowed {
            if let Some(e) = self.ranges.remove(&s) {
                hi = hi.max(e);
            }
        }
        self.ranges.insert(lo, hi);
    }

    /// The ranges, in order.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }

    /// Number of ranges.
    pub(crate) fn range_count(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::IdSet;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        /// The set answers as a `BTreeSet` of the same ids, and its ranges
        /// are disjoint and not adjacent.
        #[test]
        fn behaves_as_a_set_of_ids(ops in proptest::collection::vec((0u64..60, 0u64..4), 0..60)) {
            let mut set = IdSet::default();
            let mut model = BTreeSet::new();
            for (a, len) in ops {
                set.insert_range(a, a + len);
                model.extend(a..=a + len);
            }
            for id in 0..70 {
                prop_assert_eq!(set.contains(id), model.contains(&id), "id {}", id);
            }
            let ranges: Vec<_> = set.ranges().collect();
            for w in ranges.windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0, "{:?}", ranges);
            }
        }
    }

    #[test]
    fn in_order_commits_stay_one_range() {
        let mut set = IdSet::default();
        for id in 1..=1000 {
            set.insert(id);
        }
        assert_eq!(set.range_count(), 1);
        assert!(set.contains(1000) && !set.contains(0) && !set.contains(1001));
    }
}
