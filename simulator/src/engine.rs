//! The discrete-event engine: a virtual clock, one event queue ordered by (time, insertion), and
//! simulated NodeManagers and ApplicationMasters that speak the RM protocols to the real
//! scheduler core through [`Core::handle`].
//!
//! What is simulated, and how faithfully:
//! - **NodeManagers** register at t = 0 and heartbeat every interval with random (seeded)
//!   phases, reporting every running container as RUNNING and every finished one as COMPLETE
//!   until the RM acknowledges it; with `nm.out-of-band-heartbeat` they also heartbeat as soon as
//!   a container exits. Containers the RM stops vanish from their node at once.
//! - **ApplicationMasters**: the RM's AM launch becomes `AmLaunched` after `am.launch-delay`, then
//!   a registration after `am.register-delay`. The AM asks for one stage's tasks at a time (one
//!   ask key per stage, priority = stage + 1), runs each task in the container it gets for the
//!   task's duration, re-asks for tasks whose containers were lost, preempted or killed, releases
//!   containers it no longer needs, and unregisters when the last stage is done. It polls
//!   allocate every `am.heartbeat-interval` (`wait_ms: 0`), or long-polls with `am.long-poll`.
//! - **Submissions**: NewApplication, Submit, then Persisted (nothing is durable in a simulation,
//!   so every write is "persisted" at once).
//! - **Failures**: a failed node stops heartbeating and loses everything it ran (AMs included);
//!   the core notices after `rm.nm-expiry`. A recovered node registers again, empty.
//! - **Ticks** every `rm.tick-interval` drive expiry and the preemption monitor.
//!
//! Time inside `Core::handle` is measured per call; the simulation never reads the clock for
//! anything that influences it, so the decision log depends only on the scenario and the seed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use weft_common::protocol::{
    AllocateRequest, ContainerReport, FinishAmRequest, NodeHealth, NodeHeartbeatRequest, RegisterAmRequest,
    RegisterNodeRequest, ResourceRequest,
};
use weft_common::rest::{AmContainerSpec, ApplicationSubmissionContext, Commands};
use weft_common::states::{FinalStatus, NmContainerState, exit_status};
use weft_common::token::MasterKey;
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};
use weft_rm_core::queues::{QueueSettings, QueuesConfig, ResourceCalculator};
use weft_rm_core::records::StoreOp;
use weft_rm_core::{AmLaunch, ContainerStop, Core, CoreConfig, CoreError, Effects, Event, Observation, Reply, ReqId};

use crate::decisions::DecisionLog;
use crate::metrics::{CoreTimings, Histogram, Kind, reset_peak_rss, rss_bytes, thread_cpu_ns};
use crate::queue::EventQueue;
use crate::rng::Rng;
use crate::scenario::Scenario;
use crate::trace::{AppSpec, TraceWriter};
use crate::workload::Generator;

/// Fixed so application and container ids are the same in every run.
pub const CLUSTER_TS: Millis = 1_700_000_000_000;
const NM_PORT: u16 = 8042;

/// Where the applications come from.
pub enum Workload {
    /// Every app of a trace, sorted by submit time.
    Trace(Vec<AppSpec>),
    Generator(Generator),
}

/// A scenario ready to run: settings, the queue configuration and the workload.
pub struct SimInput {
    pub scenario: Scenario,
    pub queues: QueuesConfig,
    pub workload: Workload,
}

