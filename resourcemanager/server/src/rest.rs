//! HTTP routes: the YARN-compatible REST API under `/ws/v1/cluster`, the NM and AM protocols
//! under `/ws/v1/weft`, and `/metrics`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use weft_common::error::{ErrorBody, ErrorCode};
use weft_common::protocol::{AM_ALLOCATE_PATH, AM_FINISH_PATH, AM_REGISTER_PATH, NM_HEARTBEAT_PATH, NM_REGISTER_PATH};
use weft_common::rest::{
    AppAttemptList, AppAttemptsWrapper, AppList, AppStateBody, AppWrapper, ApplicationSubmissionContext, AppsWrapper,
    ClusterInfo, ClusterInfoWrapper, ClusterMetricsWrapper, ContainerList, ContainersWrapper, NodeList, NodeWrapper,
    NodesWrapper,
};
use weft_common::states::{AppState as YarnAppState, FinalStatus, NodeState};
use weft_common::token::{self, AmToken, MasterKey};
use weft_common::{ApplicationId, AttemptId, NodeId};

use super::metrics::RmMetrics;
use super::{CoreGone, CoreHandle, now_ms, scheduler_view, views};
use weft_rm_core::queues::{QueueIndex, QueueTree};
use weft_rm_core::{CoreError, Event, Reply};

#[derive(Clone)]
pub(super) struct ServerState {
    pub(super) core: CoreHandle,
    pub(super) am_token_keys: Arc<Vec<MasterKey>>,
    pub(super) metrics: Arc<RmMetrics>,
    pub(super) registry: Arc<Registry>,
    pub(super) started_on: u64,
    pub(super) epoch: u32,
    pub(super) ha_enabled: bool,
    pub(super) store_name: &'static str,
    pub(super) rm_address: String,
    /// The queues file `weft queue reload` re-reads (None: FIFO without a file).
    pub(super) queues_file: Option<std::path::PathBuf>,
    /// Apps as they reach a final state (durably), for `GET /apps/{id}?waitForFinalMs=`.
    pub(super) finished_apps: tokio::sync::broadcast::Sender<ApplicationId>,
}

/// Largest request body accepted (a submission with a big environment still fits).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub(super) fn router(state: ServerState) -> Router {
    let cluster = Router::new()
        .route("/ws/v1/cluster", get(cluster_info))
        .route("/ws/v1/cluster/info", get(cluster_info))
        .route("/ws/v1/cluster/metrics", get(cluster_metrics))
        .route("/ws/v1/cluster/scheduler", get(scheduler))
        .route("/ws/v1/weft/queues", get(weft_queues))
        .route("/ws/v1/weft/queues/reload", post(reload_queues))
        .route("/ws/v1/cluster/apps/{id}/queue", get(get_app_queue).put(put_app_queue))
        .route("/ws/v1/cluster/apps/{id}/priority", get(get_app_priority).put(put_app_priority))
        .route("/ws/v1/cluster/apps", get(list_apps).post(submit))
        .route("/ws/v1/cluster/apps/new-application", post(new_application))
        .route("/ws/v1/cluster/apps/{id}", get(get_app))
        .route("/ws/v1/cluster/apps/{id}/state", get(get_app_state).put(put_app_state))
        .route("/ws/v1/cluster/apps/{id}/appattempts", get(app_attempts))
        .route("/ws/v1/cluster/apps/{id}/appattempts/{attempt}/containers", get(attempt_containers))
        .route("/ws/v1/cluster/nodes", get(list_nodes))
        .route("/ws/v1/cluster/nodes/{id}", get(get_node))
        .layer(middleware::from_fn(json_only));
    Router::new()
        .merge(cluster)
        .route(NM_REGISTER_PATH, post(nm_register))
        .route(NM_HEARTBEAT_PATH, post(nm_heartbeat))
        .route(AM_REGISTER_PATH, post(am_register))
        .route(AM_ALLOCATE_PATH, post(am_allocate))
        .route(AM_FINISH_PATH, post(am_finish))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// An error answered as YARN's `RemoteException` body with Weft's code and hint.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_hint(code, message, code.default_hint())
    }

    fn with_hint(code: ErrorCode, message: impl Into<String>, hint: &str) -> Self {
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self { status, body: code.body_with_hint(message, hint) }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<CoreGone> for ApiError {
    fn from(e: CoreGone) -> Self {
        Self::new(ErrorCode::RmShuttingDown, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.body, "request failed");
        }
        (self.status, axum::Json(self.body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn json<T: Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}

/// Parses a JSON body, naming the offending field path in the error.
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." { String::new() } else { format!("field `{path}`: ") };
        ApiError::new(ErrorCode::BodyInvalid, format!("invalid JSON body: {at}{inner}"))
    })
}

