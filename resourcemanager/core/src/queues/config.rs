//! The queue configuration as written in YAML: the model, its serde forms, parsing and loading.
//! Validation rules live in `validate.rs`; defaults that depend on the mode are applied when the
//! tree is resolved (`resolve.rs`), so a parsed config is exactly what the file says.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use weft_common::Resource;
use weft_common::config::{ConfigError, parse_yaml};

use super::QueueConfigError;
use super::calculator::ResourceCalculator;
use super::validate;

/// The whole queue configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct QueuesConfig {
    pub scheduler: SchedulerMode,
    pub resource_calculator: ResourceCalculator,
    #[serde(skip_serializing_if = "is_default")]
    pub preemption: PreemptionConfig,
    #[serde(skip_serializing_if = "is_default")]
    pub defaults: QueueDefaults,
    #[serde(skip_serializing_if = "is_default")]
    pub root: RootQueueConfig,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, UserConfig>,
    /// Empty means [`QueuesConfig::effective_placement_rules`]' default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placement_rules: Vec<PlacementRule>,
    /// Children of the implicit `root`. Empty means a single leaf `root.default`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub queues: BTreeMap<String, QueueConfig>,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        Self {
            scheduler: SchedulerMode::Capacity,
            resource_calculator: ResourceCalculator::Dominant,
            preemption: PreemptionConfig::default(),
            defaults: QueueDefaults::default(),
            root: RootQueueConfig::default(),
            users: BTreeMap::new(),
            placement_rules: Vec::new(),
            queues: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerMode {
    /// One queue, `root.default`; apps in submission order.
    Fifo,
    /// YARN's Capacity Scheduler: guaranteed capacities with elasticity up to a maximum.
    Capacity,
    /// YARN's Fair Scheduler: weighted fair shares with minimum and maximum resources.
    Fair,
}

impl fmt::Display for SchedulerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchedulerMode::Fifo => "fifo",
            SchedulerMode::Capacity => "capacity",
            SchedulerMode::Fair => "fair",
        })
    }
}

/// Preemption monitor knobs with YARN's defaults. The capacity scheduler uses all but
/// `fair-utilization-threshold`; the fair scheduler uses `enabled`, the interval, the kill wait
/// and `fair-utilization-threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PreemptionConfig {
    pub enabled: bool,
    pub monitoring_interval_ms: u64,
    /// Containers chosen for preemption are killed this long after their AM was told.
    pub max_wait_before_kill_ms: u64,
    /// At most this fraction of the cluster is preempted per round.
    pub total_preemption_per_round: f64,
    /// Dead zone: queues within this fraction above their ideal share are left alone.
    pub max_ignored_over_capacity: f64,
    /// Fraction of a queue's excess reclaimed per round.
    pub natural_termination_factor: f64,
    /// Fair scheduler: preempt only while cluster utilization is above this.
    pub fair_utilization_threshold: f64,
}

impl Default for PreemptionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            monitoring_interval_ms: 3000,
            max_wait_before_kill_ms: 15_000,
            total_preemption_per_round: 0.1,
            max_ignored_over_capacity: 0.1,
            natural_termination_factor: 0.2,
            fair_utilization_threshold: 0.8,
        }
    }
}

/// Values for queues that don't set them (YARN's global `yarn.scheduler.capacity.*` properties
/// and the fair scheduler's `queue…Default` elements). Mode-specific like queue fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct QueueDefaults {
    /// Capacity: system-wide limit on pending + running apps; a leaf without its own
    /// `max-applications` gets this × its absolute capacity (YARN default 10000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_applications: Option<u32>,
    /// Capacity (default 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_am_resource_percent: Option<f64>,
    /// Capacity (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_limit_factor: Option<f64>,
    /// Capacity (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_user_limit_percent: Option<u32>,
    /// Capacity (default unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_apps: Option<u32>,
    /// Capacity: the cluster's maximum application priority (YARN default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_application_priority: Option<i32>,
    /// Both modes: running apps per user unless `users.<name>.max-parallel-apps` says otherwise
    /// (CS `user.max-parallel-apps`, FS `userMaxAppsDefault`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_apps_per_user: Option<u32>,
    /// Fair (default unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_running_apps: Option<u32>,
    /// Fair (default 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_am_share: Option<f64>,
    /// Fair (default unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_resources: Option<ResourceLimit>,
    /// Fair (default `fair`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling_policy: Option<SchedulingPolicy>,
    /// Fair (default never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_share_preemption_timeout_ms: Option<u64>,
    /// Fair (default never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fair_share_preemption_timeout_ms: Option<u64>,
    /// Fair (default 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fair_share_preemption_threshold: Option<f64>,
}

