//! The container manager: token checks, launch, supervision (exit, memory, kill requests),
//! termination, the records the HTTP API and the heartbeat read, and the housekeeping that
//! forgets completed containers and deletes finished applications' directories.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use tokio::process::Child;
use tokio::sync::{Notify, oneshot, watch};
use tracing::Instrument;
use weft_common::config::ConfigError;
use weft_common::protocol::{
    ContainerLaunchContext, ContainerReport, StartContainerRequest, StopContainerRequest, container_env,
};
use weft_common::states::{NmContainerState, exit_status};
use weft_common::token::{ContainerToken, MasterKey};
use weft_common::{ApplicationId, ContainerId, Millis, NodeId, Resource};

use crate::NmError;
use crate::config::{IsolationMode, NmConfig};
use crate::isolation::{ContainerCgroup, Isolation};
use crate::launch;
use crate::ledger::{DirKind, Ledger, RetentionPolicy, StartRefused};
use crate::metrics::NmMetrics;
use crate::output::{Capture, LogFiles};
use crate::process::{signal_group, signal_pids};

const MIB: u64 = 1024 * 1024;
/// How often termination checks whether the container's processes are gone.
const TERMINATION_POLL: Duration = Duration::from_millis(20);
/// How long termination keeps SIGKILLing before giving up on processes that do not die (stuck
/// in uninterruptible sleep).
const KILL_DEADLINE: Duration = Duration::from_secs(10);
/// How long a completed container's output may still flow after its processes are gone: only a
/// process that escaped the container (possible without cgroups) holds a pipe longer.
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Launches, supervises and stops the containers of one node. Cheap to clone.
#[derive(Clone)]
pub struct ContainerManager {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    nm_host: String,
    nm_port: u16,
    work_root: PathBuf,
    log_root: PathBuf,
    /// The NM's whitelisted environment, the base of every container's.
    base_env: BTreeMap<String, String>,
    kill_grace: Duration,
    monitor_interval: Duration,
    isolation: Arc<dyn Isolation>,
    metrics: NmMetrics,
    keys: RwLock<Vec<MasterKey>>,
    /// Cap on each container's stdout and stderr file.
    log_max_bytes: u64,
    /// The containers remembered (live, completed, retained) and the apps with dirs here.
    /// Lock order: `ledger` before a container's `state`.
    ledger: Mutex<Ledger<Arc<Container>>>,
    /// Zero of the ledger's clock (tokio's, so tests can pause it).
    clock_start: tokio::time::Instant,
    /// Set (under the `ledger` lock) once shutdown began; no container starts after it.
    shutting_down: AtomicBool,
    /// Signalled whenever a container completes, so the heartbeat reports it at once.
    completions: Notify,
    /// Signalled when the ledger may have a new deadline, so housekeeping looks again.
    deadlines_changed: Notify,
}

struct Container {
    id: ContainerId,
    resource: Resource,
    user: String,
    work_dir: PathBuf,
    log_dir: PathBuf,
    state: Mutex<ContainerState>,
    /// Wakes the supervisor after `state.kill` was set.
    kill_requested: Notify,
    /// Becomes true when the container is complete and nothing of it is left.
    done: watch::Sender<bool>,
}

struct ContainerState {
    phase: Phase,
    /// Why and with which status we kill it; the first request wins.
    kill: Option<KillReason>,
    cgroup_dirs: Vec<PathBuf>,
}

/// What a successful launch hands to supervision.
struct Launched {
    child: Child,
    cgroup: Arc<dyn ContainerCgroup>,
    pid: u32,
    output: Capture,
}

enum Phase {
    Launching,
    Running { pid: u32 },
    Complete { exit_status: i32, diagnostics: String },
}

