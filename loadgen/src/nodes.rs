//! Simulated NodeManagers: each registers and heartbeats like the real NM (running containers
//! reported, completed ones until acked, cleanup orders and RESYNC obeyed, an early heartbeat
//! when a container completes), and one HTTP server answers the container API for all of them.
//! No process is ever forked: an AM container is a task, a task container a timer.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use weft_client::RetryPolicy;
use weft_common::error::{ErrorBody, ErrorCode};
use weft_common::protocol::{
    ContainerReport, NM_CONTAINERS_PATH, NM_HEARTBEAT_PATH, NM_REGISTER_PATH, NodeAction, NodeHeartbeatRequest,
    NodeHeartbeatResponse, RegisterNodeRequest, RegisterNodeResponse, StartContainerRequest, StopContainerRequest,
};
use weft_common::states::{NmContainerState, exit_status};
use weft_common::token::{ContainerToken, MasterKey, TokenError};
use weft_common::{ContainerId, NodeId, Resource};

use crate::world::{CallError, World, decode_raw, retrying};
/// Each node's container API lives under its own prefix of the one shared server, because the
/// RM builds launch URLs by appending the API path to the node's `http_address`.
const NODE_PREFIX: &str = "/simnode";

pub struct SimNode {
    pub id: NodeId,
    pub http_address: String,
    state: Mutex<NodeState>,
    /// Signalled when a container completes, for the early heartbeat.
    completed: Notify,
}

#[derive(Default)]
struct NodeState {
    keys: Vec<MasterKey>,
    registered: bool,
    containers: Vec<SimContainer>,
}

struct SimContainer {
    report: ContainerReport,
    /// The simulated AM running "in" this container, stopped when the container is.
    am_task: Option<AbortHandle>,
}

