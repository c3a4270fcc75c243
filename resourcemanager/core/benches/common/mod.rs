//! Fixtures shared by the scheduler-core benchmarks: a [`Core`] stepped by hand through its public
//! API (`Core::handle`), with nodes, applications and running containers set up the way the RM
//! server would feed them in, and a queue tree per scheduler mode.
//!
//! Every bench file includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use weft_common::protocol::{
    AllocateRequest, AllocateResponse, ContainerReport, NodeHeartbeatRequest, RegisterAmRequest, RegisterNodeRequest,
    ResourceRequest,
};
use weft_common::rest::{AmContainerSpec, ApplicationSubmissionContext, Commands};
use weft_common::states::{NmContainerState, exit_status};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};
use weft_rm_core::queues::{QueuesConfig, SchedulerMode};
use weft_rm_core::records::StoreOp;
use weft_rm_core::{AmLaunch, ContainerStop, Core, CoreConfig, Effects, Event, Observation, Reply, ReqId};

/// Every container and AM in these fixtures: 1 GB, 1 vcore, so nodes pack exactly.
pub const CONTAINER: Resource = Resource::new(1024, 1);
/// A node holds 16 containers.
pub const NODE: Resource = Resource::new(16 * 1024, 16);
/// The clock stands still: nothing in these paths depends on time passing (no `Tick` is sent, so
/// no expiry runs).
pub const NOW: Millis = 1_000_000;
/// An ask that never runs out during a benchmark: pending demand.
pub const PENDING_FOREVER: u32 = 1_000_000_000;
/// Containers asked per allocate call while filling a cluster, so no single response (and the
/// copy the core keeps for replays) holds hundreds of thousands of containers.
const FILL_CHUNK: u32 = 20_000;

/// Short runs, so `cargo bench -p weft-rm-core` stays around two minutes in total; the
/// operations measured take microseconds, so a few seconds give tight intervals.
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
}

/// Without plots: rendering them takes longer than the measurements (criterion's HTML reports
/// still come with `--plotting-backend plotters` on the command line).
pub fn criterion() -> Criterion {
    Criterion::default().without_plots().configure_from_args()
}

/// The three schedulers, each with the queue tree its benchmarks run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Fifo,
    /// 3 levels below root (department → team → leaf), 24 leaves, user limits and maximums.
    Capacity,
    /// The same shape with weights, DRF everywhere, min and max resources.
    Fair,
}

/// Departments × teams × leaves of the capacity and fair trees.
const DEPARTMENTS: usize = 4;
const TEAMS: usize = 3;
/// Per team: leaf `a` (most of the team; two users may each take its guarantee) and leaf `b`
/// (capacity: a user limit of a tenth of its guarantee; fair: at most 1% of the cluster), so
/// demand there waits on queue limits while the cluster has room.
const LEAVES: [char; 2] = ['a', 'b'];

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Fifo, Mode::Capacity, Mode::Fair];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Fifo => "fifo",
            Mode::Capacity => "capacity",
            Mode::Fair => "fair-drf",
        }
    }

    /// Leaf queue names (unique, so apps are submitted by leaf name).
    pub fn leaves(self) -> Vec<String> {
        if self == Mode::Fifo {
            return vec!["default".into()];
        }
        let mut leaves = Vec::new();
        for d in 0..DEPARTMENTS {
            for t in 0..TEAMS {
                for l in LEAVES {
                    leaves.push(format!("d{d}t{t}{l}"));
                }
            }
        }
        leaves
    }

    /// Leaves that hold the given user limits / minimum shares (the `a` leaves), where the
    /// benchmarked application runs.
    pub fn open_leaf(self) -> &'static str {
        if self == Mode::Fifo { "default" } else { "d0t0a" }
    }

    pub fn queues(self) -> anyhow::Result<QueuesConfig> {
        let yaml = match self {
            Mode::Fifo => return Ok(QueuesConfig { scheduler: SchedulerMode::Fifo, ..QueuesConfig::default() }),
            Mode::Capacity => capacity_yaml(),
            Mode::Fair => fair_yaml(),
        };
        QueuesConfig::parse(&yaml, self.name()).with_context(|| format!("queue config for {}:\n{yaml}", self.name()))
    }
}

