//! The cluster part: every node the core has seen, the live containers on them, and what is
//! derived from both and kept in step here: the free-capacity index placement walks, the usable
//! totals queue capacities follow, the topology locality asks look up, and the nodes the store
//! knows. A container is charged to its node and to the cluster only here; what it costs its
//! application and queue is the application table's and the hierarchy's business.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasherDefault;

use weft_common::protocol::{ContainerReport, DEFAULT_RACK};
use weft_common::states::{ContainerState, NmContainerState, NodeState};
use weft_common::{ContainerId, Millis, NodeId, Resource};

use crate::IdHasher;
use crate::error::CoreError;
use crate::lifecycle::{IllegalTransition, transition};
use crate::pending;

#[derive(Debug, Clone)]
pub struct Node {
    id: NodeId,
    http_address: String,
    total: Resource,
    used: Resource,
    state: NodeState,
    last_heartbeat: Millis,
    health_report: String,
    version: String,
    containers: BTreeSet<ContainerId>,
    /// Those of `containers` the NM has not reported yet.
    launching: BTreeSet<ContainerId>,
    /// Network location (`/rack1`), as the NM registered it; [`DEFAULT_RACK`] if it named none.
    rack: String,
}

impl Node {
    pub fn id(&self) -> &NodeId {
        &self.id
    }
    /// `http://host:port` of the NM's API.
    pub fn http_address(&self) -> &str {
        &self.http_address
    }
    pub fn total(&self) -> Resource {
        self.total
    }
    pub fn used(&self) -> Resource {
        self.used
    }
    pub fn state(&self) -> NodeState {
        self.state
    }
    pub fn last_heartbeat(&self) -> Millis {
        self.last_heartbeat
    }
    pub fn health_report(&self) -> &str {
        &self.health_report
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    /// Its live containers.
    pub fn containers(&self) -> &BTreeSet<ContainerId> {
        &self.containers
    }
    pub fn rack(&self) -> &str {
        &self.rack
    }

    pub fn free(&self) -> Resource {
        self.total.saturating_sub(self.used)
    }

    /// Whether an ask naming the host `name` means this node: `name` is its node id
    /// (`host:port`) or its host name (which several NMs on one machine share).
    pub fn is_named(&self, name: &str) -> bool {
        &*self.id.0 == name || self.id.host() == name
    }
}

/// The rack a registering node goes into: the one it named, with the leading `/` rack names
/// are recognised by, or [`DEFAULT_RACK`].
pub fn rack_or_default(requested: Option<&str>) -> String {
    match requested.map(str::trim) {
        None | Some("") | Some("/") => DEFAULT_RACK.to_owned(),
        Some(rack) if rack.starts_with('/') => rack.to_owned(),
        Some(rack) => format!("/{rack}"),
    }
}

/// A live container (RMContainer). Completed containers leave the cluster.
#[derive(Debug, Clone)]
pub struct RmContainer {
    id: ContainerId,
    node_id: NodeId,
    resource: Resource,
    priority: i32,
    state: ContainerState,
    is_am: bool,
    allocated_at: Millis,
    token: String,
}

impl RmContainer {
    /// A container about to go live on `node_id`, brought from NEW to `state` through its
    /// lifecycle: ALLOCATED (the NM has yet to report it) or RUNNING (adopted as reported).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: ContainerId,
        node_id: NodeId,
        resource: Resource,
        priority: i32,
        is_am: bool,
        allocated_at: Millis,
        token: String,
        state: ContainerState,
    ) -> Result<Self, IllegalTransition> {
        let mut rc = Self { id, node_id, resource, priority, state: ContainerState::New, is_am, allocated_at, token };
        transition(&mut rc.state, ContainerState::Allocated, &id)?;
        if state != ContainerState::Allocated {
            transition(&mut rc.state, state, &id)?;
        }
        Ok(rc)
    }

