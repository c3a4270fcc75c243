//! The durable records of RM state and the operations that change them.
//!
//! What is stored mirrors YARN's RM state store: per app the submission (user, queue, AM launch
//! context, limits), its latest durable state and outcome; per attempt its AM container, node,
//! state and outcome. Containers are not stored; they are rebuilt from NodeManagers. Of nodes only
//! the id and address are kept (see [`NodeRecord`]), and the token signing keys ([`MasterKeys`]).
//!
//! The core emits [`StoreOp`]s as effects and never calls a store; `weft-rm-store` applies them.
//! [`RecordSet`] is the plain in-memory meaning of a batch of operations: the memory store keeps
//! one, and core tests use one as their store.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use weft_common::protocol::ContainerLaunchContext;
use weft_common::states::{AppState, AttemptState, FinalStatus};
use weft_common::token::MasterKey;
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId, Resource};

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

/// A batch refused because an attempt names an application that is not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attempt {attempt} refers to application {app}, which is not in the store")]
pub struct MissingApp {
    pub attempt: AttemptId,
    pub app: ApplicationId,
}

/// Applications (with their attempts), nodes and keys as a store holds them, with no epoch, lease
/// or IO: the contents of the memory store, and the store of core tests.
#[derive(Debug, Default, Clone)]
pub struct RecordSet {
    nodes: BTreeMap<NodeId, NodeRecord>,
    master_keys: Option<MasterKeys>,
    /// Ordered maps, so `load` comes out in id order as stores must.
    apps: BTreeMap<ApplicationId, StoredApp>,
}

/// An app with its attempts nested under it, so removing the app removes them too.
#[derive(Debug, Clone)]
struct StoredApp {
    record: AppRecord,
    /// By attempt number.
    attempts: BTreeMap<u32, AttemptRecord>,
}

impl RecordSet {
    /// Applies `ops` in order, all or nothing: a batch with a `PutAttempt` whose app is neither
    /// stored nor put earlier in the batch (or was removed earlier in it) is refused whole, like
    /// the SQL stores' foreign key.
    pub fn apply(&mut self, ops: &[StoreOp]) -> Result<(), MissingApp> {
        self.check_attempts_have_apps(ops)?;
        for op in ops {
            match op {
                StoreOp::PutApp(app) => match self.apps.get_mut(&app.id) {
                    Some(stored) => stored.record = app.clone(),
                    None => {
                        let stored = StoredApp { record: app.clone(), attempts: BTreeMap::new() };
                        self.apps.insert(app.id, stored);
                    }
                },
                StoreOp::PutAttempt(attempt) => {
                    let stored = self.apps.get_mut(&attempt.id.app).expect("checked by check_attempts_have_apps");
                    stored.attempts.insert(attempt.id.attempt, attempt.clone());
                }
                StoreOp::RemoveApp(id) => {
                    self.apps.remove(id);
                }
                StoreOp::PutNode(node) => {
                    self.nodes.insert(node.id.clone(), node.clone());
                }
                StoreOp::RemoveNode(id) => {
                    self.nodes.remove(id);
                }
                StoreOp::PutMasterKeys(keys) => self.master_keys = Some(keys.clone()),
            }
        }
        Ok(())
    }

    pub fn load(&self) -> RecoveredState {
        RecoveredState {
            apps: self.apps.values().map(|stored| stored.record.clone()).collect(),
            attempts: self.apps.values().flat_map(|stored| stored.attempts.values().cloned()).collect(),
            nodes: self.nodes.values().cloned().collect(),
            master_keys: self.master_keys.clone(),
        }
    }

    fn check_attempts_have_apps(&self, ops: &[StoreOp]) -> Result<(), MissingApp> {
        let mut present_after_batch_so_far: HashMap<ApplicationId, bool> = HashMap::new();
        for op in ops {
            match op {
                StoreOp::PutApp(app) => {
                    present_after_batch_so_far.insert(app.id, true);
                }
                StoreOp::RemoveApp(id) => {
                    present_after_batch_so_far.insert(*id, false);
                }
                StoreOp::PutNode(_) | StoreOp::RemoveNode(_) | StoreOp::PutMasterKeys(_) => {}
                StoreOp::PutAttempt(attempt) => {
                    let app = attempt.id.app;
                    let present = present_after_batch_so_far.get(&app).copied();
                    if !present.unwrap_or_else(|| self.apps.contains_key(&app)) {
                        return Err(MissingApp { attempt: attempt.id, app });
                    }
                }
            }
        }
        Ok(())
    }
}
