//! The ResourceManager's sans-IO scheduler core.
//!
//! [`Core`] owns every application, attempt, container and node. It is driven by [`Event`]s with
//! the current time passed in, and asks for everything else (replies, store writes, AM launches,
//! container stops) through [`Effects`]. It never awaits, reads a clock, opens a socket or takes a
//! lock, so the RM server, the simulator and unit tests run the same code.
//!
//! `Core` drives parts that each own their state: the application table ([`apps`]), the cluster
//! of nodes and live containers ([`cluster`]), the AM sessions ([`sessions`]), the deadline
//! queues ([`timers`]), the pending index ([`pending`]) and the queue hierarchy ([`hierarchy`]).
//!
//! Architecture Invariant: every state change of an app, attempt, container or node goes through
//! [`lifecycle::transition`] with that lifecycle's edge table, inside the part that owns the
//! object; an illegal one is returned as [`CoreError::IllegalTransition`] or, where nobody can
//! be answered, logged and counted in [`Counters::internal_errors`].
//!
//! Architecture Invariant: a part's fields are private; everything else changes its state only
//! through its methods.
//!
//! Architecture Invariant: after every [`Core::handle`], [`Core::check_invariants`] holds (it runs
//! automatically in debug builds and tests).

pub mod apps;
pub mod cluster;
pub mod effects;
pub mod error;
pub mod hierarchy;
pub mod invariants;
pub mod lifecycle;
pub mod model;
pub mod pending;
pub mod preemption;
pub mod preemption_monitor;
pub mod queues;
pub mod records;
pub mod scheduler;
pub mod sessions;
pub mod settings;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod timers;

#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod tenancy_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher;

use weft_common::protocol::{
    AllocateRequest, AllocateResponse, AmCommand, ContainerReport, ContainerStatus, FinishAmRequest, FinishAmResponse,
    NodeAction, NodeHeartbeatRequest, NodeHeartbeatResponse, RegisterAmRequest, RegisterAmResponse,
    RegisterNodeRequest, RegisterNodeResponse, am_env,
};
use weft_common::rest::{ApplicationSubmissionContext, NewApplication};
use weft_common::states::{
    AppState, AttemptState, ContainerState, FinalStatus, NmContainerState, NodeState, exit_status,
};
use weft_common::token::{self, AmToken, ContainerToken, MasterKey};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

pub use apps::{App, Attempt};
pub use cluster::{Node, RmContainer};
pub use effects::{AmLaunch, ContainerStop, Effects, Observation, RecordingEffects, Reply, ReqId};
pub use error::CoreError;
pub use model::{Ask, AskKey, ContainerHistory, GangReservation};

use crate::queues::QueueIndex;
use crate::queues::{QueuesConfig, ReloadPlan, SchedulerMode};
use crate::records::{AppRecord, AttemptRecord, NodeRecord, RecoveredState, StoreOp};
pub use hierarchy::Hierarchy;
pub use settings::{CoreSettings, DEFAULT_TICK_INTERVAL_MS};

/// The queue every application lands in until hierarchical queues arrive.
pub const DEFAULT_QUEUE: &str = "default";

/// Everything the core is configured with: who this RM incarnation is, its settings and the queue
/// configuration. The server builds it in `RmConfig::core_config`, the simulator from its
/// scenario, tests with [`CoreConfig::for_tests`].
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Start time of this RM incarnation; the first part of every application id it issues.
    pub cluster_ts: Millis,
    /// State-store fencing epoch of this incarnation; prefixes container ids.
    pub epoch: u32,
    pub container_token_key: MasterKey,
    pub am_token_key: MasterKey,
    /// RM web addresses handed to AMs.
    pub rm_addresses: Vec<String>,
    pub settings: CoreSettings,
    /// Scheduler mode and queue tree (the default: FIFO over one `root.default` queue).
    pub queues: QueuesConfig,
}

#[derive(Debug)]
pub enum Event {
    NewApplication {
        req: ReqId,
    },
    Submit {
        req: ReqId,
        user: String,
        context: Box<ApplicationSubmissionContext>,
    },
    Kill {
        req: ReqId,
        app: ApplicationId,
        diagnostics: Option<String>,
    },
    NodeRegister {
        req: ReqId,
        request: RegisterNodeRequest,
    },
    NodeHeartbeat {
        req: ReqId,
        request: NodeHeartbeatRequest,
    },
    AmRegister {
        req: ReqId,
        attempt: AttemptId,
        request: RegisterAmRequest,
    },
    Allocate {
        req: ReqId,
        attempt: AttemptId,
        request: AllocateRequest,
    },
    AmFinish {
        req: ReqId,
        attempt: AttemptId,
        request: FinishAmRequest,
    },
    /// The NM accepted the AM container launch.
    AmLaunched {
        container: ContainerId,
    },
    AmLaunchFailed {
        container: ContainerId,
        diagnostics: String,
    },
    /// Switch to a new queue configuration. `requested_by` is the REST caller (checked against
    /// root's administer ACL); None when the RM itself noticed the queues file changed.
    ReloadQueues {
        req: ReqId,
        config: Box<QueuesConfig>,
        requested_by: Option<String>,
    },
    /// Move an unfinished application to another leaf queue.
    MoveApp {
        req: ReqId,
        app: ApplicationId,
        queue: String,
    },
    /// Change an unfinished application's priority.
    SetPriority {
        req: ReqId,
        app: ApplicationId,
        priority: i32,
    },
    /// Every store write emitted so far is durable.
    Persisted,
    /// Time passed: expiry checks and long-poll deadlines.
    Tick,
}

impl Event {
    /// A span naming the ids this event concerns, so every log line of its step carries them.
    fn span(&self) -> tracing::Span {
        use tracing::debug_span;
        match self {
            Event::NewApplication { .. } => debug_span!("new_application"),
            Event::Submit { context, .. } => debug_span!("submit", app = ?context.application_id),
            Event::Kill { app, .. } => debug_span!("kill", %app),
            Event::NodeRegister { request, .. } => debug_span!("node_register", node = %request.node_id),
            Event::NodeHeartbeat { request, .. } => debug_span!("node_heartbeat", node = %request.node_id),
            Event::AmRegister { attempt, .. } => debug_span!("am_register", %attempt),
            Event::Allocate { attempt, .. } => debug_span!("allocate", %attempt),
            Event::AmFinish { attempt, .. } => debug_span!("am_finish", %attempt),
            Event::AmLaunched { container } => debug_span!("am_launched", %container),
            Event::AmLaunchFailed { container, .. } => debug_span!("am_launch_failed", %container),
            Event::ReloadQueues { .. } => debug_span!("reload_queues"),
            Event::MoveApp { app, .. } => debug_span!("move_app", %app),
            Event::SetPriority { app, .. } => debug_span!("set_priority", %app),
            Event::Persisted => debug_span!("persisted"),
            Event::Tick => debug_span!("tick"),
        }
    }
}

/// Counters since this RM started (YARN's cluster metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub apps_submitted: u64,
    pub apps_completed: u64,
    pub apps_failed: u64,
    pub apps_killed: u64,
    pub containers_allocated: u64,
    /// Errors no caller could be given (illegal transitions in steps that answer no one); each
    /// is logged where it happens. Zero unless the core has a bug.
    pub internal_errors: u64,
}

