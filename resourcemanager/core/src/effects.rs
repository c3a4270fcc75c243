//! Everything the core wants done in the outside world goes through [`Effects`].
//!
//! The server implements it with channels, HTTP calls and the state store; tests use
//! [`RecordingEffects`], which records every effect and fails the test if one is left unchecked.

use weft_common::protocol::{
    AllocateResponse, ContainerLaunchContext, FinishAmResponse, NodeHeartbeatResponse, RegisterAmResponse,
    RegisterNodeResponse,
};
use weft_common::rest::NewApplication;
use weft_common::states::AppState;
use weft_common::{ApplicationId, ContainerId, NodeId};

use super::error::CoreError;
use crate::queues::ReloadPlan;
use crate::records::StoreOp;

/// Identifies a pending request whose answer the core gives through [`Effects::reply`], possibly
/// in a later step (long-polled allocates, submits waiting for the store).
pub type ReqId = u64;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    NewApplication(Result<NewApplication, CoreError>),
    Submit(Result<ApplicationId, CoreError>),
    Kill(Result<AppState, CoreError>),
    NodeRegister(Result<RegisterNodeResponse, CoreError>),
    NodeHeartbeat(Result<NodeHeartbeatResponse, CoreError>),
    AmRegister(Result<RegisterAmResponse, CoreError>),
    Allocate(Result<AllocateResponse, CoreError>),
    AmFinish(Result<FinishAmResponse, CoreError>),
    ReloadQueues(Result<ReloadPlan, CoreError>),
    /// The app's queue (as shown to users) after a move.
    MoveApp(Result<String, CoreError>),
    /// The app's priority after the change (capped by the queue).
    SetPriority(Result<i32, CoreError>),
}

/// Start an AM container on its NM (YARN's AMLauncher). The outcome comes back as
/// [`super::Event::AmLaunched`] or [`super::Event::AmLaunchFailed`].
#[derive(Debug, Clone, PartialEq)]
pub struct AmLaunch {
    pub container_id: ContainerId,
    pub node_http_address: String,
    pub container_token: String,
    pub launch_context: ContainerLaunchContext,
}

/// Stop a container the RM no longer wants (kill, release, finished app). Best effort: the NM's
/// next heartbeat also gets it in `containers_to_cleanup` if it still reports the container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStop {
    pub container_id: ContainerId,
    pub node_id: NodeId,
    pub node_http_address: String,
    pub container_token: String,
    pub exit_status: i32,
}

/// Facts for metrics that only the core can observe at the moment they happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A container was allocated after its ask waited `wait_ms`.
    ContainerAllocated {
        wait_ms: u64,
        is_am: bool,
    },
    ContainerCompleted {
        exit_status: i32,
    },
    /// The app reached a final state (the server sees observations only after the step's
    /// store writes are durable).
    AppFinished {
        app: ApplicationId,
        state: AppState,
    },
    NodeLost,
    /// A container an earlier RM incarnation allocated was taken over after a failover.
    ContainerRecovered,
    /// The preemption monitor chose a container (its AM is told).
    PreemptionMarked,
    /// A marked container outlived its grace period and was killed.
    ContainerPreempted,
    /// An error no caller could be given (an illegal transition in a step that answers no one):
    /// it was logged and counted in [`crate::Counters::internal_errors`].
    InternalError,
}

pub trait Effects {
    fn reply(&mut self, req: ReqId, reply: Reply);
    fn persist(&mut self, op: StoreOp);
    fn launch_am(&mut self, launch: AmLaunch);
    fn stop_container(&mut self, stop: ContainerStop);
    fn observe(&mut self, observation: Observation);
}

/// Test double: records effects in order. Call the `take_*` helpers to consume what a test
/// expects, and [`RecordingEffects::assert_drained`] to fail on anything left unexamined.
#[derive(Debug, Default)]
pub struct RecordingEffects {
    pub replies: Vec<(ReqId, Reply)>,
    pub persisted: Vec<StoreOp>,
    pub launches: Vec<AmLaunch>,
    pub stops: Vec<ContainerStop>,
    pub observations: Vec<Observation>,
}

impl Effects for RecordingEffects {
    fn reply(&mut self, req: ReqId, reply: Reply) {
        self.replies.push((req, reply));
    }
    fn persist(&mut self, op: StoreOp) {
        self.persisted.push(op);
    }
    fn launch_am(&mut self, launch: AmLaunch) {
        self.launches.push(launch);
    }
    fn stop_container(&mut self, stop: ContainerStop) {
        self.stops.push(stop);
    }
    fn observe(&mut self, observation: Observation) {
        self.observations.push(observation);
    }
}

impl RecordingEffects {
    /// Removes and returns the reply to `req`; panics (test failure) if there is none.
    pub fn take_reply(&mut self, req: ReqId) -> Reply {
        let pos = self
            .replies
            .iter()
            .position(|(r, _)| *r == req)
            .unwrap_or_else(|| panic!("no reply to request {req}; replies: {:?}", self.replies));
        self.replies.remove(pos).1
    }

    pub fn has_reply(&self, req: ReqId) -> bool {
        self.replies.iter().any(|(r, _)| *r == req)
    }

    pub fn take_launches(&mut self) -> Vec<AmLaunch> {
        std::mem::take(&mut self.launches)
    }

    pub fn take_stops(&mut self) -> Vec<ContainerStop> {
        std::mem::take(&mut self.stops)
    }

    pub fn take_persisted(&mut self) -> Vec<StoreOp> {
        std::mem::take(&mut self.persisted)
    }

    /// Observations are informational; tests that care inspect them, others clear them here.
    pub fn clear_observations(&mut self) {
        self.observations.clear();
    }

    #[track_caller]
    pub fn assert_drained(&self) {
        assert!(self.replies.is_empty(), "unexamined replies: {:#?}", self.replies);
        assert!(self.launches.is_empty(), "unexamined launches: {:#?}", self.launches);
        assert!(self.stops.is_empty(), "unexamined stops: {:#?}", self.stops);
    }
}
