//! The AM's table of outstanding container asks, producing YARN replace-asks.
//!
//! YARN keys asks by (priority, resource name, capability) and a new ask at a key *replaces* the
//! RM's count there. The RM lowers its count by itself as it allocates (and names the ask in
//! each container it hands out), so this table mirrors that on every allocation and only sends a
//! key again when the application changes what it wants.

use std::collections::{BTreeMap, BTreeSet};

use weft_common::Resource;
use weft_common::protocol::{ANY, Container, ResourceRequest};

/// Containers of one size at one priority, wanted at one location: anywhere, on a host (a host
/// name or a node id such as `host:8042`) or on a rack (`/rack1`). A located ask relaxes with
/// time (host, then its rack, then anywhere; see [`ResourceRequest::resource_name`]) unless it
/// is [`strict`](ContainerAsk::strict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerAsk {
    pub priority: i32,
    pub capability: Resource,
    /// `*`, a host or a rack.
    pub resource_name: String,
    /// `false`: the containers run at `resource_name` or not at all.
    pub relax_locality: bool,
}

impl ContainerAsk {
    pub fn anywhere(priority: i32, capability: Resource) -> Self {
        Self { priority, capability, resource_name: ANY.to_owned(), relax_locality: true }
    }

    /// Prefers `host`: a host name (any NM on it) or a node id (that NM).
    pub fn on_host(priority: i32, capability: Resource, host: impl Into<String>) -> Self {
        Self { resource_name: host.into(), ..Self::anywhere(priority, capability) }
    }

    /// Prefers `rack`, e.g. `/rack1` (a leading `/` is added if missing).
    pub fn on_rack(priority: i32, capability: Resource, rack: &str) -> Self {
        let rack = if rack.starts_with('/') { rack.to_owned() } else { format!("/{rack}") };
        Self { resource_name: rack, ..Self::anywhere(priority, capability) }
    }

