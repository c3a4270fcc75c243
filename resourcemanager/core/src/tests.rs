//! Core tests: the core is stepped by hand with a virtual clock; every effect is recorded and
//! must be examined; invariants are checked after every step (in `after_step`).

use proptest::prelude::*;
use weft_common::protocol::{
    AllocateRequest, AllocateResponse, AmCommand, ContainerReport, FinishAmRequest, NodeAction, NodeHeartbeatRequest,
    RegisterAmRequest, ResourceRequest,
};
use weft_common::rest::{AmContainerSpec, ApplicationSubmissionContext};
use weft_common::states::{AppState, AttemptState, FinalStatus, NodeState, exit_status};
use weft_common::token::{self, AmToken, ContainerToken};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

use super::*;
use crate::queues::QueuesConfig;
use crate::testkit::{Env, ask, done, running};

#[test]
fn submit_is_acknowledged_after_persisting_and_launches_the_am_with_credentials() {
    let mut env = Env::new();
    let node = env.add_node("n1", 4096, 4);
    let id = env.submit();
    assert_eq!(env.app(id).state(), AppState::Accepted);
    let attempt_write = env.fx.take_persisted();
    assert!(attempt_write.iter().any(|op| matches!(op, StoreOp::PutAttempt(a) if a.state == AttemptState::Scheduled)));
    assert!(attempt_write.iter().any(|op| matches!(op, StoreOp::PutAttempt(a) if a.state == AttemptState::Allocated)));

    let launch = env.fx.take_launches().pop().unwrap();
    assert_eq!(launch.node_http_address, "http://n1:8042");
    assert_eq!(launch.container_id.to_string(), format!("container_e1_1000_0001_01_000001"));
    let t = ContainerToken::verify_for_node(
        &launch.container_token,
        &[CoreConfig::for_tests().container_token_key],
        &node,
        env.now,
    )
    .unwrap();
    assert_eq!(t.resource, Resource::new(256, 1));
    assert_eq!(t.user, "alice");
    let env_vars = &launch.launch_context.environment;
    let am: AmToken = token::verify(&env_vars["WEFT_AM_TOKEN"], &[CoreConfig::for_tests().am_token_key]).unwrap();
    assert_eq!(am.attempt_id, AttemptId::new(id, 1));
    assert_eq!(env_vars["WEFT_RM_ADDRESSES"], "http://127.0.0.1:8088");
    assert_eq!(env.core.node(&node).unwrap().used(), Resource::new(256, 1));
    env.fx.assert_drained();
}

#[test]
fn asks_are_served_at_once_spread_over_nodes_and_replace_earlier_asks() {
    let mut env = Env::new();
    let n1 = env.add_node("n1", 2048, 4);
    let n2 = env.add_node("n2", 2048, 4);
    let (id, launch) = env.running_app();
    let attempt = launch.container_id.attempt;
    // Ask 8, then replace with 4 in the same request round: only 4 are outstanding.
    let r = env
        .allocate(attempt, AllocateRequest { response_id: 0, asks: vec![ask(1, 100, 4)], ..Default::default() })
        .unwrap()
        .unwrap();
    assert_eq!(r.response_id, 1);
    assert_eq!(r.allocated.len(), 4, "allocated in the same response");
    assert!(r.allocated.iter().all(|c| c.resource == Resource::new(128, 1)), "rounded up to the minimum allocation");
    let on = |n: &NodeId| r.allocated.iter().filter(|c| &c.node_id == n).count();
    assert!(on(&n1) >= 1 && on(&n2) >= 1, "spread over both nodes: {:?}", r.allocated);
    assert!(env.app(id).asks().is_empty());

    // Replace semantics: 3 outstanding then 1 outstanding leaves 1.
    env.core.handle(Event::Tick, env.now, &mut env.fx);
    let big = ask(2, 2048, 3);
    let r = env
        .allocate(attempt, AllocateRequest { response_id: 1, asks: vec![big.clone()], ..Default::default() })
        .unwrap()
        .unwrap();
    assert!(r.allocated.is_empty(), "no node has 2 GiB free");
    let r = env
        .allocate(
            attempt,
            AllocateRequest {
                response_id: 2,
                asks: vec![ResourceRequest { num_containers: 1, ..big }],
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
    assert!(r.allocated.is_empty());
    assert_eq!(env.app(id).pending_containers(), 1);
    env.fx.assert_drained();
}

#[test]
fn long_poll_is_answered_when_capacity_appears_or_at_its_deadline() {
    let mut env = Env::new();
    env.add_node("n1", 512, 2);
    let (_, launch) = env.running_app();
    let attempt = launch.container_id.attempt;
    let parked = env.allocate(
        attempt,
        AllocateRequest { response_id: 0, asks: vec![ask(1, 512, 1)], wait_ms: 5_000, ..Default::default() },
    );
    assert!(parked.is_none(), "held while nothing can be allocated");
    // A node appears: the held allocate is answered with the container right away.
    let req_before = env.last_req();
    env.add_node("n2", 1024, 2);
    let (req, reply) = env.fx.replies.pop().expect("parked allocate answered");
    assert!(req <= req_before);
    let Reply::Allocate(Ok(r)) = reply else { panic!() };
    assert_eq!(r.allocated.len(), 1);
    assert_eq!(r.allocated[0].node_id, NodeId("n2:8042".into()));

    // Nothing to deliver: answered empty at the deadline.
    assert!(env.allocate(attempt, AllocateRequest { response_id: 1, wait_ms: 1_000, ..Default::default() }).is_none());
    env.advance(999);
    assert!(env.fx.replies.is_empty());
    env.advance(1);
    let (_, Reply::Allocate(Ok(r))) = env.fx.replies.pop().unwrap() else { panic!() };
    assert!(r.allocated.is_empty() && r.response_id == 2);
    env.fx.assert_drained();
}

#[test]
fn response_ids_follow_yarn_duplicate_semantics() {
    let mut env = Env::new();
    env.add_node("n1", 4096, 4);
    let (_, launch) = env.running_app();
    let attempt = launch.container_id.attempt;
    let first = env
        .allocate(attempt, AllocateRequest { response_id: 0, asks: vec![ask(1, 128, 2)], ..Default::default() })
        .unwrap()
        .unwrap();
    // The same request again (its response was lost) gets the same response, no new allocation.
    let again = env
        .allocate(attempt, AllocateRequest { response_id: 0, asks: vec![ask(1, 128, 2)], ..Default::default() })
        .unwrap()
        .unwrap();
    assert_eq!(first, again);
    let err = env.allocate(attempt, AllocateRequest { response_id: 7, ..Default::default() }).unwrap().unwrap_err();
    assert!(matches!(err, CoreError::InvalidResponseId { expected: 1, got: 7, .. }));
}

#[test]
fn invalid_asks_and_foreign_releases_are_rejected_without_changing_anything() {
    let mut env = Env::new();
    env.add_node("n1", 8192, 8);
    let (a, la) = env.running_app();
    let (_, lb) = env.running_app();
    let att_a = la.container_id.attempt;
    let err = env
        .allocate(
            att_a,
            AllocateRequest { response_id: 0, asks: vec![ask(1, 128, 1), ask(2, 9999, 1)], ..Default::default() },
        )
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, CoreError::ResourceAboveMaximum { .. }), "{err}");
    assert!(env.app(a).asks().is_empty(), "a rejected request changes nothing");
    let err = env
        .allocate(att_a, AllocateRequest { response_id: 0, releases: vec![lb.container_id], ..Default::default() })
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, CoreError::ForeignContainer { .. }));
    assert_eq!(err.code().status(), 403);
    assert!(env.core.container(&lb.container_id).is_some());
    // Unregistered attempts must register first.
    let fake = AttemptId::new(a, 9);
    assert!(matches!(
        env.allocate(fake, AllocateRequest::default()).unwrap().unwrap(),
        AllocateResponse { am_command: Some(AmCommand::Shutdown), .. }
    ));
}

