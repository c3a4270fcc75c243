//! Importers for YARN's `capacity-scheduler.xml` and `fair-scheduler.xml`. Whatever Weft cannot
//! represent (node labels, reservations, templates of auto-created queues, unknown properties…)
//! is listed in [`Import::not_carried_over`] with the property and the reason, and repeated as
//! comments at the top of the YAML.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use roxmltree::{Document, Node};

use super::calculator::ResourceCalculator;
use super::config::{
    Acl, Capacity, DefaultRule, DynamicRule, MapGroupRule, MapUserRule, OrderingPolicy, PlacementRule, QueueConfig,
    QueueKind, QueueState, QueuesConfig, ResourceAmount, ResourceLimit, SchedulerMode, SchedulingPolicy, SpecifiedRule,
};
use super::validate::Problems;

/// The result of an import.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub config: QueuesConfig,
    /// `config` as YAML, with the items not carried over as a comment header.
    pub yaml: String,
    /// `"<property or element>: <why>"` for everything left behind.
    pub not_carried_over: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("malformed XML: {0}")]
    Xml(#[from] roxmltree::Error),
    #[error("not a {expected} file: the document element is <{found}>")]
    WrongDocument { expected: &'static str, found: String },
    #[error("{name}: invalid value {value:?}: {message}")]
    Value { name: String, value: String, message: String },
    #[error("the imported configuration is invalid (it is probably invalid in YARN too): {0}")]
    Invalid(Problems),
    #[error("cannot write the YAML: {0}")]
    Emit(#[from] serde_saphyr::SerializeError),
}

const CS: &str = "yarn.scheduler.capacity.";
const PREEMPTION: &str = "yarn.resourcemanager.monitor.capacity.preemption.";
/// A `yarn-site.xml` property, read when present; YARN's default is 0.
const CLUSTER_MAX_PRIORITY: &str = "yarn.cluster.max-application-priority";

fn invalid(name: &str, value: &str, message: impl Into<String>) -> ImportError {
    ImportError::Value { name: name.to_owned(), value: value.to_owned(), message: message.into() }
}

fn parse_number<T: FromStr>(name: &str, value: &str) -> Result<T, ImportError> {
    value.trim().parse().map_err(|_| invalid(name, value, "not a number of the expected kind"))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ImportError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, value, "expected true or false")),
    }
}

/// YARN does not trim ACL values: `" "` means nobody and `" devs"` the group devs only. A value
/// spread over lines is pretty-printed XML, whose indentation means nothing.
fn parse_acl(value: &str) -> Acl {
    if value.contains('\n') { Acl::parse(value.trim()) } else { Acl::parse(value) }
}

/// Validates, renders the YAML and assembles the [`Import`].
fn finish(config: QueuesConfig, source: &str, not_carried_over: Vec<String>) -> Result<Import, ImportError> {
    config.validate().map_err(ImportError::Invalid)?;
    let mut yaml = format!("# Imported from a YARN {source}.\n");
    if !not_carried_over.is_empty() {
        yaml.push_str("# Not carried over:\n");
        for item in &not_carried_over {
            yaml.push_str(&format!("#   - {item}\n"));
        }
    }
    yaml.push_str(&config.to_yaml()?);
    Ok(Import { config, yaml, not_carried_over })
}

// ---------------------------------------------------------------------------------------------
// capacity-scheduler.xml

