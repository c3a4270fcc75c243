//! The queue hierarchy at run time: the resolved tree (re-resolved whenever the cluster size
//! changes), what each queue and each user in a leaf uses, and the rules the scheduler applies:
//! placement, submit checks, allocation limits, and the order in which queues are served.
//!
//! Placement rules with `create: true` add queues at run time: [`Hierarchy::create_queue`]
//! switches to a configuration with the queue added, the same way a reload does, and reloads keep
//! created queues while they are busy (the file never lists them).
//!
//! Serving order per scheduler mode (YARN's semantics):
//! - capacity: at every parent, the child with the lowest used/guaranteed ratio first; with
//!   different queue priorities, an under-guarantee child beats an over-guarantee one, and among
//!   children on the same side of their guarantee the higher priority goes first;
//! - fair: children below their min share first (lowest usage/min-share ratio), then the lowest
//!   usage/weight ratio (FairSharePolicy; DRF compares dominant shares);
//! - fifo: the single `root.default` leaf.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use weft_common::Resource;

use super::error::CoreError;
use crate::queues::{
    CapacitySettings, DynamicRule, PlacementRule, QueueConfig, QueueIndex, QueueSettings, QueueState, QueueTree,
    QueuesConfig, ReloadPlan, ResourceCalculator, Schedulable, SchedulerMode, SchedulingPolicy, compute_fair_shares,
    diff,
};

/// The most queues placement rules may create under one parent (YARN's
/// `auto-queue-creation-v2.max-queues` default). Beyond it, submissions that would create one
/// more are refused.
pub const MAX_CREATED_QUEUES_PER_PARENT: usize = 1000;

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

/// Where the placement rules put an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuePlacement {
    /// An existing queue; [`Hierarchy::check_submit`] decides whether it takes the app.
    Existing(QueueIndex),
    /// A missing leaf (full path) that a `create: true` rule may create, with any missing
    /// parents: check with [`Hierarchy::check_submit_to_created`], then [`Hierarchy::create_queue`].
    Create { path: String },
}

/// Why a placement rule cannot create a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CreationObstacle {
    /// The rule falls through, as if `create` were false.
    NotAllowed(String),
    /// The parent already holds [`MAX_CREATED_QUEUES_PER_PARENT`] created queues; the
    /// submission is refused rather than sent elsewhere, so the operator notices.
    LimitReached { parent: String },
}

impl fmt::Display for CreationObstacle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreationObstacle::NotAllowed(reason) => f.write_str(reason),
            CreationObstacle::LimitReached { parent } => write!(
                f,
                "{parent} already holds the maximum of {MAX_CREATED_QUEUES_PER_PARENT} queues created by placement rules; a queue reload removes the idle ones"
            ),
        }
    }
}

/// The queue name a user or group name gives: YARN replaces `.` with `_dot_`, since a dot
/// separates path segments. None when no queue can have that name.
fn queue_name_for(name: &str) -> Option<String> {
    let cleaned = name.replace('.', "_dot_");
    (!cleaned.is_empty() && !cleaned.contains(char::is_whitespace)).then_some(cleaned)
}

/// The full path a `user`, `primary-group` or `primary-group-user` rule names for `names` (the
/// user, the group, or the group then the user): under the rule's parent, or under root.
fn dynamic_rule_path(rule: &DynamicRule, names: &[&str]) -> Option<String> {
    let mut path = rule.parent.clone().unwrap_or_else(|| "root".to_owned());
    for name in names {
        path.push('.');
        path.push_str(&queue_name_for(name)?);
    }
    Some(path)
}

/// The parent path of a full path (`root.users` for `root.users.zoe`).
fn parent_path(path: &str) -> Option<&str> {
    path.rsplit_once('.').map(|(parent, _)| parent)
}

fn is_busy(usage: &QueueUsage) -> bool {
    usage.apps > 0 || usage.used != Resource::ZERO
}

/// The error for a queue a placement rule may not create.
fn creation_refused(path: &str, obstacle: &CreationObstacle) -> CoreError {
    CoreError::InvalidSubmission { field: "queue", message: format!("cannot create queue {path}: {obstacle}") }
}