    /// Never relax: wait for the named host or rack however long it takes.
    pub fn strict(mut self) -> Self {
        self.relax_locality = false;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AskKey {
    priority: i32,
    resource_name: String,
    memory_mb: u64,
    vcores: u32,
}

impl AskKey {
    fn of(ask: &ContainerAsk) -> Self {
        Self {
            priority: ask.priority,
            resource_name: ask.resource_name.clone(),
            memory_mb: ask.capability.memory_mb,
            vcores: ask.capability.vcores,
        }
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
    /// Keys that must not relax their locality.
    strict: BTreeSet<AskKey>,
}

impl AskTable {
    pub(crate) fn outstanding(&self, ask: &ContainerAsk) -> u32 {
        self.outstanding.get(&AskKey::of(ask)).copied().unwrap_or(0)
    }

    pub(crate) fn set(&mut self, ask: &ContainerAsk, total: u32) {
        let key = AskKey::of(ask);
        let strictness_changed =
            if ask.relax_locality { self.strict.remove(&key) } else { self.strict.insert(key.clone()) };
        let current = self.outstanding.get(&key).copied().unwrap_or(0);
        if current != total || (strictness_changed && total > 0) {
            self.outstanding.insert(key.clone(), total);
            self.changed.insert(key);
        }
    }

    /// Asks for `total` containers at this key, allocated all together or not at all.
    pub(crate) fn set_gang(&mut self, ask: &ContainerAsk, total: u32) {
        self.gangs.insert(AskKey::of(ask));
        self.set(ask, total);
    }

    /// Queues these asks' keys to be sent again (with their current counts).
    pub(crate) fn mark_changed(&mut self, asks: &[ResourceRequest]) {
        for ask in asks {
            let key = AskKey {
                priority: ask.priority,
                resource_name: ask.resource_name.clone(),
                memory_mb: ask.capability.memory_mb,
                vcores: ask.capability.vcores,
            };
            self.outstanding.entry(key.clone()).or_insert(0);
            self.changed.insert(key);
        }
    }

    /// Asks whose count changed since the last call, as replace-asks.
    pub(crate) fn take_changed(&mut self) -> Vec<ResourceRequest> {
        let changed = std::mem::take(&mut self.changed);
        let asks = changed.iter().map(|key| self.request(key)).collect();
        self.forget_empty();
        asks
    }

    /// Every outstanding ask, for an RM that lost them (resync).
    pub(crate) fn take_all(&mut self) -> Vec<ResourceRequest> {
        self.changed.clear();
        self.forget_empty();
        self.outstanding.keys().map(|key| self.request(key)).collect()
    }

    fn forget_empty(&mut self) {
        self.outstanding.retain(|_, count| *count > 0);
        let outstanding = &self.outstanding;
        self.gangs.retain(|key| outstanding.contains_key(key));
        self.strict.retain(|key| outstanding.contains_key(key));
    }

    /// Mirrors the RM's own decrement of the ask the container names. The RM rounds
    /// capabilities up to its minimum allocation, so the container may be larger than the ask:
    /// prefer an exact match, then the largest ask there that fits in the container, then any.
    /// A container naming no ask of this table (an older RM) lowers one at its priority.
    pub(crate) fn on_allocated(&mut self, container: &Container) {
        let at_priority = |named: bool| -> Vec<AskKey> {
            self.outstanding
                .iter()
                .filter(|(key, count)| {
                    key.priority == container.priority
                        && **count > 0
                        && (!named || key.resource_name == container.resource_name)
                })
                .map(|(key, _)| key.clone())
                .collect()
        };
        let named = at_priority(true);
        let candidates = if named.is_empty() { at_priority(false) } else { named };
        let exact = candidates.iter().find(|key| key.capability() == container.resource);
        let fitting = || {
            candidates
                .iter()
                .filter(|key| container.resource.fits(&key.capability()))
                .max_by_key(|key| (key.memory_mb, key.vcores))
        };
        let Some(key) = exact.or_else(fitting).or(candidates.first()).cloned() else { return };
        if let Some(count) = self.outstanding.get_mut(&key) {
            *count -= 1;
            if *count == 0 && !self.changed.contains(&key) {
                self.outstanding.remove(&key);
                self.gangs.remove(&key);
                self.strict.remove(&key);
            }
        }
    }

    fn request(&self, key: &AskKey) -> ResourceRequest {
        ResourceRequest {
            priority: key.priority,
            capability: key.capability(),
            num_containers: self.outstanding.get(key).copied().unwrap_or(0),
            resource_name: key.resource_name.clone(),
            relax_locality: !self.strict.contains(key),
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
            resource_name: ANY.to_owned(),
            container_token: String::new(),
        }
    }

    fn counts(asks: &[ResourceRequest]) -> Vec<(i32, u64, u32)> {
        asks.iter().map(|a| (a.priority, a.capability.memory_mb, a.num_containers)).collect()
    }

    #[test]
    fn gang_asks_are_sent_as_gangs() {
        let mut table = AskTable::default();
        table.set_gang(&ContainerAsk::anywhere(1, Resource::new(512, 1)), 10);
        table.set(&ContainerAsk::anywhere(2, Resource::new(512, 1)), 3);
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
        table.set(&ContainerAsk::anywhere(1, small), 3);
        assert_eq!(counts(&table.take_changed()), vec![(1, 256, 3)]);
        assert!(table.take_changed().is_empty());
        table.set(&ContainerAsk::anywhere(1, small), 3);
        assert!(table.take_changed().is_empty(), "setting the same total is not a change");
        table.set(&ContainerAsk::anywhere(1, small), 0);
        assert_eq!(counts(&table.take_changed()), vec![(1, 256, 0)]);
        assert!(table.take_all().is_empty());
    }

    #[test]
    fn allocations_lower_the_count_without_resending() {
        let small = Resource::new(256, 1);
        let large = Resource::new(2048, 2);
        let mut table = AskTable::default();
        table.set(&ContainerAsk::anywhere(1, small), 2);
        table.set(&ContainerAsk::anywhere(1, large), 1);
        table.take_changed();
        // The RM rounded 256 MiB up to 1024 MiB: it still satisfies the small ask.
        table.on_allocated(&container(2, 1, Resource::new(1024, 1)));
        assert_eq!(table.outstanding(&ContainerAsk::anywhere(1, small)), 1);
        table.on_allocated(&container(3, 1, large));
        assert_eq!(table.outstanding(&ContainerAsk::anywhere(1, large)), 0);
        assert!(table.take_changed().is_empty());
        // An allocation nobody asked for (surplus) changes nothing.
        table.on_allocated(&container(4, 7, small));
        assert_eq!(counts(&table.take_all()), vec![(1, 256, 1)]);
    }

    #[test]
    fn resync_resends_everything_outstanding() {
        let mut table = AskTable::default();
        table.set(&ContainerAsk::anywhere(1, Resource::new(256, 1)), 2);
        table.set(&ContainerAsk::anywhere(2, Resource::new(512, 1)), 1);
        table.take_changed();
        table.set(&ContainerAsk::anywhere(2, Resource::new(512, 1)), 4);
        assert_eq!(counts(&table.take_all()), vec![(1, 256, 2), (2, 512, 4)]);
        assert!(table.take_changed().is_empty());
    }

    #[test]
    fn located_asks_are_sent_with_their_location_and_lowered_by_the_ask_the_rm_names() {
        let size = Resource::new(512, 1);
        let on_n1 = ContainerAsk::on_host(1, size, "n1:8042");
        let on_rack = ContainerAsk::on_rack(1, size, "rack2").strict();
        let mut table = AskTable::default();
        table.set(&on_n1, 2);
        table.set(&on_rack, 1);
        table.set(&ContainerAsk::anywhere(1, size), 1);
        let sent: Vec<(String, bool, u32)> =
            table.take_changed().into_iter().map(|a| (a.resource_name, a.relax_locality, a.num_containers)).collect();
        assert_eq!(
            sent,
            vec![("*".into(), true, 1), ("/rack2".into(), false, 1), ("n1:8042".into(), true, 2)],
            "one request per location, the rack one strict"
        );
        // The RM allocated for the rack ask (on some node of it): only that count drops.
        let mut c = container(5, 1, size);
        c.resource_name = "/rack2".into();
        table.on_allocated(&c);
        assert_eq!(table.outstanding(&on_rack), 0);
        assert_eq!(table.outstanding(&on_n1), 2);
        assert_eq!(table.outstanding(&ContainerAsk::anywhere(1, size)), 1);
        // A relaxed host ask's container may land elsewhere; it still lowers the host ask.
        let mut c = container(6, 1, size);
        c.node_id = NodeId("n7:8042".into());
        c.resource_name = "n1:8042".into();
        table.on_allocated(&c);
        assert_eq!(table.outstanding(&on_n1), 1);
        assert!(table.take_changed().is_empty(), "the RM lowered its counts itself");
        // Making an ask strict is a change even at the same count.
        table.set(&on_n1.clone().strict(), 1);
        assert_eq!(table.take_changed().iter().map(|a| a.relax_locality).collect::<Vec<_>>(), vec![false]);
    }
}