    pub fn id(&self) -> ContainerId {
        self.id
    }
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }
    pub fn resource(&self) -> Resource {
        self.resource
    }
    /// The priority of the ask it was allocated for (orders preemption victims).
    pub fn priority(&self) -> i32 {
        self.priority
    }
    pub fn state(&self) -> ContainerState {
        self.state
    }
    pub fn is_am(&self) -> bool {
        self.is_am
    }
    pub fn allocated_at(&self) -> Millis {
        self.allocated_at
    }
    /// The signed container token (the RM stops the container with it).
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Every node the core has seen, by host name and by rack, so a locality ask looks only at the
/// nodes it may use instead of scanning the cluster. Nodes stay listed when LOST or unhealthy
/// (the core keeps every node it has seen); callers check usability.
#[derive(Debug, Clone, Default)]
struct Topology {
    by_host: BTreeMap<String, BTreeSet<NodeId>>,
    by_rack: BTreeMap<String, BTreeSet<NodeId>>,
}

impl Topology {
    /// Records that `node`, previously in `previous_rack` (if it was known), is now in `rack`.
    fn place_node(&mut self, node: &NodeId, previous_rack: Option<&str>, rack: &str) {
        if let Some(previous) = previous_rack
            && previous != rack
            && let Some(members) = self.by_rack.get_mut(previous)
        {
            members.remove(node);
            if members.is_empty() {
                self.by_rack.remove(previous);
            }
        }
        self.by_host.entry(node.host().to_owned()).or_default().insert(node.clone());
        self.by_rack.entry(rack.to_owned()).or_default().insert(node.clone());
    }

    /// Nodes whose host name is `host`.
    fn on_host<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a NodeId> + 'a {
        self.by_host.get(host).into_iter().flatten()
    }

    fn in_rack<'a>(&'a self, rack: &str) -> impl Iterator<Item = &'a NodeId> + 'a {
        self.by_rack.get(rack).into_iter().flatten()
    }
}

/// Where an ask may be placed right now, its locality delays considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    Anywhere,
    /// Nodes with this node id or host name (see [`Node::is_named`]).
    Host(String),
    Rack(String),
}

impl Placement {
    pub(crate) fn admits(&self, node: &Node) -> bool {
        match self {
            Placement::Anywhere => true,
            Placement::Host(name) => node.is_named(name),
            Placement::Rack(rack) => node.rack == *rack,
        }
    }
}

/// Nodes and live containers, with the indexes over them.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// Every request is rounded up to this, so a node with less room can host nothing.
    min_allocation: Resource,
    nodes: BTreeMap<NodeId, Node>,
    /// A fixed hasher, so iteration order depends only on history: runs are reproducible.
    containers: HashMap<ContainerId, RmContainer, BuildHasherDefault<IdHasher>>,
    /// Usable nodes with room for at least a minimum allocation, by free memory, so placement
    /// never scans every node. Leaving out nodes without that much room keeps a cluster that is
    /// full in one dimension (all vcores taken, memory left) from being walked node by node.
    free_index: BTreeSet<(u64, NodeId)>,
    /// How many usable nodes have each amount of free vcores (the largest bounds what fits).
    free_vcores: BTreeMap<u32, u32>,
    /// Total resources and number of the usable (RUNNING) nodes.
    usable_capacity: Resource,
    usable_count: u32,
    /// Nodes by host and by rack, for locality asks.
    topology: Topology,
    /// What all live containers hold.
    used: Resource,
    /// Nodes in the store (persisted when first seen, removed when lost).
    stored: BTreeSet<NodeId>,
}

