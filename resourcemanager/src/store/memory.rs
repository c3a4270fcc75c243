//! [`StateStore`] in process memory, for the simulator and core tests. Same semantics as the
//! durable stores, fencing included; nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::future::ready;
use std::sync::{Mutex, PoisonError};

use futures::future::BoxFuture;
use weft_common::ApplicationId;

use super::{AppRecord, AttemptRecord, RecoveredState, StateStore, StoreError, StoreOp};

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<StoredState>,
}

#[derive(Default)]
struct StoredState {
    /// 0 until the first claim.
    epoch: u32,
    /// Ordered maps, so `load` comes out in id order as the trait requires.
    apps: BTreeMap<ApplicationId, StoredApp>,
}

/// An app with its attempts nested under it, so removing the app removes them too.
struct StoredApp {
    record: AppRecord,
    /// By attempt number.
    attempts: BTreeMap<u32, AttemptRecord>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoredState> {
        // Batches are validated before anything changes, so the maps are consistent even if a
        // holder of the lock panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn claim(&self) -> u32 {
        let mut state = self.lock();
        state.epoch += 1;
        state.epoch
    }

    fn apply_batch(&self, epoch: u32, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        let current = state.epoch;
        // Epoch 0 means nobody has claimed the store: no RM may write before claiming.
        if current != epoch || current == 0 {
            return Err(StoreError::Fenced { mine: epoch, current });
        }
        // Validate the whole batch before changing anything, so a refused batch writes nothing.
        state.check_attempts_have_apps(ops)?;
        for op in ops {
            match op {
                StoreOp::PutApp(app) => match state.apps.get_mut(&app.id) {
                    Some(stored) => stored.record = app.clone(),
                    None => {
                        let stored = StoredApp { record: app.clone(), attempts: BTreeMap::new() };
                        state.apps.insert(app.id, stored);
                    }
                },
                StoreOp::PutAttempt(attempt) => {
                    let stored = state.apps.get_mut(&attempt.id.app).expect("checked by check_attempts_have_apps");
                    stored.attempts.insert(attempt.id.attempt, attempt.clone());
                }
                StoreOp::RemoveApp(id) => {
                    state.apps.remove(id);
                }
            }
        }
        Ok(())
    }

    fn load_all(&self) -> RecoveredState {
        let state = self.lock();
        RecoveredState {
            apps: state.apps.values().map(|stored| stored.record.clone()).collect(),
            attempts: state.apps.values().flat_map(|stored| stored.attempts.values().cloned()).collect(),
        }
    }
}

impl StoredState {
    /// Refuses, like the SQLite store's foreign key, a `PutAttempt` whose app is neither stored
    /// nor put earlier in the batch (or was removed earlier in it).
    fn check_attempts_have_apps(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let mut present_after_batch_so_far: HashMap<ApplicationId, bool> = HashMap::new();
        for op in ops {
            match op {
                StoreOp::PutApp(app) => {
                    present_after_batch_so_far.insert(app.id, true);
                }
                StoreOp::RemoveApp(id) => {
                    present_after_batch_so_far.insert(*id, false);
                }
                StoreOp::PutAttempt(attempt) => {
                    let app = attempt.id.app;
                    let present = present_after_batch_so_far.get(&app).copied();
                    if !present.unwrap_or_else(|| self.apps.contains_key(&app)) {
                        return Err(StoreError::Corrupt(format!(
                            "attempt {} refers to application {app}, which is not in the store",
                            attempt.id
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

impl StateStore for MemoryStore {
    fn name(&self) -> &'static str {
        "MemoryStore"
    }

    /// `holder` is not kept: it is only for operators reading a durable store.
    fn claim_epoch<'a>(&'a self, _holder: &'a str) -> BoxFuture<'a, Result<u32, StoreError>> {
        Box::pin(ready(Ok(self.claim())))
    }

    fn apply<'a>(&'a self, epoch: u32, ops: &'a [StoreOp]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(ready(self.apply_batch(epoch, ops)))
    }

    fn load(&self) -> BoxFuture<'_, Result<RecoveredState, StoreError>> {
        Box::pin(ready(Ok(self.load_all())))
    }
}