/// YARN serves JSON unless XML is explicitly preferred; Weft serves only JSON and says so.
async fn json_only(req: Request, next: Next) -> Response {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let wants_only_xml = accept.contains("xml") && !accept.contains("json") && !accept.contains("*/*");
    if wants_only_xml {
        return ApiError::new(ErrorCode::XmlUnsupported, "only application/json is served").into_response();
    }
    next.run(req).await
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::PathNotFound, "no such resource")
}

fn parse_app_id(raw: &str) -> ApiResult<ApplicationId> {
    if raw.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::AppNotFound, format!("appId, {raw}, is empty or null")));
    }
    raw.parse().map_err(|e: weft_common::IdParseError| ApiError::new(ErrorCode::AppIdInvalid, e.to_string()))
}

/// The caller named by `?user.name=`; write endpoints need one (YARN's pseudo authentication).
fn caller(query: &HashMap<String, String>) -> ApiResult<String> {
    query
        .get("user.name")
        .filter(|u| !u.trim().is_empty())
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorCode::UserMissing, "Unable to obtain user name, user not authenticated"))
}

/// Sends an event to the core and answers with its `Reply::$variant` as JSON (or its error).
macro_rules! answer {
    ($state:expr, $variant:ident, $make:expr) => {
        match $state.core.request($make).await? {
            Reply::$variant(Ok(r)) => Ok(json(r)),
            Reply::$variant(Err(e)) => Err(e.into()),
            other => Err(unexpected(other)),
        }
    };
}

fn unexpected(reply: Reply) -> ApiError {
    ApiError::from(CoreError::Internal(format!("unexpected reply {reply:?}")))
}

// ---------------------------------------------------------------------------------------------
// Cluster.

async fn cluster_info(State(s): State<ServerState>) -> Response {
    json(ClusterInfoWrapper {
        cluster_info: ClusterInfo {
            id: s.started_on,
            started_on: s.started_on,
            state: "STARTED".into(),
            ha_state: "ACTIVE".into(),
            rm_state_store_name: s.store_name.into(),
            resource_manager_version: env!("CARGO_PKG_VERSION").into(),
            resource_manager_build_version: format!("weft {}", env!("CARGO_PKG_VERSION")),
            resource_manager_version_built_on: String::new(),
            ha_zoo_keeper_connection_state: if s.ha_enabled {
                super::ha::ELECTION_DESCRIPTION.into()
            } else {
                "ResourceManager HA is not enabled.".into()
            },
            rm_epoch: s.epoch,
        },
    })
}

async fn cluster_metrics(State(s): State<ServerState>) -> ApiResult<Response> {
    let cluster_metrics = s.core.inspect(views::cluster_metrics).await?;
    Ok(json(ClusterMetricsWrapper { cluster_metrics }))
}

async fn scheduler(State(s): State<ServerState>) -> ApiResult<Response> {
    Ok(json(s.core.inspect(scheduler_view::scheduler_info).await?))
}

/// `POST /ws/v1/weft/queues/reload`: re-reads the queues file and switches to it atomically.
async fn reload_queues(State(s): State<ServerState>, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    let user = caller(&q)?;
    let Some(path) = s.queues_file.clone() else {
        return Err(ApiError::new(ErrorCode::QueueNoFile, "this ResourceManager runs without a queues file"));
    };
    let config = weft_rm_core::queues::QueuesConfig::load(&path)
        .map_err(|e| ApiError::new(ErrorCode::QueueReloadRefused, format!("{e:#}")))?;
    match s
        .core
        .request(move |req| Event::ReloadQueues { req, config: Box::new(config), requested_by: Some(user) })
        .await?
    {
        Reply::ReloadQueues(Ok(plan)) => Ok(json(serde_json::json!({
            "reloaded": path.display().to_string(),
            "added": plan.added,
            "removed": plan.removed,
            "changed": plan.changed.iter().map(|c| serde_json::json!({"path": c.path, "fields": c.fields})).collect::<Vec<_>>(),
            "globalChanges": plan.global_changes,
        }))),
        Reply::ReloadQueues(Err(e)) => Err(e.into()),
        other => Err(unexpected(other)),
    }
}

