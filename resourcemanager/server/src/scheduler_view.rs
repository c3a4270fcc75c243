//! The scheduler as clients see it: `GET /ws/v1/cluster/scheduler` in YARN's three shapes
//! (`capacityScheduler`, `fairScheduler`, `fifoScheduler`) and Weft's flat
//! `GET /ws/v1/weft/queues` for `weft queue`. Like `views.rs`, these run inside the core task
//! (through `CoreHandle::inspect`), so usage, demand and the queue tree are one consistent state.

use serde_json::{Value, json};
use weft_common::Resource;

use weft_rm_core::queues::{
    Capacity, CapacitySettings, FairSettings, OrderingPolicy, QueueIndex, QueueSettings, QueueState, QueueTree,
    ResourceLimit, SchedulerMode, SchedulingPolicy,
};
use weft_rm_core::{App, Core};

/// YARN reports "no limit" as `Integer.MAX_VALUE`.
const UNLIMITED: i64 = i32::MAX as i64;

/// `{"scheduler":{"schedulerInfo":{…}}}` for the configured scheduler mode.
pub(super) fn scheduler_info(core: &Core) -> Value {
    let info = match core.hierarchy().tree().scheduler {
        SchedulerMode::Fifo => return fifo_scheduler(core),
        SchedulerMode::Capacity => capacity_scheduler(&Snapshot::new(core)),
        SchedulerMode::Fair => json!({"type": "fairScheduler", "rootQueue": fair_queue(&Snapshot::new(core), 0)}),
    };
    json!({"scheduler": {"schedulerInfo": info}})
}

/// Every queue, root first (parents before children), for the CLI: `GET /ws/v1/weft/queues`.
pub(super) fn queue_list(core: &Core) -> Value {
    let snapshot = Snapshot::new(core);
    Value::Array((0..snapshot.tree.queues.len()).map(|index| queue_entry(&snapshot, index)).collect())
}

/// YARN's `fifoScheduler` shape.
fn fifo_scheduler(core: &Core) -> Value {
    let total = core.cluster_capacity();
    let used = core.cluster_used();
    let used_pct = if total.memory_mb == 0 { 0.0 } else { used.memory_mb as f64 / total.memory_mb as f64 };
    let mins = core.nodes().filter(|n| n.state().is_usable()).map(|n| n.total().memory_mb);
    json!({"scheduler": {"schedulerInfo": {
        "type": "fifoScheduler",
        "capacity": 1.0,
        "usedCapacity": used_pct,
        "qstate": "RUNNING",
        "minQueueMemoryCapacity": core.config().settings.min_allocation.memory_mb,
        "maxQueueMemoryCapacity": core.config().settings.max_allocation.memory_mb,
        "numNodes": core.nodes().filter(|n| n.state().is_usable()).count(),
        "usedNodeCapacity": used.memory_mb,
        "availNodeCapacity": total.saturating_sub(used).memory_mb,
        "totalNodeCapacity": total.memory_mb,
        "numContainers": core.live_containers().count(),
        "largestNodeMemoryMB": mins.max().unwrap_or(0),
    }}})
}

// ---------------------------------------------------------------------------------------------
// What every view needs, gathered once per request.

/// Per queue (a parent: its whole subtree), what the apps in it want and hold.
#[derive(Debug, Clone, Copy, Default)]
struct QueueActivity {
    /// Unmet demand: outstanding asks plus AMs still waiting for their container.
    pending: Resource,
    pending_containers: u64,
    /// Live containers, AMs included.
    containers: u64,
}

impl QueueActivity {
    fn add(&mut self, other: QueueActivity) {
        self.pending += other.pending;
        self.pending_containers += other.pending_containers;
        self.containers += other.containers;
    }
}

struct Snapshot<'a> {
    core: &'a Core,
    tree: &'a QueueTree,
    activity: Vec<QueueActivity>,
    /// Instantaneous fair shares in fair mode; empty otherwise.
    fair_shares: Vec<Resource>,
}

impl<'a> Snapshot<'a> {
    fn new(core: &'a Core) -> Self {
        let tree = core.hierarchy().tree();
        let mut snapshot = Snapshot { core, tree, activity: queue_activity(core, tree), fair_shares: Vec::new() };
        if tree.scheduler == SchedulerMode::Fair {
            snapshot.fair_shares = snapshot.instantaneous_fair_shares();
        }
        snapshot
    }

    fn used(&self, index: QueueIndex) -> Resource {
        self.core.hierarchy().usage(index).used
    }

