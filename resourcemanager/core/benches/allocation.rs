//! What one container allocation costs the scheduler core on a 10 000-node cluster, per
//! scheduler (FIFO, capacity with a 24-leaf tree and user limits, fair with DRF):
//!
//! - `allocate/<mode>/<n>`: one AM `Allocate` asking for `n` containers, all placed within the
//!   call (the response carries them). Other applications fill a quarter to three quarters of the
//!   cluster, and (capacity, fair) have more demand pending behind queue limits, which every
//!   scheduling pass looks at. Throughput is containers per second; comparing n = 1 and n = 100
//!   separates the fixed cost of an allocate call from the cost of each container.
//! - `replace/<mode>`: a full cluster with pending demand in every queue; one NM heartbeat
//!   (15 running containers, 1 completed) frees a slot and the scheduler gives it to a pending
//!   ask. Throughput is containers replaced (= heartbeats) per second.
//!
//! Only `Core::handle` is timed; giving containers back and collecting allocations between
//! iterations is not.

mod common;

use std::time::{Duration, Instant};

use anyhow::ensure;
use common::{Am, Cluster, Mode, NOW, PENDING_FOREVER, ask};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weft_common::protocol::AllocateResponse;
use weft_common::{ContainerId, NodeId};

const NODES: usize = 10_000;
/// Containers each background application holds (or asks for, where limits stop it).
const BACKGROUND_PER_APP: u32 = 4_000;

/// A 10k-node cluster a quarter to three quarters full, plus the application whose allocations
/// are measured.
struct AllocateFixture {
    cluster: Cluster,
    am: Am,
}

impl AllocateFixture {
    fn build(mode: Mode) -> anyhow::Result<Self> {
        let mut cluster = Cluster::new(mode, NODES)?;
        let mut background = common::submit_apps(&mut cluster, mode, 1)?;
        cluster.fill(&mut background, BACKGROUND_PER_APP)?;
        let am = cluster.submit("bench", mode.open_leaf())?;
        let used =
            cluster.env.core.cluster_used().memory_mb as f64 / cluster.env.core.cluster_capacity().memory_mb as f64;
        ensure!(
            (0.25..0.75).contains(&used),
            "{}: cluster {:.0}% used, wanted a quarter to three quarters",
            mode.name(),
            used * 100.0
        );
        if mode != Mode::Fifo {
            // FIFO has no limits, so nothing can wait while the cluster has room.
            ensure!(cluster.pending_containers() > 0, "{}: no demand pending behind queue limits", mode.name());
        }
        Ok(Self { cluster, am })
    }

    /// Times `iters` allocate calls of `n` containers each; the containers are released (not
    /// timed) after each call so every call sees the same cluster.
    fn run(&mut self, n: u32, iters: u64) -> anyhow::Result<Duration> {
        let mut timed = Duration::ZERO;
        for _ in 0..iters {
            let (req, event) = self.cluster.allocate_event(&self.am, vec![ask(n)], Vec::new());
            let start = Instant::now();
            self.cluster.env.core.handle(event, NOW, &mut self.cluster.env.fx);
            timed += start.elapsed();
            let response: AllocateResponse = self.cluster.allocate_reply(&mut self.am, req)?;
            ensure!(response.allocated.len() == n as usize, "asked {n}, got {}", response.allocated.len());
            let release: Vec<ContainerId> = response.allocated.iter().map(|c| c.id).collect();
            self.cluster.allocate(&mut self.am, Vec::new(), release)?;
        }
        Ok(timed)
    }
}

/// A full 10k-node cluster (16 containers per node) with demand pending in every queue.
struct ReplaceFixture {
    cluster: Cluster,
    apps: Vec<Am>,
    /// Per node (same order as `cluster.nodes`): its containers that may complete, oldest first.
    workers: Vec<Vec<ContainerId>>,
    /// Per node: its AM containers, reported running but never completed.
    ams: Vec<Vec<ContainerId>>,
    next_node: usize,
    since_drain: u32,
}