#[derive(serde::Deserialize, Serialize)]
struct QueueBody {
    queue: String,
}

#[derive(serde::Deserialize, Serialize)]
struct PriorityBody {
    priority: i32,
}

async fn get_app_queue(State(s): State<ServerState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_app_id(&id)?;
    let queue = s.core.inspect(move |core| core.app(id).map(|a| a.queue().to_owned())).await?;
    Ok(json(QueueBody { queue: queue.ok_or(CoreError::UnknownApp(id))? }))
}

async fn put_app_queue(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller(&q)?;
    let id = parse_app_id(&id)?;
    let QueueBody { queue } = parse_body(&body)?;
    s.core.inspect(move |core| core.may_modify(id, &user)).await??;
    match s.core.request(move |req| Event::MoveApp { req, app: id, queue }).await? {
        Reply::MoveApp(Ok(queue)) => Ok(json(QueueBody { queue })),
        Reply::MoveApp(Err(e)) => Err(e.into()),
        other => Err(unexpected(other)),
    }
}

async fn get_app_priority(State(s): State<ServerState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_app_id(&id)?;
    let priority = s.core.inspect(move |core| core.app(id).map(|a| a.priority())).await?;
    Ok(json(PriorityBody { priority: priority.ok_or(CoreError::UnknownApp(id))? }))
}

async fn put_app_priority(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller(&q)?;
    let id = parse_app_id(&id)?;
    let PriorityBody { priority } = parse_body(&body)?;
    s.core.inspect(move |core| core.may_modify(id, &user)).await??;
    match s.core.request(move |req| Event::SetPriority { req, app: id, priority }).await? {
        Reply::SetPriority(Ok(priority)) => Ok(json(PriorityBody { priority })),
        Reply::SetPriority(Err(e)) => Err(e.into()),
        other => Err(unexpected(other)),
    }
}

async fn weft_queues(State(s): State<ServerState>) -> ApiResult<Response> {
    Ok(json(s.core.inspect(scheduler_view::queue_list).await?))
}

async fn prometheus(State(s): State<ServerState>) -> ApiResult<Response> {
    let metrics = s.metrics.clone();
    s.core.inspect(move |core| metrics.refresh(core)).await?;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &s.registry)
        .map_err(|e| CoreError::Internal(format!("metrics encoding: {e}")))?;
    let content_type = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

// ---------------------------------------------------------------------------------------------
// Applications.

/// The `GET /apps` filters, parsed with YARN's rules (invalid values are 400s).
struct AppFilter {
    states: Option<Vec<YarnAppState>>,
    final_status: Option<FinalStatus>,
    user: Option<String>,
    queue: Option<String>,
    limit: Option<usize>,
    types: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    name: Option<String>,
    started: (u64, u64),
    finished: (u64, u64),
}

fn list_param(q: &HashMap<String, String>, key: &str) -> Option<Vec<String>> {
    q.get(key).map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

fn time_range(q: &HashMap<String, String>, begin: &str, end: &str) -> ApiResult<(u64, u64)> {
    let parse = |key: &str, default: u64| -> ApiResult<u64> {
        match q.get(key) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map_err(|_| {
                ApiError::new(
                    ErrorCode::QueryInvalid,
                    format!("{key} must be a non-negative number of milliseconds, got {v:?}"),
                )
            }),
        }
    };
    let (b, e) = (parse(begin, 0)?, parse(end, u64::MAX)?);
    if b > e {
        return Err(ApiError::new(ErrorCode::QueryInvalid, format!("{begin} must not be greater than {end}")));
    }
    Ok((b, e))
}