#[test]
fn bad_submissions_get_clear_errors_and_change_nothing() {
    let mut env = Env::new();
    let id = env.new_app_id();
    let unknown_queue = ApplicationSubmissionContext { queue: Some("nope".into()), ..Env::context(id) };
    assert_eq!(env.submit_with(unknown_queue).unwrap_err(), CoreError::UnknownQueue("nope".into()));
    let too_big = ApplicationSubmissionContext { resource: Some(Resource::new(1 << 20, 1)), ..Env::context(id) };
    assert!(matches!(env.submit_with(too_big).unwrap_err(), CoreError::ResourceAboveMaximum { .. }));
    let no_cmd = ApplicationSubmissionContext { am_container_spec: AmContainerSpec::default(), ..Env::context(id) };
    assert!(matches!(
        env.submit_with(no_cmd).unwrap_err(),
        CoreError::InvalidSubmission { field: "am-container-spec.commands", .. }
    ));
    let never_issued = ApplicationId::new(1_000, 77);
    assert_eq!(env.submit_with(Env::context(never_issued)).unwrap_err(), CoreError::AppIdNotIssued(never_issued));
    assert_eq!(env.core.apps().count(), 0);
    env.submit_with(Env::context(id)).unwrap();
    assert_eq!(env.submit_with(Env::context(id)).unwrap_err(), CoreError::AlreadySubmitted(id));
    assert_eq!(env.core.apps().count(), 1);
}

#[test]
fn am_failure_starts_a_new_attempt_until_max_attempts_then_fails_the_app() {
    let mut env = Env::new();
    let node = env.add_node("n1", 4096, 4);
    let (id, launch) = env.running_app();
    let attempt1 = launch.container_id.attempt;
    let r = env
        .allocate(attempt1, AllocateRequest { response_id: 0, asks: vec![ask(1, 128, 1)], ..Default::default() })
        .unwrap()
        .unwrap();
    let worker = r.allocated[0].id;
    env.heartbeat(&node, vec![done(launch.container_id, 1)]);
    assert_eq!(env.stops(), vec![worker], "the failed attempt's containers are stopped");
    let app = env.app(id);
    assert_eq!(app.attempts()[0].state(), AttemptState::Failed);
    assert!(app.attempts()[0].diagnostics().contains("exited with exitCode: 1"), "{}", app.attempts()[0].diagnostics());
    assert_eq!(app.state(), AppState::Accepted);
    let launch2 = env.fx.take_launches().pop().expect("second attempt's AM launched");
    assert_eq!(launch2.container_id.attempt.attempt, 2);
    // The old attempt is told to shut down.
    let r = env.allocate(attempt1, AllocateRequest { response_id: 1, ..Default::default() }).unwrap().unwrap();
    assert_eq!(r.am_command, Some(AmCommand::Shutdown));

    env.heartbeat(&node, vec![done(launch2.container_id, 137)]);
    let app = env.app(id);
    assert_eq!(app.state(), AppState::Failed);
    assert_eq!(app.final_status(), FinalStatus::Failed);
    assert!(app.diagnostics().contains("failed 2 times"), "{}", app.diagnostics());
    assert!(env.fx.take_launches().is_empty());
    assert_eq!(env.core.cluster_used(), Resource::ZERO);
    env.fx.assert_drained();
}

#[test]
fn an_illegal_transition_nobody_can_be_told_of_is_logged_counted_and_observed() {
    let mut env = Env::new();
    let node = env.add_node("n1", 4096, 4);
    let (_, launch) = env.running_app();
    let attempt = launch.container_id.attempt;
    let r = env
        .allocate(attempt, AllocateRequest { response_id: 0, asks: vec![ask(1, 128, 1)], ..Default::default() })
        .unwrap()
        .unwrap();
    let task = r.allocated[0].id;
    assert_eq!(env.core.counters().internal_errors, 0);
    // A bug elsewhere left the live container COMPLETED, from where its lifecycle goes nowhere.
    env.core.cluster.corrupt_container_state(task, ContainerState::Completed);
    let req = env.req();
    let containers = vec![running(launch.container_id), done(task, 0)];
    let request = NodeHeartbeatRequest {
        node_id: node.clone(),
        containers,
        health: Default::default(),
        applications_with_dirs: Vec::new(),
    };
    // Not `env.step`, which drops the observations.
    env.core.handle(Event::NodeHeartbeat { req, request }, env.now, &mut env.fx);
    assert!(matches!(env.fx.take_reply(req), Reply::NodeHeartbeat(Ok(_))), "the heartbeat is still answered");
    assert_eq!(env.core.counters().internal_errors, 1);
    assert!(env.fx.observations.contains(&Observation::InternalError), "{:?}", env.fx.observations);
    assert!(env.core.container(&task).is_none(), "the container is released all the same");
    assert_eq!(env.core.node(&node).unwrap().used(), Resource::new(256, 1), "only the AM is left");
    env.fx.clear_observations();
    env.fx.assert_drained();
}