/// Collect allocations from the AMs' outboxes this often, as AMs' allocate calls would.
const DRAIN_EVERY: u32 = 256;

impl ReplaceFixture {
    fn build(mode: Mode) -> anyhow::Result<Self> {
        let mut cluster = Cluster::new(mode, NODES)?;
        let mut apps = common::submit_apps(&mut cluster, mode, 2)?;
        cluster.fill(&mut apps, PENDING_FOREVER)?;
        cluster.set_asks(&mut apps, PENDING_FOREVER)?;
        ensure!(cluster.is_full(), "{}: cluster not full after filling", mode.name());
        cluster.report_all_running()?;
        let am_ids = common::am_containers(&apps);
        let mut workers = Vec::with_capacity(NODES);
        let mut ams = Vec::with_capacity(NODES);
        for node in &cluster.nodes {
            let (am, work): (Vec<ContainerId>, Vec<ContainerId>) =
                cluster.containers_on(node)?.into_iter().partition(|c| am_ids.contains(c));
            ams.push(am);
            workers.push(work);
        }
        Ok(Self { cluster, apps, workers, ams, next_node: 0, since_drain: 0 })
    }

    /// Times `iters` heartbeats, each completing one container of the next node in turn; checks
    /// that the freed slot was given to a pending ask on that node.
    fn run(&mut self, iters: u64) -> anyhow::Result<Duration> {
        let mut timed = Duration::ZERO;
        for _ in 0..iters {
            let i = self.next_node;
            self.next_node = (i + 1) % self.cluster.nodes.len();
            let node: NodeId = self.cluster.nodes[i].clone();
            ensure!(!self.workers[i].is_empty(), "node {node} has nothing left to complete");
            let done = self.workers[i].remove(0);
            let mut live = self.workers[i].clone();
            live.extend(&self.ams[i]);
            let request = Cluster::heartbeat(&node, &live, Some(done));
            let req = self.cluster.next_req();
            let event = weft_rm_core::Event::NodeHeartbeat { req, request };
            let start = Instant::now();
            self.cluster.env.core.handle(event, NOW, &mut self.cluster.env.fx);
            timed += start.elapsed();
            self.cluster.take_reply(req)?;
            let on_node = self.cluster.containers_on(&node)?;
            let new = on_node.iter().find(|c| !live.contains(c));
            ensure!(new.is_some(), "the slot freed on {node} was not refilled from pending demand");
            self.workers[i].extend(new);
            self.since_drain += 1;
            if self.since_drain == DRAIN_EVERY {
                self.since_drain = 0;
                for am in &mut self.apps {
                    self.cluster.allocate(am, Vec::new(), Vec::new())?;
                }
            }
        }
        Ok(timed)
    }
}

fn allocate(c: &mut Criterion) {
    let mut group = c.benchmark_group("allocate");
    common::configure(&mut group);
    for mode in Mode::ALL {
        // Built on first use, so a filter that skips a mode skips its set-up too.
        let mut fixture: Option<AllocateFixture> = None;
        for n in [1u32, 100] {
            group.throughput(Throughput::Elements(u64::from(n)));
            group.bench_function(BenchmarkId::new(mode.name(), n), |b| {
                let f = fixture.get_or_insert_with(|| AllocateFixture::build(mode).expect("allocate fixture"));
                b.iter_custom(|iters| f.run(n, iters).expect("allocate run"));
            });
        }
    }
    group.finish();
}

fn replace(c: &mut Criterion) {
    let mut group = c.benchmark_group("replace");
    common::configure(&mut group);
    group.throughput(Throughput::Elements(1));
    for mode in Mode::ALL {
        let mut fixture: Option<ReplaceFixture> = None;
        group.bench_function(mode.name(), |b| {
            let f = fixture.get_or_insert_with(|| ReplaceFixture::build(mode).expect("replace fixture"));
            b.iter_custom(|iters| f.run(iters).expect("replace run"));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = allocate, replace
}
criterion_main!(benches);