    /// What the queue could use now: used + pending, capped at its maximum (as YARN's FS caps
    /// a queue's demand at its max share).
    fn demand(&self, index: QueueIndex) -> Resource {
        (self.used(index) + self.activity[index].pending).min_each(self.tree.queues[index].maximum)
    }

    /// `r / of` as the configured resource calculator compares resources (0 when `of` is empty).
    fn share(&self, r: Resource, of: Resource) -> f64 {
        self.tree.resource_calculator.share(r, of)
    }

    fn instantaneous_fair_shares(&self) -> Vec<Resource> {
        let demand: Vec<Resource> = (0..self.tree.queues.len()).map(|q| self.demand(q)).collect();
        self.core.hierarchy().instantaneous_fair_shares(&demand)
    }

    fn fair_share(&self, index: QueueIndex) -> Option<Resource> {
        self.fair_shares.get(index).copied()
    }
}

/// Demand and container counts per leaf, rolled up into every ancestor.
fn queue_activity(core: &Core, tree: &QueueTree) -> Vec<QueueActivity> {
    let mut activity = vec![QueueActivity::default(); tree.queues.len()];
    for app in core.apps() {
        let Some(entry) = app.queue_index().and_then(|leaf| activity.get_mut(leaf)) else { continue };
        // A finished app may still hold its draining AM container, which its queue still pays for.
        entry.containers += app.containers().len() as u64;
        if !app.state().is_final() {
            entry.pending += pending_resource(app);
            entry.pending_containers += app.pending_containers();
        }
    }
    // Children come after their parent, so a reverse pass folds every subtree into its root.
    for index in (0..tree.queues.len()).rev() {
        if let Some(parent) = tree.queues[index].parent {
            let child = activity[index];
            activity[parent].add(child);
        }
    }
    activity
}

fn pending_resource(app: &App) -> Resource {
    let asks =
        app.asks().iter().fold(Resource::ZERO, |sum, (key, ask)| sum + key.capability.times(u64::from(ask.count)));
    if app.am_ask_since().is_some() { asks + app.am_resource() } else { asks }
}

/// A fraction as YARN's 0–100 percentage, rounded to 4 decimals so binary noise
/// (0.6 × 0.7 × 100 = 42.00000000000001) doesn't reach clients.
fn percent(fraction: f64) -> f64 {
    (fraction * 1_000_000.0).round() / 10_000.0
}

fn state_name(state: QueueState) -> &'static str {
    match state {
        QueueState::Running => "RUNNING",
        QueueState::Stopped => "STOPPED",
    }
}

fn limit_or_unlimited(limit: Option<u32>) -> i64 {
    limit.map_or(UNLIMITED, i64::from)
}

/// Adds `extra`'s fields to the object `value`.
fn extend(value: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(source)) = (value, extra) {
        target.extend(source);
    }
}

// ---------------------------------------------------------------------------------------------
// Capacity scheduler.

/// The capacity-mode numbers of one queue, as fractions of 1.
struct CapacityNumbers {
    /// Guarantee relative to the parent's guarantee.
    capacity: f64,
    /// Maximum relative to the parent's maximum.
    max_capacity: f64,
    absolute_capacity: f64,
    absolute_max_capacity: f64,
    /// Usage relative to the queue's own guarantee.
    used_capacity: f64,
    absolute_used_capacity: f64,
}

fn capacity_scheduler(s: &Snapshot) -> Value {
    let absolute_max = absolute_max_capacities(s);
    let root = &s.tree.queues[0];
    let used = s.used(0);
    let children: Vec<Value> = root.children.iter().filter_map(|&c| capacity_queue(s, &absolute_max, c)).collect();
    let mut info = json!({
        "type": "capacityScheduler",
        "capacity": 100.0,
        "usedCapacity": percent(s.share(used, s.tree.cluster)),
        "maxCapacity": 100.0,
        "queueName": "root",
        "queuePath": root.path,
        "maxParallelApps": limit_or_unlimited(root.max_parallel_apps),
        "queues": {"queue": children},
    });
    if let QueueSettings::Capacity(c) = &root.settings {
        let numbers = CapacityNumbers {
            capacity: 1.0,
            max_capacity: 1.0,
            absolute_capacity: 1.0,
            absolute_max_capacity: 1.0,
            used_capacity: s.share(used, s.tree.cluster),
            absolute_used_capacity: s.share(used, s.tree.cluster),
        };
        extend(
            &mut info,
            json!({
                "mode": capacity_mode(c.capacity),
                "queuePriority": c.priority,
                "orderingPolicyInfo": "priority-utilization",
                "capacities": partition_capacities(&numbers, c),
            }),
        );
    }
    info
}

