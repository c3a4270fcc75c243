//! Validation of a parsed [`QueuesConfig`]: every rule that serde cannot express. All problems are
//! collected (not just the first) so `weft config check` can show them together; each names the
//! queue path and the field, and [`Problems::located_in`] adds the line of the YAML source.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use weft_common::Resource;

use super::config::{
    Acl, Capacity, DynamicRule, PlacementRule, PreemptionConfig, QueueConfig, QueueDefaults, QueueKind, QueuesConfig,
    ResourceLimit, SchedulerMode, SchedulingPolicy, UserConfig,
};

/// One broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Full path of the queue concerned (`root.prod.etl`), if any.
    pub queue: Option<String>,
    /// The field as written in YAML (`capacity`, `placement-rules[2].parent`, `defaults.weight`).
    pub field: String,
    pub message: String,
    /// 1-based line in the YAML source, when parsed from text.
    pub line: Option<u32>,
    /// Keys from the document root to the offending node, to look the line up.
    yaml_path: Vec<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(queue) = &self.queue {
            write!(f, "queue {queue}: ")?;
        }
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

/// Every problem found in one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(f, "{count} problem{}", if count == 1 { "" } else { "s" })?;
        for problem in &self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl Problems {
    /// Fills in each problem's line from the YAML text it was parsed from (the line of the
    /// offending key, or of its nearest enclosing key when the field is missing).
    pub fn located_in(mut self, text: &str) -> Problems {
        let lines = key_lines(text);
        for problem in &mut self.0 {
            problem.line =
                (0..=problem.yaml_path.len()).rev().find_map(|len| lines.get(&problem.yaml_path[..len]).copied());
        }
        // In the order of the file; problems without a line keep their place at the end.
        self.0.sort_by_key(|problem| problem.line.unwrap_or(u32::MAX));
        self
    }
}

/// Line of every mapping key and sequence item, by path from the root (sequence items by index).
fn key_lines(text: &str) -> BTreeMap<Vec<String>, u32> {
    struct Node(Vec<(Vec<String>, u32)>);

    fn nest(prefix: String, line: u32, inner: Node, into: &mut Vec<(Vec<String>, u32)>) {
        into.push((vec![prefix.clone()], line));
        for (mut path, line) in inner.0 {
            path.insert(0, prefix.clone());
            into.push((path, line));
        }
    }

    impl<'de> Deserialize<'de> for Node {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct NodeVisitor;
            impl<'de> Visitor<'de> for NodeVisitor {
                type Value = Node;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("any YAML node")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                    let mut lines = Vec::new();
                    while let Some(key) = map.next_key::<serde_saphyr::Spanned<String>>()? {
                        let value: Node = map.next_value()?;
                        nest(key.value, key.referenced.line() as u32, value, &mut lines);
                    }
                    Ok(Node(lines))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                    let mut lines = Vec::new();
                    let mut index = 0;
                    while let Some(item) = seq.next_element::<serde_saphyr::Spanned<Node>>()? {
                        nest(index.to_string(), item.referenced.line() as u32, item.value, &mut lines);
                        index += 1;
                    }
                    Ok(Node(lines))
                }
                fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                    Ok(Node(Vec::new()))
                }
                fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                    Ok(Node(Vec::new()))
                }
                fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                    Ok(Node(Vec::new()))
                }
                fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                    Ok(Node(Vec::new()))
                }
                fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                    Ok(Node(Vec::new()))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                    Ok(Node(Vec::new()))
                }
                fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                    Ok(Node(Vec::new()))
                }
            }
            deserializer.deserialize_any(NodeVisitor)
        }
    }

    // The text already parsed once, so this cannot fail in practice; without lines the
    // problems are still reported.
    serde_saphyr::from_str::<Node>(text).map(|node| node.0.into_iter().collect()).unwrap_or_default()
}

/// YAML keys leading to a queue: `root.prod.etl` → `queues.prod.queues.etl`; root → `root`.
fn queue_yaml_path(path: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for name in path.split('.').skip(1) {
        keys.push("queues".to_owned());
        keys.push(name.to_owned());
    }
    if keys.is_empty() {
        keys.push("root".to_owned());
    }
    keys
}

