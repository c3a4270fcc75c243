//! Multi-tenant scheduling in the core, stepped by hand: capacity and fair ordering over queue
//! trees, limits and the diagnostics that explain them, ACLs, placement.

use weft_common::protocol::{AllocateRequest, ResourceRequest};
use weft_common::states::{AppState, exit_status};
use weft_common::{ApplicationId, Resource};

use super::*;
use crate::queues::{QueuesConfig, ResourceCalculator};
use crate::testkit::{Env, ask, done, running};

/// Containers (the AM included) an app holds.
fn held(env: &Env, app: ApplicationId) -> usize {
    env.app(app).containers().len()
}

const SLOT: u64 = 1024;

fn slot() -> Resource {
    Resource::new(SLOT, 1)
}

#[test]
fn capacity_70_30_b_reaches_its_guarantee_as_a_gives_back_and_a_keeps_the_rest() {
    let mut env = Env::with_queues(
        "scheduler: capacity\nqueues:\n  a: {capacity: 70%, user-limit-factor: -1}\n  b: {capacity: 30%, user-limit-factor: -1}\n",
    );
    let node = env.add_node("n1", 10 * SLOT, 100);
    let a = env.submit_to("ann", Some("a"), slot()).unwrap();
    env.start_am(a);
    // A fills the idle cluster: elastic beyond its 70% up to its 100% maximum.
    let r = env.allocate_now(a, vec![ask(1, SLOT, 50)]);
    assert_eq!(r.allocated.len(), 9);
    assert_eq!(held(&env, a), 10);
    let b = env.submit_to("bo", Some("b"), slot()).unwrap();
    assert_eq!(env.app(b).state(), AppState::Accepted);
    assert!(env.app(b).diagnostics().contains("waiting for a node"), "{}", env.app(b).diagnostics());

    // A's containers finish one by one while A still wants more: each freed slot goes to the
    // queue furthest below its guarantee.
    let mut a_containers: Vec<ContainerId> = r.allocated.iter().map(|c| c.id).collect();
    for round in 0..6 {
        let finished = a_containers.remove(0);
        env.heartbeat(&node, vec![done(finished, 0)]);
        if round == 0 {
            env.start_am(b);
            env.allocate_now(b, vec![ask(1, SLOT, 50)]);
        }
        let got = env.allocate_now(a, vec![]);
        a_containers.extend(got.allocated.iter().map(|c| c.id));
        let _ = env.allocate_now(b, vec![]);
    }
    assert_eq!((held(&env, a), held(&env, b)), (7, 3), "70/30 of 10 slots");
    let tree = env.core.hierarchy().tree();
    let b_queue = tree.find("root.b").unwrap();
    assert_eq!(env.core.hierarchy().usage(b_queue).used, Resource::new(3 * SLOT, 3));
    env.fx.replies.clear();
}

#[test]
fn fair_weights_1_1_2_converge_to_25_25_50() {
    let mut env = Env::with_queues(
        "scheduler: fair\nplacement-rules:\n  - user\n  - reject\nqueues:\n  u1: {weight: 1}\n  u2: {weight: 1}\n  u3: {weight: 2}\n",
    );
    // Room for the three AMs only; the demand is in before the capacity that serves it.
    env.add_node("ams", 3 * SLOT, 3);
    let apps: Vec<ApplicationId> = ["u1", "u2", "u3"].iter().map(|u| env.submit_to(u, None, slot()).unwrap()).collect();
    assert_eq!(env.app(apps[2]).queue(), "root.u3", "the user rule placed it");
    for app in &apps {
        env.start_am(*app);
        env.allocate_now(*app, vec![ask(1, SLOT, 100)]);
    }
    env.add_node("workers", 40 * SLOT, 400);
    let tasks: Vec<usize> = apps.iter().map(|a| held(&env, *a) - 1).collect();
    assert_eq!(tasks, vec![10, 10, 20], "25% / 25% / 50% of the 40 worker slots");
    env.fx.replies.clear();
}

#[test]
fn instantaneous_fair_shares_split_active_queues_by_weight_and_only_memory_with_the_memory_calculator() {
    let cluster = Resource::new(102_400, 100);
    for (calculator, vcores) in [("dominant", [25, 75]), ("memory", [0, 0])] {
        let yaml = format!(
            "scheduler: fair\nresource-calculator: {calculator}\nqueues:\n  a: {{weight: 1}}\n  b: {{weight: 3}}\n  idle: {{weight: 4}}\n"
        );
        let hierarchy = Hierarchy::new(QueuesConfig::parse(&yaml, "queues.yaml").unwrap(), cluster).unwrap();
        let tree = hierarchy.tree();
        let (a, b, idle) = (tree.find("a").unwrap(), tree.find("b").unwrap(), tree.find("idle").unwrap());
        let mut demand = vec![cluster; tree.queues.len()];
        demand[idle] = Resource::ZERO;
        let shares = hierarchy.instantaneous_fair_shares(&demand);
        assert_eq!(shares[a], Resource::new(25_600, vcores[0]), "{calculator}");
        assert_eq!(shares[b], Resource::new(76_800, vcores[1]), "{calculator}");
        assert_eq!(shares[idle], Resource::ZERO, "{calculator}");
    }
}

