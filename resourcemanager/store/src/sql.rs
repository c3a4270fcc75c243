//! What the SQL stores ([`super::SqliteStore`], [`super::PostgresStore`]) share: the encoding of
//! values for their columns and the decoding of loaded rows into records, so both read the same
//! schema the same way and report a corrupt row with the same message (table, row, column).
//!
//! Both schemas hold unsigned values (`u32`, `u64`) in BIGINT and `i32` in INTEGER. Rows are read
//! through [`StoreRow`], which gives every integer as `i64`; [`RowReader::int`] converts it to the
//! record's type and refuses a value out of its range, rather than wrapping it.

use std::fmt::Display;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_common::Resource;

use super::{AppRecord, AttemptRecord, NodeRecord, RecoveredState, StoreError, master_keys_from_rows};

/// One loaded row, by column name, as one of the two kinds of value the schemas use.
pub(crate) trait StoreRow {
    /// A TEXT column; `None` for NULL.
    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;

    /// An INTEGER or BIGINT column, widened; `None` for NULL.
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
}

/// Decodes the columns of one row, naming table, row key and column in every error.
pub(crate) struct RowReader<'r, R> {
    row: &'r R,
    table: &'static str,
    key: String,
}

impl<'r, R: StoreRow> RowReader<'r, R> {
    /// `key_column` identifies the row in error messages (its primary key).
    pub(crate) fn new(row: &'r R, table: &'static str, key_column: &str) -> Result<Self, StoreError> {
        let unreadable = |reason: &dyn Display| {
            StoreError::Corrupt(format!("{table} row with an unreadable {key_column}: {reason}"))
        };
        let key = row.text(key_column).map_err(|e| unreadable(&e))?.ok_or_else(|| unreadable(&"NULL"))?;
        Ok(RowReader { row, table, key })
    }

    fn corrupt(&self, column: &str, reason: impl Display) -> StoreError {
        StoreError::Corrupt(format!("{} row {}, column {column}: {reason}", self.table, self.key))
    }