/// Absolute maximum capacity per queue: a percentage maximum is of the parent's maximum (so
/// defined on an empty cluster, as in YARN); an absolute one is its share of the cluster.
fn absolute_max_capacities(s: &Snapshot) -> Vec<f64> {
    let mut absolute = vec![1.0; s.tree.queues.len()];
    for (index, queue) in s.tree.queues.iter().enumerate() {
        let (Some(parent), QueueSettings::Capacity(c)) = (queue.parent, &queue.settings) else { continue };
        absolute[index] = match c.max_capacity {
            ResourceLimit::Percent(m) => absolute[parent] * m / 100.0,
            ResourceLimit::Absolute(_) => s.share(queue.maximum, s.tree.cluster),
        };
    }
    absolute
}

fn capacity_numbers(s: &Snapshot, absolute_max: &[f64], index: QueueIndex, c: &CapacitySettings) -> CapacityNumbers {
    let queue = &s.tree.queues[index];
    let parent = queue.parent.map(|p| &s.tree.queues[p]);
    let capacity = match (c.capacity, parent) {
        (_, None) => 1.0,
        (Capacity::Percent(p), Some(_)) => p / 100.0,
        (Capacity::Weight(w), Some(parent)) => {
            let weights: f64 = parent
                .children
                .iter()
                .map(|&sibling| match &s.tree.queues[sibling].settings {
                    QueueSettings::Capacity(CapacitySettings { capacity: Capacity::Weight(w), .. }) => *w,
                    _ => 0.0,
                })
                .sum();
            if weights > 0.0 { w / weights } else { 0.0 }
        }
        (Capacity::Absolute(_), Some(parent)) => s.share(queue.guaranteed, parent.guaranteed),
    };
    let max_capacity = match (c.max_capacity, parent) {
        (_, None) => 1.0,
        (ResourceLimit::Percent(m), Some(_)) => m / 100.0,
        (ResourceLimit::Absolute(_), Some(parent)) => s.share(queue.maximum, parent.maximum),
    };
    let used = s.used(index);
    CapacityNumbers {
        capacity,
        max_capacity,
        absolute_capacity: queue.absolute_capacity,
        absolute_max_capacity: absolute_max[index],
        // YARN: a queue without a guarantee reports 0, however much it uses.
        used_capacity: if queue.guaranteed.is_zero() { 0.0 } else { s.share(used, queue.guaranteed) },
        absolute_used_capacity: s.share(used, s.tree.cluster),
    }
}

fn capacity_mode(capacity: Capacity) -> &'static str {
    match capacity {
        Capacity::Percent(_) => "percentage",
        Capacity::Absolute(_) => "absolute",
        Capacity::Weight(_) => "weight",
    }
}

/// YARN's per-partition block; Weft has only the default partition.
fn partition_capacities(n: &CapacityNumbers, c: &CapacitySettings) -> Value {
    json!({"queueCapacitiesByPartition": [{
        "partitionName": "",
        "capacity": percent(n.capacity),
        "usedCapacity": percent(n.used_capacity),
        "maxCapacity": percent(n.max_capacity),
        "absoluteCapacity": percent(n.absolute_capacity),
        "absoluteUsedCapacity": percent(n.absolute_used_capacity),
        "absoluteMaxCapacity": percent(n.absolute_max_capacity),
        "maxAMLimitPercentage": percent(c.max_am_resource_percent),
    }]})
}

