//! Planner tests: hand-built snapshots with every number asserted, and a property test over
//! random trees.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use weft_common::{ApplicationId, AttemptId, ContainerId, Resource};

use super::*;
use crate::queues::{Acl, PreemptionConfig, QueueSettings, QueueState, ResolvedQueue, SchedulerMode};

/// One unit is 1 GiB and 1 vcore, so both dimensions move together unless a test says otherwise.
fn units(n: u64) -> Resource {
    Resource::new(1024 * n, n as u32)
}

fn app(seq: u32) -> ApplicationId {
    ApplicationId::new(1, seq)
}

fn cid(app_seq: u32, seq: u64) -> ContainerId {
    ContainerId { attempt: AttemptId::new(app(app_seq), 1), epoch: 0, seq }
}

/// A queue as the capacity tests write it; [`tree`] turns a list of them into the resolved tree
/// the planner reads (parents listed before their children, as `QueueTree` has them).
#[derive(Debug, Clone)]
struct TestQueue {
    path: String,
    parent: Option<usize>,
    guaranteed: Resource,
    maximum: Resource,
    used: Resource,
    pending: Resource,
    preemption_disabled: bool,
}

fn queue(path: &str, parent: Option<usize>, guaranteed: Resource, used: Resource, pending: Resource) -> TestQueue {
    TestQueue { path: path.into(), parent, guaranteed, maximum: units(100), used, pending, preemption_disabled: false }
}

/// The capacity tree of `queues` (only what the planner reads is set) and their loads.
fn tree(cluster: Resource, queues: &[TestQueue], calc: ResourceCalculator) -> (QueueTree, Vec<QueueLoad>) {
    let mut resolved: Vec<ResolvedQueue> = queues
        .iter()
        .map(|q| ResolvedQueue {
            path: q.path.clone(),
            name: q.path.rsplit('.').next().unwrap_or_default().to_owned(),
            parent: q.parent,
            children: Vec::new(),
            is_leaf: true,
            accepts_dynamic_children: false,
            state: QueueState::Running,
            submit_acl: Acl::nobody(),
            administer_acl: Acl::nobody(),
            preemptible: !q.preemption_disabled,
            absolute_capacity: 0.0,
            guaranteed: q.guaranteed,
            maximum: q.maximum,
            max_applications: None,
            max_parallel_apps: None,
            am_limit: None,
            settings: QueueSettings::Fifo,
        })
        .collect();
    for (i, q) in queues.iter().enumerate() {
        if let Some(p) = q.parent {
            assert!(p < i, "{}: list parents before their children", q.path);
            resolved[p].children.push(i);
            resolved[p].is_leaf = false;
        }
    }
    let tree = QueueTree {
        scheduler: SchedulerMode::Capacity,
        resource_calculator: calc,
        cluster,
        queues: resolved,
        placement_rules: Vec::new(),
        preemption: PreemptionConfig::default(),
        users: BTreeMap::new(),
        default_user_max_parallel_apps: None,
        warnings: Vec::new(),
    };
    let load = queues.iter().map(|q| QueueLoad { used: q.used, pending: q.pending }).collect();
    (tree, load)
}

fn plan_with(
    cluster: Resource,
    queues: &[TestQueue],
    containers: &[ContainerSnapshot],
    marked: &BTreeSet<ContainerId>,
    calc: ResourceCalculator,
) -> PreemptionPlan {
    let (tree, load) = tree(cluster, queues, calc);
    plan_capacity(cluster, &tree, &load, containers, marked, &CapacityKnobs::default())
}

fn container(
    queue: usize,
    app_seq: u32,
    seq: u64,
    priority: i32,
    is_am: bool,
    resource: Resource,
) -> ContainerSnapshot {
    ContainerSnapshot {
        id: cid(app_seq, seq),
        queue,
        app: app(app_seq),
        app_priority: 0,
        app_order: u64::from(app_seq),
        priority,
        is_am,
        resource,
    }
}

/// `count` one-unit containers of one app, sequence numbers from `first`.
fn unit_containers(queue: usize, app_seq: u32, first: u64, count: u64, priority: i32) -> Vec<ContainerSnapshot> {
    (first..first + count).map(|seq| container(queue, app_seq, seq, priority, false, units(1))).collect()
}

fn ids(victims: &[Victim]) -> Vec<ContainerId> {
    victims.iter().map(|v| v.container).collect()
}

fn plan(queues: &[TestQueue], containers: &[ContainerSnapshot], marked: &BTreeSet<ContainerId>) -> PreemptionPlan {
    plan_with(units(100), queues, containers, marked, ResourceCalculator::Dominant)
}

/// root, root.a (70%) using the whole cluster, root.b (30%) pending 30.
fn seventy_thirty(a_used: u64) -> Vec<TestQueue> {
    let b_used = 100 - a_used;
    vec![
        queue("root", None, units(100), units(100), units(30 - b_used)),
        queue("root.a", Some(0), units(70), units(a_used), units(0)),
        queue("root.b", Some(0), units(30), units(b_used), units(30 - b_used)),
    ]
}

