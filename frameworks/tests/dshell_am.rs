//! The distributed shell AM loop against a fake RM and NM on loopback: what it asks for,
//! launches, releases, and how it unregisters.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use tokio::sync::watch;
use weft_appmaster_sdk::{AmRmClient, ContainerAsk, NmClient};
use weft_common::protocol::{
    AM_ALLOCATE_PATH, AM_FINISH_PATH, AllocateRequest, AllocateResponse, Container, ContainerReport, ContainerStatus,
    FinishAmRequest, FinishAmResponse, NM_CONTAINERS_PATH, StartContainerRequest,
};
use weft_common::states::{FinalStatus, NmContainerState, exit_status};
use weft_common::{ApplicationId, AttemptId, ContainerId, NodeId, Resource};
use weft_frameworks::dshell::{CONTAINER_PRIORITY, ShellJob, run_job};

#[derive(Default)]
struct Recorded {
    allocates: Vec<AllocateRequest>,
    finishes: Vec<FinishAmRequest>,
    launches: Vec<StartContainerRequest>,
}

struct Cluster {
    script: Mutex<VecDeque<AllocateResponse>>,
    recorded: Mutex<Recorded>,
    /// Containers the NM has started; the RM reports a completion only once its start was seen.
    started: watch::Sender<BTreeSet<ContainerId>>,
}

async fn allocate(
    State(cluster): State<Arc<Cluster>>,
    Json(request): Json<AllocateRequest>,
) -> Result<Json<AllocateResponse>, StatusCode> {
    cluster.recorded.lock().unwrap().allocates.push(request);
    let response = cluster.script.lock().unwrap().pop_front().ok_or(StatusCode::GONE)?;
    let completed: Vec<ContainerId> = response.completed.iter().map(|s| s.container_id).collect();
    let mut started = cluster.started.subscribe();
    started.wait_for(|started| completed.iter().all(|id| started.contains(id))).await.unwrap();
    Ok(Json(response))
}

async fn finish(State(cluster): State<Arc<Cluster>>, Json(request): Json<FinishAmRequest>) -> Json<FinishAmResponse> {
    cluster.recorded.lock().unwrap().finishes.push(request);
    Json(FinishAmResponse { is_unregistered: true })
}

/// The fake NM takes the container token to be the container id.
async fn start(
    State(cluster): State<Arc<Cluster>>,
    Json(request): Json<StartContainerRequest>,
) -> Json<ContainerReport> {
    let id: ContainerId = request.container_token.parse().unwrap();
    cluster.recorded.lock().unwrap().launches.push(request);
    cluster.started.send_modify(|started| {
        started.insert(id);
    });
    Json(ContainerReport {
        container_id: id,
        state: NmContainerState::Running,
        exit_status: exit_status::INVALID,
        diagnostics: String::new(),
        resource: Resource::new(256, 1),
        pid: Some(4242),
    })
}