/// One capacity queue and its subtree; `None` for a queue without capacity settings (none
/// exist in capacity mode).
fn capacity_queue(s: &Snapshot, absolute_max: &[f64], index: QueueIndex) -> Option<Value> {
    let queue = &s.tree.queues[index];
    let QueueSettings::Capacity(c) = &queue.settings else { return None };
    let usage = s.core.hierarchy().usage(index);
    let numbers = capacity_numbers(s, absolute_max, index, c);
    let mut value = json!({
        "queuePath": queue.path,
        "queueName": queue.name,
        "capacity": percent(numbers.capacity),
        "usedCapacity": percent(numbers.used_capacity),
        "maxCapacity": percent(numbers.max_capacity),
        "absoluteCapacity": percent(numbers.absolute_capacity),
        "absoluteMaxCapacity": percent(numbers.absolute_max_capacity),
        "absoluteUsedCapacity": percent(numbers.absolute_used_capacity),
        "numApplications": usage.apps,
        "maxParallelApps": limit_or_unlimited(queue.max_parallel_apps),
        "usedResources": usage.used.to_string(),
        "state": state_name(queue.state),
        "resourcesUsed": usage.used,
        "mode": capacity_mode(c.capacity),
        "capacities": partition_capacities(&numbers, c),
        "queuePriority": c.priority,
        "preemptionDisabled": !queue.preemptible,
    });
    if !queue.is_leaf {
        let children: Vec<Value> =
            queue.children.iter().filter_map(|&child| capacity_queue(s, absolute_max, child)).collect();
        extend(&mut value, json!({"queues": {"queue": children}, "orderingPolicyInfo": "priority-utilization"}));
        return Some(value);
    }
    let activity = s.activity[index];
    let max_applications = limit_or_unlimited(queue.max_applications);
    // YARN: maxApplications × minimum-user-limit-percent × user-limit-factor, at most maxApplications.
    let max_applications_per_user = match c.user_limit_factor {
        None => max_applications,
        Some(factor) => {
            let per_user = max_applications as f64 * f64::from(c.minimum_user_limit_percent) / 100.0 * factor;
            (per_user as i64).min(max_applications)
        }
    };
    let users: Vec<Value> = usage
        .users
        .iter()
        .map(|(name, user)| {
            json!({
                "username": name,
                "resourcesUsed": user.used,
                "AMResourceUsed": user.am_used,
                "numActiveApplications": user.running_apps,
                "numPendingApplications": user.apps.saturating_sub(user.running_apps),
            })
        })
        .collect();
    extend(
        &mut value,
        json!({
            "type": "capacitySchedulerLeafQueueInfo",
            "orderingPolicyInfo": match c.ordering_policy {
                OrderingPolicy::Fifo => "fifo",
                OrderingPolicy::Fair => "fair",
            },
            "numActiveApplications": usage.running_apps,
            "numPendingApplications": usage.apps.saturating_sub(usage.running_apps),
            "numContainers": activity.containers,
            "allocatedContainers": activity.containers,
            "reservedContainers": 0,
            "pendingContainers": activity.pending_containers,
            "maxApplications": max_applications,
            "maxApplicationsPerUser": max_applications_per_user,
            "userLimit": c.minimum_user_limit_percent,
            "userLimitFactor": c.user_limit_factor.unwrap_or(-1.0),
            "users": {"user": users},
            "configuredMaxAMResourceLimit": c.max_am_resource_percent,
            "AMResourceLimit": queue.am_limit.unwrap_or(queue.maximum),
            "usedAMResource": usage.am_used,
            "defaultPriority": c.default_application_priority,
        }),
    );
    Some(value)
}

// ---------------------------------------------------------------------------------------------
// Fair scheduler.

fn policy_name(policy: SchedulingPolicy) -> &'static str {
    match policy {
        SchedulingPolicy::Fair => "fair",
        SchedulingPolicy::Drf => "drf",
        SchedulingPolicy::Fifo => "fifo",
    }
}

/// One fair queue and its subtree (YARN's `FairSchedulerQueueInfo`; names are full paths).
fn fair_queue(s: &Snapshot, index: QueueIndex) -> Value {
    let queue = &s.tree.queues[index];
    let usage = s.core.hierarchy().usage(index);
    let activity = s.activity[index];
    let (policy, min_resources) = match &queue.settings {
        QueueSettings::Fair(FairSettings { scheduling_policy, min_resources, .. }) => {
            (policy_name(*scheduling_policy), *min_resources)
        }
        _ => ("fair", Resource::ZERO),
    };
    let mut value = json!({
        "queueName": queue.path,
        "schedulingPolicy": policy,
        "maxApps": limit_or_unlimited(queue.max_parallel_apps),
        "minResources": min_resources,
        "maxResources": queue.maximum,
        "reservedResources": Resource::ZERO,
        "usedResources": usage.used,
        "fairResources": s.fair_share(index).unwrap_or(Resource::ZERO),
        "steadyFairResources": queue.guaranteed,
        "demandResources": s.demand(index),
        "clusterResources": s.tree.cluster,
        "pendingContainers": activity.pending_containers,
        "allocatedContainers": activity.containers,
        "reservedContainers": 0,
        "preemptable": queue.preemptible,
    });
    if queue.is_leaf {
        extend(
            &mut value,
            json!({
                "type": "fairSchedulerLeafQueueInfo",
                "numActiveApps": usage.running_apps,
                "numPendingApps": usage.apps.saturating_sub(usage.running_apps),
                "amUsedResources": usage.am_used,
                "amMaxResources": queue.am_limit.unwrap_or(queue.maximum),
            }),
        );
    } else {
        let children: Vec<Value> = queue.children.iter().map(|&child| fair_queue(s, child)).collect();
        extend(&mut value, json!({"childQueues": {"queue": children}}));
    }
    value
}

