//! What a reload changes, so the RM can refuse it (a removed queue, or a leaf becoming a parent,
//! while it still has apps — as YARN's `refreshQueues`) and log the rest.

use std::collections::BTreeMap;

use serde_json::Value;

use super::config::{QueueConfig, QueuesConfig};
use super::validate::root_queue;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Full paths of new queues, parents before their children.
    pub added: Vec<String>,
    /// Full paths of queues that disappear, children before their parents.
    pub removed: Vec<String>,
    /// Queues whose own settings changed (children don't count).
    pub changed: Vec<QueueChange>,
    /// Leaves that get children (or `type: parent`): they must not hold apps.
    pub leaves_to_parents: Vec<String>,
    /// Top-level keys whose value changed, such as `scheduler` or `placement-rules` (the root
    /// queue's section shows up as changes of queue `root`).
    pub global_changes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueChange {
    pub path: String,
    /// YAML names of the fields that differ.
    pub fields: Vec<String>,
}

impl ReloadPlan {
    pub fn is_empty(&self) -> bool {
        *self == ReloadPlan::default()
    }
}

/// Compares two configurations queue by queue (by full path, including the implicit
/// `root.default` of a config without queues).
pub fn diff(old: &QueuesConfig, new: &QueuesConfig) -> ReloadPlan {
    let (old_root, new_root) = (root_queue(old), root_queue(new));
    let (old_queues, new_queues) = (flatten(&old_root), flatten(&new_root));
    let mut plan = ReloadPlan::default();
    // Lexicographic order puts every parent before its descendants.
    for (path, new_queue) in &new_queues {
        match old_queues.get(path) {
            None => plan.added.push(path.clone()),
            Some(old_queue) => {
                let fields = changed_keys(&own_settings(old_queue), &own_settings(new_queue));
                if !fields.is_empty() {
                    plan.changed.push(QueueChange { path: path.clone(), fields });
                }
                if old_queue.is_leaf() && !new_queue.is_leaf() {
                    plan.leaves_to_parents.push(path.clone());
                }
            }
        }
    }
    plan.removed = old_queues.keys().rev().filter(|path| !new_queues.contains_key(*path)).cloned().collect();
    plan.global_changes = changed_keys(&globals(old), &globals(new));
    plan
}

fn flatten(root: &QueueConfig) -> BTreeMap<String, &QueueConfig> {
    fn add<'a>(path: String, q: &'a QueueConfig, into: &mut BTreeMap<String, &'a QueueConfig>) {
        for (name, child) in &q.queues {
            add(format!("{path}.{name}"), child, into);
        }
        into.insert(path, q);
    }
    let mut queues = BTreeMap::new();
    add("root".to_owned(), root, &mut queues);
    queues
}

/// A queue's fields as YAML keys and values, without its children.
fn own_settings(q: &QueueConfig) -> Value {
    let mut value = serde_json::to_value(QueueConfig { queues: BTreeMap::new(), ..q.clone() }).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("queues");
    }
    value
}

/// The top-level keys except the queue tree and root, which are compared queue by queue.
fn globals(config: &QueuesConfig) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("queues");
        map.remove("root");
    }
    value
}

fn changed_keys(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (old, new) = (old.as_object().unwrap_or(&empty), new.as_object().unwrap_or(&empty));
    let mut keys: Vec<String> =
        old.keys().chain(new.keys()).filter(|key| old.get(*key) != new.get(*key)).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
}
