//! The tokio shell around the core.
//!
//! One task owns the [`Core`]. HTTP handlers send it [`Command`]s; it steps the core, writes the
//! step's store operations in one transaction, and only then sends the step's replies and starts
//! AM launches and container stops. So nothing is acknowledged before it is durable.
//!
//! Architecture Invariant: only this module and its children know tokio, axum, reqwest and the
//! store; the core knows none of them.

pub mod config;
mod launcher;
mod metrics;
mod rest;
mod scheduler_view;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use weft_common::Millis;
use weft_common::token::MasterKey;

pub use config::RmConfig;

use crate::core::{Core, CoreConfig, Event, RecordingEffects, Reply, ReqId};
use crate::store::{MemoryStore, SqliteStore, StateStore, StoreError};
use config::StoreConfig;

#[derive(Debug, thiserror::Error)]
pub enum RmError {
    #[error("cannot listen on {addr}")]
    Bind { addr: String, source: std::io::Error },
    #[error("state store")]
    Store(#[from] StoreError),
    #[error("queue configuration")]
    Queues(#[from] crate::queues::QueueConfigError),
    #[error("cannot recover state")]
    Recover(#[from] crate::core::CoreError),
    #[error("server error")]
    Serve(#[source] std::io::Error),
}

/// A request for the core task.
pub(crate) enum Command {
    /// An event that answers through [`Reply`]; the task assigns the request id.
    Request { make: Box<dyn FnOnce(ReqId) -> Event + Send>, reply: oneshot::Sender<Reply> },
    /// An event that needs no answer (launch outcomes).
    Notify(Event),
    /// Read-only access for views; runs between steps.
    Inspect(Box<dyn FnOnce(&Core) + Send>),
}

/// Cheap handle the HTTP layer uses to talk to the core task.
#[derive(Clone)]
pub(crate) struct CoreHandle {
    tx: mpsc::Sender<Command>,
}

#[derive(Debug, thiserror::Error)]
#[error("the ResourceManager is shutting down")]
pub(crate) struct CoreGone;

impl CoreHandle {
    pub(crate) async fn request(&self, make: impl FnOnce(ReqId) -> Event + Send + 'static) -> Result<Reply, CoreGone> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Request { make: Box::new(make), reply }).await.map_err(|_| CoreGone)?;
        rx.await.map_err(|_| CoreGone)
    }

    pub(crate) async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Core) -> T + Send + 'static,
    ) -> Result<T, CoreGone> {
        let (tx, rx) = oneshot::channel();
        let run = move |core: &Core| {
            let _ = tx.send(f(core));
        };
        self.tx.send(Command::Inspect(Box::new(run))).await.map_err(|_| CoreGone)?;
        rx.await.map_err(|_| CoreGone)
    }

    pub(crate) async fn notify(&self, event: Event) {
        let _ = self.tx.send(Command::Notify(event)).await;
    }
}

/// A running ResourceManager.
pub struct RmHandle {
    http_addr: SocketAddr,
    epoch: u32,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<Result<(), RmError>>,
    core_task: JoinHandle<()>,
}

impl RmHandle {
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Resolves when the RM stopped by itself (e.g. fenced by another RM).
    pub async fn stopped(&mut self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    pub async fn shutdown(self) -> Result<(), RmError> {
        let _ = self.shutdown.send(true);
        let served = self.server.await.map_err(|e| RmError::Serve(std::io::Error::other(e)))?;
        let _ = self.core_task.await;
        served
    }
}

pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

async fn open_store(cfg: &RmConfig) -> Result<Arc<dyn StateStore>, StoreError> {
    Ok(match &cfg.store {
        StoreConfig::Memory => Arc::new(MemoryStore::new()),
        StoreConfig::Sqlite { path } => {
            let path = path.clone().unwrap_or_else(|| cfg.data_dir.join("rm-state.db"));
            Arc::new(SqliteStore::open(&path).await?)
        }
    })
}

/// Starts a ResourceManager: opens and claims the state store, recovers, binds and serves.
pub async fn start(cfg: RmConfig, mut registry: Registry) -> Result<RmHandle, RmError> {
    let store = open_store(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(&cfg.bind)
        .await
        .map_err(|source| RmError::Bind { addr: cfg.bind.clone(), source })?;
    let http_addr = listener.local_addr().map_err(|source| RmError::Bind { addr: cfg.bind.clone(), source })?;
    let rm_address = format!("http://{}:{}", cfg.hostname, http_addr.port());
    let epoch = store.claim_epoch(&rm_address).await?;
    let recovered = store.load().await?;

    let now = now_ms();
    let core_cfg = CoreConfig {
        cluster_ts: now,
        epoch,
        min_allocation: cfg.scheduler.minimum_allocation.into(),
        max_allocation: cfg.scheduler.maximum_allocation.into(),
        max_app_attempts: cfg.applications.max_attempts,
        nm_heartbeat_interval_ms: cfg.nodemanagers.heartbeat_interval_ms,
        nm_expiry_ms: cfg.nodemanagers.expiry_ms,
        am_expiry_ms: cfg.applications.am_expiry_ms,
        container_allocation_expiry_ms: cfg.applications.container_allocation_expiry_ms,
        finished_app_container_grace_ms: cfg.applications.finished_app_container_grace_ms,
        max_completed_apps: cfg.applications.max_completed_apps,
        gang_reservation_timeout_ms: cfg.scheduler.gang_reservation_timeout_ms,
        node_locality_delay_ms: cfg.scheduler.node_locality_delay_ms,
        rack_locality_delay_ms: cfg.scheduler.rack_locality_delay_ms,
        container_token_key: MasterKey::generate(epoch),
        am_token_key: MasterKey::generate(epoch),
        rm_addresses: vec![rm_address.clone()],
        queues: cfg.load_queues()?,
    };
    let am_token_key = core_cfg.am_token_key.clone();
    let mut core = Core::new(core_cfg)?;
    let mut fx = RecordingEffects::default();
    let apps = recovered.apps.len();
    core.recover(recovered, now, &mut fx)?;
    store.apply(epoch, &fx.take_persisted()).await?;
    tracing::info!(%rm_address, epoch, store = store.name(), recovered_apps = apps, "ResourceManager starting");

    let metrics = Arc::new(metrics::RmMetrics::register(&mut registry));
    let (tx, rx) = mpsc::channel(4096);
    let handle = CoreHandle { tx };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let launcher = launcher::Launcher::new(handle.clone());
    let core_loop = CoreLoop {
        core,
        fx,
        store: store.clone(),
        epoch,
        pending: HashMap::new(),
        next_req: 0,
        launcher,
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
    };
    let core_task = tokio::spawn(core_loop.run(rx, shutdown_rx.clone(), Duration::from_millis(cfg.tick_interval_ms)));

    let state = rest::ServerState {
        core: handle,
        am_token_keys: Arc::new(vec![am_token_key]),
        metrics,
        registry: Arc::new(registry),
        started_on: now,
        epoch,
        store_name: store.name(),
        rm_address,
        queues_file: cfg.scheduler.queues_file.clone(),
    };
    if let Some(path) = cfg.scheduler.queues_file.clone() {
        let interval = Duration::from_millis(cfg.scheduler.queues_reload_interval_ms);
        tokio::spawn(watch_queues_file(path, interval, state.core.clone(), shutdown_rx.clone()));
    }
    let router = rest::router(state);
    let mut stop = shutdown_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .map_err(RmError::Serve)
    });
    Ok(RmHandle { http_addr, epoch, shutdown, server, core_task })
}

/// Reloads the queues file when it changes (YARN's auto-refresh policy). An invalid file is
/// logged and ignored: the running configuration stays.
async fn watch_queues_file(path: PathBuf, interval: Duration, core: CoreHandle, mut stop: watch::Receiver<bool>) {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&path);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticks.tick() => {}
        }
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let config = match crate::queues::QueuesConfig::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %error_chain(&e), "queues file changed but is invalid; keeping the running configuration");
                continue;
            }
        };
        match core.request(move |req| Event::ReloadQueues { req, config: Box::new(config), requested_by: None }).await {
            Ok(Reply::ReloadQueues(Ok(plan))) => {
                tracing::info!(file = %path.display(), added = ?plan.added, removed = ?plan.removed, "queues file changed; reloaded");
            }
            Ok(Reply::ReloadQueues(Err(e))) => {
                tracing::error!(file = %path.display(), error = %e, "queues file changed but the reload was refused; keeping the running configuration");
            }
            Ok(_) | Err(_) => return,
        }
    }
}

