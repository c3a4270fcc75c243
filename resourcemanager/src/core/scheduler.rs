//! Scheduling: the queue hierarchy orders leaves (capacity, fair or fifo, see
//! [`super::hierarchy`]), each leaf's ordering policy orders its applications, queue limits
//! decide what may be allocated, and placement picks a node. Policies only order; limits and
//! placement are shared by all of them.

use std::cmp::Reverse;

use weft_common::{ApplicationId, Millis, NodeId, Resource};

use std::collections::{BTreeMap, BTreeSet};

use weft_common::states::AppState;

use super::effects::Effects;
use super::hierarchy::Blocked;
use super::model::App;
use super::{Ask, AskKey, Core, GangReservation};
use crate::queues::{OrderingPolicy, QueueIndex, QueueSettings, SchedulingPolicy};

/// YARN's FIFO ordering: higher application priority first, then earlier submission.
fn fifo_order(apps: &mut [&App]) {
    apps.sort_by_key(|a| (Reverse(a.priority), a.submit_time, a.id));
}

impl Core {
    /// Serves pending asks while they fit anywhere: each app's AM container first, then its asks
    /// by priority (lower number first). Gang asks are placed whole or not at all.
    pub(super) fn schedule(&mut self, now: Millis, fx: &mut impl Effects) {
        loop {
            let reserved = self.gang_reservation.is_some();
            self.schedule_pass(now, fx);
            // Asks passed over for a reservation released during the pass get another chance.
            // Each repeat follows a released reservation, which cannot re-form for the same gang
            // within the pass, so this ends.
            if !reserved || self.gang_reservation.is_some() {
                return;
            }
        }
    }

