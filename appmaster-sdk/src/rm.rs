//! Clients' view of the ResourceManager: YARN's REST API under `/ws/v1/cluster`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use weft_common::rest::{
    AppAttemptInfo, AppAttemptsWrapper, AppInfo, AppStateBody, AppWrapper, ApplicationSubmissionContext, AppsWrapper,
    CLUSTER_PREFIX, ClusterInfo, ClusterInfoWrapper, ClusterMetrics, ClusterMetricsWrapper, ContainerInfo,
    ContainersWrapper, NewApplication, NodeInfo, NodeWrapper, NodesWrapper,
};
use weft_common::states::AppState;
use weft_common::{ApplicationId, ContainerId, NodeId};

use weft_client::{Endpoint, Request, RetryPolicy, http_client};
use weft_common::error::ErrorCode;

use crate::error::SdkError;
use crate::nm::{list_log_files, read_log_file};

const KILL_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Filters of `GET /ws/v1/cluster/apps`; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppsFilter {
    pub states: Vec<AppState>,
    pub queue: Option<String>,
    pub user: Option<String>,
    pub limit: Option<u32>,
    pub application_types: Vec<String>,
    pub application_tags: Vec<String>,
}

/// A client of the ResourceManager's REST API, acting as `user`. With several addresses (RM
/// high availability) it fails over to whichever answers.
pub struct RmClient {
    endpoint: Endpoint,
}

impl RmClient {
    pub fn new(addresses: Vec<String>, user: impl Into<String>) -> Result<Self, SdkError> {
        let endpoint = Endpoint::new(http_client()?, &addresses, RetryPolicy::default())?.with_user_name(user.into());
        Ok(Self { endpoint })
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.endpoint.set_policy(policy);
        self
    }

    pub async fn new_application(&self) -> Result<NewApplication, SdkError> {
        Ok(self.endpoint.call_json(&Request::post(&cluster_path("apps/new-application"))).await?)
    }

