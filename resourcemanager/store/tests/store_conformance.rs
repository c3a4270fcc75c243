//! Every [`StateStore`] must behave the same: each check below runs against `MemoryStore`, an
//! SQLite file, SQLite in memory and a real PostgreSQL server (started per test by
//! `weft-pg-harness`; it needs `apt-get install postgresql`). Backend-specific behaviour
//! (reopening, two RMs on one database, corrupt rows, open errors, a database restart) and the
//! migrations (the SQLite and PostgreSQL schemas must stay equal) follow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use tempfile::TempDir;
use weft_common::protocol::{ContainerLaunchContext, LocalResource, LocalResourceType, LocalResourceVisibility};
use weft_common::states::{AppState, AttemptState, FinalStatus, exit_status};
use weft_common::token::MasterKey;
use weft_common::{ApplicationId, AttemptId, ContainerId, NodeId, Resource};
use weft_pg_harness::PgServer;
use weft_rm_store::{
    AppRecord, AttemptRecord, LeaseOutcome, MasterKeys, MemoryStore, NodeRecord, PostgresStore, RecoveredState,
    SqliteStore, StateStore, StoreError, StoreOp, sqlite,
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

    let expected =
        RecoveredState { apps: vec![finished, accepted], attempts: attempts.to_vec(), ..RecoveredState::default() };
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
    let expected = RecoveredState { apps: vec![finished], attempts: vec![failed], ..RecoveredState::default() };
    assert_eq!(store.load().await.unwrap(), expected);
}

async fn remove_app_removes_its_attempts(store: &dyn StateStore) {
    let epoch = store.claim_epoch("rm").await.unwrap();
    let (gone, kept) = (app_id(1), app_id(2));
    let attempts = [attempt(gone, 1), attempt(gone, 2), attempt(kept, 1)];
    let ops = [put_apps(&[app(gone), app(kept)]), put_attempts(&attempts)].concat();
    store.apply(epoch, &ops).await.unwrap();

    store.apply(epoch, &[StoreOp::RemoveApp(gone)]).await.unwrap();
    let expected =
        RecoveredState { apps: vec![app(kept)], attempts: vec![attempt(kept, 1)], ..RecoveredState::default() };
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

fn node(name: &str) -> NodeRecord {
    NodeRecord { id: NodeId(format!("{name}:8042").into()), http_address: format!("http://{name}:8042") }
}

fn master_keys(container_key_id: u32) -> MasterKeys {
    MasterKeys {
        container_token: MasterKey { key_id: container_key_id, secret_hex: "00ff".repeat(16) },
        am_token: MasterKey { key_id: u32::MAX, secret_hex: "a1b2".repeat(16) },
    }
}

/// Polls `try_acquire_lease` for `holder` until it gets the lease (the current one expired);
/// returns the new epoch.
async fn acquire_when_expired(store: &dyn StateStore, holder: &str, lease_ms: u64) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.try_acquire_lease(holder, lease_ms).await.unwrap() {
            LeaseOutcome::Acquired { epoch } => return epoch,
            LeaseOutcome::HeldBy { .. } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            held => panic!("{holder} still does not get the lease after 10 s: {held:?}"),
        }
    }
}

async fn lease_is_acquired_when_free_and_held_while_unexpired(store: &dyn StateStore) {
    assert_eq!(store.try_acquire_lease("rm-a", 60_000).await.unwrap(), LeaseOutcome::Acquired { epoch: 1 });
    let held = LeaseOutcome::HeldBy { holder: "rm-a".into(), epoch: 1 };
    assert_eq!(store.try_acquire_lease("rm-b", 60_000).await.unwrap(), held);
    // Not even the holder itself takes it again while it runs (it renews instead).
    assert_eq!(store.try_acquire_lease("rm-a", 60_000).await.unwrap(), held);
    assert!(store.renew_lease(1, 60_000).await.unwrap());
}

