//! Fair Scheduler: starvation preemption (FSPreemptionThread). The fair shares it starts from are
//! [`crate::queues::compute_fair_shares`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use weft_common::{ApplicationId, ContainerId, Resource};

use super::{ContainerSnapshot, Victim, select_covering};
use crate::queues::{Dim, ResourceCalculator};

/// `yarn.scheduler.fair.preemption.*` that apply cluster-wide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FairKnobs {
    /// `preemption.cluster-utilization-threshold`: nothing is preempted unless the cluster's
    /// allocation share is above this.
    pub utilization_threshold: f64,
}

impl Default for FairKnobs {
    fn default() -> Self {
        Self { utilization_threshold: 0.8 }
    }
}

/// A leaf queue of the fair scheduler, with its (inherited) preemption settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FairQueueSnapshot {
    pub path: String,
    pub min_share: Resource,
    pub usage: Resource,
    pub demand: Resource,
    /// How long usage has been below min(min share, demand), as tracked by the caller.
    pub below_min_share_for_ms: u64,
    /// `minSharePreemptionTimeout`; `None` = never (YARN's default).
    pub min_share_timeout_ms: Option<u64>,
    /// `fairSharePreemptionTimeout`; `None` = never (YARN's default).
    pub fair_share_timeout_ms: Option<u64>,
    /// `fairSharePreemptionThreshold` (YARN default 0.5).
    pub fair_share_threshold: f64,
    /// `allowPreemptionFrom`, already inherited: may containers of this queue be taken?
    pub preemption_allowed: bool,
}

/// A running application of the fair scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FairAppSnapshot {
    pub id: ApplicationId,
    /// Index of its leaf queue in the queue list.
    pub queue: usize,
    /// Instantaneous fair share.
    pub fair_share: Resource,
    pub usage: Resource,
    pub demand: Resource,
    /// How long usage has been below threshold × fair share (capped by demand), as tracked by
    /// the caller.
    pub below_fair_share_for_ms: u64,
    /// Resources of containers already marked for preemption on this app's behalf (from earlier
    /// plans' `Victim::for_app`): they are on their way, so they are not asked for again.
    pub incoming: Resource,
}

/// An app that has been starved past its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Starvation {
    pub app: ApplicationId,
    pub queue: usize,
    /// min(threshold × fair share, demand) − usage, when fair-share starved.
    pub fair_share_gap: Resource,
    /// Its part of the queue's min(min share, demand) − usage, when the queue is min-share
    /// starved (handed to the queue's apps oldest first, up to each one's pending demand).
    pub min_share_gap: Resource,
    /// Both gaps minus what is already incoming: what this round tries to free.
    pub wanted: Resource,
}

/// What [`plan_fair`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FairPlan {
    /// Starved apps, most starved first. Reported even when the utilization gate holds
    /// preemption back, so metrics show starvation.
    pub starved: Vec<Starvation>,
    /// Newly selected containers, each for one starved app.
    pub victims: Vec<Victim>,
}

/// `r × factor`, rounded down like YARN's `Resources.multiply`.
fn scaled(r: Resource, factor: f64) -> Resource {
    let mut out = Resource::ZERO;
    for d in Dim::ALL {
        d.set(&mut out, (d.of(r) as f64 * factor).floor() as u64);
    }
    out
}

/// The queue's min(min share, demand) − usage once it has been below that for its timeout. Like
/// YARN, starved as soon as any dimension is short.
fn min_share_gap(q: &FairQueueSnapshot, calc: ResourceCalculator) -> Resource {
    match q.min_share_timeout_ms {
        Some(timeout) if q.below_min_share_for_ms >= timeout => {
            calc.counted(q.min_share.min_each(q.demand).saturating_sub(q.usage))
        }
        _ => Resource::ZERO,
    }
}

/// The app's min(threshold × fair share, demand) − usage once it has been below that for its
/// queue's timeout. Like YARN, "below" compares with the calculator (dominant share for DRF).
fn fair_share_gap(
    app: &FairAppSnapshot,
    q: &FairQueueSnapshot,
    calc: ResourceCalculator,
    cluster: Resource,
) -> Resource {
    match q.fair_share_timeout_ms {
        Some(timeout) if app.below_fair_share_for_ms >= timeout => {
            let target = scaled(app.fair_share, q.fair_share_threshold.clamp(0.0, 1.0)).min_each(app.demand);
            if calc.is_below(app.usage, target, cluster) {
                calc.counted(target.saturating_sub(app.usage))
            } else {
                Resource::ZERO
            }
        }
        _ => Resource::ZERO,
    }
}