pub struct Hierarchy {
    /// The configuration in force: the file's plus the queues placement rules created.
    config: QueuesConfig,
    tree: QueueTree,
    usage: Vec<QueueUsage>,
    /// Full paths of the queues placement rules created (parents sort before their children).
    created: BTreeSet<String>,
}

impl Hierarchy {
    pub fn new(config: QueuesConfig, cluster: Resource) -> Result<Self, CoreError> {
        let tree = QueueTree::resolve(&config, cluster)
            .map_err(|p| CoreError::Internal(format!("queue configuration: {p}")))?;
        let usage = vec![QueueUsage::default(); tree.queues.len()];
        Ok(Self { config, tree, usage, created: BTreeSet::new() })
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
        self.calculator().fits(used, limit)
    }

    /// Share of `total` that `r` is, by the resource calculator.
    fn share(&self, r: Resource, total: Resource) -> f64 {
        self.calculator().share(r, total)
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

    /// Where an app submitted by `user` to `requested` goes, by the placement rules. Pure: a
    /// queue to create is only named here; [`Hierarchy::create_queue`] creates it.
    pub fn place(&self, requested: Option<&str>, user: &str) -> Result<QueuePlacement, CoreError> {
        let requested = requested.map(str::trim).filter(|q| !q.is_empty());
        let groups = self.tree.user_groups(user);
        let primary = groups.first().map(String::as_str);
        let existing = |path: &str| self.leaf(path).map(QueuePlacement::Existing);
        for rule in &self.tree.placement_rules {
            let found = match rule {
                // YARN: "default" (or nothing) falls through to the next rule.
                PlacementRule::Specified(r) => match requested.filter(|q| *q != "default" && *q != "root.default") {
                    Some(q) => Some(self.specified_placement(q, r.create)?),
                    None => None,
                },
                PlacementRule::User(r) => self.dynamic_placement(r, &[user])?,
                PlacementRule::PrimaryGroup(r) => match primary {
                    Some(group) => self.dynamic_placement(r, &[group])?,
                    None => None,
                },
                PlacementRule::PrimaryGroupUser(r) => match primary {
                    Some(group) => self.dynamic_placement(r, &[group, user])?,
                    None => None,
                },
                PlacementRule::MapUser(r) => (r.user == user).then(|| existing(&r.queue)).flatten(),
                PlacementRule::MapGroup(r) => groups.contains(&r.group).then(|| existing(&r.queue)).flatten(),
                PlacementRule::Default(r) => {
                    Some(existing(&r.queue).ok_or_else(|| CoreError::UnknownQueue(r.queue.clone()))?)
                }
                PlacementRule::Reject => {
                    return Err(CoreError::PlacementRejected {
                        user: user.to_owned(),
                        requested: requested.map(str::to_owned),
                    });
                }
            };
            if let Some(placement) = found {
                return Ok(placement);
            }
        }
        Err(CoreError::UnknownQueue(requested.unwrap_or("default").to_owned()))
    }

    /// A leaf by full path or leaf name.
    fn leaf(&self, name: &str) -> Option<QueueIndex> {
        self.tree.find(name).filter(|i| self.tree.queues[*i].is_leaf)
    }

    /// `specified`: the named queue (a parent too, which the submit check then refuses), or
    /// with `create: true` a missing one under a parent that takes created queues; a name
    /// without `root.` is created under root, as the fair scheduler does. An unknown name that
    /// cannot be created is rejected rather than falling through, so a typo fails loudly.
    fn specified_placement(&self, requested: &str, create: bool) -> Result<QueuePlacement, CoreError> {
        if let Some(index) = self.tree.find(requested) {
            return Ok(QueuePlacement::Existing(index));
        }
        let path = if requested.starts_with("root.") { requested.to_owned() } else { format!("root.{requested}") };
        match create.then(|| self.creation_obstacle(&path)) {
            Some(None) => Ok(QueuePlacement::Create { path }),
            Some(Some(obstacle @ CreationObstacle::LimitReached { .. })) => Err(creation_refused(&path, &obstacle)),
            Some(Some(CreationObstacle::NotAllowed(_))) | None => Err(CoreError::UnknownQueue(requested.to_owned())),
        }
    }

    /// `user`, `primary-group`, `primary-group-user`: the leaf the rule names or, with
    /// `create: true`, the leaf to create. None falls through to the next rule, also when the
    /// queue cannot be created (as YARN does with `create: false`).
    fn dynamic_placement(&self, rule: &DynamicRule, names: &[&str]) -> Result<Option<QueuePlacement>, CoreError> {
        let Some(path) = dynamic_rule_path(rule, names) else { return Ok(None) };
        let existing = match (&rule.parent, names) {
            // Without a parent, the leaf named after the user or group, anywhere in the tree.
            (None, [_]) => path.strip_prefix("root.").and_then(|name| self.leaf(name)),
            _ => self.leaf(&path),
        };
        if let Some(index) = existing {
            return Ok(Some(QueuePlacement::Existing(index)));
        }
        if !rule.create {
            return Ok(None);
        }
        match self.creation_obstacle(&path) {
            None => Ok(Some(QueuePlacement::Create { path })),
            Some(CreationObstacle::NotAllowed(_)) => Ok(None),
            Some(obstacle @ CreationObstacle::LimitReached { .. }) => Err(creation_refused(&path, &obstacle)),
        }
    }

    /// The queue at `path` or, when it is missing, its nearest existing ancestor.
    fn nearest_existing(&self, path: &str) -> QueueIndex {
        let mut candidate = path;
        loop {
            if let Some(index) = self.tree.find(candidate) {
                return index;
            }
            match parent_path(candidate) {
                Some(parent) => candidate = parent,
                None => return 0,
            }
        }
    }

    /// Why the leaf `path` (a full path) cannot be created now with any missing parents, or None
    /// when it can: its nearest existing ancestor takes created queues and has room for one more,
    /// every name is valid and the leaf name is not used elsewhere.
    fn creation_obstacle(&self, path: &str) -> Option<CreationObstacle> {
        let not_allowed = |reason: String| Some(CreationObstacle::NotAllowed(reason));
        let Some(below_root) = path.strip_prefix("root.") else {
            return not_allowed(format!("{path} is not a full queue path such as root.users.zoe"));
        };
        if below_root.split('.').any(|name| name.is_empty() || name.contains(char::is_whitespace)) {
            return not_allowed(format!("{path} is not a valid queue path: names must be non-empty, without spaces"));
        }
        if self.tree.find(path).is_some() {
            return not_allowed(format!("{path} already exists"));
        }
        let leaf_name = path.rsplit('.').next().unwrap_or(path);
        // Leaf names are unique, because apps may be submitted by leaf name.
        if let Some(other) = self.tree.queues.iter().find(|q| q.is_leaf && q.name == leaf_name) {
            return not_allowed(format!("the leaf name {leaf_name} is already used by {}", other.path));
        }
        let ancestor = &self.tree.queues[self.nearest_existing(path)];
        if ancestor.is_leaf {
            return not_allowed(format!("{} is a leaf queue", ancestor.path));
        }
        if !ancestor.accepts_dynamic_children {
            let hint = match self.tree.scheduler {
                SchedulerMode::Capacity => {
                    " (in capacity mode its children must use weight capacities, or it is a childless `type: parent`)"
                }
                _ => "",
            };
            return not_allowed(format!("{} does not take queues created by placement rules{hint}", ancestor.path));
        }
        let created_children = self.created.iter().filter(|p| parent_path(p) == Some(ancestor.path.as_str())).count();
        if created_children >= MAX_CREATED_QUEUES_PER_PARENT {
            return Some(CreationObstacle::LimitReached { parent: ancestor.path.clone() });
        }
        None
    }

    /// The submit checks for a queue [`Hierarchy::place`] asked to create, before it exists, so a
    /// refused submission leaves no empty queue behind. A created queue adds no ACL of its own
    /// and is stopped when its parent is, so its nearest existing ancestor decides.
    pub fn check_submit_to_created(&self, path: &str, user: &str) -> Result<(), CoreError> {
        let ancestor = &self.tree.queues[self.nearest_existing(path)];
        if ancestor.state == QueueState::Stopped {
            return Err(CoreError::QueueStopped(ancestor.path.clone()));
        }
        if !ancestor.submit_acl.allows(user, self.tree.user_groups(user)) {
            return Err(CoreError::SubmitDenied { user: user.to_owned(), queue: path.to_owned() });
        }
        Ok(())
    }

    /// Creates the leaf `path` and any missing parents (weight 1 each, everything else
    /// inherited) by switching to a configuration that includes them, the same way a reload
    /// does. Returns the new leaf and, for every old queue index, its new index.
    pub fn create_queue(&mut self, path: &str) -> Result<(QueueIndex, Vec<Option<QueueIndex>>), CoreError> {
        if let Some(obstacle) = self.creation_obstacle(path) {
            return Err(creation_refused(path, &obstacle));
        }
        let refused = |reason: String| creation_refused(path, &CreationObstacle::NotAllowed(reason));
        let mut parent = self.tree.queues[self.nearest_existing(path)].path.clone();
        let missing: Vec<String> = path[parent.len() + 1..].split('.').map(str::to_owned).collect();
        let mut config = self.config.clone();
        let mut created = Vec::with_capacity(missing.len());
        for (depth, name) in missing.iter().enumerate() {
            let queue = QueueConfig::created_by_placement(config.scheduler, depth + 1 < missing.len());
            config.insert_queue(&parent, name, queue).map_err(refused)?;
            parent = format!("{parent}.{name}");
            created.push(parent.clone());
        }
        let tree = QueueTree::resolve(&config, self.tree.cluster).map_err(|p| refused(p.to_string()))?;
        let mapping = self.switch_to(config, tree)?;
        self.created.extend(created);
        let leaf = self.leaf(path).ok_or_else(|| CoreError::Internal(format!("created queue {path} is missing")))?;
        tracing::info!(queue = path, "queue created by a placement rule");
        Ok((leaf, mapping))
    }

    /// After a restart the file no longer lists the queues placement rules created. For an
    /// unfinished app recorded in `queue`, the full path to create again, if a `create: true`
    /// rule names that queue for `user` now and it may be created. Fair mode records full paths,
    /// which are matched exactly. Capacity mode records leaf names, which are matched against the
    /// targets of the user and group rules first, and only then taken as `specified` under root.
    pub fn recreatable_queue(&self, queue: &str, user: &str) -> Option<String> {
        let primary = self.tree.user_groups(user).first().map(String::as_str);
        let mut specified_creates = false;
        let mut rule_targets = Vec::new();
        for rule in &self.tree.placement_rules {
            let target = match rule {
                PlacementRule::Specified(r) => {
                    specified_creates |= r.create;
                    None
                }
                PlacementRule::User(r) if r.create => dynamic_rule_path(r, &[user]),
                PlacementRule::PrimaryGroup(r) if r.create => primary.and_then(|g| dynamic_rule_path(r, &[g])),
                PlacementRule::PrimaryGroupUser(r) if r.create => {
                    primary.and_then(|g| dynamic_rule_path(r, &[g, user]))
                }
                _ => None,
            };
            rule_targets.extend(target);
        }
        let candidates: Vec<String> = if queue.starts_with("root.") {
            let named = specified_creates || rule_targets.iter().any(|target| target == queue);
            named.then(|| queue.to_owned()).into_iter().collect()
        } else {
            let by_leaf_name = rule_targets.into_iter().filter(|target| target.rsplit('.').next() == Some(queue));
            by_leaf_name.chain(specified_creates.then(|| format!("root.{queue}"))).collect()
        };
        candidates.into_iter().find(|path| self.creation_obstacle(path).is_none())
    }

    /// Full paths of the queues that placement rules created and that are still in force.
    pub fn created_queues(&self) -> &BTreeSet<String> {
        &self.created
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
        let users = &mut self.usage[leaf].users;
        if !users.contains_key(user) {
            users.insert(user.to_owned(), UserUsage::default());
        }
        let Some(u) = users.get_mut(user) else { return };
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

    /// Whether `leaf` or one of its ancestors is too full for even `r` (the same for every app
    /// of the leaf, so the scheduler can pass the whole leaf over).
    pub fn at_maximum(&self, leaf: QueueIndex, r: Resource) -> bool {
        let mut q = leaf;
        while let Some(parent) = self.tree.queues[q].parent {
            if !self.within(self.usage[q].used + r, self.tree.queues[q].maximum) {
                return true;
            }
            q = parent;
        }
        false
    }

    /// Whether `user` holds at least its user limit in `leaf` (capacity mode).
    pub fn at_user_limit(&self, leaf: QueueIndex, user: &str) -> bool {
        let QueueSettings::Capacity(c) = &self.tree.queues[leaf].settings else { return false };
        let used = self.usage[leaf].users.get(user).map_or(Resource::ZERO, |u| u.used);
        !self.within(used, self.user_limit(leaf, user, c, Resource::ZERO))
    }

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

    /// The leaf the scheduler serves next among those `wanted` accepts: from the root down,
    /// the first child in serving order whose subtree has such a leaf. No sorting: the next
    /// child is picked by selection, so a unit costs O(depth × siblings) comparisons.
    pub fn first_leaf(&self, wanted: &dyn Fn(QueueIndex) -> bool) -> Option<QueueIndex> {
        self.first_leaf_under(0, wanted)
    }

    fn first_leaf_under(&self, queue: QueueIndex, wanted: &dyn Fn(QueueIndex) -> bool) -> Option<QueueIndex> {
        let q = &self.tree.queues[queue];
        if q.is_leaf {
            return wanted(queue).then_some(queue);
        }
        let mut tried: Option<QueueIndex> = None;
        loop {
            // The first child after the last one tried (siblings are totally ordered).
            let next = q
                .children
                .iter()
                .copied()
                .filter(|&c| tried.is_none_or(|t| self.compare_siblings(c, t) == Ordering::Greater))
                .min_by(|&a, &b| self.compare_siblings(a, b))?;
            if let Some(leaf) = self.first_leaf_under(next, wanted) {
                return Some(leaf);
            }
            tried = Some(next);
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
                        let weighted =
                            |u: Resource, w: f64| policy.calculator().share(u, cluster) / w.max(f64::MIN_POSITIVE);
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
    /// resources, so running apps are never lost. Usage carries over by queue path. Queues that
    /// placement rules created are not in the file: those holding applications or resources are
    /// kept, idle ones are dropped (the rules create them again when needed). Returns what
    /// changed and, for every old queue index, its new index (None if removed).
    pub fn reload(&mut self, config: QueuesConfig) -> Result<(ReloadPlan, Vec<Option<QueueIndex>>), CoreError> {
        let file_tree = QueueTree::resolve(&config, self.tree.cluster)
            .map_err(|p| CoreError::ReloadRefused(format!("the new queue configuration is invalid: {p}")))?;
        let (config, kept) = self.with_busy_created_queues(config, &file_tree);
        let tree = if kept.is_empty() {
            file_tree
        } else {
            QueueTree::resolve(&config, self.tree.cluster).map_err(|p| {
                CoreError::ReloadRefused(format!(
                    "the new queue configuration cannot keep the busy queues created by placement rules: {p}"
                ))
            })?
        };
        let plan = diff(&self.config, &config);
        let mapping = self.switch_to(config, tree)?;
        self.created = kept;
        Ok((plan, mapping))
    }

    /// `config` plus the created queues that still hold applications or resources, and the set
    /// of those kept. One is kept only where its parent still takes created queues and its leaf
    /// name is still free; otherwise it is left out and [`Hierarchy::switch_to`] refuses the
    /// reload as for any busy queue. A queue the file now declares is no longer a created one.
    fn with_busy_created_queues(
        &self,
        mut config: QueuesConfig,
        file_tree: &QueueTree,
    ) -> (QueuesConfig, BTreeSet<String>) {
        let mut kept = BTreeSet::new();
        // Parents sort before their children, so a kept parent is in place for its children.
        for path in &self.created {
            let (Some(old), Some((parent, name))) = (self.tree.find(path), path.rsplit_once('.')) else { continue };
            if !is_busy(&self.usage[old]) || file_tree.find(path).is_some() {
                continue;
            }
            let is_leaf = self.tree.queues[old].is_leaf;
            let parent_takes_it = kept.contains(parent)
                || file_tree.find(parent).is_some_and(|i| file_tree.queues[i].accepts_dynamic_children);
            let name_taken = is_leaf && file_tree.queues.iter().any(|q| q.is_leaf && q.name == name);
            if !parent_takes_it || name_taken {
                continue;
            }
            let queue = QueueConfig::created_by_placement(config.scheduler, !is_leaf);
            if config.insert_queue(parent, name, queue).is_ok() {
                kept.insert(path.clone());
            }
        }
        (config, kept)
    }

    /// Switches to a resolved configuration, carrying usage over by path. Refused when a busy
    /// leaf would disappear or become a parent. Returns the new index of every old queue.
    fn switch_to(&mut self, config: QueuesConfig, tree: QueueTree) -> Result<Vec<Option<QueueIndex>>, CoreError> {
        let new_indices: BTreeMap<&str, QueueIndex> =
            tree.queues.iter().enumerate().map(|(i, q)| (q.path.as_str(), i)).collect();
        let mut mapping = Vec::with_capacity(self.tree.queues.len());
        for (old_index, old) in self.tree.queues.iter().enumerate() {
            let new_index = new_indices.get(old.path.as_str()).copied();
            let usage = &self.usage[old_index];
            let still_a_leaf = new_index.is_some_and(|i| tree.queues[i].is_leaf);
            if is_busy(usage) && old.is_leaf && !still_a_leaf {
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
        Ok(mapping)
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

    /// Whether `user` administers `queue` (its administer ACL, inherited from its ancestors).
    pub fn administers(&self, queue: QueueIndex, user: &str) -> bool {
        self.tree.queues[queue].administer_acl.allows(user, self.tree.user_groups(user))
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

    /// YARN FS's instantaneous fair shares: root gets the cluster; at every parent, its share is
    /// split among the children that want or hold something, by weight within min and max, and
    /// never beyond what a child can use (`demand`, per queue, subtree totals, capped at the
    /// queue maximum); idle queues get nothing. With `resource-calculator: memory` only memory is
    /// shared (vcores stay 0, as with YARN's `fair` policy). Fair mode only (empty otherwise).
    pub fn instantaneous_fair_shares(&self, demand: &[Resource]) -> Vec<Resource> {
        if self.tree.scheduler != SchedulerMode::Fair {
            return Vec::new();
        }
        let calculator = self.calculator();
        let mut shares = vec![Resource::ZERO; self.tree.queues.len()];
        shares[0] = self.tree.cluster;
        // Parents come before their children, so each parent's share is known when it is split.
        for (parent, queue) in self.tree.queues.iter().enumerate() {
            let active: Vec<QueueIndex> = queue.children.iter().copied().filter(|&c| !demand[c].is_zero()).collect();
            if active.is_empty() {
                continue;
            }
            let schedulables: Vec<Schedulable> = active
                .iter()
                .map(|&child| {
                    let (weight, min_share) = match &self.tree.queues[child].settings {
                        QueueSettings::Fair(f) => (f.weight, f.min_resources),
                        _ => (1.0, Resource::ZERO),
                    };
                    Schedulable {
                        weight,
                        min_share,
                        max_share: self.tree.queues[child].maximum.min_each(demand[child]),
                    }
                })
                .collect();
            for (child, share) in active.into_iter().zip(compute_fair_shares(shares[parent], &schedulables)) {
                shares[child] = calculator.counted(share);
            }
        }
        shares
    }

    /// Highest application priority a leaf allows.
    pub fn max_priority(&self, leaf: QueueIndex) -> i32 {
        match &self.tree.queues[leaf].settings {
            QueueSettings::Capacity(c) => c.max_application_priority,
            _ => i32::MAX,
        }
    }
}