#[test]
fn over_ideal_queue_gives_back_a_fifth_of_its_excess_newest_lowest_priority_first() {
    let queues = seventy_thirty(100);
    // app 1 (oldest), app 2 (newer), app 3 (newest but a higher app priority): 50 + 40 + 10.
    let mut containers = vec![container(1, 1, 1, 0, true, units(1))];
    containers.extend(unit_containers(1, 1, 2, 49, 10));
    containers.push(container(1, 2, 1, 0, true, units(1)));
    containers.extend(unit_containers(1, 2, 2, 19, 10));
    containers.extend(unit_containers(1, 2, 21, 20, 20));
    let mut app3 = vec![container(1, 3, 1, 0, true, units(1))];
    app3.extend(unit_containers(1, 3, 2, 9, 20));
    app3.iter_mut().for_each(|c| c.app_priority = 5);
    containers.extend(app3);

    let first = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(first.ideal, vec![units(100), units(70), units(30)]);
    // (100 − 70) × 0.2 = 6 units, under the 10-unit round cap.
    assert_eq!(first.to_preempt, vec![units(6), units(6), units(0)]);
    assert_eq!(ids(&first.victims), (35..=40).rev().map(|seq| cid(2, seq)).collect::<Vec<_>>());
    for v in &first.victims {
        assert_eq!((v.from_queue, v.for_queue, v.for_app), (1, Some(2), None));
    }
    assert_eq!(
        first.victims[0].reason,
        "queue root.a uses <memory:102400, vCores:100> over its ideal <memory:71680, vCores:70>; \
         reclaiming <memory:6144, vCores:6> this round for root.b"
    );

    // The next round, before the kills: the marked containers already cover the target.
    let marked: BTreeSet<ContainerId> = ids(&first.victims).into_iter().collect();
    let again = plan(&queues, &containers, &marked);
    assert_eq!(again.to_preempt, vec![units(6), units(6), units(0)]);
    assert_eq!(again.victims, vec![]);
}

#[test]
fn repeated_rounds_converge_to_the_dead_zone_without_over_preempting() {
    let mut a_containers = unit_containers(1, 1, 1, 100, 10);
    let mut b_used = 0;
    let mut per_round = Vec::new();
    loop {
        let queues = seventy_thirty(100 - b_used);
        let mut containers = a_containers.clone();
        containers.extend(unit_containers(2, 2, 1, b_used, 10));
        let round = plan(&queues, &containers, &BTreeSet::new());
        if round.victims.is_empty() {
            break;
        }
        // Rounds repeated while the kills are pending select nothing new.
        let marked: BTreeSet<ContainerId> = ids(&round.victims).into_iter().collect();
        for _ in 0..4 {
            assert_eq!(plan(&queues, &containers, &marked).victims, vec![]);
        }
        a_containers.retain(|c| !marked.contains(&c.id));
        b_used += marked.len() as u64;
        per_round.push(marked.len());
    }
    // Excess 30, 24, 19, 15, 12, 9 → ⌈× 0.2⌉; then 77 is inside the 10% dead zone above 70.
    assert_eq!(per_round, vec![6, 5, 4, 3, 3, 2]);
    assert_eq!((a_containers.len(), b_used), (77, 23));
}

#[test]
fn round_cap_scales_all_over_ideal_queues_down() {
    let queues = vec![
        queue("root", None, units(100), units(100), units(80)),
        queue("root.a", Some(0), units(10), units(60), units(0)),
        queue("root.b", Some(0), units(10), units(40), units(0)),
        queue("root.c", Some(0), units(80), units(0), units(80)),
    ];
    let mut containers = unit_containers(1, 1, 1, 60, 10);
    containers.extend(unit_containers(2, 2, 1, 40, 10));
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(10), units(10), units(80)]);
    // Wanted 10 + 6 units; the cap is 10 units = 10240 MB and 10 vcores, split 10:6 (memory
    // exactly, vcores 6.25/3.75 with the spare vcore going to the larger remainder).
    assert_eq!(p.to_preempt[1], Resource::new(6400, 6));
    assert_eq!(p.to_preempt[2], Resource::new(3840, 4));
    assert_eq!(p.to_preempt[0], units(10));
    assert_eq!(p.to_preempt[3], units(0));
    // 6400 MB takes 7 one-GiB containers (the last one overshoots), 3840 MB takes 4.
    let mut expected: Vec<ContainerId> = (54..=60).rev().map(|s| cid(1, s)).collect();
    expected.extend((37..=40).rev().map(|s| cid(2, s)));
    assert_eq!(ids(&p.victims), expected);
    assert!(p.victims.iter().all(|v| v.for_queue == Some(3)));
}

