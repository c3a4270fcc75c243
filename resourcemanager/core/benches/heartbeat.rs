//! What one NodeManager heartbeat costs the scheduler core when nothing is pending: the node
//! reports its running containers (about 16), the core checks each against its records, and the
//! scheduling pass that follows every event finds nothing to do.
//!
//! `heartbeat/<mode>/<nodes>`: 10 000 and 50 000 nodes with 16 containers each (FIFO), and 10 000
//! nodes for the capacity and fair trees (24 leaves), where the pass still walks the queue tree.
//! Heartbeats come from nodes spread over the whole cluster in turn, as they would on a real one.
//! Throughput is heartbeats per second.

mod common;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weft_common::protocol::NodeHeartbeatRequest;
use weft_rm_core::Event;

use anyhow::ensure;
use common::{Cluster, Mode, NOW, PENDING_FOREVER};

/// Nodes whose heartbeats are replayed in turn: spread over the cluster, so the core's maps are
/// touched all over rather than in one hot corner.
const SAMPLED_NODES: usize = 1024;

struct HeartbeatFixture {
    cluster: Cluster,
    requests: Vec<NodeHeartbeatRequest>,
}

impl HeartbeatFixture {
    fn build(mode: Mode, nodes: usize) -> anyhow::Result<Self> {
        let mut cluster = Cluster::new(mode, nodes)?;
        // Two users per leaf, so capacity leaves can grow past their guarantee and nodes fill up.
        let mut apps = common::submit_apps(&mut cluster, mode, 2)?;
        cluster.fill(&mut apps, PENDING_FOREVER)?;
        // Whatever queue limits held back is withdrawn: no demand is pending.
        cluster.set_asks(&mut apps, 0)?;
        ensure!(cluster.pending_containers() == 0, "demand still pending");
        cluster.report_all_running()?;
        let step = (nodes / SAMPLED_NODES).max(1);
        let mut requests = Vec::new();
        for node in cluster.nodes.iter().step_by(step) {
            requests.push(Cluster::heartbeat(node, &cluster.containers_on(node)?, None));
        }
        let reported: usize = requests.iter().map(|r| r.containers.len()).sum();
        let per_node = reported as f64 / requests.len() as f64;
        ensure!(per_node >= 12.0, "{}: only {per_node:.1} containers per heartbeat", mode.name());
        Ok(Self { cluster, requests })
    }
}

fn heartbeat(c: &mut Criterion) {
    let mut group = c.benchmark_group("heartbeat");
    common::configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let cases = [(Mode::Fifo, 10_000), (Mode::Fifo, 50_000), (Mode::Capacity, 10_000), (Mode::Fair, 10_000)];
    for (mode, nodes) in cases {
        // Built on first use (criterion calls the closure once per sample), so a filter that skips
        // this case skips its set-up too.
        let mut fixture: Option<HeartbeatFixture> = None;
        let mut next = 0;
        group.bench_function(BenchmarkId::new(mode.name(), nodes), |b| {
            let HeartbeatFixture { cluster, requests } =
                fixture.get_or_insert_with(|| HeartbeatFixture::build(mode, nodes).expect("heartbeat fixture"));
            b.iter_batched(
                // The request is moved into the core, so each iteration gets its own copy, made
                // outside the timing.
                || {
                    next = (next + 1) % requests.len();
                    requests[next].clone()
                },
                |request| {
                    let req = cluster.next_req();
                    cluster.env.core.handle(Event::NodeHeartbeat { req, request }, NOW, &mut cluster.env.fx);
                    // Handed back to criterion, which drops it outside the timing.
                    std::mem::take(&mut cluster.env.fx.replies)
                },
                BatchSize::SmallInput,
            );
        });
        // Frees the 50k-node cluster before the next one is built.
        drop(fixture);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = heartbeat
}
criterion_main!(benches);