impl AppFilter {
    fn parse(q: &HashMap<String, String>) -> ApiResult<Self> {
        let invalid = |m: String| ApiError::with_hint(ErrorCode::QueryInvalid, m, "see YARN's apps query parameters");
        let mut states = Vec::new();
        for raw in list_param(q, "states").into_iter().chain(list_param(q, "state")).flatten() {
            states.push(raw.parse::<YarnAppState>().map_err(invalid)?);
        }
        let final_status = q.get("finalStatus").map(|v| v.parse::<FinalStatus>()).transpose().map_err(invalid)?;
        let limit = match q.get("limit") {
            None => None,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(invalid(format!("limit must be a positive number, got {v:?}"))),
            },
        };
        Ok(Self {
            states: (!states.is_empty()).then_some(states),
            final_status,
            user: q.get("user").cloned(),
            queue: q.get("queue").cloned(),
            limit,
            types: list_param(q, "applicationTypes").map(|v| v.into_iter().map(|t| t.to_ascii_lowercase()).collect()),
            tags: list_param(q, "applicationTags").map(|v| v.into_iter().map(|t| t.to_ascii_lowercase()).collect()),
            name: q.get("name").cloned(),
            started: time_range(q, "startedTimeBegin", "startedTimeEnd")?,
            finished: time_range(q, "finishedTimeBegin", "finishedTimeEnd")?,
        })
    }

    /// `queue`: the queue the `queue` parameter names (resolved by the caller).
    fn matches(&self, app: &weft_rm_core::App, queue: Option<(&QueueTree, QueueIndex)>) -> bool {
        let in_range = |t: u64, (b, e): (u64, u64)| t >= b && t <= e;
        self.states.as_ref().is_none_or(|s| s.contains(&app.state()))
            && self.final_status.is_none_or(|f| f == app.final_status())
            && self.user.as_ref().is_none_or(|u| u == app.user())
            && self.types.as_ref().is_none_or(|t| t.contains(&app.application_type().to_ascii_lowercase()))
            && self.tags.as_ref().is_none_or(|t| app.tags().iter().any(|tag| t.contains(&tag.to_ascii_lowercase())))
            && self.name.as_ref().is_none_or(|n| n == app.name())
            && in_range(app.submit_time(), self.started)
            && (self.finished == (0, u64::MAX) || app.finish_time().is_some_and(|f| in_range(f, self.finished)))
            // YARN: the queue filter lists the unfinished apps currently in that queue (or, for
            // a parent queue, in any queue below it).
            && queue.is_none_or(|(tree, q)| {
                !app.state().is_final() && app.queue_index().is_some_and(|leaf| tree.is_within(leaf, q))
            })
    }
}

async fn list_apps(State(s): State<ServerState>, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    let filter = AppFilter::parse(&q)?;
    let now = now_ms();
    let apps = s
        .core
        .inspect(move |core| {
            let tree = core.hierarchy().tree();
            let queue = match &filter.queue {
                Some(name) => Some((tree, tree.find(name).ok_or_else(|| CoreError::UnknownQueue(name.clone()))?)),
                None => None,
            };
            let matching = core.apps().filter(|a| filter.matches(a, queue)).map(|a| views::app_info(core, a, now));
            Ok::<_, CoreError>(match filter.limit {
                Some(n) => matching.take(n).collect(),
                None => matching.collect::<Vec<_>>(),
            })
        })
        .await??;
    Ok(json(AppsWrapper { apps: AppList { app: apps } }))
}

/// Longest `waitForFinalMs` honoured; clients long-poll again after it.
const MAX_APP_WAIT: Duration = Duration::from_secs(60);

/// `GET /ws/v1/cluster/apps/{id}`, and with `?waitForFinalMs=N` (a Weft extension) a long-poll:
/// the answer comes as soon as the app is in a final state, or after N ms with the app as it is
/// then. A client waiting for an app learns its end at once instead of at its next poll.
async fn get_app(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let id = parse_app_id(&id)?;
    let wait = match q.get("waitForFinalMs") {
        None => Duration::ZERO,
        Some(v) => Duration::from_millis(v.parse::<u64>().map_err(|_| {
            ApiError::new(
                ErrorCode::QueryInvalid,
                format!("waitForFinalMs must be a non-negative number of milliseconds, got {v:?}"),
            )
        })?)
        .min(MAX_APP_WAIT),
    };
    // Subscribed before the first look, so a finish between the look and the wait is not missed.
    let mut finished = s.finished_apps.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = now_ms();
        let app = s.core.inspect(move |core| core.app(id).map(|a| views::app_info(core, a, now))).await?;
        let app = app.ok_or(CoreError::UnknownApp(id))?;
        if app.state.is_final() || tokio::time::Instant::now() >= deadline {
            return Ok(json(AppWrapper { app }));
        }
        loop {
            match tokio::time::timeout_at(deadline, finished.recv()).await {
                Ok(Ok(app)) if app != id => continue,
                // This app finished, notices were missed (look again), or the deadline passed.
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => break,
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(CoreGone.into()),
            }
        }
    }
}

