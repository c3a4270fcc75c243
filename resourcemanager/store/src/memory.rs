//! [`StateStore`] in process memory, for the simulator and core tests. Same semantics as the
//! durable stores, fencing included; nothing survives the process.

use std::future::ready;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use super::{LeaseOutcome, RecordSet, RecoveredState, StateStore, StoreError, StoreOp};

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<StoredState>,
}

#[derive(Default)]
struct StoredState {
    /// 0 until the first claim.
    epoch: u32,
    holder: String,
    /// Milliseconds since the Unix epoch; 0 when no lease is held.
    lease_expires_at: u64,
    records: RecordSet,
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

    fn claim(&self, holder: &str) -> u32 {
        let mut state = self.lock();
        state.epoch += 1;
        state.holder = holder.to_owned();
        state.lease_expires_at = 0;
        state.epoch
    }

    fn acquire(&self, holder: &str, lease_ms: u64) -> LeaseOutcome {
        let mut state = self.lock();
        let now = now_millis();
        if state.lease_expires_at > now {
            return LeaseOutcome::HeldBy { holder: state.holder.clone(), epoch: state.epoch };
        }
        state.epoch += 1;
        state.holder = holder.to_owned();
        state.lease_expires_at = now + lease_ms;
        LeaseOutcome::Acquired { epoch: state.epoch }
    }

    fn renew(&self, epoch: u32, lease_ms: u64) -> bool {
        let mut state = self.lock();
        if state.epoch != epoch {
            return false;
        }
        state.lease_expires_at = now_millis() + lease_ms;
        true
    }

    fn release(&self, epoch: u32) {
        let mut state = self.lock();
        if state.epoch == epoch {
            state.lease_expires_at = 0;
        }
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
        state.records.apply(ops).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

impl StateStore for MemoryStore {
    fn name(&self) -> &'static str {
        "MemoryStore"
    }

    fn claim_epoch<'a>(&'a self, holder: &'a str) -> BoxFuture<'a, Result<u32, StoreError>> {
        Box::pin(ready(Ok(self.claim(holder))))
    }

    fn try_acquire_lease<'a>(
        &'a self,
        holder: &'a str,
        lease_ms: u64,
    ) -> BoxFuture<'a, Result<LeaseOutcome, StoreError>> {
        Box::pin(ready(Ok(self.acquire(holder, lease_ms))))
    }

    fn renew_lease(&self, epoch: u32, lease_ms: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(ready(Ok(self.renew(epoch, lease_ms))))
    }

    fn release_lease(&self, epoch: u32) -> BoxFuture<'_, Result<(), StoreError>> {
        self.release(epoch);
        Box::pin(ready(Ok(())))
    }

    fn apply<'a>(&'a self, epoch: u32, ops: &'a [StoreOp]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(ready(self.apply_batch(epoch, ops)))
    }

    fn load(&self) -> BoxFuture<'_, Result<RecoveredState, StoreError>> {
        Box::pin(ready(Ok(self.lock().records.load())))
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}
