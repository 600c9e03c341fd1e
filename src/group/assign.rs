//! Partition assignment strategies. Pure functions of the members'
//! subscriptions, the partition counts and (for sticky) the previous assignment.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::AssignmentStrategy;
use crate::names::TopicPartition;

/// Member id -> subscribed topics.
pub type Subscriptions = BTreeMap<u64, Vec<String>>;
/// Member id -> assigned partitions.
pub type Assignment = BTreeMap<u64, BTreeSet<TopicPartition>>;

/// Computes an assignment. `counts` gives a topic's partition count (None:
/// the topic does not exist, so it gets nothing).
pub fn assign(
    strategy: AssignmentStrategy,
    subs: &Subscriptions,
    counts: &dyn Fn(&str) -> Option<u32>,
    previous: &Assignment,
) -> Assignment {
    let mut out: Assignment = subs.keys().map(|&m| (m, BTreeSet::new())).collect();
    let topics: BTreeSet<&str> = subs.values().flatten().map(String::as_str).collect();
    match strategy {
        AssignmentStrategy::Range => {
            for topic in topics {
                let Some(n) = counts(topic) else { continue };
                let members: Vec<u64> = subs
                    .iter()
                    .filter(|(_, t)| t.iter().any(|x| x == topic))
                    .map(|(&m, _)| m)
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let per = n as usize / members.len();
                let extra = n as usize % members.len();
                let mut next = 0u32;
                for (i, m) in members.iter().enumerate() {
                    let take = per + usize::from(i < extra);
                    let set = out.entry(*m).or_default();
                    for _ in 0..take {
                        set.insert(TopicPartition::new(topic, next));
                        next += 1;
                    }
                }
            }
        }
        AssignmentStrategy::RoundRobin => {
            let members: Vec<u64> = subs.keys().copied().collect();
            let mut turn = 0usize;
            for tp in all_partitions(&topics, counts) {
                for _ in 0..members.len() {
                    let m = members.get(turn % members.len()).copied().unwrap_or(0);
                    turn += 1;
                    if subs.get(&m).is_some_and(|t| t.contains(&tp.topic)) {
                        out.entry(m).or_default().insert(tp);
                        break;
                    }
                }
            }
        }
        AssignmentStrategy::Sticky => sticky(subs, &topics, counts, previous, &mut out),
    }
    out
}

fn all_partitions(topics: &BTreeSet<&str>, counts: &dyn Fn(&str) -> Option<u32>) -> Vec<TopicPartition> {
    let mut v = Vec::new();
    for t in topics {
        for p in 0..counts(t).unwrap_or(0) {
            v.push(TopicPartition::new(*t, p));
        }
    }
    v
}