async fn expired_lease_is_taken_over_with_a_new_epoch(store: &dyn StateStore) {
    let before = Instant::now();
    assert_eq!(store.try_acquire_lease("rm-a", 200).await.unwrap(), LeaseOutcome::Acquired { epoch: 1 });
    let epoch = acquire_when_expired(store, "rm-b", 60_000).await;
    assert_eq!(epoch, 2);
    // Before it expired, rm-b was turned away (the lease times are the database's milliseconds,
    // hence the small margin).
    let waited = before.elapsed();
    assert!(waited >= Duration::from_millis(190), "rm-b took over an unexpired lease after {waited:?}");
    assert_eq!(
        store.try_acquire_lease("rm-a", 60_000).await.unwrap(),
        LeaseOutcome::HeldBy { holder: "rm-b".into(), epoch: 2 }
    );
}

async fn renew_lease_succeeds_only_at_the_current_epoch(store: &dyn StateStore) {
    // A lease of 0 ms has expired at once; renewing it (nobody took over) extends it again.
    let LeaseOutcome::Acquired { epoch: first } = store.try_acquire_lease("rm-a", 0).await.unwrap() else {
        panic!("a free store's lease must be acquired");
    };
    assert!(store.renew_lease(first, 60_000).await.unwrap());
    assert_eq!(
        store.try_acquire_lease("rm-b", 60_000).await.unwrap(),
        LeaseOutcome::HeldBy { holder: "rm-a".into(), epoch: first }
    );

    store.release_lease(first).await.unwrap();
    let LeaseOutcome::Acquired { epoch: second } = store.try_acquire_lease("rm-b", 60_000).await.unwrap() else {
        panic!("a released lease must be free");
    };
    assert!(!store.renew_lease(first, 60_000).await.unwrap(), "the deposed rm-a must learn it lost the lease");
    assert!(store.renew_lease(second, 60_000).await.unwrap());
    // The failed renewal did not touch rm-b's lease.
    assert_eq!(
        store.try_acquire_lease("rm-a", 60_000).await.unwrap(),
        LeaseOutcome::HeldBy { holder: "rm-b".into(), epoch: second }
    );
}

async fn released_lease_is_free_at_once(store: &dyn StateStore) {
    assert_eq!(store.try_acquire_lease("rm-a", 60_000).await.unwrap(), LeaseOutcome::Acquired { epoch: 1 });
    store.release_lease(1).await.unwrap();
    assert_eq!(store.try_acquire_lease("rm-b", 60_000).await.unwrap(), LeaseOutcome::Acquired { epoch: 2 });
    // A late release by the deposed holder does not end its successor's lease.
    store.release_lease(1).await.unwrap();
    assert_eq!(
        store.try_acquire_lease("rm-c", 60_000).await.unwrap(),
        LeaseOutcome::HeldBy { holder: "rm-b".into(), epoch: 2 }
    );
}

async fn claims_and_leases_share_the_epoch(store: &dyn StateStore) {
    assert_eq!(store.claim_epoch("rm-a").await.unwrap(), 1);
    // A claim holds no lease, so the lease is free.
    assert_eq!(store.try_acquire_lease("rm-b", 60_000).await.unwrap(), LeaseOutcome::Acquired { epoch: 2 });
    // A claim is unconditional: it overrides the lease and leaves none behind.
    assert_eq!(store.claim_epoch("rm-c").await.unwrap(), 3);
    assert!(!store.renew_lease(2, 60_000).await.unwrap());
    assert_eq!(store.try_acquire_lease("rm-d", 60_000).await.unwrap(), LeaseOutcome::Acquired { epoch: 4 });
}

