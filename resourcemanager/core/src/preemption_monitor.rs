//! The preemption monitor: turns the planner's decisions into YARN's two steps.
//!
//! Every `monitoring-interval-ms` (on a `Tick`) it snapshots queues and containers and asks the
//! pure planner ([`super::preemption`]) what to take back. Newly chosen containers are *marked*:
//! their AM is told in its allocate responses (`preemption.strict`, repeated until the container
//! is gone) and may release them itself. A marked container still alive `max-wait-before-kill-ms`
//! after marking is killed with exit status PREEMPTED (-102). A mark is dropped if a later round
//! no longer wants anything from that queue (the pressure went away). Preempted AM containers do
//! not count as attempt failures.

use std::collections::BTreeMap;

use weft_common::states::exit_status;
use weft_common::{ContainerId, Millis, NodeId, Resource};

use super::apps::App;
use super::effects::{Effects, Observation};
use super::preemption::{
    CapacityKnobs, ContainerSnapshot, FairAppSnapshot, FairKnobs, FairQueueSnapshot, QueueLoad, Victim, plan_capacity,
    plan_fair,
};
use super::{ApplicationId, Core, QueueIndex};
use crate::queues::{QueueSettings, ResourceCalculator, Schedulable, SchedulerMode, compute_fair_shares};

/// What an app still wants: its outstanding asks, plus its AM container if that is waiting.
fn app_pending(app: &App) -> Resource {
    let asks = app.asks().iter().fold(Resource::ZERO, |sum, (k, a)| sum + k.capability.times(u64::from(a.count)));
    if app.am_ask_since().is_some() { asks + app.am_resource() } else { asks }
}

/// A container chosen for preemption, and when its AM was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreemptionMark {
    pub marked_at: Millis,
    pub from_queue: QueueIndex,
    /// The starved app the space is for (fair preemption).
    pub for_app: Option<ApplicationId>,
    pub reason: String,
}

/// Since when each queue has been below its min share, and each app below its fair-share
/// threshold (fair preemption's starvation timers).
#[derive(Debug, Default)]
pub struct StarvationClocks {
    queues: BTreeMap<String, Millis>,
    apps: BTreeMap<ApplicationId, Millis>,
}

impl Core {
    /// Runs on every tick: a planning round when the interval has passed, and kills of marked
    /// containers whose grace is over.
    pub(super) fn preemption_tick(&mut self, now: Millis, fx: &mut impl Effects) {
        let knobs = self.hierarchy.tree().preemption.clone();
        if !knobs.enabled {
            return;
        }
        if now.saturating_sub(self.last_preemption_round) >= knobs.monitoring_interval_ms {
            self.last_preemption_round = now;
            self.preemption_round(now, fx);
        }
        let overdue: Vec<ContainerId> = self
            .preemption_marks
            .iter()
            .filter(|(_, m)| now.saturating_sub(m.marked_at) >= knobs.max_wait_before_kill_ms)
            .map(|(c, _)| *c)
            .collect();
        for c in overdue {
            let reason = self.preemption_marks.get(&c).map(|m| m.reason.clone()).unwrap_or_default();
            tracing::info!(container = %c, %reason, "killing a preempted container after its grace period");
            fx.observe(Observation::ContainerPreempted);
            let diag = format!("Container preempted by the scheduler: {reason}");
            self.complete_container(c, exit_status::PREEMPTED, &diag, now, fx, Some(exit_status::PREEMPTED));
        }
    }

    fn preemption_round(&mut self, now: Millis, fx: &mut impl Effects) {
        match self.hierarchy.mode() {
            SchedulerMode::Capacity => self.capacity_round(now, fx),
            SchedulerMode::Fair => self.fair_round(now, fx),
            SchedulerMode::Fifo => {}
        }
    }

    /// Unmet demand per queue (a leaf's own; rolled up into every ancestor when `roll_up`).
    fn pending_per_queue(&self, roll_up: bool) -> Vec<Resource> {
        let tree = self.hierarchy.tree();
        let mut pending = vec![Resource::ZERO; tree.queues.len()];
        for app in self.apps.iter().filter(|a| a.has_demand()) {
            let Some(leaf) = app.queue_index() else { continue };
            let wanted = app_pending(app);
            let mut q = Some(leaf);
            while let Some(i) = q {
                pending[i] += wanted;
                q = if roll_up { tree.queues[i].parent } else { None };
            }
        }
        pending
    }

