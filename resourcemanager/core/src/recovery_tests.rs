//! Work-preserving recovery: a new RM incarnation (restart or failover) takes over the previous
//! one's apps, attempts and running containers through the store and the NMs' re-registration.

use weft_common::protocol::{AllocateRequest, ContainerReport, RegisterAmRequest, RegisterNodeRequest};
use weft_common::states::{AppState, AttemptState, NmContainerState, exit_status};
use weft_common::{ApplicationId, ContainerId, NodeId, Resource};

use super::*;
use crate::records::{RecordSet, RecoveredState};
use crate::testkit::{Env, ask, done};

fn report(id: ContainerId, resource: Resource, state: NmContainerState) -> ContainerReport {
    ContainerReport {
        container_id: id,
        state,
        exit_status: exit_status::INVALID,
        diagnostics: String::new(),
        resource,
        pid: Some(42),
    }
}

fn register(env: &mut Env, node: &NodeId, total: Resource, containers: Vec<ContainerReport>) {
    let req = env.req();
    let request = RegisterNodeRequest {
        node_id: node.clone(),
        http_address: format!("http://{}", node.0),
        total,
        containers,
        version: "test".into(),
        rack: None,
    };
    env.step(Event::NodeRegister { req, request });
    assert!(matches!(env.fx.take_reply(req), Reply::NodeRegister(Ok(_))));
}

/// The store as the core sees it: records, plus the fencing epoch each incarnation claims.
#[derive(Default)]
pub(crate) struct TestStore {
    epoch: u32,
    records: RecordSet,
}

impl TestStore {
    pub(crate) fn claim_epoch(&mut self) -> u32 {
        self.epoch += 1;
        self.epoch
    }

    pub(crate) fn apply(&mut self, epoch: u32, ops: &[StoreOp]) {
        assert_eq!(epoch, self.epoch, "a write from a fenced-off incarnation");
        self.records.apply(ops).unwrap();
    }

    pub(crate) fn load(&self) -> RecoveredState {
        self.records.load()
    }
}

/// A new incarnation at `epoch` recovered from `store`, as the server starts one.
fn take_over(store: &mut TestStore, now: Millis) -> Env {
    let epoch = store.claim_epoch();
    let mut cfg = CoreConfig::for_tests();
    cfg.cluster_ts = 2_000;
    cfg.epoch = epoch;
    let mut env = Env::with_config(cfg);
    env.now = now;
    env.core.recover(store.load(), now, &mut env.fx).unwrap();
    store.apply(epoch, &env.fx.take_persisted());
    env
}

fn persist(store: &mut TestStore, env: &mut Env) {
    let epoch = env.core.cfg.epoch;
    store.apply(epoch, &env.fx.take_persisted());
}

