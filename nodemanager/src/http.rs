//! The NM's HTTP API: container start/stop/status, logs, node info and metrics.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tower_http::trace::TraceLayer;
use weft_common::error::{ErrorBody, ErrorCode};
use weft_common::protocol::{ContainerReport, NM_CONTAINERS_PATH, StartContainerRequest, StopContainerRequest};
use weft_common::states::NmContainerState;
use weft_common::token::TokenError;
use weft_common::{ContainerId, NodeId, Resource};

use crate::NmError;
use crate::containers::ContainerManager;

pub const NODE_INFO_PATH: &str = "/ws/v1/node/info";
const LOG_CHUNK_BYTES: usize = 64 * 1024;

/// `GET /ws/v1/node/info`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeInfo {
    pub node_id: NodeId,
    pub http_address: String,
    pub total: Resource,
    /// Resources of containers that are launching or running.
    pub used: Resource,
    pub isolation: String,
    /// Containers this node remembers: live ones, and completed ones until their retention
    /// (`containers.retain-completed-ms` after the RM recorded them) ended.
    pub containers: usize,
    pub running_containers: usize,
    /// True once the RM handed out container token keys.
    pub registered: bool,
    pub version: String,
}

/// `GET /ws/v1/node/containers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerList {
    pub containers: Vec<ContainerReport>,
}

/// `GET /ws/v1/node/containers/{id}/logs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogFileList {
    pub files: Vec<String>,
}

pub(crate) struct ApiState {
    pub manager: ContainerManager,
    pub registry: Registry,
    pub http_address: String,
    pub total: Resource,
}

pub(crate) fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(NM_CONTAINERS_PATH, post(start_container).get(list_containers))
        .route(&format!("{NM_CONTAINERS_PATH}/{{id}}"), get(get_container))
        .route(&format!("{NM_CONTAINERS_PATH}/{{id}}/stop"), post(stop_container))
        .route(&format!("{NM_CONTAINERS_PATH}/{{id}}/logs"), get(list_logs))
        .route(&format!("{NM_CONTAINERS_PATH}/{{id}}/logs/{{file}}"), get(read_log))
        .route(NODE_INFO_PATH, get(node_info))
        .route("/metrics", get(metrics))
        .fallback(unknown_endpoint)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// An [`NmError`] rendered as an HTTP error with an [`ErrorBody`].
pub(crate) struct ApiError(NmError);

impl From<NmError> for ApiError {
    fn from(e: NmError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.0.to_string();
        let code = match &self.0 {
            NmError::InvalidToken(TokenError::WrongSubject { .. }) | NmError::TokenForOtherContainer { .. } => {
                // A genuine token for another container or node: forbidden, not unauthenticated.
                let body = ErrorBody::new(
                    "ForbiddenException",
                    ErrorCode::NmInvalidToken.as_str(),
                    message,
                    "use the container token the RM issued for this container on this node",
                );
                return (StatusCode::FORBIDDEN, Json(body)).into_response();
            }
            NmError::InvalidToken(_) => ErrorCode::NmInvalidToken,
            NmError::NotRegistered => ErrorCode::NmNotReady,
            NmError::ShuttingDown => ErrorCode::NmShuttingDown,
            NmError::ContainerNotFound(_) => ErrorCode::NmContainerNotFound,
            NmError::LogNotFound { .. } => ErrorCode::NmLogNotFound,
            NmError::DuplicateContainer(_) => ErrorCode::NmDuplicateContainer,
            NmError::ApplicationFinished(_) => ErrorCode::NmAppFinished,
            NmError::BadRequest(_) => ErrorCode::NmBadRequest,
            NmError::LaunchFailed { .. } => ErrorCode::NmLaunchFailed,
            _ => ErrorCode::NmInternal,
        };
        error_response(code, message)
    }
}

/// The HTTP answer for `code`; whether to retry is the code's to say (no `Retry-After`).
fn error_response(code: ErrorCode, message: String) -> Response {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(code.body(message))).into_response()
}

type ApiResult<T> = Result<T, ApiError>;

fn parse_container_id(raw: &str) -> Result<ContainerId, ApiError> {
    raw.parse().map_err(|e: weft_common::IdParseError| ApiError(NmError::BadRequest(e.to_string())))
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(|e| ApiError(NmError::BadRequest(e.body_text())))
}

async fn start_container(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<StartContainerRequest>, JsonRejection>,
) -> ApiResult<Json<ContainerReport>> {
    Ok(Json(state.manager.start_container(json_body(body)?).await?))
}

async fn stop_container(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    body: Result<Json<StopContainerRequest>, JsonRejection>,
) -> ApiResult<Json<ContainerReport>> {
    let id = parse_container_id(&id)?;
    Ok(Json(state.manager.stop_container(id, json_body(body)?).await?))
}

async fn list_containers(State(state): State<Arc<ApiState>>) -> Json<ContainerList> {
    Json(ContainerList { containers: state.manager.reports() })
}

async fn get_container(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult<Json<ContainerReport>> {
    Ok(Json(state.manager.report(parse_container_id(&id)?)?))
}

async fn list_logs(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> ApiResult<Json<LogFileList>> {
    Ok(Json(LogFileList { files: state.manager.log_files(parse_container_id(&id)?)? }))
}

/// Streams the file, so large logs need no memory.
async fn read_log(State(state): State<Arc<ApiState>>, Path((id, file)): Path<(String, String)>) -> ApiResult<Response> {
    let file = state.manager.open_log(parse_container_id(&id)?, &file)?;
    let chunks = futures::stream::unfold(Some(tokio::fs::File::from_std(file)), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; LOG_CHUNK_BYTES];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from_stream(chunks)).into_response())
}

async fn node_info(State(state): State<Arc<ApiState>>) -> Json<NodeInfo> {
    Json(NodeInfo {
        node_id: state.manager.node_id().clone(),
        http_address: state.http_address.clone(),
        total: state.total,
        used: state.manager.allocated(),
        isolation: state.manager.isolation_mode().to_string(),
        containers: state.manager.remembered(),
        running_containers: state
            .manager
            .live_reports()
            .iter()
            .filter(|r| r.state == NmContainerState::Running)
            .count(),
        registered: state.manager.has_token_keys(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(e) => ApiError(NmError::Task(format!("cannot encode metrics: {e}"))).into_response(),
    }
}

async fn unknown_endpoint() -> Response {
    error_response(ErrorCode::NmNoSuchEndpoint, "no such endpoint".to_owned())
}
