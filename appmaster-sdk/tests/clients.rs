//! The SDK clients against scripted fake servers: retries, failover, typed errors, and the AM
//! protocol's response-id, resync and finish rules.

use std::time::Duration;

use serde_json::{Value, json};
use weft_appmaster_sdk::{AmRmClient, ClientError, ContainerAsk, NmClient, RetryPolicy, RmClient, SdkError};
use weft_client::fake_server::{FakeServer, refused_address};
use weft_common::error::ErrorCode;
use weft_common::protocol::{
    AM_ALLOCATE_PATH, AM_FINISH_PATH, AM_REGISTER_PATH, AllocateResponse, AmCommand, Container, ContainerLaunchContext,
    ContainerReport, ContainerStatus, RegisterAmRequest, RegisterAmResponse,
};
use weft_common::rest::{AppInfo, ApplicationSubmissionContext};
use weft_common::states::{AppState, FinalStatus, NmContainerState};
use weft_common::{ApplicationId, AttemptId, ContainerId, NodeId, Resource};

const APP: ApplicationId = ApplicationId { cluster_ts: 1700000000000, seq: 1 };

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
    }
}

fn app_json(state: AppState, final_status: FinalStatus) -> Value {
    let app = AppInfo {
        id: APP,
        user: "alice".into(),
        name: "test".into(),
        queue: "default".into(),
        state,
        final_status,
        progress: 0.0,
        tracking_ui: String::new(),
        tracking_url: String::new(),
        diagnostics: String::new(),
        cluster_id: APP.cluster_ts,
        application_type: "DSHELL".into(),
        application_tags: String::new(),
        priority: 0,
        started_time: 0,
        launch_time: 0,
        finished_time: 0,
        elapsed_time: 0,
        am_container_logs: String::new(),
        am_host_http_address: String::new(),
        am_rpc_address: String::new(),
        allocated_mb: 0,
        allocated_vcores: 0,
        reserved_mb: 0,
        reserved_vcores: 0,
        running_containers: 0,
        memory_seconds: 0,
        vcore_seconds: 0,
        queue_usage_percentage: 0.0,
        cluster_usage_percentage: 0.0,
        preempted_resource_mb: 0,
        preempted_resource_vcores: 0,
        num_non_am_container_preempted: 0,
        num_am_container_preempted: 0,
        log_aggregation_status: "DISABLED".into(),
        unmanaged_application: false,
        max_app_attempts: 2,
        resource_requests: Vec::new(),
    };
    json!({ "app": app })
}

fn container_id(seq: u64) -> ContainerId {
    ContainerId { attempt: AttemptId::new(APP, 1), epoch: 0, seq }
}

fn container(seq: u64, nm_address: &str) -> Container {
    Container {
        id: container_id(seq),
        node_id: NodeId("n1:8041".into()),
        node_http_address: nm_address.to_owned(),
        resource: Resource::new(1024, 1),
        priority: 1,
        resource_name: "*".into(),
        container_token: format!("token-{seq}"),
    }
}

fn allocate_response(response_id: u64, allocated: Vec<Container>, completed: Vec<ContainerStatus>) -> Value {
    serde_json::to_value(AllocateResponse {
        response_id,
        allocated,
        completed,
        limit: Resource::new(8192, 8),
        num_cluster_nodes: 1,
        preemption: None,
        am_command: None,
    })
    .unwrap()
}

fn register_response() -> Value {
    serde_json::to_value(RegisterAmResponse {
        application_id: APP,
        attempt_id: AttemptId::new(APP, 1),
        queue: "default".into(),
        user: "alice".into(),
        maximum_capability: Resource::new(8192, 8),
        minimum_capability: Resource::new(256, 1),
        containers_from_previous_attempts: Vec::new(),
    })
    .unwrap()
}

fn am_client(rm: &FakeServer) -> AmRmClient {
    AmRmClient::new(vec![rm.address.clone()], "am-token".into())
        .unwrap()
        .with_retry_policy(fast_retries())
        .with_long_poll(Duration::ZERO)
}