#[test]
fn dead_zone_ignores_small_excess() {
    let queues = vec![
        queue("root", None, units(100), units(100), units(10)),
        queue("root.a", Some(0), units(70), units(75), units(0)),
        queue("root.b", Some(0), units(30), units(25), units(10)),
    ];
    let containers = unit_containers(1, 1, 1, 75, 10);
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(70), units(30)]);
    assert_eq!(p.to_preempt, vec![units(0); 3]);
    assert_eq!(p.victims, vec![]);

    // 78 is beyond 70 × 1.1 = 77: (78 − 70) × 0.2 = 1.6, rounded up to 2 containers.
    let queues = vec![
        queue("root", None, units(100), units(100), units(10)),
        queue("root.a", Some(0), units(70), units(78), units(0)),
        queue("root.b", Some(0), units(30), units(22), units(10)),
    ];
    let containers = unit_containers(1, 1, 1, 78, 10);
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(70), units(30)]);
    assert_eq!(p.to_preempt, vec![Resource::new(1639, 2), Resource::new(1639, 2), units(0)]);
    assert_eq!(ids(&p.victims), vec![cid(1, 78), cid(1, 77)]);
}

#[test]
fn nothing_is_preempted_without_pending_demand_that_the_ideal_grants() {
    // An elastic queue far above its guarantee on an otherwise idle cluster.
    let queues = vec![
        queue("root", None, units(100), units(90), units(0)),
        queue("root.a", Some(0), units(50), units(90), units(0)),
        queue("root.b", Some(0), units(50), units(0), units(0)),
    ];
    let p = plan(&queues, &unit_containers(1, 1, 1, 90, 10), &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(90), units(90), units(0)]);
    assert_eq!(p.to_preempt, vec![units(0); 3]);
    assert_eq!(p.victims, vec![]);

    // YARN-11073's shape: a tiny queue whose ideal rounds to almost nothing (1 MB, 0 vcores) after
    // the cluster shrank under the current usage. It is "over", but nobody waits for anything.
    let mut tiny = queue("root.tiny", Some(0), Resource::new(1, 0), units(1), units(0));
    tiny.maximum = units(100);
    let queues = vec![
        queue("root", None, units(100), units(101), units(0)),
        tiny,
        queue("root.big", Some(0), Resource::new(102_399, 100), units(100), units(0)),
    ];
    let mut containers = vec![container(1, 1, 1, 10, false, units(1))];
    containers.extend(unit_containers(2, 2, 1, 100, 10));
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), Resource::new(1, 0), Resource::new(102_399, 100)]);
    assert_eq!(p.to_preempt, vec![units(0); 3]);
    assert_eq!(p.victims, vec![]);

    // Even when the big queue has pending demand: its ideal is already below its usage, so the
    // ideal grants it nothing more and the tiny queue keeps its container.
    let queues = vec![
        queues[0].clone(),
        queues[1].clone(),
        queue("root.big", Some(0), Resource::new(102_399, 100), units(100), units(10)),
    ];
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.to_preempt, vec![units(0); 3]);
    assert_eq!(p.victims, vec![]);
}

#[test]
fn excess_smaller_than_any_container_is_left_alone() {
    let eight = |queue: usize, count: u64| -> Vec<ContainerSnapshot> {
        (1..=count).map(|seq| container(queue, 1, seq, 10, false, units(8))).collect()
    };
    // 56 over an ideal of 50 is beyond the dead zone, but each container is 8: any kill would
    // put the queue further below its ideal than it is above it now.
    let queues = vec![
        queue("root", None, units(100), units(96), units(10)),
        queue("root.a", Some(0), units(50), units(56), units(0)),
        queue("root.b", Some(0), units(50), units(40), units(10)),
    ];
    let p = plan(&queues, &eight(1, 7), &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(50), units(50)]);
    assert_eq!(p.to_preempt, vec![units(0); 3]);
    assert_eq!(p.victims, vec![]);

    // At 64 the excess (14) covers a container: ⌈14 × 0.2⌉ = 2868 MB / 3 vcores, one container.
    let queues = vec![
        queue("root", None, units(100), units(100), units(14)),
        queue("root.a", Some(0), units(50), units(64), units(0)),
        queue("root.b", Some(0), units(50), units(36), units(14)),
    ];
    let p = plan(&queues, &eight(1, 8), &BTreeSet::new());
    assert_eq!(p.to_preempt, vec![Resource::new(2868, 3), Resource::new(2868, 3), units(0)]);
    assert_eq!(ids(&p.victims), vec![cid(1, 8)]);
}

#[test]
fn elastic_ideal_is_capped_by_maximum_capacity() {
    // Only b wants more than its guarantee: it grows to its maximum (40), the rest stays free.
    let mut b = queue("root.b", Some(0), units(30), units(0), units(60));
    b.maximum = units(40);
    let queues = vec![
        queue("root", None, units(100), units(50), units(60)),
        queue("root.a", Some(0), units(70), units(50), units(0)),
        b.clone(),
    ];
    let p = plan(&queues, &unit_containers(1, 1, 1, 50, 10), &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(50), units(40)]);
    assert_eq!(p.victims, vec![]);

    // a and b both want more: the spare 30 is split 40:30 (17.1 and 12.9), b stops at its
    // maximum, and a takes what b could not in a second pass.
    let queues = vec![
        queue("root", None, units(100), units(40), units(120)),
        queue("root.a", Some(0), units(40), units(40), units(60)),
        b,
        queue("root.c", Some(0), units(30), units(0), units(0)),
    ];
    let p = plan(&queues, &unit_containers(1, 1, 1, 40, 10), &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(60), units(40), units(0)]);
    assert_eq!(p.victims, vec![]);
}

