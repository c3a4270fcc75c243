//! Talking to NodeManagers: starting and stopping containers, reading their logs.

use serde::Deserialize;
use weft_common::ContainerId;
use weft_common::protocol::{
    Container, ContainerLaunchContext, ContainerReport, NM_CONTAINERS_PATH, StartContainerRequest, StopContainerRequest,
};

use weft_client::{ClientError, Endpoint, Request, RetryPolicy, http_client};

use crate::error::SdkError;

/// `GET …/containers/{id}/logs` body.
#[derive(Deserialize)]
struct LogFiles {
    files: Vec<String>,
}

pub(crate) async fn list_log_files(nm: &Endpoint, container: ContainerId) -> Result<Vec<String>, SdkError> {
    let path = format!("{NM_CONTAINERS_PATH}/{container}/logs");
    Ok(nm.call_json::<LogFiles>(&Request::get(&path)).await?.files)
}

pub(crate) async fn read_log_file(nm: &Endpoint, container: ContainerId, file: &str) -> Result<String, SdkError> {
    let path = format!("{NM_CONTAINERS_PATH}/{container}/logs");
    Ok(nm.call(&Request::get(&path).segment(file).accept_text()).await?.into_text())
}

/// An AM's client for the NodeManagers its containers were allocated on. Every call goes to the
/// container's own NM (`Container::node_http_address`) and proves its right with the container
/// token.
pub struct NmClient {
    http: reqwest::Client,
    policy: RetryPolicy,
}

impl NmClient {
    pub fn new() -> Result<Self, SdkError> {
        Ok(Self { http: http_client()?, policy: RetryPolicy::default() })
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub async fn start_container(
        &self,
        container: &Container,
        launch_context: ContainerLaunchContext,
    ) -> Result<ContainerReport, SdkError> {
        let nm = self.endpoint(container)?;
        let body = StartContainerRequest { container_token: container.container_token.clone(), launch_context };
        let attempted = nm.execute(&Request::post(NM_CONTAINERS_PATH).json_body(&body)?).await;
        match attempted.result {
            Ok(reply) => Ok(reply.json()?),
            // A retry refused after an earlier try's response was lost: that try may have
            // started the container, in which case the NM knows it.
            Err(error @ ClientError::Remote { .. }) if attempted.attempts > 1 => {
                self.container_status(container).await.map_err(|_| error.into())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Stops the container; `exit_status` is what gets reported for it (the NM defaults to
    /// ABORTED; AMs usually pass `KILLED_BY_APPMASTER`).
    pub async fn stop_container(
        &self,
        container: &Container,
        exit_status: Option<i32>,
    ) -> Result<ContainerReport, SdkError> {
        let path = format!("{NM_CONTAINERS_PATH}/{}/stop", container.id);
        let body = StopContainerRequest { container_token: container.container_token.clone(), exit_status };
        Ok(self.endpoint(container)?.call_json(&Request::post(&path).json_body(&body)?).await?)
    }

    pub async fn container_status(&self, container: &Container) -> Result<ContainerReport, SdkError> {
        let path = format!("{NM_CONTAINERS_PATH}/{}", container.id);
        Ok(self.endpoint(container)?.call_json(&Request::get(&path)).await?)
    }

    /// Names of the container's log files (e.g. `stdout`, `stderr`).
    pub async fn list_logs(&self, container: &Container) -> Result<Vec<String>, SdkError> {
        list_log_files(&self.endpoint(container)?, container.id).await
    }

    pub async fn container_log(&self, container: &Container, file: &str) -> Result<String, SdkError> {
        read_log_file(&self.endpoint(container)?, container.id, file).await
    }

    fn endpoint(&self, container: &Container) -> Result<Endpoint, SdkError> {
        Ok(Endpoint::new(self.http.clone(), std::slice::from_ref(&container.node_http_address), self.policy)?)
    }
}
