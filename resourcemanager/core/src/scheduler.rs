//! Scheduling: the queue hierarchy orders leaves (capacity, fair or fifo, see
//! [`super::hierarchy`]), each leaf's ordering policy orders its applications, queue limits
//! decide what may be allocated, and placement picks a node. Policies only order; limits and
//! placement are shared by all of them.
//!
//! Locality (delay scheduling): an ask names a host, a rack (`/…`) or `*`. A host ask may use
//! only that host for `node_locality_delay_ms` after it appeared, then any node of its host's
//! rack, and after a further `rack_locality_delay_ms` any node; a rack ask may use only its rack
//! for `rack_locality_delay_ms`, then any node. With `relax_locality` false an ask never leaves
//! its host or rack. YARN counts these delays in missed scheduling opportunities (node
//! heartbeats); Weft schedules after every event, including the periodic `Tick`, so it counts
//! time, and an ask whose delay has run out is served on the next tick without other events.
//! The delay runs from when the ask appeared and is not restarted by allocations. YARN's
//! AMRMClient sends a host, a rack and a `*` request for each locality ask; in Weft one ask
//! names its preferred location and relaxes by itself.

use std::collections::BTreeSet;
use std::ops::Bound;

use weft_common::protocol::ANY;
use weft_common::{ApplicationId, Millis, NodeId, Resource};

use super::apps::App;
use super::cluster::{Node, Placement};
use super::effects::Effects;
use super::hierarchy::Blocked;
use super::pending::{OrderKey, PendingEntry};
use super::{Ask, AskKey, Core, GangReservation};
use crate::queues::{OrderingPolicy, QueueIndex, QueueSettings, ResourceCalculator, SchedulingPolicy};