/// Starved apps (YARN's `FSLeafQueue.updateStarvedApps`), most starved first.
fn starved_apps(
    cluster: Resource,
    queues: &[FairQueueSnapshot],
    apps: &[FairAppSnapshot],
    calc: ResourceCalculator,
) -> Vec<Starvation> {
    let mut min_share_left: Vec<Resource> = queues.iter().map(|q| min_share_gap(q, calc)).collect();
    let mut oldest_first: Vec<&FairAppSnapshot> = apps.iter().filter(|a| a.queue < queues.len()).collect();
    oldest_first.sort_by_key(|a| a.id);
    let mut starved = Vec::new();
    for app in oldest_first {
        let fair_share_gap = fair_share_gap(app, &queues[app.queue], calc, cluster);
        let pending = calc.counted(app.demand.saturating_sub(app.usage).saturating_sub(fair_share_gap));
        let min_share_gap = min_share_left[app.queue].min_each(pending);
        min_share_left[app.queue] = min_share_left[app.queue].saturating_sub(min_share_gap);
        let wanted = (fair_share_gap + min_share_gap).saturating_sub(app.incoming);
        if !calc.is_covered(wanted) {
            starved.push(Starvation { app: app.id, queue: app.queue, fair_share_gap, min_share_gap, wanted });
        }
    }
    starved.sort_by(|a, b| {
        calc.share(b.wanted, cluster).total_cmp(&calc.share(a.wanted, cluster)).then(a.app.cmp(&b.app))
    });
    starved
}

/// The fair scheduler's starvation preemption round.
///
/// Starvation (YARN FS): an app is fair-share starved after `below_fair_share_for_ms` reaches its
/// queue's fair-share timeout while usage is below min(threshold × fair share, demand); a queue is
/// min-share starved after `below_min_share_for_ms` reaches its min-share timeout while usage is
/// below min(min share, demand), and that gap is handed to its apps oldest first. Each starved
/// app wants its gaps minus what is already incoming.
///
/// Nothing is preempted unless the allocation share of the cluster (every container in
/// `containers`, by the calculator) is above `knobs.utilization_threshold`.
///
/// Victims, for the most starved app first: containers of queues that allow preemption, of apps
/// that are not starved themselves and stay at or above their fair share after losing the
/// container (counting earlier selections and `already_marked`). Non-AM containers go first, the
/// least important request priority and then the newest first; AM containers only when the
/// others cannot cover the want, largest first so the fewest AMs are hit. Containers of apps
/// missing from `apps` are never taken (their fair share is unknown).
///
/// Simplification: YARN looks for a set of containers on **one node** that fits one starved
/// request; this planner selects cluster-wide and may cover a want only partly (whatever the
/// fair-share rule lets go), so the freed space can be spread over nodes.
pub fn plan_fair(
    cluster: Resource,
    queues: &[FairQueueSnapshot],
    apps: &[FairAppSnapshot],
    containers: &[ContainerSnapshot],
    already_marked: &BTreeSet<ContainerId>,
    knobs: &FairKnobs,
    calc: ResourceCalculator,
) -> FairPlan {
    let starved = starved_apps(cluster, queues, apps, calc);
    let allocated = containers.iter().fold(Resource::ZERO, |sum, c| sum + c.resource);
    if starved.is_empty() || calc.share(allocated, cluster) <= knobs.utilization_threshold {
        return FairPlan { starved, victims: Vec::new() };
    }

    let starved_ids: BTreeSet<ApplicationId> = starved.iter().map(|s| s.app).collect();
    let fair_share: BTreeMap<ApplicationId, Resource> = apps.iter().map(|a| (a.id, a.fair_share)).collect();
    let mut usage_after: BTreeMap<ApplicationId, Resource> = apps.iter().map(|a| (a.id, a.usage)).collect();
    for c in containers.iter().filter(|c| already_marked.contains(&c.id)) {
        if let Some(usage) = usage_after.get_mut(&c.app) {
            *usage = usage.saturating_sub(c.resource);
        }
    }

    let (mut ams, mut order): (Vec<&ContainerSnapshot>, Vec<&ContainerSnapshot>) = containers
        .iter()
        .filter(|c| {
            !already_marked.contains(&c.id)
                && queues.get(c.queue).is_some_and(|q| q.preemption_allowed)
                && fair_share.contains_key(&c.app)
                && !starved_ids.contains(&c.app)
        })
        .partition(|c| c.is_am);
    order.sort_by_key(|c| (Reverse(c.priority), Reverse(c.id)));
    ams.sort_by(|a, b| {
        calc.share(b.resource, cluster).total_cmp(&calc.share(a.resource, cluster)).then(b.id.cmp(&a.id))
    });
    order.extend(ams);

    let mut taken: BTreeSet<ContainerId> = BTreeSet::new();
    let mut victims = Vec::new();
    for s in &starved {
        let take = |c: &ContainerSnapshot| {
            let (Some(usage), Some(share)) = (usage_after.get(&c.app), fair_share.get(&c.app)) else { return false };
            let after = usage.saturating_sub(c.resource);
            if taken.contains(&c.id) || calc.is_below(after, *share, cluster) {
                return false;
            }
            usage_after.insert(c.app, after);
            taken.insert(c.id);
            true
        };
        let kind = match (calc.is_covered(s.min_share_gap), calc.is_covered(s.fair_share_gap)) {
            (false, false) => "min and fair share",
            (false, true) => "min share",
            _ => "fair share",
        };
        for c in select_covering(&order, s.wanted, calc, cluster, take) {
            victims.push(Victim {
                container: c.id,
                from_queue: c.queue,
                for_queue: Some(s.queue),
                for_app: Some(s.app),
                reason: format!(
                    "app {} in {} is starved for its {} and wants {}; app {} stays at or above its fair share",
                    s.app, queues[s.queue].path, kind, s.wanted, c.app
                ),
            });
        }
    }
    FairPlan { starved, victims }
}