#[test]
fn three_level_tree_shares_within_parents() {
    let queues = vec![
        queue("root", None, units(100), units(100), units(25)),
        queue("root.p1", Some(0), units(50), units(50), units(25)),
        queue("root.p1.a", Some(1), units(25), units(0), units(25)),
        queue("root.p1.b", Some(1), units(25), units(50), units(0)),
        queue("root.p2", Some(0), units(50), units(50), units(0)),
        queue("root.p2.c", Some(4), units(25), units(50), units(0)),
        queue("root.p2.d", Some(4), units(25), units(0), units(0)),
    ];
    let mut containers = unit_containers(3, 1, 1, 50, 10);
    containers.extend(unit_containers(5, 2, 1, 50, 10));
    let p = plan(&queues, &containers, &BTreeSet::new());
    // p2's idle d leaves its share to c, which is at its ideal although above its guarantee.
    assert_eq!(p.ideal, vec![units(100), units(50), units(25), units(25), units(50), units(50), units(0)]);
    assert_eq!(p.to_preempt, vec![units(5), units(5), units(0), units(5), units(0), units(0), units(0)]);
    assert_eq!(ids(&p.victims), (46..=50).rev().map(|s| cid(1, s)).collect::<Vec<_>>());
    assert!(p.victims.iter().all(|v| v.from_queue == 3 && v.for_queue == Some(2)));
}

#[test]
fn preemption_disabled_queue_is_never_a_source() {
    let mut a = queue("root.a", Some(0), units(40), units(60), units(0));
    a.preemption_disabled = true;
    let queues = vec![
        queue("root", None, units(100), units(100), units(30)),
        a.clone(),
        queue("root.b", Some(0), units(30), units(40), units(0)),
        queue("root.c", Some(0), units(30), units(0), units(30)),
    ];
    let mut containers = unit_containers(1, 1, 1, 60, 10);
    containers.extend(unit_containers(2, 2, 1, 40, 10));
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(40), units(30), units(30)]);
    // Only b's own excess (10 × 0.2) is taken; it does not make up for a's 20.
    assert_eq!(p.to_preempt, vec![units(2), units(0), units(2), units(0)]);
    assert_eq!(ids(&p.victims), vec![cid(2, 40), cid(2, 39)]);
    assert!(p.victims.iter().all(|v| v.from_queue == 2 && v.for_queue == Some(3)));

    // When the disabled queue is the only one over its ideal, c simply waits.
    let queues = vec![
        queue("root", None, units(100), units(100), units(30)),
        queue("root.a", Some(0), units(40), units(70), units(0)),
        queue("root.b", Some(0), units(30), units(30), units(0)),
        queue("root.c", Some(0), units(30), units(0), units(30)),
    ];
    let queues: Vec<TestQueue> =
        queues.into_iter().map(|q| TestQueue { preemption_disabled: q.path == "root.a", ..q }).collect();
    let mut containers = unit_containers(1, 1, 1, 70, 10);
    containers.extend(unit_containers(2, 2, 1, 30, 10));
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(40), units(30), units(30)]);
    assert_eq!(p.to_preempt, vec![units(0); 4]);
    assert_eq!(p.victims, vec![]);
}

#[test]
fn dominant_calculator_takes_containers_heavy_in_the_owed_resource() {
    let cluster = Resource::new(100_000, 100);
    let cpu_heavy = Resource::new(1_000, 10);
    let memory_heavy = Resource::new(10_000, 1);
    let queues = |a_used: Resource, b_pending: Resource| {
        vec![
            TestQueue {
                path: "root".into(),
                parent: None,
                guaranteed: cluster,
                maximum: cluster,
                used: a_used,
                pending: b_pending,
                preemption_disabled: false,
            },
            TestQueue {
                path: "root.a".into(),
                parent: Some(0),
                guaranteed: Resource::new(50_000, 50),
                maximum: cluster,
                used: a_used,
                pending: Resource::ZERO,
                preemption_disabled: false,
            },
            TestQueue {
                path: "root.b".into(),
                parent: Some(0),
                guaranteed: Resource::new(50_000, 50),
                maximum: cluster,
                used: Resource::ZERO,
                pending: b_pending,
                preemption_disabled: false,
            },
        ]
    };
    let run = |queues: &[TestQueue], containers: &[ContainerSnapshot], calc| {
        plan_with(cluster, queues, containers, &BTreeSet::new(), calc)
    };

    // a holds 94 of 100 vcores (its dominant resource) but less memory than it may; b wants cpu.
    // The newest containers are memory-heavy, yet DRF takes a cpu-heavy one.
    let mut containers: Vec<ContainerSnapshot> = (1..=9).map(|s| container(1, 1, s, 10, false, cpu_heavy)).collect();
    containers.extend((10..=13).map(|s| container(1, 1, s, 10, false, memory_heavy)));
    let qs = queues(Resource::new(49_000, 94), Resource::new(10_000, 50));
    let drf = run(&qs, &containers, ResourceCalculator::Dominant);
    assert_eq!(drf.ideal, vec![Resource::new(59_000, 100), Resource::new(49_000, 50), Resource::new(10_000, 50)]);
    assert_eq!(drf.to_preempt[1], Resource::new(0, 9));
    assert_eq!(ids(&drf.victims), vec![cid(1, 9)]);
    // Memory-only sees a under its ideal and preempts nothing.
    let memory = run(&qs, &containers, ResourceCalculator::Memory);
    assert_eq!(memory.ideal, drf.ideal);
    assert_eq!(memory.to_preempt, vec![Resource::ZERO; 3]);
    assert_eq!(memory.victims, vec![]);

    // Mirrored: a is over in memory and the newest containers are cpu-heavy. DRF takes one
    // memory-heavy container; memory-only walks the newest first and needs five.
    let mut containers: Vec<ContainerSnapshot> = (1..=9).map(|s| container(1, 1, s, 10, false, memory_heavy)).collect();
    containers.extend((10..=13).map(|s| container(1, 1, s, 10, false, cpu_heavy)));
    let qs = queues(Resource::new(94_000, 49), Resource::new(50_000, 10));
    let drf = run(&qs, &containers, ResourceCalculator::Dominant);
    assert_eq!(drf.ideal, vec![Resource::new(100_000, 59), Resource::new(50_000, 49), Resource::new(50_000, 10)]);
    assert_eq!(drf.to_preempt[1], Resource::new(8_800, 0));
    assert_eq!(ids(&drf.victims), vec![cid(1, 9)]);
    let memory = run(&qs, &containers, ResourceCalculator::Memory);
    assert_eq!(memory.to_preempt[1], Resource::new(8_800, 0));
    assert_eq!(ids(&memory.victims), vec![cid(1, 13), cid(1, 12), cid(1, 11), cid(1, 10), cid(1, 9)]);
}

