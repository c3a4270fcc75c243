//! Errors the core answers requests with. Each maps to one stable [`ErrorCode`]
//! ([`CoreError::code`]), which carries the HTTP status and the operator hint.

use weft_common::error::ErrorCode;
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
    /// A state change the lifecycle tables do not allow: a bug in the core, never the
    /// caller's fault.
    #[error("internal error: {0}")]
    IllegalTransition(#[from] IllegalTransition),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// The stable code this error is answered with. Its HTTP status, YARN exception name and
    /// hint belong to the code (`ErrorCode`), not to the core.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::UnknownApp(_) => ErrorCode::AppNotFound,
            CoreError::AppIdNotIssued(_) => ErrorCode::AppIdNotIssued,
            CoreError::AlreadySubmitted(_) => ErrorCode::AppAlreadySubmitted,
            CoreError::UnknownQueue(_) => ErrorCode::QueueUnknown,
            CoreError::NotALeafQueue(_) => ErrorCode::QueueNotLeaf,
            CoreError::QueueStopped(_) => ErrorCode::QueueStopped,
            CoreError::SubmitDenied { .. } => ErrorCode::QueueAclDenied,
            CoreError::QueueFull { .. } => ErrorCode::QueueFull,
            CoreError::ModifyDenied { .. } => ErrorCode::AppAccessDenied,
            CoreError::AdminDenied(_) => ErrorCode::QueueAdminDenied,
            CoreError::ReloadRefused(_) => ErrorCode::QueueReloadRefused,
            CoreError::MoveRefused(_) => ErrorCode::AppMoveRefused,
            CoreError::AppFinished { .. } => ErrorCode::AppFinished,
            CoreError::PlacementRejected { .. } => ErrorCode::PlacementRejected,
            CoreError::InvalidSubmission { .. } => ErrorCode::SubmissionInvalid,
            CoreError::ResourceAboveMaximum { .. } => ErrorCode::ResourceAboveMaximum,
            CoreError::InvalidResourceRequest(_) => ErrorCode::ResourceRequestInvalid,
            CoreError::AmNotRegistered(_) => ErrorCode::AmNotRegistered,
            CoreError::AttemptNotCurrent(_) => ErrorCode::AttemptNotCurrent,
            CoreError::InvalidResponseId { .. } => ErrorCode::AmInvalidResponseId,
            CoreError::ForeignContainer { .. } => ErrorCode::ContainerForbidden,
            CoreError::UnknownNode(_) => ErrorCode::NodeUnknown,
            CoreError::InvalidNodeResources { .. } => ErrorCode::NodeResourcesInvalid,
            CoreError::IllegalTransition(_) | CoreError::Internal(_) => ErrorCode::Internal,
        }
    }
}
