//! Errors the core answers requests with. Each maps to a stable REST code, an HTTP status and an
//! operator hint in one place ([`CoreError::describe`]).

use weft_common::{ApplicationId, AttemptId, ContainerId, NodeId, Resource};

use super::lifecycle::IllegalTransition;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    #[error("app with id: {0} not found")]
    UnknownApp(ApplicationId),
    #[error("application id {0} was not issued by this ResourceManager")]
    AppIdNotIssued(ApplicationId),
    #[error("application {0} has already been submitted")]
    AlreadySubmitted(ApplicationId),
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("{0} is a parent queue; applications can only be submitted to leaf queues")]
    NotALeafQueue(String),
    #[error("queue {0} is stopped and accepts no new applications")]
    QueueStopped(String),
    #[error("user {user} may not submit applications to queue {queue}")]
    SubmitDenied { user: String, queue: String },
    #[error("queue {queue} already holds its maximum of {max} applications")]
    QueueFull { queue: String, max: u32 },
    #[error("the placement rules reject the application of user {user} (requested queue: {})", requested.as_deref().unwrap_or("none"))]
    PlacementRejected { user: String, requested: Option<String> },
    #[error("user {0} may not administer the queues")]
    AdminDenied(String),
    #[error(
        "user {user} may not modify application {app}: it belongs to {owner} and {user} does not administer queue {queue}"
    )]
    ModifyDenied { user: String, app: ApplicationId, owner: String, queue: String },
    #[error("queue reload refused: {0}")]
    ReloadRefused(String),
    #[error("cannot move the application: {0}")]
    MoveRefused(String),
    #[error("application {app} is {state}; {what} only applies to unfinished applications")]
    AppFinished { app: ApplicationId, state: weft_common::states::AppState, what: &'static str },
    #[error("invalid submission: field `{field}`: {message}")]
    InvalidSubmission { field: &'static str, message: String },
    #[error("invalid resource request: {field} {requested} exceeds the cluster maximum allocation {maximum}")]
    ResourceAboveMaximum { field: &'static str, requested: Resource, maximum: Resource },
    #[error("invalid resource request: {0}")]
    InvalidResourceRequest(String),
    #[error(
        "AM is not registered for known application attempt {0}, or the RM restarted after the AM registered. AM should re-register."
    )]
    AmNotRegistered(AttemptId),
    #[error("attempt {0} is not the current attempt of its application (it has finished)")]
    AttemptNotCurrent(AttemptId),
    #[error("invalid responseId in allocate request from {attempt}: expected {expected}, got {got}")]
    InvalidResponseId { attempt: AttemptId, expected: u64, got: u64 },
    #[error("container {container} does not belong to {attempt}")]
    ForeignContainer { container: ContainerId, attempt: AttemptId },
    #[error("node {0} is not registered")]
    UnknownNode(NodeId),
    #[error("node {node} registered with invalid resources {total}")]
    InvalidNodeResources { node: NodeId, total: Resource },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<IllegalTransition> for CoreError {
    fn from(e: IllegalTransition) -> Self {
        CoreError::Internal(e.to_string())
    }
}

/// How an error is shown over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorDescription {
    pub status: u16,
    pub exception: &'static str,
    pub code: &'static str,
    pub hint: &'static str,
}

