//! Active/standby: leader election through the state store's lease, and what a standby serves.
//!
//! Every RM of an HA group runs [`elect`]. While standby it tries to take the store's lease every
//! `renew-interval-ms`; it succeeds only once the active's lease has expired or was released,
//! and taking it bumps the fencing epoch. It then starts a [`Term`]: loads the store, recovers
//! the core at the new epoch and serves. The active renews its lease on the same interval, and
//! steps down (ends the term, back to standby) when a renewal finds the epoch moved on, when it
//! could not renew within the lease (its own clock, conservatively), when a store write is
//! fenced, or on `transition-to-standby`.
//!
//! A standby answers `/ws/v1/cluster/info` (haState STANDBY), `/metrics` and `/ws/v1/ha/*`
//! itself and redirects every other request to the active (307, as YARN's standby web app
//! does), or answers 503 `WEFT-RM-STANDBY` when it knows of no active.
//!
//! Architecture Invariant: an RM acts as active only while it holds an unexpired lease at its
//! term's epoch; every store write is checked against that epoch in the write's transaction.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot, watch};
use tower::ServiceExt;
use weft_common::error::ErrorCode;
use weft_common::rest::{ClusterInfo, ClusterInfoWrapper, HA_STATE_PATH, HA_TRANSITION_TO_STANDBY_PATH, HaStateInfo};

use super::rest::ApiError;
use super::{LeaseValidity, RmContext, Term, TermEnd, error_chain, stopped};
use weft_rm_store::LeaseOutcome;

#[derive(Clone)]
enum RoleState {
    Standby { active: Option<(String, u32)> },
    Active { router: Router, epoch: u32 },
}

/// This RM's current role, read by every request.
pub(crate) struct Role {
    ha_enabled: bool,
    state: RwLock<RoleState>,
}

impl Role {
    pub(crate) fn new(ha_enabled: bool) -> Self {
        Self { ha_enabled, state: RwLock::new(RoleState::Standby { active: None }) }
    }

