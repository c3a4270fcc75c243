//! Fair-share computation over the fair tree (3 levels below root, 24 leaves, weights, DRF, min
//! and max resources), on a 10 000-node cluster:
//!
//! - `fair_share/instantaneous/<active>`: `Hierarchy::instantaneous_fair_shares`, what the fair
//!   preemption monitor computes every round: the cluster split among queues that want something,
//!   with all 24 leaves active and with 8 of them.
//! - `fair_share/steady/tree`: `QueueTree::resolve` of the fair configuration, which computes every
//!   queue's steady fair share (and validates the configuration); the RM does this whenever the
//!   cluster size changes (a node registers, is lost or changes health).
//! - `fair_share/steady/level-24`: `compute_fair_shares` over 24 siblings, the search one level of
//!   the steady computation runs.
//!
//! Throughput is computations per second.

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use weft_common::Resource;
use weft_rm_core::Hierarchy;
use weft_rm_core::queues::{QueueTree, Schedulable, compute_fair_shares};

use common::{Mode, NODE};

const NODES: u64 = 10_000;

fn cluster() -> Resource {
    NODE.times(NODES)
}

/// Demand per queue as the preemption monitor passes it: each active leaf wants `per_leaf`, a
/// parent the sum of its children, every queue capped at its maximum.
fn demand(tree: &QueueTree, active: usize, per_leaf: Resource) -> Vec<Resource> {
    let mut demand = vec![Resource::ZERO; tree.queues.len()];
    let leaves: Vec<usize> = (0..tree.queues.len()).filter(|&q| tree.queues[q].is_leaf).collect();
    // Spread the active leaves over the tree rather than filling one department.
    let stride = (leaves.len() / active).max(1);
    for &leaf in leaves.iter().step_by(stride).take(active) {
        demand[leaf] = per_leaf;
    }
    // Parents come before their children, so walking backwards sums children first.
    for q in (0..tree.queues.len()).rev() {
        let queue = &tree.queues[q];
        if !queue.is_leaf {
            demand[q] = queue.children.iter().fold(Resource::ZERO, |sum, &c| sum + demand[c]);
        }
        demand[q] = demand[q].min_each(queue.maximum);
    }
    demand
}

fn fair_share(c: &mut Criterion) {
    let config = Mode::Fair.queues().expect("fair queue config");
    let hierarchy = Hierarchy::new(config.clone(), cluster()).expect("fair hierarchy");
    let tree = hierarchy.tree();
    let leaves = tree.queues.iter().filter(|q| q.is_leaf).count();
    assert_eq!(leaves, 24, "the fair tree should have 24 leaves");

    let mut group = c.benchmark_group("fair_share");
    common::configure(&mut group);
    group.throughput(Throughput::Elements(1));
    for active in [24, 8] {
        // Each active leaf wants a tenth of the cluster: more than its share, so the caps matter.
        let demand = demand(tree, active, Resource::new(cluster().memory_mb / 10, cluster().vcores / 10));
        group.bench_with_input(BenchmarkId::new("instantaneous", active), &demand, |b, demand| {
            b.iter(|| hierarchy.instantaneous_fair_shares(black_box(demand)))
        });
    }
    group.bench_function(BenchmarkId::new("steady", "tree"), |b| {
        b.iter(|| QueueTree::resolve(black_box(&config), black_box(cluster())).expect("resolves"))
    });
    let siblings: Vec<Schedulable> = (0..24)
        .map(|i| Schedulable {
            weight: f64::from(1 + i % 4),
            min_share: if i % 3 == 0 { Resource::new(64 * 1024, 64) } else { Resource::ZERO },
            max_share: if i % 5 == 0 { cluster().times(1) } else { Resource::new(cluster().memory_mb / 100, 1600) },
        })
        .collect();
    group.bench_function(BenchmarkId::new("steady", "level-24"), |b| {
        b.iter(|| compute_fair_shares(black_box(cluster()), black_box(&siblings)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = fair_share
}
criterion_main!(benches);