/// Reads a `capacity-scheduler.xml` (Hadoop `<configuration><property>` list). Preemption
/// properties of `yarn-site.xml` found in it are carried into `preemption`.
pub fn import_capacity_scheduler_xml(xml: &str) -> Result<Import, ImportError> {
    let doc = Document::parse(xml)?;
    let properties = hadoop_properties(&doc)?;
    let values: BTreeMap<String, String> = properties.iter().cloned().collect();

    // The tree comes first: every property is then matched against the known queue paths.
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pending = vec!["root".to_owned()];
    while let Some(path) = pending.pop() {
        let names: Vec<String> = values
            .get(&format!("{CS}{path}.queues"))
            .map(|list| list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        for name in &names {
            pending.push(format!("{path}.{name}"));
        }
        children.insert(path, names);
    }

    // Known up front: properties that only apply to leaves are judged by it.
    let auto_create_parents = children
        .keys()
        .filter(|path| {
            ["auto-create-child-queue.enabled", "auto-queue-creation-v2.enabled"].iter().any(|flag| {
                values.get(&format!("{CS}{path}.{flag}")).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            })
        })
        .cloned()
        .collect();
    let mut importer = CsImporter {
        // YARN's default calculator is memory-only; `resource-calculator` may say otherwise.
        config: QueuesConfig { resource_calculator: ResourceCalculator::Memory, ..QueuesConfig::default() },
        values,
        queues: children.keys().map(|path| (path.clone(), QueueConfig::default())).collect(),
        children,
        auto_create_parents,
        mappings: None,
        mappings_override: false,
        not_carried_over: Vec::new(),
    };
    for (name, value) in &properties {
        if let Some(reason) = importer.apply(name, value)? {
            importer.not_carried_over.push(format!("{name}: {reason}"));
        }
    }
    importer.into_import()
}

fn hadoop_properties(doc: &Document<'_>) -> Result<Vec<(String, String)>, ImportError> {
    let root = doc.root_element();
    if root.tag_name().name() != "configuration" {
        return Err(ImportError::WrongDocument {
            expected: "Hadoop configuration",
            found: root.tag_name().name().to_owned(),
        });
    }
    let child_text = |property: Node<'_, '_>, tag: &str| {
        property.children().find(|c| c.has_tag_name(tag)).and_then(|c| c.text()).unwrap_or("").to_owned()
    };
    Ok(root
        .children()
        .filter(|n| n.has_tag_name("property"))
        .map(|p| (child_text(p, "name").trim().to_owned(), child_text(p, "value")))
        .collect())
}

struct CsImporter {
    config: QueuesConfig,
    /// Every property by name, for lookups that don't depend on the order in the file.
    values: BTreeMap<String, String>,
    /// Settings per full path; assembled into the nested tree at the end.
    queues: BTreeMap<String, QueueConfig>,
    children: BTreeMap<String, Vec<String>>,
    auto_create_parents: BTreeSet<String>,
    mappings: Option<(String, String)>,
    mappings_override: bool,
    not_carried_over: Vec<String>,
}

/// Queue properties Weft has no equivalent for, by suffix prefix.
const CS_QUEUE_UNSUPPORTED: &[(&str, &str)] = &[
    ("accessible-node-labels", "node labels (partitions) are not supported"),
    ("default-node-label-expression", "node labels (partitions) are not supported"),
    (
        "leaf-queue-template.",
        "templates for auto-created queues are not supported; created queues get weight 1w and the defaults",
    ),
    (
        "auto-queue-creation-v2.",
        "templates for auto-created queues are not supported; created queues get weight 1w and the defaults",
    ),
    (
        "auto-create-child-queue.",
        "templates for auto-created queues are not supported; created queues get weight 1w and the defaults",
    ),
    (
        "maximum-allocation",
        "per-queue maximum allocation is not supported; rm.yaml's scheduler.maximum-allocation applies",
    ),
    ("maximum-application-lifetime", "application lifetimes are not supported"),
    ("default-application-lifetime", "application lifetimes are not supported"),
    ("reservable", "reservations are not supported"),
    ("reservation", "reservations are not supported"),
    ("average-capacity", "reservations are not supported"),
    ("instantaneous-max-capacity", "reservations are not supported"),
    ("acl_administer_reservations", "reservations are not supported"),
    ("acl_list_reservations", "reservations are not supported"),
    ("acl_submit_reservations", "reservations are not supported"),
    ("acl_application_max_priority", "priority ACLs are not supported; use max-application-priority"),
    ("user-settings.", "per-user weights are not supported"),
    ("intra-queue-preemption.", "intra-queue preemption is not supported"),
    ("ordering-policy.", "ordering policy options are not supported"),
];

/// Global properties Weft has no equivalent for, by prefix.
const CS_GLOBAL_UNSUPPORTED: &[(&str, &str)] = &[
    ("node-locality-delay", "locality delays are not configurable"),
    ("rack-locality-", "locality delays are not configurable"),
    ("per-node-heartbeat.", "scheduler tuning knob without an equivalent"),
    ("schedule-asynchronously.", "scheduler tuning knob without an equivalent"),
    ("multi-node-", "scheduler tuning knob without an equivalent"),
    ("queue-placement-rules.app-name", "application-name placement is not supported"),
    ("mapping-rule-", "JSON mapping rules are not supported; write placement-rules instead"),
    ("lazy-preemption-enabled", "preemption option without an equivalent"),
];

/// The queue properties the importer understands.
const CS_QUEUE_PROPERTIES: &[&str] = &[
    "queues",
    "capacity",
    "maximum-capacity",
    "user-limit-factor",
    "minimum-user-limit-percent",
    "maximum-applications",
    "maximum-am-resource-percent",
    "max-parallel-apps",
    "state",
    "acl_submit_applications",
    "acl_administer_queue",
    "ordering-policy",
    "priority",
    "default-application-priority",
    "disable_preemption",
];

const UNLISTED_QUEUE: &str = "names a queue that no `queues` property lists";

/// Leaf-only capacity properties; YARN ignores them on parents.
const CS_LEAF_ONLY: &[&str] = &[
    "user-limit-factor",
    "minimum-user-limit-percent",
    "maximum-applications",
    "maximum-am-resource-percent",
    "default-application-priority",
];

impl CsImporter {
    /// Applies one property; `Some(reason)` when it is not carried over.
    fn apply(&mut self, name: &str, value: &str) -> Result<Option<String>, ImportError> {
        if let Some(knob) = name.strip_prefix(PREEMPTION) {
            return self.apply_preemption(name, knob, value);
        }
        if name == "yarn.resourcemanager.scheduler.monitor.enable" {
            self.config.preemption.enabled = parse_bool(name, value)?;
            return Ok(None);
        }
        if name == CLUSTER_MAX_PRIORITY {
            self.config.defaults.max_application_priority = Some(parse_number(name, value)?);
            return Ok(None);
        }
        let Some(key) = name.strip_prefix(CS) else {
            return Ok(Some("not a capacity-scheduler property".to_owned()));
        };
        // The longest known queue path that prefixes the key owns it.
        let owner = self
            .queues
            .keys()
            .filter(|path| {
                key.len() > path.len() + 1 && key.starts_with(path.as_str()) && key.as_bytes()[path.len()] == b'.'
            })
            .max_by_key(|path| path.len())
            .cloned();
        match owner {
            Some(path) => {
                let suffix = &key[path.len() + 1..];
                self.apply_queue(name, &path, suffix, value)
            }
            None => self.apply_global(name, key, value),
        }
    }

    fn apply_preemption(&mut self, name: &str, knob: &str, value: &str) -> Result<Option<String>, ImportError> {
        let p = &mut self.config.preemption;
        match knob {
            "monitoring_interval" => p.monitoring_interval_ms = parse_number(name, value)?,
            "max_wait_before_kill" => p.max_wait_before_kill_ms = parse_number(name, value)?,
            "total_preemption_per_round" => p.total_preemption_per_round = parse_number(name, value)?,
            "max_ignored_over_capacity" => p.max_ignored_over_capacity = parse_number(name, value)?,
            "natural_termination_factor" => p.natural_termination_factor = parse_number(name, value)?,
            _ => return Ok(Some("preemption option without an equivalent".to_owned())),
        }
        Ok(None)
    }

    fn apply_global(&mut self, name: &str, key: &str, value: &str) -> Result<Option<String>, ImportError> {
        let d = &mut self.config.defaults;
        match key {
            "maximum-applications" => d.max_applications = Some(parse_number(name, value)?),
            "maximum-am-resource-percent" => d.max_am_resource_percent = Some(parse_number(name, value)?),
            "user-limit-factor" => d.user_limit_factor = Some(parse_number(name, value)?),
            "minimum-user-limit-percent" => d.minimum_user_limit_percent = Some(parse_number(name, value)?),
            "max-parallel-apps" => d.max_parallel_apps = Some(parse_number(name, value)?),
            "user.max-parallel-apps" => d.max_parallel_apps_per_user = Some(parse_number(name, value)?),
            "resource-calculator" => {
                self.config.resource_calculator = if value.contains("DominantResourceCalculator") {
                    ResourceCalculator::Dominant
                } else if value.contains("DefaultResourceCalculator") {
                    ResourceCalculator::Memory
                } else {
                    return Err(invalid(name, value, "unknown resource calculator"));
                };
            }
            "queue-mappings" => self.mappings = Some((name.to_owned(), value.to_owned())),
            "queue-mappings-override.enable" => self.mappings_override = parse_bool(name, value)?,
            _ => {
                if let Some(user) = key.strip_prefix("user.").and_then(|k| k.strip_suffix(".max-parallel-apps")) {
                    self.config.users.entry(user.to_owned()).or_default().max_parallel_apps =
                        Some(parse_number(name, value)?);
                    return Ok(None);
                }
                let reason = CS_GLOBAL_UNSUPPORTED.iter().find(|(prefix, _)| key.starts_with(prefix));
                return Ok(Some(reason.map_or("unknown property", |(_, why)| why).to_owned()));
            }
        }
        Ok(None)
    }

    fn apply_queue(
        &mut self,
        name: &str,
        path: &str,
        suffix: &str,
        value: &str,
    ) -> Result<Option<String>, ImportError> {
        let is_root = path == "root";
        let is_parent = is_root
            || self.children.get(path).is_some_and(|c| !c.is_empty())
            || self.auto_create_parents.contains(path);
        if suffix == "queues" {
            return Ok(None);
        }
        if matches!(suffix, "auto-create-child-queue.enabled" | "auto-queue-creation-v2.enabled") {
            return Ok(parse_bool(name, value)?.then(|| {
                "only partly carried over: placement rules may create queues under it (weight 1w each), but \
                 templates and the capacity management policy are not supported"
                    .to_owned()
            }));
        }
        if is_parent && suffix == "ordering-policy" {
            return Ok(self.parent_ordering_policy(path, value));
        }
        if is_root {
            let root = &mut self.config.root;
            match suffix {
                "capacity" | "maximum-capacity" => {
                    let whole = value.trim().parse::<f64>().is_ok_and(|v| v == 100.0 || v == -1.0);
                    return Ok((!whole).then(|| "root always has the whole cluster".to_owned()));
                }
                "state" => root.state = Some(parse_state(name, value)?),
                "acl_submit_applications" => root.acl_submit_applications = Some(parse_acl(value)),
                "acl_administer_queue" => root.acl_administer_queue = Some(parse_acl(value)),
                "disable_preemption" => root.preemptible = Some(!parse_bool(name, value)?),
                _ => return Ok(Some(unsupported_queue_property(suffix, "not supported on the root queue"))),
            }
            return Ok(None);
        }
        if is_parent && CS_LEAF_ONLY.contains(&suffix) {
            return Ok(Some("only applies to leaf queues; YARN ignores it on a parent".to_owned()));
        }
        let Some(q) = self.queues.get_mut(path) else {
            return Ok(Some(UNLISTED_QUEUE.to_owned()));
        };
        match suffix {
            "capacity" => q.capacity = Some(parse_cs_capacity(name, value)?),
            "maximum-capacity" => q.max_capacity = parse_cs_maximum(name, value)?,
            "user-limit-factor" => q.user_limit_factor = Some(parse_number(name, value)?),
            "minimum-user-limit-percent" => q.minimum_user_limit_percent = Some(parse_number(name, value)?),
            "maximum-applications" => q.max_applications = Some(parse_number(name, value)?),
            "maximum-am-resource-percent" => q.max_am_resource_percent = Some(parse_number(name, value)?),
            "max-parallel-apps" => q.max_parallel_apps = Some(parse_number(name, value)?),
            "state" => q.state = Some(parse_state(name, value)?),
            "acl_submit_applications" => q.acl_submit_applications = Some(parse_acl(value)),
            "acl_administer_queue" => q.acl_administer_queue = Some(parse_acl(value)),
            "priority" => q.priority = Some(parse_number(name, value)?),
            "default-application-priority" => {
                let priority: i32 = parse_number(name, value)?;
                let cluster_max =
                    self.values.get(CLUSTER_MAX_PRIORITY).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
                if priority > cluster_max {
                    return Ok(Some(format!(
                        "{priority} is above the cluster's maximum application priority {cluster_max} ({CLUSTER_MAX_PRIORITY}), which YARN caps it to"
                    )));
                }
                q.default_application_priority = Some(priority);
            }
            "disable_preemption" => q.preemptible = Some(!parse_bool(name, value)?),
            "ordering-policy" => match value.trim() {
                "fifo" => q.ordering_policy = Some(OrderingPolicy::Fifo),
                "fair" => q.ordering_policy = Some(OrderingPolicy::Fair),
                other => return Ok(Some(format!("ordering policy `{other}` is not supported"))),
            },
            _ => return Ok(Some(unsupported_queue_property(suffix, "unknown queue property"))),
        }
        Ok(None)
    }

    /// Weft's parents order their children by priority, then utilization: YARN's
    /// `priority-utilization`, and with equal priorities also its `utilization`.
    fn parent_ordering_policy(&self, path: &str, value: &str) -> Option<String> {
        match value.trim() {
            "priority-utilization" => None,
            "utilization" => {
                let priorities_set = self.children.get(path).into_iter().flatten().any(|child| {
                    self.values.get(&format!("{CS}{path}.{child}.priority")).is_some_and(|p| p.trim() != "0")
                });
                priorities_set.then(|| {
                    "`utilization` ignores queue priorities, but Weft honours the children's priorities".to_owned()
                })
            }
            other => Some(format!("parent ordering policy `{other}` is not supported")),
        }
    }

    fn into_import(mut self) -> Result<Import, ImportError> {
        for path in &self.auto_create_parents {
            if let Some(q) = self.queues.get_mut(path)
                && self.children.get(path).is_none_or(Vec::is_empty)
            {
                q.kind = Some(QueueKind::Parent);
            }
        }
        self.config.queues = assemble(&mut self.queues, &self.children, "root");
        let rules = self.placement_rules()?;
        // Leave the rules out when they are what Weft does anyway.
        if rules != self.config.effective_placement_rules() {
            self.config.placement_rules = rules;
        }
        finish(self.config, "capacity-scheduler.xml", self.not_carried_over)
    }

    /// CS mappings apply in order, first match wins. Without override a queue named at
    /// submission wins over the mappings (they apply to apps submitted to `default`); apps no
    /// rule places go to the leaf named `default`.
    fn placement_rules(&mut self) -> Result<Vec<PlacementRule>, ImportError> {
        let (name, value) = self.mappings.take().unwrap_or_default();
        let paths: Vec<(String, bool)> = self
            .children
            .iter()
            .map(|(path, kids)| (path.clone(), kids.is_empty() && !self.auto_create_parents.contains(path)))
            .collect();
        // A full path, or a unique path suffix such as `ml` or `marketing.users`.
        let find = |target: &str, want_leaf: bool| -> Option<String> {
            let dotted = format!(".{target}");
            let mut matching =
                paths.iter().filter(|(p, leaf)| *leaf == want_leaf && (p == target || p.ends_with(&dotted)));
            match (matching.next(), matching.next()) {
                (Some((p, _)), None) => Some(p.clone()),
                _ => None,
            }
        };
        let default_leaf = find("default", true);
        let mut mapped = Vec::new();
        for mapping in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let parts: Vec<&str> = mapping.splitn(3, ':').map(str::trim).collect();
            let [kind, source, target] = parts[..] else {
                return Err(invalid(&name, mapping, "a mapping is `u:user:queue` or `g:group:queue`"));
            };
            let not_found = |what: &str| format!("{name} `{mapping}`: no unique {what} {target}");
            let rule = match (kind, source, target) {
                ("u", "%user", "%user") => PlacementRule::User(DynamicRule::default()),
                ("u", "%user", "%primary_group") => PlacementRule::PrimaryGroup(DynamicRule::default()),
                ("u", "%user", "%primary_group.%user") => PlacementRule::PrimaryGroupUser(DynamicRule::default()),
                ("u", "%user", t) if t.contains("%secondary_group") => {
                    self.not_carried_over
                        .push(format!("{name} `{mapping}`: secondary-group placement is not supported"));
                    continue;
                }
                ("u", "%user", t) if t.ends_with(".%user") || t.ends_with(".%primary_group") => {
                    let (parent, placeholder) = t.rsplit_once('.').unwrap_or((t, ""));
                    let Some(parent_path) = find(parent, false) else {
                        self.not_carried_over.push(not_found("parent queue"));
                        continue;
                    };
                    let rule = DynamicRule {
                        create: self.auto_create_parents.contains(&parent_path),
                        parent: Some(parent_path),
                    };
                    if placeholder == "%user" { PlacementRule::User(rule) } else { PlacementRule::PrimaryGroup(rule) }
                }
                (_, _, t) if t.contains('%') || (kind != "u" && source.contains('%')) => {
                    self.not_carried_over.push(format!("{name} `{mapping}`: this mapping form is not supported"));
                    continue;
                }
                ("u" | "g", _, _) => {
                    let Some(queue) = find(target, true) else {
                        self.not_carried_over.push(not_found("leaf queue"));
                        continue;
                    };
                    match (kind, source) {
                        // Every user to one queue: always decides.
                        ("u", "%user") => PlacementRule::Default(DefaultRule { queue }),
                        ("u", user) => PlacementRule::MapUser(MapUserRule { user: user.to_owned(), queue }),
                        (_, group) => PlacementRule::MapGroup(MapGroupRule { group: group.to_owned(), queue }),
                    }
                }
                _ => {
                    self.not_carried_over.push(format!("{name} `{mapping}`: only u: and g: mappings are supported"));
                    continue;
                }
            };
            mapped.push(rule);
        }
        let specified = PlacementRule::Specified(SpecifiedRule::default());
        let mut rules = Vec::new();
        if !self.mappings_override {
            rules.push(specified.clone());
        }
        rules.extend(mapped);
        if self.mappings_override {
            rules.push(specified);
        }
        rules.push(default_leaf.map_or(PlacementRule::Reject, |queue| PlacementRule::Default(DefaultRule { queue })));
        // A catch-all mapping (`u:%user:queue`) always decides; what follows is unreachable.
        if let Some(terminal) = rules.iter().position(PlacementRule::is_terminal) {
            rules.truncate(terminal + 1);
        }
        Ok(rules)
    }
}

