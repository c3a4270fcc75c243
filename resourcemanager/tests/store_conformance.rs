//! Every [`StateStore`] must behave the same: each check below runs against `MemoryStore`, an
//! SQLite file and SQLite in memory. SQLite-only behaviour (reopening, two RMs on one file,
//! corrupt rows, open errors, migrations) follows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use tempfile::TempDir;
use weft_common::protocol::{ContainerLaunchContext, LocalResource, LocalResourceType, LocalResourceVisibility};
use weft_common::states::{AppState, AttemptState, FinalStatus, exit_status};
use weft_common::{ApplicationId, AttemptId, ContainerId, NodeId, Resource};
use weft_resourcemanager::store::{
    AppRecord, AttemptRecord, MemoryStore, RecoveredState, SqliteStore, StateStore, StoreError, StoreOp, sqlite,
};

// ---------------------------------------------------------------------------------------------
// Records

const CLUSTER_TS: u64 = 1_700_000_000_000;

fn app_id(seq: u32) -> ApplicationId {
    ApplicationId::new(CLUSTER_TS, seq)
}

/// A just-accepted app with the optional fields empty.
fn app(id: ApplicationId) -> AppRecord {
    AppRecord {
        id,
        user: "alice".into(),
        queue: "default".into(),
        name: format!("job {}", id.seq),
        application_type: "YARN".into(),
        tags: Vec::new(),
        priority: 0,
        max_attempts: 2,
        am_resource: Resource::new(1024, 1),
        launch_context: ContainerLaunchContext::default(),
        submit_time: CLUSTER_TS + 1_000,
        finish_time: None,
        state: AppState::Accepted,
        final_status: FinalStatus::Undefined,
        diagnostics: String::new(),
    }
}

/// A finished app with every field set, including text that needs escaping.
fn finished_app(id: ApplicationId) -> AppRecord {
    let launch_context = ContainerLaunchContext {
        commands: vec!["{{JAVA_HOME}}/bin/java".into(), "-Xmx512m".into(), "1><LOG_DIR>/stdout".into()],
        environment: BTreeMap::from([
            ("CLASSPATH".into(), "./*<CPS>lib/*".into()),
            ("GREETING".into(), "héllo \"wörld\" 🚀".into()),
        ]),
        local_resources: BTreeMap::from([
            (
                "app.jar".into(),
                LocalResource {
                    resource: "file:///opt/jobs/app.jar".into(),
                    kind: LocalResourceType::File,
                    visibility: LocalResourceVisibility::Application,
                },
            ),
            (
                "deps".into(),
                LocalResource {
                    resource: "/opt/jobs/deps.tar.gz".into(),
                    kind: LocalResourceType::Archive,
                    visibility: LocalResourceVisibility::Public,
                },
            ),
        ]),
    };
    AppRecord {
        user: "bob".into(),
        queue: "root.analytics".into(),
        name: "nightly 'etl' \"run\"".into(),
        application_type: "MAPREDUCE".into(),
        tags: vec!["nightly".into(), "team=data".into(), "ünïcode".into()],
        priority: -3,
        max_attempts: u32::MAX,
        am_resource: Resource::new(4096, 2),
        launch_context,
        finish_time: Some(CLUSTER_TS + 90_000),
        state: AppState::Finished,
        final_status: FinalStatus::Succeeded,
        diagnostics: "AM said: \"done\" ✓\nline two; DROP TABLE applications; --".into(),
        ..app(id)
    }
}

/// A freshly created attempt with the optional fields empty.
fn attempt(app: ApplicationId, number: u32) -> AttemptRecord {
    AttemptRecord {
        id: AttemptId::new(app, number),
        state: AttemptState::Scheduled,
        am_container: None,
        node_id: None,
        node_http_address: String::new(),
        start_time: CLUSTER_TS + 2_000,
        finish_time: None,
        diagnostics: String::new(),
        am_exit_status: None,
    }
}

