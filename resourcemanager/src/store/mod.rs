//! Durable RM state: applications and their attempts, behind [`StateStore`].
//!
//! What is stored mirrors YARN's RM state store: per app the submission (user, queue, AM launch
//! context, limits), its latest durable state and outcome; per attempt its AM container, node,
//! state and outcome. Containers are not stored; they are rebuilt from NodeManagers. Of nodes only
//! the id and address are kept (see [`NodeRecord`]), and the token signing keys ([`MasterKeys`]).
//!
//! Fencing: every RM incarnation first calls [`StateStore::claim_epoch`], which bumps a single
//! `rm_epoch` row and returns the new value. Every [`StateStore::apply`] runs in one transaction
//! that first checks the stored epoch still equals the caller's; if another RM has claimed the
//! store since, the whole batch is refused with [`StoreError::Fenced`]. The same epoch prefixes
//! container ids (`container_e<epoch>_…`), so ids stay unique across restarts and failovers.
//!
//! Leadership (RM high availability): the same row carries a lease. An RM in an HA pair calls
//! [`StateStore::try_acquire_lease`] while standby; it takes the lease only when it is free or
//! expired, which bumps the epoch, so the first write of a deposed active fails the epoch check.
//! Lease times are taken from the database's own clock, so RM hosts' clocks need not agree.
//!
//! Architecture Invariant: the scheduler core never calls the store; it emits [`StoreOp`]s as
//! effects and the server applies them (one transaction per core step) before any reply of that
//! step is sent.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use weft_common::protocol::ContainerLaunchContext;
use weft_common::states::{AppState, AttemptState, FinalStatus};
use weft_common::token::MasterKey;
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

pub mod memory;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
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

/// A NodeManager the RM has seen, so that after a failover it knows whom to wait for before it
/// schedules again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    pub http_address: String,
}

/// The token signing keys, shared by every RM incarnation: tokens an earlier active signed (AM
/// tokens in running AMs, container tokens not yet used) stay valid after a failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeys {
    pub container_token: MasterKey,
    pub am_token: MasterKey,
}

impl MasterKeys {
    pub fn generate() -> MasterKeys {
        MasterKeys { container_token: MasterKey::generate(1), am_token: MasterKey::generate(2) }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// Insert or replace the app row.
    PutApp(AppRecord),
    /// Insert or replace the attempt row (its app row exists, in the store or earlier in the batch).
    PutAttempt(AttemptRecord),
    /// Remove the app and its attempts (retention of completed apps).
    RemoveApp(ApplicationId),
    /// Insert or replace a node row.
    PutNode(NodeRecord),
    /// Forget a node (it was lost); a no-op if it is not stored.
    RemoveNode(NodeId),
    /// Store the signing keys (written once, by the first RM that finds none).
    PutMasterKeys(MasterKeys),
}

/// Everything a new RM incarnation loads at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveredState {
    /// Ordered by app id.
    pub apps: Vec<AppRecord>,
    /// Ordered by attempt id.
    pub attempts: Vec<AttemptRecord>,
    /// Ordered by node id.
    pub nodes: Vec<NodeRecord>,
    /// `None` until some RM has stored them.
    pub master_keys: Option<MasterKeys>,
}

/// Outcome of [`StateStore::try_acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller now leads at this (new) epoch.
    Acquired { epoch: u32 },
    /// Another RM holds an unexpired lease. `holder` is what it passed as its own name.
    HeldBy { holder: String, epoch: u32 },
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
/// [`PostgresStore`] (a database server the RMs of an HA pair share), [`MemoryStore`] (tests and
/// the simulator). Object-safe so the server can hold `Arc<dyn StateStore>`.
pub trait StateStore: Send + Sync + 'static {
    /// Short name shown in `/ws/v1/cluster/info` (`rmStateStoreName`).
    fn name(&self) -> &'static str;

    /// Bumps the fencing epoch and returns the new value. `holder` names the claiming RM (logged
    /// and stored for operators).
    fn claim_epoch<'a>(&'a self, holder: &'a str) -> BoxFuture<'a, Result<u32, StoreError>>;

    /// Takes the leadership lease if nobody holds an unexpired one (the caller's own expired or
    /// released lease included): bumps the epoch, records `holder` and sets the lease to expire
    /// `lease_ms` from now by the database's clock.
    fn try_acquire_lease<'a>(
        &'a self,
        holder: &'a str,
        lease_ms: u64,
    ) -> BoxFuture<'a, Result<LeaseOutcome, StoreError>>;

    /// Extends the lease to `lease_ms` from now if the store is still at `epoch`; `false` when
    /// another RM has taken over since (the caller is deposed).
    fn renew_lease(&self, epoch: u32, lease_ms: u64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Ends the lease at once if the store is still at `epoch` (planned handover), so a standby
    /// can take over without waiting for it to expire. The epoch is unchanged.
    fn release_lease(&self, epoch: u32) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Applies `ops` atomically, in order, if the store's epoch still equals `epoch`.
    fn apply<'a>(&'a self, epoch: u32, ops: &'a [StoreOp]) -> BoxFuture<'a, Result<(), StoreError>>;

    fn load(&self) -> BoxFuture<'_, Result<RecoveredState, StoreError>>;
}

/// Purpose names of the `master_keys` rows.
pub(crate) const CONTAINER_TOKEN_KEY: &str = "container-token";
pub(crate) const AM_TOKEN_KEY: &str = "am-token";

/// The `master_keys` rows of `keys`: (purpose, key).
pub(crate) fn master_key_rows(keys: &MasterKeys) -> [(&'static str, &MasterKey); 2] {
    [(CONTAINER_TOKEN_KEY, &keys.container_token), (AM_TOKEN_KEY, &keys.am_token)]
}

/// Reassembles the keys from `(purpose, key_id, secret_hex)` rows; `None` if there are none.
pub(crate) fn master_keys_from_rows(rows: Vec<(String, u32, String)>) -> Result<Option<MasterKeys>, StoreError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut container_token = None;
    let mut am_token = None;
    for (purpose, key_id, secret_hex) in rows {
        let key = MasterKey { key_id, secret_hex };
        match purpose.as_str() {
            CONTAINER_TOKEN_KEY => container_token = Some(key),
            AM_TOKEN_KEY => am_token = Some(key),
            other => return Err(StoreError::Corrupt(format!("master_keys row {other}: unknown purpose"))),
        }
    }
    match (container_token, am_token) {
        (Some(container_token), Some(am_token)) => Ok(Some(MasterKeys { container_token, am_token })),
        _ => Err(StoreError::Corrupt("master_keys: one of container-token and am-token is missing".into())),
    }
}