/// Keeps every partition that may stay where it is, then moves only what a
/// balanced result (counts differ by at most one among eligible members) needs.
fn sticky(
    subs: &Subscriptions,
    topics: &BTreeSet<&str>,
    counts: &dyn Fn(&str) -> Option<u32>,
    previous: &Assignment,
    out: &mut Assignment,
) {
    let all = all_partitions(topics, counts);
    let valid: BTreeSet<&TopicPartition> = all.iter().collect();
    let eligible = |m: u64, tp: &TopicPartition| subs.get(&m).is_some_and(|t| t.contains(&tp.topic));
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();
    for (m, set) in previous {
        if !subs.contains_key(m) {
            continue;
        }
        for tp in set {
            if valid.contains(tp) && eligible(*m, tp) && taken.insert(tp.clone()) {
                out.entry(*m).or_default().insert(tp.clone());
            }
        }
    }
    let members = subs.len().max(1);
    let quota_hi = all.len().div_ceil(members);
    let quota_lo = all.len() / members;
    // Members above the high quota give back their newest partitions.
    let mut free: Vec<TopicPartition> = all.iter().filter(|tp| !taken.contains(*tp)).cloned().collect();
    let mut at_hi = out.values().filter(|s| s.len() >= quota_hi).count();
    let allowed_hi = all.len() - quota_lo * members;
    for set in out.values_mut() {
        while set.len() > quota_hi || (set.len() == quota_hi && quota_hi > quota_lo && at_hi > allowed_hi) {
            if set.len() == quota_hi {
                at_hi -= 1;
            }
            if let Some(tp) = set.pop_last() {
                free.push(tp);
            }
        }
    }
    free.sort();
    for tp in free {
        let target = out
            .iter()
            .filter(|(m, _)| eligible(**m, &tp))
            .min_by_key(|(m, s)| (s.len(), **m))
            .map(|(m, _)| *m);
        if let Some(m) = target {
            out.entry(m).or_default().insert(tp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(n: u64, topic: &str) -> Subscriptions {
        (1..=n).map(|m| (m, vec![topic.to_string()])).collect()
    }

    fn sizes(a: &Assignment) -> Vec<usize> {
        a.values().map(BTreeSet::len).collect()
    }

    fn counts(t: &str) -> Option<u32> {
        (t == "t").then_some(6)
    }

    #[test]
    fn range_and_round_robin_balance() {
        for s in [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::Sticky,
        ] {
            let a = assign(s, &subs(3, "t"), &counts, &Assignment::new());
            assert_eq!(sizes(&a), vec![2, 2, 2], "{s:?}");
            let a = assign(s, &subs(4, "t"), &counts, &Assignment::new());
            let mut sz = sizes(&a);
            sz.sort();
            assert_eq!(sz, vec![1, 1, 2, 2], "{s:?}");
            let all: BTreeSet<_> = a.values().flatten().collect();
            assert_eq!(all.len(), 6, "every partition assigned once");
        }
    }

    #[test]
    fn sticky_moves_only_what_must_move() {
        let first = assign(AssignmentStrategy::Sticky, &subs(2, "t"), &counts, &Assignment::new());
        let second = assign(AssignmentStrategy::Sticky, &subs(3, "t"), &counts, &first);
        assert_eq!(sizes(&second), vec![2, 2, 2]);
        let moved: usize = [1u64, 2].iter().map(|m| first[m].difference(&second[m]).count()).sum();
        assert_eq!(moved, 2, "only the new member's share moves");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Join,
        Leave(usize),
        Grow(u32),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => Just(Op::Join),
            2 => (0usize..8).prop_map(Op::Leave),
            1 => (1u32..4).prop_map(Op::Grow),
        ]
    }

    proptest::proptest! {
        /// Members subscribed to the same two topics: every partition is
        /// assigned exactly once, counts differ by at most one, and sticky
        /// never both takes from and gives to a surviving member.
        #[test]
        fn balanced_complete_and_sticky(ops in proptest::collection::vec(op(), 1..40), parts in (1u32..9, 1u32..9)) {
            for strategy in [AssignmentStrategy::Range, AssignmentStrategy::RoundRobin, AssignmentStrategy::Sticky] {
                let (mut a_count, b_count) = parts;
                let topics = vec!["a".to_string(), "b".to_string()];
                let mut subs = Subscriptions::new();
                let mut next = 1u64;
                let mut prev = Assignment::new();
                for op in &ops {
                    match op {
                        Op::Join => {
                            subs.insert(next, topics.clone());
                            next += 1;
                        }
                        Op::Leave(i) => {
                            if let Some(&m) = subs.keys().nth(*i) {
                                subs.remove(&m);
                            }
                        }
                        Op::Grow(n) => a_count += n,
                    }
                    let counts = |t: &str| match t {
                        "a" => Some(a_count),
                        "b" => Some(b_count),
                        _ => None,
                    };
                    let next_a = assign(strategy, &subs, &counts, &prev);
                    let all: Vec<&TopicPartition> = next_a.values().flatten().collect();
                    let unique: BTreeSet<&TopicPartition> = all.iter().copied().collect();
                    proptest::prop_assert_eq!(all.len(), unique.len(), "{:?}: assigned twice", strategy);
                    let expected = if subs.is_empty() { 0 } else { (a_count + b_count) as usize };
                    proptest::prop_assert_eq!(unique.len(), expected, "{:?}: not all assigned", strategy);
                    if strategy != AssignmentStrategy::Range {
                        let sz = sizes(&next_a);
                        let (lo, hi) = (sz.iter().min().copied().unwrap_or(0), sz.iter().max().copied().unwrap_or(0));
                        proptest::prop_assert!(hi - lo <= 1, "{:?}: unbalanced {:?}", strategy, sz);
                    }
                    if strategy == AssignmentStrategy::Sticky {
                        for (m, now) in &next_a {
                            let Some(before) = prev.get(m) else { continue };
                            let gained = now.difference(before).count();
                            let lost = before.difference(now).count();
                            proptest::prop_assert!(gained == 0 || lost == 0, "member {} gained {} and lost {}", m, gained, lost);
                        }
                    }
                    prev = next_a;
                }
            }
        }
    }
}
