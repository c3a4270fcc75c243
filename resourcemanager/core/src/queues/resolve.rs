//! The resolved queue tree: every queue with its full path, effective (inherited) settings and,
//! for one cluster size, its absolute guaranteed and maximum resources. Resolve again when the
//! configuration or the cluster size changes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use weft_common::Resource;

use super::calculator::ResourceCalculator;
use super::config::{
    Acl, Capacity, OrderingPolicy, PlacementRule, PreemptionConfig, QueueConfig, QueueState, QueuesConfig,
    ResourceLimit, SchedulerMode, SchedulingPolicy, UserConfig,
};
use super::fair_share::{Schedulable, compute_fair_shares};
use super::validate::{Problems, accepts_dynamic_children, root_queue};

/// Index into [`QueueTree::queues`].
pub type QueueIndex = usize;

/// YARN's `yarn.scheduler.capacity.maximum-applications` default.
const DEFAULT_MAX_APPLICATIONS: u32 = 10_000;
const DEFAULT_MAX_AM_RESOURCE_PERCENT: f64 = 0.1;
const DEFAULT_MAX_AM_SHARE: f64 = 0.5;
const DEFAULT_FAIR_SHARE_PREEMPTION_THRESHOLD: f64 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct QueueTree {
    pub scheduler: SchedulerMode,
    pub resource_calculator: ResourceCalculator,
    /// The cluster size the absolute numbers were computed for.
    pub cluster: Resource,
    /// Root first, then depth-first: every parent comes before its children.
    pub queues: Vec<ResolvedQueue>,
    /// The rules in force (the configured ones or the default).
    pub placement_rules: Vec<PlacementRule>,
    pub preemption: PreemptionConfig,
    pub users: BTreeMap<String, UserConfig>,
    /// Running apps per user for users without their own limit.
    pub default_user_max_parallel_apps: Option<u32>,
    /// Adjustments this cluster size forced (e.g. absolute capacities scaled down to fit).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedQueue {
    /// Full path, e.g. `root.prod.etl`.
    pub path: String,
    /// Last path segment.
    pub name: String,
    pub parent: Option<QueueIndex>,
    pub children: Vec<QueueIndex>,
    /// Apps can only be submitted to leaves.
    pub is_leaf: bool,
    /// Whether placement rules may create queues under this one.
    pub accepts_dynamic_children: bool,
    /// Stopped when the queue or any ancestor is stopped.
    pub state: QueueState,
    /// The queue's ACL joined with every ancestor's (an ancestor's permission grants it).
    pub submit_acl: Acl,
    pub administer_acl: Acl,
    /// Whether the preemption monitor may take containers from this queue.
    pub preemptible: bool,
    /// Guaranteed share of the cluster, 0..=1. From the configured percentages and weights
    /// alone (so defined on an empty cluster); from resources for absolute and fair queues.
    pub absolute_capacity: f64,
    /// Capacity: the guaranteed resources; fair: the steady fair share.
    pub guaranteed: Resource,
    /// The most the queue may use (elasticity limit).
    pub maximum: Resource,
    /// Capacity leaves: pending + running apps beyond this are rejected.
    pub max_applications: Option<u32>,
    /// Running apps beyond this wait in ACCEPTED (CS max-parallel-apps, FS maxRunningApps).
    pub max_parallel_apps: Option<u32>,
    /// Leaves: the most resources ApplicationMasters may hold together.
    pub am_limit: Option<Resource>,
    pub settings: QueueSettings,
}