#[test]
fn lost_node_aborts_its_containers_tells_the_am_and_does_not_count_am_loss() {
    let mut env = Env::new();
    let n1 = env.add_node("n1", 2048, 4);
    let n2 = env.add_node("n2", 1024, 4);
    let (_, launch) = env.running_app(); // AM on n1 (most free memory)
    assert_eq!(env.core.container(&launch.container_id).unwrap().node_id(), &n1);
    let attempt = launch.container_id.attempt;
    let r = env
        .allocate(attempt, AllocateRequest { response_id: 0, asks: vec![ask(1, 1024, 2)], ..Default::default() })
        .unwrap()
        .unwrap();
    let on_n2: Vec<ContainerId> = r.allocated.iter().filter(|c| c.node_id == n2).map(|c| c.id).collect();
    assert_eq!(on_n2.len(), 1);
    // n2 goes silent; n1 keeps heartbeating.
    for _ in 0..11 {
        env.advance(1_000);
        env.heartbeat(&n1, vec![running(launch.container_id)]);
        let _ = env.allocate(
            attempt,
            AllocateRequest { response_id: env.core.am_session(attempt).unwrap().response_id(), ..Default::default() },
        );
    }
    assert_eq!(env.core.node(&n2).unwrap().state(), NodeState::Lost);
    let completed: Vec<_> =
        env.core.am_session(attempt).unwrap().last_response().iter().flat_map(|r| r.completed.clone()).collect();
    assert!(
        completed.iter().any(|s| s.container_id == on_n2[0] && s.exit_status == exit_status::ABORTED),
        "{completed:?}"
    );
    assert_eq!(env.heartbeat(&n2, vec![]).action, NodeAction::Resync);
    env.add_node("n2", 1024, 4);
    assert_eq!(env.core.node(&n2).unwrap().state(), NodeState::Running);

    // Losing the AM's node does not count as an attempt failure.
    let n3 = env.add_node("n3", 8192, 4);
    let app2 = env.submit();
    let am2 = env.fx.take_launches().pop().unwrap();
    assert_eq!(env.core.container(&am2.container_id).unwrap().node_id(), &n3);
    for _ in 0..11 {
        env.advance(1_000);
        for n in [&n1, &n2] {
            env.heartbeat(n, vec![]);
        }
    }
    let a = env.app(app2);
    assert!(!a.attempts()[0].counts_as_failure());
    assert_eq!(a.attempts().len(), 2, "new attempt after the AM's node was lost");
    let _ = env.fx.take_launches();
    let _ = env.stops();
}

#[test]
fn silent_am_fails_its_attempt() {
    let mut env = Env::new();
    let node = env.add_node("n1", 4096, 4);
    let (id, launch) = env.running_app();
    for _ in 0..21 {
        env.advance(1_000);
        env.heartbeat(&node, vec![running(launch.container_id)]);
    }
    let app = env.app(id);
    assert_eq!(app.attempts()[0].state(), AttemptState::Failed);
    assert!(app.attempts()[0].diagnostics().contains("timed out"));
    assert_eq!(env.stops(), vec![launch.container_id], "the silent AM is stopped");
    assert_eq!(env.fx.take_launches().len(), 1);
    // The NM still reporting the old AM as running is told to clean it up.
    assert_eq!(
        env.heartbeat(&node, vec![running(launch.container_id)]).containers_to_cleanup,
        vec![launch.container_id]
    );
}

#[test]
fn kill_stops_everything_and_is_idempotent() {
    let mut env = Env::new();
    env.add_node("n1", 4096, 4);
    let (id, launch) = env.running_app();
    let attempt = launch.container_id.attempt;
    let parked = env.allocate(
        attempt,
        AllocateRequest {
            response_id: 0,
            asks: vec![ask(1, 8192.min(4096), 1)],
            wait_ms: 10_000,
            ..Default::default()
        },
    );
    assert!(parked.is_none());
    let req = env.req();
    env.step(Event::Kill { req, app: id, diagnostics: None });
    assert_eq!(env.fx.take_reply(req), Reply::Kill(Ok(AppState::Killed)));
    let (_, Reply::Allocate(Ok(r))) = env.fx.replies.pop().unwrap() else { panic!("parked allocate not answered") };
    assert_eq!(r.am_command, Some(AmCommand::Shutdown));
    assert_eq!(env.stops(), vec![launch.container_id]);
    let app = env.app(id);
    assert_eq!((app.state(), app.final_status()), (AppState::Killed, FinalStatus::Killed));
    assert_eq!(app.attempts()[0].state(), AttemptState::Killed);
    assert!(env.fx.take_persisted().iter().any(|op| matches!(op, StoreOp::PutApp(r) if r.state == AppState::Killed)));
    let req = env.req();
    env.step(Event::Kill { req, app: id, diagnostics: None });
    assert_eq!(env.fx.take_reply(req), Reply::Kill(Ok(AppState::Killed)));
    let req = env.req();
    let unknown = ApplicationId::new(1, 1);
    env.step(Event::Kill { req, app: unknown, diagnostics: None });
    assert_eq!(env.fx.take_reply(req), Reply::Kill(Err(CoreError::UnknownApp(unknown))));
    env.fx.assert_drained();
}

#[test]
fn finish_unregisters_stops_workers_and_reaps_a_lingering_am() {
    let mut env = Env::new();
    let node = env.add_node("n1", 4096, 4);
    let (id, launch) = env.running_app();
    let attempt = launch.container_id.attempt;
    let r = env
        .allocate(attempt, AllocateRequest { response_id: 0, asks: vec![ask(1, 128, 1)], ..Default::default() })
        .unwrap()
        .unwrap();
    let req = env.req();
    let request =
        FinishAmRequest { final_status: FinalStatus::Succeeded, diagnostics: "ok".into(), tracking_url: String::new() };
    env.step(Event::AmFinish { req, attempt, request: request.clone() });
    assert!(matches!(env.fx.take_reply(req), Reply::AmFinish(Ok(r)) if r.is_unregistered));
    assert_eq!(env.stops(), vec![r.allocated[0].id]);
    let app = env.app(id);
    assert_eq!((app.state(), app.final_status()), (AppState::Finished, FinalStatus::Succeeded));
    assert_eq!(app.attempts()[0].state(), AttemptState::Finished);
    // Repeating finish (the AM polls) is fine.
    let req = env.req();
    env.step(Event::AmFinish { req, attempt, request });
    assert!(matches!(env.fx.take_reply(req), Reply::AmFinish(Ok(_))));
    // The AM container has a grace period to exit, then is stopped.
    env.advance(5_000);
    assert!(env.stops().is_empty());
    env.heartbeat(&node, vec![running(launch.container_id)]);
    env.advance(1);
    assert_eq!(env.stops(), vec![launch.container_id]);
    assert_eq!(env.core.cluster_used(), Resource::ZERO);
    env.fx.assert_drained();
}