#[test]
fn drf_gives_memory_heavy_and_cpu_heavy_apps_equal_dominant_shares() {
    // The classic DRF example scaled 10×: 90 vcores and 180 GB; A's tasks <1 vcore, 4 GB>
    // (memory-dominant), B's <3 vcores, 1 GB> (CPU-dominant).
    let mut env = Env::with_queues(
        "scheduler: fair\ndefaults: {scheduling-policy: drf}\nqueues:\n  a: {weight: 1}\n  b: {weight: 1}\n",
    );
    let tiny_am = Resource::new(128, 1);
    env.add_node("ams", 256, 2);
    let a = env.submit_to("ann", Some("a"), tiny_am).unwrap();
    let b = env.submit_to("bo", Some("b"), tiny_am).unwrap();
    env.start_am(a);
    env.start_am(b);
    let a_task = ResourceRequest { capability: Resource::new(4096, 1), ..ask(1, 4096, 100) };
    let b_task = ResourceRequest { capability: Resource::new(1024, 3), ..ask(1, 1024, 100) };
    env.allocate_now(a, vec![a_task]);
    env.allocate_now(b, vec![b_task]);
    let cluster = Resource::new(180 * 1024, 90);
    env.add_node("n1", cluster.memory_mb, cluster.vcores);
    let cluster = cluster + Resource::new(256, 2);
    let (ua, ub) = (env.app(a).used(), env.app(b).used());
    let drf = ResourceCalculator::Dominant;
    let (da, db) = (drf.share(ua, cluster), drf.share(ub, cluster));
    // CPU runs out first. Until then dominant shares stay within one task of each other; at
    // the end, only A's 1-vcore tasks still fit the last vcores.
    let (a_tasks, b_tasks) = (ua.vcores - 1, (ub.vcores - 1) / 3);
    eprintln!("DRF: A {a_tasks} tasks ({ua}, {da:.3}), B {b_tasks} tasks ({ub}, {db:.3})");
    assert_eq!(b_tasks, 20, "B's CPU-heavy tasks: {ub}");
    assert_eq!(a_tasks, 30, "A's memory-heavy tasks: {ua}");
    assert!((da - db).abs() < 0.07, "dominant shares {da:.3} vs {db:.3}");
    // Memory-only fairness would have given B about 27 tasks instead.
    env.fx.replies.clear();
}

#[test]
fn user_limit_factor_1_caps_a_single_user_at_the_queue_guarantee_and_2_lets_it_double() {
    // As in YARN, the check is on what the user held before the container, so a user ends one
    // container past the limit.
    for (factor, expected) in [(1, 6), (2, 10)] {
        let yaml = format!(
            "scheduler: capacity\nqueues:\n  a: {{capacity: 50%, user-limit-factor: {factor}}}\n  b: {{capacity: 50%}}\n"
        );
        let mut env = Env::with_queues(&yaml);
        env.add_node("n1", 10 * SLOT, 100);
        let app = env.submit_to("ann", Some("a"), slot()).unwrap();
        env.start_am(app);
        env.allocate_now(app, vec![ask(1, SLOT, 50)]);
        assert_eq!(held(&env, app), expected, "user-limit-factor {factor} on an idle cluster");
        let diagnostics = &env.app(app).diagnostics();
        if factor == 1 {
            assert!(diagnostics.contains("pending containers wait: user ann reached the user limit"), "{diagnostics}");
        }
        env.fx.replies.clear();
    }
}

#[test]
fn two_users_with_a_minimum_user_limit_grow_past_the_guarantee_together() {
    let mut env = Env::with_queues(
        "scheduler: capacity\nqueues:\n  a: {capacity: 50%, minimum-user-limit-percent: 50, user-limit-factor: -1, max-am-resource-percent: 1.0}\n  b: {capacity: 50%}\n",
    );
    env.add_node("ams", 4 * SLOT, 4);
    let ann = env.submit_to("ann", Some("a"), slot()).unwrap();
    let bo = env.submit_to("bo", Some("a"), slot()).unwrap();
    env.start_am(ann);
    env.start_am(bo);
    env.allocate_now(ann, vec![ask(1, SLOT, 50)]);
    env.allocate_now(bo, vec![ask(1, SLOT, 50)]);
    env.add_node("workers", 20 * SLOT, 20);
    // Queue a is elastic (b is idle): the users keep growing past its 12-slot guarantee and
    // share the whole 24-slot cluster, within the one-container slack YARN's check allows each.
    let (x, y) = (held(&env, ann), held(&env, bo));
    assert_eq!(x + y, 24, "nothing idle: {x} + {y}");
    assert!(x.abs_diff(y) <= 2, "even shares: {x} vs {y}");
}

#[test]
fn am_limit_holds_apps_in_accepted_and_says_which_limit() {
    let mut env =
        Env::with_queues("scheduler: capacity\nqueues:\n  default: {capacity: 100%, max-am-resource-percent: 0.1}\n");
    env.add_node("n1", 10 * SLOT, 100);
    let half = Resource::new(SLOT / 2, 1);
    let first = env.submit_to("ann", None, half).unwrap();
    let second = env.submit_to("ann", None, half).unwrap();
    let third = env.submit_to("ann", None, half).unwrap();
    assert_eq!(env.fx.take_launches().len(), 2, "1 GiB of AMs fit the 10% limit");
    let app = env.app(third);
    assert_eq!(app.state(), AppState::Accepted);
    assert!(
        app.diagnostics().contains("AM resource limit") && app.diagnostics().contains("max-am-resource-percent"),
        "{}",
        app.diagnostics()
    );
    // When an AM ends, the waiting app starts and its diagnostics clear.
    let req = env.req();
    env.step(Event::Kill { req, app: first, diagnostics: None });
    let _ = env.fx.take_reply(req);
    assert_eq!(env.fx.take_launches().len(), 1);
    assert_eq!(env.app(third).diagnostics(), "");
    let _ = (second, env.stops());
}