    fn required<T>(&self, column: &str, value: Option<T>) -> Result<T, StoreError> {
        value.ok_or_else(|| self.corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.row.text(column).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn text(&self, column: &str) -> Result<String, StoreError> {
        self.required(column, self.optional_text(column)?)
    }

    /// An integer column as `T`; a value `T` cannot hold (a negative `u32`, say) is corrupt.
    pub(crate) fn optional_int<T: TryFrom<i64>>(&self, column: &str) -> Result<Option<T>, StoreError> {
        let value = self.row.int(column).map_err(|e| self.corrupt(column, e))?;
        value
            .map(|value| {
                T::try_from(value).map_err(|_| {
                    self.corrupt(column, format_args!("{value} is out of range for {}", std::any::type_name::<T>()))
                })
            })
            .transpose()
    }

    pub(crate) fn int<T: TryFrom<i64>>(&self, column: &str) -> Result<T, StoreError> {
        self.required(column, self.optional_int(column)?)
    }

    /// A column holding the `Display` form of `T` (ids, state names).
    pub(crate) fn parse<T: FromStr>(&self, column: &str) -> Result<T, StoreError>
    where
        T::Err: Display,
    {
        self.parse_text(column, &self.text(column)?)
    }

    pub(crate) fn parse_optional<T: FromStr>(&self, column: &str) -> Result<Option<T>, StoreError>
    where
        T::Err: Display,
    {
        self.optional_text(column)?.map(|text| self.parse_text(column, &text)).transpose()
    }

    fn parse_text<T: FromStr>(&self, column: &str, text: &str) -> Result<T, StoreError>
    where
        T::Err: Display,
    {
        text.parse().map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn json<T: DeserializeOwned>(&self, column: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.text(column)?).map_err(|e| self.corrupt(column, e))
    }
}

/// The rows of the four tables `load` reads, as records in the order
/// [`RecoveredState`] promises.
pub(crate) fn recovered_state<R: StoreRow>(
    app_rows: &[R],
    attempt_rows: &[R],
    node_rows: &[R],
    key_rows: &[R],
) -> Result<RecoveredState, StoreError> {
    let mut apps = app_rows.iter().map(app_from_row).collect::<Result<Vec<_>, _>>()?;
    let mut attempts = attempt_rows.iter().map(attempt_from_row).collect::<Result<Vec<_>, _>>()?;
    let mut nodes = node_rows.iter().map(node_from_row).collect::<Result<Vec<_>, _>>()?;
    // Sorted here rather than by SQL: the ids' text order is wrong once a sequence number
    // outgrows its zero padding (`_10000` sorts before `_9999`).
    apps.sort_by_key(|app| app.id);
    attempts.sort_by_key(|attempt| attempt.id);
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    let key_rows = key_rows
        .iter()
        .map(|row| {
            let row = RowReader::new(row, "master_keys", "purpose")?;
            Ok((row.text("purpose")?, row.int("key_id")?, row.text("secret_hex")?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let master_keys = master_keys_from_rows(key_rows)?;
    Ok(RecoveredState { apps, attempts, nodes, master_keys })
}

fn app_from_row<R: StoreRow>(row: &R) -> Result<AppRecord, StoreError> {
    let row = RowReader::new(row, "applications", "id")?;
    Ok(AppRecord {
        id: row.parse("id")?,
        user: row.text("user_name")?,
        queue: row.text("queue")?,
        name: row.text("name")?,
        application_type: row.text("application_type")?,
        tags: row.json("tags")?,
        priority: row.int("priority")?,
        max_attempts: row.int("max_attempts")?,
        am_resource: Resource::new(row.int("am_memory_mb")?, row.int("am_vcores")?),
        launch_context: row.json("launch_context")?,
        submit_time: row.int("submit_time")?,
        finish_time: row.optional_int("finish_time")?,
        state: row.parse("state")?,
        final_status: row.parse("final_status")?,
        diagnostics: row.text("diagnostics")?,
    })
}

fn attempt_from_row<R: StoreRow>(row: &R) -> Result<AttemptRecord, StoreError> {
    let row = RowReader::new(row, "app_attempts", "id")?;
    Ok(AttemptRecord {
        id: row.parse("id")?,
        state: row.parse("state")?,
        am_container: row.parse_optional("am_container")?,
        node_id: row.parse_optional("node_id")?,
        node_http_address: row.text("node_http_address")?,
        start_time: row.int("start_time")?,
        finish_time: row.optional_int("finish_time")?,
        diagnostics: row.text("diagnostics")?,
        am_exit_status: row.optional_int("am_exit_status")?,
    })
}

fn node_from_row<R: StoreRow>(row: &R) -> Result<NodeRecord, StoreError> {
    let row = RowReader::new(row, "nodes", "id")?;
    Ok(NodeRecord { id: row.parse("id")?, http_address: row.text("http_address")? })
}

pub(crate) fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)).into())
}

/// SQL BIGINTs are signed 64-bit; refuse the `u64`s that would not read back as themselves.
pub(crate) fn to_bigint(value: u64, column: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        sqlx::Error::Encode(format!("{column} value {value} exceeds the largest SQL BIGINT").into()).into()
    })
}

/// For `rm_epoch.claimed_at`, which only informs operators: a clock before 1970 records 0.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// The error of writing `attempt`: the foreign key to its app is the store refusing an attempt of
/// an app it does not hold (the same [`StoreError::Corrupt`] as [`super::MemoryStore`]'s check).
pub(crate) fn attempt_write_error(error: sqlx::Error, attempt: &AttemptRecord) -> StoreError {
    match error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Corrupt(format!(
            "attempt {} refers to application {}, which is not in the store",
            attempt.id, attempt.id.app
        )),
        other => other.into(),
    }
}