pub struct Core {
    cfg: CoreConfig,
    container_signer: token::Signer,
    hierarchy: Hierarchy,
    /// Applications with their attempts, asks and containers; ids issued; retention.
    apps: apps::AppTable,
    /// Nodes, live containers and the indexes over them.
    cluster: cluster::Cluster,
    /// Apps with demand, per leaf, in serving order.
    pending: pending::PendingIndex,
    /// What a `Tick` may have to act on, and from when (see [`timers`]).
    timers: timers::Timers,
    counters: Counters,
    gang_reservation: Option<GangReservation>,
    /// The gang whose reservation last timed out, and until when it may not reserve again.
    gang_yielding: Option<(ApplicationId, AskKey, Millis)>,
    /// Containers chosen for preemption and not yet gone.
    preemption_marks: BTreeMap<ContainerId, preemption_monitor::PreemptionMark>,
    last_preemption_round: Millis,
    starvation: preemption_monitor::StarvationClocks,
    /// Set by [`Core::recover`] while scheduling waits for known nodes to re-register.
    recovery: Option<RecoveryWait>,
    /// The AM side of every live attempt: registration, outboxes, long polls.
    sessions: sessions::AmSessions,
}

#[derive(Debug)]
struct RecoveryWait {
    awaiting: BTreeSet<NodeId>,
    until: Millis,
}

