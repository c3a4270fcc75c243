//! Queue configuration: parsing, validation (every rule, with queue path, field and line),
//! resolution into absolute numbers, reload diffs and the YARN XML importers.

use std::path::{Path, PathBuf};

use weft_common::Resource;
use weft_rm_core::queues::{
    Acl, Capacity, DefaultRule, DynamicRule, MapGroupRule, MapUserRule, PlacementRule, Problem, QueueChange,
    QueueConfigError, QueueLookupError, QueueSettings, QueueState, QueueTree, QueuesConfig, ReloadPlan,
    ResourceCalculator, SchedulerMode, SchedulingPolicy, SpecifiedRule, diff, import_capacity_scheduler_xml,
    import_fair_scheduler_xml,
};

const CLUSTER: Resource = Resource::new(102_400, 100);

fn parse(yaml: &str) -> QueuesConfig {
    QueuesConfig::parse(yaml, "queues.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// The problems of an invalid config, after checking that the error text names the file.
fn problems(yaml: &str) -> Vec<Problem> {
    match QueuesConfig::parse(yaml, "queues.yaml") {
        Err(QueueConfigError::Invalid { source_name, problems }) => {
            assert_eq!(source_name, "queues.yaml");
            problems.0
        }
        Err(other) => panic!("expected validation problems, got {other}"),
        Ok(_) => panic!("expected validation problems, but the config is valid:\n{yaml}"),
    }
}

/// The single problem of an invalid config.
fn problem(yaml: &str) -> Problem {
    let mut all = problems(yaml);
    assert_eq!(all.len(), 1, "expected one problem, got {all:#?}");
    all.remove(0)
}

#[track_caller]
fn assert_problem(p: &Problem, queue: Option<&str>, field: &str, line: u32, message_part: &str) {
    assert_eq!(p.queue.as_deref(), queue, "{p}");
    assert_eq!(p.field, field, "{p}");
    assert_eq!(p.line, Some(line), "{p}");
    assert!(p.message.contains(message_part), "`{message_part}` not in: {p}");
}

fn tree(yaml: &str) -> QueueTree {
    QueueTree::resolve(&parse(yaml), CLUSTER).unwrap_or_else(|e| panic!("{e}"))
}

fn queue<'t>(tree: &'t QueueTree, path: &str) -> &'t weft_rm_core::queues::ResolvedQueue {
    let index = tree.find(path).unwrap_or_else(|| panic!("no queue {path}"));
    &tree.queues[index]
}

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yarn").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ------------------------------------------------------------------------------------------
// Parsing and the example files