#[derive(Clone)]
struct KillReason {
    exit_status: i32,
    diagnostics: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data (single-field updates).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

impl Container {
    fn report(&self) -> ContainerReport {
        let state = lock(&self.state);
        let (nm_state, exit_status, diagnostics, pid) = match &state.phase {
            Phase::Launching => (NmContainerState::New, exit_status::INVALID, String::new(), None),
            Phase::Running { pid } => (NmContainerState::Running, exit_status::INVALID, String::new(), Some(*pid)),
            Phase::Complete { exit_status, diagnostics } => {
                (NmContainerState::Complete, *exit_status, diagnostics.clone(), None)
            }
        };
        ContainerReport {
            container_id: self.id,
            state: nm_state,
            exit_status,
            diagnostics,
            resource: self.resource,
            pid,
        }
    }

    /// Asks the supervisor to kill the container; ignored once it completed or was asked before.
    fn request_kill(&self, reason: KillReason) {
        let mut state = lock(&self.state);
        if matches!(state.phase, Phase::Complete { .. }) || state.kill.is_some() {
            return;
        }
        state.kill = Some(reason);
        drop(state);
        // notify_one keeps a permit, so a supervisor that is not waiting yet still sees it.
        self.kill_requested.notify_one();
    }

    async fn wait_done(&self) {
        let mut done = self.done.subscribe();
        // The sender lives as long as `self`, so this only returns once done is true.
        let _ = done.wait_for(|d| *d).await;
    }
}

impl ContainerManager {
    /// `node_id` must be `<host>:<port>` of the NM's HTTP endpoint (containers get both).
    pub fn new(
        config: &NmConfig,
        node_id: NodeId,
        isolation: Arc<dyn Isolation>,
        metrics: NmMetrics,
    ) -> Result<Self, NmError> {
        let nm_port = node_id.0.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).ok_or_else(|| {
            NmError::Config(ConfigError::Invalid {
                source_name: "NodeManager".into(),
                field: "node id".into(),
                message: format!("{node_id} is not <host>:<port>"),
            })
        })?;
        // Containers run in their work dir, so the paths they are given must be absolute.
        let work_root = std::path::absolute(&config.work_dir).map_err(NmError::io(&config.work_dir))?;
        let log_root = std::path::absolute(&config.log_dir).map_err(NmError::io(&config.log_dir))?;
        let base_env = config
            .env_whitelist
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
            .collect();
        let mut ledger = Ledger::new(RetentionPolicy {
            completed_ms: config.containers.retain_completed_ms,
            work_dirs_ms: config.applications.delete_debug_delay_ms,
            log_dirs_ms: config.applications.log_retain_ms,
        });
        // Dirs an earlier incarnation left are held (and announced to the RM) like any others.
        let leftovers: BTreeSet<ApplicationId> =
            [&work_root, &log_root].into_iter().flat_map(|root| app_dirs_under(root)).collect();
        if !leftovers.is_empty() {
            tracing::info!(
                apps = leftovers.len(),
                "found directories of earlier applications; deleting them once the RM names them finished"
            );
        }
        for app in leftovers {
            ledger.found_dirs(app);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                nm_host: node_id.host().to_owned(),
                nm_port,
                node_id,
                work_root,
                log_root,
                base_env,
                kill_grace: Duration::from_millis(config.kill_grace_ms),
                monitor_interval: Duration::from_millis(config.monitor_interval_ms),
                isolation,
                metrics,
                keys: RwLock::new(Vec::new()),
                log_max_bytes: config.containers.log_max_bytes,
                ledger: Mutex::new(ledger),
                clock_start: tokio::time::Instant::now(),
                shutting_down: AtomicBool::new(false),
                completions: Notify::new(),
                deadlines_changed: Notify::new(),
            }),
        })
    }

    pub fn node_id(&self) -> &NodeId {
        &self.inner.node_id
    }

    pub fn isolation_mode(&self) -> IsolationMode {
        self.inner.isolation.mode()
    }

    /// Replaces the keys container tokens are verified with (from the RM).
    pub fn set_token_keys(&self, keys: Vec<MasterKey>) {
        *self.inner.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    pub fn has_token_keys(&self) -> bool {
        !self.inner.keys.read().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    fn verify_token(&self, token: &str) -> Result<ContainerToken, NmError> {
        let keys = self.inner.keys.read().unwrap_or_else(PoisonError::into_inner).clone();
        if keys.is_empty() {
            return Err(NmError::NotRegistered);
        }
        ContainerToken::verify_for_node(token, &keys, &self.inner.node_id, now_ms()).map_err(NmError::InvalidToken)
    }

    /// Verifies the token, launches the container and returns once its process runs.
    pub async fn start_container(&self, request: StartContainerRequest) -> Result<ContainerReport, NmError> {
        let started = Instant::now();
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(NmError::ShuttingDown);
        }
        let token = self.verify_token(&request.container_token)?;
        let context = &request.launch_context;
        launch::validate(&context.commands, &context.environment, &context.local_resources)
            .map_err(NmError::BadRequest)?;
        if token.resource.memory_mb == 0 {
            return Err(NmError::BadRequest(format!("container token grants no memory: {}", token.resource)));
        }
        let id = token.container_id;
        let container = Arc::new(Container {
            id,
            resource: token.resource,
            user: token.user,
            work_dir: self.inner.work_root.join(id.app().to_string()).join(id.to_string()),
            log_dir: self.inner.container_log_dir(id),
            state: Mutex::new(ContainerState { phase: Phase::Launching, kill: None, cgroup_dirs: Vec::new() }),
            kill_requested: Notify::new(),
            done: watch::Sender::new(false),
        });
        // On the ledger's clock: the container is remembered at least until its token expired.
        let token_expires = self.inner.now() + token.expires_at.saturating_sub(now_ms());
        {
            let mut ledger = lock(&self.inner.ledger);
            if self.inner.shutting_down.load(Ordering::SeqCst) {
                return Err(NmError::ShuttingDown);
            }
            ledger.start(id, token.resource, token_expires, container.clone()).map_err(|refused| match refused {
                StartRefused::Duplicate => NmError::DuplicateContainer(id),
                StartRefused::AppFinished => NmError::ApplicationFinished(id.app()),
            })?;
        }
        self.inner.update_allocated();

        // Launch and supervision run in their own task: a client that hangs up mid-request
        // must not leave a half-launched container behind.
        let (launched_tx, launched_rx) = oneshot::channel();
        let inner = self.inner.clone();
        let span = tracing::info_span!("container", container_id = %id, app_id = %id.app());
        tokio::spawn(
            async move {
                match inner.launch(&container, &request.launch_context).await {
                    Ok(launched) => {
                        let pid = launched.pid;
                        lock(&container.state).phase = Phase::Running { pid };
                        inner.metrics.launched(started.elapsed().as_secs_f64());
                        tracing::info!(pid, resource = %container.resource, "container running");
                        let _ = launched_tx.send(Ok(container.report()));
                        inner.supervise(container, launched).await;
                    }
                    Err(reason) => {
                        tracing::warn!(%reason, "container launch failed");
                        inner.complete(&container, exit_status::INVALID, reason.clone(), false);
                        let _ = launched_tx.send(Err(NmError::LaunchFailed { id, reason }));
                    }
                }
            }
            .instrument(span),
        );
        launched_rx.await.map_err(|_| NmError::Task(format!("the launch task of {id} ended without an answer")))?
    }

    /// Kills the container (if still running) with the request's exit status (default ABORTED)
    /// and returns its final report once nothing of it is left.
    pub async fn stop_container(
        &self,
        id: ContainerId,
        request: StopContainerRequest,
    ) -> Result<ContainerReport, NmError> {
        let token = self.verify_token(&request.container_token)?;
        if token.container_id != id {
            return Err(NmError::TokenForOtherContainer { token_container: token.container_id, requested: id });
        }
        let container = self.inner.get(id)?;
        let status = request.exit_status.unwrap_or(exit_status::ABORTED);
        let status_name = exit_status::name(status).map_or_else(|| status.to_string(), str::to_owned);
        container.request_kill(KillReason {
            exit_status: status,
            diagnostics: format!("Container {id} was stopped on request ({status_name})."),
        });
        container.wait_done().await;
        Ok(container.report())
    }

    /// Stops a container the RM no longer considers live; does not wait for it.
    pub fn cleanup_for_rm(&self, id: ContainerId) {
        match self.inner.get(id) {
            Ok(container) => container.request_kill(KillReason {
                exit_status: exit_status::KILLED_BY_RESOURCEMANAGER,
                diagnostics: format!("Container {id} was killed by the ResourceManager."),
            }),
            Err(_) => tracing::debug!(container_id = %id, "RM asked to clean up an unknown container"),
        }
    }

    pub fn report(&self, id: ContainerId) -> Result<ContainerReport, NmError> {
        Ok(self.inner.get(id)?.report())
    }

    /// Every container remembered: live ones, and completed ones until their retention ended.
    pub fn reports(&self) -> Vec<ContainerReport> {
        reports_of(lock(&self.inner.ledger).all())
    }

    /// How many containers are remembered (what [`Self::reports`] would list).
    pub fn remembered(&self) -> usize {
        lock(&self.inner.ledger).remembered()
    }

    /// What the heartbeat carries: live containers and completed ones the RM has not
    /// acknowledged yet.
    pub fn heartbeat_reports(&self) -> Vec<ContainerReport> {
        reports_of(lock(&self.inner.ledger).reported())
    }

    /// Containers that are launching or running (what a (re-)registration announces).
    pub fn live_reports(&self) -> Vec<ContainerReport> {
        reports_of(lock(&self.inner.ledger).live())
    }

    /// The RM recorded these completed containers: stop reporting them, and forget them once
    /// their retention ended.
    pub fn ack_completed(&self, ids: &[ContainerId]) {
        self.inner.schedule(|ledger, now| ids.iter().fold(false, |any, id| ledger.acknowledged(*id, now) | any));
    }

    /// Applications this node holds directories for that the RM has not named finished.
    pub fn apps_with_dirs(&self) -> Vec<ApplicationId> {
        lock(&self.inner.ledger).apps_with_dirs()
    }

    /// The RM considers these applications finished: delete their work dirs after
    /// `delete-debug-delay-ms` and their logs after `log-retain-ms`, once none of their
    /// containers runs here. Starts of their containers are refused from now on.
    pub fn apps_finished(&self, apps: &[ApplicationId]) {
        if self.inner.schedule(|ledger, now| apps.iter().fold(false, |any, app| ledger.app_finished(*app, now) | any)) {
            tracing::info!(?apps, "the RM named applications finished; their directories will be deleted");
        }
    }

    /// Resources of containers that are launching or running.
    pub fn allocated(&self) -> Resource {
        self.inner.allocated()
    }

    /// The container's cgroup directories (empty without isolation or once removed).
    pub fn cgroup_dirs(&self, id: ContainerId) -> Result<Vec<PathBuf>, NmError> {
        Ok(lock(&self.inner.get(id)?.state).cgroup_dirs.clone())
    }

    pub fn work_dir(&self, id: ContainerId) -> Result<PathBuf, NmError> {
        Ok(self.inner.get(id)?.work_dir.clone())
    }

    /// The container's log directory; logs outlive the container (and this NM incarnation).
    pub fn log_dir(&self, id: ContainerId) -> PathBuf {
        self.inner.container_log_dir(id)
    }

    /// Names of the container's log files.
    pub fn log_files(&self, id: ContainerId) -> Result<Vec<String>, NmError> {
        let dir = self.log_dir(id);
        let entries = std::fs::read_dir(&dir).map_err(|_| NmError::ContainerNotFound(id))?;
        let mut files: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        files.sort();
        Ok(files)
    }

    /// Opens one log file. `file` must be a plain file name; symlinks are refused so a container
    /// cannot expose other files of the host through its log dir.
    pub fn open_log(&self, id: ContainerId, file: &str) -> Result<std::fs::File, NmError> {
        if file.is_empty() || file == "." || file == ".." || file.contains(['/', '\\', '\0']) {
            return Err(NmError::BadRequest(format!("{file:?} is not a log file name")));
        }
        let dir = self.log_dir(id);
        if !dir.is_dir() {
            return Err(NmError::ContainerNotFound(id));
        }
        let not_found = || NmError::LogNotFound { id, file: file.to_owned() };
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(dir.join(file))
            .map_err(|_| not_found())?;
        let is_regular = opened.metadata().is_ok_and(|m| m.is_file());
        if is_regular { Ok(opened) } else { Err(not_found()) }
    }

    /// Resolves once a container completed since the last call (used by the heartbeat loop).
    pub async fn completed_since_last_call(&self) {
        self.inner.completions.notified().await;
    }

    /// Forgets completed containers whose retention ended and deletes finished applications'
    /// directories when they come due; runs until `stop` turns true.
    pub async fn housekeeping(self, mut stop: watch::Receiver<bool>) {
        loop {
            let next_due = self.inner.housekeep().await;
            let wake = async {
                match next_due {
                    Some(at) => tokio::time::sleep_until(self.inner.clock_start + Duration::from_millis(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                () = wake => {}
                () = self.inner.deadlines_changed.notified() => {}
            }
        }
    }

    /// Refuses new containers, kills every running one (reported as ABORTED) and removes the
    /// cgroup root. Idempotent.
    pub async fn shutdown(&self) -> Result<(), NmError> {
        let containers = {
            let ledger = lock(&self.inner.ledger);
            self.inner.shutting_down.store(true, Ordering::SeqCst);
            ledger.live().cloned().collect::<Vec<_>>()
        };
        for container in &containers {
            container.request_kill(KillReason {
                exit_status: exit_status::ABORTED,
                diagnostics: format!("Container {} was killed because its NodeManager shut down.", container.id),
            });
        }
        for container in &containers {
            container.wait_done().await;
        }
        let isolation = self.inner.isolation.clone();
        tokio::task::spawn_blocking(move || isolation.remove_all(true))
            .await
            .map_err(|e| NmError::Task(e.to_string()))?
    }
}

impl Inner {
    fn get(&self, id: ContainerId) -> Result<Arc<Container>, NmError> {
        lock(&self.ledger).get(id).cloned().ok_or(NmError::ContainerNotFound(id))
    }

    /// Milliseconds on the ledger's clock.
    fn now(&self) -> Millis {
        self.clock_start.elapsed().as_millis() as Millis
    }

    fn container_log_dir(&self, id: ContainerId) -> PathBuf {
        self.log_root.join(id.app().to_string()).join(id.to_string())
    }

    fn allocated(&self) -> Resource {
        lock(&self.ledger).allocated()
    }

    /// Applies `change` to the ledger at the current time and wakes housekeeping if it scheduled
    /// anything (what it returns).
    fn schedule(&self, change: impl FnOnce(&mut Ledger<Arc<Container>>, Millis) -> bool) -> bool {
        let now = self.now();
        let scheduled = change(&mut lock(&self.ledger), now);
        if scheduled {
            self.deadlines_changed.notify_one();
        }
        scheduled
    }

    /// Does what the ledger says is due; returns when the next deadline comes.
    async fn housekeep(&self) -> Option<Millis> {
        let due = lock(&self.ledger).due(self.now());
        if !due.forgotten.is_empty() {
            tracing::debug!(containers = due.forgotten.len(), "forgot completed containers after their retention");
        }
        for (kind, app) in due.delete {
            let dir = match kind {
                DirKind::Work => &self.work_root,
                DirKind::Logs => &self.log_root,
            }
            .join(app.to_string());
            let shown = dir.display().to_string();
            match tokio::task::spawn_blocking(move || remove_app_dir(&dir)).await {
                Ok(Ok(())) => tracing::info!(app_id = %app, dir = %shown, "deleted a finished application's directory"),
                Ok(Err(e)) => {
                    tracing::error!(app_id = %app, dir = %shown, error = %e, "cannot delete a finished application's directory")
                }
                Err(e) => tracing::error!(app_id = %app, error = %e, "directory deletion task failed"),
            }
            // Done either way: retrying a deletion that failed would fail the same way.
            lock(&self.ledger).deleted(kind, app);
        }
        lock(&self.ledger).next_due()
    }

    fn update_allocated(&self) {
        self.metrics.set_allocated(self.allocated());
    }

    /// Creates the dirs, localizes, creates the cgroup and spawns the process with its output
    /// captured.
    async fn launch(&self, container: &Container, context: &ContainerLaunchContext) -> Result<Launched, String> {
        for dir in [&container.work_dir, &container.log_dir] {
            tokio::fs::create_dir_all(dir).await.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let log_files = LogFiles::create(&container.log_dir)
            .map_err(|e| format!("cannot create the log files in {}: {e}", container.log_dir.display()))?;
        launch::localize(&container.work_dir, &context.local_resources).await?;
        let command = launch::expand_command(&context.commands, &container.log_dir);
        let env = launch::container_environment(
            &self.base_env,
            &context.environment,
            self.nm_vars(container),
            &container.log_dir,
        );
        let cgroup: Arc<dyn ContainerCgroup> = self
            .isolation
            .create(&container.id.to_string(), container.resource)
            .map_err(|e| format!("cannot create the container's cgroup: {e}"))?
            .into();
        lock(&container.state).cgroup_dirs = cgroup.dirs();
        let spawned = match cgroup.procs_files() {
            Ok(procs) => launch::spawn(&command, &env, &container.work_dir, procs)
                .map_err(|e| format!("cannot start `bash -c {command}`: {e}")),
            Err(e) => Err(e.to_string()),
        };
        let spawned = spawned
            .and_then(|child| child.id().map(|pid| (child, pid)).ok_or_else(|| "the process vanished at once".into()));
        match spawned {
            Ok((mut child, pid)) => {
                let output = Capture::start(&mut child, log_files, self.log_max_bytes);
                Ok(Launched { child, cgroup, pid, output })
            }
            Err(reason) => {
                remove_cgroup(cgroup, container).await;
                Err(reason)
            }
        }
    }

    /// The YARN variables every container gets from its NM.
    fn nm_vars(&self, container: &Container) -> BTreeMap<String, String> {
        let work_dir = container.work_dir.to_string_lossy().into_owned();
        let app_dir = container.work_dir.parent().unwrap_or(&container.work_dir).to_string_lossy().into_owned();
        [
            (container_env::CONTAINER_ID, container.id.to_string()),
            (container_env::NM_HOST, self.nm_host.clone()),
            (container_env::NM_PORT, self.nm_port.to_string()),
            (container_env::NM_HTTP_PORT, self.nm_port.to_string()),
            (container_env::LOG_DIRS, container.log_dir.to_string_lossy().into_owned()),
            (container_env::LOCAL_DIRS, app_dir),
            (container_env::USER, container.user.clone()),
            (container_env::PWD, work_dir.clone()),
            (container_env::HOME, work_dir),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Waits for the leader to exit, a kill request or a memory violation; then makes sure no
    /// process of the container is left, removes its cgroup and records the outcome.
    async fn supervise(&self, container: Arc<Container>, launched: Launched) {
        let Launched { mut child, cgroup, pid, output } = launched;
        let pgid = pid as i32;
        let mut monitor = tokio::time::interval(self.monitor_interval);
        monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // `None` when we decided to kill it (the reason is in `state.kill`).
        let leader_exit = loop {
            tokio::select! {
                status = child.wait() => break Some(status),
                () = container.kill_requested.notified() => break None,
                _ = monitor.tick() => {
                    if let Some(reason) = memory_violation(&container, &*cgroup, pgid) {
                        tracing::warn!(diagnostics = %reason.diagnostics, "killing container over its memory limit");
                        container.request_kill(reason);
                        break None;
                    }
                }
            }
        };
        let kill = match leader_exit {
            Some(_) => None,
            None => lock(&container.state).kill.clone(),
        };
        let leader_status = self.terminate(&mut child, leader_exit, pgid, &*cgroup).await;
        // The container's processes are gone, so its pipes are at their end: the log files are
        // complete before the container is reported complete.
        for (stream, drained) in output.finish(OUTPUT_DRAIN_TIMEOUT).await {
            if drained.discarded > 0 {
                tracing::info!(
                    stream,
                    kept = drained.kept,
                    discarded = drained.discarded,
                    "container output truncated"
                );
            }
            if let Some(error) = drained.write_error {
                tracing::warn!(stream, %error, "container output was not fully written");
            }
        }

        let oom_kills = cgroup.oom_kills();
        let peak = cgroup.peak_memory_bytes();
        remove_cgroup(cgroup, &container).await;

        let (status, diagnostics) = match (kill, leader_status) {
            (Some(kill), _) => (kill.exit_status, kill.diagnostics),
            // The kernel OOM killer struck (maybe only a child): the container exceeded its limit.
            (None, _) if oom_kills > 0 => {
                let usage = peak.unwrap_or(container.resource.memory_mb * MIB);
                let reason =
                    exceeded_memory(&container, usage, " The kernel OOM killer killed a process of the container.");
                (reason.exit_status, reason.diagnostics)
            }
            (None, Ok(status)) => exit_code(status),
            (None, Err(e)) => (exit_status::INVALID, format!("Cannot get the container's exit status: {e}")),
        };
        tracing::info!(exit_status = status, %diagnostics, "container completed");
        self.complete(&container, status, diagnostics, true);
    }

    /// SIGTERM to the container's process group and every process in its cgroup, SIGKILL after
    /// the grace period, then SIGKILL until nothing is left. Returns the leader's exit status.
    async fn terminate(
        &self,
        child: &mut Child,
        leader_exit: Option<std::io::Result<ExitStatus>>,
        pgid: i32,
        cgroup: &dyn ContainerCgroup,
    ) -> std::io::Result<ExitStatus> {
        let mut leader_exit = leader_exit;
        // Once reaped, the leader's pid is free and may belong to a stranger.
        let remaining = |leader_reaped: bool| {
            let mut pids = cgroup.pids(pgid);
            pids.retain(|&pid| !(leader_reaped && pid == pgid));
            pids
        };
        if let Some(status) = leader_exit.take_if(|_| remaining(true).is_empty()) {
            return status;
        }

        // While the leader is not reaped (or any group member lives) the pgid cannot be reused,
        // so signalling the group cannot hit a stranger.
        signal_group(pgid, Signal::SIGTERM);
        signal_pids(&remaining(leader_exit.is_some()), Signal::SIGTERM);
        let grace_end = tokio::time::Instant::now() + self.kill_grace;
        loop {
            if leader_exit.is_some() && remaining(true).is_empty() {
                break;
            }
            tokio::select! {
                status = child.wait(), if leader_exit.is_none() => leader_exit = Some(status),
                () = tokio::time::sleep(TERMINATION_POLL) => {}
            }
            if tokio::time::Instant::now() >= grace_end {
                break;
            }
        }

        let kill_end = tokio::time::Instant::now() + KILL_DEADLINE;
        loop {
            let left = remaining(leader_exit.is_some());
            if left.is_empty() && leader_exit.is_some() {
                break;
            }
            if tokio::time::Instant::now() >= kill_end {
                tracing::error!(pids = ?left, "container processes survived SIGKILL");
                break;
            }
            if !left.is_empty() {
                signal_group(pgid, Signal::SIGKILL);
                signal_pids(&left, Signal::SIGKILL);
            }
            tokio::select! {
                status = child.wait(), if leader_exit.is_none() => leader_exit = Some(status),
                () = tokio::time::sleep(TERMINATION_POLL) => {}
            }
        }
        match leader_exit {
            Some(status) => status,
            None => child.wait().await,
        }
    }

    fn complete(&self, container: &Container, status: i32, diagnostics: String, was_running: bool) {
        {
            // Both under the ledger lock, so a report never says complete for a container the
            // ledger still counts as live (or the other way round).
            let mut ledger = lock(&self.ledger);
            lock(&container.state).phase = Phase::Complete { exit_status: status, diagnostics };
            ledger.complete(container.id, self.now());
        }
        self.metrics.completed(status, was_running);
        self.update_allocated();
        container.done.send_replace(true);
        self.completions.notify_one();
        // A deletion of its application's dirs may have waited for it.
        self.deadlines_changed.notify_one();
    }
}

fn reports_of<'a>(containers: impl Iterator<Item = &'a Arc<Container>>) -> Vec<ContainerReport> {
    containers.map(|c| c.report()).collect()
}

/// Applications with a directory under `root`.
fn app_dirs_under(root: &Path) -> Vec<ApplicationId> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// Deletes `dir` and everything in it without following symbolic links, so a link a container
/// planted is removed rather than what it points to (`remove_dir_all` unlinks symlinks and opens
/// directories with `O_NOFOLLOW`; a `dir` that is itself a symlink is only unlinked). A missing
/// dir is fine.
fn remove_app_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        result => result,
    }
}

async fn remove_cgroup(cgroup: Arc<dyn ContainerCgroup>, container: &Container) {
    let removal = tokio::task::spawn_blocking(move || cgroup.remove()).await;
    match removal {
        Ok(Ok(())) => lock(&container.state).cgroup_dirs.clear(),
        Ok(Err(e)) => tracing::error!(error = %e, "cannot remove the container's cgroup"),
        Err(e) => tracing::error!(error = %e, "cgroup removal task failed"),
    }
}

/// A kill reason if the container uses more memory than it was given: the kernel OOM-killed
/// one of its processes, or (mostly without cgroups) its usage is above the limit.
fn memory_violation(container: &Container, cgroup: &dyn ContainerCgroup, pgid: i32) -> Option<KillReason> {
    let limit = container.resource.memory_mb * MIB;
    if cgroup.oom_kills() > 0 {
        let usage = cgroup.peak_memory_bytes().unwrap_or(limit);
        return Some(exceeded_memory(container, usage, " The kernel OOM killer killed a process of the container."));
    }
    let usage = cgroup.memory_usage_bytes(pgid);
    (usage > limit).then(|| exceeded_memory(container, usage, ""))
}

fn exceeded_memory(container: &Container, usage_bytes: u64, detail: &str) -> KillReason {
    KillReason {
        exit_status: exit_status::KILLED_EXCEEDED_PMEM,
        diagnostics: format!(
            "Container {} is running beyond physical memory limits. Current usage: {} MB of {} MB physical memory \
             used. Killing container.{detail}",
            container.id,
            usage_bytes.div_ceil(MIB),
            container.resource.memory_mb
        ),
    }
}

/// The process exit code, or 128 + signal number when a signal ended it (shell convention).
fn exit_code(status: ExitStatus) -> (i32, String) {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, format!("Exited with code {code}.")),
        (None, Some(signal)) => {
            let name = Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned());
            (128 + signal, format!("Killed by signal {name}."))
        }
        (None, None) => (exit_status::INVALID, format!("Ended with unknown status {status:?}.")),
    }
}