impl Core {
    pub fn new(cfg: CoreConfig) -> Result<Self, CoreError> {
        let hierarchy = Hierarchy::new(cfg.queues.clone(), Resource::ZERO)?;
        Ok(Self {
            container_signer: token::Signer::new(&cfg.container_token_key),
            cluster: cluster::Cluster::new(cfg.settings.min_allocation),
            timers: timers::Timers::new(&cfg.settings),
            cfg,
            hierarchy,
            apps: apps::AppTable::default(),
            pending: Default::default(),
            counters: Counters::default(),
            gang_reservation: None,
            gang_yielding: None,
            preemption_marks: BTreeMap::new(),
            last_preemption_round: 0,
            starvation: Default::default(),
            recovery: None,
            sessions: sessions::AmSessions::default(),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Read access for views (REST, metrics, tests).

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.iter()
    }
    pub fn app(&self, id: ApplicationId) -> Option<&App> {
        self.apps.get(id)
    }
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.cluster.nodes()
    }
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.cluster.node(id)
    }
    pub fn container(&self, id: &ContainerId) -> Option<&RmContainer> {
        self.cluster.container(id)
    }
    pub fn live_containers(&self) -> impl Iterator<Item = &RmContainer> {
        self.cluster.containers()
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// YARN's MODIFY_APP check: the owner, or an administrator of the app's queue, may kill,
    /// move or re-prioritise an application.
    pub fn may_modify(&self, app: ApplicationId, user: &str) -> Result<(), CoreError> {
        let a = self.apps.get(app).ok_or(CoreError::UnknownApp(app))?;
        let admin = a.queue_index().is_some_and(|q| self.hierarchy.administers(q, user));
        if a.user() == user || admin {
            return Ok(());
        }
        Err(CoreError::ModifyDenied {
            user: user.to_owned(),
            app,
            owner: a.user().to_owned(),
            queue: a.queue().to_owned(),
        })
    }
    pub fn preemption_marks(&self) -> &BTreeMap<ContainerId, preemption_monitor::PreemptionMark> {
        &self.preemption_marks
    }
    pub fn gang_reservation(&self) -> Option<&GangReservation> {
        self.gang_reservation.as_ref()
    }
    pub fn cluster_used(&self) -> Resource {
        self.cluster.used()
    }
    /// Total resources of usable (RUNNING) nodes.
    pub fn cluster_capacity(&self) -> Resource {
        self.cluster.capacity()
    }
    /// The AM session of `attempt`, while it is its app's live attempt.
    pub fn am_session(&self, attempt: AttemptId) -> Option<&sessions::AmSession> {
        self.sessions.get(attempt)
    }

    // -----------------------------------------------------------------------------------------
    // Entry points.

    /// Loads state from the store when this RM becomes active (start-up or failover), keeping
    /// the work of the previous incarnation: finished apps are listed again; an unfinished app
    /// keeps its live attempt, whose AM re-registers and whose containers are adopted as their
    /// NodeManagers re-register with them (see [`Core::adopt_container`]). Scheduling waits until
    /// every stored node has re-registered or two heartbeat intervals have passed, so capacity
    /// still held by running containers is not handed out twice.
    ///
    /// Every object starts in the state its record holds; each change from there goes through
    /// the lifecycle tables, and a stored state from which the needed edge does not exist (only
    /// a damaged store has one) fails the recovery with [`CoreError::IllegalTransition`].
    pub fn recover(&mut self, state: RecoveredState, now: Millis, fx: &mut impl Effects) -> Result<(), CoreError> {
        let mut attempts: BTreeMap<ApplicationId, Vec<AttemptRecord>> = BTreeMap::new();
        for a in state.attempts {
            attempts.entry(a.id.app).or_default().push(a);
        }
        for rec in state.apps {
            let id = rec.id;
            let mut app = App::from_record(rec);
            for a in attempts.remove(&id).unwrap_or_default() {
                app.recover_attempt(a)?;
            }
            let tree = self.hierarchy.tree();
            app.set_queue_index(tree.find(app.queue()).filter(|q| tree.queues[*q].is_leaf));
            // The file does not list queues that placement rules created: create it again when a
            // `create: true` rule still would.
            if !app.state().is_final()
                && app.queue_index().is_none()
                && let Some(path) = self.hierarchy.recreatable_queue(app.queue(), app.user())
            {
                match self.hierarchy.create_queue(&path) {
                    Ok((leaf, moved)) => {
                        self.remap_queue_indices(&moved);
                        app.set_queue_index(Some(leaf));
                    }
                    Err(e) => tracing::warn!(app = %id, queue = %path, error = %e, "cannot create the queue again"),
                }
            }
            if !app.state().is_final() && app.queue_index().is_none() {
                // Its containers are cleaned up when their NMs report them: a failed app has
                // no live attempt.
                for attempt in app.fail_without_queue(now)? {
                    fx.persist(StoreOp::PutAttempt(attempt));
                }
                fx.persist(StoreOp::PutApp(app.record()));
            }
            if app.state().is_final() {
                self.apps.insert_recovered(app);
                continue;
            }
            if let Some(leaf) = app.queue_index() {
                self.hierarchy.app_added(leaf, app.user());
            }
            match app.live_attempt().map(|a| (a.id(), a.state())) {
                // The last attempt ended but its successor was never stored: `start_attempt`
                // moves the app (SUBMITTED or RUNNING) to ACCEPTED.
                None => {
                    self.apps.insert_recovered(app);
                    self.start_attempt(id, now, fx)?;
                }
                // Still waiting for its AM container: ask again.
                Some((attempt, AttemptState::Scheduled)) => {
                    app.resume_waiting_for_am(now)?;
                    self.sessions.open(attempt);
                    self.apps.insert_recovered(app);
                    self.sync_pending(id);
                }
                // Its AM container was allocated: the AM (if it runs) registers again; if it
                // never does, AM expiry fails the attempt as usual.
                Some((attempt, _)) => {
                    app.resume_waiting_for_registration(now)?;
                    self.timers.watch_am(attempt, now);
                    self.sessions.open(attempt);
                    self.apps.insert_recovered(app);
                }
            }
        }
        self.apps.sort_completed();
        let known = self.cluster.recover_stored(state.nodes.into_iter().map(|n| n.id));
        if !known.is_empty() {
            let until = now + 2 * self.cfg.settings.nm_heartbeat_interval_ms;
            self.recovery = Some(RecoveryWait { awaiting: known.clone(), until });
            tracing::info!(nodes = known.len(), until, "scheduling paused until the known NodeManagers re-register");
        }
        self.pending.mark_stale();
        self.after_step(now, fx);
        Ok(())
    }

    /// Whether scheduling still waits for NodeManagers to re-register after a recovery; ends
    /// the wait once they all have or its time is up.
    fn awaiting_nodes(&mut self, now: Millis) -> bool {
        let Some(wait) = &self.recovery else { return false };
        if !wait.awaiting.is_empty() && now < wait.until {
            return true;
        }
        if !wait.awaiting.is_empty() {
            tracing::warn!(missing = ?wait.awaiting, "scheduling resumes without every known NodeManager");
        } else {
            tracing::info!("every known NodeManager re-registered; scheduling resumes");
        }
        self.recovery = None;
        false
    }

    /// Is scheduling paused for recovery? (For views.)
    pub fn recovering(&self) -> bool {
        self.recovery.is_some()
    }

    pub fn handle(&mut self, event: Event, now: Millis, fx: &mut impl Effects) {
        let _span = event.span().entered();
        match event {
            Event::NewApplication { req } => {
                let id = self.apps.issue_id(self.cfg.cluster_ts);
                let reply = NewApplication {
                    application_id: id,
                    maximum_resource_capability: self.cfg.settings.max_allocation,
                };
                fx.reply(req, Reply::NewApplication(Ok(reply)));
            }
            Event::Submit { req, user, context } => {
                if let Err(e) = self.submit(req, user, *context, now, fx) {
                    fx.reply(req, Reply::Submit(Err(e)));
                }
            }
            Event::Kill { req, app, diagnostics } => {
                let r = self.kill(app, diagnostics, now, fx);
                fx.reply(req, Reply::Kill(r));
            }
            Event::NodeRegister { req, request } => {
                let r = self.register_node(request, now, fx);
                fx.reply(req, Reply::NodeRegister(r));
            }
            Event::NodeHeartbeat { req, request } => {
                let r = self.node_heartbeat(request, now, fx);
                fx.reply(req, Reply::NodeHeartbeat(r));
            }
            Event::AmRegister { req, attempt, request } => {
                let r = self.register_am(attempt, request, now);
                fx.reply(req, Reply::AmRegister(r));
            }
            Event::Allocate { req, attempt, request } => {
                if let Err(e) = self.allocate(req, attempt, request, now, fx) {
                    fx.reply(req, Reply::Allocate(Err(e)));
                }
            }
            Event::AmFinish { req, attempt, request } => {
                let r = self.finish_am(attempt, request, now, fx);
                fx.reply(req, Reply::AmFinish(r));
            }
            Event::AmLaunched { container } => self.am_launched(container, now, fx),
            Event::AmLaunchFailed { container, diagnostics } => {
                if self.cluster.container(&container).is_some() {
                    let diag = format!("Error launching AM container {container}: {diagnostics}");
                    self.complete_container(container, exit_status::INVALID, &diag, now, fx, None);
                }
            }
            Event::ReloadQueues { req, config, requested_by } => {
                let r = self.reload_queues(*config, requested_by.as_deref());
                fx.reply(req, Reply::ReloadQueues(r));
            }
            Event::MoveApp { req, app, queue } => {
                let r = self.move_app(app, &queue, fx);
                fx.reply(req, Reply::MoveApp(r));
            }
            Event::SetPriority { req, app, priority } => {
                let r = self.set_priority(app, priority, fx);
                fx.reply(req, Reply::SetPriority(r));
            }
            Event::Persisted => self.persisted(now, fx),
            Event::Tick => self.tick(now, fx),
        }
        self.after_step(now, fx);
    }

    /// Scheduling runs after every event, so demand or capacity that appears is served at once
    /// rather than on the next node heartbeat.
    fn after_step(&mut self, now: Millis, fx: &mut impl Effects) {
        if !self.awaiting_nodes(now) {
            self.schedule(now, fx);
        }
        if cfg!(any(test, debug_assertions))
            && let Err(violation) = self.check_invariants()
        {
            panic!("core invariant violated: {violation}");
        }
    }

    /// Takes an error that no caller can be given (the step answers no one, or has answered
    /// already): logged with `context`, counted and observed, never dropped silently.
    fn internal_error(&mut self, context: &str, error: &CoreError, fx: &mut impl Effects) {
        tracing::error!(error = %error, "{context}");
        self.counters.internal_errors += 1;
        fx.observe(Observation::InternalError);
    }

    // -----------------------------------------------------------------------------------------
    // Applications.

    fn submit(
        &mut self,
        req: ReqId,
        user: String,
        ctx: ApplicationSubmissionContext,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<(), CoreError> {
        let id = ctx
            .application_id
            .ok_or(CoreError::InvalidSubmission { field: "application-id", message: "is required".into() })?;
        // Ids an earlier incarnation issued are accepted too: a client that got its id just
        // before a failover submits it to the new active.
        if !self.apps.was_issued(id, self.cfg.cluster_ts) {
            return Err(CoreError::AppIdNotIssued(id));
        }
        if self.apps.contains(id) {
            return Err(CoreError::AlreadySubmitted(id));
        }
        let placement = self.hierarchy.place(ctx.queue.as_deref(), &user)?;
        match &placement {
            hierarchy::QueuePlacement::Existing(leaf) => self.hierarchy.check_submit(*leaf, &user)?,
            hierarchy::QueuePlacement::Create { path } => self.hierarchy.check_submit_to_created(path, &user)?,
        }
        if ctx.unmanaged_am {
            return Err(CoreError::InvalidSubmission {
                field: "unmanaged-AM",
                message: "unmanaged AMs are not supported".into(),
            });
        }
        let spec = &ctx.am_container_spec;
        let commands = spec.commands.as_ref().map(|c| c.command.clone()).unwrap_or_default();
        if commands.iter().all(|c| c.trim().is_empty()) {
            return Err(CoreError::InvalidSubmission {
                field: "am-container-spec.commands",
                message: "at least one command is required".into(),
            });
        }
        let mut local_resources = BTreeMap::new();
        for entry in spec.local_resources.iter().flat_map(|e| &e.entry) {
            let resource = weft_common::protocol::LocalResource::from(&entry.value);
            if resource.local_path().is_none() {
                return Err(CoreError::InvalidSubmission {
                    field: "am-container-spec.local-resources",
                    message: format!(
                        "resource {:?} of {:?} must be an absolute path or a file:// URL",
                        resource.resource, entry.key
                    ),
                });
            }
            local_resources.insert(entry.key.clone(), resource);
        }
        let am_resource = self.normalize("resource", ctx.resource.unwrap_or(self.cfg.settings.min_allocation))?;
        let max_attempts = match ctx.max_app_attempts {
            None | Some(0) => self.cfg.settings.max_app_attempts,
            Some(n) => n.min(self.cfg.settings.max_app_attempts),
        };
        let launch_context = weft_common::protocol::ContainerLaunchContext {
            commands,
            environment: spec.environment.as_ref().map(|e| e.to_map()).unwrap_or_default(),
            local_resources,
        };
        // Created only now that the submission is known to be valid, so a refused one leaves no
        // empty queue behind.
        let leaf = match placement {
            hierarchy::QueuePlacement::Existing(leaf) => leaf,
            hierarchy::QueuePlacement::Create { path } => {
                let (leaf, moved) = self.hierarchy.create_queue(&path)?;
                self.remap_queue_indices(&moved);
                // What only the new queue knows, such as its max-applications.
                self.hierarchy.check_submit(leaf, &user)?;
                leaf
            }
        };
        let queue = self.queue_display_name(leaf);
        let record = AppRecord {
            id,
            user,
            queue,
            name: ctx.application_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "N/A".into()),
            application_type: ctx.application_type.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| "YARN".into()),
            tags: ctx.application_tags.map(|t| t.tag).unwrap_or_default(),
            priority: self.hierarchy.app_priority(leaf, ctx.priority),
            max_attempts,
            am_resource,
            launch_context,
            submit_time: now,
            finish_time: None,
            state: AppState::New,
            final_status: FinalStatus::Undefined,
            diagnostics: String::new(),
        };
        let app = App::submitted(record, leaf, req)?;
        fx.persist(StoreOp::PutApp(app.record()));
        self.hierarchy.app_added(leaf, app.user());
        self.apps.insert_submitted(app);
        self.counters.apps_submitted += 1;
        Ok(())
    }

