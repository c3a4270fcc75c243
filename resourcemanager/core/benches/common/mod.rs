//! Fixtures shared by the scheduler-core benchmarks: the testkit's driver with nodes,
//! applications and running containers set up the way the RM server would feed them in, and a
//! queue tree per scheduler mode.
//!
//! Every bench file includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use weft_common::protocol::{
    AllocateRequest, AllocateResponse, ContainerReport, NodeHeartbeatRequest, ResourceRequest,
};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};
use weft_rm_core::queues::{QueuesConfig, SchedulerMode};
use weft_rm_core::testkit::{self, Env};
use weft_rm_core::{CoreConfig, Event, Reply, ReqId};

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

/// A registered ApplicationMaster as seen from outside the core.
#[derive(Debug, Clone)]
pub struct Am {
    pub app: ApplicationId,
    pub attempt: AttemptId,
    pub container: ContainerId,
    pub response_id: u64,
}

/// The testkit's driver with a cluster of nodes; what the benchmarks time they feed to
/// `env.core` directly. Effects the fixtures do not read (store writes, stops) are dropped
/// between steps so a long run does not accumulate them.
pub struct Cluster {
    pub env: Env,
    pub nodes: Vec<NodeId>,
}

pub fn core_config(queues: QueuesConfig) -> CoreConfig {
    CoreConfig { queues, ..CoreConfig::for_tests() }
}

/// An ask of `count` benchmark containers.
pub fn ask(count: u32) -> ResourceRequest {
    testkit::ask(1, CONTAINER.memory_mb, count)
}

impl Cluster {
    /// A core in `mode` with `nodes` RUNNING nodes of [`NODE`] size, 40 to a rack.
    pub fn new(mode: Mode, nodes: usize) -> anyhow::Result<Cluster> {
        let mut env = Env::with_config(core_config(mode.queues()?));
        env.now = NOW;
        let mut cluster = Cluster { env, nodes: Vec::with_capacity(nodes) };
        for i in 0..nodes {
            let rack = format!("/rack{}", i / 40);
            let node = cluster.env.add_node_in_rack(
                &format!("node{i:05}.example.com"),
                NODE.memory_mb,
                NODE.vcores,
                Some(&rack),
            );
            cluster.nodes.push(node);
        }
        cluster.drop_unread_effects();
        Ok(cluster)
    }

    pub fn next_req(&mut self) -> ReqId {
        self.env.req()
    }

    pub fn take_reply(&mut self, req: ReqId) -> anyhow::Result<Reply> {
        ensure!(self.env.fx.has_reply(req), "the core did not answer request {req}");
        Ok(self.env.fx.take_reply(req))
    }

    /// Store writes, container stops and observations: the server hands them elsewhere, and the
    /// fixtures never read them.
    pub fn drop_unread_effects(&mut self) {
        self.env.fx.take_persisted();
        self.env.fx.take_stops();
        self.env.fx.clear_observations();
    }

    /// Submits an application to `queue` as `user` and brings its AM to registered, as the RM
    /// server would: new-application, submit, store write done, AM launched, AM registers.
    pub fn submit(&mut self, user: &str, queue: &str) -> anyhow::Result<Am> {
        let app = self.env.submit_to(user, Some(queue), CONTAINER)?;
        ensure!(
            self.env.fx.launches.iter().any(|l| l.container_id.app() == app),
            "no AM container for {app} in {queue}"
        );
        let launch = self.env.start_am(app);
        self.drop_unread_effects();
        Ok(Am { app, attempt: launch.container_id.attempt, container: launch.container_id, response_id: 0 })
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
        self.drop_unread_effects();
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
        self.env.step(event);
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
        Ok(self
            .env
            .core
            .node(node)
            .with_context(|| format!("unknown node {node}"))?
            .containers()
            .iter()
            .copied()
            .collect())
    }

    /// True when no node has room for one more container.
    pub fn is_full(&self) -> bool {
        self.env.core.nodes().all(|n| !n.free().fits(&CONTAINER))
    }

    pub fn pending_containers(&self) -> u64 {
        self.env.core.apps().map(|a| a.pending_containers()).sum()
    }

    /// A heartbeat of `node` reporting `containers` running and `done` completed (with the
    /// diagnostics a NodeManager sends).
    pub fn heartbeat(node: &NodeId, containers: &[ContainerId], done: Option<ContainerId>) -> NodeHeartbeatRequest {
        let mut reports: Vec<ContainerReport> = containers.iter().copied().map(testkit::running).collect();
        reports.extend(
            done.map(|id| ContainerReport { diagnostics: "Exited with code 0.".into(), ..testkit::done(id, 0) }),
        );
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
            let response = self.env.heartbeat(&node, request.containers);
            ensure!(response.containers_to_cleanup.is_empty(), "{node}: {response:?}");
        }
        self.drop_unread_effects();
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