impl CoreError {
    pub fn describe(&self) -> ErrorDescription {
        let d = |status, exception, code, hint| ErrorDescription { status, exception, code, hint };
        match self {
            CoreError::UnknownApp(_) => {
                d(404, "NotFoundException", "WEFT-APP-NOT-FOUND", "list applications with `weft app list`")
            }
            CoreError::AppIdNotIssued(_) => d(
                400,
                "BadRequestException",
                "WEFT-APP-ID-NOT-ISSUED",
                "obtain an id from POST /ws/v1/cluster/apps/new-application on this ResourceManager first",
            ),
            CoreError::AlreadySubmitted(_) => d(
                400,
                "BadRequestException",
                "WEFT-APP-ALREADY-SUBMITTED",
                "each submission needs a fresh id from new-application",
            ),
            CoreError::UnknownQueue(_) => d(
                400,
                "BadRequestException",
                "WEFT-QUEUE-UNKNOWN",
                "list queues with `weft queue list`; submit to a leaf queue",
            ),
            CoreError::NotALeafQueue(_) => {
                d(400, "BadRequestException", "WEFT-QUEUE-NOT-LEAF", "submit to one of the leaf queues below it")
            }
            CoreError::QueueStopped(_) => d(
                400,
                "BadRequestException",
                "WEFT-QUEUE-STOPPED",
                "the administrator stopped this queue; submit elsewhere",
            ),
            CoreError::SubmitDenied { .. } => d(
                403,
                "ForbiddenException",
                "WEFT-QUEUE-ACL-DENIED",
                "ask the queue's administrator to add you to acl-submit-applications",
            ),
            CoreError::QueueFull { .. } => {
                d(400, "BadRequestException", "WEFT-QUEUE-FULL", "wait for applications to finish (max-applications)")
            }
            CoreError::ModifyDenied { .. } => d(
                403,
                "ForbiddenException",
                "WEFT-APP-ACCESS-DENIED",
                "only the application's owner or an administrator of its queue (acl-administer-queue) may do this",
            ),
            CoreError::AdminDenied(_) => {
                d(403, "ForbiddenException", "WEFT-QUEUE-ADMIN-DENIED", "root's acl-administer-queue must name you")
            }
            CoreError::ReloadRefused(_) => d(
                400,
                "BadRequestException",
                "WEFT-QUEUE-RELOAD-REFUSED",
                "the running configuration is unchanged; fix the file and reload again",
            ),
            CoreError::MoveRefused(_) => d(
                400,
                "BadRequestException",
                "WEFT-APP-MOVE-REFUSED",
                "pick a queue with room, or wait for usage to drop",
            ),
            CoreError::AppFinished { .. } => {
                d(400, "BadRequestException", "WEFT-APP-FINISHED", "this only applies to unfinished applications")
            }
            CoreError::PlacementRejected { .. } => {
                d(400, "BadRequestException", "WEFT-PLACEMENT-REJECTED", "name a queue you may submit to")
            }
            CoreError::InvalidSubmission { .. } => {
                d(400, "BadRequestException", "WEFT-SUBMISSION-INVALID", "fix the named field and submit again")
            }
            CoreError::ResourceAboveMaximum { .. } => d(
                400,
                "BadRequestException",
                "WEFT-RESOURCE-ABOVE-MAXIMUM",
                "ask for at most the maximum allocation (see maximum-resource-capability in new-application)",
            ),
            CoreError::InvalidResourceRequest(_) => {
                d(400, "BadRequestException", "WEFT-RESOURCE-REQUEST-INVALID", "resources must be positive")
            }
            CoreError::AmNotRegistered(_) => d(
                409,
                "ApplicationMasterNotRegisteredException",
                "WEFT-AM-NOT-REGISTERED",
                "register the AM again, then re-send all asks",
            ),
            CoreError::AttemptNotCurrent(_) => d(
                409,
                "ApplicationAttemptNotFoundException",
                "WEFT-ATTEMPT-NOT-CURRENT",
                "this attempt is over; the AM should exit",
            ),
            CoreError::InvalidResponseId { .. } => d(
                400,
                "InvalidApplicationMasterRequestException",
                "WEFT-AM-INVALID-RESPONSE-ID",
                "send the response_id of the last allocate response",
            ),
            CoreError::ForeignContainer { .. } => {
                d(403, "ForbiddenException", "WEFT-CONTAINER-FORBIDDEN", "an AM may only release its own containers")
            }
            CoreError::UnknownNode(_) => d(404, "NotFoundException", "WEFT-NODE-UNKNOWN", "register the node first"),
            CoreError::InvalidNodeResources { .. } => d(
                400,
                "BadRequestException",
                "WEFT-NODE-RESOURCES-INVALID",
                "configure positive memory and vcores on the NodeManager",
            ),
            CoreError::Internal(_) => d(500, "YarnRuntimeException", "WEFT-INTERNAL", "this is a bug; see the RM log"),
        }
    }
}