    /// Rounds a request up to the minimum allocation and rejects one above the maximum.
    fn normalize(&self, field: &'static str, r: Resource) -> Result<Resource, CoreError> {
        let max = self.cfg.settings.max_allocation;
        if !max.fits(&r) {
            return Err(CoreError::ResourceAboveMaximum { field, requested: r, maximum: max });
        }
        Ok(r.round_up_to(self.cfg.settings.min_allocation))
    }

    fn reload_queues(&mut self, config: QueuesConfig, requested_by: Option<&str>) -> Result<ReloadPlan, CoreError> {
        if let Some(user) = requested_by {
            let root = self.hierarchy.tree().root();
            if !root.administer_acl.allows(user, self.hierarchy.tree().user_groups(user)) {
                return Err(CoreError::AdminDenied(user.to_owned()));
            }
        }
        let (plan, moved) = self.hierarchy.reload(config)?;
        self.remap_queue_indices(&moved);
        tracing::info!(added = ?plan.added, removed = ?plan.removed, changed = plan.changed.len(), "queue configuration reloaded");
        Ok(plan)
    }

    /// After the queue tree changed (a reload, or a queue created by a placement rule): points
    /// every app and preemption mark at its queue's new index (`moved[old]`); marks of queues
    /// that are gone are dropped.
    fn remap_queue_indices(&mut self, moved: &[Option<QueueIndex>]) {
        self.pending.mark_stale();
        for app in self.apps.iter_mut() {
            app.remap_queue(moved);
        }
        self.preemption_marks.retain(|_, mark| match moved.get(mark.from_queue).copied().flatten() {
            Some(q) => {
                mark.from_queue = q;
                true
            }
            None => false,
        });
    }

    fn move_app(&mut self, id: ApplicationId, queue: &str, fx: &mut impl Effects) -> Result<String, CoreError> {
        let app = self.apps.get(id).ok_or(CoreError::UnknownApp(id))?;
        if app.state().is_final() {
            return Err(CoreError::AppFinished { app: id, state: app.state(), what: "moving" });
        }
        let from = app.queue_index().ok_or_else(|| CoreError::Internal(format!("{id} has no queue")))?;
        let to = self
            .hierarchy
            .tree()
            .find(queue)
            .filter(|q| self.hierarchy.tree().queues[*q].is_leaf)
            .ok_or_else(|| CoreError::UnknownQueue(queue.to_owned()))?;
        if to != from {
            self.hierarchy.check_move(to, app.user(), app.used())?;
            let held: Vec<(Resource, bool)> = app
                .containers()
                .iter()
                .filter_map(|c| self.cluster.container(c))
                .map(|c| (c.resource(), c.is_am()))
                .collect();
            let user = app.user().to_owned();
            self.hierarchy.move_app(from, to, &user, &held);
        }
        let display = self.queue_display_name(to);
        let app = self.apps.get_mut(id).ok_or(CoreError::UnknownApp(id))?;
        app.move_to_queue(to, display.clone());
        fx.persist(StoreOp::PutApp(app.record()));
        self.sync_pending(id);
        Ok(display)
    }

    fn set_priority(&mut self, id: ApplicationId, priority: i32, fx: &mut impl Effects) -> Result<i32, CoreError> {
        let app = self.apps.get(id).ok_or(CoreError::UnknownApp(id))?;
        if app.state().is_final() {
            return Err(CoreError::AppFinished { app: id, state: app.state(), what: "a priority change" });
        }
        let capped = app.queue_index().map_or(priority, |q| priority.min(self.hierarchy.max_priority(q)));
        let app = self.apps.get_mut(id).ok_or(CoreError::UnknownApp(id))?;
        app.set_priority(capped);
        fx.persist(StoreOp::PutApp(app.record()));
        self.sync_pending(id);
        Ok(capped)
    }

    /// How an app's queue is shown: the leaf name as YARN's capacity scheduler does, the full
    /// path as its fair scheduler does.
    fn queue_display_name(&self, leaf: crate::queues::QueueIndex) -> String {
        let q = &self.hierarchy.tree().queues[leaf];
        if self.hierarchy.mode() == SchedulerMode::Fair { q.path.clone() } else { q.name.clone() }
    }

    fn persisted(&mut self, now: Millis, fx: &mut impl Effects) {
        for id in self.apps.take_saved() {
            let Some(app) = self.apps.get_mut(id) else { continue };
            if let Some(req) = app.take_saving_reply() {
                fx.reply(req, Reply::Submit(Ok(id)));
            }
            if app.state() != AppState::NewSaving {
                continue; // killed while saving
            }
            // The submit is acknowledged already: nobody to tell but the log and the counters.
            let r = app.saved().map_err(CoreError::from);
            if let Err(e) = r.and_then(|()| self.start_attempt(id, now, fx)) {
                self.internal_error(&format!("cannot start the first attempt of {id}"), &e, fx);
            }
        }
    }

    /// Creates the next attempt and asks for its AM container.
    fn start_attempt(&mut self, id: ApplicationId, now: Millis, fx: &mut impl Effects) -> Result<(), CoreError> {
        let app = self.apps.get_mut(id).ok_or(CoreError::UnknownApp(id))?;
        let attempt = app.start_attempt(now)?;
        self.sessions.open(attempt.id);
        fx.persist(StoreOp::PutAttempt(attempt));
        self.sync_pending(id);
        Ok(())
    }