/// A failed attempt with every field set.
fn failed_attempt(app: ApplicationId, number: u32) -> AttemptRecord {
    let id = AttemptId::new(app, number);
    AttemptRecord {
        state: AttemptState::Failed,
        am_container: Some(ContainerId { attempt: id, epoch: 3, seq: 1 }),
        node_id: Some(NodeId("worker-7.example.com:8042".into())),
        node_http_address: "http://worker-7.example.com:8042".into(),
        finish_time: Some(CLUSTER_TS + 60_000),
        diagnostics: "container killed: 'exceeded' \"pmem\" — ошибка".into(),
        am_exit_status: Some(exit_status::KILLED_EXCEEDED_PMEM),
        ..attempt(app, number)
    }
}

fn put_apps(apps: &[AppRecord]) -> Vec<StoreOp> {
    apps.iter().cloned().map(StoreOp::PutApp).collect()
}

fn put_attempts(attempts: &[AttemptRecord]) -> Vec<StoreOp> {
    attempts.iter().cloned().map(StoreOp::PutAttempt).collect()
}

// ---------------------------------------------------------------------------------------------
// Checks every store must pass

async fn epoch_claims_increase(store: &dyn StateStore) {
    assert_eq!(store.claim_epoch("rm-a").await.unwrap(), 1);
    assert_eq!(store.claim_epoch("rm-b").await.unwrap(), 2);
    assert_eq!(store.claim_epoch("rm-a").await.unwrap(), 3);
}

async fn roundtrip_keeps_every_field(store: &dyn StateStore) {
    let epoch = store.claim_epoch("rm").await.unwrap();
    let (finished, accepted) = (finished_app(app_id(1)), app(app_id(2)));
    let attempts = [failed_attempt(finished.id, 1), attempt(finished.id, 2), attempt(accepted.id, 1)];
    // Apps and their attempts in one batch: an attempt's app may come earlier in the same batch.
    let ops = [put_apps(&[finished.clone(), accepted.clone()]), put_attempts(&attempts)].concat();
    store.apply(epoch, &ops).await.unwrap();

    let expected = RecoveredState { apps: vec![finished, accepted], attempts: attempts.to_vec() };
    assert_eq!(store.load().await.unwrap(), expected);
}

async fn put_replaces_existing_rows(store: &dyn StateStore) {
    let epoch = store.claim_epoch("rm").await.unwrap();
    let id = app_id(1);
    store.apply(epoch, &[StoreOp::PutApp(app(id)), StoreOp::PutAttempt(attempt(id, 1))]).await.unwrap();

    let (finished, failed) = (finished_app(id), failed_attempt(id, 1));
    store.apply(epoch, &[StoreOp::PutApp(finished.clone())]).await.unwrap();
    // Replacing the app must keep its attempts (a delete-then-insert would cascade to them).
    assert_eq!(store.load().await.unwrap().attempts, vec![attempt(id, 1)]);

    store.apply(epoch, &[StoreOp::PutAttempt(failed.clone())]).await.unwrap();
    assert_eq!(store.load().await.unwrap(), RecoveredState { apps: vec![finished], attempts: vec![failed] });
}

async fn remove_app_removes_its_attempts(store: &dyn StateStore) {
    let epoch = store.claim_epoch("rm").await.unwrap();
    let (gone, kept) = (app_id(1), app_id(2));
    let attempts = [attempt(gone, 1), attempt(gone, 2), attempt(kept, 1)];
    let ops = [put_apps(&[app(gone), app(kept)]), put_attempts(&attempts)].concat();
    store.apply(epoch, &ops).await.unwrap();

    store.apply(epoch, &[StoreOp::RemoveApp(gone)]).await.unwrap();
    let expected = RecoveredState { apps: vec![app(kept)], attempts: vec![attempt(kept, 1)] };
    assert_eq!(store.load().await.unwrap(), expected);

    // Removing an app that is not stored is not an error (retention may race with nothing).
    store.apply(epoch, &[StoreOp::RemoveApp(gone)]).await.unwrap();
    assert_eq!(store.load().await.unwrap(), expected);
}