#[test]
fn victims_are_attributed_to_the_queue_with_the_largest_unmet_deficit() {
    let queues = vec![
        queue("root", None, units(100), units(100), units(55)),
        queue("root.a", Some(0), units(40), units(100), units(0)),
        queue("root.b", Some(0), units(30), units(0), units(30)),
        queue("root.c", Some(0), units(30), units(0), units(25)),
    ];
    let p = plan(&queues, &unit_containers(1, 1, 1, 100, 10), &BTreeSet::new());
    // b and c get what they ask for (30, 25); a keeps its 40 plus the spare 5.
    assert_eq!(p.ideal, vec![units(100), units(45), units(30), units(25)]);
    // (100 − 45) × 0.2 = 11, capped at 10 per round.
    assert_eq!(p.to_preempt[1], units(10));
    // b's unmet deficit (30) leads until it is down to c's (25); ties go to the larger deficit.
    let for_queues: Vec<Option<usize>> = p.victims.iter().map(|v| v.for_queue).collect();
    let (b, c) = (Some(2), Some(3));
    assert_eq!(for_queues, vec![b, b, b, b, b, b, c, b, c, b]);
}

#[test]
fn am_containers_go_last() {
    // a's only non-AM containers cover 2 of the 6 units owed; then AMs, newest app first.
    let queues = seventy_thirty(100);
    let mut containers = Vec::new();
    for app_seq in 1..=2 {
        containers.push(container(1, app_seq, 1, 0, true, units(1)));
        containers.push(container(1, app_seq, 2, 10, false, units(1)));
    }
    containers.extend((3..=98).map(|app_seq| container(1, app_seq, 1, 0, true, units(1))));
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.to_preempt[1], units(6));
    let expected = vec![cid(2, 2), cid(1, 2), cid(98, 1), cid(97, 1), cid(96, 1), cid(95, 1)];
    assert_eq!(ids(&p.victims), expected);
}

#[test]
fn containers_of_a_parent_or_an_unknown_queue_are_ignored() {
    let queues = seventy_thirty(100);
    let mut containers = unit_containers(1, 1, 1, 100, 10);
    containers.push(container(0, 2, 1, 10, false, units(1)));
    containers.push(container(3, 3, 1, 10, false, units(10)));
    containers.push(container(99, 5, 1, 10, false, units(10)));
    let p = plan(&queues, &containers, &BTreeSet::new());
    assert_eq!(p.ideal, vec![units(100), units(70), units(30)]);
    assert_eq!(p.to_preempt, vec![units(6), units(6), units(0)]);
    assert_eq!(ids(&p.victims), (95..=100).rev().map(|s| cid(1, s)).collect::<Vec<_>>());
}

// ---- Fair scheduler ----

fn fair_queue(path: &str, usage: Resource, demand: Resource) -> FairQueueSnapshot {
    FairQueueSnapshot {
        path: path.into(),
        min_share: Resource::ZERO,
        usage,
        demand,
        below_min_share_for_ms: 0,
        min_share_timeout_ms: None,
        fair_share_timeout_ms: None,
        fair_share_threshold: 0.5,
        preemption_allowed: true,
    }
}

fn fair_app(seq: u32, queue: usize, fair_share: Resource, usage: Resource, demand: Resource) -> FairAppSnapshot {
    FairAppSnapshot {
        id: app(seq),
        queue,
        fair_share,
        usage,
        demand,
        below_fair_share_for_ms: 0,
        incoming: Resource::ZERO,
    }
}

