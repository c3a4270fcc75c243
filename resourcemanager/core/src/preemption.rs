//! Preemption planning: decides which containers to take back, never kills anything.
//!
//! Pure functions over the queue tree and a snapshot of queue loads and containers (no I/O,
//! clock, locks or async). The scheduler core builds the snapshot, and turns a plan into YARN's
//! two steps: tell the AM, kill after a grace period.
//!
//! - [`plan_capacity`]: the Capacity Scheduler's ProportionalCapacityPreemptionPolicy.
//! - [`plan_fair`]: the Fair Scheduler's starvation preemption, from the fair shares of
//!   [`crate::queues::compute_fair_shares`].
//!
//! ## Resource dimensions and the DRF choice
//! Shares are water-filled **per dimension** (memory and vcores separately), for both
//! calculators; the [`ResourceCalculator`] only decides which dimensions count when deciding what is
//! over, owed and covered. Why not one water-filling over dominant shares, scaled back to a
//! resource:
//! - per dimension keeps `ideal <= maximum` and `sum(children) <= parent` exact in every
//!   dimension; scaling a scalar share back onto a demand vector can overshoot a maximum in one
//!   dimension;
//! - complementary demands (a memory-heavy and a cpu-heavy queue that fit together) get all they
//!   ask for, so nothing is preempted between them; a scalar dominant share would split the
//!   cluster and preempt for nothing;
//! - YARN does the same where it matters: the capacity policy caps componentwise
//!   (`TempQueuePerPartition.offer`) and the fair `drf` policy runs `ComputeFairShares` once per
//!   resource type.
//!
//! Where a single number is needed (ordering starved apps, attributing victims, "is this app below
//! its fair share") [`ResourceCalculator::share`] is used: the dominant share for
//! [`ResourceCalculator::Dominant`], the memory share for [`ResourceCalculator::Memory`].

mod fair;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::BTreeSet;

use weft_common::{ApplicationId, ContainerId, Resource};

pub use fair::{FairAppSnapshot, FairKnobs, FairPlan, FairQueueSnapshot, Starvation, plan_fair};

use crate::queues::{Amounts, Dim, QueueIndex, QueueTree, ResourceCalculator, amounts};

/// Below this, floating-point amounts (MB, vcores) count as zero.
const EPSILON: f64 = 1e-6;

/// What a queue of the capacity tree holds and wants now, indexed like [`QueueTree::queues`].
/// Only leaves' loads are read: a parent's are the sums of its leaves', recomputed here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueLoad {
    /// Allocated to the queue's containers.
    pub used: Resource,
    /// Unmet demand of the queue's apps (already limited by user and AM limits).
    pub pending: Resource,
}

/// A running container, as a preemption candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSnapshot {
    pub id: ContainerId,
    /// Index of its leaf queue.
    pub queue: usize,
    pub app: ApplicationId,
    /// Application priority: higher is more important.
    pub app_priority: i32,
    /// Submission order: larger is newer.
    pub app_order: u64,
    /// Request priority, YARN convention: a lower number is more important.
    pub priority: i32,
    pub is_am: bool,
    pub resource: Resource,
}

/// `yarn.resourcemanager.monitor.capacity.preemption.*`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityKnobs {
    /// Dead zone: a queue is only over its ideal beyond `ideal × (1 + this)`.
    pub max_ignored_over_capacity: f64,
    /// Per round, at most this fraction of the cluster is asked back (per dimension).
    pub total_preemption_per_round: f64,
    /// Per round, a queue gives back this fraction of its excess (the rest is expected to end
    /// naturally).
    pub natural_termination_factor: f64,
}

impl Default for CapacityKnobs {
    fn default() -> Self {
        Self { max_ignored_over_capacity: 0.1, total_preemption_per_round: 0.1, natural_termination_factor: 0.2 }
    }
}