/// Capacity-mode fields, each with its fair-mode counterpart for the "wrong mode" hint.
const CAPACITY_ONLY: &[(&str, &str)] = &[
    ("capacity", "`weight` and `min-resources`"),
    ("max-capacity", "`max-resources`"),
    ("user-limit-factor", ""),
    ("minimum-user-limit-percent", ""),
    ("max-applications", ""),
    ("max-am-resource-percent", "`max-am-share`"),
    ("max-parallel-apps", "`max-running-apps`"),
    ("max-parallel-apps-per-user", "`users.<name>.max-parallel-apps`"),
    ("default-application-priority", ""),
    ("max-application-priority", ""),
    ("ordering-policy", "`scheduling-policy`"),
    ("priority", ""),
];

/// Fair-mode fields, each with its capacity-mode counterpart.
const FAIR_ONLY: &[(&str, &str)] = &[
    ("weight", "a weight capacity such as `capacity: 2w`"),
    ("min-resources", "`capacity` (percent, weight or absolute)"),
    ("max-resources", "`max-capacity`"),
    ("max-running-apps", "`max-parallel-apps`"),
    ("max-am-share", "`max-am-resource-percent`"),
    ("scheduling-policy", "`ordering-policy`"),
    ("min-share-preemption-timeout-ms", "`preemption` settings"),
    ("fair-share-preemption-timeout-ms", "`preemption` settings"),
    ("fair-share-preemption-threshold", "`preemption` settings"),
];

const CAPACITY_LEAF_ONLY: &[&str] = &[
    "user-limit-factor",
    "minimum-user-limit-percent",
    "max-applications",
    "max-am-resource-percent",
    "max-parallel-apps-per-user",
    "default-application-priority",
    "max-application-priority",
    "ordering-policy",
];

/// The names of the mode-specific fields a queue sets.
fn set_fields(q: &QueueConfig) -> Vec<&'static str> {
    let set = [
        ("capacity", q.capacity.is_some()),
        ("max-capacity", q.max_capacity.is_some()),
        ("user-limit-factor", q.user_limit_factor.is_some()),
        ("minimum-user-limit-percent", q.minimum_user_limit_percent.is_some()),
        ("max-applications", q.max_applications.is_some()),
        ("max-am-resource-percent", q.max_am_resource_percent.is_some()),
        ("max-parallel-apps", q.max_parallel_apps.is_some()),
        ("max-parallel-apps-per-user", q.max_parallel_apps_per_user.is_some()),
        ("default-application-priority", q.default_application_priority.is_some()),
        ("max-application-priority", q.max_application_priority.is_some()),
        ("ordering-policy", q.ordering_policy.is_some()),
        ("priority", q.priority.is_some()),
        ("weight", q.weight.is_some()),
        ("min-resources", q.min_resources.is_some()),
        ("max-resources", q.max_resources.is_some()),
        ("max-running-apps", q.max_running_apps.is_some()),
        ("max-am-share", q.max_am_share.is_some()),
        ("scheduling-policy", q.scheduling_policy.is_some()),
        ("min-share-preemption-timeout-ms", q.min_share_preemption_timeout_ms.is_some()),
        ("fair-share-preemption-timeout-ms", q.fair_share_preemption_timeout_ms.is_some()),
        ("fair-share-preemption-threshold", q.fair_share_preemption_threshold.is_some()),
    ];
    set.into_iter().filter(|(_, is_set)| *is_set).map(|(name, _)| name).collect()
}

/// The mode-specific defaults that are set (`max-parallel-apps-per-user` applies to both modes).
fn defaults_set_fields(d: &QueueDefaults) -> Vec<&'static str> {
    let set = [
        ("max-applications", d.max_applications.is_some()),
        ("max-am-resource-percent", d.max_am_resource_percent.is_some()),
        ("user-limit-factor", d.user_limit_factor.is_some()),
        ("minimum-user-limit-percent", d.minimum_user_limit_percent.is_some()),
        ("max-parallel-apps", d.max_parallel_apps.is_some()),
        ("max-application-priority", d.max_application_priority.is_some()),
        ("max-running-apps", d.max_running_apps.is_some()),
        ("max-am-share", d.max_am_share.is_some()),
        ("max-resources", d.max_resources.is_some()),
        ("scheduling-policy", d.scheduling_policy.is_some()),
        ("min-share-preemption-timeout-ms", d.min_share_preemption_timeout_ms.is_some()),
        ("fair-share-preemption-timeout-ms", d.fair_share_preemption_timeout_ms.is_some()),
        ("fair-share-preemption-threshold", d.fair_share_preemption_threshold.is_some()),
    ];
    set.into_iter().filter(|(_, is_set)| *is_set).map(|(name, _)| name).collect()
}