impl Cluster {
    pub(crate) fn new(min_allocation: Resource) -> Self {
        Self {
            min_allocation,
            nodes: BTreeMap::new(),
            containers: HashMap::default(),
            free_index: BTreeSet::new(),
            free_vcores: BTreeMap::new(),
            usable_capacity: Resource::ZERO,
            usable_count: 0,
            topology: Topology::default(),
            used: Resource::ZERO,
            stored: BTreeSet::new(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Reads.

    pub(crate) fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }
    pub(crate) fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }
    /// The id `id` registered under: every container of the node shares it, so comparing
    /// against it is a pointer comparison.
    pub(crate) fn registered_id(&self, id: &NodeId) -> Option<NodeId> {
        self.nodes.get_key_value(id).map(|(id, _)| id.clone())
    }
    pub(crate) fn container(&self, id: &ContainerId) -> Option<&RmContainer> {
        self.containers.get(id)
    }
    pub(crate) fn containers(&self) -> impl Iterator<Item = &RmContainer> {
        self.containers.values()
    }
    /// What all live containers hold.
    pub(crate) fn used(&self) -> Resource {
        self.used
    }
    /// Total resources of usable (RUNNING) nodes.
    pub(crate) fn capacity(&self) -> Resource {
        self.usable_capacity
    }
    pub(crate) fn usable_count(&self) -> u32 {
        self.usable_count
    }

    /// The most free memory and the most free vcores any usable node has (not necessarily the
    /// same node); None when no node has anything free.
    pub(crate) fn largest_free(&self) -> Option<Resource> {
        let memory = self.free_index.last()?.0;
        let vcores = *self.free_vcores.last_key_value()?.0;
        (memory > 0 && vcores > 0).then_some(Resource::new(memory, vcores))
    }

    /// Usable nodes with room for a minimum allocation, most free memory first, with that free
    /// memory: from the index, so a walk that stops early looks at nothing else.
    pub(crate) fn most_free_first(&self) -> impl Iterator<Item = (u64, &Node)> {
        self.free_index.iter().rev().filter_map(|(free_mb, id)| Some((*free_mb, self.nodes.get(id)?)))
    }

    /// The nodes an ask naming host `name` means: the node with that id, else every node on
    /// that host. Looked up, never scanned.
    pub(crate) fn nodes_named<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a NodeId> + 'a> {
        match self.nodes.get_key_value(&NodeId(name.into())) {
            Some((id, _)) => Box::new(std::iter::once(id)),
            None => Box::new(self.topology.on_host(name)),
        }
    }

    /// The usable nodes `placement` allows, for host and rack placements (from the topology
    /// index, so only that host's or rack's nodes are looked at); `None` for anywhere.
    pub(crate) fn candidates(&self, placement: &Placement) -> Option<Vec<&Node>> {
        let ids: Box<dyn Iterator<Item = &NodeId>> = match placement {
            Placement::Anywhere => return None,
            Placement::Host(name) => self.nodes_named(name),
            Placement::Rack(rack) => Box::new(self.topology.in_rack(rack)),
        };
        Some(ids.filter_map(|id| self.nodes.get(id)).filter(|n| n.state.is_usable()).collect())
    }

    // -----------------------------------------------------------------------------------------
    // Nodes.

    /// Registers `id`, new or again (after an NM restart, or after it was lost), with what it
    /// reports now. A node that was not usable starts over: NEW, then RUNNING.
    pub(crate) fn register_node(
        &mut self,
        id: &NodeId,
        http_address: String,
        total: Resource,
        version: String,
        rack: &str,
        now: Millis,
    ) -> Result<(), IllegalTransition> {
        let previous_rack = match self.nodes.get(id) {
            Some(node) => {
                let previous = node.rack.clone();
                self.update_node(id, |node| {
                    if !matches!(node.state, NodeState::Running | NodeState::Unhealthy) {
                        transition(&mut node.state, NodeState::New, id)?;
                        transition(&mut node.state, NodeState::Running, id)?;
                    }
                    node.total = total;
                    node.http_address = http_address;
                    node.version = version;
                    node.rack = rack.to_owned();
                    node.last_heartbeat = now;
                    Ok(())
                })
                .unwrap_or(Ok(()))?;
                Some(previous)
            }
            None => {
                let node = Node {
                    id: id.clone(),
                    http_address,
                    total,
                    used: Resource::ZERO,
                    state: NodeState::New,
                    last_heartbeat: now,
                    health_report: String::new(),
                    version,
                    containers: BTreeSet::new(),
                    launching: BTreeSet::new(),
                    rack: rack.to_owned(),
                };
                self.nodes.insert(id.clone(), node);
                // Through update_node, so the indexes see it become usable.
                self.update_node(id, |node| transition(&mut node.state, NodeState::Running, id)).unwrap_or(Ok(()))?;
                None
            }
        };
        self.topology.place_node(id, previous_rack.as_deref(), rack);
        Ok(())
    }

    /// Records a heartbeat of a RUNNING or UNHEALTHY node, which moves between the two with its
    /// health. Returns whether it moved (the usable capacity changed).
    pub(crate) fn node_heartbeat(
        &mut self,
        id: &NodeId,
        healthy: bool,
        health_report: String,
        now: Millis,
    ) -> Result<bool, CoreError> {
        let want = if healthy { NodeState::Running } else { NodeState::Unhealthy };
        let changed = self
            .update_node(id, |node| {
                node.last_heartbeat = now;
                node.health_report = health_report;
                let changed = node.state != want;
                if changed {
                    transition(&mut node.state, want, id)?;
                }
                Ok::<_, IllegalTransition>(changed)
            })
            .ok_or_else(|| CoreError::UnknownNode(id.clone()))??;
        Ok(changed)
    }