/// What [`plan_capacity`] decided. Vectors are indexed like the input queues.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreemptionPlan {
    /// The ideal assignment per queue (rounded), for REST and metrics.
    pub ideal: Vec<Resource>,
    /// This round's target per queue, including containers already marked in earlier rounds;
    /// a parent shows the sum of its leaves. Only counted dimensions are non-zero.
    pub to_preempt: Vec<Resource>,
    /// Newly selected containers (never one of `already_marked`).
    pub victims: Vec<Victim>,
}

/// A container to preempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub container: ContainerId,
    pub from_queue: usize,
    /// The queue the resources are meant for (best effort for the capacity planner).
    pub for_queue: Option<usize>,
    /// The starved app (fair planner only).
    pub for_app: Option<ApplicationId>,
    /// One line for the AM, logs and REST.
    pub reason: String,
}

/// The planners' comparisons, on top of the calculator's `share`, `counted` and `is_covered`.
impl ResourceCalculator {
    /// YARN's `isUsageBelowShare`: compares by [`ResourceCalculator::share`].
    fn is_below(self, usage: Resource, share: Resource, cluster: Resource) -> bool {
        self.share(usage, cluster) < self.share(share, cluster)
    }

    /// Taking `c` reduces something still owed.
    fn helps(self, c: Resource, owed: Resource) -> bool {
        self.dims().iter().any(|d| d.of(c) > 0 && d.of(owed) > 0)
    }

    /// The dimension `c` is largest in (relative to the cluster) is still owed: taking `c` frees
    /// mostly what is wanted, so a cpu-heavy queue gives back cpu-heavy containers first.
    fn dominant_is_owed(self, c: Resource, owed: Resource, cluster: Resource) -> bool {
        let top = self.share(c, cluster);
        self.dims().iter().any(|d| {
            let total = d.of(cluster);
            let share = if total == 0 { 0.0 } else { d.of(c) as f64 / total as f64 };
            d.of(owed) > 0 && share >= top - EPSILON
        })
    }
}

/// Picks containers, in `order`, until `owed` is covered in every counted dimension (the last one
/// may overshoot, as in YARN). Passes, in turn: non-AM containers whose dominant dimension is
/// owed, any non-AM container that helps, then AM containers the same two ways, so an AM is only
/// taken when the other containers cannot cover the amount. `take` is asked last, right before a
/// container is taken: it may refuse, or book the container (the fair planner tracks app usage).
fn select_covering<'a>(
    order: &[&'a ContainerSnapshot],
    mut owed: Resource,
    calc: ResourceCalculator,
    cluster: Resource,
    mut take: impl FnMut(&ContainerSnapshot) -> bool,
) -> Vec<&'a ContainerSnapshot> {
    let mut taken = vec![false; order.len()];
    let mut chosen = Vec::new();
    for (am, dominant_only) in [(false, true), (false, false), (true, true), (true, false)] {
        for (i, c) in order.iter().enumerate() {
            if calc.is_covered(owed) {
                return chosen;
            }
            if taken[i]
                || c.is_am != am
                || !calc.helps(c.resource, owed)
                || (dominant_only && !calc.dominant_is_owed(c.resource, owed, cluster))
                || !take(c)
            {
                continue;
            }
            taken[i] = true;
            owed = owed.saturating_sub(c.resource);
            chosen.push(*c);
        }
    }
    chosen
}

/// The leaves of `tree`, in tree order.
fn leaves(tree: &QueueTree) -> impl Iterator<Item = QueueIndex> + '_ {
    (0..tree.queues.len()).filter(|&q| tree.queues[q].is_leaf)
}

fn is_leaf(tree: &QueueTree, q: QueueIndex) -> bool {
    tree.queues.get(q).is_some_and(|q| q.is_leaf)
}