#[test]
fn max_parallel_apps_queue_and_user_limits_hold_apps_with_diagnostics() {
    let mut env = Env::with_queues(
        "scheduler: capacity\nusers:\n  bo: {max-parallel-apps: 1}\nqueues:\n  default: {capacity: 100%, max-parallel-apps: 2, max-am-resource-percent: 1.0}\n",
    );
    env.add_node("n1", 10 * SLOT, 100);
    let _bo1 = env.submit_to("bo", None, slot()).unwrap();
    let bo2 = env.submit_to("bo", None, slot()).unwrap();
    assert!(env.app(bo2).diagnostics().contains("user bo runs the maximum of 1"), "{}", env.app(bo2).diagnostics());
    let _ann1 = env.submit_to("ann", None, slot()).unwrap();
    let ann2 = env.submit_to("ann", None, slot()).unwrap();
    assert!(env.app(ann2).diagnostics().contains("max-parallel-apps"), "{}", env.app(ann2).diagnostics());
    assert_eq!(env.fx.take_launches().len(), 2);
}

#[test]
fn stopped_queues_acls_and_application_limits_refuse_submissions() {
    let mut env = Env::with_queues(
        "scheduler: capacity\nroot: {acl-submit-applications: \" \"}\nqueues:\n  open: {capacity: 40%, acl-submit-applications: \"*\", max-applications: 1}\n  team: {capacity: 40%, acl-submit-applications: \"ann devs\"}\n  old: {capacity: 20%, state: stopped, acl-submit-applications: \"*\"}\nusers:\n  dee: {groups: [devs]}\n",
    );
    env.add_node("n1", 10 * SLOT, 100);
    assert_eq!(env.submit_to("bo", Some("old"), slot()), Err(CoreError::QueueStopped("root.old".into())));
    let denied = env.submit_to("bo", Some("team"), slot()).unwrap_err();
    assert_eq!(denied, CoreError::SubmitDenied { user: "bo".into(), queue: "root.team".into() });
    assert_eq!(denied.code().status(), 403);
    assert!(env.submit_to("ann", Some("team"), slot()).is_ok(), "named in the ACL");
    assert!(env.submit_to("dee", Some("team"), slot()).is_ok(), "in an allowed group");
    assert!(env.submit_to("bo", Some("open"), slot()).is_ok());
    assert_eq!(
        env.submit_to("bo", Some("open"), slot()),
        Err(CoreError::QueueFull { queue: "root.open".into(), max: 1 })
    );
    assert!(matches!(env.submit_to("bo", Some("root"), slot()), Err(CoreError::NotALeafQueue(_))));
    assert!(matches!(env.submit_to("bo", Some("nope"), slot()), Err(CoreError::UnknownQueue(_))));
}

#[test]
fn placement_rules_map_users_and_groups_and_can_reject() {
    let mut env = Env::with_queues(
        "scheduler: capacity\nusers:\n  gil: {groups: [ops]}\nplacement-rules:\n  - specified\n  - map-user: {user: cy, queue: root.b}\n  - map-group: {group: ops, queue: root.b}\n  - user\n  - reject\nqueues:\n  a: {capacity: 50%}\n  b: {capacity: 25%}\n  ann: {capacity: 25%}\n",
    );
    env.add_node("n1", 10 * SLOT, 100);
    let queue_of = |env: &Env, id| env.app(id).queue().to_owned();
    let id = env.submit_to("zed", Some("a"), slot()).unwrap();
    assert_eq!(queue_of(&env, id), "a", "specified");
    let id = env.submit_to("cy", None, slot()).unwrap();
    assert_eq!(queue_of(&env, id), "b", "map-user");
    let id = env.submit_to("gil", None, slot()).unwrap();
    assert_eq!(queue_of(&env, id), "b", "map-group");
    let id = env.submit_to("ann", None, slot()).unwrap();
    assert_eq!(queue_of(&env, id), "ann", "user");
    assert!(matches!(env.submit_to("zed", None, slot()), Err(CoreError::PlacementRejected { .. })));
    let _ = env.fx.take_launches();
}

#[test]
fn queue_max_capacity_limits_elasticity() {
    let mut env = Env::with_queues(
        "scheduler: capacity\nqueues:\n  a: {capacity: 50%, max-capacity: 60%, user-limit-factor: -1}\n  b: {capacity: 50%}\n",
    );
    env.add_node("n1", 10 * SLOT, 100);
    let app = env.submit_to("ann", Some("a"), slot()).unwrap();
    env.start_am(app);
    let r = env.allocate_now(app, vec![ask(1, SLOT, 50)]);
    assert_eq!(held(&env, app), 6, "capped at the 60% maximum");
    assert_eq!(r.allocated.len(), 5);
    assert_eq!(r.limit, Resource::ZERO, "headroom is the queue's, not the idle cluster's 4 slots");
    let attempt = env.app(app).current_attempt().unwrap().id();
    let _ = env.allocate(attempt, AllocateRequest { response_id: env.response_id(attempt), ..Default::default() });
    env.fx.replies.clear();
}

const PREEMPTING_70_30: &str = "scheduler: capacity
preemption: {enabled: true, monitoring-interval-ms: 3000, max-wait-before-kill-ms: 15000, natural-termination-factor: 1.0, total-preemption-per-round: 1.0}
queues:
  a: {capacity: 70%, user-limit-factor: -1}
  b: {capacity: 30%, user-limit-factor: -1}
";

