//! The AM's table of outstanding container asks, producing YARN replace-asks.
//!
//! YARN keys asks by (priority, resource name, capability) and a new ask at a key *replaces* the
//! RM's count there. The RM lowers its count by itself as it allocates, so this table mirrors
//! that on every allocation and only sends a key again when the application changes what it
//! wants. Weft places containers anywhere: every ask goes to resource name `*`.

use std::collections::{BTreeMap, BTreeSet};

use weft_common::Resource;
use weft_common::protocol::{ANY, Container, ResourceRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct AskKey {
    priority: i32,
    memory_mb: u64,
    vcores: u32,
}

impl AskKey {
    fn new(priority: i32, capability: Resource) -> Self {
        Self { priority, memory_mb: capability.memory_mb, vcores: capability.vcores }
    }

    fn capability(&self) -> Resource {
        Resource::new(self.memory_mb, self.vcores)
    }
}

#[derive(Debug, Default)]
pub(crate) struct AskTable {
    outstanding: BTreeMap<AskKey, u32>,
    /// Keys whose count the RM has not been told yet (zero counts included: they cancel).
    changed: BTreeSet<AskKey>,
    /// Keys asked for all-or-nothing.
    gangs: BTreeSet<AskKey>,
}

impl AskTable {
    pub(crate) fn outstanding(&self, priority: i32, capability: Resource) -> u32 {
        self.outstanding.get(&AskKey::new(priority, capability)).copied().unwrap_or(0)
    }

    pub(crate) fn set(&mut self, priority: i32, capability: Resource, total: u32) {
        let key = AskKey::new(priority, capability);
        let current = self.outstanding.get(&key).copied().unwrap_or(0);
        if current != total {
            self.outstanding.insert(key, total);
            self.changed.insert(key);
        }
    }

    /// Asks for `total` containers at this key, allocated all together or not at all.
    pub(crate) fn set_gang(&mut self, priority: i32, capability: Resource, total: u32) {
        self.gangs.insert(AskKey::new(priority, capability));
        self.set(priority, capability, total);
    }

    /// Queues these asks' keys to be sent again (with their current counts).
    pub(crate) fn mark_changed(&mut self, asks: &[ResourceRequest]) {
        for ask in asks {
            let key = AskKey::new(ask.priority, ask.capability);
            self.outstanding.entry(key).or_insert(0);
            self.changed.insert(key);
        }
    }

    /// Asks whose count changed since the last call, as replace-asks.
    pub(crate) fn take_changed(&mut self) -> Vec<ResourceRequest> {
        let changed = std::mem::take(&mut self.changed);
        let asks = changed.iter().map(|key| self.request(key)).collect();
        self.outstanding.retain(|_, count| *count > 0);
        asks
    }

    /// Every outstanding ask, for an RM that lost them (resync).
    pub(crate) fn take_all(&mut self) -> Vec<ResourceRequest> {
        self.changed.clear();
        self.outstanding.retain(|_, count| *count > 0);
        self.outstanding.keys().map(|key| self.request(key)).collect()
    }

    /// Mirrors the RM's own decrement. The RM rounds capabilities up to its minimum allocation,
    /// so the container may be larger than the ask: prefer an exact match, then the largest ask
    /// at that priority that fits in the container, then any ask at that priority.
    pub(crate) fn on_allocated(&mut self, container: &Container) {
        let candidates: Vec<AskKey> = self
            .outstanding
            .iter()
            .filter(|(key, count)| key.priority == container.priority && **count > 0)
            .map(|(key, _)| *key)
            .collect();
        let exact = candidates.iter().find(|key| key.capability() == container.resource);
        let fitting = || {
            candidates
                .iter()
                .filter(|key| container.resource.fits(&key.capability()))
                .max_by_key(|key| (key.memory_mb, key.vcores))
        };
        let Some(key) = exact.or_else(fitting).or(candidates.first()).copied() else { return };
        if let Some(count) = self.outstanding.get_mut(&key) {
            *count -= 1;
            if *count == 0 && !self.changed.contains(&key) {
                self.outstanding.remove(&key);
            }
        }
    }

    fn request(&self, key: &AskKey) -> ResourceRequest {
        ResourceRequest {
            priority: key.priority,
            capability: key.capability(),
            num_containers: self.outstanding.get(key).copied().unwrap_or(0),
            resource_name: ANY.to_owned(),
            relax_locality: true,
            gang: self.gangs.contains(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_common::{ApplicationId, AttemptId, ContainerId, NodeId};

    use super::*;

    fn container(seq: u64, priority: i32, resource: Resource) -> Container {
        let attempt = AttemptId::new(ApplicationId::new(1, 1), 1);
        Container {
            id: ContainerId { attempt, epoch: 0, seq },
            node_id: NodeId("n1:8042".into()),
            node_http_address: "http://n1:8042".into(),
            resource,
            priority,
            container_token: String::new(),
        }
    }

    fn counts(asks: &[ResourceRequest]) -> Vec<(i32, u64, u32)> {
        asks.iter().map(|a| (a.priority, a.capability.memory_mb, a.num_containers)).collect()
    }

    #[test]
    fn gang_asks_are_sent_as_gangs() {
        let mut table = AskTable::default();
        table.set_gang(1, Resource::new(512, 1), 10);
        table.set(2, Resource::new(512, 1), 3);
        let asks = table.take_changed();
        assert_eq!(
            asks.iter().map(|a| (a.priority, a.num_containers, a.gang)).collect::<Vec<_>>(),
            vec![(1, 10, true), (2, 3, false)]
        );
    }

    #[test]
    fn only_changed_keys_are_sent_and_zero_cancels() {
        let small = Resource::new(256, 1);
        let mut table = AskTable::default();
        table.set(1, small, 3);
        assert_eq!(counts(&table.take_changed()), vec![(1, 256, 3)]);
        assert!(table.take_changed().is_empty());
        table.set(1, small, 3);
        assert!(table.take_changed().is_empty(), "setting the same total is not a change");
        table.set(1, small, 0);
        assert_eq!(counts(&table.take_changed()), vec![(1, 256, 0)]);
        assert!(table.take_all().is_empty());
    }

    #[test]
    fn allocations_lower_the_count_without_resending() {
        let small = Resource::new(256, 1);
        let large = Resource::new(2048, 2);
        let mut table = AskTable::default();
        table.set(1, small, 2);
        table.set(1, large, 1);
        table.take_changed();
        // The RM rounded 256 MiB up to 1024 MiB: it still satisfies the small ask.
        table.on_allocated(&container(2, 1, Resource::new(1024, 1)));
        assert_eq!(table.outstanding(1, small), 1);
        table.on_allocated(&container(3, 1, large));
        assert_eq!(table.outstanding(1, large), 0);
        assert!(table.take_changed().is_empty());
        // An allocation nobody asked for (surplus) changes nothing.
        table.on_allocated(&container(4, 7, small));
        assert_eq!(counts(&table.take_all()), vec![(1, 256, 1)]);
    }

    #[test]
    fn resync_resends_everything_outstanding() {
        let mut table = AskTable::default();
        table.set(1, Resource::new(256, 1), 2);
        table.set(2, Resource::new(512, 1), 1);
        table.take_changed();
        table.set(2, Resource::new(512, 1), 4);
        assert_eq!(counts(&table.take_all()), vec![(1, 256, 2), (2, 512, 4)]);
        assert!(table.take_changed().is_empty());
    }
}