async fn stale_epoch_is_fenced_and_writes_nothing(store: &dyn StateStore) {
    let old = store.claim_epoch("rm-old").await.unwrap();
    store.apply(old, &[StoreOp::PutApp(app(app_id(1)))]).await.unwrap();
    let before = store.load().await.unwrap();

    let new = store.claim_epoch("rm-new").await.unwrap();
    let stale_batch = [StoreOp::PutApp(finished_app(app_id(1))), StoreOp::PutApp(app(app_id(2)))];
    match store.apply(old, &stale_batch).await {
        Err(StoreError::Fenced { mine, current }) => assert_eq!((mine, current), (old, new)),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert_eq!(store.load().await.unwrap(), before);

    store.apply(new, &stale_batch).await.unwrap();
    assert_eq!(store.load().await.unwrap().apps, vec![finished_app(app_id(1)), app(app_id(2))]);
}

async fn writes_before_any_claim_are_fenced(store: &dyn StateStore) {
    for epoch in [0, 1] {
        match store.apply(epoch, &[StoreOp::PutApp(app(app_id(1)))]).await {
            Err(StoreError::Fenced { mine, current: 0 }) => assert_eq!(mine, epoch),
            other => panic!("expected Fenced at epoch 0, got {other:?}"),
        }
    }
    assert_eq!(store.load().await.unwrap(), RecoveredState::default());
}

async fn empty_batch_succeeds_without_writing(store: &dyn StateStore) {
    // An empty batch touches nothing, so not even the epoch is checked.
    store.apply(7, &[]).await.unwrap();
    let epoch = store.claim_epoch("rm").await.unwrap();
    store.apply(epoch, &[]).await.unwrap();
    assert_eq!(store.load().await.unwrap(), RecoveredState::default());
}

async fn failed_batch_writes_nothing(store: &dyn StateStore) {
    let epoch = store.claim_epoch("rm").await.unwrap();
    let (stored, removed) = (app_id(1), app_id(2));
    store.apply(epoch, &[StoreOp::PutApp(app(stored)), StoreOp::PutApp(app(removed))]).await.unwrap();
    let before = store.load().await.unwrap();

    // Every op but the last is valid; the last puts an attempt of an app that is not stored.
    let batch = [
        StoreOp::PutApp(finished_app(stored)),
        StoreOp::PutAttempt(attempt(stored, 1)),
        StoreOp::RemoveApp(removed),
        StoreOp::PutApp(app(app_id(3))),
        StoreOp::PutAttempt(attempt(app_id(4), 1)),
    ];
    let error = store.apply(epoch, &batch).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert_eq!(store.load().await.unwrap(), before);

    // An app removed earlier in the batch no longer exists for its attempts either.
    let batch = [StoreOp::RemoveApp(removed), StoreOp::PutAttempt(attempt(removed, 1))];
    store.apply(epoch, &batch).await.unwrap_err();
    assert_eq!(store.load().await.unwrap(), before);
}

async fn load_orders_by_numeric_id(store: &dyn StateStore) {
    let epoch = store.claim_epoch("rm").await.unwrap();
    // Each pair below sorts the wrong way round as text: `_10000` < `_9999`, and a 12-digit
    // cluster timestamp sorts after a 13-digit one.
    let earlier_cluster = ApplicationId::new(999_999_999_999, 1);
    let ids = [app_id(10_000), app_id(9_999), earlier_cluster, app_id(10)];
    let attempts = [attempt(app_id(10_000), 1), attempt(app_id(9_999), 10), attempt(app_id(9_999), 9)];
    let ops = [put_apps(&ids.map(app)), put_attempts(&attempts)].concat();
    store.apply(epoch, &ops).await.unwrap();

    let loaded = store.load().await.unwrap();
    let app_ids: Vec<_> = loaded.apps.iter().map(|app| app.id).collect();
    assert_eq!(app_ids, [earlier_cluster, app_id(10), app_id(9_999), app_id(10_000)]);
    let attempt_ids: Vec<_> = loaded.attempts.iter().map(|attempt| attempt.id).collect();
    let expected = [(9_999, 9), (9_999, 10), (10_000, 1)].map(|(app, number)| AttemptId::new(app_id(app), number));
    assert_eq!(attempt_ids, expected);
}

/// One `#[tokio::test]` per check and store: `memory::<check>`, `sqlite_file::<check>`,
/// `sqlite_in_memory::<check>`.
macro_rules! conformance_suite {
    ($($check:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(#[tokio::test]
            async fn $check() {
                let store = MemoryStore::new();
                assert_eq!(store.name(), "MemoryStore");
                super::$check(&store).await;
            })*
        }

        mod sqlite_file {
            use super::*;
            $(#[tokio::test]
            async fn $check() {
                let (store, _dir) = temp_sqlite().await;
                assert_eq!(store.name(), "SqliteStore");
                super::$check(&store).await;
            })*
        }

        mod sqlite_in_memory {
            use super::*;
            $(#[tokio::test]
            async fn $check() {
                super::$check(&SqliteStore::open_in_memory().await.unwrap()).await;
            })*
        }
    };
}

conformance_suite!(
    epoch_claims_increase,
    roundtrip_keeps_every_field,
    put_replaces_existing_rows,
    remove_app_removes_its_attempts,
    stale_epoch_is_fenced_and_writes_nothing,
    writes_before_any_claim_are_fenced,
    empty_batch_succeeds_without_writing,
    failed_batch_writes_nothing,
    load_orders_by_numeric_id,
);

// ---------------------------------------------------------------------------------------------
// SQLite only

/// A store in a fresh directory, which must outlive it.
async fn temp_sqlite() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("rm-state.db")).await.unwrap();
    (store, dir)
}