/// root.starved (min share 40, using 10, wanting 60) below its min share for `below_ms` with a
/// 10 s timeout; root.busy's app 2 uses 90 (AM + 8 containers of 10) against a fair share of
/// `victim_fair_share`.
struct MinShareCase {
    queues: Vec<FairQueueSnapshot>,
    apps: Vec<FairAppSnapshot>,
    containers: Vec<ContainerSnapshot>,
}

fn min_share_case(below_ms: u64, victim_fair_share: u64) -> MinShareCase {
    let mut starved = fair_queue("root.starved", units(10), units(60));
    starved.min_share = units(40);
    starved.below_min_share_for_ms = below_ms;
    starved.min_share_timeout_ms = Some(10_000);
    let mut containers = vec![container(0, 1, 1, 0, true, units(10)), container(1, 2, 1, 0, true, units(10))];
    containers.extend((2..=9).map(|s| container(1, 2, s, 10, false, units(10))));
    MinShareCase {
        queues: vec![starved, fair_queue("root.busy", units(90), units(90))],
        apps: vec![
            fair_app(1, 0, units(50), units(10), units(60)),
            fair_app(2, 1, units(victim_fair_share), units(90), units(90)),
        ],
        containers,
    }
}

fn fair(case: &MinShareCase, cluster: Resource, marked: &BTreeSet<ContainerId>) -> FairPlan {
    plan_fair(
        cluster,
        &case.queues,
        &case.apps,
        &case.containers,
        marked,
        &FairKnobs::default(),
        ResourceCalculator::Dominant,
    )
}

#[test]
fn fair_min_share_starvation_only_after_the_timeout() {
    let early = fair(&min_share_case(9_999, 50), units(100), &BTreeSet::new());
    assert_eq!(early, FairPlan::default());

    let case = min_share_case(10_000, 50);
    let p = fair(&case, units(100), &BTreeSet::new());
    // min(40, 60) − 10 = 30 units, all for app 1 (its pending demand is 50).
    assert_eq!(
        p.starved,
        vec![Starvation {
            app: app(1),
            queue: 0,
            fair_share_gap: Resource::ZERO,
            min_share_gap: units(30),
            wanted: units(30),
        }]
    );
    assert_eq!(ids(&p.victims), vec![cid(2, 9), cid(2, 8), cid(2, 7)]);
    for v in &p.victims {
        assert_eq!((v.from_queue, v.for_queue, v.for_app), (1, Some(0), Some(app(1))));
    }
    assert_eq!(
        p.victims[0].reason,
        "app application_1_0001 in root.starved is starved for its min share and wants \
         <memory:30720, vCores:30>; app application_1_0002 stays at or above its fair share"
    );

    // Next round, before the kills: app 1 has 30 incoming and asks for nothing more.
    let marked: BTreeSet<ContainerId> = ids(&p.victims).into_iter().collect();
    let mut next = min_share_case(12_000, 50);
    next.apps[0].incoming = units(30);
    assert_eq!(fair(&next, units(100), &marked), FairPlan::default());
    // Without the incoming credit the want comes back, but the marked containers already count
    // against app 2: 90 − 30 = 60, so only one more (60 → 50) keeps it at its fair share.
    let again = fair(&min_share_case(12_000, 50), units(100), &marked);
    assert_eq!(ids(&again.victims), vec![cid(2, 6)]);
}

#[test]
fn fair_preempts_only_above_the_utilization_threshold() {
    let case = min_share_case(10_000, 50);
    // 100 of 125 units allocated is exactly 0.8: not above the threshold.
    let p = fair(&case, units(125), &BTreeSet::new());
    assert_eq!(p.starved.len(), 1);
    assert_eq!(p.starved[0].wanted, units(30));
    assert_eq!(p.victims, vec![]);
    // 100 of 124 is above it.
    let p = fair(&case, units(124), &BTreeSet::new());
    assert_eq!(ids(&p.victims), vec![cid(2, 9), cid(2, 8), cid(2, 7)]);
}

#[test]
fn fair_never_takes_an_app_below_its_fair_share() {
    // App 2's fair share is 80: one container of 10 can go (90 → 80), a second would not.
    let p = fair(&min_share_case(10_000, 80), units(100), &BTreeSet::new());
    assert_eq!(p.starved[0].wanted, units(30));
    assert_eq!(ids(&p.victims), vec![cid(2, 9)]);

    // At its fair share already: nothing.
    let p = fair(&min_share_case(10_000, 90), units(100), &BTreeSet::new());
    assert_eq!(p.victims, vec![]);

    // A queue that disallows preemption is never a source either.
    let mut case = min_share_case(10_000, 50);
    case.queues[1].preemption_allowed = false;
    assert_eq!(fair(&case, units(100), &BTreeSet::new()).victims, vec![]);
}

