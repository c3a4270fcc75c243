//! Plain values the parts share: asks, the gang reservation, container history.

use weft_common::{ApplicationId, ContainerId, Millis, NodeId, Resource};

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