/// The implicit root queue. Its ACLs default to `*` as in YARN, and since a permission on any
/// ancestor grants it, restrict root first (e.g. `acl-submit-applications: " "`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RootQueueConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<QueueState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl_submit_applications: Option<Acl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl_administer_queue: Option<Acl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemptible: Option<bool>,
}

/// Per-user limits and static group membership (the RM has no LDAP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct UserConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_apps: Option<u32>,
    /// The first group is the user's primary group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// One queue. Fields of both modes live here and are checked against `scheduler` by the
/// validator, which gives clearer errors than separate structs would (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct QueueConfig {
    /// Only needed for a childless parent that holds queues created by placement rules.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<QueueKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<QueueState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl_submit_applications: Option<Acl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl_administer_queue: Option<Acl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemptible: Option<bool>,

    // Capacity mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<ResourceLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_limit_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_user_limit_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_applications: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_am_resource_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_apps: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_apps_per_user: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_application_priority: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_application_priority: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering_policy: Option<OrderingPolicy>,
    /// Queue priority among siblings (YARN's priority-utilization ordering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,

    // Fair mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_resources: Option<ResourceAmount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_resources: Option<ResourceLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_running_apps: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_am_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling_policy: Option<SchedulingPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_share_preemption_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fair_share_preemption_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fair_share_preemption_threshold: Option<f64>,

    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub queues: BTreeMap<String, QueueConfig>,
}

impl QueueConfig {
    /// Apps can only be submitted to leaves: queues without children not marked `type: parent`.
    pub fn is_leaf(&self) -> bool {
        self.queues.is_empty() && self.kind != Some(QueueKind::Parent)
    }

    /// A queue that a placement rule creates: weight 1 among its siblings (capacity `1w`, fair
    /// `weight: 1`) and every other setting inherited from its parent or the defaults, like YARN's
    /// flexible auto-created queues and the fair scheduler's dynamic queues. With `parent`, a
    /// childless `type: parent` that holds deeper created queues (`primary-group-user`).
    pub fn created_by_placement(mode: SchedulerMode, parent: bool) -> QueueConfig {
        QueueConfig {
            kind: parent.then_some(QueueKind::Parent),
            capacity: (mode == SchedulerMode::Capacity).then_some(Capacity::Weight(1.0)),
            weight: (mode == SchedulerMode::Fair).then_some(1.0),
            ..QueueConfig::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueKind {
    Leaf,
    Parent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueState {
    #[default]
    Running,
    /// Rejects new apps to the queue and its descendants; running apps drain.
    Stopped,
}

/// Leaf app ordering in capacity mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderingPolicy {
    /// App priority, then submission order.
    #[default]
    Fifo,
    /// Least memory in use first.
    Fair,
}

/// Fair-mode policy among a queue's children or apps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulingPolicy {
    /// Max-min fairness on memory.
    #[default]
    Fair,
    /// Dominant Resource Fairness.
    Drf,
    /// Submission order; leaves only.
    Fifo,
}

impl SchedulingPolicy {
    /// How the policy compares apps and child queues: `drf` by dominant share, the others by
    /// memory.
    pub fn calculator(self) -> ResourceCalculator {
        match self {
            SchedulingPolicy::Drf => ResourceCalculator::Dominant,
            SchedulingPolicy::Fair | SchedulingPolicy::Fifo => ResourceCalculator::Memory,
        }
    }
}

/// An amount in the YAML form `{memory-mb: 10240, vcores: 12}`: in queue files, rm.yaml and
/// simulator scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResourceAmount {
    pub memory_mb: u64,
    pub vcores: u32,
}

impl From<ResourceAmount> for Resource {
    fn from(r: ResourceAmount) -> Self {
        Resource::new(r.memory_mb, r.vcores)
    }
}

impl From<Resource> for ResourceAmount {
    fn from(r: Resource) -> Self {
        ResourceAmount { memory_mb: r.memory_mb, vcores: r.vcores }
    }
}

impl fmt::Display for ResourceAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MB, {} vcores", self.memory_mb, self.vcores)
    }
}