// ---------------------------------------------------------------------------------------------
// Weft's flat queue list.

fn queue_entry(s: &Snapshot, index: QueueIndex) -> Value {
    let queue = &s.tree.queues[index];
    let usage = s.core.hierarchy().usage(index);
    let activity = s.activity[index];
    let (capacity_mode, configured) = match &queue.settings {
        QueueSettings::Capacity(c) => (Some(capacity_mode(c.capacity)), Some(c.capacity.to_string())),
        QueueSettings::Fair(f) => (None, Some(format!("weight {}", f.weight))),
        QueueSettings::Fifo => (None, None),
    };
    let users: Vec<Value> = usage
        .users
        .iter()
        .map(|(name, user)| {
            json!({
                "user": name,
                "used": user.used,
                "amUsed": user.am_used,
                "numApplications": user.apps,
                "numRunningApplications": user.running_apps,
            })
        })
        .collect();
    json!({
        "path": queue.path,
        "name": queue.name,
        "parent": queue.parent.map(|p| s.tree.queues[p].path.clone()),
        "leaf": queue.is_leaf,
        "state": state_name(queue.state),
        "mode": s.tree.scheduler.to_string(),
        "capacityMode": capacity_mode,
        "configured": configured,
        "absoluteCapacity": percent(queue.absolute_capacity),
        "guaranteed": queue.guaranteed,
        "maximum": queue.maximum,
        "used": usage.used,
        "usedCapacity": if queue.guaranteed.is_zero() { 0.0 } else { percent(s.share(usage.used, queue.guaranteed)) },
        "pending": activity.pending,
        "fairShare": s.fair_share(index),
        "numApplications": usage.apps,
        "numRunningApplications": usage.running_apps,
        "numContainers": activity.containers,
        "pendingContainers": activity.pending_containers,
        "maxApplications": queue.max_applications,
        "maxParallelApps": queue.max_parallel_apps,
        "amUsed": usage.am_used,
        "amLimit": queue.am_limit,
        "preemptible": queue.preemptible,
        "users": users,
    })
}

#[cfg(test)]
mod tests {
    use weft_common::ApplicationId;
    use weft_common::states::AppState;
    use weft_rm_core::testkit::{Env, ask};

    use super::*;

    /// Submits as `user` to `queue`; the AM is allocated when limits and nodes allow.
    fn submit(env: &mut Env, user: &str, queue: &str, am: Resource) -> ApplicationId {
        env.submit_to(user, Some(queue), am).unwrap()
    }

    /// Launches and registers `app`'s AM, then asks for `count` containers of `memory_mb`;
    /// returns how many were allocated.
    fn run(env: &mut Env, app: ApplicationId, memory_mb: u64, count: u32) -> usize {
        env.start_am(app);
        env.allocate_now(app, vec![ask(1, memory_mb, count)]).allocated.len()
    }

    fn resource(memory: u64, vcores: u32) -> Value {
        json!({"memory": memory, "vCores": vcores})
    }

    /// The children of a YARN queue object (`queues.queue` or `childQueues.queue`).
    fn children<'v>(queue: &'v Value, key: &str) -> &'v Vec<Value> {
        queue[key]["queue"].as_array().unwrap_or_else(|| panic!("{key}.queue is not an array in {queue}"))
    }

    fn names(queues: &[Value], key: &str) -> Vec<String> {
        queues.iter().map(|q| q[key].as_str().unwrap().to_owned()).collect()
    }

    fn assert_no_nulls(value: &Value, at: &str) {
        match value {
            Value::Null => panic!("null at {at}"),
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, v)| assert_no_nulls(v, &format!("{at}[{i}]")))
            }
            Value::Object(map) => map.iter().for_each(|(k, v)| assert_no_nulls(v, &format!("{at}.{k}"))),
            _ => {}
        }
    }

    const CAPACITY_TREE: &str = "\
scheduler: capacity
queues:
  dev:
    capacity: 40%
    queues:
      a: {capacity: 1w}
      b: {capacity: 3w}
  prod:
    capacity: 60%
    max-capacity: 80%
    queues:
      etl: {capacity: 70%, user-limit-factor: 2, max-am-resource-percent: 0.2, ordering-policy: fair}
      serving: {capacity: 30%, max-capacity: 50%, state: stopped}