/// Tolerance for percentages of siblings summing to 100 (as YARN's epsilon).
const PERCENT_SUM_TOLERANCE: f64 = 0.01;

struct Validator {
    mode: SchedulerMode,
    /// `defaults.max-application-priority`, the bound for leaves that don't set their own.
    default_max_application_priority: Option<i32>,
    problems: Vec<Problem>,
}

impl Validator {
    fn report(&mut self, queue: Option<&str>, field: &str, yaml_path: Vec<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            queue: queue.map(str::to_owned),
            field: field.to_owned(),
            message: message.into(),
            line: None,
            yaml_path,
        });
    }

    fn queue_problem(&mut self, path: &str, field: &str, message: impl Into<String>) {
        // Root's settings live under the top-level `root`, but its children under `queues`.
        let yaml_path = if path == "root" && field == "queues" {
            vec!["queues".to_owned()]
        } else {
            let mut keys = queue_yaml_path(path);
            keys.push(field.to_owned());
            keys
        };
        self.report(Some(path), field, yaml_path, message);
    }

    fn global_problem(&mut self, keys: &[&str], message: impl Into<String>) {
        let field = keys.join(".");
        self.report(None, &field, keys.iter().map(|k| (*k).to_owned()).collect(), message);
    }

    fn rule_problem(&mut self, index: usize, field: &str, message: impl Into<String>) {
        let label = if field.is_empty() {
            format!("placement-rules[{index}]")
        } else {
            format!("placement-rules[{index}].{field}")
        };
        let yaml_path = vec!["placement-rules".to_owned(), index.to_string()];
        self.report(None, &label, yaml_path, message);
    }

    fn check_fraction(&mut self, keys: &[&str], value: f64, low: f64, high: f64) {
        if !(low..=high).contains(&value) {
            self.global_problem(keys, format!("must be within {low}..={high}, got {value}"));
        }
    }

    fn check_preemption(&mut self, p: &PreemptionConfig) {
        if p.monitoring_interval_ms == 0 {
            self.global_problem(&["preemption", "monitoring-interval-ms"], "must be positive");
        }
        if !(p.total_preemption_per_round > 0.0 && p.total_preemption_per_round <= 1.0) {
            self.global_problem(
                &["preemption", "total-preemption-per-round"],
                format!("must be within (0, 1], got {}", p.total_preemption_per_round),
            );
        }
        self.check_fraction(&["preemption", "max-ignored-over-capacity"], p.max_ignored_over_capacity, 0.0, 1.0);
        if !(p.natural_termination_factor > 0.0 && p.natural_termination_factor <= 1.0) {
            self.global_problem(
                &["preemption", "natural-termination-factor"],
                format!("must be within (0, 1], got {}", p.natural_termination_factor),
            );
        }
        self.check_fraction(&["preemption", "fair-utilization-threshold"], p.fair_utilization_threshold, 0.0, 1.0);
    }

    fn check_defaults(&mut self, d: &QueueDefaults) {
        for field in defaults_set_fields(d) {
            let belongs =
                if FAIR_ONLY.iter().any(|(f, _)| *f == field) { SchedulerMode::Fair } else { SchedulerMode::Capacity };
            if belongs != self.mode {
                self.global_problem(
                    &["defaults", field],
                    format!("is a {belongs} scheduler setting, but `scheduler` is {}", self.mode),
                );
            }
        }
        if let Some(v) = d.max_am_resource_percent {
            self.check_fraction(&["defaults", "max-am-resource-percent"], v, 0.0, 1.0);
        }
        if let Some(v) = d.user_limit_factor
            && !valid_user_limit_factor(v)
        {
            self.global_problem(&["defaults", "user-limit-factor"], format!("must be > 0 or -1 (disabled), got {v}"));
        }
        if let Some(v) = d.minimum_user_limit_percent
            && !(1..=100).contains(&v)
        {
            self.global_problem(
                &["defaults", "minimum-user-limit-percent"],
                format!("must be within 1..=100, got {v}"),
            );
        }
        if let Some(v) = d.max_application_priority
            && v < 0
        {
            self.global_problem(&["defaults", "max-application-priority"], format!("must not be negative, got {v}"));
        }
        if let Some(v) = d.max_am_share
            && !valid_am_share(v)
        {
            self.global_problem(
                &["defaults", "max-am-share"],
                format!("must be within 0..=1 or -1 (disabled), got {v}"),
            );
        }
        if let Some(ResourceLimit::Percent(p)) = d.max_resources {
            self.check_fraction(&["defaults", "max-resources"], p, 0.0, 100.0);
        }
        if d.scheduling_policy == Some(SchedulingPolicy::Fifo) {
            self.global_problem(
                &["defaults", "scheduling-policy"],
                "`fifo` is only allowed on leaves, and the default applies to parents too",
            );
        }
        for (key, timeout) in [
            ("min-share-preemption-timeout-ms", d.min_share_preemption_timeout_ms),
            ("fair-share-preemption-timeout-ms", d.fair_share_preemption_timeout_ms),
        ] {
            if timeout == Some(0) {
                self.global_problem(&["defaults", key], "must be positive (leave it out for never)");
            }
        }
        if let Some(v) = d.fair_share_preemption_threshold {
            self.check_fraction(&["defaults", "fair-share-preemption-threshold"], v, 0.0, 1.0);
        }
    }

    fn check_users(&mut self, users: &BTreeMap<String, UserConfig>) {
        for (name, user) in users {
            if name.trim().is_empty() || name.contains(char::is_whitespace) {
                self.global_problem(&["users", name], "user names must be non-empty and without spaces");
            }
            for group in &user.groups {
                if group.is_empty() || group.contains(char::is_whitespace) {
                    self.global_problem(
                        &["users", name, "groups"],
                        format!("group names must be non-empty and without spaces, got {group:?}"),
                    );
                }
            }
        }
    }

    /// Checks one queue and, recursively, its children.
    /// `absolute_allowed`: the parent is root or has an absolute capacity itself.
    fn check_queue(&mut self, path: &str, q: &QueueConfig, absolute_allowed: bool, parent_preemptible: bool) {
        let leaf = q.is_leaf();
        if q.kind == Some(QueueKind::Leaf) && !q.queues.is_empty() {
            self.queue_problem(path, "type", "a `leaf` cannot have child queues");
        }
        self.check_mode_fields(path, q, leaf);
        let preemptible = match self.mode {
            SchedulerMode::Fair => {
                if !parent_preemptible && q.preemptible == Some(true) {
                    self.queue_problem(
                        path,
                        "preemptible",
                        "has no effect: an ancestor is not preemptible, and in fair mode that applies to the whole subtree",
                    );
                }
                parent_preemptible && q.preemptible.unwrap_or(true)
            }
            _ => q.preemptible.unwrap_or(parent_preemptible),
        };
        match self.mode {
            SchedulerMode::Capacity => self.check_capacity_queue(path, q, leaf, absolute_allowed),
            SchedulerMode::Fair => self.check_fair_queue(path, q, leaf),
            SchedulerMode::Fifo => {}
        }
        for name in q.queues.keys() {
            self.check_name(path, name);
        }
        if self.mode == SchedulerMode::Capacity {
            self.check_capacity_siblings(path, q);
        }
        let children_absolute_allowed = path == "root" || matches!(q.capacity, Some(Capacity::Absolute(_)));
        for (name, child) in &q.queues {
            self.check_queue(&format!("{path}.{name}"), child, children_absolute_allowed, preemptible);
        }
    }

    fn check_name(&mut self, parent: &str, name: &str) {
        if name.is_empty() || name.contains('.') || name.contains(char::is_whitespace) {
            // Built from the parent: a dotted name would not split back into the right keys.
            let mut yaml_path = if parent == "root" { Vec::new() } else { queue_yaml_path(parent) };
            yaml_path.extend(["queues".to_owned(), name.to_owned()]);
            let message = format!("queue names must be non-empty without '.' or spaces, got {name:?}");
            self.report(Some(&format!("{parent}.{name}")), "name", yaml_path, message);
        }
    }

    fn check_mode_fields(&mut self, path: &str, q: &QueueConfig, leaf: bool) {
        for field in set_fields(q) {
            let (belongs, counterpart) = match CAPACITY_ONLY.iter().find(|(f, _)| *f == field) {
                Some((_, hint)) => (SchedulerMode::Capacity, *hint),
                None => (SchedulerMode::Fair, FAIR_ONLY.iter().find(|(f, _)| *f == field).map_or("", |(_, h)| *h)),
            };
            if belongs != self.mode {
                let mut message = format!("is a {belongs} scheduler field, but `scheduler` is {}", self.mode);
                if !counterpart.is_empty() && self.mode != SchedulerMode::Fifo {
                    message.push_str(&format!("; use {counterpart} instead"));
                }
                self.queue_problem(path, field, message);
            } else if !leaf && (CAPACITY_LEAF_ONLY.contains(&field) || field == "max-am-share") {
                self.queue_problem(path, field, "only applies to leaf queues, and this queue is a parent");
            }
        }
    }

    fn check_capacity_queue(&mut self, path: &str, q: &QueueConfig, leaf: bool, absolute_allowed: bool) {
        match q.capacity {
            Some(Capacity::Percent(p)) if !(0.0..=100.0).contains(&p) => {
                self.queue_problem(path, "capacity", format!("percentages must be within 0..=100, got {p}%"));
            }
            Some(Capacity::Weight(w)) if w <= 0.0 => {
                self.queue_problem(path, "capacity", format!("weights must be positive, got {w}w"));
            }
            Some(Capacity::Absolute(_)) if !absolute_allowed => {
                self.queue_problem(
                    path,
                    "capacity",
                    "an absolute capacity needs an absolute parent (or root); YARN does not mix absolute with percent or weight capacities across levels",
                );
            }
            None if path != "root" => {
                self.queue_problem(
                    path,
                    "capacity",
                    "is required under `scheduler: capacity`: write `70%`, `2w` or `{memory-mb: …, vcores: …}`",
                );
            }
            _ => {}
        }
        match (q.max_capacity, q.capacity) {
            (Some(ResourceLimit::Percent(m)), _) if !(0.0..=100.0).contains(&m) => {
                self.queue_problem(path, "max-capacity", format!("percentages must be within 0..=100, got {m}%"));
            }
            (Some(ResourceLimit::Percent(m)), Some(Capacity::Percent(c))) if m < c => {
                self.queue_problem(path, "max-capacity", format!("{m}% is below the queue's capacity {c}%"));
            }
            (Some(ResourceLimit::Absolute(m)), Some(Capacity::Absolute(c))) if !Resource::from(m).fits(&c.into()) => {
                self.queue_problem(path, "max-capacity", format!("{m} is below the queue's capacity {c}"));
            }
            (Some(ResourceLimit::Absolute(_)), Some(c)) if !matches!(c, Capacity::Absolute(_)) => {
                self.queue_problem(
                    path,
                    "max-capacity",
                    format!("an absolute maximum needs an absolute capacity, but capacity is a {}", c.form()),
                );
            }
            _ => {}
        }
        if let Some(v) = q.user_limit_factor
            && !valid_user_limit_factor(v)
        {
            self.queue_problem(path, "user-limit-factor", format!("must be > 0 or -1 (disabled), got {v}"));
        }
        if let Some(v) = q.minimum_user_limit_percent
            && !(1..=100).contains(&v)
        {
            self.queue_problem(path, "minimum-user-limit-percent", format!("must be within 1..=100, got {v}"));
        }
        if let Some(v) = q.max_am_resource_percent
            && !(0.0..=1.0).contains(&v)
        {
            self.queue_problem(path, "max-am-resource-percent", format!("is a fraction within 0..=1, got {v}"));
        }
        if let Some(v) = q.max_application_priority
            && v < 0
        {
            self.queue_problem(path, "max-application-priority", format!("must not be negative, got {v}"));
        }
        let default_priority = q.default_application_priority.unwrap_or(0);
        let max_priority = q.max_application_priority.or(self.default_max_application_priority).unwrap_or(0);
        if leaf && default_priority > max_priority {
            self.queue_problem(
                path,
                "default-application-priority",
                format!("{default_priority} is above max-application-priority {max_priority}"),
            );
        }
    }

    fn check_capacity_siblings(&mut self, path: &str, q: &QueueConfig) {
        let capacities: Vec<(&String, Capacity)> =
            q.queues.iter().filter_map(|(name, child)| child.capacity.map(|c| (name, c))).collect();
        let Some((_, first)) = capacities.first() else { return };
        if capacities.iter().any(|(_, c)| c.form() != first.form()) {
            let forms: Vec<String> = capacities.iter().map(|(name, c)| format!("{name}: {}", c.form())).collect();
            self.queue_problem(
                path,
                "queues",
                format!(
                    "children mix capacity forms ({}); siblings must all use percent, all weight or all absolute",
                    forms.join(", ")
                ),
            );
            return;
        }
        match first {
            Capacity::Percent(_) => {
                let sum: f64 =
                    capacities.iter().map(|(_, c)| if let Capacity::Percent(p) = c { *p } else { 0.0 }).sum();
                if (sum - 100.0).abs() > PERCENT_SUM_TOLERANCE {
                    let parts: Vec<String> = capacities.iter().map(|(name, c)| format!("{name} {c}")).collect();
                    self.queue_problem(
                        path,
                        "queues",
                        format!(
                            "the children's capacities sum to {}%, but must sum to 100% ({})",
                            round2(sum),
                            parts.join(", ")
                        ),
                    );
                }
            }
            Capacity::Absolute(_) => {
                let mut sum = Resource::ZERO;
                for (_, c) in &capacities {
                    if let Capacity::Absolute(amount) = c {
                        sum += Resource::from(*amount);
                    }
                }
                // Root's absolute children are checked against the cluster when resolving.
                if let Some(Capacity::Absolute(own)) = q.capacity
                    && !Resource::from(own).fits(&sum)
                {
                    self.queue_problem(
                        path,
                        "queues",
                        format!(
                            "the children's absolute capacities add up to {} MB, {} vcores, above this queue's {own}",
                            sum.memory_mb, sum.vcores
                        ),
                    );
                }
            }
            Capacity::Weight(_) => {}
        }
    }

    fn check_fair_queue(&mut self, path: &str, q: &QueueConfig, leaf: bool) {
        if let Some(w) = q.weight
            && !(w > 0.0 && w.is_finite())
        {
            self.queue_problem(path, "weight", format!("must be positive, got {w}"));
        }
        match (q.min_resources, q.max_resources) {
            (_, Some(ResourceLimit::Percent(p))) if !(0.0..=100.0).contains(&p) => {
                self.queue_problem(path, "max-resources", format!("percentages must be within 0..=100, got {p}%"));
            }
            (Some(min), Some(ResourceLimit::Absolute(max))) if !Resource::from(max).fits(&min.into()) => {
                self.queue_problem(path, "min-resources", format!("{min} exceeds max-resources {max}"));
            }
            _ => {}
        }
        if let Some(v) = q.max_am_share
            && !valid_am_share(v)
        {
            self.queue_problem(path, "max-am-share", format!("must be within 0..=1 or -1 (disabled), got {v}"));
        }
        if !leaf && q.scheduling_policy == Some(SchedulingPolicy::Fifo) {
            self.queue_problem(path, "scheduling-policy", "`fifo` is only allowed on leaf queues");
        }
        for (field, timeout) in [
            ("min-share-preemption-timeout-ms", q.min_share_preemption_timeout_ms),
            ("fair-share-preemption-timeout-ms", q.fair_share_preemption_timeout_ms),
        ] {
            if timeout == Some(0) {
                self.queue_problem(path, field, "must be positive (leave it out to inherit, or for never)");
            }
        }
        if let Some(v) = q.fair_share_preemption_threshold
            && !(0.0..=1.0).contains(&v)
        {
            self.queue_problem(path, "fair-share-preemption-threshold", format!("must be within 0..=1, got {v}"));
        }
    }
}