fn asks_of(body: &Value) -> Vec<(i64, i64)> {
    body["asks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["capability"]["memory"].as_i64().unwrap(), a["num_containers"].as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn transient_failures_are_retried_and_fail_over_to_the_next_address() {
    let rm = FakeServer::start().await;
    let app_path = format!("/ws/v1/cluster/apps/{APP}");
    rm.respond_error(&app_path, 503, "WEFT-RM-STANDBY").respond(
        &app_path,
        200,
        app_json(AppState::Running, FinalStatus::Undefined),
    );
    let client = RmClient::new(vec![refused_address().await, rm.address.clone()], "alice")
        .unwrap()
        .with_retry_policy(fast_retries());

    let app = client.app(APP).await.unwrap();

    assert_eq!(app.state, AppState::Running);
    let recorded = rm.recorded_at(&app_path);
    assert_eq!(recorded.len(), 2, "one standby answer, then success");
    assert_eq!(recorded[0].query, "user.name=alice");
}

#[tokio::test]
async fn client_errors_surface_at_once_with_their_body() {
    let rm = FakeServer::start().await;
    let app_path = format!("/ws/v1/cluster/apps/{APP}");
    rm.respond_error(&app_path, 404, "WEFT-APP-NOT-FOUND");
    let client = RmClient::new(vec![rm.address.clone()], "alice").unwrap().with_retry_policy(fast_retries());

    let error = client.app(APP).await.unwrap_err();

    assert!(matches!(&error, SdkError::Client(ClientError::Remote { status: 404, .. })), "{error:?}");
    assert_eq!(error.code(), Some(ErrorCode::AppNotFound));
    assert!(!error.is_retryable());
    assert_eq!(rm.recorded().len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let client = RmClient::new(vec![refused_address().await], "alice")
        .unwrap()
        .with_retry_policy(RetryPolicy { deadline: Duration::from_millis(50), ..fast_retries() });

    let error = client.cluster_info().await.unwrap_err();

    let SdkError::Client(ClientError::Timeout { attempts, last, .. }) = &error else {
        panic!("expected a timeout, got {error:?}")
    };
    assert!(*attempts > 1);
    assert!(matches!(**last, ClientError::Transport(_)), "{last:?}");
}

#[tokio::test]
async fn submit_fills_in_a_new_application_id() {
    let rm = FakeServer::start().await;
    rm.respond(
        "/ws/v1/cluster/apps/new-application",
        200,
        json!({"application-id": APP.to_string(), "maximum-resource-capability": {"memory": 8192, "vCores": 8}}),
    )
    .respond("/ws/v1/cluster/apps", 202, Value::Null);
    let client = RmClient::new(vec![rm.address.clone()], "alice").unwrap().with_retry_policy(fast_retries());

    let id = client.submit(&ApplicationSubmissionContext::default()).await.unwrap();

    assert_eq!(id, APP);
    let submitted = rm.recorded_at("/ws/v1/cluster/apps");
    assert_eq!(submitted[0].body["application-id"], APP.to_string());
}

#[tokio::test]
async fn kill_repeats_until_the_rm_confirms() {
    let rm = FakeServer::start().await;
    let state_path = format!("/ws/v1/cluster/apps/{APP}/state");
    let app_path = format!("/ws/v1/cluster/apps/{APP}");
    rm.respond(&state_path, 202, json!({"state": "RUNNING"}))
        .respond(&app_path, 200, app_json(AppState::Running, FinalStatus::Undefined))
        .respond(&state_path, 200, json!({"state": "KILLED"}))
        .respond(&app_path, 200, app_json(AppState::Killed, FinalStatus::Killed));
    let client = RmClient::new(vec![rm.address.clone()], "alice").unwrap().with_retry_policy(fast_retries());

    let app = client.kill(APP).await.unwrap();

    assert_eq!(app.state, AppState::Killed);
    let puts = rm.recorded_at(&state_path);
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].method, "PUT");
    assert_eq!(puts[0].body, json!({"state": "KILLED"}));
}