async fn deposed_lease_holder_is_fenced_and_writes_nothing(store: &dyn StateStore) {
    let LeaseOutcome::Acquired { epoch: old } = store.try_acquire_lease("rm-a", 60_000).await.unwrap() else {
        panic!("a free store's lease must be acquired");
    };
    let ops = [StoreOp::PutApp(app(app_id(1))), StoreOp::PutNode(node("worker-1"))];
    store.apply(old, &ops).await.unwrap();
    let before = store.load().await.unwrap();

    store.release_lease(old).await.unwrap();
    let LeaseOutcome::Acquired { epoch: new } = store.try_acquire_lease("rm-b", 60_000).await.unwrap() else {
        panic!("a released lease must be free");
    };
    let stale_batch = [
        StoreOp::PutApp(finished_app(app_id(1))),
        StoreOp::PutApp(app(app_id(2))),
        StoreOp::RemoveNode(node("worker-1").id),
        StoreOp::PutNode(node("worker-2")),
        StoreOp::PutMasterKeys(master_keys(1)),
    ];
    match store.apply(old, &stale_batch).await {
        Err(StoreError::Fenced { mine, current }) => assert_eq!((mine, current), (old, new)),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert_eq!(store.load().await.unwrap(), before);

    store.apply(new, &stale_batch).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.apps, vec![finished_app(app_id(1)), app(app_id(2))]);
    assert_eq!(loaded.nodes, vec![node("worker-2")]);
    assert_eq!(loaded.master_keys, Some(master_keys(1)));
}

async fn nodes_and_master_keys_roundtrip(store: &dyn StateStore) {
    let epoch = store.claim_epoch("rm").await.unwrap();
    assert_eq!(store.load().await.unwrap().master_keys, None, "no keys until an RM stores them");
    // Put out of order: `load` returns them by id.
    let ops = [
        StoreOp::PutNode(node("worker-9")),
        StoreOp::PutNode(node("worker-10")),
        StoreOp::PutNode(node("gpu-1")),
        StoreOp::PutMasterKeys(master_keys(7)),
    ];
    store.apply(epoch, &ops).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.nodes, vec![node("gpu-1"), node("worker-10"), node("worker-9")]);
    assert_eq!(loaded.master_keys, Some(master_keys(7)));
    assert_eq!((loaded.apps.len(), loaded.attempts.len()), (0, 0));

    // Replacing a node keeps one row; removing a node that is not stored is not an error.
    let moved = NodeRecord { http_address: "https://worker-9.example.com:8044".into(), ..node("worker-9") };
    let ops = [
        StoreOp::PutNode(moved.clone()),
        StoreOp::RemoveNode(node("worker-10").id),
        StoreOp::RemoveNode(node("never-seen").id),
        StoreOp::PutMasterKeys(master_keys(8)),
    ];
    store.apply(epoch, &ops).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.nodes, vec![node("gpu-1"), moved]);
    assert_eq!(loaded.master_keys, Some(master_keys(8)));

    // A failed batch leaves nodes and keys as they were too.
    let before = store.load().await.unwrap();
    let batch = [
        StoreOp::PutNode(node("worker-11")),
        StoreOp::RemoveNode(node("gpu-1").id),
        StoreOp::PutMasterKeys(master_keys(9)),
        StoreOp::PutAttempt(attempt(app_id(1), 1)),
    ];
    let error = store.apply(epoch, &batch).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert_eq!(store.load().await.unwrap(), before);
}

