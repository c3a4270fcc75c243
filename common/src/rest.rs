//! Bodies of the YARN-compatible REST API under `/ws/v1/cluster`, with YARN's field names.
//! Weft always emits real arrays (`{"apps":{"app":[]}}`), never YARN's `null` for empty lists;
//! when reading, both are accepted.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::protocol::{LocalResource, LocalResourceType, LocalResourceVisibility};
use crate::states::{AppState, AttemptState, FinalStatus, NmContainerState, NodeState};
use crate::{ApplicationId, ContainerId, Resource};

pub const CLUSTER_PREFIX: &str = "/ws/v1/cluster";
/// `GET`: this RM's high-availability state ([`HaStateInfo`]). Never redirected by a standby.
pub const HA_STATE_PATH: &str = "/ws/v1/ha/state";
/// `POST`: planned handover; the active becomes standby (answers [`HaStateInfo`] afterwards).
pub const HA_TRANSITION_TO_STANDBY_PATH: &str = "/ws/v1/ha/transition-to-standby";

/// `POST /ws/v1/cluster/apps/new-application` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewApplication {
    #[serde(rename = "application-id")]
    pub application_id: ApplicationId,
    #[serde(rename = "maximum-resource-capability")]
    pub maximum_resource_capability: Resource,
}

/// `POST /ws/v1/cluster/apps` body (YARN's application-submission-context). Unknown YARN fields
/// (credentials, log aggregation, …) are accepted and ignored so existing clients keep working.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct ApplicationSubmissionContext {
    pub application_id: Option<ApplicationId>,
    #[serde(default)]
    pub application_name: Option<String>,
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub am_container_spec: AmContainerSpec,
    #[serde(default)]
    pub max_app_attempts: Option<u32>,
    #[serde(default)]
    pub resource: Option<Resource>,
    #[serde(default)]
    pub application_type: Option<String>,
    #[serde(default)]
    pub application_tags: Option<Tags>,
    #[serde(default, rename = "unmanaged-AM")]
    pub unmanaged_am: bool,
    #[serde(default)]
    pub keep_containers_across_application_attempts: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct AmContainerSpec {
    #[serde(default)]
    pub local_resources: Option<Entries<LocalResourceInfo>>,
    #[serde(default)]
    pub environment: Option<Entries<String>>,
    #[serde(default)]
    pub commands: Option<Commands>,
}

/// YARN's `{"entry":[{"key":…,"value":…}]}` map encoding. A lone object instead of an array is
/// accepted, as XML-converted clients send it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct Entries<V> {
    #[serde(deserialize_with = "one_or_many")]
    pub entry: Vec<Entry<V>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry<V> {
    pub key: String,
    pub value: V,
}

impl<V: Clone> Entries<V> {
    pub fn from_map(map: &BTreeMap<String, V>) -> Self {
        Self { entry: map.iter().map(|(k, v)| Entry { key: k.clone(), value: v.clone() }).collect() }
    }

    pub fn to_map(&self) -> BTreeMap<String, V> {
        self.entry.iter().map(|e| (e.key.clone(), e.value.clone())).collect()
    }
}

/// `{"command": "…"}` or `{"command": ["…", "…"]}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Commands {
    #[serde(deserialize_with = "one_or_many")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LocalResourceInfo {
    pub resource: String,
    #[serde(default, rename = "type")]
    pub kind: LocalResourceType,
    #[serde(default)]
    pub visibility: LocalResourceVisibility,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub timestamp: Option<i64>,
}

impl From<&LocalResourceInfo> for LocalResource {
    fn from(i: &LocalResourceInfo) -> Self {
        LocalResource { resource: i.resource.clone(), kind: i.kind, visibility: i.visibility }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tags {
    #[serde(default, deserialize_with = "one_or_many")]
    pub tag: Vec<String>,
}

fn one_or_many<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
        Null(()),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(t) => vec![t],
        OneOrMany::Null(()) => Vec::new(),
    })
}