async fn get_app_state(State(s): State<ServerState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_app_id(&id)?;
    let state = s.core.inspect(move |core| core.app(id).map(|a| a.state())).await?;
    Ok(json(AppStateBody { state: state.ok_or(CoreError::UnknownApp(id))?, diagnostics: None }))
}

async fn put_app_state(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller(&q)?;
    let id = parse_app_id(&id)?;
    let target: AppStateBody = parse_body(&body)?;
    if target.state != YarnAppState::Killed {
        return Err(ApiError::new(ErrorCode::AppStateInvalid, "Only 'KILLED' is allowed as a target state."));
    }
    let diagnostics = target.diagnostics;
    s.core.inspect(move |core| core.may_modify(id, &user)).await??;
    match s.core.request(move |req| Event::Kill { req, app: id, diagnostics }).await? {
        Reply::Kill(Ok(state)) => Ok(json(AppStateBody { state, diagnostics: None })),
        Reply::Kill(Err(e)) => Err(e.into()),
        other => Err(unexpected(other)),
    }
}

async fn new_application(
    State(s): State<ServerState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    caller(&q)?;
    answer!(s, NewApplication, |req| Event::NewApplication { req })
}

async fn submit(
    State(s): State<ServerState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller(&q)?;
    let context: ApplicationSubmissionContext = parse_body(&body)?;
    match s.core.request(move |req| Event::Submit { req, user, context: Box::new(context) }).await? {
        Reply::Submit(Ok(id)) => {
            let location = format!("{}/ws/v1/cluster/apps/{id}", s.rm_address);
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&location) {
                headers.insert(header::LOCATION, v);
            }
            Ok((StatusCode::ACCEPTED, headers).into_response())
        }
        Reply::Submit(Err(e)) => Err(e.into()),
        other => Err(unexpected(other)),
    }
}

async fn app_attempts(State(s): State<ServerState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_app_id(&id)?;
    let attempts = s.core.inspect(move |core| core.app(id).map(views::attempt_infos)).await?;
    Ok(json(AppAttemptsWrapper {
        app_attempts: AppAttemptList { app_attempt: attempts.ok_or(CoreError::UnknownApp(id))? },
    }))
}