fn capacity_yaml() -> String {
    let team_capacity = ["40%", "30%", "30%"];
    let mut y = String::from("scheduler: capacity\nresource-calculator: dominant\nqueues:\n");
    for d in 0..DEPARTMENTS {
        y += &format!("  d{d}:\n    capacity: 25%\n    queues:\n");
        for (t, capacity) in team_capacity.iter().enumerate() {
            y += &format!("      d{d}t{t}:\n        capacity: {capacity}\n        queues:\n");
            y += &format!(
                "          d{d}t{t}a: {{capacity: 60%, user-limit-factor: 1, minimum-user-limit-percent: 50}}\n"
            );
            y += &format!("          d{d}t{t}b: {{capacity: 40%, user-limit-factor: 0.1}}\n");
        }
    }
    y
}

fn fair_yaml() -> String {
    let mut y = String::from(
        "scheduler: fair\nresource-calculator: dominant\ndefaults:\n  scheduling-policy: drf\n  max-am-share: -1\nqueues:\n",
    );
    for d in 0..DEPARTMENTS {
        y += &format!("  d{d}:\n    weight: {}\n    queues:\n", d + 1);
        for t in 0..TEAMS {
            y += &format!("      d{d}t{t}:\n        weight: {}\n        queues:\n", if t == 0 { 2 } else { 1 });
            y += &format!(
                "          d{d}t{t}a: {{weight: 3, min-resources: {{memory-mb: {}, vcores: {}}}}}\n",
                1024 * 64,
                64
            );
            y += &format!("          d{d}t{t}b: {{weight: 1, max-resources: 1%}}\n");
        }
    }
    y
}

/// Records only what the fixtures read back (replies and AM launches); store writes, container
/// stops and metrics observations are dropped, as the server hands them off elsewhere.
#[derive(Default)]
pub struct Sink {
    pub replies: Vec<(ReqId, Reply)>,
    pub launches: Vec<AmLaunch>,
}

impl Effects for Sink {
    fn reply(&mut self, req: ReqId, reply: Reply) {
        self.replies.push((req, reply));
    }
    fn persist(&mut self, _op: StoreOp) {}
    fn launch_am(&mut self, launch: AmLaunch) {
        self.launches.push(launch);
    }
    fn stop_container(&mut self, _stop: ContainerStop) {}
    fn observe(&mut self, _observation: Observation) {}
}

/// A registered ApplicationMaster as seen from outside the core.
#[derive(Debug, Clone)]
pub struct Am {
    pub app: ApplicationId,
    pub attempt: AttemptId,
    pub container: ContainerId,
    pub response_id: u64,
}

pub struct Cluster {
    pub core: Core,
    pub fx: Sink,
    pub nodes: Vec<NodeId>,
    next_req: ReqId,
}

pub fn core_config(queues: QueuesConfig) -> CoreConfig {
    CoreConfig { queues, ..CoreConfig::for_tests() }
}

pub fn ask(count: u32) -> ResourceRequest {
    ResourceRequest {
        priority: 1,
        capability: CONTAINER,
        num_containers: count,
        resource_name: "*".into(),
        relax_locality: true,
        gang: false,
    }
}

pub fn running(id: ContainerId) -> ContainerReport {
    ContainerReport {
        container_id: id,
        state: NmContainerState::Running,
        exit_status: exit_status::INVALID,
        diagnostics: String::new(),
        resource: CONTAINER,
        pid: Some(4242),
    }
}

pub fn completed(id: ContainerId) -> ContainerReport {
    ContainerReport {
        container_id: id,
        state: NmContainerState::Complete,
        exit_status: 0,
        diagnostics: "Exited with code 0.".into(),
        resource: CONTAINER,
        pid: None,
    }
}

