//! The in-process group coordinator: membership, generations, assignment,
//! hand-over of partitions, committed offsets.
//!
//! Hand-over is cooperative: a rebalance computes a *target* assignment, but
//! a partition only changes owner after its current owner has released it
//! (at its next poll, after its revoke callback). So no partition ever has
//! two owners, and revocation is always reported before the new assignment.

pub(crate) mod assign;
pub(crate) mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::{AssignmentStrategy, Durability};
use crate::error::{Error, Result};
use crate::log::Waiter;
use crate::names::TopicPartition;
use assign::{Assignment, Subscriptions};
use store::OffsetStore;

/// Whether a group has members, only committed offsets, or nothing (Kafka's
/// group states, as `kafka-consumer-groups --describe --state` shows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupState {
    /// At least one live member.
    Stable,
    /// No members, but committed offsets: a new member resumes from them.
    Empty,
    /// No members and no committed offsets: the group was never used, its
    /// last member left without committing, or its offsets were deleted.
    Dead,
}

/// A group's state as `Broker::describe_group` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group: String,
    /// `Stable`, `Empty` or `Dead` (then `members` and `partitions` are empty).
    pub state: GroupState,
    /// Current generation (incremented by every rebalance).
    pub generation: u64,
    /// Live members.
    pub members: Vec<MemberDescription>,
    /// Every partition of the subscribed topics and every partition with a commit.
    pub partitions: Vec<PartitionLag>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions it owns now, sorted.
    pub assignment: Vec<TopicPartition>,
}

/// Position and lag of a group on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// The owning member, if any.
    pub owner: Option<String>,
    /// The committed offset (next offset to read), if any.
    pub committed: Option<u64>,
    /// The partition's end offset.
    pub end_offset: u64,
    /// `end_offset - committed`, when there is a commit.
    pub lag: Option<u64>,
}

pub(crate) fn member_name(id: u64) -> String {
    format!("member-{id}")
}

struct Member {
    topics: Vec<String>,
    last_seen: Instant,
    in_poll: bool,
    max_poll_interval: Duration,
    generation: u64,
    owned: BTreeSet<TopicPartition>,
    /// Owned partitions whose topic was deleted (and maybe re-created): the
    /// member must revoke them even if the target still names them, so that
    /// it drops its handles on the deleted log.
    stale: BTreeSet<TopicPartition>,
    /// Who to wake on a change while the member waits in a poll (a parked
    /// thread, or the task of an async `recv`).
    thread: Option<Waiter>,
}

#[derive(Default)]
struct Group {
    /// Bumped by every change a member must observe (rebalance, release,
    /// eviction): a member whose last sync saw the current value can skip
    /// the coordinator's lock on a poll that finds records.
    changes: Arc<AtomicU64>,
    generation: u64,
    strategy: AssignmentStrategy,
    members: BTreeMap<u64, Member>,
    owners: HashMap<TopicPartition, u64>,
    target: Assignment,
}

impl Group {
    /// Starts a new generation of the group called `name`.
    fn rebalance(&mut self, name: &str, counts: &dyn Fn(&str) -> Option<u32>) {
        self.generation += 1;
        let subs: Subscriptions = self.members.iter().map(|(&id, m)| (id, m.topics.clone())).collect();
        self.target = assign::assign(self.strategy, &subs, counts, &self.target);
        self.wake_all();
        crate::obs::rebalanced(name, self.generation, self.members.len());
    }

    fn wake_all(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        for m in self.members.values() {
            if let Some(t) = &m.thread {
                t.wake();
            }
        }
    }

    fn remove_member(&mut self, id: u64) {
        if let Some(m) = self.members.remove(&id) {
            for tp in m.owned {
                self.owners.remove(&tp);
            }
        }
    }
}

/// What a member must do at the start of a poll.
#[derive(Debug, Default)]
pub(crate) struct SyncPlan {
    /// The member was removed (left, evicted): it owns nothing and must rejoin.
    pub(crate) evicted: bool,
    /// Partitions to revoke (report, then release with `finish_sync`).
    pub(crate) revoke: Vec<TopicPartition>,
}

pub(crate) struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    store: Mutex<OffsetStore>,
    next_member: Mutex<u64>,
}

type Counts<'a> = &'a dyn Fn(&str) -> Option<u32>;
/// (topic, partition) -> (start offset, end offset), for partitions that exist.
type Ends<'a> = &'a dyn Fn(&str, u32) -> Option<(u64, u64)>;