async fn start_cluster(script: Vec<AllocateResponse>) -> (Arc<Cluster>, String) {
    let cluster = Arc::new(Cluster {
        script: Mutex::new(script.into()),
        recorded: Mutex::new(Recorded::default()),
        started: watch::Sender::new(BTreeSet::new()),
    });
    // One server plays both the RM and the NM: their paths do not overlap.
    let app = Router::new()
        .route(AM_ALLOCATE_PATH, post(allocate))
        .route(AM_FINISH_PATH, post(finish))
        .route(NM_CONTAINERS_PATH, post(start))
        .with_state(cluster.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (cluster, address)
}

fn id(seq: u64) -> ContainerId {
    ContainerId { attempt: AttemptId::new(ApplicationId::new(1700000000000, 3), 1), epoch: 0, seq }
}

fn allocated(address: &str, seqs: &[u64]) -> Vec<Container> {
    seqs.iter()
        .map(|seq| Container {
            id: id(*seq),
            node_id: NodeId("127.0.0.1:8041".into()),
            node_http_address: address.to_owned(),
            resource: Resource::new(256, 1),
            priority: 1,
            resource_name: "*".into(),
            container_token: id(*seq).to_string(),
        })
        .collect()
}

fn completed(seq: u64, exit: i32, diagnostics: &str) -> ContainerStatus {
    ContainerStatus {
        container_id: id(seq),
        state: NmContainerState::Complete,
        exit_status: exit,
        diagnostics: diagnostics.into(),
    }
}

fn response(response_id: u64, allocated: Vec<Container>, completed: Vec<ContainerStatus>) -> AllocateResponse {
    AllocateResponse {
        response_id,
        allocated,
        completed,
        limit: Resource::new(4096, 4),
        num_cluster_nodes: 2,
        ..Default::default()
    }
}

fn job(containers: u32) -> ShellJob {
    ShellJob {
        containers,
        ask: ContainerAsk::anywhere(CONTAINER_PRIORITY, Resource::new(256, 1)),
        argv: vec!["echo".into(), "hello world".into()],
        gang: false,
    }
}

fn asks(request: &AllocateRequest) -> Vec<(u64, u32)> {
    request.asks.iter().map(|a| (a.capability.memory_mb, a.num_containers)).collect()
}

/// The address is only known once the server runs, so the script is filled in afterwards.
async fn run(
    containers: u32,
    script: impl FnOnce(&str) -> Vec<AllocateResponse>,
) -> (Arc<Cluster>, FinalStatus, String) {
    let (cluster, address) = start_cluster(Vec::new()).await;
    cluster.script.lock().unwrap().extend(script(&address));
    // run_job expects a registered client; this fake RM does not check registration.
    let mut rm = AmRmClient::new(vec![address.clone()], "am-token".into()).unwrap();
    let outcome = run_job(&job(containers), &mut rm, NmClient::new().unwrap()).await.unwrap();
    (cluster, outcome.final_status, outcome.diagnostics)
}

#[tokio::test]
async fn a_lost_container_is_replaced_and_surplus_released() {
    let (cluster, status, diagnostics) = run(2, |nm| {
        vec![
            response(1, allocated(nm, &[2, 3]), vec![]),
            response(2, vec![], vec![completed(2, 0, ""), completed(3, exit_status::ABORTED, "node lost")]),
            response(3, allocated(nm, &[4, 5]), vec![]),
            response(4, vec![], vec![completed(4, 0, "")]),
        ]
    })
    .await;

    assert_eq!(status, FinalStatus::Succeeded);
    assert_eq!(diagnostics, "all 2 containers succeeded (1 lost containers were replaced)");
    let recorded = cluster.recorded.lock().unwrap();
    let allocates = &recorded.allocates;
    assert_eq!(allocates.len(), 4);
    assert_eq!(asks(&allocates[0]), vec![(256, 2)]);
    assert!(asks(&allocates[1]).is_empty());
    assert_eq!(asks(&allocates[2]), vec![(256, 1)], "one replacement");
    assert_eq!(allocates[3].releases, vec![id(5)], "the surplus container goes back");
    assert_eq!(allocates.iter().map(|a| a.response_id).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    let launched: BTreeSet<String> = recorded.launches.iter().map(|l| l.container_token.clone()).collect();
    assert_eq!(launched, [2, 3, 4].map(|seq| id(seq).to_string()).into());
    assert_eq!(recorded.launches[0].launch_context.commands, vec!["echo hello world"]);
    assert_eq!(recorded.finishes[0].final_status, FinalStatus::Succeeded);
}

#[tokio::test]
async fn a_failed_command_fails_the_job_after_the_others_end() {
    let (cluster, status, diagnostics) = run(2, |nm| {
        vec![
            response(1, allocated(nm, &[2, 3]), vec![]),
            response(2, vec![], vec![completed(2, 1, "exit code 1")]),
            response(3, vec![], vec![completed(3, 0, "")]),
        ]
    })
    .await;

    assert_eq!(status, FinalStatus::Failed);
    let c2 = id(2);
    assert_eq!(diagnostics, format!("1 of 2 containers failed: {c2} exit 1\n{c2}: exit code 1"));
    let recorded = cluster.recorded.lock().unwrap();
    assert_eq!(recorded.finishes[0].final_status, FinalStatus::Failed);
    assert_eq!(recorded.finishes[0].diagnostics, diagnostics);
}