fn valid_user_limit_factor(v: f64) -> bool {
    v == -1.0 || (v > 0.0 && v.is_finite())
}

fn valid_am_share(v: f64) -> bool {
    v == -1.0 || (0.0..=1.0).contains(&v)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Every queue by full path (root included), for placement checks.
struct Shape<'a> {
    mode: SchedulerMode,
    queues: BTreeMap<String, &'a QueueConfig>,
}

impl<'a> Shape<'a> {
    fn new(mode: SchedulerMode, root: &'a QueueConfig) -> Shape<'a> {
        fn add<'a>(path: String, q: &'a QueueConfig, into: &mut BTreeMap<String, &'a QueueConfig>) {
            for (name, child) in &q.queues {
                add(format!("{path}.{name}"), child, into);
            }
            into.insert(path, q);
        }
        let mut queues = BTreeMap::new();
        add("root".to_owned(), root, &mut queues);
        Shape { mode, queues }
    }

    fn leaves_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s String> + 's {
        self.queues
            .iter()
            .filter(move |(path, q)| q.is_leaf() && path.rsplit('.').next() == Some(name))
            .map(|(path, _)| path)
    }
}

/// Whether placement rules may create children under this parent: always in fair mode; in
/// capacity mode only when its static children use weights (as YARN's flexible auto-created
/// queues), since a new child would break a percent sum or an absolute split.
pub(crate) fn accepts_dynamic_children(mode: SchedulerMode, q: &QueueConfig) -> bool {
    !q.is_leaf()
        && match mode {
            SchedulerMode::Fair => true,
            SchedulerMode::Capacity => q.queues.values().all(|c| matches!(c.capacity, Some(Capacity::Weight(_)))),
            SchedulerMode::Fifo => false,
        }
}

