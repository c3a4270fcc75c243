//! [`StateStore`] on a PostgreSQL database: the store the RMs of an HA pair share over the
//! network. Same schema (`migrations/postgres/`, kept column for column equal to the SQLite one)
//! and same semantics as [`super::SqliteStore`]; the conformance tests run the same checks on both.
//!
//! Durability is the server's: a batch is acknowledged once PostgreSQL has committed it (with its
//! `synchronous_commit`, which defaults to waiting for the WAL flush).
//!
//! Concurrency: every batch runs in one READ COMMITTED transaction that first reads the epoch
//! row `FOR SHARE`. That row lock is held until the batch commits, so an RM that claims the store
//! or takes the lease (both `UPDATE` the row) waits for a batch already past its fencing check,
//! and every batch that starts after the takeover sees the new epoch and is refused. `load` reads
//! all tables in one REPEATABLE READ snapshot.
//!
//! Availability: the pool gives up on a connection after [`ACQUIRE_TIMEOUT`], so while the
//! database is down every call fails within about that long (the RM retries its calls) instead
//! of hanging; connections are checked before use, so the pool reconnects once it is back.
//!
//! One difference from SQLite: PostgreSQL text cannot hold the NUL character, so a NUL in a
//! free-text field (an app name, a diagnostics message) is stored as U+FFFD; otherwise the batch
//! would fail on every retry. JSON columns (tags, launch context) escape it and keep it.

use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};

use super::sql::{StoreRow, attempt_write_error, now_millis, recovered_state, to_bigint, to_json};
use super::{AppRecord, AttemptRecord, LeaseOutcome, RecoveredState, StateStore, StoreError, StoreOp, master_key_rows};

/// The schema migrations embedded in the binary. Public so tests can check them against the
/// folder (and against the SQLite set).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a call waits for a connection (opening one included) before it fails.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Shown to operators in `pg_stat_activity`.
const APPLICATION_NAME: &str = "weft-resourcemanager";

const CLAIM_EPOCH: &str = "\
    INSERT INTO rm_epoch (id, epoch, holder, claimed_at, lease_expires_at) VALUES (1, 1, $1, $2, 0) \
    ON CONFLICT (id) DO UPDATE SET \
        epoch = rm_epoch.epoch + 1, holder = excluded.holder, claimed_at = excluded.claimed_at, \
        lease_expires_at = 0 \
    RETURNING epoch";