/// The ideal assignment: top-down, each parent's ideal (the cluster for the root) is
/// water-filled over its children.
fn ideal_assignment(tree: &QueueTree, cluster: Resource, load: &[QueueLoad]) -> Vec<Amounts> {
    let n = tree.queues.len();
    let mut demand = vec![[0.0; 2]; n];
    // Children come after their parent, so walking backwards sums children first.
    for q in (0..n).rev() {
        if tree.queues[q].is_leaf {
            let (used, pending) = (amounts(load[q].used), amounts(load[q].pending));
            demand[q] = [used[0] + pending[0], used[1] + pending[1]];
        } else {
            for &c in &tree.queues[q].children {
                for d in Dim::ALL {
                    demand[q][d.index()] += demand[c][d.index()];
                }
            }
        }
    }
    let mut ideal = vec![[0.0; 2]; n];
    if n > 0 {
        water_fill(amounts(cluster), &[0], tree, &demand, &mut ideal);
    }
    for p in 0..n {
        water_fill(ideal[p], &tree.queues[p].children, tree, &demand, &mut ideal);
    }
    ideal
}

/// Splits `available` over `children`, each dimension on its own. Each child first gets
/// min(guaranteed, demand); what is left goes to children that still want more, in proportion to
/// their guarantee, each capped by min(maximum, demand), repeated until nothing is left or nobody
/// wants more. Children with no guarantee share evenly what the others leave (as YARN does for
/// zero-capacity queues). If the guarantees alone exceed `available` (oversubscribed absolute
/// capacities, a shrunken cluster) the first step is scaled down to fit.
fn water_fill(
    available: Amounts,
    children: &[QueueIndex],
    tree: &QueueTree,
    demand: &[Amounts],
    ideal: &mut [Amounts],
) {
    for d in Dim::ALL {
        let di = d.index();
        let cap: Vec<f64> =
            children.iter().map(|&c| (d.of(tree.queues[c].maximum) as f64).min(demand[c][di])).collect();
        let weight: Vec<f64> = children.iter().map(|&c| d.of(tree.queues[c].guaranteed) as f64).collect();
        let mut assigned: Vec<f64> = weight.iter().zip(&cap).map(|(w, c)| w.min(*c)).collect();
        let first: f64 = assigned.iter().sum();
        if first > available[di] {
            let scale = if first > 0.0 { available[di] / first } else { 0.0 };
            assigned.iter_mut().for_each(|a| *a *= scale);
        }
        let mut remaining = (available[di] - assigned.iter().sum::<f64>()).max(0.0);
        // Each pass either hands out everything or saturates at least one child.
        for _ in 0..=2 * children.len() {
            let wanting: Vec<usize> = (0..children.len()).filter(|&i| cap[i] - assigned[i] > EPSILON).collect();
            if wanting.is_empty() || remaining <= EPSILON {
                break;
            }
            let guaranteed_weight: f64 = wanting.iter().map(|&i| weight[i]).sum();
            let weight_of = |i: usize| if guaranteed_weight > EPSILON { weight[i] } else { 1.0 };
            let total_weight: f64 = wanting.iter().map(|&i| weight_of(i)).sum();
            let mut given = 0.0;
            let mut saturated = false;
            for &i in &wanting {
                let offer = remaining * weight_of(i) / total_weight;
                let room = cap[i] - assigned[i];
                if room <= offer {
                    saturated = true;
                }
                let give = offer.min(room);
                assigned[i] += give;
                given += give;
            }
            remaining = (remaining - given).max(0.0);
            if !saturated {
                break;
            }
        }
        for (&c, a) in children.iter().zip(assigned) {
            ideal[c][di] = a;
        }
    }
}

fn rounded(a: Amounts) -> Resource {
    Resource::new(a[0].round() as u64, a[1].round() as u32)
}