/// A capacity-mode guarantee: `"70%"` of the parent, `"2w"` (a share of the parent by weight
/// among siblings), or `{memory-mb, vcores}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Capacity {
    Percent(f64),
    Weight(f64),
    Absolute(ResourceAmount),
}

impl Capacity {
    /// The form's name, for "siblings must use one form" errors.
    pub fn form(&self) -> &'static str {
        match self {
            Capacity::Percent(_) => "percent",
            Capacity::Weight(_) => "weight",
            Capacity::Absolute(_) => "absolute",
        }
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capacity::Percent(p) => write!(f, "{p}%"),
            Capacity::Weight(w) => write!(f, "{w}w"),
            Capacity::Absolute(r) => write!(f, "{r}"),
        }
    }
}

/// An upper bound: `"50%"` (of the parent's maximum for `max-capacity`, of the cluster for
/// `max-resources`, as in YARN) or `{memory-mb, vcores}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResourceLimit {
    Percent(f64),
    Absolute(ResourceAmount),
}

impl fmt::Display for ResourceLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceLimit::Percent(p) => write!(f, "{p}%"),
            ResourceLimit::Absolute(r) => write!(f, "{r}"),
        }
    }
}

/// Parses `"<number><suffix>"` (e.g. `70%`, `2.5w`) into a finite number.
fn number_with_suffix(text: &str, suffix: char) -> Option<f64> {
    let number: f64 = text.trim().strip_suffix(suffix)?.trim().parse().ok()?;
    number.is_finite().then_some(number)
}

const CAPACITY_FORMS: &str = "`70%` (percent of the parent), `2w` (weight) or `{memory-mb: 10240, vcores: 12}`";
const LIMIT_FORMS: &str = "`50%` or `{memory-mb: 10240, vcores: 12}`";

