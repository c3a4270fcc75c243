//! A client for the NodeManager's HTTP API.

use reqwest::StatusCode;
use weft_common::ContainerId;
use weft_common::error::ErrorBody;
use weft_common::protocol::{ContainerReport, StartContainerRequest, StopContainerRequest};
use weft_nodemanager::NodeManagerHandle;

/// The NM's HTTP API, as tests call it.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn new(nm: &NodeManagerHandle) -> Self {
        Self { http: reqwest::Client::new(), base: format!("http://{}", nm.http_addr()) }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    pub async fn post(&self, path: &str, body: &impl serde::Serialize) -> (StatusCode, String) {
        let response = self.http.post(format!("{}{path}", self.base)).json(body).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    pub async fn start(&self, request: &StartContainerRequest) -> ContainerReport {
        let (status, body) = self.post("/ws/v1/node/containers", request).await;
        assert_eq!(status, StatusCode::OK, "start: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub async fn stop(&self, id: ContainerId, request: &StopContainerRequest) -> (StatusCode, String) {
        self.post(&format!("/ws/v1/node/containers/{id}/stop"), request).await
    }

    pub async fn report(&self, id: ContainerId) -> ContainerReport {
        self.get_json(&format!("/ws/v1/node/containers/{id}")).await
    }
}

/// The stable code of an error body (which must carry a hint).
pub fn error_code(body: &str) -> String {
    let error: ErrorBody = serde_json::from_str(body).unwrap_or_else(|e| panic!("not an ErrorBody ({e}): {body}"));
    assert!(!error.remote_exception.hint.is_empty(), "errors carry a hint: {body}");
    error.remote_exception.code
}