/// Rack names start with `/` (`/rack1`, `/dc1/rack7`), as in YARN's topology.
fn is_rack_name(resource_name: &str) -> bool {
    resource_name.starts_with('/')
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
        if self.pending.is_stale() {
            self.rebuild_pending();
        }
        let mut exhausted = BTreeSet::new();
        let mut served = BTreeSet::new();
        while let Some(room) = self.cluster.largest_free() {
            let wanted = |q| {
                !exhausted.contains(&q)
                    && self.pending.leaf_may_fit(q, room)
                    && !self.hierarchy.at_maximum(q, self.pending.leaf_smallest(q))
            };
            let Some(leaf) = self.hierarchy.first_leaf(&wanted) else { break };
            match self.serve_leaf(leaf, now, fx) {
                Some(app) => served.insert(app),
                None => exhausted.insert(leaf),
            };
        }
        for app in served {
            self.wake(app, fx);
        }
    }

    /// Allocates one unit (an AM container, a container or a whole gang) to the first app of
    /// `leaf`, in the leaf's ordering, that can take one now; returns that app. Every unit
    /// starts from the front: serving one app can lift the user limit of another (it grows with
    /// the queue's usage above its guarantee). Apps whose smallest ask fits no node are passed
    /// over without a look at their asks.
    fn serve_leaf(&mut self, leaf: QueueIndex, now: Millis, fx: &mut impl Effects) -> Option<ApplicationId> {
        let mut from = Bound::Unbounded;
        // Users found at their user limit: their other apps would be refused the same way.
        let mut limited_users: Vec<String> = Vec::new();
        loop {
            let position = self.pending.next_in_leaf(leaf, from)?;
            from = Bound::Excluded(position);
            let app = position.1;
            let fits = |room: Resource| self.pending.get(app).is_some_and(|e| room.fits(&e.smallest));
            if !self.cluster.largest_free().is_some_and(fits) {
                continue;
            }
            let Some(user) = self.apps.get(app).map(|a| a.user()) else { continue };
            if limited_users.iter().any(|u| u == user) {
                continue;
            }
            if self.serve_app(leaf, app, now, fx) {
                return Some(app);
            }
            if let Some(a) = self.apps.get(app)
                && self.hierarchy.at_user_limit(leaf, a.user())
            {
                limited_users.push(a.user().to_owned());
            }
        }
    }

    /// Where `app` goes in its leaf's serving order (see [`OrderKey`]).
    fn order_key(&self, app: &App, leaf: QueueIndex) -> OrderKey {
        let tree = self.hierarchy.tree();
        let cluster = tree.cluster;
        let share =
            |calculator: ResourceCalculator| OrderKey::share(calculator.share(app.used(), cluster), app.submit_time());
        match &tree.queues[leaf].settings {
            QueueSettings::Capacity(c) if c.ordering_policy == OrderingPolicy::Fair => share(tree.resource_calculator),
            QueueSettings::Fair(f) => match f.scheduling_policy {
                SchedulingPolicy::Fifo => OrderKey::submission(app.submit_time()),
                policy => share(policy.calculator()),
            },
            _ => OrderKey::fifo(app.priority(), app.submit_time()),
        }
    }

    /// What the pending index should hold for `app`.
    pub(super) fn pending_entry(&self, app: &App) -> Option<PendingEntry> {
        let leaf = app.queue_index().filter(|_| app.has_demand())?;
        let mut smallest: Option<Resource> = None;
        let mut consider = |r: Resource| {
            smallest =
                Some(smallest.map_or(r, |s| Resource::new(s.memory_mb.min(r.memory_mb), s.vcores.min(r.vcores))));
        };
        if app.am_ask_since().is_some() {
            consider(app.am_resource());
        }
        for (key, ask) in app.asks() {
            consider(if ask.gang { Resource::ZERO } else { key.capability });
        }
        Some(PendingEntry { leaf, key: self.order_key(app, leaf), smallest: smallest.unwrap_or(Resource::ZERO) })
    }

    /// Brings `app`'s pending-index entry up to date; call after anything that changes an app's
    /// demand, usage, priority or queue.
    pub(super) fn sync_pending(&mut self, app: ApplicationId) {
        let entry = self.apps.get(app).and_then(|a| self.pending_entry(a));
        self.pending.set(app, entry);
    }

    pub(super) fn rebuild_pending(&mut self) {
        let entries: Vec<(ApplicationId, PendingEntry)> =
            self.apps.iter().filter_map(|a| Some((a.id(), self.pending_entry(a)?))).collect();
        self.pending.rebuild(entries);
    }

    /// Tries one unit for `app`: its AM container if it has none, else its asks by priority.
    fn serve_app(&mut self, leaf: QueueIndex, app_id: ApplicationId, now: Millis, fx: &mut impl Effects) -> bool {
        let Some(app) = self.apps.get(app_id) else { return false };
        if let Some(asked_at) = app.am_ask_since() {
            let r = app.am_resource();
            if let Some(Blocked(why)) = self.hierarchy.blocked(leaf, app.user(), r, true) {
                self.set_waiting_reason(app_id, why);
                return false;
            }
            let Some(node) = self.place(r, &Placement::Anywhere, now) else {
                self.set_waiting_reason(app_id, super::apps::waiting_for_am_node(r));
                return false;
            };
            let am_ask = AskKey { priority: 0, resource_name: ANY.to_owned(), capability: r };
            return self.allocate_container(app_id, &node, &am_ask, true, asked_at, now, fx);
        }
        let mut after = Bound::Unbounded;
        while let Some((key, ask)) = self.apps.get(app_id).and_then(|a| {
            a.asks().range::<AskKey, _>((after.as_ref(), Bound::Unbounded)).next().map(|(k, a)| (k.clone(), a.clone()))
        }) {
            let wanted = if ask.gang { key.capability.times(u64::from(ask.count)) } else { key.capability };
            let held_back = self.apps.get(app_id).and_then(|a| self.hierarchy.blocked(leaf, a.user(), wanted, false));
            let within_limits = held_back.is_none();
            if let Some(Blocked(why)) = held_back {
                self.set_waiting_reason(app_id, format!("pending containers wait: {why}"));
            }
            let granted = if ask.gang {
                // A gang held back by queue limits still reserves, so the capacity it needs
                // accumulates rather than going to smaller asks.
                self.serve_gang(app_id, &key, &ask, within_limits, now, fx)
            } else if !within_limits {
                0
            } else if let Some(node) = self.place(key.capability, &self.allowed_placement(&key, &ask, now), now) {
                u32::from(self.allocate_container(app_id, &node, &key, false, ask.since, now, fx))
            } else {
                0
            };
            if granted > 0 {
                if let Some(app) = self.apps.get_mut(app_id) {
                    app.ask_granted(&key, granted);
                }
                self.sync_pending(app_id);
                return true;
            }
            after = Bound::Excluded(key);
        }
        false
    }

    /// Tells users why an application waits (see [`App::set_waiting_reason`]).
    fn set_waiting_reason(&mut self, app: ApplicationId, why: String) {
        if let Some(app) = self.apps.get_mut(app) {
            app.set_waiting_reason(why);
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
        let placement = self.allowed_placement(key, ask, now);
        let Some(nodes) = self.place_gang(key.capability, ask.count, &placement).filter(|_| within_limits) else {
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
        let mut granted = 0;
        for node in &nodes {
            granted += u32::from(self.allocate_container(app_id, node, key, false, ask.since, now, fx));
        }
        granted
    }

    /// Drops a reservation whose gang is gone, and passes it on when it has been held too long:
    /// the gang then sits out one more timeout period, so neither other gangs nor small asks
    /// wait forever behind a gang that does not fit.
    fn refresh_gang_reservation(&mut self, now: Millis) {
        let Some(r) = &self.gang_reservation else { return };
        let still_wanted =
            self.apps.get(r.app).and_then(|a| a.asks().get(&r.key)).is_some_and(|a| a.gang && a.count > 0);
        if !still_wanted {
            self.gang_reservation = None;
        } else if now.saturating_sub(r.since) > self.cfg.settings.gang_reservation_timeout_ms {
            tracing::info!(app = %r.app, "gang reservation timed out; another waiting gang may take it");
            self.gang_yielding = Some((r.app, r.key.clone(), now + self.cfg.settings.gang_reservation_timeout_ms));
            self.gang_reservation = None;
        }
    }

    /// Where `ask` may go at `now`: its host or rack while the locality delays run, wider after.
    fn allowed_placement(&self, key: &AskKey, ask: &Ask, now: Millis) -> Placement {
        let name = key.resource_name.as_str();
        if name == ANY {
            return Placement::Anywhere;
        }
        let waited = now.saturating_sub(ask.since);
        let (node_delay, rack_delay) =
            (self.cfg.settings.node_locality_delay_ms, self.cfg.settings.rack_locality_delay_ms);
        if is_rack_name(name) {
            return if ask.relax_locality && waited >= rack_delay {
                Placement::Anywhere
            } else {
                Placement::Rack(name.to_owned())
            };
        }
        if !ask.relax_locality || waited < node_delay {
            return Placement::Host(name.to_owned());
        }
        if waited >= node_delay.saturating_add(rack_delay) {
            return Placement::Anywhere;
        }
        // A host the cluster has never seen has no rack to prefer: nothing is gained by waiting.
        match self.cluster.nodes_named(name).next().and_then(|id| self.cluster.node(id)) {
            Some(host) => Placement::Rack(host.rack().to_owned()),
            None => Placement::Anywhere,
        }
    }

    /// The waiting gang's container size and where it may go now, if a gang holds the reservation.
    fn reserved_gang(&self, now: Millis) -> Option<(Resource, Placement)> {
        let r = self.gang_reservation.as_ref()?;
        let placement = match self.apps.get(r.app).and_then(|a| a.asks().get(&r.key)) {
            Some(ask) => self.allowed_placement(&r.key, ask, now),
            None => Placement::Anywhere,
        };
        Some((r.key.capability, placement))
    }

    /// Nodes for `count` containers of `r` within `placement`, most free memory first, if all
    /// of them fit now.
    fn place_gang(&self, r: Resource, count: u32, placement: &Placement) -> Option<Vec<NodeId>> {
        let candidates: Vec<&Node> = match self.cluster.candidates(placement) {
            Some(mut local) => {
                local.sort_by(|a, b| (b.free().memory_mb, b.id()).cmp(&(a.free().memory_mb, a.id())));
                local
            }
            None => self
                .cluster
                .most_free_first()
                .take_while(|(free_mb, _)| *free_mb >= r.memory_mb)
                .map(|(_, node)| node)
                .collect(),
        };
        let mut nodes = Vec::with_capacity(count as usize);
        for node in candidates {
            let fit = fit_count(node.free(), r).min(count - nodes.len() as u32);
            nodes.extend(std::iter::repeat_n(node.id().clone(), fit as usize));
            if nodes.len() as u32 == count {
                return Some(nodes);
            }
        }
        None
    }

    /// Picks the usable node within `placement` with the most free memory that fits `r`
    /// (spreading load, as NMs heartbeating in turn do in YARN). Anywhere walks the free-memory
    /// index from the top and stops as soon as memory no longer fits, so it never scans nodes
    /// that cannot fit; a host or rack looks only at that host's or rack's nodes. While a gang
    /// holds the reservation, a node the gang may use is only used if the gang could place as
    /// many containers on it afterwards as before.
    pub(super) fn place(&self, r: Resource, placement: &Placement, now: Millis) -> Option<NodeId> {
        let gang = self.reserved_gang(now);
        let acceptable = |node: &Node| {
            let free = node.free();
            free.fits(&r)
                && gang.as_ref().is_none_or(|(g, gang_placement)| {
                    !gang_placement.admits(node) || fit_count(free.saturating_sub(r), *g) == fit_count(free, *g)
                })
        };
        if let Some(local) = self.cluster.candidates(placement) {
            return local
                .into_iter()
                .filter(|n| acceptable(n))
                .max_by_key(|n| (n.free().memory_mb, n.id()))
                .map(|n| n.id().clone());
        }
        for (free_mb, node) in self.cluster.most_free_first() {
            if free_mb < r.memory_mb {
                return None;
            }
            if acceptable(node) {
                return Some(node.id().clone());
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