/// Mode-specific settings with every default applied.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueSettings {
    Fifo,
    Capacity(CapacitySettings),
    Fair(FairSettings),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CapacitySettings {
    pub capacity: Capacity,
    pub max_capacity: ResourceLimit,
    pub priority: i32,
    /// `None`: a user may use the whole queue maximum (`-1` in the file).
    pub user_limit_factor: Option<f64>,
    pub minimum_user_limit_percent: u32,
    pub max_am_resource_percent: f64,
    pub max_parallel_apps_per_user: Option<u32>,
    pub default_application_priority: i32,
    pub max_application_priority: i32,
    pub ordering_policy: OrderingPolicy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FairSettings {
    pub weight: f64,
    pub min_resources: Resource,
    /// `None`: AMs are not limited (`-1` in the file).
    pub max_am_share: Option<f64>,
    pub scheduling_policy: SchedulingPolicy,
    /// `None`: never (YARN's Long.MAX_VALUE).
    pub min_share_preemption_timeout_ms: Option<u64>,
    pub fair_share_preemption_timeout_ms: Option<u64>,
    pub fair_share_preemption_threshold: f64,
}

/// Why an app cannot be submitted to a queue name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueLookupError {
    #[error("no queue named {0}")]
    Unknown(String),
    #[error("{0} is a parent queue; applications can only be submitted to leaf queues")]
    NotALeaf(String),
    #[error("queue {0} is stopped and accepts no new applications")]
    Stopped(String),
}

/// What a parent hands down to its children while resolving.
struct Share {
    guaranteed: Resource,
    maximum: Resource,
    absolute_capacity: f64,
}

struct Builder<'c> {
    config: &'c QueuesConfig,
    cluster: Resource,
    queues: Vec<ResolvedQueue>,
    warnings: Vec<String>,
}

impl QueueTree {
    /// Validates `config` and computes the tree for a cluster of `cluster` resources.
    pub fn resolve(config: &QueuesConfig, cluster: Resource) -> Result<QueueTree, Problems> {
        config.validate()?;
        let root_config = root_queue(config);
        let mut builder = Builder { config, cluster, queues: Vec::new(), warnings: Vec::new() };
        let root_share = Share { guaranteed: cluster, maximum: cluster, absolute_capacity: 1.0 };
        builder.add_queue(None, "root", &root_config, root_share);
        Ok(QueueTree {
            scheduler: config.scheduler,
            resource_calculator: config.resource_calculator,
            cluster,
            queues: builder.queues,
            placement_rules: config.effective_placement_rules(),
            preemption: config.preemption.clone(),
            users: config.users.clone(),
            default_user_max_parallel_apps: config.defaults.max_parallel_apps_per_user,
            warnings: builder.warnings,
        })
    }

    pub fn root(&self) -> &ResolvedQueue {
        &self.queues[0]
    }

    /// A queue by full path (`root.prod.etl`) or by leaf name (`etl`; leaf names are unique).
    pub fn find(&self, name: &str) -> Option<QueueIndex> {
        self.queues
            .iter()
            .position(|q| q.path == name)
            .or_else(|| self.queues.iter().position(|q| q.is_leaf && q.name == name))
    }

    /// Whether `queue` is `ancestor` or lies below it.
    pub fn is_within(&self, queue: QueueIndex, ancestor: QueueIndex) -> bool {
        let mut at = Some(queue);
        while let Some(index) = at {
            if index == ancestor {
                return true;
            }
            at = self.queues[index].parent;
        }
        false
    }

    /// The leaf an app submitted to `name` goes to, if it may go there at all.
    pub fn leaf_for_submission(&self, name: &str) -> Result<QueueIndex, QueueLookupError> {
        let index = self.find(name).ok_or_else(|| QueueLookupError::Unknown(name.to_owned()))?;
        let queue = &self.queues[index];
        if !queue.is_leaf {
            return Err(QueueLookupError::NotALeaf(queue.path.clone()));
        }
        if queue.state == QueueState::Stopped {
            return Err(QueueLookupError::Stopped(queue.path.clone()));
        }
        Ok(index)
    }

    /// The user's static groups (first = primary); empty for unknown users.
    pub fn user_groups(&self, user: &str) -> &[String] {
        self.users.get(user).map_or(&[], |u| u.groups.as_slice())
    }

    pub fn user_max_parallel_apps(&self, user: &str) -> Option<u32> {
        self.users.get(user).and_then(|u| u.max_parallel_apps).or(self.default_user_max_parallel_apps)
    }