#[test]
fn fair_share_starvation_uses_threshold_and_demand() {
    // App 1: fair share 60, threshold 0.5 → 30, but it only demands 25; it uses 5.
    let mut starved = fair_queue("root.starved", units(5), units(25));
    starved.fair_share_timeout_ms = Some(15_000);
    let mut app1 = fair_app(1, 0, units(60), units(5), units(25));
    app1.below_fair_share_for_ms = 15_000;
    let queues = vec![starved, fair_queue("root.busy", units(95), units(95))];
    let apps = vec![app1, fair_app(2, 1, units(40), units(95), units(95))];
    let mut containers = vec![container(0, 1, 1, 0, true, units(5))];
    containers.extend((1..=19).map(|s| container(1, 2, s, 10, false, units(5))));
    let p = plan_fair(
        units(100),
        &queues,
        &apps,
        &containers,
        &BTreeSet::new(),
        &FairKnobs::default(),
        ResourceCalculator::Dominant,
    );
    assert_eq!(p.starved.len(), 1);
    assert_eq!(
        (p.starved[0].fair_share_gap, p.starved[0].min_share_gap, p.starved[0].wanted),
        (units(20), units(0), units(20))
    );
    assert_eq!(ids(&p.victims), vec![cid(2, 19), cid(2, 18), cid(2, 17), cid(2, 16)]);
    assert_eq!(
        p.victims[0].reason,
        "app application_1_0001 in root.starved is starved for its fair share and wants \
         <memory:20480, vCores:20>; app application_1_0002 stays at or above its fair share"
    );

    // One millisecond short of the timeout: not starved.
    let mut early = apps.clone();
    early[0].below_fair_share_for_ms = 14_999;
    let p = plan_fair(
        units(100),
        &queues,
        &early,
        &containers,
        &BTreeSet::new(),
        &FairKnobs::default(),
        ResourceCalculator::Dominant,
    );
    assert_eq!(p, FairPlan::default());
}

#[test]
fn fair_prefers_the_fewest_am_containers() {
    // App 1 is fair-share starved; app 2 runs only its AM (20), app 3 an AM and one container
    // (10 each). Cluster 45: 40 allocated is above 0.8.
    let mut starved = fair_queue("root.starved", Resource::ZERO, units(10));
    starved.fair_share_timeout_ms = Some(0);
    let queues = vec![starved, fair_queue("root.busy", units(40), units(40))];
    let apps_wanting = |demand: u64| {
        vec![
            fair_app(1, 0, units(60), Resource::ZERO, units(demand)),
            fair_app(2, 1, Resource::ZERO, units(20), units(20)),
            fair_app(3, 1, units(5), units(20), units(20)),
        ]
    };
    let containers = vec![
        container(1, 2, 1, 0, true, units(20)),
        container(1, 3, 1, 0, true, units(10)),
        container(1, 3, 2, 10, false, units(10)),
    ];
    let run = |apps: &[FairAppSnapshot]| {
        plan_fair(
            units(45),
            &queues,
            apps,
            &containers,
            &BTreeSet::new(),
            &FairKnobs::default(),
            ResourceCalculator::Dominant,
        )
    };
    // Wanting 10: the non-AM container covers it although both AMs are candidates.
    assert_eq!(ids(&run(&apps_wanting(10)).victims), vec![cid(3, 2)]);
    // Wanting 30: the non-AM container, then the single larger AM rather than two AMs.
    assert_eq!(ids(&run(&apps_wanting(100)).victims), vec![cid(3, 2), cid(2, 1)]);
}

// ---- Property test ----

/// A random capacity tree: the root, up to two parents, and leaves with random containers.
#[derive(Debug, Clone)]
struct Scenario {
    cluster: Resource,
    queues: Vec<TestQueue>,
    containers: Vec<ContainerSnapshot>,
    marked: BTreeSet<ContainerId>,
    calc: ResourceCalculator,
}

/// (mem, vcores, is_am, app, priority, marked)
type ContainerSpec = (u64, u32, bool, u32, i32, bool);
/// (parent choice, guarantee %, max extra %, pending %, disabled, containers)
type LeafSpec = (usize, u64, u64, u64, bool, Vec<ContainerSpec>);

fn percent(r: Resource, p: u64) -> Resource {
    Resource::new(r.memory_mb * p / 100, (u64::from(r.vcores) * p / 100) as u32)
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let container = (1u64..40, 1u32..40, prop::bool::weighted(0.45), 1u32..4, 0i32..3, prop::bool::weighted(0.2));
    let leaf =
        (0usize..3, 0u64..60, 0u64..60, 0u64..60, prop::bool::weighted(0.3), prop::collection::vec(container, 0..10));
    (
        100u64..400,
        100u32..400,
        prop::collection::vec((0u64..70, 0u64..40), 0..3),
        prop::collection::vec(leaf, 1..7),
        any::<bool>(),
    )
        .prop_map(build_scenario)
}

/// (cluster memory, cluster vcores, parents (guarantee %, max extra %), leaves, DRF?)
type ScenarioSpec = (u64, u32, Vec<(u64, u64)>, Vec<LeafSpec>, bool);