#[test]
fn a_new_incarnation_keeps_running_attempts_and_adopts_their_containers() {
    let mut store = TestStore::default();
    let mut env = Env::new();
    env.core.cfg.epoch = store.claim_epoch();
    let node = env.add_node("n1", 4096, 4);
    let (app, launch) = env.running_app();
    let attempt = launch.container_id.attempt;
    let got = env.allocate(attempt, AllocateRequest { asks: vec![ask(1, 512, 3)], ..Default::default() });
    let workers: Vec<ContainerId> = got.unwrap().unwrap().allocated.iter().map(|c| c.id).collect();
    assert_eq!(workers.len(), 3);
    persist(&mut store, &mut env);
    let used_before = env.core.cluster_used();

    // The active dies; the standby takes over.
    let mut env = take_over(&mut store, 60_000);
    let a = env.app(app);
    assert_eq!((a.state(), a.attempts().len()), (AppState::Accepted, 1), "no new attempt");
    assert_eq!(a.attempts()[0].state(), AttemptState::Allocated);
    assert!(env.core.recovering(), "waits for the known node");
    assert_eq!(env.core.cluster_used(), Resource::ZERO);

    // The AM notices first: it is told to register again.
    let refused = env.allocate(attempt, AllocateRequest { response_id: 1, ..Default::default() }).unwrap();
    assert!(matches!(refused, Err(CoreError::AmNotRegistered(_))), "{refused:?}");

    // The NM re-registers with what still runs; worker 3 ended during the switch.
    let am = report(launch.container_id, Resource::new(256, 1), NmContainerState::Running);
    let alive: Vec<ContainerReport> =
        workers[..2].iter().map(|c| report(*c, Resource::new(512, 1), NmContainerState::Running)).collect();
    register(&mut env, &node, Resource::new(4096, 4), [vec![am.clone()], alive.clone()].concat());
    assert!(!env.core.recovering(), "every known node is back");
    assert_eq!(env.core.cluster_used(), used_before - Resource::new(512, 1));
    assert_eq!(env.app(app).used(), used_before - Resource::new(512, 1));
    assert!(env.core.container(&launch.container_id).is_some_and(|c| c.is_am()));

    let mut finished = done(workers[2], 0);
    finished.resource = Resource::new(512, 1);
    let response = env.heartbeat(&node, [vec![am, finished], alive].concat());
    assert!(response.containers_to_cleanup.is_empty(), "adopted containers keep running");
    assert_eq!(response.acked_completed, vec![workers[2]]);

    let req = env.req();
    env.step(Event::AmRegister { req, attempt, request: RegisterAmRequest::default() });
    assert!(matches!(env.fx.take_reply(req), Reply::AmRegister(Ok(_))));
    assert_eq!(env.app(app).state(), AppState::Running);
    let response =
        env.allocate(attempt, AllocateRequest { asks: vec![ask(1, 512, 1)], ..Default::default() }).unwrap().unwrap();
    let completed: Vec<ContainerId> = response.completed.iter().map(|c| c.container_id).collect();
    assert_eq!(completed, vec![workers[2]], "the AM hears of the container that ended during the switch");
    assert_eq!(response.allocated.len(), 1);
    let new_id = response.allocated[0].id;
    assert_eq!(new_id.epoch, env.core.cfg.epoch);
    assert!(!workers.contains(&new_id) && new_id != launch.container_id, "ids stay unique across epochs");
}

#[test]
fn scheduling_resumes_when_known_nodes_are_back_or_after_two_heartbeats() {
    for wait_for_both in [true, false] {
        let mut store = TestStore::default();
        let mut env = Env::new();
        env.core.cfg.epoch = store.claim_epoch();
        // Nodes too small for the AM, so the app is still waiting at the failover.
        let n1 = env.add_node("n1", 128, 1);
        let n2 = env.add_node("n2", 128, 1);
        let app = env.submit();
        assert!(env.fx.take_launches().is_empty());
        persist(&mut store, &mut env);

        let mut env = take_over(&mut store, 60_000);
        assert_eq!(env.app(app).attempts()[0].state(), AttemptState::Scheduled);
        register(&mut env, &n1, Resource::new(4096, 4), vec![]);
        assert!(env.fx.take_launches().is_empty(), "n2 has not reported yet");
        env.advance(1_000);
        assert!(env.fx.take_launches().is_empty());
        if wait_for_both {
            register(&mut env, &n2, Resource::new(4096, 4), vec![]);
        } else {
            env.advance(1_001);
        }
        let launches = env.fx.take_launches();
        assert_eq!(launches.len(), 1, "wait_for_both={wait_for_both}");
        assert_eq!(launches[0].container_id.attempt.attempt, 1, "the stored attempt gets its AM");
    }
}

#[test]
fn containers_of_finished_attempts_are_cleaned_up_and_lost_nodes_forgotten() {
    let mut store = TestStore::default();
    let mut env = Env::new();
    env.core.cfg.epoch = store.claim_epoch();
    let node = env.add_node("n1", 4096, 4);
    let (app, launch) = env.running_app();
    let req = env.req();
    let kill = Event::Kill { req, app, diagnostics: None };
    env.step(kill);
    persist(&mut store, &mut env);

    let mut env = take_over(&mut store, 60_000);
    assert_eq!(env.app(app).state(), AppState::Killed);
    let am = report(launch.container_id, Resource::new(256, 1), NmContainerState::Running);
    register(&mut env, &node, Resource::new(4096, 4), vec![am.clone()]);
    assert_eq!(env.core.cluster_used(), Resource::ZERO, "not adopted");
    assert_eq!(env.heartbeat(&node, vec![am]).containers_to_cleanup, vec![launch.container_id]);

    // A node that goes silent is lost and forgotten by the store.
    env.advance(CoreConfig::for_tests().settings.nm_expiry_ms + 1);
    assert!(env.fx.take_persisted().contains(&StoreOp::RemoveNode(node.clone())));
}