    /// The effective tree as a table, for `weft config check`.
    pub fn render_table(&self) -> String {
        let header = ["QUEUE", "CONFIGURED", "GUARANTEED", "MAXIMUM", "STATE", "LIMITS"];
        let rows: Vec<[String; 6]> = self
            .queues
            .iter()
            .map(|q| {
                [
                    q.path.clone(),
                    configured(q),
                    format_resource(q.guaranteed),
                    format_resource(q.maximum),
                    match q.state {
                        QueueState::Running => "running".to_owned(),
                        QueueState::Stopped => "stopped".to_owned(),
                    },
                    limits(q),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let calculator = match self.resource_calculator {
            ResourceCalculator::Dominant => "dominant",
            ResourceCalculator::Memory => "memory",
        };
        let mut out = format!(
            "scheduler: {}, resource calculator: {calculator}, cluster: {}\n",
            self.scheduler,
            format_resource(self.cluster)
        );
        let mut write_row = |cells: &[String]| {
            let mut line = String::new();
            for (cell, width) in cells.iter().zip(widths) {
                let _ = write!(line, "{cell:<width$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        };
        write_row(&header.map(str::to_owned));
        for row in &rows {
            write_row(row);
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        out
    }
}

fn format_resource(r: Resource) -> String {
    format!("{} MB, {} vc", r.memory_mb, r.vcores)
}

fn configured(q: &ResolvedQueue) -> String {
    match &q.settings {
        QueueSettings::Fifo => "-".to_owned(),
        QueueSettings::Capacity(c) if q.parent.is_none() => format!("max {}", c.max_capacity),
        QueueSettings::Capacity(c) => format!("{} max {}", c.capacity, c.max_capacity),
        QueueSettings::Fair(f) => format!("weight {}", f.weight),
    }
}

fn limits(q: &ResolvedQueue) -> String {
    let mut parts = Vec::new();
    if let Some(apps) = q.max_applications {
        parts.push(format!("apps {apps}"));
    }
    if let Some(running) = q.max_parallel_apps {
        parts.push(format!("running {running}"));
    }
    if let Some(am) = q.am_limit {
        parts.push(format!("am {}", format_resource(am)));
    }
    match &q.settings {
        QueueSettings::Capacity(c) if q.is_leaf => {
            match c.user_limit_factor {
                Some(factor) => parts.push(format!("user-limit-factor {factor}")),
                None => parts.push("no user limit".to_owned()),
            }
            if c.minimum_user_limit_percent < 100 {
                parts.push(format!("min-user-limit {}%", c.minimum_user_limit_percent));
            }
        }
        QueueSettings::Fair(f) => {
            if !f.min_resources.is_zero() {
                parts.push(format!("min {}", format_resource(f.min_resources)));
            }
            parts.push(format!("policy {:?}", f.scheduling_policy).to_lowercase());
        }
        _ => {}
    }
    if !q.preemptible {
        parts.push("not preemptible".to_owned());
    }
    if q.accepts_dynamic_children {
        parts.push("creates queues".to_owned());
    }
    parts.join(", ")
}

/// `r × fraction`, rounded down per dimension (the epsilon absorbs binary noise such as
/// 102400 × 0.7 = 71679.99…).
fn scale(r: Resource, fraction: f64) -> Resource {
    let part = |v: f64| (v * fraction + 1e-6).floor().max(0.0);
    Resource::new(part(r.memory_mb as f64) as u64, part(f64::from(r.vcores)) as u32)
}

/// `r × fraction`, rounded up per dimension (the epsilon keeps exact products exact).
fn scale_up(r: Resource, fraction: f64) -> Resource {
    let part = |v: f64| (v * fraction - 1e-6).ceil().max(0.0);
    Resource::new(part(r.memory_mb as f64) as u64, part(f64::from(r.vcores)) as u32)
}

impl Builder<'_> {
    /// `guaranteed / cluster` as the resource calculator sees it.
    fn share_of_cluster(&self, guaranteed: Resource) -> f64 {
        self.config.resource_calculator.share(guaranteed, self.cluster)
    }

    fn add_queue(&mut self, parent: Option<QueueIndex>, name: &str, q: &QueueConfig, share: Share) {
        let index = self.queues.len();
        let resolved = self.resolve_queue(parent, name, q, share);
        self.queues.push(resolved);
        if let Some(parent) = parent {
            self.queues[parent].children.push(index);
        }
        if q.queues.is_empty() {
            return;
        }
        let children: Vec<(&String, &QueueConfig)> = q.queues.iter().collect();
        let shares = match self.config.scheduler {
            SchedulerMode::Capacity => self.capacity_shares(index, &children),
            SchedulerMode::Fair => self.fair_shares(index, &children),
            SchedulerMode::Fifo => children
                .iter()
                .map(|_| Share { guaranteed: self.cluster, maximum: self.cluster, absolute_capacity: 1.0 })
                .collect(),
        };
        for ((child_name, child), share) in children.into_iter().zip(shares) {
            self.add_queue(Some(index), child_name, child, share);
        }
    }

    /// Percent: of the parent's guarantee; weights: the parent's guarantee split by weight;
    /// absolute: as given, scaled down proportionally per dimension when the siblings together
    /// exceed the parent (as YARN does). Maximum: percent of the parent's maximum or absolute,
    /// within the parent's maximum and never below the guarantee.
    fn capacity_shares(&mut self, parent: QueueIndex, children: &[(&String, &QueueConfig)]) -> Vec<Share> {
        let (parent_path, parent_guaranteed, parent_maximum, parent_fraction) = {
            let p = &self.queues[parent];
            (p.path.clone(), p.guaranteed, p.maximum, p.absolute_capacity)
        };
        let capacities: Vec<Capacity> =
            children.iter().map(|(_, c)| c.capacity.unwrap_or(Capacity::Percent(0.0))).collect();
        let weight_sum: f64 = capacities.iter().map(|c| if let Capacity::Weight(w) = c { *w } else { 0.0 }).sum();
        let mut absolute_sum = Resource::ZERO;
        for c in &capacities {
            if let Capacity::Absolute(amount) = c {
                absolute_sum += Resource::from(*amount);
            }
        }
        let dimension_factor = |sum: f64, available: f64| if sum > available { available / sum } else { 1.0 };
        let memory_factor = dimension_factor(absolute_sum.memory_mb as f64, parent_guaranteed.memory_mb as f64);
        let vcore_factor = dimension_factor(f64::from(absolute_sum.vcores), f64::from(parent_guaranteed.vcores));
        if memory_factor < 1.0 || vcore_factor < 1.0 {
            self.warnings.push(format!(
                "the absolute capacities of {parent_path}'s children add up to {}, more than its {}; scaled down proportionally",
                format_resource(absolute_sum),
                format_resource(parent_guaranteed)
            ));
        }
        children
            .iter()
            .zip(capacities)
            .map(|((_, child), capacity)| {
                let (guaranteed, absolute_capacity) = match capacity {
                    Capacity::Percent(p) => (scale(parent_guaranteed, p / 100.0), parent_fraction * p / 100.0),
                    Capacity::Weight(w) => {
                        let fraction = if weight_sum > 0.0 { w / weight_sum } else { 0.0 };
                        (scale(parent_guaranteed, fraction), parent_fraction * fraction)
                    }
                    Capacity::Absolute(amount) => {
                        let scaled = Resource::new(
                            (amount.memory_mb as f64 * memory_factor) as u64,
                            (f64::from(amount.vcores) * vcore_factor) as u32,
                        );
                        (scaled, self.share_of_cluster(scaled))
                    }
                };
                let maximum = match child.max_capacity {
                    None => parent_maximum,
                    Some(ResourceLimit::Percent(m)) => scale(parent_maximum, m / 100.0),
                    Some(ResourceLimit::Absolute(amount)) => Resource::from(amount).min_each(parent_maximum),
                };
                Share { guaranteed, maximum: maximum.max_each(guaranteed), absolute_capacity }
            })
            .collect()
    }

    /// Steady fair shares of the parent's share by weight, min and max (YARN's
    /// `ComputeFairShares` over all configured queues). Maximum: `max-resources` (percent of the
    /// cluster or absolute, `defaults.max-resources` otherwise) within the parent's maximum.
    fn fair_shares(&mut self, parent: QueueIndex, children: &[(&String, &QueueConfig)]) -> Vec<Share> {
        let (parent_path, parent_guaranteed, parent_maximum) = {
            let p = &self.queues[parent];
            (p.path.clone(), p.guaranteed, p.maximum)
        };
        let schedulables: Vec<Schedulable> = children
            .iter()
            .map(|(_, child)| {
                let max_share = match child.max_resources.or(self.config.defaults.max_resources) {
                    None => parent_maximum,
                    Some(ResourceLimit::Percent(p)) => scale(self.cluster, p / 100.0).min_each(parent_maximum),
                    Some(ResourceLimit::Absolute(amount)) => Resource::from(amount).min_each(parent_maximum),
                };
                Schedulable {
                    weight: child.weight.unwrap_or(1.0),
                    min_share: child.min_resources.map_or(Resource::ZERO, Resource::from),
                    max_share,
                }
            })
            .collect();
        let min_sum = schedulables.iter().fold(Resource::ZERO, |sum, s| sum + s.min_share);
        if !parent_guaranteed.fits(&min_sum) {
            self.warnings.push(format!(
                "the min-resources of {parent_path}'s children add up to {}, more than its fair share {}",
                format_resource(min_sum),
                format_resource(parent_guaranteed)
            ));
        }
        compute_fair_shares(parent_guaranteed, &schedulables)
            .into_iter()
            .zip(&schedulables)
            .map(|(share, s)| Share {
                guaranteed: share,
                maximum: s.max_share.max_each(share),
                absolute_capacity: self.share_of_cluster(share),
            })
            .collect()
    }

    fn resolve_queue(&self, parent: Option<QueueIndex>, name: &str, q: &QueueConfig, share: Share) -> ResolvedQueue {
        let mode = self.config.scheduler;
        let defaults = &self.config.defaults;
        let parent_queue = parent.map(|p| &self.queues[p]);
        let path = parent_queue.map_or_else(|| name.to_owned(), |p| format!("{}.{name}", p.path));
        let own_acl = |acl: &Option<Acl>| acl.clone().unwrap_or_else(Acl::nobody);
        let (submit_acl, administer_acl) = match parent_queue {
            Some(p) => (
                p.submit_acl.union(&own_acl(&q.acl_submit_applications)),
                p.administer_acl.union(&own_acl(&q.acl_administer_queue)),
            ),
            None => (own_acl(&q.acl_submit_applications), own_acl(&q.acl_administer_queue)),
        };
        let state = match parent_queue {
            Some(p) if p.state == QueueState::Stopped => QueueState::Stopped,
            _ => q.state.unwrap_or_default(),
        };
        let parent_preemptible = parent_queue.is_none_or(|p| p.preemptible);
        let preemptible = match mode {
            // Fair: allowPreemptionFrom=false applies to the whole subtree.
            SchedulerMode::Fair => parent_preemptible && q.preemptible.unwrap_or(true),
            // Capacity: disable_preemption is inherited, but a child may override it.
            _ => q.preemptible.unwrap_or(parent_preemptible),
        };
        let is_leaf = q.is_leaf();
        let settings = match mode {
            SchedulerMode::Fifo => QueueSettings::Fifo,
            SchedulerMode::Capacity => QueueSettings::Capacity(CapacitySettings {
                capacity: q.capacity.unwrap_or(Capacity::Percent(100.0)),
                max_capacity: q.max_capacity.unwrap_or(ResourceLimit::Percent(100.0)),
                priority: q.priority.unwrap_or(0),
                user_limit_factor: Some(q.user_limit_factor.or(defaults.user_limit_factor).unwrap_or(1.0))
                    .filter(|factor| *factor != -1.0),
                minimum_user_limit_percent: q
                    .minimum_user_limit_percent
                    .or(defaults.minimum_user_limit_percent)
                    .unwrap_or(100),
                max_am_resource_percent: q
                    .max_am_resource_percent
                    .or(defaults.max_am_resource_percent)
                    .unwrap_or(DEFAULT_MAX_AM_RESOURCE_PERCENT),
                max_parallel_apps_per_user: q.max_parallel_apps_per_user,
                default_application_priority: q.default_application_priority.unwrap_or(0),
                max_application_priority: q.max_application_priority.or(defaults.max_application_priority).unwrap_or(0),
                ordering_policy: q.ordering_policy.unwrap_or_default(),
            }),
            SchedulerMode::Fair => {
                // Preemption timeouts and threshold inherit from the parent (root: the defaults).
                let inherited = match parent_queue.map(|p| &p.settings) {
                    Some(QueueSettings::Fair(p)) => (
                        p.min_share_preemption_timeout_ms,
                        p.fair_share_preemption_timeout_ms,
                        p.fair_share_preemption_threshold,
                    ),
                    _ => (
                        defaults.min_share_preemption_timeout_ms,
                        defaults.fair_share_preemption_timeout_ms,
                        defaults.fair_share_preemption_threshold.unwrap_or(DEFAULT_FAIR_SHARE_PREEMPTION_THRESHOLD),
                    ),
                };
                QueueSettings::Fair(FairSettings {
                    weight: q.weight.unwrap_or(1.0),
                    min_resources: q.min_resources.map_or(Resource::ZERO, Resource::from),
                    max_am_share: Some(q.max_am_share.or(defaults.max_am_share).unwrap_or(DEFAULT_MAX_AM_SHARE))
                        .filter(|share| *share != -1.0),
                    scheduling_policy: q.scheduling_policy.or(defaults.scheduling_policy).unwrap_or_default(),
                    min_share_preemption_timeout_ms: q.min_share_preemption_timeout_ms.or(inherited.0),
                    fair_share_preemption_timeout_ms: q.fair_share_preemption_timeout_ms.or(inherited.1),
                    fair_share_preemption_threshold: q.fair_share_preemption_threshold.unwrap_or(inherited.2),
                })
            }
        };
        let max_applications = match &settings {
            QueueSettings::Capacity(_) if is_leaf => Some(q.max_applications.unwrap_or_else(|| {
                // YARN: the system-wide limit × the queue's absolute capacity (the epsilon keeps
                // 10000 × 0.35 from truncating to 3499).
                let total = defaults.max_applications.unwrap_or(DEFAULT_MAX_APPLICATIONS);
                (f64::from(total) * share.absolute_capacity + 1e-6) as u32
            })),
            _ => None,
        };
        // The per-queue default would cap the whole cluster if root took it too.
        let default_max_parallel_apps = match mode {
            _ if parent.is_none() => None,
            SchedulerMode::Capacity => defaults.max_parallel_apps,
            SchedulerMode::Fair => defaults.max_running_apps,
            SchedulerMode::Fifo => None,
        };
        let max_parallel_apps = match mode {
            SchedulerMode::Capacity => q.max_parallel_apps,
            SchedulerMode::Fair => q.max_running_apps,
            SchedulerMode::Fifo => None,
        }
        .or(default_max_parallel_apps);
        // Rounded up, as YARN normalizes the AM limit up, so a small queue can still start an AM.
        let am_limit = is_leaf.then(|| match &settings {
            QueueSettings::Capacity(c) => scale_up(share.guaranteed, c.max_am_resource_percent),
            QueueSettings::Fair(FairSettings { max_am_share: Some(fraction), .. }) => {
                scale_up(share.guaranteed, *fraction)
            }
            _ => share.maximum,
        });
        ResolvedQueue {
            path,
            name: name.to_owned(),
            parent,
            children: Vec::new(),
            is_leaf,
            accepts_dynamic_children: accepts_dynamic_children(mode, q),
            state,
            submit_acl,
            administer_acl,
            preemptible,
            absolute_capacity: share.absolute_capacity,
            guaranteed: share.guaranteed,
            maximum: share.maximum,
            max_applications,
            max_parallel_apps,
            am_limit,
            settings,
        }
    }
}
