//! The application table: every application the core keeps, with its attempts, asks and the
//! containers it holds, plus the ids issued, the submissions waiting for the store and the
//! finished applications in retention order.
//!
//! An [`App`] and its [`Attempt`]s change only through their methods here, and every change of
//! their states goes through [`transition`] with the lifecycle tables. What an app's containers
//! cost its nodes is the cluster's business, what they cost its queue the hierarchy's; the AM's
//! protocol state (outboxes, long polls) is the AM sessions'.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use weft_common::protocol::ContainerLaunchContext;
use weft_common::states::{AppState, AttemptState, FinalStatus, exit_status};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

use crate::cluster::RmContainer;
use crate::effects::ReqId;
use crate::lifecycle::{IllegalTransition, transition};
use crate::model::{Ask, AskKey, ContainerHistory};
use crate::queues::QueueIndex;
use crate::records::{AppRecord, AttemptRecord};

#[derive(Debug, Clone)]
pub struct App {
    id: ApplicationId,
    user: String,
    name: String,
    /// Leaf queue as shown to users (leaf name; full path in fair mode).
    queue: String,
    /// The leaf in the hierarchy; `None` only for recovered finished apps whose queue is gone.
    queue_index: Option<QueueIndex>,
    application_type: String,
    tags: Vec<String>,
    priority: i32,
    max_attempts: u32,
    am_resource: Resource,
    launch_context: ContainerLaunchContext,
    submit_time: Millis,
    /// When the first AM container was launched.
    launch_time: Option<Millis>,
    finish_time: Option<Millis>,
    state: AppState,
    final_status: FinalStatus,
    diagnostics: String,
    progress: f32,
    /// History; the last one is the current attempt.
    attempts: Vec<Attempt>,
    /// AM container wanted since this time (the attempt is SCHEDULED).
    am_ask_since: Option<Millis>,
    asks: BTreeMap<AskKey, Ask>,
    /// Live containers of this app.
    containers: BTreeSet<ContainerId>,
    used: Resource,
    next_container_seq: u64,
    /// Resource-seconds of containers that have completed (live ones are added when reported).
    memory_seconds: u64,
    vcore_seconds: u64,
    /// The submit request waiting for the store write of this app.
    saving_reply: Option<ReqId>,
    /// Every container this app has had, for REST listings and log lookup.
    container_history: BTreeMap<ContainerId, ContainerHistory>,
}