/// Scales `values` down so they sum to at most `limit`, keeping proportions; the units lost to
/// rounding go to the largest remainders (ties: lower index), so the sum is exactly `limit`.
fn fit_to_limit(values: &mut [u64], limit: u64) {
    let total: u128 = values.iter().map(|v| u128::from(*v)).sum();
    if total <= u128::from(limit) {
        return;
    }
    let mut remainders = Vec::with_capacity(values.len());
    let mut assigned: u128 = 0;
    for (i, v) in values.iter_mut().enumerate() {
        let scaled = u128::from(*v) * u128::from(limit);
        let floor = scaled / total;
        *v = u64::try_from(floor).unwrap_or(u64::MAX);
        assigned += floor;
        remainders.push((scaled % total, i));
    }
    remainders.sort_by_key(|&(rem, i)| (Reverse(rem), i));
    let missing = usize::try_from(u128::from(limit) - assigned).unwrap_or(usize::MAX);
    for &(_, i) in remainders.iter().take(missing) {
        values[i] += 1;
    }
}

/// YARN's victim order inside a queue: apps in reverse scheduling order (lowest app priority,
/// then newest), within an app the least important request priority (highest number) first,
/// then the newest container.
fn reverse_scheduling_order(c: &ContainerSnapshot) -> impl Ord {
    (c.app_priority, Reverse(c.app_order), Reverse(c.app), Reverse(c.priority), Reverse(c.id))
}

