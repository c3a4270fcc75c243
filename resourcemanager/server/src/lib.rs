//! The tokio shell around the core.
//!
//! One task owns the [`Core`]. HTTP handlers send it [`Command`]s; it steps the core, writes the
//! step's store operations in one transaction, and only then sends the step's replies and starts
//! AM launches and container stops. So nothing is acknowledged before it is durable.
//!
//! Architecture Invariant: only this module and its children know tokio, axum, reqwest and the
//! store; the core knows none of them.

pub mod config;
mod ha;
mod launcher;
mod metrics;
mod rest;
mod scheduler_view;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use weft_common::{ApplicationId, Millis};

pub use config::RmConfig;

use config::StoreConfig;
use weft_rm_core::{Core, Event, Observation, RecordingEffects, Reply, ReqId};
use weft_rm_store::{MasterKeys, MemoryStore, PostgresStore, SqliteStore, StateStore, StoreError, StoreOp};

#[derive(Debug, thiserror::Error)]
pub enum RmError {
    #[error("cannot listen on {addr}")]
    Bind { addr: String, source: std::io::Error },
    #[error("state store")]
    Store(#[from] StoreError),
    #[error("queue configuration")]
    Queues(#[from] weft_rm_core::queues::QueueConfigError),
    #[error("cannot recover state")]
    Recover(#[from] weft_rm_core::CoreError),
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
#[error("this ResourceManager stopped being the active one (shutting down, or a failover)")]
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

/// A running ResourceManager: serving HTTP, and active or (with HA) possibly standby.
pub struct RmHandle {
    http_addr: SocketAddr,
    role: Arc<ha::Role>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<Result<(), RmError>>,
    supervisor: JoinHandle<()>,
}

impl RmHandle {
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The fencing epoch while active; `None` while standby.
    pub fn epoch(&self) -> Option<u32> {
        self.role.active_epoch()
    }

    /// Resolves when the RM stopped by itself (a single RM fenced by another).
    pub async fn stopped(&mut self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Stops serving; an active RM first finishes its current store write and, with HA, gives
    /// its lease up so a standby takes over at once.
    pub async fn shutdown(self) -> Result<(), RmError> {
        let _ = self.shutdown.send(true);
        let _ = self.supervisor.await;
        self.server.await.map_err(|e| RmError::Serve(std::io::Error::other(e)))?
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
        StoreConfig::Postgres { url, max_connections } => {
            Arc::new(PostgresStore::connect(url, *max_connections).await?)
        }
    })
}

/// What every active term of this RM process shares.
pub(crate) struct RmContext {
    cfg: RmConfig,
    store: Arc<dyn StateStore>,
    metrics: Arc<metrics::RmMetrics>,
    registry: Arc<Registry>,
    /// This RM's own web address; also its name in the lease row.
    rm_address: String,
    /// Every RM's address, handed to AMs.
    rm_addresses: Vec<String>,
    started_on: Millis,
}

/// Starts a ResourceManager. Without HA it claims the store, recovers and serves as the active
/// RM before returning. With HA it returns once listening, as a standby that takes the lease
/// (and becomes active) when it is free.
pub async fn start(cfg: RmConfig, mut registry: Registry) -> Result<RmHandle, RmError> {
    let store = open_store(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(&cfg.bind)
        .await
        .map_err(|source| RmError::Bind { addr: cfg.bind.clone(), source })?;
    let http_addr = listener.local_addr().map_err(|source| RmError::Bind { addr: cfg.bind.clone(), source })?;
    let rm_address = format!("http://{}:{}", cfg.hostname, http_addr.port());
    let mut rm_addresses = cfg.ha.rm_addresses.clone();
    if !rm_addresses.iter().any(|a| a.trim_end_matches('/') == rm_address) {
        rm_addresses.push(rm_address.clone());
    }
    let metrics = Arc::new(metrics::RmMetrics::register(&mut registry));
    let ctx = Arc::new(RmContext {
        store,
        metrics,
        registry: Arc::new(registry),
        rm_address: rm_address.clone(),
        rm_addresses,
        started_on: now_ms(),
        cfg,
    });
    let role = Arc::new(ha::Role::new(ctx.cfg.ha.enabled));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (handover_tx, handover_rx) = mpsc::channel(4);

    let supervisor = if ctx.cfg.ha.enabled {
        tokio::spawn(ha::elect(ctx.clone(), role.clone(), shutdown_rx.clone(), handover_rx))
    } else {
        let epoch = ctx.store.claim_epoch(&rm_address).await?;
        let term = Term::start(&ctx, epoch, None).await?;
        role.set_active(term.router.clone(), epoch);
        tokio::spawn(run_single(term, shutdown.clone(), shutdown_rx.clone()))
    };

    let router = ha::router(ha::HaState { ctx, role: role.clone(), handover: handover_tx });
    let mut stop = shutdown_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .map_err(RmError::Serve)
    });
    Ok(RmHandle { http_addr, role, shutdown, server, supervisor })
}

/// The only RM (no HA): active until shut down or fenced by another RM on the same store.
async fn run_single(term: Term, shutdown: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
    let mut term = term;
    tokio::select! {
        () = stopped(&mut stop) => {
            term.stop().await;
        }
        end = &mut term.core_task => {
            tracing::error!(?end, "this ResourceManager can no longer act as the active one; stopping");
            let _ = shutdown.send(true);
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Why an active term ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TermEnd {
    /// Asked to stop (shutdown or handover).
    Stopped,
    /// Another RM claimed the store: a write was refused.
    Fenced,
    /// The lease could not be renewed in time; acting on would risk two actives.
    LeaseExpired,
}

/// Until when this RM may act as the active one, by its own monotonic clock: the send time of
/// the last successful renewal plus the lease. The database sets the lease's end from its own
/// clock when the renewal arrives, which is no earlier, so this errs on the safe side.
pub(crate) struct LeaseValidity {
    until: std::sync::Mutex<Instant>,
}

impl LeaseValidity {
    pub(crate) fn new(until: Instant) -> Self {
        Self { until: std::sync::Mutex::new(until) }
    }

    pub(crate) fn extend(&self, until: Instant) {
        let mut current = self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = (*current).max(until);
    }

    pub(crate) fn is_valid(&self) -> bool {
        Instant::now() < *self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One stretch of this RM being active: a core recovered from the store at `epoch`, the task
/// that owns it and the REST router that talks to it.
pub(crate) struct Term {
    router: axum::Router,
    stop: watch::Sender<bool>,
    core_task: JoinHandle<TermEnd>,
}

impl Term {
    /// Loads the store, recovers the core and starts its task. The recovery's own writes (and
    /// the signing keys, the first time) are committed at `epoch` before anything is served.
    pub(crate) async fn start(
        ctx: &Arc<RmContext>,
        epoch: u32,
        lease: Option<Arc<LeaseValidity>>,
    ) -> Result<Term, RmError> {
        let cfg = &ctx.cfg;
        let recovered = ctx.store.load().await?;
        let now = now_ms();
        // Application ids of this term must sort after, and differ from, every earlier one.
        let cluster_ts = recovered.apps.iter().map(|a| a.id.cluster_ts + 1).max().unwrap_or(0).max(now);
        let mut ops = Vec::new();
        let keys = match recovered.master_keys.clone() {
            Some(keys) => keys,
            None => {
                let keys = MasterKeys::generate();
                ops.push(StoreOp::PutMasterKeys(keys.clone()));
                keys
            }
        };
        let core_cfg = cfg.core_config(cluster_ts, epoch, &keys, ctx.rm_addresses.clone())?;
        let mut core = Core::new(core_cfg)?;
        let mut fx = RecordingEffects::default();
        let apps = recovered.apps.len();
        let nodes = recovered.nodes.len();
        core.recover(recovered, now, &mut fx)?;
        ops.extend(fx.take_persisted());
        ctx.store.apply(epoch, &ops).await?;
        tracing::info!(
            rm_address = %ctx.rm_address,
            epoch,
            store = ctx.store.name(),
            recovered_apps = apps,
            known_nodes = nodes,
            "ResourceManager active"
        );

        let (tx, rx) = mpsc::channel(4096);
        let handle = CoreHandle { tx };
        let (stop, stop_rx) = watch::channel(false);
        let (finished_apps, _) = broadcast::channel(FINISHED_APPS_BACKLOG);
        let core_loop = CoreLoop {
            core,
            fx,
            store: ctx.store.clone(),
            epoch,
            lease,
            pending: HashMap::new(),
            next_req: 0,
            launcher: launcher::Launcher::new(handle.clone()),
            metrics: ctx.metrics.clone(),
            finished_apps: finished_apps.clone(),
        };
        let core_task = tokio::spawn(core_loop.run(rx, stop_rx.clone(), Duration::from_millis(cfg.tick_interval_ms)));
        if let Some(path) = cfg.scheduler.queues_file.clone() {
            let interval = Duration::from_millis(cfg.scheduler.queues_reload_interval_ms);
            tokio::spawn(watch_queues_file(path, interval, handle.clone(), stop_rx));
        }
        let state = rest::ServerState {
            core: handle,
            am_token_keys: Arc::new(vec![keys.am_token]),
            metrics: ctx.metrics.clone(),
            registry: ctx.registry.clone(),
            started_on: ctx.started_on,
            epoch,
            ha_enabled: cfg.ha.enabled,
            store_name: ctx.store.name(),
            rm_address: ctx.rm_address.clone(),
            queues_file: cfg.scheduler.queues_file.clone(),
            finished_apps,
        };
        Ok(Term { router: rest::router(state), stop, core_task })
    }

    /// Stops the core task after its current step (whose writes complete or fail first).
    pub(crate) async fn stop(&mut self) -> TermEnd {
        let _ = self.stop.send(true);
        (&mut self.core_task).await.unwrap_or(TermEnd::Stopped)
    }
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
        let config = match weft_rm_core::queues::QueuesConfig::load(&path) {
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
    /// `None` for a single RM, which holds no lease.
    lease: Option<Arc<LeaseValidity>>,
    pending: HashMap<ReqId, oneshot::Sender<Reply>>,
    next_req: ReqId,
    launcher: launcher::Launcher,
    metrics: Arc<metrics::RmMetrics>,
    /// Apps that reached a final state, for the REST long-polls waiting on them.
    finished_apps: broadcast::Sender<ApplicationId>,
}

/// Finished-app notices a slow long-poll may fall behind by before it re-reads the app anyway.
const FINISHED_APPS_BACKLOG: usize = 1024;

/// Commands handled per step at most, so one step's store transaction stays small.
const MAX_BATCH: usize = 512;

impl CoreLoop {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
        tick: Duration,
    ) -> TermEnd {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break TermEnd::Stopped,
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break TermEnd::Stopped };
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
            if let Err(end) = self.commit().await {
                break end;
            }
            // Nothing leaves a deposed active: not replies, launches nor stops.
            if !self.lease_valid() {
                break TermEnd::LeaseExpired;
            }
            self.dispatch();
        };
        tracing::info!(?end, epoch = self.epoch, "core task stopped");
        end
    }

    fn lease_valid(&self) -> bool {
        self.lease.as_ref().is_none_or(|lease| lease.is_valid())
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
    /// wait meanwhile). Fails when this RM has been fenced off or its lease ran out meanwhile.
    async fn commit(&mut self) -> Result<(), TermEnd> {
        let mut backoff = Duration::from_millis(50);
        loop {
            let ops = std::mem::take(&mut self.fx.persisted);
            if ops.is_empty() {
                return Ok(());
            }
            loop {
                match self.store.apply(self.epoch, &ops).await {
                    Ok(()) => break,
                    Err(StoreError::Fenced { mine, current }) => {
                        tracing::error!(mine, current, "another ResourceManager holds the state store");
                        return Err(TermEnd::Fenced);
                    }
                    Err(e) => {
                        tracing::error!(error = %error_chain(&e), retry_in_ms = backoff.as_millis() as u64, "state store write failed");
                        if !self.lease_valid() {
                            return Err(TermEnd::LeaseExpired);
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
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
            if let Observation::AppFinished { app, .. } = obs {
                // No receiver is fine: nobody waits for this app.
                let _ = self.finished_apps.send(app);
            }
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