#[test]
fn preemption_gives_b_its_guarantee_telling_a_first_then_killing_with_102() {
    let mut env = Env::with_queues(PREEMPTING_70_30);
    let node = env.add_node("n1", 10 * SLOT, 100);
    let a = env.submit_to("ann", Some("a"), slot()).unwrap();
    env.start_am(a);
    let a_first = env.allocate_now(a, vec![ask(1, SLOT, 9)]);
    assert_eq!(held(&env, a), 10, "A fills the idle cluster");
    let a_am = env.app(a).current_attempt().unwrap().am_container().unwrap();
    let b = env.submit_to("bo", Some("b"), slot()).unwrap();

    // Step time (heartbeats keep the node and A's AM alive) until B holds its 30%.
    let mut told_before_kill = std::collections::BTreeSet::new();
    let mut preempted = Vec::new();
    let mut b_started = false;
    let started = env.now;
    loop {
        env.advance(1_000);
        let reports = env.core.node(&node).unwrap().containers().iter().map(|c| running(*c)).collect();
        env.heartbeat(&node, reports);
        let r = env.allocate_now(a, vec![]);
        if let Some(p) = &r.preemption {
            told_before_kill.extend(p.strict.iter().copied());
        }
        for done in &r.completed {
            assert_eq!(done.exit_status, exit_status::PREEMPTED, "nothing but preemption ends A's containers");
            assert!(
                told_before_kill.contains(&done.container_id),
                "the AM was told before {} was killed",
                done.container_id
            );
            preempted.push(done.container_id);
        }
        if !b_started && env.app(b).current_attempt().is_some_and(|t| t.am_container().is_some()) {
            env.start_am(b);
            b_started = true;
        }
        if b_started {
            env.allocate_now(b, vec![ask(1, SLOT, 2)]);
        }
        if held(&env, b) == 3 || env.now - started > 120_000 {
            break;
        }
    }
    assert_eq!((held(&env, a), held(&env, b)), (7, 3), "B reached its 30% guarantee");
    // B's demand arrives in two waves (its AM, then its tasks once the AM runs). With a
    // natural-termination-factor and per-round cap of 1 each wave is marked in one round and
    // killed one grace period later. (With YARN's 0.2 and 10% on this 10-slot cluster, marks
    // trickle in one container per grace period, as they would in YARN.)
    let took = env.now - started;
    assert!(took <= 2 * (15_000 + 3_000) + 2_000, "took {took} ms");
    assert_eq!(preempted.len(), 3);
    assert!(!preempted.contains(&a_am), "the AM container is taken last");
    // Victims are A's newest containers.
    let newest: Vec<ContainerId> = a_first.allocated.iter().rev().take(3).map(|c| c.id).collect();
    let mut chosen = preempted.clone();
    chosen.sort();
    let mut expected = newest.clone();
    expected.sort();
    assert_eq!(chosen, expected);
    // Nothing more is marked once B is satisfied.
    for _ in 0..10 {
        env.advance(1_000);
        let reports = env.core.node(&node).unwrap().containers().iter().map(|c| running(*c)).collect();
        env.heartbeat(&node, reports);
        env.allocate_now(a, vec![]);
        env.allocate_now(b, vec![]);
    }
    assert!(env.core.preemption_marks().is_empty());
    assert_eq!(held(&env, a), 7);
    let _ = env.stops();
}

#[test]
fn a_queue_that_opts_out_of_preemption_is_never_a_victim() {
    let mut env = Env::with_queues(&PREEMPTING_70_30.replace(
        "a: {capacity: 70%, user-limit-factor: -1}",
        "a: {capacity: 70%, user-limit-factor: -1, preemptible: false}",
    ));
    let node = env.add_node("n1", 10 * SLOT, 100);
    let a = env.submit_to("ann", Some("a"), slot()).unwrap();
    env.start_am(a);
    env.allocate_now(a, vec![ask(1, SLOT, 9)]);
    let _b = env.submit_to("bo", Some("b"), slot()).unwrap();
    for _ in 0..40 {
        env.advance(1_000);
        let reports = env.core.node(&node).unwrap().containers().iter().map(|c| running(*c)).collect();
        env.heartbeat(&node, reports);
        let r = env.allocate_now(a, vec![]);
        assert!(r.preemption.is_none() && r.completed.is_empty());
    }
    assert_eq!(held(&env, a), 10);
}

#[test]
fn preempted_space_is_freed_on_one_node_so_a_larger_container_fits() {
    // A's 1-slot containers spread over two nodes; B's AM needs 2 slots on one node. Victims
    // scattered across nodes would free space nothing of B fits in, and A would retake it.
    let mut env = Env::with_queues(PREEMPTING_70_30);
    let n1 = env.add_node("n1", 5 * SLOT, 50);
    let n2 = env.add_node("n2", 5 * SLOT, 50);
    let a = env.submit_to("ann", Some("a"), slot()).unwrap();
    env.start_am(a);
    env.allocate_now(a, vec![ask(1, SLOT, 9)]);
    assert_eq!(held(&env, a), 10);
    let b = env.submit_to("bo", Some("b"), Resource::new(2 * SLOT, 1)).unwrap();
    let started = env.now;
    while env.app(b).current_attempt().is_some_and(|t| t.am_container().is_none()) && env.now - started < 60_000 {
        env.advance(1_000);
        for n in [&n1, &n2] {
            let reports = env.core.node(n).unwrap().containers().iter().map(|c| running(*c)).collect();
            env.heartbeat(n, reports);
        }
        // A keeps wanting more, as a real AM replacing lost work would.
        env.allocate_now(a, vec![ask(1, SLOT, 20)]);
    }
    assert!(env.app(b).current_attempt().unwrap().am_container().is_some(), "B's 2-slot AM found room");
    assert!(env.now - started <= 15_000 + 2 * 3_000, "within one grace period and a round or two");
    env.fx.replies.clear();
    let _ = env.fx.take_launches();
}

fn reload(env: &mut Env, yaml: &str, by: Option<&str>) -> Result<crate::queues::ReloadPlan, CoreError> {
    let config = QueuesConfig::parse(yaml, "queues.yaml").expect("parses");
    let req = env.req();
    env.step(Event::ReloadQueues { req, config: Box::new(config), requested_by: by.map(str::to_owned) });
    let Reply::ReloadQueues(r) = env.fx.take_reply(req) else { panic!() };
    r
}