fn build_scenario((mem, vcores, parents, leaves, dominant): ScenarioSpec) -> Scenario {
    let cluster = Resource::new(mem, vcores);
    let mut queues = vec![TestQueue {
        path: "root".into(),
        parent: None,
        guaranteed: cluster,
        maximum: cluster,
        used: Resource::ZERO,
        pending: Resource::ZERO,
        preemption_disabled: false,
    }];
    for (i, (g, extra)) in parents.iter().enumerate() {
        queues.push(TestQueue {
            path: format!("root.p{i}"),
            parent: Some(0),
            guaranteed: percent(cluster, *g),
            maximum: percent(cluster, (g + extra).min(100)),
            used: Resource::ZERO,
            pending: Resource::ZERO,
            preemption_disabled: false,
        });
    }
    let mut containers = Vec::new();
    let mut marked = BTreeSet::new();
    for (i, (parent, g, extra, pending, disabled, specs)) in leaves.into_iter().enumerate() {
        let q = queues.len();
        let mut used = Resource::ZERO;
        for (seq, (mem, vcores, is_am, app_seq, priority, is_marked)) in specs.into_iter().enumerate() {
            let app_seq = q as u32 * 10 + app_seq;
            let c = ContainerSnapshot {
                id: cid(app_seq, seq as u64),
                queue: q,
                app: app(app_seq),
                app_priority: (app_seq % 2) as i32,
                app_order: u64::from(app_seq),
                priority,
                is_am,
                resource: Resource::new(mem, vcores),
            };
            used += c.resource;
            if is_marked {
                marked.insert(c.id);
            }
            containers.push(c);
        }
        queues.push(TestQueue {
            path: format!("leaf{i}"),
            parent: Some(parent % (parents.len() + 1)),
            guaranteed: percent(cluster, g),
            maximum: percent(cluster, (g + extra).min(100)),
            used,
            pending: percent(cluster, pending),
            preemption_disabled: disabled,
        });
    }
    let calc = if dominant { ResourceCalculator::Dominant } else { ResourceCalculator::Memory };
    Scenario { cluster, queues, containers, marked, calc }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn capacity_plan_invariants(s in scenario()) {
        let p = plan_with(s.cluster, &s.queues, &s.containers, &s.marked, s.calc);
        let n = s.queues.len();
        let is_leaf = |q: usize| !s.queues.iter().any(|o| o.parent == Some(q));
        let by_id: BTreeMap<ContainerId, &ContainerSnapshot> =
            s.containers.iter().map(|c| (c.id, c)).collect();

        // The ideal never exceeds a queue's maximum, and children fit in their parent (up to
        // rounding: half a unit per child).
        for q in 0..n {
            prop_assert!(s.queues[q].maximum.fits(&p.ideal[q]), "{} ideal {} > max {}", s.queues[q].path, p.ideal[q], s.queues[q].maximum);
            let children: Vec<usize> = (0..n).filter(|&c| s.queues[c].parent == Some(q)).collect();
            let sum = children.iter().fold(Resource::ZERO, |a, &c| a + p.ideal[c]);
            let slack = Resource::new(children.len() as u64, children.len() as u32);
            prop_assert!((p.ideal[q] + slack).fits(&sum));
        }

        // Round cap per counted dimension.
        let leaves_total = (0..n).filter(|&q| is_leaf(q)).fold(Resource::ZERO, |a, q| a + p.to_preempt[q]);
        let cap = Resource::new(s.cluster.memory_mb / 10, s.cluster.vcores / 10);
        prop_assert!(cap.fits(&leaves_total), "to_preempt {} over cap {}", leaves_total, cap);

        // Victims: unique, unmarked, from enabled leaves.
        let mut seen = BTreeSet::new();
        for v in &p.victims {
            prop_assert!(seen.insert(v.container));
            prop_assert!(!s.marked.contains(&v.container));
            let c = by_id[&v.container];
            prop_assert_eq!(c.queue, v.from_queue);
            prop_assert!(is_leaf(v.from_queue) && !s.queues[v.from_queue].preemption_disabled);
        }

        let mut selected_memory = 0;
        let mut overshoot_memory = 0;
        for q in (0..n).filter(|&q| is_leaf(q)) {
            let chosen: Vec<&ContainerSnapshot> =
                p.victims.iter().filter(|v| v.from_queue == q).map(|v| by_id[&v.container]).collect();
            let Some((last, before)) = chosen.split_last() else { continue };
            let mine = || s.containers.iter().filter(|c| c.queue == q);
            let marked = mine().filter(|c| s.marked.contains(&c.id)).fold(Resource::ZERO, |a, c| a + c.resource);
            let owed = p.to_preempt[q].saturating_sub(marked);
            // Every container but the last was needed: without the last, the target is not met.
            let without_last = before.iter().fold(Resource::ZERO, |a, c| a + c.resource);
            prop_assert!(!s.calc.is_covered(owed.saturating_sub(without_last)));
            selected_memory += without_last.memory_mb + last.resource.memory_mb;
            overshoot_memory += last.resource.memory_mb;
            // An AM is only taken once every other container of the queue is.
            if chosen.iter().any(|c| c.is_am) {
                for c in mine().filter(|c| !c.is_am && !s.marked.contains(&c.id)) {
                    prop_assert!(chosen.iter().any(|x| x.id == c.id), "AM taken before {}", c.id);
                }
            }
        }
        if s.calc == ResourceCalculator::Memory {
            prop_assert!(selected_memory <= cap.memory_mb + overshoot_memory);
        }
    }
}