    /// Settles a heartbeat's container reports against the node's own sets, without a lookup
    /// in the cluster-wide container map: NMs report every container on every heartbeat and
    /// nearly all reports say "still running". Returns the containers of this epoch the NM
    /// runs but the RM does not know (to be cleaned up) and the reports with news.
    pub(crate) fn settle_reports(
        &mut self,
        id: &NodeId,
        reports: Vec<ContainerReport>,
        epoch: u32,
    ) -> (Vec<ContainerId>, Vec<ContainerReport>) {
        let mut cleanup = Vec::new();
        let mut news = Vec::new();
        let Some(node) = self.nodes.get_mut(id) else { return (cleanup, news) };
        for report in reports {
            let container = report.container_id;
            let running = matches!(report.state, NmContainerState::New | NmContainerState::Running);
            let known = node.containers.contains(&container);
            // An unknown one of an earlier epoch may be an allocation its AM started only after
            // a failover: the caller looks at it (and may adopt it).
            if running && !known && container.epoch >= epoch {
                cleanup.push(container);
            } else if !running || !known || node.launching.remove(&container) || !report.diagnostics.is_empty() {
                news.push(report);
            }
        }
        (cleanup, news)
    }

    /// Marks a node LOST; returns the containers it held (the caller completes them).
    pub(crate) fn node_lost(&mut self, id: &NodeId) -> Result<Vec<ContainerId>, IllegalTransition> {
        if let Some(marked) = self.update_node(id, |node| transition(&mut node.state, NodeState::Lost, id)) {
            marked?;
        }
        Ok(self.nodes.get(id).map(|n| n.containers.iter().copied().collect()).unwrap_or_default())
    }

    /// Records that the store knows `id`; true if it did not before (the caller persists it).
    pub(crate) fn remember(&mut self, id: &NodeId) -> bool {
        self.stored.insert(id.clone())
    }

    /// Records that the store no longer knows `id`; true if it did (the caller removes it).
    pub(crate) fn forget(&mut self, id: &NodeId) -> bool {
        self.stored.remove(id)
    }

    /// The nodes the store knew when this incarnation recovered.
    pub(crate) fn recover_stored(&mut self, ids: impl IntoIterator<Item = NodeId>) -> &BTreeSet<NodeId> {
        self.stored = ids.into_iter().collect();
        &self.stored
    }

    /// Applies `f` to a node and keeps the free-capacity index and usable totals in step: a
    /// node is indexed iff it is usable, keyed by its current free memory.
    fn update_node<R>(&mut self, id: &NodeId, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let node = self.nodes.get_mut(id)?;
        if node.state.is_usable() {
            let free = node.free();
            if free.fits(&self.min_allocation) {
                self.free_index.remove(&(free.memory_mb, node.id.clone()));
            }
            pending::remove_one(&mut self.free_vcores, &free.vcores);
            self.usable_capacity -= node.total;
            self.usable_count -= 1;
        }
        let r = f(node);
        if node.state.is_usable() {
            let free = node.free();
            if free.fits(&self.min_allocation) {
                self.free_index.insert((free.memory_mb, node.id.clone()));
            }
            pending::add_one(&mut self.free_vcores, free.vcores);
            self.usable_capacity += node.total;
            self.usable_count += 1;
        }
        Some(r)
    }

    // -----------------------------------------------------------------------------------------
    // Containers.

    /// Charges a new live container to its node and the cluster. One the NM has yet to report
    /// (ALLOCATED) counts as launching.
    pub(crate) fn add_container(&mut self, rc: RmContainer) {
        let (id, resource) = (rc.id, rc.resource);
        let launching = rc.state == ContainerState::Allocated;
        self.update_node(&rc.node_id, |node| {
            node.used += resource;
            node.containers.insert(id);
            if launching {
                node.launching.insert(id);
            }
        });
        self.used += resource;
        self.containers.insert(id, rc);
    }

