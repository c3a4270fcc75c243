//! [`StateStore`] on an SQLite file: the embedded default.
//!
//! Durability: WAL journal with `synchronous=NORMAL`. A committed batch survives a crash of the
//! RM process; an OS crash or power loss may lose the last few commits but never leaves the file
//! inconsistent. That is the trade-off YARN's own stores make (they do not fsync per update
//! either), and it keeps a commit per core step cheap (`FULL` would fsync the WAL on every one).
//!
//! Concurrency: several RMs may open the same file (on storage with working POSIX locks, so not
//! NFS). Each batch runs under `BEGIN IMMEDIATE`, which takes the write lock before the epoch is
//! read, so no other RM can claim the store between the fencing check and the writes.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::sql::{StoreRow, attempt_write_error, now_millis, recovered_state, to_bigint, to_json};
use super::{AppRecord, AttemptRecord, LeaseOutcome, RecoveredState, StateStore, StoreError, StoreOp, master_key_rows};

/// The schema migrations embedded in the binary. Public so tests can check them against the folder.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a write waits for another connection (possibly another RM) to release the lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite serializes writers anyway; a few connections let `load` run beside a batch.
const MAX_FILE_CONNECTIONS: u32 = 4;

const CLAIM_EPOCH: &str = "\
    INSERT INTO rm_epoch (id, epoch, holder, claimed_at, lease_expires_at) VALUES (1, 1, ?, ?, 0) \
    ON CONFLICT (id) DO UPDATE SET \
        epoch = rm_epoch.epoch + 1, holder = excluded.holder, claimed_at = excluded.claimed_at, \
        lease_expires_at = 0 \
    RETURNING epoch";

/// The database's clock in milliseconds since the Unix epoch (lease times never use the RM's).
macro_rules! db_now_ms {
    () => {
        "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
    };
}

const ACQUIRE_LEASE: &str = concat!(
    "INSERT INTO rm_epoch (id, epoch, holder, claimed_at, lease_expires_at) VALUES (1, 1, ?1, ",
    db_now_ms!(),
    ", ",
    db_now_ms!(),
    " + ?2) ON CONFLICT (id) DO UPDATE SET epoch = rm_epoch.epoch + 1, holder = excluded.holder, ",
    "claimed_at = excluded.claimed_at, lease_expires_at = excluded.lease_expires_at ",
    "WHERE rm_epoch.lease_expires_at <= ",
    db_now_ms!(),
    " RETURNING epoch"
);

const RENEW_LEASE: &str =
    concat!("UPDATE rm_epoch SET lease_expires_at = ", db_now_ms!(), " + ?2 WHERE id = 1 AND epoch = ?1");

const RELEASE_LEASE: &str = "UPDATE rm_epoch SET lease_expires_at = 0 WHERE id = 1 AND epoch = ?";

const CURRENT_HOLDER: &str = "SELECT holder, epoch FROM rm_epoch WHERE id = 1";

const CURRENT_EPOCH: &str = "SELECT epoch FROM rm_epoch WHERE id = 1";

// An upsert rather than `INSERT OR REPLACE`: REPLACE deletes the old row first, which would
// cascade to the app's attempts.
const UPSERT_APP: &str = "\
    INSERT INTO applications (id, user_name, queue, name, application_type, tags, priority, \
        max_attempts, am_memory_mb, am_vcores, launch_context, submit_time, finish_time, state, \
        final_status, diagnostics, written_epoch) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
    ON CONFLICT (id) DO UPDATE SET \
        user_name = excluded.user_name, queue = excluded.queue, name = excluded.name, \
        application_type = excluded.application_type, tags = excluded.tags, \
        priority = excluded.priority, max_attempts = excluded.max_attempts, \
        am_memory_mb = excluded.am_memory_mb, am_vcores = excluded.am_vcores, \
        launch_context = excluded.launch_context, submit_time = excluded.submit_time, \
        finish_time = excluded.finish_time, state = excluded.state, \
        final_status = excluded.final_status, diagnostics = excluded.diagnostics, \
        written_epoch = excluded.written_epoch";

const UPSERT_ATTEMPT: &str = "\
    INSERT INTO app_attempts (id, app_id, attempt_number, state, am_container, node_id, \
        node_http_address, start_time, finish_time, diagnostics, am_exit_status, written_epoch) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
    ON CONFLICT (id) DO UPDATE SET \
        app_id = excluded.app_id, attempt_number = excluded.attempt_number, \
        state = excluded.state, am_container = excluded.am_container, \
        node_id = excluded.node_id, node_http_address = excluded.node_http_address, \
        start_time = excluded.start_time, finish_time = excluded.finish_time, \
        diagnostics = excluded.diagnostics, am_exit_status = excluded.am_exit_status, \
        written_epoch = excluded.written_epoch";