    fn schedule_pass(&mut self, now: Millis, fx: &mut impl Effects) {
        self.refresh_gang_reservation(now);
        if self.free_index.is_empty() {
            return;
        }
        let mut by_leaf: BTreeMap<QueueIndex, Vec<ApplicationId>> = BTreeMap::new();
        for app in self.apps.values().filter(|a| a.has_demand()) {
            if let Some(leaf) = app.queue_index {
                by_leaf.entry(leaf).or_default().push(app.id);
            }
        }
        // A leaf that could not place anything cannot later in the same pass: placing only
        // uses capacity up.
        let mut exhausted = BTreeSet::new();
        let mut served = BTreeSet::new();
        'serve: while !self.free_index.is_empty() {
            let order = self.hierarchy.leaf_order(&|q| by_leaf.contains_key(&q) && !exhausted.contains(&q));
            for leaf in order {
                if let Some(app) = self.serve_leaf(leaf, &by_leaf[&leaf], now, fx) {
                    served.insert(app);
                    continue 'serve;
                }
                exhausted.insert(leaf);
            }
            break;
        }
        for app in served {
            self.wake(app, fx);
        }
    }

    /// Allocates one unit (an AM container, a container or a whole gang) to the first app of
    /// `leaf`, in the leaf's ordering, that can take one now; returns that app.
    fn serve_leaf(&mut self, leaf: QueueIndex, apps: &[ApplicationId], now: Millis, fx: &mut impl Effects) -> Option<ApplicationId> {
        let mut waiting: Vec<&App> = apps.iter().filter_map(|id| self.apps.get(id)).filter(|a| a.has_demand()).collect();
        self.order_apps(leaf, &mut waiting);
        let order: Vec<ApplicationId> = waiting.iter().map(|a| a.id).collect();
        order.into_iter().find(|app| self.serve_app(leaf, *app, now, fx))
    }

    /// Within a leaf: the configured ordering policy.
    fn order_apps(&self, leaf: QueueIndex, apps: &mut [&App]) {
        let cluster = self.hierarchy.tree().cluster;
        let usage_share = |a: &App, dominant: bool| {
            if dominant { a.used.dominant_share(&cluster) } else { a.used.memory_mb as f64 / cluster.memory_mb.max(1) as f64 }
        };
        let by_usage = |apps: &mut [&App], dominant: bool| {
            apps.sort_by(|a, b| {
                usage_share(a, dominant).total_cmp(&usage_share(b, dominant)).then((a.submit_time, a.id).cmp(&(b.submit_time, b.id)))
            })
        };
        match &self.hierarchy.tree().queues[leaf].settings {
            QueueSettings::Capacity(c) if c.ordering_policy == OrderingPolicy::Fair => by_usage(apps, true),
            QueueSettings::Fair(f) => match f.scheduling_policy {
                SchedulingPolicy::Fifo => apps.sort_by_key(|a| (a.submit_time, a.id)),
                SchedulingPolicy::Fair => by_usage(apps, false),
                SchedulingPolicy::Drf => by_usage(apps, true),
            },
            _ => fifo_order(apps),
        }
    }

    /// Tries one unit for `app`: its AM container if it has none, else its asks by priority.
    fn serve_app(&mut self, leaf: QueueIndex, app_id: ApplicationId, now: Millis, fx: &mut impl Effects) -> bool {
        let Some(app) = self.apps.get(&app_id) else { return false };
        let user = app.user.clone();
        if let Some(asked_at) = app.am_ask_since {
            let r = app.am_resource;
            if let Some(Blocked(why)) = self.hierarchy.blocked(leaf, &user, r, true) {
                self.set_waiting_reason(app_id, why);
                return false;
            }
            let Some(node) = self.place(r) else {
                self.set_waiting_reason(app_id, format!("waiting for a node with room for the ApplicationMaster container ({r})"));
                return false;
            };
            self.allocate_container(app_id, &node, r, 0, true, asked_at, now, fx);
            return true;
        }
        let asks: Vec<(AskKey, Ask)> = app.asks.iter().map(|(k, a)| (k.clone(), a.clone())).collect();
        for (key, ask) in asks {
            let wanted = if ask.gang { key.capability.times(u64::from(ask.count)) } else { key.capability };
            let within_limits = self.hierarchy.blocked(leaf, &user, wanted, false).is_none();
            let granted = if ask.gang {
                // A gang held back by queue limits still reserves, so the capacity it needs
                // accumulates rather than going to smaller asks.
                self.serve_gang(app_id, &key, &ask, within_limits, now, fx)
            } else if !within_limits {
                0
            } else if let Some(node) = self.place(key.capability) {
                self.allocate_container(app_id, &node, key.capability, key.priority, false, ask.since, now, fx);
                1
            } else {
                0
            };
            if granted > 0 {
                if let Some(app) = self.apps.get_mut(&app_id) {
                    match app.asks.get_mut(&key) {
                        Some(a) if a.count > granted => a.count -= granted,
                        _ => {
                            app.asks.remove(&key);
                        }
                    }
                }
                return true;
            }
        }
        false
    }

    /// Tells users why an application waits for its ApplicationMaster container.
    fn set_waiting_reason(&mut self, app: ApplicationId, why: String) {
        if let Some(app) = self.apps.get_mut(&app)
            && app.state == AppState::Accepted
        {
            app.diagnostics = why;
        }
    }

    /// Places a whole gang at once if queue limits allow and it fits; otherwise lets it hold the
    /// gang reservation (if free), so capacity it needs accumulates instead of going to later asks.
    fn serve_gang(
        &mut self,
        app_id: ApplicationId,
        key: &AskKey,
        ask: &Ask,
        within_limits: bool,
        now: Millis,
        fx: &mut impl Effects,
    ) -> u32 {
        let holds_reservation = self.gang_reservation.as_ref().is_some_and(|r| r.app == app_id && &r.key == key);
        if self.gang_reservation.is_some() && !holds_reservation {
            return 0; // Only the reserving gang may be placed: it must not be overtaken by another.
        }
        let Some(nodes) = self.place_gang(key.capability, ask.count).filter(|_| within_limits) else {
            let yielding =
                self.gang_yielding.as_ref().is_some_and(|(a, k, until)| *a == app_id && k == key && now < *until);
            if self.gang_reservation.is_none() && !yielding {
                tracing::info!(app = %app_id, count = ask.count, capability = %key.capability, "gang waits; holding back capacity for it");
                self.gang_reservation = Some(GangReservation { app: app_id, key: key.clone(), since: now });
            }
            return 0;
        };
        if holds_reservation {
            self.gang_reservation = None;
        }
        for node in &nodes {
            self.allocate_container(app_id, node, key.capability, key.priority, false, ask.since, now, fx);
        }
        ask.count
    }

    /// Drops a reservation whose gang is gone, and passes it on when it has been held too long:
    /// the gang then sits out one more timeout period, so neither other gangs nor small asks
    /// wait forever behind a gang that does not fit.
    fn refresh_gang_reservation(&mut self, now: Millis) {
        let Some(r) = &self.gang_reservation else { return };
        let still_wanted =
            self.apps.get(&r.app).and_then(|a| a.asks.get(&r.key)).is_some_and(|a| a.gang && a.count > 0);
        if !still_wanted {
            self.gang_reservation = None;
        } else if now.saturating_sub(r.since) > self.cfg.gang_reservation_timeout_ms {
            tracing::info!(app = %r.app, "gang reservation timed out; another waiting gang may take it");
            self.gang_yielding = Some((r.app, r.key.clone(), now + self.cfg.gang_reservation_timeout_ms));
            self.gang_reservation = None;
        }
    }

    /// Nodes for `count` containers of `r`, most free memory first, if all of them fit now.
    fn place_gang(&self, r: Resource, count: u32) -> Option<Vec<NodeId>> {
        let mut nodes = Vec::with_capacity(count as usize);
        for (free_mb, id) in self.free_index.iter().rev() {
            if *free_mb < r.memory_mb {
                break;
            }
            let Some(node) = self.nodes.get(id) else { continue };
            let fit = fit_count(node.free(), r).min(count - nodes.len() as u32);
            nodes.extend(std::iter::repeat_n(id.clone(), fit as usize));
            if nodes.len() as u32 == count {
                return Some(nodes);
            }
        }
        None
    }

    /// Picks the usable node with the most free memory that fits `r` (spreading load, as NMs
    /// heartbeating in turn do in YARN). Walks the free-memory index from the top and stops as
    /// soon as memory no longer fits, so it never scans nodes that cannot fit. While a gang holds
    /// the reservation, a node is only used if the gang could place as many containers on it
    /// afterwards as before.
    pub(super) fn place(&self, r: Resource) -> Option<NodeId> {
        let gang = self.gang_reservation.as_ref().map(|g| g.key.capability);
        for (free_mb, id) in self.free_index.iter().rev() {
            if *free_mb < r.memory_mb {
                return None;
            }
            let Some(node) = self.nodes.get(id) else { continue };
            let free = node.free();
            if !free.fits(&r) {
                continue;
            }
            if gang.is_none_or(|g| fit_count(free.saturating_sub(r), g) == fit_count(free, g)) {
                return Some(id.clone());
            }
        }
        None
    }
}

/// How many containers of `r` fit into `free`.
fn fit_count(free: Resource, r: Resource) -> u32 {
    let by = |have: u64, need: u64| if need == 0 { u64::MAX } else { have / need };
    by(free.memory_mb, r.memory_mb).min(by(u64::from(free.vcores), u64::from(r.vcores))).min(u64::from(u32::MAX)) as u32
}
