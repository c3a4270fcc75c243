//! A scriptable stand-in for the ResourceManager's NM endpoints.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use weft_common::protocol::{
    NM_HEARTBEAT_PATH, NM_REGISTER_PATH, NodeAction, NodeHeartbeatRequest, NodeHeartbeatResponse, RegisterNodeRequest,
    RegisterNodeResponse,
};
use weft_common::states::NmContainerState;
use weft_common::token::MasterKey;
use weft_common::{ApplicationId, ContainerId};

#[derive(Default)]
pub struct Recorded {
    pub registrations: Vec<RegisterNodeRequest>,
    pub heartbeats: Vec<NodeHeartbeatRequest>,
    /// Returned (once) in the next heartbeat response.
    pub to_cleanup: Vec<ContainerId>,
    /// Returned (once) as the next heartbeat's action.
    pub next_action: Option<NodeAction>,
    /// Acknowledge completed containers as soon as they are reported.
    pub ack_completed: bool,
    /// Applications this RM considers finished: named for cleanup whenever the NM lists them.
    pub finished_apps: BTreeSet<ApplicationId>,
}

pub struct FakeRm {
    pub addr: SocketAddr,
    pub key: MasterKey,
    pub recorded: Arc<Mutex<Recorded>>,
    heartbeat_interval_ms: u64,
}

#[derive(Clone)]
struct Shared {
    key: MasterKey,
    recorded: Arc<Mutex<Recorded>>,
    heartbeat_interval_ms: u64,
}

impl FakeRm {
    pub async fn start(heartbeat_interval_ms: u64) -> FakeRm {
        let key = MasterKey::generate(5);
        let recorded = Arc::new(Mutex::new(Recorded { ack_completed: true, ..Default::default() }));
        let shared = Shared { key: key.clone(), recorded: recorded.clone(), heartbeat_interval_ms };
        let app = Router::new()
            .route(NM_REGISTER_PATH, post(register))
            .route(NM_HEARTBEAT_PATH, post(heartbeat))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeRm { addr, key, recorded, heartbeat_interval_ms }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Recorded) -> T) -> T {
        f(&mut self.recorded.lock().unwrap())
    }

    pub fn registrations(&self) -> usize {
        self.with(|r| r.registrations.len())
    }

    /// The report of `id` in the latest heartbeat, if that heartbeat carried it.
    pub fn last_reported_state(&self, id: ContainerId) -> Option<(NmContainerState, i32)> {
        self.with(|r| {
            r.heartbeats.last()?.containers.iter().find(|c| c.container_id == id).map(|c| (c.state, c.exit_status))
        })
    }

    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.heartbeat_interval_ms
    }

    pub fn heartbeats(&self) -> usize {
        self.with(|r| r.heartbeats.len())
    }

    /// The applications the latest heartbeat listed as holding directories.
    pub fn last_apps_with_dirs(&self) -> Option<Vec<ApplicationId>> {
        self.with(|r| Some(r.heartbeats.last()?.applications_with_dirs.clone()))
    }
}

async fn register(
    State(shared): State<Shared>,
    Json(request): Json<RegisterNodeRequest>,
) -> Json<RegisterNodeResponse> {
    shared.recorded.lock().unwrap().registrations.push(request);
    Json(RegisterNodeResponse {
        action: NodeAction::Normal,
        container_token_keys: vec![shared.key.clone()],
        heartbeat_interval_ms: shared.heartbeat_interval_ms,
        rm_epoch: 1,
        diagnostics: String::new(),
    })
}

async fn heartbeat(
    State(shared): State<Shared>,
    Json(request): Json<NodeHeartbeatRequest>,
) -> Json<NodeHeartbeatResponse> {
    let mut recorded = shared.recorded.lock().unwrap();
    let acked_completed = if recorded.ack_completed {
        request.containers.iter().filter(|c| c.state == NmContainerState::Complete).map(|c| c.container_id).collect()
    } else {
        Vec::new()
    };
    let applications_to_cleanup =
        request.applications_with_dirs.iter().filter(|app| recorded.finished_apps.contains(app)).copied().collect();
    let response = NodeHeartbeatResponse {
        action: recorded.next_action.take().unwrap_or(NodeAction::Normal),
        containers_to_cleanup: std::mem::take(&mut recorded.to_cleanup),
        acked_completed,
        applications_to_cleanup,
        container_token_keys: None,
        heartbeat_interval_ms: shared.heartbeat_interval_ms,
    };
    recorded.heartbeats.push(request);
    Json(response)
}