// The app's attempts go with it through ON DELETE CASCADE.
const DELETE_APP: &str = "DELETE FROM applications WHERE id = ?";

const SELECT_APPS: &str = "\
    SELECT id, user_name, queue, name, application_type, tags, priority, max_attempts, \
        am_memory_mb, am_vcores, launch_context, submit_time, finish_time, state, final_status, \
        diagnostics \
    FROM applications";

const UPSERT_NODE: &str = "\
    INSERT INTO nodes (id, http_address, written_epoch) VALUES (?, ?, ?) \
    ON CONFLICT (id) DO UPDATE SET \
        http_address = excluded.http_address, written_epoch = excluded.written_epoch";

const DELETE_NODE: &str = "DELETE FROM nodes WHERE id = ?";

const UPSERT_MASTER_KEY: &str = "\
    INSERT INTO master_keys (purpose, key_id, secret_hex) VALUES (?, ?, ?) \
    ON CONFLICT (purpose) DO UPDATE SET key_id = excluded.key_id, secret_hex = excluded.secret_hex";

const SELECT_NODES: &str = "SELECT id, http_address FROM nodes";

const SELECT_MASTER_KEYS: &str = "SELECT purpose, key_id, secret_hex FROM master_keys";

const SELECT_ATTEMPTS: &str = "\
    SELECT id, state, am_container, node_id, node_http_address, start_time, finish_time, \
        diagnostics, am_exit_status \
    FROM app_attempts";

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if missing) the store file at `path` and
    /// brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_error = |reason: String| StoreError::Open { path: path.display().to_string(), reason };
        // SQLite's own error for a directory is a bare "unable to open database file".
        if path.is_dir() {
            return Err(open_error("it is a directory".to_owned()));
        }
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| open_error(format!("cannot create directory {}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_FILE_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| open_error(e.to_string()))?;
        Self::migrated(pool).await
    }

    /// A private, empty database that lives as long as the store (tests).
    pub async fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // The database vanishes with its last connection, so keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<SqliteStore, StoreError> {
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    async fn claim(&self, holder: &str) -> Result<u32, StoreError> {
        let epoch = sqlx::query_scalar(CLAIM_EPOCH).bind(holder).bind(now_millis()).fetch_one(&self.pool).await?;
        Ok(epoch)
    }

    async fn acquire(&self, holder: &str, lease_ms: u64) -> Result<LeaseOutcome, StoreError> {
        let lease_ms = to_bigint(lease_ms, "lease_ms")?;
        // IMMEDIATE: the check and the bump happen under the write lock.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let acquired: Option<u32> =
            sqlx::query_scalar(ACQUIRE_LEASE).bind(holder).bind(lease_ms).fetch_optional(&mut *tx).await?;
        let outcome = match acquired {
            Some(epoch) => LeaseOutcome::Acquired { epoch },
            None => {
                let (holder, epoch): (String, u32) = sqlx::query_as(CURRENT_HOLDER).fetch_one(&mut *tx).await?;
                LeaseOutcome::HeldBy { holder, epoch }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn renew(&self, epoch: u32, lease_ms: u64) -> Result<bool, StoreError> {
        let lease_ms = to_bigint(lease_ms, "lease_ms")?;
        let done = sqlx::query(RENEW_LEASE).bind(epoch).bind(lease_ms).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, epoch: u32) -> Result<(), StoreError> {
        sqlx::query(RELEASE_LEASE).bind(epoch).execute(&self.pool).await?;
        Ok(())
    }

    async fn apply_batch(&self, epoch: u32, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<u32> = sqlx::query_scalar(CURRENT_EPOCH).fetch_optional(&mut *tx).await?;
        let current = current.unwrap_or(0);
        // Epoch 0 means nobody has claimed the store: no RM may write before claiming.
        if current != epoch || current == 0 {
            tx.rollback().await?;
            return Err(StoreError::Fenced { mine: epoch, current });
        }
        for op in ops {
            match op {
                StoreOp::PutApp(app) => put_app(&mut tx, epoch, app).await?,
                StoreOp::PutAttempt(attempt) => put_attempt(&mut tx, epoch, attempt).await?,
                StoreOp::RemoveApp(id) => {
                    sqlx::query(DELETE_APP).bind(id.to_string()).execute(&mut *tx).await?;
                }
                StoreOp::PutNode(node) => {
                    let query = sqlx::query(UPSERT_NODE).bind(node.id.to_string()).bind(&node.http_address);
                    query.bind(epoch).execute(&mut *tx).await?;
                }
                StoreOp::RemoveNode(id) => {
                    sqlx::query(DELETE_NODE).bind(id.to_string()).execute(&mut *tx).await?;
                }
                StoreOp::PutMasterKeys(keys) => {
                    for (purpose, key) in master_key_rows(keys) {
                        let query = sqlx::query(UPSERT_MASTER_KEY).bind(purpose).bind(key.key_id);
                        query.bind(&key.secret_hex).execute(&mut *tx).await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn load_all(&self) -> Result<RecoveredState, StoreError> {
        // One read transaction, so all tables come from the same snapshot even while another RM
        // writes.
        let mut tx = self.pool.begin().await?;
        let apps = sqlx::query(SELECT_APPS).fetch_all(&mut *tx).await?;
        let attempts = sqlx::query(SELECT_ATTEMPTS).fetch_all(&mut *tx).await?;
        let nodes = sqlx::query(SELECT_NODES).fetch_all(&mut *tx).await?;
        let keys = sqlx::query(SELECT_MASTER_KEYS).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        recovered_state(&apps, &attempts, &nodes, &keys)
    }
}

impl StateStore for SqliteStore {
    fn name(&self) -> &'static str {
        "SqliteStore"
    }

    fn claim_epoch<'a>(&'a self, holder: &'a str) -> BoxFuture<'a, Result<u32, StoreError>> {
        Box::pin(self.claim(holder))
    }

    fn try_acquire_lease<'a>(
        &'a self,
        holder: &'a str,
        lease_ms: u64,
    ) -> BoxFuture<'a, Result<LeaseOutcome, StoreError>> {
        Box::pin(self.acquire(holder, lease_ms))
    }

    fn renew_lease(&self, epoch: u32, lease_ms: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.renew(epoch, lease_ms))
    }

    fn release_lease(&self, epoch: u32) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.release(epoch))
    }

    fn apply<'a>(&'a self, epoch: u32, ops: &'a [StoreOp]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.apply_batch(epoch, ops))
    }

    fn load(&self) -> BoxFuture<'_, Result<RecoveredState, StoreError>> {
        Box::pin(self.load_all())
    }
}