impl Validator {
    fn check_leaf_names(&mut self, shape: &Shape<'_>) {
        let mut by_name: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
        for (path, q) in &shape.queues {
            if q.is_leaf() {
                by_name.entry(path.rsplit('.').next().unwrap_or(path)).or_default().push(path);
            }
        }
        for (name, paths) in by_name {
            for path in paths.iter().skip(1) {
                self.queue_problem(
                    path,
                    "name",
                    format!(
                        "leaf name `{name}` is also used by {}; leaf names must be unique because apps are submitted by short name",
                        paths[0]
                    ),
                );
            }
        }
    }

    fn check_placement(&mut self, config: &QueuesConfig, shape: &Shape<'_>) {
        let rules = &config.placement_rules;
        if self.mode == SchedulerMode::Fifo {
            if !rules.is_empty() {
                self.global_problem(
                    &["placement-rules"],
                    "the fifo scheduler has the single queue root.default; remove the rules",
                );
            }
            return;
        }
        match rules.iter().position(PlacementRule::is_terminal) {
            None if !rules.is_empty() => self.rule_problem(
                rules.len() - 1,
                "",
                "the last rule must be `default` or `reject`, so every app is either placed or rejected",
            ),
            Some(terminal) if terminal + 1 < rules.len() => self.rule_problem(
                terminal + 1,
                "",
                format!("is unreachable: rule {terminal} (`{}`) always decides", rules[terminal].name()),
            ),
            _ => {}
        }
        for (index, rule) in rules.iter().enumerate() {
            match rule {
                PlacementRule::Specified(_) | PlacementRule::Reject => {}
                PlacementRule::User(r) | PlacementRule::PrimaryGroup(r) | PlacementRule::PrimaryGroupUser(r) => {
                    self.check_rule_parent(index, r, shape);
                }
                PlacementRule::MapUser(r) => {
                    if r.user.trim().is_empty() {
                        self.rule_problem(index, "user", "must not be empty");
                    }
                    self.check_rule_leaf(index, &r.queue, shape);
                }
                PlacementRule::MapGroup(r) => {
                    if r.group.trim().is_empty() {
                        self.rule_problem(index, "group", "must not be empty");
                    }
                    self.check_rule_leaf(index, &r.queue, shape);
                }
                PlacementRule::Default(r) => self.check_rule_leaf(index, &r.queue, shape),
            }
        }
    }

