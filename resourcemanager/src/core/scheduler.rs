//! Scheduling: the policy orders applications, placement picks a node.
//!
//! Policies only order; feasibility and placement are shared, so the capacity and fair
//! schedulers can plug in as further [`SchedulingPolicy`] implementations over the same core.

use std::cmp::Reverse;

use weft_common::{ApplicationId, Millis, NodeId, Resource};

use super::effects::Effects;
use super::model::App;
use super::{AskKey, Core};

/// Decides which application is served first.
pub trait SchedulingPolicy {
    /// Sorts applications that have demand; the first is served first.
    fn order(&self, apps: &mut [&App]);
}

/// YARN's FIFO: higher application priority first, then earlier submission.
pub struct Fifo;

impl SchedulingPolicy for Fifo {
    fn order(&self, apps: &mut [&App]) {
        apps.sort_by_key(|a| (Reverse(a.priority), a.submit_time, a.id));
    }
}

impl Core {
    /// Serves pending asks while they fit anywhere: each app's AM container first, then its asks
    /// by priority (lower number first).
    pub(super) fn schedule(&mut self, now: Millis, fx: &mut impl Effects) {
        if self.free_index.is_empty() {
            return;
        }
        let mut apps: Vec<&App> = self.apps.values().filter(|a| a.has_demand()).collect();
        if apps.is_empty() {
            return;
        }
        Fifo.order(&mut apps);
        let order: Vec<ApplicationId> = apps.iter().map(|a| a.id).collect();
        for app_id in order {
            let app = &self.apps[&app_id];
            if let Some(asked_at) = app.am_ask_since {
                // Nothing else of an app is served before its AM runs.
                let resource = app.am_resource;
                if let Some(node) = self.place(resource) {
                    self.allocate_container(app_id, &node, resource, 0, true, asked_at, now, fx);
                }
                continue;
            }
            let asks: Vec<(AskKey, u32, Millis)> = app.asks.iter().map(|(k, a)| (k.clone(), a.count, a.since)).collect();
            for (key, count, since) in asks {
                let mut granted = 0;
                while granted < count {
                    let Some(node) = self.place(key.capability) else { break };
                    self.allocate_container(app_id, &node, key.capability, key.priority, false, since, now, fx);
                    granted += 1;
                }
                if let Some(app) = self.apps.get_mut(&app_id) {
                    if granted == count {
                        app.asks.remove(&key);
                    } else if let Some(ask) = app.asks.get_mut(&key) {
                        ask.count -= granted;
                    }
                }
            }
            self.wake(app_id, fx);
        }
    }

    /// Picks the usable node with the most free memory that fits `r` (spreading load, as NMs
    /// heartbeating in turn do in YARN). Walks the free-memory index from the top and stops as
    /// soon as memory no longer fits, so it never scans nodes that cannot fit.
    pub(super) fn place(&self, r: Resource) -> Option<NodeId> {
        for (free_mb, id) in self.free_index.iter().rev() {
            if *free_mb < r.memory_mb {
                return None;
            }
            if self.nodes.get(id).is_some_and(|n| n.free().fits(&r)) {
                return Some(id.clone());
            }
        }
        None
    }
}
