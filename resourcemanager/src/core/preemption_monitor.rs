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

use super::effects::{Effects, Observation};
use super::preemption::{Calculator, CapacityKnobs, ContainerSnapshot, QueueSnapshot, Victim, plan_capacity};
use super::{Core, QueueIndex};
use crate::queues::{ResourceCalculator, SchedulerMode};

/// A container chosen for preemption, and when its AM was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreemptionMark {
    pub marked_at: Millis,
    pub from_queue: QueueIndex,
    pub reason: String,
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
        // Only the capacity scheduler's planner is wired so far; fair-share starvation
        // preemption (`plan_fair`) needs per-app starvation timers first.
        if self.hierarchy.mode() != SchedulerMode::Capacity {
            return;
        }
        let tree = self.hierarchy.tree();
        let mut pending = vec![Resource::ZERO; tree.queues.len()];
        for app in self.apps.values().filter(|a| a.has_demand()) {
            let Some(leaf) = app.queue_index else { continue };
            let mut wanted: Resource =
                app.asks.iter().map(|(k, a)| k.capability.times(u64::from(a.count))).fold(Resource::ZERO, |x, y| x + y);
            if app.am_ask_since.is_some() {
                wanted += app.am_resource;
            }
            pending[leaf] += wanted;
        }
        let queues: Vec<QueueSnapshot> = tree
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| QueueSnapshot {
                path: q.path.clone(),
                parent: q.parent,
                guaranteed: q.guaranteed,
                maximum: q.maximum,
                used: self.hierarchy.usage(i).used,
                pending: pending[i],
                preemption_disabled: !q.preemptible,
            })
            .collect();
        let containers: Vec<ContainerSnapshot> = self
            .containers
            .values()
            .filter_map(|c| {
                let app = self.apps.get(&c.id.app())?;
                Some(ContainerSnapshot {
                    id: c.id,
                    queue: app.queue_index?,
                    app: app.id,
                    app_priority: app.priority,
                    // Submission order across RM incarnations: later submit time, then sequence.
                    app_order: (app.submit_time << 16) | u64::from(app.id.seq & 0xffff),
                    priority: c.priority,
                    is_am: c.is_am,
                    resource: c.resource,
                })
            })
            .collect();
        let knobs = &tree.preemption;
        let capacity_knobs = CapacityKnobs {
            max_ignored_over_capacity: knobs.max_ignored_over_capacity,
            total_preemption_per_round: knobs.total_preemption_per_round,
            natural_termination_factor: knobs.natural_termination_factor,
        };
        let calc = match tree.resource_calculator {
            ResourceCalculator::Dominant => Calculator::Dominant,
            ResourceCalculator::Memory => Calculator::Memory,
        };
        let marked = self.preemption_marks.keys().copied().collect();
        let plan = plan_capacity(self.cluster_capacity(), &queues, &containers, &marked, &capacity_knobs, calc);

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
        let mut told: BTreeMap<super::ApplicationId, ()> = BTreeMap::new();
        for victim in self.concentrate_on_one_node(plan.victims, &containers) {
            let Some(app) = self.apps.get_mut(&victim.container.app()) else { continue };
            let Some(attempt) = app.attempts.last_mut() else { continue };
            tracing::info!(
                container = %victim.container,
                from = %queues[victim.from_queue].path,
                to = ?victim.for_queue.map(|q| queues[q].path.clone()),
                reason = %victim.reason,
                "preempting a container: its AM is told now, the container is killed after the grace period"
            );
            attempt.preempting.insert(victim.container);
            attempt.preemption_news = true;
            self.preemption_marks.insert(
                victim.container,
                PreemptionMark { marked_at: now, from_queue: victim.from_queue, reason: victim.reason },
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
                .filter_map(|v| self.containers.get(&v.container))
                .fold(Resource::ZERO, |a, c| a + c.resource);
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
                if let Some(rc) = self.containers.get(&c.id) {
                    *per_node.entry(&rc.node_id).or_default() += c.resource;
                }
            }
            let mut nodes: Vec<(&NodeId, Resource)> = per_node.into_iter().collect();
            nodes
                .sort_by(|a, b| b.1.memory_mb.cmp(&a.1.memory_mb).then(b.1.vcores.cmp(&a.1.vcores)).then(a.0.cmp(b.0)));
            let rank = |c: &ContainerSnapshot| {
                let node = self.containers.get(&c.id).map(|rc| &rc.node_id);
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
        if self.preemption_marks.remove(&container).is_some()
            && let Some(attempt) = self.apps.get_mut(&container.app()).and_then(|a| a.attempts.last_mut())
        {
            attempt.preempting.remove(&container);
        }
    }
}