    fn get(&self) -> RoleState {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set(&self, state: RoleState) {
        *self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    }

    pub(crate) fn set_active(&self, router: Router, epoch: u32) {
        self.set(RoleState::Active { router, epoch });
    }

    fn set_standby(&self, active: Option<(String, u32)>) {
        self.set(RoleState::Standby { active });
    }

    pub(crate) fn active_epoch(&self) -> Option<u32> {
        match self.get() {
            RoleState::Active { epoch, .. } => Some(epoch),
            RoleState::Standby { .. } => None,
        }
    }
}

/// Requests a running [`elect`] loop to hand over; answered once this RM is standby.
pub(crate) type HandoverRequest = oneshot::Sender<()>;

#[derive(Clone)]
pub(crate) struct HaState {
    pub(crate) ctx: Arc<RmContext>,
    pub(crate) role: Arc<Role>,
    pub(crate) handover: mpsc::Sender<HandoverRequest>,
}

/// The outermost router: HA administration, then the active's routes or the standby's answers.
pub(crate) fn router(state: HaState) -> Router {
    Router::new()
        .route(HA_STATE_PATH, get(ha_state))
        .route(HA_TRANSITION_TO_STANDBY_PATH, post(transition_to_standby))
        .fallback(dispatch)
        .with_state(state)
}

fn state_info(s: &HaState) -> HaStateInfo {
    let (ha_state, active_address, epoch) = match s.role.get() {
        RoleState::Active { epoch, .. } => ("ACTIVE", Some(s.ctx.rm_address.clone()), Some(epoch)),
        RoleState::Standby { active } => {
            ("STANDBY", active.as_ref().map(|(a, _)| a.clone()), active.as_ref().map(|(_, e)| *e))
        }
    };
    HaStateInfo {
        ha_state: ha_state.to_owned(),
        ha_enabled: s.role.ha_enabled,
        rm_address: s.ctx.rm_address.clone(),
        active_address,
        epoch,
    }
}

async fn ha_state(State(s): State<HaState>) -> Response {
    axum::Json(state_info(&s)).into_response()
}

/// `POST /ws/v1/ha/transition-to-standby`: a planned handover. The active finishes its current
/// store write, gives its lease up and becomes standby; a standby answers at once.
async fn transition_to_standby(State(s): State<HaState>) -> Response {
    if !s.role.ha_enabled {
        return ApiError::new(ErrorCode::HaNotEnabled, "this ResourceManager does not run in HA mode").into_response();
    }
    if s.role.active_epoch().is_some() {
        let (tx, rx) = oneshot::channel();
        if s.handover.send(tx).await.is_ok() {
            let _ = rx.await;
        }
    }
    axum::Json(state_info(&s)).into_response()
}

async fn dispatch(State(s): State<HaState>, request: Request) -> Response {
    let active = match s.role.get() {
        RoleState::Active { router, .. } => {
            return match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
        }
        RoleState::Standby { active } => active,
    };
    match request.uri().path() {
        "/ws/v1/cluster" | "/ws/v1/cluster/info" => standby_cluster_info(&s, active.map(|(_, e)| e)),
        "/metrics" => standby_metrics(&s),
        _ => match active {
            Some((address, _)) => {
                let target = format!(
                    "{}{}",
                    address.trim_end_matches('/'),
                    request.uri().path_and_query().map_or("/", |p| p.as_str())
                );
                match HeaderValue::from_str(&target) {
                    Ok(location) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response(),
                    Err(_) => no_active(),
                }
            }
            None => no_active(),
        },
    }
}

fn no_active() -> Response {
    ApiError::new(ErrorCode::RmStandby, "this ResourceManager is standby and knows no active one yet").into_response()
}

fn standby_cluster_info(s: &HaState, active_epoch: Option<u32>) -> Response {
    axum::Json(ClusterInfoWrapper {
        cluster_info: ClusterInfo {
            id: s.ctx.started_on,
            started_on: s.ctx.started_on,
            state: "STARTED".into(),
            ha_state: "STANDBY".into(),
            rm_state_store_name: s.ctx.store.name().into(),
            resource_manager_version: env!("CARGO_PKG_VERSION").into(),
            resource_manager_build_version: format!("weft {}", env!("CARGO_PKG_VERSION")),
            resource_manager_version_built_on: String::new(),
            ha_zoo_keeper_connection_state: ELECTION_DESCRIPTION.into(),
            rm_epoch: active_epoch.unwrap_or(0),
        },
    })
    .into_response()
}

/// Shown where YARN shows its ZooKeeper connection state.
pub(crate) const ELECTION_DESCRIPTION: &str = "Leader election through the state store's lease (no ZooKeeper).";

fn standby_metrics(s: &HaState) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &s.ctx.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics encoding: {e}")).into_response();
    }
    let content_type = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// The election loop of an HA RM: standby until it takes the lease, active until it loses or
/// gives it up, and so on until `stop`.
pub(crate) async fn elect(
    ctx: Arc<RmContext>,
    role: Arc<Role>,
    mut stop: watch::Receiver<bool>,
    mut handover: mpsc::Receiver<HandoverRequest>,
) {
    let ha = &ctx.cfg.ha;
    let interval = Duration::from_millis(ha.renew_interval_ms);
    let lease = Duration::from_millis(ha.lease_ms);
    // After handing over, leave the lease to the others for a while.
    let mut hold_off_until: Option<Instant> = None;
    let mut last_error: Option<String> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let may_acquire = hold_off_until.is_none_or(|until| Instant::now() >= until);
        if may_acquire {
            let sent = Instant::now();
            match tokio::time::timeout(lease, ctx.store.try_acquire_lease(&ctx.rm_address, ha.lease_ms)).await {
                Ok(Ok(LeaseOutcome::Acquired { epoch })) => {
                    last_error = None;
                    let validity = Arc::new(LeaseValidity::new(sent + lease));
                    let outcome = run_active(&ctx, &role, epoch, validity, &mut stop, &mut handover).await;
                    role.set_standby(None);
                    ctx.metrics.clear();
                    match outcome {
                        ActiveOutcome::Shutdown => return,
                        // Long enough for a standby (trying every interval) to take the lease
                        // first; short, so a handover back soon after still finds an RM to take it.
                        ActiveOutcome::HandedOver => hold_off_until = Some(Instant::now() + 2 * interval),
                        // Try again after the usual interval, so a term that cannot start (say,
                        // an invalid queues file) is not retried in a tight loop.
                        ActiveOutcome::Lost => {}
                    }
                }
                Ok(Ok(LeaseOutcome::HeldBy { holder, epoch })) => {
                    last_error = None;
                    // Our own name from before a restart is no one to redirect to.
                    let active = (holder != ctx.rm_address).then_some((holder, epoch));
                    role.set_standby(active);
                }
                Ok(Err(e)) => {
                    let message = error_chain(&e);
                    if last_error.as_ref() != Some(&message) {
                        tracing::warn!(error = %message, "cannot reach the state store for leader election");
                    }
                    last_error = Some(message);
                }
                Err(_) => tracing::warn!("leader election call to the state store timed out"),
            }
        }
        tokio::select! {
            () = stopped(&mut stop) => return,
            () = tokio::time::sleep(interval) => {}
            // A standby has nothing to hand over.
            Some(done) = handover.recv() => { let _ = done.send(()); }
        }
    }
}

