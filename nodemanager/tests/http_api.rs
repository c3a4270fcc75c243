//! A whole NodeManager (`start`) driven over HTTP, against no RM or a fake one.

mod support;

use std::time::Duration;

use prometheus_client::registry::Registry;
use reqwest::StatusCode;
use support::client::{Client, error_code};
use support::fake_rm::FakeRm;
use support::*;
use weft_common::protocol::{ContainerReport, NodeAction};
use weft_common::states::{NmContainerState, exit_status};
use weft_common::{ContainerId, NodeId, Resource};
use weft_nodemanager::config::IsolationMode;
use weft_nodemanager::http::{ContainerList, LogFileList, NodeInfo};
use weft_nodemanager::{NmError, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_without_a_reachable_rm() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config("http-no-rm", dir.path(), IsolationMode::CgroupV1);
    let nm = start(config, Registry::default()).await.expect("NM starts even if no RM answers");
    let client = Client::new(&nm);
    let port = nm.http_addr().port();
    assert_ne!(port, 0);
    assert_eq!(nm.node_id(), &NodeId(format!("127.0.0.1:{port}").into()));

    let info: NodeInfo = client.get_json("/ws/v1/node/info").await;
    assert_eq!(info.node_id, *nm.node_id());
    assert_eq!(info.http_address, format!("http://127.0.0.1:{port}"));
    assert_eq!(info.total, Resource::new(8192, 8));
    assert_eq!(info.used, Resource::ZERO);
    assert_eq!(info.isolation, "cgroup-v1");
    assert!(!info.registered);

    // Without an RM there are no keys to verify tokens with: retry later.
    let key = weft_common::token::MasterKey::generate(1);
    let request = start_request(token(&key, nm.node_id(), container_id(1), Resource::new(64, 1)), "true");
    let response =
        client.http.post(format!("{}/ws/v1/node/containers", client.base)).json(&request).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The code alone says "retry": one way to say it, no Retry-After as well.
    assert!(response.headers().get("retry-after").is_none());
    let code = error_code(&response.text().await.unwrap());
    assert_eq!(code, "WEFT-NM-NOT-READY");
    assert!(code.parse::<weft_common::error::ErrorCode>().unwrap().is_retryable());

    let (status, body) = client.get(&format!("/ws/v1/node/containers/{}", container_id(9))).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "WEFT-NM-CONTAINER-NOT-FOUND"));
    let (status, body) = client.get("/ws/v1/node/containers/not-a-container").await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "WEFT-NM-BAD-REQUEST"));
    let (status, body) = client.post("/ws/v1/node/containers", &serde_json::json!({"launch_context": {}})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "WEFT-NM-BAD-REQUEST"));
    let (status, body) = client.get("/ws/v1/node/nothing-here").await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "WEFT-NM-NO-SUCH-ENDPOINT"));
    let list: ContainerList = client.get_json("/ws/v1/node/containers").await;
    assert!(list.containers.is_empty());
    let (status, metrics) = client.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("weft_nm_containers_running 0"), "{metrics}");

    nm.shutdown().await.unwrap();
    for root in expected_v1_roots("http-no-rm") {
        assert!(!root.exists(), "{} survived shutdown", root.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_end_to_end_with_an_rm() {
    // A long interval: completions must reach the RM through out-of-band heartbeats.
    let rm = FakeRm::start(60_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config("http-rm", dir.path(), IsolationMode::CgroupV1);
    // The first RM is down: the NM must fail over to the second.
    config.rm_addresses = vec!["http://127.0.0.1:1".into(), rm.url()];
    let nm = start(config, Registry::default()).await.unwrap();
    let client = Client::new(&nm);
    let node = nm.node_id().clone();
    let token_for = |seq: u64| token(&rm.key, &node, container_id(seq), Resource::new(128, 1));
    wait_until_async("the NM registered", Duration::from_secs(20), || async {
        client.get_json::<NodeInfo>("/ws/v1/node/info").await.registered
    })
    .await;
    let registration = rm.with(|r| r.registrations[0].clone());
    assert_eq!(registration.node_id, node);
    assert_eq!(registration.http_address, format!("http://{node}"));
    assert_eq!(registration.total, Resource::new(8192, 8));

    // A container that writes logs and exits 7; the RM hears of it at once.
    let finished = container_id(1);
    client.start(&start_request(token_for(1), "echo hi; echo err >&2; exit 7")).await;
    wait_until("the RM learned that container 1 exited 7", Duration::from_secs(10), || {
        rm.last_reported_state(finished) == Some((NmContainerState::Complete, 7))
    })
    .await;
    let report = client.report(finished).await;
    assert_eq!((report.state, report.exit_status), (NmContainerState::Complete, 7));
    let logs: LogFileList = client.get_json(&format!("/ws/v1/node/containers/{finished}/logs")).await;
    assert_eq!(logs.files, vec!["stderr", "stdout"]);
    let (status, stdout) = client.get(&format!("/ws/v1/node/containers/{finished}/logs/stdout")).await;
    assert_eq!((status, stdout.as_str()), (StatusCode::OK, "hi\n"));
    let (_, stderr) = client.get(&format!("/ws/v1/node/containers/{finished}/logs/stderr")).await;
    assert_eq!(stderr, "err\n");
    for traversal in ["..%2F..%2F..%2Fetc%2Fpasswd", "..%2Fstdout"] {
        let (status, body) = client.get(&format!("/ws/v1/node/containers/{finished}/logs/{traversal}")).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (StatusCode::BAD_REQUEST, "WEFT-NM-BAD-REQUEST"),
            "{traversal}"
        );
    }
    let (status, body) = client.get(&format!("/ws/v1/node/containers/{finished}/logs/nope")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "WEFT-NM-LOG-NOT-FOUND"));

    // Refusals over HTTP.
    let (status, body) = client.post("/ws/v1/node/containers", &start_request(token_for(1), "true")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::CONFLICT, "WEFT-NM-DUPLICATE-CONTAINER"));
    let forged =
        token(&weft_common::token::MasterKey::generate(rm.key.key_id), &node, container_id(50), Resource::new(64, 1));
    let (status, body) = client.post("/ws/v1/node/containers", &start_request(forged, "true")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::UNAUTHORIZED, "WEFT-NM-INVALID-TOKEN"));
    let elsewhere = token(&rm.key, &NodeId("elsewhere:1".into()), container_id(51), Resource::new(64, 1));
    let (status, body) = client.post("/ws/v1/node/containers", &start_request(elsewhere, "true")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::FORBIDDEN, "WEFT-NM-INVALID-TOKEN"));

    // The RM asks for a cleanup; the NM kills the container and reports -106, and no longer
    // reports the completed container the RM acknowledged.
    let doomed = container_id(2);
    client.start(&start_request(token_for(2), "sleep 30")).await;
    rm.with(|r| r.to_cleanup.push(doomed));
    client.start(&start_request(token_for(3), "true")).await;
    wait_until("the RM learned that container 2 was killed for it", Duration::from_secs(10), || {
        rm.last_reported_state(doomed) == Some((NmContainerState::Complete, exit_status::KILLED_BY_RESOURCEMANAGER))
    })
    .await;
    assert_eq!(rm.last_reported_state(finished), None, "acknowledged containers leave the heartbeat");
    assert_eq!(client.report(doomed).await.exit_status, exit_status::KILLED_BY_RESOURCEMANAGER);

    // RESYNC: the NM registers again, announcing what still runs.
    let survivor = container_id(4);
    client.start(&start_request(token_for(4), "sleep 30")).await;
    rm.with(|r| r.next_action = Some(NodeAction::Resync));
    client.start(&start_request(token_for(5), "true")).await;
    wait_until("the NM registered again", Duration::from_secs(10), || rm.registrations() == 2).await;
    let reregistration = rm.with(|r| r.registrations[1].clone());
    let announced: Vec<(ContainerId, NmContainerState)> =
        reregistration.containers.iter().map(|c| (c.container_id, c.state)).collect();
    assert_eq!(announced, vec![(survivor, NmContainerState::Running)]);

    // Stopping over HTTP with the AM's exit status.
    let (status, body) = client.stop(survivor, &stop_request(token_for(1), None)).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::FORBIDDEN, "WEFT-NM-INVALID-TOKEN"));
    let (status, body) =
        client.stop(survivor, &stop_request(token_for(4), Some(exit_status::KILLED_BY_APPMASTER))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stopped: ContainerReport = serde_json::from_str(&body).unwrap();
    assert_eq!((stopped.state, stopped.exit_status), (NmContainerState::Complete, exit_status::KILLED_BY_APPMASTER));

    let list: ContainerList = client.get_json("/ws/v1/node/containers").await;
    assert_eq!(list.containers.len(), 5);
    assert!(list.containers.iter().all(|c| c.state == NmContainerState::Complete));
    let info: NodeInfo = client.get_json("/ws/v1/node/info").await;
    assert_eq!((info.containers, info.running_containers, info.used), (5, 0, Resource::ZERO));
    let (_, metrics) = client.get("/metrics").await;
    for line in [
        "weft_nm_containers_launched_total 5",
        "weft_nm_containers_completed_total{exit_class=\"success\"} 2",
        "weft_nm_containers_completed_total{exit_class=\"failed\"} 1",
        "weft_nm_containers_completed_total{exit_class=\"killed\"} 2",
        "weft_nm_containers_running 0",
        "weft_nm_container_launch_latency_seconds_count 5",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
    }
    nm.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_kills_running_containers_and_removes_the_cgroup_root() {
    let rm = FakeRm::start(60_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config("shutdown", dir.path(), IsolationMode::CgroupV1);
    config.rm_addresses = vec![rm.url()];
    let nm = start(config, Registry::default()).await.unwrap();
    let client = Client::new(&nm);
    let node = nm.node_id().clone();
    wait_until("the NM registered", Duration::from_secs(20), || rm.registrations() == 1).await;

    let plain =
        client.start(&start_request(token(&rm.key, &node, container_id(1), Resource::new(64, 1)), "sleep 300")).await;
    let escaping_command = "setsid bash -c 'trap \"\" TERM; echo $$ > escaped.pid; exec sleep 300' & sleep 300";
    let escaping = client
        .start(&start_request(token(&rm.key, &node, container_id(2), Resource::new(64, 1)), escaping_command))
        .await;
    let pid_file = dir.path().join("work").join(APP.to_string()).join(container_id(2).to_string()).join("escaped.pid");
    wait_until("the grandchild wrote its pid", Duration::from_secs(10), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    })
    .await;
    let escaped: i32 = read_trimmed(&pid_file).parse().unwrap();
    let roots = expected_v1_roots("shutdown");
    assert!(roots.iter().all(|root| root.join(container_id(1).to_string()).is_dir()));

    let addr = nm.http_addr();
    nm.shutdown().await.unwrap();
    for pid in [plain.pid.unwrap(), escaping.pid.unwrap()] {
        assert!(live_group_members(pid).is_empty(), "process group {pid} survived shutdown");
    }
    assert!(!pid_alive(escaped), "the setsid grandchild survived shutdown");
    for root in &roots {
        assert!(!root.exists(), "{} survived shutdown", root.display());
    }
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the HTTP server still listens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_shutdown_order_stops_every_container() {
    let rm = FakeRm::start(100).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config("rm-shutdown", dir.path(), IsolationMode::CgroupV1);
    config.rm_addresses = vec![rm.url()];
    let nm = start(config, Registry::default()).await.unwrap();
    let client = Client::new(&nm);
    wait_until("the NM registered", Duration::from_secs(20), || rm.registrations() == 1).await;
    let id = container_id(1);
    let pid = client
        .start(&start_request(token(&rm.key, nm.node_id(), id, Resource::new(64, 1)), "sleep 300"))
        .await
        .pid
        .unwrap();

    rm.with(|r| r.next_action = Some(NodeAction::Shutdown));
    tokio::time::timeout(Duration::from_secs(20), nm.rm_ordered_shutdown()).await.expect("the NM obeys the RM");
    assert!(live_group_members(pid).is_empty());
    assert_eq!(client.report(id).await.exit_status, exit_status::ABORTED);
    let request = start_request(token(&rm.key, nm.node_id(), container_id(2), Resource::new(64, 1)), "true");
    let (status, body) = client.post("/ws/v1/node/containers", &request).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::SERVICE_UNAVAILABLE, "WEFT-NM-SHUTTING-DOWN"));
    nm.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_isolation_refuses_to_start() {
    assert!(
        !weft_nodemanager::isolation::CgroupV2::is_available(),
        "this test expects a cgroup v1 host (the v2 hierarchy has no memory controller)"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = test_config("v2-on-v1", dir.path(), IsolationMode::CgroupV2);
    let err = start(config, Registry::default()).await.err().expect("cgroup-v2 must be refused on a v1 host");
    assert!(matches!(err, NmError::IsolationUnavailable { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("cgroup-v2") && message.contains("cgroup.controllers"), "{message}");

    let mut config = test_config("bad-user", dir.path(), IsolationMode::None);
    config.user = "somebody-else".into();
    let err = start(config, Registry::default()).await.err().expect("another user is refused");
    assert!(err.to_string().contains("user"), "{err}");
}