#[test]
fn reload_applies_valid_changes_with_apps_running_and_refuses_removing_busy_queues() {
    let before = "scheduler: capacity\nroot: {acl-administer-queue: \"ops\"}\nqueues:\n  a: {capacity: 70%}\n  b: {capacity: 30%}\n";
    let mut env = Env::with_queues(before);
    env.add_node("n1", 10 * SLOT, 100);
    let app = env.submit_to("ann", Some("a"), slot()).unwrap();
    env.start_am(app);
    env.allocate_now(app, vec![ask(1, SLOT, 3)]);

    // Only queue administers may reload.
    let changed = "scheduler: capacity\nroot: {acl-administer-queue: \"ops\"}\nqueues:\n  a: {capacity: 50%}\n  b: {capacity: 30%}\n  c: {capacity: 20%}\n";
    assert_eq!(reload(&mut env, changed, Some("ann")), Err(CoreError::AdminDenied("ann".into())));
    let plan = reload(&mut env, changed, Some("ops")).unwrap();
    assert_eq!(plan.added, vec!["root.c".to_owned()]);
    let tree = env.core.hierarchy().tree();
    let a = tree.find("root.a").unwrap();
    assert_eq!(tree.queues[a].guaranteed, Resource::new(5 * SLOT, 50), "new capacity in force");
    assert_eq!(env.core.hierarchy().usage(a).used, Resource::new(4 * SLOT, 4), "running app kept its usage");
    assert_eq!(env.app(app).state(), AppState::Running);

    // Removing queue a, which holds the app, is refused and nothing changes.
    let without_a = "scheduler: capacity\nqueues:\n  b: {capacity: 60%}\n  c: {capacity: 40%}\n";
    let err = reload(&mut env, without_a, None).unwrap_err();
    assert!(matches!(&err, CoreError::ReloadRefused(m) if m.contains("root.a")), "{err}");
    assert!(env.core.hierarchy().tree().find("root.a").is_some(), "old configuration intact");
    assert_eq!(env.core.hierarchy().config(), &QueuesConfig::parse(changed, "x").unwrap());

    // Stopping it is fine: running apps go on, new ones are refused.
    let stopped = changed.replace("a: {capacity: 50%}", "a: {capacity: 50%, state: stopped}");
    reload(&mut env, &stopped, None).unwrap();
    assert_eq!(env.submit_to("ann", Some("a"), slot()), Err(CoreError::QueueStopped("root.a".into())));
    assert_eq!(env.app(app).state(), AppState::Running);
    let _ = env.stops();
}

#[test]
fn apps_move_between_queues_with_their_usage_and_priorities_are_capped() {
    let mut env = Env::with_queues(
        "scheduler: capacity\nqueues:\n  a: {capacity: 50%, max-application-priority: 5}\n  b: {capacity: 30%, max-capacity: 30%}\n  c: {capacity: 20%}\n",
    );
    env.add_node("n1", 10 * SLOT, 100);
    let app = env.submit_to("ann", Some("a"), slot()).unwrap();
    env.start_am(app);
    env.allocate_now(app, vec![ask(1, SLOT, 3)]);
    let tree = env.core.hierarchy().tree();
    let (a, b, c) = (tree.find("root.a").unwrap(), tree.find("root.b").unwrap(), tree.find("root.c").unwrap());

    let step = |env: &mut Env, event: Event| {
        env.step(event);
    };
    let req = env.req();
    step(&mut env, Event::MoveApp { req, app, queue: "b".into() });
    assert!(
        matches!(env.fx.take_reply(req), Reply::MoveApp(Err(CoreError::MoveRefused(_)))),
        "4 slots exceed b's 30% maximum"
    );
    let req = env.req();
    step(&mut env, Event::MoveApp { req, app, queue: "root.c".into() });
    assert_eq!(env.fx.take_reply(req), Reply::MoveApp(Ok("c".into())));
    assert_eq!(env.core.hierarchy().usage(c).used, Resource::new(4 * SLOT, 4));
    assert_eq!(env.core.hierarchy().usage(a).used, Resource::ZERO);
    assert_eq!(env.core.hierarchy().usage(b).apps, 0);
    assert!(matches!(env.fx.take_persisted().last(), Some(StoreOp::PutApp(r)) if r.queue == "c"));

    let req = env.req();
    step(&mut env, Event::SetPriority { req, app, priority: 99 });
    assert_eq!(env.fx.take_reply(req), Reply::SetPriority(Ok(0)), "c allows at most the default maximum, 0");
    let req = env.req();
    step(&mut env, Event::Kill { req, app, diagnostics: None });
    let _ = env.fx.take_reply(req);
    let req = env.req();
    step(&mut env, Event::SetPriority { req, app, priority: 1 });
    assert!(matches!(env.fx.take_reply(req), Reply::SetPriority(Err(CoreError::AppFinished { .. }))));
    let _ = env.stops();
}

#[test]
fn fair_min_share_preemption_gives_a_starved_queue_its_min_share_after_the_timeout() {
    let mut env = Env::with_queues(
        "scheduler: fair
preemption: {enabled: true, monitoring-interval-ms: 1000, max-wait-before-kill-ms: 3000}
queues:
  a: {weight: 1}
  b: {weight: 1, min-resources: {memory-mb: 3072, vcores: 3}, min-share-preemption-timeout-ms: 5000}
",
    );
    let node = env.add_node("n1", 10 * SLOT, 100);
    let a = env.submit_to("ann", Some("a"), slot()).unwrap();
    env.start_am(a);
    env.allocate_now(a, vec![ask(1, SLOT, 9)]);
    let a_am = env.app(a).current_attempt().unwrap().am_container().unwrap();
    assert_eq!(held(&env, a), 10, "a fills the idle cluster");
    let b = env.submit_to("bo", Some("b"), slot()).unwrap();
    let started = env.now;
    let mut b_running = false;
    let mut first_kill = None;
    while held(&env, b) < 3 && env.now - started < 60_000 {
        env.advance(1_000);
        let reports = env.core.node(&node).unwrap().containers().iter().map(|c| running(*c)).collect();
        env.heartbeat(&node, reports);
        let r = env.allocate_now(a, vec![]);
        for done in &r.completed {
            assert_eq!(done.exit_status, exit_status::PREEMPTED);
            first_kill.get_or_insert(env.now - started);
        }
        if !b_running && env.app(b).current_attempt().is_some_and(|t| t.am_container().is_some()) {
            env.start_am(b);
            env.allocate_now(b, vec![ask(1, SLOT, 2)]);
            b_running = true;
        } else if b_running {
            env.allocate_now(b, vec![]);
        }
    }
    assert_eq!(held(&env, b), 3, "b reached its min share");
    let first_kill = first_kill.expect("a container was preempted");
    assert!(first_kill > 5_000, "nothing before the min-share timeout: first kill at {first_kill} ms");
    assert!(env.core.container(&a_am).is_some(), "a's AM is untouched");
    env.fx.replies.clear();
    let _ = env.stops();
}