impl Coordinator {
    /// Opens the offsets store; clamps commits that are ahead of their
    /// partition's end (data lost in a crash) and reports them in the notes.
    pub(crate) fn open(dir: &Path, durability: Durability, ends: Ends) -> Result<(Coordinator, Vec<String>)> {
        let mut notes = Vec::new();
        let mut store = OffsetStore::open(dir, durability, &mut notes)?;
        let names: Vec<String> = store.group_names().cloned().collect();
        for g in names {
            let mut fixes = Vec::new();
            for (tp, &off) in store.group(&g).into_iter().flatten() {
                if let Some((_, end)) = ends(&tp.topic, tp.partition) {
                    if off > end {
                        notes.push(format!(
                            "group '{g}': committed offset {off} for {tp} is past the partition's end {end} (records lost in a crash); clamped to {end}"
                        ));
                        fixes.push((tp.clone(), end));
                    }
                }
            }
            if !fixes.is_empty() {
                store.commit(&g, &fixes)?;
            }
        }
        Ok((
            Coordinator {
                groups: Mutex::new(HashMap::new()),
                store: Mutex::new(store),
                next_member: Mutex::new(1),
            },
            notes,
        ))
    }

    /// Adds a member subscribed to `topics`; the group rebalances.
    pub(crate) fn join(
        &self,
        group: &str,
        topics: Vec<String>,
        strategy: AssignmentStrategy,
        max_poll_interval: Duration,
        counts: Counts,
    ) -> u64 {
        let id = {
            let mut n = self.next_member.lock();
            *n += 1;
            *n
        };
        let mut groups = self.groups.lock();
        let g = groups.entry(group.to_string()).or_default();
        if g.members.is_empty() {
            g.strategy = strategy;
        }
        g.members.insert(
            id,
            Member {
                topics,
                last_seen: Instant::now(),
                in_poll: false,
                max_poll_interval,
                generation: 0,
                owned: BTreeSet::new(),
                stale: BTreeSet::new(),
                thread: None,
            },
        );
        g.rebalance(group, counts);
        id
    }

    /// The group's change counter (see `Group::changes`), once it exists.
    pub(crate) fn change_counter(&self, group: &str) -> Option<Arc<AtomicU64>> {
        self.groups.lock().get(group).map(|g| Arc::clone(&g.changes))
    }

    /// Changes a member's subscription; the group rebalances.
    pub(crate) fn resubscribe(&self, group: &str, member: u64, topics: Vec<String>, counts: Counts) {
        let mut groups = self.groups.lock();
        if let Some(g) = groups.get_mut(group) {
            if let Some(m) = g.members.get_mut(&member) {
                m.topics = topics;
                g.rebalance(group, counts);
            }
        }
    }

    /// Removes a member (close, drop, unsubscribe); the group rebalances.
    pub(crate) fn leave(&self, group: &str, member: u64, counts: Counts) {
        let mut groups = self.groups.lock();
        if let Some(g) = groups.get_mut(group) {
            if g.members.contains_key(&member) {
                g.remove_member(member);
                g.rebalance(group, counts);
            }
            if g.members.is_empty() {
                groups.remove(group);
            }
        }
    }

