//! Scheduling: the policy orders applications, placement picks a node.
//!
//! Policies only order; feasibility and placement are shared, so the capacity and fair
//! schedulers can plug in as further [`SchedulingPolicy`] implementations over the same core.

use std::cmp::Reverse;

use weft_common::{ApplicationId, Millis, NodeId, Resource};

use super::effects::Effects;
use super::model::App;
use super::{Ask, AskKey, Core, GangReservation};

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
            let asks: Vec<(AskKey, Ask)> = app.asks.iter().map(|(k, a)| (k.clone(), a.clone())).collect();
            for (key, ask) in asks {
                let granted = if ask.gang {
                    self.serve_gang(app_id, &key, &ask, now, fx)
                } else {
                    self.serve(app_id, &key, &ask, now, fx)
                };
                if let Some(app) = self.apps.get_mut(&app_id) {
                    if granted == ask.count {
                        app.asks.remove(&key);
                    } else if let Some(a) = app.asks.get_mut(&key) {
                        a.count -= granted;
                    }
                }
            }
            self.wake(app_id, fx);
        }
    }

    /// Places containers of a plain ask one by one while they fit; returns how many.
    fn serve(&mut self, app_id: ApplicationId, key: &AskKey, ask: &Ask, now: Millis, fx: &mut impl Effects) -> u32 {
        let mut granted = 0;
        while granted < ask.count {
            let Some(node) = self.place(key.capability) else { break };
            self.allocate_container(app_id, &node, key.capability, key.priority, false, ask.since, now, fx);
            granted += 1;
        }
        granted
    }

    /// Places a whole gang at once if it fits; otherwise lets it hold the gang reservation (if
    /// free), so capacity it needs accumulates instead of going to later asks.
    fn serve_gang(
        &mut self,
        app_id: ApplicationId,
        key: &AskKey,
        ask: &Ask,
        now: Millis,
        fx: &mut impl Effects,
    ) -> u32 {
        let holds_reservation = self.gang_reservation.as_ref().is_some_and(|r| r.app == app_id && &r.key == key);
        if self.gang_reservation.is_some() && !holds_reservation {
            return 0; // Only the reserving gang may be placed: it must not be overtaken by another.
        }
        let Some(nodes) = self.place_gang(key.capability, ask.count) else {
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