/// Why a queue property is left behind: a known unsupported feature, a property of a queue
/// missing from the tree (`root.gone.capacity` is owned by `root` with suffix `gone.capacity`),
/// or `fallback`.
fn unsupported_queue_property(suffix: &str, fallback: &str) -> String {
    if let Some((_, why)) = CS_QUEUE_UNSUPPORTED.iter().find(|(prefix, _)| suffix.starts_with(prefix)) {
        return (*why).to_owned();
    }
    if suffix.split_once('.').is_some_and(|(_, property)| CS_QUEUE_PROPERTIES.contains(&property)) {
        return UNLISTED_QUEUE.to_owned();
    }
    fallback.to_owned()
}

fn parse_state(name: &str, value: &str) -> Result<QueueState, ImportError> {
    match value.trim().to_ascii_uppercase().as_str() {
        "RUNNING" => Ok(QueueState::Running),
        "STOPPED" => Ok(QueueState::Stopped),
        _ => Err(invalid(name, value, "expected RUNNING or STOPPED")),
    }
}

/// `70`, `70.5` (percent), `2w`/`2.0w` (weight) or `[memory=10240,vcores=12]` (absolute).
fn parse_cs_capacity(name: &str, value: &str) -> Result<Capacity, ImportError> {
    let text = value.trim();
    if text.starts_with('[') {
        return parse_cs_absolute(name, value).map(Capacity::Absolute);
    }
    if let Some(weight) = text.strip_suffix('w') {
        return Ok(Capacity::Weight(parse_number(name, weight)?));
    }
    Ok(Capacity::Percent(parse_number(name, text)?))
}