#[test]
fn an_application_id_from_the_previous_incarnation_can_be_submitted() {
    let mut store = TestStore::default();
    let mut env = Env::new();
    env.core.cfg.epoch = store.claim_epoch();
    // The client got this id from the old active, which died before the submission.
    let issued_before = env.new_app_id();
    let mut env = take_over(&mut store, 60_000);
    assert!(issued_before.cluster_ts < env.core.cfg.cluster_ts);
    assert_eq!(env.submit_with(Env::context(issued_before)).unwrap(), issued_before);
    let from_the_future = ApplicationId::new(env.core.cfg.cluster_ts + 1, 1);
    assert!(matches!(env.submit_with(Env::context(from_the_future)), Err(CoreError::AppIdNotIssued(_))));
}

#[test]
fn a_container_its_am_starts_after_the_failover_is_adopted_from_a_heartbeat() {
    let mut store = TestStore::default();
    let mut env = Env::new();
    env.core.cfg.epoch = store.claim_epoch();
    let node = env.add_node("n1", 4096, 4);
    let (_, launch) = env.running_app();
    let attempt = launch.container_id.attempt;
    let got = env.allocate(attempt, AllocateRequest { asks: vec![ask(1, 512, 1)], ..Default::default() });
    let late = got.unwrap().unwrap().allocated[0].id;
    persist(&mut store, &mut env);

    let mut env = take_over(&mut store, 60_000);
    let am = report(launch.container_id, Resource::new(256, 1), NmContainerState::Running);
    register(&mut env, &node, Resource::new(4096, 4), vec![am.clone()]);
    // The AM starts the container it was given before the failover only now.
    let started = report(late, Resource::new(512, 1), NmContainerState::Running);
    let response = env.heartbeat(&node, vec![am, started]);
    assert!(response.containers_to_cleanup.is_empty(), "{response:?}");
    assert!(env.core.container(&late).is_some());
    assert_eq!(env.core.cluster_used(), Resource::new(768, 2));
    // A container of this epoch that the core does not know is still cleaned up.
    let stray = ContainerId { epoch: env.core.cfg.epoch, seq: 99, ..late };
    let response = env.heartbeat(&node, vec![report(stray, Resource::new(128, 1), NmContainerState::Running)]);
    assert_eq!(response.containers_to_cleanup, vec![stray]);
}

/// A core of a new incarnation recovering `state` at 60 s.
fn recover_state(state: RecoveredState) -> (Env, Result<(), CoreError>) {
    let mut cfg = CoreConfig::for_tests();
    cfg.cluster_ts = 2_000;
    cfg.epoch = 2;
    let mut env = Env::with_config(cfg);
    env.now = 60_000;
    let recovered = env.core.recover(state, env.now, &mut env.fx);
    (env, recovered)
}

#[test]
fn recovery_moves_stored_states_only_along_the_lifecycle_edges() {
    let mut store = TestStore::default();
    let mut env = Env::new();
    env.core.cfg.epoch = store.claim_epoch();
    env.add_node("n1", 128, 1); // too small for the AM: its attempt stays SCHEDULED
    let app = env.submit();
    persist(&mut store, &mut env);
    let stored = store.load();
    assert_eq!((stored.apps[0].state, stored.attempts[0].state), (AppState::Submitted, AttemptState::Scheduled));

    // An attempt stored before it was scheduled gets there through SUBMITTED; an app stored
    // RUNNING waits for its AM again in ACCEPTED.
    let mut state = stored.clone();
    state.apps[0].state = AppState::Running;
    state.attempts[0].state = AttemptState::New;
    let (env, recovered) = recover_state(state);
    recovered.unwrap();
    assert_eq!(env.app(app).state(), AppState::Accepted);
    assert_eq!(env.app(app).attempts()[0].state(), AttemptState::Scheduled);

    // No edge leads from NEW to ACCEPTED: a damaged store fails the recovery with the illegal
    // transition rather than being taken at its word.
    let mut state = stored;
    state.apps[0].state = AppState::New;
    let (_, recovered) = recover_state(state);
    let Err(CoreError::IllegalTransition(t)) = recovered else { panic!("recovered: {recovered:?}") };
    assert_eq!((t.machine, t.from.as_str(), t.to.as_str()), ("application", "NEW", "ACCEPTED"), "{t}");
}
