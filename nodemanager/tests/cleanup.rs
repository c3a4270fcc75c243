//! What a NodeManager forgets and deletes: completed containers once the RM acknowledged them
//! and their retention ended, and finished applications' work and log directories after their
//! delays. A whole NM (`start`) with real processes and cgroups, against a fake RM.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use prometheus_client::registry::Registry;
use reqwest::StatusCode;
use support::client::{Client, error_code};
use support::fake_rm::FakeRm;
use support::*;
use weft_common::states::NmContainerState;
use weft_common::{ApplicationId, AttemptId, ContainerId, Resource};
use weft_nodemanager::config::{IsolationMode, NmConfig};
use weft_nodemanager::http::NodeInfo;
use weft_nodemanager::{NodeManagerHandle, start};

const R: Resource = Resource::new(64, 1);
const WAIT: Duration = Duration::from_secs(30);

/// An NM registered with `rm`, its dirs in `dir`, `adjust` applied to its config.
async fn start_nm(
    test_name: &str,
    dir: &Path,
    rm: &FakeRm,
    adjust: impl FnOnce(&mut NmConfig),
) -> (NodeManagerHandle, Client) {
    let mut config = test_config(test_name, dir, IsolationMode::CgroupV1);
    config.rm_addresses = vec![rm.url()];
    adjust(&mut config);
    let registrations = rm.registrations();
    let nm = start(config, Registry::default()).await.unwrap();
    wait_until("the NM registered", WAIT, || rm.registrations() > registrations).await;
    let client = Client::new(&nm);
    (nm, client)
}

/// A token for `id` on `nm` that expires in a few seconds, so that retention, which never ends
/// before the start token expired, is short in these tests.
fn short_token(rm: &FakeRm, nm: &NodeManagerHandle, id: ContainerId) -> String {
    token_expiring(&rm.key, nm.node_id(), id, R, now_ms() + 5_000)
}

async fn info(client: &Client) -> NodeInfo {
    client.get_json("/ws/v1/node/info").await
}

async fn status(client: &Client, id: ContainerId) -> StatusCode {
    client.get(&format!("/ws/v1/node/containers/{id}")).await.0
}

/// Waits until the RM has seen `n` more heartbeats than now.
async fn heartbeats_pass(rm: &FakeRm, n: usize) {
    let seen = rm.heartbeats();
    wait_until(&format!("{n} more heartbeats"), WAIT, || rm.heartbeats() >= seen + n).await;
}

fn container_of(app: ApplicationId, seq: u64) -> ContainerId {
    ContainerId { attempt: AttemptId::new(app, 1), epoch: 0, seq }
}