    fn container_snapshots(&self) -> Vec<ContainerSnapshot> {
        self.cluster
            .containers()
            .filter_map(|c| {
                let app = self.apps.get(c.id().app())?;
                Some(ContainerSnapshot {
                    id: c.id(),
                    queue: app.queue_index()?,
                    app: app.id(),
                    app_priority: app.priority(),
                    // Submission order across RM incarnations: later submit time, then sequence.
                    app_order: (app.submit_time() << 16) | u64::from(app.id().seq & 0xffff),
                    priority: c.priority(),
                    is_am: c.is_am(),
                    resource: c.resource(),
                })
            })
            .collect()
    }

    fn calculator(&self) -> ResourceCalculator {
        self.hierarchy.tree().resource_calculator
    }

    fn capacity_round(&mut self, now: Millis, fx: &mut impl Effects) {
        let tree = self.hierarchy.tree();
        let pending = self.pending_per_queue(false);
        let load: Vec<QueueLoad> = (0..tree.queues.len())
            .map(|i| QueueLoad { used: self.hierarchy.usage(i).used, pending: pending[i] })
            .collect();
        let containers = self.container_snapshots();
        let knobs = &tree.preemption;
        let capacity_knobs = CapacityKnobs {
            max_ignored_over_capacity: knobs.max_ignored_over_capacity,
            total_preemption_per_round: knobs.total_preemption_per_round,
            natural_termination_factor: knobs.natural_termination_factor,
        };
        let marked = self.preemption_marks.keys().copied().collect();
        let plan = plan_capacity(self.cluster_capacity(), tree, &load, &containers, &marked, &capacity_knobs);
        let paths: Vec<String> = tree.queues.iter().map(|q| q.path.clone()).collect();

        // Pressure gone: forget marks in queues the plan no longer takes from.
        let relieved: Vec<ContainerId> = self
            .preemption_marks
            .iter()
            .filter(|(_, m)| plan.to_preempt.get(m.from_queue).is_none_or(|r| r.is_zero()))
            .map(|(c, _)| *c)
            .collect();
        for c in relieved {
            self.unmark(c);
        }
        let victims = self.concentrate_on_one_node(plan.victims, &containers);
        self.mark(victims, &paths, now, fx);
    }