/// `-1` and `100` mean the default (100%).
fn parse_cs_maximum(name: &str, value: &str) -> Result<Option<ResourceLimit>, ImportError> {
    let text = value.trim();
    if text.starts_with('[') {
        return parse_cs_absolute(name, value).map(|amount| Some(ResourceLimit::Absolute(amount)));
    }
    let percent: f64 = parse_number(name, text)?;
    Ok((percent != -1.0 && percent != 100.0).then_some(ResourceLimit::Percent(percent)))
}

fn parse_cs_absolute(name: &str, value: &str) -> Result<ResourceAmount, ImportError> {
    let inner = value.trim().trim_start_matches('[').trim_end_matches(']');
    let mut amount = ResourceAmount { memory_mb: 0, vcores: 0 };
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, number) = part.split_once('=').ok_or_else(|| invalid(name, value, "expected key=value pairs"))?;
        match key.trim() {
            "memory" | "memory-mb" => amount.memory_mb = parse_number(name, number)?,
            "vcores" => amount.vcores = parse_number(name, number)?,
            other => return Err(invalid(name, value, format!("resource type `{other}` is not supported"))),
        }
    }
    Ok(amount)
}

/// Builds the nested children of `path` from the flat settings.
fn assemble(
    flat: &mut BTreeMap<String, QueueConfig>,
    children: &BTreeMap<String, Vec<String>>,
    path: &str,
) -> BTreeMap<String, QueueConfig> {
    let mut nested = BTreeMap::new();
    for name in children.get(path).into_iter().flatten() {
        let child_path = format!("{path}.{name}");
        let grandchildren = assemble(flat, children, &child_path);
        let mut q = flat.remove(&child_path).unwrap_or_default();
        q.queues = grandchildren;
        nested.insert(name.clone(), q);
    }
    nested
}