impl Cluster {
    /// A core in `mode` with `nodes` RUNNING nodes of [`NODE`] size, 40 to a rack.
    pub fn new(mode: Mode, nodes: usize) -> anyhow::Result<Cluster> {
        let core = Core::new(core_config(mode.queues()?))?;
        let mut cluster = Cluster { core, fx: Sink::default(), nodes: Vec::with_capacity(nodes), next_req: 0 };
        for i in 0..nodes {
            let node_id = NodeId(format!("node{i:05}.example.com:8042").into());
            let request = RegisterNodeRequest {
                node_id: node_id.clone(),
                http_address: format!("http://{}", node_id.0),
                total: NODE,
                containers: Vec::new(),
                version: "bench".into(),
                rack: Some(format!("/rack{}", i / 40)),
            };
            match cluster.request(|req| Event::NodeRegister { req, request })? {
                Reply::NodeRegister(Ok(_)) => cluster.nodes.push(node_id),
                other => bail!("registering {node_id}: {other:?}"),
            }
        }
        Ok(cluster)
    }

    pub fn next_req(&mut self) -> ReqId {
        self.next_req += 1;
        self.next_req
    }

    /// Steps the core with the event `make` builds and returns its reply.
    pub fn request(&mut self, make: impl FnOnce(ReqId) -> Event) -> anyhow::Result<Reply> {
        let req = self.next_req();
        self.core.handle(make(req), NOW, &mut self.fx);
        self.take_reply(req)
    }

    pub fn take_reply(&mut self, req: ReqId) -> anyhow::Result<Reply> {
        let pos = self.fx.replies.iter().position(|(r, _)| *r == req).context("the core did not answer")?;
        Ok(self.fx.replies.swap_remove(pos).1)
    }

    /// Submits an application to `queue` as `user` and brings its AM to registered, as the RM
    /// server would: new-application, submit, store write done, AM launched, AM registers.
    pub fn submit(&mut self, user: &str, queue: &str) -> anyhow::Result<Am> {
        let app = match self.request(|req| Event::NewApplication { req })? {
            Reply::NewApplication(r) => r?.application_id,
            other => bail!("new-application: {other:?}"),
        };
        let context = ApplicationSubmissionContext {
            application_id: Some(app),
            application_name: Some("bench".into()),
            queue: Some(queue.into()),
            am_container_spec: AmContainerSpec {
                commands: Some(Commands { command: vec!["run-am".into()] }),
                ..Default::default()
            },
            resource: Some(CONTAINER),
            ..Default::default()
        };
        let submit = self.next_req();
        self.core.handle(
            Event::Submit { req: submit, user: user.into(), context: Box::new(context) },
            NOW,
            &mut self.fx,
        );
        self.core.handle(Event::Persisted, NOW, &mut self.fx);
        match self.take_reply(submit)? {
            Reply::Submit(r) => r?,
            other => bail!("submit: {other:?}"),
        };
        let pos = self.fx.launches.iter().position(|l| l.container_id.app() == app);
        let launch =
            self.fx.launches.swap_remove(pos.with_context(|| format!("no AM container for {app} in {queue}"))?);
        self.core.handle(Event::AmLaunched { container: launch.container_id }, NOW, &mut self.fx);
        let attempt = launch.container_id.attempt;
        match self.request(|req| Event::AmRegister { req, attempt, request: RegisterAmRequest::default() })? {
            Reply::AmRegister(r) => r?,
            other => bail!("register: {other:?}"),
        };
        Ok(Am { app, attempt, container: launch.container_id, response_id: 0 })
    }

    pub fn allocate_event(
        &mut self,
        am: &Am,
        asks: Vec<ResourceRequest>,
        releases: Vec<ContainerId>,
    ) -> (ReqId, Event) {
        let req = self.next_req();
        let request = AllocateRequest { response_id: am.response_id, asks, releases, progress: 0.5, wait_ms: 0 };
        (req, Event::Allocate { req, attempt: am.attempt, request })
    }

    /// Takes the answer to an allocate call and advances the AM's response id.
    pub fn allocate_reply(&mut self, am: &mut Am, req: ReqId) -> anyhow::Result<AllocateResponse> {
        match self.take_reply(req)? {
            Reply::Allocate(r) => {
                let response = r?;
                am.response_id = response.response_id;
                Ok(response)
            }
            other => bail!("allocate: {other:?}"),
        }
    }

    pub fn allocate(
        &mut self,
        am: &mut Am,
        asks: Vec<ResourceRequest>,
        releases: Vec<ContainerId>,
    ) -> anyhow::Result<AllocateResponse> {
        let (req, event) = self.allocate_event(am, asks, releases);
        self.core.handle(event, NOW, &mut self.fx);
        self.allocate_reply(am, req)
    }