#[test]
fn heartbeats_ack_completions_and_clean_up_unknown_containers() {
    let mut env = Env::new();
    let node = env.add_node("n1", 4096, 4);
    let (_, launch) = env.running_app();
    let stranger = ContainerId { attempt: AttemptId::new(ApplicationId::new(5, 5), 1), epoch: 0, seq: 3 };
    let r = env.heartbeat(
        &node,
        vec![running(launch.container_id), running(stranger), done(ContainerId { seq: 9, ..stranger }, 0)],
    );
    assert_eq!(r.containers_to_cleanup, vec![stranger]);
    assert_eq!(r.acked_completed, vec![ContainerId { seq: 9, ..stranger }]);
    assert_eq!(env.core.container(&launch.container_id).unwrap().state(), weft_common::states::ContainerState::Running);
}

#[test]
fn heartbeats_name_the_finished_and_unknown_apps_a_node_holds_dirs_for() {
    let mut env = Env::new();
    let node = env.add_node("n1", 4096, 4);
    let (running_app, launch) = env.running_app();
    let killed = env.submit();
    let req = env.req();
    env.step(Event::Kill { req, app: killed, diagnostics: None });
    assert_eq!(env.fx.take_reply(req), Reply::Kill(Ok(AppState::Killed)));
    let forgotten = ApplicationId::new(5, 5);

    let r = env.heartbeat_with_dirs(&node, vec![running(launch.container_id)], vec![running_app, killed, forgotten]);
    assert_eq!(r.applications_to_cleanup, vec![killed, forgotten]);
    let r = env.heartbeat_with_dirs(&node, vec![running(launch.container_id)], vec![running_app]);
    assert!(r.applications_to_cleanup.is_empty(), "a running application keeps its dirs");
    env.fx.take_launches();
    env.stops();
    env.fx.take_persisted();
    env.fx.assert_drained();
}

// ---------------------------------------------------------------------------------------------
// Property test: random interleavings keep the invariants (checked inside every step), never
// over-allocate, and leave no eligible ask waiting while some node could host it.

#[derive(Debug, Clone)]
enum Op {
    /// Memory, vcores and a rack (see [`RACKS`]).
    AddNode(u64, u32, usize),
    Submit,
    Ask(usize, u64, u32),
    Gang(usize, u64, u32),
    /// An ask naming a host, node or rack.
    LocalAsk {
        app: usize,
        memory_mb: u64,
        count: u32,
        target: LocalTarget,
        relax_locality: bool,
        gang: bool,
    },
    Release(usize),
    CompleteOne(usize, i32),
    Finish(usize),
    Kill(usize),
    Advance(u64),
    SilenceNode(usize),
}

/// Where a [`Op::LocalAsk`] points: the host name or node id of node `n<i>` (a host never seen
/// until that many nodes were added), or one of [`ASKED_RACKS`].
#[derive(Debug, Clone, Copy)]
enum LocalTarget {
    Host(usize),
    NodeId(usize),
    Rack(usize),
}

const LOCAL_TARGET_NODES: usize = 8;

impl LocalTarget {
    fn resource_name(self) -> String {
        match self {
            LocalTarget::Host(i) => format!("n{i}"),
            LocalTarget::NodeId(i) => format!("n{i}:8042"),
            LocalTarget::Rack(i) => ASKED_RACKS[i].to_owned(),
        }
    }

    /// Every target and relax flag gets its own priority (above the plain asks' 1), so each
    /// container's priority tells which locality it was allocated under.
    fn priority(self, relax_locality: bool) -> i32 {
        let index = match self {
            LocalTarget::Host(i) => i,
            LocalTarget::NodeId(i) => LOCAL_TARGET_NODES + i,
            LocalTarget::Rack(i) => 2 * LOCAL_TARGET_NODES + i,
        };
        2 + 2 * index as i32 + i32::from(relax_locality)
    }
}

/// Racks nodes register in (`None`: the default rack); asks may also name a rack without nodes.
const RACKS: [Option<&str>; 3] = [Some("/rack0"), Some("/rack1"), None];
const ASKED_RACKS: [&str; 4] = ["/rack0", "/rack1", "/default-rack", "/rack-without-nodes"];

fn op() -> impl Strategy<Value = Op> {
    let target = prop_oneof![
        (0usize..LOCAL_TARGET_NODES).prop_map(LocalTarget::Host),
        (0usize..LOCAL_TARGET_NODES).prop_map(LocalTarget::NodeId),
        (0usize..ASKED_RACKS.len()).prop_map(LocalTarget::Rack),
    ];
    prop_oneof![
        (512u64..8192, 1u32..8, 0usize..RACKS.len()).prop_map(|(m, c, r)| Op::AddNode(m, c, r)),
        Just(Op::Submit),
        (0usize..8, 1u64..3000, 0u32..6).prop_map(|(a, m, n)| Op::Ask(a, m, n)),
        (0usize..8, 1u64..1500, 1u32..6).prop_map(|(a, m, n)| Op::Gang(a, m, n)),
        (0usize..8, 1u64..3000, 0u32..6, target, any::<bool>(), prop::bool::weighted(0.2)).prop_map(
            |(app, memory_mb, count, target, relax_locality, gang)| Op::LocalAsk {
                app,
                memory_mb,
                count: if gang { count.max(1) } else { count },
                target,
                relax_locality,
                gang
            }
        ),
        (0usize..64).prop_map(Op::Release),
        (0usize..64, prop_oneof![Just(0), Just(1), Just(-100), Just(-104)]).prop_map(|(c, e)| Op::CompleteOne(c, e)),
        (0usize..8).prop_map(Op::Finish),
        (0usize..8).prop_map(Op::Kill),
        (1u64..15_000).prop_map(Op::Advance),
        (0usize..4).prop_map(Op::SilenceNode),
    ]
}

