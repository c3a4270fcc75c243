//! The applications that want something, per leaf queue, in the order the leaf serves them.
//!
//! The scheduler runs after every event, so it must not look at every application each time:
//! this index holds only applications with demand, ordered by their leaf's ordering policy
//! (see [`OrderKey`]), with the smallest container each one asks for, so a pass can skip a leaf
//! (or an app) when no node has room for even that. The core keeps it in step by calling
//! [`super::Core::sync_pending`] wherever an app's demand, usage, priority or queue changes;
//! the invariant checker compares it with a rebuild from scratch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use weft_common::{ApplicationId, Millis, Resource};

use crate::queues::QueueIndex;

/// Position of an app in its leaf's serving order (smaller is served first). FIFO:
/// higher priority, then earlier submission; fair orderings: smaller share, then earlier
/// submission. The application id breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderKey {
    pub primary: u64,
    pub submit_time: Millis,
}

impl OrderKey {
    /// Higher priority first.
    pub fn fifo(priority: i32, submit_time: Millis) -> Self {
        Self { primary: (i64::from(i32::MAX) - i64::from(priority)) as u64, submit_time }
    }

    /// Smaller non-negative share first (the bit pattern of a non-negative float orders as the
    /// float does).
    pub fn share(share: f64, submit_time: Millis) -> Self {
        Self { primary: share.max(0.0).to_bits(), submit_time }
    }

    /// Submission order only.
    pub fn submission(submit_time: Millis) -> Self {
        Self { primary: 0, submit_time }
    }
}

/// What the index knows of one app with demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEntry {
    pub leaf: QueueIndex,
    pub key: OrderKey,
    /// Per dimension, the smallest container the app asks for (a lower bound on what any of its
    /// asks needs from one node). Zero for apps with a gang ask: a gang that cannot be placed
    /// still reserves capacity, so it must always be tried.
    pub smallest: Resource,
}

pub type Position = (OrderKey, ApplicationId);

#[derive(Debug, Default, Clone, PartialEq)]
struct Leaf {
    order: BTreeSet<Position>,
    /// Multisets of the entries' smallest asks, for the leaf's lower bound.
    memory: BTreeMap<u64, u32>,
    vcores: BTreeMap<u32, u32>,
}

#[derive(Debug, Default)]
pub struct PendingIndex {
    leaves: BTreeMap<QueueIndex, Leaf>,
    entries: HashMap<ApplicationId, PendingEntry>,
    /// Keys may be out of date (the cluster size or the queue tree changed): rebuild before use.
    stale: bool,
}

pub(super) fn add_one<K: Ord>(set: &mut BTreeMap<K, u32>, k: K) {
    *set.entry(k).or_default() += 1;
}

pub(super) fn remove_one<K: Ord>(set: &mut BTreeMap<K, u32>, k: &K) {
    if let Some(n) = set.get_mut(k) {
        *n -= 1;
        if *n == 0 {
            set.remove(k);
        }
    }
}

impl PendingIndex {
    /// Records `app`'s entry (None: it wants nothing).
    pub fn set(&mut self, app: ApplicationId, entry: Option<PendingEntry>) {
        let old = self.entries.get(&app).copied();
        if old == entry {
            return;
        }
        if let Some(old) = old {
            self.entries.remove(&app);
            if let Some(leaf) = self.leaves.get_mut(&old.leaf) {
                leaf.order.remove(&(old.key, app));
                remove_one(&mut leaf.memory, &old.smallest.memory_mb);
                remove_one(&mut leaf.vcores, &old.smallest.vcores);
                if leaf.order.is_empty() {
                    self.leaves.remove(&old.leaf);
                }
            }
        }
        if let Some(new) = entry {
            self.entries.insert(app, new);
            let leaf = self.leaves.entry(new.leaf).or_default();
            leaf.order.insert((new.key, app));
            add_one(&mut leaf.memory, new.smallest.memory_mb);
            add_one(&mut leaf.vcores, new.smallest.vcores);
        }
    }

    /// The cluster size or the queue tree changed: orderings and leaves may be out of date
    /// until [`PendingIndex::rebuild`].
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Replaces every entry with `entries`; the index is up to date again.
    pub fn rebuild(&mut self, entries: impl IntoIterator<Item = (ApplicationId, PendingEntry)>) {
        self.leaves.clear();
        self.entries.clear();
        for (app, entry) in entries {
            self.set(app, Some(entry));
        }
        self.stale = false;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, app: ApplicationId) -> Option<&PendingEntry> {
        self.entries.get(&app)
    }

    /// Whether `leaf` has an app whose smallest ask might fit into `room` (the most free memory
    /// and the most free vcores any node has; not necessarily the same node).
    pub fn leaf_may_fit(&self, leaf: QueueIndex, room: Resource) -> bool {
        self.leaves.get(&leaf).is_some_and(|l| {
            l.memory.keys().next().is_some_and(|m| *m <= room.memory_mb)
                && l.vcores.keys().next().is_some_and(|v| *v <= room.vcores)
        })
    }

    /// The smallest ask of any app of `leaf`, per dimension.
    pub fn leaf_smallest(&self, leaf: QueueIndex) -> Resource {
        self.leaves.get(&leaf).map_or(Resource::ZERO, |l| {
            Resource::new(l.memory.keys().next().copied().unwrap_or(0), l.vcores.keys().next().copied().unwrap_or(0))
        })
    }

    /// The first app of `leaf` at or after `from`, in serving order.
    pub fn next_in_leaf(&self, leaf: QueueIndex, from: Bound<Position>) -> Option<Position> {
        self.leaves.get(&leaf)?.order.range((from, Bound::Unbounded)).next().copied()
    }

    /// Every entry, for the invariant checker.
    pub fn entries(&self) -> &HashMap<ApplicationId, PendingEntry> {
        &self.entries
    }
}