#[tokio::test]
async fn sqlite_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("rm.db");
    let expected = RecoveredState {
        apps: vec![finished_app(app_id(1)), app(app_id(2))],
        attempts: vec![failed_attempt(app_id(1), 1)],
    };
    {
        let store = SqliteStore::open(&path).await.unwrap();
        let epoch = store.claim_epoch("rm-1").await.unwrap();
        let ops = [put_apps(&expected.apps), put_attempts(&expected.attempts)].concat();
        store.apply(epoch, &ops).await.unwrap();
    }

    let restarted = SqliteStore::open(&path).await.unwrap();
    assert_eq!(restarted.load().await.unwrap(), expected);
    assert_eq!(restarted.claim_epoch("rm-1").await.unwrap(), 2, "the epoch is durable too");
}

#[tokio::test]
async fn sqlite_second_rm_fences_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rm.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let second = SqliteStore::open(&path).await.unwrap();

    let first_epoch = first.claim_epoch("rm-1").await.unwrap();
    first.apply(first_epoch, &[StoreOp::PutApp(app(app_id(1)))]).await.unwrap();

    let second_epoch = second.claim_epoch("rm-2").await.unwrap();
    assert_eq!(second.load().await.unwrap().apps, vec![app(app_id(1))]);
    match first.apply(first_epoch, &[StoreOp::PutApp(finished_app(app_id(1)))]).await {
        Err(StoreError::Fenced { mine, current }) => assert_eq!((mine, current), (first_epoch, second_epoch)),
        other => panic!("expected Fenced, got {other:?}"),
    }

    second.apply(second_epoch, &[StoreOp::PutApp(app(app_id(2)))]).await.unwrap();
    assert_eq!(first.load().await.unwrap().apps, vec![app(app_id(1)), app(app_id(2))]);
}

#[tokio::test]
async fn sqlite_file_uses_wal_and_records_the_holder() {
    let (store, dir) = temp_sqlite().await;
    store.claim_epoch("rm-a.example.com:8088").await.unwrap();

    let mut raw = raw_connection(&dir.path().join("rm-state.db")).await;
    let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut raw).await.unwrap();
    assert_eq!(journal_mode, "wal");
    let (epoch, holder): (i64, String) =
        sqlx::query_as("SELECT epoch, holder FROM rm_epoch").fetch_one(&mut raw).await.unwrap();
    assert_eq!((epoch, holder.as_str()), (1, "rm-a.example.com:8088"));
}