/// The capacity scheduler's preemption round (ProportionalCapacityPreemptionPolicy).
///
/// 1. Ideal assignment per queue (see `water_fill`), per dimension for both calculators.
/// 2. A leaf is over its ideal in a counted dimension when `used > ideal × (1 +
///    max_ignored_over_capacity)`; it then owes `(used − ideal) × natural_termination_factor`
///    there, rounded up.
/// 3. Guards against preempting for nothing (YARN-11073, tiny queues on an idle cluster): nothing
///    is taken in a dimension unless some leaf has pending demand the ideal gives it (its
///    *deficit*, `ideal − used`), and the round total never exceeds the total deficit; a leaf
///    whose excess is smaller than each of its containers is left alone (any kill would swing it
///    below its ideal).
/// 4. The round total is capped at `total_preemption_per_round × cluster`, per dimension,
///    scaling all leaves down proportionally.
/// 5. Leaves that are not `preemptible` are never victims. Their excess is simply not
///    reclaimed: other queues are not asked to make up for it, so under-served queues wait for
///    those containers to finish.
/// 6. Victims per leaf in `reverse_scheduling_order`, AM containers last (see
///    `select_covering`); `already_marked` containers are skipped but count as already given
///    back, so a round repeated before the kills happen selects nothing new.
/// 7. `for_queue` is best effort: each victim (after the already marked ones) goes to the leaf
///    with the largest unmet deficit, measured by the calculator's share.
pub fn plan_capacity(
    cluster: Resource,
    tree: &QueueTree,
    load: &[QueueLoad],
    containers: &[ContainerSnapshot],
    already_marked: &BTreeSet<ContainerId>,
    knobs: &CapacityKnobs,
) -> PreemptionPlan {
    let n = tree.queues.len();
    let calc = tree.resource_calculator;
    let ideal = ideal_assignment(tree, cluster, load);

    let mut deficit = vec![Resource::ZERO; n];
    let mut total_deficit = [0.0; 2];
    for q in leaves(tree) {
        let (used, pending) = (amounts(load[q].used), amounts(load[q].pending));
        for d in calc.dims() {
            let i = d.index();
            // Only pending demand makes a deficit: an ideal above usage from rounding alone does not.
            if pending[i] > 0.0 {
                let gap = (ideal[q][i] - used[i]).max(0.0);
                d.set(&mut deficit[q], (gap + EPSILON).floor() as u64);
                total_deficit[i] += gap;
            }
        }
    }

    let mut candidates: Vec<Vec<&ContainerSnapshot>> = vec![Vec::new(); n];
    let mut smallest_share = vec![f64::INFINITY; n];
    let mut marked = vec![Resource::ZERO; n];
    for c in containers.iter().filter(|c| is_leaf(tree, c.queue)) {
        let share = calc.share(c.resource, cluster);
        smallest_share[c.queue] = smallest_share[c.queue].min(share);
        if already_marked.contains(&c.id) {
            marked[c.queue] += c.resource;
        } else {
            candidates[c.queue].push(c);
        }
    }

    let mut owes = vec![Resource::ZERO; n];
    for q in leaves(tree).filter(|&q| tree.queues[q].preemptible) {
        let used = amounts(load[q].used);
        let mut excess = [0.0; 2];
        for d in calc.dims() {
            let i = d.index();
            if used[i] > ideal[q][i] * (1.0 + knobs.max_ignored_over_capacity) + EPSILON {
                excess[i] = used[i] - ideal[q][i];
                let want = (excess[i] * knobs.natural_termination_factor - EPSILON).ceil().max(0.0);
                d.set(&mut owes[q], want as u64);
            }
        }
        // Any kill would leave the queue further below its ideal than it is above it now.
        if calc.share_of_amounts(excess, cluster) < smallest_share[q] {
            owes[q] = Resource::ZERO;
        }
    }
    for d in calc.dims() {
        let i = d.index();
        let per_round = (knobs.total_preemption_per_round * d.of(cluster) as f64 + EPSILON).floor();
        let limit = per_round.min((total_deficit[i] + EPSILON).floor()).max(0.0) as u64;
        let mut column: Vec<u64> = owes.iter().map(|r| d.of(*r)).collect();
        fit_to_limit(&mut column, limit);
        for (r, v) in owes.iter_mut().zip(column) {
            d.set(r, v);
        }
    }

    let mut to_preempt = owes.clone();
    for q in (0..n).rev() {
        for &c in &tree.queues[q].children {
            let child = to_preempt[c];
            to_preempt[q] += child;
        }
    }

    let mut attribution = Attribution { unmet: deficit.clone(), deficit, calc, cluster };
    for c in containers.iter().filter(|c| is_leaf(tree, c.queue) && already_marked.contains(&c.id)) {
        attribution.claim(c.queue, c.resource);
    }
    let mut victims = Vec::new();
    for q in leaves(tree) {
        let owed = owes[q].saturating_sub(marked[q]);
        if calc.is_covered(owed) {
            continue;
        }
        let mut order = std::mem::take(&mut candidates[q]);
        order.sort_by_key(|c| reverse_scheduling_order(c));
        for c in select_covering(&order, owed, calc, cluster, |_| true) {
            let for_queue = attribution.claim(q, c.resource);
            let for_path = for_queue.map_or("no queue in particular", |f| tree.queues[f].path.as_str());
            victims.push(Victim {
                container: c.id,
                from_queue: q,
                for_queue,
                for_app: None,
                reason: format!(
                    "queue {} uses {} over its ideal {}; reclaiming {} this round for {}",
                    tree.queues[q].path,
                    load[q].used,
                    rounded(ideal[q]),
                    owes[q],
                    for_path
                ),
            });
        }
    }

    PreemptionPlan { ideal: ideal.into_iter().map(rounded).collect(), to_preempt, victims }
}

/// Best-effort "who is this for": hands each freed container to the leaf with the largest unmet
/// deficit left; once every deficit is met, to the largest original deficit.
struct Attribution {
    deficit: Vec<Resource>,
    unmet: Vec<Resource>,
    calc: ResourceCalculator,
    cluster: Resource,
}

impl Attribution {
    fn claim(&mut self, from: usize, resource: Resource) -> Option<usize> {
        let key =
            |i: usize| (self.calc.share(self.unmet[i], self.cluster), self.calc.share(self.deficit[i], self.cluster));
        let mut best: Option<(usize, (f64, f64))> = None;
        for i in (0..self.deficit.len()).filter(|&i| i != from && !self.calc.is_covered(self.deficit[i])) {
            let k = key(i);
            if best.is_none_or(|(_, b)| k.0 > b.0 || (k.0 == b.0 && k.1 > b.1)) {
                best = Some((i, k));
            }
        }
        let (i, _) = best?;
        self.unmet[i] = self.unmet[i].saturating_sub(resource);
        Some(i)
    }
}