    /// YARN FS preemption: apps starved of their min share (queue) or fair share (app) for
    /// longer than the timeouts get containers of apps above their fair share. The victims are
    /// taken as the planner chose them: re-picking could take an app below its fair share.
    fn fair_round(&mut self, now: Millis, fx: &mut impl Effects) {
        let tree = self.hierarchy.tree();
        let calc = self.calculator();
        let pending = self.pending_per_queue(true);
        let demand: Vec<Resource> = (0..tree.queues.len())
            .map(|i| {
                let wanted = self.hierarchy.usage(i).used + pending[i];
                wanted.min_each(tree.queues[i].maximum)
            })
            .collect();
        let shares = self.hierarchy.instantaneous_fair_shares(&demand);
        let mut queues = Vec::with_capacity(tree.queues.len());
        let mut queue_clocks = BTreeMap::new();
        for (i, q) in tree.queues.iter().enumerate() {
            let usage = self.hierarchy.usage(i).used;
            // Root carries no fair settings of its own: it is never starved.
            let (min_resources, min_timeout, fair_timeout, threshold) = match &q.settings {
                QueueSettings::Fair(f) => (
                    f.min_resources,
                    f.min_share_preemption_timeout_ms,
                    f.fair_share_preemption_timeout_ms,
                    f.fair_share_preemption_threshold,
                ),
                _ => (Resource::ZERO, None, None, 0.5),
            };
            let floor = min_resources.min_each(demand[i]);
            let below = calc.share(usage, tree.cluster) < calc.share(floor, tree.cluster);
            let since = self.starvation.queues.get(&q.path).copied().unwrap_or(now);
            if below {
                queue_clocks.insert(q.path.clone(), since);
            }
            queues.push(FairQueueSnapshot {
                path: q.path.clone(),
                min_share: min_resources,
                usage,
                demand: demand[i],
                below_min_share_for_ms: if below { now - since } else { 0 },
                min_share_timeout_ms: min_timeout,
                fair_share_timeout_ms: fair_timeout,
                fair_share_threshold: threshold,
                preemption_allowed: q.preemptible,
            });
        }
        // Each app's share of its leaf's fair share: equal weights, capped by what it wants.
        let mut apps = Vec::new();
        let mut app_clocks = BTreeMap::new();
        let mut by_leaf: BTreeMap<QueueIndex, Vec<&App>> = BTreeMap::new();
        for app in self.apps.iter().filter(|a| !a.state().is_final()) {
            if let Some(leaf) = app.queue_index() {
                by_leaf.entry(leaf).or_default().push(app);
            }
        }
        for (leaf, leaf_apps) in by_leaf {
            let schedulables: Vec<Schedulable> = leaf_apps
                .iter()
                .map(|a| Schedulable {
                    weight: 1.0,
                    min_share: Resource::ZERO,
                    max_share: tree.queues[leaf].maximum.min_each(a.used() + app_pending(a)),
                })
                .collect();
            // The leaf's share only has the calculator's dimensions, so the apps' shares do too.
            let app_shares = compute_fair_shares(shares.get(leaf).copied().unwrap_or_default(), &schedulables);
            let threshold = match &tree.queues[leaf].settings {
                QueueSettings::Fair(f) => f.fair_share_preemption_threshold,
                _ => 0.5,
            };
            for (app, share) in leaf_apps.into_iter().zip(app_shares) {
                let demand = app.used() + app_pending(app);
                let target = Resource::new(
                    (share.memory_mb as f64 * threshold) as u64,
                    (f64::from(share.vcores) * threshold) as u32,
                );
                let floor = target.min_each(demand);
                let below = calc.share(app.used(), tree.cluster) < calc.share(floor, tree.cluster);
                let since = self.starvation.apps.get(&app.id()).copied().unwrap_or(now);
                if below {
                    app_clocks.insert(app.id(), since);
                }
                let incoming = self
                    .preemption_marks
                    .iter()
                    .filter(|(_, m)| m.for_app == Some(app.id()))
                    .filter_map(|(c, _)| self.cluster.container(c))
                    .fold(Resource::ZERO, |sum, c| sum + c.resource());
                apps.push(FairAppSnapshot {
                    id: app.id(),
                    queue: leaf,
                    fair_share: share,
                    usage: app.used(),
                    demand,
                    below_fair_share_for_ms: if below { now - since } else { 0 },
                    incoming,
                });
            }
        }
        self.starvation.queues = queue_clocks;
        self.starvation.apps = app_clocks;
        let containers = self.container_snapshots();
        let marked = self.preemption_marks.keys().copied().collect();
        let knobs = FairKnobs { utilization_threshold: tree.preemption.fair_utilization_threshold };
        let plan = plan_fair(self.cluster_capacity(), &queues, &apps, &containers, &marked, &knobs, calc);
        // Starvation over: forget marks made for apps no longer below their floors (an app whose
        // want is covered by marks on their way is still below, and keeps them).
        let below: std::collections::BTreeSet<ApplicationId> = apps
            .iter()
            .filter(|a| a.below_fair_share_for_ms > 0 || queues[a.queue].below_min_share_for_ms > 0)
            .map(|a| a.id)
            .collect();
        let relieved: Vec<ContainerId> = self
            .preemption_marks
            .iter()
            .filter(|(_, m)| m.for_app.is_some_and(|a| !below.contains(&a)))
            .map(|(c, _)| *c)
            .collect();
        for c in relieved {
            self.unmark(c);
        }
        let paths: Vec<String> = queues.iter().map(|q| q.path.clone()).collect();
        self.mark(plan.victims, &paths, now, fx);
    }

