//! The objects the core owns: applications, attempts, containers and nodes.

use std::collections::{BTreeMap, BTreeSet};

use weft_common::protocol::ContainerLaunchContext;
use weft_common::states::{AppState, AttemptState, FinalStatus};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

use super::effects::ReqId;

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