// ---------------------------------------------------------------------------------------------
// fair-scheduler.xml

/// Reads a fair scheduler allocation file (`<allocations>`).
pub fn import_fair_scheduler_xml(xml: &str) -> Result<Import, ImportError> {
    let doc = Document::parse(xml)?;
    let allocations = doc.root_element();
    if allocations.tag_name().name() != "allocations" {
        return Err(ImportError::WrongDocument {
            expected: "fair scheduler allocation",
            found: allocations.tag_name().name().to_owned(),
        });
    }
    let mut importer = FsImporter {
        config: QueuesConfig { scheduler: SchedulerMode::Fair, ..QueuesConfig::default() },
        not_carried_over: Vec::new(),
    };
    let mut top_level = BTreeMap::new();
    let mut placement = None;
    for element in allocations.children().filter(Node::is_element) {
        let tag = element.tag_name().name();
        let text = element_text(element);
        let d = &mut importer.config.defaults;
        match tag {
            "queue" | "pool" if element.attribute("name") == Some("root") => {
                importer.root_queue(element, &mut top_level)?;
            }
            "queue" | "pool" => {
                let (name, q) = importer.queue(element, "root", true)?;
                top_level.insert(name, q);
            }
            "user" => importer.user(element)?,
            "userMaxAppsDefault" => d.max_parallel_apps_per_user = Some(parse_number(tag, &text)?),
            "queueMaxAppsDefault" => d.max_running_apps = Some(parse_number(tag, &text)?),
            "queueMaxAMShareDefault" => d.max_am_share = Some(parse_number(tag, &text)?),
            "queueMaxResourcesDefault" => match parse_fs_resources(tag, &text)? {
                FsResources::Limit(limit) => d.max_resources = Some(limit),
                FsResources::Unsupported(why) => importer.not_carried_over.push(format!("{tag}: {why}")),
            },
            "defaultQueueSchedulingPolicy" => match parse_policy(&text) {
                Some(policy) => d.scheduling_policy = Some(policy),
                None => importer.not_carried_over.push(format!("{tag}: policy `{text}` is not supported")),
            },
            "defaultMinSharePreemptionTimeout" => {
                d.min_share_preemption_timeout_ms.get_or_insert(seconds_to_ms(tag, &text)?);
            }
            "defaultFairSharePreemptionTimeout" | "fairSharePreemptionTimeout" => {
                d.fair_share_preemption_timeout_ms.get_or_insert(seconds_to_ms(tag, &text)?);
            }
            "defaultFairSharePreemptionThreshold" => {
                d.fair_share_preemption_threshold.get_or_insert(parse_number(tag, &text)?);
            }
            "queuePlacementPolicy" => placement = Some(element),
            _ if tag.starts_with("reservation") => {
                importer.not_carried_over.push(format!("<{tag}>: reservations are not supported"));
            }
            _ => importer.not_carried_over.push(format!("<{tag}>: unknown element")),
        }
    }
    // FS `fair` compares memory only; `drf` is dominant resource fairness.
    importer.config.resource_calculator = match importer.config.defaults.scheduling_policy {
        Some(SchedulingPolicy::Drf) => ResourceCalculator::Dominant,
        _ => ResourceCalculator::Memory,
    };
    importer.config.queues = top_level;
    let rules = match placement {
        Some(policy) => importer.placement_rules(policy)?,
        // FS without a policy (user-as-default-queue and allow-undeclared-pools at their
        // defaults): the named queue, else a queue per user, both created when missing.
        None => vec![
            PlacementRule::Specified(SpecifiedRule { create: true }),
            PlacementRule::User(DynamicRule { parent: None, create: true }),
            PlacementRule::Reject,
        ],
    };
    importer.add_missing_default_targets(&rules);
    importer.config.placement_rules = rules;
    finish(importer.config, "fair-scheduler.xml", importer.not_carried_over)
}