async fn put_app(conn: &mut SqliteConnection, epoch: u32, app: &AppRecord) -> Result<(), StoreError> {
    sqlx::query(UPSERT_APP)
        .bind(app.id.to_string())
        .bind(&app.user)
        .bind(&app.queue)
        .bind(&app.name)
        .bind(&app.application_type)
        .bind(to_json(&app.tags)?)
        .bind(app.priority)
        .bind(app.max_attempts)
        .bind(to_bigint(app.am_resource.memory_mb, "am_memory_mb")?)
        .bind(app.am_resource.vcores)
        .bind(to_json(&app.launch_context)?)
        .bind(to_bigint(app.submit_time, "submit_time")?)
        .bind(app.finish_time.map(|t| to_bigint(t, "finish_time")).transpose()?)
        .bind(app.state.as_str())
        .bind(app.final_status.as_str())
        .bind(&app.diagnostics)
        .bind(epoch)
        .execute(conn)
        .await?;
    Ok(())
}

async fn put_attempt(conn: &mut SqliteConnection, epoch: u32, attempt: &AttemptRecord) -> Result<(), StoreError> {
    sqlx::query(UPSERT_ATTEMPT)
        .bind(attempt.id.to_string())
        .bind(attempt.id.app.to_string())
        .bind(attempt.id.attempt)
        .bind(attempt.state.as_str())
        .bind(attempt.am_container.map(|id| id.to_string()))
        .bind(attempt.node_id.as_ref().map(|id| id.to_string()))
        .bind(&attempt.node_http_address)
        .bind(to_bigint(attempt.start_time, "start_time")?)
        .bind(attempt.finish_time.map(|t| to_bigint(t, "finish_time")).transpose()?)
        .bind(&attempt.diagnostics)
        .bind(attempt.am_exit_status)
        .bind(epoch)
        .execute(conn)
        .await
        .map_err(|error| attempt_write_error(error, attempt))?;
    Ok(())
}

impl StoreRow for SqliteRow {
    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }

    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }
}