impl SimNode {
    /// Node `index` of the fleet, whose container API is under `api_base` (`http://host:port`).
    pub fn new(index: usize, api_base: &str) -> Self {
        Self {
            id: NodeId(format!("simnode-{index:05}:45454").into()),
            http_address: format!("{api_base}{NODE_PREFIX}/{index}"),
            state: Mutex::new(NodeState::default()),
            completed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the container token as the real NM does: signed by the RM, addressed to this node.
    fn verify(&self, token: &str) -> Result<ContainerToken, NmRefusal> {
        let state = self.lock();
        if !state.registered {
            return Err(NmRefusal::NotRegistered);
        }
        ContainerToken::verify_for_node(token, &state.keys, &self.id, now_ms()).map_err(NmRefusal::Token)
    }

    /// Starts a container as RUNNING. False if this node already has it.
    fn start(&self, id: ContainerId, resource: Resource) -> bool {
        let mut state = self.lock();
        if state.containers.iter().any(|c| c.report.container_id == id) {
            return false;
        }
        state.containers.push(SimContainer {
            report: ContainerReport {
                container_id: id,
                state: NmContainerState::Running,
                exit_status: exit_status::INVALID,
                diagnostics: String::new(),
                resource,
                pid: None,
            },
            am_task: None,
        });
        true
    }

    /// Attaches the AM task to its container; stops it at once if the container already ended.
    fn attach_am(&self, id: ContainerId, task: AbortHandle) {
        let mut state = self.lock();
        match state.containers.iter_mut().find(|c| c.report.container_id == id) {
            Some(c) if c.report.state != NmContainerState::Complete => c.am_task = Some(task),
            _ => task.abort(),
        }
    }

    /// The container was stopped (by the RM) or its task exited, with `exit`; a simulated AM in
    /// it is stopped too. The next heartbeat is sent early, as the real NM does.
    pub fn complete(&self, id: ContainerId, exit: i32, diagnostics: &str) {
        if let Some(Some(am)) = self.mark_complete(id, exit, diagnostics) {
            am.abort();
        }
    }

    /// The simulated AM in container `id` ended by itself: its "process" exits with `exit`.
    pub fn am_exited(&self, id: ContainerId, exit: i32) {
        self.mark_complete(id, exit, "");
    }

    /// `Some(the AM task)` if the container was still running.
    fn mark_complete(&self, id: ContainerId, exit: i32, diagnostics: &str) -> Option<Option<AbortHandle>> {
        let am_task = {
            let mut state = self.lock();
            let c = state.containers.iter_mut().find(|c| c.report.container_id == id)?;
            if c.report.state == NmContainerState::Complete {
                return None;
            }
            c.report.state = NmContainerState::Complete;
            c.report.exit_status = exit;
            c.report.diagnostics = diagnostics.to_owned();
            c.am_task.take()
        };
        self.completed.notify_one();
        Some(am_task)
    }

    fn report(&self, id: ContainerId) -> Option<ContainerReport> {
        self.lock().containers.iter().find(|c| c.report.container_id == id).map(|c| c.report.clone())
    }

    /// Running containers and completed ones the RM has not acknowledged.
    fn heartbeat_reports(&self) -> Vec<ContainerReport> {
        self.lock().containers.iter().map(|c| c.report.clone()).collect()
    }

    fn live_reports(&self) -> Vec<ContainerReport> {
        self.lock()
            .containers
            .iter()
            .filter(|c| c.report.state != NmContainerState::Complete)
            .map(|c| c.report.clone())
            .collect()
    }

    fn forget_acked(&self, acked: &[ContainerId]) {
        if acked.is_empty() {
            return;
        }
        self.lock()
            .containers
            .retain(|c| !(c.report.state == NmContainerState::Complete && acked.contains(&c.report.container_id)));
    }
}

/// Starts a task container an AM obtained on node `index`, as the AM's `POST /containers`
/// would; it exits 0 after the configured runtime. False if the node refused it.
pub fn start_task_container(world: &Arc<World>, index: usize, id: ContainerId, token: &str) -> bool {
    let Some(node) = world.nodes.get(index) else { return false };
    let Ok(t) = node.verify(token) else { return false };
    if !node.start(id, t.resource) {
        return false;
    }
    let world = world.clone();
    tokio::spawn(async move {
        tokio::time::sleep(world.settings.container_runtime).await;
        world.nodes[index].complete(id, exit_status::SUCCESS, "");
    });
    true
}

/// The fleet index of a simulated node's id (`simnode-00042:45454` → 42).
pub fn node_index(id: &NodeId) -> Option<usize> {
    id.host().strip_prefix("simnode-")?.parse().ok()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Registers node `index` (again after a RESYNC), retrying transient failures for up to a minute.
pub async fn register(world: &World, index: usize) -> Result<Duration, CallError> {
    let node = &world.nodes[index];
    let timeout = RetryPolicy::default().request_timeout;
    retrying(world, "node register", || async move {
        let request = RegisterNodeRequest {
            node_id: node.id.clone(),
            http_address: node.http_address.clone(),
            total: world.settings.node_resource,
            containers: node.live_reports(),
            version: concat!("weft-loadgen ", env!("CARGO_PKG_VERSION")).to_owned(),
            rack: None,
        };
        let body = serde_json::to_vec(&request).expect("request serializes");
        let result = {
            let _slot = world.http.nodes_in_flight.acquire().await;
            world.http.nodes.post(NM_REGISTER_PATH, &body, timeout).await
        };
        let response = decode_raw::<RegisterNodeResponse>(result.map_err(CallError::Io)?, "register")?;
        if response.action != NodeAction::Normal {
            let code = format!("{:?}", response.action);
            return Err(CallError::Status { status: 200, code, text: response.diagnostics });
        }
        let mut state = node.lock();
        state.keys = response.container_token_keys;
        state.registered = true;
        Ok(Duration::from_millis(response.heartbeat_interval_ms.max(50)))
    })
    .await
}

/// Heartbeats node `index` every `interval` from `first` on until `stop` turns true.
pub async fn heartbeat_loop(
    world: Arc<World>,
    index: usize,
    first: Instant,
    mut interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let node = &world.nodes[index];
    let mut ticker = tokio::time::interval_at(first.into(), interval);
    // One heartbeat in flight per node, like the real NM: a slow RM delays the next one.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let early = tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = ticker.tick() => false,
            () = node.completed.notified() => true,
        };
        let request = NodeHeartbeatRequest {
            node_id: node.id.clone(),
            containers: node.heartbeat_reports(),
            health: Default::default(),
            // Simulated nodes keep no directories.
            applications_with_dirs: Vec::new(),
        };
        let body = serde_json::to_vec(&request).expect("request serializes");
        // Waiting for a connection slot counts as round trip: it is the RM being slow.
        let sent = Instant::now();
        let result = {
            let _slot = world.http.nodes_in_flight.acquire().await;
            world.http.nodes.post(NM_HEARTBEAT_PATH, &body, RetryPolicy::default().request_timeout).await
        };
        let result = result.map_err(CallError::Io).and_then(|r| decode_raw::<NodeHeartbeatResponse>(r, "heartbeat"));
        // Failed heartbeats count in the round trip (a timeout is the RM's latency too), not in
        // the achieved rate.
        let m = &world.metrics;
        if world.in_window(sent) {
            m.heartbeat_rtt.record(sent.elapsed());
            if result.is_ok() {
                if early { m.heartbeats_early.inc() } else { m.heartbeats_periodic.inc() }
            }
        }
        if result.is_ok() {
            m.total_heartbeats.inc();
        }
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                world.error("node heartbeat", &e);
                continue;
            }
        };
        node.forget_acked(&response.acked_completed);
        for id in &response.containers_to_cleanup {
            node.complete(*id, exit_status::KILLED_BY_RESOURCEMANAGER, "Container killed by the ResourceManager.");
        }
        if let Some(keys) = response.container_token_keys {
            node.lock().keys = keys;
        }
        match response.action {
            NodeAction::Normal => {}
            NodeAction::Resync => {
                m.resyncs.inc();
                world.errors.record("node heartbeat: RESYNC", || format!("{} was told to resync", node.id));
                node.lock().registered = false;
                match register(&world, index).await {
                    Ok(new_interval) => interval = new_interval,
                    Err(_) => return,
                }
            }
            NodeAction::Shutdown => {
                world.errors.record("node heartbeat: SHUTDOWN", || format!("{} was told to shut down", node.id));
                return;
            }
        }
        let rm_interval = Duration::from_millis(response.heartbeat_interval_ms.max(50));
        if response.heartbeat_interval_ms > 0 && rm_interval != interval {
            interval = rm_interval;
        }
        if ticker.period() != interval {
            ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
        }
    }
}