    fn kill(
        &mut self,
        id: ApplicationId,
        diagnostics: Option<String>,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<AppState, CoreError> {
        let app = self.apps.get(id).ok_or(CoreError::UnknownApp(id))?;
        if app.state().is_final() {
            return Ok(app.state());
        }
        let diag = diagnostics.unwrap_or_else(|| "Application killed by user.".into());
        self.end_current_attempt(id, AttemptState::Killed, &diag, None, now, fx)?;
        self.finish_app(id, AppState::Killed, FinalStatus::Killed, diag, now, fx)?;
        Ok(AppState::Killed)
    }

    /// Moves the app to a final state, drops its demand, stops its containers and persists it.
    fn finish_app(
        &mut self,
        id: ApplicationId,
        state: AppState,
        final_status: FinalStatus,
        diagnostics: String,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<(), CoreError> {
        let app = self.apps.get_mut(id).ok_or(CoreError::UnknownApp(id))?;
        app.finish(state, final_status, diagnostics, now)?;
        if let Some(leaf) = app.queue_index() {
            self.hierarchy.app_removed(leaf, app.user());
        }
        self.pending.set(id, None);
        if !app.is_saving() {
            fx.persist(StoreOp::PutApp(app.record()));
        }
        // Containers other than a finished AM's own are stopped now; the AM container gets
        // `finished_app_container_grace_ms` to exit by itself after unregistering.
        let am_container = app.current_attempt().and_then(|a| a.am_container());
        let victims: Vec<ContainerId> = app
            .containers()
            .iter()
            .copied()
            .filter(|c| state != AppState::Finished || Some(*c) != am_container)
            .collect();
        self.kill_containers(victims, &format!("Container killed because application {id} is {state}"), now, fx);
        if self.apps.get(id).is_some_and(|a| !a.containers().is_empty()) {
            self.timers.watch_draining(id, now);
        }
        match state {
            AppState::Finished => self.counters.apps_completed += 1,
            AppState::Failed => self.counters.apps_failed += 1,
            AppState::Killed => self.counters.apps_killed += 1,
            _ => {}
        }
        fx.observe(Observation::AppFinished { app: id, state });
        for retired in self.apps.finished(id, self.cfg.settings.max_completed_apps) {
            fx.persist(StoreOp::RemoveApp(retired));
        }
        Ok(())
    }

    /// Ends the current attempt (if it is still live): answers a parked allocate with SHUTDOWN,
    /// drops its asks and persists it. Containers are the caller's business.
    fn end_current_attempt(
        &mut self,
        id: ApplicationId,
        to: AttemptState,
        diagnostics: &str,
        am_exit: Option<i32>,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<(), CoreError> {
        let limit = self.headroom(id);
        let nodes = self.usable_nodes();
        self.pending.set(id, None);
        let app = self.apps.get_mut(id).ok_or(CoreError::UnknownApp(id))?;
        app.drop_demand();
        let Some(record) = app.end_attempt(to, diagnostics, am_exit, now)? else { return Ok(()) };
        if let Some((req, resp)) = self.sessions.close(id, limit, nodes, AmCommand::Shutdown) {
            fx.reply(req, Reply::Allocate(Ok(resp)));
        }
        fx.persist(StoreOp::PutAttempt(record));
        Ok(())
    }

    /// The current attempt failed: stop its containers, then retry or fail the app.
    fn fail_attempt(
        &mut self,
        id: ApplicationId,
        diagnostics: String,
        am_exit: Option<i32>,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<(), CoreError> {
        self.end_current_attempt(id, AttemptState::Failed, &diagnostics, am_exit, now, fx)?;
        let app = self.apps.get(id).ok_or(CoreError::UnknownApp(id))?;
        let live: Vec<ContainerId> = app.containers().iter().copied().collect();
        self.kill_containers(live, &format!("Container of a failed attempt of {id}"), now, fx);
        let app = self.apps.get(id).ok_or(CoreError::UnknownApp(id))?;
        let failures = app.counted_failures();
        if failures >= app.max_attempts() {
            let attempt = app.current_attempt().map(|a| a.id().to_string()).unwrap_or_default();
            let diag = format!(
                "Application {id} failed {failures} times (max attempts {}) due to: {diagnostics}. Last attempt: {attempt}. Failing the application.",
                app.max_attempts()
            );
            self.finish_app(id, AppState::Failed, FinalStatus::Failed, diag, now, fx)
        } else {
            tracing::info!(app = %id, %diagnostics, "attempt failed; starting a new attempt");
            self.start_attempt(id, now, fx)
        }
    }

    // -----------------------------------------------------------------------------------------
    // ApplicationMaster protocol.

    /// The attempt if it is the app's current, live attempt.
    fn live_attempt(&self, attempt: AttemptId) -> Result<&Attempt, CoreError> {
        let app = self.apps.get(attempt.app).ok_or(CoreError::UnknownApp(attempt.app))?;
        app.live_attempt().filter(|a| a.id() == attempt).ok_or(CoreError::AttemptNotCurrent(attempt))
    }

    fn register_am(
        &mut self,
        id: AttemptId,
        req: RegisterAmRequest,
        now: Millis,
    ) -> Result<RegisterAmResponse, CoreError> {
        self.live_attempt(id)?;
        let app = self.apps.get_mut(id.app).ok_or(CoreError::UnknownApp(id.app))?;
        if !app.am_registered(req.host, req.rpc_port, req.tracking_url, now)? || !self.sessions.register(id) {
            return Err(CoreError::AttemptNotCurrent(id));
        }
        Ok(RegisterAmResponse {
            application_id: id.app,
            attempt_id: id,
            queue: app.queue().to_owned(),
            user: app.user().to_owned(),
            maximum_capability: self.cfg.settings.max_allocation,
            minimum_capability: self.cfg.settings.min_allocation,
            containers_from_previous_attempts: Vec::new(),
        })
    }

    fn allocate(
        &mut self,
        req: ReqId,
        id: AttemptId,
        request: AllocateRequest,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<(), CoreError> {
        let limit = self.headroom(id.app);
        let nodes = self.usable_nodes();
        match self.live_attempt(id) {
            Ok(_) => {}
            // A finished attempt's AM is told to shut down rather than given an error.
            Err(CoreError::AttemptNotCurrent(_)) => {
                let mut resp = AllocateResponse { limit, num_cluster_nodes: nodes, ..Default::default() };
                resp.am_command = Some(AmCommand::Shutdown);
                resp.response_id = request.response_id + 1;
                fx.reply(req, Reply::Allocate(Ok(resp)));
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let session = self.sessions.get(id).filter(|s| s.registered()).ok_or(CoreError::AmNotRegistered(id))?;
        // A retry of the request whose response was lost gets the same response again.
        if request.response_id + 1 == session.response_id()
            && let Some(last) = session.last_response()
        {
            fx.reply(req, Reply::Allocate(Ok(last.clone())));
            return Ok(());
        }
        if request.response_id != session.response_id() {
            return Err(CoreError::InvalidResponseId {
                attempt: id,
                expected: session.response_id(),
                got: request.response_id,
            });
        }
        // Validate everything before changing anything.
        let mut asks = Vec::with_capacity(request.asks.len());
        for ask in &request.asks {
            if ask.capability.memory_mb == 0 && ask.capability.vcores == 0 && ask.num_containers > 0 {
                return Err(CoreError::InvalidResourceRequest(format!(
                    "ask at priority {} has an empty capability",
                    ask.priority
                )));
            }
            asks.push((ask, self.normalize("capability", ask.capability)?));
        }
        for c in &request.releases {
            if c.app() != id.app {
                return Err(CoreError::ForeignContainer { container: *c, attempt: id });
            }
        }

        let app = self.apps.get_mut(id.app).ok_or(CoreError::UnknownApp(id.app))?;
        app.set_progress(request.progress);
        app.heard_from_am(now);
        if let Some((old, response_id)) = self.sessions.abandon_parked(id) {
            // The AM gave up on its previous long poll (e.g. client timeout) and asked again.
            fx.reply(
                old,
                Reply::Allocate(Err(CoreError::InvalidResponseId {
                    attempt: id,
                    expected: response_id + 1,
                    got: response_id,
                })),
            );
        }
        for (ask, capability) in asks {
            let key = AskKey { priority: ask.priority, resource_name: ask.resource_name.clone(), capability };
            app.set_ask(key, ask.num_containers, ask.relax_locality, ask.gang, now);
        }
        for c in request.releases {
            if self.cluster.container(&c).is_some_and(|rc| !rc.is_am()) {
                self.complete_container(
                    c,
                    exit_status::ABORTED,
                    "Container released by the application",
                    now,
                    fx,
                    Some(exit_status::KILLED_BY_APPMASTER),
                );
            }
        }
        self.sync_pending(id.app);
        // Serve the new asks before answering, so allocations ride on this very response.
        self.schedule(now, fx);
        let limit = self.headroom(id.app);
        let deadline = (request.wait_ms > 0).then(|| now + request.wait_ms);
        match self.sessions.answer_or_park(id, req, deadline, limit, nodes) {
            Some(sessions::Answer::Now(resp)) => fx.reply(req, Reply::Allocate(Ok(resp))),
            Some(sessions::Answer::Parked) => {
                if let Some(deadline) = deadline {
                    self.timers.watch_long_poll(id.app, deadline);
                }
            }
            // The attempt ended while its asks were served.
            None => return Err(CoreError::AttemptNotCurrent(id)),
        }
        Ok(())
    }

    /// Answers a parked allocate of `app` if there is now something to deliver.
    fn wake(&mut self, app: ApplicationId, fx: &mut impl Effects) {
        if !self.sessions.wants_waking(app) {
            return;
        }
        let limit = self.headroom(app);
        let nodes = self.usable_nodes();
        if let Some((req, resp)) = self.sessions.answer_parked(app, limit, nodes) {
            fx.reply(req, Reply::Allocate(Ok(resp)));
        }
    }

    fn finish_am(
        &mut self,
        id: AttemptId,
        req: FinishAmRequest,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<FinishAmResponse, CoreError> {
        let app = self.apps.get(id.app).ok_or(CoreError::UnknownApp(id.app))?;
        // A repeated finish after success is answered the same way (the AM polls until true).
        if app.state() == AppState::Finished && app.current_attempt().is_some_and(|a| a.id() == id) {
            return Ok(FinishAmResponse { is_unregistered: true });
        }
        self.live_attempt(id)?;
        if !self.sessions.get(id).is_some_and(|s| s.registered()) {
            return Err(CoreError::AmNotRegistered(id));
        }
        let diag = req.diagnostics;
        let app = self.apps.get_mut(id.app).ok_or(CoreError::UnknownApp(id.app))?;
        app.set_tracking_url(req.tracking_url);
        self.end_current_attempt(id.app, AttemptState::Finished, &diag, None, now, fx)?;
        let final_status =
            if req.final_status == FinalStatus::Undefined { FinalStatus::Undefined } else { req.final_status };
        self.finish_app(id.app, AppState::Finished, final_status, diag, now, fx)?;
        Ok(FinishAmResponse { is_unregistered: true })
    }

    /// The NM accepted an AM container's launch. A notification: an error can only be logged
    /// and counted.
    fn am_launched(&mut self, container: ContainerId, now: Millis, fx: &mut impl Effects) {
        let Some(app) = self.apps.get_mut(container.app()) else { return };
        let results = [self.cluster.container_acquired(container), app.am_launched(container, now)];
        for e in results.into_iter().filter_map(Result::err) {
            self.internal_error(&format!("AM container {container} launched"), &e.into(), fx);
        }
    }

    // -----------------------------------------------------------------------------------------
    // NodeManager protocol.

    fn register_node(
        &mut self,
        req: RegisterNodeRequest,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<RegisterNodeResponse, CoreError> {
        if req.total.memory_mb == 0 || req.total.vcores == 0 {
            return Err(CoreError::InvalidNodeResources { node: req.node_id, total: req.total });
        }
        let reported: BTreeSet<ContainerId> =
            req.containers.iter().filter(|c| c.state != NmContainerState::Complete).map(|c| c.container_id).collect();
        let rack = cluster::rack_or_default(req.rack.as_deref());
        if let Some(node) = self.cluster.node(&req.node_id) {
            // The NM restarted (or came back after being LOST): what it no longer runs is gone.
            let gone: Vec<ContainerId> = node.containers().iter().filter(|c| !reported.contains(c)).copied().collect();
            for c in gone {
                self.complete_container(
                    c,
                    exit_status::ABORTED,
                    "Container lost: its NodeManager re-registered without it",
                    now,
                    fx,
                    None,
                );
            }
        }
        self.cluster.register_node(&req.node_id, req.http_address, req.total, req.version, &rack, now)?;
        self.resize_cluster();
        self.timers.watch_node(req.node_id.clone(), now);
        let node_id = self.cluster.registered_id(&req.node_id).unwrap_or_else(|| req.node_id.clone());
        for report in req.containers.iter().filter(|c| c.state != NmContainerState::Complete) {
            self.adopt_container(&node_id, report, now, fx);
        }
        if self.cluster.remember(&node_id) {
            let http_address = self.cluster.node(&node_id).map(|n| n.http_address().to_owned()).unwrap_or_default();
            fx.persist(StoreOp::PutNode(NodeRecord { id: node_id.clone(), http_address }));
        }
        if let Some(wait) = &mut self.recovery {
            wait.awaiting.remove(&node_id);
        }
        tracing::info!(node = %node_id, total = %req.total, %rack, "node registered");
        Ok(RegisterNodeResponse {
            action: NodeAction::Normal,
            container_token_keys: vec![self.cfg.container_token_key.clone()],
            heartbeat_interval_ms: self.cfg.settings.nm_heartbeat_interval_ms,
            rm_epoch: self.cfg.epoch,
            diagnostics: String::new(),
        })
    }

    fn node_heartbeat(
        &mut self,
        mut req: NodeHeartbeatRequest,
        now: Millis,
        fx: &mut impl Effects,
    ) -> Result<NodeHeartbeatResponse, CoreError> {
        // The registered id is the one every container of this node shares: comparing against
        // it is a pointer comparison.
        if let Some(registered) = self.cluster.registered_id(&req.node_id) {
            req.node_id = registered;
        }
        let resync = || NodeHeartbeatResponse {
            action: NodeAction::Resync,
            containers_to_cleanup: Vec::new(),
            acked_completed: Vec::new(),
            applications_to_cleanup: Vec::new(),
            container_token_keys: None,
            heartbeat_interval_ms: 0,
        };
        let Some(node) = self.cluster.node(&req.node_id) else { return Ok(resync()) };
        if !matches!(node.state(), NodeState::Running | NodeState::Unhealthy) {
            return Ok(resync());
        }
        let health_report = std::mem::take(&mut req.health.report);
        if self.cluster.node_heartbeat(&req.node_id, req.health.healthy, health_report, now)? {
            self.resize_cluster();
        }
        let (containers_to_cleanup, news) = self.cluster.settle_reports(&req.node_id, req.containers, self.cfg.epoch);
        let mut response = NodeHeartbeatResponse {
            action: NodeAction::Normal,
            containers_to_cleanup,
            acked_completed: Vec::new(),
            applications_to_cleanup: Vec::new(),
            container_token_keys: None,
            heartbeat_interval_ms: self.cfg.settings.nm_heartbeat_interval_ms,
        };
        for report in news {
            self.container_report(&req.node_id, report, &mut response, now, fx);
        }
        // YARN's applicationsToCleanup: the node deletes these applications' directories. The
        // list is the node's own (bounded by what it holds), each checked with one lookup.
        response.applications_to_cleanup = req
            .applications_with_dirs
            .into_iter()
            .filter(|app| self.apps.get(*app).is_none_or(|a| a.state().is_final()))
            .collect();
        Ok(response)
    }

    fn container_report(
        &mut self,
        node: &NodeId,
        report: ContainerReport,
        response: &mut NodeHeartbeatResponse,
        now: Millis,
        fx: &mut impl Effects,
    ) {
        let id = report.container_id;
        let live_here = self.cluster.container(&id).is_some_and(|c| c.node_id() == node);
        match report.state {
            NmContainerState::Complete => {
                // A container of an earlier incarnation that ended during the failover: its AM
                // still has to hear about it.
                if live_here || self.adopt_container(node, &report, now, fx) {
                    self.complete_container(id, report.exit_status, &report.diagnostics, now, fx, None);
                }
                response.acked_completed.push(id);
            }
            NmContainerState::New | NmContainerState::Running => {
                let adopted = self.adopt_container(node, &report, now, fx);
                if !live_here && !adopted {
                    response.containers_to_cleanup.push(id);
                    return;
                }
                // The heartbeat's other reports still count: logged and counted, not returned.
                let started = match self.cluster.container_running(id) {
                    Ok(started) => started,
                    Err(e) => {
                        self.internal_error(&format!("NM {node} reports {id} running"), &e.into(), fx);
                        false
                    }
                };
                // NMs report every running container on every heartbeat; most reports change
                // nothing, so the history is only looked up when there is news.
                if (started || !report.diagnostics.is_empty())
                    && let Some(app) = self.apps.get_mut(id.app())
                {
                    app.set_container_diagnostics(id, report.diagnostics);
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Containers.

    /// Takes over a container an earlier RM incarnation allocated, as its NM reports it: charged
    /// to its node, app and queue as if allocated now. Only containers of an older epoch whose
    /// attempt is still live here and that this incarnation has not seen before qualify (one
    /// released here, e.g. on a lost node, stays released), and only if not live already.
    /// Returns whether it was adopted.
    fn adopt_container(
        &mut self,
        node_id: &NodeId,
        report: &ContainerReport,
        now: Millis,
        fx: &mut impl Effects,
    ) -> bool {
        let id = report.container_id;
        let resource = report.resource;
        let running = report.state != NmContainerState::Complete;
        if id.epoch >= self.cfg.epoch || self.cluster.container(&id).is_some() {
            return false;
        }
        let Some(node) = self.cluster.node(node_id) else { return false };
        // A completed container is released right away, so only a running one needs room.
        if running && !node.free().fits(&resource) {
            tracing::warn!(container = %id, node = %node_id, %resource, "cannot adopt a container: its node is full");
            return false;
        }
        let Some(app) = self.apps.get(id.app()) else { return false };
        let Some(attempt) = app.current_attempt().filter(|a| a.id() == id.attempt && !a.state().is_final()) else {
            return false;
        };
        if app.container_history().contains_key(&id) {
            return false;
        }
        let is_am = attempt.am_container() == Some(id);
        let token = container_token(&self.container_signer, &self.cfg, id, node_id, app.user(), resource, now);
        // NMs do not report its priority; it only orders preemption victims.
        let rc = RmContainer::new(id, node_id.clone(), resource, 0, is_am, now, token, ContainerState::Running);
        let rc = match rc {
            Ok(rc) => rc,
            Err(e) => {
                // The NM gets the container cleaned up, as for any it runs that is not adopted.
                self.internal_error(&format!("cannot adopt {id}"), &e.into(), fx);
                return false;
            }
        };
        self.add_container(rc);
        fx.observe(Observation::ContainerRecovered);
        tracing::info!(container = %id, node = %node_id, %resource, is_am, running, "container recovered from an earlier ResourceManager");
        self.sync_pending(id.app());
        true
    }

    /// Removes a live container: frees its resources, tells its AM, and, if `stop_with` is given,
    /// asks its NM to stop it. An AM container's completion ends its attempt.
    fn complete_container(
        &mut self,
        id: ContainerId,
        exit: i32,
        diagnostics: &str,
        now: Millis,
        fx: &mut impl Effects,
        stop_with: Option<i32>,
    ) {
        self.release_container(id, exit, diagnostics, now, fx, stop_with);
        // Its app's usage (the key of fair orderings) changed.
        self.sync_pending(id.app());
    }

    fn release_container(
        &mut self,
        id: ContainerId,
        exit: i32,
        diagnostics: &str,
        now: Millis,
        fx: &mut impl Effects,
        stop_with: Option<i32>,
    ) {
        let Some((rc, completed)) = self.cluster.remove_container(id) else { return };
        self.unmark(id);
        // Gone either way: its resources are freed whatever its lifecycle says.
        if let Err(e) = completed {
            self.internal_error(&format!("container {id} completed"), &e.into(), fx);
        }
        fx.observe(Observation::ContainerCompleted { exit_status: exit });
        if let Some(stop_exit) = stop_with {
            let http = self.cluster.node(rc.node_id()).map(|n| n.http_address().to_owned()).unwrap_or_default();
            fx.stop_container(ContainerStop {
                container_id: id,
                node_id: rc.node_id().clone(),
                node_http_address: http,
                container_token: rc.token().to_owned(),
                exit_status: stop_exit,
            });
        }
        let Some(app) = self.apps.get_mut(id.app()) else { return };
        if let Some(leaf) = app.queue_index() {
            self.hierarchy.refund(leaf, app.user(), rc.resource(), rc.is_am());
        }
        app.container_released(&rc, exit, diagnostics, now);
        if !app.current_attempt().is_some_and(|a| a.id() == id.attempt && !a.state().is_final()) {
            return;
        }
        if rc.is_am() {
            let diag = format!(
                "AM Container for {} exited with exitCode: {exit}{}{}",
                id.attempt,
                exit_status::name(exit).map(|n| format!(" ({n})")).unwrap_or_default(),
                if diagnostics.is_empty() { String::new() } else { format!(". Diagnostics: {diagnostics}") }
            );
            // Whoever reported the completion is not the attempt's owner: logged and counted.
            if let Err(e) = self.fail_attempt(id.app(), diag, Some(exit), now, fx) {
                self.internal_error(&format!("cannot fail the attempt of AM container {id}"), &e, fx);
            }
            return;
        }
        self.sessions.deliver_completed(
            id.attempt,
            ContainerStatus {
                container_id: id,
                state: NmContainerState::Complete,
                exit_status: exit,
                diagnostics: diagnostics.to_owned(),
            },
        );
        self.wake(id.app(), fx);
    }

    /// Stops containers the RM no longer wants: freed now, their AM told, their NM asked to stop
    /// them with KILLED_BY_RESOURCEMANAGER.
    fn kill_containers(&mut self, ids: Vec<ContainerId>, diagnostics: &str, now: Millis, fx: &mut impl Effects) {
        for c in ids {
            let killed = exit_status::KILLED_BY_RESOURCEMANAGER;
            self.complete_container(c, killed, diagnostics, now, fx, Some(killed));
        }
    }

    /// Allocates a container for `ask` on `node_id` for the current attempt of `app_id`.
    /// `asked_at` is when the ask appeared (for the allocation-latency metric).
    pub(crate) fn allocate_container(
        &mut self,
        app_id: ApplicationId,
        node_id: &NodeId,
        ask: &AskKey,
        is_am: bool,
        asked_at: Millis,
        now: Millis,
        fx: &mut impl Effects,
    ) -> bool {
        let (resource, priority) = (ask.capability, ask.priority);
        let Some(http) = self.cluster.node(node_id).map(|n| n.http_address().to_owned()) else { return false };
        let Some(app) = self.apps.get_mut(app_id) else { return false };
        let Some(id) = app.next_container_id(self.cfg.epoch) else { return false };
        let token = container_token(&self.container_signer, &self.cfg, id, node_id, app.user(), resource, now);
        // The container, and an AM's attempt, move through their lifecycles before anything else
        // changes: if either cannot, nothing is allocated (the scheduler is told so and moves on).
        let rc = RmContainer::new(
            id,
            node_id.clone(),
            resource,
            priority,
            is_am,
            now,
            token.clone(),
            ContainerState::Allocated,
        );
        let rc = match rc {
            Ok(rc) => rc,
            Err(e) => {
                self.internal_error(&format!("cannot allocate a container to {app_id}"), &e.into(), fx);
                return false;
            }
        };
        if is_am {
            let record = match app.am_allocated(id, node_id, &http, now) {
                Some(Ok(record)) => record,
                Some(Err(e)) => {
                    self.internal_error(&format!("cannot allocate an AM container to {app_id}"), &e.into(), fx);
                    return false;
                }
                None => return false,
            };
            self.timers.watch_am(id.attempt, now);
            fx.persist(StoreOp::PutAttempt(record));
            let mut launch_context = app.launch_context().clone();
            let env = &mut launch_context.environment;
            env.insert(am_env::RM_ADDRESSES.into(), self.cfg.rm_addresses.join(","));
            let am_token = AmToken { attempt_id: id.attempt, key_id: self.cfg.am_token_key.key_id };
            env.insert(am_env::AM_TOKEN.into(), token::sign(&am_token, &self.cfg.am_token_key));
            env.insert(am_env::APPLICATION_ID.into(), app_id.to_string());
            env.insert(am_env::APP_ATTEMPT_ID.into(), id.attempt.to_string());
            env.insert(am_env::MAX_APP_ATTEMPTS.into(), app.max_attempts().to_string());
            env.insert(am_env::APP_SUBMIT_TIME.into(), app.submit_time().to_string());
            fx.launch_am(AmLaunch {
                container_id: id,
                node_http_address: http,
                container_token: token.clone(),
                launch_context,
            });
        } else {
            app.task_allocated();
            self.sessions.deliver_allocated(
                id.attempt,
                weft_common::protocol::Container {
                    id,
                    node_id: node_id.clone(),
                    node_http_address: http,
                    resource,
                    priority,
                    resource_name: ask.resource_name.clone(),
                    container_token: token,
                },
            );
        }
        fx.observe(Observation::ContainerAllocated { wait_ms: now.saturating_sub(asked_at), is_am });
        self.counters.containers_allocated += 1;
        self.add_container(rc);
        self.timers.watch_allocation(id, now);
        self.sync_pending(app_id);
        true
    }

    /// Charges a new live container to its node, app, queue and user and the cluster, and
    /// records it. One in ALLOCATED (the NM has yet to report it) counts as launching.
    fn add_container(&mut self, rc: RmContainer) {
        let (id, resource) = (rc.id(), rc.resource());
        let http = self.cluster.node(rc.node_id()).map(|n| n.http_address().to_owned()).unwrap_or_default();
        if let Some(app) = self.apps.get_mut(id.app()) {
            if let Some(leaf) = app.queue_index() {
                self.hierarchy.charge(leaf, app.user(), resource, rc.is_am());
            }
            app.container_added(&rc, http);
        }
        self.cluster.add_container(rc);
    }

    /// What an app could still get (YARN's headroom): the cluster's free resources, within its
    /// queue's limits. Cheap: the hierarchy tracks the cluster size and what is in use.
    fn headroom(&self, app: ApplicationId) -> Resource {
        let h = &self.hierarchy;
        let free = h.tree().cluster.saturating_sub(h.usage(0).used);
        match self.apps.get(app).and_then(|a| a.queue_index().map(|q| (q, a.user()))) {
            Some((leaf, user)) => {
                let room = h.headroom(leaf, user);
                Resource::new(free.memory_mb.min(room.memory_mb), free.vcores.min(room.vcores))
            }
            None => free,
        }
    }

    fn usable_nodes(&self) -> u32 {
        self.cluster.usable_count()
    }

    /// The set of usable nodes changed: queue capacities follow, and fair orderings by dominant
    /// share may change.
    fn resize_cluster(&mut self) {
        self.hierarchy.resize(self.cluster.capacity());
        self.pending.mark_stale();
    }

    // -----------------------------------------------------------------------------------------
    // Timers.

    fn tick(&mut self, now: Millis, fx: &mut impl Effects) {
        // Usage is incomplete until the known nodes have re-registered with their containers.
        if self.recovery.is_none() {
            self.preemption_tick(now, fx);
        }
        for id in self.timers.due_nodes(now) {
            let Some(node) = self.cluster.node(&id) else { continue };
            if !matches!(node.state(), NodeState::Running | NodeState::Unhealthy) {
                continue; // registering again queues a new deadline
            }
            if self.timers.node_expires(node.last_heartbeat()) > now {
                let last_heartbeat = node.last_heartbeat();
                self.timers.watch_node(id, last_heartbeat);
            } else {
                self.node_lost(&id, now, fx);
            }
        }

        for attempt in self.timers.due_ams(now) {
            let Some(current) =
                self.apps.get(attempt.app).filter(|a| !a.state().is_final()).and_then(|a| a.current_attempt())
            else {
                continue;
            };
            let live =
                matches!(current.state(), AttemptState::Allocated | AttemptState::Launched | AttemptState::Running);
            if current.id() != attempt || !live {
                continue;
            }
            if self.timers.am_expires(current.last_heartbeat()) > now {
                let last_heartbeat = current.last_heartbeat();
                self.timers.watch_am(attempt, last_heartbeat);
                continue;
            }
            // Failing the attempt stops its AM container too, so two AMs never run at once.
            let diag = format!(
                "ApplicationMaster for attempt {attempt} timed out after {} ms without a heartbeat",
                self.cfg.settings.am_expiry_ms
            );
            if let Err(e) = self.fail_attempt(attempt.app, diag, None, now, fx) {
                self.internal_error(&format!("cannot expire {attempt}"), &e, fx);
            }
        }

        for app in self.timers.due_draining(now) {
            let Some(a) = self.apps.get(app).filter(|a| a.state().is_final()) else { continue };
            let leftovers: Vec<ContainerId> = a.containers().iter().copied().collect();
            for id in leftovers {
                let exit = exit_status::KILLED_AFTER_APP_COMPLETION;
                self.complete_container(
                    id,
                    exit,
                    "Container killed after its application completed",
                    now,
                    fx,
                    Some(exit),
                );
            }
        }

        for id in self.timers.due_allocations(now) {
            if self.cluster.container(&id).is_some_and(|c| c.state() == ContainerState::Allocated) {
                let exit = exit_status::ABORTED;
                self.complete_container(id, exit, "Container expired since it was unused", now, fx, Some(exit));
            }
        }

        let nodes = self.usable_nodes();
        for id in self.timers.due_long_polls(now) {
            if !self.sessions.poll_due(id, now) {
                continue;
            }
            let limit = self.headroom(id);
            if let Some((req, resp)) = self.sessions.answer_parked(id, limit, nodes) {
                fx.reply(req, Reply::Allocate(Ok(resp)));
            }
        }
    }

    fn node_lost(&mut self, id: &NodeId, now: Millis, fx: &mut impl Effects) {
        let containers = match self.cluster.node_lost(id) {
            Ok(containers) => containers,
            Err(e) => {
                // Found by a tick: nobody to answer.
                self.internal_error(&format!("cannot mark node {id} lost"), &e.into(), fx);
                return;
            }
        };
        tracing::warn!(node = %id, "node lost: no heartbeat within {} ms", self.cfg.settings.nm_expiry_ms);
        for c in containers {
            self.complete_container(c, exit_status::ABORTED, "Container released on a *lost* node", now, fx, None);
        }
        self.resize_cluster();
        if self.cluster.forget(id) {
            fx.persist(StoreOp::RemoveNode(id.clone()));
        }
        fx.observe(Observation::NodeLost);
    }
}

/// A signed token for container `id` on `node_id`, for its AM to start it (or the RM to stop it).
fn container_token(
    signer: &token::Signer,
    cfg: &CoreConfig,
    id: ContainerId,
    node_id: &NodeId,
    user: &str,
    resource: Resource,
    now: Millis,
) -> String {
    signer.sign(&ContainerToken {
        container_id: id,
        node_id: node_id.clone(),
        user: user.to_owned(),
        resource,
        expires_at: now + cfg.settings.container_allocation_expiry_ms,
        key_id: cfg.container_token_key.key_id,
        rm_epoch: id.epoch,
    })
}

/// A fast, fixed hasher for the core's id-keyed maps (ids are trusted small integers; SipHash's
/// flood resistance buys nothing here and costs a tenth of a heartbeat). Fixed, so iteration
/// order depends only on history and runs are reproducible.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        // FxHash's step.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}
