//! Durable RM state: applications and their attempts, behind [`StateStore`].
//!
//! The records themselves (what is stored, and the operations on it) are in
//! [`weft_rm_core::records`], re-exported here.
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
use weft_common::token::MasterKey;
pub use weft_rm_core::records::{
    AppRecord, AttemptRecord, MasterKeys, MissingApp, NodeRecord, RecordSet, RecoveredState, StoreOp,
};

pub mod memory;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

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