struct CoreLoop {
    core: Core,
    fx: RecordingEffects,
    store: Arc<dyn StateStore>,
    epoch: u32,
    pending: HashMap<ReqId, oneshot::Sender<Reply>>,
    next_req: ReqId,
    launcher: launcher::Launcher,
    metrics: Arc<metrics::RmMetrics>,
    shutdown: watch::Sender<bool>,
}

/// Commands handled per step at most, so one step's store transaction stays small.
const MAX_BATCH: usize = 512;

impl CoreLoop {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, mut stop: watch::Receiver<bool>, tick: Duration) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.apply(cmd);
                    // Group commit: everything already queued joins this step.
                    for _ in 1..MAX_BATCH {
                        match rx.try_recv() {
                            Ok(cmd) => self.apply(cmd),
                            Err(_) => break,
                        }
                    }
                }
                _ = ticker.tick() => {
                    self.core.handle(Event::Tick, now_ms(), &mut self.fx);
                }
            }
            if !self.commit().await {
                break;
            }
            self.dispatch();
        }
        tracing::info!("core task stopped");
    }

    fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::Request { make, reply } => {
                self.next_req += 1;
                self.pending.insert(self.next_req, reply);
                self.core.handle(make(self.next_req), now_ms(), &mut self.fx);
            }
            Command::Notify(event) => self.core.handle(event, now_ms(), &mut self.fx),
            Command::Inspect(f) => f(&self.core),
        }
    }

    /// Writes the step's store operations, retrying while the database is unavailable (replies
    /// wait meanwhile). Returns false if this RM has been fenced off and must stop.
    async fn commit(&mut self) -> bool {
        let mut backoff = Duration::from_millis(50);
        loop {
            let ops = std::mem::take(&mut self.fx.persisted);
            if ops.is_empty() {
                return true;
            }
            loop {
                match self.store.apply(self.epoch, &ops).await {
                    Ok(()) => break,
                    Err(StoreError::Fenced { mine, current }) => {
                        tracing::error!(mine, current, "another ResourceManager holds the state store; stopping");
                        let _ = self.shutdown.send(true);
                        return false;
                    }
                    Err(e) => {
                        tracing::error!(error = %error_chain(&e), retry_in_ms = backoff.as_millis() as u64, "state store write failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            // Durable now: let the core acknowledge what waited for it (may write again).
            self.core.handle(Event::Persisted, now_ms(), &mut self.fx);
        }
    }

    fn dispatch(&mut self) {
        for (req, reply) in self.fx.replies.drain(..) {
            if let Some(tx) = self.pending.remove(&req) {
                let _ = tx.send(reply);
            }
        }
        for launch in self.fx.launches.drain(..) {
            self.launcher.launch_am(launch);
        }
        for stop in self.fx.stops.drain(..) {
            self.launcher.stop(stop);
        }
        for obs in self.fx.observations.drain(..) {
            self.metrics.observe(&obs);
        }
    }
}

/// `error: cause: cause…` for logs, so the source chain is never lost.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