    /// Has every app ask for up to `per_app` containers, [`FILL_CHUNK`] at a time, until each
    /// got them or a whole round placed nothing more (cluster full or queue limits reached). What
    /// could not be placed stays asked for (pending demand). Returns the containers allocated.
    pub fn fill(&mut self, apps: &mut [Am], per_app: u32) -> anyhow::Result<usize> {
        let mut wanted = vec![per_app; apps.len()];
        let mut total = 0;
        loop {
            let mut placed = 0;
            for (am, want) in apps.iter_mut().zip(&mut wanted) {
                if *want == 0 {
                    continue;
                }
                let response = self.allocate(am, vec![ask((*want).min(FILL_CHUNK))], Vec::new())?;
                let got = u32::try_from(response.allocated.len())?;
                *want = want.saturating_sub(got);
                placed += response.allocated.len();
            }
            total += placed;
            if placed == 0 {
                break;
            }
        }
        // Containers placed for an app during another app's call wait in its outbox: fetch them.
        for am in apps.iter_mut() {
            total += self.allocate(am, Vec::new(), Vec::new())?.allocated.len();
        }
        Ok(total)
    }

    /// Sets every app's outstanding ask to `count` (0 withdraws it) and fetches what that placed.
    pub fn set_asks(&mut self, apps: &mut [Am], count: u32) -> anyhow::Result<usize> {
        let mut placed = 0;
        for am in apps.iter_mut() {
            placed += self.allocate(am, vec![ask(count)], Vec::new())?.allocated.len();
        }
        Ok(placed)
    }

    /// Containers live on `node`, as the core has them.
    pub fn containers_on(&self, node: &NodeId) -> anyhow::Result<Vec<ContainerId>> {
        Ok(self.core.node(node).with_context(|| format!("unknown node {node}"))?.containers.iter().copied().collect())
    }

    /// True when no node has room for one more container.
    pub fn is_full(&self) -> bool {
        self.core.nodes().all(|n| !n.free().fits(&CONTAINER))
    }

    pub fn pending_containers(&self) -> u64 {
        self.core.apps().map(|a| a.pending_containers()).sum()
    }

    /// A heartbeat of `node` reporting `containers` running and `done` completed.
    pub fn heartbeat(node: &NodeId, containers: &[ContainerId], done: Option<ContainerId>) -> NodeHeartbeatRequest {
        let mut reports: Vec<ContainerReport> = containers.iter().copied().map(running).collect();
        reports.extend(done.map(completed));
        NodeHeartbeatRequest {
            node_id: node.clone(),
            containers: reports,
            health: Default::default(),
            applications_with_dirs: Vec::new(),
        }
    }

    /// Sends one heartbeat per node so every container is RUNNING at the core (its first report
    /// moves it from ALLOCATED), as on a cluster that has been up for a while.
    pub fn report_all_running(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            let node = self.nodes[i].clone();
            let request = Cluster::heartbeat(&node, &self.containers_on(&node)?, None);
            match self.request(|req| Event::NodeHeartbeat { req, request })? {
                Reply::NodeHeartbeat(Ok(r)) => ensure!(r.containers_to_cleanup.is_empty(), "{node}: {r:?}"),
                other => bail!("heartbeat of {node}: {other:?}"),
            }
        }
        Ok(())
    }
}

/// Apps per leaf, each of its own user (users differ so capacity user limits apply per app).
pub fn submit_apps(cluster: &mut Cluster, mode: Mode, per_leaf: usize) -> anyhow::Result<Vec<Am>> {
    let mut apps = Vec::new();
    for leaf in mode.leaves() {
        // FIFO has a single leaf; give it as many apps as the trees have in all.
        let count = if mode == Mode::Fifo { per_leaf * Mode::Capacity.leaves().len() } else { per_leaf };
        for i in 0..count {
            apps.push(cluster.submit(&format!("user{i}"), &leaf)?);
        }
    }
    Ok(apps)
}

/// The AM containers of `apps`.
pub fn am_containers(apps: &[Am]) -> BTreeSet<ContainerId> {
    apps.iter().map(|a| a.container).collect()
}