// ---------------------------------------------------------------------------------------------
// Queues created by placement rules (`create: true`).

/// Capacity mode: `root.users` takes per-user queues (its children use weights); apps without a
/// queue that no rule places go to `root.web`, which sorts after `root.users`, so its index
/// moves whenever a queue is created.
const CREATING_CAPACITY: &str = "scheduler: capacity
placement-rules:
  - specified
  - user: {parent: root.users, create: true}
  - default: {queue: root.web}
queues:
  users:
    capacity: 50%
    queues:
      ann: {capacity: 1w}
  web: {capacity: 50%}
";

#[test]
fn user_rule_with_create_makes_a_weight_1_queue_under_a_weight_parent_and_reuses_it() {
    let mut env = Env::with_queues(CREATING_CAPACITY);
    env.add_node("n1", 20 * SLOT, 20);
    // An app in a queue whose index shifts when root.users.zoe appears before it.
    let web_app = env.submit_to("walt", Some("web"), slot()).unwrap();
    env.start_am(web_app);
    env.allocate_now(web_app, vec![ask(1, SLOT, 2)]);

    let first = env.submit_to("zoe", None, slot()).unwrap();
    assert_eq!(env.app(first).queue(), "zoe", "capacity mode shows the leaf name");
    let tree = env.core.hierarchy().tree();
    let zoe = tree.find("root.users.zoe").expect("created and visible like any queue");
    let created = &tree.queues[zoe];
    assert!(created.is_leaf);
    assert!(
        matches!(&created.settings, crate::queues::QueueSettings::Capacity(c) if c.capacity == crate::queues::Capacity::Weight(1.0))
    );
    assert_eq!(created.guaranteed, Resource::new(5 * SLOT, 5), "1w of 2w in root.users' 10 slots");
    assert_eq!(env.app(first).queue_index(), Some(zoe));
    let web = tree.find("root.web").unwrap();
    assert_eq!(env.app(web_app).queue_index(), Some(web), "the app in root.web follows its queue's new index");
    assert_eq!(env.core.hierarchy().usage(web).used, Resource::new(3 * SLOT, 3));
    let created_queues: Vec<&str> = env.core.hierarchy().created_queues().iter().map(String::as_str).collect();
    assert_eq!(created_queues, ["root.users.zoe"]);

    // The queue carries usage, and zoe's second app reuses it.
    env.start_am(first);
    env.allocate_now(first, vec![ask(1, SLOT, 2)]);
    let queues_before = env.core.hierarchy().tree().queues.len();
    let second = env.submit_to("zoe", None, slot()).unwrap();
    assert_eq!(env.app(second).queue_index(), Some(zoe));
    assert_eq!(env.core.hierarchy().tree().queues.len(), queues_before);
    let usage = env.core.hierarchy().usage(zoe);
    assert_eq!((usage.apps, usage.used), (2, Resource::new(3 * SLOT, 3)), "the second AM waits for the AM limit");
    assert!(env.app(second).diagnostics().contains("queue root.users.zoe's AM resource limit"));
    env.allocate_now(web_app, vec![ask(1, SLOT, 1)]);
    assert_eq!(env.core.hierarchy().usage(web).used, Resource::new(4 * SLOT, 4));

    // Existing queues win; a dot in a user name becomes `_dot_`, as in YARN.
    let ann = env.submit_to("ann", None, slot()).unwrap();
    assert_eq!(env.app(ann).queue(), "ann");
    let dotted = env.submit_to("john.doe", None, slot()).unwrap();
    assert_eq!(env.app(dotted).queue(), "john_dot_doe");
    assert!(env.core.hierarchy().tree().find("root.users.john_dot_doe").is_some());
    env.fx.replies.clear();
    let _ = env.fx.take_launches();
}

#[test]
fn primary_group_user_with_create_makes_the_group_parent_and_the_user_leaf_in_fair_mode() {
    let mut env = Env::with_queues(
        "scheduler: fair
users:
  zoe: {groups: [eng]}
  max: {groups: [eng, ops]}
  olga: {groups: [ops]}
placement-rules:
  - primary-group-user: {parent: root, create: true}
  - reject
queues:
  ops: {type: parent, weight: 3}
",
    );
    env.add_node("n1", 10 * SLOT, 10);
    let zoe = env.submit_to("zoe", None, slot()).unwrap();
    assert_eq!(env.app(zoe).queue(), "root.eng.zoe");
    let max = env.submit_to("max", None, slot()).unwrap();
    assert_eq!(env.app(max).queue(), "root.eng.max", "the created group parent takes more users");
    let olga = env.submit_to("olga", None, slot()).unwrap();
    assert_eq!(env.app(olga).queue(), "root.ops.olga", "under an existing childless `type: parent`");
    let created: Vec<&str> = env.core.hierarchy().created_queues().iter().map(String::as_str).collect();
    assert_eq!(created, ["root.eng", "root.eng.max", "root.eng.zoe", "root.ops.olga"]);

    let tree = env.core.hierarchy().tree();
    let eng = tree.find("root.eng").unwrap();
    assert!(!tree.queues[eng].is_leaf && tree.queues[eng].accepts_dynamic_children);
    assert!(matches!(&tree.queues[eng].settings, crate::queues::QueueSettings::Fair(f) if f.weight == 1.0));
    let ops = tree.find("root.ops").unwrap();
    assert_eq!(env.core.hierarchy().usage(eng).apps, 2);
    assert_eq!(env.core.hierarchy().usage(ops).apps, 1);
    // Steady shares follow the weights: ops 3 : eng 1.
    assert_eq!(tree.queues[ops].guaranteed.memory_mb, 3 * tree.queues[eng].guaranteed.memory_mb);

    // Without groups the rule cannot match, and `reject` decides.
    let err = env.submit_to("nobody", None, slot()).unwrap_err();
    assert!(matches!(err, CoreError::PlacementRejected { .. }), "{err}");
    env.fx.replies.clear();
    let _ = env.fx.take_launches();
}

