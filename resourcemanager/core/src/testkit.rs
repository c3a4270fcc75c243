//! The one driver of the core for tests and benchmarks (feature `testkit`): [`Env`] steps a
//! [`Core`] by hand on a virtual clock the way the RM server feeds it, and records every effect
//! for the test to examine. The core's own tests, the server's view tests and the core's
//! benchmarks all use it; the simulator's engine is a product, not a test driver, and has its own.

use weft_common::protocol::{
    AllocateRequest, AllocateResponse, ContainerReport, NodeAction, NodeHeartbeatRequest, NodeHeartbeatResponse,
    RegisterAmRequest, RegisterNodeRequest, ResourceRequest,
};
use weft_common::rest::{AmContainerSpec, ApplicationSubmissionContext, Commands};
use weft_common::states::{NmContainerState, exit_status};
use weft_common::token::MasterKey;
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

use crate::queues::{QueuesConfig, SchedulerMode};
use crate::records::StoreOp;
use crate::{AmLaunch, App, Core, CoreConfig, CoreError, CoreSettings, Event, RecordingEffects, Reply, ReqId};

impl CoreConfig {
    /// Small, fast-expiring settings with fixed keys for tests: FIFO over `root.default`.
    pub fn for_tests() -> Self {
        CoreConfig {
            cluster_ts: 1_000,
            epoch: 1,
            container_token_key: MasterKey { key_id: 1, secret_hex: "00".repeat(32) },
            am_token_key: MasterKey { key_id: 2, secret_hex: "11".repeat(32) },
            rm_addresses: vec!["http://127.0.0.1:8088".into()],
            settings: CoreSettings {
                max_allocation: Resource::new(4096, 4),
                nm_expiry_ms: 10_000,
                am_expiry_ms: 20_000,
                container_allocation_expiry_ms: 60_000,
                finished_app_container_grace_ms: 5_000,
                max_completed_apps: 100,
                gang_reservation_timeout_ms: 60_000,
                ..CoreSettings::default()
            },
            queues: QueuesConfig { scheduler: SchedulerMode::Fifo, ..QueuesConfig::default() },
        }
    }

    /// [`CoreConfig::for_tests`] under the queue file `queues_yaml`, with room for large asks
    /// (64 GB, 64 vcores).
    #[track_caller]
    pub fn for_tests_with_queues(queues_yaml: &str) -> Self {
        let for_tests = CoreConfig::for_tests();
        CoreConfig {
            settings: CoreSettings { max_allocation: Resource::new(65_536, 64), ..for_tests.settings },
            queues: QueuesConfig::parse(queues_yaml, "queues.yaml").unwrap_or_else(|e| panic!("{e}")),
            ..for_tests
        }
    }
}

/// A core stepped by hand. `now` is the virtual clock (move it with [`Env::advance`] or set it);
/// `fx` records every effect, and [`RecordingEffects::assert_drained`] fails a test that left one
/// unexamined. Nodes are named `<name>:8042`; apps are submitted by `alice` unless a test says
/// otherwise. Every helper panics (fails the test) when the core does not answer as it should.
pub struct Env {
    pub core: Core,
    pub fx: RecordingEffects,
    pub now: Millis,
    next_req: ReqId,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A core with [`CoreConfig::for_tests`] at 10 s.
    pub fn new() -> Self {
        Self::with_config(CoreConfig::for_tests())
    }

    #[track_caller]
    pub fn with_config(cfg: CoreConfig) -> Self {
        let core = Core::new(cfg).unwrap_or_else(|e| panic!("{e}"));
        Self { core, fx: RecordingEffects::default(), now: 10_000, next_req: 1 }
    }

    /// A core with [`CoreConfig::for_tests_with_queues`].
    #[track_caller]
    pub fn with_queues(queues_yaml: &str) -> Self {
        Self::with_config(CoreConfig::for_tests_with_queues(queues_yaml))
    }

    /// Feeds `event` at `now`. Observations (metrics) are dropped: tests that count them read
    /// `fx.observations` before the next step.
    pub fn step(&mut self, event: Event) {
        self.core.handle(event, self.now, &mut self.fx);
        self.fx.clear_observations();
    }

    /// A fresh request id.
    pub fn req(&mut self) -> ReqId {
        self.next_req += 1;
        self.next_req
    }

    /// The request id handed out last.
    pub fn last_req(&self) -> ReqId {
        self.next_req
    }

