//! Wire messages (JSON over HTTP) between Weft components.
//!
//! | who → whom | endpoint | request → response |
//! |---|---|---|
//! | NM → RM | `POST /ws/v1/weft/nm/register` | [`RegisterNodeRequest`] → [`RegisterNodeResponse`] |
//! | NM → RM | `POST /ws/v1/weft/nm/heartbeat` | [`NodeHeartbeatRequest`] → [`NodeHeartbeatResponse`] |
//! | AM → RM | `POST /ws/v1/weft/am/register` | [`RegisterAmRequest`] → [`RegisterAmResponse`] |
//! | AM → RM | `POST /ws/v1/weft/am/allocate` | [`AllocateRequest`] → [`AllocateResponse`] |
//! | AM → RM | `POST /ws/v1/weft/am/finish` | [`FinishAmRequest`] → [`FinishAmResponse`] |
//! | RM/AM → NM | `POST /ws/v1/node/containers` | [`StartContainerRequest`] → [`ContainerReport`] |
//! | RM/AM → NM | `POST /ws/v1/node/containers/{id}/stop` | [`StopContainerRequest`] → [`ContainerReport`] |
//! | anyone → NM | `GET /ws/v1/node/containers[/{id}]` | → [`ContainerReport`] list / one |
//! | anyone → NM | `GET /ws/v1/node/containers/{id}/logs[/{file}]` | → file names / file text |
//!
//! AM calls carry `Authorization: Bearer <AmToken>`; the attempt is taken from the token, never
//! from the body, so an AM cannot act for another application. Errors on every endpoint are
//! [`crate::error::ErrorBody`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::states::{FinalStatus, NmContainerState};
use crate::token::MasterKey;
use crate::{ApplicationId, AttemptId, ContainerId, NodeId, Resource};

pub const NM_REGISTER_PATH: &str = "/ws/v1/weft/nm/register";
pub const NM_HEARTBEAT_PATH: &str = "/ws/v1/weft/nm/heartbeat";
pub const AM_REGISTER_PATH: &str = "/ws/v1/weft/am/register";
pub const AM_ALLOCATE_PATH: &str = "/ws/v1/weft/am/allocate";
pub const AM_FINISH_PATH: &str = "/ws/v1/weft/am/finish";
pub const NM_CONTAINERS_PATH: &str = "/ws/v1/node/containers";

/// Environment variables the RM puts into an AM container's launch context.
pub mod am_env {
    /// Comma-separated `http://host:port` list of RM web addresses.
    pub const RM_ADDRESSES: &str = "WEFT_RM_ADDRESSES";
    /// The attempt's [`crate::token::AmToken`], signed.
    pub const AM_TOKEN: &str = "WEFT_AM_TOKEN";
    pub const APPLICATION_ID: &str = "WEFT_APPLICATION_ID";
    pub const APP_ATTEMPT_ID: &str = "APPLICATION_ATTEMPT_ID";
    pub const MAX_APP_ATTEMPTS: &str = "MAX_APP_ATTEMPTS";
    pub const APP_SUBMIT_TIME: &str = "APP_SUBMIT_TIME_ENV";
}

/// Environment variables every container gets from its NM (YARN's names).
pub mod container_env {
    pub const CONTAINER_ID: &str = "CONTAINER_ID";
    pub const NM_HOST: &str = "NM_HOST";
    pub const NM_PORT: &str = "NM_PORT";
    pub const NM_HTTP_PORT: &str = "NM_HTTP_PORT";
    pub const LOG_DIRS: &str = "LOG_DIRS";
    pub const LOCAL_DIRS: &str = "LOCAL_DIRS";
    pub const USER: &str = "USER";
    pub const PWD: &str = "PWD";
    pub const HOME: &str = "HOME";
}

// ---------------------------------------------------------------------------------------------
// NodeManager ↔ ResourceManager

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegisterNodeRequest {
    pub node_id: NodeId,
    /// `http://host:port` where the NM serves its container API and logs.
    pub http_address: String,
    pub total: Resource,
    /// Containers still running on this node (non-empty when an NM re-registers after an RM
    /// restart, so they can be recovered).
    #[serde(default)]
    pub containers: Vec<ContainerReport>,
    #[serde(default)]
    pub version: String,
    /// Network location of the node, e.g. `/rack1` or `/dc1/rack7`, for rack-local placement.
    /// `None` (older NMs) means [`DEFAULT_RACK`]; a name without the leading `/` gets one.
    #[serde(default)]
    pub rack: Option<String>,
}