#[tokio::test]
async fn allocate_tracks_response_ids_and_sends_only_changed_asks() {
    let rm = FakeServer::start().await;
    rm.respond(AM_REGISTER_PATH, 200, register_response())
        .respond(AM_ALLOCATE_PATH, 200, allocate_response(1, vec![container(2, "http://n1:8042")], vec![]))
        .respond(AM_ALLOCATE_PATH, 200, allocate_response(2, vec![], vec![]));
    let mut am = am_client(&rm);
    am.register(RegisterAmRequest::default()).await.unwrap();
    am.add_request(&ContainerAsk::anywhere(1, Resource::new(1024, 1)), 3);

    let first = am.allocate(0.0).await.unwrap();
    am.release(container_id(2));
    am.allocate(0.5).await.unwrap();

    assert_eq!(first.allocated.len(), 1);
    assert_eq!(am.outstanding(&ContainerAsk::anywhere(1, Resource::new(1024, 1))), 2);
    let calls = rm.recorded_at(AM_ALLOCATE_PATH);
    assert_eq!(calls[0].authorization.as_deref(), Some("Bearer am-token"));
    assert_eq!(calls[0].body["response_id"], 0);
    assert_eq!(asks_of(&calls[0].body), vec![(1024, 3)]);
    assert_eq!(calls[1].body["response_id"], 1);
    assert!(asks_of(&calls[1].body).is_empty(), "the RM lowered its own count");
    assert_eq!(calls[1].body["releases"], json!([container_id(2).to_string()]));
}

#[tokio::test]
async fn resync_registers_again_and_resends_every_outstanding_ask() {
    let rm = FakeServer::start().await;
    let mut resync = serde_json::from_value::<AllocateResponse>(allocate_response(2, vec![], vec![])).unwrap();
    resync.am_command = Some(AmCommand::Resync);
    rm.respond(AM_REGISTER_PATH, 200, register_response())
        .respond(AM_ALLOCATE_PATH, 200, allocate_response(1, vec![container(2, "http://n1:8042")], vec![]))
        .respond(AM_ALLOCATE_PATH, 200, serde_json::to_value(resync).unwrap())
        .respond(AM_REGISTER_PATH, 200, register_response())
        .respond(AM_ALLOCATE_PATH, 200, allocate_response(1, vec![], vec![]));
    let mut am = am_client(&rm);
    am.register(RegisterAmRequest { host: "am-host".into(), ..Default::default() }).await.unwrap();
    am.add_request(&ContainerAsk::anywhere(1, Resource::new(1024, 1)), 3);
    am.allocate(0.0).await.unwrap();

    am.allocate(0.1).await.unwrap();

    let registrations = rm.recorded_at(AM_REGISTER_PATH);
    assert_eq!(registrations.len(), 2);
    assert_eq!(registrations[1].body["host"], "am-host");
    let calls = rm.recorded_at(AM_ALLOCATE_PATH);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2].body["response_id"], 0);
    assert_eq!(asks_of(&calls[2].body), vec![(1024, 2)]);
}

#[tokio::test]
async fn not_registered_error_also_triggers_a_resync() {
    let rm = FakeServer::start().await;
    rm.respond(AM_REGISTER_PATH, 200, register_response())
        .respond_error(AM_ALLOCATE_PATH, 409, "WEFT-AM-NOT-REGISTERED")
        .respond(AM_REGISTER_PATH, 200, register_response())
        .respond(AM_ALLOCATE_PATH, 200, allocate_response(1, vec![], vec![]));
    let mut am = am_client(&rm);
    am.register(RegisterAmRequest::default()).await.unwrap();
    am.add_request(&ContainerAsk::anywhere(1, Resource::new(512, 1)), 1);

    am.allocate(0.0).await.unwrap();

    let calls = rm.recorded_at(AM_ALLOCATE_PATH);
    assert_eq!(calls.len(), 2);
    assert_eq!(asks_of(&calls[1].body), vec![(512, 1)]);
}