/// Optional outputs, written while the simulation runs.
#[derive(Default)]
pub struct Outputs {
    pub decisions: Option<Box<dyn std::io::Write>>,
    pub trace: Option<Box<dyn std::io::Write>>,
    /// Print a progress line to stderr every few seconds of wall time.
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the scheduler core refused the configuration: {0}")]
    Core(#[from] CoreError),
    #[error("cannot write {what}: {source}")]
    Write { what: &'static str, source: std::io::Error },
}

// ---------------------------------------------------------------------------------------------
// Events.

#[derive(Debug, Clone, Copy)]
enum Ev {
    NodeHeartbeat {
        node: u32,
        life: u32,
    },
    /// A heartbeat right after a container exited.
    NodeOobHeartbeat {
        node: u32,
        life: u32,
    },
    ContainerDone {
        node: u32,
        life: u32,
        container: ContainerId,
    },
    NodeFail {
        node: u32,
        down_for: Option<u64>,
    },
    NodeRecover {
        node: u32,
    },
    /// The RM asked the node to register again.
    NodeResync {
        node: u32,
    },
    /// The next app of a generator stream.
    Arrival {
        stream: u32,
    },
    /// A trace app (index into the apps) is due.
    TraceSubmit {
        app: u32,
    },
    AmLaunched {
        app: u32,
        life: u32,
        container: ContainerId,
    },
    AmLaunchFailed {
        app: u32,
        life: u32,
        container: ContainerId,
    },
    AmRegister {
        app: u32,
        life: u32,
    },
    AmAllocate {
        app: u32,
        life: u32,
    },
    AmFinish {
        app: u32,
        life: u32,
    },
    Tick,
    Sample,
    WarmupEnd,
}

/// Request ids carry who asked (node or app index) and its generation, so a reply finds its
/// sender without a lookup and replies to a dead incarnation are recognised.
fn req_id(index: u32, life: u32) -> ReqId {
    u64::from(index) | (u64::from(life) << 32)
}

fn req_parts(req: ReqId) -> (u32, u32) {
    (req as u32, (req >> 32) as u32)
}

// ---------------------------------------------------------------------------------------------
// Effects.

/// Collects the core's effects of one step; the engine acts on them after the step.
#[derive(Default)]
struct SimFx {
    replies: Vec<(ReqId, Reply)>,
    launches: Vec<AmLaunch>,
    stops: Vec<ContainerStop>,
    allocated: u64,
    completed: u64,
    marked: u64,
    preempted: u64,
    nodes_lost: u64,
    /// Ask-to-allocation wait as the core measures it (from when the ask key appeared).
    core_wait_ms: Histogram,
}

impl Effects for SimFx {
    fn reply(&mut self, req: ReqId, reply: Reply) {
        self.replies.push((req, reply));
    }
    fn persist(&mut self, _op: StoreOp) {
        // Nothing is durable in a simulation: every submit is followed by `Persisted`.
    }
    fn launch_am(&mut self, launch: AmLaunch) {
        self.launches.push(launch);
    }
    fn stop_container(&mut self, stop: ContainerStop) {
        self.stops.push(stop);
    }
    fn observe(&mut self, observation: Observation) {
        match observation {
            Observation::ContainerAllocated { wait_ms, .. } => {
                self.allocated += 1;
                self.core_wait_ms.record(wait_ms);
            }
            Observation::ContainerCompleted { .. } => self.completed += 1,
            Observation::PreemptionMarked => self.marked += 1,
            Observation::ContainerPreempted => self.preempted += 1,
            Observation::NodeLost => self.nodes_lost += 1,
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simulated NodeManagers.

#[derive(Debug, Clone, Copy)]
struct RunningContainer {
    id: ContainerId,
    resource: Resource,
}

struct SimNode {
    id: NodeId,
    http_address: String,
    rack: String,
    up: bool,
    /// Bumped when the node fails or comes back: events of an earlier life are ignored.
    life: u32,
    running: Vec<RunningContainer>,
    /// Finished containers reported until the RM acknowledges them: (id, resource, exit).
    completed: Vec<(ContainerId, Resource, i32)>,
    oob_pending: bool,
    /// Down from a random failure: its recovery draws the node's next random failure.
    random_down: bool,
}

fn node_name(index: u32) -> String {
    format!("node{index:05}")
}

/// `node00042:8042` or `http://node00042:8042` → 42.
fn node_index(text: &str) -> Option<u32> {
    let host = text.strip_prefix("http://").unwrap_or(text);
    let digits = host.strip_prefix("node")?.split(':').next()?;
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Simulated ApplicationMasters.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppPhase {
    /// Not yet submitted.
    Waiting,
    /// Submitted, waiting for `Persisted`.
    Submitting,
    /// In the RM, AM not registered yet (or restarting).
    Accepted,
    Running,
    /// All stages done; unregistering.
    Finishing,
    Finished,
    Failed,
    Rejected,
}

/// The task a container runs: `u32::MAX` marks "none" (AM, released, or already accounted).
#[derive(Debug, Clone, Copy)]
struct TaskRef {
    stage: u32,
    task: u32,
}

const NO_TASK: TaskRef = TaskRef { stage: u32::MAX, task: u32::MAX };

struct AppSim {
    spec: AppSpec,
    /// Workload order (trace line order after sorting, or generator order).
    seq: usize,
    stream: Option<u32>,
    phase: AppPhase,
    id: Option<ApplicationId>,
    queue: Option<usize>,
    submitted_at: Millis,
    am_allocated: bool,
    attempt: Option<AttemptId>,
    /// Bumped whenever the AM process changes (new attempt, death): its pending events die.
    life: u32,
    am_container: Option<ContainerId>,
    am_node: Option<u32>,
    am_alive: bool,
    registered: bool,
    response_id: u64,
    stage: u32,
    stage_done: u32,
    /// Next never-started task of the stage, and when it was first asked for.
    fresh_next: u32,
    fresh_asked_at: Option<Millis>,
    /// Tasks to run again (their container was lost, preempted or killed), with ask time.
    requeued: VecDeque<(u32, Option<Millis>)>,
    running: u32,
    ask_dirty: bool,
    /// Priorities of finished stages whose asks must be cancelled.
    cancel: Vec<i32>,
    releases: Vec<ContainerId>,
    /// Container sequence number → task it runs.
    tasks_by_seq: Vec<TaskRef>,
}

impl AppSim {
    fn new(spec: AppSpec, seq: usize, stream: Option<u32>) -> Self {
        Self {
            spec,
            seq,
            stream,
            phase: AppPhase::Waiting,
            id: None,
            queue: None,
            submitted_at: 0,
            am_allocated: false,
            attempt: None,
            life: 0,
            am_container: None,
            am_node: None,
            am_alive: false,
            registered: false,
            response_id: 0,
            stage: 0,
            stage_done: 0,
            fresh_next: 0,
            fresh_asked_at: None,
            requeued: VecDeque::new(),
            running: 0,
            ask_dirty: false,
            cancel: Vec::new(),
            releases: Vec::new(),
            tasks_by_seq: Vec::new(),
        }
    }

    fn stage_count(&self) -> u32 {
        self.spec.stages.get(self.stage as usize).map_or(0, |s| s.count)
    }

    fn pending(&self) -> u32 {
        self.stage_count().saturating_sub(self.fresh_next) + self.requeued.len() as u32
    }

    /// The next task to run in a new container, with when it was asked for.
    fn pop_task(&mut self) -> Option<(u32, Option<Millis>)> {
        if let Some(t) = self.requeued.pop_front() {
            return Some(t);
        }
        if self.fresh_next < self.stage_count() {
            self.fresh_next += 1;
            return Some((self.fresh_next - 1, self.fresh_asked_at));
        }
        None
    }

    fn set_task(&mut self, seq: u64, task: TaskRef) {
        let i = seq as usize;
        if self.tasks_by_seq.len() <= i {
            self.tasks_by_seq.resize(i + 1, NO_TASK);
        }
        self.tasks_by_seq[i] = task;
    }

    fn take_task(&mut self, seq: u64) -> Option<TaskRef> {
        let slot = self.tasks_by_seq.get_mut(seq as usize)?;
        let task = std::mem::replace(slot, NO_TASK);
        (task.stage != u32::MAX).then_some(task)
    }

    fn is_live(&self) -> bool {
        matches!(self.phase, AppPhase::Accepted | AppPhase::Running | AppPhase::Finishing)
    }
}

// ---------------------------------------------------------------------------------------------
// Per-queue bookkeeping.

/// Everything measured about one queue (by full path).
pub struct QueueStats {
    pub path: String,
    pub leaf: bool,
    pub am_wait_ms: Histogram,
    pub container_wait_ms: Histogram,
    pub turnaround_ms: Histogram,
    pub submitted: u64,
    pub rejected: u64,
    pub finished: u64,
    pub failed: u64,
    pub preempt_marked: u64,
    pub preempt_killed: u64,
    /// Task containers lost with their node (ABORTED).
    pub lost: u64,
    /// Per sample (index-aligned with [`Sample`]s).
    pub used_share: Vec<f64>,
    pub guarantee_share: Vec<f64>,
    pub max_share: Vec<f64>,
    pub used: Vec<Resource>,
    pub pending: Vec<Resource>,
}

impl QueueStats {
    fn new(path: String, leaf: bool, samples_so_far: usize) -> Self {
        Self {
            path,
            leaf,
            am_wait_ms: Histogram::default(),
            container_wait_ms: Histogram::default(),
            turnaround_ms: Histogram::default(),
            submitted: 0,
            rejected: 0,
            finished: 0,
            failed: 0,
            preempt_marked: 0,
            preempt_killed: 0,
            lost: 0,
            used_share: vec![0.0; samples_so_far],
            guarantee_share: vec![0.0; samples_so_far],
            max_share: vec![0.0; samples_so_far],
            used: vec![Resource::ZERO; samples_so_far],
            pending: vec![Resource::ZERO; samples_so_far],
        }
    }
}

/// The cluster at one point of virtual time.
#[derive(Debug, Clone)]
pub struct Sample {
    pub t: Millis,
    pub capacity: Resource,
    pub used: Resource,
    pub live_containers: u64,
    pub pending_containers: u64,
    pub running_apps: u64,
    pub allocations: u64,
    /// Wall-clock seconds since the start (not part of anything deterministic).
    pub wall_s: f64,
}

/// Counts of what happened, for the report (core errors are reported on their own).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub apps_submitted: u64,
    pub apps_rejected: u64,
    pub apps_finished: u64,
    pub apps_failed: u64,
    pub attempts_restarted: u64,
    pub tasks_completed: u64,
    pub tasks_rerun: u64,
    pub containers_released: u64,
    pub preempt_marked: u64,
    pub preempt_killed: u64,
    pub node_failures: u64,
    pub nodes_lost: u64,
    #[serde(skip)]
    pub core_errors: u64,
    #[serde(skip)]
    pub core_error_examples: Vec<String>,
}

/// What a finished run hands to the report.
pub struct RunResult {
    pub scenario: Scenario,
    pub scheduler: String,
    pub calculator: ResourceCalculator,
    pub cluster_nodes: u32,
    pub cluster_capacity: Resource,
    pub timings: CoreTimings,
    pub core_wait_ms: Histogram,
    pub queues: Vec<QueueStats>,
    pub samples: Vec<Sample>,
    pub totals: Totals,
    pub allocations: u64,
    pub steady_allocations: u64,
    pub events_handled: u64,
    pub wall: Duration,
    /// CPU time of the simulating thread, when the platform tells.
    pub cpu: Option<Duration>,
    pub steady_wall: Duration,
    pub busy: Duration,
    pub live_containers: u64,
    pub running_apps: u64,
    pub rss_end: Option<u64>,
    pub rss_peak: Option<u64>,
    pub decision_lines: u64,
    pub virtual_ms: Millis,
    pub steady_virtual_ms: Millis,
}

// ---------------------------------------------------------------------------------------------
// The engine.

pub struct Engine {
    scenario: Scenario,
    core: Core,
    fx: SimFx,
    queue: EventQueue<Ev>,
    now: Millis,
    end: Millis,
    nodes: Vec<SimNode>,
    apps: Vec<AppSim>,
    /// ApplicationId sequence → app index.
    app_by_seq: Vec<u32>,
    generator: Option<Generator>,
    failure_rng: Rng,
    timings: CoreTimings,
    queue_index: HashMap<String, usize>,
    queues: Vec<QueueStats>,
    samples: Vec<Sample>,
    log: Option<DecisionLog>,
    trace_out: Option<TraceWriter>,
    totals: Totals,
    /// Failed nodes the core has not declared lost yet.
    awaiting_loss: BTreeSet<u32>,
    /// Apps whose AM died; checked on ticks for a final state.
    orphaned: BTreeSet<u32>,
    live_containers: u64,
    running_apps: u64,
    events_handled: u64,
    busy_ns: u128,
    wall_start: Instant,
    cpu_start: Option<u64>,
    steady_wall_start: Instant,
    steady_allocations_start: u64,
    steady_virtual_start: Millis,
    progress: bool,
    last_progress: Instant,
    calculator: ResourceCalculator,
    /// Sorted containers per node for the log of a loss, taken before the tick that loses it.
    loss_snapshots: BTreeMap<u32, Vec<ContainerId>>,
}

impl Engine {
    pub fn new(input: SimInput, outputs: Outputs) -> Result<Self, SimError> {
        let SimInput { scenario, queues, workload } = input;
        let key = |key_id: u32, byte: &str| MasterKey { key_id, secret_hex: byte.repeat(32) };
        let calculator = queues.resource_calculator;
        let cfg = CoreConfig {
            cluster_ts: CLUSTER_TS,
            epoch: 1,
            container_token_key: key(1, "5a"),
            am_token_key: key(2, "a5"),
            rm_addresses: vec!["http://weft-sim-rm:8088".into()],
            settings: scenario.rm.core_settings(),
            queues,
        };
        let core = Core::new(cfg)?;
        let nodes = (0..scenario.cluster.nodes)
            .map(|i| {
                let name = node_name(i);
                SimNode {
                    // Parsed rather than built, so this does not depend on how NodeId stores it.
                    id: format!("{name}:{NM_PORT}").parse::<NodeId>().expect("node names are valid node ids"),
                    http_address: format!("http://{name}:{NM_PORT}"),
                    rack: format!("/rack{}", i % scenario.cluster.racks + 1),
                    up: false,
                    life: 0,
                    running: Vec::new(),
                    completed: Vec::new(),
                    oob_pending: false,
                    random_down: false,
                }
            })
            .collect();
        let (apps, generator) = match workload {
            Workload::Trace(specs) => {
                (specs.into_iter().enumerate().map(|(i, s)| AppSim::new(s, i, None)).collect(), None)
            }
            Workload::Generator(g) => (Vec::new(), Some(g)),
        };
        reset_peak_rss();
        let now = Instant::now();
        let mut engine = Self {
            failure_rng: Rng::derive(scenario.seed, "failures"),
            end: scenario.duration.0,
            scenario,
            core,
            fx: SimFx::default(),
            queue: EventQueue::new(),
            now: 0,
            nodes,
            apps,
            app_by_seq: Vec::new(),
            generator,
            timings: CoreTimings::default(),
            queue_index: HashMap::new(),
            queues: Vec::new(),
            samples: Vec::new(),
            log: outputs.decisions.map(DecisionLog::new),
            trace_out: outputs.trace.map(TraceWriter::new),
            totals: Totals::default(),
            awaiting_loss: BTreeSet::new(),
            orphaned: BTreeSet::new(),
            live_containers: 0,
            running_apps: 0,
            events_handled: 0,
            busy_ns: 0,
            wall_start: now,
            cpu_start: thread_cpu_ns(),
            steady_wall_start: now,
            steady_allocations_start: 0,
            steady_virtual_start: 0,
            progress: outputs.progress,
            last_progress: now,
            calculator,
            loss_snapshots: BTreeMap::new(),
        };
        engine.schedule_start();
        Ok(engine)
    }

    fn at(&mut self, time: Millis, ev: Ev) {
        self.queue.push(time, ev);
    }

    fn schedule_start(&mut self) {
        let mut phases = Rng::derive(self.scenario.seed, "heartbeat-phases");
        let interval = self.scenario.rm.heartbeat_interval.0;
        for i in 0..self.nodes.len() as u32 {
            self.register_node(i);
            let first = 1 + phases.below(interval);
            let life = self.nodes[i as usize].life;
            self.at(first, Ev::NodeHeartbeat { node: i, life });
        }
        for i in 0..self.apps.len() as u32 {
            let t = self.apps[i as usize].spec.submit_ms;
            self.at(t, Ev::TraceSubmit { app: i });
        }
        if let Some(g) = &mut self.generator {
            for (t, stream) in g.initial_arrivals() {
                self.at(t, Ev::Arrival { stream });
            }
        }
        let failures = self.scenario.failures.clone();
        if failures.node_mtbf.is_some() {
            for i in 0..self.nodes.len() as u32 {
                self.schedule_random_failure(i);
            }
        }
        for f in &failures.scheduled {
            let mut chosen: Vec<u32> = f.nodes.clone();
            if let Some(count) = f.count {
                // A partial Fisher–Yates shuffle: `count` distinct random nodes.
                let mut all: Vec<u32> = (0..self.nodes.len() as u32).collect();
                let count = (count as usize).min(all.len());
                for k in 0..count {
                    let j = k + self.failure_rng.below((all.len() - k) as u64) as usize;
                    all.swap(k, j);
                }
                chosen = all[..count].to_vec();
                chosen.sort_unstable();
            }
            for node in chosen {
                self.at(f.at.0, Ev::NodeFail { node, down_for: Some(f.down_for.map_or(u64::MAX, |d| d.0)) });
            }
        }
        self.at(self.scenario.rm.tick_interval.0, Ev::Tick);
        self.at(0, Ev::Sample);
        if self.scenario.warmup.0 > 0 {
            self.at(self.scenario.warmup.0, Ev::WarmupEnd);
        } else {
            self.timings.steady = true;
        }
    }

    /// Runs to the scenario's end and hands back everything measured.
    pub fn run(mut self) -> Result<RunResult, SimError> {
        let mut since_progress_check = 0u32;
        while let Some((time, ev)) = self.queue.pop() {
            if time > self.end {
                break;
            }
            self.now = time;
            self.dispatch(ev);
            since_progress_check += 1;
            if self.progress && since_progress_check >= 4096 {
                since_progress_check = 0;
                self.maybe_print_progress();
            }
        }
        self.now = self.end;
        self.sample();
        self.finish()
    }

    fn maybe_print_progress(&mut self) {
        if self.last_progress.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.last_progress = Instant::now();
        let wall = self.wall_start.elapsed().as_secs_f64();
        let allocations = self.core.counters().containers_allocated;
        eprintln!(
            "  [{:>7.1}s wall] virtual {} of {}: {} allocations ({:.0}/s), {} containers live, {} events",
            wall,
            crate::scenario::format_duration(self.now),
            crate::scenario::format_duration(self.end),
            allocations,
            allocations as f64 / wall.max(1e-9),
            self.live_containers,
            self.events_handled,
        );
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::NodeHeartbeat { node, life } => {
                if self.nodes[node as usize].life == life && self.nodes[node as usize].up {
                    self.heartbeat(node);
                    let next = self.now + self.scenario.rm.heartbeat_interval.0;
                    self.at(next, Ev::NodeHeartbeat { node, life });
                }
            }
            Ev::NodeOobHeartbeat { node, life } => {
                let n = &self.nodes[node as usize];
                if n.life == life && n.up && n.oob_pending {
                    self.heartbeat(node);
                }
            }
            Ev::ContainerDone { node, life, container } => self.container_done(node, life, container),
            Ev::NodeFail { node, down_for } => self.fail_node(node, down_for),
            Ev::NodeRecover { node } => self.recover_node(node),
            Ev::NodeResync { node } => {
                if self.nodes[node as usize].up {
                    self.register_node(node);
                    let life = self.nodes[node as usize].life;
                    let t = self.now + self.scenario.rm.heartbeat_interval.0;
                    self.at(t, Ev::NodeHeartbeat { node, life });
                }
            }
            Ev::Arrival { stream } => self.arrival(stream),
            Ev::TraceSubmit { app } => self.submit(app),
            Ev::AmLaunched { app, life, container } => {
                if self.apps[app as usize].life == life {
                    self.step(Kind::AmLaunched, Event::AmLaunched { container });
                    let t = self.now + self.scenario.am.register_delay.0;
                    self.at(t, Ev::AmRegister { app, life });
                }
            }
            Ev::AmLaunchFailed { app, life, container } => {
                if self.apps[app as usize].life == life {
                    let diagnostics = "the simulated node is down".to_owned();
                    self.step(Kind::AmLaunchFailed, Event::AmLaunchFailed { container, diagnostics });
                    let a = &mut self.apps[app as usize];
                    if a.life == life {
                        a.life += 1;
                        a.am_alive = false;
                        self.orphaned.insert(app);
                    }
                }
            }
            Ev::AmRegister { app, life } => self.am_register(app, life),
            Ev::AmAllocate { app, life } => self.am_allocate(app, life),
            Ev::AmFinish { app, life } => self.am_finish(app, life),
            Ev::Tick => {
                self.tick();
                let next = self.now + self.scenario.rm.tick_interval.0;
                self.at(next, Ev::Tick);
            }
            Ev::Sample => {
                self.sample();
                let next = self.now + self.scenario.report.sample_interval.0;
                self.at(next, Ev::Sample);
            }
            Ev::WarmupEnd => {
                self.timings.steady = true;
                // Steady-state lag asks whether the RM keeps up with this load, so it starts
                // without the backlog of the ramp (registration storm, submission bursts).
                self.timings.shadow = Default::default();
                self.steady_wall_start = Instant::now();
                self.steady_allocations_start = self.core.counters().containers_allocated;
                self.steady_virtual_start = self.now;
            }
        }
    }

    /// One `Core::handle` call, timed, followed by acting on its effects.
    fn step(&mut self, kind: Kind, event: Event) {
        let started = Instant::now();
        self.core.handle(event, self.now, &mut self.fx);
        let ns = started.elapsed().as_nanos() as u64;
        self.timings.record(kind, self.now, ns);
        self.busy_ns += u128::from(ns);
        self.events_handled += 1;
        self.after_step();
    }

    fn after_step(&mut self) {
        self.live_containers += self.fx.allocated;
        self.live_containers -= self.fx.completed.min(self.live_containers);
        self.fx.allocated = 0;
        self.fx.completed = 0;
        if self.fx.marked > 0 {
            self.fx.marked = 0;
            self.record_marks();
        }
        self.totals.preempt_killed += std::mem::take(&mut self.fx.preempted);
        self.totals.nodes_lost += std::mem::take(&mut self.fx.nodes_lost);
        // Replies first (a submit is accepted before its AM is allocated), then stops, then AM
        // launches. The core emits effects in a deterministic order except where it walks a hash
        // map (expiry of stale containers): sorting by id keeps the log and the AMs' reactions
        // independent of hashing.
        if !self.fx.replies.is_empty() {
            let mut replies = std::mem::take(&mut self.fx.replies);
            for (req, reply) in replies.drain(..) {
                self.on_reply(req, reply);
            }
            self.fx.replies = replies;
        }
        if !self.fx.stops.is_empty() {
            let mut stops = std::mem::take(&mut self.fx.stops);
            stops.sort_by_key(|s| s.container_id);
            for stop in stops.drain(..) {
                self.on_stop(stop);
            }
            self.fx.stops = stops;
        }
        if !self.fx.launches.is_empty() {
            let mut launches = std::mem::take(&mut self.fx.launches);
            launches.sort_by_key(|l| l.container_id);
            for launch in launches.drain(..) {
                self.on_am_allocated(launch);
            }
            self.fx.launches = launches;
        }
    }

    fn core_error(&mut self, context: &str, error: &CoreError) {
        self.totals.core_errors += 1;
        if self.totals.core_error_examples.len() < 10 {
            self.totals.core_error_examples.push(format!("t={} {context}: {error}", self.now));
        }
    }

    // -----------------------------------------------------------------------------------------
    // NodeManagers.

    fn register_node(&mut self, node: u32) {
        let n = &mut self.nodes[node as usize];
        n.up = true;
        n.life += 1;
        n.running.clear();
        n.completed.clear();
        let request = RegisterNodeRequest {
            node_id: n.id.clone(),
            http_address: n.http_address.clone(),
            total: self.scenario.cluster.node.into(),
            containers: Vec::new(),
            version: "weft-sim".into(),
            rack: Some(n.rack.clone()),
        };
        let req = req_id(node, n.life);
        self.step(Kind::NodeRegister, Event::NodeRegister { req, request });
    }

    fn heartbeat(&mut self, node: u32) {
        let n = &mut self.nodes[node as usize];
        n.oob_pending = false;
        let mut containers = Vec::with_capacity(n.running.len() + n.completed.len());
        for c in &n.running {
            containers.push(ContainerReport {
                container_id: c.id,
                state: NmContainerState::Running,
                exit_status: exit_status::INVALID,
                diagnostics: String::new(),
                resource: c.resource,
                pid: None,
            });
        }
        for (id, resource, exit) in &n.completed {
            containers.push(ContainerReport {
                container_id: *id,
                state: NmContainerState::Complete,
                exit_status: *exit,
                diagnostics: String::new(),
                resource: *resource,
                pid: None,
            });
        }
        // Simulated nodes keep no directories.
        let request = NodeHeartbeatRequest {
            node_id: n.id.clone(),
            containers,
            health: NodeHealth::default(),
            applications_with_dirs: Vec::new(),
        };
        let req = req_id(node, n.life);
        self.step(Kind::NodeHeartbeat, Event::NodeHeartbeat { req, request });
    }

    fn container_done(&mut self, node: u32, life: u32, container: ContainerId) {
        let oob = self.scenario.nm.out_of_band_heartbeat;
        let n = &mut self.nodes[node as usize];
        if n.life != life {
            return;
        }
        let Some(pos) = n.running.iter().position(|c| c.id == container) else { return };
        let c = n.running.swap_remove(pos);
        n.completed.push((c.id, c.resource, exit_status::SUCCESS));
        if oob && !n.oob_pending {
            n.oob_pending = true;
            self.at(self.now, Ev::NodeOobHeartbeat { node, life });
        }
    }

    /// The node's next random failure, an exponential time (mean `node-mtbf`) from now.
    fn schedule_random_failure(&mut self, node: u32) {
        if let Some(mtbf) = self.scenario.failures.node_mtbf {
            let t = self.now + (self.failure_rng.exponential(mtbf.0 as f64).round() as u64).max(1);
            self.at(t, Ev::NodeFail { node, down_for: None });
        }
    }

    /// `down_for`: None for a random failure (drawn from `failures.down-for`), u64::MAX for good.
    fn fail_node(&mut self, node: u32, down_for: Option<u64>) {
        let random = down_for.is_none();
        if !self.nodes[node as usize].up {
            if random {
                // Already down for another reason: the node's failure process goes on.
                self.schedule_random_failure(node);
            }
            return;
        }
        let n = &mut self.nodes[node as usize];
        n.up = false;
        n.random_down = random;
        n.life += 1;
        n.completed.clear();
        let lost: Vec<RunningContainer> = std::mem::take(&mut n.running);
        let id = n.id.clone();
        for c in lost {
            // An AM on the node dies with it: its pending calls are void.
            if let Some(a) = self.app_of(c.id)
                && self.apps[a as usize].am_container == Some(c.id)
            {
                let app = &mut self.apps[a as usize];
                app.life += 1;
                app.am_alive = false;
                app.registered = false;
                self.orphaned.insert(a);
            }
        }
        self.totals.node_failures += 1;
        self.awaiting_loss.insert(node);
        if let Some(log) = &mut self.log {
            log.node(self.now, "node_failed", &id);
        }
        let down_for = match down_for {
            Some(d) => d,
            None => (self.scenario.failures.down_for.sample(&mut self.failure_rng).round() as u64).max(1),
        };
        if down_for != u64::MAX {
            self.at(self.now.saturating_add(down_for), Ev::NodeRecover { node });
        }
    }

    fn recover_node(&mut self, node: u32) {
        if self.nodes[node as usize].up {
            return;
        }
        self.awaiting_loss.remove(&node);
        self.loss_snapshots.remove(&node);
        self.register_node(node);
        let id = self.nodes[node as usize].id.clone();
        if let Some(log) = &mut self.log {
            log.node(self.now, "node_recovered", &id);
        }
        let life = self.nodes[node as usize].life;
        let interval = self.scenario.rm.heartbeat_interval.0;
        self.at(self.now + interval, Ev::NodeHeartbeat { node, life });
        if std::mem::take(&mut self.nodes[node as usize].random_down) {
            self.schedule_random_failure(node);
        }
    }

    fn on_node_reply(&mut self, node: u32, life: u32, reply: Reply) {
        match reply {
            Reply::NodeRegister(Ok(_)) => {}
            Reply::NodeRegister(Err(e)) => self.core_error("node register", &e),
            Reply::NodeHeartbeat(Ok(resp)) => {
                let n = &mut self.nodes[node as usize];
                if n.life != life {
                    return;
                }
                for id in &resp.acked_completed {
                    if let Some(pos) = n.completed.iter().position(|(c, _, _)| c == id) {
                        let (c, _, exit) = n.completed.swap_remove(pos);
                        if let Some(log) = &mut self.log {
                            log.complete(self.now, c, exit);
                        }
                    }
                }
                for id in &resp.containers_to_cleanup {
                    if let Some(pos) = n.running.iter().position(|c| c.id == *id) {
                        n.running.swap_remove(pos);
                    }
                }
                if resp.action != weft_common::protocol::NodeAction::Normal {
                    // The RM forgot this node (it declared it lost): register again, empty.
                    n.life += 1;
                    self.at(self.now, Ev::NodeResync { node });
                }
            }
            Reply::NodeHeartbeat(Err(e)) => self.core_error("node heartbeat", &e),
            _ => {}
        }
    }

    // -----------------------------------------------------------------------------------------
    // Submissions.

    fn arrival(&mut self, stream: u32) {
        let Some(g) = &mut self.generator else { return };
        if !g.may_submit(stream, self.now) {
            return;
        }
        let spec = g.draw(stream, self.now);
        if let Some(next) = g.next_arrival(stream, self.now) {
            self.at(next, Ev::Arrival { stream });
        }
        let index = self.apps.len();
        self.apps.push(AppSim::new(spec, index, Some(stream)));
        self.submit(index as u32);
    }

    fn submit(&mut self, app: u32) {
        let a = &mut self.apps[app as usize];
        a.phase = AppPhase::Submitting;
        a.submitted_at = self.now;
        a.spec.submit_ms = self.now;
        if let Some(out) = &mut self.trace_out {
            let _ = out.write(&a.spec);
        }
        self.totals.apps_submitted += 1;
        self.step(Kind::NewApplication, Event::NewApplication { req: req_id(app, 0) });
        let a = &self.apps[app as usize];
        let Some(id) = a.id else {
            self.reject(app, "no application id was issued".into());
            return;
        };
        let context = ApplicationSubmissionContext {
            application_id: Some(id),
            application_name: a.spec.name.clone(),
            queue: a.spec.queue.clone(),
            priority: Some(a.spec.priority),
            am_container_spec: AmContainerSpec {
                commands: Some(Commands { command: vec!["simulated-am".into()] }),
                ..Default::default()
            },
            max_app_attempts: None,
            resource: Some(a.spec.am),
            application_type: Some("SIM".into()),
            application_tags: None,
            unmanaged_am: false,
            keep_containers_across_application_attempts: false,
        };
        let user = a.spec.user.clone();
        self.step(Kind::Submit, Event::Submit { req: req_id(app, 0), user, context: Box::new(context) });
        if self.apps[app as usize].phase == AppPhase::Submitting {
            self.step(Kind::Persisted, Event::Persisted);
        }
    }

    fn on_submit_reply(&mut self, app: u32, reply: Reply) {
        match reply {
            Reply::NewApplication(Ok(n)) => {
                let seq = n.application_id.seq as usize;
                if self.app_by_seq.len() <= seq {
                    self.app_by_seq.resize(seq + 1, u32::MAX);
                }
                self.app_by_seq[seq] = app;
                self.apps[app as usize].id = Some(n.application_id);
            }
            Reply::NewApplication(Err(e)) => self.core_error("new application", &e),
            Reply::Submit(Ok(id)) => {
                let queue_path = self
                    .core
                    .app(id)
                    .and_then(|a| a.queue_index())
                    .map(|q| self.core.hierarchy().tree().queues[q].path.clone())
                    .unwrap_or_else(|| "?".into());
                let q = self.queue_slot(&queue_path, true);
                self.queues[q].submitted += 1;
                let a = &mut self.apps[app as usize];
                a.queue = Some(q);
                if a.phase == AppPhase::Submitting {
                    a.phase = AppPhase::Accepted;
                }
                let user = a.spec.user.clone();
                if let Some(log) = &mut self.log {
                    log.app_accepted(self.now, id, &queue_path, &user);
                }
            }
            Reply::Submit(Err(e)) => self.reject(app, e.to_string()),
            _ => {}
        }
    }

    fn reject(&mut self, app: u32, reason: String) {
        self.totals.apps_rejected += 1;
        let a = &mut self.apps[app as usize];
        a.phase = AppPhase::Rejected;
        let asked = a.spec.queue.clone().unwrap_or_else(|| "(placement rules)".into());
        let (seq, user) = (a.seq, a.spec.user.clone());
        let q = self.queue_slot_for_request(&asked);
        self.queues[q].rejected += 1;
        if let Some(log) = &mut self.log {
            log.app_rejected(self.now, seq, self.apps[app as usize].spec.queue.as_deref(), &user, &reason);
        }
        self.replace(app, true);
    }

    /// A closed-loop stream submits a replacement for an app that ended.
    fn replace(&mut self, app: u32, refused: bool) {
        let Some(stream) = self.apps[app as usize].stream else { return };
        if let Some(g) = &self.generator
            && let Some(t) = g.replacement(stream, self.now, refused)
        {
            self.at(t, Ev::Arrival { stream });
        }
    }

    // -----------------------------------------------------------------------------------------
    // ApplicationMasters.

    fn app_of(&self, container: ContainerId) -> Option<u32> {
        self.app_by_seq.get(container.app().seq as usize).copied().filter(|a| *a != u32::MAX)
    }

    fn on_am_allocated(&mut self, launch: AmLaunch) {
        let container = launch.container_id;
        let Some(app) = self.app_of(container) else { return };
        let node = node_index(&launch.node_http_address);
        let resource = self.core.container(&container).map_or(self.apps[app as usize].spec.am, |c| c.resource());
        let now = self.now;
        let a = &mut self.apps[app as usize];
        if a.attempt.is_some_and(|t| t != container.attempt) {
            // A new attempt: the old one's containers were stopped with it, so everything it
            // ran must run again.
            self.totals.attempts_restarted += 1;
            let mut rerun: Vec<u32> = Vec::new();
            for slot in a.tasks_by_seq.iter_mut() {
                if slot.stage == a.stage {
                    rerun.push(slot.task);
                }
                *slot = NO_TASK;
            }
            rerun.sort_unstable();
            self.totals.tasks_rerun += rerun.len() as u64;
            a.requeued.extend(rerun.into_iter().map(|t| (t, None)));
            a.running = 0;
            a.releases.clear();
            a.ask_dirty = true;
        }
        a.attempt = Some(container.attempt);
        a.am_container = Some(container);
        a.am_node = node;
        a.life += 1;
        a.am_alive = true;
        a.registered = false;
        a.response_id = 0;
        let life = a.life;
        self.orphaned.remove(&app);
        if !a.am_allocated {
            a.am_allocated = true;
            let wait = now.saturating_sub(a.submitted_at);
            if let Some(q) = a.queue {
                self.queues[q].am_wait_ms.record(wait);
            }
        }
        if let Some(log) = &mut self.log {
            let node_id = self.nodes.get(node.unwrap_or(u32::MAX) as usize).map(|n| n.id.clone());
            let queue = self.apps[app as usize].queue.map_or("?", |q| self.queues[q].path.as_str());
            if let Some(node_id) = node_id {
                log.alloc(now, container, &node_id, resource, true, queue);
            }
        }
        let launch_at = now + self.scenario.am.launch_delay.0;
        match node.and_then(|n| self.nodes.get_mut(n as usize)) {
            Some(n) if n.up => {
                n.running.push(RunningContainer { id: container, resource });
                self.at(launch_at, Ev::AmLaunched { app, life, container });
            }
            _ => self.at(launch_at, Ev::AmLaunchFailed { app, life, container }),
        }
    }

    fn on_stop(&mut self, stop: ContainerStop) {
        let c = stop.container_id;
        if let Some(node) = node_index(&stop.node_id.0)
            && let Some(n) = self.nodes.get_mut(node as usize)
            && let Some(pos) = n.running.iter().position(|r| r.id == c)
        {
            n.running.swap_remove(pos);
        }
        let app = self.app_of(c);
        let preempted = stop.exit_status == exit_status::PREEMPTED;
        if preempted && let Some(q) = app.and_then(|a| self.apps[a as usize].queue) {
            self.queues[q].preempt_killed += 1;
        }
        if let Some(log) = &mut self.log {
            if preempted {
                log.preempt_kill(self.now, c);
            } else {
                log.complete(self.now, c, stop.exit_status);
            }
        }
        if let Some(a) = app
            && self.apps[a as usize].am_container == Some(c)
        {
            let app = &mut self.apps[a as usize];
            app.life += 1;
            app.am_alive = false;
            app.registered = false;
            if app.is_live() {
                self.orphaned.insert(a);
            }
        }
    }

    fn am_register(&mut self, app: u32, life: u32) {
        let a = &self.apps[app as usize];
        if a.life != life || !a.am_alive {
            return;
        }
        let Some(attempt) = a.attempt else { return };
        let request = RegisterAmRequest { host: "sim-am".into(), rpc_port: 0, tracking_url: String::new() };
        self.step(Kind::AmRegister, Event::AmRegister { req: req_id(app, life), attempt, request });
    }

    fn am_allocate(&mut self, app: u32, life: u32) {
        let now = self.now;
        let long_poll = self.scenario.am.long_poll.0;
        let a = &mut self.apps[app as usize];
        if a.life != life || !a.registered || a.phase != AppPhase::Running {
            return;
        }
        let Some(attempt) = a.attempt else { return };
        let mut asks = Vec::new();
        for priority in a.cancel.drain(..) {
            asks.push(ResourceRequest {
                priority,
                capability: Resource::ZERO,
                num_containers: 0,
                resource_name: weft_common::protocol::ANY.into(),
                relax_locality: true,
                gang: false,
            });
        }
        if a.ask_dirty && (a.stage as usize) < a.spec.stages.len() {
            a.ask_dirty = false;
            let stage = &a.spec.stages[a.stage as usize];
            asks.push(ResourceRequest {
                priority: a.stage as i32 + 1,
                capability: stage.resource,
                num_containers: a.pending(),
                resource_name: weft_common::protocol::ANY.into(),
                relax_locality: true,
                gang: false,
            });
            if a.fresh_asked_at.is_none() {
                a.fresh_asked_at = Some(now);
            }
            for (_, asked) in a.requeued.iter_mut() {
                asked.get_or_insert(now);
            }
        }
        let request = AllocateRequest {
            response_id: a.response_id,
            asks,
            releases: std::mem::take(&mut a.releases),
            progress: 0.0,
            wait_ms: long_poll,
        };
        self.step(Kind::Allocate, Event::Allocate { req: req_id(app, life), attempt, request });
        if long_poll == 0 {
            let a = &self.apps[app as usize];
            if a.life == life && a.phase == AppPhase::Running {
                let t = now + self.scenario.am.heartbeat_interval.0;
                self.at(t, Ev::AmAllocate { app, life });
            }
        }
    }

    fn am_finish(&mut self, app: u32, life: u32) {
        let a = &self.apps[app as usize];
        if a.life != life || !a.registered {
            return;
        }
        let Some(attempt) = a.attempt else { return };
        let request = FinishAmRequest {
            final_status: FinalStatus::Succeeded,
            diagnostics: String::new(),
            tracking_url: String::new(),
        };
        self.step(Kind::AmFinish, Event::AmFinish { req: req_id(app, life), attempt, request });
    }

    fn on_am_reply(&mut self, app: u32, life: u32, reply: Reply) {
        if self.apps[app as usize].life != life {
            return; // a reply to an AM incarnation that is gone
        }
        match reply {
            Reply::AmRegister(Ok(_)) => {
                let a = &mut self.apps[app as usize];
                a.registered = true;
                if a.phase == AppPhase::Accepted {
                    a.phase = AppPhase::Running;
                    self.running_apps += 1;
                }
                // A new AM (first or restarted attempt) starts with no asks in the RM.
                a.cancel.clear();
                if a.pending() > 0 {
                    a.ask_dirty = true;
                }
                self.at(self.now, Ev::AmAllocate { app, life });
            }
            Reply::AmRegister(Err(e)) => self.core_error("AM register", &e),
            Reply::Allocate(Ok(resp)) => self.on_allocate_response(app, life, resp),
            Reply::Allocate(Err(e)) => {
                self.core_error("allocate", &e);
                // Keep the AM alive in long-poll mode: try again next interval.
                if self.scenario.am.long_poll.0 > 0 {
                    let t = self.now + self.scenario.am.heartbeat_interval.0;
                    self.at(t, Ev::AmAllocate { app, life });
                }
            }
            Reply::AmFinish(Ok(r)) if r.is_unregistered => self.app_finished(app, true),
            Reply::AmFinish(Ok(_)) => {}
            Reply::AmFinish(Err(e)) => self.core_error("AM finish", &e),
            _ => {}
        }
    }

    fn on_allocate_response(&mut self, app: u32, life: u32, resp: weft_common::protocol::AllocateResponse) {
        let now = self.now;
        self.apps[app as usize].response_id = resp.response_id;
        let start_delay = self.scenario.am.container_start_delay.0;
        for c in &resp.allocated {
            let allocated_at = self.core.container(&c.id).map_or(now, |rc| rc.allocated_at());
            if let Some(log) = &mut self.log {
                let queue = self.apps[app as usize].queue.map_or("?", |q| self.queues[q].path.as_str());
                log.alloc(allocated_at, c.id, &c.node_id, c.resource, false, queue);
            }
            let a = &mut self.apps[app as usize];
            // A container for an earlier stage's ask (allocated before its cancellation reached
            // the RM) has that stage's size: release it rather than run a task in it.
            let for_this_stage = c.priority == a.stage as i32 + 1;
            let next = if for_this_stage { a.pop_task() } else { None };
            let Some((task, asked_at)) = next else {
                a.releases.push(c.id);
                self.totals.containers_released += 1;
                continue;
            };
            if let Some(q) = a.queue {
                self.queues[q].container_wait_ms.record(allocated_at.saturating_sub(asked_at.unwrap_or(allocated_at)));
            }
            let stage = a.stage;
            a.set_task(c.id.seq, TaskRef { stage, task });
            a.running += 1;
            let duration = a.spec.stages[stage as usize].durations.of(task);
            if let Some(node) = node_index(&c.node_id.0)
                && let Some(n) = self.nodes.get_mut(node as usize)
                && n.up
            {
                n.running.push(RunningContainer { id: c.id, resource: c.resource });
                if let Some(d) = duration {
                    let life = n.life;
                    self.at(now + start_delay + d, Ev::ContainerDone { node, life, container: c.id });
                }
            }
        }
        let mut completed = resp.completed;
        completed.sort_by_key(|s| s.container_id);
        for status in &completed {
            let a = &mut self.apps[app as usize];
            let Some(task) = a.take_task(status.container_id.seq) else { continue };
            a.running = a.running.saturating_sub(1);
            if task.stage != a.stage {
                continue;
            }
            if status.exit_status == exit_status::SUCCESS {
                a.stage_done += 1;
                self.totals.tasks_completed += 1;
            } else {
                a.requeued.push_back((task.task, None));
                a.ask_dirty = true;
                self.totals.tasks_rerun += 1;
                if status.exit_status == exit_status::ABORTED
                    && let Some(q) = a.queue
                {
                    self.queues[q].lost += 1;
                }
            }
        }
        if resp.am_command.is_some() {
            // The RM ended this attempt (or forgot the AM): this AM process is done.
            let a = &mut self.apps[app as usize];
            a.life += 1;
            a.am_alive = false;
            a.registered = false;
            self.orphaned.insert(app);
            return;
        }
        let a = &mut self.apps[app as usize];
        if a.stage_done >= a.stage_count() && a.phase == AppPhase::Running {
            a.cancel.push(a.stage as i32 + 1);
            a.stage += 1;
            a.stage_done = 0;
            a.fresh_next = 0;
            a.fresh_asked_at = None;
            a.requeued.clear();
            if a.stage as usize >= a.spec.stages.len() {
                a.phase = AppPhase::Finishing;
                self.at(now, Ev::AmFinish { app, life });
                return;
            }
            a.ask_dirty = true;
        }
        if self.scenario.am.long_poll.0 > 0 {
            self.at(now, Ev::AmAllocate { app, life });
        }
    }

    /// The app reached a final state: `succeeded` through AmFinish, otherwise found failed.
    fn app_finished(&mut self, app: u32, succeeded: bool) {
        let now = self.now;
        let a = &mut self.apps[app as usize];
        if !a.is_live() {
            return;
        }
        if matches!(a.phase, AppPhase::Running | AppPhase::Finishing) {
            self.running_apps = self.running_apps.saturating_sub(1);
        }
        a.phase = if succeeded { AppPhase::Finished } else { AppPhase::Failed };
        a.life += 1;
        a.registered = false;
        let turnaround = now.saturating_sub(a.submitted_at);
        let (id, am_container, am_node, am_alive, queue) = (a.id, a.am_container, a.am_node, a.am_alive, a.queue);
        if let Some(q) = queue {
            if succeeded {
                self.queues[q].finished += 1;
                self.queues[q].turnaround_ms.record(turnaround);
            } else {
                self.queues[q].failed += 1;
            }
        }
        if succeeded {
            self.totals.apps_finished += 1;
            // The AM process exits once unregistered; its NM reports it.
            if let (Some(c), Some(node), true) = (am_container, am_node, am_alive) {
                self.finish_container_on(node, c);
            }
        } else {
            self.totals.apps_failed += 1;
        }
        self.apps[app as usize].am_alive = false;
        self.orphaned.remove(&app);
        if let (Some(log), Some(id)) = (&mut self.log, id) {
            log.app_finished(now, id, if succeeded { "FINISHED" } else { "FAILED" });
        }
        self.replace(app, false);
    }

    /// A container exits by itself on node `node` (the AM after unregistering).
    fn finish_container_on(&mut self, node: u32, container: ContainerId) {
        let life = self.nodes.get(node as usize).map(|n| n.life);
        if let Some(life) = life {
            self.container_done(node, life, container);
        }
    }

    fn on_reply(&mut self, req: ReqId, reply: Reply) {
        let (index, life) = req_parts(req);
        match reply {
            Reply::NodeRegister(_) | Reply::NodeHeartbeat(_) => self.on_node_reply(index, life, reply),
            Reply::NewApplication(_) | Reply::Submit(_) => self.on_submit_reply(index, reply),
            Reply::AmRegister(_) | Reply::Allocate(_) | Reply::AmFinish(_) => self.on_am_reply(index, life, reply),
            _ => {}
        }
    }

    // -----------------------------------------------------------------------------------------
    // Ticks, preemption marks, losses.

    fn tick(&mut self) {
        let expiry = self.scenario.rm.nm_expiry.0;
        if self.log.is_some() {
            // The core completes a lost node's containers without naming them: note which it
            // holds just before the tick that will declare the node lost.
            for &node in &self.awaiting_loss {
                let id = &self.nodes[node as usize].id;
                if let Some(n) = self.core.node(id)
                    && self.now.saturating_sub(n.last_heartbeat()) > expiry
                {
                    self.loss_snapshots.insert(node, n.containers().iter().copied().collect());
                }
            }
        }
        let lost_before = self.totals.nodes_lost;
        self.step(Kind::Tick, Event::Tick);
        if self.totals.nodes_lost > lost_before {
            let lost: Vec<u32> = self
                .awaiting_loss
                .iter()
                .copied()
                .filter(|n| {
                    self.core
                        .node(&self.nodes[*n as usize].id)
                        .is_some_and(|c| c.state() == weft_common::states::NodeState::Lost)
                })
                .collect();
            for node in lost {
                self.awaiting_loss.remove(&node);
                let snapshot = self.loss_snapshots.remove(&node).unwrap_or_default();
                if let Some(log) = &mut self.log {
                    log.node(self.now, "node_lost", &self.nodes[node as usize].id);
                    for c in snapshot {
                        log.complete(self.now, c, exit_status::ABORTED);
                    }
                }
            }
        }
        if !self.orphaned.is_empty() {
            self.check_orphans();
        }
    }

    /// Apps whose AM died: failed for good once the core says so.
    fn check_orphans(&mut self) {
        let orphans: Vec<u32> = self.orphaned.iter().copied().collect();
        for app in orphans {
            let Some(id) = self.apps[app as usize].id else { continue };
            let finished = self.core.app(id).is_none_or(|a| a.state().is_final());
            if finished {
                let succeeded = self.core.app(id).is_some_and(|a| a.state() == weft_common::states::AppState::Finished);
                self.app_finished(app, succeeded);
                self.orphaned.remove(&app);
            }
        }
    }

    fn record_marks(&mut self) {
        let now = self.now;
        let fresh: Vec<(ContainerId, usize)> = self
            .core
            .preemption_marks()
            .iter()
            .filter(|(_, m)| m.marked_at == now)
            .map(|(c, m)| (*c, m.from_queue))
            .collect();
        for (c, from) in fresh {
            self.totals.preempt_marked += 1;
            let path = self.core.hierarchy().tree().queues.get(from).map(|q| q.path.clone()).unwrap_or_default();
            let q = self.queue_slot(&path, true);
            self.queues[q].preempt_marked += 1;
            if let Some(log) = &mut self.log {
                log.preempt_mark(now, c, &path);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sampling.

    fn queue_slot(&mut self, path: &str, leaf: bool) -> usize {
        if let Some(i) = self.queue_index.get(path) {
            return *i;
        }
        let i = self.queues.len();
        self.queues.push(QueueStats::new(path.to_owned(), leaf, self.samples.len()));
        self.queue_index.insert(path.to_owned(), i);
        i
    }

    /// A rejected app counts against the queue it asked for (or the pseudo-queue of placement).
    fn queue_slot_for_request(&mut self, asked: &str) -> usize {
        let tree = self.core.hierarchy().tree();
        let path = tree.find(asked).map(|q| tree.queues[q].path.clone()).unwrap_or_else(|| asked.to_owned());
        let leaf = tree.find(asked).is_none_or(|q| tree.queues[q].is_leaf);
        self.queue_slot(&path, leaf)
    }

    fn sample(&mut self) {
        let core = &self.core;
        let hierarchy = core.hierarchy();
        let tree = hierarchy.tree();
        let cluster = tree.cluster;
        let mut pending = vec![Resource::ZERO; tree.queues.len()];
        let mut pending_containers = 0u64;
        for app in core.apps().filter(|a| a.has_demand()) {
            let Some(leaf) = app.queue_index() else { continue };
            let mut wanted =
                app.asks().iter().fold(Resource::ZERO, |s, (k, a)| s + k.capability.times(u64::from(a.count)));
            if app.am_ask_since().is_some() {
                wanted += app.am_resource();
            }
            pending_containers += app.pending_containers();
            let mut q = Some(leaf);
            while let Some(i) = q {
                pending[i] += wanted;
                q = tree.queues[i].parent;
            }
        }
        let fair_shares = if tree.queues.iter().any(|q| matches!(q.settings, QueueSettings::Fair(_))) {
            let demand: Vec<Resource> = (0..tree.queues.len())
                .map(|i| (hierarchy.usage(i).used + pending[i]).min_each(tree.queues[i].maximum))
                .collect();
            hierarchy.instantaneous_fair_shares(&demand)
        } else {
            Vec::new()
        };
        let calculator = self.calculator;
        let share = |r: Resource| calculator.share(r, cluster);
        let rows: Vec<(String, bool, Resource, Resource, Resource, Resource)> = tree
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let guarantee = fair_shares.get(i).copied().unwrap_or(q.guaranteed);
                (q.path.clone(), q.is_leaf, hierarchy.usage(i).used, guarantee, q.maximum, pending[i])
            })
            .collect();
        let sample = Sample {
            t: self.now,
            capacity: cluster,
            used: core.cluster_used(),
            live_containers: self.live_containers,
            pending_containers,
            running_apps: self.running_apps,
            allocations: core.counters().containers_allocated,
            wall_s: self.wall_start.elapsed().as_secs_f64(),
        };
        let index = self.samples.len();
        for (path, leaf, used, guarantee, maximum, pending) in rows {
            let slot = self.queue_slot(&path, leaf);
            let q = &mut self.queues[slot];
            q.leaf = leaf;
            q.used_share.push(share(used));
            q.guarantee_share.push(share(guarantee));
            q.max_share.push(share(maximum));
            q.used.push(used);
            q.pending.push(pending);
        }
        self.samples.push(sample);
        // Queues that no longer exist (or only ever saw rejections) keep aligned series.
        for q in &mut self.queues {
            for series in [&mut q.used_share, &mut q.guarantee_share, &mut q.max_share] {
                series.resize(index + 1, 0.0);
            }
            q.used.resize(index + 1, Resource::ZERO);
            q.pending.resize(index + 1, Resource::ZERO);
        }
    }

    fn finish(mut self) -> Result<RunResult, SimError> {
        if let Some(log) = &mut self.log {
            log.finish().map_err(|source| SimError::Write { what: "the decision log", source })?;
        }
        if let Some(out) = &mut self.trace_out {
            out.flush().map_err(|source| SimError::Write { what: "the trace", source })?;
        }
        let wall = self.wall_start.elapsed();
        let cpu =
            self.cpu_start.zip(thread_cpu_ns()).map(|(start, end)| Duration::from_nanos(end.saturating_sub(start)));
        let (rss_end, rss_peak) = rss_bytes().map_or((None, None), |(now, peak)| (Some(now), Some(peak)));
        let allocations = self.core.counters().containers_allocated;
        let running_apps =
            self.core.apps().filter(|a| a.state() == weft_common::states::AppState::Running).count() as u64;
        let scheduler = format!("{:?}", self.core.hierarchy().mode()).to_lowercase();
        let cluster_capacity = self.core.hierarchy().tree().cluster;
        Ok(RunResult {
            scheduler,
            calculator: self.calculator,
            cluster_nodes: self.scenario.cluster.nodes,
            cluster_capacity,
            core_wait_ms: std::mem::take(&mut self.fx.core_wait_ms),
            queues: self.queues,
            samples: self.samples,
            totals: self.totals,
            allocations,
            steady_allocations: allocations - self.steady_allocations_start,
            events_handled: self.events_handled,
            wall,
            cpu,
            steady_wall: self.steady_wall_start.elapsed(),
            busy: Duration::from_nanos(self.busy_ns.min(u128::from(u64::MAX)) as u64),
            live_containers: self.live_containers,
            running_apps,
            rss_end,
            rss_peak,
            decision_lines: self.log.as_ref().map_or(0, DecisionLog::lines),
            virtual_ms: self.end,
            steady_virtual_ms: self.end - self.steady_virtual_start,
            timings: self.timings,
            scenario: self.scenario,
        })
    }
}