    /// Marks the victims: their AMs are told now, the containers killed after the grace period.
    fn mark(&mut self, victims: Vec<Victim>, queue_paths: &[String], now: Millis, fx: &mut impl Effects) {
        let mut told: BTreeMap<ApplicationId, ()> = BTreeMap::new();
        for victim in victims {
            if self.apps.get(victim.container.app()).and_then(|a| a.current_attempt()).is_none() {
                continue;
            }
            tracing::info!(
                container = %victim.container,
                from = %queue_paths.get(victim.from_queue).map_or("?", String::as_str),
                to = ?victim.for_queue.and_then(|q| queue_paths.get(q)),
                for_app = ?victim.for_app,
                reason = %victim.reason,
                "preempting a container: its AM is told now, the container is killed after the grace period"
            );
            self.sessions.mark_preempting(victim.container.app(), victim.container);
            self.preemption_marks.insert(
                victim.container,
                PreemptionMark {
                    marked_at: now,
                    from_queue: victim.from_queue,
                    for_app: victim.for_app,
                    reason: victim.reason,
                },
            );
            fx.observe(Observation::PreemptionMarked);
            told.insert(victim.container.app(), ());
        }
        for app in told.into_keys() {
            self.wake(app, fx);
        }
    }

    /// Re-picks each source queue's victims so the space they free lands on as few nodes as
    /// possible: the planner decides how much a queue gives back, this decides where. Freed
    /// space scattered over many nodes may fit no waiting container, and the over-served queue
    /// would take it straight back (a preemption live-lock). Within a node, victims follow the
    /// planner's order: lowest app priority, newest app, least important request, newest
    /// container, AM containers last.
    fn concentrate_on_one_node(&self, victims: Vec<Victim>, containers: &[ContainerSnapshot]) -> Vec<Victim> {
        let mut by_queue: BTreeMap<QueueIndex, Vec<Victim>> = BTreeMap::new();
        for v in victims {
            by_queue.entry(v.from_queue).or_default().push(v);
        }
        let mut chosen = Vec::new();
        for (queue, planned) in by_queue {
            let amount = planned
                .iter()
                .filter_map(|v| self.cluster.container(&v.container))
                .fold(Resource::ZERO, |a, c| a + c.resource());
            let template = &planned[0];
            let mut candidates: Vec<&ContainerSnapshot> =
                containers.iter().filter(|c| c.queue == queue && !self.preemption_marks.contains_key(&c.id)).collect();
            candidates.sort_by_key(|c| {
                (
                    c.is_am,
                    c.app_priority,
                    std::cmp::Reverse(c.app_order),
                    std::cmp::Reverse(c.priority),
                    std::cmp::Reverse(c.id),
                )
            });
            // Most preemptable non-AM space of this queue first.
            let mut per_node: BTreeMap<&NodeId, Resource> = BTreeMap::new();
            for c in candidates.iter().filter(|c| !c.is_am) {
                if let Some(rc) = self.cluster.container(&c.id) {
                    *per_node.entry(rc.node_id()).or_default() += c.resource;
                }
            }
            let mut nodes: Vec<(&NodeId, Resource)> = per_node.into_iter().collect();
            nodes
                .sort_by(|a, b| b.1.memory_mb.cmp(&a.1.memory_mb).then(b.1.vcores.cmp(&a.1.vcores)).then(a.0.cmp(b.0)));
            let rank = |c: &ContainerSnapshot| {
                let node = self.cluster.container(&c.id).map(|rc| rc.node_id());
                nodes.iter().position(|(n, _)| Some(*n) == node).unwrap_or(usize::MAX)
            };
            candidates.sort_by_key(|c| (c.is_am, rank(c)));
            let mut taken = Resource::ZERO;
            for c in candidates {
                if taken.memory_mb >= amount.memory_mb && taken.vcores >= amount.vcores {
                    break;
                }
                taken += c.resource;
                chosen.push(Victim { container: c.id, ..template.clone() });
            }
        }
        chosen
    }

    /// Drops a preemption mark (the container is gone, or no longer needs to go).
    pub(super) fn unmark(&mut self, container: ContainerId) {
        if self.preemption_marks.remove(&container).is_some() {
            self.sessions.unmark_preempting(container.app(), container);
        }
    }
}
