//! Helpers shared by the NodeManager integration tests: real processes, real cgroups.

#![allow(dead_code)] // each test binary uses a different subset

pub mod client;
pub mod fake_rm;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;
use weft_common::protocol::{ContainerLaunchContext, StartContainerRequest, StopContainerRequest};
use weft_common::states::NmContainerState;
use weft_common::token::{ContainerToken, MasterKey, sign};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};
use weft_nodemanager::config::{IsolationConfig, IsolationMode, NmConfig};
use weft_nodemanager::containers::ContainerManager;
use weft_nodemanager::isolation::{self, Isolation};
use weft_nodemanager::metrics::NmMetrics;
use weft_nodemanager::process::{is_alive, process_group_members};

pub const APP: ApplicationId = ApplicationId { cluster_ts: 1_700_000_000_000, seq: 7 };

/// Polls `condition` until it holds; panics naming `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_until`] for conditions that need to await (HTTP calls).
pub async fn wait_until_async<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as Millis
}

pub fn container_id(seq: u64) -> ContainerId {
    ContainerId { attempt: AttemptId::new(APP, 1), epoch: 0, seq }
}

pub fn token(key: &MasterKey, node: &NodeId, id: ContainerId, resource: Resource) -> String {
    token_expiring(key, node, id, resource, now_ms() + 600_000)
}

pub fn token_expiring(
    key: &MasterKey,
    node: &NodeId,
    id: ContainerId,
    resource: Resource,
    expires_at: Millis,
) -> String {
    let payload = ContainerToken {
        container_id: id,
        node_id: node.clone(),
        user: "alice".into(),
        resource,
        expires_at,
        key_id: key.key_id,
        rm_epoch: 1,
    };
    sign(&payload, key)
}

pub fn start_request(token: String, command: &str) -> StartContainerRequest {
    StartContainerRequest {
        container_token: token,
        launch_context: ContainerLaunchContext { commands: vec![command.to_owned()], ..Default::default() },
    }
}

pub fn stop_request(token: String, exit_status: Option<i32>) -> StopContainerRequest {
    StopContainerRequest { container_token: token, exit_status }
}

/// A config with a cgroup root unique to this test and process, dirs in `dir`, a short grace
/// and a fast monitor.
pub fn test_config(test_name: &str, dir: &Path, mode: IsolationMode) -> NmConfig {
    NmConfig {
        rm_addresses: vec!["http://127.0.0.1:1".into()],
        bind: "127.0.0.1:0".into(),
        work_dir: dir.join("work"),
        log_dir: dir.join("logs"),
        isolation: IsolationConfig {
            mode,
            cgroup_root: cgroup_root_name(test_name),
            cpu_hard_quota: false,
            pids_limit: 64,
        },
        kill_grace_ms: 500,
        monitor_interval_ms: 100,
        ..NmConfig::default()
    }
}

pub fn cgroup_root_name(test_name: &str) -> String {
    format!("weft-test-{test_name}-{}", std::process::id())
}

/// `<controller mount>/<this process's cgroup>/<cgroup root>` for the v1 memory, cpu and pids
/// controllers, computed independently of the code under test.
pub fn expected_v1_roots(test_name: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    ["memory", "cpu", "pids"]
        .iter()
        .map(|controller| {
            let path = own
                .lines()
                .find_map(|line| {
                    let mut parts = line.splitn(3, ':');
                    let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                    controllers.split(',').any(|c| c == *controller).then_some(path)
                })
                .unwrap_or_else(|| panic!("this host has no cgroup v1 {controller} controller"));
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'))
                .join(cgroup_root_name(test_name))
        })
        .collect()
}

/// A container manager on real isolation, with a key the test signs tokens with. Removes its
/// cgroup root when dropped, so a failing test leaves nothing behind.
pub struct TestNode {
    pub manager: ContainerManager,
    pub key: MasterKey,
    pub node_id: NodeId,
    pub isolation: Arc<dyn Isolation>,
    pub dir: tempfile::TempDir,
}

impl TestNode {
    /// Panics (failing the test) if the isolation mode is unusable on this host.
    pub fn new(test_name: &str, mode: IsolationMode) -> Self {
        Self::with_config(test_name, mode, |_| {})
    }

    /// [`Self::new`] with `adjust` applied to the [`test_config`].
    pub fn with_config(test_name: &str, mode: IsolationMode, adjust: impl FnOnce(&mut NmConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(test_name, dir.path(), mode);
        adjust(&mut config);
        let isolation = isolation::setup(&config.isolation)
            .unwrap_or_else(|e| panic!("isolation {mode} must be usable on this test host: {e}"));
        let node_id = NodeId("127.0.0.1:18042".into());
        let metrics = NmMetrics::register(&mut Registry::default());
        let manager = ContainerManager::new(&config, node_id.clone(), isolation.clone(), metrics).unwrap();
        let key = MasterKey::generate(1);
        manager.set_token_keys(vec![key.clone()]);
        Self { manager, key, node_id, isolation, dir }
    }

    pub fn token(&self, id: ContainerId, resource: Resource) -> String {
        token(&self.key, &self.node_id, id, resource)
    }

    pub async fn wait_complete(&self, id: ContainerId, timeout: Duration) -> weft_common::protocol::ContainerReport {
        wait_until(&format!("{id} completes"), timeout, || {
            self.manager.report(id).unwrap().state == NmContainerState::Complete
        })
        .await;
        self.manager.report(id).unwrap()
    }

    pub fn log(&self, id: ContainerId, file: &str) -> String {
        std::fs::read_to_string(self.manager.log_dir(id).join(file)).unwrap_or_default()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.isolation.remove_all(true);
    }
}

/// Live (non-zombie) processes of a process group.
pub fn live_group_members(pgid: u32) -> Vec<i32> {
    process_group_members(pgid as i32).iter().map(|p| p.pid).collect()
}

pub fn pid_alive(pid: i32) -> bool {
    is_alive(pid)
}

pub fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())).trim().to_owned()
}