    /// Step 1 of a poll: which owned partitions the member must give up.
    pub(crate) fn begin_sync(&self, group: &str, member: u64, thread: Option<Waiter>) -> SyncPlan {
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return SyncPlan {
                evicted: true,
                ..SyncPlan::default()
            };
        };
        let generation = g.generation;
        let target = g.target.get(&member).cloned().unwrap_or_default();
        let Some(m) = g.members.get_mut(&member) else {
            return SyncPlan {
                evicted: true,
                ..SyncPlan::default()
            };
        };
        m.last_seen = Instant::now();
        m.in_poll = thread.is_some();
        m.thread = thread;
        // The member's view is current from here on: commits in its revoke
        // callback (for partitions it still owns) are accepted.
        m.generation = generation;
        SyncPlan {
            evicted: false,
            revoke: m
                .owned
                .iter()
                .filter(|tp| !target.contains(*tp) || m.stale.contains(*tp))
                .cloned()
                .collect(),
        }
    }

    /// Step 2: release the revoked partitions, take the target partitions
    /// that are free. Returns the newly acquired ones.
    pub(crate) fn finish_sync(&self, group: &str, member: u64, revoked: &[TopicPartition]) -> Vec<TopicPartition> {
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return Vec::new();
        };
        if !g.members.contains_key(&member) {
            // Removed since begin_sync: it must not become an owner (a ghost
            // owner would block its partitions forever).
            return Vec::new();
        }
        let target = g.target.get(&member).cloned().unwrap_or_default();
        let mut released = false;
        let mut acquired = Vec::new();
        if let Some(m) = g.members.get_mut(&member) {
            for tp in revoked {
                m.stale.remove(tp);
                if m.owned.remove(tp) {
                    released = true;
                }
            }
        }
        for tp in revoked {
            if g.owners.get(tp) == Some(&member) {
                g.owners.remove(tp);
            }
        }
        for tp in target {
            if !g.owners.contains_key(&tp) {
                g.owners.insert(tp.clone(), member);
                if let Some(m) = g.members.get_mut(&member) {
                    m.owned.insert(tp.clone());
                }
                acquired.push(tp);
            }
        }
        if released {
            g.wake_all();
        }
        acquired
    }

    /// Whether the member is still in the group (not evicted).
    pub(crate) fn is_member(&self, group: &str, member: u64) -> bool {
        self.groups
            .lock()
            .get(group)
            .is_some_and(|g| g.members.contains_key(&member))
    }

    /// Marks the end of a poll (the member is no longer blocked in it).
    pub(crate) fn end_poll(&self, group: &str, member: u64) {
        let mut groups = self.groups.lock();
        if let Some(m) = groups.get_mut(group).and_then(|g| g.members.get_mut(&member)) {
            m.in_poll = false;
            m.thread = None;
            m.last_seen = Instant::now();
        }
    }

    /// Whether the member has seen the current generation and owns exactly
    /// its target partitions: the rebalance is over as far as it is concerned.
    pub(crate) fn holds_target(&self, group: &str, member: u64) -> bool {
        let groups = self.groups.lock();
        let Some(g) = groups.get(group) else { return false };
        let Some(m) = g.members.get(&member) else { return false };
        m.generation == g.generation
            && m.stale.is_empty()
            && g.target.get(&member).map_or(m.owned.is_empty(), |t| *t == m.owned)
    }

    /// Whether the member has something to do (a rebalance or a partition to take).
    pub(crate) fn needs_sync(&self, group: &str, member: u64) -> bool {
        let groups = self.groups.lock();
        let Some(g) = groups.get(group) else { return true };
        let Some(m) = g.members.get(&member) else { return true };
        if m.generation != g.generation || !m.stale.is_empty() {
            return true;
        }
        g.target
            .get(&member)
            .is_some_and(|t| t.iter().any(|tp| !m.owned.contains(tp) && !g.owners.contains_key(tp)))
    }

    /// Commits offsets. With a member id, the member must be in the group
    /// and have seen the current generation (else `Error::Fenced`), except
    /// that while `revoking` (inside its revoke callback or leaving the group)
    /// it may commit partitions it still owns: nobody else can own them yet.
    pub(crate) fn commit(
        &self,
        group: &str,
        member: Option<u64>,
        offsets: &[(TopicPartition, u64)],
        revoking: bool,
    ) -> Result<()> {
        if let Some(id) = member {
            let groups = self.groups.lock();
            let current = groups.get(group).map_or(0, |g| g.generation);
            let m = groups.get(group).and_then(|g| g.members.get(&id));
            let seen = m.map(|m| m.generation);
            let owner = revoking && m.is_some_and(|m| offsets.iter().all(|(tp, _)| m.owned.contains(tp)));
            if seen != Some(current) && !owner {
                return Err(Error::Fenced {
                    group: group.to_string(),
                    member: member_name(id),
                    member_generation: seen.unwrap_or(0),
                    current,
                });
            }
            // Holding the group lock while writing keeps a rebalance from
            // slipping between the check and the write.
            return self.store.lock().commit(group, offsets);
        }
        // A consumer that assigns its own partitions commits as no member. As
        // in Kafka, that is refused while members manage the group: it could
        // overwrite a newer commit of the partition's owner.
        let groups = self.groups.lock();
        if groups.get(group).is_some_and(|g| !g.members.is_empty()) {
            return Err(Error::config(
                "group",
                group,
                "the group has subscribed members; a consumer using assign() cannot commit into it (use another group id)",
            ));
        }
        self.store.lock().commit(group, offsets)
    }

    /// Commits offsets whatever the group's members and generation: a
    /// transaction's offsets, which become committed with the transaction
    /// (as Kafka's `sendOffsetsToTransaction`, without its member fencing).
    pub(crate) fn commit_unfenced(&self, group: &str, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        let _groups = self.groups.lock();
        self.store.lock().commit(group, offsets)
    }

    pub(crate) fn committed(&self, group: &str, tp: &TopicPartition) -> Option<u64> {
        self.store.lock().get(group, tp)
    }

    /// Evicts members that have not polled within their `max_poll_interval`.
    pub(crate) fn tick(&self, counts: Counts) {
        let mut groups = self.groups.lock();
        for (name, g) in groups.iter_mut() {
            let stale: Vec<u64> = g
                .members
                .iter()
                .filter(|(_, m)| !m.in_poll && m.last_seen.elapsed() > m.max_poll_interval)
                .map(|(&id, _)| id)
                .collect();
            if stale.is_empty() {
                continue;
            }
            for id in stale {
                g.remove_member(id);
            }
            g.rebalance(name, counts);
        }
        groups.retain(|_, g| !g.members.is_empty());
    }

    /// Topics were created, deleted or grew: groups whose assignment this
    /// changes rebalance; the others are left alone (their commits stay valid).
    pub(crate) fn topics_changed(&self, counts: Counts) {
        let mut groups = self.groups.lock();
        for (name, g) in groups.iter_mut() {
            // Partitions that no longer exist stay owned until their owner's
            // next poll revokes them (so a re-created topic's partition never
            // has two owners, and the owner drops its handle on the old log).
            let gone: Vec<(TopicPartition, u64)> = g
                .owners
                .iter()
                .filter(|(tp, _)| counts(&tp.topic).is_none_or(|n| tp.partition >= n))
                .map(|(tp, &id)| (tp.clone(), id))
                .collect();
            let mut changed = false;
            for (tp, id) in gone {
                if let Some(m) = g.members.get_mut(&id) {
                    changed |= m.stale.insert(tp);
                }
            }
            let subs: Subscriptions = g.members.iter().map(|(&id, m)| (id, m.topics.clone())).collect();
            if changed || assign::assign(g.strategy, &subs, counts, &g.target) != g.target {
                g.rebalance(name, counts);
            }
        }
    }

    pub(crate) fn list(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.groups.lock().keys().cloned().collect();
        names.extend(self.store.lock().group_names().cloned());
        names.into_iter().collect()
    }

    /// The group's members and, for every partition of their topics and
    /// every partition with a commit, its owner, commit and lag; `counts`
    /// gives a topic's partition count, `ends` a partition's offsets.
    pub(crate) fn describe(&self, group: &str, counts: Counts, ends: Ends) -> Result<GroupDescription> {
        let groups = self.groups.lock();
        let store = self.store.lock();
        let g = groups.get(group);
        let committed = store.group(group);
        let mut members = Vec::new();
        let mut tps: BTreeSet<TopicPartition> = committed.map(|c| c.keys().cloned().collect()).unwrap_or_default();
        if let Some(g) = g {
            for (&id, m) in &g.members {
                members.push(MemberDescription {
                    member_id: member_name(id),
                    topics: m.topics.clone(),
                    assignment: m.owned.iter().cloned().collect(),
                });
                for t in &m.topics {
                    for p in 0..counts(t).unwrap_or(0) {
                        tps.insert(TopicPartition::new(t.as_str(), p));
                    }
                }
            }
        }
        let partitions = tps
            .into_iter()
            .map(|tp| {
                let end = ends(&tp.topic, tp.partition).map_or(0, |(_, end)| end);
                let committed = store.get(group, &tp);
                PartitionLag {
                    owner: g.and_then(|g| g.owners.get(&tp)).map(|&id| member_name(id)),
                    committed,
                    end_offset: end,
                    lag: committed.map(|c| end.saturating_sub(c)),
                    topic_partition: tp,
                }
            })
            .collect();
        let state = if !members.is_empty() {
            GroupState::Stable
        } else if committed.is_some_and(|c| !c.is_empty()) {
            GroupState::Empty
        } else {
            GroupState::Dead
        };
        Ok(GroupDescription {
            group: group.to_string(),
            state,
            generation: g.map_or(0, |g| g.generation),
            members,
            partitions,
        })
    }

    fn check_no_members(&self, group: &str) -> Result<()> {
        if self.groups.lock().get(group).is_some_and(|g| !g.members.is_empty()) {
            return Err(Error::config(
                "group",
                group,
                "the group has live members; close them first",
            ));
        }
        Ok(())
    }

    pub(crate) fn delete_offsets(&self, group: &str) -> Result<()> {
        self.check_no_members(group)?;
        self.store.lock().delete_group(group)
    }

    pub(crate) fn set_offsets_offline(&self, group: &str, offsets: &[(TopicPartition, u64)]) -> Result<()> {
        self.check_no_members(group)?;
        self.store.lock().commit(group, offsets)
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.store.lock().sync()
    }

    pub(crate) fn close(&self) -> Result<()> {
        let groups = self.groups.lock();
        for g in groups.values() {
            g.wake_all();
        }
        drop(groups);
        self.flush()
    }
}