";

    /// 100 GB / 100 vcores; alice runs one app in etl (AM + 2 containers) and waits with a
    /// second whose 8 GB AM is over etl's AM limit (20% of 42 GB).
    fn capacity_env() -> Env {
        let mut env = Env::with_queues(CAPACITY_TREE);
        env.add_node("n1", 102_400, 100);
        let first = submit(&mut env, "alice", "etl", Resource::new(1024, 1));
        assert_eq!(run(&mut env, first, 2048, 2), 2);
        let second = submit(&mut env, "alice", "etl", Resource::new(8192, 1));
        assert_eq!(env.core.app(second).map(|a| a.state()), Some(AppState::Accepted));
        env
    }

    #[test]
    fn capacity_scheduler_reports_yarns_fields_for_a_two_level_tree() {
        let env = capacity_env();
        let view = scheduler_info(&env.core);
        let info = &view["scheduler"]["schedulerInfo"];
        assert_no_nulls(info, "schedulerInfo");
        assert_eq!(info["type"], "capacityScheduler");
        assert_eq!(info["queueName"], "root");
        assert_eq!(info["queuePath"], "root");
        assert_eq!(info["capacity"], 100.0);
        assert_eq!(info["maxCapacity"], 100.0);
        // 5 GB of 100 GB and 3 of 100 vcores: the dominant share is 5%.
        assert_eq!(info["usedCapacity"], 5.0);
        let top = children(info, "queues");
        assert_eq!(names(top, "queueName"), ["dev", "prod"]);

        let dev = &top[0];
        assert!(dev.get("type").is_none(), "parents carry no leaf type");
        let dev_children = children(dev, "queues");
        assert_eq!(names(dev_children, "queuePath"), ["root.dev.a", "root.dev.b"]);
        let (a, b) = (&dev_children[0], &dev_children[1]);
        assert_eq!(
            (&a["mode"], &a["capacity"], &a["absoluteCapacity"]),
            (&json!("weight"), &json!(25.0), &json!(10.0))
        );
        assert_eq!((&b["capacity"], &b["absoluteCapacity"]), (&json!(75.0), &json!(30.0)));
        assert_eq!(a["users"]["user"], json!([]), "an idle leaf has an empty users array, not null");

        let prod = &top[1];
        assert_eq!(prod["queuePath"], "root.prod");
        assert_eq!(prod["mode"], "percentage");
        assert_eq!(prod["capacity"], 60.0);
        assert_eq!(prod["maxCapacity"], 80.0);
        assert_eq!(prod["absoluteCapacity"], 60.0);
        assert_eq!(prod["absoluteMaxCapacity"], 80.0);
        assert_eq!(prod["absoluteUsedCapacity"], 5.0);
        // 5120 MB of a 61440 MB guarantee.
        assert_eq!(prod["usedCapacity"], 8.3333);
        assert_eq!(prod["numApplications"], 2);
        assert_eq!(prod["usedResources"], "<memory:5120, vCores:3>");
        assert_eq!(prod["resourcesUsed"], resource(5120, 3));
        assert_eq!(prod["state"], "RUNNING");
        let prod_children = children(prod, "queues");
        assert_eq!(names(prod_children, "queueName"), ["etl", "serving"]);

        let etl = &prod_children[0];
        assert_eq!(etl["type"], "capacitySchedulerLeafQueueInfo");
        assert_eq!(etl["queuePath"], "root.prod.etl");
        assert_eq!(etl["capacity"], 70.0);
        assert_eq!(etl["maxCapacity"], 100.0);
        assert_eq!(etl["absoluteCapacity"], 42.0);
        assert_eq!(etl["absoluteMaxCapacity"], 80.0);
        assert_eq!(etl["absoluteUsedCapacity"], 5.0);
        // max(5120 / 43008 MB, 3 / 42 vcores) of its guarantee.
        assert_eq!(etl["usedCapacity"], 11.9048);
        assert_eq!(etl["numApplications"], 2);
        assert_eq!(etl["numActiveApplications"], 1);
        assert_eq!(etl["numPendingApplications"], 1);
        assert_eq!(etl["numContainers"], 3);
        assert_eq!(etl["pendingContainers"], 1);
        assert_eq!(etl["maxApplications"], 4200);
        assert_eq!(etl["maxApplicationsPerUser"], 4200);
        assert_eq!(etl["maxParallelApps"], UNLIMITED);
        assert_eq!(etl["userLimit"], 100);
        assert_eq!(etl["userLimitFactor"], 2.0);
        assert_eq!(etl["AMResourceLimit"], resource(8602, 9));
        assert_eq!(etl["usedAMResource"], resource(1024, 1));
        assert_eq!(etl["orderingPolicyInfo"], "fair");
        assert_eq!(etl["defaultPriority"], 0);
        assert_eq!(etl["queuePriority"], 0);
        assert_eq!(etl["preemptionDisabled"], false);
        assert!(etl.get("queues").is_none(), "leaves have no queues");
        assert_eq!(
            etl["users"]["user"],
            json!([{
                "username": "alice",
                "resourcesUsed": resource(5120, 3),
                "AMResourceUsed": resource(1024, 1),
                "numActiveApplications": 1,
                "numPendingApplications": 1,
            }])
        );
        let partition = &etl["capacities"]["queueCapacitiesByPartition"][0];
        assert_eq!((&partition["absoluteCapacity"], &partition["maxAMLimitPercentage"]), (&json!(42.0), &json!(20.0)));

        let serving = &prod_children[1];
        assert_eq!(serving["state"], "STOPPED");
        assert_eq!(serving["capacity"], 30.0);
        assert_eq!(serving["absoluteCapacity"], 18.0);
        assert_eq!(serving["maxCapacity"], 50.0);
        assert_eq!(serving["absoluteMaxCapacity"], 40.0);
        assert_eq!(serving["usedCapacity"], 0.0);
        assert_eq!(serving["orderingPolicyInfo"], "fifo");
    }

    #[test]
    fn views_on_an_empty_cluster_have_numbers_not_nulls() {
        for yaml in [CAPACITY_TREE, FAIR_TREE] {
            let env = Env::with_queues(yaml);
            assert_no_nulls(&scheduler_info(&env.core), "scheduler");
        }
        let env = Env::with_queues(CAPACITY_TREE);
        let info = &scheduler_info(&env.core)["scheduler"]["schedulerInfo"];
        // Percent capacities are defined without any node.
        let etl = &children(&children(info, "queues")[1], "queues")[0];
        assert_eq!((&etl["absoluteCapacity"], &etl["absoluteMaxCapacity"]), (&json!(42.0), &json!(80.0)));
        assert_eq!(etl["usedCapacity"], 0.0);
    }

    const FAIR_TREE: &str = "\
scheduler: fair
queues:
  a: {weight: 1}
  b: {weight: 3, min-resources: {memory-mb: 10240, vcores: 10}}
  c:
    queues:
      c1: {weight: 1}
      c2: {weight: 1}