struct FsImporter {
    config: QueuesConfig,
    not_carried_over: Vec<String>,
}

fn element_text(element: Node<'_, '_>) -> String {
    element.text().unwrap_or("").trim().to_owned()
}

fn seconds_to_ms(name: &str, value: &str) -> Result<u64, ImportError> {
    let seconds: u64 = parse_number(name, value)?;
    seconds.checked_mul(1000).ok_or_else(|| invalid(name, value, "too large"))
}

fn parse_policy(text: &str) -> Option<SchedulingPolicy> {
    match text.trim().to_ascii_lowercase().as_str() {
        "fair" => Some(SchedulingPolicy::Fair),
        "drf" => Some(SchedulingPolicy::Drf),
        "fifo" => Some(SchedulingPolicy::Fifo),
        _ => None,
    }
}

/// A parsed `minResources` / `maxResources` value.
enum FsResources {
    Limit(ResourceLimit),
    /// Valid for YARN, but not representable (e.g. different percentages per resource).
    Unsupported(String),
}

/// FS resource strings: `"1024 mb, 10 vcores"`, `"vcores=10, memory-mb=1024"`, `"50%"`,
/// `"50% memory, 50% cpu"`, `"memory-mb=50%, vcores=50%"`.
fn parse_fs_resources(name: &str, value: &str) -> Result<FsResources, ImportError> {
    enum Amount {
        Units(u64),
        Percent(f64),
    }
    let text = value.trim().to_ascii_lowercase();
    if !text.contains(',')
        && !text.contains('=')
        && let Some(percent) = text.strip_suffix('%')
    {
        return Ok(FsResources::Limit(ResourceLimit::Percent(parse_number(name, percent)?)));
    }
    let (mut memory, mut vcores) = (None, None);
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (resource, amount) = match part.split_once('=') {
            Some((key, amount)) => (key.trim(), amount.trim()),
            None => {
                // "1024 mb", "10vcores", "50% memory": the number, then the unit.
                let split = part.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '%')).unwrap_or(part.len());
                (part[split..].trim(), part[..split].trim())
            }
        };
        let (slot, unit_factor) = match resource {
            "memory-mb" | "memory" | "mb" => (&mut memory, 1),
            "gb" => (&mut memory, 1024),
            "vcores" | "vcore" | "cpu" => (&mut vcores, 1),
            // Custom resource types (`yarn.io/gpu=2`) are valid YARN, just not Weft.
            other if part.contains('=') => {
                return Ok(FsResources::Unsupported(format!("resource type `{other}` is not supported")));
            }
            _ => return Err(invalid(name, value, "expected e.g. `1024 mb, 2 vcores` or `memory-mb=1024, vcores=2`")),
        };
        *slot = Some(match amount.strip_suffix('%') {
            Some(percent) => Amount::Percent(parse_number(name, percent)?),
            None => Amount::Units(parse_number::<u64>(name, amount)?.saturating_mul(unit_factor)),
        });
    }
    match (memory, vcores) {
        (Some(Amount::Units(memory_mb)), Some(Amount::Units(vcores))) => {
            let vcores = u32::try_from(vcores).map_err(|_| invalid(name, value, "too many vcores"))?;
            Ok(FsResources::Limit(ResourceLimit::Absolute(ResourceAmount { memory_mb, vcores })))
        }
        (Some(Amount::Percent(m)), Some(Amount::Percent(c))) if m == c => {
            Ok(FsResources::Limit(ResourceLimit::Percent(m)))
        }
        (Some(Amount::Percent(_)), Some(Amount::Percent(_))) => {
            Ok(FsResources::Unsupported("different percentages per resource are not supported".to_owned()))
        }
        (Some(_), Some(_)) => Err(invalid(name, value, "mixes absolute amounts and percentages")),
        _ => Err(invalid(name, value, "needs both memory and vcores")),
    }
}

impl FsImporter {
    fn note(&mut self, what: String, why: &str) {
        self.not_carried_over.push(format!("{what}: {why}"));
    }