#[test]
fn a_queue_that_cannot_be_created_falls_through_and_specified_still_rejects_unknown_names() {
    let mut env = Env::with_queues(
        "scheduler: capacity
users:
  zoe: {groups: [eng]}
  max: {groups: [ops]}
  lee: {groups: [qa]}
  deb: {groups: [ops]}
root: {acl-submit-applications: \" \"}
placement-rules:
  - specified: {create: true}
  - primary-group-user: {parent: root.groups, create: true}
  - default: {queue: root.default}
queues:
  default: {capacity: 50%, acl-submit-applications: \"*\"}
  groups:
    capacity: 50%
    acl-submit-applications: \"lee\"
    queues:
      eng:
        capacity: 1w
        queues:
          fixed: {capacity: 100%}
      ops: {capacity: 1w, type: parent, acl-submit-applications: \"max\"}
  other:
    capacity: 0%
    queues:
      deb: {capacity: 100%}
",
    );
    env.add_node("n1", 10 * SLOT, 10);
    // root.groups.eng's children use percentages, so it takes no created queues: fall through.
    let zoe = env.submit_to("zoe", None, slot()).unwrap();
    assert_eq!(env.app(zoe).queue(), "default");
    // A missing group parent is created under root.groups, which does take created queues.
    let lee = env.submit_to("lee", None, slot()).unwrap();
    assert_eq!(env.app(lee).queue(), "lee");
    assert!(env.core.hierarchy().tree().find("root.groups.qa.lee").is_some());
    // The leaf name deb is taken (root.other.deb), so root.groups.ops.deb cannot exist: fall through.
    let deb = env.submit_to("deb", None, slot()).unwrap();
    assert_eq!(env.app(deb).queue(), "default");
    // A user name that cannot be a queue name falls through too.
    let spaced = env.submit_to("bad user", None, slot()).unwrap();
    assert_eq!(env.app(spaced).queue(), "default");

    // The created queue inherits the parent's ACL, checked before anything is created.
    let queues_before = env.core.hierarchy().tree().queues.len();
    let denied = env.submit_to("olga", Some("root.groups.ops.olga"), slot()).unwrap_err();
    assert_eq!(denied, CoreError::SubmitDenied { user: "olga".into(), queue: "root.groups.ops.olga".into() });
    assert_eq!(env.core.hierarchy().tree().queues.len(), queues_before, "a refused submission creates nothing");
    // `specified` with create: a missing queue under a parent that takes created queues ...
    let max = env.submit_to("max", Some("root.groups.ops.batch"), slot()).unwrap();
    assert_eq!(env.app(max).queue(), "batch");
    // ... but an unknown name it cannot create is rejected, not sent elsewhere.
    let typo = env.submit_to("zoe", Some("root.groups.eng.typo"), slot()).unwrap_err();
    assert_eq!(typo, CoreError::UnknownQueue("root.groups.eng.typo".into()));
    env.fx.replies.clear();
    let _ = env.fx.take_launches();
}

#[test]
fn the_number_of_created_queues_per_parent_is_capped() {
    let config = QueuesConfig::parse(
        "scheduler: fair\nplacement-rules:\n  - user: {parent: root.users, create: true}\n  - reject\nqueues:\n  users: {type: parent}\n",
        "queues.yaml",
    )
    .unwrap();
    let mut hierarchy = Hierarchy::new(config, Resource::new(100 * SLOT, 100)).unwrap();
    for n in 0..hierarchy::MAX_CREATED_QUEUES_PER_PARENT {
        let user = format!("u{n}");
        let Ok(hierarchy::QueuePlacement::Create { path }) = hierarchy.place(None, &user) else { panic!("{user}") };
        hierarchy.create_queue(&path).unwrap();
    }
    let err = hierarchy.place(None, "one-too-many").unwrap_err();
    assert!(
        matches!(&err, CoreError::InvalidSubmission { field: "queue", message }
            if message.contains("root.users already holds the maximum of 1000 queues")),
        "{err}"
    );
    assert!(
        matches!(hierarchy.place(None, "u7"), Ok(hierarchy::QueuePlacement::Existing(_))),
        "existing ones still work"
    );
}

#[test]
fn reloads_keep_busy_created_queues_and_drop_idle_ones() {
    let mut env = Env::with_queues(CREATING_CAPACITY);
    env.add_node("n1", 20 * SLOT, 20);
    let app = env.submit_to("zoe", None, slot()).unwrap();
    env.start_am(app);
    env.allocate_now(app, vec![ask(1, SLOT, 2)]);
    let idle = env.submit_to("ivy", None, slot()).unwrap();
    let req = env.req();
    env.step(Event::Kill { req, app: idle, diagnostics: None });
    let _ = env.fx.take_reply(req);

    // The file never lists root.users.zoe; while it holds an app, a reload keeps it.
    let edited = CREATING_CAPACITY.replace("web: {capacity: 50%}", "web: {capacity: 50%, max-capacity: 80%}");
    let plan = reload(&mut env, &edited, None).unwrap();
    assert_eq!(plan.removed, vec!["root.users.ivy".to_owned()], "the idle created queue is dropped");
    let tree = env.core.hierarchy().tree();
    let zoe = tree.find("root.users.zoe").expect("kept while busy");
    assert!(tree.find("root.users.ivy").is_none());
    assert_eq!(env.app(app).queue_index(), Some(zoe));
    assert_eq!(env.core.hierarchy().usage(zoe).used, Resource::new(3 * SLOT, 3));
    let created: Vec<&str> = env.core.hierarchy().created_queues().iter().map(String::as_str).collect();
    assert_eq!(created, ["root.users.zoe"]);

    // A file whose root.users no longer takes created queues would strand the app: refused.
    let percent = edited
        .replace("ann: {capacity: 1w}", "ann: {capacity: 100%}")
        .replace("  - user: {parent: root.users, create: true}\n", "");
    let err = reload(&mut env, &percent, None).unwrap_err();
    assert!(matches!(&err, CoreError::ReloadRefused(m) if m.contains("root.users.zoe")), "{err}");
    assert!(env.core.hierarchy().tree().find("root.users.zoe").is_some(), "old configuration intact");

    // Once its app has finished, the next reload removes it.
    let req = env.req();
    env.step(Event::Kill { req, app, diagnostics: None });
    let _ = env.fx.take_reply(req);
    let plan = reload(&mut env, &percent, None).unwrap();
    assert_eq!(plan.removed, vec!["root.users.zoe".to_owned()]);
    assert!(env.core.hierarchy().tree().find("root.users.zoe").is_none());
    assert!(env.core.hierarchy().created_queues().is_empty());
    assert_eq!(env.app(app).queue_index(), None, "a finished app of a removed queue keeps only its name");
    let _ = env.stops();
}

/// Runs one app of `user` (no queue named) under `queues_yaml` and returns what a restarted RM
/// loads from the store.
fn state_with_one_running_app(queues_yaml: &str, user: &str) -> (ApplicationId, crate::records::RecoveredState) {
    let mut store = crate::recovery_tests::TestStore::default();
    let epoch = store.claim_epoch();
    let mut env = Env::with_queues(queues_yaml);
    env.core.cfg.epoch = epoch;
    env.add_node("n1", 20 * SLOT, 20);
    let app = env.submit_to(user, None, slot()).unwrap();
    env.start_am(app);
    store.apply(epoch, &env.fx.take_persisted());
    (app, store.load())
}

/// A new RM incarnation under `queues_yaml` that recovered `state`.
fn restarted(queues_yaml: &str, cluster_ts: u64, state: crate::records::RecoveredState) -> Core {
    let mut cfg = CoreConfig::for_tests();
    cfg.queues = QueuesConfig::parse(queues_yaml, "queues.yaml").unwrap();
    cfg.cluster_ts = cluster_ts;
    let mut core = Core::new(cfg).unwrap();
    core.recover(state, 50_000, &mut RecordingEffects::default()).unwrap();
    core
}

#[test]
fn restart_creates_the_queue_of_an_unfinished_app_again_or_fails_the_app_without_a_create_rule() {
    let (app, state) = state_with_one_running_app(CREATING_CAPACITY, "zoe");

    // The rule that created root.users.zoe still would: it is created again.
    let core = restarted(CREATING_CAPACITY, 2_000, state.clone());
    let recovered = core.app(app).unwrap();
    assert_eq!(recovered.state(), AppState::Accepted, "{}", recovered.diagnostics());
    let zoe = core.hierarchy().tree().find("root.users.zoe").expect("created again");
    assert_eq!(recovered.queue_index(), Some(zoe));
    assert_eq!(core.hierarchy().usage(zoe).apps, 1);
    assert!(core.hierarchy().created_queues().contains("root.users.zoe"));

    // Without a `create: true` rule, the queue is gone for good and the app fails.
    let no_create = CREATING_CAPACITY.replace("  - user: {parent: root.users, create: true}\n", "");
    let core = restarted(&no_create, 3_000, state);
    let failed = core.app(app).unwrap();
    assert_eq!(failed.state(), AppState::Failed);
    assert_eq!(failed.diagnostics(), "queue zoe no longer exists after the ResourceManager restarted");
}

#[test]
fn restart_puts_a_created_queue_back_where_its_rule_made_it() {
    // Capacity mode records only the leaf name `zoe`, and root takes created queues too: the
    // user rule's root.users.zoe wins over `specified`'s guess root.zoe.
    let weights = "scheduler: capacity
placement-rules:
  - specified: {create: true}
  - user: {parent: root.users, create: true}
  - reject
queues:
  users: {capacity: 1w, type: parent}
  web: {capacity: 1w}
";
    let (app, state) = state_with_one_running_app(weights, "zoe");
    let core = restarted(weights, 2_000, state);
    let tree = core.hierarchy().tree();
    assert_eq!(core.app(app).unwrap().queue_index(), tree.find("root.users.zoe"));
    assert!(tree.find("root.zoe").is_none());

    // Fair mode records the full path, created again with its created group parent.
    let fair = "scheduler: fair
users: {zoe: {groups: [eng]}}
placement-rules:
  - primary-group-user: {parent: root, create: true}
  - reject
";
    let (app, state) = state_with_one_running_app(fair, "zoe");
    let core = restarted(fair, 2_000, state);
    assert_eq!(core.app(app).unwrap().queue(), "root.eng.zoe");
    assert_eq!(core.app(app).unwrap().queue_index(), core.hierarchy().tree().find("root.eng.zoe"));
    let created: Vec<&str> = core.hierarchy().created_queues().iter().map(String::as_str).collect();
    assert_eq!(created, ["root.eng", "root.eng.zoe"]);
}