/// Why the simulated NM refuses a container request.
enum NmRefusal {
    NotRegistered,
    Token(TokenError),
    UnknownNode,
    UnknownContainer,
    Duplicate,
}

impl IntoResponse for NmRefusal {
    fn into_response(self) -> Response {
        let (code, message) = match self {
            NmRefusal::NotRegistered => (ErrorCode::NmNotReady, "the node is not registered yet".to_owned()),
            NmRefusal::Token(e @ TokenError::WrongSubject { .. }) => {
                // As the real NM: a genuine token for another container is forbidden.
                let body = ErrorBody::new("ForbiddenException", ErrorCode::NmInvalidToken.as_str(), e.to_string(), "");
                return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
            }
            NmRefusal::Token(e) => (ErrorCode::NmInvalidToken, e.to_string()),
            NmRefusal::UnknownNode => (ErrorCode::PathNotFound, "no such simulated node".to_owned()),
            NmRefusal::UnknownContainer => (ErrorCode::NmContainerNotFound, "no such container".to_owned()),
            NmRefusal::Duplicate => (ErrorCode::NmDuplicateContainer, "container already started".to_owned()),
        };
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(code.body(message))).into_response()
    }
}

/// The container API of every simulated node, each under `/simnode/<index>`.
pub fn router(world: Arc<World>) -> Router {
    Router::new()
        .route(&format!("{NODE_PREFIX}/{{node}}{NM_CONTAINERS_PATH}"), post(start_container))
        .route(&format!("{NODE_PREFIX}/{{node}}{NM_CONTAINERS_PATH}/{{id}}/stop"), post(stop_container))
        .with_state(world)
}

/// The RM launching an AM container: the simulated AM starts as a task.
async fn start_container(
    State(world): State<Arc<World>>,
    Path(node): Path<usize>,
    axum::Json(request): axum::Json<StartContainerRequest>,
) -> Result<axum::Json<ContainerReport>, NmRefusal> {
    let arrived = Instant::now();
    let sim = world.nodes.get(node).ok_or(NmRefusal::UnknownNode)?;
    let token = sim.verify(&request.container_token)?;
    let id = token.container_id;
    if !sim.start(id, token.resource) {
        return Err(NmRefusal::Duplicate);
    }
    world.metrics.am_launches.inc();
    world.update_app(id.app(), |track| {
        track.am_launched_at.get_or_insert(arrived);
        track.am_attempts += 1;
    });
    let task = crate::am::spawn(world.clone(), node, id, request.launch_context);
    sim.attach_am(id, task);
    sim.report(id).map(axum::Json).ok_or(NmRefusal::UnknownContainer)
}

/// The RM (or an AM) stopping a container.
async fn stop_container(
    State(world): State<Arc<World>>,
    Path((node, id)): Path<(usize, String)>,
    axum::Json(request): axum::Json<StopContainerRequest>,
) -> Result<axum::Json<ContainerReport>, NmRefusal> {
    let sim = world.nodes.get(node).ok_or(NmRefusal::UnknownNode)?;
    let token = sim.verify(&request.container_token)?;
    if token.container_id.to_string() != id {
        return Err(NmRefusal::Token(TokenError::WrongSubject {
            expected: id,
            actual: token.container_id.to_string(),
        }));
    }
    let exit = request.exit_status.unwrap_or(exit_status::ABORTED);
    sim.complete(token.container_id, exit, "Container stopped on request.");
    sim.report(token.container_id).map(axum::Json).ok_or(NmRefusal::UnknownContainer)
}