    /// `<queue name="root">`: ACLs and preemption go to `root`, inherited preemption timeouts
    /// to `defaults`, children to the top level.
    fn root_queue(
        &mut self,
        element: Node<'_, '_>,
        top_level: &mut BTreeMap<String, QueueConfig>,
    ) -> Result<(), ImportError> {
        for child in element.children().filter(Node::is_element) {
            let tag = child.tag_name().name();
            let text = element_text(child);
            let name = format!("queue root: <{tag}>");
            let d = &mut self.config.defaults;
            match tag {
                "queue" | "pool" => {
                    let (child_name, q) = self.queue(child, "root", self.config.root.preemptible.unwrap_or(true))?;
                    top_level.insert(child_name, q);
                }
                "aclSubmitApps" => self.config.root.acl_submit_applications = Some(parse_acl(child.text().unwrap_or(""))),
                "aclAdministerApps" => self.config.root.acl_administer_queue = Some(parse_acl(child.text().unwrap_or(""))),
                "allowPreemptionFrom" => self.config.root.preemptible = Some(parse_bool(&name, &text)?),
                // Root's own values are what every queue inherits.
                "minSharePreemptionTimeout" => d.min_share_preemption_timeout_ms = Some(seconds_to_ms(&name, &text)?),
                "fairSharePreemptionTimeout" => d.fair_share_preemption_timeout_ms = Some(seconds_to_ms(&name, &text)?),
                "fairSharePreemptionThreshold" => d.fair_share_preemption_threshold = Some(parse_number(&name, &text)?),
                _ => self.note(name, "root's own limits and policy are not supported (only ACLs, allowPreemptionFrom and preemption timeouts)"),
            }
        }
        Ok(())
    }

    /// One `<queue>` under `parent_path`; `parent_preemptible` is the parent's effective value.
    fn queue(
        &mut self,
        element: Node<'_, '_>,
        parent_path: &str,
        parent_preemptible: bool,
    ) -> Result<(String, QueueConfig), ImportError> {
        let name = element.attribute("name").unwrap_or("").trim().to_owned();
        let path = format!("{parent_path}.{name}");
        let mut q = QueueConfig::default();
        if element.attribute("type") == Some("parent") {
            q.kind = Some(QueueKind::Parent);
        }
        let is_parent = element.children().any(|c| c.has_tag_name("queue") || c.has_tag_name("pool"))
            || q.kind == Some(QueueKind::Parent);
        // allowPreemptionFrom first: children need this queue's effective value.
        let allow_preemption = element.children().find(|c| c.has_tag_name("allowPreemptionFrom"));
        if let Some(allow) = allow_preemption {
            let allowed = parse_bool(&format!("queue {path}: <allowPreemptionFrom>"), &element_text(allow))?;
            if allowed && !parent_preemptible {
                self.note(
                    format!("queue {path}: <allowPreemptionFrom>"),
                    "has no effect under a queue that disallows preemption",
                );
            } else {
                q.preemptible = Some(allowed);
            }
        }
        let preemptible = parent_preemptible && q.preemptible.unwrap_or(true);
        for child in element.children().filter(Node::is_element) {
            let tag = child.tag_name().name();
            let text = element_text(child);
            let what = format!("queue {path}: <{tag}>");
            match tag {
                "queue" | "pool" => {
                    let (child_name, child_queue) = self.queue(child, &path, preemptible)?;
                    q.queues.insert(child_name, child_queue);
                }
                "allowPreemptionFrom" => {}
                "minResources" => match parse_fs_resources(&what, &text)? {
                    FsResources::Limit(ResourceLimit::Absolute(amount)) => q.min_resources = Some(amount),
                    FsResources::Limit(ResourceLimit::Percent(_)) => {
                        self.note(what, "minimum resources must be absolute")
                    }
                    FsResources::Unsupported(why) => self.note(what, &why),
                },
                "maxResources" => match parse_fs_resources(&what, &text)? {
                    FsResources::Limit(limit) => q.max_resources = Some(limit),
                    FsResources::Unsupported(why) => self.note(what, &why),
                },
                "maxRunningApps" => q.max_running_apps = Some(parse_number(&what, &text)?),
                "maxAMShare" if is_parent => self.note(what, "only applies to leaf queues"),
                "maxAMShare" => q.max_am_share = Some(parse_number(&what, &text)?),
                "weight" => q.weight = Some(parse_number(&what, &text)?),
                "schedulingPolicy" => match parse_policy(&text) {
                    Some(policy) => q.scheduling_policy = Some(policy),
                    None => self.note(what, "custom policy classes are not supported"),
                },
                "aclSubmitApps" => q.acl_submit_applications = Some(parse_acl(child.text().unwrap_or(""))),
                "aclAdministerApps" => q.acl_administer_queue = Some(parse_acl(child.text().unwrap_or(""))),
                "minSharePreemptionTimeout" => q.min_share_preemption_timeout_ms = Some(seconds_to_ms(&what, &text)?),
                "fairSharePreemptionTimeout" => q.fair_share_preemption_timeout_ms = Some(seconds_to_ms(&what, &text)?),
                "fairSharePreemptionThreshold" => q.fair_share_preemption_threshold = Some(parse_number(&what, &text)?),
                "maxChildResources" => self.note(what, "limits for dynamically created child queues are not supported"),
                "maxContainerAllocation" => self.note(
                    what,
                    "per-queue maximum allocation is not supported; rm.yaml's scheduler.maximum-allocation applies",
                ),
                "reservation" => self.note(what, "reservations are not supported"),
                _ => self.note(what, "unknown element"),
            }
        }
        Ok((name, q))
    }

    fn user(&mut self, element: Node<'_, '_>) -> Result<(), ImportError> {
        let user = element.attribute("name").unwrap_or("").trim().to_owned();
        for child in element.children().filter(Node::is_element) {
            let tag = child.tag_name().name();
            let what = format!("user {user}: <{tag}>");
            if tag == "maxRunningApps" {
                let limit = parse_number(&what, &element_text(child))?;
                self.config.users.entry(user.clone()).or_default().max_parallel_apps = Some(limit);
            } else {
                self.note(what, "unknown element");
            }
        }
        Ok(())
    }

