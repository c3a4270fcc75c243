//! The ResourceManager's sans-IO scheduler core.
//!
//! [`Core`] owns every application, attempt, container and node. It is driven by [`Event`]s with
//! the current time passed in, and asks for everything else (replies, store writes, AM launches,
//! container stops) through [`Effects`]. It never awaits, reads a clock, opens a socket or takes a
//! lock, so the RM server, the simulator and unit tests run the same code.
//!
//! Architecture Invariant: every state change of an app, attempt, container or node goes through
//! [`lifecycle::transition`] with that lifecycle's edge table.
//!
//! Architecture Invariant: after every [`Core::handle`], [`Core::check_invariants`] holds (it runs
//! automatically in debug builds and tests).

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
pub mod settings;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod tenancy_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use weft_common::deadlines::Deadlines;
use weft_common::protocol::{
    AllocateRequest, AllocateResponse, AmCommand, ContainerReport, ContainerStatus, FinishAmRequest, FinishAmResponse,
    NodeAction, NodeHeartbeatRequest, NodeHeartbeatResponse, PreemptionMessage, RegisterAmRequest, RegisterAmResponse,
    RegisterNodeRequest, RegisterNodeResponse, am_env,
};
use weft_common::rest::{ApplicationSubmissionContext, NewApplication};
use weft_common::states::{
    AppState, AttemptState, ContainerState, FinalStatus, NmContainerState, NodeState, exit_status,
};
use weft_common::token::{self, AmToken, ContainerToken, MasterKey};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

pub use effects::{AmLaunch, ContainerStop, Effects, Observation, RecordingEffects, Reply, ReqId};
pub use error::CoreError;
use lifecycle::transition;
pub use model::{App, Ask, AskKey, Attempt, ContainerHistory, GangReservation, Node, RmContainer};

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
}