    /// Feeds the event `make` builds with a fresh request id and takes its reply.
    #[track_caller]
    pub fn request(&mut self, make: impl FnOnce(ReqId) -> Event) -> Reply {
        let req = self.req();
        self.step(make(req));
        self.fx.take_reply(req)
    }

    /// Lets `ms` pass and ticks.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.step(Event::Tick);
    }

    pub fn add_node(&mut self, name: &str, memory_mb: u64, vcores: u32) -> NodeId {
        self.add_node_in_rack(name, memory_mb, vcores, None)
    }

    #[track_caller]
    pub fn add_node_in_rack(&mut self, name: &str, memory_mb: u64, vcores: u32, rack: Option<&str>) -> NodeId {
        let node_id = NodeId(format!("{name}:8042").into());
        let request = RegisterNodeRequest {
            node_id: node_id.clone(),
            http_address: format!("http://{name}:8042"),
            total: Resource::new(memory_mb, vcores),
            containers: vec![],
            version: "test".into(),
            rack: rack.map(str::to_owned),
        };
        let Reply::NodeRegister(Ok(r)) = self.request(|req| Event::NodeRegister { req, request }) else {
            panic!("registering {node_id} failed")
        };
        assert_eq!(r.action, NodeAction::Normal);
        node_id
    }

    #[track_caller]
    pub fn heartbeat(&mut self, node: &NodeId, containers: Vec<ContainerReport>) -> NodeHeartbeatResponse {
        self.heartbeat_with_dirs(node, containers, Vec::new())
    }

    /// A heartbeat from a node that holds directories of `apps`.
    #[track_caller]
    pub fn heartbeat_with_dirs(
        &mut self,
        node: &NodeId,
        containers: Vec<ContainerReport>,
        apps: Vec<ApplicationId>,
    ) -> NodeHeartbeatResponse {
        let request = NodeHeartbeatRequest {
            node_id: node.clone(),
            containers,
            health: Default::default(),
            applications_with_dirs: apps,
        };
        match self.request(|req| Event::NodeHeartbeat { req, request }) {
            Reply::NodeHeartbeat(Ok(r)) => r,
            other => panic!("heartbeat of {node} failed: {other:?}"),
        }
    }

    #[track_caller]
    pub fn new_app_id(&mut self) -> ApplicationId {
        let Reply::NewApplication(Ok(r)) = self.request(|req| Event::NewApplication { req }) else {
            panic!("no application id")
        };
        r.application_id
    }

    /// A submission of app `id`: an AM of 256 MB and 1 vcore running `run-am`, no queue named.
    pub fn context(id: ApplicationId) -> ApplicationSubmissionContext {
        ApplicationSubmissionContext {
            application_id: Some(id),
            application_name: Some("t".into()),
            am_container_spec: AmContainerSpec {
                commands: Some(Commands { command: vec!["run-am".into()] }),
                ..Default::default()
            },
            resource: Some(Resource::new(256, 1)),
            ..Default::default()
        }
    }

    /// Submits `ctx` as `user` the way the server does: the core writes the app and acknowledges
    /// it only once the store has it (`Event::Persisted`). A refusal comes back at once.
    #[track_caller]
    pub fn submit_as(&mut self, user: &str, ctx: ApplicationSubmissionContext) -> Result<ApplicationId, CoreError> {
        let req = self.req();
        let id = ctx.application_id;
        self.step(Event::Submit { req, user: user.into(), context: Box::new(ctx) });
        if self.fx.has_reply(req) {
            match self.fx.take_reply(req) {
                Reply::Submit(Err(e)) => return Err(e),
                other => panic!("submit acknowledged before it was persisted: {other:?}"),
            }
        }
        let written = self.fx.persisted.iter().any(|op| matches!(op, StoreOp::PutApp(a) if Some(a.id) == id));
        assert!(written, "the submitted app was not written to the store: {:?}", self.fx.persisted);
        self.step(Event::Persisted);
        let Reply::Submit(r) = self.fx.take_reply(req) else { panic!("no submit reply") };
        r
    }

    /// Submits `ctx` as `alice`.
    #[track_caller]
    pub fn submit_with(&mut self, ctx: ApplicationSubmissionContext) -> Result<ApplicationId, CoreError> {
        self.submit_as("alice", ctx)
    }

    /// Submits an app of [`Env::context`] as `alice`.
    #[track_caller]
    pub fn submit(&mut self) -> ApplicationId {
        let id = self.new_app_id();
        self.submit_with(Self::context(id)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Submits an app as `user` to `queue` (none: the placement rules decide) with an AM of `am`.
    pub fn submit_to(&mut self, user: &str, queue: Option<&str>, am: Resource) -> Result<ApplicationId, CoreError> {
        let id = self.new_app_id();
        let ctx =
            ApplicationSubmissionContext { queue: queue.map(str::to_owned), resource: Some(am), ..Self::context(id) };
        self.submit_as(user, ctx)
    }

    /// Launches and registers the AM of `app`, whose container must have been allocated; other
    /// apps' launches stay in `fx`. Returns the AM's launch.
    #[track_caller]
    pub fn start_am(&mut self, app: ApplicationId) -> AmLaunch {
        let pos = self.fx.launches.iter().position(|l| l.container_id.app() == app);
        let launch = self.fx.launches.remove(pos.unwrap_or_else(|| panic!("no AM launch for {app}")));
        self.step(Event::AmLaunched { container: launch.container_id });
        let attempt = launch.container_id.attempt;
        let reply = self.request(|req| Event::AmRegister { req, attempt, request: RegisterAmRequest::default() });
        assert!(matches!(reply, Reply::AmRegister(Ok(_))), "registering the AM of {app}: {reply:?}");
        launch
    }

    /// Submits an app and brings its AM to RUNNING; returns the AM launch.
    #[track_caller]
    pub fn running_app(&mut self) -> (ApplicationId, AmLaunch) {
        let id = self.submit();
        let launch = self.start_am(id);
        (id, launch)
    }

    /// One allocate call; its answer, or `None` while it is held (long poll).
    #[track_caller]
    pub fn allocate(
        &mut self,
        attempt: AttemptId,
        request: AllocateRequest,
    ) -> Option<Result<AllocateResponse, CoreError>> {
        let req = self.req();
        self.step(Event::Allocate { req, attempt, request });
        self.fx.has_reply(req).then(|| match self.fx.take_reply(req) {
            Reply::Allocate(r) => r,
            other => panic!("{other:?}"),
        })
    }

    /// One allocate call of `app`'s current attempt with `asks`, answered at once.
    #[track_caller]
    pub fn allocate_now(&mut self, app: ApplicationId, asks: Vec<ResourceRequest>) -> AllocateResponse {
        let attempt = self.app(app).current_attempt().unwrap_or_else(|| panic!("{app} has no attempt"));
        let id = attempt.id();
        let response_id = self.response_id(id);
        match self.allocate(id, AllocateRequest { response_id, asks, ..Default::default() }) {
            Some(Ok(response)) => response,
            other => panic!("allocate of {app}: {other:?}"),
        }
    }

    /// The id of the last allocate response `attempt`'s AM got (0 once the attempt has ended).
    pub fn response_id(&self, attempt: AttemptId) -> u64 {
        self.core.am_session(attempt).map_or(0, |s| s.response_id())
    }

    #[track_caller]
    pub fn app(&self, id: ApplicationId) -> &App {
        self.core.app(id).unwrap_or_else(|| panic!("no app {id}"))
    }

    /// The containers the core asked to stop since the last call.
    pub fn stops(&mut self) -> Vec<ContainerId> {
        self.fx.take_stops().into_iter().map(|s| s.container_id).collect()
    }
}

/// `n` containers of `memory_mb` and 1 vcore anywhere, at request priority `priority`.
pub fn ask(priority: i32, memory_mb: u64, n: u32) -> ResourceRequest {
    ResourceRequest {
        priority,
        capability: Resource::new(memory_mb, 1),
        num_containers: n,
        resource_name: "*".into(),
        relax_locality: true,
        gang: false,
    }
}

/// A heartbeat's report of a container that exited with `exit`.
pub fn done(id: ContainerId, exit: i32) -> ContainerReport {
    ContainerReport {
        container_id: id,
        state: NmContainerState::Complete,
        exit_status: exit,
        diagnostics: String::new(),
        resource: Resource::ZERO,
        pid: None,
    }
}

/// A heartbeat's report of a running container.
pub fn running(id: ContainerId) -> ContainerReport {
    ContainerReport {
        container_id: id,
        state: NmContainerState::Running,
        exit_status: exit_status::INVALID,
        diagnostics: String::new(),
        resource: Resource::ZERO,
        pid: None,
    }
}