/// Whether the locality delays let `ask` use `node` at `now`: the delay rules stated once more,
/// independently of the scheduler's implementation.
fn locality_admits(core: &Core, key: &AskKey, ask: &Ask, node: &Node, now: Millis) -> bool {
    let cfg = core.config();
    let name = key.resource_name.as_str();
    let waited = now.saturating_sub(ask.since);
    let is_the_host = |n: &Node| &*n.id().0 == name || n.id().host() == name;
    if name == "*" {
        return true;
    }
    if name.starts_with('/') {
        return node.rack() == name || (ask.relax_locality && waited >= cfg.settings.rack_locality_delay_ms);
    }
    if is_the_host(node) {
        return true;
    }
    if !ask.relax_locality || waited < cfg.settings.node_locality_delay_ms {
        return false;
    }
    if waited >= cfg.settings.node_locality_delay_ms + cfg.settings.rack_locality_delay_ms {
        return true;
    }
    // The host's rack; a host never seen has none, so its ask may go anywhere.
    core.nodes().find(|n| is_the_host(n)).is_none_or(|host| host.rack() == node.rack())
}

/// No idle capacity while an ask that queue limits allow waits. The documented exceptions:
/// capacity held back for a waiting gang, and nodes outside a locality ask's current allowed
/// host or rack.
fn work_conserving(core: &Core, now: Millis) -> Result<(), String> {
    if core.gang_reservation().is_some() {
        return Ok(());
    }
    for app in core.apps().filter(|a| a.has_demand()) {
        let wanted: Vec<(Resource, Option<(&AskKey, &Ask)>)> = match app.am_ask_since() {
            Some(_) => vec![(app.am_resource(), None)],
            None => app.asks().iter().filter(|(_, a)| !a.gang).map(|(k, a)| (k.capability, Some((k, a)))).collect(),
        };
        let is_am = app.am_ask_since().is_some();
        let leaf = app.queue_index().expect("a queued app");
        for (r, locality) in wanted {
            if core.hierarchy().blocked(leaf, app.user(), r, is_am).is_some() {
                continue; // held back by a queue limit, not idle capacity
            }
            let allowed = |n: &Node| locality.is_none_or(|(key, ask)| locality_admits(core, key, ask, n, now));
            if let Some(n) = core.nodes().find(|n| n.state().is_usable() && n.free().fits(&r) && allowed(n)) {
                return Err(format!("{} waits for {r} while {} has {} free", app.id(), n.id(), n.free()));
            }
        }
    }
    Ok(())
}

/// Capacity tree for the property test: different guarantees and maxima, user limits on.
const CAPACITY_TREE: &str = "scheduler: capacity
queues:
  prod: {capacity: 60%, max-capacity: 80%, queues: {etl: {capacity: 70%}, web: {capacity: 30%, max-capacity: 50%}}}
  adhoc: {capacity: 40%, max-capacity: 60%, user-limit-factor: 2, max-am-resource-percent: 0.5}
";

fn capacity_env() -> Env {
    let queues = QueuesConfig::parse(CAPACITY_TREE, "queues.yaml").unwrap();
    Env::with_config(CoreConfig { queues, ..CoreConfig::for_tests() })
}