#[tokio::test]
async fn sqlite_corrupt_rows_name_the_row_and_column() {
    let cases: [(&'static str, &str); 4] = [
        ("UPDATE applications SET state = 'SLEEPING'", "column state"),
        ("UPDATE applications SET tags = 'not json'", "column tags"),
        ("UPDATE applications SET am_vcores = -1", "column am_vcores"),
        ("UPDATE app_attempts SET am_container = 'container_x'", "column am_container"),
    ];
    for (corruption, column) in cases {
        let (store, dir) = temp_sqlite().await;
        let epoch = store.claim_epoch("rm").await.unwrap();
        let id = app_id(1);
        store.apply(epoch, &[StoreOp::PutApp(app(id)), StoreOp::PutAttempt(failed_attempt(id, 1))]).await.unwrap();

        let mut raw = raw_connection(&dir.path().join("rm-state.db")).await;
        sqlx::query(corruption).execute(&mut raw).await.unwrap();

        let message = match store.load().await {
            Err(StoreError::Corrupt(message)) => message,
            other => panic!("{corruption}: expected Corrupt, got {other:?}"),
        };
        let row = if corruption.contains("app_attempts") { AttemptId::new(id, 1).to_string() } else { id.to_string() };
        assert!(message.contains(&row) && message.contains(column), "{corruption}: {message}");
    }
}

#[tokio::test]
async fn sqlite_open_rejects_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    match SqliteStore::open(dir.path()).await {
        Err(StoreError::Open { path, reason }) => {
            assert_eq!(path, dir.path().display().to_string());
            assert!(reason.contains("directory"), "{reason}");
        }
        other => panic!("expected Open error, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn sqlite_open_rejects_a_path_under_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a directory").unwrap();
    match SqliteStore::open(&file.join("rm.db")).await {
        Err(StoreError::Open { reason, .. }) => assert!(reason.contains("cannot create directory"), "{reason}"),
        other => panic!("expected Open error, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn sqlite_open_rejects_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rm.db");
    std::fs::write(&file, "this is not an SQLite database, just text long enough to have a header").unwrap();
    let error = SqliteStore::open(&file).await.err().expect("opening a text file must fail");
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
}

async fn raw_connection(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// Migrations

/// The file names in a migrations folder, sorted. Every backend's folder must hold the same
/// names, so a test can compare them across folders.
fn migration_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().expect("migration names are UTF-8"))
        .collect();
    names.sort();
    names
}

fn migrations_dir(backend: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend)
}

/// `NNNN_snake_case_name.sql`.
fn is_well_formed_migration_name(name: &str) -> bool {
    let Some((version, rest)) = name.split_once('_') else {
        return false;
    };
    let Some(description) = rest.strip_suffix(".sql") else {
        return false;
    };
    version.len() == 4
        && version.bytes().all(|b| b.is_ascii_digit())
        && !description.is_empty()
        && description.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[test]
fn sqlite_migrations_are_well_formed_and_embedded() {
    let names = migration_names(&migrations_dir("sqlite"));
    assert!(!names.is_empty());
    for (index, name) in names.iter().enumerate() {
        assert!(is_well_formed_migration_name(name), "badly named migration {name}");
        assert!(
            name.starts_with(&format!("{:04}_", index + 1)),
            "migrations must be numbered 0001.. without gaps: {names:?}"
        );
    }

    // sqlx reads `0001_initial_schema.sql` as version 1, description "initial schema".
    let embedded: Vec<String> = sqlite::MIGRATOR
        .iter()
        .map(|migration| format!("{:04}_{}.sql", migration.version, migration.description.replace(' ', "_")))
        .collect();
    assert_eq!(embedded, names, "the binary embeds a different migration set than the folder holds; rebuild");
}