fn root(nm_dir: &Path, kind: &str, app: ApplicationId) -> PathBuf {
    nm_dir.join(kind).join(app.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_containers_are_forgotten_once_acknowledged_and_retained() {
    let rm = FakeRm::start(100).await;
    rm.with(|r| r.ack_completed = false);
    let dir = tempfile::tempdir().unwrap();
    let (nm, client) = start_nm("forget", dir.path(), &rm, |c| c.containers.retain_completed_ms = 200).await;
    let (done, running) = (container_id(1), container_id(2));
    client.start(&start_request(short_token(&rm, &nm, done), "echo hi")).await;
    client.start(&start_request(short_token(&rm, &nm, running), "sleep 300")).await;
    wait_until("the RM learned that the first container exited", WAIT, || {
        rm.last_reported_state(done) == Some((NmContainerState::Complete, 0))
    })
    .await;

    // Not acknowledged: reported on every heartbeat and known, however long it takes.
    heartbeats_pass(&rm, 3).await;
    assert_eq!(rm.last_reported_state(done), Some((NmContainerState::Complete, 0)));
    assert_eq!(client.report(done).await.state, NmContainerState::Complete);

    rm.with(|r| r.ack_completed = true);
    wait_until_async("the completed container is forgotten", WAIT, || async {
        status(&client, done).await == StatusCode::NOT_FOUND
    })
    .await;
    wait_until("heartbeats no longer carry it", WAIT, || rm.last_reported_state(done).is_none()).await;
    let last = rm.with(|r| r.heartbeats.last().unwrap().containers.clone());
    assert_eq!(last.iter().map(|c| c.container_id).collect::<Vec<_>>(), vec![running]);
    let node = info(&client).await;
    assert_eq!((node.containers, node.running_containers, node.used), (1, 1, R));
    // Its logs stay until its application's log retention ends.
    let (status, stdout) = client.get(&format!("/ws/v1/node/containers/{done}/logs/stdout")).await;
    assert_eq!((status, stdout.as_str()), (StatusCode::OK, "hi\n"));
    nm.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_stay_small_after_200_containers() {
    let rm = FakeRm::start(100).await;
    let dir = tempfile::tempdir().unwrap();
    let (nm, client) = start_nm("many", dir.path(), &rm, |c| c.containers.retain_completed_ms = 0).await;
    let long = container_id(0);
    client.start(&start_request(token(&rm.key, nm.node_id(), long, R), "sleep 300")).await;
    for batch in 0..25 {
        let ids: Vec<ContainerId> = (1..=8).map(|i| container_id(batch * 8 + i)).collect();
        let requests: Vec<_> = ids.iter().map(|id| start_request(short_token(&rm, &nm, *id), "true")).collect();
        futures::future::join_all(requests.iter().map(|request| client.start(request))).await;
        for id in ids {
            wait_until_async(&format!("{id} completed"), WAIT, || async {
                let response = client.get(&format!("/ws/v1/node/containers/{id}")).await;
                response.0 == StatusCode::NOT_FOUND || response.1.contains("COMPLETE")
            })
            .await;
        }
    }
    wait_until_async("the 200 short containers are forgotten", Duration::from_secs(60), || async {
        info(&client).await.containers == 1
    })
    .await;
    heartbeats_pass(&rm, 2).await;
    let (largest, last) = rm.with(|r| {
        let largest = r.heartbeats.iter().map(|h| h.containers.len()).max().unwrap();
        (largest, r.heartbeats.last().unwrap().clone())
    });
    assert_eq!(last.containers.iter().map(|c| c.container_id).collect::<Vec<_>>(), vec![long]);
    assert_eq!(last.applications_with_dirs, vec![APP]);
    let size = serde_json::to_vec(&last).unwrap().len();
    assert!(size < 1024, "the last heartbeat has {size} bytes");
    assert!(largest <= 40, "a heartbeat carried {largest} containers: it must follow the live ones, not all 201");
    assert_eq!(info(&client).await.used, R);
    nm.shutdown().await.unwrap();
}

/// A directory and a file outside the NM's dirs that a container links to.
fn victims(base: &Path) -> (PathBuf, PathBuf) {
    let dir = base.join("victim");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "keep").unwrap();
    let file = base.join("victim.txt");
    std::fs::write(&file, "keep").unwrap();
    (dir, file)
}

fn assert_victims_intact(dir: &Path, file: &Path) {
    for victim in [dir.join("keep.txt"), file.to_owned()] {
        let content = std::fs::read_to_string(&victim).ok();
        assert_eq!(content.as_deref(), Some("keep"), "deletion followed a symlink to {}", victim.display());
    }
}

/// Plants links to the victims in `$target` (a shell expression) and one level below.
fn planting(target: &str, dir: &Path, file: &Path) -> String {
    let (dir, file) = (dir.display(), file.display());
    format!(
        "ln -s {dir} {target}/dir-link && ln -s {file} {target}/file-link && mkdir -p {target}/sub && \
         ln -s {dir} {target}/sub/dir-link && echo planted"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_apps_lose_their_work_dirs_at_once_but_not_while_a_container_runs() {
    let base = tempfile::tempdir().unwrap();
    let (victim_dir, victim_file) = victims(base.path());
    let rm = FakeRm::start(100).await;
    let nm_dir = base.path().join("nm");
    // What an earlier NM incarnation left behind.
    let old_app = ApplicationId { cluster_ts: 1_600_000_000_000, seq: 3 };
    for kind in ["work", "logs"] {
        let leftover = root(&nm_dir, kind, old_app).join("container_1600000000000_0003_01_000001");
        std::fs::create_dir_all(&leftover).unwrap();
        std::fs::write(leftover.join("data"), "old").unwrap();
    }
    let (nm, client) = start_nm("workdirs", &nm_dir, &rm, |c| {
        c.applications.delete_debug_delay_ms = 0;
        c.applications.log_retain_ms = 3_600_000;
    })
    .await;
    let token_for = |id| token(&rm.key, nm.node_id(), id, R);
    let (planter, sleeper) = (container_id(1), container_id(2));
    client.start(&start_request(token_for(planter), &planting(".", &victim_dir, &victim_file))).await;
    client.start(&start_request(token_for(sleeper), "sleep 300")).await;
    wait_until_async("the planter completed", WAIT, || async {
        client.report(planter).await.state == NmContainerState::Complete
    })
    .await;
    assert!(root(&nm_dir, "work", APP).join(planter.to_string()).join("sub/dir-link").is_symlink());
    wait_until("the NM lists both applications", WAIT, || {
        rm.last_apps_with_dirs().is_some_and(|apps| apps.contains(&APP) && apps.contains(&old_app))
    })
    .await;

    rm.with(|r| r.finished_apps.extend([APP, old_app]));
    wait_until("the NM no longer lists them", WAIT, || rm.last_apps_with_dirs().is_some_and(|apps| apps.is_empty()))
        .await;
    wait_until("the leftover work dir is deleted", WAIT, || !root(&nm_dir, "work", old_app).exists()).await;
    assert!(root(&nm_dir, "logs", old_app).join("container_1600000000000_0003_01_000001/data").exists());
    // A container of the app still runs: its work dirs stay, however many heartbeats pass.
    heartbeats_pass(&rm, 3).await;
    assert!(root(&nm_dir, "work", APP).join(sleeper.to_string()).is_dir(), "deleted while a container runs");
    assert!(root(&nm_dir, "work", APP).join(planter.to_string()).join("dir-link").is_symlink());
    // And no new container of a finished application starts.
    let (status, body) =
        client.post("/ws/v1/node/containers", &start_request(token_for(container_id(3)), "true")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::CONFLICT, "WEFT-NM-APP-FINISHED"));

    let (status, body) = client.stop(sleeper, &stop_request(token_for(sleeper), None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_until("the app's work dir is deleted", WAIT, || !root(&nm_dir, "work", APP).exists()).await;
    assert_victims_intact(&victim_dir, &victim_file);
    // Logs outlive the work dirs (log-retain-ms is an hour here).
    let (status, stdout) = client.get(&format!("/ws/v1/node/containers/{planter}/logs/stdout")).await;
    assert_eq!((status, stdout.as_str()), (StatusCode::OK, "planted\n"));
    nm.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_apps_keep_work_dirs_for_the_debug_delay_and_lose_logs_after_retention() {
    let base = tempfile::tempdir().unwrap();
    let (victim_dir, victim_file) = victims(base.path());
    let rm = FakeRm::start(100).await;
    let nm_dir = base.path().join("nm");
    let (nm, client) = start_nm("logdirs", &nm_dir, &rm, |c| {
        c.applications.delete_debug_delay_ms = 3_600_000;
        c.applications.log_retain_ms = 0;
    })
    .await;
    let other_app = ApplicationId { seq: APP.seq + 1, ..APP };
    let (planter, other) = (container_id(1), container_of(other_app, 1));
    let plant = planting("$LOG_DIRS", &victim_dir, &victim_file);
    client.start(&start_request(token(&rm.key, nm.node_id(), planter, R), &plant)).await;
    client.start(&start_request(token(&rm.key, nm.node_id(), other, R), "echo other")).await;
    for id in [planter, other] {
        wait_until_async(&format!("{id} completed"), WAIT, || async {
            client.report(id).await.state == NmContainerState::Complete
        })
        .await;
    }
    let planter_logs = root(&nm_dir, "logs", APP).join(planter.to_string());
    assert!(planter_logs.join("sub/dir-link").is_symlink());

    rm.with(|r| r.finished_apps.insert(APP));
    wait_until("the app's log dir is deleted", WAIT, || !root(&nm_dir, "logs", APP).exists()).await;
    assert_victims_intact(&victim_dir, &victim_file);
    assert!(root(&nm_dir, "work", APP).join(planter.to_string()).is_dir(), "work dirs wait for the debug delay");
    let (status, _) = client.get(&format!("/ws/v1/node/containers/{planter}/logs/stdout")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The other application is untouched and still listed.
    wait_until("the NM lists only the other app", WAIT, || rm.last_apps_with_dirs() == Some(vec![other_app])).await;
    let (status, stdout) = client.get(&format!("/ws/v1/node/containers/{other}/logs/stdout")).await;
    assert_eq!((status, stdout.as_str()), (StatusCode::OK, "other\n"));
    nm.shutdown().await.unwrap();
}