    /// Removes a live container, frees what it held on its node and the cluster, and moves it
    /// to COMPLETED (the outcome of that transition comes with it).
    pub(crate) fn remove_container(&mut self, id: ContainerId) -> Option<(RmContainer, Result<(), IllegalTransition>)> {
        let mut rc = self.containers.remove(&id)?;
        let completed = transition(&mut rc.state, ContainerState::Completed, &id);
        self.update_node(&rc.node_id, |node| {
            node.used -= rc.resource;
            node.containers.remove(&id);
            node.launching.remove(&id);
        });
        self.used -= rc.resource;
        Some((rc, completed))
    }

    /// The NM accepted an AM container's launch: ALLOCATED → ACQUIRED (in any other state,
    /// nothing changes).
    pub(crate) fn container_acquired(&mut self, id: ContainerId) -> Result<(), IllegalTransition> {
        match self.containers.get_mut(&id) {
            Some(rc) if rc.state == ContainerState::Allocated => {
                transition(&mut rc.state, ContainerState::Acquired, &id)
            }
            _ => Ok(()),
        }
    }

    /// The NM reports the container running; returns whether that is news (it was not RUNNING).
    pub(crate) fn container_running(&mut self, id: ContainerId) -> Result<bool, IllegalTransition> {
        match self.containers.get_mut(&id) {
            Some(rc) if rc.state != ContainerState::Running => {
                transition(&mut rc.state, ContainerState::Running, &id)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Puts a container in `state` without its lifecycle, as only a bug would: for tests of
    /// what the core does then.
    #[cfg(test)]
    pub(crate) fn corrupt_container_state(&mut self, id: ContainerId, state: ContainerState) {
        if let Some(rc) = self.containers.get_mut(&id) {
            rc.state = state;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Invariants.

    /// Every container is on its node and counted exactly once there and in the cluster, no
    /// usable node is over capacity, and the free index and usable totals match the nodes.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut cluster = Resource::ZERO;
        for c in self.containers.values() {
            let node =
                self.nodes.get(&c.node_id).ok_or_else(|| format!("{} is on unknown node {}", c.id, c.node_id))?;
            if !node.containers.contains(&c.id) {
                return Err(format!("{} is missing from node {}", c.id, c.node_id));
            }
            cluster += c.resource;
        }
        if cluster != self.used {
            return Err(format!("cluster used {} != sum of containers {}", self.used, cluster));
        }
        let mut indexed = BTreeSet::new();
        for node in self.nodes.values() {
            let mut used = Resource::ZERO;
            for id in &node.containers {
                let c = self.containers.get(id).ok_or_else(|| format!("node {} lists dead container {id}", node.id))?;
                if node.launching.contains(id) == (c.state == ContainerState::Running) {
                    return Err(format!("node {}'s launching set disagrees with {id}'s state {:?}", node.id, c.state));
                }
                used += c.resource;
            }
            if !node.launching.is_subset(&node.containers) {
                return Err(format!("node {} has launching containers it does not hold", node.id));
            }
            if used != node.used {
                return Err(format!("node {} used {} != sum of its containers {}", node.id, node.used, used));
            }
            if node.state.is_usable() {
                if !node.total.fits(&node.used) {
                    return Err(format!("node {} is over capacity: {} of {}", node.id, node.used, node.total));
                }
                if node.free().fits(&self.min_allocation) {
                    indexed.insert((node.free().memory_mb, node.id.clone()));
                }
            }
        }
        if indexed != self.free_index {
            return Err(format!("free index {:?} != usable nodes with room {:?}", self.free_index, indexed));
        }
        let usable: Vec<&Node> = self.nodes.values().filter(|n| n.state.is_usable()).collect();
        let mut free_vcores = BTreeMap::new();
        for node in &usable {
            *free_vcores.entry(node.free().vcores).or_insert(0u32) += 1;
        }
        let capacity = usable.iter().fold(Resource::ZERO, |sum, n| sum + n.total);
        if free_vcores != self.free_vcores
            || capacity != self.usable_capacity
            || usable.len() as u32 != self.usable_count
        {
            return Err(format!(
                "usable-node aggregates out of step: free vcores {:?} vs {free_vcores:?}, capacity {} vs {capacity}, count {} vs {}",
                self.free_vcores,
                self.usable_capacity,
                self.usable_count,
                usable.len()
            ));
        }
        Ok(())
    }
}