async fn attempt_containers(
    State(s): State<ServerState>,
    Path((id, attempt)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_app_id(&id)?;
    let attempt: AttemptId = attempt
        .parse()
        .map_err(|e: weft_common::IdParseError| ApiError::new(ErrorCode::AttemptIdInvalid, e.to_string()))?;
    let now = now_ms();
    let containers = s
        .core
        .inspect(move |core| {
            core.app(id).map(|a| {
                a.container_history()
                    .values()
                    .filter(|c| c.id.attempt == attempt)
                    .map(|c| views::container_info(c, now))
                    .collect()
            })
        })
        .await?;
    let container = containers.ok_or(CoreError::UnknownApp(id))?;
    Ok(json(ContainersWrapper { containers: ContainerList { container } }))
}

// ---------------------------------------------------------------------------------------------
// Nodes.

async fn list_nodes(State(s): State<ServerState>, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    let mut states = Vec::new();
    for raw in list_param(&q, "states").into_iter().chain(list_param(&q, "state")).flatten() {
        states.push(raw.parse::<NodeState>().map_err(|m| ApiError::new(ErrorCode::QueryInvalid, m))?);
    }
    let nodes = s
        .core
        .inspect(move |core| {
            core.nodes()
                // YARN lists only usable nodes unless states are asked for.
                .filter(|n| {
                    if states.is_empty() {
                        !matches!(
                            n.state(),
                            NodeState::Lost | NodeState::Decommissioned | NodeState::Shutdown | NodeState::Rebooted
                        )
                    } else {
                        states.contains(&n.state())
                    }
                })
                .map(views::node_info)
                .collect()
        })
        .await?;
    Ok(json(NodesWrapper { nodes: NodeList { node: nodes } }))
}

async fn get_node(State(s): State<ServerState>, Path(id): Path<String>) -> ApiResult<Response> {
    let node_id: NodeId =
        id.parse().map_err(|e: weft_common::IdParseError| ApiError::new(ErrorCode::NodeIdInvalid, e.to_string()))?;
    let lookup = node_id.clone();
    let node = s.core.inspect(move |core| core.node(&lookup).map(views::node_info)).await?;
    let node =
        node.ok_or_else(|| ApiError::new(ErrorCode::NodeNotFound, format!("nodeId, {node_id}, is not found")))?;
    Ok(json(NodeWrapper { node }))
}

// ---------------------------------------------------------------------------------------------
// NodeManager protocol.

async fn nm_register(State(s): State<ServerState>, body: Bytes) -> ApiResult<Response> {
    let request = parse_body(&body)?;
    answer!(s, NodeRegister, move |req| Event::NodeRegister { req, request })
}

async fn nm_heartbeat(State(s): State<ServerState>, body: Bytes) -> ApiResult<Response> {
    let request = parse_body(&body)?;
    answer!(s, NodeHeartbeat, move |req| Event::NodeHeartbeat { req, request })
}

// ---------------------------------------------------------------------------------------------
// ApplicationMaster protocol. The attempt comes from the caller's signed token, never the body.

fn am_attempt(s: &ServerState, headers: &HeaderMap) -> ApiResult<AttemptId> {
    let unauthorized = |m: String| ApiError::new(ErrorCode::AmTokenInvalid, m);
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("missing Authorization: Bearer <AM token>".into()))?;
    let t: AmToken =
        token::verify(raw.trim(), &s.am_token_keys).map_err(|e| unauthorized(format!("invalid AM token: {e}")))?;
    Ok(t.attempt_id)
}

async fn am_register(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let attempt = am_attempt(&s, &headers)?;
    let request = parse_body(&body)?;
    answer!(s, AmRegister, move |req| Event::AmRegister { req, attempt, request })
}

async fn am_allocate(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let attempt = am_attempt(&s, &headers)?;
    let request = parse_body(&body)?;
    answer!(s, Allocate, move |req| Event::Allocate { req, attempt, request })
}

async fn am_finish(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let attempt = am_attempt(&s, &headers)?;
    let request = parse_body(&body)?;
    answer!(s, AmFinish, move |req| Event::AmFinish { req, attempt, request })
}

#[cfg(test)]
mod tests {
    use weft_common::AttemptId;
    use weft_rm_core::lifecycle::IllegalTransition;

    use super::*;

    #[test]
    fn core_errors_are_answered_with_a_yarn_status_and_exception_and_their_stable_code() {
        let attempt = AttemptId::new(ApplicationId::new(1_700_000_000_000, 1), 1);
        let illegal = IllegalTransition {
            machine: "attempt",
            subject: attempt.to_string(),
            from: "FINISHED".into(),
            to: "RUNNING".into(),
        };
        for (error, status, exception, code) in [
            (
                CoreError::AmNotRegistered(attempt),
                409,
                "ApplicationMasterNotRegisteredException",
                "WEFT-AM-NOT-REGISTERED",
            ),
            (CoreError::UnknownApp(attempt.app), 404, "NotFoundException", "WEFT-APP-NOT-FOUND"),
            (CoreError::AdminDenied("bob".into()), 403, "ForbiddenException", "WEFT-QUEUE-ADMIN-DENIED"),
            (CoreError::IllegalTransition(illegal), 500, "YarnRuntimeException", "WEFT-INTERNAL"),
        ] {
            let message = error.to_string();
            let api = ApiError::from(error);
            let e = &api.body.remote_exception;
            assert_eq!((api.status.as_u16(), e.exception.as_str(), e.code.as_str()), (status, exception, code));
            assert_eq!(e.message, message);
            assert!(!e.hint.is_empty(), "{code} has no hint");
        }
    }
}