/// No queue above its maximum, unless the cluster shrank under it (nodes were lost).
fn within_maxima(core: &Core) -> Result<(), String> {
    let tree = core.hierarchy().tree();
    for (i, q) in tree.queues.iter().enumerate() {
        let used = core.hierarchy().usage(i).used;
        if !q.maximum.fits(&used) {
            return Err(format!("queue {} uses {used}, above its maximum {}", q.path, q.maximum));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_operations_keep_the_core_consistent(ops in proptest::collection::vec(op(), 1..120)) {
        random_operations(Env::new(), &["default"], ops)?;
    }

    #[test]
    fn random_operations_keep_queues_within_limits(ops in proptest::collection::vec(op(), 1..120)) {
        random_operations(capacity_env(), &["etl", "web", "adhoc"], ops)?;
    }
}

fn random_operations(mut env: Env, queues: &[&str], ops: Vec<Op>) -> Result<(), TestCaseError> {
    {
        let mut nodes: Vec<NodeId> = Vec::new();
        let mut silent: Vec<NodeId> = Vec::new();
        let mut apps: Vec<ApplicationId> = Vec::new();
        // When each app first asked at each locality priority, with the locality of that priority.
        let mut first_local_ask: BTreeMap<(ApplicationId, i32), (String, bool, Millis)> = BTreeMap::new();
        for op in ops {
            let containers_before: BTreeSet<ContainerId> = env.core.live_containers().map(|c| c.id()).collect();
            match op {
                Op::AddNode(m, c, rack) => {
                    nodes.push(env.add_node_in_rack(&format!("n{}", nodes.len()), m, c, RACKS[rack]))
                }
                Op::Submit => {
                    let id = env.new_app_id();
                    let req = env.req();
                    let mut context = Env::context(id);
                    context.queue = Some(queues[apps.len() % queues.len()].to_owned());
                    let user = format!("u{}", apps.len() % 3);
                    env.step(Event::Submit { req, user, context: Box::new(context) });
                    env.step(Event::Persisted);
                    apps.push(id);
                }
                Op::Ask(i, m, n) | Op::Gang(i, m, n) => {
                    if let Some(&id) = apps.get(i) {
                        let is_gang = matches!(op, Op::Gang(..));
                        send_ask(&mut env, id, ResourceRequest { gang: is_gang, ..ask(1, m, n) });
                    }
                }
                Op::LocalAsk { app, memory_mb, count, target, relax_locality, gang } => {
                    if let Some(&id) = apps.get(app) {
                        let (resource_name, priority) = (target.resource_name(), target.priority(relax_locality));
                        let first = (resource_name.clone(), relax_locality, env.now);
                        first_local_ask.entry((id, priority)).or_insert(first);
                        let request =
                            ResourceRequest { resource_name, relax_locality, gang, ..ask(priority, memory_mb, count) };
                        send_ask(&mut env, id, request);
                    }
                }
                Op::Release(i) => {
                    let live: Vec<ContainerId> =
                        env.core.live_containers().filter(|c| !c.is_am()).map(|c| c.id()).collect();
                    if let Some(&c) = live.get(i % live.len().max(1)) {
                        let a = env.app(c.app()).current_attempt().map(|a| (a.id(), env.response_id(a.id())));
                        if let Some((att, rid)) = a {
                            let req = env.req();
                            env.step(Event::Allocate {
                                req,
                                attempt: att,
                                request: AllocateRequest { response_id: rid, releases: vec![c], ..Default::default() },
                            });
                        }
                    }
                }
                Op::CompleteOne(i, exit) => {
                    let live: Vec<(ContainerId, NodeId)> =
                        env.core.live_containers().map(|c| (c.id(), c.node_id().clone())).collect();
                    if let Some((c, n)) = live.get(i % live.len().max(1)).cloned() {
                        env.heartbeat(&n, vec![done(c, exit)]);
                    }
                }
                Op::Finish(i) => {
                    if let Some(&id) = apps.get(i) {
                        if let Some(att) = env.app(id).current_attempt().map(|a| a.id()) {
                            let req = env.req();
                            env.step(Event::AmFinish {
                                req,
                                attempt: att,
                                request: FinishAmRequest {
                                    final_status: FinalStatus::Succeeded,
                                    diagnostics: String::new(),
                                    tracking_url: String::new(),
                                },
                            });
                        }
                    }
                }
                Op::Kill(i) => {
                    if let Some(&id) = apps.get(i) {
                        let req = env.req();
                        env.step(Event::Kill { req, app: id, diagnostics: None });
                    }
                }
                Op::Advance(ms) => {
                    env.now += ms;
                    let beating: Vec<NodeId> = nodes.iter().filter(|n| !silent.contains(n)).cloned().collect();
                    for n in &beating {
                        let reports: Vec<ContainerReport> = env
                            .core
                            .node(n)
                            .map(|node| node.containers().iter().map(|c| running(*c)).collect())
                            .unwrap_or_default();
                        let req = env.req();
                        env.step(Event::NodeHeartbeat {
                            req,
                            request: NodeHeartbeatRequest {
                                node_id: n.clone(),
                                containers: reports,
                                health: Default::default(),
                                applications_with_dirs: Vec::new(),
                            },
                        });
                    }
                    env.step(Event::Tick);
                }
                Op::SilenceNode(i) => {
                    if let Some(n) = nodes.get(i) {
                        silent.push(n.clone())
                    }
                }
            }
            prop_assert!(env.core.check_invariants().is_ok());
            // Containers allocated in this step respect their ask's locality. The ask is taken
            // as old as its first sending: that allows the most, so this never fails wrongly.
            for c in env.core.live_containers().filter(|c| !c.is_am() && !containers_before.contains(&c.id())) {
                let Some((resource_name, relax_locality, since)) = first_local_ask.get(&(c.id().app(), c.priority()))
                else {
                    continue;
                };
                let key =
                    AskKey { priority: c.priority(), resource_name: resource_name.clone(), capability: c.resource() };
                let ask = Ask { count: 1, relax_locality: *relax_locality, gang: false, since: *since };
                let node = env.core.node(c.node_id()).expect("a container's node is known");
                prop_assert!(
                    locality_admits(&env.core, &key, &ask, node, env.now),
                    "{} on {} (rack {}) for {key:?} {ask:?} at {}",
                    c.id(),
                    node.id(),
                    node.rack(),
                    env.now
                );
            }
            prop_assert_eq!(work_conserving(&env.core, env.now), Ok(()));
            // Lost nodes shrink the cluster and with it every maximum.
            if silent.is_empty() {
                prop_assert_eq!(within_maxima(&env.core), Ok(()));
            }
            env.fx.replies.clear();
            env.fx.launches.clear();
            env.fx.stops.clear();
            env.fx.persisted.clear();
        }
    }
    Ok(())
}

/// Registers the app's AM (if not yet) and sends one allocate with `request`.
fn send_ask(env: &mut Env, app: ApplicationId, request: ResourceRequest) {
    let Some((attempt, response_id)) = env.app(app).current_attempt().map(|a| (a.id(), env.response_id(a.id()))) else {
        return;
    };
    let req = env.req();
    env.step(Event::AmRegister { req, attempt, request: RegisterAmRequest::default() });
    let req = env.req();
    let request = AllocateRequest { response_id, asks: vec![request], ..Default::default() };
    env.step(Event::Allocate { req, attempt, request });
}

// ---------------------------------------------------------------------------------------------
// Gang asks.

pub(super) fn gang(priority: i32, memory_mb: u64, n: u32) -> ResourceRequest {
    ResourceRequest { gang: true, ..ask(priority, memory_mb, n) }
}

#[test]
fn a_gang_waits_while_nine_of_ten_fit_then_gets_all_ten_at_once() {
    let mut env = Env::new();
    // Room for two AMs (256 MB each), one blocker container and 9 more containers.
    let node = env.add_node("n1", 256 * 2 + 128 + 128 * 9, 64);
    let (blocker, _) = env.running_app();
    let held = env.allocate_now(blocker, vec![ask(1, 128, 1)]).allocated[0].id;
    let (g, _) = env.running_app();
    let r = env.allocate_now(g, vec![gang(1, 128, 10)]);
    assert!(r.allocated.is_empty(), "9 free slots are not enough for a 10-container gang");
    assert_eq!(env.core.node(&node).unwrap().free().memory_mb, 128 * 9);
    assert_eq!(env.core.gang_reservation().map(|r| r.app), Some(g));

    // A small ask may not take capacity the gang needs (its AM would eat two gang slots).
    let small = env.submit();
    assert!(env.fx.take_launches().is_empty(), "held back for the gang");
    assert_eq!(env.app(small).state(), AppState::Accepted);

    // One container frees up: the gang gets all ten in one response.
    env.heartbeat(&node, vec![done(held, 0)]);
    let r = env.allocate_now(g, vec![]);
    assert_eq!(r.allocated.len(), 10, "all or nothing");
    assert!(env.core.gang_reservation().is_none());
    let _ = env.fx.take_launches();
}

#[test]
fn two_gangs_never_deadlock_and_are_never_partially_allocated() {
    let mut env = Env::new();
    let node = env.add_node("n1", 256 * 3 + 128 * 10, 64);
    let (blocker, _) = env.running_app();
    let held: Vec<ContainerId> =
        env.allocate_now(blocker, vec![ask(1, 128, 8)]).allocated.iter().map(|c| c.id).collect();
    let (g1, _) = env.running_app();
    let (g2, _) = env.running_app();
    assert!(env.allocate_now(g1, vec![gang(1, 128, 6)]).allocated.is_empty());
    assert!(env.allocate_now(g2, vec![gang(1, 128, 6)]).allocated.is_empty());
    let count = |env: &Env, app| env.app(app).containers().len() - 1; // minus the AM
    for (i, c) in held.iter().enumerate() {
        env.heartbeat(&node, vec![done(*c, 0)]);
        let (a, b) = (count(&env, g1), count(&env, g2));
        assert!(a == 0 || a == 6, "gang 1 partially allocated after {i} completions: {a}");
        assert!(b == 0 || b == 6, "gang 2 partially allocated after {i} completions: {b}");
    }
    assert_eq!(count(&env, g1), 6, "the first gang, holding the reservation, went first");
    // Gang 1 finishes; gang 2 follows.
    let g1_containers: Vec<ContainerId> =
        env.app(g1).containers().iter().copied().filter(|c| !env.core.container(c).unwrap().is_am()).collect();
    env.heartbeat(&node, g1_containers.iter().map(|c| done(*c, 0)).collect());
    assert_eq!(count(&env, g2), 6);
    env.fx.replies.clear();
}

#[test]
fn a_gang_that_cannot_fit_yields_its_reservation_so_small_asks_are_not_starved() {
    let mut env = Env::new();
    let node = env.add_node("n1", 256 * 2 + 128 * 4, 64);
    let (g, _) = env.running_app();
    // 8 containers can never fit on this node.
    assert!(env.allocate_now(g, vec![gang(1, 128, 8)]).allocated.is_empty());
    assert!(env.core.gang_reservation().is_some());
    let small = env.submit();
    assert!(env.fx.take_launches().is_empty(), "held back while the gang reserves");
    // Time passes with the node and the gang's AM alive.
    let deadline = env.now + CoreConfig::for_tests().settings.gang_reservation_timeout_ms + 1;
    while env.now < deadline {
        env.advance(1_000);
        let reports: Vec<ContainerReport> =
            env.core.node(&node).unwrap().containers().iter().map(|c| running(*c)).collect();
        env.heartbeat(&node, reports);
        env.allocate_now(g, vec![]);
    }
    assert!(env.core.gang_reservation().is_none(), "the reservation timed out");
    assert_eq!(env.fx.take_launches().len(), 1, "the small app's AM now runs");
    assert_eq!(env.app(small).attempts()[0].state(), AttemptState::Allocated);
    env.fx.replies.clear();
}

// ---------------------------------------------------------------------------------------------
// Locality asks (host, rack, `*`) and delay scheduling. The test config's delays are 3 s each.

pub(super) fn local_ask(priority: i32, memory_mb: u64, n: u32, resource_name: &str, relax: bool) -> ResourceRequest {
    ResourceRequest { resource_name: resource_name.into(), relax_locality: relax, ..ask(priority, memory_mb, n) }
}

/// How many non-AM containers `app` has on each node.
fn workers_by_node(env: &Env, app: ApplicationId) -> BTreeMap<NodeId, usize> {
    let mut by_node = BTreeMap::new();
    for c in env.app(app).containers().iter().filter_map(|c| env.core.container(c)).filter(|c| !c.is_am()) {
        *by_node.entry(c.node_id().clone()).or_default() += 1;
    }
    by_node
}

/// Lets `ms` pass in steps of at most a second, every node heartbeating its containers as
/// running, so long waits lose no node.
fn advance_alive(env: &mut Env, ms: u64) {
    let mut left = ms;
    while left > 0 {
        let step = left.min(1_000);
        env.advance(step);
        left -= step;
        let nodes: Vec<NodeId> = env.core.nodes().map(|n| n.id().clone()).collect();
        for node in nodes {
            let reports = env.core.node(&node).map(|n| n.containers().iter().map(|c| running(*c)).collect());
            env.heartbeat(&node, reports.unwrap_or_default());
        }
    }
}

#[test]
fn a_host_ask_is_placed_on_its_host_even_when_another_node_has_more_room() {
    let mut env = Env::new();
    let small = env.add_node("n1", 1024, 4);
    let big = env.add_node("n2", 8192, 8);
    let (app, launch) = env.running_app();
    assert_eq!(env.core.container(&launch.container_id).unwrap().node_id(), &big);
    // By host name and by full node id.
    let r = env.allocate_now(app, vec![local_ask(1, 256, 2, "n1", true), local_ask(2, 256, 1, "n1:8042", true)]);
    assert_eq!(r.allocated.len(), 3);
    assert!(r.allocated.iter().all(|c| c.node_id == small), "{:?}", r.allocated);
    // Each container names the ask it was allocated for, so the AM lowers the right count.
    let mut named: Vec<(i32, &str)> = r.allocated.iter().map(|c| (c.priority, c.resource_name.as_str())).collect();
    named.sort();
    assert_eq!(named, [(1, "n1"), (1, "n1"), (2, "n1:8042")]);
    // An ask for anywhere still goes to the node with the most room.
    let r = env.allocate_now(app, vec![ask(3, 256, 1)]);
    assert_eq!((&r.allocated[0].node_id, r.allocated[0].resource_name.as_str()), (&big, "*"));
}

#[test]
fn a_host_ask_waits_for_its_full_host_then_relaxes_to_the_rack_then_anywhere() {
    let mut env = Env::new();
    let n1 = env.add_node_in_rack("n1", 512, 8, Some("/r1"));
    let n2 = env.add_node_in_rack("n2", 1024, 8, Some("/r1"));
    let n3 = env.add_node_in_rack("n3", 8192, 8, Some("/r2"));
    let (app, _) = env.running_app(); // AM on n3
    env.allocate_now(app, vec![local_ask(1, 512, 1, "n1", true)]);
    assert_eq!(workers_by_node(&env, app), [(n1.clone(), 1)].into());

    // n1 is full: the ask waits although n2 and n3 have room.
    assert!(env.allocate_now(app, vec![local_ask(2, 512, 3, "n1", true)]).allocated.is_empty());
    env.advance(2_999);
    assert_eq!(env.app(app).pending_containers(), 3);
    // The node delay has passed: only ticks happened, and the rack (n2, not n3) takes what fits.
    env.advance(1);
    assert_eq!(workers_by_node(&env, app), [(n1.clone(), 1), (n2.clone(), 2)].into());
    env.advance(2_999);
    assert_eq!(env.app(app).pending_containers(), 1, "still within the rack delay");
    env.advance(1);
    assert_eq!(workers_by_node(&env, app), [(n1, 1), (n2, 2), (n3, 1)].into());
    assert!(env.app(app).asks().is_empty());
    assert_eq!(env.allocate_now(app, vec![]).allocated.len(), 3, "delivered to the AM");
}

#[test]
fn a_host_ask_without_relax_locality_never_leaves_its_host() {
    let mut env = Env::new();
    let n1 = env.add_node_in_rack("n1", 512, 8, Some("/r1"));
    let n2 = env.add_node_in_rack("n2", 8192, 8, Some("/r1"));
    let (app, _) = env.running_app(); // AM on n2
    let filler = env.allocate_now(app, vec![local_ask(1, 512, 1, "n1", true)]).allocated[0].id;
    assert!(env.allocate_now(app, vec![local_ask(2, 512, 1, "n1", false)]).allocated.is_empty());
    advance_alive(&mut env, 12_000);
    assert_eq!(env.app(app).pending_containers(), 1, "pinned to n1 long after both delays");
    assert!(env.core.node(&n2).unwrap().free().memory_mb >= 512, "although the rack had room");
    // Its host frees up: the ask is served there.
    env.heartbeat(&n1, vec![done(filler, 0)]);
    assert_eq!(workers_by_node(&env, app), [(n1, 1)].into());
    assert!(env.app(app).asks().is_empty());
}

#[test]
fn a_rack_ask_stays_in_its_rack_until_the_rack_delay_and_forever_without_relax() {
    let mut env = Env::new();
    let n1 = env.add_node_in_rack("n1", 1024, 8, Some("/r1"));
    let n2 = env.add_node_in_rack("n2", 8192, 8, Some("/r2"));
    let (app, _) = env.running_app(); // AM on n2
    let r = env.allocate_now(app, vec![local_ask(1, 256, 2, "/r1", true)]);
    assert!(r.allocated.len() == 2 && r.allocated.iter().all(|c| c.node_id == n1), "{:?}", r.allocated);

    // Pinned to the rack: one fits on n1, the other waits for good.
    assert_eq!(env.allocate_now(app, vec![local_ask(2, 512, 2, "/r1", false)]).allocated.len(), 1);
    advance_alive(&mut env, 12_000);
    assert_eq!(env.app(app).pending_containers(), 1);
    assert_eq!(workers_by_node(&env, app), [(n1.clone(), 3)].into());

    // Relaxable: waits for the rack delay, then goes anywhere.
    assert!(env.allocate_now(app, vec![local_ask(3, 512, 1, "/r1", true)]).allocated.is_empty());
    advance_alive(&mut env, 2_999);
    assert_eq!(env.app(app).pending_containers(), 2);
    env.advance(1);
    assert_eq!(workers_by_node(&env, app), [(n1, 3), (n2, 1)].into());
    assert_eq!(env.app(app).pending_containers(), 1, "the pinned ask still waits");
}

#[test]
fn a_gang_naming_a_rack_places_every_container_in_that_rack() {
    let mut env = Env::new();
    let n1 = env.add_node_in_rack("n1", 512, 8, Some("/r1"));
    let n2 = env.add_node_in_rack("n2", 512, 8, Some("/r1"));
    env.add_node_in_rack("n3", 8192, 8, Some("/r2"));
    let (g, _) = env.running_app(); // AM on n3
    let gang_in_r1 = |priority, n| ResourceRequest { gang: true, ..local_ask(priority, 256, n, "/r1", false) };
    let r = env.allocate_now(g, vec![gang_in_r1(1, 4)]);
    assert_eq!(r.allocated.len(), 4, "all at once");
    assert_eq!(workers_by_node(&env, g), [(n1, 2), (n2, 2)].into());

    // The rack is full: the next gang waits for it and reserves, although n3 has room...
    assert!(env.allocate_now(g, vec![gang_in_r1(2, 2)]).allocated.is_empty());
    assert_eq!(env.core.gang_reservation().map(|r| r.app), Some(g));
    // ...and its reservation holds back only capacity it may use: another AM still starts on n3.
    env.submit();
    assert_eq!(env.fx.take_launches().len(), 1);
}

#[test]
fn an_ask_for_a_host_never_seen_goes_anywhere_after_the_node_delay_unless_pinned() {
    let mut env = Env::new();
    let n1 = env.add_node("n1", 4096, 8);
    let (app, _) = env.running_app();
    let asks = vec![local_ask(1, 256, 1, "elsewhere", true), local_ask(2, 256, 1, "elsewhere", false)];
    assert!(env.allocate_now(app, asks).allocated.is_empty());
    env.advance(2_999);
    assert_eq!(env.app(app).pending_containers(), 2);
    env.advance(1);
    assert_eq!(workers_by_node(&env, app), [(n1, 1)].into());
    assert_eq!(env.app(app).pending_containers(), 1, "the pinned ask waits for its host");
}

#[test]
fn a_node_registered_with_a_rack_carries_it_and_rack_asks_follow_a_move() {
    let mut env = Env::new();
    let n1 = env.add_node_in_rack("n1", 1024, 8, Some("/r7"));
    let n2 = env.add_node("n2", 4096, 8);
    let n3 = env.add_node_in_rack("n3", 512, 8, Some("r8"));
    assert_eq!(env.core.node(&n1).unwrap().rack(), "/r7");
    assert_eq!(env.core.node(&n2).unwrap().rack(), "/default-rack");
    assert_eq!(env.core.node(&n3).unwrap().rack(), "/r8", "rack names get their leading slash");

    // The NM restarts in another rack.
    env.add_node_in_rack("n1", 1024, 8, Some("/r9"));
    assert_eq!(env.core.node(&n1).unwrap().rack(), "/r9");
    let (app, _) = env.running_app(); // AM on n2
    let r = env.allocate_now(app, vec![local_ask(1, 256, 1, "/r9", false), local_ask(2, 256, 1, "/r7", false)]);
    assert_eq!(r.allocated.len(), 1);
    assert_eq!(r.allocated[0].node_id, n1);
    assert_eq!(env.app(app).pending_containers(), 1, "nothing is left in /r7");
    let r = env.allocate_now(app, vec![local_ask(3, 256, 1, "/default-rack", false)]);
    assert_eq!(r.allocated[0].node_id, n2);
}