pub struct Core {
    cfg: CoreConfig,
    container_signer: token::Signer,
    hierarchy: Hierarchy,
    next_app_seq: u32,
    apps: BTreeMap<ApplicationId, App>,
    nodes: BTreeMap<NodeId, Node>,
    /// A fixed hasher, so iteration order depends only on history: runs are reproducible.
    containers: HashMap<ContainerId, RmContainer, BuildHasherDefault<IdHasher>>,
    /// Usable nodes with room for at least a minimum allocation, by free memory, so placement
    /// never scans every node. Every request is rounded up to the minimum allocation, so a node
    /// without that much room can host nothing; leaving it out keeps a cluster that is full in
    /// one dimension (all vcores taken, memory left) from being walked node by node.
    free_index: BTreeSet<(u64, NodeId)>,
    /// How many usable nodes have each amount of free vcores (the largest bounds what fits).
    free_vcores: BTreeMap<u32, u32>,
    /// Total resources and number of the usable (RUNNING) nodes.
    usable_capacity: Resource,
    usable_count: u32,
    /// Apps with demand, per leaf, in serving order.
    pending: pending::PendingIndex,
    /// What a `Tick` may have to act on, and from when (see [`Deadlines`]).
    node_expiry: Deadlines<NodeId>,
    am_expiry: Deadlines<AttemptId>,
    allocation_expiry: Deadlines<ContainerId>,
    /// Finished apps whose AM container may outstay its grace period.
    draining_apps: Deadlines<ApplicationId>,
    long_polls: Deadlines<ApplicationId>,
    /// Nodes by host and by rack, for locality asks.
    topology: model::Topology,
    cluster_used: Resource,
    /// Apps whose submit write is in flight, answered on [`Event::Persisted`].
    saving: Vec<ApplicationId>,
    /// Finished apps in finishing order, for retention.
    completed_order: VecDeque<ApplicationId>,
    counters: Counters,
    gang_reservation: Option<GangReservation>,
    /// The gang whose reservation last timed out, and until when it may not reserve again.
    gang_yielding: Option<(ApplicationId, AskKey, Millis)>,
    /// Containers chosen for preemption and not yet gone.
    preemption_marks: BTreeMap<ContainerId, preemption_monitor::PreemptionMark>,
    last_preemption_round: Millis,
    starvation: preemption_monitor::StarvationClocks,
    /// Nodes in the store (persisted when first seen, removed when lost).
    known_nodes: BTreeSet<NodeId>,
    /// Set by [`Core::recover`] while scheduling waits for known nodes to re-register.
    recovery: Option<RecoveryWait>,
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
            cfg,
            hierarchy,
            next_app_seq: 1,
            apps: BTreeMap::new(),
            nodes: BTreeMap::new(),
            containers: HashMap::default(),
            free_index: BTreeSet::new(),
            free_vcores: BTreeMap::new(),
            usable_capacity: Resource::ZERO,
            usable_count: 0,
            pending: Default::default(),
            node_expiry: Default::default(),
            am_expiry: Default::default(),
            allocation_expiry: Default::default(),
            draining_apps: Default::default(),
            long_polls: Default::default(),
            topology: model::Topology::default(),
            cluster_used: Resource::ZERO,
            saving: Vec::new(),
            completed_order: VecDeque::new(),
            counters: Counters::default(),
            gang_reservation: None,
            gang_yielding: None,
            preemption_marks: BTreeMap::new(),
            last_preemption_round: 0,
            starvation: Default::default(),
            known_nodes: BTreeSet::new(),
            recovery: None,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Read access for views (REST, metrics, tests).

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }
    pub fn app(&self, id: ApplicationId) -> Option<&App> {
        self.apps.get(&id)
    }
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }
    pub fn container(&self, id: &ContainerId) -> Option<&RmContainer> {
        self.containers.get(id)
    }
    pub fn live_containers(&self) -> impl Iterator<Item = &RmContainer> {
        self.containers.values()
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
        let a = self.apps.get(&app).ok_or(CoreError::UnknownApp(app))?;
        let admin = a.queue_index.is_some_and(|q| self.hierarchy.administers(q, user));
        if a.user == user || admin {
            return Ok(());
        }
        Err(CoreError::ModifyDenied { user: user.to_owned(), app, owner: a.user.clone(), queue: a.queue.clone() })
    }
    pub fn preemption_marks(&self) -> &BTreeMap<ContainerId, preemption_monitor::PreemptionMark> {
        &self.preemption_marks
    }
    pub fn gang_reservation(&self) -> Option<&GangReservation> {
        self.gang_reservation.as_ref()
    }
    pub fn cluster_used(&self) -> Resource {
        self.cluster_used
    }
    /// Total resources of usable (RUNNING) nodes.
    pub fn cluster_capacity(&self) -> Resource {
        self.usable_capacity
    }

    // -----------------------------------------------------------------------------------------
    // Entry points.

    /// Loads state from the store when this RM becomes active (start-up or failover), keeping
    /// the work of the previous incarnation: finished apps are listed again; an unfinished app
    /// keeps its live attempt, whose AM re-registers and whose containers are adopted as their
    /// NodeManagers re-register with them (see [`Core::adopt_container`]). Scheduling waits until
    /// every stored node has re-registered or two heartbeat intervals have passed, so capacity
    /// still held by running containers is not handed out twice.
    pub fn recover(&mut self, state: RecoveredState, now: Millis, fx: &mut impl Effects) -> Result<(), CoreError> {
        let mut attempts: BTreeMap<ApplicationId, Vec<AttemptRecord>> = BTreeMap::new();
        for a in state.attempts {
            attempts.entry(a.id.app).or_default().push(a);
        }
        for rec in state.apps {
            let id = rec.id;
            let mut app = app_from_record(rec);
            for a in attempts.remove(&id).unwrap_or_default() {
                app.attempts.push(attempt_from_record(a));
            }
            let tree = self.hierarchy.tree();
            app.queue_index = tree.find(&app.queue).filter(|q| tree.queues[*q].is_leaf);
            // The file does not list queues that placement rules created: create it again when a
            // `create: true` rule still would.
            if !app.state.is_final()
                && app.queue_index.is_none()
                && let Some(path) = self.hierarchy.recreatable_queue(&app.queue, &app.user)
            {
                match self.hierarchy.create_queue(&path) {
                    Ok((leaf, moved)) => {
                        self.remap_queue_indices(&moved);
                        app.queue_index = Some(leaf);
                    }
                    Err(e) => tracing::warn!(app = %id, queue = %path, error = %e, "cannot create the queue again"),
                }
            }
            if !app.state.is_final() && app.queue_index.is_none() {
                // Its containers are cleaned up when their NMs report them: a failed app has
                // no live attempt.
                for attempt in app.attempts.iter_mut().filter(|a| !a.state.is_final()) {
                    attempt.state = AttemptState::Failed;
                    attempt.finish_time = Some(now);
                    attempt.counts_as_failure = false;
                    attempt.diagnostics = "its queue no longer exists after the ResourceManager restarted".into();
                    fx.persist(StoreOp::PutAttempt(attempt_record(attempt)));
                }
                app.state = AppState::Failed;
                app.final_status = FinalStatus::Failed;
                app.finish_time = Some(now);
                app.diagnostics = format!("queue {} no longer exists after the ResourceManager restarted", app.queue);
                fx.persist(StoreOp::PutApp(app_record(&app)));
            }
            if app.state.is_final() {
                self.completed_order.push_back(id);
                self.apps.insert(id, app);
                continue;
            }
            if let Some(leaf) = app.queue_index {
                self.hierarchy.app_added(leaf, &app.user);
            }
            let live = app.attempts.last().filter(|a| !a.state.is_final()).map(|a| (a.id, a.state));
            match live {
                // The last attempt ended but its successor was never stored.
                None => {
                    app.state = AppState::Submitted;
                    self.apps.insert(id, app);
                    self.start_attempt(id, now, fx)?;
                }
                // Still waiting for its AM container: ask again.
                Some((_, AttemptState::New | AttemptState::Submitted | AttemptState::Scheduled)) => {
                    app.state = AppState::Accepted;
                    app.am_ask_since = Some(now);
                    app.diagnostics = scheduler::waiting_for_am_node(app.am_resource);
                    if let Some(attempt) = app.attempts.last_mut() {
                        attempt.state = AttemptState::Scheduled;
                    }
                    self.apps.insert(id, app);
                    self.sync_pending(id);
                }
                // Its AM container was allocated: the AM (if it runs) registers again; if it
                // never does, AM expiry fails the attempt as usual.
                Some((attempt_id, _)) => {
                    app.state = AppState::Accepted;
                    if let Some(attempt) = app.attempts.last_mut() {
                        attempt.last_heartbeat = now;
                    }
                    self.am_expiry.push(now + self.cfg.settings.am_expiry_ms + 1, attempt_id);
                    self.apps.insert(id, app);
                }
            }
        }
        self.completed_order.make_contiguous().sort_by_key(|id| self.apps[id].finish_time);
        self.known_nodes = state.nodes.into_iter().map(|n| n.id).collect();
        if !self.known_nodes.is_empty() {
            let until = now + 2 * self.cfg.settings.nm_heartbeat_interval_ms;
            self.recovery = Some(RecoveryWait { awaiting: self.known_nodes.clone(), until });
            tracing::info!(
                nodes = self.known_nodes.len(),
                until,
                "scheduling paused until the known NodeManagers re-register"
            );
        }
        self.pending.stale = true;
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
                let id = ApplicationId::new(self.cfg.cluster_ts, self.next_app_seq);
                self.next_app_seq += 1;
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
            Event::AmLaunched { container } => self.am_launched(container, now),
            Event::AmLaunchFailed { container, diagnostics } => {
                if self.containers.contains_key(&container) {
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
        let issued = if id.cluster_ts == self.cfg.cluster_ts {
            id.seq < self.next_app_seq
        } else {
            id.cluster_ts < self.cfg.cluster_ts
        };
        if !issued || id.seq == 0 {
            return Err(CoreError::AppIdNotIssued(id));
        }
        if self.apps.contains_key(&id) {
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
        let mut app = app_from_record(AppRecord {
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
        });
        app.saving_reply = Some(req);
        app.queue_index = Some(leaf);
        transition(&mut app.state, AppState::NewSaving, &id)?;
        fx.persist(StoreOp::PutApp(app_record(&app)));
        self.hierarchy.app_added(leaf, &app.user);
        self.apps.insert(id, app);
        self.saving.push(id);
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
        self.pending.stale = true;
        for app in self.apps.values_mut() {
            app.queue_index = app.queue_index.and_then(|q| moved.get(q).copied().flatten());
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
        let app = self.apps.get(&id).ok_or(CoreError::UnknownApp(id))?;
        if app.state.is_final() {
            return Err(CoreError::AppFinished { app: id, state: app.state, what: "moving" });
        }
        let from = app.queue_index.ok_or_else(|| CoreError::Internal(format!("{id} has no queue")))?;
        let to = self
            .hierarchy
            .tree()
            .find(queue)
            .filter(|q| self.hierarchy.tree().queues[*q].is_leaf)
            .ok_or_else(|| CoreError::UnknownQueue(queue.to_owned()))?;
        if to != from {
            self.hierarchy.check_move(to, &app.user, app.used)?;
            let held: Vec<(Resource, bool)> =
                app.containers.iter().filter_map(|c| self.containers.get(c)).map(|c| (c.resource, c.is_am)).collect();
            let user = app.user.clone();
            self.hierarchy.move_app(from, to, &user, &held);
        }
        let display = self.queue_display_name(to);
        let app = self.apps.get_mut(&id).ok_or(CoreError::UnknownApp(id))?;
        app.queue_index = Some(to);
        app.queue = display.clone();
        fx.persist(StoreOp::PutApp(app_record(app)));
        self.sync_pending(id);
        Ok(display)
    }

    fn set_priority(&mut self, id: ApplicationId, priority: i32, fx: &mut impl Effects) -> Result<i32, CoreError> {
        let app = self.apps.get(&id).ok_or(CoreError::UnknownApp(id))?;
        if app.state.is_final() {
            return Err(CoreError::AppFinished { app: id, state: app.state, what: "a priority change" });
        }
        let capped = app.queue_index.map_or(priority, |q| priority.min(self.hierarchy.max_priority(q)));
        let app = self.apps.get_mut(&id).ok_or(CoreError::UnknownApp(id))?;
        app.priority = capped;
        fx.persist(StoreOp::PutApp(app_record(app)));
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
        for id in std::mem::take(&mut self.saving) {
            let Some(app) = self.apps.get_mut(&id) else { continue };
            if let Some(req) = app.saving_reply.take() {
                fx.reply(req, Reply::Submit(Ok(id)));
            }
            if app.state != AppState::NewSaving {
                continue; // killed while saving
            }
            let r = transition(&mut app.state, AppState::Submitted, &id).map_err(CoreError::from);
            if let Err(e) = r.and_then(|()| self.start_attempt(id, now, fx)) {
                tracing::error!(app = %id, error = %e, "cannot start the first attempt");
            }
        }
    }

    /// Creates the next attempt and asks for its AM container.
    fn start_attempt(&mut self, id: ApplicationId, now: Millis, fx: &mut impl Effects) -> Result<(), CoreError> {
        let app = self.apps.get_mut(&id).ok_or(CoreError::UnknownApp(id))?;
        let number = app.attempts.last().map_or(1, |a| a.id.attempt + 1);
        let mut attempt = Attempt::new(AttemptId::new(id, number), now);
        transition(&mut attempt.state, AttemptState::Submitted, &attempt.id)?;
        transition(&mut attempt.state, AttemptState::Scheduled, &attempt.id)?;
        if app.state != AppState::Accepted {
            transition(&mut app.state, AppState::Accepted, &id)?;
        }
        fx.persist(StoreOp::PutAttempt(attempt_record(&attempt)));
        app.attempts.push(attempt);
        app.am_ask_since = Some(now);
        // Until the scheduler says otherwise (a queue limit) or places the AM (which clears it);
        // when no node has room, the scheduler does not look at the app at all.
        app.diagnostics = scheduler::waiting_for_am_node(app.am_resource);
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
        let app = self.apps.get(&id).ok_or(CoreError::UnknownApp(id))?;
        if app.state.is_final() {
            return Ok(app.state);
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
        let app = self.apps.get_mut(&id).ok_or(CoreError::UnknownApp(id))?;
        transition(&mut app.state, state, &id)?;
        if let Some(leaf) = app.queue_index {
            self.hierarchy.app_removed(leaf, &app.user);
        }
        app.final_status = final_status;
        app.diagnostics = diagnostics;
        app.finish_time = Some(now);
        app.am_ask_since = None;
        app.asks.clear();
        self.pending.set(id, None);
        let app = self.apps.get_mut(&id).ok_or(CoreError::UnknownApp(id))?;
        if app.saving_reply.is_none() {
            fx.persist(StoreOp::PutApp(app_record(app)));
        }
        // Containers other than a finished AM's own are stopped now; the AM container gets
        // `finished_app_container_grace_ms` to exit by itself after unregistering.
        let am_container = app.current_attempt().and_then(|a| a.am_container);
        let victims: Vec<ContainerId> = app
            .containers
            .iter()
            .copied()
            .filter(|c| state != AppState::Finished || Some(*c) != am_container)
            .collect();
        self.kill_containers(victims, &format!("Container killed because application {id} is {state}"), now, fx);
        if self.apps.get(&id).is_some_and(|a| !a.containers.is_empty()) {
            self.draining_apps.push(now + self.cfg.settings.finished_app_container_grace_ms + 1, id);
        }
        match state {
            AppState::Finished => self.counters.apps_completed += 1,
            AppState::Failed => self.counters.apps_failed += 1,
            AppState::Killed => self.counters.apps_killed += 1,
            _ => {}
        }
        fx.observe(Observation::AppFinished { app: id, state });
        self.completed_order.push_back(id);
        self.retire_old_apps(fx);
        Ok(())
    }

    fn retire_old_apps(&mut self, fx: &mut impl Effects) {
        while self.completed_order.len() > self.cfg.settings.max_completed_apps {
            let Some(id) = self.completed_order.pop_front() else { break };
            // An app with containers still draining is kept until the next retirement.
            if self.apps.get(&id).is_some_and(|a| a.containers.is_empty()) {
                self.apps.remove(&id);
                fx.persist(StoreOp::RemoveApp(id));
            } else {
                self.completed_order.push_back(id);
                break;
            }
        }
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
        let app = self.apps.get_mut(&id).ok_or(CoreError::UnknownApp(id))?;
        app.am_ask_since = None;
        app.asks.clear();
        let Some(attempt) = app.current_attempt_mut().filter(|a| !a.state.is_final()) else { return Ok(()) };
        if to == AttemptState::Finished && attempt.state == AttemptState::Running {
            transition(&mut attempt.state, AttemptState::Finishing, &attempt.id)?;
        }
        transition(&mut attempt.state, to, &attempt.id)?;
        attempt.finish_time = Some(now);
        attempt.diagnostics = diagnostics.to_owned();
        attempt.am_exit_status = am_exit;
        attempt.counts_as_failure =
            to == AttemptState::Failed && am_exit.is_none_or(exit_status::counts_as_attempt_failure);
        if let Some((req, _)) = attempt.parked.take() {
            let resp = build_response(attempt, limit, nodes, Some(AmCommand::Shutdown));
            fx.reply(req, Reply::Allocate(Ok(resp)));
        }
        attempt.outbox_allocated.clear();
        attempt.outbox_completed.clear();
        fx.persist(StoreOp::PutAttempt(attempt_record(attempt)));
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
        let app = &self.apps[&id];
        let live: Vec<ContainerId> = app.containers.iter().copied().collect();
        self.kill_containers(live, &format!("Container of a failed attempt of {id}"), now, fx);
        let app = &self.apps[&id];
        let failures = app.attempts.iter().filter(|a| a.counts_as_failure).count() as u32;
        if failures >= app.max_attempts {
            let attempt = app.attempts.last().map(|a| a.id.to_string()).unwrap_or_default();
            let diag = format!(
                "Application {id} failed {failures} times (max attempts {}) due to: {diagnostics}. Last attempt: {attempt}. Failing the application.",
                app.max_attempts
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
        let app = self.apps.get(&attempt.app).ok_or(CoreError::UnknownApp(attempt.app))?;
        match app.current_attempt() {
            Some(a) if a.id == attempt && !a.state.is_final() && !app.state.is_final() => Ok(a),
            _ => Err(CoreError::AttemptNotCurrent(attempt)),
        }
    }

    fn register_am(
        &mut self,
        id: AttemptId,
        req: RegisterAmRequest,
        now: Millis,
    ) -> Result<RegisterAmResponse, CoreError> {
        self.live_attempt(id)?;
        let app = self.apps.get_mut(&id.app).ok_or(CoreError::UnknownApp(id.app))?;
        let attempt = app.attempts.last_mut().ok_or(CoreError::AttemptNotCurrent(id))?;
        if matches!(attempt.state, AttemptState::Allocated | AttemptState::Launched) {
            transition(&mut attempt.state, AttemptState::Running, &id)?;
        }
        if attempt.state != AttemptState::Running {
            return Err(CoreError::AttemptNotCurrent(id));
        }
        attempt.registered = true;
        attempt.last_heartbeat = now;
        attempt.host = req.host;
        attempt.rpc_port = req.rpc_port;
        attempt.tracking_url = req.tracking_url;
        if app.state == AppState::Accepted {
            transition(&mut app.state, AppState::Running, &id.app)?;
        }
        Ok(RegisterAmResponse {
            application_id: id.app,
            attempt_id: id,
            queue: app.queue.clone(),
            user: app.user.clone(),
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
        let attempt = match self.live_attempt(id) {
            Ok(a) => a,
            // A finished attempt's AM is told to shut down rather than given an error.
            Err(CoreError::AttemptNotCurrent(_)) => {
                let mut resp = AllocateResponse { limit, num_cluster_nodes: nodes, ..Default::default() };
                resp.am_command = Some(AmCommand::Shutdown);
                resp.response_id = request.response_id + 1;
                fx.reply(req, Reply::Allocate(Ok(resp)));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !attempt.registered {
            return Err(CoreError::AmNotRegistered(id));
        }
        // A retry of the request whose response was lost gets the same response again.
        if request.response_id + 1 == attempt.response_id
            && let Some(last) = &attempt.last_response
        {
            fx.reply(req, Reply::Allocate(Ok(last.clone())));
            return Ok(());
        }
        if request.response_id != attempt.response_id {
            return Err(CoreError::InvalidResponseId {
                attempt: id,
                expected: attempt.response_id,
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

        let app = self.apps.get_mut(&id.app).ok_or(CoreError::UnknownApp(id.app))?;
        app.progress = request.progress.clamp(0.0, 1.0);
        let attempt = app.attempts.last_mut().ok_or(CoreError::AttemptNotCurrent(id))?;
        attempt.last_heartbeat = now;
        if let Some((old, _)) = attempt.parked.take() {
            // The AM gave up on its previous long poll (e.g. client timeout) and asked again.
            fx.reply(
                old,
                Reply::Allocate(Err(CoreError::InvalidResponseId {
                    attempt: id,
                    expected: attempt.response_id + 1,
                    got: attempt.response_id,
                })),
            );
        }
        for (ask, capability) in asks {
            let key = AskKey { priority: ask.priority, resource_name: ask.resource_name.clone(), capability };
            if ask.num_containers == 0 {
                app.asks.remove(&key);
            } else {
                let since = app.asks.get(&key).map_or(now, |a| a.since);
                app.asks.insert(
                    key,
                    Ask { count: ask.num_containers, relax_locality: ask.relax_locality, gang: ask.gang, since },
                );
            }
        }
        for c in request.releases {
            if self.containers.get(&c).is_some_and(|rc| !rc.is_am) {
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
        let app = self.apps.get_mut(&id.app).ok_or(CoreError::UnknownApp(id.app))?;
        let attempt = app.attempts.last_mut().ok_or(CoreError::AttemptNotCurrent(id))?;
        if attempt.outbox_allocated.is_empty() && attempt.outbox_completed.is_empty() && request.wait_ms > 0 {
            attempt.parked = Some((req, now + request.wait_ms));
            self.long_polls.push(now + request.wait_ms, id.app);
        } else {
            let resp = build_response(attempt, limit, nodes, None);
            fx.reply(req, Reply::Allocate(Ok(resp)));
        }
        Ok(())
    }

    /// Answers a parked allocate of `app` if there is now something to deliver.
    fn wake(&mut self, app: ApplicationId, fx: &mut impl Effects) {
        let wants_waking = self.apps.get(&app).and_then(|a| a.attempts.last()).is_some_and(|t| {
            t.parked.is_some()
                && (!t.outbox_allocated.is_empty() || !t.outbox_completed.is_empty() || t.preemption_news)
        });
        if !wants_waking {
            return;
        }
        let limit = self.headroom(app);
        let nodes = self.usable_nodes();
        let Some(attempt) = self.apps.get_mut(&app).and_then(|a| a.attempts.last_mut()) else { return };
        if let Some((req, _)) = attempt.parked.take() {
            let resp = build_response(attempt, limit, nodes, None);
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
        let app = self.apps.get(&id.app).ok_or(CoreError::UnknownApp(id.app))?;
        // A repeated finish after success is answered the same way (the AM polls until true).
        if app.state == AppState::Finished && app.current_attempt().is_some_and(|a| a.id == id) {
            return Ok(FinishAmResponse { is_unregistered: true });
        }
        if !self.live_attempt(id)?.registered {
            return Err(CoreError::AmNotRegistered(id));
        }
        let diag = req.diagnostics;
        let app = self.apps.get_mut(&id.app).ok_or(CoreError::UnknownApp(id.app))?;
        if let Some(a) = app.attempts.last_mut() {
            a.tracking_url = req.tracking_url;
        }
        self.end_current_attempt(id.app, AttemptState::Finished, &diag, None, now, fx)?;
        let final_status =
            if req.final_status == FinalStatus::Undefined { FinalStatus::Undefined } else { req.final_status };
        self.finish_app(id.app, AppState::Finished, final_status, diag, now, fx)?;
        Ok(FinishAmResponse { is_unregistered: true })
    }

    fn am_launched(&mut self, container: ContainerId, now: Millis) {
        let Some(app) = self.apps.get_mut(&container.app()) else { return };
        app.launch_time.get_or_insert(now);
        if let Some(rc) = self.containers.get_mut(&container)
            && rc.state == ContainerState::Allocated
        {
            let _ = transition(&mut rc.state, ContainerState::Acquired, &container);
        }
        if let Some(a) = app.attempts.last_mut()
            && a.am_container == Some(container)
            && a.state == AttemptState::Allocated
        {
            let _ = transition(&mut a.state, AttemptState::Launched, &a.id);
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
        let rack = model::rack_or_default(req.rack.as_deref());
        let previous_rack = self.nodes.get(&req.node_id).map(|n| n.rack.clone());
        if let Some(node) = self.nodes.get(&req.node_id) {
            // The NM restarted (or came back after being LOST): what it no longer runs is gone.
            let gone: Vec<ContainerId> = node.containers.iter().filter(|c| !reported.contains(c)).copied().collect();
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
            let node_id = req.node_id.clone();
            self.update_node(&node_id, |node| {
                if !matches!(node.state, NodeState::Running | NodeState::Unhealthy) {
                    transition(&mut node.state, NodeState::New, &node_id)?;
                    transition(&mut node.state, NodeState::Running, &node_id)?;
                }
                node.total = req.total;
                node.http_address = req.http_address;
                node.version = req.version;
                node.rack = rack.clone();
                node.last_heartbeat = now;
                Ok::<_, CoreError>(())
            })
            .ok_or_else(|| CoreError::UnknownNode(node_id.clone()))??;
        } else {
            let node = Node {
                id: req.node_id.clone(),
                http_address: req.http_address,
                total: req.total,
                used: Resource::ZERO,
                state: NodeState::New,
                last_heartbeat: now,
                health_report: String::new(),
                version: req.version,
                containers: BTreeSet::new(),
                launching: BTreeSet::new(),
                rack: rack.clone(),
            };
            self.nodes.insert(req.node_id.clone(), node);
            // Through update_node, so the indexes see it become usable.
            self.update_node(&req.node_id, |node| transition(&mut node.state, NodeState::Running, &node.id.clone()))
                .ok_or_else(|| CoreError::UnknownNode(req.node_id.clone()))??;
        }
        self.resize_cluster();
        self.topology.place_node(&req.node_id, previous_rack.as_deref(), &rack);
        self.node_expiry.push(now + self.cfg.settings.nm_expiry_ms + 1, req.node_id.clone());
        let node_id = self.nodes.get_key_value(&req.node_id).map_or(req.node_id.clone(), |(id, _)| id.clone());
        for report in req.containers.iter().filter(|c| c.state != NmContainerState::Complete) {
            self.adopt_container(&node_id, report, now, fx);
        }
        if self.known_nodes.insert(node_id.clone()) {
            let http_address = self.nodes.get(&node_id).map(|n| n.http_address.clone()).unwrap_or_default();
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
        if let Some((registered, _)) = self.nodes.get_key_value(&req.node_id) {
            req.node_id = registered.clone();
        }
        let resync = || NodeHeartbeatResponse {
            action: NodeAction::Resync,
            containers_to_cleanup: Vec::new(),
            acked_completed: Vec::new(),
            applications_to_cleanup: Vec::new(),
            container_token_keys: None,
            heartbeat_interval_ms: 0,
        };
        let Some(node) = self.nodes.get(&req.node_id) else { return Ok(resync()) };
        if !matches!(node.state, NodeState::Running | NodeState::Unhealthy) {
            return Ok(resync());
        }
        let want = if req.health.healthy { NodeState::Running } else { NodeState::Unhealthy };
        self.update_node(&req.node_id, |node| {
            node.last_heartbeat = now;
            node.health_report = req.health.report.clone();
            let changed = node.state != want;
            if changed {
                transition(&mut node.state, want, &node.id.clone())?;
            }
            Ok::<_, CoreError>(changed)
        })
        .ok_or_else(|| CoreError::UnknownNode(req.node_id.clone()))??
        .then(|| self.resize_cluster());
        let mut response = NodeHeartbeatResponse {
            action: NodeAction::Normal,
            containers_to_cleanup: Vec::new(),
            acked_completed: Vec::new(),
            applications_to_cleanup: Vec::new(),
            container_token_keys: None,
            heartbeat_interval_ms: self.cfg.settings.nm_heartbeat_interval_ms,
        };
        // NMs report every container on every heartbeat and nearly all reports say "still
        // running": those are settled against the node's own sets, without a lookup in the
        // cluster-wide container map.
        let mut news = Vec::new();
        if let Some(node) = self.nodes.get_mut(&req.node_id) {
            for report in req.containers {
                let id = report.container_id;
                let running = matches!(report.state, NmContainerState::New | NmContainerState::Running);
                let known = node.containers.contains(&id);
                // An unknown one of an earlier epoch may be an allocation its AM started only
                // after a failover: it is looked at (and maybe adopted) below.
                if running && !known && id.epoch >= self.cfg.epoch {
                    response.containers_to_cleanup.push(id);
                } else if !running || !known || node.launching.remove(&id) || !report.diagnostics.is_empty() {
                    news.push(report);
                }
            }
        }
        for report in news {
            self.container_report(&req.node_id, report, &mut response, now, fx);
        }
        // YARN's applicationsToCleanup: the node deletes these applications' directories. The
        // list is the node's own (bounded by what it holds), each checked with one lookup.
        response.applications_to_cleanup = req
            .applications_with_dirs
            .into_iter()
            .filter(|app| self.apps.get(app).is_none_or(|a| a.state.is_final()))
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
        let live_here = self.containers.get(&id).is_some_and(|c| &c.node_id == node);
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
                let mut started = false;
                if let Some(rc) = self.containers.get_mut(&id)
                    && rc.state != ContainerState::Running
                {
                    started = transition(&mut rc.state, ContainerState::Running, &id).is_ok();
                }
                // NMs report every running container on every heartbeat; most reports change
                // nothing, so the history is only looked up when there is news.
                if (started || !report.diagnostics.is_empty())
                    && let Some(h) = self.apps.get_mut(&id.app()).and_then(|a| a.container_history.get_mut(&id))
                {
                    h.diagnostics = report.diagnostics;
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
        if id.epoch >= self.cfg.epoch || self.containers.contains_key(&id) {
            return false;
        }
        let Some(node) = self.nodes.get(node_id) else { return false };
        // A completed container is released right away, so only a running one needs room.
        if running && !node.free().fits(&resource) {
            tracing::warn!(container = %id, node = %node_id, %resource, "cannot adopt a container: its node is full");
            return false;
        }
        let Some(app) = self.apps.get(&id.app()) else { return false };
        let Some(attempt) = app.attempts.last().filter(|a| a.id == id.attempt && !a.state.is_final()) else {
            return false;
        };
        if app.container_history.contains_key(&id) {
            return false;
        }
        let rc = RmContainer {
            id,
            node_id: node_id.clone(),
            resource,
            // NMs do not report it; it only orders preemption victims.
            priority: 0,
            state: ContainerState::New,
            is_am: attempt.am_container == Some(id),
            allocated_at: now,
            token: container_token(&self.container_signer, &self.cfg, id, node_id, &app.user, resource, now),
        };
        let is_am = rc.is_am;
        self.add_container(rc, ContainerState::Running);
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
        let Some(mut rc) = self.containers.remove(&id) else { return };
        self.unmark(id);
        let _ = transition(&mut rc.state, ContainerState::Completed, &id);
        self.update_node(&rc.node_id, |node| {
            node.used -= rc.resource;
            node.containers.remove(&id);
            node.launching.remove(&id);
        });
        self.cluster_used -= rc.resource;
        fx.observe(Observation::ContainerCompleted { exit_status: exit });
        if let Some(stop_exit) = stop_with {
            let http = self.nodes.get(&rc.node_id).map(|n| n.http_address.clone()).unwrap_or_default();
            fx.stop_container(ContainerStop {
                container_id: id,
                node_id: rc.node_id.clone(),
                node_http_address: http,
                container_token: rc.token.clone(),
                exit_status: stop_exit,
            });
        }
        let Some(app) = self.apps.get_mut(&id.app()) else { return };
        app.used -= rc.resource;
        if let Some(leaf) = app.queue_index {
            self.hierarchy.refund(leaf, &app.user, rc.resource, rc.is_am);
        }
        app.containers.remove(&id);
        let secs = now.saturating_sub(rc.allocated_at) / 1000;
        app.memory_seconds += rc.resource.memory_mb * secs;
        app.vcore_seconds += u64::from(rc.resource.vcores) * secs;
        if let Some(h) = app.container_history.get_mut(&id) {
            h.finished_at = Some(now);
            h.exit_status = Some(exit);
            h.diagnostics = diagnostics.to_owned();
        }
        let Some(attempt) = app.attempts.last_mut().filter(|a| a.id == id.attempt && !a.state.is_final()) else {
            return;
        };
        if rc.is_am {
            let diag = format!(
                "AM Container for {} exited with exitCode: {exit}{}{}",
                attempt.id,
                exit_status::name(exit).map(|n| format!(" ({n})")).unwrap_or_default(),
                if diagnostics.is_empty() { String::new() } else { format!(". Diagnostics: {diagnostics}") }
            );
            if let Err(e) = self.fail_attempt(id.app(), diag, Some(exit), now, fx) {
                tracing::error!(container = %id, error = %e, "cannot fail attempt");
            }
            return;
        }
        attempt.outbox_completed.push(ContainerStatus {
            container_id: id,
            state: NmContainerState::Complete,
            exit_status: exit,
            diagnostics: diagnostics.to_owned(),
        });
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
    ) {
        let (resource, priority) = (ask.capability, ask.priority);
        let epoch = self.cfg.epoch;
        let Some(app) = self.apps.get_mut(&app_id) else { return };
        let Some(attempt) = app.attempts.last_mut() else { return };
        let Some(http) = self.nodes.get(node_id).map(|n| n.http_address.clone()) else { return };
        let id = ContainerId { attempt: attempt.id, epoch, seq: app.next_container_seq };
        app.next_container_seq += 1;
        let token = container_token(&self.container_signer, &self.cfg, id, node_id, &app.user, resource, now);
        if is_am {
            app.am_ask_since = None;
            if app.state == AppState::Accepted {
                app.diagnostics.clear(); // it held the reason the AM was waiting
            }
            attempt.am_container = Some(id);
            attempt.node_id = Some(node_id.clone());
            attempt.node_http_address = http.clone();
            attempt.last_heartbeat = now;
            self.am_expiry.push(now + self.cfg.settings.am_expiry_ms + 1, attempt.id);
            if let Err(e) = transition(&mut attempt.state, AttemptState::Allocated, &attempt.id) {
                tracing::error!(error = %e, "AM container allocated for an attempt not waiting for one");
            }
            fx.persist(StoreOp::PutAttempt(attempt_record(attempt)));
            let mut launch_context = app.launch_context.clone();
            let env = &mut launch_context.environment;
            env.insert(am_env::RM_ADDRESSES.into(), self.cfg.rm_addresses.join(","));
            let am_token = AmToken { attempt_id: attempt.id, key_id: self.cfg.am_token_key.key_id };
            env.insert(am_env::AM_TOKEN.into(), token::sign(&am_token, &self.cfg.am_token_key));
            env.insert(am_env::APPLICATION_ID.into(), app_id.to_string());
            env.insert(am_env::APP_ATTEMPT_ID.into(), attempt.id.to_string());
            env.insert(am_env::MAX_APP_ATTEMPTS.into(), app.max_attempts.to_string());
            env.insert(am_env::APP_SUBMIT_TIME.into(), app.submit_time.to_string());
            fx.launch_am(AmLaunch {
                container_id: id,
                node_http_address: http,
                container_token: token.clone(),
                launch_context,
            });
        } else {
            if app.state == AppState::Running {
                app.diagnostics.clear(); // it held why pending containers waited
            }
            attempt.outbox_allocated.push(weft_common::protocol::Container {
                id,
                node_id: node_id.clone(),
                node_http_address: http,
                resource,
                priority,
                resource_name: ask.resource_name.clone(),
                container_token: token.clone(),
            });
        }
        fx.observe(Observation::ContainerAllocated { wait_ms: now.saturating_sub(asked_at), is_am });
        self.counters.containers_allocated += 1;
        let rc = RmContainer {
            id,
            node_id: node_id.clone(),
            resource,
            priority,
            state: ContainerState::New,
            is_am,
            allocated_at: now,
            token,
        };
        self.add_container(rc, ContainerState::Allocated);
        self.allocation_expiry.push(now + self.cfg.settings.container_allocation_expiry_ms + 1, id);
        self.sync_pending(app_id);
    }

    /// Charges a new live container to its node, app, queue and user and the cluster, and
    /// records it, moved from NEW to `state` (ALLOCATED: the NM has yet to report it).
    fn add_container(&mut self, mut rc: RmContainer, state: ContainerState) {
        let (id, resource) = (rc.id, rc.resource);
        let _ = transition(&mut rc.state, ContainerState::Allocated, &id);
        if state != ContainerState::Allocated {
            let _ = transition(&mut rc.state, state, &id);
        }
        let http = self.nodes.get(&rc.node_id).map(|n| n.http_address.clone()).unwrap_or_default();
        if let Some(app) = self.apps.get_mut(&id.app()) {
            app.used += resource;
            if let Some(leaf) = app.queue_index {
                self.hierarchy.charge(leaf, &app.user, resource, rc.is_am);
            }
            app.containers.insert(id);
            let history = ContainerHistory {
                id,
                node_id: rc.node_id.clone(),
                node_http_address: http,
                resource,
                priority: rc.priority,
                allocated_at: rc.allocated_at,
                finished_at: None,
                exit_status: None,
                diagnostics: String::new(),
            };
            app.container_history.insert(id, history);
        }
        self.update_node(&rc.node_id, |node| {
            node.used += resource;
            node.containers.insert(id);
            if state == ContainerState::Allocated {
                node.launching.insert(id);
            }
        });
        self.cluster_used += resource;
        self.containers.insert(id, rc);
    }

    /// Applies `f` to a node and keeps the free-capacity index in step: a node is indexed iff it
    /// is usable, keyed by its current free memory.
    fn update_node<R>(&mut self, id: &NodeId, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let node = self.nodes.get_mut(id)?;
        if node.state.is_usable() {
            let free = node.free();
            if free.fits(&self.cfg.settings.min_allocation) {
                self.free_index.remove(&(free.memory_mb, node.id.clone()));
            }
            pending::remove_one(&mut self.free_vcores, &free.vcores);
            self.usable_capacity -= node.total;
            self.usable_count -= 1;
        }
        let r = f(node);
        if node.state.is_usable() {
            let free = node.free();
            if free.fits(&self.cfg.settings.min_allocation) {
                self.free_index.insert((free.memory_mb, node.id.clone()));
            }
            pending::add_one(&mut self.free_vcores, free.vcores);
            self.usable_capacity += node.total;
            self.usable_count += 1;
        }
        Some(r)
    }

    /// What an app could still get (YARN's headroom): the cluster's free resources, within its
    /// queue's limits. Cheap: the hierarchy tracks the cluster size and what is in use.
    fn headroom(&self, app: ApplicationId) -> Resource {
        let h = &self.hierarchy;
        let free = h.tree().cluster.saturating_sub(h.usage(0).used);
        match self.apps.get(&app).and_then(|a| a.queue_index.map(|q| (q, &a.user))) {
            Some((leaf, user)) => {
                let room = h.headroom(leaf, user);
                Resource::new(free.memory_mb.min(room.memory_mb), free.vcores.min(room.vcores))
            }
            None => free,
        }
    }

    fn usable_nodes(&self) -> u32 {
        self.usable_count
    }

    /// The set of usable nodes changed: queue capacities follow, and fair orderings by dominant
    /// share may change.
    fn resize_cluster(&mut self) {
        self.hierarchy.resize(self.usable_capacity);
        self.pending.stale = true;
    }

    // -----------------------------------------------------------------------------------------
    // Timers.

    fn tick(&mut self, now: Millis, fx: &mut impl Effects) {
        // Usage is incomplete until the known nodes have re-registered with their containers.
        if self.recovery.is_none() {
            self.preemption_tick(now, fx);
        }
        for id in self.node_expiry.pop_due(now) {
            let Some(node) = self.nodes.get(&id) else { continue };
            if !matches!(node.state, NodeState::Running | NodeState::Unhealthy) {
                continue; // registering again queues a new deadline
            }
            let due = node.last_heartbeat + self.cfg.settings.nm_expiry_ms + 1;
            if due > now {
                self.node_expiry.push(due, id);
            } else {
                self.node_lost(&id, now, fx);
            }
        }

        for attempt in self.am_expiry.pop_due(now) {
            let Some(current) =
                self.apps.get(&attempt.app).filter(|a| !a.state.is_final()).and_then(|a| a.current_attempt())
            else {
                continue;
            };
            let live =
                matches!(current.state, AttemptState::Allocated | AttemptState::Launched | AttemptState::Running);
            if current.id != attempt || !live {
                continue;
            }
            let due = current.last_heartbeat + self.cfg.settings.am_expiry_ms + 1;
            if due > now {
                self.am_expiry.push(due, attempt);
                continue;
            }
            // Failing the attempt stops its AM container too, so two AMs never run at once.
            let diag = format!(
                "ApplicationMaster for attempt {attempt} timed out after {} ms without a heartbeat",
                self.cfg.settings.am_expiry_ms
            );
            if let Err(e) = self.fail_attempt(attempt.app, diag, None, now, fx) {
                tracing::error!(%attempt, error = %e, "cannot expire attempt");
            }
        }

        for app in self.draining_apps.pop_due(now) {
            let Some(a) = self.apps.get(&app).filter(|a| a.state.is_final()) else { continue };
            let leftovers: Vec<ContainerId> = a.containers.iter().copied().collect();
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

        for id in self.allocation_expiry.pop_due(now) {
            if self.containers.get(&id).is_some_and(|c| c.state == ContainerState::Allocated) {
                let exit = exit_status::ABORTED;
                self.complete_container(id, exit, "Container expired since it was unused", now, fx, Some(exit));
            }
        }

        let nodes = self.usable_nodes();
        for id in self.long_polls.pop_due(now) {
            let limit = self.headroom(id);
            let Some(attempt) = self.apps.get_mut(&id).and_then(|a| a.attempts.last_mut()) else { continue };
            if let Some((req, deadline)) = attempt.parked
                && deadline <= now
            {
                attempt.parked = None;
                let resp = build_response(attempt, limit, nodes, None);
                fx.reply(req, Reply::Allocate(Ok(resp)));
            }
        }
    }

    fn node_lost(&mut self, id: &NodeId, now: Millis, fx: &mut impl Effects) {
        let marked = self.update_node(id, |node| transition(&mut node.state, NodeState::Lost, &node.id.clone()));
        if let Some(Err(e)) = marked {
            tracing::error!(error = %e, "cannot mark node lost");
            return;
        }
        tracing::warn!(node = %id, "node lost: no heartbeat within {} ms", self.cfg.settings.nm_expiry_ms);
        let containers: Vec<ContainerId> =
            self.nodes.get(id).map(|n| n.containers.iter().copied().collect()).unwrap_or_default();
        for c in containers {
            self.complete_container(c, exit_status::ABORTED, "Container released on a *lost* node", now, fx, None);
        }
        self.resize_cluster();
        if self.known_nodes.remove(id) {
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

/// Takes what the attempt's outbox holds into a new allocate response.
fn build_response(
    attempt: &mut Attempt,
    limit: Resource,
    num_cluster_nodes: u32,
    am_command: Option<AmCommand>,
) -> AllocateResponse {
    attempt.response_id += 1;
    attempt.preemption_news = false;
    let preemption = (!attempt.preempting.is_empty())
        .then(|| PreemptionMessage { strict: attempt.preempting.iter().copied().collect(), ..Default::default() });
    let resp = AllocateResponse {
        response_id: attempt.response_id,
        allocated: std::mem::take(&mut attempt.outbox_allocated),
        completed: std::mem::take(&mut attempt.outbox_completed),
        limit,
        num_cluster_nodes,
        preemption,
        am_command,
    };
    attempt.last_response = Some(resp.clone());
    resp
}

pub fn app_record(app: &App) -> AppRecord {
    AppRecord {
        id: app.id,
        user: app.user.clone(),
        queue: app.queue.clone(),
        name: app.name.clone(),
        application_type: app.application_type.clone(),
        tags: app.tags.clone(),
        priority: app.priority,
        max_attempts: app.max_attempts,
        am_resource: app.am_resource,
        launch_context: app.launch_context.clone(),
        submit_time: app.submit_time,
        finish_time: app.finish_time,
        // NEW_SAVING is what the store sees of a fresh submit: durable from then on.
        state: if app.state == AppState::NewSaving { AppState::Submitted } else { app.state },
        final_status: app.final_status,
        diagnostics: app.diagnostics.clone(),
    }
}

pub fn attempt_record(a: &Attempt) -> AttemptRecord {
    AttemptRecord {
        id: a.id,
        state: a.state,
        am_container: a.am_container,
        node_id: a.node_id.clone(),
        node_http_address: a.node_http_address.clone(),
        start_time: a.start_time,
        finish_time: a.finish_time,
        diagnostics: a.diagnostics.clone(),
        am_exit_status: a.am_exit_status,
    }
}

fn app_from_record(r: AppRecord) -> App {
    App {
        id: r.id,
        user: r.user,
        name: r.name,
        queue: r.queue,
        queue_index: None,
        application_type: r.application_type,
        tags: r.tags,
        priority: r.priority,
        max_attempts: r.max_attempts,
        am_resource: r.am_resource,
        launch_context: r.launch_context,
        submit_time: r.submit_time,
        launch_time: None,
        finish_time: r.finish_time,
        state: r.state,
        final_status: r.final_status,
        diagnostics: r.diagnostics,
        progress: if r.state.is_final() { 1.0 } else { 0.0 },
        attempts: Vec::new(),
        am_ask_since: None,
        asks: BTreeMap::new(),
        containers: BTreeSet::new(),
        used: Resource::ZERO,
        next_container_seq: 1,
        memory_seconds: 0,
        vcore_seconds: 0,
        saving_reply: None,
        container_history: BTreeMap::new(),
    }
}

fn attempt_from_record(r: AttemptRecord) -> Attempt {
    let mut a = Attempt::new(r.id, r.start_time);
    a.state = r.state;
    a.am_container = r.am_container;
    a.node_id = r.node_id;
    a.node_http_address = r.node_http_address;
    a.finish_time = r.finish_time;
    a.diagnostics = r.diagnostics;
    a.am_exit_status = r.am_exit_status;
    a.counts_as_failure =
        r.state == AttemptState::Failed && r.am_exit_status.is_none_or(exit_status::counts_as_attempt_failure);
    a
}