/// One `#[tokio::test]` per check and store: `memory::<check>`, `sqlite_file::<check>`,
/// `sqlite_in_memory::<check>`, `postgres::<check>` (a server of its own per test).
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

        mod postgres {
            use super::*;
            $(#[tokio::test]
            async fn $check() {
                let (store, _server) = temp_postgres().await;
                assert_eq!(store.name(), "PostgresStore");
                super::$check(&store).await;
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
    lease_is_acquired_when_free_and_held_while_unexpired,
    expired_lease_is_taken_over_with_a_new_epoch,
    renew_lease_succeeds_only_at_the_current_epoch,
    released_lease_is_free_at_once,
    claims_and_leases_share_the_epoch,
    deposed_lease_holder_is_fenced_and_writes_nothing,
    nodes_and_master_keys_roundtrip,
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
        ..RecoveredState::default()
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

/// Corruptions of a store holding [`seed_for_corruption`]'s rows, each with the row and column
/// the load error must name.
const CORRUPTIONS: [(&str, &str, &str); 7] = [
    ("UPDATE applications SET state = 'SLEEPING'", "application_1700000000000_0001", "column state"),
    ("UPDATE applications SET tags = 'not json'", "application_1700000000000_0001", "column tags"),
    ("UPDATE applications SET am_vcores = -1", "application_1700000000000_0001", "column am_vcores"),
    ("UPDATE applications SET max_attempts = 4294967296", "application_1700000000000_0001", "column max_attempts"),
    (
        "UPDATE app_attempts SET am_container = 'container_x'",
        "appattempt_1700000000000_0001_000001",
        "column am_container",
    ),
    ("UPDATE nodes SET id = 'no port'", "nodes row no port", "column id"),
    ("UPDATE master_keys SET key_id = -1 WHERE purpose = 'am-token'", "am-token", "column key_id"),
];

async fn seed_for_corruption(store: &dyn StateStore) {
    let epoch = store.claim_epoch("rm").await.unwrap();
    let id = app_id(1);
    let ops = [
        StoreOp::PutApp(app(id)),
        StoreOp::PutAttempt(failed_attempt(id, 1)),
        StoreOp::PutNode(node("worker-1")),
        StoreOp::PutMasterKeys(master_keys(1)),
    ];
    store.apply(epoch, &ops).await.unwrap();
}

fn assert_names_row_and_column(
    loaded: Result<RecoveredState, StoreError>,
    (corruption, row, column): (&str, &str, &str),
) {
    let message = match loaded {
        Err(StoreError::Corrupt(message)) => message,
        other => panic!("{corruption}: expected Corrupt, got {other:?}"),
    };
    assert!(message.contains(row) && message.contains(column), "{corruption}: {message}");
}

#[tokio::test]
async fn sqlite_corrupt_rows_name_the_row_and_column() {
    for case in CORRUPTIONS {
        let (store, dir) = temp_sqlite().await;
        seed_for_corruption(&store).await;
        let mut raw = raw_connection(&dir.path().join("rm-state.db")).await;
        sqlx::query(case.0).execute(&mut raw).await.unwrap();
        assert_names_row_and_column(store.load().await, case);
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
// PostgreSQL only

/// A store on a fresh database (`weft`) of a server of its own, which must outlive it.
async fn temp_postgres() -> (PostgresStore, PgServer) {
    let server = PgServer::start().unwrap_or_else(|e| panic!("cannot start a test PostgreSQL server: {e:#}"));
    let store = postgres_store(&server, "weft").await;
    (store, server)
}

/// Creates database `name` on `server` and connects a store to it.
async fn postgres_store(server: &PgServer, name: &str) -> PostgresStore {
    let url = server.create_database(name).unwrap();
    PostgresStore::connect(&url, 4)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e:?}; server log: {}", server.log_path().display()))
}

async fn raw_pg_connection(server: &PgServer, database: &str) -> PgConnection {
    PgConnection::connect(&server.url(database)).await.unwrap()
}

/// PostgreSQL text cannot hold NUL: it is stored as U+FFFD rather than failing every retry.
#[tokio::test]
async fn postgres_stores_nul_characters_as_replacement_characters() {
    let (store, _server) = temp_postgres().await;
    let epoch = store.claim_epoch("rm").await.unwrap();
    let mut record = app(app_id(1));
    record.name = "a\0b".into();
    record.diagnostics = "exit\0".into();
    store.apply(epoch, &[StoreOp::PutApp(record)]).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!((loaded.apps[0].name.as_str(), loaded.apps[0].diagnostics.as_str()), ("a\u{FFFD}b", "exit\u{FFFD}"));
}

#[tokio::test]
async fn postgres_second_rm_fences_the_first() {
    let server = PgServer::start().unwrap();
    let url = server.create_database("shared").unwrap();
    let first = PostgresStore::connect(&url, 2).await.unwrap();
    // Connecting runs the migrations again: a no-op on a migrated database.
    let second = PostgresStore::connect(&url, 2).await.unwrap();

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
async fn postgres_concurrent_acquires_elect_one_leader() {
    let server = PgServer::start().unwrap();
    let url = server.create_database("race").unwrap();
    let (a, b) = (PostgresStore::connect(&url, 8).await.unwrap(), PostgresStore::connect(&url, 8).await.unwrap());
    let holders: Vec<String> = (0..16).map(|i| format!("rm-{i}")).collect();
    let attempts = holders.iter().enumerate().map(|(i, holder)| {
        let store = if i % 2 == 0 { &a } else { &b };
        store.try_acquire_lease(holder, 60_000)
    });
    let outcomes: Vec<LeaseOutcome> =
        futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();

    let winners: Vec<usize> =
        (0..outcomes.len()).filter(|&i| matches!(outcomes[i], LeaseOutcome::Acquired { .. })).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[winners[0]], LeaseOutcome::Acquired { epoch: 1 });
    let held = LeaseOutcome::HeldBy { holder: holders[winners[0]].clone(), epoch: 1 };
    for (i, outcome) in outcomes.iter().enumerate().filter(|&(i, _)| i != winners[0]) {
        assert_eq!(outcome, &held, "{}", holders[i]);
    }
}

#[tokio::test]
async fn postgres_lease_runs_on_the_database_clock_and_records_the_holder() {
    let (store, server) = temp_postgres().await;
    assert_eq!(
        store.try_acquire_lease("rm-a.example.com:8088", 60_000).await.unwrap(),
        LeaseOutcome::Acquired { epoch: 1 }
    );
    let row = server
        .psql(
            "weft",
            "SELECT epoch, holder, lease_expires_at - (extract(epoch from clock_timestamp()) * 1000)::bigint \
             FROM rm_epoch",
        )
        .unwrap();
    let fields: Vec<&str> = row.trim_end().split('|').collect();
    assert_eq!(fields[..2], ["1", "rm-a.example.com:8088"], "{row}");
    let remaining_ms: i64 = fields[2].parse().unwrap();
    assert!((50_000..=60_000).contains(&remaining_ms), "lease ends in {remaining_ms} ms by the database's clock");
}

#[tokio::test]
async fn postgres_corrupt_rows_name_the_row_and_column() {
    let server = PgServer::start().unwrap();
    for (index, case) in CORRUPTIONS.into_iter().enumerate() {
        let database = format!("corrupt_{index}");
        let store = postgres_store(&server, &database).await;
        seed_for_corruption(&store).await;
        server.psql(&database, case.0).unwrap();
        assert_names_row_and_column(store.load().await, case);
    }
}

#[tokio::test]
async fn postgres_store_survives_a_database_restart() {
    let (store, mut server) = temp_postgres().await;
    let epoch = store.claim_epoch("rm").await.unwrap();
    store.apply(epoch, &[StoreOp::PutApp(app(app_id(1)))]).await.unwrap();

    server.stop().unwrap();
    // While the database is down, calls fail, and soon (the RM retries them): they do not hang.
    let started = Instant::now();
    let batch = [StoreOp::PutApp(app(app_id(2))), StoreOp::PutNode(node("worker-1"))];
    let error = store.apply(epoch, &batch).await.unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    assert!(store.load().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10), "calls took {:?} to fail", started.elapsed());

    server.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(error) = store.apply(epoch, &batch).await {
        assert!(
            Instant::now() < deadline,
            "the store did not reconnect within 30 s: {error:?}; server log: {}",
            server.log_path().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.apps, vec![app(app_id(1)), app(app_id(2))]);
    assert_eq!(loaded.nodes, vec![node("worker-1")]);
    // The epoch survived the restart, and fencing still works.
    assert_eq!(store.claim_epoch("rm-2").await.unwrap(), epoch + 1);
    match store.apply(epoch, &batch).await {
        Err(StoreError::Fenced { mine, current }) => assert_eq!((mine, current), (epoch, epoch + 1)),
        other => panic!("expected Fenced, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_connect_errors_name_the_database_but_not_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let url = "postgres://rm:hunter2@127.0.0.1:1/weft?sslmode=disable&password=hunter2";
    let started = Instant::now();
    match PostgresStore::connect(url, 2).await {
        Err(StoreError::Open { path, reason }) => {
            assert!(!path.contains("hunter2") && !reason.contains("hunter2"), "{path}: {reason}");
            assert!(path.contains("127.0.0.1:1/weft"), "{path}");
        }
        other => panic!("expected Open error, got {:?}", other.err()),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "connecting took {:?} to fail", started.elapsed());

    match PostgresStore::connect("postgres://rm@127.0.0.1:5432/weft", 0).await {
        Err(StoreError::Open { reason, .. }) => assert!(reason.contains("max_connections"), "{reason}"),
        other => panic!("expected Open error, got {:?}", other.err()),
    }
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

/// The folder's names are `0001_…` on without gaps, and `migrator` (what the binary embeds)
/// holds exactly them.
fn assert_well_formed_and_embedded(backend: &str, migrator: &Migrator) {
    let names = migration_names(&migrations_dir(backend));
    assert!(!names.is_empty());
    for (index, name) in names.iter().enumerate() {
        assert!(is_well_formed_migration_name(name), "badly named migration {name}");
        assert!(
            name.starts_with(&format!("{:04}_", index + 1)),
            "migrations must be numbered 0001.. without gaps: {names:?}"
        );
    }

    // sqlx reads `0001_initial_schema.sql` as version 1, description "initial schema".
    let embedded: Vec<String> = migrator
        .iter()
        .map(|migration| format!("{:04}_{}.sql", migration.version, migration.description.replace(' ', "_")))
        .collect();
    assert_eq!(embedded, names, "the binary embeds a different {backend} migration set than the folder holds; rebuild");
}

#[test]
fn sqlite_migrations_are_well_formed_and_embedded() {
    assert_well_formed_and_embedded("sqlite", &sqlite::MIGRATOR);
}

#[test]
fn postgres_migrations_are_well_formed_and_embedded() {
    assert_well_formed_and_embedded("postgres", &weft_rm_store::postgres::MIGRATOR);
}

#[test]
fn both_backends_have_the_same_migrations() {
    assert_eq!(migration_names(&migrations_dir("sqlite")), migration_names(&migrations_dir("postgres")));
}

/// What a migrated database's schema is made of, in terms both databases can report.
#[derive(Debug, PartialEq)]
struct Schema {
    /// (table, column, type, NOT NULL).
    columns: BTreeSet<(String, String, String, bool)>,
    /// (table, column).
    primary_keys: BTreeSet<(String, String)>,
    /// (table, column, referenced table, referenced column, ON DELETE action).
    foreign_keys: BTreeSet<(String, String, String, String, String)>,
    /// (index, table, column) of the indexes the migrations create by name.
    indexes: BTreeSet<(String, String, String)>,
}

/// The migrations' tables in `sqlite_master m` (not SQLite's own, not sqlx's bookkeeping).
macro_rules! sqlite_tables {
    () => {
        " m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'"
    };
}

async fn sqlite_schema(conn: &mut SqliteConnection) -> Schema {
    // SQLite does not report a primary key column as NOT NULL, though an INTEGER PRIMARY KEY
    // cannot be NULL and the stores never write a NULL key; count it as NOT NULL as PostgreSQL does.
    let columns = concat!(
        "SELECT m.name, p.name, lower(p.type), p.\"notnull\" OR p.pk > 0 ",
        "FROM sqlite_master m, pragma_table_info(m.name) p WHERE",
        sqlite_tables!()
    );
    let primary_keys = concat!(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE p.pk > 0 AND",
        sqlite_tables!()
    );
    let foreign_keys = concat!(
        "SELECT m.name, f.\"from\", f.\"table\", f.\"to\", f.on_delete ",
        "FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE",
        sqlite_tables!()
    );
    // Indexes SQLite makes itself (for primary keys) have no SQL.
    let indexes = "SELECT m.name, m.tbl_name, i.name FROM sqlite_master m, pragma_index_info(m.name) i \
                   WHERE m.type = 'index' AND m.sql IS NOT NULL";
    Schema {
        columns: sqlx::query_as(columns).fetch_all(&mut *conn).await.unwrap().into_iter().collect(),
        primary_keys: sqlx::query_as(primary_keys).fetch_all(&mut *conn).await.unwrap().into_iter().collect(),
        foreign_keys: sqlx::query_as(foreign_keys).fetch_all(&mut *conn).await.unwrap().into_iter().collect(),
        indexes: sqlx::query_as(indexes).fetch_all(&mut *conn).await.unwrap().into_iter().collect(),
    }
}

async fn postgres_schema(conn: &mut PgConnection) -> Schema {
    let columns = "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO' \
                   FROM information_schema.columns \
                   WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'";
    let primary_keys = "SELECT tc.table_name::text, k.column_name::text \
                        FROM information_schema.table_constraints tc \
                        JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) \
                        WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' \
                            AND tc.table_name <> '_sqlx_migrations'";
    let foreign_keys = "SELECT k.table_name::text, k.column_name::text, c.table_name::text, c.column_name::text, \
                            r.delete_rule::text \
                        FROM information_schema.referential_constraints r \
                        JOIN information_schema.key_column_usage k \
                            ON k.constraint_schema = r.constraint_schema AND k.constraint_name = r.constraint_name \
                        JOIN information_schema.constraint_column_usage c \
                            ON c.constraint_schema = r.unique_constraint_schema \
                            AND c.constraint_name = r.unique_constraint_name \
                        WHERE r.constraint_schema = 'public'";
    let indexes = "SELECT i.relname::text, t.relname::text, a.attname::text \
                   FROM pg_index x \
                   JOIN pg_class i ON i.oid = x.indexrelid \
                   JOIN pg_class t ON t.oid = x.indrelid \
                   JOIN pg_namespace n ON n.oid = t.relnamespace \
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (x.indkey) \
                   WHERE n.nspname = 'public' AND NOT x.indisprimary";
    Schema {
        columns: sqlx::query_as(columns).fetch_all(&mut *conn).await.unwrap().into_iter().collect(),
        primary_keys: sqlx::query_as(primary_keys).fetch_all(&mut *conn).await.unwrap().into_iter().collect(),
        foreign_keys: sqlx::query_as(foreign_keys).fetch_all(&mut *conn).await.unwrap().into_iter().collect(),
        indexes: sqlx::query_as(indexes).fetch_all(&mut *conn).await.unwrap().into_iter().collect(),
    }
}

#[tokio::test]
async fn sqlite_and_postgres_migrate_to_the_same_schema() {
    let (_sqlite_store, dir) = temp_sqlite().await;
    let sqlite = sqlite_schema(&mut raw_connection(&dir.path().join("rm-state.db")).await).await;
    let (_postgres_store, server) = temp_postgres().await;
    let postgres = postgres_schema(&mut raw_pg_connection(&server, "weft").await).await;

    // The comparison must see every table and every kind of constraint.
    let tables: BTreeSet<&str> = sqlite.columns.iter().map(|(table, ..)| table.as_str()).collect();
    assert_eq!(tables, BTreeSet::from(["app_attempts", "applications", "master_keys", "nodes", "rm_epoch"]));
    assert!(sqlite.columns.contains(&("rm_epoch".into(), "lease_expires_at".into(), "bigint".into(), true)));
    assert_eq!(sqlite.foreign_keys.len(), 1, "{:?}", sqlite.foreign_keys);
    assert_eq!(sqlite.indexes.len(), 1, "{:?}", sqlite.indexes);

    let mut differences = Vec::new();
    note_differences(&mut differences, "columns (table, column, type, NOT NULL)", &sqlite.columns, &postgres.columns);
    note_differences(&mut differences, "primary keys", &sqlite.primary_keys, &postgres.primary_keys);
    note_differences(&mut differences, "foreign keys", &sqlite.foreign_keys, &postgres.foreign_keys);
    note_differences(&mut differences, "indexes", &sqlite.indexes, &postgres.indexes);
    assert!(differences.is_empty(), "the migrations give different schemas:\n{}", differences.join("\n"));
}

fn note_differences<T: Ord + std::fmt::Debug>(
    differences: &mut Vec<String>,
    what: &str,
    sqlite: &BTreeSet<T>,
    postgres: &BTreeSet<T>,
) {
    for only in sqlite.difference(postgres) {
        differences.push(format!("{what}: only SQLite has {only:?}"));
    }
    for only in postgres.difference(sqlite) {
        differences.push(format!("{what}: only PostgreSQL has {only:?}"));
    }
}