    /// Submits `context`, first obtaining an application id if it has none.
    pub async fn submit(&self, context: &ApplicationSubmissionContext) -> Result<ApplicationId, SdkError> {
        let mut context = context.clone();
        let id = match context.application_id {
            Some(id) => id,
            None => self.new_application().await?.application_id,
        };
        context.application_id = Some(id);
        let attempted = self.endpoint.execute(&Request::post(&cluster_path("apps")).json_body(&context)?).await;
        match attempted.result {
            Ok(_) => Ok(id),
            // An earlier try got through but its response was lost.
            Err(error) if attempted.attempts > 1 && error.code() == Some(ErrorCode::AppAlreadySubmitted) => Ok(id),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn app(&self, id: ApplicationId) -> Result<AppInfo, SdkError> {
        let wrapper: AppWrapper = self.endpoint.call_json(&Request::get(&cluster_path(&format!("apps/{id}")))).await?;
        Ok(wrapper.app)
    }

    pub async fn apps(&self, filter: &AppsFilter) -> Result<Vec<AppInfo>, SdkError> {
        let path = cluster_path("apps");
        let mut request = Request::get(&path);
        if !filter.states.is_empty() {
            request = request.query("states", join(filter.states.iter().map(AppState::as_str)));
        }
        if let Some(queue) = &filter.queue {
            request = request.query("queue", queue);
        }
        if let Some(user) = &filter.user {
            request = request.query("user", user);
        }
        if let Some(limit) = filter.limit {
            request = request.query("limit", limit.to_string());
        }
        if !filter.application_types.is_empty() {
            request = request.query("applicationTypes", join(filter.application_types.iter().map(String::as_str)));
        }
        if !filter.application_tags.is_empty() {
            request = request.query("applicationTags", join(filter.application_tags.iter().map(String::as_str)));
        }
        let wrapper: AppsWrapper = self.endpoint.call_json(&request).await?;
        Ok(wrapper.apps.app)
    }

    pub async fn attempts(&self, id: ApplicationId) -> Result<Vec<AppAttemptInfo>, SdkError> {
        let path = cluster_path(&format!("apps/{id}/appattempts"));
        let wrapper: AppAttemptsWrapper = self.endpoint.call_json(&Request::get(&path)).await?;
        Ok(wrapper.app_attempts.app_attempt)
    }

    /// Every container the RM knows for one attempt, completed ones included.
    pub async fn attempt_containers(&self, app: ApplicationId, attempt: &str) -> Result<Vec<ContainerInfo>, SdkError> {
        let path = cluster_path(&format!("apps/{app}/appattempts"));
        let request = Request::get(&path).segment(attempt).segment("containers");
        let wrapper: ContainersWrapper = self.endpoint.call_json(&request).await?;
        Ok(wrapper.containers.container)
    }

    /// Kills the application: the RM answers 202 while the kill is in progress, so this asks
    /// again until it answers 200 or the application has reached a final state. Returns the
    /// application as it is afterwards.
    pub async fn kill(&self, id: ApplicationId) -> Result<AppInfo, SdkError> {
        let path = cluster_path(&format!("apps/{id}/state"));
        let request = Request::put(&path).json_body(&AppStateBody { state: AppState::Killed, diagnostics: None })?;
        let started = Instant::now();
        loop {
            let reply = self.endpoint.call(&request).await?;
            let app = self.app(id).await?;
            if reply.status == StatusCode::OK || app.state.is_final() {
                return Ok(app);
            }
            let elapsed = started.elapsed();
            if elapsed >= self.endpoint.policy().deadline {
                return Err(SdkError::Incomplete { what: format!("killing {id}"), elapsed });
            }
            tokio::time::sleep(KILL_POLL_INTERVAL).await;
        }
    }

    /// The application as soon as it is in a final state, or as it is after `wait` (a
    /// long-poll: the RM answers the moment the application ends).
    pub async fn app_when_final(&self, id: ApplicationId, wait: Duration) -> Result<AppInfo, SdkError> {
        let path = cluster_path(&format!("apps/{id}"));
        let request = Request::get(&path).query("waitForFinalMs", wait.as_millis().to_string()).long_poll(wait);
        let wrapper: AppWrapper = self.endpoint.call_json(&request).await?;
        Ok(wrapper.app)
    }

    /// Follows the application until it reaches a final state, handing a report to `on_report`
    /// at least every `report_interval` (e.g. to show progress). Returns within moments of the
    /// end: each call is a long-poll the RM answers as soon as the application finishes.
    pub async fn wait_for_final(
        &self,
        id: ApplicationId,
        report_interval: Duration,
        mut on_report: impl FnMut(&AppInfo),
    ) -> Result<AppInfo, SdkError> {
        loop {
            let app = self.app_when_final(id, report_interval).await?;
            on_report(&app);
            if app.state.is_final() {
                return Ok(app);
            }
        }
    }

    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, SdkError> {
        let wrapper: NodesWrapper = self.endpoint.call_json(&Request::get(&cluster_path("nodes"))).await?;
        Ok(wrapper.nodes.node)
    }

    pub async fn node(&self, id: &NodeId) -> Result<NodeInfo, SdkError> {
        let path = cluster_path("nodes");
        let wrapper: NodeWrapper = self.endpoint.call_json(&Request::get(&path).segment(id.to_string())).await?;
        Ok(wrapper.node)
    }

    pub async fn cluster_info(&self) -> Result<ClusterInfo, SdkError> {
        let wrapper: ClusterInfoWrapper = self.endpoint.call_json(&Request::get(&cluster_path("info"))).await?;
        Ok(wrapper.cluster_info)
    }

    pub async fn cluster_metrics(&self) -> Result<ClusterMetrics, SdkError> {
        let wrapper: ClusterMetricsWrapper = self.endpoint.call_json(&Request::get(&cluster_path("metrics"))).await?;
        Ok(wrapper.cluster_metrics)
    }

    /// Names of a container's log files, from the NodeManager at `node_http_address`.
    pub async fn list_logs(&self, node_http_address: &str, container: ContainerId) -> Result<Vec<String>, SdkError> {
        list_log_files(&self.endpoint.sibling(node_http_address)?, container).await
    }

    /// One log file of a container, from the NodeManager at `node_http_address`.
    pub async fn container_logs(
        &self,
        node_http_address: &str,
        container: ContainerId,
        file: &str,
    ) -> Result<String, SdkError> {
        read_log_file(&self.endpoint.sibling(node_http_address)?, container, file).await
    }
}

fn cluster_path(rest: &str) -> String {
    format!("{CLUSTER_PREFIX}/{rest}")
}

fn join<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values.collect::<Vec<_>>().join(",")
}
