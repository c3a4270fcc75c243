//! The queue hierarchy at run time: the resolved tree (re-resolved whenever the cluster size
//! changes), what each queue and each user in a leaf uses, and the rules the scheduler applies:
//! placement, submit checks, allocation limits, and the order in which queues are served.
//!
//! Serving order per scheduler mode (YARN's semantics):
//! - capacity: at every parent, the child with the lowest used/guaranteed ratio first; with
//!   different queue priorities, an under-guarantee child beats an over-guarantee one, and among
//!   children on the same side of their guarantee the higher priority goes first;
//! - fair: children below their min share first (lowest usage/min-share ratio), then the lowest
//!   usage/weight ratio (FairSharePolicy; DRF compares dominant shares);
//! - fifo: the single `root.default` leaf.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use weft_common::Resource;

use super::error::CoreError;
use crate::queues::{
    CapacitySettings, PlacementRule, QueueIndex, QueueSettings, QueueState, QueueTree, QueuesConfig, ReloadPlan,
    ResourceCalculator, SchedulerMode, SchedulingPolicy, diff,
};

/// What one queue (and, in leaves, each of its users) holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueUsage {
    pub used: Resource,
    pub am_used: Resource,
    /// Unfinished applications (leaves: its own; parents: of its subtree).
    pub apps: u32,
    /// Applications whose AM container is allocated (YARN's active apps).
    pub running_apps: u32,
    /// Per user, in leaves only.
    pub users: BTreeMap<String, UserUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUsage {
    pub used: Resource,
    pub am_used: Resource,
    pub apps: u32,
    pub running_apps: u32,
}

/// Why an allocation cannot happen now; shown to users as the app's diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked(pub String);

pub struct Hierarchy {
    config: QueuesConfig,
    tree: QueueTree,
    usage: Vec<QueueUsage>,
}

impl Hierarchy {
    pub fn new(config: QueuesConfig, cluster: Resource) -> Result<Self, CoreError> {
        let tree = QueueTree::resolve(&config, cluster)
            .map_err(|p| CoreError::Internal(format!("queue configuration: {p}")))?;
        let usage = vec![QueueUsage::default(); tree.queues.len()];
        Ok(Self { config, tree, usage })
    }

    /// Recomputes absolute numbers for a new cluster size; usage is kept.
    pub fn resize(&mut self, cluster: Resource) {
        if cluster == self.tree.cluster {
            return;
        }
        match QueueTree::resolve(&self.config, cluster) {
            Ok(tree) => self.tree = tree,
            Err(p) => {
                tracing::error!(problems = %p, "cannot resolve queues for the new cluster size; keeping the old numbers")
            }
        }
    }

    pub fn tree(&self) -> &QueueTree {
        &self.tree
    }

    pub fn usage(&self, queue: QueueIndex) -> &QueueUsage {
        &self.usage[queue]
    }

    fn calculator(&self) -> ResourceCalculator {
        self.tree.resource_calculator
    }

    /// `used` fits within `limit` for the dimensions the resource calculator counts.
    fn within(&self, used: Resource, limit: Resource) -> bool {
        match self.calculator() {
            ResourceCalculator::Dominant => limit.fits(&used),
            ResourceCalculator::Memory => used.memory_mb <= limit.memory_mb,
        }
    }

    /// Share of `total` that `r` is, by the resource calculator.
    fn share(&self, r: Resource, total: Resource) -> f64 {
        match self.calculator() {
            ResourceCalculator::Dominant => r.dominant_share(&total),
            ResourceCalculator::Memory if total.memory_mb == 0 => 0.0,
            ResourceCalculator::Memory => r.memory_mb as f64 / total.memory_mb as f64,
        }
    }

    /// The ancestors of `queue` and the queue itself, root first.
    fn path_to(&self, queue: QueueIndex) -> Vec<QueueIndex> {
        let mut path = vec![queue];
        while let Some(parent) = self.tree.queues[*path.last().unwrap_or(&0)].parent {
            path.push(parent);
        }
        path.reverse();
        path
    }

    // -----------------------------------------------------------------------------------------
    // Submission.