#[test]
fn example_files_parse_and_resolve() {
    let capacity = QueuesConfig::load(&repo_file("config/queues-capacity.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(capacity.scheduler, SchedulerMode::Capacity);
    let tree = QueueTree::resolve(&capacity, CLUSTER).unwrap();
    assert!(tree.warnings.is_empty(), "{:?}", tree.warnings);
    assert_eq!(queue(&tree, "etl").guaranteed, Resource::new(43_008, 42));
    assert!(queue(&tree, "root.users").accepts_dynamic_children);
    assert!(!queue(&tree, "root.users").is_leaf);

    let fair = QueuesConfig::load(&repo_file("config/queues-fair.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fair.scheduler, SchedulerMode::Fair);
    let tree = QueueTree::resolve(&fair, CLUSTER).unwrap();
    let research = queue(&tree, "root.research");
    assert_eq!(research.guaranteed, Resource::new(51_200, 50));
    assert_eq!(research.maximum, Resource::new(81_920, 80));
    let table = tree.render_table();
    assert!(table.contains("root.bi.dashboards"), "{table}");
}

#[test]
fn parse_errors_name_the_file_line_and_field() {
    let err = QueuesConfig::parse("queues:\n  prod:\n    capacity: 100%\n    capacty: 5%\n", "queues.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("queues.yaml") && err.contains("line 4") && err.contains("unknown field `capacty`"), "{err}");

    let err = QueuesConfig::parse("queues:\n  prod:\n    capacity: 100\n", "queues.yaml").unwrap_err().to_string();
    assert!(err.contains("line 3") && err.contains("write `100%`"), "{err}");

    let err = QueuesConfig::parse("scheduler: capacityy\n", "queues.yaml").unwrap_err().to_string();
    assert!(err.contains("line 1") && err.contains("capacityy"), "{err}");

    let err = QueuesConfig::load(Path::new("/nonexistent/queues.yaml")).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/queues.yaml"), "{err}");
}

#[test]
fn validation_error_text_names_file_line_queue_and_field() {
    let err = QueuesConfig::parse(
        "queues:\n  prod:\n    capacity: 100%\n    min-resources: {memory-mb: 1, vcores: 1}\n",
        "q.yaml",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "invalid queue config q.yaml: 1 problem\n  line 4: queue root.prod: `min-resources`: is a fair scheduler \
         field, but `scheduler` is capacity; use `capacity` (percent, weight or absolute) instead"
    );
}

// ------------------------------------------------------------------------------------------
// Validation: capacity mode

#[test]
fn percent_siblings_must_sum_to_100() {
    let p = problem("queues:\n  prod:\n    capacity: 60%\n  dev:\n    capacity: 30%\n");
    assert_problem(&p, Some("root"), "queues", 1, "sum to 90%, but must sum to 100% (dev 30%, prod 60%)");
    let p = problem(
        "queues:\n  prod:\n    capacity: 100%\n    queues:\n      a: {capacity: 50%}\n      b: {capacity: 50.5%}\n",
    );
    assert_problem(&p, Some("root.prod"), "queues", 4, "sum to 100.5%");
    // Within the tolerance.
    parse("queues:\n  a: {capacity: 33.333%}\n  b: {capacity: 33.333%}\n  c: {capacity: 33.334%}\n");
}

#[test]
fn siblings_must_share_one_capacity_form() {
    let p = problem("queues:\n  a:\n    capacity: 50%\n  b:\n    capacity: 2w\n");
    assert_problem(&p, Some("root"), "queues", 1, "children mix capacity forms (a: percent, b: weight)");
}

#[test]
fn capacity_is_required_in_capacity_mode() {
    let p = problem("queues:\n  a:\n    capacity: 100%\n    queues:\n      b:\n        max-capacity: 50%\n");
    assert_problem(&p, Some("root.a.b"), "capacity", 5, "is required under `scheduler: capacity`");
}

#[test]
fn absolute_children_fit_their_absolute_parent() {
    let p = problem(
        "queues:\n  a:\n    capacity: {memory-mb: 10240, vcores: 10}\n    queues:\n      \
         x: {capacity: {memory-mb: 8192, vcores: 4}}\n      y: {capacity: {memory-mb: 4096, vcores: 4}}\n",
    );
    assert_problem(
        &p,
        Some("root.a"),
        "queues",
        4,
        "add up to 12288 MB, 8 vcores, above this queue's 10240 MB, 10 vcores",
    );
    // Below the parent is fine (as in YARN).
    parse(
        "queues:\n  a:\n    capacity: {memory-mb: 10240, vcores: 10}\n    queues:\n      \
         x: {capacity: {memory-mb: 4096, vcores: 4}}\n",
    );
}

#[test]
fn absolute_capacity_needs_an_absolute_parent() {
    let p = problem(
        "queues:\n  a:\n    capacity: 100%\n    queues:\n      x:\n        capacity: {memory-mb: 1024, vcores: 1}\n",
    );
    assert_problem(&p, Some("root.a.x"), "capacity", 6, "needs an absolute parent");
}

#[test]
fn max_capacity_and_percentages_in_range() {
    let p = problem("queues:\n  a:\n    capacity: 100%\n    max-capacity: 50%\n");
    assert_problem(&p, Some("root.a"), "max-capacity", 4, "50% is below the queue's capacity 100%");
    let all = problems("queues:\n  a:\n    capacity: 120%\n    max-capacity: 150%\n  b:\n    capacity: -20%\n");
    assert_problem(&all[0], Some("root.a"), "capacity", 3, "within 0..=100, got 120%");
    assert_problem(&all[1], Some("root.a"), "max-capacity", 4, "within 0..=100, got 150%");
    assert_problem(&all[2], Some("root.b"), "capacity", 6, "within 0..=100, got -20%");
    let p = problem(
        "queues:\n  a:\n    capacity: {memory-mb: 4096, vcores: 4}\n    max-capacity: {memory-mb: 2048, vcores: 8}\n",
    );
    assert_problem(&p, Some("root.a"), "max-capacity", 4, "is below the queue's capacity");
    let p = problem("queues:\n  a:\n    capacity: 100%\n    max-capacity: {memory-mb: 2048, vcores: 8}\n");
    assert_problem(&p, Some("root.a"), "max-capacity", 4, "an absolute maximum needs an absolute capacity");
    let p = problem("queues:\n  a: {capacity: 1w}\n  b: {capacity: 0w}\n");
    assert_problem(&p, Some("root.b"), "capacity", 3, "weights must be positive");
}

#[test]
fn factors_and_percents_in_range() {
    let all = problems(
        "queues:\n  a:\n    capacity: 100%\n    user-limit-factor: 0\n    minimum-user-limit-percent: 0\n    \
         max-am-resource-percent: 1.5\n",
    );
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_problem(&all[0], Some("root.a"), "user-limit-factor", 4, "must be > 0 or -1 (disabled), got 0");
    assert_problem(&all[1], Some("root.a"), "minimum-user-limit-percent", 5, "within 1..=100, got 0");
    assert_problem(&all[2], Some("root.a"), "max-am-resource-percent", 6, "fraction within 0..=1, got 1.5");
    parse("queues:\n  a:\n    capacity: 100%\n    user-limit-factor: -1\n");
    let p = problem("defaults:\n  user-limit-factor: -2\n");
    assert_problem(&p, None, "defaults.user-limit-factor", 2, "must be > 0 or -1");
    let p = problem("preemption:\n  total-preemption-per-round: 0\n");
    assert_problem(&p, None, "preemption.total-preemption-per-round", 2, "within (0, 1]");
}

#[test]
fn default_priority_must_not_exceed_max_priority() {
    let p = problem("queues:\n  a:\n    capacity: 100%\n    default-application-priority: 3\n");
    assert_problem(&p, Some("root.a"), "default-application-priority", 4, "3 is above max-application-priority 0");
    parse(
        "defaults:\n  max-application-priority: 5\nqueues:\n  a:\n    capacity: 100%\n    default-application-priority: 3\n",
    );
    let p = problem(
        "queues:\n  a:\n    capacity: 100%\n    max-application-priority: 2\n    default-application-priority: 3\n",
    );
    assert_problem(&p, Some("root.a"), "default-application-priority", 5, "above max-application-priority 2");
}

#[test]
fn leaf_names_must_be_unique() {
    let p = problem(
        "queues:\n  prod:\n    capacity: 50%\n    queues:\n      etl: {capacity: 100%}\n  dev:\n    capacity: 50%\n    \
         queues:\n      etl: {capacity: 100%}\n",
    );
    assert_problem(&p, Some("root.prod.etl"), "name", 5, "leaf name `etl` is also used by root.dev.etl");
}

#[test]
fn names_are_non_empty_without_dots() {
    let p = problem("queues:\n  \"a.b\":\n    capacity: 100%\n");
    assert_problem(&p, Some("root.a.b"), "name", 2, "without '.' or spaces, got \"a.b\"");
    let p = problem("queues:\n  root:\n    capacity: 100%\n");
    assert_problem(&p, None, "queues.root", 2, "`root` is implicit");
}

#[test]
fn fields_of_the_other_mode_are_rejected_with_the_equivalent() {
    let p = problem("queues:\n  a:\n    capacity: 100%\n    weight: 2\n");
    assert_problem(
        &p,
        Some("root.a"),
        "weight",
        4,
        "is a fair scheduler field, but `scheduler` is capacity; use a weight capacity such as `capacity: 2w` instead",
    );
    let p = problem("scheduler: fair\nqueues:\n  a:\n    capacity: 50%\n");
    assert_problem(
        &p,
        Some("root.a"),
        "capacity",
        4,
        "is a capacity scheduler field, but `scheduler` is fair; use `weight` and `min-resources` instead",
    );
    let p = problem("scheduler: fair\nqueues:\n  a:\n    max-parallel-apps: 5\n");
    assert_problem(&p, Some("root.a"), "max-parallel-apps", 4, "use `max-running-apps` instead");
    let p = problem("scheduler: fair\ndefaults:\n  max-applications: 5\n");
    assert_problem(
        &p,
        None,
        "defaults.max-applications",
        3,
        "is a capacity scheduler setting, but `scheduler` is fair",
    );
}

#[test]
fn leaf_only_fields_are_rejected_on_parents() {
    let p = problem(
        "queues:\n  a:\n    capacity: 100%\n    user-limit-factor: 2\n    queues:\n      b: {capacity: 100%}\n",
    );
    assert_problem(&p, Some("root.a"), "user-limit-factor", 4, "only applies to leaf queues");
    let p = problem("scheduler: fair\nqueues:\n  a:\n    max-am-share: 0.2\n    type: parent\n");
    assert_problem(&p, Some("root.a"), "max-am-share", 4, "only applies to leaf queues");
    let p = problem("queues:\n  a:\n    capacity: 100%\n    type: leaf\n    queues:\n      b: {capacity: 100%}\n");
    assert_problem(&p, Some("root.a"), "type", 4, "a `leaf` cannot have child queues");
}

#[test]
fn fifo_mode_has_no_queues_or_rules() {
    let p = problem("scheduler: fifo\nqueues:\n  a:\n    capacity: 100%\n");
    assert_problem(&p, None, "queues", 2, "the fifo scheduler has the single queue root.default");
    let p = problem("scheduler: fifo\nplacement-rules: [specified, reject]\n");
    assert_problem(&p, None, "placement-rules", 2, "remove the rules");
    let tree = QueueTree::resolve(&parse("scheduler: fifo\n"), CLUSTER).unwrap();
    assert_eq!(tree.queues.len(), 2);
    let default = queue(&tree, "root.default");
    assert_eq!((default.guaranteed, default.maximum), (CLUSTER, CLUSTER));
    assert_eq!(default.settings, QueueSettings::Fifo);
}

#[test]
fn every_problem_is_reported_at_once() {
    let all = problems(
        "queues:\n  a:\n    capacity: 70%\n    min-resources: {memory-mb: 1, vcores: 1}\n  b:\n    capacity: 20%\n    \
         user-limit-factor: 0\n",
    );
    let fields: Vec<&str> = all.iter().map(|p| p.field.as_str()).collect();
    // In the order of the file.
    assert_eq!(fields, ["queues", "min-resources", "user-limit-factor"], "{all:#?}");
}

// ------------------------------------------------------------------------------------------
// Validation: fair mode

#[test]
fn fair_min_resources_within_max_resources() {
    let p = problem(
        "scheduler: fair\nqueues:\n  a:\n    min-resources: {memory-mb: 8192, vcores: 8}\n    \
         max-resources: {memory-mb: 4096, vcores: 8}\n",
    );
    assert_problem(&p, Some("root.a"), "min-resources", 4, "8192 MB, 8 vcores exceeds max-resources 4096 MB, 8 vcores");
    let p = problem("scheduler: fair\nqueues:\n  a:\n    max-resources: 150%\n");
    assert_problem(&p, Some("root.a"), "max-resources", 4, "within 0..=100");
}

#[test]
fn fair_weights_positive_and_timeouts_positive() {
    let all = problems(
        "scheduler: fair\nqueues:\n  a:\n    weight: 0\n    min-share-preemption-timeout-ms: 0\n    \
         fair-share-preemption-threshold: 1.5\n    max-am-share: 2\n",
    );
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_problem(&all[0], Some("root.a"), "weight", 4, "must be positive, got 0");
    assert_problem(&all[1], Some("root.a"), "min-share-preemption-timeout-ms", 5, "must be positive");
    assert_problem(&all[2], Some("root.a"), "fair-share-preemption-threshold", 6, "within 0..=1");
    assert_problem(&all[3], Some("root.a"), "max-am-share", 7, "within 0..=1 or -1");
    let p = problem("scheduler: fair\ndefaults:\n  fair-share-preemption-timeout-ms: 0\n");
    assert_problem(&p, None, "defaults.fair-share-preemption-timeout-ms", 3, "must be positive");
}

#[test]
fn fair_fifo_policy_only_on_leaves() {
    let p = problem("scheduler: fair\nqueues:\n  a:\n    scheduling-policy: fifo\n    queues:\n      b: {}\n");
    assert_problem(&p, Some("root.a"), "scheduling-policy", 4, "only allowed on leaf queues");
}

#[test]
fn fair_children_cannot_re_enable_preemption() {
    let p = problem(
        "scheduler: fair\nqueues:\n  a:\n    preemptible: false\n    queues:\n      b:\n        preemptible: true\n",
    );
    assert_problem(&p, Some("root.a.b"), "preemptible", 7, "an ancestor is not preemptible");
}

// ------------------------------------------------------------------------------------------
// Validation: placement rules

#[test]
fn placement_last_rule_must_be_terminal_and_nothing_after_it() {
    let p = problem("placement-rules:\n  - specified\n  - user: {create: true}\nqueues:\n  u: {capacity: 1w}\n");
    assert_problem(&p, None, "placement-rules[1]", 3, "the last rule must be `default` or `reject`");
    let p = problem("placement-rules:\n  - specified\n  - reject\n  - default\n");
    assert_problem(&p, None, "placement-rules[2]", 4, "is unreachable: rule 1 (`reject`) always decides");
}

#[test]
fn placement_parent_must_be_an_existing_or_creatable_parent() {
    let base = "queues:\n  prod:\n    capacity: 50%\n  users:\n    capacity: 50%\n    type: parent\n";
    parse(&format!("placement-rules:\n  - user: {{parent: root.users, create: true}}\n  - reject\n{base}"));
    let p = problem(&format!("placement-rules:\n  - user: {{parent: root.prod}}\n  - reject\n{base}"));
    assert_problem(
        &p,
        None,
        "placement-rules[0].parent",
        2,
        "root.prod is a leaf queue; give it children or `type: parent`",
    );
    let p = problem(&format!("placement-rules:\n  - user: {{parent: root.nope}}\n  - reject\n{base}"));
    assert_problem(&p, None, "placement-rules[0].parent", 2, "no queue root.nope (set `create: true` to create it)");
    // Creating root.teams under root would break root's percent split.
    let p = problem(&format!("placement-rules:\n  - user: {{parent: root.teams, create: true}}\n  - reject\n{base}"));
    assert_problem(
        &p,
        None,
        "placement-rules[0].parent",
        2,
        "root cannot take created queues: in capacity mode its children must use weight capacities",
    );
    let p = problem(&format!("placement-rules:\n  - user: {{parent: users}}\n  - reject\n{base}"));
    assert_problem(&p, None, "placement-rules[0].parent", 2, "is not a full queue path");
    // Creatable: a missing parent under a weight-split root.
    parse("placement-rules:\n  - user: {parent: root.teams, create: true}\n  - reject\nqueues:\n  a: {capacity: 1w}\n");
    // Fair mode: any parent takes created queues.
    parse(
        "scheduler: fair\nplacement-rules:\n  - primary-group-user: {parent: root.groups, create: true}\n  - reject\nqueues:\n  a: {}\n",
    );
}

#[test]
fn placement_default_and_mapped_queues_must_be_leaves() {
    let base = "queues:\n  prod:\n    capacity: 100%\n    queues:\n      etl: {capacity: 100%}\n";
    let p = problem(&format!("placement-rules:\n  - default: {{queue: root.prod}}\n{base}"));
    assert_problem(
        &p,
        None,
        "placement-rules[0].queue",
        2,
        "root.prod is a parent queue; apps can only be placed in leaves",
    );
    let p = problem(&format!("placement-rules:\n  - map-user: {{user: alice, queue: etl}}\n  - reject\n{base}"));
    assert_problem(
        &p,
        None,
        "placement-rules[0].queue",
        2,
        "no queue etl (did you mean root.prod.etl? write full paths)",
    );
    let p =
        problem(&format!("placement-rules:\n  - map-group: {{group: '', queue: root.prod.etl}}\n  - reject\n{base}"));
    assert_problem(&p, None, "placement-rules[0].group", 2, "must not be empty");
}

// ------------------------------------------------------------------------------------------
// Resolution

const THREE_LEVELS: &str = "
queues:
  prod:
    capacity: 60%
    max-capacity: 80%
    queues:
      etl:
        capacity: 75%
        queues:
          daily: {capacity: 40%, max-capacity: 50%}
          hourly: {capacity: 60%}
      serving: {capacity: 25%}
  dev:
    capacity: 40%
";

#[test]
fn three_level_capacity_tree_absolute_numbers() {
    let tree = tree(THREE_LEVELS);
    let expect = |path: &str, guaranteed: Resource, maximum: Resource| {
        let q = queue(&tree, path);
        assert_eq!((q.guaranteed, q.maximum), (guaranteed, maximum), "{path}");
    };
    expect("root", CLUSTER, CLUSTER);
    expect("root.prod", Resource::new(61_440, 60), Resource::new(81_920, 80));
    expect("root.prod.etl", Resource::new(46_080, 45), Resource::new(81_920, 80));
    expect("root.prod.etl.daily", Resource::new(18_432, 18), Resource::new(40_960, 40));
    expect("root.prod.etl.hourly", Resource::new(27_648, 27), Resource::new(81_920, 80));
    expect("root.prod.serving", Resource::new(15_360, 15), Resource::new(81_920, 80));
    expect("root.dev", Resource::new(40_960, 40), CLUSTER);

    let daily = queue(&tree, "daily");
    assert!((daily.absolute_capacity - 0.18).abs() < 1e-9);
    // YARN: maximum-applications (10000) × absolute capacity; AM limit 10% of the guarantee,
    // rounded up.
    assert_eq!(daily.max_applications, Some(1800));
    assert_eq!(queue(&tree, "hourly").max_applications, Some(2700));
    assert_eq!(daily.am_limit, Some(Resource::new(1844, 2)));
    assert_eq!(queue(&tree, "root.prod").max_applications, None);
    assert_eq!(queue(&tree, "root.prod").am_limit, None);

    // Parents come before children, and the indexes are consistent.
    let prod = tree.find("root.prod").unwrap();
    for &child in &tree.queues[prod].children {
        assert!(child > prod);
        assert_eq!(tree.queues[child].parent, Some(prod));
    }
    let leaves: Vec<&str> = tree.queues.iter().filter(|q| q.is_leaf).map(|q| q.path.as_str()).collect();
    assert_eq!(leaves, ["root.dev", "root.prod.etl.daily", "root.prod.etl.hourly", "root.prod.serving"]);
}

#[test]
fn percentage_numbers_are_defined_on_an_empty_cluster() {
    let tree = QueueTree::resolve(&parse(THREE_LEVELS), Resource::ZERO).unwrap();
    let daily = queue(&tree, "daily");
    assert_eq!(daily.guaranteed, Resource::ZERO);
    assert_eq!(daily.max_applications, Some(1800));
}

#[test]
fn weights_split_the_parent() {
    let tree = tree("queues:\n  a: {capacity: 1w}\n  b: {capacity: 1w}\n  c: {capacity: 2w, max-capacity: 60%}\n");
    assert_eq!(queue(&tree, "a").guaranteed, Resource::new(25_600, 25));
    assert_eq!(queue(&tree, "b").guaranteed, Resource::new(25_600, 25));
    assert_eq!(queue(&tree, "c").guaranteed, Resource::new(51_200, 50));
    assert_eq!(queue(&tree, "c").maximum, Resource::new(61_440, 60));
    assert_eq!(queue(&tree, "c").max_applications, Some(5000));
    assert!(tree.root().accepts_dynamic_children);
}

#[test]
fn absolute_capacities_are_scaled_down_when_the_cluster_is_smaller() {
    let yaml = "queues:\n  a:\n    capacity: {memory-mb: 40960, vcores: 40}\n    queues:\n      x: {capacity: 50%}\n      \
                y: {capacity: 50%}\n  \
                b:\n    capacity: {memory-mb: 81920, vcores: 20}\n    max-capacity: {memory-mb: 90000, vcores: 90}\n";
    let tree = tree(yaml);
    assert_eq!(queue(&tree, "root.a").guaranteed, Resource::new(34_133, 40));
    assert_eq!(queue(&tree, "b").guaranteed, Resource::new(68_266, 20));
    assert_eq!(queue(&tree, "b").maximum, Resource::new(90_000, 90));
    assert_eq!(queue(&tree, "x").guaranteed, Resource::new(17_066, 20));
    assert_eq!(tree.warnings.len(), 1);
    assert!(
        tree.warnings[0].contains("absolute capacities of root's children add up to 122880 MB, 60 vc"),
        "{:?}",
        tree.warnings
    );
    // Dominant share (memory 1/3, vcores 2/5) → 0.4 of the cluster.
    assert!((queue(&tree, "root.a").absolute_capacity - 0.4).abs() < 1e-3);
    let big = QueueTree::resolve(&parse(yaml), Resource::new(204_800, 200)).unwrap();
    assert!(big.warnings.is_empty());
    assert_eq!(queue(&big, "root.a").guaranteed, Resource::new(40_960, 40));
}

#[test]
fn fair_steady_shares_follow_weights_minimums_and_maximums() {
    let shares = tree(
        "scheduler: fair\nqueues:\n  a: {weight: 1}\n  b: {weight: 1}\n  c:\n    weight: 2\n    queues:\n      \
         c1: {min-resources: {memory-mb: 40000, vcores: 40}}\n      c2: {max-resources: 10%}\n",
    );
    assert_eq!(queue(&shares, "a").guaranteed, Resource::new(25_600, 25));
    assert_eq!(queue(&shares, "b").guaranteed, Resource::new(25_600, 25));
    assert_eq!(queue(&shares, "root.c").guaranteed, Resource::new(51_200, 50));
    assert_eq!(queue(&shares, "c1").guaranteed, Resource::new(40_960, 40));
    assert_eq!(queue(&shares, "c2").guaranteed, Resource::new(10_240, 10));
    assert_eq!(queue(&shares, "c2").maximum, Resource::new(10_240, 10));
    // AM share defaults to half the fair share.
    assert_eq!(queue(&shares, "a").am_limit, Some(Resource::new(12_800, 13)));

    let minimums = tree(
        "scheduler: fair\nqueues:\n  small: {min-resources: {memory-mb: 60000, vcores: 60}}\n  big: {weight: 9}\n",
    );
    assert_eq!(queue(&minimums, "small").guaranteed, Resource::new(60_000, 60));
    assert_eq!(queue(&minimums, "big").guaranteed, Resource::new(42_400, 40));
}

#[test]
fn fair_settings_inherit_preemption_timeouts_and_apply_defaults() {
    let tree = tree(
        "scheduler: fair\ndefaults:\n  fair-share-preemption-timeout-ms: 60000\n  scheduling-policy: drf\n  \
         max-running-apps: 7\nqueues:\n  a:\n    min-share-preemption-timeout-ms: 5000\n    queues:\n      \
         b: {fair-share-preemption-threshold: 0.7, max-am-share: -1}\n",
    );
    let QueueSettings::Fair(b) = &queue(&tree, "b").settings else { panic!("fair settings") };
    assert_eq!(b.min_share_preemption_timeout_ms, Some(5000));
    assert_eq!(b.fair_share_preemption_timeout_ms, Some(60_000));
    assert_eq!(b.fair_share_preemption_threshold, 0.7);
    assert_eq!(b.scheduling_policy, SchedulingPolicy::Drf);
    assert_eq!(b.max_am_share, None);
    assert_eq!(queue(&tree, "b").am_limit, Some(queue(&tree, "b").maximum));
    assert_eq!(queue(&tree, "b").max_parallel_apps, Some(7));
    // A per-queue default must not cap the whole cluster.
    assert_eq!(tree.root().max_parallel_apps, None);
    let QueueSettings::Fair(a) = &queue(&tree, "root.a").settings else { panic!("fair settings") };
    assert_eq!(a.fair_share_preemption_threshold, 0.5);
}

#[test]
fn acls_are_inherited_downward() {
    let acls = tree(
        "root:\n  acl-submit-applications: \" \"\n  acl-administer-queue: admin\nqueues:\n  prod:\n    capacity: 50%\n    \
         acl-submit-applications: alice devs\n    queues:\n      etl: {capacity: 100%, acl-submit-applications: bob}\n  \
         dev: {capacity: 50%}\n",
    );
    let etl = queue(&acls, "etl");
    assert_eq!(etl.submit_acl.to_string(), "alice,bob devs");
    assert!(etl.submit_acl.allows("bob", &[]));
    assert!(etl.submit_acl.allows("carol", &["devs".to_owned()]));
    assert!(!queue(&acls, "root.prod").submit_acl.allows("bob", &[]));
    assert_eq!(queue(&acls, "dev").submit_acl, Acl::nobody());
    assert_eq!(etl.administer_acl.to_string(), "admin");
    // Root's default is everyone, which every queue then inherits (as in YARN).
    let open = tree("queues:\n  a: {capacity: 100%, acl-submit-applications: bob}\n");
    assert!(queue(&open, "a").submit_acl.everyone);
}

#[test]
fn preemption_opt_out_and_stopped_state_are_inherited() {
    let capacity = tree(
        "queues:\n  prod:\n    capacity: 100%\n    preemptible: false\n    state: stopped\n    queues:\n      \
         etl: {capacity: 50%}\n      web: {capacity: 50%, preemptible: true}\n",
    );
    assert!(!queue(&capacity, "etl").preemptible);
    // Capacity mode: a child may re-enable it (YARN's disable_preemption override).
    assert!(queue(&capacity, "web").preemptible);
    assert_eq!(queue(&capacity, "etl").state, QueueState::Stopped);
    assert_eq!(capacity.leaf_for_submission("etl"), Err(QueueLookupError::Stopped("root.prod.etl".into())));

    let fair = tree("scheduler: fair\nqueues:\n  prod:\n    preemptible: false\n    queues:\n      etl: {}\n");
    assert!(!queue(&fair, "etl").preemptible);
    assert!(fair.root().preemptible);
}

#[test]
fn apps_can_only_be_submitted_to_leaves() {
    let tree = tree(THREE_LEVELS);
    let daily = tree.find("root.prod.etl.daily").unwrap();
    assert_eq!(tree.leaf_for_submission("daily"), Ok(daily));
    assert_eq!(tree.leaf_for_submission("root.prod.etl.daily"), Ok(daily));
    assert_eq!(tree.leaf_for_submission("root.prod.etl"), Err(QueueLookupError::NotALeaf("root.prod.etl".into())));
    assert_eq!(tree.leaf_for_submission("etl"), Err(QueueLookupError::Unknown("etl".into())));
    assert_eq!(
        tree.leaf_for_submission("root").unwrap_err().to_string(),
        "root is a parent queue; applications can only be submitted to leaf queues"
    );
}

#[test]
fn empty_config_is_a_single_default_queue_with_default_rules() {
    let config = parse("");
    let tree = QueueTree::resolve(&config, CLUSTER).unwrap();
    let default = queue(&tree, "root.default");
    assert!(default.is_leaf);
    assert_eq!(default.guaranteed, CLUSTER);
    assert_eq!(default.max_applications, Some(10_000));
    assert_eq!(default.am_limit, Some(Resource::new(10_240, 10)));
    assert_eq!(
        tree.placement_rules,
        [PlacementRule::Specified(SpecifiedRule::default()), PlacementRule::Default(DefaultRule::default())]
    );
    // Without a root.default leaf nothing unplaced is accepted.
    let no_default = parse("queues:\n  a: {capacity: 100%}\n");
    assert_eq!(no_default.effective_placement_rules()[1], PlacementRule::Reject);
}

#[test]
fn users_limits_and_groups() {
    let tree = tree(
        "defaults:\n  max-parallel-apps-per-user: 4\nusers:\n  alice: {groups: [eng, ml]}\n  bob: {max-parallel-apps: 1}\n",
    );
    assert_eq!(tree.user_groups("alice"), ["eng", "ml"]);
    assert!(tree.user_groups("nobody").is_empty());
    assert_eq!(tree.user_max_parallel_apps("alice"), Some(4));
    assert_eq!(tree.user_max_parallel_apps("bob"), Some(1));
}

#[test]
fn render_table_shows_the_effective_tree() {
    let table = tree(THREE_LEVELS).render_table();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "scheduler: capacity, resource calculator: dominant, cluster: 102400 MB, 100 vc");
    assert!(lines[1].starts_with("QUEUE") && lines[1].contains("GUARANTEED") && lines[1].contains("LIMITS"));
    let daily = lines.iter().find(|l| l.starts_with("root.prod.etl.daily")).unwrap();
    for part in ["40% max 50%", "18432 MB, 18 vc", "40960 MB, 40 vc", "running", "apps 1800", "am 1844 MB, 2 vc"] {
        assert!(daily.contains(part), "`{part}` not in {daily:?}\n{table}");
    }
    assert_eq!(lines.len(), 2 + 7);
}

// ------------------------------------------------------------------------------------------
// Reload diffs

#[test]
fn diff_lists_added_removed_and_changed_queues() {
    let old = parse(
        "queues:\n  prod: {capacity: 60%, queues: {etl: {capacity: 50%}, web: {capacity: 50%}}}\n  dev: {capacity: 40%}\n",
    );
    let new = parse(
        "placement-rules: [specified, reject]\nroot: {acl-submit-applications: ' '}\nqueues:\n  \
         prod: {capacity: 70%, queues: {etl: {capacity: 50%, user-limit-factor: 2}, batch: {capacity: 50%}}}\n  \
         dev: {capacity: 30%, queues: {team1: {capacity: 100%}}}\n",
    );
    let plan = diff(&old, &new);
    assert_eq!(
        plan,
        ReloadPlan {
            added: vec!["root.dev.team1".into(), "root.prod.batch".into()],
            removed: vec!["root.prod.web".into()],
            changed: vec![
                QueueChange { path: "root".into(), fields: vec!["acl-submit-applications".into()] },
                QueueChange { path: "root.dev".into(), fields: vec!["capacity".into()] },
                QueueChange { path: "root.prod".into(), fields: vec!["capacity".into()] },
                QueueChange { path: "root.prod.etl".into(), fields: vec!["user-limit-factor".into()] },
            ],
            leaves_to_parents: vec!["root.dev".into()],
            global_changes: vec!["placement-rules".into()],
        }
    );
    assert!(diff(&new, &new).is_empty());
    // The implicit root.default counts as a queue: defining a tree removes it.
    let reverse = diff(&parse(""), &old);
    assert_eq!(reverse.removed, ["root.default"]);
    assert_eq!(reverse.added, ["root.dev", "root.prod", "root.prod.etl", "root.prod.web"]);
    // Removal lists children before parents.
    assert_eq!(diff(&old, &parse("")).removed, ["root.prod.web", "root.prod.etl", "root.prod", "root.dev"]);
}

// ------------------------------------------------------------------------------------------
// YARN importers

#[test]
fn capacity_scheduler_xml_import() {
    let import = import_capacity_scheduler_xml(&fixture("capacity-scheduler.xml")).unwrap_or_else(|e| panic!("{e}"));
    let expected = QueuesConfig::parse(&fixture("capacity-scheduler.expected.yaml"), "expected").unwrap();
    assert_eq!(import.config, expected);
    assert_eq!(import.yaml, fixture("capacity-scheduler.expected.yaml"));
    assert_eq!(
        import.not_carried_over,
        [
            "yarn.scheduler.capacity.node-locality-delay: locality delays are not configurable",
            "yarn.scheduler.capacity.root.engineering.user-limit-factor: only applies to leaf queues; YARN ignores it on a parent",
            "yarn.scheduler.capacity.root.engineering.ml.accessible-node-labels: node labels (partitions) are not supported",
            "yarn.scheduler.capacity.root.engineering.ml.accessible-node-labels.gpu.capacity: node labels (partitions) are not supported",
            "yarn.scheduler.capacity.root.marketing.users.auto-create-child-queue.enabled: only partly carried over: \
             placement rules may create queues under it (weight 1w each), but templates and the capacity management \
             policy are not supported",
            "yarn.scheduler.capacity.root.marketing.users.leaf-queue-template.capacity: templates for auto-created \
             queues are not supported; created queues get weight 1w and the defaults",
            "yarn.scheduler.capacity.schedule-asynchronously.enable: scheduler tuning knob without an equivalent",
        ]
    );
    // Round trip: the YAML parses back to the same config.
    assert_eq!(QueuesConfig::parse(&import.yaml, "imported.yaml").unwrap(), import.config);

    let c = &import.config;
    assert_eq!(c.resource_calculator, ResourceCalculator::Dominant);
    assert!(c.preemption.enabled);
    assert_eq!(c.preemption.max_wait_before_kill_ms, 30_000);
    assert_eq!(
        c.placement_rules,
        [
            PlacementRule::Specified(SpecifiedRule::default()),
            PlacementRule::MapUser(MapUserRule { user: "alice".into(), queue: "root.engineering.ml".into() }),
            PlacementRule::MapGroup(MapGroupRule {
                group: "analysts".into(),
                queue: "root.marketing.campaigns".into()
            }),
            PlacementRule::User(DynamicRule { parent: Some("root.marketing.users".into()), create: true }),
            PlacementRule::Default(DefaultRule { queue: "root.default".into() }),
        ]
    );
    let ml = &c.queues["engineering"].queues["ml"];
    assert_eq!(ml.capacity, Some(Capacity::Percent(50.0)));
    assert_eq!(ml.max_capacity, None);
    assert_eq!(ml.acl_submit_applications.as_ref().map(ToString::to_string).as_deref(), Some("alice,bob ml-team"));
    assert_eq!(c.root.acl_submit_applications, Some(Acl::nobody()));

    let tree = QueueTree::resolve(c, CLUSTER).unwrap();
    assert_eq!(queue(&tree, "batch").guaranteed, Resource::new(21_504, 21));
    assert_eq!(queue(&tree, "batch").max_applications, Some(800));
    assert_eq!(queue(&tree, "streaming").max_applications, Some(450));
    assert!(!queue(&tree, "streaming").preemptible);
    assert!(queue(&tree, "root.marketing.users").accepts_dynamic_children);
}

#[test]
fn fair_scheduler_xml_import() {
    let import = import_fair_scheduler_xml(&fixture("fair-scheduler.xml")).unwrap_or_else(|e| panic!("{e}"));
    let expected = QueuesConfig::parse(&fixture("fair-scheduler.expected.yaml"), "expected").unwrap();
    assert_eq!(import.config, expected);
    assert_eq!(import.yaml, fixture("fair-scheduler.expected.yaml"));
    assert_eq!(
        import.not_carried_over,
        [
            "queue root.bi: <maxChildResources>: limits for dynamically created child queues are not supported",
            "<reservation-agent>: reservations are not supported",
            "<queuePlacementPolicy> rule `secondaryGroupExistingQueue`: secondary-group placement is not supported",
        ]
    );
    assert_eq!(QueuesConfig::parse(&import.yaml, "imported.yaml").unwrap(), import.config);

    let c = &import.config;
    assert_eq!(c.scheduler, SchedulerMode::Fair);
    let research = &c.queues["research"];
    assert_eq!(research.min_resources.map(|r| (r.memory_mb, r.vcores)), Some((20_480, 20)));
    assert_eq!(research.min_share_preemption_timeout_ms, Some(30_000));
    let bi = &c.queues["bi"];
    assert_eq!(bi.min_resources.map(|r| (r.memory_mb, r.vcores)), Some((10_240, 10)));
    assert_eq!(c.users["bob"].max_parallel_apps, Some(3));
    assert_eq!(c.defaults.fair_share_preemption_timeout_ms, Some(60_000));
    assert_eq!(
        c.placement_rules,
        [
            PlacementRule::Specified(SpecifiedRule { create: false }),
            PlacementRule::PrimaryGroupUser(DynamicRule { parent: None, create: true }),
            PlacementRule::Default(DefaultRule { queue: "root.default".into() }),
        ]
    );
    let tree = QueueTree::resolve(c, CLUSTER).unwrap();
    assert!(!queue(&tree, "dashboards").preemptible);
    assert_eq!(queue(&tree, "root.research").guaranteed, Resource::new(51_200, 50));
}

#[test]
fn capacity_mappings_with_override_and_unsupported_forms() {
    let xml = r#"<configuration>
  <property><name>yarn.scheduler.capacity.root.queues</name><value>a,b</value></property>
  <property><name>yarn.scheduler.capacity.root.a.capacity</name><value>50</value></property>
  <property><name>yarn.scheduler.capacity.root.b.capacity</name><value>50</value></property>
  <property><name>yarn.scheduler.capacity.queue-mappings</name>
    <value>u:%user:%primary_group, u:%user:%secondary_group, u:carol:%primary_group, u:%user:a</value></property>
  <property><name>yarn.scheduler.capacity.queue-mappings-override.enable</name><value>true</value></property>
  <property><name>yarn.scheduler.capacity.root.a.foo</name><value>1</value></property>
  <property><name>yarn.scheduler.capacity.root.gone.capacity</name><value>1</value></property>
</configuration>"#;
    let import = import_capacity_scheduler_xml(xml).unwrap_or_else(|e| panic!("{e}"));
    // Override: the mappings come before the queue named at submission; the catch-all
    // `u:%user:a` always decides, so nothing follows it.
    assert_eq!(
        import.config.placement_rules,
        [
            PlacementRule::PrimaryGroup(DynamicRule::default()),
            PlacementRule::Default(DefaultRule { queue: "root.a".into() }),
        ]
    );
    assert_eq!(
        import.not_carried_over,
        [
            "yarn.scheduler.capacity.root.a.foo: unknown queue property",
            "yarn.scheduler.capacity.root.gone.capacity: names a queue that no `queues` property lists",
            "yarn.scheduler.capacity.queue-mappings `u:%user:%secondary_group`: secondary-group placement is not supported",
            "yarn.scheduler.capacity.queue-mappings `u:carol:%primary_group`: this mapping form is not supported",
        ]
    );
    assert_eq!(import.config.resource_calculator, ResourceCalculator::Memory);
    assert!(import.yaml.starts_with("# Imported from a YARN capacity-scheduler.xml.\n# Not carried over:\n"));
}

#[test]
fn import_errors() {
    let err = import_capacity_scheduler_xml("<configuration><property>").unwrap_err().to_string();
    assert!(err.starts_with("malformed XML"), "{err}");
    let err = import_fair_scheduler_xml("<configuration/>").unwrap_err().to_string();
    assert_eq!(err, "not a fair scheduler allocation file: the document element is <configuration>");
    let xml = "<configuration><property><name>yarn.scheduler.capacity.root.queues</name><value>a</value></property>\
               <property><name>yarn.scheduler.capacity.root.a.capacity</name><value>lots</value></property></configuration>";
    let err = import_capacity_scheduler_xml(xml).unwrap_err().to_string();
    assert_eq!(
        err,
        "yarn.scheduler.capacity.root.a.capacity: invalid value \"lots\": not a number of the expected kind"
    );
    // Invalid in YARN too: the sum is 90.
    let xml = "<configuration><property><name>yarn.scheduler.capacity.root.queues</name><value>a</value></property>\
               <property><name>yarn.scheduler.capacity.root.a.capacity</name><value>90</value></property></configuration>";
    let err = import_capacity_scheduler_xml(xml).unwrap_err().to_string();
    assert!(err.contains("queue root: `queues`: the children's capacities sum to 90%"), "{err}");
    let err = import_fair_scheduler_xml(
        "<allocations><queue name=\"a\"><minResources>lots mb, 2 vcores</minResources></queue></allocations>",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("queue root.a: <minResources>"), "{err}");
}