#[tokio::test]
async fn a_request_whose_response_was_lost_is_sent_again_unchanged() {
    let rm = FakeServer::start().await;
    rm.respond(AM_REGISTER_PATH, 200, register_response())
        .respond_error(AM_ALLOCATE_PATH, 503, "WEFT-RM-SHUTTING-DOWN")
        .respond(AM_ALLOCATE_PATH, 200, allocate_response(1, vec![], vec![]))
        .respond(AM_ALLOCATE_PATH, 200, allocate_response(2, vec![], vec![]));
    let mut am = am_client(&rm);
    am.register(RegisterAmRequest::default()).await.unwrap();
    am.add_request(&ContainerAsk::anywhere(1, Resource::new(1024, 1)), 2);
    am.release(container_id(9));
    // No time for retries: the first transient failure ends the call.
    am = am.with_retry_policy(RetryPolicy { deadline: Duration::ZERO, ..fast_retries() });
    assert!(matches!(am.allocate(0.0).await, Err(SdkError::Client(ClientError::Timeout { .. }))));

    am = am.with_retry_policy(fast_retries());
    am.add_request(&ContainerAsk::anywhere(1, Resource::new(1024, 1)), 1);
    am.allocate(0.2).await.unwrap();
    am.allocate(0.3).await.unwrap();

    let calls = rm.recorded_at(AM_ALLOCATE_PATH);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1].body, calls[0].body, "the unanswered request is repeated as it was");
    assert_eq!(calls[0].body["response_id"], 0);
    assert_eq!(calls[0].body["releases"], json!([container_id(9).to_string()]));
    assert_eq!(calls[2].body["response_id"], 1);
    assert_eq!(asks_of(&calls[2].body), vec![(1024, 3)], "later changes follow in the next request");
    assert_eq!(calls[2].body["releases"], json!([]));
}

#[tokio::test]
async fn finish_polls_until_unregistered() {
    let rm = FakeServer::start().await;
    rm.respond(AM_REGISTER_PATH, 200, register_response())
        .respond(AM_FINISH_PATH, 200, json!({"is_unregistered": false}))
        .respond(AM_FINISH_PATH, 200, json!({"is_unregistered": true}));
    let mut am = am_client(&rm);
    am.register(RegisterAmRequest::default()).await.unwrap();

    am.finish(FinalStatus::Succeeded, "all good").await.unwrap();

    let calls = rm.recorded_at(AM_FINISH_PATH);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].body["final_status"], "SUCCEEDED");
    assert_eq!(calls[1].body["diagnostics"], "all good");
}

#[tokio::test]
async fn shutdown_command_ends_the_attempt() {
    let rm = FakeServer::start().await;
    let mut shutdown = serde_json::from_value::<AllocateResponse>(allocate_response(1, vec![], vec![])).unwrap();
    shutdown.am_command = Some(AmCommand::Shutdown);
    rm.respond(AM_REGISTER_PATH, 200, register_response()).respond(
        AM_ALLOCATE_PATH,
        200,
        serde_json::to_value(shutdown).unwrap(),
    );
    let mut am = am_client(&rm);
    am.register(RegisterAmRequest::default()).await.unwrap();

    assert!(matches!(am.allocate(0.0).await, Err(SdkError::ShutdownRequested)));
}

#[tokio::test]
async fn start_container_sends_the_token_and_launch_context() {
    let nm = FakeServer::start().await;
    let report = ContainerReport {
        container_id: container_id(2),
        state: NmContainerState::Running,
        exit_status: -1000,
        diagnostics: String::new(),
        resource: Resource::new(1024, 1),
        pid: Some(42),
    };
    nm.respond("/ws/v1/node/containers", 200, serde_json::to_value(&report).unwrap());
    let client = NmClient::new().unwrap().with_retry_policy(fast_retries());
    let context = ContainerLaunchContext { commands: vec!["echo hi".into()], ..Default::default() };

    let started = client.start_container(&container(2, &nm.address), context).await.unwrap();

    assert_eq!(started, report);
    let calls = nm.recorded_at("/ws/v1/node/containers");
    assert_eq!(calls[0].body["container_token"], "token-2");
    assert_eq!(calls[0].body["launch_context"]["commands"], json!(["echo hi"]));
}

#[tokio::test]
async fn logs_are_listed_and_read_through_the_nm() {
    let nm = FakeServer::start().await;
    let logs_path = format!("/ws/v1/node/containers/{}/logs", container_id(2));
    nm.respond(&logs_path, 200, json!({"files": ["stderr", "stdout"]})).respond(
        &format!("{logs_path}/stdout"),
        200,
        json!("hello"),
    );
    let rm = RmClient::new(vec![refused_address().await], "alice").unwrap().with_retry_policy(fast_retries());

    let files = rm.list_logs(&nm.address, container_id(2)).await.unwrap();
    let stdout = rm.container_logs(&nm.address, container_id(2), "stdout").await.unwrap();

    assert_eq!(files, vec!["stderr", "stdout"]);
    assert_eq!(stdout, "\"hello\"");
}
