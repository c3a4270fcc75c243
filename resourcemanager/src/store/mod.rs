//! Durable RM state: applications and their attempts, behind [`StateStore`].
//!
//! What is stored mirrors YARN's RM state store: per app the submission (user, queue, AM launch
//! context, limits), its latest durable state and outcome; per attempt its AM container, node,
//! state and outcome. Nodes and containers are not stored; they are rebuilt from NodeManagers.
//!
//! Fencing: every RM incarnation first calls [`StateStore::claim_epoch`], which bumps a single
//! `rm_epoch` row and returns the new value. Every [`StateStore::apply`] runs in one transaction
//! that first checks the stored epoch still equals the caller's; if another RM has claimed the
//! store since, the whole batch is refused with [`StoreError::Fenced`]. The same epoch prefixes
//! container ids (`container_e<epoch>_…`), so ids stay unique across restarts and failovers.
//!
//! Architecture Invariant: the scheduler core never calls the store; it emits [`StoreOp`]s as
//! effects and the server applies them (one transaction per core step) before any reply of that
//! step is sent.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use weft_common::protocol::ContainerLaunchContext;
use weft_common::states::{AppState, AttemptState, FinalStatus};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

pub mod memory;
pub mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    pub id: ApplicationId,
    pub user: String,
    pub queue: String,
    pub name: String,
    pub application_type: String,
    pub tags: Vec<String>,
    pub priority: i32,
    pub max_attempts: u32,
    pub am_resource: Resource,
    pub launch_context: ContainerLaunchContext,
    pub submit_time: Millis,
    pub finish_time: Option<Millis>,
    /// Latest durable state; a final state once the app has finished.
    pub state: AppState,
    pub final_status: FinalStatus,
    pub diagnostics: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub id: AttemptId,
    pub state: AttemptState,
    pub am_container: Option<ContainerId>,
    pub node_id: Option<NodeId>,
    pub node_http_address: String,
    pub start_time: Millis,
    pub finish_time: Option<Millis>,
    pub diagnostics: String,
    pub am_exit_status: Option<i32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// Insert or replace the app row.
    PutApp(AppRecord),
    /// Insert or replace the attempt row (its app row exists, in the store or earlier in the batch).
    PutAttempt(AttemptRecord),
    /// Remove the app and its attempts (retention of completed apps).
    RemoveApp(ApplicationId),
}

/// Everything a new RM incarnation loads at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveredState {
    /// Ordered by app id.
    pub apps: Vec<AppRecord>,
    /// Ordered by attempt id.
    pub attempts: Vec<AttemptRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store is fenced: this RM holds epoch {mine} but the store is at epoch {current}")]
    Fenced { mine: u32, current: u32 },
    #[error("state store database error")]
    Database(#[from] sqlx::Error),
    #[error("state store migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in state store: {0}")]
    Corrupt(String),
    #[error("cannot open state store at {path}: {reason}")]
    Open { path: String, reason: String },
}

/// Durable storage of RM state. Implementations: [`SqliteStore`] (embedded default),
/// [`MemoryStore`] (tests and the simulator). Object-safe so the server can hold `Arc<dyn StateStore>`.
pub trait StateStore: Send + Sync + 'static {
    /// Short name shown in `/ws/v1/cluster/info` (`rmStateStoreName`).
    fn name(&self) -> &'static str;

    /// Bumps the fencing epoch and returns the new value. `holder` names the claiming RM (logged
    /// and stored for operators).
    fn claim_epoch<'a>(&'a self, holder: &'a str) -> BoxFuture<'a, Result<u32, StoreError>>;

    /// Applies `ops` atomically, in order, if the store's epoch still equals `epoch`.
    fn apply<'a>(&'a self, epoch: u32, ops: &'a [StoreOp]) -> BoxFuture<'a, Result<(), StoreError>>;

    fn load(&self) -> BoxFuture<'_, Result<RecoveredState, StoreError>>;
}