    /// The leaf an app submitted by `user` to `requested` goes to, by the placement rules.
    pub fn place(&self, requested: Option<&str>, user: &str) -> Result<QueueIndex, CoreError> {
        let requested = requested.map(str::trim).filter(|q| !q.is_empty());
        let groups = self.tree.user_groups(user);
        let primary = groups.first().map(String::as_str);
        let leaf = |path: &str| self.tree.find(path).filter(|i| self.tree.queues[*i].is_leaf);
        let under = |parent: &Option<String>, name: &str| match parent {
            Some(p) => leaf(&format!("{p}.{name}")),
            None => leaf(name),
        };
        for rule in &self.tree.placement_rules {
            let found = match rule {
                // YARN: "default" (or nothing) falls through to the next rule.
                PlacementRule::Specified(_) => requested
                    .filter(|q| *q != "default" && *q != "root.default")
                    .map(|q| self.tree.find(q).ok_or_else(|| CoreError::UnknownQueue(q.to_owned())))
                    .transpose()?,
                PlacementRule::User(r) => under(&r.parent, user),
                PlacementRule::PrimaryGroup(r) => primary.and_then(|g| under(&r.parent, g)),
                PlacementRule::PrimaryGroupUser(r) => primary.and_then(|g| {
                    let parent = format!("{}.{g}", r.parent.as_deref().unwrap_or("root"));
                    leaf(&format!("{parent}.{user}"))
                }),
                PlacementRule::MapUser(r) => (r.user == user).then(|| leaf(&r.queue)).flatten(),
                PlacementRule::MapGroup(r) => groups.contains(&r.group).then(|| leaf(&r.queue)).flatten(),
                PlacementRule::Default(r) => {
                    Some(leaf(&r.queue).ok_or_else(|| CoreError::UnknownQueue(r.queue.clone()))?)
                }
                PlacementRule::Reject => {
                    return Err(CoreError::PlacementRejected {
                        user: user.to_owned(),
                        requested: requested.map(str::to_owned),
                    });
                }
            };
            if let Some(index) = found {
                return Ok(index);
            }
        }
        Err(CoreError::UnknownQueue(requested.unwrap_or("default").to_owned()))
    }

    /// Checks a new app in `leaf` against the queue's state, ACLs and application limit.
    pub fn check_submit(&self, leaf: QueueIndex, user: &str) -> Result<(), CoreError> {
        let q = &self.tree.queues[leaf];
        if !q.is_leaf {
            return Err(CoreError::NotALeafQueue(q.path.clone()));
        }
        if q.state == QueueState::Stopped {
            return Err(CoreError::QueueStopped(q.path.clone()));
        }
        if !q.submit_acl.allows(user, self.tree.user_groups(user)) {
            return Err(CoreError::SubmitDenied { user: user.to_owned(), queue: q.path.clone() });
        }
        if let Some(max) = q.max_applications
            && self.usage[leaf].apps >= max
        {
            return Err(CoreError::QueueFull { queue: q.path.clone(), max });
        }
        Ok(())
    }