/// The database's clock in milliseconds since the Unix epoch (lease times never use the RM's).
/// `clock_timestamp()`, not `now()`: the latter is frozen at the start of the transaction.
macro_rules! db_now_ms {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

// When the lease is held the conflicting row is still locked (ON CONFLICT DO UPDATE locks it
// whether or not its WHERE holds), so the holder read after it in the same transaction is the
// one that made this attempt fail.
const ACQUIRE_LEASE: &str = concat!(
    "INSERT INTO rm_epoch (id, epoch, holder, claimed_at, lease_expires_at) VALUES (1, 1, $1, ",
    db_now_ms!(),
    ", ",
    db_now_ms!(),
    " + $2) ON CONFLICT (id) DO UPDATE SET epoch = rm_epoch.epoch + 1, holder = excluded.holder, ",
    "claimed_at = excluded.claimed_at, lease_expires_at = excluded.lease_expires_at ",
    "WHERE rm_epoch.lease_expires_at <= ",
    db_now_ms!(),
    " RETURNING epoch"
);

const RENEW_LEASE: &str =
    concat!("UPDATE rm_epoch SET lease_expires_at = ", db_now_ms!(), " + $2 WHERE id = 1 AND epoch = $1");

const RELEASE_LEASE: &str = "UPDATE rm_epoch SET lease_expires_at = 0 WHERE id = 1 AND epoch = $1";

const CURRENT_HOLDER: &str = "SELECT holder, epoch FROM rm_epoch WHERE id = 1";

/// The fencing check of a batch. The share lock makes a concurrent claim or takeover wait until
/// the batch has committed (see the module doc).
const CURRENT_EPOCH_LOCKED: &str = "SELECT epoch FROM rm_epoch WHERE id = 1 FOR SHARE";

/// `load`'s snapshot.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

// An upsert rather than delete-and-insert, which would cascade to the app's attempts.
const UPSERT_APP: &str = "\
    INSERT INTO applications (id, user_name, queue, name, application_type, tags, priority, \
        max_attempts, am_memory_mb, am_vcores, launch_context, submit_time, finish_time, state, \
        final_status, diagnostics, written_epoch) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
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
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
    ON CONFLICT (id) DO UPDATE SET \
        app_id = excluded.app_id, attempt_number = excluded.attempt_number, \
        state = excluded.state, am_container = excluded.am_container, \
        node_id = excluded.node_id, node_http_address = excluded.node_http_address, \
        start_time = excluded.start_time, finish_time = excluded.finish_time, \
        diagnostics = excluded.diagnostics, am_exit_status = excluded.am_exit_status, \
        written_epoch = excluded.written_epoch";

// The app's attempts go with it through ON DELETE CASCADE.
const DELETE_APP: &str = "DELETE FROM applications WHERE id = $1";

const UPSERT_NODE: &str = "\
    INSERT INTO nodes (id, http_address, written_epoch) VALUES ($1, $2, $3) \
    ON CONFLICT (id) DO UPDATE SET \
        http_address = excluded.http_address, written_epoch = excluded.written_epoch";

const DELETE_NODE: &str = "DELETE FROM nodes WHERE id = $1";

const UPSERT_MASTER_KEY: &str = "\
    INSERT INTO master_keys (purpose, key_id, secret_hex) VALUES ($1, $2, $3) \
    ON CONFLICT (purpose) DO UPDATE SET key_id = excluded.key_id, secret_hex = excluded.secret_hex";

const SELECT_APPS: &str = "\
    SELECT id, user_name, queue, name, application_type, tags, priority, max_attempts, \
        am_memory_mb, am_vcores, launch_context, submit_time, finish_time, state, final_status, \
        diagnostics \
    FROM applications";

const SELECT_ATTEMPTS: &str = "\
    SELECT id, state, am_container, node_id, node_http_address, start_time, finish_time, \
        diagnostics, am_exit_status \
    FROM app_attempts";

const SELECT_NODES: &str = "SELECT id, http_address FROM nodes";

const SELECT_MASTER_KEYS: &str = "SELECT purpose, key_id, secret_hex FROM master_keys";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:5432/database`) with a
    /// pool of up to `max_connections`, and brings its schema up to date. Several RMs may do this
    /// at once: sqlx serializes migrations with an advisory lock.
    pub async fn connect(url: &str, max_connections: u32) -> Result<PostgresStore, StoreError> {
        let open_error = |reason: String| StoreError::Open { path: redact_password(url), reason };
        if max_connections == 0 {
            return Err(open_error("max_connections must be at least 1".to_owned()));
        }
        let options =
            PgConnectOptions::from_str(url).map_err(|e| open_error(e.to_string()))?.application_name(APPLICATION_NAME);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| open_error(e.to_string()))?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    async fn claim(&self, holder: &str) -> Result<u32, StoreError> {
        let epoch = sqlx::query_scalar(CLAIM_EPOCH).bind(holder).bind(now_millis()).fetch_one(&self.pool).await?;
        stored_epoch(epoch)
    }

    async fn acquire(&self, holder: &str, lease_ms: u64) -> Result<LeaseOutcome, StoreError> {
        let lease_ms = to_bigint(lease_ms, "lease_ms")?;
        let mut tx = self.pool.begin().await?;
        let acquired: Option<i64> =
            sqlx::query_scalar(ACQUIRE_LEASE).bind(holder).bind(lease_ms).fetch_optional(&mut *tx).await?;
        let outcome = match acquired {
            Some(epoch) => LeaseOutcome::Acquired { epoch: stored_epoch(epoch)? },
            None => {
                let (holder, epoch): (String, i64) = sqlx::query_as(CURRENT_HOLDER).fetch_one(&mut *tx).await?;
                LeaseOutcome::HeldBy { holder, epoch: stored_epoch(epoch)? }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn renew(&self, epoch: u32, lease_ms: u64) -> Result<bool, StoreError> {
        let lease_ms = to_bigint(lease_ms, "lease_ms")?;
        let done = sqlx::query(RENEW_LEASE).bind(i64::from(epoch)).bind(lease_ms).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, epoch: u32) -> Result<(), StoreError> {
        sqlx::query(RELEASE_LEASE).bind(i64::from(epoch)).execute(&self.pool).await?;
        Ok(())
    }

    async fn apply_batch(&self, epoch: u32, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(CURRENT_EPOCH_LOCKED).fetch_optional(&mut *tx).await?;
        let current = current.map(stored_epoch).transpose()?.unwrap_or(0);
        // Epoch 0 means nobody has claimed the store: no RM may write before claiming.
        if current != epoch || current == 0 {
            tx.rollback().await?;
            return Err(StoreError::Fenced { mine: epoch, current });
        }
        let written_epoch = i64::from(epoch);
        for op in ops {
            match op {
                StoreOp::PutApp(app) => put_app(&mut tx, written_epoch, app).await?,
                StoreOp::PutAttempt(attempt) => put_attempt(&mut tx, written_epoch, attempt).await?,
                StoreOp::RemoveApp(id) => {
                    sqlx::query(DELETE_APP).bind(id.to_string()).execute(&mut *tx).await?;
                }
                StoreOp::PutNode(node) => {
                    let query = sqlx::query(UPSERT_NODE).bind(node.id.to_string()).bind(text(&node.http_address));
                    query.bind(written_epoch).execute(&mut *tx).await?;
                }
                StoreOp::RemoveNode(id) => {
                    sqlx::query(DELETE_NODE).bind(id.to_string()).execute(&mut *tx).await?;
                }
                StoreOp::PutMasterKeys(keys) => {
                    for (purpose, key) in master_key_rows(keys) {
                        let query = sqlx::query(UPSERT_MASTER_KEY).bind(purpose).bind(i64::from(key.key_id));
                        query.bind(&key.secret_hex).execute(&mut *tx).await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn load_all(&self) -> Result<RecoveredState, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_SNAPSHOT).await?;
        let apps = sqlx::query(SELECT_APPS).fetch_all(&mut *tx).await?;
        let attempts = sqlx::query(SELECT_ATTEMPTS).fetch_all(&mut *tx).await?;
        let nodes = sqlx::query(SELECT_NODES).fetch_all(&mut *tx).await?;
        let keys = sqlx::query(SELECT_MASTER_KEYS).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        recovered_state(&apps, &attempts, &nodes, &keys)
    }
}

impl StateStore for PostgresStore {
    fn name(&self) -> &'static str {
        "PostgresStore"
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

async fn put_app(conn: &mut PgConnection, epoch: i64, app: &AppRecord) -> Result<(), StoreError> {
    sqlx::query(UPSERT_APP)
        .bind(app.id.to_string())
        .bind(text(&app.user))
        .bind(text(&app.queue))
        .bind(text(&app.name))
        .bind(text(&app.application_type))
        .bind(to_json(&app.tags)?)
        .bind(app.priority)
        .bind(i64::from(app.max_attempts))
        .bind(to_bigint(app.am_resource.memory_mb, "am_memory_mb")?)
        .bind(i64::from(app.am_resource.vcores))
        .bind(to_json(&app.launch_context)?)
        .bind(to_bigint(app.submit_time, "submit_time")?)
        .bind(app.finish_time.map(|t| to_bigint(t, "finish_time")).transpose()?)
        .bind(app.state.as_str())
        .bind(app.final_status.as_str())
        .bind(text(&app.diagnostics))
        .bind(epoch)
        .execute(conn)
        .await?;
    Ok(())
}

async fn put_attempt(conn: &mut PgConnection, epoch: i64, attempt: &AttemptRecord) -> Result<(), StoreError> {
    sqlx::query(UPSERT_ATTEMPT)
        .bind(attempt.id.to_string())
        .bind(attempt.id.app.to_string())
        .bind(i64::from(attempt.id.attempt))
        .bind(attempt.state.as_str())
        .bind(attempt.am_container.map(|id| id.to_string()))
        .bind(attempt.node_id.as_ref().map(|id| id.to_string()))
        .bind(text(&attempt.node_http_address))
        .bind(to_bigint(attempt.start_time, "start_time")?)
        .bind(attempt.finish_time.map(|t| to_bigint(t, "finish_time")).transpose()?)
        .bind(text(&attempt.diagnostics))
        .bind(attempt.am_exit_status)
        .bind(epoch)
        .execute(conn)
        .await
        .map_err(|error| attempt_write_error(error, attempt))?;
    Ok(())
}

impl StoreRow for PgRow {
    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }

    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        // sqlx decodes a PostgreSQL INTEGER (INT4) only as i32: widen those.
        self.try_get(column).or_else(|bigint_error| {
            self.try_get::<Option<i32>, _>(column).map(|value| value.map(i64::from)).map_err(|_| bigint_error)
        })
    }
}

/// The `rm_epoch.epoch` BIGINT as the `u32` every epoch is.
fn stored_epoch(epoch: i64) -> Result<u32, StoreError> {
    u32::try_from(epoch)
        .map_err(|_| StoreError::Corrupt(format!("rm_epoch row 1, column epoch: {epoch} is out of range for u32")))
}

/// `url` without its password (in the user info or a `password=` parameter), for error messages:
/// `postgres://rm:***@db:5432/weft`.
fn redact_password(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (url, None),
    };
    let mut shown = match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@').map(|(userinfo, host)| (userinfo.split_once(':'), host)) {
                Some((Some((user, _password)), host)) => format!("{scheme}://{user}:***@{host}{path}"),
                _ => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    if let Some(query) = query {
        let parameters: Vec<&str> = query
            .split('&')
            .map(|parameter| if parameter.starts_with("password=") { "password=***" } else { parameter })
            .collect();
        shown.push('?');
        shown.push_str(&parameters.join("&"));
    }
    shown
}

/// PostgreSQL text cannot hold NUL, which SQLite and Rust strings can: a NUL in a name or a
/// diagnostics message (from a client, an AM or an NM) would fail every retry of its batch and
/// stall the RM. It is stored as U+FFFD instead.
fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') { value.replace('\0', "\u{FFFD}").into() } else { value.into() }
}