impl<'de> Deserialize<'de> for Capacity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CapacityVisitor;
        impl<'de> Visitor<'de> for CapacityVisitor {
            type Value = Capacity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a capacity: {CAPACITY_FORMS}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Capacity, E> {
                if let Some(p) = number_with_suffix(v, '%') {
                    Ok(Capacity::Percent(p))
                } else if let Some(w) = number_with_suffix(v, 'w') {
                    Ok(Capacity::Weight(w))
                } else {
                    Err(E::custom(format!("invalid capacity {v:?}: write {CAPACITY_FORMS}")))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Capacity, A::Error> {
                ResourceAmount::deserialize(MapAccessDeserializer::new(map)).map(Capacity::Absolute)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Capacity, E> {
                Err(E::custom(format!(
                    "a bare number is ambiguous: write `{v}%` for a percentage or `{v}w` for a weight"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Capacity, E> {
                Err(E::custom(format!("invalid capacity {v}: write {CAPACITY_FORMS}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Capacity, E> {
                Err(E::custom(format!(
                    "a bare number is ambiguous: write `{v}%` for a percentage or `{v}w` for a weight"
                )))
            }
        }
        deserializer.deserialize_any(CapacityVisitor)
    }
}

impl Serialize for Capacity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Capacity::Absolute(r) => r.serialize(serializer),
            other => serializer.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for ResourceLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl<'de> Visitor<'de> for LimitVisitor {
            type Value = ResourceLimit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a limit: {LIMIT_FORMS}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ResourceLimit, E> {
                number_with_suffix(v, '%')
                    .map(ResourceLimit::Percent)
                    .ok_or_else(|| E::custom(format!("invalid limit {v:?}: write {LIMIT_FORMS}")))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ResourceLimit, A::Error> {
                ResourceAmount::deserialize(MapAccessDeserializer::new(map)).map(ResourceLimit::Absolute)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ResourceLimit, E> {
                Err(E::custom(format!("a bare number is ambiguous: write `{v}%` or {{memory-mb: …, vcores: …}}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ResourceLimit, E> {
                Err(E::custom(format!("a bare number is ambiguous: write `{v}%` or {{memory-mb: …, vcores: …}}")))
            }
        }
        deserializer.deserialize_any(LimitVisitor)
    }
}

impl Serialize for ResourceLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ResourceLimit::Absolute(r) => r.serialize(serializer),
            other => serializer.collect_str(other),
        }
    }
}

/// A YARN access control list: `"user1,user2 group1,group2"`, `"*"` for anyone, `" "` for
/// nobody. Written back in that canonical form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    pub everyone: bool,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl Acl {
    pub fn everyone() -> Acl {
        Acl { everyone: true, users: Vec::new(), groups: Vec::new() }
    }

    pub fn nobody() -> Acl {
        Acl::default()
    }

    /// YARN's `AccessControlList` parsing: users before the first space, groups after it, both
    /// comma-separated; `*` in either part means everyone.
    pub fn parse(text: &str) -> Acl {
        let (users, groups) = text.split_once(' ').unwrap_or((text, ""));
        if users.trim() == "*" || groups.trim() == "*" {
            return Acl::everyone();
        }
        fn names(part: &str) -> Vec<String> {
            let mut names: Vec<String> = Vec::new();
            for name in part.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            names
        }
        Acl { everyone: false, users: names(users), groups: names(groups) }
    }

    pub fn allows(&self, user: &str, groups: &[String]) -> bool {
        self.everyone || self.users.iter().any(|u| u == user) || self.groups.iter().any(|g| groups.contains(g))
    }

    /// Everyone allowed by either list (a permission on a queue or any ancestor grants it).
    pub fn union(&self, other: &Acl) -> Acl {
        if self.everyone || other.everyone {
            return Acl::everyone();
        }
        let mut merged = self.clone();
        for user in &other.users {
            if !merged.users.contains(user) {
                merged.users.push(user.clone());
            }
        }
        for group in &other.groups {
            if !merged.groups.contains(group) {
                merged.groups.push(group.clone());
            }
        }
        merged
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.everyone {
            return f.write_str("*");
        }
        if self.users.is_empty() && self.groups.is_empty() {
            return f.write_str(" ");
        }
        f.write_str(&self.users.join(","))?;
        if !self.groups.is_empty() {
            write!(f, " {}", self.groups.join(","))?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Acl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Acl::parse(&text))
    }
}

impl Serialize for Acl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A placement rule. In YAML either a bare name (`- specified`, `- reject`, `- user`) or a
/// one-key map with options (`- user: {parent: root.users, create: true}`).
#[derive(Debug, Clone, PartialEq)]
pub enum PlacementRule {
    /// The queue named at submission (full path or unique leaf name). An app submitted to
    /// `default` (or to no queue) falls through to the next rule, as in YARN.
    Specified(SpecifiedRule),
    /// `<parent>.<user>`; without `parent`, the leaf named after the user, created under root.
    User(DynamicRule),
    /// `<parent>.<primary group>`; without `parent`, the leaf named after the group.
    PrimaryGroup(DynamicRule),
    /// `<parent>.<primary group>.<user>` (YARN's `%primary_group.%user`, FS `nestedUserQueue`).
    PrimaryGroupUser(DynamicRule),
    /// A fixed queue for one user (CS `u:alice:queue`).
    MapUser(MapUserRule),
    /// A fixed queue for members of one group (CS `g:eng:queue`).
    MapGroup(MapGroupRule),
    /// Terminal: always places in `queue`.
    Default(DefaultRule),
    /// Terminal: rejects the submission.
    Reject,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SpecifiedRule {
    /// Create the named queue if missing (only under parents that take dynamic queues).
    pub create: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DynamicRule {
    /// Full path of the parent queue; absent means root (or a leaf found by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Create missing queues; otherwise a missing queue falls through to the next rule.
    pub create: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MapUserRule {
    pub user: String,
    pub queue: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MapGroupRule {
    pub group: String,
    pub queue: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DefaultRule {
    /// Full path of a leaf.
    pub queue: String,
}

impl Default for DefaultRule {
    fn default() -> Self {
        Self { queue: "root.default".into() }
    }
}

const RULE_NAMES: &[&str] =
    &["specified", "user", "primary-group", "primary-group-user", "map-user", "map-group", "default", "reject"];

impl PlacementRule {
    pub fn name(&self) -> &'static str {
        match self {
            PlacementRule::Specified(_) => "specified",
            PlacementRule::User(_) => "user",
            PlacementRule::PrimaryGroup(_) => "primary-group",
            PlacementRule::PrimaryGroupUser(_) => "primary-group-user",
            PlacementRule::MapUser(_) => "map-user",
            PlacementRule::MapGroup(_) => "map-group",
            PlacementRule::Default(_) => "default",
            PlacementRule::Reject => "reject",
        }
    }

    /// Terminal rules always decide, so they must come last.
    pub fn is_terminal(&self) -> bool {
        matches!(self, PlacementRule::Default(_) | PlacementRule::Reject)
    }
}

impl<'de> Deserialize<'de> for PlacementRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = PlacementRule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a placement rule: a name such as `specified`, or a map such as `user: {parent: root.users}`",
                )
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<PlacementRule, E> {
                match name {
                    "specified" => Ok(PlacementRule::Specified(SpecifiedRule::default())),
                    "user" => Ok(PlacementRule::User(DynamicRule::default())),
                    "primary-group" => Ok(PlacementRule::PrimaryGroup(DynamicRule::default())),
                    "primary-group-user" => Ok(PlacementRule::PrimaryGroupUser(DynamicRule::default())),
                    "default" => Ok(PlacementRule::Default(DefaultRule::default())),
                    "reject" => Ok(PlacementRule::Reject),
                    "map-user" => {
                        Err(E::custom("`map-user` needs options: `- map-user: {user: alice, queue: root.a}`"))
                    }
                    "map-group" => {
                        Err(E::custom("`map-group` needs options: `- map-group: {group: eng, queue: root.a}`"))
                    }
                    other => Err(E::unknown_variant(other, RULE_NAMES)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PlacementRule, A::Error> {
                let Some(name) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("empty placement rule"));
                };
                let rule = match name.as_str() {
                    "specified" => PlacementRule::Specified(map.next_value()?),
                    "user" => PlacementRule::User(map.next_value()?),
                    "primary-group" => PlacementRule::PrimaryGroup(map.next_value()?),
                    "primary-group-user" => PlacementRule::PrimaryGroupUser(map.next_value()?),
                    "map-user" => PlacementRule::MapUser(map.next_value()?),
                    "map-group" => PlacementRule::MapGroup(map.next_value()?),
                    "default" => PlacementRule::Default(map.next_value()?),
                    "reject" => return Err(de::Error::custom("`reject` takes no options: write `- reject`")),
                    other => return Err(de::Error::unknown_variant(other, RULE_NAMES)),
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "one rule per list item: `{name}` is followed by another key (indent its options under it)"
                    )));
                }
                Ok(rule)
            }
        }
        deserializer.deserialize_any(RuleVisitor)
    }
}

impl Serialize for PlacementRule {
    /// The bare name when every option has its default, else a one-key map.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn with_options<S: Serializer, T: Serialize>(s: S, name: &str, options: &T) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry(name, options)?;
            map.end()
        }
        let name = self.name();
        match self {
            PlacementRule::Specified(o) if *o != SpecifiedRule::default() => with_options(serializer, name, o),
            PlacementRule::User(o) | PlacementRule::PrimaryGroup(o) | PlacementRule::PrimaryGroupUser(o)
                if *o != DynamicRule::default() =>
            {
                with_options(serializer, name, o)
            }
            PlacementRule::MapUser(o) => with_options(serializer, name, o),
            PlacementRule::MapGroup(o) => with_options(serializer, name, o),
            PlacementRule::Default(o) if *o != DefaultRule::default() => with_options(serializer, name, o),
            _ => serializer.serialize_str(name),
        }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl QueuesConfig {
    /// Parses and validates YAML text; `source_name` (usually the path) appears in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<QueuesConfig, QueueConfigError> {
        let config: QueuesConfig = parse_yaml(text, source_name)?;
        config.validate().map_err(|problems| QueueConfigError::Invalid {
            source_name: source_name.to_owned(),
            problems: problems.located_in(text),
        })?;
        Ok(config)
    }

    /// Reads, parses and validates a queue configuration file.
    pub fn load(path: &Path) -> Result<QueuesConfig, QueueConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        QueuesConfig::parse(&text, &path.display().to_string())
    }

    /// The config as YAML (what the importers write); parses back to an equal config.
    pub(crate) fn to_yaml(&self) -> Result<String, serde_saphyr::SerializeError> {
        serde_saphyr::to_string(self)
    }

    /// Checks every rule (see `validate.rs`) and returns all problems found.
    pub fn validate(&self) -> Result<(), validate::Problems> {
        validate::validate(self)
    }

    /// The children of root, with YARN's implicit single `default` leaf when none are configured.
    pub fn effective_queues(&self) -> Cow<'_, BTreeMap<String, QueueConfig>> {
        if !self.queues.is_empty() {
            return Cow::Borrowed(&self.queues);
        }
        let capacity = (self.scheduler == SchedulerMode::Capacity).then_some(Capacity::Percent(100.0));
        Cow::Owned(BTreeMap::from([("default".to_owned(), QueueConfig { capacity, ..QueueConfig::default() })]))
    }

    /// Adds `queue` as child `name` of the existing parent queue at the full path `parent`
    /// (`root`, `root.users`). Root's implicit `default` leaf is written out first, so a new
    /// sibling does not make it disappear. The result is not validated; resolve it to check.
    pub fn insert_queue(&mut self, parent: &str, name: &str, queue: QueueConfig) -> Result<(), String> {
        let mut segments = parent.split('.');
        if segments.next() != Some("root") {
            return Err(format!("{parent} is not a full queue path such as root.users"));
        }
        if self.queues.is_empty() {
            self.queues = self.effective_queues().into_owned();
        }
        let mut children = &mut self.queues;
        for segment in segments {
            let queue = children.get_mut(segment).ok_or_else(|| format!("no queue {parent}"))?;
            if queue.is_leaf() {
                return Err(format!("{parent} is a leaf queue"));
            }
            children = &mut queue.queues;
        }
        if children.contains_key(name) {
            return Err(format!("queue {parent}.{name} already exists"));
        }
        children.insert(name.to_owned(), queue);
        Ok(())
    }

    /// The configured rules, or when none: `specified` then `default` if `root.default` is a
    /// leaf (YARN sends apps without a queue to `default`), else `specified` then `reject`.
    pub fn effective_placement_rules(&self) -> Vec<PlacementRule> {
        if !self.placement_rules.is_empty() {
            return self.placement_rules.clone();
        }
        let has_default_leaf = self.effective_queues().get("default").is_some_and(QueueConfig::is_leaf);
        let last =
            if has_default_leaf { PlacementRule::Default(DefaultRule::default()) } else { PlacementRule::Reject };
        vec![PlacementRule::Specified(SpecifiedRule::default()), last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_parsing_follows_yarn() {
        let acl = Acl::parse("alice,bob devs,ops");
        assert_eq!(acl.users, ["alice", "bob"]);
        assert_eq!(acl.groups, ["devs", "ops"]);
        assert_eq!(acl.to_string(), "alice,bob devs,ops");
        assert!(Acl::parse("*").everyone);
        assert!(Acl::parse(" *").everyone);
        let nobody = Acl::parse(" ");
        assert_eq!(nobody, Acl::nobody());
        assert_eq!(nobody.to_string(), " ");
        let groups_only = Acl::parse(" devs");
        assert!(groups_only.users.is_empty());
        assert_eq!(Acl::parse(&groups_only.to_string()), groups_only);
        assert!(groups_only.allows("carol", &["devs".to_owned()]));
        assert!(!groups_only.allows("devs", &[]));
        assert_eq!(Acl::parse("a").union(&Acl::parse(" g")).to_string(), "a g");
    }

    #[test]
    fn capacity_forms_parse_and_print() {
        let parse = |y: &str| parse_yaml::<BTreeMap<String, Capacity>>(y, "t").map(|m| m["c"]);
        assert_eq!(parse("c: 70%").unwrap(), Capacity::Percent(70.0));
        assert_eq!(parse("c: 12.5%").unwrap(), Capacity::Percent(12.5));
        assert_eq!(parse("c: 2w").unwrap(), Capacity::Weight(2.0));
        assert_eq!(
            parse("c: {memory-mb: 10240, vcores: 12}").unwrap(),
            Capacity::Absolute(ResourceAmount { memory_mb: 10240, vcores: 12 })
        );
        let err = parse("c: 70").unwrap_err().to_string();
        assert!(err.contains("write `70%`"), "{err}");
        let err = parse("c: lots").unwrap_err().to_string();
        assert!(err.contains("invalid capacity \"lots\""), "{err}");
        assert_eq!(Capacity::Percent(33.3).to_string(), "33.3%");
        assert_eq!(Capacity::Weight(2.0).to_string(), "2w");
    }

    #[test]
    fn example_files_survive_a_yaml_round_trip() {
        for (name, text) in [
            ("queues-capacity.yaml", include_str!("../../../../config/queues-capacity.yaml")),
            ("queues-fair.yaml", include_str!("../../../../config/queues-fair.yaml")),
        ] {
            let config = QueuesConfig::parse(text, name).unwrap();
            let yaml = config.to_yaml().unwrap();
            assert_eq!(QueuesConfig::parse(&yaml, "emitted").unwrap(), config, "{yaml}");
        }
    }

    #[test]
    fn insert_queue_adds_under_existing_parents_and_keeps_the_implicit_default() {
        let mut config = QueuesConfig { scheduler: SchedulerMode::Fair, ..QueuesConfig::default() };
        let parent = QueueConfig::created_by_placement(SchedulerMode::Fair, true);
        config.insert_queue("root", "eng", parent).unwrap();
        config.insert_queue("root.eng", "zoe", QueueConfig::created_by_placement(SchedulerMode::Fair, false)).unwrap();
        assert!(config.queues["default"].is_leaf(), "root.default is kept");
        assert_eq!(config.queues["eng"].kind, Some(QueueKind::Parent));
        assert_eq!(config.queues["eng"].queues["zoe"].weight, Some(1.0));
        config.validate().unwrap();

        let leaf = QueueConfig::created_by_placement(SchedulerMode::Fair, false);
        assert_eq!(
            config.insert_queue("root.eng", "zoe", leaf.clone()).unwrap_err(),
            "queue root.eng.zoe already exists"
        );
        assert_eq!(config.insert_queue("root.nope", "x", leaf.clone()).unwrap_err(), "no queue root.nope");
        assert_eq!(config.insert_queue("root.default", "x", leaf.clone()).unwrap_err(), "root.default is a leaf queue");
        assert!(config.insert_queue("eng", "x", leaf).unwrap_err().contains("not a full queue path"));
        let capacity = QueueConfig::created_by_placement(SchedulerMode::Capacity, false);
        assert_eq!((capacity.capacity, capacity.weight, capacity.kind), (Some(Capacity::Weight(1.0)), None, None));
    }

    #[test]
    fn placement_rules_short_and_long_forms() {
        let rules: Vec<PlacementRule> = parse_yaml(
            "- specified\n- user: {parent: root.users, create: true}\n- map-user: {user: a, queue: root.x}\n- default\n",
            "t",
        )
        .unwrap();
        assert_eq!(rules[0], PlacementRule::Specified(SpecifiedRule { create: false }));
        assert_eq!(rules[1], PlacementRule::User(DynamicRule { parent: Some("root.users".into()), create: true }));
        assert_eq!(rules[3], PlacementRule::Default(DefaultRule { queue: "root.default".into() }));
        let json = serde_json::to_value(&rules).unwrap();
        assert_eq!(json[0], "specified");
        assert_eq!(json[1]["user"]["parent"], "root.users");
        assert_eq!(json[3], "default");
        let err = parse_yaml::<Vec<PlacementRule>>("- specifed\n", "t").unwrap_err().to_string();
        assert!(err.contains("unknown variant `specifed`") && err.contains("line 1"), "{err}");
        let err =
            parse_yaml::<Vec<PlacementRule>>("- user: {parent: root.u, creat: true}\n", "t").unwrap_err().to_string();
        assert!(err.contains("unknown field `creat`"), "{err}");
    }
}
