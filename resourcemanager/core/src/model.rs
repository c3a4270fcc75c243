//! The objects the core owns: applications, attempts, containers and nodes.

use std::collections::{BTreeMap, BTreeSet};

use weft_common::protocol::{ContainerLaunchContext, DEFAULT_RACK};
use weft_common::states::{AppState, AttemptState, ContainerState, FinalStatus, NodeState};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

use super::effects::ReqId;
use super::lifecycle::{IllegalTransition, transition};

/// One outstanding ask of an app: YARN keys asks by (priority, resource name, capability) and a
/// new ask at the same key replaces the old count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AskKey {
    pub priority: i32,
    pub resource_name: String,
    pub capability: Resource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub count: u32,
    pub relax_locality: bool,
    /// All `count` containers are allocated together or not at all.
    pub gang: bool,
    /// When this ask (re)appeared, for allocation-latency metrics.
    pub since: Millis,
}

#[derive(Debug, Clone)]
pub struct App {
    pub id: ApplicationId,
    pub user: String,
    pub name: String,
    /// Leaf queue as shown to users (leaf name; full path in fair mode).
    pub queue: String,
    /// The leaf in the hierarchy; `None` only for recovered finished apps whose queue is gone.
    pub queue_index: Option<crate::queues::QueueIndex>,
    pub application_type: String,
    pub tags: Vec<String>,
    pub priority: i32,
    pub max_attempts: u32,
    pub am_resource: Resource,
    pub launch_context: ContainerLaunchContext,
    pub submit_time: Millis,
    /// When the first AM container was launched.
    pub launch_time: Option<Millis>,
    pub finish_time: Option<Millis>,
    pub state: AppState,
    pub final_status: FinalStatus,
    pub diagnostics: String,
    pub progress: f32,
    /// History; the last one is the current attempt.
    pub attempts: Vec<Attempt>,
    /// AM container wanted since this time (the attempt is SCHEDULED).
    pub am_ask_since: Option<Millis>,
    pub asks: BTreeMap<AskKey, Ask>,
    /// Live containers of this app.
    pub containers: BTreeSet<ContainerId>,
    pub used: Resource,
    pub next_container_seq: u64,
    /// Resource-seconds of containers that have completed (live ones are added when reported).
    pub memory_seconds: u64,
    pub vcore_seconds: u64,
    /// The submit request waiting for the store write of this app.
    pub saving_reply: Option<ReqId>,
    /// Every container this app has had, for REST listings and log lookup.
    pub container_history: BTreeMap<ContainerId, ContainerHistory>,
}

impl App {
    pub fn current_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    pub fn current_attempt_mut(&mut self) -> Option<&mut Attempt> {
        self.attempts.last_mut()
    }

    pub fn has_demand(&self) -> bool {
        !self.state.is_final() && (self.am_ask_since.is_some() || !self.asks.is_empty())
    }

    pub fn pending_containers(&self) -> u64 {
        self.asks.values().map(|a| u64::from(a.count)).sum::<u64>() + u64::from(self.am_ask_since.is_some())
    }
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: AttemptId,
    pub state: AttemptState,
    pub am_container: Option<ContainerId>,
    pub node_id: Option<NodeId>,
    pub node_http_address: String,
    pub start_time: Millis,
    pub finish_time: Option<Millis>,
    pub diagnostics: String,
    pub am_exit_status: Option<i32>,
    /// Whether this attempt's failure counts towards max attempts.
    pub counts_as_failure: bool,
    /// Last sign of life from the AM (allocation of its container, register, allocate).
    pub last_heartbeat: Millis,
    pub host: String,
    pub rpc_port: u16,
    pub tracking_url: String,
}

impl Attempt {
    pub fn new(id: AttemptId, now: Millis) -> Self {
        Self {
            id,
            state: AttemptState::New,
            am_container: None,
            node_id: None,
            node_http_address: String::new(),
            start_time: now,
            finish_time: None,
            diagnostics: String::new(),
            am_exit_status: None,
            counts_as_failure: false,
            last_heartbeat: now,
            host: String::new(),
            rpc_port: 0,
            tracking_url: String::new(),
        }
    }
}

/// A live container (RMContainer). Completed containers leave the core's container map.
#[derive(Debug, Clone)]
pub struct RmContainer {
    pub id: ContainerId,
    pub node_id: NodeId,
    pub resource: Resource,
    pub priority: i32,
    pub state: ContainerState,
    pub is_am: bool,
    pub allocated_at: Millis,
    pub token: String,
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
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    pub http_address: String,
    pub total: Resource,
    pub used: Resource,
    pub state: NodeState,
    pub last_heartbeat: Millis,
    pub health_report: String,
    pub version: String,
    pub containers: BTreeSet<ContainerId>,
    /// Those of `containers` the NM has not reported yet.
    pub launching: BTreeSet<ContainerId>,
    /// Network location (`/rack1`), as the NM registered it; [`DEFAULT_RACK`] if it named none.
    pub rack: String,
}

impl Node {
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

/// Every node the core has seen, by host name and by rack, so a locality ask looks only at the
/// nodes it may use instead of scanning the cluster. Nodes stay listed when LOST or unhealthy
/// (the core keeps every node it has seen); callers check usability.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    by_host: BTreeMap<String, BTreeSet<NodeId>>,
    by_rack: BTreeMap<String, BTreeSet<NodeId>>,
}

impl Topology {
    /// Records that `node`, previously in `previous_rack` (if it was known), is now in `rack`.
    pub fn place_node(&mut self, node: &NodeId, previous_rack: Option<&str>, rack: &str) {
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
    pub fn on_host<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a NodeId> + 'a {
        self.by_host.get(host).into_iter().flatten()
    }

    pub fn in_rack<'a>(&'a self, rack: &str) -> impl Iterator<Item = &'a NodeId> + 'a {
        self.by_rack.get(rack).into_iter().flatten()
    }
}

/// Capacity held back for the oldest waiting gang ask: other asks may only use what the gang
/// cannot use, so the gang's chances never shrink while it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GangReservation {
    pub app: ApplicationId,
    pub key: AskKey,
    pub since: Millis,
}

/// Completed container as remembered for REST listings (`…/appattempts/{id}/containers`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerHistory {
    pub id: ContainerId,
    pub node_id: NodeId,
    pub node_http_address: String,
    pub resource: Resource,
    pub priority: i32,
    pub allocated_at: Millis,
    pub finished_at: Option<Millis>,
    pub exit_status: Option<i32>,
    pub diagnostics: String,
}