    fn check_rule_leaf(&mut self, index: usize, queue: &str, shape: &Shape<'_>) {
        match shape.queues.get(queue) {
            Some(q) if q.is_leaf() => {}
            Some(_) => self.rule_problem(
                index,
                "queue",
                format!("{queue} is a parent queue; apps can only be placed in leaves"),
            ),
            None => {
                let hint = match shape.leaves_named(queue).next() {
                    Some(path) => format!(" (did you mean {path}? write full paths)"),
                    None => String::new(),
                };
                self.rule_problem(index, "queue", format!("no queue {queue}{hint}"));
            }
        }
    }

    /// The parent must be an existing parent queue, or creatable: `create: true` and its
    /// nearest existing ancestor takes dynamic children.
    fn check_rule_parent(&mut self, index: usize, rule: &DynamicRule, shape: &Shape<'_>) {
        let parent = rule.parent.as_deref().unwrap_or("root");
        if parent != "root" && !parent.starts_with("root.") || parent.split('.').any(str::is_empty) {
            self.rule_problem(index, "parent", format!("{parent:?} is not a full queue path such as root.users"));
            return;
        }
        let dynamic_hint = |path: &str| match shape.mode {
            SchedulerMode::Capacity => format!(
                "{path} cannot take created queues: in capacity mode its children must use weight capacities (`1w`), as in YARN's flexible auto-queue creation"
            ),
            _ => format!("{path} cannot take created queues"),
        };
        match shape.queues.get(parent) {
            Some(q) if q.is_leaf() => self.rule_problem(
                index,
                "parent",
                format!(
                    "{parent} is a leaf queue; give it children or `type: parent` to hold per-user or per-group queues"
                ),
            ),
            Some(q) if rule.create && !accepts_dynamic_children(shape.mode, q) => {
                self.rule_problem(index, "parent", dynamic_hint(parent));
            }
            Some(_) => {}
            None if !rule.create => {
                self.rule_problem(index, "parent", format!("no queue {parent} (set `create: true` to create it)"));
            }
            None => {
                let mut ancestor = parent;
                while let Some((up, _)) = ancestor.rsplit_once('.') {
                    ancestor = up;
                    if let Some(q) = shape.queues.get(ancestor) {
                        if q.is_leaf() {
                            self.rule_problem(
                                index,
                                "parent",
                                format!("{parent} would be created under the leaf {ancestor}"),
                            );
                        } else if !accepts_dynamic_children(shape.mode, q) {
                            self.rule_problem(index, "parent", dynamic_hint(ancestor));
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// Checks every rule; see the module docs of `queues` for the list.
pub(crate) fn validate(config: &QueuesConfig) -> Result<(), Problems> {
    let mut v = Validator {
        mode: config.scheduler,
        default_max_application_priority: config.defaults.max_application_priority,
        problems: Vec::new(),
    };
    v.check_preemption(&config.preemption);
    v.check_defaults(&config.defaults);
    v.check_users(&config.users);
    if config.scheduler == SchedulerMode::Fifo && !config.queues.is_empty() {
        // The configured tree means nothing here; checking its fields would only add noise.
        v.global_problem(
            &["queues"],
            "the fifo scheduler has the single queue root.default; remove `queues` or use `scheduler: capacity` or `fair`",
        );
        return Err(Problems(v.problems));
    }
    if config.queues.contains_key("root") {
        v.global_problem(
            &["queues", "root"],
            "`root` is implicit: put its children directly under `queues`, and its ACLs and state under the top-level `root`",
        );
    }
    let root = root_queue(config);
    v.check_queue("root", &root, true, config.root.preemptible.unwrap_or(true));
    let shape = Shape::new(config.scheduler, &root);
    v.check_leaf_names(&shape);
    v.check_placement(config, &shape);
    if v.problems.is_empty() { Ok(()) } else { Err(Problems(v.problems)) }
}

/// The implicit root as a queue: its section's settings and the effective children.
pub(crate) fn root_queue(config: &QueuesConfig) -> QueueConfig {
    QueueConfig {
        kind: Some(QueueKind::Parent),
        state: config.root.state,
        acl_submit_applications: Some(config.root.acl_submit_applications.clone().unwrap_or_else(Acl::everyone)),
        acl_administer_queue: Some(config.root.acl_administer_queue.clone().unwrap_or_else(Acl::everyone)),
        preemptible: config.root.preemptible,
        queues: config.effective_queues().into_owned(),
        ..QueueConfig::default()
    }
}