/// The rack of nodes that name none (YARN's default topology answer).
pub const DEFAULT_RACK: &str = "/default-rack";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeAction {
    Normal,
    /// The RM does not know this node (it restarted or declared the node LOST): register again.
    Resync,
    /// The RM refuses this node; the NM must stop.
    Shutdown,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegisterNodeResponse {
    pub action: NodeAction,
    /// Keys the NM verifies container tokens with (current and previous).
    pub container_token_keys: Vec<MasterKey>,
    pub heartbeat_interval_ms: u64,
    pub rm_epoch: u32,
    #[serde(default)]
    pub diagnostics: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeHealth {
    pub healthy: bool,
    #[serde(default)]
    pub report: String,
}

impl Default for NodeHealth {
    fn default() -> Self {
        Self { healthy: true, report: String::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeHeartbeatRequest {
    pub node_id: NodeId,
    /// Live containers, and completed ones until the RM acknowledges them.
    pub containers: Vec<ContainerReport>,
    #[serde(default)]
    pub health: NodeHealth,
    /// Applications the NM holds work or log directories for and has not been told are
    /// finished; the RM answers with the finished ones in
    /// [`NodeHeartbeatResponse::applications_to_cleanup`].
    #[serde(default)]
    pub applications_with_dirs: Vec<ApplicationId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeHeartbeatResponse {
    pub action: NodeAction,
    /// Containers the NM must stop (the RM no longer considers them live).
    #[serde(default)]
    pub containers_to_cleanup: Vec<ContainerId>,
    /// Completed containers the RM has recorded; the NM may stop reporting them.
    #[serde(default)]
    pub acked_completed: Vec<ContainerId>,
    /// Those of the request's `applications_with_dirs` the RM considers finished or does not
    /// know (YARN's `applicationsToCleanup`): the NM deletes their directories.
    #[serde(default)]
    pub applications_to_cleanup: Vec<ApplicationId>,
    /// Present when the key set changed since registration.
    #[serde(default)]
    pub container_token_keys: Option<Vec<MasterKey>>,
    pub heartbeat_interval_ms: u64,
}

/// A container as an NM sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerReport {
    pub container_id: ContainerId,
    pub state: NmContainerState,
    /// Process exit code, or one of [`crate::states::exit_status`]; `INVALID` while running.
    pub exit_status: i32,
    #[serde(default)]
    pub diagnostics: String,
    pub resource: Resource,
    /// Unix pid of the container's process-group leader while running.
    #[serde(default)]
    pub pid: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// ApplicationMaster ↔ ResourceManager

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RegisterAmRequest {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub rpc_port: u16,
    #[serde(default)]
    pub tracking_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegisterAmResponse {
    pub application_id: ApplicationId,
    pub attempt_id: AttemptId,
    pub queue: String,
    pub user: String,
    pub maximum_capability: Resource,
    pub minimum_capability: Resource,
    /// Containers of earlier attempts that are still running (work-preserving AM restart).
    #[serde(default)]
    pub containers_from_previous_attempts: Vec<Container>,
}

/// YARN's ResourceRequest. `num_containers` is the total still wanted at this
/// (priority, resource_name, capability): a new ask replaces the previous one, it does not add.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceRequest {
    /// Lower number = more important (YARN convention; the AM container uses 0).
    pub priority: i32,
    pub capability: Resource,
    pub num_containers: u32,
    /// Where the containers should run: a host (a node's host name, or its full `host:port`
    /// node id), a rack (starts with `/`, e.g. `/rack1`), or `*` for anywhere.
    ///
    /// Unlike YARN's AMRMClient, which sends a node, a rack and a `*` request for every locality
    /// ask, Weft's ask names only its preferred location and relaxes with time (delay
    /// scheduling): a host ask may use only that host for `scheduler.node-locality-delay-ms`
    /// after it appeared, then also its host's rack, and after a further
    /// `scheduler.rack-locality-delay-ms` any node; a rack ask may use only that rack for
    /// `rack-locality-delay-ms`, then any node. YARN counts these delays in missed scheduling
    /// opportunities (node heartbeats); Weft schedules after every event, so it counts time.
    #[serde(default = "any_resource_name")]
    pub resource_name: String,
    /// `false` pins the containers to `resource_name` (that host, or that rack) for good.
    #[serde(default = "default_true")]
    pub relax_locality: bool,
    /// All `num_containers` at this key are allocated together or not at all (beyond YARN).
    /// While a gang waits, the RM holds back freed capacity it needs, so small asks cannot
    /// starve it; one gang holds such a reservation at a time, so gangs cannot deadlock.
    #[serde(default)]
    pub gang: bool,
}

pub const ANY: &str = "*";

fn any_resource_name() -> String {
    ANY.to_owned()
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AllocateRequest {
    /// Echo of the last response's id (0 on the first call). A repeat of the previous id gets the
    /// previous response again (lost-response retry); anything else is rejected.
    pub response_id: u64,
    #[serde(default)]
    pub asks: Vec<ResourceRequest>,
    #[serde(default)]
    pub releases: Vec<ContainerId>,
    #[serde(default)]
    pub progress: f32,
    /// Long poll: if the response would carry nothing new, the RM may hold it up to this long and
    /// answer as soon as something is allocated or completes. 0 answers at once.
    #[serde(default)]
    pub wait_ms: u64,
}

/// An allocated container, as handed to the AM.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Container {
    pub id: ContainerId,
    pub node_id: NodeId,
    /// `http://host:port` of the NM's API.
    pub node_http_address: String,
    pub resource: Resource,
    pub priority: i32,
    /// The `resource_name` of the ask this container was allocated for (`*`, a rack or a host;
    /// it may run elsewhere once the ask relaxed), so the AM lowers exactly the count the RM
    /// lowered. A Weft extension, like YARN's later `allocationRequestId`.
    #[serde(default = "any_resource_name")]
    pub resource_name: String,
    /// Signed [`crate::token::ContainerToken`]; the NM refuses to start the container without it.
    pub container_token: String,
}

/// Final status of a container, as given to its AM.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerStatus {
    pub container_id: ContainerId,
    pub state: NmContainerState,
    pub exit_status: i32,
    #[serde(default)]
    pub diagnostics: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AmCommand {
    /// The RM lost track of this AM (restart/failover): register again and re-send all asks.
    Resync,
    /// The attempt is over; exit.
    Shutdown,
}

/// YARN's PreemptionMessage: `strict` containers will be killed after the grace period; the
/// `contract` lists resources wanted back, which the AM may satisfy by releasing any containers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PreemptionMessage {
    #[serde(default)]
    pub strict: Vec<ContainerId>,
    #[serde(default)]
    pub contract_resources: Vec<ResourceRequest>,
    #[serde(default)]
    pub contract_containers: Vec<ContainerId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AllocateResponse {
    pub response_id: u64,
    #[serde(default)]
    pub allocated: Vec<Container>,
    #[serde(default)]
    pub completed: Vec<ContainerStatus>,
    /// Resources this app could still get (headroom).
    pub limit: Resource,
    pub num_cluster_nodes: u32,
    #[serde(default)]
    pub preemption: Option<PreemptionMessage>,
    #[serde(default)]
    pub am_command: Option<AmCommand>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinishAmRequest {
    pub final_status: FinalStatus,
    #[serde(default)]
    pub diagnostics: String,
    #[serde(default)]
    pub tracking_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinishAmResponse {
    pub is_unregistered: bool,
}

// ---------------------------------------------------------------------------------------------
// Container launch (anyone holding a container token → NodeManager)

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LocalResourceType {
    #[default]
    File,
    Archive,
    Pattern,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LocalResourceVisibility {
    Public,
    Private,
    #[default]
    Application,
}

/// A file made available in the container's work dir under its map key. Weft localizes local
/// paths and `file://` URLs (no distributed file system is assumed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LocalResource {
    /// Absolute path or `file://` URL.
    pub resource: String,
    #[serde(default, rename = "type")]
    pub kind: LocalResourceType,
    #[serde(default)]
    pub visibility: LocalResourceVisibility,
}

impl LocalResource {
    pub fn local_path(&self) -> Option<&str> {
        let p = self.resource.strip_prefix("file://").unwrap_or(&self.resource);
        p.starts_with('/').then_some(p)
    }
}

/// What to run. `commands` are joined with spaces and run by `bash -c`, with `<LOG_DIR>`
/// replaced by the container's log dir, `{{VAR}}` by `$VAR` and `<CPS>` by `:` (YARN's rules).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerLaunchContext {
    pub commands: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub local_resources: BTreeMap<String, LocalResource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StartContainerRequest {
    /// Signed container token; container id, user and resource come from it.
    pub container_token: String,
    pub launch_context: ContainerLaunchContext,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StopContainerRequest {
    /// The same container token used to start it proves the caller's right to stop it.
    pub container_token: String,
    /// Exit status to report if the stop kills it (e.g. KILLED_BY_APPMASTER). Defaults to ABORTED.
    #[serde(default)]
    pub exit_status: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_request_defaults() {
        let r: ResourceRequest =
            serde_json::from_str(r#"{"priority":1,"capability":{"memory":512,"vCores":1},"num_containers":2}"#)
                .unwrap();
        assert_eq!(r.resource_name, ANY);
        assert!(r.relax_locality);
    }

    #[test]
    fn node_registration_without_a_rack_is_accepted() {
        let r: RegisterNodeRequest = serde_json::from_str(
            r#"{"node_id":"n1:8042","http_address":"http://n1:8042","total":{"memory":1024,"vCores":1}}"#,
        )
        .unwrap();
        assert_eq!(r.rack, None);
        let with_rack = RegisterNodeRequest { rack: Some("/rack1".into()), ..r };
        let json = serde_json::to_string(&with_rack).unwrap();
        assert_eq!(serde_json::from_str::<RegisterNodeRequest>(&json).unwrap().rack.as_deref(), Some("/rack1"));
    }

    #[test]
    fn local_resource_paths() {
        let lr =
            |s: &str| LocalResource { resource: s.into(), kind: Default::default(), visibility: Default::default() };
        assert_eq!(lr("file:///a/b").local_path(), Some("/a/b"));
        assert_eq!(lr("/a/b").local_path(), Some("/a/b"));
        assert_eq!(lr("hdfs://nn/a").local_path(), None);
    }
}