    /// The priority an app gets: the queue default when unset, capped at the queue maximum.
    pub fn app_priority(&self, leaf: QueueIndex, requested: Option<i32>) -> i32 {
        match &self.tree.queues[leaf].settings {
            QueueSettings::Capacity(c) => {
                requested.unwrap_or(c.default_application_priority).min(c.max_application_priority)
            }
            _ => requested.unwrap_or(0),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Accounting.

    pub fn app_added(&mut self, leaf: QueueIndex, user: &str) {
        for q in self.path_to(leaf) {
            self.usage[q].apps += 1;
        }
        self.usage[leaf].users.entry(user.to_owned()).or_default().apps += 1;
    }

    pub fn app_removed(&mut self, leaf: QueueIndex, user: &str) {
        for q in self.path_to(leaf) {
            self.usage[q].apps -= 1;
        }
        self.with_user(leaf, user, |u| u.apps -= 1);
    }

    /// Adds an allocation to the leaf, its ancestors and the user.
    pub fn charge(&mut self, leaf: QueueIndex, user: &str, r: Resource, is_am: bool) {
        for q in self.path_to(leaf) {
            let u = &mut self.usage[q];
            u.used += r;
            if is_am {
                u.am_used += r;
                u.running_apps += 1;
            }
        }
        let u = self.usage[leaf].users.entry(user.to_owned()).or_default();
        u.used += r;
        if is_am {
            u.am_used += r;
            u.running_apps += 1;
        }
    }

    pub fn refund(&mut self, leaf: QueueIndex, user: &str, r: Resource, is_am: bool) {
        for q in self.path_to(leaf) {
            let u = &mut self.usage[q];
            u.used -= r;
            if is_am {
                u.am_used -= r;
                u.running_apps -= 1;
            }
        }
        self.with_user(leaf, user, |u| {
            u.used -= r;
            if is_am {
                u.am_used -= r;
                u.running_apps -= 1;
            }
        });
    }

    /// Updates a user's usage and forgets users with nothing left.
    fn with_user(&mut self, leaf: QueueIndex, user: &str, f: impl FnOnce(&mut UserUsage)) {
        let users = &mut self.usage[leaf].users;
        if let Some(u) = users.get_mut(user) {
            f(u);
            if *u == UserUsage::default() {
                users.remove(user);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Limits.

    /// Why `r` for `user`'s app in `leaf` cannot be allocated now (None: it may, as far as
    /// queue limits go; node capacity is checked separately).
    pub fn blocked(&self, leaf: QueueIndex, user: &str, r: Resource, is_am: bool) -> Option<Blocked> {
        // Root's maximum is the cluster itself; a full cluster is told apart by placement.
        for q in self.path_to(leaf).into_iter().skip(1) {
            let queue = &self.tree.queues[q];
            let after = self.usage[q].used + r;
            if !self.within(after, queue.maximum) {
                return Some(Blocked(format!(
                    "queue {} is at its maximum capacity: using {} of at most {}, asking for {r}",
                    queue.path, self.usage[q].used, queue.maximum
                )));
            }
        }
        let queue = &self.tree.queues[leaf];
        let usage = &self.usage[leaf];
        let user_usage = usage.users.get(user).cloned().unwrap_or_default();
        let fair = matches!(queue.settings, QueueSettings::Fair(_));
        if is_am {
            for q in self.path_to(leaf).into_iter().skip(1) {
                if let Some(max) = self.tree.queues[q].max_parallel_apps
                    && self.usage[q].running_apps >= max
                {
                    return Some(Blocked(format!(
                        "queue {} runs its maximum of {max} applications ({}); this one waits for one to finish",
                        self.tree.queues[q].path,
                        if fair { "max-running-apps" } else { "max-parallel-apps" }
                    )));
                }
            }
            if let QueueSettings::Capacity(c) = &queue.settings
                && let Some(max) = c.max_parallel_apps_per_user
                && user_usage.running_apps >= max
            {
                return Some(Blocked(format!(
                    "user {user} runs the maximum of {max} applications per user in queue {} (max-parallel-apps-per-user)",
                    queue.path
                )));
            }
            // The per-user limit of the users section counts the user's apps in every queue.
            if let Some(max) = self.tree.user_max_parallel_apps(user) {
                let running: u32 = self.usage.iter().filter_map(|u| u.users.get(user)).map(|u| u.running_apps).sum();
                if running >= max {
                    return Some(Blocked(format!(
                        "user {user} runs the maximum of {max} applications allowed for this user across the cluster (users.{user}.max-parallel-apps)"
                    )));
                }
            }
            // As in YARN, a queue with no running application may always start one.
            if let Some(limit) = queue.am_limit
                && usage.running_apps > 0
                && !self.within(usage.am_used + r, limit)
            {
                return Some(Blocked(format!(
                    "queue {}'s AM resource limit is reached: ApplicationMasters use {} of at most {} ({}); this AM needs {r}",
                    queue.path,
                    usage.am_used,
                    limit,
                    if fair { "max-am-share" } else { "max-am-resource-percent" }
                )));
            }
        }
        if let QueueSettings::Capacity(c) = &queue.settings {
            // As in YARN, the check is on what the user holds before this container, so a user
            // may go one container over its limit; that is what lets users grow past the
            // queue's guarantee together.
            let limit = self.user_limit(leaf, user, c, r);
            if !self.within(user_usage.used, limit) {
                return Some(Blocked(format!(
                    "user {user} reached the user limit of queue {}: using {} of at most {limit} (user-limit-factor, minimum-user-limit-percent)",
                    queue.path, user_usage.used
                )));
            }
        }
        None
    }

    /// YARN's user limit: `max(current / active users, current × minimum-user-limit-percent)`,
    /// capped at `guaranteed × user-limit-factor` (unless the factor is -1) and the queue maximum,
    /// where `current` is the queue's guarantee or, once it runs at or above it, its usage plus
    /// the request.
    /// Active users are those holding resources in the queue, plus the one asking.
    fn user_limit(&self, leaf: QueueIndex, user: &str, c: &CapacitySettings, request: Resource) -> Resource {
        let queue = &self.tree.queues[leaf];
        let usage = &self.usage[leaf];
        let active = usage.users.iter().filter(|(name, u)| u.used != Resource::ZERO || name.as_str() == user).count();
        let active = (active + usize::from(!usage.users.contains_key(user))).max(1) as f64;
        let below_guarantee =
            self.share(usage.used, self.tree.cluster) < self.share(queue.guaranteed, self.tree.cluster);
        let current = if below_guarantee { queue.guaranteed } else { usage.used + request };
        let scale = |r: Resource, f: f64| {
            Resource::new((r.memory_mb as f64 * f).ceil() as u64, (f64::from(r.vcores) * f).ceil() as u32)
        };
        let fraction = (1.0 / active).max(f64::from(c.minimum_user_limit_percent) / 100.0);
        let mut limit = scale(current, fraction);
        if let Some(factor) = c.user_limit_factor {
            let cap = scale(queue.guaranteed, factor);
            limit = Resource::new(limit.memory_mb.min(cap.memory_mb), limit.vcores.min(cap.vcores));
        }
        Resource::new(limit.memory_mb.min(queue.maximum.memory_mb), limit.vcores.min(queue.maximum.vcores))
    }

    // -----------------------------------------------------------------------------------------
    // Serving order.

    /// Leaves that `wanted` accepts, in the order the scheduler serves them now.
    pub fn leaf_order(&self, wanted: &dyn Fn(QueueIndex) -> bool) -> Vec<QueueIndex> {
        let mut out = Vec::new();
        self.collect_leaves(0, wanted, &mut out);
        out
    }

    fn collect_leaves(&self, queue: QueueIndex, wanted: &dyn Fn(QueueIndex) -> bool, out: &mut Vec<QueueIndex>) {
        let q = &self.tree.queues[queue];
        if q.is_leaf {
            if wanted(queue) {
                out.push(queue);
            }
            return;
        }
        let mut children = q.children.clone();
        children.sort_by(|a, b| self.compare_siblings(*a, *b));
        for child in children {
            self.collect_leaves(child, wanted, out);
        }
    }

    /// Which of two siblings is served first (`Less` = `a` first).
    fn compare_siblings(&self, a: QueueIndex, b: QueueIndex) -> Ordering {
        let (qa, qb) = (&self.tree.queues[a], &self.tree.queues[b]);
        let (ua, ub) = (self.usage[a].used, self.usage[b].used);
        let ratio = |used: Resource, of: Resource| -> f64 {
            if of == Resource::ZERO {
                if used == Resource::ZERO { 0.0 } else { f64::INFINITY }
            } else {
                self.share(used, of)
            }
        };
        let by = |x: f64, y: f64| x.partial_cmp(&y).unwrap_or(Ordering::Equal);
        let ordering = match (&qa.settings, &qb.settings) {
            (QueueSettings::Capacity(ca), QueueSettings::Capacity(cb)) => {
                let (ra, rb) = (ratio(ua, qa.guaranteed), ratio(ub, qb.guaranteed));
                let (under_a, under_b) = (ra < 1.0, rb < 1.0);
                if ca.priority == cb.priority {
                    by(ra, rb)
                } else if under_a == under_b {
                    cb.priority.cmp(&ca.priority).then(by(ra, rb))
                } else if under_a {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (QueueSettings::Fair(fa), QueueSettings::Fair(fb)) => {
                let cluster = self.tree.cluster;
                let needy = |u: Resource, min: Resource| self.share(u, cluster) < self.share(min, cluster);
                let (na, nb) = (needy(ua, fa.min_resources), needy(ub, fb.min_resources));
                match (na, nb) {
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (true, true) => by(
                        self.share(ua, cluster) / self.share(fa.min_resources, cluster),
                        self.share(ub, cluster) / self.share(fb.min_resources, cluster),
                    ),
                    (false, false) => {
                        // The parent's policy decides how its children compare (YARN FS).
                        let policy = match qa.parent.map(|p| &self.tree.queues[p].settings) {
                            Some(QueueSettings::Fair(parent)) => parent.scheduling_policy,
                            _ => SchedulingPolicy::Fair,
                        };
                        let weighted = |u: Resource, w: f64| {
                            let share = match policy {
                                SchedulingPolicy::Drf => u.dominant_share(&cluster),
                                _ if cluster.memory_mb == 0 => 0.0,
                                _ => u.memory_mb as f64 / cluster.memory_mb as f64,
                            };
                            share / w.max(f64::MIN_POSITIVE)
                        };
                        by(weighted(ua, fa.weight), weighted(ub, fb.weight))
                    }
                }
            }
            _ => Ordering::Equal,
        };
        ordering.then_with(|| qa.path.cmp(&qb.path))
    }

    pub fn mode(&self) -> SchedulerMode {
        self.tree.scheduler
    }

    pub fn config(&self) -> &QueuesConfig {
        &self.config
    }

    /// Switches to `config` atomically: either everything changes or nothing does. Refused when
    /// a queue that disappears, or a leaf that becomes a parent, still holds applications or
    /// resources, so running apps are never lost. Usage carries over by queue path. Returns
    /// what changed and, for every old queue index, its new index (None if removed).
    pub fn reload(&mut self, config: QueuesConfig) -> Result<(ReloadPlan, Vec<Option<QueueIndex>>), CoreError> {
        let tree = QueueTree::resolve(&config, self.tree.cluster)
            .map_err(|p| CoreError::ReloadRefused(format!("the new queue configuration is invalid: {p}")))?;
        let plan = diff(&self.config, &config);
        let mut mapping = Vec::with_capacity(self.tree.queues.len());
        for (old_index, old) in self.tree.queues.iter().enumerate() {
            let new_index = tree.queues.iter().position(|q| q.path == old.path);
            let usage = &self.usage[old_index];
            let busy = usage.apps > 0 || usage.used != Resource::ZERO;
            let still_a_leaf = new_index.is_some_and(|i| tree.queues[i].is_leaf);
            if busy && old.is_leaf && !still_a_leaf {
                return Err(CoreError::ReloadRefused(format!(
                    "queue {} still has {} application(s) and uses {}: stop it (state: stopped), let its applications finish, then remove it",
                    old.path, usage.apps, usage.used
                )));
            }
            mapping.push(new_index);
        }
        let mut usage = vec![QueueUsage::default(); tree.queues.len()];
        for (old_index, new_index) in mapping.iter().enumerate() {
            if let Some(i) = new_index {
                usage[*i] = std::mem::take(&mut self.usage[old_index]);
            }
        }
        self.config = config;
        self.tree = tree;
        self.usage = usage;
        Ok((plan, mapping))
    }

    /// Moves an app's accounting from one leaf to another (queue move). The caller checked
    /// [`Hierarchy::check_move`].
    pub fn move_app(&mut self, from: QueueIndex, to: QueueIndex, user: &str, containers: &[(Resource, bool)]) {
        for (r, is_am) in containers {
            self.refund(from, user, *r, *is_am);
        }
        self.app_removed(from, user);
        self.app_added(to, user);
        for (r, is_am) in containers {
            self.charge(to, user, *r, *is_am);
        }
    }

    /// Whether an app of `user` holding `used` may move into `to` without breaking its limits.
    pub fn check_move(&self, to: QueueIndex, user: &str, used: Resource) -> Result<(), CoreError> {
        self.check_submit(to, user)?;
        for q in self.path_to(to).into_iter().skip(1) {
            let queue = &self.tree.queues[q];
            if !self.within(self.usage[q].used + used, queue.maximum) {
                return Err(CoreError::MoveRefused(format!(
                    "queue {} would exceed its maximum {} (uses {}, the application holds {used})",
                    queue.path, queue.maximum, self.usage[q].used
                )));
            }
        }
        Ok(())
    }

    /// What `user`'s app in `leaf` could still get as far as queue limits go: the room left
    /// under the leaf's and its ancestors' maximums and, in capacity mode, under the user limit.
    pub fn headroom(&self, leaf: QueueIndex, user: &str) -> Resource {
        let min = |a: Resource, b: Resource| Resource::new(a.memory_mb.min(b.memory_mb), a.vcores.min(b.vcores));
        let mut room = self.tree.cluster;
        for q in self.path_to(leaf).into_iter().skip(1) {
            room = min(room, self.tree.queues[q].maximum.saturating_sub(self.usage[q].used));
        }
        if let QueueSettings::Capacity(c) = &self.tree.queues[leaf].settings {
            let used = self.usage[leaf].users.get(user).map_or(Resource::ZERO, |u| u.used);
            room = min(room, self.user_limit(leaf, user, c, Resource::ZERO).saturating_sub(used));
        }
        room
    }

    /// Highest application priority a leaf allows.
    pub fn max_priority(&self, leaf: QueueIndex) -> i32 {
        match &self.tree.queues[leaf].settings {
            QueueSettings::Capacity(c) => c.max_application_priority,
            _ => i32::MAX,
        }
    }
}