enum ActiveOutcome {
    /// The process is stopping.
    Shutdown,
    /// Planned handover: the lease was released.
    HandedOver,
    /// Deposed, fenced, lease expired, or recovery failed.
    Lost,
}

async fn run_active(
    ctx: &Arc<RmContext>,
    role: &Role,
    epoch: u32,
    validity: Arc<LeaseValidity>,
    stop: &mut watch::Receiver<bool>,
    handover: &mut mpsc::Receiver<HandoverRequest>,
) -> ActiveOutcome {
    let ha = &ctx.cfg.ha;
    let lease = Duration::from_millis(ha.lease_ms);
    let took_over = Instant::now();
    let mut term = match Term::start(ctx, epoch, Some(validity.clone())).await {
        Ok(term) => term,
        Err(e) => {
            tracing::error!(epoch, error = %error_chain(&e), "cannot become active; giving the lease up");
            let _ = ctx.store.release_lease(epoch).await;
            return ActiveOutcome::Lost;
        }
    };
    role.set_active(term.router.clone(), epoch);
    ctx.metrics.ha_active.set(1);
    ctx.metrics.ha_epoch.set(i64::from(epoch));
    ctx.metrics.ha_became_active.inc();
    tracing::info!(epoch, recovery_ms = took_over.elapsed().as_millis() as u64, "this ResourceManager is now active");
    let mut renewals = tokio::time::interval(Duration::from_millis(ha.renew_interval_ms));
    renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renewals.tick().await;
    loop {
        tokio::select! {
            () = stopped(stop) => {
                role.set_standby(None);
                term.stop().await;
                let _ = ctx.store.release_lease(epoch).await;
                return ActiveOutcome::Shutdown;
            }
            Some(done) = handover.recv() => {
                let started = Instant::now();
                role.set_standby(None);
                term.stop().await;
                if let Err(e) = ctx.store.release_lease(epoch).await {
                    tracing::warn!(error = %error_chain(&e), "cannot release the lease; the standby takes over when it expires");
                }
                tracing::info!(epoch, took_ms = started.elapsed().as_millis() as u64, "handed over: now standby");
                let _ = done.send(());
                return ActiveOutcome::HandedOver;
            }
            end = &mut term.core_task => {
                let end = end.unwrap_or(TermEnd::Stopped);
                tracing::error!(epoch, ?end, "stepping down: no longer the active ResourceManager");
                return ActiveOutcome::Lost;
            }
            _ = renewals.tick() => {
                let sent = Instant::now();
                match tokio::time::timeout(lease, ctx.store.renew_lease(epoch, ha.lease_ms)).await {
                    Ok(Ok(true)) => validity.extend(sent + lease),
                    Ok(Ok(false)) => {
                        tracing::error!(epoch, "stepping down: another ResourceManager took the lease");
                        role.set_standby(None);
                        term.stop().await;
                        return ActiveOutcome::Lost;
                    }
                    failed => {
                        let error = match failed {
                            Ok(Err(e)) => error_chain(&e),
                            _ => "timed out".to_owned(),
                        };
                        if validity.is_valid() {
                            tracing::warn!(epoch, %error, "cannot renew the lease; retrying");
                        } else {
                            tracing::error!(epoch, %error, "stepping down: the lease expired before it could be renewed");
                            role.set_standby(None);
                            term.stop().await;
                            return ActiveOutcome::Lost;
                        }
                    }
                }
            }
        }
    }
}
