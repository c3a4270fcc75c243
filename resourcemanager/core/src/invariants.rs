//! The invariant checker: run after every core step in tests and debug builds.

use std::collections::BTreeSet;

use weft_common::Resource;
use weft_common::states::AppState;

use super::hierarchy::QueueUsage;
use super::{Core, RmContainer};

impl Core {
    /// Checks that every resource is accounted exactly once, no node is over capacity, the
    /// free-capacity index matches the nodes, and app/attempt states agree.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut cluster = Resource::ZERO;
        for c in self.containers.values() {
            let node =
                self.nodes.get(&c.node_id).ok_or_else(|| format!("{} is on unknown node {}", c.id, c.node_id))?;
            if !node.containers.contains(&c.id) {
                return Err(format!("{} is missing from node {}", c.id, c.node_id));
            }
            let app = self.apps.get(&c.id.app()).ok_or_else(|| format!("{} belongs to unknown app", c.id))?;
            if !app.containers.contains(&c.id) {
                return Err(format!("{} is missing from its app", c.id));
            }
            cluster += c.resource;
        }
        if cluster != self.cluster_used {
            return Err(format!("cluster used {} != sum of containers {}", self.cluster_used, cluster));
        }
        let mut indexed = BTreeSet::new();
        for node in self.nodes.values() {
            let mut used = Resource::ZERO;
            for id in &node.containers {
                let c = self.containers.get(id).ok_or_else(|| format!("node {} lists dead container {id}", node.id))?;
                if node.launching.contains(id) == (c.state == weft_common::states::ContainerState::Running) {
                    return Err(format!("node {}'s launching set disagrees with {id}'s state {:?}", node.id, c.state));
                }
                used += c.resource;
            }
            if !node.launching.is_subset(&node.containers) {
                return Err(format!("node {} has launching containers it does not hold", node.id));
            }
            if used != node.used {
                return Err(format!("node {} used {} != sum of its containers {}", node.id, node.used, used));
            }
            if node.state.is_usable() {
                if !node.total.fits(&node.used) {
                    return Err(format!("node {} is over capacity: {} of {}", node.id, node.used, node.total));
                }
                if node.free().fits(&self.cfg.settings.min_allocation) {
                    indexed.insert((node.free().memory_mb, node.id.clone()));
                }
            }
        }
        if indexed != self.free_index {
            return Err(format!("free index {:?} != usable nodes with room {:?}", self.free_index, indexed));
        }
        let usable: Vec<&super::Node> = self.nodes.values().filter(|n| n.state.is_usable()).collect();
        let mut free_vcores = std::collections::BTreeMap::new();
        for node in &usable {
            *free_vcores.entry(node.free().vcores).or_insert(0u32) += 1;
        }
        let capacity = usable.iter().fold(Resource::ZERO, |sum, n| sum + n.total);
        if free_vcores != self.free_vcores
            || capacity != self.usable_capacity
            || usable.len() as u32 != self.usable_count
        {
            return Err(format!(
                "usable-node aggregates out of step: free vcores {:?} vs {free_vcores:?}, capacity {} vs {capacity}, count {} vs {}",
                self.free_vcores,
                self.usable_capacity,
                self.usable_count,
                usable.len()
            ));
        }
        if !self.pending.stale {
            let mut expected = 0;
            for app in self.apps.values() {
                let want = self.pending_entry(app);
                expected += usize::from(want.is_some());
                if want.as_ref() != self.pending.get(app.id) {
                    return Err(format!(
                        "pending index has {:?} for app {}, expected {want:?}",
                        self.pending.get(app.id),
                        app.id
                    ));
                }
            }
            if expected != self.pending.entries().len() {
                return Err(format!("pending index lists {} apps, expected {expected}", self.pending.entries().len()));
            }
        }
        if let Some(r) = &self.gang_reservation {
            let pending = self.apps.get(&r.app).and_then(|a| a.asks.get(&r.key)).is_some_and(|a| a.gang && a.count > 0);
            if !pending {
                return Err(format!("gang reservation {r:?} has no pending gang ask"));
            }
        }
        for app in self.apps.values() {
            let mut used = Resource::ZERO;
            for id in &app.containers {
                used += self
                    .containers
                    .get(id)
                    .ok_or_else(|| format!("app {} lists dead container {id}", app.id))?
                    .resource;
            }
            if used != app.used {
                return Err(format!("app {} used {} != sum of its containers {}", app.id, app.used, used));
            }
            let live_attempts = app.attempts.iter().filter(|a| !a.state.is_final()).count();
            if app.state.is_final() {
                if app.has_demand() || live_attempts > 0 {
                    return Err(format!("finished app {} still has demand or a live attempt", app.id));
                }
                let am = app.current_attempt().and_then(|a| a.am_container);
                if app.containers.iter().any(|c| app.state != AppState::Finished || Some(*c) != am) {
                    return Err(format!("finished app {} still holds containers {:?}", app.id, app.containers));
                }
            } else if matches!(app.state, AppState::Accepted | AppState::Running) {
                let current_live = app.current_attempt().is_some_and(|a| !a.state.is_final());
                if live_attempts != 1 || !current_live {
                    return Err(format!(
                        "app {} in {} must have exactly one live attempt, the last",
                        app.id, app.state
                    ));
                }
                let current = app.current_attempt().map(|a| a.id);
                if let Some(c) = app.containers.iter().find(|c| Some(c.attempt) != current) {
                    return Err(format!("app {} holds container {c} of an old attempt", app.id));
                }
            }
        }
        self.check_queue_accounting()
    }

    /// Every queue's usage equals what its subtree's applications hold.
    fn check_queue_accounting(&self) -> Result<(), String> {
        let tree = self.hierarchy.tree();
        let mut expected = vec![QueueUsage::default(); tree.queues.len()];
        for app in self.apps.values() {
            let Some(leaf) = app.queue_index else { continue };
            let am: Vec<&RmContainer> =
                app.containers.iter().filter_map(|c| self.containers.get(c)).filter(|c| c.is_am).collect();
            let mut q = Some(leaf);
            while let Some(i) = q {
                let e = &mut expected[i];
                e.used += app.used;
                e.apps += u32::from(!app.state.is_final());
                for c in &am {
                    e.am_used += c.resource;
                    e.running_apps += 1;
                }
                q = tree.queues[i].parent;
            }
        }
        for (i, e) in expected.iter().enumerate() {
            let actual = self.hierarchy.usage(i);
            let counts = (actual.used, actual.am_used, actual.apps, actual.running_apps);
            if counts != (e.used, e.am_used, e.apps, e.running_apps) {
                return Err(format!(
                    "queue {} accounts (used, am used, apps, running apps) {counts:?}, its apps hold {:?}",
                    tree.queues[i].path,
                    (e.used, e.am_used, e.apps, e.running_apps)
                ));
            }
        }
        Ok(())
    }
}