impl App {
    /// The app as its record says, with nothing live: no queue index, asks or containers yet.
    pub(crate) fn from_record(r: AppRecord) -> Self {
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

    /// A valid submission (its record in NEW) placed in `leaf`: NEW_SAVING until the store has
    /// it, when `req` is answered.
    pub(crate) fn submitted(record: AppRecord, leaf: QueueIndex, req: ReqId) -> Result<Self, IllegalTransition> {
        let mut app = App::from_record(record);
        app.saving_reply = Some(req);
        app.queue_index = Some(leaf);
        app.move_to(AppState::NewSaving)?;
        Ok(app)
    }

    /// What the store keeps of the app.
    pub fn record(&self) -> AppRecord {
        AppRecord {
            id: self.id,
            user: self.user.clone(),
            queue: self.queue.clone(),
            name: self.name.clone(),
            application_type: self.application_type.clone(),
            tags: self.tags.clone(),
            priority: self.priority,
            max_attempts: self.max_attempts,
            am_resource: self.am_resource,
            launch_context: self.launch_context.clone(),
            submit_time: self.submit_time,
            finish_time: self.finish_time,
            // NEW_SAVING is what the store sees of a fresh submit: durable from then on.
            state: if self.state == AppState::NewSaving { AppState::Submitted } else { self.state },
            final_status: self.final_status,
            diagnostics: self.diagnostics.clone(),
        }
    }

    fn move_to(&mut self, to: AppState) -> Result<(), IllegalTransition> {
        transition(&mut self.state, to, &self.id)
    }

    // -----------------------------------------------------------------------------------------
    // Reads.

    pub fn id(&self) -> ApplicationId {
        self.id
    }
    pub fn user(&self) -> &str {
        &self.user
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Leaf queue as shown to users (leaf name; full path in fair mode).
    pub fn queue(&self) -> &str {
        &self.queue
    }
    /// The leaf in the hierarchy; `None` only for recovered finished apps whose queue is gone.
    pub fn queue_index(&self) -> Option<QueueIndex> {
        self.queue_index
    }
    pub fn application_type(&self) -> &str {
        &self.application_type
    }
    pub fn tags(&self) -> &[String] {
        &self.tags
    }
    pub fn priority(&self) -> i32 {
        self.priority
    }
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
    pub fn am_resource(&self) -> Resource {
        self.am_resource
    }
    pub fn launch_context(&self) -> &ContainerLaunchContext {
        &self.launch_context
    }
    pub fn submit_time(&self) -> Millis {
        self.submit_time
    }
    /// When the first AM container was launched.
    pub fn launch_time(&self) -> Option<Millis> {
        self.launch_time
    }
    pub fn finish_time(&self) -> Option<Millis> {
        self.finish_time
    }
    pub fn state(&self) -> AppState {
        self.state
    }
    pub fn final_status(&self) -> FinalStatus {
        self.final_status
    }
    pub fn diagnostics(&self) -> &str {
        &self.diagnostics
    }
    pub fn progress(&self) -> f32 {
        self.progress
    }
    /// History; the last one is the current attempt.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }
    pub fn current_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }
    /// Since when the AM container is wanted (the attempt is SCHEDULED).
    pub fn am_ask_since(&self) -> Option<Millis> {
        self.am_ask_since
    }
    pub fn asks(&self) -> &BTreeMap<AskKey, Ask> {
        &self.asks
    }
    /// Live containers of this app.
    pub fn containers(&self) -> &BTreeSet<ContainerId> {
        &self.containers
    }
    pub fn used(&self) -> Resource {
        self.used
    }
    /// Resource-seconds of containers that have completed (live ones accrue until now).
    pub fn memory_seconds(&self) -> u64 {
        self.memory_seconds
    }
    pub fn vcore_seconds(&self) -> u64 {
        self.vcore_seconds
    }
    /// Every container this app has had, for REST listings and log lookup.
    pub fn container_history(&self) -> &BTreeMap<ContainerId, ContainerHistory> {
        &self.container_history
    }
    /// Whether the submit still waits for the store.
    pub(crate) fn is_saving(&self) -> bool {
        self.saving_reply.is_some()
    }

    pub fn has_demand(&self) -> bool {
        !self.state.is_final() && (self.am_ask_since.is_some() || !self.asks.is_empty())
    }

    pub fn pending_containers(&self) -> u64 {
        self.asks.values().map(|a| u64::from(a.count)).sum::<u64>() + u64::from(self.am_ask_since.is_some())
    }

    /// The current attempt if it is live and the app is unfinished.
    pub(crate) fn live_attempt(&self) -> Option<&Attempt> {
        self.attempts.last().filter(|a| !a.state.is_final() && !self.state.is_final())
    }

    // -----------------------------------------------------------------------------------------
    // Queue and priority.

    pub(crate) fn set_queue_index(&mut self, leaf: Option<QueueIndex>) {
        self.queue_index = leaf;
    }

    /// The queue tree changed: `moved[old]` is each queue's new index (None: gone).
    pub(crate) fn remap_queue(&mut self, moved: &[Option<QueueIndex>]) {
        self.queue_index = self.queue_index.and_then(|q| moved.get(q).copied().flatten());
    }

    pub(crate) fn move_to_queue(&mut self, leaf: QueueIndex, display: String) {
        self.queue_index = Some(leaf);
        self.queue = display;
    }

    pub(crate) fn set_priority(&mut self, priority: i32) {
        self.priority = priority;
    }

    // -----------------------------------------------------------------------------------------
    // Lifecycle.

    /// The store has the submission: the request waiting for it, to be answered.
    pub(crate) fn take_saving_reply(&mut self) -> Option<ReqId> {
        self.saving_reply.take()
    }

    /// The submission is durable: NEW_SAVING → SUBMITTED.
    pub(crate) fn saved(&mut self) -> Result<(), IllegalTransition> {
        self.move_to(AppState::Submitted)
    }

    /// Starts the next attempt, SCHEDULED and wanting its AM container; the app is ACCEPTED.
    /// Returns the new attempt's record, for the store.
    pub(crate) fn start_attempt(&mut self, now: Millis) -> Result<AttemptRecord, IllegalTransition> {
        let number = self.attempts.last().map_or(1, |a| a.id.attempt + 1);
        let mut attempt = Attempt::new(AttemptId::new(self.id, number), now);
        attempt.schedule()?;
        if self.state != AppState::Accepted {
            self.move_to(AppState::Accepted)?;
        }
        let record = attempt.record();
        self.attempts.push(attempt);
        self.wait_for_am_container(now);
        Ok(record)
    }

    /// Until the scheduler says otherwise (a queue limit) or places the AM (which clears it);
    /// when no node has room, the scheduler does not look at the app at all.
    fn wait_for_am_container(&mut self, now: Millis) {
        self.am_ask_since = Some(now);
        self.diagnostics = waiting_for_am_node(self.am_resource);
    }

    /// Moves the app to a final state and drops its demand.
    pub(crate) fn finish(
        &mut self,
        state: AppState,
        final_status: FinalStatus,
        diagnostics: String,
        now: Millis,
    ) -> Result<(), IllegalTransition> {
        self.move_to(state)?;
        self.final_status = final_status;
        self.diagnostics = diagnostics;
        self.finish_time = Some(now);
        self.drop_demand();
        Ok(())
    }

    pub(crate) fn drop_demand(&mut self) {
        self.am_ask_since = None;
        self.asks.clear();
    }

    /// Ends the current attempt if it is live; returns its record, for the store, if it did.
    pub(crate) fn end_attempt(
        &mut self,
        to: AttemptState,
        diagnostics: &str,
        am_exit: Option<i32>,
        now: Millis,
    ) -> Result<Option<AttemptRecord>, IllegalTransition> {
        let Some(attempt) = self.attempts.last_mut().filter(|a| !a.state.is_final()) else { return Ok(None) };
        if to == AttemptState::Finished && attempt.state == AttemptState::Running {
            transition(&mut attempt.state, AttemptState::Finishing, &attempt.id)?;
        }
        transition(&mut attempt.state, to, &attempt.id)?;
        attempt.finish_time = Some(now);
        attempt.diagnostics = diagnostics.to_owned();
        attempt.am_exit_status = am_exit;
        attempt.counts_as_failure =
            to == AttemptState::Failed && am_exit.is_none_or(exit_status::counts_as_attempt_failure);
        Ok(Some(attempt.record()))
    }

    /// How many attempts failed in a way that counts towards max attempts.
    pub(crate) fn counted_failures(&self) -> u32 {
        self.attempts.iter().filter(|a| a.counts_as_failure).count() as u32
    }

    /// The AM of the live attempt registered: the attempt is RUNNING (from ALLOCATED or
    /// LAUNCHED), and so is the app. False if the attempt is in no state to register.
    pub(crate) fn am_registered(
        &mut self,
        host: String,
        rpc_port: u16,
        tracking_url: String,
        now: Millis,
    ) -> Result<bool, IllegalTransition> {
        let Some(attempt) = self.attempts.last_mut() else { return Ok(false) };
        if matches!(attempt.state, AttemptState::Allocated | AttemptState::Launched) {
            transition(&mut attempt.state, AttemptState::Running, &attempt.id)?;
        }
        if attempt.state != AttemptState::Running {
            return Ok(false);
        }
        attempt.last_heartbeat = now;
        attempt.host = host;
        attempt.rpc_port = rpc_port;
        attempt.tracking_url = tracking_url;
        if self.state == AppState::Accepted {
            self.move_to(AppState::Running)?;
        }
        Ok(true)
    }

    /// A sign of life from the current attempt's AM.
    pub(crate) fn heard_from_am(&mut self, now: Millis) {
        if let Some(a) = self.attempts.last_mut() {
            a.last_heartbeat = now;
        }
    }

    pub(crate) fn set_progress(&mut self, progress: f32) {
        self.progress = progress.clamp(0.0, 1.0);
    }

    pub(crate) fn set_tracking_url(&mut self, url: String) {
        if let Some(a) = self.attempts.last_mut() {
            a.tracking_url = url;
        }
    }

    /// The NM accepted the launch of AM container `container`: the launch time is recorded and
    /// its attempt, if still ALLOCATED, is LAUNCHED.
    pub(crate) fn am_launched(&mut self, container: ContainerId, now: Millis) -> Result<(), IllegalTransition> {
        self.launch_time.get_or_insert(now);
        match self.attempts.last_mut() {
            Some(a) if a.am_container == Some(container) && a.state == AttemptState::Allocated => {
                transition(&mut a.state, AttemptState::Launched, &a.id)
            }
            _ => Ok(()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Demand.

    /// Replaces the ask at `key` (YARN's semantics: a new count replaces the old; 0 removes it).
    /// An ask keeps the time it first appeared.
    pub(crate) fn set_ask(&mut self, key: AskKey, count: u32, relax_locality: bool, gang: bool, now: Millis) {
        if count == 0 {
            self.asks.remove(&key);
        } else {
            let since = self.asks.get(&key).map_or(now, |a| a.since);
            self.asks.insert(key, Ask { count, relax_locality, gang, since });
        }
    }

    /// `granted` containers of the ask at `key` were allocated.
    pub(crate) fn ask_granted(&mut self, key: &AskKey, granted: u32) {
        match self.asks.get_mut(key) {
            Some(a) if a.count > granted => a.count -= granted,
            _ => {
                self.asks.remove(key);
            }
        }
    }

    /// Tells users why the app waits: for its ApplicationMaster container (ACCEPTED), or for
    /// more containers because a queue limit holds them back (RUNNING). Cleared when the app
    /// gets what it waited for.
    pub(crate) fn set_waiting_reason(&mut self, why: String) {
        if matches!(self.state, AppState::Accepted | AppState::Running) {
            self.diagnostics = why;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Containers.

    /// The id of the next container of the current attempt; None without an attempt.
    pub(crate) fn next_container_id(&mut self, epoch: u32) -> Option<ContainerId> {
        let attempt = self.attempts.last()?.id;
        let id = ContainerId { attempt, epoch, seq: self.next_container_seq };
        self.next_container_seq += 1;
        Some(id)
    }

    /// The AM container `container` was allocated on `node_id`: its attempt is ALLOCATED and
    /// the app no longer waits for it. Returns the attempt's record, for the store; None if
    /// `container` is not of the current attempt (nothing changes then, nor on an error).
    pub(crate) fn am_allocated(
        &mut self,
        container: ContainerId,
        node_id: &NodeId,
        node_http_address: &str,
        now: Millis,
    ) -> Option<Result<AttemptRecord, IllegalTransition>> {
        let attempt = self.attempts.last_mut().filter(|a| a.id == container.attempt)?;
        if let Err(e) = transition(&mut attempt.state, AttemptState::Allocated, &attempt.id) {
            return Some(Err(e));
        }
        attempt.am_container = Some(container);
        attempt.node_id = Some(node_id.clone());
        attempt.node_http_address = node_http_address.to_owned();
        attempt.last_heartbeat = now;
        let record = attempt.record();
        self.am_ask_since = None;
        if self.state == AppState::Accepted {
            self.diagnostics.clear(); // it held the reason the AM was waiting
        }
        Some(Ok(record))
    }

    /// A container for one of the AM's asks was allocated.
    pub(crate) fn task_allocated(&mut self) {
        if self.state == AppState::Running {
            self.diagnostics.clear(); // it held why pending containers waited
        }
    }

    /// Charges a new live container to the app and records it in the history.
    pub(crate) fn container_added(&mut self, rc: &RmContainer, node_http_address: String) {
        let id = rc.id();
        self.used += rc.resource();
        self.containers.insert(id);
        let history = ContainerHistory {
            id,
            node_id: rc.node_id().clone(),
            node_http_address,
            resource: rc.resource(),
            priority: rc.priority(),
            allocated_at: rc.allocated_at(),
            finished_at: None,
            exit_status: None,
            diagnostics: String::new(),
        };
        self.container_history.insert(id, history);
    }

    /// A live container of the app completed: refunded, its resource-seconds added, its
    /// outcome recorded in the history.
    pub(crate) fn container_released(&mut self, rc: &RmContainer, exit: i32, diagnostics: &str, now: Millis) {
        let id = rc.id();
        let resource = rc.resource();
        self.used -= resource;
        self.containers.remove(&id);
        let secs = now.saturating_sub(rc.allocated_at()) / 1000;
        self.memory_seconds += resource.memory_mb * secs;
        self.vcore_seconds += u64::from(resource.vcores) * secs;
        if let Some(h) = self.container_history.get_mut(&id) {
            h.finished_at = Some(now);
            h.exit_status = Some(exit);
            h.diagnostics = diagnostics.to_owned();
        }
    }

    /// What the NM last said about a running container.
    pub(crate) fn set_container_diagnostics(&mut self, id: ContainerId, diagnostics: String) {
        if let Some(h) = self.container_history.get_mut(&id) {
            h.diagnostics = diagnostics;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Recovery.

    /// Adds an attempt loaded from the store (in id order). One of an unfinished app stored
    /// before it was scheduled is scheduled now along its edges, as [`App::start_attempt`] does.
    pub(crate) fn recover_attempt(&mut self, record: AttemptRecord) -> Result<(), IllegalTransition> {
        let mut attempt = Attempt::from_record(record);
        if !self.state.is_final() && matches!(attempt.state, AttemptState::New | AttemptState::Submitted) {
            attempt.schedule()?;
        }
        self.attempts.push(attempt);
        Ok(())
    }

    /// A recovered unfinished app whose queue no longer exists fails, with its live attempt
    /// (whose containers are cleaned up when their NMs report them). Returns the records of the
    /// attempts it ended, for the store.
    pub(crate) fn fail_without_queue(&mut self, now: Millis) -> Result<Vec<AttemptRecord>, IllegalTransition> {
        let mut ended = Vec::new();
        for attempt in self.attempts.iter_mut().filter(|a| !a.state.is_final()) {
            transition(&mut attempt.state, AttemptState::Failed, &attempt.id)?;
            attempt.finish_time = Some(now);
            attempt.counts_as_failure = false;
            attempt.diagnostics = "its queue no longer exists after the ResourceManager restarted".into();
            ended.push(attempt.record());
        }
        let diagnostics = format!("queue {} no longer exists after the ResourceManager restarted", self.queue);
        self.finish(AppState::Failed, FinalStatus::Failed, diagnostics, now)?;
        Ok(ended)
    }

    /// A recovered app whose live attempt still waits for its AM container: ACCEPTED, asking
    /// for it again.
    pub(crate) fn resume_waiting_for_am(&mut self, now: Millis) -> Result<(), IllegalTransition> {
        self.accept_again()?;
        self.wait_for_am_container(now);
        Ok(())
    }

    /// A recovered app whose live attempt has its AM container: ACCEPTED until the AM (if it
    /// still runs) registers again; AM expiry counts from `now`.
    pub(crate) fn resume_waiting_for_registration(&mut self, now: Millis) -> Result<(), IllegalTransition> {
        self.accept_again()?;
        self.heard_from_am(now);
        Ok(())
    }

    fn accept_again(&mut self) -> Result<(), IllegalTransition> {
        if self.state != AppState::Accepted {
            self.move_to(AppState::Accepted)?;
        }
        Ok(())
    }
}

/// Why an app in ACCEPTED waits, until the scheduler knows better.
pub(crate) fn waiting_for_am_node(am: Resource) -> String {
    format!("waiting for a node with room for the ApplicationMaster container ({am})")
}

#[derive(Debug, Clone)]
pub struct Attempt {
    id: AttemptId,
    state: AttemptState,
    am_container: Option<ContainerId>,
    node_id: Option<NodeId>,
    node_http_address: String,
    start_time: Millis,
    finish_time: Option<Millis>,
    diagnostics: String,
    am_exit_status: Option<i32>,
    /// Whether this attempt's failure counts towards max attempts.
    counts_as_failure: bool,
    /// Last sign of life from the AM (allocation of its container, register, allocate).
    last_heartbeat: Millis,
    host: String,
    rpc_port: u16,
    tracking_url: String,
}

impl Attempt {
    fn new(id: AttemptId, now: Millis) -> Self {
        Self {
            id,
            state: AttemptState::New,
            am_container: None,
            node_id: None,
            node_http_address: String::new(),
            start_time: now,
            finish_time: None,
            diagnostics: String::new(),
            am_exit_status: None,
            counts_as_failure: false,
            last_heartbeat: now,
            host: String::new(),
            rpc_port: 0,
            tracking_url: String::new(),
        }
    }

    fn from_record(r: AttemptRecord) -> Self {
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

    /// NEW or SUBMITTED → SCHEDULED: the attempt wants its AM container.
    fn schedule(&mut self) -> Result<(), IllegalTransition> {
        if self.state == AttemptState::New {
            transition(&mut self.state, AttemptState::Submitted, &self.id)?;
        }
        transition(&mut self.state, AttemptState::Scheduled, &self.id)
    }

    /// What the store keeps of the attempt.
    pub fn record(&self) -> AttemptRecord {
        AttemptRecord {
            id: self.id,
            state: self.state,
            am_container: self.am_container,
            node_id: self.node_id.clone(),
            node_http_address: self.node_http_address.clone(),
            start_time: self.start_time,
            finish_time: self.finish_time,
            diagnostics: self.diagnostics.clone(),
            am_exit_status: self.am_exit_status,
        }
    }

    pub fn id(&self) -> AttemptId {
        self.id
    }
    pub fn state(&self) -> AttemptState {
        self.state
    }
    pub fn am_container(&self) -> Option<ContainerId> {
        self.am_container
    }
    pub fn node_id(&self) -> Option<&NodeId> {
        self.node_id.as_ref()
    }
    pub fn node_http_address(&self) -> &str {
        &self.node_http_address
    }
    pub fn start_time(&self) -> Millis {
        self.start_time
    }
    pub fn finish_time(&self) -> Option<Millis> {
        self.finish_time
    }
    pub fn diagnostics(&self) -> &str {
        &self.diagnostics
    }
    pub fn am_exit_status(&self) -> Option<i32> {
        self.am_exit_status
    }
    /// Whether this attempt's failure counts towards max attempts.
    pub fn counts_as_failure(&self) -> bool {
        self.counts_as_failure
    }
    /// Last sign of life from the AM (allocation of its container, register, allocate).
    pub fn last_heartbeat(&self) -> Millis {
        self.last_heartbeat
    }
    /// Host and RPC port the AM registered with (empty and 0 before it did).
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }
    pub fn tracking_url(&self) -> &str {
        &self.tracking_url
    }
}

/// Every application the core keeps, by id.
#[derive(Debug)]
pub(crate) struct AppTable {
    apps: BTreeMap<ApplicationId, App>,
    /// Sequence number of the next application id this incarnation issues.
    next_seq: u32,
    /// Apps whose submit write is in flight, answered on [`crate::Event::Persisted`].
    saving: Vec<ApplicationId>,
    /// Finished apps in finishing order, for retention.
    completed: VecDeque<ApplicationId>,
}

impl Default for AppTable {
    fn default() -> Self {
        Self { apps: BTreeMap::new(), next_seq: 1, saving: Vec::new(), completed: VecDeque::new() }
    }
}

impl AppTable {
    /// Issues the next application id of the incarnation started at `cluster_ts`.
    pub(crate) fn issue_id(&mut self, cluster_ts: Millis) -> ApplicationId {
        let id = ApplicationId::new(cluster_ts, self.next_seq);
        self.next_seq += 1;
        id
    }

    /// Whether `id` was issued by this incarnation (started at `cluster_ts`) or an earlier one:
    /// a client that got its id just before a failover submits it to the new active.
    pub(crate) fn was_issued(&self, id: ApplicationId, cluster_ts: Millis) -> bool {
        let issued = if id.cluster_ts == cluster_ts { id.seq < self.next_seq } else { id.cluster_ts < cluster_ts };
        issued && id.seq != 0
    }

    pub(crate) fn get(&self, id: ApplicationId) -> Option<&App> {
        self.apps.get(&id)
    }
    pub(crate) fn get_mut(&mut self, id: ApplicationId) -> Option<&mut App> {
        self.apps.get_mut(&id)
    }
    pub(crate) fn contains(&self, id: ApplicationId) -> bool {
        self.apps.contains_key(&id)
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut App> {
        self.apps.values_mut()
    }

    /// A submitted app (NEW_SAVING), answered once its write is durable.
    pub(crate) fn insert_submitted(&mut self, app: App) {
        self.saving.push(app.id);
        self.apps.insert(app.id, app);
    }

    /// The apps whose submit writes are now durable.
    pub(crate) fn take_saved(&mut self) -> Vec<ApplicationId> {
        std::mem::take(&mut self.saving)
    }

    /// A recovered app; a finished one joins the retention order (sorted by
    /// [`AppTable::sort_completed`] once all are in).
    pub(crate) fn insert_recovered(&mut self, app: App) {
        if app.state.is_final() {
            self.completed.push_back(app.id);
        }
        self.apps.insert(app.id, app);
    }

    /// Puts recovered finished apps in finishing order.
    pub(crate) fn sort_completed(&mut self) {
        let apps = &self.apps;
        self.completed.make_contiguous().sort_by_key(|id| apps[id].finish_time);
    }

    /// `id` finished: retained until `max` finished apps are newer. Returns the apps retired
    /// now (the caller removes them from the store). An app with containers still draining is
    /// kept until the next retirement.
    pub(crate) fn finished(&mut self, id: ApplicationId, max: usize) -> Vec<ApplicationId> {
        self.completed.push_back(id);
        let mut retired = Vec::new();
        while self.completed.len() > max {
            let Some(id) = self.completed.pop_front() else { break };
            if self.apps.get(&id).is_some_and(|a| a.containers.is_empty()) {
                self.apps.remove(&id);
                retired.push(id);
            } else {
                self.completed.push_back(id);
                break;
            }
        }
        retired
    }
}