";

    /// 100 GB / 100 vcores; root.a holds 31 containers and wants no more, root.c.c1 holds the
    /// other 69 and still wants 132.
    fn fair_env() -> Env {
        let mut env = Env::with_queues(FAIR_TREE);
        env.add_node("n1", 102_400, 100);
        let small = submit(&mut env, "ann", "root.a", Resource::new(1024, 1));
        assert_eq!(run(&mut env, small, 1024, 30), 30);
        let big = submit(&mut env, "bo", "root.c.c1", Resource::new(1024, 1));
        assert_eq!(run(&mut env, big, 1024, 200), 68);
        env
    }

    #[test]
    fn fair_scheduler_reports_steady_and_instantaneous_fair_shares() {
        let env = fair_env();
        let view = scheduler_info(&env.core);
        let info = &view["scheduler"]["schedulerInfo"];
        assert_no_nulls(info, "schedulerInfo");
        assert_eq!(info["type"], "fairScheduler");
        let root = &info["rootQueue"];
        assert_eq!(root["queueName"], "root");
        assert_eq!(root["schedulingPolicy"], "fair");
        assert_eq!(root["maxApps"], UNLIMITED);
        let cluster = resource(102_400, 100);
        for field in ["usedResources", "fairResources", "steadyFairResources", "demandResources", "clusterResources"] {
            assert_eq!(root[field], cluster, "root {field}");
        }
        assert_eq!(root["pendingContainers"], 132);
        assert_eq!(root["allocatedContainers"], 100);
        assert_eq!(root["preemptable"], true);
        assert!(root.get("type").is_none());

        let top = children(root, "childQueues");
        assert_eq!(names(top, "queueName"), ["root.a", "root.b", "root.c"]);
        let (a, b, c) = (&top[0], &top[1], &top[2]);
        assert_eq!(a["type"], "fairSchedulerLeafQueueInfo");
        assert_eq!((&a["numActiveApps"], &a["numPendingApps"]), (&json!(1), &json!(0)));
        // Steady: weights 1:3:1 of the cluster; b's min share is below its weighted share.
        assert_eq!(a["steadyFairResources"], resource(20_480, 20));
        assert_eq!(b["steadyFairResources"], resource(61_440, 60));
        assert_eq!(c["steadyFairResources"], resource(20_480, 20));
        assert_eq!(b["minResources"], resource(10_240, 10));
        assert_eq!(a["maxResources"], cluster);
        // Instantaneous: only a and c are active; a wants no more than it holds, c gets the rest.
        assert_eq!(a["usedResources"], resource(31_744, 31));
        assert_eq!(a["demandResources"], resource(31_744, 31));
        assert_eq!(a["fairResources"], resource(31_744, 31));
        assert_eq!(b["fairResources"], resource(0, 0));
        assert_eq!(c["fairResources"], resource(70_656, 69));
        // c1 wants 201 containers; demand is capped at its maximum, the cluster.
        assert_eq!(c["demandResources"], cluster);

        let c_children = children(c, "childQueues");
        assert_eq!(names(c_children, "queueName"), ["root.c.c1", "root.c.c2"]);
        let (c1, c2) = (&c_children[0], &c_children[1]);
        assert_eq!(c1["fairResources"], resource(70_656, 69));
        assert_eq!(c1["steadyFairResources"], resource(10_240, 10));
        assert_eq!(c1["usedResources"], resource(70_656, 69));
        assert_eq!((&c1["pendingContainers"], &c1["allocatedContainers"]), (&json!(132), &json!(69)));
        assert_eq!(c1["amUsedResources"], resource(1024, 1));
        // max-am-share 0.5 of the steady share.
        assert_eq!(c1["amMaxResources"], resource(5120, 5));
        assert_eq!(c2["fairResources"], resource(0, 0));
        assert!(c1.get("childQueues").is_none(), "leaves have no child queues");
    }

    #[test]
    fn fifo_scheduler_shape_is_unchanged() {
        let mut env = Env::with_queues("scheduler: fifo\n");
        env.add_node("n1", 4096, 4);
        submit(&mut env, "alice", "default", Resource::new(256, 1));
        assert_eq!(
            scheduler_info(&env.core),
            json!({"scheduler": {"schedulerInfo": {
                "type": "fifoScheduler",
                "capacity": 1.0,
                "usedCapacity": 0.0625,
                "qstate": "RUNNING",
                "minQueueMemoryCapacity": 128,
                "maxQueueMemoryCapacity": 65_536,
                "numNodes": 1,
                "usedNodeCapacity": 256,
                "availNodeCapacity": 3840,
                "totalNodeCapacity": 4096,
                "numContainers": 1,
                "largestNodeMemoryMB": 4096,
            }}})
        );
    }

    #[test]
    fn weft_queue_list_is_flat_root_first_with_fair_shares_only_in_fair_mode() {
        let env = capacity_env();
        let list = queue_list(&env.core);
        let queues = list.as_array().unwrap();
        assert_eq!(
            names(queues, "path"),
            ["root", "root.dev", "root.dev.a", "root.dev.b", "root.prod", "root.prod.etl", "root.prod.serving"]
        );
        assert_eq!(queues[0]["parent"], Value::Null);
        let etl = &queues[5];
        assert_eq!(etl["name"], "etl");
        assert_eq!(etl["parent"], "root.prod");
        assert_eq!(etl["leaf"], true);
        assert_eq!(etl["state"], "RUNNING");
        assert_eq!(etl["mode"], "capacity");
        assert_eq!(etl["capacityMode"], "percentage");
        assert_eq!(etl["configured"], "70%");
        assert_eq!(etl["guaranteed"], resource(43_008, 42));
        assert_eq!(etl["maximum"], resource(81_920, 80));
        assert_eq!(etl["used"], resource(5120, 3));
        assert_eq!(etl["pending"], resource(8192, 1));
        assert_eq!(etl["fairShare"], Value::Null);
        assert_eq!((&etl["numApplications"], &etl["numRunningApplications"]), (&json!(2), &json!(1)));
        assert_eq!(etl["amUsed"], resource(1024, 1));
        assert_eq!(etl["amLimit"], resource(8602, 9));
        assert_eq!(
            etl["users"],
            json!([{"user": "alice", "used": resource(5120, 3), "amUsed": resource(1024, 1), "numApplications": 2, "numRunningApplications": 1}])
        );
        // Parents sum their subtree.
        assert_eq!(queues[4]["pending"], resource(8192, 1));
        assert_eq!(queues[4]["leaf"], false);

        let env = fair_env();
        let list = queue_list(&env.core);
        let c1 = list.as_array().unwrap().iter().find(|q| q["path"] == "root.c.c1").unwrap();
        assert_eq!(c1["mode"], "fair");
        assert_eq!(c1["configured"], "weight 1");
        assert_eq!(c1["fairShare"], resource(70_656, 69));
        assert_eq!(c1["pending"], resource(135_168, 132));
        assert_eq!(c1["guaranteed"], resource(10_240, 10));
    }
}