    fn placement_rules(&mut self, policy: Node<'_, '_>) -> Result<Vec<PlacementRule>, ImportError> {
        // FS rules create missing queues unless told otherwise.
        let creates = |rule: Node<'_, '_>| rule.attribute("create").is_none_or(|c| c.trim() != "false");
        let mut rules = Vec::new();
        for rule in policy.children().filter(|c| c.has_tag_name("rule")) {
            let name = rule.attribute("name").unwrap_or("");
            let what = format!("<queuePlacementPolicy> rule `{name}`");
            let converted = match name {
                "specified" => PlacementRule::Specified(SpecifiedRule { create: creates(rule) }),
                "user" => PlacementRule::User(DynamicRule { parent: None, create: creates(rule) }),
                "primaryGroup" => PlacementRule::PrimaryGroup(DynamicRule { parent: None, create: creates(rule) }),
                "default" => PlacementRule::Default(DefaultRule {
                    queue: full_path(rule.attribute("queue").unwrap_or("default")),
                }),
                "reject" => PlacementRule::Reject,
                "nestedUserQueue" => {
                    let inner = rule.children().find(|c| c.has_tag_name("rule"));
                    match inner.map(|i| (i.attribute("name").unwrap_or(""), i)) {
                        Some(("primaryGroup", inner)) => {
                            if creates(inner) != creates(rule) {
                                self.note(
                                    what.clone(),
                                    "the inner and outer `create` differ; queues are created only when both allow it",
                                );
                            }
                            PlacementRule::PrimaryGroupUser(DynamicRule {
                                parent: None,
                                create: creates(rule) && creates(inner),
                            })
                        }
                        Some(("default", inner)) => PlacementRule::User(DynamicRule {
                            parent: Some(full_path(inner.attribute("queue").unwrap_or("default"))),
                            create: creates(rule),
                        }),
                        _ => {
                            self.note(what, "only primaryGroup and default can be nested");
                            continue;
                        }
                    }
                }
                "secondaryGroupExistingQueue" => {
                    self.note(what, "secondary-group placement is not supported");
                    continue;
                }
                _ => {
                    self.note(what, "unknown rule");
                    continue;
                }
            };
            rules.push(converted);
        }
        // FS also ends a policy with a rule that always creates; Weft wants an explicit end.
        match rules.iter().position(PlacementRule::is_terminal) {
            Some(terminal) => rules.truncate(terminal + 1),
            None => rules.push(PlacementRule::Reject),
        }
        Ok(rules)
    }

    /// FS creates the target of a `default` rule (root.default by default) on demand; here it
    /// becomes a declared leaf.
    fn add_missing_default_targets(&mut self, rules: &[PlacementRule]) {
        for rule in rules {
            if let PlacementRule::Default(DefaultRule { queue }) = rule
                && let Some(name) = queue.strip_prefix("root.").filter(|n| !n.contains('.'))
            {
                self.config.queues.entry(name.to_owned()).or_default();
            }
        }
    }
}

/// FS accepts `x` for `root.x`.
fn full_path(queue: &str) -> String {
    let queue = queue.trim();
    if queue == "root" || queue.starts_with("root.") { queue.to_owned() } else { format!("root.{queue}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(value: &str) -> ResourceLimit {
        match parse_fs_resources("test", value) {
            Ok(FsResources::Limit(limit)) => limit,
            Ok(FsResources::Unsupported(why)) => panic!("{value}: unsupported: {why}"),
            Err(e) => panic!("{value}: {e}"),
        }
    }

    fn absolute(memory_mb: u64, vcores: u32) -> ResourceLimit {
        ResourceLimit::Absolute(ResourceAmount { memory_mb, vcores })
    }

    #[test]
    fn fair_resource_strings_in_every_syntax() {
        assert_eq!(limit("1024 mb, 10 vcores"), absolute(1024, 10));
        assert_eq!(limit("10 vcores,1024mb"), absolute(1024, 10));
        assert_eq!(limit("2 GB, 1 vcore"), absolute(2048, 1));
        assert_eq!(limit("vcores=10, memory-mb=1024"), absolute(1024, 10));
        assert_eq!(limit("50%"), ResourceLimit::Percent(50.0));
        assert_eq!(limit("50% memory, 50% cpu"), ResourceLimit::Percent(50.0));
        assert_eq!(limit("memory-mb=25.5%, vcores=25.5%"), ResourceLimit::Percent(25.5));
        assert!(matches!(parse_fs_resources("t", "50% memory, 20% cpu"), Ok(FsResources::Unsupported(_))));
        assert!(matches!(
            parse_fs_resources("t", "memory-mb=1024, vcores=2, yarn.io/gpu=1"),
            Ok(FsResources::Unsupported(why)) if why.contains("yarn.io/gpu")
        ));
        for malformed in ["1024 mb", "lots mb, 2 vcores", "1024 mb, 50% cpu", "5 apples, 2 vcores"] {
            assert!(parse_fs_resources("t", malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn capacity_values_in_every_form() {
        assert_eq!(parse_cs_capacity("c", "70").unwrap(), Capacity::Percent(70.0));
        assert_eq!(parse_cs_capacity("c", " 12.5 ").unwrap(), Capacity::Percent(12.5));
        assert_eq!(parse_cs_capacity("c", "2.0w").unwrap(), Capacity::Weight(2.0));
        assert_eq!(
            parse_cs_capacity("c", "[memory=10240,vcores=12]").unwrap(),
            Capacity::Absolute(ResourceAmount { memory_mb: 10240, vcores: 12 })
        );
        assert!(parse_cs_capacity("c", "[memory=1,gpu=1]").is_err());
        assert_eq!(parse_cs_maximum("m", "-1").unwrap(), None);
        assert_eq!(parse_cs_maximum("m", "100").unwrap(), None);
        assert_eq!(parse_cs_maximum("m", "40").unwrap(), Some(ResourceLimit::Percent(40.0)));
    }

    #[test]
    fn acl_values_keep_their_leading_space() {
        assert_eq!(parse_acl(" "), Acl::nobody());
        assert_eq!(parse_acl(" devs").groups, ["devs"]);
        assert_eq!(parse_acl("\n  alice bots\n").to_string(), "alice bots");
    }
}