/// One application (`GET /ws/v1/cluster/apps/{id}` → `{"app": AppInfo}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub id: ApplicationId,
    pub user: String,
    pub name: String,
    pub queue: String,
    pub state: AppState,
    pub final_status: FinalStatus,
    pub progress: f32,
    #[serde(rename = "trackingUI")]
    pub tracking_ui: String,
    #[serde(default)]
    pub tracking_url: String,
    pub diagnostics: String,
    pub cluster_id: u64,
    pub application_type: String,
    /// Comma-separated, as YARN prints it.
    pub application_tags: String,
    pub priority: i32,
    pub started_time: u64,
    pub launch_time: u64,
    pub finished_time: u64,
    pub elapsed_time: u64,
    #[serde(default)]
    pub am_container_logs: String,
    #[serde(default)]
    pub am_host_http_address: String,
    #[serde(rename = "amRPCAddress", default)]
    pub am_rpc_address: String,
    #[serde(rename = "allocatedMB")]
    pub allocated_mb: i64,
    #[serde(rename = "allocatedVCores")]
    pub allocated_vcores: i64,
    #[serde(rename = "reservedMB")]
    pub reserved_mb: i64,
    #[serde(rename = "reservedVCores")]
    pub reserved_vcores: i64,
    /// -1 once the app has finished, as YARN reports.
    pub running_containers: i64,
    pub memory_seconds: u64,
    pub vcore_seconds: u64,
    pub queue_usage_percentage: f64,
    pub cluster_usage_percentage: f64,
    #[serde(rename = "preemptedResourceMB")]
    pub preempted_resource_mb: u64,
    #[serde(rename = "preemptedResourceVCores")]
    pub preempted_resource_vcores: u64,
    #[serde(rename = "numNonAMContainerPreempted")]
    pub num_non_am_container_preempted: u64,
    #[serde(rename = "numAMContainerPreempted")]
    pub num_am_container_preempted: u64,
    pub log_aggregation_status: String,
    pub unmanaged_application: bool,
    pub max_app_attempts: u32,
    #[serde(default)]
    pub resource_requests: Vec<ResourceRequestInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequestInfo {
    pub capability: ResourceInfo,
    pub num_containers: u32,
    pub priority: PriorityInfo,
    pub relax_locality: bool,
    pub resource_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PriorityInfo {
    pub priority: i32,
}

/// `{"memory":…, "virtualCores":…}` as used inside resource requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub memory: u64,
    pub virtual_cores: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppWrapper {
    pub app: AppInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppsWrapper {
    #[serde(deserialize_with = "null_as_default")]
    pub apps: AppList,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AppList {
    #[serde(default, deserialize_with = "one_or_many")]
    pub app: Vec<AppInfo>,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET|PUT /ws/v1/cluster/apps/{id}/state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppStateBody {
    pub state: AppState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppAttemptInfo {
    /// Attempt number.
    pub id: u32,
    pub app_attempt_id: String,
    pub node_id: String,
    pub node_http_address: String,
    pub start_time: u64,
    pub finished_time: u64,
    pub container_id: String,
    pub logs_link: String,
    pub blacklisted_nodes: String,
    pub app_attempt_state: AttemptState,
    #[serde(default)]
    pub diagnostics: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppAttemptsWrapper {
    pub app_attempts: AppAttemptList,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppAttemptList {
    #[serde(default, deserialize_with = "one_or_many")]
    pub app_attempt: Vec<AppAttemptInfo>,
}

/// One container of an attempt (`…/apps/{id}/appattempts/{attempt}/containers`), in YARN's
/// container-report shape; completed containers are listed too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInfo {
    pub container_id: ContainerId,
    #[serde(rename = "allocatedMB")]
    pub allocated_mb: u64,
    #[serde(rename = "allocatedVCores")]
    pub allocated_vcores: u32,
    pub assigned_node_id: String,
    pub node_id: String,
    pub node_http_address: String,
    pub priority: i32,
    pub started_time: u64,
    pub finished_time: u64,
    pub elapsed_time: u64,
    pub log_url: String,
    /// The exit status once complete, `INVALID` (-1000) while running.
    pub container_exit_status: i32,
    /// `RUNNING` or `COMPLETE`.
    pub container_state: NmContainerState,
    #[serde(default)]
    pub diagnostics_info: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainersWrapper {
    #[serde(deserialize_with = "null_as_default")]
    pub containers: ContainerList,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerList {
    #[serde(default, deserialize_with = "one_or_many")]
    pub container: Vec<ContainerInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub rack: String,
    pub state: NodeState,
    pub id: String,
    pub node_host_name: String,
    #[serde(rename = "nodeHTTPAddress")]
    pub node_http_address: String,
    pub last_health_update: u64,
    pub version: String,
    pub health_report: String,
    pub num_containers: u32,
    #[serde(rename = "usedMemoryMB")]
    pub used_memory_mb: u64,
    #[serde(rename = "availMemoryMB")]
    pub avail_memory_mb: u64,
    pub used_virtual_cores: u32,
    pub available_virtual_cores: u32,
    pub total_resource: Resource,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeWrapper {
    pub node: NodeInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodesWrapper {
    #[serde(deserialize_with = "null_as_default")]
    pub nodes: NodeList,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeList {
    #[serde(default, deserialize_with = "one_or_many")]
    pub node: Vec<NodeInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfoWrapper {
    pub cluster_info: ClusterInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub id: u64,
    pub started_on: u64,
    pub state: String,
    pub ha_state: String,
    pub rm_state_store_name: String,
    pub resource_manager_version: String,
    pub resource_manager_build_version: String,
    pub resource_manager_version_built_on: String,
    pub ha_zoo_keeper_connection_state: String,
    /// Weft's fencing epoch of the active RM.
    pub rm_epoch: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMetricsWrapper {
    pub cluster_metrics: ClusterMetrics,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMetrics {
    pub apps_submitted: u64,
    pub apps_completed: u64,
    pub apps_pending: u64,
    pub apps_running: u64,
    pub apps_failed: u64,
    pub apps_killed: u64,
    #[serde(rename = "reservedMB")]
    pub reserved_mb: u64,
    #[serde(rename = "availableMB")]
    pub available_mb: u64,
    #[serde(rename = "allocatedMB")]
    pub allocated_mb: u64,
    #[serde(rename = "totalMB")]
    pub total_mb: u64,
    pub reserved_virtual_cores: u64,
    pub available_virtual_cores: u64,
    pub allocated_virtual_cores: u64,
    pub total_virtual_cores: u64,
    pub containers_allocated: u64,
    pub containers_reserved: u64,
    pub containers_pending: u64,
    pub total_nodes: u64,
    pub active_nodes: u64,
    pub lost_nodes: u64,
    pub unhealthy_nodes: u64,
    pub decommissioning_nodes: u64,
    pub decommissioned_nodes: u64,
    pub rebooted_nodes: u64,
    pub shutdown_nodes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_context_accepts_yarn_shapes() {
        let body = r#"{
          "application-id":"application_1404203615263_0001","application-name":"test","queue":"default",
          "priority":3,"max-app-attempts":2,"resource":{"memory":1024,"vCores":1},
          "application-type":"YARN","unmanaged-AM":false,
          "application-tags":{"tag":["tag1","tag 2"]},
          "am-container-spec":{
            "local-resources":{"entry":{"key":"AppMaster.jar","value":{"resource":"file:///x/AppMaster.jar","type":"FILE","visibility":"APPLICATION","size":43004,"timestamp":1405452071209}}},
            "environment":{"entry":[{"key":"A","value":"1"}]},
            "commands":{"command":"echo hi"},
            "credentials":{"tokens":{},"secrets":{}}
          },
          "log-aggregation-context":{"log-include-pattern":"x"}
        }"#;
        let ctx: ApplicationSubmissionContext = serde_json::from_str(body).unwrap();
        assert_eq!(ctx.am_container_spec.commands.unwrap().command, vec!["echo hi"]);
        assert_eq!(ctx.am_container_spec.local_resources.unwrap().entry.len(), 1);
        assert_eq!(ctx.application_tags.unwrap().tag, vec!["tag1", "tag 2"]);
    }

    #[test]
    fn null_lists_read_as_empty() {
        let w: AppsWrapper = serde_json::from_str(r#"{"apps":null}"#).unwrap();
        assert!(w.apps.app.is_empty());
        let w: NodesWrapper = serde_json::from_str(r#"{"nodes":{"node":[]}}"#).unwrap();
        assert!(w.nodes.node.is_empty());
        let w: ContainersWrapper = serde_json::from_str(r#"{"containers":null}"#).unwrap();
        assert!(w.containers.container.is_empty());
    }
}

/// What `GET /ws/v1/ha/state` answers (`weft rmadmin get-state`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HaStateInfo {
    /// `ACTIVE` or `STANDBY` (YARN's HAServiceState names).
    pub ha_state: String,
    pub ha_enabled: bool,
    /// This RM's address.
    pub rm_address: String,
    /// The active RM's address, if known.
    pub active_address: Option<String>,
    /// This RM's epoch while active, else the active's epoch as last seen.
    pub epoch: Option<u32>,
}
